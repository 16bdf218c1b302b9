/* kith: links to peers: offer/answer over the signal port, one ICE agent
 * and one secure session per peer, heartbeat. */
#include <sodium.h>
#include <string.h>

#include "../core/codec.h"
#include "node_int.h"

#define RELAY_CHUNK (64 * 1024) /* session bytes per relayed frame */

static int fall_back_to_relay(node_peer *p);
static node_peer *relay_of(node_peer *p);

void peer_free(node_peer *p) {
  if (p->ice)
    kith_ice_free(p->ice);
  if (p->sess)
    kith_session_free(p->sess);
  if (p->outbuf)
    g_byte_array_unref(p->outbuf);
  if (p->reply_to)
    g_object_unref(p->reply_to);
  if (p->push)
    g_queue_free_full(p->push, gossip_push_free);
  if (p->announce)
    g_hash_table_unref(p->announce);
  g_free(p->join);
  g_free(p);
}

node_peer *peer_find(kith_node *n, const uint8_t id[32]) {
  char text[KITH_ID_TEXT_LEN + 1];

  kith_id_to_text(id, text);
  return g_hash_table_lookup(n->peers, text);
}

int peer_is_up(const node_peer *p) {
  return p && !p->closed && p->state == PEER_UP;
}

node_peer *peer_find_up(kith_node *n, const uint8_t id[32]) {
  node_peer *p = peer_find(n, id);

  return peer_is_up(p) ? p : NULL;
}

/* Tells the other end, so that it does not keep a half-open link for the
 * heartbeat timeout (best effort: the bytes may not make it). */
static void send_bye(node_peer *p) {
  static const uint8_t bye[] = {0x91, FRAME_BYE};

  if (kith_session_seal(p->sess, bye, sizeof bye, p->outbuf) != KITH_OK)
    return;
  if (p->relayed) {
    node_peer *r = relay_of(p);
    if (r)
      relay_send_data(r, p->id, p->outbuf->data, p->outbuf->len);
  } else if (p->ice) {
    (void)kith_ice_send(p->ice, p->outbuf->data, p->outbuf->len);
  }
}

void peer_close(node_peer *p, const char *why) {
  kith_node *n = p->node;
  int was_up = p->state == PEER_UP;

  if (p->closed)
    return;
  p->closed = 1;
  if (was_up)
    send_bye(p);
  if (was_up)
    node_log(n, "link to %.8s down: %s", p->id_text, why);
  else
    node_log(n, "connection to %.8s abandoned: %s", p->id_text, why);
  if (g_hash_table_lookup(n->peers, p->id_text) == p)
    g_hash_table_remove(n->peers, p->id_text);
  /* No ICE callback may name the peer from here on. */
  kith_ice_free(p->ice);
  p->ice = NULL;
  node_retire_peer(n, p);
  if (was_up)
    gossip_link_down(n, p);
}

static node_peer *relay_of(node_peer *p) {
  node_peer *r = p->via[0] ? g_hash_table_lookup(p->node->peers, p->via) : NULL;
  return peer_is_up(r) && !r->relayed ? r : NULL;
}

static void flush(node_peer *p) {
  if (p->closed)
    return;
  if (p->relayed) {
    node_peer *r = relay_of(p);
    if (!r) {
      peer_close(p, "the relay friend is gone");
      return;
    }
    for (guint off = 0; off < p->outbuf->len; off += RELAY_CHUNK)
      relay_send_data(r, p->id, p->outbuf->data + off,
                      MIN(RELAY_CHUNK, p->outbuf->len - off));
    g_byte_array_set_size(p->outbuf, 0);
    gossip_pump(p);
    return;
  }
  while (p->outbuf->len > 0) {
    ssize_t sent = kith_ice_send(p->ice, p->outbuf->data, p->outbuf->len);
    if (sent < 0) {
      peer_close(p, "send failed");
      return;
    }
    if (sent == 0)
      return; /* on_writable resumes */
    g_byte_array_remove_range(p->outbuf, 0, (guint)sent);
  }
  gossip_pump(p);
}

