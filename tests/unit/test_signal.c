/* Unit tests for net/signal: two signal ports on 127.0.0.1 in one process,
 * one GMainContext iterated with bounded deadlines. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <string.h>

#include "net/signal.h"

#define DEADLINE_US (5 * G_USEC_PER_SEC)
#define MAX_GOT 128

typedef struct got {
  uint8_t from[32];
  uint8_t payload[KITH_SIGNAL_MAX];
  size_t len, size;
  uint64_t ts_ms;
} got;

typedef struct node {
  kith_ident id;
  kith_signal *sig;
  got got[MAX_GOT];
  size_t n_got;     /* stored in got[], at most MAX_GOT */
  uint64_t n_all;   /* delivered, all of them */
  int reply;        /* answer each datagram with "pong" */
  size_t reply_len; /* payload length of that answer */
  kith_err reply_err;
} node;

typedef struct fixture {
  GMainContext *ctx;
  node a, b;
  kith_ident c; /* has no signal port */
  GSocket *raw; /* a plain UDP socket, for hand-made datagrams */
} fixture;

static void on_datagram(kith_signal *s, const kith_signal_msg *m, void *ud) {
  node *n = ud;
  n->n_all++;
  if (n->n_got < MAX_GOT) {
    got *g = &n->got[n->n_got++];
    memcpy(g->from, m->from, 32);
    memcpy(g->payload, m->payload, m->len);
    g->len = m->len;
    g->size = m->size;
    g->ts_ms = m->ts_ms;
  }
  if (n->reply) {
    uint8_t buf[KITH_SIGNAL_MAX] = {'p', 'o', 'n', 'g'};
    n->reply_err =
        kith_signal_reply(s, m->from, m->src, buf, n->reply_len, m->size);
  }
}

static void ident_from_byte(kith_ident *id, uint8_t b) {
  uint8_t seed[KITH_SEED_LEN];
  memset(seed, b, sizeof seed);
  assert_int_equal(kith_ident_from_seed(id, seed), KITH_OK);
}

static void node_init(node *n, GMainContext *ctx, uint8_t seed) {
  ident_from_byte(&n->id, seed);
  assert_int_equal(kith_signal_new(ctx, &n->id, 0, on_datagram, n, &n->sig),
                   KITH_OK);
  assert_int_not_equal(kith_signal_port(n->sig), 0);
}

static int setup(void **state) {
  fixture *f = g_new0(fixture, 1);
  f->ctx = g_main_context_new();
  node_init(&f->a, f->ctx, 1);
  node_init(&f->b, f->ctx, 2);
  ident_from_byte(&f->c, 3);
  f->raw = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                        G_SOCKET_PROTOCOL_UDP, NULL);
  assert_non_null(f->raw);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  kith_signal_free(f->a.sig);
  kith_signal_free(f->b.sig);
  kith_ident_clear(&f->a.id);
  kith_ident_clear(&f->b.id);
  kith_ident_clear(&f->c);
  g_object_unref(f->raw);
  g_main_context_unref(f->ctx);
  g_free(f);
  return 0;
}

static gboolean set_flag(gpointer data) {
  *(int *)data = 1;
  return G_SOURCE_REMOVE;
}

/* Iterates until n has handled (delivered + dropped) `total` datagrams or
 * the deadline passes; a 20 ms timer bounds each blocking wait. */
static void wait_handled(fixture *f, node *n, uint64_t total) {
  gint64 end = g_get_monotonic_time() + DEADLINE_US;
  while (n->n_all + kith_signal_dropped(n->sig) < total &&
         g_get_monotonic_time() < end) {
    int tick = 0;
    GSource *t = g_timeout_source_new(20);
    g_source_set_callback(t, set_flag, &tick, NULL);
    g_source_attach(t, f->ctx);
    while (!tick && n->n_all + kith_signal_dropped(n->sig) < total)
      g_main_context_iteration(f->ctx, TRUE);
    g_source_destroy(t);
    g_source_unref(t);
  }
}

