#include "ice.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <nice/agent.h>
#include <string.h>

#include "../core/codec.h"

#define COMPONENT 1
#define UFRAG_MIN 4
#define PWD_MIN 22
#define REMOTE_LEN 64 /* "[" IPv6 "]:" port */

enum { SIG_GATHERED, SIG_STATE, SIG_PAIR, SIG_WRITABLE, N_SIGS };

struct kith_ice {
  NiceAgent *agent;
  GMainContext *ctx;
  guint stream;
  kith_ice_callbacks cbs;
  void *ud;
  gulong handlers[N_SIGS];
  GSource *gathered_idle; /* on_gathered deferred out of kith_ice_new */
  GSource *gather_timer; /* reports gathering done by KITH_ICE_GATHER_WAIT_MS */
  gboolean dead;         /* kith_ice_free was called: no more callbacks */
  gboolean in_new;
  gboolean gathered;
  gboolean up_reported, down_reported;
  gboolean ready; /* reported up and not failed since */
  char path[8];
  char remote[REMOTE_LEN];
};

/* ---- parameter validation and codec ---- */

static int is_ice_chars(const char *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!g_ascii_isalnum(c) && c != '+' && c != '/')
      return 0;
  }
  return 1;
}

static int is_numeric_addr(const char *s) {
  uint8_t buf[16];
  if (memchr(s, '\0', 46) == NULL)
    return 0;
  if (inet_pton(AF_INET, s, buf) == 1)
    return memcmp(buf, "\0\0\0\0", 4) != 0;
  if (inet_pton(AF_INET6, s, buf) == 1)
    return memcmp(buf, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16) != 0;
  return 0;
}

static int is_valid_cand(const kith_ice_cand *c) {
  size_t flen = strnlen(c->foundation, sizeof c->foundation);
  return flen >= 1 && flen < sizeof c->foundation &&
         is_ice_chars(c->foundation, flen) && c->priority > 0 && c->port > 0 &&
         c->type <= KITH_CAND_RELAY && is_numeric_addr(c->addr);
}

static int is_valid_params(const kith_ice_params *p) {
  size_t ulen = strnlen(p->ufrag, sizeof p->ufrag);
  size_t plen = strnlen(p->pwd, sizeof p->pwd);
  if (ulen < UFRAG_MIN || ulen > KITH_ICE_UFRAG_MAX || plen < PWD_MIN ||
      plen > KITH_ICE_PWD_MAX || !is_ice_chars(p->ufrag, ulen) ||
      !is_ice_chars(p->pwd, plen) || p->n_cands > KITH_ICE_MAX_CANDS)
    return 0;
  for (size_t i = 0; i < p->n_cands; i++)
    if (!is_valid_cand(&p->cands[i]))
      return 0;
  return 1;
}

kith_err kith_ice_params_encode(const kith_ice_params *p, uint8_t **out,
                                size_t *len) {
  if (p == NULL || out == NULL || len == NULL || !is_valid_params(p))
    return KITH_ERR_ARG;
  kith_pack pk;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 3);
  kith_pack_cstr(&pk, p->ufrag);
  kith_pack_cstr(&pk, p->pwd);
  kith_pack_array(&pk, (uint32_t)p->n_cands);
  for (size_t i = 0; i < p->n_cands; i++) {
    const kith_ice_cand *c = &p->cands[i];
    kith_pack_array(&pk, 5);
    kith_pack_cstr(&pk, c->foundation);
    kith_pack_uint(&pk, c->priority);
    kith_pack_cstr(&pk, c->addr);
    kith_pack_uint(&pk, c->port);
    kith_pack_uint(&pk, (uint64_t)c->type);
  }
  kith_err e = kith_pack_take(&pk, out, len);
  kith_pack_clear(&pk);
  return e;
}

/* Sorts the candidates by priority, highest first; stable (insertion sort
 * of at most KITH_ICE_MAX_CANDS), so equal priorities keep their order. */
static void sort_by_priority(kith_ice_params *p) {
  for (size_t i = 1; i < p->n_cands; i++) {
    kith_ice_cand c = p->cands[i];
    size_t j = i;
    for (; j > 0 && p->cands[j - 1].priority < c.priority; j--)
      p->cands[j] = p->cands[j - 1];
    p->cands[j] = c;
  }
}

