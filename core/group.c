/* kith: one group replica: receipt, holding, acceptance, queries
 * (group.h; the design is in group_int.h and docs/architecture.md).
 *
 * Whether an event is accepted depends only on the event and its causal
 * past (the state at its parents), never on concurrent events a replica
 * happens to hold already, nor on keys only some replicas hold; otherwise
 * replicas receiving the same events in different orders would keep
 * different sets. The one input from outside, the receiver's clock, only
 * delays an event (held while dated too far ahead), never rejects it. */
#include "group_int.h"

#include <sodium.h>
#include <string.h>

#include "codec.h"
#include "gcrypto.h"

enum { WAIT_PARENT = 1, WAIT_KEY, WAIT_TIME };

struct held {
  kith_event ev;
  int why;          /* WAIT_* */
  uint8_t wait[32]; /* WAIT_PARENT: the parent it waits for */
  uint64_t epoch;   /* WAIT_KEY: the epoch whose key it waits for */
  size_t cost;
  GList link; /* in its author's queue */
};

static guint id_hash(gconstpointer p) {
  guint h;
  memcpy(&h, p, sizeof h);
  return h;
}

static gboolean id_equal(gconstpointer a, gconstpointer b) {
  return memcmp(a, b, 32) == 0;
}

int grp_is_control(uint32_t kind) {
  return !grp_is_message_like(kind);
}

static void held_free(held *h) {
  kith_event_clear(&h->ev);
  g_free(h);
}

static void raw_free(gpointer p) {
  g_bytes_unref(p);
}

kith_group *kith_group_new(const uint8_t gid[32], const kith_ident *me) {
  kith_group *g = g_new0(kith_group, 1);
  memcpy(g->gid, gid, 32);
  g->me = me;
  g->event_version = KITH_GROUP_EVENT_VERSION;
  grp_dag_init(g);
  grp_state_init(&g->st);
  g->held = g_hash_table_new(id_hash, id_equal);
  g->waiting = g_hash_table_new_full(id_hash, id_equal, g_free,
                                     (GDestroyNotify)g_ptr_array_unref);
  g->by_author = g_hash_table_new_full(id_hash, id_equal, g_free, g_free);
  g->wait_keys = g_ptr_array_new();
  g->wait_time = g_ptr_array_new();
  g->evicted = g_byte_array_new();
  g->epochs =
      g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
  g->prov = g_ptr_array_new();
  g->chains = grp_chains_new();
  g_queue_init(&g->chain_lru);
  return g;
}

void kith_group_free(kith_group *g) {
  if (!g)
    return;
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, g->held);
  while (g_hash_table_iter_next(&it, NULL, &v))
    held_free(v);
  g_hash_table_destroy(g->held);
  while (g->ready.length > 0) /* only if a drain was cut short */
    held_free(g_queue_pop_head(&g->ready));
  g_hash_table_destroy(g->waiting);
  g_hash_table_destroy(g->by_author);
  g_ptr_array_free(g->wait_keys, TRUE);
  g_ptr_array_free(g->wait_time, TRUE);
  g_byte_array_free(g->evicted, TRUE);
  grp_state_clear(&g->st);
  grp_dag_clear(g);
  grp_keys_clear(g);
  grp_chains_clear(g);
  g_hash_table_destroy(g->epochs);
  if (g->need_seen)
    g_hash_table_destroy(g->need_seen);
  if (g->raws)
    g_hash_table_destroy(g->raws);
  if (g->raw_order)
    g_ptr_array_free(g->raw_order, TRUE);
  g_free(g);
}

void kith_accepted_free(kith_accepted *a) {
  if (!a)
    return;
  kith_event_clear(&a->ev);
  if (a->text)
    sodium_memzero(a->text, a->text_len);
  g_free(a->text);
  g_free(a);
}

/* Raw bytes of accepted events, kept in memory only without a store. */
void grp_keep_raw(kith_group *g, const kith_event *ev) {
  if (!g->raws) {
    g->raws = g_hash_table_new_full(id_hash, id_equal, g_free, raw_free);
    g->raw_order = g_ptr_array_new();
  }
  uint8_t *id = g_memdup2(ev->id, 32);
  g_hash_table_insert(g->raws, id, g_bytes_new(ev->raw, ev->raw_len));
  g_ptr_array_add(g->raw_order, id);
}

GBytes *grp_raw_of(const kith_group *g, const uint8_t id[32]) {
  return g->raws ? g_hash_table_lookup(g->raws, id) : NULL;
}

/* ---- holding ---- */

static GQueue *author_queue(kith_group *g, const uint8_t author[32]) {
  GQueue *q = g_hash_table_lookup(g->by_author, author);
  if (!q) {
    q = g_new0(GQueue, 1);
    g_hash_table_insert(g->by_author, g_memdup2(author, 32), q);
  }
  return q;
}

static void unindex(kith_group *g, held *h) {
  GQueue *q = g_hash_table_lookup(g->by_author, h->ev.author);
  g_queue_unlink(q, &h->link);
  if (q->length == 0)
    g_hash_table_remove(g->by_author, h->ev.author);
  g_hash_table_remove(g->held, h->ev.id);
  g->held_bytes -= h->cost;
  if (h->why == WAIT_PARENT) {
    GPtrArray *l = g_hash_table_lookup(g->waiting, h->wait);
    if (l && g_ptr_array_remove_fast(l, h) && l->len == 0)
      g_hash_table_remove(g->waiting, h->wait);
  } else {
    g_ptr_array_remove_fast(h->why == WAIT_KEY ? g->wait_keys : g->wait_time,
                            h);
  }
}

