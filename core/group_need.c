/* kith: key requests (group_int.h). A member that lacks the key of an
 * epoch that exists asks for it with a need event; a member that holds it
 * gives it with a keys event (one sealed box per need answered). Without
 * them a member that was not sent an epoch (a back-dated rekey that left
 * it out, a rekey concurrent with its admission) or whose box was
 * garbage would hold every control event of that epoch, and everything
 * built on them, for ever. docs/protocol.md 5.6, 5.7 and 5.9 ("Key
 * requests") state the rules. Here: the open requests a state keeps,
 * the rules at an event's parents, the effect in the fold, and who asks
 * and answers when (kith_group_maintain). */
#include "group_int.h"

#include <sodium.h>
#include <string.h>

#include "codec.h"

/* ---- the open requests of a state ---- */

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* Requests are sorted by member, then epoch. */
static int cmp_need(const void *elem, const void *key) {
  const grp_need *x = elem, *y = key;
  int c = memcmp(x->member, y->member, 32);
  return c ? c : x->epoch < y->epoch ? -1 : x->epoch > y->epoch;
}

static guint need_pos(const grp_state *s, const uint8_t member[32],
                      uint64_t epoch, int *found) {
  grp_need key = {.epoch = epoch};
  memcpy(key.member, member, 32);
  return grp_bsearch(s->needs->data, s->needs->len, sizeof(grp_need), cmp_need,
                     &key, found);
}

/* The request of member for epoch, open or not. */
static const grp_need *find_need(const grp_state *s, const uint8_t member[32],
                                 uint64_t epoch) {
  int found;
  guint i = need_pos(s, member, epoch, &found);
  return found ? &g_array_index(s->needs, grp_need, i) : NULL;
}

const grp_need *grp_state_need(const grp_state *s, const uint8_t member[32],
                               uint64_t epoch) {
  const grp_need *n = find_need(s, member, epoch);
  return n && n->open ? n : NULL;
}

int grp_state_need_open(const grp_state *s, const grp_ctl *c) {
  for (uint32_t i = 0; i < c->in.n_epochs; i++) {
    const grp_need *n = grp_state_need(s, c->author, c->in.epochs[i]);
    if (n && n->need == c->cseq)
      return 1;
  }
  return 0;
}

uint64_t grp_state_prior_epoch(kith_group *g, const grp_state *s) {
  const grp_ctl *c = grp_ctl_at(g, s->epoch_ctl);
  return c && c->kind == KITH_EV_REKEY ? c->epoch : 0;
}

int grp_was_sent(const kith_group *g, uint64_t epoch, const grp_ivs *past,
                 const uint8_t member[32]) {
  const grp_ctl *c = grp_epoch_start(g, epoch, past);
  if (!c)
    return 0;
  if (c->kind == KITH_EV_CREATE)
    return memcmp(c->author, member, 32) == 0;
  gpointer v = g_hash_table_lookup(g->mnum, member);
  uint32_t num = v ? GPOINTER_TO_UINT(v) - 1 : 0;
  return v && bsearch(&num, c->rcpt, c->n_rcpt, sizeof num, cmp_u32);
}

/* ---- the rules at an event's parents ---- */

/* need: sealed in the current epoch or the one before it; every epoch
 * asked for was started in its causal past and is not asked for by its
 * author already. */
static kith_err check_need(kith_group *g, const grp_state *s,
                           const grp_front *pf, const kith_event *ev,
                           const body *b, const grp_inner *in) {
  if (b->epoch != s->epoch && b->epoch != grp_state_prior_epoch(g, s))
    return KITH_ERR_PROTOCOL;
  for (uint32_t i = 0; i < in->n_epochs; i++)
    if (!grp_epoch_start(g, in->epochs[i], &pf->anc) ||
        grp_state_need(s, ev->author, in->epochs[i]))
      return KITH_ERR_PROTOCOL;
  return KITH_OK;
}

/* keys: its one parent is the need it answers (so that the asker, which
 * holds everything before its need, can take it); by another member; the
 * need's request still open; sealed in the need's epoch (which the asker
 * sealed the need in). */
static kith_err check_keys(kith_group *g, const grp_state *s,
                           const kith_event *ev, const body *b,
                           const grp_inner *in) {
  const grp_ctl *n = grp_ctl_by_id(g, in->ref);
  if (ev->n_parents != 1 || memcmp(ev->parents[0], in->ref, 32) != 0 || !n ||
      n->kind != KITH_EV_NEED || memcmp(n->author, ev->author, 32) == 0 ||
      !grp_state_member(s, n->author) || !grp_state_need_open(s, n) ||
      n->epoch != b->epoch)
    return KITH_ERR_PROTOCOL;
  return KITH_OK;
}

