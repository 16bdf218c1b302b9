/* kith-bench ingest: how fast one core takes in message events through the
 * full path (decode + verify + decrypt + state update + store), compared
 * with the raw Ed25519 verify rate measured in the same run.
 *
 * Plain (kith-bench ingest [--events N]): a sender replica builds the group
 * (create, invite, add of the receiver) and N message events with the
 * public core API; nothing of that is timed. The receiver replica is then
 * fed the setup events, and only the N messages are timed. Per-stage
 * passes (decode alone, group receive alone, store alone), each on fresh
 * objects, say where the time goes.
 *
 * With history (--history N --senders S --reorder P): the receiver is
 * store-backed and its group already holds N messages; the measured events
 * come from S concurrent senders, a fraction P of them late
 * (bench_crowd.h). A second receiver at history --base (1000) is built
 * beside it, and the two are measured in alternating chunks, so that the
 * per-event cost at N is compared with the cost at the base under the
 * same machine load.
 *
 * Both feed the receiver as the node does (net/frames.c recv_event, net/
 * node.c node_accepted): one kith_group_receive per event, then
 * kith_group_maintain, the store written in the node's batches. */
#include <glib.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_crowd.h"
#include "core/invite.h"

#define EVENTS_DEFAULT 20000
#define EVENTS_MAX 1000000
#define TEXT_DEFAULT 100 /* bytes of message text: a typical chat line */
#define HISTORY_MAX 10000000
#define SENDERS_DEFAULT 8
#define SENDERS_MAX 64
#define REORDER_DEFAULT 0.1
#define WINDOW_DEFAULT 8
#define WINDOW_MAX 1000
#define BASE_DEFAULT 1000
#define TARGET_RATIO 0.8         /* ingest / raw verify (issue 9) */
#define TARGET_HISTORY_RATIO 1.2 /* cost at N / cost at the base (issue 9) */
#define CHUNK 500 /* events per alternation of verify and ingest */
#define T0 1700000000000ull

#define USAGE                                                                  \
  "[--events N] [--text-bytes B] [--json]\n"                                   \
  "       kith-bench ingest --history N [--senders S] [--reorder P] "          \
  "[--window W] [--base N0] [--seed X] [--events N] [--text-bytes B] "         \
  "[--json]"

typedef struct opts {
  long events, text_bytes, history, senders, window, base, seed;
  double reorder;
  int json;
} opts;

/* One measured ingest: raw verify and the full path, alternating. */
typedef struct run {
  double verify_per_s, events_per_s;
  size_t held; /* events held on arrival (a parent not there yet) */
} run;

static int parse_opts(int argc, char **argv, opts *o) {
  *o = (opts){.events = EVENTS_DEFAULT,
              .text_bytes = TEXT_DEFAULT,
              .history = -1,
              .senders = -1,
              .window = WINDOW_DEFAULT,
              .base = BASE_DEFAULT,
              .seed = 1,
              .reorder = -1};
  const bench_opt table[] = {
      {"--events", BENCH_OPT_LONG, &o->events, 1, EVENTS_MAX},
      {"--text-bytes", BENCH_OPT_LONG, &o->text_bytes, 1, KITH_TEXT_MAX - 1},
      {"--history", BENCH_OPT_LONG, &o->history, 0, HISTORY_MAX},
      {"--senders", BENCH_OPT_LONG, &o->senders, 1, SENDERS_MAX},
      {"--reorder", BENCH_OPT_DOUBLE, &o->reorder, 0, 1},
      {"--window", BENCH_OPT_LONG, &o->window, 1, WINDOW_MAX},
      {"--base", BENCH_OPT_LONG, &o->base, 0, HISTORY_MAX},
      {"--seed", BENCH_OPT_LONG, &o->seed, 0, 1e15},
      {"--json", BENCH_OPT_FLAG, &o->json, 0, 0},
  };
  return bench_parse("ingest", USAGE, argc, argv, table, G_N_ELEMENTS(table));
}

