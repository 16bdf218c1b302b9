/* kith: the signal port (UDP) for first contact.
 *
 * Datagram = crypto_box_seal to the recipient's X25519 key of the msgpack
 *   [from bin32, to bin32, ts_ms uint, nonce bin16, payload bin, sig bin64]
 * or, when the sender pads the datagram up to a minimum size, the same with
 * a 7th element `pad bin` of zero bytes (not signed: the seal covers it;
 * a non-zero pad byte is rejected).
 * sig = Ed25519(from, encoding of the first five elements as a 5-array).
 * Accepted only if: size <= KITH_SIGNAL_MAX, it opens with our key, `to` is
 * us, sig valid, |ts - now| <= KITH_SIGNAL_SKEW_MS (wall clock) and the
 * nonce was not seen in that window. What is even opened is limited twice,
 * before anything else: per source IP a token bucket (KITH_SIGNAL_RATE per
 * second, burst KITH_SIGNAL_BURST), then one bucket for all sources
 * (KITH_SIGNAL_OPEN_RATE, burst KITH_SIGNAL_OPEN_BURST), which bounds the
 * CPU a flood from many addresses costs. 1024 source addresses are tracked;
 * a new one always gets a bucket (the least recently active gives up its
 * place), so a flood from many spoofed addresses cannot shut out a first
 * contact (core/ratelimit.h). A reply is never larger than the datagram it
 * answers. Replay cache (core/replay.h): 4096 nonces, at most 64 per source
 * address; room is made, never refused, so a replay of a forgotten datagram
 * is delivered again: receivers handle a payload seen twice (offers are
 * idempotent). */
#ifndef KITH_SIGNAL_H
#define KITH_SIGNAL_H

#include <gio/gio.h>
#include <glib.h>
#include <stdint.h>

#include "../core/err.h"
#include "../core/ident.h"
#include "../core/replay.h"

#define KITH_SIGNAL_MAX 1400
/* envelope + seal, upper bound: 6-array 165 bytes at most besides the
 * payload, +2 for an empty pad element, +48 for the seal = 215 */
#define KITH_SIGNAL_OVERHEAD 224
#define KITH_SIGNAL_MAX_PAYLOAD (KITH_SIGNAL_MAX - KITH_SIGNAL_OVERHEAD)
#define KITH_SIGNAL_SKEW_MS (120 * 1000)
#define KITH_SIGNAL_RATE 20
#define KITH_SIGNAL_BURST 40
#define KITH_SIGNAL_OPEN_RATE 2000 /* datagrams opened per second, in all */
#define KITH_SIGNAL_OPEN_BURST 8000

typedef struct kith_signal kith_signal;

/* A verified datagram; everything is borrowed until the callback returns. */
typedef struct kith_signal_msg {
  const uint8_t *from;    /* the authenticated sender (32 bytes) */
  const uint8_t *payload; /* len bytes */
  size_t len;
  GSocketAddress *src; /* where it came from (NULL: not from the port) */
  size_t size;         /* the datagram's size on the wire */
  uint64_t ts_ms;      /* the sender's signed wall-clock time */
} kith_signal_msg;

typedef void (*kith_signal_cb)(kith_signal *s, const kith_signal_msg *m,
                               void *ud);

/* A STUN message that arrived on the signal port (net/stun.h classifies
 * it), after the source's rate-limit token was taken. src is borrowed
 * until return. */
typedef void (*kith_signal_stun_cb)(kith_signal *s, const uint8_t *buf,
                                    size_t len, GSocketAddress *src, void *ud);

/* Binds UDP port (0 = any free) on all addresses (IPv4). me borrowed. */
KITH_MUST kith_err kith_signal_new(GMainContext *ctx, const kith_ident *me,
                                   uint16_t port, kith_signal_cb cb, void *ud,
                                   kith_signal **out);
/* Closes the socket; no callback runs afterwards. May be called from the
 * callback itself (the memory is released once it returns). */
void kith_signal_free(kith_signal *s);
uint16_t kith_signal_port(const kith_signal *s);
/* STUN messages go to cb (NULL: they are dropped like any junk). */
void kith_signal_set_stun(kith_signal *s, kith_signal_stun_cb cb, void *ud);
/* Sends raw bytes (a STUN message) from the signal port to dst. */
KITH_MUST kith_err kith_signal_send_raw(kith_signal *s, GSocketAddress *dst,
                                        const uint8_t *buf, size_t len);
