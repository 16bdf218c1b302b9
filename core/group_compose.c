/* kith: composing local group events (group.h): create, invite, admit,
 * send, remove, leave, role, topic, rekey, and the owed rekeys of
 * kith_group_maintain.
 *
 * Every local event is checked against the current state first (for a
 * precise error), then signed and passed through the same acceptance as a
 * received event (grp_accept), so a local event obeys exactly the rules
 * peers will check. */
#include "group_int.h"

#include <sodium.h>
#include <string.h>

#include "codec.h"
#include "gcrypto.h"
#include "invite.h"

static gint head_cmp(gconstpointer a, gconstpointer b) {
  const grp_entry *x = *(const grp_entry *const *)a;
  const grp_entry *y = *(const grp_entry *const *)b;
  return -grp_entry_cmp(x, y); /* deepest first, then larger id */
}

/* parents = the heads (the 16 deepest if there are more). */
static void choose_parents(const kith_group *g, kith_event *ev) {
  GPtrArray *hs = g_ptr_array_copy(g->heads, NULL, NULL);
  g_ptr_array_sort(hs, head_cmp);
  ev->n_parents = MIN(hs->len, KITH_EVENT_MAX_PARENTS);
  ev->depth = 0;
  for (size_t i = 0; i < ev->n_parents; i++) {
    const grp_entry *p = hs->pdata[i];
    memcpy(ev->parents[i], p->ev.id, 32);
    ev->depth = MAX(ev->depth, p->ev.depth + 1);
  }
  g_ptr_array_free(hs, TRUE);
}

static void start_event(const kith_group *g, kith_event *ev, uint32_t kind,
                        uint64_t now_ms) {
  memset(ev, 0, sizeof *ev);
  ev->kind = kind;
  ev->ts_ms = now_ms;
  memcpy(ev->group_id, g->gid, 32);
  memcpy(ev->author, g->me->pk, 32);
  choose_parents(g, ev);
}

/* Seals inner under key and packs the outer body. */
static kith_err pack_body(const kith_event *ev, const uint8_t *gid,
                          const uint8_t key[KITH_KEY_LEN], uint64_t epoch,
                          uint64_t n, const kith_pack *inner,
                          const uint8_t *extra, size_t extra_len, uint8_t **out,
                          size_t *out_len) {
  uint8_t ad[77];
  grp_make_ad(ev->kind, ev->author, gid, ad);
  size_t sl = inner->sb.size + KITH_SEALED_OVERHEAD;
  uint8_t *sealed = g_malloc(sl);
  kith_gcrypto_seal(key, ad, sizeof ad, (const uint8_t *)inner->sb.data,
                    inner->sb.size, sealed);
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 3);
  kith_pack_uint(&p, epoch);
  if (ev->kind == KITH_EV_MESSAGE)
    kith_pack_uint(&p, n);
  kith_pack_bin(&p, sealed, sl);
  if (ev->kind == KITH_EV_ADD || ev->kind == KITH_EV_REKEY)
    kith_pack_bin(&p, extra, extra_len);
  else if (ev->kind != KITH_EV_MESSAGE)
    kith_pack_nil(&p);
  g_free(sealed);
  kith_err rc =
      inner->failed ? KITH_ERR_NOMEM : kith_pack_take(&p, out, out_len);
  kith_pack_clear(&p);
  if (rc == KITH_OK && *out_len > KITH_EVENT_MAX_BODY) {
    g_free(*out);
    rc = KITH_ERR_LIMIT;
  }
  return rc;
}

/* Key for a local event: the meta key, or the next key of our chain. */
static kith_err compose_key(kith_group *g, uint32_t kind, uint64_t epoch,
                            uint64_t *n, uint8_t key[KITH_KEY_LEN]) {
  if (kind != KITH_EV_MESSAGE)
    return grp_meta_key(g, epoch, key) ? KITH_OK : KITH_ERR_STATE;
  chain_slot *s = grp_chain_get(g, epoch, g->me->pk);
  if (!s)
    return KITH_ERR_STATE;
  *n = s->next_n;
  return kith_chain_key(s->c, *n, key);
}

