/* Unit tests for net/crypt: two sessions talk through in-memory byte
 * buffers, with their records sealed and opened on the crypto worker.
 * Fixed identity seeds and frame contents; the main context is iterated
 * (blocking on the worker's results) a bounded number of times. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <string.h>

#include <glib.h>

#include "core/codec.h"
#include "core/event.h"
#include "net/crypt.h"
#include "net/node_int.h"

#define ROUNDS_MAX 100000 /* main-context iterations a test may take */

typedef struct end {
  kith_session *s;
  kith_crypt *c;
  GByteArray *wire; /* records on their way to the other end */
  GPtrArray *got;   /* frames received, in order */
  GArray *marks;    /* kith_crypt_mark of each, zero if unchecked */
  size_t checked;   /* frames that came with marks */
  kith_err err;
  int callbacks;
} end;

typedef struct fixture {
  kith_ident ia, ib;
  GMainContext *ctx;
  end a, b;
} fixture;

static void on_out(void *ud, GByteArray *records) {
  end *e = ud;
  e->callbacks++;
  g_byte_array_append(e->wire, records->data, records->len);
  g_byte_array_unref(records);
}

static void on_frames(void *ud, GPtrArray *frames, const kith_crypt_mark *marks,
                      kith_err err) {
  end *e = ud;
  e->callbacks++;
  for (guint i = 0; i < frames->len; i++) {
    g_ptr_array_add(e->got, g_bytes_ref(frames->pdata[i]));
    kith_crypt_mark m = {0};
    if (marks)
      m = marks[i];
    g_array_append_val(e->marks, m);
    e->checked += marks != NULL;
  }
  if (err != KITH_OK)
    e->err = err;
}

static const kith_crypt_callbacks cbs = {.on_out = on_out,
                                         .on_frames = on_frames};

static void ident_from_byte(kith_ident *id, uint8_t b) {
  uint8_t seed[KITH_SEED_LEN];
  memset(seed, b, sizeof seed);
  assert_int_equal(kith_ident_from_seed(id, seed), KITH_OK);
}

static void end_init(fixture *f, end *e, const kith_ident *me,
                     const kith_ident *peer, int initiator) {
  e->s = kith_session_new(me, peer->pk, initiator);
  assert_non_null(e->s);
  e->c = kith_crypt_new(f->ctx, e->s, &cbs, e);
  e->wire = g_byte_array_new();
  e->got = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  e->marks = g_array_new(FALSE, TRUE, sizeof(kith_crypt_mark));
}

static void end_clear(end *e) {
  kith_crypt_free(e->c);
  kith_session_free(e->s);
  g_byte_array_unref(e->wire);
  g_ptr_array_unref(e->got);
  g_array_unref(e->marks);
}

/* Moves what `from` wrote to `to` (in 1000-byte pieces, as a link would). */
static void deliver(end *from, end *to) {
  GByteArray *w = from->wire;
  from->wire = g_byte_array_new();
  for (guint off = 0; off < w->len; off += 1000) {
    GPtrArray *frames =
        g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    kith_err err = kith_crypt_recv(to->c, w->data + off,
                                   MIN(1000u, w->len - off), to->wire, frames);
    on_frames(to, frames, NULL, err);
    to->callbacks--; /* not a callback: the result of the call */
    g_ptr_array_unref(frames);
  }
  g_byte_array_unref(w);
}

static int setup(void **state) {
  fixture *f = g_new0(fixture, 1);
  ident_from_byte(&f->ia, 1);
  ident_from_byte(&f->ib, 2);
  f->ctx = g_main_context_new();
  end_init(f, &f->a, &f->ia, &f->ib, 1);
  end_init(f, &f->b, &f->ib, &f->ia, 0);
  /* the handshake: HS1, HS2 and the confirmation, done at once */
  assert_int_equal(kith_session_start(f->a.s, f->a.wire), KITH_OK);
  assert_int_equal(kith_session_start(f->b.s, f->b.wire), KITH_OK);
  deliver(&f->a, &f->b);
  deliver(&f->b, &f->a);
  deliver(&f->a, &f->b);
  assert_true(kith_session_is_established(f->a.s));
  assert_true(kith_session_is_established(f->b.s));
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  end_clear(&f->a);
  end_clear(&f->b);
  for (int i = 0; i < 1000 && g_main_context_pending(f->ctx); i++)
    g_main_context_iteration(f->ctx, FALSE); /* jobs of freed links */
  g_main_context_unref(f->ctx);
  kith_ident_clear(&f->ia);
  kith_ident_clear(&f->ib);
  g_free(f);
  return 0;
}

/* Frame i: its length and bytes are a function of i. */
static size_t frame_len(size_t i) {
  return i % 7 == 0 ? 16 * 1024 + i : 1 + (i * 37) % 3000;
}

static void fill(uint8_t *buf, size_t len, size_t i) {
  for (size_t k = 0; k < len; k++)
    buf[k] = (uint8_t)(i * 31 + k);
}

/* a sends n frames (sealed at once or on the worker) to b, which opens
 * them (at once or on the worker); until every frame is in. */
