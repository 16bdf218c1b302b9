/* kith-bench ingest --history: the receiver with a history and the events
 * of S concurrent senders (see bench_crowd.h). */
#include <glib/gstdio.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_crowd.h"

#define T0 1700000000000ull
#define BUILD_BATCH 1024 /* events per transaction while building */

static const uint8_t store_key[32] = {0x6b, 0x69, 0x74, 0x68, 0x62};

/* A sender: its own replica on its own copy of the receiver's store, and
 * how far into the posted events it has read. */
typedef struct sender {
  kith_store *s;
  kith_group *g;
  bench_batch b;
  size_t seen;
} sender;

static uint64_t history_ts(long i) {
  return T0 + 1000 + (uint64_t)i;
}

static uint64_t event_ts(const crowd_opts *o, long t) {
  return history_ts(o->history) + 1000 + (uint64_t)t;
}

static char *store_path(const crowd *c, const char *name) {
  return g_build_filename(c->dir, name, NULL);
}

static kith_err make_idents(crowd *c, size_t n) {
  uint8_t seed[32];
  memset(seed, 0x52, sizeof seed);
  kith_err rc = kith_ident_from_seed(&c->receiver, seed);
  c->senders = g_new0(kith_ident, n);
  c->n_senders = n;
  for (size_t k = 0; rc == KITH_OK && k < n; k++) {
    memset(seed, 0x60, sizeof seed);
    seed[0] = (uint8_t)k;
    seed[1] = (uint8_t)(k >> 8);
    rc = kith_ident_from_seed(&c->senders[k], seed);
  }
  return rc;
}

/* Posts the history: messages [0, n) from the receiver, batched. */
static kith_err post_history(kith_group *g, bench_batch *b,
                             const crowd_opts *o) {
  char *text = g_malloc((size_t)o->text_bytes + 1);
  GPtrArray *acc = bench_acc_new();
  kith_err rc = KITH_OK;
  for (long i = 0; rc == KITH_OK && !b->bad && i < o->history; i++) {
    bench_text(text, (size_t)o->text_bytes, (uint64_t)i);
    bench_batch_open(b);
    rc = kith_group_send(g, text, (size_t)o->text_bytes, NULL, history_ts(i),
                         acc);
    g_ptr_array_set_size(acc, 0);
    bench_batch_add(b, 1);
  }
  g_ptr_array_unref(acc);
  g_free(text);
  return rc;
}

/* The receiver creates the group in its store, admits the senders, posts
 * the history and closes the store. */
static kith_err build_history(crowd *c, const crowd_opts *o) {
  const kith_group_options go = {.name = "bench",
                                 .owner_name = "receiver",
                                 .history = KITH_HISTORY_SHARED};
  char *path = store_path(c, "receiver.db");
  kith_store *s = NULL;
  kith_group *g = NULL;
  kith_accepted *a = NULL;
  bench_batch b;
  kith_err rc = kith_store_open(path, store_key, &s);
  g_free(path);
  if (rc == KITH_OK)
    rc = kith_group_create(&c->receiver, &go, T0, &g, &a);
  if (rc != KITH_OK) {
    kith_store_close(s);
    return rc;
  }
  kith_accepted_free(a);
  memcpy(c->gid, kith_group_id(g), 32);
  bench_batch_init(&b, s, g, BUILD_BATCH);
  bench_batch_open(&b);
  rc = kith_store_put_group(s, c->gid);
  if (rc == KITH_OK)
    rc = kith_group_attach_store(g, s);
  GPtrArray *acc = bench_acc_new();
  for (size_t k = 0; rc == KITH_OK && k < c->n_senders; k++) {
    char name[32];
    snprintf(name, sizeof name, "sender%zu", k);
    rc = bench_admit(g, &c->senders[k], name, T0 + 1 + 2 * k, acc);
    g_ptr_array_set_size(acc, 0);
  }
  g_ptr_array_unref(acc);
  if (rc == KITH_OK)
    rc = post_history(g, &b, o);
  bench_batch_commit(&b);
  kith_group_free(g);
  kith_store_close(s);
  return rc == KITH_OK && b.bad ? KITH_ERR_IO : rc;
}

