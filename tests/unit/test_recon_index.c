/* Unit tests for core/recon_index.c over a fake store (a sorted array in
 * memory): ranks, sums and items agree with the set itself; it is built
 * in slices, kept up to date by adds (an item added twice counts once,
 * buckets split as they grow, adds during the build are not lost); rows
 * stored without an add make one step fail, not a wrong answer; and
 * reconciliations against an in-memory replica find exactly the
 * difference, with a memory summary of a few bytes per item. The same
 * index over a real store reads the group's rows in the same order, and
 * only that group's. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>

#include "core/recon_index.h"
#include "core/store.h"

#define T0 1700000000000ull
#define SPAN_MS (30ull * 24 * 3600 * 1000)

typedef kith_recon_item item;

/* ---- the fake store: items sorted by (ts, id) ---- */

typedef struct fake {
  GArray *rows; /* of item, sorted */
  size_t scans;
} fake;

static int cmp(const void *a, const void *b) {
  const item *x = a, *y = b;
  if (x->ts != y->ts)
    return x->ts < y->ts ? -1 : 1;
  return memcmp(x->id, y->id, 32);
}

static size_t lower(const fake *f, const item *key) {
  size_t lo = 0, hi = f->rows->len;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cmp(&g_array_index(f->rows, item, mid), key) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Inserts it unless its id is there; returns whether it was new. */
static int fake_put(fake *f, const item *it) {
  for (guint i = 0; i < f->rows->len; i++)
    if (memcmp(g_array_index(f->rows, item, i).id, it->id, 32) == 0)
      return 0;
  g_array_insert_val(f->rows, lower(f, it), *it);
  return 1;
}

static kith_err f_scan(void *ctx, uint64_t ts, const uint8_t id[32], size_t max,
                       GArray *out) {
  fake *f = ctx;
  item key = {.ts = ts};
  memcpy(key.id, id, 32);
  f->scans++;
  for (size_t i = lower(f, &key); i < f->rows->len && max > 0; i++, max--)
    g_array_append_val(out, g_array_index(f->rows, item, i));
  return KITH_OK;
}

static kith_err f_by_word(void *ctx, uint64_t w, size_t max, GArray *out) {
  fake *f = ctx;
  for (guint i = 0; i < f->rows->len && out->len < max; i++)
    if ((uint32_t)kith_recon_word(g_array_index(f->rows, item, i).id) == w)
      g_array_append_val(out, g_array_index(f->rows, item, i));
  return KITH_OK;
}

static kith_err f_get(void *ctx, const uint8_t id[32], GArray *out) {
  fake *f = ctx;
  for (guint i = 0; i < f->rows->len; i++)
    if (memcmp(g_array_index(f->rows, item, i).id, id, 32) == 0)
      g_array_append_val(out, g_array_index(f->rows, item, i));
  return KITH_OK;
}

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static item rand_item(uint64_t *s, uint64_t span) {
  item it = {.ts = T0 + (span ? splitmix64(s) % span : 0)};
  for (int k = 0; k < 4; k++) {
    uint64_t v = splitmix64(s);
    memcpy(it.id + 8 * k, &v, 8);
  }
  return it;
}

/* n random rows, appended unsorted then sorted (fast for big sets). */
static fake *fake_new(uint64_t seed, size_t n, uint64_t span) {
  fake *f = g_new0(fake, 1);
  f->rows = g_array_sized_new(FALSE, FALSE, sizeof(item), (guint)n + 1);
  for (size_t i = 0; i < n; i++) {
    item it = rand_item(&seed, span);
    g_array_append_val(f->rows, it);
  }
  g_array_sort(f->rows, cmp);
  return f;
}

static void fake_free(fake *f) {
  g_array_unref(f->rows);
  g_free(f);
}

static kith_recon_index *index_on(fake *f) {
  kith_recon_reader rd = {f, f_scan, f_by_word, f_get};
  return kith_recon_index_new(&rd);
}

static void build_all(kith_recon_index *x) {
  int done = 0;
  for (int i = 0; !done; i++) {
    assert_true(i < 100000);
    assert_int_equal(kith_recon_index_build(x, 3, &done), KITH_OK);
  }
}

/* The index as a source says what the rows say, for every rank range. */
static void assert_matches(kith_recon_index *x, const fake *f, uint64_t seed) {
  kith_recon_source src = kith_recon_index_source(x);
  size_t n = f->rows->len, got;
  const item *rows = (const item *)f->rows->data;
  assert_int_equal(src.size(src.ctx, &got), KITH_OK);
  assert_int_equal(got, n);
  for (int t = 0; t < 300 && n > 0; t++) {
    size_t i0 = splitmix64(&seed) % n, i1 = i0 + splitmix64(&seed) % (n - i0);
    uint64_t want = 0, sum = 1;
    for (size_t i = i0; i < i1; i++)
      want += kith_recon_word(rows[i].id);
    if (i1 > i0) {
      assert_int_equal(src.sum(src.ctx, i0, i1, &sum), KITH_OK);
      assert_true(sum == want);
    }
    size_t r;
    assert_int_equal(src.rank(src.ctx, rows[i0].ts, rows[i0].id, &r), KITH_OK);
    assert_int_equal(r, i0);
    item out[3];
    size_t k = MIN((size_t)3, n - i0);
    assert_int_equal(src.items(src.ctx, i0, k, out), KITH_OK);
    assert_memory_equal(out, rows + i0, k * sizeof(item));
    int found = 0;
    assert_int_equal(src.find(src.ctx, i0, i0 + 1,
                              (uint32_t)kith_recon_word(rows[i0].id), &r,
                              &found),
                     KITH_OK);
    assert_true(found && r == i0);
    assert_int_equal(src.has(src.ctx, rows[i0].id, &found), KITH_OK);
    assert_true(found);
  }
  uint8_t absent[32] = {0xee};
  int found = 1;
  assert_int_equal(src.has(src.ctx, absent, &found), KITH_OK);
  assert_false(found);
}

static void a_built_index_reads_like_the_rows(void **state) {
  (void)state;
  size_t sizes[] = {0, 1, 5, KITH_RECON_BUCKET, KITH_RECON_BUCKET + 1, 50000};
  for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
    fake *f = fake_new(10 + i, sizes[i], SPAN_MS);
    kith_recon_index *x = index_on(f);
    assert_false(kith_recon_index_ready(x));
    build_all(x);
    assert_true(kith_recon_index_ready(x));
    assert_matches(x, f, 99 + i);
    assert_true(kith_recon_index_buckets(x) <=
                sizes[i] / KITH_RECON_BUCKET + 1);
    kith_recon_index_free(x);
    fake_free(f);
  }
}

