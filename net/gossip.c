/* kith: the gossip engines (core/gossip.h) on the node's links.
 *
 * Each group this node is a member of has one engine. The node feeds it
 * link changes, the engine's frames (inside FRAME_GOSSIP), local events and
 * its verdicts on delivered events; it carries out what the engine asks:
 * send a frame, make or drop a link, look events up, and wakes it at its
 * next deadline. Every engine call gets its own output queue, drained at
 * once, so nested calls (a delivery that makes a rekey that is published)
 * never share a queue. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "../core/codec.h"
#include "../core/recon_index.h"
#include "node_int.h"

#define OVERLAY_JOIN_RETRY_MS KITH_SECOND
/* Buckets of the reconciliation set read per idle turn of the main loop
 * while it is built (core/recon_index.h). */
#define RECON_BUILD_SLICE 8
/* A GOSSIP frame names its group by the first bytes of the group id. */
#define GROUP_TAG_LEN KITH_WIRE_GROUP_TAG_LEN

static void arm_timer(kith_node *n);
static void run_out(kith_node *n, node_group *ng, kith_out *o);

static void drain(kith_node *n, node_group *ng, kith_out *o) {
  run_out(n, ng, o);
  kith_out_clear(o);
  arm_timer(n);
}

/* The running join of the group, if any. */
static node_join *join_of(kith_node *n, node_group *ng) {
  for (guint i = 0; i < n->joins->len; i++) {
    node_join *j = n->joins->pdata[i];
    if (memcmp(j->inv.group_id, kith_group_id(ng->g), 32) == 0)
      return j;
  }
  return NULL;
}

/* May peer take part in the group's gossip with us: a member in our state,
 * or the member we are joining the group through (our state is empty until
 * its history, our own admission included, has come). */
static int may_gossip(kith_node *n, node_group *ng, const uint8_t peer[32]) {
  node_join *j;

  if (kith_group_is_member(ng->g, peer))
    return 1;
  j = join_of(n, ng);
  return j && memcmp(j->target, peer, KITH_ID_LEN) == 0;
}

static void send_frame(node_peer *p, const uint8_t gid[32], const uint8_t *buf,
                       size_t len) {
  kith_pack pk;
  uint8_t *frame;
  size_t flen;

  kith_pack_init(&pk);
  kith_pack_array(&pk, 3);
  kith_pack_uint(&pk, FRAME_GOSSIP);
  kith_pack_bin(&pk, gid, GROUP_TAG_LEN);
  kith_pack_bin(&pk, buf, len);
  if (kith_pack_take(&pk, &frame, &flen) != KITH_OK)
    return;
  peer_send_frame(p, frame, flen);
  g_free(frame);
}

static void verdict(kith_node *n, node_group *ng, const uint8_t id[32],
                    kith_gossip_verdict_kind v, uint64_t ts_ms) {
  kith_out o;

  if (!ng->gs)
    return;
  kith_out_init(&o);
  kith_gossip_verdict(ng->gs, id, v, ts_ms, node_now(), &o);
  drain(n, ng, &o);
}

/* Is err a verdict on the bytes themselves (they will never be accepted,
 * from anyone), rather than on this moment (a limit, a resource)? */
static int bad_bytes(kith_err err) {
  switch (err) {
  case KITH_ERR_DECODE:
  case KITH_ERR_SIGNATURE:
  case KITH_ERR_PROTOCOL:
  case KITH_ERR_NOT_MEMBER:
  case KITH_ERR_FORBIDDEN:
  case KITH_ERR_CRYPTO:
    return 1;
  default:
    return 0;
  }
}

/* A held event waits for parents this node lacks: they are asked of the
 * neighbour that delivered it (which holds them: it forwards only what it
 * accepted) if they do not arrive within the engine's lazy wait. An event
 * signed by a member is passed on meanwhile (KITH_GOSSIP_HELD): its
 * parents are on their way along other trees, and the nodes behind this
 * one would otherwise wait for this node to receive them too. A joiner
 * has nobody behind it and asks for its history in reconciliation order,
 * not the events' order: the group holds what came early, and the engine
 * forgets it (KITH_GOSSIP_LATER), since it keeps only
 * KITH_GOSSIP_PENDING_PEER_MAX unjudged payloads of one sender and would
 * refuse the parents that release them. */