/* Signs ev (kind, parents, ts set) with body inner/extra in epoch and
 * accepts it; own (moved into the group) is its decoded form. */
static kith_err compose_at(kith_group *g, kith_event *ev, uint64_t epoch,
                           const kith_pack *inner, const uint8_t *extra,
                           size_t extra_len, grp_inner *own, GPtrArray *acc) {
  uint8_t key[KITH_KEY_LEN], *bytes = NULL;
  size_t len = 0;
  uint64_t n = 0;
  kith_err rc = compose_key(g, ev->kind, epoch, &n, key);
  if (rc == KITH_OK)
    rc = pack_body(ev, g->gid, key, epoch, n, inner, extra, extra_len, &bytes,
                   &len);
  sodium_memzero(key, sizeof key);
  if (rc == KITH_OK)
    rc = kith_event_build(ev, g->me, bytes, len);
  g_free(bytes);
  body b = {.epoch = epoch, .n = n};
  if (rc == KITH_OK)
    rc = grp_accept(g, ev, &b, own, acc);
  else
    grp_inner_clear(own);
  kith_event_clear(ev);
  return rc;
}

static uint64_t epoch_at_parents(const kith_group *g, const kith_event *ev) {
  grp_state tmp = {0};
  const grp_state *s = grp_state_at_parents(g, ev, &tmp);
  uint64_t epoch = s->epoch;
  if (s == &tmp)
    grp_state_clear(&tmp);
  return epoch;
}

static kith_err compose(kith_group *g, uint32_t kind, const kith_pack *inner,
                        grp_inner *own, uint64_t now_ms, GPtrArray *acc) {
  kith_event ev;
  start_event(g, &ev, kind, now_ms);
  return compose_at(g, &ev, epoch_at_parents(g, &ev), inner, NULL, 0, own, acc);
}

/* The old single-event interface. */
static kith_err take_one(kith_err rc, GPtrArray *acc, kith_accepted **out) {
  for (guint i = 0; i < acc->len; i++)
    if (rc == KITH_OK && out && i == 0)
      *out = acc->pdata[i];
    else
      kith_accepted_free(acc->pdata[i]);
  g_ptr_array_free(acc, TRUE);
  return rc;
}

static kith_err can_compose(const kith_group *g) {
  if (!g->st.created)
    return KITH_ERR_STATE;
  return grp_state_member(&g->st, g->me->pk) ? KITH_OK : KITH_ERR_NOT_MEMBER;
}

/* The rule of a would-be local event against the current state. */
static kith_err check_local(const kith_group *g, uint32_t kind,
                            const grp_inner *in) {
  kith_err rc = can_compose(g);
  if (rc != KITH_OK)
    return rc;
  grp_entry e = {.ev = {.kind = kind}, .in = *in};
  memcpy(e.ev.author, g->me->pk, 32);
  return grp_state_check(&g->st, &e);
}

kith_err kith_group_send(kith_group *g, const char *text, size_t len,
                         uint64_t now_ms, kith_accepted **out) {
  if (!g || !text || len == 0 || len >= KITH_TEXT_MAX || memchr(text, 0, len) ||
      !g_utf8_validate_len(text, len, NULL))
    return KITH_ERR_ARG;
  kith_err rc = can_compose(g);
  if (rc != KITH_OK)
    return rc;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 1);
  kith_pack_str(&p, text, len);
  grp_inner own = {.text = g_strndup(text, len), .text_len = len};
  GPtrArray *acc = g_ptr_array_new();
  rc = compose(g, KITH_EV_MESSAGE, &p, &own, now_ms, acc);
  kith_pack_clear(&p);
  return take_one(rc, acc, out);
}

