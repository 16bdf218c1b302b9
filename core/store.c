/* kith: the SQLite store (see store.h).
 *
 * Sealed columns hold nonce(24) || XChaCha20-Poly1305 ciphertext. Their
 * additional data is table NUL column NUL row-key, so a sealed value cannot
 * be moved to another row or column without failing to open. For texts the
 * plain columns next to it (group, sender, ts) are bound too, so they cannot
 * be edited to misattribute a message.
 *
 * Unsigned 64-bit values (depth, ts, epoch, seen) are stored with the top
 * bit flipped: SQLite integers are signed, and the flip maps uint64 onto
 * int64 preserving order, so ORDER BY sorts them as unsigned. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#define SCHEMA_VERSION 3
#define BUSY_TIMEOUT_MS 5000
/* Pages (4 KiB) the WAL may hold before a commit copies them into the
 * database (SQLite's default is 1000). An event's insert dirties a leaf
 * page of the id index at a random place: with a long history a batch
 * dirties about one distinct page per event, and a wider window between
 * checkpoints writes a page that several batches dirtied once, and syncs
 * ten times less often (docs/performance.md, "Ingest with a history"). */
#define WAL_CHECKPOINT_PAGES 10000

/* Version 2: relay friends. */
#define FRIENDS_SQL                                                            \
  "CREATE TABLE friends(node BLOB PRIMARY KEY NOT NULL CHECK(length(node) ="   \
  " 32), name BLOB NOT NULL, host TEXT NOT NULL, port INTEGER NOT NULL)"       \
  " WITHOUT ROWID;"

/* Version 3 (the group engine that keeps only control events in memory):
 * each event row carries what deciding on its children needs (cseq, cf,
 * facts; see store.h), its sealed text, and the reference of a reply,
 * reaction, edit or delete; heads and sender chains have tables; a
 * group's row counts its events and keeps the read marker. Events keep
 * rowids: their rows are large (raw events up to 80 KiB), which WITHOUT
 * ROWID tables handle badly. */
#define V3_EVENT_COLS                                                          \
  " cseq INTEGER, cf BLOB, facts BLOB, text BLOB, ref BLOB,"                   \
  " flag INTEGER NOT NULL DEFAULT 0"
/* Rows a schema-2 kith wrote and the engine has not converted yet
 * (13.5): empty once they are, so opening a group does not walk its log. */
#define EVENTS_OLD_SQL                                                         \
  "CREATE INDEX IF NOT EXISTS events_old ON events(group_id)"                  \
  " WHERE cseq IS NULL AND cf IS NULL;"
#define V3_TABLES                                                              \
  "CREATE INDEX events_ctl ON events(group_id, cseq) WHERE cseq IS NOT NULL;"  \
  "CREATE INDEX events_log ON events(group_id, ts, id);"                       \
  "CREATE INDEX events_ref ON events(ref) WHERE ref IS NOT "                   \
  "NULL;" EVENTS_OLD_SQL                                                       \
  "CREATE TABLE heads(group_id BLOB NOT NULL, id BLOB NOT NULL,"               \
  " PRIMARY KEY(group_id, id)) WITHOUT ROWID;"                                 \
  "CREATE TABLE chains(group_id BLOB NOT NULL, k BLOB NOT NULL,"               \
  " state BLOB NOT NULL, PRIMARY KEY(group_id, k)) WITHOUT ROWID;"

static const char schema_sql[] =
    "CREATE TABLE identity(k INTEGER PRIMARY KEY CHECK(k = 1),"
    " seed BLOB NOT NULL, name BLOB NOT NULL);"
    "CREATE TABLE groups(id BLOB PRIMARY KEY CHECK(length(id) = 32),"
    " n_events INTEGER NOT NULL DEFAULT 0, read_ts INTEGER, read_id BLOB)"
    " WITHOUT ROWID;"
    "CREATE TABLE events(id BLOB PRIMARY KEY NOT NULL CHECK(length(id) = 32),"
    " group_id BLOB NOT NULL, depth INTEGER NOT NULL, kind INTEGER NOT NULL,"
    " author BLOB NOT NULL, ts INTEGER NOT NULL, raw BLOB NOT "
    "NULL," V3_EVENT_COLS ");" V3_TABLES
    "CREATE TABLE secrets(group_id BLOB NOT NULL, epoch INTEGER NOT NULL,"
    " secret BLOB NOT NULL, PRIMARY KEY(group_id, epoch)) WITHOUT ROWID;"
    "CREATE TABLE peers(node BLOB PRIMARY KEY, host TEXT NOT NULL,"
    " port INTEGER NOT NULL, seen INTEGER NOT NULL) WITHOUT ROWID;" FRIENDS_SQL
    "PRAGMA user_version = 3;";

