/* Unit tests for net/ice: two libnice agents in one process on loopback,
 * plus the strict parameter decoder. The agents need a real GMainContext,
 * iterated here with bounded deadlines. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <string.h>

#include "core/codec.h"
#include "net/ice.h"

#define XFER_LEN (300 * 1024)
#define DEADLINE_US (20 * G_USEC_PER_SEC)
#define CHUNK 16384

typedef struct peer {
  kith_ice *ice;
  int gathered;
  int state; /* -1 unknown, 0 failed, 1 ready */
  int states_seen;
  uint8_t *tx;
  size_t tx_off;
  GByteArray *rx;
} peer;

static void pump(peer *p) {
  while (p->tx != NULL && p->tx_off < XFER_LEN) {
    size_t n = XFER_LEN - p->tx_off;
    ssize_t r = kith_ice_send(p->ice, p->tx + p->tx_off, n > CHUNK ? CHUNK : n);
    if (r <= 0)
      return;
    p->tx_off += (size_t)r;
  }
}

static void cb_gathered(kith_ice *ice, void *ud) {
  peer *p = ud;
  assert_ptr_equal(ice, p->ice);
  p->gathered = 1;
}

static void cb_state(kith_ice *ice, int ready, void *ud) {
  peer *p = ud;
  p->state = ready;
  p->states_seen++;
  if (ready)
    pump(p);
}

static void cb_recv(kith_ice *ice, const uint8_t *buf, size_t len, void *ud) {
  peer *p = ud;
  g_byte_array_append(p->rx, buf, (guint)len);
}

static void cb_writable(kith_ice *ice, void *ud) {
  pump(ud);
}

static const kith_ice_callbacks cbs = {cb_gathered, cb_state, cb_recv,
                                       cb_writable, NULL};

static void peer_init(peer *p, GMainContext *ctx, int controlling) {
  memset(p, 0, sizeof *p);
  p->state = -1;
  p->rx = g_byte_array_new();
  kith_ice_config cfg = {.controlling = controlling, .only_addr = "127.0.0.1"};
  assert_int_equal(kith_ice_new(ctx, &cfg, &cbs, p, &p->ice), KITH_OK);
}

static void peer_clear(peer *p) {
  kith_ice_free(p->ice);
  g_byte_array_unref(p->rx);
  g_free(p->tx);
}

static gboolean set_flag(gpointer data) {
  *(int *)data = 1;
  return G_SOURCE_REMOVE;
}

/* Iterates ctx for about ms milliseconds (lets asynchronous closes end). */
static void iterate_for(GMainContext *ctx, guint ms) {
  int done = 0;
  GSource *t = g_timeout_source_new(ms);
  g_source_set_callback(t, set_flag, &done, NULL);
  g_source_attach(t, ctx);
  while (!done)
    g_main_context_iteration(ctx, TRUE);
  g_source_unref(t);
}

typedef int (*cond_fn)(peer *a, peer *b);

/* Iterates ctx until cond holds or the deadline passes. */
static int wait_until(GMainContext *ctx, peer *a, peer *b, cond_fn cond) {
  gint64 end = g_get_monotonic_time() + DEADLINE_US;
  int tick = 0;
  GSource *t = g_timeout_source_new(50); /* bounds each blocking wait */
  g_source_set_callback(t, set_flag, &tick, NULL);
  g_source_attach(t, ctx);
  while (!cond(a, b) && g_get_monotonic_time() < end) {
    g_main_context_iteration(ctx, TRUE);
    if (tick) {
      g_source_destroy(t);
      g_source_unref(t);
      tick = 0;
      t = g_timeout_source_new(50);
      g_source_set_callback(t, set_flag, &tick, NULL);
      g_source_attach(t, ctx);
    }
  }
  g_source_destroy(t);
  g_source_unref(t);
  return cond(a, b);
}

static int both_gathered(peer *a, peer *b) {
  return a->gathered && b->gathered;
}

static int both_ready(peer *a, peer *b) {
  return a->state == 1 && b->state == 1;
}

static int both_received(peer *a, peer *b) {
  pump(a);
  pump(b);
  return a->rx->len >= XFER_LEN && b->rx->len >= XFER_LEN;
}

/* local params of from -> encode -> decode -> set_remote on to */
static void exchange(peer *from, peer *to) {
  kith_ice_params lp, rp;
  uint8_t *buf = NULL;
  size_t len = 0;
  assert_int_equal(kith_ice_local_params(from->ice, &lp), KITH_OK);
  assert_true(lp.n_cands > 0);
  assert_int_equal(kith_ice_params_encode(&lp, &buf, &len), KITH_OK);
  assert_int_equal(kith_ice_params_decode(buf, len, &rp), KITH_OK);
  assert_memory_equal(&lp, &rp, sizeof lp);
  g_free(buf);
  assert_int_equal(kith_ice_set_remote(to->ice, &rp), KITH_OK);
}

