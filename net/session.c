#include "session.h"

#include <sodium.h>
#include <string.h>

#include "../core/codec.h"

#define REC_HDR 4
#define HANDSHAKE_MAX_RECORD 256 /* HELLO and AUTH are ~100 bytes */
#define INBUF_CAP (KITH_SESSION_MAX_RECORD + REC_HDR)
#define TAG_HELLO 1
#define TAG_AUTH 2
#define CONTEXT "kith session v1"
#define CONTEXT_LEN (sizeof CONTEXT - 1)
#define TRANSCRIPT_LEN (CONTEXT_LEN + 4 * 32 + 1)

typedef enum phase {
  WAIT_HELLO, /* our HELLO may or may not be out yet */
  WAIT_AUTH,  /* we sent AUTH; the peer's AUTH proves its identity */
  ESTABLISHED,
} phase;

/* Secrets live together in one sodium_malloc'ed block. */
typedef struct secrets {
  uint8_t eph_sk[crypto_kx_SECRETKEYBYTES];
  uint8_t rx_key[crypto_kx_SESSIONKEYBYTES];
  crypto_secretstream_xchacha20poly1305_state tx, rx;
} secrets;

struct kith_session {
  const kith_ident *me;
  uint8_t peer[KITH_ID_LEN];
  int initiator;
  int started;
  phase phase;
  kith_err dead; /* KITH_OK while alive; afterwards every call returns it */
  secrets *sec;
  uint8_t eph_pk[crypto_kx_PUBLICKEYBYTES];
  uint8_t peer_eph[crypto_kx_PUBLICKEYBYTES];
  GByteArray *inbuf; /* one partial record, at most INBUF_CAP bytes */
};

kith_session *kith_session_new(const kith_ident *me,
                               const uint8_t peer[KITH_ID_LEN], int initiator) {
  if (me == NULL || peer == NULL)
    return NULL;
  kith_session *s = g_new0(kith_session, 1);
  s->sec = sodium_malloc(sizeof *s->sec);
  if (s->sec == NULL) {
    g_free(s);
    return NULL;
  }
  sodium_memzero(s->sec, sizeof *s->sec);
  s->me = me;
  memcpy(s->peer, peer, KITH_ID_LEN);
  s->initiator = initiator ? 1 : 0;
  s->inbuf = g_byte_array_new();
  crypto_kx_keypair(s->eph_pk, s->sec->eph_sk);
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

static void append_record(GByteArray *out, const uint8_t *p, size_t len) {
  uint8_t hdr[REC_HDR] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16),
                          (uint8_t)(len >> 8), (uint8_t)len};
  g_byte_array_append(out, hdr, REC_HDR);
  g_byte_array_append(out, p, (guint)len);
}

kith_err kith_session_start(kith_session *s, GByteArray *out) {
  if (s == NULL || out == NULL)
    return KITH_ERR_ARG;
  if (s->dead != KITH_OK)
    return s->dead;
  if (s->started)
    return KITH_OK; /* already started by an early kith_session_recv */
  kith_pack pk;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 3);
  kith_pack_uint(&pk, TAG_HELLO);
  kith_pack_bin(&pk, s->me->pk, KITH_ID_LEN);
  kith_pack_bin(&pk, s->eph_pk, sizeof s->eph_pk);
  uint8_t *buf = NULL;
  size_t len = 0;
  kith_err e = kith_pack_take(&pk, &buf, &len);
  kith_pack_clear(&pk);
  if (e != KITH_OK)
    return e;
  append_record(out, buf, len);
  g_free(buf);
  s->started = 1;
  return KITH_OK;
}

/* transcript || role byte of the signer */
static void transcript(const kith_session *s, int signer_is_initiator,
                       uint8_t t[TRANSCRIPT_LEN]) {
  const uint8_t *ids[2] = {s->me->pk, s->peer};
  const uint8_t *ephs[2] = {s->eph_pk, s->peer_eph};
  int i = s->initiator ? 0 : 1; /* index of the initiator's values */
  uint8_t *p = t;
  memcpy(p, CONTEXT, CONTEXT_LEN);
  p += CONTEXT_LEN;
  memcpy(p, ids[i], 32);
  memcpy(p + 32, ids[1 - i], 32);
  memcpy(p + 64, ephs[i], 32);
  memcpy(p + 96, ephs[1 - i], 32);
  p[128] = signer_is_initiator ? 'I' : 'R';
}

