/* kith: composing local group events (group.h): the signing machinery,
 * create, send, react, edit, delete, invite and admit. Changes to
 * membership, roles and settings, rekeys and kith_group_maintain are in
 * group_admin.c.
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

/* Deepest first, then the larger id. */
static gint head_cmp(gconstpointer a, gconstpointer b) {
  const grp_sum *x = *(const grp_sum *const *)a;
  const grp_sum *y = *(const grp_sum *const *)b;
  if (x->depth != y->depth)
    return x->depth > y->depth ? -1 : 1;
  return -memcmp(x->id, y->id, 32);
}

static gint id_order(gconstpointer a, gconstpointer b) {
  return memcmp((*(const grp_sum *const *)a)->id,
                (*(const grp_sum *const *)b)->id, 32);
}

/* parents = the heads; beyond KITH_EVENT_MAX_PARENTS, the deepest ones
 * and the GRP_OLD_PARENTS shallowest (so that stray old branches merge
 * over time instead of piling up). */
#define GRP_OLD_PARENTS 4
static void choose_parents(kith_group *g, kith_event *ev) {
  GPtrArray *hs = g_ptr_array_new();
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, g->heads);
  while (g_hash_table_iter_next(&it, NULL, &v))
    g_ptr_array_add(hs, v);
  g->stats.head_steps += hs->len;
  g_ptr_array_sort(hs, head_cmp);
  if (hs->len > KITH_EVENT_MAX_PARENTS) {
    guint keep = KITH_EVENT_MAX_PARENTS - GRP_OLD_PARENTS;
    for (guint i = 0; i < GRP_OLD_PARENTS; i++)
      hs->pdata[keep + i] = hs->pdata[hs->len - GRP_OLD_PARENTS + i];
    g_ptr_array_set_size(hs, KITH_EVENT_MAX_PARENTS);
  }
  g_ptr_array_sort(hs, id_order);
  ev->n_parents = hs->len;
  ev->depth = 0;
  uint64_t ts = 0;
  for (size_t i = 0; i < ev->n_parents; i++) {
    const grp_sum *p = hs->pdata[i];
    memcpy(ev->parents[i], p->id, 32);
    ev->depth = MAX(ev->depth, p->depth + 1);
    ts = MAX(ts, p->ts);
  }
  if (ev->n_parents)
    ev->ts_ms = grp_child_ts(ev->ts_ms, ts);
  g_ptr_array_free(hs, TRUE);
}

void grp_start_event(kith_group *g, kith_event *ev, uint32_t kind,
                     uint64_t now_ms) {
  memset(ev, 0, sizeof *ev);
  ev->version = g->event_version;
  ev->kind = kind;
  ev->ts_ms = now_ms;
  memcpy(ev->group_id, g->gid, 32);
  memcpy(ev->author, g->me->pk, 32);
  choose_parents(g, ev);
}

/* Seals inner under key: a message key is used once, so a short body
 * (version 2, message-like) derives its nonce instead of sending it;
 * ev's parents and ts_ms are final here. */
static uint8_t *seal_inner(const kith_event *ev, const uint8_t *gid,
                           const uint8_t key[KITH_KEY_LEN], uint64_t n,
                           const kith_pack *inner, size_t *sl) {
  uint8_t ad[77], nonce[KITH_NONCE_LEN];
  const uint8_t *pt = (const uint8_t *)inner->sb.data;
  int short_body = grp_body_is_short(ev->version, ev->kind);
  grp_make_ad(ev->kind, ev->author, gid, ad);
  *sl = inner->sb.size + (short_body ? KITH_AEAD_TAG : KITH_SEALED_OVERHEAD);
  uint8_t *sealed = g_malloc(*sl);
  if (short_body) {
    grp_message_nonce(ev, n, nonce);
    kith_gcrypto_seal_at(key, nonce, ad, sizeof ad, pt, inner->sb.size, sealed);
  } else {
    kith_gcrypto_seal(key, ad, sizeof ad, pt, inner->sb.size, sealed);
  }
  return sealed;
}

