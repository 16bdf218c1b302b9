/* kith: group bodies: epoch keys, sender chains, the outer body and the
 * inner plaintexts of each kind (see group.h for the formats).
 *
 * Keys. A replica keeps a key only for an epoch that exists in the group
 * (named by an accepted create or rekey), and only from an accepted
 * event: its own box of a rekey, or the key list an add sealed to it. A
 * newcomer needs its add's keys before the add itself can be accepted (to
 * open the history that leads up to it), so the key list of an add sealed
 * to this node is kept aside, provisionally, to open events with; it is
 * promoted (epochs that exist only) when the add is accepted, and dropped
 * if the add is rejected. */
#include "group_int.h"

#include <sodium.h>
#include <string.h>

#include "codec.h"
#include "invite.h"

#define PROV_MAX 8 /* adds sealed to us waiting at once */

/* ---- epoch keys ----
 *
 * The table lives in one locked allocation (key_mem) after a scratch area
 * where key lists are opened, so reading a key list maps nothing new; the
 * block is replaced only when the table doubles. key_index finds an
 * epoch's record (its secret if kept, else its meta key) without a scan. */

static const secret_rec *find_rec(const secret_rec *r, size_t n, uint64_t epoch,
                                  int full_only) {
  const secret_rec *meta = NULL;
  for (size_t i = n; i-- > 0;)
    if (r[i].epoch == epoch) {
      if (r[i].full)
        return &r[i];
      meta = meta ? meta : &r[i];
    }
  return full_only ? NULL : meta;
}

static const secret_rec *find_kept(const kith_group *g, uint64_t epoch) {
  gpointer v = g->key_index ? g_hash_table_lookup(g->key_index, &epoch) : NULL;
  return v ? &g->secrets[GPOINTER_TO_SIZE(v) - 1] : NULL;
}

/* In the kept keys, then in the provisional ones; a full secret first. */
static const secret_rec *find_key(const kith_group *g, uint64_t epoch,
                                  int full_only) {
  const secret_rec *r = find_kept(g, epoch);
  if (r && r->full)
    return r;
  for (guint i = 0; g->prov && i < g->prov->len; i++) {
    const prov_keys *p = g->prov->pdata[i];
    const secret_rec *q = find_rec(p->keys, p->n, epoch, 0);
    if (q && q->full)
      return q;
    if (q && !r)
      r = q;
  }
  return full_only ? NULL : r;
}

const uint8_t *grp_find_secret(const kith_group *g, uint64_t epoch) {
  const secret_rec *r = find_key(g, epoch, 1);
  return r ? r->key : NULL;
}

int grp_meta_key(const kith_group *g, uint64_t epoch,
                 uint8_t key[KITH_KEY_LEN]) {
  const secret_rec *r = find_key(g, epoch, 0);
  if (!r)
    return 0;
  if (r->full)
    kith_gcrypto_meta_key(r->key, key);
  else
    memcpy(key, r->key, KITH_KEY_LEN);
  return 1;
}

static int key_fits(uint64_t epoch, const uint8_t *key, int full) {
  uint8_t meta[KITH_KEY_LEN];
  if (full)
    kith_gcrypto_meta_key(key, meta);
  else
    memcpy(meta, key, KITH_KEY_LEN);
  int ok = kith_gcrypto_epoch_id(meta) == epoch;
  sodium_memzero(meta, sizeof meta);
  return ok;
}

/* Makes room for one more record: a new block of twice the records (the
 * scratch area is not copied: nothing lives there between calls). */
static int grow_secrets(kith_group *g) {
  if (g->key_mem && g->n_secrets < g->cap_secrets)
    return 1;
  if (g->cap_secrets >= GROUP_MAX_SECRETS)
    return 0;
  size_t cap = g->cap_secrets ? g->cap_secrets * 2 : 16;
  uint8_t *mem = sodium_malloc(GROUP_KEY_SCRATCH + sizeof(secret_rec) * cap);
  if (!mem)
    return 0;
  g->stats.key_allocs++;
  secret_rec *recs = (secret_rec *)(void *)(mem + GROUP_KEY_SCRATCH);
  if (g->n_secrets)
    memcpy(recs, g->secrets, sizeof(secret_rec) * g->n_secrets);
  if (g->key_mem)
    sodium_free(g->key_mem);
  g->key_mem = mem;
  g->secrets = recs;
  g->cap_secrets = cap;
  if (!g->key_index)
    g->key_index =
        g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
  return 1;
}

/* The scratch area key lists are opened in (GROUP_KEY_SCRATCH bytes), or
 * NULL if it cannot be had. */
static uint8_t *scratch(kith_group *g) {
  return g->key_mem || grow_secrets(g) ? g->key_mem : NULL;
}

static void index_key(kith_group *g, uint64_t epoch, size_t i) {
  uint64_t *k = g_new(uint64_t, 1);
  *k = epoch;
  g_hash_table_replace(g->key_index, k, GSIZE_TO_POINTER(i + 1));
}

/* A secret learned after the meta key is appended (not written over the
 * meta record) so that the store, written by index, sees it as new. */
