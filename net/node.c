/* kith: the node runtime: start-up, groups, the tick, shutdown. */
#include <errno.h>
#include <glib-unix.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../core/codec.h"
#include "../core/home.h"
#include "node_int.h"

uint64_t node_now(void) {
  return (uint64_t)(g_get_monotonic_time() / 1000);
}

uint64_t node_wall_ms(void) {
  return (uint64_t)(g_get_real_time() / 1000);
}

void node_log(kith_node *n, const char *fmt, ...) {
  va_list ap;
  char *msg;
  GDateTime *now = g_date_time_new_now_utc();
  char *ts = g_date_time_format(now, "%H:%M:%S");

  va_start(ap, fmt);
  msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s.%03d kith[%.8s]: %s\n", ts,
          g_date_time_get_microsecond(now) / 1000, n->me_text, msg);
  g_free(msg);
  g_free(ts);
  g_date_time_unref(now);
}

node_group *node_group_get(kith_node *n, const uint8_t gid[32]) {
  char text[KITH_ID_TEXT_LEN + 1];

  kith_id_to_text(gid, text);
  return g_hash_table_lookup(n->groups, text);
}

static void node_group_free(gpointer data) {
  node_group *ng = data;

  gossip_group_stop(ng);
  kith_presence_free(ng->pr);
  kith_group_free(ng->g);
  g_free(ng);
}

node_group *node_group_add(kith_node *n, kith_group *g) {
  node_group *ng = g_new0(node_group, 1);

  ng->g = g;
  ng->member = kith_group_is_member(g, n->me.pk);
  kith_id_to_text(kith_group_id(g), ng->id_text);
  g_hash_table_replace(n->groups, ng->id_text, ng);
  return ng;
}

GBytes *node_event_raw(kith_node *n, node_group *ng, const uint8_t id[32],
                       uint64_t *ts_ms) {
  GBytes *raw = NULL;

  (void)n;
  if (kith_group_event_raw(ng->g, id, &raw) != KITH_OK)
    return NULL;
  if (kith_group_event_info(ng->g, id, NULL, ts_ms, NULL, NULL) != KITH_OK) {
    g_bytes_unref(raw);
    return NULL;
  }
  return raw;
}

const char *node_member_name(kith_node *n, const uint8_t id[32]) {
  GHashTableIter it;
  gpointer v;

  g_hash_table_iter_init(&it, n->groups);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    const kith_member *m = kith_group_find_member(((node_group *)v)->g, id);
    if (m)
      return m->name;
  }
  return "";
}

/* A failed write is logged at most once per STORE_LOG_MS: a full disk
 * fails every write. */
static void store_failed(kith_node *n, node_group *ng, kith_err err) {
  uint64_t now = node_now();

  n->store_failures++;
  if (n->store_failed_ms && now < n->store_failed_ms + STORE_LOG_MS)
    return;
  n->store_failed_ms = now;
  node_log(n,
           "could not write the store (%s) for group %.8s: what was not "
           "written is dropped (local changes are refused, events from "
           "peers come again); %" G_GUINT64_FORMAT " failures so far",
           kith_strerror(err), ng ? ng->id_text : "-", n->store_failures);
}

/* After a lost write: the group is opened again from the store, so that
 * memory holds exactly what the disk holds (a change that was not written
 * is forgotten, not sent), and its gossip engine starts afresh from it. */
static void reload_group(kith_node *n, node_group *ng) {
  kith_group *g = NULL;

  if (n->stopping)
    return;
  if (kith_group_open(kith_group_id(ng->g), &n->me, n->store, &g) != KITH_OK) {
    node_log(n, "could not read group %.8s back from the store", ng->id_text);
    return;
  }
  gossip_group_stop(ng);
  kith_group_free(ng->g);
  ng->g = g;
  ng->member = kith_group_is_member(g, n->me.pk);
  gossip_group_update(n, ng);
}

/* The open batch is lost: nothing of it is on disk; the groups that wrote
 * into it are reloaded. */
