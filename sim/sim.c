/* kith-sim: the simulation proper (see sim.h). */
#include "sim.h"

#include <glib.h>
#include <string.h>

#include "core/gossip.h"
#include "core/presence.h"

enum {
  EV_FRAME,
  EV_UP,
  EV_DOWN,
  EV_TIMER,
  EV_JOIN,
  EV_PUBLISH,
  EV_CRASH,
  EV_MEMBERS,
  EV_BEAT
};

typedef struct ev {
  uint64_t t, seq;
  uint32_t type, node, peer, len;
  uint8_t *data;
} ev;

typedef struct node {
  kith_gossip *g;
  uint64_t timer_at; /* UINT64_MAX: none queued */
  uint32_t *adj;     /* linked peers */
  uint32_t n_adj, cap_adj;
  uint8_t alive, doomed;
  uint8_t late, joined; /* joins after the last message; has joined */
} node;

typedef struct sim {
  const sim_params *p;
  uint64_t now, seq, rng;
  ev *heap;
  size_t n_heap, cap_heap;
  node *nodes;
  uint8_t *got; /* nodes x messages: delivered */
  uint8_t *hops;
  uint32_t *lat;
  uint64_t *copies;
  uint64_t *pub_t;
  uint32_t *publisher;
  uint32_t published;
  uint64_t bytes, frames, events, bad_frames;
  uint64_t beat_from, beat_to, beat_period; /* the beats' measured window */
  uint64_t beat_bytes, beat_frames, beats_sent, beats_expected;
  uint64_t beats_delivered;
  uint8_t *cell_copies;  /* nodes x messages: payload frames received */
  uint8_t (*msg_id)[32]; /* id of each message (BLAKE2b of its payload) */
  GHashTable *by_id;     /* message id -> index + 1 */
  uint8_t payload[SIM_MAX_PAYLOAD];
  kith_out out;
} sim;

static uint64_t rnd(sim *s) {
  s->rng ^= s->rng >> 12;
  s->rng ^= s->rng << 25;
  s->rng ^= s->rng >> 27;
  return s->rng * 0x2545f4914f6cdd1dull;
}

static double rnd01(sim *s) {
  return (double)(rnd(s) >> 11) / (double)(1ull << 53);
}

static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* Node ids: the first 4 bytes are the index (the simulator maps back with
 * them); the rest is seeded noise, so engines see realistic, distinct ids.
 * Message ids are what the engine computes: BLAKE2b-256 of the payload,
 * whose first 4 bytes are the message index. */
static void make_id(uint64_t seed, uint32_t idx, uint8_t tag, uint8_t id[32]) {
  for (int i = 0; i < 4; i++) {
    uint64_t w = mix(seed ^ ((uint64_t)tag << 56) ^ ((uint64_t)idx << 8) ^ i);
    memcpy(id + 8 * i, &w, 8);
  }
  id[0] = (uint8_t)(idx >> 24);
  id[1] = (uint8_t)(idx >> 16);
  id[2] = (uint8_t)(idx >> 8);
  id[3] = (uint8_t)idx;
}