kith_err grp_need_check(kith_group *g, const grp_state *s, const grp_front *pf,
                        const kith_event *ev, const body *b,
                        const grp_inner *in) {
  return ev->kind == KITH_EV_NEED ? check_need(g, s, pf, ev, b, in)
                                  : check_keys(g, s, ev, b, in);
}

/* ---- the effect in the fold ---- */

/* A need by a recipient of the rekey that started the epoch reports that
 * rekey's author (once per reporter and rekey). */
static void report(kith_group *g, grp_state *s, const grp_ctl *c,
                   uint64_t epoch) {
  const grp_ctl *k = grp_epoch_start(g, epoch, &c->pf->anc);
  if (!k || k->kind != KITH_EV_REKEY || memcmp(k->author, c->author, 32) == 0 ||
      !grp_was_sent(g, epoch, &c->pf->anc, c->author) ||
      s->reports->len >= GROUP_MAX_REPORTS)
    return;
  for (guint i = 0; i < s->reports->len; i++) {
    const grp_report *r = &g_array_index(s->reports, grp_report, i);
    if (memcmp(r->reporter, c->author, 32) == 0 &&
        memcmp(r->rekey, k->id, 32) == 0)
      return;
  }
  grp_report r;
  memcpy(r.reporter, c->author, 32);
  memcpy(r.accused, k->author, 32);
  memcpy(r.rekey, k->id, 32);
  g_array_append_val(s->reports, r);
}

static int apply_need(kith_group *g, grp_state *s, const grp_ctl *c) {
  int opened = 0;
  for (uint32_t i = 0; i < c->in.n_epochs; i++) {
    int found;
    guint at = need_pos(s, c->author, c->in.epochs[i], &found);
    grp_need *n = found ? &g_array_index(s->needs, grp_need, at) : NULL;
    if (n && n->open)
      continue;
    if (!n) {
      grp_need fresh = {.epoch = c->in.epochs[i]};
      memcpy(fresh.member, c->author, 32);
      g_array_insert_val(s->needs, at, fresh);
      n = &g_array_index(s->needs, grp_need, at);
    }
    n->need = c->cseq;
    n->asked++;
    n->open = 1;
    report(g, s, c, c->in.epochs[i]);
    opened = 1;
  }
  s->has_needs |= opened;
  return opened;
}

static int apply_keys(kith_group *g, grp_state *s, const grp_ctl *c) {
  const grp_ctl *n = grp_ctl_by_id(g, c->in.ref);
  int closed = 0;
  for (uint32_t k = 0; n && k < n->in.n_epochs; k++) {
    int found;
    guint at = need_pos(s, n->author, n->in.epochs[k], &found);
    grp_need *q = found ? &g_array_index(s->needs, grp_need, at) : NULL;
    if (q && q->open && q->need == n->cseq) {
      q->open = 0;
      closed = 1;
    }
  }
  return closed;
}

int grp_need_apply(kith_group *g, grp_state *s, const grp_ctl *c) {
  return c->kind == KITH_EV_NEED ? apply_need(g, s, c) : apply_keys(g, s, c);
}

void grp_state_pack_needs(kith_group *g, const grp_state *s, kith_pack *p) {
  kith_pack_array(p, s->needs->len);
  for (guint i = 0; i < s->needs->len; i++) {
    const grp_need *n = &g_array_index(s->needs, grp_need, i);
    const grp_ctl *c = grp_ctl_at(g, n->need);
    kith_pack_array(p, 5);
    kith_pack_bin(p, n->member, 32);
    kith_pack_uint(p, n->epoch);
    kith_pack_bin(p, c ? c->id : n->member, 32);
    kith_pack_uint(p, n->asked);
    kith_pack_uint(p, (uint64_t)n->open);
  }
}

/* ---- asking ---- */

static int holds_secret(const kith_group *g, uint64_t epoch) {
  return grp_find_secret(g, epoch) != NULL;
}

static int holds_meta(const kith_group *g, uint64_t epoch) {
  uint8_t key[KITH_KEY_LEN];
  int ok = grp_meta_key(g, epoch, key);
  sodium_memzero(key, sizeof key);
  return ok;
}

/* What this node asks for: the current epoch's secret if it is a victim
 * (its box did not open), and the key of every epoch that held control
 * events wait for; only epochs that exist, and not asked for already. */
