/* Unit tests for core/store.c. Events are built by hand (fields filled,
 * raw = marker bytes), so these tests do not depend on event.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <glib.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/store.h"

#define CANARY_TEXT "PLAINTEXT-CANARY-123"
#define CANARY_NAME "NAME-CANARY-456"
/* 32 bytes each, so they can stand for a seed and an epoch secret. */
#define CANARY_SEED "SEED-CANARY-0123456789abcdefghij"
#define CANARY_SECRET "SECRET-CANARY-0123456789abcdefgh"

typedef struct fixture {
  char *dir;
  char *db;
  uint8_t key[32];
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  return remove(path);
}

static int setup(void **state) {
  fixture *f = g_new0(fixture, 1);
  f->dir = g_dir_make_tmp("kith-store-XXXXXX", NULL);
  if (!f->dir)
    return -1;
  f->db = g_build_filename(f->dir, "kith.db", NULL);
  memset(f->key, 0x11, sizeof f->key);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  int rc = nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  g_free(f->db);
  g_free(f->dir);
  g_free(f);
  return rc;
}

static kith_store *open_store(fixture *f) {
  kith_store *s = NULL;
  assert_int_equal(kith_store_open(f->db, f->key, &s), KITH_OK);
  assert_non_null(s);
  return s;
}

static void fill32(uint8_t out[32], uint8_t v) {
  memset(out, v, 32);
}

/* A hand-made event: id and group bytes chosen by the test, raw = "raw:"
 * followed by the id byte. Free ev->raw with g_free. */
static void make_event(kith_event *ev, uint8_t id, uint8_t gid, uint64_t depth,
                       uint64_t ts) {
  memset(ev, 0, sizeof *ev);
  fill32(ev->id, id);
  fill32(ev->group_id, gid);
  fill32(ev->author, (uint8_t)(0xa0 + id % 16));
  ev->kind = KITH_EV_MESSAGE;
  ev->depth = depth;
  ev->ts_ms = ts;
  ev->raw_len = 5;
  ev->raw = g_malloc(ev->raw_len);
  memcpy(ev->raw, "raw:", 4);
  ev->raw[4] = id;
}

static kith_err put_row(kith_store *s, const kith_event *ev, const char *text) {
  kith_store_row r = {.ev = ev,
                      .cseq = UINT32_MAX,
                      .text = text,
                      .text_len = text ? strlen(text) : 0};
  return kith_store_put_event(s, &r);
}

static void put_event(kith_store *s, uint8_t id, uint8_t gid, uint64_t depth,
                      uint64_t ts, const char *text) {
  kith_event ev;
  make_event(&ev, id, gid, depth, ts);
  assert_int_equal(put_row(s, &ev, text), KITH_OK);
  g_free(ev.raw);
}

static void collect_id(void *ctx, uint64_t ts, const uint8_t id[32]) {
  g_byte_array_append(ctx, id, 32);
  (void)ts;
}

/* The first byte of each id of group g, in the order listed. */
static GByteArray *ids_of(kith_store *s, uint8_t g) {
  uint8_t gid[32];
  fill32(gid, g);
  GByteArray *ids = g_byte_array_new(), *firsts = g_byte_array_new();
  assert_int_equal(kith_store_each_id(s, gid, collect_id, ids), KITH_OK);
  for (guint i = 0; i < ids->len; i += 32)
    g_byte_array_append(firsts, ids->data + i, 1);
  g_byte_array_unref(ids);
  return firsts;
}

/* Runs SQL on the database through a separate raw handle. */
static void raw_exec(fixture *f, const char *sql) {
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
  char *msg = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK)
    fail_msg("sql failed: %s", msg ? msg : "?");
  sqlite3_free(msg);
  assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void identity_round_trip(void **state) {
  fixture *f = *state;
  uint8_t seed[32], got[32];
  char *name = NULL;
  fill32(seed, 0x42);
  kith_store *s = open_store(f);
  assert_int_equal(kith_store_get_identity(s, got, &name), KITH_ERR_NOT_FOUND);
  assert_int_equal(kith_store_put_identity(s, seed, "alice"), KITH_OK);
  kith_store_close(s);

  s = open_store(f);
  assert_int_equal(kith_store_get_identity(s, got, &name), KITH_OK);
  assert_memory_equal(seed, got, 32);
  assert_string_equal(name, "alice");
  g_free(name);
  /* Putting again replaces the name. */
  assert_int_equal(kith_store_put_identity(s, seed, "alice2"), KITH_OK);
  assert_int_equal(kith_store_get_identity(s, got, &name), KITH_OK);
  assert_string_equal(name, "alice2");
  g_free(name);
  kith_store_close(s);
}

