/* Unit tests for core/replay: time is a variable. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <string.h>

#include "core/replay.h"

#define T0 1700000000000ull
#define SKEW 120000

static void tag_of(uint32_t n, uint8_t tag[KITH_REPLAY_TAG_LEN]) {
  memset(tag, 0, KITH_REPLAY_TAG_LEN);
  memcpy(tag, &n, sizeof n);
}

static void source_of(uint32_t n, uint8_t src[4]) {
  memcpy(src, &n, 4);
}

/* Takes tag n from source s at time now, valid for SKEW. */
static int take(kith_replay *r, uint32_t n, uint32_t s, uint64_t now) {
  uint8_t tag[KITH_REPLAY_TAG_LEN], src[4];
  tag_of(n, tag);
  source_of(s, src);
  return kith_replay_check(r, tag, src, sizeof src, now + SKEW, now);
}

static void a_replay_is_refused_until_it_expires(void **state) {
  kith_replay *r = kith_replay_new(16, 4);
  assert_true(take(r, 1, 1, T0));
  assert_false(take(r, 1, 1, T0 + 1000));
  assert_false(take(r, 1, 2, T0 + 1000)); /* from anywhere */
  assert_true(take(r, 2, 1, T0 + 1000));
  assert_int_equal(kith_replay_size(r), 2);
  /* Once expired, tags are forgotten when room is made (a receiver
   * rejects a message that old by its time anyway). */
  assert_true(take(r, 3, 1, T0 + SKEW + 500)); /* 1 has expired */
  assert_int_equal(kith_replay_size(r), 2);
  assert_true(take(r, 4, 1, T0 + SKEW + 2000)); /* and now 2 */
  assert_int_equal(kith_replay_size(r), 2);
  kith_replay_free(r);
}

/* The cache is full of unexpired tags: a new tag is still taken. */
static void a_full_cache_still_takes_a_new_tag(void **state) {
  kith_replay *r = kith_replay_new(64, 8);
  for (uint32_t i = 0; i < 64; i++)
    assert_true(take(r, i, i / 8, T0));
  assert_int_equal(kith_replay_size(r), 64);
  assert_true(take(r, 1000, 99, T0));
  assert_int_equal(kith_replay_size(r), 64);
  assert_false(take(r, 1000, 99, T0));
  kith_replay_free(r);
}

/* Sources that each stay within their quota, but send more than the cache
 * holds in all, cannot make another source's tag be forgotten: without a
 * per-source quota the oldest (the victim's) would go, and its replay be
 * taken. (This was the slow, sleeping test of test_signal.c.) */
static void a_flood_cannot_evict_another_sources_tag(void **state) {
  enum { CAP = 4096, QUOTA = 64, HOSTS = CAP / QUOTA - 1, EACH = QUOTA + 6 };
  kith_replay *r = kith_replay_new(CAP, QUOTA);
  uint64_t now = T0;
  assert_true(take(r, 0xffffffffu, 0xffffffffu, now)); /* the victim */
  assert_true(HOSTS * EACH > CAP);
  for (uint32_t h = 0; h < HOSTS; h++)
    for (uint32_t i = 0; i < EACH; i++)
      assert_true(take(r, h * 1000 + i + 1, h, now += 5));
  assert_false(take(r, 0xffffffffu, 0xffffffffu, now)); /* still known */
  assert_true(kith_replay_size(r) <= CAP);
  kith_replay_free(r);
}

/* A source over its quota forgets its own oldest tag, nobody else's. */
static void a_source_at_its_quota_forgets_its_own_oldest(void **state) {
  kith_replay *r = kith_replay_new(100, 3);
  assert_true(take(r, 1, 1, T0));
  assert_true(take(r, 10, 2, T0));
  assert_true(take(r, 2, 1, T0));
  assert_true(take(r, 3, 1, T0));
  assert_true(take(r, 4, 1, T0)); /* 1 is forgotten */
  assert_true(take(r, 1, 1, T0)); /* so its replay gets in (harmless) */
  assert_false(take(r, 10, 2, T0));
  kith_replay_free(r);
}

static void bad_arguments(void **state) {
  uint8_t tag[KITH_REPLAY_TAG_LEN] = {1};
  uint8_t big[KITH_REPLAY_SOURCE_MAX + 1] = {0};
  assert_null(kith_replay_new(0, 1));
  assert_null(kith_replay_new(4, 0));
  assert_null(kith_replay_new(4, 5));
  kith_replay *r = kith_replay_new(4, 2);
  assert_false(kith_replay_check(r, tag, big, 0, T0, T0));
  assert_false(kith_replay_check(r, tag, big, sizeof big, T0, T0));
  assert_false(kith_replay_check(NULL, tag, big, 4, T0, T0));
  assert_true(kith_replay_check(r, tag, big, KITH_REPLAY_SOURCE_MAX, T0, T0));
  kith_replay_free(r);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_replay_is_refused_until_it_expires),
      cmocka_unit_test(a_full_cache_still_takes_a_new_tag),
      cmocka_unit_test(a_flood_cannot_evict_another_sources_tag),
      cmocka_unit_test(a_source_at_its_quota_forgets_its_own_oldest),
      cmocka_unit_test(bad_arguments),
  };
  int failed = cmocka_run_group_tests_name("replay", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
