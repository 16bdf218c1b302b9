/* Shared fixture for the group tests: a few identities, one replica each,
 * and the log of every event any of them composed. Include after cmocka. */
#ifndef KITH_TEST_GROUP_WORLD_H
#define KITH_TEST_GROUP_WORLD_H

#include <glib.h>
#include <sodium.h>
#include <string.h>

#include "core/codec.h"
#include "core/gcrypto.h"
#include "core/group.h"
#include "core/invite.h"

#define T0 1700000000000ull
#define HOUR (3600ull * 1000)
/* The receivers' clock: later than any event a test makes. */
#define RECV_NOW (T0 + 1000 * 24 * HOUR)

enum { A, B, C, D, E, F, Z, N_NODES };
static const char *const NAMES[N_NODES] = {"alice", "bob",  "carol", "dave",
                                           "erin",  "fred", "zed"};

typedef struct world {
  kith_ident id[N_NODES];
  kith_group *g[N_NODES];
  uint8_t gid[32];
  GPtrArray *log;     /* GBytes* raw events, in creation order */
  GHashTable *epochs; /* id (GBytes) -> epoch (g_memdup2'ed u64) of every
                         message-like event the world logged as accepted */
  uint8_t inv_secret[32], inv_pk[32];
  uint64_t now;
} world;

/* Notes the epoch of an accepted message-like event (a version-2 message
 * names none in its bytes). */
static inline void note_epoch(world *w, const kith_accepted *a) {
  if (a->ev.kind == KITH_EV_MESSAGE || a->ev.kind == KITH_EV_REACT ||
      a->ev.kind == KITH_EV_EDIT || a->ev.kind == KITH_EV_DELETE)
    g_hash_table_replace(w->epochs, g_bytes_new(a->ev.id, 32),
                         g_memdup2(&a->epoch, sizeof a->epoch));
}

static inline GPtrArray *acc_new(void) {
  return g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
}

/* Moves every accepted event of acc into the log; returns how many. */
static inline guint log_all(world *w, GPtrArray *acc) {
  guint n = acc->len;
  for (guint i = 0; i < acc->len; i++) {
    kith_accepted *a = acc->pdata[i];
    note_epoch(w, a);
    g_ptr_array_add(w->log, g_bytes_new(a->ev.raw, a->ev.raw_len));
  }
  g_ptr_array_unref(acc);
  return n;
}

static inline void log_take(world *w, kith_accepted *a) {
  note_epoch(w, a);
  g_ptr_array_add(w->log, g_bytes_new(a->ev.raw, a->ev.raw_len));
  kith_accepted_free(a);
}

/* Delivers raw bytes; *text (if set) gets the text of the last message
 * accepted by the call, *unread (if set) counts accepted unread ones. */
static inline kith_err deliver_x(kith_group *g, GBytes *raw, char **text,
                                 int *unread) {
  GPtrArray *acc = acc_new();
  size_t len;
  const uint8_t *p = g_bytes_get_data(raw, &len);
  kith_err rc = kith_group_receive(g, p, len, RECV_NOW, acc);
  for (guint i = 0; i < acc->len; i++) {
    kith_accepted *a = acc->pdata[i];
    if (a->text && text) {
      g_free(*text);
      *text = g_strdup(a->text);
    }
    if (!a->text && a->ev.kind == KITH_EV_MESSAGE && unread)
      (*unread)++;
  }
  g_ptr_array_free(acc, TRUE);
  return rc;
}

static inline kith_err deliver(kith_group *g, GBytes *raw, char **text) {
  return deliver_x(g, raw, text, NULL);
}

static inline int ok_rc(kith_err rc) {
  return rc == KITH_OK || rc == KITH_ERR_DUPLICATE || rc == KITH_ERR_MISSING ||
         rc == KITH_ERR_NOT_MEMBER;
}

static inline void sync_node(world *w, int n) {
  for (guint i = 0; i < w->log->len; i++) {
    kith_err rc = deliver(w->g[n], w->log->pdata[i], NULL);
    assert_true(ok_rc(rc));
  }
}

static inline void sync_nodes(world *w, int from, int to) {
  for (int i = from; i <= to; i++)
    sync_node(w, i);
}

static inline void assert_same_state(world *w, int x, int y) {
  uint8_t hx[32], hy[32];
  kith_group_state_hash(w->g[x], hx);
  kith_group_state_hash(w->g[y], hy);
  assert_int_equal(kith_group_n_events(w->g[x]), kith_group_n_events(w->g[y]));
  assert_memory_equal(hx, hy, 32);
}