static void wrong_key_is_crypto_error(void **state) {
  fixture *f = *state;
  uint8_t seed[32], got[32];
  char *name = NULL;
  fill32(seed, 0x42);
  kith_store *s = open_store(f);
  assert_int_equal(kith_store_put_identity(s, seed, "alice"), KITH_OK);
  kith_store_close(s);

  f->key[0] ^= 1;
  s = open_store(f);
  assert_int_equal(kith_store_get_identity(s, got, &name), KITH_ERR_CRYPTO);
  assert_null(name);
  kith_store_close(s);
}

static void groups_listed_once_in_order(void **state) {
  fixture *f = *state;
  uint8_t g1[32], g2[32];
  fill32(g1, 0x20);
  fill32(g2, 0x10);
  kith_store *s = open_store(f);
  assert_int_equal(kith_store_put_group(s, g1), KITH_OK);
  assert_int_equal(kith_store_put_group(s, g2), KITH_OK);
  assert_int_equal(kith_store_put_group(s, g1), KITH_OK);
  GByteArray *out = g_byte_array_new();
  assert_int_equal(kith_store_list_groups(s, out), KITH_OK);
  assert_int_equal(out->len, 64);
  assert_memory_equal(out->data, g2, 32);
  assert_memory_equal(out->data + 32, g1, 32);
  g_byte_array_unref(out);
  kith_store_close(s);
}

static void event_put_twice_stored_once(void **state) {
  fixture *f = *state;
  uint8_t gid[32], id[32];
  fill32(gid, 7);
  fill32(id, 1);
  kith_store *s = open_store(f);
  put_event(s, 1, 7, 0, 1000, NULL);
  kith_event ev;
  make_event(&ev, 1, 7, 0, 1000);
  assert_int_equal(put_row(s, &ev, "again"), KITH_ERR_DUPLICATE);
  g_free(ev.raw);
  GByteArray *ids = ids_of(s, 7);
  assert_int_equal(ids->len, 1);
  g_byte_array_unref(ids);
  GBytes *raw = NULL;
  assert_int_equal(kith_store_get_raw(s, gid, id, &raw), KITH_OK);
  assert_int_equal(g_bytes_get_size(raw), 5);
  assert_memory_equal(g_bytes_get_data(raw, NULL), "raw:\x01", 5);
  g_bytes_unref(raw);
  kith_store_sum sum;
  assert_int_equal(kith_store_get_summary(s, gid, id, &sum), KITH_OK);
  assert_int_equal(sum.ts, 1000);
  assert_int_equal(sum.kind, KITH_EV_MESSAGE);
  assert_int_equal(sum.cseq, UINT32_MAX);
  kith_store_sum_clear(&sum);
  fill32(id, 2);
  assert_int_equal(kith_store_get_raw(s, gid, id, &raw), KITH_ERR_NOT_FOUND);
  kith_store_close(s);
}

/* Listed in the order stored (parents are stored before their children);
 * the heads follow: a stored event's parents stop being heads. */
static void events_listed_in_order_heads_replaced(void **state) {
  fixture *f = *state;
  uint8_t gid[32];
  fill32(gid, 7);
  kith_store *s = open_store(f);
  put_event(s, 9, 7, UINT64_MAX, 1, NULL);
  put_event(s, 5, 7, 2, 1, NULL);
  put_event(s, 4, 7, 1, 1, NULL);
  put_event(s, 8, 8, 0, 1, NULL); /* another group */
  kith_event ev;
  make_event(&ev, 6, 7, 3, 1);
  ev.n_parents = 2;
  fill32(ev.parents[0], 4);
  fill32(ev.parents[1], 5);
  assert_int_equal(put_row(s, &ev, NULL), KITH_OK);
  g_free(ev.raw);
  GByteArray *ids = ids_of(s, 7);
  const uint8_t want[] = {9, 5, 4, 6};
  assert_int_equal(ids->len, sizeof want);
  assert_memory_equal(ids->data, want, sizeof want);
  g_byte_array_unref(ids);
  GByteArray *heads = g_byte_array_new();
  assert_int_equal(kith_store_load_heads(s, gid, heads), KITH_OK);
  assert_int_equal(heads->len, 0); /* the engine writes heads at flush */
  uint8_t two[64];
  fill32(two, 9);
  fill32(two + 32, 6);
  assert_int_equal(kith_store_set_heads(s, gid, two, 2), KITH_OK);
  assert_int_equal(kith_store_set_heads(s, gid, two + 32, 1), KITH_OK);
  assert_int_equal(kith_store_load_heads(s, gid, heads), KITH_OK);
  assert_int_equal(heads->len, 32); /* replaced, not added to */
  assert_memory_equal(heads->data, two + 32, 32);
  g_byte_array_unref(heads);
  kith_store_close(s);
}

static GPtrArray *items_new(void) {
  return g_ptr_array_new_with_free_func((GDestroyNotify)kith_store_item_free);
}

static GPtrArray *list_msgs(kith_store *s, const uint8_t gid[32], size_t n) {
  GPtrArray *out = items_new();
  assert_int_equal(kith_store_list_items(s, gid, n, NULL, 0, NULL, out),
                   KITH_OK);
  return out;
}

