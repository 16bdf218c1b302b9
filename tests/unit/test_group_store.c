/* Unit tests for core/group_load.c: a replica kept in a store, opened
 * again from it (kith_group_open), and the events of a schema-2 store
 * converted when their group is opened (docs/protocol.md 13.5). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>

#include "core/store.h"
#include "test_group_world.h"

typedef struct fixture {
  world *w;
  char *dir, *db;
  uint8_t key[32];
  kith_store *s;
  uint8_t hash[32]; /* a's state hash when its store was written */
  uint64_t n_events;
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  return remove(path);
}

static void open_store(fixture *f) {
  assert_int_equal(kith_store_open(f->db, f->key, &f->s), KITH_OK);
}

/* What a's replica is now: the state the store must give back. */
static void remember(fixture *f) {
  assert_int_equal(kith_group_flush(f->w->g[A]), KITH_OK);
  kith_group_state_hash(f->w->g[A], f->hash);
  f->n_events = kith_group_n_events(f->w->g[A]);
}

/* a (with its store) and b: messages of both, a role, b removed (and the
 * rekey), a message in the new epoch. */
static int setup(void **state) {
  fixture *f = g_new0(fixture, 1);
  f->dir = g_dir_make_tmp("kith-group-store-XXXXXX", NULL);
  f->db = g_build_filename(f->dir, "kith.db", NULL);
  memset(f->key, 0x22, sizeof f->key);
  open_store(f);
  world *w = f->w = world_new(KITH_HISTORY_SHARED, 0, B);
  assert_int_equal(kith_store_put_group(f->s, w->gid), KITH_OK);
  assert_int_equal(kith_group_attach_store(w->g[A], f->s), KITH_OK);
  send_text(w, A, "one");
  w->now += 1000;
  sync_node(w, B);
  send_text(w, B, "two");
  sync_node(w, A);
  do_role(w, A, B, KITH_ROLE_ADMIN);
  do_remove(w, A, B);
  send_text(w, A, "three");
  remember(f);
  assert_int_equal(f->n_events, w->log->len);
  kith_group_free(w->g[A]);
  w->g[A] = NULL;
  kith_store_close(f->s);
  f->s = NULL;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  world_free(f->w);
  kith_store_close(f->s);
  int rc = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  g_free(f->db);
  g_free(f->dir);
  g_free(f);
  return rc;
}

/* Opens a's replica from the store: it has the state it had. */
static void reopen(fixture *f) {
  uint8_t hash[32];
  kith_group *g = NULL;
  GPtrArray *old =
      g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  kith_group_free(f->w->g[A]);
  f->w->g[A] = NULL;
  kith_store_close(f->s);
  open_store(f);
  assert_int_equal(kith_group_open(f->w->gid, &f->w->id[A], f->s, &g), KITH_OK);
  f->w->g[A] = g;
  assert_int_equal(kith_group_n_held(g), 0);
  assert_int_equal(kith_group_n_events(g), f->n_events);
  kith_group_state_hash(g, hash);
  assert_memory_equal(hash, f->hash, 32);
  assert_int_equal(kith_store_load_old(f->s, f->w->gid, old), KITH_OK);
  assert_int_equal(old->len, 0); /* every event is converted */
  g_ptr_array_unref(old);
}

static void reopened_replica_has_its_state(void **state) {
  fixture *f = *state;
  reopen(f);
  send_text(f->w, A, "four"); /* a new message number, in the new epoch */
  remember(f);
  reopen(f);
}

/* A schema-2 store, after its upgrade, holds events without derived
 * columns, heads or chains, and texts of messages only: opening the group
 * converts every event at once (not only when the clock first runs), and
 * the replica is the one that wrote them. */
static void schema2_events_convert_at_open(void **state) {
  fixture *f = *state;
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
  assert_int_equal(
      sqlite3_exec(db,
                   "UPDATE events SET cseq = NULL, cf = NULL, facts = NULL,"
                   " ref = NULL, flag = 0;"
                   "UPDATE events SET text = NULL WHERE kind <> 9;"
                   "DELETE FROM heads; DELETE FROM chains;"
                   "UPDATE groups SET n_events = 0;",
                   NULL, NULL, NULL),
      SQLITE_OK);
  assert_int_equal(sqlite3_close(db), SQLITE_OK);
  reopen(f);
  reopen(f); /* from the converted rows */
  send_text(f->w, A, "four");
  remember(f);
  reopen(f);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(reopened_replica_has_its_state, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(schema2_events_convert_at_open, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
