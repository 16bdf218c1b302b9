/* kith: what the fuzz targets and the seed-corpus generator (gen_corpus.c)
 * share: fixed identities and a fixed clock, so that seeds the generator
 * seals to, signs by and dates for these identities pass the targets'
 * checks; and one way to cut an input into parts.
 *
 * Inputs made of parts are read with fuzz_take: a 2-byte big-endian
 * length, then that many bytes (fewer if the input ends first). The
 * generator writes them with fuzz_put. */
#ifndef KITH_FUZZ_COMMON_H
#define KITH_FUZZ_COMMON_H

#include <glib.h>
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/codec.h"
#include "core/event.h"
#include "core/gcrypto.h"
#include "core/group.h"
#include "core/ident.h"
#include "core/invite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The wall clock of every target (ms): 2023-11-14. */
#define FUZZ_NOW_MS UINT64_C(1700000000000)

/* fuzz_store.c: the storage key of its store, and the group id its
 * readers ask for. */
#define FUZZ_STORE_KEY_BYTE 9
static const uint8_t fuzz_store_gid[32] = {7, 7, 7};

/* Fixed identities: FUZZ_ME is the node under test, the others peers. */
enum { FUZZ_ME = 1, FUZZ_PEER = 2, FUZZ_THIRD = 3, FUZZ_IDENTS = 4 };

/* The identity number which (seed = 32 bytes of value which), made once
 * and kept for the life of the process. */
static inline const kith_ident *fuzz_ident(int which) {
  static kith_ident ids[FUZZ_IDENTS];
  static int made[FUZZ_IDENTS];
  if (which <= 0 || which >= FUZZ_IDENTS)
    __builtin_trap();
  if (!made[which]) {
    uint8_t seed[KITH_SEED_LEN];
    memset(seed, which, sizeof seed);
    if (sodium_init() < 0 || kith_ident_from_seed(&ids[which], seed) != KITH_OK)
      __builtin_trap();
    made[which] = 1;
  }
  return &ids[which];
}

/* A group FUZZ_ME made at FUZZ_NOW_MS with an invite, and FUZZ_PEER
 * admitted by it: appends the accepted events (kith_accepted*) to acc
 * and returns the group (the caller frees it). */
static inline kith_group *fuzz_group_with_peer(GPtrArray *acc) {
  const kith_ident *me = fuzz_ident(FUZZ_ME), *peer = fuzz_ident(FUZZ_PEER);
  kith_group_options opt = {.name = "fuzz", .owner_name = "me"};
  kith_group *g;
  kith_accepted *a;
  uint8_t secret[32], pk[32], sig[KITH_SIG_LEN];
  if (kith_group_create(me, &opt, FUZZ_NOW_MS, &g, &a) != KITH_OK)
    __builtin_trap();
  kith_group_set_event_version(g, KITH_EVENT_V2);
  g_ptr_array_add(acc, a);
  if (kith_group_invite(g, 10, FUZZ_NOW_MS + 3600000, FUZZ_NOW_MS + 1, secret,
                        &a) != KITH_OK)
    __builtin_trap();
  g_ptr_array_add(acc, a);
  kith_invite_public_key(secret, pk);
  kith_invite_sign_join(secret, kith_group_id(g), peer->pk, sig);
  if (kith_group_admit(g, peer->pk, "peer", pk, sig, FUZZ_NOW_MS + 2, acc) !=
      KITH_OK)
    __builtin_trap();
  return g;
}

static inline int fuzz_message_like(uint32_t kind) {
  return kind == KITH_EV_MESSAGE || kind == KITH_EV_REACT ||
         kind == KITH_EV_EDIT || kind == KITH_EV_DELETE;
}

/* The key that seals a body of kind by author in g's current epoch (the
 * message key 0 of author's chain for a message-like kind). */
static inline void fuzz_body_key(const kith_group *g, uint32_t kind,
                                 const uint8_t author[32], uint8_t key[32]) {
  uint8_t secret[32] = {0};
  for (size_t i = 0; i < kith_group_n_secrets(g); i++) {
    uint64_t epoch;
    kith_group_secret_at(g, i, &epoch, secret);
    if (epoch == kith_group_epoch_id(g))
      break;
  }
  if (fuzz_message_like(kind)) {
    uint8_t chain[32];
    kith_gcrypto_chain_start(secret, author, chain);
    kith_gcrypto_chain_step(chain, key);
  } else {
    kith_gcrypto_meta_key(secret, key);
  }
}

/* Packs the start of a kind-event's body by author in g's current epoch:
 * the 3-element array header, the epoch, (n = 0 for a message-like
 * kind,) and inner sealed as docs/protocol.md 5.4 says; a control
 * event's third element (extra or nil) is the caller's. */
static inline void fuzz_pack_sealed(kith_pack *p, const kith_group *g,
                                    uint32_t kind, const uint8_t author[32],
                                    const uint8_t *inner, size_t ilen) {
  uint8_t key[32], ad[77];
  uint8_t *sealed = g_malloc(ilen + KITH_SEALED_OVERHEAD);
  fuzz_body_key(g, kind, author, key);
  memcpy(ad, "kith body v1", 12);
  ad[12] = (uint8_t)kind;
  memcpy(ad + 13, author, 32);
  memcpy(ad + 45, kith_group_id(g), 32);
  kith_gcrypto_seal(key, ad, sizeof ad, inner, ilen, sealed);
  kith_pack_array(p, 3);
  kith_pack_uint(p, kith_group_epoch_id(g));
  if (fuzz_message_like(kind))
    kith_pack_uint(p, 0);
  kith_pack_bin(p, sealed, ilen + KITH_SEALED_OVERHEAD);
  g_free(sealed);
}

typedef struct fuzz_in {
  const uint8_t *p;
  size_t n;
} fuzz_in;

static inline uint8_t fuzz_u8(fuzz_in *in) {
  if (in->n == 0)
    return 0;
  in->n--;
  return *in->p++;
}

/* The next part: *out borrows from in; returns its length. */
static inline size_t fuzz_take(fuzz_in *in, const uint8_t **out) {
  size_t want = (size_t)fuzz_u8(in) << 8;
  want |= fuzz_u8(in);
  size_t n = want < in->n ? want : in->n;
  *out = in->p;
  in->p += n;
  in->n -= n;
  return n;
}

static inline void fuzz_put(GByteArray *b, const void *p, size_t n) {
  uint8_t len[2] = {(uint8_t)(n >> 8), (uint8_t)n};
  g_byte_array_append(b, len, 2);
  g_byte_array_append(b, p, (guint)n);
}

static inline void fuzz_put_u8(GByteArray *b, uint8_t v) {
  g_byte_array_append(b, &v, 1);
}

#endif
