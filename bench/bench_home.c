/* kith-bench build-store: writes real homes quickly, through the engine
 * and not through the CLI, for benchmarks of a real kith node.
 *
 * Each home is what `kith init` writes (core/home.h: the directory, the
 * storage key, kith.db with a new identity), then what a node writes for
 * a group: node 0 creates the group "bench" with its store attached and
 * admits the others (invite, add); each other node takes the setup events
 * in and attaches its store. Then N messages of B bytes, dated over the
 * last 30 days: node i % K posts message i (kith_group_send) and every
 * other node receives it (kith_group_receive: decode, verify, decrypt,
 * store), all in store batches of BUILD_BATCH events. With --port-base P
 * home i remembers the signal address 127.0.0.1:P+j of every node j < i
 * (kith_store_put_peer, as a node remembers its peers), with --halves only
 * those in its own half (the first ceil(K/2) nodes, the rest): nodes
 * started in order with --port P+i, each once the one before answers,
 * then link by themselves, each dialling nodes already up (as a joiner
 * dials its inviter), and learn the rest of their half from them. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "core/home.h"

#define BUILD_BATCH 1024
#define NODES_MAX 32
#define EVENTS_MAX 100000000
#define SPAN_MS (30ull * 24 * 3600 * 1000) /* the history's dates */
#define GROUP_NAME "bench"
#define LOOPBACK "127.0.0.1"

#define USAGE                                                                  \
  "--home DIR --events N [--text-bytes B] [--nodes K] [--port-base P] "        \
  "[--halves] [--json]"

typedef struct opts {
  const char *home;
  long events, text_bytes, nodes, port_base;
  int halves, json;
} opts;

/* One home being written: its identity, store and replica. */
typedef struct home {
  char *dir;
  char name[24];
  kith_ident me;
  kith_store *s;
  kith_group *g;
  bench_batch b;
} home;

typedef struct build {
  const opts *o;
  home *h;
  size_t n;
  uint8_t gid[32];
  uint64_t t_setup, t_first; /* dates of the setup and of message 0 */
  GPtrArray *acc;
} build;

static int parse_opts(int argc, char **argv, opts *o) {
  *o = (opts){.events = -1, .text_bytes = 1024, .nodes = 1};
  const bench_opt table[] = {
      {"--home", BENCH_OPT_STR, &o->home, 0, 0},
      {"--events", BENCH_OPT_LONG, &o->events, 0, EVENTS_MAX},
      {"--text-bytes", BENCH_OPT_LONG, &o->text_bytes, 1, KITH_TEXT_MAX - 1},
      {"--nodes", BENCH_OPT_LONG, &o->nodes, 1, NODES_MAX},
      {"--port-base", BENCH_OPT_LONG, &o->port_base, 1, 65535 - NODES_MAX},
      {"--halves", BENCH_OPT_FLAG, &o->halves, 0, 0},
      {"--json", BENCH_OPT_FLAG, &o->json, 0, 0},
  };
  int rc =
      bench_parse("build-store", USAGE, argc, argv, table, G_N_ELEMENTS(table));
  if (rc < 0 && (!o->home || o->events < 0)) {
    fprintf(stderr, "usage: kith-bench build-store %s\n", USAGE);
    return 2;
  }
  return rc;
}

/* `kith init`: the home, its storage key, the store and a new identity. */
static kith_err init_home(home *h) {
  uint8_t key[32], seed[KITH_SEED_LEN];
  kith_err rc = kith_home_prepare(h->dir);
  if (rc == KITH_OK)
    rc = kith_home_create_key(h->dir, NULL, 0, key);
  if (rc == KITH_OK) {
    char *db = kith_home_path(h->dir, KITH_HOME_DB_FILE);
    rc = kith_store_open(db, key, &h->s);
    g_free(db);
  }
  sodium_memzero(key, sizeof key);
  if (rc == KITH_OK)
    rc = kith_ident_generate(&h->me);
  if (rc == KITH_OK) {
    kith_ident_seed(&h->me, seed);
    rc = kith_store_put_identity(h->s, seed, h->name);
  }
  sodium_memzero(seed, sizeof seed);
  return rc;
}

