/* kith: the reconciliation index read from the store (recon_index.h). */
#include "recon_index.h"
#include "store.h"

#include <string.h>

typedef struct store_rd {
  kith_store *s;
  uint8_t gid[32];
} store_rd;

static void put_item(void *ctx, uint64_t ts, const uint8_t id[32]) {
  kith_recon_item it = {.ts = ts};
  memcpy(it.id, id, 32);
  g_array_append_val((GArray *)ctx, it);
}

static kith_err rd_scan(void *ctx, uint64_t ts, const uint8_t id[32],
                        size_t max, GArray *out) {
  store_rd *r = ctx;
  return kith_store_scan_ids(r->s, r->gid, ts, id, max, put_item, out);
}

static kith_err rd_by_word(void *ctx, uint64_t w, size_t max, GArray *out) {
  store_rd *r = ctx;
  uint8_t prefix[4];
  for (int i = 0; i < 4; i++)
    prefix[i] = (uint8_t)(w >> (8 * i));
  return kith_store_ids_by_prefix(r->s, r->gid, prefix, sizeof prefix, max,
                                  put_item, out);
}

static kith_err rd_get(void *ctx, const uint8_t id[32], GArray *out) {
  store_rd *r = ctx;
  return kith_store_has_id(r->s, r->gid, id, put_item, out);
}

kith_recon_index *kith_recon_index_on_store(struct kith_store *s,
                                            const uint8_t gid[32]) {
  store_rd *r = g_new0(store_rd, 1);
  r->s = s;
  memcpy(r->gid, gid, 32);
  kith_recon_index *x = kith_recon_index_new(
      &(kith_recon_reader){r, rd_scan, rd_by_word, rd_get});
  kith_recon_index_own(x, r);
  return x;
}
