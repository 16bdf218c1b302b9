/* kith: the rules of a link's paths, without I/O: which path is better,
 * and how long to wait before trying again (docs/protocol.md 9.4).
 *
 * A link's session records travel on one *carrier* at a time: the relay
 * friend, or an ICE agent whose selected pair is direct (host, srflx,
 * prflx) or through a TURN server (relay). A link moves to a carrier of a
 * higher rank as soon as one is ready, never to a lower one. */
#ifndef KITH_PATH_H
#define KITH_PATH_H

#include <stdint.h>

typedef enum kith_path_rank {
  KITH_PATH_NONE = 0,         /* no path (or an unknown name) */
  KITH_PATH_FRIEND_RELAY = 1, /* "friend-relay": records through a friend */
  KITH_PATH_TURN = 2,         /* "relay": ICE through a TURN server */
  KITH_PATH_DIRECT = 3,       /* "host", "srflx", "prflx" */
} kith_path_rank;

/* The rank of a path as `kith peers` names it; NULL is KITH_PATH_NONE. */
kith_path_rank kith_path_rank_of(const char *path);

#define KITH_BACKOFF_FIRST_MS 1000 /* the wait after the first failure */
#define KITH_BACKOFF_MAX_MS 60000  /* the longest wait (before jitter) */

/* The wait before the next attempt after `failures` failed ones in a row
 * (failures >= 1; 0 gives 0): d = min(KITH_BACKOFF_MAX_MS,
 * KITH_BACKOFF_FIRST_MS * 2^(failures-1)), then jittered to
 * d * (3/4 + u/2) with u = rnd / 2^32 in [0, 1): from 0.75 d to 1.25 d.
 * rnd: 32 random bits (the caller draws them, so tests can fix them). */
uint64_t kith_backoff_ms(unsigned failures, uint32_t rnd);

#endif