int grp_add_key(kith_group *g, uint64_t epoch, const uint8_t *key, int full,
                int any) {
  if (epoch > GROUP_EPOCH_MAX || !key_fits(epoch, key, full))
    return 0;
  if (!any && !g_hash_table_contains(g->epochs, &epoch))
    return 0; /* no such epoch in this group: never kept */
  const secret_rec *have = find_kept(g, epoch);
  if (have && (have->full || !full))
    return 1;
  if (!grow_secrets(g))
    return 0;
  secret_rec *r = &g->secrets[g->n_secrets];
  r->epoch = epoch;
  r->full = full != 0;
  memcpy(r->key, key, KITH_KEY_LEN);
  index_key(g, epoch, g->n_secrets++);
  return 1;
}

/* Forgets the records from n on (keys of an epoch that was never made). */
void grp_keys_truncate(kith_group *g, size_t n) {
  while (g->n_secrets > n) {
    secret_rec *r = &g->secrets[--g->n_secrets];
    g_hash_table_remove(g->key_index, &r->epoch);
    const secret_rec *meta = find_rec(g->secrets, g->n_secrets, r->epoch, 0);
    if (meta)
      index_key(g, r->epoch, (size_t)(meta - g->secrets));
    sodium_memzero(r, sizeof *r);
  }
}

void kith_group_add_secret(kith_group *g, uint64_t epoch,
                           const uint8_t secret[32]) {
  (void)grp_add_key(g, epoch & ~KITH_EPOCH_META_ONLY, secret,
                    !(epoch & KITH_EPOCH_META_ONLY), 1);
  g->secrets_saved = g->n_secrets; /* it came from the store */
}

size_t kith_group_n_secrets(const kith_group *g) {
  return g->n_secrets;
}

void kith_group_secret_at(const kith_group *g, size_t i, uint64_t *epoch,
                          uint8_t secret[32]) {
  if (i >= g->n_secrets)
    return;
  *epoch =
      g->secrets[i].epoch | (g->secrets[i].full ? 0 : KITH_EPOCH_META_ONLY);
  memcpy(secret, g->secrets[i].key, KITH_KEY_LEN);
}

kith_err grp_save_keys(kith_group *g) {
  kith_err rc = KITH_OK;
  for (; g->store && g->secrets_saved < g->n_secrets; g->secrets_saved++) {
    const secret_rec *r = &g->secrets[g->secrets_saved];
    rc = kith_store_put_secret(g->store, g->gid,
                               r->epoch | (r->full ? 0 : KITH_EPOCH_META_ONLY),
                               r->key);
    if (rc != KITH_OK)
      break;
  }
  return rc;
}

/* ---- provisional keys ---- */

static void prov_free(prov_keys *p) {
  if (p->keys)
    sodium_free(p->keys);
  g_free(p);
}

static int prov_index(const kith_group *g, const uint8_t id[32]) {
  for (guint i = 0; i < g->prov->len; i++)
    if (memcmp(((prov_keys *)g->prov->pdata[i])->add_id, id, 32) == 0)
      return (int)i;
  return -1;
}

void grp_prov_drop(kith_group *g, const uint8_t add_id[32]) {
  int i = prov_index(g, add_id);
  if (i >= 0)
    prov_free(g_ptr_array_steal_index(g->prov, (guint)i));
}

void grp_prov_promote(kith_group *g, const uint8_t add_id[32]) {
  int i = prov_index(g, add_id);
  if (i < 0)
    return;
  prov_keys *p = g_ptr_array_steal_index(g->prov, (guint)i);
  for (size_t k = 0; k < p->n; k++)
    (void)grp_add_key(g, p->keys[k].epoch, p->keys[k].key, p->keys[k].full, 0);
  prov_free(p);
}

void grp_keys_clear(kith_group *g) {
  if (g->key_mem)
    sodium_free(g->key_mem);
  g->key_mem = NULL;
  g->secrets = NULL;
  if (g->key_index)
    g_hash_table_destroy(g->key_index);
  g->key_index = NULL;
  for (guint i = 0; g->prov && i < g->prov->len; i++)
    prov_free(g->prov->pdata[i]);
  if (g->prov)
    g_ptr_array_free(g->prov, TRUE);
  g->prov = NULL;
}

/* ---- sender chains (a bounded cache, kept in the store) ---- */

static void slot_free(gpointer p) {
  chain_slot *s = p;
  kith_chain_free(s->c);
  g_free(s);
}

static kith_err save_slot(kith_group *g, chain_slot *s) {
  if (!g->store || !s->dirty)
    return KITH_OK;
  size_t len;
  uint8_t *state = kith_chain_export(s->c, &len);
  uint8_t *blob = g_malloc(len + 8);
  for (int i = 0; i < 8; i++)
    blob[i] = (uint8_t)(s->next_n >> (8 * i));
  memcpy(blob + 8, state, len);
  kith_err rc = kith_store_put_chain(g->store, g->gid, s->k, blob, len + 8);
  sodium_memzero(state, len);
  sodium_memzero(blob, len + 8);
  g_free(state);
  g_free(blob);
  if (rc == KITH_OK)
    s->dirty = 0;
  return rc;
}

kith_err grp_save_chains(kith_group *g) {
  kith_err rc = KITH_OK;
  for (GList *l = g->chain_lru.head; l; l = l->next) {
    kith_err e = save_slot(g, l->data);
    if (rc == KITH_OK)
      rc = e;
  }
  return rc;
}