static void send_raw(fixture *f, node *to, const uint8_t *buf, size_t len) {
  GInetAddress *lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  GSocketAddress *dst =
      g_inet_socket_address_new(lo, kith_signal_port(to->sig));
  assert_int_equal(
      g_socket_send_to(f->raw, dst, (const gchar *)buf, len, NULL, NULL),
      (gssize)len);
  g_object_unref(dst);
  g_object_unref(lo);
}

static void a_to_b(fixture *f, const uint8_t to[32], const char *text,
                   size_t min_size) {
  assert_int_equal(
      kith_signal_send(f->a.sig, to, "127.0.0.1", kith_signal_port(f->b.sig),
                       (const uint8_t *)text, strlen(text), min_size),
      KITH_OK);
}

static void datagram_reaches_peer_with_sender_id(void **state) {
  fixture *f = *state;
  uint64_t before = (uint64_t)(g_get_real_time() / 1000);
  a_to_b(f, f->b.id.pk, "hello b", 0);
  wait_handled(f, &f->b, 1);
  assert_int_equal(f->b.n_got, 1);
  assert_memory_equal(f->b.got[0].from, f->a.id.pk, 32);
  /* the sender's signed time comes with it (addresses are ordered by it) */
  assert_true(f->b.got[0].ts_ms >= before);
  assert_true(f->b.got[0].ts_ms <= (uint64_t)(g_get_real_time() / 1000));
  assert_int_equal(f->b.got[0].len, 7);
  assert_memory_equal(f->b.got[0].payload, "hello b", 7);
  assert_int_equal(kith_signal_dropped(f->b.sig), 0);
}

static void padded_datagram_reaches_min_size_and_reply_fits(void **state) {
  fixture *f = *state;
  f->b.reply = 1;
  f->b.reply_len = 600;
  a_to_b(f, f->b.id.pk, "offer", 900);
  wait_handled(f, &f->b, 1);
  assert_int_equal(f->b.n_got, 1);
  assert_true(f->b.got[0].size >= 900 && f->b.got[0].size <= 901);
  assert_int_equal(f->b.got[0].len, 5);
  assert_int_equal(f->b.reply_err, KITH_OK);
  wait_handled(f, &f->a, 1);
  assert_int_equal(f->a.n_got, 1);
  assert_memory_equal(f->a.got[0].from, f->b.id.pk, 32);
  assert_int_equal(f->a.got[0].len, 600);
  assert_memory_equal(f->a.got[0].payload, "pong", 4);
}

static void reply_larger_than_request_is_limit(void **state) {
  fixture *f = *state;
  f->b.reply = 1;
  f->b.reply_len = 200; /* the request is 5 bytes of payload, unpadded */
  a_to_b(f, f->b.id.pk, "offer", 0);
  wait_handled(f, &f->b, 1);
  assert_int_equal(f->b.n_got, 1);
  assert_int_equal(f->b.reply_err, KITH_ERR_LIMIT);
  GInetAddress *lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  GSocketAddress *dst = g_inet_socket_address_new(lo, 9);
  uint8_t big[KITH_SIGNAL_MAX_PAYLOAD] = {0};
  assert_int_equal(kith_signal_reply(f->b.sig, f->a.id.pk, dst, big, 10, 100),
                   KITH_ERR_LIMIT);
  assert_int_equal(
      kith_signal_reply(f->b.sig, f->a.id.pk, dst, big, sizeof big, 1400),
      KITH_OK);
  assert_int_equal(
      kith_signal_reply(f->b.sig, f->a.id.pk, dst, big, sizeof big + 1, 1400),
      KITH_ERR_LIMIT);
  g_object_unref(dst);
  g_object_unref(lo);
}

static void datagram_for_somebody_else_is_dropped(void **state) {
  fixture *f = *state;
  a_to_b(f, f->c.pk, "not for b", 0);
  wait_handled(f, &f->b, 1);
  assert_int_equal(f->b.n_got, 0);
  assert_int_equal(kith_signal_dropped(f->b.sig), 1);
  /* sealed to b but altered on the way */
  uint8_t *dg = NULL;
  size_t len = 0;
  assert_int_equal(kith_signal_seal_datagram(
                       &f->a.id, f->b.id.pk, (const uint8_t *)"x", 1, 0,
                       (uint64_t)(g_get_real_time() / 1000), &dg, &len),
                   KITH_OK);
  dg[len - 1] ^= 1; /* tampered */
  send_raw(f, &f->b, dg, len);
  wait_handled(f, &f->b, 2);
  assert_int_equal(f->b.n_got, 0);
  assert_int_equal(kith_signal_dropped(f->b.sig), 2);
  g_free(dg);
}

