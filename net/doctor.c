/* kith: `kith doctor`, the node's connectivity report (RPC "doctor"),
 * in the spirit of `tailscale netcheck`.
 *
 * One run probes, in parallel and for at most DOCTOR_TIMEOUT_MS: every
 * STUN server and every relay friend with a known address (STUN binding
 * requests from the signal port, reflex.c: reachable, round trip, the
 * public address each sees), and every TURN server (an Allocate with the
 * long-term credential from a socket of its own, released at once). From
 * the answers it judges the NAT mapping (the same public address seen by
 * two servers at different IP addresses: endpoint-independent; different
 * ones: endpoint-dependent; the local address itself: no NAT), whether UDP
 * gets out at all, and what that means for joining and being joined. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sodium.h>
#include <string.h>
#include <stun/stunagent.h>
#include <stun/usages/turn.h>

#include "node_int.h"

#define DOCTOR_TIMEOUT_MS 2500
#define DOCTOR_TICK_MS 100
#define DOCTOR_RUNS_MAX 8
#define TURN_RESEND_MS 500
#define TURN_BUF 1280
#define LOCAL_ADDRS_MAX 16

typedef struct doctor_run doctor_run;

typedef struct target {
  doctor_run *run;
  int is_relay;
  char server[REFLEX_ADDR_LEN];
  char node_id[KITH_ID_TEXT_LEN + 1];
  char name[KITH_NAME_MAX + 1];
  int linked, done;
  char mapped[REFLEX_ADDR_LEN]; /* "" when it did not answer */
  double rtt_ms;
} target;

typedef enum turn_step { TURN_ASK, TURN_AUTH, TURN_DONE } turn_step;

typedef struct turn_check {
  doctor_run *run;
  const kith_turn *t;
  char server[REFLEX_ADDR_LEN];
  GSocket *sock;
  GSource *src;
  GSocketAddress *dst;
  StunAgent agent;
  StunMessage req;
  uint8_t reqbuf[TURN_BUF];
  size_t reqlen;
  uint8_t prev[TURN_BUF]; /* the 401 that carried realm and nonce */
  StunMessage prevmsg;
  turn_step step;
  uint64_t first_ms, sent_ms;
  int reachable;
  const char *credentials; /* "accepted", "rejected" or "unknown" */
  char relayed[REFLEX_ADDR_LEN];
  double rtt_ms;
} turn_check;

struct doctor_run {
  kith_node *n;
  kith_rpc_call *call;
  GPtrArray *targets; /* target* */
  GPtrArray *turns;   /* turn_check* */
  guint timer;
  uint64_t start_ms;
};

/* ---- TURN: Allocate with the long-term credential ---- */

static void turn_free(turn_check *c) {
  if (c->src) {
    g_source_destroy(c->src);
    g_source_unref(c->src);
  }
  if (c->sock)
    g_socket_close(c->sock, NULL);
  g_clear_object(&c->sock);
  g_clear_object(&c->dst);
  sodium_memzero(c->reqbuf, sizeof c->reqbuf);
  g_free(c);
}

static void turn_send(turn_check *c) {
  c->sent_ms = node_now();
  if (g_socket_send_to(c->sock, c->dst, (const gchar *)c->reqbuf, c->reqlen,
                       NULL, NULL) < 0)
    c->step = TURN_DONE; /* no route: unreachable */
}

/* Builds the Allocate (with the previous 401's realm and nonce, if any). */
static void turn_build(turn_check *c, StunMessage *previous) {
  c->reqlen = stun_usage_turn_create(
      &c->agent, &c->req, c->reqbuf, sizeof c->reqbuf, previous,
      STUN_USAGE_TURN_REQUEST_PORT_NORMAL, -1, -1, (uint8_t *)c->t->user,
      strlen(c->t->user), (uint8_t *)c->t->pass, strlen(c->t->pass),
      STUN_USAGE_TURN_COMPATIBILITY_RFC5766);
}

/* Releases the allocation just made: a Refresh with lifetime 0, with the
 * realm and nonce of the challenge. */
static void turn_release(turn_check *c) {
  c->reqlen = stun_usage_turn_create_refresh(
      &c->agent, &c->req, c->reqbuf, sizeof c->reqbuf, &c->prevmsg, 0,
      (uint8_t *)c->t->user, strlen(c->t->user), (uint8_t *)c->t->pass,
      strlen(c->t->pass), STUN_USAGE_TURN_COMPATIBILITY_RFC5766);
  if (c->reqlen > 0)
    (void)g_socket_send_to(c->sock, c->dst, (const gchar *)c->reqbuf, c->reqlen,
                           NULL, NULL);
}

