/* Unit tests for the queue of sealed records a carrier takes from
 * (net/outq.c): bytes leave in order, in any pieces, whether appended at
 * the tail or pushed as whole buffers; a big pushed buffer is kept, not
 * copied; and the queue moves what is left only when the head has passed
 * KITH_OUTQ_COMPACT bytes and half of the buffer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "net/outq.h"

static void append_counting(kith_outq *q, size_t n, uint32_t *next) {
  for (size_t i = 0; i < n; i++) {
    uint8_t b = (uint8_t)((*next)++ % 251);
    g_byte_array_append(kith_outq_tail(q), &b, 1);
  }
}

/* n counting bytes as one buffer to push. */
static GByteArray *counting(size_t n, uint32_t *next) {
  GByteArray *b = g_byte_array_sized_new((guint)n);
  for (size_t i = 0; i < n; i++) {
    uint8_t v = (uint8_t)((*next)++ % 251);
    g_byte_array_append(b, &v, 1);
  }
  return b;
}

/* Takes up to n bytes in the pieces the queue offers, checking each. */
static size_t take_checked(kith_outq *q, size_t n, uint32_t *out) {
  size_t taken = 0, len;
  const uint8_t *data;

  while (taken < n && (len = kith_outq_piece(q, 0, &data)) > 0) {
    len = MIN(len, n - taken);
    for (size_t k = 0; k < len; k++)
      assert_int_equal(data[k], (*out + k) % 251);
    kith_outq_consume(q, len);
    *out += (uint32_t)len;
    taken += len;
  }
  return taken;
}

static void bytes_leave_in_order_in_any_pieces(void **state) {
  kith_outq q;
  uint32_t in = 0, out = 0;
  const size_t pieces[] = {1, 4096, 70000, 3, 65536, 100000};

  kith_outq_init(&q);
  for (int round = 0; round < 20; round++) {
    append_counting(&q, 50000, &in);
    for (size_t i = 0; i < sizeof pieces / sizeof *pieces; i++) {
      size_t n = MIN(pieces[(i + round) % 6], kith_outq_len(&q));
      assert_int_equal(take_checked(&q, n, &out), n);
    }
    assert_int_equal(kith_outq_len(&q), in - out);
    /* the buffer never holds a long dead head */
    GByteArray *b = g_queue_peek_head(&q.segs);
    assert_true(q.head < KITH_OUTQ_COMPACT || q.head < b->len / 2);
  }
  kith_outq_clear(&q);
  assert_int_equal(kith_outq_len(&q), 0);
  (void)state;
}

static void a_drained_queue_starts_over_at_the_front(void **state) {
  kith_outq q;
  uint32_t in = 0;

  kith_outq_init(&q);
  append_counting(&q, 1000, &in);
  kith_outq_consume(&q, 600);
  assert_int_equal(q.head, 600); /* small: nothing moved */
  kith_outq_consume(&q, 5000);   /* more than is left: all of it */
  assert_int_equal(kith_outq_len(&q), 0);
  assert_int_equal(q.head, 0);
  assert_int_equal(((GByteArray *)g_queue_peek_head(&q.segs))->len, 0);
  append_counting(&q, 10, &in);
  kith_outq_reset(&q);
  assert_int_equal(kith_outq_len(&q), 0);
  kith_outq_clear(&q);
  (void)state;
}

static void pushed_buffers_and_appends_leave_in_order(void **state) {
  kith_outq q;
  uint32_t in = 0, out = 0;

  kith_outq_init(&q);
  for (int round = 0; round < 30; round++) {
    /* big and small pushes, and appends at whatever the tail now is */
    kith_outq_push(&q, counting(round % 3 ? 40000 : 1000, &in));
    append_counting(&q, (size_t)(round * 37 % 5000), &in);
    take_checked(&q, (size_t)(round % 4) * 25000, &out);
    assert_int_equal(kith_outq_len(&q), in - out);
    assert_true(q.segs.length <= kith_outq_len(&q) / KITH_OUTQ_COPY_MAX + 2);
  }
  take_checked(&q, in - out, &out);
  assert_int_equal(out, in);
  assert_int_equal(kith_outq_len(&q), 0);
  assert_int_equal(q.segs.length, 1);
  kith_outq_clear(&q);
  (void)state;
}

static void a_big_pushed_buffer_is_kept_not_copied(void **state) {
  kith_outq q;
  uint32_t in = 0;
  const uint8_t *data;

  kith_outq_init(&q);
  GByteArray *first = counting(KITH_OUTQ_COPY_MAX + 1, &in);
  kith_outq_push(&q, first); /* into an empty queue: the queue is it */
  assert_int_equal(kith_outq_piece(&q, 0, &data), KITH_OUTQ_COPY_MAX + 1);
  assert_ptr_equal(data, first->data);
  assert_ptr_equal(kith_outq_tail(&q), first);
  GByteArray *second = counting(50000, &in);
  kith_outq_push(&q, second); /* behind bytes: a segment of its own */
  assert_int_equal(kith_outq_piece(&q, 10, &data), KITH_OUTQ_COPY_MAX + 1 - 10);
  assert_int_equal(kith_outq_piece(&q, KITH_OUTQ_COPY_MAX + 1, &data), 50000);
  assert_ptr_equal(data, second->data);
  assert_int_equal(kith_outq_piece(&q, KITH_OUTQ_COPY_MAX + 50001, &data), 0);
  kith_outq_push(&q, counting(100, &in)); /* small: copied to the tail */
  assert_int_equal(q.segs.length, 2);
  assert_int_equal(kith_outq_len(&q), in);
  kith_outq_clear(&q);
  (void)state;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(bytes_leave_in_order_in_any_pieces),
      cmocka_unit_test(a_drained_queue_starts_over_at_the_front),
      cmocka_unit_test(pushed_buffers_and_appends_leave_in_order),
      cmocka_unit_test(a_big_pushed_buffer_is_kept_not_copied),
  };
  int failed = cmocka_run_group_tests_name("outq", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
