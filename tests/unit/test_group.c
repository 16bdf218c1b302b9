/* Unit tests for core/group*.c: replicas, rules, keys, convergence. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_group_world.h"

static void admit(world *w, int by, int who, const char *name, kith_err want) {
  uint8_t sig[64];
  kith_invite_sign_join(w->inv_secret, w->gid, w->id[who].pk, sig);
  GPtrArray *acc = acc_new();
  assert_int_equal(kith_group_admit(w->g[by], w->id[who].pk, name, w->inv_pk,
                                    sig, w->now, acc),
                   want);
  log_all(w, acc);
}

/* a creates "friends", invites (2 uses), admits b; b admits c. */
static int setup(void **state) {
  world *w = world_new(KITH_HISTORY_SHARED, 0, A);
  new_invite(w, A, 2, T0 + HOUR);
  admit(w, A, B, "bob", KITH_OK);
  sync_node(w, B);
  w->now += 1000;
  admit(w, B, C, "carol", KITH_OK);
  sync_node(w, A);
  sync_node(w, C);
  *state = w;
  return 0;
}

static int teardown(void **state) {
  world_free(*state);
  return 0;
}

static void three_replicas_converge(void **state) {
  world *w = *state;
  assert_true(kith_group_is_ready(w->g[C]));
  assert_string_equal(kith_group_name(w->g[C]), "friends");
  assert_string_equal(kith_group_topic(w->g[C]), "");
  assert_int_equal(kith_group_n_members(w->g[A]), 3);
  assert_int_equal(kith_group_find_member(w->g[B], w->id[A].pk)->role,
                   KITH_ROLE_OWNER);
  assert_string_equal(kith_group_find_member(w->g[C], w->id[A].pk)->name,
                      "alice");
  assert_false(kith_group_admins_only_invites(w->g[C]));
  assert_string_equal(kith_group_find_member(w->g[A], w->id[C].pk)->name,
                      "carol");
  send_text(w, A, "hi from a");
  send_text(w, B, "hi from b");
  send_text(w, C, "hi from c");
  char *text = NULL;
  assert_int_equal(deliver(w->g[B], w->log->pdata[w->log->len - 3], &text),
                   KITH_OK);
  assert_string_equal(text, "hi from a");
  assert_int_equal(deliver(w->g[B], w->log->pdata[w->log->len - 3], NULL),
                   KITH_ERR_DUPLICATE);
  g_free(text);
  for (int i = A; i <= C; i++)
    sync_node(w, i);
  assert_same_state(w, A, B);
  assert_same_state(w, A, C);
  assert_int_equal(kith_group_n_events(w->g[A]), w->log->len);
  assert_int_equal(kith_group_n_held(w->g[A]), 0);
  /* Secrets persist and restore: a restarted a replays to the same state. */
  kith_group *r = kith_group_new(w->gid, &w->id[A]);
  for (size_t i = 0; i < kith_group_n_secrets(w->g[A]); i++) {
    uint64_t ep;
    uint8_t s[32];
    kith_group_secret_at(w->g[A], i, &ep, s);
    kith_group_add_secret(r, ep, s);
  }
  kith_group *old = w->g[A];
  w->g[A] = r;
  sync_node(w, A);
  assert_same_state(w, A, B);
  send_text(w, A, "after restart"); /* next n after the replayed ones */
  assert_int_equal(deliver(w->g[B], w->log->pdata[w->log->len - 1], NULL),
                   KITH_OK);
  kith_group_free(old);
}

/* Packs and signs an event exactly as given (author may differ from the
 * signer). */
static GBytes *pack_raw(const kith_event *ev, const kith_ident *signer) {
  kith_pack p;
  uint8_t sig[64], *msg, *out;
  size_t mlen, len;
  kith_pack_init(&p);
  for (uint32_t n = 8; n <= 9; n++) {
    kith_pack_array(&p, n);
    kith_pack_uint(&p, 1);
    kith_pack_bin(&p, ev->group_id, 32);
    kith_pack_uint(&p, ev->kind);
    kith_pack_bin(&p, ev->author, 32);
    kith_pack_array(&p, (uint32_t)ev->n_parents);
    for (size_t i = 0; i < ev->n_parents; i++)
      kith_pack_bin(&p, ev->parents[i], 32);
    kith_pack_uint(&p, ev->depth);
    kith_pack_uint(&p, ev->ts_ms);
    kith_pack_bin(&p, ev->body, ev->body_len);
    if (n == 8) {
      assert_int_equal(kith_pack_take(&p, &msg, &mlen), KITH_OK);
      kith_ident_sign(signer, msg, mlen, sig);
      g_free(msg);
    }
  }
  kith_pack_bin(&p, sig, 64);
  assert_int_equal(kith_pack_take(&p, &out, &len), KITH_OK);
  return g_bytes_new_take(out, len);
}

