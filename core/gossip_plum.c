/* kith: gossip dissemination, modelled on Plumtree (Leitao, Pereira,
 * Rodrigues, "Epidemic Broadcast Trees", SRDS 2007), and anti-entropy by
 * range-based set reconciliation (core/reconcile.h).
 *
 * PAYLOAD frames carry a flag: push (part of a broadcast: forwarded along
 * the tree, and a duplicate prunes the edge) or reply (an answer to WANT or
 * to reconciliation: delivered and announced lazily, never pruning). A
 * payload answering one of our GRAFTs counts as push, since the subtree
 * behind us probably lacks it too. */
#include "gossip_int.h"

#include <sodium.h>
#include <string.h>

#define TS_MAX (UINT64_C(1) << 62)

void pt_free_cached(gpointer v) {
  cached *c = v;
  g_free(c->data);
  g_free(c);
}

void pt_free_pending(gpointer v) {
  pending *p = v;
  if (p == NULL)
    return;
  g_free(p->data);
  g_free(p);
}

static int seen_state(kith_gossip *g, const uint8_t id[32]) {
  return GPOINTER_TO_INT(g_hash_table_lookup(g->seen, id));
}

/* Remembers id (FIFO-bounded): receiving an event twice changes nothing. */
static void seen_set(kith_gossip *g, const uint8_t id[32], int state) {
  gpointer key;
  if (g_hash_table_lookup_extended(g->seen, id, &key, NULL)) {
    g_hash_table_insert(g->seen, g_memdup2(id, 32), GINT_TO_POINTER(state));
    return;
  }
  key = g_memdup2(id, 32);
  g_hash_table_insert(g->seen, key, GINT_TO_POINTER(state));
  g_queue_push_tail(&g->seen_fifo, key);
  if (g_queue_get_length(&g->seen_fifo) > KITH_GOSSIP_SEEN_MAX)
    g_hash_table_remove(g->seen, g_queue_pop_head(&g->seen_fifo));
}

static void cache_put(kith_gossip *g, const cached *ev) {
  if (g_hash_table_contains(g->cache, ev->id))
    return;
  cached *c = g_memdup2(ev, sizeof *ev);
  c->data = g_memdup2(ev->data, ev->len);
  size_t len = ev->len;
  g_hash_table_insert(g->cache, c->id, c);
  g_queue_push_tail(&g->cache_fifo, c);
  g->cache_bytes += len;
  while (g_queue_get_length(&g->cache_fifo) > KITH_GOSSIP_CACHE_MAX ||
         g->cache_bytes > KITH_GOSSIP_CACHE_BYTES) {
    cached *old = g_queue_pop_head(&g->cache_fifo);
    g->cache_bytes -= old->len;
    g_hash_table_remove(g->cache, old->id);
  }
}

static void send_payload(kith_gossip *g, const uint8_t peer[32], uint32_t hops,
                         int push, const uint8_t *data, size_t len,
                         kith_out *out) {
  kith_pack pk;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 4);
  kith_pack_uint(&pk, KITH_GF_PAYLOAD);
  kith_pack_uint(&pk, hops > HOPS_MAX ? HOPS_MAX : hops);
  kith_pack_uint(&pk, push ? 1 : 0);
  kith_pack_bin(&pk, data, len);
  gs_send(g, peer, &pk, out);
}

void kith_gossip_payload_id(const uint8_t *payload, size_t len,
                            uint8_t id[32]) {
  crypto_generichash(id, 32, payload, len, NULL, 0);
}

/* ---- payloads awaiting a verdict, bounded in all and per sender ---- */

static int pend_room(kith_gossip *g, const uint8_t from[32], size_t len) {
  const pend_count *c = g_hash_table_lookup(g->pend_by, from);
  if (g_hash_table_size(g->pend) >= KITH_GOSSIP_PENDING_MAX ||
      g->pend_bytes + len > KITH_GOSSIP_PENDING_BYTES)
    return 0;
  return c == NULL || (c->n < KITH_GOSSIP_PENDING_PEER_MAX &&
                       c->bytes + len <= KITH_GOSSIP_PENDING_PEER_BYTES);
}

