/* kith: server-reflexive addresses, with STUN on the signal port
 * (protocol.md 8.7).
 *
 * As a relay (--relay), the node answers STUN binding requests that come
 * from an IPv4 address one of its friends used lately (an authenticated
 * signal datagram, or a link that is up): so its friends need no
 * third-party STUN server. Strangers get nothing. Every answer is at most
 * the size of the request, except that a bare 20-byte request (libnice's
 * own, when it gathers candidates) gets the 32-byte minimum; answers share
 * the signal port's per-source rate limit.
 *
 * As a client, the node asks its relay friends (and its --stun server)
 * where its signal port appears from outside, every REFLEX_ROUND_MS, with
 * requests padded so that the answer is never larger. The answers go into
 * invite codes (public addresses) and tell the ICE agents which relay
 * friend can serve as their STUN server. `kith doctor` uses the same
 * probes. */
#include <arpa/inet.h>
#include <string.h>

#include "node_int.h"
#include "stun.h"

#define FRIEND_IP_TTL_MS (10 * 60 * KITH_SECOND)
#define FRIEND_IPS_MAX 1024
#define REFLEX_ROUND_MS (60 * KITH_SECOND)
#define REFLEX_ROUND_EMPTY_MS (10 * KITH_SECOND) /* while nothing answered */
#define PROBE_RESEND_MS 500
#define PROBE_TIMEOUT_MS (2 * KITH_SECOND)
#define PROBES_MAX 64
#define ANSWERS_MAX 16
#define ANSWER_FRESH_MS (5 * 60 * KITH_SECOND)

typedef struct probe {
  uint8_t id[KITH_STUN_ID_LEN];
  uint8_t req[KITH_STUN_REQUEST_LEN];
  char server[REFLEX_ADDR_LEN];
  GSocketAddress *dst;
  uint64_t first_ms, sent_ms;
  reflex_cb cb;
  void *ud;
} probe;

typedef struct answer {
  char server[REFLEX_ADDR_LEN];
  char mapped[REFLEX_ADDR_LEN];
  uint64_t at_ms;
} answer;

struct node_reflex {
  GHashTable *friend_ips; /* IPv4 (network order) -> expiry ms */
  GPtrArray *probes;      /* probe* */
  GPtrArray *answers;     /* answer*: the latest per server */
  guint timer;            /* resends and timeouts while probes are out */
  uint64_t next_round_ms;
};

static void probe_free(probe *p) {
  g_clear_object(&p->dst);
  g_free(p);
}

void reflex_init(kith_node *n) {
  node_reflex *r = g_new0(node_reflex, 1);
  r->friend_ips = g_hash_table_new_full(NULL, NULL, NULL, g_free);
  r->probes = g_ptr_array_new_with_free_func((GDestroyNotify)probe_free);
  r->answers = g_ptr_array_new_with_free_func(g_free);
  n->reflex = r;
}

void reflex_clear(kith_node *n) {
  node_reflex *r = n->reflex;
  if (r == NULL)
    return;
  if (r->timer)
    g_source_remove(r->timer);
  g_hash_table_unref(r->friend_ips);
  g_ptr_array_unref(r->probes);
  g_ptr_array_unref(r->answers);
  g_free(r);
  n->reflex = NULL;
}

/* "ip:port" of an IPv4 socket address; FALSE if it is not one. */
static gboolean addr_text(GSocketAddress *sa, char out[REFLEX_ADDR_LEN],
                          struct sockaddr_in *sin) {
  struct sockaddr_in tmp;
  struct sockaddr_in *a = sin != NULL ? sin : &tmp;
  char ip[INET_ADDRSTRLEN];
  if (!G_IS_INET_SOCKET_ADDRESS(sa) ||
      g_socket_address_get_family(sa) != G_SOCKET_FAMILY_IPV4 ||
      !g_socket_address_to_native(sa, a, sizeof *a, NULL) ||
      inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip) == NULL)
    return FALSE;
  g_snprintf(out, REFLEX_ADDR_LEN, "%s:%u", ip, ntohs(a->sin_port));
  return TRUE;
}

/* ---- the relay side: answering friends ---- */

