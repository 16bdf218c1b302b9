/* kith: strict msgpack decoding and small packing helpers. */
#include "codec.h"

#include <glib.h>
#include <sodium.h>
#include <string.h>

/* msgpack-c's own nesting limit: depth 33 makes it fail with NOMEM. */
#define PRESCAN_DEPTH_CAP 32
#define LOOSE_DEPTH 16

/* One decoded msgpack header: how many bytes it occupies (including any
 * str/bin payload) and, for arrays and maps, how many child objects follow
 * (a map of n entries has 2n children). */
typedef struct head {
  size_t size;
  uint64_t children;
  int container;
} head;

static uint64_t load_be(const uint8_t *p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; i++)
    v = (v << 8) | p[i];
  return v;
}

/* Header with an n-byte big-endian length at b[1..n]; payload of that many
 * bytes (is_raw) or a container of that many (per_item times) children. */
static kith_err read_sized(const uint8_t *b, size_t left, unsigned n,
                           int is_raw, unsigned per_item, head *h) {
  if (left < 1 + (size_t)n)
    return KITH_ERR_DECODE;
  uint64_t count = load_be(b + 1, n);
  h->size = 1 + n;
  if (is_raw) {
    if (count > left - h->size)
      return KITH_ERR_DECODE;
    h->size += (size_t)count;
  } else {
    h->container = 1;
    h->children = count * per_item;
  }
  return KITH_OK;
}

/* Decodes the header at b (left > 0 bytes available). */
static kith_err read_head(const uint8_t *b, size_t left, unsigned flags,
                          head *h) {
  uint8_t t = b[0];
  int maps = (flags & KITH_CODEC_ALLOW_MAPS) != 0;
  *h = (head){.size = 1};
  if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
    return KITH_OK; /* fixint, nil, bool */
  if (t >= 0xa0 && t <= 0xbf) {
    h->size = 1 + (size_t)(t & 0x1f);
    return h->size <= left ? KITH_OK : KITH_ERR_DECODE;
  }
  if (t >= 0x90 && t <= 0x9f) {
    *h = (head){.size = 1, .children = t & 0x0f, .container = 1};
    return KITH_OK;
  }
  if (t >= 0x80 && t <= 0x8f) {
    *h = (head){.size = 1, .children = 2u * (t & 0x0f), .container = 1};
    return maps ? KITH_OK : KITH_ERR_DECODE;
  }
  switch (t) {
  case 0xcc:
  case 0xd0:
    h->size = 2;
    break;
  case 0xcd:
  case 0xd1:
    h->size = 3;
    break;
  case 0xce:
  case 0xd2:
    h->size = 5;
    break;
  case 0xcf:
  case 0xd3:
    h->size = 9;
    break;
  case 0xd9:
  case 0xc4:
    return read_sized(b, left, 1, 1, 0, h);
  case 0xda:
  case 0xc5:
    return read_sized(b, left, 2, 1, 0, h);
  case 0xdb:
  case 0xc6:
    return read_sized(b, left, 4, 1, 0, h);
  case 0xdc:
    return read_sized(b, left, 2, 0, 1, h);
  case 0xdd:
    return read_sized(b, left, 4, 0, 1, h);
  case 0xde:
    return maps ? read_sized(b, left, 2, 0, 2, h) : KITH_ERR_DECODE;
  case 0xdf:
    return maps ? read_sized(b, left, 4, 0, 2, h) : KITH_ERR_DECODE;
  default:
    return KITH_ERR_DECODE; /* 0xc1, floats, ext, fixext */
  }
  return h->size <= left ? KITH_OK : KITH_ERR_DECODE;
}

kith_err kith_codec_prescan(const uint8_t *buf, size_t len, unsigned max_depth,
                            unsigned flags) {
  /* stack[i] = children still expected by the open container at depth i */
  uint64_t stack[PRESCAN_DEPTH_CAP];
  unsigned depth = 0;
  size_t pos = 0;
  uint64_t total = 0;
  if (len > KITH_CODEC_MAX_LEN)
    return KITH_ERR_LIMIT;
  if (max_depth > PRESCAN_DEPTH_CAP)
    max_depth = PRESCAN_DEPTH_CAP;
  if (buf == NULL || len == 0)
    return KITH_ERR_DECODE;
  for (;;) {
    head h;
    if (pos >= len || read_head(buf + pos, len - pos, flags, &h) != KITH_OK)
      return KITH_ERR_DECODE;
    pos += h.size;
    if (h.container) {
      /* Each child needs at least one byte, so these bound the work and
       * the memory msgpack-c will preallocate for the container. */
      if (depth >= max_depth || h.children > len - pos)
        return KITH_ERR_DECODE;
      total += h.children;
      if (total > len)
        return KITH_ERR_DECODE;
      if (h.children > 0) {
        stack[depth++] = h.children;
        continue;
      }
    }
    /* One object is complete: close every container it completes. */
    while (depth > 0 && --stack[depth - 1] == 0)
      depth--;
    if (depth == 0)
      break;
  }
  return pos == len ? KITH_OK : KITH_ERR_DECODE;
}

