/* kith-bench reconcile: range-based set reconciliation of two replicas of N
 * items that differ by D, run in memory through the real core engine.
 *
 * The items (timestamps spread over 30 days, random ids) come from a seeded
 * splitmix64 generator, not libsodium, so a seed always gives the same
 * sets. D/2 items are removed from one replica and D - D/2 others from the
 * other. Counted: messages and round trips (one message each way), bytes in
 * both directions; checked: each side reports exactly what it holds that
 * the other lacks (have) and the reverse (need). Exit 1 if not.
 *
 * --store: replica A is a real store (core/store.h, SQLite in a temporary
 * directory, rows written through kith_store_put_event with placeholder
 * event bytes) read through the bucket index a node uses
 * (core/recon_index.h); B stays in memory. Also measured: the time to
 * build A's index (what a node does after start-up, from its main loop),
 * the memory it holds (its summary and cached buckets, and the process
 * RSS growth while it is built), and A's CPU time per reconciliation, in
 * sync and differing. */
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "core/recon_index.h"
#include "core/reconcile.h"
#include "core/store.h"

#define ITEMS_DEFAULT 100000
#define DIFF_DEFAULT 100
#define ITEMS_MAX 10000000
#define T0 1700000000000ull
#define SPAN_MS (30ull * 24 * 3600 * 1000)
#define MSGS_MAX 100000 /* give up (and fail) after this many messages */

typedef struct opts {
  unsigned long long items, diff, seed;
  int json, store;
} opts;

typedef struct item {
  uint64_t ts;
  uint8_t id[32];
  int side; /* 0 both, 1 only A, 2 only B */
} item;

typedef struct result {
  size_t msgs, rounds, bytes, max_msg;
  double seconds, seconds_repeat;
  double a_seconds; /* A's share (its steps only) */
  int ok;
} result;

/* --store figures */
typedef struct store_fig {
  double fill_s, build_s;
  size_t buckets, index_bytes;
  long rss_before_kb, rss_built_kb;
  double sync_a_s; /* A's CPU for a reconciliation in sync */
  size_t sync_bytes;
  double add_a_s; /* the same after 100 new items on both sides */
} store_fig;

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static int parse_opts(int argc, char **argv, opts *o) {
  *o = (opts){ITEMS_DEFAULT, DIFF_DEFAULT, 1, 0, 0};
  for (int i = 1; i < argc; i++) {
    unsigned long long *t = NULL;
    if (strcmp(argv[i], "--json") == 0) {
      o->json = 1;
      continue;
    }
    if (strcmp(argv[i], "--store") == 0) {
      o->store = 1;
      continue;
    }
    if (strcmp(argv[i], "--items") == 0)
      t = &o->items;
    else if (strcmp(argv[i], "--diff") == 0)
      t = &o->diff;
    else if (strcmp(argv[i], "--seed") == 0)
      t = &o->seed;
    char *end = NULL;
    if (t == NULL || i + 1 >= argc ||
        (*t = strtoull(argv[++i], &end, 10), end == argv[i] || *end)) {
      fprintf(stderr, "usage: kith-bench reconcile [--items N] [--diff D] "
                      "[--seed S] [--store] [--json]\n");
      return 2;
    }
  }
  if (o->items > ITEMS_MAX || o->diff > o->items) {
    fprintf(stderr, "kith-bench reconcile: need items <= %d, diff <= items\n",
            ITEMS_MAX);
    return 2;
  }
  return -1;
}

/* N items; D distinct ones (partial Fisher-Yates) made one-sided. */
static item *make_items(const opts *o) {
  uint64_t s = o->seed;
  size_t n = o->items;
  item *it = g_new0(item, n + 1);
  size_t *perm = g_new(size_t, n + 1);
  for (size_t i = 0; i < n; i++) {
    it[i].ts = T0 + splitmix64(&s) % SPAN_MS;
    for (int k = 0; k < 4; k++) {
      uint64_t v = splitmix64(&s);
      memcpy(it[i].id + 8 * k, &v, 8);
    }
    perm[i] = i;
  }
  for (size_t i = 0; i < o->diff; i++) {
    size_t j = i + splitmix64(&s) % (n - i);
    size_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
    it[perm[i]].side = i < o->diff / 2 ? 2 : 1; /* removed from A: only B */
  }
  g_free(perm);
  return it;
}

static kith_recon *make_replica(const item *it, size_t n, int skip_side) {
  kith_recon *r = kith_recon_new();
  for (size_t i = 0; i < n; i++)
    if (it[i].side != skip_side && kith_recon_add(r, it[i].ts, it[i].id))
      g_error("kith_recon_add failed");
  return r;
}

