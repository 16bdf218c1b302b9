/* kith: signed group events (see event.h).
 *
 * The signed bytes are produced by re-packing the first eight decoded
 * fields with kith_pack; because kith_codec_unpack accepts only canonical
 * input, this equals "an 8-array header followed by the raw bytes of the
 * first eight elements". */
#include "event.h"

#include <glib.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define DEPTH_MAX (UINT64_C(1) << 40)
#define TS_MAX (UINT64_C(1) << 50)

void kith_event_clear(kith_event *ev) {
  g_free(ev->body);
  g_free(ev->raw);
  memset(ev, 0, sizeof *ev);
}

const char *kith_event_kind_name(uint32_t kind) {
  static const char *const names[] = {
      NULL,    "create", "invite",  "add",    "remove", "leave",  "role",
      "topic", "rekey",  "message", "ban",    "unban",  "revoke", "settings",
      "mute",  "react",  "edit",    "delete", "need",   "keys"};
  if (kind >= 1 && kind <= KITH_EV_KIND_MAX)
    return names[kind];
  return "unknown";
}

/* Packs the first eight elements (the signed part) without the header. */
static void pack_fields(kith_pack *p, const kith_event *ev) {
  kith_pack_uint(p, KITH_EVENT_VERSION);
  kith_pack_bin(p, ev->group_id, ev->kind == KITH_EV_CREATE ? 0 : 32);
  kith_pack_uint(p, ev->kind);
  kith_pack_bin(p, ev->author, KITH_ID_LEN);
  kith_pack_array(p, (uint32_t)ev->n_parents);
  for (size_t i = 0; i < ev->n_parents; i++)
    kith_pack_bin(p, ev->parents[i], KITH_EVENT_ID_LEN);
  kith_pack_uint(p, ev->depth);
  kith_pack_uint(p, ev->ts_ms);
  kith_pack_bin(p, ev->body, ev->body_len);
}

static kith_err signed_bytes(const kith_event *ev, uint8_t **out, size_t *len) {
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 8);
  pack_fields(&p, ev);
  return kith_pack_take(&p, out, len);
}

/* Field and shape rules shared by decode and build. */
static kith_err check_shape(const kith_event *ev) {
  if (ev->kind < 1 || ev->kind > KITH_EV_KIND_MAX)
    return KITH_ERR_DECODE;
  if (ev->n_parents > KITH_EVENT_MAX_PARENTS)
    return KITH_ERR_DECODE;
  if (ev->depth > DEPTH_MAX || ev->ts_ms > TS_MAX)
    return KITH_ERR_DECODE;
  if (ev->body_len > KITH_EVENT_MAX_BODY)
    return KITH_ERR_LIMIT;
  if (ev->kind == KITH_EV_CREATE)
    return ev->n_parents == 0 && ev->depth == 0 ? KITH_OK : KITH_ERR_DECODE;
  if (ev->n_parents == 0 || ev->depth == 0)
    return KITH_ERR_DECODE;
  for (size_t i = 1; i < ev->n_parents; i++)
    if (memcmp(ev->parents[i - 1], ev->parents[i], KITH_EVENT_ID_LEN) >= 0)
      return KITH_ERR_DECODE;
  return KITH_OK;
}

static kith_err read_parents(const msgpack_object *o, kith_event *ev) {
  if (o->type != MSGPACK_OBJECT_ARRAY ||
      o->via.array.size > KITH_EVENT_MAX_PARENTS)
    return KITH_ERR_DECODE;
  ev->n_parents = o->via.array.size;
  for (size_t i = 0; i < ev->n_parents; i++)
    if (kith_codec_bin_fixed(&o->via.array.ptr[i], ev->parents[i],
                             KITH_EVENT_ID_LEN) != KITH_OK)
      return KITH_ERR_DECODE;
  return KITH_OK;
}

static kith_err read_fields(const msgpack_object *root, kith_event *ev) {
  const msgpack_object *it;
  uint64_t v, kind;
  const uint8_t *gid, *body;
  size_t gid_len, body_len;
  if (kith_codec_array(root, 9, &it) != KITH_OK ||
      kith_codec_uint(&it[0], KITH_EVENT_VERSION, &v) != KITH_OK ||
      v != KITH_EVENT_VERSION ||
      kith_codec_bin(&it[1], 32, &gid, &gid_len) != KITH_OK ||
      kith_codec_uint(&it[2], KITH_EV_KIND_MAX, &kind) != KITH_OK ||
      kith_codec_bin_fixed(&it[3], ev->author, KITH_ID_LEN) != KITH_OK ||
      read_parents(&it[4], ev) != KITH_OK ||
      kith_codec_uint(&it[5], DEPTH_MAX, &ev->depth) != KITH_OK ||
      kith_codec_uint(&it[6], TS_MAX, &ev->ts_ms) != KITH_OK ||
      kith_codec_bin(&it[7], KITH_EVENT_MAX_BODY, &body, &body_len) !=
          KITH_OK ||
      kith_codec_bin_fixed(&it[8], ev->sig, KITH_SIG_LEN) != KITH_OK)
    return KITH_ERR_DECODE;
  ev->kind = (uint32_t)kind;
  if (gid_len != (kind == KITH_EV_CREATE ? 0 : 32))
    return KITH_ERR_DECODE;
  if (gid_len)
    memcpy(ev->group_id, gid, 32);
  ev->body = g_memdup2(body_len ? body : (const uint8_t *)"", body_len);
  ev->body_len = body_len;
  return check_shape(ev);
}