static void lose_batch(kith_node *n, kith_err err) {
  GList *gids = g_hash_table_get_keys(n->batch_groups);

  kith_store_batch_abort(n->store);
  if (n->commit_source)
    g_source_remove(n->commit_source);
  n->commit_source = 0;
  n->batch_writes = 0;
  store_failed(n, NULL, err);
  g_hash_table_steal_all(n->batch_groups);
  for (GList *l = gids; l; l = l->next) {
    node_group *ng = g_hash_table_lookup(n->groups, l->data);
    if (ng)
      reload_group(n, ng);
    g_free(l->data);
  }
  g_list_free(gids);
}

/* Before each commit every group writes what it keeps in memory between
 * events (keys, sender chains, count, heads). */
static kith_err flush_groups(kith_node *n) {
  GHashTableIter it;
  gpointer v;
  kith_err err = KITH_OK;

  g_hash_table_iter_init(&it, n->groups);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    node_group *ng = v;
    kith_err e = kith_group_flush(ng->g);
    if (e != KITH_OK) {
      g_hash_table_add(n->batch_groups, g_strdup(ng->id_text));
      if (err == KITH_OK)
        err = e;
    }
  }
  return err;
}

/* Commits the open batch (durable: synced to the disk, for what this
 * node is about to announce); on failure the batch is lost. */
static kith_err store_commit(kith_node *n, int durable) {
  kith_err err = KITH_OK;

  if (n->commit_source) {
    g_source_remove(n->commit_source);
    n->commit_source = 0;
  }
  if (!kith_store_in_batch(n->store))
    return KITH_OK;
  int64_t t0 = g_get_monotonic_time();
  err = flush_groups(n);
  if (err == KITH_OK)
    err = durable ? kith_store_batch_commit_durable(n->store)
                  : kith_store_batch_commit(n->store);
  n->commit_us += (uint64_t)(g_get_monotonic_time() - t0);
  if (err != KITH_OK)
    lose_batch(n, err);
  g_hash_table_remove_all(n->batch_groups);
  n->batch_writes = 0;
  return err;
}

kith_err node_store_flush(kith_node *n) {
  return store_commit(n, 0);
}

static gboolean on_commit(gpointer data) {
  kith_node *n = data;

  n->commit_source = 0;
  (void)node_store_flush(n);
  return G_SOURCE_REMOVE;
}

void node_batch(kith_node *n) {
  if (kith_store_in_batch(n->store))
    return;
  if (kith_store_batch_begin(n->store) == KITH_OK)
    n->commit_source = g_timeout_add(STORE_COMMIT_MS, on_commit, n);
  else
    node_log(n, "could not start a store transaction");
}

/* The change joins the open batch of peers' events: node_local_end commits
 * both at once, durably (one commit per post instead of two). A batch
 * that failed already is given up first: the change gets a fresh one. */
void node_local_begin(kith_node *n) {
  if (kith_store_batch_failed(n->store))
    (void)node_store_flush(n);
  node_batch(n);
}

/* Tells subscribers and the group's gossip of accepted events. */
static void announce(kith_node *n, node_group *ng, GPtrArray *acc,
                     acc_origin origin) {
  int was_member = ng->member;

  ng->member = kith_group_is_member(ng->g, n->me.pk);
  for (guint i = 0; i < acc->len; i++) {
    kith_accepted *a = g_ptr_array_index(acc, i);
    node_notify_accepted(n, ng, a, was_member);
    gossip_note(n, ng, a, origin);
  }
  g_ptr_array_set_size(acc, 0); /* its free function frees the entries */
}

kith_err node_local_end(kith_node *n, node_group *ng, GPtrArray *acc,
                        int new_group) {
  kith_err err;

  if (ng && !new_group) /* a new group is not kept at all (the caller) */
    g_hash_table_add(n->batch_groups, g_strdup(ng->id_text));
  err = store_commit(n, 1);
  if (err != KITH_OK) {
    if (acc)
      g_ptr_array_set_size(acc, 0);
    return err;
  }
  if (ng && acc)
    announce(n, ng, acc, ACC_LOCAL);
  join_check_progress(n);
  return KITH_OK;
}

