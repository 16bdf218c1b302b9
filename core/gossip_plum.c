/* kith: gossip dissemination, modelled on Plumtree (Leitao, Pereira,
 * Rodrigues, "Epidemic Broadcast Trees", SRDS 2007), with a tree per
 * source.
 *
 * Payloads are pushed along the eager edges of a tree and announced
 * (IHAVE, batched, short ids) to some of the other neighbours; a duplicate
 * push prunes its edge, an announced id that does not arrive in time is
 * grafted. Plumtree's single tree breaks when several sources send at
 * once: each source's duplicates prune a different edge of a cycle, the
 * tree falls apart, grafts rebuild it, and so on. So every payload names
 * its source (a tag: the first 8 bytes of the publisher's node id), and a
 * source that has sent more than one message gets a tree of its own at
 * each node, started as a copy of the default tree and then pruned,
 * grafted and rewired by that source's messages only. New neighbours
 * start eager in every own tree, as in Plumtree.
 *
 * The default tree carries the first message of every source, which in a
 * large group is almost every message, so it is kept shallow and still:
 * a message published on it enters it at every neighbour of the publisher
 * (as a repair, below); a copy lost on its way is fetched by a GRAFT that
 * changes no edge; its edges change when a neighbour comes (only while
 * the tree is not made yet, or if this node has none) or goes (replaced
 * at once), when a duplicate push shows a cycle, and when two messages in
 * a row had to be grafted; it is never rewired for one source's gain.
 *
 * PAYLOAD frames carry a flag: push (part of a broadcast: forwarded along
 * the tree, and a duplicate prunes the edge), repair (a default-tree
 * payload that came outside the tree: forwarded along it, but it makes no
 * edge and its duplicates prune none) or reply (an answer to WANT or to
 * reconciliation: delivered and announced, never pruning). A payload
 * answering one of our GRAFTs or WANTs is passed on as a push, since the
 * subtree behind us probably lacks it too. */
#include "gossip_int.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define TS_MAX (UINT64_C(1) << 62)
#define TREES_MAX 256 /* sources remembered; the least recently used go */
/* Hops an announcer must save before an own tree is rewired (the default
 * tree serves many sources, whose hop counts are not comparable: it is
 * never rewired so). */
#define OPT_OWN 2
/* The default tree's lazy wait is scaled by 6/5 and divided by this
 * node's eager edges in it (at least 1): a leaf waits longer, as its
 * neighbour will most likely push the event after all; a node with more
 * edges grafts sooner, since more of the tree waits behind it. */
#define LAZY_EDGES_NUM 6
#define LAZY_EDGES_DEN 5
/* PAYLOAD push field: a reply (to WANT, reconciliation, a lookup), a
 * push along the sender's default tree or its tree of the source, or a
 * repair: a payload of the default tree that came outside the tree (its
 * publisher's push to a lazy neighbour, an answer to a GRAFT that asked
 * for no edge) and every push of it by a node whose first copy was one;
 * a repair makes no edge and its duplicates prune none. */
enum { PUSH_REPLY = 0, PUSH_DEFAULT = 1, PUSH_OWN = 2, PUSH_REPAIR = 3 };

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

void kith_gossip_payload_id(const uint8_t *payload, size_t len,
                            uint8_t id[32]) {
  crypto_generichash(id, 32, payload, len, NULL, 0);
}

static uint64_t bit(const kith_gossip *g, const gpeer *p) {
  return UINT64_C(1) << (uint32_t)(p - g->peers);
}

/* The number of eager edges of tree t. */
static uint32_t eager_edges(const tree *t) {
  uint32_t n = 0;
  for (uint64_t e = t->eager; e != 0; e &= e - 1)
    n++;
  return n;
}

/* ---- trees ---- */

/* The tree used for source tag: its own, else the default one. */
static tree *tree_for(kith_gossip *g, uint64_t tag) {
  tree *t = g_hash_table_lookup(g->trees, &tag);
  return t != NULL && t->own ? t : &g->dflt;
}

static void tree_evict(kith_gossip *g) {
  GHashTableIter it;
  gpointer v;
  tree *old = NULL;
  g_hash_table_iter_init(&it, g->trees);
  while (g_hash_table_iter_next(&it, NULL, &v))
    if (old == NULL || ((tree *)v)->used < old->used)
      old = v;
  if (old != NULL)
    g_hash_table_remove(g->trees, &old->tag);
}

/* Source tag's entry (made, at the bound in place of the least recently
 * used one). Tag 0 means "source unknown": it has none. */
static tree *tree_entry(kith_gossip *g, uint64_t tag) {
  tree *t = g_hash_table_lookup(g->trees, &tag);
  if (t != NULL || tag == 0)
    return t;
  if (g_hash_table_size(g->trees) >= TREES_MAX)
    tree_evict(g);
  t = g_new0(tree, 1);
  t->tag = tag;
  g_hash_table_insert(g->trees, &t->tag, t);
  return t;
}

/* Gives source tag a tree of its own, started as a copy of the default
 * tree (whose edges were made for this source's first message), then
 * pruned, grafted and rewired by this source's messages only. */
static tree *tree_own(kith_gossip *g, uint64_t tag) {
  tree *t = tree_entry(g, tag);
  if (t != NULL && !t->own) {
    t->own = 1;
    t->eager = g->dflt.eager;
  }
  return t;
}

/* Does this node know at most flood_first_max members (by default twice
 * the active view)? Then a source's first message flooding its neighbours
 * costs little, and starts the source's own tree at once: sources that
 * start sending at the same time then never share the default tree. */
static int small_group(const kith_gossip *g) {
  uint32_t active = 0;
  for (uint32_t i = 0; i < PEERS_MAX; i++)
    active += g->peers[i].used && g->peers[i].active;
  return active + g->n_passive <= g->cfg.flood_first_max;
}

/* A message of source tag was accepted: counted. The second one gives the
 * source a tree of its own here (the first one already, in a small
 * group). */
static void tree_note(kith_gossip *g, uint64_t tag) {
  tree *t = tree_entry(g, tag);
  if (t == NULL)
    return;
  t->used = ++g->clock;
  if (t->msgs++ == 0 && small_group(g)) {
    gpeer *list[PEERS_MAX];
    uint32_t n = gs_active_list(g, list);
    t->own = 1; /* flooded once: its duplicates prune the tree */
    t->eager = 0;
    for (uint32_t i = 0; i < n; i++)
      t->eager |= bit(g, list[i]);
  }
  if (t->msgs >= 2)
    (void)tree_own(g, tag);
  if (!t->own && g->dflt.msgs < UINT32_MAX)
    g->dflt.msgs++; /* the default tree carries it */
}

/* Sets (on) or clears p's edge for source tag as the neighbour p uses it:
 * in its tree of that source (own), else in its default tree. Both ends
 * then agree: a source's tree is made here as soon as a neighbour uses
 * one, and a change to the neighbour's default tree changes this node's
 * default tree (and this node's tree of the source, if it has one). */
static void edge(kith_gossip *g, gpeer *p, uint64_t tag, int own, int on) {
  uint64_t b = bit(g, p);
  tree *t = own ? tree_own(g, tag) : g_hash_table_lookup(g->trees, &tag);
  if (!own || t == NULL)
    g->dflt.eager = on ? g->dflt.eager | b : g->dflt.eager & ~b;
  if (t != NULL && t->own)
    t->eager = on ? t->eager | b : t->eager & ~b;
}

