/* kith-bench ingest: how fast one core takes in message events through the
 * full path (decode + verify + decrypt + state update + store), compared
 * with the raw Ed25519 verify rate measured in the same run.
 *
 * A sender replica builds the group (create, invite, add of the receiver)
 * and N message events with the public core API; nothing of that is
 * timed. The receiver replica is then fed the setup events, and only the
 * N messages are timed. Per-stage passes (decode alone, group receive
 * alone, store alone), each on fresh objects, say where the time goes. */
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <sched.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "core/group.h"
#include "core/invite.h"
#include "core/store.h"

#define EVENTS_DEFAULT 20000
#define EVENTS_MAX 1000000
#define TEXT_DEFAULT 100 /* bytes of message text: a typical chat line */
#define TARGET_RATIO 0.6
#define CHUNK 500 /* events per alternation of verify and ingest */
#define T0 1700000000000ull
#define HOUR_MS (3600ull * 1000)

typedef struct opts {
  long events;
  long text_bytes;
  int json;
} opts;

typedef struct corpus {
  kith_ident sender, receiver;
  uint8_t gid[32];
  GPtrArray *setup; /* GBytes*: create, invite, add */
  GPtrArray *msgs;  /* GBytes*: the N message events */
  size_t msg_bytes; /* total raw bytes of msgs */
} corpus;

typedef struct results {
  double verify_per_s, events_per_s;
  double decode_per_s, receive_per_s, store_per_s;
  int pinned_cpu;
} results;

static int parse_opts(int argc, char **argv, opts *o) {
  o->events = EVENTS_DEFAULT;
  o->text_bytes = TEXT_DEFAULT;
  o->json = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    long *target = NULL, max = 0;
    if (strcmp(a, "--json") == 0) {
      o->json = 1;
      continue;
    }
    if (strcmp(a, "--events") == 0)
      target = &o->events, max = EVENTS_MAX;
    else if (strcmp(a, "--text-bytes") == 0)
      target = &o->text_bytes, max = KITH_TEXT_MAX - 1;
    if (!target || i + 1 >= argc) {
      int help = strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
      fprintf(help ? stdout : stderr, "usage: kith-bench ingest [--events N] "
                                      "[--text-bytes B] [--json]\n");
      return help ? 0 : 2;
    }
    char *end = NULL;
    *target = strtol(argv[++i], &end, 10);
    if (!end || *end || *target < 1 || *target > max) {
      fprintf(stderr, "kith-bench ingest: %s must be 1..%ld\n", a, max);
      return 2;
    }
  }
  return -1; /* go on */
}

static void log_raw(GPtrArray *arr, kith_accepted *a) {
  g_ptr_array_add(arr, g_bytes_new(a->ev.raw, a->ev.raw_len));
  kith_accepted_free(a);
}

/* Moves every accepted event in acc to arr (as raw bytes). */
static void log_all(GPtrArray *arr, GPtrArray *acc) {
  for (guint i = 0; i < acc->len; i++) {
    const kith_accepted *a = acc->pdata[i];
    g_ptr_array_add(arr, g_bytes_new(a->ev.raw, a->ev.raw_len));
  }
  g_ptr_array_set_size(acc, 0);
}

/* The sender creates the group, invites and adds the receiver. */
static kith_err build_setup(corpus *c, kith_group **sender_g) {
  const kith_group_options go = {
      .name = "bench", .owner_name = "sender", .history = KITH_HISTORY_SHARED};
  kith_accepted *a = NULL;
  uint8_t inv_secret[32], inv_pk[32], join_sig[KITH_SIG_LEN];
  kith_err rc = kith_group_create(&c->sender, &go, T0, sender_g, &a);
  if (rc != KITH_OK)
    return rc;
  memcpy(c->gid, kith_group_id(*sender_g), 32);
  log_raw(c->setup, a);
  rc = kith_group_invite(*sender_g, 1, T0 + HOUR_MS, T0 + 1, inv_secret, &a);
  if (rc != KITH_OK)
    return rc;
  log_raw(c->setup, a);
  kith_invite_public_key(inv_secret, inv_pk);
  kith_invite_sign_join(inv_secret, c->gid, c->receiver.pk, join_sig);
  sodium_memzero(inv_secret, sizeof inv_secret);
  GPtrArray *acc =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
  rc = kith_group_admit(*sender_g, c->receiver.pk, "receiver", inv_pk, join_sig,
                        T0 + 2, acc);
  log_all(c->setup, acc);
  g_ptr_array_unref(acc);
  return rc;
}