static uint8_t *pattern(uint32_t seed) {
  uint8_t *buf = g_malloc(XFER_LEN);
  uint32_t x = seed;
  for (size_t i = 0; i < XFER_LEN; i++) {
    x = x * 1103515245u + 12345u;
    buf[i] = (uint8_t)(x >> 16);
  }
  return buf;
}

static void loopback_link_carries_300k_each_way(void **state) {
  GMainContext *ctx = g_main_context_new();
  peer a, b;
  peer_init(&a, ctx, 1);
  peer_init(&b, ctx, 0);
  assert_null(kith_ice_path(a.ice));
  assert_int_equal(kith_ice_send(a.ice, (const uint8_t *)"x", 1), -1);
  assert_true(wait_until(ctx, &a, &b, both_gathered));
  exchange(&a, &b);
  exchange(&b, &a);
  a.tx = pattern(1);
  b.tx = pattern(2);
  assert_true(wait_until(ctx, &a, &b, both_ready));
  assert_string_equal(kith_ice_path(a.ice), "host");
  assert_string_equal(kith_ice_path(b.ice), "host");
  assert_non_null(kith_ice_remote_addr(a.ice));
  assert_true(wait_until(ctx, &a, &b, both_received));
  assert_int_equal(a.rx->len, XFER_LEN);
  assert_int_equal(b.rx->len, XFER_LEN);
  assert_memory_equal(a.rx->data, b.tx, XFER_LEN);
  assert_memory_equal(b.rx->data, a.tx, XFER_LEN);
  assert_int_equal(a.states_seen, 1);
  assert_int_equal(b.states_seen, 1);
  peer_clear(&a);
  peer_clear(&b);
  iterate_for(ctx, 300);
  g_main_context_unref(ctx);
}

static void free_while_connecting_is_safe(void **state) {
  GMainContext *ctx = g_main_context_new();
  peer a, b, c;
  peer_init(&a, ctx, 1);
  peer_init(&b, ctx, 0);
  peer_init(&c, ctx, 0);
  peer_clear(&c); /* freed before its deferred on_gathered could run */
  assert_true(wait_until(ctx, &a, &b, both_gathered));
  exchange(&a, &b);
  exchange(&b, &a);
  iterate_for(ctx, 20);
  peer_clear(&a);
  iterate_for(ctx, 100);
  peer_clear(&b);
  iterate_for(ctx, 300);
  g_main_context_unref(ctx);
}

/* ---- params codec ---- */

typedef struct raw_cand {
  const char *foundation;
  uint64_t priority;
  const char *addr;
  uint64_t port;
  uint64_t type;
} raw_cand;

static const char *good_ufrag = "abcd";
static const char *good_pwd = "abcdefghijklmnopqrstuv";
static const raw_cand good_cand = {"1", 2130706431, "127.0.0.1", 5000, 0};

static kith_err decode_raw(const char *ufrag, const char *pwd,
                           const raw_cand *c, uint32_t n) {
  kith_pack pk;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 3);
  kith_pack_cstr(&pk, ufrag);
  kith_pack_cstr(&pk, pwd);
  kith_pack_array(&pk, n);
  for (uint32_t i = 0; i < n; i++) {
    kith_pack_array(&pk, 5);
    kith_pack_cstr(&pk, c->foundation);
    kith_pack_uint(&pk, c->priority);
    kith_pack_cstr(&pk, c->addr);
    kith_pack_uint(&pk, c->port);
    kith_pack_uint(&pk, c->type);
  }
  uint8_t *buf = NULL;
  size_t len = 0;
  assert_int_equal(kith_pack_take(&pk, &buf, &len), KITH_OK);
  kith_pack_clear(&pk);
  kith_ice_params p;
  kith_err e = kith_ice_params_decode(buf, len, &p);
  if (e == KITH_OK) {
    assert_int_equal(p.n_cands, n);
    assert_string_equal(p.ufrag, ufrag);
  }
  g_free(buf);
  return e;
}

static kith_err decode_cand(raw_cand c) {
  return decode_raw(good_ufrag, good_pwd, &c, 1);
}

static void params_decode_accepts_valid(void **state) {
  assert_int_equal(decode_raw(good_ufrag, good_pwd, &good_cand, 1), KITH_OK);
  assert_int_equal(decode_raw(good_ufrag, good_pwd, &good_cand, 0), KITH_OK);
  assert_int_equal(decode_raw(good_ufrag, good_pwd, &good_cand, 16), KITH_OK);
  raw_cand v6 = good_cand;
  v6.addr = "2001:db8::1";
  v6.type = 3;
  v6.foundation = "Ab+/09";
  assert_int_equal(decode_cand(v6), KITH_OK);
}

