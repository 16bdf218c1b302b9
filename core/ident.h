/* kith: node identity (Ed25519) and the text form of node ids.
 *
 * Node id = the 32-byte Ed25519 public key. Its text form is lowercase
 * RFC 4648 base32 without padding: 52 characters. The X25519 key pair used
 * for sealed boxes is derived from the Ed25519 keys. */
#ifndef KITH_IDENT_H
#define KITH_IDENT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define KITH_ID_LEN 32
#define KITH_ID_TEXT_LEN 52
#define KITH_SIG_LEN 64
#define KITH_SEED_LEN 32
#define KITH_SEAL_OVERHEAD 48 /* crypto_box_SEALBYTES */

typedef struct kith_ident {
  uint8_t pk[KITH_ID_LEN];
  uint8_t *sk;     /* 64 bytes, sodium_malloc'ed */
  uint8_t xpk[32]; /* X25519 public */
  uint8_t *xsk;    /* 32 bytes, sodium_malloc'ed */
} kith_ident;

/* Fresh random identity. Free with kith_ident_clear. */
KITH_MUST kith_err kith_ident_generate(kith_ident *id);
/* Deterministic identity from a 32-byte seed (tests, storage). */
KITH_MUST kith_err kith_ident_from_seed(kith_ident *id, const uint8_t *seed);
/* Copies the 32-byte seed out (for storage under the storage key). */
void kith_ident_seed(const kith_ident *id, uint8_t seed[KITH_SEED_LEN]);
/* Wipes and frees the secret parts. Safe on a zeroed struct. */
void kith_ident_clear(kith_ident *id);

/* Detached Ed25519 signature over msg. */
void kith_ident_sign(const kith_ident *id, const void *msg, size_t len,
                     uint8_t sig[KITH_SIG_LEN]);
/* Returns KITH_OK or KITH_ERR_SIGNATURE. */
KITH_MUST kith_err kith_sig_verify(const uint8_t pk[KITH_ID_LEN],
                                   const void *msg, size_t len,
                                   const uint8_t sig[KITH_SIG_LEN]);

/* Anonymous sealed box to a node id (its X25519 key is derived from it).
 * out must hold len + KITH_SEAL_OVERHEAD bytes. */
KITH_MUST kith_err kith_seal(const uint8_t to[KITH_ID_LEN], const void *msg,
                             size_t len, uint8_t *out);
/* Opens a sealed box sent to id; out holds len - KITH_SEAL_OVERHEAD bytes.
 * KITH_ERR_CRYPTO if it was not for us or was altered. */
KITH_MUST kith_err kith_unseal(const kith_ident *id, const uint8_t *box,
                               size_t len, uint8_t *out);

/* Text form: out gets 52 chars and a NUL. */
void kith_id_to_text(const uint8_t id[KITH_ID_LEN],
                     char out[KITH_ID_TEXT_LEN + 1]);
/* Parses exactly 52 chars (case-insensitive). KITH_ERR_ARG if invalid. */
KITH_MUST kith_err kith_id_from_text(const char *s, uint8_t id[KITH_ID_LEN]);
/* Generic lowercase base32 without padding (used for ids and event ids).
 * out needs (len*8+4)/5 + 1 bytes. */
void kith_base32_encode(const uint8_t *in, size_t len, char *out);
/* Returns decoded length or -1 on bad chars; decodes at most max bytes. */
int kith_base32_decode(const char *in, size_t inlen, uint8_t *out, size_t max);

#endif
