/* libFuzzer target: store rows, as a damaged or tampered kith.db would
 * hold them. Each input fills the tables of a real store (schema 3,
 * through a second SQLite connection, as anything else on the disk
 * could); then every reader of core/store.h runs over them, the group's
 * reconciliation index is built over them (core/recon_index.h) and
 * reconciled, and the group is opened from them as a node opens it at start-up
 * (kith_group_open, the engine's decoder of events, frontiers, facts, notes and
 * heads) and used: its state, heads, notices, maintenance and a message sent.
 * The readers and the engine must reject what they cannot use, and never crash,
 * leak or read out of bounds.
 *
 * The input is one fuzz_take part, the group id under test (when it is 32
 * bytes; else fuzz_store_gid), then a sequence of rows in the format of
 * fuzz_rows.h (the fuzzer chooses every column's bytes; sealed columns
 * can be sealed as the store seals them).
 *
 * Checks: what the readers return has the promised shape (whole ids and
 * blocks, NUL-terminated texts, at most the rows asked for); a group with
 * its row in `groups` (one the node opens) opened twice from the same
 * rows has the same state hash, and so does the group opened again after
 * it was used (what the engine wrote is what it had in memory); the index
 * is complete once its build ends, and an empty set reconciled with it
 * learns each of its items once. */
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/recon_index.h"
#include "core/store.h"
#include "fuzz_rows.h"

#define MAX_IDS 8 /* ids each reader is asked about */
#define LATER_MS (FUZZ_NOW_MS + 3600000)

static char *dir;
static kith_store *store;
static sqlite3 *db; /* the "anything else" connection */
static sqlite3_stmt *insert[FUZZ_N_TABLES], *chain_keys;
static uint8_t gid[32]; /* the group under test */

static void cleanup(void) {
  static const char *const suffixes[] = {"", "-wal", "-shm"};
  kith_store_close(store);
  for (size_t i = 0; i < FUZZ_N_TABLES; i++)
    sqlite3_finalize(insert[i]);
  sqlite3_finalize(chain_keys);
  sqlite3_close(db);
  for (size_t i = 0; i < 3; i++) {
    char *f = g_strconcat(dir, "/kith.db", suffixes[i], NULL);
    (void)unlink(f);
    g_free(f);
  }
  (void)rmdir(dir);
  g_free(dir);
}

static void prepare(const char *sql, sqlite3_stmt **st) {
  if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
    abort();
}

