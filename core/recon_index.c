/* kith: the reconciliation set of a stored group in buckets (see
 * recon_index.h). */
#include "recon_index.h"

#include <string.h>

/* Rows asked of the reader at once when a bucket is read. */
#define SCAN_CHUNK 1024
/* Candidates for one word (ids sharing their first 4 bytes). */
#define WORD_CANDIDATES 4

typedef kith_recon_item item;

typedef struct bucket {
  item lo;      /* its first item (the first bucket: the bottom, all zero) */
  uint64_t sum; /* of its items' fingerprint words */
  uint32_t n;
  uint8_t stale; /* items were added: read it again before use */
} bucket;

/* A bucket's rows, loaded. */
typedef struct slot {
  int valid;
  size_t k;
  item *it;
  uint64_t *psum; /* psum[i]: sum of the words of it[0..i) */
  size_t n;
  uint64_t used;
} slot;

struct kith_recon_index {
  kith_recon_reader rd;
  GArray *b;   /* of bucket, by lower bound */
  item cursor; /* while building: the lower bound of the next bucket */
  int built;
  int stale;    /* some bucket is stale */
  uint64_t *cn; /* cn[k]: items in the buckets before k (k <= buckets) */
  uint64_t *cs; /* the same for their sums */
  size_t ccap;
  int cum_ok;
  slot cache[KITH_RECON_CACHE];
  uint64_t clock;
  void *owned; /* freed with the index */
};

static int item_cmp(const item *a, const item *b) {
  if (a->ts != b->ts)
    return a->ts < b->ts ? -1 : 1;
  return memcmp(a->id, b->id, 32);
}

static bucket *bk(const kith_recon_index *x, size_t k) {
  return &g_array_index(x->b, bucket, k);
}

static size_t nbuckets(const kith_recon_index *x) {
  return x->b->len;
}

/* The upper bound of bucket k (NULL: none). */
static const item *next_lo(const kith_recon_index *x, size_t k) {
  if (k + 1 < nbuckets(x))
    return &bk(x, k + 1)->lo;
  return x->built ? NULL : &x->cursor;
}

/* The bucket whose range holds key: the last one starting at or below. */
static size_t bucket_of_key(const kith_recon_index *x, const item *key) {
  size_t lo = 0, hi = nbuckets(x);
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (item_cmp(&bk(x, mid)->lo, key) <= 0)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

static void cache_clear(kith_recon_index *x) {
  for (size_t i = 0; i < KITH_RECON_CACHE; i++) {
    slot *s = &x->cache[i];
    g_free(s->it);
    g_free(s->psum);
    *s = (slot){0};
  }
}

static void cache_drop(kith_recon_index *x, size_t k) {
  for (size_t i = 0; i < KITH_RECON_CACHE; i++)
    if (x->cache[i].valid && x->cache[i].k == k) {
      g_free(x->cache[i].it);
      g_free(x->cache[i].psum);
      x->cache[i] = (slot){0};
    }
}

/* Every item in [lo, hi) (hi NULL: to the end), appended to out. */
static kith_err read_range(kith_recon_index *x, const item *lo, const item *hi,
                           GArray *out) {
  item from = *lo;
  int skip_first = 0; /* from is the last item already taken */
  for (;;) {
    GArray *chunk = g_array_new(FALSE, FALSE, sizeof(item));
    kith_err err = x->rd.scan(x->rd.ctx, from.ts, from.id, SCAN_CHUNK, chunk);
    size_t got = chunk->len, took = 0;
    int end = err != KITH_OK || got < SCAN_CHUNK;
    for (size_t i = 0; err == KITH_OK && i < got; i++) {
      const item *it = &g_array_index(chunk, item, i);
      if (item_cmp(it, &from) < 0 || (skip_first && item_cmp(it, &from) == 0))
        continue;
      if (hi != NULL && item_cmp(it, hi) >= 0) {
        end = 1;
        break;
      }
      g_array_append_val(out, *it);
      took++;
    }
    if (took > 0)
      from = g_array_index(out, item, out->len - 1);
    skip_first = 1;
    g_array_unref(chunk);
    if (err != KITH_OK)
      return err;
    if (end || took == 0)
      return KITH_OK;
  }
}

static uint64_t sum_words(const item *it, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i < n; i++)
    s += kith_recon_word(it[i].id);
  return s;
}

