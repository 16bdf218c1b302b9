/* kith: gossip overlay, modelled on HyParView (Leitao, Pereira, Rodrigues,
 * DSN 2007).
 *
 * Differences from the paper, because links are made by the caller:
 * - Adding a node that is not linked yet means asking for a link
 *   (KITH_OUT_CONNECT) and sending NEIGHBOR once it is up. A walk that ends
 *   at a node (FORWARD_JOIN with ttl 0) uses a high-priority NEIGHBOR,
 *   which is always accepted, as the paper's direct add is.
 * - SHUFFLE goes to one active neighbour, who answers on the same link,
 *   instead of a random walk answered over a temporary connection.
 * - Refilling a short active view is retried every repair_ms (with backoff
 *   after repeated refusals) while the view is below active_max. */
#include "gossip_int.h"

#include <string.h>

#define REPAIR_TRIES 4    /* refusals in a row before backing off */
#define REPAIR_BACKOFF 10 /* times repair_ms */

static uint32_t n_active(kith_gossip *g) {
  gpeer *list[PEERS_MAX];
  return gs_active_list(g, list);
}

static int in_passive(kith_gossip *g, const uint8_t id[32]) {
  for (uint32_t i = 0; i < g->n_passive; i++)
    if (memcmp(g->passive[i], id, 32) == 0)
      return 1;
  return 0;
}

void ov_passive_add(kith_gossip *g, const uint8_t id[32]) {
  gpeer *p = gs_peer(g, id);
  if (memcmp(id, g->self, 32) == 0 || (p != NULL && p->active) ||
      in_passive(g, id))
    return;
  if (g->n_passive < g->cfg.passive_max)
    memcpy(g->passive[g->n_passive++], id, 32);
  else /* full: a random entry makes room, keeping the view fresh */
    memcpy(g->passive[gs_below(g, g->n_passive)], id, 32);
}

void ov_passive_del(kith_gossip *g, const uint8_t id[32]) {
  for (uint32_t i = 0; i < g->n_passive; i++) {
    if (memcmp(g->passive[i], id, 32) == 0) {
      memmove(g->passive[i], g->passive[g->n_passive - 1], 32);
      g->n_passive--;
      return;
    }
  }
}

void kith_gossip_add_passive(kith_gossip *g, const uint8_t peer[32]) {
  ov_passive_add(g, peer);
}

static void drop_link(kith_gossip *g, gpeer *p, kith_out *out) {
  if (p->linked)
    (void)kith_out_push(out, KITH_OUT_DISCONNECT, p->id, NULL, 0);
  gs_peer_drop(g, p, out);
}

static void connect_to(kith_gossip *g, const uint8_t id[32], int intent,
                       uint64_t now, kith_out *out) {
  gpeer *p = gs_peer_add(g, id, now);
  if (p == NULL || p->active || p->awaiting)
    return;
  p->intent = (uint8_t)intent;
  p->deadline = now + g->cfg.connect_timeout_ms;
  if (p->linked)
    ov_link_up(g, p, now, out);
  else
    (void)kith_out_push(out, KITH_OUT_CONNECT, id, NULL, 0);
}

kith_err kith_gossip_join(kith_gossip *g, const uint8_t contact[32],
                          uint64_t now_ms, kith_out *out) {
  if (memcmp(contact, g->self, 32) == 0)
    return KITH_ERR_ARG;
  gs_arm(g, now_ms);
  connect_to(g, contact, INTENT_JOIN, now_ms, out);
  return gs_peer(g, contact) != NULL ? KITH_OK : KITH_ERR_LIMIT;
}

/* Makes room if the view is full: a random other neighbour is told and
 * moves to the passive view (the paper's dropRandomElementFromActiveView). */
static void add_active(kith_gossip *g, gpeer *p, kith_out *out) {
  if (p->active)
    return;
  gpeer *list[PEERS_MAX];
  uint32_t n = gs_active_list(g, list);
  if (n >= g->cfg.active_max) {
    gpeer *q = list[gs_below(g, n)];
    gs_send_simple(g, q->id, KITH_GF_DISCONNECT, -1, out);
    drop_link(g, q, out);
    ov_passive_add(g, q->id); /* it was active a moment ago */
  }
  ov_passive_del(g, p->id);
  p->active = 1;
  p->intent = INTENT_NONE;
  p->awaiting = 0;
  g->repair_tries = 0;
  pt_neighbor_up(g, p, out);
}

