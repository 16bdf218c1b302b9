/* Unit tests for net/session: two sessions talk through in-memory byte
 * buffers; fixed identity seeds. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <string.h>

#include <glib.h>

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

static void responder_hears_hs1_before_start(void **state) {
  fixture *f = *state;
  assert_int_equal(kith_session_start(f->sa, f->to_b), KITH_OK);
  /* b's link came up late: HS1 is answered all the same */
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_OK);
  assert_int_equal(kith_session_start(f->sb, f->to_a), KITH_OK);
  assert_int_equal(feed(f->sa, f->to_a, 0, f->to_b, f->fa), KITH_OK);
  assert_true(kith_session_is_established(f->sa));
  assert_false(kith_session_is_established(f->sb)); /* until confirmed */
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_OK);
  assert_true(kith_session_is_established(f->sb));
  assert_int_equal(f->fb->len, 0); /* the confirmation is not a frame */
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
  assert_int_equal(kith_session_seal(f->sa, big, 0, f->to_b), KITH_ERR_ARG);
  g_free(big);
}

static void whole_and_split_records_in_one_feed(void **state) {
  fixture *f = *state;
  handshake(f, 0);
  seal_text(f->sa, "first", f->to_b);
  seal_text(f->sa, "second", f->to_b);
  seal_text(f->sa, "third", f->to_b);
  /* one whole record, then one cut in the middle, then the rest */
  size_t cut = 4 + 5 + 16 + 7;
  GByteArray *rest = g_byte_array_new();
  g_byte_array_append(rest, f->to_b->data + cut, f->to_b->len - cut);
  g_byte_array_set_size(f->to_b, (guint)cut);
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_OK);
  assert_int_equal(f->fb->len, 1);
  assert_int_equal(feed(f->sb, rest, 0, f->to_a, f->fb), KITH_OK);
  assert_int_equal(f->fb->len, 3);
  assert_frame(f->fb, 0, "first");
  assert_frame(f->fb, 1, "second");
  assert_frame(f->fb, 2, "third");
  g_byte_array_unref(rest);
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

static void wrong_peer_identity_fails_the_handshake(void **state) {
  fixture *f = *state;
  kith_session *sc = kith_session_new(&f->c, f->b.pk, 1); /* c posing as a */
  assert_int_equal(kith_session_start(sc, f->to_b), KITH_OK);
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_ERR_CRYPTO);
  assert_int_equal(f->to_a->len, 0); /* nothing answered */
  kith_session_free(sc);
  /* and a responder that is not the one a expects cannot answer a */
  kith_session *sc2 = kith_session_new(&f->c, f->a.pk, 0);
  assert_int_equal(kith_session_start(f->sa, f->to_b), KITH_OK);
  assert_int_equal(feed(sc2, f->to_b, 0, f->to_a, f->fb), KITH_ERR_CRYPTO);
  kith_session_free(sc2);
}

static int contains(const GByteArray *hay, const uint8_t *needle, size_t n) {
  for (size_t i = 0; i + n <= hay->len; i++)
    if (memcmp(hay->data + i, needle, n) == 0)
      return 1;
  return 0;
}

static void no_identity_crosses_the_link(void **state) {
  fixture *f = *state;
  GByteArray *wire = g_byte_array_new();
  assert_int_equal(kith_session_start(f->sa, f->to_b), KITH_OK);
  assert_int_equal(kith_session_start(f->sb, f->to_a), KITH_OK);
  for (int i = 0; i < 3; i++) {
    g_byte_array_append(wire, f->to_b->data, f->to_b->len);
    assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_OK);
    g_byte_array_append(wire, f->to_a->data, f->to_a->len);
    assert_int_equal(feed(f->sa, f->to_a, 0, f->to_b, f->fa), KITH_OK);
  }
  assert_true(kith_session_is_established(f->sb));
  assert_int_equal(wire->len, 2 * (4 + 48) + 4 + 16);
  assert_false(contains(wire, f->a.pk, 8));
  assert_false(contains(wire, f->b.pk, 8));
  assert_false(contains(wire, f->a.xpk, 8));
  assert_false(contains(wire, f->b.xpk, 8));
  g_byte_array_unref(wire);
}

