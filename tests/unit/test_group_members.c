/* Unit tests for core/group*.c: roles, authorization of each kind,
 * removal with rekey, leave, history policies, the ratchet in a group. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_group_world.h"

static kith_pack *pack_new(void) {
  kith_pack *p = g_new0(kith_pack, 1);
  kith_pack_init(p);
  return p;
}

/* Delivers a crafted event to `at` and returns the verdict. */
static kith_err inject(world *w, int at, GBytes *raw) {
  uint8_t before[32], after[32];
  kith_group_state_hash(w->g[at], before);
  kith_err rc = deliver(w->g[at], raw, NULL);
  if (rc != KITH_OK) {
    kith_group_state_hash(w->g[at], after);
    assert_memory_equal(before, after, 32);
  }
  g_bytes_unref(raw);
  return rc;
}

static GBytes *craft_target(world *w, int by, uint32_t kind, int target,
                            int role) {
  kith_pack *p = pack_new();
  kith_pack_array(p, kind == KITH_EV_ROLE ? 2 : 1);
  kith_pack_bin(p, w->id[target].pk, 32);
  if (kind == KITH_EV_ROLE)
    kith_pack_uint(p, (uint64_t)role);
  GBytes *raw = craft_meta(w, by, kind, p, NULL, 0);
  g_free(p);
  return raw;
}

static void remove_authorization(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, D);
  GPtrArray *acc = acc_new();
  assert_int_equal(kith_group_remove(w->g[B], w->id[C].pk, w->now, acc),
                   KITH_ERR_FORBIDDEN);
  do_role(w, A, B, KITH_ROLE_ADMIN);
  sync_nodes(w, A, D);
  assert_int_equal(kith_group_remove(w->g[B], w->id[A].pk, w->now, acc),
                   KITH_ERR_FORBIDDEN); /* admin cannot remove the owner */
  assert_int_equal(kith_group_remove(w->g[B], w->id[B].pk, w->now, acc),
                   KITH_ERR_FORBIDDEN); /* that is leave */
  assert_int_equal(kith_group_remove(w->g[B], w->id[Z].pk, w->now, acc),
                   KITH_ERR_NOT_MEMBER);
  assert_int_equal(acc->len, 0);
  g_ptr_array_unref(acc);
  /* the same, forged past the local checks, is refused on receipt */
  assert_int_equal(inject(w, A, craft_target(w, D, KITH_EV_REMOVE, C, 0)),
                   KITH_ERR_FORBIDDEN);
  assert_int_equal(inject(w, A, craft_target(w, B, KITH_EV_REMOVE, A, 0)),
                   KITH_ERR_FORBIDDEN);
  assert_int_equal(inject(w, A, craft_target(w, B, KITH_EV_REMOVE, Z, 0)),
                   KITH_ERR_NOT_MEMBER);
  do_remove(w, B, C); /* an admin removes a member */
  sync_nodes(w, A, D);
  for (int i = A; i <= D; i++)
    assert_false(kith_group_is_member(w->g[i], w->id[C].pk));
  assert_int_equal(kith_group_n_members(w->g[A]), 3);
  assert_same_state(w, A, B);
  assert_same_state(w, A, D);
  assert_false(kith_group_rekey_due(w->g[A]));
  world_free(w);
}

