/* kith: relay friends: the friend list, and relaying for friends.
 *
 * A node keeps a link to each friend whose address it knows. A node run
 * with --relay forwards, between two of its friends that are both linked
 * to it, (1) signalling sealed end to end to the recipient, so that two
 * nodes behind NATs can exchange ICE offers, and (2) when ICE finds no
 * path, the records of the two nodes' own secure session, which it cannot
 * read. It serves nobody else (refusals are logged) and limits each friend
 * to RELAY_RATE bytes per second (burst RELAY_BURST).
 *
 * FRAME_RELAY = [7, kind, to bin32, from bin32, payload bin]; the relay
 * overwrites `from` with the authenticated sender of the frame.
 *   kind 0 (signal): payload = crypto_box_seal to `to` of
 *     [from bin32, to bin32, ts_ms uint, signal payload bin, sig bin64],
 *     sig = Ed25519(from) over the first four elements packed as an array
 *   kind 1 (data): payload = session bytes of the from<->to link */
#include <sodium.h>
#include <string.h>

#include "../core/codec.h"
#include "node_int.h"

#define RELAY_RATE (256 * 1024) /* bytes per second per friend */
#define RELAY_BURST (1024 * 1024)
#define RELAY_SKEW_MS (120 * KITH_SECOND)
#define FRIEND_RETRY_MS (5 * KITH_SECOND)

typedef struct bucket {
  double tokens;
  uint64_t at_ms;
} bucket;

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

static int take_tokens(kith_node *n, const char *id_text, size_t bytes) {
  bucket *b = g_hash_table_lookup(n->relay_buckets, id_text);
  uint64_t now = node_now();

  if (!b) {
    b = g_new0(bucket, 1);
    b->tokens = RELAY_BURST;
    b->at_ms = now;
    g_hash_table_replace(n->relay_buckets, g_strdup(id_text), b);
  }
  b->tokens = MIN((double)RELAY_BURST,
                  b->tokens + (double)(now - b->at_ms) * RELAY_RATE / 1000.0);
  b->at_ms = now;
  if (b->tokens < (double)bytes)
    return 0;
  b->tokens -= (double)bytes;
  return 1;
}

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
  if (!q || !take_tokens(n, p->id_text, len))
    return; /* not linked, or over its rate: dropped (datagram-like) */
  n->relayed_bytes += len;
  send_relay_frame(q, kind, to, p->id, payload, len);
}

/* Opens end-to-end sealed signalling that came through a relay. */
static void recv_signal(node_peer *relay, const uint8_t from[32],
                        const uint8_t *box, size_t len) {
  kith_node *n = relay->node;
  uint8_t *plain;
  msgpack_unpacked u;
  const msgpack_object *f;
  uint8_t sfrom[32], sto[32], sig[KITH_SIG_LEN];
  uint64_t ts, now = node_wall_ms();
  const uint8_t *payload;
  size_t plen;

  if (len <= KITH_SEAL_OVERHEAD || len > KITH_SIGNAL_MAX)
    return;
  plain = g_malloc(len - KITH_SEAL_OVERHEAD);
  msgpack_unpacked_init(&u);
  if (kith_unseal(&n->me, box, len, plain) != KITH_OK ||
      kith_codec_unpack(plain, len - KITH_SEAL_OVERHEAD, &u) != KITH_OK ||
      kith_codec_array(&u.data, 5, &f) != KITH_OK ||
      kith_codec_bin_fixed(&f[0], sfrom, 32) != KITH_OK ||
      kith_codec_bin_fixed(&f[1], sto, 32) != KITH_OK ||
      kith_codec_uint(&f[2], UINT64_MAX, &ts) != KITH_OK ||
      kith_codec_bin(&f[3], KITH_SIGNAL_MAX, &payload, &plen) != KITH_OK ||
      kith_codec_bin_fixed(&f[4], sig, KITH_SIG_LEN) != KITH_OK ||
      memcmp(sfrom, from, 32) != 0 || memcmp(sto, n->me.pk, 32) != 0 ||
      ts + RELAY_SKEW_MS < now || ts > now + RELAY_SKEW_MS)
    goto out;
  {
    /* The signature covers the first four elements as an array. */
    kith_pack pk;
    uint8_t *signed_bytes;
    size_t slen;
    kith_pack_init(&pk);
    kith_pack_array(&pk, 4);
    kith_pack_bin(&pk, sfrom, 32);
    kith_pack_bin(&pk, sto, 32);
    kith_pack_uint(&pk, ts);
    kith_pack_bin(&pk, payload, plen);
    if (kith_pack_take(&pk, &signed_bytes, &slen) != KITH_OK)
      goto out;
    kith_signal_msg m = {
        .from = from, .payload = payload, .len = plen, .ts_ms = ts};
    if (kith_sig_verify(from, signed_bytes, slen, sig) == KITH_OK)
      peer_on_signal(n, &m, relay);
    g_free(signed_bytes);
  }
out:
  msgpack_unpacked_destroy(&u);
  g_free(plain);
}

