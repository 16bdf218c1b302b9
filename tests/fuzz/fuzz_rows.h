/* kith: the store rows of fuzz_store.c, shared with the seed-corpus
 * generator (gen_corpus.c, which writes real rows in this form).
 *
 * A row is one byte for its table (value % FUZZ_N_TABLES, the tables of
 * schema 3 in fuzz_tables order), then for each column one byte for its
 * type (value % FUZZ_COL_TYPES) and one fuzz_take part:
 *   FUZZ_COL_NULL    NULL (the part is ignored)
 *   FUZZ_COL_INT     an integer: the part's first 8 bytes, little-endian
 *   FUZZ_COL_TEXT    the part as text
 *   FUZZ_COL_BLOB    the part as a blob
 *   FUZZ_COL_GID     the group id under test (the part is ignored)
 *   FUZZ_COL_ID      a 32-byte id: BLAKE2b-256 of the part
 *   FUZZ_COL_SEALED  the part sealed as the store seals that column
 *                    (docs/protocol.md 13.3: the storage key of
 *                    fuzz_store.c, the additional data made of the row's
 *                    earlier columns), so that what the store unseals is
 *                    the fuzzer's; a blob in a column that is not sealed.
 * Sealing uses a zero nonce: the same input writes the same bytes. */
#ifndef KITH_FUZZ_ROWS_H
#define KITH_FUZZ_ROWS_H

#include "fuzz_common.h"

enum {
  FUZZ_COL_NULL,
  FUZZ_COL_INT,
  FUZZ_COL_TEXT,
  FUZZ_COL_BLOB,
  FUZZ_COL_GID,
  FUZZ_COL_ID,
  FUZZ_COL_SEALED,
  FUZZ_COL_TYPES
};

#define FUZZ_MAX_COLS 13

typedef struct fuzz_table {
  const char *name;
  int n_cols;
  const char *cols[FUZZ_MAX_COLS];
} fuzz_table;

/* The tables of store schema 3 and their columns, in schema order. */
static const fuzz_table fuzz_tables[] = {
    {"identity", 3, {"k", "seed", "name"}},
    {"groups", 4, {"id", "n_events", "read_ts", "read_id"}},
    {"events",
     13,
     {"id", "group_id", "depth", "kind", "author", "ts", "raw", "cseq", "cf",
      "facts", "text", "ref", "flag"}},
    {"heads", 2, {"group_id", "id"}},
    {"chains", 3, {"group_id", "k", "state"}},
    {"secrets", 3, {"group_id", "epoch", "secret"}},
    {"peers", 4, {"node", "host", "port", "seen"}},
    {"friends", 4, {"node", "name", "host", "port"}},
};
#define FUZZ_N_TABLES (sizeof fuzz_tables / sizeof fuzz_tables[0])
enum {
  FUZZ_T_IDENTITY,
  FUZZ_T_GROUPS,
  FUZZ_T_EVENTS,
  FUZZ_T_HEADS,
  FUZZ_T_CHAINS,
  FUZZ_T_SECRETS,
  FUZZ_T_PEERS,
  FUZZ_T_FRIENDS
};

/* One column's value as bound: its type (FUZZ_COL_NULL .. FUZZ_COL_BLOB:
 * the other types are blobs once made) and bytes, or integer. */
typedef struct fuzz_val {
  int type;
  const uint8_t *p;
  size_t n;
  int64_t v;
} fuzz_val;

static inline int64_t fuzz_le64(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = n < 8 ? n : 8; i-- > 0;)
    v = v << 8 | p[i];
  return (int64_t)v;
}

/* A sealed column and its additional data (docs/protocol.md 13.3): a
 * label, then parts of the row: a column's bytes (len 32 or 40), or a
 * column's plain value as LE64 (len FUZZ_AD_U64: stored with its top bit
 * flipped; FUZZ_AD_ONE: the constant 1). */