int kith_gossip_peer_eager(const kith_gossip *g, const uint8_t peer[32],
                           const uint8_t source[32]) {
  uint64_t tag = 0;
  for (int i = 0; i < 8; i++)
    tag = tag << 8 | source[i];
  const tree *t = g_hash_table_lookup(g->trees, &tag);
  if (t == NULL || !t->own)
    t = &g->dflt;
  for (uint32_t i = 0; i < PEERS_MAX; i++) {
    const gpeer *p = &g->peers[i];
    if (p->used && p->active && memcmp(p->id, peer, 32) == 0)
      return (int)((t->eager >> i) & 1);
  }
  return -1;
}

/* ---- sending ---- */

/* push: PUSH_* (how the receiver should take it); eph: an EPHEMERAL frame
 * (else PAYLOAD). */
static void send_payload(kith_gossip *g, const uint8_t peer[32], uint64_t tag,
                         uint32_t hops, int push, int eph, const uint8_t *data,
                         size_t len, kith_out *out) {
  kith_pack pk;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 5);
  kith_pack_uint(&pk, eph ? KITH_GF_EPHEMERAL : KITH_GF_PAYLOAD);
  kith_pack_uint(&pk, tag);
  kith_pack_uint(&pk, hops > HOPS_MAX ? HOPS_MAX : hops);
  kith_pack_uint(&pk, (uint64_t)push);
  kith_pack_bin(&pk, data, len);
  gs_send(g, peer, &pk, out);
}

/* GRAFT [10, short ids, [tags], default]: "send me these, and push the
 * trees of these sources (and your default tree) to me". */
static void send_graft(kith_gossip *g, gpeer *p, const uint8_t *ids, size_t n,
                       const uint64_t *tags, size_t k, int dflt,
                       kith_out *out) {
  kith_pack pk;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 4);
  kith_pack_uint(&pk, KITH_GF_GRAFT);
  kith_pack_bin(&pk, ids, n * SHORT_ID);
  kith_pack_array(&pk, (uint32_t)k);
  for (size_t i = 0; i < k; i++)
    kith_pack_uint(&pk, tags[i]);
  kith_pack_uint(&pk, dflt ? 1 : 0);
  gs_send(g, p->id, &pk, out);
}

/* PRUNE [11, source, own]: "stop pushing this source's payloads to me";
 * own: the edge was in this node's tree of that source (else its
 * default tree). */
static void send_prune(kith_gossip *g, gpeer *p, uint64_t tag, int own,
                       kith_out *out) {
  kith_pack pk;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 3);
  kith_pack_uint(&pk, KITH_GF_PRUNE);
  kith_pack_uint(&pk, tag);
  kith_pack_uint(&pk, own ? 1 : 0);
  gs_send(g, p->id, &pk, out);
  g->st.prunes_sent++;
}

static void flush_ihave(kith_gossip *g, gpeer *p, kith_out *out) {
  p->lazy_at = 0;
  if (p->n_lazy == 0)
    return;
  if (p->active) {
    kith_pack pk;
    uint8_t ids[KITH_GOSSIP_IDS_MAX * SHORT_ID], hops[KITH_GOSSIP_IDS_MAX];
    for (uint32_t i = 0; i < p->n_lazy; i++) {
      memcpy(ids + SHORT_ID * i, p->lazy[i].id, SHORT_ID);
      hops[i] = p->lazy[i].hops;
    }
    kith_pack_init(&pk);
    kith_pack_array(&pk, 3);
    kith_pack_uint(&pk, KITH_GF_IHAVE);
    kith_pack_bin(&pk, ids, p->n_lazy * SHORT_ID);
    kith_pack_bin(&pk, hops, p->n_lazy);
    gs_send(g, p->id, &pk, out);
    g->st.ihave_sent++;
  }
  p->n_lazy = 0;
}

/* Announcements are batched per neighbour: its first waiting id goes
 * ihave_batch_ms after it was queued (with all queued since), or earlier
 * with the next payload pushed to that neighbour (11.7). */
static void lazy_push(kith_gossip *g, gpeer *p, const uint8_t id[32],
                      uint32_t hops, int own, uint64_t now, kith_out *out) {
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
  memcpy(p->lazy[p->n_lazy].id, id, SHORT_ID);
  p->lazy[p->n_lazy++].hops =
      (uint8_t)(MIN(hops, IHAVE_OWN - 1) | (own ? IHAVE_OWN : 0));
  if (p->lazy_at == 0)
    p->lazy_at = now + g->cfg.ihave_batch_ms;
  if (g->ihave_at == 0 || p->lazy_at < g->ihave_at)
    g->ihave_at = p->lazy_at;
}

/* Sends the batches that are due; the next due one sets ihave_at. */
static void flush_due_ihaves(kith_gossip *g, uint64_t now, kith_out *out) {
  g->ihave_at = 0;
  for (uint32_t i = 0; i < PEERS_MAX; i++) {
    gpeer *p = &g->peers[i];
    if (!p->used || p->lazy_at == 0)
      continue;
    if (p->lazy_at <= now)
      flush_ihave(g, p, out);
    else if (g->ihave_at == 0 || p->lazy_at < g->ihave_at)
      g->ihave_at = p->lazy_at;
  }
}

/* Could an announcement of ours, at our hops, still make a neighbour that
 * had the payload at theirs rewire to us (maybe_rewire, with the smaller
 * gain)? Then it is sent even to a neighbour known to have the payload. */
static int may_rewire_to_us(uint32_t ours, uint32_t theirs) {
  return ours + 1 + OPT_OWN <= theirs;
}

/* p has the payload of short id `id`, since it came `theirs` hops from
 * its source (p announced or pushed it to us): it is not announced to p,
 * unless that could move p's tree. Taken out of p's waiting batch, and
 * marked on the payload if it still awaits its verdict (forward skips p). */
static void note_holder(kith_gossip *g, gpeer *p, const uint8_t *id,
                        uint32_t theirs) {
  uint32_t k = 0;
  if (p == NULL)
    return;
  for (uint32_t i = 0; i < p->n_lazy; i++)
    if (memcmp(p->lazy[i].id, id, SHORT_ID) != 0 ||
        may_rewire_to_us(p->lazy[i].hops & ~IHAVE_OWN, theirs))
      p->lazy[k++] = p->lazy[i];
  p->n_lazy = k;
  if (k == 0)
    p->lazy_at = 0; /* ihave_at may come early: flush_due_ihaves re-arms */
  const uint8_t *full = g_hash_table_lookup(g->seen_pfx, id);
  pending *pe = full != NULL ? g_hash_table_lookup(g->pend, full) : NULL;
  if (pe != NULL && !may_rewire_to_us(pe->hops, theirs))
    pe->how.holders |= bit(g, p);
}

/* The neighbours that announced a missing id before it came (at `hops`
 * here) and that an announcement of ours could not rewire. */
static uint64_t announcers(kith_gossip *g, const missing *m, uint32_t hops) {
  uint64_t b = 0;
  for (uint32_t k = 0; k < m->n; k++) {
    gpeer *q = gs_peer(g, m->who[k]);
    /* UINT8_MAX: asked, so it answered: it is our parent now */
    if (q != NULL &&
        (m->hops[k] == UINT8_MAX || !may_rewire_to_us(hops, m->hops[k])))
      b |= bit(g, q);
  }
  return b;
}

