/* kith: invite codes. */
#include "invite.h"

#include <glib.h>
#include <sodium.h>
#include <string.h>

#include "codec.h"

#define PREFIX "kith:"
#define PREFIX_LEN 5
#define CHECKSUM_LEN 4
#define INVITE_VERSION 1
#define JOIN_CONTEXT "kith-join-v1"
#define JOIN_CONTEXT_LEN 12
/* Decoded payload bound: base64 of KITH_INVITE_CODE_MAX characters. */
#define RAW_MAX (KITH_INVITE_CODE_MAX * 3 / 4 + 1)

static int host_is_valid(const char *h, size_t n) {
  if (n < 1 || n > KITH_INVITE_HOST_MAX)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char c = h[i];
    if (!g_ascii_isalnum(c) && c != '.' && c != ':' && c != '-')
      return 0;
  }
  return 1;
}

static void checksum(const uint8_t *msg, size_t len,
                     uint8_t out[CHECKSUM_LEN]) {
  uint8_t h[crypto_generichash_BYTES];
  crypto_generichash(h, sizeof h, msg, len, NULL, 0);
  memcpy(out, h, CHECKSUM_LEN);
}

static void pack_members(kith_pack *p, const kith_invite_member *m, size_t n) {
  kith_pack_array(p, (uint32_t)n);
  for (size_t i = 0; i < n; i++) {
    kith_pack_array(p, 3);
    kith_pack_bin(p, m[i].id, KITH_ID_LEN);
    kith_pack_cstr(p, m[i].addr.host);
    kith_pack_uint(p, m[i].addr.port);
  }
}

static void pack_addrs(kith_pack *p, const kith_addr *a, size_t n) {
  kith_pack_array(p, (uint32_t)n);
  for (size_t i = 0; i < n; i++) {
    kith_pack_array(p, 2);
    kith_pack_cstr(p, a[i].host);
    kith_pack_uint(p, a[i].port);
  }
}

static kith_err pack_invite(const kith_invite *inv, uint8_t **out,
                            size_t *len) {
  kith_pack p;
  /* Trailing empty lists are left out. */
  uint32_t nf = inv->n_public ? 8 : inv->n_relays ? 7 : inv->n_others ? 6 : 5;
  kith_pack_init(&p);
  kith_pack_array(&p, nf);
  kith_pack_uint(&p, INVITE_VERSION);
  kith_pack_bin(&p, inv->group_id, sizeof inv->group_id);
  kith_pack_bin(&p, inv->secret, sizeof inv->secret);
  kith_pack_bin(&p, inv->inviter, sizeof inv->inviter);
  pack_addrs(&p, inv->addrs, inv->n_addrs);
  if (nf >= 6)
    pack_members(&p, inv->others, inv->n_others);
  if (nf >= 7)
    pack_members(&p, inv->relays, inv->n_relays);
  if (nf >= 8)
    pack_addrs(&p, inv->public_addrs, inv->n_public);
  return kith_pack_take(&p, out, len);
}

static int addr_is_valid(const kith_addr *a) {
  size_t n = strnlen(a->host, sizeof a->host);
  return n < sizeof a->host && host_is_valid(a->host, n) && a->port != 0;
}

static kith_err check_invite(const kith_invite *inv) {
  if (inv->n_addrs < 1 || inv->n_addrs > KITH_INVITE_MAX_ADDRS ||
      inv->n_others > KITH_INVITE_MAX_OTHERS ||
      inv->n_relays > KITH_INVITE_MAX_RELAYS ||
      inv->n_public > KITH_INVITE_MAX_PUBLIC)
    return KITH_ERR_ARG;
  for (size_t i = 0; i < inv->n_public; i++)
    if (!addr_is_valid(&inv->public_addrs[i]))
      return KITH_ERR_ARG;
  for (size_t i = 0; i < inv->n_relays; i++)
    if (!addr_is_valid(&inv->relays[i].addr))
      return KITH_ERR_ARG;
  for (size_t i = 0; i < inv->n_addrs; i++)
    if (!addr_is_valid(&inv->addrs[i]))
      return KITH_ERR_ARG;
  for (size_t i = 0; i < inv->n_others; i++)
    if (!addr_is_valid(&inv->others[i].addr))
      return KITH_ERR_ARG;
  return KITH_OK;
}

/* Writes "kith:" + base64url(raw) to out. */
static kith_err write_code(const uint8_t *raw, size_t len, char *out,
                           size_t cap) {
  const int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  size_t need = PREFIX_LEN + sodium_base64_encoded_len(len, variant);
  if (need > cap || need > KITH_INVITE_CODE_MAX + 1)
    return KITH_ERR_LIMIT;
  memcpy(out, PREFIX, PREFIX_LEN);
  sodium_bin2base64(out + PREFIX_LEN, cap - PREFIX_LEN, raw, len, variant);
  return KITH_OK;
}