static void turn_success(turn_check *c, const struct sockaddr_storage *relay) {
  char ip[INET6_ADDRSTRLEN] = "";
  const struct sockaddr_in *r4 = (const void *)relay;
  c->credentials = "accepted";
  if (relay->ss_family == AF_INET &&
      inet_ntop(AF_INET, &r4->sin_addr, ip, sizeof ip) != NULL)
    g_snprintf(c->relayed, sizeof c->relayed, "%s:%u", ip, ntohs(r4->sin_port));
  if (c->step == TURN_AUTH)
    turn_release(c);
  c->step = TURN_DONE;
}

static void turn_on_response(turn_check *c, uint8_t *buf, size_t len) {
  StunMessage resp;
  struct sockaddr_storage relay, srflx, alt;
  socklen_t rl = sizeof relay, sl = sizeof srflx, al = sizeof alt;
  uint32_t bw, lifetime;
  int code = -1;
  if (stun_agent_validate(&c->agent, &resp, buf, len, NULL, NULL) !=
      STUN_VALIDATION_SUCCESS)
    return;
  c->reachable = 1;
  c->rtt_ms = (double)(node_now() - c->first_ms);
  StunUsageTurnReturn r =
      stun_usage_turn_process(&resp, &relay, &rl, &srflx, &sl, &alt, &al, &bw,
                              &lifetime, STUN_USAGE_TURN_COMPATIBILITY_RFC5766);
  if (r == STUN_USAGE_TURN_RETURN_RELAY_SUCCESS ||
      r == STUN_USAGE_TURN_RETURN_MAPPED_SUCCESS) {
    turn_success(c, &relay);
    return;
  }
  (void)stun_message_find_error(&resp, &code);
  if ((code == STUN_ERROR_UNAUTHORIZED || code == STUN_ERROR_STALE_NONCE) &&
      c->step == TURN_ASK && len <= sizeof c->prev) {
    /* the expected challenge: answer it with the credential */
    memcpy(c->prev, buf, len);
    c->prevmsg = resp;
    c->prevmsg.buffer = c->prev;
    c->prevmsg.buffer_len = len;
    turn_build(c, &c->prevmsg);
    c->step = c->reqlen > 0 ? TURN_AUTH : TURN_DONE;
    if (c->step == TURN_AUTH)
      turn_send(c);
    return;
  }
  c->credentials = code == STUN_ERROR_UNAUTHORIZED ? "rejected" : "unknown";
  c->step = TURN_DONE;
}

static gboolean turn_on_readable(GSocket *sock, GIOCondition cond,
                                 gpointer data) {
  turn_check *c = data;
  uint8_t buf[TURN_BUF];
  for (int i = 0; i < 8 && c->step != TURN_DONE; i++) {
    gssize n = g_socket_receive(sock, (gchar *)buf, sizeof buf, NULL, NULL);
    if (n <= 0)
      break;
    turn_on_response(c, buf, (size_t)n);
  }
  return G_SOURCE_CONTINUE;
}

static turn_check *turn_start(doctor_run *run, const kith_turn *t) {
  turn_check *c = g_new0(turn_check, 1);
  GInetAddress *ia = g_inet_address_new_from_string(t->host);
  c->run = run;
  c->t = t;
  c->credentials = "unknown";
  c->first_ms = node_now();
  g_snprintf(c->server, sizeof c->server, "%s:%u", t->host, t->port);
  if (ia == NULL)
    return c; /* parsed at start-up: cannot happen */
  GSocketFamily fam = g_inet_address_get_family(ia);
  c->dst = g_inet_socket_address_new(ia, t->port);
  g_object_unref(ia);
  c->sock =
      g_socket_new(fam, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_UDP, NULL);
  if (c->sock == NULL) {
    c->step = TURN_DONE;
    return c;
  }
  g_socket_set_blocking(c->sock, FALSE);
  c->src = g_socket_create_source(c->sock, G_IO_IN, NULL);
  g_source_set_callback(c->src, G_SOURCE_FUNC(turn_on_readable), c, NULL);
  g_source_attach(c->src, run->n->ctx);
  stun_agent_init(&c->agent, STUN_ALL_KNOWN_ATTRIBUTES,
                  STUN_COMPATIBILITY_RFC5389,
                  STUN_AGENT_USAGE_LONG_TERM_CREDENTIALS);
  turn_build(c, NULL);
  if (c->reqlen == 0)
    c->step = TURN_DONE;
  else
    turn_send(c);
  return c;
}