static void allow_ip(node_reflex *r, guint32 ip, uint64_t now) {
  if (g_hash_table_size(r->friend_ips) >= FRIEND_IPS_MAX &&
      !g_hash_table_contains(r->friend_ips, GUINT_TO_POINTER(ip)))
    return; /* full of friends' addresses: the newest waits for expiry */
  uint64_t *until = g_new(uint64_t, 1);
  *until = now + FRIEND_IP_TTL_MS;
  g_hash_table_replace(r->friend_ips, GUINT_TO_POINTER(ip), until);
}

void reflex_note_sender(kith_node *n, const uint8_t from[32],
                        GSocketAddress *src) {
  struct sockaddr_in sin;
  char text[REFLEX_ADDR_LEN];
  if (n->reflex != NULL && relay_is_friend(n, from) &&
      addr_text(src, text, &sin))
    allow_ip(n->reflex, sin.sin_addr.s_addr, node_now());
}

/* An up link to a friend whose remote address has this IP. */
static int friend_linked_from(kith_node *n, const char *ip) {
  GHashTableIter it;
  gpointer v;
  size_t len = strlen(ip);
  g_hash_table_iter_init(&it, n->peers);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    const node_peer *p = v;
    const char *addr = peer_addr(p);
    if (p->state == PEER_UP && !p->relayed && strncmp(addr, ip, len) == 0 &&
        addr[len] == ':' && relay_is_friend(n, p->id))
      return 1;
  }
  return 0;
}

static int is_friend_ip(kith_node *n, const struct sockaddr_in *src) {
  node_reflex *r = n->reflex;
  char ip[INET_ADDRSTRLEN];
  uint64_t *until = g_hash_table_lookup(r->friend_ips,
                                        GUINT_TO_POINTER(src->sin_addr.s_addr));
  if (until != NULL && *until > node_now())
    return 1;
  if (until != NULL)
    g_hash_table_remove(r->friend_ips, GUINT_TO_POINTER(src->sin_addr.s_addr));
  return inet_ntop(AF_INET, &src->sin_addr, ip, sizeof ip) != NULL &&
         friend_linked_from(n, ip);
}

static void answer_request(kith_node *n, const uint8_t *buf, size_t len,
                           GSocketAddress *src) {
  struct sockaddr_in sin;
  char text[REFLEX_ADDR_LEN];
  uint8_t out[KITH_STUN_ANSWER_LEN];
  if (!n->relay || !addr_text(src, text, &sin) || !is_friend_ip(n, &sin))
    return; /* strangers get nothing */
  size_t k = kith_stun_answer(buf, len, &sin, out, sizeof out);
  /* never more than asked, but a bare request gets the smallest answer */
  if (k == 0 || (k > len && len > KITH_STUN_HEADER))
    return;
  if (kith_signal_send_raw(n->sig, src, out, k) != KITH_OK)
    node_log(n, "could not answer a STUN request");
}

/* ---- the client side: probes ---- */

static void note_answer(kith_node *n, const char *server, const char *mapped);

static void finish_probe(kith_node *n, guint i, const char *mapped,
                         uint64_t now) {
  probe *p = g_ptr_array_steal_index(n->reflex->probes, i);
  if (mapped != NULL) /* every answer tells where we are, whoever asked */
    note_answer(n, p->server, mapped);
  if (p->cb != NULL)
    p->cb(p->ud, p->server, mapped, mapped ? (double)(now - p->first_ms) : 0);
  probe_free(p);
}

static void read_response(kith_node *n, const uint8_t *buf, size_t len,
                          GSocketAddress *src) {
  uint8_t id[KITH_STUN_ID_LEN];
  struct sockaddr_in mapped;
  char from[REFLEX_ADDR_LEN], text[REFLEX_ADDR_LEN], ip[INET_ADDRSTRLEN];
  if (kith_stun_read_response(buf, len, id, &mapped) != KITH_OK ||
      !addr_text(src, from, NULL) ||
      inet_ntop(AF_INET, &mapped.sin_addr, ip, sizeof ip) == NULL)
    return;
  g_snprintf(text, sizeof text, "%s:%u", ip, ntohs(mapped.sin_port));
  GPtrArray *probes = n->reflex->probes;
  for (guint i = 0; i < probes->len; i++) {
    probe *p = probes->pdata[i];
    /* the transaction id and the server it was sent to must both match */
    if (memcmp(p->id, id, sizeof id) == 0 && strcmp(p->server, from) == 0) {
      finish_probe(n, i, text, node_now());
      return;
    }
  }
}