/* Adds after the build, in one small region of the order (the newest
 * items, as a live group stores them), split the bucket that grows; an
 * item stored and added twice counts once; adds during the build, on
 * both sides of what was read so far, are not lost. */
static void adds_keep_it_exact(void **state) {
  (void)state;
  fake *f = fake_new(20, 20000, SPAN_MS);
  kith_recon_index *x = index_on(f);
  uint64_t s = 21;
  int done = 0;
  assert_int_equal(kith_recon_index_build(x, 2, &done), KITH_OK);
  assert_false(done);
  for (int i = 0; i < 200; i++) { /* spread over the whole order */
    item it = rand_item(&s, SPAN_MS);
    if (fake_put(f, &it))
      kith_recon_index_add(x, it.ts, it.id);
  }
  build_all(x);
  assert_matches(x, f, 22);
  size_t before = kith_recon_index_buckets(x);
  for (int i = 0; i < 5 * KITH_RECON_BUCKET; i++) {
    item it = rand_item(&s, 1000);
    it.ts += SPAN_MS;
    if (fake_put(f, &it)) {
      kith_recon_index_add(x, it.ts, it.id);
      kith_recon_index_add(x, it.ts, it.id);
    }
  }
  assert_matches(x, f, 23);
  assert_true(kith_recon_index_buckets(x) >= before + 4);
  kith_recon_index_free(x);
  fake_free(f);
}

