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
  int got[NMAX][EVMAX];   /* deliveries per node and event */
  int copies[NMAX];       /* payload frames received */
  uint8_t *store[EVMAX];  /* event payloads by index, for FETCH */
  uint64_t ts[EVMAX];
  kith_out out;
} net;

static void ev_id(int e, uint8_t id[32]) {
  memset(id, 0xE0, 32);
  id[0] = (uint8_t)e;
}

static void set_store(net *t, int e) {
  if (t->store[e] == NULL) {
    t->store[e] = g_malloc(40);
    memset(t->store[e], e, 40);
    t->ts[e] = 1000 + (uint64_t)e;
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
      if (kith_gossip_frame_type(it->data, it->len) == KITH_GF_PAYLOAD &&
          i == t->drop_from && j == t->drop_to)
        break;
      frame *f = g_new(frame, 1);
      *f = (frame){i, j, kith_out_take_data(o, k), it->len};
      g_queue_push_tail(&t->q, f);
      break;
    }
    case KITH_OUT_DELIVER:
      t->got[i][it->id[0]]++;
      kith_gossip_verdict(t->g[i], it->id, 1, t->now, &next);
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
        int e = it->data[b];
        assert_non_null(t->store[e]);
        assert_int_equal(kith_gossip_send_payload(t->g[i], it->peer,
                                                  it->data + b, t->ts[e],
                                                  t->store[e], 40, &next),
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
    if (kith_gossip_frame_type(f->data, f->len) == KITH_GF_PAYLOAD)
      t->copies[f->to]++;
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
  uint8_t id[32];
  ev_id(e, id);
  set_store(t, e);
  assert_int_equal(kith_gossip_publish(t->g[i], id, t->ts[e], t->store[e], 40,
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
  /* the tree now carries one copy per node */
  memset(t->copies, 0, sizeof t->copies);
  publish(t, 0, 2);
  run_until(t, t->now + 2000);
  assert_int_equal(t->copies[1], 1);
  assert_int_equal(t->copies[2], 1);
  net_free(t);
}

static void test_graft_after_lazy_timeout(void **state) {
  (void)state;
  net *t = triangle();
  publish(t, 0, 1);
  pump(t); /* edge 1-2 is lazy now */
  t->drop_from = 0;
  t->drop_to = 2; /* the eager push to 2 is lost */
  publish(t, 0, 2);
  run_until(t, t->now + 100); /* IHAVE from 1 arrived, no graft yet */
  assert_int_equal(t->got[2][2], 0);
  kith_gossip_stats st;
  kith_gossip_get_stats(t->g[2], &st);
  assert_int_equal(st.grafts_sent, 0);
  run_until(t, t->now + 1000);
  kith_gossip_get_stats(t->g[2], &st);
  assert_int_equal(st.grafts_sent, 1);
  assert_int_equal(t->got[2][2], 1);
  /* the graft made 1-2 eager on both sides */
  assert_int_equal(kith_gossip_peer_state(t->g[2], t->id[1]), 1);
  assert_int_equal(kith_gossip_peer_state(t->g[1], t->id[2]), 1);
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

/* Engines 0 and 1 linked; 0 holds events [0,a) and 1 holds [b,c). */
static void recon_case(int a, int b, int c) {
  net *t = net_new(2, 1000);
  join(t, 1, 0);
  for (int e = 0; e < EVMAX; e++) {
    uint8_t id[32];
    ev_id(e, id);
    set_store(t, e);
    if (e < a) {
      assert_int_equal(kith_gossip_add_known(t->g[0], t->ts[e], id), KITH_OK);
      t->got[0][e] = 1;
    }
    if (e >= b && e < c) {
      assert_int_equal(kith_gossip_add_known(t->g[1], t->ts[e], id), KITH_OK);
      t->got[1][e] = 1;
    }
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
  static const uint8_t prune_extra[] = {0x92, 0x0b, 0x00};
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
  ev_id(7, id);
  /* 0 pushes an event that 1's application rejects */
  kith_out o;
  kith_out_init(&o);
  assert_int_equal(kith_gossip_publish(t->g[0], id, 5, body, 8, t->now, &o),
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
  for (size_t k = 0; k < t->out.n; k++)
    delivered += t->out.items[k].kind == KITH_OUT_DELIVER;
  assert_int_equal(delivered, 1);
  kith_out_reset(&t->out);
  kith_gossip_verdict(t->g[1], id, 0, t->now, &t->out);
  assert_int_equal(t->out.n, 1);
  assert_int_equal(t->out.items[0].kind, KITH_OUT_PENALIZE);
  assert_int_equal(t->out.items[0].peer[0], 0);
  kith_out_reset(&t->out);
  net_free(t);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_prune_on_duplicate),
      cmocka_unit_test(test_graft_after_lazy_timeout),
      cmocka_unit_test(test_active_view_bound),
      cmocka_unit_test(test_link_failure_repair),
      cmocka_unit_test(test_reconcile_equal),
      cmocka_unit_test(test_reconcile_disjoint),
      cmocka_unit_test(test_reconcile_nearly_equal),
      cmocka_unit_test(test_reconcile_now_catches_up_without_waiting),
      cmocka_unit_test(test_malformed_frames),
      cmocka_unit_test(test_invalid_not_forwarded),
  };
  int rc = cmocka_run_group_tests_name("gossip", tests, NULL, NULL);
  return rc > 255 ? 255 : rc;
}