/* --history, --senders or --reorder: the run with a history. The others
 * take their defaults. */
static int wants_history(opts *o) {
  if (o->history < 0 && o->senders < 0 && o->reorder < 0)
    return 0;
  o->history = o->history < 0 ? o->base : o->history;
  o->senders = o->senders < 0 ? SENDERS_DEFAULT : o->senders;
  o->reorder = o->reorder < 0 ? REORDER_DEFAULT : o->reorder;
  return 1;
}

/* ---- raw Ed25519 ---- */

/* N distinct messages as long as the average event, signed by one key. */
typedef struct verify_set {
  size_t n, len;
  uint8_t *msgs, *sigs;
  uint8_t pk[32];
  int bad;
} verify_set;

static void verify_set_init(verify_set *v, size_t n, size_t bytes,
                            const kith_ident *signer) {
  v->n = n;
  v->len = bytes / n;
  v->msgs = g_malloc(v->n * v->len);
  v->sigs = g_malloc(v->n * KITH_SIG_LEN);
  v->bad = 0;
  memcpy(v->pk, signer->pk, 32);
  randombytes_buf(v->msgs, v->n * v->len);
  for (size_t i = 0; i < v->n; i++)
    crypto_sign_detached(v->sigs + i * KITH_SIG_LEN, NULL, v->msgs + i * v->len,
                         v->len, signer->sk);
}

static void verify_set_clear(verify_set *v) {
  g_free(v->msgs);
  g_free(v->sigs);
}

/* Verifies messages [from, to); returns the seconds it took. */
static double verify_range(verify_set *v, size_t from, size_t to) {
  double t = bench_now();
  for (size_t i = from; i < to; i++)
    v->bad |= crypto_sign_verify_detached(v->sigs + i * KITH_SIG_LEN,
                                          v->msgs + i * v->len, v->len, v->pk);
  return bench_now() - t;
}

/* ---- the receiving side ---- */

/* A receiving replica, with a store (the full path) or without. */
typedef struct sink {
  kith_group *g;
  bench_batch b; /* b.s is NULL without a store */
  GPtrArray *acc;
  uint64_t now; /* the receiver's clock: the latest date of the events */
  size_t held;
  int bad;
} sink;

static void sink_init(sink *k, kith_group *g, kith_store *s, uint64_t now) {
  memset(k, 0, sizeof *k);
  k->g = g;
  bench_batch_init(&k->b, s, g, BENCH_NODE_BATCH);
  k->acc = bench_acc_new();
  k->now = now;
}

static void sink_clear(sink *k) {
  g_ptr_array_unref(k->acc);
}

/* Feeds events [from, to) to k->g as the node does, the store (if any)
 * written in the node's batches, committed at the end as the node does at
 * the end of a main-loop round. Returns the seconds it took. */
static double ingest_range(sink *k, const GPtrArray *events, guint from,
                           guint to) {
  double t = bench_now();
  for (guint i = from; i < to; i++) {
    gsize len;
    const uint8_t *raw = g_bytes_get_data(events->pdata[i], &len);
    if (k->b.s)
      bench_batch_open(&k->b);
    kith_err rc = kith_group_receive(k->g, raw, len, k->now, k->acc);
    k->held += rc == KITH_ERR_MISSING;
    k->bad |= rc != KITH_OK && rc != KITH_ERR_MISSING;
    if (k->b.s)
      bench_batch_add(&k->b, k->acc->len);
    g_ptr_array_set_size(k->acc, 0);
    /* The node asks after every batch from a peer whether it owes a rekey;
     * here it never does. */
    k->bad |= kith_group_maintain(k->g, k->now, k->acc) != KITH_OK ||
              k->acc->len != 0;
  }
  if (k->b.s)
    bench_batch_commit(&k->b);
  k->bad |= k->b.bad;
  return bench_now() - t;
}

/* The full path, measured in chunks alternating with raw verifications,
 * so that both rates see the same machine load. */