void reflex_on_stun(kith_signal *s, const uint8_t *buf, size_t len,
                    GSocketAddress *src, void *ud) {
  kith_node *n = ud;
  if (n->reflex == NULL)
    return;
  if (kith_stun_classify(buf, len) == KITH_STUN_REQUEST)
    answer_request(n, buf, len, src);
  else
    read_response(n, buf, len, src);
}

static void send_probe(kith_node *n, probe *p, uint64_t now) {
  p->sent_ms = now;
  if (kith_signal_send_raw(n->sig, p->dst, p->req, sizeof p->req) != KITH_OK)
    node_log(n, "could not send a STUN request to %s", p->server);
}

/* Resends what is unanswered, ends what timed out. */
static gboolean on_probe_timer(gpointer data) {
  kith_node *n = data;
  node_reflex *r = n->reflex;
  uint64_t now = node_now();
  for (guint i = r->probes->len; i-- > 0;) {
    probe *p = r->probes->pdata[i];
    if (now - p->first_ms >= PROBE_TIMEOUT_MS)
      finish_probe(n, i, NULL, now);
    else if (now - p->sent_ms >= PROBE_RESEND_MS)
      send_probe(n, p, now);
  }
  if (r->probes->len > 0)
    return G_SOURCE_CONTINUE;
  r->timer = 0;
  return G_SOURCE_REMOVE;
}

kith_err reflex_probe(kith_node *n, const char *host, uint16_t port,
                      reflex_cb cb, void *ud) {
  node_reflex *r = n->reflex;
  GInetAddress *ia = g_inet_address_new_from_string(host);
  if (r == NULL || ia == NULL ||
      g_inet_address_get_family(ia) != G_SOCKET_FAMILY_IPV4 || port == 0) {
    g_clear_object(&ia);
    return KITH_ERR_ARG;
  }
  if (r->probes->len >= PROBES_MAX) {
    g_object_unref(ia);
    return KITH_ERR_LIMIT;
  }
  probe *p = g_new0(probe, 1);
  p->dst = g_inet_socket_address_new(ia, port);
  g_object_unref(ia);
  g_snprintf(p->server, sizeof p->server, "%s:%u", host, port);
  kith_stun_request(p->req, p->id);
  p->cb = cb;
  p->ud = ud;
  p->first_ms = node_now();
  g_ptr_array_add(r->probes, p);
  send_probe(n, p, p->first_ms);
  if (!r->timer)
    r->timer = g_timeout_add(PROBE_RESEND_MS / 2, on_probe_timer, n);
  return KITH_OK;
}

void reflex_forget(kith_node *n, void *ud) {
  GPtrArray *probes = n->reflex ? n->reflex->probes : NULL;
  for (guint i = probes ? probes->len : 0; i-- > 0;)
    if (((probe *)probes->pdata[i])->ud == ud)
      g_ptr_array_remove_index(probes, i);
}

/* ---- learning our own public address ---- */

static answer *answer_of(node_reflex *r, const char *server) {
  for (guint i = 0; i < r->answers->len; i++)
    if (strcmp(((answer *)r->answers->pdata[i])->server, server) == 0)
      return r->answers->pdata[i];
  return NULL;
}

/* Records what server saw (an unanswered probe changes nothing: what it
 * said last ages out). */
static void note_answer(kith_node *n, const char *server, const char *mapped) {
  node_reflex *r = n->reflex;
  answer *a = answer_of(r, server);
  if (a == NULL) {
    if (r->answers->len >= ANSWERS_MAX)
      g_ptr_array_remove_index(r->answers, 0);
    a = g_new0(answer, 1);
    g_strlcpy(a->server, server, sizeof a->server);
    g_ptr_array_add(r->answers, a);
  }
  if (strcmp(a->mapped, mapped) != 0)
    node_log(n, "public address of the signal port (as %s sees it): %s", server,
             mapped);
  g_strlcpy(a->mapped, mapped, sizeof a->mapped);
  a->at_ms = node_now();
}