/* From version 2: the new columns; texts move into their events; events
 * keep no derived columns yet (cseq and cf NULL): kith_group_open
 * converts them through the engine the first time it opens the group. */
static const char v2_to_v3_sql[] =
    "ALTER TABLE events ADD COLUMN cseq INTEGER;"
    "ALTER TABLE events ADD COLUMN cf BLOB;"
    "ALTER TABLE events ADD COLUMN facts BLOB;"
    "ALTER TABLE events ADD COLUMN text BLOB;"
    "ALTER TABLE events ADD COLUMN ref BLOB;"
    "ALTER TABLE events ADD COLUMN flag INTEGER NOT NULL DEFAULT 0;"
    "UPDATE events SET text = (SELECT t.text FROM texts t"
    " WHERE t.event_id = events.id);"
    "DROP TABLE texts;"
    "ALTER TABLE groups ADD COLUMN n_events INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE groups ADD COLUMN read_ts INTEGER;"
    "ALTER TABLE groups ADD COLUMN read_id BLOB;" V3_TABLES
    "PRAGMA user_version = 3;";

/* Rows converted to version 3 (see v2_to_v3_sql). */
#define CONVERTED "(cseq IS NOT NULL OR cf IS NOT NULL)"
/* What the log shows: messages with a text, and the control events that
 * make notices (not invites, revokes, or rekeys but recovery ones). */