static int measure(sink *k, const GPtrArray *events, size_t bytes,
                   const kith_ident *signer, run *r) {
  verify_set v;
  double tv = 0, tf = 0;
  verify_set_init(&v, events->len, bytes, signer);
  for (guint i = 0; i < events->len; i += CHUNK) {
    guint to = MIN(i + CHUNK, events->len);
    tv += verify_range(&v, i, to);
    tf += ingest_range(k, events, i, to);
  }
  r->verify_per_s = (double)events->len / tv;
  r->events_per_s = (double)events->len / tf;
  r->held = k->held;
  verify_set_clear(&v);
  return !k->bad && !v.bad;
}

/* ---- output ---- */

#define STORE_PLAIN                                                            \
  "sqlite WAL, one transaction per " G_STRINGIFY(                              \
      BENCH_NODE_BATCH) " events (as the node)"
#define STORE_HISTORY STORE_PLAIN ", the group opened from the store"

/* The keys both kinds of run print last, then the object is printed. */
static void json_common(JsonBuilder *b, const opts *o, size_t event_bytes,
                        int cpu, const char *store) {
  bench_json_int(b, "events", o->events);
  bench_json_int(b, "text_bytes", o->text_bytes);
  bench_json_int(b, "event_bytes", (int64_t)event_bytes);
  bench_json_int(b, "pinned_cpu", cpu);
  bench_json_int(b, "threads", 1);
  bench_json_str(b, "store", store);
  bench_json_end(b);
}

/* ---- plain: one sender, no history ---- */

typedef struct corpus {
  kith_ident sender, receiver;
  uint8_t gid[32];
  GPtrArray *setup; /* GBytes*: create, invite, add */
  GPtrArray *msgs;  /* GBytes*: the N message events */
  size_t msg_bytes; /* total raw bytes of msgs */
} corpus;

typedef struct stages {
  double decode_per_s, receive_per_s, store_per_s;
} stages;

/* Moves every accepted event in acc to arr (as raw bytes). */
static void log_all(GPtrArray *arr, GPtrArray *acc, size_t *bytes) {
  for (guint i = 0; i < acc->len; i++) {
    const kith_accepted *a = acc->pdata[i];
    g_ptr_array_add(arr, g_bytes_new(a->ev.raw, a->ev.raw_len));
    if (bytes)
      *bytes += a->ev.raw_len;
  }
  g_ptr_array_set_size(acc, 0);
}

/* The sender creates the group, invites and adds the receiver. */
static kith_err build_setup(corpus *c, kith_group **sender_g) {
  const kith_group_options go = {
      .name = "bench", .owner_name = "sender", .history = KITH_HISTORY_SHARED};
  kith_accepted *a = NULL;
  kith_err rc = kith_group_create(&c->sender, &go, T0, sender_g, &a);
  if (rc != KITH_OK)
    return rc;
  memcpy(c->gid, kith_group_id(*sender_g), 32);
  GPtrArray *acc = bench_acc_new();
  g_ptr_array_add(acc, a);
  rc = bench_admit(*sender_g, &c->receiver, "receiver", T0 + 1, acc);
  log_all(c->setup, acc, NULL);
  g_ptr_array_unref(acc);
  return rc;
}

/* N distinct texts of text_bytes each. */
static kith_err build_messages(corpus *c, kith_group *g, const opts *o) {
  char *text = g_malloc((size_t)o->text_bytes + 1);
  GPtrArray *acc = bench_acc_new();
  kith_err rc = KITH_OK;
  for (long i = 0; rc == KITH_OK && i < o->events; i++) {
    bench_text(text, (size_t)o->text_bytes, (uint64_t)i);
    rc = kith_group_send(g, text, (size_t)o->text_bytes, NULL,
                         T0 + 10 + (uint64_t)i, acc);
    log_all(c->msgs, acc, &c->msg_bytes);
  }
  g_ptr_array_unref(acc);
  g_free(text);
  return rc;
}

