/* libFuzzer target: kith_event_decode on arbitrary bytes. The input is
 * the group id the bytes are decoded for (32 bytes: a version-2 event
 * signs it) and then the event. It must never crash or leak; an accepted
 * event keeps exactly the bytes it came from (canonical: one event, one
 * id), its id is their BLAKE2b-256, and a copy decodes to the same event.
 * The bodies inside events are fuzzed by fuzz_group.c, which seals them
 * under a real epoch. */
#include <stdlib.h>

#include "core/event.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kith_event ev, copy, again;
  uint8_t id[KITH_EVENT_ID_LEN];

  if (sodium_init() < 0)
    abort();
  if (size < 32)
    return 0;
  const uint8_t *gid = data;
  data += 32, size -= 32;
  if (kith_event_decode(data, size, gid, &ev) != KITH_OK)
    return 0;
  crypto_generichash(id, sizeof id, data, size, NULL, 0);
  if (ev.raw_len != size || memcmp(ev.raw, data, size) != 0 ||
      memcmp(ev.id, id, sizeof id) != 0)
    abort();
  if (kith_event_copy(&copy, &ev) != KITH_OK ||
      kith_event_decode(copy.raw, copy.raw_len, gid, &again) != KITH_OK ||
      memcmp(again.id, ev.id, sizeof id) != 0 || again.kind != ev.kind ||
      again.body_len != ev.body_len ||
      (ev.body_len && memcmp(again.body, ev.body, ev.body_len) != 0))
    abort();
  kith_event_clear(&again);
  kith_event_clear(&copy);
  kith_event_clear(&ev);
  return 0;
}
