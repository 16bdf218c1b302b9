/* kith: decoders of link frames, signal payloads, relayed signals and join
 * requests (wire.h). */
#include "wire.h"

#include <gio/gio.h>
#include <sodium.h>
#include <string.h>

#include "../core/codec.h"
#include "../core/event.h"
#include "../core/gossip.h"
#include "session.h"

/* ---- link frames ---- */

/* One ADDRS entry [id bin32, host str, port uint]; 0 if malformed. */
static int read_addr(const msgpack_object *o, kith_wire_addr *a) {
  const msgpack_object *e;
  const char *host;
  size_t hlen;
  uint64_t port;

  if (kith_codec_array(o, 3, &e) != KITH_OK ||
      kith_codec_bin_fixed(&e[0], a->id, KITH_ID_LEN) != KITH_OK ||
      kith_codec_str(&e[1], KITH_WIRE_HOST_MAX, &host, &hlen) != KITH_OK ||
      kith_codec_uint(&e[2], 65535, &port) != KITH_OK || port == 0)
    return 0;
  memcpy(a->host, host, hlen);
  a->host[hlen] = '\0';
  a->port = (uint16_t)port;
  GInetAddress *ia = g_inet_address_new_from_string(a->host);
  if (ia == NULL)
    return 0;
  g_object_unref(ia);
  return 1;
}

static kith_err read_addrs(const msgpack_object *list, kith_wire_frame *f) {
  if (list->type != MSGPACK_OBJECT_ARRAY ||
      list->via.array.size > KITH_WIRE_ADDRS_MAX)
    return KITH_ERR_DECODE;
  for (uint32_t i = 0; i < list->via.array.size; i++)
    if (read_addr(&list->via.array.ptr[i], &f->addrs[f->n_addrs]))
      f->n_addrs++;
  return KITH_OK;
}

static kith_err read_have(const msgpack_object *it, kith_wire_frame *f) {
  if (kith_codec_bin_fixed(&it[1], f->gid, 32) != KITH_OK ||
      kith_codec_bin(&it[2], KITH_WIRE_HAVE_IDS_MAX * 32, &f->data, &f->len) !=
          KITH_OK ||
      f->len % 32 != 0 || it[3].type != MSGPACK_OBJECT_BOOLEAN)
    return KITH_ERR_DECODE;
  f->final = it[3].via.boolean;
  return KITH_OK;
}

static kith_err read_relay(const msgpack_object *it, kith_wire_frame *f) {
  if (kith_codec_uint(&it[1], 1, &f->relay_kind) != KITH_OK ||
      kith_codec_bin_fixed(&it[2], f->to, KITH_ID_LEN) != KITH_OK ||
      kith_codec_bin_fixed(&it[3], f->from, KITH_ID_LEN) != KITH_OK ||
      kith_codec_bin(&it[4], KITH_SESSION_MAX_RECORD + 4, &f->data, &f->len) !=
          KITH_OK)
    return KITH_ERR_DECODE;
  return KITH_OK;
}

/* A group id and one bin of at most max bytes: EVENT and GOSSIP. */
static kith_err read_group_bin(const msgpack_object *it, size_t max,
                               kith_wire_frame *f) {
  if (kith_codec_bin_fixed(&it[1], f->gid, 32) != KITH_OK ||
      kith_codec_bin(&it[2], max, &f->data, &f->len) != KITH_OK)
    return KITH_ERR_DECODE;
  return KITH_OK;
}

/* Frames are told apart by type and arity: a frame of a known type with
 * another number of fields comes from a newer peer and is not ours. */
static kith_err read_fields(const msgpack_object *it, uint32_t n, uint64_t type,
                            kith_wire_frame *f) {
  switch (n * 256 + type) {
  case 2 * 256 + FRAME_PING:
  case 2 * 256 + FRAME_PONG:
    return kith_codec_uint(&it[1], UINT64_MAX, &f->t);
  case 3 * 256 + FRAME_EVENT:
    return read_group_bin(it, KITH_EVENT_MAX, f);
  case 4 * 256 + FRAME_HAVE:
    return read_have(it, f);
  case 2 * 256 + FRAME_ADDRS:
    return read_addrs(&it[1], f);
  case 3 * 256 + FRAME_GOSSIP:
    return read_group_bin(it, KITH_GOSSIP_MAX_FRAME, f);
  case 5 * 256 + FRAME_RELAY:
    return read_relay(it, f);
  case 1 * 256 + FRAME_BYE:
    return KITH_OK;
  default:
    f->type = 0;
    return KITH_OK;
  }
}

