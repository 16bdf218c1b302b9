/* libFuzzer target for core/presence.c: decoding any bytes as a presence
 * beat must not crash or leak; a beat that decodes (its signature holds)
 * goes through a presence table as a node's would. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/presence.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kith_beat b;
  if (kith_beat_decode(data, size, &b) != KITH_OK)
    return 0;
  if (b.state > KITH_PRESENCE_ONLINE)
    abort(); /* the decoder bounds the state */
  kith_presence *p = kith_presence_new(b.group);
  uint64_t seen, wall = b.ts_ms;
  if (kith_presence_beat(p, &b, 1000, wall) != KITH_OK ||
      kith_presence_beat(p, &b, 1000, wall) != KITH_ERR_DUPLICATE ||
      kith_presence_online(p, b.node, 1000, KITH_PRESENCE_PERIOD_MIN_MS,
                           &seen) != (b.state == KITH_PRESENCE_ONLINE) ||
      seen != wall)
    abort();
  kith_presence_free(p);
  return 0;
}
