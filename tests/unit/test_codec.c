/* Unit tests for core/codec.c: strict decoding, pre-scan limits, readers
 * and packing helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glib.h>
#include <sodium.h>
#include <string.h>

#include "core/codec.h"

/* Decodes hex (no spaces) into a g_malloc'ed buffer. */
static uint8_t *unhex(const char *hex, size_t *len) {
  size_t n = strlen(hex) / 2;
  uint8_t *b = g_malloc(n + 1);
  assert_int_equal(sodium_hex2bin(b, n, hex, strlen(hex), NULL, len, NULL), 0);
  assert_int_equal(*len, n);
  return b;
}

static kith_err strict_hex(const char *hex) {
  size_t len;
  uint8_t *b = unhex(hex, &len);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  kith_err err = kith_codec_unpack(b, len, &u);
  msgpack_unpacked_destroy(&u);
  g_free(b);
  return err;
}

static kith_err loose_hex(const char *hex) {
  size_t len;
  uint8_t *b = unhex(hex, &len);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  kith_err err = kith_codec_unpack_loose(b, len, &u);
  msgpack_unpacked_destroy(&u);
  g_free(b);
  return err;
}

/* Strict decode must succeed and re-encoding must give the same bytes. */
static void assert_round_trip(const uint8_t *b, size_t len) {
  msgpack_unpacked u;
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_unpacked_init(&u);
  assert_int_equal(kith_codec_unpack(b, len, &u), KITH_OK);
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  assert_int_equal(msgpack_pack_object(&pk, u.data), 0);
  assert_int_equal(sb.size, len);
  assert_memory_equal(sb.data, b, len);
  msgpack_sbuffer_destroy(&sb);
  msgpack_unpacked_destroy(&u);
  msgpack_unpacked_init(&u);
  assert_int_equal(kith_codec_unpack_loose(b, len, &u), KITH_OK);
  msgpack_unpacked_destroy(&u);
}

static void scalars_round_trip(void **state) {
  static const char *const canon[] = {"c0",
                                      "c2",
                                      "c3",
                                      "00",
                                      "7f",
                                      "cc80",
                                      "ccff",
                                      "cd0100",
                                      "cdffff",
                                      "ce00010000",
                                      "ceffffffff",
                                      "cf0000000100000000",
                                      "cfffffffffffffffff",
                                      "ff",
                                      "e0",
                                      "d0df",
                                      "d080",
                                      "d1ff7f",
                                      "d18000",
                                      "d2ffff7fff",
                                      "d280000000",
                                      "d3ffffffff7fffffff",
                                      "d38000000000000000",
                                      "a0",
                                      "a161",
                                      "c400",
                                      "c40100",
                                      "90",
                                      "9100",
                                      "919190",
                                      "92c0a3616263"};
  for (size_t i = 0; i < G_N_ELEMENTS(canon); i++) {
    size_t len;
    uint8_t *b = unhex(canon[i], &len);
    assert_round_trip(b, len);
    g_free(b);
  }
}

