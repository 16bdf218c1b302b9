/* kith: per-group gossip engine (sans-I/O), DESIGN.md §7.
 *
 * One engine per (node, group). Three layers, each modelled on a paper:
 * - Overlay (HyParView): a small active view of linked neighbours (at most
 *   active_max, default KITH_GOSSIP_ACTIVE_MAX) and a larger passive view
 *   of known members used to replace failed links. Joins spread by random
 *   walks (FORWARD_JOIN); a lost link is replaced from the passive view;
 *   periodic SHUFFLEs with a neighbour refresh the passive view.
 * - Dissemination (Plumtree): payloads are pushed eagerly along a tree
 *   and their ids announced (IHAVE, batched, short ids) to some of the
 *   other neighbours. A duplicate push turns its edge lazy (PRUNE); an
 *   announced id that does not arrive in time is requested (GRAFT), which
 *   turns that edge eager. Each source that sent more than one message has
 *   a tree of its own, so that sources sending at once do not prune each
 *   other's trees apart (gossip_plum.c); payloads name their source. The
 *   other messages share a default tree, which a lost copy does not
 *   change (it is fetched as a repair, push 3) and which a message
 *   published on it enters at every neighbour of its publisher.
 * - Anti-entropy: every recon_ms (with jitter) the engine reconciles its set
 *   of known event ids with one active neighbour (core/reconcile.h), then
 *   asks that neighbour for all it lacks at once when the reconciliation
 *   ends, so that it can send the difference parents first. What comes
 *   so, looked up in a store (source 0), is a catch-up: never passed on.
 *
 * Inputs carry now_ms; outputs go to a kith_out (core/out.h). Links are
 * made and dropped by the caller (KITH_OUT_CONNECT / KITH_OUT_DISCONNECT),
 * which reports them back with kith_gossip_link_up / _link_down. Payloads
 * are opaque bytes named by their id, BLAKE2b-256 of the bytes (a kith
 * event id is exactly that): the engine computes the id of every payload
 * it receives itself, so no frame can claim another payload's id. The
 * caller validates each delivered payload and answers with
 * kith_gossip_verdict(); only valid ones are forwarded, invalid ones are
 * never delivered again, and one that cannot be judged now (its parents
 * are missing, a limit is reached) never gets a permanent mark. Randomness
 * comes from the seed (a small PRNG), so a run is reproducible.
 *
 * Wire format: each frame is one canonical msgpack array whose first
 * element is the frame type (KITH_GF_*); bin32 = 32-byte id:
 *   JOIN [1] (answered by NEIGHBOR_REPLY)  FORWARD_JOIN [2, node bin32, ttl]
 *   NEIGHBOR [3, high 0|1]        NEIGHBOR_REPLY [4, accepted 0|1]
 *   DISCONNECT [5]                SHUFFLE [6, [bin32...]]  (<= 8 ids)
 *   SHUFFLE_REPLY [7, [bin32...]]
 *   PAYLOAD [8, source uint64, hops, push 0|1|2|3, payload bin]
 *     (its id: BLAKE2b-256(payload); source: the publisher's tag, the
 *     first 8 bytes of its node id read big-endian)
 *   IHAVE [9, short ids bin, hops bin]  (short id: an id's first 8 bytes;
 *     hops: one byte per id)
 *   GRAFT [10, short ids bin, [source...], default 0|1]  ("send me these,
 *     and push these sources' trees, and your default tree, to me"; an
 *     event of the default tree comes as a repair, push 3, unless
 *     default is 1)
 *   PRUNE [11, source]            WANT [12, [bin32...]]
 *   RECON [13, role, reconciliation message bin]  (core/reconcile.h;
 *     role: 0 from the responder, 1 from the initiator, 2 its first)
 *   EPHEMERAL [14, source uint64, hops, push 0|1|2|3, payload bin]
 *     (as PAYLOAD, for an ephemeral payload: below)
 * Ephemeral payloads (kith_gossip_publish_ephemeral: presence beats) are
 * disseminated like events (pushed along the trees, announced, grafted,
 * deduplicated, judged by the caller before they go on) but never join
 * the known set, are never fetched, start no tree of their own and are
 * forgotten KITH_GOSSIP_EPH_MS after they were accepted.
 * Id and source lists hold at most KITH_GOSSIP_IDS_MAX entries. Frames of an
 * unknown type are ignored (counted); malformed ones are dropped (counted).
 * Only PAYLOAD, EPHEMERAL and IHAVE are acted on from a peer whose link is
 * not (or no longer) up; the others need the link to answer or change the
 * overlay. */
#ifndef KITH_GOSSIP_H
#define KITH_GOSSIP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "reconcile.h"
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
#define KITH_GOSSIP_PENDING_MAX 1024          /* payloads awaiting a verdict */
#define KITH_GOSSIP_PENDING_BYTES (16u << 20) /* and their bytes */
/* Of which from one sender, at most (so that one neighbour's held
 * payloads cannot stop everyone else's): */
