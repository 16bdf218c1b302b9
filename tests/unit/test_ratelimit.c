/* Unit tests for core/ratelimit: time is a variable. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <string.h>

#include "core/ratelimit.h"

#define T0 1000000u

static void bucket_allows_the_burst_then_the_rate(void **state) {
  kith_bucket b;
  uint64_t now = T0;
  kith_bucket_init(&b, 40, now);
  for (int i = 0; i < 40; i++)
    assert_true(kith_bucket_take(&b, 20, 40, 1, now));
  assert_false(kith_bucket_take(&b, 20, 40, 1, now));
  now += 40; /* 0.8 tokens */
  assert_false(kith_bucket_take(&b, 20, 40, 1, now));
  now += 60; /* 2 tokens */
  assert_true(kith_bucket_take(&b, 20, 40, 1, now));
  assert_true(kith_bucket_take(&b, 20, 40, 1, now));
  assert_false(kith_bucket_take(&b, 20, 40, 1, now));
  now += 60 * 1000; /* refills to the burst, not beyond */
  for (int i = 0; i < 40; i++)
    assert_true(kith_bucket_take(&b, 20, 40, 1, now));
  assert_false(kith_bucket_take(&b, 20, 40, 1, now));
}

static void bucket_ignores_a_clock_that_goes_back(void **state) {
  kith_bucket b;
  kith_bucket_init(&b, 2, T0);
  assert_true(kith_bucket_take(&b, 1, 2, 2, T0));
  assert_false(kith_bucket_take(&b, 1, 2, 1, T0 - 500000));
  assert_true(kith_bucket_take(&b, 1, 2, 1, T0 + 1000));
}

static void bucket_cost_larger_than_tokens_takes_none(void **state) {
  kith_bucket b;
  kith_bucket_init(&b, 10, T0);
  assert_false(kith_bucket_take(&b, 1, 10, 11, T0));
  assert_true(kith_bucket_take(&b, 1, 10, 10, T0));
}

static void keys_have_their_own_buckets(void **state) {
  kith_ratelimit *rl = kith_ratelimit_new(20, 40, 16);
  const uint8_t a[4] = {10, 0, 0, 1}, b[4] = {10, 0, 0, 2};
  for (int i = 0; i < 40; i++)
    assert_true(kith_ratelimit_take(rl, a, 4, 1, T0));
  assert_false(kith_ratelimit_take(rl, a, 4, 1, T0));
  assert_true(kith_ratelimit_take(rl, b, 4, 1, T0));
  assert_int_equal(kith_ratelimit_size(rl), 2);
  kith_ratelimit_free(rl);
}

/* 1,100 spoofed sources against a 1,024-key table: a new source still gets
 * a full bucket, at once, and the table stays at its cap. */
static void flood_of_sources_cannot_shut_out_a_new_one(void **state) {
  kith_ratelimit *rl = kith_ratelimit_new(20, 40, 1024);
  uint64_t now = T0;
  for (uint32_t i = 0; i < 1100; i++) {
    uint8_t ip[4] = {198, 18, (uint8_t)(i >> 8), (uint8_t)i};
    for (int k = 0; k < 40; k++)
      assert_true(kith_ratelimit_take(rl, ip, 4, 1, now));
    now += 1; /* about 1,000 packets a second, all active */
  }
  assert_int_equal(kith_ratelimit_size(rl), 1024);
  const uint8_t newcomer[4] = {192, 0, 2, 7};
  for (int k = 0; k < 40; k++)
    assert_true(kith_ratelimit_take(rl, newcomer, 4, 1, now));
  assert_int_equal(kith_ratelimit_size(rl), 1024);
  kith_ratelimit_free(rl);
}

/* The least recently used key is the one that goes. */
static void table_full_evicts_least_recently_used(void **state) {
  kith_ratelimit *rl = kith_ratelimit_new(1, 2, 2);
  const uint8_t a[1] = {1}, b[1] = {2}, c[1] = {3};
  assert_true(kith_ratelimit_take(rl, a, 1, 2, T0)); /* a empty */
  assert_true(kith_ratelimit_take(rl, b, 1, 1, T0));
  assert_false(kith_ratelimit_take(rl, a, 1, 1, T0)); /* a used last */
  assert_true(kith_ratelimit_take(rl, c, 1, 1, T0));  /* b goes */
  assert_false(kith_ratelimit_take(rl, a, 1, 1, T0)); /* a kept: empty */
  assert_true(kith_ratelimit_take(rl, b, 1, 2, T0));  /* b is new: full */
  kith_ratelimit_free(rl);
}

static void bad_arguments(void **state) {
  assert_null(kith_ratelimit_new(0, 40, 16));
  assert_null(kith_ratelimit_new(20, 0.5, 16));
  assert_null(kith_ratelimit_new(20, 40, 0));
  kith_ratelimit *rl = kith_ratelimit_new(20, 40, 16);
  uint8_t big[KITH_RATELIMIT_KEY_MAX + 1] = {0};
  assert_false(kith_ratelimit_take(rl, big, 0, 1, T0));
  assert_false(kith_ratelimit_take(rl, big, sizeof big, 1, T0));
  assert_false(kith_ratelimit_take(NULL, big, 4, 1, T0));
  assert_true(kith_ratelimit_take(rl, big, KITH_RATELIMIT_KEY_MAX, 1, T0));
  kith_ratelimit_free(rl);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(bucket_allows_the_burst_then_the_rate),
      cmocka_unit_test(bucket_ignores_a_clock_that_goes_back),
      cmocka_unit_test(bucket_cost_larger_than_tokens_takes_none),
      cmocka_unit_test(keys_have_their_own_buckets),
      cmocka_unit_test(flood_of_sources_cannot_shut_out_a_new_one),
      cmocka_unit_test(table_full_evicts_least_recently_used),
      cmocka_unit_test(bad_arguments),
  };
  int failed = cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
