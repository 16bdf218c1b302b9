/* Unit tests for core/event.c: wire form, canonical decoding, ids. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glib.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/codec.h"
#include "core/event.h"

#ifndef KITH_VECTORS_DIR
#define KITH_VECTORS_DIR "tests/vectors"
#endif

#define TS 1700000000000ull

/* The group the tests' events belong to, and another one. */
static const uint8_t GID[32] = {0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77,
                                0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77,
                                0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77,
                                0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77};
static const uint8_t OTHER_GID[32] = {0x78};

static void ident(kith_ident *id, uint8_t fill) {
  uint8_t seed[32];
  memset(seed, fill, sizeof seed);
  assert_int_equal(kith_ident_from_seed(id, seed), KITH_OK);
}

/* A version-1 event (its body any bytes) of group GID. */
static void build(kith_event *ev, const kith_ident *me, uint32_t kind,
                  size_t n_parents, const char *body) {
  memset(ev, 0, sizeof *ev);
  ev->version = KITH_EVENT_V1;
  ev->kind = kind;
  ev->ts_ms = TS;
  memset(ev->group_id, 0x77, 32);
  ev->n_parents = n_parents;
  for (size_t i = 0; i < n_parents; i++)
    memset(ev->parents[i], (int)(0xf0 - i), 32);
  ev->depth = n_parents ? 5 : 0;
  assert_int_equal(
      kith_event_build(ev, me, (const uint8_t *)body, strlen(body)), KITH_OK);
}

/* kind, author, parents, depth, ts_ms: as in both versions. */
static void pack_common(kith_pack *p, const kith_event *ev) {
  kith_pack_uint(p, ev->kind);
  kith_pack_bin(p, ev->author, 32);
  kith_pack_array(p, (uint32_t)ev->n_parents);
  for (size_t i = 0; i < ev->n_parents; i++)
    kith_pack_bin(p, ev->parents[i], 32);
  kith_pack_uint(p, ev->depth);
  kith_pack_uint(p, ev->ts_ms);
}

static void pack_fields(kith_pack *p, const kith_event *ev, uint32_t n) {
  kith_pack_array(p, n);
  kith_pack_uint(p, 1);
  kith_pack_bin(p, ev->group_id, ev->kind == KITH_EV_CREATE ? 0 : 32);
  pack_common(p, ev);
  kith_pack_bin(p, ev->body, ev->body_len);
}

/* Packs ev's fields as given (no sorting), signed by signer: lets tests
 * produce well-signed events that break other rules. */
static void pack_raw(const kith_event *ev, const kith_ident *signer,
                     uint8_t **out, size_t *len) {
  kith_pack p;
  uint8_t sig[64], *msg;
  size_t mlen;
  kith_pack_init(&p);
  pack_fields(&p, ev, 8);
  assert_int_equal(kith_pack_take(&p, &msg, &mlen), KITH_OK);
  kith_ident_sign(signer, msg, mlen, sig);
  g_free(msg);
  pack_fields(&p, ev, 9);
  kith_pack_bin(&p, sig, 64);
  assert_int_equal(kith_pack_take(&p, out, len), KITH_OK);
}

static void expect_packed(const kith_event *ev, const kith_ident *signer,
                          kith_err want);
static void pack_by_version(const kith_event *ev, const kith_ident *signer,
                            uint8_t **raw, size_t *len);

static void expect_decode(const uint8_t *raw, size_t len, kith_err want) {
  kith_event ev;
  assert_int_equal(kith_event_decode(raw, len, GID, &ev), want);
  if (want == KITH_OK)
    kith_event_clear(&ev);
}