static void on_held(kith_node *n, node_group *ng, const kith_out_item *it,
                    const uint8_t *data, size_t len) {
  uint8_t ids[KITH_EVENT_MAX_PARENTS * 32];
  size_t k = 0;
  kith_event ev;
  kith_out o;

  /* The group checked these bytes' signature before it held them (5.7:
   * the signature is step 1, a hold step 5 or later): not again. */
  if (kith_event_decode_trusted(data, len, kith_group_id(ng->g), &ev) !=
      KITH_OK)
    return;
  for (size_t i = 0; i < ev.n_parents; i++)
    if (!kith_group_has_event(ng->g, ev.parents[i]))
      memcpy(ids + 32 * k++, ev.parents[i], 32);
  kith_out_init(&o);
  if (node_is_joining(n, ng))
    kith_gossip_verdict(ng->gs, it->id, KITH_GOSSIP_LATER, 0, node_now(), &o);
  else if (kith_group_is_member(ng->g, ev.author))
    kith_gossip_verdict(ng->gs, it->id, KITH_GOSSIP_HELD, ev.ts_ms, node_now(),
                        &o);
  kith_event_clear(&ev);
  if (k > 0 && kith_gossip_want(ng->gs, it->peer, ids, k, node_now(), NULL,
                                &o) != KITH_OK)
    n->dropped_frames++;
  drain(n, ng, &o);
}

/* Held events the group forgot at its bounds (docs/protocol.md 5.8) are
 * forgotten by the engine too ("not now"): it takes them again when they
 * come, rather than drop them as duplicates until KITH_GOSSIP_PENDING_MS
 * has passed. */
static void forget_evicted(kith_node *n, node_group *ng) {
  GByteArray *ids = g_byte_array_new();

  kith_group_take_evicted(ng->g, ids);
  for (guint i = 0; i + 32 <= ids->len && ng->gs; i += 32)
    verdict(n, ng, ids->data + i, KITH_GOSSIP_LATER, 0);
  g_byte_array_free(ids, TRUE);
}

/* Did the crypto worker verify exactly these bytes for this group, in the
 * frame being handled (gossip_check_frame)? */
static int checked(const kith_node *n, const node_group *ng,
                   const uint8_t *data, size_t len) {
  const kith_crypt_mark *m = &n->checked_mark;

  return n->checked && m->len == len &&
         memcmp(m->key, kith_group_id(ng->g), 32) == 0 &&
         memcmp(n->checked + m->at, data, len) == 0;
}

/* An event the engine received: the group decides; the engine forwards
 * only what the group accepted. */
static void deliver(kith_node *n, node_group *ng, const kith_out_item *it,
                    const uint8_t *data, size_t len) {
  GPtrArray *acc =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
  kith_err err;

  uint64_t ts = 0;

  node_batch(n);
  if (checked(n, ng, data, len)) {
    n->checked_events++;
    err = kith_group_receive_trusted(ng->g, data, len, node_wall_ms(), acc);
  } else
    err = kith_group_receive(ng->g, data, len, node_wall_ms(), acc);
  if (err == KITH_ERR_DUPLICATE) {
    int had =
        kith_group_event_info(ng->g, it->id, NULL, &ts, NULL, NULL) == KITH_OK;
    verdict(n, ng, it->id, had ? KITH_GOSSIP_VALID : KITH_GOSSIP_LATER, ts);
  } else if (err == KITH_ERR_MISSING) {
    on_held(n, ng, it, data, len);
  } else if (err != KITH_OK && bad_bytes(err)) {
    char text[KITH_ID_TEXT_LEN + 1];
    kith_id_to_text(it->peer, text);
    node_log(n, "rejected an event from %.8s: %s", text, kith_strerror(err));
    verdict(n, ng, it->id, KITH_GOSSIP_INVALID, 0);
  } else if (err != KITH_OK) {
    verdict(n, ng, it->id, KITH_GOSSIP_LATER, 0);
  }
  /* Accepted events (this one and held ones it released) get their
   * verdict in node_accepted; a held one gets it when released. */
  node_accepted(n, ng, acc, ACC_GOSSIP);
  g_ptr_array_unref(acc);
  forget_evicted(n, ng);
}

/* What waits to be sent to a peer, in order: an event to fetch (frame
 * NULL), or an engine payload frame that must not overtake those. */
typedef struct push_item {
  uint8_t gid[32];
  uint8_t id[32];
  uint8_t *frame; /* the engine's PAYLOAD frame, or NULL: fetch `id` */
  size_t len;
  uint64_t depth; /* of the event it carries or fetches */
} push_item;

void gossip_push_free(gpointer data) {
  push_item *it = data;
  g_free(it->frame);
  g_free(it);
}

/* The payload bytes of an engine PAYLOAD frame, or NULL; they live in u
 * (initialized by the caller, who destroys it afterwards). */
static const uint8_t *frame_payload(const uint8_t *frame, size_t len,
                                    msgpack_unpacked *u, size_t *dlen) {
  const msgpack_object *f;
  const uint8_t *data;

  if (kith_codec_unpack(frame, len, u) != KITH_OK ||
      kith_codec_array(&u->data, UINT32_MAX, &f) != KITH_OK ||
      u->data.via.array.size != 5 ||
      kith_codec_bin(&f[4], KITH_GOSSIP_MAX_PAYLOAD, &data, dlen) != KITH_OK)
    return NULL;
  return data;
}

/* The id and depth of the event in a PAYLOAD frame of group gid (depth
 * UINT64_MAX and a zero id if unreadable). Only the order of sending
 * depends on them, so the signature is not checked again (the group
 * checked it before the engine sent it). */
