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

/* One ADDRS entry [id bin32, host str, port uint, version uint]; 0 if
 * malformed. */
static int read_addr(const msgpack_object *o, kith_wire_addr *a) {
  const msgpack_object *e;
  const char *host;
  size_t hlen;
  uint64_t port;

  if (kith_codec_array(o, 4, &e) != KITH_OK ||
      kith_codec_bin_fixed(&e[0], a->id, KITH_ID_LEN) != KITH_OK ||
      kith_codec_str(&e[1], KITH_WIRE_HOST_MAX, &host, &hlen) != KITH_OK ||
      kith_codec_uint(&e[2], 65535, &port) != KITH_OK || port == 0 ||
      kith_codec_uint(&e[3], UINT64_MAX, &a->version) != KITH_OK)
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

static kith_err read_relay(const msgpack_object *it, kith_wire_frame *f) {
  if (kith_codec_uint(&it[1], 1, &f->relay_kind) != KITH_OK ||
      kith_codec_bin_fixed(&it[2], f->to, KITH_ID_LEN) != KITH_OK ||
      kith_codec_bin_fixed(&it[3], f->from, KITH_ID_LEN) != KITH_OK ||
      kith_codec_bin(&it[4], KITH_SESSION_MAX_RECORD + 4, &f->data, &f->len) !=
          KITH_OK)
    return KITH_ERR_DECODE;
  return KITH_OK;
}

/* A group id (or its first KITH_WIRE_GROUP_TAG_LEN bytes) and an engine
 * frame. */
static kith_err read_gossip(const msgpack_object *it, kith_wire_frame *f) {
  const uint8_t *gid;
  if (kith_codec_bin(&it[1], 32, &gid, &f->gid_len) != KITH_OK ||
      (f->gid_len != 32 && f->gid_len != KITH_WIRE_GROUP_TAG_LEN) ||
      kith_codec_bin(&it[2], KITH_GOSSIP_MAX_FRAME, &f->data, &f->len) !=
          KITH_OK)
    return KITH_ERR_DECODE;
  memcpy(f->gid, gid, f->gid_len);
  return KITH_OK;
}

/* An attempt number and ICE parameters (validated by their decoder). */
static kith_err read_path(const msgpack_object *it, kith_wire_frame *f) {
  const uint8_t *b;
  size_t blen;

  if (kith_codec_uint(&it[1], UINT64_MAX, &f->t) != KITH_OK ||
      kith_codec_bin(&it[2], KITH_WIRE_PARAMS_MAX, &b, &blen) != KITH_OK ||
      kith_ice_params_decode(b, blen, &f->params) != KITH_OK)
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
  case 2 * 256 + FRAME_ELSEWHERE:
  case 2 * 256 + FRAME_MOVE:
    return kith_codec_uint(&it[1], UINT64_MAX, &f->t);
  case 3 * 256 + FRAME_PATH_OFFER:
  case 3 * 256 + FRAME_PATH_ANSWER:
    return read_path(it, f);
  case 2 * 256 + FRAME_ADDRS:
    return read_addrs(&it[1], f);
  case 3 * 256 + FRAME_GOSSIP:
    return read_gossip(it, f);
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

static kith_err read_signal(const msgpack_object *it, uint32_t n,
                            kith_wire_signal *s) {
  const uint8_t *p;
  size_t plen;

  if (kith_codec_uint(&it[0], SIG_ELSEWHERE, &s->kind) != KITH_OK ||
      s->kind == 0 ||
      n != (s->kind == SIG_OFFER || s->kind == SIG_ANSWER ? 5u : 3u))
    return KITH_ERR_DECODE;
  if (s->kind == SIG_ELSEWHERE)
    return kith_codec_uint(&it[1], UINT64_MAX, &s->since_ms);
  if (s->kind == SIG_REFUSE) {
    if (kith_codec_str(&it[1], KITH_WIRE_REASON_MAX, (const char **)&p,
                       &plen) != KITH_OK)
      return KITH_ERR_DECODE;
    memcpy(s->reason, p, plen);
    s->reason[plen] = '\0';
    return KITH_OK;
  }
  if (kith_codec_bin(&it[1], KITH_SIGNAL_MAX, &p, &plen) != KITH_OK ||
      kith_ice_params_decode(p, plen, &s->params) != KITH_OK ||
      kith_codec_uint(&it[3], UINT64_MAX, &s->since_ms) != KITH_OK ||
      kith_codec_bin_fixed(&it[4], s->nonce, sizeof s->nonce) != KITH_OK)
    return KITH_ERR_DECODE;
  /* An answer carries no join request. An offer's join request that is not
   * a bin of the right size still counts as one (has_join, join_len 0): the
   * admitter refuses it. */
  if (s->kind == SIG_ANSWER && it[2].type != MSGPACK_OBJECT_NIL)
    return KITH_ERR_DECODE;
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
  kith_err err =
      kith_codec_unpack(buf, len, &u) == KITH_OK &&
              kith_codec_array(&u.data, UINT32_MAX, &it) == KITH_OK &&
              u.data.via.array.size >= 1
          ? read_signal(it, u.data.via.array.size, s)
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
