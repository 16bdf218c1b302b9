/* kith: the derived state of a group and the rules events must follow.
 *
 * The same check decides both whether an event is accepted on receipt
 * (against the state at its parents) and whether it has an effect when
 * the full set is folded in (depth, id) order. An accepted event whose
 * rule no longer holds at its place in the fold (the later of two
 * concurrent adds spending a single-use invite) stays in the set without
 * effect, so the state remains a function of the set of events. */
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
  g_free(in->text);
  g_free(in->name);
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

kith_err grp_state_check(const grp_state *s, const grp_entry *e) {
  const kith_event *ev = &e->ev;
  if (ev->kind == KITH_EV_CREATE)
    return s->created ? KITH_ERR_PROTOCOL : KITH_OK;
  if (!s->created)
    return KITH_ERR_PROTOCOL;
  if (!grp_state_member(s, ev->author))
    return KITH_ERR_NOT_MEMBER;
  switch (ev->kind) {
  case KITH_EV_INVITE:
    if (grp_state_invite(s, e->in.pk))
      return KITH_ERR_EXISTS;
    return s->invites->len >= GROUP_MAX_INVITES ? KITH_ERR_LIMIT : KITH_OK;
  case KITH_EV_ADD: {
    kith_err rc = grp_state_check_invite(s, e->in.pk, ev->ts_ms);
    if (rc != KITH_OK)
      return rc;
    if (grp_state_member(s, e->in.member))
      return KITH_ERR_EXISTS;
    return s->members->len >= KITH_GROUP_MAX_MEMBERS ? KITH_ERR_LIMIT : KITH_OK;
  }
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

static void add_invite(grp_state *s, const grp_inner *in) {
  int found;
  guint i = find_pos(s->invites->data, s->invites->len, sizeof(grp_invite), 0,
                     in->pk, &found);
  grp_invite inv = {.uses = in->uses, .expires = in->expires};
  memcpy(inv.pk, in->pk, 32);
  g_array_insert_val(s->invites, i, inv);
}

void grp_state_apply(grp_state *s, const grp_entry *e) {
  if (grp_state_check(s, e) != KITH_OK)
    return;
  switch (e->ev.kind) {
  case KITH_EV_CREATE:
    s->created = 1;
    g_free(s->name);
    s->name = g_strdup(e->in.name);
    s->history = (kith_history)e->in.history;
    s->epoch = e->epoch;
    add_member(s, e->ev.author, "", KITH_ROLE_OWNER);
    break;
  case KITH_EV_INVITE:
    add_invite(s, &e->in);
    break;
  case KITH_EV_ADD:
    ((grp_invite *)grp_state_invite(s, e->in.pk))->used++;
    add_member(s, e->in.member, e->in.name, KITH_ROLE_MEMBER);
    break;
  default:
    break;
  }
}

void grp_state_pack(const grp_state *s, kith_pack *p) {
  kith_pack_cstr(p, s->name);
  kith_pack_cstr(p, s->topic);
  kith_pack_uint(p, s->history);
  kith_pack_uint(p, s->epoch);
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
}