kith_err kith_group_invite(kith_group *g, uint32_t uses, uint64_t expires_ms,
                           uint64_t now_ms, uint8_t secret_out[32],
                           kith_accepted **out) {
  if (!g || !secret_out || uses < 1 || uses > KITH_INVITE_MAX_USES ||
      expires_ms <= now_ms)
    return KITH_ERR_ARG;
  grp_inner own = {.uses = uses, .expires = expires_ms};
  randombytes_buf(secret_out, 32);
  kith_invite_public_key(secret_out, own.pk);
  kith_err rc = check_local(g, KITH_EV_INVITE, &own);
  if (rc != KITH_OK)
    return rc;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 3);
  kith_pack_bin(&p, own.pk, 32);
  kith_pack_uint(&p, uses);
  kith_pack_uint(&p, expires_ms);
  GPtrArray *acc = g_ptr_array_new();
  rc = compose(g, KITH_EV_INVITE, &p, &own, now_ms, acc);
  kith_pack_clear(&p);
  return take_one(rc, acc, out);
}

static kith_err check_admit(const kith_group *g, const uint8_t member[32],
                            const char *name, const uint8_t invite_pk[32],
                            const uint8_t join_sig[KITH_SIG_LEN],
                            uint64_t now_ms) {
  kith_err rc = can_compose(g);
  if (rc != KITH_OK)
    return rc;
  if (!grp_name_is_valid(name, strlen(name)))
    return KITH_ERR_ARG;
  rc = grp_state_check_invite(&g->st, invite_pk, now_ms);
  if (rc != KITH_OK)
    return rc;
  rc = kith_invite_verify_join(invite_pk, g->gid, member, join_sig);
  if (rc != KITH_OK)
    return KITH_ERR_SIGNATURE;
  if (grp_state_member(&g->st, member))
    return KITH_ERR_EXISTS;
  return g->st.members->len >= KITH_GROUP_MAX_MEMBERS ? KITH_ERR_LIMIT
                                                      : KITH_OK;
}

/* The add; its extra is every key we hold sealed to the newcomer (only
 * the meta keys with history "joined"). */
static kith_err compose_add(kith_group *g, const uint8_t member[32],
                            const char *name, const uint8_t invite_pk[32],
                            const uint8_t join_sig[KITH_SIG_LEN],
                            uint64_t now_ms, GPtrArray *acc) {
  uint8_t *extra = NULL;
  size_t extra_len = 0;
  kith_err rc = grp_seal_keys(g, member, g->st.history == KITH_HISTORY_JOINED,
                              GROUP_MAX_SECRETS, 0, NULL, &extra, &extra_len);
  grp_inner own = {.name = g_strdup(name)};
  memcpy(own.member, member, 32);
  memcpy(own.pk, invite_pk, 32);
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 4);
  kith_pack_bin(&p, member, 32);
  kith_pack_cstr(&p, name);
  kith_pack_bin(&p, invite_pk, 32);
  kith_pack_bin(&p, join_sig, KITH_SIG_LEN);
  kith_event ev;
  start_event(g, &ev, KITH_EV_ADD, now_ms);
  if (rc == KITH_OK)
    rc = compose_at(g, &ev, epoch_at_parents(g, &ev), &p, extra, extra_len,
                    &own, acc);
  else
    grp_inner_clear(&own);
  kith_pack_clear(&p);
  g_free(extra);
  return rc;
}

kith_err kith_group_admit(kith_group *g, const uint8_t member[32],
                          const char *name, const uint8_t invite_pk[32],
                          const uint8_t join_sig[KITH_SIG_LEN], uint64_t now_ms,
                          GPtrArray *acc) {
  if (!g || !member || !name || !invite_pk || !join_sig || !acc)
    return KITH_ERR_ARG;
  kith_err rc = check_admit(g, member, name, invite_pk, join_sig, now_ms);
  if (rc == KITH_OK)
    rc = compose_add(g, member, name, invite_pk, join_sig, now_ms, acc);
  /* joined: the newcomer's first epoch starts after its admission. If
   * this rekey fails, kith_group_maintain makes it later. */
  if (rc == KITH_OK && g->st.history == KITH_HISTORY_JOINED)
    (void)grp_compose_rekey(g, now_ms, acc);
  return rc;
}

