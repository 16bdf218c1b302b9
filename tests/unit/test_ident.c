/* Unit tests for core/ident.c: keys, signatures, sealed boxes, base32. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glib.h>
#include <sodium.h>
#include <string.h>

#include "core/ident.h"

#ifndef KITH_VECTORS_DIR
#error "KITH_VECTORS_DIR must name tests/vectors"
#endif

static void ident_of_byte(kith_ident *id, uint8_t b) {
  uint8_t seed[KITH_SEED_LEN];
  memset(seed, b, sizeof seed);
  assert_int_equal(kith_ident_from_seed(id, seed), KITH_OK);
}

/* tests/vectors/ident.txt: "seed_hex node_id_text" per line. */
static void vectors_reproduce(void **state) {
  gchar *text = NULL;
  assert_true(
      g_file_get_contents(KITH_VECTORS_DIR "/ident.txt", &text, NULL, NULL));
  gchar **lines = g_strsplit(text, "\n", -1);
  int checked = 0;
  for (gchar **l = lines; *l != NULL; l++) {
    if (**l == '\0' || **l == '#')
      continue;
    gchar **f = g_strsplit(*l, " ", -1);
    assert_int_equal(g_strv_length(f), 2);
    uint8_t seed[KITH_SEED_LEN], back[KITH_SEED_LEN], id[KITH_ID_LEN];
    size_t n;
    assert_int_equal(
        sodium_hex2bin(seed, sizeof seed, f[0], strlen(f[0]), NULL, &n, NULL),
        0);
    assert_int_equal(n, KITH_SEED_LEN);
    kith_ident ident;
    char out[KITH_ID_TEXT_LEN + 1];
    assert_int_equal(kith_ident_from_seed(&ident, seed), KITH_OK);
    kith_id_to_text(ident.pk, out);
    assert_string_equal(out, f[1]);
    assert_int_equal(kith_id_from_text(f[1], id), KITH_OK);
    assert_memory_equal(id, ident.pk, KITH_ID_LEN);
    kith_ident_seed(&ident, back);
    assert_memory_equal(back, seed, KITH_SEED_LEN);
    kith_ident_clear(&ident);
    g_strfreev(f);
    checked++;
  }
  assert_int_equal(checked, 3);
  g_strfreev(lines);
  g_free(text);
}

static void generate_and_clear(void **state) {
  kith_ident a, b, c;
  uint8_t seed[KITH_SEED_LEN];
  assert_int_equal(kith_ident_generate(&a), KITH_OK);
  assert_int_equal(kith_ident_generate(&b), KITH_OK);
  assert_memory_not_equal(a.pk, b.pk, KITH_ID_LEN);
  kith_ident_seed(&a, seed);
  assert_int_equal(kith_ident_from_seed(&c, seed), KITH_OK);
  assert_memory_equal(a.pk, c.pk, KITH_ID_LEN);
  assert_memory_equal(a.xpk, c.xpk, 32);
  kith_ident_clear(&a);
  kith_ident_clear(&b);
  kith_ident_clear(&c);
  assert_null(a.sk);
  assert_null(a.xsk);
  kith_ident_clear(&a); /* twice, and on a zeroed struct: harmless */
  kith_ident z = {0};
  kith_ident_clear(&z);
}

static void sign_verify(void **state) {
  kith_ident a, b;
  uint8_t sig[KITH_SIG_LEN];
  static const char msg[] = "attack at dawn";
  ident_of_byte(&a, 1);
  ident_of_byte(&b, 2);
  kith_ident_sign(&a, msg, sizeof msg, sig);
  assert_int_equal(kith_sig_verify(a.pk, msg, sizeof msg, sig), KITH_OK);
  assert_int_equal(kith_sig_verify(b.pk, msg, sizeof msg, sig),
                   KITH_ERR_SIGNATURE);
  assert_int_equal(kith_sig_verify(a.pk, msg, sizeof msg - 1, sig),
                   KITH_ERR_SIGNATURE);
  for (size_t i = 0; i < KITH_SIG_LEN; i += 7) {
    sig[i] ^= 0x01;
    assert_int_equal(kith_sig_verify(a.pk, msg, sizeof msg, sig),
                     KITH_ERR_SIGNATURE);
    sig[i] ^= 0x01;
  }
  kith_ident_sign(&a, NULL, 0, sig);
  assert_int_equal(kith_sig_verify(a.pk, NULL, 0, sig), KITH_OK);
  kith_ident_clear(&a);
  kith_ident_clear(&b);
}

