/* Unit tests for core/presence.h: beats (codec, signature, known-answer
 * vector) and the table of who is online, with time as a variable. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glib.h>
#include <sodium.h>
#include <string.h>

#include "vectors.h"
#include "core/presence.h"

#define WALL0 1700000000000ull
#define SECOND 1000ull

static void hex(const char *h, uint8_t *out, size_t n) {
  size_t got;
  assert_int_equal(strlen(h), 2 * n);
  assert_int_equal(sodium_hex2bin(out, n, h, strlen(h), NULL, &got, NULL), 0);
  assert_int_equal(got, n);
}

static void ident(kith_ident *id, uint8_t first) {
  uint8_t seed[32];
  for (int i = 0; i < 32; i++)
    seed[i] = (uint8_t)(first + i);
  assert_int_equal(kith_ident_from_seed(id, seed), KITH_OK);
}

static void group_id(uint8_t gid[32]) {
  for (int i = 0; i < 32; i++)
    gid[i] = (uint8_t)(0xd0 + i % 16);
}

static void test_beat_vectors_reproduce(void **state) {
  (void)state;
  gchar *text = NULL;
  GHashTable *kv = vectors_read("presence.txt", &text);
  kith_ident id;
  uint8_t gid[32], node[32], want[KITH_BEAT_MAX], out[KITH_BEAT_MAX];
  size_t len;
  ident(&id, 1);
  hex(g_hash_table_lookup(kv, "node"), node, 32);
  assert_memory_equal(id.pk, node, 32);
  hex(g_hash_table_lookup(kv, "group"), gid, 32);
  const char *names[] = {"offline_beat", "beat"};
  for (int s = 0; s <= 1; s++) {
    hex(g_hash_table_lookup(kv, names[s]), want, KITH_BEAT_MAX);
    assert_int_equal(kith_beat_encode(&id, gid, WALL0, s, out, &len), KITH_OK);
    assert_int_equal(len, KITH_BEAT_MAX);
    assert_memory_equal(out, want, len);
    kith_beat b;
    assert_int_equal(kith_beat_decode(out, len, &b), KITH_OK);
    assert_memory_equal(b.group, gid, 32);
    assert_memory_equal(b.node, node, 32);
    assert_int_equal(b.ts_ms, WALL0);
    assert_int_equal(b.state, s);
  }
  kith_ident_clear(&id);
  g_hash_table_destroy(kv);
  g_free(text);
}

/* Every byte flipped, every length cut, a changed field re-signed by
 * another key: rejected. */
static void test_beat_rejects_junk_and_forgeries(void **state) {
  (void)state;
  kith_ident a, b;
  uint8_t gid[32], buf[KITH_BEAT_MAX], other[KITH_BEAT_MAX];
  size_t len, olen;
  kith_beat beat;
  ident(&a, 1);
  ident(&b, 2);
  group_id(gid);
  assert_int_equal(kith_beat_encode(&a, gid, WALL0, 1, buf, &len), KITH_OK);
  for (size_t i = 0; i < len; i++) {
    buf[i] ^= 0x01;
    assert_int_not_equal(kith_beat_decode(buf, len, &beat), KITH_OK);
    buf[i] ^= 0x01;
  }
  for (size_t cut = 0; cut < len; cut++)
    assert_int_equal(kith_beat_decode(buf, cut, &beat), KITH_ERR_DECODE);
  /* b's signature under a's node id */
  assert_int_equal(kith_beat_encode(&b, gid, WALL0, 1, other, &olen), KITH_OK);
  memcpy(buf + len - KITH_SIG_LEN, other + olen - KITH_SIG_LEN, KITH_SIG_LEN);
  assert_int_equal(kith_beat_decode(buf, len, &beat), KITH_ERR_SIGNATURE);
  assert_int_equal(kith_beat_encode(&a, gid, WALL0, 2, buf, &len),
                   KITH_ERR_ARG);
  kith_ident_clear(&a);
  kith_ident_clear(&b);
}

static kith_beat beat_of(const kith_ident *id, const uint8_t gid[32],
                         uint64_t ts, int st) {
  uint8_t buf[KITH_BEAT_MAX];
  size_t len;
  kith_beat b;
  assert_int_equal(kith_beat_encode(id, gid, ts, st, buf, &len), KITH_OK);
  assert_int_equal(kith_beat_decode(buf, len, &b), KITH_OK);
  return b;
}

static void test_period_grows_with_the_group(void **state) {
  (void)state;
  const uint64_t min = KITH_PRESENCE_PERIOD_MIN_MS;
  assert_int_equal(kith_presence_period(2, min), 10 * SECOND);
  assert_int_equal(kith_presence_period(100, min), 10 * SECOND);
  assert_int_equal(kith_presence_period(1000, min), 100 * SECOND);
  assert_int_equal(kith_presence_period(10000, min), 300 * SECOND);
  assert_int_equal(kith_presence_period(6, 500), 600); /* tests: shorter */
}