kith_err kith_group_check_invite(const kith_group *g,
                                 const uint8_t invite_pk[32], uint64_t now_ms) {
  if (!g || !invite_pk)
    return KITH_ERR_ARG;
  return grp_state_check_invite(&g->st, invite_pk, now_ms);
}

/* ---- create ---- */

static int options_valid(const kith_group_options *o) {
  return o && o->name && grp_name_is_valid(o->name, strlen(o->name)) &&
         o->owner_name &&
         grp_name_is_valid(o->owner_name, strlen(o->owner_name)) &&
         (o->history == KITH_HISTORY_SHARED ||
          o->history == KITH_HISTORY_JOINED);
}

static kith_err create_event(const kith_ident *me, const kith_group_options *o,
                             uint64_t now_ms, const uint8_t secret[32],
                             uint64_t epoch, kith_event *ev) {
  uint8_t key[KITH_KEY_LEN], *bytes = NULL;
  size_t len = 0;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 4);
  kith_pack_cstr(&p, o->name);
  kith_pack_uint(&p, o->history);
  kith_pack_cstr(&p, o->owner_name);
  kith_pack_uint(&p, o->admins_only_invites ? 1 : 0);
  ev->kind = KITH_EV_CREATE;
  ev->ts_ms = now_ms;
  memcpy(ev->author, me->pk, 32);
  kith_gcrypto_meta_key(secret, key);
  kith_err rc = pack_body(ev, NULL, key, epoch, 0, &p, NULL, 0, &bytes, &len);
  sodium_memzero(key, sizeof key);
  kith_pack_clear(&p);
  if (rc == KITH_OK)
    rc = kith_event_build(ev, me, bytes, len);
  g_free(bytes);
  return rc;
}

kith_err kith_group_create(const kith_ident *me, const kith_group_options *opt,
                           uint64_t now_ms, kith_group **g_out,
                           kith_accepted **out) {
  if (!me || !g_out || !options_valid(opt))
    return KITH_ERR_ARG;
  uint8_t secret[32], meta[KITH_KEY_LEN];
  kith_event ev = {0};
  randombytes_buf(secret, sizeof secret);
  kith_gcrypto_meta_key(secret, meta);
  uint64_t epoch = kith_gcrypto_epoch_id(meta);
  sodium_memzero(meta, sizeof meta);
  kith_err rc = create_event(me, opt, now_ms, secret, epoch, &ev);
  kith_group *g = rc == KITH_OK ? kith_group_new(ev.id, me) : NULL;
  if (rc == KITH_OK && !g)
    rc = KITH_ERR_NOMEM;
  if (rc == KITH_OK) {
    (void)grp_add_key(g, epoch, secret, 1);
    grp_inner own = {.name = g_strdup(opt->name),
                     .owner_name = g_strdup(opt->owner_name),
                     .history = opt->history,
                     .admins_only = opt->admins_only_invites ? 1 : 0};
    body b = {.epoch = epoch};
    GPtrArray *acc = g_ptr_array_new();
    rc = take_one(grp_accept(g, &ev, &b, &own, acc), acc, out);
  }
  sodium_memzero(secret, sizeof secret);
  kith_event_clear(&ev);
  if (rc != KITH_OK) {
    kith_group_free(g);
    return rc;
  }
  *g_out = g;
  return KITH_OK;
}

/* ---- membership, roles, topic ---- */

static kith_err simple_event(kith_group *g, uint32_t kind, kith_pack *p,
                             grp_inner *own, uint64_t now_ms, GPtrArray *acc) {
  kith_err rc = check_local(g, kind, own);
  if (rc == KITH_OK)
    rc = compose(g, kind, p, own, now_ms, acc);
  else
    grp_inner_clear(own);
  kith_pack_clear(p);
  return rc;
}