/* The deepest held event of author queue q (of equal depths, the one that
 * came last): the one furthest from being released, since events arrive
 * about parents first (docs/protocol.md 5.8). */
static held *deepest(GQueue *q) {
  held *best = NULL;
  for (GList *l = q->head; l; l = l->next) {
    held *h = l->data;
    if (!best || h->ev.depth >= best->ev.depth)
      best = h;
  }
  return best;
}

/* Forgets the deepest held event of queue prefer, or of the author with
 * the most held; its id is noted for kith_group_take_evicted. */
static void evict_one(kith_group *g, GQueue *prefer) {
  GQueue *q = prefer;
  if (!q) {
    GHashTableIter it;
    gpointer v;
    g_hash_table_iter_init(&it, g->by_author);
    while (g_hash_table_iter_next(&it, NULL, &v))
      if (!q || ((GQueue *)v)->length > q->length)
        q = v;
    g->stats.held_steps += g_hash_table_size(g->by_author);
  }
  if (!q || !q->head)
    return;
  held *h = deepest(q);
  g->stats.held_steps += q->length;
  if (g->evicted->len < GROUP_EVICTED_MAX * 32)
    g_byte_array_append(g->evicted, h->ev.id, 32);
  unindex(g, h);
  held_free(h);
}

size_t kith_group_take_evicted(kith_group *g, GByteArray *ids) {
  size_t n = g->evicted->len / 32;
  g_byte_array_append(ids, g->evicted->data, g->evicted->len);
  g_byte_array_set_size(g->evicted, 0);
  return n;
}

/* Holds ev (moved in). Being held is never a verdict: a held event that is
 * evicted is simply forgotten, and arrives again from a peer later. At a
 * bound the deepest held event goes, which may be ev itself. */
static kith_err hold(kith_group *g, kith_event *ev, int why,
                     const uint8_t *wait_in, uint64_t epoch) {
  uint8_t wait[32] = {0};
  if (wait_in)
    memcpy(wait, wait_in, 32); /* it may point into ev, which moves */
  size_t cost = ev->raw_len + ev->body_len + sizeof(held);
  GQueue *mine = author_queue(g, ev->author);
  held *h = g_new0(held, 1);
  h->ev = *ev;
  memset(ev, 0, sizeof *ev);
  h->why = why;
  h->epoch = epoch;
  h->cost = cost;
  h->link.data = h;
  g_queue_push_tail_link(mine, &h->link);
  g_hash_table_insert(g->held, h->ev.id, h);
  g->held_bytes += cost;
  if (why == WAIT_PARENT) {
    memcpy(h->wait, wait, 32);
    GPtrArray *l = g_hash_table_lookup(g->waiting, wait);
    if (!l) {
      l = g_ptr_array_new();
      g_hash_table_insert(g->waiting, g_memdup2(wait, 32), l);
    }
    g_ptr_array_add(l, h);
  } else {
    g_ptr_array_add(why == WAIT_KEY ? g->wait_keys : g->wait_time, h);
  }
  if (mine->length > GROUP_HELD_PER_AUTHOR)
    evict_one(g, mine);
  while (g_hash_table_size(g->held) > KITH_GROUP_MAX_HELD ||
         g->held_bytes > GROUP_MAX_HELD_BYTES)
    evict_one(g, NULL);
  return KITH_ERR_MISSING;
}

size_t kith_group_missing(const kith_group *g, GByteArray *ids, size_t max) {
  GHashTableIter it;
  gpointer k;
  size_t n = 0;
  g_hash_table_iter_init(&it, g->waiting);
  while (n < max && g_hash_table_iter_next(&it, &k, NULL))
    if (!g_hash_table_contains(g->held, k)) {
      g_byte_array_append(ids, k, 32);
      n++;
    }
  return n;
}

/* ---- the state at an event's parents ---- */

grp_front *grp_parents_front(kith_group *g, const kith_event *ev) {
  grp_front *fs[KITH_EVENT_MAX_PARENTS];
  for (size_t i = 0; i < ev->n_parents; i++) {
    grp_sum *s = grp_sum_get(g, ev->parents[i]);
    if (!s)
      return NULL;
    fs[i] = s->cf;
  }
  return grp_front_merge(g, fs, ev->n_parents);
}

/* Keys may still come to this node: it is not a member yet (its add
 * brings them), a member that does not hold the current epoch (the rekey
 * owed to it brings a new one), or one whose box of the current epoch's
 * rekey did not open (it asks for the key). A member that holds it
 * accepts messages of other epochs unread at once: the key of an epoch
 * given only to others may never come. */
static int keys_may_come(kith_group *g) {
  if (!grp_state_member(&g->st, g->me->pk) || g->victim)
    return 1; /* a victim asks for the current epoch's key (need) */
  GByteArray *h = g_byte_array_new();
  grp_state_holders(g, &g->st, h);
  int holder = 0;
  for (guint i = 0; i + 32 <= h->len && !holder; i += 32)
    holder = memcmp(h->data + i, g->me->pk, 32) == 0;
  g_byte_array_free(h, TRUE);
  return !holder;
}

/* The epochs whose keys held control events wait for, each once. */
void grp_held_key_epochs(const kith_group *g, GArray *out) {
  for (guint i = 0; i < g->wait_keys->len; i++) {
    const held *h = g->wait_keys->pdata[i];
    int seen = grp_is_message_like(h->ev.kind);
    for (guint k = 0; k < out->len && !seen; k++)
      seen = g_array_index(out, uint64_t, k) == h->epoch;
    if (!seen)
      g_array_append_val(out, h->epoch);
  }
}

