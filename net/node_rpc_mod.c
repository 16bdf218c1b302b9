/* kith: the control-socket methods for moderation and invites: ban,
 * unban, mute, unmute, group.mode, group.invites, invite.list and
 * invite.revoke (docs/protocol.md 12.3). */
#include <sodium.h>
#include <string.h>

#include "../core/codec.h"
#include "node_rpc_int.h"

#define MUTE_MAX_S                                                             \
  (10ull * 365 * 24 * 3600) /* a mute lasts 10 years at most                   \
                             */

/* A node id given in full, for a node that is not a member (ban). */
static int param_node_id(const msgpack_object *params, uint32_t i,
                         uint8_t out[32]) {
  char arg[KITH_ID_TEXT_LEN + 1];
  return node_rpc_param_str(params, i, arg, sizeof arg) &&
         kith_id_from_text(arg, out) == KITH_OK;
}

static void rpc_ban(kith_rpc_call *call, const msgpack_object *params,
                    void *ud) {
  kith_node *n = ud;
  node_group *ng = rpc_resolve_group(n, call, params);
  uint8_t node[32];
  char arg[256];

  if (!ng)
    return;
  if (!param_node_id(params, 1, node)) {
    const kith_member *m = rpc_resolve_member(call, ng, params, 1);
    if (!m)
      return; /* not a member, nor a full node id */
    memcpy(node, m->id, 32);
  }
  if (memcmp(node, n->me.pk, 32) == 0) {
    kith_rpc_error(call, KITH_ERR_ARG, "you cannot ban yourself");
    return;
  }
  (void)node_rpc_param_str(params, 1, arg, sizeof arg);
  GPtrArray *acc = rpc_new_batch();
  node_local_begin(n);
  kith_err err = kith_group_ban(ng->g, node, node_wall_ms(), acc);
  if (err == KITH_ERR_EXISTS) {
    g_ptr_array_unref(acc);
    kith_rpc_error(call, err, "%s is already banned from %s", arg,
                   kith_group_name(ng->g));
    return;
  }
  rpc_publish_change(n, call, ng, err, acc);
}

/* NODE: a full node id, or a unique prefix or name among the banned. */
static int resolve_banned(kith_rpc_call *call, node_group *ng,
                          const msgpack_object *params, uint8_t out[32]) {
  char arg[256], text[KITH_ID_TEXT_LEN + 1];
  int found = 0;

  if (!node_rpc_param_str(params, 1, arg, sizeof arg) || !arg[0]) {
    kith_rpc_error(call, KITH_ERR_ARG, "missing node id");
    return 0;
  }
  if (kith_id_from_text(arg, out) == KITH_OK)
    return 1;
  for (size_t i = 0; i < kith_group_n_banned(ng->g); i++) {
    const uint8_t *b = kith_group_banned_at(ng->g, i);
    kith_id_to_text(b, text);
    if (g_str_has_prefix(text, arg) ||
        strcmp(kith_group_name_of(ng->g, b), arg) == 0) {
      memcpy(out, b, 32);
      found++;
    }
  }
  if (found == 1)
    return 1;
  kith_rpc_error(call, found ? KITH_ERR_AMBIGUOUS : KITH_ERR_NOT_FOUND,
                 found ? "'%s' matches several banned nodes; give more of the "
                         "node id"
                       : "'%s' is not banned from %s",
                 arg, kith_group_name(ng->g));
  return 0;
}

static void rpc_unban(kith_rpc_call *call, const msgpack_object *params,
                      void *ud) {
  kith_node *n = ud;
  node_group *ng = rpc_resolve_group(n, call, params);
  uint8_t node[32];

  if (!ng || !resolve_banned(call, ng, params, node))
    return;
  GPtrArray *acc = rpc_new_batch();
  node_local_begin(n);
  rpc_publish_change(n, call, ng,
                     kith_group_unban(ng->g, node, node_wall_ms(), acc), acc);
}