/* A row stored without an add: the step that finds it fails; the next
 * one reads an index that counts it. */
static void rows_stored_behind_its_back_fail_one_step(void **state) {
  (void)state;
  fake *f = fake_new(30, 5000, SPAN_MS);
  kith_recon_index *x = index_on(f);
  kith_recon_source src = kith_recon_index_source(x);
  uint64_t s = 31;
  size_t n, r;
  build_all(x);
  item it = rand_item(&s, SPAN_MS);
  assert_true(fake_put(f, &it));
  assert_int_equal(src.size(src.ctx, &n), KITH_OK);
  assert_int_equal(n, 5000);
  assert_int_equal(src.rank(src.ctx, it.ts, it.id, &r), KITH_ERR_IO);
  assert_matches(x, f, 32);
  kith_recon_index_free(x);
  fake_free(f);
}

/* ---- reconciliation through the index ---- */

static int id_cmp(const void *p, const void *q) {
  return memcmp(p, q, 32);
}

static void assert_same_ids(GByteArray *got, GByteArray *want) {
  assert_int_equal(got->len, want->len);
  if (got->len == 0)
    return;
  qsort(got->data, got->len / 32, 32, id_cmp);
  qsort(want->data, want->len / 32, 32, id_cmp);
  assert_memory_equal(got->data, want->data, got->len);
}

/* A (rows in the fake store, through the index) and B (in memory) hold
 * n items but for d that only A holds and d that only B holds. */
static void reconcile_case(uint64_t seed, size_t n, size_t d) {
  fake *f = fake_new(seed, n, SPAN_MS);
  kith_recon *b = kith_recon_new();
  GByteArray *only_a = g_byte_array_new(), *only_b = g_byte_array_new();
  uint64_t s = seed * 7 + 1;
  for (guint i = 0; i < f->rows->len; i++) {
    const item *it = &g_array_index(f->rows, item, i);
    if (i % (n / (d + 1) + 1) == 1 && only_a->len / 32 < d)
      g_byte_array_append(only_a, it->id, 32);
    else
      assert_int_equal(kith_recon_add(b, it->ts, it->id), KITH_OK);
  }
  for (size_t i = 0; i < d; i++) {
    item it = rand_item(&s, SPAN_MS);
    assert_int_equal(kith_recon_add(b, it.ts, it.id), KITH_OK);
    g_byte_array_append(only_b, it.id, 32);
  }
  kith_recon_index *x = index_on(f);
  build_all(x);
  kith_recon_source src = kith_recon_index_source(x);
  kith_recon *a = kith_recon_new_on(&src);
  GByteArray *io[4]; /* have A, need A, have B, need B */
  for (int i = 0; i < 4; i++)
    io[i] = g_byte_array_new();
  kith_recon *side[2] = {a, b};
  uint8_t *msg = NULL;
  size_t len = 0, msgs = 0;
  assert_int_equal(kith_recon_initiate(a, &msg, &len), KITH_OK);
  for (int turn = 1; msg != NULL; turn ^= 1) {
    uint8_t *reply = NULL;
    size_t rlen = 0;
    assert_true(++msgs < 1000);
    assert_int_equal(kith_recon_step(side[turn], msg, len, &reply, &rlen,
                                     io[2 * turn], io[2 * turn + 1]),
                     KITH_OK);
    g_free(msg);
    msg = reply;
    len = rlen;
  }
  assert_same_ids(io[0], only_a);
  assert_same_ids(io[1], only_b);
  assert_same_ids(io[2], only_b);
  assert_same_ids(io[3], only_a);
  for (int i = 0; i < 4; i++)
    g_byte_array_unref(io[i]);
  g_byte_array_unref(only_a);
  g_byte_array_unref(only_b);
  kith_recon_free(a);
  kith_recon_free(b);
  kith_recon_index_free(x);
  fake_free(f);
}