/* Derives both directions' keys, wipes the ephemeral secret, opens our
 * sending stream and appends AUTH. */
static kith_err send_auth(kith_session *s, GByteArray *out) {
  uint8_t *tx_key = sodium_malloc(crypto_kx_SESSIONKEYBYTES);
  if (tx_key == NULL)
    return KITH_ERR_NOMEM;
  int rc =
      s->initiator
          ? crypto_kx_client_session_keys(s->sec->rx_key, tx_key, s->eph_pk,
                                          s->sec->eph_sk, s->peer_eph)
          : crypto_kx_server_session_keys(s->sec->rx_key, tx_key, s->eph_pk,
                                          s->sec->eph_sk, s->peer_eph);
  sodium_memzero(s->sec->eph_sk, sizeof s->sec->eph_sk);
  uint8_t header[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
  if (rc == 0)
    rc = crypto_secretstream_xchacha20poly1305_init_push(&s->sec->tx, header,
                                                         tx_key);
  sodium_free(tx_key);
  if (rc != 0)
    return KITH_ERR_CRYPTO; /* peer sent a low-order ephemeral key */
  uint8_t t[TRANSCRIPT_LEN], sig[KITH_SIG_LEN];
  transcript(s, s->initiator, t);
  kith_ident_sign(s->me, t, sizeof t, sig);
  kith_pack pk;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 3);
  kith_pack_uint(&pk, TAG_AUTH);
  kith_pack_bin(&pk, sig, sizeof sig);
  kith_pack_bin(&pk, header, sizeof header);
  uint8_t *buf = NULL;
  size_t len = 0;
  kith_err e = kith_pack_take(&pk, &buf, &len);
  kith_pack_clear(&pk);
  if (e == KITH_OK)
    append_record(out, buf, len);
  g_free(buf);
  return e;
}

/* Unpacks a 3-array handshake message whose first element is tag. */
static kith_err unpack_hs(const uint8_t *rec, size_t len, uint64_t tag,
                          msgpack_unpacked *u, const msgpack_object **f) {
  uint64_t t;
  if (kith_codec_unpack(rec, len, u) != KITH_OK ||
      kith_codec_array(&u->data, 3, f) != KITH_OK ||
      kith_codec_uint(&(*f)[0], UINT8_MAX, &t) != KITH_OK)
    return KITH_ERR_DECODE;
  return t == tag ? KITH_OK : KITH_ERR_DECODE;
}

static kith_err recv_hello(kith_session *s, const uint8_t *rec, size_t len,
                           GByteArray *out) {
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  const msgpack_object *f = NULL;
  uint8_t id[KITH_ID_LEN];
  kith_err e = unpack_hs(rec, len, TAG_HELLO, &u, &f);
  if (e == KITH_OK &&
      (kith_codec_bin_fixed(&f[1], id, sizeof id) != KITH_OK ||
       kith_codec_bin_fixed(&f[2], s->peer_eph, sizeof s->peer_eph) != KITH_OK))
    e = KITH_ERR_DECODE;
  msgpack_unpacked_destroy(&u);
  if (e != KITH_OK)
    return e;
  if (sodium_memcmp(id, s->peer, KITH_ID_LEN) != 0)
    return KITH_ERR_FORBIDDEN;
  if (!s->started && (e = kith_session_start(s, out)) != KITH_OK)
    return e;
  if ((e = send_auth(s, out)) != KITH_OK)
    return e;
  s->phase = WAIT_AUTH;
  return KITH_OK;
}

