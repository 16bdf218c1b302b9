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
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCHEMA_VERSION 2
#define BUSY_TIMEOUT_MS 5000
#define KEY_LEN 32
/* Caps on what one call reads or writes. */
#define MAX_ROWS (1 << 22)
#define MAX_NAME 1024
#define MAX_TEXT KITH_EVENT_MAX_BODY
#define MAX_HOST 63
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define SEAL_OVERHEAD (NONCE_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES)
#define AD_MAX 160

/* events and texts keep rowids: their rows are large (raw events up to
 * 80 KiB), which WITHOUT ROWID tables handle badly. */
/* Version 2: relay friends. */
#define FRIENDS_SQL                                                            \
  "CREATE TABLE friends(node BLOB PRIMARY KEY NOT NULL CHECK(length(node) ="   \
  " 32), name BLOB NOT NULL, host TEXT NOT NULL, port INTEGER NOT NULL)"       \
  " WITHOUT ROWID;"

static const char schema_sql[] =
    "CREATE TABLE identity(k INTEGER PRIMARY KEY CHECK(k = 1),"
    " seed BLOB NOT NULL, name BLOB NOT NULL);"
    "CREATE TABLE groups(id BLOB PRIMARY KEY CHECK(length(id) = 32))"
    " WITHOUT ROWID;"
    "CREATE TABLE events(id BLOB PRIMARY KEY NOT NULL CHECK(length(id) = 32),"
    " group_id BLOB NOT NULL, depth INTEGER NOT NULL, kind INTEGER NOT NULL,"
    " author BLOB NOT NULL, ts INTEGER NOT NULL, raw BLOB NOT NULL);"
    "CREATE INDEX events_by_group ON events(group_id, depth, id);"
    "CREATE TABLE texts(event_id BLOB PRIMARY KEY NOT NULL"
    " REFERENCES events(id), group_id BLOB NOT NULL, ts INTEGER NOT NULL,"
    " sender BLOB NOT NULL, text BLOB NOT NULL);"
    "CREATE INDEX texts_by_group ON texts(group_id, ts, event_id);"
    "CREATE TABLE secrets(group_id BLOB NOT NULL, epoch INTEGER NOT NULL,"
    " secret BLOB NOT NULL, PRIMARY KEY(group_id, epoch)) WITHOUT ROWID;"
    "CREATE TABLE peers(node BLOB PRIMARY KEY, host TEXT NOT NULL,"
    " port INTEGER NOT NULL, seen INTEGER NOT NULL) WITHOUT ROWID;" FRIENDS_SQL
    "PRAGMA user_version = 2;";

