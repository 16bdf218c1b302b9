/* libFuzzer target: join requests (kith_wire_join_decode), as an admitter
 * gets them inside an offer. What decodes must re-encode to the same
 * bytes (the request is canonical msgpack) with a valid name. */
#include <stdlib.h>

#include "core/codec.h"
#include "fuzz_common.h"
#include "net/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kith_wire_join j;
  kith_pack pk;
  uint8_t *back = NULL;
  size_t blen = 0;

  if (kith_wire_join_decode(data, size, &j) != KITH_OK)
    return 0;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 4);
  kith_pack_bin(&pk, j.gid, 32);
  kith_pack_bin(&pk, j.invite_pk, 32);
  kith_pack_bin(&pk, j.sig, KITH_SIG_LEN);
  kith_pack_cstr(&pk, j.name);
  if (kith_pack_take(&pk, &back, &blen) != KITH_OK || blen != size ||
      memcmp(back, data, size) != 0 || !g_utf8_validate(j.name, -1, NULL))
    abort();
  g_free(back);
  return 0;
}
