/* kith: the node's control-socket methods (see docs/protocol.md). */
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sodium.h>
#include <string.h>

#include "../core/codec.h"
#include "node_rpc_int.h"

#define INVITE_MAX_TTL_S (365 * 24 * 3600)
#define LOG_PAGE_MAX 500 /* messages in one log reply */
#define LOG_PAGE_BYTES                                                         \
  (192 * 1024)                 /* one log reply at most (the control           \
                                  socket's limit is 256 KiB) */
#define LOG_ENTRY_OVERHEAD 300 /* keys, ids and name of one entry */
#define TOPIC_RULE                                                             \
  "a topic is 0 to %d bytes of text without control characters (empty "        \
  "clears it)"

const char *rpc_role_name(kith_role r) {
  return r == KITH_ROLE_OWNER   ? "owner"
         : r == KITH_ROLE_ADMIN ? "admin"
                                : "member";
}

void rpc_kv_str(kith_pack *pk, const char *k, const char *v) {
  kith_pack_cstr(pk, k);
  kith_pack_cstr(pk, v);
}

void rpc_kv_uint(kith_pack *pk, const char *k, uint64_t v) {
  kith_pack_cstr(pk, k);
  kith_pack_uint(pk, v);
}

void rpc_kv_id(kith_pack *pk, const char *k, const uint8_t id[32]) {
  char text[KITH_ID_TEXT_LEN + 1];

  kith_id_to_text(id, text);
  rpc_kv_str(pk, k, text);
}

/* Sends what pk holds as the result and frees it. */
void node_rpc_reply(kith_node *n, kith_rpc_call *call, kith_pack *pk) {
  uint8_t *buf;
  size_t len;

  (void)node_store_flush(n); /* what we answer about is on disk first */

  if (kith_pack_take(pk, &buf, &len) != KITH_OK) {
    kith_rpc_error(call, KITH_ERR_NOMEM, "out of memory");
    return;
  }
  kith_rpc_reply(call, buf, len);
  g_free(buf);
}

/* params[i] as a string (borrowed into a bounded copy). */
int node_rpc_param_str(const msgpack_object *params, uint32_t i, char *out,
                       size_t cap) {
  const char *s;
  size_t len;

  if (params->type != MSGPACK_OBJECT_ARRAY || i >= params->via.array.size ||
      kith_codec_str(&params->via.array.ptr[i], cap - 1, &s, &len) != KITH_OK)
    return 0;
  memcpy(out, s, len);
  out[len] = 0;
  return 1;
}

int rpc_param_uint(const msgpack_object *params, uint32_t i, uint64_t max,
                   uint64_t *v) {
  return params->type == MSGPACK_OBJECT_ARRAY && i < params->via.array.size &&
         kith_codec_uint(&params->via.array.ptr[i], max, v) == KITH_OK;
}

/* The naming rule of GROUP and MEMBER: a full id, else a unique name,
 * else a unique prefix of an id. Feed it every candidate, then ask. */
typedef struct name_match {
  const char *arg;
  const void *exact, *by_name, *by_prefix;
  int names, prefixes;
} name_match;

static void match_offer(name_match *m, const void *item, const char *id_text,
                        const char *name) {
  if (strcmp(id_text, m->arg) == 0)
    m->exact = item;
  if (strcmp(name, m->arg) == 0)
    m->by_name = item, m->names++;
  if (g_str_has_prefix(id_text, m->arg))
    m->by_prefix = item, m->prefixes++;
}

/* The item, or NULL with *ambiguous set when several match. */
static const void *match_result(const name_match *m, int *ambiguous) {
  *ambiguous = !m->exact && (m->names > 1 || m->prefixes > 1);
  if (m->exact)
    return m->exact;
  if (m->names == 1)
    return m->by_name;
  if (m->names == 0 && m->prefixes == 1)
    return m->by_prefix;
  return NULL;
}

/* GROUP: a full id, a unique name, or a unique id prefix, among the groups
 * this node holds (members and former members, not groups still being
 * joined). Replies with
 * the error itself on failure. */
node_group *rpc_resolve_group(kith_node *n, kith_rpc_call *call,
                              const msgpack_object *params) {
  char arg[256];
  GHashTableIter it;
  gpointer v;
  name_match m = {.arg = arg};
  const node_group *found;
  int ambiguous;

  if (!node_rpc_param_str(params, 0, arg, sizeof arg) || !arg[0]) {
    kith_rpc_error(call, KITH_ERR_ARG, "missing group name or id");
    return NULL;
  }
  g_hash_table_iter_init(&it, n->groups);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    node_group *ng = v;
    /* Former members keep their history readable; changes are refused by
     * the group itself (not a member). */
    if (kith_group_n_events(ng->g) != 0 && !node_is_joining(n, ng))
      match_offer(&m, ng, ng->id_text, kith_group_name(ng->g));
  }
  if ((found = match_result(&m, &ambiguous)))
    return (node_group *)found;
  if (ambiguous)
    kith_rpc_error(call, KITH_ERR_AMBIGUOUS,
                   "'%s' matches several groups; give more of the group id "
                   "(see kith group list)",
                   arg);
  else
    kith_rpc_error(call, KITH_ERR_NOT_FOUND,
                   "no group '%s' on this node (see kith group list)", arg);
  return NULL;
}