/* Opens a replica of the group for me on the store at path, as the node
 * does at start (net/node.c load_group). */
static kith_err open_replica(const crowd *c, const kith_ident *me,
                             const char *path, kith_store **s, kith_group **g) {
  bench_batch b;
  *g = NULL;
  kith_err rc = kith_store_open(path, store_key, s);
  if (rc != KITH_OK)
    return rc;
  bench_batch_init(&b, *s, NULL, BUILD_BATCH);
  bench_batch_open(&b);
  rc = kith_group_open(c->gid, me, *s, g);
  b.g = *g;
  bench_batch_commit(&b);
  return rc == KITH_OK && b.bad ? KITH_ERR_IO : rc;
}

static kith_err open_senders(crowd *c, sender *snd) {
  char *from = store_path(c, "receiver.db");
  kith_err rc = KITH_OK;
  for (size_t k = 0; rc == KITH_OK && k < c->n_senders; k++) {
    char name[32];
    snprintf(name, sizeof name, "sender%zu.db", k);
    char *to = store_path(c, name);
    rc = bench_copy_file(from, to) ? KITH_OK : KITH_ERR_IO;
    if (rc == KITH_OK)
      rc = open_replica(c, &c->senders[k], to, &snd[k].s, &snd[k].g);
    bench_batch_init(&snd[k].b, snd[k].s, snd[k].g, BUILD_BATCH);
    g_free(to);
  }
  g_free(from);
  return rc;
}

static void close_senders(crowd *c, sender *snd) {
  for (size_t k = 0; k < c->n_senders; k++) {
    if (snd[k].s)
      bench_batch_commit(&snd[k].b);
    kith_group_free(snd[k].g);
    kith_store_close(snd[k].s);
    char name[32];
    snprintf(name, sizeof name, "sender%zu.db", k);
    char *p = store_path(c, name);
    static const char *const ext[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < G_N_ELEMENTS(ext); i++) {
      char *f = g_strconcat(p, ext[i], NULL);
      g_remove(f);
      g_free(f);
    }
    g_free(p);
  }
}

/* What the reordering needs of the posted events: their ids and parents'
 * ids, in posting order. */
typedef struct posted {
  GPtrArray *raw;   /* GBytes* */
  GArray *authors;  /* uint32_t: the sender of each */
  GByteArray *ids;  /* 32 bytes each */
  GByteArray *pids; /* the parents' ids, 32 bytes each, event after event */
  GArray *first;    /* uint32_t: where each event's parents start in pids */
} posted;

static void posted_init(posted *p) {
  p->raw = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  p->authors = g_array_new(FALSE, FALSE, sizeof(uint32_t));
  p->ids = g_byte_array_new();
  p->pids = g_byte_array_new();
  p->first = g_array_new(FALSE, FALSE, sizeof(uint32_t));
}

static void posted_clear(posted *p) {
  g_ptr_array_unref(p->raw);
  g_array_unref(p->authors);
  g_byte_array_unref(p->ids);
  g_byte_array_unref(p->pids);
  g_array_unref(p->first);
}

static void posted_add(posted *p, const kith_event *ev, uint32_t author) {
  uint32_t at = p->pids->len / 32;
  g_array_append_val(p->first, at);
  for (size_t i = 0; i < ev->n_parents; i++)
    g_byte_array_append(p->pids, ev->parents[i], 32);
  g_byte_array_append(p->ids, ev->id, 32);
  g_ptr_array_add(p->raw, g_bytes_new(ev->raw, ev->raw_len));
  g_array_append_val(p->authors, author);
}

/* Event j's parents: *n of them from the returned pointer. */
static const uint8_t *parents_of(const posted *p, uint32_t j, uint32_t *n) {
  uint32_t from = g_array_index(p->first, uint32_t, j);
  uint32_t to = j + 1 < p->first->len ? g_array_index(p->first, uint32_t, j + 1)
                                      : p->pids->len / 32;
  *n = to - from;
  return p->pids->data + (size_t)from * 32;
}

