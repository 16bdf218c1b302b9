/* kith: a queue of sealed records waiting for a carrier (outq.h). */
#include "outq.h"

void kith_outq_init(kith_outq *q) {
  q->buf = g_byte_array_new();
  q->head = 0;
}

void kith_outq_clear(kith_outq *q) {
  if (q->buf)
    g_byte_array_unref(q->buf);
  q->buf = NULL;
  q->head = 0;
}

size_t kith_outq_len(const kith_outq *q) {
  return q->buf ? q->buf->len - q->head : 0;
}

const uint8_t *kith_outq_data(const kith_outq *q) {
  return q->buf->data + q->head;
}

GByteArray *kith_outq_tail(kith_outq *q) {
  return q->buf;
}

void kith_outq_consume(kith_outq *q, size_t n) {
  q->head += (guint)MIN(n, kith_outq_len(q));
  if (q->head == q->buf->len) {
    kith_outq_reset(q);
  } else if (q->head >= KITH_OUTQ_COMPACT && q->head >= q->buf->len / 2) {
    g_byte_array_remove_range(q->buf, 0, q->head);
    q->head = 0;
  }
}

void kith_outq_reset(kith_outq *q) {
  g_byte_array_set_size(q->buf, 0);
  q->head = 0;
}
