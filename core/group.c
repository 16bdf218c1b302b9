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
#include "invite.h"

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
static const grp_state *state_at_parents(const kith_group *g,
                                         const kith_event *ev, grp_state *tmp) {
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

/* Spends the message key of an accepted message (a local one spent it
 * when composing) and advances the sender's next number. */
static kith_err spend_key(kith_group *g, const grp_entry *e, int own) {
  chain_slot *s = grp_chain_get(g, e->epoch, e->ev.author);
  if (!s)
    return KITH_ERR_MISSING;
  if (!own) {
    uint8_t key[KITH_KEY_LEN];
    kith_err rc = kith_chain_key(s->c, e->n, key);
    sodium_memzero(key, sizeof key);
    if (rc != KITH_OK)
      return rc;
  }
  if (e->n + 1 > s->next_n)
    s->next_n = e->n + 1;
  return KITH_OK;
}

/* Checks and decrypts ev (parents present, key known) and adds it. own,
 * if set, is the plaintext of a local event (its message key is already
 * spent). On KITH_OK ev and own move into the group; otherwise the caller
 * still owns ev, and own is cleared. */
static kith_err accept_event(kith_group *g, kith_event *ev, const body *b,
                             grp_inner *own, GPtrArray *acc) {
  if (g_hash_table_size(g->events) >= GROUP_MAX_EVENTS) {
    if (own)
      grp_inner_clear(own);
    return KITH_ERR_LIMIT;
  }
  grp_entry *e = g_new0(grp_entry, 1);
  grp_state tmp = {0};
  const grp_state *s = state_at_parents(g, ev, &tmp);
  kith_err rc = check_depth(g, ev);
  if (own)
    e->in = *own, memset(own, 0, sizeof *own);
  if (rc == KITH_OK && ev->kind != KITH_EV_CREATE &&
      !grp_state_member(s, ev->author))
    rc = KITH_ERR_NOT_MEMBER;
  if (rc == KITH_OK && !own)
    rc = grp_open_event(g, ev, b, &e->in);
  e->ev = *ev;
  e->epoch = b->epoch;
  e->n = b->n;
  if (rc == KITH_OK)
    rc = grp_state_check(s, e);
  if (s == &tmp)
    grp_state_clear(&tmp);
  if (rc == KITH_OK && ev->kind == KITH_EV_MESSAGE)
    rc = spend_key(g, e, own != NULL);
  if (rc != KITH_OK) {
    memset(&e->ev, 0, sizeof e->ev);
    entry_free(e);
    return rc;
  }
  memset(ev, 0, sizeof *ev);
  insert_entry(g, e);
  push_accepted(e, acc);
  return KITH_OK;
}

/* ---- receipt and held events ---- */

static int is_ready_for(const kith_group *g, const kith_event *ev,
                        uint64_t epoch) {
  return parents_present(g, ev) && grp_find_secret(g, epoch) != NULL;
}

static kith_err hold(kith_group *g, kith_event *ev, uint64_t epoch) {
  size_t cost = ev->raw_len + ev->body_len;
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
        accept_event(g, &h->ev, &b, NULL, acc) == KITH_OK)
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
  int took = grp_take_secrets(g, ev, &b);
  if (!is_ready_for(g, ev, b.epoch))
    rc = hold(g, ev, b.epoch);
  else
    rc = accept_event(g, ev, &b, NULL, acc);
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

/* ---- composing local events ---- */

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

/* Seals inner under key and packs the outer body. */
static kith_err pack_body(const kith_event *ev, const uint8_t *gid,
                          const uint8_t key[KITH_KEY_LEN], uint64_t epoch,
                          uint64_t n, const uint8_t *inner, size_t inner_len,
                          const uint8_t *extra, size_t extra_len, uint8_t **out,
                          size_t *out_len) {
  uint8_t ad[77];
  grp_make_ad(ev->kind, ev->author, gid, ad);
  size_t sl = inner_len + KITH_SEALED_OVERHEAD;
  uint8_t *sealed = g_malloc(sl);
  kith_gcrypto_seal(key, ad, sizeof ad, inner, inner_len, sealed);
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 3);
  kith_pack_uint(&p, epoch);
  if (ev->kind == KITH_EV_MESSAGE)
    kith_pack_uint(&p, n);
  kith_pack_bin(&p, sealed, sl);
  if (ev->kind == KITH_EV_ADD)
    kith_pack_bin(&p, extra, extra_len);
  else if (ev->kind != KITH_EV_MESSAGE)
    kith_pack_nil(&p);
  g_free(sealed);
  kith_err rc = kith_pack_take(&p, out, out_len);
  if (rc == KITH_OK && *out_len > KITH_EVENT_MAX_BODY)
    rc = KITH_ERR_LIMIT;
  return rc;
}

