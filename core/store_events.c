/* kith: the store's group data (store.h): events and their derived
 * columns, heads, counts and read markers, epoch secrets, sender chains,
 * and the log. */
#include "store_int.h"

#include <string.h>

/* Texts bind their event, group, sender and time: a sealed text cannot be
 * moved to another row or misattributed by editing the plain columns. */
static void text_ad(ad_buf *ad, const uint8_t *event_id, const uint8_t *gid,
                    const uint8_t *sender, uint64_t ts) {
  kst_ad_init(ad, "texts", "text");
  kst_ad_add(ad, event_id, 32);
  kst_ad_add(ad, gid, 32);
  kst_ad_add(ad, sender, 32);
  kst_ad_add_u64(ad, ts);
}

static int bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n) {
  return p ? sqlite3_bind_blob(st, i, p, (int)n, SQLITE_STATIC)
           : sqlite3_bind_null(st, i);
}

static kith_err id_row(kith_store *s, sqlite3_stmt *st, void *ctx);

/* ---- groups ---- */

kith_err kith_store_get_group(kith_store *s, const uint8_t gid[32],
                              kith_store_group *out) {
  if (!s || !gid || !out)
    return KITH_ERR_ARG;
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st = s->st[ST_GET_GROUP];
  int rc = sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(st);
  kith_err err = KITH_OK;
  if (rc == SQLITE_ROW) {
    sqlite3_int64 n = sqlite3_column_int64(st, 0);
    out->n_events = n > 0 ? (uint64_t)n : 0;
    const uint8_t *rid = kst_col_fixed(st, 2, 32);
    if (rid && sqlite3_column_type(st, 1) == SQLITE_INTEGER) {
      out->has_read = 1;
      out->read_ts = kst_u64_from_db(sqlite3_column_int64(st, 1));
      memcpy(out->read_id, rid, 32);
    }
  } else {
    err = rc == SQLITE_DONE ? KITH_ERR_NOT_FOUND : kst_map_rc(rc);
  }
  kst_unbind(st);
  return err;
}

kith_err kith_store_set_count(kith_store *s, const uint8_t gid[32],
                              uint64_t n_events) {
  if (!s || !gid)
    return KITH_ERR_ARG;
  sqlite3_stmt *st = s->st[ST_SET_COUNT];
  int rc = sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC);
  rc = kst_first_rc(rc, sqlite3_bind_int64(st, 2, (sqlite3_int64)n_events));
  return kst_write_one(s, st, rc);
}

kith_err kith_store_set_read(kith_store *s, const uint8_t gid[32], uint64_t ts,
                             const uint8_t id[32]) {
  if (!s || !gid || !id)
    return KITH_ERR_ARG;
  sqlite3_stmt *st = s->st[ST_SET_READ];
  int rc = sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC);
  rc = kst_first_rc(rc, sqlite3_bind_int64(st, 2, kst_u64_to_db(ts)));
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 3, id, 32, SQLITE_STATIC));
  return kst_write_one(s, st, rc);
}

kith_err kith_store_drop_group(kith_store *s, const uint8_t gid[32]) {
  static const int stmts[] = {ST_DROP_EVENTS, ST_DROP_HEADS, ST_DROP_SECRETS,
                              ST_DROP_CHAINS, ST_DROP_GROUP};
  if (!s || !gid)
    return KITH_ERR_ARG;
  kith_err err = kst_begin(s);
  for (size_t i = 0; err == KITH_OK && i < G_N_ELEMENTS(stmts); i++) {
    sqlite3_stmt *st = s->st[stmts[i]];
    int rc = sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC);
    err = rc == SQLITE_OK ? kst_run(st) : kst_map_rc(rc);
    if (rc != SQLITE_OK)
      kst_unbind(st);
  }
  return kst_finish(s, err);
}

/* ---- events ---- */

static uint8_t *pack_cs(const uint32_t *cs, uint32_t n, size_t *len) {
  *len = 4 * (size_t)n;
  uint8_t *out = g_malloc(*len ? *len : 1);
  for (uint32_t i = 0; i < n; i++)
    for (int b = 0; b < 4; b++)
      out[4 * i + b] = (uint8_t)(cs[i] >> (8 * b));
  return out;
}