static void role_authorization(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, D);
  GPtrArray *acc = acc_new();
  assert_int_equal(
      kith_group_set_role(w->g[B], w->id[C].pk, KITH_ROLE_ADMIN, w->now, acc),
      KITH_ERR_FORBIDDEN);
  do_role(w, A, B, KITH_ROLE_ADMIN);
  sync_nodes(w, A, D);
  assert_int_equal(
      kith_group_set_role(w->g[B], w->id[A].pk, KITH_ROLE_MEMBER, w->now, acc),
      KITH_ERR_FORBIDDEN); /* the owner's role */
  assert_int_equal(
      kith_group_set_role(w->g[B], w->id[C].pk, KITH_ROLE_OWNER, w->now, acc),
      KITH_ERR_FORBIDDEN); /* above its own */
  assert_int_equal(
      kith_group_set_role(w->g[B], w->id[B].pk, KITH_ROLE_MEMBER, w->now, acc),
      KITH_ERR_FORBIDDEN); /* its own */
  assert_int_equal(
      kith_group_set_role(w->g[B], w->id[C].pk, KITH_ROLE_MEMBER, w->now, acc),
      KITH_ERR_EXISTS);
  assert_int_equal(
      kith_group_set_role(w->g[B], w->id[C].pk, (kith_role)9, w->now, acc),
      KITH_ERR_ARG);
  assert_int_equal(acc->len, 0);
  g_ptr_array_unref(acc);
  assert_int_equal(
      inject(w, A, craft_target(w, D, KITH_EV_ROLE, C, KITH_ROLE_ADMIN)),
      KITH_ERR_FORBIDDEN);
  assert_int_equal(
      inject(w, A, craft_target(w, B, KITH_EV_ROLE, A, KITH_ROLE_MEMBER)),
      KITH_ERR_FORBIDDEN);
  assert_int_equal(
      inject(w, A, craft_target(w, B, KITH_EV_ROLE, D, KITH_ROLE_OWNER)),
      KITH_ERR_FORBIDDEN);
  do_role(w, B, C, KITH_ROLE_ADMIN);
  do_role(w, A, D, KITH_ROLE_OWNER); /* several owners are allowed */
  sync_nodes(w, A, D);
  assert_int_equal(member_of(w, D, C)->role, KITH_ROLE_ADMIN);
  assert_int_equal(member_of(w, B, D)->role, KITH_ROLE_OWNER);
  /* an owner demotes another, if admitted earlier (outranks it) */
  acc = acc_new();
  assert_int_equal(
      kith_group_set_role(w->g[D], w->id[A].pk, KITH_ROLE_MEMBER, w->now, acc),
      KITH_ERR_FORBIDDEN);
  g_ptr_array_unref(acc);
  do_role(w, A, D, KITH_ROLE_MEMBER);
  sync_nodes(w, A, D);
  assert_int_equal(member_of(w, C, D)->role, KITH_ROLE_MEMBER);
  assert_same_state(w, A, C);
  world_free(w);
}

static void topic_authorization(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, C);
  GPtrArray *acc = acc_new();
  assert_int_equal(kith_group_set_topic(w->g[B], "x", 1, w->now, acc),
                   KITH_ERR_FORBIDDEN);
  assert_int_equal(kith_group_set_topic(w->g[A], "a\nb", 3, w->now, acc),
                   KITH_ERR_ARG);
  char big[KITH_TOPIC_MAX + 1];
  memset(big, 'x', sizeof big);
  assert_int_equal(kith_group_set_topic(w->g[A], big, sizeof big, w->now, acc),
                   KITH_ERR_ARG);
  kith_pack *p = pack_new();
  kith_pack_array(p, 1);
  kith_pack_cstr(p, "forged");
  assert_int_equal(inject(w, A, craft_meta(w, B, KITH_EV_TOPIC, p, NULL, 0)),
                   KITH_ERR_FORBIDDEN);
  g_free(p);
  assert_int_equal(kith_group_set_topic(w->g[A], "plans", 5, w->now, acc),
                   KITH_OK);
  log_all(w, acc);
  sync_nodes(w, A, C);
  assert_string_equal(kith_group_topic(w->g[C]), "plans");
  acc = acc_new();
  assert_int_equal(kith_group_set_topic(w->g[A], "", 0, w->now, acc), KITH_OK);
  log_all(w, acc);
  sync_nodes(w, A, C);
  assert_string_equal(kith_group_topic(w->g[B]), "");
  assert_same_state(w, A, B);
  world_free(w);
}

static void admins_only_invites(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 1, C);
  uint8_t secret[32];
  kith_accepted *a = NULL;
  assert_true(kith_group_admins_only_invites(w->g[C]));
  assert_int_equal(kith_group_invite(w->g[B], 1, T0 + HOUR, w->now, secret, &a),
                   KITH_ERR_FORBIDDEN);
  kith_pack *p = pack_new();
  uint8_t pk[32] = {9};
  kith_pack_array(p, 3);
  kith_pack_bin(p, pk, 32);
  kith_pack_uint(p, 1);
  kith_pack_uint(p, T0 + HOUR);
  assert_int_equal(inject(w, A, craft_meta(w, B, KITH_EV_INVITE, p, NULL, 0)),
                   KITH_ERR_FORBIDDEN);
  g_free(p);
  do_role(w, A, B, KITH_ROLE_ADMIN);
  sync_node(w, B);
  assert_int_equal(kith_group_invite(w->g[B], 1, T0 + HOUR, w->now, secret, &a),
                   KITH_OK);
  kith_accepted_free(a);
  world_free(w);
}

