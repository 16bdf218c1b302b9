#include "signal.h"

#include <sodium.h>
#include <string.h>

#include "../core/codec.h"
#include "../core/ratelimit.h"
#include "../core/replay.h"
#include "stun.h"

#define NONCE_LEN KITH_SIGNAL_NONCE_LEN
#define REPLAY_CAP 4096      /* remembered nonces, all sources together */
#define REPLAY_PER_SOURCE 64 /* of which one source IPv4 address may hold */
#define SOURCES_CAP 1024     /* token buckets (source IPv4 addresses) */
#define RECV_PER_DISPATCH 64 /* datagrams read per wake-up, then yield */
G_STATIC_ASSERT(NONCE_LEN == KITH_REPLAY_TAG_LEN);

struct kith_signal {
  const kith_ident *me;
  GMainContext *ctx;
  GSocket *sock;
  GSource *src;
  kith_signal_cb cb;
  void *ud;
  kith_signal_stun_cb stun_cb;
  void *stun_ud;
  uint16_t port;
  uint64_t dropped;
  kith_replay *seen;       /* nonces, per source address */
  kith_ratelimit *sources; /* a token bucket per source address */
  kith_bucket opened;      /* datagrams opened, all sources together */
  int in_cb;               /* inside the user callback */
  int free_pending;        /* kith_signal_free was called from the callback */
};

typedef struct envelope {
  uint8_t from[KITH_ID_LEN];
  uint8_t to[KITH_ID_LEN];
  uint64_t ts;
  uint8_t nonce[NONCE_LEN];
  const uint8_t *payload; /* borrows */
  size_t len;
  uint8_t sig[KITH_SIG_LEN];
} envelope;

/* ---- envelope codec ---- */

static void pack_signed_part(kith_pack *pk, const envelope *e, uint32_t n) {
  kith_pack_array(pk, n);
  kith_pack_bin(pk, e->from, KITH_ID_LEN);
  kith_pack_bin(pk, e->to, KITH_ID_LEN);
  kith_pack_uint(pk, e->ts);
  kith_pack_bin(pk, e->nonce, NONCE_LEN);
  kith_pack_bin(pk, e->payload, e->len);
}

static kith_err signed_bytes(const envelope *e, uint8_t **out, size_t *len) {
  kith_pack pk;
  kith_pack_init(&pk);
  pack_signed_part(&pk, e, 5);
  kith_err err = kith_pack_take(&pk, out, len);
  kith_pack_clear(&pk);
  return err;
}

/* pad < 0: the 6-array; otherwise the 7-array with pad zero bytes. */
static kith_err seal_envelope(const envelope *e, long pad, uint8_t **out,
                              size_t *out_len) {
  static const uint8_t zeros[KITH_SIGNAL_MAX];
  kith_pack pk;
  kith_pack_init(&pk);
  pack_signed_part(&pk, e, pad < 0 ? 6 : 7);
  kith_pack_bin(&pk, e->sig, KITH_SIG_LEN);
  if (pad >= 0)
    kith_pack_bin(&pk, zeros, (size_t)pad);
  uint8_t *plain = NULL;
  size_t plen = 0;
  kith_err err = kith_pack_take(&pk, &plain, &plen);
  kith_pack_clear(&pk);
  if (err != KITH_OK)
    return err;
  *out = NULL;
  *out_len = plen + KITH_SEAL_OVERHEAD;
  if (*out_len > KITH_SIGNAL_MAX) {
    g_free(plain);
    return KITH_ERR_LIMIT;
  }
  *out = g_malloc(*out_len);
  err = kith_seal(e->to, plain, plen, *out);
  if (err != KITH_OK)
    g_clear_pointer(out, g_free);
  g_free(plain);
  return err;
}