/* msgpack_unpack_next() leaves str/bin objects pointing into the caller's
 * buffer; the header promises they live in out's zone, so copy the bytes
 * there and move the pointers. Depth is bounded by the pre-scan. */
static void rebase(msgpack_object *o, const char *from, const char *to) {
  switch (o->type) {
  case MSGPACK_OBJECT_STR:
    if (o->via.str.ptr != NULL)
      o->via.str.ptr = to + (o->via.str.ptr - from);
    break;
  case MSGPACK_OBJECT_BIN:
    if (o->via.bin.ptr != NULL)
      o->via.bin.ptr = to + (o->via.bin.ptr - from);
    break;
  case MSGPACK_OBJECT_ARRAY:
    for (uint32_t i = 0; i < o->via.array.size; i++)
      rebase(&o->via.array.ptr[i], from, to);
    break;
  case MSGPACK_OBJECT_MAP:
    for (uint32_t i = 0; i < o->via.map.size; i++) {
      rebase(&o->via.map.ptr[i].key, from, to);
      rebase(&o->via.map.ptr[i].val, from, to);
    }
    break;
  default:
    break;
  }
}

static kith_err unpack_checked(const uint8_t *buf, size_t len,
                               msgpack_unpacked *out) {
  size_t off = 0;
  msgpack_unpack_return r =
      msgpack_unpack_next(out, (const char *)buf, len, &off);
  if (r == MSGPACK_UNPACK_NOMEM_ERROR)
    return KITH_ERR_NOMEM;
  if (r != MSGPACK_UNPACK_SUCCESS || off != len)
    return KITH_ERR_DECODE;
  /* msgpack-c creates the zone lazily: a lone scalar may have none. */
  if (out->zone == NULL)
    out->zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
  if (out->zone == NULL)
    return KITH_ERR_NOMEM;
  char *copy = msgpack_zone_malloc(out->zone, len);
  if (copy == NULL)
    return KITH_ERR_NOMEM;
  memcpy(copy, buf, len);
  rebase(&out->data, (const char *)buf, copy);
  return KITH_OK;
}

/* Canonical means msgpack-c's own (minimal-width) encoding of the decoded
 * object is byte-identical to the input. */
static kith_err check_canonical(const msgpack_object *o, const uint8_t *buf,
                                size_t len) {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  kith_err err = KITH_OK;
  if (msgpack_pack_object(&pk, *o) != 0)
    err = KITH_ERR_NOMEM;
  else if (sb.size != len || memcmp(sb.data, buf, len) != 0)
    err = KITH_ERR_DECODE;
  msgpack_sbuffer_destroy(&sb);
  return err;
}

kith_err kith_codec_unpack(const uint8_t *buf, size_t len,
                           msgpack_unpacked *out) {
  kith_err err = kith_codec_prescan(buf, len, KITH_CODEC_MAX_DEPTH, 0);
  if (err != KITH_OK)
    return err;
  err = unpack_checked(buf, len, out);
  if (err != KITH_OK)
    return err;
  return check_canonical(&out->data, buf, len);
}

kith_err kith_codec_unpack_loose(const uint8_t *buf, size_t len,
                                 msgpack_unpacked *out) {
  kith_err err =
      kith_codec_prescan(buf, len, LOOSE_DEPTH, KITH_CODEC_ALLOW_MAPS);
  if (err != KITH_OK)
    return err;
  return unpack_checked(buf, len, out);
}

kith_err kith_codec_array(const msgpack_object *o, uint32_t n,
                          const msgpack_object **items) {
  if (o == NULL || o->type != MSGPACK_OBJECT_ARRAY)
    return KITH_ERR_DECODE;
  if (n != UINT32_MAX && o->via.array.size != n)
    return KITH_ERR_DECODE;
  if (items != NULL)
    *items = o->via.array.ptr;
  return KITH_OK;
}