static void pend_add(kith_gossip *g, pending *pe) {
  pend_count *c = g_hash_table_lookup(g->pend_by, pe->from);
  if (c == NULL) {
    c = g_new0(pend_count, 1);
    memcpy(c->peer, pe->from, 32);
    g_hash_table_insert(g->pend_by, c->peer, c);
  }
  c->n++;
  c->bytes += pe->len;
  g->pend_bytes += pe->len;
  g_hash_table_insert(g->pend, pe->id, pe);
}

/* Removes id's pending entry and returns it (the caller frees it). */
static pending *pend_take(kith_gossip *g, const uint8_t id[32]) {
  pending *pe = g_hash_table_lookup(g->pend, id);
  if (pe == NULL)
    return NULL;
  g_hash_table_steal(g->pend, id);
  pend_count *c = g_hash_table_lookup(g->pend_by, pe->from);
  g->pend_bytes -= pe->len;
  if (c != NULL && --c->n == 0)
    g_hash_table_remove(g->pend_by, pe->from);
  else if (c != NULL)
    c->bytes -= pe->len;
  return pe;
}

static void flush_ihave(kith_gossip *g, gpeer *p, kith_out *out) {
  if (p->n_lazy == 0)
    return;
  if (p->active) {
    kith_pack pk;
    uint8_t hops[KITH_GOSSIP_IDS_MAX];
    kith_pack_init(&pk);
    kith_pack_array(&pk, 3);
    kith_pack_uint(&pk, KITH_GF_IHAVE);
    kith_pack_array(&pk, p->n_lazy);
    for (uint32_t i = 0; i < p->n_lazy; i++) {
      kith_pack_bin(&pk, p->lazy[i].id, 32);
      hops[i] = p->lazy[i].hops;
    }
    kith_pack_bin(&pk, hops, p->n_lazy);
    gs_send(g, p->id, &pk, out);
    g->st.ihave_sent++;
  }
  p->n_lazy = 0;
}

/* Announcements are batched (ihave_batch_ms) into one IHAVE per peer. */
static void lazy_push(kith_gossip *g, gpeer *p, const uint8_t id[32],
                      uint32_t hops, uint64_t now, kith_out *out) {
  if (p->n_lazy == p->cap_lazy) {
    uint32_t cap = p->cap_lazy ? p->cap_lazy * 2 : 8;
    if (cap > KITH_GOSSIP_IDS_MAX)
      cap = KITH_GOSSIP_IDS_MAX;
    if (cap > p->cap_lazy) {
      p->lazy = g_renew(lazy_ent, p->lazy, cap);
      p->cap_lazy = cap;
    }
  }
  if (p->n_lazy == p->cap_lazy)
    flush_ihave(g, p, out);
  memcpy(p->lazy[p->n_lazy].id, id, 32);
  p->lazy[p->n_lazy++].hops = (uint8_t)(hops > HOPS_MAX ? HOPS_MAX : hops);
  if (g->ihave_at == 0)
    g->ihave_at = now + g->cfg.ihave_batch_ms;
}

/* Eager push to eager neighbours, announcement to the others. */
static void forward(kith_gossip *g, const cached *ev, const uint8_t *except,
                    int push, uint64_t now, kith_out *out) {
  gpeer *list[PEERS_MAX];
  uint32_t n = gs_active_list(g, list);
  for (uint32_t i = 0; i < n; i++) {
    gpeer *q = list[i];
    if (except != NULL && memcmp(q->id, except, 32) == 0)
      continue;
    if (push && q->eager)
      send_payload(g, q->id, ev->hops + 1, 1, ev->data, ev->len, out);
    else
      lazy_push(g, q, ev->id, ev->hops, now, out);
  }
}

static void known_add(kith_gossip *g, uint64_t ts, const uint8_t id[32]) {
  if (g->known->len >= KNOWN_MAX) {
    g->st.overflows++;
    return;
  }
  known_item it = {.ts = ts};
  memcpy(it.id, id, 32);
  g_array_append_val(g->known, it);
}

/* A fresh replica of the known set for one reconciliation. */
static kith_recon *session_new(kith_gossip *g) {
  kith_recon *r = kith_recon_new();
  for (guint i = 0; i < g->known->len; i++) {
    known_item *it = &g_array_index(g->known, known_item, i);
    if (kith_recon_add(r, it->ts, it->id) != KITH_OK)
      g->st.overflows++;
  }
  return r;
}

