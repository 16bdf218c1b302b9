/* Known-answer groups (tests/vectors/groups/NAME.kgv, written by
 * tests/vectors/gen_group_vectors.c with the engine of commit 12e2c4d): a
 * replica with the viewer's identity that receives every event, in the
 * order made or shuffled, derives the stored state hash. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glib.h>
#include <sodium.h>
#include <string.h>

#include "core/codec.h"
#include "core/group.h"

/* The receiver's clock: after every event of the vectors. */
#define RECEIVER_NOW (1700000000000ull + 365ull * 24 * 3600 * 1000)

typedef struct vec {
  kith_ident viewer;
  uint8_t hash[32];
  GPtrArray *raws; /* GBytes* */
  uint8_t gid[32];
} vec;

static void vec_load(const char *name, vec *v) {
  char *path = g_strdup_printf("%s/groups/%s.kgv", KITH_VECTORS_DIR, name);
  gchar *data = NULL;
  gsize len = 0;
  assert_true(g_file_get_contents(path, &data, &len, NULL));
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t off = 0;
  assert_int_equal(msgpack_unpack_next(&u, data, len, &off),
                   MSGPACK_UNPACK_SUCCESS);
  assert_int_equal(off, len);
  const msgpack_object *it;
  const uint8_t *p;
  size_t n;
  uint8_t seed[32];
  assert_int_equal(kith_codec_array(&u.data, 5, &it), KITH_OK);
  assert_int_equal(kith_codec_bin_fixed(&it[1], seed, 32), KITH_OK);
  assert_int_equal(kith_codec_bin_fixed(&it[2], v->hash, 32), KITH_OK);
  assert_int_equal(kith_ident_from_seed(&v->viewer, seed), KITH_OK);
  assert_int_equal(it[4].type, MSGPACK_OBJECT_ARRAY);
  assert_int_equal(it[4].via.array.size, it[3].via.u64);
  v->raws = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  for (uint32_t i = 0; i < it[4].via.array.size; i++) {
    assert_int_equal(
        kith_codec_bin(&it[4].via.array.ptr[i], KITH_EVENT_MAX, &p, &n),
        KITH_OK);
    g_ptr_array_add(v->raws, g_bytes_new(p, n));
  }
  kith_event ev;
  p = g_bytes_get_data(v->raws->pdata[0], &n);
  assert_int_equal(kith_event_decode(p, n, NULL, &ev), KITH_OK);
  memcpy(v->gid, ev.id, 32); /* the first event is the create */
  kith_event_clear(&ev);
  msgpack_unpacked_destroy(&u);
  g_free(data);
  g_free(path);
}

static void vec_clear(vec *v) {
  kith_ident_clear(&v->viewer);
  g_ptr_array_unref(v->raws);
}

/* Delivers the events in the given order; returns the state hash. */
static void replay(const vec *v, GPtrArray *order, uint8_t out[32]) {
  kith_group *g = kith_group_new(v->gid, &v->viewer);
  GPtrArray *acc =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
  for (guint i = 0; i < order->len; i++) {
    size_t len;
    const uint8_t *p = g_bytes_get_data(order->pdata[i], &len);
    kith_err rc = kith_group_receive(g, p, len, RECEIVER_NOW, acc);
    assert_true(rc == KITH_OK || rc == KITH_ERR_MISSING ||
                rc == KITH_ERR_DUPLICATE);
    g_ptr_array_set_size(acc, 0);
  }
  assert_int_equal(kith_group_n_held(g), 0);
  assert_int_equal(kith_group_n_events(g), v->raws->len);
  kith_group_state_hash(g, out);
  g_ptr_array_unref(acc);
  kith_group_free(g);
}

/* Shuffles order; window > 0 moves each event at most that far (a full
 * shuffle of a long log would overflow any bound on held events). */
static void shuffle(GRand *rng, GPtrArray *order, guint window) {
  for (guint i = order->len; i > 1; i--) {
    guint lo = window && i > window ? i - window : 0;
    guint j = (guint)g_rand_int_range(rng, (gint32)lo, (gint32)i);
    gpointer t = order->pdata[i - 1];
    order->pdata[i - 1] = order->pdata[j];
    order->pdata[j] = t;
  }
}

static void check_vector(const char *name, int shuffles, guint window) {
  vec v;
  uint8_t h[32];
  vec_load(name, &v);
  replay(&v, v.raws, h);
  assert_memory_equal(h, v.hash, 32);
  GRand *rng = g_rand_new_with_seed(7);
  for (int s = 0; s < shuffles; s++) {
    GPtrArray *order = g_ptr_array_copy(v.raws, NULL, NULL);
    g_ptr_array_set_free_func(order, NULL); /* the copy borrows */
    shuffle(rng, order, window);
    replay(&v, order, h);
    assert_memory_equal(h, v.hash, 32);
    g_ptr_array_free(order, TRUE);
  }
  g_rand_free(rng);
  vec_clear(&v);
}

static void basic_group_keeps_its_state_hash(void **state) {
  check_vector("basic", 20, 0);
}

static void joined_group_keeps_its_state_hash(void **state) {
  check_vector("joined", 20, 0);
}

static void concurrent_group_keeps_its_state_hash(void **state) {
  check_vector("concurrent", 20, 0);
}

static void big_concurrent_group_keeps_its_state_hash(void **state) {
  check_vector("big", 2, 200);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(basic_group_keeps_its_state_hash),
      cmocka_unit_test(joined_group_keeps_its_state_hash),
      cmocka_unit_test(concurrent_group_keeps_its_state_hash),
      cmocka_unit_test(big_concurrent_group_keeps_its_state_hash),
  };
  int failed = cmocka_run_group_tests_name("group_vectors", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