#define ITEM_COLS "id, author, ts, kind, text, ref, flag, depth"
#define ITEM_KINDS                                                             \
  "kind IN (1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14) AND (kind <> 8 OR ref"     \
  " IS NOT NULL)"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_PUT_IDENTITY] = "INSERT INTO identity(k, seed, name) VALUES(1, ?1, ?2)"
                        " ON CONFLICT(k) DO UPDATE SET seed = excluded.seed,"
                        " name = excluded.name",
    [ST_GET_IDENTITY] = "SELECT seed, name FROM identity WHERE k = 1",
    [ST_PUT_GROUP] = "INSERT OR IGNORE INTO groups(id) VALUES(?1)",
    [ST_LIST_GROUPS] = "SELECT id FROM groups ORDER BY id",
    [ST_GET_GROUP] = "SELECT n_events, read_ts, read_id FROM groups"
                     " WHERE id = ?1",
    [ST_SET_COUNT] = "UPDATE groups SET n_events = ?2 WHERE id = ?1",
    [ST_SET_READ] = "UPDATE groups SET read_ts = ?2, read_id = ?3"
                    " WHERE id = ?1",
    [ST_PUT_EVENT] =
        "INSERT INTO events(id, group_id, depth, kind, author, ts, raw, cseq,"
        " cf, facts, text, ref, flag) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
        " ?9, ?10, ?11, ?12, ?13) ON CONFLICT(id) DO NOTHING",
    /* a row a version-2 kith stored gets its derived columns; a message
     * keeps its text, a control event's text becomes its inner plaintext
     * (version 2 kept a topic's text there) */
    [ST_CONVERT_EVENT] =
        "UPDATE events SET cseq = ?8, cf = ?9, facts = ?10,"
        " text = CASE WHEN ?8 IS NULL THEN coalesce(text, ?11) ELSE ?11 END,"
        " ref = ?12, flag = ?13 WHERE id = ?1"
        " AND group_id = ?2 AND depth = ?3 AND kind = ?4 AND author = ?5 AND"
        " ts = ?6 AND raw = ?7 AND NOT " CONVERTED,
    [ST_DROP_HEADS_OF] = "DELETE FROM heads WHERE group_id = ?1",
    [ST_PUT_HEAD] = "INSERT OR IGNORE INTO heads(group_id, id) VALUES(?1, ?2)",
    [ST_GET_SUMMARY] = "SELECT depth, ts, kind, author, cseq, cf FROM events"
                       " WHERE id = ?1 AND group_id = ?2 AND " CONVERTED,
    [ST_GET_RAW] = "SELECT raw FROM events WHERE id = ?1 AND group_id = ?2"
                   " AND " CONVERTED,
    [ST_LOAD_CONTROLS] = "SELECT raw, cseq, cf, facts, text, id, group_id,"
                         " author, ts FROM events WHERE group_id = ?1 AND"
                         " cseq IS NOT NULL ORDER BY cseq",
    [ST_LOAD_HEADS] = "SELECT id FROM heads WHERE group_id = ?1",
    /* rowid order is the order of acceptance: parents first */
    [ST_EACH_ID] = "SELECT ts, id FROM events WHERE group_id = ?1"
                   " ORDER BY rowid",
    /* +group_id: the id's own index, not the group's whole log */
    [ST_FIND_RANGE] = "SELECT id FROM events WHERE id >= ?2 AND id <= ?3"
                      " AND +group_id = ?1 AND " CONVERTED " LIMIT 2",
    /* reconciliation's read-only range API (core/recon_index.h) */
    [ST_SCAN_IDS] = "SELECT ts, id FROM events WHERE group_id = ?1 AND"
                    " (ts, id) >= (?2, ?3) ORDER BY ts, id LIMIT ?4",
    /* +group_id: the id's own index, not the group's whole log */
    [ST_IDS_BY_PREFIX] = "SELECT ts, id FROM events WHERE id >= ?2 AND"
                         " id <= ?3 AND +group_id = ?1 LIMIT ?4",
    [ST_HAS_ID] = "SELECT ts, id FROM events WHERE id = ?2 AND group_id = ?1",
    [ST_DROP_EVENTS] = "DELETE FROM events WHERE group_id = ?1",
    [ST_DROP_HEADS] = "DELETE FROM heads WHERE group_id = ?1",
    [ST_DROP_SECRETS] = "DELETE FROM secrets WHERE group_id = ?1",
    [ST_DROP_CHAINS] = "DELETE FROM chains WHERE group_id = ?1",
    [ST_DROP_GROUP] = "DELETE FROM groups WHERE id = ?1",
    /* the partial index events_old: the query's WHERE is its WHERE */
    [ST_LOAD_OLD] = "SELECT raw FROM events WHERE group_id = ?1 AND"
                    " cseq IS NULL AND cf IS NULL ORDER BY depth, id",
    /* ?3: NULL, or an event id: only items before it in display order (for
     * reading a long log page by page). */
    [ST_LIST_LOG] =
        "SELECT " ITEM_COLS " FROM (SELECT " ITEM_COLS " FROM events WHERE"
        " group_id = ?1 AND text IS NOT NULL AND " ITEM_KINDS " AND (?3 IS"
        " NULL OR ts < (SELECT ts FROM events WHERE id = ?3) OR (ts ="
        " (SELECT ts FROM events WHERE id = ?3) AND id < ?3)) AND (?4 IS NULL"
        " OR ts > ?4 OR (ts = ?4 AND id > ?5)) ORDER BY ts DESC, id DESC"
        " LIMIT ?2) ORDER BY ts, id",
    [ST_LIST_RELATED] = "SELECT " ITEM_COLS " FROM events WHERE ref = ?1 AND"
                        " group_id = ?2 AND kind IN (15, 16, 17) AND"
                        " (flag & 2) != 0 ORDER BY depth, id",
    [ST_GET_ITEM] = "SELECT " ITEM_COLS " FROM events WHERE id = ?1 AND"
                    " group_id = ?2 AND " CONVERTED,
    /* the first ?5 events after the marker through events_log, so that
     * the count costs at most ?5 rows however long the log or however many
     * of them are this node's own */
    [ST_COUNT_AFTER] =
        "SELECT count(*) FROM (SELECT kind, text IS NOT NULL AS t, author"
        " FROM events WHERE group_id = ?1 AND (ts, id) > (?2, ?3)"
        " ORDER BY ts, id LIMIT ?5) WHERE kind = 9 AND t AND author <> ?4",
    [ST_PUT_SECRET] = "INSERT INTO secrets(group_id, epoch, secret)"
                      " VALUES(?1, ?2, ?3) ON CONFLICT(group_id, epoch)"
                      " DO UPDATE SET secret = excluded.secret",
    [ST_LOAD_SECRETS] = "SELECT epoch, secret FROM secrets WHERE group_id = ?1"
                        " ORDER BY epoch",
    [ST_PUT_CHAIN] = "INSERT INTO chains(group_id, k, state) VALUES(?1, ?2,"
                     " ?3) ON CONFLICT(group_id, k) DO UPDATE SET"
                     " state = excluded.state",
    [ST_GET_CHAIN] = "SELECT state FROM chains WHERE group_id = ?1 AND k = ?2",
    [ST_PUT_PEER] = "INSERT INTO peers(node, host, port, seen)"
                    " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(node) DO UPDATE SET"
                    " host = excluded.host, port = excluded.port,"
                    " seen = excluded.seen",
    [ST_LIST_PEERS] = "SELECT node, host, port, seen FROM peers ORDER BY node",
    [ST_PUT_FRIEND] = "INSERT INTO friends(node, name, host, port)"
                      " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(node) DO UPDATE"
                      " SET name = excluded.name, host = excluded.host,"
                      " port = excluded.port",
    [ST_DEL_FRIEND] = "DELETE FROM friends WHERE node = ?1",
    [ST_LIST_FRIENDS] = "SELECT node, name, host, port FROM friends"
                        " ORDER BY node",
};

