/* kith: range-based set reconciliation of event ids (sans-I/O).
 *
 * Two replicas each hold a set of items (timestamp ms, 32-byte id), ordered
 * by (ts, id). One side starts with kith_recon_initiate(); the sides then
 * exchange messages through kith_recon_step() until it returns no reply.
 * Each message lists ranges of the order, each with either a fingerprint of
 * the items in it (ranges with many items; a mismatch splits the range into
 * KITH_RECON_BRANCH parts) or the ids themselves (ranges with at most
 * KITH_RECON_LEAF items). Catching up therefore costs bytes and round trips
 * that grow with the difference, not with the set size (Negentropy is the
 * model). The message format is in docs/protocol.md.
 *
 * Fingerprints ("digests") are the item count and the sum mod 2^32 of a
 * keyed 32-bit hash (SipHash, key chosen per reconciliation by the
 * initiator) of each id. A wrong conclusion (sums equal by chance, or a
 * wrong item taken for the only difference, about n / 2^32 per range)
 * leaves a difference unfound until the next reconciliation, which draws
 * a new key. A range whose digests differ by exactly one item
 * is resolved at once: the side holding the extra item finds the one whose
 * hash is the difference of the sums and sends its id, so splitting only has
 * to go as deep as isolating the differences, not down to small ranges.
 *
 * One reconciliation at a time per object: kith_recon_initiate(), or a
 * peer's first message, starts a new one, takes a snapshot of the items
 * (items added later take part in the next one) and forgets which ids were
 * already reported. Within one reconciliation each id is reported at most
 * once, and both sides end up knowing both directions of the difference. */
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

/* A replica's item set. Items may be added in any order; an id already
 * present is ignored (whatever its timestamp). kith_recon_add returns
 * KITH_ERR_LIMIT beyond KITH_RECON_MAX_ITEMS items, KITH_ERR_NOMEM. */
kith_recon *kith_recon_new(void);
void kith_recon_free(kith_recon *r);
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