static chain_slot *slot_load(kith_group *g, const uint8_t k[40]) {
  uint8_t *blob = NULL;
  size_t len = 0;
  if (!g->store ||
      kith_store_get_chain(g->store, g->gid, k, &blob, &len) != KITH_OK)
    return NULL;
  chain_slot *s = NULL;
  kith_chain *c = len > 8 ? kith_chain_import(blob + 8, len - 8) : NULL;
  if (c) {
    s = g_new0(chain_slot, 1);
    s->c = c;
    for (int i = 7; i >= 0; i--)
      s->next_n = (s->next_n << 8) | blob[i];
  }
  sodium_memzero(blob, len);
  g_free(blob);
  return s;
}

static void slot_insert(kith_group *g, chain_slot *s, const uint8_t k[40]) {
  memcpy(s->k, k, 40);
  s->link.data = s;
  g_queue_push_head_link(&g->chain_lru, &s->link);
  g_hash_table_insert(g->chains, s->k, s);
  while (g->store && g->chain_lru.length > GROUP_CHAIN_CACHE) {
    GList *l = g_queue_peek_tail_link(&g->chain_lru);
    chain_slot *old = l->data;
    if (save_slot(g, old) != KITH_OK)
      break; /* keep it until it can be written */
    g_queue_unlink(&g->chain_lru, l);
    g_hash_table_remove(g->chains, old->k);
  }
}

/* The receiving chain of sender in epoch; NULL without the secret. */
chain_slot *grp_chain_get(kith_group *g, uint64_t epoch,
                          const uint8_t sender[32]) {
  uint8_t k[40];
  for (int i = 0; i < 8; i++)
    k[i] = (uint8_t)(epoch >> (8 * i));
  memcpy(k + 8, sender, 32);
  chain_slot *s = g_hash_table_lookup(g->chains, k);
  if (s) {
    g_queue_unlink(&g->chain_lru, &s->link);
    g_queue_push_head_link(&g->chain_lru, &s->link);
    return s;
  }
  s = slot_load(g, k);
  if (!s) {
    const uint8_t *secret = grp_find_secret(g, epoch);
    kith_chain *c = secret ? kith_chain_new(secret, sender) : NULL;
    if (!c)
      return NULL;
    s = g_new0(chain_slot, 1);
    s->c = c;
    s->dirty = 1;
  }
  slot_insert(g, s, k);
  return s;
}

static guint key40_hash(gconstpointer p) {
  guint h;
  memcpy(&h, (const uint8_t *)p + 8, sizeof h);
  return h ^ ((const uint8_t *)p)[0];
}

static gboolean key40_equal(gconstpointer a, gconstpointer b) {
  return memcmp(a, b, 40) == 0;
}

GHashTable *grp_chains_new(void) {
  return g_hash_table_new_full(key40_hash, key40_equal, NULL, slot_free);
}

void grp_chains_clear(kith_group *g) {
  /* the hash table owns the slots; the queue only links them */
  g_queue_init(&g->chain_lru);
  g_hash_table_destroy(g->chains);
  g->chains = NULL;
}

/* ---- bodies ---- */

/* Add, rekey and keys carry sealed boxes in a third element (extra). */
int grp_has_extra(uint32_t kind) {
  return kind == KITH_EV_ADD || kind == KITH_EV_REKEY || kind == KITH_EV_KEYS;
}

int grp_is_message_like(uint32_t kind) {
  return kind == KITH_EV_MESSAGE || kind == KITH_EV_REACT ||
         kind == KITH_EV_EDIT || kind == KITH_EV_DELETE;
}

void grp_body_clear(body *b) {
  g_free(b->sealed);
  g_free(b->extra);
  memset(b, 0, sizeof *b);
}

void grp_make_ad(uint32_t kind, const uint8_t author[32], const uint8_t *gid,
                 uint8_t ad[77]) {
  memcpy(ad, "kith body v1", 12);
  ad[12] = (uint8_t)kind;
  memcpy(ad + 13, author, 32);
  if (gid)
    memcpy(ad + 45, gid, 32);
  else
    memset(ad + 45, 0, 32);
}

int grp_body_is_short(uint32_t version, uint32_t kind) {
  return version >= KITH_EVENT_V2 && grp_is_message_like(kind);
}

#define NONCE_LABEL "kith nonce v2"
#define NONCE_LABEL_LEN 13
void grp_message_nonce(const kith_event *ev, uint64_t n,
                       uint8_t nonce[KITH_NONCE_LEN]) {
  uint8_t le[16];
  crypto_generichash_state st;
  for (int i = 0; i < 8; i++) {
    le[i] = (uint8_t)(n >> (8 * i));
    le[8 + i] = (uint8_t)(ev->ts_ms >> (8 * i));
  }
  crypto_generichash_init(&st, NULL, 0, KITH_NONCE_LEN);
  crypto_generichash_update(&st, (const uint8_t *)NONCE_LABEL, NONCE_LABEL_LEN);
  crypto_generichash_update(&st, le, sizeof le);
  crypto_generichash_update(&st, &ev->parents[0][0], 32 * ev->n_parents);
  crypto_generichash_final(&st, nonce, KITH_NONCE_LEN);
}

/* it: the body's elements; a short body (version 2, message-like) has no
 * epoch in front. */