static void params_decode_rejects_junk(void **state) {
  raw_cand c = good_cand;
  c.port = 0;
  assert_int_not_equal(decode_cand(c), KITH_OK);
  c.port = 70000;
  assert_int_not_equal(decode_cand(c), KITH_OK);
  c = good_cand;
  c.priority = 0;
  assert_int_not_equal(decode_cand(c), KITH_OK);
  c.priority = (uint64_t)UINT32_MAX + 1;
  assert_int_not_equal(decode_cand(c), KITH_OK);
  const char *bad_addrs[] = {"1.2.3", "localhost", "1.2.3.4 ", "0.0.0.0",
                             "::",    "1.2.3.4\r", "",         "256.1.1.1"};
  for (size_t i = 0; i < G_N_ELEMENTS(bad_addrs); i++) {
    c = good_cand;
    c.addr = bad_addrs[i];
    assert_int_not_equal(decode_cand(c), KITH_OK);
  }
  c = good_cand;
  c.type = 4;
  assert_int_not_equal(decode_cand(c), KITH_OK);
  const char *bad_found[] = {"", "a b", "a\r",
                             "123456789012345678901234567890123"};
  for (size_t i = 0; i < G_N_ELEMENTS(bad_found); i++) {
    c = good_cand;
    c.foundation = bad_found[i];
    assert_int_not_equal(decode_cand(c), KITH_OK);
  }
  assert_int_not_equal(decode_raw(good_ufrag, good_pwd, &good_cand, 17),
                       KITH_OK);
  assert_int_not_equal(decode_raw("abc", good_pwd, &good_cand, 1), KITH_OK);
  assert_int_not_equal(decode_raw("ab d", good_pwd, &good_cand, 1), KITH_OK);
  assert_int_not_equal(
      decode_raw("abcdefghijklmnopqrstuvwxyz0123456", good_pwd, &good_cand, 1),
      KITH_OK);
  assert_int_not_equal(decode_raw(good_ufrag, "short", &good_cand, 1), KITH_OK);
  const uint8_t junk[] = {0x93, 0xa1, 'a', 0xc0, 0x90};
  kith_ice_params p;
  assert_int_not_equal(kith_ice_params_decode(junk, sizeof junk, &p), KITH_OK);
}

static void params_encode_rejects_invalid(void **state) {
  kith_ice_params p;
  memset(&p, 0, sizeof p);
  uint8_t *buf = NULL;
  size_t len = 0;
  assert_int_equal(kith_ice_params_encode(&p, &buf, &len), KITH_ERR_ARG);
  strcpy(p.ufrag, good_ufrag);
  strcpy(p.pwd, good_pwd);
  p.n_cands = KITH_ICE_MAX_CANDS + 1;
  assert_int_equal(kith_ice_params_encode(&p, &buf, &len), KITH_ERR_ARG);
  assert_null(buf);
}

/* 16 valid candidates with the longest IPv6 addresses and foundations,
 * priorities shuffled so that the encoder has to sort them. */
static void fill_long_params(kith_ice_params *p) {
  memset(p, 0, sizeof *p);
  strcpy(p->ufrag, "abcdefghijklmnopqrstuvwxyz012345");
  strcpy(p->pwd, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWX"
                 "YZ01");
  p->n_cands = KITH_ICE_MAX_CANDS;
  for (size_t i = 0; i < p->n_cands; i++) {
    kith_ice_cand *c = &p->cands[i];
    g_snprintf(c->foundation, sizeof c->foundation, "%032zu",
               i); /* 32 characters */
    c->priority = 1000 + (uint32_t)((i * 7) % KITH_ICE_MAX_CANDS) * 10;
    g_snprintf(c->addr, sizeof c->addr,
               "2001:0db8:ffff:ffff:ffff:ffff:%u.255.255.255",
               (unsigned)(200 + i)); /* 45 characters */
    c->port = (uint16_t)(60000 + i);
    c->type = KITH_CAND_HOST;
  }
}