static kith_err recv_auth(kith_session *s, const uint8_t *rec, size_t len) {
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  const msgpack_object *f = NULL;
  uint8_t sig[KITH_SIG_LEN];
  uint8_t header[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
  kith_err e = unpack_hs(rec, len, TAG_AUTH, &u, &f);
  if (e == KITH_OK &&
      (kith_codec_bin_fixed(&f[1], sig, sizeof sig) != KITH_OK ||
       kith_codec_bin_fixed(&f[2], header, sizeof header) != KITH_OK))
    e = KITH_ERR_DECODE;
  msgpack_unpacked_destroy(&u);
  if (e != KITH_OK)
    return e;
  uint8_t t[TRANSCRIPT_LEN];
  transcript(s, !s->initiator, t);
  if (kith_sig_verify(s->peer, t, sizeof t, sig) != KITH_OK)
    return KITH_ERR_SIGNATURE;
  int rc = crypto_secretstream_xchacha20poly1305_init_pull(&s->sec->rx, header,
                                                           s->sec->rx_key);
  sodium_memzero(s->sec->rx_key, sizeof s->sec->rx_key);
  if (rc != 0)
    return KITH_ERR_CRYPTO;
  s->phase = ESTABLISHED;
  return KITH_OK;
}

static kith_err recv_frame(kith_session *s, const uint8_t *rec, size_t len,
                           GPtrArray *frames) {
  if (len < crypto_secretstream_xchacha20poly1305_ABYTES)
    return KITH_ERR_CRYPTO;
  size_t cap = len - crypto_secretstream_xchacha20poly1305_ABYTES;
  uint8_t *m = g_malloc(cap > 0 ? cap : 1);
  unsigned long long mlen = 0;
  unsigned char tag = 0;
  if (crypto_secretstream_xchacha20poly1305_pull(&s->sec->rx, m, &mlen, &tag,
                                                 rec, len, NULL, 0) != 0 ||
      tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
    g_free(m);
    return KITH_ERR_CRYPTO;
  }
  g_ptr_array_add(frames, g_bytes_new_take(m, (gsize)mlen));
  return KITH_OK;
}

static kith_err recv_record(kith_session *s, const uint8_t *rec, size_t len,
                            GByteArray *out, GPtrArray *frames) {
  switch (s->phase) {
  case WAIT_HELLO:
    return recv_hello(s, rec, len, out);
  case WAIT_AUTH:
    return recv_auth(s, rec, len);
  case ESTABLISHED:
    return recv_frame(s, rec, len, frames);
  }
  return KITH_ERR_STATE;
}

static size_t record_max(const kith_session *s) {
  return s->phase == ESTABLISHED ? KITH_SESSION_MAX_RECORD
                                 : HANDSHAKE_MAX_RECORD;
}

/* Moves up to want bytes of input into inbuf; returns how many. */
static size_t take(kith_session *s, const uint8_t *buf, size_t len,
                   size_t want) {
  size_t n = len < want ? len : want;
  g_byte_array_append(s->inbuf, buf, (guint)n);
  return n;
}

static kith_err recv_bytes(kith_session *s, const uint8_t *buf, size_t len,
                           GByteArray *out, GPtrArray *frames) {
  while (len > 0) {
    GByteArray *in = s->inbuf;
    size_t n = in->len < REC_HDR ? take(s, buf, len, REC_HDR - in->len) : 0;
    buf += n;
    len -= n;
    if (in->len < REC_HDR)
      break;
    size_t rlen = (size_t)in->data[0] << 24 | (size_t)in->data[1] << 16 |
                  (size_t)in->data[2] << 8 | in->data[3];
    if (rlen == 0 || rlen > record_max(s))
      return KITH_ERR_LIMIT;
    n = take(s, buf, len, REC_HDR + rlen - in->len);
    buf += n;
    len -= n;
    if (in->len < REC_HDR + rlen)
      break;
    kith_err e = recv_record(s, in->data + REC_HDR, rlen, out, frames);
    g_byte_array_set_size(in, 0);
    if (e != KITH_OK)
      return e;
  }
  return KITH_OK;
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

kith_err kith_session_seal(kith_session *s, const uint8_t *frame, size_t len,
                           GByteArray *out) {
  if (s == NULL || (frame == NULL && len > 0) || out == NULL)
    return KITH_ERR_ARG;
  if (s->dead != KITH_OK)
    return s->dead;
  if (s->phase != ESTABLISHED)
    return KITH_ERR_STATE;
  if (len > KITH_SESSION_MAX_FRAME)
    return KITH_ERR_LIMIT;
  size_t clen = len + crypto_secretstream_xchacha20poly1305_ABYTES;
  guint at = out->len;
  uint8_t hdr[REC_HDR] = {(uint8_t)(clen >> 24), (uint8_t)(clen >> 16),
                          (uint8_t)(clen >> 8), (uint8_t)clen};
  g_byte_array_append(out, hdr, REC_HDR);
  g_byte_array_set_size(out, at + REC_HDR + (guint)clen);
  crypto_secretstream_xchacha20poly1305_push(
      &s->sec->tx, out->data + at + REC_HDR, NULL, frame != NULL ? frame : hdr,
      len, NULL, 0, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
  return KITH_OK;
}