#define KITH_GOSSIP_PENDING_PEER_MAX (KITH_GOSSIP_PENDING_MAX / 4)
#define KITH_GOSSIP_PENDING_PEER_BYTES (KITH_GOSSIP_PENDING_BYTES / 4)
#define KITH_GOSSIP_PENDING_MS 60000 /* then they are forgotten */
/* Held payloads (KITH_GOSSIP_HELD) kept outside those counts, at most */
#define KITH_GOSSIP_HELD_MAX 4096
#define KITH_GOSSIP_MISSING_MAX 4096 /* announced ids not yet received */
/* Ids found missing by reconciliations, waiting to be asked for at their
 * end (all peers together), at most */
#define KITH_GOSSIP_NEED_MAX 65536
/* An id asked of a peer at the end of a reconciliation is not asked of
 * that peer again at the end of another for this long (ms), unless it
 * came and was forgotten (KITH_GOSSIP_LATER): it is in the peer's stream */
#define KITH_GOSSIP_NEED_WAIT_MS 5000
/* A reconciliation whose side here is not over (the peer may have ended
 * it) but that has been quiet this long (ms; and two round trips) has its
 * missing ids asked for all the same */
#define KITH_GOSSIP_NEED_QUIET_MS 250
/* An asked id (GRAFT, WANT) waits for its answer graft_retry_ms, or two
 * measured round trips if longer, but at most this long (ms) */
#define KITH_GOSSIP_RETRY_MAX_MS 5000
#define KITH_GOSSIP_ANNOUNCERS 4         /* neighbours remembered per id */
#define KITH_GOSSIP_EPH_MAX_PAYLOAD 1024 /* bytes of one ephemeral payload */
#define KITH_GOSSIP_EPH_MAX 4096         /* ephemeral payloads remembered */
#define KITH_GOSSIP_EPH_MS 30000         /* ... for this long at most */

typedef struct kith_gossip kith_gossip;