/* ---- probes of STUN servers and relay friends ---- */

static void on_probe(void *ud, const char *server, const char *mapped,
                     double rtt_ms) {
  target *t = ud;
  t->done = 1;
  if (mapped != NULL) {
    g_strlcpy(t->mapped, mapped, sizeof t->mapped);
    t->rtt_ms = rtt_ms;
  }
}

static void add_target(doctor_run *run, int is_relay, const char *host,
                       uint16_t port) {
  target *t = g_new0(target, 1);
  t->run = run;
  t->is_relay = is_relay;
  g_snprintf(t->server, sizeof t->server, "%s:%u", host, port);
  g_ptr_array_add(run->targets, t);
  if (reflex_probe(run->n, host, port, on_probe, t) != KITH_OK)
    t->done = 1;
}

static void add_relay_targets(doctor_run *run) {
  kith_node *n = run->n;
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init(&it, n->friends);
  while (g_hash_table_iter_next(&it, &k, &v)) {
    const kith_friend *f = v;
    const node_peer *p = g_hash_table_lookup(n->peers, k);
    if (!f->port)
      continue;
    add_target(run, 1, f->host, f->port);
    target *t = g_ptr_array_index(run->targets, run->targets->len - 1);
    g_strlcpy(t->node_id, k, sizeof t->node_id);
    g_strlcpy(t->name, f->name ? f->name : "", sizeof t->name);
    t->linked = p != NULL && p->state == PEER_UP;
  }
}

/* ---- the report ---- */

