/* Unit tests for core/gossip.h: a few engines driven by hand with a fake
 * clock and an in-memory, in-order network. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glib.h>
#include <sodium.h>
#include <string.h>

#include "vectors.h"
#include "core/codec.h"
#include "core/gossip.h"

#define NMAX 16
#define EVMAX 64

typedef struct frame {
  int from, to;
  uint8_t *data;
  size_t len;
} frame;

typedef struct net {
  int n;
  kith_gossip *g[NMAX];
  uint8_t id[NMAX][32];
  GQueue q;
  uint64_t now;
  int drop_from, drop_to; /* drop payload frames on this link (-1: none) */
  int mute[NMAX];         /* node i sends no payload frames (withholds) */
  int got[NMAX][EVMAX];   /* events accepted per node */
  int later[NMAX][EVMAX]; /* verdicts "not now" still to give */
  int hold[NMAX][EVMAX];  /* held for parents: KITH_GOSSIP_HELD, no verdict */
  int held;               /* payloads held without a verdict */
  int copies[NMAX];       /* payload frames received */
  int eph[NMAX];          /* ephemeral payloads accepted per node */
  uint8_t *store[EVMAX];  /* event payloads by index, for FETCH */
  uint64_t ts[EVMAX];
  GArray *trace; /* if set: types of the frames node trace_from sent */
  int trace_from;
  kith_out out;
} net;

/* Event e is 40 bytes of value e; its id is what the engine computes. */
#define EVLEN 40
#define HELD_LEN 41 /* payloads of this size are held, never judged */
#define HELD_SIGNED_LEN                                                        \
  42 /* held for parents, passed on (KITH_GOSSIP_HELD)                         \
      */

static void ev_bytes(int e, uint8_t b[EVLEN]) {
  memset(b, e, EVLEN);
}

static void ev_id(int e, uint8_t id[32]) {
  uint8_t b[EVLEN];
  ev_bytes(e, b);
  kith_gossip_payload_id(b, EVLEN, id);
}

static int ev_of_id(const uint8_t id[32]) {
  for (int e = 0; e < EVMAX; e++) {
    uint8_t x[32];
    ev_id(e, x);
    if (memcmp(x, id, 32) == 0)
      return e;
  }
  return -1;
}

static void set_store(net *t, int e) {
  if (t->store[e] == NULL) {
    t->store[e] = g_malloc(EVLEN);
    ev_bytes(e, t->store[e]);
    t->ts[e] = 1000 + (uint64_t)e;
  }
}

/* The application's verdict: events are valid (unless told to answer
 * "not now" first), payloads of HELD_LEN bytes wait for parents that
 * never come, anything else is junk. */
static void judge(net *t, int i, const kith_out_item *it, kith_out *next) {
  int e = it->len == EVLEN ? it->data[0] : -1;
  if (it->ephemeral) { /* valid, unless it starts with 0xff or is an event */
    int ok = it->len > 0 && it->data[0] != 0xff && it->len != EVLEN;
    t->eph[i] += ok;
    kith_gossip_verdict(t->g[i], it->id,
                        ok ? KITH_GOSSIP_VALID : KITH_GOSSIP_INVALID, 0, t->now,
                        next);
  } else if (it->len == HELD_LEN) {
    t->held++;
  } else if (it->len == HELD_SIGNED_LEN) {
    t->held++;
    kith_gossip_verdict(t->g[i], it->id, KITH_GOSSIP_HELD, 1000, t->now, next);
  } else if (e < 0 || e >= EVMAX) {
    kith_gossip_verdict(t->g[i], it->id, KITH_GOSSIP_INVALID, 0, t->now, next);
  } else if (t->hold[i][e]) {
    kith_gossip_verdict(t->g[i], it->id, KITH_GOSSIP_HELD, t->ts[e], t->now,
                        next);
  } else if (t->later[i][e] > 0) {
    t->later[i][e]--;
    kith_gossip_verdict(t->g[i], it->id, KITH_GOSSIP_LATER, 0, t->now, next);
  } else {
    set_store(t, e);
    t->got[i][e]++;
    kith_gossip_verdict(t->g[i], it->id, KITH_GOSSIP_VALID, t->ts[e], t->now,
                        next);
  }
}

static void drain(net *t, int i);

static void apply(net *t, int i, kith_out *o) {
  kith_out next;
  kith_out_init(&next);
  for (size_t k = 0; k < o->n; k++) {
    kith_out_item *it = &o->items[k];
    int j = it->peer[0];
    switch (it->kind) {
    case KITH_OUT_SEND: {
      int type = kith_gossip_frame_type(it->data, it->len);
      if ((type == KITH_GF_PAYLOAD || type == KITH_GF_EPHEMERAL) &&
          ((i == t->drop_from && j == t->drop_to) || t->mute[i]))
        break;
      frame *f = g_new(frame, 1);
      *f = (frame){i, j, kith_out_take_data(o, k), it->len};
      g_queue_push_tail(&t->q, f);
      break;
    }
    case KITH_OUT_DELIVER:
      judge(t, i, it, &next);
      break;
    case KITH_OUT_CONNECT: /* links come up at once, callee first */
      kith_gossip_link_up(t->g[j], t->id[i], t->now, &t->out);
      drain(t, j);
      kith_gossip_link_up(t->g[i], t->id[j], t->now, &next);
      break;
    case KITH_OUT_DISCONNECT:
      kith_gossip_link_down(t->g[j], t->id[i], t->now, &t->out);
      drain(t, j);
      break;
    case KITH_OUT_FETCH:
      for (size_t b = 0; b < it->len; b += 32) {
        int e = ev_of_id(it->data + b);
        assert_true(e >= 0);
        assert_non_null(t->store[e]);
        assert_int_equal(kith_gossip_send_payload(t->g[i], it->peer,
                                                  t->store[e], EVLEN, &next),
                         KITH_OK);
      }
      break;
    default:
      break;
    }
  }
  kith_out_reset(o);
  if (next.n > 0)
    apply(t, i, &next);
  kith_out_clear(&next);
}

static void drain(net *t, int i) {
  kith_out o = t->out; /* nested calls reuse t->out: move it aside */
  kith_out_init(&t->out);
  apply(t, i, &o);
  kith_out_clear(&o);
}

static void pump(net *t) {
  for (int guard = 0; guard < 200000 && !g_queue_is_empty(&t->q); guard++) {
    frame *f = g_queue_pop_head(&t->q);
    int type = kith_gossip_frame_type(f->data, f->len);
    if (type == KITH_GF_PAYLOAD)
      t->copies[f->to]++;
    if (t->trace != NULL && f->from == t->trace_from)
      g_array_append_val(t->trace, type);
    assert_int_equal(kith_gossip_recv(t->g[f->to], t->id[f->from], f->data,
                                      f->len, t->now, &t->out),
                     KITH_OK);
    drain(t, f->to);
    g_free(f->data);
    g_free(f);
  }
  assert_true(g_queue_is_empty(&t->q));
}

/* Advances the clock to `until`, ticking every engine at its deadlines. */
static void run_until(net *t, uint64_t until) {
  pump(t);
  for (;;) {
    uint64_t next = UINT64_MAX;
    for (int i = 0; i < t->n; i++) {
      uint64_t d = kith_gossip_next_deadline(t->g[i]);
      next = d < next ? d : next;
    }
    if (next > until)
      break;
    t->now = next > t->now ? next : t->now;
    for (int i = 0; i < t->n; i++)
      if (kith_gossip_next_deadline(t->g[i]) <= t->now) {
        kith_gossip_tick(t->g[i], t->now, &t->out);
        drain(t, i);
      }
    pump(t);
  }
  t->now = until;
}

static net *net_new(int n, uint32_t recon_ms) {
  net *t = g_new0(net, 1);
  kith_gossip_config cfg;
  kith_gossip_config_default(&cfg);
  cfg.shuffle_ms = 0;
  cfg.recon_ms = recon_ms;
  cfg.lazy_min_ms = 200;   /* no GRAFT within 200 ms of an announcement */
  cfg.flood_first_max = 0; /* first messages on the default tree */
  t->n = n;
  t->now = 1;
  t->drop_from = t->drop_to = -1;
  g_queue_init(&t->q);
  kith_out_init(&t->out);
  for (int i = 0; i < n; i++) {
    memset(t->id[i], 0xA0, 32);
    t->id[i][0] = (uint8_t)i;
    t->g[i] = kith_gossip_new(t->id[i], 42 + (uint64_t)i, &cfg);
    assert_non_null(t->g[i]);
  }
  return t;
}

static void net_free(net *t) {
  for (int i = 0; i < t->n; i++)
    kith_gossip_free(t->g[i]);
  frame *f;
  while ((f = g_queue_pop_head(&t->q)) != NULL) {
    g_free(f->data);
    g_free(f);
  }
  for (int e = 0; e < EVMAX; e++)
    g_free(t->store[e]);
  kith_out_clear(&t->out);
  g_free(t);
}

static void join(net *t, int i, int contact) {
  assert_int_equal(kith_gossip_join(t->g[i], t->id[contact], t->now, &t->out),
                   KITH_OK);
  drain(t, i);
  pump(t);
}

static void publish(net *t, int i, int e) {
  set_store(t, e);
  assert_int_equal(kith_gossip_publish(t->g[i], t->ts[e], t->store[e], EVLEN,
                                       t->now, &t->out),
                   KITH_OK);
  t->got[i][e]++;
  drain(t, i);
}

/* Triangle 0-1-2, all edges active and eager. */
static net *triangle(void) {
  net *t = net_new(3, 0);
  join(t, 1, 0);
  join(t, 2, 0);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++)
      if (i != j)
        assert_int_equal(kith_gossip_peer_state(t->g[i], t->id[j]), 1);
  return t;
}

/* A triangle after event 1 from 1 made its default tree: 1-0 and 1-2
 * eager, 0-2 lazy. */
static net *triangle_tree(void) {
  net *t = triangle();
  publish(t, 1, 1);
  run_until(t, t->now + 1000);
  assert_int_equal(kith_gossip_peer_state(t->g[2], t->id[0]), 0);
  assert_int_equal(kith_gossip_peer_state(t->g[0], t->id[2]), 0);
  return t;
}