static kith_err corpus_init(corpus *c, const opts *o) {
  uint8_t seed[32];
  kith_group *g = NULL;
  memset(c, 0, sizeof *c);
  c->setup = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  c->msgs = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  memset(seed, 0x51, sizeof seed);
  kith_err rc = kith_ident_from_seed(&c->sender, seed);
  memset(seed, 0x52, sizeof seed);
  if (rc == KITH_OK)
    rc = kith_ident_from_seed(&c->receiver, seed);
  if (rc == KITH_OK)
    rc = build_setup(c, &g);
  if (rc == KITH_OK)
    rc = build_messages(c, g, o);
  kith_group_free(g);
  return rc;
}

static void corpus_clear(corpus *c) {
  g_ptr_array_unref(c->setup);
  g_ptr_array_unref(c->msgs);
  kith_ident_clear(&c->sender);
  kith_ident_clear(&c->receiver);
}

static uint64_t corpus_now(const corpus *c) {
  return T0 + 10 + c->msgs->len;
}

/* kith_event_decode alone (strict msgpack decode + signature check). */
static double measure_decode(const corpus *c) {
  int bad = 0;
  double t = bench_now();
  for (guint i = 0; i < c->msgs->len; i++) {
    gsize len;
    const uint8_t *raw = g_bytes_get_data(c->msgs->pdata[i], &len);
    kith_event ev;
    bad |= kith_event_decode(raw, len, c->gid, &ev) != KITH_OK;
    kith_event_clear(&ev);
  }
  t = bench_now() - t;
  return bad ? -1.0 : (double)c->msgs->len / t;
}

/* A fresh receiving replica that has taken in the setup events (and stored
 * them, if s is given). Create and invite are held until the add brings the
 * epoch secret, then released with it. */
static kith_group *receiver_new(const corpus *c, kith_store *s) {
  kith_group *g = kith_group_new(c->gid, &c->receiver);
  GPtrArray *acc = bench_acc_new();
  int bad = 0;
  for (guint i = 0; i < c->setup->len; i++) {
    gsize len;
    const uint8_t *raw = g_bytes_get_data(c->setup->pdata[i], &len);
    kith_err rc = kith_group_receive(g, raw, len, T0 + 5, acc);
    bad |= rc != KITH_OK && rc != KITH_ERR_MISSING;
    g_ptr_array_set_size(acc, 0);
  }
  g_ptr_array_unref(acc);
  if (s)
    bad |= kith_store_put_group(s, c->gid) != KITH_OK ||
           kith_group_attach_store(g, s) != KITH_OK;
  if (bad || !kith_group_is_ready(g) ||
      !kith_group_is_member(g, c->receiver.pk)) {
    kith_group_free(g);
    return NULL;
  }
  return g;
}

/* A fresh store in a new temporary directory, as the node opens it. */
static kith_store *store_new(char **dir_out) {
  static const uint8_t key[32] = {0x6b, 0x69, 0x74, 0x68};
  kith_store *s = NULL;
  char *dir = bench_tmpdir("ingest");
  *dir_out = dir;
  if (!dir)
    return NULL;
  char *path = g_build_filename(dir, "kith.db", NULL);
  if (kith_store_open(path, key, &s) != KITH_OK)
    s = NULL;
  g_free(path);
  return s;
}

/* The full path into a fresh store. */
static int measure_full(const corpus *c, run *r) {
  char *dir = NULL;
  kith_store *s = store_new(&dir);
  kith_group *g = s ? receiver_new(c, s) : NULL;
  sink k;
  sink_init(&k, g, s, corpus_now(c));
  int ok = g && measure(&k, c->msgs, c->msg_bytes, &c->sender, r);
  sink_clear(&k);
  kith_group_free(g);
  kith_store_close(s);
  bench_rmtree(dir);
  g_free(dir);
  return ok;
}

/* Decode alone, and receive without a store (in memory), on fresh
 * objects: the full path less these is the store's share. */