static uint64_t frame_event(const uint8_t *gid, const uint8_t *frame,
                            size_t len, uint8_t id[32]) {
  msgpack_unpacked u;
  size_t dlen;
  const uint8_t *data;
  kith_event ev;
  uint64_t depth = UINT64_MAX;

  memset(id, 0, 32);
  msgpack_unpacked_init(&u);
  data = frame_payload(frame, len, &u, &dlen);
  if (data && kith_event_decode_trusted(data, dlen, gid, &ev) == KITH_OK) {
    depth = ev.depth;
    kith_gossip_payload_id(data, dlen, id);
    kith_event_clear(&ev);
  }
  msgpack_unpacked_destroy(&u);
  return depth;
}

/* Queues an event for p in depth order: ahead of the deeper ones queued
 * last, looking back at most FETCH_REORDER_STEPS entries. id: the event
 * (to fetch, or carried by frame: the engine's PAYLOAD frame; NULL for a
 * frame whose event could not be read, never merged). Returns 0
 * (and frees frame) if that event is queued on p already: asked again
 * while its answer still waits in the queue (a slow link), it goes once;
 * every copy would grow the queue and the link's load. */
static int push(node_peer *p, const uint8_t gid[32], const uint8_t id[32],
                uint8_t *frame, size_t len, uint64_t depth) {
  char text[KITH_ID_TEXT_LEN + 1];
  if (id) {
    kith_id_to_text(id, text);
    if (g_hash_table_contains(p->queued, text)) {
      g_free(frame);
      return 0;
    }
    g_hash_table_add(p->queued, g_strdup(text));
  }
  push_item *it = g_new0(push_item, 1);
  GList *at = p->push->tail;

  memcpy(it->gid, gid, 32);
  if (id)
    memcpy(it->id, id, 32);
  it->frame = frame;
  it->len = len;
  it->depth = depth;
  for (unsigned steps = 0; at && steps < FETCH_REORDER_STEPS; steps++) {
    if (((const push_item *)at->data)->depth <= depth)
      break;
    at = at->prev;
  }
  if (at)
    g_queue_insert_after(p->push, at, it);
  else
    g_queue_push_head(p->push, it);
  return 1;
}

static gboolean on_pump_soon(gpointer data) {
  node_peer *p = data;

  p->pump_soon = 0;
  gossip_pump(p);
  return G_SOURCE_REMOVE;
}

/* Events a peer asked for that the engine no longer caches (a history for
 * a newcomer, what a returning node lacks) are queued on the link and sent
 * as it drains (gossip_pump), so a long history flows at the link's pace.
 * Payload frames the engine sends meanwhile join the queue too. The queue
 * is kept in depth order: a newcomer asks in the order reconciliation
 * finds the differences, not the events' order, and its engine and group
 * hold only so many events whose parents are missing. The queue starts
 * going out once the main loop is idle, so that all the WANT frames that
 * arrived together (a reconciliation's whole difference) are sorted
 * before the first event leaves. */
static void fetch(kith_node *n, node_group *ng, const uint8_t peer[32],
                  const uint8_t *ids, size_t len) {
  node_peer *p = peer_find_up(n, peer);

  for (size_t i = 0; p && i + 32 <= len; i += 32) {
    uint64_t depth;
    if (g_queue_get_length(p->push) >= FETCH_QUEUE_MAX) {
      n->dropped_frames++; /* asked again at its next reconciliation */
      break;
    }
    if (kith_group_event_info(ng->g, ids + i, &depth, NULL, NULL, NULL) ==
        KITH_OK)
      (void)push(p, kith_group_id(ng->g), ids + i, NULL, 0, depth);
  }
  if (p && !p->pump_soon)
    p->pump_soon = g_idle_add(on_pump_soon, p);
}

static void pump_item(kith_node *n, node_peer *p, push_item *it) {
  node_group *ng = node_group_get(n, it->gid);
  uint64_t ts;
  GBytes *raw;
  kith_out o;

  if (it->frame) {
    send_frame(p, it->gid, it->frame, it->len);
    return;
  }
  raw = ng && ng->gs ? node_event_raw(n, ng, it->id, &ts) : NULL;
  if (!raw)
    return;
  kith_out_init(&o);
  gsize len;
  const uint8_t *data = g_bytes_get_data(raw, &len);
  if (kith_gossip_send_payload(ng->gs, p->id, data, len, &o) != KITH_OK)
    n->dropped_frames++;
  g_bytes_unref(raw);
  drain(n, ng, &o);
}

void gossip_pump(node_peer *p) {
  if (p->pumping)
    return;
  p->pumping = 1;
  while (!p->closed && !g_queue_is_empty(p->push) &&
         peer_unsent(p) < PUSH_WINDOW) {
    push_item *it = g_queue_pop_head(p->push);
    char text[KITH_ID_TEXT_LEN + 1];
    kith_id_to_text(it->id, text);
    g_hash_table_remove(p->queued, text);
    pump_item(p->node, p, it);
    gossip_push_free(it);
  }
  p->pumping = 0;
}