static void accept_event(kith_gossip *g, const cached *ev, uint64_t ts,
                         const uint8_t *from, int push, uint64_t now,
                         kith_out *out) {
  seen_set(g, ev->id, SEEN_VALID);
  known_add(g, ts, ev->id);
  cache_put(g, ev);
  forward(g, ev, from, push, now, out);
}

kith_err kith_gossip_publish(kith_gossip *g, uint64_t ts_ms,
                             const uint8_t *payload, size_t len,
                             uint64_t now_ms, kith_out *out) {
  if (len > KITH_GOSSIP_MAX_PAYLOAD || ts_ms > TS_MAX ||
      (payload == NULL && len > 0))
    return KITH_ERR_ARG;
  cached ev = {.hops = 0, .data = (uint8_t *)payload, .len = len};
  kith_gossip_payload_id(payload, len, ev.id);
  if (seen_state(g, ev.id) == SEEN_VALID)
    return KITH_ERR_DUPLICATE;
  gs_arm(g, now_ms);
  pt_free_pending(pend_take(g, ev.id));
  g_hash_table_remove(g->missing, ev.id);
  accept_event(g, &ev, ts_ms, NULL, 1, now_ms, out);
  return KITH_OK;
}

void kith_gossip_verdict(kith_gossip *g, const uint8_t id[32],
                         kith_gossip_verdict_kind v, uint64_t ts_ms,
                         uint64_t now_ms, kith_out *out) {
  pending *pe = pend_take(g, id);
  if (pe == NULL) {
    /* accepted from elsewhere (e.g. released by a parent that came by
     * another path): known from now on */
    if (v == KITH_GOSSIP_VALID &&
        kith_gossip_add_known(g, ts_ms > TS_MAX ? TS_MAX : ts_ms, id) ==
            KITH_ERR_LIMIT)
      g->st.overflows++;
    return;
  }
  if (v == KITH_GOSSIP_VALID) {
    cached ev = {.hops = pe->hops, .data = pe->data, .len = pe->len};
    memcpy(ev.id, pe->id, 32);
    memcpy(ev.from, pe->from, 32);
    accept_event(g, &ev, ts_ms > TS_MAX ? TS_MAX : ts_ms, pe->from, pe->push,
                 now_ms, out);
  } else if (v == KITH_GOSSIP_INVALID) {
    /* The id names these bytes: no other payload can be marked by it. */
    seen_set(g, id, SEEN_INVALID);
    g->st.invalid++;
    (void)kith_out_push(out, KITH_OUT_PENALIZE, pe->from, NULL, 0);
  } else {
    seen_set(g, id, 0); /* not now: the next copy is delivered again */
    g->st.later++;
  }
  pt_free_pending(pe);
}

static void deliver(kith_gossip *g, const uint8_t from[32],
                    const uint8_t id[32], uint32_t hops, int push,
                    const uint8_t *data, size_t len, uint64_t now,
                    kith_out *out) {
  pending *pe = g_new0(pending, 1);
  memcpy(pe->id, id, 32);
  memcpy(pe->from, from, 32);
  pe->hops = hops;
  pe->push = push;
  pe->data = g_memdup2(data, len);
  pe->len = len;
  pe->since = now;
  pend_add(g, pe);
  if (g->pend_at == 0)
    g->pend_at = now + KITH_GOSSIP_PENDING_MS;
  seen_set(g, id, SEEN_PENDING);
  kith_out_item *it =
      kith_out_push(out, KITH_OUT_DELIVER, from, g_memdup2(data, len), len);
  if (it != NULL) {
    memcpy(it->id, id, 32);
    it->hops = hops;
  }
}