/* The push field for a payload pushed along tree t that came so. */
static int push_kind(const kith_gossip *g, const tree *t, const arrival *how) {
  return t != &g->dflt ? PUSH_OWN : how->repair ? PUSH_REPAIR : PUSH_DEFAULT;
}

/* A random active neighbour other than p, one without an eager edge in
 * the default tree if there is one (NULL if there is none but p). */
static gpeer *replacement(kith_gossip *g, const gpeer *p) {
  gpeer *list[PEERS_MAX], *r = NULL;
  uint32_t n = gs_active_list(g, list), c = 0;
  int lazy = 0;
  for (uint32_t i = 0; i < n; i++) {
    int l = !(g->dflt.eager & bit(g, list[i]));
    if (list[i] == p || (lazy && !l))
      continue;
    if (l && !lazy)
      lazy = 1, c = 0; /* the first lazy one: choose among those only */
    if (gs_below(g, ++c) == 0)
      r = list[i];
  }
  return r;
}

/* Makes a random active neighbour other than p (preferably lazy) an edge
 * of the default tree, and asks it to push that tree to this node too. */
static void dflt_anchor(kith_gossip *g, const gpeer *p, kith_out *out) {
  gpeer *r = replacement(g, p);
  if (r == NULL)
    return;
  g->dflt.eager |= bit(g, r);
  send_graft(g, r, NULL, 0, NULL, 0, 1, out);
}

/* Is ev an event of the default tree t that this node fetched by its own
 * GRAFT, with at most one eager edge in that tree? Then that edge leads to
 * where the copy should have come from (its push was lost, or the
 * neighbour is cut off or gone): the copy is not pushed back along it,
 * only announced if the neighbour is among those chosen. (In kith-sim,
 * 1,000 nodes, 1% loss, 20% crashed, seed 1: leaves sent two thirds of
 * the default tree's GRAFTs, and their answers pushed back met a copy
 * the neighbour had.) */
static int dflt_leaf_graft(const kith_gossip *g, const tree *t,
                           const cached *ev) {
  return t == &g->dflt && ev->how.graft_from != 0 && eager_edges(t) <= 1;
}

/* Eager push along the source's tree; announcements to at most
 * announce_max of the other neighbours not known to have it
 * (arrival.holders), chosen at random. An event published here on the
 * default tree goes to every neighbour: to the lazy ones as a repair, so
 * that it enters the tree at every neighbour (paths as long as the
 * distance in the tree to the nearest of them, not to this node) without
 * pruning it where the copies meet. A node left without an edge in the
 * default tree makes one first. */
static void forward(kith_gossip *g, const cached *ev, const uint8_t *except,
                    int push, uint64_t now, kith_out *out) {
  gpeer *list[PEERS_MAX], *lazy[PEERS_MAX];
  uint32_t n = gs_active_list(g, list), nl = 0;
  const tree *t = tree_for(g, ev->tag);
  int dflt = push && t == &g->dflt;
  int wide = dflt && except == NULL && !ev->eph; /* published here */
  if (dflt && g->dflt.eager == 0)
    dflt_anchor(g, except != NULL ? gs_peer(g, except) : NULL, out);
  uint64_t to = dflt_leaf_graft(g, t, ev) ? 0 : t->eager;
  for (uint32_t i = 0; i < n; i++) {
    gpeer *q = list[i];
    int eager = (to & bit(g, q)) != 0;
    if (except != NULL && memcmp(q->id, except, 32) == 0)
      continue;
    if (push && (eager || wide)) {
      send_payload(g, q->id, ev->tag, ev->hops + 1,
                   eager ? push_kind(g, t, &ev->how) : PUSH_REPAIR, ev->eph,
                   ev->data, ev->len, out);
      flush_ihave(g, q, out); /* rides with the payload (11.7) */
    } else if (!(ev->how.holders & bit(g, q)))
      lazy[nl++] = q;
  }
  for (uint32_t j = 0; j < nl && j < g->cfg.announce_max; j++) {
    uint32_t r = j + gs_below(g, nl - j);
    gpeer *q = lazy[r];
    lazy[r] = lazy[j];
    lazy_push(g, q, ev->id, ev->hops, t != &g->dflt, now, out);
  }
}

/* ---- the cache of recent payloads (answers to GRAFT and WANT) ---- */

static void cache_put(kith_gossip *g, const cached *ev) {
  if (g_hash_table_contains(g->cache, ev->id))
    return;
  cached *c = g_memdup2(ev, sizeof *ev);
  c->data = g_memdup2(ev->data, ev->len);
  g_hash_table_insert(g->cache, c->id, c);
  if (!g_hash_table_contains(g->cache_pfx, c->id))
    g_hash_table_insert(g->cache_pfx, c->id, c);
  g_queue_push_tail(&g->cache_fifo, c);
  g->cache_bytes += c->len;
  while (g_queue_get_length(&g->cache_fifo) > KITH_GOSSIP_CACHE_MAX ||
         g->cache_bytes > KITH_GOSSIP_CACHE_BYTES) {
    cached *old = g_queue_pop_head(&g->cache_fifo);
    g->cache_bytes -= old->len;
    if (g_hash_table_lookup(g->cache_pfx, old->id) == old)
      g_hash_table_remove(g->cache_pfx, old->id);
    g_hash_table_remove(g->cache, old->id);
  }
}

/* ---- ephemeral payloads: kept in the cache for a while, then gone ---- */

/* Removes an ephemeral entry (already taken off eph_fifo) from the cache. */
static void eph_unlink(kith_gossip *g, cached *c) {
  if (g_hash_table_lookup(g->cache_pfx, c->id) == c)
    g_hash_table_remove(g->cache_pfx, c->id);
  g_hash_table_remove(g->cache, c->id);
}

/* Every entry lives KITH_GOSSIP_EPH_MS, so the FIFO is in expiry order;
 * at the bound the oldest goes first. */
static void eph_put(kith_gossip *g, const cached *ev, uint64_t now) {
  if (g_hash_table_contains(g->cache, ev->id))
    return;
  cached *c = g_memdup2(ev, sizeof *ev);
  c->data = g_memdup2(ev->data, ev->len);
  c->eph = 1;
  c->expires = now + KITH_GOSSIP_EPH_MS;
  g_hash_table_insert(g->cache, c->id, c);
  if (!g_hash_table_contains(g->cache_pfx, c->id))
    g_hash_table_insert(g->cache_pfx, c->id, c);
  g_queue_push_tail(&g->eph_fifo, c);
  if (g->eph_at == 0)
    g->eph_at = c->expires;
  if (g_queue_get_length(&g->eph_fifo) > KITH_GOSSIP_EPH_MAX) {
    eph_unlink(g, g_queue_pop_head(&g->eph_fifo));
    g->st.overflows++;
    g->eph_at = ((cached *)g_queue_peek_head(&g->eph_fifo))->expires;
  }
}

static void expire_eph(kith_gossip *g, uint64_t now) {
  cached *c;
  while ((c = g_queue_peek_head(&g->eph_fifo)) != NULL && c->expires <= now)
    eph_unlink(g, g_queue_pop_head(&g->eph_fifo));
  g->eph_at = c != NULL ? c->expires : 0;
}

