/* kith: internals of the node runtime shared by net/node*.c and
 * net/peer.c. Not an API: everything here runs on the node's one
 * GMainContext. */
#ifndef KITH_NODE_INT_H
#define KITH_NODE_INT_H

#include <gio/gio.h>
#include <glib.h>
#include <msgpack.h>
#include <stdint.h>

#include "../core/codec.h"
#include "../core/gossip.h"
#include "../core/group.h"
#include "../core/ident.h"
#include "../core/invite.h"
#include "../core/presence.h"
#include "../core/ratelimit.h"
#include "../core/replay.h"
#include "../core/store.h"
#include "control.h"
#include "crypt.h"
#include "ice.h"
#include "outq.h"
#include "node.h"
#include "path.h"
#include "session.h"
#include "signal.h"
#include "wire.h"

#define KITH_SECOND 1000
#define NODE_TICK_MS 1000
#define PEER_PING_MS (5 * KITH_SECOND)
#define PEER_IDLE_TIMEOUT_MS (30 * KITH_SECOND)
#define PEER_CONNECT_TIMEOUT_MS (15 * KITH_SECOND)
#define DIRECT_FAILED_MS (120 * KITH_SECOND) /* then try the address again */
#define PEER_OUTBUF_MAX (64u * 1024 * 1024)
#define PEER_MAX 256
#define STORE_BATCH_MAX 256             /* events per store transaction */
#define STORE_COMMIT_MS 50              /* a batch of peers' events, at most */
#define STORE_LOG_MS (10 * KITH_SECOND) /* one line per failed-write spell */
#define PUSH_WINDOW (256 * 1024)   /* fetched events queued on a link at once */
#define FETCH_QUEUE_MAX (1u << 20) /* events waiting to be sent on a link */
#define FETCH_REORDER_STEPS 65536  /* queued events one is moved ahead of */
#define RELAY_HS_WAIT_MS (2 * KITH_SECOND) /* silent relay: ICE instead */
#define PEER_IN_MAX (16u * 1024 * 1024)    /* bytes held for a later carrier */
#define RELAY_RATE (256 * 1024)            /* bytes per second per friend */
#define RELAY_BURST (1024 * 1024)
/* A link's received frames are handled in slices of about this long
 * (us) of the main loop, the link reads in between (peer.c) */
#define FRAMES_SLICE_US 2000
/* what a node sends through one relay friend: under the relay's limit */
#define RELAY_PACE_RATE (RELAY_RATE * 7 / 8)
#define RELAY_PACE_BURST (RELAY_BURST / 2)
#define RELAYED_SEEN_CAP 4096     /* relayed envelopes remembered */
#define RELAYED_SEEN_PER_RELAY 64 /* ... per relay that passed them */
#define OFFER_MIN_SIZE (KITH_SIGNAL_MAX - 4) /* room for any answer */
#define JOIN_RETRY_MS (3 * KITH_SECOND)
#define ADMISSION_KEEP_MS (10 * 60 * KITH_SECOND) /* joiners' adds, kept */
#define ADMISSIONS_MAX 256
#define ADDR_SKEW_MS (120 * KITH_SECOND) /* address times from the future */
#define ADDRS_RATE 1.0  /* ADDRS announcements per second per link */
#define ADDRS_BURST 4.0 /* ... and in a burst */
#define SHUTDOWN_DRAIN_MAX                                                     \
  100 /* main-loop rounds that let ICE agents close                            \
       */

/* One run of a node (instance.c): when it started (wall clock) and 16
 * random bytes. */
typedef struct node_instance {
  uint64_t since_ms;
  uint8_t nonce[16];
} node_instance;

typedef enum peer_state {
  PEER_GATHERING,  /* our ICE agent gathers; offer/answer not sent yet */
  PEER_OFFERED,    /* offer sent, waiting for the answer */
  PEER_CONNECTING, /* both sides know each other: ICE checks running */
  PEER_HANDSHAKE,  /* ICE ready; session handshake running */
  PEER_UP,         /* session established */
} peer_state;

typedef struct kith_node kith_node;
typedef struct node_join node_join;
typedef struct node_reflex node_reflex;

/* A way for a link's session records to reach the peer (docs/protocol.md
 * 9.4): slot CAR_RELAY is the relay friend `via`, the others ICE agents
 * (the offer's, then probes for a better path). */