static void replayed_datagram_is_dropped(void **state) {
  fixture *f = *state;
  uint8_t *dg = NULL;
  size_t len = 0;
  uint64_t now = (uint64_t)(g_get_real_time() / 1000);
  assert_int_equal(kith_signal_seal_datagram(&f->a.id, f->b.id.pk,
                                             (const uint8_t *)"once", 4, 0, now,
                                             &dg, &len),
                   KITH_OK);
  send_raw(f, &f->b, dg, len);
  send_raw(f, &f->b, dg, len);
  wait_handled(f, &f->b, 2);
  assert_int_equal(f->b.n_got, 1);
  assert_int_equal(kith_signal_dropped(f->b.sig), 1);
  g_free(dg);
}

static void stale_or_future_timestamp_is_dropped(void **state) {
  fixture *f = *state;
  uint64_t now = (uint64_t)(g_get_real_time() / 1000);
  uint64_t ts[2] = {now - 2 * KITH_SIGNAL_SKEW_MS,
                    now + 2 * KITH_SIGNAL_SKEW_MS};
  for (int i = 0; i < 2; i++) {
    uint8_t *dg = NULL;
    size_t len = 0;
    assert_int_equal(kith_signal_seal_datagram(&f->a.id, f->b.id.pk,
                                               (const uint8_t *)"t", 1, 0,
                                               ts[i], &dg, &len),
                     KITH_OK);
    send_raw(f, &f->b, dg, len);
    g_free(dg);
  }
  wait_handled(f, &f->b, 2);
  assert_int_equal(f->b.n_got, 0);
  assert_int_equal(kith_signal_dropped(f->b.sig), 2);
}

static void junk_and_oversized_datagrams_are_dropped(void **state) {
  fixture *f = *state;
  uint8_t junk[KITH_SIGNAL_MAX + 100];
  randombytes_buf_deterministic(junk, sizeof junk, (const uint8_t[32]){9});
  send_raw(f, &f->b, junk, 10);
  send_raw(f, &f->b, junk, 300);
  send_raw(f, &f->b, junk, sizeof junk);
  wait_handled(f, &f->b, 3);
  assert_int_equal(f->b.n_got, 0);
  assert_int_equal(kith_signal_dropped(f->b.sig), 3);
}

static void burst_from_one_source_is_rate_limited(void **state) {
  fixture *f = *state;
  for (int i = 0; i < 100; i++)
    a_to_b(f, f->b.id.pk, "burst", 0);
  wait_handled(f, &f->b, 100);
  assert_int_equal(f->b.n_got + kith_signal_dropped(f->b.sig), 100);
  assert_true(f->b.n_got >= KITH_SIGNAL_BURST);
  assert_true(f->b.n_got <= KITH_SIGNAL_BURST + 5); /* refill while running */
}

static void send_rejects_bad_arguments(void **state) {
  fixture *f = *state;
  uint8_t big[KITH_SIGNAL_MAX] = {0};
  kith_signal *s = f->a.sig;
  uint16_t p = kith_signal_port(f->b.sig);
  assert_int_equal(kith_signal_send(s, f->b.id.pk, "localhost", p, big, 1, 0),
                   KITH_ERR_ARG);
  assert_int_equal(kith_signal_send(s, f->b.id.pk, "::1", p, big, 1, 0),
                   KITH_ERR_ARG);
  assert_int_equal(kith_signal_send(s, f->b.id.pk, "127.0.0.1", p, big,
                                    KITH_SIGNAL_MAX_PAYLOAD + 1, 0),
                   KITH_ERR_LIMIT);
  assert_int_equal(kith_signal_send(s, f->b.id.pk, "127.0.0.1", p, big, 1,
                                    KITH_SIGNAL_MAX + 1),
                   KITH_ERR_LIMIT);
  /* the largest payload padded to the largest datagram still fits */
  assert_int_equal(kith_signal_send(s, f->b.id.pk, "127.0.0.1", p, big,
                                    KITH_SIGNAL_MAX_PAYLOAD, KITH_SIGNAL_MAX),
                   KITH_OK);
  wait_handled(f, &f->b, 1);
  assert_int_equal(f->b.n_got, 1);
  assert_int_equal(f->b.got[0].size, KITH_SIGNAL_MAX);
}