static kith_err read_body(const kith_event *ev, const msgpack_object *it,
                          body *b) {
  const uint8_t *p, *x;
  size_t n, xn = 0;
  if (!b->epoch_implied &&
      kith_codec_uint(&it[0], GROUP_EPOCH_MAX, &b->epoch) != KITH_OK)
    return KITH_ERR_DECODE;
  const msgpack_object *rest = b->epoch_implied ? it : it + 1;
  if (grp_is_message_like(ev->kind)) {
    if (kith_codec_uint(&rest[0], GROUP_MSG_N_MAX, &b->n) != KITH_OK ||
        kith_codec_bin(&rest[1], KITH_EVENT_MAX_BODY, &p, &n) != KITH_OK)
      return KITH_ERR_DECODE;
  } else {
    if (kith_codec_bin(&rest[0], KITH_EVENT_MAX_BODY, &p, &n) != KITH_OK)
      return KITH_ERR_DECODE;
    int nil = rest[1].type == MSGPACK_OBJECT_NIL;
    int want = grp_has_extra(ev->kind);
    if (want ? nil : !nil)
      return KITH_ERR_DECODE;
    if (!nil &&
        kith_codec_bin(&rest[1], KITH_EVENT_MAX_BODY, &x, &xn) != KITH_OK)
      return KITH_ERR_DECODE;
    if (!nil)
      b->extra = g_memdup2(xn ? x : (const uint8_t *)"", xn), b->extra_len = xn;
  }
  b->sealed = g_memdup2(n ? p : (const uint8_t *)"", n);
  b->sealed_len = n;
  return KITH_OK;
}

kith_err grp_parse_body(const kith_event *ev, body *b) {
  memset(b, 0, sizeof *b);
  b->version = ev->version;
  b->epoch_implied = grp_body_is_short(ev->version, ev->kind);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  const msgpack_object *it;
  kith_err rc = kith_codec_unpack(ev->body, ev->body_len, &u);
  if (rc == KITH_OK)
    rc = kith_codec_array(&u.data, b->epoch_implied ? 2 : 3, &it);
  if (rc == KITH_OK)
    rc = read_body(ev, it, b);
  msgpack_unpacked_destroy(&u);
  if (rc != KITH_OK) {
    uint32_t version = b->version;
    int implied = b->epoch_implied;
    grp_body_clear(b);
    b->version = version, b->epoch_implied = implied;
    return KITH_ERR_DECODE;
  }
  return KITH_OK;
}

/* ---- inner plaintexts ---- */

static kith_err read_name(const msgpack_object *o, char **out) {
  const char *s;
  size_t n;
  if (kith_codec_str(o, KITH_NAME_MAX, &s, &n) != KITH_OK ||
      !grp_name_is_valid(s, n))
    return KITH_ERR_PROTOCOL;
  *out = g_strndup(s, n);
  return KITH_OK;
}

/* An array of 1..max elements whose first min are required. */
static int arr(const msgpack_object *o, uint32_t min, uint32_t max,
               const msgpack_object **it) {
  if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < min ||
      o->via.array.size > max)
    return 0;
  *it = o->via.array.ptr;
  return 1;
}

static kith_err read_create(const msgpack_object *o, grp_inner *in) {
  const msgpack_object *it;
  if (kith_codec_array(o, 4, &it) != KITH_OK ||
      kith_codec_uint(&it[1], KITH_HISTORY_JOINED, &in->history) != KITH_OK ||
      kith_codec_uint(&it[3], 1, &in->admins_only) != KITH_OK)
    return KITH_ERR_DECODE;
  kith_err rc = read_name(&it[0], &in->name);
  return rc == KITH_OK ? read_name(&it[2], &in->owner_name) : rc;
}

static kith_err read_invite(const kith_event *ev, const msgpack_object *o,
                            grp_inner *in) {
  const msgpack_object *it;
  if (kith_codec_array(o, 3, &it) != KITH_OK ||
      kith_codec_bin_fixed(&it[0], in->pk, 32) != KITH_OK ||
      kith_codec_uint(&it[1], KITH_INVITE_MAX_USES, &in->uses) != KITH_OK ||
      kith_codec_uint(&it[2], UINT64_MAX, &in->expires) != KITH_OK)
    return KITH_ERR_DECODE;
  return in->uses >= 1 && in->expires > ev->ts_ms &&
                 in->expires - ev->ts_ms <= KITH_INVITE_MAX_TTL_MS
             ? KITH_OK
             : KITH_ERR_PROTOCOL;
}

static kith_err read_add(const kith_group *g, const msgpack_object *o,
                         grp_inner *in) {
  const msgpack_object *it;
  uint8_t sig[KITH_SIG_LEN];
  if (kith_codec_array(o, 4, &it) != KITH_OK ||
      kith_codec_bin_fixed(&it[0], in->member, 32) != KITH_OK ||
      kith_codec_bin_fixed(&it[2], in->pk, 32) != KITH_OK ||
      kith_codec_bin_fixed(&it[3], sig, sizeof sig) != KITH_OK)
    return KITH_ERR_DECODE;
  if (kith_invite_verify_join(in->pk, g->gid, in->member, sig) != KITH_OK)
    return KITH_ERR_SIGNATURE;
  return read_name(&it[1], &in->name);
}

