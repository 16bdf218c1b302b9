/* Unit tests for core/group*.c: the concurrency rules (group_state.c) and
 * convergence of replicas over random delivery schedules. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_group_world.h"

static const uint8_t *log_id(world *w, guint i, kith_event *ev) {
  size_t len;
  const uint8_t *p = g_bytes_get_data(w->log->pdata[i], &len);
  assert_int_equal(kith_event_decode(p, len, w->gid, ev), KITH_OK);
  return ev->id;
}

/* Is log entry i ordered before log entry j in (depth, id)? */
static int sorts_before(world *w, guint i, guint j) {
  kith_event x, y;
  log_id(w, i, &x);
  log_id(w, j, &y);
  int r = x.depth != y.depth ? x.depth < y.depth : memcmp(x.id, y.id, 32) < 0;
  kith_event_clear(&x);
  kith_event_clear(&y);
  return r;
}

static void assert_all_same(world *w, const int *who, int n) {
  for (int i = 1; i < n; i++)
    assert_same_state(w, who[0], who[i]);
}

static void concurrent_removal_beats_message_of_removed(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, C);
  do_remove(w, A, C);
  send_text(w, C, "sneaky"); /* c has not seen its removal */
  int unread = 0;
  char *text = NULL;
  for (guint i = 0; i < w->log->len; i++)
    assert_true(ok_rc(deliver_x(w->g[B], w->log->pdata[i], &text, &unread)));
  assert_null(text);
  assert_int_equal(unread, 1);
  sync_nodes(w, A, C);
  static const int all[] = {A, B, C};
  assert_all_same(w, all, 3);
  assert_false(kith_group_is_member(w->g[A], w->id[C].pk));
  assert_false(kith_group_rekey_due(w->g[B]));
  world_free(w);
}

/* b (admin) removes c (admin, admitted later: b outranks c) while a
 * promotes c to owner; c, an owner in its own view, removes b. Each
 * removal is valid at its parents, so they are a concurrent mutual
 * removal: the more senior author wins (role at its parents first, then
 * admission), whatever the order of arrival or the events' depths. */
static void concurrent_mutual_removals_settled_by_seniority(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, D);
  do_role(w, A, B, KITH_ROLE_ADMIN);
  do_role(w, A, C, KITH_ROLE_ADMIN);
  sync_nodes(w, A, D);
  do_remove(w, B, C); /* b has not seen the promotion */
  guint promo = w->log->len;
  do_role(w, A, C, KITH_ROLE_OWNER);
  /* c sees its promotion, not its removal */
  for (guint i = promo; i < w->log->len; i++)
    assert_int_equal(deliver(w->g[C], w->log->pdata[i], NULL), KITH_OK);
  do_remove(w, C, B);
  sync_nodes(w, A, D);
  static const int all[] = {A, B, C, D};
  assert_all_same(w, all, 4);
  assert_true(kith_group_is_member(w->g[A], w->id[C].pk));
  assert_false(kith_group_is_member(w->g[A], w->id[B].pk));
  assert_int_equal(member_of(w, D, C)->role, KITH_ROLE_OWNER);
  assert_false(kith_group_rekey_due(w->g[D]));
  send_text(w, A, "after both");
  char *text = sync_read(w, B);
  assert_null(text);
  text = sync_read(w, C);
  assert_string_equal(text, "after both");
  g_free(text);
  world_free(w);
}

/* Acting on someone needs a higher rank: the same role is not enough
 * against someone admitted earlier. */
static void junior_admin_cannot_remove_senior(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, C);
  do_role(w, A, B, KITH_ROLE_ADMIN);
  do_role(w, A, C, KITH_ROLE_ADMIN);
  sync_nodes(w, A, C);
  GPtrArray *acc = acc_new();
  assert_int_equal(kith_group_remove(w->g[C], w->id[B].pk, w->now, acc),
                   KITH_ERR_FORBIDDEN);
  assert_int_equal(acc->len, 0);
  g_ptr_array_unref(acc);
  do_remove(w, B, C);
  sync_nodes(w, A, C);
  assert_false(kith_group_is_member(w->g[A], w->id[C].pk));
  world_free(w);
}

