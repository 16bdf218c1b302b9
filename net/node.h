/* kith: the node runtime: one process, one GMainContext, one home.
 *
 * kith_node_run opens the home (lock, storage key, store, identity), binds
 * the signal port and the control socket, reconnects to known peers, and
 * runs until SIGINT or SIGTERM. Logs go to stderr. */
#ifndef KITH_NODE_H
#define KITH_NODE_H

#include <stdint.h>

typedef struct kith_node_config {
  const char *home;        /* data directory (resolved by the caller) */
  uint16_t port;           /* signal port; 0 = any free port */
  int loopback;            /* also use 127.0.0.1 for ICE (default on) */
  const char *bind_addr;   /* only this IPv4 address for ICE and invites
                              (e.g. 127.0.0.1 for tests); NULL: all */
  const char *stun;        /* STUN server HOST:PORT, or NULL */
  const char *const *turn; /* NULL-terminated TURN URLs, or NULL */
  int relay;               /* relay for the friend list */
  char *passphrase; /* for a protected home, else NULL (borrowed; wiped with
                       sodium_memzero once the storage key is derived, so it
                       does not stay in memory while the node runs) */
  size_t passphrase_len;
} kith_node_config;

/* Returns a process exit code: 0 after a clean stop, 1 on an error (one
 * line "kith: error: ..." already printed to stderr). */
int kith_node_run(const kith_node_config *cfg);

#endif