/* ---- acceptance ---- */

/* The index of id among the members of s (the box a rekey made at s has
 * for it), or -1. */
static long member_index(const grp_state *s, const uint8_t id[32]) {
  const grp_member *m = grp_state_member(s, id);
  return m ? (long)(m - (const grp_member *)s->members->data) : -1;
}

/* A recovery rekey replaces the current epoch's rekey, whose box for its
 * author did not open (and whose key nobody gave it): its body names that
 * rekey's (older) epoch. */
static kith_err check_recovery(kith_group *g, const grp_state *s,
                               const kith_event *ev, const body *b,
                               const grp_inner *in) {
  const grp_ctl *bad = grp_ctl_by_id(g, in->ref);
  if (!bad || bad->kind != KITH_EV_REKEY || s->epoch_ctl != bad->cseq ||
      b->epoch != bad->epoch)
    return KITH_ERR_PROTOCOL;
  return grp_was_sent(g, bad->in.new_epoch, NULL, ev->author)
             ? KITH_OK
             : KITH_ERR_PROTOCOL;
}

/* Everything decided at the event's parents, without side effects: the
 * author, the body's epoch, the inner plaintext, the kind's rule. */
static kith_err check_at_parents(kith_group *g, const grp_state *s,
                                 const grp_front *pf, const kith_event *ev,
                                 const body *b, grp_inner *in, int own) {
  int control = grp_is_control(ev->kind);
  if (ev->kind != KITH_EV_CREATE && !grp_state_member(s, ev->author))
    return KITH_ERR_NOT_MEMBER;
  kith_err rc = KITH_OK;
  if (control && !own)
    rc = grp_open_meta(g, ev, b, in);
  if (rc != KITH_OK)
    return rc;
  if (ev->kind == KITH_EV_REKEY && in->has_ref)
    rc = b->epoch != s->epoch ? check_recovery(g, s, ev, b, in)
                              : KITH_ERR_PROTOCOL; /* names an older epoch */
  else if (ev->kind == KITH_EV_NEED || ev->kind == KITH_EV_KEYS)
    rc = grp_need_check(g, s, pf, ev, b, in);
  else if (ev->kind != KITH_EV_CREATE && b->epoch != s->epoch)
    rc = KITH_ERR_PROTOCOL;
  if (rc == KITH_OK && ev->kind == KITH_EV_REKEY && !own &&
      grp_rekey_n_boxes(b) != (long)s->members->len)
    rc = KITH_ERR_PROTOCOL;
  /* a new epoch is new: not one started in the rekey's causal past */
  if (rc == KITH_OK && ev->kind == KITH_EV_REKEY &&
      grp_epoch_start(g, in->new_epoch, &pf->anc))
    rc = KITH_ERR_PROTOCOL;
  if (rc == KITH_OK && ev->kind == KITH_EV_ADD &&
      s->history == KITH_HISTORY_JOINED &&
      b->extra_len > GROUP_MAX_KEY_LIST * 64)
    rc = KITH_ERR_LIMIT;
  return rc == KITH_OK
             ? grp_state_check(g, s, ev->kind, ev->author, in, ev->ts_ms)
             : rc;
}

/* A message (or react, edit, delete) is read if this node can: its key
 * is in the author's chain and the author is still a member here (a
 * replica that already holds the author's removal shows nothing of it:
 * concurrency rule 1). Returns whether its key is to be spent once the
 * event is stored: when it opened, or when it is not to be shown; a body
 * that does not open leaves the key for the genuine message with that
 * number (only the author can sign either). */
static int read_message(kith_group *g, const kith_event *ev, const body *b,
                        grp_inner *in) {
  chain_slot *c = grp_chain_get(g, b->epoch, ev->author);
  uint8_t key[KITH_KEY_LEN];
  int show = c && !g->replay && grp_state_member(&g->st, ev->author);
  int opened = show && kith_chain_peek(c->c, b->n, key) == KITH_OK &&
               grp_open_with(g, ev, b, key, in) == KITH_OK;
  sodium_memzero(key, sizeof key);
  if (!opened) {
    grp_inner_clear(in);
    in->unread = 1;
  }
  return opened || !show;
}

/* Every message key is used once: the author's chain moves past n. */
static void spend_message(kith_group *g, const kith_event *ev, const body *b,
                          int spend) {
  chain_slot *c = grp_chain_get(g, b->epoch, ev->author);
  if (!c)
    return;
  uint8_t key[KITH_KEY_LEN];
  if (spend && kith_chain_key(c->c, b->n, key) == KITH_OK)
    sodium_memzero(key, sizeof key);
  if (b->n + 1 > c->next_n)
    c->next_n = b->n + 1;
  c->dirty = 1;
}

/* What a react, edit or delete may act on (5.7): a message of the group
 * below it (by depth: its causal past, as far as a replica can tell
 * cheaply); an edit only by the message's author; a delete by its author,
 * or by an owner or admin at the delete's parents. */
static int target_applies(kith_group *g, const grp_state *s,
                          const kith_event *ev, const grp_inner *in) {
  if (ev->kind == KITH_EV_MESSAGE)
    return 1; /* a reply: shown as given */
  grp_sum *t = grp_sum_get(g, in->ref);
  if (!t || t->kind != KITH_EV_MESSAGE || t->depth >= ev->depth)
    return 0;
  int own = memcmp(t->author, ev->author, 32) == 0;
  if (ev->kind == KITH_EV_EDIT)
    return own;
  if (ev->kind == KITH_EV_DELETE) {
    const grp_member *m = grp_state_member(s, ev->author);
    return own || (m && m->m.role >= KITH_ROLE_ADMIN);
  }
  return 1;
}