/* Is id a payload this node has seen: an event (valid, invalid, awaiting a
 * verdict) or an ephemeral payload kept or awaiting a verdict? */
static int seen_any(kith_gossip *g, const uint8_t id[32]) {
  const cached *c = g_hash_table_lookup(g->cache, id);
  return gs_seen(g, id) != 0 || (c != NULL && c->eph) ||
         g_hash_table_contains(g->pend, id);
}

/* ---- payloads awaiting a verdict, bounded in all and per sender ---- */

static int pend_room(kith_gossip *g, const uint8_t from[32], size_t len) {
  const pend_count *c = g_hash_table_lookup(g->pend_by, from);
  if (g_hash_table_size(g->pend) - g->pend_held >= KITH_GOSSIP_PENDING_MAX ||
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

/* A held payload (KITH_GOSSIP_HELD: the caller holds it for its parents)
 * leaves the counts of payloads awaiting a verdict, while at most
 * KITH_GOSSIP_HELD_MAX are: the parents that release it come from the
 * same sender, and must find room. Its bytes still count. */
static void pend_release(kith_gossip *g, pending *pe) {
  pend_count *c = g_hash_table_lookup(g->pend_by, pe->from);
  if (pe->released || g->pend_held >= KITH_GOSSIP_HELD_MAX || c == NULL)
    return;
  pe->released = 1;
  c->n--;
  g->pend_held++;
}

/* Removes id's pending entry and returns it (the caller frees it). */
static pending *pend_take(kith_gossip *g, const uint8_t id[32]) {
  pending *pe = g_hash_table_lookup(g->pend, id);
  if (pe == NULL)
    return NULL;
  g_hash_table_steal(g->pend, id);
  pend_count *c = g_hash_table_lookup(g->pend_by, pe->from);
  g->pend_bytes -= pe->len;
  if (pe->released)
    g->pend_held--;
  if (c != NULL) {
    c->n -= pe->released ? 0 : 1;
    c->bytes -= pe->len;
    if (c->n == 0 && c->bytes == 0)
      g_hash_table_remove(g->pend_by, pe->from);
  }
  return pe;
}

/* ---- accepting and publishing ---- */

/* fwd: 0 if it was passed on already (KITH_GOSSIP_HELD). A payload of
 * source 0 (looked up in a store for a WANT: a catch-up) is not passed on
 * at all: the nodes behind this one catch up by their own reconciliation,
 * each from one stream in depth order (gossip_recon.c); pushed on here, it
 * would reach them out of their order, in the order this node accepted
 * it, with holes where pushes were pruned. */
static void accept_event(kith_gossip *g, const cached *ev, uint64_t ts,
                         const uint8_t *from, int push, int fwd, uint64_t now,
                         kith_out *out) {
  gs_seen_set(g, ev->id, SEEN_VALID);
  rc_known_add(g, ts, ev->id);
  cache_put(g, ev);
  tree_note(g, ev->tag);
  if (ev->tag != 0 && tree_for(g, ev->tag) == &g->dflt) {
    if (ev->how.graft_from != 0)
      g->fetches = g->fetches < UINT32_MAX ? g->fetches + 1 : UINT32_MAX;
    else if (ev->how.pushed)
      g->fetches = 0;
  }
  if (fwd && ev->tag != 0)
    forward(g, ev, from, push, now, out);
}

/* A payload passed on before its verdict turned out bad or was dropped:
 * it is no longer offered to GRAFTs and WANTs. */
static void cache_drop(kith_gossip *g, const uint8_t id[32]) {
  cached *c = g_hash_table_lookup(g->cache, id);
  if (c == NULL || c->eph) /* ephemeral ones are cached once valid only */
    return;
  g_queue_remove(&g->cache_fifo, c);
  g->cache_bytes -= c->len;
  if (g_hash_table_lookup(g->cache_pfx, c->id) == c)
    g_hash_table_remove(g->cache_pfx, c->id);
  g_hash_table_remove(g->cache, id);
}

static cached cached_of(const pending *pe) {
  cached ev = {.tag = pe->tag,
               .eph = (uint8_t)pe->eph,
               .hops = pe->hops,
               .how = pe->how,
               .data = pe->data,
               .len = pe->len};
  memcpy(ev.id, pe->id, 32);
  memcpy(ev.from, pe->from, 32);
  return ev;
}

kith_err kith_gossip_publish(kith_gossip *g, uint64_t ts_ms,
                             const uint8_t *payload, size_t len,
                             uint64_t now_ms, kith_out *out) {
  if (len > KITH_GOSSIP_MAX_PAYLOAD || ts_ms > TS_MAX ||
      (payload == NULL && len > 0))
    return KITH_ERR_ARG;
  cached ev = {
      .tag = g->self_tag, .hops = 0, .data = (uint8_t *)payload, .len = len};
  kith_gossip_payload_id(payload, len, ev.id);
  if (gs_seen(g, ev.id) == SEEN_VALID)
    return KITH_ERR_DUPLICATE;
  gs_arm(g, now_ms);
  pt_free_pending(pend_take(g, ev.id));
  g_hash_table_remove(g->missing, ev.id);
  accept_event(g, &ev, ts_ms, NULL, 1, 1, now_ms, out);
  return KITH_OK;
}

kith_err kith_gossip_publish_ephemeral(kith_gossip *g, const uint8_t *payload,
                                       size_t len, uint64_t now_ms,
                                       kith_out *out) {
  if (len > KITH_GOSSIP_EPH_MAX_PAYLOAD || (payload == NULL && len > 0))
    return KITH_ERR_ARG;
  cached ev = {.tag = g->self_tag,
               .eph = 1,
               .hops = 0,
               .data = (uint8_t *)payload,
               .len = len};
  kith_gossip_payload_id(payload, len, ev.id);
  if (seen_any(g, ev.id))
    return KITH_ERR_DUPLICATE;
  gs_arm(g, now_ms);
  g_hash_table_remove(g->missing, ev.id);
  eph_put(g, &ev, now_ms);
  forward(g, &ev, NULL, 1, now_ms, out);
  return KITH_OK;
}

kith_err kith_gossip_add_known(kith_gossip *g, uint64_t ts_ms,
                               const uint8_t id[32]) {
  if (ts_ms > TS_MAX)
    return KITH_ERR_ARG;
  if (gs_seen(g, id) == SEEN_VALID)
    return KITH_ERR_DUPLICATE;
  pt_free_pending(pend_take(g, id)); /* it came by another path */
  gs_seen_set(g, id, SEEN_VALID);
  g_hash_table_remove(g->missing, id);
  if (rc_known_full(g))
    return KITH_ERR_LIMIT;
  rc_known_add(g, ts_ms, id);
  return KITH_OK;
}

void kith_gossip_verdict(kith_gossip *g, const uint8_t id[32],
                         kith_gossip_verdict_kind v, uint64_t ts_ms,
                         uint64_t now_ms, kith_out *out) {
  pending *pe = g_hash_table_lookup(g->pend, id);
  if (v == KITH_GOSSIP_HELD) { /* passed on now, judged later */
    /* unless its source is not known (tag 0: a catch-up, accept_event) */
    if (pe != NULL && !pe->forwarded && !pe->eph && pe->tag != 0) {
      cached ev = cached_of(pe);
      pe->forwarded = 1;
      cache_put(g, &ev);
      forward(g, &ev, pe->from, pe->push, now_ms, out);
    }
    if (pe != NULL && !pe->eph)
      pend_release(g, pe);
    return;
  }
  pe = pend_take(g, id);
  if (pe == NULL) {
    /* accepted from elsewhere (e.g. released by a parent that came by
     * another path): known from now on */
    if (v == KITH_GOSSIP_VALID &&
        kith_gossip_add_known(g, ts_ms > TS_MAX ? TS_MAX : ts_ms, id) ==
            KITH_ERR_LIMIT)
      g->st.overflows++;
    return;
  }
  if (v == KITH_GOSSIP_VALID && pe->eph) {
    cached ev = cached_of(pe);
    eph_put(g, &ev, now_ms); /* no known set, no tree of its own */
    forward(g, &ev, pe->from, pe->push, now_ms, out);
  } else if (v == KITH_GOSSIP_VALID) {
    cached ev = cached_of(pe);
    accept_event(g, &ev, ts_ms > TS_MAX ? TS_MAX : ts_ms, pe->from, pe->push,
                 !pe->forwarded, now_ms, out);
  } else if (v == KITH_GOSSIP_INVALID) {
    /* The id names these bytes: no other payload can be marked by it. But
     * bytes that are no valid ephemeral payload may be a valid event: an
     * ephemeral verdict never marks them. */
    if (!pe->eph)
      gs_seen_set(g, id, SEEN_INVALID);
    cache_drop(g, id);
    g->st.invalid++;
    (void)kith_out_push(out, KITH_OUT_PENALIZE, pe->from, NULL, 0);
  } else {
    gs_seen_set(g, id, 0); /* not now: the next copy is delivered again */
    rc_forget_asked(g, id);
    cache_drop(g, id);
    g->st.later++;
  }
  pt_free_pending(pe);
}

/* ---- missing ids and the lazy timeout ---- */

/* How long to wait for an announced id before grafting it. A GRAFT that
 * comes too soon costs a copy; one that comes too late costs the nodes
 * behind this one that much latency. Once 8 are measured, a little more
 * than the 95th percentile of how late pushes of that kind of tree (own
 * trees, or the default tree) have come after their first announcement
 * (0 when the push came first); before that, two round trips of the links
 * (NEIGHBOR and GRAFT answers) for an own tree, four for the default
 * tree, or lazy_min_ms (own) or lazy_timeout_ms (default) if none is
 * known; for the default tree, that times 6/5 divided by this node's
 * eager edges in it (LAZY_EDGES_NUM). Always at least one and a half
 * round trips and lazy_min_ms, at most lazy_timeout_ms. A GRAFT of the default
 * tree changes no edge (graft_edge), so it costs a copy, never the tree. */
static uint64_t lazy_wait(const kith_gossip *g, int own) {
  uint64_t rtt = g->rtt8 / 8, w;
  const lateness *l = own ? &g->late : &g->late_dflt;
  if (l->wait != 0) /* measured */
    w = l->wait;
  else if (rtt != 0) /* known: the links' round trip */
    w = own ? 2 * rtt : 4 * rtt;
  else
    w = own ? g->cfg.lazy_min_ms : g->cfg.lazy_timeout_ms;
  if (!own) /* more edges, more nodes behind this one: graft sooner */
    w = w * LAZY_EDGES_NUM / (LAZY_EDGES_DEN * MAX(eager_edges(&g->dflt), 1));
  w = MAX(w, 3 * rtt / 2); /* one and a half round trips, at least */
  return MIN(MAX(w, g->cfg.lazy_min_ms), g->cfg.lazy_timeout_ms);
}

static int cmp_u16(const void *a, const void *b) {
  return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/* How late (ms) a payload of an own tree was pushed, after its first
 * announcement. */
static void late_sample(kith_gossip *g, int own, uint64_t ms) {
  lateness *l = own ? &g->late : &g->late_dflt;
  uint16_t v[LATE_N];
  l->v[l->n++ % LATE_N] =
      (uint16_t)(ms > g->cfg.lazy_timeout_ms ? g->cfg.lazy_timeout_ms : ms);
  if (l->n % 8 != 0)
    return; /* recomputed every 8 samples */
  uint32_t n = l->n < LATE_N ? l->n : LATE_N;
  memcpy(v, l->v, n * sizeof *v);
  qsort(v, n, sizeof *v, cmp_u16);
  uint64_t w = (uint64_t)v[(n * 95) / 100] * 5 / 4 + g->cfg.lazy_min_ms / 2;
  w = MAX(w, g->cfg.lazy_min_ms);
  l->wait = MIN(w, g->cfg.lazy_timeout_ms);
}

/* An announcement of a payload this node has: if its push came first,
 * that counts (once) as lateness 0. */
static void sample_early(kith_gossip *g, cached *c) {
  if (c->how.pushed && !c->how.sampled) {
    c->how.sampled = 1;
    late_sample(g, tree_for(g, c->tag) != &g->dflt, 0);
  }
}

/* How the payload id, cached or awaiting a verdict, came (NULL: neither). */
static arrival *arrival_of(kith_gossip *g, const uint8_t id[32]) {
  cached *c = g_hash_table_lookup(g->cache, id);
  pending *pe = c ? NULL : g_hash_table_lookup(g->pend, id);
  return c ? &c->how : pe ? &pe->how : NULL;
}

/* A duplicate push of a payload we grafted: the push was that late. */
static void sample_duplicate(kith_gossip *g, arrival *how, int own,
                             uint64_t now) {
  if (how->graft_from != 0 && !how->sampled) {
    how->sampled = 1;
    late_sample(g, own, now - how->graft_from);
  }
}

static void missing_arm(kith_gossip *g, uint64_t deadline) {
  if (g->missing_at == 0 || deadline < g->missing_at)
    g->missing_at = deadline;
}

/* The entry of a short id not received yet (created; NULL at the bound). */
static missing *missing_get(kith_gossip *g, const uint8_t *id, int own,
                            uint64_t now) {
  missing *m = g_hash_table_lookup(g->missing, id);
  if (m != NULL)
    return m;
  if (g_hash_table_size(g->missing) >= KITH_GOSSIP_MISSING_MAX) {
    g->st.overflows++;
    return NULL;
  }
  m = g_new0(missing, 1);
  memcpy(m->id, id, SHORT_ID);
  m->since = now;
  m->own = (uint8_t)own;
  m->deadline = now + lazy_wait(g, own);
  missing_arm(g, m->deadline);
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

kith_err kith_gossip_want(kith_gossip *g, const uint8_t peer[32],
                          const uint8_t *ids, size_t n, uint64_t now_ms,
                          size_t *asked, kith_out *out) {
  gpeer *p = gs_peer(g, peer);
  size_t k = 0;
  (void)out;
  if (asked != NULL)
    *asked = 0;
  if (n > KITH_GOSSIP_IDS_MAX || (ids == NULL && n > 0))
    return KITH_ERR_ARG;
  if (p == NULL || !p->linked)
    return KITH_ERR_STATE;
  for (size_t i = 0; i < n; i++) {
    const uint8_t *id = ids + 32 * i;
    if (gs_seen(g, id) != 0 || g_hash_table_contains(g->missing, id))
      continue;
    missing *m = missing_get(g, id, 1, now_ms);
    if (m == NULL)
      break;
    memcpy(m->id, id, 32);
    m->want = 1;
    missing_add_who(m, p->id, 0);
    k++;
  }
  if (asked != NULL)
    *asked = k;
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

/* How long an asked id (GRAFT or WANT) waits for its answer before the
 * next announcer is asked: graft_retry_ms, or two measured round trips if
 * longer (at most KITH_GOSSIP_RETRY_MAX_MS). Behind a slow or busy link an
 * answer takes longer than graft_retry_ms; asked again sooner, the
 * answer comes twice and the copy fills the link further. */
static uint64_t retry_wait(const kith_gossip *g) {
  uint64_t w = MAX((uint64_t)g->cfg.graft_retry_ms, 2 * (g->rtt8 / 8));
  return MIN(w, MAX((uint64_t)g->cfg.graft_retry_ms, KITH_GOSSIP_RETRY_MAX_MS));
}

/* Should a GRAFT for m (of the default tree) also ask for an edge of the
 * default tree? A payload lost on its way (a frame lost, a neighbour
 * crashed) is fetched without changing the tree: an edge made for it would
 * close a cycle that a later message's duplicates cut at random, and such
 * cuts, message after message, leave the tree ever deeper. Only when the
 * last default-tree message came by a GRAFT as well, or this node has no
 * edge in that tree at all, are its edges taken for broken: the announcer
 * is asked to push the default tree to this node. */
static int graft_edge(const kith_gossip *g, const missing *m) {
  return !m->own && (g->fetches > 0 || g->dflt.eager == 0);
}

/* Ids that did not arrive in time: GRAFT from the next announcer still
 * linked; after the last one, anti-entropy takes over. */
static void expire_missing(kith_gossip *g, uint64_t now, kith_out *out) {
  GHashTableIter it;
  gpointer v;
  uint64_t next = 0;
  g_hash_table_iter_init(&it, g->missing);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    missing *m = v;
    if (m->deadline <= now) {
      gpeer *p = next_announcer(g, m);
      if (p == NULL) {
        g_hash_table_iter_remove(&it);
        continue;
      }
      if (m->want) { /* without changing any tree */
        gs_send_ids(g, p->id, KITH_GF_WANT, m->id, 1, out);
        g->st.wants_sent++;
      } else {
        send_graft(g, p, m->id, 1, NULL, 0, graft_edge(g, m), out);
        g->st.grafts_sent++;
      }
      m->asked_at = now;
      m->deadline = now + retry_wait(g);
    }
    if (next == 0 || m->deadline < next)
      next = m->deadline;
  }
  g->missing_at = next;
}

/* ---- receiving ---- */

static void deliver(kith_gossip *g, const uint8_t from[32],
                    const uint8_t id[32], uint64_t tag, uint32_t hops, int push,
                    int eph, const arrival *how, const uint8_t *data,
                    size_t len, uint64_t now, kith_out *out) {
  pending *pe = g_new0(pending, 1);
  pe->eph = eph;
  memcpy(pe->id, id, 32);
  memcpy(pe->from, from, 32);
  pe->tag = tag;
  pe->how = *how;
  pe->hops = hops;
  pe->push = push;
  pe->data = g_memdup2(data, len);
  pe->len = len;
  pe->since = now;
  pend_add(g, pe);
  if (g->pend_at == 0)
    g->pend_at = now + KITH_GOSSIP_PENDING_MS;
  if (!eph) /* ephemeral ids stay out of the seen table (seen_any) */
    gs_seen_set(g, id, SEEN_PENDING);
  kith_out_item *it =
      kith_out_push(out, KITH_OUT_DELIVER, from, g_memdup2(data, len), len);
  if (it != NULL) {
    memcpy(it->id, id, 32);
    it->hops = hops;
    it->ephemeral = (uint8_t)eph;
  }
}

/* PAYLOAD, or EPHEMERAL (eph): the same fields and the same handling,
 * but an ephemeral payload is small and is delivered as such. */
static kith_err on_payload(kith_gossip *g, gpeer *p, const uint8_t from[32],
                           const msgpack_object *f, uint32_t nf, int eph,
                           uint64_t now, kith_out *out) {
  uint8_t id[32];
  uint64_t tag, hops, push;
  const uint8_t *data;
  size_t len, max = eph ? KITH_GOSSIP_EPH_MAX_PAYLOAD : KITH_GOSSIP_MAX_PAYLOAD;
  if (nf != 5 || kith_codec_uint(&f[1], UINT64_MAX, &tag) != KITH_OK ||
      kith_codec_uint(&f[2], HOPS_MAX, &hops) != KITH_OK ||
      kith_codec_uint(&f[3], PUSH_REPAIR, &push) != KITH_OK ||
      kith_codec_bin(&f[4], max, &data, &len) != KITH_OK)
    return KITH_ERR_DECODE;
  g->st.payloads++;
  g->st.ephemeral += eph != 0;
  kith_gossip_payload_id(data, len, id);
  int own = push == PUSH_OWN && tag != 0;
  if (seen_any(g, id)) {
    arrival *first = arrival_of(g, id);
    g->st.duplicates++;
    note_holder(g, p, id, hops > 0 ? (uint32_t)hops - 1 : 0);
    if (push && first != NULL)
      sample_duplicate(g, first, own, now);
    if (push && push != PUSH_OWN && p != NULL && (g->dflt.eager & bit(g, p)))
      g->fetches = 0; /* the default tree reaches this node */
    if (push == PUSH_REPAIR || (first != NULL && first->repair))
      return KITH_OK; /* where a repair meets the tree: no cycle */
    if (push && p != NULL && p->active &&
        (tree_for(g, tag)->eager & bit(g, p))) {
      /* a second path: keep the first (the neighbour pushed along the
       * tree it says; both ends drop the edge from that tree). A push
       * along an edge this node has lazy already is left alone: such
       * one-sided edges (left by crossing PRUNEs and pushes) keep a
       * second way into parts of the tree. */
      edge(g, p, tag, own, 0);
      send_prune(g, p, tag, own, out);
    }
    return KITH_OK;
  }
  if (!pend_room(g, from, len)) {
    g->st.overflows++;      /* not marked seen: it can come again */
    rc_forget_asked(g, id); /* asked of a stream: the next one asks again */
    return KITH_OK;
  }
  /* Asked for at a reconciliation's end: a catch-up, whatever source the
   * answer names (a cached one keeps its own), so not passed on
   * (accept_event). A held event's parent, asked for by WANT, is a live
   * repair and goes on along its source's tree. */
  if (!push && !eph && rc_was_asked(g, p, id, now))
    tag = 0;
  arrival how = {.pushed = push != 0, .repair = push == PUSH_REPAIR};
  /* a repair makes no edge (its sender may have this node lazy) */
  int fwd = push != 0, link = (push == PUSH_DEFAULT || push == PUSH_OWN) &&
                              p != NULL && p->active;
  missing *m = g_hash_table_lookup(g->missing, id);
  if (m != NULL) {
    int asked = 0;
    for (uint32_t k = 0; k < m->n; k++)
      asked |= m->hops[k] == UINT8_MAX && memcmp(m->who[k], from, 32) == 0;
    if (asked) { /* our GRAFT's (or WANT's) answer */
      how = (arrival){.graft_from = m->announced ? m->since : 0,
                      .repair = push == PUSH_REPAIR};
      gs_rtt_sample(g, now - m->asked_at);
    } else if (push && m->announced) /* a push, later than an IHAVE */
      late_sample(g, own, now - m->since), how.sampled = 1;
    fwd = 1; /* the subtree behind this node probably lacks it too */
    how.holders = announcers(g, m, (uint32_t)hops);
    g_hash_table_remove(g->missing, id);
  }
  if (link)
    edge(g, p, tag, own, 1); /* the first edge joins the tree */
  deliver(g, from, id, tag, (uint32_t)hops, fwd, eph, &how, data, len, now,
          out);
  return KITH_OK;
}

/* Plumtree's optimization, in own trees: an announcer that had the event
 * much sooner (in hops) than the neighbour that pushed it to us becomes
 * our parent in that source's tree: GRAFT it for the source, PRUNE the old
 * parent. Not in the default tree: its events come from many sources, and
 * a move that shortens the paths from one lengthens others' (in
 * kith-sim's 1,000-node runs, rewiring it at gains of 4 hops cost twice
 * the PRUNEs; at gains of 1 or 2, longer paths and more GRAFTs). */
static void maybe_rewire(kith_gossip *g, gpeer *a, cached *c, uint32_t hops,
                         kith_out *out) {
  static const uint8_t zero[32];
  tree *t = tree_for(g, c->tag);
  if (t == &g->dflt || a == NULL || !a->active || (t->eager & bit(g, a)) ||
      memcmp(c->from, zero, 32) == 0 || hops + 1 + OPT_OWN > c->hops)
    return;
  gpeer *parent = gs_peer(g, c->from);
  c->hops = hops + 1; /* rewire once per event */
  if (parent == NULL || !parent->active || !(t->eager & bit(g, parent)))
    return;
  t->eager |= bit(g, a);
  send_graft(g, a, NULL, 0, &c->tag, 1, 0, out);
  t->eager &= ~bit(g, parent);
  send_prune(g, parent, c->tag, 1, out);
}

static void note_missing(kith_gossip *g, const uint8_t from[32],
                         const uint8_t *id, uint8_t hops, uint64_t now) {
  int own = (hops & IHAVE_OWN) != 0;
  missing *m = missing_get(g, id, own, now);
  if (m == NULL)
    return;
  if (!m->announced) {
    m->announced = 1;
    m->since = now;
  }
  missing_add_who(m, from, hops & ~IHAVE_OWN);
}

/* A bin of n short ids (n <= KITH_GOSSIP_IDS_MAX). */
static kith_err read_short_ids(const msgpack_object *o, const uint8_t **ids,
                               size_t *n) {
  size_t len;
  if (kith_codec_bin(o, KITH_GOSSIP_IDS_MAX * SHORT_ID, ids, &len) != KITH_OK ||
      len % SHORT_ID != 0)
    return KITH_ERR_DECODE;
  *n = len / SHORT_ID;
  return KITH_OK;
}

static kith_err on_ihave(kith_gossip *g, gpeer *p, const uint8_t from[32],
                         const msgpack_object *f, uint32_t nf, uint64_t now,
                         kith_out *out) {
  size_t n, nh;
  const uint8_t *ids, *hops;
  if (nf != 3 || read_short_ids(&f[1], &ids, &n) != KITH_OK ||
      kith_codec_bin(&f[2], KITH_GOSSIP_IDS_MAX, &hops, &nh) != KITH_OK ||
      nh != n)
    return KITH_ERR_DECODE;
  for (size_t i = 0; i < n; i++) {
    const uint8_t *id = ids + SHORT_ID * i;
    cached *c = g_hash_table_lookup(g->cache_pfx, id);
    note_holder(g, p, id, hops[i] & ~IHAVE_OWN);
    if (c == NULL && !g_hash_table_contains(g->seen_pfx, id)) {
      note_missing(g, from, id, hops[i], now);
      continue;
    }
    if (c == NULL || (!c->eph && gs_seen(g, c->id) != SEEN_VALID))
      continue;
    sample_early(g, c);
    maybe_rewire(g, p, c, hops[i] & ~IHAVE_OWN, out);
  }
  return KITH_OK;
}

/* Asks the caller to look up the nf ids gathered in *fetch (FETCH). */
static void flush_fetch(gpeer *p, uint8_t **fetch, size_t *nf, kith_out *out) {
  if (*nf > 0)
    (void)kith_out_push(out, KITH_OUT_FETCH, p->id, *fetch, 32 * *nf);
  else
    g_free(*fetch);
  *fetch = NULL;
  *nf = 0;
}

/* Sends p the listed events it asked for (GRAFT: short ids, push; WANT:
 * full ids, reply): from the cache, or looked up by the caller (FETCH),
 * in the order asked: a newcomer asks for a history parents first, and
 * holds only so many events whose parents have not come. */
static void answer(kith_gossip *g, gpeer *p, const uint8_t *ids, size_t n,
                   size_t idlen, int push, int dflt, kith_out *out) {
  uint8_t *fetch = NULL;
  size_t nf = 0;
  for (size_t i = 0; i < n; i++) {
    const uint8_t *id = ids + idlen * i, *full = id;
    cached *c = g_hash_table_lookup(idlen == 32 ? g->cache : g->cache_pfx, id);
    if (c != NULL) {
      tree *t = tree_for(g, c->tag);
      flush_fetch(p, &fetch, &nf, out); /* asked before this one */
      int kind = !push               ? PUSH_REPLY
                 : t != &g->dflt     ? PUSH_OWN
                 : dflt && p->active ? PUSH_DEFAULT
                                     : PUSH_REPAIR;
      send_payload(g, p->id, c->tag, c->hops + 1, kind, c->eph, c->data, c->len,
                   out);
      if (push && p->active && t != &g->dflt)
        t->eager |= bit(g, p); /* the default tree: by the flag (on_graft) */
      continue;
    }
    if (idlen != 32)
      full = g_hash_table_lookup(g->seen_pfx, id);
    /* with the caller's known set (its store), a whole id not seen since
     * the start may be stored all the same: the caller looks it up */
    if (full != NULL &&
        (gs_seen(g, full) == SEEN_VALID ||
         (g->has_ext && idlen == 32 && gs_seen(g, full) == 0))) {
      if (fetch == NULL)
        fetch = g_malloc(32 * (n - i));
      memcpy(fetch + 32 * nf++, full, 32);
    }
  }
  flush_fetch(p, &fetch, &nf, out);
}

static kith_err on_graft(kith_gossip *g, gpeer *p, const msgpack_object *f,
                         uint32_t nf, kith_out *out) {
  const uint8_t *ids;
  const msgpack_object *tags;
  uint64_t dflt, tag;
  size_t n;
  if (nf != 4 || read_short_ids(&f[1], &ids, &n) != KITH_OK ||
      kith_codec_array(&f[2], UINT32_MAX, &tags) != KITH_OK ||
      f[2].via.array.size > KITH_GOSSIP_IDS_MAX ||
      kith_codec_uint(&f[3], 1, &dflt) != KITH_OK)
    return KITH_ERR_DECODE;
  for (uint32_t i = 0; i < f[2].via.array.size; i++)
    if (kith_codec_uint(&tags[i], UINT64_MAX, &tag) != KITH_OK)
      return KITH_ERR_DECODE;
  if (p == NULL)
    return KITH_OK;
  for (uint32_t i = 0; p->active && i < f[2].via.array.size; i++)
    edge(g, p, tags[i].via.u64, tags[i].via.u64 != 0, 1);
  if (dflt && p->active)
    g->dflt.eager |= bit(g, p);
  answer(g, p, ids, n, SHORT_ID, 1, (int)dflt, out);
  return KITH_OK;
}

static kith_err on_prune(kith_gossip *g, gpeer *p, const msgpack_object *f,
                         uint32_t nf) {
  uint64_t tag, own;
  if (nf != 3 || kith_codec_uint(&f[1], UINT64_MAX, &tag) != KITH_OK ||
      kith_codec_uint(&f[2], 1, &own) != KITH_OK)
    return KITH_ERR_DECODE;
  if (p != NULL && p->active)
    edge(g, p, tag, own && tag != 0, 0);
  return KITH_OK;
}

static kith_err on_want(kith_gossip *g, gpeer *p, const msgpack_object *f,
                        uint32_t nf, kith_out *out) {
  uint8_t(*ids)[32] = g_malloc_n(KITH_GOSSIP_IDS_MAX, 32);
  size_t n = 0;
  kith_err err = KITH_ERR_DECODE;
  if (nf == 2 && gs_read_ids(&f[1], KITH_GOSSIP_IDS_MAX, ids, &n) == KITH_OK) {
    err = KITH_OK;
    if (p != NULL)
      answer(g, p, ids[0], n, 32, 0, 0, out);
  }
  g_free(ids);
  return err;
}

kith_err pt_recv(kith_gossip *g, gpeer *p, const uint8_t from[32], int type,
                 const msgpack_object *f, uint32_t nf, uint64_t now,
                 kith_out *out) {
  switch (type) {
  case KITH_GF_PAYLOAD:
  case KITH_GF_EPHEMERAL:
    return on_payload(g, p, from, f, nf, type == KITH_GF_EPHEMERAL, now, out);
  case KITH_GF_IHAVE:
    return on_ihave(g, p, from, f, nf, now, out);
  case KITH_GF_GRAFT:
    return on_graft(g, p, f, nf, out);
  case KITH_GF_PRUNE:
    return on_prune(g, p, f, nf);
  case KITH_GF_WANT:
    return on_want(g, p, f, nf, out);
  default:
    return rc_recv(g, p, f, nf, now, out);
  }
}

kith_err kith_gossip_send_payload(kith_gossip *g, const uint8_t peer[32],
                                  const uint8_t *payload, size_t len,
                                  kith_out *out) {
  gpeer *p = gs_peer(g, peer);
  if (len > KITH_GOSSIP_MAX_PAYLOAD || (payload == NULL && len > 0))
    return KITH_ERR_ARG;
  if (p == NULL || !p->linked)
    return KITH_ERR_STATE;
  /* looked up in the store: its source is not known here */
  send_payload(g, peer, 0, 1, PUSH_REPLY, 0, payload, len, out);
  return KITH_OK;
}

/* ---- neighbours ---- */

/* A new neighbour is eager in every tree of its own (Plumtree): a
 * redundant edge costs one duplicate of that source's next message, which
 * prunes it in that source's tree only; a missing one would cost a
 * GRAFT's wait. In the default tree, which every source's first message
 * takes, a new neighbour is eager only until the first message of that
 * tree (whose duplicates make the tree), or if this node has no eager edge
 * at all (then it asks the neighbour to push everything to it as well):
 * once the tree is made, a redundant edge would cost a duplicate of the
 * next message of a new source, and a lost edge of the tree is replaced
 * when it goes (pt_neighbor_gone). */
void pt_neighbor_up(kith_gossip *g, gpeer *p, kith_out *out) {
  GHashTableIter it;
  gpointer v;
  int alone = g->dflt.eager == 0;
  if (alone || g->dflt.msgs == 0)
    g->dflt.eager |= bit(g, p);
  g_hash_table_iter_init(&it, g->trees);
  while (g_hash_table_iter_next(&it, NULL, &v))
    if (((tree *)v)->own)
      ((tree *)v)->eager |= bit(g, p);
  if (alone)
    send_graft(g, p, NULL, 0, NULL, 0, 1, out);
}

/* A neighbour leaves the active view: its edges go. An edge of the
 * default tree (once the tree is made) is replaced at once by another
 * neighbour's, lazy if there is one, which is asked to push the default
 * tree to this node: the parts of the tree on either side of the lost
 * edge stay joined without waiting for a GRAFT. A tree of its own in
 * which this node is left without an eager edge asks that neighbour to
 * push it as well, rather than wait for the next message's
 * announcement. */
void pt_neighbor_gone(kith_gossip *g, gpeer *p, kith_out *out) {
  uint64_t tags[KITH_GOSSIP_IDS_MAX], b = bit(g, p);
  size_t k = 0;
  GHashTableIter it;
  gpointer v;
  gpeer *r = replacement(g, p);
  int dflt = (g->dflt.eager & b) && (g->dflt.msgs > 0 || g->dflt.eager == b);
  g->dflt.eager &= ~b;
  g_hash_table_iter_init(&it, g->trees);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    tree *t = v;
    if (t->own && t->eager == b && k < KITH_GOSSIP_IDS_MAX)
      tags[k++] = t->tag;
    t->eager &= ~b;
  }
  if (r == NULL || (!dflt && k == 0))
    return;
  for (size_t i = 0; i < k; i++)
    tree_own(g, tags[i])->eager |= bit(g, r);
  if (dflt)
    g->dflt.eager |= bit(g, r);
  send_graft(g, r, NULL, 0, tags, k, dflt, out);
}

/* ---- time ---- */

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
    if (gs_seen(g, pe->id) == SEEN_PENDING)
      gs_seen_set(g, pe->id, 0);
    if (pe->forwarded)
      cache_drop(g, pe->id);
    g->st.overflows++;
    pt_free_pending(pe);
  }
  g_ptr_array_free(old, TRUE);
  g->pend_at = next == UINT64_MAX ? 0 : next;
}

void pt_tick(kith_gossip *g, uint64_t now, kith_out *out) {
  if (g->eph_at != 0 && now >= g->eph_at)
    expire_eph(g, now);
  if (g->pend_at != 0 && now >= g->pend_at)
    expire_pending(g, now);
  if (g->ihave_at != 0 && now >= g->ihave_at)
    flush_due_ihaves(g, now, out);
  if (g->missing_at != 0 && now >= g->missing_at)
    expire_missing(g, now, out);
  rc_tick(g, now, out);
  g->st.lazy_ms = (uint32_t)lazy_wait(g, 1);
}

uint64_t pt_deadline(const kith_gossip *g) {
  uint64_t d = UINT64_MAX;
  const uint64_t at[] = {g->ihave_at, g->pend_at, g->missing_at,
                         g->recon_at, g->eph_at,  rc_deadline(g)};
  for (size_t i = 0; i < G_N_ELEMENTS(at); i++)
    if (at[i] != 0 && at[i] < d)
      d = at[i];
  return d;
}