static void rpc_id(kith_rpc_call *call, const msgpack_object *params,
                   void *ud) {
  kith_node *n = ud;
  kith_pack pk;

  kith_pack_init(&pk);
  msgpack_pack_map(&pk.pk, 2);
  rpc_kv_str(&pk, "node_id", n->me_text);
  rpc_kv_str(&pk, "name", n->name);
  node_rpc_reply(n, call, &pk);
}

static unsigned count_up(kith_node *n) {
  GHashTableIter it;
  gpointer v;
  unsigned up = 0;

  g_hash_table_iter_init(&it, n->peers);
  while (g_hash_table_iter_next(&it, NULL, &v))
    up += ((node_peer *)v)->state == PEER_UP;
  return up;
}

static unsigned count_groups(kith_node *n) {
  GHashTableIter it;
  gpointer v;
  unsigned count = 0;

  g_hash_table_iter_init(&it, n->groups);
  while (g_hash_table_iter_next(&it, NULL, &v))
    count += kith_group_is_member(((node_group *)v)->g, n->me.pk);
  return count;
}

static void rpc_status(kith_rpc_call *call, const msgpack_object *params,
                       void *ud) {
  kith_node *n = ud;
  kith_pack pk;

  kith_pack_init(&pk);
  msgpack_pack_map(&pk.pk, 8);
  rpc_kv_str(&pk, "node_id", n->me_text);
  rpc_kv_str(&pk, "name", n->name);
  rpc_kv_uint(&pk, "port", kith_signal_port(n->sig));
  rpc_kv_uint(&pk, "peers", count_up(n));
  rpc_kv_uint(&pk, "groups", count_groups(n));
  rpc_kv_uint(&pk, "uptime_s", (node_now() - n->start_ms) / 1000);
  rpc_kv_uint(&pk, "addr_changes", n->addr_changes);
  rpc_kv_uint(&pk, "addrs_sent", n->addrs_sent);
  node_rpc_reply(n, call, &pk);
}

static void rpc_peers(kith_rpc_call *call, const msgpack_object *params,
                      void *ud) {
  kith_node *n = ud;
  kith_pack pk;
  GList *peers = g_hash_table_get_values(n->peers);

  kith_pack_init(&pk);
  kith_pack_array(&pk, count_up(n));
  for (GList *l = peers; l; l = l->next) {
    node_peer *p = l->data;
    if (p->state != PEER_UP)
      continue;
    msgpack_pack_map(&pk.pk, 6);
    rpc_kv_str(&pk, "node_id", p->id_text);
    rpc_kv_str(&pk, "name", node_member_name(n, p->id));
    rpc_kv_str(&pk, "path", peer_path(p));
    rpc_kv_uint(&pk, "path_s", peer_path_age_s(p, node_now()));
    rpc_kv_str(&pk, "addr", peer_addr(p));
    rpc_kv_uint(&pk, "rtt_ms", (uint64_t)(p->rtt_ms + 0.5));
  }
  g_list_free(peers);
  node_rpc_reply(n, call, &pk);
}

void rpc_pack_event_id(kith_node *n, kith_rpc_call *call,
                       const uint8_t id[32]) {
  kith_pack pk;

  kith_pack_init(&pk);
  msgpack_pack_map(&pk.pk, 1);
  rpc_kv_id(&pk, "event_id", id);
  node_rpc_reply(n, call, &pk);
}

/* The answer to a change that could not be written: nothing changed. */
void rpc_reply_store_error(kith_node *n, kith_rpc_call *call, kith_err err) {
  if (err == KITH_ERR_FULL)
    kith_rpc_error(call, err,
                   "disk full: nothing was sent or changed; free some space "
                   "on the disk that holds %s and try again",
                   n->home);
  else
    kith_rpc_error(call, err,
                   "cannot write the store (%s): nothing was sent or changed",
                   kith_strerror(err));
}

/* Stores and spreads one event made since node_local_begin. On a failed
 * write it answers call with the error (nothing changed); on success it
 * answers with the event id only for PUBLISH_REPLY (else the caller
 * answers). */