/* ---- the replay cache under a flood of valid datagrams ---- */

#define FLOOD_CACHE 4096 /* the cache size documented in signal.h */
#define FLOOD_QUOTA 64   /* its per-source quota, likewise */

/* A UDP socket bound to 127.0.0.<host>: a distinct source address (all of
 * 127.0.0.0/8 is loopback on Linux), with its own token bucket. */
static GSocket *socket_from(uint8_t host) {
  GSocket *sock = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                               G_SOCKET_PROTOCOL_UDP, NULL);
  assert_non_null(sock);
  char ip[16];
  g_snprintf(ip, sizeof ip, "127.0.0.%u", host);
  GInetAddress *ia = g_inet_address_new_from_string(ip);
  GSocketAddress *sa = g_inet_socket_address_new(ia, 0);
  assert_true(g_socket_bind(sock, sa, FALSE, NULL));
  g_object_unref(sa);
  g_object_unref(ia);
  return sock;
}

/* Sends n distinct valid datagrams from the throwaway key c to b through
 * sock, stamped at the far edge of the window so they stay remembered as
 * long as possible. */
static void flood_from(fixture *f, GSocket *sock, int n) {
  GInetAddress *lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  GSocketAddress *dst =
      g_inet_socket_address_new(lo, kith_signal_port(f->b.sig));
  uint64_t ts =
      (uint64_t)(g_get_real_time() / 1000) + KITH_SIGNAL_SKEW_MS - 5000;
  for (int i = 0; i < n; i++) {
    uint8_t *dg = NULL;
    size_t len = 0;
    assert_int_equal(kith_signal_seal_datagram(&f->c, f->b.id.pk,
                                               (const uint8_t *)"flood", 5, 0,
                                               ts, &dg, &len),
                     KITH_OK);
    assert_int_equal(
        g_socket_send_to(sock, dst, (const gchar *)dg, len, NULL, NULL),
        (gssize)len);
    g_free(dg);
  }
  g_object_unref(dst);
  g_object_unref(lo);
}

/* Each socket sends `each` datagrams (at most what its token bucket holds);
 * sent_us[h], if given, records when socket h sent. */
static void flood_hosts(fixture *f, GSocket **socks, int n_hosts, int each,
                        gint64 *sent_us) {
  for (int h = 0; h < n_hosts; h++) {
    uint64_t before = f->b.n_all + kith_signal_dropped(f->b.sig);
    flood_from(f, socks[h], each);
    wait_handled(f, &f->b, before + (uint64_t)each);
    if (sent_us != NULL)
      sent_us[h] = g_get_monotonic_time();
  }
}

static void full_replay_cache_still_admits_new_sender(void **state) {
  fixture *f = *state;
  enum { HOSTS = FLOOD_CACHE / KITH_SIGNAL_BURST + 2 };
  GSocket *socks[HOSTS];
  for (int h = 0; h < HOSTS; h++)
    socks[h] = socket_from((uint8_t)(10 + h));
  flood_hosts(f, socks, HOSTS, KITH_SIGNAL_BURST, NULL);
  /* More valid datagrams than the cache holds: none was dropped. */
  assert_true(HOSTS * KITH_SIGNAL_BURST > FLOOD_CACHE);
  assert_int_equal(f->b.n_all, HOSTS * KITH_SIGNAL_BURST);
  assert_int_equal(kith_signal_dropped(f->b.sig), 0);
  /* The cache is full of unexpired nonces; a new sender still gets in. */
  f->b.n_got = 0;
  a_to_b(f, f->b.id.pk, "offer", 0);
  wait_handled(f, &f->b, HOSTS * KITH_SIGNAL_BURST + 1);
  assert_int_equal(kith_signal_dropped(f->b.sig), 0);
  assert_int_equal(f->b.n_got, 1);
  assert_memory_equal(f->b.got[0].from, f->a.id.pk, 32);
  assert_memory_equal(f->b.got[0].payload, "offer", 5);
  for (int h = 0; h < HOSTS; h++)
    g_object_unref(socks[h]);
}

