/* libFuzzer target: link frames (kith_wire_frame_decode), the decrypted
 * frames a peer sends on a link (docs/protocol.md 11). Decoding must never
 * crash or leak, and what it yields must keep the limits the handlers rely
 * on:
 * - a frame of a retired type (EVENT 3, HAVE 4) or of a known type with
 *   another arity is type 0 (ignored);
 * - ADDRS: at most KITH_WIRE_ADDRS_MAX entries, each with a numeric host
 *   and a port 1..65535 (its version any uint);
 * - GOSSIP: the group named by 8 or 32 bytes, the engine frame within
 *   KITH_GOSSIP_MAX_FRAME (classified as the node's statistics do);
 * - RELAY: kind 0 or 1, payload within a session record;
 * - PATH_OFFER, PATH_ANSWER: valid ICE parameters, which encode again and
 *   decode to the same parameters;
 * - data inside the frame's bounds. */
#include <gio/gio.h>
#include <stdlib.h>

#include "core/gossip.h"
#include "fuzz_common.h"
#include "net/session.h"
#include "net/wire.h"

static void check_addrs(const kith_wire_frame *f) {
  if (f->n_addrs > KITH_WIRE_ADDRS_MAX)
    abort();
  for (size_t i = 0; i < f->n_addrs; i++) {
    const kith_wire_addr *a = &f->addrs[i];
    GInetAddress *ia = g_inet_address_new_from_string(a->host);
    if (a->port == 0 || ia == NULL || strlen(a->host) > KITH_WIRE_HOST_MAX)
      abort();
    g_object_unref(ia);
  }
}

/* The parameters of a PATH_* frame encode again to what decodes the same. */
static void check_params(const kith_ice_params *p) {
  uint8_t *buf = NULL;
  size_t len = 0;
  kith_ice_params again;
  if (p->n_cands > KITH_ICE_MAX_CANDS ||
      kith_ice_params_encode(p, &buf, &len) != KITH_OK ||
      kith_ice_params_decode(buf, len, &again) != KITH_OK ||
      strcmp(again.ufrag, p->ufrag) != 0 || strcmp(again.pwd, p->pwd) != 0 ||
      again.n_cands != p->n_cands)
    abort();
  for (size_t i = 0; i < p->n_cands; i++) {
    const kith_ice_cand *a = &p->cands[i], *b = &again.cands[i];
    if (strcmp(a->foundation, b->foundation) != 0 ||
        a->priority != b->priority || strcmp(a->addr, b->addr) != 0 ||
        a->port != b->port || a->type != b->type)
      abort();
  }
  g_free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kith_wire_frame f;

  if (kith_wire_frame_decode(data, size, &f) == KITH_OK) {
    if (f.len > size || (f.len > 0 && f.data == NULL))
      abort();
    switch (f.type) {
    case 0:
    case FRAME_PING:
    case FRAME_PONG:
    case FRAME_BYE:
    case FRAME_ELSEWHERE:
    case FRAME_MOVE:
      break;
    case FRAME_ADDRS:
      check_addrs(&f);
      break;
    case FRAME_GOSSIP:
      if ((f.gid_len != 32 && f.gid_len != KITH_WIRE_GROUP_TAG_LEN) ||
          f.len > KITH_GOSSIP_MAX_FRAME)
        abort();
      (void)kith_gossip_frame_type(f.data, f.len);
      break;
    case FRAME_RELAY:
      if (f.relay_kind > 1 || f.len > KITH_SESSION_MAX_RECORD + 4)
        abort();
      break;
    case FRAME_PATH_OFFER:
    case FRAME_PATH_ANSWER:
      check_params(&f.params);
      break;
    default:
      abort(); /* retired (EVENT, HAVE) and unknown types are type 0 */
    }
  }
  kith_wire_frame_clear(&f);
  return 0;
}