static int id_cmp(const void *a, const void *b) {
  return memcmp(a, b, 32);
}

/* Whether the reported ids are exactly the items with that side. */
static int same_ids(GByteArray *got, const item *it, size_t n, int side) {
  GByteArray *want = g_byte_array_new();
  for (size_t i = 0; i < n; i++)
    if (it[i].side == side)
      g_byte_array_append(want, it[i].id, 32);
  qsort(got->data, got->len / 32, 32, id_cmp);
  qsort(want->data, want->len / 32, 32, id_cmp);
  int ok =
      got->len == want->len && memcmp(got->data, want->data, got->len) == 0;
  g_byte_array_unref(want);
  return ok;
}

/* The exchange: A initiates, then the sides answer until one has nothing
 * more to say. Returns 0 when every step succeeded. */
static int exchange(kith_recon *a, kith_recon *b, GByteArray **io,
                    result *res) {
  uint8_t *msg = NULL, *reply = NULL;
  size_t len = 0, rlen = 0;
  kith_recon *side[2] = {a, b};
  double t0 = bench_now();
  if (kith_recon_initiate(a, &msg, &len) != KITH_OK)
    return 1;
  res->a_seconds += bench_now() - t0;
  for (int turn = 1; msg != NULL; turn ^= 1) {
    res->msgs++;
    res->bytes += len;
    res->max_msg = MAX(res->max_msg, len);
    double ts = bench_now();
    kith_err err = kith_recon_step(side[turn], msg, len, &reply, &rlen,
                                   io[2 * turn], io[2 * turn + 1]);
    if (turn == 0)
      res->a_seconds += bench_now() - ts;
    g_free(msg);
    if (err != KITH_OK || res->msgs > MSGS_MAX) {
      g_free(reply);
      return 1;
    }
    msg = reply;
    len = rlen;
  }
  res->rounds = (res->msgs + 1) / 2;
  return 0;
}

static void put_double(JsonBuilder *b, const char *name, double v) {
  json_builder_set_member_name(b, name);
  json_builder_add_double_value(b, v);
}

static void print_json(const opts *o, const result *r, const store_fig *f,
                       const char *cond) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
#define KEY_INT(k, v)                                                          \
  json_builder_set_member_name(b, k);                                          \
  json_builder_add_int_value(b, (gint64)(v))
  KEY_INT("items", o->items);
  KEY_INT("diff", o->diff);
  KEY_INT("seed", o->seed);
  KEY_INT("rounds", r->rounds);
  KEY_INT("messages", r->msgs);
  KEY_INT("bytes", r->bytes);
  KEY_INT("max_message_bytes", r->max_msg);
  KEY_INT("naive_bytes", o->items * 32);
  if (f != NULL) {
    KEY_INT("index_buckets", f->buckets);
    KEY_INT("index_bytes", f->index_bytes);
    KEY_INT("rss_before_index_kb", f->rss_before_kb);
    KEY_INT("rss_index_built_kb", f->rss_built_kb);
    KEY_INT("sync_bytes", f->sync_bytes);
  }
#undef KEY_INT
  if (f != NULL) {
    put_double(b, "store_fill_seconds", f->fill_s);
    put_double(b, "index_build_seconds", f->build_s);
    put_double(b, "a_seconds", r->a_seconds);
    put_double(b, "a_seconds_in_sync", f->sync_a_s);
    put_double(b, "a_seconds_after_100_new", f->add_a_s);
  }
  put_double(b, "seconds", r->seconds);
  put_double(b, "seconds_repeat", r->seconds_repeat);
  json_builder_set_member_name(b, "ok");
  json_builder_add_boolean_value(b, r->ok);
  json_builder_set_member_name(b, "conditions");
  json_builder_add_string_value(b, cond);
  json_builder_end_object(b);
  JsonGenerator *g = json_generator_new();
  JsonNode *root = json_builder_get_root(b);
  json_generator_set_root(g, root);
  char *s = json_generator_to_data(g, NULL);
  printf("%s\n", s);
  g_free(s);
  json_node_unref(root);
  g_object_unref(g);
  g_object_unref(b);
}