/* Stores the new group in h's store and attaches it there. */
static kith_err attach(home *h, const uint8_t gid[32]) {
  bench_batch_init(&h->b, h->s, h->g, BUILD_BATCH);
  bench_batch_open(&h->b);
  kith_err rc = kith_store_put_group(h->s, gid);
  return rc == KITH_OK ? kith_group_attach_store(h->g, h->s) : rc;
}

/* Node 0 creates the group and admits the others; they take the setup
 * events in. */
static kith_err make_group(build *b) {
  home *h0 = &b->h[0];
  const kith_group_options go = {.name = GROUP_NAME,
                                 .owner_name = h0->name,
                                 .history = KITH_HISTORY_SHARED};
  kith_accepted *a = NULL;
  GPtrArray *setup =
      g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  kith_err rc = kith_group_create(&h0->me, &go, b->t_setup, &h0->g, &a);
  if (rc == KITH_OK) {
    memcpy(b->gid, kith_group_id(h0->g), 32);
    g_ptr_array_add(b->acc, a);
    rc = attach(h0, b->gid);
  }
  for (size_t i = 1; rc == KITH_OK && i < b->n; i++)
    rc = bench_admit(h0->g, &b->h[i].me, b->h[i].name, b->t_setup + 2 * i,
                     b->acc);
  for (guint i = 0; rc == KITH_OK && i < b->acc->len; i++) {
    const kith_accepted *e = b->acc->pdata[i];
    g_ptr_array_add(setup, g_bytes_new(e->ev.raw, e->ev.raw_len));
  }
  g_ptr_array_set_size(b->acc, 0);
  for (size_t i = 1; rc == KITH_OK && i < b->n; i++) {
    home *h = &b->h[i];
    h->g = kith_group_new(b->gid, &h->me);
    for (guint k = 0; k < setup->len; k++) {
      gsize len;
      const uint8_t *raw = g_bytes_get_data(setup->pdata[k], &len);
      kith_err e = kith_group_receive(h->g, raw, len, b->t_first, b->acc);
      rc = e == KITH_OK || e == KITH_ERR_MISSING ? rc : e;
      g_ptr_array_set_size(b->acc, 0);
    }
    if (rc == KITH_OK && !kith_group_is_ready(h->g))
      rc = KITH_ERR_STATE;
    if (rc == KITH_OK)
      rc = attach(h, b->gid);
  }
  g_ptr_array_unref(setup);
  return rc;
}

/* Message i: posted by node i % K, received by every other node. */
static kith_err post(build *b, long i, char *text) {
  const opts *o = b->o;
  home *author = &b->h[(size_t)i % b->n];
  uint64_t ts =
      b->t_first + (uint64_t)i * (SPAN_MS / (uint64_t)MAX(o->events, 1));
  bench_text(text, (size_t)o->text_bytes, (uint64_t)i);
  bench_batch_open(&author->b);
  kith_err rc =
      kith_group_send(author->g, text, (size_t)o->text_bytes, NULL, ts, b->acc);
  bench_batch_add(&author->b, b->acc->len);
  for (size_t k = 0; rc == KITH_OK && k < b->n; k++) {
    home *h = &b->h[k];
    if (h == author)
      continue;
    for (guint j = 0; rc == KITH_OK && j < b->acc->len; j++) {
      const kith_accepted *a = b->acc->pdata[j];
      GPtrArray *got = bench_acc_new();
      bench_batch_open(&h->b);
      rc = kith_group_receive(h->g, a->ev.raw, a->ev.raw_len, ts, got);
      bench_batch_add(&h->b, got->len);
      g_ptr_array_unref(got);
    }
  }
  g_ptr_array_set_size(b->acc, 0);
  return rc;
}

/* The signal addresses each node remembers (see the top). Only earlier
 * nodes: a node that dials one not running yet loses its offer, and then
 * ignores that node's own offer until its attempt times out (crossing
 * offers, net/peer.c on_offer). */