kith_err kith_ice_params_encode_max(const kith_ice_params *p, size_t max_bytes,
                                    uint8_t **out, size_t *len) {
  if (out != NULL)
    *out = NULL;
  if (p == NULL || out == NULL || len == NULL || !is_valid_params(p))
    return KITH_ERR_ARG;
  *len = 0;
  kith_ice_params *top = g_new(kith_ice_params, 1);
  *top = *p;
  sort_by_priority(top);
  size_t keep = p->n_cands;
  kith_err e;
  /* At most KITH_ICE_MAX_CANDS + 1 small encodings: simpler and surer than
   * predicting msgpack's header sizes. */
  for (;;) {
    top->n_cands = keep;
    e = kith_ice_params_encode(top, out, len);
    if (e != KITH_OK || *len <= max_bytes)
      break;
    g_clear_pointer(out, g_free);
    *len = 0;
    if (keep <= 1) {
      e = KITH_ERR_LIMIT;
      break;
    }
    keep--;
  }
  g_free(top);
  return e;
}

/* Copies a msgpack str of 1..cap-1 bytes into a NUL-terminated buffer. */
static kith_err read_str(const msgpack_object *o, char *dst, size_t cap) {
  const char *s;
  size_t n;
  kith_err e = kith_codec_str(o, cap - 1, &s, &n);
  if (e != KITH_OK)
    return e;
  memcpy(dst, s, n);
  dst[n] = '\0';
  return KITH_OK;
}

static kith_err decode_cand(const msgpack_object *o, kith_ice_cand *c) {
  const msgpack_object *f;
  uint64_t prio, port, type;
  kith_err e = kith_codec_array(o, 5, &f);
  if (e == KITH_OK)
    e = read_str(&f[0], c->foundation, sizeof c->foundation);
  if (e == KITH_OK)
    e = kith_codec_uint(&f[1], UINT32_MAX, &prio);
  if (e == KITH_OK)
    e = read_str(&f[2], c->addr, sizeof c->addr);
  if (e == KITH_OK)
    e = kith_codec_uint(&f[3], UINT16_MAX, &port);
  if (e == KITH_OK)
    e = kith_codec_uint(&f[4], KITH_CAND_RELAY, &type);
  if (e != KITH_OK)
    return KITH_ERR_DECODE;
  c->priority = (uint32_t)prio;
  c->port = (uint16_t)port;
  c->type = (kith_cand_type)type;
  return KITH_OK;
}

static kith_err decode_obj(const msgpack_object *o, kith_ice_params *p) {
  const msgpack_object *f, *cl;
  if (kith_codec_array(o, 3, &f) != KITH_OK ||
      read_str(&f[0], p->ufrag, sizeof p->ufrag) != KITH_OK ||
      read_str(&f[1], p->pwd, sizeof p->pwd) != KITH_OK ||
      f[2].type != MSGPACK_OBJECT_ARRAY)
    return KITH_ERR_DECODE;
  uint32_t n = f[2].via.array.size;
  if (n > KITH_ICE_MAX_CANDS)
    return KITH_ERR_LIMIT;
  if (kith_codec_array(&f[2], n, &cl) != KITH_OK)
    return KITH_ERR_DECODE;
  for (uint32_t i = 0; i < n; i++)
    if (decode_cand(&cl[i], &p->cands[i]) != KITH_OK)
      return KITH_ERR_DECODE;
  p->n_cands = n;
  return is_valid_params(p) ? KITH_OK : KITH_ERR_DECODE;
}

kith_err kith_ice_params_decode(const uint8_t *buf, size_t len,
                                kith_ice_params *p) {
  if (buf == NULL || p == NULL)
    return KITH_ERR_ARG;
  memset(p, 0, sizeof *p);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  kith_err e = kith_codec_unpack(buf, len, &u);
  if (e == KITH_OK)
    e = decode_obj(&u.data, p);
  msgpack_unpacked_destroy(&u);
  if (e != KITH_OK)
    memset(p, 0, sizeof *p);
  return e;
}

/* ---- libnice callbacks ---- */