static void push_accepted(const kith_event *ev, const grp_inner *in,
                          int effective, uint64_t epoch, GPtrArray *acc) {
  if (!acc)
    return;
  kith_accepted *a = g_new0(kith_accepted, 1);
  if (kith_event_copy(&a->ev, ev) != KITH_OK) {
    g_free(a);
    return;
  }
  if (in->text && !in->unread) {
    a->text = g_strndup(in->text, in->text_len);
    a->text_len = in->text_len;
  }
  memcpy(a->ref, in->ref, 32);
  a->has_ref = in->has_ref;
  a->on = in->value != 0;
  a->applies = in->applies;
  a->effective = effective;
  a->epoch = epoch;
  g_ptr_array_add(acc, a);
}

/* The keys an accepted control event brings to this node. */
static void take_keys(kith_group *g, grp_ctl *c, const body *b, long box) {
  if (c->kind == KITH_EV_ADD) {
    if (memcmp(c->in.member, g->me->pk, 32) == 0)
      grp_prov_promote(g, c->id);
    else
      grp_prov_drop(g, c->id);
  } else if (c->kind == KITH_EV_REKEY && box >= 0) {
    (void)grp_take_rekey_keys(g, b, (size_t)box, c->in.new_epoch);
  } else if (c->kind == KITH_EV_KEYS) {
    const grp_ctl *n = grp_ctl_by_id(g, c->in.ref);
    if (n && memcmp(n->author, g->me->pk, 32) == 0)
      grp_take_given_keys(g, b, n->in.epochs, n->in.n_epochs);
  }
}

/* This node is a victim of the rekey that started the current epoch: it
 * was one of its recipients, but holds no secret of its epoch (its box did
 * not open). Derived from the state and the keys, so that a garbage rekey
 * that lost to a concurrent honest one (or arrived after it) makes nobody
 * a victim, and a restarted node knows it is one. */
void grp_note_victim(kith_group *g) {
  const grp_ctl *cur = grp_ctl_at(g, g->st.epoch_ctl);
  gpointer num = g_hash_table_lookup(g->mnum, g->me->pk);
  g->victim = 0;
  if (!cur || cur->kind != KITH_EV_REKEY || !num ||
      grp_find_secret(g, cur->in.new_epoch))
    return;
  for (uint32_t i = 0; i < cur->n_rcpt; i++)
    if (cur->rcpt[i] == GPOINTER_TO_UINT(num) - 1) {
      memcpy(g->victim_of, cur->id, 32);
      g->victim = 1;
    }
}

/* The control event joins the DAG; the global state follows. */
static grp_ctl *insert_control(kith_group *g, const kith_event *ev,
                               const body *b, grp_inner *in, grp_front *pf,
                               const grp_state *s) {
  grp_ctl *c = g_new0(grp_ctl, 1);
  c->cseq = g->ctl->len;
  c->kind = ev->kind;
  memcpy(c->id, ev->id, 32);
  memcpy(c->author, ev->author, 32);
  c->depth = ev->depth;
  c->ts = ev->ts_ms;
  c->epoch = b->epoch;
  c->in = *in;
  memset(in, 0, sizeof *in);
  c->pf = grp_front_ref(pf);
  grp_state_note_facts(g, s, c);
  return c;
}

static void fold_control(kith_group *g, grp_ctl *c) {
  int append = c->pf == g->ctl_heads;
  grp_ctl_insert(g, c);
  g->st_version++;
  if (c->kind == KITH_EV_CREATE)
    grp_epoch_started(g, c->epoch, c->cseq);
  else if (c->kind == KITH_EV_REKEY)
    grp_epoch_started(g, c->in.new_epoch, c->cseq);
  if (append) {
    grp_fold_append(g, c);
  } else {
    grp_state_clear(&g->st);
    grp_fold(g, NULL, &g->st);
  }
}

kith_err grp_accept(kith_group *g, kith_event *ev, const body *b,
                    grp_inner *own, uint64_t now_ms, GPtrArray *acc) {
  if (g->n_events >= GROUP_MAX_EVENTS ||
      (grp_is_control(ev->kind) && g->ctl->len >= GROUP_MAX_CONTROL)) {
    if (own)
      grp_inner_clear(own);
    return KITH_ERR_LIMIT;
  }
  grp_front *pf = ev->kind == KITH_EV_CREATE ? NULL : grp_parents_front(g, ev);
  grp_state empty;
  grp_state_init(&empty);
  const grp_state *s = pf ? grp_state_at(g, pf) : &empty;
  grp_inner in = {0};
  if (own)
    in = *own, memset(own, 0, sizeof *own);
  kith_err rc = ev->kind != KITH_EV_CREATE && !pf
                    ? KITH_ERR_MISSING
                    : check_at_parents(g, s, pf, ev, b, &in, own != NULL);
  int control = grp_is_control(ev->kind);
  long box = rc == KITH_OK && ev->kind == KITH_EV_REKEY && !own
                 ? member_index(s, g->me->pk)
                 : -1;
  grp_ctl *c =
      rc == KITH_OK && control ? insert_control(g, ev, b, &in, pf, s) : NULL;
  int spend = 0;
  if (rc == KITH_OK && !control && !own)
    spend = read_message(g, ev, b, &in);
  if (rc == KITH_OK && !control && in.has_ref && !in.unread)
    in.applies = target_applies(g, s, ev, &in);
  if (rc == KITH_OK)
    rc = grp_store_event(g, ev, c, pf, c ? &c->in : &in);
  if (rc != KITH_OK) {
    if (c)
      grp_ctl_free(g, c);
    grp_inner_clear(&in);
    grp_front_unref(g, pf);
    grp_state_clear(&empty);
    return rc;
  }
  grp_state_clear(&empty);
  if (c) {
    fold_control(g, c);
    take_keys(g, c, b, box);
    grp_note_victim(g);
  } else {
    spend_message(g, ev, b, spend);
  }
  grp_sum_add(g, ev, c ? c->self : pf);
  grp_heads_update(g, ev, c ? c->self : pf);
  g->n_events++;
  if (c && c->kind > KITH_EV_MESSAGE)
    g->has_ext_kind = 1;
  push_accepted(ev, c ? &c->in : &in, c ? c->effective : 1, b->epoch, acc);
  grp_inner_clear(&in);
  grp_front_unref(g, pf);
  (void)now_ms;
  kith_event_clear(ev);
  return KITH_OK;
}

