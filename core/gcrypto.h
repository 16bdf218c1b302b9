/* kith: group cryptography primitives.
 *
 * Epoch secret E (32 random bytes), shared by the members of one epoch.
 *   meta_key(E)        = BLAKE2b-256(key=E, "kith meta v1")
 *   chain_0(E, sender) = BLAKE2b-256(key=E, "kith chain v1" || sender)
 *   message key n      = BLAKE2b-256(key=chain_n, 0x01)
 *   chain_{n+1}        = BLAKE2b-256(key=chain_n, 0x02)
 *   epoch_id(E)        = first 8 bytes (little endian) of
 *                        BLAKE2b-256(key=meta_key(E), "kith epoch id v1"),
 *                        top two bits cleared, 0 mapped to 1.
 * The epoch id names an epoch in bodies; because it is a one-way function
 * of the meta key, anyone handed a key for an epoch can check that it is
 * the key of that epoch (a member cannot plant wrong keys in a newcomer).
 * Bodies are sealed with XChaCha20-Poly1305-IETF, additional data given by
 * the caller (group.c binds group, kind, author): with a random 24-byte
 * nonce sent in front (kith_gcrypto_seal: keys used many times, the meta
 * key), or with a nonce the caller derives and does not send
 * (kith_gcrypto_seal_at: message keys, each used for one message). */
#ifndef KITH_GCRYPTO_H
#define KITH_GCRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define KITH_KEY_LEN 32
#define KITH_NONCE_LEN 24
#define KITH_AEAD_TAG 16
#define KITH_SKIPPED_KEYS_MAX 1000 /* per sender chain, out-of-order window */

void kith_gcrypto_meta_key(const uint8_t secret[KITH_KEY_LEN],
                           uint8_t key[KITH_KEY_LEN]);
/* Largest epoch id (bit 63 is free for callers to use as a flag). */
#define KITH_EPOCH_ID_MAX ((UINT64_C(1) << 62) - 1)
uint64_t kith_gcrypto_epoch_id(const uint8_t meta_key[KITH_KEY_LEN]);
void kith_gcrypto_chain_start(const uint8_t secret[KITH_KEY_LEN],
                              const uint8_t sender[32],
                              uint8_t chain[KITH_KEY_LEN]);
/* Writes message key for the current chain position and advances chain
 * in place (the old chain key is overwritten). */
void kith_gcrypto_chain_step(uint8_t chain[KITH_KEY_LEN],
                             uint8_t msg_key[KITH_KEY_LEN]);

/* out gets nonce || ciphertext || tag: len + 40 bytes. */
void kith_gcrypto_seal(const uint8_t key[KITH_KEY_LEN], const uint8_t *ad,
                       size_t ad_len, const uint8_t *pt, size_t len,
                       uint8_t *out);
/* in is nonce || ct || tag; out gets in_len - 40 bytes.
 * KITH_ERR_CRYPTO on a wrong key or any change. */
KITH_MUST kith_err kith_gcrypto_open(const uint8_t key[KITH_KEY_LEN],
                                     const uint8_t *ad, size_t ad_len,
                                     const uint8_t *in, size_t in_len,
                                     uint8_t *out);
#define KITH_SEALED_OVERHEAD (KITH_NONCE_LEN + KITH_AEAD_TAG)

/* The same with the nonce given, not sent: out gets ciphertext || tag
 * (len + KITH_AEAD_TAG bytes); open takes that and writes in_len - 16
 * bytes. A (key, nonce) pair must never seal two plaintexts. */
void kith_gcrypto_seal_at(const uint8_t key[KITH_KEY_LEN],
                          const uint8_t nonce[KITH_NONCE_LEN],
                          const uint8_t *ad, size_t ad_len, const uint8_t *pt,
                          size_t len, uint8_t *out);
KITH_MUST kith_err kith_gcrypto_open_at(const uint8_t key[KITH_KEY_LEN],
                                        const uint8_t nonce[KITH_NONCE_LEN],
                                        const uint8_t *ad, size_t ad_len,
                                        const uint8_t *in, size_t in_len,
                                        uint8_t *out);

/* Receiving side of one sender's chain in one epoch: position, and a
 * bounded cache of keys skipped over by out-of-order arrival. */
typedef struct kith_chain kith_chain;
kith_chain *kith_chain_new(const uint8_t secret[KITH_KEY_LEN],
                           const uint8_t sender[32]);
void kith_chain_free(kith_chain *c);
/* Message key number n (each n at most once: the key is deleted after it is
 * handed out). KITH_ERR_DUPLICATE if n was already used, KITH_ERR_LIMIT if
 * n is more than KITH_SKIPPED_KEYS_MAX ahead, or its key was evicted. */
KITH_MUST kith_err kith_chain_key(kith_chain *c, uint64_t n,
                                  uint8_t key[KITH_KEY_LEN]);
/* Same lookup as kith_chain_key but consumes nothing: lets a receiver
 * check that a message opens before it spends the key. */
KITH_MUST kith_err kith_chain_peek(const kith_chain *c, uint64_t n,
                                   uint8_t key[KITH_KEY_LEN]);

/* The chain's state as bytes (to keep it across restarts; the caller
 * stores it sealed): pos u64, floor u64, chain key, then each unused
 * skipped key as n u64 || key, all little endian. Returns a g_malloc'ed
 * buffer (wipe it after use). */
uint8_t *kith_chain_export(const kith_chain *c, size_t *len);
/* NULL if buf is not such a state. */
kith_chain *kith_chain_import(const uint8_t *buf, size_t len);

#endif