/* Seals inner under key and packs the outer body. */
static kith_err pack_body(const kith_event *ev, const uint8_t *gid,
                          const uint8_t key[KITH_KEY_LEN], uint64_t epoch,
                          uint64_t n, const kith_pack *inner,
                          const uint8_t *extra, size_t extra_len, uint8_t **out,
                          size_t *out_len) {
  size_t sl;
  uint8_t *sealed = seal_inner(ev, gid, key, n, inner, &sl);
  int short_body = grp_body_is_short(ev->version, ev->kind);
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, short_body ? 2 : 3);
  if (!short_body)
    kith_pack_uint(&p, epoch);
  if (grp_is_message_like(ev->kind))
    kith_pack_uint(&p, n);
  kith_pack_bin(&p, sealed, sl);
  if (grp_has_extra(ev->kind))
    kith_pack_bin(&p, extra, extra_len);
  else if (!grp_is_message_like(ev->kind))
    kith_pack_nil(&p);
  g_free(sealed);
  kith_err rc =
      inner->failed ? KITH_ERR_NOMEM : kith_pack_take(&p, out, out_len);
  kith_pack_clear(&p);
  if (rc == KITH_OK && *out_len > KITH_EVENT_MAX_BODY) {
    g_free(*out);
    *out = NULL; /* the caller frees it too */
    rc = KITH_ERR_LIMIT;
  }
  return rc;
}

/* Key for a local event: the meta key, or the next key of our chain. */
static kith_err compose_key(kith_group *g, uint32_t kind, uint64_t epoch,
                            uint64_t *n, uint8_t key[KITH_KEY_LEN],
                            chain_slot **slot) {
  if (!grp_is_message_like(kind))
    return grp_meta_key(g, epoch, key) ? KITH_OK : KITH_ERR_STATE;
  chain_slot *s = grp_chain_get(g, epoch, g->me->pk);
  if (!s)
    return KITH_ERR_STATE;
  *slot = s;
  *n = s->next_n;
  return kith_chain_key(s->c, *n, key);
}

kith_err grp_compose_at(kith_group *g, kith_event *ev, uint64_t epoch,
                        const kith_pack *inner, const uint8_t *extra,
                        size_t extra_len, grp_inner *own, uint64_t now_ms,
                        GPtrArray *acc) {
  uint8_t key[KITH_KEY_LEN], *bytes = NULL;
  size_t len = 0;
  uint64_t n = 0;
  chain_slot *slot = NULL;
  kith_err rc = compose_key(g, ev->kind, epoch, &n, key, &slot);
  if (rc == KITH_OK)
    rc = pack_body(ev, g->gid, key, epoch, n, inner, extra, extra_len, &bytes,
                   &len);
  sodium_memzero(key, sizeof key);
  if (rc == KITH_OK)
    rc = kith_event_build(ev, g->me, bytes, len);
  g_free(bytes);
  body b = {.version = ev->version,
            .epoch = epoch,
            .n = n,
            .extra = (uint8_t *)extra, /* borrowed: b is not cleared */
            .extra_len = extra_len};
  if (rc == KITH_OK && !grp_is_message_like(ev->kind)) {
    own->pt = g_memdup2(inner->sb.data, inner->sb.size);
    own->pt_len = inner->sb.size;
  }
  if (rc == KITH_OK)
    rc = grp_accept(g, ev, &b, own, now_ms, acc);
  else
    grp_inner_clear(own);
  if (rc != KITH_OK && slot) {
    /* the key of n is spent: never use n again */
    slot->next_n = MAX(slot->next_n, n + 1);
    slot->dirty = 1;
  }
  kith_event_clear(ev);
  return rc;
}

uint64_t grp_epoch_at_parents(kith_group *g, const kith_event *ev) {
  grp_front *f = grp_parents_front(g, ev);
  uint64_t epoch = f ? grp_state_at(g, f)->epoch : g->st.epoch;
  grp_front_unref(g, f);
  return epoch;
}

kith_err grp_compose(kith_group *g, uint32_t kind, const kith_pack *inner,
                     grp_inner *own, uint64_t now_ms, GPtrArray *acc) {
  kith_event ev;
  grp_start_event(g, &ev, kind, now_ms);
  return grp_compose_at(g, &ev, grp_epoch_at_parents(g, &ev), inner, NULL, 0,
                        own, now_ms, acc);
}

kith_err grp_can_compose(const kith_group *g) {
  if (!g->st.created)
    return KITH_ERR_STATE;
  return grp_state_member(&g->st, g->me->pk) ? KITH_OK : KITH_ERR_NOT_MEMBER;
}

