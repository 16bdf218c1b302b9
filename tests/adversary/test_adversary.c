/* The adversary suite: attacks of a member running a modified node (and of
 * strangers) on the group engine, each performed through
 * kith_group_receive with the bytes such a node would send (evil.h), and
 * shown to fail. docs/security.md ("Malicious member") lists each attack,
 * its defence and its test. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../unit/test_group_world.h"
#include "evil.h"

#include <glib/gstdio.h>
#include <pthread.h>
#include <sqlite3.h>

#include "core/store.h"

/* Sizes of the histories the cost of old parents is compared at (build
 * with -DADV_HISTORY_LARGE=80000u to measure a larger one). */
#ifndef ADV_HISTORY_SMALL
#define ADV_HISTORY_SMALL 5000u
#endif
#ifndef ADV_HISTORY_LARGE
#define ADV_HISTORY_LARGE 20000u
#endif

/* ---- helpers ---- */

static kith_err feed_at(kith_group *g, GBytes *raw, uint64_t now, char **text) {
  GPtrArray *acc = acc_new();
  size_t len;
  const uint8_t *p = g_bytes_get_data(raw, &len);
  kith_err rc = kith_group_receive(g, p, len, now, acc);
  for (guint i = 0; i < acc->len; i++) {
    kith_accepted *a = acc->pdata[i];
    if (a->text && text) {
      g_free(*text);
      *text = g_strdup(a->text);
    }
  }
  g_ptr_array_unref(acc);
  return rc;
}

static kith_err feed(kith_group *g, GBytes *raw) {
  return feed_at(g, raw, RECV_NOW, NULL);
}

/* An attacker's event that is valid at its parents: it joins the log that
 * every replica receives. */
static void publish(world *w, GBytes *raw) {
  assert_non_null(raw);
  g_ptr_array_add(w->log, raw);
}

/* An event's id is the hash of its bytes (docs/protocol.md 4). */
static void id_of(GBytes *raw, uint8_t id[32]) {
  size_t len;
  const uint8_t *p = g_bytes_get_data(raw, &len);
  crypto_generichash(id, 32, p, len, NULL, 0);
}

static void last_id(world *w, uint8_t id[32]) {
  id_of(w->log->pdata[w->log->len - 1], id);
}

/* The members of g, by id (32 bytes each). */
static GByteArray *members_of(kith_group *g) {
  GByteArray *ids = g_byte_array_new();
  for (size_t i = 0; i < kith_group_n_members(g); i++)
    g_byte_array_append(ids, kith_group_member_at(g, i)->id, 32);
  return ids;
}

/* Sorts an array of 32-byte ids. */
static void sort_ids(GByteArray *ids) {
  qsort(ids->data, ids->len / 32, 32,
        (int (*)(const void *, const void *))evil_id_cmp);
}

/* Does g hold the full secret of epoch? */
static int holds_secret(kith_group *g, uint64_t epoch) {
  for (size_t i = 0; i < kith_group_n_secrets(g); i++) {
    uint64_t ep;
    uint8_t s[32];
    kith_group_secret_at(g, i, &ep, s);
    if (ep == epoch)
      return 1;
  }
  return 0;
}

/* A replica of who (a fresh one) holding the keys `from` holds. */
static kith_group *replica_with_keys(world *w, int who, kith_group *from) {
  kith_group *g = kith_group_new(w->gid, &w->id[who]);
  for (size_t i = 0; i < kith_group_n_secrets(from); i++) {
    uint64_t ep;
    uint8_t s[32];
    kith_group_secret_at(from, i, &ep, s);
    kith_group_add_secret(g, ep, s);
  }
  return g;
}

static void shuffle(GRand *rng, GPtrArray *a) {
  for (guint i = a->len; i > 1; i--) {
    guint j = (guint)g_rand_int_range(rng, 0, (gint32)i);
    gpointer t = a->pdata[i - 1];
    a->pdata[i - 1] = a->pdata[j];
    a->pdata[j] = t;
  }
}

/* Delivers the log to fresh replicas of who (with the keys of `keys`) in
 * rounds shuffled orders; each must end with the state hash of ref. */
static void assert_orders_converge(world *w, int who, kith_group *keys,
                                   kith_group *ref, int rounds, guint32 seed) {
  uint8_t want[32], got[32];
  kith_group_state_hash(ref, want);
  GRand *rng = g_rand_new_with_seed(seed);
  GPtrArray *order = g_ptr_array_new();
  for (int r = 0; r < rounds; r++) {
    g_ptr_array_set_size(order, 0);
    for (guint i = 0; i < w->log->len; i++)
      g_ptr_array_add(order, w->log->pdata[i]);
    shuffle(rng, order);
    kith_group *g = replica_with_keys(w, who, keys);
    for (guint i = 0; i < order->len; i++)
      assert_true(ok_rc(feed(g, order->pdata[i])));
    assert_int_equal(kith_group_n_held(g), 0);
    kith_group_state_hash(g, got);
    assert_memory_equal(got, want, 32);
    kith_group_free(g);
  }
  g_ptr_array_free(order, TRUE);
  g_rand_free(rng);
}

/* Is log entry i before log entry j in (depth, id) order? */
static int sorts_before(world *w, guint i, guint j) {
  kith_event x, y;
  size_t lx, ly;
  const uint8_t *px = g_bytes_get_data(w->log->pdata[i], &lx);
  const uint8_t *py = g_bytes_get_data(w->log->pdata[j], &ly);
  assert_int_equal(kith_event_decode(px, lx, w->gid, &x), KITH_OK);
  assert_int_equal(kith_event_decode(py, ly, w->gid, &y), KITH_OK);
  int r = x.depth != y.depth ? x.depth < y.depth : memcmp(x.id, y.id, 32) < 0;
  kith_event_clear(&x);
  kith_event_clear(&y);
  return r;
}

/* by admits the holder of who's key with the invite inv_secret. */
static kith_err admit_as(world *w, int by, const kith_ident *who,
                         const char *name, const uint8_t inv_secret[32]) {
  uint8_t sig[64], pk[32];
  kith_invite_public_key(inv_secret, pk);
  kith_invite_sign_join(inv_secret, w->gid, who->pk, sig);
  GPtrArray *acc = acc_new();
  kith_err rc = kith_group_admit(w->g[by], who->pk, name, pk, sig, w->now, acc);
  log_all(w, acc);
  return rc;
}

/* by makes an invite (5 uses, an hour); its secret and key come back. */
static void invite_by(world *w, int by, uint8_t secret[32], uint8_t pk[32]) {
  kith_accepted *a = NULL;
  assert_int_equal(
      kith_group_invite(w->g[by], 5, T0 + HOUR, w->now, secret, &a), KITH_OK);
  log_take(w, a);
  kith_invite_public_key(secret, pk);
}

static int invite_revoked(kith_group *g, const uint8_t pk[32]) {
  for (size_t i = 0; i < kith_group_n_invites(g); i++) {
    kith_invite_info v;
    kith_group_invite_at(g, i, &v);
    if (memcmp(v.pk, pk, 32) == 0)
      return v.revoked;
  }
  return -1;
}

/* ---- 1. key-table stuffing ---- */

/* d sends rekeys whose boxes carry the new secret, then the real keys, then
 * hundreds of made-up epochs whose keys fit their ids. Only keys of epochs
 * that exist are kept, so removals still rekey. */
static void stuffed_rekeys_keep_only_keys_of_existing_epochs(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, D);
  evil e;
  evil_init(&e, &w->id[D], w->g[D]);
  e.stuff = 300; /* four boxes of 300 entries fit in one event */
  GByteArray *ids = members_of(w->g[D]);
  evil_box_kind stuffed = EVIL_BOX_STUFFED;
  uint64_t epoch = kith_group_epoch_id(w->g[D]);
  enum { ROUNDS = KITH_REKEY_RUN }; /* as many as d may make in a row */
  for (int r = 0; r < ROUNDS; r++) {
    publish(w, evil_rekey(&e, evil_on_heads(&e), epoch, ids, &stuffed, 1, NULL,
                          &epoch, NULL));
    sync_node(w, D); /* the attacker's own replica follows */
  }
  g_byte_array_free(ids, TRUE);
  sync_nodes(w, A, D);
  /* each member read over a thousand made-up epochs (a box is read up to
   * its 65th entry) and kept none of them */
  for (int i = A; i <= D; i++) {
    assert_int_equal(kith_group_n_secrets(w->g[i]), 1 + ROUNDS);
    assert_int_equal(kith_group_epoch(w->g[i]), ROUNDS);
    assert_true(kith_group_is_ready(w->g[i]));
  }
  assert_same_state(w, A, B);
  do_remove(w, A, C); /* the remove and its rekey */
  send_text(w, A, "after the kick");
  char *text = sync_read(w, C);
  assert_null(text);
  text = sync_read(w, B);
  assert_string_equal(text, "after the kick");
  g_free(text);
  evil_clear(&e);
  world_free(w);
}

/* Reading a key list maps no new memory: boxes are opened in a scratch
 * area of the key table's one locked allocation, which is replaced only
 * when the table doubles (each add and each rekey used to cost two
 * allocations). A fresh replica of b receives b's own add (its key list
 * is kept aside: one allocation), 40 adds sealed to others and 40 rekeys
 * by four members in turn: 41 keys in a table of 16, 32, then 64. */
static void key_lists_open_without_new_allocations(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, D);
  uint8_t secret[32], pk[32];
  for (int i = 0; i < 40; i++) {
    kith_ident x;
    uint8_t seed[32];
    memset(seed, 0x90 + i, sizeof seed);
    assert_int_equal(kith_ident_from_seed(&x, seed), KITH_OK);
    if (i % 5 == 0)
      invite_by(w, A, secret, pk);
    assert_int_equal(admit_as(w, A, &x, "x", secret), KITH_OK);
    kith_ident_clear(&x);
    sync_nodes(w, A, D);
    do_rekey(w, A + i % 4);
  }
  kith_group *g = kith_group_new(w->gid, &w->id[B]);
  for (guint i = 0; i < w->log->len; i++)
    assert_true(ok_rc(feed(g, w->log->pdata[i])));
  assert_int_equal(kith_group_n_held(g), 0);
  assert_int_equal(kith_group_n_secrets(g), 41);
  kith_group_stats st;
  kith_group_get_stats(g, &st);
  assert_int_equal(st.key_allocs, 1 + 3);
  kith_group_free(g);
  world_free(w);
}

/* The key table has room for a key of every epoch there can be: it does
 * not fill at 65536 keys (where no rekey could be made any more). */
static void key_table_has_room_for_every_epoch(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, B);
  for (int i = 0; i < 70000; i++) {
    uint8_t secret[32];
    uint64_t epoch = evil_new_epoch(secret);
    kith_group_add_secret(w->g[A], epoch, secret);
    sodium_memzero(secret, sizeof secret);
  }
  assert_int_equal(kith_group_n_secrets(w->g[A]), 70001);
  do_remove(w, A, B); /* and its rekey */
  assert_int_equal(kith_group_n_secrets(w->g[A]), 70002);
  send_text(w, A, "still rekeying");
  world_free(w);
}

/* Adds whose key lists are sealed to a member who is not their newcomer,
 * from a non-member, rejected, or waiting for a parent: none of their keys
 * is ever kept. */
static void adds_not_for_us_or_rejected_leave_no_keys(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, D);
  evil ed, ez;
  evil_init(&ed, &w->id[D], w->g[D]);
  evil_init(&ez, &w->id[Z], w->g[A]); /* a stranger who has seen the DAG */
  uint64_t epoch = kith_group_epoch_id(w->g[A]);
  size_t keys_b = kith_group_n_secrets(w->g[B]);
  kith_pack list;
  kith_pack_init(&list);
  evil_key_list(&ed, &list, 1000, 0, NULL, 0); /* 1000 made-up epochs */
  GBytes *to_b = evil_box(w->id[B].pk, &list);
  kith_pack_clear(&list);
  uint8_t inv[32], inv_pk[32];
  randombytes_buf(inv, 32);
  kith_invite_public_key(inv, inv_pk);
  /* a stranger's add: not a member at its parents */
  GBytes *raw = evil_add(&ez, evil_on_heads(&ez), epoch, w->id[Z].pk, "zed",
                         inv, 0, to_b);
  assert_int_equal(feed(w->g[B], raw), KITH_ERR_NOT_MEMBER);
  g_bytes_unref(raw);
  /* a member's add of a made-up invite: rejected */
  raw = evil_add(&ed, evil_on_heads(&ed), epoch, w->id[Z].pk, "zed", inv, 0,
                 to_b);
  assert_int_equal(feed(w->g[B], raw), KITH_ERR_PROTOCOL);
  g_bytes_unref(raw);
  /* a member's add on a parent nobody has: held, its keys with it */
  evil_at orphan = {.n = 1};
  randombytes_buf(orphan.ids[0], 32);
  raw = evil_add(&ed, orphan, epoch, w->id[Z].pk, "zed", inv, 0, to_b);
  assert_int_equal(feed(w->g[B], raw), KITH_ERR_MISSING);
  g_bytes_unref(raw);
  assert_int_equal(kith_group_n_secrets(w->g[B]), keys_b);
  /* a member's valid add of someone else, its key list sealed to b */
  kith_pack p;
  kith_pack_init(&p);
  evil_inner_invite(&p, inv_pk, 1, T0 + HOUR);
  publish(w, evil_control(&ed, KITH_EV_INVITE, evil_on_heads(&ed), epoch, &p,
                          NULL));
  sync_node(w, D);
  publish(w, evil_add(&ed, evil_on_heads(&ed), epoch, w->id[Z].pk, "zed", inv,
                      0, to_b));
  sync_nodes(w, A, D);
  assert_true(kith_group_is_member(w->g[B], w->id[Z].pk));
  assert_int_equal(kith_group_n_secrets(w->g[B]), keys_b);
  assert_true(kith_group_n_held(w->g[B]) <= 1); /* the orphan */
  g_bytes_unref(to_b);
  evil_clear(&ed);
  evil_clear(&ez);
  world_free(w);
}

/* A newcomer admitted by the attacker with a key list of 1024 entries,
 * almost all of made-up epochs, keeps the keys of the real ones only. */
