/* libFuzzer target: event decoding and group receipt of arbitrary bytes.
 *
 * Two paths per input: the bytes as a raw event (decoder, receipt checks),
 * and the bytes as the inner plaintext of a well-signed, well-encrypted
 * event of kind 1 + data[0] % 9 on top of a fresh group (body and inner
 * parsers, group rules), which random bytes could never reach otherwise.
 *
 * Build: clang -g -fsanitize=fuzzer,address,undefined -I. core/err.c
 *   core/codec.c core/ident.c core/invite.c core/event.c core/gcrypto.c
 *   core/group.c core/group_state.c core/group_body.c
 *   tests/fuzz/fuzz_event.c $(pkg-config --cflags --libs libsodium msgpack
 *   glib-2.0) -o fuzz_event
 * Seed corpus: the raw bytes in tests/vectors/event.txt. */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/codec.h"
#include "core/event.h"
#include "core/gcrypto.h"
#include "core/group.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static kith_ident me;

static void receive(kith_group *g, const uint8_t *raw, size_t len) {
  GPtrArray *acc =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
  if (kith_group_receive(g, raw, len, 0, acc) == KITH_OK &&
      kith_group_n_events(g) == 0)
    __builtin_trap(); /* accepted must mean kept */
  g_ptr_array_free(acc, TRUE);
}

/* Seals inner as the body of an event of kind by me on top of g's create
 * and delivers it to g. */
static void receive_inner(kith_group *g, uint32_t kind, const uint8_t *inner,
                          size_t len) {
  uint8_t secret[32], key[32], ad[77];
  uint64_t epoch;
  kith_group_secret_at(g, 0, &epoch, secret);
  if (kind == KITH_EV_MESSAGE) {
    kith_gcrypto_chain_start(secret, me.pk, key);
    kith_gcrypto_chain_step(key, key);
  } else {
    kith_gcrypto_meta_key(secret, key);
  }
  memcpy(ad, "kith body v1", 12);
  ad[12] = (uint8_t)kind;
  memcpy(ad + 13, me.pk, 32);
  memcpy(ad + 45, kith_group_id(g), 32);
  uint8_t *sealed = g_malloc(len + KITH_SEALED_OVERHEAD), *body;
  size_t body_len;
  kith_gcrypto_seal(key, ad, sizeof ad, inner, len, sealed);
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 3);
  kith_pack_uint(&p, 0);
  if (kind == KITH_EV_MESSAGE)
    kith_pack_uint(&p, 0);
  kith_pack_bin(&p, sealed, len + KITH_SEALED_OVERHEAD);
  if (kind == KITH_EV_ADD)
    kith_pack_bin(&p, inner, len);
  else if (kind != KITH_EV_MESSAGE)
    kith_pack_nil(&p);
  g_free(sealed);
  kith_event ev = {.kind = kind, .n_parents = 1, .depth = 1, .ts_ms = 1};
  memcpy(ev.group_id, kith_group_id(g), 32);
  memcpy(ev.parents[0], kith_group_id(g), 32);
  if (kith_pack_take(&p, &body, &body_len) == KITH_OK &&
      kith_event_build(&ev, &me, body, body_len) == KITH_OK)
    receive(g, ev.raw, ev.raw_len);
  kith_event_clear(&ev);
  g_free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  if (!ready) {
    uint8_t seed[32];
    memset(seed, 0x42, sizeof seed);
    if (sodium_init() < 0 || kith_ident_from_seed(&me, seed) != KITH_OK)
      return 0;
    ready = 1;
  }
  kith_event ev;
  if (kith_event_decode(data, size, &ev) == KITH_OK)
    kith_event_clear(&ev);
  uint8_t gid[32];
  crypto_generichash(gid, sizeof gid, data, size, NULL, 0);
  kith_group *g = kith_group_new(gid, &me);
  if (g) {
    receive(g, data, size);
    kith_group_free(g);
  }
  if (size < 1 || size > KITH_EVENT_MAX_BODY / 2 ||
      kith_group_create(&me, "fuzz", KITH_HISTORY_SHARED, 0, &g, NULL) !=
          KITH_OK)
    return 0;
  receive_inner(g, 1 + data[0] % KITH_EV_KIND_MAX, data + 1, size - 1);
  kith_group_free(g);
  return 0;
}