static void replayed_hs1_never_establishes(void **state) {
  fixture *f = *state;
  assert_int_equal(kith_session_start(f->sa, f->to_b), KITH_OK);
  GByteArray *hs1 = g_byte_array_new();
  g_byte_array_append(hs1, f->to_b->data, f->to_b->len);
  handshake(f, 0);
  /* an observer replays a's HS1 to a fresh responder of b's */
  kith_session *again = kith_session_new(&f->b, f->a.pk, 0);
  GByteArray *out = g_byte_array_new();
  assert_int_equal(feed(again, hs1, 0, out, f->fb), KITH_OK);
  assert_int_equal(out->len, 4 + 48); /* answered, but... */
  assert_false(kith_session_is_established(again));
  /* ...a record of the real session cannot confirm it */
  seal_text(f->sa, "hi", f->to_b);
  assert_int_equal(feed(again, f->to_b, 0, out, f->fb), KITH_ERR_DECODE);
  assert_false(kith_session_is_established(again));
  kith_session_free(again);
  g_byte_array_unref(out);
  g_byte_array_unref(hs1);
}

static void bad_record_sizes_are_limit(void **state) {
  fixture *f = *state;
  const uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
  g_byte_array_append(f->to_b, huge, 4);
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_ERR_LIMIT);
  const uint8_t empty[4] = {0, 0, 0, 0};
  g_byte_array_append(f->to_a, empty, 4);
  assert_int_equal(kith_session_start(f->sa, f->to_b), KITH_OK);
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

static void hs2_before_start_or_short_hs_is_rejected(void **state) {
  fixture *f = *state;
  uint8_t junk[4 + 48] = {0, 0, 0, 48};
  g_byte_array_append(f->to_a, junk, sizeof junk);
  assert_int_equal(feed(f->sa, f->to_a, 0, f->to_b, f->fa), KITH_ERR_DECODE);
  const uint8_t short_hs[] = {0, 0, 0, 5, 1, 2, 3, 4, 5};
  g_byte_array_append(f->to_b, short_hs, sizeof short_hs);
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_ERR_LIMIT);
}

static void tampered_hs2_is_crypto_error(void **state) {
  fixture *f = *state;
  assert_int_equal(kith_session_start(f->sa, f->to_b), KITH_OK);
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_OK);
  f->to_a->data[4 + 40] ^= 0x80; /* a tag byte */
  assert_int_equal(feed(f->sa, f->to_a, 0, f->to_b, f->fa), KITH_ERR_CRYPTO);
}

static void replayed_record_is_rejected(void **state) {
  fixture *f = *state;
  handshake(f, 0);
  seal_text(f->sa, "once", f->to_b);
  GByteArray *rec = g_byte_array_new();
  g_byte_array_append(rec, f->to_b->data, f->to_b->len);
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_OK);
  assert_int_equal(f->fb->len, 1);
  assert_int_equal(feed(f->sb, rec, 0, f->to_a, f->fb), KITH_ERR_CRYPTO);
  assert_int_equal(f->fb->len, 1);
  g_byte_array_unref(rec);
}

static void seal_before_established_is_state_error(void **state) {
  fixture *f = *state;
  assert_int_equal(kith_session_seal(f->sa, (const uint8_t *)"x", 1, f->to_b),
                   KITH_ERR_STATE);
  assert_int_equal(kith_session_start(f->sa, f->to_b), KITH_OK);
  assert_int_equal(kith_session_seal(f->sa, (const uint8_t *)"x", 1, f->to_b),
                   KITH_ERR_STATE);
  assert_int_equal(feed(f->sb, f->to_b, 0, f->to_a, f->fb), KITH_OK);
  /* b answered but is not confirmed yet */
  assert_int_equal(kith_session_seal(f->sb, (const uint8_t *)"x", 1, f->to_a),
                   KITH_ERR_STATE);
}

/* ---- tests/vectors/session.txt ---- */

static char *vector(GHashTable *v, const char *key) {
  char *s = g_hash_table_lookup(v, key);
  assert_non_null(s);
  return s;
}

static void hex_of(const GByteArray *b, char *out) {
  sodium_bin2hex(out, b->len * 2 + 1, b->data, b->len);
}

static GHashTable *read_vectors(const char *name) {
  char *path = g_build_filename(KITH_VECTORS_DIR, name, NULL), *text = NULL;
  assert_true(g_file_get_contents(path, &text, NULL, NULL));
  GHashTable *v =
      g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  char **lines = g_strsplit(text, "\n", -1);
  for (char **l = lines; *l; l++) {
    char **kv = g_strsplit(*l, " ", 2);
    if (kv[0] && kv[0][0] && kv[0][0] != '#' && kv[1])
      g_hash_table_replace(v, g_strdup(kv[0]), g_strdup(kv[1]));
    g_strfreev(kv);
  }
  g_strfreev(lines);
  g_free(text);
  g_free(path);
  return v;
}