/* ---- receipt ---- */

static kith_err check_group_id(const kith_group *g, const kith_event *ev) {
  const uint8_t *want = ev->kind == KITH_EV_CREATE ? ev->id : ev->group_id;
  return memcmp(want, g->gid, 32) == 0 ? KITH_OK : KITH_ERR_PROTOCOL;
}

/* Rule failures of other people's events are protocol violations; the
 * specific codes are for local callers (admit). */
static kith_err as_receipt_error(kith_err rc) {
  switch (rc) {
  case KITH_ERR_NOT_FOUND:
  case KITH_ERR_EXPIRED:
  case KITH_ERR_USED_UP:
  case KITH_ERR_EXISTS:
  case KITH_ERR_ARG:
    return KITH_ERR_PROTOCOL;
  default:
    return rc;
  }
}

/* An event whose key this node lacks is held only if its epoch can be
 * right: the current epoch at its parents, or for a rekey or need the
 * epoch of the rekey that started that one (a keys event's epoch is its
 * needs', known once it is opened). Any other epoch is rejected now, so
 * that what is held for a key is held for an epoch that exists. */
static kith_err epoch_may_be(kith_group *g, const kith_event *ev,
                             const body *b) {
  if (ev->kind == KITH_EV_CREATE || ev->kind == KITH_EV_KEYS)
    return KITH_OK;
  grp_front *pf = grp_parents_front(g, ev);
  if (!pf)
    return KITH_OK;
  const grp_state *s = grp_state_at(g, pf);
  int ok = b->epoch == s->epoch ||
           ((ev->kind == KITH_EV_REKEY || ev->kind == KITH_EV_NEED) &&
            b->epoch == grp_state_prior_epoch(g, s));
  grp_front_unref(g, pf);
  return ok ? KITH_OK : KITH_ERR_PROTOCOL;
}

/* A version-2 message-like body names no epoch: it is the current epoch
 * of the state at the event's parents, which every message must use
 * (5.7, step 9). Called once the parents are all here. */
static void settle_epoch(kith_group *g, const kith_event *ev, body *b) {
  grp_front *pf = grp_parents_front(g, ev);
  if (!pf)
    return;
  b->epoch = grp_state_at(g, pf)->epoch;
  b->epoch_implied = 0;
  grp_front_unref(g, pf);
}

/* Parents, depth, dates and keys, then acceptance; holds ev (moved in) if
 * something it needs is not here yet. */
static kith_err process(kith_group *g, kith_event *ev, uint64_t now_ms,
                        GPtrArray *acc) {
  body b;
  kith_err rc = grp_parse_body(ev, &b);
  if (rc != KITH_OK)
    return rc;
  /* an add sealed to us brings the keys its own past needs */
  if (ev->kind == KITH_EV_ADD)
    grp_prov_take(g, ev, &b);
  uint64_t depth = 0, ts = 0;
  for (size_t i = 0; rc == KITH_OK && i < ev->n_parents; i++) {
    grp_sum *p = grp_sum_get(g, ev->parents[i]);
    if (!p)
      rc = hold(g, ev, WAIT_PARENT, ev->parents[i], 0);
    else
      depth = MAX(depth, p->depth + 1), ts = MAX(ts, p->ts);
  }
  if (rc == KITH_OK && ev->kind != KITH_EV_CREATE &&
      (ev->depth != depth || ev->ts_ms + KITH_CLOCK_SKEW_MS < ts))
    rc = KITH_ERR_PROTOCOL;
  if (rc == KITH_OK && b.epoch_implied)
    settle_epoch(g, ev, &b);
  /* A stored event being converted was accepted before: no clock here. */
  if (rc == KITH_OK && !g->converting &&
      ev->ts_ms > now_ms + KITH_CLOCK_SKEW_MS)
    rc = hold(g, ev, WAIT_TIME, NULL, 0);
  /* Without the epoch's key a control event cannot be checked: held. A
   * message and its kin need no key to be checked; they wait for it only
   * while it may come, else they are accepted unread, so that the events
   * built on them are not held for ever. */
  uint8_t key[KITH_KEY_LEN];
  if (rc == KITH_OK && !grp_meta_key(g, b.epoch, key)) {
    rc = epoch_may_be(g, ev, &b);
    if (rc == KITH_OK && (!grp_is_message_like(ev->kind) || keys_may_come(g)))
      rc = hold(g, ev, WAIT_KEY, NULL, b.epoch);
  }
  sodium_memzero(key, sizeof key);
  uint8_t id[32];
  memcpy(id, ev->id, 32); /* ev moves if it is held or accepted */
  if (rc == KITH_OK) {
    rc = grp_accept(g, ev, &b, NULL, now_ms, acc);
    if (rc == KITH_OK)
      grp_release_waiting(g, id, now_ms, acc);
  }
  /* a rejected add leaves no provisional keys behind */
  if (rc != KITH_OK && rc != KITH_ERR_MISSING && rc != KITH_ERR_IO)
    grp_prov_drop(g, id);
  grp_body_clear(&b);
  return rc;
}

