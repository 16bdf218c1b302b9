/* kith: the secure session on a link (sans-I/O: bytes in, bytes out).
 *
 * Handshake, both sides at once:
 *   HELLO = [1, identity pk bin32, ephemeral X25519 pk bin32]
 *   AUTH  = [2, sig bin64, secretstream header bin24]
 * transcript = "kith session v1" || initiator id || responder id ||
 *              initiator eph || responder eph
 * sig = Ed25519(own identity, transcript || role byte: 'I' or 'R').
 * Keys: crypto_kx with the ephemeral keys (initiator = client), one
 * secretstream (XChaCha20-Poly1305) per direction.
 * Records on the byte stream: 4-byte big-endian length, then the payload
 * (HELLO/AUTH msgpack in the clear; afterwards one secretstream message per
 * frame). A record of length 0, a handshake record over 256 bytes, a
 * record longer than KITH_SESSION_MAX_RECORD, a bad signature, an
 * unexpected peer identity or a failed decryption ends the session. */
#ifndef KITH_SESSION_H
#define KITH_SESSION_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../core/ident.h"

#define KITH_SESSION_MAX_FRAME (192 * 1024)
#define KITH_SESSION_MAX_RECORD (KITH_SESSION_MAX_FRAME + 17)

typedef struct kith_session kith_session;

/* me is borrowed (must outlive s). peer: the identity we expect. */
kith_session *kith_session_new(const kith_ident *me,
                               const uint8_t peer[KITH_ID_LEN], int initiator);
void kith_session_free(kith_session *s);

/* Appends our HELLO record to out. Call once, when the link is up. If the
 * peer's HELLO arrives first, kith_session_recv sends ours before its AUTH
 * and a later kith_session_start appends nothing. */
KITH_MUST kith_err kith_session_start(kith_session *s, GByteArray *out);
/* Feeds bytes from the link. Appends records to send to out and each
 * decrypted frame (GBytes*) to frames. An error other than KITH_OK means
 * the session is dead: close the link (frames already appended are valid).
 * Errors: KITH_ERR_DECODE (framing), KITH_ERR_LIMIT (record too big),
 * KITH_ERR_SIGNATURE, KITH_ERR_FORBIDDEN (unexpected identity),
 * KITH_ERR_CRYPTO. */
KITH_MUST kith_err kith_session_recv(kith_session *s, const uint8_t *buf,
                                     size_t len, GByteArray *out,
                                     GPtrArray *frames);
int kith_session_is_established(const kith_session *s);
/* Encrypts one frame (len <= KITH_SESSION_MAX_FRAME) as a record appended
 * to out. KITH_ERR_STATE before established. */
KITH_MUST kith_err kith_session_seal(kith_session *s, const uint8_t *frame,
                                     size_t len, GByteArray *out);

#endif