enum { PUBLISH_QUIET = 0, PUBLISH_REPLY = 1 };
static kith_err publish_local(kith_node *n, kith_rpc_call *call, node_group *ng,
                              kith_accepted *acc, int how) {
  GPtrArray *list = rpc_new_batch();
  uint8_t id[32];
  kith_err err;

  memcpy(id, acc->ev.id, 32);
  g_ptr_array_add(list, acc);
  err = node_local_end(n, ng, list, 0);
  g_ptr_array_unref(list);
  if (err != KITH_OK)
    rpc_reply_store_error(n, call, err);
  else if (how == PUBLISH_REPLY)
    rpc_pack_event_id(n, call, id);
  return err;
}

/* Group names are unique among the groups this node is a member of (a
 * joined group may still bring a second one: then use its id). Replies
 * with the error when taken. */
static int name_taken(kith_node *n, kith_rpc_call *call, const char *name) {
  GHashTableIter it;
  gpointer v;

  g_hash_table_iter_init(&it, n->groups);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    node_group *ng = v;
    if (kith_group_is_member(ng->g, n->me.pk) &&
        strcmp(kith_group_name(ng->g), name) == 0) {
      kith_rpc_error(call, KITH_ERR_EXISTS,
                     "you already have a group named '%s' (%s); choose "
                     "another name",
                     name, ng->id_text);
      return 1;
    }
  }
  return 0;
}

static void rpc_group_create(kith_rpc_call *call, const msgpack_object *params,
                             void *ud) {
  kith_node *n = ud;
  char name[KITH_NAME_MAX + 1], hist[16] = "shared";
  kith_group *g;
  kith_accepted *acc;
  node_group *ng;
  kith_pack pk;
  kith_err err;

  if (!node_rpc_param_str(params, 0, name, sizeof name) ||
      !g_strstrip(name)[0]) {
    kith_rpc_error(call, KITH_ERR_ARG,
                   "a group name is 1 to %d bytes of printable text",
                   KITH_NAME_MAX);
    return;
  }
  if (name_taken(n, call, name))
    return;
  if (params->via.array.size > 1 &&
      !node_rpc_param_str(params, 1, hist, sizeof hist))
    hist[0] = 0;
  if (strcmp(hist, "shared") != 0 && strcmp(hist, "joined") != 0) {
    kith_rpc_error(call, KITH_ERR_ARG, "history is shared or joined");
    return;
  }
  /* optional: announce bool, invites "all" or "admins" */
  int announce = params->via.array.size > 2 &&
                 params->via.array.ptr[2].type == MSGPACK_OBJECT_BOOLEAN &&
                 params->via.array.ptr[2].via.boolean;
  char invites[16] = "all";
  if (params->via.array.size > 3 &&
      (!node_rpc_param_str(params, 3, invites, sizeof invites) ||
       (strcmp(invites, "all") != 0 && strcmp(invites, "admins") != 0))) {
    kith_rpc_error(call, KITH_ERR_ARG, "invites is all or admins");
    return;
  }
  kith_group_options opt = {
      .name = name,
      .owner_name = n->name,
      .history = hist[0] == 's' ? KITH_HISTORY_SHARED : KITH_HISTORY_JOINED,
      .admins_only_invites = strcmp(invites, "admins") == 0};
  err = kith_group_create(&n->me, &opt, node_wall_ms(), &g, &acc);
  if (err != KITH_OK) {
    kith_rpc_error(call, err, "cannot create the group: %s",
                   kith_strerror(err));
    return;
  }
  (void)node_store_flush(n); /* the abort below must not take peers' events */
  node_local_begin(n);
  err = kith_store_put_group(n->store, kith_group_id(g));
  if (err == KITH_OK)
    err = kith_group_attach_store(g, n->store);
  if (err != KITH_OK) {
    kith_store_batch_abort(n->store);
    kith_accepted_free(acc);
    kith_group_free(g);
    rpc_reply_store_error(n, call, err);
    return;
  }
  ng = node_group_add(n, g);
  GPtrArray *list = rpc_new_batch();
  g_ptr_array_add(list, acc);
  if (announce &&
      kith_group_set_announce(g, 1, node_wall_ms(), list) != KITH_OK)
    node_log(n, "could not set announce mode on a new group");
  err = node_local_end(n, ng, list, 1);
  g_ptr_array_unref(list);
  if (err != KITH_OK) {
    g_hash_table_remove(n->groups, ng->id_text);
    rpc_reply_store_error(n, call, err);
    return;
  }
  gossip_group_update(n, ng);
  node_log(n, "created group %.8s", ng->id_text);
  kith_pack_init(&pk);
  msgpack_pack_map(&pk.pk, 2);
  rpc_kv_str(&pk, "group_id", ng->id_text);
  rpc_kv_str(&pk, "name", name);
  node_rpc_reply(n, call, &pk);
}