enum stmt_id {
  ST_BEGIN,
  ST_COMMIT,
  ST_ROLLBACK,
  ST_DEL_EVENT,
  ST_PUT_IDENTITY,
  ST_GET_IDENTITY,
  ST_PUT_GROUP,
  ST_LIST_GROUPS,
  ST_PUT_EVENT,
  ST_PUT_TEXT,
  ST_LOAD_EVENTS,
  ST_LIST_MESSAGES,
  ST_PUT_SECRET,
  ST_LOAD_SECRETS,
  ST_PUT_PEER,
  ST_LIST_PEERS,
  ST_PUT_FRIEND,
  ST_DEL_FRIEND,
  ST_LIST_FRIENDS,
  ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_DEL_EVENT] = "DELETE FROM events WHERE id = ?1",
    [ST_PUT_IDENTITY] = "INSERT INTO identity(k, seed, name) VALUES(1, ?1, ?2)"
                        " ON CONFLICT(k) DO UPDATE SET seed = excluded.seed,"
                        " name = excluded.name",
    [ST_GET_IDENTITY] = "SELECT seed, name FROM identity WHERE k = 1",
    [ST_PUT_GROUP] = "INSERT OR IGNORE INTO groups(id) VALUES(?1)",
    [ST_LIST_GROUPS] = "SELECT id FROM groups ORDER BY id",
    [ST_PUT_EVENT] = "INSERT OR IGNORE INTO events(id, group_id, depth, kind,"
                     " author, ts, raw) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_PUT_TEXT] = "INSERT OR IGNORE INTO texts(event_id, group_id, ts,"
                    " sender, text) VALUES(?1, ?2, ?3, ?4, ?5)",
    [ST_LOAD_EVENTS] =
        "SELECT raw FROM events WHERE group_id = ?1 ORDER BY depth, id",
    /* ?3: NULL, or an event id: only messages before it in display
     * order (for reading a long log page by page). */
    [ST_LIST_MESSAGES] =
        "SELECT event_id, sender, ts, text FROM (SELECT event_id, sender, ts,"
        " text FROM texts WHERE group_id = ?1 AND (?3 IS NULL OR ts <"
        " (SELECT ts FROM texts WHERE event_id = ?3) OR (ts = (SELECT ts FROM"
        " texts WHERE event_id = ?3) AND event_id < ?3))"
        " ORDER BY ts DESC, event_id DESC LIMIT ?2) ORDER BY ts, event_id",
    [ST_PUT_SECRET] = "INSERT INTO secrets(group_id, epoch, secret)"
                      " VALUES(?1, ?2, ?3) ON CONFLICT(group_id, epoch)"
                      " DO UPDATE SET secret = excluded.secret",
    [ST_LOAD_SECRETS] = "SELECT epoch, secret FROM secrets WHERE group_id = ?1"
                        " ORDER BY epoch",
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

struct kith_store {
  sqlite3 *db;
  uint8_t *key; /* KEY_LEN bytes, sodium_malloc'ed, read-only */
  sqlite3_stmt *st[ST_COUNT];
  int batch; /* inside kith_store_batch_begin .. _commit */
};

/* ---- helpers: integers, additional data, sealing ---- */

static sqlite3_int64 u64_to_db(uint64_t v) {
  return (sqlite3_int64)(v ^ (UINT64_C(1) << 63));
}

static uint64_t u64_from_db(sqlite3_int64 v) {
  return (uint64_t)v ^ (UINT64_C(1) << 63);
}

static void put_le64(uint8_t out[8], uint64_t v) {
  for (int i = 0; i < 8; i++)
    out[i] = (uint8_t)(v >> (8 * i));
}

typedef struct ad_buf {
  uint8_t b[AD_MAX];
  size_t len;
} ad_buf;

static void ad_add(ad_buf *ad, const void *p, size_t n) {
  g_assert(n <= sizeof ad->b - ad->len);
  memcpy(ad->b + ad->len, p, n);
  ad->len += n;
}

static void ad_add_u64(ad_buf *ad, uint64_t v) {
  uint8_t le[8];
  put_le64(le, v);
  ad_add(ad, le, sizeof le);
}

/* Starts the additional data with table NUL column NUL. */
static void ad_init(ad_buf *ad, const char *table, const char *column) {
  ad->len = 0;
  ad_add(ad, table, strlen(table) + 1);
  ad_add(ad, column, strlen(column) + 1);
}

static void text_ad(ad_buf *ad, const uint8_t *event_id, const uint8_t *gid,
                    const uint8_t *sender, uint64_t ts) {
  ad_init(ad, "texts", "text");
  ad_add(ad, event_id, 32);
  ad_add(ad, gid, 32);
  ad_add(ad, sender, 32);
  ad_add_u64(ad, ts);
}

/* Returns nonce || ciphertext, g_malloc'ed (not secret). */
static uint8_t *seal(const kith_store *s, const ad_buf *ad, const void *pt,
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
static kith_err unseal(const kith_store *s, const ad_buf *ad, sqlite3_stmt *st,
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
static kith_err unseal_str(const kith_store *s, const ad_buf *ad,
                           sqlite3_stmt *st, int col, size_t cap, char **out) {
  size_t len = (size_t)sqlite3_column_bytes(st, col);
  size_t plen = 0;

  if (len < SEAL_OVERHEAD || len - SEAL_OVERHEAD > cap)
    return KITH_ERR_CRYPTO;
  char *buf = g_malloc(len - SEAL_OVERHEAD + 1);
  kith_err err =
      unseal(s, ad, st, col, (uint8_t *)buf, len - SEAL_OVERHEAD, &plen);
  if (err) {
    g_free(buf);
    return err;
  }
  buf[plen] = '\0';
  *out = buf;
  return KITH_OK;
}

/* ---- helpers: statements and transactions ---- */

static kith_err map_rc(int rc) {
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
static int first_rc(int a, int b) {
  return a != SQLITE_OK ? a : b;
}

static void unbind(sqlite3_stmt *st) {
  (void)sqlite3_reset(st);
  (void)sqlite3_clear_bindings(st);
}

/* Steps a write statement once, then resets it. */
static kith_err run(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  unbind(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? KITH_OK : map_rc(rc);
}

/* One write: a transaction of its own, or, inside a batch, part of the
 * batch's transaction (a failed statement changes nothing by itself; the
 * one write of two statements, put_event, undoes its first itself). */
static kith_err run_bound(sqlite3_stmt *st, int bind_rc) {
  if (bind_rc != SQLITE_OK) {
    unbind(st);
    return map_rc(bind_rc);
  }
  return run(st);
}

static kith_err begin(kith_store *s) {
  return s->batch ? KITH_OK : run(s->st[ST_BEGIN]);
}

/* Commits if err is KITH_OK, otherwise (or if COMMIT fails) rolls back, so
 * nothing is ever half-written. Returns the first error. */
static kith_err finish(kith_store *s, kith_err err) {
  if (s->batch) {
    if (sqlite3_get_autocommit(s->db))
      s->batch = 0; /* SQLite ended the whole transaction (FULL, IOERR) */
    return err;
  }
  if (err == KITH_OK) {
    err = run(s->st[ST_COMMIT]);
    if (err == KITH_OK)
      return KITH_OK;
  }
  /* Some errors (SQLITE_FULL, IOERR) already rolled back by themselves. */
  if (!sqlite3_get_autocommit(s->db))
    (void)run(s->st[ST_ROLLBACK]);
  return err;
}

/* Runs one bound statement as a transaction of its own. */
static kith_err write_one(kith_store *s, sqlite3_stmt *st, int bind_rc) {
  if (bind_rc != SQLITE_OK) {
    unbind(st);
    return map_rc(bind_rc);
  }
  kith_err err = begin(s);
  if (err) {
    unbind(st);
    return err;
  }
  return finish(s, run(st));
}

typedef kith_err (*row_fn)(kith_store *s, sqlite3_stmt *st, void *ctx);

/* Calls fn for each row (at most MAX_ROWS, else KITH_ERR_LIMIT), then
 * resets the statement. */
static kith_err each_row(kith_store *s, sqlite3_stmt *st, int bind_rc,
                         row_fn fn, void *ctx) {
  kith_err err = map_rc(bind_rc);
  size_t rows = 0;
  int rc = SQLITE_DONE;

  while (err == KITH_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (++rows > MAX_ROWS)
      err = KITH_ERR_LIMIT;
    else
      err = fn(s, st, ctx);
  }
  if (err == KITH_OK && rc != SQLITE_DONE)
    err = map_rc(rc);
  unbind(st);
  return err;
}

/* The blob in col if it is exactly n bytes, else NULL. */
static const uint8_t *col_fixed(sqlite3_stmt *st, int col, size_t n) {
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
    return map_rc(rc);
  (void)sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
  rc = sqlite3_exec(s->db,
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                    " PRAGMA foreign_keys=ON;",
                    NULL, NULL, NULL);
  return map_rc(rc);
}

static kith_err read_user_version(kith_store *s, int *version) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
  if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    *version = sqlite3_column_int(st, 0);
    rc = SQLITE_OK;
  }
  (void)sqlite3_finalize(st);
  return map_rc(rc);
}

/* Creates the schema in a fresh file; refuses a newer one. */
static kith_err migrate(kith_store *s) {
  int version = 0;
  kith_err err = map_rc(sqlite3_exec(s->db, "BEGIN IMMEDIATE", 0, 0, 0));
  if (err)
    return err;
  err = read_user_version(s, &version);
  if (!err && version == 0)
    err = map_rc(sqlite3_exec(s->db, schema_sql, NULL, NULL, NULL));
  else if (!err && version == 1) /* a home made before relay friends */
    err = map_rc(sqlite3_exec(s->db, FRIENDS_SQL "PRAGMA user_version = 2;",
                              NULL, NULL, NULL));
  else if (!err && version != SCHEMA_VERSION)
    err = KITH_ERR_STATE;
  if (!err)
    err = map_rc(sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL));
  if (err && !sqlite3_get_autocommit(s->db))
    (void)sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  return err;
}

static kith_err prepare_all(kith_store *s) {
  for (int i = 0; i < ST_COUNT; i++) {
    int rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1,
                                SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
    if (rc != SQLITE_OK)
      return map_rc(rc);
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
  ad_init(&ad, "identity", "seed");
  ad_add_u64(&ad, 1);
  uint8_t *sseed = seal(s, &ad, seed, KITH_SEED_LEN, &seed_len);
  ad_init(&ad, "identity", "name");
  ad_add_u64(&ad, 1);
  uint8_t *sname = seal(s, &ad, name, name_len, &sname_len);

  sqlite3_stmt *st = s->st[ST_PUT_IDENTITY];
  int rc = sqlite3_bind_blob(st, 1, sseed, seed_len, g_free);
  rc = first_rc(rc, sqlite3_bind_blob(st, 2, sname, sname_len, g_free));
  return write_one(s, st, rc);
}

static kith_err read_identity(kith_store *s, sqlite3_stmt *st, uint8_t seed[32],
                              char **name) {
  ad_buf ad;
  size_t len = 0;
  ad_init(&ad, "identity", "seed");
  ad_add_u64(&ad, 1);
  kith_err err = unseal(s, &ad, st, 0, seed, KITH_SEED_LEN, &len);
  if (!err && len != KITH_SEED_LEN)
    err = KITH_ERR_CRYPTO;
  if (!err) {
    ad_init(&ad, "identity", "name");
    ad_add_u64(&ad, 1);
    err = unseal_str(s, &ad, st, 1, MAX_NAME, name);
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
    err = map_rc(rc);
  unbind(st);
  return err;
}

/* ---- groups ---- */

kith_err kith_store_put_group(kith_store *s, const uint8_t gid[32]) {
  if (!s || !gid)
    return KITH_ERR_ARG;
  sqlite3_stmt *st = s->st[ST_PUT_GROUP];
  return write_one(s, st, sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC));
}

static kith_err group_row(kith_store *s, sqlite3_stmt *st, void *ctx) {
  const uint8_t *gid = col_fixed(st, 0, 32);
  if (!gid)
    return KITH_ERR_IO;
  g_byte_array_append(ctx, gid, 32);
  return KITH_OK;
}

kith_err kith_store_list_groups(kith_store *s, GByteArray *gids) {
  if (!s || !gids)
    return KITH_ERR_ARG;
  guint orig = gids->len;
  kith_err err = each_row(s, s->st[ST_LIST_GROUPS], SQLITE_OK, group_row, gids);
  if (err)
    g_byte_array_set_size(gids, orig);
  return err;
}

/* ---- events and texts ---- */

static kith_err insert_event(kith_store *s, const kith_event *ev) {
  sqlite3_stmt *st = s->st[ST_PUT_EVENT];
  int rc = sqlite3_bind_blob(st, 1, ev->id, 32, SQLITE_STATIC);
  rc = first_rc(rc, sqlite3_bind_blob(st, 2, ev->group_id, 32, SQLITE_STATIC));
  rc = first_rc(rc, sqlite3_bind_int64(st, 3, u64_to_db(ev->depth)));
  rc = first_rc(rc, sqlite3_bind_int64(st, 4, ev->kind));
  rc = first_rc(rc, sqlite3_bind_blob(st, 5, ev->author, 32, SQLITE_STATIC));
  rc = first_rc(rc, sqlite3_bind_int64(st, 6, u64_to_db(ev->ts_ms)));
  rc = first_rc(
      rc, sqlite3_bind_blob(st, 7, ev->raw, (int)ev->raw_len, SQLITE_STATIC));
  if (rc != SQLITE_OK) {
    unbind(st);
    return map_rc(rc);
  }
  return run(st);
}

static kith_err insert_text(kith_store *s, const kith_event *ev,
                            const char *text, size_t text_len) {
  ad_buf ad;
  int sealed_len = 0;
  text_ad(&ad, ev->id, ev->group_id, ev->author, ev->ts_ms);
  uint8_t *sealed = seal(s, &ad, text, text_len, &sealed_len);

  sqlite3_stmt *st = s->st[ST_PUT_TEXT];
  int rc = sqlite3_bind_blob(st, 5, sealed, sealed_len, g_free);
  rc = first_rc(rc, sqlite3_bind_blob(st, 1, ev->id, 32, SQLITE_STATIC));
  rc = first_rc(rc, sqlite3_bind_blob(st, 2, ev->group_id, 32, SQLITE_STATIC));
  rc = first_rc(rc, sqlite3_bind_int64(st, 3, u64_to_db(ev->ts_ms)));
  rc = first_rc(rc, sqlite3_bind_blob(st, 4, ev->author, 32, SQLITE_STATIC));
  if (rc != SQLITE_OK) {
    unbind(st);
    return map_rc(rc);
  }
  return run(st);
}

kith_err kith_store_put_event(kith_store *s, const kith_event *ev,
                              const char *text, size_t text_len) {
  if (!s || !ev || !ev->raw || ev->raw_len == 0)
    return KITH_ERR_ARG;
  if (ev->raw_len > KITH_EVENT_MAX || (text && text_len > MAX_TEXT))
    return KITH_ERR_LIMIT;
  kith_err err = begin(s);
  if (err)
    return err;
  err = insert_event(s, ev);
  int inserted = !err && sqlite3_changes(s->db) > 0;
  /* A text arriving later for a stored event (once its epoch secret is
   * known) is still added; a text already stored is kept. */
  if (!err && text)
    err = insert_text(s, ev, text, text_len);
  if (err && inserted && s->batch && !sqlite3_get_autocommit(s->db)) {
    /* Inside a batch nothing rolls back for us: take the event row out
     * again, so that the event and its text are stored together or not. */
    sqlite3_stmt *del = s->st[ST_DEL_EVENT];
    (void)run_bound(del, sqlite3_bind_blob(del, 1, ev->id, 32, SQLITE_STATIC));
  }
  return finish(s, err);
}

static kith_err event_row(kith_store *s, sqlite3_stmt *st, void *ctx) {
  const void *raw = sqlite3_column_blob(st, 0);
  size_t len = (size_t)sqlite3_column_bytes(st, 0);
  if (!raw || len == 0 || len > KITH_EVENT_MAX)
    return KITH_ERR_IO;
  g_ptr_array_add(ctx, g_bytes_new(raw, len));
  return KITH_OK;
}

kith_err kith_store_load_events(kith_store *s, const uint8_t gid[32],
                                GPtrArray *out) {
  if (!s || !gid || !out)
    return KITH_ERR_ARG;
  sqlite3_stmt *st = s->st[ST_LOAD_EVENTS];
  GPtrArray *tmp =
      g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  int rc = sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC);
  kith_err err = each_row(s, st, rc, event_row, tmp);
  if (err) {
    g_ptr_array_unref(tmp);
    return err;
  }
  g_ptr_array_extend_and_steal(out, tmp);
  return KITH_OK;
}

void kith_stored_msg_free(kith_stored_msg *m) {
  if (!m)
    return;
  if (m->text) {
    sodium_memzero(m->text, strlen(m->text));
    g_free(m->text);
  }
  g_free(m);
}

typedef struct msg_ctx {
  const uint8_t *gid;
  GPtrArray *out;
} msg_ctx;

static kith_err msg_row(kith_store *s, sqlite3_stmt *st, void *vctx) {
  msg_ctx *c = vctx;
  const uint8_t *id = col_fixed(st, 0, 32);
  const uint8_t *sender = col_fixed(st, 1, 32);
  if (!id || !sender)
    return KITH_ERR_IO;
  kith_stored_msg *m = g_new0(kith_stored_msg, 1);
  memcpy(m->event_id, id, 32);
  memcpy(m->sender, sender, 32);
  m->ts_ms = u64_from_db(sqlite3_column_int64(st, 2));
  ad_buf ad;
  text_ad(&ad, m->event_id, c->gid, m->sender, m->ts_ms);
  kith_err err = unseal_str(s, &ad, st, 3, MAX_TEXT, &m->text);
  if (err) {
    kith_stored_msg_free(m);
    return err;
  }
  g_ptr_array_add(c->out, m);
  return KITH_OK;
}

kith_err kith_store_list_messages(kith_store *s, const uint8_t gid[32],
                                  size_t n, GPtrArray *out) {
  return kith_store_list_messages_before(s, gid, n, NULL, out);
}

kith_err kith_store_list_messages_before(kith_store *s, const uint8_t gid[32],
                                         size_t n, const uint8_t *before,
                                         GPtrArray *out) {
  if (!s || !gid || !out)
    return KITH_ERR_ARG;
  sqlite3_stmt *st = s->st[ST_LIST_MESSAGES];
  sqlite3_int64 limit = n == 0 || n > MAX_ROWS ? MAX_ROWS : (sqlite3_int64)n;
  msg_ctx c = {gid, g_ptr_array_new_with_free_func(
                        (GDestroyNotify)kith_stored_msg_free)};
  int rc = sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC);
  rc = first_rc(rc, sqlite3_bind_int64(st, 2, limit));
  rc = first_rc(rc, before ? sqlite3_bind_blob(st, 3, before, 32, SQLITE_STATIC)
                           : sqlite3_bind_null(st, 3));
  kith_err err = each_row(s, st, rc, msg_row, &c);
  if (err) {
    g_ptr_array_unref(c.out);
    return err;
  }
  g_ptr_array_extend_and_steal(out, c.out);
  return KITH_OK;
}

/* ---- epoch secrets ---- */

static void secret_ad(ad_buf *ad, const uint8_t *gid, uint64_t epoch) {
  ad_init(ad, "secrets", "secret");
  ad_add(ad, gid, 32);
  ad_add_u64(ad, epoch);
}

kith_err kith_store_put_secret(kith_store *s, const uint8_t gid[32],
                               uint64_t epoch, const uint8_t secret[32]) {
  if (!s || !gid || !secret)
    return KITH_ERR_ARG;
  ad_buf ad;
  int sealed_len = 0;
  secret_ad(&ad, gid, epoch);
  uint8_t *sealed = seal(s, &ad, secret, 32, &sealed_len);

  sqlite3_stmt *st = s->st[ST_PUT_SECRET];
  int rc = sqlite3_bind_blob(st, 3, sealed, sealed_len, g_free);
  rc = first_rc(rc, sqlite3_bind_blob(st, 1, gid, 32, SQLITE_STATIC));
  rc = first_rc(rc, sqlite3_bind_int64(st, 2, u64_to_db(epoch)));
  return write_one(s, st, rc);
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
  uint64_t epoch = u64_from_db(sqlite3_column_int64(st, 0));
  secret_ad(&ad, c->gid, epoch);
  put_le64(block, epoch);
  kith_err err = unseal(s, &ad, st, 1, block + 8, 32, &len);
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
  kith_err err = each_row(s, st, rc, secret_row, &c);
  if (err) {
    /* Do not leave part of the secrets behind in the caller's buffer. */
    sodium_memzero(out->data + orig, out->len - orig);
    g_byte_array_set_size(out, orig);
  }
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
  rc = first_rc(rc,
                sqlite3_bind_text(st, 2, host, (int)host_len, SQLITE_STATIC));
  rc = first_rc(rc, sqlite3_bind_int(st, 3, port));
  rc = first_rc(rc, sqlite3_bind_int64(st, 4, u64_to_db(seen_ms)));
  return write_one(s, st, rc);
}

static kith_err peer_row(kith_store *s, sqlite3_stmt *st, void *ctx) {
  kith_stored_peer p;
  const uint8_t *node = col_fixed(st, 0, 32);
  const unsigned char *host = sqlite3_column_text(st, 1);
  size_t host_len = (size_t)sqlite3_column_bytes(st, 1);
  sqlite3_int64 port = sqlite3_column_int64(st, 2);

  if (!node || !host || host_len > MAX_HOST || port < 0 || port > 65535)
    return KITH_ERR_IO;
  memset(&p, 0, sizeof p);
  memcpy(p.node, node, 32);
  memcpy(p.host, host, host_len);
  p.port = (uint16_t)port;
  p.seen_ms = u64_from_db(sqlite3_column_int64(st, 3));
  g_array_append_val((GArray *)ctx, p);
  return KITH_OK;
}

kith_err kith_store_list_peers(kith_store *s, GArray *out) {
  if (!s || !out || g_array_get_element_size(out) != sizeof(kith_stored_peer))
    return KITH_ERR_ARG;
  guint orig = out->len;
  kith_err err = each_row(s, s->st[ST_LIST_PEERS], SQLITE_OK, peer_row, out);
  if (err)
    g_array_set_size(out, orig);
  return err;
}

kith_err kith_store_batch_begin(kith_store *s) {
  if (!s || s->batch)
    return KITH_ERR_STATE;
  kith_err err = run(s->st[ST_BEGIN]);
  if (err == KITH_OK)
    s->batch = 1;
  return err;
}

kith_err kith_store_batch_commit(kith_store *s) {
  if (!s || !s->batch)
    return KITH_ERR_STATE;
  s->batch = 0;
  if (sqlite3_get_autocommit(s->db))
    return KITH_ERR_IO; /* the transaction was already rolled back */
  return finish(s, KITH_OK);
}

void kith_store_batch_abort(kith_store *s) {
  if (!s || !s->batch)
    return;
  s->batch = 0;
  if (!sqlite3_get_autocommit(s->db))
    (void)run(s->st[ST_ROLLBACK]);
}

int kith_store_in_batch(const kith_store *s) {
  return s && s->batch;
}

/* ---- relay friends ---- */

static void friend_ad(ad_buf *ad, const uint8_t node[32]) {
  ad_init(ad, "friends", "name");
  ad_add(ad, node, 32);
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
  uint8_t *sname = seal(s, &ad, name, name_len, &sname_len);
  sqlite3_stmt *st = s->st[ST_PUT_FRIEND];
  int rc = sqlite3_bind_blob(st, 1, node, 32, SQLITE_STATIC);
  rc = first_rc(rc, sqlite3_bind_blob(st, 2, sname, sname_len, g_free));
  rc = first_rc(rc,
                sqlite3_bind_text(st, 3, host, (int)host_len, SQLITE_STATIC));
  rc = first_rc(rc, sqlite3_bind_int(st, 4, port));
  return write_one(s, st, rc);
}

kith_err kith_store_remove_friend(kith_store *s, const uint8_t node[32]) {
  if (!s || !node)
    return KITH_ERR_ARG;
  sqlite3_stmt *st = s->st[ST_DEL_FRIEND];
  kith_err err =
      write_one(s, st, sqlite3_bind_blob(st, 1, node, 32, SQLITE_STATIC));
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
  const uint8_t *node = col_fixed(st, 0, 32);
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
  kith_err err = unseal_str(s, &ad, st, 1, MAX_NAME, &f->name);
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
      each_row(s, s->st[ST_LIST_FRIENDS], SQLITE_OK, friend_row, tmp);
  if (err == KITH_OK)
    g_ptr_array_extend_and_steal(out, tmp);
  else
    g_ptr_array_unref(tmp);
  return err;
}