kith_err kith_signal_seal_datagram(const kith_ident *me, const uint8_t to[32],
                                   const uint8_t *payload, size_t len,
                                   size_t min_size, uint64_t ts_ms,
                                   uint8_t **out, size_t *out_len) {
  if (me == NULL || to == NULL || (payload == NULL && len > 0) || out == NULL ||
      out_len == NULL)
    return KITH_ERR_ARG;
  *out = NULL;
  if (len > KITH_SIGNAL_MAX_PAYLOAD || min_size > KITH_SIGNAL_MAX)
    return KITH_ERR_LIMIT;
  envelope e = {.ts = ts_ms, .payload = payload, .len = len};
  memcpy(e.from, me->pk, KITH_ID_LEN);
  memcpy(e.to, to, KITH_ID_LEN);
  randombytes_buf(e.nonce, NONCE_LEN);
  uint8_t *sb = NULL;
  size_t sl = 0;
  kith_err err = signed_bytes(&e, &sb, &sl);
  if (err != KITH_OK)
    return err;
  kith_ident_sign(me, sb, sl, e.sig);
  g_free(sb);
  err = seal_envelope(&e, -1, out, out_len);
  /* Pad: the 7th element costs a 2-byte header (3 past 255 bytes), so grow
   * it until the datagram reaches min_size (overshoot is at most 1 byte). */
  for (long pad = (long)min_size - (long)*out_len - 2;
       err == KITH_OK && *out_len < min_size; pad++) {
    g_clear_pointer(out, g_free);
    err = seal_envelope(&e, pad < 0 ? 0 : pad, out, out_len);
  }
  return err;
}

static kith_err decode_fields(const msgpack_object *f, uint32_t n,
                              envelope *e) {
  const uint8_t *pad;
  size_t padlen = 0;
  if (kith_codec_bin_fixed(&f[0], e->from, KITH_ID_LEN) != KITH_OK ||
      kith_codec_bin_fixed(&f[1], e->to, KITH_ID_LEN) != KITH_OK ||
      kith_codec_uint(&f[2], UINT64_MAX, &e->ts) != KITH_OK ||
      kith_codec_bin_fixed(&f[3], e->nonce, NONCE_LEN) != KITH_OK ||
      kith_codec_bin(&f[4], KITH_SIGNAL_MAX_PAYLOAD, &e->payload, &e->len) !=
          KITH_OK ||
      kith_codec_bin_fixed(&f[5], e->sig, KITH_SIG_LEN) != KITH_OK)
    return KITH_ERR_DECODE;
  if (n == 7 &&
      kith_codec_bin(&f[6], KITH_SIGNAL_MAX, &pad, &padlen) != KITH_OK)
    return KITH_ERR_DECODE;
  for (size_t i = 0; i < padlen; i++)
    if (pad[i] != 0)
      return KITH_ERR_DECODE;
  return KITH_OK;
}

static kith_err decode_envelope(const msgpack_unpacked *u, envelope *e) {
  const msgpack_object *f;
  const msgpack_object *o = &u->data;
  if (o->type != MSGPACK_OBJECT_ARRAY ||
      (o->via.array.size != 6 && o->via.array.size != 7) ||
      kith_codec_array(o, o->via.array.size, &f) != KITH_OK)
    return KITH_ERR_DECODE;
  return decode_fields(f, o->via.array.size, e);
}

static kith_err verify_sig(const envelope *e) {
  uint8_t *sb = NULL;
  size_t sl = 0;
  kith_err err = signed_bytes(e, &sb, &sl);
  if (err == KITH_OK)
    err = kith_sig_verify(e->from, sb, sl, e->sig);
  g_free(sb);
  return err;
}

/* ---- limits ---- */

/* The source's IPv4 address (the socket is IPv4 only), network order. */
static gboolean source_ip(GSocketAddress *src, uint8_t ip[4]) {
  if (!G_IS_INET_SOCKET_ADDRESS(src))
    return FALSE;
  GInetAddress *ia =
      g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(src));
  if (g_inet_address_get_family(ia) != G_SOCKET_FAMILY_IPV4)
    return FALSE;
  memcpy(ip, g_inet_address_to_bytes(ia), 4);
  return TRUE;
}

/* May a datagram from ip be opened: its source's bucket first (a source
 * over its rate does not spend the shared budget), then the budget all
 * sources share. A new source always gets a bucket (core/ratelimit.h). */
static gboolean may_open(kith_signal *s, const uint8_t ip[4]) {
  uint64_t now = (uint64_t)(g_get_monotonic_time() / 1000);
  return kith_ratelimit_take(s->sources, ip, 4, 1, now) &&
         kith_bucket_take(&s->opened, KITH_SIGNAL_OPEN_RATE,
                          KITH_SIGNAL_OPEN_BURST, 1, now);
}

