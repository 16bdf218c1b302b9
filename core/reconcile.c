/* kith: range-based set reconciliation (see reconcile.h).
 *
 * Wire format: one msgpack array [version, key, range...] where key is the
 * 16-byte session key in the first message of a reconciliation and nil in
 * the others. Each range is a flat run of fields: tag (mode | PREFIX |
 * INF | COARSE), then unless INF the upper bound as the timestamp delta
 * from the previous bound (in units of COARSE_MS with COARSE) and, with
 * PREFIX, the shortest id prefix that separates it (no trailing zero
 * byte); then the payload of the mode:
 *   SKIP   -
 *   DIGEST count, sum of keyed 32-bit hashes mod 2^32
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
#define VERSION 1
/* Room kept free in every message for its header and a final range. */
#define MSG_RESERVE 160

enum { MODE_SKIP = 0, MODE_DIGEST = 1, MODE_IDS = 2, MODE_DONE = 3 };
#define TAG_MODE 7u
#define TAG_PREFIX 8u
#define TAG_INF 16u
#define TAG_COARSE 32u /* ts_delta counts COARSE_MS */
#define COARSE_MS 1024u

typedef struct item {
  uint64_t ts;
  uint8_t id[ID_LEN];
} item;

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

struct kith_recon {
  item *items; /* [0, sn) sorted snapshot, [sn, n) added since */
  size_t n, cap, sn;
  idtab index; /* every item, by id */
  uint8_t tabkey[KEY_LEN];
  uint32_t *psum; /* psum[i] = sum of fingerprint hashes of items[0..i) */
  uint32_t *h;    /* fingerprint hash of each snapshot item */
  uint8_t key[KEY_LEN];
  int active;
  GByteArray *rep; /* ids reported in this reconciliation */
  idtab repidx;
};

/* ---- id tables ---- */