/* A message event on top of a's last event, by `by`, with a given body. */
static GBytes *craft(world *w, int by, uint32_t kind, const uint8_t *body,
                     size_t len, uint64_t depth_extra) {
  kith_event ev = {
      .version = KITH_EVENT_V1, .kind = kind, .ts_ms = w->now, .n_parents = 1};
  memcpy(ev.group_id, w->gid, 32);
  ev.depth = deepest_head(w->g[A], ev.parents[0]) + 1 + depth_extra;
  assert_int_equal(kith_event_build(&ev, &w->id[by], body, len), KITH_OK);
  GBytes *raw = g_bytes_new(ev.raw, ev.raw_len);
  kith_event_clear(&ev);
  return raw;
}

static GBytes *fake_message_body(uint64_t epoch) {
  uint8_t junk[60] = {1, 2, 3};
  kith_pack p;
  uint8_t *out;
  size_t len;
  kith_pack_init(&p);
  kith_pack_array(&p, 3);
  kith_pack_uint(&p, epoch);
  kith_pack_uint(&p, 0);
  kith_pack_bin(&p, junk, sizeof junk);
  assert_int_equal(kith_pack_take(&p, &out, &len), KITH_OK);
  return g_bytes_new_take(out, len);
}

static void non_member_cannot_inject(void **state) {
  world *w = *state;
  uint8_t before[32], after[32];
  kith_group_state_hash(w->g[A], before);
  GBytes *body = fake_message_body(kith_group_epoch_id(w->g[A]));
  size_t blen;
  const uint8_t *b = g_bytes_get_data(body, &blen);
  GBytes *raw = craft(w, Z, KITH_EV_MESSAGE, b, blen, 0);
  assert_int_equal(deliver(w->g[A], raw, NULL), KITH_ERR_NOT_MEMBER);
  g_bytes_unref(raw);
  /* wrong depth is a protocol error whoever sends it */
  raw = craft(w, B, KITH_EV_MESSAGE, b, blen, 1);
  assert_int_equal(deliver(w->g[A], raw, NULL), KITH_ERR_PROTOCOL);
  g_bytes_unref(raw);
  kith_group_state_hash(w->g[A], after);
  assert_memory_equal(before, after, 32);
  g_bytes_unref(body);
  /* the outsider itself cannot compose */
  GPtrArray *acc = acc_new();
  assert_int_equal(kith_group_send(w->g[Z], "x", 1, NULL, w->now, acc),
                   KITH_ERR_STATE);
  g_ptr_array_unref(acc);
}

static void outsider_replica_cannot_decrypt(void **state) {
  world *w = *state;
  send_text(w, A, "members only");
  for (guint i = 0; i < w->log->len; i++)
    assert_int_equal(deliver(w->g[Z], w->log->pdata[i], NULL),
                     KITH_ERR_MISSING);
  assert_int_equal(kith_group_n_events(w->g[Z]), 0);
  assert_int_equal(kith_group_n_held(w->g[Z]), w->log->len);
  assert_false(kith_group_is_ready(w->g[Z]));
  assert_string_equal(kith_group_name(w->g[Z]), "");
}

/* Re-signs a's view of `orig` (a message by `by`) with one ciphertext
 * byte flipped: well signed, but the body does not open. */
static GBytes *tamper_body(world *w, int by, GBytes *orig) {
  size_t len;
  const uint8_t *p = g_bytes_get_data(orig, &len);
  kith_event ev;
  assert_int_equal(kith_event_decode(p, len, w->gid, &ev), KITH_OK);
  ev.body[ev.body_len - 5] ^= 0x01; /* inside the sealed bin (the tag) */
  kith_event copy = ev;
  copy.raw = NULL;
  copy.body = g_memdup2(ev.body, ev.body_len);
  assert_int_equal(kith_event_build(&copy, &w->id[by], ev.body, ev.body_len),
                   KITH_OK);
  GBytes *out = g_bytes_new(copy.raw, copy.raw_len);
  kith_event_clear(&copy);
  kith_event_clear(&ev);
  return out;
}