#define PEER_CARRIERS 3
#define CAR_RELAY 0
#define PEER_DESTS 8 /* signal addresses an offer goes to at once */
typedef struct node_carrier {
  struct node_peer *peer;
  int slot;
  kith_ice *ice;    /* NULL for CAR_RELAY, or a slot not in use */
  uint64_t attempt; /* ICE attempt (1: the offer's; 2..: probes); 0 relay */
  kith_outq out;    /* sealed records it has not taken yet */
  GByteArray *in;   /* bytes it brought before the session reads it */
  uint64_t started_ms;
  int ready;    /* it carries bytes */
  int gathered; /* ICE: candidates gathered */
  int answered; /* ICE probe: the remote parameters are set */
  int used;     /* it has been the tx or rx carrier */
  int rx_left;  /* the peer moved its records off it (MOVE) */
} node_carrier;

typedef struct node_peer {
  kith_node *node;
  uint8_t id[KITH_ID_LEN];
  char id_text[KITH_ID_TEXT_LEN + 1];
  peer_state state;
  int offerer; /* we sent the offer (session initiator) */
  int armed;   /* set up complete: may signal once gathered */
  node_carrier car[PEER_CARRIERS];
  int tx, rx;        /* carriers the session writes to and reads from */
  uint64_t attempts; /* the last ICE attempt number used on this link */
  kith_ice_params probe_remote; /* answerer of a probe: its offer */
  unsigned probe_failures;      /* probes in a row that found nothing better */
  uint64_t next_probe_ms;
  uint64_t path_since_ms; /* monotonic: when the path in use was taken */
  char path_seen[16];     /* the path in use then */
  kith_session *sess;
  kith_crypt *crypt;   /* the session's records on the worker (crypt.h) */
  uint64_t started_ms; /* when this attempt began (monotonic) */
  uint64_t last_rx_ms;
  uint64_t ping_sent_ms;
  double rtt_ms;
  GSocketAddress *reply_to;    /* answerer: where the offer came from */
  size_t offer_size;           /* answerer: size of the offer datagram */
  kith_ice_params remote;      /* answerer: the offer's ICE params */
  kith_addr dests[PEER_DESTS]; /* offerer: where the offer goes */
  size_t n_dests;
  uint8_t *join; /* offerer: packed join request, or NULL */
  size_t join_len;
  GQueue *push;         /* events to send in order (gossip.c push_item) */
  GHashTable *queued;   /* id texts of the events push fetches (a set) */
  GHashTable *announce; /* node id texts whose address to tell this peer */
  kith_bucket announce_rate;
  kith_bucket relay_pace; /* as a relay friend: what links through it send */
  char via[KITH_ID_TEXT_LEN + 1]; /* relay friend our signalling used, or "" */
  int relayed; /* the session's records go through `via` now */
  int closed;  /* peer_close ran: inert, waiting for the reaper (below) */
  char stun_host[46]; /* the STUN server its ICE agents use, or "" */
  node_instance inst; /* the peer's, from its offer or answer */
  int has_inst;
  int pumping;
  guint pump_soon; /* idle source: gossip_pump after the frames at hand */
  int moving;      /* sealing MOVE: nothing else may be sealed meanwhile */
  int flush_due;   /* records sealed this round wait for the round's end */
  /* opened frames (GBytes) not handled yet, in order; the records after
   * them could not be opened (rx_err); the idle source of the next slice;
   * a slice is running (handlers may feed more): peer.c, run_frames */
  GQueue *rx_frames;
  kith_err rx_err;
  guint rx_source;
  int in_frames;
} node_peer;

typedef struct node_group {
  kith_group *g;
  kith_gossip *gs; /* the group's gossip engine while we are a member */
  struct node_recon *recon; /* its reconciliation set, on the store */
  uint64_t next_join_ms;    /* when to try entering the overlay again */
  char id_text[KITH_ID_TEXT_LEN + 1];
  int member;        /* this node was a member after the last accepted batch */
  kith_presence *pr; /* who was heard from lately (presence.c) */
  uint64_t beat_at;  /* our next presence beat */
  uint32_t beat_links; /* the engine's active view at the last tick */
} node_group;

/* An admission this node made (join.c), sent first to the joiner. */
typedef struct node_admission {
  uint8_t gid[32];
  GByteArray *ids; /* the events that admitted it, 32 bytes each */
  uint64_t until_ms;
} node_admission;

