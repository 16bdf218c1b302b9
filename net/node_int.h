/* kith: internals of the node runtime shared by net/node*.c and
 * net/peer.c. Not an API: everything here runs on the node's one
 * GMainContext. */
#ifndef KITH_NODE_INT_H
#define KITH_NODE_INT_H

#include <gio/gio.h>
#include <glib.h>
#include <msgpack.h>
#include <stdint.h>

#include "../core/gossip.h"
#include "../core/group.h"
#include "../core/ident.h"
#include "../core/invite.h"
#include "../core/store.h"
#include "control.h"
#include "ice.h"
#include "node.h"
#include "session.h"
#include "signal.h"

#define KITH_SECOND 1000
#define NODE_TICK_MS 1000
#define PEER_PING_MS (5 * KITH_SECOND)
#define PEER_IDLE_TIMEOUT_MS (30 * KITH_SECOND)
#define PEER_CONNECT_TIMEOUT_MS (15 * KITH_SECOND)
#define DIRECT_FAILED_MS (120 * KITH_SECOND) /* then try the address again */
#define PEER_OUTBUF_MAX (64u * 1024 * 1024)
#define PEER_MAX 256
#define SYNC_IDS_PER_FRAME 1024
#define STORE_BATCH_MAX 64       /* events per store transaction */
#define PUSH_WINDOW (256 * 1024) /* history queued on a link at a time */
#define SYNC_MAX_IDS (1u << 20)
#define RELAY_FALLBACK_MS (8 * KITH_SECOND)  /* ICE this long: use the relay */
#define OFFER_MIN_SIZE (KITH_SIGNAL_MAX - 4) /* room for any answer */
#define JOIN_RETRY_MS (3 * KITH_SECOND)

/* Signal payloads (msgpack arrays inside the sealed envelope). */
enum { SIG_OFFER = 1, SIG_ANSWER = 2, SIG_REFUSE = 3 };
/* Session frames (msgpack arrays, encrypted on the link). */
enum {
  FRAME_PING = 1,
  FRAME_PONG = 2,
  FRAME_EVENT = 3,
  FRAME_HAVE = 4,
  FRAME_ADDRS = 5,
  FRAME_GOSSIP = 6, /* [6, group id, engine frame bin] */
  FRAME_RELAY = 7,  /* [7, kind, to, from, payload] (relay.c) */
  FRAME_BYE = 8,    /* [8]: the sender closes the link */
};

typedef enum peer_state {
  PEER_GATHERING,  /* our ICE agent gathers; offer/answer not sent yet */
  PEER_OFFERED,    /* offer sent, waiting for the answer */
  PEER_CONNECTING, /* both sides know each other: ICE checks running */
  PEER_HANDSHAKE,  /* ICE ready; session handshake running */
  PEER_UP,         /* session established */
} peer_state;

typedef struct kith_node kith_node;
typedef struct node_join node_join;

typedef struct node_peer {
  kith_node *node;
  uint8_t id[KITH_ID_LEN];
  char id_text[KITH_ID_TEXT_LEN + 1];
  peer_state state;
  int offerer;  /* we sent the offer (session initiator) */
  int gathered; /* ICE gathering finished */
  int armed;    /* set up complete: may signal once gathered */
  kith_ice *ice;
  kith_session *sess;
  GByteArray *outbuf;  /* sealed records not yet taken by ICE */
  uint64_t started_ms; /* when this attempt began (monotonic) */
  uint64_t last_rx_ms;
  uint64_t ping_sent_ms;
  double rtt_ms;
  GSocketAddress *reply_to; /* answerer: where the offer came from */
  size_t offer_size;        /* answerer: size of the offer datagram */
  kith_ice_params remote;   /* answerer: the offer's ICE params */
  char offer_host[64];      /* offerer: where the offer goes */
  uint16_t offer_port;
  uint8_t *join; /* offerer: packed join request, or NULL */
  size_t join_len;
  GHashTable *have;      /* gid text -> GByteArray of ids from HAVE */
  GHashTable *have_sent; /* gid texts we sent our HAVE for */
  GQueue *push;          /* history to send: 64-byte (gid, event id) items */
  char via[KITH_ID_TEXT_LEN + 1]; /* relay friend our signalling used, or "" */
  int relayed; /* no ICE path: session bytes go through `via` */
  int closing; /* peer_close is running */
  int pumping;
} node_peer;