static void wanted(kith_group *g, GArray *out) {
  if (g->victim)
    g_array_append_val(out, g->st.epoch);
  grp_held_key_epochs(g, out);
  guint k = 0;
  for (guint i = 0; i < out->len; i++) {
    uint64_t e = g_array_index(out, uint64_t, i);
    int lacks =
        g->victim && e == g->st.epoch ? !holds_secret(g, e) : !holds_meta(g, e);
    if (lacks && grp_epoch_start(g, e, NULL) &&
        !grp_state_need(&g->st, g->me->pk, e))
      g_array_index(out, uint64_t, k++) = e;
  }
  g_array_set_size(out, k);
}

static gint cmp_epoch(gconstpointer a, gconstpointer b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* A need at our heads for the epochs of want that can be asked for there,
 * sealed in the current epoch there, or the one before if we lack it. */
static kith_err ask(kith_group *g, GArray *want, uint64_t now_ms,
                    GPtrArray *acc) {
  kith_event ev;
  grp_start_event(g, &ev, KITH_EV_NEED, now_ms);
  grp_front *f = grp_parents_front(g, &ev);
  if (!f) {
    kith_event_clear(&ev);
    return KITH_ERR_STATE;
  }
  const grp_state *s = grp_state_at(g, f);
  uint64_t epoch =
      holds_meta(g, s->epoch) ? s->epoch : grp_state_prior_epoch(g, s);
  grp_inner own = {.epochs = g_new(uint64_t, want->len)};
  g_array_sort(want, cmp_epoch);
  for (guint i = 0; i < want->len && own.n_epochs < GROUP_NEED_MAX; i++) {
    uint64_t e = g_array_index(want, uint64_t, i);
    if (grp_epoch_start(g, e, &f->anc) && !grp_state_need(s, g->me->pk, e))
      own.epochs[own.n_epochs++] = e;
  }
  grp_front_unref(g, f);
  kith_err rc = KITH_OK;
  if (own.n_epochs == 0 || !epoch || !holds_meta(g, epoch)) {
    grp_inner_clear(&own);
    kith_event_clear(&ev);
    return rc; /* nothing to ask, or no epoch to ask in: wait */
  }
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 1);
  kith_pack_array(&p, own.n_epochs);
  for (uint32_t i = 0; i < own.n_epochs; i++)
    kith_pack_uint(&p, own.epochs[i]);
  rc = grp_compose_at(g, &ev, epoch, &p, NULL, 0, &own, now_ms, acc);
  kith_pack_clear(&p);
  return rc;
}

/* ---- answering ---- */

/* When this node first saw need c open (its own clock): the turns to
 * answer are counted from there. */
static uint64_t first_seen(kith_group *g, const grp_ctl *c, uint64_t now_ms) {
  if (!g->need_seen)
    g->need_seen =
        g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
  uint64_t *t = g_hash_table_lookup(g->need_seen, GUINT_TO_POINTER(c->cseq));
  if (!t) {
    t = g_new(uint64_t, 1);
    *t = now_ms;
    g_hash_table_insert(g->need_seen, GUINT_TO_POINTER(c->cseq), t);
  }
  return *t;
}

/* Turn r (0 the first) comes after bit_length(r) grace periods: one
 * member at once, then one, two, four, ... more each period. */
static uint64_t turn_wait(long r) {
  uint64_t t = 0;
  for (unsigned long v = (unsigned long)r; v; v >>= 1)
    t += KITH_REKEY_GRACE_MS;
  return t;
}

static gint by_rank(gconstpointer a, gconstpointer b, gpointer g) {
  const grp_member *x = *(const grp_member *const *)a;
  const grp_member *y = *(const grp_member *const *)b;
  return grp_state_outranks(g, x, y) ? -1 : grp_state_outranks(g, y, x);
}

/* Our turn among the members who may answer need c, most senior first:
 * not its author, not a member it accuses (a rekey's author whose box
 * for it failed), none that asked for one of its epochs itself. -1 if we
 * are not one of them. */