static kith_err on_payload(kith_gossip *g, gpeer *p, const uint8_t from[32],
                           const msgpack_object *f, uint32_t nf, uint64_t now,
                           kith_out *out) {
  uint8_t id[32];
  uint64_t hops, push;
  const uint8_t *data;
  size_t len;
  if (nf != 4 || kith_codec_uint(&f[1], HOPS_MAX, &hops) != KITH_OK ||
      kith_codec_uint(&f[2], 1, &push) != KITH_OK ||
      kith_codec_bin(&f[3], KITH_GOSSIP_MAX_PAYLOAD, &data, &len) != KITH_OK)
    return KITH_ERR_DECODE;
  g->st.payloads++;
  kith_gossip_payload_id(data, len, id);
  if (seen_state(g, id) != 0) {
    g->st.duplicates++;
    if (push && p != NULL && p->active && p->eager) {
      p->eager = 0; /* a second path: keep the first, prune this one */
      gs_send_simple(g, p->id, KITH_GF_PRUNE, -1, out);
      g->st.prunes_sent++;
    }
    return KITH_OK;
  }
  if (!pend_room(g, from, len)) {
    g->st.overflows++; /* not marked seen: it can come again */
    return KITH_OK;
  }
  if (g_hash_table_remove(g->missing, id))
    push = 1; /* answers our GRAFT or WANT */
  if (push && p != NULL && p->active)
    p->eager = 1; /* the edge that delivered first joins the tree */
  deliver(g, from, id, (uint32_t)hops, (int)push, data, len, now, out);
  return KITH_OK;
}

/* Plumtree's optimization: an announcer that had the event much sooner
 * (in hops) than the neighbour that pushed it to us becomes our parent:
 * GRAFT it (without asking for anything) and PRUNE the old parent. */
static void maybe_rewire(kith_gossip *g, gpeer *a, cached *c, uint32_t hops,
                         kith_out *out) {
  static const uint8_t zero[32];
  if (a == NULL || !a->active || a->eager || memcmp(c->from, zero, 32) == 0 ||
      hops + 1 + OPT_THRESHOLD > c->hops)
    return;
  gpeer *parent = gs_peer(g, c->from);
  c->hops = hops + 1; /* rewire once per event */
  if (parent == NULL || !parent->active || !parent->eager)
    return;
  a->eager = 1;
  kith_pack pk;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 2);
  kith_pack_uint(&pk, KITH_GF_GRAFT);
  kith_pack_array(&pk, 0);
  gs_send(g, a->id, &pk, out);
  parent->eager = 0;
  gs_send_simple(g, parent->id, KITH_GF_PRUNE, -1, out);
  g->st.prunes_sent++;
}

/* The entry of an id not received yet (created; NULL at the bound). */
static missing *missing_get(kith_gossip *g, const uint8_t id[32],
                            uint64_t now) {
  missing *m = g_hash_table_lookup(g->missing, id);
  if (m != NULL)
    return m;
  if (g_hash_table_size(g->missing) >= KITH_GOSSIP_MISSING_MAX) {
    g->st.overflows++;
    return NULL;
  }
  m = g_new0(missing, 1);
  memcpy(m->id, id, 32);
  m->deadline = now + g->cfg.lazy_timeout_ms;
  g_hash_table_insert(g->missing, m->id, m);
  return m;
}

/* hops UINT8_MAX: already asked. */
static void missing_add_who(missing *m, const uint8_t from[32], uint8_t hops) {
  for (uint32_t k = 0; k < m->n; k++)
    if (memcmp(m->who[k], from, 32) == 0)
      return;
  if (m->n < KITH_GOSSIP_ANNOUNCERS) {
    m->hops[m->n] = hops;
    memcpy(m->who[m->n++], from, 32);
  }
}

static void note_missing(kith_gossip *g, const uint8_t from[32],
                         const uint8_t id[32], uint8_t hops, uint64_t now) {
  missing *m = missing_get(g, id, now);
  if (m != NULL)
    missing_add_who(m, from, hops < UINT8_MAX ? hops : UINT8_MAX - 1);
}

static kith_err on_ihave(kith_gossip *g, gpeer *p, const uint8_t from[32],
                         const msgpack_object *f, uint32_t nf,
                         uint8_t (*ids)[32], uint64_t now, kith_out *out) {
  size_t n, nh;
  const uint8_t *hops;
  if (nf != 3 || gs_read_ids(&f[1], KITH_GOSSIP_IDS_MAX, ids, &n) != KITH_OK ||
      kith_codec_bin(&f[2], KITH_GOSSIP_IDS_MAX, &hops, &nh) != KITH_OK ||
      nh != n)
    return KITH_ERR_DECODE;
  for (size_t i = 0; i < n; i++) {
    int st = seen_state(g, ids[i]);
    cached *c = st == SEEN_VALID ? g_hash_table_lookup(g->cache, ids[i]) : NULL;
    if (c != NULL)
      maybe_rewire(g, p, c, hops[i], out);
    else if (st == 0)
      note_missing(g, from, ids[i], hops[i], now);
  }
  return KITH_OK;
}