/* [text] (message: 1..65535 bytes; topic: 0..256 bytes, no control
 * characters), a message may add [text, reply_to bin32]. */
static kith_err read_text(const msgpack_object *o, size_t max, int topic,
                          grp_inner *in) {
  const msgpack_object *it;
  const char *s;
  if (!arr(o, 1, topic ? 1 : 2, &it) ||
      kith_codec_str(&it[0], max, &s, &in->text_len) != KITH_OK ||
      (!topic && in->text_len == 0))
    return KITH_ERR_DECODE;
  if (o->via.array.size == 2) {
    if (kith_codec_bin_fixed(&it[1], in->ref, 32) != KITH_OK)
      return KITH_ERR_DECODE;
    in->has_ref = 1;
  }
  if (topic && !grp_topic_is_valid(s, in->text_len))
    return KITH_ERR_PROTOCOL;
  in->text = g_strndup(s, in->text_len);
  return KITH_OK;
}

/* [id bin32] */
static kith_err read_id(const msgpack_object *o, uint8_t id[32], int *has) {
  const msgpack_object *it;
  if (kith_codec_array(o, 1, &it) != KITH_OK ||
      kith_codec_bin_fixed(&it[0], id, 32) != KITH_OK)
    return KITH_ERR_DECODE;
  *has = 1;
  return KITH_OK;
}

static kith_err read_member(const msgpack_object *o, grp_inner *in) {
  const msgpack_object *it;
  return kith_codec_array(o, 1, &it) == KITH_OK &&
                 kith_codec_bin_fixed(&it[0], in->member, 32) == KITH_OK
             ? KITH_OK
             : KITH_ERR_DECODE;
}

static kith_err read_rekey(const msgpack_object *o, grp_inner *in) {
  const msgpack_object *it;
  if (!arr(o, 1, 2, &it) ||
      kith_codec_uint(&it[0], GROUP_EPOCH_MAX, &in->new_epoch) != KITH_OK)
    return KITH_ERR_DECODE;
  if (o->via.array.size == 2) {
    if (kith_codec_bin_fixed(&it[1], in->ref, 32) != KITH_OK)
      return KITH_ERR_DECODE;
    in->has_ref = 1;
  }
  return KITH_OK;
}

static kith_err read_settings(const msgpack_object *o, grp_inner *in) {
  const msgpack_object *it;
  if (kith_codec_array(o, 2, &it) != KITH_OK ||
      kith_codec_uint(&it[0], GRP_SET_MODE, &in->key) != KITH_OK ||
      kith_codec_uint(&it[1], 1, &in->value) != KITH_OK)
    return KITH_ERR_DECODE;
  return in->key >= GRP_SET_INVITES ? KITH_OK : KITH_ERR_DECODE;
}

static kith_err read_mute(const msgpack_object *o, grp_inner *in) {
  const msgpack_object *it;
  return kith_codec_array(o, 2, &it) == KITH_OK &&
                 kith_codec_bin_fixed(&it[0], in->member, 32) == KITH_OK &&
                 kith_codec_uint(&it[1], KITH_TS_MAX, &in->until) == KITH_OK
             ? KITH_OK
             : KITH_ERR_DECODE;
}

/* react [target, emoji, on 0|1]; edit [target, text]; delete [target] */
static kith_err read_about(uint32_t kind, const msgpack_object *o,
                           grp_inner *in) {
  const msgpack_object *it;
  const char *s;
  uint32_t want = kind == KITH_EV_REACT ? 3 : kind == KITH_EV_EDIT ? 2 : 1;
  if (kith_codec_array(o, want, &it) != KITH_OK ||
      kith_codec_bin_fixed(&it[0], in->ref, 32) != KITH_OK)
    return KITH_ERR_DECODE;
  in->has_ref = 1;
  if (kind == KITH_EV_DELETE)
    return KITH_OK;
  size_t max = kind == KITH_EV_REACT ? KITH_EMOJI_MAX : KITH_TEXT_MAX - 1;
  if (kith_codec_str(&it[1], max, &s, &in->text_len) != KITH_OK ||
      in->text_len == 0)
    return KITH_ERR_DECODE;
  if (kind == KITH_EV_REACT &&
      (kith_codec_uint(&it[2], 1, &in->value) != KITH_OK ||
       !grp_emoji_is_valid(s, in->text_len)))
    return KITH_ERR_PROTOCOL;
  in->text = g_strndup(s, in->text_len);
  return KITH_OK;
}

/* need [[epoch uint, ...]]: 1..GROUP_NEED_MAX epochs, ascending. */
static kith_err read_need(const msgpack_object *o, grp_inner *in) {
  const msgpack_object *it, *e;
  if (kith_codec_array(o, 1, &it) != KITH_OK ||
      !arr(&it[0], 1, GROUP_NEED_MAX, &e))
    return KITH_ERR_DECODE;
  in->n_epochs = it[0].via.array.size;
  in->epochs = g_new(uint64_t, in->n_epochs);
  for (uint32_t i = 0; i < in->n_epochs; i++)
    if (kith_codec_uint(&e[i], GROUP_EPOCH_MAX, &in->epochs[i]) != KITH_OK ||
        (i && in->epochs[i] <= in->epochs[i - 1]))
      return KITH_ERR_DECODE;
  return KITH_OK;
}

