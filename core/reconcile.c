/* kith: range-based set reconciliation (see reconcile.h).
 *
 * Wire format: one msgpack array [version, first, range...] where first
 * is true in the first message of a reconciliation and false in the
 * others. Each range is a flat run of fields: tag (mode | PREFIX |
 * INF | COARSE), then unless INF the upper bound as the timestamp delta
 * from the previous bound (in units of COARSE_MS with COARSE) and, with
 * PREFIX, the shortest id prefix that separates it (no trailing zero
 * byte); then the payload of the mode:
 *   SKIP   -
 *   DIGEST count, sum of the ids' first 4 bytes (little-endian) mod 2^32
 *   IDS    [id...]        the sender's complete list for the range
 *   DONE   bitmap, [id...] bitmap over the receiver's items in the range
 *                         that the sender lacks (empty: none), then the
 *                         sender's items the receiver lacks.
 * Ranges are contiguous from the bottom of the order; what follows the last
 * one is skipped. */
#include "reconcile.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define ID_LEN 32
#define KEY_LEN crypto_shorthash_KEYBYTES
#define VERSION 2
/* Items of our own read at once to answer an IDS range: beyond, the
 * range is split into digests instead. */
#define READ_MAX (8u * KITH_RECON_CHUNK)
/* Room kept free in every message for its header and a final range. */
#define MSG_RESERVE 160

enum { MODE_SKIP = 0, MODE_DIGEST = 1, MODE_IDS = 2, MODE_DONE = 3 };
#define TAG_MODE 7u
#define TAG_PREFIX 8u
#define TAG_INF 16u
#define TAG_COARSE 32u /* ts_delta counts COARSE_MS */
#define COARSE_MS 1024u

typedef kith_recon_item item;

/* (ts, id zero-padded after plen bytes), or infinity. */
typedef struct bound {
  uint64_t ts;
  uint8_t id[ID_LEN];
  uint8_t plen;
  uint8_t inf;
} bound;

/* Open-addressing set of indices (stored + 1) into an array of ids laid
 * out `stride` bytes apart, hashed with a per-object key so that peer-chosen
 * ids cannot make it degenerate. */
typedef struct idtab {
  uint32_t *slot;
  size_t cap, n;
} idtab;

struct kith_recon_set {
  item *items; /* [0, sn) sorted, [sn, n) added since */
  size_t n, cap, sn;
  idtab index; /* every item, by id */
  uint8_t tabkey[KEY_LEN];
  uint64_t *psum; /* psum[i] = sum of the words of items[0..i) (sorted) */
};

struct kith_recon {
  kith_recon_source src;
  kith_recon_set *own; /* kith_recon_new: the set src reads */
  size_t sn;           /* items in the source at the start of this step */
  uint8_t tabkey[KEY_LEN];
  int active;
  GByteArray *rep; /* ids reported in this reconciliation */
  idtab repidx;
};

/* ---- id tables ---- */

/* The keyed hash of an id: SipHash-2-4 (crypto_shorthash), its 8 output
 * bytes read as a little-endian integer (hash tables only). */
static uint64_t id_hash(const uint8_t *key, const uint8_t *id) {
  uint8_t h[crypto_shorthash_BYTES];
  uint64_t v = 0;
  crypto_shorthash(h, id, ID_LEN, key);
  for (int i = crypto_shorthash_BYTES - 1; i >= 0; i--)
    v = v << 8 | h[i];
  return v;
}

/* Table slots: the same hash, cut to the host's size_t (local only). */
static size_t tab_hash(const uint8_t *key, const uint8_t *id) {
  return (size_t)id_hash(key, id);
}

static size_t tab_find(const idtab *t, const uint8_t *key, const uint8_t *base,
                       size_t stride, const uint8_t *id) {
  if (t->cap == 0)
    return SIZE_MAX;
  size_t mask = t->cap - 1;
  for (size_t i = tab_hash(key, id) & mask;; i = (i + 1) & mask) {
    uint32_t s = t->slot[i];
    if (s == 0)
      return SIZE_MAX;
    if (memcmp(base + (size_t)(s - 1) * stride, id, ID_LEN) == 0)
      return s - 1;
  }
}

static void tab_put(idtab *t, const uint8_t *key, const uint8_t *base,
                    size_t stride, size_t idx) {
  size_t mask = t->cap - 1;
  size_t i = tab_hash(key, base + idx * stride) & mask;
  while (t->slot[i] != 0)
    i = (i + 1) & mask;
  t->slot[i] = (uint32_t)(idx + 1);
  t->n++;
}

/* Makes room for `want` entries, rehashing the n_old indices [0, n_old). */
static kith_err tab_reserve(idtab *t, const uint8_t *key, const uint8_t *base,
                            size_t stride, size_t want, size_t n_old) {
  if (want * 2 <= t->cap)
    return KITH_OK;
  size_t cap = t->cap ? t->cap : 64;
  while (cap < want * 2)
    cap *= 2;
  uint32_t *slot = g_try_new0(uint32_t, cap);
  if (slot == NULL)
    return KITH_ERR_NOMEM;
  g_free(t->slot);
  *t = (idtab){.slot = slot, .cap = cap};
  for (size_t i = 0; i < n_old; i++)
    tab_put(t, key, base, stride, i);
  return KITH_OK;
}

