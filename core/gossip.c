/* kith: gossip engine: lifecycle, peers, framing, input dispatch.
 * The overlay (HyParView) is in gossip_overlay.c, dissemination and
 * anti-entropy (Plumtree, reconciliation) in gossip_plum.c. */
#include "gossip_int.h"

#include <string.h>

void kith_gossip_config_default(kith_gossip_config *cfg) {
  *cfg = (kith_gossip_config){
      .active_max = KITH_GOSSIP_ACTIVE_MAX,
      .passive_max = KITH_GOSSIP_PASSIVE_MAX,
      .arwl = 6,
      .prwl = 3,
      .lazy_timeout_ms = 500,
      .lazy_min_ms = 40,
      .announce_max = 3,
      .flood_first_max = 2 * KITH_GOSSIP_ACTIVE_MAX,
      .graft_retry_ms = 300,
      .ihave_batch_ms = 50,
      .repair_ms = 1000,
      .shuffle_ms = 10000,
      .recon_ms = 5000,
      .connect_timeout_ms = 5000,
      .idle_ms = 10000,
  };
}

static int config_ok(const kith_gossip_config *c) {
  return c->active_max >= 1 && c->active_max <= KITH_GOSSIP_ACTIVE_CAP &&
         c->passive_max >= 1 && c->passive_max <= KITH_GOSSIP_PASSIVE_CAP &&
         c->arwl <= TTL_MAX && c->prwl <= c->arwl && c->repair_ms > 0 &&
         c->connect_timeout_ms > 0 && c->ihave_batch_ms > 0 &&
         c->lazy_min_ms <= c->lazy_timeout_ms;
}

/* Ids are hashes or random: mixing all words still keeps structured test
 * ids from colliding in one bucket. */
guint gs_id_hash(gconstpointer k) {
  const uint8_t *b = k;
  uint64_t h = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 32; i += 8) {
    uint64_t w;
    memcpy(&w, b + i, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
  }
  return (guint)h;
}

gboolean gs_id_equal(gconstpointer a, gconstpointer b) {
  return memcmp(a, b, 32) == 0;
}

/* Short ids: the first SHORT_ID bytes of an id (or of a longer key). */
guint gs_pfx_hash(gconstpointer k) {
  uint64_t w;
  memcpy(&w, k, 8);
  w = (w ^ (w >> 31)) * 0xbf58476d1ce4e5b9ull;
  return (guint)(w ^ (w >> 29));
}

gboolean gs_pfx_equal(gconstpointer a, gconstpointer b) {
  return memcmp(a, b, SHORT_ID) == 0;
}

static uint64_t tag_of(const uint8_t id[32]) {
  uint64_t t = 0;
  for (int i = 0; i < 8; i++)
    t = t << 8 | id[i];
  return t;
}

kith_gossip *kith_gossip_new(const uint8_t self[32], uint64_t seed,
                             const kith_gossip_config *cfg) {
  kith_gossip_config def;
  kith_gossip_config_default(&def);
  if (cfg == NULL)
    cfg = &def;
  if (!config_ok(cfg))
    return NULL;
  kith_gossip *g = g_new0(kith_gossip, 1);
  memcpy(g->self, self, 32);
  g->self_tag = tag_of(self);
  g->cfg = *cfg;
  g->rng = seed ^ 0x5851f42d4c957f2dull;
  (void)gs_rand(g);
  g->seen = g_hash_table_new_full(gs_id_hash, gs_id_equal, g_free, NULL);
  g->seen_pfx = g_hash_table_new(gs_pfx_hash, gs_pfx_equal);
  g_queue_init(&g->seen_fifo);
  g->cache =
      g_hash_table_new_full(gs_id_hash, gs_id_equal, NULL, pt_free_cached);
  g->cache_pfx = g_hash_table_new(gs_pfx_hash, gs_pfx_equal);
  g->trees = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL, g_free);
  g_queue_init(&g->cache_fifo);
  g_queue_init(&g->eph_fifo);
  g->pend =
      g_hash_table_new_full(gs_id_hash, gs_id_equal, NULL, pt_free_pending);
  g->pend_by = g_hash_table_new_full(gs_id_hash, gs_id_equal, NULL, g_free);
  g->missing = g_hash_table_new_full(gs_pfx_hash, gs_pfx_equal, NULL, g_free);
  g->asked = g_hash_table_new(gs_id_hash, gs_id_equal);
  g_queue_init(&g->asked_fifo);
  g->known = kith_recon_set_new();
  g->src = kith_recon_set_source(g->known);
  return g;
}

