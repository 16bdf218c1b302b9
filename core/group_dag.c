/* kith: the group's DAG bookkeeping (group_int.h): interval sets of
 * control sequence numbers, interned frontiers, the control events and
 * their (depth, id) order, the bounded cache of event summaries (backed by
 * the store when one is attached), member numbers and the heads. */
#include "group_int.h"

#include <sodium.h>
#include <string.h>

/* ---- interval sets ---- */

void grp_ivs_clear(grp_ivs *s) {
  g_free(s->v);
  s->v = NULL;
  s->n = 0;
}

int grp_ivs_has(const grp_ivs *s, uint32_t x) {
  uint32_t lo = 0, hi = s->n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (x < s->v[2 * mid])
      hi = mid;
    else if (x > s->v[2 * mid + 1])
      lo = mid + 1;
    else
      return 1;
  }
  return 0;
}

/* Appends [lo, hi] to out (intervals arrive in ascending order of lo),
 * merging with the last one when they touch or overlap. */
static void push_iv(uint32_t *out, uint32_t *n, uint32_t lo, uint32_t hi) {
  if (*n > 0 && lo <= out[2 * *n - 1] + 1 && out[2 * *n - 1] != UINT32_MAX) {
    if (hi > out[2 * *n - 1])
      out[2 * *n - 1] = hi;
    return;
  }
  if (*n > 0 && out[2 * *n - 1] == UINT32_MAX)
    return;
  out[2 * *n] = lo;
  out[2 * *n + 1] = hi;
  (*n)++;
}

void grp_ivs_union(grp_ivs *dst, const grp_ivs *src) {
  if (src->n == 0)
    return;
  uint32_t *out = g_new(uint32_t, 2 * (dst->n + src->n));
  uint32_t n = 0, i = 0, j = 0;
  while (i < dst->n || j < src->n) {
    const uint32_t *p;
    if (j >= src->n || (i < dst->n && dst->v[2 * i] <= src->v[2 * j]))
      p = dst->v + 2 * i++;
    else
      p = src->v + 2 * j++;
    push_iv(out, &n, p[0], p[1]);
  }
  g_free(dst->v);
  dst->v = g_renew(uint32_t, out, 2 * n);
  dst->n = n;
}

void grp_ivs_add(grp_ivs *dst, uint32_t x) {
  grp_ivs one = {.v = (uint32_t[]){x, x}, .n = 1};
  grp_ivs_union(dst, &one);
}

void grp_ivs_copy(grp_ivs *dst, const grp_ivs *src) {
  dst->n = src->n;
  dst->v = src->n ? g_memdup2(src->v, sizeof(uint32_t) * 2 * src->n) : NULL;
}

/* ---- frontiers ---- */

static guint front_hash(gconstpointer p) {
  const grp_front *f = p;
  return f->hash;
}

static gboolean front_equal(gconstpointer a, gconstpointer b) {
  const grp_front *x = a, *y = b;
  return x->n == y->n && memcmp(x->cs, y->cs, sizeof(uint32_t) * x->n) == 0;
}

static guint hash_cs(const uint32_t *cs, uint32_t n) {
  guint h = 2166136261u;
  for (uint32_t i = 0; i < n; i++)
    h = (h ^ cs[i]) * 16777619u;
  return h;
}

grp_front *grp_front_ref(grp_front *f) {
  if (f)
    f->refs++;
  return f;
}

void grp_front_unref(kith_group *g, grp_front *f) {
  if (!f || --f->refs > 0)
    return;
  grp_state_cache_drop(g, f);
  g_hash_table_remove(g->fronts, f);
  grp_ivs_clear(&f->anc);
  g_free(f->cs);
  g_free(f);
}

