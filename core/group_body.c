/* kith: group bodies: epoch secrets, sender chains, the outer body and
 * the inner plaintexts of each kind (see group.h for the formats). */
#include "group_int.h"

#include <sodium.h>
#include <string.h>

#include "codec.h"
#include "invite.h"

/* ---- epoch secrets and chains ---- */

const uint8_t *grp_find_secret(const kith_group *g, uint64_t epoch) {
  for (size_t i = 0; i < g->n_secrets; i++)
    if (g->secrets[i].epoch == epoch)
      return g->secrets[i].key;
  return NULL;
}

void kith_group_add_secret(kith_group *g, uint64_t epoch,
                           const uint8_t secret[32]) {
  if (grp_find_secret(g, epoch) || g->n_secrets >= GROUP_MAX_SECRETS)
    return;
  g->secrets[g->n_secrets].epoch = epoch;
  memcpy(g->secrets[g->n_secrets].key, secret, KITH_KEY_LEN);
  g->n_secrets++;
}

size_t kith_group_n_secrets(const kith_group *g) {
  return g->n_secrets;
}

void kith_group_secret_at(const kith_group *g, size_t i, uint64_t *epoch,
                          uint8_t secret[32]) {
  if (i >= g->n_secrets)
    return;
  *epoch = g->secrets[i].epoch;
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
    if (ev->kind == KITH_EV_ADD ? nil : !nil)
      return KITH_ERR_DECODE;
    if (!nil && kith_codec_bin(&it[2], KITH_EVENT_MAX_BODY, &x, &xn) != KITH_OK)
      return KITH_ERR_DECODE;
    if (!nil)
      b->extra = g_memdup2(x, xn), b->extra_len = xn;
  }
  if (ev->kind == KITH_EV_CREATE && b->epoch != 0)
    return KITH_ERR_PROTOCOL;
  b->sealed = g_memdup2(n ? p : (const uint8_t *)"", n);
  b->sealed_len = n;
  return KITH_OK;
}

static int kind_is_supported(uint32_t kind) {
  return kind == KITH_EV_CREATE || kind == KITH_EV_INVITE ||
         kind == KITH_EV_ADD || kind == KITH_EV_MESSAGE;
}