static int unpack_cs(const uint8_t *p, size_t len, uint32_t **cs, uint32_t *n) {
  if (len % 4 != 0 || len / 4 > 65536)
    return 0;
  *n = (uint32_t)(len / 4);
  *cs = g_new(uint32_t, *n ? *n : 1);
  for (uint32_t i = 0; i < *n; i++)
    (*cs)[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
               (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
  return 1;
}

static kith_err insert_row(kith_store *s, const kith_store_row *r) {
  const kith_event *ev = r->ev;
  sqlite3_stmt *st = s->st[r->convert ? ST_CONVERT_EVENT : ST_PUT_EVENT];
  size_t cf_len;
  uint8_t *cf = pack_cs(r->cf, r->n_cf, &cf_len);
  uint8_t *sealed = NULL;
  int sealed_len = 0;
  if (r->text) {
    ad_buf ad;
    text_ad(&ad, ev->id, ev->group_id, ev->author, ev->ts_ms);
    sealed = kst_seal(s, &ad, r->text, r->text_len, &sealed_len);
  }
  int rc = sqlite3_bind_blob(st, 1, ev->id, 32, SQLITE_STATIC);
  rc = kst_first_rc(rc,
                    sqlite3_bind_blob(st, 2, ev->group_id, 32, SQLITE_STATIC));
  rc = kst_first_rc(rc, sqlite3_bind_int64(st, 3, kst_u64_to_db(ev->depth)));
  rc = kst_first_rc(rc, sqlite3_bind_int64(st, 4, ev->kind));
  rc =
      kst_first_rc(rc, sqlite3_bind_blob(st, 5, ev->author, 32, SQLITE_STATIC));
  rc = kst_first_rc(rc, sqlite3_bind_int64(st, 6, kst_u64_to_db(ev->ts_ms)));
  rc = kst_first_rc(
      rc, sqlite3_bind_blob(st, 7, ev->raw, (int)ev->raw_len, SQLITE_STATIC));
  rc = kst_first_rc(rc, r->cseq == UINT32_MAX
                            ? sqlite3_bind_null(st, 8)
                            : sqlite3_bind_int64(st, 8, r->cseq));
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 9, cf, (int)cf_len, g_free));
  rc = kst_first_rc(rc, bind_blob(st, 10, r->facts, r->facts_len));
  rc = kst_first_rc(
      rc, sealed ? sqlite3_bind_blob(st, 11, sealed, sealed_len, g_free)
                 : sqlite3_bind_null(st, 11));
  rc = kst_first_rc(rc, bind_blob(st, 12, r->ref, 32));
  rc = kst_first_rc(rc, sqlite3_bind_int(st, 13, r->flag));
  if (rc != SQLITE_OK) {
    kst_unbind(st);
    return kst_map_rc(rc);
  }
  kith_err err = kst_run(st);
  if (err == KITH_OK && sqlite3_changes(s->db) == 0)
    err = r->convert ? KITH_ERR_NOT_FOUND : KITH_ERR_DUPLICATE;
  return err;
}

static kith_err head_write(kith_store *s, int stmt, const uint8_t *gid,
                           const uint8_t *id) {
  sqlite3_stmt *st = s->st[stmt];
  int rc = sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC);
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 2, id, 32, SQLITE_STATIC));
  if (rc != SQLITE_OK) {
    kst_unbind(st);
    return kst_map_rc(rc);
  }
  return kst_run(st);
}

kith_err kith_store_put_event(kith_store *s, const kith_store_row *r) {
  if (!s || !r || !r->ev || !r->ev->raw || r->ev->raw_len == 0)
    return KITH_ERR_ARG;
  if (r->ev->raw_len > KITH_EVENT_MAX || (r->text && r->text_len > MAX_TEXT) ||
      r->facts_len > MAX_BLOB)
    return KITH_ERR_LIMIT;
  kith_err err = kst_begin(s);
  if (err == KITH_OK)
    err = insert_row(s, r);
  return kst_finish(s, err);
}

kith_err kith_store_set_heads(kith_store *s, const uint8_t gid[32],
                              const uint8_t *ids, size_t n) {
  if (!s || !gid || (!ids && n))
    return KITH_ERR_ARG;
  kith_err err = kst_begin(s);
  sqlite3_stmt *st = s->st[ST_DROP_HEADS_OF];
  if (err == KITH_OK) {
    int rc = sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC);
    err = rc == SQLITE_OK ? kst_run(st) : kst_map_rc(rc);
    if (rc != SQLITE_OK)
      kst_unbind(st);
  }
  for (size_t i = 0; err == KITH_OK && i < n; i++)
    err = head_write(s, ST_PUT_HEAD, gid, ids + 32 * i);
  return kst_finish(s, err);
}