/* Dropped datagrams so far (rate-limited, not for us, forged, replayed). */
uint64_t kith_signal_dropped(const kith_signal *s);

/* Seals and sends payload to node `to` at host:port (numeric address).
 * min_size pads the datagram up to that many bytes (so that the answer,
 * which may not be larger, has room). */
KITH_MUST kith_err kith_signal_send(kith_signal *s, const uint8_t to[32],
                                    const char *host, uint16_t port,
                                    const uint8_t *payload, size_t len,
                                    size_t min_size);
/* Answers a datagram of request_size bytes from dst: KITH_ERR_LIMIT (and
 * nothing sent) if the sealed reply would be larger. */
KITH_MUST kith_err kith_signal_reply(kith_signal *s, const uint8_t to[32],
                                     GSocketAddress *dst,
                                     const uint8_t *payload, size_t len,
                                     size_t request_size);

/* Builds the sealed datagram kith_signal_send would send (from me to `to`,
 * timestamp ts_ms, a fresh random nonce, padded to at least min_size: it
 * may overshoot by one byte). Public for tests and tools that need the raw
 * bytes. *out is g_malloc'ed (caller frees). KITH_ERR_LIMIT if len >
 * KITH_SIGNAL_MAX_PAYLOAD or the datagram would exceed KITH_SIGNAL_MAX. */
KITH_MUST kith_err kith_signal_seal_datagram(const kith_ident *me,
                                             const uint8_t to[32],
                                             const uint8_t *payload, size_t len,
                                             size_t min_size, uint64_t ts_ms,
                                             uint8_t **out, size_t *out_len);

/* A datagram opened by kith_signal_open_datagram. */
#define KITH_SIGNAL_NONCE_LEN 16
typedef struct kith_signal_opened {
  uint8_t from[KITH_ID_LEN]; /* the authenticated sender */
  uint64_t ts_ms;
  uint8_t nonce[KITH_SIGNAL_NONCE_LEN];
  uint8_t payload[KITH_SIGNAL_MAX];
  size_t len;
} kith_signal_opened;

/* Everything the signal port checks of one datagram except the rate limit
 * and the replay cache: its size, that it opens with me's key, the
 * envelope's form, that `to` is me, |ts - now_ms| <= KITH_SIGNAL_SKEW_MS
 * (wall clock) and the signature. Fills o (the payload copied). Returns
 * KITH_OK, KITH_ERR_DECODE, KITH_ERR_CRYPTO (not sealed to me),
 * KITH_ERR_PROTOCOL (not to me, or stale) or KITH_ERR_SIGNATURE. */
KITH_MUST kith_err kith_signal_open_datagram(const kith_ident *me,
                                             const uint8_t *dg, size_t len,
                                             int64_t now_ms,
                                             kith_signal_opened *o);
/* Signalling through a relay (FRAME_RELAY kind 0, docs/protocol.md 11.8):
 * the box sealed to `to` of [from bin32, to bin32, ts_ms uint, payload bin,
 * sig bin64], sig = Ed25519(from) over the first four elements packed as
 * an array. seal: *out is g_malloc'ed (caller frees); KITH_ERR_LIMIT if
 * the box would exceed KITH_SIGNAL_MAX. */
KITH_MUST kith_err kith_signal_seal_relayed(const kith_ident *me,
                                            const uint8_t to[32],
                                            const uint8_t *payload, size_t len,
                                            uint64_t ts_ms, uint8_t **out,
                                            size_t *out_len);
/* Opens a relayed box that relay `via` passed on from `from` and checks,
 * in order: it opens with me (else KITH_ERR_CRYPTO) and decodes
 * (KITH_ERR_DECODE); the inner from is `from` and to is me
 * (KITH_ERR_PROTOCOL); |ts_ms - now_ms| <= KITH_SIGNAL_SKEW_MS
 * (KITH_ERR_EXPIRED); the signature (KITH_ERR_SIGNATURE); and that it was
 * not taken before (KITH_ERR_DUPLICATE): its signature's digest is
 * remembered in `seen` until it is too old anyway, charged to `via`. On
 * KITH_OK *payload is a g_malloc'ed copy (caller frees) and *ts_ms set. */
KITH_MUST kith_err kith_signal_open_relayed(
    const kith_ident *me, kith_replay *seen, const uint8_t via[32],
    const uint8_t from[32], const uint8_t *box, size_t len, uint64_t now_ms,
    uint8_t **payload, size_t *payload_len, uint64_t *ts_ms);

#endif