static void concurrent_rekeys_pick_one_epoch(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, C);
  guint kb = w->log->len;
  do_rekey(w, B);
  guint kc = w->log->len;
  do_rekey(w, C);
  send_text(w, B, "in b's epoch");
  send_text(w, C, "in c's epoch");
  assert_true(kith_group_epoch_id(w->g[B]) != kith_group_epoch_id(w->g[C]));
  GPtrArray *texts = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < w->log->len; i++) {
    char *text = NULL;
    assert_true(ok_rc(deliver(w->g[A], w->log->pdata[i], &text)));
    if (text)
      g_ptr_array_add(texts, text);
  }
  assert_int_equal(texts->len, 2); /* every epoch's secret is kept */
  g_ptr_array_unref(texts);
  sync_nodes(w, A, C);
  static const int all[] = {A, B, C};
  assert_all_same(w, all, 3);
  assert_int_equal(kith_group_epoch(w->g[A]), 2);
  /* the current epoch is the one of the rekey that sorts last */
  int last = sorts_before(w, kb, kc) ? C : B;
  kith_group *g = kith_group_new(w->gid, &w->id[last]);
  for (guint i = 0; i <= (last == C ? kc : kb); i++)
    assert_true(ok_rc(deliver(g, w->log->pdata[i], NULL)));
  assert_int_equal(kith_group_epoch_id(g), kith_group_epoch_id(w->g[A]));
  kith_group_free(g);
  for (int i = A; i <= C; i++)
    assert_true(kith_group_is_ready(w->g[i]));
  world_free(w);
}

/* a demotes b while b, still admin in its view, promotes c: the
 * demotion beats b's concurrent actions that needed the role, wherever
 * they sort. */
static void demotion_beats_concurrent_actions_of_the_demoted(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, D);
  do_role(w, A, B, KITH_ROLE_ADMIN);
  sync_nodes(w, A, D);
  do_role(w, A, B, KITH_ROLE_MEMBER);
  do_role(w, B, C, KITH_ROLE_ADMIN); /* b is still admin in its view */
  sync_nodes(w, A, D);
  static const int all[] = {A, B, C, D};
  assert_all_same(w, all, 4);
  assert_int_equal(member_of(w, D, B)->role, KITH_ROLE_MEMBER);
  assert_int_equal(member_of(w, D, C)->role, KITH_ROLE_MEMBER);
  world_free(w);
}

static void single_use_invite_redeemed_twice_admits_lower_id(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, C);
  new_invite(w, A, 1, T0 + HOUR);
  sync_nodes(w, A, C);
  guint ad = w->log->len;
  admit_x(w, B, D, KITH_OK);
  guint ae = w->log->len;
  admit_x(w, C, E, KITH_OK);
  sync_nodes(w, A, E);
  int winner = sorts_before(w, ad, ae) ? D : E, loser = winner == D ? E : D;
  static const int all[] = {A, B, C, D, E};
  assert_all_same(w, all, 5);
  assert_true(kith_group_is_member(w->g[A], w->id[winner].pk));
  assert_false(kith_group_is_member(w->g[A], w->id[loser].pk));
  /* the loser's own replica tells it so */
  assert_false(kith_group_is_member(w->g[loser], w->id[loser].pk));
  assert_true(kith_group_is_member(w->g[winner], w->id[winner].pk));
  assert_int_equal(kith_group_n_members(w->g[B]), 4);
  world_free(w);
}

/* ---- property: any delivery schedule converges ---- */

static void random_sync(world *w, GRand *rng, int from, int to) {
  for (int k = from; k <= to; k++)
    for (guint i = 0; i < w->log->len; i++)
      if (g_rand_double(rng) < 0.5)
        assert_true(ok_rc(deliver(w->g[k], w->log->pdata[i], NULL)));
}

static void chatter(world *w, GRand *rng, int round) {
  char text[64];
  for (int k = A; k <= F * 3; k++)
    if (kith_group_is_ready(w->g[k % (F + 1)]) &&
        kith_group_is_member(w->g[k % (F + 1)], w->id[k % (F + 1)].pk) &&
        g_rand_double(rng) < 0.6) {
      g_snprintf(text, sizeof text, "round %d from %d", round, k);
      send_text(w, k % (F + 1), text);
    }
}

/* Concurrent adds (a single-use invite spent twice), a removal racing the
 * removed admin's own removal of someone else, a promotion, concurrent
 * rekeys and a leave, with messages and partial syncs in between. */
