/* kith: the output queue of the sans-I/O engines (STYLE.md "Sans-I/O core").
 *
 * An engine call appends what the caller must do (send bytes to a peer,
 * deliver a payload, make or drop a link, penalize a peer, look events up
 * in the store) to a caller-owned kith_out. The caller drains it after each
 * call and then resets it; the engine never calls back into the caller. */
#ifndef KITH_OUT_H
#define KITH_OUT_H

#include <stddef.h>
#include <stdint.h>

#define KITH_OUT_MAX 65536 /* items queued by one engine call, at most */

typedef enum kith_out_kind {
  KITH_OUT_SEND = 1,   /* send data[len] (one frame) to peer */
  KITH_OUT_DELIVER,    /* payload data[len] (its id computed by the
                          engine), received from peer after hops hops:
                          validate it and answer with kith_gossip_verdict() */
  KITH_OUT_CONNECT,    /* make a link to peer, then report link_up/down */
  KITH_OUT_DISCONNECT, /* the engine no longer needs the link to peer */
  KITH_OUT_PENALIZE,   /* peer sent an invalid event */
  KITH_OUT_FETCH,      /* data holds len/32 event ids peer asked for that
                          are no longer cached: look them up in the store
                          and pass each to kith_gossip_send_payload() */
} kith_out_kind;

typedef struct kith_out_item {
  kith_out_kind kind;
  uint8_t peer[32];
  uint8_t id[32];    /* DELIVER */
  uint32_t hops;     /* DELIVER: 1 = straight from the publisher */
  uint8_t ephemeral; /* DELIVER: an ephemeral payload (core/gossip.h) */
  uint8_t *data;     /* g_malloc'ed, owned by the queue (or NULL) */
  size_t len;
} kith_out_item;

typedef struct kith_out {
  kith_out_item *items;
  size_t n, cap;
  size_t dropped; /* pushes refused because the queue was full */
} kith_out;

void kith_out_init(kith_out *o);
/* Frees every item's data and empties the queue (keeps its storage). */
void kith_out_reset(kith_out *o);
/* kith_out_reset plus frees the storage. */
void kith_out_clear(kith_out *o);
/* Appends an item and takes ownership of data (freed at once if the queue
 * is full: then NULL is returned and dropped counts it). */
kith_out_item *kith_out_push(kith_out *o, kith_out_kind kind,
                             const uint8_t peer[32], uint8_t *data, size_t len);
/* Moves item i's data out to the caller (who g_free()s it). */
uint8_t *kith_out_take_data(kith_out *o, size_t i);

#endif
