/* kith: a queue of sealed records waiting for a carrier to take them.
 *
 * Records are appended at the tail (kith_outq_tail: sealing writes there)
 * or handed over whole (kith_outq_push: a buffer the crypto worker sealed
 * becomes part of the queue without being copied), and taken from the
 * head in whatever pieces the carrier accepts. The queue is a list of
 * buffers (segments); a piece never spans two of them. Taking a piece
 * moves only the head: a segment is dropped when it has been taken whole,
 * and the bytes of the last one (where the tail appends) are moved down
 * only when the head has passed KITH_OUTQ_COMPACT bytes and at least half
 * of it, so each queued byte is moved at most about once, where removing
 * every accepted piece from the front moved the whole rest of the queue
 * each time (docs/performance.md, Links). */
#ifndef KITH_OUTQ_H
#define KITH_OUTQ_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#define KITH_OUTQ_COMPACT (64 * 1024)
/* A pushed buffer of at most this many bytes is copied into the tail
 * rather than kept as a segment of its own, which bounds the number of
 * segments of a queue to its bytes / KITH_OUTQ_COPY_MAX + 2. */
#define KITH_OUTQ_COPY_MAX (16 * 1024)

typedef struct kith_outq {
  GQueue segs; /* GByteArray*, oldest first; never empty after init */
  guint head;  /* bytes of the first segment already taken */
} kith_outq;

void kith_outq_init(kith_outq *q);
void kith_outq_clear(kith_outq *q);
/* Bytes not taken yet. */
size_t kith_outq_len(const kith_outq *q);
/* The bytes not taken yet that lie together from `off` bytes past the
 * head: *data is set to the first of them (valid until the next call that
 * changes q); returns how many (0 when off >= kith_outq_len). */
size_t kith_outq_piece(const kith_outq *q, size_t off, const uint8_t **data);
/* Where to append records (borrowed until the next kith_outq_push or
 * kith_outq_consume; append only). */
GByteArray *kith_outq_tail(kith_outq *q);
/* Appends the bytes of records (takes ownership): kept as a segment, or
 * copied into the tail when small or when the queue holds nothing. */
void kith_outq_push(kith_outq *q, GByteArray *records);
/* The first n bytes were taken (n <= kith_outq_len). */
void kith_outq_consume(kith_outq *q, size_t n);
/* Drops everything (nothing, after kith_outq_clear). */
void kith_outq_reset(kith_outq *q);

#endif