#define FUZZ_AD_U64 0
#define FUZZ_AD_ONE (-1)
typedef struct fuzz_sealed {
  size_t t;
  int col;
  const char *label;
  size_t label_len;
  int n_parts;
  struct {
    int col, len;
  } parts[4];
} fuzz_sealed;
#define FUZZ_LABEL(s) s, sizeof s - 1
static const fuzz_sealed fuzz_sealed_cols[] = {
    {FUZZ_T_IDENTITY, 1, FUZZ_LABEL("identity\0seed\0"), 1, {{0, FUZZ_AD_ONE}}},
    {FUZZ_T_IDENTITY, 2, FUZZ_LABEL("identity\0name\0"), 1, {{0, FUZZ_AD_ONE}}},
    {FUZZ_T_EVENTS,
     10,
     FUZZ_LABEL("texts\0text\0"),
     4,
     {{0, 32}, {1, 32}, {4, 32}, {5, FUZZ_AD_U64}}},
    {FUZZ_T_CHAINS, 2, FUZZ_LABEL("chains\0state\0"), 2, {{0, 32}, {1, 40}}},
    {FUZZ_T_SECRETS,
     2,
     FUZZ_LABEL("secrets\0secret\0"),
     2,
     {{0, 32}, {1, FUZZ_AD_U64}}},
    {FUZZ_T_FRIENDS, 1, FUZZ_LABEL("friends\0name\0"), 1, {{0, 32}}},
};
#undef FUZZ_LABEL

/* One part of an additional data from the row (zeros for a column that
 * holds no such blob). */
static inline void fuzz_ad_part(GByteArray *ad, const fuzz_val *x, int len) {
  static const uint8_t zero[40];
  if (len > 0) {
    int fits = (x->type == FUZZ_COL_BLOB || x->type == FUZZ_COL_TEXT) &&
               x->n == (size_t)len;
    g_byte_array_append(ad, fits ? x->p : zero, (guint)len);
    return;
  }
  uint64_t v = len == FUZZ_AD_ONE        ? 1
               : x->type == FUZZ_COL_INT ? (uint64_t)x->v ^ UINT64_C(1) << 63
                                         : UINT64_C(1) << 63;
  uint8_t le[8];
  for (int i = 0; i < 8; i++)
    le[i] = (uint8_t)(v >> (8 * i));
  g_byte_array_append(ad, le, 8);
}

/* The additional data of column col of table t from the row's other
 * columns, appended to ad; 0 if the column is not sealed. */
static inline int fuzz_row_ad(size_t t, int col, const fuzz_val *row,
                              GByteArray *ad) {
  for (size_t i = 0; i < G_N_ELEMENTS(fuzz_sealed_cols); i++) {
    const fuzz_sealed *c = &fuzz_sealed_cols[i];
    if (c->t != t || c->col != col)
      continue;
    g_byte_array_append(ad, (const uint8_t *)c->label, (guint)c->label_len);
    for (int k = 0; k < c->n_parts; k++)
      fuzz_ad_part(ad, &row[c->parts[k].col], c->parts[k].len);
    return 1;
  }
  return 0;
}

static inline void fuzz_store_key(uint8_t key[32]) {
  memset(key, FUZZ_STORE_KEY_BYTE, 32);
}

#define FUZZ_NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define FUZZ_SEAL_OVERHEAD                                                     \
  (FUZZ_NONCE_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES)

/* Seals (seal 1: nonce (zero) || ciphertext of p) or opens (seal 0) p as
 * the store does: a new buffer of *out_len bytes, or NULL if it does not
 * open. */
static inline uint8_t *fuzz_seal(int seal, const GByteArray *ad,
                                 const uint8_t *p, size_t n, size_t *out_len) {
  uint8_t key[32];
  unsigned long long len = 0;
  uint8_t *out = g_malloc0(n + FUZZ_SEAL_OVERHEAD);
  int rc;
  fuzz_store_key(key);
  if (seal)
    rc = crypto_aead_xchacha20poly1305_ietf_encrypt(
        out + FUZZ_NONCE_LEN, &len, p, n, ad->data, ad->len, NULL, out, key);
  else
    rc = n < FUZZ_SEAL_OVERHEAD ||
         crypto_aead_xchacha20poly1305_ietf_decrypt(
             out, &len, NULL, p + FUZZ_NONCE_LEN, n - FUZZ_NONCE_LEN, ad->data,
             ad->len, p, key) != 0;
  if (rc != 0) {
    g_free(out);
    return NULL;
  }
  *out_len = (seal ? FUZZ_NONCE_LEN : 0) + (size_t)len;
  return out;
}

#endif