static int measure_stages(const corpus *c, const run *full, stages *st) {
  sink k;
  sink_init(&k, receiver_new(c, NULL), NULL, corpus_now(c));
  st->decode_per_s = measure_decode(c);
  if (k.g)
    st->receive_per_s =
        (double)c->msgs->len / ingest_range(&k, c->msgs, 0, c->msgs->len);
  int ok = k.g && !k.bad && st->decode_per_s > 0 && st->receive_per_s > 0;
  kith_group_free(k.g);
  sink_clear(&k);
  st->store_per_s = 1.0 / (1.0 / full->events_per_s - 1.0 / st->receive_per_s);
  return ok;
}

static void print_plain(const opts *o, const corpus *c, const run *r,
                        const stages *st, int cpu) {
  double ratio = r->events_per_s / r->verify_per_s;
  size_t ev_bytes = c->msg_bytes / c->msgs->len;
  if (o->json) {
    JsonBuilder *b = bench_json_begin("ingest");
    bench_json_num(b, "verify_per_s", r->verify_per_s);
    bench_json_num(b, "events_per_s", r->events_per_s);
    bench_json_num(b, "ratio", ratio);
    bench_json_num(b, "target_ratio", TARGET_RATIO);
    bench_json_num(b, "decode_per_s", st->decode_per_s);
    bench_json_num(b, "receive_per_s", st->receive_per_s);
    bench_json_num(b, "store_per_s", st->store_per_s);
    json_common(b, o, ev_bytes, cpu, STORE_PLAIN);
    return;
  }
  char *cond = bench_conditions();
  printf("ingest: %ld message events, %ld-byte texts, %zu-byte events, "
         "1 thread (cpu %d)\n",
         o->events, o->text_bytes, ev_bytes, cpu);
  printf("  raw Ed25519 verify   %10.0f /s  %7.1f us\n", r->verify_per_s,
         1e6 / r->verify_per_s);
  printf("  full ingest path     %10.0f /s  %7.1f us  ratio %.2f "
         "(target >= %.1f: %s)\n",
         r->events_per_s, 1e6 / r->events_per_s, ratio, TARGET_RATIO,
         ratio >= TARGET_RATIO ? "met" : "NOT met");
  printf("  stages: decode+verify %.0f /s (%.1f us), group receive %.0f /s "
         "(%.1f us), store %.0f /s (%.1f us)\n",
         st->decode_per_s, 1e6 / st->decode_per_s, st->receive_per_s,
         1e6 / st->receive_per_s, st->store_per_s, 1e6 / st->store_per_s);
  printf("  store: %s\n", STORE_PLAIN);
  printf("  conditions: %s\n", cond);
  g_free(cond);
}

static int run_plain(const opts *o, int cpu) {
  corpus c;
  run r = {0};
  stages st = {0};
  kith_err err = corpus_init(&c, o);
  if (err != KITH_OK) {
    fprintf(stderr, "kith-bench ingest: setup failed: %s\n",
            kith_strerror(err));
    corpus_clear(&c);
    return 1;
  }
  int ok = measure_full(&c, &r) && measure_stages(&c, &r, &st);
  if (ok)
    print_plain(o, &c, &r, &st, cpu);
  else
    fprintf(stderr, "kith-bench ingest: an event was rejected\n");
  corpus_clear(&c);
  return ok ? 0 : 1;
}

/* ---- with a history ---- */

typedef struct hrun {
  long history;
  run r;
  size_t delayed, behind, event_bytes;
  uint64_t store_bytes;
  double build_s;
} hrun;

/* One side of a history run: its crowd, its receiver and its raw verify
 * set, with the seconds each took so far. */
typedef struct hside {
  crowd c;
  sink k;
  verify_set v;
  double tv, tf;
  uint64_t before;
  int built;
} hside;

