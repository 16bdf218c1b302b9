/* kith: node identity (Ed25519) and the text form of node ids. */
#include "ident.h"

#include <limits.h>
#include <sodium.h>
#include <string.h>

static const char B32_ALPHABET[] = "abcdefghijklmnopqrstuvwxyz234567";

kith_err kith_ident_from_seed(kith_ident *id, const uint8_t *seed) {
  uint8_t *sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
  uint8_t *xsk = sodium_malloc(crypto_scalarmult_curve25519_BYTES);
  if (sk == NULL || xsk == NULL) {
    sodium_free(sk);
    sodium_free(xsk);
    return KITH_ERR_NOMEM;
  }
  memset(id, 0, sizeof *id);
  id->sk = sk;
  id->xsk = xsk;
  if (crypto_sign_seed_keypair(id->pk, id->sk, seed) != 0 ||
      crypto_sign_ed25519_pk_to_curve25519(id->xpk, id->pk) != 0 ||
      crypto_sign_ed25519_sk_to_curve25519(id->xsk, id->sk) != 0) {
    kith_ident_clear(id);
    return KITH_ERR_CRYPTO;
  }
  return KITH_OK;
}

kith_err kith_ident_generate(kith_ident *id) {
  uint8_t seed[KITH_SEED_LEN];
  randombytes_buf(seed, sizeof seed);
  kith_err err = kith_ident_from_seed(id, seed);
  sodium_memzero(seed, sizeof seed);
  return err;
}

void kith_ident_seed(const kith_ident *id, uint8_t seed[KITH_SEED_LEN]) {
  crypto_sign_ed25519_sk_to_seed(seed, id->sk);
}

void kith_ident_clear(kith_ident *id) {
  sodium_free(id->sk); /* sodium_free wipes before freeing */
  sodium_free(id->xsk);
  sodium_memzero(id, sizeof *id);
}

void kith_ident_sign(const kith_ident *id, const void *msg, size_t len,
                     uint8_t sig[KITH_SIG_LEN]) {
  crypto_sign_detached(sig, NULL, msg, len, id->sk);
}

kith_err kith_sig_verify(const uint8_t pk[KITH_ID_LEN], const void *msg,
                         size_t len, const uint8_t sig[KITH_SIG_LEN]) {
  if (crypto_sign_verify_detached(sig, msg, len, pk) != 0)
    return KITH_ERR_SIGNATURE;
  return KITH_OK;
}

kith_err kith_seal(const uint8_t to[KITH_ID_LEN], const void *msg, size_t len,
                   uint8_t *out) {
  uint8_t xpk[crypto_box_PUBLICKEYBYTES];
  if (len > SIZE_MAX - KITH_SEAL_OVERHEAD)
    return KITH_ERR_ARG;
  /* Fails for ids that are not valid Ed25519 points (peer-supplied). */
  if (crypto_sign_ed25519_pk_to_curve25519(xpk, to) != 0)
    return KITH_ERR_CRYPTO;
  if (crypto_box_seal(out, msg, len, xpk) != 0)
    return KITH_ERR_CRYPTO;
  return KITH_OK;
}

kith_err kith_unseal(const kith_ident *id, const uint8_t *box, size_t len,
                     uint8_t *out) {
  if (len < KITH_SEAL_OVERHEAD)
    return KITH_ERR_CRYPTO;
  if (crypto_box_seal_open(out, box, len, id->xpk, id->xsk) != 0)
    return KITH_ERR_CRYPTO;
  return KITH_OK;
}

void kith_base32_encode(const uint8_t *in, size_t len, char *out) {
  uint32_t acc = 0;
  unsigned bits = 0;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    acc = (acc << 8) | in[i];
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out[o++] = B32_ALPHABET[(acc >> bits) & 31];
    }
  }
  if (bits > 0)
    out[o++] = B32_ALPHABET[(acc << (5 - bits)) & 31];
  out[o] = '\0';
}

static int b32_value(char c) {
  if (c >= 'a' && c <= 'z')
    return c - 'a';
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= '2' && c <= '7')
    return c - '2' + 26;
  return -1;
}

/* Every character is checked, but output stops after max bytes (so a long
 * input can be decoded as a prefix). Leftover bits of a final partial group
 * are dropped here; kith_id_from_text insists they are zero. */
int kith_base32_decode(const char *in, size_t inlen, uint8_t *out, size_t max) {
  uint32_t acc = 0;
  unsigned bits = 0;
  size_t o = 0;
  if (max > INT_MAX)
    max = INT_MAX;
  for (size_t i = 0; i < inlen; i++) {
    int v = b32_value(in[i]);
    if (v < 0)
      return -1;
    acc = (acc << 5) | (uint32_t)v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      if (o < max)
        out[o++] = (uint8_t)(acc >> bits);
    }
  }
  return (int)o;
}

void kith_id_to_text(const uint8_t id[KITH_ID_LEN],
                     char out[KITH_ID_TEXT_LEN + 1]) {
  kith_base32_encode(id, KITH_ID_LEN, out);
}

kith_err kith_id_from_text(const char *s, uint8_t id[KITH_ID_LEN]) {
  uint8_t tmp[KITH_ID_LEN];
  if (s == NULL || strnlen(s, KITH_ID_TEXT_LEN + 1) != KITH_ID_TEXT_LEN)
    return KITH_ERR_ARG;
  if (kith_base32_decode(s, KITH_ID_TEXT_LEN, tmp, sizeof tmp) != KITH_ID_LEN)
    return KITH_ERR_ARG;
  /* 52 chars carry 260 bits: the last 4 must be zero, so that each id has
   * exactly one text form. */
  if ((b32_value(s[KITH_ID_TEXT_LEN - 1]) & 0x0f) != 0)
    return KITH_ERR_ARG;
  memcpy(id, tmp, KITH_ID_LEN);
  return KITH_OK;
}