/* Online after a beat, until 2.5 periods pass without one; offline at
 * once after an offline beat; replays, old and future beats are refused;
 * last seen is the receiver's wall time of the last beat. */
static void test_online_until_timeout_or_offline_beat(void **state) {
  (void)state;
  kith_ident a;
  uint8_t gid[32], other[32];
  uint64_t now = 5000, wall = WALL0, seen, period = 10 * SECOND;
  ident(&a, 1);
  group_id(gid);
  kith_presence *p = kith_presence_new(gid);
  assert_false(kith_presence_online(p, a.pk, now, period, &seen));
  assert_int_equal(seen, 0);
  kith_beat b = beat_of(&a, gid, wall, 1);
  assert_int_equal(kith_presence_beat(p, &b, now, wall), KITH_OK);
  assert_int_equal(kith_presence_beat(p, &b, now, wall), KITH_ERR_DUPLICATE);
  assert_true(kith_presence_online(p, a.pk, now, period, &seen));
  assert_int_equal(seen, wall);
  assert_true(kith_presence_online(p, a.pk, now + 24999, period, NULL));
  assert_false(kith_presence_online(p, a.pk, now + 25000, period, &seen));
  assert_int_equal(seen, wall);
  now += 30 * SECOND, wall += 30 * SECOND;
  kith_beat later = beat_of(&a, gid, wall, 1);
  assert_int_equal(kith_presence_beat(p, &later, now, wall), KITH_OK);
  assert_true(kith_presence_online(p, a.pk, now, period, &seen));
  assert_int_equal(seen, wall);
  /* a replay of the first beat is older: refused */
  assert_int_equal(kith_presence_beat(p, &b, now, wall), KITH_ERR_DUPLICATE);
  now += SECOND, wall += SECOND;
  kith_beat off = beat_of(&a, gid, wall, 0);
  assert_int_equal(kith_presence_beat(p, &off, now, wall), KITH_OK);
  assert_false(kith_presence_online(p, a.pk, now, period, &seen));
  assert_int_equal(seen, wall);
  /* too far ahead of this clock, or another group's */
  kith_beat ahead = beat_of(&a, gid, wall + KITH_PRESENCE_SKEW_MS + 1, 1);
  assert_int_equal(kith_presence_beat(p, &ahead, now, wall), KITH_ERR_EXPIRED);
  memset(other, 7, 32);
  kith_beat wrong = beat_of(&a, other, wall + 1, 1);
  assert_int_equal(kith_presence_beat(p, &wrong, now, wall), KITH_ERR_PROTOCOL);
  assert_false(kith_presence_online(p, a.pk, now, period, NULL));
  kith_presence_forget(p, a.pk);
  assert_int_equal(kith_presence_size(p), 0);
  kith_presence_free(p);
  kith_ident_clear(&a);
}

/* An accepted event counts as a beat, unless it is history (older than
 * the skew) or older than the last state heard (an event made before an
 * offline beat does not bring the node back). */
static void test_events_count_as_seen(void **state) {
  (void)state;
  kith_ident a;
  uint8_t gid[32];
  uint64_t now = 1, wall = WALL0, seen, period = 10 * SECOND;
  ident(&a, 1);
  group_id(gid);
  kith_presence *p = kith_presence_new(gid);
  kith_presence_heard(p, a.pk, wall - 3600 * SECOND, now, wall); /* history */
  assert_false(kith_presence_online(p, a.pk, now, period, &seen));
  assert_int_equal(seen, 0);
  kith_presence_heard(p, a.pk, wall - SECOND, now, wall);
  assert_true(kith_presence_online(p, a.pk, now, period, &seen));
  assert_int_equal(seen, wall);
  kith_beat off = beat_of(&a, gid, wall, 0);
  assert_int_equal(kith_presence_beat(p, &off, now, wall), KITH_OK);
  kith_presence_heard(p, a.pk, wall - 500, now + 1, wall + 1);
  assert_false(kith_presence_online(p, a.pk, now + 1, period, NULL));
  kith_presence_heard(p, a.pk, wall + 2000, now + 2000, wall + 2000);
  assert_true(kith_presence_online(p, a.pk, now + 2000, period, &seen));
  assert_int_equal(seen, wall + 2000);
  kith_presence_free(p);
  kith_ident_clear(&a);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_beat_vectors_reproduce),
      cmocka_unit_test(test_beat_rejects_junk_and_forgeries),
      cmocka_unit_test(test_period_grows_with_the_group),
      cmocka_unit_test(test_online_until_timeout_or_offline_beat),
      cmocka_unit_test(test_events_count_as_seen),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