/* Packs a str, bin or nil-filled array of n elements with msgpack-c. */
static void pack_sized(msgpack_packer *pk, char kind, size_t n) {
  static const char fill[70000];
  if (kind == 's') {
    msgpack_pack_str_with_body(pk, fill, n);
  } else if (kind == 'b') {
    msgpack_pack_bin_with_body(pk, fill, n);
  } else {
    msgpack_pack_array(pk, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
      msgpack_pack_nil(pk);
  }
}

static void sized_round_trip(void **state) {
  static const struct {
    char kind;
    size_t n;
    uint8_t head;
  } cases[] = {
      {'s', 31, 0xbf},    {'s', 32, 0xd9},    {'s', 255, 0xd9},
      {'s', 256, 0xda},   {'s', 65535, 0xda}, {'s', 65536, 0xdb},
      {'b', 255, 0xc4},   {'b', 256, 0xc5},   {'b', 65535, 0xc5},
      {'b', 65536, 0xc6}, {'a', 15, 0x9f},    {'a', 16, 0xdc},
      {'a', 65535, 0xdc}, {'a', 65536, 0xdd},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack_sized(&pk, cases[i].kind, cases[i].n);
    assert_int_equal((uint8_t)sb.data[0], cases[i].head);
    assert_round_trip((const uint8_t *)sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
  }
}

static void rejects_truncated_and_trailing(void **state) {
  assert_int_equal(strict_hex(""), KITH_ERR_DECODE);
  assert_int_equal(strict_hex("cd01"), KITH_ERR_DECODE);
  assert_int_equal(strict_hex("a36162"), KITH_ERR_DECODE);
  assert_int_equal(strict_hex("9201"), KITH_ERR_DECODE);
  assert_int_equal(strict_hex("cf00000000"), KITH_ERR_DECODE);
  assert_int_equal(strict_hex("dc00"), KITH_ERR_DECODE);
  assert_int_equal(strict_hex("0000"), KITH_ERR_DECODE);
  assert_int_equal(strict_hex("c0c0"), KITH_ERR_DECODE);
  assert_int_equal(strict_hex("910000"), KITH_ERR_DECODE);
  assert_int_equal(loose_hex("0000"), KITH_ERR_DECODE);
  assert_int_equal(loose_hex("9201"), KITH_ERR_DECODE);
}

static void rejects_non_minimal(void **state) {
  static const char *const bad[] = {"cc01",
                                    "cc7f",
                                    "cd00ff",
                                    "cd0001",
                                    "ce0000ffff",
                                    "ce00000001",
                                    "cf00000000ffffffff",
                                    "cf0000000000000001",
                                    "d001",
                                    "d0ff",
                                    "d1ff80",
                                    "d10001",
                                    "d2ffff8000",
                                    "d3ffffffff80000000",
                                    "d30000000000000001",
                                    "d90161",
                                    "da000161",
                                    "db0000000161",
                                    "c5000161",
                                    "c60000000161",
                                    "dc000100",
                                    "dd0000000100",
                                    "dc0000",
                                    "dd00000000"};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    assert_int_equal(strict_hex(bad[i]), KITH_ERR_DECODE);
    assert_int_equal(loose_hex(bad[i]), KITH_OK); /* loose is not canonical */
  }
}

static void rejects_forbidden_types(void **state) {
  static const char *const bad[] = {"c1",
                                    "ca00000000",
                                    "cb0000000000000000",
                                    "d40100",
                                    "d5010000",
                                    "d601"
                                    "00000000",
                                    "d701"
                                    "0000000000000000",
                                    "d801"
                                    "00000000000000000000000000000000",
                                    "c70101"
                                    "00",
                                    "c8000101"
                                    "00",
                                    "c900000001"
                                    "01"
                                    "00",
                                    "91ca00000000"};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
    assert_int_equal(strict_hex(bad[i]), KITH_ERR_DECODE);
    assert_int_equal(loose_hex(bad[i]), KITH_ERR_DECODE);
  }
}

static void maps_only_when_loose(void **state) {
  assert_int_equal(strict_hex("80"), KITH_ERR_DECODE);
  assert_int_equal(strict_hex("810001"), KITH_ERR_DECODE);
  assert_int_equal(strict_hex("de00010001"), KITH_ERR_DECODE);
  assert_int_equal(strict_hex("91810001"), KITH_ERR_DECODE);
  assert_int_equal(loose_hex("80"), KITH_OK);
  assert_int_equal(loose_hex("82a16101a16292c0c3"), KITH_OK);
  assert_int_equal(loose_hex("de00010001"), KITH_OK);
  assert_int_equal(loose_hex("df0000000100a0"), KITH_OK);
  assert_int_equal(loose_hex("8100"), KITH_ERR_DECODE); /* missing value */
}