static void tab_clear(idtab *t) {
  g_free(t->slot);
  *t = (idtab){0};
}

/* Base of the id table's entries: the ids inside the items (NULL, never
 * dereferenced, while there are none: the table is then empty). */
static const uint8_t *item_ids(const kith_recon_set *r) {
  return r->items == NULL ? NULL
                          : (const uint8_t *)r->items + offsetof(item, id);
}

/* ---- order ---- */

static int item_cmp(const void *a, const void *b) {
  const item *x = a, *y = b;
  if (x->ts != y->ts)
    return x->ts < y->ts ? -1 : 1;
  return memcmp(x->id, y->id, ID_LEN);
}

static int bound_cmp(const bound *a, const bound *b) {
  if (a->inf || b->inf)
    return (int)a->inf - (int)b->inf;
  if (a->ts != b->ts)
    return a->ts < b->ts ? -1 : 1;
  return memcmp(a->id, b->id, ID_LEN);
}

static const bound BOUND_MIN = {0};
static const bound BOUND_INF = {.inf = 1};

/* A bound b with a < b <= c, for consecutive items a < c: the cheapest
 * to send after a bound at prev_ts: a whole number of COARSE_MS after it
 * if there is one in (a.ts, c.ts], else a.ts + 1, else (equal times) the
 * shortest id prefix. */
static void bound_between(const item *a, const item *c, uint64_t prev_ts,
                          bound *b) {
  *b = (bound){0};
  if (a->ts < c->ts) {
    uint64_t t = a->ts + 1;
    if (t > prev_ts && (t - prev_ts) % COARSE_MS != 0)
      t += COARSE_MS - (t - prev_ts) % COARSE_MS;
    b->ts = t <= c->ts && t > prev_ts ? t : a->ts + 1;
    return;
  }
  size_t j = 0;
  while (a->id[j] == c->id[j])
    j++;
  b->ts = c->ts;
  memcpy(b->id, c->id, j + 1);
  b->plen = (uint8_t)(j + 1);
}

/* ---- the set in memory ---- */

uint64_t kith_recon_word(const uint8_t id[32]) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = v << 8 | id[i];
  return v;
}

kith_recon_set *kith_recon_set_new(void) {
  kith_recon_set *r = g_new0(kith_recon_set, 1);
  randombytes_buf(r->tabkey, sizeof r->tabkey);
  return r;
}

void kith_recon_set_free(kith_recon_set *r) {
  if (r == NULL)
    return;
  g_free(r->items);
  tab_clear(&r->index);
  g_free(r->psum);
  g_free(r);
}

size_t kith_recon_set_size(const kith_recon_set *r) {
  return r->n;
}

kith_err kith_recon_set_add(kith_recon_set *r, uint64_t ts_ms,
                            const uint8_t id[32]) {
  if (r == NULL || id == NULL)
    return KITH_ERR_ARG;
  if (tab_find(&r->index, r->tabkey, item_ids(r), sizeof(item), id) != SIZE_MAX)
    return KITH_OK;
  if (r->n >= KITH_RECON_MAX_ITEMS)
    return KITH_ERR_LIMIT;
  if (r->n == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 256;
    item *p = g_try_renew(item, r->items, cap);
    if (p == NULL)
      return KITH_ERR_NOMEM;
    r->items = p;
    r->cap = cap;
  }
  if (tab_reserve(&r->index, r->tabkey, item_ids(r), sizeof(item), r->n + 1,
                  r->n) != KITH_OK)
    return KITH_ERR_NOMEM;
  r->items[r->n].ts = ts_ms;
  memcpy(r->items[r->n].id, id, ID_LEN);
  tab_put(&r->index, r->tabkey, item_ids(r), sizeof(item), r->n);
  r->n++;
  return KITH_OK;
}

/* Sorts the items added since into the sorted part and sums them up. */
static kith_err set_sort(kith_recon_set *r) {
  size_t a = r->sn, n = r->n;
  if (a == n && r->psum != NULL)
    return KITH_OK;
  if (n > a)
    qsort(r->items + a, n - a, sizeof(item), item_cmp);
  uint64_t *psum = g_try_new(uint64_t, n + 1);
  item *m = a > 0 ? g_try_new(item, r->cap) : NULL;
  if (psum == NULL || (a > 0 && m == NULL)) {
    g_free(psum);
    g_free(m);
    return KITH_ERR_NOMEM;
  }
  if (a > 0) {
    size_t i = 0, j = a, k = 0;
    while (i < a || j < n)
      m[k++] = (j == n || (i < a && item_cmp(&r->items[i], &r->items[j]) < 0))
                   ? r->items[i++]
                   : r->items[j++];
    g_free(r->items);
    r->items = m;
  }
  g_free(r->psum);
  r->psum = psum;
  psum[0] = 0;
  for (size_t i = 0; i < n; i++)
    psum[i + 1] = psum[i] + kith_recon_word(r->items[i].id);
  r->sn = n;
  tab_clear(&r->index);
  return tab_reserve(&r->index, r->tabkey, item_ids(r), sizeof(item), n, n);
}

