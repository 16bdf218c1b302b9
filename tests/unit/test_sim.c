/* Unit test for the simulator (sim/sim.c, linked in): it must exercise
 * what nodes do with the engine, newcomers included. Virtual time: no
 * sleeps. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>

#include "sim/sim.h"

static sim_params params(void) {
  return (sim_params){.nodes = 300,
                      .messages = 20,
                      .loss = 0.01,
                      .crash = 0.1,
                      .latency_ms = 50,
                      .interval_ms = 1000,
                      .seed = 7,
                      .payload_bytes = 64,
                      .detect_ms = 1000,
                      .drain_ms = 30000,
                      .contacts = 3};
}

/* Nodes that join after the last message hold no event yet: they get the
 * whole history by reconciling with their contact, as a joining node does
 * (the node reconciles every new link at once). */
static void late_joiners_catch_up_the_history(void **state) {
  sim_params p = params();
  sim_result r;
  p.late = 0.1;
  assert_int_equal(sim_run(&p, &r), 0);
  assert_int_equal(r.late, 30);
  assert_int_equal(r.late_expected, 30 * 20);
  assert_int_equal(r.late_delivered, r.late_expected);
  assert_int_equal(r.delivered, r.expected);
}

static void same_seed_same_run(void **state) {
  sim_params p = params();
  sim_result a, b;
  p.late = 0.05;
  assert_int_equal(sim_run(&p, &a), 0);
  assert_int_equal(sim_run(&p, &b), 0);
  assert_int_equal(a.events, b.events);
  assert_int_equal(a.delivered, b.delivered);
  assert_int_equal(a.recon_rounds, b.recon_rounds);
  /* Each reconciliation draws a fresh fingerprint key from libsodium (a
   * peer must not predict it), and msgpack writes a fingerprint in 1 to 5
   * bytes: the byte count may differ by a few bytes per round, no more. */
  uint64_t diff = a.bytes > b.bytes ? a.bytes - b.bytes : b.bytes - a.bytes;
  assert_true(diff <= 8 * a.recon_rounds);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(late_joiners_catch_up_the_history),
      cmocka_unit_test(same_seed_same_run),
  };
  int failed = cmocka_run_group_tests_name("sim", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
