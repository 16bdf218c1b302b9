/* kith: signed group events (see event.h).
 *
 * Decode accepts only canonical input, so the signed bytes and the body
 * are slices of the raw bytes: version 1 signs "an 8-array header
 * followed by the raw bytes of the first eight elements", version 2 a
 * label, the group id and the raw bytes before the signature. */
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

/* kind, author, parents, depth and ts_ms: the same in both versions. */
static void pack_common(kith_pack *p, const kith_event *ev) {
  kith_pack_uint(p, ev->kind);
  kith_pack_bin(p, ev->author, KITH_ID_LEN);
  kith_pack_array(p, (uint32_t)ev->n_parents);
  for (size_t i = 0; i < ev->n_parents; i++)
    kith_pack_bin(p, ev->parents[i], KITH_EVENT_ID_LEN);
  kith_pack_uint(p, ev->depth);
  kith_pack_uint(p, ev->ts_ms);
}

/* Version 1: packs the first eight elements (the signed part) without
 * the header. */
static void pack_fields_v1(kith_pack *p, const kith_event *ev) {
  kith_pack_uint(p, KITH_EVENT_V1);
  kith_pack_bin(p, ev->group_id, ev->kind == KITH_EV_CREATE ? 0 : 32);
  pack_common(p, ev);
  kith_pack_bin(p, ev->body, ev->body_len);
}

/* Version 2: the header and the six elements before the body. Because
 * decode accepts only canonical bytes, their length in a received event
 * is the length of this re-packing. */
static void pack_head_v2(kith_pack *p, const kith_event *ev) {
  kith_pack_array(p, 8);
  kith_pack_uint(p, KITH_EVENT_V2);
  pack_common(p, ev);
}

static size_t head_len_v2(const kith_event *ev) {
  kith_pack p;
  kith_pack_init(&p);
  pack_head_v2(&p, ev);
  size_t n = p.failed ? 0 : p.sb.size;
  kith_pack_clear(&p);
  return n;
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

/* kind, author, parents, depth and ts_ms, at it[0..4] in both versions. */
static kith_err read_common(const msgpack_object *it, kith_event *ev) {
  uint64_t kind;
  if (kith_codec_uint(&it[0], KITH_EV_KIND_MAX, &kind) != KITH_OK ||
      kith_codec_bin_fixed(&it[1], ev->author, KITH_ID_LEN) != KITH_OK ||
      read_parents(&it[2], ev) != KITH_OK ||
      kith_codec_uint(&it[3], DEPTH_MAX, &ev->depth) != KITH_OK ||
      kith_codec_uint(&it[4], TS_MAX, &ev->ts_ms) != KITH_OK)
    return KITH_ERR_DECODE;
  ev->kind = (uint32_t)kind;
  return KITH_OK;
}

static kith_err read_v1(const msgpack_object *root, kith_event *ev) {
  const msgpack_object *it;
  const uint8_t *gid, *body;
  size_t gid_len, body_len;
  if (kith_codec_array(root, 9, &it) != KITH_OK ||
      kith_codec_bin(&it[1], 32, &gid, &gid_len) != KITH_OK ||
      read_common(&it[2], ev) != KITH_OK ||
      kith_codec_bin(&it[7], KITH_EVENT_MAX_BODY, &body, &body_len) !=
          KITH_OK ||
      kith_codec_bin_fixed(&it[8], ev->sig, KITH_SIG_LEN) != KITH_OK)
    return KITH_ERR_DECODE;
  if (gid_len != (ev->kind == KITH_EV_CREATE ? 0 : 32))
    return KITH_ERR_DECODE;
  if (gid_len)
    memcpy(ev->group_id, gid, 32);
  ev->body = g_memdup2(body_len ? body : (const uint8_t *)"", body_len);
  ev->body_len = body_len;
  return check_shape(ev);
}

/* The body is the raw bytes between the re-packed head and the
 * signature ("c4 40" and 64 bytes: canonical, so always 66 bytes). */
static kith_err read_v2(const msgpack_object *root, const uint8_t *buf,
                        size_t len, const uint8_t *gid, kith_event *ev) {
  const msgpack_object *it;
  if (kith_codec_array(root, 8, &it) != KITH_OK ||
      read_common(&it[1], ev) != KITH_OK ||
      it[6].type != MSGPACK_OBJECT_ARRAY ||
      kith_codec_bin_fixed(&it[7], ev->sig, KITH_SIG_LEN) != KITH_OK)
    return KITH_ERR_DECODE;
  if (ev->kind != KITH_EV_CREATE && !gid)
    return KITH_ERR_DECODE; /* no group to check it against */
  if (gid && ev->kind != KITH_EV_CREATE)
    memcpy(ev->group_id, gid, 32);
  size_t head = head_len_v2(ev);
  if (head == 0 || head + 66 >= len)
    return KITH_ERR_DECODE;
  ev->body_len = len - 66 - head;
  ev->body = g_memdup2(buf + head, ev->body_len);
  return check_shape(ev);
}

static kith_err read_fields(const msgpack_object *root, const uint8_t *buf,
                            size_t len, const uint8_t *gid, kith_event *ev) {
  uint64_t v;
  if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size == 0 ||
      kith_codec_uint(&root->via.array.ptr[0], KITH_EVENT_V2, &v) != KITH_OK)
    return KITH_ERR_DECODE;
  ev->version = (uint32_t)v;
  if (v == KITH_EVENT_V1)
    return read_v1(root, ev);
  if (v == KITH_EVENT_V2)
    return read_v2(root, buf, len, gid, ev);
  return KITH_ERR_DECODE;
}

/* The signed bytes of raw (the full encoding of ev, ending with "c4 40"
 * and the signature): version 1: an 8-element header and the raw bytes
 * in between; version 2: the domain label, the group id and the raw bytes
 * before the signature. */
