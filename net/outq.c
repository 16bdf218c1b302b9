/* kith: a queue of sealed records waiting for a carrier (outq.h). */
#include "outq.h"

void kith_outq_init(kith_outq *q) {
  g_queue_init(&q->segs);
  g_queue_push_tail(&q->segs, g_byte_array_new());
  q->head = 0;
}

void kith_outq_clear(kith_outq *q) {
  g_queue_clear_full(&q->segs, (GDestroyNotify)g_byte_array_unref);
  q->head = 0;
}

size_t kith_outq_len(const kith_outq *q) {
  size_t n = 0;

  for (GList *l = q->segs.head; l; l = l->next)
    n += ((GByteArray *)l->data)->len;
  return n > q->head ? n - q->head : 0;
}

size_t kith_outq_piece(const kith_outq *q, size_t off, const uint8_t **data) {
  size_t skip = off + q->head;

  for (GList *l = q->segs.head; l; l = l->next) {
    GByteArray *b = l->data;
    if (skip < b->len) {
      *data = b->data + skip;
      return b->len - skip;
    }
    skip -= b->len;
  }
  *data = NULL;
  return 0;
}

GByteArray *kith_outq_tail(kith_outq *q) {
  return g_queue_peek_tail(&q->segs);
}

void kith_outq_push(kith_outq *q, GByteArray *records) {
  GByteArray *tail = g_queue_peek_tail(&q->segs);

  if (records->len > KITH_OUTQ_COPY_MAX && kith_outq_len(q) == 0) {
    /* Nothing waits: the pushed buffer becomes the whole queue. */
    g_queue_clear_full(&q->segs, (GDestroyNotify)g_byte_array_unref);
    g_queue_push_tail(&q->segs, records);
    q->head = 0;
  } else if (records->len > KITH_OUTQ_COPY_MAX) {
    g_queue_push_tail(&q->segs, records);
  } else {
    g_byte_array_append(tail, records->data, records->len);
    g_byte_array_unref(records);
  }
}

void kith_outq_consume(kith_outq *q, size_t n) {
  GByteArray *b = g_queue_peek_head(&q->segs);

  n = MIN(n, kith_outq_len(q));
  while (q->segs.length > 1 && q->head + n >= b->len) {
    n -= b->len - q->head; /* a segment taken whole */
    g_byte_array_unref(g_queue_pop_head(&q->segs));
    q->head = 0;
    b = g_queue_peek_head(&q->segs);
  }
  q->head += (guint)n;
  if (q->segs.length > 1)
    return;
  if (q->head == b->len) {
    kith_outq_reset(q);
  } else if (q->head >= KITH_OUTQ_COMPACT && q->head >= b->len / 2) {
    g_byte_array_remove_range(b, 0, q->head);
    q->head = 0;
  }
}

void kith_outq_reset(kith_outq *q) {
  if (q->segs.length == 0)
    return; /* cleared */
  while (q->segs.length > 1)
    g_byte_array_unref(g_queue_pop_head(&q->segs));
  g_byte_array_set_size(g_queue_peek_head(&q->segs), 0);
  q->head = 0;
}