/* cs must be ascending, each cseq an accepted control event. */
grp_front *grp_front_intern(kith_group *g, const uint32_t *cs, uint32_t n) {
  grp_front key = {.n = n, .cs = (uint32_t *)cs, .hash = hash_cs(cs, n)};
  grp_front *f = g_hash_table_lookup(g->fronts, &key);
  if (f)
    return grp_front_ref(f);
  f = g_new0(grp_front, 1);
  f->n = n;
  f->cs = g_memdup2(cs, sizeof(uint32_t) * (n ? n : 1));
  f->hash = key.hash;
  f->refs = 1;
  for (uint32_t i = 0; i < n; i++) {
    grp_ctl *c = grp_ctl_at(g, cs[i]);
    if (c && c->pf)
      grp_ivs_union(&f->anc, &c->pf->anc);
    grp_ivs_add(&f->anc, cs[i]);
  }
  g_hash_table_add(g->fronts, f);
  return f;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* x is an ancestor of a different element of the set. */
static int dominated(kith_group *g, const uint32_t *cs, uint32_t n,
                     uint32_t x) {
  for (uint32_t i = 0; i < n; i++) {
    if (cs[i] == x || cs[i] < x)
      continue; /* ancestors have smaller cseqs */
    grp_ctl *c = grp_ctl_at(g, cs[i]);
    if (c->pf && grp_ivs_has(&c->pf->anc, x))
      return 1;
  }
  return 0;
}

grp_front *grp_front_merge(kith_group *g, grp_front *const *fronts, size_t n) {
  if (n == 1 ||
      (n > 1 && fronts[0] == fronts[1] && (n == 2 || fronts[1] == fronts[2]))) {
    size_t k = 1;
    while (k < n && fronts[k] == fronts[0])
      k++;
    if (k == n)
      return grp_front_ref(fronts[0]);
  }
  uint32_t total = 0;
  for (size_t i = 0; i < n; i++)
    total += fronts[i]->n;
  uint32_t *all = g_new(uint32_t, total ? total : 1), m = 0;
  for (size_t i = 0; i < n; i++)
    for (uint32_t k = 0; k < fronts[i]->n; k++)
      all[m++] = fronts[i]->cs[k];
  qsort(all, m, sizeof *all, cmp_u32);
  uint32_t u = 0;
  for (uint32_t i = 0; i < m; i++)
    if (u == 0 || all[u - 1] != all[i])
      all[u++] = all[i];
  uint32_t *keep = g_new(uint32_t, u ? u : 1), k = 0;
  g->stats.front_steps += (uint64_t)u * u;
  for (uint32_t i = 0; i < u; i++)
    if (!dominated(g, all, u, all[i]))
      keep[k++] = all[i];
  grp_front *f = grp_front_intern(g, keep, k);
  g_free(keep);
  g_free(all);
  return f;
}

/* ---- control events ---- */

int grp_ctl_cmp(const grp_ctl *a, const grp_ctl *b) {
  if (a->depth != b->depth)
    return a->depth < b->depth ? -1 : 1;
  return memcmp(a->id, b->id, 32);
}

int grp_ctl_concurrent(const grp_ctl *a, const grp_ctl *b) {
  if (a == b)
    return 0;
  const grp_ctl *lo = a->cseq < b->cseq ? a : b;
  const grp_ctl *hi = lo == a ? b : a;
  /* only the later one can have the earlier one as an ancestor */
  return !(hi->pf && grp_ivs_has(&hi->pf->anc, lo->cseq));
}

grp_ctl *grp_ctl_by_id(const kith_group *g, const uint8_t id[32]) {
  return g_hash_table_lookup(g->ctl_ids, id);
}

void grp_ctl_insert(kith_group *g, grp_ctl *c) {
  g_ptr_array_add(g->ctl, c);
  g_hash_table_insert(g->ctl_ids, c->id, c);
  guint lo = 0, hi = g->order->len;
  while (lo < hi) {
    guint mid = lo + (hi - lo) / 2;
    if (grp_ctl_cmp(g->order->pdata[mid], c) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  g_ptr_array_insert(g->order, (gint)lo, c);
  c->self = grp_front_intern(g, &c->cseq, 1);
  grp_front *both[2] = {g->ctl_heads, c->self};
  grp_front *heads =
      g->ctl_heads ? grp_front_merge(g, both, 2) : grp_front_ref(c->self);
  grp_front_unref(g, g->ctl_heads);
  g->ctl_heads = heads;
}

void grp_ctl_free(kith_group *g, grp_ctl *c) {
  if (!c)
    return;
  grp_inner_clear(&c->in);
  grp_front_unref(g, c->pf);
  grp_front_unref(g, c->self);
  g_free(c->rcpt);
  g_free(c);
}

/* ---- epochs and the control events that started them ---- */

/* g->epochs: epoch id -> uint32_t array {count, cseq...}: the create or
 * rekeys naming it (several only if concurrent rekeys named one epoch). */
void grp_epoch_started(kith_group *g, uint64_t epoch, uint32_t cseq) {
  uint32_t *v = g_hash_table_lookup(g->epochs, &epoch);
  uint32_t n = v ? v[0] : 0;
  uint32_t *nv = g_new(uint32_t, n + 2);
  if (v)
    memcpy(nv, v, sizeof(uint32_t) * (n + 1));
  nv[0] = n + 1;
  nv[n + 1] = cseq;
  uint64_t *k = g_new(uint64_t, 1);
  *k = epoch;
  g_hash_table_replace(g->epochs, k, nv);
}

const grp_ctl *grp_epoch_start(const kith_group *g, uint64_t epoch,
                               const grp_ivs *past) {
  const uint32_t *v = g_hash_table_lookup(g->epochs, &epoch);
  for (uint32_t i = 0; v && i < v[0]; i++)
    if (!past || grp_ivs_has(past, v[1 + i]))
      return grp_ctl_at(g, v[1 + i]);
  return NULL;
}

/* ---- member numbers ---- */

static guint id_hash(gconstpointer p) {
  guint h;
  memcpy(&h, p, sizeof h);
  return h;
}

static gboolean id_equal(gconstpointer a, gconstpointer b) {
  return memcmp(a, b, 32) == 0;
}

uint32_t grp_member_number(kith_group *g, const uint8_t id[32]) {
  gpointer v = g_hash_table_lookup(g->mnum, id);
  if (v)
    return GPOINTER_TO_UINT(v) - 1;
  uint8_t *copy = g_memdup2(id, 32);
  g_ptr_array_add(g->mids, copy);
  g_hash_table_insert(g->mnum, copy, GUINT_TO_POINTER(g->mids->len));
  return g->mids->len - 1;
}

const uint8_t *grp_member_id(const kith_group *g, uint32_t num) {
  return num < g->mids->len ? g->mids->pdata[num] : NULL;
}

/* ---- summaries ---- */

static void sum_free(kith_group *g, grp_sum *s) {
  grp_front_unref(g, s->cf);
  g_free(s);
}

static void sum_evict(kith_group *g) {
  while (g->store && g->sum_lru.length > GROUP_SUM_CACHE) {
    GList *l = g_queue_peek_tail_link(&g->sum_lru);
    grp_sum *s = l->data;
    g_queue_unlink(&g->sum_lru, l);
    g_hash_table_remove(g->sums, s->id);
    sum_free(g, s);
  }
}

static grp_sum *sum_insert(kith_group *g, grp_sum *s) {
  s->link.data = s;
  g_queue_push_head_link(&g->sum_lru, &s->link);
  g_hash_table_insert(g->sums, s->id, s);
  sum_evict(g);
  return s;
}

/* A frontier given as the store keeps it: cseqs of accepted control
 * events. NULL if it names one this replica does not hold. */
static grp_front *front_from_store(kith_group *g, const uint32_t *cs,
                                   uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    if (!grp_ctl_at(g, cs[i]) || (i > 0 && cs[i] <= cs[i - 1]))
      return NULL;
  return grp_front_intern(g, cs, n);
}

static grp_sum *sum_load(kith_group *g, const uint8_t id[32]) {
  kith_store_sum ss;
  if (!g->store || kith_store_get_summary(g->store, g->gid, id, &ss) != KITH_OK)
    return NULL;
  grp_sum *s = NULL;
  grp_front *cf = ss.cseq != GRP_NO_CSEQ
                      ? (grp_ctl_at(g, ss.cseq)
                             ? grp_front_ref(grp_ctl_at(g, ss.cseq)->self)
                             : NULL)
                      : front_from_store(g, ss.cf, ss.n_cf);
  if (cf) {
    s = g_new0(grp_sum, 1);
    memcpy(s->id, id, 32);
    memcpy(s->author, ss.author, 32);
    s->depth = ss.depth;
    s->ts = ss.ts;
    s->kind = ss.kind;
    s->cf = cf;
    sum_insert(g, s);
  }
  kith_store_sum_clear(&ss);
  return s;
}

grp_sum *grp_sum_get(kith_group *g, const uint8_t id[32]) {
  g->stats.sum_lookups++;
  grp_sum *s = g_hash_table_lookup(g->sums, id);
  if (s) {
    g_queue_unlink(&g->sum_lru, &s->link);
    g_queue_push_head_link(&g->sum_lru, &s->link);
    return s;
  }
  s = g_hash_table_lookup(g->heads, id);
  return s ? s : sum_load(g, id);
}

int grp_known_cached(kith_group *g, const uint8_t id[32]) {
  return g_hash_table_contains(g->sums, id) ||
         g_hash_table_contains(g->heads, id) ||
         g_hash_table_contains(g->ctl_ids, id);
}

grp_sum *grp_sum_add(kith_group *g, const kith_event *ev, grp_front *cf) {
  grp_sum *s = g_new0(grp_sum, 1);
  memcpy(s->id, ev->id, 32);
  memcpy(s->author, ev->author, 32);
  s->depth = ev->depth;
  s->ts = ev->ts_ms;
  s->kind = ev->kind;
  s->cf = grp_front_ref(cf);
  return sum_insert(g, s);
}

/* ---- heads ---- */

void grp_heads_update(kith_group *g, const kith_event *ev, grp_front *cf) {
  for (size_t i = 0; i < ev->n_parents; i++) {
    grp_sum *h = g_hash_table_lookup(g->heads, ev->parents[i]);
    if (h) {
      g_hash_table_steal(g->heads, ev->parents[i]);
      sum_free(g, h);
    }
  }
  grp_sum *s = g_new0(grp_sum, 1);
  memcpy(s->id, ev->id, 32);
  memcpy(s->author, ev->author, 32);
  s->depth = ev->depth;
  s->ts = ev->ts_ms;
  s->kind = ev->kind;
  s->cf = grp_front_ref(cf);
  g_hash_table_insert(g->heads, s->id, s);
  g->heads_dirty = 1;
}

/* ---- life ---- */

void grp_dag_init(kith_group *g) {
  g->ctl = g_ptr_array_new();
  g->ctl_ids = g_hash_table_new(id_hash, id_equal);
  g->order = g_ptr_array_new();
  g->fronts = g_hash_table_new(front_hash, front_equal);
  g_queue_init(&g->st_cache);
  g->mnum = g_hash_table_new(id_hash, id_equal);
  g->mids = g_ptr_array_new_with_free_func(g_free);
  g->sums = g_hash_table_new(id_hash, id_equal);
  g_queue_init(&g->sum_lru);
  g->heads = g_hash_table_new(id_hash, id_equal);
}

void grp_dag_clear(kith_group *g) {
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, g->heads);
  while (g_hash_table_iter_next(&it, NULL, &v))
    sum_free(g, v);
  g_hash_table_destroy(g->heads);
  while (g->sum_lru.length > 0) {
    GList *l = g_queue_peek_tail_link(&g->sum_lru);
    g_queue_unlink(&g->sum_lru, l);
    sum_free(g, l->data);
  }
  g_hash_table_destroy(g->sums);
  grp_front_unref(g, g->ctl_heads);
  g->ctl_heads = NULL;
  for (guint i = g->ctl->len; i-- > 0;)
    grp_ctl_free(g, g->ctl->pdata[i]);
  g_ptr_array_free(g->ctl, TRUE);
  g_ptr_array_free(g->order, TRUE);
  g_hash_table_destroy(g->ctl_ids);
  /* every frontier is unreferenced by now; cached states went with them */
  g_hash_table_destroy(g->fronts);
  g_hash_table_destroy(g->mnum);
  g_ptr_array_free(g->mids, TRUE);
}