/* mute GROUP MEMBER [duration_s]: 0 or absent mutes until unmuted. */
static void rpc_mute(kith_rpc_call *call, const msgpack_object *params,
                     void *ud) {
  kith_node *n = ud;
  node_group *ng = rpc_resolve_group(n, call, params);
  const kith_member *m = ng ? rpc_resolve_member(call, ng, params, 1) : NULL;
  uint64_t secs = 0, now = node_wall_ms();

  if (!m)
    return;
  if (params->via.array.size > 2 &&
      !rpc_param_uint(params, 2, MUTE_MAX_S, &secs)) {
    kith_rpc_error(call, KITH_ERR_ARG,
                   "a mute lasts 1 second to 10 years (0: until unmuted)");
    return;
  }
  uint64_t until = secs ? now + secs * 1000 : KITH_TS_MAX;
  GPtrArray *acc = rpc_new_batch();
  node_local_begin(n);
  rpc_publish_change(n, call, ng,
                     kith_group_mute(ng->g, m->id, until, now, acc), acc);
}

static void rpc_unmute(kith_rpc_call *call, const msgpack_object *params,
                       void *ud) {
  kith_node *n = ud;
  node_group *ng = rpc_resolve_group(n, call, params);
  const kith_member *m = ng ? rpc_resolve_member(call, ng, params, 1) : NULL;

  if (!m)
    return;
  GPtrArray *acc = rpc_new_batch();
  node_local_begin(n);
  kith_err err = kith_group_mute(ng->g, m->id, 0, node_wall_ms(), acc);
  if (err == KITH_ERR_EXISTS) {
    g_ptr_array_unref(acc);
    kith_rpc_error(call, err, "%s is not muted", m->name);
    return;
  }
  rpc_publish_change(n, call, ng, err, acc);
}

/* group.mode GROUP announce|open; group.invites GROUP all|admins */
static void setting(kith_rpc_call *call, const msgpack_object *params,
                    kith_node *n, const char *on_word, const char *off_word,
                    kith_err (*fn)(kith_group *, int, uint64_t, GPtrArray *)) {
  node_group *ng = rpc_resolve_group(n, call, params);
  char v[16];

  if (!ng)
    return;
  if (!node_rpc_param_str(params, 1, v, sizeof v) ||
      (strcmp(v, on_word) != 0 && strcmp(v, off_word) != 0)) {
    kith_rpc_error(call, KITH_ERR_ARG, "the value is %s or %s", on_word,
                   off_word);
    return;
  }
  GPtrArray *acc = rpc_new_batch();
  node_local_begin(n);
  kith_err err = fn(ng->g, strcmp(v, on_word) == 0, node_wall_ms(), acc);
  if (err == KITH_ERR_EXISTS) {
    g_ptr_array_unref(acc);
    kith_rpc_error(call, err, "%s is already set to %s", kith_group_name(ng->g),
                   v);
    return;
  }
  rpc_publish_change(n, call, ng, err, acc);
}

static void rpc_group_mode(kith_rpc_call *call, const msgpack_object *params,
                           void *ud) {
  setting(call, params, ud, "announce", "open", kith_group_set_announce);
}

static void rpc_group_invites(kith_rpc_call *call, const msgpack_object *params,
                              void *ud) {
  setting(call, params, ud, "admins", "all", kith_group_set_invites);
}

static int invite_live(const kith_invite_info *v, uint64_t now) {
  return !v->revoked && v->used < v->uses && v->expires_ms > now;
}

