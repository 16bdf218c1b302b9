/* kith: group cryptography primitives (see gcrypto.h).
 *
 * The receiving chain keeps skipped message keys in a ring ordered by n:
 * keys are only ever appended with increasing n, so the ring stays sorted
 * and lookups are a binary search. When the ring is full the oldest key is
 * evicted and everything below it is reported as KITH_ERR_LIMIT. */
#include "gcrypto.h"

#include <glib.h>
#include <sodium.h>
#include <string.h>

static const char META_LABEL[] = "kith meta v1";
static const char CHAIN_LABEL[] = "kith chain v1";
static const char EPOCH_LABEL[] = "kith epoch id v1";

void kith_gcrypto_meta_key(const uint8_t secret[KITH_KEY_LEN],
                           uint8_t key[KITH_KEY_LEN]) {
  crypto_generichash(key, KITH_KEY_LEN, (const uint8_t *)META_LABEL,
                     sizeof META_LABEL - 1, secret, KITH_KEY_LEN);
}

uint64_t kith_gcrypto_epoch_id(const uint8_t meta_key[KITH_KEY_LEN]) {
  uint8_t h[32];
  uint64_t id = 0;
  crypto_generichash(h, sizeof h, (const uint8_t *)EPOCH_LABEL,
                     sizeof EPOCH_LABEL - 1, meta_key, KITH_KEY_LEN);
  for (int i = 7; i >= 0; i--)
    id = (id << 8) | h[i];
  id &= KITH_EPOCH_ID_MAX;
  return id ? id : 1;
}

void kith_gcrypto_chain_start(const uint8_t secret[KITH_KEY_LEN],
                              const uint8_t sender[32],
                              uint8_t chain[KITH_KEY_LEN]) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, secret, KITH_KEY_LEN, KITH_KEY_LEN);
  crypto_generichash_update(&st, (const uint8_t *)CHAIN_LABEL,
                            sizeof CHAIN_LABEL - 1);
  crypto_generichash_update(&st, sender, 32);
  crypto_generichash_final(&st, chain, KITH_KEY_LEN);
  sodium_memzero(&st, sizeof st);
}

void kith_gcrypto_chain_step(uint8_t chain[KITH_KEY_LEN],
                             uint8_t msg_key[KITH_KEY_LEN]) {
  static const uint8_t one = 0x01, two = 0x02;
  uint8_t next[KITH_KEY_LEN];
  crypto_generichash(msg_key, KITH_KEY_LEN, &one, 1, chain, KITH_KEY_LEN);
  crypto_generichash(next, KITH_KEY_LEN, &two, 1, chain, KITH_KEY_LEN);
  memcpy(chain, next, KITH_KEY_LEN);
  sodium_memzero(next, sizeof next);
}

void kith_gcrypto_seal_at(const uint8_t key[KITH_KEY_LEN],
                          const uint8_t nonce[KITH_NONCE_LEN],
                          const uint8_t *ad, size_t ad_len, const uint8_t *pt,
                          size_t len, uint8_t *out) {
  crypto_aead_xchacha20poly1305_ietf_encrypt(out, NULL, pt, len, ad, ad_len,
                                             NULL, nonce, key);
}

kith_err kith_gcrypto_open_at(const uint8_t key[KITH_KEY_LEN],
                              const uint8_t nonce[KITH_NONCE_LEN],
                              const uint8_t *ad, size_t ad_len,
                              const uint8_t *in, size_t in_len, uint8_t *out) {
  if (in_len < KITH_AEAD_TAG ||
      crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, in, in_len,
                                                 ad, ad_len, nonce, key) != 0)
    return KITH_ERR_CRYPTO;
  return KITH_OK;
}

void kith_gcrypto_seal(const uint8_t key[KITH_KEY_LEN], const uint8_t *ad,
                       size_t ad_len, const uint8_t *pt, size_t len,
                       uint8_t *out) {
  randombytes_buf(out, KITH_NONCE_LEN);
  kith_gcrypto_seal_at(key, out, ad, ad_len, pt, len, out + KITH_NONCE_LEN);
}

kith_err kith_gcrypto_open(const uint8_t key[KITH_KEY_LEN], const uint8_t *ad,
                           size_t ad_len, const uint8_t *in, size_t in_len,
                           uint8_t *out) {
  if (in_len < KITH_SEALED_OVERHEAD)
    return KITH_ERR_CRYPTO;
  return kith_gcrypto_open_at(key, in, ad, ad_len, in + KITH_NONCE_LEN,
                              in_len - KITH_NONCE_LEN, out);
}

typedef struct skipped {
  uint64_t n;
  int live; /* 0 once handed out */
  uint8_t key[KITH_KEY_LEN];
} skipped;

struct kith_chain {
  uint8_t *chain; /* sodium_malloc'ed: chain key for position pos */
  uint64_t pos;   /* next n the chain key produces */
  uint64_t floor; /* n below this were evicted (or used and evicted) */
  skipped *ring;  /* KITH_SKIPPED_KEYS_MAX entries, allocated on demand */
  size_t head, count;
};

kith_chain *kith_chain_new(const uint8_t secret[KITH_KEY_LEN],
                           const uint8_t sender[32]) {
  kith_chain *c = g_new0(kith_chain, 1);
  c->chain = sodium_malloc(KITH_KEY_LEN);
  if (!c->chain) {
    g_free(c);
    return NULL;
  }
  kith_gcrypto_chain_start(secret, sender, c->chain);
  return c;
}

void kith_chain_free(kith_chain *c) {
  if (!c)
    return;
  sodium_free(c->chain);
  if (c->ring) {
    sodium_memzero(c->ring, sizeof(skipped) * KITH_SKIPPED_KEYS_MAX);
    g_free(c->ring);
  }
  g_free(c);
}