static void newcomer_keeps_only_keys_of_existing_epochs(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, D);
  do_rekey(w, A);
  do_rekey(w, B);
  sync_nodes(w, A, D);
  evil e;
  evil_init(&e, &w->id[D], w->g[D]);
  uint64_t epoch = kith_group_epoch_id(w->g[D]);
  uint8_t inv[32], inv_pk[32];
  randombytes_buf(inv, 32);
  kith_invite_public_key(inv, inv_pk);
  kith_pack p;
  kith_pack_init(&p);
  evil_inner_invite(&p, inv_pk, 1, T0 + HOUR);
  publish(w,
          evil_control(&e, KITH_EV_INVITE, evil_on_heads(&e), epoch, &p, NULL));
  sync_node(w, D);
  publish(w, evil_add(&e, evil_on_heads(&e), epoch, w->id[E].pk, "erin", inv,
                      1024, NULL));
  sync_nodes(w, A, E);
  assert_true(kith_group_is_member(w->g[E], w->id[E].pk));
  assert_int_equal(kith_group_n_secrets(w->g[E]), 3); /* three real epochs */
  assert_true(kith_group_is_ready(w->g[E]));
  assert_same_state(w, A, E);
  evil_clear(&e);
  world_free(w);
}

/* The rekey that follows a removal fails (here the store refuses rekeys,
 * as a full disk would): the removal stands, the caller is told
 * (KITH_ERR_REKEY), nothing is posted in the old epoch meanwhile, and
 * kith_group_maintain makes the rekey once it can. */
/* A store in a fresh temporary directory (*dir, *path: its file), with a
 * row for group gid. */
static kith_store *temp_store(const uint8_t gid[32], char **dir, char **path) {
  *dir = g_dir_make_tmp("kith-adversary-XXXXXX", NULL);
  *path = g_build_filename(*dir, "kith.db", NULL);
  uint8_t key[32];
  memset(key, 7, sizeof key);
  kith_store *st = NULL;
  assert_int_equal(kith_store_open(*path, key, &st), KITH_OK);
  assert_int_equal(kith_store_put_group(st, gid), KITH_OK);
  return st;
}

static void temp_store_remove(kith_store *st, char *dir, char *path) {
  kith_store_close(st);
  static const char *const files[] = {"", "-wal", "-shm"};
  for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
    char *f = g_strconcat(path, files[i], NULL);
    (void)g_remove(f);
    g_free(f);
  }
  (void)g_rmdir(dir);
  g_free(path);
  g_free(dir);
}

static void failed_rekey_after_removal_is_reported_and_retried(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, C);
  char *dir, *path;
  kith_store *st = temp_store(w->gid, &dir, &path);
  assert_int_equal(kith_group_attach_store(w->g[A], st), KITH_OK);
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(
      sqlite3_exec(db,
                   "CREATE TRIGGER no_rekey BEFORE INSERT ON events"
                   " WHEN NEW.kind = 8 BEGIN SELECT RAISE(ABORT, 'full'); END;",
                   NULL, NULL, NULL),
      SQLITE_OK);
  uint64_t old = kith_group_epoch_id(w->g[A]);
  GPtrArray *acc = acc_new();
  assert_int_equal(kith_group_remove(w->g[A], w->id[C].pk, w->now, acc),
                   KITH_ERR_REKEY);
  assert_int_equal(acc->len, 1); /* the removal stands */
  assert_int_equal(((kith_accepted *)acc->pdata[0])->ev.kind, KITH_EV_REMOVE);
  log_all(w, acc);
  assert_false(kith_group_is_member(w->g[A], w->id[C].pk));
  assert_true(kith_group_rekey_due(w->g[A]));
  /* nothing is posted in the epoch c holds */
  acc = acc_new();
  assert_true(kith_group_send(w->g[A], "x", 1, NULL, w->now, acc) != KITH_OK);
  assert_int_equal(acc->len, 0);
  assert_int_equal(kith_group_epoch_id(w->g[A]), old);
  /* retried after the grace period, and again until it can be made */
  assert_int_equal(kith_group_maintain(w->g[A], w->now + 1000, acc), KITH_OK);
  assert_int_equal(acc->len, 0);
  assert_true(kith_group_maintain(w->g[A], w->now + KITH_REKEY_GRACE_MS, acc) !=
              KITH_OK);
  assert_int_equal(acc->len, 0);
  assert_int_equal(sqlite3_exec(db, "DROP TRIGGER no_rekey;", NULL, NULL, NULL),
                   SQLITE_OK);
  assert_int_equal(
      kith_group_maintain(w->g[A], w->now + 2 * KITH_REKEY_GRACE_MS, acc),
      KITH_OK);
  assert_int_equal(acc->len, 1);
  assert_int_equal(((kith_accepted *)acc->pdata[0])->ev.kind, KITH_EV_REKEY);
  log_all(w, acc);
  assert_false(kith_group_rekey_due(w->g[A]));
  send_text(w, A, "now c is out");
  char *text = sync_read(w, C);
  assert_null(text);
  text = sync_read(w, B);
  assert_string_equal(text, "now c is out");
  g_free(text);
  sqlite3_close(db);
  world_free(w);
  temp_store_remove(st, dir, path);
}

/* ---- rekeys to epochs that exist ---- */

/* c is removed (the rekey excludes it). d then "rekeys" to an epoch that
 * exists already: the create's, which c holds, or the current one. Were
 * either to become current, members would post where c can read (or the
 * epoch's holders would be wrong). A rekey must name an epoch that no
 * create or rekey in its causal past started. */
static void rekey_to_an_existing_epoch_is_rejected(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, D);
  uint64_t first = kith_group_epoch_id(w->g[D]);
  uint8_t first_secret[32], cur_secret[32];
  assert_true(evil_secret(&(evil){.view = w->g[D]}, first, first_secret));
  do_remove(w, A, C);
  sync_nodes(w, A, D);
  uint64_t cur = kith_group_epoch_id(w->g[D]);
  assert_true(evil_secret(&(evil){.view = w->g[D]}, cur, cur_secret));
  evil e;
  evil_init(&e, &w->id[D], w->g[D]);
  GByteArray *ids = members_of(w->g[D]);
  evil_box_kind good = EVIL_BOX_GOOD;
  GBytes *back = evil_rekey_to(&e, evil_on_heads(&e), cur, ids, &good, 1, NULL,
                               first, first_secret);
  GBytes *same = evil_rekey_to(&e, evil_on_heads(&e), cur, ids, &good, 1, NULL,
                               cur, cur_secret);
  for (int i = A; i <= B; i++) {
    assert_int_equal(feed(w->g[i], back), KITH_ERR_PROTOCOL);
    assert_int_equal(feed(w->g[i], same), KITH_ERR_PROTOCOL);
    assert_int_equal(kith_group_epoch_id(w->g[i]), cur);
  }
  send_text(w, A, "c cannot read this");
  char *text = sync_read(w, C);
  assert_null(text);
  g_bytes_unref(back);
  g_bytes_unref(same);
  g_byte_array_free(ids, TRUE);
  sodium_memzero(first_secret, 32);
  sodium_memzero(cur_secret, 32);
  evil_clear(&e);
  world_free(w);
}

/* ---- rekey floods ---- */

/* d makes KITH_REKEY_RUN rekeys in a row; its next one is refused
 * everywhere (KITH_ERR_LIMIT), as is an honest member's through the API.
 * The group goes on: a removes c (and rekeys), after which d may rekey
 * again. */
static void rekey_runs_are_bounded_and_the_group_goes_on(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, D);
  evil e;
  evil_init(&e, &w->id[D], w->g[D]);
  evil_box_kind good = EVIL_BOX_GOOD;
  uint64_t epoch = kith_group_epoch_id(w->g[D]);
  GByteArray *ids = members_of(w->g[D]);
  for (int r = 0; r < KITH_REKEY_RUN; r++) {
    publish(w, evil_rekey(&e, evil_on_heads(&e), epoch, ids, &good, 1, NULL,
                          &epoch, NULL));
    sync_node(w, D);
  }
  GBytes *more =
      evil_rekey(&e, evil_on_heads(&e), epoch, ids, &good, 1, NULL, NULL, NULL);
  sync_nodes(w, A, C);
  for (int i = A; i <= C; i++) {
    assert_int_equal(feed(w->g[i], more), KITH_ERR_LIMIT);
    assert_int_equal(kith_group_epoch_id(w->g[i]), epoch);
  }
  g_bytes_unref(more);
  GPtrArray *acc = acc_new();
  for (int r = 0; r < KITH_REKEY_RUN; r++)
    assert_int_equal(kith_group_rekey(w->g[B], w->now, acc), KITH_OK);
  assert_int_equal(kith_group_rekey(w->g[B], w->now, acc), KITH_ERR_LIMIT);
  log_all(w, acc);
  sync_nodes(w, A, D);
  do_remove(w, A, C);
  sync_nodes(w, A, D);
  epoch = kith_group_epoch_id(w->g[D]);
  g_byte_array_free(ids, TRUE);
  ids = members_of(w->g[D]);
  publish(w, evil_rekey(&e, evil_on_heads(&e), epoch, ids, &good, 1, NULL,
                        &epoch, NULL));
  sync_nodes(w, A, D);
  assert_int_equal(kith_group_epoch_id(w->g[A]), epoch);
  send_text(w, B, "the group goes on");
  char *text = sync_read(w, A);
  assert_string_equal(text, "the group goes on");
  g_free(text);
  sync_nodes(w, A, D);
  assert_same_state(w, A, D);
  g_byte_array_free(ids, TRUE);
  evil_clear(&e);
  world_free(w);
}

/* ---- 2. rejoin after kick ---- */

/* c made an invite, then was removed: its invites are revoked and it is
 * banned, so neither its own code (re-pointed at another member) nor any
 * other member's admits it, whoever signs the add. */
static void removed_member_cannot_rejoin_by_any_invite(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, D);
  uint8_t c_secret[32], c_pk[32], a_secret[32], a_pk[32];
  invite_by(w, C, c_secret, c_pk);
  invite_by(w, A, a_secret, a_pk);
  sync_nodes(w, A, D);
  uint8_t before[32];
  last_id(w, before);
  uint64_t old_epoch = kith_group_epoch_id(w->g[A]);
  do_remove(w, A, C);
  sync_nodes(w, A, D);
  for (int i = A; i <= D; i++) {
    if (i == C)
      continue;
    assert_int_equal(invite_revoked(w->g[i], c_pk), 1);
    assert_int_equal(invite_revoked(w->g[i], a_pk), 0);
    assert_int_equal(kith_group_n_banned(w->g[i]), 1);
    assert_memory_equal(kith_group_banned_at(w->g[i], 0), w->id[C].pk, 32);
  }
  /* honest members refuse */
  assert_int_equal(kith_group_check_invite(w->g[B], c_pk, w->now),
                   KITH_ERR_NOT_FOUND);
  assert_int_equal(admit_as(w, B, &w->id[C], "carol", c_secret),
                   KITH_ERR_NOT_FOUND);
  assert_int_equal(admit_as(w, B, &w->id[C], "carol", a_secret),
                   KITH_ERR_FORBIDDEN);
  assert_int_equal(admit_as(w, D, &w->id[C], "carol again", a_secret),
                   KITH_ERR_FORBIDDEN);
  /* an accomplice's modified node signs the adds anyway */
  evil e;
  evil_init(&e, &w->id[D], w->g[D]);
  uint64_t epoch = kith_group_epoch_id(w->g[D]);
  GBytes *raw = evil_add(&e, evil_on_heads(&e), epoch, w->id[C].pk, "carol",
                         a_secret, 1, NULL);
  assert_int_equal(feed(w->g[A], raw), KITH_ERR_FORBIDDEN);
  g_bytes_unref(raw);
  raw = evil_add(&e, evil_on_heads(&e), epoch, w->id[C].pk, "carol", c_secret,
                 1, NULL);
  assert_int_equal(feed(w->g[A], raw), KITH_ERR_PROTOCOL);
  g_bytes_unref(raw);
  /* back-dated before the removal, c was still a member */
  raw = evil_add(&e, evil_on(before), old_epoch, w->id[C].pk, "carol", a_secret,
                 1, NULL);
  assert_int_equal(feed(w->g[A], raw), KITH_ERR_PROTOCOL);
  g_bytes_unref(raw);
  for (int i = A; i <= D; i++)
    assert_false(kith_group_is_member(w->g[i], w->id[C].pk));
  evil_clear(&e);
  world_free(w);
}

/* An owner or admin lifts the ban; then an invite admits c again. */
static void unban_allows_readmission(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, C);
  uint8_t secret[32], pk[32];
  invite_by(w, A, secret, pk);
  do_remove(w, A, C);
  sync_nodes(w, A, C);
  GPtrArray *acc = acc_new();
  assert_int_equal(kith_group_unban(w->g[B], w->id[C].pk, w->now, acc),
                   KITH_ERR_FORBIDDEN);
  assert_int_equal(kith_group_unban(w->g[A], w->id[C].pk, w->now, acc),
                   KITH_OK);
  log_all(w, acc);
  sync_node(w, B);
  assert_int_equal(kith_group_n_banned(w->g[B]), 0);
  assert_int_equal(admit_as(w, B, &w->id[C], "carol", secret), KITH_OK);
  sync_nodes(w, A, C);
  assert_true(kith_group_is_member(w->g[C], w->id[C].pk));
  send_text(w, A, "welcome back");
  char *text = sync_read(w, C);
  assert_string_equal(text, "welcome back");
  g_free(text);
  assert_same_state(w, A, C);
  world_free(w);
}

/* With invites for owners and admins only, a member's invite is refused
 * wherever it is signed; an invite's maker, an owner or an admin revokes
 * it, a member cannot revoke another's, and a revoked invite admits
 * nobody. */
