/* Unit tests for core/reconcile.c: exact differences on equal, disjoint,
 * nearly equal, empty and large sets, the message size cap, and rejection
 * of malformed messages without any change of state. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "core/reconcile.h"

#define T0 1700000000000ull
#define SPAN_MS (30ull * 24 * 3600 * 1000)
#define MAX_MSGS 10000

typedef struct titem {
  uint64_t ts;
  uint8_t id[32];
  int side; /* 0 both, 1 only A, 2 only B */
} titem;

typedef struct run {
  size_t msgs, rounds, bytes, max_msg;
  GByteArray *io[4]; /* have A, need A, have B, need B */
} run;

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* n items; only_a of them only in A, only_b others only in B. span 0 gives
 * every item the same timestamp. */
static titem *make_items(uint64_t seed, size_t n, size_t only_a, size_t only_b,
                         uint64_t span) {
  titem *it = calloc(n + 1, sizeof *it);
  assert_non_null(it);
  for (size_t i = 0; i < n; i++) {
    it[i].ts = T0 + (span ? splitmix64(&seed) % span : 0);
    for (int k = 0; k < 4; k++) {
      uint64_t v = splitmix64(&seed);
      memcpy(it[i].id + 8 * k, &v, 8);
    }
  }
  for (size_t i = 0; i < only_a + only_b; i++) {
    size_t j;
    do
      j = splitmix64(&seed) % n;
    while (it[j].side != 0);
    it[j].side = i < only_a ? 1 : 2;
  }
  return it;
}

static kith_recon *replica(const titem *it, size_t n, int skip) {
  kith_recon *r = kith_recon_new();
  for (size_t i = 0; i < n; i++)
    if (it[i].side != skip)
      assert_int_equal(kith_recon_add(r, it[i].ts, it[i].id), KITH_OK);
  return r;
}

static void run_init(run *x) {
  memset(x, 0, sizeof *x);
  for (int i = 0; i < 4; i++)
    x->io[i] = g_byte_array_new();
}

static void run_clear(run *x) {
  for (int i = 0; i < 4; i++)
    g_byte_array_unref(x->io[i]);
}

/* Passes msg (owned) back and forth, first to side `turn` (0 a, 1 b),
 * until a side has no reply. Every message must respect the size cap. */
static void exchange_from(kith_recon *a, kith_recon *b, int turn, uint8_t *msg,
                          size_t len, run *x) {
  kith_recon *side[2] = {a, b};
  for (; msg != NULL; turn ^= 1) {
    uint8_t *reply = NULL;
    size_t rlen = 0;
    assert_true(len <= KITH_RECON_MAX_MSG);
    x->msgs++;
    x->bytes += len;
    x->max_msg = MAX(x->max_msg, len);
    assert_true(x->msgs < MAX_MSGS);
    assert_int_equal(kith_recon_step(side[turn], msg, len, &reply, &rlen,
                                     x->io[2 * turn], x->io[2 * turn + 1]),
                     KITH_OK);
    g_free(msg);
    msg = reply;
    len = rlen;
  }
  x->rounds = (x->msgs + 1) / 2;
}

static void exchange(kith_recon *a, kith_recon *b, run *x) {
  uint8_t *msg = NULL;
  size_t len = 0;
  assert_int_equal(kith_recon_initiate(a, &msg, &len), KITH_OK);
  exchange_from(a, b, 1, msg, len, x);
}

static int id_cmp(const void *p, const void *q) {
  return memcmp(p, q, 32);
}

/* got holds exactly the ids of the items on `side`, each once. */
static void assert_ids(GByteArray *got, const titem *it, size_t n, int side) {
  GByteArray *want = g_byte_array_new();
  for (size_t i = 0; i < n; i++)
    if (it[i].side == side)
      g_byte_array_append(want, it[i].id, 32);
  assert_int_equal(got->len, want->len);
  if (want->len > 0) {
    qsort(got->data, got->len / 32, 32, id_cmp);
    qsort(want->data, want->len / 32, 32, id_cmp);
    assert_memory_equal(got->data, want->data, want->len);
  }
  g_byte_array_unref(want);
}