/* Key for a local event: the meta key, or the next key of our chain. */
static kith_err compose_key(kith_group *g, uint32_t kind, uint64_t epoch,
                            uint64_t *n, uint8_t key[KITH_KEY_LEN]) {
  const uint8_t *secret = grp_find_secret(g, epoch);
  if (!secret)
    return KITH_ERR_STATE;
  if (kind != KITH_EV_MESSAGE) {
    kith_gcrypto_meta_key(secret, key);
    return KITH_OK;
  }
  chain_slot *s = grp_chain_get(g, epoch, g->me->pk);
  if (!s)
    return KITH_ERR_NOMEM;
  *n = s->next_n;
  return kith_chain_key(s->c, *n, key);
}

/* Builds, signs and accepts a local event of kind with plaintext inner;
 * own (moved into the group) is its decoded form. */
static kith_err compose(kith_group *g, uint32_t kind, const kith_pack *inner,
                        const uint8_t *extra, size_t extra_len, grp_inner *own,
                        uint64_t now_ms, kith_accepted **out) {
  kith_event ev = {.kind = kind, .ts_ms = now_ms};
  uint8_t key[KITH_KEY_LEN], *bytes = NULL;
  size_t len = 0;
  uint64_t n = 0;
  memcpy(ev.group_id, g->gid, 32);
  memcpy(ev.author, g->me->pk, 32);
  choose_parents(g, &ev);
  kith_err rc = compose_key(g, kind, g->st.epoch, &n, key);
  if (rc == KITH_OK)
    rc = pack_body(&ev, g->gid, key, g->st.epoch, n,
                   (const uint8_t *)inner->sb.data, inner->sb.size, extra,
                   extra_len, &bytes, &len);
  sodium_memzero(key, sizeof key);
  if (rc == KITH_OK)
    rc = kith_event_build(&ev, g->me, bytes, len);
  g_free(bytes);
  body b = {.epoch = g->st.epoch, .n = n};
  GPtrArray *acc = g_ptr_array_new();
  if (rc == KITH_OK)
    rc = accept_event(g, &ev, &b, own, acc);
  else
    grp_inner_clear(own);
  kith_event_clear(&ev);
  if (rc == KITH_OK && out)
    *out = acc->pdata[0];
  else if (rc == KITH_OK)
    kith_accepted_free(acc->pdata[0]);
  g_ptr_array_free(acc, TRUE);
  return rc;
}

static kith_err can_compose(const kith_group *g) {
  if (!g->st.created)
    return KITH_ERR_STATE;
  return grp_state_member(&g->st, g->me->pk) ? KITH_OK : KITH_ERR_NOT_MEMBER;
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
  rc = p.failed ? KITH_ERR_NOMEM
                : compose(g, KITH_EV_MESSAGE, &p, NULL, 0, &own, now_ms, out);
  kith_pack_clear(&p);
  grp_inner_clear(&own);
  return rc;
}

kith_err kith_group_invite(kith_group *g, uint32_t uses, uint64_t expires_ms,
                           uint64_t now_ms, uint8_t secret_out[32],
                           kith_accepted **out) {
  if (!g || !secret_out || uses < 1 || uses > KITH_INVITE_MAX_USES ||
      expires_ms <= now_ms)
    return KITH_ERR_ARG;
  kith_err rc = can_compose(g);
  if (rc != KITH_OK)
    return rc;
  grp_inner own = {.uses = uses, .expires = expires_ms};
  randombytes_buf(secret_out, 32);
  kith_invite_public_key(secret_out, own.pk);
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 3);
  kith_pack_bin(&p, own.pk, 32);
  kith_pack_uint(&p, uses);
  kith_pack_uint(&p, expires_ms);
  rc = p.failed ? KITH_ERR_NOMEM
                : compose(g, KITH_EV_INVITE, &p, NULL, 0, &own, now_ms, out);
  kith_pack_clear(&p);
  grp_inner_clear(&own);
  return rc;
}

/* The add's extra: every epoch secret we know, sealed to the newcomer
 * (history "joined" is not implemented yet and behaves like "shared"). */
