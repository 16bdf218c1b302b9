/* kith: the derived state of a group and the rules events must follow.
 *
 * The same check decides both whether an event is accepted on receipt
 * (against the state at its parents) and whether it has an effect when
 * the full set is folded in (depth, id) order. An accepted event whose
 * rule no longer holds at its place in the fold stays in the set without
 * effect, so the state remains a function of the set of events.
 *
 * Roles: owner > admin > member.
 *   invite: any member; only owner/admin if the group was created with
 *     admins-only invites.          add: any member, with a valid invite.
 *   remove: owner/admin; an admin cannot remove an owner; nobody removes
 *     themself (that is leave).     leave: any member.
 *   role: owner/admin; not one's own; an admin cannot change an owner's
 *     role nor grant a role above its own (owner).
 *   topic: owner/admin.             rekey, message: any member.
 *   Every kind but create: the body names the current epoch at the
 *   event's parents (checked on receipt, not in the fold).
 *
 * Concurrency rules (all follow from "check each event again at its place
 * in the (depth, id) fold"; each has a test in tests/unit/test_group*.c):
 *  1. Removal beats concurrent actions of the removed member: a state
 *     change by someone who is no longer a member (or no longer has the
 *     role) at its place in the fold has no effect. Their messages stay in
 *     the DAG, but a replica that already holds the removal does not show
 *     them (kith_accepted.text is NULL). Events whose parents include the
 *     removal are rejected outright (not a member at the parents).
 *     [concurrent_removal_beats_message_of_removed,
 *      removed_member_later_events_rejected]
 *  2. Two admins removing each other concurrently: the removal that sorts
 *     first in (depth, id) takes effect; the other author is no longer a
 *     member at the second one, which has no effect, nor does its rekey.
 *     [admins_remove_each_other_concurrently]
 *  3. Concurrent rekeys: every epoch secret is kept (messages name their
 *     epoch); the current epoch is the one of the last rekey in the fold
 *     that took effect. A rekey takes effect only if everyone it was
 *     sealed to is still a member at its place in the fold, so a rekey
 *     that still included a concurrently removed member never becomes
 *     current. [concurrent_rekeys_pick_one_epoch]
 *  4. Concurrent role changes: applied in fold order, each only if its
 *     author still has the required role at that point; the last one that
 *     applies wins. [concurrent_role_changes]
 *  5. A single-use invite redeemed at two members at once: the add that
 *     sorts first (lower depth, then lower event id) admits its joiner;
 *     the other add has no effect, and its joiner's replica sees that it
 *     is not a member. [single_use_invite_redeemed_twice_admits_lower_id]
 *  6. The last owner leaving: ownership passes to the remaining member
 *     with the highest role, lowest node id first. [last_owner_leaving]
 *  7. Who rekeys: the state records who holds the current epoch. When that
 *     differs from the members (after a remove, a leave, a "joined" add or
 *     a missed concurrent rekey), a rekey is owed. The author of the change
 *     makes it at once (remove, joined add); if that author is gone (a
 *     leave), the owed rekey falls to the member with the highest role,
 *     lowest node id first; every member makes it once KITH_REKEY_GRACE_MS
 *     have passed since the change (kith_group_maintain; extra concurrent
 *     rekeys are resolved by rule 3). [leave_triggers_rekey_by_designated]
 */
#include "group_int.h"

#include <sodium.h>
#include <string.h>

#include "codec.h"

void grp_state_init(grp_state *s) {
  memset(s, 0, sizeof *s);
  s->name = g_strdup("");
  s->topic = g_strdup("");
  s->members = g_ptr_array_new();
  s->invites = g_array_new(FALSE, TRUE, sizeof(grp_invite));
  s->holders = g_byte_array_new();
}

static void member_free(kith_member *m) {
  if (m->name)
    sodium_memzero(m->name, strlen(m->name));
  g_free(m->name);
  g_free(m);
}

void grp_state_clear(grp_state *s) {
  g_free(s->name);
  g_free(s->topic);
  if (s->members) {
    for (guint i = 0; i < s->members->len; i++)
      member_free(g_ptr_array_index(s->members, i));
    g_ptr_array_free(s->members, TRUE);
  }
  if (s->invites)
    g_array_free(s->invites, TRUE);
  if (s->holders)
    g_byte_array_free(s->holders, TRUE);
  memset(s, 0, sizeof *s);
}

