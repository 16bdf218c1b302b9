/* kith: the carriers of a link's session (docs/protocol.md 9.4).
 *
 * The session is end to end; what carries its records can change. A link
 * starts on whichever carrier works first: the relay friend its signalling
 * went through (at once, once the answer is in), or the ICE agent of the
 * offer. ICE goes on in the background; when an agent is ready on a better
 * path (direct beats TURN beats the relay friend), each side sends MOVE
 * on the old carrier as its last record there and writes on the new one
 * from then on. The receiver reads the old carrier up to MOVE and holds
 * what the new one brings until then, so no record is lost, duplicated or
 * reordered: the records keep one counter (10.4) whatever carries them.
 * A link that is not direct probes again (the initiator offers a fresh
 * ICE agent in a PATH_OFFER frame on the session) with backoff. */
#include <inttypes.h>
#include <sodium.h>
#include <string.h>

#include "../core/codec.h"
#include "node_int.h"

/* session bytes per relayed frame */
#define RELAY_CHUNK (64 * 1024)
/* a ready probe may still find a better pair for this long */
#define PROBE_SETTLE_MS (3 * KITH_SECOND)

static void carrier_reset(node_carrier *c) {
  if (c->ice)
    kith_ice_free(c->ice);
  c->ice = NULL;
  c->attempt = 0;
  c->ready = c->gathered = c->answered = c->used = c->rx_left = 0;
  kith_outq_reset(&c->out);
  if (c->in)
    g_byte_array_set_size(c->in, 0);
}

void carrier_init(node_peer *p) {
  for (int i = 0; i < PEER_CARRIERS; i++) {
    p->car[i].peer = p;
    p->car[i].slot = i;
    kith_outq_init(&p->car[i].out);
    p->car[i].in = g_byte_array_new();
  }
  p->tx = p->rx = -1;
}

void carrier_release(node_peer *p) {
  for (int i = 0; i < PEER_CARRIERS; i++) {
    if (p->car[i].ice)
      kith_ice_free(p->car[i].ice);
    p->car[i].ice = NULL;
    p->car[i].ready = 0;
  }
}

void carrier_free(node_peer *p) {
  carrier_release(p);
  for (int i = 0; i < PEER_CARRIERS; i++) {
    kith_outq_clear(&p->car[i].out);
    if (p->car[i].in)
      g_byte_array_unref(p->car[i].in);
  }
}

node_peer *carrier_relay_peer(node_peer *p) {
  node_peer *r = p->via[0] ? g_hash_table_lookup(p->node->peers, p->via) : NULL;
  return peer_is_up(r) && !r->relayed ? r : NULL;
}

/* Can the relay friend `via` carry this link's records? Only a relay
 * friend passes session bytes (signalling may come through any member). */
static int relay_usable(node_peer *p) {
  node_peer *r = carrier_relay_peer(p);
  return r && relay_is_friend(p->node, r->id);
}

static kith_path_rank rank_of(const node_peer *p, int slot) {
  if (slot < 0)
    return KITH_PATH_NONE;
  if (slot == CAR_RELAY)
    return KITH_PATH_FRIEND_RELAY;
  return p->car[slot].ice ? kith_path_rank_of(kith_ice_path(p->car[slot].ice))
                          : KITH_PATH_NONE;
}

const char *peer_path(const node_peer *p) {
  if (p->tx == CAR_RELAY)
    return "friend-relay";
  if (p->tx < 0 || !p->car[p->tx].ice)
    return "";
  const char *s = kith_ice_path(p->car[p->tx].ice);
  return s ? s : "";
}

const char *peer_addr(const node_peer *p) {
  if (p->tx == CAR_RELAY)
    return p->via;
  if (p->tx < 0 || !p->car[p->tx].ice)
    return "";
  const char *s = kith_ice_remote_addr(p->car[p->tx].ice);
  return s ? s : "";
}

uint64_t peer_path_age_s(const node_peer *p, uint64_t now) {
  return p->path_since_ms && now > p->path_since_ms
             ? (now - p->path_since_ms) / KITH_SECOND
             : 0;
}

size_t peer_unsent(const node_peer *p) {
  size_t sum = p->crypt ? kith_crypt_unsent(p->crypt) : 0;
  for (int i = 0; i < PEER_CARRIERS; i++)
    sum += kith_outq_len(&p->car[i].out);
  return sum;
}

/* The path in use changed (a move, or ICE nominated another pair). */
static void note_path(node_peer *p) {
  const char *now_path = peer_path(p);

  if (strcmp(now_path, p->path_seen) == 0)
    return;
  if (p->state == PEER_UP && p->path_seen[0])
    node_log(p->node, "link to %.8s moves from %s to %s (%s)", p->id_text,
             p->path_seen, now_path, peer_addr(p));
  g_strlcpy(p->path_seen, now_path, sizeof p->path_seen);
  p->path_since_ms = node_now();
}