/* Junk from 1,100 source addresses (more than the 1,024 tracked) fills the
 * table of token buckets; a first contact from yet another address still
 * gets in. Each source is a socket bound to its own 127.0.x.y, opened,
 * used and closed in turn (1,100 at once would exceed the fd limit). */
static void flood_from_many_sources_does_not_block_first_contact(void **state) {
  fixture *f = *state;
  enum { SOURCES = 1100, EACH = 2 };
  uint8_t junk[200];
  GInetAddress *lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  GSocketAddress *dst =
      g_inet_socket_address_new(lo, kith_signal_port(f->b.sig));
  randombytes_buf(junk, sizeof junk);
  for (int i = 0; i < SOURCES; i++) {
    char ip[16];
    g_snprintf(ip, sizeof ip, "127.0.%u.%u", 10 + i / 250, 1 + i % 250);
    GInetAddress *ia = g_inet_address_new_from_string(ip);
    GSocketAddress *sa = g_inet_socket_address_new(ia, 0);
    GSocket *sock = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                                 G_SOCKET_PROTOCOL_UDP, NULL);
    assert_true(g_socket_bind(sock, sa, FALSE, NULL));
    for (int k = 0; k < EACH; k++)
      assert_int_equal(g_socket_send_to(sock, dst, (const gchar *)junk,
                                        sizeof junk, NULL, NULL),
                       (gssize)sizeof junk);
    g_object_unref(sock);
    g_object_unref(sa);
    g_object_unref(ia);
    if (i % 50 == 49) /* let b read, so the socket buffer never overflows */
      wait_handled(f, &f->b, (uint64_t)(i + 1) * EACH);
  }
  wait_handled(f, &f->b, (uint64_t)SOURCES * EACH);
  assert_int_equal(kith_signal_dropped(f->b.sig), SOURCES * EACH);
  a_to_b(f, f->b.id.pk, "first contact", 0); /* a's address is new to b */
  wait_handled(f, &f->b, (uint64_t)SOURCES * EACH + 1);
  assert_int_equal(f->b.n_got, 1);
  assert_memory_equal(f->b.got[0].payload, "first contact", 13);
  g_object_unref(dst);
  g_object_unref(lo);
}

/* ---- signalling through a relay ---- */

static kith_err open_relayed(fixture *f, kith_replay *seen,
                             const uint8_t via[32], const uint8_t *box,
                             size_t len, uint64_t now, uint8_t **payload,
                             size_t *plen) {
  uint64_t ts;
  return kith_signal_open_relayed(&f->b.id, seen, via, f->a.id.pk, box, len,
                                  now, payload, plen, &ts);
}

/* a's envelope for b, sealed at `now` (the receiver's clock as well). */
static uint8_t *relayed_a_to_b(fixture *f, const char *text, uint64_t *now,
                               size_t *len) {
  uint8_t *box = NULL;
  *now = (uint64_t)(g_get_real_time() / 1000);
  assert_int_equal(kith_signal_seal_relayed(&f->a.id, f->b.id.pk,
                                            (const uint8_t *)text, strlen(text),
                                            *now, &box, len),
                   KITH_OK);
  return box;
}

static void relayed_envelope_opens_once(void **state) {
  fixture *f = *state;
  kith_replay *seen = kith_replay_new(64, 8);
  uint64_t now;
  uint8_t *payload = NULL;
  size_t len = 0, plen = 0;
  uint8_t *box = relayed_a_to_b(f, "offer", &now, &len);
  assert_int_equal(
      open_relayed(f, seen, f->c.pk, box, len, now, &payload, &plen), KITH_OK);
  assert_int_equal(plen, 5);
  assert_memory_equal(payload, "offer", 5);
  g_free(payload);
  /* The relay passes it on again, within the window: refused. Through
   * another relay too. */
  assert_int_equal(
      open_relayed(f, seen, f->c.pk, box, len, now + 60000, &payload, &plen),
      KITH_ERR_DUPLICATE);
  assert_int_equal(
      open_relayed(f, seen, f->a.id.pk, box, len, now, &payload, &plen),
      KITH_ERR_DUPLICATE);
  assert_null(payload);
  g_free(box);
  kith_replay_free(seen);
}