static kith_err put_peers(build *b) {
  uint64_t now = bench_wall_ms();
  kith_err rc = KITH_OK;
  size_t half = (b->n + 1) / 2;
  for (size_t i = 0; rc == KITH_OK && i < b->n; i++)
    for (size_t j = 0; rc == KITH_OK && j < i; j++)
      if (!b->o->halves || (i < half) == (j < half))
        rc = kith_store_put_peer(b->h[i].s, b->h[j].me.pk, LOOPBACK,
                                 (uint16_t)(b->o->port_base + (long)j), now);
  return rc;
}

static kith_err run_build(build *b) {
  kith_err rc = KITH_OK;
  for (size_t i = 0; rc == KITH_OK && i < b->n; i++)
    rc = init_home(&b->h[i]);
  if (rc == KITH_OK)
    rc = make_group(b);
  char *text = g_malloc((size_t)b->o->text_bytes + 1);
  for (long i = 0; rc == KITH_OK && i < b->o->events; i++)
    rc = post(b, i, text);
  g_free(text);
  if (rc == KITH_OK && b->o->port_base > 0)
    rc = put_peers(b);
  for (size_t i = 0; i < b->n; i++) {
    home *h = &b->h[i];
    if (h->b.s)
      bench_batch_commit(&h->b);
    if (rc == KITH_OK && h->b.bad)
      rc = KITH_ERR_IO;
  }
  return rc;
}

static void print_result(const build *b, double secs, uint64_t db_bytes) {
  const opts *o = b->o;
  char gid[KITH_ID_TEXT_LEN + 1];
  kith_id_to_text(b->gid, gid);
  if (o->json) {
    JsonBuilder *j = bench_json_begin("build-store");
    bench_json_str(j, "home", o->home);
    bench_json_str(j, "group_id", gid);
    bench_json_int(j, "nodes", (int64_t)b->n);
    bench_json_int(j, "events", o->events);
    bench_json_int(j, "text_bytes", o->text_bytes);
    bench_json_int(j, "db_bytes", (int64_t)db_bytes);
    bench_json_num(j, "seconds", secs);
    bench_json_end(j);
    return;
  }
  printf("build-store: %zu home%s under %s, group %s (\"%s\"), %ld messages "
         "of %ld bytes, kith.db %.1f MB (node 0), %.1f s\n",
         b->n, b->n > 1 ? "s" : "", o->home, gid, GROUP_NAME, o->events,
         o->text_bytes, (double)db_bytes / 1e6, secs);
}

int bench_build_store(int argc, char **argv) {
  opts o;
  int rc = parse_opts(argc, argv, &o);
  if (rc >= 0)
    return rc;
  double t0 = bench_now();
  build b = {.o = &o, .n = (size_t)o.nodes, .acc = bench_acc_new()};
  uint64_t now = bench_wall_ms();
  b.t_first = now - SPAN_MS - 60 * 1000;
  b.t_setup = b.t_first - 60 * 1000;
  b.h = g_new0(home, b.n);
  for (size_t i = 0; i < b.n; i++) {
    char sub[24];
    snprintf(sub, sizeof sub, "n%zu", i);
    b.h[i].dir =
        b.n == 1 ? g_strdup(o.home) : g_build_filename(o.home, sub, NULL);
    g_strlcpy(b.h[i].name, b.n == 1 ? "bench" : sub, sizeof b.h[i].name);
  }
  if (b.n > 1 && kith_home_prepare(o.home) != KITH_OK) {
    fprintf(stderr, "kith-bench build-store: cannot create %s\n", o.home);
    return 1;
  }
  kith_err err = run_build(&b);
  char *db = kith_home_path(b.h[0].dir, KITH_HOME_DB_FILE);
  for (size_t i = 0; i < b.n; i++) {
    kith_group_free(b.h[i].g);
    kith_store_close(b.h[i].s);
    kith_ident_clear(&b.h[i].me);
    g_free(b.h[i].dir);
  }
  g_free(b.h);
  g_ptr_array_unref(b.acc);
  if (err == KITH_OK)
    print_result(&b, bench_now() - t0, bench_file_size(db));
  else
    fprintf(stderr, "kith-bench build-store: %s: %s\n", o.home,
            kith_strerror(err));
  g_free(db);
  return err == KITH_OK ? 0 : 1;
}
