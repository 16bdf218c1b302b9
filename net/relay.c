/* kith: relay friends: the friend list, and relaying for friends.
 *
 * A node keeps a link to each friend whose address it knows. A node run
 * with --relay forwards, between two of its friends that are both linked
 * to it, (1) signalling sealed end to end to the recipient, so that two
 * nodes behind NATs can exchange ICE offers, and (2) when ICE finds no
 * path, the records of the two nodes' own secure session, which it cannot
 * read. It serves nobody else (refusals are logged) and limits each friend
 * to RELAY_RATE bytes per second (burst RELAY_BURST). A signalling envelope
 * that came through a relay is taken once (a replay cache, core/replay.h).
 *
 * FRAME_RELAY = [7, kind, to bin32, from bin32, payload bin]; the relay
 * overwrites `from` with the authenticated sender of the frame.
 *   kind 0 (signal): payload = crypto_box_seal to `to` of
 *     [from bin32, to bin32, ts_ms uint, signal payload bin, sig bin64],
 *     sig = Ed25519(from) over the first four elements packed as an array
 *     (kith_signal_seal_relayed / _open_relayed in signal.c)
 *   kind 1 (data): payload = session bytes of the from<->to link */
#include <sodium.h>
#include <string.h>

#include "../core/codec.h"
#include "../core/replay.h"
#include "node_int.h"

int relay_is_friend(kith_node *n, const uint8_t id[32]) {
  char text[KITH_ID_TEXT_LEN + 1];

  kith_id_to_text(id, text);
  return g_hash_table_contains(n->friends, text);
}

kith_err relay_load(kith_node *n) {
  GPtrArray *list =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_friend_free);
  kith_err err = kith_store_list_friends(n->store, list);

  for (guint i = 0; err == KITH_OK && i < list->len; i++) {
    kith_friend *f = g_ptr_array_steal_index(list, i--);
    char text[KITH_ID_TEXT_LEN + 1];
    kith_id_to_text(f->node, text);
    g_hash_table_replace(n->friends, g_strdup(text), f);
  }
  g_ptr_array_unref(list);
  return err;
}

/* ---- relaying ---- */

static void send_relay_frame(node_peer *p, uint64_t kind, const uint8_t to[32],
                             const uint8_t from[32], const uint8_t *payload,
                             size_t len) {
  kith_pack pk;
  uint8_t *buf;
  size_t blen;

  kith_pack_init(&pk);
  kith_pack_array(&pk, 5);
  kith_pack_uint(&pk, FRAME_RELAY);
  kith_pack_uint(&pk, kind);
  kith_pack_bin(&pk, to, 32);
  kith_pack_bin(&pk, from, 32);
  kith_pack_bin(&pk, payload, len);
  if (kith_pack_take(&pk, &buf, &blen) != KITH_OK)
    return;
  peer_send_frame(p, buf, blen);
  g_free(buf);
}

static node_peer *up_peer(kith_node *n, const uint8_t id[32]) {
  char text[KITH_ID_TEXT_LEN + 1];
  node_peer *p;

  kith_id_to_text(id, text);
  p = g_hash_table_lookup(n->peers, text);
  return p && p->state == PEER_UP && !p->relayed ? p : NULL;
}

/* As the relay: pass a frame from friend p on to friend `to`. */
static void forward(node_peer *p, uint64_t kind, const uint8_t to[32],
                    const uint8_t *payload, size_t len) {
  kith_node *n = p->node;
  node_peer *q;

  int friends = n->relay && relay_is_friend(n, p->id) && relay_is_friend(n, to);
  /* Introductions: any member passes signalling between two members of a
   * group it shares with both, so the mesh grows without a server. Session
   * bytes only a relay passes, and only between its friends. */
  int introduce = kind == 0 && nodes_share_group(n, p->id, to);

  if (!friends && !introduce) {
    if (n->relay_refusals++ % 100 == 0)
      node_log(n, "refused to relay for %.8s: %s", p->id_text,
               n->relay ? "not a friend (or to a non-friend)"
                        : "this node is not a relay (--relay)");
    return;
  }
  q = up_peer(n, to);
  if (!q || !kith_ratelimit_take(n->relay_rate, p->id, KITH_ID_LEN, (double)len,
                                 node_now()))
    return; /* not linked, or over its rate: dropped (datagram-like) */
  n->relayed_bytes += len;
  send_relay_frame(q, kind, to, p->id, payload, len);
}

/* Opens end-to-end sealed signalling that came through a relay; each
 * envelope is taken once (kith_signal_open_relayed). */
