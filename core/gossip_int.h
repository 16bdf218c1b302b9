/* kith: gossip engine internals shared by core/gossip*.c. */
#ifndef KITH_GOSSIP_INT_H
#define KITH_GOSSIP_INT_H

#include <glib.h>
#include <msgpack.h>

#include "codec.h"
#include "gossip.h"
#include "reconcile.h"

#define PEERS_MAX 40 /* linked or pending peers tracked: active + spare */
#define SHUFFLE_N 8  /* ids in one shuffle sample */
#define TTL_MAX 16   /* longest random walk accepted */
#define HOPS_MAX 255
#define KNOWN_MAX (1u << 20) /* ids offered to reconciliation */
#define SHORT_ID 8           /* bytes of an id in IHAVE and GRAFT */
#define LATE_N 64            /* lateness samples kept (the lazy wait) */
/* RECON frame roles: what the sender is in that reconciliation */
enum { RECON_RESPONDER = 0, RECON_INITIATOR = 1, RECON_START = 2 };

G_STATIC_ASSERT(PEERS_MAX <= 64); /* a tree's edges fit one uint64_t */

/* Why the engine asked for a link to a peer. */
enum { INTENT_NONE, INTENT_JOIN, INTENT_NEIGHBOR_LO, INTENT_NEIGHBOR_HI };

typedef struct lazy_ent {
  uint8_t id[SHORT_ID];
  uint8_t hops; /* how far the event had come when we got it (<= 127),
                   | IHAVE_OWN if it went on on a tree of its own */
} lazy_ent;
#define IHAVE_OWN 0x80

/* How late pushed payloads of own trees (or of the default tree) arrived
 * after their first announcement (ms; 0: before it), the last LATE_N, and
 * the wait derived from them (gossip_plum.c). */
typedef struct lateness {
  uint16_t v[LATE_N];
  uint32_t n;
  uint64_t wait; /* 0: too few samples yet */
} lateness;

typedef struct gpeer {
  uint8_t id[32];
  uint8_t used;          /* slot in use (slots never move) */
  uint8_t linked;        /* the caller reported the link up */
  uint8_t active;        /* in the active view */
  uint8_t intent;        /* INTENT_*: what to say once linked */
  uint8_t awaiting;      /* NEIGHBOR sent, reply pending */
  uint64_t deadline;     /* intent / reply timeout */
  uint64_t since;        /* linked or created at */
  struct lazy_ent *lazy; /* ids to announce, up to KITH_GOSSIP_IDS_MAX */
  uint32_t n_lazy, cap_lazy;
  uint64_t lazy_at; /* they go then: ihave_batch_ms after the first (0: none) */
  /* reconciliations with this peer: [0] started here, [1] by the peer.
   * Each has its own snapshot (reconcile.h: one at a time per object). */
  kith_recon *rs[2];
  /* ids reconciliations with this peer found missing here, asked for
   * when one ends, or when none has had a step since need_quiet
   * (gossip_recon.c) */
  GByteArray *need;
  uint64_t need_quiet;
  /* an id asked of this peer at a reconciliation's end last came then
   * (its stream of them still flows: gossip_recon.c) */
  uint64_t stream_at;
} gpeer;

/* A dissemination tree: the active neighbours (bit i = peers[i]) to which
 * payloads are pushed eagerly; the others get announcements. One per
 * source that sent more than one message (its own tree), and the default
 * tree for the others (gossip_plum.c). */
typedef struct tree {
  uint64_t tag;   /* the source: first 8 bytes of its node id */
  uint64_t eager; /* bit i: push to peers[i] */
  uint64_t used;  /* g->clock at the last message (least recently used go) */
  uint32_t msgs;  /* messages of this source seen (the default tree:
                     messages it carried here, up to UINT32_MAX) */
  uint8_t own;    /* has its own edges (else the default tree's are used) */
} tree;

/* How a payload came: by its tree's push (its announcements then tell
 * how early pushes come), or by our GRAFT (announced at graft_from: a
 * later push of it tells how late that one was), or else. */
typedef struct arrival {
  uint64_t graft_from; /* first announced at, if it came by our GRAFT */
  uint64_t holders;    /* bit i: peers[i] told us it has it (announced or
                          pushed it): not announced to */
  uint8_t pushed;      /* came by a push, unasked */
  uint8_t sampled;     /* its lateness is counted */
  uint8_t repair;      /* came as a repair (push 3, gossip_plum.c) */
} arrival;