static void round_trip(void **state) {
  kith_ident me = {0};
  ident(&me, 1);
  kith_event ev, back;
  build(&ev, &me, KITH_EV_MESSAGE, 3, "body bytes");
  assert_int_equal(kith_event_decode(ev.raw, ev.raw_len, GID, &back), KITH_OK);
  assert_memory_equal(back.id, ev.id, 32);
  assert_memory_equal(back.group_id, ev.group_id, 32);
  assert_memory_equal(back.author, me.pk, 32);
  assert_int_equal(back.kind, KITH_EV_MESSAGE);
  assert_int_equal(back.n_parents, 3);
  assert_memory_equal(back.parents, ev.parents, 3 * 32);
  assert_true(memcmp(back.parents[0], back.parents[1], 32) < 0);
  assert_int_equal(back.depth, 5);
  assert_int_equal(back.ts_ms, TS);
  assert_int_equal(back.body_len, 10);
  assert_memory_equal(back.body, "body bytes", 10);
  assert_int_equal(back.raw_len, ev.raw_len);
  assert_memory_equal(back.raw, ev.raw, ev.raw_len);
  kith_event copy;
  assert_int_equal(kith_event_copy(&copy, &back), KITH_OK);
  assert_memory_equal(copy.raw, ev.raw, ev.raw_len);
  kith_event_clear(&copy);
  kith_event_clear(&back);
  kith_event_clear(&ev);
  kith_ident_clear(&me);
}

static void create_id_is_group_id(void **state) {
  kith_ident me = {0};
  ident(&me, 2);
  kith_event ev, back;
  build(&ev, &me, KITH_EV_CREATE, 0, "");
  assert_memory_equal(ev.group_id, ev.id, 32);
  assert_int_equal(kith_event_decode(ev.raw, ev.raw_len, GID, &back), KITH_OK);
  assert_memory_equal(back.group_id, back.id, 32);
  uint8_t h[32];
  crypto_generichash(h, 32, ev.raw, ev.raw_len, NULL, 0);
  assert_memory_equal(h, back.id, 32);
  kith_event_clear(&back);
  kith_event_clear(&ev);
  kith_ident_clear(&me);
}

static void non_canonical_rejected(void **state) {
  kith_ident me = {0};
  ident(&me, 3);
  kith_event ev;
  build(&ev, &me, KITH_EV_INVITE, 1, "x");
  /* version 1 as uint8 (0xcc 0x01) instead of fixint: same value, and the
   * signature (over the canonical form) still matches. */
  uint8_t *bad = g_malloc(ev.raw_len + 1);
  bad[0] = ev.raw[0];
  bad[1] = 0xcc;
  memcpy(bad + 2, ev.raw + 1, ev.raw_len - 1);
  assert_int_equal(ev.raw[1], 0x01);
  expect_decode(bad, ev.raw_len + 1, KITH_ERR_DECODE);
  expect_decode(ev.raw, ev.raw_len, KITH_OK);
  g_free(bad);
  /* trailing byte */
  uint8_t *trail = g_malloc(ev.raw_len + 1);
  memcpy(trail, ev.raw, ev.raw_len);
  trail[ev.raw_len] = 0xc0;
  expect_decode(trail, ev.raw_len + 1, KITH_ERR_DECODE);
  g_free(trail);
  kith_event_clear(&ev);
  kith_ident_clear(&me);
}

/* Flipping bits of any byte, or cutting the event short anywhere, makes
 * it fail to decode. */
static void assert_every_change_rejected(kith_event *ev) {
  for (size_t i = 0; i < ev->raw_len; i++) {
    for (int bit = 0; bit < 8; bit += 3) {
      ev->raw[i] ^= (uint8_t)(1u << bit);
      kith_event out;
      assert_int_not_equal(kith_event_decode(ev->raw, ev->raw_len, GID, &out),
                           KITH_OK);
      ev->raw[i] ^= (uint8_t)(1u << bit);
    }
  }
  for (size_t n = 0; n < ev->raw_len; n++)
    expect_decode(ev->raw, n, KITH_ERR_DECODE);
}

static void tampered_byte_anywhere_rejected(void **state) {
  kith_ident me = {0};
  ident(&me, 4);
  kith_event ev;
  build(&ev, &me, KITH_EV_MESSAGE, 2, "some body text");
  assert_every_change_rejected(&ev);
  kith_event_clear(&ev);
  kith_ident_clear(&me);
}

/* The parent and depth rules, on ev (a non-create with two parents, as
 * built in its version), each broken in turn (ev is changed). */
