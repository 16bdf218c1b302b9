/* kith: the secure session on a link (sans-I/O: bytes in, bytes out).
 *
 * Both ends know each other's node id before the link exists (from the
 * signed signalling), so no identity travels on the link: the handshake is
 * the Noise KK pattern over the X25519 keys derived from the two Ed25519
 * identities (docs/protocol.md §10 gives every byte):
 *   HS1, initiator -> responder: e_I (32) || tag (16)   [e, es, ss]
 *   HS2, responder -> initiator: e_R (32) || tag (16)   [e, ee, se]
 * then one ChaCha20-Poly1305 (IETF) key per direction with a counter
 * nonce. The initiator's first record after HS2 carries an empty frame
 * (the confirmation): the responder counts the session established only
 * once it opened it, so a replayed HS1 never brings a link up.
 * Records on the byte stream: 4-byte big-endian length, then the payload.
 * A record of length 0, a handshake record that is not 48 bytes, a record
 * longer than KITH_SESSION_MAX_RECORD, a failed tag or an unexpected
 * record ends the session. */
#ifndef KITH_SESSION_H
#define KITH_SESSION_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../core/ident.h"

#define KITH_SESSION_MAX_FRAME (192 * 1024)
#define KITH_SESSION_TAG_LEN 16
#define KITH_SESSION_MAX_RECORD (KITH_SESSION_MAX_FRAME + KITH_SESSION_TAG_LEN)
#define KITH_SESSION_HS_LEN 48 /* payload of HS1 and HS2 */

typedef struct kith_session kith_session;

/* me is borrowed (must outlive s). peer: the identity at the other end;
 * initiator: we sent the ICE offer. NULL if peer is not a valid key. */
kith_session *kith_session_new(const kith_ident *me,
                               const uint8_t peer[KITH_ID_LEN], int initiator);
/* The same with a given ephemeral X25519 secret key (known-answer vectors
 * and tests only: a real session needs a fresh random one). */
kith_session *kith_session_new_with_eph(const kith_ident *me,
                                        const uint8_t peer[KITH_ID_LEN],
                                        int initiator,
                                        const uint8_t eph_sk[32]);
void kith_session_free(kith_session *s);

/* Call once, when the link is up: the initiator appends HS1 to out; the
 * responder appends nothing (it answers HS1 from kith_session_recv). */
KITH_MUST kith_err kith_session_start(kith_session *s, GByteArray *out);
/* Feeds bytes from the link. Appends records to send to out and each
 * decrypted frame (GBytes*) to frames. An error other than KITH_OK means
 * the session is dead: close the link (frames already appended are valid).
 * Errors: KITH_ERR_DECODE (framing, an unexpected record), KITH_ERR_LIMIT
 * (record too big, counter exhausted), KITH_ERR_CRYPTO (a tag does not
 * verify: wrong peer, tampering, or a low-order key). */
KITH_MUST kith_err kith_session_recv(kith_session *s, const uint8_t *buf,
                                     size_t len, GByteArray *out,
                                     GPtrArray *frames);
int kith_session_is_established(const kith_session *s);
/* Encrypts one frame (1 <= len <= KITH_SESSION_MAX_FRAME) as a record
 * appended to out. KITH_ERR_STATE before established. */
KITH_MUST kith_err kith_session_seal(kith_session *s, const uint8_t *frame,
                                     size_t len, GByteArray *out);

/* ---- records sealed and opened elsewhere (net/crypt.c) ----
 *
 * The same records as kith_session_seal and kith_session_recv make and
 * read, with the AEAD left to the caller (a worker thread): the session
 * frames the records and hands out their counters in order; the caller
 * seals or opens each in place with its direction's key. */

/* A record's payload in the caller's buffer: it starts at `at` and is
 * `len` bytes (frame and tag); `n` is its counter (10.4). */
typedef struct kith_record_span {
  size_t at;
  size_t len;
  uint64_t n;
} kith_record_span;

/* Established sessions only. Appends to out a record whose payload is the
 * frame in clear followed by KITH_SESSION_TAG_LEN bytes of room, and
 * reserves its counter; span says where (within out). Seal it with
 * kith_record_seal before sending anything after it. Errors as
 * kith_session_seal. */
KITH_MUST kith_err kith_session_seal_later(kith_session *s,
                                           const uint8_t *frame, size_t len,
                                           GByteArray *out,
                                           kith_record_span *span);
/* Established sessions only: like kith_session_recv, but appends each
 * complete record's payload, still sealed, to recs and its span to spans
 * (GArray of kith_record_span), counters in order; a record split across
 * calls waits inside the session. Errors: those of framing (the session
 * is then dead), KITH_ERR_STATE before established. */
KITH_MUST kith_err kith_session_recv_later(kith_session *s, const uint8_t *buf,
                                           size_t len, GByteArray *recs,
                                           GArray *spans);
/* Copies the key of one direction (tx: what this side sends) into key. */
void kith_session_key(const kith_session *s, int tx, uint8_t key[32]);
/* Ends the session with err (a record that did not open elsewhere). */
void kith_session_kill(kith_session *s, kith_err err);
/* Seals in place: payload holds frame_len bytes and room for the tag. */
void kith_record_seal(const uint8_t key[32], uint64_t n, uint8_t *payload,
                      size_t frame_len);
/* Opens in place: the frame is payload[0 .. len - KITH_SESSION_TAG_LEN).
 * KITH_ERR_CRYPTO if the tag does not verify, KITH_ERR_DECODE if len is
 * shorter than a tag. */
KITH_MUST kith_err kith_record_open(const uint8_t key[32], uint64_t n,
                                    uint8_t *payload, size_t len);

#endif
