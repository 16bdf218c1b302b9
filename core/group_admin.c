/* kith: local changes to a group's membership, roles and settings, its
 * rekeys, and the rekeys a node owes (kith_group_maintain). */
#include "group_int.h"

#include <sodium.h>
#include <string.h>

#include "codec.h"
#include "gcrypto.h"

/* Checks against the current state, then composes. */
static kith_err simple_event(kith_group *g, uint32_t kind, kith_pack *p,
                             grp_inner *own, uint64_t now_ms, GPtrArray *acc) {
  kith_err rc = grp_check_local(g, kind, own, now_ms);
  if (rc == KITH_OK)
    rc = grp_compose(g, kind, p, own, now_ms, acc);
  else
    grp_inner_clear(own);
  kith_pack_clear(p);
  return rc;
}

static kith_err member_event(kith_group *g, uint32_t kind,
                             const uint8_t member[32], uint64_t now_ms,
                             GPtrArray *acc) {
  grp_inner own = {0};
  memcpy(own.member, member, 32);
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 1);
  kith_pack_bin(&p, member, 32);
  return simple_event(g, kind, &p, &own, now_ms, acc);
}

/* Post-removal secrecy: a new epoch the removed member does not get. If
 * it cannot be made now, kith_group_maintain retries (we are the
 * designated member), and nothing is posted in the old epoch meanwhile. */
static kith_err exclude(kith_group *g, kith_err rc, uint64_t now_ms,
                        GPtrArray *acc) {
  if (rc != KITH_OK)
    return rc;
  kith_err r = grp_compose_rekey(g, now_ms, acc);
  if (r != KITH_OK) {
    g->rekey_failed = 1;
    g->last_rekey_ms = now_ms ? now_ms : 1;
    return KITH_ERR_REKEY;
  }
  return KITH_OK;
}

kith_err kith_group_remove(kith_group *g, const uint8_t member[32],
                           uint64_t now_ms, GPtrArray *acc) {
  if (!g || !member || !acc)
    return KITH_ERR_ARG;
  return exclude(g, member_event(g, KITH_EV_REMOVE, member, now_ms, acc),
                 now_ms, acc);
}

kith_err kith_group_ban(kith_group *g, const uint8_t node[32], uint64_t now_ms,
                        GPtrArray *acc) {
  if (!g || !node || !acc)
    return KITH_ERR_ARG;
  int member = grp_state_member(&g->st, node) != NULL;
  kith_err rc = member_event(g, KITH_EV_BAN, node, now_ms, acc);
  return member ? exclude(g, rc, now_ms, acc) : rc;
}

kith_err kith_group_unban(kith_group *g, const uint8_t node[32],
                          uint64_t now_ms, GPtrArray *acc) {
  if (!g || !node || !acc)
    return KITH_ERR_ARG;
  return member_event(g, KITH_EV_UNBAN, node, now_ms, acc);
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

static kith_err settings_event(kith_group *g, uint64_t key, int value,
                               uint64_t now_ms, GPtrArray *acc) {
  if (!g || !acc)
    return KITH_ERR_ARG;
  grp_inner own = {.key = key, .value = value ? 1 : 0};
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 2);
  kith_pack_uint(&p, key);
  kith_pack_uint(&p, own.value);
  return simple_event(g, KITH_EV_SETTINGS, &p, &own, now_ms, acc);
}

kith_err kith_group_set_invites(kith_group *g, int admins_only, uint64_t now_ms,
                                GPtrArray *acc) {
  return settings_event(g, GRP_SET_INVITES, admins_only, now_ms, acc);
}

kith_err kith_group_set_announce(kith_group *g, int on, uint64_t now_ms,
                                 GPtrArray *acc) {
  return settings_event(g, GRP_SET_MODE, on, now_ms, acc);
}

