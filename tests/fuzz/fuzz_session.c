/* libFuzzer target: bytes from a peer fed to a responder session
 * (FUZZ_ME, expecting FUZZ_PEER).
 *
 * Byte 0 picks a mode: 0 = the bytes go to a fresh responder as they are;
 * 1 = a genuine initiator HS1 goes first, so the confirmation and the
 * first records are reached; 2 = a genuine handshake completes first, so the
 * bytes are records of an established session; 3 = as 2, and the bytes
 * are frames that the genuine initiator seals: the responder must yield
 * them unchanged; 4 and 5 = as 2 and 3, but the way a link with a worker
 * reads records (net/crypt.c): kith_session_recv_later frames them, each
 * is opened in place with kith_record_open (mode 5: sealed by the
 * initiator with kith_session_seal_later and kith_record_seal, and must
 * open to the frame). The bytes are fed in two pieces split at the offset
 * in byte 1, to exercise partial-record buffering. Spans must lie inside
 * the records returned, with counters counting up by one. */
#include <stdlib.h>

#include "fuzz_common.h"
#include "net/session.h"

static void feed(kith_session *s, const uint8_t *buf, size_t len,
                 GByteArray *out, GPtrArray *frames) {
  (void)!kith_session_recv(s, buf, len, out, frames);
}

/* Runs the handshake between i and r to its end. */
static void handshake(kith_session *i, kith_session *r) {
  GByteArray *a = g_byte_array_new(), *b = g_byte_array_new();
  GPtrArray *none =
      g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  if (kith_session_start(i, a) != KITH_OK)
    abort();
  for (int round = 0; round < 4 && a->len > 0; round++) {
    if (kith_session_recv(r, a->data, a->len, b, none) != KITH_OK)
      abort();
    g_byte_array_set_size(a, 0);
    if (kith_session_recv(i, b->data, b->len, a, none) != KITH_OK)
      abort();
    g_byte_array_set_size(b, 0);
  }
  if (!kith_session_is_established(i) || !kith_session_is_established(r))
    abort();
  g_byte_array_unref(a);
  g_byte_array_unref(b);
  g_ptr_array_unref(none);
}

/* Mode 3: the initiator seals data as one frame; r must yield it. */
static void sealed_frame(kith_session *i, kith_session *r, const uint8_t *data,
                         size_t size, GByteArray *out, GPtrArray *frames) {
  GByteArray *rec = g_byte_array_new();
  if (kith_session_seal(i, data, size, rec) == KITH_OK) {
    if (kith_session_recv(r, rec->data, rec->len, out, frames) != KITH_OK ||
        frames->len != 1 || g_bytes_get_size(frames->pdata[0]) != size ||
        (size &&
         memcmp(g_bytes_get_data(frames->pdata[0], NULL), data, size) != 0))
      abort();
  } else if (size > 0 && size <= KITH_SESSION_MAX_FRAME) {
    abort(); /* only an empty or oversized frame is refused */
  }
  g_byte_array_unref(rec);
}

/* Modes 4 and 5: buf (split at split) read as records to open elsewhere,
 * each opened; returns how many opened. */
static size_t recv_later(kith_session *r, const uint8_t *buf, size_t len,
                         size_t split, GByteArray *recs, GArray *spans) {
  uint8_t key[32];
  size_t opened = 0;
  kith_session_key(r, 0, key);
  if (split > len)
    split = len;
  if (kith_session_recv_later(r, buf, split, recs, spans) == KITH_OK)
    (void)!kith_session_recv_later(r, buf + split, len - split, recs, spans);
  for (guint k = 0; k < spans->len; k++) {
    kith_record_span *sp = &g_array_index(spans, kith_record_span, k);
    if (sp->at > recs->len || sp->len > recs->len - sp->at ||
        (k > 0 && sp->n != sp[-1].n + 1))
      abort();
    if (kith_record_open(key, sp->n, recs->data + sp->at, sp->len) == KITH_OK)
      opened++;
  }
  return opened;
}

/* Mode 5: the initiator seals data later; r must open it to data. */
static void sealed_later(kith_session *i, kith_session *r, const uint8_t *data,
                         size_t size, size_t split) {
  GByteArray *rec = g_byte_array_new(), *recs = g_byte_array_new();
  GArray *spans = g_array_new(FALSE, FALSE, sizeof(kith_record_span));
  kith_record_span sp;
  uint8_t key[32];
  kith_session_key(i, 1, key);
  if (kith_session_seal_later(i, data, size, rec, &sp) == KITH_OK) {
    kith_record_seal(key, sp.n, rec->data + sp.at, size);
    if (recv_later(r, rec->data, rec->len, split, recs, spans) != 1 ||
        g_array_index(spans, kith_record_span, 0).len !=
            size + KITH_SESSION_TAG_LEN ||
        memcmp(recs->data + g_array_index(spans, kith_record_span, 0).at, data,
               size) != 0)
      abort();
  } else if (size > 0 && size <= KITH_SESSION_MAX_FRAME) {
    abort(); /* only an empty or oversized frame is refused */
  }
  g_byte_array_unref(rec);
  g_byte_array_unref(recs);
  g_array_unref(spans);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const kith_ident *me = fuzz_ident(FUZZ_ME), *peer = fuzz_ident(FUZZ_PEER);
  if (size < 2)
    return 0;
  int mode = data[0] % 6;
  size_t split = data[1];
  data += 2;
  size -= 2;
  kith_session *r = kith_session_new(me, peer->pk, 0);
  kith_session *i = kith_session_new(peer, me->pk, 1);
  GByteArray *out = g_byte_array_new();
  GPtrArray *frames =
      g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  if (mode >= 2) {
    handshake(i, r);
  } else {
    if (kith_session_start(r, out) != KITH_OK)
      abort();
    if (mode == 1) {
      GByteArray *hs1 = g_byte_array_new();
      if (kith_session_start(i, hs1) != KITH_OK)
        abort();
      feed(r, hs1->data, hs1->len, out, frames);
      g_byte_array_unref(hs1);
    }
  }
  if (mode == 3) {
    sealed_frame(i, r, data, size, out, frames);
  } else if (mode == 5) {
    sealed_later(i, r, data, size, split);
  } else if (mode == 4) {
    GArray *spans = g_array_new(FALSE, FALSE, sizeof(kith_record_span));
    (void)recv_later(r, data, size, split, out, spans);
    g_array_unref(spans);
  } else {
    if (split > size)
      split = size;
    feed(r, data, split, out, frames);
    feed(r, data + split, size - split, out, frames);
  }
  g_ptr_array_unref(frames);
  g_byte_array_unref(out);
  kith_session_free(i);
  kith_session_free(r);
  return 0;
}