typedef struct node_group {
  kith_group *g;
  kith_gossip *gs;       /* the group's gossip engine while we are a member */
  uint64_t next_join_ms; /* when to try entering the overlay again */
  char id_text[KITH_ID_TEXT_LEN + 1];
  size_t secrets_saved;
} node_group;

struct node_join {
  kith_rpc_call *call;
  kith_invite inv;
  uint8_t target[KITH_ID_LEN]; /* the member we are trying to join through */
  char gid_text[KITH_ID_TEXT_LEN + 1];
  uint64_t deadline_ms;
  uint64_t next_try_ms;
  size_t next_addr;
  int admitted;
  GByteArray *expect; /* ids the admitter announced (after its HAVE) */
  int have_final;
};

struct kith_node {
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
  GHashTable *groups; /* gid text -> node_group* */
  GHashTable *peers;  /* node id text -> node_peer* */
  GHashTable *addrs;  /* node id text -> kith_stored_peer* (known addrs) */
  GPtrArray *joins;   /* node_join* */
  uint64_t start_ms;
  int loopback;
  const char *bind_addr;
  char stun_host[46]; /* numeric, "" for none */
  uint16_t stun_port;
  kith_turn turn[KITH_TURN_MAX];
  size_t n_turn;
  int relay;
  uint64_t dropped_frames;
  guint commit_source;       /* idle source committing the store batch, or 0 */
  GHashTable *friends;       /* id text -> kith_friend* */
  GHashTable *direct_failed; /* id text -> monotonic ms of the failure */
  GHashTable *relay_buckets; /* id text -> rate bucket (relay.c) */
  uint64_t relay_refusals, relayed_bytes, next_friend_ms;
  guint gossip_timer; /* timeout source for the engines' next deadline */
  uint64_t gossip_timer_at;
  int stopping;
  unsigned batch_writes;
};