static void assert_exact(run *x, const titem *it, size_t n) {
  assert_ids(x->io[0], it, n, 1);
  assert_ids(x->io[1], it, n, 2);
  assert_ids(x->io[2], it, n, 2);
  assert_ids(x->io[3], it, n, 1);
}

/* Builds two replicas, reconciles them, checks the result exactly. */
static void check_case(uint64_t seed, size_t n, size_t only_a, size_t only_b,
                       uint64_t span, run *x) {
  titem *it = make_items(seed, n, only_a, only_b, span);
  kith_recon *a = replica(it, n, 2), *b = replica(it, n, 1);
  run_init(x);
  exchange(a, b, x);
  assert_exact(x, it, n);
  kith_recon_free(a);
  kith_recon_free(b);
  free(it);
}

static void equal_sets_take_one_round_and_report_nothing(void **state) {
  size_t sizes[] = {1, 5, KITH_RECON_LEAF, 1000, 20000};
  for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
    run x;
    check_case(1 + i, sizes[i], 0, 0, SPAN_MS, &x);
    assert_int_equal(x.msgs, 1);
    assert_int_equal(x.rounds, 1);
    run_clear(&x);
  }
}

static void both_empty_sets_agree_at_once(void **state) {
  run x;
  check_case(2, 0, 0, 0, SPAN_MS, &x);
  assert_int_equal(x.msgs, 1);
  run_clear(&x);
}

static void one_empty_side_gets_everything(void **state) {
  run x;
  check_case(3, 300, 300, 0, SPAN_MS, &x); /* the responder is empty */
  run_clear(&x);
  check_case(4, 300, 0, 300, SPAN_MS, &x); /* the initiator is empty */
  run_clear(&x);
  check_case(5, 1, 1, 0, SPAN_MS, &x);
  run_clear(&x);
}

static void disjoint_sets_exchange_all_ids(void **state) {
  run x;
  check_case(6, 2000, 1000, 1000, SPAN_MS, &x);
  run_clear(&x);
  check_case(7, 7, 3, 4, SPAN_MS, &x);
  run_clear(&x);
}

static void nearly_equal_sets_find_exactly_the_difference(void **state) {
  size_t diffs[] = {1, 10, 1000};
  for (size_t i = 0; i < G_N_ELEMENTS(diffs); i++) {
    for (uint64_t seed = 10; seed < 13; seed++) {
      run x;
      size_t d = diffs[i];
      check_case(seed, 5000, d / 2, d - d / 2, SPAN_MS, &x);
      if (d == 1)
        assert_true(x.rounds <= 2);
      run_clear(&x);
    }
  }
}

static void equal_timestamps_are_split_by_id_prefix(void **state) {
  run x;
  check_case(20, 3000, 5, 5, 0, &x);
  run_clear(&x);
  check_case(21, 3000, 300, 200, 3, &x); /* three distinct timestamps */
  run_clear(&x);
}

static void large_sets_meet_the_targets(void **state) {
  run x;
  check_case(30, 100000, 50, 50, SPAN_MS, &x);
  assert_true(x.rounds <= 4);
  assert_true(x.bytes <= 20000);
  run_clear(&x);
}

static void messages_respect_the_size_cap(void **state) {
  run x;
  /* 20000 ids one way need 640 KB: several capped messages. */
  check_case(40, 20000, 0, 20000, SPAN_MS, &x);
  assert_true(x.max_msg <= KITH_RECON_MAX_MSG);
  assert_true(x.bytes > KITH_RECON_MAX_MSG);
  run_clear(&x);
  check_case(41, 40000, 10000, 10000, SPAN_MS, &x);
  assert_true(x.max_msg <= KITH_RECON_MAX_MSG);
  run_clear(&x);
}

/* Sets smaller than the branch factor split into fewer parts (9 items once
 * read past the start of the item array). */
static void small_sets_of_every_size_reconcile(void **state) {
  (void)state;
  run x;
  for (size_t n = 1; n <= 3 * KITH_RECON_BRANCH; n++) {
    check_case(200 + n, n, 0, 0, 1000000, &x);
    run_clear(&x);
    if (n >= 2) {
      check_case(100 + n, n, 1, 1, 1000000, &x);
      run_clear(&x);
    }
  }
}