/* GRAFT and WANT: send what is cached, ask the caller for the rest. */
static void answer(kith_gossip *g, gpeer *p, uint8_t (*ids)[32], size_t n,
                   int push, kith_out *out) {
  uint8_t *fetch = NULL;
  size_t nf = 0;
  for (size_t i = 0; i < n; i++) {
    cached *c = g_hash_table_lookup(g->cache, ids[i]);
    if (c != NULL) {
      send_payload(g, p->id, c->hops + 1, push, c->data, c->len, out);
    } else if (seen_state(g, ids[i]) == SEEN_VALID) {
      if (fetch == NULL)
        fetch = g_malloc(32 * n);
      memcpy(fetch + 32 * nf++, ids[i], 32);
    }
  }
  if (fetch != NULL)
    (void)kith_out_push(out, KITH_OUT_FETCH, p->id, fetch, 32 * nf);
}

/* WANT from p the ids (32 bytes each) not seen and not asked for within
 * graft_retry_ms; each is tracked as missing, so that if p does not
 * answer, other announcers are grafted. Returns how many were asked. */
static size_t want_ids(kith_gossip *g, gpeer *p, const uint8_t *ids, size_t n,
                       uint64_t now, kith_out *out) {
  uint8_t *ask = g_malloc(32 * (n + 1));
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const uint8_t *id = ids + 32 * i;
    if (seen_state(g, id) != 0)
      continue;
    missing *m = missing_get(g, id, now);
    if (m != NULL) {
      if (m->asked_at != 0 && now < m->asked_at + g->cfg.graft_retry_ms)
        continue;
      missing_add_who(m, p->id, UINT8_MAX);
      m->asked_at = now;
      m->deadline = now + g->cfg.graft_retry_ms;
    }
    memcpy(ask + 32 * k++, id, 32);
  }
  gs_send_ids(g, p->id, KITH_GF_WANT, ask, k, out);
  g->st.wants_sent += k;
  g_free(ask);
  return k;
}

static void recon_send(kith_gossip *g, gpeer *p, int role, uint8_t *msg,
                       size_t len, kith_out *out) {
  kith_pack pk;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 3);
  kith_pack_uint(&pk, KITH_GF_RECON);
  kith_pack_uint(&pk, (uint64_t)role);
  kith_pack_bin(&pk, msg, len);
  gs_send(g, p->id, &pk, out);
}

/* One reconciliation step: reply, and ask for what this side lacks. Both
 * sides learn both directions of the difference (reconcile.h), so each
 * pulls what it needs and nothing is pushed twice; pulling also skips
 * events that arrived by gossip since the reconciliation began. */
static kith_err on_recon(kith_gossip *g, gpeer *p, const msgpack_object *f,
                         uint32_t nf, uint64_t now, kith_out *out) {
  const uint8_t *msg;
  size_t len;
  uint64_t role;
  if (nf != 3 || kith_codec_uint(&f[1], RECON_START, &role) != KITH_OK ||
      kith_codec_bin(&f[2], KITH_RECON_MAX_MSG, &msg, &len) != KITH_OK)
    return KITH_ERR_DECODE;
  if (p == NULL)
    return KITH_OK;
  int slot = role == RECON_RESPONDER ? 0 : 1;
  if (role == RECON_START) {
    kith_recon_free(p->rs[1]);
    p->rs[1] = session_new(g);
  }
  if (p->rs[slot] == NULL)
    return KITH_OK; /* over already, or never started */
  uint8_t *reply = NULL;
  size_t rlen = 0;
  GByteArray *have = g_byte_array_new(), *need = g_byte_array_new();
  kith_err err =
      kith_recon_step(p->rs[slot], msg, len, &reply, &rlen, have, need);
  if (err == KITH_OK) {
    g->st.recon_rounds++;
    if (reply != NULL)
      recon_send(g, p, slot == 0 ? RECON_INITIATOR : RECON_RESPONDER, reply,
                 rlen, out);
    /* ask only for what is not already on its way */
    (void)want_ids(g, p, need->data, need->len / 32, now, out);
  }
  if (err != KITH_OK || reply == NULL) { /* this side is done */
    kith_recon_free(p->rs[slot]);
    p->rs[slot] = NULL;
  }
  g_free(reply);
  g_byte_array_free(have, TRUE);
  g_byte_array_free(need, TRUE);
  return err == KITH_ERR_DECODE ? KITH_ERR_DECODE : KITH_OK;
}