/* node.c */
uint64_t node_now(void);     /* monotonic ms */
uint64_t node_wall_ms(void); /* Unix time ms: event timestamps */
void node_log(kith_node *n, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
node_group *node_group_get(kith_node *n, const uint8_t gid[32]);
node_group *node_group_add(kith_node *n, kith_group *g);
/* Where accepted events came from: made here, delivered by the gossip
 * engine, or sent in a newcomer's bulk history transfer. */
typedef enum acc_origin { ACC_LOCAL, ACC_GOSSIP, ACC_SYNC } acc_origin;

/* Stores and announces what a group accepted and hands it to the gossip
 * engine (publish, verdict or known). Empties acc, whose free function
 * must be kith_accepted_free. */
void node_accepted(kith_node *n, node_group *ng, GPtrArray *acc,
                   acc_origin origin);
/* Commits the store's open batch now (before answering a client). */
void node_store_flush(kith_node *n);
/* Did a direct attempt at id's remembered address fail lately? */
int node_direct_failed(kith_node *n, const uint8_t id[32]);
void node_note_direct_failure(kith_node *n, const uint8_t id[32]);
void node_remember_addr(kith_node *n, const uint8_t id[32], const char *host,
                        uint16_t port);
int node_shares_group(kith_node *n, const uint8_t id[32]);
const char *node_member_name(kith_node *n, const uint8_t id[32]);

/* peer.c: links */
node_peer *peer_connect(kith_node *n, const uint8_t id[32], const char *host,
                        uint16_t port, const uint8_t *join, size_t join_len);
void peer_on_signal(kith_node *n, const uint8_t from[32],
                    const uint8_t *payload, size_t len, GSocketAddress *src,
                    size_t size);
void peer_close(node_peer *p, const char *why);
void peer_send_frame(node_peer *p, const uint8_t *frame, size_t len);
void peer_tick(node_peer *p, uint64_t now);
void peer_reoffer(node_peer *p, const char *host, uint16_t port);
void peer_on_ping(node_peer *p, int kind, uint64_t t);
void peer_send_refuse(kith_node *n, const uint8_t to[32], GSocketAddress *dst,
                      size_t request_size, node_peer *relay,
                      const char *reason);
/* The link's path as kith peers shows it, and the remote address. */
const char *peer_path(const node_peer *p);
const char *peer_addr(const node_peer *p);

/* frames.c: link frames other than the engine's */
void frames_link_up(node_peer *p);
void frames_on_frame(node_peer *p, const uint8_t *buf, size_t len);
void frames_send_event(node_peer *p, const kith_event *ev);
void frames_pump(node_peer *p);
/* Is there a group that we, a and b all belong to? */
int nodes_share_group(kith_node *n, const uint8_t a[32], const uint8_t b[32]);
/* Tells linked members that share a group with sp's node where it is now
 * (sent when an address changes, so a node that restarts on another port
 * is found again; receivers pass on only what changes for them). */
void frames_announce_addr(kith_node *n, const kith_stored_peer *sp);

/* gossip.c: the per-group engines (core/gossip.h) on the node's links */
void gossip_group_update(kith_node *n, node_group *ng);
void gossip_group_stop(node_group *ng);
void gossip_link_up(kith_node *n, node_peer *p);
void gossip_link_down(kith_node *n, node_peer *p);
void gossip_on_frame(node_peer *p, const msgpack_object *it);
void gossip_note(kith_node *n, node_group *ng, const kith_accepted *a,
                 acc_origin origin);
int gossip_wants_link(kith_node *n, const uint8_t peer[32]);
void gossip_rpc_register(kith_node *n);

/* relay.c: relay friends */
kith_err relay_load(kith_node *n);
int relay_is_friend(kith_node *n, const uint8_t id[32]);
void relay_on_frame(node_peer *p, const msgpack_object *it);
void relay_tick(kith_node *n, uint64_t now);
node_peer *relay_pick(kith_node *n, const uint8_t to[32]);
KITH_MUST kith_err relay_send_signal(node_peer *relay, const uint8_t to[32],
                                     const uint8_t *payload, size_t len);
void relay_send_data(node_peer *relay, const uint8_t to[32],
                     const uint8_t *bytes, size_t len);
void relay_rpc_register(kith_node *n);

/* peer.c: what arrives through a relay friend */
void peer_on_relayed_signal(kith_node *n, const uint8_t from[32],
                            const uint8_t *payload, size_t len,
                            node_peer *relay);
void peer_on_relayed_data(kith_node *n, const uint8_t from[32],
                          const uint8_t *bytes, size_t len, node_peer *relay);
/* Offers a link to id with signalling through the relay friend `relay`. */
node_peer *peer_connect_via(kith_node *n, const uint8_t id[32],
                            node_peer *relay, const uint8_t *join,
                            size_t join_len);

/* join.c */
/* Admitter side: returns NULL to accept the joiner's offer, or the reason
 * for refusing it (static string). */
const char *join_on_offer(kith_node *n, const uint8_t from[32],
                          const msgpack_object *join);
void join_start(kith_node *n, kith_rpc_call *call, const char *code,
                uint64_t timeout_s);
void join_tick(kith_node *n, uint64_t now);
void join_on_refuse(kith_node *n, const uint8_t from[32], const char *reason);
void join_on_have(kith_node *n, node_peer *p, node_group *ng,
                  const GByteArray *ids);
void join_check_progress(kith_node *n);
void join_free(node_join *j);

/* node_rpc.c */
void node_rpc_register(kith_node *n);
/* Answers call with what pk holds (after committing the store batch). */
void node_rpc_reply(kith_node *n, kith_rpc_call *call, kith_pack *pk);
/* params[i] as a string copied into out (cap bytes); 0 if it is not one. */
int node_rpc_param_str(const msgpack_object *params, uint32_t i, char *out,
                       size_t cap);

#endif