kith_err kith_wire_frame_decode(const uint8_t *buf, size_t len,
                                kith_wire_frame *f) {
  memset(f, 0, offsetof(kith_wire_frame, u));
  msgpack_unpacked_init(&f->u);
  const msgpack_object *o = &f->u.data;
  if (kith_codec_unpack(buf, len, &f->u) != KITH_OK ||
      o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 1 ||
      kith_codec_uint(&o->via.array.ptr[0], 255, &f->type) != KITH_OK)
    return KITH_ERR_DECODE;
  return read_fields(o->via.array.ptr, o->via.array.size, f->type, f);
}

void kith_wire_frame_clear(kith_wire_frame *f) {
  msgpack_unpacked_destroy(&f->u);
  msgpack_unpacked_init(&f->u);
}

/* ---- signal payloads and join requests ---- */

static kith_err read_signal(const msgpack_object *it, kith_wire_signal *s) {
  const uint8_t *p;
  size_t plen;

  if (kith_codec_uint(&it[0], SIG_REFUSE, &s->kind) != KITH_OK || s->kind == 0)
    return KITH_ERR_DECODE;
  if (s->kind == SIG_REFUSE) {
    if (kith_codec_str(&it[1], KITH_WIRE_REASON_MAX, (const char **)&p,
                       &plen) != KITH_OK)
      return KITH_ERR_DECODE;
    memcpy(s->reason, p, plen);
    s->reason[plen] = '\0';
    return KITH_OK;
  }
  if (kith_codec_bin(&it[1], KITH_SIGNAL_MAX, &p, &plen) != KITH_OK ||
      kith_ice_params_decode(p, plen, &s->params) != KITH_OK)
    return KITH_ERR_DECODE;
  /* An offer's join request that is not a bin of the right size still
   * counts as one (has_join, join_len 0): the admitter refuses it. */
  s->has_join = s->kind == SIG_OFFER && it[2].type != MSGPACK_OBJECT_NIL;
  if (s->has_join &&
      kith_codec_bin(&it[2], KITH_WIRE_JOIN_MAX, &p, &plen) == KITH_OK) {
    memcpy(s->join, p, plen);
    s->join_len = plen;
  }
  return KITH_OK;
}

kith_err kith_wire_signal_decode(const uint8_t *buf, size_t len,
                                 kith_wire_signal *s) {
  msgpack_unpacked u;
  const msgpack_object *it;

  memset(s, 0, sizeof *s);
  msgpack_unpacked_init(&u);
  kith_err err = kith_codec_unpack(buf, len, &u) == KITH_OK &&
                         kith_codec_array(&u.data, 3, &it) == KITH_OK
                     ? read_signal(it, s)
                     : KITH_ERR_DECODE;
  msgpack_unpacked_destroy(&u);
  return err;
}

kith_err kith_wire_join_decode(const uint8_t *buf, size_t len,
                               kith_wire_join *j) {
  msgpack_unpacked u;
  const msgpack_object *it;
  const char *name;
  size_t nlen;
  kith_err err = KITH_ERR_DECODE;

  memset(j, 0, sizeof *j);
  msgpack_unpacked_init(&u);
  if (len <= KITH_WIRE_JOIN_MAX && kith_codec_unpack(buf, len, &u) == KITH_OK &&
      kith_codec_array(&u.data, 4, &it) == KITH_OK &&
      kith_codec_bin_fixed(&it[0], j->gid, 32) == KITH_OK &&
      kith_codec_bin_fixed(&it[1], j->invite_pk, 32) == KITH_OK &&
      kith_codec_bin_fixed(&it[2], j->sig, KITH_SIG_LEN) == KITH_OK &&
      kith_codec_str(&it[3], KITH_NAME_MAX, &name, &nlen) == KITH_OK) {
    memcpy(j->name, name, nlen);
    j->name[nlen] = '\0';
    err = KITH_OK;
  }
  msgpack_unpacked_destroy(&u);
  return err;
}