kith_err grp_check_local(const kith_group *g, uint32_t kind,
                         const grp_inner *in, uint64_t now_ms) {
  kith_err rc = grp_can_compose(g);
  return rc == KITH_OK ? grp_state_check(g, &g->st, kind, g->me->pk, in, now_ms)
                       : rc;
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

/* A sender never encrypts to an epoch that someone who is no longer a
 * member was given (after a removal whose rekey has not arrived, an
 * invite race, or a rekey that went back to an older epoch): it rekeys
 * first. */
static kith_err rekey_before_posting(kith_group *g, uint64_t now_ms,
                                     GPtrArray *acc) {
  if (!grp_local_rekey_due(g))
    return KITH_OK;
  return grp_compose_rekey(g, now_ms, acc);
}

static int text_ok(const char *text, size_t len) {
  return text && len > 0 && len < KITH_TEXT_MAX && !memchr(text, 0, len) &&
         g_utf8_validate_len(text, len, NULL);
}

/* message, react, edit, delete: inner p, own decoded form. */
static kith_err post(kith_group *g, uint32_t kind, kith_pack *p, grp_inner *own,
                     uint64_t now_ms, GPtrArray *acc) {
  kith_err rc = grp_check_local(g, kind, own, now_ms);
  if (rc == KITH_OK && g->victim)
    rc = KITH_ERR_STATE; /* waiting for a rekey that gives us the key */
  if (rc == KITH_OK)
    rc = rekey_before_posting(g, now_ms, acc);
  if (rc == KITH_OK)
    rc = grp_compose(g, kind, p, own, now_ms, acc);
  else
    grp_inner_clear(own);
  kith_pack_clear(p);
  return rc;
}

/* The target of a reply, reaction, edit or delete must be an accepted
 * message of this group. */
static kith_err check_target_msg(kith_group *g, const uint8_t id[32],
                                 uint8_t author[32]) {
  grp_sum *s = grp_sum_get(g, id);
  if (!s || s->kind != KITH_EV_MESSAGE)
    return KITH_ERR_NOT_FOUND;
  if (author)
    memcpy(author, s->author, 32);
  return KITH_OK;
}

kith_err kith_group_send(kith_group *g, const char *text, size_t len,
                         const uint8_t *reply_to, uint64_t now_ms,
                         GPtrArray *acc) {
  if (!g || !acc || !text_ok(text, len))
    return KITH_ERR_ARG;
  if (reply_to && check_target_msg(g, reply_to, NULL) != KITH_OK)
    return KITH_ERR_NOT_FOUND;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, reply_to ? 2 : 1);
  kith_pack_str(&p, text, len);
  grp_inner own = {.text = g_strndup(text, len), .text_len = len};
  if (reply_to) {
    kith_pack_bin(&p, reply_to, 32);
    memcpy(own.ref, reply_to, 32);
    own.has_ref = 1;
  }
  return post(g, KITH_EV_MESSAGE, &p, &own, now_ms, acc);
}

kith_err kith_group_react(kith_group *g, const uint8_t target[32],
                          const char *emoji, int on, uint64_t now_ms,
                          GPtrArray *acc) {
  size_t len = emoji ? strlen(emoji) : 0;
  if (!g || !target || !acc || !grp_emoji_is_valid(emoji, len))
    return KITH_ERR_ARG;
  kith_err rc = check_target_msg(g, target, NULL);
  if (rc != KITH_OK)
    return rc;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 3);
  kith_pack_bin(&p, target, 32);
  kith_pack_str(&p, emoji, len);
  kith_pack_uint(&p, on ? 1 : 0);
  grp_inner own = {.text = g_strndup(emoji, len),
                   .text_len = len,
                   .has_ref = 1,
                   .value = on ? 1 : 0};
  memcpy(own.ref, target, 32);
  return post(g, KITH_EV_REACT, &p, &own, now_ms, acc);
}

kith_err kith_group_edit(kith_group *g, const uint8_t target[32],
                         const char *text, size_t len, uint64_t now_ms,
                         GPtrArray *acc) {
  uint8_t author[32];
  if (!g || !target || !acc || !text_ok(text, len))
    return KITH_ERR_ARG;
  kith_err rc = check_target_msg(g, target, author);
  if (rc != KITH_OK)
    return rc;
  if (memcmp(author, g->me->pk, 32) != 0)
    return KITH_ERR_FORBIDDEN; /* only the author edits */
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 2);
  kith_pack_bin(&p, target, 32);
  kith_pack_str(&p, text, len);
  grp_inner own = {.text = g_strndup(text, len), .text_len = len, .has_ref = 1};
  memcpy(own.ref, target, 32);
  return post(g, KITH_EV_EDIT, &p, &own, now_ms, acc);
}

kith_err kith_group_delete(kith_group *g, const uint8_t target[32],
                           uint64_t now_ms, GPtrArray *acc) {
  uint8_t author[32];
  if (!g || !target || !acc)
    return KITH_ERR_ARG;
  kith_err rc = check_target_msg(g, target, author);
  if (rc != KITH_OK)
    return rc;
  const grp_member *me = grp_state_member(&g->st, g->me->pk);
  if (memcmp(author, g->me->pk, 32) != 0 &&
      (!me || me->m.role < KITH_ROLE_ADMIN))
    return KITH_ERR_FORBIDDEN;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 1);
  kith_pack_bin(&p, target, 32);
  grp_inner own = {.has_ref = 1};
  memcpy(own.ref, target, 32);
  return post(g, KITH_EV_DELETE, &p, &own, now_ms, acc);
}

