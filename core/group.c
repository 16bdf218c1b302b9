/* kith: one group replica: receipt, holding, keys, composing (group.h).
 *
 * Accepted events live in `events` (id -> entry, with the decrypted inner
 * plaintext cached) and in `order`, sorted by (depth, id). The derived
 * state is the fold of `order` (group_state.c): a new event that sorts
 * last is applied on top, any other insertion re-folds from the cached
 * inners without decrypting again.
 *
 * Whether an event is accepted depends only on the event and its causal
 * past (the state at its parents), never on concurrent events a replica
 * happens to hold already; otherwise replicas receiving the same events
 * in different orders would keep different sets. */
#include "group_int.h"

#include <sodium.h>
#include <string.h>

#include "codec.h"
#include "gcrypto.h"

static guint id_hash(gconstpointer p) {
  guint h;
  memcpy(&h, p, sizeof h);
  return h;
}

static gboolean id_equal(gconstpointer a, gconstpointer b) {
  return memcmp(a, b, 32) == 0;
}

static gboolean key40_equal(gconstpointer a, gconstpointer b) {
  return memcmp(a, b, 40) == 0;
}

static guint key40_hash(gconstpointer p) {
  return id_hash((const uint8_t *)p + 8) ^ (guint)((const uint8_t *)p)[0];
}

static void entry_free(gpointer p) {
  grp_entry *e = p;
  kith_event_clear(&e->ev);
  grp_inner_clear(&e->in);
  g_free(e);
}

static void held_free(gpointer p) {
  held *h = p;
  kith_event_clear(&h->ev);
  g_free(h);
}

static void slot_free(gpointer p) {
  chain_slot *s = p;
  kith_chain_free(s->c);
  g_free(s);
}

kith_group *kith_group_new(const uint8_t gid[32], const kith_ident *me) {
  kith_group *g = g_new0(kith_group, 1);
  g->secrets = sodium_malloc(sizeof(secret_rec) * GROUP_MAX_SECRETS);
  if (!g->secrets) {
    g_free(g);
    return NULL;
  }
  memcpy(g->gid, gid, 32);
  g->me = me;
  g->events = g_hash_table_new_full(id_hash, id_equal, NULL, entry_free);
  g->order = g_ptr_array_new();
  g->heads = g_ptr_array_new();
  grp_state_init(&g->st);
  g->held = g_hash_table_new_full(id_hash, id_equal, NULL, held_free);
  g->chains = g_hash_table_new_full(key40_hash, key40_equal, g_free, slot_free);
  return g;
}