/* ---- helpers: integers, additional data, sealing ---- */

sqlite3_int64 kst_u64_to_db(uint64_t v) {
  return (sqlite3_int64)(v ^ (UINT64_C(1) << 63));
}

uint64_t kst_u64_from_db(sqlite3_int64 v) {
  return (uint64_t)v ^ (UINT64_C(1) << 63);
}

void kst_put_le64(uint8_t out[8], uint64_t v) {
  for (int i = 0; i < 8; i++)
    out[i] = (uint8_t)(v >> (8 * i));
}

void kst_ad_add(ad_buf *ad, const void *p, size_t n) {
  g_assert(n <= sizeof ad->b - ad->len);
  memcpy(ad->b + ad->len, p, n);
  ad->len += n;
}

void kst_ad_add_u64(ad_buf *ad, uint64_t v) {
  uint8_t le[8];
  kst_put_le64(le, v);
  kst_ad_add(ad, le, sizeof le);
}

/* Starts the additional data with table NUL column NUL. */
void kst_ad_init(ad_buf *ad, const char *table, const char *column) {
  ad->len = 0;
  kst_ad_add(ad, table, strlen(table) + 1);
  kst_ad_add(ad, column, strlen(column) + 1);
}

/* Returns nonce || ciphertext, g_malloc'ed (not secret). */
uint8_t *kst_seal(const kith_store *s, const ad_buf *ad, const void *pt,
                  size_t len, int *out_len) {
  uint8_t *out = g_malloc(len + SEAL_OVERHEAD);
  unsigned long long clen = 0;

  randombytes_buf(out, NONCE_LEN);
  crypto_aead_xchacha20poly1305_ietf_encrypt(out + NONCE_LEN, &clen, pt, len,
                                             ad->b, ad->len, NULL, out, s->key);
  *out_len = (int)(NONCE_LEN + clen);
  return out;
}

/* Opens the sealed column col into pt (cap bytes). Anything that does not
 * authenticate, including a wrong size, is KITH_ERR_CRYPTO. */
kith_err kst_unseal(const kith_store *s, const ad_buf *ad, sqlite3_stmt *st,
                    int col, uint8_t *pt, size_t cap, size_t *pt_len) {
  const uint8_t *blob = sqlite3_column_blob(st, col);
  size_t len = (size_t)sqlite3_column_bytes(st, col);
  unsigned long long mlen = 0;

  if (!blob || len < SEAL_OVERHEAD || len - SEAL_OVERHEAD > cap)
    return KITH_ERR_CRYPTO;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          pt, &mlen, NULL, blob + NONCE_LEN, len - NONCE_LEN, ad->b, ad->len,
          blob, s->key) != 0)
    return KITH_ERR_CRYPTO;
  *pt_len = (size_t)mlen;
  return KITH_OK;
}

/* Opens a sealed string column into a g_malloc'ed NUL-terminated buffer. */
kith_err kst_unseal_str(const kith_store *s, const ad_buf *ad, sqlite3_stmt *st,
                        int col, size_t cap, char **out) {
  size_t len = (size_t)sqlite3_column_bytes(st, col);
  size_t plen = 0;

  if (len < SEAL_OVERHEAD || len - SEAL_OVERHEAD > cap)
    return KITH_ERR_CRYPTO;
  char *buf = g_malloc(len - SEAL_OVERHEAD + 1);
  kith_err err =
      kst_unseal(s, ad, st, col, (uint8_t *)buf, len - SEAL_OVERHEAD, &plen);
  if (err) {
    g_free(buf);
    return err;
  }
  buf[plen] = '\0';
  *out = buf;
  return KITH_OK;
}

/* ---- helpers: statements and transactions ---- */

kith_err kst_map_rc(int rc) {
  switch (rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_ROW:
  case SQLITE_DONE:
    return KITH_OK;
  case SQLITE_NOMEM:
    return KITH_ERR_NOMEM;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return KITH_ERR_BUSY;
  case SQLITE_FULL:
    return KITH_ERR_FULL;
  default:
    return KITH_ERR_IO; /* IOERR, CORRUPT, CONSTRAINT, ... */
  }
}

/* Keeps the first failure of a chain of sqlite3_bind_* calls, all of which
 * still run so that every destructor passed to them is called. */
int kst_first_rc(int a, int b) {
  return a != SQLITE_OK ? a : b;
}