void kith_store_sum_clear(kith_store_sum *s) {
  g_free(s->cf);
  memset(s, 0, sizeof *s);
}

kith_err kith_store_get_summary(kith_store *s, const uint8_t gid[32],
                                const uint8_t id[32], kith_store_sum *out) {
  if (!s || !gid || !id || !out)
    return KITH_ERR_ARG;
  memset(out, 0, sizeof *out);
  sqlite3_stmt *st = s->st[ST_GET_SUMMARY];
  int rc = sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC);
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 2, gid, 32, SQLITE_STATIC));
  if (rc == SQLITE_OK)
    rc = sqlite3_step(st);
  kith_err err = KITH_OK;
  if (rc == SQLITE_ROW) {
    const uint8_t *author = kst_col_fixed(st, 3, 32);
    out->depth = kst_u64_from_db(sqlite3_column_int64(st, 0));
    out->ts = kst_u64_from_db(sqlite3_column_int64(st, 1));
    out->kind = (uint32_t)sqlite3_column_int64(st, 2);
    out->cseq = sqlite3_column_type(st, 4) == SQLITE_NULL
                    ? UINT32_MAX
                    : (uint32_t)sqlite3_column_int64(st, 4);
    const uint8_t *cf = sqlite3_column_blob(st, 5);
    size_t cf_len = (size_t)sqlite3_column_bytes(st, 5);
    if (!author ||
        (out->cseq == UINT32_MAX && !unpack_cs(cf ? cf : (const uint8_t *)"",
                                               cf_len, &out->cf, &out->n_cf)))
      err = KITH_ERR_IO;
    else
      memcpy(out->author, author, 32);
  } else {
    err = rc == SQLITE_DONE ? KITH_ERR_NOT_FOUND : kst_map_rc(rc);
  }
  kst_unbind(st);
  if (err != KITH_OK)
    kith_store_sum_clear(out);
  return err;
}

kith_err kith_store_get_raw(kith_store *s, const uint8_t gid[32],
                            const uint8_t id[32], GBytes **out) {
  if (!s || !gid || !id || !out)
    return KITH_ERR_ARG;
  sqlite3_stmt *st = s->st[ST_GET_RAW];
  int rc = sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC);
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 2, gid, 32, SQLITE_STATIC));
  if (rc == SQLITE_OK)
    rc = sqlite3_step(st);
  kith_err err = KITH_OK;
  if (rc == SQLITE_ROW) {
    const void *raw = sqlite3_column_blob(st, 0);
    size_t len = (size_t)sqlite3_column_bytes(st, 0);
    if (!raw || len == 0 || len > KITH_EVENT_MAX)
      err = KITH_ERR_IO;
    else
      *out = g_bytes_new(raw, len);
  } else {
    err = rc == SQLITE_DONE ? KITH_ERR_NOT_FOUND : kst_map_rc(rc);
  }
  kst_unbind(st);
  return err;
}

typedef struct ctl_ctx {
  kith_store_ctl_fn fn;
  void *ctx;
} ctl_ctx;