void peer_send_frame(node_peer *p, const uint8_t *frame, size_t len) {
  if (!peer_is_up(p))
    return;
  if (p->outbuf->len > PEER_OUTBUF_MAX) {
    peer_close(p, "peer does not keep up (send buffer full)");
    return;
  }
  if (kith_session_seal(p->sess, frame, len, p->outbuf) != KITH_OK) {
    peer_close(p, "cannot seal frame");
    return;
  }
  flush(p);
}

const char *peer_path(const node_peer *p) {
  if (p->relayed)
    return "friend-relay";
  return p->ice && kith_ice_path(p->ice) ? kith_ice_path(p->ice) : "";
}

const char *peer_addr(const node_peer *p) {
  if (p->relayed)
    return p->via;
  return p->ice && kith_ice_remote_addr(p->ice) ? kith_ice_remote_addr(p->ice)
                                                : "";
}

/* Bytes of the session, from ICE or through a relay. Any handler may
 * close the link: p stays valid (life cycle above), so p->closed says. */
static void peer_feed(node_peer *p, const uint8_t *buf, size_t len) {
  GPtrArray *frames =
      g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  kith_err err = kith_session_recv(p->sess, buf, len, p->outbuf, frames);
  kith_node *n = p->node;

  p->last_rx_ms = node_now();
  if (p->state != PEER_UP && kith_session_is_established(p->sess)) {
    p->state = PEER_UP;
    node_log(n, "link to %.8s up (%s, %s)", p->id_text, peer_path(p),
             peer_addr(p));
    frames_link_up(p);
    if (!p->closed)
      gossip_link_up(n, p);
  }
  for (guint i = 0; i < frames->len && !p->closed; i++) {
    gsize flen;
    const uint8_t *f = g_bytes_get_data(frames->pdata[i], &flen);
    frames_on_frame(p, f, flen);
  }
  g_ptr_array_unref(frames);
  if (p->closed)
    return;
  if (err != KITH_OK) {
    n->dropped_frames++;
    peer_close(p, kith_strerror(err));
    return;
  }
  flush(p);
}

static void on_ice_recv(kith_ice *ice, const uint8_t *buf, size_t len,
                        void *ud) {
  peer_feed(ud, buf, len);
}

static void on_ice_state(kith_ice *ice, int ready, void *ud) {
  node_peer *p = ud;

  if (!ready) {
    if (!fall_back_to_relay(p)) {
      if (p->offerer && !p->via[0])
        node_note_direct_failure(p->node, p->id);
      peer_close(p, "ICE found no working path");
    }
    return;
  }
  p->state = PEER_HANDSHAKE;
  if (kith_session_start(p->sess, p->outbuf) != KITH_OK) {
    peer_close(p, "session start failed");
    return;
  }
  flush(p);
}

static void on_ice_writable(kith_ice *ice, void *ud) {
  flush(ud);
}

/* array, kind, bin headers, since and instance nonce of a payload */
#define SIGNAL_FIELDS_MAX 48

/* Packs [kind, ice params bin, join bin|nil, since uint, nonce bin16]. */
static kith_err pack_signal(int kind, node_peer *p, uint8_t **out,
                            size_t *len) {
  kith_ice_params params;
  uint8_t *pbuf = NULL;
  size_t plen = 0;
  kith_pack pk;
  kith_err err = kith_ice_local_params(p->ice, &params);

  /* The candidates that fit beside the rest of the payload (kind, headers
   * and the join request), highest priorities first. */
  err = err ? err
            : kith_ice_params_encode_max(
                  &params,
                  KITH_SIGNAL_MAX_PAYLOAD - SIGNAL_FIELDS_MAX -
                      (kind == SIG_OFFER && p->join ? p->join_len : 0),
                  &pbuf, &plen);
  if (err != KITH_OK)
    return err;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 5);
  kith_pack_uint(&pk, (uint64_t)kind);
  kith_pack_bin(&pk, pbuf, plen);
  if (kind == SIG_OFFER && p->join)
    kith_pack_bin(&pk, p->join, p->join_len);
  else
    kith_pack_nil(&pk);
  kith_pack_uint(&pk, p->node->inst.since_ms);
  kith_pack_bin(&pk, p->node->inst.nonce, sizeof p->node->inst.nonce);
  g_free(pbuf);
  return kith_pack_take(&pk, out, len);
}

