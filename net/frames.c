/* kith: link frames besides the gossip engine's: PING/PONG (peer.c),
 * ADDRS (introductions of other members), and the bulk transfer of a
 * group's history to a newcomer (HAVE, then EVENTs of what it lacks). The
 * engine's own frames travel inside FRAME_GOSSIP (gossip.c). */
#include <string.h>

#include "../core/codec.h"
#include "node_int.h"

#define ADDRS_MAX 64

static void send_packed(node_peer *p, kith_pack *pk) {
  uint8_t *buf;
  size_t len;

  if (kith_pack_take(pk, &buf, &len) != KITH_OK)
    return;
  peer_send_frame(p, buf, len);
  g_free(buf);
}

void frames_send_event(node_peer *p, const kith_event *ev) {
  kith_pack pk;

  kith_pack_init(&pk);
  kith_pack_array(&pk, 3);
  kith_pack_uint(&pk, FRAME_EVENT);
  kith_pack_bin(&pk, ev->group_id, 32);
  kith_pack_bin(&pk, ev->raw, ev->raw_len);
  send_packed(p, &pk);
}

/* Is p entitled to the events of ng: a member, or the node we are joining
 * through (it admits us and sends us the group). */
static int peer_may_sync(node_peer *p, node_group *ng) {
  kith_node *n = p->node;

  if (kith_group_is_member(ng->g, p->id) &&
      kith_group_is_member(ng->g, n->me.pk))
    return 1;
  for (guint i = 0; i < n->joins->len; i++) {
    node_join *j = n->joins->pdata[i];
    if (memcmp(j->inv.group_id, kith_group_id(ng->g), 32) == 0 &&
        memcmp(j->target, p->id, KITH_ID_LEN) == 0)
      return 1;
  }
  return 0;
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

static void send_have(node_peer *p, node_group *ng) {
  GByteArray *ids = g_byte_array_new();
  size_t count;

  kith_group_event_ids(ng->g, ids);
  count = ids->len / 32;
  for (size_t off = 0;; off += SYNC_IDS_PER_FRAME) {
    size_t k = MIN(SYNC_IDS_PER_FRAME, count - off);
    kith_pack pk;

    kith_pack_init(&pk);
    kith_pack_array(&pk, 4);
    kith_pack_uint(&pk, FRAME_HAVE);
    kith_pack_bin(&pk, kith_group_id(ng->g), 32);
    kith_pack_bin(&pk, ids->data + off * 32, k * 32);
    kith_pack_bool(&pk, off + k >= count);
    send_packed(p, &pk);
    if (off + k >= count)
      break;
  }
  g_byte_array_unref(ids);
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
  kith_node *n = p->node;

  send_all_addrs(p);
  /* A joiner announces what it holds of the group it joins (nothing, or
   * what an interrupted join brought); the admitter answers with what it
   * holds and sends the rest. */
  for (guint i = 0; i < n->joins->len; i++) {
    node_join *j = n->joins->pdata[i];
    node_group *ng = node_group_get(n, j->inv.group_id);
    if (ng && memcmp(j->target, p->id, KITH_ID_LEN) == 0) {
      g_hash_table_add(p->have_sent, g_strdup(ng->id_text));
      send_have(p, ng);
    }
  }
}

static void recv_event(node_peer *p, const msgpack_object *it) {
  kith_node *n = p->node;
  uint8_t gid[32];
  const uint8_t *raw;
  size_t len;
  node_group *ng;
  GPtrArray *acc;
  kith_err err;

  if (kith_codec_bin_fixed(&it[1], gid, 32) != KITH_OK ||
      kith_codec_bin(&it[2], KITH_EVENT_MAX, &raw, &len) != KITH_OK)
    return;
  ng = node_group_get(n, gid);
  if (!ng || !peer_may_sync(p, ng)) {
    n->dropped_frames++;
    return;
  }
  acc = g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
  err = kith_group_receive(ng->g, raw, len, node_wall_ms(), acc);
  if (err != KITH_OK && err != KITH_ERR_DUPLICATE && err != KITH_ERR_MISSING) {
    n->dropped_frames++;
    node_log(n, "rejected an event from %.8s: %s", p->id_text,
             kith_strerror(err));
  }
  node_accepted(n, ng, acc, ACC_SYNC);
  g_ptr_array_unref(acc);
}

/* Everything the peer lacks of what we hold, in apply order. */
static void push_missing(node_peer *p, node_group *ng, GByteArray *theirs) {
  GHashTable *have = g_hash_table_new(g_bytes_hash, g_bytes_equal);
  GPtrArray *keys =
      g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  GByteArray *ours = g_byte_array_new();

  for (guint i = 0; i + 32 <= theirs->len; i += 32) {
    GBytes *k = g_bytes_new(theirs->data + i, 32);
    g_ptr_array_add(keys, k);
    g_hash_table_add(have, k);
  }
  kith_group_event_ids(ng->g, ours);
  for (guint i = 0; i + 32 <= ours->len; i += 32) {
    GBytes *k = g_bytes_new_static(ours->data + i, 32);
    if (!g_hash_table_contains(have, k) &&
        g_queue_get_length(p->push) < SYNC_MAX_IDS) {
      uint8_t *item = g_malloc(64);
      memcpy(item, kith_group_id(ng->g), 32);
      memcpy(item + 32, ours->data + i, 32);
      g_queue_push_tail(p->push, item);
    }
    g_bytes_unref(k);
  }
  g_byte_array_unref(ours);
  g_hash_table_unref(have);
  g_ptr_array_unref(keys);
  frames_pump(p);
}

/* Sends queued history while the link's send buffer is short, so a large
 * history flows at the link's pace instead of filling memory. */
void frames_pump(node_peer *p) {
  kith_node *n = p->node;

  if (p->pumping)
    return;
  p->pumping = 1;
  while (!p->closed && !g_queue_is_empty(p->push) &&
         p->outbuf->len < PUSH_WINDOW) {
    uint8_t *item = g_queue_pop_head(p->push);
    node_group *ng = node_group_get(n, item);
    const kith_event *ev = ng ? kith_group_event(ng->g, item + 32) : NULL;
    if (ev)
      frames_send_event(p, ev);
    g_free(item);
  }
  p->pumping = 0;
}

static void recv_have(node_peer *p, const msgpack_object *it) {
  kith_node *n = p->node;
  uint8_t gid[32];
  char text[KITH_ID_TEXT_LEN + 1];
  const uint8_t *ids;
  size_t len;
  node_group *ng;
  GByteArray *acc;

  if (kith_codec_bin_fixed(&it[1], gid, 32) != KITH_OK ||
      kith_codec_bin(&it[2], SYNC_IDS_PER_FRAME * 32, &ids, &len) != KITH_OK ||
      len % 32 != 0 || it[3].type != MSGPACK_OBJECT_BOOLEAN)
    return;
  ng = node_group_get(n, gid);
  if (!ng || !peer_may_sync(p, ng))
    return;
  kith_id_to_text(gid, text);
  acc = g_hash_table_lookup(p->have, text);
  if (!acc) {
    acc = g_byte_array_new();
    g_hash_table_replace(p->have, g_strdup(text), acc);
  }
  if (acc->len + len > SYNC_MAX_IDS * 32) {
    peer_close(p, "sync announcement too large");
    return;
  }
  g_byte_array_append(acc, ids, (guint)len);
  if (!it[3].via.boolean)
    return;
  g_byte_array_ref(acc);
  g_hash_table_remove(p->have, text);
  if (kith_group_is_member(ng->g, p->id))
    push_missing(p, ng, acc);
  if (!g_hash_table_contains(p->have_sent, text)) {
    g_hash_table_add(p->have_sent, g_strdup(text));
    send_have(p, ng);
  }
  join_on_have(n, p, ng, acc);
  g_byte_array_unref(acc);
}

static void recv_addrs(node_peer *p, const msgpack_object *it) {
  const msgpack_object *list = &it[1], *e;
  /* A joiner is not a member yet when the admitter introduces the others:
   * it takes the admitter's word for them. */
  int via_join = joining_via(p);

  if (list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size > ADDRS_MAX)
    return;
  for (uint32_t i = 0; i < list->via.array.size && !p->closed; i++) {
    uint8_t id[KITH_ID_LEN];
    char *host = NULL;
    uint64_t port, ts;
    GInetAddress *ia;

    if (kith_codec_array(&list->via.array.ptr[i], 4, &e) != KITH_OK ||
        kith_codec_bin_fixed(&e[0], id, KITH_ID_LEN) != KITH_OK ||
        kith_codec_strdup(&e[1], 63, &host) != KITH_OK ||
        kith_codec_uint(&e[2], 65535, &port) != KITH_OK || port == 0 ||
        kith_codec_uint(&e[3], UINT64_MAX, &ts) != KITH_OK) {
      g_free(host);
      continue;
    }
    ia = g_inet_address_new_from_string(host);
    if (ia && (via_join || node_shares_group(p->node, id)))
      node_remember_addr(p->node, id, host, (uint16_t)port, ts, 0);
    g_clear_object(&ia);
    g_free(host);
  }
}

void frames_on_frame(node_peer *p, const uint8_t *buf, size_t len) {
  msgpack_unpacked u;
  const msgpack_object *it;
  uint64_t type, t;

  msgpack_unpacked_init(&u);
  if (kith_codec_unpack(buf, len, &u) != KITH_OK ||
      u.data.type != MSGPACK_OBJECT_ARRAY || u.data.via.array.size < 1 ||
      kith_codec_uint(&u.data.via.array.ptr[0], 255, &type) != KITH_OK) {
    p->node->dropped_frames++;
    msgpack_unpacked_destroy(&u);
    return;
  }
  it = u.data.via.array.ptr;
  switch (u.data.via.array.size * 256 + type) {
  case 2 * 256 + FRAME_PING:
  case 2 * 256 + FRAME_PONG:
    if (kith_codec_uint(&it[1], UINT64_MAX, &t) == KITH_OK)
      peer_on_ping(p, (int)type, t);
    break;
  case 3 * 256 + FRAME_EVENT:
    recv_event(p, it);
    break;
  case 4 * 256 + FRAME_HAVE:
    recv_have(p, it);
    break;
  case 2 * 256 + FRAME_ADDRS:
    recv_addrs(p, it);
    break;
  case 3 * 256 + FRAME_GOSSIP:
    gossip_on_frame(p, it);
    break;
  case 5 * 256 + FRAME_RELAY:
    relay_on_frame(p, it);
    break;
  case 1 * 256 + FRAME_BYE:
    peer_close(p, "closed by the peer");
    break;
  case 2 * 256 + FRAME_ELSEWHERE:
    if (kith_codec_uint(&it[1], UINT64_MAX, &t) == KITH_OK)
      instance_on_frame(p, t);
    break;
  default:
    p->node->dropped_frames++; /* unknown frames are ignored: newer peers */
  }
  msgpack_unpacked_destroy(&u);
}