typedef struct kith_gossip_config {
  uint32_t active_max;         /* 1..KITH_GOSSIP_ACTIVE_CAP */
  uint32_t passive_max;        /* 1..KITH_GOSSIP_PASSIVE_CAP */
  uint32_t arwl;               /* active random walk length (joins) */
  uint32_t prwl;               /* passive random walk length */
  uint32_t lazy_timeout_ms;    /* IHAVE seen -> GRAFT, at most */
  uint32_t lazy_min_ms;        /* ... and at least (adapts in between) */
  uint32_t announce_max;       /* neighbours an id is announced to */
  uint32_t flood_first_max;    /* known members, at most, for a source's
                                  first message to start its own tree
                                  (0: never) */
  uint32_t graft_retry_ms;     /* GRAFT unanswered -> next announcer */
  uint32_t ihave_batch_ms;     /* a neighbour's IHAVEs: batched this long */
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
  uint64_t invalid;    /* events the application rejected */
  uint64_t later;      /* events the application could not judge now */
  uint64_t wants_sent; /* ids asked for with WANT */
  uint64_t overflows;  /* items dropped at a bound (cache, missing, ...) */
  uint64_t ephemeral;  /* ephemeral payload frames received */
  uint32_t active, eager, passive;
  uint32_t trees;   /* sources remembered (of which some have a tree) */
  uint32_t lazy_ms; /* the current wait before a GRAFT */
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

/* The id the engine gives payload[len]: BLAKE2b-256 of the bytes. */
void kith_gossip_payload_id(const uint8_t *payload, size_t len, uint8_t id[32]);

/* A local event (already validated and stored by the caller), with its
 * timestamp (the order of reconciliation). KITH_ERR_DUPLICATE if the
 * engine knows it already. */
KITH_MUST kith_err kith_gossip_publish(kith_gossip *g, uint64_t ts_ms,
                                       const uint8_t *payload, size_t len,
                                       uint64_t now_ms, kith_out *out);

/* A local ephemeral payload (already signed by the caller): pushed and
 * announced as an event is, remembered for KITH_GOSSIP_EPH_MS only, never
 * offered to reconciliation. KITH_ERR_ARG if len is over
 * KITH_GOSSIP_EPH_MAX_PAYLOAD, KITH_ERR_DUPLICATE if the engine knows it. */
KITH_MUST kith_err kith_gossip_publish_ephemeral(kith_gossip *g,
                                                 const uint8_t *payload,
                                                 size_t len, uint64_t now_ms,
                                                 kith_out *out);

/* The caller's verdict on the KITH_OUT_DELIVER payload id. For an
 * ephemeral one (the item's ephemeral flag): VALID forwards it, INVALID
 * penalizes its sender (the id is not marked: the same bytes may be a
 * valid event), anything else forgets it; HELD does not apply. */
typedef enum kith_gossip_verdict_kind {
  /* The bytes are bad for good (malformed, forged, breaking a rule): the
   * id is remembered as invalid and the sender penalized. */
  KITH_GOSSIP_INVALID = 0,
  /* Accepted (and stored): cached, known and forwarded. ts_ms is the
   * event's own timestamp. */
  KITH_GOSSIP_VALID = 1,
  /* Not now (a limit was reached, the caller dropped it): forgotten
   * without blame, so the next copy is delivered again. */
  KITH_GOSSIP_LATER = 2,
  /* Held, not judged yet (its parents are missing), but fit to pass on
   * (signed by a member): forwarded now, judged by a later verdict. */
  KITH_GOSSIP_HELD = 3,
} kith_gossip_verdict_kind;
/* A payload the caller holds (e.g. for missing parents) needs no call
 * until it is judged (or KITH_GOSSIP_HELD to pass it on meanwhile);
 * unjudged payloads are forgotten after KITH_GOSSIP_PENDING_MS. ts_ms is
 * read for KITH_GOSSIP_VALID only. A valid verdict on an id that is not
 * awaiting one adds it to the known set (as kith_gossip_add_known). */
void kith_gossip_verdict(kith_gossip *g, const uint8_t id[32],
                         kith_gossip_verdict_kind v, uint64_t ts_ms,
                         uint64_t now_ms, kith_out *out);
/* Asks peer for specific events (e.g. the missing parents of a held event:
 * ask the neighbour that delivered it), unless they arrive first: each id
 * not seen yet is noted as missing, and asked for (WANT) once the lazy
 * wait has passed without it, then of other announcers, then left to
 * anti-entropy. Ids seen, or already noted, are left out.
 * n <= KITH_GOSSIP_IDS_MAX. Returns how many were noted in *asked (may be
 * NULL). */
KITH_MUST kith_err kith_gossip_want(kith_gossip *g, const uint8_t peer[32],
                                    const uint8_t *ids, size_t n,
                                    uint64_t now_ms, size_t *asked,
                                    kith_out *out);
/* Answer to KITH_OUT_FETCH: sends one stored event to peer. */
KITH_MUST kith_err kith_gossip_send_payload(kith_gossip *g,
                                            const uint8_t peer[32],
                                            const uint8_t *payload, size_t len,
                                            kith_out *out);
/* Starts a reconciliation with linked peer now, as the periodic one does
 * with a random neighbour (an unfinished one with peer is abandoned). The
 * node calls it when a link comes up, so a node that restarted or joined
 * catches up at once. KITH_ERR_STATE if peer is not linked. */
KITH_MUST kith_err kith_gossip_reconcile(kith_gossip *g, const uint8_t peer[32],
                                         uint64_t now_ms, kith_out *out);
/* Adds an event the caller already holds to the set that anti-entropy
 * reconciles. */
KITH_MUST kith_err kith_gossip_add_known(kith_gossip *g, uint64_t ts_ms,
                                         const uint8_t id[32]);
/* The set anti-entropy reconciles. By default the engine keeps one in
 * memory, filled with every valid event and kith_gossip_add_known (at
 * most 2^20). A node gives its store's instead (core/recon_index.h): then
 * nothing is loaded at start or copied per reconciliation; the engine
 * calls add(ctx, ts, id) for every valid event and reconciles only while
 * ready(ctx) (the set is built). Call it before anything else. */
typedef struct kith_gossip_known {
  kith_recon_source src;
  void *ctx;
  void (*add)(void *ctx, uint64_t ts_ms, const uint8_t id[32]);
  int (*ready)(void *ctx);
} kith_gossip_known;
void kith_gossip_set_known(kith_gossip *g, const kith_gossip_known *k);

void kith_gossip_get_stats(const kith_gossip *g, kith_gossip_stats *st);
/* Copies up to max active neighbours' ids; returns how many there are. */
size_t kith_gossip_active(const kith_gossip *g, uint8_t (*peers)[32],
                          size_t max);
/* 1 if peer is an active neighbour with an eager edge in the default tree,
 * 0 lazy, -1 not active. */
int kith_gossip_peer_state(const kith_gossip *g, const uint8_t peer[32]);
/* The same for the tree that carries the payloads published by source. */
int kith_gossip_peer_eager(const kith_gossip *g, const uint8_t peer[32],
                           const uint8_t source[32]);

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
  KITH_GF_EPHEMERAL = 14,
};
/* The type of a frame without decoding it all (-1 if not recognisable):
 * for statistics in the simulator and the node. */
int kith_gossip_frame_type(const uint8_t *buf, size_t len);

#endif