static const char *text_at(GPtrArray *a, guint i) {
  return (const char *)((kith_store_item *)a->pdata[i])->text;
}

static void messages_last_n_in_order(void **state) {
  fixture *f = *state;
  uint8_t gid[32];
  fill32(gid, 7);
  kith_store *s = open_store(f);
  put_event(s, 0x15, 7, 5, 500, "five");
  put_event(s, 0x12, 7, 2, 200, "two-b");
  put_event(s, 0x11, 7, 1, 100, "one");
  put_event(s, 0x13, 7, 3, 300, "three");
  put_event(s, 0x10, 7, 2, 200, "two-a"); /* same ts: id breaks the tie */
  put_event(s, 0x16, 7, 6, 600, NULL);    /* no text: not a message */
  put_event(s, 0x17, 8, 1, 700, "other group");

  GPtrArray *all = list_msgs(s, gid, 0);
  const char *want_all[] = {"one", "two-a", "two-b", "three", "five"};
  assert_int_equal(all->len, 5);
  for (guint i = 0; i < all->len; i++)
    assert_string_equal(text_at(all, i), want_all[i]);
  g_ptr_array_unref(all);

  GPtrArray *last = list_msgs(s, gid, 3);
  assert_int_equal(last->len, 3);
  kith_store_item *m = last->pdata[0];
  assert_string_equal((const char *)m->text, "two-b");
  uint8_t want[32];
  fill32(want, 0x12);
  assert_memory_equal(m->id, want, 32);
  fill32(want, 0xa0 + 0x12 % 16);
  assert_memory_equal(m->author, want, 32);
  assert_int_equal(m->ts, 200);
  assert_string_equal(text_at(last, 1), "three");
  assert_string_equal(text_at(last, 2), "five");
  g_ptr_array_unref(last);
  kith_store_close(s);
}

/* A long log is read page by page: the messages before a given one. */
static void messages_before_an_event_page_backwards(void **state) {
  fixture *f = *state;
  uint8_t gid[32], before[32];
  fill32(gid, 7);
  kith_store *s = open_store(f);
  put_event(s, 0x11, 7, 1, 100, "one");
  put_event(s, 0x12, 7, 2, 200, "two-b");
  put_event(s, 0x10, 7, 2, 200, "two-a");
  put_event(s, 0x13, 7, 3, 300, "three");
  GPtrArray *out = items_new();
  fill32(before, 0x12); /* "two-b": before it come "one", "two-a" */
  assert_int_equal(kith_store_list_items(s, gid, 0, before, 0, NULL, out),
                   KITH_OK);
  assert_int_equal(out->len, 2);
  assert_string_equal(text_at(out, 0), "one");
  assert_string_equal(text_at(out, 1), "two-a");
  g_ptr_array_set_size(out, 0);
  fill32(before, 0x13);
  assert_int_equal(kith_store_list_items(s, gid, 1, before, 0, NULL, out),
                   KITH_OK);
  assert_int_equal(out->len, 1);
  assert_string_equal(text_at(out, 0), "two-b");
  g_ptr_array_set_size(out, 0);
  /* only those after a read marker: "three" */
  fill32(before, 0x12);
  assert_int_equal(kith_store_list_items(s, gid, 0, NULL, 200, before, out),
                   KITH_OK);
  assert_int_equal(out->len, 1);
  assert_string_equal(text_at(out, 0), "three");
  uint64_t unread = 0, me_pk[4];
  memset(me_pk, 0x55, sizeof me_pk); /* an author of none of them */
  assert_int_equal(kith_store_count_after(s, gid, 200, before,
                                          (const uint8_t *)me_pk, &unread),
                   KITH_OK);
  assert_int_equal(unread, 1);
  g_ptr_array_set_size(out, 0);
  fill32(before, 0x11); /* nothing before the first */
  assert_int_equal(kith_store_list_items(s, gid, 0, before, 0, NULL, out),
                   KITH_OK);
  assert_int_equal(out->len, 0);
  g_ptr_array_unref(out);
  kith_store_close(s);
}

/* The unread count leaves out this node's own messages and stops after
 * KITH_STORE_UNREAD_SCAN events after the marker, however long the log. */