static void check_parent_rules(kith_event *ev, const kith_ident *me) {
  uint8_t *raw;
  size_t len;
  pack_by_version(ev, me, &raw, &len);
  expect_decode(raw, len, KITH_OK); /* the helper reproduces build */
  assert_memory_equal(raw, ev->raw, len);
  g_free(raw);
  uint8_t tmp[32]; /* unsorted */
  memcpy(tmp, ev->parents[0], 32);
  memcpy(ev->parents[0], ev->parents[1], 32);
  memcpy(ev->parents[1], tmp, 32);
  expect_packed(ev, me, KITH_ERR_DECODE);
  memcpy(ev->parents[0], ev->parents[1], 32); /* duplicate */
  expect_packed(ev, me, KITH_ERR_DECODE);
  ev->n_parents = 0; /* non-create without parents */
  expect_packed(ev, me, KITH_ERR_DECODE);
  ev->kind = KITH_EV_CREATE; /* create with a parent */
  ev->n_parents = 1;
  ev->depth = 0;
  expect_packed(ev, me, KITH_ERR_DECODE);
  ev->n_parents = 0; /* create with depth 1 */
  ev->depth = 1;
  expect_packed(ev, me, KITH_ERR_DECODE);
  ev->depth = 0;
  expect_packed(ev, me, KITH_OK);
}

static void parent_rules(void **state) {
  kith_ident me = {0};
  ident(&me, 5);
  kith_event ev;
  build(&ev, &me, KITH_EV_MESSAGE, 2, "b");
  check_parent_rules(&ev, &me);
  kith_event_clear(&ev);
  kith_ident_clear(&me);
}

static void field_limits(void **state) {
  kith_ident me = {0}, other = {0};
  ident(&me, 6);
  ident(&other, 7);
  kith_event ev;
  build(&ev, &me, KITH_EV_MESSAGE, 1, "b");
  ev.kind = 0;
  expect_packed(&ev, &me, KITH_ERR_DECODE);
  ev.kind = KITH_EV_KIND_MAX + 1;
  expect_packed(&ev, &me, KITH_ERR_DECODE);
  ev.kind = KITH_EV_MESSAGE;
  ev.depth = (1ull << 40) + 1;
  expect_packed(&ev, &me, KITH_ERR_DECODE);
  ev.depth = 1;
  ev.ts_ms = (1ull << 50) + 1;
  expect_packed(&ev, &me, KITH_ERR_DECODE);
  ev.ts_ms = TS; /* signed by someone other than the author */
  expect_packed(&ev, &other, KITH_ERR_SIGNATURE);
  expect_decode((const uint8_t *)"\x90", 1, KITH_ERR_DECODE);
  expect_decode((const uint8_t *)"\xc0", 1, KITH_ERR_DECODE);
  expect_decode(NULL, 0, KITH_ERR_DECODE);
  uint8_t *big = g_malloc0(KITH_EVENT_MAX + 1);
  expect_decode(big, KITH_EVENT_MAX + 1, KITH_ERR_LIMIT);
  g_free(big);
  uint8_t *huge = g_malloc0(KITH_EVENT_MAX_BODY + 1);
  kith_event_clear(&ev);
  memset(&ev, 0, sizeof ev);
  ev.kind = KITH_EV_CREATE;
  assert_int_not_equal(
      kith_event_build(&ev, &me, huge, KITH_EVENT_MAX_BODY + 1), KITH_OK);
  kith_event_clear(&ev);
  g_free(huge);
  kith_ident_clear(&me);
  kith_ident_clear(&other);
}

/* ---- version 2 ---- */

/* A version-2 event of group GID whose body is the msgpack array
 * [7, bin(text)]. */
static void build_v2(kith_event *ev, const kith_ident *me, uint32_t kind,
                     size_t n_parents, const char *text) {
  kith_pack b;
  uint8_t *body;
  size_t len;
  kith_pack_init(&b);
  kith_pack_array(&b, 2);
  kith_pack_uint(&b, 7);
  kith_pack_bin(&b, text, strlen(text));
  assert_int_equal(kith_pack_take(&b, &body, &len), KITH_OK);
  memset(ev, 0, sizeof *ev);
  ev->kind = kind;
  ev->ts_ms = TS;
  memcpy(ev->group_id, GID, 32);
  ev->n_parents = n_parents;
  for (size_t i = 0; i < n_parents; i++)
    memset(ev->parents[i], (int)(0xf0 - i), 32);
  ev->depth = n_parents ? 5 : 0;
  assert_int_equal(kith_event_build(ev, me, body, len), KITH_OK);
  g_free(body);
}