struct node_join {
  kith_rpc_call *call;
  kith_invite inv;
  uint8_t target[KITH_ID_LEN]; /* the member we are trying to join through */
  char gid_text[KITH_ID_TEXT_LEN + 1];
  uint64_t deadline_ms;
  uint64_t next_try_ms;
  size_t next_addr;
  int admitted;
  /* Its timeline (node_now, ms; 0: not yet), logged when it succeeds
   * (join_log): the request, the link to the target up, the first and
   * the last event of the group accepted meanwhile, and how many. */
  uint64_t t_start, t_link, t_first, t_last, events;
  /* at the request: the main thread's CPU time, and the node's frames_us
   * and commit_us (us) */
  uint64_t cpu0_us, frames0_us, commit0_us, checked0;
};

struct kith_node {
  /* main-loop time (us, monotonic, since the start) spent handling the
   * frames of sessions (take_frames: the ingest of what peers send) and
   * committing store batches (part of the former, mostly) */
  uint64_t frames_us, commit_us;
  /* the frame being handled, while the crypto worker verified part of it
   * (checked_mark: which part, for which group), or NULL: peer.c,
   * run_frames; gossip.c, deliver */
  const uint8_t *checked;
  kith_crypt_mark checked_mark;
  uint64_t checked_events; /* delivered with the worker's check: deliver */
  GMainContext *ctx;
  GMainLoop *loop;
  char *home;
  int lock_fd;
  kith_store *store;
  kith_ident me;
  char *name;
  char me_text[KITH_ID_TEXT_LEN + 1];
  kith_signal *sig;
  kith_control *ctl;
  GHashTable *groups;     /* gid text -> node_group* */
  GHashTable *peers;      /* node id text -> node_peer* */
  GHashTable *addrs;      /* node id text -> kith_stored_peer* (known addrs) */
  GPtrArray *joins;       /* node_join* */
  GHashTable *admissions; /* joiner id text -> node_admission* */
  uint64_t start_ms;
  int loopback;
  const char *bind_addr;
  char stun_host[46]; /* numeric, "" for none */
  uint16_t stun_port;
  kith_turn turn[KITH_TURN_MAX];
  size_t n_turn;
  int relay;
  uint64_t dropped_frames;
  uint64_t addr_changes;      /* addresses that changed (stored, announced) */
  uint64_t addrs_sent;        /* ADDRS frames sent */
  guint commit_source;        /* timer committing the store batch, or 0 */
  GHashTable *friends;        /* id text -> kith_friend* */
  GHashTable *direct_failed;  /* id text -> monotonic ms of the failure */
  kith_ratelimit *relay_rate; /* bytes relayed per friend (relay.c) */
  kith_replay *relayed_seen;  /* relayed signalling taken (relay.c) */
  uint64_t relay_replays;
  uint64_t relay_refusals, relayed_bytes;
  guint gossip_timer; /* timeout source for the engines' next deadline */
  uint64_t gossip_timer_at;
  uint64_t presence_min_ms; /* the smallest beat period (KITH_PRESENCE_MS) */
  int stopping;
  unsigned batch_writes;
  node_reflex *reflex;      /* STUN on the signal port (reflex.c) */
  GPtrArray *doctor_runs;   /* kith doctor reports being made (doctor.c) */
  GHashTable *batch_groups; /* gid texts with writes in the open batch */
  uint64_t store_failures, store_failed_ms;
  node_instance inst;          /* this run (instance.c) */
  uint64_t inst_backoff_until; /* an older instance: no new links until */
  uint64_t inst_warned_ms;     /* last identity-conflict warning */
  GPtrArray *retired;          /* closed node_peer*, freed by the reaper */
  GHashTable *backoff;         /* id text -> peer backoff (peer.c), or NULL */
  uint32_t local_addrs_hash;   /* of the local addresses, last tick */
  guint reaper;                /* idle source freeing `retired`, or 0 */
  guint flush_source;          /* idle source sending this round's records */
  guint tick_source, quit_sources[2];
};

