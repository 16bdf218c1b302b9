/* libFuzzer target for core/codec.c: the pre-scan and both unpackers must
 * never crash or leak, and whatever strict decoding accepts must re-encode
 * to the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_strict(const uint8_t *data, size_t size) {
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  if (kith_codec_unpack(data, size, &u) == KITH_OK) {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    const char *s;
    size_t n;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (msgpack_pack_object(&pk, u.data) == 0 &&
        (sb.size != size || memcmp(sb.data, data, size) != 0))
      abort();
    msgpack_sbuffer_destroy(&sb);
    if (kith_codec_str(&u.data, KITH_CODEC_MAX_LEN, &s, &n) == KITH_OK &&
        memchr(s, '\0', n) != NULL)
      abort();
  }
  msgpack_unpacked_destroy(&u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  msgpack_unpacked u;
  int strict_ok =
      kith_codec_prescan(data, size, KITH_CODEC_MAX_DEPTH, 0) == KITH_OK;
  (void)!kith_codec_prescan(data, size, 32, KITH_CODEC_ALLOW_MAPS);
  check_strict(data, size);
  msgpack_unpacked_init(&u);
  if (kith_codec_unpack_loose(data, size, &u) != KITH_OK && strict_ok)
    abort(); /* loose accepts a superset of what the strict pre-scan does */
  msgpack_unpacked_destroy(&u);
  return 0;
}