/* Packs a version-2 event as given (no sorting), body bytes appended raw,
 * signed by signer for group gid. */
static void pack_raw_v2(const kith_event *ev, const kith_ident *signer,
                        const uint8_t gid[32], uint8_t **out, size_t *len) {
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 8);
  kith_pack_uint(&p, 2);
  pack_common(&p, ev);
  assert_int_equal(
      msgpack_sbuffer_write(&p.sb, (const char *)ev->body, ev->body_len), 0);
  size_t n = 13 + 32 + p.sb.size;
  uint8_t *msg = g_malloc(n), sig[64];
  memcpy(msg, "kith event v2", 13);
  if (ev->kind == KITH_EV_CREATE)
    memset(msg + 13, 0, 32); /* a create names no group */
  else
    memcpy(msg + 13, gid, 32);
  memcpy(msg + 45, p.sb.data, p.sb.size);
  kith_ident_sign(signer, msg, n, sig);
  g_free(msg);
  kith_pack_bin(&p, sig, 64);
  assert_int_equal(kith_pack_take(&p, out, len), KITH_OK);
}

/* Packs ev in its version as given, signed by signer for GID. */
static void pack_by_version(const kith_event *ev, const kith_ident *signer,
                            uint8_t **raw, size_t *len) {
  if (ev->version == KITH_EVENT_V2)
    pack_raw_v2(ev, signer, GID, raw, len);
  else
    pack_raw(ev, signer, raw, len);
}

/* The same, and expects want from decoding it. */
static void expect_packed(const kith_event *ev, const kith_ident *signer,
                          kith_err want) {
  uint8_t *raw;
  size_t len;
  pack_by_version(ev, signer, &raw, &len);
  expect_decode(raw, len, want);
  g_free(raw);
}

static void round_trip_v2(void **state) {
  kith_ident me = {0};
  ident(&me, 8);
  kith_event ev, back;
  build_v2(&ev, &me, KITH_EV_MESSAGE, 3, "sealed bytes");
  assert_int_equal(ev.version, KITH_EVENT_V2);
  assert_int_equal(ev.raw[0], 0x98);
  assert_int_equal(ev.raw[1], 0x02);
  assert_int_equal(kith_event_decode(ev.raw, ev.raw_len, GID, &back), KITH_OK);
  assert_int_equal(back.version, KITH_EVENT_V2);
  assert_memory_equal(back.id, ev.id, 32);
  assert_memory_equal(back.group_id, GID, 32);
  assert_memory_equal(back.author, me.pk, 32);
  assert_int_equal(back.n_parents, 3);
  assert_memory_equal(back.parents, ev.parents, 3 * 32);
  assert_int_equal(back.depth, 5);
  assert_int_equal(back.ts_ms, TS);
  assert_int_equal(back.body_len, ev.body_len);
  assert_memory_equal(back.body, ev.body, ev.body_len);
  /* the body sits unwrapped between ts_ms and the signature */
  assert_memory_equal(ev.raw + ev.raw_len - 66 - ev.body_len, ev.body,
                      ev.body_len);
  /* no group id on the wire: the same event as version 1 is 34 bytes
   * longer, plus the bin header around its body */
  kith_event v1 = (kith_event){.version = KITH_EVENT_V1,
                               .kind = ev.kind,
                               .n_parents = ev.n_parents,
                               .depth = ev.depth,
                               .ts_ms = ev.ts_ms};
  memcpy(v1.group_id, GID, 32);
  memcpy(v1.parents, ev.parents, sizeof ev.parents);
  assert_int_equal(kith_event_build(&v1, &me, ev.body, ev.body_len), KITH_OK);
  assert_int_equal(v1.raw_len, ev.raw_len + 34 + 2);
  kith_event_clear(&v1);
  kith_event_clear(&back);
  kith_event_clear(&ev);
  kith_ident_clear(&me);
}

