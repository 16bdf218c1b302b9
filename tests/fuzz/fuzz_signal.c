/* libFuzzer target: what reaches the signal port and the relayed
 * signalling of the node under test (FUZZ_ME), and the signal payloads
 * and join requests inside.
 *
 * Byte 0 picks what the rest is:
 *   0: a datagram, opened as the signal port does
 *      (kith_signal_open_datagram at FUZZ_NOW_MS);
 *   1: the plaintext of an envelope, sealed to FUZZ_ME here, then opened,
 *      so the envelope decoder is reached;
 *   2: a signal payload in a genuine datagram from FUZZ_PEER: it must
 *      open to the same payload, which is then decoded
 *      (kith_wire_signal_decode) with the join request of an offer
 *      (kith_wire_join_decode);
 *   3: the plaintext of a relayed signal, sealed to FUZZ_ME here, opened
 *      as from FUZZ_PEER (kith_signal_open_relayed, with a replay cache
 *      of its own): one that opens is refused the second time;
 *   4: the replay cache itself (core/replay.h, as the signal port and the
 *      relayed signals use it, with small caps): a sequence of 4-byte
 *      checks [source, tag, expiry, clock step]; the source is 0..5 bytes
 *      (0 is refused), the clock moves on by the step. It never holds more
 *      than its cap, and a tag it just took is a replay at once.
 * Mode 0, 2 and 3 payloads that open are decoded as in mode 2. */
#include <stdlib.h>

#include "fuzz_common.h"
#include "net/wire.h"

static void decode_payload(const uint8_t *p, size_t len) {
  kith_wire_signal s;
  kith_wire_join j;
  if (kith_wire_signal_decode(p, len, &s) != KITH_OK)
    return;
  if (s.kind < SIG_OFFER || s.kind > SIG_ELSEWHERE ||
      s.params.n_cands > KITH_ICE_MAX_CANDS ||
      s.join_len > KITH_WIRE_JOIN_MAX ||
      strlen(s.reason) > KITH_WIRE_REASON_MAX)
    abort();
  if (s.has_join && kith_wire_join_decode(s.join, s.join_len, &j) == KITH_OK &&
      strlen(j.name) > KITH_NAME_MAX)
    abort();
}

static void open_datagram(const uint8_t *dg, size_t len) {
  kith_signal_opened o;
  if (kith_signal_open_datagram(fuzz_ident(FUZZ_ME), dg, len,
                                (int64_t)FUZZ_NOW_MS, &o) == KITH_OK)
    decode_payload(o.payload, o.len);
}

/* Seals plain to FUZZ_ME: *out g_malloc'ed, NULL if too large. */
static uint8_t *seal_to_me(const uint8_t *plain, size_t len, size_t *out_len) {
  if (len > KITH_SIGNAL_MAX)
    return NULL;
  uint8_t *box = g_malloc(len + KITH_SEAL_OVERHEAD);
  if (kith_seal(fuzz_ident(FUZZ_ME)->pk, plain, len, box) != KITH_OK)
    abort();
  *out_len = len + KITH_SEAL_OVERHEAD;
  return box;
}

static void genuine_datagram(const uint8_t *payload, size_t len) {
  uint8_t *dg = NULL;
  size_t dlen = 0;
  kith_signal_opened o;
  if (kith_signal_seal_datagram(fuzz_ident(FUZZ_PEER), fuzz_ident(FUZZ_ME)->pk,
                                payload, len, 0, FUZZ_NOW_MS, &dg,
                                &dlen) != KITH_OK)
    return;
  if (kith_signal_open_datagram(fuzz_ident(FUZZ_ME), dg, dlen,
                                (int64_t)FUZZ_NOW_MS, &o) != KITH_OK ||
      o.len != len || memcmp(o.payload, payload, len) != 0 ||
      memcmp(o.from, fuzz_ident(FUZZ_PEER)->pk, KITH_ID_LEN) != 0)
    abort(); /* a genuine datagram must open to what was sealed */
  g_free(dg);
  decode_payload(o.payload, o.len);
}

/* Mode 3: a relayed signal; a genuine one is taken once only. */
static void open_relayed(const uint8_t *box, size_t len) {
  kith_replay *seen = kith_replay_new(16, 4);
  uint8_t *payload = NULL;
  size_t plen = 0;
  uint64_t ts = 0;
  const uint8_t *via = fuzz_ident(FUZZ_PEER)->pk;
  if (kith_signal_open_relayed(fuzz_ident(FUZZ_ME), seen, via, via, box, len,
                               FUZZ_NOW_MS, &payload, &plen, &ts) == KITH_OK) {
    uint8_t *again = NULL;
    if (kith_signal_open_relayed(fuzz_ident(FUZZ_ME), seen, via, via, box, len,
                                 FUZZ_NOW_MS, &again, &plen,
                                 &ts) != KITH_ERR_DUPLICATE)
      abort();
    decode_payload(payload, plen);
  }
  g_free(payload);
  kith_replay_free(seen);
}

/* Mode 4: checks against a replay cache of 8 tags, 3 per source. */
static void replay_checks(const uint8_t *p, size_t len) {
  kith_replay *r = kith_replay_new(8, 3);
  static const uint8_t sources[5] = {1, 2, 3, 4, 5};
  uint64_t now = 1000;
  for (size_t i = 0; i + 4 <= len; i += 4) {
    uint8_t tag[KITH_REPLAY_TAG_LEN];
    size_t slen = p[i] % 6;
    uint64_t expiry = now + 1 + p[i + 2]; /* after now, as a fresh one */
    memset(tag, p[i + 1], sizeof tag);
    int fresh = kith_replay_check(r, tag, sources, slen, expiry, now);
    if ((slen == 0 && fresh) ||
        (fresh && kith_replay_check(r, tag, sources, slen, expiry, now)) ||
        kith_replay_size(r) > 8)
      abort();
    now += p[i + 3];
  }
  kith_replay_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *box;
  size_t blen;
  if (size < 1)
    return 0;
  switch (data[0] % 5) {
  case 0:
    open_datagram(data + 1, size - 1);
    break;
  case 1:
    if ((box = seal_to_me(data + 1, size - 1, &blen)) != NULL)
      open_datagram(box, blen);
    g_free(box);
    break;
  case 2:
    genuine_datagram(data + 1, size - 1);
    break;
  case 3:
    if ((box = seal_to_me(data + 1, size - 1, &blen)) != NULL)
      open_relayed(box, blen);
    g_free(box);
    break;
  default:
    replay_checks(data + 1, size - 1);
  }
  return 0;
}