static const kith_member *my_member(kith_node *n, node_group *ng) {
  return kith_group_find_member(ng->g, n->me.pk);
}

static void rpc_group_list(kith_rpc_call *call, const msgpack_object *params,
                           void *ud) {
  kith_node *n = ud;
  kith_pack pk;
  GList *groups = g_hash_table_get_values(n->groups);

  GPtrArray *listed = g_ptr_array_new();
  /* A group this node left or was removed from stays listed, as
   * "former" (its history is still here; group info and log work), so
   * that it does not vanish without a word. A join in progress is not
   * listed. */
  for (GList *l = groups; l; l = l->next)
    if (my_member(n, l->data) ||
        (kith_group_n_events(((node_group *)l->data)->g) != 0 &&
         !node_is_joining(n, l->data)))
      g_ptr_array_add(listed, l->data);
  kith_pack_init(&pk);
  kith_pack_array(&pk, listed->len);
  for (guint i = 0; i < listed->len; i++) {
    node_group *ng = listed->pdata[i];
    const kith_member *me = my_member(n, ng);
    msgpack_pack_map(&pk.pk, 5);
    rpc_kv_str(&pk, "group_id", ng->id_text);
    rpc_kv_str(&pk, "name", kith_group_name(ng->g));
    rpc_kv_uint(&pk, "members", kith_group_n_members(ng->g));
    rpc_kv_str(&pk, "role", me ? rpc_role_name(me->role) : "former");
    rpc_kv_uint(&pk, "unread", node_unread(n, ng));
  }
  g_ptr_array_unref(listed);
  g_list_free(groups);
  node_rpc_reply(n, call, &pk);
}

/* Members a member reported: a rekey whose box for the reporter did not
 * open (docs/protocol.md 5.7). */
static void pack_reports(kith_pack *pk, node_group *ng) {
  size_t n = kith_group_n_reports(ng->g);

  kith_pack_cstr(pk, "reports");
  kith_pack_array(pk, (uint32_t)n);
  for (size_t i = 0; i < n; i++) {
    uint8_t by[32], about[32], rekey[32];
    char what[128], text[KITH_ID_TEXT_LEN + 1];
    kith_group_report_at(ng->g, i, by, about, rekey);
    kith_id_to_text(rekey, text);
    g_snprintf(what, sizeof what, "its box of rekey %.12s did not open", text);
    msgpack_pack_map(&pk->pk, 5);
    rpc_kv_id(pk, "by", by);
    rpc_kv_str(pk, "by_name", kith_group_name_of(ng->g, by));
    rpc_kv_id(pk, "about", about);
    rpc_kv_str(pk, "about_name", kith_group_name_of(ng->g, about));
    rpc_kv_str(pk, "what", what);
  }
}

static void rpc_group_info(kith_rpc_call *call, const msgpack_object *params,
                           void *ud) {
  kith_node *n = ud;
  node_group *ng = rpc_resolve_group(n, call, params);
  uint8_t hash[32];
  kith_pack pk;

  if (!ng)
    return;
  kith_group_state_hash(ng->g, hash);
  kith_pack_init(&pk);
  msgpack_pack_map(&pk.pk, 13);
  rpc_kv_str(&pk, "group_id", ng->id_text);
  rpc_kv_str(&pk, "name", kith_group_name(ng->g));
  rpc_kv_str(&pk, "topic", kith_group_topic(ng->g));
  rpc_kv_str(&pk, "history",
             kith_group_history(ng->g) == KITH_HISTORY_SHARED ? "shared"
                                                              : "joined");
  rpc_kv_uint(&pk, "epoch", kith_group_epoch(ng->g));
  rpc_kv_uint(&pk, "members", kith_group_n_members(ng->g));
  rpc_kv_uint(&pk, "events", kith_group_n_events(ng->g));
  rpc_kv_id(&pk, "state_hash", hash);
  rpc_kv_uint(&pk, "links", ng->gs ? kith_gossip_active(ng->gs, NULL, 0) : 0);
  rpc_kv_str(&pk, "mode", kith_group_announce(ng->g) ? "announce" : "open");
  rpc_kv_str(&pk, "invites",
             kith_group_admins_only_invites(ng->g) ? "admins" : "all");
  rpc_kv_uint(&pk, "banned", kith_group_n_banned(ng->g));
  pack_reports(&pk, ng);
  node_rpc_reply(n, call, &pk);
}