/* Hands queued records to each carrier; an ICE carrier takes what its
 * send buffer holds (on_writable resumes). */
static void flush_one(node_peer *p, node_carrier *c) {
  if (kith_outq_len(&c->out) == 0)
    return;
  if (c->slot == CAR_RELAY) {
    node_peer *r = carrier_relay_peer(p);
    if (!r) {
      if (c->used)
        peer_close(p, "the relay friend is gone");
      else
        kith_outq_reset(&c->out);
      return;
    }
    /* The relay drops what is over its rate, and a lost record ends the
     * session: stay under it (all links through r share its bucket); the
     * rest waits for the tick. */
    size_t off = 0, n;
    const uint8_t *data;
    while ((n = kith_outq_piece(&c->out, off, &data)) > 0 && !p->closed) {
      size_t chunk = MIN(RELAY_CHUNK, n);
      if (!kith_bucket_take(&r->relay_pace, RELAY_PACE_RATE, RELAY_PACE_BURST,
                            chunk, node_now()))
        break;
      relay_send_data(r, p->id, data, chunk);
      off += chunk;
    }
    kith_outq_consume(&c->out, off);
    return;
  }
  const uint8_t *data;
  size_t n;
  while (c->ice && (n = kith_outq_piece(&c->out, 0, &data)) > 0) {
    ssize_t sent = kith_ice_send(c->ice, data, n);
    if (sent < 0) {
      peer_close(p, "send failed");
      return;
    }
    if (sent == 0)
      return;
    kith_outq_consume(&c->out, (size_t)sent);
  }
}

/* ICE agents the session has left (both directions moved on, nothing
 * left to send) are let go. */
static void drop_left(node_peer *p) {
  for (int i = CAR_RELAY + 1; i < PEER_CARRIERS; i++) {
    node_carrier *c = &p->car[i];
    if (c->ice && c->used && i != p->tx && i != p->rx &&
        kith_outq_len(&c->out) == 0)
      carrier_reset(c);
  }
}

void carrier_flush(node_peer *p) {
  for (int i = 0; i < PEER_CARRIERS && !p->closed; i++)
    flush_one(p, &p->car[i]);
  if (p->closed)
    return;
  drop_left(p);
  if (!p->moving)
    gossip_pump(p);
}

kith_err carrier_seal(node_peer *p, const uint8_t *frame, size_t len) {
  if (p->tx < 0 || !p->crypt)
    return KITH_ERR_STATE;
  return kith_crypt_seal(p->crypt, frame, len,
                         kith_outq_tail(&p->car[p->tx].out));
}

static void start_session(node_peer *p, int slot) {
  p->tx = p->rx = slot;
  p->car[slot].used = 1;
  p->relayed = slot == CAR_RELAY;
  p->state = PEER_HANDSHAKE;
  note_path(p);
  if (kith_session_start(p->sess, kith_outq_tail(&p->car[slot].out)) !=
      KITH_OK) {
    peer_close(p, "session start failed");
    return;
  }
  carrier_flush(p);
}

/* The best ready carrier, if better than the one the session writes to. */
static int better_carrier(const node_peer *p) {
  int best = p->tx;

  for (int i = CAR_RELAY + 1; i < PEER_CARRIERS; i++)
    if (p->car[i].ready && rank_of(p, i) > rank_of(p, best))
      best = i;
  return best;
}

static void send_move(node_peer *p, uint64_t attempt) {
  uint8_t frame[16];
  size_t len = 0;

  frame[len++] = 0x92;
  frame[len++] = FRAME_MOVE;
  if (attempt < 128) {
    frame[len++] = (uint8_t)attempt;
  } else {
    frame[len++] = 0xcf;
    for (int i = 7; i >= 0; i--)
      frame[len++] = (uint8_t)(attempt >> (8 * i));
  }
  /* Every record sealed before MOVE goes out on the old carrier first,
   * and nothing is sealed between them (the pump waits). MOVE itself is
   * sealed here and now, into the old carrier: with nothing queued the
   * session's next counter is its own (the worker would hand it back
   * after the switch, onto the new carrier). */
  p->moving = 1;
  kith_crypt_sync_tx(p->crypt);
  if (!p->closed &&
      kith_session_seal(p->sess, frame, len,
                        kith_outq_tail(&p->car[p->tx].out)) != KITH_OK)
    peer_close(p, "cannot seal frame");
  p->moving = 0;
}