static void unread_counts_others_messages_within_a_bound(void **state) {
  fixture *f = *state;
  uint8_t gid[32], me[32], zero[32] = {0};
  fill32(gid, 7);
  fill32(me, 0xa1); /* make_event: the author of ids 0x?1 */
  kith_store *s = open_store(f);
  uint64_t unread = 99;
  assert_int_equal(kith_store_count_after(s, gid, 0, zero, me, &unread),
                   KITH_OK);
  assert_int_equal(unread, 0);
  put_event(s, 0x11, 7, 1, 100, "mine");
  put_event(s, 0x21, 7, 2, 200, "mine too");
  put_event(s, 0x12, 7, 3, 300, "theirs");
  assert_int_equal(kith_store_count_after(s, gid, 0, zero, me, &unread),
                   KITH_OK);
  assert_int_equal(unread, 1);
  /* after 2 * SCAN more of theirs, the count stops at the bound */
  assert_int_equal(kith_store_batch_begin(s), KITH_OK);
  for (int i = 0; i < 2 * KITH_STORE_UNREAD_SCAN; i++) {
    kith_event ev;
    make_event(&ev, 0x12, 7, 4 + (uint64_t)i, 400 + (uint64_t)i);
    ev.id[0] = (uint8_t)i, ev.id[1] = (uint8_t)(i >> 8), ev.id[2] = 0xee;
    assert_int_equal(put_row(s, &ev, "theirs"), KITH_OK);
    g_free(ev.raw);
  }
  assert_int_equal(kith_store_batch_commit(s), KITH_OK);
  assert_int_equal(kith_store_count_after(s, gid, 0, zero, me, &unread),
                   KITH_OK);
  assert_int_equal(unread, KITH_STORE_UNREAD_SCAN - 2);
  kith_store_close(s);
}

/* A row an older kith stored (no derived columns) gets them, and its
 * missing text, by a converting write; a converted row is left alone. */
static void text_added_by_conversion(void **state) {
  fixture *f = *state;
  uint8_t gid[32];
  fill32(gid, 7);
  kith_store *s = open_store(f);
  put_event(s, 1, 7, 1, 100, NULL);
  kith_store_close(s);
  raw_exec(f, "UPDATE events SET cseq = NULL, cf = NULL");
  s = open_store(f);
  kith_event ev;
  make_event(&ev, 1, 7, 1, 100);
  kith_store_row r = {.ev = &ev,
                      .cseq = UINT32_MAX,
                      .text = "late",
                      .text_len = 4,
                      .convert = 1};
  assert_int_equal(kith_store_put_event(s, &r), KITH_OK);
  r.text = "ignored";
  r.text_len = 7;
  assert_int_equal(kith_store_put_event(s, &r), KITH_ERR_NOT_FOUND);
  g_free(ev.raw);
  GPtrArray *out = list_msgs(s, gid, 0);
  assert_int_equal(out->len, 1);
  assert_string_equal(text_at(out, 0), "late");
  g_ptr_array_unref(out);
  kith_store_close(s);
}

static void secrets_round_trip(void **state) {
  fixture *f = *state;
  uint8_t gid[32], other[32], sec[3][32];
  fill32(gid, 7);
  fill32(other, 8);
  for (int i = 0; i < 3; i++)
    fill32(sec[i], (uint8_t)(0x30 + i));
  kith_store *s = open_store(f);
  assert_int_equal(kith_store_put_secret(s, gid, 2, sec[2]), KITH_OK);
  assert_int_equal(kith_store_put_secret(s, gid, 0, sec[0]), KITH_OK);
  assert_int_equal(kith_store_put_secret(s, gid, 1, sec[1]), KITH_OK);
  kith_store_close(s);

  s = open_store(f);
  GByteArray *out = g_byte_array_new();
  assert_int_equal(kith_store_load_secrets(s, gid, out), KITH_OK);
  assert_int_equal(out->len, 3 * 40);
  for (uint64_t e = 0; e < 3; e++) {
    uint8_t le[8] = {(uint8_t)e};
    assert_memory_equal(out->data + e * 40, le, 8);
    assert_memory_equal(out->data + e * 40 + 8, sec[e], 32);
  }
  g_byte_array_set_size(out, 0);
  assert_int_equal(kith_store_load_secrets(s, other, out), KITH_OK);
  assert_int_equal(out->len, 0);
  g_byte_array_unref(out);
  kith_store_close(s);
}

static void peers_upsert(void **state) {
  fixture *f = *state;
  uint8_t a[32], b[32];
  fill32(a, 0x0a);
  fill32(b, 0x0b);
  kith_store *s = open_store(f);
  assert_int_equal(kith_store_put_peer(s, a, "10.0.0.1", 4000, 1), KITH_OK);
  assert_int_equal(kith_store_put_peer(s, b, "::1", 65535, UINT64_MAX),
                   KITH_OK);
  assert_int_equal(kith_store_put_peer(s, a, "192.168.1.2", 5000, 2), KITH_OK);
  char too_long[65];
  memset(too_long, 'h', 64);
  too_long[64] = '\0';
  assert_int_equal(kith_store_put_peer(s, a, too_long, 1, 3), KITH_ERR_LIMIT);

  GArray *out = g_array_new(FALSE, TRUE, sizeof(kith_stored_peer));
  assert_int_equal(kith_store_list_peers(s, out), KITH_OK);
  assert_int_equal(out->len, 2);
  kith_stored_peer *p = &g_array_index(out, kith_stored_peer, 0);
  assert_memory_equal(p->node, a, 32);
  assert_string_equal(p->host, "192.168.1.2");
  assert_int_equal(p->port, 5000);
  assert_int_equal(p->seen_ms, 2);
  p = &g_array_index(out, kith_stored_peer, 1);
  assert_memory_equal(p->node, b, 32);
  assert_string_equal(p->host, "::1");
  assert_int_equal(p->port, 65535);
  assert_true(p->seen_ms == UINT64_MAX);
  g_array_unref(out);
  kith_store_close(s);
}