static size_t local_addrs(kith_node *n, char out[][INET_ADDRSTRLEN],
                          size_t max) {
  struct ifaddrs *ifs = NULL;
  size_t k = 0;
  if (n->bind_addr != NULL && n->bind_addr[0]) {
    g_strlcpy(out[0], n->bind_addr, INET_ADDRSTRLEN);
    return 1;
  }
  if (getifaddrs(&ifs) != 0)
    return 0;
  for (struct ifaddrs *i = ifs; i != NULL && k < max; i = i->ifa_next)
    if (i->ifa_addr != NULL && i->ifa_addr->sa_family == AF_INET &&
        (i->ifa_flags & IFF_UP) && !(i->ifa_flags & IFF_LOOPBACK) &&
        inet_ntop(AF_INET,
                  &((const struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr,
                  out[k], INET_ADDRSTRLEN) != NULL)
      k++;
  freeifaddrs(ifs);
  return k;
}

static int is_local(const char *mapped, char local[][INET_ADDRSTRLEN],
                    size_t n_local) {
  for (size_t i = 0; i < n_local; i++) {
    size_t len = strlen(local[i]);
    if (strncmp(mapped, local[i], len) == 0 && mapped[len] == ':')
      return 1;
  }
  return 0;
}

static int same_host(const char *a, const char *b) {
  const char *ca = strrchr(a, ':'), *cb = strrchr(b, ':');
  return ca && cb && ca - a == cb - b && strncmp(a, b, (size_t)(ca - a)) == 0;
}

/* From the answers: "none", "endpoint-independent", "endpoint-dependent"
 * or "unknown" (fewer than two servers at different addresses answered). */
static const char *nat_mapping(doctor_run *run, char local[][INET_ADDRSTRLEN],
                               size_t n_local) {
  const target *first = NULL;
  int two = 0;
  for (guint i = 0; i < run->targets->len; i++) {
    const target *t = run->targets->pdata[i];
    if (!t->mapped[0])
      continue;
    if (is_local(t->mapped, local, n_local))
      return "none";
    if (first == NULL) {
      first = t;
    } else if (!same_host(first->server, t->server)) {
      if (strcmp(first->mapped, t->mapped) != 0)
        return "endpoint-dependent";
      two = 1;
    }
  }
  return two ? "endpoint-independent" : "unknown";
}

static int count_answers(doctor_run *run, int *asked) {
  int answered = 0;
  *asked = (int)run->targets->len + (int)run->turns->len;
  for (guint i = 0; i < run->targets->len; i++)
    answered += ((target *)run->targets->pdata[i])->mapped[0] != 0;
  for (guint i = 0; i < run->turns->len; i++)
    answered += ((turn_check *)run->turns->pdata[i])->reachable;
  return answered;
}

static int turn_accepted(doctor_run *run) {
  for (guint i = 0; i < run->turns->len; i++)
    if (strcmp(((turn_check *)run->turns->pdata[i])->credentials, "accepted") ==
        0)
      return 1;
  return 0;
}

static int relay_linked(doctor_run *run) {
  for (guint i = 0; i < run->targets->len; i++) {
    const target *t = run->targets->pdata[i];
    if (t->is_relay && (t->linked || t->mapped[0]))
      return 1;
  }
  return 0;
}

static void kv(kith_pack *pk, const char *k, const char *v) {
  kith_pack_cstr(pk, k);
  kith_pack_cstr(pk, v);
}

static void kv_bool(kith_pack *pk, const char *k, int v) {
  kith_pack_cstr(pk, k);
  kith_pack_bool(pk, v);
}

static void kv_rtt(kith_pack *pk, const target *t) {
  kith_pack_cstr(pk, "rtt_ms");
  if (t->mapped[0])
    kith_pack_uint(pk, (uint64_t)(t->rtt_ms + 0.5));
  else
    kith_pack_nil(pk);
}

static void pack_targets(kith_pack *pk, doctor_run *run, int relays) {
  uint32_t count = 0;
  for (guint i = 0; i < run->targets->len; i++)
    count += ((target *)run->targets->pdata[i])->is_relay == relays;
  kith_pack_array(pk, count);
  for (guint i = 0; i < run->targets->len; i++) {
    const target *t = run->targets->pdata[i];
    if (t->is_relay != relays)
      continue;
    msgpack_pack_map(&pk->pk, relays ? 7 : 4);
    if (relays) {
      kv(pk, "node_id", t->node_id);
      kv(pk, "name", t->name);
      kv_bool(pk, "linked", t->linked);
    }
    kv(pk, relays ? "addr" : "server", t->server);
    kv_bool(pk, "reachable", t->mapped[0] != 0);
    kv_rtt(pk, t);
    kv(pk, "public", t->mapped);
  }
}

static void pack_turns(kith_pack *pk, doctor_run *run) {
  kith_pack_array(pk, run->turns->len);
  for (guint i = 0; i < run->turns->len; i++) {
    const turn_check *c = run->turns->pdata[i];
    msgpack_pack_map(&pk->pk, 5);
    kv(pk, "server", c->server); /* never the URL: it holds the password */
    kv_bool(pk, "reachable", c->reachable);
    kith_pack_cstr(pk, "rtt_ms");
    if (c->reachable)
      kith_pack_uint(pk, (uint64_t)(c->rtt_ms + 0.5));
    else
      kith_pack_nil(pk);
    kv(pk, "credentials", c->credentials);
    kv(pk, "relayed", c->relayed);
  }
}

/* What the findings mean, in words for the user. */
static void pack_verdict(kith_pack *pk, doctor_run *run, const char *mapping,
                         const char *udp) {
  int reachable = strcmp(udp, "open") == 0;
  int relay = relay_linked(run), turn = turn_accepted(run);
  const char *joining, *joined;
  if (!reachable) {
    joining = "only nodes on this network can be joined or reached: nothing "
              "outside answered (add a relay friend, a STUN or a TURN server, "
              "or check the firewall for UDP)";
    joined = joining;
  } else if (strcmp(mapping, "none") == 0) {
    joining = "direct links to anyone whose NAT lets them out";
    joined = "joiners reach this node's signal port directly (invite codes "
             "carry its public address)";
  } else if (strcmp(mapping, "endpoint-independent") == 0) {
    joining = "direct links by hole punching (srflx) with nodes behind cone "
              "NATs or none; through a relay friend or TURN otherwise";
    joined = relay ? "joiners behind NAT reach this node through its relay "
                     "friend, then usually a direct link"
                   : "joiners outside this network cannot send the first "
                     "request here: add a relay friend (kith friend add)";
  } else {
    joining = "direct links only with nodes that have no NAT or a cone NAT "
              "(prflx); with other symmetric NATs through a relay friend "
              "or TURN";
    joined = relay || turn ? "joiners reach this node through its relay "
                             "friend; the link may stay relayed"
                           : "joiners outside this network cannot reach "
                             "this node: add a relay friend";
  }
  msgpack_pack_map(&pk->pk, 4);
  kv_bool(pk, "reachable", reachable);
  kv(pk, "summary",
     !reachable                     ? "nothing outside can be reached"
     : strcmp(mapping, "none") == 0 ? "public address, no NAT"
     : strcmp(mapping, "endpoint-independent") == 0
         ? "behind a NAT with endpoint-independent mapping (cone)"
     : strcmp(mapping, "endpoint-dependent") == 0
         ? "behind a NAT with endpoint-dependent mapping (symmetric)"
         : "outside reachable; NAT mapping not determined (it needs two "
           "servers at different addresses)");
  kv(pk, "joining", joining);
  kv(pk, "being_joined", joined);
}

static void reply(doctor_run *run) {
  char local[LOCAL_ADDRS_MAX][INET_ADDRSTRLEN];
  size_t n_local = local_addrs(run->n, local, LOCAL_ADDRS_MAX);
  uint16_t port = kith_signal_port(run->n->sig);
  int asked, answered = count_answers(run, &asked);
  const char *udp = answered ? "open" : asked ? "blocked" : "unknown";
  const char *mapping = nat_mapping(run, local, n_local);
  kith_pack pk;
  kith_pack_init(&pk);
  msgpack_pack_map(&pk.pk, 7);
  kith_pack_cstr(&pk, "addresses");
  kith_pack_array(&pk, (uint32_t)n_local);
  for (size_t i = 0; i < n_local; i++) {
    char a[REFLEX_ADDR_LEN];
    g_snprintf(a, sizeof a, "%s:%u", local[i], port);
    kith_pack_cstr(&pk, a);
  }
  kith_pack_cstr(&pk, "stun");
  pack_targets(&pk, run, 0);
  kith_pack_cstr(&pk, "relays");
  pack_targets(&pk, run, 1);
  kv(&pk, "nat_mapping", mapping);
  kv(&pk, "udp", udp);
  kith_pack_cstr(&pk, "turn");
  pack_turns(&pk, run);
  kith_pack_cstr(&pk, "verdict");
  pack_verdict(&pk, run, mapping, udp);
  node_rpc_reply(run->n, run->call, &pk);
}

/* ---- the run ---- */

static void run_free(doctor_run *run) {
  for (guint i = 0; i < run->targets->len; i++)
    reflex_forget(run->n, run->targets->pdata[i]);
  if (run->timer)
    g_source_remove(run->timer);
  g_ptr_array_unref(run->targets);
  g_ptr_array_unref(run->turns);
  g_free(run);
}

static int all_done(doctor_run *run) {
  for (guint i = 0; i < run->targets->len; i++)
    if (!((target *)run->targets->pdata[i])->done)
      return 0;
  for (guint i = 0; i < run->turns->len; i++)
    if (((turn_check *)run->turns->pdata[i])->step != TURN_DONE)
      return 0;
  return 1;
}

static gboolean on_doctor_tick(gpointer data) {
  doctor_run *run = data;
  uint64_t now = node_now();
  for (guint i = 0; i < run->turns->len; i++) {
    turn_check *c = run->turns->pdata[i];
    if (c->step != TURN_DONE && now - c->sent_ms >= TURN_RESEND_MS)
      turn_send(c);
  }
  if (!all_done(run) && now - run->start_ms < DOCTOR_TIMEOUT_MS)
    return G_SOURCE_CONTINUE;
  run->timer = 0;
  g_ptr_array_remove(run->n->doctor_runs, run);
  reply(run);
  run_free(run);
  return G_SOURCE_REMOVE;
}

static void rpc_doctor(kith_rpc_call *call, const msgpack_object *params,
                       void *ud) {
  kith_node *n = ud;
  if (n->doctor_runs->len >= DOCTOR_RUNS_MAX) {
    kith_rpc_error(call, KITH_ERR_BUSY,
                   "too many reports are being made; try again in a moment");
    return;
  }
  doctor_run *run = g_new0(doctor_run, 1);
  run->n = n;
  run->call = call;
  run->start_ms = node_now();
  run->targets = g_ptr_array_new_with_free_func(g_free);
  run->turns = g_ptr_array_new_with_free_func((GDestroyNotify)turn_free);
  if (n->stun_host[0])
    add_target(run, 0, n->stun_host, n->stun_port);
  add_relay_targets(run);
  for (size_t i = 0; i < n->n_turn; i++)
    g_ptr_array_add(run->turns, turn_start(run, &n->turn[i]));
  g_ptr_array_add(n->doctor_runs, run);
  run->timer = g_timeout_add(DOCTOR_TICK_MS, on_doctor_tick, run);
}

void doctor_rpc_register(kith_node *n) {
  n->doctor_runs = g_ptr_array_new();
  kith_control_register(n->ctl, "doctor", rpc_doctor, n);
}

void doctor_stop(kith_node *n) {
  if (n->doctor_runs == NULL)
    return;
  for (guint i = 0; i < n->doctor_runs->len; i++) {
    doctor_run *run = n->doctor_runs->pdata[i];
    kith_rpc_error(run->call, KITH_ERR_STATE, "the node is stopping");
    run_free(run);
  }
  g_ptr_array_unref(n->doctor_runs);
  n->doctor_runs = NULL;
}