static const char *path_of(const NiceCandidate *l, const NiceCandidate *r) {
  if (l->type == NICE_CANDIDATE_TYPE_RELAYED ||
      r->type == NICE_CANDIDATE_TYPE_RELAYED)
    return "relay";
  switch (l->type) {
  case NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE:
    return "srflx";
  case NICE_CANDIDATE_TYPE_PEER_REFLEXIVE:
    return "prflx";
  default:
    break;
  }
  return r->type == NICE_CANDIDATE_TYPE_PEER_REFLEXIVE ? "prflx" : "host";
}

static void record_pair(kith_ice *ice, const NiceCandidate *l,
                        const NiceCandidate *r) {
  char ip[NICE_ADDRESS_STRING_LEN];
  nice_address_to_string(&r->addr, ip);
  guint port = nice_address_get_port(&r->addr);
  if (nice_address_ip_version(&r->addr) == 6)
    g_snprintf(ice->remote, sizeof ice->remote, "[%s]:%u", ip, port);
  else
    g_snprintf(ice->remote, sizeof ice->remote, "%s:%u", ip, port);
  g_strlcpy(ice->path, path_of(l, r), sizeof ice->path);
}

static void report(kith_ice *ice, int up) {
  if (up && ice->path[0] == '\0') {
    NiceCandidate *l = NULL, *r = NULL; /* agent-owned */
    if (nice_agent_get_selected_pair(ice->agent, ice->stream, COMPONENT, &l,
                                     &r) &&
        l != NULL && r != NULL)
      record_pair(ice, l, r);
  }
  if (ice->down_reported || (up && ice->up_reported))
    return;
  if (up)
    ice->up_reported = TRUE;
  else
    ice->down_reported = TRUE;
  ice->ready = up;
  if (ice->cbs.on_state != NULL)
    ice->cbs.on_state(ice, up, ice->ud);
}

static gboolean idle_gathered(gpointer data) {
  kith_ice *ice = data;
  g_source_unref(ice->gathered_idle);
  ice->gathered_idle = NULL;
  if (!ice->dead && ice->cbs.on_gathered != NULL)
    ice->cbs.on_gathered(ice, ice->ud);
  return G_SOURCE_REMOVE;
}

static void drop_source(GSource **src) {
  if (*src != NULL) {
    g_source_destroy(*src);
    g_source_unref(*src);
    *src = NULL;
  }
}

static void on_gathering_done(NiceAgent *agent, guint stream, gpointer data) {
  kith_ice *ice = data;
  if (ice->dead || stream != ice->stream || ice->gathered)
    return;
  ice->gathered = TRUE;
  drop_source(&ice->gather_timer);
  /* Host-only gathering finishes inside nice_agent_gather_candidates, i.e.
   * before kith_ice_new has handed the object to its caller: defer. */
  if (ice->in_new) {
    ice->gathered_idle = g_idle_source_new();
    g_source_set_callback(ice->gathered_idle, idle_gathered, ice, NULL);
    g_source_attach(ice->gathered_idle, ice->ctx);
    return;
  }
  if (ice->cbs.on_gathered != NULL)
    ice->cbs.on_gathered(ice, ice->ud);
}

/* A server that does not answer makes libnice wait seconds before it calls
 * gathering done: the parameters go out with what has come by then (later
 * candidates still take part in the checks; the peer learns them as
 * peer-reflexive). */
static gboolean gather_deadline(gpointer data) {
  kith_ice *ice = data;
  g_source_unref(ice->gather_timer);
  ice->gather_timer = NULL;
  on_gathering_done(ice->agent, ice->stream, ice);
  return G_SOURCE_REMOVE;
}

static void on_state_changed(NiceAgent *agent, guint stream, guint comp,
                             guint state, gpointer data) {
  kith_ice *ice = data;
  if (ice->dead || stream != ice->stream || comp != COMPONENT)
    return;
  if (state == NICE_COMPONENT_STATE_FAILED)
    report(ice, 0);
  else if (state == NICE_COMPONENT_STATE_READY ||
           (state == NICE_COMPONENT_STATE_CONNECTED && ice->path[0] != '\0'))
    report(ice, 1);
}