static void send_offer(node_peer *p, const char *host, uint16_t port) {
  uint8_t *buf;
  size_t len;
  kith_err err = pack_signal(SIG_OFFER, p, &buf, &len);
  node_peer *r = relay_of(p);

  if (err == KITH_OK) {
    err = r ? relay_send_signal(r, p->id, buf, len)
            : kith_signal_send(p->node->sig, p->id, host, port, buf, len,
                               OFFER_MIN_SIZE);
    g_free(buf);
  }
  if (err != KITH_OK)
    node_log(p->node, "offer to %.8s at %s:%u failed: %s", p->id_text, host,
             port, kith_strerror(err));
}

static kith_err resend_answer(node_peer *p) {
  uint8_t *buf;
  size_t len;
  kith_err err = pack_signal(SIG_ANSWER, p, &buf, &len);
  node_peer *r = relay_of(p);

  if (err == KITH_OK) {
    if (r)
      err = relay_send_signal(r, p->id, buf, len);
    else if (p->reply_to)
      err = kith_signal_reply(p->node->sig, p->id, p->reply_to, buf, len,
                              p->offer_size);
    else
      err = KITH_ERR_STATE;
    g_free(buf);
  }
  return err;
}

static void send_answer(node_peer *p) {
  kith_err err = resend_answer(p);

  if (err != KITH_OK) {
    peer_close(p, "cannot answer the offer");
    return;
  }
  err = kith_ice_set_remote(p->ice, &p->remote);
  if (err != KITH_OK) {
    peer_close(p, "bad ICE parameters in the offer");
    return;
  }
  p->state = PEER_CONNECTING;
}

/* Sends our offer or answer once both gathering and our own set-up are
 * done (gathering may finish inside kith_ice_new). */
static void signal_when_ready(node_peer *p) {
  if (!p->gathered || !p->armed || p->state != PEER_GATHERING)
    return;
  if (p->offerer) {
    send_offer(p, p->offer_host, p->offer_port);
    p->state = PEER_OFFERED;
  } else {
    send_answer(p);
  }
}

static void on_ice_gathered(kith_ice *ice, void *ud) {
  node_peer *p = ud;

  p->gathered = 1;
  signal_when_ready(p);
}

static const kith_ice_callbacks ice_cbs = {
    .on_gathered = on_ice_gathered,
    .on_state = on_ice_state,
    .on_recv = on_ice_recv,
    .on_writable = on_ice_writable,
};

static node_peer *peer_new(kith_node *n, const uint8_t id[32], int offerer) {
  node_peer *p = g_new0(node_peer, 1);
  kith_ice_config cfg = {0};

  p->node = n;
  memcpy(p->id, id, KITH_ID_LEN);
  kith_id_to_text(id, p->id_text);
  p->offerer = offerer;
  p->state = PEER_GATHERING;
  p->outbuf = g_byte_array_new();
  p->started_ms = p->last_rx_ms = node_now();
  p->push = g_queue_new();
  p->announce = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  kith_bucket_init(&p->announce_rate, ADDRS_BURST, node_now());
  p->sess = kith_session_new(&n->me, id, offerer);
  cfg.controlling = memcmp(n->me.pk, id, KITH_ID_LEN) < 0;
  cfg.loopback = n->loopback;
  cfg.only_addr = n->bind_addr;
  if (reflex_stun_server(n, id, p->stun_host, &cfg.stun_port))
    cfg.stun_host = p->stun_host; /* --stun, else a relay friend */
  cfg.turn = n->turn;
  cfg.n_turn = n->n_turn;
  if (kith_ice_new(n->ctx, &cfg, &ice_cbs, p, &p->ice) != KITH_OK) {
    peer_free(p);
    return NULL;
  }
  g_hash_table_replace(n->peers, p->id_text, p);
  return p;
}

