/* kith: per-group gossip engine (sans-I/O), DESIGN.md §7.
 *
 * One engine per (node, group). Three layers, each modelled on a paper:
 * - Overlay (HyParView): a small active view of linked neighbours (at most
 *   active_max, default KITH_GOSSIP_ACTIVE_MAX) and a larger passive view
 *   of known members used to replace failed links. Joins spread by random
 *   walks (FORWARD_JOIN); a lost link is replaced from the passive view;
 *   periodic SHUFFLEs with a neighbour refresh the passive view.
 * - Dissemination (Plumtree): payloads are pushed eagerly to "eager"
 *   neighbours and their ids announced (IHAVE, batched) to the "lazy" ones.
 *   A duplicate payload turns the edge lazy (PRUNE); an announced id that
 *   does not arrive within lazy_timeout_ms is requested (GRAFT), which
 *   turns that edge eager. The eager edges converge to a spanning tree, so
 *   each node receives about one copy of each event.
 * - Anti-entropy: every recon_ms (with jitter) the engine reconciles its set
 *   of known event ids with one active neighbour (core/reconcile.h), then
 *   sends what the neighbour lacks and asks for what it lacks itself.
 *
 * Inputs carry now_ms; outputs go to a kith_out (core/out.h). Links are
 * made and dropped by the caller (KITH_OUT_CONNECT / KITH_OUT_DISCONNECT),
 * which reports them back with kith_gossip_link_up / _link_down. Payloads
 * are opaque: the caller validates each delivered one and answers with
 * kith_gossip_verdict(); only valid events are forwarded. Randomness comes
 * from the seed (a small PRNG), so a run is reproducible.
 *
 * Wire format: each frame is one canonical msgpack array whose first
 * element is the frame type (KITH_GF_*); bin32 = 32-byte id:
 *   JOIN [1] (answered by NEIGHBOR_REPLY)  FORWARD_JOIN [2, node bin32, ttl]
 *   NEIGHBOR [3, high 0|1]        NEIGHBOR_REPLY [4, accepted 0|1]
 *   DISCONNECT [5]                SHUFFLE [6, [bin32...]]  (<= 8 ids)
 *   SHUFFLE_REPLY [7, [bin32...]]
 *   PAYLOAD [8, id bin32, ts_ms, hops, push 0|1, payload bin]
 *   IHAVE [9, [bin32...], hops bin (one byte per id)]
 *   GRAFT [10, [bin32...]]  (empty: only "push to me again")
 *   PRUNE [11]                    WANT [12, [bin32...]]
 *   RECON [13, role, reconciliation message bin]  (core/reconcile.h;
 *     role: 0 from the responder, 1 from the initiator, 2 its first)
 * Id lists hold at most KITH_GOSSIP_IDS_MAX ids. Frames of an unknown type
 * are ignored (counted); malformed ones are dropped (counted). Only
 * PAYLOAD and IHAVE are acted on from a peer whose link is not (or no
 * longer) up; the others need the link to answer or change the overlay. */
#ifndef KITH_GOSSIP_H
#define KITH_GOSSIP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "out.h"

#define KITH_GOSSIP_ACTIVE_MAX 8    /* default bound of the active view */
#define KITH_GOSSIP_PASSIVE_MAX 32  /* default size of the passive view */
#define KITH_GOSSIP_ACTIVE_CAP 16   /* hard cap of any configured bound */
#define KITH_GOSSIP_PASSIVE_CAP 128 /* hard cap of the passive view */
#define KITH_GOSSIP_MAX_PAYLOAD (96 * 1024) /* bytes of one event */
#define KITH_GOSSIP_MAX_FRAME (512 * 1024)  /* bytes of one frame */
#define KITH_GOSSIP_IDS_MAX 256         /* ids in one IHAVE/GRAFT/WANT frame */
#define KITH_GOSSIP_SEEN_MAX (1u << 20) /* ids remembered for dedup */
#define KITH_GOSSIP_CACHE_MAX 1024      /* payloads kept for grafts */
#define KITH_GOSSIP_CACHE_BYTES (8u << 20)
#define KITH_GOSSIP_PENDING_MAX 1024 /* payloads awaiting a verdict */
#define KITH_GOSSIP_PENDING_MS 60000 /* then they are forgotten */
#define KITH_GOSSIP_MISSING_MAX 4096 /* announced ids not yet received */
#define KITH_GOSSIP_ANNOUNCERS 4     /* neighbours remembered per id */

typedef struct kith_gossip kith_gossip;

typedef struct kith_gossip_config {
  uint32_t active_max;         /* 1..KITH_GOSSIP_ACTIVE_CAP */
  uint32_t passive_max;        /* 1..KITH_GOSSIP_PASSIVE_CAP */
  uint32_t arwl;               /* active random walk length (joins) */
  uint32_t prwl;               /* passive random walk length */
  uint32_t lazy_timeout_ms;    /* IHAVE seen -> GRAFT */
  uint32_t graft_retry_ms;     /* GRAFT unanswered -> next announcer */
  uint32_t ihave_batch_ms;     /* IHAVEs are batched this long */
  uint32_t repair_ms;          /* refill a short active view this often */
  uint32_t shuffle_ms;         /* passive view exchange, 0 = never */
  uint32_t recon_ms;           /* anti-entropy period, 0 = never */
  uint32_t connect_timeout_ms; /* CONNECT not answered -> give up */
  uint32_t idle_ms;            /* links outside the active view dropped */
} kith_gossip_config;