/* Makes any rekey this node owes, and takes in events that were held for
 * their date. What it makes is written inside the open batch (if none is
 * open, one of its own) and committed to the disk before anyone hears of
 * it. */
static void maintain(kith_node *n, node_group *ng) {
  GPtrArray *acc =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);

  node_batch(n);
  if (kith_group_maintain(ng->g, node_wall_ms(), acc) != KITH_OK)
    node_log(n, "could not rekey group %.8s", ng->id_text);
  if (acc->len > 0 || kith_store_batch_failed(n->store))
    (void)node_local_end(n, ng, acc, 0);
  g_ptr_array_unref(acc);
}

void node_accepted(kith_node *n, node_group *ng, GPtrArray *acc,
                   acc_origin origin) {
  if (kith_store_batch_failed(n->store)) {
    g_hash_table_add(n->batch_groups, g_strdup(ng->id_text));
    g_ptr_array_set_size(acc, 0); /* reloaded: these are gone */
    (void)node_store_flush(n);
    return;
  }
  if (acc->len > 0)
    g_hash_table_add(n->batch_groups, g_strdup(ng->id_text));
  join_note_accepted(n, ng, acc->len);
  n->batch_writes += acc->len;
  announce(n, ng, acc, origin);
  if (n->batch_writes >= STORE_BATCH_MAX)
    (void)node_store_flush(n);
  join_check_progress(n);
  /* Events from peers may oblige this node to rekey (a member left). */
  if (origin != ACC_LOCAL && kith_group_is_member(ng->g, n->me.pk))
    maintain(n, ng);
}

static void maintain_groups(kith_node *n) {
  GList *groups = g_hash_table_get_values(n->groups);

  for (GList *l = groups; l; l = l->next) {
    node_group *ng = l->data;
    gossip_group_update(n, ng);
    if (kith_group_is_member(ng->g, n->me.pk))
      maintain(n, ng);
  }
  g_list_free(groups);
}

int node_shares_group(kith_node *n, const uint8_t id[32]) {
  GHashTableIter it;
  gpointer v;

  g_hash_table_iter_init(&it, n->groups);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    node_group *ng = v;
    if (kith_group_is_member(ng->g, id) &&
        kith_group_is_member(ng->g, n->me.pk))
      return 1;
  }
  return 0;
}

/* Makes room in the address table: the address heard of longest ago goes
 * (from memory only; the store keeps it). */
static void forget_oldest_addr(kith_node *n) {
  GHashTableIter it;
  gpointer k, v, oldest = NULL;
  uint64_t when = UINT64_MAX;

  g_hash_table_iter_init(&it, n->addrs);
  while (g_hash_table_iter_next(&it, &k, &v))
    if (((kith_stored_peer *)v)->seen_ms < when) {
      when = ((kith_stored_peer *)v)->seen_ms;
      oldest = k;
    }
  if (oldest)
    g_hash_table_remove(n->addrs, oldest);
}

int node_direct_failed(kith_node *n, const uint8_t id[32]) {
  char text[KITH_ID_TEXT_LEN + 1];
  uint64_t at;

  kith_id_to_text(id, text);
  at = (uint64_t)GPOINTER_TO_SIZE(g_hash_table_lookup(n->direct_failed, text));
  return at && node_now() < at + DIRECT_FAILED_MS;
}

void node_note_direct_failure(kith_node *n, const uint8_t id[32]) {
  char text[KITH_ID_TEXT_LEN + 1];

  kith_id_to_text(id, text);
  if (g_hash_table_size(n->direct_failed) < PEER_MAX * 4)
    g_hash_table_replace(n->direct_failed, g_strdup(text),
                         GSIZE_TO_POINTER((gsize)node_now()));
}

