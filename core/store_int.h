/* kith: internals of the SQLite store shared by store.c (open, schema,
 * identity, peers, friends) and store_events.c (events, heads, keys,
 * chains, the log). Not an API. */
#ifndef KITH_STORE_INT_H
#define KITH_STORE_INT_H

#include "store.h"

#include <sodium.h>
#include <sqlite3.h>

#define KEY_LEN 32
/* Caps on what one call reads or writes. */
#define MAX_ROWS (1 << 24)
#define MAX_NAME 1024
#define MAX_TEXT KITH_EVENT_MAX_BODY
#define MAX_HOST 63
#define MAX_BLOB (4u << 20)
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define SEAL_OVERHEAD (NONCE_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES)
#define AD_MAX 160

enum stmt_id {
  ST_BEGIN,
  ST_COMMIT,
  ST_ROLLBACK,
  ST_PUT_IDENTITY,
  ST_GET_IDENTITY,
  ST_PUT_GROUP,
  ST_LIST_GROUPS,
  ST_GET_GROUP,
  ST_SET_COUNT,
  ST_SET_READ,
  ST_PUT_EVENT,
  ST_CONVERT_EVENT,
  ST_DROP_HEADS_OF,
  ST_PUT_HEAD,
  ST_GET_SUMMARY,
  ST_GET_RAW,
  ST_LOAD_CONTROLS,
  ST_LOAD_HEADS,
  ST_LOAD_OLD,
  ST_EACH_ID,
  ST_FIND_RANGE,
  ST_SCAN_IDS,
  ST_IDS_BY_PREFIX,
  ST_HAS_ID,
  ST_DROP_EVENTS,
  ST_DROP_HEADS,
  ST_DROP_SECRETS,
  ST_DROP_CHAINS,
  ST_DROP_GROUP,
  ST_LIST_LOG,
  ST_LIST_RELATED,
  ST_GET_ITEM,
  ST_COUNT_AFTER,
  ST_PUT_SECRET,
  ST_LOAD_SECRETS,
  ST_PUT_CHAIN,
  ST_GET_CHAIN,
  ST_PUT_PEER,
  ST_LIST_PEERS,
  ST_PUT_FRIEND,
  ST_DEL_FRIEND,
  ST_LIST_FRIENDS,
  ST_COUNT
};

struct kith_store {
  sqlite3 *db;
  uint8_t *key; /* KEY_LEN bytes, sodium_malloc'ed, read-only */
  sqlite3_stmt *st[ST_COUNT];
  int batch;       /* inside kith_store_batch_begin .. _commit */
  kith_err failed; /* a write of this batch failed (KITH_ERR_FULL or
                      KITH_ERR_IO): the batch is lost */
};

typedef struct ad_buf {
  uint8_t b[AD_MAX];
  size_t len;
} ad_buf;

sqlite3_int64 kst_u64_to_db(uint64_t v);
uint64_t kst_u64_from_db(sqlite3_int64 v);
void kst_ad_add(ad_buf *ad, const void *p, size_t n);
void kst_ad_add_u64(ad_buf *ad, uint64_t v);
/* Starts the additional data with table NUL column NUL. */
void kst_ad_init(ad_buf *ad, const char *table, const char *column);
/* Returns nonce || ciphertext, g_malloc'ed (not secret). */
uint8_t *kst_seal(const kith_store *s, const ad_buf *ad, const void *pt,
                  size_t len, int *out_len);
/* Opens the sealed column col into pt (cap bytes): KITH_ERR_CRYPTO if it
 * does not authenticate. */
kith_err kst_unseal(const kith_store *s, const ad_buf *ad, sqlite3_stmt *st,
                    int col, uint8_t *pt, size_t cap, size_t *pt_len);
kith_err kst_unseal_str(const kith_store *s, const ad_buf *ad, sqlite3_stmt *st,
                        int col, size_t cap, char **out);
kith_err kst_map_rc(int rc);
int kst_first_rc(int a, int b);
void kst_unbind(sqlite3_stmt *st);
kith_err kst_run(sqlite3_stmt *st);
kith_err kst_begin(kith_store *s);
/* Commits if err is KITH_OK, otherwise (or if COMMIT fails) rolls back. */
kith_err kst_finish(kith_store *s, kith_err err);
/* One bound statement as a transaction of its own (or part of the batch). */
kith_err kst_write_one(kith_store *s, sqlite3_stmt *st, int bind_rc);
typedef kith_err (*kst_row_fn)(kith_store *s, sqlite3_stmt *st, void *ctx);
kith_err kst_each_row(kith_store *s, sqlite3_stmt *st, int bind_rc,
                      kst_row_fn fn, void *ctx);
/* The blob in col if it is exactly n bytes, else NULL. */
const uint8_t *kst_col_fixed(sqlite3_stmt *st, int col, size_t n);
void kst_put_le64(uint8_t out[8], uint64_t v);

#endif