static void on_selected_pair(NiceAgent *agent, guint stream, guint comp,
                             NiceCandidate *l, NiceCandidate *r,
                             gpointer data) {
  kith_ice *ice = data;
  if (ice->dead || stream != ice->stream || comp != COMPONENT)
    return;
  char before[sizeof ice->path];
  g_strlcpy(before, ice->path, sizeof before);
  record_pair(ice, l, r);
  NiceComponentState st = nice_agent_get_component_state(agent, stream, comp);
  if (st == NICE_COMPONENT_STATE_CONNECTED || st == NICE_COMPONENT_STATE_READY)
    report(ice, 1);
  /* A later nomination moved the link to another pair (libnice's
   * pseudo-TCP goes on over it): tell the owner. */
  if (!ice->dead && ice->ready && before[0] != '\0' &&
      strcmp(before, ice->path) != 0 && ice->cbs.on_path != NULL)
    ice->cbs.on_path(ice, ice->ud);
}

static void on_writable(NiceAgent *agent, guint stream, guint comp,
                        gpointer data) {
  kith_ice *ice = data;
  if (ice->dead || stream != ice->stream || !ice->ready)
    return;
  if (ice->cbs.on_writable != NULL)
    ice->cbs.on_writable(ice, ice->ud);
}

static void on_recv(NiceAgent *agent, guint stream, guint comp, guint len,
                    gchar *buf, gpointer data) {
  kith_ice *ice = data;
  if (ice->dead || stream != ice->stream || len == 0)
    return;
  if (ice->cbs.on_recv != NULL)
    ice->cbs.on_recv(ice, (const uint8_t *)buf, len, ice->ud);
}

/* ---- life cycle ---- */

static int is_skipped_ifname(const char *name) {
  static const char *const skip[] = {"docker", "veth", "virbr", "vnet"};
  for (size_t i = 0; i < G_N_ELEMENTS(skip); i++)
    if (g_str_has_prefix(name, skip[i]))
      return 1;
  return 0;
}

static void add_addr(NiceAgent *agent, const char *ip) {
  NiceAddress a;
  nice_address_init(&a);
  if (nice_address_set_from_string(&a, ip))
    nice_agent_add_local_address(agent, &a);
}

static int is_loopback_host(const char *ip) {
  return ip != NULL && (g_str_has_prefix(ip, "127.") || strcmp(ip, "::1") == 0);
}

/* Does the agent ask a server (STUN or TURN) that is not on this machine?
 * Then a 127.0.0.1 candidate only costs: its discovery waits for an answer
 * that cannot come (libnice gives up after 2 s, and gathering, hence the
 * offer, waits for it). */
static int asks_outside(const kith_ice_config *cfg) {
  if (cfg->stun_host != NULL && cfg->stun_host[0] != '\0' &&
      !is_loopback_host(cfg->stun_host))
    return 1;
  for (size_t i = 0; i < cfg->n_turn && i < KITH_TURN_MAX; i++)
    if (!is_loopback_host(cfg->turn[i].host))
      return 1;
  return 0;
}

/* Adding any address turns off libnice's interface detection, so with
 * loopback we list the machine's IPv4 interfaces ourselves, skipping the
 * same virtual ones libnice would; 127.0.0.1 too, unless the agent asks a
 * server elsewhere and the machine has another address. */
static void add_loopback_addrs(NiceAgent *agent, const kith_ice_config *cfg) {
  struct ifaddrs *ifs = NULL;
  int others = 0;
  if (getifaddrs(&ifs) == 0) {
    for (struct ifaddrs *i = ifs; i != NULL; i = i->ifa_next) {
      char ip[INET_ADDRSTRLEN];
      if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
          !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK) ||
          is_skipped_ifname(i->ifa_name))
        continue;
      const struct sockaddr_in *sin = (const void *)i->ifa_addr;
      if (inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof ip) != NULL) {
        add_addr(agent, ip);
        others++;
      }
    }
    freeifaddrs(ifs);
  }
  if (others == 0 || !asks_outside(cfg))
    add_addr(agent, "127.0.0.1");
}

static void connect_signals(kith_ice *ice) {
  ice->handlers[SIG_GATHERED] =
      g_signal_connect(ice->agent, "candidate-gathering-done",
                       G_CALLBACK(on_gathering_done), ice);
  ice->handlers[SIG_STATE] = g_signal_connect(
      ice->agent, "component-state-changed", G_CALLBACK(on_state_changed), ice);
  ice->handlers[SIG_PAIR] = g_signal_connect(
      ice->agent, "new-selected-pair-full", G_CALLBACK(on_selected_pair), ice);
  ice->handlers[SIG_WRITABLE] = g_signal_connect(
      ice->agent, "reliable-transport-writable", G_CALLBACK(on_writable), ice);
}