/* Builds the crowd at this history. */
static int hside_build(const opts *o, long history, hside *s) {
  const crowd_opts co = {.history = history,
                         .senders = o->senders,
                         .events = o->events,
                         .text_bytes = o->text_bytes,
                         .reorder = o->reorder,
                         .window = o->window,
                         .seed = (uint64_t)o->seed};
  memset(s, 0, sizeof *s);
  kith_err err = crowd_build(&s->c, &co);
  if (err != KITH_OK) {
    fprintf(stderr, "kith-bench ingest: building history %ld failed: %s\n",
            history, kith_strerror(err));
    crowd_clear(&s->c);
    return 0;
  }
  s->built = 1;
  s->before = kith_group_n_events(s->c.g);
  sink_init(&s->k, s->c.g, s->c.store, s->c.last_ts);
  verify_set_init(&s->v, s->c.events->len, s->c.bytes, &s->c.senders[0]);
  return 1;
}

/* Raw verify, then the full path, of chunk [from, from + CHUNK). */
static void hside_chunk(hside *s, guint from) {
  guint to = MIN(from + CHUNK, s->c.events->len);
  if (from >= to)
    return;
  s->tv += verify_range(&s->v, from, to);
  s->tf += ingest_range(&s->k, s->c.events, from, to);
}

/* The figures of s (every event accepted once, none left waiting), and s
 * freed. */
static int hside_finish(hside *s, long history, hrun *h) {
  int ok = !s->k.bad && !s->v.bad &&
           kith_group_n_events(s->c.g) == s->before + s->c.events->len &&
           kith_group_n_held(s->c.g) == 0;
  if (!ok)
    fprintf(stderr,
            "kith-bench ingest: at history %ld an event was rejected or left "
            "held\n",
            history);
  memset(h, 0, sizeof *h);
  h->history = history;
  h->r.verify_per_s = (double)s->c.events->len / s->tv;
  h->r.events_per_s = (double)s->c.events->len / s->tf;
  h->r.held = s->k.held;
  h->delayed = s->c.delayed;
  h->behind = s->c.behind;
  h->event_bytes = s->c.bytes / s->c.events->len;
  h->store_bytes = s->c.store_bytes;
  h->build_s = s->c.build_s;
  sink_clear(&s->k);
  verify_set_clear(&s->v);
  crowd_clear(&s->c);
  return ok;
}

/* Builds both crowds, then measures them in alternating chunks (base,
 * then history; each its raw verify, then its full path), so that all four
 * rates see the same machine load. */
static int measure_histories(const opts *o, hrun *base, hrun *h) {
  hside sb, sh;
  int two = o->history != o->base;
  int ok = hside_build(o, o->base, &sb);
  if (ok && two && !(ok = hside_build(o, o->history, &sh)))
    hside_finish(&sb, o->base, base);
  if (!ok)
    return 0;
  for (guint i = 0; i < sb.c.events->len; i += CHUNK) {
    hside_chunk(&sb, i);
    if (two)
      hside_chunk(&sh, i);
  }
  ok = hside_finish(&sb, o->base, base);
  if (two)
    ok = hside_finish(&sh, o->history, h) && ok;
  else
    *h = *base;
  return ok;
}

static double us_per_event(const run *r) {
  return 1e6 / r->events_per_s;
}

/* Cost at the history against the cost at the base: as measured, and with
 * each divided by the raw verify cost of its own run (which cancels most
 * of a change in machine load between the two runs). */
static double history_ratio(const hrun *h, const hrun *base, int norm) {
  double r = us_per_event(&h->r) / us_per_event(&base->r);
  return norm ? r * h->r.verify_per_s / base->r.verify_per_s : r;
}