node_peer *peer_connect(kith_node *n, const uint8_t id[32], const char *host,
                        uint16_t port, const uint8_t *join, size_t join_len) {
  node_peer *p;

  if (g_hash_table_size(n->peers) >= PEER_MAX || !instance_may_link(n))
    return NULL;
  p = peer_new(n, id, 1);
  if (!p)
    return NULL;
  g_strlcpy(p->offer_host, host, sizeof p->offer_host);
  p->offer_port = port;
  if (join) {
    p->join = g_memdup2(join, join_len);
    p->join_len = join_len;
  }
  node_log(n, "connecting to %.8s at %s:%u", p->id_text, host, port);
  p->armed = 1;
  signal_when_ready(p);
  return p; /* sending an offer never closes the peer */
}

/* The offerer re-sends its offer to another address (joins try each
 * address of the invite code in turn; a peer that moved is offered again
 * at its new address). */
void peer_reoffer(node_peer *p, const char *host, uint16_t port) {
  if (p->closed || !p->offerer || p->via[0] || p->state > PEER_OFFERED)
    return;
  g_strlcpy(p->offer_host, host, sizeof p->offer_host);
  p->offer_port = port;
  if (p->state == PEER_OFFERED)
    send_offer(p, host, port);
}

void peer_send_refuse(kith_node *n, const uint8_t to[32], GSocketAddress *dst,
                      size_t request_size, node_peer *relay,
                      const char *reason) {
  kith_pack pk;
  uint8_t *buf;
  size_t len;

  kith_pack_init(&pk);
  kith_pack_array(&pk, 3);
  kith_pack_uint(&pk, SIG_REFUSE);
  kith_pack_cstr(&pk, reason);
  kith_pack_nil(&pk);
  if (kith_pack_take(&pk, &buf, &len) != KITH_OK)
    return;
  if ((relay ? relay_send_signal(relay, to, buf, len)
             : kith_signal_reply(n->sig, to, dst, buf, len, request_size)) !=
      KITH_OK)
    node_log(n, "could not send a refusal");
  g_free(buf);
}

static int same_addr(GSocketAddress *src, const char *host, uint16_t port) {
  GInetSocketAddress *isa;
  char *h;
  int same;

  if (!G_IS_INET_SOCKET_ADDRESS(src))
    return 0;
  isa = G_INET_SOCKET_ADDRESS(src);
  h = g_inet_address_to_string(g_inet_socket_address_get_address(isa));
  same = strcmp(h, host) == 0 && g_inet_socket_address_get_port(isa) == port;
  g_free(h);
  return same;
}

/* Remembers where a peer we accepted reached us from (for reconnects),
 * stamped with the time the peer itself signed. */
static void remember_src(kith_node *n, const kith_signal_msg *m) {
  GInetSocketAddress *isa;
  char *host;

  if (!m->src || !G_IS_INET_SOCKET_ADDRESS(m->src))
    return;
  isa = G_INET_SOCKET_ADDRESS(m->src);
  host = g_inet_address_to_string(g_inet_socket_address_get_address(isa));
  node_remember_addr(n, m->from, host, g_inet_socket_address_get_port(isa),
                     m->ts_ms, 1);
  g_free(host);
}

int peer_is_same_offer(const node_peer *p, const char *ufrag) {
  return !p->offerer && strcmp(p->remote.ufrag, ufrag) == 0;
}

int peer_answers_again(const node_peer *p) {
  return p->state >= PEER_CONNECTING && p->state < PEER_UP;
}

/* An offer: answer it unless our own offer to the same peer wins (the
 * smaller node id's offer wins a crossing). join: the join request, or
 * NULL. */
