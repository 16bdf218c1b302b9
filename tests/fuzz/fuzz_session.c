/* libFuzzer target: bytes from a peer fed to a responder session
 * (FUZZ_ME, expecting FUZZ_PEER).
 *
 * Byte 0 picks a mode: 0 = the bytes go to a fresh responder as they are;
 * 1 = a genuine initiator HS1 goes first, so the confirmation and the
 * first records are reached; 2 = a genuine handshake completes first, so the
 * bytes are records of an established session; 3 = as 2, and the bytes
 * are frames that the genuine initiator seals: the responder must yield
 * them unchanged. The bytes are fed in two pieces split at the offset in
 * byte 1, to exercise partial-record buffering. */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const kith_ident *me = fuzz_ident(FUZZ_ME), *peer = fuzz_ident(FUZZ_PEER);
  if (size < 2)
    return 0;
  int mode = data[0] & 3;
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