/* N distinct texts of text_bytes each (a counter, then filler). */
static kith_err build_messages(corpus *c, kith_group *g, const opts *o) {
  char *text = g_malloc((size_t)o->text_bytes + 1);
  kith_err rc = KITH_OK;
  for (long i = 0; rc == KITH_OK && i < o->events; i++) {
    int n = snprintf(text, (size_t)o->text_bytes + 1, "message %ld ", i);
    for (long k = n; k < o->text_bytes; k++)
      text[k] = (char)('a' + (k % 26));
    text[o->text_bytes] = '\0';
    GPtrArray *acc =
        g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
    rc = kith_group_send(g, text, (size_t)o->text_bytes, NULL,
                         T0 + 10 + (uint64_t)i, acc);
    for (guint k = 0; rc == KITH_OK && k < acc->len; k++)
      c->msg_bytes += ((kith_accepted *)acc->pdata[k])->ev.raw_len;
    log_all(c->msgs, acc);
    g_ptr_array_unref(acc);
  }
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

/* Raw Ed25519: N distinct messages as long as the average event, signed by
 * the sender. */
typedef struct verify_set {
  size_t n, len;
  uint8_t *msgs, *sigs;
  int bad;
} verify_set;

static void verify_set_init(verify_set *v, const corpus *c) {
  v->n = c->msgs->len;
  v->len = c->msg_bytes / v->n;
  v->msgs = g_malloc(v->n * v->len);
  v->sigs = g_malloc(v->n * KITH_SIG_LEN);
  v->bad = 0;
  randombytes_buf(v->msgs, v->n * v->len);
  for (size_t i = 0; i < v->n; i++)
    crypto_sign_detached(v->sigs + i * KITH_SIG_LEN, NULL, v->msgs + i * v->len,
                         v->len, c->sender.sk);
}

static void verify_set_clear(verify_set *v) {
  g_free(v->msgs);
  g_free(v->sigs);
}

/* Verifies messages [from, to); returns the seconds it took. */
static double verify_range(verify_set *v, size_t from, size_t to,
                           const uint8_t pk[32]) {
  double t = bench_now();
  for (size_t i = from; i < to; i++)
    v->bad |= crypto_sign_verify_detached(v->sigs + i * KITH_SIG_LEN,
                                          v->msgs + i * v->len, v->len, pk);
  return bench_now() - t;
}

/* kith_event_decode alone (strict msgpack decode + signature check). */
static double measure_decode(const corpus *c) {
  int bad = 0;
  double t = bench_now();
  for (guint i = 0; i < c->msgs->len; i++) {
    gsize len;
    const uint8_t *raw = g_bytes_get_data(c->msgs->pdata[i], &len);
    kith_event ev;
    bad |= kith_event_decode(raw, len, &ev) != KITH_OK;
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
  GPtrArray *acc =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
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

/* The node's store batches: one transaction per STORE_BATCH events (the
 * node also commits once per main-loop round, whichever comes first); the
 * group writes into it and flushes its chains before the commit. */
#define STORE_BATCH 64
static int batch_step(kith_store *s, kith_group *g, unsigned *n) {
  int bad = 0;
  if (!kith_store_in_batch(s))
    bad |= kith_store_batch_begin(s) != KITH_OK;
  if (++*n % STORE_BATCH == 0)
    bad |=
        kith_group_flush(g) != KITH_OK || kith_store_batch_commit(s) != KITH_OK;
  return bad;
}

static int flush_batch(kith_store *s, kith_group *g) {
  return kith_store_in_batch(s) && (kith_group_flush(g) != KITH_OK ||
                                    kith_store_batch_commit(s) != KITH_OK);
}

/* A receiving replica, with a store (the full path) or without. */
typedef struct sink {
  kith_group *g;
  kith_store *s;
  GPtrArray *acc; /* scratch */
  int bad;
} sink;

/* Feeds messages [from, to) to k->g and stores or keeps what is accepted,
 * as the node does (net/node.c node_accepted). Returns the seconds it
 * took. */
static double ingest_range(const corpus *c, sink *k, guint from, guint to) {
  double t = bench_now();
  unsigned writes = 0;
  for (guint i = from; i < to; i++) {
    gsize len;
    const uint8_t *raw = g_bytes_get_data(c->msgs->pdata[i], &len);
    if (k->s)
      k->bad |= batch_step(k->s, k->g, &writes);
    k->bad |=
        kith_group_receive(k->g, raw, len, T0 + 10 + i, k->acc) != KITH_OK;
    g_ptr_array_set_size(k->acc, 0);
    /* The node asks after every batch from a peer whether it owes a rekey;
     * here it never does. */
    k->bad |= kith_group_maintain(k->g, T0 + 10 + i, k->acc) != KITH_OK ||
              k->acc->len != 0;
  }
  if (k->s)
    k->bad |= flush_batch(k->s, k->g);
  return bench_now() - t;
}

/* A fresh store in a new temporary directory, as the node opens it. */
static kith_store *store_new(char **dir_out) {
  static const uint8_t key[32] = {0x6b, 0x69, 0x74, 0x68};
  kith_store *s = NULL;
  char *dir = g_dir_make_tmp("kith-bench-XXXXXX", NULL);
  if (!dir)
    return NULL;
  char *path = g_build_filename(dir, "kith.db", NULL);
  if (kith_store_open(path, key, &s) != KITH_OK)
    s = NULL;
  g_free(path);
  *dir_out = dir;
  return s;
}

static void store_done(kith_store *s, char *dir) {
  static const char *const files[] = {"kith.db", "kith.db-wal", "kith.db-shm",
                                      "kith.db-journal"};
  kith_store_close(s);
  for (size_t i = 0; dir && i < G_N_ELEMENTS(files); i++) {
    char *p = g_build_filename(dir, files[i], NULL);
    g_remove(p);
    g_free(p);
  }
  if (dir)
    g_rmdir(dir);
  g_free(dir);
}

/* The full path (receive: decode, verify, decrypt, fold; then store),
 * measured in chunks alternating with the raw verifications, so that both
 * rates see the same machine load. */
static int measure_full(const corpus *c, results *r) {
  char *dir = NULL;
  verify_set v;
  sink k = {.s = store_new(&dir)};
  double tv = 0, tf = 0;
  k.g = k.s ? receiver_new(c, k.s) : NULL;
  k.acc = g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
  verify_set_init(&v, c);
  for (guint i = 0; k.g && i < c->msgs->len; i += CHUNK) {
    guint to = MIN(i + CHUNK, c->msgs->len);
    tv += verify_range(&v, i, to, c->sender.pk);
    tf += ingest_range(c, &k, i, to);
  }
  int ok = k.g && !k.bad && !v.bad;
  r->verify_per_s = (double)c->msgs->len / tv;
  r->events_per_s = (double)c->msgs->len / tf;
  verify_set_clear(&v);
  g_ptr_array_unref(k.acc);
  kith_group_free(k.g);
  store_done(k.s, dir);
  return ok;
}

/* Decode alone, and receive without a store (in memory), on fresh
 * objects: the full path less these is the store's share. */
static int measure_stages(const corpus *c, results *r) {
  sink k = {.g = receiver_new(c, NULL)};
  k.acc = g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
  r->decode_per_s = measure_decode(c);
  if (k.g)
    r->receive_per_s =
        (double)c->msgs->len / ingest_range(c, &k, 0, c->msgs->len);
  kith_group_free(k.g);
  r->store_per_s = 1.0 / (1.0 / r->events_per_s - 1.0 / r->receive_per_s);
  g_ptr_array_unref(k.acc);
  return r->decode_per_s > 0 && r->receive_per_s > 0 && !k.bad;
}

/* One core: pin to the CPU we are on so the figures are per core. */
static int pin_cpu(void) {
  int cpu = sched_getcpu();
  cpu_set_t set;
  if (cpu < 0)
    return -1;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0 ? cpu : -1;
}

static void print_json(const opts *o, const corpus *c, const results *r) {
  JsonBuilder *b = json_builder_new();
  char *cond = bench_conditions();
  struct {
    const char *k;
    double v;
  } nums[] = {
      {"verify_per_s", r->verify_per_s},
      {"events_per_s", r->events_per_s},
      {"ratio", r->events_per_s / r->verify_per_s},
      {"target_ratio", TARGET_RATIO},
      {"decode_per_s", r->decode_per_s},
      {"receive_per_s", r->receive_per_s},
      {"store_per_s", r->store_per_s},
  };
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "benchmark");
  json_builder_add_string_value(b, "ingest");
  for (size_t i = 0; i < G_N_ELEMENTS(nums); i++) {
    json_builder_set_member_name(b, nums[i].k);
    json_builder_add_double_value(b, nums[i].v);
  }
  json_builder_set_member_name(b, "events");
  json_builder_add_int_value(b, o->events);
  json_builder_set_member_name(b, "text_bytes");
  json_builder_add_int_value(b, o->text_bytes);
  json_builder_set_member_name(b, "event_bytes");
  json_builder_add_int_value(b, (gint64)(c->msg_bytes / c->msgs->len));
  json_builder_set_member_name(b, "pinned_cpu");
  json_builder_add_int_value(b, r->pinned_cpu);
  json_builder_set_member_name(b, "threads");
  json_builder_add_int_value(b, 1);
  json_builder_set_member_name(b, "store");
  json_builder_add_string_value(
      b, "sqlite WAL, one transaction per 64 events (as the node)");
  json_builder_set_member_name(b, "conditions");
  json_builder_add_string_value(b, cond);
  json_builder_end_object(b);
  JsonGenerator *gen = json_generator_new();
  JsonNode *root = json_builder_get_root(b);
  json_generator_set_root(gen, root);
  char *out = json_generator_to_data(gen, NULL);
  printf("%s\n", out);
  g_free(out);
  json_node_unref(root);
  g_object_unref(gen);
  g_object_unref(b);
  g_free(cond);
}

static void print_human(const opts *o, const corpus *c, const results *r) {
  char *cond = bench_conditions();
  double ratio = r->events_per_s / r->verify_per_s;
  printf("ingest: %ld message events, %ld-byte texts, %zu-byte events, "
         "1 thread (cpu %d)\n",
         o->events, o->text_bytes, c->msg_bytes / c->msgs->len, r->pinned_cpu);
  printf("  raw Ed25519 verify   %10.0f /s  %7.1f us\n", r->verify_per_s,
         1e6 / r->verify_per_s);
  printf("  full ingest path     %10.0f /s  %7.1f us  ratio %.2f "
         "(target >= %.1f: %s)\n",
         r->events_per_s, 1e6 / r->events_per_s, ratio, TARGET_RATIO,
         ratio >= TARGET_RATIO ? "met" : "NOT met");
  printf("  stages: decode+verify %.0f /s (%.1f us), group receive %.0f /s "
         "(%.1f us), store %.0f /s (%.1f us)\n",
         r->decode_per_s, 1e6 / r->decode_per_s, r->receive_per_s,
         1e6 / r->receive_per_s, r->store_per_s, 1e6 / r->store_per_s);
  printf("  store: sqlite WAL, one transaction per 64 events (as the node)\n");
  printf("  conditions: %s\n", cond);
  g_free(cond);
}

int bench_ingest(int argc, char **argv) {
  opts o;
  corpus c;
  results r = {0};
  int rc = parse_opts(argc, argv, &o);
  if (rc >= 0)
    return rc;
  r.pinned_cpu = pin_cpu();
  kith_err err = corpus_init(&c, &o);
  if (err != KITH_OK) {
    fprintf(stderr, "kith-bench ingest: setup failed: %s\n",
            kith_strerror(err));
    corpus_clear(&c);
    return 1;
  }
  int ok = measure_full(&c, &r) && measure_stages(&c, &r);
  if (ok && o.json)
    print_json(&o, &c, &r);
  else if (ok)
    print_human(&o, &c, &r);
  else
    fprintf(stderr, "kith-bench ingest: an event was rejected\n");
  corpus_clear(&c);
  return ok ? 0 : 1;
}