typedef struct cached {
  uint8_t id[32];
  uint8_t eph;      /* ephemeral (kept in eph_fifo, not cache_fifo) */
  uint64_t expires; /* ephemeral: forgotten then */
  uint8_t from[32]; /* who delivered it first (zero: published here) */
  uint64_t tag;     /* its source */
  uint32_t hops;
  arrival how;
  uint8_t *data;
  size_t len;
} cached;

typedef struct pending {
  uint8_t id[32];
  uint8_t from[32];
  uint64_t tag;
  uint32_t hops;
  int push;      /* forward eagerly once valid */
  int forwarded; /* passed on already (KITH_GOSSIP_HELD) */
  int released;  /* held: out of the counts (pend_release) */
  int eph;       /* ephemeral */
  arrival how;
  uint8_t *data;
  size_t len;
  uint64_t since; /* delivered at */
} pending;

/* Payloads awaiting a verdict from one sender (the per-sender bound). */
typedef struct pend_count {
  uint8_t peer[32];
  uint32_t n;
  size_t bytes;
} pend_count;

/* An id this node lacks and knows of (announced, or asked for). */
typedef struct missing {
  uint8_t id[32]; /* the short id (the table's key), or the whole id */
  uint8_t who[KITH_GOSSIP_ANNOUNCERS][32];
  uint8_t hops[KITH_GOSSIP_ANNOUNCERS]; /* UINT8_MAX once tried */
  uint32_t n;
  uint64_t since;    /* first heard of */
  uint64_t deadline; /* GRAFT the next announcer then */
  uint64_t asked_at; /* last WANT or GRAFT for it (0: none) */
  uint8_t announced; /* by an IHAVE (else only asked for) */
  uint8_t own;       /* announced as carried on a tree of its own */
  uint8_t want;      /* asked for by the node: WANT (id is whole) */
} missing;

enum { SEEN_PENDING = 1, SEEN_VALID = 2, SEEN_INVALID = 3 };

struct kith_gossip {
  uint8_t self[32];
  uint64_t self_tag;
  kith_gossip_config cfg;
  uint64_t rng;
  gpeer peers[PEERS_MAX];
  uint32_t n_peers;
  uint8_t passive[KITH_GOSSIP_PASSIVE_CAP][32];
  uint32_t n_passive;
  GHashTable *seen;     /* id (32 bytes) -> SEEN_* */
  GHashTable *seen_pfx; /* short id -> a seen id with that prefix */
  GQueue seen_fifo;
  GHashTable *cache;     /* id -> cached */
  GHashTable *cache_pfx; /* short id -> cached */
  GQueue cache_fifo;
  size_t cache_bytes;
  GQueue eph_fifo;     /* ephemeral payloads (also in cache), oldest first */
  uint64_t eph_at;     /* the oldest one expires then (0: none) */
  GHashTable *pend;    /* id -> pending */
  GHashTable *pend_by; /* sender id -> pend_count */
  size_t pend_bytes;
  uint32_t pend_held;  /* entries released from the counts (held) */
  GHashTable *missing; /* short id -> missing */
  uint64_t missing_at; /* earliest missing deadline (0: none or unknown) */
  GHashTable *trees;   /* tag (uint64_t *) -> tree */
  tree dflt;           /* the default tree */
  uint64_t clock;      /* counts messages, for tree eviction */
  /* the set anti-entropy reconciles: the caller's (kith_gossip_set_known),
   * or else known, in memory; reconciliations read src, never a copy */
  kith_recon_set *known;
  kith_gossip_known ext;
  int has_ext;
  kith_recon_source src;
  uint64_t ihave_at, repair_at, shuffle_at, recon_at; /* 0 = unset */
  uint64_t pend_at;      /* the oldest pending payload expires then (0: none) */
  uint32_t repair_tries; /* refused NEIGHBOR requests in a row */
  lateness late;         /* of own trees' pushes */
  lateness late_dflt;    /* of the default tree's pushes */
  /* default-tree messages in a row that came by our GRAFT and saw no
   * push of the tree since (its edges here may be broken) */
  uint32_t fetches;
  uint64_t rtt8;    /* round trip of GRAFT and WANT answers (ms x 8, EWMA) */
  size_t need_n;    /* ids waiting in all peers' need lists */
  uint64_t need_at; /* the earliest need_quiet (0: none) */
  /* ids asked for at the end of a reconciliation lately, and of whom:
   * id -> asked_ent, and the entries oldest first (at most
   * KITH_GOSSIP_NEED_MAX) */
  GHashTable *asked;
  GQueue asked_fifo;
  kith_gossip_stats st;
};

