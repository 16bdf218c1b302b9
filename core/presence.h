/* kith: presence (sans-I/O): signed beats and who was heard from lately,
 * docs/protocol.md 11.7.7.
 *
 * Each member's node sends, per group, a signed beat every period (which
 * grows with the group's size, kith_presence_period), and an "offline"
 * beat when it stops cleanly. Beats travel as ephemeral gossip payloads
 * (core/gossip.h). A table per group remembers, for each node heard from,
 * its last state, when it was last heard (the receiver's monotonic clock)
 * and last seen (the receiver's wall clock). A node is online while its
 * last state is online and it was heard within KITH_PRESENCE_TIMEOUT
 * periods. Any event accepted from a member counts as hearing from it.
 *
 * Beat: [group bin32, node bin32, ts_ms uint, state uint 0|1, sig bin64],
 * canonical msgpack; sig = Ed25519 by node over "kith-presence-v1" followed
 * by the canonical 4-element array [group, node, ts_ms, state]. */
#ifndef KITH_PRESENCE_H
#define KITH_PRESENCE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "ident.h"

#define KITH_BEAT_MAX 145                  /* bytes of an encoded beat */
#define KITH_PRESENCE_PERIOD_MIN_MS 10000  /* period of a small group */
#define KITH_PRESENCE_PER_MEMBER_MS 100    /* period per member ... */
#define KITH_PRESENCE_PERIOD_MAX_MS 300000 /* ... up to this */
#define KITH_PRESENCE_JITTER_PCT 25        /* each period +-25 %, at random */
/* Online while heard within TIMEOUT_NUM/TIMEOUT_DEN periods (2.5: one
 * lost beat, plus jitter, does not make a node look offline). */
#define KITH_PRESENCE_TIMEOUT_NUM 5
#define KITH_PRESENCE_TIMEOUT_DEN 2
#define KITH_PRESENCE_SKEW_MS 120000 /* beat times this far off are dropped */
#define KITH_PRESENCE_MAX 4096       /* nodes one table remembers */

enum { KITH_PRESENCE_OFFLINE = 0, KITH_PRESENCE_ONLINE = 1 };

typedef struct kith_beat {
  uint8_t group[32];
  uint8_t node[KITH_ID_LEN];
  uint64_t ts_ms; /* the sender's wall clock, ms since the epoch */
  uint8_t state;  /* KITH_PRESENCE_* */
  uint8_t sig[KITH_SIG_LEN];
} kith_beat;

/* Encodes and signs a beat of id's node into out[KITH_BEAT_MAX]; *len is
 * its length. KITH_ERR_ARG on a bad state or ts_ms over 2^62. */
KITH_MUST kith_err kith_beat_encode(const kith_ident *id,
                                    const uint8_t group[32], uint64_t ts_ms,
                                    int state, uint8_t out[KITH_BEAT_MAX],
                                    size_t *len);
/* Decodes buf and checks its signature. KITH_ERR_DECODE (malformed or not
 * canonical) or KITH_ERR_SIGNATURE. */
KITH_MUST kith_err kith_beat_decode(const uint8_t *buf, size_t len,
                                    kith_beat *b);

/* The beat period of a group of `members` members: members times
 * KITH_PRESENCE_PER_MEMBER_MS, at least min_ms (normally
 * KITH_PRESENCE_PERIOD_MIN_MS; tests pass less), at most
 * KITH_PRESENCE_PERIOD_MAX_MS (or min_ms if that is more). */
uint64_t kith_presence_period(size_t members, uint64_t min_ms);

typedef struct kith_presence kith_presence;

kith_presence *kith_presence_new(const uint8_t group[32]);
void kith_presence_free(kith_presence *p);

/* A decoded beat from a member (the caller checks membership). now_ms is
 * the monotonic clock, wall_ms the wall clock. Returns KITH_OK (taken),
 * KITH_ERR_PROTOCOL (another group's), KITH_ERR_EXPIRED (ts_ms more than
 * KITH_PRESENCE_SKEW_MS from wall_ms), KITH_ERR_DUPLICATE (not newer than
 * the last beat of that node), KITH_ERR_LIMIT (table full). */
KITH_MUST kith_err kith_presence_beat(kith_presence *p, const kith_beat *b,
                                      uint64_t now_ms, uint64_t wall_ms);
/* An event of node, made at ts_ms, was accepted: heard from it, online,
 * unless ts_ms is more than KITH_PRESENCE_SKEW_MS from wall_ms (history)
 * or older than the last state heard of it. */
void kith_presence_heard(kith_presence *p, const uint8_t node[32],
                         uint64_t ts_ms, uint64_t now_ms, uint64_t wall_ms);
/* 1 if node is online at now_ms for a beat period of period_ms. Sets
 * *last_seen_ms (may be NULL) to the wall time it was last heard, 0 if
 * never. */
int kith_presence_online(const kith_presence *p, const uint8_t node[32],
                         uint64_t now_ms, uint64_t period_ms,
                         uint64_t *last_seen_ms);
/* Forgets node (it left the group). */
void kith_presence_forget(kith_presence *p, const uint8_t node[32]);
size_t kith_presence_size(const kith_presence *p);

#endif