/* JOIN or NEIGHBOR [high] to p; the answer is awaited until p->deadline
 * (which also times the round trip). */
static void ask(kith_gossip *g, gpeer *p, int type, int arg, uint64_t now,
                kith_out *out) {
  gs_send_simple(g, p->id, type, arg, out);
  p->awaiting = 1;
  p->deadline = now + g->cfg.connect_timeout_ms;
}

void ov_link_up(kith_gossip *g, gpeer *p, uint64_t now, kith_out *out) {
  gs_arm(g, now);
  int intent = p->intent;
  p->intent = INTENT_NONE;
  if (intent == INTENT_JOIN) /* active once the contact confirms */
    ask(g, p, KITH_GF_JOIN, -1, now, out);
  else if (intent == INTENT_NEIGHBOR_LO || intent == INTENT_NEIGHBOR_HI)
    ask(g, p, KITH_GF_NEIGHBOR, intent == INTENT_NEIGHBOR_HI, now, out);
  else if (!p->active && !p->awaiting && n_active(g) < g->cfg.active_max)
    /* A link that exists for another reason (a join, another group) is
     * the cheapest neighbour there is: offer it while the view has room. */
    ask(g, p, KITH_GF_NEIGHBOR, n_active(g) == 0, now, out);
}

void ov_link_down(kith_gossip *g, const uint8_t id[32], uint64_t now,
                  kith_out *out) {
  gpeer *p = gs_peer(g, id);
  if (p == NULL)
    return;
  int was_active = p->active, attempt = p->intent || p->awaiting;
  if (attempt) /* could not reach it: forget it */
    ov_passive_del(g, id);
  gs_peer_drop(g, p, out); /* a failed neighbour is not kept (paper) */
  if (was_active || attempt)
    g->repair_at = now;
}

static kith_err on_forward_join(kith_gossip *g, gpeer *p,
                                const msgpack_object *f, uint32_t nf,
                                uint64_t now, kith_out *out) {
  uint8_t node[32];
  uint64_t ttl;
  if (nf != 3 || kith_codec_bin_fixed(&f[1], node, 32) != KITH_OK ||
      kith_codec_uint(&f[2], TTL_MAX, &ttl) != KITH_OK)
    return KITH_ERR_DECODE;
  gpeer *known = gs_peer(g, node);
  if (memcmp(node, g->self, 32) == 0 || (known != NULL && known->active))
    return KITH_OK;
  gpeer *list[PEERS_MAX], *cand[PEERS_MAX];
  uint32_t n = gs_active_list(g, list), nc = 0;
  if (ttl == 0 || n <= 1) {
    connect_to(g, node, INTENT_NEIGHBOR_HI, now, out);
    return KITH_OK;
  }
  if (ttl == g->cfg.prwl)
    ov_passive_add(g, node);
  for (uint32_t i = 0; i < n; i++)
    if (list[i] != p && memcmp(list[i]->id, node, 32) != 0)
      cand[nc++] = list[i];
  if (nc == 0) {
    connect_to(g, node, INTENT_NEIGHBOR_HI, now, out);
    return KITH_OK;
  }
  kith_pack pk;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 3);
  kith_pack_uint(&pk, KITH_GF_FORWARD_JOIN);
  kith_pack_bin(&pk, node, 32);
  kith_pack_uint(&pk, ttl - 1);
  gs_send(g, cand[gs_below(g, nc)]->id, &pk, out);
  return KITH_OK;
}