static void json_hrun(JsonBuilder *b, const char *prefix, const hrun *h) {
  char key[64];
#define KEY(k) (snprintf(key, sizeof key, "%s%s", prefix, k), key)
  bench_json_int(b, KEY("history"), h->history);
  bench_json_num(b, KEY("verify_per_s"), h->r.verify_per_s);
  bench_json_num(b, KEY("events_per_s"), h->r.events_per_s);
  bench_json_num(b, KEY("ratio"), h->r.events_per_s / h->r.verify_per_s);
  bench_json_num(b, KEY("us_per_event"), us_per_event(&h->r));
  bench_json_int(b, KEY("held"), (int64_t)h->r.held);
  bench_json_int(b, KEY("delayed"), (int64_t)h->delayed);
  bench_json_int(b, KEY("behind_heads"), (int64_t)h->behind);
  bench_json_int(b, KEY("store_bytes"), (int64_t)h->store_bytes);
  bench_json_num(b, KEY("build_s"), h->build_s);
#undef KEY
}

static void print_hrun(const hrun *h) {
  printf("  history %8ld: raw verify %6.0f /s (%5.1f us), ingest %6.0f /s "
         "(%5.1f us), ratio %.2f; %zu delayed, %zu with a parent no longer "
         "a head, %zu held; store %.1f MB; built in %.1f s\n",
         h->history, h->r.verify_per_s, 1e6 / h->r.verify_per_s,
         h->r.events_per_s, us_per_event(&h->r),
         h->r.events_per_s / h->r.verify_per_s, h->delayed, h->behind,
         h->r.held, (double)h->store_bytes / 1e6, h->build_s);
}

static void print_history(const opts *o, const hrun *h, const hrun *base,
                          int cpu) {
  double ratio = h->r.events_per_s / h->r.verify_per_s;
  double hr = history_ratio(h, base, 0), hn = history_ratio(h, base, 1);
  if (o->json) {
    JsonBuilder *b = bench_json_begin("ingest");
    bench_json_num(b, "verify_per_s", h->r.verify_per_s);
    bench_json_num(b, "events_per_s", h->r.events_per_s);
    bench_json_num(b, "ratio", ratio);
    bench_json_num(b, "target_ratio", TARGET_RATIO);
    json_hrun(b, "", h);
    json_hrun(b, "base_", base);
    bench_json_num(b, "history_ratio", hr);
    bench_json_num(b, "history_ratio_norm", hn);
    bench_json_num(b, "target_history_ratio", TARGET_HISTORY_RATIO);
    bench_json_int(b, "senders", o->senders);
    bench_json_num(b, "reorder", o->reorder);
    bench_json_int(b, "window", o->window);
    bench_json_int(b, "seed", o->seed);
    json_common(b, o, h->event_bytes, cpu, STORE_HISTORY);
    return;
  }
  char *cond = bench_conditions();
  printf("ingest with history: %ld senders, %ld message events "
         "(%ld-byte texts, %zu-byte events), %.0f%% delivered after 1..%ld "
         "later events, 1 thread (cpu %d), seed %ld\n",
         o->senders, o->events, o->text_bytes, h->event_bytes, o->reorder * 100,
         o->window, cpu, o->seed);
  if (base->history != h->history)
    print_hrun(base);
  print_hrun(h);
  printf("  ratio to raw verify at history %ld: %.2f (target >= %.1f: %s)\n",
         h->history, ratio, TARGET_RATIO,
         ratio >= TARGET_RATIO ? "met" : "NOT met");
  printf("  per-event cost at history %ld / at %ld: %.2f (target <= %.1f: "
         "%s); with each divided by its run's verify cost: %.2f\n",
         h->history, base->history, hr, TARGET_HISTORY_RATIO,
         hr <= TARGET_HISTORY_RATIO ? "met" : "NOT met", hn);
  printf("  store: %s\n  conditions: %s\n", STORE_HISTORY, cond);
  g_free(cond);
}

static int run_history(const opts *o, int cpu) {
  hrun base, h;
  int ok = measure_histories(o, &base, &h);
  if (ok)
    print_history(o, &h, &base, cpu);
  return ok ? 0 : 1;
}

int bench_ingest(int argc, char **argv) {
  opts o;
  int rc = parse_opts(argc, argv, &o);
  if (rc >= 0)
    return rc;
  int cpu = bench_pin_cpu();
  return wants_history(&o) ? run_history(&o, cpu) : run_plain(&o, cpu);
}