static void rpc_group_members(kith_rpc_call *call, const msgpack_object *params,
                              void *ud) {
  kith_node *n = ud;
  node_group *ng = rpc_resolve_group(n, call, params);
  kith_pack pk;
  size_t count;

  if (!ng)
    return;
  count = kith_group_n_members(ng->g);
  kith_pack_init(&pk);
  kith_pack_array(&pk, (uint32_t)count);
  for (size_t i = 0; i < count; i++) {
    const kith_member *m = kith_group_member_at(ng->g, i);
    uint64_t seen;
    int online = presence_online(n, ng, m->id, &seen);
    msgpack_pack_map(&pk.pk, 5);
    rpc_kv_id(&pk, "node_id", m->id);
    rpc_kv_str(&pk, "name", m->name);
    rpc_kv_str(&pk, "role", rpc_role_name(m->role));
    kith_pack_cstr(&pk, "online");
    kith_pack_bool(&pk, online);
    rpc_kv_uint(&pk, "last_seen_ms", seen);
  }
  node_rpc_reply(n, call, &pk);
}

/* Where joiners can reach this node: the signal port on each usable IPv4
 * address (the bound address only, when the node was given one). */
static void invite_addrs(kith_node *n, kith_invite *inv) {
  struct ifaddrs *ifa = NULL;
  uint16_t port = kith_signal_port(n->sig);

  if (n->bind_addr) {
    g_strlcpy(inv->addrs[0].host, n->bind_addr, KITH_INVITE_HOST_MAX + 1);
    inv->addrs[0].port = port;
    inv->n_addrs = 1;
    return;
  }
  if (getifaddrs(&ifa) == 0) {
    for (struct ifaddrs *i = ifa; i && inv->n_addrs < KITH_INVITE_MAX_ADDRS;
         i = i->ifa_next) {
      if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
          !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK))
        continue;
      inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr,
                inv->addrs[inv->n_addrs].host, KITH_INVITE_HOST_MAX + 1);
      inv->addrs[inv->n_addrs++].port = port;
    }
    freeifaddrs(ifa);
  }
  if (inv->n_addrs < KITH_INVITE_MAX_ADDRS) {
    g_strlcpy(inv->addrs[inv->n_addrs].host, "127.0.0.1",
              KITH_INVITE_HOST_MAX + 1);
    inv->addrs[inv->n_addrs++].port = port;
  }
}

/* Other members that can admit the holder if we are offline: linked ones
 * whose address we know. */
static void invite_others(kith_node *n, node_group *ng, kith_invite *inv) {
  GHashTableIter it;
  gpointer k, v;

  g_hash_table_iter_init(&it, n->addrs);
  while (g_hash_table_iter_next(&it, &k, &v) &&
         inv->n_others < KITH_INVITE_MAX_OTHERS) {
    kith_stored_peer *sp = v;
    node_peer *p = g_hash_table_lookup(n->peers, k);
    kith_invite_member *m = &inv->others[inv->n_others];
    if (!p || p->state != PEER_UP || !kith_group_is_member(ng->g, sp->node))
      continue;
    memcpy(m->id, sp->node, KITH_ID_LEN);
    g_strlcpy(m->addr.host, sp->host, sizeof m->addr.host);
    m->addr.port = sp->port;
    inv->n_others++;
  }
}

/* Relay friends with a known address, for joiners who cannot reach us. */
static void invite_relays(kith_node *n, kith_invite *inv) {
  GHashTableIter it;
  gpointer v;

  g_hash_table_iter_init(&it, n->friends);
  while (g_hash_table_iter_next(&it, NULL, &v) &&
         inv->n_relays < KITH_INVITE_MAX_RELAYS) {
    kith_friend *f = v;
    kith_invite_member *m = &inv->relays[inv->n_relays];
    if (!f->port)
      continue;
    memcpy(m->id, f->node, KITH_ID_LEN);
    g_strlcpy(m->addr.host, f->host, sizeof m->addr.host);
    m->addr.port = f->port;
    inv->n_relays++;
  }
}