kith_err kith_group_mute(kith_group *g, const uint8_t member[32],
                         uint64_t until_ms, uint64_t now_ms, GPtrArray *acc) {
  if (!g || !member || !acc || until_ms > KITH_TS_MAX ||
      (until_ms && until_ms <= now_ms))
    return KITH_ERR_ARG;
  grp_inner own = {.until = until_ms};
  memcpy(own.member, member, 32);
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 2);
  kith_pack_bin(&p, member, 32);
  kith_pack_uint(&p, until_ms);
  return simple_event(g, KITH_EV_MUTE, &p, &own, now_ms, acc);
}

kith_err kith_group_revoke(kith_group *g, const uint8_t invite_pk[32],
                           uint64_t now_ms, GPtrArray *acc) {
  if (!g || !invite_pk || !acc)
    return KITH_ERR_ARG;
  grp_inner own = {0};
  memcpy(own.pk, invite_pk, 32);
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 1);
  kith_pack_bin(&p, invite_pk, 32);
  return simple_event(g, KITH_EV_REVOKE, &p, &own, now_ms, acc);
}

/* ---- rekey ---- */

/* One box per member of s, in id order, holding only the new secret (a
 * version-2 rekey: the bare 32 bytes; version 1: a key list of that one
 * entry): a member that lacks an older epoch asks for it (a need), so
 * every box has one size and a rekey for KITH_GROUP_MAX_MEMBERS always
 * fits. */
static kith_err pack_boxes(kith_group *g, const grp_state *s, uint32_t version,
                           uint64_t epoch, const uint8_t secret[32],
                           kith_pack *x) {
  kith_err rc = KITH_OK;
  kith_pack_array(x, s->members->len);
  for (guint i = 0; rc == KITH_OK && i < s->members->len; i++) {
    const grp_member *m = &g_array_index(s->members, grp_member, i);
    uint8_t *box = NULL;
    size_t len = 0;
    rc = version >= KITH_EVENT_V2
             ? grp_seal_secret(m->m.id, secret, &box, &len)
             : grp_seal_keys(g, m->m.id, 0, 0, epoch, secret, &box, &len);
    if (rc == KITH_OK)
      kith_pack_bin(x, box, len);
    g_free(box);
  }
  return rc == KITH_OK && x->failed ? KITH_ERR_NOMEM : rc;
}

/* The body's epoch: the current one at the parents; for a recovery (our
 * box of that epoch's rekey did not open), that rekey's own older epoch. */
static kith_err rekey_epoch(kith_group *g, const grp_state *s, grp_inner *own,
                            uint64_t *epoch) {
  uint8_t meta[KITH_KEY_LEN];
  const grp_ctl *cur = grp_ctl_at(g, s->epoch_ctl);
  *epoch = s->epoch;
  if (g->victim && cur && memcmp(cur->id, g->victim_of, 32) == 0) {
    *epoch = cur->epoch;
    memcpy(own->ref, cur->id, 32);
    own->has_ref = 1;
  }
  int ok = grp_meta_key(g, *epoch, meta);
  sodium_memzero(meta, sizeof meta);
  return ok ? KITH_OK : KITH_ERR_STATE;
}

