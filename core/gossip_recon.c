/* kith: gossip anti-entropy: every recon_ms (with jitter) the engine
 * reconciles its set of known event ids with one active neighbour by
 * range-based set reconciliation (core/reconcile.h), then asks for what
 * it lacks (WANT) when that reconciliation ends, all at once; each side
 * pulls, nothing is pushed. */
#include "gossip_int.h"

#include <string.h>

void kith_gossip_set_known(kith_gossip *g, const kith_gossip_known *k) {
  g->ext = *k;
  g->has_ext = 1;
  g->src = k->src;
}

int rc_known_full(const kith_gossip *g) {
  return !g->has_ext && kith_recon_set_size(g->known) >= KNOWN_MAX;
}

void rc_known_add(kith_gossip *g, uint64_t ts, const uint8_t id[32]) {
  if (g->has_ext) {
    g->ext.add(g->ext.ctx, ts, id);
    return;
  }
  if (rc_known_full(g) || kith_recon_set_add(g->known, ts, id) != KITH_OK)
    g->st.overflows++;
}

/* Reconciliation waits until the caller's set is built. */
static int known_ready(const kith_gossip *g) {
  return !g->has_ext || g->ext.ready(g->ext.ctx);
}

/* A reconciliation endpoint: it reads the known set, copies nothing. */
static kith_recon *session_new(kith_gossip *g) {
  return kith_recon_new_on(&g->src);
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

/* An id asked for at the end of a reconciliation: of which peer (its
 * slot in g->peers), and when (0: it came and was forgotten since). */
typedef struct asked_ent {
  uint8_t id[32];
  uint32_t slot;
  uint64_t at;
} asked_ent;

static void asked_pop(kith_gossip *g) {
  asked_ent *a = g_queue_pop_head(&g->asked_fifo);
  if (g_hash_table_lookup(g->asked, a->id) == a)
    g_hash_table_remove(g->asked, a->id);
  g_free(a);
}

/* Is the entry still "asked lately": asked less than
 * KITH_GOSSIP_NEED_WAIT_MS ago, or of a peer whose stream of asked ids
 * has delivered one within that time? Such a stream still carries the
 * rest (in depth order, behind a slow link for longer than the wait):
 * asking again would only send copies of what is on its way. */
static int asked_fresh(const kith_gossip *g, const asked_ent *a, uint64_t now) {
  const gpeer *p = &g->peers[a->slot];
  return a->at + KITH_GOSSIP_NEED_WAIT_MS > now ||
         (p->used && p->stream_at + KITH_GOSSIP_NEED_WAIT_MS > now);
}

/* Was id asked of p at the end of a reconciliation lately (asked_fresh,
 * and not forgotten since)? If not, it is noted as asked of p now. */
static int asked_lately(kith_gossip *g, const gpeer *p, const uint8_t id[32],
                        uint64_t now) {
  asked_ent *a;
  uint32_t slot = (uint32_t)(p - g->peers);
  while ((a = g_queue_peek_head(&g->asked_fifo)) != NULL &&
         !asked_fresh(g, a, now))
    asked_pop(g);
  a = g_hash_table_lookup(g->asked, id);
  if (a != NULL && a->at != 0 && a->slot == slot && asked_fresh(g, a, now))
    return 1;
  if (g_queue_get_length(&g->asked_fifo) >= KITH_GOSSIP_NEED_MAX)
    asked_pop(g);
  a = g_new(asked_ent, 1);
  memcpy(a->id, id, 32);
  a->slot = slot;
  a->at = now;
  g_hash_table_replace(g->asked, a->id, a);
  g_queue_push_tail(&g->asked_fifo, a);
  return 0;
}

int rc_was_asked(kith_gossip *g, gpeer *p, const uint8_t id[32], uint64_t now) {
  asked_ent *a = g_hash_table_lookup(g->asked, id);
  if (a != NULL && p != NULL && a->slot == (uint32_t)(p - g->peers))
    p->stream_at = now;
  return a != NULL;
}

void rc_forget_asked(kith_gossip *g, const uint8_t id[32]) {
  asked_ent *a = g_hash_table_lookup(g->asked, id);
  if (a != NULL)
    a->at = 0;
}

/* Has id had its verdict here (valid or invalid)? A payload awaiting one
 * (the caller holds it for its parents) is asked for again all the same:
 * the caller may forget it before its parents come, and a stream without
 * it would hold everything after it. */
static int judged(kith_gossip *g, const uint8_t id[32]) {
  int s = gs_seen(g, id);
  return s == SEEN_VALID || s == SEEN_INVALID;
}

/* Asks p (WANT) for the ids reconciliations with it found missing here,
 * all at once, in frames of KITH_GOSSIP_IDS_MAX: the peer then has the
 * whole difference to send in the events' order (parents first), not in
 * the order the rounds happened to find it. Every id not judged is asked,
 * even if another peer was asked for it lately: each peer's stream is then
 * the whole difference from its shallowest event on, never the part
 * another stream lacks (whose events would all come before their
 * parents); a second stream costs duplicates only. Ids asked of p itself
 * within KITH_GOSSIP_NEED_WAIT_MS (still in its stream) are left out,
 * unless they came and were forgotten meanwhile. The ids are not noted
 * as missing (no other announcer to try: anti-entropy asks again). */
static void need_flush(kith_gossip *g, gpeer *p, uint64_t now, kith_out *out) {
  GByteArray *w = p->need;
  size_t k = 0;
  if (w == NULL)
    return;
  p->need = NULL;
  g->need_n -= w->len / 32;
  for (size_t i = 0; i < w->len / 32; i++)
    if (!judged(g, w->data + 32 * i) &&
        !asked_lately(g, p, w->data + 32 * i, now))
      memmove(w->data + 32 * k++, w->data + 32 * i, 32);
  for (size_t i = 0; i < k; i += KITH_GOSSIP_IDS_MAX)
    gs_send_ids(g, p->id, KITH_GF_WANT, w->data + 32 * i,
                MIN(k - i, KITH_GOSSIP_IDS_MAX), out);
  g->st.wants_sent += k;
  g_byte_array_free(w, TRUE);
}

/* Notes ids a step found missing here; beyond KITH_GOSSIP_NEED_MAX
 * waiting in all, p's list is asked for at once. A side whose last
 * message gets no answer (the peer had nothing more to say) never ends:
 * its list is asked for once the reconciliations with p have been quiet
 * for KITH_GOSSIP_NEED_QUIET_MS and two round trips (rc_tick). */
static void need_note(kith_gossip *g, gpeer *p, const GByteArray *need,
                      uint64_t now, kith_out *out) {
  if (need->len > 0) {
    if (p->need == NULL)
      p->need = g_byte_array_new();
    g_byte_array_append(p->need, need->data, need->len);
    g->need_n += need->len / 32;
  }
  if (p->need == NULL)
    return;
  p->need_quiet = now + MAX(KITH_GOSSIP_NEED_QUIET_MS, 2 * (g->rtt8 / 8));
  if (g->need_at == 0 || p->need_quiet < g->need_at)
    g->need_at = p->need_quiet;
  if (g->need_n > KITH_GOSSIP_NEED_MAX)
    need_flush(g, p, now, out);
}

/* Asks for the lists of peers whose reconciliations have gone quiet. */
static void need_flush_quiet(kith_gossip *g, uint64_t now, kith_out *out) {
  uint64_t next = 0;
  for (uint32_t i = 0; i < PEERS_MAX; i++) {
    gpeer *p = &g->peers[i];
    if (!p->used || p->need == NULL)
      continue;
    if (now >= p->need_quiet)
      need_flush(g, p, now, out);
    else if (next == 0 || p->need_quiet < next)
      next = p->need_quiet;
  }
  g->need_at = next;
}

/* One reconciliation step: reply, and note what this side lacks, to ask
 * for when this side is done. Both sides learn both directions of the
 * difference (reconcile.h), so each pulls what it needs and nothing is
 * pushed twice; pulling also skips events that arrived by gossip since
 * the reconciliation began. */
kith_err rc_recv(kith_gossip *g, gpeer *p, const msgpack_object *f, uint32_t nf,
                 uint64_t now, kith_out *out) {
  const uint8_t *msg;
  size_t len;
  uint64_t role;
  if (nf != 3 || kith_codec_uint(&f[1], RECON_START, &role) != KITH_OK ||
      kith_codec_bin(&f[2], KITH_RECON_MAX_MSG, &msg, &len) != KITH_OK)
    return KITH_ERR_DECODE;
  if (p == NULL)
    return KITH_OK;
  int slot = role == RECON_RESPONDER ? 0 : 1;
  if (!known_ready(g))
    return KITH_OK; /* the peer's reconciliation is abandoned, retried */
  if (role == RECON_START) {
    need_flush(g, p, now, out); /* what an abandoned one found */
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
    need_note(g, p, need, now, out);
  }
  if (err != KITH_OK || reply == NULL) { /* this side is done */
    kith_recon_free(p->rs[slot]);
    p->rs[slot] = NULL;
    need_flush(g, p, now, out);
  }
  g_free(reply);
  g_byte_array_free(have, TRUE);
  g_byte_array_free(need, TRUE);
  return err == KITH_ERR_DECODE ? KITH_ERR_DECODE : KITH_OK;
}

static void recon_with(kith_gossip *g, gpeer *p, uint64_t now, kith_out *out) {
  uint8_t *msg = NULL;
  size_t len = 0;
  if (!known_ready(g))
    return;
  need_flush(g, p, now, out);
  kith_recon_free(p->rs[0]); /* an unfinished one is abandoned */
  p->rs[0] = session_new(g);
  if (kith_recon_initiate(p->rs[0], &msg, &len) == KITH_OK)
    recon_send(g, p, RECON_START, msg, len, out);
  g_free(msg);
}

static void start_recon(kith_gossip *g, uint64_t now, kith_out *out) {
  gpeer *p = gs_random_active(g);
  g->recon_at = now + gs_jitter(g, g->cfg.recon_ms);
  if (p != NULL)
    recon_with(g, p, now, out);
}

kith_err kith_gossip_reconcile(kith_gossip *g, const uint8_t peer[32],
                               uint64_t now_ms, kith_out *out) {
  gpeer *p = gs_peer(g, peer);
  if (p == NULL || !p->linked)
    return KITH_ERR_STATE;
  gs_arm(g, now_ms);
  recon_with(g, p, now_ms, out);
  return KITH_OK;
}

uint64_t rc_deadline(const kith_gossip *g) {
  return g->need_at;
}

void rc_tick(kith_gossip *g, uint64_t now, kith_out *out) {
  if (g->need_at != 0 && now >= g->need_at)
    need_flush_quiet(g, now, out);
  if (g->recon_at != 0 && now >= g->recon_at)
    start_recon(g, now, out);
}

void rc_peer_gone(kith_gossip *g, gpeer *p) {
  for (int k = 0; k < 2; k++) {
    kith_recon_free(p->rs[k]);
    p->rs[k] = NULL;
  }
  if (p->need != NULL) { /* a later reconciliation finds them again */
    g->need_n -= p->need->len / 32;
    g_byte_array_free(p->need, TRUE);
    p->need = NULL;
  }
}