static void rpc_invite(kith_rpc_call *call, const msgpack_object *params,
                       void *ud) {
  kith_node *n = ud;
  node_group *ng = rpc_resolve_group(n, call, params);
  uint64_t uses = 1, ttl = 24 * 3600, now = node_wall_ms();
  kith_invite inv = {0};
  kith_accepted *acc;
  char code[KITH_INVITE_CODE_MAX];
  kith_pack pk;
  kith_err err;

  if (!ng)
    return;
  if ((params->via.array.size > 1 &&
       !rpc_param_uint(params, 1, KITH_INVITE_MAX_USES, &uses)) ||
      (params->via.array.size > 2 &&
       !rpc_param_uint(params, 2, INVITE_MAX_TTL_S, &ttl)) ||
      uses == 0 || ttl == 0) {
    kith_rpc_error(call, KITH_ERR_ARG,
                   "uses must be 1 to %d and the ttl 1 s to 365 days",
                   KITH_INVITE_MAX_USES);
    return;
  }
  node_local_begin(n);
  err = kith_group_invite(ng->g, (uint32_t)uses, now + ttl * 1000, now,
                          inv.secret, &acc);
  if (err != KITH_OK) {
    kith_rpc_error(call, err, "cannot invite: %s", kith_strerror(err));
    return;
  }
  if (publish_local(n, call, ng, acc, PUBLISH_QUIET) != KITH_OK) {
    sodium_memzero(&inv, sizeof inv);
    return;
  }
  memcpy(inv.group_id, kith_group_id(ng->g), 32);
  memcpy(inv.inviter, n->me.pk, KITH_ID_LEN);
  invite_addrs(n, &inv);
  invite_others(n, ng, &inv);
  invite_relays(n, &inv);
  inv.n_public = reflex_public_addrs(n, inv.addrs, inv.n_addrs,
                                     inv.public_addrs, KITH_INVITE_MAX_PUBLIC);
  err = kith_invite_encode(&inv, code, sizeof code);
  if (err == KITH_ERR_LIMIT && inv.n_others > 0) {
    inv.n_others = 0; /* long addresses: without the other members then */
    err = kith_invite_encode(&inv, code, sizeof code);
  }
  sodium_memzero(&inv, sizeof inv);
  if (err != KITH_OK) {
    kith_rpc_error(call, err, "cannot encode the code: %s", kith_strerror(err));
    return;
  }
  kith_pack_init(&pk);
  msgpack_pack_map(&pk.pk, 1);
  rpc_kv_str(&pk, "code", code);
  sodium_memzero(code, sizeof code);
  node_rpc_reply(n, call, &pk);
}

static void rpc_join(kith_rpc_call *call, const msgpack_object *params,
                     void *ud) {
  char code[KITH_INVITE_CODE_MAX + 1];
  uint64_t timeout = 60;

  if (!node_rpc_param_str(params, 0, code, sizeof code) ||
      (params->via.array.size > 1 &&
       !rpc_param_uint(params, 1, 24 * 3600, &timeout))) {
    kith_rpc_error(call, KITH_ERR_ARG,
                   "this is not a kith invite code (too long or not text)");
    return;
  }
  join_start(ud, call, code, timeout ? timeout : 1);
  sodium_memzero(code, sizeof code);
}

const char *rpc_change_error(kith_err err) {
  switch (err) {
  case KITH_ERR_FORBIDDEN:
    return "your role in this group does not allow that";
  case KITH_ERR_NOT_MEMBER:
    return "not a member of the group";
  case KITH_ERR_ARG:
    return "invalid value";
  default:
    return kith_strerror(err);
  }
}

/* Answers a group change: the id of the first event it made, after storing
 * and spreading all of them. */
static int id_set(const uint8_t id[32]) {
  static const uint8_t zero[32];
  return memcmp(id, zero, 32) != 0;
}

void rpc_publish_change(kith_node *n, kith_rpc_call *call, node_group *ng,
                        kith_err err, GPtrArray *acc) {
  uint8_t id[32] = {0};

  if (acc->len > 0) {
    memcpy(id, ((kith_accepted *)acc->pdata[acc->len - 1])->ev.id, 32);
    if (err == KITH_OK || err == KITH_ERR_REKEY)
      memcpy(id, ((kith_accepted *)acc->pdata[0])->ev.id, 32);
  }
  kith_err serr = node_local_end(n, ng, acc, 0);
  g_ptr_array_unref(acc);
  if (serr != KITH_OK) {
    rpc_reply_store_error(n, call, serr);
  } else if (err == KITH_ERR_REKEY) {
    kith_rpc_error(call, err,
                   "done, but the new epoch that leaves the member out could "
                   "not be made yet; this node retries, and posts nothing in "
                   "the old epoch meanwhile");
  } else if (err != KITH_OK || !id_set(id)) {
    kith_rpc_error(call, err ? err : KITH_ERR_STATE, "cannot do that: %s",
                   rpc_change_error(err ? err : KITH_ERR_STATE));
  } else {
    rpc_pack_event_id(n, call, id);
  }
}

GPtrArray *rpc_new_batch(void) {
  return g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
}

/* EVENT: an event of the group by its id in base32, or a unique prefix of
 * one. */