kith_err pt_recv(kith_gossip *g, gpeer *p, const uint8_t from[32], int type,
                 const msgpack_object *f, uint32_t nf, uint64_t now,
                 kith_out *out) {
  if (type == KITH_GF_PAYLOAD)
    return on_payload(g, p, from, f, nf, now, out);
  if (type == KITH_GF_RECON)
    return on_recon(g, p, f, nf, now, out);
  if (type == KITH_GF_PRUNE) {
    if (nf != 1)
      return KITH_ERR_DECODE;
    if (p != NULL)
      p->eager = 0;
    return KITH_OK;
  }
  uint8_t(*ids)[32] = g_malloc_n(KITH_GOSSIP_IDS_MAX, 32);
  size_t n = 0;
  kith_err err = KITH_ERR_DECODE;
  if (type == KITH_GF_IHAVE) {
    err = on_ihave(g, p, from, f, nf, ids, now, out);
  } else if (nf == 2 &&
             gs_read_ids(&f[1], KITH_GOSSIP_IDS_MAX, ids, &n) == KITH_OK) {
    err = KITH_OK;
    if (p != NULL && type == KITH_GF_GRAFT) {
      if (p->active)
        p->eager = 1;
      answer(g, p, ids, n, 1, out);
    } else if (p != NULL)
      answer(g, p, ids, n, 0, out); /* WANT */
  }
  g_free(ids);
  return err;
}

kith_err kith_gossip_want(kith_gossip *g, const uint8_t peer[32],
                          const uint8_t *ids, size_t n, uint64_t now_ms,
                          size_t *asked, kith_out *out) {
  gpeer *p = gs_peer(g, peer);
  if (asked != NULL)
    *asked = 0;
  if (n > KITH_GOSSIP_IDS_MAX || (ids == NULL && n > 0))
    return KITH_ERR_ARG;
  if (p == NULL || !p->linked)
    return KITH_ERR_STATE;
  size_t k = want_ids(g, p, ids, n, now_ms, out);
  if (asked != NULL)
    *asked = k;
  return KITH_OK;
}

kith_err kith_gossip_send_payload(kith_gossip *g, const uint8_t peer[32],
                                  const uint8_t *payload, size_t len,
                                  kith_out *out) {
  gpeer *p = gs_peer(g, peer);
  if (len > KITH_GOSSIP_MAX_PAYLOAD || (payload == NULL && len > 0))
    return KITH_ERR_ARG;
  if (p == NULL || !p->linked)
    return KITH_ERR_STATE;
  send_payload(g, peer, 1, 0, payload, len, out);
  return KITH_OK;
}

kith_err kith_gossip_add_known(kith_gossip *g, uint64_t ts_ms,
                               const uint8_t id[32]) {
  if (ts_ms > TS_MAX)
    return KITH_ERR_ARG;
  if (seen_state(g, id) == SEEN_VALID)
    return KITH_ERR_DUPLICATE;
  pt_free_pending(pend_take(g, id)); /* it came by another path */
  seen_set(g, id, SEEN_VALID);
  g_hash_table_remove(g->missing, id);
  if (g->known->len >= KNOWN_MAX)
    return KITH_ERR_LIMIT;
  known_add(g, ts_ms, id);
  return KITH_OK;
}

/* The untried announcer closest to the source keeps grafted paths short. */
static gpeer *next_announcer(kith_gossip *g, missing *m) {
  for (;;) {
    uint32_t best = m->n;
    for (uint32_t k = 0; k < m->n; k++)
      if (m->hops[k] != UINT8_MAX &&
          (best == m->n || m->hops[k] < m->hops[best]))
        best = k;
    if (best == m->n)
      return NULL;
    m->hops[best] = UINT8_MAX;
    gpeer *p = gs_peer(g, m->who[best]);
    if (p != NULL && p->linked)
      return p;
  }
}

