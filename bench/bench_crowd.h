/* kith-bench ingest --history: a store-backed receiver whose group already
 * holds a history, and the events of S concurrent senders to feed it.
 *
 * The receiver creates the group, admits the senders and posts the
 * history itself through the engine with its store attached (the rows are
 * those a received event gets; posting skips only the signature checks
 * nobody times), then closes its store. Each sender opens a copy of that
 * store as its own replica (kith_group_open), so every sender starts at
 * the history's head without receiving it event by event. The senders
 * then post in a seeded random order; before each post a sender takes in
 * what the others posted up to a random lag of 0..S-1 posts, so that its
 * parents are other senders' events and about S/2 of them are concurrent,
 * as in a busy group. Last, a fraction P of the events is delivered late:
 * each after the next 1..W events in posting order (its later siblings,
 * and any of its children among them, which the receiver then holds until
 * it arrives). */
#ifndef KITH_BENCH_CROWD_H
#define KITH_BENCH_CROWD_H

#include "bench.h"

typedef struct crowd_opts {
  long history;    /* events the receiver holds before the measured ones */
  long senders;    /* concurrent senders */
  long events;     /* measured events, all senders together */
  long text_bytes; /* bytes of each message's text */
  double reorder;  /* fraction delivered late */
  long window;     /* ... after 1..window later events */
  uint64_t seed;
} crowd_opts;

typedef struct crowd {
  kith_ident receiver;
  kith_ident *senders;
  size_t n_senders;
  uint8_t gid[32];
  char *dir;            /* the stores (temporary) */
  kith_store *store;    /* the receiver's */
  kith_group *g;        /* the receiver, reopened from its store */
  GPtrArray *events;    /* GBytes*: the measured events in delivery order */
  size_t bytes;         /* their total size */
  size_t delayed;       /* how many were delivered late */
  size_t behind;        /* how many find a parent no longer a head */
  uint64_t last_ts;     /* the latest date among them */
  uint64_t store_bytes; /* the receiver's store before the measured events */
  double build_s;       /* seconds to build all this */
} crowd;

/* Builds the crowd (see above). Errors from the engine or the store. */
KITH_MUST kith_err crowd_build(crowd *c, const crowd_opts *o);
/* Closes the receiver and removes every store. */
void crowd_clear(crowd *c);

#endif