void kith_gossip_free(kith_gossip *g) {
  if (g == NULL)
    return;
  for (uint32_t i = 0; i < PEERS_MAX; i++) {
    g_free(g->peers[i].lazy);
    kith_recon_free(g->peers[i].rs[0]);
    kith_recon_free(g->peers[i].rs[1]);
    if (g->peers[i].need != NULL)
      g_byte_array_free(g->peers[i].need, TRUE);
  }
  g_queue_clear(&g->seen_fifo); /* keys are owned by the table */
  g_hash_table_destroy(g->seen_pfx);
  g_hash_table_destroy(g->seen);
  g_queue_clear(&g->cache_fifo);
  g_queue_clear(&g->eph_fifo); /* entries are owned by the cache */
  g_hash_table_destroy(g->cache_pfx);
  g_hash_table_destroy(g->cache);
  g_hash_table_destroy(g->trees);
  g_hash_table_destroy(g->pend);
  g_hash_table_destroy(g->pend_by);
  g_hash_table_destroy(g->missing);
  g_hash_table_destroy(g->asked);
  g_queue_clear_full(&g->asked_fifo, g_free);
  kith_recon_set_free(g->known);
  g_free(g);
}

/* xorshift64*: small, fast, and reproducible from the seed. */
uint64_t gs_rand(kith_gossip *g) {
  g->rng ^= g->rng >> 12;
  g->rng ^= g->rng << 25;
  g->rng ^= g->rng >> 27;
  return g->rng * 0x2545f4914f6cdd1dull;
}

uint32_t gs_below(kith_gossip *g, uint32_t n) {
  return n == 0 ? 0 : (uint32_t)((gs_rand(g) >> 32) % n);
}

/* A period with +-25% jitter, so that nodes do not act in lockstep. */
uint64_t gs_jitter(kith_gossip *g, uint32_t period) {
  uint32_t half = period / 2;
  return (uint64_t)period - period / 4 + gs_below(g, half ? half : 1);
}

/* Timers start with the first input that tells the time. */
void gs_arm(kith_gossip *g, uint64_t now) {
  if (g->shuffle_at == 0 && g->cfg.shuffle_ms > 0)
    g->shuffle_at = now + gs_jitter(g, g->cfg.shuffle_ms);
  if (g->recon_at == 0 && g->cfg.recon_ms > 0)
    g->recon_at = now + gs_jitter(g, g->cfg.recon_ms);
}

gpeer *gs_peer(kith_gossip *g, const uint8_t id[32]) {
  for (uint32_t i = 0; i < PEERS_MAX; i++)
    if (g->peers[i].used && memcmp(g->peers[i].id, id, 32) == 0)
      return &g->peers[i];
  return NULL;
}

gpeer *gs_peer_add(kith_gossip *g, const uint8_t id[32], uint64_t now) {
  gpeer *p = gs_peer(g, id);
  if (p != NULL)
    return p;
  if (memcmp(id, g->self, 32) == 0)
    return NULL;
  for (uint32_t i = 0; i < PEERS_MAX; i++) {
    if (!g->peers[i].used) {
      p = &g->peers[i];
      lazy_ent *lazy = p->lazy;
      uint32_t cap = p->cap_lazy;
      memset(p, 0, sizeof *p);
      p->lazy = lazy; /* keep the buffer for reuse */
      p->cap_lazy = cap;
      memcpy(p->id, id, 32);
      p->used = 1;
      p->since = now;
      g->n_peers++;
      return p;
    }
  }
  g->st.overflows++;
  return NULL;
}

void gs_peer_drop(kith_gossip *g, gpeer *p, kith_out *out) {
  if (p->active)
    pt_neighbor_gone(g, p, out);
  rc_peer_gone(g, p);
  p->used = 0;
  p->active = p->linked = 0;
  p->n_lazy = 0; /* announcements lost; anti-entropy covers them */
  p->lazy_at = 0;
  g->n_peers--;
}

int gs_seen(kith_gossip *g, const uint8_t id[32]) {
  return GPOINTER_TO_INT(g_hash_table_lookup(g->seen, id));
}

/* Remembers id (FIFO-bounded): receiving an event twice changes nothing.
 * State 0 forgets it (it may be received again). */