/* Announced ids that did not arrive in time: GRAFT from the next
 * announcer still linked; after the last one, anti-entropy takes over. */
static void expire_missing(kith_gossip *g, uint64_t now, kith_out *out) {
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, g->missing);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    missing *m = v;
    if (m->deadline > now)
      continue;
    gpeer *p = next_announcer(g, m);
    if (p == NULL) {
      g_hash_table_iter_remove(&it);
      continue;
    }
    if (p->active)
      p->eager = 1;
    gs_send_ids(g, p->id, KITH_GF_GRAFT, m->id, 1, out);
    g->st.grafts_sent++;
    m->asked_at = now;
    m->deadline = now + g->cfg.graft_retry_ms;
  }
}

static void start_recon(kith_gossip *g, uint64_t now, kith_out *out) {
  gpeer *list[PEERS_MAX];
  uint32_t n = gs_active_list(g, list);
  g->recon_at = now + gs_jitter(g, g->cfg.recon_ms);
  if (n == 0)
    return;
  uint8_t *msg = NULL;
  size_t len = 0;
  gpeer *p = list[gs_below(g, n)];
  kith_recon_free(p->rs[0]); /* an unfinished one is abandoned */
  p->rs[0] = session_new(g);
  if (kith_recon_initiate(p->rs[0], &msg, &len) == KITH_OK)
    recon_send(g, p, RECON_START, msg, len, out);
  g_free(msg);
}

/* A payload the application never judged (e.g. an event whose parents
 * never came) is forgotten after KITH_GOSSIP_PENDING_MS, without blame, so
 * that such payloads cannot fill the pending table and stop dissemination;
 * it may be received again later. */
static void expire_pending(kith_gossip *g, uint64_t now) {
  GHashTableIter it;
  gpointer v;
  GPtrArray *old = g_ptr_array_new();
  uint64_t next = UINT64_MAX;

  g_hash_table_iter_init(&it, g->pend);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    pending *pe = v;
    if (now >= pe->since + KITH_GOSSIP_PENDING_MS)
      g_ptr_array_add(old, pe->id);
    else
      next = MIN(next, pe->since + KITH_GOSSIP_PENDING_MS);
  }
  for (guint i = 0; i < old->len; i++) {
    pending *pe = pend_take(g, old->pdata[i]);
    if (seen_state(g, pe->id) == SEEN_PENDING)
      seen_set(g, pe->id, 0);
    g->st.overflows++;
    pt_free_pending(pe);
  }
  g_ptr_array_free(old, TRUE);
  g->pend_at = next == UINT64_MAX ? 0 : next;
}

void pt_tick(kith_gossip *g, uint64_t now, kith_out *out) {
  if (g->pend_at != 0 && now >= g->pend_at)
    expire_pending(g, now);
  if (g->ihave_at != 0 && now >= g->ihave_at) {
    g->ihave_at = 0;
    for (uint32_t i = 0; i < PEERS_MAX; i++)
      if (g->peers[i].used)
        flush_ihave(g, &g->peers[i], out);
  }
  expire_missing(g, now, out);
  if (g->recon_at != 0 && now >= g->recon_at)
    start_recon(g, now, out);
}

uint64_t pt_deadline(const kith_gossip *g) {
  uint64_t d = UINT64_MAX;
  if (g->ihave_at != 0)
    d = g->ihave_at;
  if (g->pend_at != 0 && g->pend_at < d)
    d = g->pend_at;
  if (g->recon_at != 0 && g->recon_at < d)
    d = g->recon_at;
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, g->missing);
  while (g_hash_table_iter_next(&it, NULL, &v))
    if (((missing *)v)->deadline < d)
      d = ((missing *)v)->deadline;
  return d;
}

void pt_peer_gone(kith_gossip *g, gpeer *p) {
  (void)g;
  p->n_lazy = 0; /* announcements lost; anti-entropy covers them */
  for (int k = 0; k < 2; k++) {
    kith_recon_free(p->rs[k]);
    p->rs[k] = NULL;
  }
}