/* ---- relayed signals ---- */

typedef struct relayed {
  uint8_t from[KITH_ID_LEN], to[KITH_ID_LEN], sig[KITH_SIG_LEN];
  uint64_t ts;
  const uint8_t *payload; /* borrows from the unpacked object */
  size_t len;
} relayed;

static kith_err read_relayed(const msgpack_object *o, relayed *r) {
  const msgpack_object *f;

  if (kith_codec_array(o, 5, &f) != KITH_OK ||
      kith_codec_bin_fixed(&f[0], r->from, KITH_ID_LEN) != KITH_OK ||
      kith_codec_bin_fixed(&f[1], r->to, KITH_ID_LEN) != KITH_OK ||
      kith_codec_uint(&f[2], UINT64_MAX, &r->ts) != KITH_OK ||
      kith_codec_bin(&f[3], KITH_SIGNAL_MAX, &r->payload, &r->len) != KITH_OK ||
      kith_codec_bin_fixed(&f[4], r->sig, KITH_SIG_LEN) != KITH_OK)
    return KITH_ERR_DECODE;
  return KITH_OK;
}

/* The signature covers the first four elements packed as an array. */
static kith_err verify_relayed(const relayed *r) {
  kith_pack pk;
  uint8_t *signed_bytes;
  size_t slen;

  kith_pack_init(&pk);
  kith_pack_array(&pk, 4);
  kith_pack_bin(&pk, r->from, KITH_ID_LEN);
  kith_pack_bin(&pk, r->to, KITH_ID_LEN);
  kith_pack_uint(&pk, r->ts);
  kith_pack_bin(&pk, r->payload, r->len);
  kith_err err = kith_pack_take(&pk, &signed_bytes, &slen);
  if (err == KITH_OK)
    err = kith_sig_verify(r->from, signed_bytes, slen, r->sig);
  g_free(signed_bytes);
  return err;
}

static kith_err check_relayed(const kith_ident *me, const uint8_t from[32],
                              const relayed *r, uint64_t now_ms) {
  if (sodium_memcmp(r->from, from, KITH_ID_LEN) != 0 ||
      sodium_memcmp(r->to, me->pk, KITH_ID_LEN) != 0 ||
      r->ts > UINT64_MAX - KITH_WIRE_RELAY_SKEW_MS ||
      r->ts + KITH_WIRE_RELAY_SKEW_MS < now_ms ||
      r->ts > now_ms + KITH_WIRE_RELAY_SKEW_MS)
    return KITH_ERR_PROTOCOL;
  return verify_relayed(r);
}

kith_err kith_wire_relayed_open(const kith_ident *me, const uint8_t from[32],
                                const uint8_t *box, size_t len, uint64_t now_ms,
                                uint8_t *payload, size_t *plen) {
  uint8_t plain[KITH_SIGNAL_MAX];
  msgpack_unpacked u;
  relayed r;

  *plen = 0;
  if (len <= KITH_SEAL_OVERHEAD || len > KITH_SIGNAL_MAX)
    return KITH_ERR_DECODE;
  if (kith_unseal(me, box, len, plain) != KITH_OK)
    return KITH_ERR_CRYPTO;
  msgpack_unpacked_init(&u);
  kith_err err = kith_codec_unpack(plain, len - KITH_SEAL_OVERHEAD, &u);
  if (err == KITH_OK)
    err = read_relayed(&u.data, &r);
  if (err == KITH_OK)
    err = check_relayed(me, from, &r, now_ms);
  if (err == KITH_OK) {
    memcpy(payload, r.payload, r.len);
    *plen = r.len;
  }
  msgpack_unpacked_destroy(&u);
  sodium_memzero(plain, sizeof plain);
  return err;
}