/* What processing one event may change that held events wait for: keys
 * (kept or provisional), and the state (a member that became a holder of
 * the current epoch no longer waits for keys of messages). */
typedef struct key_mark {
  size_t keys, prov;
  uint64_t version;
} key_mark;

static key_mark mark_keys(const kith_group *g) {
  return (key_mark){g->n_secrets, g->prov->len, g->st_version};
}

static void release_unreadable(kith_group *g, uint64_t now_ms, GPtrArray *acc);

static void after_keys(kith_group *g, key_mark m, uint64_t now_ms,
                       GPtrArray *acc) {
  if (g->n_secrets != m.keys || g->prov->len != m.prov)
    grp_release_keys(g, now_ms, acc);
  else if (g->st_version != m.version)
    release_unreadable(g, now_ms, acc);
}

kith_err grp_receive_event(kith_group *g, kith_event *ev, uint64_t now_ms,
                           GPtrArray *acc) {
  /* Only what memory knows: a message stored long ago is found by the
   * store's insert (KITH_ERR_DUPLICATE, before anything in memory
   * changes), which spares every new event a lookup. */
  if (grp_known_cached(g, ev->id))
    return KITH_ERR_DUPLICATE;
  if (g_hash_table_contains(g->held, ev->id))
    return KITH_ERR_MISSING;
  kith_err rc = check_group_id(g, ev);
  if (rc != KITH_OK)
    return rc;
  key_mark m = mark_keys(g);
  rc = process(g, ev, now_ms, acc);
  after_keys(g, m, now_ms, acc);
  return as_receipt_error(rc);
}

/* Retries the released held events; those that still lack something are
 * held again. A worklist, not recursion: accepting one event queues the
 * events that waited for it, and only the outermost call drains the
 * queue, so a chain of held events of any length is released with a
 * stack of constant depth. */
static void drain(kith_group *g, uint64_t now_ms, GPtrArray *acc) {
  if (g->draining)
    return;
  g->draining = 1;
  while (g->ready.length > 0) {
    held *h = g_queue_pop_head(&g->ready);
    kith_event ev = h->ev;
    memset(&h->ev, 0, sizeof h->ev);
    g_free(h);
    g->stats.held_steps++;
    key_mark m = mark_keys(g);
    (void)process(g, &ev, now_ms, acc);
    kith_event_clear(&ev); /* a no-op if it moved into the group */
    after_keys(g, m, now_ms, acc);
  }
  g->draining = 0;
}

/* Moves the held events of list (taken from an index, newest first) to
 * the worklist, oldest first, and drains it. */
static void release(kith_group *g, GPtrArray *list, uint64_t now_ms,
                    GPtrArray *acc) {
  for (guint i = list->len; i-- > 0;) {
    unindex(g, list->pdata[i]);
    g_queue_push_tail(&g->ready, list->pdata[i]);
  }
  g_ptr_array_free(list, TRUE);
  drain(g, now_ms, acc);
}

static GPtrArray *take_list(GPtrArray *from) {
  GPtrArray *l = g_ptr_array_sized_new(from->len);
  for (guint i = from->len; i-- > 0;)
    g_ptr_array_add(l, from->pdata[i]);
  return l;
}

void grp_release_waiting(kith_group *g, const uint8_t id[32], uint64_t now_ms,
                         GPtrArray *acc) {
  GPtrArray *w = g_hash_table_lookup(g->waiting, id);
  if (w)
    release(g, take_list(w), now_ms, acc);
}

void grp_release_keys(kith_group *g, uint64_t now_ms, GPtrArray *acc) {
  if (g->wait_keys->len)
    release(g, take_list(g->wait_keys), now_ms, acc);
}

/* The state changed: if keys can no longer come to this node, the
 * messages held for theirs are accepted unread now (step 7 of 5.7), or
 * they would stay held while other replicas accepted them. */
static void release_unreadable(kith_group *g, uint64_t now_ms, GPtrArray *acc) {
  if (g->wait_keys->len == 0 || keys_may_come(g))
    return;
  GPtrArray *l = g_ptr_array_new();
  for (guint i = g->wait_keys->len; i-- > 0;) {
    held *h = g->wait_keys->pdata[i];
    if (grp_is_message_like(h->ev.kind))
      g_ptr_array_add(l, h);
  }
  g->stats.held_steps += g->wait_keys->len;
  release(g, l, now_ms, acc);
}

static void release_time(kith_group *g, uint64_t now_ms, GPtrArray *acc) {
  GPtrArray *due = g_ptr_array_new();
  g->stats.held_steps += g->wait_time->len;
  for (guint i = g->wait_time->len; i-- > 0;) {
    held *h = g->wait_time->pdata[i];
    if (h->ev.ts_ms <= now_ms + KITH_CLOCK_SKEW_MS)
      g_ptr_array_add(due, h);
  }
  release(g, due, now_ms, acc);
}

