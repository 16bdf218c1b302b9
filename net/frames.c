/* kith: link frames besides the gossip engine's: PING/PONG (peer.c),
 * ADDRS (introductions of other members), BYE, ELSEWHERE, and the dispatch
 * of every frame type. A group's events, its history for a newcomer
 * included, travel only inside FRAME_GOSSIP (gossip.c). */
#include <string.h>

#include "../core/codec.h"
#include "node_int.h"

#define ADDRS_MAX KITH_WIRE_ADDRS_MAX

static void send_packed(node_peer *p, kith_pack *pk) {
  uint8_t *buf;
  size_t len;

  if (kith_pack_take(pk, &buf, &len) != KITH_OK)
    return;
  peer_send_frame(p, buf, len);
  g_free(buf);
}

/* Are we joining a group through this peer? */
static int joining_via(node_peer *p) {
  for (guint i = 0; i < p->node->joins->len; i++) {
    node_join *j = p->node->joins->pdata[i];
    if (memcmp(j->target, p->id, KITH_ID_LEN) == 0)
      return 1;
  }
  return 0;
}

/* Is there a group that we, a and b all belong to? */
int nodes_share_group(kith_node *n, const uint8_t a[32], const uint8_t b[32]) {
  GHashTableIter it;
  gpointer v;

  g_hash_table_iter_init(&it, n->groups);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    kith_group *g = ((node_group *)v)->g;
    if (kith_group_is_member(g, n->me.pk) && kith_group_is_member(g, a) &&
        kith_group_is_member(g, b))
      return 1;
  }
  return 0;
}

/* Sends one ADDRS frame with the entries in list (kith_stored_peer*). */
static void send_addrs(node_peer *p, GPtrArray *list) {
  kith_pack pk;

  kith_pack_init(&pk);
  kith_pack_array(&pk, 2);
  kith_pack_uint(&pk, FRAME_ADDRS);
  kith_pack_array(&pk, list->len);
  for (guint i = 0; i < list->len; i++) {
    kith_stored_peer *sp = list->pdata[i];
    kith_pack_array(&pk, 4);
    kith_pack_bin(&pk, sp->node, KITH_ID_LEN);
    kith_pack_cstr(&pk, sp->host);
    kith_pack_uint(&pk, sp->port);
    kith_pack_uint(&pk, sp->seen_ms);
  }
  p->node->addrs_sent++;
  send_packed(p, &pk);
}

/* May the peer hear where sp's node is: it shares a group with it and us. */
static int may_tell(node_peer *p, const kith_stored_peer *sp) {
  return memcmp(sp->node, p->id, KITH_ID_LEN) != 0 &&
         nodes_share_group(p->node, sp->node, p->id);
}

/* At link-up: where the other members of the groups the peer shares with
 * us are, so the mesh grows without a server. */
static void send_all_addrs(node_peer *p) {
  GHashTableIter it;
  gpointer v;
  GPtrArray *list = g_ptr_array_new();

  g_hash_table_iter_init(&it, p->node->addrs);
  while (g_hash_table_iter_next(&it, NULL, &v) && list->len < ADDRS_MAX)
    if (may_tell(p, v))
      g_ptr_array_add(list, v);
  send_addrs(p, list);
  g_ptr_array_unref(list);
}

void frames_flush_addrs(node_peer *p, uint64_t now) {
  GHashTableIter it;
  gpointer k;
  GPtrArray *list;

  if (!peer_is_up(p) || g_hash_table_size(p->announce) == 0 ||
      !kith_bucket_take(&p->announce_rate, ADDRS_RATE, ADDRS_BURST, 1, now))
    return;
  list = g_ptr_array_new();
  g_hash_table_iter_init(&it, p->announce);
  while (g_hash_table_iter_next(&it, &k, NULL) && list->len < ADDRS_MAX) {
    kith_stored_peer *sp = g_hash_table_lookup(p->node->addrs, k);
    if (sp && may_tell(p, sp))
      g_ptr_array_add(list, sp);
    g_hash_table_iter_remove(&it);
  }
  if (list->len > 0)
    send_addrs(p, list);
  g_ptr_array_unref(list);
}

void frames_announce_addr(kith_node *n, const kith_stored_peer *sp) {
  GList *peers = g_hash_table_get_values(n->peers);
  char text[KITH_ID_TEXT_LEN + 1];
  uint64_t now = node_now();

  kith_id_to_text(sp->node, text);
  for (GList *l = peers; l; l = l->next) {
    node_peer *p = l->data;
    /* Sending may close a link (it stays valid, closed). */
    if (peer_is_up(p) && may_tell(p, sp)) {
      g_hash_table_add(p->announce, g_strdup(text));
      frames_flush_addrs(p, now);
    }
  }
  g_list_free(peers);
}

void frames_link_up(node_peer *p) {
  send_all_addrs(p);
}

static void recv_addrs(node_peer *p, const kith_wire_frame *f) {
  /* A joiner is not a member yet when the admitter introduces the others:
   * it takes the admitter's word for them. */
  int via_join = joining_via(p);

  for (size_t i = 0; i < f->n_addrs && !p->closed; i++) {
    const kith_wire_addr *a = &f->addrs[i];
    if (via_join || node_shares_group(p->node, a->id))
      node_remember_addr(p->node, a->id, a->host, a->port, a->version, 0);
  }
}

void frames_on_frame(node_peer *p, const uint8_t *buf, size_t len) {
  kith_wire_frame f;

  if (kith_wire_frame_decode(buf, len, &f) != KITH_OK)
    f.type = 0;
  switch (f.type) {
  case FRAME_PING:
  case FRAME_PONG:
    peer_on_ping(p, (int)f.type, f.t);
    break;
  case FRAME_ADDRS:
    recv_addrs(p, &f);
    break;
  case FRAME_GOSSIP:
    gossip_on_frame(p, f.gid, f.gid_len, f.data, f.len);
    break;
  case FRAME_RELAY:
    relay_on_frame(p, &f);
    break;
  case FRAME_BYE:
    peer_close(p, "closed by the peer");
    break;
  case FRAME_ELSEWHERE:
    instance_on_frame(p, f.t);
    break;
  case FRAME_MOVE:
  case FRAME_PATH_OFFER:
  case FRAME_PATH_ANSWER:
    carrier_on_frame(p, &f);
    break;
  default:
    /* malformed or unknown frames are ignored (newer peers), and so are
     * EVENT (3) and HAVE (4) of older ones: history travels only by
     * reconciliation */
    p->node->dropped_frames++;
  }
  kith_wire_frame_clear(&f);
}