static void disconnect_signals(kith_ice *ice) {
  for (int i = 0; i < N_SIGS; i++)
    if (ice->handlers[i] != 0)
      g_signal_handler_disconnect(ice->agent, ice->handlers[i]);
  memset(ice->handlers, 0, sizeof ice->handlers);
  if (ice->stream != 0)
    nice_agent_attach_recv(ice->agent, ice->stream, COMPONENT, ice->ctx, NULL,
                           NULL);
}

static void configure(NiceAgent *agent, const kith_ice_config *cfg) {
  g_object_set(agent, "upnp", FALSE, "ice-tcp", FALSE, "controlling-mode",
               cfg->controlling ? TRUE : FALSE, "keepalive-conncheck", TRUE,
               NULL);
  if (cfg->stun_host != NULL && cfg->stun_host[0] != '\0')
    g_object_set(agent, "stun-server", cfg->stun_host, "stun-server-port",
                 (guint)(cfg->stun_port ? cfg->stun_port : 3478), NULL);
  if (cfg->only_addr != NULL && cfg->only_addr[0] != '\0')
    add_addr(agent, cfg->only_addr);
  else if (cfg->loopback)
    add_loopback_addrs(agent, cfg);
}

static kith_err start_agent(kith_ice *ice, const kith_ice_config *cfg) {
  ice->stream = nice_agent_add_stream(ice->agent, 1);
  if (ice->stream == 0)
    return KITH_ERR_IO;
  for (size_t i = 0; i < cfg->n_turn && i < KITH_TURN_MAX; i++)
    if (!nice_agent_set_relay_info(ice->agent, ice->stream, COMPONENT,
                                   cfg->turn[i].host, cfg->turn[i].port,
                                   cfg->turn[i].user, cfg->turn[i].pass,
                                   NICE_RELAY_TYPE_TURN_UDP))
      return KITH_ERR_ARG;
  connect_signals(ice);
  if (!nice_agent_attach_recv(ice->agent, ice->stream, COMPONENT, ice->ctx,
                              on_recv, ice))
    return KITH_ERR_IO;
  ice->in_new = TRUE;
  gboolean ok = nice_agent_gather_candidates(ice->agent, ice->stream);
  ice->in_new = FALSE;
  if (ok && !ice->gathered) {
    ice->gather_timer = g_timeout_source_new(KITH_ICE_GATHER_WAIT_MS);
    g_source_set_callback(ice->gather_timer, gather_deadline, ice, NULL);
    g_source_attach(ice->gather_timer, ice->ctx);
  }
  return ok ? KITH_OK : KITH_ERR_IO;
}

static void destroy_now(kith_ice *ice) {
  ice->dead = TRUE;
  drop_source(&ice->gathered_idle);
  drop_source(&ice->gather_timer);
  disconnect_signals(ice);
  g_object_unref(ice->agent);
  g_main_context_unref(ice->ctx);
  g_free(ice);
}

kith_err kith_ice_new(GMainContext *ctx, const kith_ice_config *cfg,
                      const kith_ice_callbacks *cbs, void *ud, kith_ice **out) {
  if (ctx == NULL || cfg == NULL || out == NULL)
    return KITH_ERR_ARG;
  *out = NULL;
  kith_ice *ice = g_new0(kith_ice, 1);
  ice->ctx = g_main_context_ref(ctx);
  if (cbs != NULL)
    ice->cbs = *cbs;
  ice->ud = ud;
  ice->agent = nice_agent_new_full(ctx, NICE_COMPATIBILITY_RFC5245,
                                   NICE_AGENT_OPTION_RELIABLE);
  if (ice->agent == NULL) {
    g_main_context_unref(ice->ctx);
    g_free(ice);
    return KITH_ERR_NOMEM;
  }
  configure(ice->agent, cfg);
  kith_err e = start_agent(ice, cfg);
  if (e != KITH_OK) {
    destroy_now(ice);
    return e;
  }
  *out = ice;
  return KITH_OK;
}

static void on_closed(GObject *src, GAsyncResult *res, gpointer data) {
  kith_ice *ice = data;
  g_object_unref(ice->agent);
  g_main_context_unref(ice->ctx);
  g_free(ice);
}