static void seeded(GHashTable *v, const char *key, uint8_t out[32]) {
  assert_int_equal(
      sodium_hex2bin(out, 32, vector(v, key), 64, NULL, NULL, NULL), 0);
}

static void assert_hex(const GByteArray *b, const char *want) {
  char *got = g_malloc(b->len * 2 + 1);
  hex_of(b, got);
  assert_string_equal(got, want);
  g_free(got);
}

static void known_answer_vector(void **state) {
  GHashTable *v = read_vectors("session.txt");
  uint8_t seed[32], ei[32], er[32];
  kith_ident ii, ir;
  seeded(v, "initiator_seed", seed);
  assert_int_equal(kith_ident_from_seed(&ii, seed), KITH_OK);
  seeded(v, "responder_seed", seed);
  assert_int_equal(kith_ident_from_seed(&ir, seed), KITH_OK);
  seeded(v, "initiator_eph_sk", ei);
  seeded(v, "responder_eph_sk", er);
  kith_session *si = kith_session_new_with_eph(&ii, ir.pk, 1, ei);
  kith_session *sr = kith_session_new_with_eph(&ir, ii.pk, 0, er);
  GByteArray *hs1 = g_byte_array_new(), *hs2 = g_byte_array_new(),
             *conf = g_byte_array_new(), *ping = g_byte_array_new(),
             *pong = g_byte_array_new();
  GPtrArray *frames =
      g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  assert_int_equal(kith_session_start(si, hs1), KITH_OK);
  assert_hex(hs1, vector(v, "hs1"));
  assert_int_equal(kith_session_recv(sr, hs1->data, hs1->len, hs2, frames),
                   KITH_OK);
  assert_hex(hs2, vector(v, "hs2"));
  assert_int_equal(kith_session_recv(si, hs2->data, hs2->len, conf, frames),
                   KITH_OK);
  assert_hex(conf, vector(v, "confirm"));
  assert_int_equal(kith_session_recv(sr, conf->data, conf->len, pong, frames),
                   KITH_OK);
  assert_true(kith_session_is_established(sr));
  uint8_t frame[64];
  size_t flen = 0;
  const char *fh = vector(v, "frame");
  assert_int_equal(
      sodium_hex2bin(frame, sizeof frame, fh, strlen(fh), NULL, &flen, NULL),
      0);
  assert_int_equal(kith_session_seal(si, frame, flen, ping), KITH_OK);
  assert_hex(ping, vector(v, "frame_record"));
  assert_int_equal(kith_session_seal(sr, frame, flen, pong), KITH_OK);
  assert_hex(pong, vector(v, "frame_record_reply"));
  assert_int_equal(kith_session_recv(sr, ping->data, ping->len, hs2, frames),
                   KITH_OK);
  assert_int_equal(frames->len, 1);
  assert_int_equal(g_bytes_get_size(frames->pdata[0]), flen);
  g_ptr_array_unref(frames);
  GByteArray *all[] = {hs1, hs2, conf, ping, pong};
  for (size_t i = 0; i < G_N_ELEMENTS(all); i++)
    g_byte_array_unref(all[i]);
  kith_session_free(si);
  kith_session_free(sr);
  kith_ident_clear(&ii);
  kith_ident_clear(&ir);
  g_hash_table_unref(v);
  (void)state;
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(handshake_then_frames_both_ways),
      T(handshake_fed_one_byte_at_a_time),
      T(responder_hears_hs1_before_start),
      T(large_frame_round_trips),
      T(whole_and_split_records_in_one_feed),
      T(flipped_byte_is_crypto_error_and_sticks),
      T(wrong_peer_identity_fails_the_handshake),
      T(no_identity_crosses_the_link),
      T(replayed_hs1_never_establishes),
      T(bad_record_sizes_are_limit),
      T(oversized_record_after_handshake_is_limit),
      T(hs2_before_start_or_short_hs_is_rejected),
      T(tampered_hs2_is_crypto_error),
      T(replayed_record_is_rejected),
      T(seal_before_established_is_state_error),
      cmocka_unit_test(known_answer_vector),
  };
  int failed = cmocka_run_group_tests_name("session", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