static void test_prune_on_duplicate(void **state) {
  (void)state;
  net *t = triangle();
  publish(t, 0, 1);
  pump(t);
  assert_int_equal(t->got[1][1], 1);
  assert_int_equal(t->got[2][1], 1);
  /* 1 and 2 each got a second copy from the other: that edge is pruned */
  assert_int_equal(kith_gossip_peer_state(t->g[1], t->id[2]), 0);
  assert_int_equal(kith_gossip_peer_state(t->g[2], t->id[1]), 0);
  assert_int_equal(kith_gossip_peer_state(t->g[1], t->id[0]), 1);
  kith_gossip_stats st;
  kith_gossip_get_stats(t->g[1], &st);
  assert_int_equal(st.duplicates, 1);
  /* 0's second message: 0 gets a tree of its own (a copy of the default
   * tree, pruned by that source's duplicates only) */
  publish(t, 0, 2);
  run_until(t, t->now + 2000);
  assert_int_equal(kith_gossip_peer_eager(t->g[1], t->id[2], t->id[0]), 0);
  assert_int_equal(kith_gossip_peer_eager(t->g[2], t->id[1], t->id[0]), 0);
  assert_int_equal(kith_gossip_peer_eager(t->g[1], t->id[0], t->id[0]), 1);
  /* from then on, one copy per node */
  memset(t->copies, 0, sizeof t->copies);
  publish(t, 0, 3);
  run_until(t, t->now + 2000);
  assert_int_equal(t->copies[1], 1);
  assert_int_equal(t->copies[2], 1);
  net_free(t);
}

/* Sources sending at once prune only their own trees (Plumtree's one
 * tree would lose an edge to each of them and fall apart): after each
 * source's first messages (its second one starts its own tree), all
 * six sending at once cost one copy per node and message, and no GRAFT. */
/* Six nodes, every one linked to all, each source's tree settled by
 * three rounds of all six sending at once. */
static net *with_trees(int n) {
  net *t = net_new(n, 0);
  for (int i = 1; i < n; i++)
    join(t, i, i - 1);
  run_until(t, 30000);                      /* the overlay fills */
  for (int round = 0; round < 3; round++) { /* every node at once */
    for (int i = 0; i < n; i++)
      publish(t, i, 10 + round * n + i);
    run_until(t, t->now + 2000);
  }
  return t;
}

/* Every node linked to all. */
static net *six_with_trees(void) {
  return with_trees(6);
}

static void test_concurrent_sources_keep_their_trees(void **state) {
  (void)state;
  net *t = six_with_trees();
  kith_gossip_stats before[6], after[6];
  for (int i = 0; i < 6; i++)
    kith_gossip_get_stats(t->g[i], &before[i]);
  memset(t->copies, 0, sizeof t->copies);
  for (int i = 0; i < 6; i++) /* all at once again: trees hold */
    publish(t, i, 40 + i);
  run_until(t, t->now + 2000);
  for (int i = 0; i < 6; i++) {
    kith_gossip_get_stats(t->g[i], &after[i]);
    assert_int_equal(after[i].grafts_sent, before[i].grafts_sent);
    assert_int_equal(t->copies[i], 5); /* one of each other node's */
    for (int e = 40; e < 46; e++)
      assert_int_equal(t->got[i][e], 1);
  }
  net_free(t);
}

/* The IHAVEs node i has queued: each must follow a PAYLOAD of i to the
 * same neighbour. */
static int ihaves_after_payloads(net *t, int i) {
  int ihaves = 0;
  const frame *prev = NULL;
  for (GList *l = t->q.head; l; l = l->next) {
    const frame *f = l->data;
    assert_int_equal(f->from, i);
    if (kith_gossip_frame_type(f->data, f->len) == KITH_GF_IHAVE) {
      ihaves++;
      assert_non_null(prev);
      assert_int_equal(kith_gossip_frame_type(prev->data, prev->len),
                       KITH_GF_PAYLOAD);
      assert_int_equal(prev->to, f->to);
    }
    prev = f;
  }
  return ihaves;
}

/* Announcements waiting for their batch to a neighbour go out with the
 * next payload pushed to that neighbour, in the same moment (so the node
 * sends them in one write), not as a packet of their own at the batch's
 * end (docs/protocol.md 11.7). The clock does not move: no batch is due,
 * so every IHAVE seen rides with a payload. */
static void test_ihave_rides_with_a_payload_to_the_same_neighbour(void **s) {
  (void)s;
  net *t = six_with_trees();
  int ihaves = 0;
  for (int i = 0; i < 6; i++) {
    publish(t, i, 50 + i);
    ihaves += ihaves_after_payloads(t, i);
    pump(t); /* the others announce it to some neighbours: batched */
  }
  assert_true(ihaves > 0);
  run_until(t, t->now + 2000);
  for (int i = 0; i < 6; i++)
    for (int e = 50; e < 56; e++)
      assert_int_equal(t->got[i][e], 1);
  net_free(t);
}

static void test_graft_after_lazy_timeout(void **state) {
  (void)state;
  net *t = triangle();
  publish(t, 0, 1);
  publish(t, 0, 2);
  run_until(t, t->now + 1000); /* 1-2 is lazy in 0's tree now */
  assert_int_equal(kith_gossip_peer_eager(t->g[2], t->id[1], t->id[0]), 0);
  t->drop_from = 0;
  t->drop_to = 2; /* the eager push to 2 is lost */
  publish(t, 0, 5);
  run_until(t, t->now + 100); /* IHAVE from 1 arrived, no graft yet */
  assert_int_equal(t->got[2][5], 0);
  kith_gossip_stats st;
  kith_gossip_get_stats(t->g[2], &st);
  assert_int_equal(st.grafts_sent, 0);
  run_until(t, t->now + 1000);
  kith_gossip_get_stats(t->g[2], &st);
  assert_int_equal(st.grafts_sent, 1);
  assert_int_equal(t->got[2][5], 1);
  /* the graft made 1-2 eager on both sides, in the tree of source 0 */
  assert_int_equal(kith_gossip_peer_eager(t->g[2], t->id[1], t->id[0]), 1);
  assert_int_equal(kith_gossip_peer_eager(t->g[1], t->id[2], t->id[0]), 1);
  net_free(t);
}

static void test_active_view_bound(void **state) {
  (void)state;
  net *t = net_new(14, 0);
  for (int i = 1; i < 14; i++) {
    join(t, i, 0); /* everyone through the same contact */
    for (int k = 0; k < t->n; k++)
      assert_true(kith_gossip_active(t->g[k], NULL, 0) <=
                  KITH_GOSSIP_ACTIVE_MAX);
  }
  run_until(t, 20000);
  size_t total = 0;
  for (int k = 0; k < t->n; k++) {
    size_t a = kith_gossip_active(t->g[k], NULL, 0);
    assert_true(a >= 1 && a <= KITH_GOSSIP_ACTIVE_MAX);
    total += a;
  }
  assert_true(total < (size_t)t->n * (t->n - 1)); /* not a full mesh */
  /* and a message still reaches everyone */
  publish(t, 5, 3);
  run_until(t, t->now + 5000);
  for (int k = 0; k < t->n; k++)
    assert_int_equal(t->got[k][3], 1);
  net_free(t);
}

static void test_link_failure_repair(void **state) {
  (void)state;
  net *t = net_new(4, 0);
  join(t, 1, 0);
  kith_gossip_add_passive(t->g[1], t->id[2]);
  kith_gossip_add_passive(t->g[1], t->id[3]);
  assert_int_equal(kith_gossip_active(t->g[1], NULL, 0), 1);
  /* 0 crashes: 1 must replace it from its passive view */
  kith_gossip_link_down(t->g[1], t->id[0], t->now, &t->out);
  drain(t, 1);
  assert_int_equal(kith_gossip_peer_state(t->g[1], t->id[0]), -1);
  run_until(t, t->now + 3000);
  size_t a = kith_gossip_active(t->g[1], NULL, 0);
  assert_true(a >= 1);
  assert_true(kith_gossip_peer_state(t->g[1], t->id[2]) >= 0 ||
              kith_gossip_peer_state(t->g[1], t->id[3]) >= 0);
  net_free(t);
}

/* Engine i holds event e already (known to reconciliation). */
static void know(net *t, int i, int e) {
  uint8_t id[32];
  ev_id(e, id);
  set_store(t, e);
  assert_int_equal(kith_gossip_add_known(t->g[i], t->ts[e], id), KITH_OK);
  t->got[i][e] = 1;
}

/* Engines 0 and 1 linked; 0 holds events [0,a) and 1 holds [b,c). */
static void recon_case(int a, int b, int c) {
  net *t = net_new(2, 1000);
  join(t, 1, 0);
  for (int e = 0; e < EVMAX; e++) {
    if (e < a)
      know(t, 0, e);
    if (e >= b && e < c)
      know(t, 1, e);
  }
  run_until(t, 10000);
  kith_gossip_stats s0, s1;
  kith_gossip_get_stats(t->g[0], &s0);
  kith_gossip_get_stats(t->g[1], &s1);
  assert_true(s0.recon_rounds + s1.recon_rounds > 0);
  int hi = a > c ? a : c;
  for (int e = 0; e < hi; e++) {
    int want = e < a || (e >= b && e < c);
    assert_int_equal(t->got[0][e], want);
    assert_int_equal(t->got[1][e], want);
  }
  /* nothing already held was sent: copies are exactly the difference */
  int diff = 0;
  for (int e = 0; e < hi; e++)
    diff += (e < a) != (e >= b && e < c);
  assert_int_equal(t->copies[0] + t->copies[1], diff);
  net_free(t);
}

static void test_reconcile_equal(void **state) {
  (void)state;
  recon_case(50, 0, 50);
}

static void test_reconcile_disjoint(void **state) {
  (void)state;
  recon_case(20, 20, 45);
}

static void test_reconcile_nearly_equal(void **state) {
  (void)state;
  recon_case(60, 0, 57); /* 1 lacks 3 of 60 */
}

/* With periodic anti-entropy off, a reconciliation asked for at once (as
 * the node does when a link comes up) brings a newcomer the whole set. */
static void test_reconcile_now_catches_up_without_waiting(void **state) {
  (void)state;
  net *t = net_new(2, 0);
  join(t, 1, 0);
  for (int e = 0; e < 30; e++) {
    uint8_t id[32];
    ev_id(e, id);
    set_store(t, e);
    assert_int_equal(kith_gossip_add_known(t->g[0], t->ts[e], id), KITH_OK);
  }
  assert_int_equal(kith_gossip_reconcile(t->g[1], t->id[0], t->now, &t->out),
                   KITH_OK);
  drain(t, 1);
  pump(t);
  for (int e = 0; e < 30; e++)
    assert_int_equal(t->got[1][e], 1);
  assert_int_equal(kith_gossip_reconcile(t->g[1], t->id[1], t->now, &t->out),
                   KITH_ERR_STATE); /* itself: never linked */
  uint8_t stranger[32] = {0x77};
  assert_int_equal(kith_gossip_reconcile(t->g[1], stranger, t->now, &t->out),
                   KITH_ERR_STATE);
  net_free(t);
}