static void invites_admins_only_and_revoked(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, D);
  uint8_t d_secret[32], d_pk[32], a_secret[32], a_pk[32];
  kith_accepted *a = NULL;
  invite_by(w, D, d_secret, d_pk);
  invite_by(w, A, a_secret, a_pk);
  GPtrArray *acc = acc_new();
  assert_int_equal(kith_group_set_invites(w->g[A], 1, w->now, acc), KITH_OK);
  log_all(w, acc);
  sync_nodes(w, A, D);
  uint8_t secret[32];
  assert_int_equal(kith_group_invite(w->g[B], 1, T0 + HOUR, w->now, secret, &a),
                   KITH_ERR_FORBIDDEN);
  evil e;
  evil_init(&e, &w->id[D], w->g[D]);
  uint64_t epoch = kith_group_epoch_id(w->g[D]);
  uint8_t pk[32];
  randombytes_buf(secret, 32);
  kith_invite_public_key(secret, pk);
  kith_pack p;
  kith_pack_init(&p);
  evil_inner_invite(&p, pk, 5, T0 + HOUR);
  GBytes *raw =
      evil_control(&e, KITH_EV_INVITE, evil_on_heads(&e), epoch, &p, NULL);
  assert_int_equal(feed(w->g[A], raw), KITH_ERR_FORBIDDEN);
  g_bytes_unref(raw);
  /* d may not revoke a's invite; it may revoke its own */
  kith_pack_init(&p);
  evil_inner_id(&p, a_pk);
  raw = evil_control(&e, KITH_EV_REVOKE, evil_on_heads(&e), epoch, &p, NULL);
  assert_int_equal(feed(w->g[A], raw), KITH_ERR_FORBIDDEN);
  g_bytes_unref(raw);
  acc = acc_new();
  assert_int_equal(kith_group_revoke(w->g[B], a_pk, w->now, acc),
                   KITH_ERR_FORBIDDEN);
  assert_int_equal(kith_group_revoke(w->g[D], d_pk, w->now, acc), KITH_OK);
  assert_int_equal(kith_group_revoke(w->g[A], a_pk, w->now, acc), KITH_OK);
  log_all(w, acc);
  sync_nodes(w, A, D);
  assert_int_equal(admit_as(w, B, &w->id[E], "erin", a_secret),
                   KITH_ERR_NOT_FOUND);
  assert_int_equal(admit_as(w, A, &w->id[E], "erin", d_secret),
                   KITH_ERR_NOT_FOUND);
  raw = evil_add(&e, evil_on_heads(&e), kith_group_epoch_id(w->g[D]),
                 w->id[E].pk, "erin", a_secret, 1, NULL);
  assert_int_equal(feed(w->g[A], raw), KITH_ERR_PROTOCOL);
  g_bytes_unref(raw);
  assert_false(kith_group_is_member(w->g[A], w->id[E].pk));
  assert_same_state(w, A, D);
  evil_clear(&e);
  world_free(w);
}

/* ---- 3. back-dated events undo a removal ---- */

/* The attacker (an admin at at_id, removed since) signs, on parents older
 * than its removal, a branch that would undo it: it removes the victim,
 * sets a topic, promotes d, makes invites admins-only, invites and admits
 * zed, rekeys to an epoch it holds (sealed to the members at at_id but the
 * victim, and zed) and posts in it; with then_topic it also sets a topic in
 * that epoch, which the victim cannot open. Returns the number of
 * events. */
static guint backdated_branch(world *w, int attacker, int victim,
                              const uint8_t at_id[32], uint64_t epoch,
                              const GByteArray *members_at, int then_topic) {
  evil e;
  evil_init(&e, &w->id[attacker], w->g[attacker]);
  guint first = w->log->len;
  kith_pack p;
  uint8_t prev[32], inv_secret[32], inv_pk[32];
  memcpy(prev, at_id, 32);
#define NEXT(raw)                                                              \
  do {                                                                         \
    publish(w, (raw));                                                         \
    last_id(w, prev);                                                          \
  } while (0)
  kith_pack_init(&p);
  evil_inner_id(&p, w->id[victim].pk);
  NEXT(evil_control(&e, KITH_EV_REMOVE, evil_on(prev), epoch, &p, NULL));
  kith_pack_init(&p);
  evil_inner_text(&p, "the attacker's topic");
  NEXT(evil_control(&e, KITH_EV_TOPIC, evil_on(prev), epoch, &p, NULL));
  kith_pack_init(&p);
  evil_inner_role(&p, w->id[D].pk, KITH_ROLE_ADMIN);
  NEXT(evil_control(&e, KITH_EV_ROLE, evil_on(prev), epoch, &p, NULL));
  kith_pack_init(&p);
  evil_inner_settings(&p, 1, 1);
  NEXT(evil_control(&e, KITH_EV_SETTINGS, evil_on(prev), epoch, &p, NULL));
  randombytes_buf(inv_secret, 32);
  kith_invite_public_key(inv_secret, inv_pk);
  kith_pack_init(&p);
  evil_inner_invite(&p, inv_pk, 5, T0 + 24 * HOUR);
  NEXT(evil_control(&e, KITH_EV_INVITE, evil_on(prev), epoch, &p, NULL));
  NEXT(evil_add(&e, evil_on(prev), epoch, w->id[Z].pk, "zed", inv_secret, 8,
                NULL));
  GByteArray *ids = g_byte_array_new();
  for (guint i = 0; i + 32 <= members_at->len; i += 32)
    if (memcmp(members_at->data + i, w->id[victim].pk, 32) != 0)
      g_byte_array_append(ids, members_at->data + i, 32);
  g_byte_array_append(ids, w->id[Z].pk, 32);
  sort_ids(ids);
  uint64_t ne;
  uint8_t secret[32];
  evil_box_kind good = EVIL_BOX_GOOD;
  NEXT(evil_rekey(&e, evil_on(prev), epoch, ids, &good, 1, NULL, &ne, secret));
  NEXT(evil_message(&e, evil_on(prev), ne, secret, 0, "the attacker is back"));
  if (then_topic) {
    kith_pack_init(&p);
    evil_inner_text(&p, "the attacker's epoch");
    NEXT(evil_control_in(&e, KITH_EV_TOPIC, evil_on(prev), ne, secret, &p,
                         NULL));
  }
  sodium_memzero(secret, sizeof secret);
  g_byte_array_free(ids, TRUE);
#undef NEXT
  evil_clear(&e);
  return w->log->len - first;
}

/* A group of a..d where c is made admin, then b (admitted before c), and
 * b removes c. *at gets the event just after c became admin (there, c
 * outranks b), *epoch the epoch and *members the members there. */
static world *removed_admin_world(uint8_t at[32], uint64_t *epoch,
                                  GByteArray **members) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, D);
  do_role(w, A, C, KITH_ROLE_ADMIN);
  sync_nodes(w, A, D);
  last_id(w, at);
  *epoch = kith_group_epoch_id(w->g[C]);
  *members = members_of(w->g[C]);
  do_role(w, A, B, KITH_ROLE_ADMIN);
  sync_nodes(w, A, D);
  do_remove(w, B, C);
  sync_nodes(w, A, D);
  return w;
}

static void backdated_removal_by_removed_admin_has_no_effect(void **state) {
  uint8_t at[32];
  uint64_t epoch;
  GByteArray *members;
  world *w = removed_admin_world(at, &epoch, &members);
  uint64_t after = kith_group_epoch_id(w->g[A]);
  guint n = backdated_branch(w, C, B, at, epoch, members, 0);
  assert_int_equal(n, 8);
  g_byte_array_free(members, TRUE);
  sync_nodes(w, A, D);
  for (int i = A; i <= D; i++) {
    if (i == C)
      continue;
    assert_false(kith_group_is_member(w->g[i], w->id[C].pk));
    assert_true(kith_group_is_member(w->g[i], w->id[B].pk));
    assert_int_equal(member_of(w, i, B)->role, KITH_ROLE_ADMIN);
    assert_int_equal(member_of(w, i, D)->role, KITH_ROLE_MEMBER);
    assert_false(kith_group_is_member(w->g[i], w->id[Z].pk));
    assert_string_equal(kith_group_topic(w->g[i]), "");
    assert_false(kith_group_admins_only_invites(w->g[i]));
    assert_int_equal(kith_group_n_invites(w->g[i]), 1);
    assert_int_equal(kith_group_epoch_id(w->g[i]), after);
  }
  assert_same_state(w, A, B);
  assert_same_state(w, A, D);
  send_text(w, A, "c is gone");
  char *text = sync_read(w, C);
  assert_null(text);
  assert_false(holds_secret(w->g[C], kith_group_epoch_id(w->g[A])));
  assert_orders_converge(w, D, w->g[D], w->g[A], 20, 3);
  world_free(w);
}

/* c was an owner, demoted to admin by a; b (admin, admitted before c) then
 * removes c. c signs, on parents from before its demotion when it was an
 * owner, a demotion of b and then the branch that removes b: a's demotion
 * of c is resolved first (a is more senior), so c's rank for its acts is
 * admin, b's removal of c is more senior than c's acts, and they void. */
static void backdated_removal_before_own_demotion_has_no_effect(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, D);
  do_role(w, A, B, KITH_ROLE_ADMIN);
  do_role(w, A, C, KITH_ROLE_OWNER);
  sync_nodes(w, A, D);
  uint8_t at[32];
  last_id(w, at);
  uint64_t epoch = kith_group_epoch_id(w->g[C]);
  GByteArray *members = members_of(w->g[C]);
  do_role(w, A, C, KITH_ROLE_ADMIN);
  sync_nodes(w, A, D);
  do_remove(w, B, C);
  sync_nodes(w, A, D);
  uint64_t after = kith_group_epoch_id(w->g[A]);
  evil e;
  evil_init(&e, &w->id[C], w->g[C]);
  kith_pack p;
  kith_pack_init(&p);
  evil_inner_role(&p, w->id[B].pk, KITH_ROLE_MEMBER);
  publish(w, evil_control(&e, KITH_EV_ROLE, evil_on(at), epoch, &p, NULL));
  last_id(w, at);
  evil_clear(&e);
  sync_node(w, C); /* c's own replica takes its demotion of b */
  backdated_branch(w, C, B, at, epoch, members, 0);
  g_byte_array_free(members, TRUE);
  sync_nodes(w, A, D);
  for (int i = A; i <= D; i++) {
    if (i == C)
      continue;
    assert_false(kith_group_is_member(w->g[i], w->id[C].pk));
    assert_true(kith_group_is_member(w->g[i], w->id[B].pk));
    assert_int_equal(member_of(w, i, B)->role, KITH_ROLE_ADMIN);
    assert_int_equal(member_of(w, i, D)->role, KITH_ROLE_MEMBER);
    assert_string_equal(kith_group_topic(w->g[i]), "");
    assert_int_equal(kith_group_epoch_id(w->g[i]), after);
  }
  assert_same_state(w, A, B);
  assert_same_state(w, A, D);
  assert_orders_converge(w, B, w->g[B], w->g[A], 20, 4);
  world_free(w);
}

/* ---- key gaps: control events in an epoch a member lacks ---- */

/* Box kinds for a rekey to ids: garbage for x and y, good for the rest. */
static void garbage_for(world *w, const GByteArray *ids, int x, int y,
                        evil_box_kind *kinds) {
  assert_true(ids->len / 32 <= N_NODES);
  for (guint i = 0; i < ids->len / 32; i++) {
    const uint8_t *id = ids->data + 32 * i;
    kinds[i] =
        memcmp(id, w->id[x].pk, 32) == 0 || memcmp(id, w->id[y].pk, 32) == 0
            ? EVIL_BOX_GARBAGE
            : EVIL_BOX_GOOD;
  }
}

/* d publishes a rekey (on its heads) whose boxes are garbage for x and y
 * and good for the others; its epoch, secret and id come back (each if
 * asked). */
static void garbage_rekey_by_d(world *w, int x, int y, uint64_t *epoch,
                               uint8_t *secret, uint8_t *id) {
  evil e;
  evil_init(&e, &w->id[D], w->g[D]);
  GByteArray *ids = members_of(w->g[D]);
  evil_box_kind kinds[N_NODES];
  garbage_for(w, ids, x, y, kinds);
  publish(w, evil_rekey(&e, evil_on_heads(&e), kith_group_epoch_id(w->g[D]),
                        ids, kinds, ids->len / 32, NULL, epoch, secret));
  if (id)
    last_id(w, id);
  g_byte_array_free(ids, TRUE);
  evil_clear(&e);
}

/* Runs kith_group_maintain at who's replica at time now; its events go to
 * the log. Returns how many, and the kind of the first in *kind. */
static guint maintain_at(world *w, int who, uint64_t now, uint32_t *kind) {
  GPtrArray *acc = acc_new();
  assert_int_equal(kith_group_maintain(w->g[who], now, acc), KITH_OK);
  if (kind)
    *kind = acc->len ? ((kith_accepted *)acc->pdata[0])->ev.kind : 0;
  return log_all(w, acc);
}

/* Delivers the log to who's replica and runs its kith_group_maintain, then
 * everyone else's, until nothing new is made (at most rounds times). */
static void settle(world *w, int from, int to, uint64_t now, int rounds) {
  for (int r = 0; r < rounds; r++) {
    guint before = w->log->len;
    sync_nodes(w, from, to);
    for (int i = from; i <= to; i++) {
      GPtrArray *acc = acc_new();
      (void)!kith_group_maintain(w->g[i], now, acc);
      log_all(w, acc);
    }
    if (w->log->len == before)
      return;
  }
}

/* b (admin) removed c (admin). c back-dates, on parents from before its
 * removal, a rekey and a topic in the rekey's epoch: variant 0 seals that
 * epoch to everyone but gives b (its remover) a garbage box; variant 1
 * first removes b on that branch, so the rekey is sealed to the others
 * only. a and d open the topic and build on it (it changes nothing: c is
 * out), and b holds the topic, and with it everything a and d post after
 * it, for want of the epoch's key. b asks for it (a need; in variant 0 it
 * reports c), a gives it (a keys event), and b catches up. */