static kith_err rekey_at(kith_group *g, kith_event *ev, const grp_state *s,
                         uint64_t now_ms, GPtrArray *acc) {
  uint8_t secret[32], meta[KITH_KEY_LEN];
  uint64_t epoch;
  grp_inner own = {0};
  kith_err rc = rekey_epoch(g, s, &own, &epoch);
  if (rc != KITH_OK)
    return rc;
  randombytes_buf(secret, sizeof secret);
  kith_gcrypto_meta_key(secret, meta);
  own.new_epoch = kith_gcrypto_epoch_id(meta);
  sodium_memzero(meta, sizeof meta);
  kith_pack x, p;
  kith_pack_init(&x);
  kith_pack_init(&p);
  kith_pack_array(&p, own.has_ref ? 2 : 1);
  kith_pack_uint(&p, own.new_epoch);
  if (own.has_ref)
    kith_pack_bin(&p, own.ref, 32);
  rc = pack_boxes(g, s, ev->version, own.new_epoch, secret, &x);
  size_t before = g->n_secrets;
  if (rc == KITH_OK && !grp_add_key(g, own.new_epoch, secret, 1, 1))
    rc = KITH_ERR_LIMIT;
  sodium_memzero(secret, sizeof secret);
  if (rc == KITH_OK)
    rc = grp_compose_at(g, ev, epoch, &p, (const uint8_t *)x.sb.data, x.sb.size,
                        &own, now_ms, acc);
  else
    grp_inner_clear(&own);
  if (rc != KITH_OK && g->n_secrets > before && g->secrets_saved <= before) {
    /* the epoch was never made: its key goes */
    grp_keys_truncate(g, before);
  }
  kith_pack_clear(&x);
  kith_pack_clear(&p);
  return rc;
}

kith_err grp_compose_rekey(kith_group *g, uint64_t now_ms, GPtrArray *acc) {
  kith_err rc = grp_can_compose(g);
  if (rc != KITH_OK)
    return rc;
  kith_event ev;
  grp_start_event(g, &ev, KITH_EV_REKEY, now_ms);
  grp_front *f = grp_parents_front(g, &ev);
  const grp_state *s = f ? grp_state_at(g, f) : &g->st;
  if (!grp_state_member(s, g->me->pk))
    rc = KITH_ERR_NOT_MEMBER;
  if (rc == KITH_OK)
    rc = rekey_at(g, &ev, s, now_ms, acc);
  grp_front_unref(g, f);
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

/* ---- owed rekeys ---- */

/* Someone who is not a member was given the current epoch (holders, or a
 * newcomer of an add that did not take effect), or a member lacks it. */
int grp_local_rekey_due(kith_group *g) {
  if (g->due_version == g->st_version + 1)
    return g->due_cached;
  int due = grp_state_rekey_due(g, &g->st);
  if (!due) {
    GByteArray *ex = g_byte_array_new();
    grp_state_exposed(g, &g->st, ex);
    for (guint i = 0; i + 32 <= ex->len && !due; i += 32)
      due = !grp_state_member(&g->st, ex->data + i);
    g_byte_array_free(ex, TRUE);
  }
  g->due_cached = due;
  g->due_version = g->st_version + 1;
  return g->due_cached;
}

/* Key requests first (group_need.c: ask for what we lack, answer whose
 * turn has come, recover when the current epoch's key never came), then
 * concurrency rule 7 (docs/protocol.md 5.9): the designated rekeyer at
 * once, everyone else after the grace period; at most one of ours per
 * period after a failure. */
kith_err kith_group_maintain(kith_group *g, uint64_t now_ms, GPtrArray *acc) {
  if (!g || !acc)
    return KITH_ERR_ARG;
  grp_release_time(g, now_ms, acc);
  const grp_state *s = &g->st;
  if (!s->created || !grp_state_member(s, g->me->pk))
    return KITH_OK;
  kith_err io = grp_need_maintain(g, now_ms, acc); /* KITH_ERR_IO only */
  if (!grp_local_rekey_due(g))
    return io;
  const uint8_t *who = grp_state_rekeyer(s);
  int mine = who && memcmp(who, g->me->pk, 32) == 0;
  if (!mine && now_ms < s->change_ts + KITH_REKEY_GRACE_MS)
    return io;
  if ((!mine || g->rekey_failed) && g->last_rekey_ms &&
      now_ms < g->last_rekey_ms + KITH_REKEY_GRACE_MS)
    return io;
  kith_err rc = grp_compose_rekey(g, now_ms, acc);
  g->rekey_failed = rc != KITH_OK;
  if (rc != KITH_OK)
    g->last_rekey_ms = now_ms ? now_ms : 1; /* do not retry every second */
  return rc != KITH_OK ? rc : io;
}