/* A reconciliation asks for what it found missing when it ends, in one
 * go (docs/protocol.md 11.7.4), not round by round: the peer then has the
 * whole difference at once to send parents first, not in the order its
 * rounds found the ranges. 1 lacks one event in one range and 20 in
 * others: its WANT follows its last RECON frame and names all 21. */
static void
test_reconcile_asks_for_the_whole_difference_at_its_end(void **state) {
  (void)state;
  net *t = net_new(2, 0);
  join(t, 1, 0);
  for (int e = 0; e < EVMAX; e++) {
    know(t, 0, e);
    if (e != 5 && (e < 40 || e >= 60))
      know(t, 1, e);
  }
  t->trace = g_array_new(FALSE, FALSE, sizeof(int));
  t->trace_from = 1;
  assert_int_equal(kith_gossip_reconcile(t->g[1], t->id[0], t->now, &t->out),
                   KITH_OK);
  drain(t, 1);
  pump(t);
  int last_recon = -1, first_want = -1, wants = 0, recons = 0;
  for (guint k = 0; k < t->trace->len; k++) {
    int type = g_array_index(t->trace, int, k);
    if (type == KITH_GF_RECON)
      last_recon = (int)k, recons++;
    if (type == KITH_GF_WANT) {
      first_want = first_want < 0 ? (int)k : first_want;
      wants++;
    }
  }
  g_array_free(t->trace, TRUE);
  t->trace = NULL;
  assert_true(recons >= 2); /* more than one round */
  assert_true(first_want > last_recon);
  assert_int_equal(wants, 1);
  kith_gossip_stats st;
  kith_gossip_get_stats(t->g[1], &st);
  assert_int_equal(st.wants_sent, 21);
  for (int e = 0; e < EVMAX; e++)
    assert_int_equal(t->got[1][e], 1);
  net_free(t);
}

/* Node i reconciles with node peer, and the frames run: how many ids it
 * has asked for (WANT) in all. */
static uint64_t reconcile_wants(net *t, int i, int peer) {
  kith_gossip_stats st;
  assert_int_equal(kith_gossip_reconcile(t->g[i], t->id[peer], t->now, &t->out),
                   KITH_OK);
  drain(t, i);
  pump(t);
  kith_gossip_get_stats(t->g[i], &st);
  return st.wants_sent;
}

/* At a reconciliation's end every id not seen is asked of that peer, even
 * if another peer was asked for it lately: each stream is then the whole
 * difference from its shallowest event on, never the part another stream
 * lacks. The same peer is not asked again within KITH_GOSSIP_NEED_WAIT_MS
 * (the ids are in its stream), unless an id came and was forgotten ("not
 * now": it came before its parents). */
static void
test_reconcile_asks_each_peer_for_the_whole_difference(void **state) {
  (void)state;
  net *t = net_new(3, 0);
  join(t, 1, 0);
  join(t, 2, 1);
  for (int e = 0; e < 10; e++) {
    know(t, 0, e);
    know(t, 2, e);
  }
  t->drop_from = 0; /* 0's answers are lost */
  t->drop_to = 1;
  /* rounds: with 0; with 0 after a WANT's own wait (graft_retry_ms);
   * with 2 (event 3 comes and is forgotten); with 2 at once; with 0 after
   * KITH_GOSSIP_NEED_WAIT_MS */
  const int peer[] = {0, 0, 2, 2, 0};
  const uint64_t wait[] = {0, 1000, 0, 0, KITH_GOSSIP_NEED_WAIT_MS};
  const uint64_t wants[] = {10, 10, 20, 21, 21};
  for (size_t r = 0; r < G_N_ELEMENTS(wait); r++) {
    t->now += wait[r];
    t->later[1][3] = r == 2;
    assert_int_equal(reconcile_wants(t, 1, peer[r]), wants[r]);
    for (int e = 0; e < 10; e++)
      assert_int_equal(t->got[1][e], r >= 2 && (e != 3 || r >= 3));
  }
  net_free(t);
}

/* A payload held for its parents (no verdict yet) is asked for again at
 * the next reconciliation's end: the group may forget it before its
 * parents come, and a stream without it would hold everything after it. */
static void test_reconcile_asks_again_for_a_held_event(void **state) {
  (void)state;
  net *t = net_new(2, 0);
  join(t, 1, 0);
  for (int e = 0; e < 5; e++)
    know(t, 0, e);
  t->hold[1][2] = 1;
  kith_gossip_stats st;
  for (int r = 0; r < 2; r++) {
    t->now += KITH_GOSSIP_NEED_WAIT_MS;
    assert_int_equal(kith_gossip_reconcile(t->g[1], t->id[0], t->now, &t->out),
                     KITH_OK);
    drain(t, 1);
    pump(t);
    kith_gossip_get_stats(t->g[1], &st);
    assert_int_equal(st.wants_sent, r == 0 ? 5 : 6);
    assert_int_equal(st.duplicates, r == 0 ? 0 : 1); /* still held */
  }
  for (int e = 0; e < 5; e++)
    assert_int_equal(t->got[1][e], e != 2);
  net_free(t);
}

/* A side whose last message gets no answer (the peer had nothing more to
 * say) never ends; what it found missing is asked for once the
 * reconciliation has been quiet for KITH_GOSSIP_NEED_QUIET_MS. Here 0
 * starts; 1 lacks events 0 and 1, and learns so from a message that it
 * must answer (0 lacks 15 of its events); 0 then has nothing more to say. */
static void test_reconcile_quiet_side_asks_all_the_same(void **state) {
  (void)state;
  net *t = net_new(2, 0);
  join(t, 1, 0);
  for (int e = 0; e < EVMAX; e++) {
    if (e != 20 && e < 50)
      know(t, 0, e);
    if (e >= 2)
      know(t, 1, e);
  }
  assert_int_equal(kith_gossip_reconcile(t->g[0], t->id[1], t->now, &t->out),
                   KITH_OK);
  drain(t, 0);
  pump(t);
  kith_gossip_stats s0, s1;
  kith_gossip_get_stats(t->g[0], &s0);
  kith_gossip_get_stats(t->g[1], &s1);
  assert_int_equal(s0.wants_sent, 15); /* 20 and 50 to 63 */
  assert_int_equal(s1.wants_sent, 0);  /* its side is still open */
  uint64_t t0 = t->now;
  run_until(t, t0 + KITH_GOSSIP_NEED_QUIET_MS - 1);
  kith_gossip_get_stats(t->g[1], &s1);
  assert_int_equal(s1.wants_sent, 0);
  run_until(t, t0 + KITH_GOSSIP_NEED_QUIET_MS);
  kith_gossip_get_stats(t->g[1], &s1);
  assert_int_equal(s1.wants_sent, 2);
  for (int e = 0; e < EVMAX; e++)
    assert_int_equal(t->got[1][e], 1);
  net_free(t);
}

/* The caller's known set (a node's store): the engine reads it, adds
 * every valid event to it, reconciles only once it is ready, and answers
 * WANTs for ids in it that it never saw (stored before it started) by
 * asking the caller to fetch them. */
typedef struct ext_set {
  kith_recon_set *s;
  int ready, adds;
} ext_set;

static void ext_add(void *ctx, uint64_t ts, const uint8_t id[32]) {
  ext_set *x = ctx;
  x->adds++;
  assert_int_equal(kith_recon_set_add(x->s, ts, id), KITH_OK);
}

static int ext_ready(void *ctx) {
  return ((ext_set *)ctx)->ready;
}

static void test_reconcile_reads_the_callers_set(void **state) {
  (void)state;
  net *t = net_new(2, 0);
  ext_set x = {kith_recon_set_new(), 0, 0};
  kith_gossip_set_known(
      t->g[0],
      &(kith_gossip_known){kith_recon_set_source(x.s), &x, ext_add, ext_ready});
  join(t, 1, 0);
  pump(t);
  for (int e = 0; e < 30; e++) { /* stored before the engine started */
    uint8_t id[32];
    ev_id(e, id);
    set_store(t, e);
    assert_int_equal(kith_recon_set_add(x.s, t->ts[e], id), KITH_OK);
  }
  /* not ready: a peer's reconciliation is not answered, none is started */
  assert_int_equal(kith_gossip_reconcile(t->g[1], t->id[0], t->now, &t->out),
                   KITH_OK);
  drain(t, 1);
  pump(t);
  assert_int_equal(kith_gossip_reconcile(t->g[0], t->id[1], t->now, &t->out),
                   KITH_OK);
  drain(t, 0);
  assert_true(g_queue_is_empty(&t->q));
  for (int e = 0; e < 30; e++)
    assert_int_equal(t->got[1][e], 0);
  /* ready: the newcomer gets everything, fetched by the caller */
  x.ready = 1;
  assert_int_equal(kith_gossip_reconcile(t->g[1], t->id[0], t->now, &t->out),
                   KITH_OK);
  drain(t, 1);
  pump(t);
  for (int e = 0; e < 30; e++)
    assert_int_equal(t->got[1][e], 1);
  assert_int_equal(x.adds, 0);
  /* a local event goes to the caller's set */
  uint8_t b[EVLEN];
  ev_bytes(40, b);
  set_store(t, 40);
  assert_int_equal(
      kith_gossip_publish(t->g[0], t->ts[40], b, EVLEN, t->now, &t->out),
      KITH_OK);
  drain(t, 0);
  pump(t);
  assert_int_equal(x.adds, 1);
  assert_int_equal(kith_recon_set_size(x.s), 31);
  net_free(t);
  kith_recon_set_free(x.s);
}

static void feed(kith_gossip *g, const uint8_t *from, const uint8_t *b,
                 size_t n, kith_out *o) {
  assert_int_equal(kith_gossip_recv(g, from, b, n, 5, o), KITH_ERR_DECODE);
  assert_int_equal(o->n, 0);
}