kith_err kith_group_remove(kith_group *g, const uint8_t member[32],
                           uint64_t now_ms, GPtrArray *acc) {
  if (!g || !member || !acc)
    return KITH_ERR_ARG;
  grp_inner own = {0};
  memcpy(own.member, member, 32);
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 1);
  kith_pack_bin(&p, member, 32);
  kith_err rc = simple_event(g, KITH_EV_REMOVE, &p, &own, now_ms, acc);
  /* post-removal secrecy: a new epoch the removed member does not get. If
   * this fails, kith_group_maintain retries (we are the rekeyer). */
  if (rc == KITH_OK)
    (void)grp_compose_rekey(g, now_ms, acc);
  return rc;
}

kith_err kith_group_leave(kith_group *g, uint64_t now_ms, GPtrArray *acc) {
  if (!g || !acc)
    return KITH_ERR_ARG;
  grp_inner own = {0};
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 0);
  return simple_event(g, KITH_EV_LEAVE, &p, &own, now_ms, acc);
}

kith_err kith_group_set_role(kith_group *g, const uint8_t member[32],
                             kith_role role, uint64_t now_ms, GPtrArray *acc) {
  if (!g || !member || !acc || (unsigned)role > KITH_ROLE_OWNER)
    return KITH_ERR_ARG;
  grp_inner own = {.role = role};
  memcpy(own.member, member, 32);
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 2);
  kith_pack_bin(&p, member, 32);
  kith_pack_uint(&p, role);
  return simple_event(g, KITH_EV_ROLE, &p, &own, now_ms, acc);
}

kith_err kith_group_set_topic(kith_group *g, const char *topic, size_t len,
                              uint64_t now_ms, GPtrArray *acc) {
  if (!g || !acc || (!topic && len) ||
      !grp_topic_is_valid(topic ? topic : "", len))
    return KITH_ERR_ARG;
  grp_inner own = {.text = g_strndup(topic ? topic : "", len), .text_len = len};
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 1);
  kith_pack_str(&p, topic ? topic : "", len);
  return simple_event(g, KITH_EV_TOPIC, &p, &own, now_ms, acc);
}

/* ---- rekey ---- */

/* One box per member of s, in id order: the new secret, plus (for a member
 * who missed the current epoch, e.g. admitted concurrently with a rekey)
 * the most recent older keys, as meta keys only with history "joined". */
static kith_err pack_boxes(const kith_group *g, const grp_state *s,
                           uint64_t epoch, const uint8_t secret[32],
                           kith_pack *x) {
  kith_err rc = KITH_OK;
  kith_pack_array(x, s->members->len);
  for (guint i = 0; rc == KITH_OK && i < s->members->len; i++) {
    const kith_member *m = g_ptr_array_index(s->members, i);
    uint8_t *box = NULL;
    size_t len = 0;
    size_t more = grp_state_is_holder(s, m->id) ? 0 : GROUP_CATCHUP_MAX;
    rc = grp_seal_keys(g, m->id, s->history == KITH_HISTORY_JOINED, more, epoch,
                       secret, &box, &len);
    if (rc == KITH_OK)
      kith_pack_bin(x, box, len);
    g_free(box);
  }
  return rc == KITH_OK && x->failed ? KITH_ERR_NOMEM : rc;
}

static void own_holders(const grp_state *s, grp_inner *own) {
  own->n_holders = s->members->len;
  own->holders = g_malloc(32 * (s->members->len + 1));
  for (guint i = 0; i < s->members->len; i++)
    memcpy(own->holders + 32 * i,
           ((kith_member *)g_ptr_array_index(s->members, i))->id, 32);
}