/* node.c */
uint64_t node_now(void);     /* monotonic ms */
uint64_t node_wall_ms(void); /* Unix time ms: event timestamps */
void node_log(kith_node *n, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
node_group *node_group_get(kith_node *n, const uint8_t gid[32]);
node_group *node_group_add(kith_node *n, kith_group *g);
/* Where accepted events came from: made here, or delivered by the gossip
 * engine. */
typedef enum acc_origin { ACC_LOCAL, ACC_GOSSIP } acc_origin;

/* Events from peers: stores them (batched), announces them and hands them
 * to the gossip engine (verdict or known). If the store loses the batch,
 * its groups are reloaded from the store and what was not written is
 * dropped (peers send it again). Empties acc, whose free function must be
 * kith_accepted_free. */
void node_accepted(kith_node *n, node_group *ng, GPtrArray *acc,
                   acc_origin origin);
/* Opens a store batch (if none is open) that commits at the end of this
 * main-loop round: call it before anything that makes a group accept
 * events from peers. */
void node_batch(kith_node *n);
/* Tells subscribers of a new or changed log item, and this node's clients
 * that it was removed (node_log.c). was_member: before this batch. */
void node_notify_accepted(kith_node *n, node_group *ng, const kith_accepted *a,
                          int was_member);
/* Events made here (a send, a group change, an admission, a rekey):
 * node_local_begin opens a batch for the change unless one (of peers'
 * events) is open already; the engine call writes into it; node_local_end
 * writes the groups' keys and chains and commits the batch (the peers'
 * events in it too), synced to the disk, and only then announces and
 * publishes acc. On a failed write nothing of the batch is on disk, in
 * memory or sent: its groups are reloaded from the store (a new group,
 * new_group, is left to the caller to drop), and the error
 * (KITH_ERR_FULL for a full disk) is returned for the caller to report.
 * A caller that may abort the batch (kith_store_batch_abort) commits the
 * peers' events first (node_store_flush). Empties acc. */
void node_local_begin(kith_node *n);
kith_err node_local_end(kith_node *n, node_group *ng, GPtrArray *acc,
                        int new_group);
/* The bytes of event id of the group, for a peer that asked for it (the
 * one place events are fetched for peers); *ts_ms gets its time. A new
 * reference (g_bytes_unref), or NULL if the group does not hold it. */
GBytes *node_event_raw(kith_node *n, node_group *ng, const uint8_t id[32],
                       uint64_t *ts_ms);
/* Commits the store's open batch now (before answering a client). On
 * failure the batch is lost and its groups reloaded. */
kith_err node_store_flush(kith_node *n);
/* Did a direct attempt at id's remembered address fail lately? */
int node_direct_failed(kith_node *n, const uint8_t id[32]);
void node_note_direct_failure(kith_node *n, const uint8_t id[32]);
/* Learns that node id's signal port is host:port as of ts_ms (the node's
 * own clock: the signed time of its datagram, or the time an ADDRS entry
 * carries). Only newer news counts; an address that does not change is
 * neither stored nor announced again (docs/protocol.md 11.5). first_hand:
 * seen in a verified datagram of the node itself, which overrides what
 * others said even if their time is later (a clock that went back). */
void node_remember_addr(kith_node *n, const uint8_t id[32], const char *host,
                        uint16_t port, uint64_t ts_ms, int first_hand);
int node_shares_group(kith_node *n, const uint8_t id[32]);
const char *node_member_name(kith_node *n, const uint8_t id[32]);

/* peer.c: links
 *
 * Life cycle (docs/architecture.md): the node owns its peers through the
 * table n->peers, which holds open peers only. peer_close() retires a peer
 * at once (out of the table, ICE released so no callback can name it, its
 * engines told) but never frees it: the node's reaper frees retired peers
 * from an idle callback, after the callback that closed them has returned.
 * A node_peer pointer is therefore valid until the current main-loop
 * callback returns; after any call that may close it, test p->closed. */
node_peer *peer_find(kith_node *n, const uint8_t id[32]);
/* The peer's link if it is up (session established), else NULL. */
node_peer *peer_find_up(kith_node *n, const uint8_t id[32]);
int peer_is_up(const node_peer *p);
/* Frees every retired peer (the reaper; node.c). */
void peer_free(node_peer *p);
/* Hands a closed peer to the reaper (node.c). */
void node_retire_peer(kith_node *n, node_peer *p);
node_peer *peer_connect(kith_node *n, const uint8_t id[32], const char *host,
                        uint16_t port, const uint8_t *join, size_t join_len);
/* A verified datagram of the signal port (m->src set) or one that came
 * through a relay (m->src NULL). */
void peer_on_signal(kith_node *n, const kith_signal_msg *m, node_peer *relay);
void peer_close(node_peer *p, const char *why);
void peer_send_frame(node_peer *p, const uint8_t *frame, size_t len);
/* Sends the frame [type, v]. */
void peer_send_uint_frame(node_peer *p, int type, uint64_t v);
void peer_tick(node_peer *p, uint64_t now);
void peer_reoffer(node_peer *p, const char *host, uint16_t port);
void peer_on_ping(node_peer *p, int kind, uint64_t t);
void peer_send_refuse(kith_node *n, const uint8_t to[32], GSocketAddress *dst,
                      size_t request_size, node_peer *relay,
                      const char *reason);
/* A re-sent offer (protocol.md 8.4): is ufrag that of the offer p answers,
 * and does p answer it again (yes from the answer until the link is up:
 * the answer may have been lost; not while gathering, when the answer is
 * still to come, nor once up)? */
int peer_is_same_offer(const node_peer *p, const char *ufrag);
int peer_answers_again(const node_peer *p);
/* The link's path as kith peers shows it, and the remote address. */
const char *peer_path(const node_peer *p);
const char *peer_addr(const node_peer *p);
/* Seconds since the link took the path it is on. */
uint64_t peer_path_age_s(const node_peer *p, uint64_t now);
/* Sealed bytes the link has not handed to its carriers yet. */
size_t peer_unsent(const node_peer *p);
/* Sends the offer of p (an offerer waiting for its answer) through the
 * relay friend or common neighbour `relay` too. */
void peer_offer_via(node_peer *p, node_peer *relay);
/* One reconnect rule (protocol.md 9.4): may a link to id be offered now?
 * Each offer that does not bring a link up makes the next wait (about 1 s,
 * doubling up to about 60 s, with jitter); a link that comes up, a new
 * address of the node, or a change of this node's local addresses clears
 * it. Joins are not held back. */
int peer_may_connect(kith_node *n, const uint8_t id[32]);
void peer_backoff_reset(kith_node *n, const uint8_t id[32]);
/* The node's tick: local addresses appeared or changed? Then every wait
 * is cleared and relayed links probe for a direct path at once. */
void peer_watch_addrs(kith_node *n, uint64_t now);

/* peer.c: the session's bytes, from the carrier it reads */
void peer_feed(node_peer *p, const uint8_t *buf, size_t len);
/* peer.c: a new session (and its crypto worker link) for p; 0 if none */
int peer_new_session(node_peer *p);
/* peer.c: sends the link's offer or answer once its ICE agent gathered */
void peer_signal_when_ready(node_peer *p);

/* carrier.c: what carries a link's session records (protocol.md 9.4) */
void carrier_init(node_peer *p);
/* Lets go of every ICE agent (no callback names p afterwards). */
void carrier_release(node_peer *p);
void carrier_free(node_peer *p);
/* A new ICE agent in slot for ICE attempt `attempt`. */
KITH_MUST kith_err carrier_ice_new(node_peer *p, int slot, uint64_t attempt);
/* Seals a frame for the carrier the session writes to (not sent yet). */
KITH_MUST kith_err carrier_seal(node_peer *p, const uint8_t *frame, size_t len);
/* Hands queued records to the carriers; may close p. */
void carrier_flush(node_peer *p);
/* Best effort, never closes: the last records (BYE) of a closing link. */
void carrier_send_last(node_peer *p);
/* After a batch of frames: the bytes a carrier held for after a MOVE. */
void carrier_after_frames(node_peer *p);
/* The answer is in (offerer) or out (answerer): the relay friend `via`,
 * if it is one, may carry the session now. */
void carrier_relay_answered(node_peer *p);
void carrier_link_up(node_peer *p);
/* MOVE, PATH_OFFER, PATH_ANSWER from p. */
void carrier_on_frame(node_peer *p, const kith_wire_frame *f);
/* Probes, their timeouts, and the relay handshake's fallback. */
void carrier_tick(node_peer *p, uint64_t now);
void carrier_probe_soon(node_peer *p);
/* The relay friend p's signalling went through, if linked. */
node_peer *carrier_relay_peer(node_peer *p);

/* frames.c: link frames other than the engine's */
void frames_link_up(node_peer *p);
void frames_on_frame(node_peer *p, const uint8_t *buf, size_t len);
/* Is there a group that we, a and b all belong to? */
int nodes_share_group(kith_node *n, const uint8_t a[32], const uint8_t b[32]);
/* Tells linked members that share a group with sp's node where it is now
 * (sent when an address changes, so a node that restarts on another port
 * is found again; receivers pass on only what changes for them). At most
 * ADDRS_RATE frames per second per link: what waits goes out with the next
 * one (frames_flush_addrs, from the tick). */
void frames_announce_addr(kith_node *n, const kith_stored_peer *sp);
void frames_flush_addrs(node_peer *p, uint64_t now);

/* gossip.c: the per-group engines (core/gossip.h) on the node's links */
void gossip_group_update(kith_node *n, node_group *ng);
void gossip_group_stop(node_group *ng);
void gossip_link_up(kith_node *n, node_peer *p);
void gossip_link_down(kith_node *n, node_peer *p);
/* Sends queued fetched events while the link's send buffer is short
 * (called again as it drains). */
void gossip_pump(node_peer *p);
/* Frees an item of node_peer.push. */
void gossip_push_free(gpointer item);
/* A FRAME_GOSSIP from p: the engine frame buf for the group whose id is,
 * or begins with, the gid_len bytes of gid. */
void gossip_on_frame(node_peer *p, const uint8_t *gid, size_t gid_len,
                     const uint8_t *buf, size_t len);
/* The crypto worker's check of a link's bulk frames (net/crypt.h): the
 * signature of the event in a FRAME_GOSSIP's PAYLOAD frame is verified
 * there, for the group the frame names (the ids of the node's groups as
 * the job started: gossip_check_begin), and not again when the event is
 * delivered (deliver) if the bytes are the same. */
void *gossip_check_begin(kith_node *n);
void gossip_check_frame(const void *ctx, const uint8_t *frame, size_t len,
                        kith_crypt_mark *m);
void gossip_check_free(void *ctx);
void gossip_note(kith_node *n, node_group *ng, const kith_accepted *a,
                 acc_origin origin);
int gossip_wants_link(kith_node *n, const uint8_t peer[32]);
void gossip_rpc_register(kith_node *n);
/* Publishes an ephemeral payload (a presence beat) in the group. */
void gossip_publish_ephemeral(kith_node *n, node_group *ng, const uint8_t *buf,
                              size_t len);

/* presence.c: presence beats and who is online (docs/protocol.md 11.7.7) */
void presence_init(kith_node *n); /* reads KITH_PRESENCE_MS */
void presence_tick(kith_node *n); /* beats that are due */
void presence_stop(kith_node *n); /* offline beats, before links close */
/* This node published an event in the group: it stands for a beat. */
void presence_published(kith_node *n, node_group *ng);
/* The verdict on an ephemeral payload the group's engine delivered. */
kith_gossip_verdict_kind presence_judge(kith_node *n, node_group *ng,
                                        const uint8_t *data, size_t len);
/* An event of another member accepted by gossip: heard from its author. */
void presence_heard(kith_node *n, node_group *ng, const kith_event *ev);
/* 1 if member id is online: this node, linked, or heard lately; sets
 * *last_seen_ms (wall clock; 0: never heard). */
int presence_online(kith_node *n, node_group *ng, const uint8_t id[32],
                    uint64_t *last_seen_ms);

/* relay.c: relay friends */
kith_err relay_load(kith_node *n);
int relay_is_friend(kith_node *n, const uint8_t id[32]);
void relay_on_frame(node_peer *p, const kith_wire_frame *f);
void relay_tick(kith_node *n, uint64_t now);
node_peer *relay_pick(kith_node *n, const uint8_t to[32]);
KITH_MUST kith_err relay_send_signal(node_peer *relay, const uint8_t to[32],
                                     const uint8_t *payload, size_t len);
void relay_send_data(node_peer *relay, const uint8_t to[32],
                     const uint8_t *bytes, size_t len);
void relay_rpc_register(kith_node *n);

/* peer.c: what arrives through a relay friend */
void peer_on_relayed_data(kith_node *n, const uint8_t from[32],
                          const uint8_t *bytes, size_t len, node_peer *relay);
/* Offers a link to id with signalling through the relay friend `relay`. */
node_peer *peer_connect_via(kith_node *n, const uint8_t id[32],
                            node_peer *relay, const uint8_t *join,
                            size_t join_len);

/* reflex.c: STUN on the signal port: answering friends (--relay), and
 * learning this node's public address from relay friends and --stun */
#define REFLEX_ADDR_LEN 64 /* "ip:port" */
void reflex_init(kith_node *n);
void reflex_clear(kith_node *n);
/* The signal port's STUN hook (kith_signal_set_stun, ud = the node). */
void reflex_on_stun(kith_signal *s, const uint8_t *buf, size_t len,
                    GSocketAddress *src, void *ud);
/* A verified signal datagram from `from` came from src: a friend's source
 * address may use this node as its STUN server for a while. */
void reflex_note_sender(kith_node *n, const uint8_t from[32],
                        GSocketAddress *src);
/* Probes the relay friends and --stun every minute (every 10 s while
 * none answered); reflex_refresh makes the next tick probe at once. */
void reflex_tick(kith_node *n, uint64_t now);
void reflex_refresh(kith_node *n);
/* The STUN server for an ICE agent to peer: --stun, else a relay friend
 * (not peer) that answered this node lately. 0 if none. */
int reflex_stun_server(kith_node *n, const uint8_t peer[32], char host[46],
                       uint16_t *port);
/* This node's public signal addresses (answers of the last 5 minutes,
 * newest first, none that is in local[]): at most max written to out. */
size_t reflex_public_addrs(kith_node *n, const kith_addr *local, size_t n_local,
                           kith_addr *out, size_t max);
/* One STUN binding probe from the signal port to host:port (numeric
 * IPv4): cb runs once, with the mapped "ip:port" and the round trip, or
 * with mapped NULL after 2 s without an answer (resent every 500 ms).
 * reflex_forget drops the probes of ud without calling back. */
typedef void (*reflex_cb)(void *ud, const char *server, const char *mapped,
                          double rtt_ms);
KITH_MUST kith_err reflex_probe(kith_node *n, const char *host, uint16_t port,
                                reflex_cb cb, void *ud);
void reflex_forget(kith_node *n, void *ud);

/* doctor.c: the connectivity report (RPC "doctor") */
void doctor_rpc_register(kith_node *n);
/* Answers the reports still being made with an error (node stopping). */
void doctor_stop(kith_node *n);

/* instance.c: one identity, one running node */
void instance_init(kith_node *n);
/* 0 while this node holds back after being told it is the older instance. */
int instance_may_link(kith_node *n);
/* An offer from an older instance of cur's node while cur (a newer one) is
 * alive: answers it with ELSEWHERE, tells cur, and returns 1 (refused). */
int instance_refuses_offer(kith_node *n, node_peer *cur,
                           const kith_signal_msg *m, const node_instance *inst,
                           node_peer *relay);
/* ELSEWHERE from a peer we offered to: this node is the older instance. */
void instance_on_elsewhere(kith_node *n, const uint8_t from[32],
                           uint64_t since);
/* FRAME_ELSEWHERE: an older instance of this node was refused by p. */
void instance_on_frame(node_peer *p, uint64_t since);

/* join.c */
/* Admitter side: returns NULL to accept the joiner's offer, or the reason
 * for refusing it (static string). */
const char *join_on_offer(kith_node *n, const uint8_t from[32],
                          const uint8_t *join, size_t join_len);
void join_start(kith_node *n, kith_rpc_call *call, const char *code,
                uint64_t timeout_s);
void join_tick(kith_node *n, uint64_t now);
void join_on_refuse(kith_node *n, const uint8_t from[32], const char *reason);
void join_check_progress(kith_node *n);
/* A link came up: a join waiting for a link to a relay friend goes on. */
void join_on_link_up(kith_node *n, node_peer *p);
/* ng accepted k events (any origin): a join of ng notes them in its
 * timeline. */
void join_note_accepted(kith_node *n, node_group *ng, size_t k);
/* Is this node joining ng (a join by invite code is running)? */
int node_is_joining(kith_node *n, node_group *ng);
/* Sends p the group's create and the events that admitted it to ng, if
 * this node admitted it lately (they carry its keys: it needs them before
 * the history). */
void join_send_admission(kith_node *n, node_group *ng, node_peer *p,
                         kith_out *o);
void node_admission_free(node_admission *a);
void join_free(node_join *j);

/* node_rpc.c */
void node_rpc_register(kith_node *n);
/* Answers call with what pk holds (after committing the store batch). */
void node_rpc_reply(kith_node *n, kith_rpc_call *call, kith_pack *pk);
/* params[i] as a string copied into out (cap bytes); 0 if it is not one. */
int node_rpc_param_str(const msgpack_object *params, uint32_t i, char *out,
                       size_t cap);

#endif