static void test_malformed_frames(void **state) {
  (void)state;
  net *t = triangle();
  kith_gossip *g = t->g[0];
  const uint8_t *p = t->id[1];
  kith_gossip_stats before, after;
  kith_gossip_get_stats(g, &before);
  static const uint8_t junk[] = {0xff, 0x00, 0x13};
  static const uint8_t trunc[] = {0x96, 0x08, 0xc4, 0x20, 0x01};
  static const uint8_t noncanon[] = {0x91, 0xcc, 0x01}; /* [1] as uint8 */
  static const uint8_t map[] = {0x81, 0x01, 0x02};
  static const uint8_t badlen[] = {0x92, 0x09, 0xdd, 0x0f, 0xff, 0xff, 0xff};
  static const uint8_t prune_extra[] = {0x94, 0x0b, 0x00, 0x00, 0x00};
  static const uint8_t ihave_bad[] = {0x93, 0x09, 0x91, 0xc4, 0x01,
                                      0x00, 0xc4, 0x01, 0x00};
  static const uint8_t fj_ttl[] = {0x93, 0x02, 0xc4, 0x00, 0xcd, 0x10, 0x00};
  feed(g, p, junk, sizeof junk, &t->out);
  feed(g, p, trunc, sizeof trunc, &t->out);
  feed(g, p, noncanon, sizeof noncanon, &t->out);
  feed(g, p, map, sizeof map, &t->out);
  feed(g, p, badlen, sizeof badlen, &t->out);
  feed(g, p, prune_extra, sizeof prune_extra, &t->out);
  feed(g, p, ihave_bad, sizeof ihave_bad, &t->out);
  feed(g, p, fj_ttl, sizeof fj_ttl, &t->out);
  feed(g, p, junk, 0, &t->out);
  static const uint8_t unknown[] = {0x92, 0x63, 0x01}; /* type 99 */
  assert_int_equal(kith_gossip_recv(g, p, unknown, sizeof unknown, 5, &t->out),
                   KITH_OK);
  assert_int_equal(t->out.n, 0);
  kith_gossip_get_stats(g, &after);
  assert_int_equal(after.malformed - before.malformed, 9);
  assert_int_equal(after.unknown - before.unknown, 1);
  assert_int_equal(after.active, before.active);
  assert_int_equal(after.eager, before.eager);
  /* random bytes never crash it */
  uint8_t buf[256];
  for (int i = 0; i < 2000; i++) {
    size_t n = 1 + (size_t)(i % 255);
    randombytes_buf_deterministic(
        buf, n, (const uint8_t *)"fuzz-seed-for-gossip-tests-32byt");
    buf[0] = (uint8_t)(0x91 + i % 6);
    buf[1] = (uint8_t)(i % 15);
    kith_err err = kith_gossip_recv(g, p, buf, n, 5, &t->out);
    assert_true(err == KITH_OK || err == KITH_ERR_DECODE);
    kith_out_reset(&t->out);
  }
  net_free(t);
}

static void test_invalid_not_forwarded(void **state) {
  (void)state;
  net *t = net_new(3, 0);
  join(t, 1, 0);
  join(t, 2, 1);
  uint8_t id[32], body[8] = {0};
  kith_gossip_payload_id(body, sizeof body, id);
  /* 0 pushes an event that 1's application rejects */
  kith_out o;
  kith_out_init(&o);
  assert_int_equal(kith_gossip_publish(t->g[0], 5, body, 8, t->now, &o),
                   KITH_OK);
  for (size_t k = 0; k < o.n; k++) {
    if (o.items[k].kind != KITH_OUT_SEND || o.items[k].peer[0] != 1)
      continue;
    assert_int_equal(kith_gossip_recv(t->g[1], t->id[0], o.items[k].data,
                                      o.items[k].len, t->now, &t->out),
                     KITH_OK);
  }
  kith_out_clear(&o);
  int delivered = 0;
  for (size_t k = 0; k < t->out.n; k++) {
    if (t->out.items[k].kind != KITH_OUT_DELIVER)
      continue;
    delivered++;
    assert_memory_equal(t->out.items[k].id, id, 32); /* computed here */
  }
  assert_int_equal(delivered, 1);
  kith_out_reset(&t->out);
  kith_gossip_verdict(t->g[1], id, KITH_GOSSIP_INVALID, 0, t->now, &t->out);
  assert_int_equal(t->out.n, 1);
  assert_int_equal(t->out.items[0].kind, KITH_OUT_PENALIZE);
  assert_int_equal(t->out.items[0].peer[0], 0);
  kith_out_reset(&t->out);
  net_free(t);
}

/* A frame as a hostile neighbour would send it: from -> to, at once. */
static kith_err inject(net *t, int from, int to, const uint8_t *buf,
                       size_t len) {
  kith_err err =
      kith_gossip_recv(t->g[to], t->id[from], buf, len, t->now, &t->out);
  drain(t, to);
  pump(t);
  return err;
}

/* PAYLOAD [8, source, hops, push, payload]. */
static void payload_frame(const uint8_t *data, size_t len, int push,
                          kith_pack *pk) {
  kith_pack_init(pk);
  kith_pack_array(pk, 5);
  kith_pack_uint(pk, KITH_GF_PAYLOAD);
  kith_pack_uint(pk, 0xa1a1a1a1a1a1a1a1ull);
  kith_pack_uint(pk, 1);
  kith_pack_uint(pk, (uint64_t)push);
  kith_pack_bin(pk, data, len);
}

/* Node `from` sends payload[len] to node `to` in a PAYLOAD frame, pushed
 * (push 1) or as an answer (push 0). */
static void send_payload(net *t, int from, int to, const uint8_t *data,
                         size_t len, int push) {
  kith_pack pk;
  payload_frame(data, len, push, &pk);
  assert_int_equal(inject(t, from, to, (uint8_t *)pk.sb.data, pk.sb.size),
                   KITH_OK);
  kith_pack_clear(&pk);
}

/* Node `from` pushes payload[len] to node `to` in a PAYLOAD frame. */
static void inject_payload(net *t, int from, int to, const uint8_t *data,
                           size_t len) {
  send_payload(t, from, to, data, len, 1);
}

/* Payloads k0 .. k1 - 1: len bytes of `fill`, k in the first four. */
static void inject_numbered(net *t, int from, int to, size_t len, uint8_t fill,
                            uint32_t k0, uint32_t k1) {
  uint8_t buf[64];
  assert_true(len <= sizeof buf && len >= sizeof k0);
  for (uint32_t k = k0; k < k1; k++) {
    memset(buf, fill, len);
    memcpy(buf, &k, sizeof k);
    inject_payload(t, from, to, buf, len);
  }
}

/* IHAVEs node i has sent so far. */
static uint64_t ihaves_sent(net *t, int i) {
  kith_gossip_stats st;
  kith_gossip_get_stats(t->g[i], &st);
  return st.ihave_sent;
}

/* IHAVE [9, short ids, hops] of event e, as node `from` had it at hops. */
static void inject_ihave(net *t, int from, int to, int e, uint8_t hops) {
  uint8_t id[32];
  kith_pack pk;
  ev_id(e, id);
  kith_pack_init(&pk);
  kith_pack_array(&pk, 3);
  kith_pack_uint(&pk, KITH_GF_IHAVE);
  kith_pack_bin(&pk, id, 8);
  kith_pack_bin(&pk, &hops, 1);
  assert_int_equal(inject(t, from, to, (uint8_t *)pk.sb.data, pk.sb.size),
                   KITH_OK);
  kith_pack_clear(&pk);
}

/* Triangle with 0's tree settled: 0 pushes to 1 and 2, the edge 1-2 is
 * lazy, so 1 and 2 announce 0's messages to each other. */
static net *triangle_with_tree_of_0(void) {
  net *t = triangle();
  publish(t, 0, 1);
  publish(t, 0, 2);
  run_until(t, t->now + 1000);
  assert_int_equal(kith_gossip_peer_eager(t->g[2], t->id[1], t->id[0]), 0);
  assert_int_equal(kith_gossip_peer_eager(t->g[1], t->id[2], t->id[0]), 0);
  return t;
}

/* An id waiting in the batch for a neighbour that announces that id to
 * us meanwhile is not announced to it (docs/protocol.md 11.7): it has
 * the payload. Without that announcement, it is. */
static void test_no_ihave_to_a_neighbour_that_announced_it(void **state) {
  (void)state;
  net *t = triangle_with_tree_of_0();
  uint64_t before = ihaves_sent(t, 2);
  publish(t, 0, 3);
  run_until(t, t->now + 1000); /* both batches go at once */
  assert_int_equal(ihaves_sent(t, 2), before + 1);
  before = ihaves_sent(t, 2);
  publish(t, 0, 4);
  pump(t); /* 1 and 2 have it; each has it waiting for the other */
  inject_ihave(t, 1, 2, 4, 1);
  run_until(t, t->now + 1000);
  assert_int_equal(ihaves_sent(t, 2), before);
  assert_int_equal(ihaves_sent(t, 1), before + 1); /* 1 heard nothing */
  for (int i = 1; i < 3; i++)
    for (int e = 3; e <= 4; e++)
      assert_int_equal(t->got[i][e], 1);
  net_free(t);
}

static uint64_t all_ihaves_sent(net *t) {
  uint64_t n = 0;
  for (int i = 0; i < t->n; i++)
    n += ihaves_sent(t, i);
  return n;
}

/* Each neighbour's announcements wait ihave_batch_ms (50 ms) from the
 * first one queued for it (docs/protocol.md 11.7), not from the first
 * queued for any neighbour: a message 30 ms after another is announced
 * to neighbours that had nothing waiting 80 ms after the first, none in
 * between. */
static void test_ihave_batch_per_neighbour(void **state) {
  (void)state;
  net *t = six_with_trees();
  uint64_t start = t->now;
  publish(t, 0, 60);
  run_until(t, start + 30);
  publish(t, 3, 61);
  run_until(t, start + 50);
  uint64_t at50 = all_ihaves_sent(t);
  run_until(t, start + 79);
  assert_int_equal(all_ihaves_sent(t), at50);
  run_until(t, start + 80);
  assert_true(all_ihaves_sent(t) > at50);
  run_until(t, t->now + 1000);
  for (int i = 0; i < 6; i++) {
    assert_int_equal(t->got[i][60], 1);
    assert_int_equal(t->got[i][61], 1);
  }
  net_free(t);
}

/* Ids asked of a peer at a reconciliation's end are not asked of it again
 * while its stream of them still flows (one came within
 * KITH_GOSSIP_NEED_WAIT_MS), however long ago they were asked: behind a
 * slow link the rest is on its way. Once the stream has been quiet that
 * long, they are asked again. */
static void test_reconcile_waits_for_a_flowing_stream(void **state) {
  (void)state;
  net *t = net_new(2, 0);
  join(t, 1, 0);
  for (int e = 0; e < 10; e++)
    know(t, 0, e);
  t->drop_from = 0; /* 0's answers are slow: the test hands them over */
  t->drop_to = 1;
  const uint64_t wait[] = {0, KITH_GOSSIP_NEED_WAIT_MS,
                           KITH_GOSSIP_NEED_WAIT_MS - 1, 1};
  const uint64_t wants[] = {10, 10, 10, 18};
  for (size_t r = 0; r < G_N_ELEMENTS(wait); r++) {
    t->now += wait[r];
    if (r == 1) { /* two answers come: the stream flows */
      for (int e = 0; e < 2; e++) {
        send_payload(t, 0, 1, t->store[e], EVLEN, 0);
        pump(t);
      }
    }
    assert_int_equal(reconcile_wants(t, 1, 0), wants[r]);
  }
  for (int e = 0; e < 10; e++)
    assert_int_equal(t->got[1][e], e < 2);
  net_free(t);
}