kith_err kith_group_invite(kith_group *g, uint32_t uses, uint64_t expires_ms,
                           uint64_t now_ms, uint8_t secret_out[32],
                           kith_accepted **out) {
  if (!g || !secret_out || uses < 1 || uses > KITH_INVITE_MAX_USES ||
      expires_ms <= now_ms || expires_ms - now_ms > KITH_INVITE_MAX_TTL_MS)
    return KITH_ERR_ARG;
  grp_inner own = {.uses = uses, .expires = expires_ms};
  randombytes_buf(secret_out, 32);
  kith_invite_public_key(secret_out, own.pk);
  kith_err rc = grp_check_local(g, KITH_EV_INVITE, &own, now_ms);
  if (rc != KITH_OK)
    return rc;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 3);
  kith_pack_bin(&p, own.pk, 32);
  kith_pack_uint(&p, uses);
  kith_pack_uint(&p, expires_ms);
  GPtrArray *acc = g_ptr_array_new();
  rc = grp_compose(g, KITH_EV_INVITE, &p, &own, now_ms, acc);
  kith_pack_clear(&p);
  return take_one(rc, acc, out);
}

static kith_err check_admit(const kith_group *g, const uint8_t member[32],
                            const char *name, const uint8_t invite_pk[32],
                            const uint8_t join_sig[KITH_SIG_LEN],
                            uint64_t now_ms) {
  kith_err rc = grp_can_compose(g);
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
  grp_inner in = {0};
  memcpy(in.member, member, 32);
  memcpy(in.pk, invite_pk, 32);
  return grp_state_check(g, &g->st, KITH_EV_ADD, g->me->pk, &in, now_ms);
}

/* The add; its extra is every key we hold sealed to the newcomer (only
 * the meta keys with history "joined"). */
static kith_err compose_add(kith_group *g, const uint8_t member[32],
                            const char *name, const uint8_t invite_pk[32],
                            const uint8_t join_sig[KITH_SIG_LEN],
                            uint64_t now_ms, GPtrArray *acc) {
  uint8_t *extra = NULL;
  size_t extra_len = 0;
  kith_err rc =
      grp_seal_keys(g, member, g->st.history == KITH_HISTORY_JOINED,
                    GROUP_MAX_KEY_LIST - 1, 0, NULL, &extra, &extra_len);
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
  grp_start_event(g, &ev, KITH_EV_ADD, now_ms);
  if (rc == KITH_OK)
    rc = grp_compose_at(g, &ev, grp_epoch_at_parents(g, &ev), &p, extra,
                        extra_len, &own, now_ms, acc);
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
                             uint64_t epoch, kith_event *ev, grp_inner *own) {
  uint8_t key[KITH_KEY_LEN], *bytes = NULL;
  size_t len = 0;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 4);
  kith_pack_cstr(&p, o->name);
  kith_pack_uint(&p, o->history);
  kith_pack_cstr(&p, o->owner_name);
  kith_pack_uint(&p, o->admins_only_invites ? 1 : 0);
  ev->version = KITH_GROUP_EVENT_VERSION;
  ev->kind = KITH_EV_CREATE;
  ev->ts_ms = now_ms;
  memcpy(ev->author, me->pk, 32);
  kith_gcrypto_meta_key(secret, key);
  kith_err rc = pack_body(ev, NULL, key, epoch, 0, &p, NULL, 0, &bytes, &len);
  sodium_memzero(key, sizeof key);
  own->pt = g_memdup2(p.sb.data, p.sb.size);
  own->pt_len = p.sb.size;
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
  grp_inner own = {.name = g_strdup(opt->name),
                   .owner_name = g_strdup(opt->owner_name),
                   .history = opt->history,
                   .admins_only = opt->admins_only_invites ? 1 : 0};
  kith_err rc = create_event(me, opt, now_ms, secret, epoch, &ev, &own);
  kith_group *g = rc == KITH_OK ? kith_group_new(ev.id, me) : NULL;
  if (rc == KITH_OK && !g)
    rc = KITH_ERR_NOMEM;
  if (rc == KITH_OK) {
    (void)grp_add_key(g, epoch, secret, 1, 1);
    body b = {.version = ev.version, .epoch = epoch};
    GPtrArray *acc = g_ptr_array_new();
    rc = take_one(grp_accept(g, &ev, &b, &own, now_ms, acc), acc, out);
  }
  grp_inner_clear(&own);
  sodium_memzero(secret, sizeof secret);
  kith_event_clear(&ev);
  if (rc != KITH_OK) {
    kith_group_free(g);
    return rc;
  }
  *g_out = g;
  return KITH_OK;
}