/* The engine wants a link to peer: report an existing one, or make one
 * from the address we know, or tell it there is no way. */
static void connect_to(kith_node *n, node_group *ng, const uint8_t peer[32]) {
  char text[KITH_ID_TEXT_LEN + 1];
  node_peer *p = peer_find(n, peer);
  kith_stored_peer *sp;
  kith_out o;

  if (p && p->state != PEER_UP)
    return; /* being made: gossip_link_up follows */
  kith_out_init(&o);
  kith_id_to_text(peer, text);
  sp = g_hash_table_lookup(n->addrs, text);
  /* The remembered address first; if a direct attempt there failed lately
   * (NAT, a stale address), signalling through a linked relay friend or a
   * common neighbour (an introduction). */
  int direct = sp && !node_direct_failed(n, peer);
  node_peer *via = p || direct ? NULL : relay_pick(n, peer);
  if (p)
    kith_gossip_link_up(ng->gs, peer, node_now(), &o);
  else if (!(direct && peer_connect(n, peer, sp->host, sp->port, NULL, 0)) &&
           !(via && peer_connect_via(n, peer, via, NULL, 0)))
    kith_gossip_link_down(ng->gs, peer, node_now(), &o);
  drain(n, ng, &o);
}

/* A link no group's overlay needs (and no join uses) is closed. */
static void maybe_disconnect(kith_node *n, const uint8_t peer[32]) {
  node_peer *p = peer_find(n, peer);

  if (!p || gossip_wants_link(n, peer) || relay_is_friend(n, peer))
    return; /* friends' links are kept: they relay */
  for (guint i = 0; i < n->joins->len; i++)
    if (memcmp(((node_join *)n->joins->pdata[i])->target, peer, KITH_ID_LEN) ==
        0)
      return;
  peer_close(p, "no group's overlay needs this link");
}

/* KITH_DEBUG_GOSSIP set: every engine output is logged. Read once: the
 * environment is searched on every call otherwise. */
static int debug_gossip(void) {
  static int on = -1;

  if (on < 0)
    on = g_getenv("KITH_DEBUG_GOSSIP") != NULL;
  return on;
}

static void run_item(kith_node *n, node_group *ng, kith_out *o, size_t i) {
  kith_out_item it = o->items[i];
  uint8_t *data = kith_out_take_data(o, i);
  node_peer *p;
  if (debug_gossip()) {
    char t[KITH_ID_TEXT_LEN + 1];
    kith_id_to_text(it.peer, t);
    node_log(n, "gossip out %d to %.8s type %d", it.kind, t,
             it.kind == KITH_OUT_SEND ? kith_gossip_frame_type(data, it.len)
                                      : -1);
  }

  switch (it.kind) {
  case KITH_OUT_SEND:
    if (!(p = peer_find_up(n, it.peer)))
      break;
    /* A payload frame queues behind the events waiting on the link,
     * except the one gossip_pump is sending for the head of that queue:
     * it is what they wait for (queued at the tail, it would come after
     * everything queued meanwhile: a newcomer's history children first).
     * A cached answer to an id asked again goes once, like a fetched one. */
    if (!p->pumping && !g_queue_is_empty(p->push) &&
        kith_gossip_frame_type(data, it.len) == KITH_GF_PAYLOAD) {
      uint8_t id[32];
      uint64_t depth = frame_event(kith_group_id(ng->g), data, it.len, id);
      (void)push(p, kith_group_id(ng->g), depth == UINT64_MAX ? NULL : id, data,
                 it.len, depth);
      data = NULL; /* push took it */
      gossip_pump(p);
    } else {
      send_frame(p, kith_group_id(ng->g), data, it.len);
    }
    break;
  case KITH_OUT_DELIVER:
    if (it.ephemeral)
      verdict(n, ng, it.id, presence_judge(n, ng, data, it.len), 0);
    else
      deliver(n, ng, &it, data, it.len);
    break;
  case KITH_OUT_CONNECT:
    connect_to(n, ng, it.peer);
    break;
  case KITH_OUT_DISCONNECT:
    maybe_disconnect(n, it.peer);
    break;
  case KITH_OUT_PENALIZE:
    n->dropped_frames++;
    break;
  case KITH_OUT_FETCH:
    fetch(n, ng, it.peer, data, it.len);
    break;
  }
  g_free(data);
}

static void run_out(kith_node *n, node_group *ng, kith_out *o) {
  /* Items are copied out one at a time: handling one may not touch o. */
  for (size_t i = 0; i < o->n && !n->stopping && ng->gs; i++)
    run_item(n, ng, o, i);
}