static void clear_direct_failure(kith_node *n, const uint8_t id[32]) {
  char text[KITH_ID_TEXT_LEN + 1];

  kith_id_to_text(id, text);
  g_hash_table_remove(n->direct_failed, text);
  peer_backoff_reset(n, id); /* a new address: try it at once */
}

void node_remember_addr(kith_node *n, const uint8_t id[32], const char *host,
                        uint16_t port, uint64_t ts_ms, int first_hand) {
  char text[KITH_ID_TEXT_LEN + 1];
  kith_stored_peer *sp;
  node_peer *p;

  if (memcmp(id, n->me.pk, KITH_ID_LEN) == 0 || port == 0 ||
      ts_ms > node_wall_ms() + ADDR_SKEW_MS)
    return;
  kith_id_to_text(id, text);
  sp = g_hash_table_lookup(n->addrs, text);
  if (sp && strcmp(sp->host, host) == 0 && sp->port == port) {
    sp->seen_ms = MAX(sp->seen_ms, ts_ms); /* confirmed: nothing changes */
    return;
  }
  if (sp && ts_ms <= sp->seen_ms && !first_hand)
    return; /* older news */
  if (!sp) {
    if (g_hash_table_size(n->addrs) >= PEER_MAX * 4)
      forget_oldest_addr(n);
    sp = g_new0(kith_stored_peer, 1);
    memcpy(sp->node, id, KITH_ID_LEN);
    g_hash_table_replace(n->addrs, g_strdup(text), sp);
  }
  g_strlcpy(sp->host, host, sizeof sp->host);
  sp->port = port;
  /* A first-hand address is ordered after what it replaces. */
  sp->seen_ms = MAX(ts_ms, sp->seen_ms + 1);
  n->addr_changes++;
  if (kith_store_put_peer(n->store, id, host, port, sp->seen_ms) != KITH_OK)
    node_log(n, "could not store a peer address");
  /* A new address is a new chance; an offer on its way to the old one is
   * sent to the new one. */
  clear_direct_failure(n, id);
  if ((p = peer_find(n, id)))
    peer_reoffer(p, host, port);
  frames_announce_addr(n, sp);
}

/* Opens a group from the store: its control events, keys and heads (an
 * older store's events are converted once). */
static kith_err load_group(kith_node *n, const uint8_t gid[32]) {
  kith_group *g = NULL;
  kith_err err;

  node_batch(n);
  err = kith_group_open(gid, &n->me, n->store, &g);
  if (err != KITH_OK) {
    kith_store_batch_abort(n->store);
    return err;
  }
  err = node_store_flush(n);
  if (err != KITH_OK) {
    kith_group_free(g);
    return err;
  }
  node_group_add(n, g);
  return KITH_OK;
}

static kith_err load_state(kith_node *n) {
  GByteArray *gids = g_byte_array_new();
  GArray *peers = g_array_new(FALSE, TRUE, sizeof(kith_stored_peer));
  kith_err err = kith_store_list_groups(n->store, gids);

  for (guint i = 0; err == KITH_OK && i + 32 <= gids->len; i += 32)
    err = load_group(n, gids->data + i);
  if (err == KITH_OK)
    err = relay_load(n);
  if (err == KITH_OK)
    err = kith_store_list_peers(n->store, peers);
  for (guint i = 0; err == KITH_OK && i < peers->len; i++) {
    kith_stored_peer *sp = g_new(kith_stored_peer, 1);
    char text[KITH_ID_TEXT_LEN + 1];

    *sp = g_array_index(peers, kith_stored_peer, i);
    kith_id_to_text(sp->node, text);
    g_hash_table_replace(n->addrs, g_strdup(text), sp);
  }
  g_array_unref(peers);
  g_byte_array_unref(gids);
  return err;
}

static gboolean reap(gpointer data) {
  kith_node *n = data;

  n->reaper = 0;
  g_ptr_array_set_size(n->retired, 0); /* its free function frees them */
  return G_SOURCE_REMOVE;
}