/* gossip.c */
guint gs_id_hash(gconstpointer k);
gboolean gs_id_equal(gconstpointer a, gconstpointer b);
guint gs_pfx_hash(gconstpointer k);
gboolean gs_pfx_equal(gconstpointer a, gconstpointer b);
uint64_t gs_rand(kith_gossip *g);
uint32_t gs_below(kith_gossip *g, uint32_t n);
uint64_t gs_jitter(kith_gossip *g, uint32_t period);
void gs_arm(kith_gossip *g, uint64_t now);
gpeer *gs_peer(kith_gossip *g, const uint8_t id[32]);
gpeer *gs_peer_add(kith_gossip *g, const uint8_t id[32], uint64_t now);
void gs_peer_drop(kith_gossip *g, gpeer *p, kith_out *out);
uint32_t gs_active_list(kith_gossip *g, gpeer **list);
gpeer *gs_random_active(kith_gossip *g); /* NULL if there is none */
void gs_rtt_sample(kith_gossip *g, uint64_t ms);
void gs_send(kith_gossip *g, const uint8_t peer[32], kith_pack *pk,
             kith_out *out);
void gs_send_ids(kith_gossip *g, const uint8_t peer[32], int type,
                 const uint8_t *ids, size_t n, kith_out *out);
void gs_send_simple(kith_gossip *g, const uint8_t peer[32], int type, int arg,
                    kith_out *out);
kith_err gs_read_ids(const msgpack_object *o, size_t max, uint8_t (*buf)[32],
                     size_t *n);
int gs_seen(kith_gossip *g, const uint8_t id[32]);
void gs_seen_set(kith_gossip *g, const uint8_t id[32], int state);

/* gossip_overlay.c */
void ov_passive_add(kith_gossip *g, const uint8_t id[32]);
void ov_passive_del(kith_gossip *g, const uint8_t id[32]);
void ov_link_up(kith_gossip *g, gpeer *p, uint64_t now, kith_out *out);
void ov_link_down(kith_gossip *g, const uint8_t id[32], uint64_t now,
                  kith_out *out);
kith_err ov_recv(kith_gossip *g, gpeer *p, const uint8_t from[32], int type,
                 const msgpack_object *f, uint32_t nf, uint64_t now,
                 kith_out *out);
void ov_tick(kith_gossip *g, uint64_t now, kith_out *out);
uint64_t ov_deadline(const kith_gossip *g);

/* gossip_plum.c: dissemination */
kith_err pt_recv(kith_gossip *g, gpeer *p, const uint8_t from[32], int type,
                 const msgpack_object *f, uint32_t nf, uint64_t now,
                 kith_out *out);
void pt_tick(kith_gossip *g, uint64_t now, kith_out *out);
uint64_t pt_deadline(const kith_gossip *g);
/* A neighbour joined the active view / is leaving it (trees follow). */
void pt_neighbor_up(kith_gossip *g, gpeer *p, kith_out *out);
void pt_neighbor_gone(kith_gossip *g, gpeer *p, kith_out *out);
void pt_free_cached(gpointer v);
void pt_free_pending(gpointer v);

/* gossip_recon.c: anti-entropy */
/* id came and was forgotten (KITH_GOSSIP_LATER): the next reconciliation
 * asks for it again, of any peer. */
/* Was id asked for at the end of a reconciliation lately (a catch-up)?
 * If it was asked of p (NULL: unknown sender), p's stream of them is
 * noted as flowing at now. */
int rc_was_asked(kith_gossip *g, gpeer *p, const uint8_t id[32], uint64_t now);
void rc_forget_asked(kith_gossip *g, const uint8_t id[32]);
void rc_known_add(kith_gossip *g, uint64_t ts, const uint8_t id[32]);
int rc_known_full(const kith_gossip *g); /* the set in memory is full */
kith_err rc_recv(kith_gossip *g, gpeer *p, const msgpack_object *f, uint32_t nf,
                 uint64_t now, kith_out *out);
void rc_tick(kith_gossip *g, uint64_t now, kith_out *out);
uint64_t rc_deadline(const kith_gossip *g); /* 0: none */
void rc_peer_gone(kith_gossip *g, gpeer *p);

#endif
