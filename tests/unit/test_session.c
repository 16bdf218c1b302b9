/* Unit tests for net/session: two sessions talk through in-memory byte
 * buffers; fixed identity seeds. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <string.h>

#include "net/session.h"

typedef struct fixture {
  kith_ident a, b, c;
  kith_session *sa; /* initiator, expects b */
  kith_session *sb; /* responder, expects a */
  GByteArray *to_a, *to_b;
  GPtrArray *fa, *fb; /* frames received by a and b */
} fixture;

static void ident_from_byte(kith_ident *id, uint8_t b) {
  uint8_t seed[KITH_SEED_LEN];
  memset(seed, b, sizeof seed);
  assert_int_equal(kith_ident_from_seed(id, seed), KITH_OK);
}

static int setup(void **state) {
  fixture *f = g_new0(fixture, 1);
  ident_from_byte(&f->a, 1);
  ident_from_byte(&f->b, 2);
  ident_from_byte(&f->c, 3);
  f->sa = kith_session_new(&f->a, f->b.pk, 1);
  f->sb = kith_session_new(&f->b, f->a.pk, 0);
  f->to_a = g_byte_array_new();
  f->to_b = g_byte_array_new();
  f->fa = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  f->fb = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  kith_session_free(f->sa);
  kith_session_free(f->sb);
  g_byte_array_unref(f->to_a);
  g_byte_array_unref(f->to_b);
  g_ptr_array_unref(f->fa);
  g_ptr_array_unref(f->fb);
  kith_ident_clear(&f->a);
  kith_ident_clear(&f->b);
  kith_ident_clear(&f->c);
  g_free(f);
  return 0;
}

/* Feeds all of *in to s (step bytes per call, 0 = all at once); records
 * produced by s go to out. Returns the first error. */
static kith_err feed(kith_session *s, GByteArray *in, size_t step,
                     GByteArray *out, GPtrArray *frames) {
  GByteArray *copy = g_byte_array_new();
  g_byte_array_append(copy, in->data, in->len);
  g_byte_array_set_size(in, 0);
  kith_err e = KITH_OK;
  size_t n = step ? step : copy->len;
  for (size_t off = 0; off < copy->len && e == KITH_OK; off += n) {
    size_t left = copy->len - off;
    e = kith_session_recv(s, copy->data + off, left < n ? left : n, out,
                          frames);
  }
  g_byte_array_unref(copy);
  return e;
}

static void handshake(fixture *f, size_t step) {
  assert_int_equal(kith_session_start(f->sa, f->to_b), KITH_OK);
  assert_int_equal(kith_session_start(f->sb, f->to_a), KITH_OK);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(feed(f->sb, f->to_b, step, f->to_a, f->fb), KITH_OK);
    assert_int_equal(feed(f->sa, f->to_a, step, f->to_b, f->fa), KITH_OK);
  }
  assert_true(kith_session_is_established(f->sa));
  assert_true(kith_session_is_established(f->sb));
  assert_int_equal(f->to_a->len, 0);
  assert_int_equal(f->to_b->len, 0);
}

static void seal_text(kith_session *s, const char *text, GByteArray *out) {
  assert_int_equal(
      kith_session_seal(s, (const uint8_t *)text, strlen(text), out), KITH_OK);
}

static void assert_frame(GPtrArray *frames, guint i, const char *text) {
  assert_true(i < frames->len);
  gsize len = 0;
  const void *p = g_bytes_get_data(frames->pdata[i], &len);
  assert_int_equal(len, strlen(text));
  assert_memory_equal(p, text, len);
}

static void exchange_frames(fixture *f, size_t step) {
  seal_text(f->sa, "one", f->to_b);
  seal_text(f->sa, "two", f->to_b);
  seal_text(f->sb, "uno", f->to_a);
  seal_text(f->sa, "three", f->to_b);
  seal_text(f->sb, "dos", f->to_a);
  assert_int_equal(feed(f->sb, f->to_b, step, f->to_a, f->fb), KITH_OK);
  assert_int_equal(feed(f->sa, f->to_a, step, f->to_b, f->fa), KITH_OK);
  assert_int_equal(f->fb->len, 3);
  assert_frame(f->fb, 0, "one");
  assert_frame(f->fb, 1, "two");
  assert_frame(f->fb, 2, "three");
  assert_int_equal(f->fa->len, 2);
  assert_frame(f->fa, 0, "uno");
  assert_frame(f->fa, 1, "dos");
}