static long answer_turn(kith_group *g, const grp_ctl *c) {
  const grp_state *s = &g->st;
  GPtrArray *who = g_ptr_array_new();
  for (guint i = 0; i < s->members->len; i++) {
    grp_member *m = &g_array_index(s->members, grp_member, i);
    int ok = memcmp(m->m.id, c->author, 32) != 0;
    for (uint32_t k = 0; ok && k < c->in.n_epochs; k++) {
      const grp_ctl *r = grp_epoch_start(g, c->in.epochs[k], &c->pf->anc);
      ok = !grp_state_need(s, m->m.id, c->in.epochs[k]) &&
           !(r && memcmp(r->author, m->m.id, 32) == 0 &&
             grp_was_sent(g, c->in.epochs[k], &c->pf->anc, c->author));
    }
    if (ok)
      g_ptr_array_add(who, m);
  }
  g->stats.held_steps += s->members->len;
  g_ptr_array_sort_with_data(who, by_rank, g);
  long turn = -1;
  for (guint i = 0; i < who->len && turn < 0; i++)
    if (memcmp(((grp_member *)who->pdata[i])->m.id, g->me->pk, 32) == 0)
      turn = (long)i;
  /* the k-th time a member asks for an epoch, the turns start at the k-th
   * most senior: an answer that did not help is not asked for again */
  uint32_t asked = 1;
  for (uint32_t k = 0; k < c->in.n_epochs; k++) {
    const grp_need *q = grp_state_need(s, c->author, c->in.epochs[k]);
    if (q && q->need == c->cseq)
      asked = MAX(asked, q->asked);
  }
  if (turn >= 0)
    turn = (long)(((guint)turn + who->len - (asked - 1) % who->len) % who->len);
  g_ptr_array_free(who, TRUE);
  return turn;
}

/* The key need c's author gets for epoch: the secret if we hold it and it
 * may have it (history shared, or it was sent that epoch), else the meta
 * key; the secret of the current epoch is what a victim asks for, so only
 * a holder of it answers that. 0: we cannot give it; 1 meta; 2 secret. */
static int can_give(kith_group *g, const grp_ctl *c, uint64_t epoch) {
  int sent = grp_was_sent(g, epoch, &c->pf->anc, c->author);
  int secret =
      holds_secret(g, epoch) && (g->st.history == KITH_HISTORY_SHARED || sent);
  if (secret)
    return 2;
  if (epoch == g->st.epoch && sent)
    return 0;
  return holds_meta(g, epoch) ? 1 : 0;
}

/* Whether we can give need c anything (before the costlier turn order:
 * most members hold none of what a need asks for). */
static int can_give_any(kith_group *g, const grp_ctl *c) {
  for (uint32_t k = 0; k < c->in.n_epochs; k++)
    if (can_give(g, c, c->in.epochs[k]))
      return 1;
  return 0;
}

/* The box for need c: the keys we can give of the epochs it still asks
 * for. KITH_ERR_NOT_FOUND if we can give none. */
static kith_err box_for(kith_group *g, const grp_state *s, const grp_ctl *c,
                        uint8_t **box, size_t *len) {
  uint64_t *epochs = g_new(uint64_t, c->in.n_epochs);
  uint8_t *full = g_new(uint8_t, c->in.n_epochs);
  size_t n = 0;
  for (uint32_t k = 0; k < c->in.n_epochs; k++) {
    const grp_need *q = grp_state_need(s, c->author, c->in.epochs[k]);
    int give = q && q->need == c->cseq ? can_give(g, c, c->in.epochs[k]) : 0;
    if (give) {
      epochs[n] = c->in.epochs[k];
      full[n++] = give == 2;
    }
  }
  kith_err rc = n ? grp_seal_given(g, c->author, epochs, full, n, box, len)
                  : KITH_ERR_NOT_FOUND;
  g_free(epochs);
  g_free(full);
  return rc;
}

/* A keys event answering need c, its one parent: c. */
static kith_err answer(kith_group *g, const grp_ctl *c, uint64_t now_ms,
                       GPtrArray *acc) {
  grp_sum *n = grp_sum_get(g, c->id);
  if (!n)
    return KITH_ERR_STATE;
  kith_event ev = {.version = g->event_version,
                   .kind = KITH_EV_KEYS,
                   .ts_ms = grp_child_ts(now_ms, n->ts),
                   .n_parents = 1,
                   .depth = n->depth + 1};
  memcpy(ev.group_id, g->gid, 32);
  memcpy(ev.author, g->me->pk, 32);
  memcpy(ev.parents[0], c->id, 32);
  const grp_state *s = grp_state_at(g, c->self);
  if (!grp_state_member(s, g->me->pk))
    return KITH_OK; /* admitted since: it is the others' to answer */
  uint8_t *box = NULL;
  size_t len = 0;
  kith_err rc = box_for(g, s, c, &box, &len);
  if (rc != KITH_OK)
    return rc == KITH_ERR_NOT_FOUND ? KITH_OK : rc; /* nothing to give */
  grp_inner own = {.has_ref = 1};
  memcpy(own.ref, c->id, 32);
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 1);
  kith_pack_bin(&p, c->id, 32);
  rc = grp_compose_at(g, &ev, c->epoch, &p, box, len, &own, now_ms, acc);
  kith_pack_clear(&p);
  g_free(box);
  return rc;
}