/* Issue 8, attack 5: a neighbour sent 3 junk bytes claiming the id of a
 * genuine event, the id was marked invalid for good and the real event
 * was dropped when it came, even an hour later. Ids are now computed from
 * the bytes: the claim cannot be made, and junk marks only its own id. */
static void test_junk_claiming_an_id_cannot_censor_the_event(void **state) {
  (void)state;
  net *t = net_new(3, 0);
  join(t, 2, 0); /* 0 publishes, 2 is the victim, 1 the censor */
  join(t, 1, 2);
  uint8_t id[32], junk[3] = {0xde, 0xad, 0x00};
  ev_id(5, id);
  /* the old frame, [8, id, ts, hops, push, junk]: malformed now */
  kith_pack pk;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 6);
  kith_pack_uint(&pk, KITH_GF_PAYLOAD);
  kith_pack_bin(&pk, id, 32);
  kith_pack_uint(&pk, 1000);
  kith_pack_uint(&pk, 1);
  kith_pack_uint(&pk, 1);
  kith_pack_bin(&pk, junk, sizeof junk);
  assert_int_equal(inject(t, 1, 2, (uint8_t *)pk.sb.data, pk.sb.size),
                   KITH_ERR_DECODE);
  kith_pack_clear(&pk);
  /* the junk in today's frame is judged as what it is */
  inject_payload(t, 1, 2, junk, sizeof junk);
  kith_gossip_stats st;
  kith_gossip_get_stats(t->g[2], &st);
  assert_int_equal(st.invalid, 1);
  assert_int_equal(st.malformed, 1);
  /* an hour later the genuine event arrives and is taken */
  run_until(t, t->now + 3600 * 1000);
  publish(t, 0, 5);
  run_until(t, t->now + 2000);
  assert_int_equal(t->got[2][5], 1);
  assert_int_equal(t->got[1][5], 1);
  /* the junk, sent again, is not even delivered again */
  inject_payload(t, 1, 2, junk, sizeof junk);
  kith_gossip_get_stats(t->g[2], &st);
  assert_int_equal(st.invalid, 1);
  assert_int_equal(st.duplicates, 2); /* junk again, and 5 from 1 or 0 */
  net_free(t);
}

/* A censor that is the victim's only neighbour when an event is sent,
 * and never passes a payload on (its IHAVEs and reconciliation still
 * claim it): once the victim links to an honest member, much later, the
 * event arrives by anti-entropy. */
static void test_withholding_neighbour_cannot_stop_an_event(void **state) {
  (void)state;
  net *t = net_new(3, 5000);
  join(t, 2, 1); /* 0 - 1 - 2 (in this order, 0 and 2 never meet) */
  join(t, 1, 0);
  assert_int_equal(kith_gossip_peer_state(t->g[2], t->id[0]), -1);
  t->mute[1] = 1; /* 1 is the censor */
  publish(t, 0, 9);
  run_until(t, t->now + 3600 * 1000);
  assert_int_equal(t->got[1][9], 1);
  assert_int_equal(t->got[2][9], 0); /* withheld for an hour */
  kith_gossip_stats st;
  kith_gossip_get_stats(t->g[2], &st);
  assert_true(st.wants_sent > 0); /* it asked the censor, in vain */
  kith_gossip_add_passive(t->g[2], t->id[0]);
  run_until(t, t->now + 30000);
  assert_int_equal(t->got[2][9], 1);
  net_free(t);
}

/* "Not now" (a limit, an event dropped by the application) is never a
 * permanent mark: the next copy is delivered and accepted. */
static void test_not_now_verdict_is_not_permanent(void **state) {
  (void)state;
  net *t = net_new(3, 2000);
  join(t, 2, 1); /* 0 - 1 - 2 */
  join(t, 1, 0);
  t->later[2][4] = 1;
  publish(t, 0, 4);
  pump(t);
  assert_int_equal(t->got[2][4], 0);
  kith_gossip_stats st;
  kith_gossip_get_stats(t->g[2], &st);
  assert_int_equal(st.later, 1);
  assert_int_equal(st.invalid, 0);
  run_until(t, t->now + 10000); /* anti-entropy brings it again */
  assert_int_equal(t->got[2][4], 1);
  net_free(t);
}

/* One neighbour's payloads that are held for ever (parents that never
 * come) fill only its own share of the table of payloads awaiting a
 * verdict: events from the others still get through at once. */
static void
test_held_flood_from_one_neighbour_blocks_no_one_else(void **state) {
  (void)state;
  net *t = net_new(3, 0);
  join(t, 2, 0);
  join(t, 1, 2);
  inject_numbered(t, 1, 2, HELD_LEN, 0x77, 0, KITH_GOSSIP_PENDING_MAX);
  assert_int_equal(t->held, KITH_GOSSIP_PENDING_PEER_MAX);
  publish(t, 0, 3);
  pump(t);
  assert_int_equal(t->got[2][3], 1);
  /* after KITH_GOSSIP_PENDING_MS they are forgotten, without blame */
  run_until(t, t->now + 2 * KITH_GOSSIP_PENDING_MS);
  kith_gossip_stats st;
  kith_gossip_get_stats(t->g[2], &st);
  assert_int_equal(st.invalid, 0);
  /* the last one, delivered again */
  inject_numbered(t, 1, 2, HELD_LEN, 0x77, KITH_GOSSIP_PENDING_MAX - 1,
                  KITH_GOSSIP_PENDING_MAX);
  assert_int_equal(t->held, KITH_GOSSIP_PENDING_PEER_MAX + 1);
  net_free(t);
}

/* Events held for their parents (KITH_GOSSIP_HELD: signed by a member,
 * passed on) leave the sender's share of payloads awaiting a verdict: the
 * parents that release them come from the same neighbour, after them. A
 * healed partition stalled when a neighbour's 256 held children filled
 * its share and every parent it sent was dropped as an overflow. */
static void test_held_children_leave_room_for_their_parents(void **state) {
  (void)state;
  net *t = net_new(2, 0);
  join(t, 1, 0);
  uint32_t n = KITH_GOSSIP_PENDING_MAX + 100;
  inject_numbered(t, 0, 1, HELD_SIGNED_LEN, 0x66, 0, n);
  assert_int_equal(t->held, n); /* none dropped as an overflow */
  kith_gossip_stats st;
  kith_gossip_get_stats(t->g[1], &st);
  assert_int_equal(st.overflows, 0);
  /* the parent, from the same neighbour, is delivered and accepted */
  uint8_t ev[EVLEN];
  ev_bytes(5, ev);
  inject_payload(t, 0, 1, ev, sizeof ev);
  assert_int_equal(t->got[1][5], 1);
  /* held ones are counted apart up to KITH_GOSSIP_HELD_MAX, then again */
  inject_numbered(t, 0, 1, HELD_SIGNED_LEN, 0x66, n,
                  KITH_GOSSIP_HELD_MAX + KITH_GOSSIP_PENDING_MAX);
  assert_int_equal(t->held,
                   KITH_GOSSIP_HELD_MAX + KITH_GOSSIP_PENDING_PEER_MAX);
  net_free(t);
}

/* WANT (the node asks for a held event's missing parents) is noted once,
 * sent after the lazy wait unless the event comes first, and when the
 * asked neighbour does not answer, another announcer is asked, without
 * changing any tree. */
static void test_unanswered_want_moves_to_another_announcer(void **state) {
  (void)state;
  net *t = triangle_tree();
  uint8_t id[32];
  size_t asked = 0;
  /* 0's first event goes to every neighbour; its second one along 0's
   * own tree, a copy of its default tree: to 1 only */
  publish(t, 0, 5);
  run_until(t, t->now + 1000);
  t->mute[1] = 1; /* 1 passes nothing on and will not answer */
  publish(t, 0, 6);
  pump(t);
  ev_id(6, id);
  assert_int_equal(t->got[1][6], 1);
  assert_int_equal(t->got[2][6], 0);
  assert_int_equal(
      kith_gossip_want(t->g[2], t->id[1], id, 1, t->now, &asked, &t->out),
      KITH_OK);
  assert_int_equal(asked, 1);
  drain(t, 2);
  assert_int_equal(
      kith_gossip_want(t->g[2], t->id[1], id, 1, t->now, &asked, &t->out),
      KITH_OK);
  assert_int_equal(asked, 0); /* noted already */
  drain(t, 2);
  run_until(t, t->now + 2000); /* WANT to 1, 0's IHAVE, WANT to 0 */
  assert_int_equal(t->got[2][6], 1);
  kith_gossip_stats st;
  kith_gossip_get_stats(t->g[2], &st);
  assert_int_equal(st.wants_sent, 2);
  assert_int_equal(st.grafts_sent, 0);
  net_free(t);
}

/* Node i asks node from for event e (kith_gossip_want): how many ids it
 * noted to ask (0: asked lately already). */
static size_t want_event(net *t, int i, int from, int e) {
  uint8_t id[32];
  size_t asked = 0;
  ev_id(e, id);
  assert_int_equal(
      kith_gossip_want(t->g[i], t->id[from], id, 1, t->now, &asked, &t->out),
      KITH_OK);
  drain(t, i);
  return asked;
}

/* An asked id waits for its answer graft_retry_ms, or two measured round
 * trips if longer: behind a slow link (here answers take 1 s) an id is
 * not asked again before its answer could have come. */
static void test_want_retry_waits_two_round_trips(void **state) {
  (void)state;
  net *t = net_new(2, 0);
  join(t, 1, 0);
  for (int e = 0; e < 2; e++)
    know(t, 0, e);
  /* a WANT for event 0 whose answer takes 1,000 ms: the round trip */
  assert_int_equal(want_event(t, 1, 0, 0), 1);
  t->now = kith_gossip_next_deadline(t->g[1]);
  kith_gossip_tick(t->g[1], t->now, &t->out);
  drain(t, 1); /* the WANT waits in the queue */
  t->now += 1000;
  pump(t);
  assert_int_equal(t->got[1][0], 1);
  /* event 1 is asked of a neighbour that does not answer */
  t->mute[0] = 1;
  assert_int_equal(want_event(t, 1, 0, 1), 1);
  uint64_t base = t->now; /* sent after the lazy wait, 500 ms at most */
  run_until(t, base + 500);
  kith_gossip_stats st;
  kith_gossip_get_stats(t->g[1], &st);
  assert_int_equal(st.wants_sent, 2);
  /* past graft_retry_ms (300 ms), within two round trips: still asked */
  run_until(t, base + 1500);
  assert_int_equal(want_event(t, 1, 0, 1), 0);
  /* after two round trips it may be asked again */
  run_until(t, base + 2600);
  assert_int_equal(want_event(t, 1, 0, 1), 1);
  net_free(t);
}