static void rekey_and_epoch_rules(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, C);
  uint64_t old = kith_group_epoch_id(w->g[A]);
  /* a rekey whose boxes do not match the members is refused */
  kith_pack *p = pack_new(), x;
  kith_pack_array(p, 1);
  kith_pack_uint(p, 12345);
  kith_pack_init(&x);
  kith_pack_array(&x, 1);
  kith_pack_bin(&x, "box", 3);
  assert_int_equal(inject(w, A,
                          craft_meta(w, B, KITH_EV_REKEY, p,
                                     (uint8_t *)x.sb.data, x.sb.size)),
                   KITH_ERR_PROTOCOL);
  kith_pack_clear(&x);
  g_free(p);
  do_rekey(w, C); /* any member */
  sync_nodes(w, A, C);
  assert_int_equal(kith_group_epoch(w->g[A]), 1);
  assert_true(kith_group_epoch_id(w->g[B]) != old);
  assert_true(kith_group_is_ready(w->g[B]));
  send_text(w, B, "new epoch");
  char *text = sync_read(w, A);
  assert_string_equal(text, "new epoch");
  g_free(text);
  /* a message that names a stale epoch is refused */
  assert_int_equal(inject(w, A, craft_message(w, B, old, 40, "stale")),
                   KITH_ERR_PROTOCOL);
  /* keys are checked against their epoch id */
  size_t n = kith_group_n_secrets(w->g[A]);
  uint8_t junk[32] = {1};
  kith_group_add_secret(w->g[A], kith_group_epoch_id(w->g[A]) + 1, junk);
  kith_group_add_secret(w->g[A], kith_group_epoch_id(w->g[A]), junk);
  assert_int_equal(kith_group_n_secrets(w->g[A]), n);
  world_free(w);
}

static void kicked_member_cannot_decrypt_after_rekey(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, C);
  send_text(w, A, "before");
  char *text = sync_read(w, C);
  assert_string_equal(text, "before");
  g_free(text);
  do_remove(w, A, C);
  send_text(w, A, "after the kick");
  sync_node(w, B);
  send_text(w, B, "bob too");
  text = sync_read(w, C);
  assert_null(text);
  assert_false(kith_group_is_member(w->g[C], w->id[C].pk));
  assert_false(kith_group_is_ready(w->g[C]));
  /* c saw its removal and the rekey, but nothing after them: it holds
   * what it cannot read (bounded; an add of it would bring the keys) */
  assert_int_equal(kith_group_n_held(w->g[C]), 2);
  assert_int_equal(kith_group_n_events(w->g[C]), w->log->len - 2);
  text = sync_read(w, A);
  assert_string_equal(text, "bob too");
  g_free(text);
  assert_same_state(w, A, B);
  world_free(w);
}

static void removed_member_later_events_rejected(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, C);
  uint64_t old = kith_group_epoch_id(w->g[A]);
  do_remove(w, A, C);
  sync_nodes(w, A, C);
  GPtrArray *acc = acc_new();
  assert_int_equal(kith_group_send(w->g[C], "x", 1, NULL, w->now, acc),
                   KITH_ERR_NOT_MEMBER);
  assert_int_equal(kith_group_rekey(w->g[C], w->now, acc), KITH_ERR_NOT_MEMBER);
  assert_int_equal(kith_group_leave(w->g[C], w->now, acc), KITH_ERR_NOT_MEMBER);
  g_ptr_array_unref(acc);
  /* built on top of its removal, in the epoch it still knows */
  assert_int_equal(inject(w, A, craft_message(w, C, old, 5, "still here")),
                   KITH_ERR_NOT_MEMBER);
  assert_int_equal(inject(w, B, craft_target(w, C, KITH_EV_REMOVE, B, 0)),
                   KITH_ERR_NOT_MEMBER);
  world_free(w);
}