static void backdated_epoch_left_out_is_given_to_the_member(void **state) {
  for (int variant = 0; variant < 2; variant++) {
    uint8_t prev[32];
    uint64_t epoch;
    GByteArray *ids;
    world *w = removed_admin_world(prev, &epoch, &ids);
    evil e;
    evil_init(&e, &w->id[C], w->g[C]);
    kith_pack p;
    evil_box_kind kinds[N_NODES];
    if (variant == 0) {
      garbage_for(w, ids, B, B, kinds);
    } else {
      kith_pack_init(&p);
      evil_inner_id(&p, w->id[B].pk);
      publish(w,
              evil_control(&e, KITH_EV_REMOVE, evil_on(prev), epoch, &p, NULL));
      last_id(w, prev);
      GByteArray *rest = g_byte_array_new();
      for (guint i = 0; i + 32 <= ids->len; i += 32)
        if (memcmp(ids->data + i, w->id[B].pk, 32) != 0)
          g_byte_array_append(rest, ids->data + i, 32);
      g_byte_array_free(ids, TRUE);
      ids = rest;
      for (guint i = 0; i < ids->len / 32; i++)
        kinds[i] = EVIL_BOX_GOOD;
    }
    uint64_t left_out;
    uint8_t secret[32], rekey[32];
    publish(w, evil_rekey(&e, evil_on(prev), epoch, ids, kinds, ids->len / 32,
                          NULL, &left_out, secret));
    last_id(w, rekey);
    sync_node(w, C); /* c's own replica takes its epoch */
    kith_pack_init(&p);
    evil_inner_text(&p, "c's topic");
    publish(
        w, evil_control(&e, KITH_EV_TOPIC, evil_on(rekey), left_out, &p, NULL));
    g_byte_array_free(ids, TRUE);
    evil_clear(&e);
    sync_node(w, A);
    sync_node(w, D);
    send_text(w, A, "a builds on it");
    sync_node(w, D);
    send_text(w, D, "so does d");
    /* b holds the topic and both posts */
    char *text = sync_read(w, B);
    assert_null(text);
    assert_int_equal(kith_group_n_held(w->g[B]), 3);
    /* b asks, a answers, b catches up */
    uint32_t kind;
    assert_int_equal(maintain_at(w, B, w->now, &kind), 1);
    assert_int_equal(kind, KITH_EV_NEED);
    sync_node(w, A);
    assert_int_equal(kith_group_n_reports(w->g[A]), variant == 0 ? 1 : 0);
    assert_int_equal(maintain_at(w, A, w->now, &kind), 1);
    assert_int_equal(kind, KITH_EV_KEYS);
    text = sync_read(w, B);
    assert_string_equal(text, "so does d");
    g_free(text);
    assert_int_equal(kith_group_n_held(w->g[B]), 0);
    assert_true(holds_secret(w->g[B], left_out));
    settle(w, A, D, w->now, 4);
    assert_same_state(w, A, B);
    assert_same_state(w, A, D);
    assert_string_equal(kith_group_topic(w->g[B]), "");
    assert_false(kith_group_is_member(w->g[B], w->id[C].pk));
    sodium_memzero(secret, sizeof secret);
    world_free(w);
  }
}

/* Honest concurrency leaves the same gap: a admits d while b rekeys (d is
 * not sent the new epoch), c sees only the rekey and makes an invite in
 * its epoch, and the rekey owed to d (rule 7) is sealed in that epoch
 * too. d holds both for want of the epoch's key, asks for it, is given
 * it, and then opens the owed rekey's box: it reads and posts again. */
static void concurrent_admission_is_given_the_missed_epoch(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, C);
  new_invite(w, A, 1, T0 + HOUR);
  sync_nodes(w, A, C);
  admit_x(w, A, D, KITH_OK);
  do_rekey(w, B);
  assert_int_equal(deliver(w->g[C], w->log->pdata[w->log->len - 1], NULL),
                   KITH_OK); /* c sees the rekey, not the add */
  kith_accepted *a = NULL;
  uint8_t secret[32];
  assert_int_equal(kith_group_invite(w->g[C], 1, T0 + HOUR, w->now, secret, &a),
                   KITH_OK);
  log_take(w, a);
  sync_nodes(w, A, D);
  assert_int_equal(maintain_at(w, A, w->now, NULL), 1); /* the owed rekey */
  sync_node(w, D);
  assert_false(kith_group_is_ready(w->g[D]));
  assert_int_equal(kith_group_n_held(w->g[D]), 2); /* the invite, the rekey */
  settle(w, A, D, w->now, 6);
  assert_true(kith_group_is_ready(w->g[D]));
  assert_int_equal(kith_group_n_held(w->g[D]), 0);
  send_text(w, D, "d is in");
  char *text = sync_read(w, C);
  assert_string_equal(text, "d is in");
  g_free(text);
  sync_nodes(w, A, D);
  for (int i = B; i <= D; i++)
    assert_same_state(w, A, i);
  world_free(w);
}

/* ---- 4. garbage rekey lockout ---- */

/* d's rekey carries garbage for a and b (a good box for c and itself),
 * and d and c post in its epoch. a and b cannot read or post there; they
 * hold the posts for the key. Each asks for it by itself
 * (kith_group_maintain: a need of a few hundred bytes, no rekey), which
 * names d as the forger; c, the one member who may answer (d is
 * accused), answers each at once with a keys event hung on the need. a
 * and b then read the posts and send again, in d's epoch: no new epoch,
 * two small needs and two small answers. */
static void garbage_rekey_victims_recover_and_forger_is_reported(void **s) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, D);
  uint64_t bad_epoch;
  uint8_t bad_secret[32], bad_id[32];
  garbage_rekey_by_d(w, A, B, &bad_epoch, bad_secret, bad_id);
  sync_node(w, D);
  evil e;
  evil_init(&e, &w->id[D], w->g[D]);
  publish(w, evil_message(&e, evil_on_heads(&e), bad_epoch, bad_secret, 0,
                          "only c and d read this"));
  sync_nodes(w, A, D);
  send_text(w, C, "c posts in d's epoch");
  sync_nodes(w, A, D);
  for (int i = A; i <= B; i++) {
    assert_false(kith_group_is_ready(w->g[i]));
    GPtrArray *acc = acc_new();
    assert_int_equal(kith_group_send(w->g[i], "x", 1, NULL, w->now, acc),
                     KITH_ERR_STATE);
    assert_int_equal(acc->len, 0);
    g_ptr_array_unref(acc);
    assert_int_equal(kith_group_n_held(w->g[i]), 2); /* the two posts */
  }
  /* the victims ask, at once */
  uint32_t kind;
  for (int i = A; i <= B; i++) {
    assert_int_equal(maintain_at(w, i, w->now, &kind), 1);
    assert_int_equal(kind, KITH_EV_NEED);
  }
  sync_nodes(w, A, D);
  for (int i = A; i <= D; i++) {
    assert_int_equal(kith_group_n_reports(w->g[i]), 2);
    for (size_t k = 0; k < 2; k++) {
      uint8_t reporter[32], accused[32], rekey[32];
      kith_group_report_at(w->g[i], k, reporter, accused, rekey);
      assert_memory_equal(accused, w->id[D].pk, 32);
      assert_memory_equal(rekey, bad_id, 32);
      assert_true(memcmp(reporter, w->id[A].pk, 32) == 0 ||
                  memcmp(reporter, w->id[B].pk, 32) == 0);
    }
  }
  /* the log shows the report as a notice */
  kith_pack np;
  kith_pack_init(&np);
  kith_pack_array(&np, 1);
  kith_pack_array(&np, 1);
  kith_pack_uint(&np, bad_epoch);
  char *notice = kith_group_notice(w->g[C], KITH_EV_NEED, w->id[A].pk, w->now,
                                   (const uint8_t *)np.sb.data, np.sb.size);
  assert_string_equal(notice,
                      "alice reported that the new keys from dave did not "
                      "open for them");
  g_free(notice);
  kith_pack_clear(&np);
  /* d, the accused, does not answer; c does, at once */
  assert_int_equal(maintain_at(w, D, w->now, NULL), 0);
  assert_int_equal(maintain_at(w, C, w->now, &kind), 2);
  assert_int_equal(kind, KITH_EV_KEYS);
  char *text = sync_read(w, A);
  assert_string_equal(text, "c posts in d's epoch");
  g_free(text);
  sync_nodes(w, A, D);
  uint64_t gen = kith_group_epoch(w->g[A]);
  for (int i = A; i <= D; i++) { /* nothing more is owed, no new epoch */
    assert_true(kith_group_is_ready(w->g[i]));
    assert_int_equal(kith_group_n_held(w->g[i]), 0);
    assert_int_equal(maintain_at(w, i, w->now + 10 * KITH_REKEY_GRACE_MS, NULL),
                     0);
    assert_int_equal(kith_group_epoch(w->g[i]), gen);
    assert_int_equal(kith_group_epoch_id(w->g[i]), bad_epoch);
  }
  send_text(w, A, "a posts again");
  send_text(w, B, "b posts again");
  text = sync_read(w, C);
  assert_string_equal(text, "b posts again");
  g_free(text);
  sync_nodes(w, A, D);
  static const int all[] = {B, C, D};
  for (int i = 0; i < 3; i++)
    assert_same_state(w, A, all[i]);
  sodium_memzero(bad_secret, sizeof bad_secret);
  evil_clear(&e);
  world_free(w);
}

/* An answer that does not help passes the turn on. d's rekey has garbage
 * for a; a asks; b, the first to answer (the most senior who may), is an
 * accomplice and answers with a garbage box, which closes a's request. a
 * asks again, and now c's turn comes first: b would wait a grace period,
 * c answers at once, and a gets the key. The forger is reported once. */
static void useless_answer_passes_the_turn(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, D);
  uint64_t old_epoch = kith_group_epoch_id(w->g[D]);
  garbage_rekey_by_d(w, A, A, NULL, NULL, NULL);
  sync_nodes(w, A, D);
  uint32_t kind;
  assert_int_equal(maintain_at(w, A, w->now, &kind), 1);
  assert_int_equal(kind, KITH_EV_NEED);
  uint8_t need[32];
  last_id(w, need);
  sync_nodes(w, A, D);
  /* b's garbage answer, hung on the need and sealed in its epoch (the one
   * before d's: a lacks d's) */
  evil eb;
  evil_init(&eb, &w->id[B], w->g[B]);
  kith_pack p;
  kith_pack_init(&p);
  evil_inner_id(&p, need);
  GBytes *junk = evil_garbage(120);
  publish(w,
          evil_control(&eb, KITH_EV_KEYS, evil_on(need), old_epoch, &p, junk));
  g_bytes_unref(junk);
  evil_clear(&eb);
  sync_nodes(w, A, D);
  assert_false(kith_group_is_ready(w->g[A]));
  assert_int_equal(maintain_at(w, A, w->now, &kind), 1); /* asks again */
  assert_int_equal(kind, KITH_EV_NEED);
  sync_nodes(w, A, D);
  assert_int_equal(maintain_at(w, B, w->now, NULL), 0);
  assert_int_equal(maintain_at(w, C, w->now, &kind), 1);
  assert_int_equal(kind, KITH_EV_KEYS);
  sync_nodes(w, A, D);
  assert_true(kith_group_is_ready(w->g[A]));
  assert_int_equal(kith_group_n_reports(w->g[A]), 1);
  assert_int_equal(maintain_at(w, B, w->now + KITH_REKEY_GRACE_MS, NULL), 0);
  send_text(w, A, "a is back");
  char *text = sync_read(w, D);
  assert_string_equal(text, "a is back");
  g_free(text);
  world_free(w);
}

/* A crowd: a, then n more members, each with its own replica, all synced
 * through the world's log. */
typedef struct crowd {
  world *w;
  guint n;
  kith_ident *id;
  kith_group **g;
} crowd;

static crowd crowd_new(guint n) {
  crowd c = {.w = world_new(KITH_HISTORY_SHARED, 0, A), .n = n};
  c.id = g_new0(kith_ident, n);
  c.g = g_new0(kith_group *, n);
  uint8_t secret[32], pk[32];
  kith_accepted *a = NULL;
  assert_int_equal(
      kith_group_invite(c.w->g[A], 1000, T0 + HOUR, c.w->now, secret, &a),
      KITH_OK);
  log_take(c.w, a);
  kith_invite_public_key(secret, pk);
  for (guint i = 0; i < n; i++) {
    uint8_t seed[32];
    memset(seed, 0, sizeof seed);
    seed[0] = 0xc0, seed[1] = (uint8_t)i;
    assert_int_equal(kith_ident_from_seed(&c.id[i], seed), KITH_OK);
    assert_int_equal(admit_as(c.w, A, &c.id[i], "fan", secret), KITH_OK);
    c.g[i] = kith_group_new(c.w->gid, &c.id[i]);
  }
  return c;
}

static void crowd_sync(crowd *c) {
  sync_node(c->w, A);
  for (guint i = 0; i < c->n; i++)
    for (guint k = 0; k < c->w->log->len; k++)
      assert_true(ok_rc(feed(c->g[i], c->w->log->pdata[k])));
}

/* Maintains every replica of the crowd (a first) at now; counts the events
 * made by kind and their bytes. */
static void crowd_maintain(crowd *c, uint64_t now, guint *kinds,
                           size_t *bytes) {
  for (guint i = 0; i <= c->n; i++) {
    GPtrArray *acc = acc_new();
    kith_group *g = i == 0 ? c->w->g[A] : c->g[i - 1];
    assert_int_equal(kith_group_maintain(g, now, acc), KITH_OK);
    for (guint k = 0; k < acc->len; k++) {
      kith_accepted *a = acc->pdata[k];
      kinds[a->ev.kind]++;
      *bytes += a->ev.raw_len;
    }
    log_all(c->w, acc);
  }
}

static void crowd_free(crowd *c) {
  for (guint i = 0; i < c->n; i++) {
    kith_group_free(c->g[i]);
    kith_ident_clear(&c->id[i]);
  }
  g_free(c->g);
  g_free(c->id);
  world_free(c->w);
}

/* One garbage rekey in a group of 40: the last member forges a rekey
 * whose boxes are garbage for everyone but itself and, in the first
 * variant, a (the owner). Every victim asks at once, with a small need:
 * no rekey, where each used to make a recovery rekey of 40 boxes. a
 * answers each need with a small keys event. In the second variant
 * nobody but the forger holds the epoch: nobody answers, and after
 * KITH_RECOVERY_WAIT_MS one recovery rekey is made, by the most senior
 * asker, while the others wait their turn and need not make theirs. */