static void duplicates_are_ignored(void **state) {
  kith_recon *r = kith_recon_new();
  uint8_t id[32] = {1};
  assert_int_equal(kith_recon_add(r, 5, id), KITH_OK);
  assert_int_equal(kith_recon_add(r, 5, id), KITH_OK);
  assert_int_equal(kith_recon_add(r, 9, id), KITH_OK);
  assert_int_equal(kith_recon_size(r), 1);
  assert_int_equal(kith_recon_add(r, 5, NULL), KITH_ERR_ARG);
  kith_recon_free(r);
}

/* Items added during a reconciliation wait for the next one; a second
 * reconciliation on the same objects finds what is left. */
static void a_new_reconciliation_starts_afresh(void **state) {
  titem *it = make_items(50, 4000, 20, 20, SPAN_MS);
  kith_recon *a = replica(it, 4000, 2), *b = replica(it, 4000, 1);
  run x, y;
  run_init(&x);
  exchange(a, b, &x);
  assert_exact(&x, it, 4000);
  run_init(&y);
  exchange(b, a, &y); /* same sets again: same differences again */
  assert_ids(y.io[0], it, 4000, 2);
  assert_ids(y.io[2], it, 4000, 1);
  run_clear(&y);
  for (size_t i = 0; i < 4000; i++)
    if (it[i].side == 1)
      assert_int_equal(kith_recon_add(b, it[i].ts, it[i].id), KITH_OK);
  run_init(&y);
  exchange(a, b, &y);
  assert_int_equal(y.io[0]->len, 0); /* B now has everything of A */
  assert_ids(y.io[1], it, 4000, 2);
  run_clear(&y);
  run_clear(&x);
  kith_recon_free(a);
  kith_recon_free(b);
  free(it);
}

/* ---- malformed input ---- */

typedef struct fixture {
  titem *it;
  kith_recon *a, *b;
  uint8_t *m1, *m2; /* A's first message, B's reply to it */
  size_t l1, l2;
  run x;
} fixture;

static void fixture_setup(fixture *f) {
  f->it = make_items(60, 3000, 40, 40, SPAN_MS);
  f->a = replica(f->it, 3000, 2);
  f->b = replica(f->it, 3000, 1);
  run_init(&f->x);
  assert_int_equal(kith_recon_initiate(f->a, &f->m1, &f->l1), KITH_OK);
  assert_int_equal(kith_recon_step(f->b, f->m1, f->l1, &f->m2, &f->l2,
                                   f->x.io[2], f->x.io[3]),
                   KITH_OK);
  assert_non_null(f->m2);
  f->x.msgs = 2;
}

/* Finishes the reconciliation from B's reply: the result must be exact,
 * so the rejected messages changed nothing. */
static void fixture_finish(fixture *f) {
  exchange_from(f->a, f->b, 0, f->m2, f->l2, &f->x);
  assert_exact(&f->x, f->it, 3000);
  run_clear(&f->x);
  g_free(f->m1);
  kith_recon_free(f->a);
  kith_recon_free(f->b);
  free(f->it);
}

/* msg must be rejected by both sides with no reply and no ids. */
static void assert_rejected(fixture *f, const uint8_t *msg, size_t len) {
  kith_recon *sides[2] = {f->a, f->b};
  for (int s = 0; s < 2; s++) {
    uint8_t *reply = (uint8_t *)"x";
    size_t rlen = 1;
    GByteArray *have = g_byte_array_new(), *need = g_byte_array_new();
    assert_int_equal(
        kith_recon_step(sides[s], msg, len, &reply, &rlen, have, need),
        KITH_ERR_DECODE);
    assert_null(reply);
    assert_int_equal(rlen, 0);
    assert_int_equal(have->len + need->len, 0);
    g_byte_array_unref(have);
    g_byte_array_unref(need);
  }
}