static void reconciliation_through_the_index_is_exact(void **state) {
  (void)state;
  reconcile_case(40, 0, 0);
  reconcile_case(41, 10, 1);
  reconcile_case(42, 30000, 0);
  reconcile_case(43, 30000, 1);
  reconcile_case(44, 30000, 50);
  reconcile_case(45, 10000, 3000);
}

/* The summary in memory: a few bytes per item, not the items. */
static void the_summary_is_small(void **state) {
  (void)state;
  fake *f = fake_new(50, 200000, SPAN_MS);
  kith_recon_index *x = index_on(f);
  build_all(x);
  assert_matches(x, f, 51);
  size_t bytes = kith_recon_index_bytes(x);
  assert_true(bytes < 200000u * 40 / 8);
  kith_recon_index_free(x);
  fake_free(f);
}

/* ---- over the store ---- */

/* Writes it as an event of group gid (placeholder bytes: the store does
 * not check them). */
static void store_put(kith_store *st, const uint8_t gid[32], const item *it) {
  static uint8_t raw[40] = {1};
  kith_event ev = {.kind = KITH_EV_MESSAGE,
                   .ts_ms = it->ts,
                   .raw = raw,
                   .raw_len = sizeof raw};
  memcpy(ev.group_id, gid, 32);
  memcpy(ev.id, it->id, 32);
  kith_store_row row = {.ev = &ev, .cseq = UINT32_MAX};
  assert_int_equal(kith_store_put_event(st, &row), KITH_OK);
}

static void the_store_reads_like_the_rows(void **state) {
  (void)state;
  static const uint8_t key[32] = {3}, gid[32] = {4}, other[32] = {5};
  char *dir = g_dir_make_tmp("kith-recon-XXXXXX", NULL);
  char *db = g_build_filename(dir, "kith.db", NULL);
  kith_store *st;
  assert_non_null(dir);
  assert_int_equal(kith_store_open(db, key, &st), KITH_OK);
  /* times spread, times equal, and the top bit of the time set (the
   * store's encoding must keep the order) */
  fake *f = fake_new(60, 3000, SPAN_MS);
  uint64_t s = 61;
  for (int i = 0; i < 300; i++) {
    item it = rand_item(&s, 0);
    it.ts = i % 2 ? T0 : UINT64_C(1) << 63 | (uint64_t)i;
    assert_true(fake_put(f, &it));
  }
  assert_int_equal(kith_store_batch_begin(st), KITH_OK);
  for (guint i = 0; i < f->rows->len; i++)
    store_put(st, gid, &g_array_index(f->rows, item, i));
  for (int i = 0; i < 500; i++) { /* another group's: not in the set */
    item it = rand_item(&s, SPAN_MS);
    store_put(st, other, &it);
  }
  kith_recon_index *x = kith_recon_index_on_store(st, gid);
  build_all(x); /* the open batch's rows count */
  assert_matches(x, f, 62);
  assert_int_equal(kith_store_batch_commit(st), KITH_OK);
  for (int i = 0; i < 100; i++) { /* stored later, told to the index */
    item it = rand_item(&s, SPAN_MS);
    assert_true(fake_put(f, &it));
    store_put(st, gid, &it);
    kith_recon_index_add(x, it.ts, it.id);
  }
  assert_matches(x, f, 63);
  kith_recon_index_free(x);
  kith_store_close(st);
  const char *names[] = {"kith.db", "kith.db-wal", "kith.db-shm"};
  for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
    char *p = g_build_filename(dir, names[i], NULL);
    (void)g_remove(p);
    g_free(p);
  }
  assert_int_equal(g_rmdir(dir), 0);
  g_free(db);
  g_free(dir);
  fake_free(f);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_built_index_reads_like_the_rows),
      cmocka_unit_test(adds_keep_it_exact),
      cmocka_unit_test(rows_stored_behind_its_back_fail_one_step),
      cmocka_unit_test(reconciliation_through_the_index_is_exact),
      cmocka_unit_test(the_summary_is_small),
      cmocka_unit_test(the_store_reads_like_the_rows),
  };
  int failed = cmocka_run_group_tests_name("recon_index", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