static int has_fresh_answer(node_reflex *r) {
  for (guint i = 0; i < r->answers->len; i++)
    if (node_now() - ((answer *)r->answers->pdata[i])->at_ms < ANSWER_FRESH_MS)
      return 1;
  return 0;
}

void reflex_tick(kith_node *n, uint64_t now) {
  node_reflex *r = n->reflex;
  GHashTableIter it;
  gpointer v;
  if (r == NULL || now < r->next_round_ms)
    return;
  r->next_round_ms =
      now + (has_fresh_answer(r) ? REFLEX_ROUND_MS : REFLEX_ROUND_EMPTY_MS);
  reflex_forget(n, n);
  /* A probe that cannot be sent (a bad address, too many out) is simply
   * not made: the next round tries again. */
  if (n->stun_host[0] &&
      reflex_probe(n, n->stun_host, n->stun_port, NULL, n) != KITH_OK)
    node_log(n, "cannot probe the STUN server");
  g_hash_table_iter_init(&it, n->friends);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    const kith_friend *f = v;
    if (f->port && reflex_probe(n, f->host, f->port, NULL, n) != KITH_OK)
      node_log(n, "cannot probe a relay friend's address");
  }
}

void reflex_refresh(kith_node *n) {
  if (n->reflex != NULL)
    n->reflex->next_round_ms = 0;
}

/* ---- what the answers are used for ---- */

static int answered_lately(node_reflex *r, const char *host, uint16_t port) {
  char server[REFLEX_ADDR_LEN];
  g_snprintf(server, sizeof server, "%s:%u", host, port);
  answer *a = answer_of(r, server);
  return a != NULL && node_now() - a->at_ms < ANSWER_FRESH_MS;
}

int reflex_stun_server(kith_node *n, const uint8_t peer[32], char host[46],
                       uint16_t *port) {
  GHashTableIter it;
  gpointer v;
  if (n->stun_host[0]) {
    g_strlcpy(host, n->stun_host, 46);
    *port = n->stun_port;
    return 1;
  }
  if (n->reflex == NULL)
    return 0;
  /* A relay friend that answered us lately (so the agent's requests are
   * answered too), and not the peer itself: its link needs no STUN. */
  g_hash_table_iter_init(&it, n->friends);
  while (g_hash_table_iter_next(&it, NULL, &v)) {
    const kith_friend *f = v;
    if (f->port && memcmp(f->node, peer, KITH_ID_LEN) != 0 &&
        answered_lately(n->reflex, f->host, f->port)) {
      g_strlcpy(host, f->host, 46);
      *port = f->port;
      return 1;
    }
  }
  return 0;
}

static int is_listed(const kith_addr *a, size_t n, const char *host,
                     uint16_t port) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(a[i].host, host) == 0 && a[i].port == port)
      return 1;
  return 0;
}

static gint by_age(gconstpointer a, gconstpointer b) {
  uint64_t x = (*(answer *const *)a)->at_ms, y = (*(answer *const *)b)->at_ms;
  return x < y ? 1 : x > y ? -1 : 0;
}

size_t reflex_public_addrs(kith_node *n, const kith_addr *local, size_t n_local,
                           kith_addr *out, size_t max) {
  size_t k = 0;
  if (n->reflex == NULL)
    return 0;
  GPtrArray *sorted = g_ptr_array_copy(n->reflex->answers, NULL, NULL);
  g_ptr_array_set_free_func(sorted, NULL); /* the copy borrows them */
  g_ptr_array_sort(sorted, by_age);        /* newest first */
  for (guint i = 0; i < sorted->len && k < max; i++) {
    const answer *a = sorted->pdata[i];
    const char *colon = strrchr(a->mapped, ':');
    kith_addr ad = {{0}, 0};
    if (colon == NULL || node_now() - a->at_ms >= ANSWER_FRESH_MS ||
        (size_t)(colon - a->mapped) >= sizeof ad.host)
      continue;
    memcpy(ad.host, a->mapped, (size_t)(colon - a->mapped));
    ad.port = (uint16_t)g_ascii_strtoull(colon + 1, NULL, 10);
    if (ad.port && !is_listed(local, n_local, ad.host, ad.port) &&
        !is_listed(out, k, ad.host, ad.port))
      out[k++] = ad;
  }
  g_ptr_array_unref(sorted);
  return k;
}
