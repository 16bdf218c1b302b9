/* kith: invite codes.
 *
 * A code is "kith:" followed by base64url (no padding) of
 *   msgpack [version=1, group_id bin32, invite_secret bin32,
 *            inviter_id bin32, addrs [[host str, port uint], ...],
 *            (optional) others [[node_id bin32, host str, port uint], ...],
 *            (optional) relays [[node_id bin32, host str, port uint], ...],
 *            (optional) public [[host str, port uint], ...]]
 * others lists up to KITH_INVITE_MAX_OTHERS further members that can admit
 * the holder when the inviter is offline; relays lists up to
 * KITH_INVITE_MAX_RELAYS relay friends of the inviter, through which a
 * joiner that cannot reach the inviter directly (NAT) sends its request.
 * public lists up to KITH_INVITE_MAX_PUBLIC server-reflexive addresses of
 * the inviter's signal port (its public address as a relay friend or STUN
 * server sees it), where a joiner outside the inviter's network may reach
 * it. Trailing empty lists are left out; a list followed by a present one
 * may be empty (others is [] when only relays exist, relays is [] when
 * only public exists). Codes without public (5 to 7 elements) read as
 * before.
 * followed by 4 checksum bytes = first 4 bytes of BLAKE2b-256 of the
 * msgpack bytes. The invite secret is the Ed25519 seed of the invite key
 * pair; the invite event in the group publishes only its public key. */
#ifndef KITH_INVITE_H
#define KITH_INVITE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "ident.h"

#define KITH_INVITE_MAX_ADDRS 8
#define KITH_INVITE_MAX_OTHERS 3
#define KITH_INVITE_MAX_RELAYS 2
#define KITH_INVITE_MAX_PUBLIC 2
#define KITH_INVITE_HOST_MAX 63
#define KITH_INVITE_CODE_MAX 1024 /* characters, including "kith:" */

typedef struct kith_addr {
  char host[KITH_INVITE_HOST_MAX + 1]; /* numeric IPv4/IPv6 or name */
  uint16_t port;
} kith_addr;

typedef struct kith_invite_member {
  uint8_t id[KITH_ID_LEN];
  kith_addr addr;
} kith_invite_member;

typedef struct kith_invite {
  uint8_t group_id[32];
  uint8_t secret[32];
  uint8_t inviter[KITH_ID_LEN];
  size_t n_addrs;
  kith_addr addrs[KITH_INVITE_MAX_ADDRS];
  size_t n_others;
  kith_invite_member others[KITH_INVITE_MAX_OTHERS];
  size_t n_relays;
  kith_invite_member relays[KITH_INVITE_MAX_RELAYS];
  size_t n_public;
  kith_addr public_addrs[KITH_INVITE_MAX_PUBLIC];
} kith_invite;

/* Writes the code (NUL-terminated) to out. KITH_ERR_LIMIT if cap is too
 * small. */
KITH_MUST kith_err kith_invite_encode(const kith_invite *inv, char *out,
                                      size_t cap);
/* Parses a code. Errors: KITH_ERR_ARG (not a kith code: wrong prefix or
 * characters), KITH_ERR_CHECKSUM (mistyped), KITH_ERR_DECODE (checksum
 * fine but contents invalid). Leading/trailing white space is ignored. */
KITH_MUST kith_err kith_invite_decode(const char *code, kith_invite *inv);

/* Invite key pair from the secret: pk is what the invite event holds. */
void kith_invite_public_key(const uint8_t secret[32], uint8_t pk[32]);
/* The joiner's proof: Ed25519 signature with the invite key over
 * "kith-join-v1" || group_id || joiner_id. */
void kith_invite_sign_join(const uint8_t secret[32], const uint8_t group_id[32],
                           const uint8_t joiner[KITH_ID_LEN],
                           uint8_t sig[KITH_SIG_LEN]);
KITH_MUST kith_err kith_invite_verify_join(const uint8_t invite_pk[32],
                                           const uint8_t group_id[32],
                                           const uint8_t joiner[KITH_ID_LEN],
                                           const uint8_t sig[KITH_SIG_LEN]);

#endif
