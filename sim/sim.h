/* kith-sim: N real gossip engines (core/gossip.h) in one process, with
 * virtual time. Events (frame deliveries, link changes, timers, publishes,
 * crashes) sit in a priority queue ordered by (time, sequence); the clock
 * jumps from one to the next, so a run is fast and, for one seed, exactly
 * reproducible. Once the joins are done, every node learns the member list
 * (up to a passive view of other members), as the node's net/gossip.c
 * gives its engine every member of the group. */
#ifndef KITH_SIM_H
#define KITH_SIM_H

#include <stddef.h>
#include <stdint.h>

#define SIM_MAX_NODES 1000000
#define SIM_MAX_MESSAGES 100000
#define SIM_MAX_CELLS 200000000ull /* nodes x messages tracked */
#define SIM_MAX_PAYLOAD 4096

typedef struct sim_params {
  uint32_t nodes, messages;
  double loss;  /* per frame, 0..1 */
  double crash; /* fraction of nodes killed mid-run */
  double late;  /* fraction of nodes that join after the last message and
                   must catch up the whole history, as a node joining a
                   group does: by reconciling with its contact */
  uint32_t latency_ms;
  uint32_t interval_ms; /* one message per interval, at a random moment */
  uint64_t seed;
  uint32_t payload_bytes;
  uint32_t detect_ms; /* a crashed neighbour's link is seen down after */
  uint32_t drain_ms;  /* run on after the last message */
  uint32_t contacts;  /* members each joiner knows (first one = contact) */
  uint32_t beats_s;   /* presence beats from every node for this long (s),
                         from the first message on (0: none) */
} sim_params;

typedef struct sim_result {
  uint32_t nodes, live, messages;
  double delivered_ratio;
  double copies_per_node_per_msg;
  uint32_t hops_p50, hops_p99;
  uint64_t latency_ms_p50, latency_ms_p99;
  double bytes_per_node_per_msg;
  /* detail */
  uint64_t expected, delivered, copies, frames, bytes, events;
  uint64_t expected_later, copies_later; /* messages after the first */
  uint32_t late;                         /* late joiners alive at the end */
  uint64_t late_expected, late_delivered;
  double
      copies_after_first; /* the tree's cost once the first prunes are done */
  uint64_t grafts, prunes, recon_rounds, malformed;
  uint32_t active_max_seen;
  double active_avg;
  uint64_t virtual_ms;
  /* presence beats (beats_s > 0): every node sends a KITH_BEAT_MAX-byte
   * ephemeral payload every kith_presence_period (+-25 %); the bytes and
   * frames of all gossip traffic per live node and second, measured after
   * the first period (the trees settled) */
  uint64_t beat_period_ms, beats_sent, beats_expected, beats_delivered;
  double beat_bytes_per_node_s, beat_frames_per_node_s;
} sim_result;

int sim_run(const sim_params *p, sim_result *r);

#endif