/* A message body that does not open (only its author can sign one) is
 * accepted unread: acceptance must not depend on keys only some replicas
 * hold. The genuine message with the same chain number still opens. */
static void tampered_body_is_accepted_unread(void **state) {
  world *w = *state;
  send_text(w, B, "secret plan");
  GBytes *good = w->log->pdata[w->log->len - 1];
  GBytes *bad = tamper_body(w, B, good);
  int unread = 0;
  char *text = NULL;
  assert_int_equal(deliver_x(w->g[A], bad, &text, &unread), KITH_OK);
  assert_null(text);
  assert_int_equal(unread, 1);
  assert_int_equal(deliver(w->g[A], good, &text), KITH_OK);
  assert_string_equal(text, "secret plan");
  g_free(text);
  g_bytes_unref(bad);
}

static void member_cannot_forge_another(void **state) {
  world *w = *state;
  send_text(w, C, "i am bob");
  size_t len;
  const uint8_t *p = g_bytes_get_data(w->log->pdata[w->log->len - 1], &len);
  kith_event ev;
  assert_int_equal(kith_event_decode(p, len, w->gid, &ev), KITH_OK);
  memcpy(ev.author, w->id[B].pk, 32);
  GBytes *forged = pack_raw(&ev, &w->id[C]);
  assert_int_equal(deliver(w->g[A], forged, NULL), KITH_ERR_SIGNATURE);
  g_bytes_unref(forged);
  kith_event_clear(&ev);
}

/* A version-2 event carries no group id but signs it: the same bytes
 * offered to a replica of another group fail to verify there, while its
 * own group's replicas take them. */
static void event_of_another_group_fails_to_verify(void **state) {
  world *w = *state;
  send_text(w, B, "for this group only");
  GBytes *raw = w->log->pdata[w->log->len - 1];
  size_t len;
  const uint8_t *p = g_bytes_get_data(raw, &len);
  assert_int_equal(p[0], 0x98); /* version 2 */
  assert_int_equal(p[1], KITH_EVENT_V2);
  uint8_t other[32];
  memcpy(other, w->gid, 32);
  other[31] ^= 1;
  kith_group *g = kith_group_new(other, &w->id[C]);
  assert_int_equal(deliver(g, raw, NULL), KITH_ERR_SIGNATURE);
  assert_int_equal(kith_group_n_events(g), 0);
  kith_group_free(g);
  char *text = NULL;
  assert_int_equal(deliver(w->g[C], raw, &text), KITH_OK);
  assert_string_equal(text, "for this group only");
  g_free(text);
}

/* A version-2 message names no epoch and sends no nonce: it is 34 + 2 +
 * 9 + 24 bytes smaller than its version-1 form, and still opens. */
static void message_event_is_compact(void **state) {
  world *w = *state;
  char text[101];
  memset(text, 'x', 100);
  text[100] = 0;
  send_text(w, B, text);
  size_t len;
  g_bytes_get_data(w->log->pdata[w->log->len - 1], &len);
  /* header, version, kind 3; author 34; one parent 35; depth, n 2; ts 9;
   * body array header, sealed bin header 3; inner [text] 3; tag 16; sig
   * 66 */
  assert_int_equal(len, 100 + 3 + 34 + 35 + 2 + 9 + 3 + 3 + 16 + 66);
}

/* Replicas that build version 1 (what a node builds by default) rekey
 * with key-list boxes, and everyone reads the new epoch. */
static void version1_replicas_rekey_and_read(void **state) {
  world *w = *state;
  for (int i = A; i < N_NODES; i++)
    kith_group_set_event_version(w->g[i], KITH_EVENT_V1);
  do_rekey(w, B);
  GBytes *raw = w->log->pdata[w->log->len - 1];
  assert_int_equal(((const uint8_t *)g_bytes_get_data(raw, NULL))[1],
                   KITH_EVENT_V1);
  sync_nodes(w, A, C);
  send_text(w, C, "after a version-1 rekey");
  char *text = sync_read(w, A);
  assert_string_equal(text, "after a version-1 rekey");
  g_free(text);
  assert_same_state(w, A, C);
}