static kith_err read_inner(const kith_group *g, const kith_event *ev,
                           const msgpack_object *o, grp_inner *in) {
  const msgpack_object *it;
  switch (ev->kind) {
  case KITH_EV_CREATE:
    return read_create(o, in);
  case KITH_EV_INVITE:
    return read_invite(ev, o, in);
  case KITH_EV_ADD:
    return read_add(g, o, in);
  case KITH_EV_REMOVE:
  case KITH_EV_BAN:
  case KITH_EV_UNBAN:
    return read_member(o, in);
  case KITH_EV_LEAVE:
    return o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 0
               ? KITH_OK
               : KITH_ERR_DECODE;
  case KITH_EV_ROLE:
    return kith_codec_array(o, 2, &it) == KITH_OK &&
                   kith_codec_bin_fixed(&it[0], in->member, 32) == KITH_OK &&
                   kith_codec_uint(&it[1], KITH_ROLE_OWNER, &in->role) ==
                       KITH_OK
               ? KITH_OK
               : KITH_ERR_DECODE;
  case KITH_EV_TOPIC:
    return read_text(o, KITH_TOPIC_MAX, 1, in);
  case KITH_EV_REKEY:
    return read_rekey(o, in);
  case KITH_EV_MESSAGE:
    return read_text(o, KITH_TEXT_MAX - 1, 0, in);
  case KITH_EV_REVOKE:
    return kith_codec_array(o, 1, &it) == KITH_OK &&
                   kith_codec_bin_fixed(&it[0], in->pk, 32) == KITH_OK
               ? KITH_OK
               : KITH_ERR_DECODE;
  case KITH_EV_SETTINGS:
    return read_settings(o, in);
  case KITH_EV_MUTE:
    return read_mute(o, in);
  case KITH_EV_REACT:
  case KITH_EV_EDIT:
  case KITH_EV_DELETE:
    return read_about(ev->kind, o, in);
  case KITH_EV_NEED:
    return read_need(o, in);
  case KITH_EV_KEYS:
    return read_id(o, in->ref, &in->has_ref);
  default:
    return KITH_ERR_PROTOCOL;
  }
}

kith_err grp_parse_inner(const kith_group *g, const kith_event *ev,
                         const uint8_t *pt, size_t len, grp_inner *in) {
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  kith_err rc = kith_codec_unpack(pt, len, &u);
  if (rc == KITH_OK)
    rc = read_inner(g, ev, &u.data, in);
  msgpack_unpacked_destroy(&u);
  if (rc == KITH_OK)
    return KITH_OK;
  grp_inner_clear(in);
  return rc == KITH_ERR_SIGNATURE || rc == KITH_ERR_PROTOCOL ? rc
                                                             : KITH_ERR_DECODE;
}

/* A version-2 message-like body's sealed part has no nonce in front. */
static kith_err open_sealed(const kith_event *ev, const body *b,
                            const uint8_t key[KITH_KEY_LEN], const uint8_t *ad,
                            uint8_t *pt) {
  if (!grp_body_is_short(b->version, ev->kind))
    return kith_gcrypto_open(key, ad, 77, b->sealed, b->sealed_len, pt);
  uint8_t nonce[KITH_NONCE_LEN];
  grp_message_nonce(ev, b->n, nonce);
  return kith_gcrypto_open_at(key, nonce, ad, 77, b->sealed, b->sealed_len, pt);
}

kith_err grp_open_with(const kith_group *g, const kith_event *ev, const body *b,
                       const uint8_t key[KITH_KEY_LEN], grp_inner *in) {
  size_t over = grp_body_is_short(b->version, ev->kind) ? KITH_AEAD_TAG
                                                        : KITH_SEALED_OVERHEAD;
  if (b->sealed_len < over)
    return KITH_ERR_CRYPTO;
  uint8_t ad[77];
  grp_make_ad(ev->kind, ev->author, ev->kind == KITH_EV_CREATE ? NULL : g->gid,
              ad);
  size_t n = b->sealed_len - over;
  uint8_t stack[512];
  uint8_t *pt = n <= sizeof stack ? stack : g_malloc(n + 1);
  kith_err rc = open_sealed(ev, b, key, ad, pt);
  if (rc == KITH_OK)
    rc = grp_parse_inner(g, ev, pt, n, in);
  if (rc == KITH_OK && !grp_is_message_like(ev->kind)) {
    in->pt = g_memdup2(n ? pt : (const uint8_t *)"", n);
    in->pt_len = n;
  }
  sodium_memzero(pt, n);
  if (pt != stack)
    g_free(pt);
  return rc;
}

kith_err grp_open_meta(const kith_group *g, const kith_event *ev, const body *b,
                       grp_inner *in) {
  uint8_t key[KITH_KEY_LEN];
  if (!grp_meta_key(g, b->epoch, key))
    return KITH_ERR_MISSING;
  kith_err rc = grp_open_with(g, ev, b, key, in);
  sodium_memzero(key, sizeof key);
  return rc;
}

void grp_inner_clear(grp_inner *in) {
  if (in->text)
    sodium_memzero(in->text, in->text_len);
  if (in->name)
    sodium_memzero(in->name, strlen(in->name));
  if (in->owner_name)
    sodium_memzero(in->owner_name, strlen(in->owner_name));
  if (in->pt)
    sodium_memzero(in->pt, in->pt_len);
  g_free(in->text);
  g_free(in->name);
  g_free(in->owner_name);
  g_free(in->pt);
  g_free(in->epochs);
  memset(in, 0, sizeof *in);
}