/* Moves what this side writes to a better carrier: MOVE is the last
 * record on the old one (it drains what it holds), then the new one. */
static void maybe_move(node_peer *p) {
  int to;

  if (p->state != PEER_UP || p->closed)
    return;
  to = better_carrier(p);
  if (to == p->tx)
    return;
  send_move(p, p->car[to].attempt);
  if (p->closed)
    return;
  p->tx = to;
  p->car[to].used = 1;
  p->relayed = 0;
  p->probe_failures = 0;
  note_path(p);
  carrier_flush(p);
}

/* Bytes a carrier brought. The first carrier the initiator's bytes come on
 * is the responder's; bytes on a carrier the session does not read yet
 * wait there (the peer moved; its MOVE is still on the way). */
static void on_bytes(node_peer *p, int slot, const uint8_t *buf, size_t len) {
  node_carrier *c = &p->car[slot];

  if (p->closed)
    return;
  if (p->rx < 0) {
    if (p->offerer)
      return; /* the initiator speaks first: nothing can come before */
    start_session(p, slot);
    if (p->closed)
      return;
  }
  if (slot == p->rx) {
    peer_feed(p, buf, len);
    return;
  }
  if (c->rx_left)
    return; /* a carrier the peer has left */
  if (c->in->len + len > PEER_IN_MAX) {
    peer_close(p, "too many bytes ahead of the peer's MOVE");
    return;
  }
  g_byte_array_append(c->in, buf, (guint)len);
  p->last_rx_ms = node_now();
}

void carrier_send_last(node_peer *p) {
  node_carrier *c = p->tx >= 0 ? &p->car[p->tx] : NULL;
  node_peer *r = p->tx == CAR_RELAY ? carrier_relay_peer(p) : NULL;
  const uint8_t *data;
  size_t n;

  if (!c || (!r && !c->ice))
    return;
  /* Piece by piece: what the carrier does not take now is lost. */
  for (size_t off = 0; (n = kith_outq_piece(&c->out, off, &data)) > 0;
       off += n) {
    if (r) {
      n = MIN(RELAY_CHUNK, n);
      relay_send_data(r, p->id, data, n);
    } else if (kith_ice_send(c->ice, data, n) != (ssize_t)n) {
      return;
    }
  }
}

void carrier_link_up(node_peer *p) {
  maybe_move(p);
}

void carrier_after_frames(node_peer *p) {
  node_carrier *c = p->rx >= 0 ? &p->car[p->rx] : NULL;

  if (p->closed || !c || c->in->len == 0)
    return;
  GByteArray *held = c->in;
  c->in = g_byte_array_new();
  peer_feed(p, held->data, held->len);
  g_byte_array_unref(held);
}

static void on_move(node_peer *p, uint64_t attempt) {
  int to = -1;

  for (int i = 0; i < PEER_CARRIERS; i++)
    if ((i == CAR_RELAY && attempt == 0) ||
        (i != CAR_RELAY && p->car[i].ice && p->car[i].attempt == attempt))
      to = i;
  if (to < 0 || to == p->rx) {
    peer_close(p, "the peer moved to a path this node does not have");
    return;
  }
  p->car[p->rx].rx_left = 1;
  p->rx = to;
  p->car[to].used = 1;
  /* its held bytes are fed once the current batch of frames is done
   * (carrier_after_frames): they come after MOVE */
}

/* ---- ICE agents ---- */

static void ice_gathered(kith_ice *ice, void *ud);
static void ice_state(kith_ice *ice, int ready, void *ud);
static void ice_recv(kith_ice *ice, const uint8_t *buf, size_t len, void *ud);
static void ice_writable(kith_ice *ice, void *ud);
static void ice_path(kith_ice *ice, void *ud);

static const kith_ice_callbacks ice_cbs = {
    .on_gathered = ice_gathered,
    .on_state = ice_state,
    .on_recv = ice_recv,
    .on_writable = ice_writable,
    .on_path = ice_path,
};

kith_err carrier_ice_new(node_peer *p, int slot, uint64_t attempt) {
  kith_node *n = p->node;
  node_carrier *c = &p->car[slot];
  kith_ice_config cfg = {0};

  carrier_reset(c);
  c->attempt = attempt;
  c->started_ms = node_now();
  cfg.controlling = memcmp(n->me.pk, p->id, KITH_ID_LEN) < 0;
  cfg.loopback = n->loopback;
  cfg.only_addr = n->bind_addr;
  if (reflex_stun_server(n, p->id, p->stun_host, &cfg.stun_port))
    cfg.stun_host = p->stun_host; /* --stun, else a relay friend */
  cfg.turn = n->turn;
  cfg.n_turn = n->n_turn;
  return kith_ice_new(n->ctx, &cfg, &ice_cbs, c, &c->ice);
}