static void invite_rules(void **state) {
  world *w = *state;
  admit(w, A, D, "dave", KITH_ERR_USED_UP); /* both uses spent */
  assert_int_equal(kith_group_check_invite(w->g[A], w->inv_pk, w->now),
                   KITH_ERR_USED_UP);
  new_invite(w, A, 1, w->now + 1000);
  w->now += 2000;
  admit(w, A, D, "dave", KITH_ERR_EXPIRED);
  w->now -= 2000;
  admit(w, A, B, "bob", KITH_ERR_EXISTS);
  admit(w, A, D, "", KITH_ERR_ARG);
  admit(w, A, D, "bad\nname", KITH_ERR_ARG);
  uint8_t sig[64] = {0}, unknown[32] = {7};
  kith_accepted *a = NULL;
  GPtrArray *acc = acc_new();
  assert_int_equal(kith_group_admit(w->g[A], w->id[D].pk, "dave", w->inv_pk,
                                    sig, w->now, acc),
                   KITH_ERR_SIGNATURE);
  assert_int_equal(kith_group_check_invite(w->g[A], unknown, w->now),
                   KITH_ERR_NOT_FOUND);
  assert_int_equal(
      kith_group_admit(w->g[A], w->id[D].pk, "dave", unknown, sig, w->now, acc),
      KITH_ERR_NOT_FOUND);
  assert_int_equal(acc->len, 0);
  g_ptr_array_unref(acc);
  sync_node(w, C);
  admit(w, C, D, "dave", KITH_OK); /* any member may admit */
  assert_int_equal(kith_group_n_members(w->g[C]), 4);
  assert_int_equal(
      kith_group_invite(w->g[A], 0, w->now + 1, w->now, w->inv_secret, &a),
      KITH_ERR_ARG);
  acc = acc_new();
  assert_int_equal(kith_group_send(w->g[A], "", 0, NULL, w->now, acc),
                   KITH_ERR_ARG);
  g_ptr_array_unref(acc);
}

static void held_events_released_when_parents_arrive(void **state) {
  world *w = *state;
  send_text(w, A, "one");
  send_text(w, A, "two");
  /* d joins later: its replica gets the log backwards, its own add
   * included; everything is held until the create arrives last. */
  new_invite(w, A, 1, T0 + HOUR);
  admit(w, A, D, "dave", KITH_OK);
  for (guint i = w->log->len; i-- > 1;)
    assert_int_equal(deliver(w->g[D], w->log->pdata[i], NULL),
                     KITH_ERR_MISSING);
  /* the add's keys wait with it: nothing of an event not accepted is kept */
  assert_int_equal(kith_group_n_secrets(w->g[D]), 0);
  assert_int_equal(kith_group_n_events(w->g[D]), 0);
  GPtrArray *acc =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
  size_t len;
  const uint8_t *p = g_bytes_get_data(w->log->pdata[0], &len);
  assert_int_equal(kith_group_receive(w->g[D], p, len, RECV_NOW, acc), KITH_OK);
  assert_int_equal(acc->len, w->log->len);
  for (guint i = 0; i < acc->len; i++) { /* parents before children */
    const kith_event *y = &((kith_accepted *)acc->pdata[i])->ev;
    for (size_t k = 0; k < y->n_parents; k++) {
      guint j = 0;
      while (j < i && memcmp(((kith_accepted *)acc->pdata[j])->ev.id,
                             y->parents[k], 32) != 0)
        j++;
      assert_true(j < i);
    }
  }
  g_ptr_array_free(acc, TRUE);
  assert_true(kith_group_n_secrets(w->g[D]) > 0);
  assert_int_equal(kith_group_n_held(w->g[D]), 0);
  sync_node(w, A);
  assert_same_state(w, A, D);
  assert_true(kith_group_is_member(w->g[D], w->id[D].pk));
}

/* ---- property: any delivery order converges ---- */

static void random_partial_sync(world *w, GRand *rng, const int *nodes, int n) {
  for (int k = 0; k < n; k++)
    for (guint i = 0; i < w->log->len; i++)
      if (g_rand_double(rng) < 0.4) {
        kith_err rc = deliver(w->g[nodes[k]], w->log->pdata[i], NULL);
        assert_true(rc == KITH_OK || rc == KITH_ERR_DUPLICATE ||
                    rc == KITH_ERR_MISSING);
      }
}