kith_err kith_invite_encode(const kith_invite *inv, char *out, size_t cap) {
  uint8_t *msg = NULL;
  size_t len = 0;
  uint8_t raw[RAW_MAX];
  kith_err err = check_invite(inv);
  if (err == KITH_OK)
    err = pack_invite(inv, &msg, &len);
  if (err == KITH_OK && len + CHECKSUM_LEN > sizeof raw)
    err = KITH_ERR_LIMIT;
  if (err == KITH_OK) {
    memcpy(raw, msg, len);
    checksum(msg, len, raw + len);
    err = write_code(raw, len + CHECKSUM_LEN, out, cap);
    sodium_memzero(raw, sizeof raw);
  }
  if (msg != NULL)
    sodium_memzero(msg, len);
  g_free(msg);
  return err;
}

/* [host, port] (or, for a member, [id, host, port]: f points past id). */
static kith_err read_host_port(const msgpack_object *f, kith_addr *a) {
  const char *host;
  size_t n;
  uint64_t port;
  if (kith_codec_str(&f[0], KITH_INVITE_HOST_MAX, &host, &n) != KITH_OK ||
      !host_is_valid(host, n) ||
      kith_codec_uint(&f[1], UINT16_MAX, &port) != KITH_OK || port == 0)
    return KITH_ERR_DECODE;
  memcpy(a->host, host, n);
  a->host[n] = '\0';
  a->port = (uint16_t)port;
  return KITH_OK;
}

static kith_err read_addr(const msgpack_object *o, kith_addr *a) {
  const msgpack_object *f;
  if (kith_codec_array(o, 2, &f) != KITH_OK)
    return KITH_ERR_DECODE;
  return read_host_port(f, a);
}

/* A list of [id, host, port] of min..max entries. */
static kith_err read_members(const msgpack_object *o, kith_invite_member *m,
                             size_t min, size_t max, size_t *n) {
  const msgpack_object *list, *f;
  if (kith_codec_array(o, UINT32_MAX, &list) != KITH_OK ||
      o->via.array.size < min || o->via.array.size > max)
    return KITH_ERR_DECODE;
  for (uint32_t i = 0; i < o->via.array.size; i++)
    if (kith_codec_array(&list[i], 3, &f) != KITH_OK ||
        kith_codec_bin_fixed(&f[0], m[i].id, KITH_ID_LEN) != KITH_OK ||
        read_host_port(f + 1, &m[i].addr) != KITH_OK)
      return KITH_ERR_DECODE;
  *n = o->via.array.size;
  return KITH_OK;
}

/* A list of [host, port] of min..max entries. */
static kith_err read_addrs(const msgpack_object *o, kith_addr *a, size_t min,
                           size_t max, size_t *n) {
  const msgpack_object *list;
  if (kith_codec_array(o, UINT32_MAX, &list) != KITH_OK ||
      o->via.array.size < min || o->via.array.size > max)
    return KITH_ERR_DECODE;
  for (uint32_t i = 0; i < o->via.array.size; i++)
    if (read_addr(&list[i], &a[i]) != KITH_OK)
      return KITH_ERR_DECODE;
  *n = o->via.array.size;
  return KITH_OK;
}

static kith_err read_invite(const msgpack_object *root, kith_invite *inv) {
  const msgpack_object *f;
  uint64_t version;
  uint32_t nf = root->type == MSGPACK_OBJECT_ARRAY ? root->via.array.size : 0;
  if (nf < 5 || nf > 8 || kith_codec_array(root, nf, &f) != KITH_OK ||
      kith_codec_uint(&f[0], UINT64_MAX, &version) != KITH_OK ||
      version != INVITE_VERSION ||
      kith_codec_bin_fixed(&f[1], inv->group_id, 32) != KITH_OK ||
      kith_codec_bin_fixed(&f[2], inv->secret, 32) != KITH_OK ||
      kith_codec_bin_fixed(&f[3], inv->inviter, KITH_ID_LEN) != KITH_OK ||
      read_addrs(&f[4], inv->addrs, 1, KITH_INVITE_MAX_ADDRS, &inv->n_addrs) !=
          KITH_OK)
    return KITH_ERR_DECODE;
  /* Canonical: the last list present is not empty (trailing empty lists
   * are left out); a list followed by another may be empty. */
  if (nf >= 6 &&
      read_members(&f[5], inv->others, nf > 6 ? 0 : 1, KITH_INVITE_MAX_OTHERS,
                   &inv->n_others) != KITH_OK)
    return KITH_ERR_DECODE;
  if (nf >= 7 &&
      read_members(&f[6], inv->relays, nf > 7 ? 0 : 1, KITH_INVITE_MAX_RELAYS,
                   &inv->n_relays) != KITH_OK)
    return KITH_ERR_DECODE;
  if (nf == 8 && read_addrs(&f[7], inv->public_addrs, 1, KITH_INVITE_MAX_PUBLIC,
                            &inv->n_public) != KITH_OK)
    return KITH_ERR_DECODE;
  return KITH_OK;
}