static kith_err control_row(kith_store *s, sqlite3_stmt *st, void *vctx) {
  ctl_ctx *c = vctx;
  kith_store_ctl r = {.raw = sqlite3_column_blob(st, 0),
                      .len = (size_t)sqlite3_column_bytes(st, 0),
                      .facts = sqlite3_column_blob(st, 3),
                      .facts_len = (size_t)sqlite3_column_bytes(st, 3)};
  sqlite3_int64 cseq = sqlite3_column_int64(st, 1);
  const uint8_t *pf = sqlite3_column_blob(st, 2);
  size_t pf_len = (size_t)sqlite3_column_bytes(st, 2);
  const uint8_t *id = kst_col_fixed(st, 5, 32), *gid = kst_col_fixed(st, 6, 32);
  const uint8_t *author = kst_col_fixed(st, 7, 32);
  uint32_t *cs = NULL;
  if (!r.raw || r.len == 0 || r.len > KITH_EVENT_MAX || cseq < 0 ||
      cseq >= UINT32_MAX || !id || !gid || !author ||
      !unpack_cs(pf ? pf : (const uint8_t *)"", pf_len, &cs, &r.n_pf))
    return KITH_ERR_IO;
  r.cseq = (uint32_t)cseq;
  r.pf = cs;
  size_t cap = (size_t)sqlite3_column_bytes(st, 4);
  uint8_t *note = cap > SEAL_OVERHEAD ? g_malloc(cap) : NULL;
  ad_buf ad;
  text_ad(&ad, id, gid, author, kst_u64_from_db(sqlite3_column_int64(st, 8)));
  kith_err err =
      note ? kst_unseal(s, &ad, st, 4, note, cap, &r.note_len) : KITH_ERR_IO;
  r.note = note;
  if (err == KITH_OK)
    err = c->fn(c->ctx, &r);
  if (note)
    sodium_memzero(note, cap);
  g_free(note);
  g_free(cs);
  return err;
}

kith_err kith_store_load_controls(kith_store *s, const uint8_t gid[32],
                                  kith_store_ctl_fn fn, void *ctx) {
  if (!s || !gid || !fn)
    return KITH_ERR_ARG;
  ctl_ctx c = {fn, ctx};
  sqlite3_stmt *st = s->st[ST_LOAD_CONTROLS];
  return kst_each_row(s, st, sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC),
                      control_row, &c);
}

static kith_err id_row(kith_store *s, sqlite3_stmt *st, void *ctx) {
  const uint8_t *id = kst_col_fixed(st, 0, 32);
  if (!id)
    return KITH_ERR_IO;
  g_byte_array_append(ctx, id, 32);
  return KITH_OK;
}

kith_err kith_store_load_heads(kith_store *s, const uint8_t gid[32],
                               GByteArray *ids) {
  if (!s || !gid || !ids)
    return KITH_ERR_ARG;
  sqlite3_stmt *st = s->st[ST_LOAD_HEADS];
  return kst_each_row(s, st, sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC),
                      id_row, ids);
}

static kith_err raw_row(kith_store *s, sqlite3_stmt *st, void *ctx) {
  const void *raw = sqlite3_column_blob(st, 0);
  size_t len = (size_t)sqlite3_column_bytes(st, 0);
  if (!raw || len == 0 || len > KITH_EVENT_MAX)
    return KITH_ERR_IO;
  g_ptr_array_add(ctx, g_bytes_new(raw, len));
  return KITH_OK;
}

kith_err kith_store_load_old(kith_store *s, const uint8_t gid[32],
                             GPtrArray *out) {
  if (!s || !gid || !out)
    return KITH_ERR_ARG;
  sqlite3_stmt *st = s->st[ST_LOAD_OLD];
  return kst_each_row(s, st, sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC),
                      raw_row, out);
}

kith_err kith_store_find_range(kith_store *s, const uint8_t gid[32],
                               const uint8_t lo[32], const uint8_t hi[32],
                               GByteArray *out) {
  if (!s || !gid || !lo || !hi || !out)
    return KITH_ERR_ARG;
  sqlite3_stmt *st = s->st[ST_FIND_RANGE];
  int rc = sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC);
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 2, lo, 32, SQLITE_STATIC));
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 3, hi, 32, SQLITE_STATIC));
  return kst_each_row(s, st, rc, id_row, out);
}

typedef struct each_ctx {
  kith_store_id_fn fn;
  void *ctx;
} each_ctx;

static kith_err each_id_row(kith_store *s, sqlite3_stmt *st, void *vctx) {
  each_ctx *c = vctx;
  const uint8_t *id = kst_col_fixed(st, 1, 32);
  if (!id)
    return KITH_ERR_IO;
  c->fn(c->ctx, kst_u64_from_db(sqlite3_column_int64(st, 0)), id);
  return KITH_OK;
}

kith_err kith_store_each_id(kith_store *s, const uint8_t gid[32],
                            kith_store_id_fn fn, void *ctx) {
  if (!s || !gid || !fn)
    return KITH_ERR_ARG;
  each_ctx c = {fn, ctx};
  sqlite3_stmt *st = s->st[ST_EACH_ID];
  return kst_each_row(s, st, sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC),
                      each_id_row, &c);
}