kith_err relay_send_signal(node_peer *relay, const uint8_t to[32],
                           const uint8_t *payload, size_t len) {
  kith_node *n = relay->node;
  kith_pack pk;
  uint8_t *plain = NULL, *box, sig[KITH_SIG_LEN];
  size_t plen = 0;
  uint64_t ts = node_wall_ms();
  kith_err err;

  kith_pack_init(&pk);
  kith_pack_array(&pk, 4);
  kith_pack_bin(&pk, n->me.pk, 32);
  kith_pack_bin(&pk, to, 32);
  kith_pack_uint(&pk, ts);
  kith_pack_bin(&pk, payload, len);
  err = kith_pack_take(&pk, &plain, &plen);
  if (err != KITH_OK)
    return err;
  kith_ident_sign(&n->me, plain, plen, sig);
  g_free(plain);
  kith_pack_init(&pk);
  kith_pack_array(&pk, 5);
  kith_pack_bin(&pk, n->me.pk, 32);
  kith_pack_bin(&pk, to, 32);
  kith_pack_uint(&pk, ts);
  kith_pack_bin(&pk, payload, len);
  kith_pack_bin(&pk, sig, KITH_SIG_LEN);
  err = kith_pack_take(&pk, &plain, &plen);
  if (err != KITH_OK)
    return err;
  box = g_malloc(plen + KITH_SEAL_OVERHEAD);
  err = kith_seal(to, plain, plen, box);
  if (err == KITH_OK)
    send_relay_frame(relay, 0, to, n->me.pk, box, plen + KITH_SEAL_OVERHEAD);
  g_free(box);
  g_free(plain);
  return err;
}

void relay_send_data(node_peer *relay, const uint8_t to[32],
                     const uint8_t *bytes, size_t len) {
  send_relay_frame(relay, 1, to, relay->node->me.pk, bytes, len);
}

void relay_on_frame(node_peer *p, const msgpack_object *it) {
  uint64_t kind;
  uint8_t to[32], from[32];
  const uint8_t *payload;
  size_t len;

  if (kith_codec_uint(&it[1], 1, &kind) != KITH_OK ||
      kith_codec_bin_fixed(&it[2], to, 32) != KITH_OK ||
      kith_codec_bin_fixed(&it[3], from, 32) != KITH_OK ||
      kith_codec_bin(&it[4], KITH_SESSION_MAX_RECORD + 4, &payload, &len) !=
          KITH_OK)
    return;
  if (memcmp(to, p->node->me.pk, 32) != 0) {
    forward(p, kind, to, payload, len); /* we are asked to relay */
    return;
  }
  /* For us, through the relay p, from another of its friends. */
  if (kind == 0)
    recv_signal(p, from, payload, len);
  else
    peer_on_relayed_data(p->node, from, payload, len, p);
}

/* Keeps a link to every friend whose address we know (retrying every
 * FRIEND_RETRY_MS), so that a relay can reach us and we can reach it. */
void relay_tick(kith_node *n, uint64_t now) {
  GHashTableIter it;
  gpointer k, v;

  if (now < n->next_friend_ms)
    return;
  n->next_friend_ms = now + FRIEND_RETRY_MS;
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
  n->next_friend_ms = 0; /* link up at the next tick */
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