static void setup(void) {
  uint8_t key[32];
  /* In $TMPDIR, which run.sh points at a directory it removes and ctest
   * at BUILD/fuzz-tmp: an input that crashes ends the process before its
   * cleanup. */
  const char *tmp = g_get_tmp_dir();
  dir = g_build_filename(tmp, "kith-fuzz-store-XXXXXX", NULL);
  if (sodium_init() < 0 || g_mkdtemp(dir) == NULL)
    abort();
  char *path = g_build_filename(dir, "kith.db", NULL);
  fuzz_store_key(key);
  if (kith_store_open(path, key, &store) != KITH_OK ||
      sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
    abort();
  sqlite3_busy_timeout(db, 5000);
  for (size_t t = 0; t < FUZZ_N_TABLES; t++) {
    GString *sql = g_string_new("INSERT OR REPLACE INTO ");
    g_string_append_printf(sql, "%s VALUES(?", fuzz_tables[t].name);
    for (int c = 1; c < fuzz_tables[t].n_cols; c++)
      g_string_append(sql, ",?");
    g_string_append(sql, ")");
    prepare(sql->str, &insert[t]);
    g_string_free(sql, TRUE);
  }
  prepare("SELECT k FROM chains WHERE group_id = ?1 LIMIT 8", &chain_keys);
  g_free(path);
  atexit(cleanup);
}

/* ---- rows ---- */

static void bind_value(sqlite3_stmt *st, int col, const fuzz_val *x) {
  switch (x->type) {
  case FUZZ_COL_NULL:
    sqlite3_bind_null(st, col);
    break;
  case FUZZ_COL_INT:
    sqlite3_bind_int64(st, col, x->v);
    break;
  case FUZZ_COL_TEXT:
    sqlite3_bind_text(st, col, (const char *)x->p, (int)x->n, SQLITE_TRANSIENT);
    break;
  default:
    sqlite3_bind_blob(st, col, x->p, (int)x->n, SQLITE_TRANSIENT);
  }
}

/* Reads column col of a row of table t into x (its bytes may be made
 * into owned, which the caller frees). */
static void read_value(fuzz_in *in, size_t t, int col, fuzz_val *row,
                       uint8_t id[32], uint8_t **owned) {
  uint8_t type = fuzz_u8(in) % FUZZ_COL_TYPES;
  fuzz_val *x = &row[col];
  x->n = fuzz_take(in, &x->p);
  x->type = type;
  x->v = 0;
  if (type == FUZZ_COL_INT) {
    x->v = fuzz_le64(x->p, x->n);
  } else if (type == FUZZ_COL_GID) {
    x->p = gid, x->n = 32;
  } else if (type == FUZZ_COL_ID) {
    crypto_generichash(id, 32, x->p, x->n, NULL, 0);
    x->p = id, x->n = 32;
  } else if (type == FUZZ_COL_SEALED) {
    GByteArray *ad = g_byte_array_new();
    if (fuzz_row_ad(t, col, row, ad))
      x->p = *owned = fuzz_seal(1, ad, x->p, x->n, &x->n);
    g_byte_array_unref(ad);
  }
  if (x->type > FUZZ_COL_BLOB)
    x->type = FUZZ_COL_BLOB;
}

static void put_row(fuzz_in *in) {
  size_t t = fuzz_u8(in) % FUZZ_N_TABLES;
  sqlite3_stmt *st = insert[t];
  fuzz_val row[FUZZ_MAX_COLS];
  uint8_t ids[FUZZ_MAX_COLS][32];
  uint8_t *owned[FUZZ_MAX_COLS] = {0};
  for (int c = 0; c < fuzz_tables[t].n_cols; c++) {
    read_value(in, t, c, row, ids[c], &owned[c]);
    bind_value(st, c + 1, &row[c]);
  }
  (void)sqlite3_step(st); /* constraints may refuse the row: fine */
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  for (int c = 0; c < fuzz_tables[t].n_cols; c++)
    g_free(owned[c]);
}

/* ---- the readers ---- */

/* Reads every byte (so that ASan sees a buffer too short). */
static void touch(const void *p, size_t n) {
  uint8_t h[16];
  crypto_generichash(h, sizeof h, p, n, NULL, 0);
}

static void check_ids(const GByteArray *ids) {
  if (ids->len % 32 != 0)
    abort();
  touch(ids->data, ids->len);
}

static void read_identity_and_groups(void) {
  uint8_t seed[32];
  char *name = NULL;
  kith_store_group row;
  GByteArray *gids = g_byte_array_new(), *secrets = g_byte_array_new();
  if (kith_store_get_identity(store, seed, &name) == KITH_OK)
    touch(name, strlen(name) + 1);
  g_free(name);
  if (kith_store_list_groups(store, gids) == KITH_OK)
    check_ids(gids);
  (void)!kith_store_get_group(store, gid, &row);
  if (kith_store_load_secrets(store, gid, secrets) == KITH_OK) {
    if (secrets->len % 40 != 0)
      abort();
    touch(secrets->data, secrets->len);
  }
  g_byte_array_unref(gids);
  g_byte_array_unref(secrets);
}

static kith_err on_control(void *ctx, const kith_store_ctl *c) {
  if (c->len == 0 || c->len > KITH_EVENT_MAX || (!c->note && c->note_len))
    abort();
  touch(c->raw, c->len);
  touch(c->pf, sizeof *c->pf * c->n_pf);
  touch(c->facts, c->facts_len);
  touch(c->note, c->note_len);
  (*(size_t *)ctx)++;
  return KITH_OK;
}

static void on_id(void *ctx, uint64_t ts, const uint8_t id[32]) {
  GByteArray *ids = ctx;
  (void)ts;
  if (ids->len < 32 * MAX_IDS)
    g_byte_array_append(ids, id, 32);
}

static void check_items(const GPtrArray *items, size_t max, GByteArray *ids) {
  if (items->len > max)
    abort();
  for (guint i = 0; i < items->len; i++) {
    const kith_store_item *it = items->pdata[i];
    if (it->text && it->text[it->text_len] != 0)
      abort();
    touch(it->text, it->text_len);
    if (ids && it->has_ref && ids->len < 32 * 2 * MAX_IDS)
      g_byte_array_append(ids, it->ref, 32);
  }
}

/* The log: pages, items by id, related items, counts. */
static void read_log(GByteArray *ids) {
  GPtrArray *items =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_store_item_free);
  uint64_t n;
  if (kith_store_list_items(store, gid, 3, NULL, 0, NULL, items) == KITH_OK)
    check_items(items, 3, ids);
  if (items->len > 0) {
    const kith_store_item *first = items->pdata[0];
    uint8_t before[32];
    memcpy(before, first->id, 32);
    g_ptr_array_set_size(items, 0);
    if (kith_store_list_items(store, gid, 2, before, 0, gid, items) == KITH_OK)
      check_items(items, 2, NULL);
  }
  for (guint i = 0; i + 32 <= ids->len; i += 32) {
    const uint8_t *id = ids->data + i;
    kith_store_item *it = NULL;
    g_ptr_array_set_size(items, 0);
    if (kith_store_list_related(store, gid, id, items) == KITH_OK)
      check_items(items, G_MAXUINT, NULL);
    if (kith_store_get_item(store, gid, id, &it) == KITH_OK) {
      if (it->text && it->text[it->text_len] != 0)
        abort();
      (void)!kith_store_count_after(store, gid, it->ts, it->id, gid, &n);
      kith_store_item_free(it);
    }
  }
  (void)!kith_store_count_after(store, gid, 0, gid, gid, &n);
  g_ptr_array_unref(items);
}

