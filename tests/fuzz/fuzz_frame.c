/* libFuzzer target: link frames (kith_wire_frame_decode), the decrypted
 * frames a peer sends on a link. Decoding must never crash or leak, and
 * what it yields must keep the limits the handlers rely on: at most
 * KITH_WIRE_ADDRS_MAX well-formed addresses, HAVE ids in whole 32-byte
 * units, data inside the frame's bounds. The engine frame of a GOSSIP
 * frame is classified as the node's statistics do. */
#include <gio/gio.h>
#include <stdlib.h>

#include "core/event.h"
#include "core/gossip.h"
#include "fuzz_common.h"
#include "net/wire.h"

static void check_addrs(const kith_wire_frame *f) {
  if (f->n_addrs > KITH_WIRE_ADDRS_MAX)
    abort();
  for (size_t i = 0; i < f->n_addrs; i++) {
    const kith_wire_addr *a = &f->addrs[i];
    GInetAddress *ia = g_inet_address_new_from_string(a->host);
    if (a->port == 0 || ia == NULL)
      abort();
    g_object_unref(ia);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kith_wire_frame f;

  if (kith_wire_frame_decode(data, size, &f) == KITH_OK) {
    if (f.len > size || (f.len > 0 && f.data == NULL))
      abort();
    switch (f.type) {
    case FRAME_ADDRS:
      check_addrs(&f);
      break;
    case FRAME_HAVE:
      if (f.len % 32 != 0 || f.len > KITH_WIRE_HAVE_IDS_MAX * 32)
        abort();
      break;
    case FRAME_EVENT:
      if (f.len > KITH_EVENT_MAX)
        abort();
      break;
    case FRAME_GOSSIP:
      (void)kith_gossip_frame_type(f.data, f.len);
      break;
    case FRAME_RELAY:
      if (f.relay_kind > 1)
        abort();
      break;
    default:
      break;
    }
  }
  kith_wire_frame_clear(&f);
  return 0;
}