static void on_join(kith_gossip *g, gpeer *p, kith_out *out) {
  add_active(g, p, out);
  gs_send_simple(g, p->id, KITH_GF_NEIGHBOR_REPLY, 1, out);
  gpeer *list[PEERS_MAX];
  uint32_t n = gs_active_list(g, list);
  for (uint32_t i = 0; i < n; i++) {
    if (list[i] == p)
      continue;
    kith_pack pk;
    kith_pack_init(&pk);
    kith_pack_array(&pk, 3);
    kith_pack_uint(&pk, KITH_GF_FORWARD_JOIN);
    kith_pack_bin(&pk, p->id, 32);
    kith_pack_uint(&pk, g->cfg.arwl);
    gs_send(g, list[i]->id, &pk, out);
  }
}

static void on_neighbor_reply(kith_gossip *g, gpeer *p, int accept,
                              uint64_t now, kith_out *out) {
  if (!p->awaiting)
    return;
  p->awaiting = 0;
  if (now + g->cfg.connect_timeout_ms >= p->deadline)
    gs_rtt_sample(g, now + g->cfg.connect_timeout_ms - p->deadline);
  if (accept) {
    add_active(g, p, out);
    return;
  }
  g->repair_tries++;
  drop_link(g, p, out); /* it stays in the passive view */
  uint64_t wait = gs_jitter(g, g->cfg.repair_ms);
  if (g->repair_tries >= REPAIR_TRIES)
    wait *= REPAIR_BACKOFF; /* the members we know are full: wait */
  g->repair_at = now + wait;
}

/* A sample of this node's views: self, some active, some passive. */
static uint32_t sample(kith_gossip *g, uint8_t (*ids)[32], uint32_t max,
                       int with_self) {
  uint32_t n = 0;
  gpeer *list[PEERS_MAX];
  uint32_t na = gs_active_list(g, list);
  if (with_self)
    memcpy(ids[n++], g->self, 32);
  for (uint32_t k = 0; k < 3 && na > 0 && n < max; k++)
    memcpy(ids[n++], list[gs_below(g, na)]->id, 32);
  while (g->n_passive > 0 && n < max) /* repeats are harmless */
    memcpy(ids[n++], g->passive[gs_below(g, g->n_passive)], 32);
  return n;
}

static kith_err on_shuffle(kith_gossip *g, gpeer *p, int type,
                           const msgpack_object *f, uint32_t nf,
                           kith_out *out) {
  uint8_t ids[SHUFFLE_N][32];
  size_t n;
  if (nf != 2 || gs_read_ids(&f[1], SHUFFLE_N, ids, &n) != KITH_OK)
    return KITH_ERR_DECODE;
  if (type == KITH_GF_SHUFFLE) {
    uint8_t mine[SHUFFLE_N][32];
    uint32_t m = sample(g, mine, SHUFFLE_N, 0);
    gs_send_ids(g, p->id, KITH_GF_SHUFFLE_REPLY, mine[0], m, out);
  }
  for (size_t i = 0; i < n; i++)
    ov_passive_add(g, ids[i]);
  return KITH_OK;
}

kith_err ov_recv(kith_gossip *g, gpeer *p, const uint8_t from[32], int type,
                 const msgpack_object *f, uint32_t nf, uint64_t now,
                 kith_out *out) {
  uint64_t v = 0;
  if ((type == KITH_GF_JOIN || type == KITH_GF_DISCONNECT) && nf != 1)
    return KITH_ERR_DECODE;
  if ((type == KITH_GF_NEIGHBOR || type == KITH_GF_NEIGHBOR_REPLY) &&
      (nf != 2 || kith_codec_uint(&f[1], 1, &v) != KITH_OK))
    return KITH_ERR_DECODE;
  if (p == NULL) /* overlay messages need a live link: ignored */
    return KITH_OK;
  switch (type) {
  case KITH_GF_JOIN:
    on_join(g, p, out);
    return KITH_OK;
  case KITH_GF_FORWARD_JOIN:
    return on_forward_join(g, p, f, nf, now, out);
  case KITH_GF_NEIGHBOR: {
    int ok = p->active || v == 1 || n_active(g) < g->cfg.active_max;
    if (ok)
      add_active(g, p, out);
    gs_send_simple(g, p->id, KITH_GF_NEIGHBOR_REPLY, ok, out);
    return KITH_OK;
  }
  case KITH_GF_NEIGHBOR_REPLY:
    on_neighbor_reply(g, p, (int)v, now, out);
    return KITH_OK;
  case KITH_GF_DISCONNECT: {
    int was_active = p->active;
    drop_link(g, p, out);
    if (was_active) {
      ov_passive_add(g, from);
      g->repair_at = now;
    }
    return KITH_OK;
  }
  default:
    return on_shuffle(g, p, type, f, nf, out);
  }
}