void node_retire_peer(kith_node *n, node_peer *p) {
  g_ptr_array_add(n->retired, p);
  if (!n->reaper && !n->stopping)
    n->reaper = g_idle_add(reap, n);
}

static gboolean on_tick(gpointer data) {
  kith_node *n = data;
  uint64_t now = node_now();
  /* A snapshot: peers closed meanwhile stay valid (retired) until reaped. */
  GList *peers = g_hash_table_get_values(n->peers);

  for (GList *l = peers; l; l = l->next)
    peer_tick(l->data, now);
  g_list_free(peers);
  peer_watch_addrs(n, now);
  join_tick(n, now);
  relay_tick(n, now);
  reflex_tick(n, now);
  maintain_groups(n);
  presence_tick(n);
  return G_SOURCE_CONTINUE;
}

static gboolean on_quit_signal(gpointer data) {
  kith_node *n = data;

  node_log(n, "stopping");
  g_main_loop_quit(n->loop);
  return G_SOURCE_CONTINUE; /* removed by node_free */
}

static void on_signal_datagram(kith_signal *s, const kith_signal_msg *m,
                               void *ud) {
  reflex_note_sender(ud, m->from, m->src);
  peer_on_signal(ud, m, NULL);
}

/* Opens the home: checks, lock, storage key, store, identity. Prints the
 * error, which names the file and the cause. */
static int open_home(kith_node *n, const kith_node_config *cfg) {
  uint8_t key[32], seed[32];
  char *why = NULL, *db = kith_home_path(n->home, KITH_HOME_DB_FILE);
  kith_err err = kith_home_check(n->home, &why);

  if (err == KITH_ERR_NOT_FOUND) { /* "... kith init": for this home */
    char *t = g_strdup_printf("%s --home %s", why, n->home);
    g_free(why);
    why = t;
  }
  if (err == KITH_OK) {
    err = kith_home_lock(n->home, &n->lock_fd);
    if (err != KITH_OK)
      why = err == KITH_ERR_BUSY
                ? g_strdup_printf("a node is already running for %s", n->home)
                : g_strdup_printf("cannot lock %s/%s: %s", n->home,
                                  KITH_HOME_LOCK_FILE, g_strerror(errno));
  }
  if (err == KITH_OK) {
    err =
        kith_home_load_key(n->home, cfg->passphrase, cfg->passphrase_len, key);
    /* A home made with the weaker limits of before is re-sealed. */
    if (err == KITH_OK && cfg->passphrase && kith_home_key_is_weak(n->home) &&
        kith_home_reseal_key(n->home, cfg->passphrase, cfg->passphrase_len) ==
            KITH_OK)
      fprintf(stderr, "kith: re-sealed %s/%s with stronger Argon2id limits\n",
              n->home, KITH_HOME_KEY_FILE);
    if (err != KITH_OK)
      why = g_strdup_printf("%s/%s: %s", n->home, KITH_HOME_KEY_FILE,
                            err == KITH_ERR_CRYPTO ? "wrong passphrase"
                            : err == KITH_ERR_FORBIDDEN
                                ? "a passphrase is needed"
                                : "unreadable or malformed");
  }
  if (err == KITH_OK) {
    err = kith_store_open(db, key, &n->store);
    if (err != KITH_OK)
      why = g_strdup_printf("cannot open %s: %s", db, kith_strerror(err));
  }
  sodium_memzero(key, sizeof key);
  if (err == KITH_OK) {
    err = kith_store_get_identity(n->store, seed, &n->name);
    err = err ? err : kith_ident_from_seed(&n->me, seed);
    sodium_memzero(seed, sizeof seed);
    if (err != KITH_OK)
      why = g_strdup_printf("cannot read the identity in %s: %s", db,
                            err == KITH_ERR_CRYPTO
                                ? "it does not open with this storage key"
                                : kith_strerror(err));
  }
  g_free(db);
  if (err != KITH_OK) {
    fprintf(stderr, "kith: error: %s\n", why);
    g_free(why);
    return 1;
  }
  kith_id_to_text(n->me.pk, n->me_text);
  return 0;
}