static void depth_limit(void **state) {
  char hex[128] = "";
  for (int i = 0; i < 8; i++)
    strcat(hex, "91");
  strcat(hex, "c0");
  assert_int_equal(strict_hex(hex), KITH_OK);
  hex[16] = '\0';
  strcat(hex, "90"); /* ninth level, even when empty */
  assert_int_equal(strict_hex(hex), KITH_ERR_DECODE);
  hex[0] = '\0';
  for (int i = 0; i < 9; i++)
    strcat(hex, "91");
  strcat(hex, "c0");
  assert_int_equal(strict_hex(hex), KITH_ERR_DECODE);
  hex[0] = '\0';
  for (int i = 0; i < 16; i++)
    strcat(hex, "91");
  strcat(hex, "c0");
  assert_int_equal(loose_hex(hex), KITH_OK);
  hex[32] = '\0';
  strcat(hex, "91c0");
  assert_int_equal(loose_hex(hex), KITH_ERR_DECODE);
  /* Siblings do not add depth. */
  assert_int_equal(strict_hex("9391919191919191c09090"), KITH_OK);
}

static void rejects_lengths_beyond_end(void **state) {
  assert_int_equal(strict_hex("a561"), KITH_ERR_DECODE);
  assert_int_equal(strict_hex("c40561"), KITH_ERR_DECODE);
  assert_int_equal(strict_hex("dbffffffff"), KITH_ERR_DECODE);
  assert_int_equal(strict_hex("c6ffffffff00"), KITH_ERR_DECODE);
  assert_int_equal(strict_hex("dc000301"), KITH_ERR_DECODE);
  assert_int_equal(strict_hex("93920000"), KITH_ERR_DECODE);
  assert_int_equal(loose_hex("dbffffffff"), KITH_ERR_DECODE);
}

/* These headers would make msgpack-c preallocate gigabytes: the pre-scan
 * must refuse them before msgpack-c runs. */
static void rejects_count_bombs(void **state) {
  static const char *const bombs[] = {"dcffff0000", "dd0fffffff",
                                      "ddffffffff00", "df0fffffff", "deffff"};
  for (size_t i = 0; i < G_N_ELEMENTS(bombs); i++) {
    const char *hex = bombs[i];
    size_t len;
    uint8_t *b = unhex(hex, &len);
    assert_int_equal(kith_codec_prescan(b, len, 8, 0), KITH_ERR_DECODE);
    assert_int_equal(kith_codec_prescan(b, len, 16, KITH_CODEC_ALLOW_MAPS),
                     KITH_ERR_DECODE);
    g_free(b);
    assert_int_equal(strict_hex(hex), KITH_ERR_DECODE);
    assert_int_equal(loose_hex(hex), KITH_ERR_DECODE);
  }
}

static void prescan_limits(void **state) {
  size_t big = KITH_CODEC_MAX_LEN + 1;
  uint8_t *b = g_malloc0(big);
  assert_int_equal(kith_codec_prescan(b, big, 8, 0), KITH_ERR_LIMIT);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  assert_int_equal(kith_codec_unpack(b, big, &u), KITH_ERR_LIMIT);
  msgpack_unpacked_destroy(&u);
  g_free(b);
  const uint8_t scalar = 0x01, arr[] = {0x91, 0x01};
  assert_int_equal(kith_codec_prescan(&scalar, 1, 0, 0), KITH_OK);
  assert_int_equal(kith_codec_prescan(arr, 2, 0, 0), KITH_ERR_DECODE);
  assert_int_equal(kith_codec_prescan(arr, 2, 1, 0), KITH_OK);
  assert_int_equal(kith_codec_prescan(NULL, 0, 8, 0), KITH_ERR_DECODE);
}