void gs_seen_set(kith_gossip *g, const uint8_t id[32], int state) {
  gpointer key;
  if (g_hash_table_lookup_extended(g->seen, id, &key, NULL)) {
    /* the table keeps its key (pointed to by seen_pfx and the FIFO) and
     * frees the copy given here */
    g_hash_table_insert(g->seen, g_memdup2(id, 32), GINT_TO_POINTER(state));
    if (state == 0 && g_hash_table_lookup(g->seen_pfx, key) == key)
      g_hash_table_remove(g->seen_pfx, key);
    else if (state != 0 && !g_hash_table_contains(g->seen_pfx, key))
      g_hash_table_insert(g->seen_pfx, key, key);
    return;
  }
  if (state == 0)
    return;
  key = g_memdup2(id, 32);
  g_hash_table_insert(g->seen, key, GINT_TO_POINTER(state));
  if (!g_hash_table_contains(g->seen_pfx, key))
    g_hash_table_insert(g->seen_pfx, key, key);
  g_queue_push_tail(&g->seen_fifo, key);
  if (g_queue_get_length(&g->seen_fifo) > KITH_GOSSIP_SEEN_MAX) {
    gpointer old = g_queue_pop_head(&g->seen_fifo);
    if (g_hash_table_lookup(g->seen_pfx, old) == old)
      g_hash_table_remove(g->seen_pfx, old);
    g_hash_table_remove(g->seen, old);
  }
}

uint32_t gs_active_list(kith_gossip *g, gpeer **list) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < PEERS_MAX; i++)
    if (g->peers[i].used && g->peers[i].active)
      list[n++] = &g->peers[i];
  return n;
}

/* Round trips (ms) of NEIGHBOR/JOIN answers and of GRAFT and WANT
 * answers: an average (EWMA, 1/8), for the lazy wait (gossip_plum.c). */
void gs_rtt_sample(kith_gossip *g, uint64_t ms) {
  g->rtt8 = g->rtt8 == 0 ? ms * 8 : g->rtt8 - g->rtt8 / 8 + ms;
}

gpeer *gs_random_active(kith_gossip *g) {
  gpeer *list[PEERS_MAX];
  uint32_t n = gs_active_list(g, list);
  return n == 0 ? NULL : list[gs_below(g, n)];
}

/* Only linked peers can be sent to: the caller has no other path. */
void gs_send(kith_gossip *g, const uint8_t peer[32], kith_pack *pk,
             kith_out *out) {
  uint8_t *buf = NULL;
  size_t len = 0;
  gpeer *p = gs_peer(g, peer);
  if (kith_pack_take(pk, &buf, &len) != KITH_OK || p == NULL || !p->linked) {
    g_free(buf);
    return;
  }
  (void)kith_out_push(out, KITH_OUT_SEND, peer, buf, len);
}

void gs_send_ids(kith_gossip *g, const uint8_t peer[32], int type,
                 const uint8_t *ids, size_t n, kith_out *out) {
  while (n > 0) {
    size_t k = n < KITH_GOSSIP_IDS_MAX ? n : KITH_GOSSIP_IDS_MAX;
    kith_pack pk;
    kith_pack_init(&pk);
    kith_pack_array(&pk, 2);
    kith_pack_uint(&pk, (uint64_t)type);
    kith_pack_array(&pk, (uint32_t)k);
    for (size_t i = 0; i < k; i++)
      kith_pack_bin(&pk, ids + 32 * i, 32);
    gs_send(g, peer, &pk, out);
    ids += 32 * k;
    n -= k;
  }
}

/* Frames of the form [type] or [type, small uint] (arg < 0: none). */
void gs_send_simple(kith_gossip *g, const uint8_t peer[32], int type, int arg,
                    kith_out *out) {
  kith_pack pk;
  kith_pack_init(&pk);
  kith_pack_array(&pk, arg < 0 ? 1 : 2);
  kith_pack_uint(&pk, (uint64_t)type);
  if (arg >= 0)
    kith_pack_uint(&pk, (uint64_t)arg);
  gs_send(g, peer, &pk, out);
}

kith_err gs_read_ids(const msgpack_object *o, size_t max, uint8_t (*buf)[32],
                     size_t *n) {
  const msgpack_object *items;
  if (kith_codec_array(o, UINT32_MAX, &items) != KITH_OK ||
      o->via.array.size > max)
    return KITH_ERR_DECODE;
  for (uint32_t i = 0; i < o->via.array.size; i++)
    if (kith_codec_bin_fixed(&items[i], buf[i], 32) != KITH_OK)
      return KITH_ERR_DECODE;
  *n = o->via.array.size;
  return KITH_OK;
}