static void seal_unseal(void **state) {
  kith_ident a, b;
  static const char msg[] = "group epoch secret";
  uint8_t box[sizeof msg + KITH_SEAL_OVERHEAD];
  uint8_t out[sizeof msg];
  ident_of_byte(&a, 3);
  ident_of_byte(&b, 4);
  assert_int_equal(kith_seal(a.pk, msg, sizeof msg, box), KITH_OK);
  assert_int_equal(kith_unseal(&a, box, sizeof box, out), KITH_OK);
  assert_memory_equal(out, msg, sizeof msg);
  assert_int_equal(kith_unseal(&b, box, sizeof box, out), KITH_ERR_CRYPTO);
  box[sizeof box - 1] ^= 0x80;
  assert_int_equal(kith_unseal(&a, box, sizeof box, out), KITH_ERR_CRYPTO);
  assert_int_equal(kith_unseal(&a, box, KITH_SEAL_OVERHEAD - 1, out),
                   KITH_ERR_CRYPTO);
  assert_int_equal(kith_unseal(&a, box, 0, out), KITH_ERR_CRYPTO);
  /* empty message */
  assert_int_equal(kith_seal(b.pk, NULL, 0, box), KITH_OK);
  assert_int_equal(kith_unseal(&b, box, KITH_SEAL_OVERHEAD, out), KITH_OK);
  /* an id that is not a usable Ed25519 point (small order) */
  uint8_t bad[KITH_ID_LEN] = {0};
  assert_int_equal(kith_seal(bad, msg, sizeof msg, box), KITH_ERR_CRYPTO);
  bad[0] = 1; /* the identity point */
  assert_int_equal(kith_seal(bad, msg, sizeof msg, box), KITH_ERR_CRYPTO);
  kith_ident_clear(&a);
  kith_ident_clear(&b);
}

static void base32_rfc4648(void **state) {
  static const char *const cases[][2] = {
      {"", ""},
      {"f", "my"},
      {"fo", "mzxq"},
      {"foo", "mzxw6"},
      {"foob", "mzxw6yq"},
      {"fooba", "mzxw6ytb"},
      {"foobar", "mzxw6ytboi"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    char out[32];
    uint8_t back[16];
    size_t n = strlen(cases[i][0]);
    kith_base32_encode((const uint8_t *)cases[i][0], n, out);
    assert_string_equal(out, cases[i][1]);
    assert_int_equal(kith_base32_decode(out, strlen(out), back, sizeof back),
                     (int)n);
    assert_memory_equal(back, cases[i][0], n);
    gchar *up = g_ascii_strup(out, -1);
    assert_int_equal(kith_base32_decode(up, strlen(up), back, sizeof back),
                     (int)n);
    assert_memory_equal(back, cases[i][0], n);
    g_free(up);
  }
}

static void base32_round_trip_and_errors(void **state) {
  uint8_t in[40], back[40];
  char out[80];
  for (size_t i = 0; i < sizeof in; i++)
    in[i] = (uint8_t)(i * 37 + 11);
  for (size_t n = 0; n <= sizeof in; n++) {
    kith_base32_encode(in, n, out);
    assert_int_equal(strlen(out), (n * 8 + 4) / 5);
    assert_int_equal(kith_base32_decode(out, strlen(out), back, sizeof back),
                     (int)n);
    assert_memory_equal(back, in, n);
  }
  static const char *const bad[] = {
      "mzx1", "mzx8", "mzx0", "my==", "m y", "mzxé", "mzx-"};
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
    assert_int_equal(kith_base32_decode(bad[i], strlen(bad[i]), back, 8), -1);
  /* output stops at max bytes */
  assert_int_equal(kith_base32_decode("mzxw6ytboi", 10, back, 2), 2);
  assert_memory_equal(back, "fo", 2);
}

static void id_text_rules(void **state) {
  kith_ident a;
  char text[KITH_ID_TEXT_LEN + 1], buf[KITH_ID_TEXT_LEN + 8];
  uint8_t id[KITH_ID_LEN];
  ident_of_byte(&a, 5);
  kith_id_to_text(a.pk, text);
  assert_int_equal(strlen(text), KITH_ID_TEXT_LEN);
  gchar *up = g_ascii_strup(text, -1);
  assert_int_equal(kith_id_from_text(up, id), KITH_OK);
  assert_memory_equal(id, a.pk, KITH_ID_LEN);
  g_free(up);
  /* wrong length */
  g_strlcpy(buf, text, sizeof buf);
  buf[KITH_ID_TEXT_LEN - 1] = '\0';
  assert_int_equal(kith_id_from_text(buf, id), KITH_ERR_ARG);
  g_snprintf(buf, sizeof buf, "%sa", text);
  assert_int_equal(kith_id_from_text(buf, id), KITH_ERR_ARG);
  assert_int_equal(kith_id_from_text("", id), KITH_ERR_ARG);
  assert_int_equal(kith_id_from_text(NULL, id), KITH_ERR_ARG);
  /* bad characters anywhere */
  for (size_t i = 0; i < KITH_ID_TEXT_LEN; i++) {
    g_strlcpy(buf, text, sizeof buf);
    buf[i] = (i % 2) ? '1' : '=';
    assert_int_equal(kith_id_from_text(buf, id), KITH_ERR_ARG);
  }
  /* the last char carries 1 data bit and 4 unused bits that must be 0 */
  g_strlcpy(buf, text, sizeof buf);
  for (const char *c = "abcdefghijklmnopqrstuvwxyz234567"; *c; c++) {
    buf[KITH_ID_TEXT_LEN - 1] = *c;
    int canonical = ((*c >= 'a' ? *c - 'a' : *c - '2' + 26) & 0x0f) == 0;
    assert_int_equal(kith_id_from_text(buf, id),
                     canonical ? KITH_OK : KITH_ERR_ARG);
  }
  kith_ident_clear(&a);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(vectors_reproduce),
      cmocka_unit_test(generate_and_clear),
      cmocka_unit_test(sign_verify),
      cmocka_unit_test(seal_unseal),
      cmocka_unit_test(base32_rfc4648),
      cmocka_unit_test(base32_round_trip_and_errors),
      cmocka_unit_test(id_text_rules),
  };
  int failed = cmocka_run_group_tests_name("ident", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