static void on_offer(kith_node *n, const kith_signal_msg *m,
                     const kith_ice_params *params, const uint8_t *join,
                     size_t join_len, const node_instance *inst,
                     node_peer *relay) {
  node_peer *p = peer_find(n, m->from);
  const char *refusal = NULL;
  char text[KITH_ID_TEXT_LEN + 1];

  kith_id_to_text(m->from, text);
  if (p && peer_is_same_offer(p, params->ufrag)) {
    /* The same offer again: our answer was lost; answer once more. */
    if (peer_answers_again(p)) {
      if (m->src) {
        g_clear_object(&p->reply_to);
        p->reply_to = g_object_ref(m->src);
        p->offer_size = m->size;
      }
      if (resend_answer(p) != KITH_OK)
        node_log(n, "could not answer %.8s again", p->id_text);
    }
    return;
  }
  /* Crossing offers: the smaller node id's offer wins, unless ours went to
   * an address the peer no longer has (its offer comes from elsewhere:
   * it restarted), in which case ours will never be answered. */
  if (p && p->offerer && p->state < PEER_HANDSHAKE &&
      memcmp(n->me.pk, m->from, KITH_ID_LEN) < 0 &&
      !(m->src && !p->via[0] &&
        !same_addr(m->src, p->offer_host, p->offer_port)))
    return;
  if (instance_refuses_offer(n, p, m, inst, relay))
    return;
  if (join)
    refusal = join_on_offer(n, m->from, join, join_len);
  else if (!node_shares_group(n, m->from) && !relay_is_friend(n, m->from))
    refusal = "no group in common and not a friend";
  if (refusal) {
    node_log(n, "refused an offer from %.8s: %s", text, refusal);
    if (join)
      peer_send_refuse(n, m->from, m->src, m->size, relay, refusal);
    return;
  }
  if (p)
    peer_close(p, p->has_inst && memcmp(&p->inst, inst, sizeof *inst) != 0
                      ? "a newer instance of the peer reconnected"
                      : "the peer reconnected");
  p = peer_new(n, m->from, 0);
  if (!p)
    return;
  p->remote = *params;
  p->inst = *inst;
  p->has_inst = 1;
  if (relay) {
    g_strlcpy(p->via, relay->id_text, sizeof p->via);
  } else {
    p->reply_to = g_object_ref(m->src);
    p->offer_size = m->size;
    remember_src(n, m);
  }
  node_log(n, "answering %.8s", p->id_text);
  p->armed = 1;
  signal_when_ready(p);
}

static void on_answer(kith_node *n, const kith_signal_msg *m,
                      const kith_ice_params *params,
                      const node_instance *inst) {
  node_peer *p = peer_find(n, m->from);

  if (!p || !p->offerer || p->state != PEER_OFFERED)
    return;
  p->inst = *inst;
  p->has_inst = 1;
  if (kith_ice_set_remote(p->ice, params) != KITH_OK) {
    peer_close(p, "bad ICE parameters in the answer");
    return;
  }
  remember_src(n, m);
  p->state = PEER_CONNECTING;
}

void peer_on_signal(kith_node *n, const kith_signal_msg *m, node_peer *relay) {
  kith_wire_signal s;
  node_peer *p;

  if (kith_wire_signal_decode(m->payload, m->len, &s) != KITH_OK)
    return;
  switch (s.kind) {
  case SIG_REFUSE:
    join_on_refuse(n, m->from, s.reason);
    break;
  case SIG_ELSEWHERE:
    /* Only from a node we are offering a link to. */
    p = peer_find(n, m->from);
    if (!p || !p->offerer || p->state > PEER_CONNECTING)
      break;
    peer_close(p, "it links to a newer instance of this node");
    instance_on_elsewhere(n, m->from, s.since_ms);
    break;
  default: {
    node_instance inst = {.since_ms = s.since_ms};
    memcpy(inst.nonce, s.nonce, sizeof inst.nonce);
    if (s.kind == SIG_OFFER)
      on_offer(n, m, &s.params, s.has_join ? s.join : NULL, s.join_len, &inst,
               relay);
    else
      on_answer(n, m, &s.params, &inst);
  }
  }
}

