#include "session.h"

#include <sodium.h>
#include <string.h>

#define REC_HDR 4
#define KEY_LEN 32
#define HASH_LEN 32
#define NONCE_LEN crypto_aead_chacha20poly1305_ietf_NPUBBYTES
#define PROTOCOL "kith session v2"
#define PROTOCOL_LEN (sizeof PROTOCOL - 1)

typedef enum phase {
  WAIT_HS1,     /* responder */
  WAIT_HS2,     /* initiator, HS1 sent */
  WAIT_CONFIRM, /* responder, HS2 sent: the initiator's empty record */
  ESTABLISHED,
} phase;

/* Secrets live together in one sodium_malloc'ed block. */
typedef struct secrets {
  uint8_t eph_sk[32];
  uint8_t ck[KEY_LEN]; /* chaining key */
  uint8_t tx[KEY_LEN], rx[KEY_LEN];
} secrets;

struct kith_session {
  const kith_ident *me;
  uint8_t peer[KITH_ID_LEN];
  uint8_t peer_x[32]; /* the peer's static X25519 key */
  int initiator;
  int started;
  phase phase;
  kith_err dead; /* KITH_OK while alive; afterwards every call returns it */
  secrets *sec;
  uint8_t eph_pk[32];
  uint8_t peer_eph[32];
  uint8_t h[HASH_LEN]; /* handshake hash */
  uint64_t tx_n, rx_n; /* record counters (the nonces) */
  GByteArray *inbuf;   /* one partial record, at most REC_HDR + max */
};

/* ---- the handshake's symmetric state (Noise-style, on BLAKE2b) ---- */

static void mix_hash(kith_session *s, const uint8_t *x, size_t len) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, NULL, 0, HASH_LEN);
  crypto_generichash_update(&st, s->h, HASH_LEN);
  crypto_generichash_update(&st, x, len);
  crypto_generichash_final(&st, s->h, HASH_LEN);
}

/* t = BLAKE2b-512(key = ck, ikm); ck = t[0..32); k (if wanted) = t[32..). */
static void mix_key(kith_session *s, const uint8_t *ikm, size_t len,
                    uint8_t k[KEY_LEN]) {
  uint8_t t[2 * KEY_LEN];
  crypto_generichash(t, sizeof t, ikm, len, s->sec->ck, KEY_LEN);
  memcpy(s->sec->ck, t, KEY_LEN);
  if (k != NULL)
    memcpy(k, t + KEY_LEN, KEY_LEN);
  sodium_memzero(t, sizeof t);
}

/* mix_key with X25519(sk, pk); KITH_ERR_CRYPTO for a low-order pk. */
static kith_err mix_dh(kith_session *s, const uint8_t *sk, const uint8_t *pk,
                       uint8_t k[KEY_LEN]) {
  uint8_t q[crypto_scalarmult_BYTES];
  if (crypto_scalarmult(q, sk, pk) != 0)
    return KITH_ERR_CRYPTO;
  mix_key(s, q, sizeof q, k);
  sodium_memzero(q, sizeof q);
  return KITH_OK;
}

static void nonce_of(uint64_t n, uint8_t nonce[NONCE_LEN]) {
  memset(nonce, 0, NONCE_LEN);
  for (int i = 0; i < 8; i++)
    nonce[4 + i] = (uint8_t)(n >> (8 * i)); /* little-endian counter */
}

/* The tag of an empty message under k, with the handshake hash as AD. */
static void hs_tag(const kith_session *s, const uint8_t k[KEY_LEN],
                   uint8_t tag[KITH_SESSION_TAG_LEN]) {
  uint8_t nonce[NONCE_LEN], none[1] = {0};
  nonce_of(0, nonce);
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(
      none, tag, NULL, none, 0, s->h, HASH_LEN, NULL, nonce, k);
}

/* ---- life cycle ---- */