/* The group id is signed, not sent: the bytes verify only for their own
 * group, and cannot be decoded without one. */
static void v2_event_is_bound_to_its_group(void **state) {
  kith_ident me = {0};
  ident(&me, 9);
  kith_event ev, back;
  build_v2(&ev, &me, KITH_EV_MESSAGE, 1, "x");
  assert_int_equal(kith_event_decode(ev.raw, ev.raw_len, OTHER_GID, &back),
                   KITH_ERR_SIGNATURE);
  assert_int_equal(kith_event_decode(ev.raw, ev.raw_len, NULL, &back),
                   KITH_ERR_DECODE);
  assert_int_equal(kith_event_decode_trusted(ev.raw, ev.raw_len, GID, &back),
                   KITH_OK);
  assert_memory_equal(back.id, ev.id, 32);
  kith_event_clear(&back);
  kith_event_clear(&ev);
  /* a create names no group: it is its own, in any context */
  build_v2(&ev, &me, KITH_EV_CREATE, 0, "");
  assert_memory_equal(ev.group_id, ev.id, 32);
  assert_int_equal(kith_event_decode(ev.raw, ev.raw_len, NULL, &back), KITH_OK);
  assert_memory_equal(back.group_id, ev.id, 32);
  kith_event_clear(&back);
  kith_event_clear(&ev);
  kith_ident_clear(&me);
}

static void v2_tampered_byte_anywhere_rejected(void **state) {
  kith_ident me = {0};
  ident(&me, 10);
  kith_event ev;
  build_v2(&ev, &me, KITH_EV_MESSAGE, 2, "some body text");
  assert_every_change_rejected(&ev);
  kith_event_clear(&ev);
  kith_ident_clear(&me);
}

/* The body must be an array; the shape rules hold as in version 1. */
static void v2_shape_rules(void **state) {
  kith_ident me = {0};
  ident(&me, 11);
  kith_event ev;
  build_v2(&ev, &me, KITH_EV_MESSAGE, 2, "b");
  uint8_t *body = ev.body;
  size_t body_len = ev.body_len;
  static const uint8_t bin_body[] = {0xc4, 0x01, 'x'};
  ev.body = (uint8_t *)bin_body; /* a bin, not an array, where it goes */
  ev.body_len = sizeof bin_body;
  expect_packed(&ev, &me, KITH_ERR_DECODE);
  ev.body = body;
  ev.body_len = body_len;
  kith_event copy = ev; /* and build refuses it */
  copy.version = 0;
  copy.body = NULL;
  copy.raw = NULL;
  assert_int_equal(kith_event_build(&copy, &me, bin_body, 3), KITH_ERR_ARG);
  kith_event_clear(&copy);
  copy = (kith_event){.version = 3, .kind = KITH_EV_CREATE};
  assert_int_equal(kith_event_build(&copy, &me, (const uint8_t *)"\x90", 1),
                   KITH_ERR_ARG);
  kith_event_clear(&copy);
  check_parent_rules(&ev, &me);
  kith_event_clear(&ev);
  kith_ident_clear(&me);
}

static void hex_of(const uint8_t *b, size_t n, GString *out) {
  for (size_t i = 0; i < n; i++)
    g_string_append_printf(out, "%02x", b[i]);
}

static size_t hex_field(GHashTable *kv, const char *key, uint8_t *out,
                        size_t max) {
  const char *hex = g_hash_table_lookup(kv, key);
  size_t n = 0;
  if (!hex)
    return 0;
  assert_int_equal(sodium_hex2bin(out, max, hex, strlen(hex), NULL, &n, NULL),
                   0);
  return n;
}

/* A vector file: "key value" lines; the build from the seed and fields
 * there (version, kind, gid, parents, depth, ts_ms, body) must reproduce
 * raw and id byte for byte, and raw must decode for gid (and, in version
 * 2, fail to verify for any other group). */