static void send_frames(fixture *f, size_t n) {
  uint8_t *buf = g_malloc(32 * 1024);
  for (size_t i = 0; i < n; i++) {
    fill(buf, frame_len(i), i);
    assert_int_equal(kith_crypt_seal(f->a.c, buf, frame_len(i), f->a.wire),
                     KITH_OK);
  }
  g_free(buf);
  for (int r = 0; r < ROUNDS_MAX && f->b.got->len < n && f->b.err == KITH_OK;
       r++) {
    deliver(&f->a, &f->b);
    if (f->b.got->len < n)
      g_main_context_iteration(f->ctx, TRUE);
  }
}

static void bulk_and_chat_arrive_whole_and_in_order(void **state) {
  fixture *f = *state;
  const size_t n = 700;
  send_frames(f, n);
  assert_int_equal(f->b.err, KITH_OK);
  assert_int_equal(f->b.got->len, n);
  uint8_t *want = g_malloc(32 * 1024);
  for (size_t i = 0; i < n; i++) {
    gsize len;
    const uint8_t *got = g_bytes_get_data(f->b.got->pdata[i], &len);
    assert_int_equal(len, frame_len(i));
    fill(want, len, i);
    assert_memory_equal(got, want, len);
  }
  g_free(want);
  assert_true(f->a.callbacks > 0); /* the worker sealed some */
  assert_true(f->b.callbacks > 0); /* and opened some */
  assert_int_equal(kith_crypt_unsent(f->a.c), 0);
}

#define BIG 20000

/* a seals count frames of BIG bytes (queued for the worker). */
static void seal_big(fixture *f, uint8_t byte, int count) {
  uint8_t big[BIG];
  memset(big, byte, sizeof big);
  for (int i = 0; i < count; i++)
    assert_int_equal(kith_crypt_seal(f->a.c, big, sizeof big, f->a.wire),
                     KITH_OK);
}

/* Delivers a's records to b until b has n frames or an error. */
static void receive_until(fixture *f, guint n) {
  for (int r = 0; r < ROUNDS_MAX && f->b.err == KITH_OK && f->b.got->len < n;
       r++) {
    deliver(&f->a, &f->b);
    if (f->b.err == KITH_OK && f->b.got->len < n)
      g_main_context_iteration(f->ctx, TRUE);
  }
}

static void sync_tx_flushes_everything_sealed_before(void **state) {
  fixture *f = *state;
  seal_big(f, 7, 20);
  kith_crypt_sync_tx(f->a.c);
  assert_int_equal(kith_crypt_unsent(f->a.c), 0);
  /* a small frame now goes out at once, after all of them */
  uint8_t last[3] = {1, 2, 3};
  assert_int_equal(kith_crypt_seal(f->a.c, last, 3, f->a.wire), KITH_OK);
  receive_until(f, 21);
  assert_int_equal(f->b.got->len, 21);
  assert_int_equal(g_bytes_get_size(f->b.got->pdata[20]), 3);
}

static void tampered_bulk_record_kills_the_session(void **state) {
  fixture *f = *state;
  seal_big(f, 9, 8);
  kith_crypt_sync_tx(f->a.c);
  f->a.wire->data[5 * (4 + BIG + 16) + 100] ^= 1; /* the 6th */
  receive_until(f, 8);
  assert_int_equal(f->b.err, KITH_ERR_CRYPTO);
  assert_int_equal(f->b.got->len, 5); /* the five before it */
  assert_false(kith_session_is_established(f->b.s));
}

static void freed_link_gets_no_callback(void **state) {
  fixture *f = *state;
  int before = f->a.callbacks;
  seal_big(f, 1, 10);
  kith_crypt_free(f->a.c); /* a job is in flight */
  f->a.c = NULL;
  for (int i = 0; i < 50; i++)
    g_main_context_iteration(f->ctx, FALSE);
  assert_int_equal(f->a.callbacks, before);
}

/* A check for the tests: a frame whose first byte is even is "verified",
 * all but that byte, for the key the job started with. */
static int check_jobs; /* check_begin calls not freed yet */

static void *check_begin(void *ud) {
  (void)ud;
  check_jobs++;
  return g_memdup2("K", 1);
}

static void check(const void *ctx, const uint8_t *frame, size_t len,
                  kith_crypt_mark *m) {
  if (frame[0] % 2 == 0) {
    m->ok = 1;
    m->key[0] = *(const uint8_t *)ctx;
    m->at = 1;
    m->len = (uint32_t)len - 1;
  }
}

static void check_free(void *ctx) {
  check_jobs--;
  g_free(ctx);
}

static const kith_crypt_callbacks checking_cbs = {.on_out = on_out,
                                                  .on_frames = on_frames,
                                                  .check_begin = check_begin,
                                                  .check = check,
                                                  .check_free = check_free};

