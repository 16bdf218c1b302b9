/* kith: range-based set reconciliation of event ids (sans-I/O).
 *
 * Two replicas each hold a set of items (timestamp ms, 32-byte id), ordered
 * by (ts, id). One side starts with kith_recon_initiate(); the sides then
 * exchange messages through kith_recon_step() until it returns no reply.
 * Each message lists ranges of the order, each with either a fingerprint of
 * the items in it (ranges with many items; a mismatch splits the range into
 * up to KITH_RECON_BRANCH parts) or the ids themselves (ranges with at most
 * KITH_RECON_LEAF items). Catching up therefore costs bytes and round trips
 * that grow with the difference, not with the set size (Negentropy is the
 * model). The message format is in docs/protocol.md 11.7.6.
 *
 * Fingerprints are the item count and the sum mod 2^32 of the ids' first
 * 4 bytes read as little-endian integers (sources keep sums of the first
 * 8 bytes mod 2^64, whose low 32 bits these are). They need no key, so a
 * set can keep them summed ahead of time (per bucket of items, see
 * core/recon_index.h) and a reconciliation reads them instead of copying
 * the set. A range whose fingerprints differ by exactly one item is
 * resolved at once: the difference of the sums is the extra item's first
 * 4 bytes, which the side holding it looks up. Sums are not collision
 * resistant against a member that grinds its own event ids
 * (docs/security.md): a wrong conclusion leaves a difference to eager
 * gossip, to the parents of later events, or to a later reconciliation.
 *
 * The items are read through a kith_recon_source, by rank in the order:
 * the set is never copied. A source may change between two calls of
 * kith_recon_step (items are only added), not during one. One
 * reconciliation at a time per kith_recon: kith_recon_initiate(), or a
 * peer's first message, starts a new one and forgets which ids were
 * already reported. Within one reconciliation each id is reported at most
 * once, and both sides end up knowing both directions of the difference
 * (items added meanwhile may be found by the next one). */
#ifndef KITH_RECONCILE_H
#define KITH_RECONCILE_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define KITH_RECON_BRANCH 16
#define KITH_RECON_LEAF 8
/* bytes of one message: it travels in one session frame (192 KiB) with
 * the gossip and link framing around it */
#define KITH_RECON_MAX_MSG (128 * 1024)
#define KITH_RECON_MAX_ITEMS (1u << 24)
/* Ids per id-list range: longer lists are cut into several ranges. */
#define KITH_RECON_CHUNK 1024
/* Cap on ids reported (have + need) in one reconciliation. */
#define KITH_RECON_MAX_REPORTS (2u * KITH_RECON_MAX_ITEMS)

typedef struct kith_recon kith_recon;

typedef struct kith_recon_item {
  uint64_t ts;
  uint8_t id[32];
} kith_recon_item;

/* The word of an id that sources sum: its first 8 bytes, little-endian
 * (a fingerprint on the wire keeps the low 32 bits of a sum of these). */
uint64_t kith_recon_word(const uint8_t id[32]);

/* An ordered item set, read by rank (0 = the smallest (ts, id)). Every
 * call returns KITH_OK or an error (KITH_ERR_IO, KITH_ERR_NOMEM) that ends
 * the reconciliation step. */
typedef struct kith_recon_source {
  void *ctx;
  /* how many items */
  kith_err (*size)(void *ctx, size_t *n);
  /* how many items are below (ts, id) */
  kith_err (*rank)(void *ctx, uint64_t ts, const uint8_t id[32], size_t *r);
  /* the sum mod 2^64 of the fingerprint words of the items [i0, i1) */
  kith_err (*sum)(void *ctx, size_t i0, size_t i1, uint64_t *sum);
  /* the items [i0, i0 + n) (all exist) */
  kith_err (*items)(void *ctx, size_t i0, size_t n, kith_recon_item *out);
  /* the rank in [i0, i1) of an item whose id's first 4 bytes, read
   * little-endian, are w (< 2^32), if any (*found 0 if none) */
  kith_err (*find)(void *ctx, size_t i0, size_t i1, uint64_t w, size_t *r,
                   int *found);
  /* whether id is in the set (any timestamp) */
  kith_err (*has)(void *ctx, const uint8_t id[32], int *found);
} kith_recon_source;

/* An item set in memory (for the simulator and tests; a node reads its
 * store, core/recon_index.h). Items may be added in any order; an id
 * already present is ignored (whatever its timestamp). add returns
 * KITH_ERR_LIMIT beyond KITH_RECON_MAX_ITEMS items, KITH_ERR_NOMEM. */
typedef struct kith_recon_set kith_recon_set;
kith_recon_set *kith_recon_set_new(void);
void kith_recon_set_free(kith_recon_set *s);
KITH_MUST kith_err kith_recon_set_add(kith_recon_set *s, uint64_t ts_ms,
                                      const uint8_t id[32]);
size_t kith_recon_set_size(const kith_recon_set *s);
/* The set as a source (valid while s lives). */
kith_recon_source kith_recon_set_source(kith_recon_set *s);

/* A reconciliation endpoint reading src (copied; src->ctx must outlive
 * it). */
kith_recon *kith_recon_new_on(const kith_recon_source *src);
/* The same over a set of its own, filled with kith_recon_add. */
kith_recon *kith_recon_new(void);
void kith_recon_free(kith_recon *r);
/* Adds to the endpoint's own set (KITH_ERR_STATE on a kith_recon_new_on
 * endpoint). */
KITH_MUST kith_err kith_recon_add(kith_recon *r, uint64_t ts_ms,
                                  const uint8_t id[32]);
size_t kith_recon_size(const kith_recon *r);

/* First message of a reconciliation (g_malloc'ed, caller frees). */
KITH_MUST kith_err kith_recon_initiate(kith_recon *r, uint8_t **msg,
                                       size_t *len);
/* Processes the peer's message (at most KITH_RECON_MAX_MSG bytes; every
 * message this side sends respects that cap too). *reply gets the next message
 * to send, or NULL when this side has nothing more to say (then reconciliation
 * is complete once the peer also has none). Appends to have_ids the 32-byte ids
 * this side holds that the peer lacks (send it those events), and to need_ids
 * those the peer holds that this side lacks. A malformed message returns
 * KITH_ERR_DECODE and changes nothing. */
KITH_MUST kith_err kith_recon_step(kith_recon *r, const uint8_t *msg,
                                   size_t len, uint8_t **reply,
                                   size_t *reply_len, GByteArray *have_ids,
                                   GByteArray *need_ids);

#endif
