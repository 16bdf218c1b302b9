/* kith: links to peers: offer/answer over the signal port, one ICE agent
 * and one secure session per peer, heartbeat. */
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sodium.h>
#include <string.h>

#include "../core/codec.h"
#include "node_int.h"

/* An opened frame waiting in p->rx_frames, and what the worker checked of
 * it (all zero: nothing). */
typedef struct rx_frame {
  GBytes *b;
  kith_crypt_mark mark;
} rx_frame;

static void rx_frame_free(gpointer data) {
  rx_frame *r = data;
  g_bytes_unref(r->b);
  g_free(r);
}

void peer_free(node_peer *p) {
  carrier_free(p);
  kith_crypt_free(p->crypt);
  if (p->sess)
    kith_session_free(p->sess);
  if (p->reply_to)
    g_object_unref(p->reply_to);
  if (p->pump_soon)
    g_source_remove(p->pump_soon);
  if (p->rx_source)
    g_source_remove(p->rx_source);
  if (p->rx_frames)
    g_queue_free_full(p->rx_frames, rx_frame_free);
  if (p->push)
    g_queue_free_full(p->push, gossip_push_free);
  if (p->queued)
    g_hash_table_unref(p->queued);
  if (p->announce)
    g_hash_table_unref(p->announce);
  g_free(p->join);
  g_free(p);
}

/* ---- the reconnect rule (protocol.md 9.4) ---- */

typedef struct peer_backoff {
  unsigned failures;
  uint64_t next_ms;
} peer_backoff;

#define BACKOFF_TRACKED (PEER_MAX * 4) /* node ids with a wait */

static peer_backoff *backoff_get(kith_node *n, const uint8_t id[32],
                                 int create) {
  char text[KITH_ID_TEXT_LEN + 1];
  peer_backoff *b;

  if (!n->backoff)
    n->backoff = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  kith_id_to_text(id, text);
  b = g_hash_table_lookup(n->backoff, text);
  if (!b && create && g_hash_table_size(n->backoff) < BACKOFF_TRACKED) {
    b = g_new0(peer_backoff, 1);
    g_hash_table_replace(n->backoff, g_strdup(text), b);
  }
  return b;
}

int peer_may_connect(kith_node *n, const uint8_t id[32]) {
  peer_backoff *b = backoff_get(n, id, 0);
  return !b || node_now() >= b->next_ms;
}

static void backoff_note_failure(kith_node *n, const uint8_t id[32]) {
  peer_backoff *b = backoff_get(n, id, 1);

  if (!b)
    return;
  b->failures++;
  b->next_ms = node_now() + kith_backoff_ms(b->failures, randombytes_random());
}

void peer_backoff_reset(kith_node *n, const uint8_t id[32]) {
  char text[KITH_ID_TEXT_LEN + 1];

  if (!n->backoff)
    return;
  kith_id_to_text(id, text);
  g_hash_table_remove(n->backoff, text);
}