static void garbage_rekey_costs_one_small_need_per_victim(void **state) {
  enum { N = 39 };
  for (int variant = 0; variant < 2; variant++) {
    crowd c = crowd_new(N);
    crowd_sync(&c);
    world *w = c.w;
    evil e;
    evil_init(&e, &c.id[N - 1], c.g[N - 1]);
    GByteArray *ids = members_of(w->g[A]);
    evil_box_kind kinds[N + 1];
    for (guint i = 0; i < ids->len / 32; i++) {
      const uint8_t *id = ids->data + 32 * i;
      int keep = memcmp(id, c.id[N - 1].pk, 32) == 0 ||
                 (variant == 0 && memcmp(id, w->id[A].pk, 32) == 0);
      kinds[i] = keep ? EVIL_BOX_GOOD : EVIL_BOX_GARBAGE;
    }
    publish(w, evil_rekey(&e, evil_on_heads(&e), kith_group_epoch_id(w->g[A]),
                          ids, kinds, ids->len / 32, NULL, NULL, NULL));
    size_t rekey_bytes = g_bytes_get_size(w->log->pdata[w->log->len - 1]);
    g_byte_array_free(ids, TRUE);
    evil_clear(&e);
    crowd_sync(&c);
    guint made[KITH_EV_KIND_MAX + 1] = {0};
    size_t bytes = 0;
    uint64_t t = w->now;
    for (int round = 0; round < 3; round++) { /* ask, answer, take */
      crowd_maintain(&c, t, made, &bytes);
      crowd_sync(&c);
    }
    guint victims = variant == 0 ? N - 1 : N;
    assert_int_equal(made[KITH_EV_NEED], victims);
    assert_int_equal(made[KITH_EV_REKEY], 0);
    assert_int_equal(made[KITH_EV_KEYS], variant == 0 ? victims : 0);
    if (variant == 0) {
      print_message("a garbage rekey of %u boxes (%zu bytes): %u needs and %u "
                    "answers, %zu bytes in all, no rekey (%u recovery rekeys "
                    "would take about %zu bytes)\n",
                    N + 1, rekey_bytes, made[KITH_EV_NEED], made[KITH_EV_KEYS],
                    bytes, victims, (size_t)victims * rekey_bytes);
      assert_true(bytes * 4 < (size_t)victims * rekey_bytes);
    } else {
      crowd_maintain(&c, t + KITH_RECOVERY_WAIT_MS, made, &bytes);
      assert_int_equal(made[KITH_EV_REKEY], 1);
      crowd_sync(&c);
      for (int round = 1; round < 8; round++) /* the others' turns pass */
        crowd_maintain(&c,
                       t + KITH_RECOVERY_WAIT_MS +
                           (uint64_t)round * KITH_REKEY_GRACE_MS,
                       made, &bytes);
      assert_int_equal(made[KITH_EV_REKEY], 1);
    }
    crowd_sync(&c);
    for (guint i = 0; i < N; i++)
      assert_true(kith_group_is_ready(c.g[i]));
    assert_true(kith_group_is_ready(w->g[A]));
    crowd_free(&c);
  }
}

/* Requests live in the state, which a restart folds again from the
 * stored control events: a's node asks (its replica writes to a store),
 * restarts, has the same state and does not ask again; c's answer then
 * reaches the restarted replica, which takes the key. */
static void key_requests_survive_a_restart(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, D);
  char *dir, *path;
  kith_store *st = temp_store(w->gid, &dir, &path);
  assert_int_equal(kith_group_attach_store(w->g[A], st), KITH_OK);
  garbage_rekey_by_d(w, A, A, NULL, NULL, NULL);
  sync_nodes(w, A, D);
  uint32_t kind;
  assert_int_equal(maintain_at(w, A, w->now, &kind), 1);
  assert_int_equal(kind, KITH_EV_NEED);
  assert_int_equal(kith_group_flush(w->g[A]), KITH_OK);
  uint8_t before[32], after[32];
  kith_group_state_hash(w->g[A], before);
  kith_group_free(w->g[A]);
  w->g[A] = NULL;
  assert_int_equal(kith_group_open(w->gid, &w->id[A], st, &w->g[A]), KITH_OK);
  kith_group_state_hash(w->g[A], after);
  assert_memory_equal(before, after, 32);
  assert_false(kith_group_is_ready(w->g[A]));
  assert_int_equal(maintain_at(w, A, w->now + 1000, NULL), 0);
  sync_nodes(w, B, D);
  assert_int_equal(maintain_at(w, B, w->now, &kind), 1);
  assert_int_equal(kind, KITH_EV_KEYS);
  sync_node(w, A);
  assert_true(kith_group_is_ready(w->g[A]));
  assert_int_equal(kith_group_flush(w->g[A]), KITH_OK);
  send_text(w, A, "back after a restart");
  char *text = sync_read(w, D);
  assert_string_equal(text, "back after a restart");
  g_free(text);
  kith_group_free(w->g[A]);
  w->g[A] = NULL;
  world_free(w);
  temp_store_remove(st, dir, path);
}

/* Boxes that open but start with another epoch's key, or a rekey whose
 * boxes are all garbage (the forger's own too): nobody but the forger
 * holds the epoch, so nobody answers the victims' needs; after
 * KITH_RECOVERY_WAIT_MS the most senior of them (a) makes a new epoch (a
 * recovery rekey), and b, whose turn comes a grace period later, need
 * not. A garbage rekey that lost to a concurrent honest one makes nobody
 * a victim. No single event stops honest members from sending. */
static void garbage_rekey_variants_cannot_stop_honest_senders(void **s) {
  static const evil_box_kind wrong = EVIL_BOX_WRONG, junk = EVIL_BOX_GARBAGE;
  /* each variant in a version-1 and a version-2 rekey (boxes of key
   * lists; boxes of bare secrets) */
  for (int run = 0; run < 6; run++) {
    int variant = run % 3;
    world *w = world_new(KITH_HISTORY_SHARED, 0, C);
    evil e;
    evil_init(&e, &w->id[C], w->g[C]);
    e.rekey_version = run < 3 ? KITH_EVENT_V1 : KITH_EVENT_V2;
    GByteArray *ids = members_of(w->g[C]);
    uint64_t epoch = kith_group_epoch_id(w->g[C]);
    evil_at at = evil_on_heads(&e);
    GBytes *bad = NULL;
    if (variant < 2) {
      bad = evil_rekey(&e, at, epoch, ids, variant == 0 ? &wrong : &junk, 1,
                       NULL, NULL, NULL);
    } else {
      /* an honest rekey by b and, at the same parents, a garbage rekey
       * that sorts before it */
      do_rekey(w, B);
      uint8_t honest[32];
      last_id(w, honest);
      for (int tries = 0; tries < 256; tries++) {
        GBytes *x = evil_rekey(&e, at, epoch, ids, &junk, 1, NULL, NULL, NULL);
        uint8_t id[32];
        id_of(x, id);
        if (memcmp(id, honest, 32) < 0) {
          bad = x;
          break;
        }
        g_bytes_unref(x);
      }
    }
    assert_non_null(bad);
    assert_int_equal(((const uint8_t *)g_bytes_get_data(bad, NULL))[1],
                     e.rekey_version);
    publish(w, bad);
    g_byte_array_free(ids, TRUE);
    sync_nodes(w, A, C);
    uint64_t t = w->now;
    uint32_t kind;
    for (int i = A; i <= B; i++) { /* victims ask; nothing when no victim */
      assert_int_equal(maintain_at(w, i, t, &kind), variant == 2 ? 0 : 1);
      assert_true(variant == 2 || kind == KITH_EV_NEED);
    }
    maintain_at(w, C, t, &kind); /* the forger's own node gives nothing */
    assert_true(kind != KITH_EV_KEYS);
    sync_nodes(w, A, C);
    if (variant < 2) {
      assert_int_equal(maintain_at(w, A, t + KITH_RECOVERY_WAIT_MS - 1, NULL),
                       0);
      assert_int_equal(maintain_at(w, B, t + KITH_RECOVERY_WAIT_MS, NULL), 0);
      assert_int_equal(maintain_at(w, A, t + KITH_RECOVERY_WAIT_MS, &kind), 1);
      assert_int_equal(kind, KITH_EV_REKEY);
      sync_nodes(w, A, C);
      assert_int_equal(
          maintain_at(w, B, t + KITH_RECOVERY_WAIT_MS + KITH_REKEY_GRACE_MS,
                      NULL),
          0);
    }
    send_text(w, A, "a still posts");
    char *text = sync_read(w, B);
    assert_string_equal(text, "a still posts");
    g_free(text);
    send_text(w, B, "b too");
    sync_nodes(w, A, C);
    assert_same_state(w, A, B);
    assert_same_state(w, A, C);
    assert_true(kith_group_is_ready(w->g[A]));
    evil_clear(&e);
    world_free(w);
  }
}

/* ---- 6. invite race, invisible reader ---- */

/* A single-use code redeemed at b and c at once: the losing joiner was
 * given the epoch of the race, so once a sender has seen both adds it
 * rekeys before posting, and the loser holds no key for anything sent
 * after that. */
static void invite_race_loser_reads_nothing_after(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, C);
  new_invite(w, A, 1, T0 + HOUR);
  sync_nodes(w, A, C);
  guint ad = w->log->len;
  admit_x(w, B, D, KITH_OK);
  guint ae = w->log->len;
  admit_x(w, C, E, KITH_OK);
  int winner = sorts_before(w, ad, ae) ? D : E, loser = winner == D ? E : D;
  uint64_t race_epoch = kith_group_epoch_id(w->g[A]);
  sync_nodes(w, A, E); /* the race is settled everywhere */
  assert_false(kith_group_is_member(w->g[A], w->id[loser].pk));
  assert_true(holds_secret(w->g[loser], race_epoch)); /* it was exposed */
  send_text(w, A, "after the race");
  send_text(w, winner, "the winner speaks");
  send_text(w, B, "b too");
  uint64_t now_epoch = kith_group_epoch_id(w->g[A]);
  assert_true(now_epoch != race_epoch);
  char *text = sync_read(w, loser);
  assert_null(text);
  assert_false(holds_secret(w->g[loser], now_epoch));
  /* it holds the epoch of the race, nothing later */
  assert_int_equal(kith_group_n_secrets(w->g[loser]), 1);
  text = sync_read(w, winner);
  assert_string_equal(text, "b too");
  g_free(text);
  sync_nodes(w, A, C);
  assert_same_state(w, A, winner);
  assert_same_state(w, A, B);
  world_free(w);
}

/* ---- 7. CPU exhaustion with old parents ---- */

static uint64_t work_of(kith_group *g) {
  kith_group_stats st;
  kith_group_get_stats(g, &st);
  return st.fold_steps + st.front_steps + st.sum_lookups + st.held_steps +
         st.head_steps;
}

typedef struct cost {
  double attack; /* engine steps per attacker event */
  double honest; /* engine steps per honest post after them */
} cost;

/* a's replica holds `history` messages (a memory-only replica); then b
 * signs n messages and n_ctl invites, each on one to three random old
 * events; then a posts 20 messages (merging the stray branches). The
 * engine's work (kith_group_stats steps) at a's replica, per event. */
static cost old_parents_cost(guint history, guint n, guint n_ctl,
                             guint32 seed) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, B);
  for (guint i = 0; i < history; i++) {
    GPtrArray *acc = acc_new();
    assert_int_equal(
        kith_group_send(w->g[A], "history", 7, NULL, w->now + i, acc), KITH_OK);
    log_all(w, acc);
  }
  GRand *rng = g_rand_new_with_seed(seed);
  evil e;
  evil_init(&e, &w->id[B], w->g[A]);
  uint64_t epoch = kith_group_epoch_id(w->g[A]);
  GPtrArray *evil_events =
      g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  for (guint i = 0; i < n + n_ctl; i++) {
    evil_at at = {.n = (size_t)g_rand_int_range(rng, 1, 4)};
    for (size_t k = 0; k < at.n; k++) /* the same shape at every size */
      id_of(w->log->pdata[(guint)(g_rand_double(rng) * w->log->len)],
            at.ids[k]);
    for (size_t k = 1; k < at.n; k++) /* distinct parents */
      if (memcmp(at.ids[k], at.ids[0], 32) == 0)
        at.n = 1;
    if (i < n) {
      g_ptr_array_add(evil_events,
                      evil_message(&e, at, epoch, NULL, i, "old parents"));
    } else {
      uint8_t pk[32];
      kith_pack p;
      randombytes_buf(pk, 32);
      kith_pack_init(&p);
      evil_inner_invite(&p, pk, 1, T0 + 24 * HOUR);
      g_ptr_array_add(evil_events,
                      evil_control(&e, KITH_EV_INVITE, at, epoch, &p, NULL));
    }
  }
  uint64_t before = work_of(w->g[A]);
  for (guint i = 0; i < evil_events->len; i++)
    assert_int_equal(feed(w->g[A], evil_events->pdata[i]), KITH_OK);
  uint64_t mid = work_of(w->g[A]);
  for (int i = 0; i < 20; i++)
    send_text(w, A, "still here");
  cost c = {(double)(mid - before) / (n + n_ctl),
            (double)(work_of(w->g[A]) - mid) / 20};
  assert_int_equal(kith_group_n_events(w->g[A]), w->log->len + n + n_ctl);
  g_ptr_array_unref(evil_events);
  g_rand_free(rng);
  evil_clear(&e);
  world_free(w);
  return c;
}

/* The engine's work for an event with old parents, and for the honest
 * events after many of them, does not grow with the number of messages
 * before them (a deterministic measure: steps of the engine's loops, not
 * time). */
static void old_parents_cost_does_not_grow_with_history(void **state) {
  cost small = old_parents_cost(ADV_HISTORY_SMALL, 200, 40, 11);
  cost large = old_parents_cost(ADV_HISTORY_LARGE, 200, 40, 11);
  print_message("steps per attacker event: %.1f at %u messages, %.1f at %u; "
                "per honest post after them: %.1f, %.1f\n",
                small.attack, ADV_HISTORY_SMALL, large.attack,
                ADV_HISTORY_LARGE, small.honest, large.honest);
  assert_true(large.attack <= 1.1 * small.attack + 8);
  assert_true(large.honest <= 1.1 * small.honest + 8);
}

/* ---- 8. held events ---- */

/* 4,096 orphans (events whose parents nobody has) from one member, then
 * from 4,096 strangers: honest events that arrive before their parents
 * are still released when the parents come, and an honest event that was
 * forgotten (evicted) is accepted when it arrives again. */