static void relayed_envelope_checks(void **state) {
  fixture *f = *state;
  kith_replay *seen = kith_replay_new(64, 8);
  uint64_t now, ts;
  uint8_t *payload = NULL;
  size_t len = 0, plen = 0;
  uint8_t *box = relayed_a_to_b(f, "x", &now, &len);
  /* too old, or from the future, by the receiver's clock */
  assert_int_equal(open_relayed(f, seen, f->c.pk, box, len,
                                now + KITH_SIGNAL_SKEW_MS + 1, &payload, &plen),
                   KITH_ERR_EXPIRED);
  assert_int_equal(open_relayed(f, seen, f->c.pk, box, len,
                                now - KITH_SIGNAL_SKEW_MS - 1, &payload, &plen),
                   KITH_ERR_EXPIRED);
  /* the relay's claim of who sent it must match the inside */
  assert_int_equal(kith_signal_open_relayed(&f->b.id, seen, f->c.pk, f->c.pk,
                                            box, len, now, &payload, &plen,
                                            &ts),
                   KITH_ERR_PROTOCOL);
  /* for somebody else: it does not open */
  assert_int_equal(kith_signal_open_relayed(&f->a.id, seen, f->c.pk, f->a.id.pk,
                                            box, len, now, &payload, &plen,
                                            &ts),
                   KITH_ERR_CRYPTO);
  box[len - 1] ^= 1;
  assert_int_equal(
      open_relayed(f, seen, f->c.pk, box, len, now, &payload, &plen),
      KITH_ERR_CRYPTO);
  /* none of the refusals used up its one taking */
  box[len - 1] ^= 1;
  assert_int_equal(
      open_relayed(f, seen, f->c.pk, box, len, now, &payload, &plen), KITH_OK);
  g_free(payload);
  g_free(box);
  kith_replay_free(seen);
}

static void free_from_callback(kith_signal *s, const kith_signal_msg *m,
                               void *ud) {
  *(int *)ud += 1;
  kith_signal_free(s);
}

static void free_inside_callback_is_safe(void **state) {
  fixture *f = *state;
  kith_ident d;
  ident_from_byte(&d, 4);
  int calls = 0;
  kith_signal *s = NULL;
  assert_int_equal(
      kith_signal_new(f->ctx, &d, 0, free_from_callback, &calls, &s), KITH_OK);
  for (int i = 0; i < 3; i++)
    assert_int_equal(kith_signal_send(f->a.sig, d.pk, "127.0.0.1",
                                      kith_signal_port(s), (const uint8_t *)"x",
                                      1, 0),
                     KITH_OK);
  gint64 end = g_get_monotonic_time() + DEADLINE_US;
  while (calls == 0 && g_get_monotonic_time() < end)
    g_main_context_iteration(f->ctx, FALSE);
  for (int i = 0; i < 10; i++)
    g_main_context_iteration(f->ctx, FALSE);
  assert_int_equal(calls, 1);
  kith_ident_clear(&d);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(datagram_reaches_peer_with_sender_id),
      T(padded_datagram_reaches_min_size_and_reply_fits),
      T(reply_larger_than_request_is_limit),
      T(datagram_for_somebody_else_is_dropped),
      T(replayed_datagram_is_dropped),
      T(stale_or_future_timestamp_is_dropped),
      T(junk_and_oversized_datagrams_are_dropped),
      T(burst_from_one_source_is_rate_limited),
      T(send_rejects_bad_arguments),
      T(free_inside_callback_is_safe),
      T(full_replay_cache_still_admits_new_sender),
      T(flood_from_many_sources_does_not_block_first_contact),
      T(relayed_envelope_opens_once),
      T(relayed_envelope_checks),
  };
  int failed = cmocka_run_group_tests_name("signal", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