#define SIGN_LABEL_V2 "kith event v2"
#define SIGN_LABEL_V2_LEN 13
static size_t signed_len(const kith_event *ev, size_t len) {
  return (ev->version == KITH_EVENT_V1 ? 0 : SIGN_LABEL_V2_LEN + 32) + len - 66;
}

static void fill_signed(const kith_event *ev, const uint8_t *raw, size_t len,
                        uint8_t *msg) {
  size_t body = len - 66;
  if (ev->version == KITH_EVENT_V1) {
    msg[0] = 0x98;
    memcpy(msg + 1, raw + 1, body - 1);
    return;
  }
  memcpy(msg, SIGN_LABEL_V2, SIGN_LABEL_V2_LEN);
  if (ev->kind == KITH_EV_CREATE)
    memset(msg + SIGN_LABEL_V2_LEN, 0, 32);
  else
    memcpy(msg + SIGN_LABEL_V2_LEN, ev->group_id, 32);
  memcpy(msg + SIGN_LABEL_V2_LEN + 32, raw, body);
}

/* Signs (me != NULL: into ev->sig) or verifies ev's raw bytes; the
 * signed bytes of small events stay on the stack. */
static kith_err sign_or_verify(kith_event *ev, const kith_ident *me,
                               const uint8_t *raw, size_t len) {
  uint8_t stack[1024];
  size_t n = signed_len(ev, len);
  uint8_t *msg = n <= sizeof stack ? stack : g_malloc(n);
  fill_signed(ev, raw, len, msg);
  kith_err rc = KITH_OK;
  if (me)
    kith_ident_sign(me, msg, n, ev->sig);
  else
    rc = kith_sig_verify(ev->author, msg, n, ev->sig);
  if (msg != stack)
    g_free(msg);
  return rc;
}

static kith_err verify(kith_event *ev, const uint8_t *raw, size_t len) {
  if (len < 1 + 66 || raw[0] != (ev->version == KITH_EVENT_V1 ? 0x99 : 0x98))
    return KITH_ERR_DECODE;
  return sign_or_verify(ev, NULL, raw, len);
}

static kith_err decode(const uint8_t *buf, size_t len, const uint8_t *gid,
                       kith_event *ev, int check_sig) {
  memset(ev, 0, sizeof *ev);
  if (!buf || len == 0)
    return KITH_ERR_DECODE;
  if (len > KITH_EVENT_MAX)
    return KITH_ERR_LIMIT;
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  kith_err rc = kith_codec_unpack(buf, len, &u);
  if (rc == KITH_OK)
    rc = read_fields(&u.data, buf, len, gid, ev);
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

kith_err kith_event_decode(const uint8_t *buf, size_t len, const uint8_t *gid,
                           kith_event *ev) {
  return decode(buf, len, gid, ev, 1);
}

kith_err kith_event_decode_trusted(const uint8_t *buf, size_t len,
                                   const uint8_t *gid, kith_event *ev) {
  return decode(buf, len, gid, ev, 0);
}

static int cmp_id(const void *a, const void *b) {
  return memcmp(a, b, KITH_EVENT_ID_LEN);
}

/* A version-2 body is one canonical msgpack array. */
static int body_is_array(const uint8_t *body, size_t len) {
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  int ok = kith_codec_unpack(body, len, &u) == KITH_OK &&
           u.data.type == MSGPACK_OBJECT_ARRAY;
  msgpack_unpacked_destroy(&u);
  return ok;
}

/* Everything but the signature, then 64 zero bytes in the signature's
 * slot, which kith_event_build fills in once it has signed the rest. */
static kith_err encode_unsigned(const kith_event *ev, uint8_t **out,
                                size_t *len) {
  kith_pack p;
  kith_pack_init(&p);
  if (ev->version == KITH_EVENT_V1) {
    kith_pack_array(&p, 9);
    pack_fields_v1(&p, ev);
  } else {
    pack_head_v2(&p, ev);
    if (msgpack_sbuffer_write(&p.sb, (const char *)ev->body, ev->body_len))
      p.failed = 1;
  }
  uint8_t zero[KITH_SIG_LEN] = {0};
  kith_pack_bin(&p, zero, KITH_SIG_LEN);
  return kith_pack_take(&p, out, len);
}

kith_err kith_event_build(kith_event *ev, const kith_ident *me,
                          const uint8_t *body, size_t body_len) {
  if (!ev || !me || (!body && body_len) ||
      ev->n_parents > KITH_EVENT_MAX_PARENTS ||
      (ev->version && ev->version != KITH_EVENT_V1 &&
       ev->version != KITH_EVENT_V2))
    return KITH_ERR_ARG;
  if (!ev->version)
    ev->version = KITH_EVENT_VERSION;
  g_free(ev->raw);
  g_free(ev->body);
  ev->raw = NULL;
  ev->body = g_memdup2(body_len ? body : (const uint8_t *)"", body_len);
  ev->body_len = body_len;
  memcpy(ev->author, me->pk, KITH_ID_LEN);
  qsort(ev->parents, ev->n_parents, KITH_EVENT_ID_LEN, cmp_id);
  if (check_shape(ev) != KITH_OK ||
      (ev->version == KITH_EVENT_V2 && !body_is_array(body, body_len)))
    return KITH_ERR_ARG;
  kith_err rc = encode_unsigned(ev, &ev->raw, &ev->raw_len);
  if (rc != KITH_OK)
    return rc;
  (void)sign_or_verify(ev, me, ev->raw, ev->raw_len);
  memcpy(ev->raw + ev->raw_len - KITH_SIG_LEN, ev->sig, KITH_SIG_LEN);
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