typedef struct kith_gossip_stats {
  uint64_t malformed;  /* frames dropped as undecodable */
  uint64_t unknown;    /* frames of unknown type ignored */
  uint64_t payloads;   /* payload frames received */
  uint64_t duplicates; /* of which already seen */
  uint64_t prunes_sent, grafts_sent, ihave_sent, recon_rounds;
  uint64_t invalid;   /* events the application rejected */
  uint64_t overflows; /* items dropped at a bound (cache, missing, ...) */
  uint32_t active, eager, passive;
} kith_gossip_stats;

void kith_gossip_config_default(kith_gossip_config *cfg);

/* cfg NULL means defaults. Returns NULL if cfg is out of range. */
kith_gossip *kith_gossip_new(const uint8_t self[32], uint64_t seed,
                             const kith_gossip_config *cfg);
void kith_gossip_free(kith_gossip *g);

/* Overlay. join: enter the group through contact (an existing member; the
 * engine asks for a link to it). add_passive: another member known from
 * elsewhere (the group's member list, an invite), used to repair. */
KITH_MUST kith_err kith_gossip_join(kith_gossip *g, const uint8_t contact[32],
                                    uint64_t now_ms, kith_out *out);
void kith_gossip_add_passive(kith_gossip *g, const uint8_t peer[32]);
void kith_gossip_link_up(kith_gossip *g, const uint8_t peer[32],
                         uint64_t now_ms, kith_out *out);
void kith_gossip_link_down(kith_gossip *g, const uint8_t peer[32],
                           uint64_t now_ms, kith_out *out);

/* A frame from peer. Malformed: KITH_ERR_DECODE (counted, no other effect);
 * unknown type: KITH_OK (counted, ignored). */
KITH_MUST kith_err kith_gossip_recv(kith_gossip *g, const uint8_t peer[32],
                                    const uint8_t *buf, size_t len,
                                    uint64_t now_ms, kith_out *out);
void kith_gossip_tick(kith_gossip *g, uint64_t now_ms, kith_out *out);
/* When to call kith_gossip_tick next (UINT64_MAX: no timer pending). */
uint64_t kith_gossip_next_deadline(const kith_gossip *g);

/* A local event (already validated and stored by the caller). */
KITH_MUST kith_err kith_gossip_publish(kith_gossip *g, const uint8_t id[32],
                                       uint64_t ts_ms, const uint8_t *payload,
                                       size_t len, uint64_t now_ms,
                                       kith_out *out);
/* The caller's verdict on a KITH_OUT_DELIVER payload. valid: the event is
 * stored and forwarded; invalid: its sender is penalized. The verdict may
 * come later (e.g. once missing parents arrived, see kith_gossip_want). */
void kith_gossip_verdict(kith_gossip *g, const uint8_t id[32], int valid,
                         uint64_t now_ms, kith_out *out);
/* Asks peer for specific events (e.g. the missing parents of a held event:
 * ask the neighbour that delivered it). n <= KITH_GOSSIP_IDS_MAX. */
KITH_MUST kith_err kith_gossip_want(kith_gossip *g, const uint8_t peer[32],
                                    const uint8_t *ids, size_t n,
                                    kith_out *out);
/* Answer to KITH_OUT_FETCH: sends one stored event to peer. */
KITH_MUST kith_err kith_gossip_send_payload(
    kith_gossip *g, const uint8_t peer[32], const uint8_t id[32],
    uint64_t ts_ms, const uint8_t *payload, size_t len, kith_out *out);
/* Starts a reconciliation with linked peer now, as the periodic one does
 * with a random neighbour (an unfinished one with peer is abandoned). The
 * node calls it when a link comes up, so a node that restarted or joined
 * catches up at once. KITH_ERR_STATE if peer is not linked. */
KITH_MUST kith_err kith_gossip_reconcile(kith_gossip *g, const uint8_t peer[32],
                                         uint64_t now_ms, kith_out *out);
/* Adds an event the caller already holds (e.g. loaded from the store) to
 * the set that anti-entropy reconciles. */
KITH_MUST kith_err kith_gossip_add_known(kith_gossip *g, uint64_t ts_ms,
                                         const uint8_t id[32]);

void kith_gossip_get_stats(const kith_gossip *g, kith_gossip_stats *st);
/* Copies up to max active neighbours' ids; returns how many there are. */
size_t kith_gossip_active(const kith_gossip *g, uint8_t (*peers)[32],
                          size_t max);
/* 1 if peer is an active neighbour with an eager edge, 0 lazy, -1 not
 * active. */
int kith_gossip_peer_state(const kith_gossip *g, const uint8_t peer[32]);

/* Frame types (first array element). */
enum {
  KITH_GF_JOIN = 1,
  KITH_GF_FORWARD_JOIN = 2,
  KITH_GF_NEIGHBOR = 3,
  KITH_GF_NEIGHBOR_REPLY = 4,
  KITH_GF_DISCONNECT = 5,
  KITH_GF_SHUFFLE = 6,
  KITH_GF_SHUFFLE_REPLY = 7,
  KITH_GF_PAYLOAD = 8,
  KITH_GF_IHAVE = 9,
  KITH_GF_GRAFT = 10,
  KITH_GF_PRUNE = 11,
  KITH_GF_WANT = 12,
  KITH_GF_RECON = 13,
};
/* The type of a frame without decoding it all (-1 if not recognisable):
 * for statistics in the simulator and the node. */
int kith_gossip_frame_type(const uint8_t *buf, size_t len);

#endif