kith_session *kith_session_new_with_eph(const kith_ident *me,
                                        const uint8_t peer[KITH_ID_LEN],
                                        int initiator,
                                        const uint8_t eph_sk[32]) {
  if (me == NULL || peer == NULL || eph_sk == NULL)
    return NULL;
  kith_session *s = g_new0(kith_session, 1);
  s->sec = sodium_malloc(sizeof *s->sec);
  if (s->sec == NULL ||
      crypto_sign_ed25519_pk_to_curve25519(s->peer_x, peer) != 0) {
    sodium_free(s->sec);
    g_free(s);
    return NULL;
  }
  s->me = me;
  memcpy(s->peer, peer, KITH_ID_LEN);
  s->initiator = initiator ? 1 : 0;
  s->phase = initiator ? WAIT_HS2 : WAIT_HS1;
  s->inbuf = g_byte_array_new();
  memcpy(s->sec->eph_sk, eph_sk, 32);
  crypto_scalarmult_base(s->eph_pk, s->sec->eph_sk);
  /* h = ck = BLAKE2b-256(protocol || initiator id || responder id) */
  crypto_generichash_state st;
  crypto_generichash_init(&st, NULL, 0, HASH_LEN);
  crypto_generichash_update(&st, (const uint8_t *)PROTOCOL, PROTOCOL_LEN);
  crypto_generichash_update(&st, initiator ? me->pk : peer, KITH_ID_LEN);
  crypto_generichash_update(&st, initiator ? peer : me->pk, KITH_ID_LEN);
  crypto_generichash_final(&st, s->h, HASH_LEN);
  memcpy(s->sec->ck, s->h, KEY_LEN);
  return s;
}

kith_session *kith_session_new(const kith_ident *me,
                               const uint8_t peer[KITH_ID_LEN], int initiator) {
  uint8_t sk[32];
  randombytes_buf(sk, sizeof sk);
  kith_session *s = kith_session_new_with_eph(me, peer, initiator, sk);
  sodium_memzero(sk, sizeof sk);
  return s;
}

void kith_session_free(kith_session *s) {
  if (s == NULL)
    return;
  sodium_free(s->sec); /* wipes */
  g_byte_array_unref(s->inbuf);
  g_free(s);
}

int kith_session_is_established(const kith_session *s) {
  return s != NULL && s->dead == KITH_OK && s->phase == ESTABLISHED;
}

static kith_err die(kith_session *s, kith_err e) {
  s->dead = e;
  sodium_memzero(s->sec, sizeof *s->sec);
  g_byte_array_set_size(s->inbuf, 0);
  return e;
}

static uint8_t *append_header(GByteArray *out, size_t len) {
  guint at = out->len;
  uint8_t hdr[REC_HDR] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
                          (uint8_t)(len >> 8), (uint8_t)len};
  g_byte_array_append(out, hdr, REC_HDR);
  g_byte_array_set_size(out, at + REC_HDR + (guint)len);
  return out->data + at + REC_HDR;
}

/* Appends HS1 or HS2: our ephemeral key, then the tag under k. */
static void append_hs(kith_session *s, const uint8_t k[KEY_LEN],
                      GByteArray *out) {
  uint8_t *p = append_header(out, KITH_SESSION_HS_LEN);
  memcpy(p, s->eph_pk, 32);
  hs_tag(s, k, p + 32);
  mix_hash(s, p + 32, KITH_SESSION_TAG_LEN);
}

/* Both directions' keys from the final chaining key and hash; the
 * ephemeral secret is wiped. */
static void split(kith_session *s) {
  uint8_t t[2 * KEY_LEN];
  crypto_generichash(t, sizeof t, s->h, HASH_LEN, s->sec->ck, KEY_LEN);
  memcpy(s->initiator ? s->sec->tx : s->sec->rx, t, KEY_LEN);
  memcpy(s->initiator ? s->sec->rx : s->sec->tx, t + KEY_LEN, KEY_LEN);
  sodium_memzero(t, sizeof t);
  sodium_memzero(s->sec->eph_sk, sizeof s->sec->eph_sk);
  sodium_memzero(s->sec->ck, sizeof s->sec->ck);
}

kith_err kith_session_start(kith_session *s, GByteArray *out) {
  if (s == NULL || out == NULL)
    return KITH_ERR_ARG;
  if (s->dead != KITH_OK)
    return s->dead;
  if (s->started || !s->initiator) {
    s->started = 1;
    return KITH_OK;
  }
  /* HS1: e, es, ss */
  uint8_t k[KEY_LEN];
  mix_hash(s, s->eph_pk, 32);
  kith_err e = mix_dh(s, s->sec->eph_sk, s->peer_x, NULL);
  if (e == KITH_OK)
    e = mix_dh(s, s->me->xsk, s->peer_x, k);
  if (e != KITH_OK)
    return die(s, e);
  append_hs(s, k, out);
  sodium_memzero(k, sizeof k);
  s->started = 1;
  return KITH_OK;
}