/* ---- building ---- */

kith_recon_index *kith_recon_index_new(const kith_recon_reader *rd) {
  kith_recon_index *x = g_new0(kith_recon_index, 1);
  x->rd = *rd;
  x->b = g_array_new(FALSE, FALSE, sizeof(bucket));
  return x;
}

void kith_recon_index_free(kith_recon_index *x) {
  if (x == NULL)
    return;
  cache_clear(x);
  g_array_unref(x->b);
  g_free(x->cn);
  g_free(x->cs);
  g_free(x->owned);
  g_free(x);
}

void kith_recon_index_own(kith_recon_index *x, void *p) {
  x->owned = p;
}

int kith_recon_index_ready(const kith_recon_index *x) {
  return x->built;
}

kith_err kith_recon_index_build(kith_recon_index *x, size_t max_buckets,
                                int *done) {
  kith_err err = KITH_OK;
  for (size_t j = 0; !x->built && j < max_buckets && err == KITH_OK; j++) {
    GArray *got = g_array_new(FALSE, FALSE, sizeof(item));
    bucket b = {.lo = x->cursor};
    err = x->rd.scan(x->rd.ctx, x->cursor.ts, x->cursor.id,
                     KITH_RECON_BUCKET + 1, got);
    if (err == KITH_OK) {
      b.n = (uint32_t)MIN(got->len, (guint)KITH_RECON_BUCKET);
      b.sum = sum_words((const item *)got->data, b.n);
      if (b.n > 0 || nbuckets(x) == 0)
        g_array_append_val(x->b, b);
      if (got->len > KITH_RECON_BUCKET)
        x->cursor = g_array_index(got, item, KITH_RECON_BUCKET);
      else
        x->built = 1;
      x->cum_ok = 0;
    }
    g_array_unref(got);
  }
  if (done)
    *done = x->built;
  return err;
}

void kith_recon_index_add(kith_recon_index *x, uint64_t ts,
                          const uint8_t id[32]) {
  item key = {.ts = ts};
  memcpy(key.id, id, 32);
  if (nbuckets(x) == 0 || (!x->built && item_cmp(&key, &x->cursor) >= 0))
    return; /* the build reads it when it gets there */
  size_t k = bucket_of_key(x, &key);
  if (!bk(x, k)->stale) {
    bk(x, k)->stale = 1;
    x->stale = 1;
    cache_drop(x, k);
  }
}

/* Reads stale bucket k again; splits it if it grew past twice the bucket
 * size, drops it if it is empty (the first one stays). */
static kith_err refresh(kith_recon_index *x, size_t k) {
  GArray *got = g_array_new(FALSE, FALSE, sizeof(item));
  item lo = bk(x, k)->lo;
  kith_err err = read_range(x, &lo, next_lo(x, k), got);
  const item *it = (const item *)got->data;
  size_t n = got->len;
  if (err == KITH_OK) {
    x->cum_ok = 0;
    if (n == 0 && k > 0) {
      g_array_remove_index(x->b, k);
      cache_clear(x);
    } else if (n <= 2 * KITH_RECON_BUCKET) {
      *bk(x, k) = (bucket){.lo = lo, .n = (uint32_t)n, .sum = sum_words(it, n)};
    } else {
      size_t parts = n / KITH_RECON_BUCKET;
      g_array_remove_index(x->b, k);
      for (size_t j = 0; j < parts; j++) {
        size_t s = n * j / parts, e = n * (j + 1) / parts;
        bucket b = {.lo = j == 0 ? lo : it[s],
                    .n = (uint32_t)(e - s),
                    .sum = sum_words(it + s, e - s)};
        g_array_insert_val(x->b, k + j, b);
      }
      cache_clear(x);
    }
  }
  g_array_unref(got);
  return err;
}