/* Decoded objects must stay valid after the input buffer is gone. */
static void objects_outlive_input(void **state) {
  size_t len;
  uint8_t *b = unhex("92a3616263c403010203", &len);
  msgpack_unpacked u;
  const msgpack_object *f;
  const char *s;
  const uint8_t *bin;
  size_t n;
  msgpack_unpacked_init(&u);
  assert_int_equal(kith_codec_unpack(b, len, &u), KITH_OK);
  memset(b, 0, len);
  g_free(b);
  assert_int_equal(kith_codec_array(&u.data, 2, &f), KITH_OK);
  assert_int_equal(kith_codec_str(&f[0], 3, &s, &n), KITH_OK);
  assert_int_equal(n, 3);
  assert_memory_equal(s, "abc", 3);
  assert_int_equal(kith_codec_bin(&f[1], 3, &bin, &n), KITH_OK);
  assert_memory_equal(bin, "\x01\x02\x03", 3);
  msgpack_unpacked_destroy(&u);
  /* a lone top-level string also lives in the zone */
  b = unhex("a26869", &len);
  msgpack_unpacked_init(&u);
  assert_int_equal(kith_codec_unpack(b, len, &u), KITH_OK);
  g_free(b);
  assert_int_equal(kith_codec_str(&u.data, 2, &s, &n), KITH_OK);
  assert_memory_equal(s, "hi", 2);
  msgpack_unpacked_destroy(&u);
}

static kith_err str_of_hex(const char *hex, size_t max) {
  size_t len, n;
  const char *s;
  char *dup = NULL;
  uint8_t *b = unhex(hex, &len);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  assert_int_equal(kith_codec_unpack(b, len, &u), KITH_OK);
  kith_err err = kith_codec_str(&u.data, max, &s, &n);
  kith_err err2 = kith_codec_strdup(&u.data, max, &dup);
  assert_int_equal(err, err2);
  if (err2 == KITH_OK) {
    assert_int_equal(strlen(dup), n);
    assert_memory_equal(dup, s, n);
  }
  g_free(dup);
  msgpack_unpacked_destroy(&u);
  g_free(b);
  return err;
}

static void str_validation(void **state) {
  assert_int_equal(str_of_hex("a0", 0), KITH_OK);
  assert_int_equal(str_of_hex("a3616263", 3), KITH_OK);
  assert_int_equal(str_of_hex("a3616263", 2), KITH_ERR_DECODE);
  assert_int_equal(str_of_hex("a2c3a9", 8), KITH_OK);     /* é */
  assert_int_equal(str_of_hex("a4f09f9880", 8), KITH_OK); /* emoji */
  assert_int_equal(str_of_hex("a2c328", 8), KITH_ERR_DECODE);
  assert_int_equal(str_of_hex("a2c080", 8), KITH_ERR_DECODE); /* overlong */
  assert_int_equal(str_of_hex("a1ff", 8), KITH_ERR_DECODE);
  assert_int_equal(str_of_hex("a3eda080", 8), KITH_ERR_DECODE); /* surrogate */
  assert_int_equal(str_of_hex("a1c3", 8), KITH_ERR_DECODE);
  assert_int_equal(str_of_hex("a3610062", 8), KITH_ERR_DECODE); /* NUL */
  assert_int_equal(str_of_hex("a100", 8), KITH_ERR_DECODE);
  assert_int_equal(str_of_hex("c40161", 8), KITH_ERR_DECODE); /* bin */
}