static inline void admit_x(world *w, int by, int who, kith_err want) {
  uint8_t sig[64];
  kith_invite_sign_join(w->inv_secret, w->gid, w->id[who].pk, sig);
  GPtrArray *acc = acc_new();
  assert_int_equal(kith_group_admit(w->g[by], w->id[who].pk, NAMES[who],
                                    w->inv_pk, sig, w->now, acc),
                   want);
  log_all(w, acc);
}

static inline void new_invite(world *w, int by, uint32_t uses,
                              uint64_t expires) {
  kith_accepted *a = NULL;
  assert_int_equal(
      kith_group_invite(w->g[by], uses, expires, w->now, w->inv_secret, &a),
      KITH_OK);
  kith_invite_public_key(w->inv_secret, w->inv_pk);
  log_take(w, a);
}

static inline void send_text(world *w, int by, const char *text) {
  GPtrArray *acc = acc_new();
  assert_int_equal(
      kith_group_send(w->g[by], text, strlen(text), NULL, w->now, acc),
      KITH_OK);
  kith_accepted *last = acc->pdata[acc->len - 1];
  assert_string_equal(last->text, text);
  log_all(w, acc);
}

/* The deepest head of g (ties: the larger id) and its depth. */
static inline uint64_t deepest_head(kith_group *g, uint8_t id[32]) {
  GByteArray *hs = g_byte_array_new();
  uint64_t best = 0;
  kith_group_heads(g, hs);
  assert_true(hs->len >= 32);
  for (guint i = 0; i < hs->len; i += 32) {
    uint64_t d;
    assert_int_equal(
        kith_group_event_info(g, hs->data + i, &d, NULL, NULL, NULL), KITH_OK);
    if (i == 0 || d > best || (d == best && memcmp(hs->data + i, id, 32) > 0))
      best = d, memcpy(id, hs->data + i, 32);
  }
  g_byte_array_free(hs, TRUE);
  return best;
}

/* The last message text n can read after a full sync, NULL if none. */
static inline char *sync_read(world *w, int n) {
  char *text = NULL;
  for (guint i = 0; i < w->log->len; i++)
    (void)!deliver(w->g[n], w->log->pdata[i], &text);
  return text;
}

static inline void world_init(world *w) {
  memset(w, 0, sizeof *w);
  w->log = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  w->epochs = g_hash_table_new_full(g_bytes_hash, g_bytes_equal,
                                    (GDestroyNotify)g_bytes_unref, g_free);
  w->now = T0;
  for (int i = 0; i < N_NODES; i++) {
    uint8_t seed[32];
    memset(seed, 0x10 + i, sizeof seed);
    assert_int_equal(kith_ident_from_seed(&w->id[i], seed), KITH_OK);
  }
}

/* a creates the group; b..last are admitted (by a) and synced. */
static inline world *world_new(kith_history history, int admins_only,
                               int last) {
  world *w = g_new0(world, 1);
  world_init(w);
  kith_group_options o = {.name = "friends",
                          .owner_name = NAMES[A],
                          .history = history,
                          .admins_only_invites = admins_only};
  kith_accepted *a = NULL;
  assert_int_equal(kith_group_create(&w->id[A], &o, w->now, &w->g[A], &a),
                   KITH_OK);
  memcpy(w->gid, kith_group_id(w->g[A]), 32);
  log_take(w, a);
  for (int i = B; i < N_NODES; i++)
    w->g[i] = kith_group_new(w->gid, &w->id[i]);
  /* the worlds build version-2 events (after a version-1 create) */
  for (int i = A; i < N_NODES; i++)
    kith_group_set_event_version(w->g[i], KITH_EVENT_V2);
  if (last >= B) {
    new_invite(w, A, 10, T0 + HOUR);
    for (int i = B; i <= last; i++)
      admit_x(w, A, i, KITH_OK);
    sync_nodes(w, A, last);
  }
  return w;
}

static inline void world_free(world *w) {
  for (int i = 0; i < N_NODES; i++) {
    kith_group_free(w->g[i]);
    kith_ident_clear(&w->id[i]);
  }
  g_ptr_array_free(w->log, TRUE);
  g_hash_table_destroy(w->epochs);
  g_free(w);
}

/* Local operations that must succeed; their events go to the log. */
static inline void do_remove(world *w, int by, int who) {
  GPtrArray *acc = acc_new();
  assert_int_equal(kith_group_remove(w->g[by], w->id[who].pk, w->now, acc),
                   KITH_OK);
  assert_int_equal(log_all(w, acc), 2); /* remove + rekey */
}

static inline void do_role(world *w, int by, int who, kith_role r) {
  GPtrArray *acc = acc_new();
  assert_int_equal(kith_group_set_role(w->g[by], w->id[who].pk, r, w->now, acc),
                   KITH_OK);
  log_all(w, acc);
}

