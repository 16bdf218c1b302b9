/* kith: the derived state of a group and its rules (group_int.h).
 *
 * The state of a set of control events is a fold of them in (depth, id)
 * order. docs/protocol.md 5.7-5.9 states every rule; in short:
 *
 * - Authority is judged once, at an event's parents (grp_state_check):
 *   who is a member, with which role, which invite is valid. Removing,
 *   banning, demoting or muting someone needs a higher rank than theirs:
 *   a higher role, or the same role and an earlier admission.
 * - Power events take power away: a remove or ban (an exit of its target)
 *   and a demotion. They are resolved first, the most senior author first
 *   (the author's role, then admission, at the event's parents; then
 *   depth and id). A power event whose author already lost that power to
 *   an earlier-resolved power event it is concurrent with has no effect.
 * - Removal is final: an event by a member who left or was removed, that
 *   is concurrent with that exit (neither in the other's causal past),
 *   changes nothing; so does an event that needed a role its author lost
 *   to a concurrent demotion, and an event whose author's admission had
 *   no effect. Back-dating (old parents) only makes an event concurrent
 *   with more, never more powerful.
 * - Then, in (depth, id) order, each event takes effect if the state
 *   folded so far allows it: an add only while its invite has uses left,
 *   is not revoked or expired at the add's time, and the newcomer is not a
 *   member nor banned; a rekey only if none of the members it was sealed
 *   to exited concurrently with it; the last role, topic and setting
 *   event that takes effect wins. */
#include "group_int.h"

#include <sodium.h>
#include <string.h>

#include "codec.h"

void grp_state_init(grp_state *s) {
  memset(s, 0, sizeof *s);
  s->name = "";
  s->topic = "";
  s->epoch_ctl = GRP_NO_CSEQ;
  s->members = g_array_new(FALSE, TRUE, sizeof(grp_member));
  s->invites = g_array_new(FALSE, TRUE, sizeof(grp_invite));
  s->bans = g_byte_array_new();
  s->shared = g_byte_array_new();
  s->reports = g_array_new(FALSE, TRUE, sizeof(grp_report));
  s->needs = g_array_new(FALSE, TRUE, sizeof(grp_need));
}

void grp_state_clear(grp_state *s) {
  if (s->members)
    g_array_free(s->members, TRUE);
  if (s->invites)
    g_array_free(s->invites, TRUE);
  if (s->bans)
    g_byte_array_free(s->bans, TRUE);
  if (s->shared)
    g_byte_array_free(s->shared, TRUE);
  if (s->reports)
    g_array_free(s->reports, TRUE);
  if (s->needs)
    g_array_free(s->needs, TRUE);
  memset(s, 0, sizeof *s);
}

static GArray *array_dup(GArray *a, guint size) {
  GArray *c = g_array_sized_new(FALSE, TRUE, size, a->len);
  g_array_append_vals(c, a->data, a->len);
  return c;
}

static GByteArray *bytes_dup(GByteArray *a) {
  GByteArray *c = g_byte_array_sized_new(a->len);
  g_byte_array_append(c, a->data, a->len);
  return c;
}