static void check_vector(const char *path) {
  gchar *text = NULL;
  assert_true(g_file_get_contents(path, &text, NULL, NULL));
  GHashTable *kv = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  gchar **lines = g_strsplit(text, "\n", -1);
  for (gchar **l = lines; *l; l++) {
    if (**l == '#' || !strchr(*l, ' '))
      continue;
    *strchr(*l, ' ') = 0;
    g_hash_table_insert(kv, g_strdup(*l), *l + strlen(*l) + 1);
  }
  uint8_t seed[32], body[256];
  kith_event ev = {0};
  assert_int_equal(hex_field(kv, "seed", seed, 32), 32);
  size_t n = hex_field(kv, "body", body, sizeof body);
  ev.n_parents =
      hex_field(kv, "parents", &ev.parents[0][0], sizeof ev.parents) / 32;
  hex_field(kv, "gid", ev.group_id, 32);
  kith_ident me = {0};
  assert_int_equal(kith_ident_from_seed(&me, seed), KITH_OK);
  const char *depth = g_hash_table_lookup(kv, "depth");
  ev.version =
      (uint32_t)g_ascii_strtoull(g_hash_table_lookup(kv, "version"), 0, 10);
  ev.kind = (uint32_t)g_ascii_strtoull(g_hash_table_lookup(kv, "kind"), 0, 10);
  ev.depth = depth ? g_ascii_strtoull(depth, 0, 10) : 0;
  ev.ts_ms = g_ascii_strtoull(g_hash_table_lookup(kv, "ts_ms"), 0, 10);
  assert_int_equal(kith_event_build(&ev, &me, body, n), KITH_OK);
  GString *raw = g_string_new(NULL), *id = g_string_new(NULL);
  hex_of(ev.raw, ev.raw_len, raw);
  hex_of(ev.id, 32, id);
  assert_string_equal(raw->str, g_hash_table_lookup(kv, "raw"));
  assert_string_equal(id->str, g_hash_table_lookup(kv, "id"));
  kith_event back;
  assert_int_equal(kith_event_decode(ev.raw, ev.raw_len, ev.group_id, &back),
                   KITH_OK);
  kith_event_clear(&back);
  if (ev.version == KITH_EVENT_V2 && ev.kind != KITH_EV_CREATE)
    assert_int_equal(kith_event_decode(ev.raw, ev.raw_len, OTHER_GID, &back),
                     KITH_ERR_SIGNATURE);
  g_string_free(raw, TRUE);
  g_string_free(id, TRUE);
  kith_event_clear(&ev);
  kith_ident_clear(&me);
  g_strfreev(lines);
  g_hash_table_destroy(kv);
  g_free(text);
}

/* tests/vectors/event.txt: a version-1 create; event2.txt: a version-2
 * message in that create's group. */
static void known_answer_vector(void **state) {
  check_vector(KITH_VECTORS_DIR "/event.txt");
}

static void known_answer_vector_v2(void **state) {
  check_vector(KITH_VECTORS_DIR "/event2.txt");
}

static void kind_names(void **state) {
  assert_string_equal(kith_event_kind_name(KITH_EV_MESSAGE), "message");
  assert_string_equal(kith_event_kind_name(KITH_EV_CREATE), "create");
  assert_string_equal(kith_event_kind_name(0), "unknown");
  assert_string_equal(kith_event_kind_name(99), "unknown");
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(round_trip),
      cmocka_unit_test(create_id_is_group_id),
      cmocka_unit_test(non_canonical_rejected),
      cmocka_unit_test(tampered_byte_anywhere_rejected),
      cmocka_unit_test(parent_rules),
      cmocka_unit_test(field_limits),
      cmocka_unit_test(round_trip_v2),
      cmocka_unit_test(v2_event_is_bound_to_its_group),
      cmocka_unit_test(v2_tampered_byte_anywhere_rejected),
      cmocka_unit_test(v2_shape_rules),
      cmocka_unit_test(known_answer_vector),
      cmocka_unit_test(known_answer_vector_v2),
      cmocka_unit_test(kind_names),
  };
  int failed = cmocka_run_group_tests_name("event", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