static void print_human(const opts *o, const result *r, const store_fig *f,
                        const char *cond) {
  printf("reconcile: %llu items, %llu differ (seed %llu)\n", o->items, o->diff,
         o->seed);
  printf("  rounds %zu (%zu messages), bytes %zu (largest message %zu), "
         "naive_bytes %llu\n",
         r->rounds, r->msgs, r->bytes, r->max_msg, o->items * 32);
  printf("  time %.3f s (%.3f s again on the same, already sorted replicas), "
         "differences found exactly: %s\n",
         r->seconds, r->seconds_repeat, r->ok ? "yes" : "NO");
  if (f != NULL) {
    printf("  store: A's %llu items written in %.1f s; index built in %.3f s "
           "(%zu buckets, %zu bytes held), RSS %ld -> %ld KB while built\n",
           o->items - o->diff / 2, f->fill_s, f->build_s, f->buckets,
           f->index_bytes, f->rss_before_kb, f->rss_built_kb);
    printf("  A's CPU: %.4f s differing, %.4f s in sync (%zu bytes), "
           "%.4f s after 100 new items on both sides\n",
           r->a_seconds, f->sync_a_s, f->sync_bytes, f->add_a_s);
  }
  printf("  conditions: %s\n", cond);
}

/* ---- --store ---- */

static long rss_kb(void) {
  char *text = NULL;
  long kb = -1;
  if (g_file_get_contents("/proc/self/status", &text, NULL, NULL)) {
    const char *p = strstr(text, "VmRSS:");
    if (p)
      kb = strtol(p + 6, NULL, 10);
  }
  g_free(text);
  return kb;
}

/* Writes A's items (side 0 and 1) as events of group gid, in batches. */
static int store_fill(kith_store *s, const uint8_t gid[32], const item *it,
                      size_t n) {
  static uint8_t raw[100];
  kith_event ev = {.kind = KITH_EV_MESSAGE, .raw = raw, .raw_len = sizeof raw};
  memcpy(ev.group_id, gid, 32);
  for (size_t i = 0; i < n; i += 10000) {
    if (kith_store_batch_begin(s) != KITH_OK)
      return 1;
    for (size_t j = i; j < MIN(n, i + 10000); j++) {
      if (it[j].side == 2)
        continue;
      memcpy(ev.id, it[j].id, 32);
      ev.ts_ms = it[j].ts;
      ev.depth = j;
      kith_store_row row = {.ev = &ev, .cseq = UINT32_MAX};
      if (kith_store_put_event(s, &row) != KITH_OK)
        return 1;
    }
    if (kith_store_batch_commit(s) != KITH_OK)
      return 1;
  }
  return 0;
}

/* A store in a temporary directory holding A's items, opened afresh (a
 * cold page cache, as after a restart). */
static int store_open(const item *it, size_t n, char **dir, kith_store **s,
                      store_fig *fig) {
  static const uint8_t key[32] = {1}, gid[32] = {2};
  *dir = g_dir_make_tmp("kith-bench-XXXXXX", NULL);
  if (*dir == NULL)
    return 1;
  char *path = g_build_filename(*dir, "store.db", NULL);
  double t0 = bench_now();
  int failed = kith_store_open(path, key, s) != KITH_OK ||
               store_fill(*s, gid, it, n) != 0;
  fig->fill_s = bench_now() - t0;
  kith_store_close(*s);
  *s = NULL;
  failed = failed || kith_store_open(path, key, s) != KITH_OK;
  g_free(path);
  return failed;
}

static void store_remove(char *dir) {
  const char *names[] = {"store.db", "store.db-wal", "store.db-shm"};
  for (size_t i = 0; dir && i < G_N_ELEMENTS(names); i++) {
    char *p = g_build_filename(dir, names[i], NULL);
    (void)g_remove(p);
    g_free(p);
  }
  if (dir)
    (void)g_rmdir(dir);
  g_free(dir);
}

static kith_recon_index *store_index(kith_store *s, store_fig *fig) {
  static const uint8_t gid[32] = {2};
  kith_recon_index *x = kith_recon_index_on_store(s, gid);
  int done = 0;
  fig->rss_before_kb = rss_kb();
  double t0 = bench_now();
  while (!done)
    if (kith_recon_index_build(x, 8, &done) != KITH_OK)
      g_error("could not build the index");
  fig->build_s = bench_now() - t0;
  fig->rss_built_kb = rss_kb();
  fig->buckets = kith_recon_index_buckets(x);
  fig->index_bytes = kith_recon_index_bytes(x);
  return x;
}

/* After the main exchange (which leaves A and B equal in nothing but
 * the difference): B takes what it lacked, A what it lacked, then a
 * reconciliation in sync, then 100 new items on both sides and another. */