/* ---- receiving ---- */

static int64_t now_ms(void) {
  return g_get_real_time() / 1000;
}

static gboolean is_fresh(uint64_t ts, int64_t now) {
  if (ts > (uint64_t)INT64_MAX / 2)
    return FALSE;
  int64_t d = (int64_t)ts - now;
  return d <= KITH_SIGNAL_SKEW_MS && d >= -KITH_SIGNAL_SKEW_MS;
}

kith_err kith_signal_open_datagram(const kith_ident *me, const uint8_t *dg,
                                   size_t len, int64_t now_ms,
                                   kith_signal_opened *o) {
  uint8_t plain[KITH_SIGNAL_MAX];
  msgpack_unpacked u;
  envelope e;

  if (len <= KITH_SEAL_OVERHEAD || len > KITH_SIGNAL_MAX)
    return KITH_ERR_DECODE;
  if (kith_unseal(me, dg, len, plain) != KITH_OK)
    return KITH_ERR_CRYPTO;
  msgpack_unpacked_init(&u);
  kith_err err = kith_codec_unpack(plain, len - KITH_SEAL_OVERHEAD, &u);
  if (err == KITH_OK)
    err = decode_envelope(&u, &e);
  if (err == KITH_OK && (sodium_memcmp(e.to, me->pk, KITH_ID_LEN) != 0 ||
                         !is_fresh(e.ts, now_ms)))
    err = KITH_ERR_PROTOCOL;
  if (err == KITH_OK)
    err = verify_sig(&e);
  if (err == KITH_OK) {
    memcpy(o->from, e.from, KITH_ID_LEN);
    o->ts_ms = e.ts;
    memcpy(o->nonce, e.nonce, NONCE_LEN);
    memcpy(o->payload, e.payload, e.len);
    o->len = e.len;
  }
  msgpack_unpacked_destroy(&u);
  sodium_memzero(plain, sizeof plain);
  return err;
}

/* Opens, checks and delivers one datagram; FALSE if it was dropped. */
static gboolean accept_datagram(kith_signal *s, const uint8_t *buf, size_t len,
                                GSocketAddress *src) {
  uint8_t ip[4];
  kith_signal_opened o;
  int64_t now = now_ms();

  if (len <= KITH_SEAL_OVERHEAD || len > KITH_SIGNAL_MAX ||
      !source_ip(src, ip) || !may_open(s, ip))
    return FALSE;
  gboolean ok =
      kith_signal_open_datagram(s->me, buf, len, now, &o) == KITH_OK &&
      kith_replay_check(s->seen, o.nonce, ip, sizeof ip,
                        o.ts_ms + KITH_SIGNAL_SKEW_MS, (uint64_t)now);
  if (ok && s->cb != NULL) {
    kith_signal_msg m = {.from = o.from,
                         .payload = o.payload,
                         .len = o.len,
                         .src = src,
                         .size = len,
                         .ts_ms = o.ts_ms};
    s->in_cb++;
    s->cb(s, &m, s->ud);
    s->in_cb--;
  }
  sodium_memzero(&o, sizeof o);
  return ok;
}

/* A STUN message shares the port and the source's rate limit; anything
 * that does not parse as STUN goes the kith way (protocol.md 8.7). */
static gboolean accept_stun(kith_signal *s, const uint8_t *buf, size_t len,
                            GSocketAddress *src) {
  uint8_t ip[4];
  kith_stun_kind k = kith_stun_classify(buf, len);
  if (k != KITH_STUN_REQUEST && k != KITH_STUN_RESPONSE)
    return FALSE;
  if (s->stun_cb == NULL || !source_ip(src, ip) || !may_open(s, ip)) {
    s->dropped++;
    return TRUE;
  }
  s->in_cb++;
  s->stun_cb(s, buf, len, src, s->stun_ud);
  s->in_cb--;
  return TRUE;
}

static void destroy(kith_signal *s);