static kith_err set_size(void *ctx, size_t *n) {
  kith_recon_set *r = ctx;
  kith_err err = set_sort(r);
  *n = r->n;
  return err;
}

static kith_err set_rank(void *ctx, uint64_t ts, const uint8_t id[32],
                         size_t *out) {
  kith_recon_set *r = ctx;
  item key = {.ts = ts};
  size_t lo = 0, hi = r->sn;
  memcpy(key.id, id, ID_LEN);
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (item_cmp(&r->items[mid], &key) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *out = lo;
  return KITH_OK;
}

static kith_err set_sum(void *ctx, size_t i0, size_t i1, uint64_t *sum) {
  kith_recon_set *r = ctx;
  *sum = r->psum[i1] - r->psum[i0];
  return KITH_OK;
}

static kith_err set_items(void *ctx, size_t i0, size_t n, item *out) {
  kith_recon_set *r = ctx;
  memcpy(out, r->items + i0, n * sizeof(item));
  return KITH_OK;
}

static kith_err set_find(void *ctx, size_t i0, size_t i1, uint64_t w,
                         size_t *rank, int *found) {
  kith_recon_set *r = ctx;
  *found = 0;
  for (size_t i = i0; i < i1 && !*found; i++)
    if ((uint32_t)kith_recon_word(r->items[i].id) == w) {
      *rank = i;
      *found = 1;
    }
  return KITH_OK;
}

static kith_err set_has(void *ctx, const uint8_t id[32], int *found) {
  kith_recon_set *r = ctx;
  *found =
      tab_find(&r->index, r->tabkey, item_ids(r), sizeof(item), id) != SIZE_MAX;
  return KITH_OK;
}

kith_recon_source kith_recon_set_source(kith_recon_set *s) {
  return (kith_recon_source){s,         set_size, set_rank, set_sum,
                             set_items, set_find, set_has};
}

/* ---- reading the source ---- */

/* First rank whose item is >= b. */
static kith_err lower_idx(const kith_recon *r, const bound *b, size_t *i) {
  if (b->inf) {
    *i = r->sn;
    return KITH_OK;
  }
  kith_err err = r->src.rank(r->src.ctx, b->ts, b->id, i);
  if (err == KITH_OK && *i > r->sn)
    *i = r->sn;
  return err;
}

static kith_err get_sum(const kith_recon *r, size_t i0, size_t i1,
                        uint64_t *sum) {
  *sum = 0;
  return i0 >= i1 ? KITH_OK : r->src.sum(r->src.ctx, i0, i1, sum);
}

static kith_err get_items(const kith_recon *r, size_t i0, size_t n, item *out) {
  return n == 0 ? KITH_OK : r->src.items(r->src.ctx, i0, n, out);
}

/* ---- endpoints ---- */

kith_recon *kith_recon_new_on(const kith_recon_source *src) {
  kith_recon *r = g_new0(kith_recon, 1);
  r->src = *src;
  randombytes_buf(r->tabkey, sizeof r->tabkey);
  r->rep = g_byte_array_new();
  return r;
}

kith_recon *kith_recon_new(void) {
  kith_recon_set *own = kith_recon_set_new();
  kith_recon_source src = kith_recon_set_source(own);
  kith_recon *r = kith_recon_new_on(&src);
  r->own = own;
  return r;
}

void kith_recon_free(kith_recon *r) {
  if (r == NULL)
    return;
  kith_recon_set_free(r->own);
  g_byte_array_unref(r->rep);
  tab_clear(&r->repidx);
  g_free(r);
}

size_t kith_recon_size(const kith_recon *r) {
  size_t n = 0;
  return r->src.size(r->src.ctx, &n) == KITH_OK ? n : 0;
}

kith_err kith_recon_add(kith_recon *r, uint64_t ts_ms, const uint8_t id[32]) {
  if (r == NULL)
    return KITH_ERR_ARG;
  return r->own ? kith_recon_set_add(r->own, ts_ms, id) : KITH_ERR_STATE;
}

/* Starts a step: the source's size now. */
static kith_err step_begin(kith_recon *r) {
  return r->src.size(r->src.ctx, &r->sn);
}

/* Starts a reconciliation. */
static void session_begin(kith_recon *r) {
  g_byte_array_set_size(r->rep, 0);
  tab_clear(&r->repidx);
  r->active = 1;
}

/* Appends id to arr unless already reported in this reconciliation. */
static kith_err report(kith_recon *r, GByteArray *arr, const uint8_t *id) {
  size_t n = r->rep->len / ID_LEN;
  if (tab_find(&r->repidx, r->tabkey, r->rep->data, ID_LEN, id) != SIZE_MAX)
    return KITH_OK;
  if (n >= KITH_RECON_MAX_REPORTS)
    return KITH_ERR_LIMIT;
  g_byte_array_append(r->rep, id, ID_LEN);
  if (tab_reserve(&r->repidx, r->tabkey, r->rep->data, ID_LEN, n + 1, n) !=
      KITH_OK) {
    g_byte_array_set_size(r->rep, n * ID_LEN);
    return KITH_ERR_NOMEM;
  }
  tab_put(&r->repidx, r->tabkey, r->rep->data, ID_LEN, n);
  if (arr != NULL)
    g_byte_array_append(arr, id, ID_LEN);
  return KITH_OK;
}

static kith_err has_id(const kith_recon *r, const uint8_t *id, int *found) {
  return r->src.has(r->src.ctx, id, found);
}

/* ---- decoding peer messages ---- */

typedef struct prange {
  bound b; /* upper bound; the lower one is the previous range's */
  unsigned mode;
  uint64_t count, sum; /* DIGEST */
  size_t ids, nids;    /* IDS, DONE: ids at parsed.idbuf + ids * ID_LEN */
  const uint8_t *bits; /* DONE bitmap, borrowed from the unpacked message */
  size_t nbits;        /* its length in bytes */
  size_t i0, i1;       /* our snapshot items in the range */
} prange;

typedef struct parsed {
  msgpack_unpacked u;
  int start;
  GArray *ranges; /* of prange */
  GByteArray *idbuf;
} parsed;

typedef struct cursor {
  const msgpack_object *f;
  uint32_t n, k;
} cursor;

static const msgpack_object *next_field(cursor *c) {
  return c->k < c->n ? &c->f[c->k++] : NULL;
}

static kith_err next_uint(cursor *c, uint64_t max, uint64_t *v) {
  return kith_codec_uint(next_field(c), max, v);
}

/* Upper bound of a range: strictly above prev, canonical prefix. */
static kith_err parse_bound(cursor *c, uint64_t tag, const bound *prev,
                            bound *b) {
  uint64_t dts;
  *b = (bound){0};
  if (tag & TAG_INF) {
    b->inf = 1;
    return (tag & (TAG_PREFIX | TAG_COARSE)) ? KITH_ERR_DECODE : KITH_OK;
  }
  uint64_t unit = (tag & TAG_COARSE) ? COARSE_MS : 1;
  if (next_uint(c, (UINT64_MAX - prev->ts) / unit, &dts) != KITH_OK)
    return KITH_ERR_DECODE;
  b->ts = prev->ts + dts * unit;
  if (tag & TAG_PREFIX) {
    const uint8_t *p;
    size_t n;
    if (kith_codec_bin(next_field(c), ID_LEN, &p, &n) != KITH_OK || n == 0 ||
        p[n - 1] == 0)
      return KITH_ERR_DECODE;
    memcpy(b->id, p, n);
    b->plen = (uint8_t)n;
  }
  return bound_cmp(b, prev) > 0 ? KITH_OK : KITH_ERR_DECODE;
}

/* An array of distinct 32-byte ids, copied to idbuf. */
static kith_err parse_ids(kith_recon *r, cursor *c, parsed *m, prange *pr) {
  const msgpack_object *o = next_field(c);
  const msgpack_object *v;
  if (kith_codec_array(o, UINT32_MAX, &v) != KITH_OK)
    return KITH_ERR_DECODE;
  pr->ids = m->idbuf->len / ID_LEN;
  pr->nids = o->via.array.size;
  for (uint32_t i = 0; i < o->via.array.size; i++) {
    if (v[i].type != MSGPACK_OBJECT_BIN || v[i].via.bin.size != ID_LEN)
      return KITH_ERR_DECODE;
    g_byte_array_append(m->idbuf, (const uint8_t *)v[i].via.bin.ptr, ID_LEN);
  }
  idtab t = {0};
  const uint8_t *base = m->idbuf->data + pr->ids * ID_LEN;
  kith_err err = tab_reserve(&t, r->tabkey, base, ID_LEN, pr->nids, 0);
  for (size_t i = 0; err == KITH_OK && i < pr->nids; i++) {
    if (tab_find(&t, r->tabkey, base, ID_LEN, base + i * ID_LEN) != SIZE_MAX)
      err = KITH_ERR_DECODE;
    else
      tab_put(&t, r->tabkey, base, ID_LEN, i);
  }
  tab_clear(&t);
  return err;
}

static kith_err parse_payload(kith_recon *r, cursor *c, parsed *m, prange *pr) {
  switch (pr->mode) {
  case MODE_SKIP:
    return KITH_OK;
  case MODE_DIGEST:
    if (next_uint(c, KITH_RECON_MAX_ITEMS, &pr->count) != KITH_OK)
      return KITH_ERR_DECODE;
    return next_uint(c, UINT32_MAX, &pr->sum);
  case MODE_IDS:
    return parse_ids(r, c, m, pr);
  case MODE_DONE:
    if (m->start || kith_codec_bin(next_field(c), KITH_RECON_MAX_MSG, &pr->bits,
                                   &pr->nbits) != KITH_OK)
      return KITH_ERR_DECODE;
    return parse_ids(r, c, m, pr);
  default:
    return KITH_ERR_DECODE;
  }
}

static kith_err parse_ranges(kith_recon *r, cursor *c, parsed *m) {
  bound prev = BOUND_MIN;
  while (c->k < c->n) {
    uint64_t tag;
    prange pr = {0};
    if (prev.inf || next_uint(c, TAG_MODE | TAG_PREFIX | TAG_INF | TAG_COARSE,
                              &tag) != KITH_OK)
      return KITH_ERR_DECODE;
    pr.mode = (unsigned)(tag & TAG_MODE);
    if (parse_bound(c, tag, &prev, &pr.b) != KITH_OK ||
        parse_payload(r, c, m, &pr) != KITH_OK)
      return KITH_ERR_DECODE;
    g_array_append_val(m->ranges, pr);
    prev = pr.b;
  }
  return KITH_OK;
}

/* Our items in each range, and the DONE bitmaps checked against them. A
 * bitmap sized for another number of items than we hold in the range now
 * (items came in since we listed them) is left out: the next
 * reconciliation finds what it would have told. */
static kith_err locate(const kith_recon *r, parsed *m) {
  size_t i0 = 0;
  for (guint k = 0; k < m->ranges->len; k++) {
    prange *pr = &g_array_index(m->ranges, prange, k);
    pr->i0 = i0;
    if (lower_idx(r, &pr->b, &pr->i1) != KITH_OK)
      return KITH_ERR_IO;
    if (pr->i1 < i0)
      pr->i1 = i0;
    i0 = pr->i1;
    size_t n = pr->i1 - pr->i0;
    if (pr->mode != MODE_DONE || pr->nbits == 0)
      continue;
    if (pr->nbits != (n + 7) / 8) {
      pr->nbits = 0;
      pr->bits = NULL;
    } else if (n % 8 != 0 && (pr->bits[pr->nbits - 1] >> (n % 8)) != 0) {
      return KITH_ERR_DECODE;
    }
  }
  return KITH_OK;
}

static void parsed_clear(parsed *m) {
  msgpack_unpacked_destroy(&m->u);
  g_array_unref(m->ranges);
  g_byte_array_unref(m->idbuf);
}

/* Decodes and checks the whole message without touching r. */
static kith_err parse(kith_recon *r, const uint8_t *msg, size_t len,
                      parsed *m) {
  const msgpack_object *top = &m->u.data;
  msgpack_unpacked_init(&m->u);
  m->ranges = g_array_new(FALSE, FALSE, sizeof(prange));
  /* never NULL data: a range's ids are at idbuf->data + ids * ID_LEN, an
   * offset applied even when no range lists any */
  m->idbuf = g_byte_array_sized_new(ID_LEN);
  m->start = 0;
  if (msg == NULL || len == 0 || len > KITH_RECON_MAX_MSG ||
      kith_codec_unpack(msg, len, &m->u) != KITH_OK ||
      kith_codec_array(top, UINT32_MAX, NULL) != KITH_OK ||
      top->via.array.size < 2)
    return KITH_ERR_DECODE;
  cursor c = {top->via.array.ptr, top->via.array.size, 0};
  uint64_t ver;
  const msgpack_object *first;
  if (next_uint(&c, UINT64_MAX, &ver) != KITH_OK || ver != VERSION)
    return KITH_ERR_DECODE;
  first = next_field(&c);
  if (first->type != MSGPACK_OBJECT_BOOLEAN)
    return KITH_ERR_DECODE;
  m->start = first->via.boolean;
  if (!m->start && !r->active)
    return KITH_ERR_DECODE;
  if (parse_ranges(r, &c, m) != KITH_OK)
    return KITH_ERR_DECODE;
  return KITH_OK;
}

/* ---- building our messages ---- */

typedef struct out {
  kith_pack body; /* the range fields so far */
  kith_pack tmp;  /* payload of the range being added */
  uint32_t fields, tmpfields;
  bound last; /* upper bound of the last range in body */
  int full;   /* a range did not fit: the rest is summed up at the end */
  bound cut;  /* lower bound of that range */
} out;

static void out_init(out *o) {
  kith_pack_init(&o->body);
  kith_pack_init(&o->tmp);
  o->fields = o->tmpfields = 0;
  o->last = BOUND_MIN;
  o->full = 0;
}

static void out_clear(out *o) {
  msgpack_sbuffer_destroy(&o->body.sb);
  msgpack_sbuffer_destroy(&o->tmp.sb);
}

static void put_head(kith_pack *p, uint32_t *nf, uint64_t *prev_ts,
                     const bound *b, unsigned mode) {
  uint64_t d = b->inf ? 0 : b->ts - *prev_ts;
  int coarse = d != 0 && d % COARSE_MS == 0;
  unsigned tag = mode | (b->inf ? TAG_INF : 0) | (b->plen ? TAG_PREFIX : 0) |
                 (coarse ? TAG_COARSE : 0);
  kith_pack_uint(p, tag);
  (*nf)++;
  if (b->inf)
    return;
  kith_pack_uint(p, coarse ? d / COARSE_MS : d);
  (*nf)++;
  *prev_ts = b->ts;
  if (b->plen) {
    kith_pack_bin(p, b->id, b->plen);
    (*nf)++;
  }
}

static void append_raw(kith_pack *dst, const kith_pack *src) {
  if (src->failed ||
      (src->sb.size > 0 &&
       msgpack_sbuffer_write(&dst->sb, src->sb.data, src->sb.size) != 0))
    dst->failed = 1;
}

/* Adds the range [lower, upper) with mode and the payload in o->tmp,
 * preceded by a SKIP range if it does not start where the last one ended.
 * Unless forced, a range that would overflow the message is dropped and
 * marks the message full. Returns whether the range was added. */
static int out_commit(out *o, const bound *lower, const bound *upper,
                      unsigned mode, int force) {
  kith_pack head;
  uint32_t hf = 0;
  uint64_t pts = o->last.ts;
  int added = 0;
  kith_pack_init(&head);
  if (!o->full || force) {
    if (bound_cmp(lower, &o->last) != 0)
      put_head(&head, &hf, &pts, lower, MODE_SKIP);
    put_head(&head, &hf, &pts, upper, mode);
    size_t size = o->body.sb.size + head.sb.size + o->tmp.sb.size;
    if (!force && size > KITH_RECON_MAX_MSG - MSG_RESERVE) {
      o->full = 1;
      o->cut = *lower;
    } else {
      append_raw(&o->body, &head);
      append_raw(&o->body, &o->tmp);
      o->fields += hf + o->tmpfields;
      o->last = *upper;
      added = 1;
    }
  }
  msgpack_sbuffer_destroy(&head.sb);
  msgpack_sbuffer_clear(&o->tmp.sb);
  o->tmpfields = 0;
  return added;
}

static kith_err out_finish(out *o, int first, uint8_t **msg, size_t *len) {
  kith_pack p;
  kith_err err = KITH_OK;
  *msg = NULL;
  *len = 0;
  if (o->body.failed || o->tmp.failed)
    err = KITH_ERR_NOMEM;
  if (err == KITH_OK && o->fields > 0) {
    kith_pack_init(&p);
    kith_pack_array(&p, 2 + o->fields);
    kith_pack_uint(&p, VERSION);
    kith_pack_bool(&p, first);
    append_raw(&p, &o->body);
    err = kith_pack_take(&p, msg, len);
  }
  out_clear(o);
  return err;
}

static kith_err emit_digest(const kith_recon *r, out *o, const bound *lo,
                            const bound *hi, size_t i0, size_t i1, int force) {
  uint64_t sum;
  kith_err err = get_sum(r, i0, i1, &sum);
  if (err != KITH_OK)
    return err;
  kith_pack_uint(&o->tmp, i1 - i0);
  kith_pack_uint(&o->tmp, (uint32_t)sum);
  o->tmpfields += 2;
  out_commit(o, lo, hi, MODE_DIGEST, force);
  return KITH_OK;
}

/* Splits our items [i0, i1) into nb ranges of equal counts, with digests. */
static kith_err emit_children(const kith_recon *r, out *o, const bound *lo,
                              const bound *hi, size_t i0, size_t i1,
                              size_t nb) {
  size_t n = i1 - i0;
  bound a = *lo, b;
  kith_err err = KITH_OK;
  /* Never more parts than items: an empty part would have no item to
   * place its bound after. */
  if (nb > n)
    nb = n ? n : 1;
  for (size_t j = 0; err == KITH_OK && j < nb; j++) {
    size_t s = i0 + n * j / nb, e = i0 + n * (j + 1) / nb;
    item pair[2];
    if (j + 1 == nb)
      b = *hi;
    else if ((err = get_items(r, e - 1, 2, pair)) == KITH_OK)
      bound_between(&pair[0], &pair[1], a.ts, &b);
    if (err == KITH_OK)
      err = emit_digest(r, o, &a, &b, s, e, 0);
    a = b;
  }
  return err;
}

/* Ranges of mode IDS or DONE over [lo, hi) carrying our items sel[0..k)
 * (increasing), at most KITH_RECON_CHUNK per range; next is our item after
 * sel[k - 1] in the range (NULL: none), for the bound after the last
 * chunk. bits (nbits bytes, DONE only) goes with a single range. A DONE
 * without bitmap starts where the message's last range ended: what lies
 * between is settled, and a DONE over settled items says nothing more,
 * so no SKIP range is needed before it. Reports the ids of the chunks
 * that fit to arr (if not NULL); *sent counts them. */
static kith_err emit_chunks(kith_recon *r, out *o, const bound *lo,
                            const bound *hi, const item *sel, size_t k,
                            unsigned mode, const uint8_t *bits, size_t nbits,
                            GByteArray *arr, size_t *sent) {
  bound a = mode == MODE_DONE && nbits == 0 && !o->full ? o->last : *lo, b;
  size_t j = 0;
  kith_err err = KITH_OK;
  do {
    size_t e = MIN(k, j + KITH_RECON_CHUNK);
    if (e == k)
      b = *hi;
    else
      bound_between(&sel[e - 1], &sel[e], a.ts, &b);
    if (mode == MODE_DONE) {
      kith_pack_bin(&o->tmp, bits, e == k && j == 0 ? nbits : 0);
      o->tmpfields++;
    }
    kith_pack_array(&o->tmp, (uint32_t)(e - j));
    for (size_t i = j; i < e; i++)
      kith_pack_bin(&o->tmp, sel[i].id, ID_LEN);
    o->tmpfields++;
    if (!out_commit(o, &a, &b, mode, 0))
      break;
    for (size_t i = j; err == KITH_OK && arr != NULL && i < e; i++)
      err = report(r, arr, sel[i].id);
    if (sent)
      *sent += e - j;
    a = b;
    j = e;
  } while (j < k && err == KITH_OK);
  return err;
}

/* Our items [i0, i1) in ranges of mode IDS or DONE (reported to arr), read
 * a chunk at a time: only what fits the message is read. */
static kith_err emit_all(kith_recon *r, out *o, const bound *lo,
                         const bound *hi, size_t i0, size_t i1, unsigned mode,
                         GByteArray *arr) {
  item *buf = g_new(item, KITH_RECON_CHUNK + 1);
  bound a = *lo, b;
  kith_err err = KITH_OK;
  size_t i = i0;
  do {
    size_t n = MIN(i1 - i, (size_t)KITH_RECON_CHUNK), sent = 0;
    err = get_items(r, i, n + (i + n < i1), buf);
    if (err != KITH_OK)
      break;
    if (i + n < i1)
      bound_between(&buf[n - 1], &buf[n], a.ts, &b);
    else
      b = *hi;
    err = emit_chunks(r, o, &a, &b, buf, n, mode, NULL, 0, arr, &sent);
    if (sent < n)
      break;
    a = b;
    i += n;
  } while (i < i1 && err == KITH_OK);
  g_free(buf);
  return err;
}

/* ---- answering each range ---- */

typedef struct ctx {
  kith_recon *r;
  out *o;
  const parsed *m;
  GByteArray *have, *need;
  size_t branch; /* parts a differing range is split into */
} ctx;

static kith_err on_digest(ctx *c, const bound *lo, const prange *p) {
  kith_recon *r = c->r;
  size_t i0 = p->i0, i1 = p->i1, n = i1 - i0;
  uint64_t sum;
  kith_err err = get_sum(r, i0, i1, &sum);
  if (err != KITH_OK || (n == p->count && (uint32_t)sum == p->sum))
    return err;
  if (n == p->count + 1) {
    /* One item more than the peer: the difference of the sums is its
     * id's first 4 bytes, if it is the only difference (a wrong guess,
     * or sums equal by chance, leaves a difference to later). */
    size_t x;
    int found = 0;
    item it;
    err = r->src.find(r->src.ctx, i0, i1, (uint32_t)(sum - p->sum), &x, &found);
    if (err == KITH_OK && found)
      err = get_items(r, x, 1, &it);
    if (err != KITH_OK || found)
      return err != KITH_OK ? err
                            : emit_chunks(r, c->o, lo, &p->b, &it, 1, MODE_DONE,
                                          NULL, 0, c->have, NULL);
  }
  if (p->count == n + 1) /* the peer can do the same: send our digest */
    return emit_digest(r, c->o, lo, &p->b, i0, i1, 0);
  if (p->count == 0) /* the peer has none: everything goes */
    return emit_all(r, c->o, lo, &p->b, i0, i1, MODE_DONE, c->have);
  if (n <= KITH_RECON_LEAF)
    return emit_all(r, c->o, lo, &p->b, i0, i1, MODE_IDS, NULL);
  return emit_children(r, c->o, lo, &p->b, i0, i1, MIN(n, c->branch));
}

/* The peer's complete list for the range: now we know both directions. */
static kith_err on_ids(ctx *c, const bound *lo, const prange *p) {
  kith_recon *r = c->r;
  const uint8_t *theirs = c->m->idbuf->data + p->ids * ID_LEN;
  size_t n = p->i1 - p->i0;
  if (n > READ_MAX) /* too many of ours to list: compare digests below */
    return emit_children(r, c->o, lo, &p->b, p->i0, p->i1, c->branch);
  size_t nbits = (p->nids + 7) / 8, k = 0, lacked = 0;
  uint8_t *bits = g_malloc0(nbits + 1);
  item *ours = g_new(item, n + 1), *sel = g_new(item, n + 1);
  idtab t = {0};
  kith_err err = get_items(r, p->i0, n, ours);
  if (err == KITH_OK)
    err = tab_reserve(&t, r->tabkey, theirs, ID_LEN, p->nids, 0);
  for (size_t i = 0; err == KITH_OK && i < p->nids; i++) {
    int found = 0;
    tab_put(&t, r->tabkey, theirs, ID_LEN, i);
    err = has_id(r, theirs + i * ID_LEN, &found);
    if (err == KITH_OK && !found) {
      bits[i / 8] |= (uint8_t)(1u << (i % 8));
      lacked++;
      err = report(r, c->need, theirs + i * ID_LEN);
    }
  }
  for (size_t i = 0; err == KITH_OK && i < n; i++)
    if (tab_find(&t, r->tabkey, theirs, ID_LEN, ours[i].id) == SIZE_MAX)
      sel[k++] = ours[i];
  if (err == KITH_OK && (k > 0 || lacked > 0)) {
    if (k <= KITH_RECON_CHUNK || lacked == 0)
      err = emit_chunks(r, c->o, lo, &p->b, sel, k, MODE_DONE, bits,
                        lacked ? nbits : 0, c->have, NULL);
    else /* too many for one DONE: the peer answers our list instead */
      err = emit_all(r, c->o, lo, &p->b, p->i0, p->i1, MODE_IDS, NULL);
  }
  tab_clear(&t);
  g_free(ours);
  g_free(sel);
  g_free(bits);
  return err;
}

static kith_err on_done(ctx *c, const prange *p) {
  kith_recon *r = c->r;
  const uint8_t *theirs = c->m->idbuf->data + p->ids * ID_LEN;
  size_t n = p->nbits ? p->i1 - p->i0 : 0;
  item *ours = g_new(item, n + 1);
  kith_err err = get_items(r, p->i0, n, ours);
  for (size_t i = 0; err == KITH_OK && i < n; i++)
    if (p->bits[i / 8] & (1u << (i % 8)))
      err = report(r, c->have, ours[i].id);
  for (size_t i = 0; err == KITH_OK && i < p->nids; i++) {
    int found = 0;
    err = has_id(r, theirs + i * ID_LEN, &found);
    if (err == KITH_OK && !found)
      err = report(r, c->need, theirs + i * ID_LEN);
  }
  g_free(ours);
  return err;
}

/* How many parts to split a differing range into: enough that most parts
 * hold at most one difference (a range with one item more on one side is
 * settled at once, see on_digest), few enough that the equal ones cost
 * little. How many differences a differing range holds is judged from
 * the peer's digests in this message: if most differ, and their counts
 * differ by 4 or more on average, there are many per range
 * (KITH_RECON_BRANCH parts); if most differ by little counts, a few (half
 * as many parts); if only some differ, those hold one or two (a quarter). */
static kith_err branching(const kith_recon *r, const parsed *m, size_t *nb) {
  size_t nd = 0, diff = 0, apart = 0;
  for (guint k = 0; k < m->ranges->len; k++) {
    const prange *p = &g_array_index(m->ranges, prange, k);
    size_t n = p->i1 - p->i0;
    uint64_t sum;
    if (p->mode != MODE_DIGEST)
      continue;
    kith_err err = get_sum(r, p->i0, p->i1, &sum);
    if (err != KITH_OK)
      return err;
    nd++;
    if (n == p->count && (uint32_t)sum == p->sum)
      continue;
    diff++;
    apart += n > p->count ? n - p->count : p->count - n;
  }
  if (diff * 10 > nd * 9)
    *nb = apart >= 4 * diff ? KITH_RECON_BRANCH : KITH_RECON_BRANCH / 2;
  else
    *nb = diff * 2 > nd ? KITH_RECON_BRANCH / 2 : KITH_RECON_BRANCH / 4;
  return KITH_OK;
}

static kith_err answer(ctx *c) {
  bound lo = BOUND_MIN;
  kith_err err = branching(c->r, c->m, &c->branch);
  for (guint k = 0; err == KITH_OK && k < c->m->ranges->len; k++) {
    const prange *p = &g_array_index(c->m->ranges, prange, k);
    if (p->mode == MODE_DONE)
      err = on_done(c, p);
    else if (c->o->full)
      ; /* summed up by the final range instead */
    else if (p->mode == MODE_DIGEST)
      err = on_digest(c, &lo, p);
    else if (p->mode == MODE_IDS)
      err = on_ids(c, &lo, p);
    lo = p->b;
  }
  if (err == KITH_OK && c->o->full) {
    size_t i0;
    err = lower_idx(c->r, &c->o->cut, &i0);
    if (err == KITH_OK)
      err = emit_digest(c->r, c->o, &c->o->cut, &BOUND_INF, i0, c->r->sn, 1);
  }
  return err;
}

/* ---- public ---- */

kith_err kith_recon_initiate(kith_recon *r, uint8_t **msg, size_t *len) {
  out o;
  if (r == NULL || msg == NULL || len == NULL)
    return KITH_ERR_ARG;
  *msg = NULL;
  *len = 0;
  kith_err err = step_begin(r);
  if (err != KITH_OK)
    return err;
  session_begin(r);
  out_init(&o);
  if (r->sn <= KITH_RECON_LEAF)
    err = emit_all(r, &o, &BOUND_MIN, &BOUND_INF, 0, r->sn, MODE_IDS, NULL);
  else
    err = emit_children(r, &o, &BOUND_MIN, &BOUND_INF, 0, r->sn,
                        KITH_RECON_BRANCH);
  if (err != KITH_OK) {
    out_clear(&o);
    r->active = 0;
    return err;
  }
  return out_finish(&o, 1, msg, len);
}

kith_err kith_recon_step(kith_recon *r, const uint8_t *msg, size_t len,
                         uint8_t **reply, size_t *reply_len,
                         GByteArray *have_ids, GByteArray *need_ids) {
  parsed m;
  out o;
  if (r == NULL || reply == NULL || reply_len == NULL)
    return KITH_ERR_ARG;
  *reply = NULL;
  *reply_len = 0;
  kith_err err = parse(r, msg, len, &m);
  if (err == KITH_OK)
    err = step_begin(r);
  if (err == KITH_OK)
    err = locate(r, &m);
  if (err != KITH_OK) {
    parsed_clear(&m);
    return err;
  }
  if (m.start)
    session_begin(r);
  out_init(&o);
  ctx c = {r, &o, &m, have_ids, need_ids, KITH_RECON_BRANCH};
  err = answer(&c);
  if (err == KITH_OK)
    err = out_finish(&o, 0, reply, reply_len);
  else
    out_clear(&o);
  parsed_clear(&m);
  return err;
}