void kst_unbind(sqlite3_stmt *st) {
  (void)sqlite3_reset(st);
  (void)sqlite3_clear_bindings(st);
}

/* Steps a write statement once, then resets it. */
kith_err kst_run(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  kst_unbind(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? KITH_OK : kst_map_rc(rc);
}

/* One write: a transaction of its own, or, inside a batch, part of the
 * batch's transaction (a failed statement changes nothing by itself; the
 * one write of two statements, put_event, undoes its first itself). */
kith_err kst_run_bound(sqlite3_stmt *st, int bind_rc) {
  if (bind_rc != SQLITE_OK) {
    kst_unbind(st);
    return kst_map_rc(bind_rc);
  }
  return kst_run(st);
}

kith_err kst_begin(kith_store *s) {
  if (s->failed)
    return s->failed; /* the batch is lost already */
  return s->batch ? KITH_OK : kst_run(s->st[ST_BEGIN]);
}

/* Commits if err is KITH_OK, otherwise (or if COMMIT fails) rolls back, so
 * nothing is ever half-written. Returns the first error. */
kith_err kst_finish(kith_store *s, kith_err err) {
  if (s->batch) {
    /* A failed write loses the whole batch: the caller's memory may hold
     * what the batch held, so it must reload rather than carry on with a
     * store that kept half of it. */
    if (err != KITH_OK && err != KITH_ERR_DUPLICATE &&
        err != KITH_ERR_NOT_FOUND) {
      if (!sqlite3_get_autocommit(s->db))
        (void)kst_run(s->st[ST_ROLLBACK]);
      if (!s->failed)
        s->failed = err == KITH_ERR_FULL ? KITH_ERR_FULL : KITH_ERR_IO;
    }
    return err;
  }
  if (err == KITH_OK) {
    err = kst_run(s->st[ST_COMMIT]);
    if (err == KITH_OK)
      return KITH_OK;
  }
  /* Some errors (SQLITE_FULL, IOERR) already rolled back by themselves. */
  if (!sqlite3_get_autocommit(s->db))
    (void)kst_run(s->st[ST_ROLLBACK]);
  return err;
}

/* Runs one bound statement as a transaction of its own. */
kith_err kst_write_one(kith_store *s, sqlite3_stmt *st, int bind_rc) {
  if (bind_rc != SQLITE_OK) {
    kst_unbind(st);
    return kst_map_rc(bind_rc);
  }
  kith_err err = kst_begin(s);
  if (err) {
    kst_unbind(st);
    return err;
  }
  return kst_finish(s, kst_run(st));
}

/* Calls fn for each row (at most MAX_ROWS, else KITH_ERR_LIMIT), then
 * resets the statement. */
kith_err kst_each_row(kith_store *s, sqlite3_stmt *st, int bind_rc,
                      kst_row_fn fn, void *ctx) {
  kith_err err = kst_map_rc(bind_rc);
  size_t rows = 0;
  int rc = SQLITE_DONE;

  while (err == KITH_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (++rows > MAX_ROWS)
      err = KITH_ERR_LIMIT;
    else
      err = fn(s, st, ctx);
  }
  if (err == KITH_OK && rc != SQLITE_DONE)
    err = kst_map_rc(rc);
  kst_unbind(st);
  return err;
}

/* The blob in col if it is exactly n bytes, else NULL. */
const uint8_t *kst_col_fixed(sqlite3_stmt *st, int col, size_t n) {
  const uint8_t *p = sqlite3_column_blob(st, col);
  return p && (size_t)sqlite3_column_bytes(st, col) == n ? p : NULL;
}

/* ---- open and close ---- */

/* Creates the file ourselves so it is 0600 from the first byte (SQLite
 * gives its -wal and -shm files the same mode), and fixes an existing one. */
static kith_err create_private(const char *path) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return KITH_ERR_IO;
  int rc = fchmod(fd, 0600);
  int saved = errno;
  (void)close(fd);
  errno = saved;
  return rc == 0 ? KITH_OK : KITH_ERR_IO;
}

/* Not SQLITE_OPEN_NOFOLLOW: it refuses a symlink anywhere in the path (a
 * home under a symlinked directory), while create_private already refused a
 * symlink as the file itself. */
static kith_err open_db(kith_store *s, const char *path) {
  int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE, NULL);
  if (rc != SQLITE_OK)
    return kst_map_rc(rc);
  (void)sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
  (void)sqlite3_wal_autocheckpoint(s->db, WAL_CHECKPOINT_PAGES);
  rc = sqlite3_exec(s->db,
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                    " PRAGMA foreign_keys=ON;",
                    NULL, NULL, NULL);
  return kst_map_rc(rc);
}