static gboolean on_readable(GSocket *sock, GIOCondition cond, gpointer data) {
  kith_signal *s = data;
  uint8_t buf[KITH_SIGNAL_MAX + 1];
  for (int i = 0; i < RECV_PER_DISPATCH && !s->free_pending; i++) {
    GSocketAddress *src = NULL;
    GError *err = NULL;
    gssize n =
        g_socket_receive_from(sock, &src, (gchar *)buf, sizeof buf, NULL, &err);
    if (n < 0) {
      gboolean again = g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
      g_error_free(err);
      if (again)
        break;
      continue; /* e.g. ICMP errors reported on the socket */
    }
    if (!accept_stun(s, buf, (size_t)n, src) &&
        !accept_datagram(s, buf, (size_t)n, src))
      s->dropped++;
    g_clear_object(&src);
  }
  if (s->free_pending) {
    destroy(s);
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
}

/* ---- life cycle ---- */

static kith_err open_socket(kith_signal *s, uint16_t port) {
  GError *err = NULL;
  s->sock = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                         G_SOCKET_PROTOCOL_UDP, &err);
  if (s->sock == NULL) {
    g_error_free(err);
    return KITH_ERR_IO;
  }
  g_socket_set_blocking(s->sock, FALSE);
  GInetAddress *any = g_inet_address_new_any(G_SOCKET_FAMILY_IPV4);
  GSocketAddress *sa = g_inet_socket_address_new(any, port);
  gboolean ok = g_socket_bind(s->sock, sa, FALSE, &err);
  g_object_unref(sa);
  g_object_unref(any);
  if (!ok) {
    kith_err e = g_error_matches(err, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE)
                     ? KITH_ERR_BUSY
                     : KITH_ERR_IO;
    g_error_free(err);
    return e;
  }
  GSocketAddress *local = g_socket_get_local_address(s->sock, NULL);
  if (local == NULL)
    return KITH_ERR_IO;
  s->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
  g_object_unref(local);
  return KITH_OK;
}

kith_err kith_signal_new(GMainContext *ctx, const kith_ident *me, uint16_t port,
                         kith_signal_cb cb, void *ud, kith_signal **out) {
  if (me == NULL || out == NULL)
    return KITH_ERR_ARG;
  *out = NULL;
  kith_signal *s = g_new0(kith_signal, 1);
  s->me = me;
  s->cb = cb;
  s->ud = ud;
  s->ctx = ctx != NULL ? g_main_context_ref(ctx) : NULL;
  s->seen = kith_replay_new(REPLAY_CAP, REPLAY_PER_SOURCE);
  s->sources =
      kith_ratelimit_new(KITH_SIGNAL_RATE, KITH_SIGNAL_BURST, SOURCES_CAP);
  kith_bucket_init(&s->opened, KITH_SIGNAL_OPEN_BURST,
                   (uint64_t)(g_get_monotonic_time() / 1000));
  kith_err e = open_socket(s, port);
  if (e != KITH_OK) {
    destroy(s);
    return e;
  }
  s->src = g_socket_create_source(s->sock, G_IO_IN, NULL);
  g_source_set_callback(s->src, G_SOURCE_FUNC(on_readable), s, NULL);
  g_source_attach(s->src, ctx);
  *out = s;
  return KITH_OK;
}

static void destroy(kith_signal *s) {
  if (s->src != NULL) {
    g_source_destroy(s->src);
    g_source_unref(s->src);
  }
  if (s->sock != NULL) {
    g_socket_close(s->sock, NULL);
    g_object_unref(s->sock);
  }
  kith_replay_free(s->seen);
  kith_ratelimit_free(s->sources);
  if (s->ctx != NULL)
    g_main_context_unref(s->ctx);
  g_free(s);
}

void kith_signal_free(kith_signal *s) {
  if (s == NULL)
    return;
  if (s->in_cb) { /* on_readable finishes the job once the callback returns */
    s->free_pending = 1;
    s->cb = NULL;
    s->stun_cb = NULL;
    return;
  }
  destroy(s);
}

uint16_t kith_signal_port(const kith_signal *s) {
  return s != NULL ? s->port : 0;
}

void kith_signal_set_stun(kith_signal *s, kith_signal_stun_cb cb, void *ud) {
  if (s == NULL)
    return;
  s->stun_cb = cb;
  s->stun_ud = ud;
}

uint64_t kith_signal_dropped(const kith_signal *s) {
  return s != NULL ? s->dropped : 0;
}

