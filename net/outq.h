/* kith: a queue of sealed records waiting for a carrier to take them.
 *
 * Records are appended at the tail (kith_outq_tail: sealing writes there)
 * and taken from the head in whatever pieces the carrier accepts. Taking
 * a piece moves only the head: the bytes behind it are moved down only
 * when the head has passed KITH_OUTQ_COMPACT bytes and at least half of
 * the buffer, so each queued byte is moved at most about once, where
 * removing every accepted piece from the front moved the whole rest of
 * the queue each time (docs/performance.md, Links). */
#ifndef KITH_OUTQ_H
#define KITH_OUTQ_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#define KITH_OUTQ_COMPACT (64 * 1024)

typedef struct kith_outq {
  GByteArray *buf; /* [head, len): bytes not taken yet */
  guint head;
} kith_outq;

void kith_outq_init(kith_outq *q);
void kith_outq_clear(kith_outq *q);
/* Bytes not taken yet. */
size_t kith_outq_len(const kith_outq *q);
/* The first of them (valid until the next call that changes q). */
const uint8_t *kith_outq_data(const kith_outq *q);
/* Where to append records (borrowed; append only). */
GByteArray *kith_outq_tail(kith_outq *q);
/* The first n bytes were taken (n <= kith_outq_len). */
void kith_outq_consume(kith_outq *q, size_t n);
/* Drops everything. */
void kith_outq_reset(kith_outq *q);

#endif