static gboolean on_timer(gpointer data) {
  kith_node *n = data;
  uint64_t now = node_now();
  GList *groups = g_hash_table_get_values(n->groups);

  n->gossip_timer = 0;
  n->gossip_timer_at = 0;
  for (GList *l = groups; l; l = l->next) {
    node_group *ng = l->data;
    kith_out o;
    if (!ng->gs || kith_gossip_next_deadline(ng->gs) > now)
      continue;
    kith_out_init(&o);
    kith_gossip_tick(ng->gs, now, &o);
    run_out(n, ng, &o);
    kith_out_clear(&o);
  }
  g_list_free(groups);
  arm_timer(n);
  return G_SOURCE_REMOVE;
}

/* One timer for all engines, at the earliest deadline. */
static void arm_timer(kith_node *n) {
  GHashTableIter it;
  gpointer v;
  uint64_t at = UINT64_MAX, now = node_now();

  if (n->stopping)
    return;
  g_hash_table_iter_init(&it, n->groups);
  while (g_hash_table_iter_next(&it, NULL, &v))
    if (((node_group *)v)->gs)
      at = MIN(at, kith_gossip_next_deadline(((node_group *)v)->gs));
  if (at == UINT64_MAX || (n->gossip_timer && n->gossip_timer_at <= at))
    return;
  if (n->gossip_timer)
    g_source_remove(n->gossip_timer);
  n->gossip_timer_at = at;
  n->gossip_timer =
      g_timeout_add(at > now ? (guint)MIN(at - now, 60000) : 0, on_timer, n);
}

/* The freshest address we know of a member, by its own clock (0: none). */
static uint64_t addr_time(kith_node *n, const uint8_t id[32]) {
  char text[KITH_ID_TEXT_LEN + 1];
  kith_stored_peer *sp;

  kith_id_to_text(id, text);
  sp = g_hash_table_lookup(n->addrs, text);
  return sp ? sp->seen_ms : 0;
}

/* Enters the group's overlay through a member whose address we know:
 * one we are linked to if any, else, among those no attempt is running
 * for, the one whose address is newest (the likeliest to be right after
 * members restarted elsewhere). Called every OVERLAY_JOIN_RETRY_MS while
 * the view is empty, so stale addresses cost a second each, not a
 * timeout each. */
static void join_overlay(kith_node *n, node_group *ng) {
  GPtrArray *known = g_ptr_array_new();
  uint64_t now = node_now();
  const kith_member *pick = NULL;
  kith_out o;

  if (now < ng->next_join_ms)
    goto out;
  ng->next_join_ms = now + OVERLAY_JOIN_RETRY_MS;
  for (size_t i = 0; i < kith_group_n_members(ng->g); i++) {
    const kith_member *m = kith_group_member_at(ng->g, i);
    char text[KITH_ID_TEXT_LEN + 1];
    kith_id_to_text(m->id, text);
    if (memcmp(m->id, n->me.pk, KITH_ID_LEN) != 0 &&
        (g_hash_table_contains(n->addrs, text) || relay_pick(n, m->id)))
      g_ptr_array_add(known, (gpointer)m);
  }
  for (guint i = 0; i < known->len; i++) {
    const kith_member *m = known->pdata[i];
    if (peer_find_up(n, m->id)) {
      pick = m;
      break;
    }
    if (!peer_find(n, m->id) &&
        (!pick || addr_time(n, m->id) > addr_time(n, pick->id)))
      pick = m;
  }
  if (!pick)
    goto out;
  kith_out_init(&o);
  if (kith_gossip_join(ng->gs, pick->id, now, &o) == KITH_OK)
    drain(n, ng, &o);
  else
    kith_out_clear(&o);
out:
  g_ptr_array_unref(known);
}

/* ---- the reconciliation set, read from the store ---- */

typedef struct node_recon {
  kith_node *n;
  node_group *ng;
  kith_recon_index *x;
  guint build; /* idle source while the index is built */
} node_recon;

static void known_add(void *ctx, uint64_t ts, const uint8_t id[32]) {
  kith_recon_index_add(((node_recon *)ctx)->x, ts, id);
}

/* KITH_GOSSIP_ACTIVE (tests): the bound of the active view, so that a few
 * nodes make a sparse mesh (not all linked to each other). */
static void engine_config(kith_node *n, kith_gossip_config *cfg) {
  const char *v = g_getenv("KITH_GOSSIP_ACTIVE");
  char *end = NULL;
  unsigned long a = v ? strtoul(v, &end, 10) : 0;

  kith_gossip_config_default(cfg);
  if (v && *v && *end == '\0' && a >= 1 && a <= KITH_GOSSIP_ACTIVE_CAP)
    cfg->active_max = (uint32_t)a;
  else if (v)
    node_log(n, "KITH_GOSSIP_ACTIVE=%s ignored: it takes 1 to %d", v,
             KITH_GOSSIP_ACTIVE_CAP);
}

static int known_ready(void *ctx) {
  return kith_recon_index_ready(((node_recon *)ctx)->x);
}

static gboolean on_build(gpointer data);

static gboolean on_build_retry(gpointer data) {
  node_recon *r = data;
  r->build = g_idle_add_full(G_PRIORITY_LOW, on_build, r, NULL);
  return G_SOURCE_REMOVE;
}