kith_err kith_codec_uint(const msgpack_object *o, uint64_t max, uint64_t *v) {
  if (o == NULL || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      o->via.u64 > max)
    return KITH_ERR_DECODE;
  *v = o->via.u64;
  return KITH_OK;
}

kith_err kith_codec_bin_fixed(const msgpack_object *o, void *out, size_t n) {
  if (o == NULL || o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != n)
    return KITH_ERR_DECODE;
  if (n > 0)
    memcpy(out, o->via.bin.ptr, n);
  return KITH_OK;
}

kith_err kith_codec_bin(const msgpack_object *o, size_t max, const uint8_t **p,
                        size_t *len) {
  if (o == NULL || o->type != MSGPACK_OBJECT_BIN || o->via.bin.size > max)
    return KITH_ERR_DECODE;
  *p = (const uint8_t *)o->via.bin.ptr;
  *len = o->via.bin.size;
  return KITH_OK;
}

kith_err kith_codec_str(const msgpack_object *o, size_t max, const char **p,
                        size_t *len) {
  if (o == NULL || o->type != MSGPACK_OBJECT_STR || o->via.str.size > max)
    return KITH_ERR_DECODE;
  size_t n = o->via.str.size;
  const char *s = o->via.str.ptr;
  if (n > 0 && (memchr(s, '\0', n) != NULL || !g_utf8_validate_len(s, n, NULL)))
    return KITH_ERR_DECODE;
  *p = n > 0 ? s : "";
  *len = n;
  return KITH_OK;
}

kith_err kith_codec_strdup(const msgpack_object *o, size_t max, char **out) {
  const char *s;
  size_t n;
  kith_err err = kith_codec_str(o, max, &s, &n);
  if (err != KITH_OK)
    return err;
  *out = g_strndup(s, n);
  return KITH_OK;
}

void kith_pack_init(kith_pack *p) {
  msgpack_sbuffer_init(&p->sb);
  msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
  p->failed = 0;
}

/* Packed bytes may hold secrets (invite codes, sealed payloads): wipe them
 * before the buffer goes back to the allocator. */
void kith_pack_clear(kith_pack *p) {
  if (p->sb.data != NULL)
    sodium_memzero(p->sb.data, p->sb.size);
  msgpack_sbuffer_destroy(&p->sb);
  kith_pack_init(p);
}

static void note(kith_pack *p, int rc) {
  if (rc != 0)
    p->failed = 1;
}

void kith_pack_array(kith_pack *p, uint32_t n) {
  note(p, msgpack_pack_array(&p->pk, n));
}

void kith_pack_uint(kith_pack *p, uint64_t v) {
  note(p, msgpack_pack_uint64(&p->pk, v));
}

void kith_pack_bin(kith_pack *p, const void *data, size_t len) {
  note(p, msgpack_pack_bin(&p->pk, len));
  if (len > 0)
    note(p, msgpack_pack_bin_body(&p->pk, data, len));
}

void kith_pack_str(kith_pack *p, const char *s, size_t len) {
  note(p, msgpack_pack_str(&p->pk, len));
  if (len > 0)
    note(p, msgpack_pack_str_body(&p->pk, s, len));
}

void kith_pack_cstr(kith_pack *p, const char *s) {
  kith_pack_str(p, s, s != NULL ? strlen(s) : 0);
}

void kith_pack_nil(kith_pack *p) {
  note(p, msgpack_pack_nil(&p->pk));
}

void kith_pack_bool(kith_pack *p, int v) {
  note(p, v ? msgpack_pack_true(&p->pk) : msgpack_pack_false(&p->pk));
}

/* msgpack's sbuffer is malloc'ed but callers free with g_free, so the bytes
 * are copied into GLib memory. */
kith_err kith_pack_take(kith_pack *p, uint8_t **out, size_t *len) {
  kith_err err = KITH_OK;
  *out = NULL;
  *len = 0;
  if (p->failed) {
    err = KITH_ERR_NOMEM;
  } else if (p->sb.size > 0) {
    *out = g_memdup2(p->sb.data, p->sb.size);
    *len = p->sb.size;
  }
  kith_pack_clear(p);
  return err;
}