static void orphan_flood_does_not_block_others(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, C);
  evil e;
  evil_init(&e, &w->id[C], w->g[C]);
  uint64_t epoch = kith_group_epoch_id(w->g[C]);
  /* b's two messages, the second a child of the first */
  send_text(w, B, "first");
  send_text(w, B, "second");
  GBytes *first = g_bytes_ref(w->log->pdata[w->log->len - 2]);
  GBytes *second = g_bytes_ref(w->log->pdata[w->log->len - 1]);
  assert_int_equal(feed(w->g[A], second), KITH_ERR_MISSING);
  for (guint i = 0; i < KITH_GROUP_MAX_HELD; i++) {
    evil_at at = {.n = 1, .depth = 5 + i % 7, .ts = T0};
    randombytes_buf(at.ids[0], 32);
    GBytes *raw = evil_message(&e, at, epoch, NULL, 0, "orphan");
    assert_int_equal(feed(w->g[A], raw), KITH_ERR_MISSING);
    g_bytes_unref(raw);
    assert_true(kith_group_n_held(w->g[A]) <= KITH_GROUP_MAX_HELD);
  }
  /* one author's orphans evict each other (512 at most, 5.8), not b's */
  assert_true(kith_group_n_held(w->g[A]) <= 512 + 1);
  char *text = NULL;
  assert_int_equal(feed_at(w->g[A], first, RECV_NOW, &text), KITH_OK);
  assert_string_equal(text, "second"); /* released with its parent */
  g_free(text);
  /* now strangers, one orphan each, fill the whole bound */
  send_text(w, B, "third");
  send_text(w, B, "fourth");
  GBytes *third = g_bytes_ref(w->log->pdata[w->log->len - 2]);
  GBytes *fourth = g_bytes_ref(w->log->pdata[w->log->len - 1]);
  assert_int_equal(feed(w->g[A], fourth), KITH_ERR_MISSING);
  for (guint i = 0; i < KITH_GROUP_MAX_HELD + 16; i++) {
    kith_ident stranger;
    uint8_t seed[32];
    randombytes_buf(seed, 32);
    assert_int_equal(kith_ident_from_seed(&stranger, seed), KITH_OK);
    evil es;
    evil_init(&es, &stranger, w->g[A]);
    evil_at at = {.n = 1, .depth = 3, .ts = T0};
    randombytes_buf(at.ids[0], 32);
    GBytes *raw = evil_message(&es, at, epoch, NULL, 0, "sybil");
    assert_int_equal(feed(w->g[A], raw), KITH_ERR_MISSING);
    g_bytes_unref(raw);
    evil_clear(&es);
    kith_ident_clear(&stranger);
  }
  assert_int_equal(kith_group_n_held(w->g[A]), KITH_GROUP_MAX_HELD);
  /* b's held event may have been forgotten: it is not a verdict */
  assert_int_equal(feed(w->g[A], third), KITH_OK);
  kith_err rc = feed(w->g[A], fourth);
  assert_true(rc == KITH_OK || rc == KITH_ERR_DUPLICATE);
  sync_node(w, A);
  assert_same_state(w, A, B);
  GByteArray *ids = g_byte_array_new();
  assert_true(kith_group_missing(w->g[A], ids, 64) <= 64);
  g_byte_array_free(ids, TRUE);
  g_bytes_unref(first);
  g_bytes_unref(second);
  g_bytes_unref(third);
  g_bytes_unref(fourth);
  evil_clear(&e);
  world_free(w);
}

/* A chain of held events is released by a worklist, not by recursion. */
typedef struct release_job {
  kith_group *g;
  GBytes *root;
  kith_err rc;
  guint accepted;
} release_job;

static void *release_root(void *p) {
  release_job *j = p;
  GPtrArray *acc = acc_new();
  size_t len;
  const uint8_t *raw = g_bytes_get_data(j->root, &len);
  j->rc = kith_group_receive(j->g, raw, len, RECV_NOW, acc);
  j->accepted = acc->len;
  g_ptr_array_unref(acc);
  return NULL;
}

/* Eight members sign a chain of 4097 messages (each the child of the one
 * before, authors in turn: 512 held each, the per-author bound). A replica
 * gets them last first: 4096 are held, each for its parent. The first one
 * then releases the whole chain on a thread with a 512 KiB stack, which
 * recursion (one level per link) would overflow. */
static void held_chain_of_4096_releases_on_a_small_stack(void **state) {
  enum { AUTHORS = 8, CHAIN = KITH_GROUP_MAX_HELD + 1 };
  world *w = world_new(KITH_HISTORY_SHARED, 0, F);
  kith_ident extra[2];
  const kith_ident *who[AUTHORS];
  for (int i = 0; i < 2; i++) {
    uint8_t seed[32];
    memset(seed, 0x70 + i, sizeof seed);
    assert_int_equal(kith_ident_from_seed(&extra[i], seed), KITH_OK);
    assert_int_equal(admit_as(w, A, &extra[i], "extra", w->inv_secret),
                     KITH_OK);
  }
  for (int i = 0; i < AUTHORS; i++)
    who[i] = i < 6 ? &w->id[A + i] : &extra[i - 6];
  sync_node(w, A);
  uint64_t epoch = kith_group_epoch_id(w->g[A]);
  uint8_t secret[32], prev[32];
  assert_true(evil_secret(&(evil){.view = w->g[A]}, epoch, secret));
  uint64_t depth = deepest_head(w->g[A], prev);
  GPtrArray *chain =
      g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  for (guint i = 0; i < CHAIN; i++) {
    evil e;
    evil_init(&e, who[i % AUTHORS], w->g[A]);
    evil_at at = {.n = 1, .depth = depth + 1 + i, .ts = T0 + i};
    memcpy(at.ids[0], prev, 32);
    GBytes *raw = evil_message(&e, at, epoch, secret, i / AUTHORS, "link");
    id_of(raw, prev);
    g_ptr_array_add(chain, raw);
    evil_clear(&e);
  }
  kith_group *g = replica_with_keys(w, B, w->g[B]);
  for (guint i = 0; i < w->log->len; i++)
    assert_true(ok_rc(feed(g, w->log->pdata[i])));
  for (guint i = CHAIN; i-- > 1;)
    assert_int_equal(feed(g, chain->pdata[i]), KITH_ERR_MISSING);
  assert_int_equal(kith_group_n_held(g), KITH_GROUP_MAX_HELD);
  release_job job = {.g = g, .root = chain->pdata[0], .rc = KITH_ERR_STATE};
  pthread_attr_t attr;
  pthread_t t;
  assert_int_equal(pthread_attr_init(&attr), 0);
  assert_int_equal(pthread_attr_setstacksize(&attr, 512 * 1024), 0);
  assert_int_equal(pthread_create(&t, &attr, release_root, &job), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  pthread_attr_destroy(&attr);
  assert_int_equal(job.rc, KITH_OK);
  assert_int_equal(job.accepted, CHAIN);
  assert_int_equal(kith_group_n_held(g), 0);
  uint8_t head[32];
  assert_int_equal(deepest_head(g, head), depth + CHAIN);
  assert_memory_equal(head, prev, 32);
  kith_group_free(g);
  g_ptr_array_unref(chain);
  sodium_memzero(secret, sizeof secret);
  for (int i = 0; i < 2; i++)
    kith_ident_clear(&extra[i]);
  world_free(w);
}

/* ---- 9. timestamps ---- */

/* An event may not be dated more than KITH_CLOCK_SKEW_MS before its
 * latest parent (so not before the group existed either). */
static void event_dated_before_parents_is_rejected(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, B);
  w->now = T0 + 5 * HOUR;
  send_text(w, A, "five hours later");
  sync_node(w, B);
  evil e;
  evil_init(&e, &w->id[B], w->g[B]);
  uint64_t epoch = kith_group_epoch_id(w->g[B]);
  evil_at at = evil_on_heads(&e);
  at.ts = w->now - KITH_CLOCK_SKEW_MS - 1;
  GBytes *raw = evil_message(&e, at, epoch, NULL, 0, "back-dated");
  assert_int_equal(feed(w->g[A], raw), KITH_ERR_PROTOCOL);
  g_bytes_unref(raw);
  uint8_t create[32];
  id_of(w->log->pdata[0], create);
  at = evil_on(create);
  at.ts = T0 - 24 * HOUR; /* before the group existed */
  raw = evil_message(&e, at, epoch, NULL, 1, "before the group");
  assert_int_equal(feed(w->g[A], raw), KITH_ERR_PROTOCOL);
  g_bytes_unref(raw);
  at = evil_on_heads(&e);
  at.ts = w->now - KITH_CLOCK_SKEW_MS; /* within the skew: fine */
  raw = evil_message(&e, at, epoch, NULL, 2, "a slow clock");
  assert_int_equal(feed(w->g[A], raw), KITH_OK);
  g_bytes_unref(raw);
  evil_clear(&e);
  world_free(w);
}

/* An event dated far ahead of the receiver's clock is held (not judged:
 * the receiver's clock is not part of the event), with its children, and
 * accepted once kith_group_maintain is called with a clock that reached
 * it. */
static void event_dated_far_ahead_is_held_until_its_time(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, B);
  evil e;
  evil_init(&e, &w->id[B], w->g[B]);
  uint64_t epoch = kith_group_epoch_id(w->g[B]);
  uint64_t now = T0 + HOUR, when = now + 2 * HOUR;
  evil_at at = evil_on_heads(&e);
  at.ts = when;
  GBytes *ahead = evil_message(&e, at, epoch, NULL, 0, "from the future");
  uint8_t ahead_id[32];
  id_of(ahead, ahead_id);
  GBytes *child = evil_message(&e, evil_on(ahead_id), epoch, NULL, 1, "child");
  assert_int_equal(feed_at(w->g[A], ahead, now, NULL), KITH_ERR_MISSING);
  assert_int_equal(feed_at(w->g[A], child, now, NULL), KITH_ERR_MISSING);
  assert_int_equal(kith_group_n_held(w->g[A]), 2);
  GPtrArray *acc = acc_new();
  assert_int_equal(
      kith_group_maintain(w->g[A], when - KITH_CLOCK_SKEW_MS - 1, acc),
      KITH_OK);
  assert_int_equal(acc->len, 0);
  assert_int_equal(kith_group_maintain(w->g[A], when - KITH_CLOCK_SKEW_MS, acc),
                   KITH_OK);
  assert_int_equal(acc->len, 2);
  assert_string_equal(((kith_accepted *)acc->pdata[1])->text, "child");
  g_ptr_array_unref(acc);
  assert_int_equal(kith_group_n_held(w->g[A]), 0);
  g_bytes_unref(ahead);
  g_bytes_unref(child);
  evil_clear(&e);
  world_free(w);
}

/* A member's event dated ahead pulls the date of an honest child with it
 * (an own event is never dated before its parent, docs/protocol.md 5),
 * but no further than the parent's own date once that is
 * GRP_TS_LEAD_MS (1 s) or more ahead of the clock: a member who dates
 * one event KITH_CLOCK_SKEW_MS ahead cannot push the honest events after
 * it beyond, where receivers with right clocks would hold them. */
static uint64_t reply_ts(world *w, GBytes *parent, uint64_t now) {
  uint8_t id[32];
  uint64_t ts = 0;
  assert_int_equal(feed_at(w->g[A], parent, now, NULL), KITH_OK);
  w->now = now;
  send_text(w, A, "a reply");
  last_id(w, id);
  assert_int_equal(kith_group_event_info(w->g[A], id, NULL, &ts, NULL, NULL),
                   KITH_OK);
  /* a member whose clock is right takes both at once, nothing held */
  assert_int_equal(feed_at(w->g[C], parent, now, NULL), KITH_OK);
  assert_int_equal(feed_at(w->g[C], w->log->pdata[w->log->len - 1], now, NULL),
                   KITH_OK);
  assert_int_equal(kith_group_n_held(w->g[C]), 0);
  return ts;
}

static void honest_child_of_an_event_dated_ahead_goes_no_further(void **s) {
  (void)s;
  world *w = world_new(KITH_HISTORY_SHARED, 0, C);
  evil e;
  evil_init(&e, &w->id[B], w->g[B]);
  uint64_t epoch = kith_group_epoch_id(w->g[B]), now = T0 + HOUR;
  evil_at at = evil_on_heads(&e);
  at.ts = now + 500; /* within the lead: the child a ms after it */
  GBytes *near = evil_message(&e, at, epoch, NULL, 0, "half a second ahead");
  assert_int_equal(reply_ts(w, near, now), now + 501);
  at = evil_on_heads(&e);
  at.ts = now + KITH_CLOCK_SKEW_MS; /* as far as receivers take at once */
  GBytes *far = evil_message(&e, at, epoch, NULL, 1, "ten minutes ahead");
  assert_int_equal(reply_ts(w, far, now), now + KITH_CLOCK_SKEW_MS);
  g_bytes_unref(near);
  g_bytes_unref(far);
  evil_clear(&e);
  world_free(w);
}

/* Invite expiry is judged by the add's date, which can go back at most
 * KITH_CLOCK_SKEW_MS from its parents: a code is refused after its expiry
 * by honest members (kith_group_admit), and an add signed by a member
 * after it, or back-dated on recent parents, is rejected. */
static void expired_invite_admits_nobody(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, C);
  uint8_t secret[32], pk[32];
  kith_accepted *a = NULL;
  uint64_t expires = T0 + HOUR;
  assert_int_equal(kith_group_invite(w->g[A], 1, expires, w->now, secret, &a),
                   KITH_OK);
  log_take(w, a);
  kith_invite_public_key(secret, pk);
  w->now = expires + HOUR;
  send_text(w, A, "an hour after the expiry");
  sync_nodes(w, A, C);
  assert_int_equal(admit_as(w, B, &w->id[D], "dave", secret), KITH_ERR_EXPIRED);
  evil e;
  evil_init(&e, &w->id[C], w->g[C]);
  uint64_t epoch = kith_group_epoch_id(w->g[C]);
  evil_at at = evil_on_heads(&e);
  at.ts = w->now; /* honestly dated: after the expiry */
  GBytes *raw = evil_add(&e, at, epoch, w->id[D].pk, "dave", secret, 1, NULL);
  assert_int_equal(feed(w->g[A], raw), KITH_ERR_PROTOCOL);
  g_bytes_unref(raw);
  at = evil_on_heads(&e);
  at.ts = expires - 1; /* back-dated, but the parents are an hour later */
  raw = evil_add(&e, at, epoch, w->id[D].pk, "dave", secret, 1, NULL);
  assert_int_equal(feed(w->g[A], raw), KITH_ERR_PROTOCOL);
  g_bytes_unref(raw);
  assert_false(kith_group_is_member(w->g[A], w->id[D].pk));
  assert_int_equal(kith_group_n_members(w->g[A]), 3);
  evil_clear(&e);
  world_free(w);
}

/* ---- 10. names are not identities ---- */

/* Two members may call themselves by one name (even the owner's): the
 * engine tells them apart by id only, a removal by id removes the right
 * one, and a former member's name is still known. */