static inline void do_rekey(world *w, int by) {
  GPtrArray *acc = acc_new();
  assert_int_equal(kith_group_rekey(w->g[by], w->now, acc), KITH_OK);
  log_all(w, acc);
}

static inline void do_leave(world *w, int by) {
  GPtrArray *acc = acc_new();
  assert_int_equal(kith_group_leave(w->g[by], w->now, acc), KITH_OK);
  log_all(w, acc);
}

static inline const kith_member *member_of(world *w, int at, int who) {
  return kith_group_find_member(w->g[at], w->id[who].pk);
}

/* The epoch secret of epoch held by replica g; if it has none, the last
 * secret it holds (*epoch is updated). */
static inline void secret_of(kith_group *g, uint64_t *epoch, uint8_t out[32]) {
  uint64_t last = 0;
  for (size_t i = 0; i < kith_group_n_secrets(g); i++) {
    uint64_t ep;
    kith_group_secret_at(g, i, &ep, out);
    if (ep == *epoch)
      return;
    if (!(ep & KITH_EPOCH_META_ONLY))
      last = ep;
  }
  assert_true(last != 0);
  *epoch = last;
  secret_of(g, epoch, out);
}

/* One parent: by's deepest head. */
static inline void craft_start(world *w, int by, uint32_t kind,
                               kith_event *ev) {
  memset(ev, 0, sizeof *ev);
  ev->version = KITH_EVENT_V1; /* the form that names any epoch */
  ev->kind = kind;
  ev->ts_ms = w->now;
  ev->n_parents = 1;
  memcpy(ev->group_id, w->gid, 32);
  ev->depth = deepest_head(w->g[by], ev->parents[0]) + 1;
}

static inline GBytes *craft_finish(world *w, int by, kith_event *ev,
                                   uint64_t epoch, int64_t n,
                                   const uint8_t key[32], kith_pack *inner,
                                   const uint8_t *extra, size_t extra_len) {
  uint8_t ad[77], *bytes;
  size_t len;
  memcpy(ad, "kith body v1", 12);
  ad[12] = (uint8_t)ev->kind;
  memcpy(ad + 13, w->id[by].pk, 32);
  memcpy(ad + 45, w->gid, 32);
  size_t sl = inner->sb.size + KITH_SEALED_OVERHEAD;
  uint8_t *sealed = g_malloc(sl);
  kith_gcrypto_seal(key, ad, sizeof ad, (const uint8_t *)inner->sb.data,
                    inner->sb.size, sealed);
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 3);
  kith_pack_uint(&p, epoch);
  if (n >= 0)
    kith_pack_uint(&p, (uint64_t)n);
  kith_pack_bin(&p, sealed, sl);
  if (n < 0 && extra)
    kith_pack_bin(&p, extra, extra_len);
  else if (n < 0)
    kith_pack_nil(&p);
  assert_int_equal(kith_pack_take(&p, &bytes, &len), KITH_OK);
  assert_int_equal(kith_event_build(ev, &w->id[by], bytes, len), KITH_OK);
  GBytes *raw = g_bytes_new(ev->raw, ev->raw_len);
  kith_event_clear(ev);
  kith_pack_clear(inner);
  g_free(bytes);
  g_free(sealed);
  return raw;
}

/* A non-message event by `by` (any rule broken on purpose), sealed under
 * the meta key of by's current epoch; inner is consumed. */
static inline GBytes *craft_meta(world *w, int by, uint32_t kind,
                                 kith_pack *inner, const uint8_t *extra,
                                 size_t extra_len) {
  kith_event ev;
  uint8_t secret[32], meta[32];
  uint64_t epoch = kith_group_epoch_id(w->g[by]);
  craft_start(w, by, kind, &ev);
  secret_of(w->g[by], &epoch, secret);
  kith_gcrypto_meta_key(secret, meta);
  return craft_finish(w, by, &ev, epoch, -1, meta, inner, extra, extra_len);
}

/* A message by `by` in epoch with chain number n. */
static inline GBytes *craft_message(world *w, int by, uint64_t epoch,
                                    uint64_t n, const char *text) {
  kith_event ev;
  uint8_t secret[32], chain[32], key[32];
  craft_start(w, by, KITH_EV_MESSAGE, &ev);
  secret_of(w->g[by], &epoch, secret);
  kith_gcrypto_chain_start(secret, w->id[by].pk, chain);
  for (uint64_t i = 0; i <= n; i++)
    kith_gcrypto_chain_step(chain, key);
  kith_pack inner;
  kith_pack_init(&inner);
  kith_pack_array(&inner, 1);
  kith_pack_cstr(&inner, text);
  return craft_finish(w, by, &ev, epoch, (int64_t)n, key, &inner, NULL, 0);
}

#endif