static kith_err read_user_version(kith_store *s, int *version) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
  if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    *version = sqlite3_column_int(st, 0);
    rc = SQLITE_OK;
  }
  (void)sqlite3_finalize(st);
  return kst_map_rc(rc);
}

/* Creates the schema in a fresh file; refuses a newer one. */
static kith_err migrate(kith_store *s) {
  int version = 0;
  kith_err err = kst_map_rc(sqlite3_exec(s->db, "BEGIN IMMEDIATE", 0, 0, 0));
  if (err)
    return err;
  err = read_user_version(s, &version);
  if (!err && version == 0)
    err = kst_map_rc(sqlite3_exec(s->db, schema_sql, NULL, NULL, NULL));
  if (!err && version == 1) { /* a home made before relay friends */
    err = kst_map_rc(sqlite3_exec(s->db, FRIENDS_SQL, NULL, NULL, NULL));
    version = 2;
  }
  if (!err && version == 2) /* a home made before the issue 9 engine */
    err = kst_map_rc(sqlite3_exec(s->db, v2_to_v3_sql, NULL, NULL, NULL));
  else if (!err && version != 0 && version != SCHEMA_VERSION)
    err = KITH_ERR_STATE;
  else if (!err && version == SCHEMA_VERSION) /* made before events_old */
    err = kst_map_rc(sqlite3_exec(s->db, EVENTS_OLD_SQL, NULL, NULL, NULL));
  if (!err)
    err = kst_map_rc(sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL));
  if (err && !sqlite3_get_autocommit(s->db))
    (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  return err;
}

static kith_err prepare_all(kith_store *s) {
  for (int i = 0; i < ST_COUNT; i++) {
    int rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1,
                                SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
    if (rc != SQLITE_OK)
      return kst_map_rc(rc);
  }
  return KITH_OK;
}

kith_err kith_store_open(const char *path, const uint8_t key[32],
                         kith_store **out) {
  if (!path || !key || !out)
    return KITH_ERR_ARG;
  *out = NULL;
  kith_err err = create_private(path);
  if (err)
    return err;
  kith_store *s = g_new0(kith_store, 1);
  s->key = sodium_malloc(KEY_LEN);
  if (!s->key) {
    g_free(s);
    return KITH_ERR_NOMEM;
  }
  memcpy(s->key, key, KEY_LEN);
  (void)sodium_mprotect_readonly(s->key);
  err = open_db(s, path);
  if (!err)
    err = migrate(s);
  if (!err)
    err = prepare_all(s);
  if (err) {
    kith_store_close(s);
    return err;
  }
  *out = s;
  return KITH_OK;
}

void kith_store_close(kith_store *s) {
  if (!s)
    return;
  if (s->batch && kith_store_batch_commit(s) != KITH_OK)
    s->batch = 0; /* nothing more can be done while closing */
  for (int i = 0; i < ST_COUNT; i++)
    (void)sqlite3_finalize(s->st[i]);
  (void)sqlite3_close(s->db);
  sodium_free(s->key); /* wipes */
  g_free(s);
}

/* ---- identity ---- */

kith_err kith_store_put_identity(kith_store *s, const uint8_t seed[32],
                                 const char *name) {
  if (!s || !seed || !name)
    return KITH_ERR_ARG;
  size_t name_len = strlen(name);
  if (name_len > MAX_NAME)
    return KITH_ERR_LIMIT;
  ad_buf ad;
  int seed_len = 0, sname_len = 0;
  kst_ad_init(&ad, "identity", "seed");
  kst_ad_add_u64(&ad, 1);
  uint8_t *sseed = kst_seal(s, &ad, seed, KITH_SEED_LEN, &seed_len);
  kst_ad_init(&ad, "identity", "name");
  kst_ad_add_u64(&ad, 1);
  uint8_t *sname = kst_seal(s, &ad, name, name_len, &sname_len);

  sqlite3_stmt *st = s->st[ST_PUT_IDENTITY];
  int rc = sqlite3_bind_blob(st, 1, sseed, seed_len, g_free);
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 2, sname, sname_len, g_free));
  return kst_write_one(s, st, rc);
}

static kith_err read_identity(kith_store *s, sqlite3_stmt *st, uint8_t seed[32],
                              char **name) {
  ad_buf ad;
  size_t len = 0;
  kst_ad_init(&ad, "identity", "seed");
  kst_ad_add_u64(&ad, 1);
  kith_err err = kst_unseal(s, &ad, st, 0, seed, KITH_SEED_LEN, &len);
  if (!err && len != KITH_SEED_LEN)
    err = KITH_ERR_CRYPTO;
  if (!err) {
    kst_ad_init(&ad, "identity", "name");
    kst_ad_add_u64(&ad, 1);
    err = kst_unseal_str(s, &ad, st, 1, MAX_NAME, name);
  }
  if (err)
    sodium_memzero(seed, KITH_SEED_LEN);
  return err;
}