/* The keyed hash of an id: SipHash-2-4 (crypto_shorthash), its 8 output
 * bytes read as a little-endian integer, whatever the host's byte order
 * and word size. Fingerprints on the wire are sums of these. */
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
static const uint8_t *item_ids(const kith_recon *r) {
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

static int item_vs_bound(const item *it, const bound *b) {
  if (b->inf)
    return -1;
  if (it->ts != b->ts)
    return it->ts < b->ts ? -1 : 1;
  return memcmp(it->id, b->id, ID_LEN);
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

/* First snapshot index whose item is >= b. */
static size_t lower_idx(const kith_recon *r, const bound *b) {
  size_t lo = 0, hi = r->sn;
  if (b->inf)
    return r->sn;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (item_vs_bound(&r->items[mid], b) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* ---- the item set ---- */

kith_recon *kith_recon_new(void) {
  kith_recon *r = g_new0(kith_recon, 1);
  randombytes_buf(r->tabkey, sizeof r->tabkey);
  r->rep = g_byte_array_new();
  return r;
}

void kith_recon_free(kith_recon *r) {
  if (r == NULL)
    return;
  g_free(r->items);
  tab_clear(&r->index);
  g_free(r->psum);
  g_free(r->h);
  g_byte_array_unref(r->rep);
  tab_clear(&r->repidx);
  g_free(r);
}

size_t kith_recon_size(const kith_recon *r) {
  return r->n;
}

kith_err kith_recon_add(kith_recon *r, uint64_t ts_ms, const uint8_t id[32]) {
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

/* Sorts the items added since the last snapshot into the sorted part. */
static kith_err merge_pending(kith_recon *r) {
  size_t a = r->sn, n = r->n;
  if (a == n)
    return KITH_OK;
  qsort(r->items + a, n - a, sizeof(item), item_cmp);
  if (a > 0) {
    item *m = g_try_new(item, r->cap);
    if (m == NULL)
      return KITH_ERR_NOMEM;
    size_t i = 0, j = a, k = 0;
    while (i < a || j < n)
      m[k++] = (j == n || (i < a && item_cmp(&r->items[i], &r->items[j]) < 0))
                   ? r->items[i++]
                   : r->items[j++];
    g_free(r->items);
    r->items = m;
  }
  tab_clear(&r->index);
  return tab_reserve(&r->index, r->tabkey, item_ids(r), sizeof(item), n, n);
}

/* Starts a reconciliation: snapshot of every item, hashes under key. */
static kith_err snapshot(kith_recon *r, const uint8_t key[KEY_LEN]) {
  kith_err err = merge_pending(r);
  if (err != KITH_OK)
    return err;
  uint32_t *psum = g_try_new(uint32_t, r->n + 1);
  uint32_t *h = g_try_new(uint32_t, r->n + 1);
  if (psum == NULL || h == NULL) {
    g_free(psum);
    g_free(h);
    return KITH_ERR_NOMEM;
  }
  g_free(r->psum);
  g_free(r->h);
  r->psum = psum;
  r->h = h;
  r->sn = r->n;
  memcpy(r->key, key, KEY_LEN);
  psum[0] = 0;
  for (size_t i = 0; i < r->n; i++) {
    h[i] = (uint32_t)id_hash(key, r->items[i].id);
    psum[i + 1] = psum[i] + h[i];
  }
  g_byte_array_set_size(r->rep, 0);
  tab_clear(&r->repidx);
  r->active = 1;
  return KITH_OK;
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

static int has_id(const kith_recon *r, const uint8_t *id) {
  return tab_find(&r->index, r->tabkey, item_ids(r), sizeof(item), id) !=
         SIZE_MAX;
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
  uint8_t key[KEY_LEN];
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

/* Our items in each range, and the DONE bitmaps checked against them. */
static kith_err locate(const kith_recon *r, parsed *m) {
  size_t i0 = 0;
  for (guint k = 0; k < m->ranges->len; k++) {
    prange *pr = &g_array_index(m->ranges, prange, k);
    pr->i0 = i0;
    pr->i1 = i0 = lower_idx(r, &pr->b);
    size_t n = pr->i1 - pr->i0;
    if (pr->mode != MODE_DONE || pr->nbits == 0)
      continue;
    if (pr->nbits != (n + 7) / 8 ||
        (n % 8 != 0 && (pr->bits[pr->nbits - 1] >> (n % 8)) != 0))
      return KITH_ERR_DECODE;
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
  m->idbuf = g_byte_array_new();
  m->start = 0;
  if (msg == NULL || len == 0 || len > KITH_RECON_MAX_MSG ||
      kith_codec_unpack(msg, len, &m->u) != KITH_OK ||
      kith_codec_array(top, UINT32_MAX, NULL) != KITH_OK ||
      top->via.array.size < 2)
    return KITH_ERR_DECODE;
  cursor c = {top->via.array.ptr, top->via.array.size, 0};
  uint64_t ver;
  const msgpack_object *key;
  if (next_uint(&c, UINT64_MAX, &ver) != KITH_OK || ver != VERSION)
    return KITH_ERR_DECODE;
  key = next_field(&c);
  if (key->type != MSGPACK_OBJECT_NIL) {
    if (kith_codec_bin_fixed(key, m->key, KEY_LEN) != KITH_OK)
      return KITH_ERR_DECODE;
    m->start = 1;
  } else if (!r->active) {
    return KITH_ERR_DECODE;
  }
  if (parse_ranges(r, &c, m) != KITH_OK)
    return KITH_ERR_DECODE;
  return m->start ? KITH_OK : locate(r, m);
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

static kith_err out_finish(out *o, const uint8_t *key, uint8_t **msg,
                           size_t *len) {
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
    if (key != NULL)
      kith_pack_bin(&p, key, KEY_LEN);
    else
      kith_pack_nil(&p);
    append_raw(&p, &o->body);
    err = kith_pack_take(&p, msg, len);
  }
  out_clear(o);
  return err;
}

static void emit_digest(const kith_recon *r, out *o, const bound *lo,
                        const bound *hi, size_t i0, size_t i1, int force) {
  kith_pack_uint(&o->tmp, i1 - i0);
  kith_pack_uint(&o->tmp, (uint32_t)(r->psum[i1] - r->psum[i0]));
  o->tmpfields += 2;
  out_commit(o, lo, hi, MODE_DIGEST, force);
}

/* Splits our items [i0, i1) into nb ranges of equal counts, with digests. */
static void emit_children(const kith_recon *r, out *o, const bound *lo,
                          const bound *hi, size_t i0, size_t i1, size_t nb) {
  size_t n = i1 - i0;
  bound a = *lo, b;
  /* Never more parts than items: an empty part would have no item to
   * place its bound after. */
  if (nb > n)
    nb = n ? n : 1;
  for (size_t j = 0; j < nb; j++) {
    size_t s = i0 + n * j / nb, e = i0 + n * (j + 1) / nb;
    if (j + 1 == nb)
      b = *hi;
    else
      bound_between(&r->items[e - 1], &r->items[e], a.ts, &b);
    emit_digest(r, o, &a, &b, s, e, 0);
    a = b;
  }
}

/* Ranges of mode IDS or DONE over [lo, hi) carrying our items sel[0..k)
 * (snapshot indices, increasing, all below i1), at most KITH_RECON_CHUNK
 * per range. bits (nbits bytes, DONE only) goes with a single range. A
 * DONE without bitmap starts where the message's last range ended: what
 * lies between is settled, and a DONE over settled items says nothing
 * more, so no SKIP range is needed before it. */
static void emit_chunks(const kith_recon *r, out *o, const bound *lo,
                        const bound *hi, const size_t *sel, size_t k,
                        unsigned mode, const uint8_t *bits, size_t nbits) {
  bound a = mode == MODE_DONE && nbits == 0 && !o->full ? o->last : *lo, b;
  size_t j = 0;
  do {
    size_t e = MIN(k, j + KITH_RECON_CHUNK);
    if (e == k)
      b = *hi;
    else
      bound_between(&r->items[sel[e - 1]], &r->items[sel[e - 1] + 1], a.ts, &b);
    if (mode == MODE_DONE) {
      kith_pack_bin(&o->tmp, bits, e == k && j == 0 ? nbits : 0);
      o->tmpfields++;
    }
    kith_pack_array(&o->tmp, (uint32_t)(e - j));
    for (size_t i = j; i < e; i++)
      kith_pack_bin(&o->tmp, r->items[sel[i]].id, ID_LEN);
    o->tmpfields++;
    out_commit(o, &a, &b, mode, 0);
    a = b;
    j = e;
  } while (j < k);
}

static size_t *range_indices(size_t i0, size_t i1) {
  size_t *sel = g_new(size_t, i1 - i0 + 1);
  for (size_t i = i0; i < i1; i++)
    sel[i - i0] = i;
  return sel;
}

/* ---- answering each range ---- */

typedef struct ctx {
  kith_recon *r;
  out *o;
  const parsed *m;
  GByteArray *have, *need;
  size_t branch; /* parts a differing range is split into */
} ctx;

static size_t find_hash(const kith_recon *r, size_t i0, size_t i1, uint32_t v) {
  for (size_t i = i0; i < i1; i++)
    if (r->h[i] == v)
      return i;
  return SIZE_MAX;
}

static kith_err on_digest(ctx *c, const bound *lo, const prange *p) {
  kith_recon *r = c->r;
  size_t i0 = p->i0, i1 = p->i1, n = i1 - i0;
  uint32_t sum = r->psum[i1] - r->psum[i0];
  if (n == p->count && sum == p->sum)
    return KITH_OK;
  if (n == p->count + 1) {
    /* One item more than the peer: if its hash is the difference of the
     * sums, it is (with probability 1 - n / 2^32) the only difference. A
     * wrong guess (or sums equal by chance) only leaves a difference to
     * the next reconciliation, which draws a new key. */
    size_t x = find_hash(r, i0, i1, sum - (uint32_t)p->sum);
    if (x != SIZE_MAX) {
      emit_chunks(r, c->o, lo, &p->b, &x, 1, MODE_DONE, NULL, 0);
      return report(r, c->have, r->items[x].id);
    }
  }
  if (p->count == n + 1) { /* the peer can do the same: send our digest */
    emit_digest(r, c->o, lo, &p->b, i0, i1, 0);
  } else if (p->count == 0) { /* the peer has none: everything goes */
    size_t *sel = range_indices(i0, i1);
    emit_chunks(r, c->o, lo, &p->b, sel, n, MODE_DONE, NULL, 0);
    g_free(sel);
    for (size_t i = i0; i < i1; i++) {
      kith_err err = report(r, c->have, r->items[i].id);
      if (err != KITH_OK)
        return err;
    }
  } else if (n <= KITH_RECON_LEAF) {
    size_t *sel = range_indices(i0, i1);
    emit_chunks(r, c->o, lo, &p->b, sel, n, MODE_IDS, NULL, 0);
    g_free(sel);
  } else {
    emit_children(r, c->o, lo, &p->b, i0, i1, MIN(n, c->branch));
  }
  return KITH_OK;
}

/* The peer's complete list for the range: now we know both directions. */
static kith_err on_ids(ctx *c, const bound *lo, const prange *p) {
  kith_recon *r = c->r;
  const uint8_t *theirs = c->m->idbuf->data + p->ids * ID_LEN;
  size_t nbits = (p->nids + 7) / 8, k = 0, lacked = 0;
  uint8_t *bits = g_malloc0(nbits + 1);
  size_t *sel = g_new(size_t, p->i1 - p->i0 + 1);
  idtab t = {0};
  kith_err err = tab_reserve(&t, r->tabkey, theirs, ID_LEN, p->nids, 0);
  for (size_t i = 0; err == KITH_OK && i < p->nids; i++) {
    tab_put(&t, r->tabkey, theirs, ID_LEN, i);
    if (!has_id(r, theirs + i * ID_LEN)) {
      bits[i / 8] |= (uint8_t)(1u << (i % 8));
      lacked++;
      err = report(r, c->need, theirs + i * ID_LEN);
    }
  }
  for (size_t i = p->i0; err == KITH_OK && i < p->i1; i++) {
    if (tab_find(&t, r->tabkey, theirs, ID_LEN, r->items[i].id) != SIZE_MAX)
      continue;
    sel[k++] = i;
    err = report(r, c->have, r->items[i].id);
  }
  if (err == KITH_OK && (k > 0 || lacked > 0)) {
    if (k <= KITH_RECON_CHUNK || lacked == 0) {
      emit_chunks(r, c->o, lo, &p->b, sel, k, MODE_DONE, bits,
                  lacked ? nbits : 0);
    } else { /* too many for one DONE: the peer answers our list instead */
      size_t *all = range_indices(p->i0, p->i1);
      emit_chunks(r, c->o, lo, &p->b, all, p->i1 - p->i0, MODE_IDS, NULL, 0);
      g_free(all);
    }
  }
  tab_clear(&t);
  g_free(sel);
  g_free(bits);
  return err;
}

static kith_err on_done(ctx *c, const prange *p) {
  kith_recon *r = c->r;
  const uint8_t *theirs = c->m->idbuf->data + p->ids * ID_LEN;
  kith_err err = KITH_OK;
  for (size_t i = 0; err == KITH_OK && i < p->nbits * 8; i++)
    if (p->bits[i / 8] & (1u << (i % 8)))
      err = report(r, c->have, r->items[p->i0 + i].id);
  for (size_t i = 0; err == KITH_OK && i < p->nids; i++)
    if (!has_id(r, theirs + i * ID_LEN))
      err = report(r, c->need, theirs + i * ID_LEN);
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
static size_t branching(const kith_recon *r, const parsed *m) {
  size_t nd = 0, diff = 0, apart = 0;
  for (guint k = 0; k < m->ranges->len; k++) {
    const prange *p = &g_array_index(m->ranges, prange, k);
    size_t n = p->i1 - p->i0;
    if (p->mode != MODE_DIGEST)
      continue;
    nd++;
    if (n == p->count && (uint32_t)(r->psum[p->i1] - r->psum[p->i0]) == p->sum)
      continue;
    diff++;
    apart += n > p->count ? n - p->count : p->count - n;
  }
  if (diff * 10 > nd * 9)
    return apart >= 4 * diff ? KITH_RECON_BRANCH : KITH_RECON_BRANCH / 2;
  return diff * 2 > nd ? KITH_RECON_BRANCH / 2 : KITH_RECON_BRANCH / 4;
}

static kith_err answer(ctx *c) {
  bound lo = BOUND_MIN;
  kith_err err = KITH_OK;
  c->branch = branching(c->r, c->m);
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
    size_t i0 = lower_idx(c->r, &c->o->cut);
    emit_digest(c->r, c->o, &c->o->cut, &BOUND_INF, i0, c->r->sn, 1);
  }
  return err;
}

/* ---- public ---- */

kith_err kith_recon_initiate(kith_recon *r, uint8_t **msg, size_t *len) {
  uint8_t key[KEY_LEN];
  out o;
  if (r == NULL || msg == NULL || len == NULL)
    return KITH_ERR_ARG;
  *msg = NULL;
  *len = 0;
  randombytes_buf(key, sizeof key);
  kith_err err = snapshot(r, key);
  if (err != KITH_OK)
    return err;
  out_init(&o);
  if (r->sn <= KITH_RECON_LEAF) {
    size_t *sel = range_indices(0, r->sn);
    emit_chunks(r, &o, &BOUND_MIN, &BOUND_INF, sel, r->sn, MODE_IDS, NULL, 0);
    g_free(sel);
  } else {
    emit_children(r, &o, &BOUND_MIN, &BOUND_INF, 0, r->sn, KITH_RECON_BRANCH);
  }
  return out_finish(&o, key, msg, len);
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
  if (err == KITH_OK && m.start) {
    err = snapshot(r, m.key);
    if (err == KITH_OK)
      err = locate(r, &m);
  }
  if (err != KITH_OK) {
    parsed_clear(&m);
    return err;
  }
  out_init(&o);
  ctx c = {r, &o, &m, have_ids, need_ids, KITH_RECON_BRANCH};
  err = answer(&c);
  if (err == KITH_OK)
    err = out_finish(&o, NULL, reply, reply_len);
  else
    out_clear(&o);
  parsed_clear(&m);
  return err;
}