static void handshake_then_frames_both_ways(void **state) {
  fixture *f = *state;
  handshake(f, 0);
  exchange_frames(f, 0);
}

static void handshake_fed_one_byte_at_a_time(void **state) {
  fixture *f = *state;
  handshake(f, 1);
  exchange_frames(f, 1);
}

static void responder_hears_hello_before_start(void **state) {
  fixture *f = *state;
  assert_int_equal(kith_session_start(f->sa, f->to_b), KITH_OK);
  /* b has not started: its HELLO goes out before its AUTH by itself */
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_OK);
  assert_int_equal(kith_session_start(f->sb, f->to_a), KITH_OK);
  assert_int_equal(feed(f->sa, f->to_a, 0, f->to_b, f->fa), KITH_OK);
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_OK);
  assert_true(kith_session_is_established(f->sa));
  assert_true(kith_session_is_established(f->sb));
  exchange_frames(f, 0);
}

static void large_frame_round_trips(void **state) {
  fixture *f = *state;
  handshake(f, 0);
  uint8_t *big = g_malloc(KITH_SESSION_MAX_FRAME);
  randombytes_buf_deterministic(big, KITH_SESSION_MAX_FRAME,
                                (const uint8_t[32]){7});
  assert_int_equal(
      kith_session_seal(f->sa, big, KITH_SESSION_MAX_FRAME, f->to_b), KITH_OK);
  assert_int_equal(feed(f->sb, f->to_b, 1000, f->to_a, f->fb), KITH_OK);
  assert_int_equal(f->fb->len, 1);
  gsize len = 0;
  const void *p = g_bytes_get_data(f->fb->pdata[0], &len);
  assert_int_equal(len, KITH_SESSION_MAX_FRAME);
  assert_memory_equal(p, big, len);
  assert_int_equal(
      kith_session_seal(f->sa, big, KITH_SESSION_MAX_FRAME + 1, f->to_b),
      KITH_ERR_LIMIT);
  g_free(big);
}

static void flipped_byte_is_crypto_error_and_sticks(void **state) {
  fixture *f = *state;
  handshake(f, 0);
  seal_text(f->sa, "hello", f->to_b);
  f->to_b->data[f->to_b->len - 3] ^= 0x01;
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_ERR_CRYPTO);
  assert_int_equal(f->fb->len, 0);
  assert_false(kith_session_is_established(f->sb));
  /* dead: every call returns the same error */
  seal_text(f->sa, "again", f->to_b);
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_ERR_CRYPTO);
  assert_int_equal(kith_session_seal(f->sb, (const uint8_t *)"x", 1, f->to_a),
                   KITH_ERR_CRYPTO);
  assert_int_equal(kith_session_start(f->sb, f->to_a), KITH_ERR_CRYPTO);
}

static void wrong_peer_identity_is_forbidden(void **state) {
  fixture *f = *state;
  kith_session *sc = kith_session_new(&f->c, f->b.pk, 1); /* c posing */
  assert_int_equal(kith_session_start(sc, f->to_b), KITH_OK);
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_ERR_FORBIDDEN);
  kith_session_free(sc);
}

static void oversized_or_empty_record_is_limit(void **state) {
  fixture *f = *state;
  const uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
  g_byte_array_append(f->to_b, huge, 4);
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_ERR_LIMIT);
  const uint8_t empty[4] = {0, 0, 0, 0};
  g_byte_array_append(f->to_a, empty, 4);
  assert_int_equal(feed(f->sa, f->to_a, 0, f->to_b, f->fa), KITH_ERR_LIMIT);
}

static void oversized_record_after_handshake_is_limit(void **state) {
  fixture *f = *state;
  handshake(f, 0);
  uint32_t n = KITH_SESSION_MAX_RECORD + 1;
  const uint8_t hdr[4] = {n >> 24, n >> 16, n >> 8, n};
  g_byte_array_append(f->to_b, hdr, 4);
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_ERR_LIMIT);
}