static void rpc_invite_list(kith_rpc_call *call, const msgpack_object *params,
                            void *ud) {
  kith_node *n = ud;
  node_group *ng = rpc_resolve_group(n, call, params);
  uint64_t now = node_wall_ms();
  uint32_t live = 0;
  kith_invite_info v;
  kith_pack pk;

  if (!ng)
    return;
  for (size_t i = 0; i < kith_group_n_invites(ng->g); i++) {
    kith_group_invite_at(ng->g, i, &v);
    live += invite_live(&v, now);
  }
  kith_pack_init(&pk);
  kith_pack_array(&pk, live);
  for (size_t i = 0; i < kith_group_n_invites(ng->g); i++) {
    kith_group_invite_at(ng->g, i, &v);
    if (!invite_live(&v, now))
      continue;
    msgpack_pack_map(&pk.pk, 5);
    rpc_kv_id(&pk, "invite_id", v.pk);
    rpc_kv_id(&pk, "by", v.by);
    rpc_kv_str(&pk, "by_name", kith_group_name_of(ng->g, v.by));
    rpc_kv_uint(&pk, "uses_left", v.uses - v.used);
    rpc_kv_uint(&pk, "expires_ms", v.expires_ms);
  }
  node_rpc_reply(n, call, &pk);
}

/* INVITE: an invite id (the base32 of its public key), a unique prefix of
 * one, or the kith: code itself. */
static int resolve_invite(kith_rpc_call *call, node_group *ng,
                          const msgpack_object *params, uint8_t out[32]) {
  char arg[KITH_INVITE_CODE_MAX + 1], text[KITH_ID_TEXT_LEN + 1];
  kith_invite inv;
  kith_invite_info v;
  int found = 0;

  if (!node_rpc_param_str(params, 1, arg, sizeof arg) || !arg[0]) {
    kith_rpc_error(call, KITH_ERR_ARG,
                   "an invite is its id (see kith invite list) or its code");
    return 0;
  }
  if (g_str_has_prefix(arg, "kith:") &&
      kith_invite_decode(arg, &inv) == KITH_OK) {
    kith_invite_public_key(inv.secret, out);
    sodium_memzero(&inv, sizeof inv);
    sodium_memzero(arg, sizeof arg);
    return 1;
  }
  for (size_t i = 0; i < kith_group_n_invites(ng->g); i++) {
    kith_group_invite_at(ng->g, i, &v);
    kith_id_to_text(v.pk, text);
    if (g_str_has_prefix(text, arg)) {
      memcpy(out, v.pk, 32);
      found++;
    }
  }
  if (found == 1)
    return 1;
  kith_rpc_error(call, found ? KITH_ERR_AMBIGUOUS : KITH_ERR_NOT_FOUND,
                 found ? "'%s' matches several invites; give more of its id"
                       : "no invite '%s' in %s (see kith invite list)",
                 arg, kith_group_name(ng->g));
  return 0;
}

static void rpc_invite_revoke(kith_rpc_call *call, const msgpack_object *params,
                              void *ud) {
  kith_node *n = ud;
  node_group *ng = rpc_resolve_group(n, call, params);
  uint8_t pk[32];

  if (!ng || !resolve_invite(call, ng, params, pk))
    return;
  GPtrArray *acc = rpc_new_batch();
  node_local_begin(n);
  kith_err err = kith_group_revoke(ng->g, pk, node_wall_ms(), acc);
  if (err == KITH_ERR_EXISTS || err == KITH_ERR_NOT_FOUND) {
    g_ptr_array_unref(acc);
    kith_rpc_error(call, err,
                   err == KITH_ERR_EXISTS ? "that invite is already revoked"
                                          : "no such invite in %s",
                   kith_group_name(ng->g));
    return;
  }
  rpc_publish_change(n, call, ng, err, acc);
}

void node_rpc_mod_register(kith_node *n) {
  static const struct {
    const char *name;
    kith_rpc_handler fn;
  } methods[] = {
      {"ban", rpc_ban},
      {"unban", rpc_unban},
      {"mute", rpc_mute},
      {"unmute", rpc_unmute},
      {"group.mode", rpc_group_mode},
      {"group.invites", rpc_group_invites},
      {"invite.list", rpc_invite_list},
      {"invite.revoke", rpc_invite_revoke},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(methods); i++)
    kith_control_register(n->ctl, methods[i].name, methods[i].fn, n);
}