static void recv_signal(node_peer *relay, const uint8_t from[32],
                        const uint8_t *box, size_t len) {
  kith_node *n = relay->node;
  uint8_t *payload = NULL;
  size_t plen = 0;
  uint64_t ts = 0;
  kith_err err =
      kith_signal_open_relayed(&n->me, n->relayed_seen, relay->id, from, box,
                               len, node_wall_ms(), &payload, &plen, &ts);

  if (err == KITH_ERR_DUPLICATE)
    n->relay_replays++;
  if (err == KITH_OK) {
    kith_signal_msg m = {
        .from = from, .payload = payload, .len = plen, .ts_ms = ts};
    peer_on_signal(n, &m, relay);
  }
  g_free(payload);
}

kith_err relay_send_signal(node_peer *relay, const uint8_t to[32],
                           const uint8_t *payload, size_t len) {
  kith_node *n = relay->node;
  uint8_t *box = NULL;
  size_t blen = 0;
  kith_err err = kith_signal_seal_relayed(&n->me, to, payload, len,
                                          node_wall_ms(), &box, &blen);

  if (err == KITH_OK)
    send_relay_frame(relay, 0, to, n->me.pk, box, blen);
  g_free(box);
  return err;
}

void relay_send_data(node_peer *relay, const uint8_t to[32],
                     const uint8_t *bytes, size_t len) {
  send_relay_frame(relay, 1, to, relay->node->me.pk, bytes, len);
}

void relay_on_frame(node_peer *p, const kith_wire_frame *f) {
  if (memcmp(f->to, p->node->me.pk, 32) != 0) {
    forward(p, f->relay_kind, f->to, f->data, f->len); /* we relay */
    return;
  }
  /* For us, through the relay p, from another of its friends. */
  if (f->relay_kind == 0)
    recv_signal(p, f->from, f->data, f->len);
  else
    peer_on_relayed_data(p->node, f->from, f->data, f->len, p);
}

/* Keeps a link to every friend whose address we know, so that a relay can
 * reach us and we can reach it: tried again on the reconnect rule
 * (peer_may_connect: about 1 s after a failure, doubling up to a minute). */
void relay_tick(kith_node *n, uint64_t now) {
  GHashTableIter it;
  gpointer k, v;

  g_hash_table_iter_init(&it, n->friends);
  while (g_hash_table_iter_next(&it, &k, &v)) {
    kith_friend *f = v;
    if (f->port && !g_hash_table_contains(n->peers, k))
      peer_connect(n, f->node, f->host, f->port, NULL, 0);
  }
}

/* A linked node that can pass signalling between us and `to`: a common
 * neighbour in one of our groups, else a relay friend (whether it reaches
 * `to` is for it to say). */
node_peer *relay_pick(kith_node *n, const uint8_t to[32]) {
  GHashTableIter it;
  gpointer k, v;

  /* A common neighbour first: a linked member of a group `to` is in
   * passes signalling between members (an introduction). */
  g_hash_table_iter_init(&it, n->peers);
  while (g_hash_table_iter_next(&it, &k, &v)) {
    node_peer *p = v;
    if (p->state == PEER_UP && !p->relayed && memcmp(p->id, to, 32) != 0 &&
        nodes_share_group(n, p->id, to))
      return p;
  }
  /* Else a relay friend (it relays if `to` is its friend too). */
  g_hash_table_iter_init(&it, n->friends);
  while (g_hash_table_iter_next(&it, &k, &v)) {
    node_peer *p = g_hash_table_lookup(n->peers, k);
    if (p && p->state == PEER_UP && !p->relayed &&
        memcmp(((kith_friend *)v)->node, to, 32) != 0)
      return p;
  }
  return NULL;
}

/* ---- control-socket methods ---- */

static void pack_friend(kith_pack *pk, const kith_friend *f) {
  char text[KITH_ID_TEXT_LEN + 1], addr[80] = "";

  kith_id_to_text(f->node, text);
  if (f->port)
    g_snprintf(addr, sizeof addr, "%s:%u", f->host, f->port);
  msgpack_pack_map(&pk->pk, 3);
  kith_pack_cstr(pk, "node_id");
  kith_pack_cstr(pk, text);
  kith_pack_cstr(pk, "name");
  kith_pack_cstr(pk, f->name);
  kith_pack_cstr(pk, "addr");
  kith_pack_cstr(pk, addr);
}

