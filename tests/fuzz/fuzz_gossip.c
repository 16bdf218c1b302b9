/* libFuzzer target: gossip frames (core/gossip.h) on an engine that is in
 * a group's overlay, the way the node drives it.
 *
 * The engine of FUZZ_ME joined through FUZZ_PEER (linked) and knows
 * FUZZ_THIRD (not linked) and a few events. The input is a sequence of
 * operations, each one byte and one fuzz_take part:
 *   op % 8 = 0: the part is a frame from FUZZ_PEER; 1: from FUZZ_THIRD;
 *   2: the clock moves on by 10 ms per byte of the part, then a tick;
 *   3: verdicts on the payloads delivered so far: (op >> 3) & 3 is the
 *      kith_gossip_verdict_kind (invalid, valid, later, held);
 *   4: the link to FUZZ_PEER goes down, or up again;
 *   5: a local event with the part as payload is published;
 *   6: the part's whole 32-byte ids are asked of FUZZ_PEER
 *      (kith_gossip_want, as for a held event's missing parents);
 *   7: a reconciliation with FUZZ_PEER starts now (kith_gossip_reconcile).
 * The engine's requests are carried out as the node does: CONNECT gets a
 * link, FETCH an answer with a payload, DELIVER waits for op 3. A frame
 * gives KITH_OK or KITH_ERR_DECODE only, want notes no more ids than it is
 * given, and the views keep their caps. Frames in the forms of
 * tests/vectors/gossip.txt (PAYLOAD, IHAVE, GRAFT, PRUNE, WANT) seed it. */
#include <stdlib.h>

#include "core/gossip.h"
#include "fuzz_common.h"

#define DELIVERED_MAX 64
#define ROUNDS_MAX 8 /* rounds of carrying out requests per operation */

typedef struct world {
  kith_gossip *g;
  uint64_t now;
  GByteArray *delivered; /* ids of payloads awaiting a verdict */
  int peer_up;
} world;

static void run_out(world *w, kith_out *o, kith_out *next) {
  static const uint8_t payload[] = "a stored event";
  for (size_t i = 0; i < o->n; i++) {
    const kith_out_item *it = &o->items[i];
    switch (it->kind) {
    case KITH_OUT_DELIVER:
      if (w->delivered->len < DELIVERED_MAX * 32)
        g_byte_array_append(w->delivered, it->id, 32);
      break;
    case KITH_OUT_CONNECT:
      kith_gossip_link_up(w->g, it->peer, w->now, next);
      break;
    case KITH_OUT_FETCH:
      for (size_t k = 0; k + 32 <= it->len; k += 32)
        (void)!kith_gossip_send_payload(w->g, it->peer, payload, sizeof payload,
                                        next);
      break;
    default:
      break; /* SEND, DISCONNECT, PENALIZE: nothing to do here */
    }
  }
  kith_out_reset(o);
}

/* Carries out o and whatever that asks for, a bounded number of rounds. */
static void drain(world *w, kith_out *o) {
  kith_out next;
  kith_out_init(&next);
  for (int r = 0; r < ROUNDS_MAX && o->n > 0; r++) {
    run_out(w, o, &next);
    kith_out tmp = *o;
    *o = next;
    next = tmp;
  }
  kith_out_clear(&next);
  kith_out_reset(o);
}

static void check(const world *w) {
  kith_gossip_stats st;
  kith_gossip_get_stats(w->g, &st);
  if (st.active > KITH_GOSSIP_ACTIVE_CAP || st.eager > st.active ||
      st.passive > KITH_GOSSIP_PASSIVE_CAP)
    abort();
}

static void recv_frame(world *w, int from, const uint8_t *p, size_t n,
                       kith_out *o) {
  kith_err err = kith_gossip_recv(w->g, fuzz_ident(from)->pk, p, n, w->now, o);
  if (err != KITH_OK && err != KITH_ERR_DECODE)
    abort();
}

static void step(world *w, uint8_t op, const uint8_t *p, size_t n,
                 kith_out *o) {
  const uint8_t *peer = fuzz_ident(FUZZ_PEER)->pk;
  size_t asked = 0;
  kith_err err;
  switch (op % 8) {
  case 0:
  case 1:
    recv_frame(w, op % 8 == 0 ? FUZZ_PEER : FUZZ_THIRD, p, n, o);
    break;
  case 2:
    w->now += 10 * (uint64_t)n + 1;
    kith_gossip_tick(w->g, w->now, o);
    break;
  case 3:
    for (guint i = 0; i < w->delivered->len; i += 32)
      kith_gossip_verdict(w->g, w->delivered->data + i,
                          (kith_gossip_verdict_kind)((op >> 3) & 3),
                          FUZZ_NOW_MS, w->now, o);
    g_byte_array_set_size(w->delivered, 0);
    break;
  case 4:
    if (w->peer_up)
      kith_gossip_link_down(w->g, peer, w->now, o);
    else
      kith_gossip_link_up(w->g, peer, w->now, o);
    w->peer_up = !w->peer_up;
    break;
  case 5:
    (void)!kith_gossip_publish(w->g, FUZZ_NOW_MS, p, n, w->now, o);
    break;
  case 6:
    n = MIN(n / 32, KITH_GOSSIP_IDS_MAX);
    err = kith_gossip_want(w->g, peer, p, n, w->now, &asked, o);
    if ((err != KITH_OK && err != KITH_ERR_STATE) || asked > n)
      abort();
    break;
  default:
    err = kith_gossip_reconcile(w->g, peer, w->now, o);
    if (err != KITH_OK && err != KITH_ERR_STATE)
      abort();
  }
}

static void setup(world *w, kith_out *o) {
  w->g = kith_gossip_new(fuzz_ident(FUZZ_ME)->pk, 1, NULL);
  w->now = 1000;
  w->delivered = g_byte_array_new();
  if (w->g == NULL ||
      kith_gossip_join(w->g, fuzz_ident(FUZZ_PEER)->pk, w->now, o) != KITH_OK)
    abort();
  kith_gossip_link_up(w->g, fuzz_ident(FUZZ_PEER)->pk, w->now, o);
  w->peer_up = 1;
  kith_gossip_add_passive(w->g, fuzz_ident(FUZZ_THIRD)->pk);
  for (unsigned i = 0; i < 8; i++) {
    uint8_t id[32];
    crypto_generichash(id, sizeof id, (const uint8_t *)&i, sizeof i, NULL, 0);
    if (kith_gossip_add_known(w->g, FUZZ_NOW_MS + i, id) != KITH_OK)
      abort();
  }
  drain(w, o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  world w = {0};
  kith_out o;
  fuzz_in in = {data, size};

  kith_out_init(&o);
  setup(&w, &o);
  while (in.n > 0) {
    uint8_t op = fuzz_u8(&in);
    const uint8_t *p;
    size_t n = fuzz_take(&in, &p);
    step(&w, op, p, n, &o);
    drain(&w, &o);
    check(&w);
  }
  kith_out_clear(&o);
  g_byte_array_unref(w.delivered);
  kith_gossip_free(w.g);
  return 0;
}