static void assert_packed_rejected(fixture *f, kith_pack *p) {
  uint8_t *msg;
  size_t len;
  assert_int_equal(kith_pack_take(p, &msg, &len), KITH_OK);
  assert_rejected(f, msg, len);
  g_free(msg);
}

/* Accepted by A without any id reported. */
static void assert_packed_accepted(fixture *f, kith_pack *p) {
  uint8_t *msg, *reply = NULL;
  size_t len, rlen = 0;
  GByteArray *have = g_byte_array_new(), *need = g_byte_array_new();
  assert_int_equal(kith_pack_take(p, &msg, &len), KITH_OK);
  assert_int_equal(kith_recon_step(f->a, msg, len, &reply, &rlen, have, need),
                   KITH_OK);
  assert_int_equal(have->len + need->len, 0);
  g_free(reply);
  g_free(msg);
  g_byte_array_unref(have);
  g_byte_array_unref(need);
}

static void truncated_and_oversized_messages_are_rejected(void **state) {
  fixture f;
  fixture_setup(&f);
  for (size_t n = 0; n < f.l2; n++)
    assert_rejected(&f, f.m2, n);
  for (size_t n = 0; n < f.l1; n++)
    assert_rejected(&f, f.m1, n);
  uint8_t *big = g_malloc0(KITH_RECON_MAX_MSG + 1);
  memcpy(big, f.m2, f.l2);
  assert_rejected(&f, big, f.l2 + 1); /* trailing byte */
  assert_rejected(&f, big, KITH_RECON_MAX_MSG + 1);
  g_free(big);
  assert_rejected(&f, NULL, 10);
  fixture_finish(&f);
}

/* [version, first, fields...] with n fields still to come. */
static void begin(kith_pack *p, uint32_t nfields, uint64_t ver, int start) {
  kith_pack_init(p);
  kith_pack_array(p, 2 + nfields);
  kith_pack_uint(p, ver);
  kith_pack_bool(p, start);
}

static void digest_range(kith_pack *p, uint64_t dts) {
  kith_pack_uint(p, 1); /* DIGEST */
  kith_pack_uint(p, dts);
  kith_pack_uint(p, 3);
  kith_pack_uint(p, 12345);
}

static void malformed_fields_are_rejected(void **state) {
  fixture f;
  kith_pack p;
  uint8_t id[32] = {9}, prefix[2] = {4, 0};
  fixture_setup(&f);
  for (int start = 0; start < 2; start++) {
    begin(&p, 0, 1, start); /* unknown version */
    assert_packed_rejected(&f, &p);
    kith_pack_init(&p); /* first is not a boolean */
    kith_pack_array(&p, 2);
    kith_pack_uint(&p, 2);
    kith_pack_uint(&p, start);
    assert_packed_rejected(&f, &p);
    kith_pack_init(&p); /* first is missing */
    kith_pack_array(&p, 1);
    kith_pack_uint(&p, 2);
    assert_packed_rejected(&f, &p);
    begin(&p, 6, 2, start); /* bounds must increase */
    digest_range(&p, T0);
    kith_pack_uint(&p, 0); /* SKIP at the same bound */
    kith_pack_uint(&p, 0);
    assert_packed_rejected(&f, &p);
    begin(&p, 1, 2, start); /* unknown mode */
    kith_pack_uint(&p, 16 | 5);
    assert_packed_rejected(&f, &p);
    begin(&p, 2, 2, start); /* a range after the infinite bound */
    kith_pack_uint(&p, 16);
    kith_pack_uint(&p, 16);
    assert_packed_rejected(&f, &p);
    begin(&p, 3, 2, start); /* prefix with a trailing zero byte */
    kith_pack_uint(&p, 8);
    kith_pack_uint(&p, T0);
    kith_pack_bin(&p, prefix, 2);
    assert_packed_rejected(&f, &p);
    begin(&p, 2, 2, start); /* missing payload */
    kith_pack_uint(&p, 1);
    kith_pack_uint(&p, T0);
    assert_packed_rejected(&f, &p);
    begin(&p, 2, 2, start); /* IDS holding the same id twice */
    kith_pack_uint(&p, 16 | 2);
    kith_pack_array(&p, 2);
    kith_pack_bin(&p, id, 32);
    kith_pack_bin(&p, id, 32);
    assert_packed_rejected(&f, &p);
    begin(&p, 2, 2, start); /* an id of the wrong size */
    kith_pack_uint(&p, 16 | 2);
    kith_pack_array(&p, 1);
    kith_pack_bin(&p, id, 31);
    assert_packed_rejected(&f, &p);
    begin(&p, 3, 2, start); /* DONE with bits set past the items */
    kith_pack_uint(&p, 16 | 3);
    kith_pack_bin(&p, (const uint8_t[1]){0x80}, 1);
    kith_pack_array(&p, 0);
    if (start)
      assert_packed_rejected(&f, &p);
    else /* later: its size is not A's count, so it is left out */
      assert_packed_accepted(&f, &p);
  }
  /* Controls: the same shapes done right are accepted and change nothing. */
  begin(&p, 6, 2, 0);
  digest_range(&p, T0 - 10);
  kith_pack_uint(&p, 0);
  kith_pack_uint(&p, 1);
  assert_packed_accepted(&f, &p);
  begin(&p, 3, 2, 0);
  kith_pack_uint(&p, 16 | 3);
  kith_pack_bin(&p, NULL, 0);
  kith_pack_array(&p, 0);
  assert_packed_accepted(&f, &p);
  /* A bitmap sized for another number of items (some came in since they
   * were listed) is left out, not taken for a malformed message. */
  begin(&p, 3, 2, 0);
  kith_pack_uint(&p, 16 | 3);
  kith_pack_bin(&p, id, 1);
  kith_pack_array(&p, 0);
  assert_packed_accepted(&f, &p);
  fixture_finish(&f);
}