/* Builds the index a slice at a time, after the control socket and
 * everything else waiting (a read that fails is tried again a second
 * later); once complete, reconciles with every neighbour (what a restart
 * missed flows now). */
static gboolean on_build(gpointer data) {
  node_recon *r = data;
  kith_node *n = r->n;
  node_group *ng = r->ng;
  int done = 0;
  uint8_t peers[KITH_GOSSIP_ACTIVE_CAP][32];

  if (kith_recon_index_build(r->x, RECON_BUILD_SLICE, &done) != KITH_OK) {
    node_log(n, "could not read group %.8s's event ids from the store",
             ng->id_text);
    r->build = g_timeout_add(KITH_SECOND, on_build_retry, r);
    return G_SOURCE_REMOVE;
  }
  if (!done)
    return G_SOURCE_CONTINUE;
  r->build = 0;
  size_t k = MIN(kith_gossip_active(ng->gs, peers, KITH_GOSSIP_ACTIVE_CAP),
                 (size_t)KITH_GOSSIP_ACTIVE_CAP);
  for (size_t i = 0; i < k && ng->gs; i++) { /* a drain may stop it */
    kith_out o;
    kith_out_init(&o);
    kith_err err = kith_gossip_reconcile(ng->gs, peers[i], node_now(), &o);
    (void)err; /* STATE: not linked any more */
    drain(n, ng, &o);
  }
  return G_SOURCE_REMOVE;
}

static void recon_free(node_recon *r) {
  if (!r)
    return;
  if (r->build)
    g_source_remove(r->build);
  kith_recon_index_free(r->x);
  g_free(r);
}

/* The engine reconciles the group's stored events through an index built
 * lazily from the store: nothing is loaded before the node answers. */
static void start_engine(kith_node *n, node_group *ng) {
  kith_gossip_config cfg;
  uint64_t seed;
  node_recon *r = g_new0(node_recon, 1);

  engine_config(n, &cfg);
  randombytes_buf(&seed, sizeof seed);
  ng->gs = kith_gossip_new(n->me.pk, seed, &cfg);
  r->n = n;
  r->ng = ng;
  r->x = kith_recon_index_on_store(n->store, kith_group_id(ng->g));
  kith_gossip_set_known(ng->gs,
                        &(kith_gossip_known){kith_recon_index_source(r->x), r,
                                             known_add, known_ready});
  r->build = g_idle_add_full(G_PRIORITY_LOW, on_build, r, NULL);
  ng->recon = r;
}

/* Offers the engine the links we already have to members. */
static void link_members(kith_node *n, node_group *ng) {
  GList *peers = g_hash_table_get_values(n->peers);

  for (GList *l = peers; l && ng->gs; l = l->next) {
    node_peer *p = l->data;
    kith_out o;
    if (!peer_is_up(p) || !may_gossip(n, ng, p->id))
      continue;
    kith_out_init(&o);
    kith_gossip_link_up(ng->gs, p->id, node_now(), &o);
    kith_err err = kith_gossip_reconcile(ng->gs, p->id, node_now(), &o);
    (void)err; /* STATE: the engine had no room to track the link */
    drain(n, ng, &o);
  }
  g_list_free(peers);
}

void gossip_group_stop(node_group *ng) {
  kith_gossip_free(ng->gs);
  ng->gs = NULL;
  recon_free(ng->recon);
  ng->recon = NULL;
}

/* Keeps the engine in step with the group: started while we are a member
 * (or joining: the engine brings the history), stopped after, told of
 * linked peers that joined or left, and sent into the overlay again when it
 * has no neighbour. Called from the node's tick (never from inside an
 * engine call), when a join starts and when it completes. */
void gossip_group_update(kith_node *n, node_group *ng) {
  int member =
      kith_group_is_ready(ng->g) && kith_group_is_member(ng->g, n->me.pk);
  GList *peers;

  if (!member && !join_of(n, ng)) {
    if (ng->gs)
      gossip_group_stop(ng);
    return;
  }
  if (!ng->gs) {
    start_engine(n, ng);
    if (!ng->gs)
      return;
    link_members(n, ng);
  }
  for (size_t i = 0; i < kith_group_n_members(ng->g); i++) {
    const kith_member *m = kith_group_member_at(ng->g, i);
    if (memcmp(m->id, n->me.pk, KITH_ID_LEN) != 0)
      kith_gossip_add_passive(ng->gs, m->id);
  }
  /* Linked peers that are no longer members leave the overlay. */
  peers = g_hash_table_get_values(n->peers);
  for (GList *l = peers; l && ng->gs; l = l->next) {
    node_peer *p = l->data;
    kith_out o;
    if (!peer_is_up(p) || may_gossip(n, ng, p->id) ||
        kith_gossip_peer_state(ng->gs, p->id) < 0)
      continue;
    kith_out_init(&o);
    kith_gossip_link_down(ng->gs, p->id, node_now(), &o);
    drain(n, ng, &o);
  }
  g_list_free(peers);
  if (ng->gs && kith_gossip_active(ng->gs, NULL, 0) == 0)
    join_overlay(n, ng);
  arm_timer(n);
}