/* Events: ids, heads, control events, old rows, summaries, raw bytes. */
static void read_events(void) {
  GByteArray *ids = g_byte_array_new(), *heads = g_byte_array_new();
  GByteArray *range = g_byte_array_new();
  GPtrArray *old =
      g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  uint8_t lo[32], hi[32];
  size_t n_ctl = 0;
  if (kith_store_each_id(store, gid, on_id, ids) == KITH_OK)
    check_ids(ids);
  if (kith_store_load_heads(store, gid, heads) == KITH_OK) {
    check_ids(heads);
    g_byte_array_append(ids, heads->data, MIN(heads->len, 32 * MAX_IDS));
  }
  (void)!kith_store_load_controls(store, gid, on_control, &n_ctl);
  if (kith_store_load_old(store, gid, old) == KITH_OK)
    for (guint i = 0; i < old->len; i++) {
      gsize len;
      const void *raw = g_bytes_get_data(old->pdata[i], &len);
      if (len == 0 || len > KITH_EVENT_MAX)
        abort();
      touch(raw, len);
    }
  memset(lo, 0, 32);
  memset(hi, 0xff, 32);
  if (kith_store_find_range(store, gid, lo, hi, range) == KITH_OK) {
    check_ids(range);
    if (range->len > 64)
      abort();
  }
  for (guint i = 0; i + 32 <= ids->len; i += 32) {
    kith_store_sum sum;
    GBytes *raw = NULL;
    if (kith_store_get_summary(store, gid, ids->data + i, &sum) == KITH_OK) {
      touch(sum.cf, sizeof *sum.cf * sum.n_cf);
      kith_store_sum_clear(&sum);
    }
    if (kith_store_get_raw(store, gid, ids->data + i, &raw) == KITH_OK) {
      if (g_bytes_get_size(raw) == 0 || g_bytes_get_size(raw) > KITH_EVENT_MAX)
        abort();
      g_bytes_unref(raw);
    }
  }
  read_log(ids);
  g_byte_array_unref(ids);
  g_byte_array_unref(heads);
  g_byte_array_unref(range);
  g_ptr_array_unref(old);
}

