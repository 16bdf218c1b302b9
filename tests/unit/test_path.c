/* Unit tests for the path rules of docs/protocol.md 9.4: which path a
 * link prefers, and the reconnect and probe backoff. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "net/path.h"

static void direct_beats_turn_beats_friend_relay(void **state) {
  assert_int_equal(kith_path_rank_of("host"), KITH_PATH_DIRECT);
  assert_int_equal(kith_path_rank_of("srflx"), KITH_PATH_DIRECT);
  assert_int_equal(kith_path_rank_of("prflx"), KITH_PATH_DIRECT);
  assert_int_equal(kith_path_rank_of("relay"), KITH_PATH_TURN);
  assert_int_equal(kith_path_rank_of("friend-relay"), KITH_PATH_FRIEND_RELAY);
  assert_int_equal(kith_path_rank_of(""), KITH_PATH_NONE);
  assert_int_equal(kith_path_rank_of(NULL), KITH_PATH_NONE);
  assert_int_equal(kith_path_rank_of("hostx"), KITH_PATH_NONE);
  assert_true(KITH_PATH_DIRECT > KITH_PATH_TURN);
  assert_true(KITH_PATH_TURN > KITH_PATH_FRIEND_RELAY);
  assert_true(KITH_PATH_FRIEND_RELAY > KITH_PATH_NONE);
  (void)state;
}

static void backoff_doubles_from_one_second_up_to_a_minute(void **state) {
  const uint32_t mid = 1u << 31; /* u = 1/2: no jitter */
  assert_int_equal(kith_backoff_ms(0, mid), 0);
  assert_int_equal(kith_backoff_ms(1, mid), 1000);
  assert_int_equal(kith_backoff_ms(2, mid), 2000);
  assert_int_equal(kith_backoff_ms(3, mid), 4000);
  assert_int_equal(kith_backoff_ms(6, mid), 32000);
  assert_int_equal(kith_backoff_ms(7, mid), 60000);
  assert_int_equal(kith_backoff_ms(1000, mid), 60000);
  assert_int_equal(kith_backoff_ms(4000000000u, mid), 60000);
  (void)state;
}

static void backoff_jitter_stays_within_a_quarter(void **state) {
  assert_int_equal(kith_backoff_ms(1, 0), 750);
  assert_int_equal(kith_backoff_ms(1, UINT32_MAX), 1249);
  assert_int_equal(kith_backoff_ms(7, 0), 45000);
  assert_int_equal(kith_backoff_ms(7, UINT32_MAX), 74999);
  for (unsigned k = 1; k < 12; k++)
    for (uint64_t r = 0; r <= UINT32_MAX; r += 0x10000001u) {
      uint64_t d = kith_backoff_ms(k, (uint32_t)r);
      uint64_t mid = kith_backoff_ms(k, 1u << 31);
      assert_true(d >= mid - mid / 4 && d < mid + mid / 4);
    }
  (void)state;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(direct_beats_turn_beats_friend_relay),
      cmocka_unit_test(backoff_doubles_from_one_second_up_to_a_minute),
      cmocka_unit_test(backoff_jitter_stays_within_a_quarter),
  };
  int failed = cmocka_run_group_tests_name("path", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