int kith_gossip_frame_type(const uint8_t *buf, size_t len) {
  if (buf == NULL || len < 2 || buf[0] < 0x91 || buf[0] > 0x9f || buf[1] > 0x7f)
    return -1;
  return buf[1];
}

static kith_err dispatch(kith_gossip *g, const uint8_t from[32],
                         const msgpack_object *root, uint64_t now,
                         kith_out *out) {
  const msgpack_object *f;
  uint64_t type;
  if (kith_codec_array(root, UINT32_MAX, &f) != KITH_OK ||
      root->via.array.size < 1 || kith_codec_uint(&f[0], 255, &type) != KITH_OK)
    return KITH_ERR_DECODE;
  uint32_t nf = root->via.array.size;
  gpeer *p = gs_peer(g, from);
  if (p != NULL && !p->linked)
    p = NULL; /* frames only count as overlay input on a live link */
  if (type >= KITH_GF_JOIN && type <= KITH_GF_SHUFFLE_REPLY)
    return ov_recv(g, p, from, (int)type, f, nf, now, out);
  if (type >= KITH_GF_PAYLOAD && type <= KITH_GF_EPHEMERAL)
    return pt_recv(g, p, from, (int)type, f, nf, now, out);
  g->st.unknown++;
  return KITH_OK;
}

kith_err kith_gossip_recv(kith_gossip *g, const uint8_t peer[32],
                          const uint8_t *buf, size_t len, uint64_t now_ms,
                          kith_out *out) {
  if (buf == NULL || len == 0 || len > KITH_GOSSIP_MAX_FRAME ||
      memcmp(peer, g->self, 32) == 0) {
    g->st.malformed++;
    return KITH_ERR_DECODE;
  }
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  kith_err err = kith_codec_unpack(buf, len, &u);
  if (err == KITH_OK)
    err = dispatch(g, peer, &u.data, now_ms, out);
  msgpack_unpacked_destroy(&u);
  if (err == KITH_ERR_DECODE || err == KITH_ERR_LIMIT)
    g->st.malformed++;
  return err == KITH_ERR_LIMIT ? KITH_ERR_DECODE : err;
}

void kith_gossip_link_up(kith_gossip *g, const uint8_t peer[32],
                         uint64_t now_ms, kith_out *out) {
  gpeer *p = gs_peer_add(g, peer, now_ms);
  if (p == NULL) {
    /* no room to track another link: the caller may close it */
    if (memcmp(peer, g->self, 32) != 0)
      (void)kith_out_push(out, KITH_OUT_DISCONNECT, peer, NULL, 0);
    return;
  }
  if (!p->linked) {
    p->linked = 1;
    p->since = now_ms;
  }
  ov_link_up(g, p, now_ms, out);
}

void kith_gossip_link_down(kith_gossip *g, const uint8_t peer[32],
                           uint64_t now_ms, kith_out *out) {
  ov_link_down(g, peer, now_ms, out);
}

void kith_gossip_tick(kith_gossip *g, uint64_t now_ms, kith_out *out) {
  ov_tick(g, now_ms, out);
  pt_tick(g, now_ms, out);
}

uint64_t kith_gossip_next_deadline(const kith_gossip *g) {
  uint64_t a = ov_deadline(g), b = pt_deadline(g);
  return a < b ? a : b;
}

void kith_gossip_get_stats(const kith_gossip *g, kith_gossip_stats *st) {
  *st = g->st;
  st->active = st->eager = 0;
  for (uint32_t i = 0; i < PEERS_MAX; i++) {
    const gpeer *p = &g->peers[i];
    if (p->used && p->active) {
      st->active++;
      st->eager += (g->dflt.eager >> i) & 1;
    }
  }
  st->trees = g_hash_table_size(g->trees);
  st->passive = g->n_passive;
}

size_t kith_gossip_active(const kith_gossip *g, uint8_t (*peers)[32],
                          size_t max) {
  size_t n = 0;
  for (uint32_t i = 0; i < PEERS_MAX; i++) {
    const gpeer *p = &g->peers[i];
    if (p->used && p->active) {
      if (n < max)
        memcpy(peers[n], p->id, 32);
      n++;
    }
  }
  return n;
}

int kith_gossip_peer_state(const kith_gossip *g, const uint8_t peer[32]) {
  for (uint32_t i = 0; i < PEERS_MAX; i++) {
    const gpeer *p = &g->peers[i];
    if (p->used && p->active && memcmp(p->id, peer, 32) == 0)
      return (int)((g->dflt.eager >> i) & 1);
  }
  return -1;
}