/* A new link is offered to the engine of every group both ends are in,
 * and reconciled at once: after a restart, a join or a partition, what
 * either side missed flows now, not at the next periodic round. */
void gossip_link_up(kith_node *n, node_peer *p) {
  GList *groups = g_hash_table_get_values(n->groups);

  for (GList *l = groups; l && !p->closed; l = l->next) {
    node_group *ng = l->data;
    kith_out o;
    if (!ng->gs || !may_gossip(n, ng, p->id))
      continue;
    kith_out_init(&o);
    kith_gossip_link_up(ng->gs, p->id, node_now(), &o);
    join_send_admission(n, ng, p, &o);
    kith_err err = kith_gossip_reconcile(ng->gs, p->id, node_now(), &o);
    (void)err; /* STATE: the engine had no room to track the link */
    drain(n, ng, &o);
  }
  g_list_free(groups);
}

void gossip_link_down(kith_node *n, node_peer *p) {
  GList *groups;

  if (n->stopping)
    return;
  groups = g_hash_table_get_values(n->groups);
  for (GList *l = groups; l; l = l->next) {
    node_group *ng = l->data;
    kith_out o;
    if (!ng->gs)
      continue;
    kith_out_init(&o);
    kith_gossip_link_down(ng->gs, p->id, node_now(), &o);
    drain(n, ng, &o);
  }
  g_list_free(groups);
}

int gossip_wants_link(kith_node *n, const uint8_t peer[32]) {
  GHashTableIter it;
  gpointer v;

  g_hash_table_iter_init(&it, n->groups);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    node_group *ng = v;
    if (ng->gs && kith_gossip_peer_state(ng->gs, peer) >= 0)
      return 1;
  }
  return 0;
}

/* The group a GOSSIP frame names: by its whole id (32 bytes) or its first
 * GROUP_TAG_LEN bytes; NULL if none, or if the bytes name two. */
static node_group *frame_group(kith_node *n, const uint8_t *gid, size_t len) {
  GHashTableIter it;
  gpointer v;
  node_group *found = NULL;

  if (len == 32)
    return node_group_get(n, gid);
  g_hash_table_iter_init(&it, n->groups);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    if (memcmp(kith_group_id(((node_group *)v)->g), gid, len) != 0)
      continue;
    if (found)
      return NULL;
    found = v;
  }
  return found;
}

void *gossip_check_begin(kith_node *n) {
  GByteArray *gids = g_byte_array_new();
  GHashTableIter it;
  gpointer v;

  g_hash_table_iter_init(&it, n->groups);
  while (g_hash_table_iter_next(&it, NULL, &v))
    g_byte_array_append(gids, kith_group_id(((node_group *)v)->g), 32);
  return gids;
}

void gossip_check_free(void *ctx) {
  g_byte_array_unref(ctx);
}

/* On the crypto worker: only the frame's bytes and the group ids in ctx
 * are read. The group is found as frame_group finds it. */
void gossip_check_frame(const void *ctx, const uint8_t *frame, size_t len,
                        kith_crypt_mark *m) {
  const GByteArray *gids = ctx;
  const uint8_t *gid = NULL, *data;
  size_t dlen;
  kith_wire_frame f;
  msgpack_unpacked u;
  kith_event ev;

  msgpack_unpacked_init(&u);
  if (kith_wire_frame_decode(frame, len, &f) != KITH_OK ||
      f.type != FRAME_GOSSIP ||
      kith_gossip_frame_type(f.data, f.len) != KITH_GF_PAYLOAD ||
      !(data = frame_payload(f.data, f.len, &u, &dlen))) {
    msgpack_unpacked_destroy(&u);
    kith_wire_frame_clear(&f);
    return;
  }
  for (guint i = 0; i + 32 <= gids->len && f.gid_len <= 32; i += 32)
    if (memcmp(gids->data + i, f.gid, f.gid_len) == 0) {
      if (gid) { /* two groups begin so: frame_group finds none */
        gid = NULL;
        break;
      }
      gid = gids->data + i;
    }
  /* The payload is the frame's last field (protocol.md 11, 11.7), so
   * its last bytes; the decoders copy, so those bytes of the frame
   * itself are verified, where deliver compares them. */
  if (gid && dlen <= len && memcmp(frame + len - dlen, data, dlen) == 0 &&
      kith_event_decode(frame + len - dlen, dlen, gid, &ev) == KITH_OK) {
    kith_event_clear(&ev);
    m->ok = 1;
    memcpy(m->key, gid, 32);
    m->at = (uint32_t)(len - dlen);
    m->len = (uint32_t)dlen;
  }
  msgpack_unpacked_destroy(&u);
  kith_wire_frame_clear(&f);
}

