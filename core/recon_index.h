/* kith: the reconciliation set of a stored group, summarised in buckets
 * (sans-I/O: the rows are read through a kith_recon_reader, which the node
 * fills from core/store.h's range API).
 *
 * The group's event ids, in (ts, id) order, are cut into buckets of about
 * KITH_RECON_BUCKET consecutive items. In memory each bucket keeps only its
 * lower bound (its first item; the first bucket's is the very bottom),
 * its item count and the sum of its items' fingerprint words
 * (core/reconcile.h): about 60 bytes per KITH_RECON_BUCKET items. A range
 * of the order whose bounds fall inside a bucket reads that bucket's rows
 * (a few loaded buckets are cached). The index is a kith_recon_source, so
 * a reconciliation reads it and copies nothing.
 *
 * Built lazily: kith_recon_index_build reads a few buckets per call (the
 * node calls it from its main loop when idle) until the whole set is
 * summed up; reconciliation waits for it (kith_recon_index_ready). Kept
 * up to date by kith_recon_index_add for every item stored afterwards: it
 * only marks the item's bucket stale, and a stale bucket is read again
 * (split if it grew past 2 x KITH_RECON_BUCKET) before the next
 * reconciliation step reads the index. So an add costs O(log buckets),
 * whatever the history, and an item added twice is counted once. */
#ifndef KITH_RECON_INDEX_H
#define KITH_RECON_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "reconcile.h"

/* Items per bucket when built or split. */
#define KITH_RECON_BUCKET 512
/* Loaded buckets kept in memory (their rows). */
#define KITH_RECON_CACHE 32

/* Where the rows come from. Each call appends to out (a GArray of
 * kith_recon_item) and returns KITH_OK or an error (KITH_ERR_IO...). */
typedef struct kith_recon_reader {
  void *ctx;
  /* up to max items at or after (ts, id), in order */
  kith_err (*scan)(void *ctx, uint64_t ts, const uint8_t id[32], size_t max,
                   GArray *out);
  /* up to max items whose ids begin with w's 4 bytes (little-endian) */
  kith_err (*by_word)(void *ctx, uint64_t w, size_t max, GArray *out);
  /* the item with this id, if held */
  kith_err (*get)(void *ctx, const uint8_t id[32], GArray *out);
} kith_recon_reader;

typedef struct kith_recon_index kith_recon_index;

/* rd is copied; rd->ctx must outlive the index. */
kith_recon_index *kith_recon_index_new(const kith_recon_reader *rd);
/* The index frees p (g_free) with itself. */
void kith_recon_index_own(kith_recon_index *x, void *p);
void kith_recon_index_free(kith_recon_index *x);
/* Reads up to max_buckets more buckets; *done (may be NULL) tells whether
 * the index is complete. An error leaves it incomplete (call again). */
KITH_MUST kith_err kith_recon_index_build(kith_recon_index *x,
                                          size_t max_buckets, int *done);
int kith_recon_index_ready(const kith_recon_index *x);
/* An item was stored (or may have been: adding a stored one again costs
 * nothing). */
void kith_recon_index_add(kith_recon_index *x, uint64_t ts,
                          const uint8_t id[32]);
/* The index as a source (valid while x lives). */
kith_recon_source kith_recon_index_source(kith_recon_index *x);
/* An index over the group gid's events in store s (core/store.h's range
 * API; rows of the open batch count). s must outlive it. */
struct kith_store;
kith_recon_index *kith_recon_index_on_store(struct kith_store *s,
                                            const uint8_t gid[32]);
/* Buckets, and bytes held (summary, cache), for statistics. */
size_t kith_recon_index_buckets(const kith_recon_index *x);
size_t kith_recon_index_bytes(const kith_recon_index *x);

#endif