kith_err grp_parse_body(const kith_event *ev, body *b) {
  memset(b, 0, sizeof *b);
  if (!kind_is_supported(ev->kind))
    return KITH_ERR_PROTOCOL;
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

static kith_err read_inner(const kith_group *g, const kith_event *ev,
                           const msgpack_object *o, grp_inner *in) {
  const msgpack_object *it;
  const char *s;
  uint8_t sig[KITH_SIG_LEN];
  switch (ev->kind) {
  case KITH_EV_CREATE:
    if (kith_codec_array(o, 2, &it) != KITH_OK ||
        kith_codec_uint(&it[1], KITH_HISTORY_JOINED, &in->history) != KITH_OK)
      return KITH_ERR_DECODE;
    return read_name(&it[0], &in->name);
  case KITH_EV_INVITE:
    if (kith_codec_array(o, 3, &it) != KITH_OK ||
        kith_codec_bin_fixed(&it[0], in->pk, 32) != KITH_OK ||
        kith_codec_uint(&it[1], KITH_INVITE_MAX_USES, &in->uses) != KITH_OK ||
        kith_codec_uint(&it[2], UINT64_MAX, &in->expires) != KITH_OK)
      return KITH_ERR_DECODE;
    return in->uses >= 1 && in->expires > ev->ts_ms ? KITH_OK
                                                    : KITH_ERR_PROTOCOL;
  case KITH_EV_ADD:
    if (kith_codec_array(o, 4, &it) != KITH_OK ||
        kith_codec_bin_fixed(&it[0], in->member, 32) != KITH_OK ||
        kith_codec_bin_fixed(&it[2], in->pk, 32) != KITH_OK ||
        kith_codec_bin_fixed(&it[3], sig, sizeof sig) != KITH_OK)
      return KITH_ERR_DECODE;
    if (kith_invite_verify_join(in->pk, g->gid, in->member, sig) != KITH_OK)
      return KITH_ERR_SIGNATURE;
    return read_name(&it[1], &in->name);
  case KITH_EV_MESSAGE:
    if (kith_codec_array(o, 1, &it) != KITH_OK ||
        kith_codec_str(&it[0], KITH_TEXT_MAX - 1, &s, &in->text_len) !=
            KITH_OK ||
        in->text_len == 0)
      return KITH_ERR_DECODE;
    in->text = g_strndup(s, in->text_len);
    return KITH_OK;
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
  return rc == KITH_ERR_SIGNATURE || rc == KITH_ERR_PROTOCOL ? rc
                                                             : KITH_ERR_DECODE;
}

/* Opens b with key and parses the inner plaintext of ev. */
static kith_err open_with(const kith_group *g, const kith_event *ev,
                          const body *b, const uint8_t key[KITH_KEY_LEN],
                          grp_inner *in) {
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

/* Decrypts ev without spending its message key (see consume below). */
kith_err grp_open_event(kith_group *g, const kith_event *ev, const body *b,
                        grp_inner *in) {
  uint8_t key[KITH_KEY_LEN];
  kith_err rc;
  if (ev->kind == KITH_EV_MESSAGE) {
    chain_slot *s = grp_chain_get(g, b->epoch, ev->author);
    rc = s ? kith_chain_peek(s->c, b->n, key) : KITH_ERR_MISSING;
  } else {
    const uint8_t *secret = grp_find_secret(g, b->epoch);
    rc = secret ? KITH_OK : KITH_ERR_MISSING;
    if (secret)
      kith_gcrypto_meta_key(secret, key);
  }
  if (rc == KITH_OK)
    rc = open_with(g, ev, b, key, in);
  sodium_memzero(key, sizeof key);
  return rc;
}

/* ---- secrets carried by an add ---- */

/* Parses [[epoch, secret], ...] into recs (at most GROUP_MAX_SECRETS). */
static size_t read_secret_list(const uint8_t *pt, size_t len,
                               secret_rec *recs) {
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t n = 0;
  if (kith_codec_unpack(pt, len, &u) == KITH_OK &&
      u.data.type == MSGPACK_OBJECT_ARRAY &&
      u.data.via.array.size <= GROUP_MAX_SECRETS) {
    for (uint32_t i = 0; i < u.data.via.array.size; i++) {
      const msgpack_object *it;
      if (kith_codec_array(&u.data.via.array.ptr[i], 2, &it) != KITH_OK ||
          kith_codec_uint(&it[0], GROUP_EPOCH_MAX, &recs[n].epoch) != KITH_OK ||
          kith_codec_bin_fixed(&it[1], recs[n].key, KITH_KEY_LEN) != KITH_OK)
        break;
      n++;
    }
  }
  msgpack_unpacked_destroy(&u);
  return n;
}

/* The offered secrets are only trusted if the one for the add's epoch
 * opens the add's own body and that body admits us: otherwise any member
 * could plant wrong keys in a newcomer. */
static int secrets_fit(kith_group *g, const kith_event *ev, const body *b,
                       const secret_rec *recs, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (recs[i].epoch != b->epoch)
      continue;
    uint8_t key[KITH_KEY_LEN];
    grp_inner in = {0};
    kith_gcrypto_meta_key(recs[i].key, key);
    kith_err rc = open_with(g, ev, b, key, &in);
    sodium_memzero(key, sizeof key);
    int ok = rc == KITH_OK && memcmp(in.member, g->me->pk, 32) == 0;
    grp_inner_clear(&in);
    return ok;
  }
  return 0;
}

int grp_take_secrets(kith_group *g, const kith_event *ev, const body *b) {
  if (ev->kind != KITH_EV_ADD || b->extra_len <= KITH_SEAL_OVERHEAD ||
      grp_find_secret(g, b->epoch))
    return 0;
  size_t n = b->extra_len - KITH_SEAL_OVERHEAD;
  uint8_t *pt = sodium_malloc(n);
  secret_rec *recs = sodium_malloc(sizeof(secret_rec) * GROUP_MAX_SECRETS);
  int took = 0;
  if (pt && recs && kith_unseal(g->me, b->extra, b->extra_len, pt) == KITH_OK) {
    size_t k = read_secret_list(pt, n, recs);
    if (secrets_fit(g, ev, b, recs, k)) {
      for (size_t i = 0; i < k; i++)
        kith_group_add_secret(g, recs[i].epoch, recs[i].key);
      took = 1;
    }
  }
  sodium_free(pt);
  sodium_free(recs);
  return took;
}