/* The push field of a PAYLOAD frame (-1 if buf is none). */
static int payload_push(const uint8_t *buf, size_t len) {
  msgpack_unpacked u;
  int push = -1;
  msgpack_unpacked_init(&u);
  if (msgpack_unpack_next(&u, (const char *)buf, len, NULL) ==
          MSGPACK_UNPACK_SUCCESS &&
      u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size == 5 &&
      u.data.via.array.ptr[0].via.u64 == KITH_GF_PAYLOAD)
    push = (int)u.data.via.array.ptr[3].via.u64;
  msgpack_unpacked_destroy(&u);
  return push;
}

/* An event published on the default tree goes to every neighbour: along
 * the tree as a push (1), to the lazy ones as a repair (3), whose
 * duplicates where it meets the tree prune nothing and which makes no
 * edge. */
static void
test_published_event_enters_the_tree_at_every_neighbour(void **state) {
  (void)state;
  net *t = triangle_tree();
  kith_gossip_stats before[3], after[3];
  for (int i = 0; i < 3; i++)
    kith_gossip_get_stats(t->g[i], &before[i]);
  set_store(t, 5);
  assert_int_equal(kith_gossip_publish(t->g[0], t->ts[5], t->store[5], EVLEN,
                                       t->now, &t->out),
                   KITH_OK);
  int pushes[3] = {-1, -1, -1};
  for (size_t k = 0; k < t->out.n; k++)
    if (t->out.items[k].kind == KITH_OUT_SEND)
      pushes[t->out.items[k].peer[0]] =
          payload_push(t->out.items[k].data, t->out.items[k].len);
  assert_int_equal(pushes[1], 1); /* along the tree */
  assert_int_equal(pushes[2], 3); /* a repair to the lazy neighbour */
  t->got[0][5]++;
  drain(t, 0);
  run_until(t, t->now + 1000);
  assert_int_equal(t->got[1][5], 1);
  assert_int_equal(t->got[2][5], 1);
  for (int i = 0; i < 3; i++) {
    kith_gossip_get_stats(t->g[i], &after[i]);
    assert_int_equal(after[i].prunes_sent, before[i].prunes_sent);
    assert_int_equal(after[i].grafts_sent, before[i].grafts_sent);
  }
  assert_int_equal(after[2].duplicates, before[2].duplicates + 1);
  /* the tree is as it was */
  assert_int_equal(kith_gossip_peer_state(t->g[2], t->id[0]), 0);
  assert_int_equal(kith_gossip_peer_state(t->g[0], t->id[2]), 0);
  assert_int_equal(kith_gossip_peer_state(t->g[1], t->id[2]), 1);
  assert_int_equal(kith_gossip_peer_state(t->g[2], t->id[1]), 1);
  net_free(t);
}

/* Node `from` sends node `to` GRAFT [10, short id, [], dflt]: the push
 * field of the one frame `to` answers with (-1: not one PAYLOAD). */
static int graft_answer(net *t, int from, int to, const uint8_t id[32],
                        int dflt) {
  kith_pack pk;
  kith_out o;
  int push = -1;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 4);
  kith_pack_uint(&pk, KITH_GF_GRAFT);
  kith_pack_bin(&pk, id, 8);
  kith_pack_array(&pk, 0);
  kith_pack_uint(&pk, (uint64_t)dflt);
  kith_out_init(&o);
  if (kith_gossip_recv(t->g[to], t->id[from], (const uint8_t *)pk.sb.data,
                       pk.sb.size, t->now, &o) == KITH_OK &&
      o.n == 1 && o.items[0].kind == KITH_OUT_SEND)
    push = payload_push(o.items[0].data, o.items[0].len);
  kith_out_clear(&o);
  kith_pack_clear(&pk);
  return push;
}

/* A GRAFT for an event of the default tree is answered with a repair
 * (push 3) that makes no edge, unless its default flag asks for the
 * tree: then with a push (1), and the grafter becomes eager. */
static void
test_graft_asks_for_an_edge_of_the_default_tree_or_not(void **state) {
  (void)state;
  net *t = triangle_tree();
  uint8_t id[32];
  ev_id(1, id);
  assert_int_equal(graft_answer(t, 2, 0, id, 0), 3);
  assert_int_equal(kith_gossip_peer_state(t->g[0], t->id[2]), 0);
  assert_int_equal(graft_answer(t, 2, 0, id, 1), 1);
  assert_int_equal(kith_gossip_peer_state(t->g[0], t->id[2]), 1);
  net_free(t);
}

/* Node `from` tells node `to` it has the event whose id starts with
 * id[0..8), at 1 hop on its default tree (IHAVE). */
static void announce(net *t, int from, int to, const uint8_t id[8]) {
  kith_pack pk;
  uint8_t hops = 1;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 3);
  kith_pack_uint(&pk, KITH_GF_IHAVE);
  kith_pack_bin(&pk, id, 8);
  kith_pack_bin(&pk, &hops, 1);
  assert_int_equal(inject(t, from, to, (const uint8_t *)pk.sb.data, pk.sb.size),
                   KITH_OK);
  kith_pack_clear(&pk);
}

/* ms later: the default flag of the GRAFT node i sends then (-1: none);
 * its frames are then delivered. */
static int graft_flag_after(net *t, int i, uint64_t ms) {
  kith_out o;
  int flag = -1;
  t->now += ms;
  kith_out_init(&o);
  kith_gossip_tick(t->g[i], t->now, &o);
  for (size_t k = 0; k < o.n; k++) {
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (o.items[k].kind == KITH_OUT_SEND &&
        msgpack_unpack_next(&u, (const char *)o.items[k].data, o.items[k].len,
                            NULL) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size == 4 &&
        u.data.via.array.ptr[0].via.u64 == KITH_GF_GRAFT)
      flag = (int)u.data.via.array.ptr[3].via.u64;
    msgpack_unpacked_destroy(&u);
  }
  apply(t, i, &o);
  kith_out_clear(&o);
  pump(t);
  return flag;
}

/* A copy of the default tree lost on its way is fetched without changing
 * the tree (GRAFT default 0, answered with a repair); when the next one
 * is missing too, with no push of the tree since, the GRAFT asks for an
 * edge of the default tree (default 1). */
/* The triangle's tree 0 - 1 - 2 (2 a leaf of the default tree, 0 - 2
 * lazy), event 5 published by 0 and lost on its way to 2 (1 passes
 * nothing on, the repair 0 -> 2 is dropped), then announced to 2 by 0. */
static net *lost_at_leaf(uint8_t id[32]) {
  net *t = triangle_tree();
  t->mute[1] = 1;
  t->drop_from = 0;
  t->drop_to = 2;
  publish(t, 0, 5);
  pump(t);
  t->drop_from = t->drop_to = -1;
  assert_int_equal(t->got[1][5], 1);
  assert_int_equal(t->got[2][5], 0);
  ev_id(5, id);
  announce(t, 0, 2, id);
  return t;
}

static void test_lost_copy_is_fetched_without_an_edge(void **state) {
  (void)state;
  uint8_t id[32], other[8];
  net *t = lost_at_leaf(id);
  assert_int_equal(graft_flag_after(t, 2, 600), 0);
  assert_int_equal(t->got[2][5], 1); /* a repair: no edge either side */
  assert_int_equal(kith_gossip_peer_state(t->g[2], t->id[0]), 0);
  assert_int_equal(kith_gossip_peer_state(t->g[0], t->id[2]), 0);
  memset(other, 0xee, sizeof other); /* an event 2 has not had either */
  announce(t, 0, 2, other);
  assert_int_equal(graft_flag_after(t, 2, 600), 1);
  assert_int_equal(kith_gossip_peer_state(t->g[0], t->id[2]), 1);
  net_free(t);
}

/* The lazy wait of the default tree (here lazy_timeout_ms, 500 ms: no
 * round trip is measured) is scaled by 6/5 and divided by the node's
 * eager edges in that tree: 300 ms at node 1 (two edges), capped at
 * 500 ms at node 2 (a leaf). */
static void test_default_tree_lazy_wait_by_edges(void **state) {
  (void)state;
  net *t = triangle_tree();
  uint8_t a[8], b[8];
  memset(a, 0xaa, sizeof a); /* events no node has */
  memset(b, 0xbb, sizeof b);
  announce(t, 0, 1, a);
  announce(t, 1, 2, b);
  assert_int_equal(graft_flag_after(t, 1, 299), -1);
  assert_int_equal(graft_flag_after(t, 1, 1), 0);
  assert_int_equal(graft_flag_after(t, 2, 199), -1);
  assert_int_equal(graft_flag_after(t, 2, 1), 0);
  net_free(t);
}

/* A leaf of the default tree that fetched an event by its GRAFT does not
 * push it back along its one edge (that neighbour's push is what was
 * lost): the neighbour, which has it, gets no second copy. */
static void test_leaf_does_not_push_a_grafted_copy_back(void **state) {
  (void)state;
  uint8_t id[32];
  net *t = lost_at_leaf(id);
  int copies = t->copies[1];
  assert_int_equal(kith_gossip_peer_state(t->g[2], t->id[1]), 1);
  assert_int_equal(graft_flag_after(t, 2, 600), 0);
  run_until(t, t->now + 1000);
  assert_int_equal(t->got[2][5], 1);
  assert_int_equal(t->copies[1], copies);
  net_free(t);
}

/* An event held for its parents but signed by a member is passed on at
 * once (the nodes behind do not wait for this one's parents); its final
 * verdict does not send it again, and a bad one withdraws it. */