static kith_err seal_secrets(const kith_group *g, const uint8_t member[32],
                             uint8_t **out, size_t *out_len) {
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, (uint32_t)g->n_secrets);
  for (size_t i = 0; i < g->n_secrets; i++) {
    kith_pack_array(&p, 2);
    kith_pack_uint(&p, g->secrets[i].epoch);
    kith_pack_bin(&p, g->secrets[i].key, KITH_KEY_LEN);
  }
  kith_err rc = p.failed ? KITH_ERR_NOMEM : KITH_OK;
  if (rc == KITH_OK) {
    *out_len = p.sb.size + KITH_SEAL_OVERHEAD;
    *out = g_malloc(*out_len);
    rc = kith_seal(member, p.sb.data, p.sb.size, *out);
  }
  kith_pack_clear(&p);
  return rc;
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

kith_err kith_group_admit(kith_group *g, const uint8_t member[32],
                          const char *name, const uint8_t invite_pk[32],
                          const uint8_t join_sig[KITH_SIG_LEN], uint64_t now_ms,
                          kith_accepted **out) {
  if (!g || !member || !name || !invite_pk || !join_sig)
    return KITH_ERR_ARG;
  kith_err rc = check_admit(g, member, name, invite_pk, join_sig, now_ms);
  if (rc != KITH_OK)
    return rc;
  uint8_t *extra = NULL;
  size_t extra_len = 0;
  rc = seal_secrets(g, member, &extra, &extra_len);
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
  if (rc == KITH_OK && p.failed)
    rc = KITH_ERR_NOMEM;
  if (rc == KITH_OK)
    rc = compose(g, KITH_EV_ADD, &p, extra, extra_len, &own, now_ms, out);
  kith_pack_clear(&p);
  grp_inner_clear(&own);
  g_free(extra);
  return rc;
}

kith_err kith_group_check_invite(const kith_group *g,
                                 const uint8_t invite_pk[32], uint64_t now_ms) {
  if (!g || !invite_pk)
    return KITH_ERR_ARG;
  return grp_state_check_invite(&g->st, invite_pk, now_ms);
}

static kith_err create_event(const kith_ident *me, const char *name,
                             kith_history history, uint64_t now_ms,
                             const uint8_t secret[32], kith_event *ev) {
  uint8_t key[KITH_KEY_LEN], *bytes = NULL;
  size_t len = 0;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 2);
  kith_pack_cstr(&p, name);
  kith_pack_uint(&p, history);
  ev->kind = KITH_EV_CREATE;
  ev->ts_ms = now_ms;
  memcpy(ev->author, me->pk, 32);
  kith_gcrypto_meta_key(secret, key);
  kith_err rc = p.failed
                    ? KITH_ERR_NOMEM
                    : pack_body(ev, NULL, key, 0, 0, (const uint8_t *)p.sb.data,
                                p.sb.size, NULL, 0, &bytes, &len);
  sodium_memzero(key, sizeof key);
  kith_pack_clear(&p);
  if (rc == KITH_OK)
    rc = kith_event_build(ev, me, bytes, len);
  g_free(bytes);
  return rc;
}

kith_err kith_group_create(const kith_ident *me, const char *name,
                           kith_history history, uint64_t now_ms,
                           kith_group **g_out, kith_accepted **out) {
  if (!me || !name || !g_out || !grp_name_is_valid(name, strlen(name)) ||
      (history != KITH_HISTORY_SHARED && history != KITH_HISTORY_JOINED))
    return KITH_ERR_ARG;
  uint8_t secret[32];
  kith_event ev = {0};
  randombytes_buf(secret, sizeof secret);
  kith_err rc = create_event(me, name, history, now_ms, secret, &ev);
  kith_group *g = rc == KITH_OK ? kith_group_new(ev.id, me) : NULL;
  if (rc == KITH_OK && !g)
    rc = KITH_ERR_NOMEM;
  if (rc == KITH_OK) {
    kith_group_add_secret(g, 0, secret);
    grp_inner own = {.name = g_strdup(name), .history = history};
    body b = {0};
    GPtrArray *acc = g_ptr_array_new();
    rc = accept_event(g, &ev, &b, &own, acc);
    if (rc == KITH_OK && out)
      *out = acc->pdata[0];
    else if (rc == KITH_OK)
      kith_accepted_free(acc->pdata[0]);
    g_ptr_array_free(acc, TRUE);
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

/* ---- derived state ---- */

const uint8_t *kith_group_id(const kith_group *g) {
  return g->gid;
}

int kith_group_is_ready(const kith_group *g) {
  return g->st.created && g->n_secrets > 0;
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
  return g->st.epoch;
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
  kith_pack_array(&p, 9);
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