static void field_readers(void **state) {
  size_t len;
  uint8_t *b = unhex("96cdffffc403010203c0a0ff9201c3", &len);
  msgpack_unpacked u;
  const msgpack_object *f, *g;
  uint64_t v;
  uint8_t three[3];
  const uint8_t *p;
  size_t n;
  msgpack_unpacked_init(&u);
  assert_int_equal(kith_codec_unpack(b, len, &u), KITH_OK);
  assert_int_equal(kith_codec_array(&u.data, 5, &f), KITH_ERR_DECODE);
  assert_int_equal(kith_codec_array(&u.data, UINT32_MAX, &f), KITH_OK);
  assert_int_equal(kith_codec_array(&u.data, 6, &f), KITH_OK);
  assert_int_equal(kith_codec_uint(&f[0], 65535, &v), KITH_OK);
  assert_int_equal(v, 65535);
  assert_int_equal(kith_codec_uint(&f[0], 65534, &v), KITH_ERR_DECODE);
  assert_int_equal(kith_codec_uint(&f[4], UINT64_MAX, &v), KITH_ERR_DECODE);
  assert_int_equal(kith_codec_uint(&f[2], UINT64_MAX, &v), KITH_ERR_DECODE);
  assert_int_equal(kith_codec_bin_fixed(&f[1], three, 3), KITH_OK);
  assert_memory_equal(three, "\x01\x02\x03", 3);
  assert_int_equal(kith_codec_bin_fixed(&f[1], three, 2), KITH_ERR_DECODE);
  assert_int_equal(kith_codec_bin_fixed(&f[3], three, 0), KITH_ERR_DECODE);
  assert_int_equal(kith_codec_bin(&f[1], 2, &p, &n), KITH_ERR_DECODE);
  assert_int_equal(kith_codec_bin(&f[1], 3, &p, &n), KITH_OK);
  assert_int_equal(n, 3);
  assert_int_equal(kith_codec_array(&f[2], 0, &g), KITH_ERR_DECODE);
  assert_int_equal(kith_codec_array(&f[5], 2, &g), KITH_OK);
  assert_int_equal(g[1].type, MSGPACK_OBJECT_BOOLEAN);
  msgpack_unpacked_destroy(&u);
  g_free(b);
}

static void pack_helpers(void **state) {
  kith_pack p;
  uint8_t *out;
  size_t len;
  kith_pack_init(&p);
  kith_pack_array(&p, 7);
  kith_pack_uint(&p, 300);
  kith_pack_bin(&p, "\xaa\xbb", 2);
  kith_pack_str(&p, "hello", 5);
  kith_pack_cstr(&p, "");
  kith_pack_nil(&p);
  kith_pack_bool(&p, 1);
  kith_pack_bool(&p, 0);
  assert_int_equal(kith_pack_take(&p, &out, &len), KITH_OK);
  size_t elen;
  uint8_t *exp = unhex("97cd012cc402aabba568656c6c6fa0c0c3c2", &elen);
  assert_int_equal(len, elen);
  assert_memory_equal(out, exp, len);
  assert_round_trip(out, len);
  g_free(out);
  g_free(exp);
  /* p is reusable after take */
  kith_pack_uint(&p, 1);
  assert_int_equal(kith_pack_take(&p, &out, &len), KITH_OK);
  assert_int_equal(len, 1);
  assert_int_equal(out[0], 1);
  g_free(out);
  assert_int_equal(kith_pack_take(&p, &out, &len), KITH_OK);
  assert_null(out);
  assert_int_equal(len, 0);
  kith_pack_cstr(&p, "dropped");
  kith_pack_clear(&p);
  p.failed = 1; /* as after an allocation failure */
  assert_int_equal(kith_pack_take(&p, &out, &len), KITH_ERR_NOMEM);
  assert_null(out);
  assert_int_equal(p.failed, 0);
  kith_pack_clear(&p);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(scalars_round_trip),
      cmocka_unit_test(sized_round_trip),
      cmocka_unit_test(rejects_truncated_and_trailing),
      cmocka_unit_test(rejects_non_minimal),
      cmocka_unit_test(rejects_forbidden_types),
      cmocka_unit_test(maps_only_when_loose),
      cmocka_unit_test(depth_limit),
      cmocka_unit_test(rejects_lengths_beyond_end),
      cmocka_unit_test(rejects_count_bombs),
      cmocka_unit_test(prescan_limits),
      cmocka_unit_test(objects_outlive_input),
      cmocka_unit_test(str_validation),
      cmocka_unit_test(field_readers),
      cmocka_unit_test(pack_helpers),
  };
  int failed = cmocka_run_group_tests_name("codec", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