static void leave_triggers_rekey_by_designated(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, C);
  do_leave(w, C);
  assert_false(kith_group_is_member(w->g[C], w->id[C].pk));
  GPtrArray *acc = acc_new();
  assert_int_equal(kith_group_leave(w->g[C], w->now, acc), KITH_ERR_NOT_MEMBER);
  sync_nodes(w, A, B);
  assert_true(kith_group_rekey_due(w->g[B]));
  /* b is not the designated rekeyer (a, the owner, is): it waits */
  assert_int_equal(kith_group_maintain(w->g[B], w->now, acc), KITH_OK);
  assert_int_equal(acc->len, 0);
  assert_int_equal(kith_group_maintain(w->g[A], w->now, acc), KITH_OK);
  assert_int_equal(acc->len, 1);
  assert_int_equal(((kith_accepted *)acc->pdata[0])->ev.kind, KITH_EV_REKEY);
  log_all(w, acc);
  acc = acc_new();
  assert_int_equal(kith_group_maintain(w->g[A], w->now, acc), KITH_OK);
  assert_int_equal(acc->len, 0); /* nothing owed any more */
  sync_nodes(w, A, C);
  assert_false(kith_group_rekey_due(w->g[B]));
  send_text(w, B, "c is gone");
  char *text = sync_read(w, C);
  assert_null(text);
  /* with the designated one silent, anyone rekeys after the grace period */
  do_leave(w, B);
  sync_node(w, A);
  assert_true(kith_group_rekey_due(w->g[A]));
  world_free(w);
  w = world_new(KITH_HISTORY_SHARED, 0, C);
  do_role(w, A, B, KITH_ROLE_ADMIN);
  /* a second on: the leave is dated w->now, not a ms after its parent */
  w->now += 1000;
  do_leave(w, A);
  sync_nodes(w, B, C);
  /* b is now the owner and designated; c waits for the grace period */
  assert_int_equal(member_of(w, C, B)->role, KITH_ROLE_OWNER);
  assert_int_equal(kith_group_maintain(w->g[C], w->now, acc), KITH_OK);
  assert_int_equal(acc->len, 0);
  assert_int_equal(
      kith_group_maintain(w->g[C], w->now + KITH_REKEY_GRACE_MS, acc), KITH_OK);
  assert_int_equal(acc->len, 1);
  log_all(w, acc);
  sync_nodes(w, B, C);
  assert_false(kith_group_rekey_due(w->g[B]));
  world_free(w);
}

static void last_owner_leaving(void **state) {
  /* no admin: the member with the lowest id becomes owner */
  world *w = world_new(KITH_HISTORY_SHARED, 0, D);
  do_leave(w, A);
  sync_nodes(w, B, D);
  int low = B;
  for (int i = C; i <= D; i++)
    if (memcmp(w->id[i].pk, w->id[low].pk, 32) < 0)
      low = i;
  for (int i = B; i <= D; i++)
    assert_int_equal(member_of(w, C, i)->role,
                     i == low ? KITH_ROLE_OWNER : KITH_ROLE_MEMBER);
  assert_same_state(w, B, D);
  world_free(w);
  /* an admin outranks a lower id */
  w = world_new(KITH_HISTORY_SHARED, 0, D);
  int high = B;
  for (int i = C; i <= D; i++)
    if (memcmp(w->id[i].pk, w->id[high].pk, 32) > 0)
      high = i;
  do_role(w, A, high, KITH_ROLE_ADMIN);
  do_leave(w, A);
  sync_nodes(w, B, D);
  assert_int_equal(member_of(w, B, high)->role, KITH_ROLE_OWNER);
  world_free(w);
}

static void joined_newcomer_cannot_read_earlier(void **state) {
  world *w = world_new(KITH_HISTORY_JOINED, 0, B);
  send_text(w, A, "before d");
  send_text(w, B, "also before d");
  uint64_t before = kith_group_epoch_id(w->g[A]);
  new_invite(w, A, 1, T0 + HOUR);
  guint n = w->log->len;
  admit_x(w, A, D, KITH_OK);
  assert_int_equal(w->log->len, n + 2); /* add + rekey */
  send_text(w, A, "after d");
  char *text = NULL;
  int unread = 0;
  for (guint i = 0; i < w->log->len; i++)
    assert_true(ok_rc(deliver_x(w->g[D], w->log->pdata[i], &text, &unread)));
  assert_string_equal(text, "after d");
  g_free(text);
  assert_int_equal(unread, 2);
  /* d derives the full state (names, roles) from the meta keys ... */
  sync_nodes(w, A, B);
  assert_same_state(w, A, D);
  assert_same_state(w, B, D);
  assert_string_equal(member_of(w, D, B)->name, "bob");
  /* ... but holds no secret of the earlier epoch */
  for (size_t i = 0; i < kith_group_n_secrets(w->g[D]); i++) {
    uint64_t ep;
    uint8_t s[32];
    kith_group_secret_at(w->g[D], i, &ep, s);
    if ((ep & ~KITH_EPOCH_META_ONLY) == before)
      assert_true(ep & KITH_EPOCH_META_ONLY);
  }
  send_text(w, D, "hi from d");
  text = sync_read(w, B);
  assert_string_equal(text, "hi from d");
  g_free(text);
  world_free(w);
}