/* HOST:PORT with a numeric IPv4 host ("" allowed: unknown). */
static int parse_addr(const char *s, char host[64], uint16_t *port) {
  const char *colon = strrchr(s, ':');
  GInetAddress *ia;
  guint64 p;
  char *end = NULL;

  host[0] = 0;
  *port = 0;
  if (!s[0])
    return 1;
  if (!colon || colon == s || (size_t)(colon - s) >= 64)
    return 0;
  p = g_ascii_strtoull(colon + 1, &end, 10);
  if (end == colon + 1 || *end || p == 0 || p > 65535)
    return 0;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = 0;
  ia = g_inet_address_new_from_string(host);
  if (!ia)
    return 0;
  g_object_unref(ia);
  *port = (uint16_t)p;
  return 1;
}

static void rpc_friend_add(kith_rpc_call *call, const msgpack_object *params,
                           void *ud) {
  kith_node *n = ud;
  char id_text[KITH_ID_TEXT_LEN + 1], name[KITH_NAME_MAX + 1], addr[96];
  kith_friend *f;
  kith_pack pk;

  if (!node_rpc_param_str(params, 0, id_text, sizeof id_text) ||
      !node_rpc_param_str(params, 1, name, sizeof name) ||
      !node_rpc_param_str(params, 2, addr, sizeof addr)) {
    kith_rpc_error(call, KITH_ERR_ARG,
                   "friend add takes NODE_ID, a name "
                   "and HOST:PORT");
    return;
  }
  f = g_new0(kith_friend, 1);
  if (kith_id_from_text(id_text, f->node) != KITH_OK ||
      !parse_addr(addr, f->host, &f->port)) {
    kith_rpc_error(call, KITH_ERR_ARG,
                   "give a full 52-character node id and an address as "
                   "IPV4:PORT");
    kith_friend_free(f);
    return;
  }
  if (memcmp(f->node, n->me.pk, KITH_ID_LEN) == 0) {
    kith_rpc_error(call, KITH_ERR_ARG, "a node cannot befriend itself");
    kith_friend_free(f);
    return;
  }
  f->name = g_strdup(name);
  if (kith_store_put_friend(n->store, f->node, f->name, f->host, f->port) !=
      KITH_OK) {
    kith_rpc_error(call, KITH_ERR_IO, "cannot store the friend (disk full?)");
    kith_friend_free(f);
    return;
  }
  g_hash_table_replace(n->friends, g_strdup(id_text), f);
  peer_backoff_reset(n, f->node); /* link up at the next tick */
  /* An attempt under way (an introduction through a neighbour that may
   * not reach it) would keep the tick from trying the address until it
   * times out: the address is offered to it now. */
  node_peer *p = peer_find(n, f->node);
  if (p && p->state != PEER_UP)
    peer_reoffer(p, f->host, f->port);
  reflex_refresh(n); /* and ask it where we are */
  kith_pack_init(&pk);
  pack_friend(&pk, f);
  node_rpc_reply(n, call, &pk);
}

static void rpc_friend_list(kith_rpc_call *call, const msgpack_object *params,
                            void *ud) {
  kith_node *n = ud;
  GList *list = g_hash_table_get_values(n->friends);
  kith_pack pk;

  kith_pack_init(&pk);
  kith_pack_array(&pk, g_list_length(list));
  for (GList *l = list; l; l = l->next)
    pack_friend(&pk, l->data);
  g_list_free(list);
  node_rpc_reply(n, call, &pk);
}

static void rpc_friend_remove(kith_rpc_call *call, const msgpack_object *params,
                              void *ud) {
  kith_node *n = ud;
  char id_text[KITH_ID_TEXT_LEN + 1];
  kith_friend *f;
  kith_pack pk;

  if (!node_rpc_param_str(params, 0, id_text, sizeof id_text) ||
      !(f = g_hash_table_lookup(n->friends, id_text))) {
    kith_rpc_error(call, KITH_ERR_NOT_FOUND,
                   "no such friend (see kith friend list)");
    return;
  }
  if (kith_store_remove_friend(n->store, f->node) != KITH_OK) {
    kith_rpc_error(call, KITH_ERR_IO, "cannot update the store");
    return;
  }
  kith_pack_init(&pk);
  pack_friend(&pk, f);
  g_hash_table_remove(n->friends, id_text);
  node_rpc_reply(n, call, &pk);
}

void relay_rpc_register(kith_node *n) {
  kith_control_register(n->ctl, "friend.add", rpc_friend_add, n);
  kith_control_register(n->ctl, "friend.list", rpc_friend_list, n);
  kith_control_register(n->ctl, "friend.remove", rpc_friend_remove, n);
}