static kith_err receive(kith_group *g, const uint8_t *raw, size_t len,
                        uint64_t now_ms, GPtrArray *accepted, int trusted) {
  if (!g || !raw)
    return KITH_ERR_ARG;
  kith_event ev;
  kith_err rc = trusted ? kith_event_decode_trusted(raw, len, g->gid, &ev)
                        : kith_event_decode(raw, len, g->gid, &ev);
  if (rc != KITH_OK)
    return rc;
  rc = grp_receive_event(g, &ev, now_ms, accepted);
  kith_event_clear(&ev); /* a no-op if it moved into the group */
  return rc;
}

kith_err kith_group_receive(kith_group *g, const uint8_t *raw, size_t len,
                            uint64_t now_ms, GPtrArray *accepted) {
  return receive(g, raw, len, now_ms, accepted, 0);
}

kith_err kith_group_receive_trusted(kith_group *g, const uint8_t *raw,
                                    size_t len, uint64_t now_ms,
                                    GPtrArray *accepted) {
  return receive(g, raw, len, now_ms, accepted, 1);
}

void grp_release_time(kith_group *g, uint64_t now_ms, GPtrArray *acc) {
  if (g->wait_time->len)
    release_time(g, now_ms, acc);
}

/* ---- derived state ---- */

void kith_group_set_event_version(kith_group *g, uint32_t version) {
  if (g && (version == KITH_EVENT_V1 || version == KITH_EVENT_V2))
    g->event_version = version;
}

const uint8_t *kith_group_id(const kith_group *g) {
  return g->gid;
}

int kith_group_is_ready(const kith_group *g) {
  return g->st.created && grp_find_secret(g, g->st.epoch) != NULL;
}

int kith_group_admins_only_invites(const kith_group *g) {
  return g->st.admins_only;
}

int kith_group_announce(const kith_group *g) {
  return g->st.announce;
}

void kith_group_set_replay(kith_group *g, int on) {
  g->replay = on != 0;
}

int kith_group_rekey_due(const kith_group *g) {
  return grp_state_rekey_due((kith_group *)g, &g->st);
}

uint64_t kith_group_epoch_id(const kith_group *g) {
  return g->st.epoch;
}

const char *kith_group_name(const kith_group *g) {
  return g->st.name;
}

const char *kith_group_topic(const kith_group *g) {
  return g->st.topic;
}

kith_history kith_group_history(const kith_group *g) {
  return g->st.history;
}

uint64_t kith_group_epoch(const kith_group *g) {
  return g->st.generation;
}

size_t kith_group_n_members(const kith_group *g) {
  return g->st.members->len;
}

const kith_member *kith_group_member_at(const kith_group *g, size_t i) {
  return i < g->st.members->len ? &g_array_index(g->st.members, grp_member, i).m
                                : NULL;
}

const kith_member *kith_group_find_member(const kith_group *g,
                                          const uint8_t id[32]) {
  const grp_member *m = grp_state_member(&g->st, id);
  return m ? &m->m : NULL;
}

int kith_group_is_member(const kith_group *g, const uint8_t id[32]) {
  return grp_state_member(&g->st, id) != NULL;
}

uint64_t kith_group_muted_until(const kith_group *g, const uint8_t id[32]) {
  const grp_member *m = grp_state_member(&g->st, id);
  return m ? m->muted_until : 0;
}

size_t kith_group_n_banned(const kith_group *g) {
  return g->st.bans->len / 32;
}

const uint8_t *kith_group_banned_at(const kith_group *g, size_t i) {
  return i < g->st.bans->len / 32 ? g->st.bans->data + 32 * i : NULL;
}

/* The name given by the latest add (or the create) of this node. */
const char *kith_group_name_of(const kith_group *g, const uint8_t id[32]) {
  const grp_member *m = grp_state_member(&g->st, id);
  if (m)
    return m->m.name;
  for (guint i = g->ctl->len; i-- > 0;) {
    const grp_ctl *c = g->ctl->pdata[i];
    if (c->kind == KITH_EV_ADD && memcmp(c->in.member, id, 32) == 0)
      return c->in.name;
    if (c->kind == KITH_EV_CREATE && memcmp(c->author, id, 32) == 0)
      return c->in.owner_name;
  }
  return "";
}

size_t kith_group_n_invites(const kith_group *g) {
  return g->st.invites->len;
}

void kith_group_invite_at(const kith_group *g, size_t i,
                          kith_invite_info *out) {
  memset(out, 0, sizeof *out);
  if (i >= g->st.invites->len)
    return;
  const grp_invite *v = &g_array_index(g->st.invites, grp_invite, i);
  memcpy(out->pk, v->pk, 32);
  memcpy(out->by, v->by, 32);
  out->uses = (uint32_t)v->uses;
  out->used = (uint32_t)v->used;
  out->expires_ms = v->expires;
  out->revoked = v->revoked;
}

size_t kith_group_n_reports(const kith_group *g) {
  return g->st.reports->len;
}

void kith_group_report_at(const kith_group *g, size_t i, uint8_t reporter[32],
                          uint8_t accused[32], uint8_t rekey[32]) {
  if (i >= g->st.reports->len)
    return;
  const grp_report *r = &g_array_index(g->st.reports, grp_report, i);
  memcpy(reporter, r->reporter, 32);
  memcpy(accused, r->accused, 32);
  memcpy(rekey, r->rekey, 32);
}

uint64_t kith_group_n_events(const kith_group *g) {
  return g->n_events;
}

void kith_group_get_stats(const kith_group *g, kith_group_stats *out) {
  *out = g->stats;
}