kith_err kith_store_scan_ids(kith_store *s, const uint8_t gid[32], uint64_t ts,
                             const uint8_t id[32], size_t max,
                             kith_store_id_fn fn, void *ctx) {
  if (!s || !gid || !id || !fn)
    return KITH_ERR_ARG;
  each_ctx c = {fn, ctx};
  sqlite3_stmt *st = s->st[ST_SCAN_IDS];
  int rc = sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC);
  rc = kst_first_rc(rc, sqlite3_bind_int64(st, 2, kst_u64_to_db(ts)));
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 3, id, 32, SQLITE_STATIC));
  rc = kst_first_rc(
      rc, sqlite3_bind_int64(st, 4, (sqlite3_int64)MIN(max, MAX_ROWS)));
  return kst_each_row(s, st, rc, each_id_row, &c);
}

kith_err kith_store_ids_by_prefix(kith_store *s, const uint8_t gid[32],
                                  const uint8_t *prefix, size_t plen,
                                  size_t max, kith_store_id_fn fn, void *ctx) {
  uint8_t lo[32] = {0}, hi[32];
  if (!s || !gid || !prefix || plen > 32 || !fn)
    return KITH_ERR_ARG;
  memset(hi, 0xff, sizeof hi);
  memcpy(lo, prefix, plen);
  memcpy(hi, prefix, plen);
  each_ctx c = {fn, ctx};
  sqlite3_stmt *st = s->st[ST_IDS_BY_PREFIX];
  int rc = sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC);
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 2, lo, 32, SQLITE_TRANSIENT));
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 3, hi, 32, SQLITE_TRANSIENT));
  rc = kst_first_rc(
      rc, sqlite3_bind_int64(st, 4, (sqlite3_int64)MIN(max, MAX_ROWS)));
  return kst_each_row(s, st, rc, each_id_row, &c);
}

kith_err kith_store_has_id(kith_store *s, const uint8_t gid[32],
                           const uint8_t id[32], kith_store_id_fn fn,
                           void *ctx) {
  if (!s || !gid || !id || !fn)
    return KITH_ERR_ARG;
  each_ctx c = {fn, ctx};
  sqlite3_stmt *st = s->st[ST_HAS_ID];
  int rc = sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC);
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 2, id, 32, SQLITE_STATIC));
  return kst_each_row(s, st, rc, each_id_row, &c);
}

/* ---- the log ---- */

void kith_store_item_free(kith_store_item *it) {
  if (!it)
    return;
  if (it->text)
    sodium_memzero(it->text, it->text_len);
  g_free(it->text);
  g_free(it);
}

typedef struct item_ctx {
  const uint8_t *gid;
  GPtrArray *out;
} item_ctx;

/* A row of ITEM_COLS: id, author, ts, kind, text, ref, flag, depth. */
static kith_err item_row(kith_store *s, sqlite3_stmt *st, void *vctx) {
  item_ctx *c = vctx;
  const uint8_t *id = kst_col_fixed(st, 0, 32);
  const uint8_t *author = kst_col_fixed(st, 1, 32);
  const uint8_t *ref = kst_col_fixed(st, 5, 32);
  if (!id || !author)
    return KITH_ERR_IO;
  kith_store_item *it = g_new0(kith_store_item, 1);
  memcpy(it->id, id, 32);
  memcpy(it->author, author, 32);
  it->ts = kst_u64_from_db(sqlite3_column_int64(st, 2));
  it->kind = (uint32_t)sqlite3_column_int64(st, 3);
  it->flag = sqlite3_column_int(st, 6);
  it->depth = kst_u64_from_db(sqlite3_column_int64(st, 7));
  if (ref) {
    memcpy(it->ref, ref, 32);
    it->has_ref = 1;
  }
  kith_err err = KITH_OK;
  if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
    ad_buf ad;
    text_ad(&ad, it->id, c->gid, it->author, it->ts);
    char *text = NULL;
    err = kst_unseal_str(s, &ad, st, 4, MAX_TEXT, &text);
    it->text = (uint8_t *)text;
    if (text) /* a control event's note may hold NULs: its length */
      it->text_len = (size_t)sqlite3_column_bytes(st, 4) - SEAL_OVERHEAD;
  }
  if (err) {
    kith_store_item_free(it);
    return err;
  }
  g_ptr_array_add(c->out, it);
  return KITH_OK;
}