static void test_held_event_is_passed_on_before_its_verdict(void **state) {
  (void)state;
  net *t = net_new(3, 0);
  join(t, 2, 1); /* 0 - 1 - 2 */
  join(t, 1, 0);
  uint8_t id[32];
  t->hold[1][8] = t->hold[1][9] = 1;
  publish(t, 0, 8);
  pump(t);
  assert_int_equal(t->got[1][8], 0); /* held at 1 */
  assert_int_equal(t->got[2][8], 1); /* yet 2 has it */
  assert_int_equal(t->copies[2], 1);
  ev_id(8, id);
  kith_gossip_verdict(t->g[1], id, KITH_GOSSIP_VALID, t->ts[8], t->now,
                      &t->out);
  drain(t, 1);
  pump(t);
  assert_int_equal(t->copies[2], 1); /* not sent twice */
  /* a held event that turns out bad is no longer served */
  publish(t, 0, 9);
  pump(t);
  ev_id(9, id);
  kith_gossip_verdict(t->g[1], id, KITH_GOSSIP_INVALID, 0, t->now, &t->out);
  drain(t, 1);
  kith_pack pk;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 2);
  kith_pack_uint(&pk, KITH_GF_WANT);
  kith_pack_array(&pk, 1);
  kith_pack_bin(&pk, id, 32);
  int before = t->copies[2];
  assert_int_equal(inject(t, 2, 1, (uint8_t *)pk.sb.data, pk.sb.size), KITH_OK);
  kith_pack_clear(&pk);
  assert_int_equal(t->copies[2], before);
  net_free(t);
}

/* ... but not one whose source is unknown (source 0: looked up in a store
 * for a WANT, a catch-up), held or valid: that stream brings its parents
 * first, and children that come early would only fill the held events of
 * the nodes behind this one. They catch up by their own reconciliation. */
static void test_catch_up_event_is_not_passed_on(void **state) {
  (void)state;
  net *t = net_new(3, 0);
  join(t, 2, 1); /* 0 - 1 - 2 */
  join(t, 1, 0);
  uint8_t id[32];
  ev_id(8, id);
  set_store(t, 8);
  t->hold[1][8] = 1;
  assert_int_equal(
      kith_gossip_send_payload(t->g[0], t->id[1], t->store[8], EVLEN, &t->out),
      KITH_OK);
  drain(t, 0);
  run_until(t, t->now + 2000);       /* time for announcements and grafts */
  assert_int_equal(t->got[1][8], 0); /* held at 1 */
  assert_int_equal(t->copies[2], 0);
  t->hold[1][8] = 0;
  kith_gossip_verdict(t->g[1], id, KITH_GOSSIP_VALID, t->ts[8], t->now,
                      &t->out);
  drain(t, 1);
  run_until(t, t->now + 2000);
  assert_int_equal(t->copies[2], 0);
  assert_int_equal(kith_gossip_reconcile(t->g[2], t->id[1], t->now, &t->out),
                   KITH_OK);
  drain(t, 2);
  pump(t);
  assert_int_equal(t->got[2][8], 1);
  net_free(t);
}

/* A cached event sent in answer to a reconciliation's WANT names its
 * source (the same answer serves a live repair, which goes on along the
 * tree), but the asker, which asked for it at the reconciliation's end,
 * takes it as a catch-up and does not pass it on. */
static void
test_reconciled_event_is_not_passed_on_with_its_source(void **state) {
  (void)state;
  net *t = net_new(3, 0);
  join(t, 2, 1); /* 1 - 2; 0 alone publishes, then links to 1 */
  publish(t, 0, 8);
  pump(t);
  join(t, 1, 0);
  run_until(t, t->now + 2000);
  assert_int_equal(t->got[1][8], 0);
  assert_int_equal(kith_gossip_reconcile(t->g[1], t->id[0], t->now, &t->out),
                   KITH_OK);
  drain(t, 1);
  pump(t);
  assert_int_equal(t->got[1][8], 1);
  run_until(t, t->now + 2000); /* time for announcements and grafts */
  assert_int_equal(t->copies[2], 0);
  net_free(t);
}

/* A WANT is answered in the order asked, whether an event is in the
 * cache (sent at once) or must be looked up (FETCH): a newcomer asks for a
 * history parents first, and holds only so many events whose parents have
 * not come. Answering the cached events (the newest) ahead of the fetched
 * ones (the oldest) stalled joins under load. */
static void test_want_answered_in_the_order_asked(void **state) {
  (void)state;
  net *t = net_new(2, 0);
  join(t, 1, 0);
  static const int asked[] = {0, 4, 1, 5, 2};
  for (int e = 0; e < 3; e++) { /* old: known, not cached */
    uint8_t id[32];
    ev_id(e, id);
    set_store(t, e);
    assert_int_equal(kith_gossip_add_known(t->g[0], t->ts[e], id), KITH_OK);
  }
  publish(t, 0, 4); /* new: cached */
  publish(t, 0, 5);
  pump(t);
  kith_pack pk;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 2);
  kith_pack_uint(&pk, KITH_GF_WANT);
  kith_pack_array(&pk, G_N_ELEMENTS(asked));
  for (size_t i = 0; i < G_N_ELEMENTS(asked); i++) {
    uint8_t id[32];
    ev_id(asked[i], id);
    kith_pack_bin(&pk, id, 32);
  }
  kith_out o;
  kith_out_init(&o);
  assert_int_equal(kith_gossip_recv(t->g[0], t->id[1], (uint8_t *)pk.sb.data,
                                    pk.sb.size, t->now, &o),
                   KITH_OK);
  kith_pack_clear(&pk);
  int answered[G_N_ELEMENTS(asked)], n = 0;
  for (size_t k = 0; k < o.n; k++) {
    const kith_out_item *it = &o.items[k];
    assert_int_equal(it->peer[0], 1);
    if (it->kind == KITH_OUT_FETCH) {
      for (size_t b = 0; b < it->len; b += 32) {
        assert_true(n < (int)G_N_ELEMENTS(asked));
        answered[n++] = ev_of_id(it->data + b);
      }
    } else if (it->kind == KITH_OUT_SEND &&
               kith_gossip_frame_type(it->data, it->len) == KITH_GF_PAYLOAD) {
      assert_true(n < (int)G_N_ELEMENTS(asked));
      answered[n++] = it->data[it->len - 1]; /* the payload ends the frame */
    }
  }
  kith_out_clear(&o);
  assert_int_equal(n, G_N_ELEMENTS(asked));
  for (int i = 0; i < n; i++)
    assert_int_equal(answered[i], asked[i]);
  net_free(t);
}

/* In a small group a source's first message floods its neighbours and
 * starts that source's own tree: sources starting at once never share
 * the default tree, and their next messages cost one copy per node. */
static void test_small_group_starts_trees_with_first_messages(void **state) {
  (void)state;
  net *t = net_new(5, 0);
  for (int i = 0; i < 5; i++) {
    kith_gossip_config cfg;
    kith_gossip_config_default(&cfg); /* flood_first_max 16 */
    cfg.shuffle_ms = 0;
    cfg.recon_ms = 0;
    kith_gossip_free(t->g[i]);
    t->g[i] = kith_gossip_new(t->id[i], 42 + (uint64_t)i, &cfg);
  }
  for (int i = 1; i < 5; i++)
    join(t, i, i - 1);
  run_until(t, 30000);
  for (int i = 0; i < 5; i++) /* every node's first message, at once */
    publish(t, i, 10 + i);
  run_until(t, t->now + 2000);
  kith_gossip_stats st;
  for (int i = 0; i < 5; i++) {
    kith_gossip_get_stats(t->g[i], &st);
    assert_int_equal(st.grafts_sent, 0);
  }
  memset(t->copies, 0, sizeof t->copies);
  for (int i = 0; i < 5; i++) /* and their second ones */
    publish(t, i, 20 + i);
  run_until(t, t->now + 2000);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(t->copies[i], 4);
    for (int e = 20; e < 25; e++)
      assert_int_equal(t->got[i][e], 1);
  }
  net_free(t);
}

/* ---- known-answer vectors: tests/vectors/gossip.txt ---- */

/* The value of key in the vector file, as bytes. */
static GBytes *vec(GHashTable *kv, const char *key) {
  const char *hex = g_hash_table_lookup(kv, key);
  assert_non_null(hex);
  size_t n = strlen(hex) / 2, got;
  uint8_t *b = g_malloc(n + 1);
  assert_int_equal(sodium_hex2bin(b, n, hex, strlen(hex), NULL, &got, NULL), 0);
  assert_int_equal(got, n);
  return g_bytes_new_take(b, n);
}

/* The first queued frame from -> to, taken off the queue. */
static frame *take_frame(net *t, int from, int to) {
  for (GList *l = t->q.head; l != NULL; l = l->next) {
    frame *f = l->data;
    if (f->from == from && f->to == to) {
      g_queue_delete_link(&t->q, l);
      return f;
    }
  }
  fail_msg("no frame from %d to %d", from, to);
  return NULL;
}

/* f is exactly want (both freed). */
static void assert_frame(frame *f, GBytes *want) {
  assert_int_equal(f->len, g_bytes_get_size(want));
  assert_memory_equal(f->data, g_bytes_get_data(want, NULL), f->len);
  g_bytes_unref(want);
  g_free(f->data);
  g_free(f);
}

static void publish_eph(net *t, int i, uint8_t v, kith_err want) {
  uint8_t b[24];
  memset(b, v, sizeof b);
  assert_int_equal(
      kith_gossip_publish_ephemeral(t->g[i], b, sizeof b, t->now, &t->out),
      want);
  drain(t, i);
}

/* Ephemeral payloads (presence beats) travel the trees like events, once
 * per node, but never reach the known set (reconciliation never asks for
 * them, FETCH never names them: apply() would fail) and are forgotten
 * after KITH_GOSSIP_EPH_MS, so the same bytes may come again later. */
static void test_ephemeral_payload_spreads_then_is_forgotten(void **state) {
  (void)state;
  net *t = net_new(6, 3000); /* anti-entropy every 3 s */
  for (int i = 1; i < 6; i++)
    join(t, i, i - 1);
  run_until(t, 30000);
  publish(t, 2, 1); /* an event, so that reconciliation has a set */
  publish_eph(t, 0, 7, KITH_OK);
  run_until(t, t->now + 2000);
  for (int i = 1; i < 6; i++)
    assert_int_equal(t->eph[i], 1);
  publish_eph(t, 0, 7, KITH_ERR_DUPLICATE); /* remembered meanwhile */
  publish_eph(t, 3, 7, KITH_ERR_DUPLICATE);
  run_until(t, t->now + KITH_GOSSIP_EPH_MS + 5000); /* reconciles, forgets */
  for (int i = 1; i < 6; i++)
    assert_int_equal(t->eph[i], 1);
  publish_eph(t, 0, 7, KITH_OK); /* forgotten everywhere: new again */
  run_until(t, t->now + 2000);
  kith_gossip_stats st;
  for (int i = 1; i < 6; i++) {
    assert_int_equal(t->eph[i], 2);
    assert_int_equal(t->got[i][1], 1);
    kith_gossip_get_stats(t->g[i], &st);
    assert_true(st.ephemeral >= 2);
    assert_int_equal(st.trees, 1); /* the event's source only */
  }
  uint8_t big[KITH_GOSSIP_EPH_MAX_PAYLOAD + 1] = {0};
  assert_int_equal(
      kith_gossip_publish_ephemeral(t->g[0], big, sizeof big, t->now, &t->out),
      KITH_ERR_ARG);
  net_free(t);
}