void kith_group_free(kith_group *g) {
  if (!g)
    return;
  g_ptr_array_free(g->order, TRUE);
  g_ptr_array_free(g->heads, TRUE);
  g_hash_table_destroy(g->events);
  g_hash_table_destroy(g->held);
  g_hash_table_destroy(g->chains);
  grp_state_clear(&g->st);
  sodium_free(g->secrets);
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

/* ---- the accepted set ---- */

static grp_entry *find_entry(const kith_group *g, const uint8_t id[32]) {
  return g_hash_table_lookup(g->events, id);
}

static int parents_present(const kith_group *g, const kith_event *ev) {
  for (size_t i = 0; i < ev->n_parents; i++)
    if (!find_entry(g, ev->parents[i]))
      return 0;
  return 1;
}

/* depth must be 1 + the deepest parent (parents are present). */
static kith_err check_depth(const kith_group *g, const kith_event *ev) {
  uint64_t max = 0;
  for (size_t i = 0; i < ev->n_parents; i++) {
    const grp_entry *p = find_entry(g, ev->parents[i]);
    if (p->ev.depth > max)
      max = p->ev.depth;
  }
  if (ev->kind == KITH_EV_CREATE)
    return KITH_OK;
  return ev->depth == max + 1 ? KITH_OK : KITH_ERR_PROTOCOL;
}

static int is_parent(const kith_event *ev, const uint8_t id[32]) {
  for (size_t i = 0; i < ev->n_parents; i++)
    if (memcmp(ev->parents[i], id, 32) == 0)
      return 1;
  return 0;
}

/* The state after exactly the causal past of ev. When every head is a
 * parent, that past is the whole set and the current state is it. */
const grp_state *grp_state_at_parents(const kith_group *g, const kith_event *ev,
                                      grp_state *tmp) {
  guint i;
  for (i = 0; i < g->heads->len; i++)
    if (!is_parent(ev, ((grp_entry *)g->heads->pdata[i])->ev.id))
      break;
  if (i == g->heads->len)
    return &g->st;
  GHashTable *past = g_hash_table_new(id_hash, id_equal);
  GPtrArray *stack = g_ptr_array_new();
  for (size_t k = 0; k < ev->n_parents; k++)
    g_ptr_array_add(stack, find_entry(g, ev->parents[k]));
  while (stack->len > 0) {
    grp_entry *e = g_ptr_array_steal_index_fast(stack, stack->len - 1);
    if (!e || !g_hash_table_add(past, e->ev.id))
      continue;
    for (size_t k = 0; k < e->ev.n_parents; k++)
      g_ptr_array_add(stack, find_entry(g, e->ev.parents[k]));
  }
  grp_state_init(tmp);
  for (i = 0; i < g->order->len; i++) {
    grp_entry *e = g->order->pdata[i];
    if (g_hash_table_contains(past, e->ev.id))
      grp_state_apply(tmp, e);
  }
  g_ptr_array_free(stack, TRUE);
  g_hash_table_destroy(past);
  return tmp;
}

static void refold(kith_group *g) {
  grp_state_clear(&g->st);
  grp_state_init(&g->st);
  for (guint i = 0; i < g->order->len; i++)
    grp_state_apply(&g->st, g->order->pdata[i]);
}

static void insert_entry(kith_group *g, grp_entry *e) {
  g_hash_table_insert(g->events, e->ev.id, e);
  for (guint i = g->heads->len; i-- > 0;)
    if (is_parent(&e->ev, ((grp_entry *)g->heads->pdata[i])->ev.id))
      g_ptr_array_remove_index_fast(g->heads, i);
  g_ptr_array_add(g->heads, e);
  guint lo = 0, hi = g->order->len;
  while (lo < hi) {
    guint mid = lo + (hi - lo) / 2;
    if (grp_entry_cmp(g->order->pdata[mid], e) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  g_ptr_array_insert(g->order, (gint)lo, e);
  if (lo + 1 == g->order->len)
    grp_state_apply(&g->st, e);
  else
    refold(g);
}

static void push_accepted(const grp_entry *e, GPtrArray *acc) {
  if (!acc)
    return;
  kith_accepted *a = g_new0(kith_accepted, 1);
  if (kith_event_copy(&a->ev, &e->ev) != KITH_OK) {
    g_free(a);
    return;
  }
  if (e->in.text) {
    a->text = g_strndup(e->in.text, e->in.text_len);
    a->text_len = e->in.text_len;
  }
  g_ptr_array_add(acc, a);
}

static void spend(kith_chain *c, uint64_t n) {
  uint8_t key[KITH_KEY_LEN];
  if (kith_chain_key(c, n, key) == KITH_OK)
    sodium_memzero(key, sizeof key);
}

/* An accepted message: decrypts it (unless replaying, or its author is no
 * longer a member here: concurrency rule 1) and spends its key. A message
 * that does not open stays accepted, unread: whether an event is accepted
 * must not depend on keys only some replicas hold. */
static void read_message(kith_group *g, grp_entry *e, const body *b, int own) {
  chain_slot *c = grp_chain_get(g, e->epoch, e->ev.author);
  if (!c) {
    e->in.unread = 1;
    return;
  }
  if (!own) {
    int show = !g->replay && grp_state_member(&g->st, e->ev.author);
    uint8_t key[KITH_KEY_LEN];
    if (show && kith_chain_peek(c->c, e->n, key) == KITH_OK &&
        grp_open_with(g, &e->ev, b, key, &e->in) == KITH_OK) {
      spend(c->c, e->n);
    } else {
      if (!show)
        spend(c->c, e->n);
      e->in.unread = 1;
    }
    sodium_memzero(key, sizeof key);
  }
  if (e->n + 1 > c->next_n)
    c->next_n = e->n + 1;
}

/* A rekey has one box per member at its parents, in id order; those
 * members are the ones it was sealed to (its holders). */
static kith_err rekey_at_parents(const grp_state *s, grp_entry *e,
                                 const body *b, int own) {
  if (own) /* composed for exactly these members */
    return KITH_OK;
  if (grp_rekey_n_boxes(b) != (long)s->members->len)
    return KITH_ERR_PROTOCOL;
  e->in.n_holders = s->members->len;
  e->in.holders = g_malloc(32 * (s->members->len + 1));
  for (guint i = 0; i < s->members->len; i++)
    memcpy(e->in.holders + 32 * i,
           ((kith_member *)g_ptr_array_index(s->members, i))->id, 32);
  return KITH_OK;
}

static void take_rekey_keys(kith_group *g, const grp_entry *e, const body *b) {
  for (size_t i = 0; i < e->in.n_holders; i++)
    if (memcmp(e->in.holders + 32 * i, g->me->pk, 32) == 0) {
      (void)grp_take_rekey_keys(g, b, i, e->in.new_epoch);
      return;
    }
}

/* The rules at the event's parents: depth, membership, epoch, the inner
 * plaintext, the kind's own rule. */
static kith_err check_at_parents(kith_group *g, const grp_state *s,
                                 grp_entry *e, const body *b, int own) {
  const kith_event *ev = &e->ev;
  kith_err rc = check_depth(g, ev);
  if (rc == KITH_OK && ev->kind != KITH_EV_CREATE) {
    if (!grp_state_member(s, ev->author))
      rc = KITH_ERR_NOT_MEMBER;
    else if (b->epoch != s->epoch)
      rc = KITH_ERR_PROTOCOL;
  }
  if (rc == KITH_OK && !own && ev->kind != KITH_EV_MESSAGE)
    rc = grp_open_meta(g, ev, b, &e->in);
  if (rc == KITH_OK && ev->kind == KITH_EV_REKEY)
    rc = rekey_at_parents(s, e, b, own);
  return rc == KITH_OK ? grp_state_check(s, e) : rc;
}

static void note_membership(kith_group *g) {
  if (grp_state_member(&g->st, g->me->pk))
    g->was_member = 1;
}

kith_err grp_accept(kith_group *g, kith_event *ev, const body *b,
                    grp_inner *own, GPtrArray *acc) {
  if (g_hash_table_size(g->events) >= GROUP_MAX_EVENTS) {
    if (own)
      grp_inner_clear(own);
    return KITH_ERR_LIMIT;
  }
  grp_entry *e = g_new0(grp_entry, 1);
  grp_state tmp = {0};
  const grp_state *s = grp_state_at_parents(g, ev, &tmp);
  if (own)
    e->in = *own, memset(own, 0, sizeof *own);
  e->ev = *ev;
  e->epoch = b->epoch;
  e->n = b->n;
  kith_err rc = check_at_parents(g, s, e, b, own != NULL);
  if (s == &tmp)
    grp_state_clear(&tmp);
  if (rc != KITH_OK) {
    memset(&e->ev, 0, sizeof e->ev);
    entry_free(e);
    return rc;
  }
  memset(ev, 0, sizeof *ev);
  if (e->ev.kind == KITH_EV_REKEY && !own)
    take_rekey_keys(g, e, b);
  if (e->ev.kind == KITH_EV_MESSAGE)
    read_message(g, e, b, own != NULL);
  insert_entry(g, e);
  note_membership(g);
  push_accepted(e, acc);
  return KITH_OK;
}

/* ---- receipt and held events ---- */

static int is_ready_for(const kith_group *g, const kith_event *ev,
                        uint64_t epoch) {
  uint8_t key[KITH_KEY_LEN];
  int ok = parents_present(g, ev) && grp_meta_key(g, epoch, key);
  sodium_memzero(key, sizeof key);
  return ok;
}

/* A node that has been a member and is no longer one will not get the
 * keys of later epochs: it stops holding what it cannot read. */
static int has_departed(const kith_group *g) {
  return g->was_member && !grp_state_member(&g->st, g->me->pk);
}

static kith_err hold(kith_group *g, kith_event *ev, uint64_t epoch) {
  size_t cost = ev->raw_len + ev->body_len;
  if (has_departed(g) && parents_present(g, ev))
    return KITH_ERR_NOT_MEMBER; /* waits for keys it will never get */
  if (g_hash_table_size(g->held) >= KITH_GROUP_MAX_HELD ||
      g->held_bytes + cost > GROUP_MAX_HELD_BYTES)
    return KITH_ERR_LIMIT;
  held *h = g_new0(held, 1);
  h->ev = *ev;
  h->epoch = epoch;
  memset(ev, 0, sizeof *ev);
  g->held_bytes += cost;
  g_hash_table_insert(g->held, h->ev.id, h);
  return KITH_ERR_MISSING;
}

static gint held_cmp(gconstpointer a, gconstpointer b) {
  const held *x = *(const held *const *)a, *y = *(const held *const *)b;
  if (x->ev.depth != y->ev.depth)
    return x->ev.depth < y->ev.depth ? -1 : 1;
  return memcmp(x->ev.id, y->ev.id, 32);
}

/* One pass over the held events in (depth, id) order; returns how many
 * were accepted. Held events that fail now are dropped. */
static guint release_pass(kith_group *g, GPtrArray *acc) {
  GPtrArray *all = g_ptr_array_new();
  GHashTableIter it;
  gpointer v;
  guint accepted = 0;
  g_hash_table_iter_init(&it, g->held);
  while (g_hash_table_iter_next(&it, NULL, &v))
    g_ptr_array_add(all, v);
  g_ptr_array_sort(all, held_cmp);
  for (guint i = 0; i < all->len; i++) {
    held *h = all->pdata[i];
    if (!is_ready_for(g, &h->ev, h->epoch))
      continue;
    g_hash_table_steal(g->held, h->ev.id);
    g->held_bytes -= h->ev.raw_len + h->ev.body_len;
    body b;
    if (grp_parse_body(&h->ev, &b) == KITH_OK &&
        grp_accept(g, &h->ev, &b, NULL, acc) == KITH_OK)
      accepted++;
    grp_body_clear(&b);
    held_free(h);
  }
  g_ptr_array_free(all, TRUE);
  return accepted;
}

static void release_held(kith_group *g, GPtrArray *acc) {
  while (g_hash_table_size(g->held) > 0 && release_pass(g, acc) > 0)
    ;
}

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

static kith_err receive_decoded(kith_group *g, kith_event *ev, GPtrArray *acc) {
  if (find_entry(g, ev->id))
    return KITH_ERR_DUPLICATE;
  if (g_hash_table_contains(g->held, ev->id))
    return KITH_ERR_MISSING;
  kith_err rc = check_group_id(g, ev);
  if (rc != KITH_OK)
    return rc;
  body b;
  rc = grp_parse_body(ev, &b);
  if (rc != KITH_OK)
    return rc;
  int took = grp_take_add_keys(g, ev, &b);
  if (!is_ready_for(g, ev, b.epoch))
    rc = hold(g, ev, b.epoch);
  else
    rc = grp_accept(g, ev, &b, NULL, acc);
  grp_body_clear(&b);
  if (rc == KITH_OK || took)
    release_held(g, acc);
  return as_receipt_error(rc);
}

kith_err kith_group_receive(kith_group *g, const uint8_t *raw, size_t len,
                            uint64_t now_ms, GPtrArray *accepted) {
  if (!g || !raw)
    return KITH_ERR_ARG;
  kith_event ev;
  kith_err rc = kith_event_decode(raw, len, &ev);
  if (rc != KITH_OK)
    return rc;
  rc = receive_decoded(g, &ev, accepted);
  kith_event_clear(&ev);
  return rc;
}

/* ---- derived state ---- */

const uint8_t *kith_group_id(const kith_group *g) {
  return g->gid;
}

int kith_group_is_ready(const kith_group *g) {
  return g->st.created && grp_find_secret(g, g->st.epoch) != NULL;
}

int kith_group_admins_only_invites(const kith_group *g) {
  return g->st.admins_only;
}

void kith_group_set_replay(kith_group *g, int on) {
  g->replay = on != 0;
}

int kith_group_rekey_due(const kith_group *g) {
  return grp_state_rekey_due(&g->st);
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
  return i < g->st.members->len ? g_ptr_array_index(g->st.members, i) : NULL;
}

const kith_member *kith_group_find_member(const kith_group *g,
                                          const uint8_t id[32]) {
  return grp_state_member(&g->st, id);
}

int kith_group_is_member(const kith_group *g, const uint8_t id[32]) {
  return grp_state_member(&g->st, id) != NULL;
}

size_t kith_group_n_events(const kith_group *g) {
  return g->order->len;
}

size_t kith_group_n_held(const kith_group *g) {
  return g_hash_table_size(g->held);
}

int kith_group_has_event(const kith_group *g, const uint8_t id[32]) {
  return find_entry(g, id) != NULL;
}

const kith_event *kith_group_event(const kith_group *g, const uint8_t id[32]) {
  const grp_entry *e = find_entry(g, id);
  return e ? &e->ev : NULL;
}

void kith_group_event_ids(const kith_group *g, GByteArray *ids) {
  for (guint i = 0; i < g->order->len; i++)
    g_byte_array_append(ids, ((grp_entry *)g->order->pdata[i])->ev.id, 32);
}

static gint id_cmp(gconstpointer a, gconstpointer b) {
  const grp_entry *x = *(const grp_entry *const *)a;
  const grp_entry *y = *(const grp_entry *const *)b;
  return memcmp(x->ev.id, y->ev.id, 32);
}

void kith_group_state_hash(const kith_group *g, uint8_t out[32]) {
  GPtrArray *hs = g_ptr_array_copy(g->heads, NULL, NULL);
  g_ptr_array_sort(hs, id_cmp);
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 4);
  kith_pack_bin(&p, g->gid, 32);
  grp_state_pack(&g->st, &p);
  kith_pack_array(&p, hs->len);
  for (guint i = 0; i < hs->len; i++)
    kith_pack_bin(&p, ((grp_entry *)hs->pdata[i])->ev.id, 32);
  kith_pack_uint(&p, g->order->len);
  crypto_generichash(out, 32, (const uint8_t *)p.sb.data, p.sb.size, NULL, 0);
  kith_pack_clear(&p);
  g_ptr_array_free(hs, TRUE);
}