static void build_dag(world *w, GRand *rng) {
  do_role(w, A, B, KITH_ROLE_ADMIN);
  do_role(w, A, C, KITH_ROLE_ADMIN);
  new_invite(w, A, 1, T0 + HOUR);
  sync_nodes(w, A, D);
  admit_x(w, B, E, KITH_OK);
  admit_x(w, C, F, KITH_OK);
  random_sync(w, rng, A, F);
  chatter(w, rng, 0);
  sync_nodes(w, A, F);
  do_remove(w, B, C); /* b outranks c */
  do_remove(w, C, D); /* concurrent with c's own removal: no effect */
  do_role(w, A, D, KITH_ROLE_ADMIN);
  chatter(w, rng, 1);
  random_sync(w, rng, A, F);
  do_rekey(w, A);
  do_rekey(w, D);
  chatter(w, rng, 2);
  random_sync(w, rng, A, F);
  do_leave(w, D);
  chatter(w, rng, 3);
  sync_nodes(w, A, F);
  GPtrArray *acc = acc_new();
  assert_int_equal(kith_group_maintain(w->g[A], w->now, acc), KITH_OK);
  log_all(w, acc);
  chatter(w, rng, 4);
  sync_nodes(w, A, F);
}

static kith_group *fresh_replica(world *w) {
  kith_group *g = kith_group_new(w->gid, &w->id[A]);
  for (size_t i = 0; i < kith_group_n_secrets(w->g[A]); i++) {
    uint64_t ep;
    uint8_t s[32];
    kith_group_secret_at(w->g[A], i, &ep, s);
    kith_group_add_secret(g, ep, s);
  }
  return g;
}

static void shuffle_with_dups(GRand *rng, GPtrArray *log, GPtrArray *order) {
  g_ptr_array_set_size(order, 0);
  for (guint i = 0; i < log->len; i++) {
    g_ptr_array_add(order, log->pdata[i]);
    if (g_rand_double(rng) < 0.2) /* duplicates */
      g_ptr_array_add(order,
                      log->pdata[g_rand_int_range(rng, 0, (gint32)log->len)]);
  }
  for (guint i = order->len; i > 1; i--) {
    guint j = (guint)g_rand_int_range(rng, 0, (gint32)i);
    gpointer t = order->pdata[i - 1];
    order->pdata[i - 1] = order->pdata[j];
    order->pdata[j] = t;
  }
}

static void random_schedules_converge(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, D);
  GRand *rng = g_rand_new_with_seed(20240611);
  build_dag(w, rng);
  uint8_t ref[32];
  kith_group_state_hash(w->g[A], ref);
  size_t total = w->log->len;
  assert_int_equal(kith_group_n_events(w->g[A]), total);
  assert_true(kith_group_epoch(w->g[A]) >= 2);
  assert_true(total >= 40);
  static const int members[] = {A, E, F};
  for (int i = 0; i < 3; i++)
    if (kith_group_is_member(w->g[A], w->id[members[i]].pk))
      assert_same_state(w, A, members[i]);
  GPtrArray *order = g_ptr_array_new();
  for (int round = 0; round < 500; round++) {
    shuffle_with_dups(rng, w->log, order);
    kith_group *g = fresh_replica(w);
    for (guint i = 0; i < order->len; i++)
      assert_true(ok_rc(deliver(g, order->pdata[i], NULL)));
    uint8_t h[32];
    kith_group_state_hash(g, h);
    assert_int_equal(kith_group_n_held(g), 0);
    assert_int_equal(kith_group_n_events(g), total);
    assert_memory_equal(h, ref, 32);
    kith_group_free(g);
  }
  g_ptr_array_free(order, TRUE);
  g_rand_free(rng);
  world_free(w);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(concurrent_removal_beats_message_of_removed),
      cmocka_unit_test(concurrent_mutual_removals_settled_by_seniority),
      cmocka_unit_test(junior_admin_cannot_remove_senior),
      cmocka_unit_test(concurrent_rekeys_pick_one_epoch),
      cmocka_unit_test(demotion_beats_concurrent_actions_of_the_demoted),
      cmocka_unit_test(single_use_invite_redeemed_twice_admits_lower_id),
      cmocka_unit_test(random_schedules_converge),
  };
  int failed =
      cmocka_run_group_tests_name("group_concurrency", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