/* A lost push of an ephemeral payload is grafted from an announcer and
 * answered as EPHEMERAL; a bad one is not passed on. */
static void test_ephemeral_payload_grafted_and_judged(void **state) {
  (void)state;
  net *t = triangle();
  publish(t, 0, 1);
  run_until(t, t->now + 1000); /* 1-2 is lazy in the default tree */
  t->drop_from = 0;
  t->drop_to = 2;
  publish_eph(t, 0, 9, KITH_OK);
  run_until(t, t->now + 100);
  assert_int_equal(t->eph[1], 1);
  assert_int_equal(t->eph[2], 0);
  run_until(t, t->now + 2000); /* announced by 1, grafted from 1 */
  assert_int_equal(t->eph[2], 1);
  kith_gossip_stats st;
  kith_gossip_get_stats(t->g[2], &st);
  assert_true(st.grafts_sent >= 1);
  t->drop_from = -1;
  publish_eph(t, 1, 0xff, KITH_OK); /* judged invalid by both others */
  run_until(t, t->now + 2000);
  assert_int_equal(t->eph[0], 0);
  assert_int_equal(t->eph[2], 1);
  kith_gossip_get_stats(t->g[0], &st);
  assert_int_equal(st.invalid, 1);
  net_free(t);
}

/* A neighbour that sends an event's bytes as an ephemeral payload (judged
 * invalid: no beat) cannot have the event refused afterwards. */
static void test_event_wrapped_as_ephemeral_still_accepted(void **state) {
  (void)state;
  net *t = triangle();
  uint8_t b[EVLEN];
  ev_bytes(5, b);
  assert_int_equal(
      kith_gossip_publish_ephemeral(t->g[0], b, EVLEN, t->now, &t->out),
      KITH_OK);
  drain(t, 0);
  run_until(t, t->now + 1000);
  kith_gossip_stats st;
  kith_gossip_get_stats(t->g[1], &st);
  assert_int_equal(st.invalid, 1);
  publish(t, 2, 5);
  run_until(t, t->now + 2000);
  assert_int_equal(t->got[1][5], 1);
  net_free(t);
}

static void test_frame_vectors_reproduce(void **state) {
  (void)state;
  gchar *text = NULL;
  GHashTable *kv = vectors_read("gossip.txt", &text);
  GBytes *source = vec(kv, "source"), *payload = vec(kv, "payload"),
         *id = vec(kv, "id");
  uint8_t got[32];
  kith_gossip_payload_id(g_bytes_get_data(payload, NULL),
                         g_bytes_get_size(payload), got);
  assert_memory_equal(got, g_bytes_get_data(id, NULL), 32);
  /* node 3 is the source (its id starts with 03, which the test network
   * reads as its index); 0, 1 and 2 are its neighbours */
  net *t = net_new(4, 0);
  kith_gossip_config cfg;
  kith_gossip_config_default(&cfg);
  cfg.flood_first_max = 0; /* the first message: the default tree */
  kith_gossip_free(t->g[3]);
  memcpy(t->id[3], g_bytes_get_data(source, NULL), 32);
  t->g[3] = kith_gossip_new(t->id[3], 7, &cfg);
  join(t, 3, 0);
  kith_out o;
  kith_out_init(&o);
  assert_int_equal(kith_gossip_publish(t->g[3], 1700000000000ull,
                                       g_bytes_get_data(payload, NULL),
                                       g_bytes_get_size(payload), t->now, &o),
                   KITH_OK);
  apply(t, 3, &o);
  kith_out_clear(&o);
  frame *f = take_frame(t, 3, 0);
  GBytes *pf = vec(kv, "payload_frame");
  assert_memory_equal(f->data, g_bytes_get_data(pf, NULL), f->len);
  /* 0 takes it; the same push again is a duplicate: PRUNE */
  for (int k = 0; k < 2; k++)
    assert_int_equal(
        kith_gossip_recv(t->g[0], t->id[3], f->data, f->len, t->now, &t->out),
        KITH_OK);
  drain(t, 0);
  assert_frame(take_frame(t, 0, 3), vec(kv, "prune_frame"));
  g_free(f->data);
  g_free(f);
  /* 1 hears of it from 2 (IHAVE): after the wait, GRAFT */
  join(t, 1, 2);
  GBytes *ih = vec(kv, "ihave_frame");
  assert_int_equal(kith_gossip_recv(t->g[1], t->id[2],
                                    g_bytes_get_data(ih, NULL),
                                    g_bytes_get_size(ih), t->now, &t->out),
                   KITH_OK);
  drain(t, 1);
  t->now += 600; /* past the wait (lazy_timeout_ms: nothing measured) */
  kith_gossip_tick(t->g[1], t->now, &t->out);
  drain(t, 1);
  assert_frame(take_frame(t, 1, 2), vec(kv, "graft_frame"));
  /* the source, asked so for it (no edge of the default tree): a repair */
  GBytes *gf = vec(kv, "graft_frame");
  assert_int_equal(kith_gossip_recv(t->g[3], t->id[0],
                                    g_bytes_get_data(gf, NULL),
                                    g_bytes_get_size(gf), t->now, &t->out),
                   KITH_OK);
  drain(t, 3);
  assert_frame(take_frame(t, 3, 0), vec(kv, "repair_frame"));
  g_bytes_unref(gf);
  /* 2 asks 1 for it (a held event's parent): after the wait, WANT */
  size_t asked;
  assert_int_equal(kith_gossip_want(t->g[2], t->id[1],
                                    g_bytes_get_data(id, NULL), 1, t->now,
                                    &asked, &t->out),
                   KITH_OK);
  assert_int_equal(asked, 1);
  t->now += 600;
  kith_gossip_tick(t->g[2], t->now, &t->out);
  drain(t, 2);
  assert_frame(take_frame(t, 2, 1), vec(kv, "want_frame"));
  /* the source reconciles with 0: its first message lists its one id */
  assert_int_equal(kith_gossip_reconcile(t->g[3], t->id[0], t->now, &t->out),
                   KITH_OK);
  drain(t, 3);
  assert_frame(take_frame(t, 3, 0), vec(kv, "recon_frame"));
  /* 3 publishes an ephemeral payload: EPHEMERAL on the default tree */
  GBytes *ep = vec(kv, "eph_payload");
  assert_int_equal(
      kith_gossip_publish_ephemeral(t->g[3], g_bytes_get_data(ep, NULL),
                                    g_bytes_get_size(ep), t->now, &o),
      KITH_OK);
  apply(t, 3, &o);
  kith_out_clear(&o);
  assert_frame(take_frame(t, 3, 0), vec(kv, "eph_frame"));
  g_bytes_unref(ep);
  net_free(t);
  g_bytes_unref(source);
  g_bytes_unref(payload);
  g_bytes_unref(id);
  g_bytes_unref(pf);
  g_hash_table_destroy(kv);
  g_free(text);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_prune_on_duplicate),
      cmocka_unit_test(test_concurrent_sources_keep_their_trees),
      cmocka_unit_test(test_ihave_rides_with_a_payload_to_the_same_neighbour),
      cmocka_unit_test(test_no_ihave_to_a_neighbour_that_announced_it),
      cmocka_unit_test(test_ihave_batch_per_neighbour),
      cmocka_unit_test(test_graft_after_lazy_timeout),
      cmocka_unit_test(test_active_view_bound),
      cmocka_unit_test(test_link_failure_repair),
      cmocka_unit_test(test_reconcile_equal),
      cmocka_unit_test(test_reconcile_disjoint),
      cmocka_unit_test(test_reconcile_nearly_equal),
      cmocka_unit_test(test_reconcile_now_catches_up_without_waiting),
      cmocka_unit_test(test_reconcile_asks_for_the_whole_difference_at_its_end),
      cmocka_unit_test(test_reconcile_asks_each_peer_for_the_whole_difference),
      cmocka_unit_test(test_reconcile_asks_again_for_a_held_event),
      cmocka_unit_test(test_reconcile_quiet_side_asks_all_the_same),
      cmocka_unit_test(test_malformed_frames),
      cmocka_unit_test(test_invalid_not_forwarded),
      cmocka_unit_test(test_junk_claiming_an_id_cannot_censor_the_event),
      cmocka_unit_test(test_withholding_neighbour_cannot_stop_an_event),
      cmocka_unit_test(test_not_now_verdict_is_not_permanent),
      cmocka_unit_test(test_held_flood_from_one_neighbour_blocks_no_one_else),
      cmocka_unit_test(test_unanswered_want_moves_to_another_announcer),
      cmocka_unit_test(test_want_retry_waits_two_round_trips),
      cmocka_unit_test(test_reconcile_waits_for_a_flowing_stream),
      cmocka_unit_test(test_published_event_enters_the_tree_at_every_neighbour),
      cmocka_unit_test(test_graft_asks_for_an_edge_of_the_default_tree_or_not),
      cmocka_unit_test(test_leaf_does_not_push_a_grafted_copy_back),
      cmocka_unit_test(test_default_tree_lazy_wait_by_edges),
      cmocka_unit_test(test_lost_copy_is_fetched_without_an_edge),
      cmocka_unit_test(test_held_event_is_passed_on_before_its_verdict),
      cmocka_unit_test(test_catch_up_event_is_not_passed_on),
      cmocka_unit_test(test_held_children_leave_room_for_their_parents),
      cmocka_unit_test(test_want_answered_in_the_order_asked),
      cmocka_unit_test(test_reconciled_event_is_not_passed_on_with_its_source),
      cmocka_unit_test(test_small_group_starts_trees_with_first_messages),
      cmocka_unit_test(test_ephemeral_payload_spreads_then_is_forgotten),
      cmocka_unit_test(test_ephemeral_payload_grafted_and_judged),
      cmocka_unit_test(test_event_wrapped_as_ephemeral_still_accepted),
      cmocka_unit_test(test_frame_vectors_reproduce),
      cmocka_unit_test(test_reconcile_reads_the_callers_set),
  };
  int rc = cmocka_run_group_tests_name("gossip", tests, NULL, NULL);
  return rc > 255 ? 255 : rc;
}