static kith_err rekey_at(kith_group *g, kith_event *ev, const grp_state *s,
                         GPtrArray *acc) {
  uint8_t secret[32], meta[KITH_KEY_LEN];
  randombytes_buf(secret, sizeof secret);
  kith_gcrypto_meta_key(secret, meta);
  grp_inner own = {.new_epoch = kith_gcrypto_epoch_id(meta)};
  sodium_memzero(meta, sizeof meta);
  kith_pack x, p;
  kith_pack_init(&x);
  kith_pack_init(&p);
  kith_pack_array(&p, 1);
  kith_pack_uint(&p, own.new_epoch);
  kith_err rc = pack_boxes(g, s, own.new_epoch, secret, &x);
  own_holders(s, &own);
  uint64_t epoch = s->epoch;
  if (rc == KITH_OK && !grp_add_key(g, own.new_epoch, secret, 1))
    rc = KITH_ERR_LIMIT;
  sodium_memzero(secret, sizeof secret);
  if (rc == KITH_OK)
    rc = compose_at(g, ev, epoch, &p, (const uint8_t *)x.sb.data, x.sb.size,
                    &own, acc);
  else
    grp_inner_clear(&own);
  kith_pack_clear(&x);
  kith_pack_clear(&p);
  return rc;
}

kith_err grp_compose_rekey(kith_group *g, uint64_t now_ms, GPtrArray *acc) {
  kith_err rc = can_compose(g);
  if (rc != KITH_OK)
    return rc;
  if (g->n_secrets >= GROUP_MAX_SECRETS)
    return KITH_ERR_LIMIT;
  kith_event ev;
  start_event(g, &ev, KITH_EV_REKEY, now_ms);
  grp_state tmp = {0};
  const grp_state *s = grp_state_at_parents(g, &ev, &tmp);
  uint8_t meta[KITH_KEY_LEN];
  if (!grp_state_member(s, g->me->pk))
    rc = KITH_ERR_NOT_MEMBER;
  else if (!grp_meta_key(g, s->epoch, meta))
    rc = KITH_ERR_STATE;
  sodium_memzero(meta, sizeof meta);
  if (rc == KITH_OK)
    rc = rekey_at(g, &ev, s, acc);
  if (s == &tmp)
    grp_state_clear(&tmp);
  kith_event_clear(&ev);
  if (rc == KITH_OK)
    g->last_rekey_ms = now_ms ? now_ms : 1;
  return rc;
}

kith_err kith_group_rekey(kith_group *g, uint64_t now_ms, GPtrArray *acc) {
  if (!g || !acc)
    return KITH_ERR_ARG;
  return grp_compose_rekey(g, now_ms, acc);
}

/* Concurrency rule 7 (group_state.c): the designated rekeyer at once,
 * everyone else after the grace period; at most one of ours per period. */
kith_err kith_group_maintain(kith_group *g, uint64_t now_ms, GPtrArray *acc) {
  if (!g || !acc)
    return KITH_ERR_ARG;
  const grp_state *s = &g->st;
  if (!s->created || !grp_state_member(s, g->me->pk) || !grp_state_rekey_due(s))
    return KITH_OK;
  const uint8_t *who = grp_state_rekeyer(s);
  int mine = who && memcmp(who, g->me->pk, 32) == 0;
  /* The designated member rekeys for every change at once (a kick and a
   * leave a moment later are two rekeys); the others wait out the grace
   * period, and make at most one rekey per period. */
  if (!mine && now_ms < s->change_ts + KITH_REKEY_GRACE_MS)
    return KITH_OK;
  if ((!mine || g->rekey_failed) && g->last_rekey_ms &&
      now_ms < g->last_rekey_ms + KITH_REKEY_GRACE_MS)
    return KITH_OK;
  kith_err rc = grp_compose_rekey(g, now_ms, acc);
  g->rekey_failed = rc != KITH_OK;
  if (rc != KITH_OK)
    g->last_rekey_ms = now_ms ? now_ms : 1; /* do not retry every second */
  return rc;
}