/* Strips white space and the prefix, checks the alphabet and decodes the
 * base64url text into raw. Bad length or padding bits mean a mistyped
 * code, so they report a checksum error. */
static kith_err decode_text(const char *code, uint8_t *raw, size_t *len) {
  size_t n = strlen(code);
  while (n > 0 && g_ascii_isspace(code[0])) {
    code++;
    n--;
  }
  while (n > 0 && g_ascii_isspace(code[n - 1]))
    n--;
  if (n < PREFIX_LEN || memcmp(code, PREFIX, PREFIX_LEN) != 0)
    return KITH_ERR_ARG;
  if (n > KITH_INVITE_CODE_MAX)
    return KITH_ERR_ARG;
  code += PREFIX_LEN;
  n -= PREFIX_LEN;
  for (size_t i = 0; i < n; i++)
    if (!g_ascii_isalnum(code[i]) && code[i] != '-' && code[i] != '_')
      return KITH_ERR_ARG;
  if (sodium_base642bin(raw, RAW_MAX, code, n, NULL, len, NULL,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
    return KITH_ERR_CHECKSUM;
  return KITH_OK;
}

kith_err kith_invite_decode(const char *code, kith_invite *inv) {
  uint8_t raw[RAW_MAX];
  uint8_t sum[CHECKSUM_LEN];
  size_t len = 0;
  kith_invite tmp = {0};
  if (code == NULL || inv == NULL)
    return KITH_ERR_ARG;
  kith_err err = decode_text(code, raw, &len);
  if (err == KITH_OK && len < CHECKSUM_LEN + 1)
    err = KITH_ERR_CHECKSUM;
  if (err == KITH_OK) {
    len -= CHECKSUM_LEN;
    checksum(raw, len, sum);
    if (memcmp(sum, raw + len, CHECKSUM_LEN) != 0)
      err = KITH_ERR_CHECKSUM;
  }
  if (err == KITH_OK) {
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    err = kith_codec_unpack(raw, len, &u) == KITH_OK
              ? read_invite(&u.data, &tmp)
              : KITH_ERR_DECODE;
    msgpack_unpacked_destroy(&u);
  }
  if (err == KITH_OK)
    *inv = tmp;
  sodium_memzero(raw, sizeof raw);
  sodium_memzero(&tmp, sizeof tmp);
  return err;
}

void kith_invite_public_key(const uint8_t secret[32], uint8_t pk[32]) {
  uint8_t sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_seed_keypair(pk, sk, secret);
  sodium_memzero(sk, sizeof sk);
}

static void join_message(const uint8_t group_id[32],
                         const uint8_t joiner[KITH_ID_LEN],
                         uint8_t msg[JOIN_CONTEXT_LEN + 32 + KITH_ID_LEN]) {
  memcpy(msg, JOIN_CONTEXT, JOIN_CONTEXT_LEN);
  memcpy(msg + JOIN_CONTEXT_LEN, group_id, 32);
  memcpy(msg + JOIN_CONTEXT_LEN + 32, joiner, KITH_ID_LEN);
}

void kith_invite_sign_join(const uint8_t secret[32], const uint8_t group_id[32],
                           const uint8_t joiner[KITH_ID_LEN],
                           uint8_t sig[KITH_SIG_LEN]) {
  uint8_t pk[crypto_sign_PUBLICKEYBYTES];
  uint8_t sk[crypto_sign_SECRETKEYBYTES];
  uint8_t msg[JOIN_CONTEXT_LEN + 32 + KITH_ID_LEN];
  join_message(group_id, joiner, msg);
  crypto_sign_seed_keypair(pk, sk, secret);
  crypto_sign_detached(sig, NULL, msg, sizeof msg, sk);
  sodium_memzero(sk, sizeof sk);
}

kith_err kith_invite_verify_join(const uint8_t invite_pk[32],
                                 const uint8_t group_id[32],
                                 const uint8_t joiner[KITH_ID_LEN],
                                 const uint8_t sig[KITH_SIG_LEN]) {
  uint8_t msg[JOIN_CONTEXT_LEN + 32 + KITH_ID_LEN];
  join_message(group_id, joiner, msg);
  if (crypto_sign_verify_detached(sig, msg, sizeof msg, invite_pk) != 0)
    return KITH_ERR_SIGNATURE;
  return KITH_OK;
}