static void names_are_not_identities(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, A);
  new_invite(w, A, 5, T0 + HOUR);
  assert_int_equal(admit_as(w, A, &w->id[B], NAMES[A], w->inv_secret), KITH_OK);
  assert_int_equal(admit_as(w, A, &w->id[C], "carol", w->inv_secret), KITH_OK);
  sync_nodes(w, A, C);
  assert_int_equal(kith_group_n_members(w->g[C]), 3);
  assert_string_equal(member_of(w, C, A)->name, NAMES[A]);
  assert_string_equal(member_of(w, C, B)->name, NAMES[A]);
  assert_int_equal(member_of(w, C, A)->role, KITH_ROLE_OWNER);
  assert_int_equal(member_of(w, C, B)->role, KITH_ROLE_MEMBER);
  do_remove(w, A, B);
  sync_nodes(w, A, C);
  assert_true(kith_group_is_member(w->g[C], w->id[A].pk));
  assert_false(kith_group_is_member(w->g[C], w->id[B].pk));
  assert_string_equal(kith_group_name_of(w->g[C], w->id[B].pk), NAMES[A]);
  assert_string_equal(kith_group_name_of(w->g[C], w->id[C].pk), "carol");
  assert_string_equal(kith_group_name_of(w->g[C], w->id[Z].pk), "");
  world_free(w);
}

/* ---- a member nobody can seal to ---- */

/* The join proof is signed by the invite key, not by the newcomer, so a
 * member could admit 32 bytes that are no usable key. No sealed box can
 * be made to such a "member", which would make every later rekey fail:
 * such an add is rejected. */
static void add_of_unusable_id_is_rejected(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, C);
  uint8_t secret[32], pk[32];
  invite_by(w, C, secret, pk);
  sync_nodes(w, A, C);
  evil e;
  evil_init(&e, &w->id[C], w->g[C]);
  uint64_t epoch = kith_group_epoch_id(w->g[C]);
  uint8_t bad[3][32];
  memset(bad, 0, sizeof bad);
  bad[0][0] = 1;            /* the neutral point: small order */
  memset(bad[1], 0xff, 32); /* not a canonical encoding */
  bad[2][0] = 0xec;         /* -1: a point of order 2 */
  memset(bad[2] + 1, 0xff, 30);
  bad[2][31] = 0x7f;
  for (int i = 0; i < 3; i++) {
    GBytes *raw = evil_add(&e, evil_on_heads(&e), epoch, bad[i], "ghost",
                           secret, 1, NULL);
    assert_int_equal(feed(w->g[A], raw), KITH_ERR_PROTOCOL);
    g_bytes_unref(raw);
  }
  assert_int_equal(kith_group_n_members(w->g[A]), 3);
  do_remove(w, A, B); /* and its rekey */
  evil_clear(&e);
  world_free(w);
}

/* ---- the size of a rekey ---- */

/* A member admitted concurrently with a rekey misses its epoch. Boxes used
 * to carry such members older keys, up to 64 each, so an attacker that
 * made 70 epochs and then admitted 30 puppets on parents from before its
 * last rekey could make the honest rekey that follows too big for one
 * event. A box now carries the new secret only (a member asks for older
 * keys): the rekey still fits, and honest members post. */
static void members_who_missed_epochs_do_not_grow_rekeys(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, C);
  evil e;
  evil_init(&e, &w->id[C], w->g[C]);
  evil_box_kind good = EVIL_BOX_GOOD;
  uint64_t epoch = kith_group_epoch_id(w->g[C]);
  uint8_t secret[32], pk[32], inv_id[32];
  randombytes_buf(secret, 32);
  kith_invite_public_key(secret, pk);
  kith_pack p;
  kith_pack_init(&p);
  evil_inner_invite(&p, pk, 100, T0 + HOUR);
  publish(w,
          evil_control(&e, KITH_EV_INVITE, evil_on_heads(&e), epoch, &p, NULL));
  sync_node(w, C);
  /* 70 epochs: four rekeys in a row at most, so a puppet joins between */
  for (int r = 0; r < 70; r++) {
    if (r % KITH_REKEY_RUN == 0 && r) {
      kith_ident puppet;
      uint8_t seed[32];
      memset(seed, 0x20 + r / KITH_REKEY_RUN, sizeof seed);
      assert_int_equal(kith_ident_from_seed(&puppet, seed), KITH_OK);
      publish(w, evil_add(&e, evil_on_heads(&e), epoch, puppet.pk, "puppet",
                          secret, 1, NULL));
      kith_ident_clear(&puppet);
      sync_node(w, C);
    }
    GByteArray *ids = members_of(w->g[C]);
    publish(w, evil_rekey(&e, evil_on_heads(&e), epoch, ids, &good, 1, NULL,
                          &epoch, NULL));
    g_byte_array_free(ids, TRUE);
    sync_node(w, C);
  }
  uint64_t inv_epoch = epoch;
  last_id(w, inv_id);
  GByteArray *ids = members_of(w->g[C]);
  publish(w, evil_rekey(&e, evil_on_heads(&e), epoch, ids, &good, 1, NULL,
                        &epoch, NULL));
  g_byte_array_free(ids, TRUE);
  uint8_t prev[32];
  memcpy(prev, inv_id, 32);
  for (int i = 0; i < 30; i++) {
    kith_ident puppet;
    uint8_t seed[32];
    memset(seed, 0x80 + i, sizeof seed);
    assert_int_equal(kith_ident_from_seed(&puppet, seed), KITH_OK);
    publish(w, evil_add(&e, evil_on(prev), inv_epoch, puppet.pk, "puppet",
                        secret, 1, NULL));
    last_id(w, prev);
    kith_ident_clear(&puppet);
  }
  sync_nodes(w, A, C);
  assert_int_equal(kith_group_n_members(w->g[A]), 3 + 17 + 30);
  assert_true(kith_group_rekey_due(w->g[A]));
  send_text(w, A, "still posting");
  char *text = sync_read(w, B);
  assert_string_equal(text, "still posting");
  g_free(text);
  assert_false(kith_group_rekey_due(w->g[B]));
  evil_clear(&e);
  world_free(w);
}

/* A group at KITH_GROUP_MAX_MEMBERS (852: as many boxes as fit in one
 * rekey) refuses a further add, also when two adds made concurrently at
 * 851 members both reach it (the one that sorts later takes no effect),
 * and can still rekey and remove: the rekey after the removal fits in one
 * event and the members read what follows. */
static void group_at_the_member_limit_can_still_remove_and_rekey(void **s) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, B);
  enum { MAX = KITH_GROUP_MAX_MEMBERS };
  assert_int_equal(MAX, 852);
  kith_ident *fans = g_new0(kith_ident, MAX);
  uint8_t secret[32], pk[32];
  guint made = 0;
  for (guint i = 0; kith_group_n_members(w->g[A]) < MAX - 1; i++, made++) {
    if (i % 1000 == 0)
      invite_by(w, A, secret, pk); /* 5 uses each: a new one as needed */
    uint8_t seed[32];
    memset(seed, 0, sizeof seed);
    seed[0] = 0xd0, seed[1] = (uint8_t)i, seed[2] = (uint8_t)(i >> 8);
    assert_int_equal(kith_ident_from_seed(&fans[i], seed), KITH_OK);
    kith_err rc = admit_as(w, A, &fans[i], "fan", secret);
    if (rc == KITH_ERR_USED_UP) {
      invite_by(w, A, secret, pk);
      rc = admit_as(w, A, &fans[i], "fan", secret);
    }
    assert_int_equal(rc, KITH_OK);
  }
  sync_node(w, B);
  assert_int_equal(kith_group_n_members(w->g[B]), MAX - 1);
  /* a and b each admit one more, concurrently: both reach the limit */
  kith_ident x, y;
  uint8_t sx[32], sy[32];
  memset(sx, 0xe1, sizeof sx);
  memset(sy, 0xe2, sizeof sy);
  assert_int_equal(kith_ident_from_seed(&x, sx), KITH_OK);
  assert_int_equal(kith_ident_from_seed(&y, sy), KITH_OK);
  invite_by(w, A, secret, pk);
  sync_node(w, B);
  assert_int_equal(admit_as(w, A, &x, "x", secret), KITH_OK);
  assert_int_equal(admit_as(w, B, &y, "y", secret), KITH_OK);
  sync_nodes(w, A, B);
  assert_int_equal(kith_group_n_members(w->g[A]), MAX);
  assert_same_state(w, A, B);
  kith_ident z;
  memset(sy, 0xe3, sizeof sy);
  assert_int_equal(kith_ident_from_seed(&z, sy), KITH_OK);
  assert_int_equal(admit_as(w, A, &z, "z", secret), KITH_ERR_LIMIT);
  /* a rekey of MAX boxes fits; so does the rekey after a removal */
  do_rekey(w, A);
  size_t len = g_bytes_get_size(w->log->pdata[w->log->len - 1]);
  assert_true(len <= KITH_EVENT_MAX);
  do_remove(w, A, B);
  send_text(w, A, "852 boxes fit");
  kith_group *g = kith_group_new(w->gid, &fans[0]);
  for (guint i = 0; i < w->log->len; i++)
    assert_true(ok_rc(feed(g, w->log->pdata[i])));
  assert_int_equal(kith_group_n_held(g), 0);
  assert_true(kith_group_is_ready(g));
  assert_int_equal(kith_group_n_members(g), MAX - 1);
  print_message("a rekey for %d members: %zu bytes (the event limit is %d)\n",
                MAX, len, KITH_EVENT_MAX);
  kith_group_free(g);
  for (guint i = 0; i < made; i++)
    kith_ident_clear(&fans[i]);
  kith_ident_clear(&x);
  kith_ident_clear(&y);
  kith_ident_clear(&z);
  g_free(fans);
  world_free(w);
}

/* ---- the property: schedules with an adversary converge ---- */

typedef struct adv_run {
  world *w;
  GRand *rng;
  evil e;              /* f, the adversary */
  GPtrArray *forged;   /* bytes every replica must reject */
  uint8_t removal[32]; /* f's removal */
  uint8_t leave[32];   /* e's leave */
  kith_ident x[2];     /* two joiners racing for one code */
} adv_run;

static void adv_partial_sync(adv_run *r) {
  for (int k = A; k <= F; k++)
    for (guint i = 0; i < r->w->log->len; i++)
      if (g_rand_double(r->rng) < 0.5)
        assert_true(ok_rc(feed(r->w->g[k], r->w->log->pdata[i])));
}

/* Two passes of posts by the members, a partial sync between them. */
static void adv_chatter(adv_run *r, int round) {
  char text[64];
  for (int pass = 0; pass < 2; pass++) {
    if (pass)
      adv_partial_sync(r);
    for (int k = A; k <= E; k++) {
      kith_group *g = r->w->g[k];
      if (!kith_group_is_member(g, r->w->id[k].pk) || !kith_group_is_ready(g) ||
          g_rand_double(r->rng) < 0.4)
        continue;
      GPtrArray *acc = acc_new();
      g_snprintf(text, sizeof text, "round %d.%d from %s", round, pass,
                 NAMES[k]);
      kith_err rc =
          kith_group_send(g, text, strlen(text), NULL, r->w->now, acc);
      assert_true(rc == KITH_OK || rc == KITH_ERR_STATE);
      log_all(r->w, acc);
    }
  }
}

static void adv_maintain(adv_run *r, int k) {
  GPtrArray *acc = acc_new();
  (void)!kith_group_maintain(r->w->g[k], r->w->now, acc);
  log_all(r->w, acc);
}

/* What the adversary sends that no replica may accept: a bad signature,
 * another author's name on its event, another group's event, a body that
 * is no body, bytes that are no event, a stranger's event. */
static void adv_forge(adv_run *r) {
  world *w = r->w;
  GBytes *last = w->log->pdata[w->log->len - 1];
  g_ptr_array_add(r->forged, evil_bad_sig(last));
  g_ptr_array_add(r->forged, evil_as_author(&r->e, last, w->id[A].pk));
  g_ptr_array_add(r->forged, evil_other_group(&r->e, evil_on_heads(&r->e)));
  g_ptr_array_add(r->forged,
                  evil_junk_body(&r->e, evil_on_heads(&r->e), KITH_EV_MESSAGE));
  g_ptr_array_add(r->forged,
                  evil_junk_body(&r->e, evil_on_heads(&r->e), KITH_EV_REKEY));
  g_ptr_array_add(r->forged, evil_garbage(200));
  size_t len;
  const uint8_t *p = g_bytes_get_data(last, &len);
  g_ptr_array_add(r->forged, g_bytes_new(p, len - 3)); /* truncated */
  evil ez;
  evil_init(&ez, &w->id[Z], w->g[A]);
  g_ptr_array_add(r->forged,
                  evil_message(&ez, evil_on_heads(&ez),
                               kith_group_epoch_id(w->g[A]), NULL, 0, "z"));
  evil_clear(&ez);
}

/* Honest concurrency (partial syncs, concurrent rekeys and recoveries, a
 * single-use code redeemed twice, a removal, a leave) and the adversary f
 * (an admin): a garbage rekey, a stuffed key list, duplicates and forged
 * frames, and after its removal a back-dated branch that would undo it. */