/* Concurrent writers, including two adds spending one single-use invite
 * (b admits d, c admits e, neither having seen the other). */
static void build_concurrent_dag(world *w, GRand *rng) {
  new_invite(w, A, 1, T0 + HOUR);
  for (int i = A; i <= C; i++)
    sync_node(w, i);
  guint before = w->log->len;
  admit(w, B, D, "dave", KITH_OK);
  admit(w, C, E, "erin", KITH_OK);
  /* each newcomer sees only its own add and speaks at once */
  for (guint i = 0; i < w->log->len; i++) {
    if (i != before + 1)
      (void)!deliver(w->g[D], w->log->pdata[i], NULL);
    if (i != before)
      (void)!deliver(w->g[E], w->log->pdata[i], NULL);
  }
  send_text(w, D, "hello from d");
  send_text(w, E, "hello from e");
  static const int writers[] = {A, B, C};
  char text[64];
  for (int round = 0; w->log->len < 60; round++) {
    for (int k = 0; k < 3; k++)
      if (g_rand_double(rng) < 0.7) {
        g_snprintf(text, sizeof text, "round %d from %d", round, writers[k]);
        send_text(w, writers[k], text);
      }
    random_partial_sync(w, rng, writers, 3);
  }
  for (int i = A; i <= E; i++)
    sync_node(w, i);
}

/* Events sharing a depth with their predecessor in apply order: proof
 * that the DAG really has concurrent branches. */
typedef struct depth_ctx {
  kith_group *g;
  GArray *depths;
} depth_ctx;

static void collect_depth(void *ctx, uint64_t ts, const uint8_t id[32]) {
  depth_ctx *c = ctx;
  uint64_t d;
  assert_int_equal(kith_group_event_info(c->g, id, &d, NULL, NULL, NULL),
                   KITH_OK);
  g_array_append_val(c->depths, d);
  (void)ts;
}