static int start_services(kith_node *n, uint16_t port) {
  char *sock = kith_home_path(n->home, KITH_HOME_SOCKET_FILE);
  kith_err err = load_state(n);

  if (err != KITH_OK) {
    fprintf(stderr, "kith: error: cannot load the store: %s\n",
            kith_strerror(err));
    g_free(sock);
    return 1;
  }
  err = kith_signal_new(n->ctx, &n->me, port, on_signal_datagram, n, &n->sig);
  if (err != KITH_OK) {
    fprintf(stderr,
            "kith: error: cannot bind the signal port %u: %s; choose "
            "another with --port\n",
            port, kith_strerror(err));
    g_free(sock);
    return 1;
  }
  reflex_init(n);
  kith_signal_set_stun(n->sig, reflex_on_stun, n);
  err = kith_control_new(n->ctx, sock, &n->ctl);
  g_free(sock);
  if (err != KITH_OK) {
    fprintf(stderr, "kith: error: cannot open the control socket: %s\n",
            kith_strerror(err));
    return 1;
  }
  node_rpc_register(n);
  doctor_rpc_register(n);
  return 0;
}

static void remove_source(guint *id) {
  if (*id)
    g_source_remove(*id);
  *id = 0;
}

/* Stops everything in an order that leaves no callback able to run on
 * freed state: first every timer and signal source, then the joins and
 * links (their ICE agents close asynchronously: a bounded drain of the
 * context lets them), then the groups, and the store last. */
static void node_free(kith_node *n) {
  presence_stop(n); /* while the engines and links still run */
  n->stopping = 1;
  remove_source(&n->tick_source);
  remove_source(&n->gossip_timer);
  remove_source(&n->quit_sources[0]);
  remove_source(&n->quit_sources[1]);
  remove_source(&n->reaper);
  remove_source(&n->flush_source); /* peer_close sends what waits */
  for (guint i = 0; n->joins && i < n->joins->len; i++) {
    node_join *j = n->joins->pdata[i];
    kith_rpc_error(j->call, KITH_ERR_STATE, "the node is stopping");
    join_free(j);
  }
  if (n->joins)
    g_ptr_array_set_size(n->joins, 0);
  if (n->peers) {
    GList *peers = g_hash_table_get_values(n->peers);
    for (GList *l = peers; l; l = l->next)
      peer_close(l->data, "node stopping");
    g_list_free(peers);
  }
  doctor_stop(n);
  if (n->ctl)
    kith_control_free(n->ctl);
  n->ctl = NULL;
  reflex_clear(n);
  if (n->sig)
    kith_signal_free(n->sig);
  n->sig = NULL;
  for (int i = 0;
       i < SHUTDOWN_DRAIN_MAX && g_main_context_iteration(n->ctx, FALSE); i++)
    ;
  if (n->retired)
    g_ptr_array_unref(n->retired);
  if (n->peers)
    g_hash_table_unref(n->peers);
  if (n->joins)
    g_ptr_array_unref(n->joins);
  if (n->admissions)
    g_hash_table_unref(n->admissions);
  if (n->groups)
    g_hash_table_unref(n->groups);
  if (n->addrs)
    g_hash_table_unref(n->addrs);
  if (n->friends)
    g_hash_table_unref(n->friends);
  kith_ratelimit_free(n->relay_rate);
  kith_replay_free(n->relayed_seen);
  if (n->direct_failed)
    g_hash_table_unref(n->direct_failed);
  if (n->backoff)
    g_hash_table_unref(n->backoff);
  if (n->store) {
    (void)node_store_flush(n);
    kith_store_close(n->store);
  }
  if (n->batch_groups)
    g_hash_table_unref(n->batch_groups);
  kith_ident_clear(&n->me);
  g_free(n->name);
  if (n->lock_fd >= 0)
    close(n->lock_fd);
  if (n->loop)
    g_main_loop_unref(n->loop);
}