/* Checks the tag of a handshake record under k and mixes it in. */
static kith_err check_hs_tag(kith_session *s, const uint8_t *tag,
                             const uint8_t k[KEY_LEN]) {
  uint8_t want[KITH_SESSION_TAG_LEN];
  hs_tag(s, k, want);
  int ok = sodium_memcmp(want, tag, sizeof want) == 0;
  if (ok)
    mix_hash(s, tag, KITH_SESSION_TAG_LEN);
  return ok ? KITH_OK : KITH_ERR_CRYPTO;
}

/* Reads the peer's handshake message (its ephemeral key, then a tag under
 * the key of the two DH steps (a1, b1) and (a2, b2)). */
static kith_err read_hs(kith_session *s, const uint8_t *rec, const uint8_t *a1,
                        const uint8_t *b1, const uint8_t *a2,
                        const uint8_t *b2) {
  uint8_t k[KEY_LEN];
  memcpy(s->peer_eph, rec, 32);
  mix_hash(s, s->peer_eph, 32);
  kith_err e = mix_dh(s, a1, b1, NULL);
  if (e == KITH_OK)
    e = mix_dh(s, a2, b2, k);
  if (e == KITH_OK)
    e = check_hs_tag(s, rec + 32, k);
  sodium_memzero(k, sizeof k);
  return e;
}

/* Responder: HS1 = e_I, es, ss; answers HS2 = e_R, ee, se. */
static kith_err recv_hs1(kith_session *s, const uint8_t *rec, GByteArray *out) {
  uint8_t k[KEY_LEN];
  kith_err e = read_hs(s, rec, s->me->xsk, s->peer_eph, s->me->xsk, s->peer_x);
  if (e == KITH_OK) {
    mix_hash(s, s->eph_pk, 32);
    e = mix_dh(s, s->sec->eph_sk, s->peer_eph, NULL);
  }
  if (e == KITH_OK)
    e = mix_dh(s, s->sec->eph_sk, s->peer_x, k);
  if (e == KITH_OK) {
    append_hs(s, k, out);
    split(s);
    s->phase = WAIT_CONFIRM;
  }
  sodium_memzero(k, sizeof k);
  return e;
}

static kith_err seal_record(kith_session *s, const uint8_t *frame, size_t len,
                            GByteArray *out) {
  uint8_t nonce[NONCE_LEN];
  if (s->tx_n == UINT64_MAX)
    return KITH_ERR_LIMIT;
  nonce_of(s->tx_n++, nonce);
  uint8_t *p = append_header(out, len + KITH_SESSION_TAG_LEN);
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(
      p, p + len, NULL, len > 0 ? frame : p, len, NULL, 0, NULL, nonce,
      s->sec->tx);
  return KITH_OK;
}

/* Initiator: HS2 = e_R, ee, se; then the confirmation (an empty record). */
static kith_err recv_hs2(kith_session *s, const uint8_t *rec, GByteArray *out) {
  kith_err e =
      read_hs(s, rec, s->sec->eph_sk, s->peer_eph, s->me->xsk, s->peer_eph);
  if (e != KITH_OK)
    return e;
  split(s);
  s->phase = ESTABLISHED;
  return seal_record(s, NULL, 0, out);
}

/* A transport record: one frame (an empty one is not delivered; the
 * responder's first, which must be empty, establishes the session). */
static kith_err recv_frame(kith_session *s, const uint8_t *rec, size_t len,
                           GPtrArray *frames) {
  uint8_t nonce[NONCE_LEN];
  if (len < KITH_SESSION_TAG_LEN || s->rx_n == UINT64_MAX)
    return len < KITH_SESSION_TAG_LEN ? KITH_ERR_DECODE : KITH_ERR_LIMIT;
  size_t mlen = len - KITH_SESSION_TAG_LEN;
  if (s->phase == WAIT_CONFIRM && mlen != 0)
    return KITH_ERR_DECODE;
  nonce_of(s->rx_n, nonce);
  uint8_t *m = g_malloc(mlen > 0 ? mlen : 1);
  if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(
          m, NULL, rec, mlen, rec + mlen, NULL, 0, nonce, s->sec->rx) != 0) {
    g_free(m);
    return KITH_ERR_CRYPTO;
  }
  s->rx_n++;
  if (s->phase == WAIT_CONFIRM)
    s->phase = ESTABLISHED;
  if (s->phase == ESTABLISHED && mlen > 0 && m != NULL)
    g_ptr_array_add(frames, g_bytes_new_take(m, mlen));
  else
    g_free(m);
  return KITH_OK;
}