/* Sender chains, by the keys the table holds. */
static void read_chains(void) {
  sqlite3_bind_blob(chain_keys, 1, gid, 32, SQLITE_STATIC);
  while (sqlite3_step(chain_keys) == SQLITE_ROW) {
    const void *k = sqlite3_column_blob(chain_keys, 0);
    uint8_t *state = NULL;
    size_t len = 0;
    if (!k || sqlite3_column_bytes(chain_keys, 0) != 40)
      continue;
    if (kith_store_get_chain(store, gid, k, &state, &len) == KITH_OK) {
      touch(state, len);
      g_free(state);
    }
  }
  sqlite3_reset(chain_keys);
  sqlite3_clear_bindings(chain_keys);
}

static void read_peers_and_friends(void) {
  GArray *peers = g_array_new(FALSE, FALSE, sizeof(kith_stored_peer));
  GPtrArray *friends =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_friend_free);
  if (kith_store_list_peers(store, peers) == KITH_OK)
    for (guint i = 0; i < peers->len; i++)
      if (strnlen(g_array_index(peers, kith_stored_peer, i).host, 64) >= 64)
        abort();
  if (kith_store_list_friends(store, friends) == KITH_OK)
    for (guint i = 0; i < friends->len; i++) {
      const kith_friend *f = friends->pdata[i];
      if (f->name == NULL || strnlen(f->host, 64) >= 64)
        abort();
    }
  g_array_unref(peers);
  g_ptr_array_unref(friends);
}

/* ---- the reconciliation set, summed over the rows ---- */

/* The group's index over the store (core/recon_index.h), built as the
 * node builds it, then reconciled with an empty set: that side must learn
 * every item of the index, each once, in at most RECON_ROUNDS messages. */
#define RECON_ROUNDS 64
static void reconcile_index(void) {
  kith_recon_index *x = kith_recon_index_on_store(store, gid);
  kith_recon_source src = kith_recon_index_source(x);
  kith_recon *a = kith_recon_new_on(&src), *b = kith_recon_new();
  /* need: what the empty side learns it lacks; have: the rest */
  GByteArray *have = g_byte_array_new(), *need = g_byte_array_new();
  uint8_t *msg = NULL, *reply = NULL;
  size_t len = 0, rlen = 0, n = 0, calls = 0;
  int done = 0;
  kith_err err = KITH_OK;
  while (!done && err == KITH_OK && calls++ < 1000)
    err = kith_recon_index_build(x, 8, &done);
  if (err == KITH_OK &&
      (!done || !kith_recon_index_ready(x) || src.size(src.ctx, &n) != KITH_OK))
    abort(); /* the rows end, so the build does */
  if (err == KITH_OK && kith_recon_initiate(a, &msg, &len) == KITH_OK) {
    kith_recon *side[2] = {b, a};
    for (int r = 0; msg != NULL; r++) {
      if (r == RECON_ROUNDS ||
          kith_recon_step(side[r % 2], msg, len, &reply, &rlen, have,
                          r % 2 ? have : need) != KITH_OK)
        abort();
      g_free(msg);
      msg = reply;
      len = rlen;
    }
    if (need->len != 32 * n)
      abort();
  }
  g_free(msg);
  g_byte_array_unref(have);
  g_byte_array_unref(need);
  kith_recon_free(a);
  kith_recon_free(b);
  kith_recon_index_free(x);
}

/* ---- the group, opened from the rows ---- */

/* Opens the group inside a batch, as the node does; NULL if refused. */
static kith_group *open_group(uint8_t hash[32]) {
  kith_group *g = NULL;
  if (kith_store_batch_begin(store) != KITH_OK)
    abort();
  if (kith_group_open(gid, fuzz_ident(FUZZ_ME), store, &g) == KITH_OK)
    kith_group_state_hash(g, hash);
  (void)!kith_group_flush(g);
  (void)!kith_store_batch_commit(store);
  return g;
}

/* What the log shows of the group's control events. */
static void show_notices(kith_group *g) {
  GPtrArray *items =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_store_item_free);
  if (kith_store_list_items(store, gid, 8, NULL, 0, NULL, items) == KITH_OK)
    for (guint i = 0; i < items->len; i++) {
      const kith_store_item *it = items->pdata[i];
      char *s = kith_group_notice(g, it->kind, it->author, it->ts, it->text,
                                  it->text_len);
      if (s)
        touch(s, strlen(s));
      g_free(s);
    }
  g_ptr_array_unref(items);
}

