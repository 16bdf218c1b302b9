/* libFuzzer target for core/reconcile.c: kith_recon_step on hostile bytes,
 * both with no reconciliation under way and in the middle of one, must
 * never crash or leak; what it rejects must change nothing (the
 * reconciliation then still finishes exactly), and its replies must stay
 * under the size cap. */
#include <glib.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/reconcile.h"

#define N_ITEMS 200

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Items 0..N-1; A lacks the multiples of 7, B those of 11. */
static void fill(kith_recon *r, int skip) {
  for (unsigned i = 1; i <= N_ITEMS; i++) {
    uint8_t id[32];
    if (i % (unsigned)skip == 0)
      continue;
    crypto_generichash(id, sizeof id, (const uint8_t *)&i, sizeof i, NULL, 0);
    if (kith_recon_add(r, 1000 + i / 3, id) != KITH_OK)
      abort();
  }
}

/* Feeds data to r; aborts on anything but OK or DECODE. */
static kith_err feed(kith_recon *r, const uint8_t *data, size_t size) {
  uint8_t *reply = NULL;
  size_t rlen = 0;
  GByteArray *have = g_byte_array_new(), *need = g_byte_array_new();
  kith_err err = kith_recon_step(r, data, size, &reply, &rlen, have, need);
  if ((err != KITH_OK && err != KITH_ERR_DECODE) || rlen > KITH_RECON_MAX_MSG ||
      (err != KITH_OK && (reply || have->len || need->len)))
    abort();
  g_free(reply);
  g_byte_array_unref(have);
  g_byte_array_unref(need);
  return err;
}

/* Runs the reconciliation from msg (owned, for side turn) to its end;
 * returns how many ids were reported in all. */
static size_t finish(kith_recon *a, kith_recon *b, int turn, uint8_t *msg,
                     size_t len) {
  kith_recon *side[2] = {a, b};
  GByteArray *ids = g_byte_array_new();
  for (int n = 0; msg != NULL && n < 100; n++, turn ^= 1) {
    uint8_t *reply = NULL;
    size_t rlen = 0;
    if (kith_recon_step(side[turn], msg, len, &reply, &rlen, ids, ids))
      abort();
    g_free(msg);
    msg = reply;
    len = rlen;
  }
  g_free(msg);
  size_t n = ids->len / 32;
  g_byte_array_unref(ids);
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static size_t expected;
  if (sodium_init() < 0)
    abort();
  kith_recon *a = kith_recon_new(), *b = kith_recon_new();
  fill(a, 7);
  fill(b, 11);
  (void)feed(a, data, size); /* no reconciliation under way */
  uint8_t *m1, *m2 = NULL;
  size_t l1, l2 = 0;
  GByteArray *ids = g_byte_array_new();
  if (kith_recon_initiate(a, &m1, &l1) != KITH_OK ||
      kith_recon_step(b, m1, l1, &m2, &l2, ids, ids) != KITH_OK)
    abort();
  g_free(m1);
  kith_err ea = feed(a, data, size), eb = feed(b, data, size);
  if (ea == KITH_ERR_DECODE && eb == KITH_ERR_DECODE) {
    /* 2 * (items of A only + items of B only): each side reports both. */
    size_t n = ids->len / 32 + finish(a, b, 0, m2, l2);
    if (expected == 0)
      expected = 2 * (N_ITEMS / 11 - N_ITEMS / 77 + N_ITEMS / 7 - N_ITEMS / 77);
    if (n != expected)
      abort();
  } else {
    g_free(m2);
  }
  g_byte_array_unref(ids);
  kith_recon_free(a);
  kith_recon_free(b);
  return 0;
}