int rpc_resolve_event(kith_node *n, kith_rpc_call *call, node_group *ng,
                      const msgpack_object *params, uint32_t i,
                      uint8_t out[32]) {
  char arg[KITH_ID_TEXT_LEN + 1];
  kith_err err;

  if (!node_rpc_param_str(params, i, arg, sizeof arg) || !arg[0]) {
    kith_rpc_error(call, KITH_ERR_ARG,
                   "an event is its id (see kith log --json) or a prefix");
    return 0;
  }
  err = kith_group_find_event(ng->g, arg, out);
  if (err == KITH_ERR_AMBIGUOUS)
    kith_rpc_error(call, err,
                   "'%s' matches several events; give more of "
                   "the id",
                   arg);
  else if (err != KITH_OK)
    kith_rpc_error(call, KITH_ERR_NOT_FOUND, "no event '%s' in %s", arg,
                   kith_group_name(ng->g));
  (void)n;
  return err == KITH_OK;
}

static const char *send_error(kith_err err) {
  switch (err) {
  case KITH_ERR_FORBIDDEN:
    return "you are muted, or the group is in announce mode (only owners "
           "and admins post)";
  case KITH_ERR_STATE:
    return "this node does not hold the group's current key yet; a rekey "
           "that gives it is on its way";
  case KITH_ERR_NOT_FOUND:
    return "no such message to reply to";
  case KITH_ERR_IO:
    return "could not write the store (disk full?)";
  default:
    return kith_strerror(err);
  }
}

static void rpc_send(kith_rpc_call *call, const msgpack_object *params,
                     void *ud) {
  kith_node *n = ud;
  node_group *ng = rpc_resolve_group(n, call, params);
  const char *text;
  size_t len;
  uint8_t reply[32];
  GPtrArray *acc;
  kith_err err;

  if (!ng)
    return;
  if (params->via.array.size < 2 ||
      kith_codec_str(&params->via.array.ptr[1], KITH_TEXT_MAX - 1, &text,
                     &len) != KITH_OK ||
      len == 0) {
    kith_rpc_error(call, KITH_ERR_ARG,
                   "a message is 1 to %d bytes of UTF-8 text",
                   KITH_TEXT_MAX - 1);
    return;
  }
  int has_reply = params->via.array.size > 2 &&
                  params->via.array.ptr[2].type != MSGPACK_OBJECT_NIL;
  if (has_reply && !rpc_resolve_event(n, call, ng, params, 2, reply))
    return;
  acc = rpc_new_batch();
  node_local_begin(n);
  err = kith_group_send(ng->g, text, len, has_reply ? reply : NULL,
                        node_wall_ms(), acc);
  if (err == KITH_ERR_NOT_MEMBER) {
    g_ptr_array_unref(acc);
    kith_rpc_error(call, err,
                   "cannot send: you are no longer a member of %s (you left "
                   "or were removed)",
                   kith_group_name(ng->g));
    return;
  }
  if (err != KITH_OK && err != KITH_ERR_IO && err != KITH_ERR_FULL) {
    g_ptr_array_unref(acc);
    kith_rpc_error(call, err, "cannot send: %s", send_error(err));
    return;
  }
  rpc_publish_change(n, call, ng, err, acc);
}

static void rpc_subscribe(kith_rpc_call *call, const msgpack_object *params,
                          void *ud) {
  kith_node *n = ud;
  node_group *ng = rpc_resolve_group(n, call, params);
  kith_pack pk;

  if (!ng)
    return;
  kith_rpc_subscribe(call, ng->id_text);
  kith_pack_init(&pk);
  msgpack_pack_map(&pk.pk, 1);
  rpc_kv_str(&pk, "group_id", ng->id_text);
  node_rpc_reply(n, call, &pk);
}

/* MEMBER: a full node id, a unique member name, or a unique id prefix.
 * Replies with the error itself on failure. */
const kith_member *rpc_resolve_member(kith_rpc_call *call, node_group *ng,
                                      const msgpack_object *params,
                                      uint32_t i) {
  char arg[256], text[KITH_ID_TEXT_LEN + 1];
  name_match mt = {.arg = arg};
  const kith_member *found;
  int ambiguous;

  if (!node_rpc_param_str(params, i, arg, sizeof arg) || !arg[0]) {
    kith_rpc_error(call, KITH_ERR_ARG, "missing member name or id");
    return NULL;
  }
  for (size_t k = 0; k < kith_group_n_members(ng->g); k++) {
    const kith_member *m = kith_group_member_at(ng->g, k);
    kith_id_to_text(m->id, text);
    match_offer(&mt, m, text, m->name);
  }
  if ((found = match_result(&mt, &ambiguous)))
    return found;
  if (ambiguous)
    kith_rpc_error(call, KITH_ERR_AMBIGUOUS,
                   "'%s' matches several members; give more of the node id "
                   "(see kith group members)",
                   arg);
  else
    kith_rpc_error(call, KITH_ERR_NOT_FOUND,
                   "'%s' is not a member of %s (see kith group members)", arg,
                   kith_group_name(ng->g));
  return NULL;
}