/* The needs whose turn to be answered by us has come (grp_ctl*). */
static GPtrArray *due_needs(kith_group *g, uint64_t now_ms) {
  GPtrArray *due = g_ptr_array_new();
  const grp_state *s = &g->st;
  GHashTable *seen = g_hash_table_new(g_direct_hash, g_direct_equal);
  for (guint i = 0; i < s->needs->len; i++) {
    const grp_need *q = &g_array_index(s->needs, grp_need, i);
    const grp_ctl *c = grp_ctl_at(g, q->need);
    if (!q->open || !c || memcmp(q->member, g->me->pk, 32) == 0 ||
        !g_hash_table_add(seen, GUINT_TO_POINTER(q->need)) ||
        !can_give_any(g, c))
      continue;
    long turn = answer_turn(g, c);
    if (turn >= 0 && now_ms >= first_seen(g, c, now_ms) + turn_wait(turn))
      g_ptr_array_add(due, (gpointer)c);
  }
  g_hash_table_destroy(seen);
  return due;
}

/* Forgets when needs that are no longer open were first seen. */
static void forget_closed(kith_group *g) {
  if (!g->need_seen)
    return;
  GHashTableIter it;
  gpointer k;
  g_hash_table_iter_init(&it, g->need_seen);
  while (g_hash_table_iter_next(&it, &k, NULL)) {
    const grp_ctl *c = grp_ctl_at(g, GPOINTER_TO_UINT(k));
    if (!c || !grp_state_need_open(&g->st, c))
      g_hash_table_iter_remove(&it);
  }
}

/* ---- the last resort: a recovery rekey ---- */

/* A victim whose need for the current epoch nobody answered (nobody who
 * holds its key is online, or only its forger holds it) makes a new
 * epoch: the most senior of the members asking for it first, after
 * KITH_RECOVERY_WAIT_MS, the others a turn later each. */
static int recovery_due(kith_group *g, uint64_t now_ms) {
  const grp_state *s = &g->st;
  const grp_need *mine = grp_state_need(s, g->me->pk, s->epoch);
  const grp_ctl *c = mine ? grp_ctl_at(g, mine->need) : NULL;
  if (!g->victim || !c)
    return 0;
  const grp_member *me = grp_state_member(s, g->me->pk);
  long turn = 0;
  for (guint i = 0; me && i < s->needs->len; i++) {
    const grp_need *q = &g_array_index(s->needs, grp_need, i);
    const grp_member *m = grp_state_member(s, q->member);
    turn +=
        q->open && q->epoch == s->epoch && m && grp_state_outranks(g, m, me);
  }
  return now_ms >=
         first_seen(g, c, now_ms) + KITH_RECOVERY_WAIT_MS + turn_wait(turn);
}

/* Only a store failure is worth reporting: anything else is tried again
 * at the next call, and must not keep the rest of the maintenance from
 * running. */
static kith_err keep_io(kith_err rc, kith_err e) {
  return rc == KITH_OK && e == KITH_ERR_IO ? e : rc;
}

kith_err grp_need_maintain(kith_group *g, uint64_t now_ms, GPtrArray *acc) {
  kith_err rc = KITH_OK;
  GArray *want = g_array_new(FALSE, FALSE, sizeof(uint64_t));
  wanted(g, want);
  if (want->len)
    rc = keep_io(rc, ask(g, want, now_ms, acc));
  g_array_free(want, TRUE);
  GPtrArray *due = due_needs(g, now_ms);
  for (guint i = 0; i < due->len; i++)
    rc = keep_io(rc, answer(g, due->pdata[i], now_ms, acc));
  g_ptr_array_free(due, TRUE);
  forget_closed(g);
  if (recovery_due(g, now_ms) &&
      (!g->last_rekey_ms || now_ms >= g->last_rekey_ms + KITH_REKEY_GRACE_MS)) {
    kith_err e = grp_compose_rekey(g, now_ms, acc);
    if (e != KITH_OK)
      g->last_rekey_ms = now_ms ? now_ms : 1; /* not every second */
    rc = keep_io(rc, e);
  }
  return rc;
}