void gossip_on_frame(node_peer *p, const uint8_t *gid, size_t gid_len,
                     const uint8_t *buf, size_t len) {
  kith_node *n = p->node;
  node_group *ng = frame_group(n, gid, gid_len);
  kith_out o;

  if (!ng || !ng->gs || !may_gossip(n, ng, p->id)) {
    n->dropped_frames++;
    return;
  }
  kith_out_init(&o);
  if (kith_gossip_recv(ng->gs, p->id, buf, len, node_now(), &o) != KITH_OK)
    n->dropped_frames++;
  drain(n, ng, &o);
}

/* A removal also goes straight to the removed member if it is one of our
 * overlay neighbours, so that it learns it is out (the overlay no longer
 * carries anything to it); others learn it from their own neighbours. */
static void tell_removed(kith_node *n, node_group *ng, const kith_event *ev) {
  GList *peers = g_hash_table_get_values(n->peers);

  for (GList *l = peers; l && ng->gs; l = l->next) {
    node_peer *p = l->data;
    kith_out o;
    /* Only to the overlay neighbours it removes: they were members. */
    if (!peer_is_up(p) || kith_group_is_member(ng->g, p->id) ||
        kith_gossip_peer_state(ng->gs, p->id) < 0)
      continue;
    kith_out_init(&o);
    if (kith_gossip_send_payload(ng->gs, p->id, ev->raw, ev->raw_len, &o) !=
        KITH_OK)
      n->dropped_frames++;
    drain(n, ng, &o);
  }
  g_list_free(peers);
}

void gossip_note(kith_node *n, node_group *ng, const kith_accepted *a,
                 acc_origin origin) {
  kith_out o;

  if (a->ev.kind == KITH_EV_REMOVE)
    tell_removed(n, ng, &a->ev);
  if (!ng->gs)
    return;
  if (origin == ACC_GOSSIP) {
    presence_heard(n, ng, &a->ev);
    verdict(n, ng, a->ev.id, KITH_GOSSIP_VALID, a->ev.ts_ms);
    return;
  }
  kith_out_init(&o);
  if (kith_gossip_publish(ng->gs, a->ev.ts_ms, a->ev.raw, a->ev.raw_len,
                          node_now(), &o) != KITH_OK)
    node_log(n, "could not publish an event");
  else
    presence_published(n, ng);
  drain(n, ng, &o);
}
void gossip_publish_ephemeral(kith_node *n, node_group *ng, const uint8_t *buf,
                              size_t len) {
  kith_out o;

  if (!ng->gs)
    return;
  kith_out_init(&o);
  if (kith_gossip_publish_ephemeral(ng->gs, buf, len, node_now(), &o) !=
      KITH_OK)
    n->dropped_frames++;
  drain(n, ng, &o);
}

static void kv(kith_pack *pk, const char *k, uint64_t v) {
  kith_pack_cstr(pk, k);
  kith_pack_uint(pk, v);
}

/* gossip.stats []: the counters of every running engine, for benchmarks
 * and diagnosis (docs/protocol.md 12.3). */
static void rpc_gossip_stats(kith_rpc_call *call, const msgpack_object *params,
                             void *ud) {
  kith_node *n = ud;
  GList *groups = g_hash_table_get_values(n->groups);
  kith_pack pk;
  uint32_t count = 0;

  (void)params;
  for (GList *l = groups; l; l = l->next)
    count += ((node_group *)l->data)->gs != NULL;
  kith_pack_init(&pk);
  kith_pack_array(&pk, count);
  for (GList *l = groups; l; l = l->next) {
    node_group *ng = l->data;
    kith_gossip_stats st;
    if (!ng->gs)
      continue;
    kith_gossip_get_stats(ng->gs, &st);
    msgpack_pack_map(&pk.pk, 19);
    kith_pack_cstr(&pk, "group_id");
    kith_pack_cstr(&pk, ng->id_text);
    kv(&pk, "active", st.active);
    kv(&pk, "eager", st.eager);
    kv(&pk, "passive", st.passive);
    kv(&pk, "payloads", st.payloads);
    kv(&pk, "duplicates", st.duplicates);
    kv(&pk, "grafts_sent", st.grafts_sent);
    kv(&pk, "prunes_sent", st.prunes_sent);
    kv(&pk, "ihave_sent", st.ihave_sent);
    kv(&pk, "wants_sent", st.wants_sent);
    kv(&pk, "recon_rounds", st.recon_rounds);
    kv(&pk, "invalid", st.invalid);
    kv(&pk, "later", st.later);
    kv(&pk, "overflows", st.overflows);
    kv(&pk, "malformed", st.malformed);
    kv(&pk, "held", kith_group_n_held(ng->g));
    kv(&pk, "trees", st.trees);
    kv(&pk, "lazy_ms", st.lazy_ms);
    kv(&pk, "ephemeral", st.ephemeral);
  }
  g_list_free(groups);
  node_rpc_reply(n, call, &pk);
}

void gossip_rpc_register(kith_node *n) {
  kith_control_register(n->ctl, "gossip.stats", rpc_gossip_stats, n);
}