static void messages_out_of_session_are_rejected(void **state) {
  kith_recon *r = kith_recon_new();
  kith_pack p;
  uint8_t *msg, *reply;
  size_t len, rlen;
  GByteArray *have = g_byte_array_new(), *need = g_byte_array_new();
  begin(&p, 1, 2, 0); /* no key, but no reconciliation was started */
  kith_pack_uint(&p, 16);
  assert_int_equal(kith_pack_take(&p, &msg, &len), KITH_OK);
  assert_int_equal(kith_recon_step(r, msg, len, &reply, &rlen, have, need),
                   KITH_ERR_DECODE);
  g_free(msg);
  begin(&p, 3, 2, 1); /* DONE cannot start one */
  kith_pack_uint(&p, 16 | 3);
  kith_pack_bin(&p, NULL, 0);
  kith_pack_array(&p, 0);
  assert_int_equal(kith_pack_take(&p, &msg, &len), KITH_OK);
  assert_int_equal(kith_recon_step(r, msg, len, &reply, &rlen, have, need),
                   KITH_ERR_DECODE);
  g_free(msg);
  g_byte_array_unref(have);
  g_byte_array_unref(need);
  kith_recon_free(r);
}

/* Random bytes and mutated valid messages: never a crash, and what is
 * rejected changes nothing (checked by fixture_finish). */
/* The fingerprint is defined on the wire (docs/protocol.md 11.7.6), not
 * by the host: the count and the sum mod 2^32 of the ids' first 4 bytes
 * read as little-endian integers. Known answer: id 20..3f gives
 * 0x23222120 (its 8-byte word 0x2726252423222120). */
static uint8_t *one_digest(uint64_t sum, size_t *len) {
  uint8_t *msg;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 5);
  kith_pack_uint(&p, 2);
  kith_pack_bool(&p, 1);
  kith_pack_uint(&p, 1 | 16); /* DIGEST | INF */
  kith_pack_uint(&p, 1);
  kith_pack_uint(&p, sum);
  assert_int_equal(kith_pack_take(&p, &msg, len), KITH_OK);
  return msg;
}

