/* kith: group bodies: epoch secrets, sender chains, the outer body and
 * the inner plaintexts of each kind (see group.h for the formats). */
#include "group_int.h"

#include <sodium.h>
#include <string.h>

#include "codec.h"
#include "invite.h"

/* ---- epoch keys and chains ---- */

const uint8_t *grp_find_secret(const kith_group *g, uint64_t epoch) {
  for (size_t i = 0; i < g->n_secrets; i++)
    if (g->secrets[i].epoch == epoch && g->secrets[i].full)
      return g->secrets[i].key;
  return NULL;
}

int grp_meta_key(const kith_group *g, uint64_t epoch,
                 uint8_t key[KITH_KEY_LEN]) {
  const uint8_t *secret = grp_find_secret(g, epoch);
  if (secret) {
    kith_gcrypto_meta_key(secret, key);
    return 1;
  }
  for (size_t i = 0; i < g->n_secrets; i++)
    if (g->secrets[i].epoch == epoch) {
      memcpy(key, g->secrets[i].key, KITH_KEY_LEN);
      return 1;
    }
  return 0;
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

/* A secret learned after the meta key is appended (not written over the
 * meta record) so that callers persisting by index see it as new. */
int grp_add_key(kith_group *g, uint64_t epoch, const uint8_t *key, int full) {
  uint8_t meta[KITH_KEY_LEN];
  if (epoch > GROUP_EPOCH_MAX || !key_fits(epoch, key, full))
    return 0;
  if (grp_find_secret(g, epoch) || (!full && grp_meta_key(g, epoch, meta))) {
    sodium_memzero(meta, sizeof meta);
    return 1;
  }
  if (g->n_secrets >= GROUP_MAX_SECRETS)
    return 0;
  secret_rec *r = &g->secrets[g->n_secrets++];
  r->epoch = epoch;
  r->full = full != 0;
  memcpy(r->key, key, KITH_KEY_LEN);
  return 1;
}

void kith_group_add_secret(kith_group *g, uint64_t epoch,
                           const uint8_t secret[32]) {
  (void)grp_add_key(g, epoch & ~KITH_EPOCH_META_ONLY, secret,
                    !(epoch & KITH_EPOCH_META_ONLY));
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

/* The receiving chain of sender in epoch; NULL without the secret. */
chain_slot *grp_chain_get(kith_group *g, uint64_t epoch,
                          const uint8_t sender[32]) {
  uint8_t key[40];
  memcpy(key, &epoch, 8);
  memcpy(key + 8, sender, 32);
  chain_slot *s = g_hash_table_lookup(g->chains, key);
  if (s)
    return s;
  const uint8_t *secret = grp_find_secret(g, epoch);
  if (!secret)
    return NULL;
  s = g_new0(chain_slot, 1);
  s->c = kith_chain_new(secret, sender);
  if (!s->c) {
    g_free(s);
    return NULL;
  }
  g_hash_table_insert(g->chains, g_memdup2(key, 40), s);
  return s;
}

/* ---- bodies ---- */

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

static kith_err read_body(const kith_event *ev, const msgpack_object *it,
                          body *b) {
  const uint8_t *p, *x;
  size_t n, xn = 0;
  if (kith_codec_uint(&it[0], GROUP_EPOCH_MAX, &b->epoch) != KITH_OK)
    return KITH_ERR_DECODE;
  if (ev->kind == KITH_EV_MESSAGE) {
    if (kith_codec_uint(&it[1], GROUP_MSG_N_MAX, &b->n) != KITH_OK ||
        kith_codec_bin(&it[2], KITH_EVENT_MAX_BODY, &p, &n) != KITH_OK)
      return KITH_ERR_DECODE;
  } else {
    if (kith_codec_bin(&it[1], KITH_EVENT_MAX_BODY, &p, &n) != KITH_OK)
      return KITH_ERR_DECODE;
    int nil = it[2].type == MSGPACK_OBJECT_NIL;
    int want = ev->kind == KITH_EV_ADD || ev->kind == KITH_EV_REKEY;
    if (want ? nil : !nil)
      return KITH_ERR_DECODE;
    if (!nil && kith_codec_bin(&it[2], KITH_EVENT_MAX_BODY, &x, &xn) != KITH_OK)
      return KITH_ERR_DECODE;
    if (!nil)
      b->extra = g_memdup2(x, xn), b->extra_len = xn;
  }
  b->sealed = g_memdup2(n ? p : (const uint8_t *)"", n);
  b->sealed_len = n;
  return KITH_OK;
}

kith_err grp_parse_body(const kith_event *ev, body *b) {
  memset(b, 0, sizeof *b);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  const msgpack_object *it;
  kith_err rc = kith_codec_unpack(ev->body, ev->body_len, &u);
  if (rc == KITH_OK)
    rc = kith_codec_array(&u.data, 3, &it);
  if (rc == KITH_OK)
    rc = read_body(ev, it, b);
  msgpack_unpacked_destroy(&u);
  if (rc != KITH_OK) {
    grp_body_clear(b);
    return rc == KITH_ERR_PROTOCOL ? rc : KITH_ERR_DECODE;
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
  return in->uses >= 1 && in->expires > ev->ts_ms ? KITH_OK : KITH_ERR_PROTOCOL;
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

static kith_err read_text(const msgpack_object *o, size_t max, int empty_ok,
                          grp_inner *in) {
  const msgpack_object *it;
  const char *s;
  if (kith_codec_array(o, 1, &it) != KITH_OK ||
      kith_codec_str(&it[0], max, &s, &in->text_len) != KITH_OK ||
      (!empty_ok && in->text_len == 0))
    return KITH_ERR_DECODE;
  if (empty_ok && !grp_topic_is_valid(s, in->text_len))
    return KITH_ERR_PROTOCOL;
  in->text = g_strndup(s, in->text_len);
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
    return kith_codec_array(o, 1, &it) == KITH_OK &&
                   kith_codec_bin_fixed(&it[0], in->member, 32) == KITH_OK
               ? KITH_OK
               : KITH_ERR_DECODE;
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
    return kith_codec_array(o, 1, &it) == KITH_OK &&
                   kith_codec_uint(&it[0], GROUP_EPOCH_MAX, &in->new_epoch) ==
                       KITH_OK
               ? KITH_OK
               : KITH_ERR_DECODE;
  case KITH_EV_MESSAGE:
    return read_text(o, KITH_TEXT_MAX - 1, 0, in);
  default:
    return KITH_ERR_PROTOCOL;
  }
}

static kith_err parse_inner(const kith_group *g, const kith_event *ev,
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

/* Opens b with key and parses the inner plaintext of ev. */
kith_err grp_open_with(const kith_group *g, const kith_event *ev, const body *b,
                       const uint8_t key[KITH_KEY_LEN], grp_inner *in) {
  if (b->sealed_len < KITH_SEALED_OVERHEAD)
    return KITH_ERR_CRYPTO;
  uint8_t ad[77];
  grp_make_ad(ev->kind, ev->author, ev->kind == KITH_EV_CREATE ? NULL : g->gid,
              ad);
  size_t n = b->sealed_len - KITH_SEALED_OVERHEAD;
  uint8_t *pt = g_malloc(n + 1);
  kith_err rc =
      kith_gcrypto_open(key, ad, sizeof ad, b->sealed, b->sealed_len, pt);
  if (rc == KITH_OK)
    rc = parse_inner(g, ev, pt, n, in);
  sodium_memzero(pt, n);
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

/* ---- key lists (carried by add and rekey) ---- */

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

/* Unseals box and adds every key of its list that fits its epoch id. If
 * want_first is set, the first key must be that epoch's secret. Returns
 * the number of keys taken. */
static size_t take_key_list(kith_group *g, const uint8_t *box, size_t len,
                            int want_first, uint64_t first) {
  if (len <= KITH_SEAL_OVERHEAD)
    return 0;
  size_t n = len - KITH_SEAL_OVERHEAD, took = 0;
  uint8_t *pt = sodium_malloc(n);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  if (pt && kith_unseal(g->me, box, len, pt) == KITH_OK &&
      kith_codec_unpack(pt, n, &u) == KITH_OK &&
      u.data.type == MSGPACK_OBJECT_ARRAY &&
      u.data.via.array.size <= GROUP_MAX_SECRETS + 1) {
    for (uint32_t i = 0; i < u.data.via.array.size; i++) {
      const msgpack_object *it;
      uint64_t epoch, full;
      uint8_t key[KITH_KEY_LEN];
      if (kith_codec_array(&u.data.via.array.ptr[i], 3, &it) != KITH_OK ||
          kith_codec_uint(&it[0], GROUP_EPOCH_MAX, &epoch) != KITH_OK ||
          kith_codec_bin_fixed(&it[1], key, KITH_KEY_LEN) != KITH_OK ||
          kith_codec_uint(&it[2], 1, &full) != KITH_OK ||
          (i == 0 && want_first && (epoch != first || !full)))
        break;
      took += (size_t)grp_add_key(g, epoch, key, (int)full);
      sodium_memzero(key, sizeof key);
    }
  }
  msgpack_unpacked_destroy(&u);
  if (pt)
    sodium_free(pt);
  return took;
}

int grp_take_add_keys(kith_group *g, const kith_event *ev, const body *b) {
  if (ev->kind != KITH_EV_ADD)
    return 0;
  return take_key_list(g, b->extra, b->extra_len, 0, 0) > 0;
}

/* The extra of a rekey: a msgpack array of bins. Returns their number (-1
 * if malformed); *box gets a copy of box want (if asked). */
static long rekey_boxes(const body *b, size_t want, uint8_t **box,
                        size_t *len) {
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  long count = -1;
  if (kith_codec_unpack(b->extra, b->extra_len, &u) == KITH_OK &&
      u.data.type == MSGPACK_OBJECT_ARRAY &&
      u.data.via.array.size <= KITH_GROUP_MAX_MEMBERS) {
    count = (long)u.data.via.array.size;
    for (uint32_t i = 0; i < u.data.via.array.size && count >= 0; i++) {
      const uint8_t *p;
      size_t n;
      if (kith_codec_bin(&u.data.via.array.ptr[i], KITH_EVENT_MAX_BODY, &p,
                         &n) != KITH_OK)
        count = -1;
      else if (i == want && box)
        *box = g_memdup2(p, n), *len = n;
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
  return rekey_boxes(b, SIZE_MAX, NULL, NULL);
}

int grp_take_rekey_keys(kith_group *g, const body *b, size_t i,
                        uint64_t new_epoch) {
  uint8_t *box = NULL;
  size_t len = 0;
  int took = rekey_boxes(b, i, &box, &len) >= 0 && box &&
             take_key_list(g, box, len, 1, new_epoch) > 0;
  g_free(box);
  return took;
}