static void rpc_kick(kith_rpc_call *call, const msgpack_object *params,
                     void *ud) {
  kith_node *n = ud;
  node_group *ng = rpc_resolve_group(n, call, params);
  const kith_member *m = ng ? rpc_resolve_member(call, ng, params, 1) : NULL;
  GPtrArray *acc;

  if (!m)
    return;
  if (memcmp(m->id, n->me.pk, KITH_ID_LEN) == 0) {
    kith_rpc_error(call, KITH_ERR_ARG,
                   "you cannot kick yourself; use kith leave");
    return;
  }
  acc = rpc_new_batch();
  node_local_begin(n);
  rpc_publish_change(n, call, ng,
                     kith_group_remove(ng->g, m->id, node_wall_ms(), acc), acc);
}

static void rpc_leave(kith_rpc_call *call, const msgpack_object *params,
                      void *ud) {
  kith_node *n = ud;
  node_group *ng = rpc_resolve_group(n, call, params);
  GPtrArray *acc;

  if (!ng)
    return;
  acc = rpc_new_batch();
  node_local_begin(n);
  rpc_publish_change(n, call, ng, kith_group_leave(ng->g, node_wall_ms(), acc),
                     acc);
}

static void rpc_role(kith_rpc_call *call, const msgpack_object *params,
                     void *ud) {
  kith_node *n = ud;
  node_group *ng = rpc_resolve_group(n, call, params);
  const kith_member *m = ng ? rpc_resolve_member(call, ng, params, 1) : NULL;
  char role[16];
  kith_role r;
  GPtrArray *acc;

  if (!m)
    return;
  if (!node_rpc_param_str(params, 2, role, sizeof role) ||
      (strcmp(role, "owner") != 0 && strcmp(role, "admin") != 0 &&
       strcmp(role, "member") != 0)) {
    kith_rpc_error(call, KITH_ERR_ARG, "a role is owner, admin or member");
    return;
  }
  r = role[0] == 'o'   ? KITH_ROLE_OWNER
      : role[0] == 'a' ? KITH_ROLE_ADMIN
                       : KITH_ROLE_MEMBER;
  if (m->role == r) {
    kith_rpc_error(call, KITH_ERR_EXISTS, "%s is already %s", m->name, role);
    return;
  }
  acc = rpc_new_batch();
  node_local_begin(n);
  rpc_publish_change(n, call, ng,
                     kith_group_set_role(ng->g, m->id, r, node_wall_ms(), acc),
                     acc);
}

static void rpc_topic(kith_rpc_call *call, const msgpack_object *params,
                      void *ud) {
  kith_node *n = ud;
  node_group *ng = rpc_resolve_group(n, call, params);
  const char *text;
  size_t len;
  GPtrArray *acc;
  kith_err err;

  if (!ng)
    return;
  if (params->via.array.size < 2 ||
      kith_codec_str(&params->via.array.ptr[1], KITH_TEXT_MAX - 1, &text,
                     &len) != KITH_OK) {
    kith_rpc_error(call, KITH_ERR_ARG, TOPIC_RULE, KITH_TOPIC_MAX);
    return;
  }
  acc = rpc_new_batch();
  node_local_begin(n);
  err = kith_group_set_topic(ng->g, text, len, node_wall_ms(), acc);
  if (err == KITH_ERR_ARG) {
    kith_rpc_error(call, err, TOPIC_RULE, KITH_TOPIC_MAX);
    g_ptr_array_unref(acc);
    return;
  }
  rpc_publish_change(n, call, ng, err, acc);
}

void node_rpc_register(kith_node *n) {
  static const struct {
    const char *name;
    kith_rpc_handler fn;
  } methods[] = {
      {"id", rpc_id},
      {"status", rpc_status},
      {"peers", rpc_peers},
      {"group.create", rpc_group_create},
      {"group.list", rpc_group_list},
      {"group.info", rpc_group_info},
      {"group.members", rpc_group_members},
      {"invite", rpc_invite},
      {"join", rpc_join},
      {"send", rpc_send},
      {"subscribe", rpc_subscribe},
      {"kick", rpc_kick},
      {"leave", rpc_leave},
      {"role", rpc_role},
      {"topic", rpc_topic},
  };

  relay_rpc_register(n);
  node_rpc_mod_register(n);
  node_log_register(n);
  gossip_rpc_register(n);

  for (size_t i = 0; i < G_N_ELEMENTS(methods); i++)
    kith_control_register(n->ctl, methods[i].name, methods[i].fn, n);
}
