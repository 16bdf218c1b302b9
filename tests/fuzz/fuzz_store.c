/* libFuzzer target: store rows, as a damaged or tampered kith.db would
 * hold them. Each input fills the tables of a real store (through a
 * second SQLite connection, as anything else on the disk could) and then
 * every reader of core/store.h runs over them: the readers must reject
 * what they cannot use and never crash, leak or read out of bounds.
 *
 * The input is a sequence of rows: one byte picks the table (value % 7:
 * identity, groups, events, texts, secrets, peers, friends), then each
 * column is one byte for its type (value % 6: NULL, integer, text, blob,
 * the group id the readers ask for, a 32-byte id hashed from the part)
 * and one fuzz_take part. */
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/store.h"
#include "fuzz_common.h"

static const char *const insert_sql[] = {
    "INSERT OR REPLACE INTO identity VALUES(?,?,?)",
    "INSERT OR REPLACE INTO groups VALUES(?)",
    "INSERT OR REPLACE INTO events VALUES(?,?,?,?,?,?,?)",
    "INSERT OR REPLACE INTO texts VALUES(?,?,?,?,?)",
    "INSERT OR REPLACE INTO secrets VALUES(?,?,?)",
    "INSERT OR REPLACE INTO peers VALUES(?,?,?,?)",
    "INSERT OR REPLACE INTO friends VALUES(?,?,?,?)",
};
#define N_TABLES (sizeof insert_sql / sizeof insert_sql[0])

static char *dir;
static kith_store *store;
static sqlite3 *db; /* the "anything else" connection */
static sqlite3_stmt *insert[N_TABLES];

static void cleanup(void) {
  static const char *const suffixes[] = {"", "-wal", "-shm"};
  kith_store_close(store);
  for (size_t i = 0; i < N_TABLES; i++)
    sqlite3_finalize(insert[i]);
  sqlite3_close(db);
  for (size_t i = 0; i < 3; i++) {
    char *f = g_strconcat(dir, "/kith.db", suffixes[i], NULL);
    (void)unlink(f);
    g_free(f);
  }
  (void)rmdir(dir);
  g_free(dir);
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
  memset(key, FUZZ_STORE_KEY_BYTE, sizeof key);
  if (kith_store_open(path, key, &store) != KITH_OK ||
      sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
    abort();
  sqlite3_busy_timeout(db, 5000);
  for (size_t i = 0; i < N_TABLES; i++)
    if (sqlite3_prepare_v2(db, insert_sql[i], -1, &insert[i], NULL) !=
        SQLITE_OK)
      abort();
  g_free(path);
  atexit(cleanup);
}

static void bind_value(sqlite3_stmt *st, int col, fuzz_in *in) {
  uint8_t type = fuzz_u8(in), id[32];
  const uint8_t *p;
  size_t n = fuzz_take(in, &p);
  sqlite3_int64 v = 0;
  switch (type % 6) {
  case 0:
    sqlite3_bind_null(st, col);
    break;
  case 1:
    memcpy(&v, p, n < sizeof v ? n : sizeof v);
    sqlite3_bind_int64(st, col, v);
    break;
  case 2:
    sqlite3_bind_text(st, col, (const char *)p, (int)n, SQLITE_TRANSIENT);
    break;
  case 3:
    sqlite3_bind_blob(st, col, p, (int)n, SQLITE_TRANSIENT);
    break;
  case 4:
    sqlite3_bind_blob(st, col, fuzz_store_gid, sizeof fuzz_store_gid,
                      SQLITE_STATIC);
    break;
  default:
    crypto_generichash(id, sizeof id, p, n, NULL, 0);
    sqlite3_bind_blob(st, col, id, sizeof id, SQLITE_TRANSIENT);
  }
}

static void put_row(fuzz_in *in) {
  sqlite3_stmt *st = insert[fuzz_u8(in) % N_TABLES];
  for (int col = 1; col <= sqlite3_bind_parameter_count(st); col++)
    bind_value(st, col, in);
  (void)sqlite3_step(st); /* constraints may refuse the row: fine */
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
}

static void read_identity_and_groups(void) {
  uint8_t seed[32];
  char *name = NULL;
  GByteArray *gids = g_byte_array_new(), *secrets = g_byte_array_new();
  if (kith_store_get_identity(store, seed, &name) == KITH_OK && name == NULL)
    abort();
  g_free(name);
  if (kith_store_list_groups(store, gids) == KITH_OK && gids->len % 32 != 0)
    abort();
  if (kith_store_load_secrets(store, fuzz_store_gid, secrets) == KITH_OK &&
      secrets->len % 40 != 0)
    abort();
  g_byte_array_unref(gids);
  g_byte_array_unref(secrets);
}

static void read_events_and_texts(void) {
  GPtrArray *events =
      g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  GPtrArray *msgs =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_stored_msg_free);
  (void)!kith_store_load_events(store, fuzz_store_gid, events);
  (void)!kith_store_list_messages(store, fuzz_store_gid, 0, msgs);
  for (guint i = 0; i < msgs->len; i++)
    if (((kith_stored_msg *)msgs->pdata[i])->text == NULL)
      abort();
  uint8_t before[32];
  memcpy(before,
         msgs->len ? ((kith_stored_msg *)msgs->pdata[0])->event_id
                   : fuzz_store_gid,
         32);
  g_ptr_array_set_size(msgs, 0);
  (void)!kith_store_list_messages_before(store, fuzz_store_gid, 2, before,
                                         msgs);
  g_ptr_array_unref(events);
  g_ptr_array_unref(msgs);
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_in in = {data, size};
  if (store == NULL)
    setup();
  if (sqlite3_exec(db,
                   "DELETE FROM texts; DELETE FROM events; DELETE FROM "
                   "identity; DELETE FROM groups; DELETE FROM secrets; "
                   "DELETE FROM peers; DELETE FROM friends;",
                   NULL, NULL, NULL) != SQLITE_OK)
    abort();
  while (in.n > 0)
    put_row(&in);
  read_identity_and_groups();
  read_events_and_texts();
  read_peers_and_friends();
  return 0;
}