/* ICE found no path (or is too slow): carry the session through the relay
 * friend that carried the signalling. The two ends keep their own
 * end-to-end session; the relay sees only its records. */
static int fall_back_to_relay(node_peer *p) {
  node_peer *r = relay_of(p);
  if (p->relayed || p->state >= PEER_HANDSHAKE || !r ||
      !relay_is_friend(p->node, r->id))
    return 0; /* only a relay friend carries session bytes */
  node_log(p->node, "no direct path to %.8s: relaying through %.8s", p->id_text,
           p->via);
  kith_ice_free(p->ice);
  p->ice = NULL;
  p->relayed = 1;
  p->state = PEER_HANDSHAKE;
  g_byte_array_set_size(p->outbuf, 0);
  if (kith_session_start(p->sess, p->outbuf) != KITH_OK) {
    peer_close(p, "session start failed");
    return 1;
  }
  flush(p);
  return 1;
}

void peer_on_relayed_data(kith_node *n, const uint8_t from[32],
                          const uint8_t *bytes, size_t len, node_peer *relay) {
  char text[KITH_ID_TEXT_LEN + 1];
  node_peer *p;

  kith_id_to_text(from, text);
  p = g_hash_table_lookup(n->peers, text);
  if (!p || strcmp(p->via, relay->id_text) != 0)
    return; /* not a link we signalled through this relay */
  if (!p->relayed && !fall_back_to_relay(p))
    return;
  if (!p->closed)
    peer_feed(p, bytes, len);
}

node_peer *peer_connect_via(kith_node *n, const uint8_t id[32],
                            node_peer *relay, const uint8_t *join,
                            size_t join_len) {
  node_peer *p;

  if (g_hash_table_size(n->peers) >= PEER_MAX || !instance_may_link(n))
    return NULL;
  p = peer_new(n, id, 1);
  if (!p)
    return NULL;
  g_strlcpy(p->via, relay->id_text, sizeof p->via);
  if (join) {
    p->join = g_memdup2(join, join_len);
    p->join_len = join_len;
  }
  node_log(n, "connecting to %.8s through the relay %.8s", p->id_text,
           relay->id_text);
  p->armed = 1;
  signal_when_ready(p);
  return p;
}

void peer_send_uint_frame(node_peer *p, int type, uint64_t v) {
  kith_pack pk;
  uint8_t *buf;
  size_t len;

  kith_pack_init(&pk);
  kith_pack_array(&pk, 2);
  kith_pack_uint(&pk, (uint64_t)type);
  kith_pack_uint(&pk, v);
  if (kith_pack_take(&pk, &buf, &len) != KITH_OK)
    return;
  peer_send_frame(p, buf, len);
  g_free(buf);
}

static void send_ping(node_peer *p, uint64_t now, int kind, uint64_t t) {
  if (kind == FRAME_PING)
    p->ping_sent_ms = now;
  peer_send_uint_frame(p, kind, t);
}

void peer_on_ping(node_peer *p, int kind, uint64_t t) {
  uint64_t now = node_now();

  if (kind == FRAME_PING)
    send_ping(p, now, FRAME_PONG, t);
  else if (t <= now && t == p->ping_sent_ms)
    p->rtt_ms = (double)(now - t);
}

void peer_tick(node_peer *p, uint64_t now) {
  if (p->closed)
    return;
  if (p->state != PEER_UP) {
    if (now - p->started_ms > RELAY_FALLBACK_MS && fall_back_to_relay(p))
      return;
    if (now - p->started_ms > PEER_CONNECT_TIMEOUT_MS) {
      if (p->offerer && !p->via[0])
        node_note_direct_failure(p->node, p->id);
      peer_close(p, "timed out");
    }
    return;
  }
  if (now - p->last_rx_ms > PEER_IDLE_TIMEOUT_MS) {
    peer_close(p, "no heartbeat");
    return;
  }
  if (now - p->ping_sent_ms >= PEER_PING_MS)
    send_ping(p, now, FRAME_PING, now);
  frames_flush_addrs(p, now);
}