size_t kith_group_n_held(const kith_group *g) {
  return g_hash_table_size(g->held);
}

int kith_group_has_event(kith_group *g, const uint8_t id[32]) {
  return grp_sum_get(g, id) != NULL;
}

kith_err kith_group_event_raw(kith_group *g, const uint8_t id[32],
                              GBytes **out) {
  if (!g->store) {
    GBytes *b = grp_raw_of(g, id);
    if (!b)
      return KITH_ERR_NOT_FOUND;
    *out = g_bytes_ref(b);
    return KITH_OK;
  }
  return kith_store_get_raw(g->store, g->gid, id, out);
}

/* A base32 prefix of k characters fixes the first 5k bits of an id: the
 * ids it names lie between lo (the other bits 0) and hi (1). */
static int prefix_range(const char *text, uint8_t lo[32], uint8_t hi[32]) {
  size_t k = strlen(text);
  uint8_t scratch[32];
  if (k == 0 || k > KITH_ID_TEXT_LEN ||
      kith_base32_decode(text, k, scratch, sizeof scratch) < 0)
    return 0; /* not base32 */
  memset(lo, 0, 32);
  memset(hi, 0xff, 32);
  for (size_t i = 0; i < k; i++) {
    int val = g_ascii_isdigit(text[i]) ? text[i] - '2' + 26
                                       : g_ascii_tolower(text[i]) - 'a';
    for (int b = 4; b >= 0; b--) {
      size_t bit = 5 * i + (size_t)(4 - b);
      if (bit >= 256)
        continue;
      uint8_t mask = (uint8_t)(0x80 >> (bit % 8));
      if ((val >> b) & 1)
        lo[bit / 8] |= mask;
      else
        hi[bit / 8] &= (uint8_t)~mask;
    }
  }
  return 1;
}

kith_err kith_group_find_event(kith_group *g, const char *text,
                               uint8_t id[32]) {
  uint8_t lo[32], hi[32];
  if (!g || !text)
    return KITH_ERR_ARG;
  if (strlen(text) == KITH_ID_TEXT_LEN &&
      kith_id_from_text(text, id) == KITH_OK)
    return grp_sum_get(g, id) ? KITH_OK : KITH_ERR_NOT_FOUND;
  if (!prefix_range(text, lo, hi))
    return KITH_ERR_ARG;
  GByteArray *found = g_byte_array_new();
  kith_err rc = KITH_OK;
  if (g->store) {
    rc = kith_store_find_range(g->store, g->gid, lo, hi, found);
  } else {
    for (guint i = 0; g->raw_order && i < g->raw_order->len; i++) {
      const uint8_t *x = g->raw_order->pdata[i];
      if (memcmp(x, lo, 32) >= 0 && memcmp(x, hi, 32) <= 0 && found->len < 64)
        g_byte_array_append(found, x, 32);
    }
  }
  if (rc == KITH_OK)
    rc = found->len == 0   ? KITH_ERR_NOT_FOUND
         : found->len > 32 ? KITH_ERR_AMBIGUOUS
                           : KITH_OK;
  if (rc == KITH_OK)
    memcpy(id, found->data, 32);
  g_byte_array_free(found, TRUE);
  return rc;
}

kith_err kith_group_event_info(kith_group *g, const uint8_t id[32],
                               uint64_t *depth, uint64_t *ts_ms, uint32_t *kind,
                               uint8_t author[32]) {
  grp_sum *s = grp_sum_get(g, id);
  if (!s)
    return KITH_ERR_NOT_FOUND;
  if (depth)
    *depth = s->depth;
  if (ts_ms)
    *ts_ms = s->ts;
  if (kind)
    *kind = s->kind;
  if (author)
    memcpy(author, s->author, 32);
  return KITH_OK;
}

kith_err kith_group_each_id(kith_group *g,
                            void (*fn)(void *ctx, uint64_t ts_ms,
                                       const uint8_t id[32]),
                            void *ctx) {
  if (g->store)
    return kith_store_each_id(g->store, g->gid, fn, ctx);
  for (guint i = 0; g->raw_order && i < g->raw_order->len; i++) {
    grp_sum *s = grp_sum_get(g, g->raw_order->pdata[i]);
    if (s)
      fn(ctx, s->ts, g->raw_order->pdata[i]);
  }
  return KITH_OK;
}

static gint id_cmp(gconstpointer a, gconstpointer b) {
  return memcmp(a, b, 32);
}

void kith_group_heads(const kith_group *g, GByteArray *ids) {
  GList *keys = g_hash_table_get_keys(g->heads);
  keys = g_list_sort(keys, id_cmp);
  for (GList *l = keys; l; l = l->next)
    g_byte_array_append(ids, l->data, 32);
  g_list_free(keys);
}

void kith_group_state_hash(kith_group *g, uint8_t out[32]) {
  GByteArray *hs = g_byte_array_new();
  kith_group_heads(g, hs);
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, g->st.ext ? 5 : 4);
  kith_pack_bin(&p, g->gid, 32);
  grp_state_pack(g, &g->st, &p);
  kith_pack_array(&p, hs->len / 32);
  for (guint i = 0; i < hs->len; i += 32)
    kith_pack_bin(&p, hs->data + i, 32);
  kith_pack_uint(&p, g->n_events);
  if (g->st.ext)
    grp_state_pack_ext(g, &g->st, &p);
  crypto_generichash(out, 32, (const uint8_t *)p.sb.data, p.sb.size, NULL, 0);
  kith_pack_clear(&p);
  g_byte_array_free(hs, TRUE);
}
