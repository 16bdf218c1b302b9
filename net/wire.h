/* kith: decoders of what peers send to the node runtime besides session
 * records (session.h), signal envelopes (signal.h), ICE parameters (ice.h)
 * and the gossip engine's frames (core/gossip.h): link frames, signal
 * payloads, relayed signals and join requests.
 *
 * Each is a pure function of the bytes (no node state, no clock: the time
 * comes in), so that each one is fuzzed on its own (tests/fuzz/) and the
 * handlers in frames.c, peer.c, relay.c and join.c only act on decoded
 * values. The formats are in docs/protocol.md; the encoders stay with
 * their senders. */
#ifndef KITH_WIRE_H
#define KITH_WIRE_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../core/group.h"
#include "../core/ident.h"
#include "ice.h"
#include "signal.h"

/* Signal payloads (msgpack arrays inside the sealed envelope). */
enum { SIG_OFFER = 1, SIG_ANSWER = 2, SIG_REFUSE = 3, SIG_ELSEWHERE = 4 };
/* Session frames (msgpack arrays, encrypted on the link). Types 3 (EVENT)
 * and 4 (HAVE) are retired: a node ignores them. */
enum {
  FRAME_PING = 1,
  FRAME_PONG = 2,
  FRAME_ADDRS = 5,
  FRAME_GOSSIP = 6,       /* [6, group id, engine frame bin] */
  FRAME_RELAY = 7,        /* [7, kind, to, from, payload] (relay.c) */
  FRAME_BYE = 8,          /* [8]: the sender closes the link */
  FRAME_ELSEWHERE = 9,    /* [9, since]: an older instance of you was refused */
  FRAME_MOVE = 10,        /* [10, attempt]: my next records go on that path */
  FRAME_PATH_OFFER = 11,  /* [11, attempt, ice params bin]: try a path */
  FRAME_PATH_ANSWER = 12, /* [12, attempt, ice params bin] */
};

#define KITH_WIRE_ADDRS_MAX 64    /* entries of one ADDRS frame */
#define KITH_WIRE_HOST_MAX 63     /* bytes of a host in ADDRS */
#define KITH_WIRE_JOIN_MAX 1024   /* bytes of a join request */
#define KITH_WIRE_REASON_MAX 200  /* bytes of a refusal's reason */
#define KITH_WIRE_PARAMS_MAX 4096 /* bytes of ICE params in PATH_* */
/* A GOSSIP frame names its group by the whole id or its first 8 bytes. */
#define KITH_WIRE_GROUP_TAG_LEN 8

typedef struct kith_wire_addr {
  uint8_t id[KITH_ID_LEN];
  char host[KITH_WIRE_HOST_MAX + 1]; /* numeric IPv4 or IPv6 */
  uint16_t port;                     /* 1..65535 */
  uint64_t version; /* the owner's clock when it had this address */
} kith_wire_addr;

/* One decoded link frame: only the fields of its type are set. */
typedef struct kith_wire_frame {
  uint64_t type;   /* FRAME_*, or 0: a type (or arity) we do not know */
  uint64_t t;      /* PING, PONG: the pinger's clock; ELSEWHERE: since; MOVE,
                      PATH_OFFER, PATH_ANSWER: the attempt */
  uint8_t gid[32]; /* GOSSIP: the group id, or its first gid_len bytes */
  size_t gid_len;  /* GOSSIP: 32, or KITH_WIRE_GROUP_TAG_LEN */
  const uint8_t *data; /* GOSSIP: engine frame; RELAY: payload (borrow) */
  size_t len;
  uint64_t relay_kind; /* RELAY: 0 signal, 1 session bytes */
  uint8_t to[KITH_ID_LEN], from[KITH_ID_LEN]; /* RELAY */
  size_t n_addrs; /* ADDRS: the well-formed entries (others are skipped) */
  kith_wire_addr addrs[KITH_WIRE_ADDRS_MAX];
  kith_ice_params params; /* PATH_OFFER, PATH_ANSWER (validated) */
  msgpack_unpacked u;     /* data borrows from it */
} kith_wire_frame;

/* Decodes one decrypted link frame into f. Call kith_wire_frame_clear
 * afterwards, also on error. Returns KITH_OK (f->type 0 for a frame this
 * node does not know: newer peers may send them) or KITH_ERR_DECODE. */
KITH_MUST kith_err kith_wire_frame_decode(const uint8_t *buf, size_t len,
                                          kith_wire_frame *f);
void kith_wire_frame_clear(kith_wire_frame *f);

/* A signal payload: [kind, ice params bin, join request bin | nil, since
 * uint, nonce bin16] for an offer or answer (an answer's join is nil),
 * [3, reason str, nil] for a refusal, [4, since uint, nil] for ELSEWHERE
 * (the sender links to a newer instance of us). */
typedef struct kith_wire_signal {
  uint64_t kind;          /* SIG_* */
  kith_ice_params params; /* offer, answer */
  int has_join;           /* offer: not nil (join_len 0 if not a valid bin) */
  uint8_t join[KITH_WIRE_JOIN_MAX];
  size_t join_len;
  uint64_t since_ms; /* offer, answer: the sender's instance; ELSEWHERE */
  uint8_t nonce[16]; /* offer, answer: the sender's instance */
  char reason[KITH_WIRE_REASON_MAX + 1]; /* refuse */
} kith_wire_signal;

/* Returns KITH_OK or KITH_ERR_DECODE (also for invalid ICE parameters). */
KITH_MUST kith_err kith_wire_signal_decode(const uint8_t *buf, size_t len,
                                           kith_wire_signal *s);

/* A join request: [group id bin32, invite pk bin32, join proof bin64,
 * name str]. Returns KITH_OK or KITH_ERR_DECODE. */
typedef struct kith_wire_join {
  uint8_t gid[32];
  uint8_t invite_pk[32];
  uint8_t sig[KITH_SIG_LEN];
  char name[KITH_NAME_MAX + 1];
} kith_wire_join;

KITH_MUST kith_err kith_wire_join_decode(const uint8_t *buf, size_t len,
                                         kith_wire_join *j);

#endif