static gint u64_cmp(gconstpointer a, gconstpointer b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int count_concurrent(kith_group *g) {
  depth_ctx c = {g, g_array_new(FALSE, FALSE, sizeof(uint64_t))};
  assert_int_equal(kith_group_each_id(g, collect_depth, &c), KITH_OK);
  g_array_sort(c.depths, u64_cmp);
  int n = 0;
  for (guint i = 1; i < c.depths->len; i++)
    n += g_array_index(c.depths, uint64_t, i) ==
         g_array_index(c.depths, uint64_t, i - 1);
  g_array_free(c.depths, TRUE);
  return n;
}

static kith_group *fresh_replica(world *w, int who) {
  kith_group *g = kith_group_new(w->gid, &w->id[who]);
  if (who == A || who == B)
    for (size_t i = 0; i < kith_group_n_secrets(w->g[A]); i++) {
      uint64_t ep;
      uint8_t s[32];
      kith_group_secret_at(w->g[A], i, &ep, s);
      kith_group_add_secret(g, ep, s);
    }
  return g;
}

static void shuffled_deliveries_converge(void **state) {
  world *w = *state;
  GRand *rng = g_rand_new_with_seed(20240601);
  build_concurrent_dag(w, rng);
  uint8_t ref[32];
  kith_group_state_hash(w->g[A], ref);
  /* exactly one of the two concurrent adds took effect */
  assert_int_equal(kith_group_is_member(w->g[A], w->id[D].pk) +
                       kith_group_is_member(w->g[A], w->id[E].pk),
                   1);
  int winner = kith_group_is_member(w->g[A], w->id[D].pk) ? D : E;
  int loser = winner == D ? E : D;
  for (int i = B; i <= E; i++)
    if (i != loser)
      assert_same_state(w, A, i);
  /* the loser was given the epoch of the race: the next sender rekeyed,
   * so it reads nothing sent after that */
  assert_false(kith_group_is_member(w->g[loser], w->id[loser].pk));
  assert_true(kith_group_n_events(w->g[loser]) < w->log->len);
  assert_true(kith_group_epoch(w->g[A]) >= 1);
  size_t total = w->log->len;
  assert_int_equal(kith_group_n_events(w->g[A]), total);
  assert_true(total >= 60);
  assert_int_equal(kith_group_n_members(w->g[A]), 4);
  assert_true(count_concurrent(w->g[A]) >= 10);
  GPtrArray *order = g_ptr_array_new();
  const int who[] = {A, winner, C, B};
  for (int round = 0; round < 200; round++) {
    g_ptr_array_set_size(order, 0);
    for (guint i = 0; i < total; i++) {
      g_ptr_array_add(order, w->log->pdata[i]);
      if (g_rand_double(rng) < 0.2) /* duplicates */
        g_ptr_array_add(order, w->log->pdata[g_rand_int_range(rng, 0, total)]);
    }
    for (guint i = order->len; i > 1; i--) {
      guint j = (guint)g_rand_int_range(rng, 0, (gint32)i);
      gpointer t = order->pdata[i - 1];
      order->pdata[i - 1] = order->pdata[j];
      order->pdata[j] = t;
    }
    kith_group *g = fresh_replica(w, who[round % 4]);
    for (guint i = 0; i < order->len; i++) {
      kith_err rc = deliver(g, order->pdata[i], NULL);
      assert_true(rc == KITH_OK || rc == KITH_ERR_DUPLICATE ||
                  rc == KITH_ERR_MISSING);
    }
    uint8_t h[32];
    kith_group_state_hash(g, h);
    assert_int_equal(kith_group_n_held(g), 0);
    assert_int_equal(kith_group_n_events(g), total);
    assert_memory_equal(h, ref, 32);
    kith_group_free(g);
  }
  g_ptr_array_free(order, TRUE);
  g_rand_free(rng);
}

/* ---- a large gap, children first (docs/protocol.md 5.8) ---- */

/* c misses GAP messages of a, then gets them in blocks of BLOCK, the last
 * block first and each block in order: children before their parents, as
 * a catch-up whose rounds came in the wrong order delivers them. The
 * group keeps the 512 shallowest held (those the next parents release),
 * forgets the deeper ones and names them (kith_group_take_evicted, so
 * that the gossip engine takes them again); the first block then
 * releases every held one, and the forgotten ones, sent again parents
 * first, are each accepted at once. */
static void large_gap_children_first_keeps_the_shallowest(void **state) {
  enum { GAP = 1500, BLOCK = 300, PER_AUTHOR = 512 };
  world *w = *state;
  kith_group *g = w->g[C];
  guint base = w->log->len;
  for (int i = 0; i < GAP; i++) {
    w->now += 10;
    send_text(w, A, "gap");
  }
  GByteArray *gone = g_byte_array_new();
  size_t evicted = 0;
  for (int b = GAP / BLOCK; b-- > 1;)
    for (int i = 0; i < BLOCK; i++) {
      assert_int_equal(deliver(g, w->log->pdata[base + b * BLOCK + i], NULL),
                       KITH_ERR_MISSING);
      evicted += kith_group_take_evicted(g, gone);
      assert_true(kith_group_n_held(g) <= PER_AUTHOR);
    }
  assert_int_equal(kith_group_n_held(g), PER_AUTHOR);
  assert_int_equal(evicted, GAP - BLOCK - PER_AUTHOR);
  assert_int_equal(gone->len, 32 * evicted);
  size_t before = kith_group_n_events(g);
  for (int i = 0; i < BLOCK; i++)
    assert_int_equal(deliver(g, w->log->pdata[base + i], NULL), KITH_OK);
  assert_int_equal(kith_group_n_events(g), before + BLOCK + PER_AUTHOR);
  assert_int_equal(kith_group_n_held(g), 0);
  assert_int_equal(kith_group_take_evicted(g, gone), 0);
  /* the forgotten ones are exactly the deepest */
  for (guint i = base + BLOCK + PER_AUTHOR; i < base + GAP; i++) {
    uint8_t id[32];
    size_t len;
    const uint8_t *raw = g_bytes_get_data(w->log->pdata[i], &len);
    crypto_generichash(id, 32, raw, len, NULL, 0);
    guint k = 0;
    while (k < gone->len && memcmp(gone->data + k, id, 32) != 0)
      k += 32;
    assert_true(k < gone->len);
    assert_int_equal(deliver(g, w->log->pdata[i], NULL), KITH_OK);
  }
  g_byte_array_free(gone, TRUE);
  assert_int_equal(kith_group_n_held(g), 0);
  sync_node(w, C);
  assert_same_state(w, A, C);
}

static void create_argument_errors(void **state) {
  kith_ident me = {0};
  uint8_t seed[32] = {42};
  assert_int_equal(kith_ident_from_seed(&me, seed), KITH_OK);
  kith_group *g = NULL;
  kith_accepted *a = NULL;
  kith_group_options o = {.name = "", .owner_name = "me"};
  assert_int_equal(kith_group_create(&me, &o, T0, &g, &a), KITH_ERR_ARG);
  char longname[KITH_NAME_MAX + 2];
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = 0;
  o.name = longname;
  assert_int_equal(kith_group_create(&me, &o, T0, &g, &a), KITH_ERR_ARG);
  o.name = "ok";
  o.owner_name = "";
  assert_int_equal(kith_group_create(&me, &o, T0, &g, &a), KITH_ERR_ARG);
  o.owner_name = "me";
  o.history = 7;
  assert_int_equal(kith_group_create(&me, &o, T0, &g, &a), KITH_ERR_ARG);
  assert_int_equal(kith_group_create(&me, NULL, T0, &g, &a), KITH_ERR_ARG);
  o.history = KITH_HISTORY_JOINED;
  o.admins_only_invites = 1;
  assert_int_equal(kith_group_create(&me, &o, T0, &g, NULL), KITH_OK);
  assert_int_equal(kith_group_history(g), KITH_HISTORY_JOINED);
  assert_true(kith_group_admins_only_invites(g));
  assert_int_equal(kith_group_epoch(g), 0);
  assert_true(kith_group_epoch_id(g) != 0);
  assert_true(kith_group_is_ready(g));
  assert_false(kith_group_rekey_due(g));
  assert_int_equal(kith_group_n_events(g), 1);
  assert_string_equal(kith_group_member_at(g, 0)->name, "me");
  assert_int_equal(kith_group_member_at(g, 0)->role, KITH_ROLE_OWNER);
  kith_group_free(g);
  kith_ident_clear(&me);
}

/* An own event is dated a ms after its latest parent when the clock has
 * not moved on (display order (ts_ms, id) then puts it after its parent),
 * but not when that would take it more than GRP_TS_LEAD_MS (1 s) ahead of
 * the clock: then it shares its parent's date. */
static uint64_t post_ts(kith_group *g, uint64_t now) {
  GPtrArray *acc = acc_new();
  assert_int_equal(kith_group_send(g, "hi", 2, NULL, now, acc), KITH_OK);
  uint64_t ts = ((kith_accepted *)acc->pdata[acc->len - 1])->ev.ts_ms;
  g_ptr_array_free(acc, TRUE);
  return ts;
}

static void own_events_are_dated_after_their_parents(void **state) {
  (void)state;
  kith_ident me = {0};
  uint8_t seed[32] = {7};
  assert_int_equal(kith_ident_from_seed(&me, seed), KITH_OK);
  kith_group *g = NULL;
  kith_group_options o = {.name = "g", .owner_name = "me"};
  assert_int_equal(kith_group_create(&me, &o, T0, &g, NULL), KITH_OK);
  assert_int_equal(post_ts(g, T0), T0 + 1);
  assert_int_equal(post_ts(g, T0), T0 + 2);
  assert_int_equal(post_ts(g, T0 + 50), T0 + 50); /* the clock is ahead */
  for (uint64_t i = 0; i < 1000; i++)             /* a burst within one ms */
    assert_int_equal(post_ts(g, T0 + 50), T0 + 51 + i);
  /* 1 s ahead of the clock: no further */
  assert_int_equal(post_ts(g, T0 + 50), T0 + 1050);
  assert_int_equal(post_ts(g, T0 + 50), T0 + 1050);
  kith_group_free(g);
  kith_ident_clear(&me);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(three_replicas_converge, setup, teardown),
      cmocka_unit_test_setup_teardown(non_member_cannot_inject, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(outsider_replica_cannot_decrypt, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(tampered_body_is_accepted_unread, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(event_of_another_group_fails_to_verify,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(message_event_is_compact, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(version1_replicas_rekey_and_read, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(member_cannot_forge_another, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(invite_rules, setup, teardown),
      cmocka_unit_test_setup_teardown(held_events_released_when_parents_arrive,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(shuffled_deliveries_converge, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          large_gap_children_first_keeps_the_shallowest, setup, teardown),
      cmocka_unit_test(create_argument_errors),
      cmocka_unit_test(own_events_are_dated_after_their_parents),
  };
  int failed = cmocka_run_group_tests_name("group", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