kith_err kith_store_get_identity(kith_store *s, uint8_t seed[32], char **name) {
  if (!s || !seed || !name)
    return KITH_ERR_ARG;
  *name = NULL;
  sqlite3_stmt *st = s->st[ST_GET_IDENTITY];
  int rc = sqlite3_step(st);
  kith_err err;
  if (rc == SQLITE_ROW)
    err = read_identity(s, st, seed, name);
  else if (rc == SQLITE_DONE)
    err = KITH_ERR_NOT_FOUND;
  else
    err = kst_map_rc(rc);
  kst_unbind(st);
  return err;
}

/* ---- groups ---- */

kith_err kith_store_put_group(kith_store *s, const uint8_t gid[32]) {
  if (!s || !gid)
    return KITH_ERR_ARG;
  sqlite3_stmt *st = s->st[ST_PUT_GROUP];
  return kst_write_one(s, st, sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC));
}

static kith_err group_row(kith_store *s, sqlite3_stmt *st, void *ctx) {
  const uint8_t *gid = kst_col_fixed(st, 0, 32);
  if (!gid)
    return KITH_ERR_IO;
  g_byte_array_append(ctx, gid, 32);
  return KITH_OK;
}

kith_err kith_store_list_groups(kith_store *s, GByteArray *gids) {
  if (!s || !gids)
    return KITH_ERR_ARG;
  guint orig = gids->len;
  kith_err err =
      kst_each_row(s, s->st[ST_LIST_GROUPS], SQLITE_OK, group_row, gids);
  if (err)
    g_byte_array_set_size(gids, orig);
  return err;
}

/* ---- peers ---- */

kith_err kith_store_put_peer(kith_store *s, const uint8_t node[32],
                             const char *host, uint16_t port,
                             uint64_t seen_ms) {
  if (!s || !node || !host)
    return KITH_ERR_ARG;
  size_t host_len = strlen(host);
  if (host_len > MAX_HOST)
    return KITH_ERR_LIMIT;
  sqlite3_stmt *st = s->st[ST_PUT_PEER];
  int rc = sqlite3_bind_blob(st, 1, node, 32, SQLITE_STATIC);
  rc = kst_first_rc(
      rc, sqlite3_bind_text(st, 2, host, (int)host_len, SQLITE_STATIC));
  rc = kst_first_rc(rc, sqlite3_bind_int(st, 3, port));
  rc = kst_first_rc(rc, sqlite3_bind_int64(st, 4, kst_u64_to_db(seen_ms)));
  return kst_write_one(s, st, rc);
}

static kith_err peer_row(kith_store *s, sqlite3_stmt *st, void *ctx) {
  kith_stored_peer p;
  const uint8_t *node = kst_col_fixed(st, 0, 32);
  const unsigned char *host = sqlite3_column_text(st, 1);
  size_t host_len = (size_t)sqlite3_column_bytes(st, 1);
  sqlite3_int64 port = sqlite3_column_int64(st, 2);

  if (!node || !host || host_len > MAX_HOST || port < 0 || port > 65535)
    return KITH_ERR_IO;
  memset(&p, 0, sizeof p);
  memcpy(p.node, node, 32);
  memcpy(p.host, host, host_len);
  p.port = (uint16_t)port;
  p.seen_ms = kst_u64_from_db(sqlite3_column_int64(st, 3));
  g_array_append_val((GArray *)ctx, p);
  return KITH_OK;
}

kith_err kith_store_list_peers(kith_store *s, GArray *out) {
  if (!s || !out || g_array_get_element_size(out) != sizeof(kith_stored_peer))
    return KITH_ERR_ARG;
  guint orig = out->len;
  kith_err err =
      kst_each_row(s, s->st[ST_LIST_PEERS], SQLITE_OK, peer_row, out);
  if (err)
    g_array_set_size(out, orig);
  return err;
}

kith_err kith_store_batch_begin(kith_store *s) {
  if (!s || s->batch)
    return KITH_ERR_STATE;
  kith_err err = kst_run(s->st[ST_BEGIN]);
  if (err == KITH_OK)
    s->batch = 1;
  return err;
}