/* ---- key lists (carried by add, rekey and keys) ---- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void pack_key(kith_pack *p, uint64_t epoch, const uint8_t *key,
                     int full) {
  kith_pack_array(p, 3);
  kith_pack_uint(p, epoch);
  kith_pack_bin(p, key, KITH_KEY_LEN);
  kith_pack_uint(p, full ? 1 : 0);
}

kith_err grp_seal_keys(const kith_group *g, const uint8_t member[32],
                       int meta_only, size_t max, uint64_t first_epoch,
                       const uint8_t *first_key, uint8_t **out,
                       size_t *out_len) {
  size_t from = g->n_secrets > max ? g->n_secrets - max : 0;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, (uint32_t)(g->n_secrets - from + (first_key ? 1 : 0)));
  if (first_key)
    pack_key(&p, first_epoch, first_key, 1);
  for (size_t i = from; i < g->n_secrets; i++) {
    const secret_rec *r = &g->secrets[i];
    uint8_t meta[KITH_KEY_LEN];
    if (r->full && meta_only)
      kith_gcrypto_meta_key(r->key, meta);
    else
      memcpy(meta, r->key, KITH_KEY_LEN);
    pack_key(&p, r->epoch, meta, r->full && !meta_only);
    sodium_memzero(meta, sizeof meta);
  }
  kith_err rc = p.failed ? KITH_ERR_NOMEM : KITH_OK;
  if (rc == KITH_OK) {
    *out_len = p.sb.size + KITH_SEAL_OVERHEAD;
    *out = g_malloc(*out_len);
    rc = kith_seal(member, p.sb.data, p.sb.size, *out);
  }
  sodium_memzero(p.sb.data, p.sb.size);
  kith_pack_clear(&p);
  return rc;
}

/* Opens box (a key list sealed to this node) in the scratch area and
 * unpacks it into u, which borrows the scratch until close_list. Returns
 * the number of entries (at most GROUP_MAX_KEY_LIST), 0 if it does not
 * open or is not a key list; *pt_len gets what close_list must wipe. */
static uint32_t open_list(kith_group *g, const uint8_t *box, size_t len,
                          msgpack_unpacked *u, size_t *pt_len) {
  msgpack_unpacked_init(u);
  *pt_len = 0;
  uint8_t *pt = scratch(g);
  if (!pt || len <= KITH_SEAL_OVERHEAD ||
      len - KITH_SEAL_OVERHEAD > GROUP_KEY_SCRATCH)
    return 0;
  *pt_len = len - KITH_SEAL_OVERHEAD;
  if (kith_unseal(g->me, box, len, pt) != KITH_OK ||
      kith_codec_unpack(pt, *pt_len, u) != KITH_OK ||
      u->data.type != MSGPACK_OBJECT_ARRAY ||
      u->data.via.array.size > GROUP_MAX_KEY_LIST)
    return 0;
  return u->data.via.array.size;
}

static void close_list(kith_group *g, msgpack_unpacked *u, size_t pt_len) {
  msgpack_unpacked_destroy(u);
  if (pt_len)
    sodium_memzero(g->key_mem, pt_len);
}

/* Entry i of an open key list, if well formed and its key is the key of
 * its epoch (the caller wipes r). */
static int list_entry(const msgpack_unpacked *u, uint32_t i, secret_rec *r) {
  const msgpack_object *it;
  uint64_t epoch, full;
  if (kith_codec_array(&u->data.via.array.ptr[i], 3, &it) != KITH_OK ||
      kith_codec_uint(&it[0], GROUP_EPOCH_MAX, &epoch) != KITH_OK ||
      kith_codec_bin_fixed(&it[1], r->key, KITH_KEY_LEN) != KITH_OK ||
      kith_codec_uint(&it[2], 1, &full) != KITH_OK ||
      !key_fits(epoch, r->key, (int)full))
    return 0;
  r->epoch = epoch;
  r->full = (int)full;
  return 1;
}

/* The keys of an add sealed to this node, kept aside until the add is
 * accepted (reading stops at the first malformed or unfitting entry). The
 * box is opened in the scratch area; only a box that opens costs a new
 * allocation. */
void grp_prov_take(kith_group *g, const kith_event *ev, const body *b) {
  if (ev->kind != KITH_EV_ADD || prov_index(g, ev->id) >= 0)
    return;
  msgpack_unpacked u;
  size_t pt_len;
  uint32_t n = open_list(g, b->extra, b->extra_len, &u, &pt_len);
  prov_keys *p = NULL;
  if (n) {
    p = g_new0(prov_keys, 1);
    p->keys = sodium_malloc(sizeof(secret_rec) * n);
    g->stats.key_allocs++;
  }
  while (p && p->keys && p->n < n &&
         list_entry(&u, (uint32_t)p->n, &p->keys[p->n]))
    p->n++;
  close_list(g, &u, pt_len);
  if (!p || p->n == 0) {
    if (p)
      prov_free(p);
    return;
  }
  memcpy(p->add_id, ev->id, 32);
  if (g->prov->len >= PROV_MAX)
    prov_free(g_ptr_array_steal_index(g->prov, 0));
  g_ptr_array_add(g->prov, p);
}

