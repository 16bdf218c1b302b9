/* kith: joining a group by invite code, on both sides.
 *
 * The joiner sends its offer to the inviter's signal port with a join
 * request [group id, invite pk, join proof, name]. The member that gets it
 * checks the invite against its group state, admits the joiner (an add
 * event carrying the group secrets sealed to the joiner) and answers; the
 * link comes up, the joiner's gossip engine for the group (running since
 * the join started) reconciles with the admitter and asks for everything,
 * and the join is done when the joiner accepts its own admission, which it
 * can only do once it holds the history that admission stands on. */
#include <inttypes.h>
#include <sodium.h>
#include <string.h>
#include <time.h>

#include "../core/codec.h"
#include "node_int.h"

void join_free(node_join *j) {
  sodium_memzero(&j->inv, sizeof j->inv);
  g_free(j);
}

static void progress(node_join *j, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void progress(node_join *j, const char *fmt, ...) {
  va_list ap;
  char *text;
  kith_pack pk;
  uint8_t *buf;
  size_t len;

  va_start(ap, fmt);
  text = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  kith_pack_init(&pk);
  kith_pack_array(&pk, 1);
  kith_pack_cstr(&pk, text);
  if (kith_pack_take(&pk, &buf, &len) == KITH_OK) {
    kith_rpc_notify_caller(j->call, "progress", buf, len);
    g_free(buf);
  }
  g_free(text);
}

/* The refusal of a node that cannot admit anyone to the group (it is not,
 * or no longer, a member): the joiner tries the other ways in. */
static const char JOIN_NOT_MEMBER[] = "this node is not a member of that group";

static const char *admit_error(kith_err err) {
  switch (err) {
  case KITH_ERR_NOT_FOUND:
    return "the invite code is not valid for this group (revoked, or its "
           "maker was removed)";
  case KITH_ERR_FORBIDDEN:
    return "this node is banned from the group; an owner or admin can lift "
           "the ban (kith unban)";
  case KITH_ERR_EXPIRED:
    return "the invite code has expired; ask for a new one";
  case KITH_ERR_USED_UP:
    return "the invite code has been used up; ask for a new one";
  case KITH_ERR_SIGNATURE:
    return "the invite proof is invalid";
  case KITH_ERR_LIMIT:
    return "the group is full";
  case KITH_ERR_EXISTS:
    return "this node is a member already";
  default:
    return "the admission failed";
  }
}

/* Remembers the events that admitted a joiner (the add, and with history
 * "joined" the rekey), to send them to it first when its link comes up:
 * they carry its keys, without which it holds every event of the history
 * it is about to ask for (join_send_admission). */
static void note_admission(kith_node *n, node_group *ng, const uint8_t who[32],
                           GPtrArray *list) {
  char text[KITH_ID_TEXT_LEN + 1];
  node_admission *a = g_new0(node_admission, 1);

  memcpy(a->gid, kith_group_id(ng->g), 32);
  a->until_ms = node_now() + ADMISSION_KEEP_MS;
  a->ids = g_byte_array_new();
  for (guint i = 0; i < list->len; i++)
    g_byte_array_append(a->ids, ((kith_accepted *)list->pdata[i])->ev.id, 32);
  kith_id_to_text(who, text);
  if (g_hash_table_size(n->admissions) < ADMISSIONS_MAX)
    g_hash_table_replace(n->admissions, g_strdup(text), a);
  else
    node_admission_free(a);
}

void node_admission_free(node_admission *a) {
  g_byte_array_unref(a->ids);
  g_free(a);
}

int node_is_joining(kith_node *n, node_group *ng) {
  for (guint i = 0; i < n->joins->len; i++)
    if (memcmp(((node_join *)n->joins->pdata[i])->inv.group_id,
               kith_group_id(ng->g), 32) == 0)
      return 1;
  return 0;
}

/* Sends the accepted event id to p through the group's engine. */
static void send_event(kith_node *n, node_group *ng, node_peer *p,
                       const uint8_t id[32], kith_out *o) {
  uint64_t ts;
  GBytes *raw = node_event_raw(n, ng, id, &ts);
  gsize len;
  const uint8_t *data = raw ? g_bytes_get_data(raw, &len) : NULL;

  if (data && kith_gossip_send_payload(ng->gs, p->id, data, len, o) != KITH_OK)
    n->dropped_frames++;
  if (raw)
    g_bytes_unref(raw);
}

/* The group's create (its id is the group id) goes first: every event of
 * the history stands on it, and a joiner that has not got it holds them
 * all (its engine and its group hold only so many; protocol.md 8.6). */
void join_send_admission(kith_node *n, node_group *ng, node_peer *p,
                         kith_out *o) {
  node_admission *a = g_hash_table_lookup(n->admissions, p->id_text);

  if (!a || memcmp(a->gid, kith_group_id(ng->g), 32) != 0 || !ng->gs)
    return;
  send_event(n, ng, p, kith_group_id(ng->g), o);
  for (guint i = 0; i + 32 <= a->ids->len; i += 32)
    send_event(n, ng, p, a->ids->data + i, o);
}

static gboolean admission_expired(gpointer k, gpointer v, gpointer now) {
  return ((node_admission *)v)->until_ms <= *(uint64_t *)now;
}

/* The admission is written before the joiner hears of it; if it cannot
 * be, the joiner is refused (and may try another member). */
static const char *admitted(kith_node *n, node_group *ng, const uint8_t who[32],
                            GPtrArray *list) {
  char text[KITH_ID_TEXT_LEN + 1];
  kith_err err;

  note_admission(n, ng, who, list);
  err = node_local_end(n, ng, list, 0);
  kith_id_to_text(who, text);
  if (err != KITH_OK)
    return err == KITH_ERR_FULL
               ? "this member's disk is full; try again later"
               : "this member cannot write its store; try again later";
  node_log(n, "admitted %.8s to group %.8s", text, ng->id_text);
  return NULL;
}

const char *join_on_offer(kith_node *n, const uint8_t from[32],
                          const uint8_t *join, size_t join_len) {
  kith_wire_join req;
  node_group *ng;
  GPtrArray *acc;
  kith_err err;

  if (kith_wire_join_decode(join, join_len, &req) != KITH_OK)
    return "malformed join request";
  ng = node_group_get(n, req.gid);
  if (!ng || !kith_group_is_member(ng->g, n->me.pk))
    return JOIN_NOT_MEMBER;
  if (kith_group_is_member(ng->g, from))
    return NULL; /* a retry after a lost answer: already admitted */
  acc = g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
  node_local_begin(n);
  err = kith_group_admit(ng->g, from, req.name, req.invite_pk, req.sig,
                         node_wall_ms(), acc);
  const char *refusal =
      err == KITH_OK ? admitted(n, ng, from, acc) : admit_error(err);
  if (err != KITH_OK)
    (void)node_local_end(n, ng, acc, 0); /* what it wrote: nothing */
  g_ptr_array_unref(acc);
  return refusal;
}

static node_join *find_join(kith_node *n, const uint8_t inviter[32]) {
  for (guint i = 0; i < n->joins->len; i++) {
    node_join *j = n->joins->pdata[i];
    if (memcmp(j->target, inviter, KITH_ID_LEN) == 0)
      return j;
  }
  return NULL;
}

static int joining_group(kith_node *n, const uint8_t gid[32]) {
  for (guint i = 0; i < n->joins->len; i++)
    if (memcmp(((node_join *)n->joins->pdata[i])->inv.group_id, gid, 32) == 0)
      return 1;
  return 0;
}

/* The main thread's CPU time (us): how busy the main loop was. */
static uint64_t thread_cpu_us(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
    return 0;
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ms from t to x, or 0 if x has not happened (0). */
static uint64_t since(uint64_t x, uint64_t t) {
  return x ? x - t : 0;
}

/* Where a join's time went, as this node saw it (docs/performance.md, "A
 * newcomer's history over a real link"): the phases from the request
 * (ms), and the main loop's CPU time meanwhile, with the part spent on
 * the frames of sessions (the ingest of the history) and on store
 * commits. The rest of the wall time the main loop waited. */
static void join_log(kith_node *n, const node_join *j, const node_group *ng) {
  uint64_t t = j->t_start;
  node_log(
      n,
      "join of %.8s: %" PRIu64 " ms; link up +%" PRIu64
      " ms, first event +%" PRIu64 " ms, last +%" PRIu64 " ms, %" PRIu64
      " events; main loop CPU %" PRIu64 " ms (session frames %" PRIu64
      " ms, store commits %" PRIu64 " ms); %" PRIu64
      " events' signatures checked on the crypto worker",
      ng->id_text, node_now() - t, since(j->t_link, t), since(j->t_first, t),
      since(j->t_last, t), j->events, (thread_cpu_us() - j->cpu0_us) / 1000,
      (n->frames_us - j->frames0_us) / 1000,
      (n->commit_us - j->commit0_us) / 1000, n->checked_events - j->checked0);
}

void join_note_accepted(kith_node *n, node_group *ng, size_t k) {
  for (guint i = 0; k > 0 && i < n->joins->len; i++) {
    node_join *j = n->joins->pdata[i];
    if (memcmp(j->inv.group_id, kith_group_id(ng->g), KITH_ID_LEN) != 0)
      continue;
    j->t_last = node_now();
    j->t_first = j->t_first ? j->t_first : j->t_last;
    j->events += k;
  }
}

/* Ends a join: replies to the caller (error when msg != NULL) and, if we
 * were not admitted, forgets the group we had started to hold. */
static void finish(kith_node *n, node_join *j, kith_err code, const char *msg) {
  node_group *ng = node_group_get(n, j->inv.group_id);
  char text[KITH_ID_TEXT_LEN + 1];
  node_peer *p;

  kith_id_to_text(j->target, text);
  p = g_hash_table_lookup(n->peers, text);
  g_ptr_array_remove(n->joins, j);
  if (msg) {
    kith_rpc_error(j->call, code, "%s", msg);
    if (p && p->state != PEER_UP)
      peer_close(p, "join ended");
    if (ng && !kith_group_is_member(ng->g, n->me.pk)) {
      g_hash_table_remove(n->groups, ng->id_text);
      node_store_flush(n);
      if (kith_store_drop_group(n->store, j->inv.group_id) != KITH_OK)
        node_log(n, "could not forget a group we did not join");
    }
  } else {
    kith_pack pk;
    uint8_t *buf;
    size_t len;

    join_log(n, j, ng);
    kith_pack_init(&pk);
    msgpack_pack_map(&pk.pk, 2);
    kith_pack_cstr(&pk, "group_id");
    kith_pack_cstr(&pk, ng->id_text);
    kith_pack_cstr(&pk, "name");
    kith_pack_cstr(&pk, kith_group_name(ng->g));
    if (kith_pack_take(&pk, &buf, &len) == KITH_OK) {
      kith_rpc_reply(j->call, buf, len);
      g_free(buf);
    } else {
      kith_rpc_error(j->call, KITH_ERR_NOMEM, "out of memory");
    }
  }
  join_free(j);
}

static kith_err pack_request(kith_node *n, node_join *j, uint8_t **out,
                             size_t *len) {
  uint8_t pk_inv[32], sig[KITH_SIG_LEN];
  kith_pack pk;

  kith_invite_public_key(j->inv.secret, pk_inv);
  kith_invite_sign_join(j->inv.secret, j->inv.group_id, n->me.pk, sig);
  kith_pack_init(&pk);
  kith_pack_array(&pk, 4);
  kith_pack_bin(&pk, j->inv.group_id, 32);
  kith_pack_bin(&pk, pk_inv, 32);
  kith_pack_bin(&pk, sig, KITH_SIG_LEN);
  kith_pack_cstr(&pk, n->name);
  return kith_pack_take(&pk, out, len);
}

/* The ways in, tried in turn every JOIN_RETRY_MS: way 0 is the inviter,
 * every way at once (its addresses, its public addresses and its relay
 * friends: protocol.md 9.4); way k > 0 is the k-th other member the code
 * names (any member can admit), at its address. */
static size_t n_ways(const node_join *j) {
  return 1 + j->inv.n_others;
}

/* The inviter, every way at once. The relay friends of the code that we
 * have no link to yet are linked first; the offer goes through each as it
 * comes up (join_on_link_up). */
static void try_inviter(kith_node *n, node_join *j, const uint8_t *req,
                        size_t len) {
  char text[KITH_ID_TEXT_LEN + 1];
  node_peer *p = peer_find(n, j->inv.inviter);
  const kith_addr *first = j->inv.n_addrs    ? &j->inv.addrs[0]
                           : j->inv.n_public ? &j->inv.public_addrs[0]
                                             : NULL;

  kith_id_to_text(j->inv.inviter, text);
  if (p && (!p->offerer || !p->join || p->state > PEER_OFFERED))
    return; /* on its way up (or up): nothing to re-send */
  if (!p) {
    progress(j, "contacting the inviter %.8s%s%s", text, first ? " at " : "",
             first ? first->host : "");
    p = peer_connect(n, j->inv.inviter, first ? first->host : NULL,
                     first ? first->port : 0, req, len);
  }
  for (size_t i = 0; p && i < j->inv.n_addrs; i++)
    peer_reoffer(p, j->inv.addrs[i].host, j->inv.addrs[i].port);
  for (size_t i = 0; p && i < j->inv.n_public; i++)
    peer_reoffer(p, j->inv.public_addrs[i].host, j->inv.public_addrs[i].port);
  for (size_t i = 0; i < j->inv.n_relays; i++) {
    const kith_invite_member *relay = &j->inv.relays[i];
    node_peer *r = peer_find(n, relay->id);
    if (!r) {
      char rtext[KITH_ID_TEXT_LEN + 1];
      kith_id_to_text(relay->id, rtext);
      progress(j, "contacting the relay friend %.8s at %s:%u", rtext,
               relay->addr.host, relay->addr.port);
      peer_connect(n, relay->id, relay->addr.host, relay->addr.port, NULL, 0);
    } else if (peer_is_up(r) && !p) {
      p = peer_connect_via(n, j->inv.inviter, r, req, len);
    } else if (peer_is_up(r)) {
      peer_offer_via(p, r);
    }
  }
}

/* Sends (or re-sends) the join offer to the next way in. */
static void try_next_addr(kith_node *n, node_join *j, uint64_t now) {
  char text[KITH_ID_TEXT_LEN + 1];
  size_t k = j->next_addr++ % n_ways(j);
  const uint8_t *id = k ? j->inv.others[k - 1].id : j->inv.inviter;
  const kith_addr *a = k ? &j->inv.others[k - 1].addr : NULL;
  node_peer *p;
  uint8_t *req;
  size_t len;

  j->next_try_ms = now + JOIN_RETRY_MS;
  if (memcmp(id, n->me.pk, KITH_ID_LEN) == 0)
    return;
  if (memcmp(id, j->target, KITH_ID_LEN) != 0) {
    /* Moving on to another member: drop the attempt at the last one. */
    p = peer_find(n, j->target);
    if (p && p->state != PEER_UP)
      peer_close(p, "trying another member");
    memcpy(j->target, id, KITH_ID_LEN);
  }
  if (pack_request(n, j, &req, &len) != KITH_OK)
    return;
  if (!a) {
    try_inviter(n, j, req, len);
    g_free(req);
    return;
  }
  kith_id_to_text(id, text);
  p = peer_find(n, id);
  if (p && p->offerer && p->join && p->state <= PEER_OFFERED)
    peer_reoffer(p, a->host, a->port);
  else if (!p) {
    progress(j, "contacting the member %.8s at %s:%u", text, a->host, a->port);
    peer_connect(n, id, a->host, a->port, req, len);
  }
  g_free(req);
}

void join_on_link_up(kith_node *n, node_peer *p) {
  for (guint i = 0; i < n->joins->len; i++) {
    node_join *j = n->joins->pdata[i];
    uint8_t *req;
    size_t len;

    if (!j->t_link && memcmp(p->id, j->target, KITH_ID_LEN) == 0)
      j->t_link = node_now();
    if (j->admitted || memcmp(j->target, j->inv.inviter, KITH_ID_LEN) != 0)
      continue;
    for (size_t k = 0; k < j->inv.n_relays; k++) {
      if (memcmp(j->inv.relays[k].id, p->id, KITH_ID_LEN) != 0 ||
          pack_request(n, j, &req, &len) != KITH_OK)
        continue;
      try_inviter(n, j, req, len); /* now through this relay too */
      g_free(req);
    }
  }
}

static const char *invite_error(kith_err err) {
  switch (err) {
  case KITH_ERR_CHECKSUM:
    return "the invite code is mistyped (its checksum does not match); "
           "copy it again in full";
  case KITH_ERR_ARG:
    return "this is not a kith invite code (it starts with kith: and holds "
           "only letters, digits, - and _)";
  default:
    return "the invite code is damaged (it decodes to invalid data); ask "
           "for a new one";
  }
}

void join_start(kith_node *n, kith_rpc_call *call, const char *code,
                uint64_t timeout_s) {
  node_join *j = g_new0(node_join, 1);
  node_group *ng;
  kith_err err = kith_invite_decode(code, &j->inv);
  char text[KITH_ID_TEXT_LEN + 1];
  node_peer *p;

  j->call = call;
  if (err != KITH_OK) {
    kith_rpc_error(call, KITH_ERR_ARG, "%s", invite_error(err));
    join_free(j);
    return;
  }
  ng = node_group_get(n, j->inv.group_id);
  if (ng && kith_group_is_member(ng->g, n->me.pk)) {
    kith_rpc_error(call, KITH_ERR_EXISTS, "you are already a member of %s",
                   kith_group_name(ng->g));
    join_free(j);
    return;
  }
  if (memcmp(j->inv.inviter, n->me.pk, KITH_ID_LEN) == 0 ||
      joining_group(n, j->inv.group_id)) {
    kith_rpc_error(call, KITH_ERR_STATE,
                   memcmp(j->inv.inviter, n->me.pk, KITH_ID_LEN) == 0
                       ? "this invite code was made by this node"
                       : "a join of this group is already running");
    join_free(j);
    return;
  }
  if (!ng) {
    kith_group *g = kith_group_new(j->inv.group_id, &n->me);
    /* whatever an earlier attempt left behind goes first */
    if (kith_store_drop_group(n->store, j->inv.group_id) != KITH_OK ||
        kith_group_attach_store(g, n->store) != KITH_OK) {
      kith_group_free(g);
      kith_rpc_error(call, KITH_ERR_IO, "cannot write the store");
      join_free(j);
      return;
    }
    node_group_add(n, g);
  }
  memcpy(j->target, j->inv.inviter, KITH_ID_LEN);
  kith_id_to_text(j->target, text);
  /* An existing link cannot carry the join request: start a new one. */
  p = g_hash_table_lookup(n->peers, text);
  if (p)
    peer_close(p, "reconnecting to join a group");
  j->deadline_ms = node_now() + timeout_s * KITH_SECOND;
  j->t_start = node_now();
  j->cpu0_us = thread_cpu_us();
  j->frames0_us = n->frames_us;
  j->checked0 = n->checked_events;
  j->commit0_us = n->commit_us;
  g_ptr_array_add(n->joins, j);
  /* Its engine runs from now: the history comes through it. */
  gossip_group_update(n, node_group_get(n, j->inv.group_id));
  try_next_addr(n, j, node_now());
}

void join_tick(kith_node *n, uint64_t now) {
  g_hash_table_foreach_remove(n->admissions, admission_expired, &now);
  for (guint i = n->joins->len; i-- > 0;) {
    node_join *j = n->joins->pdata[i];

    if (!kith_rpc_is_alive(j->call)) {
      finish(n, j, KITH_ERR_STATE, "the client went away");
    } else if (now >= j->deadline_ms) {
      finish(n, j, KITH_ERR_TIMEOUT,
             j->admitted ? "admitted, but the history did not arrive in time"
                         : "no answer from the inviter in time; is its node "
                           "running and reachable?");
    } else if (!j->admitted && now >= j->next_try_ms) {
      try_next_addr(n, j, now);
    }
  }
}

void join_on_refuse(kith_node *n, const uint8_t from[32], const char *reason) {
  node_join *j = find_join(n, from);
  char *msg;

  if (!j || j->admitted)
    return;
  if (strcmp(reason, JOIN_NOT_MEMBER) == 0 &&
      memcmp(from, j->inv.inviter, KITH_ID_LEN) == 0 && j->inv.n_others > 0 &&
      j->next_addr <= j->inv.n_others) {
    /* the inviter cannot admit (it left or was removed): the other members
     * the code names can, if the invite is still good */
    j->next_addr = MAX(j->next_addr, 1);
    try_next_addr(n, j, node_now());
    return;
  }
  msg = g_strdup_printf("the join was refused: %s", reason);
  finish(n, j, KITH_ERR_FORBIDDEN, msg);
  g_free(msg);
}

/* A join is done once the joiner has accepted its own admission: an event
 * is accepted only once every event it names as a parent is, so the whole
 * history the admitter held when it admitted us has come by then (through
 * the engine's reconciliation with the join target, gossip.c). The group
 * is then written to the store before the client hears of it. */
void join_check_progress(kith_node *n) {
  for (guint i = n->joins->len; i-- > 0;) {
    node_join *j = n->joins->pdata[i];
    node_group *ng = node_group_get(n, j->inv.group_id);
    kith_err err;

    if (!ng || j->admitted || !kith_group_is_ready(ng->g) ||
        !kith_group_is_member(ng->g, n->me.pk))
      continue;
    j->admitted = 1;
    err = kith_store_put_group(n->store, j->inv.group_id);
    err = err ? err : node_store_flush(n);
    if (err != KITH_OK) {
      finish(n, j, err,
             err == KITH_ERR_FULL
                 ? "disk full: admitted, but this node cannot keep the "
                   "group; free some space and join again"
                 : "admitted, but this node cannot write its store");
      continue;
    }
    node_log(n, "joined group %.8s", ng->id_text);
    finish(n, j, KITH_OK, NULL);
    gossip_group_update(n, ng);
  }
}
