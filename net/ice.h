/* kith: one ICE link to one peer (libnice, RFC 8445, reliable mode).
 *
 * One NiceAgent with one stream of one component, pseudo-TCP reliable
 * transport: kith_ice_send is a byte stream (the session frames it).
 * Candidates and credentials are exchanged as msgpack (see
 * kith_ice_params_encode) inside sealed signalling messages. */
#ifndef KITH_ICE_H
#define KITH_ICE_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../core/err.h"

#define KITH_ICE_MAX_CANDS 16
#define KITH_ICE_UFRAG_MAX 32
#define KITH_ICE_PWD_MAX 64
/* gathering is reported done by then even if a server has not answered */
#define KITH_ICE_GATHER_WAIT_MS 1000

typedef enum kith_cand_type {
  KITH_CAND_HOST = 0,
  KITH_CAND_SRFLX = 1,
  KITH_CAND_PRFLX = 2,
  KITH_CAND_RELAY = 3,
} kith_cand_type;

typedef struct kith_ice_cand {
  char foundation[33];
  uint32_t priority;
  char addr[46]; /* numeric IPv4 or IPv6 */
  uint16_t port;
  kith_cand_type type;
} kith_ice_cand;

typedef struct kith_ice_params {
  char ufrag[KITH_ICE_UFRAG_MAX + 1];
  char pwd[KITH_ICE_PWD_MAX + 1];
  size_t n_cands;
  kith_ice_cand cands[KITH_ICE_MAX_CANDS];
} kith_ice_params;

/* msgpack: [ufrag str, pwd str, [[foundation str, priority uint, addr str,
 * port uint, type uint], ...]]. decode validates every field (lengths,
 * numeric address, port 1..65535, priority > 0, known type). */
KITH_MUST kith_err kith_ice_params_encode(const kith_ice_params *p,
                                          uint8_t **out, size_t *len);
KITH_MUST kith_err kith_ice_params_decode(const uint8_t *buf, size_t len,
                                          kith_ice_params *p);
/* Encodes p like kith_ice_params_encode, but in at most max_bytes: the
 * candidates sorted by priority (highest first, ties in p's order) and cut
 * to the largest number k whose encoding fits, so the k highest-priority
 * ones are kept. At least one is kept when p has any: if even one does not
 * fit (or, with none, the credentials alone do not), KITH_ERR_LIMIT. Use it
 * to fit an offer into a signal payload (KITH_SIGNAL_MAX_PAYLOAD less the
 * other fields): 16 candidates may need ~1.5 KB (up to 91 bytes each, with
 * a 32-character foundation and a 45-character IPv6 address, plus 104 for
 * the credentials), more than a datagram carries. p is not changed.
 * KITH_ERR_ARG if p is invalid (as for kith_ice_params_encode). On success
 * *out is g_malloc'ed (caller frees); otherwise *out is NULL. */
KITH_MUST kith_err kith_ice_params_encode_max(const kith_ice_params *p,
                                              size_t max_bytes, uint8_t **out,
                                              size_t *len);

typedef struct kith_ice kith_ice;

#define KITH_TURN_MAX 4 /* TURN servers a node uses */

/* A TURN server (UDP), from turn://USER:PASS@HOST:PORT. */
typedef struct kith_turn {
  char host[46]; /* numeric IPv4 or IPv6 */
  uint16_t port;
  char user[65];
  char pass[65];
} kith_turn;

/* Parses turn://USER:PASS@HOST:PORT (HOST numeric; port default 3478).
 * KITH_ERR_ARG with nothing written if malformed. */
KITH_MUST kith_err kith_turn_parse(const char *url, kith_turn *t);

typedef struct kith_ice_config {
  int controlling;       /* the side with the smaller node id controls */
  int loopback;          /* also gather on 127.0.0.1 (tests, one machine) */
  const char *only_addr; /* if set: gather on this IPv4 address only
                            (e.g. "127.0.0.1"); overrides loopback */
  const char *stun_host; /* numeric address, NULL: none */
  uint16_t stun_port;
  const struct kith_turn *turn; /* TURN servers (relayed candidates) */
  size_t n_turn;
} kith_ice_config;

typedef struct kith_ice_callbacks {
  /* gathering finished: kith_ice_local_params is now complete */
  void (*on_gathered)(kith_ice *ice, void *ud);
  /* ready = 1: the link carries data; ready = 0: it failed for good */
  void (*on_state)(kith_ice *ice, int ready, void *ud);
  void (*on_recv)(kith_ice *ice, const uint8_t *buf, size_t len, void *ud);
  /* the send buffer has room again after a short kith_ice_send */
  void (*on_writable)(kith_ice *ice, void *ud);
  /* after ready: the selected pair changed (kith_ice_path may differ);
   * may be NULL */
  void (*on_path)(kith_ice *ice, void *ud);
} kith_ice_callbacks;

/* Starts gathering on ctx. cbs is copied; ud is passed back. */
KITH_MUST kith_err kith_ice_new(GMainContext *ctx, const kith_ice_config *cfg,
                                const kith_ice_callbacks *cbs, void *ud,
                                kith_ice **out);
/* Closes asynchronously: no callback runs after this returns; memory is
 * released once libnice has let go. */
void kith_ice_free(kith_ice *ice);

KITH_MUST kith_err kith_ice_local_params(kith_ice *ice, kith_ice_params *out);
/* Sets the peer's credentials and candidates and starts checks. */
KITH_MUST kith_err kith_ice_set_remote(kith_ice *ice, const kith_ice_params *p);
/* Queues bytes; returns how many were accepted (0..len) or -1 if the link
 * is not usable. Unsent bytes: wait for on_writable. */
ssize_t kith_ice_send(kith_ice *ice, const uint8_t *buf, size_t len);
/* The selected pair: local candidate type as "host", "srflx", "prflx" or
 * "relay", and the remote address "ip:port". NULL before ready. */
const char *kith_ice_path(const kith_ice *ice);
const char *kith_ice_remote_addr(const kith_ice *ice);

#endif