static skipped *ring_at(const kith_chain *c, size_t i) {
  return &c->ring[(c->head + i) % KITH_SKIPPED_KEYS_MAX];
}

/* Appends key number n, evicting the oldest entry when full. */
static void ring_push(kith_chain *c, uint64_t n, const uint8_t *key) {
  if (c->count == KITH_SKIPPED_KEYS_MAX) {
    skipped *old = ring_at(c, 0);
    c->floor = old->n + 1;
    sodium_memzero(old, sizeof *old);
    c->head = (c->head + 1) % KITH_SKIPPED_KEYS_MAX;
    c->count--;
  }
  skipped *s = ring_at(c, c->count++);
  s->n = n;
  s->live = 1;
  memcpy(s->key, key, KITH_KEY_LEN);
}

static skipped *ring_find(const kith_chain *c, uint64_t n) {
  size_t lo = 0, hi = c->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    skipped *s = ring_at(c, mid);
    if (s->n == n)
      return s;
    if (s->n < n)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

/* Looks up an n below pos without consuming it. */
static kith_err key_behind(const kith_chain *c, uint64_t n, skipped **out) {
  if (n < c->floor)
    return KITH_ERR_LIMIT;
  skipped *s = c->ring ? ring_find(c, n) : NULL;
  if (!s || !s->live)
    return KITH_ERR_DUPLICATE;
  *out = s;
  return KITH_OK;
}

kith_err kith_chain_peek(const kith_chain *c, uint64_t n,
                         uint8_t key[KITH_KEY_LEN]) {
  if (n < c->pos) {
    skipped *s;
    kith_err rc = key_behind(c, n, &s);
    if (rc == KITH_OK)
      memcpy(key, s->key, KITH_KEY_LEN);
    return rc;
  }
  if (n - c->pos > KITH_SKIPPED_KEYS_MAX)
    return KITH_ERR_LIMIT;
  uint8_t ck[KITH_KEY_LEN];
  memcpy(ck, c->chain, KITH_KEY_LEN);
  for (uint64_t i = c->pos; i <= n; i++)
    kith_gcrypto_chain_step(ck, key);
  sodium_memzero(ck, sizeof ck);
  return KITH_OK;
}

kith_err kith_chain_key(kith_chain *c, uint64_t n, uint8_t key[KITH_KEY_LEN]) {
  if (n < c->pos) {
    skipped *s;
    kith_err rc = key_behind(c, n, &s);
    if (rc != KITH_OK)
      return rc;
    memcpy(key, s->key, KITH_KEY_LEN);
    sodium_memzero(s->key, KITH_KEY_LEN);
    s->live = 0;
    return KITH_OK;
  }
  if (n - c->pos > KITH_SKIPPED_KEYS_MAX)
    return KITH_ERR_LIMIT;
  if (n > c->pos && !c->ring)
    c->ring = g_new0(skipped, KITH_SKIPPED_KEYS_MAX);
  for (; c->pos < n; c->pos++) {
    kith_gcrypto_chain_step(c->chain, key);
    ring_push(c, c->pos, key);
  }
  kith_gcrypto_chain_step(c->chain, key);
  c->pos++;
  return KITH_OK;
}

static void put_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

#define CHAIN_HEAD (16 + KITH_KEY_LEN)
#define CHAIN_ITEM (8 + KITH_KEY_LEN)

uint8_t *kith_chain_export(const kith_chain *c, size_t *len) {
  size_t live = 0;
  for (size_t i = 0; c->ring && i < c->count; i++)
    live += ring_at(c, i)->live != 0;
  *len = CHAIN_HEAD + live * CHAIN_ITEM;
  uint8_t *out = g_malloc(*len), *p = out + CHAIN_HEAD;
  put_u64(out, c->pos);
  put_u64(out + 8, c->floor);
  memcpy(out + 16, c->chain, KITH_KEY_LEN);
  for (size_t i = 0; c->ring && i < c->count; i++) {
    const skipped *s = ring_at(c, i);
    if (!s->live)
      continue;
    put_u64(p, s->n);
    memcpy(p + 8, s->key, KITH_KEY_LEN);
    p += CHAIN_ITEM;
  }
  return out;
}

kith_chain *kith_chain_import(const uint8_t *buf, size_t len) {
  if (len < CHAIN_HEAD || (len - CHAIN_HEAD) % CHAIN_ITEM != 0 ||
      (len - CHAIN_HEAD) / CHAIN_ITEM > KITH_SKIPPED_KEYS_MAX)
    return NULL;
  kith_chain *c = g_new0(kith_chain, 1);
  c->chain = sodium_malloc(KITH_KEY_LEN);
  if (!c->chain) {
    g_free(c);
    return NULL;
  }
  c->pos = get_u64(buf);
  c->floor = get_u64(buf + 8);
  memcpy(c->chain, buf + 16, KITH_KEY_LEN);
  size_t n = (len - CHAIN_HEAD) / CHAIN_ITEM;
  uint64_t last = 0;
  for (size_t i = 0; i < n; i++) {
    const uint8_t *p = buf + CHAIN_HEAD + i * CHAIN_ITEM;
    uint64_t k = get_u64(p);
    if (k >= c->pos || k < c->floor || (i > 0 && k <= last)) {
      kith_chain_free(c);
      return NULL;
    }
    if (!c->ring)
      c->ring = g_new0(skipped, KITH_SKIPPED_KEYS_MAX);
    ring_push(c, k, p + 8);
    last = k;
  }
  return c;
}