static void bulk_frames_are_checked_on_the_worker(void **state) {
  fixture *f = *state;
  const size_t n = 700;
  kith_crypt_free(f->b.c); /* b again, with the check */
  f->b.c = kith_crypt_new(f->ctx, f->b.s, &checking_cbs, &f->b);
  send_frames(f, n);
  assert_int_equal(f->b.err, KITH_OK);
  assert_int_equal(f->b.got->len, n);
  assert_true(f->b.checked > 0); /* bulk: they came from the worker */
  size_t marked = 0;
  for (size_t i = 0; i < n; i++) {
    gsize len;
    const uint8_t *got = g_bytes_get_data(f->b.got->pdata[i], &len);
    const kith_crypt_mark *m = &g_array_index(f->b.marks, kith_crypt_mark, i);
    if (!m->ok)
      continue; /* opened at once, or odd */
    marked++;
    assert_int_equal(got[0] % 2, 0); /* the mark is this frame's */
    assert_int_equal(m->key[0], 'K');
    assert_int_equal(m->at, 1);
    assert_int_equal(m->len, len - 1);
  }
  assert_true(marked > 0);
  for (int i = 0; i < 1000 && check_jobs > 0; i++)
    g_main_context_iteration(f->ctx, FALSE); /* jobs' last sources */
  assert_int_equal(check_jobs, 0);
}

/* A GOSSIP frame (the group's 8-byte tag) carrying a PAYLOAD engine frame
 * with raw as its payload. */
static uint8_t *gossip_payload_frame(const uint8_t gid[32], const uint8_t *raw,
                                     size_t rlen, size_t *len) {
  kith_pack pk;
  uint8_t *engine, *frame;
  size_t elen;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 5);
  kith_pack_uint(&pk, KITH_GF_PAYLOAD);
  kith_pack_uint(&pk, 1);
  kith_pack_uint(&pk, 1);
  kith_pack_uint(&pk, 1);
  kith_pack_bin(&pk, raw, rlen);
  assert_int_equal(kith_pack_take(&pk, &engine, &elen), KITH_OK);
  kith_pack_init(&pk);
  kith_pack_array(&pk, 3);
  kith_pack_uint(&pk, FRAME_GOSSIP);
  kith_pack_bin(&pk, gid, KITH_WIRE_GROUP_TAG_LEN);
  kith_pack_bin(&pk, engine, elen);
  assert_int_equal(kith_pack_take(&pk, &frame, len), KITH_OK);
  g_free(engine);
  return frame;
}

static kith_crypt_mark check_with(const GByteArray *gids, const uint8_t *frame,
                                  size_t len) {
  kith_crypt_mark m = {0};
  gossip_check_frame(gids, frame, len, &m);
  return m;
}

/* The node's check (net/gossip.c), as the worker runs it: it marks the
 * payload of a PAYLOAD frame whose signature holds, for the group the tag
 * names, and nothing else. */
static void node_check_marks_only_a_verified_payload(void **state) {
  fixture *f = *state;
  uint8_t gid[32], other[32];
  kith_event ev = {0};
  size_t len;
  memset(gid, 0x77, 32);
  memset(other, 0x66, 32);
  ev.version = KITH_EVENT_V1;
  ev.kind = KITH_EV_MESSAGE;
  ev.ts_ms = 1700000000000ull;
  memcpy(ev.group_id, gid, 32);
  ev.n_parents = 1;
  memset(ev.parents[0], 0xf0, 32);
  ev.depth = 5;
  assert_int_equal(kith_event_build(&ev, &f->ia, (const uint8_t *)"hi", 2),
                   KITH_OK);
  uint8_t *frame = gossip_payload_frame(gid, ev.raw, ev.raw_len, &len);
  GByteArray *gids = g_byte_array_new();
  g_byte_array_append(gids, other, 32);
  g_byte_array_append(gids, gid, 32);

  kith_crypt_mark m = check_with(gids, frame, len);
  assert_int_equal(m.ok, 1);
  assert_memory_equal(m.key, gid, 32);
  assert_int_equal(m.at + m.len, len);
  assert_int_equal(m.len, ev.raw_len);
  assert_memory_equal(frame + m.at, ev.raw, ev.raw_len);

  frame[len - 1] ^= 1; /* the signature's last byte: it fails */
  assert_int_equal(check_with(gids, frame, len).ok, 0);
  frame[len - 1] ^= 1;
  assert_int_equal(check_with(gids, frame, len - 1).ok, 0); /* cut short */

  g_byte_array_set_size(gids, 32); /* the node lacks the group */
  assert_int_equal(check_with(gids, frame, len).ok, 0);
  g_byte_array_append(gids, gid, 32);
  g_byte_array_append(gids, gid, 32); /* two groups with that tag */
  assert_int_equal(check_with(gids, frame, len).ok, 0);

  uint8_t ping[] = {0x92, 0x01, 0x05}; /* [1, 5]: no payload */
  assert_int_equal(check_with(gids, ping, sizeof ping).ok, 0);
  g_free(frame);
  g_byte_array_unref(gids);
  kith_event_clear(&ev);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(bulk_and_chat_arrive_whole_and_in_order,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(sync_tx_flushes_everything_sealed_before,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(tampered_bulk_record_kills_the_session,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(freed_link_gets_no_callback, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(bulk_frames_are_checked_on_the_worker,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(node_check_marks_only_a_verified_payload,
                                      setup, teardown),
  };
  int failed = cmocka_run_group_tests_name("crypt", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