/* The canonical encoding ends with the signature as bin8 of 64 bytes
 * ("c4 40" and 64 bytes), and its 9-element array header is one byte, so
 * the signed bytes are an 8-element header and the raw bytes in between. */
static kith_err verify(const kith_event *ev, const uint8_t *raw, size_t len) {
  if (len < 1 + 66 || raw[0] != 0x99)
    return KITH_ERR_DECODE;
  uint8_t stack[1024];
  size_t n = len - 66;
  uint8_t *msg = n <= sizeof stack ? stack : g_malloc(n);
  msg[0] = 0x98;
  memcpy(msg + 1, raw + 1, n - 1);
  kith_err rc = kith_sig_verify(ev->author, msg, n, ev->sig);
  if (msg != stack)
    g_free(msg);
  return rc;
}

static kith_err decode(const uint8_t *buf, size_t len, kith_event *ev,
                       int check_sig) {
  memset(ev, 0, sizeof *ev);
  if (!buf || len == 0)
    return KITH_ERR_DECODE;
  if (len > KITH_EVENT_MAX)
    return KITH_ERR_LIMIT;
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  kith_err rc = kith_codec_unpack(buf, len, &u);
  if (rc == KITH_OK)
    rc = read_fields(&u.data, ev);
  msgpack_unpacked_destroy(&u);
  if (rc == KITH_OK && check_sig)
    rc = verify(ev, buf, len);
  if (rc != KITH_OK) {
    kith_event_clear(ev);
    return rc == KITH_ERR_NOMEM || rc == KITH_ERR_LIMIT ||
                   rc == KITH_ERR_SIGNATURE
               ? rc
               : KITH_ERR_DECODE;
  }
  ev->raw = g_memdup2(buf, len);
  ev->raw_len = len;
  crypto_generichash(ev->id, KITH_EVENT_ID_LEN, buf, len, NULL, 0);
  if (ev->kind == KITH_EV_CREATE)
    memcpy(ev->group_id, ev->id, 32);
  return KITH_OK;
}

kith_err kith_event_decode(const uint8_t *buf, size_t len, kith_event *ev) {
  return decode(buf, len, ev, 1);
}

kith_err kith_event_decode_trusted(const uint8_t *buf, size_t len,
                                   kith_event *ev) {
  return decode(buf, len, ev, 0);
}

static int cmp_id(const void *a, const void *b) {
  return memcmp(a, b, KITH_EVENT_ID_LEN);
}

kith_err kith_event_build(kith_event *ev, const kith_ident *me,
                          const uint8_t *body, size_t body_len) {
  if (!ev || !me || (!body && body_len) ||
      ev->n_parents > KITH_EVENT_MAX_PARENTS)
    return KITH_ERR_ARG;
  g_free(ev->raw);
  g_free(ev->body);
  ev->raw = NULL;
  ev->body = g_memdup2(body_len ? body : (const uint8_t *)"", body_len);
  ev->body_len = body_len;
  memcpy(ev->author, me->pk, KITH_ID_LEN);
  qsort(ev->parents, ev->n_parents, KITH_EVENT_ID_LEN, cmp_id);
  if (check_shape(ev) != KITH_OK)
    return KITH_ERR_ARG;
  uint8_t *msg;
  size_t len;
  kith_err rc = signed_bytes(ev, &msg, &len);
  if (rc != KITH_OK)
    return rc;
  kith_ident_sign(me, msg, len, ev->sig);
  g_free(msg);
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 9);
  pack_fields(&p, ev);
  kith_pack_bin(&p, ev->sig, KITH_SIG_LEN);
  rc = kith_pack_take(&p, &ev->raw, &ev->raw_len);
  if (rc != KITH_OK)
    return rc;
  crypto_generichash(ev->id, KITH_EVENT_ID_LEN, ev->raw, ev->raw_len, NULL, 0);
  if (ev->kind == KITH_EV_CREATE)
    memcpy(ev->group_id, ev->id, 32);
  return KITH_OK;
}

kith_err kith_event_copy(kith_event *dst, const kith_event *src) {
  *dst = *src;
  dst->body =
      g_memdup2(src->body ? src->body : (const uint8_t *)"", src->body_len);
  dst->raw = src->raw ? g_memdup2(src->raw, src->raw_len) : NULL;
  return KITH_OK;
}