/* A slot for a new ICE agent: one that holds none. */
static int free_slot(const node_peer *p) {
  for (int i = CAR_RELAY + 1; i < PEER_CARRIERS; i++)
    if (!p->car[i].ice && i != p->tx && i != p->rx)
      return i;
  return -1;
}

/* An ICE agent that is not carrying anything (yet): a probe. */
static int probe_slot(const node_peer *p) {
  for (int i = CAR_RELAY + 1; i < PEER_CARRIERS; i++)
    if (p->car[i].ice && !p->car[i].used)
      return i;
  return -1;
}

static void schedule_probe(node_peer *p) {
  p->probe_failures++;
  p->next_probe_ms =
      node_now() + kith_backoff_ms(p->probe_failures, randombytes_random());
}

/* A probe found nothing better (failed, timed out, or settled on a path
 * no better than the one in use): let it go; the initiator tries again
 * after the backoff. */
static void probe_done(node_peer *p, int slot) {
  carrier_reset(&p->car[slot]);
  if (p->offerer)
    schedule_probe(p);
}

static kith_err send_path_frame(node_peer *p, int type, node_carrier *c) {
  kith_ice_params params;
  uint8_t *pbuf = NULL;
  size_t plen;
  kith_pack pk;
  uint8_t *buf;
  size_t len;
  kith_err err = kith_ice_local_params(c->ice, &params);

  err = err ? err : kith_ice_params_encode(&params, &pbuf, &plen);
  if (err != KITH_OK)
    return err;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 3);
  kith_pack_uint(&pk, (uint64_t)type);
  kith_pack_uint(&pk, c->attempt);
  kith_pack_bin(&pk, pbuf, plen);
  g_free(pbuf);
  err = kith_pack_take(&pk, &buf, &len);
  if (err == KITH_OK)
    peer_send_frame(p, buf, len);
  g_free(buf);
  return err;
}

static void ice_gathered(kith_ice *ice, void *ud) {
  node_carrier *c = ud;
  node_peer *p = c->peer;

  c->gathered = 1;
  if (c->attempt == 1) {
    peer_signal_when_ready(p); /* the offer or answer of the link */
    return;
  }
  if (p->offerer) {
    if (send_path_frame(p, FRAME_PATH_OFFER, c) != KITH_OK && !p->closed)
      probe_done(p, c->slot);
    return;
  }
  if (send_path_frame(p, FRAME_PATH_ANSWER, c) != KITH_OK ||
      kith_ice_set_remote(c->ice, &p->probe_remote) != KITH_OK) {
    if (!p->closed)
      probe_done(p, c->slot);
    return;
  }
  c->answered = 1;
}

/* The session is in its handshake on the relay friend and nothing came
 * back: the friend may not relay for the peer (it passes signalling
 * between members, session bytes only between its friends). Start over
 * on a ready ICE agent. */
static void maybe_restart(node_peer *p, uint64_t now) {
  int to = better_carrier(p);

  if (!p->offerer || p->state != PEER_HANDSHAKE || p->tx != CAR_RELAY ||
      to == CAR_RELAY || now - p->car[CAR_RELAY].started_ms < RELAY_HS_WAIT_MS)
    return;
  node_log(p->node, "the relay friend does not pass %.8s's records: ICE",
           p->id_text);
  if (!peer_new_session(p)) {
    peer_close(p, "session start failed");
    return;
  }
  kith_outq_reset(&p->car[CAR_RELAY].out);
  start_session(p, to);
}

static void ice_state(kith_ice *ice, int ready, void *ud) {
  node_carrier *c = ud;
  node_peer *p = c->peer;
  int slot = c->slot;

  if (!ready) {
    if (slot == p->tx || slot == p->rx) {
      peer_close(p, "its ICE path failed");
      return;
    }
    carrier_reset(c);
    if (p->tx < 0 && !(p->via[0] && !p->offerer && relay_usable(p))) {
      if (p->offerer && !p->via[0])
        node_note_direct_failure(p->node, p->id);
      peer_close(p, "ICE found no working path");
      return;
    }
    if (p->offerer)
      schedule_probe(p);
    return;
  }
  c->ready = 1;
  c->started_ms = node_now(); /* a probe settles from here */
  if (p->tx < 0) {
    if (p->offerer)
      start_session(p, slot);
    return; /* the responder starts on the initiator's first bytes */
  }
  maybe_restart(p, node_now());
  maybe_move(p);
}