static void params_encode_max_keeps_highest_priorities(void **state) {
  kith_ice_params p, q;
  fill_long_params(&p);
  uint8_t *buf = NULL;
  size_t len = 0;
  assert_int_equal(kith_ice_params_encode(&p, &buf, &len), KITH_OK);
  assert_true(len > 900); /* too big for the budget as a whole */
  g_free(buf);
  assert_int_equal(kith_ice_params_encode_max(&p, 900, &buf, &len), KITH_OK);
  assert_true(len <= 900);
  assert_int_equal(kith_ice_params_decode(buf, len, &q), KITH_OK);
  g_free(buf);
  assert_true(q.n_cands >= 1 && q.n_cands < KITH_ICE_MAX_CANDS);
  assert_string_equal(q.ufrag, p.ufrag);
  assert_string_equal(q.pwd, p.pwd);
  /* The kept ones are the highest priorities, in order (1150, 1140, ...). */
  for (size_t i = 0; i < q.n_cands; i++) {
    assert_int_equal(q.cands[i].priority, 1150 - 10 * i);
    size_t src = 0;
    while (p.cands[src].priority != q.cands[i].priority)
      src++;
    assert_string_equal(q.cands[i].addr, p.cands[src].addr);
    assert_string_equal(q.cands[i].foundation, p.cands[src].foundation);
    assert_int_equal(q.cands[i].port, p.cands[src].port);
  }
  /* As many as fit: one more would not have. */
  kith_ice_params more = q;
  more.cands[q.n_cands] = p.cands[0];
  more.n_cands++;
  assert_int_equal(kith_ice_params_encode(&more, &buf, &len), KITH_OK);
  assert_true(len > 900);
  g_free(buf);
}

static void params_encode_max_edge_cases(void **state) {
  kith_ice_params p, q;
  fill_long_params(&p);
  uint8_t *buf = NULL;
  size_t len = 0, full = 0;
  /* A budget with room for all of them keeps all of them. */
  assert_int_equal(kith_ice_params_encode(&p, &buf, &full), KITH_OK);
  g_free(buf);
  assert_int_equal(kith_ice_params_encode_max(&p, full, &buf, &len), KITH_OK);
  assert_int_equal(len, full);
  assert_int_equal(kith_ice_params_decode(buf, len, &q), KITH_OK);
  assert_int_equal(q.n_cands, KITH_ICE_MAX_CANDS);
  g_free(buf);
  /* Room for the credentials and one candidate only. */
  kith_ice_params one = p;
  one.n_cands = 1;
  one.cands[0] = p.cands[9]; /* priority 1150, the highest */
  assert_int_equal(kith_ice_params_encode(&one, &buf, &full), KITH_OK);
  g_free(buf);
  assert_int_equal(kith_ice_params_encode_max(&p, full, &buf, &len), KITH_OK);
  assert_int_equal(kith_ice_params_decode(buf, len, &q), KITH_OK);
  assert_int_equal(q.n_cands, 1);
  assert_int_equal(q.cands[0].priority, 1150);
  g_free(buf);
  /* Not even one fits: a limit, nothing returned. */
  buf = (uint8_t *)"x";
  assert_int_equal(kith_ice_params_encode_max(&p, full - 1, &buf, &len),
                   KITH_ERR_LIMIT);
  assert_null(buf);
  one.n_cands = 0;
  assert_int_equal(kith_ice_params_encode_max(&one, 10, &buf, &len),
                   KITH_ERR_LIMIT);
  assert_int_equal(kith_ice_params_encode_max(&one, 200, &buf, &len), KITH_OK);
  g_free(buf);
  /* Invalid params are an argument error, as for kith_ice_params_encode. */
  p.cands[3].port = 0;
  assert_int_equal(kith_ice_params_encode_max(&p, 900, &buf, &len),
                   KITH_ERR_ARG);
  assert_null(buf);
}

static void turn_urls_parse(void **state) {
  kith_turn t;
  assert_int_equal(kith_turn_parse("turn://kith:labpass@10.77.0.3:3478", &t),
                   KITH_OK);
  assert_string_equal(t.user, "kith");
  assert_string_equal(t.pass, "labpass");
  assert_string_equal(t.host, "10.77.0.3");
  assert_int_equal(t.port, 3478);
  assert_int_equal(kith_turn_parse("turn://u:p@192.0.2.1", &t), KITH_OK);
  assert_int_equal(t.port, 3478);
  const char *bad[] = {"stun://u:p@192.0.2.1",   "turn://192.0.2.1:3478",
                       "turn://u@192.0.2.1",     "turn://u:p@host.name",
                       "turn://u:p@192.0.2.1:0", "turn://u:p@192.0.2.1:70000",
                       "turn://:p@192.0.2.1",    "turn://u:p@"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(kith_turn_parse(bad[i], &t), KITH_ERR_ARG);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(params_decode_accepts_valid),
      cmocka_unit_test(params_decode_rejects_junk),
      cmocka_unit_test(params_encode_rejects_invalid),
      cmocka_unit_test(params_encode_max_keeps_highest_priorities),
      cmocka_unit_test(params_encode_max_edge_cases),
      cmocka_unit_test(loopback_link_carries_300k_each_way),
      cmocka_unit_test(free_while_connecting_is_safe),
      cmocka_unit_test(turn_urls_parse),
  };
  int failed = cmocka_run_group_tests_name("ice", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