static uint32_t id_index(const uint8_t id[32]) {
  return (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 | (uint32_t)id[2] << 8 |
         id[3];
}

/* Per-link latency: L +- L/2, fixed per link, so each link is FIFO. */
static uint64_t latency(sim *s, uint32_t a, uint32_t b) {
  uint32_t L = s->p->latency_ms;
  if (L == 0)
    return 0;
  uint64_t lo = a < b ? a : b, hi = a < b ? b : a;
  uint64_t h = mix(s->p->seed ^ (lo << 32 | hi));
  return L - L / 2 + h % (L + 1);
}

static guint id32_hash(gconstpointer k) {
  guint h;
  memcpy(&h, (const uint8_t *)k + 4, sizeof h); /* hash bytes: uniform */
  return h;
}

static gboolean id32_equal(gconstpointer a, gconstpointer b) {
  return memcmp(a, b, 32) == 0;
}

static int ev_less(const ev *a, const ev *b) {
  return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void push(sim *s, uint64_t t, uint32_t type, uint32_t who, uint32_t peer,
                 uint8_t *data, uint32_t len) {
  if (s->n_heap == s->cap_heap) {
    s->cap_heap = s->cap_heap ? s->cap_heap * 2 : 1024;
    s->heap = g_renew(ev, s->heap, s->cap_heap);
  }
  size_t i = s->n_heap++;
  ev e = {t, s->seq++, type, who, peer, len, data};
  while (i > 0 && ev_less(&e, &s->heap[(i - 1) / 2])) {
    s->heap[i] = s->heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  s->heap[i] = e;
}

static ev pop(sim *s) {
  ev top = s->heap[0], last = s->heap[--s->n_heap];
  size_t i = 0, n = s->n_heap;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n)
      break;
    if (c + 1 < n && ev_less(&s->heap[c + 1], &s->heap[c]))
      c++;
    if (!ev_less(&s->heap[c], &last))
      break;
    s->heap[i] = s->heap[c];
    i = c;
  }
  if (n > 0)
    s->heap[i] = last;
  return top;
}

static int linked(sim *s, uint32_t a, uint32_t b) {
  node *n = &s->nodes[a];
  for (uint32_t i = 0; i < n->n_adj; i++)
    if (n->adj[i] == b)
      return 1;
  return 0;
}

static void adj_add(node *n, uint32_t b) {
  if (n->n_adj == n->cap_adj) {
    n->cap_adj = n->cap_adj ? n->cap_adj * 2 : 8;
    n->adj = g_renew(uint32_t, n->adj, n->cap_adj);
  }
  n->adj[n->n_adj++] = b;
}

static void adj_del(node *n, uint32_t b) {
  for (uint32_t i = 0; i < n->n_adj; i++)
    if (n->adj[i] == b) {
      n->adj[i] = n->adj[--n->n_adj];
      return;
    }
}

static void fill_payload(sim *s, uint32_t m) {
  for (uint32_t i = 0; i < s->p->payload_bytes; i++)
    s->payload[i] = (uint8_t)(mix(m * 7919ull + i) & 0xff);
  for (uint32_t i = 0; i < 4 && i < s->p->payload_bytes; i++)
    s->payload[i] = (uint8_t)(m >> (24 - 8 * i));
}

/* The message a payload carries (UINT32_MAX: none). */
static uint32_t payload_msg(sim *s, const uint8_t *p, size_t len) {
  uint32_t m = len >= 4 ? id_index(p) : UINT32_MAX;
  return m < s->published ? m : UINT32_MAX;
}

/* Bytes of the msgpack uint at f (0 if it is not one). */
static size_t uint_len(uint8_t b) {
  if (b < 0x80)
    return 1;
  return b >= 0xcc && b <= 0xcf ? 1 + (1u << (b - 0xcc)) : 0;
}

/* The payload inside a PAYLOAD frame [8, source, hops, push, bin], read
 * without decoding it all (the engine checks the frame itself). */
static uint32_t frame_msg(sim *s, const uint8_t *f, size_t len) {
  size_t k = 2;
  if (len < 8 || f[0] != 0x95 || f[1] != KITH_GF_PAYLOAD)
    return UINT32_MAX;
  for (int field = 0; field < 3 && k < len; field++) /* source, hops, push */
    k += uint_len(f[k]) ? uint_len(f[k]) : len;
  if (k + 3 > len)
    return UINT32_MAX;
  k += f[k] == 0xc4 ? 2 : f[k] == 0xc5 ? 3 : 5; /* bin header */
  return k <= len ? payload_msg(s, f + k, len - k) : UINT32_MAX;
}

static void on_deliver(sim *s, uint32_t i, const kith_out_item *it) {
  uint32_t m = payload_msg(s, it->data, it->len);
  if (m == UINT32_MAX)
    return;
  size_t c = (size_t)i * s->p->messages + m;
  if (!s->got[c]) {
    s->got[c] = 1;
    s->hops[c] = (uint8_t)(it->hops > 255 ? 255 : it->hops);
    s->lat[c] = (uint32_t)(s->now - s->pub_t[m]);
  }
}

static void on_fetch(sim *s, uint32_t i, const kith_out_item *it, kith_out *o) {
  for (size_t k = 0; k + 32 <= it->len; k += 32) {
    uint32_t m =
        GPOINTER_TO_UINT(g_hash_table_lookup(s->by_id, it->data + k)) - 1;
    if (m >= s->published || !s->got[(size_t)i * s->p->messages + m])
      continue;
    fill_payload(s, m);
    if (kith_gossip_send_payload(s->nodes[i].g, it->peer, s->payload,
                                 s->p->payload_bytes, o) != KITH_OK)
      continue;
  }
}

static void on_connect(sim *s, uint32_t i, uint32_t j) {
  if (!s->nodes[j].alive) {
    push(s, s->now + 2 * latency(s, i, j) + 1000, EV_DOWN, i, j, NULL, 0);
  } else if (linked(s, i, j)) {
    push(s, s->now, EV_UP, i, j, NULL, 0);
  } else { /* a handshake: the callee sees it first */
    adj_add(&s->nodes[i], j);
    adj_add(&s->nodes[j], i);
    push(s, s->now + latency(s, i, j), EV_UP, j, i, NULL, 0);
    push(s, s->now + 2 * latency(s, i, j), EV_UP, i, j, NULL, 0);
  }
}

static void on_send(sim *s, uint32_t i, uint32_t j, kith_out *o, size_t k) {
  uint32_t len = (uint32_t)o->items[k].len;
  if (s->published > 0) {
    s->bytes += len;
    s->frames++;
  }
  if (s->now >= s->beat_from && s->now < s->beat_to) {
    s->beat_bytes += len;
    s->beat_frames++;
  }
  if (s->p->loss > 0 && rnd01(s) < s->p->loss)
    return;
  push(s, s->now + latency(s, i, j), EV_FRAME, j, i, kith_out_take_data(o, k),
       len);
}

/* Carries out node i's outputs; verdicts and fetch answers produce more,
 * handled in the same way until none are left. */
static void apply(sim *s, uint32_t i, kith_out *o) {
  kith_out next;
  kith_out_init(&next);
  for (size_t k = 0; k < o->n; k++) {
    const kith_out_item *it = &o->items[k];
    uint32_t j = id_index(it->peer);
    switch (it->kind) {
    case KITH_OUT_SEND:
      on_send(s, i, j, o, k);
      break;
    case KITH_OUT_DELIVER: {
      if (it->ephemeral) { /* a beat: valid, not a message */
        s->beats_delivered++;
        kith_gossip_verdict(s->nodes[i].g, it->id, KITH_GOSSIP_VALID, 0, s->now,
                            &next);
        break;
      }
      uint32_t m = payload_msg(s, it->data, it->len);
      on_deliver(s, i, it);
      kith_gossip_verdict(s->nodes[i].g, it->id, KITH_GOSSIP_VALID,
                          m == UINT32_MAX ? 0 : s->pub_t[m], s->now, &next);
      break;
    }
    case KITH_OUT_CONNECT:
      on_connect(s, i, j);
      break;
    case KITH_OUT_DISCONNECT:
      if (linked(s, i, j)) {
        adj_del(&s->nodes[i], j);
        adj_del(&s->nodes[j], i);
        push(s, s->now + latency(s, i, j), EV_DOWN, j, i, NULL, 0);
      }
      break;
    case KITH_OUT_FETCH:
      on_fetch(s, i, it, &next);
      break;
    default:
      break;
    }
  }
  kith_out_reset(o);
  if (next.n > 0)
    apply(s, i, &next);
  kith_out_clear(&next);
}

static void drain(sim *s, uint32_t i) {
  apply(s, i, &s->out);
  node *n = &s->nodes[i];
  uint64_t d = kith_gossip_next_deadline(n->g);
  if (d < s->now)
    d = s->now;
  if (d != UINT64_MAX &&
      (n->timer_at == UINT64_MAX || d < n->timer_at || n->timer_at < s->now)) {
    n->timer_at = d;
    push(s, d, EV_TIMER, i, 0, NULL, 0);
  }
}

static void do_join(sim *s, uint32_t i) {
  uint8_t id[32];
  node *n = &s->nodes[i];
  n->joined = 1;
  uint32_t want = s->p->contacts < i ? s->p->contacts : i;
  for (uint32_t k = 0; k < want; k++) {
    uint32_t c = (uint32_t)(rnd(s) % i);
    make_id(s->p->seed, c, 0x11, id);
    if (k == 0) {
      if (kith_gossip_join(n->g, id, s->now, &s->out) != KITH_OK)
        continue;
    } else {
      kith_gossip_add_passive(n->g, id);
    }
  }
  drain(s, i);
}

/* What the group's member list gives a node (net/gossip.c adds every
 * member to the engine's passive view): up to a passive view of others. */
static void learn_members(sim *s, uint32_t i) {
  uint8_t id[32];
  uint32_t n = s->p->nodes - 1;
  for (uint32_t k = 0; k < KITH_GOSSIP_PASSIVE_MAX && k < n; k++) {
    uint32_t c = n <= KITH_GOSSIP_PASSIVE_MAX ? k : (uint32_t)(rnd(s) % n);
    make_id(s->p->seed, c >= i ? c + 1 : c, 0x11, id);
    kith_gossip_add_passive(s->nodes[i].g, id);
  }
}

static uint32_t random_live(sim *s) {
  for (;;) {
    uint32_t i = (uint32_t)(rnd(s) % s->p->nodes);
    if (s->nodes[i].alive && s->nodes[i].joined)
      return i;
  }
}

static void do_publish(sim *s, uint32_t m) {
  uint32_t i = random_live(s);
  fill_payload(s, m);
  kith_gossip_payload_id(s->payload, s->p->payload_bytes, s->msg_id[m]);
  g_hash_table_insert(s->by_id, s->msg_id[m], GUINT_TO_POINTER(m + 1));
  s->pub_t[m] = s->now;
  s->publisher[m] = i;
  s->published = m + 1;
  s->got[(size_t)i * s->p->messages + m] = 1;
  if (kith_gossip_publish(s->nodes[i].g, s->now, s->payload,
                          s->p->payload_bytes, s->now, &s->out) != KITH_OK)
    return;
  drain(s, i);
}

/* P +- 25 %, as net/presence.c jitters it. */
static uint64_t beat_gap(sim *s) {
  uint64_t span = s->beat_period * KITH_PRESENCE_JITTER_PCT / 100;
  return s->beat_period - span + rnd(s) % (2 * span + 1);
}

/* Node i's next beat: KITH_BEAT_MAX bytes, starting ff ff ff ff (no
 * message index), then the node and a count, as unique as a real one. */
static void do_beat(sim *s, uint32_t i) {
  uint8_t b[KITH_BEAT_MAX];
  uint64_t c = s->beats_sent++;
  memset(b, 0xff, 4);
  for (uint32_t k = 4; k < sizeof b; k++)
    b[k] = (uint8_t)(mix(c * 131 + k) & 0xff);
  memcpy(b + 4, &i, sizeof i);
  memcpy(b + 8, &c, sizeof c);
  s->beats_expected += s->nodes[i].joined ? s->p->nodes - 1 : 0;
  if (s->nodes[i].joined &&
      kith_gossip_publish_ephemeral(s->nodes[i].g, b, sizeof b, s->now,
                                    &s->out) == KITH_OK)
    drain(s, i);
  if (s->now + s->beat_period < s->beat_to)
    push(s, s->now + beat_gap(s), EV_BEAT, i, 0, NULL, 0);
}

static void do_crash(sim *s, uint32_t i) {
  node *n = &s->nodes[i];
  n->alive = 0;
  for (uint32_t k = 0; k < n->n_adj; k++) {
    uint32_t j = n->adj[k];
    adj_del(&s->nodes[j], i);
    push(s, s->now + s->p->detect_ms, EV_DOWN, j, i, NULL, 0);
  }
  n->n_adj = 0;
}

static void step(sim *s, ev *e) {
  uint8_t peer[32];
  node *n = &s->nodes[e->node];
  s->events++;
  if (!n->alive && e->type != EV_PUBLISH)
    return;
  make_id(s->p->seed, e->peer, 0x11, peer);
  switch (e->type) {
  case EV_FRAME:
    if (kith_gossip_frame_type(e->data, e->len) == KITH_GF_PAYLOAD) {
      s->copies[e->node]++;
      uint32_t m = frame_msg(s, e->data, e->len);
      uint8_t *c = m != UINT32_MAX
                       ? &s->cell_copies[(size_t)e->node * s->p->messages + m]
                       : NULL;
      if (c != NULL && *c < UINT8_MAX)
        (*c)++;
    }
    if (kith_gossip_recv(n->g, peer, e->data, e->len, s->now, &s->out) !=
        KITH_OK)
      s->bad_frames++;
    break;
  case EV_UP: {
    if (!linked(s, e->node, e->peer))
      return; /* closed again meanwhile */
    kith_gossip_link_up(n->g, peer, s->now, &s->out);
    /* as the node does: a new link is reconciled at once (STATE: the
     * engine had no room to track it) */
    kith_err err = kith_gossip_reconcile(n->g, peer, s->now, &s->out);
    (void)err;
    break;
  }
  case EV_DOWN:
    if (linked(s, e->node, e->peer))
      return; /* stale: a new link exists */
    kith_gossip_link_down(n->g, peer, s->now, &s->out);
    break;
  case EV_TIMER:
    if (e->t != n->timer_at)
      return; /* superseded */
    n->timer_at = UINT64_MAX;
    kith_gossip_tick(n->g, s->now, &s->out);
    break;
  case EV_JOIN:
    do_join(s, e->node);
    return;
  case EV_PUBLISH:
    do_publish(s, e->peer);
    return;
  case EV_CRASH:
    do_crash(s, e->node);
    return;
  case EV_MEMBERS:
    learn_members(s, e->node);
    break;
  case EV_BEAT:
    do_beat(s, e->node);
    return;
  }
  drain(s, e->node);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *v, size_t n, unsigned p) {
  if (n == 0)
    return 0;
  size_t k = (n * p + 99) / 100; /* nearest rank */
  return v[k > 0 ? k - 1 : 0];
}

static void measure(sim *s, sim_result *r) {
  uint32_t N = s->p->nodes, M = s->p->messages;
  uint64_t *hv = g_new(uint64_t, (size_t)N * M + 1);
  uint64_t *lv = g_new(uint64_t, (size_t)N * M + 1);
  size_t nv = 0;
  for (uint32_t i = 0; i < N; i++) {
    node *n = &s->nodes[i];
    if (!n->alive)
      continue;
    r->live++;
    r->copies += s->copies[i];
    kith_gossip_stats st;
    kith_gossip_get_stats(n->g, &st);
    r->grafts += st.grafts_sent;
    r->prunes += st.prunes_sent;
    r->recon_rounds += st.recon_rounds;
    r->malformed += st.malformed;
    r->active_avg += st.active;
    r->late += n->late;
    if (st.active > r->active_max_seen)
      r->active_max_seen = st.active;
    for (uint32_t m = 0; m < s->published; m++) {
      size_t c = (size_t)i * M + m;
      if (s->publisher[m] == i)
        continue;
      r->expected++;
      if (m > 0) {
        r->expected_later++;
        r->copies_later += s->cell_copies[c];
      }
      r->late_expected += n->late;
      if (s->got[c]) {
        r->late_delivered += n->late;
        r->delivered++;
        if (!n->late) { /* a late joiner's catch-up is not dissemination */
          hv[nv] = s->hops[c];
          lv[nv++] = s->lat[c];
        }
      }
    }
  }
  qsort(hv, nv, sizeof *hv, cmp_u64);
  qsort(lv, nv, sizeof *lv, cmp_u64);
  r->hops_p50 = (uint32_t)pct(hv, nv, 50);
  r->hops_p99 = (uint32_t)pct(hv, nv, 99);
  r->latency_ms_p50 = pct(lv, nv, 50);
  r->latency_ms_p99 = pct(lv, nv, 99);
  g_free(hv);
  g_free(lv);
}

static void finish(sim *s, sim_result *r) {
  measure(s, r);
  r->nodes = s->p->nodes;
  r->messages = s->published;
  r->delivered_ratio =
      r->expected ? (double)r->delivered / (double)r->expected : 1.0;
  r->copies_per_node_per_msg =
      r->expected ? (double)r->copies / (double)r->expected : 0.0;
  r->bytes_per_node_per_msg =
      (double)s->bytes /
      ((double)s->p->nodes * (s->published ? s->published : 1));
  r->active_avg = r->live ? r->active_avg / r->live : 0;
  r->copies_after_first =
      r->expected_later ? (double)r->copies_later / (double)r->expected_later
                        : 0.0;
  r->frames = s->frames;
  r->bytes = s->bytes;
  r->events = s->events;
  r->virtual_ms = s->now;
  r->beat_period_ms = s->beat_period;
  r->beats_sent = s->beats_sent;
  r->beats_expected = s->beats_expected;
  r->beats_delivered = s->beats_delivered;
  double node_s = (double)r->live * (double)(s->beat_to - s->beat_from) / 1e3;
  if (s->beat_to > s->beat_from && node_s > 0) {
    r->beat_bytes_per_node_s = (double)s->beat_bytes / node_s;
    r->beat_frames_per_node_s = (double)s->beat_frames / node_s;
  }
}

/* The schedule: joins spread over J, a settling pause, messages spread
 * over W with crashes between the first and the last, the late joiners
 * within a second after the last, then a drain. */
static uint64_t schedule(sim *s) {
  const sim_params *p = s->p;
  uint64_t J =
      (uint64_t)p->nodes * 10 < 10000 ? (uint64_t)p->nodes * 10 : 10000;
  uint32_t late = (uint32_t)(p->late * p->nodes + 0.5);
  for (uint32_t k = 0; k < late && k + 2 < p->nodes; k++) {
    uint32_t i;
    do /* node 0 starts the group; crashes pick among the others */
      i = 1 + (uint32_t)(rnd(s) % (p->nodes - 1));
    while (s->nodes[i].late);
    s->nodes[i].late = 1;
  }
  for (uint32_t i = 1; i < p->nodes; i++)
    if (!s->nodes[i].late)
      push(s, i * J / p->nodes, EV_JOIN, i, 0, NULL, 0);
  uint64_t start = J + 5000;
  for (uint32_t i = 0; i < p->nodes; i++) /* the member list, once joined */
    push(s, J + 1000, EV_MEMBERS, i, 0, NULL, 0);
  uint64_t slot = p->interval_ms, first = 0, last = 0;
  for (uint32_t m = 0; m < p->messages; m++) {
    uint64_t t = start + m * slot + rnd(s) % (slot ? slot : 1);
    if (m == 0)
      first = t;
    last = t;
    push(s, t, EV_PUBLISH, 0, m, NULL, 0);
  }
  for (uint32_t i = 1; i < p->nodes; i++)
    if (s->nodes[i].late)
      push(s, last + 1 + rnd(s) % 1000, EV_JOIN, i, 0, NULL, 0);
  uint32_t kill = (uint32_t)(p->crash * p->nodes + 0.5);
  if (kill + late + 1 > p->nodes)
    kill = p->nodes > late + 1 ? p->nodes - late - 1 : 0;
  for (uint32_t k = 0; k < kill && last > first + 2; k++) {
    uint32_t i;
    do
      i = (uint32_t)(rnd(s) % p->nodes);
    while (s->nodes[i].doomed || s->nodes[i].late);
    s->nodes[i].doomed = 1;
    push(s, first + 1 + rnd(s) % (last - first - 1), EV_CRASH, i, 0, NULL, 0);
  }
  if (p->beats_s > 0) { /* each node's first beat within the first P */
    s->beat_period =
        kith_presence_period(p->nodes, KITH_PRESENCE_PERIOD_MIN_MS);
    s->beat_from = first + s->beat_period;
    s->beat_to = first + (uint64_t)p->beats_s * 1000;
    for (uint32_t i = 0; i < p->nodes; i++)
      push(s, first + rnd(s) % s->beat_period, EV_BEAT, i, 0, NULL, 0);
    if (s->beat_to > last)
      last = s->beat_to;
  }
  return last + p->drain_ms;
}

static void setup(sim *s, const sim_params *p) {
  memset(s, 0, sizeof *s);
  s->p = p;
  s->rng = mix(p->seed) | 1;
  size_t cells = (size_t)p->nodes * p->messages;
  s->nodes = g_new0(node, p->nodes);
  s->got = g_new0(uint8_t, cells);
  s->hops = g_new0(uint8_t, cells);
  s->cell_copies = g_new0(uint8_t, cells);
  s->lat = g_new0(uint32_t, cells);
  s->copies = g_new0(uint64_t, p->nodes);
  s->pub_t = g_new0(uint64_t, p->messages);
  s->publisher = g_new0(uint32_t, p->messages);
  s->msg_id = g_malloc0_n(p->messages, 32);
  s->by_id = g_hash_table_new(id32_hash, id32_equal);
  kith_out_init(&s->out);
  for (uint32_t i = 0; i < p->nodes; i++) {
    uint8_t id[32];
    make_id(p->seed, i, 0x11, id);
    s->nodes[i].g =
        kith_gossip_new(id, mix(p->seed ^ (0xabcdull << 32) ^ i), NULL);
    s->nodes[i].alive = 1;
    s->nodes[i].timer_at = UINT64_MAX;
    s->nodes[i].joined = i == 0;
  }
}

static void teardown(sim *s) {
  for (uint32_t i = 0; i < s->p->nodes; i++) {
    kith_gossip_free(s->nodes[i].g);
    g_free(s->nodes[i].adj);
  }
  while (s->n_heap > 0)
    g_free(pop(s).data);
  g_free(s->heap);
  g_free(s->nodes);
  g_free(s->got);
  g_free(s->hops);
  g_free(s->cell_copies);
  g_free(s->lat);
  g_free(s->copies);
  g_free(s->pub_t);
  g_free(s->publisher);
  g_free(s->msg_id);
  g_hash_table_destroy(s->by_id);
  kith_out_clear(&s->out);
}

int sim_run(const sim_params *p, sim_result *r) {
  sim s;
  memset(r, 0, sizeof *r);
  if (p->nodes < 2 || p->nodes > SIM_MAX_NODES || p->messages < 1 ||
      p->messages > SIM_MAX_MESSAGES ||
      (uint64_t)p->nodes * p->messages > SIM_MAX_CELLS ||
      p->payload_bytes < 4 || p->payload_bytes > SIM_MAX_PAYLOAD)
    return -1;
  setup(&s, p);
  uint64_t end = schedule(&s);
  while (s.n_heap > 0 && s.heap[0].t <= end) {
    ev e = pop(&s);
    s.now = e.t;
    step(&s, &e);
    g_free(e.data);
  }
  s.now = end;
  finish(&s, r);
  teardown(&s);
  return 0;
}
