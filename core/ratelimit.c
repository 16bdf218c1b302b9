/* kith: rate limits (see ratelimit.h). */
#include "ratelimit.h"

#include <glib.h>
#include <sodium.h>
#include <string.h>

typedef struct entry {
  uint8_t key[KITH_RATELIMIT_KEY_MAX];
  size_t len;
  guint hash;
  kith_bucket b;
  GList link; /* in kith_ratelimit.lru, most recently used last */
} entry;

struct kith_ratelimit {
  double rate, burst;
  size_t cap;
  GHashTable *keys; /* entry* set */
  GQueue lru;
  uint8_t hash_key[crypto_shorthash_KEYBYTES];
};

void kith_bucket_init(kith_bucket *b, double burst, uint64_t now_ms) {
  b->tokens = burst;
  b->at_ms = now_ms;
}

int kith_bucket_take(kith_bucket *b, double rate, double burst, double cost,
                     uint64_t now_ms) {
  if (now_ms > b->at_ms) {
    b->tokens += (double)(now_ms - b->at_ms) * rate / 1000.0;
    b->at_ms = now_ms;
  }
  if (b->tokens > burst)
    b->tokens = burst;
  if (b->tokens < cost)
    return 0;
  b->tokens -= cost;
  return 1;
}

static guint entry_hash(gconstpointer k) {
  return ((const entry *)k)->hash;
}

static gboolean entry_equal(gconstpointer a, gconstpointer b) {
  const entry *x = a, *y = b;
  return x->len == y->len && memcmp(x->key, y->key, x->len) == 0;
}

kith_ratelimit *kith_ratelimit_new(double rate, double burst, size_t cap) {
  if (!(rate > 0) || !(burst >= 1) || cap < 1)
    return NULL;
  kith_ratelimit *rl = g_new0(kith_ratelimit, 1);
  rl->rate = rate;
  rl->burst = burst;
  rl->cap = cap;
  rl->keys = g_hash_table_new_full(entry_hash, entry_equal, g_free, NULL);
  g_queue_init(&rl->lru);
  randombytes_buf(rl->hash_key, sizeof rl->hash_key);
  return rl;
}

void kith_ratelimit_free(kith_ratelimit *rl) {
  if (rl == NULL)
    return;
  g_hash_table_destroy(rl->keys); /* frees the entries and their links */
  g_free(rl);
}

size_t kith_ratelimit_size(const kith_ratelimit *rl) {
  return rl ? g_hash_table_size(rl->keys) : 0;
}

/* The key's entry, made (full) if new; the least recently used one makes
 * room when the table is full. */
static entry *lookup(kith_ratelimit *rl, const uint8_t *key, size_t len,
                     uint64_t now_ms) {
  entry probe = {.len = len};
  uint8_t h[crypto_shorthash_BYTES];
  memcpy(probe.key, key, len);
  crypto_shorthash(h, key, len, rl->hash_key);
  memcpy(&probe.hash, h, sizeof probe.hash);
  entry *e = g_hash_table_lookup(rl->keys, &probe);
  if (e != NULL) {
    g_queue_unlink(&rl->lru, &e->link);
    g_queue_push_tail_link(&rl->lru, &e->link);
    return e;
  }
  if (g_hash_table_size(rl->keys) >= rl->cap) {
    entry *old = rl->lru.head->data;
    g_queue_unlink(&rl->lru, &old->link);
    g_hash_table_remove(rl->keys, old);
  }
  e = g_memdup2(&probe, sizeof probe);
  e->link = (GList){.data = e};
  kith_bucket_init(&e->b, rl->burst, now_ms);
  g_hash_table_add(rl->keys, e);
  g_queue_push_tail_link(&rl->lru, &e->link);
  return e;
}

int kith_ratelimit_take(kith_ratelimit *rl, const uint8_t *key, size_t key_len,
                        double cost, uint64_t now_ms) {
  if (rl == NULL || key == NULL || key_len == 0 ||
      key_len > KITH_RATELIMIT_KEY_MAX)
    return 0;
  entry *e = lookup(rl, key, key_len, now_ms);
  return kith_bucket_take(&e->b, rl->rate, rl->burst, cost, now_ms);
}