/* An order-independent digest of the up interfaces' addresses. */
static uint32_t local_addrs_hash(void) {
  struct ifaddrs *ifs = NULL;
  uint32_t sum = 1;

  if (getifaddrs(&ifs) != 0)
    return 0;
  for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
    const void *a;
    size_t len;
    if (!i->ifa_addr || !(i->ifa_flags & IFF_UP) ||
        (i->ifa_flags & IFF_LOOPBACK))
      continue;
    if (i->ifa_addr->sa_family == AF_INET) {
      a = &((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr;
      len = 4;
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      a = &((const struct sockaddr_in6 *)(const void *)i->ifa_addr)->sin6_addr;
      len = 16;
    } else {
      continue;
    }
    uint32_t h = 2166136261u; /* FNV-1a of one address */
    for (size_t k = 0; k < len; k++)
      h = (h ^ ((const uint8_t *)a)[k]) * 16777619u;
    sum += h;
  }
  freeifaddrs(ifs);
  return sum;
}

void peer_watch_addrs(kith_node *n, uint64_t now) {
  uint32_t h = local_addrs_hash();
  GHashTableIter it;
  gpointer v;

  if (h == 0 || h == n->local_addrs_hash)
    return;
  if (n->local_addrs_hash != 0) {
    node_log(n, "local addresses changed: every link is tried again now");
    if (n->backoff)
      g_hash_table_remove_all(n->backoff);
    g_hash_table_iter_init(&it, n->peers);
    while (g_hash_table_iter_next(&it, NULL, &v))
      carrier_probe_soon(v);
    reflex_refresh(n);
  }
  n->local_addrs_hash = h;
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

  if (carrier_seal(p, bye, sizeof bye) == KITH_OK)
    carrier_send_last(p);
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
  if (!was_up && p->offerer && !p->join)
    backoff_note_failure(n, p->id);
  if (g_hash_table_lookup(n->peers, p->id_text) == p)
    g_hash_table_remove(n->peers, p->id_text);
  /* No ICE or crypto callback may name the peer from here on. */
  carrier_release(p);
  kith_crypt_free(p->crypt);
  p->crypt = NULL;
  node_retire_peer(n, p);
  if (was_up)
    gossip_link_down(n, p);
}

/* Records sealed during one round of the main loop go out together at
 * its end: what one round sends a neighbour (a payload, an IHAVE, a PONG)
 * shares one send, so one pseudo-TCP segment, one packet and one wake-up
 * of the neighbour, instead of one each. The idle source has the I/O
 * sources' priority, so a busy loop cannot starve it. */
static gboolean on_flush(gpointer data) {
  kith_node *n = data;
  /* A snapshot: peers closed meanwhile stay valid (retired) until reaped. */
  GList *peers = g_hash_table_get_values(n->peers);

  n->flush_source = 0;
  for (GList *l = peers; l; l = l->next) {
    node_peer *p = l->data;
    if (p->flush_due && !p->closed) {
      p->flush_due = 0;
      carrier_flush(p);
    }
  }
  g_list_free(peers);
  return G_SOURCE_REMOVE;
}

static void flush_later(node_peer *p) {
  kith_node *n = p->node;
  GSource *s;

  if (n->stopping) {
    carrier_flush(p);
    return;
  }
  p->flush_due = 1;
  if (n->flush_source)
    return;
  s = g_idle_source_new();
  g_source_set_priority(s, G_PRIORITY_DEFAULT);
  g_source_set_callback(s, on_flush, n, NULL);
  n->flush_source = g_source_attach(s, n->ctx);
  g_source_unref(s);
}

void peer_send_frame(node_peer *p, const uint8_t *frame, size_t len) {
  if (!peer_is_up(p))
    return;
  if (peer_unsent(p) > PEER_OUTBUF_MAX) {
    peer_close(p, "peer does not keep up (send buffer full)");
    return;
  }
  if (carrier_seal(p, frame, len) != KITH_OK) {
    peer_close(p, "cannot seal frame");
    return;
  }
  flush_later(p);
}

static gboolean on_rx_slice(gpointer data);

/* Handles the link's queued frames, in order, for about FRAMES_SLICE_US
 * (at least one): a history of thousands of events arrives in batches of
 * hundreds of frames, and handled at once they kept the main loop from
 * the link's reads for tens of ms; the sender then stopped on a full
 * window, and the link idled while the frames were ingested, and the
 * ingest while the next ones came. The rest waits for the next round of
 * the main loop (an idle source with the I/O sources' priority), after
 * the reads that are due. Any handler may close the link: p stays valid
 * (life cycle above), so p->closed says. */
static void run_frames(node_peer *p) {
  kith_node *n = p->node;
  int64_t t0 = g_get_monotonic_time(), t = t0;
  rx_frame *r;

  if (p->in_frames)
    return; /* the running slice goes on with them */
  p->in_frames = 1;
  while (!p->closed && t - t0 < FRAMES_SLICE_US &&
         (r = g_queue_pop_head(p->rx_frames)) != NULL) {
    gsize flen;
    const uint8_t *f = g_bytes_get_data(r->b, &flen);
    /* what the worker verified of this frame, while it is handled */
    n->checked = r->mark.ok ? f : NULL;
    n->checked_mark = r->mark;
    frames_on_frame(p, f, flen);
    n->checked = NULL;
    rx_frame_free(r);
    t = g_get_monotonic_time();
  }
  p->in_frames = 0;
  n->frames_us += (uint64_t)(t - t0);
  if (p->closed)
    return;
  if (g_queue_is_empty(p->rx_frames) && p->rx_err != KITH_OK) {
    n->dropped_frames++;
    peer_close(p, kith_strerror(p->rx_err));
    return;
  }
  if (!g_queue_is_empty(p->rx_frames) && !p->rx_source) {
    GSource *s = g_idle_source_new();
    g_source_set_priority(s, G_PRIORITY_DEFAULT);
    g_source_set_callback(s, on_rx_slice, p, NULL);
    p->rx_source = g_source_attach(s, n->ctx);
    g_source_unref(s);
  }
  carrier_flush(p);
  carrier_after_frames(p);
}

static gboolean on_rx_slice(gpointer data) {
  node_peer *p = data;

  p->rx_source = 0;
  run_frames(p);
  return G_SOURCE_REMOVE;
}

/* Frames of the session, in order: opened at once (peer_feed) or on the
 * worker (on_crypt_frames, with what it checked: marks); queued behind
 * those not handled yet. */
static void take_frames(node_peer *p, GPtrArray *frames,
                        const kith_crypt_mark *marks, kith_err err) {
  kith_node *n = p->node;

  p->last_rx_ms = node_now();
  if (p->state != PEER_UP && kith_session_is_established(p->sess)) {
    p->state = PEER_UP;
    peer_backoff_reset(n, p->id);
    node_log(n, "link to %.8s up (%s, %s)", p->id_text, peer_path(p),
             peer_addr(p));
    frames_link_up(p);
    if (!p->closed)
      gossip_link_up(n, p);
    if (!p->closed)
      join_on_link_up(n, p);
    if (!p->closed)
      carrier_link_up(p);
  }
  if (p->closed)
    return;
  for (guint i = 0; i < frames->len; i++) {
    rx_frame *r = g_new0(rx_frame, 1);
    r->b = g_bytes_ref(frames->pdata[i]);
    if (marks)
      r->mark = marks[i];
    g_queue_push_tail(p->rx_frames, r);
  }
  if (err != KITH_OK && p->rx_err == KITH_OK)
    p->rx_err = err;
  run_frames(p);
}

/* Bytes of the session, from the carrier it reads. */
void peer_feed(node_peer *p, const uint8_t *buf, size_t len) {
  GPtrArray *frames =
      g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  kith_err err = kith_crypt_recv(p->crypt, buf, len,
                                 kith_outq_tail(&p->car[p->tx].out), frames);

  take_frames(p, frames, NULL, err);
  g_ptr_array_unref(frames);
}

static void on_crypt_frames(void *ud, GPtrArray *frames,
                            const kith_crypt_mark *marks, kith_err err) {
  take_frames(ud, frames, marks, err);
}

static void *on_check_begin(void *ud) {
  return gossip_check_begin(((node_peer *)ud)->node);
}

/* Records the worker sealed: they go where the session writes now. */
static void on_crypt_out(void *ud, GByteArray *records) {
  node_peer *p = ud;

  kith_outq_push(&p->car[p->tx].out, records);
  if (!p->closed)
    carrier_flush(p);
}

static const kith_crypt_callbacks crypt_cbs = {
    .on_out = on_crypt_out,
    .on_frames = on_crypt_frames,
    .check_begin = on_check_begin,
    .check = gossip_check_frame,
    .check_free = gossip_check_free,
};

int peer_new_session(node_peer *p) {
  kith_crypt_free(p->crypt);
  p->crypt = NULL;
  /* what the old session sent and was not handled yet goes with it */
  while (!g_queue_is_empty(p->rx_frames))
    rx_frame_free(g_queue_pop_head(p->rx_frames));
  p->rx_err = KITH_OK;
  if (p->sess)
    kith_session_free(p->sess);
  p->sess = kith_session_new(&p->node->me, p->id, p->offerer);
  if (p->sess)
    p->crypt = kith_crypt_new(p->node->ctx, p->sess, &crypt_cbs, p);
  return p->sess != NULL;
}

/* array, kind, bin headers, since and instance nonce of a payload */
#define SIGNAL_FIELDS_MAX 48

/* The ICE agent of the link's offer and answer (attempt 1), or NULL. */
static kith_ice *offer_ice(node_peer *p) {
  for (int i = CAR_RELAY + 1; i < PEER_CARRIERS; i++)
    if (p->car[i].ice && p->car[i].attempt == 1)
      return p->car[i].ice;
  return NULL;
}

/* Packs [kind, ice params bin, join bin|nil, since uint, nonce bin16]. */
static kith_err pack_signal(int kind, node_peer *p, uint8_t **out,
                            size_t *len) {
  kith_ice_params params;
  uint8_t *pbuf = NULL;
  size_t plen = 0;
  kith_pack pk;
  kith_ice *ice = offer_ice(p);
  kith_err err = ice ? kith_ice_local_params(ice, &params) : KITH_ERR_STATE;

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

/* Every way in at once (protocol.md 9.4): the offer goes to each signal
 * address of the peer we know and through the relay, all with the same
 * ICE parameters; whichever answer comes first counts. dest: only there
 * (an address added later), or NULL for all. */
static void send_offer(node_peer *p, const kith_addr *dest, node_peer *relay) {
  uint8_t *buf;
  size_t len;
  kith_err err = pack_signal(SIG_OFFER, p, &buf, &len);

  if (err != KITH_OK) {
    node_log(p->node, "offer to %.8s failed: %s", p->id_text,
             kith_strerror(err));
    return;
  }
  for (size_t i = 0; i < p->n_dests && !relay; i++) {
    const kith_addr *a = &p->dests[i];
    if (dest && a != dest)
      continue;
    err = kith_signal_send(p->node->sig, p->id, a->host, a->port, buf, len,
                           OFFER_MIN_SIZE);
    if (err != KITH_OK)
      node_log(p->node, "offer to %.8s at %s:%u failed: %s", p->id_text,
               a->host, a->port, kith_strerror(err));
  }
  if (!dest && (relay || (relay = carrier_relay_peer(p))) &&
      relay_send_signal(relay, p->id, buf, len) != KITH_OK)
    node_log(p->node, "offer to %.8s through %.8s failed", p->id_text,
             relay->id_text);
  g_free(buf);
}

/* The answer goes back the ways the offer came: to the datagram's source
 * and through the relay. */
static kith_err resend_answer(node_peer *p) {
  uint8_t *buf;
  size_t len;
  kith_err err = pack_signal(SIG_ANSWER, p, &buf, &len);
  node_peer *r = carrier_relay_peer(p);
  int sent = 0;

  if (err != KITH_OK)
    return err;
  if (r && relay_send_signal(r, p->id, buf, len) == KITH_OK)
    sent = 1;
  if (p->reply_to && kith_signal_reply(p->node->sig, p->id, p->reply_to, buf,
                                       len, p->offer_size) == KITH_OK)
    sent = 1;
  g_free(buf);
  return sent ? KITH_OK : KITH_ERR_STATE;
}

static void send_answer(node_peer *p) {
  kith_err err = resend_answer(p);
  kith_ice *ice = offer_ice(p);

  if (err != KITH_OK) {
    peer_close(p, "cannot answer the offer");
    return;
  }
  err = ice ? kith_ice_set_remote(ice, &p->remote) : KITH_ERR_STATE;
  if (err != KITH_OK) {
    peer_close(p, "bad ICE parameters in the offer");
    return;
  }
  p->state = PEER_CONNECTING;
}

static int offer_gathered(node_peer *p) {
  for (int i = CAR_RELAY + 1; i < PEER_CARRIERS; i++)
    if (p->car[i].ice && p->car[i].attempt == 1)
      return p->car[i].gathered;
  return 0;
}

/* Sends our offer or answer once both gathering and our own set-up are
 * done (gathering may finish inside kith_ice_new). */
void peer_signal_when_ready(node_peer *p) {
  if (!offer_gathered(p) || !p->armed || p->state != PEER_GATHERING ||
      p->closed)
    return;
  if (p->offerer) {
    send_offer(p, NULL, NULL);
    p->state = PEER_OFFERED;
  } else {
    send_answer(p);
  }
}

static node_peer *peer_new(kith_node *n, const uint8_t id[32], int offerer) {
  node_peer *p = g_new0(node_peer, 1);

  p->node = n;
  memcpy(p->id, id, KITH_ID_LEN);
  kith_id_to_text(id, p->id_text);
  p->offerer = offerer;
  p->state = PEER_GATHERING;
  carrier_init(p);
  p->started_ms = p->last_rx_ms = node_now();
  p->push = g_queue_new();
  p->rx_frames = g_queue_new();
  p->queued = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  p->announce = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  kith_bucket_init(&p->announce_rate, ADDRS_BURST, node_now());
  kith_bucket_init(&p->relay_pace, RELAY_PACE_BURST, node_now());
  p->attempts = 1;
  if (!peer_new_session(p) || carrier_ice_new(p, CAR_RELAY + 1, 1) != KITH_OK) {
    peer_free(p);
    return NULL;
  }
  g_hash_table_replace(n->peers, p->id_text, p);
  return p;
}

/* Adds host:port to the offer's destinations (once); returns its entry. */
static const kith_addr *add_dest(node_peer *p, const char *host,
                                 uint16_t port) {
  for (size_t i = 0; i < p->n_dests; i++)
    if (strcmp(p->dests[i].host, host) == 0 && p->dests[i].port == port)
      return &p->dests[i];
  if (p->n_dests == PEER_DESTS)
    p->n_dests--; /* the newest replaces the last */
  g_strlcpy(p->dests[p->n_dests].host, host, sizeof p->dests[0].host);
  p->dests[p->n_dests].port = port;
  return &p->dests[p->n_dests++];
}

/* The one way an offer is made: to host:port (or NULL: the remembered
 * address, if any) and through relay (or NULL: a linked relay friend or
 * common neighbour, if any), all at once. */
static node_peer *connect_all(kith_node *n, const uint8_t id[32],
                              const char *host, uint16_t port, node_peer *relay,
                              const uint8_t *join, size_t join_len) {
  char text[KITH_ID_TEXT_LEN + 1];
  kith_stored_peer *sp;
  node_peer *p;

  if (g_hash_table_size(n->peers) >= PEER_MAX || !instance_may_link(n) ||
      (!join && !peer_may_connect(n, id)))
    return NULL;
  kith_id_to_text(id, text);
  sp = g_hash_table_lookup(n->addrs, text);
  if (!host && sp && sp->port) {
    host = sp->host;
    port = sp->port;
  }
  if (!relay)
    relay = relay_pick(n, id);
  if (!host && !relay)
    return NULL;
  p = peer_new(n, id, 1);
  if (!p)
    return NULL;
  if (host)
    add_dest(p, host, port);
  if (relay)
    g_strlcpy(p->via, relay->id_text, sizeof p->via);
  if (join) {
    p->join = g_memdup2(join, join_len);
    p->join_len = join_len;
  }
  node_log(n, "connecting to %.8s%s%s%s%.8s", p->id_text, host ? " at " : "",
           host ? host : "",
           relay ? (host ? " and through " : " through ") : "",
           relay ? relay->id_text : "");
  p->armed = 1;
  peer_signal_when_ready(p);
  return p; /* sending an offer never closes the peer */
}

node_peer *peer_connect(kith_node *n, const uint8_t id[32], const char *host,
                        uint16_t port, const uint8_t *join, size_t join_len) {
  return connect_all(n, id, host, port, NULL, join, join_len);
}

node_peer *peer_connect_via(kith_node *n, const uint8_t id[32],
                            node_peer *relay, const uint8_t *join,
                            size_t join_len) {
  return connect_all(n, id, NULL, 0, relay, join, join_len);
}

/* The offerer sends its offer to another address too (joins send it to
 * every address of the invite code; a peer that moved is offered again at
 * its new address). */
void peer_reoffer(node_peer *p, const char *host, uint16_t port) {
  const kith_addr *d;

  if (p->closed || !p->offerer || p->state > PEER_OFFERED)
    return;
  d = add_dest(p, host, port);
  if (p->state == PEER_OFFERED)
    send_offer(p, d, NULL);
}

void peer_offer_via(node_peer *p, node_peer *relay) {
  if (p->closed || !p->offerer || p->state > PEER_OFFERED ||
      strcmp(p->via, relay->id_text) == 0)
    return;
  if (!p->via[0] || !carrier_relay_peer(p))
    g_strlcpy(p->via, relay->id_text, sizeof p->via);
  if (p->state == PEER_OFFERED)
    send_offer(p, NULL, relay);
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

/* Did our offer go to src (one of its signal addresses)? */
static int offered_to(const node_peer *p, GSocketAddress *src) {
  GInetSocketAddress *isa;
  char *h;
  int same = 0;

  if (!G_IS_INET_SOCKET_ADDRESS(src))
    return 0;
  isa = G_INET_SOCKET_ADDRESS(src);
  h = g_inet_address_to_string(g_inet_socket_address_get_address(isa));
  for (size_t i = 0; i < p->n_dests && !same; i++)
    same = strcmp(h, p->dests[i].host) == 0 &&
           g_inet_socket_address_get_port(isa) == p->dests[i].port;
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
    /* The same offer by another way (the offerer sends it every way at
     * once), or again (our answer was lost): the answer goes this way too,
     * and the relay friend may carry the link. Once the link is up it is
     * ignored (protocol.md 8.4). */
    if (p->state >= PEER_UP)
      return;
    if (relay && !p->via[0])
      g_strlcpy(p->via, relay->id_text, sizeof p->via);
    if (m->src) {
      g_clear_object(&p->reply_to);
      p->reply_to = g_object_ref(m->src);
      p->offer_size = m->size;
    }
    if (p->state == PEER_CONNECTING)
      carrier_relay_answered(p);
    if (peer_answers_again(p)) {
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
      !(m->src && !offered_to(p, m->src)))
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
  peer_signal_when_ready(p);
  if (!p->closed && p->state == PEER_CONNECTING)
    carrier_relay_answered(p);
}

static void on_answer(kith_node *n, const kith_signal_msg *m,
                      const kith_ice_params *params,
                      const node_instance *inst) {
  node_peer *p = peer_find(n, m->from);

  if (!p || !p->offerer || p->state != PEER_OFFERED)
    return;
  p->inst = *inst;
  p->has_inst = 1;
  if (!offer_ice(p) || kith_ice_set_remote(offer_ice(p), params) != KITH_OK) {
    peer_close(p, "bad ICE parameters in the answer");
    return;
  }
  remember_src(n, m);
  p->state = PEER_CONNECTING;
  /* The relay friend the offer went through carries the session at once;
   * ICE goes on and the link moves when a better path is ready. */
  carrier_relay_answered(p);
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
  carrier_tick(p, now);
  if (p->closed)
    return;
  if (p->state != PEER_UP) {
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