static int store_followup(kith_store *s, kith_recon_index *x, kith_recon *a,
                          kith_recon *b, const item *it, size_t n,
                          GByteArray **io, store_fig *fig) {
  static const uint8_t gid[32] = {2};
  item *fresh = g_new0(item, 101);
  uint64_t seed = 12345;
  for (size_t i = 0; i < n; i++)
    if (it[i].side == 1 && kith_recon_add(b, it[i].ts, it[i].id) != KITH_OK)
      return 1;
  item *more = g_new0(item, n + 1); /* B's items written to the store */
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (it[i].side == 2) {
      more[k] = it[i];
      more[k++].side = 0;
    }
  for (size_t i = 0; i < 100; i++) {
    fresh[i].ts = T0 + SPAN_MS + i;
    for (int w = 0; w < 4; w++) {
      uint64_t v = splitmix64(&seed);
      memcpy(fresh[i].id + 8 * w, &v, 8);
    }
  }
  int failed = store_fill(s, gid, more, k) != 0;
  for (size_t i = 0; i < k; i++)
    kith_recon_index_add(x, more[i].ts, more[i].id);
  result r = {0};
  for (int i = 0; i < 4; i++)
    g_byte_array_set_size(io[i], 0);
  failed = failed || exchange(a, b, io, &r) || io[0]->len || io[1]->len;
  fig->sync_a_s = r.a_seconds;
  fig->sync_bytes = r.bytes;
  failed = failed || store_fill(s, gid, fresh, 100) != 0;
  for (size_t i = 0; i < 100 && !failed; i++) {
    kith_recon_index_add(x, fresh[i].ts, fresh[i].id);
    failed = kith_recon_add(b, fresh[i].ts, fresh[i].id) != KITH_OK;
  }
  result r2 = {0};
  failed = failed || exchange(a, b, io, &r2) || io[0]->len || io[1]->len;
  fig->add_a_s = r2.a_seconds;
  g_free(more);
  g_free(fresh);
  return failed;
}

int bench_reconcile(int argc, char **argv) {
  opts o;
  int rc = parse_opts(argc, argv, &o);
  if (rc >= 0)
    return rc;
  item *it = make_items(&o);
  char *dir = NULL;
  kith_store *st = NULL;
  kith_recon_index *x = NULL;
  store_fig fig = {0};
  kith_recon *a;
  if (o.store) {
    if (store_open(it, o.items, &dir, &st, &fig) != 0) {
      fprintf(stderr, "kith-bench reconcile: could not write the store\n");
      store_remove(dir);
      return 1;
    }
    x = store_index(st, &fig);
    kith_recon_source src = kith_recon_index_source(x);
    a = kith_recon_new_on(&src);
  } else {
    a = make_replica(it, o.items, 2);
  }
  kith_recon *b = make_replica(it, o.items, 1);
  GByteArray *io[4]; /* have A, need A, have B, need B */
  for (int i = 0; i < 4; i++)
    io[i] = g_byte_array_new();
  result res = {0};
  double t0 = bench_now();
  int failed = exchange(a, b, io, &res);
  res.seconds = bench_now() - t0;
  res.ok = !failed && same_ids(io[0], it, o.items, 1) &&
           same_ids(io[1], it, o.items, 2) && same_ids(io[2], it, o.items, 2) &&
           same_ids(io[3], it, o.items, 1);
  /* Again on the same replicas: their snapshots are sorted by now, as
   * they would be for a node that reconciles every few seconds. */
  result again = {0};
  for (int i = 0; i < 4; i++)
    g_byte_array_set_size(io[i], 0);
  t0 = bench_now();
  failed = exchange(a, b, io, &again);
  res.seconds_repeat = bench_now() - t0;
  res.ok = res.ok && !failed && same_ids(io[0], it, o.items, 1) &&
           same_ids(io[3], it, o.items, 1);
  if (o.store)
    res.ok = res.ok && store_followup(st, x, a, b, it, o.items, io, &fig) == 0;
  char *cond = bench_conditions();
  if (o.json)
    print_json(&o, &res, o.store ? &fig : NULL, cond);
  else
    print_human(&o, &res, o.store ? &fig : NULL, cond);
  g_free(cond);
  for (int i = 0; i < 4; i++)
    g_byte_array_unref(io[i]);
  kith_recon_free(a);
  kith_recon_free(b);
  kith_recon_index_free(x);
  kith_store_close(st);
  store_remove(dir);
  g_free(it);
  return res.ok ? 0 : 1;
}