int grp_entry_cmp(const grp_entry *a, const grp_entry *b) {
  if (a->ev.depth != b->ev.depth)
    return a->ev.depth < b->ev.depth ? -1 : 1;
  return memcmp(a->ev.id, b->ev.id, KITH_EVENT_ID_LEN);
}

void grp_inner_clear(grp_inner *in) {
  if (in->text)
    sodium_memzero(in->text, in->text_len);
  if (in->name)
    sodium_memzero(in->name, strlen(in->name));
  if (in->owner_name)
    sodium_memzero(in->owner_name, strlen(in->owner_name));
  g_free(in->text);
  g_free(in->name);
  g_free(in->owner_name);
  g_free(in->holders);
  memset(in, 0, sizeof *in);
}

int grp_name_is_valid(const char *s, size_t len) {
  if (!s || len < 1 || len > KITH_NAME_MAX || memchr(s, 0, len) ||
      !g_utf8_validate_len(s, len, NULL))
    return 0;
  for (const char *p = s; p < s + len; p = g_utf8_next_char(p))
    if (g_unichar_iscntrl(g_utf8_get_char(p)))
      return 0;
  return 1;
}

/* Binary search in a sorted array of 32-byte keys at the start of each
 * element; returns the index of key or where it would go. */
static guint find_pos(const void *base, guint n, size_t stride, int ptrs,
                      const uint8_t key[32], int *found) {
  guint lo = 0, hi = n;
  *found = 0;
  while (lo < hi) {
    guint mid = lo + (hi - lo) / 2;
    const uint8_t *k = ptrs ? ((const uint8_t *const *)base)[mid]
                            : (const uint8_t *)base + mid * stride;
    int c = memcmp(k, key, 32);
    if (c == 0) {
      *found = 1;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* kith_member starts with its id, so member pointers sort by id. */
kith_member *grp_state_member(const grp_state *s, const uint8_t id[32]) {
  int found;
  guint i = find_pos(s->members->pdata, s->members->len, 0, 1, id, &found);
  return found ? g_ptr_array_index(s->members, i) : NULL;
}

const grp_invite *grp_state_invite(const grp_state *s, const uint8_t pk[32]) {
  int found;
  guint i = find_pos(s->invites->data, s->invites->len, sizeof(grp_invite), 0,
                     pk, &found);
  return found ? &g_array_index(s->invites, grp_invite, i) : NULL;
}

kith_err grp_state_check_invite(const grp_state *s, const uint8_t pk[32],
                                uint64_t ts) {
  const grp_invite *inv = grp_state_invite(s, pk);
  if (!inv)
    return KITH_ERR_NOT_FOUND;
  if (ts >= inv->expires)
    return KITH_ERR_EXPIRED;
  if (inv->used >= inv->uses)
    return KITH_ERR_USED_UP;
  return KITH_OK;
}

int grp_topic_is_valid(const char *s, size_t len) {
  if (!s || len > KITH_TOPIC_MAX || memchr(s, 0, len) ||
      !g_utf8_validate_len(s, len, NULL))
    return 0;
  for (const char *p = s; p < s + len; p = g_utf8_next_char(p))
    if (g_unichar_iscntrl(g_utf8_get_char(p)))
      return 0;
  return 1;
}

static guint holder_pos(const grp_state *s, const uint8_t id[32], int *found) {
  return find_pos(s->holders->data, s->holders->len / 32, 32, 0, id, found);
}

int grp_state_is_holder(const grp_state *s, const uint8_t id[32]) {
  int found;
  holder_pos(s, id, &found);
  return found;
}

int grp_state_rekey_due(const grp_state *s) {
  if (!s->created || s->holders->len / 32 != s->members->len)
    return s->created;
  for (guint i = 0; i < s->members->len; i++) {
    const kith_member *m = g_ptr_array_index(s->members, i);
    if (memcmp(m->id, s->holders->data + 32 * i, 32) != 0)
      return 1;
  }
  return 0;
}

/* The author of the last membership change if still a member, else the
 * member with the highest role (lowest id first). */
const uint8_t *grp_state_rekeyer(const grp_state *s) {
  if (grp_state_member(s, s->change_by))
    return s->change_by;
  const kith_member *best = NULL;
  for (guint i = 0; i < s->members->len; i++) {
    const kith_member *m = g_ptr_array_index(s->members, i);
    if (!best || m->role > best->role)
      best = m;
  }
  return best ? best->id : NULL;
}

static kith_err check_invite_ev(const grp_state *s, const grp_entry *e,
                                kith_role r) {
  if (s->admins_only && r < KITH_ROLE_ADMIN)
    return KITH_ERR_FORBIDDEN;
  if (grp_state_invite(s, e->in.pk))
    return KITH_ERR_EXISTS;
  return s->invites->len >= GROUP_MAX_INVITES ? KITH_ERR_LIMIT : KITH_OK;
}

static kith_err check_add(const grp_state *s, const grp_entry *e) {
  kith_err rc = grp_state_check_invite(s, e->in.pk, e->ev.ts_ms);
  if (rc != KITH_OK)
    return rc;
  if (grp_state_member(s, e->in.member))
    return KITH_ERR_EXISTS;
  return s->members->len >= KITH_GROUP_MAX_MEMBERS ? KITH_ERR_LIMIT : KITH_OK;
}

/* remove and role: who may act on whom. */
static kith_err check_target(const grp_state *s, const grp_entry *e,
                             kith_role r, const kith_member **t) {
  if (r < KITH_ROLE_ADMIN)
    return KITH_ERR_FORBIDDEN;
  *t = grp_state_member(s, e->in.member);
  if (!*t)
    return KITH_ERR_NOT_MEMBER;
  if (memcmp(e->in.member, e->ev.author, 32) == 0)
    return KITH_ERR_FORBIDDEN;
  return (*t)->role > r ? KITH_ERR_FORBIDDEN : KITH_OK;
}

static kith_err check_role(const grp_state *s, const grp_entry *e,
                           kith_role r) {
  const kith_member *t;
  kith_err rc = check_target(s, e, r, &t);
  if (rc != KITH_OK)
    return rc;
  if (e->in.role > KITH_ROLE_OWNER || e->in.role > r)
    return KITH_ERR_FORBIDDEN;
  return t->role == e->in.role ? KITH_ERR_EXISTS : KITH_OK;
}

/* Everyone the rekey's secret went to must still be a member. */
static kith_err check_rekey(const grp_state *s, const grp_entry *e) {
  for (size_t i = 0; i < e->in.n_holders; i++)
    if (!grp_state_member(s, e->in.holders + 32 * i))
      return KITH_ERR_PROTOCOL;
  return KITH_OK;
}

kith_err grp_state_check(const grp_state *s, const grp_entry *e) {
  const kith_event *ev = &e->ev;
  if (ev->kind == KITH_EV_CREATE)
    return s->created ? KITH_ERR_PROTOCOL : KITH_OK;
  if (!s->created)
    return KITH_ERR_PROTOCOL;
  const kith_member *me = grp_state_member(s, ev->author);
  const kith_member *t;
  if (!me)
    return KITH_ERR_NOT_MEMBER;
  switch (ev->kind) {
  case KITH_EV_INVITE:
    return check_invite_ev(s, e, me->role);
  case KITH_EV_ADD:
    return check_add(s, e);
  case KITH_EV_REMOVE:
    return check_target(s, e, me->role, &t);
  case KITH_EV_ROLE:
    return check_role(s, e, me->role);
  case KITH_EV_TOPIC:
    return me->role >= KITH_ROLE_ADMIN ? KITH_OK : KITH_ERR_FORBIDDEN;
  case KITH_EV_REKEY:
    return check_rekey(s, e);
  case KITH_EV_LEAVE:
  case KITH_EV_MESSAGE:
    return KITH_OK;
  default:
    return KITH_ERR_PROTOCOL;
  }
}

static void add_member(grp_state *s, const uint8_t id[32], const char *name,
                       kith_role role) {
  int found;
  guint i = find_pos(s->members->pdata, s->members->len, 0, 1, id, &found);
  kith_member *m = g_new0(kith_member, 1);
  memcpy(m->id, id, 32);
  m->name = g_strdup(name ? name : "");
  m->role = role;
  g_ptr_array_insert(s->members, (gint)i, m);
}

static void drop_member(grp_state *s, const uint8_t id[32]) {
  int found;
  guint i = find_pos(s->members->pdata, s->members->len, 0, 1, id, &found);
  if (found)
    member_free(g_ptr_array_steal_index(s->members, i));
}

/* Rule 6: the last owner left; the highest role, lowest id, takes over. */
static void keep_an_owner(grp_state *s) {
  kith_member *best = NULL;
  for (guint i = 0; i < s->members->len; i++) {
    kith_member *m = g_ptr_array_index(s->members, i);
    if (m->role == KITH_ROLE_OWNER)
      return;
    if (!best || m->role > best->role)
      best = m;
  }
  if (best)
    best->role = KITH_ROLE_OWNER;
}

static void add_holder(grp_state *s, const uint8_t id[32]) {
  int found;
  guint i = holder_pos(s, id, &found);
  if (!found) {
    g_byte_array_set_size(s->holders, s->holders->len + 32);
    memmove(s->holders->data + 32 * (i + 1), s->holders->data + 32 * i,
            s->holders->len - 32 * (i + 1));
    memcpy(s->holders->data + 32 * i, id, 32);
  }
}

static void add_invite(grp_state *s, const grp_inner *in) {
  int found;
  guint i = find_pos(s->invites->data, s->invites->len, sizeof(grp_invite), 0,
                     in->pk, &found);
  grp_invite inv = {.uses = in->uses, .expires = in->expires};
  memcpy(inv.pk, in->pk, 32);
  g_array_insert_val(s->invites, i, inv);
}

static void set_str(char **dst, const char *v) {
  g_free(*dst);
  *dst = g_strdup(v ? v : "");
}

static void note_change(grp_state *s, const grp_entry *e) {
  s->change_ts = e->ev.ts_ms;
  memcpy(s->change_by, e->ev.author, 32);
}

static void apply_create(grp_state *s, const grp_entry *e) {
  s->created = 1;
  set_str(&s->name, e->in.name);
  s->history = (kith_history)e->in.history;
  s->admins_only = e->in.admins_only != 0;
  s->epoch = e->epoch;
  add_member(s, e->ev.author, e->in.owner_name, KITH_ROLE_OWNER);
  add_holder(s, e->ev.author);
  note_change(s, e);
}

static void apply_add(grp_state *s, const grp_entry *e) {
  ((grp_invite *)grp_state_invite(s, e->in.pk))->used++;
  add_member(s, e->in.member, e->in.name, KITH_ROLE_MEMBER);
  /* shared: the add carried the current epoch's secret to the newcomer */
  if (s->history == KITH_HISTORY_SHARED && e->epoch == s->epoch)
    add_holder(s, e->in.member);
  note_change(s, e);
}

static void apply_rekey(grp_state *s, const grp_entry *e) {
  s->epoch = e->in.new_epoch;
  s->generation++;
  g_byte_array_set_size(s->holders, 0);
  g_byte_array_append(s->holders, e->in.holders, (guint)(32 * e->in.n_holders));
}

void grp_state_apply(grp_state *s, const grp_entry *e) {
  if (grp_state_check(s, e) != KITH_OK)
    return;
  switch (e->ev.kind) {
  case KITH_EV_CREATE:
    apply_create(s, e);
    break;
  case KITH_EV_INVITE:
    add_invite(s, &e->in);
    break;
  case KITH_EV_ADD:
    apply_add(s, e);
    break;
  case KITH_EV_REMOVE:
    drop_member(s, e->in.member);
    note_change(s, e);
    break;
  case KITH_EV_LEAVE:
    drop_member(s, e->ev.author);
    keep_an_owner(s);
    note_change(s, e);
    break;
  case KITH_EV_ROLE:
    grp_state_member(s, e->in.member)->role = (kith_role)e->in.role;
    break;
  case KITH_EV_TOPIC:
    set_str(&s->topic, e->in.text);
    break;
  case KITH_EV_REKEY:
    apply_rekey(s, e);
    break;
  default:
    break;
  }
}

void grp_state_pack(const grp_state *s, kith_pack *p) {
  kith_pack_array(p, 9);
  kith_pack_cstr(p, s->name);
  kith_pack_cstr(p, s->topic);
  kith_pack_uint(p, s->history);
  kith_pack_uint(p, (uint64_t)s->admins_only);
  kith_pack_uint(p, s->epoch);
  kith_pack_uint(p, s->generation);
  kith_pack_array(p, s->members->len);
  for (guint i = 0; i < s->members->len; i++) {
    const kith_member *m = g_ptr_array_index(s->members, i);
    kith_pack_array(p, 3);
    kith_pack_bin(p, m->id, 32);
    kith_pack_uint(p, m->role);
    kith_pack_cstr(p, m->name);
  }
  kith_pack_array(p, s->invites->len);
  for (guint i = 0; i < s->invites->len; i++) {
    const grp_invite *inv = &g_array_index(s->invites, grp_invite, i);
    kith_pack_array(p, 4);
    kith_pack_bin(p, inv->pk, 32);
    kith_pack_uint(p, inv->uses);
    kith_pack_uint(p, inv->used);
    kith_pack_uint(p, inv->expires);
  }
  kith_pack_bin(p, s->holders->data, s->holders->len);
}