void kith_ice_free(kith_ice *ice) {
  if (ice == NULL || ice->dead)
    return;
  ice->dead = TRUE;
  drop_source(&ice->gathered_idle);
  drop_source(&ice->gather_timer);
  disconnect_signals(ice);
  /* The close callback runs in the thread-default context of this call:
   * make that the agent's context so it is dispatched where we iterate. */
  g_main_context_push_thread_default(ice->ctx);
  nice_agent_close_async(ice->agent, on_closed, ice);
  g_main_context_pop_thread_default(ice->ctx);
}

/* ---- parameters and data ---- */

static int is_linklocal6(const NiceAddress *a) {
  return nice_address_ip_version(a) == 6 &&
         IN6_IS_ADDR_LINKLOCAL(&a->s.ip6.sin6_addr);
}

static kith_err cand_from_nice(const NiceCandidate *nc, kith_ice_cand *c) {
  static const kith_cand_type types[] = {
      [NICE_CANDIDATE_TYPE_HOST] = KITH_CAND_HOST,
      [NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE] = KITH_CAND_SRFLX,
      [NICE_CANDIDATE_TYPE_PEER_REFLEXIVE] = KITH_CAND_PRFLX,
      [NICE_CANDIDATE_TYPE_RELAYED] = KITH_CAND_RELAY,
  };
  /* Link-local IPv6 needs a scope id the peer cannot know: useless. */
  if (nc->transport != NICE_CANDIDATE_TRANSPORT_UDP ||
      (guint)nc->type >= G_N_ELEMENTS(types) || is_linklocal6(&nc->addr))
    return KITH_ERR_ARG;
  memset(c, 0, sizeof *c);
  g_strlcpy(c->foundation, nc->foundation, sizeof c->foundation);
  c->priority = nc->priority;
  nice_address_to_string(&nc->addr, c->addr);
  c->port = (uint16_t)nice_address_get_port(&nc->addr);
  c->type = types[nc->type];
  return is_valid_cand(c) ? KITH_OK : KITH_ERR_ARG;
}

static gint by_priority_desc(gconstpointer a, gconstpointer b) {
  const NiceCandidate *x = a, *y = b;
  return x->priority < y->priority ? 1 : x->priority > y->priority ? -1 : 0;
}

static kith_err local_creds(kith_ice *ice, kith_ice_params *out) {
  gchar *ufrag = NULL, *pwd = NULL; /* 0.1.21 may return TRUE, unset */
  kith_err e = KITH_ERR_IO;
  if (nice_agent_get_local_credentials(ice->agent, ice->stream, &ufrag, &pwd) &&
      ufrag != NULL && pwd != NULL &&
      g_strlcpy(out->ufrag, ufrag, sizeof out->ufrag) < sizeof out->ufrag &&
      g_strlcpy(out->pwd, pwd, sizeof out->pwd) < sizeof out->pwd)
    e = KITH_OK;
  g_free(ufrag);
  g_free(pwd);
  return e;
}

kith_err kith_ice_local_params(kith_ice *ice, kith_ice_params *out) {
  if (ice == NULL || out == NULL)
    return KITH_ERR_ARG;
  memset(out, 0, sizeof *out);
  if (ice->dead)
    return KITH_ERR_STATE;
  kith_err e = local_creds(ice, out);
  if (e != KITH_OK)
    return e;
  GSList *cands =
      nice_agent_get_local_candidates(ice->agent, ice->stream, COMPONENT);
  cands = g_slist_sort(cands, by_priority_desc);
  for (GSList *l = cands; l != NULL && out->n_cands < KITH_ICE_MAX_CANDS;
       l = l->next)
    if (cand_from_nice(l->data, &out->cands[out->n_cands]) == KITH_OK)
      out->n_cands++;
  g_slist_free_full(cands, (GDestroyNotify)nice_candidate_free);
  return KITH_OK;
}