kith_err kith_store_batch_commit(kith_store *s) {
  if (!s || !s->batch)
    return KITH_ERR_STATE;
  s->batch = 0;
  if (s->failed || sqlite3_get_autocommit(s->db)) {
    kith_err err = s->failed ? s->failed : KITH_ERR_IO;
    s->failed = KITH_OK;
    return err; /* the transaction was already rolled back */
  }
  return kst_finish(s, KITH_OK);
}

/* WAL with synchronous=NORMAL keeps commits safe from a crash of the
 * process, not from power loss; this commit is synced (FULL), and with it
 * every earlier one. */
kith_err kith_store_batch_commit_durable(kith_store *s) {
  if (!s || !s->batch)
    return KITH_ERR_STATE;
  (void)sqlite3_exec(s->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
  kith_err err = kith_store_batch_commit(s);
  (void)sqlite3_exec(s->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
  return err;
}

int kith_store_batch_failed(const kith_store *s) {
  return s && s->failed != KITH_OK;
}

void kith_store_batch_abort(kith_store *s) {
  if (!s || !s->batch)
    return;
  s->batch = 0;
  s->failed = KITH_OK;
  if (!sqlite3_get_autocommit(s->db))
    (void)kst_run(s->st[ST_ROLLBACK]);
}

int kith_store_in_batch(const kith_store *s) {
  return s && s->batch;
}

/* ---- relay friends ---- */

static void friend_ad(ad_buf *ad, const uint8_t node[32]) {
  kst_ad_init(ad, "friends", "name");
  kst_ad_add(ad, node, 32);
}

kith_err kith_store_put_friend(kith_store *s, const uint8_t node[32],
                               const char *name, const char *host,
                               uint16_t port) {
  if (!s || !node || !name || !host)
    return KITH_ERR_ARG;
  size_t name_len = strlen(name), host_len = strlen(host);
  if (name_len > MAX_NAME || host_len > MAX_HOST)
    return KITH_ERR_LIMIT;
  ad_buf ad;
  int sname_len = 0;
  friend_ad(&ad, node);
  uint8_t *sname = kst_seal(s, &ad, name, name_len, &sname_len);
  sqlite3_stmt *st = s->st[ST_PUT_FRIEND];
  int rc = sqlite3_bind_blob(st, 1, node, 32, SQLITE_STATIC);
  rc = kst_first_rc(rc, sqlite3_bind_blob(st, 2, sname, sname_len, g_free));
  rc = kst_first_rc(
      rc, sqlite3_bind_text(st, 3, host, (int)host_len, SQLITE_STATIC));
  rc = kst_first_rc(rc, sqlite3_bind_int(st, 4, port));
  return kst_write_one(s, st, rc);
}

kith_err kith_store_remove_friend(kith_store *s, const uint8_t node[32]) {
  if (!s || !node)
    return KITH_ERR_ARG;
  sqlite3_stmt *st = s->st[ST_DEL_FRIEND];
  kith_err err =
      kst_write_one(s, st, sqlite3_bind_blob(st, 1, node, 32, SQLITE_STATIC));
  if (err == KITH_OK && sqlite3_changes(s->db) == 0)
    return KITH_ERR_NOT_FOUND;
  return err;
}

void kith_friend_free(kith_friend *f) {
  if (f)
    g_free(f->name);
  g_free(f);
}

static kith_err friend_row(kith_store *s, sqlite3_stmt *st, void *ctx) {
  const uint8_t *node = kst_col_fixed(st, 0, 32);
  const unsigned char *host = sqlite3_column_text(st, 2);
  size_t host_len = (size_t)sqlite3_column_bytes(st, 2);
  sqlite3_int64 port = sqlite3_column_int64(st, 3);
  ad_buf ad;

  if (!node || !host || host_len > MAX_HOST || port < 0 || port > 65535)
    return KITH_ERR_IO;
  kith_friend *f = g_new0(kith_friend, 1);
  memcpy(f->node, node, 32);
  memcpy(f->host, host, host_len);
  f->port = (uint16_t)port;
  friend_ad(&ad, node);
  kith_err err = kst_unseal_str(s, &ad, st, 1, MAX_NAME, &f->name);
  if (err) {
    kith_friend_free(f);
    return err;
  }
  g_ptr_array_add((GPtrArray *)ctx, f);
  return KITH_OK;
}

kith_err kith_store_list_friends(kith_store *s, GPtrArray *out) {
  if (!s || !out)
    return KITH_ERR_ARG;
  GPtrArray *tmp =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_friend_free);
  kith_err err =
      kst_each_row(s, s->st[ST_LIST_FRIENDS], SQLITE_OK, friend_row, tmp);
  if (err == KITH_OK)
    g_ptr_array_extend_and_steal(out, tmp);
  else
    g_ptr_array_unref(tmp);
  return err;
}