void grp_state_copy(grp_state *dst, const grp_state *src) {
  *dst = *src;
  dst->members = array_dup(src->members, sizeof(grp_member));
  dst->invites = array_dup(src->invites, sizeof(grp_invite));
  dst->bans = bytes_dup(src->bans);
  dst->shared = bytes_dup(src->shared);
  dst->reports = array_dup(src->reports, sizeof(grp_report));
  dst->needs = array_dup(src->needs, sizeof(grp_need));
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

int grp_topic_is_valid(const char *s, size_t len) {
  if (!s || len > KITH_TOPIC_MAX || memchr(s, 0, len) ||
      !g_utf8_validate_len(s, len, NULL))
    return 0;
  for (const char *p = s; p < s + len; p = g_utf8_next_char(p))
    if (g_unichar_iscntrl(g_utf8_get_char(p)))
      return 0;
  return 1;
}

int grp_emoji_is_valid(const char *s, size_t len) {
  return len >= 1 && len <= KITH_EMOJI_MAX && grp_topic_is_valid(s, len) &&
         !g_unichar_isspace(g_utf8_get_char(s));
}

guint grp_bsearch(const void *base, guint n, size_t stride,
                  int (*cmp)(const void *elem, const void *key),
                  const void *key, int *found) {
  guint lo = 0, hi = n;
  *found = 0;
  while (lo < hi) {
    guint mid = lo + (hi - lo) / 2;
    int c = cmp((const uint8_t *)base + mid * stride, key);
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

static int cmp_id(const void *elem, const void *key) {
  return memcmp(elem, key, 32);
}

/* Binary search for a 32-byte key at the start of fixed-size elements. */
static guint find_pos(const void *base, guint n, size_t stride,
                      const uint8_t key[32], int *found) {
  return grp_bsearch(base, n, stride, cmp_id, key, found);
}

grp_member *grp_state_member(const grp_state *s, const uint8_t id[32]) {
  int found;
  guint i = find_pos(s->members->data, s->members->len, sizeof(grp_member), id,
                     &found);
  return found ? &g_array_index(s->members, grp_member, i) : NULL;
}

grp_invite *grp_state_invite(const grp_state *s, const uint8_t pk[32]) {
  int found;
  guint i = find_pos(s->invites->data, s->invites->len, sizeof(grp_invite), pk,
                     &found);
  return found ? &g_array_index(s->invites, grp_invite, i) : NULL;
}

static int ids_has(const GByteArray *a, const uint8_t id[32]) {
  int found;
  find_pos(a->data, a->len / 32, 32, id, &found);
  return found;
}

static void ids_add(GByteArray *a, const uint8_t id[32]) {
  int found;
  guint i = find_pos(a->data, a->len / 32, 32, id, &found);
  if (found)
    return;
  g_byte_array_set_size(a, a->len + 32);
  memmove(a->data + 32 * (i + 1), a->data + 32 * i, a->len - 32 * (i + 1));
  memcpy(a->data + 32 * i, id, 32);
}

static void ids_del(GByteArray *a, const uint8_t id[32]) {
  int found;
  guint i = find_pos(a->data, a->len / 32, 32, id, &found);
  if (found)
    g_byte_array_remove_range(a, 32 * i, 32);
}

int grp_state_is_banned(const grp_state *s, const uint8_t id[32]) {
  return ids_has(s->bans, id);
}

int grp_state_outranks(const kith_group *g, const grp_member *a,
                       const grp_member *b) {
  if (a->m.role != b->m.role)
    return a->m.role > b->m.role;
  const grp_ctl *x = grp_ctl_at(g, a->since), *y = grp_ctl_at(g, b->since);
  return x && y && grp_ctl_cmp(x, y) < 0;
}

/* The rekeys a member made since the last membership change in the fold
 * (whether they took effect or not). */
static uint32_t rekey_run(const grp_state *s, const grp_member *m) {
  return m->run_gen == s->change_gen ? m->run : 0;
}

kith_err grp_state_check_invite(const grp_state *s, const uint8_t pk[32],
                                uint64_t ts) {
  const grp_invite *inv = grp_state_invite(s, pk);
  if (!inv || inv->revoked)
    return KITH_ERR_NOT_FOUND;
  if (ts >= inv->expires)
    return KITH_ERR_EXPIRED;
  if (inv->used >= inv->uses)
    return KITH_ERR_USED_UP;
  return KITH_OK;
}

static size_t live_invites_by(const grp_state *s, const uint8_t by[32],
                              uint64_t ts) {
  size_t n = 0;
  for (guint i = 0; i < s->invites->len; i++) {
    const grp_invite *v = &g_array_index(s->invites, grp_invite, i);
    n += !v->revoked && v->used < v->uses && v->expires > ts &&
         memcmp(v->by, by, 32) == 0;
  }
  return n;
}

/* ---- the rules at an event's parents ---- */

/* remove, ban, role, mute: who may act on whom. */
static kith_err check_target(const kith_group *g, const grp_state *s,
                             const grp_member *me, const grp_inner *in,
                             int need_member, const grp_member **t) {
  if (me->m.role < KITH_ROLE_ADMIN)
    return KITH_ERR_FORBIDDEN;
  if (memcmp(in->member, me->m.id, 32) == 0)
    return KITH_ERR_FORBIDDEN;
  *t = grp_state_member(s, in->member);
  if (!*t)
    return need_member ? KITH_ERR_NOT_MEMBER : KITH_OK;
  return grp_state_outranks(g, me, *t) ? KITH_OK : KITH_ERR_FORBIDDEN;
}

static kith_err check_invite_ev(const grp_state *s, const grp_member *me,
                                const grp_inner *in, uint64_t ts) {
  if (s->admins_only && me->m.role < KITH_ROLE_ADMIN)
    return KITH_ERR_FORBIDDEN;
  if (grp_state_invite(s, in->pk))
    return KITH_ERR_EXISTS;
  if (s->invites->len >= GROUP_MAX_INVITES ||
      live_invites_by(s, me->m.id, ts) >= GROUP_MAX_LIVE_INVITES)
    return KITH_ERR_LIMIT;
  return KITH_OK;
}

/* Sealed boxes (add and rekey key lists) can be made to this id: it is an
 * Ed25519 key that converts to an X25519 one. The join proof is signed by
 * the invite key, not by the newcomer, so the add must check it: a member
 * nobody can seal to would make every later rekey fail. */
static int can_seal_to(const uint8_t id[32]) {
  uint8_t x[crypto_box_PUBLICKEYBYTES];
  return crypto_sign_ed25519_pk_to_curve25519(x, id) == 0;
}

static kith_err check_add(const grp_state *s, const grp_inner *in,
                          uint64_t ts) {
  if (!can_seal_to(in->member))
    return KITH_ERR_ARG;
  kith_err rc = grp_state_check_invite(s, in->pk, ts);
  if (rc != KITH_OK)
    return rc;
  if (grp_state_member(s, in->member))
    return KITH_ERR_EXISTS;
  if (grp_state_is_banned(s, in->member))
    return KITH_ERR_FORBIDDEN;
  return s->members->len >= KITH_GROUP_MAX_MEMBERS ? KITH_ERR_LIMIT : KITH_OK;
}

static kith_err check_role(const kith_group *g, const grp_state *s,
                           const grp_member *me, const grp_inner *in) {
  const grp_member *t;
  kith_err rc = check_target(g, s, me, in, 1, &t);
  if (rc != KITH_OK)
    return rc;
  if (in->role > me->m.role)
    return KITH_ERR_FORBIDDEN;
  return t->m.role == in->role ? KITH_ERR_EXISTS : KITH_OK;
}

static kith_err check_ban(const kith_group *g, const grp_state *s,
                          const grp_member *me, const grp_inner *in) {
  const grp_member *t;
  kith_err rc = check_target(g, s, me, in, 0, &t);
  if (rc == KITH_OK && grp_state_is_banned(s, in->member))
    return KITH_ERR_EXISTS;
  return rc;
}

static kith_err check_revoke(const grp_state *s, const grp_member *me,
                             const grp_inner *in) {
  const grp_invite *inv = grp_state_invite(s, in->pk);
  if (!inv)
    return KITH_ERR_NOT_FOUND;
  if (inv->revoked)
    return KITH_ERR_EXISTS;
  return memcmp(inv->by, me->m.id, 32) == 0 || me->m.role >= KITH_ROLE_ADMIN
             ? KITH_OK
             : KITH_ERR_FORBIDDEN;
}

static kith_err check_settings(const grp_state *s, const grp_member *me,
                               const grp_inner *in) {
  if (me->m.role < KITH_ROLE_ADMIN)
    return KITH_ERR_FORBIDDEN;
  int cur = in->key == GRP_SET_INVITES ? s->admins_only : s->announce;
  return (uint64_t)cur == in->value ? KITH_ERR_EXISTS : KITH_OK;
}

static kith_err check_mute(const kith_group *g, const grp_state *s,
                           const grp_member *me, const grp_inner *in,
                           uint64_t ts) {
  const grp_member *t;
  kith_err rc = check_target(g, s, me, in, 1, &t);
  if (rc == KITH_OK && in->until == 0 && t->muted_until <= ts)
    return KITH_ERR_EXISTS; /* unmuting someone who is not muted */
  return rc;
}

/* Posting: messages and their kin. */
static kith_err check_post(const grp_state *s, const grp_member *me,
                           uint32_t kind, uint64_t ts) {
  if (me->muted_until > ts)
    return KITH_ERR_FORBIDDEN;
  if (kind == KITH_EV_MESSAGE && s->announce && me->m.role < KITH_ROLE_ADMIN)
    return KITH_ERR_FORBIDDEN;
  return KITH_OK;
}

kith_err grp_state_check(const kith_group *g, const grp_state *s, uint32_t kind,
                         const uint8_t author[32], const grp_inner *in,
                         uint64_t ts) {
  if (kind == KITH_EV_CREATE)
    return s->created ? KITH_ERR_PROTOCOL : KITH_OK;
  if (!s->created)
    return KITH_ERR_PROTOCOL;
  const grp_member *me = grp_state_member(s, author);
  if (!me)
    return KITH_ERR_NOT_MEMBER;
  const grp_member *t;
  switch (kind) {
  case KITH_EV_INVITE:
    return check_invite_ev(s, me, in, ts);
  case KITH_EV_ADD:
    return check_add(s, in, ts);
  case KITH_EV_REMOVE:
    return check_target(g, s, me, in, 1, &t);
  case KITH_EV_BAN:
    return check_ban(g, s, me, in);
  case KITH_EV_UNBAN:
    if (me->m.role < KITH_ROLE_ADMIN)
      return KITH_ERR_FORBIDDEN;
    return grp_state_is_banned(s, in->member) ? KITH_OK : KITH_ERR_NOT_FOUND;
  case KITH_EV_ROLE:
    return check_role(g, s, me, in);
  case KITH_EV_TOPIC:
    return me->m.role >= KITH_ROLE_ADMIN ? KITH_OK : KITH_ERR_FORBIDDEN;
  case KITH_EV_SETTINGS:
    return check_settings(s, me, in);
  case KITH_EV_REVOKE:
    return check_revoke(s, me, in);
  case KITH_EV_MUTE:
    return check_mute(g, s, me, in, ts);
  case KITH_EV_MESSAGE:
  case KITH_EV_REACT:
  case KITH_EV_EDIT:
  case KITH_EV_DELETE:
    return check_post(s, me, kind, ts);
  case KITH_EV_REKEY:
    return rekey_run(s, me) < KITH_REKEY_RUN ? KITH_OK : KITH_ERR_LIMIT;
  case KITH_EV_LEAVE:
  case KITH_EV_NEED: /* their rules need the causal past: group_need.c */
  case KITH_EV_KEYS:
    return KITH_OK;
  default:
    return KITH_ERR_PROTOCOL;
  }
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* The role that lets the author act on the member t: t's role if the
 * author was admitted first, else one above it; at least admin. */
static uint8_t to_outrank(const kith_group *g, const grp_member *me,
                          const grp_member *t) {
  if (!me || !t)
    return KITH_ROLE_ADMIN;
  const grp_ctl *x = grp_ctl_at(g, me->since), *y = grp_ctl_at(g, t->since);
  unsigned r = t->m.role + (x && y && grp_ctl_cmp(x, y) < 0 ? 0 : 1);
  return (uint8_t)MAX(KITH_ROLE_ADMIN, r);
}

/* The role an event needs of its author (decided at its parents): acting
 * on a member needs a rank above the member's, so a demotion concurrent
 * with the act voids it if the author no longer outranks the target. */
static uint8_t needs_of(const kith_group *g, const grp_state *s,
                        const grp_ctl *c) {
  const grp_member *me = grp_state_member(s, c->author);
  const grp_member *t = grp_state_member(s, c->in.member);
  switch (c->kind) {
  case KITH_EV_REMOVE:
  case KITH_EV_BAN:
  case KITH_EV_MUTE:
    return to_outrank(g, me, t);
  case KITH_EV_UNBAN:
  case KITH_EV_TOPIC:
  case KITH_EV_SETTINGS:
    return KITH_ROLE_ADMIN;
  case KITH_EV_ROLE:
    return (uint8_t)MAX(to_outrank(g, me, t), c->in.role);
  case KITH_EV_INVITE:
    return s->admins_only ? KITH_ROLE_ADMIN : KITH_ROLE_MEMBER;
  case KITH_EV_REVOKE: {
    const grp_invite *inv = grp_state_invite(s, c->in.pk);
    return inv && memcmp(inv->by, c->author, 32) == 0 ? KITH_ROLE_MEMBER
                                                      : KITH_ROLE_ADMIN;
  }
  default:
    return KITH_ROLE_MEMBER;
  }
}

void grp_state_note_facts(kith_group *g, const grp_state *s, grp_ctl *c) {
  const grp_member *me = grp_state_member(s, c->author);
  const grp_member *t = grp_state_member(s, c->in.member);
  c->a_role = me ? (uint8_t)me->m.role : 0;
  c->a_since = me ? me->since : GRP_NO_CSEQ;
  c->t_role = t ? (uint8_t)t->m.role : 0;
  c->needs = needs_of(g, s, c);
  c->power = GRP_POWER_NONE;
  if ((c->kind == KITH_EV_REMOVE || c->kind == KITH_EV_BAN) && t)
    c->power = GRP_POWER_EXIT;
  else if (c->kind == KITH_EV_ROLE && t && c->in.role < t->m.role)
    c->power = GRP_POWER_DEMOTE;
  if (c->kind == KITH_EV_REKEY && !c->rcpt) {
    c->n_rcpt = s->members->len;
    c->rcpt = g_new(uint32_t, c->n_rcpt ? c->n_rcpt : 1);
    for (guint i = 0; i < s->members->len; i++)
      c->rcpt[i] =
          grp_member_number(g, g_array_index(s->members, grp_member, i).m.id);
    qsort(c->rcpt, c->n_rcpt, sizeof *c->rcpt, cmp_u32);
  }
}

/* ---- the fold ---- */

typedef struct fold_ctx {
  kith_group *g;
  const grp_ivs *sub;
  uint8_t *eff;        /* by cseq: took effect in this fold */
  uint8_t *peff;       /* by cseq: power event not voided (pass 1) */
  uint8_t *rank;       /* by cseq: a power event's author role (pass 1) */
  GHashTable *exits;   /* target id -> GPtrArray of grp_ctl* */
  GHashTable *demotes; /* target id -> GPtrArray of grp_ctl* */
} fold_ctx;

static int in_sub(const fold_ctx *x, const grp_ctl *c) {
  return !x->sub || grp_ivs_has(x->sub, c->cseq);
}

static guint id_hash(gconstpointer p) {
  guint h;
  memcpy(&h, p, sizeof h);
  return h;
}

static gboolean id_equal(gconstpointer a, gconstpointer b) {
  return memcmp(a, b, 32) == 0;
}

static void note_power(GHashTable *t, const uint8_t target[32], grp_ctl *c) {
  GPtrArray *l = g_hash_table_lookup(t, target);
  if (!l) {
    l = g_ptr_array_new();
    g_hash_table_insert(t, (gpointer)target, l);
  }
  g_ptr_array_add(l, c);
}

/* Did the author of c lose, to a power event concurrent with c, the
 * membership or role c needs? */
static int voided(const fold_ctx *x, const grp_ctl *c) {
  GPtrArray *l = g_hash_table_lookup(x->exits, c->author);
  for (guint i = 0; l && i < l->len; i++)
    if (l->pdata[i] != c && grp_ctl_concurrent(l->pdata[i], c))
      return 1;
  l = g_hash_table_lookup(x->demotes, c->author);
  for (guint i = 0; l && i < l->len; i++) {
    const grp_ctl *q = l->pdata[i];
    if (q->in.role < c->needs && grp_ctl_concurrent(q, c))
      return 1;
  }
  return 0;
}

/* Resolution order of power events: the most senior author first, by the
 * author's role for the event (x->rank), then admission, then the event's
 * own (depth, id). */
static gint power_cmp(gconstpointer a, gconstpointer b, gpointer ud) {
  const fold_ctx *x = ud;
  const grp_ctl *c = *(const grp_ctl *const *)a;
  const grp_ctl *d = *(const grp_ctl *const *)b;
  if (x->rank[c->cseq] != x->rank[d->cseq])
    return x->rank[c->cseq] > x->rank[d->cseq] ? -1 : 1;
  const grp_ctl *sc = grp_ctl_at(x->g, c->a_since),
                *sd = grp_ctl_at(x->g, d->a_since);
  if (sc != sd && sc && sd)
    return grp_ctl_cmp(sc, sd);
  return grp_ctl_cmp(c, d);
}

/* A demotion q took effect: the author it demoted ranks no higher than
 * its new role in its power events concurrent with q that are still to
 * be resolved (from index `from` of p). Back-dating an act to parents
 * from before one's demotion thus gains no seniority. Returns whether a
 * rank changed (the rest of p must be sorted again). */
static int lower_ranks(fold_ctx *x, GPtrArray *p, guint from,
                       const grp_ctl *q) {
  int changed = 0;
  for (guint i = from; i < p->len; i++) {
    const grp_ctl *c = p->pdata[i];
    if (memcmp(c->author, q->in.member, 32) == 0 &&
        x->rank[c->cseq] > q->in.role && grp_ctl_concurrent(c, q)) {
      x->rank[c->cseq] = (uint8_t)q->in.role;
      changed = 1;
    }
  }
  return changed;
}

static void resolve_power(fold_ctx *x) {
  GPtrArray *p = g_ptr_array_new();
  for (guint i = 0; i < x->g->ctl->len; i++) {
    grp_ctl *c = x->g->ctl->pdata[i];
    if (!in_sub(x, c))
      continue;
    if (c->kind == KITH_EV_LEAVE)
      note_power(x->exits, c->author, c);
    else if (c->power != GRP_POWER_NONE)
      g_ptr_array_add(p, c), x->rank[c->cseq] = c->a_role;
  }
  g_ptr_array_sort_with_data(p, power_cmp, x);
  for (guint i = 0; i < p->len; i++) {
    grp_ctl *c = p->pdata[i];
    if (voided(x, c))
      continue;
    x->peff[c->cseq] = 1;
    note_power(c->power == GRP_POWER_EXIT ? x->exits : x->demotes, c->in.member,
               c);
    if (c->power == GRP_POWER_DEMOTE && lower_ranks(x, p, i + 1, c))
      g_qsort_with_data(p->pdata + i + 1, (gint)(p->len - i - 1),
                        sizeof(gpointer), power_cmp, x);
  }
  g_ptr_array_free(p, TRUE);
}

static void note_change(grp_state *s, const grp_ctl *c) {
  s->change_ts = c->ts;
  memcpy(s->change_by, c->author, 32);
  s->change_gen++; /* every member's run of rekeys starts again */
}

static void count_rekey(grp_state *s, const grp_ctl *c) {
  grp_member *m =
      c->kind == KITH_EV_REKEY ? grp_state_member(s, c->author) : NULL;
  if (m) {
    m->run = rekey_run(s, m) + 1;
    m->run_gen = s->change_gen;
  }
}

static void add_member(grp_state *s, const uint8_t id[32], const char *name,
                       kith_role role, uint32_t since) {
  int found;
  guint i = find_pos(s->members->data, s->members->len, sizeof(grp_member), id,
                     &found);
  grp_member m = {.m = {.name = (char *)(name ? name : ""), .role = role},
                  .since = since};
  memcpy(m.m.id, id, 32);
  g_array_insert_val(s->members, i, m);
}

static int drop_member(grp_state *s, const uint8_t id[32]) {
  int found;
  guint i = find_pos(s->members->data, s->members->len, sizeof(grp_member), id,
                     &found);
  if (found)
    g_array_remove_index(s->members, i);
  return found;
}

/* "Removing a member revokes that member's invites." */
static void revoke_by(grp_state *s, const uint8_t by[32]) {
  for (guint i = 0; i < s->invites->len; i++) {
    grp_invite *v = &g_array_index(s->invites, grp_invite, i);
    if (memcmp(v->by, by, 32) == 0)
      v->revoked = 1;
  }
}

/* Rule 6: the last owner left; the highest role, lowest id, takes over. */
static void keep_an_owner(grp_state *s) {
  grp_member *best = NULL;
  for (guint i = 0; i < s->members->len; i++) {
    grp_member *m = &g_array_index(s->members, grp_member, i);
    if (m->m.role == KITH_ROLE_OWNER)
      return;
    if (!best || m->m.role > best->m.role)
      best = m;
  }
  if (best)
    best->m.role = KITH_ROLE_OWNER;
}

static void exit_member(grp_state *s, const grp_ctl *c, const uint8_t who[32]) {
  if (drop_member(s, who))
    note_change(s, c);
  revoke_by(s, who);
}

static int apply_add(kith_group *g, grp_state *s, const grp_ctl *c) {
  grp_invite *inv = grp_state_invite(s, c->in.pk);
  if (!inv || inv->revoked || inv->used >= inv->uses || c->ts >= inv->expires ||
      grp_state_member(s, c->in.member) ||
      grp_state_is_banned(s, c->in.member) ||
      s->members->len >= KITH_GROUP_MAX_MEMBERS) /* concurrent adds */
    return 0;
  inv->used++;
  add_member(s, c->in.member, c->in.name, KITH_ROLE_MEMBER, c->cseq);
  (void)grp_member_number(g, c->in.member);
  /* shared: the add carried the current epoch's secret to the newcomer */
  if (s->history == KITH_HISTORY_SHARED && c->epoch == s->epoch)
    ids_add(s->shared, c->in.member);
  note_change(s, c);
  return 1;
}

static void apply_invite(grp_state *s, const grp_ctl *c) {
  int found;
  guint i = find_pos(s->invites->data, s->invites->len, sizeof(grp_invite),
                     c->in.pk, &found);
  if (found)
    return;
  grp_invite v = {
      .uses = c->in.uses, .expires = c->in.expires, .cseq = c->cseq};
  memcpy(v.pk, c->in.pk, 32);
  memcpy(v.by, c->author, 32);
  g_array_insert_val(s->invites, i, v);
}

static int rcpt_has(const grp_ctl *k, uint32_t num) {
  /* a rekey read from the store may name no one (rcpt NULL) */
  return k->n_rcpt > 0 &&
         bsearch(&num, k->rcpt, k->n_rcpt, sizeof num, cmp_u32) != NULL;
}

/* Rule 3: a rekey takes effect only if none of the members it was sealed
 * to exited concurrently with it. */
static int rekey_stands(const fold_ctx *x, const grp_ctl *k) {
  GHashTableIter it;
  gpointer key, val;
  g_hash_table_iter_init(&it, x->exits);
  while (g_hash_table_iter_next(&it, &key, &val)) {
    gpointer num = g_hash_table_lookup(x->g->mnum, key);
    if (!num || !rcpt_has(k, GPOINTER_TO_UINT(num) - 1))
      continue;
    GPtrArray *l = val;
    for (guint i = 0; i < l->len; i++) {
      const grp_ctl *q = l->pdata[i];
      if ((q->kind == KITH_EV_LEAVE || x->peff[q->cseq]) &&
          grp_ctl_concurrent(q, k))
        return 0;
    }
  }
  return 1;
}

static void apply_rekey(grp_state *s, grp_ctl *c) {
  s->epoch = c->in.new_epoch;
  s->generation++;
  s->epoch_ctl = c->cseq;
  g_byte_array_set_size(s->shared, 0);
  if (c->in.has_ref) /* a recovery: its author's need reported the forger */
    s->ext = 1;
}

static void apply_settings(grp_state *s, const grp_ctl *c) {
  if (c->in.key == GRP_SET_INVITES)
    s->admins_only = c->in.value != 0;
  else
    s->announce = c->in.value != 0;
}

static void apply_create(kith_group *g, grp_state *s, const grp_ctl *c) {
  s->created = 1;
  s->name = c->in.name;
  s->history = (kith_history)c->in.history;
  s->admins_only = c->in.admins_only != 0;
  s->epoch = c->epoch;
  s->epoch_ctl = c->cseq;
  add_member(s, c->author, c->in.owner_name, KITH_ROLE_OWNER, c->cseq);
  (void)grp_member_number(g, c->author);
  note_change(s, c);
}

/* The kind's own effect at its place in the fold; 1 if it took effect. */
static int apply(fold_ctx *x, grp_state *s, grp_ctl *c) {
  grp_member *t;
  switch (c->kind) {
  case KITH_EV_CREATE:
    apply_create(x->g, s, c);
    return 1;
  case KITH_EV_INVITE:
    apply_invite(s, c);
    return 1;
  case KITH_EV_ADD:
    return apply_add(x->g, s, c);
  case KITH_EV_REMOVE:
  case KITH_EV_BAN:
    ids_add(s->bans, c->in.member);
    exit_member(s, c, c->in.member);
    return 1;
  case KITH_EV_UNBAN:
    ids_del(s->bans, c->in.member);
    return 1;
  case KITH_EV_LEAVE:
    exit_member(s, c, c->author);
    keep_an_owner(s);
    return 1;
  case KITH_EV_ROLE:
    if (!(t = grp_state_member(s, c->in.member)))
      return 0;
    t->m.role = (kith_role)c->in.role;
    return 1;
  case KITH_EV_TOPIC:
    s->topic = c->in.text ? c->in.text : "";
    return 1;
  case KITH_EV_SETTINGS:
    apply_settings(s, c);
    return 1;
  case KITH_EV_REVOKE: {
    grp_invite *inv = grp_state_invite(s, c->in.pk);
    if (inv)
      inv->revoked = 1;
    return inv != NULL;
  }
  case KITH_EV_MUTE:
    if (!(t = grp_state_member(s, c->in.member)))
      return 0;
    t->muted_until = c->in.until;
    return 1;
  case KITH_EV_REKEY:
    if (!rekey_stands(x, c))
      return 0;
    apply_rekey(s, c);
    return 1;
  case KITH_EV_NEED:
  case KITH_EV_KEYS:
    return grp_need_apply(x->g, s, c);
  default:
    return 0;
  }
}

static int decide(fold_ctx *x, const grp_ctl *c) {
  if (c->kind == KITH_EV_CREATE)
    return 1;
  if (c->power != GRP_POWER_NONE ? !x->peff[c->cseq] : voided(x, c))
    return 0;
  return c->a_since != GRP_NO_CSEQ && x->eff[c->a_since];
}

static void fold_one(fold_ctx *x, grp_state *s, grp_ctl *c) {
  count_rekey(s, c);
  int e = decide(x, c) && apply(x, s, c);
  x->eff[c->cseq] = (uint8_t)e;
  if (e && c->kind > KITH_EV_MESSAGE)
    s->ext = 1;
}

static void ctx_init(fold_ctx *x, kith_group *g, const grp_ivs *sub) {
  x->g = g;
  x->sub = sub;
  x->eff = g_new0(uint8_t, g->ctl->len + 1);
  x->peff = g_new0(uint8_t, g->ctl->len + 1);
  x->rank = g_new0(uint8_t, g->ctl->len + 1);
  x->exits = g_hash_table_new_full(id_hash, id_equal, NULL,
                                   (GDestroyNotify)g_ptr_array_unref);
  x->demotes = g_hash_table_new_full(id_hash, id_equal, NULL,
                                     (GDestroyNotify)g_ptr_array_unref);
}

static void ctx_clear(fold_ctx *x) {
  g_free(x->eff);
  g_free(x->peff);
  g_free(x->rank);
  g_hash_table_destroy(x->exits);
  g_hash_table_destroy(x->demotes);
}

void grp_fold(kith_group *g, const grp_ivs *sub, grp_state *out) {
  g->stats.fold_steps += g->ctl->len + g->order->len;
  fold_ctx x;
  ctx_init(&x, g, sub);
  grp_state_init(out);
  resolve_power(&x);
  for (guint i = 0; i < g->order->len; i++) {
    grp_ctl *c = g->order->pdata[i];
    if (in_sub(&x, c))
      fold_one(&x, out, c);
  }
  if (!sub)
    for (guint i = 0; i < g->ctl->len; i++)
      ((grp_ctl *)g->ctl->pdata[i])->effective = x.eff[i];
  ctx_clear(&x);
}

void grp_fold_append(kith_group *g, grp_ctl *c) {
  g->stats.fold_steps++;
  /* Nothing is concurrent with c: no power event can void it, no exit is
   * concurrent with it, and it sorts after every control event. */
  fold_ctx x = {.g = g};
  x.exits = g_hash_table_new(id_hash, id_equal);
  x.demotes = g_hash_table_new(id_hash, id_equal);
  const grp_ctl *since = grp_ctl_at(g, c->a_since);
  count_rekey(&g->st, c);
  int e = c->kind == KITH_EV_CREATE || (since && since->effective);
  e = e && apply(&x, &g->st, c);
  c->effective = (uint8_t)e;
  if (e && c->kind > KITH_EV_MESSAGE)
    g->st.ext = 1;
  g_hash_table_destroy(x.exits);
  g_hash_table_destroy(x.demotes);
}

/* ---- states at frontiers (a small LRU cache) ---- */

void grp_state_cache_drop(kith_group *g, grp_front *f) {
  if (!f->st)
    return;
  g_queue_delete_link(&g->st_cache, f->st_link);
  grp_state_clear(f->st);
  g_free(f->st);
  f->st = NULL;
  f->st_link = NULL;
}

const grp_state *grp_state_at(kith_group *g, grp_front *f) {
  if (f == g->ctl_heads)
    return &g->st;
  if (f->st) {
    g_queue_unlink(&g->st_cache, f->st_link);
    g_queue_push_head_link(&g->st_cache, f->st_link);
    return f->st;
  }
  while (g->st_cache.length >= GROUP_STATE_CACHE)
    grp_state_cache_drop(g, g_queue_peek_tail(&g->st_cache));
  f->st = g_new0(grp_state, 1);
  grp_fold(g, &f->anc, f->st);
  g_queue_push_head(&g->st_cache, f);
  f->st_link = g_queue_peek_head_link(&g->st_cache);
  return f->st;
}

/* ---- holders, exposure, who rekeys ---- */

void grp_state_holders(kith_group *g, const grp_state *s, GByteArray *out) {
  g_byte_array_set_size(out, 0);
  const grp_ctl *c = grp_ctl_at(g, s->epoch_ctl);
  if (c && c->kind == KITH_EV_CREATE)
    ids_add(out, c->author);
  for (uint32_t i = 0; c && c->kind == KITH_EV_REKEY && i < c->n_rcpt; i++)
    ids_add(out, grp_member_id(g, c->rcpt[i]));
  for (guint i = 0; i + 32 <= s->shared->len; i += 32)
    ids_add(out, s->shared->data + i);
}

void grp_state_exposed(kith_group *g, const grp_state *s, GByteArray *out) {
  grp_state_holders(g, s, out);
  if (s->history != KITH_HISTORY_SHARED)
    return;
  g->stats.fold_steps += g->ctl->len;
  for (guint i = 0; i < g->ctl->len; i++) {
    const grp_ctl *c = g->ctl->pdata[i];
    if (c->kind == KITH_EV_ADD && c->epoch == s->epoch)
      ids_add(out, c->in.member);
  }
}

static int same_as_members(const grp_state *s, const GByteArray *ids) {
  if (ids->len / 32 != s->members->len)
    return 0;
  for (guint i = 0; i < s->members->len; i++)
    if (memcmp(g_array_index(s->members, grp_member, i).m.id,
               ids->data + 32 * i, 32) != 0)
      return 0;
  return 1;
}

int grp_state_rekey_due(kith_group *g, const grp_state *s) {
  if (!s->created)
    return 0;
  GByteArray *h = g_byte_array_new();
  grp_state_holders(g, s, h);
  int due = !same_as_members(s, h);
  g_byte_array_free(h, TRUE);
  return due;
}

/* The author of the last membership change if still a member, else the
 * member with the highest role (lowest id first). */
const uint8_t *grp_state_rekeyer(const grp_state *s) {
  if (grp_state_member(s, s->change_by))
    return s->change_by;
  const grp_member *best = NULL;
  for (guint i = 0; i < s->members->len; i++) {
    const grp_member *m = &g_array_index(s->members, grp_member, i);
    if (!best || m->m.role > best->m.role)
      best = m;
  }
  return best ? best->m.id : NULL;
}

/* ---- the state hash's state part ---- */

void grp_state_pack(kith_group *g, const grp_state *s, kith_pack *p) {
  kith_pack_array(p, 9);
  kith_pack_cstr(p, s->name);
  kith_pack_cstr(p, s->topic);
  kith_pack_uint(p, s->history);
  kith_pack_uint(p, (uint64_t)s->admins_only);
  kith_pack_uint(p, s->epoch);
  kith_pack_uint(p, s->generation);
  kith_pack_array(p, s->members->len);
  for (guint i = 0; i < s->members->len; i++) {
    const grp_member *m = &g_array_index(s->members, grp_member, i);
    kith_pack_array(p, 3);
    kith_pack_bin(p, m->m.id, 32);
    kith_pack_uint(p, m->m.role);
    kith_pack_cstr(p, m->m.name);
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
  GByteArray *h = g_byte_array_new();
  grp_state_holders(g, s, h);
  kith_pack_bin(p, h->data, h->len);
  g_byte_array_free(h, TRUE);
}

void grp_state_pack_ext(kith_group *g, const grp_state *s, kith_pack *p) {
  kith_pack_array(p, s->has_needs ? 6 : 5);
  kith_pack_bin(p, s->bans->data, s->bans->len);
  guint revoked = 0;
  for (guint i = 0; i < s->invites->len; i++)
    revoked += g_array_index(s->invites, grp_invite, i).revoked != 0;
  kith_pack_array(p, revoked);
  for (guint i = 0; i < s->invites->len; i++)
    if (g_array_index(s->invites, grp_invite, i).revoked)
      kith_pack_bin(p, g_array_index(s->invites, grp_invite, i).pk, 32);
  kith_pack_uint(p, (uint64_t)s->announce);
  guint muted = 0;
  for (guint i = 0; i < s->members->len; i++)
    muted += g_array_index(s->members, grp_member, i).muted_until != 0;
  kith_pack_array(p, muted);
  for (guint i = 0; i < s->members->len; i++) {
    const grp_member *m = &g_array_index(s->members, grp_member, i);
    if (!m->muted_until)
      continue;
    kith_pack_array(p, 2);
    kith_pack_bin(p, m->m.id, 32);
    kith_pack_uint(p, m->muted_until);
  }
  kith_pack_array(p, s->reports->len);
  for (guint i = 0; i < s->reports->len; i++) {
    const grp_report *r = &g_array_index(s->reports, grp_report, i);
    kith_pack_array(p, 3);
    kith_pack_bin(p, r->reporter, 32);
    kith_pack_bin(p, r->accused, 32);
    kith_pack_bin(p, r->rekey, 32);
  }
  if (s->has_needs)
    grp_state_pack_needs(g, s, p);
}