/* Fails if needle occurs in the file (a missing file has nothing). */
static void assert_file_lacks(const char *path, const char *needle) {
  gchar *data = NULL;
  gsize len = 0;
  if (!g_file_get_contents(path, &data, &len, NULL))
    return;
  if (memmem(data, len, needle, strlen(needle)))
    fail_msg("%s found in %s", needle, path);
  g_free(data);
}

static void assert_db_lacks_canaries(fixture *f) {
  const char *canaries[] = {CANARY_TEXT, CANARY_NAME, CANARY_SEED,
                            CANARY_SECRET};
  const char *suffixes[] = {"", "-wal", "-shm"};
  for (size_t i = 0; i < G_N_ELEMENTS(suffixes); i++) {
    char *path = g_strconcat(f->db, suffixes[i], NULL);
    for (size_t j = 0; j < G_N_ELEMENTS(canaries); j++)
      assert_file_lacks(path, canaries[j]);
    g_free(path);
  }
}

static void no_plaintext_on_disk(void **state) {
  fixture *f = *state;
  uint8_t gid[32];
  fill32(gid, 7);
  kith_store *s = open_store(f);
  assert_int_equal(
      kith_store_put_identity(s, (const uint8_t *)CANARY_SEED, CANARY_NAME),
      KITH_OK);
  assert_int_equal(
      kith_store_put_secret(s, gid, 1, (const uint8_t *)CANARY_SECRET),
      KITH_OK);
  put_event(s, 1, 7, 1, 100, CANARY_TEXT);
  /* While open the data sits in the WAL; after close, in the db. */
  char *wal = g_strconcat(f->db, "-wal", NULL);
  assert_true(g_file_test(wal, G_FILE_TEST_EXISTS));
  g_free(wal);
  assert_db_lacks_canaries(f);
  kith_store_close(s);
  assert_db_lacks_canaries(f);

  /* And it all reads back. */
  s = open_store(f);
  GPtrArray *out = list_msgs(s, gid, 0);
  assert_int_equal(out->len, 1);
  assert_string_equal(text_at(out, 0), CANARY_TEXT);
  g_ptr_array_unref(out);
  kith_store_close(s);
}