static void garbage_hello_is_decode_error(void **state) {
  fixture *f = *state;
  const uint8_t junk[] = {0, 0, 0, 5, 0x93, 0x01, 0xc4, 0x20, 0x00};
  g_byte_array_append(f->to_b, junk, sizeof junk);
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_ERR_DECODE);
  /* a well-formed AUTH where HELLO belongs is also rejected */
  const uint8_t wrong[] = {0, 0, 0, 4, 0x93, 0x02, 0xc0, 0xc0};
  g_byte_array_append(f->to_a, wrong, sizeof wrong);
  assert_int_equal(feed(f->sa, f->to_a, 0, f->to_b, f->fa), KITH_ERR_DECODE);
}

static void tampered_auth_is_signature_error(void **state) {
  fixture *f = *state;
  assert_int_equal(kith_session_start(f->sa, f->to_b), KITH_OK);
  assert_int_equal(kith_session_start(f->sb, f->to_a), KITH_OK);
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_OK);
  /* to_a = b's HELLO record, then b's AUTH: [2, sig, header] */
  size_t hello = 4 + ((size_t)f->to_a->data[2] << 8 | f->to_a->data[3]);
  f->to_a->data[hello + 4 + 4] ^= 0x80; /* first signature byte */
  assert_int_equal(feed(f->sa, f->to_a, 0, f->to_b, f->fa), KITH_ERR_SIGNATURE);
}

static void replayed_auth_or_record_is_rejected(void **state) {
  fixture *f = *state;
  assert_int_equal(kith_session_start(f->sa, f->to_b), KITH_OK);
  assert_int_equal(kith_session_start(f->sb, f->to_a), KITH_OK);
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_OK);
  size_t hello = 4 + ((size_t)f->to_a->data[2] << 8 | f->to_a->data[3]);
  GByteArray *auth = g_byte_array_new();
  g_byte_array_append(auth, f->to_a->data + hello, f->to_a->len - hello);
  assert_int_equal(feed(f->sa, f->to_a, 0, f->to_b, f->fa), KITH_OK);
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_OK);
  assert_true(kith_session_is_established(f->sa));
  /* a record replayed to b */
  seal_text(f->sa, "once", f->to_b);
  GByteArray *rec = g_byte_array_new();
  g_byte_array_append(rec, f->to_b->data, f->to_b->len);
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_OK);
  assert_int_equal(f->fb->len, 1);
  assert_int_equal(feed(f->sb, rec, 0, f->to_a, f->fb), KITH_ERR_CRYPTO);
  assert_int_equal(f->fb->len, 1);
  /* b's AUTH replayed to a */
  assert_int_equal(feed(f->sa, auth, 0, f->to_b, f->fa), KITH_ERR_CRYPTO);
  g_byte_array_unref(rec);
  g_byte_array_unref(auth);
}

static void seal_before_established_is_state_error(void **state) {
  fixture *f = *state;
  assert_int_equal(kith_session_seal(f->sa, (const uint8_t *)"x", 1, f->to_b),
                   KITH_ERR_STATE);
  assert_int_equal(kith_session_start(f->sa, f->to_b), KITH_OK);
  assert_int_equal(kith_session_seal(f->sa, (const uint8_t *)"x", 1, f->to_b),
                   KITH_ERR_STATE);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(handshake_then_frames_both_ways),
      T(handshake_fed_one_byte_at_a_time),
      T(responder_hears_hello_before_start),
      T(large_frame_round_trips),
      T(flipped_byte_is_crypto_error_and_sticks),
      T(wrong_peer_identity_is_forbidden),
      T(oversized_or_empty_record_is_limit),
      T(oversized_record_after_handshake_is_limit),
      T(garbage_hello_is_decode_error),
      T(tampered_auth_is_signature_error),
      T(replayed_auth_or_record_is_rejected),
      T(seal_before_established_is_state_error),
  };
  int failed = cmocka_run_group_tests_name("session", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