/* Before a step reads the index: stale buckets read again, counts and
 * sums accumulated. */
static kith_err prepare(kith_recon_index *x) {
  if (x->stale) {
    for (size_t k = nbuckets(x); k-- > 0;) {
      if (!bk(x, k)->stale)
        continue;
      kith_err err = refresh(x, k);
      if (err != KITH_OK)
        return err;
    }
    x->stale = 0;
  }
  if (x->cum_ok)
    return KITH_OK;
  size_t nb = nbuckets(x);
  if (x->ccap < nb + 1) {
    x->ccap = (nb + 1) * 2;
    x->cn = g_renew(uint64_t, x->cn, x->ccap);
    x->cs = g_renew(uint64_t, x->cs, x->ccap);
  }
  x->cn[0] = x->cs[0] = 0;
  for (size_t k = 0; k < nb; k++) {
    x->cn[k + 1] = x->cn[k] + bk(x, k)->n;
    x->cs[k + 1] = x->cs[k] + bk(x, k)->sum;
  }
  x->cum_ok = 1;
  return KITH_OK;
}

/* Bucket k's rows (cached). Rows that the summary does not count (stored
 * without kith_recon_index_add) correct it and fail this step: the next
 * one reads a consistent index. */
static kith_err load(kith_recon_index *x, size_t k, slot **out) {
  slot *s = NULL;
  for (size_t i = 0; i < KITH_RECON_CACHE; i++)
    if (x->cache[i].valid && x->cache[i].k == k)
      s = &x->cache[i];
  if (s == NULL) {
    for (size_t i = 0; i < KITH_RECON_CACHE; i++)
      if (s == NULL || !x->cache[i].valid || x->cache[i].used < s->used)
        s = &x->cache[i];
    g_free(s->it);
    g_free(s->psum);
    *s = (slot){0};
    /* one read: its n rows and the next one, which must be beyond it */
    GArray *got = g_array_new(FALSE, FALSE, sizeof(item));
    const bucket *b = bk(x, k);
    const item *hi = next_lo(x, k);
    kith_err err = x->rd.scan(x->rd.ctx, b->lo.ts, b->lo.id, b->n + 1, got);
    if (err == KITH_OK && got->len > b->n &&
        (hi == NULL || item_cmp(&g_array_index(got, item, b->n), hi) < 0))
      err = KITH_ERR_IO;
    if (err == KITH_OK && got->len > b->n)
      g_array_set_size(got, b->n);
    for (guint i = 0; err == KITH_OK && hi != NULL && i < got->len; i++)
      if (item_cmp(&g_array_index(got, item, i), hi) >= 0)
        err = KITH_ERR_IO;
    if (err == KITH_OK && got->len != b->n)
      err = KITH_ERR_IO;
    if (err == KITH_ERR_IO) {
      bk(x, k)->stale = 1;
      x->stale = 1;
    }
    if (err != KITH_OK) {
      g_array_unref(got);
      return err;
    }
    s->n = got->len;
    s->it = (item *)g_array_free(got, FALSE);
    s->psum = g_new(uint64_t, s->n + 1);
    s->psum[0] = 0;
    for (size_t i = 0; i < s->n; i++)
      s->psum[i + 1] = s->psum[i] + kith_recon_word(s->it[i].id);
    s->k = k;
    s->valid = 1;
  }
  s->used = ++x->clock;
  *out = s;
  return KITH_OK;
}