/* STUN host names are resolved once at start (libnice wants an address);
 * TURN URLs take numeric hosts. Prints the error. */
static int read_servers(kith_node *n, const kith_node_config *cfg) {
  if (cfg->stun && cfg->stun[0]) {
    const char *colon = strrchr(cfg->stun, ':');
    char *host = g_strndup(cfg->stun, colon ? (gsize)(colon - cfg->stun) : 0);
    guint64 port = colon ? g_ascii_strtoull(colon + 1, NULL, 10) : 0;
    GList *addrs = NULL;
    if (host[0] && port > 0 && port < 65536)
      addrs =
          g_resolver_lookup_by_name(g_resolver_get_default(), host, NULL, NULL);
    if (addrs) {
      char *ip = g_inet_address_to_string(addrs->data);
      g_strlcpy(n->stun_host, ip, sizeof n->stun_host);
      n->stun_port = (uint16_t)port;
      g_free(ip);
    }
    g_resolver_free_addresses(addrs);
    g_free(host);
    if (!n->stun_host[0]) {
      fprintf(stderr, "kith: error: cannot use STUN server '%s'\n", cfg->stun);
      return 1;
    }
  }
  for (size_t i = 0; cfg->turn && cfg->turn[i]; i++) {
    if (i >= KITH_TURN_MAX ||
        kith_turn_parse(cfg->turn[i], &n->turn[n->n_turn]) != KITH_OK) {
      /* The URL holds a password: never echo it. */
      fprintf(stderr,
              "kith: error: bad TURN server %zu (want "
              "turn://USER:PASS@HOST:PORT, numeric HOST)\n",
              i + 1);
      return 1;
    }
    n->n_turn++;
  }
  return 0;
}

int kith_node_run(const kith_node_config *cfg) {
  kith_node node = {0}, *n = &node;
  int rc;

  if (sodium_init() < 0)
    return 1;
  n->lock_fd = -1;
  n->home = (char *)cfg->home;
  n->loopback = cfg->loopback;
  n->bind_addr = cfg->bind_addr;
  n->ctx = g_main_context_default();
  n->loop = g_main_loop_new(n->ctx, FALSE);
  n->groups =
      g_hash_table_new_full(g_str_hash, g_str_equal, NULL, node_group_free);
  n->peers = g_hash_table_new(g_str_hash, g_str_equal);
  n->addrs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  n->friends = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                     (GDestroyNotify)kith_friend_free);
  n->relay_rate = kith_ratelimit_new(RELAY_RATE, RELAY_BURST, PEER_MAX * 4);
  n->relayed_seen = kith_replay_new(RELAYED_SEEN_CAP, RELAYED_SEEN_PER_RELAY);
  n->direct_failed =
      g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  n->joins = g_ptr_array_new();
  presence_init(n);
  n->admissions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify)node_admission_free);
  n->retired = g_ptr_array_new_with_free_func((GDestroyNotify)peer_free);
  n->batch_groups =
      g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  n->start_ms = node_now();
  instance_init(n);
  n->relay = cfg->relay;
  rc = read_servers(n, cfg);
  if (rc == 0)
    rc = open_home(n, cfg);
  /* The key is derived: the passphrase is of no more use. */
  if (cfg->passphrase)
    sodium_memzero(cfg->passphrase, cfg->passphrase_len);
  if (rc == 0)
    rc = start_services(n, cfg->port);
  if (rc == 0) {
    node_log(n, "node %s up: signal port %u, %u groups%s", n->me_text,
             kith_signal_port(n->sig), g_hash_table_size(n->groups),
             n->relay ? ", relaying for friends" : "");
    n->quit_sources[0] = g_unix_signal_add(SIGINT, on_quit_signal, n);
    n->quit_sources[1] = g_unix_signal_add(SIGTERM, on_quit_signal, n);
    n->tick_source = g_timeout_add(NODE_TICK_MS, on_tick, n);
    on_tick(n);
    g_main_loop_run(n->loop);
  }
  node_free(n);
  return rc;
}