static kith_err list_rows(kith_store *s, sqlite3_stmt *st, int rc,
                          const uint8_t *gid, GPtrArray *out) {
  item_ctx c = {gid, g_ptr_array_new_with_free_func(
                         (GDestroyNotify)kith_store_item_free)};
  kith_err err = kst_each_row(s, st, rc, item_row, &c);
  if (err == KITH_OK)
    g_ptr_array_extend_and_steal(out, c.out);
  else
    g_ptr_array_unref(c.out);
  return err;
}

kith_err kith_store_list_items(kith_store *s, const uint8_t gid[32], size_t n,
                               const uint8_t *before, uint64_t after_ts,
                               const uint8_t *after_id, GPtrArray *out) {
  if (!s || !gid || !out)
    return KITH_ERR_ARG;
  sqlite3_stmt *st = s->st[ST_LIST_LOG];
  sqlite3_int64 limit = n == 0 || n > MAX_ROWS ? MAX_ROWS : (sqlite3_int64)n;
  int rc = sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC);
  rc = kst_first_rc(rc, sqlite3_bind_int64(st, 2, limit));
  rc = kst_first_rc(rc, bind_blob(st, 3, before, 32));
  rc = kst_first_rc(rc, after_id
                            ? sqlite3_bind_int64(st, 4, kst_u64_to_db(after_ts))
                            : sqlite3_bind_null(st, 4));
  rc = kst_first_rc(rc, bind_blob(st, 5, after_id, 32));
  return list_rows(s, st, rc, gid, out);
}

kith_err kith_store_list_related(kith_store *s, const uint8_t gid[32],
                                 const uint8_t target[32], GPtrArray *out) {
  if (!s || !gid || !target || !out)
    return KITH_ERR_ARG;
  sqlite3_stmt *st = s->st[ST_LIST_RELATED];
  int rc = sqlite3_bind_blob(st, 1, target, 32, SQLITE_STATIC);
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 2, gid, 32, SQLITE_STATIC));
  return list_rows(s, st, rc, gid, out);
}

kith_err kith_store_get_item(kith_store *s, const uint8_t gid[32],
                             const uint8_t id[32], kith_store_item **out) {
  if (!s || !gid || !id || !out)
    return KITH_ERR_ARG;
  GPtrArray *one =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_store_item_free);
  sqlite3_stmt *st = s->st[ST_GET_ITEM];
  int rc = sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC);
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 2, gid, 32, SQLITE_STATIC));
  kith_err err = list_rows(s, st, rc, gid, one);
  if (err == KITH_OK && one->len == 0)
    err = KITH_ERR_NOT_FOUND;
  if (err == KITH_OK)
    *out = g_ptr_array_steal_index(one, 0);
  g_ptr_array_unref(one);
  return err;
}

kith_err kith_store_count_after(kith_store *s, const uint8_t gid[32],
                                uint64_t ts, const uint8_t id[32],
                                const uint8_t me[32], uint64_t *n) {
  if (!s || !gid || !id || !me || !n)
    return KITH_ERR_ARG;
  sqlite3_stmt *st = s->st[ST_COUNT_AFTER];
  int rc = sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC);
  rc = kst_first_rc(rc, sqlite3_bind_int64(st, 2, kst_u64_to_db(ts)));
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 3, id, 32, SQLITE_STATIC));
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 4, me, 32, SQLITE_STATIC));
  rc = kst_first_rc(rc, sqlite3_bind_int(st, 5, KITH_STORE_UNREAD_SCAN));
  if (rc == SQLITE_OK)
    rc = sqlite3_step(st);
  kith_err err = rc == SQLITE_ROW ? KITH_OK : kst_map_rc(rc);
  if (rc == SQLITE_ROW)
    *n = (uint64_t)sqlite3_column_int64(st, 0);
  else if (err == KITH_OK)
    err = KITH_ERR_IO;
  kst_unbind(st);
  return err;
}

/* ---- epoch secrets ---- */

static void secret_ad(ad_buf *ad, const uint8_t *gid, uint64_t epoch) {
  kst_ad_init(ad, "secrets", "secret");
  kst_ad_add(ad, gid, 32);
  kst_ad_add_u64(ad, epoch);
}

