/* Unit tests for core/gcrypto.c: key derivation, sealing, chains. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <string.h>

#include "core/gcrypto.h"

static const uint8_t SECRET[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const uint8_t SENDER[32] = {0xaa, 0xbb};

static void derivations_are_deterministic_and_distinct(void **state) {
  uint8_t m1[32], m2[32], c1[32], c2[32], other[32] = {9};
  kith_gcrypto_meta_key(SECRET, m1);
  kith_gcrypto_meta_key(SECRET, m2);
  assert_memory_equal(m1, m2, 32);
  kith_gcrypto_chain_start(SECRET, SENDER, c1);
  kith_gcrypto_chain_start(SECRET, other, c2);
  assert_memory_not_equal(c1, c2, 32);
  assert_memory_not_equal(c1, m1, 32);
  uint8_t k0[32], k1[32], before[32];
  memcpy(before, c1, 32);
  kith_gcrypto_chain_step(c1, k0);
  assert_memory_not_equal(before, c1, 32);
  kith_gcrypto_chain_step(c1, k1);
  assert_memory_not_equal(k0, k1, 32);
}

static void epoch_ids_bind_keys(void **state) {
  uint8_t m1[32], m2[32];
  kith_gcrypto_meta_key(SECRET, m1);
  memcpy(m2, m1, 32);
  m2[31] ^= 1;
  uint64_t a = kith_gcrypto_epoch_id(m1), b = kith_gcrypto_epoch_id(m2);
  assert_true(a != 0 && a <= KITH_EPOCH_ID_MAX);
  assert_true(b != 0 && b <= KITH_EPOCH_ID_MAX);
  assert_true(a != b);
  assert_true(kith_gcrypto_epoch_id(m1) == a);
}

static void seal_open_round_trip(void **state) {
  uint8_t key[32], out[64 + KITH_SEALED_OVERHEAD], back[64];
  const uint8_t ad[] = "ad";
  kith_gcrypto_meta_key(SECRET, key);
  kith_gcrypto_seal(key, ad, 2, (const uint8_t *)"hello", 5, out);
  assert_int_equal(kith_gcrypto_open(key, ad, 2, out, 5 + 40, back), KITH_OK);
  assert_memory_equal(back, "hello", 5);
  uint8_t wrong[32] = {0};
  assert_int_equal(kith_gcrypto_open(wrong, ad, 2, out, 45, back),
                   KITH_ERR_CRYPTO);
  assert_int_equal(
      kith_gcrypto_open(key, (const uint8_t *)"AD", 2, out, 45, back),
      KITH_ERR_CRYPTO);
  for (size_t i = 0; i < 45; i++) {
    out[i] ^= 0x10;
    assert_int_equal(kith_gcrypto_open(key, ad, 2, out, 45, back),
                     KITH_ERR_CRYPTO);
    out[i] ^= 0x10;
  }
  assert_int_equal(kith_gcrypto_open(key, ad, 2, out, 39, back),
                   KITH_ERR_CRYPTO);
}

/* The keys a sender produces by stepping its chain. */
static void sender_keys(uint8_t keys[][32], size_t n) {
  uint8_t chain[32];
  kith_gcrypto_chain_start(SECRET, SENDER, chain);
  for (size_t i = 0; i < n; i++)
    kith_gcrypto_chain_step(chain, keys[i]);
}

static void chain_out_of_order_within_window(void **state) {
  uint8_t keys[10][32], k[32];
  sender_keys(keys, 10);
  kith_chain *c = kith_chain_new(SECRET, SENDER);
  static const uint64_t order[] = {3, 0, 9, 1, 2, 8, 4, 7, 5, 6};
  for (size_t i = 0; i < 10; i++) {
    assert_int_equal(kith_chain_peek(c, order[i], k), KITH_OK);
    assert_memory_equal(k, keys[order[i]], 32);
    assert_int_equal(kith_chain_key(c, order[i], k), KITH_OK);
    assert_memory_equal(k, keys[order[i]], 32);
  }
  kith_chain_free(c);
}

static void chain_duplicate_n(void **state) {
  uint8_t k[32];
  kith_chain *c = kith_chain_new(SECRET, SENDER);
  assert_int_equal(kith_chain_key(c, 5, k), KITH_OK);
  assert_int_equal(kith_chain_key(c, 5, k), KITH_ERR_DUPLICATE);
  assert_int_equal(kith_chain_peek(c, 5, k), KITH_ERR_DUPLICATE);
  assert_int_equal(kith_chain_key(c, 2, k), KITH_OK);
  assert_int_equal(kith_chain_key(c, 2, k), KITH_ERR_DUPLICATE);
  kith_chain_free(c);
}

static void chain_beyond_window(void **state) {
  uint8_t k[32];
  kith_chain *c = kith_chain_new(SECRET, SENDER);
  assert_int_equal(kith_chain_key(c, KITH_SKIPPED_KEYS_MAX + 1, k),
                   KITH_ERR_LIMIT);
  assert_int_equal(kith_chain_key(c, UINT64_MAX, k), KITH_ERR_LIMIT);
  assert_int_equal(kith_chain_key(c, KITH_SKIPPED_KEYS_MAX, k), KITH_OK);
  assert_int_equal(kith_chain_key(c, 0, k), KITH_OK);
  /* Skipping again evicts the oldest skipped keys. */
  assert_int_equal(kith_chain_key(c, 2 * KITH_SKIPPED_KEYS_MAX, k), KITH_OK);
  assert_int_equal(kith_chain_key(c, 1, k), KITH_ERR_LIMIT);
  uint8_t keys[2 * KITH_SKIPPED_KEYS_MAX][32];
  sender_keys(keys, 2 * KITH_SKIPPED_KEYS_MAX);
  assert_int_equal(kith_chain_key(c, 2 * KITH_SKIPPED_KEYS_MAX - 1, k),
                   KITH_OK);
  assert_memory_equal(k, keys[2 * KITH_SKIPPED_KEYS_MAX - 1], 32);
  kith_chain_free(c);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(derivations_are_deterministic_and_distinct),
      cmocka_unit_test(epoch_ids_bind_keys),
      cmocka_unit_test(seal_open_round_trip),
      cmocka_unit_test(chain_out_of_order_within_window),
      cmocka_unit_test(chain_duplicate_n),
      cmocka_unit_test(chain_beyond_window),
  };
  int failed = cmocka_run_group_tests_name("gcrypto", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