/* ---- sending ---- */

static kith_err send_to(kith_signal *s, GSocketAddress *dst, const uint8_t *buf,
                        size_t len) {
  GError *err = NULL;
  gssize n =
      g_socket_send_to(s->sock, dst, (const gchar *)buf, len, NULL, &err);
  if (n < 0) {
    g_error_free(err);
    return KITH_ERR_IO;
  }
  return (size_t)n == len ? KITH_OK : KITH_ERR_IO;
}

kith_err kith_signal_send_raw(kith_signal *s, GSocketAddress *dst,
                              const uint8_t *buf, size_t len) {
  if (s == NULL || dst == NULL || buf == NULL || s->free_pending)
    return KITH_ERR_ARG;
  return send_to(s, dst, buf, len);
}

kith_err kith_signal_send(kith_signal *s, const uint8_t to[32],
                          const char *host, uint16_t port,
                          const uint8_t *payload, size_t len, size_t min_size) {
  if (s == NULL || to == NULL || host == NULL || port == 0 || s->free_pending)
    return KITH_ERR_ARG;
  GInetAddress *ia = g_inet_address_new_from_string(host);
  if (ia == NULL || g_inet_address_get_family(ia) != G_SOCKET_FAMILY_IPV4) {
    g_clear_object(&ia);
    return KITH_ERR_ARG;
  }
  uint8_t *dg = NULL;
  size_t dlen = 0;
  kith_err e = kith_signal_seal_datagram(s->me, to, payload, len, min_size,
                                         (uint64_t)now_ms(), &dg, &dlen);
  if (e == KITH_OK) {
    GSocketAddress *dst = g_inet_socket_address_new(ia, port);
    e = send_to(s, dst, dg, dlen);
    g_object_unref(dst);
  }
  g_free(dg);
  g_object_unref(ia);
  return e;
}

kith_err kith_signal_reply(kith_signal *s, const uint8_t to[32],
                           GSocketAddress *dst, const uint8_t *payload,
                           size_t len, size_t request_size) {
  if (s == NULL || to == NULL || dst == NULL || s->free_pending)
    return KITH_ERR_ARG;
  uint8_t *dg = NULL;
  size_t dlen = 0;
  kith_err e = kith_signal_seal_datagram(s->me, to, payload, len, 0,
                                         (uint64_t)now_ms(), &dg, &dlen);
  if (e == KITH_OK && dlen > request_size)
    e = KITH_ERR_LIMIT; /* never amplify: the reply may not outgrow the ask */
  if (e == KITH_OK)
    e = send_to(s, dst, dg, dlen);
  g_free(dg);
  return e;
}

/* ---- signalling through a relay ---- */

static void pack_relayed(kith_pack *pk, uint32_t n, const uint8_t from[32],
                         const uint8_t to[32], uint64_t ts,
                         const uint8_t *payload, size_t len) {
  kith_pack_array(pk, n);
  kith_pack_bin(pk, from, KITH_ID_LEN);
  kith_pack_bin(pk, to, KITH_ID_LEN);
  kith_pack_uint(pk, ts);
  kith_pack_bin(pk, payload, len);
}

kith_err kith_signal_seal_relayed(const kith_ident *me, const uint8_t to[32],
                                  const uint8_t *payload, size_t len,
                                  uint64_t ts_ms, uint8_t **out,
                                  size_t *out_len) {
  kith_pack pk;
  uint8_t *plain = NULL, sig[KITH_SIG_LEN];
  size_t plen = 0;
  kith_err err;

  *out = NULL;
  kith_pack_init(&pk);
  pack_relayed(&pk, 4, me->pk, to, ts_ms, payload, len);
  err = kith_pack_take(&pk, &plain, &plen);
  if (err != KITH_OK)
    return err;
  kith_ident_sign(me, plain, plen, sig);
  g_free(plain);
  kith_pack_init(&pk);
  pack_relayed(&pk, 5, me->pk, to, ts_ms, payload, len);
  kith_pack_bin(&pk, sig, KITH_SIG_LEN);
  err = kith_pack_take(&pk, &plain, &plen);
  if (err == KITH_OK && plen + KITH_SEAL_OVERHEAD > KITH_SIGNAL_MAX)
    err = KITH_ERR_LIMIT;
  if (err == KITH_OK) {
    *out = g_malloc(plen + KITH_SEAL_OVERHEAD);
    *out_len = plen + KITH_SEAL_OVERHEAD;
    err = kith_seal(to, plain, plen, *out);
    if (err != KITH_OK)
      g_clear_pointer(out, g_free);
  }
  g_free(plain);
  return err;
}