static kith_err recv_record(kith_session *s, const uint8_t *rec, size_t len,
                            GByteArray *out, GPtrArray *frames) {
  switch (s->phase) {
  case WAIT_HS1:
    return recv_hs1(s, rec, out);
  case WAIT_HS2:
    return s->started ? recv_hs2(s, rec, out) : KITH_ERR_DECODE;
  case WAIT_CONFIRM:
  case ESTABLISHED:
    return recv_frame(s, rec, len, frames);
  }
  return KITH_ERR_STATE;
}

/* The length of the record whose header starts at p, or 0 if it is out of
 * bounds for the current phase. */
static size_t record_len(const kith_session *s, const uint8_t *p) {
  size_t len =
      (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
  int hs = s->phase == WAIT_HS1 || s->phase == WAIT_HS2;
  if (hs)
    return len == KITH_SESSION_HS_LEN ? len : 0;
  return len >= KITH_SESSION_TAG_LEN && len <= KITH_SESSION_MAX_RECORD ? len
                                                                       : 0;
}

/* Moves up to want bytes of input into inbuf; returns how many. */
static size_t take(kith_session *s, const uint8_t *buf, size_t len,
                   size_t want) {
  size_t n = len < want ? len : want;
  g_byte_array_append(s->inbuf, buf, (guint)n);
  return n;
}

/* Completes the record held in inbuf from buf; returns the bytes used, or
 * sets *err. */
static size_t recv_buffered(kith_session *s, const uint8_t *buf, size_t len,
                            GByteArray *out, GPtrArray *frames, kith_err *err) {
  GByteArray *in = s->inbuf;
  size_t used = in->len < REC_HDR ? take(s, buf, len, REC_HDR - in->len) : 0;
  if (in->len < REC_HDR)
    return used;
  size_t rlen = record_len(s, in->data);
  if (rlen == 0) {
    *err = KITH_ERR_LIMIT;
    return used;
  }
  used += take(s, buf + used, len - used, REC_HDR + rlen - in->len);
  if (in->len == REC_HDR + rlen) {
    *err = recv_record(s, in->data + REC_HDR, rlen, out, frames);
    g_byte_array_set_size(in, 0);
  }
  return used;
}

/* Whole records are opened where they lie in buf; only a record split
 * across calls is copied into inbuf. */
static kith_err recv_bytes(kith_session *s, const uint8_t *buf, size_t len,
                           GByteArray *out, GPtrArray *frames) {
  kith_err e = KITH_OK;
  while (len > 0 && e == KITH_OK) {
    size_t n, rlen;
    if (s->inbuf->len == 0 && len >= REC_HDR &&
        (rlen = record_len(s, buf)) != 0 && len >= REC_HDR + rlen) {
      e = recv_record(s, buf + REC_HDR, rlen, out, frames);
      n = REC_HDR + rlen;
    } else {
      n = recv_buffered(s, buf, len, out, frames, &e);
    }
    buf += n;
    len -= n;
  }
  return e;
}

kith_err kith_session_recv(kith_session *s, const uint8_t *buf, size_t len,
                           GByteArray *out, GPtrArray *frames) {
  if (s == NULL || (buf == NULL && len > 0) || out == NULL || frames == NULL)
    return KITH_ERR_ARG;
  if (s->dead != KITH_OK)
    return s->dead;
  kith_err e = recv_bytes(s, buf, len, out, frames);
  return e == KITH_OK ? KITH_OK : die(s, e);
}

/* What a frame to seal must pass (both ways of sealing). */
static kith_err may_seal(const kith_session *s, const uint8_t *frame,
                         size_t len, const GByteArray *out) {
  if (s == NULL || frame == NULL || len == 0 || out == NULL)
    return KITH_ERR_ARG;
  if (s->dead != KITH_OK)
    return s->dead;
  if (s->phase != ESTABLISHED)
    return KITH_ERR_STATE;
  return len > KITH_SESSION_MAX_FRAME ? KITH_ERR_LIMIT : KITH_OK;
}

kith_err kith_session_seal(kith_session *s, const uint8_t *frame, size_t len,
                           GByteArray *out) {
  kith_err e = may_seal(s, frame, len, out);
  if (e != KITH_OK)
    return e;
  e = seal_record(s, frame, len, out);
  return e == KITH_OK ? KITH_OK : die(s, e);
}

/* ---- records sealed and opened elsewhere ---- */

void kith_record_seal(const uint8_t key[32], uint64_t n, uint8_t *payload,
                      size_t frame_len) {
  uint8_t nonce[NONCE_LEN];
  nonce_of(n, nonce);
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(
      payload, payload + frame_len, NULL, payload, frame_len, NULL, 0, NULL,
      nonce, key);
}

kith_err kith_record_open(const uint8_t key[32], uint64_t n, uint8_t *payload,
                          size_t len) {
  uint8_t nonce[NONCE_LEN];
  if (len < KITH_SESSION_TAG_LEN)
    return KITH_ERR_DECODE;
  size_t mlen = len - KITH_SESSION_TAG_LEN;
  nonce_of(n, nonce);
  return crypto_aead_chacha20poly1305_ietf_decrypt_detached(
             payload, NULL, payload, mlen, payload + mlen, NULL, 0, nonce,
             key) == 0
             ? KITH_OK
             : KITH_ERR_CRYPTO;
}

void kith_session_key(const kith_session *s, int tx, uint8_t key[32]) {
  memcpy(key, tx ? s->sec->tx : s->sec->rx, KEY_LEN);
}

void kith_session_kill(kith_session *s, kith_err err) {
  if (s != NULL && s->dead == KITH_OK)
    die(s, err);
}

kith_err kith_session_seal_later(kith_session *s, const uint8_t *frame,
                                 size_t len, GByteArray *out,
                                 kith_record_span *span) {
  kith_err e = span ? may_seal(s, frame, len, out) : KITH_ERR_ARG;
  if (e != KITH_OK)
    return e;
  if (s->tx_n == UINT64_MAX)
    return die(s, KITH_ERR_LIMIT);
  uint8_t *p = append_header(out, len + KITH_SESSION_TAG_LEN);
  memcpy(p, frame, len);
  span->at = (size_t)(p - out->data);
  span->len = len + KITH_SESSION_TAG_LEN;
  span->n = s->tx_n++;
  return KITH_OK;
}

/* One complete record for later: copied out with its counter. */
static kith_err keep_record(kith_session *s, const uint8_t *rec, size_t len,
                            GByteArray *recs, GArray *spans) {
  if (s->rx_n == UINT64_MAX)
    return KITH_ERR_LIMIT;
  kith_record_span sp = {.at = recs->len, .len = len, .n = s->rx_n++};
  g_byte_array_append(recs, rec, (guint)len);
  g_array_append_val(spans, sp);
  return KITH_OK;
}

kith_err kith_session_recv_later(kith_session *s, const uint8_t *buf,
                                 size_t len, GByteArray *recs, GArray *spans) {
  if (s == NULL || (buf == NULL && len > 0) || recs == NULL || spans == NULL)
    return KITH_ERR_ARG;
  if (s->dead != KITH_OK)
    return s->dead;
  if (s->phase != ESTABLISHED)
    return KITH_ERR_STATE;
  kith_err e = KITH_OK;
  while (len > 0 && e == KITH_OK) {
    GByteArray *in = s->inbuf;
    size_t n, rlen;
    if (in->len == 0 && len >= REC_HDR && (rlen = record_len(s, buf)) != 0 &&
        len >= REC_HDR + rlen) {
      e = keep_record(s, buf + REC_HDR, rlen, recs, spans);
      n = REC_HDR + rlen; /* a whole record: copied once */
    } else {
      n = in->len < REC_HDR ? take(s, buf, len, REC_HDR - in->len) : 0;
      rlen = in->len >= REC_HDR ? record_len(s, in->data) : 0;
      if (in->len >= REC_HDR && rlen == 0) {
        e = KITH_ERR_LIMIT;
      } else if (in->len >= REC_HDR) {
        n += take(s, buf + n, len - n, REC_HDR + rlen - in->len);
        if (in->len == REC_HDR + rlen) {
          e = keep_record(s, in->data + REC_HDR, rlen, recs, spans);
          g_byte_array_set_size(in, 0);
        }
      }
    }
    buf += n;
    len -= n;
  }
  return e == KITH_OK ? KITH_OK : die(s, e);
}