/* The extra of a rekey or keys event: a msgpack array of at most max
 * bins. Returns their number (-1 if malformed); *box gets a copy of box
 * want (if asked). */
static long boxes(const body *b, uint32_t max, size_t want, uint8_t **box,
                  size_t *len) {
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  long count = -1;
  if (kith_codec_unpack(b->extra, b->extra_len, &u) == KITH_OK &&
      u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size <= max) {
    count = (long)u.data.via.array.size;
    for (uint32_t i = 0; i < u.data.via.array.size && count >= 0; i++) {
      const uint8_t *p;
      size_t n;
      if (kith_codec_bin(&u.data.via.array.ptr[i], KITH_EVENT_MAX_BODY, &p,
                         &n) != KITH_OK)
        count = -1;
      else if (i == want && box)
        *box = g_memdup2(n ? p : (const uint8_t *)"", n), *len = n;
    }
  }
  msgpack_unpacked_destroy(&u);
  if (count < 0 && box) {
    g_free(*box);
    *box = NULL;
  }
  return count;
}

long grp_rekey_n_boxes(const body *b) {
  return boxes(b, KITH_GROUP_MAX_MEMBERS, SIZE_MAX, NULL, NULL);
}

kith_err grp_seal_secret(const uint8_t member[32], const uint8_t secret[32],
                         uint8_t **out, size_t *out_len) {
  *out_len = KITH_KEY_LEN + KITH_SEAL_OVERHEAD;
  *out = g_malloc(*out_len);
  return kith_seal(member, secret, KITH_KEY_LEN, *out);
}

/* A version-2 box: exactly the new epoch's secret, sealed. */
static int take_bare_secret(kith_group *g, const body *b, size_t i,
                            uint64_t new_epoch) {
  uint8_t *box = NULL, key[KITH_KEY_LEN];
  size_t len = 0;
  int took = boxes(b, KITH_GROUP_MAX_MEMBERS, i, &box, &len) >= 0 && box &&
             len == KITH_KEY_LEN + KITH_SEAL_OVERHEAD &&
             kith_unseal(g->me, box, len, key) == KITH_OK &&
             grp_add_key(g, new_epoch, key, 1, 0);
  sodium_memzero(key, sizeof key);
  g_free(box);
  return took;
}

int grp_take_rekey_keys(kith_group *g, const body *b, size_t i,
                        uint64_t new_epoch) {
  if (b->version >= KITH_EVENT_V2)
    return take_bare_secret(g, b, i, new_epoch);
  uint8_t *box = NULL;
  size_t len = 0, pt_len = 0;
  msgpack_unpacked u;
  uint32_t n = 0;
  if (boxes(b, KITH_GROUP_MAX_MEMBERS, i, &box, &len) >= 0 && box)
    n = open_list(g, box, len, &u, &pt_len);
  else
    msgpack_unpacked_init(&u);
  /* only the first entry, the new epoch's secret: older keys come by
   * asking for them (need) */
  secret_rec r;
  int took = n > 0 && list_entry(&u, 0, &r) && r.epoch == new_epoch && r.full &&
             grp_add_key(g, r.epoch, r.key, 1, 0);
  sodium_memzero(&r, sizeof r);
  close_list(g, &u, pt_len);
  g_free(box);
  return took;
}

void grp_take_given_keys(kith_group *g, const body *b, const uint64_t *epochs,
                         uint32_t n) {
  size_t pt_len = 0;
  msgpack_unpacked u;
  uint32_t entries = open_list(g, b->extra, b->extra_len, &u, &pt_len);
  secret_rec r;
  for (uint32_t k = 0; k < entries && k < n && list_entry(&u, k, &r); k++)
    if (bsearch(&r.epoch, epochs, n, sizeof *epochs, cmp_u64))
      (void)grp_add_key(g, r.epoch, r.key, r.full, 0);
  sodium_memzero(&r, sizeof r);
  close_list(g, &u, pt_len);
}

kith_err grp_seal_given(const kith_group *g, const uint8_t member[32],
                        const uint64_t *epochs, const uint8_t *full, size_t n,
                        uint8_t **out, size_t *out_len) {
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, (uint32_t)n);
  kith_err rc = KITH_OK;
  for (size_t i = 0; i < n && rc == KITH_OK; i++) {
    uint8_t key[KITH_KEY_LEN];
    const uint8_t *secret = grp_find_secret(g, epochs[i]);
    if (full[i] && secret)
      memcpy(key, secret, KITH_KEY_LEN);
    else if (full[i] || !grp_meta_key(g, epochs[i], key))
      rc = KITH_ERR_STATE;
    if (rc == KITH_OK)
      pack_key(&p, epochs[i], key, full[i]);
    sodium_memzero(key, sizeof key);
  }
  if (rc == KITH_OK && p.failed)
    rc = KITH_ERR_NOMEM;
  if (rc == KITH_OK) {
    *out_len = p.sb.size + KITH_SEAL_OVERHEAD;
    *out = g_malloc(*out_len);
    rc = kith_seal(member, p.sb.data, p.sb.size, *out);
  }
  sodium_memzero(p.sb.data, p.sb.size);
  kith_pack_clear(&p);
  return rc;
}