/* The checks after decoding: addressing, time, signature, replay. */
static kith_err check_relayed(const kith_ident *me, kith_replay *seen,
                              const uint8_t via[32], const uint8_t from[32],
                              const msgpack_object *f, uint64_t now_ms,
                              const uint8_t **payload, size_t *plen,
                              uint64_t *ts) {
  uint8_t sfrom[32], sto[32], sig[KITH_SIG_LEN], tag[KITH_REPLAY_TAG_LEN];
  uint8_t *signed_bytes = NULL;
  size_t slen = 0;
  kith_pack pk;
  kith_err err;

  if (kith_codec_bin_fixed(&f[0], sfrom, 32) != KITH_OK ||
      kith_codec_bin_fixed(&f[1], sto, 32) != KITH_OK ||
      kith_codec_uint(&f[2], UINT64_MAX, ts) != KITH_OK ||
      kith_codec_bin(&f[3], KITH_SIGNAL_MAX, payload, plen) != KITH_OK ||
      kith_codec_bin_fixed(&f[4], sig, KITH_SIG_LEN) != KITH_OK)
    return KITH_ERR_DECODE;
  if (memcmp(sfrom, from, 32) != 0 || memcmp(sto, me->pk, 32) != 0)
    return KITH_ERR_PROTOCOL;
  if (*ts > UINT64_MAX / 2 || *ts + KITH_SIGNAL_SKEW_MS < now_ms ||
      *ts > now_ms + KITH_SIGNAL_SKEW_MS)
    return KITH_ERR_EXPIRED;
  kith_pack_init(&pk);
  pack_relayed(&pk, 4, sfrom, sto, *ts, *payload, *plen);
  err = kith_pack_take(&pk, &signed_bytes, &slen);
  if (err == KITH_OK)
    err = kith_sig_verify(from, signed_bytes, slen, sig);
  g_free(signed_bytes);
  if (err != KITH_OK)
    return err == KITH_ERR_NOMEM ? err : KITH_ERR_SIGNATURE;
  crypto_generichash(tag, sizeof tag, sig, KITH_SIG_LEN, NULL, 0);
  if (!kith_replay_check(seen, tag, via, KITH_ID_LEN, *ts + KITH_SIGNAL_SKEW_MS,
                         now_ms))
    return KITH_ERR_DUPLICATE;
  return KITH_OK;
}

kith_err kith_signal_open_relayed(const kith_ident *me, kith_replay *seen,
                                  const uint8_t via[32], const uint8_t from[32],
                                  const uint8_t *box, size_t len,
                                  uint64_t now_ms, uint8_t **payload,
                                  size_t *payload_len, uint64_t *ts_ms) {
  uint8_t plain[KITH_SIGNAL_MAX];
  msgpack_unpacked u;
  const msgpack_object *f;
  const uint8_t *p = NULL;
  size_t plen = 0;
  kith_err err;

  *payload = NULL;
  if (len <= KITH_SEAL_OVERHEAD || len > KITH_SIGNAL_MAX)
    return KITH_ERR_DECODE;
  if (kith_unseal(me, box, len, plain) != KITH_OK)
    return KITH_ERR_CRYPTO;
  msgpack_unpacked_init(&u);
  err = kith_codec_unpack(plain, len - KITH_SEAL_OVERHEAD, &u) == KITH_OK &&
                kith_codec_array(&u.data, 5, &f) == KITH_OK
            ? check_relayed(me, seen, via, from, f, now_ms, &p, &plen, ts_ms)
            : KITH_ERR_DECODE;
  if (err == KITH_OK) {
    *payload = g_memdup2(p, plen);
    *payload_len = plen;
  }
  msgpack_unpacked_destroy(&u);
  sodium_memzero(plain, sizeof plain);
  return err;
}