static void ice_recv(kith_ice *ice, const uint8_t *buf, size_t len, void *ud) {
  node_carrier *c = ud;
  on_bytes(c->peer, c->slot, buf, len);
}

static void ice_writable(kith_ice *ice, void *ud) {
  node_carrier *c = ud;
  if (!c->peer->closed)
    carrier_flush(c->peer);
}

static void ice_path(kith_ice *ice, void *ud) {
  node_carrier *c = ud;
  node_peer *p = c->peer;

  if (c->slot == p->tx)
    note_path(p);
  maybe_move(p);
}

/* ---- the relay friend ---- */

void carrier_relay_answered(node_peer *p) {
  if (!relay_usable(p) || p->car[CAR_RELAY].ready)
    return;
  p->car[CAR_RELAY].ready = 1;
  p->car[CAR_RELAY].started_ms = node_now();
  if (p->offerer && p->tx < 0)
    start_session(p, CAR_RELAY);
}

void peer_on_relayed_data(kith_node *n, const uint8_t from[32],
                          const uint8_t *bytes, size_t len, node_peer *relay) {
  char text[KITH_ID_TEXT_LEN + 1];
  node_peer *p;

  kith_id_to_text(from, text);
  p = g_hash_table_lookup(n->peers, text);
  /* Only a link we offered or answered, through a relay friend of ours. */
  if (!p || p->closed || p->state < PEER_CONNECTING ||
      !relay_is_friend(n, relay->id))
    return;
  if (!p->via[0] && p->tx != CAR_RELAY)
    g_strlcpy(p->via, relay->id_text, sizeof p->via);
  if (strcmp(p->via, relay->id_text) != 0)
    return;
  p->car[CAR_RELAY].ready = 1;
  on_bytes(p, CAR_RELAY, bytes, len);
}

/* ---- probes ---- */

static void start_probe(node_peer *p, uint64_t now) {
  int slot = free_slot(p);

  if (slot < 0)
    return;
  if (carrier_ice_new(p, slot, ++p->attempts) != KITH_OK) {
    schedule_probe(p);
    return;
  }
  node_log(p->node, "looking for a direct path to %.8s (attempt %" PRIu64 ")",
           p->id_text, p->attempts);
}

void carrier_tick(node_peer *p, uint64_t now) {
  int probe = probe_slot(p);

  if (kith_outq_len(&p->car[CAR_RELAY].out) > 0)
    carrier_flush(p); /* paced: what the relay's rate held back */
  if (p->closed)
    return;
  maybe_restart(p, now);
  if (p->closed || p->state != PEER_UP)
    return;
  if (probe >= 0) {
    node_carrier *c = &p->car[probe];
    if (c->ready && now - c->started_ms >= PROBE_SETTLE_MS)
      probe_done(p, probe); /* ready, and no better than the path in use */
    else if (!c->ready && now - c->started_ms > PEER_CONNECT_TIMEOUT_MS)
      probe_done(p, probe);
    return;
  }
  if (p->offerer && rank_of(p, p->tx) < KITH_PATH_DIRECT &&
      now >= p->next_probe_ms)
    start_probe(p, now);
}

void carrier_probe_soon(node_peer *p) {
  p->probe_failures = 0;
  p->next_probe_ms = 0;
}

static void on_path_offer(node_peer *p, const kith_wire_frame *f) {
  int slot;

  if (p->offerer || f->t <= p->attempts)
    return; /* only the initiator probes; an old attempt */
  p->attempts = f->t;
  slot = probe_slot(p);
  if (slot >= 0)
    carrier_reset(&p->car[slot]); /* the initiator gave that one up */
  slot = free_slot(p);
  if (slot < 0)
    return;
  p->probe_remote = f->params;
  if (carrier_ice_new(p, slot, f->t) != KITH_OK)
    carrier_reset(&p->car[slot]);
}

static void on_path_answer(node_peer *p, const kith_wire_frame *f) {
  int slot = probe_slot(p);
  node_carrier *c = slot >= 0 ? &p->car[slot] : NULL;

  if (!p->offerer || !c || c->attempt != f->t || c->answered)
    return;
  c->answered = 1;
  if (kith_ice_set_remote(c->ice, &f->params) != KITH_OK)
    probe_done(p, slot);
}

void carrier_on_frame(node_peer *p, const kith_wire_frame *f) {
  switch (f->type) {
  case FRAME_MOVE:
    on_move(p, f->t);
    break;
  case FRAME_PATH_OFFER:
    on_path_offer(p, f);
    break;
  case FRAME_PATH_ANSWER:
    on_path_answer(p, f);
    break;
  default:
    break;
  }
}