static void db_file_mode_0600(void **state) {
  fixture *f = *state;
  struct stat st;
  mode_t old = umask(0);
  kith_store *s = open_store(f);
  umask(old);
  put_event(s, 1, 7, 1, 100, "x");
  assert_int_equal(stat(f->db, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  char *wal = g_strconcat(f->db, "-wal", NULL);
  assert_int_equal(stat(wal, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  g_free(wal);
  kith_store_close(s);

  /* A database left readable by others is tightened on open. */
  assert_int_equal(chmod(f->db, 0644), 0);
  s = open_store(f);
  assert_int_equal(stat(f->db, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  kith_store_close(s);
}

static void tampered_identity_is_crypto_error(void **state) {
  fixture *f = *state;
  uint8_t seed[32], got[32];
  char *name = NULL;
  fill32(seed, 0x42);
  kith_store *s = open_store(f);
  assert_int_equal(kith_store_put_identity(s, seed, "alice"), KITH_OK);
  kith_store_close(s);

  /* Flip one ciphertext byte (past the 24-byte nonce). */
  raw_exec(f, "UPDATE identity SET seed = substr(seed, 1, 30) ||"
              " (CASE WHEN substr(seed, 31, 1) = x'00' THEN x'01' ELSE x'00'"
              " END) || substr(seed, 32)");
  s = open_store(f);
  assert_int_equal(kith_store_get_identity(s, got, &name), KITH_ERR_CRYPTO);
  assert_null(name);
  kith_store_close(s);

  /* Too short to hold a nonce and a tag, or not a blob at all. */
  raw_exec(f, "UPDATE identity SET seed = x'00'");
  s = open_store(f);
  assert_int_equal(kith_store_get_identity(s, got, &name), KITH_ERR_CRYPTO);
  kith_store_close(s);
  raw_exec(f, "UPDATE identity SET seed = x''");
  s = open_store(f);
  assert_int_equal(kith_store_get_identity(s, got, &name), KITH_ERR_CRYPTO);
  kith_store_close(s);
}

static void moved_or_relabelled_text_is_crypto_error(void **state) {
  fixture *f = *state;
  uint8_t gid[32];
  fill32(gid, 7);
  kith_store *s = open_store(f);
  /* Same group, sender and ts: only the event id tells the rows apart. */
  put_event(s, 0x01, 7, 1, 100, "first");
  put_event(s, 0x11, 7, 2, 100, "second");
  kith_store_close(s);

  /* A valid sealed text copied to another row does not open there. */
  raw_exec(f, "UPDATE events SET text = (SELECT text FROM events WHERE"
              " id = (SELECT min(id) FROM events))"
              " WHERE id = (SELECT max(id) FROM events)");
  s = open_store(f);
  GPtrArray *out = items_new();
  assert_int_equal(kith_store_list_items(s, gid, 0, NULL, 0, NULL, out),
                   KITH_ERR_CRYPTO);
  assert_int_equal(out->len, 0);
  kith_store_close(s);

  /* Neither does one whose sender was edited. */
  raw_exec(f, "DELETE FROM events WHERE id = (SELECT max(id) FROM events);"
              "UPDATE events SET author = zeroblob(32)");
  s = open_store(f);
  assert_int_equal(kith_store_list_items(s, gid, 0, NULL, 0, NULL, out),
                   KITH_ERR_CRYPTO);
  assert_int_equal(out->len, 0);
  g_ptr_array_unref(out);
  kith_store_close(s);
}

static void tampered_secret_is_crypto_error(void **state) {
  fixture *f = *state;
  uint8_t gid[32], sec[32];
  fill32(gid, 7);
  fill32(sec, 0x33);
  kith_store *s = open_store(f);
  assert_int_equal(kith_store_put_secret(s, gid, 0, sec), KITH_OK);
  assert_int_equal(kith_store_put_secret(s, gid, 1, sec), KITH_OK);
  kith_store_close(s);

  /* Copy epoch 1's sealed secret over epoch 0's: each sealed secret is
   * bound to its own epoch. */
  raw_exec(f, "UPDATE secrets SET secret = (SELECT secret FROM secrets"
              " WHERE epoch = (SELECT max(epoch) FROM secrets))"
              " WHERE epoch = (SELECT min(epoch) FROM secrets)");
  s = open_store(f);
  GByteArray *out = g_byte_array_new();
  g_byte_array_append(out, (const uint8_t *)"keep", 4);
  assert_int_equal(kith_store_load_secrets(s, gid, out), KITH_ERR_CRYPTO);
  assert_int_equal(out->len, 4);
  assert_memory_equal(out->data, "keep", 4);
  g_byte_array_unref(out);
  kith_store_close(s);
}

/* A write that fails leaves nothing of itself, and the store stays
 * usable. */
static void failed_write_leaves_nothing(void **state) {
  fixture *f = *state;
  kith_store *s = open_store(f);
  kith_store_close(s);
  raw_exec(f, "CREATE TRIGGER no_events BEFORE INSERT ON events"
              " BEGIN SELECT RAISE(ABORT, 'refused'); END");
  s = open_store(f);
  kith_event ev;
  make_event(&ev, 1, 7, 0, 100);
  assert_int_equal(put_row(s, &ev, "hello"), KITH_ERR_IO);
  GByteArray *ids = ids_of(s, 7);
  assert_int_equal(ids->len, 0);
  g_byte_array_unref(ids);
  kith_store_close(s);
  raw_exec(f, "DROP TRIGGER no_events");
  s = open_store(f); /* the store is still usable afterwards */
  assert_int_equal(put_row(s, &ev, NULL), KITH_OK);
  ids = ids_of(s, 7);
  assert_int_equal(ids->len, 1);
  g_byte_array_unref(ids);
  g_free(ev.raw);
  kith_store_close(s);
}

static size_t count_events(kith_store *s, uint8_t g) {
  GByteArray *ids = ids_of(s, g);
  size_t n = ids->len;
  g_byte_array_unref(ids);
  return n;
}

static void batch_commits_together_or_not_at_all(void **state) {
  fixture *f = *state;
  kith_store *s = open_store(f);
  assert_int_equal(kith_store_batch_commit(s), KITH_ERR_STATE);
  assert_int_equal(kith_store_batch_begin(s), KITH_OK);
  assert_true(kith_store_in_batch(s));
  put_event(s, 1, 7, 0, 100, "one");
  put_event(s, 2, 7, 1, 101, "two");
  assert_int_equal(count_events(s, 7), 2); /* visible inside the batch */
  assert_int_equal(kith_store_batch_commit(s), KITH_OK);
  assert_false(kith_store_in_batch(s));
  kith_store_close(s);
  raw_exec(f, "CREATE TRIGGER no_three BEFORE INSERT ON events"
              " WHEN new.id = x'"
              "0303030303030303030303030303030303030303030303"
              "030303030303030303"
              "' BEGIN SELECT RAISE(ABORT, 'refused'); END");
  s = open_store(f);
  assert_int_equal(kith_store_batch_begin(s), KITH_OK);
  put_event(s, 4, 7, 2, 103, NULL);
  kith_event ev;
  make_event(&ev, 3, 7, 2, 102);
  /* A failed write inside a batch loses the whole batch: the writes
   * before it, and every later one ... */
  assert_false(kith_store_batch_failed(s));
  assert_int_equal(put_row(s, &ev, "three"), KITH_ERR_IO);
  assert_true(kith_store_batch_failed(s));
  g_free(ev.raw);
  make_event(&ev, 6, 7, 2, 102);
  assert_int_equal(put_row(s, &ev, NULL), KITH_ERR_IO);
  assert_int_equal(kith_store_batch_commit(s), KITH_ERR_IO);
  assert_false(kith_store_in_batch(s));
  assert_false(kith_store_batch_failed(s));
  assert_int_equal(count_events(s, 7), 2);
  /* ... and the next batch starts afresh. */
  assert_int_equal(kith_store_batch_begin(s), KITH_OK);
  put_event(s, 4, 7, 2, 103, NULL);
  assert_int_equal(kith_store_batch_commit_durable(s), KITH_OK);
  assert_int_equal(count_events(s, 7), 3);
  g_free(ev.raw);
  /* Closing commits an open batch. */
  assert_int_equal(kith_store_batch_begin(s), KITH_OK);
  put_event(s, 5, 7, 3, 104, NULL);
  kith_store_close(s);
  s = open_store(f);
  assert_int_equal(count_events(s, 7), 4);
  kith_store_close(s);
}

static void friends_round_trip(void **state) {
  fixture *f = *state;
  uint8_t a[32], b[32];
  fill32(a, 0x31);
  fill32(b, 0x32);
  kith_store *s = open_store(f);
  assert_int_equal(kith_store_put_friend(s, b, "relay-bob", "", 0), KITH_OK);
  assert_int_equal(kith_store_put_friend(s, a, "alice", "10.0.0.1", 7733),
                   KITH_OK);
  assert_int_equal(kith_store_put_friend(s, a, "alice", "10.0.0.2", 7733),
                   KITH_OK); /* an update */
  GPtrArray *out =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_friend_free);
  assert_int_equal(kith_store_list_friends(s, out), KITH_OK);
  assert_int_equal(out->len, 2);
  kith_friend *fa = out->pdata[0];
  assert_memory_equal(fa->node, a, 32);
  assert_string_equal(fa->name, "alice");
  assert_string_equal(fa->host, "10.0.0.2");
  assert_int_equal(fa->port, 7733);
  g_ptr_array_set_size(out, 0);
  assert_int_equal(kith_store_remove_friend(s, b), KITH_OK);
  assert_int_equal(kith_store_remove_friend(s, b), KITH_ERR_NOT_FOUND);
  assert_int_equal(kith_store_list_friends(s, out), KITH_OK);
  assert_int_equal(out->len, 1);
  g_ptr_array_unref(out);
  kith_store_close(s);
}

/* The schema kith wrote before version 3 (commit 12e2c4d), without the
 * friends table of version 2 for a version 1 home. */
#define V1_SQL                                                                 \
  "CREATE TABLE identity(k INTEGER PRIMARY KEY CHECK(k = 1),"                  \
  " seed BLOB NOT NULL, name BLOB NOT NULL);"                                  \
  "CREATE TABLE groups(id BLOB PRIMARY KEY CHECK(length(id) = 32))"            \
  " WITHOUT ROWID;"                                                            \
  "CREATE TABLE events(id BLOB PRIMARY KEY NOT NULL CHECK(length(id) = 32),"   \
  " group_id BLOB NOT NULL, depth INTEGER NOT NULL, kind INTEGER NOT NULL,"    \
  " author BLOB NOT NULL, ts INTEGER NOT NULL, raw BLOB NOT NULL);"            \
  "CREATE INDEX events_by_group ON events(group_id, depth, id);"               \
  "CREATE TABLE texts(event_id BLOB PRIMARY KEY NOT NULL"                      \
  " REFERENCES events(id), group_id BLOB NOT NULL, ts INTEGER NOT NULL,"       \
  " sender BLOB NOT NULL, text BLOB NOT NULL);"                                \
  "CREATE INDEX texts_by_group ON texts(group_id, ts, event_id);"              \
  "CREATE TABLE secrets(group_id BLOB NOT NULL, epoch INTEGER NOT NULL,"       \
  " secret BLOB NOT NULL, PRIMARY KEY(group_id, epoch)) WITHOUT ROWID;"        \
  "CREATE TABLE peers(node BLOB PRIMARY KEY, host TEXT NOT NULL,"              \
  " port INTEGER NOT NULL, seen INTEGER NOT NULL) WITHOUT ROWID;"

/* Homes from before relay friends (schema 1) and before the engine that
 * keeps messages out of memory (schema 2) open: the schema is upgraded in
 * place, events wait for the engine to convert them (kith_group_open;
 * test_group_store.c), and their texts move along. */
static void old_homes_upgrade(void **state) {
  fixture *f = *state;
  uint8_t gid[32];
  fill32(gid, 7);
  raw_exec(f, V1_SQL "PRAGMA user_version = 1;");
  kith_store *s = open_store(f);
  GPtrArray *out =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_friend_free);
  assert_int_equal(kith_store_list_friends(s, out), KITH_OK);
  assert_int_equal(out->len, 0);
  g_ptr_array_unref(out);
  kith_store_close(s);
  unlink(f->db);
  raw_exec(f, V1_SQL "CREATE TABLE friends(node BLOB PRIMARY KEY NOT NULL,"
                     " name BLOB NOT NULL, host TEXT NOT NULL, port INTEGER"
                     " NOT NULL) WITHOUT ROWID; PRAGMA user_version = 2;"
                     "INSERT INTO events VALUES(x'"
                     "01010101010101010101010101010101"
                     "01010101010101010101010101010101', x'"
                     "07070707070707070707070707070707"
                     "07070707070707070707070707070707', 1, 9, zeroblob(32),"
                     " 5, x'00');");
  s = open_store(f);
  GPtrArray *raws =
      g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  assert_int_equal(kith_store_load_old(s, gid, raws), KITH_OK);
  assert_int_equal(raws->len, 1);
  g_ptr_array_unref(raws);
  kith_store_close(s);
}

static void bad_files_refused(void **state) {
  fixture *f = *state;
  kith_store *s = NULL;
  /* A newer schema than this code knows. */
  s = open_store(f);
  kith_store_close(s);
  raw_exec(f, "PRAGMA user_version = 4");
  s = NULL;
  assert_int_equal(kith_store_open(f->db, f->key, &s), KITH_ERR_STATE);
  assert_null(s);
  /* Not a database at all. */
  char *junk = g_build_filename(f->dir, "junk.db", NULL);
  char bytes[4096];
  memset(bytes, 'j', sizeof bytes);
  assert_true(g_file_set_contents(junk, bytes, sizeof bytes, NULL));
  assert_int_equal(kith_store_open(junk, f->key, &s), KITH_ERR_IO);
  assert_null(s);
  g_free(junk);
}

static void opens_through_symlinked_dir(void **state) {
  fixture *f = *state;
  char *real = g_build_filename(f->dir, "real", NULL);
  char *link = g_build_filename(f->dir, "link", NULL);
  char *db = g_build_filename(link, "kith.db", NULL);
  assert_int_equal(mkdir(real, 0700), 0);
  assert_int_equal(symlink(real, link), 0);
  kith_store *s = NULL;
  assert_int_equal(kith_store_open(db, f->key, &s), KITH_OK);
  kith_store_close(s);
  /* The database file itself must not be a symlink. */
  char *target = g_build_filename(real, "kith.db", NULL);
  char *alias = g_build_filename(f->dir, "alias.db", NULL);
  assert_int_equal(symlink(target, alias), 0);
  s = NULL;
  assert_int_equal(kith_store_open(alias, f->key, &s), KITH_ERR_IO);
  assert_null(s);
  g_free(alias);
  g_free(target);
  g_free(db);
  g_free(link);
  g_free(real);
}

static void bad_arguments_refused(void **state) {
  fixture *f = *state;
  kith_store *s = open_store(f);
  kith_event ev;
  make_event(&ev, 1, 7, 0, 100);
  kith_store_row r = {.ev = &ev,
                      .cseq = UINT32_MAX,
                      .text = "x",
                      .text_len = KITH_EVENT_MAX_BODY + 1};
  assert_int_equal(kith_store_put_event(s, &r), KITH_ERR_LIMIT);
  ev.raw_len = KITH_EVENT_MAX + 1;
  assert_int_equal(put_row(s, &ev, NULL), KITH_ERR_LIMIT);
  g_free(ev.raw);
  ev.raw = NULL;
  assert_int_equal(put_row(s, &ev, NULL), KITH_ERR_ARG);
  assert_int_equal(kith_store_put_event(s, NULL), KITH_ERR_ARG);
  GArray *wrong = g_array_new(FALSE, TRUE, 1);
  assert_int_equal(kith_store_list_peers(s, wrong), KITH_ERR_ARG);
  g_array_unref(wrong);
  kith_store_close(s);
  kith_store_item_free(NULL);
  kith_store_close(NULL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      T(identity_round_trip),
      T(wrong_key_is_crypto_error),
      T(groups_listed_once_in_order),
      T(event_put_twice_stored_once),
      T(events_listed_in_order_heads_replaced),
      T(messages_last_n_in_order),
      T(messages_before_an_event_page_backwards),
      T(unread_counts_others_messages_within_a_bound),
      T(text_added_by_conversion),
      T(secrets_round_trip),
      T(peers_upsert),
      T(no_plaintext_on_disk),
      T(db_file_mode_0600),
      T(tampered_identity_is_crypto_error),
      T(moved_or_relabelled_text_is_crypto_error),
      T(tampered_secret_is_crypto_error),
      T(failed_write_leaves_nothing),
      T(batch_commits_together_or_not_at_all),
      T(friends_round_trip),
      T(old_homes_upgrade),
      T(bad_files_refused),
      T(opens_through_symlinked_dir),
      T(bad_arguments_refused),
  };
  int failed = cmocka_run_group_tests_name("store", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
