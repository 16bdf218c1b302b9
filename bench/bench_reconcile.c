/* kith-bench reconcile: range-based set reconciliation of two replicas of N
 * items that differ by D, run in memory through the real core engine.
 *
 * The items (timestamps spread over 30 days, random ids) come from a seeded
 * splitmix64 generator, not libsodium, so a seed always gives the same
 * sets. D/2 items are removed from one replica and D - D/2 others from the
 * other. Counted: messages and round trips (one message each way), bytes in
 * both directions; checked: each side reports exactly what it holds that
 * the other lacks (have) and the reverse (need). Exit 1 if not. */
#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "core/reconcile.h"

#define ITEMS_DEFAULT 100000
#define DIFF_DEFAULT 100
#define ITEMS_MAX 10000000
#define T0 1700000000000ull
#define SPAN_MS (30ull * 24 * 3600 * 1000)
#define MSGS_MAX 100000 /* give up (and fail) after this many messages */

typedef struct opts {
  unsigned long long items, diff, seed;
  int json;
} opts;

typedef struct item {
  uint64_t ts;
  uint8_t id[32];
  int side; /* 0 both, 1 only A, 2 only B */
} item;

typedef struct result {
  size_t msgs, rounds, bytes, max_msg;
  double seconds, seconds_repeat;
  int ok;
} result;

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static int parse_opts(int argc, char **argv, opts *o) {
  *o = (opts){ITEMS_DEFAULT, DIFF_DEFAULT, 1, 0};
  for (int i = 1; i < argc; i++) {
    unsigned long long *t = NULL;
    if (strcmp(argv[i], "--json") == 0) {
      o->json = 1;
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
                      "[--seed S] [--json]\n");
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
  if (kith_recon_initiate(a, &msg, &len) != KITH_OK)
    return 1;
  for (int turn = 1; msg != NULL; turn ^= 1) {
    res->msgs++;
    res->bytes += len;
    res->max_msg = MAX(res->max_msg, len);
    kith_err err = kith_recon_step(side[turn], msg, len, &reply, &rlen,
                                   io[2 * turn], io[2 * turn + 1]);
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

static void print_json(const opts *o, const result *r) {
  JsonBuilder *b = bench_json_begin("reconcile");
  bench_json_int(b, "items", (int64_t)o->items);
  bench_json_int(b, "diff", (int64_t)o->diff);
  bench_json_int(b, "seed", (int64_t)o->seed);
  bench_json_int(b, "rounds", (int64_t)r->rounds);
  bench_json_int(b, "messages", (int64_t)r->msgs);
  bench_json_int(b, "bytes", (int64_t)r->bytes);
  bench_json_int(b, "max_message_bytes", (int64_t)r->max_msg);
  bench_json_int(b, "naive_bytes", (int64_t)(o->items * 32));
  bench_json_num(b, "seconds", r->seconds);
  bench_json_num(b, "seconds_repeat", r->seconds_repeat);
  bench_json_bool(b, "ok", r->ok);
  bench_json_end(b);
}

static void print_human(const opts *o, const result *r, const char *cond) {
  printf("reconcile: %llu items, %llu differ (seed %llu)\n", o->items, o->diff,
         o->seed);
  printf("  rounds %zu (%zu messages), bytes %zu (largest message %zu), "
         "naive_bytes %llu\n",
         r->rounds, r->msgs, r->bytes, r->max_msg, o->items * 32);
  printf("  time %.3f s (%.3f s again on the same, already sorted replicas), "
         "differences found exactly: %s\n",
         r->seconds, r->seconds_repeat, r->ok ? "yes" : "NO");
  printf("  conditions: %s\n", cond);
}

int bench_reconcile(int argc, char **argv) {
  opts o;
  int rc = parse_opts(argc, argv, &o);
  if (rc >= 0)
    return rc;
  item *it = make_items(&o);
  kith_recon *a = make_replica(it, o.items, 2);
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
  char *cond = bench_conditions();
  if (o.json)
    print_json(&o, &res);
  else
    print_human(&o, &res, cond);
  g_free(cond);
  for (int i = 0; i < 4; i++)
    g_byte_array_unref(io[i]);
  kith_recon_free(a);
  kith_recon_free(b);
  g_free(it);
  return res.ok ? 0 : 1;
}