static void shared_newcomer_reads_history(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, B);
  send_text(w, B, "before d");
  do_rekey(w, A);
  sync_node(w, B);
  send_text(w, B, "second epoch");
  new_invite(w, A, 1, T0 + HOUR);
  guint n = w->log->len;
  admit_x(w, A, D, KITH_OK);
  assert_int_equal(w->log->len, n + 1); /* no rekey */
  GPtrArray *texts = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < w->log->len; i++) {
    GPtrArray *acc = acc_new();
    size_t len;
    const uint8_t *p = g_bytes_get_data(w->log->pdata[i], &len);
    assert_true(ok_rc(kith_group_receive(w->g[D], p, len, RECV_NOW, acc)));
    for (guint k = 0; k < acc->len; k++)
      if (((kith_accepted *)acc->pdata[k])->text)
        g_ptr_array_add(texts,
                        g_strdup(((kith_accepted *)acc->pdata[k])->text));
    g_ptr_array_unref(acc);
  }
  sync_node(w, A);
  assert_int_equal(texts->len, 2);
  assert_string_equal(texts->pdata[0], "before d");
  assert_string_equal(texts->pdata[1], "second epoch");
  g_ptr_array_unref(texts);
  assert_same_state(w, A, D);
  world_free(w);
}

static void skipped_key_cache_bound_is_handled(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, B);
  uint64_t ep = kith_group_epoch_id(w->g[B]);
  int unread = 0;
  char *text = NULL;
  /* beyond the window: accepted (the DAG stays whole), unread */
  GBytes *far = craft_message(w, B, ep, KITH_SKIPPED_KEYS_MAX + 5, "far");
  assert_int_equal(deliver_x(w->g[A], far, &text, &unread), KITH_OK);
  assert_null(text);
  assert_int_equal(unread, 1);
  g_bytes_unref(far);
  /* inside the window: skipped keys are cached, then used once */
  GBytes *m = craft_message(w, B, ep, KITH_SKIPPED_KEYS_MAX - 1, "edge");
  assert_int_equal(deliver(w->g[A], m, &text), KITH_OK);
  assert_string_equal(text, "edge");
  g_bytes_unref(m);
  m = craft_message(w, B, ep, 7, "late");
  assert_int_equal(deliver(w->g[A], m, &text), KITH_OK);
  assert_string_equal(text, "late");
  g_bytes_unref(m);
  /* the same number again (a replay under a new event): key is gone */
  m = craft_message(w, B, ep, 7, "again");
  unread = 0;
  assert_int_equal(deliver_x(w->g[A], m, &text, &unread), KITH_OK);
  assert_int_equal(unread, 1);
  assert_string_equal(text, "late");
  g_free(text);
  g_bytes_unref(m);
  world_free(w);
}

/* The node replays its store at start-up without decrypting messages; the
 * ratchets still advance, so our next message does not reuse a number. */
static void replay_skips_decryption(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, B);
  send_text(w, A, "one");
  send_text(w, A, "two");
  sync_node(w, B);
  kith_group *r = kith_group_new(w->gid, &w->id[A]);
  for (size_t i = 0; i < kith_group_n_secrets(w->g[A]); i++) {
    uint64_t ep;
    uint8_t s[32];
    kith_group_secret_at(w->g[A], i, &ep, s);
    kith_group_add_secret(r, ep, s);
  }
  kith_group_free(w->g[A]);
  w->g[A] = r;
  kith_group_set_replay(r, 1);
  int unread = 0;
  char *text = NULL;
  for (guint i = 0; i < w->log->len; i++)
    assert_int_equal(deliver_x(r, w->log->pdata[i], &text, &unread), KITH_OK);
  kith_group_set_replay(r, 0);
  assert_null(text);
  assert_int_equal(unread, 2);
  assert_same_state(w, A, B);
  send_text(w, A, "three");
  assert_int_equal(deliver(w->g[B], w->log->pdata[w->log->len - 1], &text),
                   KITH_OK);
  assert_string_equal(text, "three");
  g_free(text);
  world_free(w);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(remove_authorization),
      cmocka_unit_test(role_authorization),
      cmocka_unit_test(topic_authorization),
      cmocka_unit_test(admins_only_invites),
      cmocka_unit_test(rekey_and_epoch_rules),
      cmocka_unit_test(kicked_member_cannot_decrypt_after_rekey),
      cmocka_unit_test(removed_member_later_events_rejected),
      cmocka_unit_test(leave_triggers_rekey_by_designated),
      cmocka_unit_test(last_owner_leaving),
      cmocka_unit_test(joined_newcomer_cannot_read_earlier),
      cmocka_unit_test(shared_newcomer_reads_history),
      cmocka_unit_test(skipped_key_cache_bound_is_handled),
      cmocka_unit_test(replay_skips_decryption),
  };
  int failed = cmocka_run_group_tests_name("group_members", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