/* Is event i a parent of event j? */
static int is_parent(const posted *p, uint32_t i, uint32_t j) {
  uint32_t n;
  const uint8_t *par = parents_of(p, j, &n);
  for (uint32_t k = 0; k < n; k++)
    if (memcmp(par + (size_t)k * 32, p->ids->data + (size_t)i * 32, 32) == 0)
      return 1;
  return 0;
}

/* Sender k takes in what the others posted before position upto. */
static kith_err catch_up(sender *sk, size_t k, const posted *p, size_t upto,
                         uint64_t now) {
  GPtrArray *acc = bench_acc_new();
  kith_err rc = KITH_OK;
  for (; rc == KITH_OK && sk->seen < upto; sk->seen++) {
    if (g_array_index(p->authors, uint32_t, sk->seen) == k)
      continue;
    gsize len;
    const uint8_t *raw = g_bytes_get_data(p->raw->pdata[sk->seen], &len);
    bench_batch_open(&sk->b);
    rc = kith_group_receive(sk->g, raw, len, now, acc);
    g_ptr_array_set_size(acc, 0);
    bench_batch_add(&sk->b, 1);
  }
  g_ptr_array_unref(acc);
  return rc;
}

/* The senders post o->events messages (see bench_crowd.h). */
static kith_err post_all(crowd *c, const crowd_opts *o, sender *snd,
                         posted *p) {
  GPtrArray *acc = bench_acc_new();
  char *text = g_malloc((size_t)o->text_bytes + 1);
  uint64_t rng = o->seed;
  kith_err rc = KITH_OK;
  for (long t = 0; rc == KITH_OK && t < o->events; t++) {
    uint32_t k = (uint32_t)(bench_rand(&rng) % c->n_senders);
    size_t lag = (size_t)(bench_rand(&rng) % c->n_senders);
    size_t upto = (size_t)t > lag ? (size_t)t - lag : 0;
    sender *sk = &snd[k];
    uint64_t now = event_ts(o, t);
    rc = catch_up(sk, k, p, MAX(upto, sk->seen), now);
    bench_text(text, (size_t)o->text_bytes, (uint64_t)(o->history + t));
    bench_batch_open(&sk->b);
    if (rc == KITH_OK)
      rc = kith_group_send(sk->g, text, (size_t)o->text_bytes, NULL, now, acc);
    /* A message and nothing else: no rekey is owed in this group. */
    if (rc == KITH_OK && acc->len != 1)
      rc = KITH_ERR_STATE;
    if (rc == KITH_OK) {
      const kith_accepted *a = acc->pdata[0];
      posted_add(p, &a->ev, k);
      c->bytes += a->ev.raw_len;
      c->last_ts = now;
    }
    g_ptr_array_set_size(acc, 0);
    bench_batch_add(&sk->b, 1);
    if (sk->b.bad)
      rc = KITH_ERR_IO;
  }
  g_free(text);
  g_ptr_array_unref(acc);
  return rc;
}

typedef struct slot {
  double key;
  guint idx;
} slot;