kith_err kith_store_put_secret(kith_store *s, const uint8_t gid[32],
                               uint64_t epoch, const uint8_t secret[32]) {
  if (!s || !gid || !secret)
    return KITH_ERR_ARG;
  ad_buf ad;
  int sealed_len = 0;
  secret_ad(&ad, gid, epoch);
  uint8_t *sealed = kst_seal(s, &ad, secret, 32, &sealed_len);
  sqlite3_stmt *st = s->st[ST_PUT_SECRET];
  int rc = sqlite3_bind_blob(st, 3, sealed, sealed_len, g_free);
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC));
  rc = kst_first_rc(rc, sqlite3_bind_int64(st, 2, kst_u64_to_db(epoch)));
  return kst_write_one(s, st, rc);
}

typedef struct secret_ctx {
  const uint8_t *gid;
  GByteArray *out;
} secret_ctx;

static kith_err secret_row(kith_store *s, sqlite3_stmt *st, void *vctx) {
  secret_ctx *c = vctx;
  uint8_t block[40];
  size_t len = 0;
  ad_buf ad;
  uint64_t epoch = kst_u64_from_db(sqlite3_column_int64(st, 0));
  secret_ad(&ad, c->gid, epoch);
  kst_put_le64(block, epoch);
  kith_err err = kst_unseal(s, &ad, st, 1, block + 8, 32, &len);
  if (!err && len != 32)
    err = KITH_ERR_CRYPTO;
  if (!err)
    g_byte_array_append(c->out, block, sizeof block);
  sodium_memzero(block, sizeof block);
  return err;
}

kith_err kith_store_load_secrets(kith_store *s, const uint8_t gid[32],
                                 GByteArray *out) {
  if (!s || !gid || !out)
    return KITH_ERR_ARG;
  guint orig = out->len;
  secret_ctx c = {gid, out};
  sqlite3_stmt *st = s->st[ST_LOAD_SECRETS];
  int rc = sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC);
  kith_err err = kst_each_row(s, st, rc, secret_row, &c);
  if (err && out->len > orig) {
    /* Do not leave part of the secrets behind in the caller's buffer. */
    sodium_memzero(out->data + orig, out->len - orig);
    g_byte_array_set_size(out, orig);
  }
  return err;
}

/* ---- sender chains ---- */

static void chain_ad(ad_buf *ad, const uint8_t *gid, const uint8_t k[40]) {
  kst_ad_init(ad, "chains", "state");
  kst_ad_add(ad, gid, 32);
  kst_ad_add(ad, k, 40);
}

kith_err kith_store_put_chain(kith_store *s, const uint8_t gid[32],
                              const uint8_t k[40], const uint8_t *state,
                              size_t len) {
  if (!s || !gid || !k || !state || len > MAX_BLOB)
    return KITH_ERR_ARG;
  ad_buf ad;
  int sealed_len = 0;
  chain_ad(&ad, gid, k);
  uint8_t *sealed = kst_seal(s, &ad, state, len, &sealed_len);
  sqlite3_stmt *st = s->st[ST_PUT_CHAIN];
  int rc = sqlite3_bind_blob(st, 3, sealed, sealed_len, g_free);
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC));
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 2, k, 40, SQLITE_STATIC));
  return kst_write_one(s, st, rc);
}

kith_err kith_store_get_chain(kith_store *s, const uint8_t gid[32],
                              const uint8_t k[40], uint8_t **state,
                              size_t *len) {
  if (!s || !gid || !k || !state || !len)
    return KITH_ERR_ARG;
  sqlite3_stmt *st = s->st[ST_GET_CHAIN];
  int rc = sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC);
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 2, k, 40, SQLITE_STATIC));
  if (rc == SQLITE_OK)
    rc = sqlite3_step(st);
  kith_err err = KITH_OK;
  if (rc == SQLITE_ROW) {
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    ad_buf ad;
    chain_ad(&ad, gid, k);
    *state = n > SEAL_OVERHEAD && n <= MAX_BLOB ? g_malloc(n) : NULL;
    err = *state ? kst_unseal(s, &ad, st, 0, *state, n, len) : KITH_ERR_IO;
    if (err) {
      g_free(*state);
      *state = NULL;
    }
  } else {
    err = rc == SQLITE_DONE ? KITH_ERR_NOT_FOUND : kst_map_rc(rc);
  }
  kst_unbind(st);
  return err;
}