static void adv_build(adv_run *r) {
  world *w = r->w;
  do_role(w, A, B, KITH_ROLE_ADMIN);
  do_role(w, A, F, KITH_ROLE_ADMIN);
  sync_nodes(w, A, F);
  adv_chatter(r, 0);
  adv_partial_sync(r);
  sync_nodes(w, A, F);
  uint8_t old[32]; /* f's back-dating point: f is an admin there */
  last_id(w, old);
  uint64_t old_epoch = kith_group_epoch_id(w->g[F]);
  GByteArray *old_members = members_of(w->g[F]);
  /* f: a rekey with garbage boxes for a and c, and a post in it */
  GByteArray *ids = members_of(w->g[F]);
  evil_box_kind kinds[N_NODES];
  garbage_for(w, ids, A, C, kinds);
  uint64_t ep;
  uint8_t sec[32];
  publish(w,
          evil_rekey(&r->e, evil_on_heads(&r->e), kith_group_epoch_id(w->g[F]),
                     ids, kinds, ids->len / 32, NULL, &ep, sec));
  g_byte_array_free(ids, TRUE);
  sync_node(w, F);
  publish(w,
          evil_message(&r->e, evil_on_heads(&r->e), ep, sec, 0, "f's epoch"));
  adv_partial_sync(r);
  adv_maintain(r, A); /* recoveries, and a concurrent plain rekey */
  adv_maintain(r, C);
  do_rekey(w, D);
  adv_chatter(r, 1);
  adv_partial_sync(r);
  /* a single-use code redeemed at b and e at once */
  uint8_t code[32];
  kith_accepted *a = NULL;
  sync_nodes(w, A, F);
  for (int k = A; k <= F; k++)
    adv_maintain(r, k);
  sync_nodes(w, A, F);
  assert_int_equal(kith_group_invite(w->g[A], 1, T0 + HOUR, w->now, code, &a),
                   KITH_OK);
  log_take(w, a);
  sync_nodes(w, A, F);
  assert_int_equal(admit_as(w, B, &r->x[0], "x0", code), KITH_OK);
  assert_int_equal(admit_as(w, E, &r->x[1], "x1", code), KITH_OK);
  adv_chatter(r, 2);
  adv_partial_sync(r);
  /* f: a rekey whose boxes are stuffed with made-up epochs */
  sync_nodes(w, A, F);
  ids = members_of(w->g[F]);
  evil_box_kind stuffed = EVIL_BOX_STUFFED;
  r->e.stuff = 100;
  publish(w,
          evil_rekey(&r->e, evil_on_heads(&r->e), kith_group_epoch_id(w->g[F]),
                     ids, &stuffed, 1, NULL, NULL, NULL));
  g_byte_array_free(ids, TRUE);
  adv_forge(r);
  sync_nodes(w, A, F);
  /* f is removed; it posts concurrently, then back-dates a branch */
  do_remove(w, A, F);
  id_of(w->log->pdata[w->log->len - 2], r->removal);
  send_text(w, F, "f has not seen its removal");
  adv_chatter(r, 3);
  sync_nodes(w, A, F);
  backdated_branch(w, F, C, old, old_epoch, old_members, 1);
  g_byte_array_free(old_members, TRUE);
  adv_forge(r);
  adv_partial_sync(r);
  /* e leaves; the others go on */
  do_leave(w, E);
  id_of(w->log->pdata[w->log->len - 1], r->leave);
  adv_chatter(r, 4);
  sync_nodes(w, A, F);
  for (int k = A; k <= D; k++)
    adv_maintain(r, k);
  adv_chatter(r, 5);
  /* c asks for the epoch of f's branch, which it was left out of, is given
   * it, and opens f's topic and what was built on it */
  settle(w, A, F, w->now, 8);
  assert_int_equal(kith_group_n_held(w->g[C]), 0);
}

/* The log's events in creation order (a topological order): which descend
 * from the event `from` (or are it). */
static uint8_t *descendants(world *w, const uint8_t from[32]) {
  uint8_t *desc = g_new0(uint8_t, w->log->len);
  GHashTable *index = g_hash_table_new_full(
      g_bytes_hash, g_bytes_equal, (GDestroyNotify)g_bytes_unref, NULL);
  for (guint i = 0; i < w->log->len; i++) {
    kith_event ev;
    size_t len;
    const uint8_t *p = g_bytes_get_data(w->log->pdata[i], &len);
    assert_int_equal(kith_event_decode(p, len, w->gid, &ev), KITH_OK);
    desc[i] = memcmp(ev.id, from, 32) == 0;
    for (size_t k = 0; k < ev.n_parents && !desc[i]; k++) {
      GBytes *key = g_bytes_new_static(ev.parents[k], 32);
      gpointer j = g_hash_table_lookup(index, key);
      g_bytes_unref(key);
      desc[i] = j && desc[GPOINTER_TO_UINT(j) - 1];
    }
    g_hash_table_insert(index, g_bytes_new(ev.id, 32), GUINT_TO_POINTER(i + 1));
    kith_event_clear(&ev);
  }
  g_hash_table_destroy(index);
  return desc;
}

/* The epoch of a message: the one its outer body names (version 1), or
 * for one the world logged as accepted, the epoch it was accepted in (a
 * version-2 message names none: the current epoch at its parents). */
static uint64_t message_epoch(world *w, GBytes *raw, uint32_t *kind) {
  kith_event ev;
  size_t len;
  const uint8_t *p = g_bytes_get_data(raw, &len);
  assert_int_equal(kith_event_decode(p, len, w->gid, &ev), KITH_OK);
  *kind = ev.kind;
  uint64_t epoch = 0;
  GBytes *id = g_bytes_new_static(ev.id, 32);
  const uint64_t *known = g_hash_table_lookup(w->epochs, id);
  g_bytes_unref(id);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  if (ev.kind == KITH_EV_MESSAGE && known)
    epoch = *known;
  else if (ev.kind == KITH_EV_MESSAGE) {
    assert_int_equal(ev.version, KITH_EVENT_V1);
    assert_int_equal(kith_codec_unpack(ev.body, ev.body_len, &u), KITH_OK);
    epoch = u.data.via.array.ptr[0].via.u64;
  }
  msgpack_unpacked_destroy(&u);
  kith_event_clear(&ev);
  return epoch;
}

static int is_forged(adv_run *r, GBytes *b) {
  for (guint i = 0; i < r->forged->len; i++)
    if (r->forged->pdata[i] == b)
      return 1;
  return 0;
}

/* One schedule for a fresh replica of who with the keys its node held:
 * every log event is accepted or held, every forged one refused. Reads
 * (ids of the messages that opened) go to `read` if given. */
static kith_group *adv_replay(adv_run *r, int who, GPtrArray *order,
                              GHashTable *read) {
  kith_group *g = replica_with_keys(r->w, who, r->w->g[who]);
  for (guint i = 0; i < order->len; i++) {
    GPtrArray *acc = acc_new();
    size_t len;
    const uint8_t *p = g_bytes_get_data(order->pdata[i], &len);
    kith_err rc = kith_group_receive(g, p, len, RECV_NOW, acc);
    if (is_forged(r, order->pdata[i]))
      assert_true(rc != KITH_OK && rc != KITH_ERR_DUPLICATE);
    else
      assert_true(ok_rc(rc));
    for (guint k = 0; read && k < acc->len; k++) {
      kith_accepted *a = acc->pdata[k];
      if (a->text && a->ev.kind == KITH_EV_MESSAGE)
        g_hash_table_add(read, g_bytes_new(a->ev.id, 32));
    }
    g_ptr_array_unref(acc);
  }
  return g;
}

static void adv_order(adv_run *r, GRand *rng, GPtrArray *order) {
  GPtrArray *log = r->w->log;
  g_ptr_array_set_size(order, 0);
  for (guint i = 0; i < log->len; i++) {
    g_ptr_array_add(order, log->pdata[i]);
    if (g_rand_double(rng) < 0.1) /* duplicates */
      g_ptr_array_add(order,
                      log->pdata[g_rand_int_range(rng, 0, (gint32)log->len)]);
  }
  for (int i = 0; i < 4; i++) /* forged frames, a few each time */
    g_ptr_array_add(
        order,
        r->forged->pdata[g_rand_int_range(rng, 0, (gint32)r->forged->len)]);
  shuffle(rng, order);
}

/* who left or was removed (by the event exit): in its own replica it is
 * not a member, it holds no key of an epoch a message was sent in by a
 * sender who had seen its exit, nor the group's current one, and it read
 * none of those messages. */
static void adv_check_exited(adv_run *r, int who, const uint8_t *desc,
                             GPtrArray *order) {
  world *w = r->w;
  GHashTable *read = g_hash_table_new_full(g_bytes_hash, g_bytes_equal,
                                           (GDestroyNotify)g_bytes_unref, NULL);
  kith_group *g = adv_replay(r, who, order, read);
  assert_false(kith_group_is_member(g, w->id[who].pk));
  assert_false(holds_secret(g, kith_group_epoch_id(w->g[A])));
  for (guint i = 0; i < w->log->len; i++) {
    uint32_t kind;
    uint64_t epoch = message_epoch(w, w->log->pdata[i], &kind);
    if (!desc[i] || kind != KITH_EV_MESSAGE)
      continue;
    uint8_t id[32];
    id_of(w->log->pdata[i], id);
    GBytes *key = g_bytes_new_static(id, 32);
    assert_false(g_hash_table_contains(read, key));
    g_bytes_unref(key);
    assert_false(holds_secret(g, epoch));
  }
  g_hash_table_destroy(read);
  kith_group_free(g);
}

/* At least 500 seeded schedules (shuffles with duplicates and forged
 * frames) of an event set with honest concurrency and an adversary: the
 * honest replicas converge to one state hash; the removed adversary and
 * the member who left are not members, hold no key of what was sent after
 * their exit, and read none of it. */
static void adversary_schedules_converge(void **state) {
  adv_run r = {0};
  r.w = world_new(KITH_HISTORY_SHARED, 0, F);
  r.rng = g_rand_new_with_seed(20261129);
  evil_init(&r.e, &r.w->id[F], r.w->g[F]);
  r.forged = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  for (int i = 0; i < 2; i++) {
    uint8_t seed[32];
    memset(seed, 0x60 + i, sizeof seed);
    assert_int_equal(kith_ident_from_seed(&r.x[i], seed), KITH_OK);
  }
  adv_build(&r);
  world *w = r.w;
  assert_true(w->log->len >= 60);
  guint kinds[KITH_EV_KIND_MAX + 1] = {0};
  for (guint i = 0; i < w->log->len; i++) {
    kith_event ev;
    size_t len;
    const uint8_t *p = g_bytes_get_data(w->log->pdata[i], &len);
    assert_int_equal(kith_event_decode(p, len, w->gid, &ev), KITH_OK);
    kinds[ev.kind]++;
    kith_event_clear(&ev);
  }
  print_message("log: %u events, %u needs, %u keys, %u rekeys\n", w->log->len,
                kinds[KITH_EV_NEED], kinds[KITH_EV_KEYS], kinds[KITH_EV_REKEY]);
  assert_true(kinds[KITH_EV_NEED] >= 1 && kinds[KITH_EV_KEYS] >= 1);
  assert_true(kith_group_n_reports(w->g[A]) >= 1);
  static const int honest[] = {B, C, D};
  for (int i = 0; i < 3; i++)
    assert_same_state(w, A, honest[i]);
  for (int i = A; i <= D; i++) {
    assert_false(kith_group_is_member(w->g[i], w->id[F].pk));
    assert_false(kith_group_is_member(w->g[i], w->id[E].pk));
    assert_false(kith_group_is_member(w->g[i], w->id[Z].pk));
    assert_true(kith_group_is_member(w->g[i], w->id[C].pk));
    assert_string_equal(kith_group_topic(w->g[i]), "");
    assert_int_equal(member_of(w, i, D)->role, KITH_ROLE_MEMBER);
  }
  uint8_t *gone_f = descendants(w, r.removal);
  uint8_t *gone_e = descendants(w, r.leave);
  uint8_t ref[32], h[32];
  kith_group_state_hash(w->g[A], ref);
  GRand *rng = g_rand_new_with_seed(7);
  GPtrArray *order = g_ptr_array_new();
  for (int round = 0; round < 500; round++) {
    adv_order(&r, rng, order);
    kith_group *g = adv_replay(&r, honest[round % 3], order, NULL);
    assert_int_equal(kith_group_n_held(g), 0);
    assert_int_equal(kith_group_n_events(g), w->log->len);
    kith_group_state_hash(g, h);
    assert_memory_equal(h, ref, 32);
    kith_group_free(g);
    if (round % 25 == 0) {
      adv_check_exited(&r, F, gone_f, order);
      adv_check_exited(&r, E, gone_e, order);
    }
  }
  g_ptr_array_free(order, TRUE);
  g_rand_free(rng);
  g_free(gone_f);
  g_free(gone_e);
  for (int i = 0; i < 2; i++)
    kith_ident_clear(&r.x[i]);
  g_ptr_array_unref(r.forged);
  g_rand_free(r.rng);
  evil_clear(&r.e);
  world_free(w);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(stuffed_rekeys_keep_only_keys_of_existing_epochs),
      cmocka_unit_test(key_lists_open_without_new_allocations),
      cmocka_unit_test(key_table_has_room_for_every_epoch),
      cmocka_unit_test(adds_not_for_us_or_rejected_leave_no_keys),
      cmocka_unit_test(newcomer_keeps_only_keys_of_existing_epochs),
      cmocka_unit_test(failed_rekey_after_removal_is_reported_and_retried),
      cmocka_unit_test(rekey_to_an_existing_epoch_is_rejected),
      cmocka_unit_test(rekey_runs_are_bounded_and_the_group_goes_on),
      cmocka_unit_test(removed_member_cannot_rejoin_by_any_invite),
      cmocka_unit_test(unban_allows_readmission),
      cmocka_unit_test(invites_admins_only_and_revoked),
      cmocka_unit_test(backdated_removal_by_removed_admin_has_no_effect),
      cmocka_unit_test(backdated_removal_before_own_demotion_has_no_effect),
      cmocka_unit_test(backdated_epoch_left_out_is_given_to_the_member),
      cmocka_unit_test(concurrent_admission_is_given_the_missed_epoch),
      cmocka_unit_test(garbage_rekey_victims_recover_and_forger_is_reported),
      cmocka_unit_test(useless_answer_passes_the_turn),
      cmocka_unit_test(key_requests_survive_a_restart),
      cmocka_unit_test(garbage_rekey_costs_one_small_need_per_victim),
      cmocka_unit_test(garbage_rekey_variants_cannot_stop_honest_senders),
      cmocka_unit_test(invite_race_loser_reads_nothing_after),
      cmocka_unit_test(old_parents_cost_does_not_grow_with_history),
      cmocka_unit_test(orphan_flood_does_not_block_others),
      cmocka_unit_test(held_chain_of_4096_releases_on_a_small_stack),
      cmocka_unit_test(event_dated_before_parents_is_rejected),
      cmocka_unit_test(event_dated_far_ahead_is_held_until_its_time),
      cmocka_unit_test(honest_child_of_an_event_dated_ahead_goes_no_further),
      cmocka_unit_test(expired_invite_admits_nobody),
      cmocka_unit_test(names_are_not_identities),
      cmocka_unit_test(add_of_unusable_id_is_rejected),
      cmocka_unit_test(members_who_missed_epochs_do_not_grow_rekeys),
      cmocka_unit_test(group_at_the_member_limit_can_still_remove_and_rekey),
      cmocka_unit_test(adversary_schedules_converge),
  };
  int failed = cmocka_run_group_tests_name("adversary", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