static NiceCandidate *cand_to_nice(const kith_ice_cand *c, guint stream) {
  static const NiceCandidateType types[] = {
      [KITH_CAND_HOST] = NICE_CANDIDATE_TYPE_HOST,
      [KITH_CAND_SRFLX] = NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE,
      [KITH_CAND_PRFLX] = NICE_CANDIDATE_TYPE_PEER_REFLEXIVE,
      [KITH_CAND_RELAY] = NICE_CANDIDATE_TYPE_RELAYED,
  };
  NiceCandidate *nc = nice_candidate_new(types[c->type]);
  nc->stream_id = stream;
  nc->component_id = COMPONENT;
  nc->transport = NICE_CANDIDATE_TRANSPORT_UDP;
  nc->priority = c->priority;
  g_strlcpy(nc->foundation, c->foundation, sizeof nc->foundation);
  if (!nice_address_set_from_string(&nc->addr, c->addr)) {
    nice_candidate_free(nc);
    return NULL;
  }
  nice_address_set_port(&nc->addr, c->port);
  return nc;
}

kith_err kith_ice_set_remote(kith_ice *ice, const kith_ice_params *p) {
  if (ice == NULL || p == NULL || !is_valid_params(p))
    return KITH_ERR_ARG;
  if (ice->dead || ice->down_reported)
    return KITH_ERR_STATE;
  if (!nice_agent_set_remote_credentials(ice->agent, ice->stream, p->ufrag,
                                         p->pwd))
    return KITH_ERR_ARG;
  GSList *list = NULL;
  for (size_t i = 0; i < p->n_cands; i++) {
    NiceCandidate *nc = cand_to_nice(&p->cands[i], ice->stream);
    if (nc != NULL)
      list = g_slist_prepend(list, nc);
  }
  list = g_slist_reverse(list);
  int n = list != NULL ? nice_agent_set_remote_candidates(
                             ice->agent, ice->stream, COMPONENT, list)
                       : 0;
  g_slist_free_full(list, (GDestroyNotify)nice_candidate_free);
  return n < 0 ? KITH_ERR_ARG : KITH_OK;
}

ssize_t kith_ice_send(kith_ice *ice, const uint8_t *buf, size_t len) {
  if (ice == NULL || ice->dead || !ice->ready || (buf == NULL && len > 0))
    return -1;
  if (len == 0)
    return 0;
  guint n = len > G_MAXINT ? G_MAXINT : (guint)len;
  gint r = nice_agent_send(ice->agent, ice->stream, COMPONENT, n,
                           (const gchar *)buf);
  /* In reliable mode -1 after ready means the pseudo-TCP send buffer is
   * full (or not yet open): nothing taken, reliable-transport-writable
   * follows. */
  return r < 0 ? 0 : (ssize_t)r;
}

const char *kith_ice_path(const kith_ice *ice) {
  return ice != NULL && ice->ready && ice->path[0] ? ice->path : NULL;
}

const char *kith_ice_remote_addr(const kith_ice *ice) {
  return ice != NULL && ice->ready && ice->remote[0] ? ice->remote : NULL;
}

kith_err kith_turn_parse(const char *url, kith_turn *t) {
  kith_turn r = {0};
  const char *at, *colon, *hp, *sep;
  GInetAddress *ia;
  guint64 port = 3478;

  if (!url || !t || !g_str_has_prefix(url, "turn://"))
    return KITH_ERR_ARG;
  url += strlen("turn://");
  at = strrchr(url, '@');
  colon = at ? memchr(url, ':', (size_t)(at - url)) : NULL;
  if (!at || !colon || colon == url || at - colon - 1 < 1 ||
      (size_t)(colon - url) >= sizeof r.user ||
      (size_t)(at - colon - 1) >= sizeof r.pass)
    return KITH_ERR_ARG;
  memcpy(r.user, url, (size_t)(colon - url));
  memcpy(r.pass, colon + 1, (size_t)(at - colon - 1));
  hp = at + 1;
  sep = strrchr(hp, ':');
  if (sep && !strchr(sep + 1, ']')) {
    char *end = NULL;
    port = g_ascii_strtoull(sep + 1, &end, 10);
    if (end == sep + 1 || *end || port == 0 || port > 65535)
      return KITH_ERR_ARG;
  } else {
    sep = hp + strlen(hp);
  }
  if ((size_t)(sep - hp) >= sizeof r.host || sep == hp)
    return KITH_ERR_ARG;
  memcpy(r.host, hp, (size_t)(sep - hp));
  ia = g_inet_address_new_from_string(r.host);
  if (!ia)
    return KITH_ERR_ARG;
  g_object_unref(ia);
  r.port = (uint16_t)port;
  *t = r;
  return KITH_OK;
}