/* The bucket holding rank i (i below the total). */
static size_t bucket_of_rank(const kith_recon_index *x, size_t i) {
  size_t lo = 0, hi = nbuckets(x);
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (x->cn[mid] <= i)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

/* ---- the source ---- */

static kith_err ix_size(void *ctx, size_t *n) {
  kith_recon_index *x = ctx;
  kith_err err = prepare(x);
  *n = err == KITH_OK ? (size_t)x->cn[nbuckets(x)] : 0;
  return err;
}

static kith_err ix_rank(void *ctx, uint64_t ts, const uint8_t id[32],
                        size_t *r) {
  kith_recon_index *x = ctx;
  item key = {.ts = ts};
  slot *s;
  memcpy(key.id, id, 32);
  size_t k = bucket_of_key(x, &key);
  kith_err err = load(x, k, &s);
  if (err != KITH_OK)
    return err;
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (item_cmp(&s->it[mid], &key) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *r = (size_t)x->cn[k] + lo;
  return KITH_OK;
}

/* Sum of the words of ranks [i0, i1) inside bucket k. */
static kith_err part_sum(kith_recon_index *x, size_t k, size_t i0, size_t i1,
                         uint64_t *sum) {
  slot *s;
  kith_err err = load(x, k, &s);
  if (err == KITH_OK)
    *sum = s->psum[i1 - x->cn[k]] - s->psum[i0 - x->cn[k]];
  return err;
}

static kith_err ix_sum(void *ctx, size_t i0, size_t i1, uint64_t *sum) {
  kith_recon_index *x = ctx;
  size_t k0 = bucket_of_rank(x, i0), k1 = bucket_of_rank(x, i1 - 1);
  uint64_t a = 0, c = 0;
  if (k0 == k1)
    return part_sum(x, k0, i0, i1, sum);
  kith_err err = part_sum(x, k0, i0, (size_t)x->cn[k0 + 1], &a);
  if (err == KITH_OK)
    err = part_sum(x, k1, (size_t)x->cn[k1], i1, &c);
  *sum = a + (x->cs[k1] - x->cs[k0 + 1]) + c;
  return err;
}

static kith_err ix_items(void *ctx, size_t i0, size_t n, item *out) {
  kith_recon_index *x = ctx;
  while (n > 0) {
    size_t k = bucket_of_rank(x, i0);
    slot *s;
    kith_err err = load(x, k, &s);
    if (err != KITH_OK)
      return err;
    size_t off = i0 - (size_t)x->cn[k];
    if (off >= s->n)
      return KITH_ERR_IO;
    size_t m = MIN(n, s->n - off);
    memcpy(out, s->it + off, m * sizeof(item));
    out += m;
    i0 += m;
    n -= m;
  }
  return KITH_OK;
}

static kith_err ix_find(void *ctx, size_t i0, size_t i1, uint64_t w, size_t *r,
                        int *found) {
  kith_recon_index *x = ctx;
  GArray *got = g_array_new(FALSE, FALSE, sizeof(item));
  kith_err err = x->rd.by_word(x->rd.ctx, w, WORD_CANDIDATES, got);
  *found = 0;
  for (guint i = 0; err == KITH_OK && !*found && i < got->len; i++) {
    const item *it = &g_array_index(got, item, i);
    size_t rank;
    item at;
    err = ix_rank(x, it->ts, it->id, &rank);
    if (err != KITH_OK || rank < i0 || rank >= i1)
      continue;
    err = ix_items(x, rank, 1, &at);
    if (err == KITH_OK && item_cmp(&at, it) == 0) {
      *r = rank;
      *found = 1;
    }
  }
  g_array_unref(got);
  return err;
}

static kith_err ix_has(void *ctx, const uint8_t id[32], int *found) {
  kith_recon_index *x = ctx;
  GArray *got = g_array_new(FALSE, FALSE, sizeof(item));
  kith_err err = x->rd.get(x->rd.ctx, id, got);
  *found = err == KITH_OK && got->len > 0;
  g_array_unref(got);
  return err;
}

kith_recon_source kith_recon_index_source(kith_recon_index *x) {
  return (kith_recon_source){x,        ix_size, ix_rank, ix_sum,
                             ix_items, ix_find, ix_has};
}

size_t kith_recon_index_buckets(const kith_recon_index *x) {
  return nbuckets(x);
}

size_t kith_recon_index_bytes(const kith_recon_index *x) {
  size_t bytes = sizeof *x + x->b->len * sizeof(bucket) + x->ccap * 16;
  for (size_t i = 0; i < KITH_RECON_CACHE; i++)
    if (x->cache[i].valid)
      bytes += x->cache[i].n * (sizeof(item) + sizeof(uint64_t));
  return bytes;
}