static void fingerprint_is_a_little_endian_sum_of_ids(void **state) {
  (void)state;
  static const uint64_t sums[2] = {0x23222120,  /* little-endian */
                                   0x20212223}; /* big-endian */
  uint8_t id[32];
  for (int i = 0; i < 32; i++)
    id[i] = (uint8_t)(0x20 + i);
  assert_true(kith_recon_word(id) == 0x2726252423222120ull);
  for (int k = 0; k < 2; k++) {
    kith_recon *b = kith_recon_new();
    assert_int_equal(kith_recon_add(b, T0, id), KITH_OK);
    size_t len, rlen = 0;
    uint8_t *msg = one_digest(sums[k], &len), *reply = NULL;
    GByteArray *have = g_byte_array_new(), *need = g_byte_array_new();
    assert_int_equal(kith_recon_step(b, msg, len, &reply, &rlen, have, need),
                     KITH_OK);
    if (k == 0) /* equal fingerprints: settled, nothing to say */
      assert_null(reply);
    else /* not the fingerprint: B answers with its id */
      assert_non_null(reply);
    assert_int_equal(have->len + need->len, 0);
    g_free(reply);
    g_free(msg);
    g_byte_array_unref(have);
    g_byte_array_unref(need);
    kith_recon_free(b);
  }
}

static void random_input_never_crashes(void **state) {
  fixture f, sink;
  uint64_t s = 77;
  fixture_setup(&f);
  fixture_setup(&sink); /* takes what decodes, so may change */
  GByteArray *have = g_byte_array_new(), *need = g_byte_array_new();
  for (int i = 0; i < 3000; i++) {
    const uint8_t *src = (i & 1) ? f.m2 : f.m1;
    size_t len = (i & 1) ? f.l2 : f.l1;
    uint8_t buf[512];
    if (i % 3 == 0) {
      len = splitmix64(&s) % sizeof buf;
      for (size_t k = 0; k < len; k++)
        buf[k] = (uint8_t)splitmix64(&s);
    } else {
      len = MIN(len, sizeof buf);
      memcpy(buf, src, len);
      for (int k = 0; k < 3 && len > 0; k++)
        buf[splitmix64(&s) % len] ^= (uint8_t)(1u << (splitmix64(&s) % 8));
    }
    uint8_t *reply = NULL;
    size_t rlen = 0;
    kith_recon *probe = (i & 2) ? sink.a : sink.b;
    kith_err err = kith_recon_step(probe, buf, len, &reply, &rlen, have, need);
    assert_true(err == KITH_OK || err == KITH_ERR_DECODE);
    assert_true(rlen <= KITH_RECON_MAX_MSG);
    g_free(reply);
    /* Only what does not decode at all may reach the fixture's sides. */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int decodes = kith_codec_unpack(buf, len, &u) == KITH_OK;
    msgpack_unpacked_destroy(&u);
    if (!decodes)
      assert_rejected(&f, buf, len);
  }
  g_byte_array_unref(have);
  g_byte_array_unref(need);
  fixture_finish(&f);
  run_clear(&sink.x);
  g_free(sink.m1);
  g_free(sink.m2);
  kith_recon_free(sink.a);
  kith_recon_free(sink.b);
  free(sink.it);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(equal_sets_take_one_round_and_report_nothing),
      cmocka_unit_test(both_empty_sets_agree_at_once),
      cmocka_unit_test(small_sets_of_every_size_reconcile),
      cmocka_unit_test(one_empty_side_gets_everything),
      cmocka_unit_test(disjoint_sets_exchange_all_ids),
      cmocka_unit_test(nearly_equal_sets_find_exactly_the_difference),
      cmocka_unit_test(equal_timestamps_are_split_by_id_prefix),
      cmocka_unit_test(large_sets_meet_the_targets),
      cmocka_unit_test(messages_respect_the_size_cap),
      cmocka_unit_test(duplicates_are_ignored),
      cmocka_unit_test(a_new_reconciliation_starts_afresh),
      cmocka_unit_test(truncated_and_oversized_messages_are_rejected),
      cmocka_unit_test(malformed_fields_are_rejected),
      cmocka_unit_test(messages_out_of_session_are_rejected),
      cmocka_unit_test(random_input_never_crashes),
      cmocka_unit_test(fingerprint_is_a_little_endian_sum_of_ids),
  };
  int failed = cmocka_run_group_tests_name("reconcile", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
