/* Unit tests for the queue of sealed records a carrier takes from
 * (net/outq.c): bytes leave in order, in any pieces, and the queue moves
 * what is left only when the head has passed KITH_OUTQ_COMPACT bytes and
 * half of the buffer. */
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

static void bytes_leave_in_order_in_any_pieces(void **state) {
  kith_outq q;
  uint32_t in = 0, out = 0;
  const size_t pieces[] = {1, 4096, 70000, 3, 65536, 100000};

  kith_outq_init(&q);
  for (int round = 0; round < 20; round++) {
    append_counting(&q, 50000, &in);
    for (size_t i = 0; i < sizeof pieces / sizeof *pieces; i++) {
      size_t n = MIN(pieces[(i + round) % 6], kith_outq_len(&q));
      for (size_t k = 0; k < n; k++)
        assert_int_equal(kith_outq_data(&q)[k], (out + k) % 251);
      kith_outq_consume(&q, n);
      out += (uint32_t)n;
    }
    assert_int_equal(kith_outq_len(&q), in - out);
    /* the buffer never holds a long dead head */
    assert_true(q.head < KITH_OUTQ_COMPACT || q.head < q.buf->len / 2);
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
  assert_int_equal(q.buf->len, 0);
  append_counting(&q, 10, &in);
  kith_outq_reset(&q);
  assert_int_equal(kith_outq_len(&q), 0);
  kith_outq_clear(&q);
  (void)state;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(bytes_leave_in_order_in_any_pieces),
      cmocka_unit_test(a_drained_queue_starts_over_at_the_front),
  };
  int failed = cmocka_run_group_tests_name("outq", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
