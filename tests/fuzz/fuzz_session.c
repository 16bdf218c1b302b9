/* libFuzzer target: bytes from a peer fed to a responder session.
 *
 * The first input byte picks a mode: even = the bytes go to a fresh
 * responder as they are; odd = a genuine initiator HS1 goes first, so
 * the fuzzer reaches the confirmation and transport records. The rest is fed in
 * two pieces split at a point chosen by the second byte, to exercise
 * partial-record buffering.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -I. core/err.c
 *   core/codec.c core/ident.c net/session.c tests/fuzz/fuzz_session.c
 *   $(pkg-config --cflags --libs libsodium msgpack glib-2.0) */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "net/session.h"

static kith_ident initiator, responder;

static void init_once(void) {
  static int done;
  if (done)
    return;
  uint8_t seed[KITH_SEED_LEN];
  if (sodium_init() < 0)
    __builtin_trap();
  memset(seed, 1, sizeof seed);
  if (kith_ident_from_seed(&initiator, seed) != KITH_OK)
    __builtin_trap();
  memset(seed, 2, sizeof seed);
  if (kith_ident_from_seed(&responder, seed) != KITH_OK)
    __builtin_trap();
  done = 1;
}

static void feed(kith_session *s, const uint8_t *buf, size_t len,
                 GByteArray *out, GPtrArray *frames) {
  if (kith_session_recv(s, buf, len, out, frames) != KITH_OK)
    return;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init_once();
  if (size < 2)
    return 0;
  int mode = data[0] & 1;
  size_t split = data[1];
  data += 2;
  size -= 2;
  kith_session *r = kith_session_new(&responder, initiator.pk, 0);
  GByteArray *out = g_byte_array_new();
  GPtrArray *frames =
      g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  if (kith_session_start(r, out) != KITH_OK)
    __builtin_trap();
  if (mode == 1) {
    kith_session *i = kith_session_new(&initiator, responder.pk, 1);
    GByteArray *hello = g_byte_array_new();
    if (kith_session_start(i, hello) != KITH_OK)
      __builtin_trap();
    feed(r, hello->data, hello->len, out, frames);
    g_byte_array_unref(hello);
    kith_session_free(i);
  }
  if (split > size)
    split = size;
  feed(r, data, split, out, frames);
  feed(r, data + split, size - split, out, frames);
  g_ptr_array_unref(frames);
  g_byte_array_unref(out);
  kith_session_free(r);
  return 0;
}