static void try_repair(kith_gossip *g, uint64_t now, kith_out *out) {
  uint32_t na = n_active(g);
  g->repair_at = 0;
  if (na >= g->cfg.active_max)
    return;
  for (uint32_t i = 0; i < PEERS_MAX; i++)
    if (g->peers[i].used && (g->peers[i].intent || g->peers[i].awaiting)) {
      g->repair_at = now + g->cfg.repair_ms; /* one attempt at a time */
      return;
    }
  uint8_t cand[KITH_GOSSIP_PASSIVE_CAP][32];
  uint32_t nc = 0;
  for (uint32_t i = 0; i < g->n_passive; i++)
    if (gs_peer(g, g->passive[i]) == NULL)
      memcpy(cand[nc++], g->passive[i], 32);
  if (nc > 0)
    connect_to(g, cand[gs_below(g, nc)],
               na == 0 ? INTENT_NEIGHBOR_HI : INTENT_NEIGHBOR_LO, now, out);
  uint64_t wait = gs_jitter(g, g->cfg.repair_ms);
  if (g->repair_tries >= REPAIR_TRIES)
    wait *= REPAIR_BACKOFF;
  g->repair_at = now + wait;
}

static void expire_peers(kith_gossip *g, uint64_t now, kith_out *out) {
  for (uint32_t i = 0; i < PEERS_MAX; i++) {
    gpeer *p = &g->peers[i];
    if (!p->used || p->active)
      continue;
    if ((p->intent || p->awaiting) && now >= p->deadline) {
      ov_passive_del(g, p->id); /* unreachable or silent */
      drop_link(g, p, out);
      if (g->repair_at == 0 || g->repair_at > now)
        g->repair_at = now;
    } else if (!p->intent && !p->awaiting && p->linked &&
               now >= p->since + g->cfg.idle_ms) {
      drop_link(g, p, out); /* a link nobody in this group uses */
    }
  }
}

static void do_shuffle(kith_gossip *g, uint64_t now, kith_out *out) {
  gpeer *p = gs_random_active(g);
  g->shuffle_at = now + gs_jitter(g, g->cfg.shuffle_ms);
  if (p == NULL)
    return;
  uint8_t ids[SHUFFLE_N][32];
  uint32_t m = sample(g, ids, SHUFFLE_N, 1);
  gs_send_ids(g, p->id, KITH_GF_SHUFFLE, ids[0], m, out);
}

void ov_tick(kith_gossip *g, uint64_t now, kith_out *out) {
  expire_peers(g, now, out);
  /* A view with room and known members to fill it is repaired, not only
   * after a failure: a small group ends up fully linked (up to the bound)
   * even when every join went through one member. */
  if (g->repair_at == 0 && g->n_passive > 0 && n_active(g) < g->cfg.active_max)
    g->repair_at = now + gs_jitter(g, g->cfg.repair_ms);
  if (g->repair_at != 0 && now >= g->repair_at)
    try_repair(g, now, out);
  if (g->shuffle_at != 0 && now >= g->shuffle_at)
    do_shuffle(g, now, out);
}

uint64_t ov_deadline(const kith_gossip *g) {
  uint64_t d = UINT64_MAX;
  if (g->repair_at != 0)
    d = g->repair_at;
  if (g->shuffle_at != 0 && g->shuffle_at < d)
    d = g->shuffle_at;
  for (uint32_t i = 0; i < PEERS_MAX; i++) {
    const gpeer *p = &g->peers[i];
    if (!p->used || p->active)
      continue;
    uint64_t t = (p->intent || p->awaiting) ? p->deadline
                 : p->linked                ? p->since + g->cfg.idle_ms
                                            : UINT64_MAX;
    if (t < d)
      d = t;
  }
  return d;
}