static void read_group(kith_group *g) {
  GByteArray *ids = g_byte_array_new();
  uint8_t id[32], a[32], b[32], c[32];
  touch(kith_group_name(g), strlen(kith_group_name(g)));
  touch(kith_group_topic(g), strlen(kith_group_topic(g)));
  for (size_t i = 0; i < kith_group_n_members(g); i++) {
    const kith_member *m = kith_group_member_at(g, i);
    touch(m->name, strlen(m->name));
  }
  for (size_t i = 0; i < kith_group_n_reports(g); i++)
    kith_group_report_at(g, i, a, b, c);
  kith_group_heads(g, ids);
  check_ids(ids);
  for (guint i = 0; i + 32 <= ids->len && i < 32 * MAX_IDS; i += 32) {
    GBytes *raw = NULL;
    if (!kith_group_has_event(g, ids->data + i) ||
        kith_group_event_info(g, ids->data + i, NULL, NULL, NULL, NULL) !=
            KITH_OK)
      abort(); /* a head is an accepted event */
    if (kith_group_event_raw(g, ids->data + i, &raw) == KITH_OK)
      g_bytes_unref(raw);
  }
  g_byte_array_set_size(ids, 0);
  (void)kith_group_missing(g, ids, MAX_IDS);
  (void)!kith_group_find_event(g, "a", id);
  g_byte_array_unref(ids);
  show_notices(g);
}

/* What a node does with it next: maintenance (owed rekeys), a message, a
 * reply, reaction, edit and delete of the log's last item (whose summary
 * comes from the store). */
static void use_group(kith_group *g, uint8_t hash[32]) {
  GPtrArray *acc =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
  GPtrArray *items =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_store_item_free);
  if (kith_store_batch_begin(store) != KITH_OK)
    abort();
  (void)!kith_group_maintain(g, LATER_MS, acc);
  (void)!kith_group_send(g, "fuzz", 4, NULL, LATER_MS, acc);
  if (kith_store_list_items(store, gid, 2, NULL, 0, NULL, items) == KITH_OK &&
      items->len > 0) {
    const uint8_t *id = ((const kith_store_item *)items->pdata[0])->id;
    (void)!kith_group_send(g, "re", 2, id, LATER_MS, acc);
    (void)!kith_group_react(g, id, "+1", 1, LATER_MS, acc);
    (void)!kith_group_edit(g, id, "edited", 6, LATER_MS, acc);
    (void)!kith_group_delete(g, id, LATER_MS, acc);
  }
  (void)!kith_group_flush(g);
  if (kith_store_batch_commit(store) != KITH_OK)
    abort();
  kith_group_state_hash(g, hash);
  g_ptr_array_unref(items);
  g_ptr_array_unref(acc);
}

static void open_and_use(void) {
  uint8_t first[32], again[32];
  kith_store_group row;
  kith_group *g = open_group(first);
  if (!g)
    return;
  kith_group_free(g);
  /* Only a group with its row is one the node opens (with its count). */
  int opened = kith_store_get_group(store, gid, &row) == KITH_OK;
  /* Opening converted what it could: the same rows open the same way. */
  g = open_group(again);
  if (opened && (!g || memcmp(first, again, 32) != 0))
    abort();
  if (!g)
    return;
  read_group(g);
  use_group(g, first);
  kith_group_free(g);
  /* What the engine wrote opens to the state it had in memory. */
  g = open_group(again);
  if (opened && (!g || memcmp(first, again, 32) != 0))
    abort();
  kith_group_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_in in = {data, size};
  const uint8_t *p;
  if (store == NULL)
    setup();
  memcpy(gid, fuzz_take(&in, &p) == 32 ? p : fuzz_store_gid, 32);
  for (size_t t = 0; t < FUZZ_N_TABLES; t++) {
    char *sql = g_strdup_printf("DELETE FROM %s", fuzz_tables[t].name);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
      abort();
    g_free(sql);
  }
  while (in.n > 0)
    put_row(&in);
  read_identity_and_groups();
  read_events();
  read_chains();
  read_peers_and_friends();
  reconcile_index();
  open_and_use();
  return 0;
}