static int cmp_slot(const void *a, const void *b) {
  const slot *x = a, *y = b;
  if (x->key != y->key)
    return x->key < y->key ? -1 : 1;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* How many events after i (at most w) come before i's first child: the
 * later siblings i can be delivered after without a child arriving before
 * it (the first descendant of i after it is always a child). */
static uint32_t sibling_room(const posted *p, uint32_t i, uint32_t w) {
  uint32_t n = p->raw->len, room = 0;
  for (uint32_t j = i + 1; j < n && room < w && !is_parent(p, i, j); j++)
    room++;
  return room;
}

/* How many events, delivered in this order (posting indexes), find a
 * parent that is no longer a head of the receiver (heads: its heads
 * before, 32 bytes each): what a late sibling, or a sender that had not
 * seen everything, makes. */
static size_t count_behind(const posted *p, const uint32_t *order,
                           GByteArray *heads) {
  GHashTable *h = g_hash_table_new_full(g_bytes_hash, g_bytes_equal,
                                        (GDestroyNotify)g_bytes_unref, NULL);
  size_t behind = 0;
  for (guint i = 0; i + 32 <= heads->len; i += 32)
    g_hash_table_add(h, g_bytes_new(heads->data + i, 32));
  for (uint32_t i = 0; i < p->raw->len; i++) {
    uint32_t n, e = order[i];
    const uint8_t *par = parents_of(p, e, &n);
    int all = 1;
    for (uint32_t k = 0; k < n; k++) {
      GBytes *id = g_bytes_new_static(par + (size_t)k * 32, 32);
      all &= g_hash_table_remove(h, id);
      g_bytes_unref(id);
    }
    behind += !all;
    g_hash_table_add(h, g_bytes_new(p->ids->data + (size_t)e * 32, 32));
  }
  g_hash_table_unref(h);
  return behind;
}

/* Delivery order: round(P x E) events, chosen at random among those with
 * a later sibling, each delivered after the next 1..W events, at most up
 * to its first child. */
static void reorder(crowd *c, const crowd_opts *o, const posted *p) {
  uint32_t n = p->raw->len;
  slot *sl = g_new(slot, n);
  uint32_t *room = g_new(uint32_t, n), *cand = g_new(uint32_t, n), m = 0;
  uint64_t rng = o->seed ^ 0x5eed5eed5eed5eedull;
  for (uint32_t i = 0; i < n; i++) {
    sl[i] = (slot){(double)i, i};
    room[i] = sibling_room(p, i, (uint32_t)o->window);
    if (room[i] > 0)
      cand[m++] = i;
  }
  size_t want = (size_t)(o->reorder * n + 0.5);
  for (uint32_t i = 0; i < m && c->delayed < want; i++, c->delayed++) {
    uint32_t r = i + (uint32_t)(bench_rand(&rng) % (m - i));
    uint32_t e = cand[r];
    cand[r] = cand[i];
    sl[e].key = (double)e + (double)(1 + bench_rand(&rng) % room[e]) + 0.5;
  }
  qsort(sl, n, sizeof *sl, cmp_slot);
  for (uint32_t i = 0; i < n; i++) {
    g_ptr_array_add(c->events, g_bytes_ref(p->raw->pdata[sl[i].idx]));
    cand[i] = sl[i].idx; /* the delivery order */
  }
  GByteArray *heads = g_byte_array_new();
  kith_group_heads(c->g, heads);
  c->behind = count_behind(p, cand, heads);
  g_byte_array_unref(heads);
  g_free(sl);
  g_free(room);
  g_free(cand);
}

kith_err crowd_build(crowd *c, const crowd_opts *o) {
  double t0 = bench_now();
  memset(c, 0, sizeof *c);
  c->events = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  c->dir = bench_tmpdir("ingest");
  if (!c->dir)
    return KITH_ERR_IO;
  kith_err rc = make_idents(c, (size_t)o->senders);
  if (rc == KITH_OK)
    rc = build_history(c, o);
  char *path = store_path(c, "receiver.db");
  c->store_bytes = bench_file_size(path);
  sender *snd = g_new0(sender, c->n_senders);
  posted p;
  posted_init(&p);
  if (rc == KITH_OK)
    rc = open_senders(c, snd);
  if (rc == KITH_OK)
    rc = post_all(c, o, snd, &p);
  close_senders(c, snd);
  g_free(snd);
  if (rc == KITH_OK)
    rc = open_replica(c, &c->receiver, path, &c->store, &c->g);
  if (rc == KITH_OK)
    reorder(c, o, &p);
  posted_clear(&p);
  g_free(path);
  c->build_s = bench_now() - t0;
  return rc;
}

void crowd_clear(crowd *c) {
  kith_group_free(c->g);
  kith_store_close(c->store);
  if (c->events)
    g_ptr_array_unref(c->events);
  kith_ident_clear(&c->receiver);
  for (size_t k = 0; k < c->n_senders; k++)
    kith_ident_clear(&c->senders[k]);
  g_free(c->senders);
  bench_rmtree(c->dir);
  g_free(c->dir);
  memset(c, 0, sizeof *c);
}
