/* Unit tests for core/invite.c: code format, checksum, validation and the
 * join proof. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glib.h>
#include <sodium.h>
#include <string.h>

#include "core/invite.h"

#ifndef KITH_VECTORS_DIR
#error "KITH_VECTORS_DIR must name tests/vectors"
#endif

#define B64_ALPHABET                                                           \
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

typedef struct vector {
  kith_invite inv;
  char code[KITH_INVITE_CODE_MAX + 1];
  uint8_t invite_pk[32], joiner[KITH_ID_LEN], join_sig[KITH_SIG_LEN];
} vector;

static void hex_field(const char *hex, uint8_t *out, size_t n) {
  size_t len;
  assert_int_equal(sodium_hex2bin(out, n, hex, strlen(hex), NULL, &len, NULL),
                   0);
  assert_int_equal(len, n);
}

static void read_addr_field(gchar **f, kith_addr *a) {
  assert_non_null(f[1]);
  assert_non_null(f[2]);
  g_strlcpy(a->host, f[1], sizeof a->host);
  a->port = (uint16_t)g_ascii_strtoull(f[2], NULL, 10);
}

/* tests/vectors/NAME: "key value..." lines. */
static void load_vector_file(vector *v, const char *name) {
  gchar *text = NULL;
  gchar *path = g_build_filename(KITH_VECTORS_DIR, name, NULL);
  memset(v, 0, sizeof *v);
  assert_true(g_file_get_contents(path, &text, NULL, NULL));
  g_free(path);
  gchar **lines = g_strsplit(text, "\n", -1);
  for (gchar **l = lines; *l != NULL; l++) {
    gchar **f = g_strsplit(*l, " ", -1);
    if (g_strv_length(f) < 2 || f[0][0] == '#') {
      g_strfreev(f);
      continue;
    }
    if (strcmp(f[0], "group_id") == 0)
      hex_field(f[1], v->inv.group_id, 32);
    else if (strcmp(f[0], "secret") == 0)
      hex_field(f[1], v->inv.secret, 32);
    else if (strcmp(f[0], "inviter") == 0)
      hex_field(f[1], v->inv.inviter, KITH_ID_LEN);
    else if (strcmp(f[0], "invite_pk") == 0)
      hex_field(f[1], v->invite_pk, 32);
    else if (strcmp(f[0], "joiner") == 0)
      hex_field(f[1], v->joiner, KITH_ID_LEN);
    else if (strcmp(f[0], "join_sig") == 0)
      hex_field(f[1], v->join_sig, KITH_SIG_LEN);
    else if (strcmp(f[0], "code") == 0)
      g_strlcpy(v->code, f[1], sizeof v->code);
    else if (strcmp(f[0], "addr") == 0)
      read_addr_field(f, &v->inv.addrs[v->inv.n_addrs++]);
    else if (strcmp(f[0], "public") == 0)
      read_addr_field(f, &v->inv.public_addrs[v->inv.n_public++]);
    else if (strcmp(f[0], "relay") == 0) {
      kith_invite_member *m = &v->inv.relays[v->inv.n_relays++];
      hex_field(f[1], m->id, KITH_ID_LEN);
      read_addr_field(f + 1, &m->addr);
    }
    g_strfreev(f);
  }
  g_strfreev(lines);
  g_free(text);
  assert_int_equal(v->inv.n_addrs, 1);
  assert_true(g_str_has_prefix(v->code, "kith:"));
}

static void load_vector(vector *v) {
  load_vector_file(v, "invite.txt");
}

static void assert_invite_equal(const kith_invite *a, const kith_invite *b) {
  assert_memory_equal(a->group_id, b->group_id, 32);
  assert_memory_equal(a->secret, b->secret, 32);
  assert_memory_equal(a->inviter, b->inviter, KITH_ID_LEN);
  assert_int_equal(a->n_addrs, b->n_addrs);
  for (size_t i = 0; i < a->n_addrs; i++) {
    assert_string_equal(a->addrs[i].host, b->addrs[i].host);
    assert_int_equal(a->addrs[i].port, b->addrs[i].port);
  }
  assert_int_equal(a->n_others, b->n_others);
  for (size_t i = 0; i < a->n_others; i++) {
    assert_memory_equal(a->others[i].id, b->others[i].id, KITH_ID_LEN);
    assert_string_equal(a->others[i].addr.host, b->others[i].addr.host);
    assert_int_equal(a->others[i].addr.port, b->others[i].addr.port);
  }
  assert_int_equal(a->n_relays, b->n_relays);
  for (size_t i = 0; i < a->n_relays; i++) {
    assert_memory_equal(a->relays[i].id, b->relays[i].id, KITH_ID_LEN);
    assert_string_equal(a->relays[i].addr.host, b->relays[i].addr.host);
    assert_int_equal(a->relays[i].addr.port, b->relays[i].addr.port);
  }
  assert_int_equal(a->n_public, b->n_public);
  for (size_t i = 0; i < a->n_public; i++) {
    assert_string_equal(a->public_addrs[i].host, b->public_addrs[i].host);
    assert_int_equal(a->public_addrs[i].port, b->public_addrs[i].port);
  }
}

static void vector_reproduces(void **state) {
  vector v;
  char code[KITH_INVITE_CODE_MAX + 1];
  kith_invite back;
  uint8_t pk[32], sig[KITH_SIG_LEN];
  load_vector(&v);
  assert_int_equal(kith_invite_encode(&v.inv, code, sizeof code), KITH_OK);
  assert_string_equal(code, v.code);
  assert_int_equal(kith_invite_decode(v.code, &back), KITH_OK);
  assert_invite_equal(&back, &v.inv);
  kith_invite_public_key(v.inv.secret, pk);
  assert_memory_equal(pk, v.invite_pk, 32);
  kith_invite_sign_join(v.inv.secret, v.inv.group_id, v.joiner, sig);
  assert_memory_equal(sig, v.join_sig, KITH_SIG_LEN);
}

/* The 8-element layout with server-reflexive addresses (and an empty
 * others list before the relays). */
static void public_vector_reproduces(void **state) {
  vector v;
  char code[KITH_INVITE_CODE_MAX + 1];
  kith_invite back;
  load_vector_file(&v, "invite_public.txt");
  assert_int_equal(v.inv.n_public, 1);
  assert_int_equal(v.inv.n_relays, 1);
  assert_int_equal(kith_invite_encode(&v.inv, code, sizeof code), KITH_OK);
  assert_string_equal(code, v.code);
  assert_int_equal(kith_invite_decode(v.code, &back), KITH_OK);
  assert_invite_equal(&back, &v.inv);
}

static void fill_invite(kith_invite *inv, size_t n_addrs) {
  memset(inv, 0, sizeof *inv);
  for (int i = 0; i < 32; i++) {
    inv->group_id[i] = (uint8_t)(0x40 + i);
    inv->secret[i] = (uint8_t)(0x80 + i);
    inv->inviter[i] = (uint8_t)(0xc0 + i);
  }
  static const char *const hosts[] = {
      "192.168.1.20", "::1", "fe80::1:2:3:4", "relay.example.org",
      "10.0.0.1",     "a",   "x-y.z",         "203.0.113.9"};
  static const uint16_t ports[] = {4000, 1, 65535, 9, 80, 443, 1234, 5555};
  inv->n_addrs = n_addrs;
  for (size_t i = 0; i < n_addrs; i++) {
    g_strlcpy(inv->addrs[i].host, hosts[i % 8], sizeof inv->addrs[i].host);
    inv->addrs[i].port = ports[i % 8];
  }
}

static void round_trips(void **state) {
  for (size_t n = 1; n <= KITH_INVITE_MAX_ADDRS; n++) {
    kith_invite inv, back;
    char code[KITH_INVITE_CODE_MAX + 1];
    fill_invite(&inv, n);
    if (n == KITH_INVITE_MAX_ADDRS) /* longest host everywhere */
      for (size_t i = 0; i < n; i++)
        memset(inv.addrs[i].host, 'h', KITH_INVITE_HOST_MAX);
    assert_int_equal(kith_invite_encode(&inv, code, sizeof code), KITH_OK);
    assert_true(strlen(code) <= KITH_INVITE_CODE_MAX);
    assert_int_equal(kith_invite_decode(code, &back), KITH_OK);
    assert_invite_equal(&back, &inv);
    /* exact fit, and one byte too little */
    size_t need = strlen(code) + 1;
    assert_int_equal(kith_invite_encode(&inv, code, need), KITH_OK);
    assert_int_equal(kith_invite_encode(&inv, code, need - 1), KITH_ERR_LIMIT);
  }
}

/* Other members that can admit when the inviter is offline travel in the
 * code too; with none, the layout is the 5-element one of the vector. */
static void other_members_round_trip(void **state) {
  for (size_t k = 1; k <= KITH_INVITE_MAX_OTHERS; k++) {
    kith_invite inv, back;
    char code[KITH_INVITE_CODE_MAX + 1];
    fill_invite(&inv, 2);
    inv.n_others = k;
    for (size_t i = 0; i < k; i++) {
      memset(inv.others[i].id, (int)(0x10 + i), KITH_ID_LEN);
      g_strlcpy(inv.others[i].addr.host, "127.0.0.1",
                sizeof inv.others[i].addr.host);
      inv.others[i].addr.port = (uint16_t)(7000 + i);
    }
    assert_int_equal(kith_invite_encode(&inv, code, sizeof code), KITH_OK);
    assert_int_equal(kith_invite_decode(code, &back), KITH_OK);
    assert_invite_equal(&back, &inv);
  }
  kith_invite inv;
  char code[KITH_INVITE_CODE_MAX + 1];
  fill_invite(&inv, 1);
  inv.n_others = KITH_INVITE_MAX_OTHERS + 1;
  assert_int_equal(kith_invite_encode(&inv, code, sizeof code), KITH_ERR_ARG);
  fill_invite(&inv, 1);
  inv.n_others = 1;
  inv.others[0].addr.port = 0;
  assert_int_equal(kith_invite_encode(&inv, code, sizeof code), KITH_ERR_ARG);
}

/* Relay friends travel in the code, with or without other members. */
static void relays_round_trip(void **state) {
  for (size_t others = 0; others <= 1; others++)
    for (size_t k = 1; k <= KITH_INVITE_MAX_RELAYS; k++) {
      kith_invite inv, back;
      char code[KITH_INVITE_CODE_MAX + 1];
      fill_invite(&inv, 1);
      inv.n_others = others;
      memset(inv.others[0].id, 0x55, KITH_ID_LEN);
      g_strlcpy(inv.others[0].addr.host, "192.0.2.5",
                sizeof inv.others[0].addr.host);
      inv.others[0].addr.port = 7733;
      inv.n_relays = k;
      for (size_t i = 0; i < k; i++) {
        memset(inv.relays[i].id, (int)(0x70 + i), KITH_ID_LEN);
        g_strlcpy(inv.relays[i].addr.host, "203.0.113.7",
                  sizeof inv.relays[i].addr.host);
        inv.relays[i].addr.port = (uint16_t)(7733 + i);
      }
      assert_int_equal(kith_invite_encode(&inv, code, sizeof code), KITH_OK);
      assert_int_equal(kith_invite_decode(code, &back), KITH_OK);
      assert_invite_equal(&back, &inv);
    }
}

/* Public addresses travel with or without others and relays; old codes
 * (5 to 7 elements) still read the same. */
static void public_addrs_round_trip(void **state) {
  for (size_t mask = 0; mask < 4; mask++)
    for (size_t k = 1; k <= KITH_INVITE_MAX_PUBLIC; k++) {
      kith_invite inv, back;
      char code[KITH_INVITE_CODE_MAX + 1];
      fill_invite(&inv, 1);
      inv.n_others = mask & 1;
      memset(inv.others[0].id, 0x55, KITH_ID_LEN);
      g_strlcpy(inv.others[0].addr.host, "192.0.2.5",
                sizeof inv.others[0].addr.host);
      inv.others[0].addr.port = 7733;
      inv.n_relays = (mask >> 1) & 1;
      memset(inv.relays[0].id, 0x70, KITH_ID_LEN);
      g_strlcpy(inv.relays[0].addr.host, "203.0.113.7",
                sizeof inv.relays[0].addr.host);
      inv.relays[0].addr.port = 7733;
      inv.n_public = k;
      for (size_t i = 0; i < k; i++) {
        g_strlcpy(inv.public_addrs[i].host, "198.51.100.4",
                  sizeof inv.public_addrs[i].host);
        inv.public_addrs[i].port = (uint16_t)(40000 + i);
      }
      assert_int_equal(kith_invite_encode(&inv, code, sizeof code), KITH_OK);
      assert_int_equal(kith_invite_decode(code, &back), KITH_OK);
      assert_invite_equal(&back, &inv);
    }
  kith_invite inv;
  char code[KITH_INVITE_CODE_MAX + 1];
  fill_invite(&inv, 1);
  inv.n_public = KITH_INVITE_MAX_PUBLIC + 1;
  assert_int_equal(kith_invite_encode(&inv, code, sizeof code), KITH_ERR_ARG);
  fill_invite(&inv, 1);
  inv.n_public = 1; /* host left empty */
  assert_int_equal(kith_invite_encode(&inv, code, sizeof code), KITH_ERR_ARG);
}

static void encode_rejects_bad_invites(void **state) {
  kith_invite inv;
  char code[KITH_INVITE_CODE_MAX + 1];
  fill_invite(&inv, 0);
  assert_int_equal(kith_invite_encode(&inv, code, sizeof code), KITH_ERR_ARG);
  fill_invite(&inv, 1);
  inv.n_addrs = KITH_INVITE_MAX_ADDRS + 1;
  assert_int_equal(kith_invite_encode(&inv, code, sizeof code), KITH_ERR_ARG);
  fill_invite(&inv, 1);
  inv.addrs[0].port = 0;
  assert_int_equal(kith_invite_encode(&inv, code, sizeof code), KITH_ERR_ARG);
  fill_invite(&inv, 1);
  inv.addrs[0].host[0] = '\0';
  assert_int_equal(kith_invite_encode(&inv, code, sizeof code), KITH_ERR_ARG);
  fill_invite(&inv, 1);
  g_strlcpy(inv.addrs[0].host, "bad host", sizeof inv.addrs[0].host);
  assert_int_equal(kith_invite_encode(&inv, code, sizeof code), KITH_ERR_ARG);
  fill_invite(&inv, 1);
  memset(inv.addrs[0].host, 'h', sizeof inv.addrs[0].host); /* no NUL */
  assert_int_equal(kith_invite_encode(&inv, code, sizeof code), KITH_ERR_ARG);
}

/* Every single-character substitution inside the payload is caught by the
 * checksum (or the padding-bit check); in the prefix it is not a kith code. */
static void single_char_changes_detected(void **state) {
  vector v;
  kith_invite out;
  load_vector(&v);
  size_t n = strlen(v.code);
  for (size_t i = 0; i < n; i++) {
    char code[KITH_INVITE_CODE_MAX + 1];
    for (size_t k = 0; k < strlen(B64_ALPHABET); k += 7) {
      g_strlcpy(code, v.code, sizeof code);
      if (code[i] == B64_ALPHABET[k])
        continue;
      code[i] = B64_ALPHABET[k];
      assert_int_equal(kith_invite_decode(code, &out),
                       i < 5 ? KITH_ERR_ARG : KITH_ERR_CHECKSUM);
    }
    for (const char *c = "!+/=. \t@é"; *c; c++) {
      g_strlcpy(code, v.code, sizeof code);
      code[i] = *c;
      kith_err want = KITH_ERR_ARG;
      if (i == 4 && *c == ':')
        want = KITH_OK;
      if (i == n - 1 && g_ascii_isspace(*c))
        want = KITH_ERR_CHECKSUM; /* trimmed: one character shorter */
      assert_int_equal(kith_invite_decode(code, &out), want);
    }
    /* deleting a payload character */
    if (i >= 5) {
      g_strlcpy(code, v.code, i + 1);
      g_strlcat(code, v.code + i + 1, sizeof code);
      assert_int_equal(kith_invite_decode(code, &out), KITH_ERR_CHECKSUM);
    }
  }
}

static void prefix_and_space(void **state) {
  vector v;
  kith_invite out;
  char buf[KITH_INVITE_CODE_MAX + 16];
  load_vector(&v);
  g_snprintf(buf, sizeof buf, " \t\n%s \r\n", v.code);
  assert_int_equal(kith_invite_decode(buf, &out), KITH_OK);
  assert_invite_equal(&out, &v.inv);
  g_snprintf(buf, sizeof buf, "K%s", v.code + 1);
  assert_int_equal(kith_invite_decode(buf, &out), KITH_ERR_ARG);
  g_snprintf(buf, sizeof buf, "kiss:%s", v.code + 5);
  assert_int_equal(kith_invite_decode(buf, &out), KITH_ERR_ARG);
  g_snprintf(buf, sizeof buf, "%s", v.code + 5);
  assert_int_equal(kith_invite_decode(buf, &out), KITH_ERR_ARG);
  g_snprintf(buf, sizeof buf, "kith: %s", v.code + 5);
  assert_int_equal(kith_invite_decode(buf, &out), KITH_ERR_ARG);
  assert_int_equal(kith_invite_decode("", &out), KITH_ERR_ARG);
  assert_int_equal(kith_invite_decode("kith", &out), KITH_ERR_ARG);
  assert_int_equal(kith_invite_decode("   ", &out), KITH_ERR_ARG);
  assert_int_equal(kith_invite_decode(NULL, &out), KITH_ERR_ARG);
  /* too short to hold a checksum */
  assert_int_equal(kith_invite_decode("kith:", &out), KITH_ERR_CHECKSUM);
  assert_int_equal(kith_invite_decode("kith:AAAA", &out), KITH_ERR_CHECKSUM);
  assert_int_equal(kith_invite_decode("kith:AAAAAA", &out), KITH_ERR_CHECKSUM);
  /* far too long */
  char *longcode = g_strnfill(KITH_INVITE_CODE_MAX + 10, 'A');
  memcpy(longcode, "kith:", 5);
  assert_int_equal(kith_invite_decode(longcode, &out), KITH_ERR_ARG);
  g_free(longcode);
}

/* Builds a code around arbitrary msgpack bytes (hex) with a valid
 * checksum, to reach the content checks. */
static kith_err decode_payload(const char *hex) {
  uint8_t raw[1024], h[32];
  char code[KITH_INVITE_CODE_MAX * 2];
  size_t len;
  kith_invite out;
  assert_int_equal(
      sodium_hex2bin(raw, sizeof raw - 4, hex, strlen(hex), NULL, &len, NULL),
      0);
  crypto_generichash(h, sizeof h, raw, len, NULL, 0);
  memcpy(raw + len, h, 4);
  memcpy(code, "kith:", 5);
  sodium_bin2base64(code + 5, sizeof code - 5, raw, len + 4,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return kith_invite_decode(code, &out);
}

#define ID32                                                                   \
  "c420"                                                                       \
  "0000000000000000000000000000000000000000000000000000000000000000"
#define ID31                                                                   \
  "c41f"                                                                       \
  "00000000000000000000000000000000000000000000000000000000000000"
#define ADDR                                                                   \
  "92"                                                                         \
  "a9"                                                                         \
  "3132372e302e302e31"                                                         \
  "cd0fa0" /* ["127.0.0.1", 4000] */

static void content_checks(void **state) {
  assert_int_equal(decode_payload("9501" ID32 ID32 ID32 "91" ADDR), KITH_OK);
  assert_int_equal(
      decode_payload("9801" ID32 ID32 ID32 "91" ADDR "90"
                     "90"
                     "91" ADDR),
      KITH_OK); /* only public addresses: others and relays empty */
  static const char *const bad[] = {
      "9502" ID32 ID32 ID32 "91" ADDR,      /* version 2 */
      "9500" ID32 ID32 ID32 "91" ADDR,      /* version 0 */
      "95cc01" ID32 ID32 ID32 "91" ADDR,    /* non-canonical version */
      "9401" ID32 ID32 ID32,                /* missing addrs */
      "9601" ID32 ID32 ID32 "91" ADDR "c0", /* extra field */
      "9501" ID31 ID32 ID32 "91" ADDR,      /* short group id */
      "9501" ID32 ID31 ID32 "91" ADDR,      /* short secret */
      "9501" ID32 ID32 ID31 "91" ADDR,      /* short inviter */
      "9501" ID32 ID32 ID32 "90",           /* no address */
      "9501" ID32 ID32 ID32
      "99" ADDR ADDR ADDR ADDR ADDR ADDR ADDR ADDR ADDR, /* nine addresses */
      "9501" ID32 ID32 ID32 "91"
      "92a13100", /* port 0 */
      "9501" ID32 ID32 ID32 "91"
      "92a131ce00010000", /* port 65536 */
      "9501" ID32 ID32 ID32 "91"
      "92a131ff", /* port -1 */
      "9501" ID32 ID32 ID32 "91"
      "92a0cd0fa0", /* empty host */
      "9501" ID32 ID32 ID32 "91"
      "92a2612fcd0fa0", /* '/' in host */
      "9501" ID32 ID32 ID32 "91"
      "92a26100cd0fa0", /* NUL in host */
      "9501" ID32 ID32 ID32 "91"
      "92c40131cd0fa0", /* bin host */
      "9501" ID32 ID32 ID32 "91"
      "93a131cd0fa0c0",                     /* 3-element addr */
      "9501" ID32 ID32 ID32 "91" ADDR "c0", /* trailing byte */
      "9801" ID32 ID32 ID32 "91" ADDR "90"
      "90"
      "90", /* trailing empty public list */
      "9801" ID32 ID32 ID32 "91" ADDR "90"
      "90"
      "93" ADDR ADDR ADDR, /* three public addresses */
      "9901" ID32 ID32 ID32 "91" ADDR "90"
      "90"
      "91" ADDR "90", /* a 9th element */
      "8101"
      "02", /* map */
      "c0", /* not an array */
  };
  for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
    assert_int_equal(decode_payload(bad[i]), KITH_ERR_DECODE);
  /* a 64-byte host */
  GString *s = g_string_new("9501" ID32 ID32 ID32 "91"
                            "92d940");
  for (int i = 0; i < 64; i++)
    g_string_append(s, "68");
  g_string_append(s, "cd0fa0");
  assert_int_equal(decode_payload(s->str), KITH_ERR_DECODE);
  g_string_free(s, TRUE);
}

static void join_proof(void **state) {
  vector v;
  uint8_t pk[32], sig[KITH_SIG_LEN], other[32];
  load_vector(&v);
  kith_invite_public_key(v.inv.secret, pk);
  kith_invite_sign_join(v.inv.secret, v.inv.group_id, v.joiner, sig);
  assert_int_equal(kith_invite_verify_join(pk, v.inv.group_id, v.joiner, sig),
                   KITH_OK);
  memcpy(other, v.joiner, 32);
  other[31] ^= 1;
  assert_int_equal(kith_invite_verify_join(pk, v.inv.group_id, other, sig),
                   KITH_ERR_SIGNATURE);
  memcpy(other, v.inv.group_id, 32);
  other[0] ^= 1;
  assert_int_equal(kith_invite_verify_join(pk, other, v.joiner, sig),
                   KITH_ERR_SIGNATURE);
  assert_int_equal(
      kith_invite_verify_join(v.inv.inviter, v.inv.group_id, v.joiner, sig),
      KITH_ERR_SIGNATURE);
  sig[5] ^= 0x10;
  assert_int_equal(kith_invite_verify_join(pk, v.inv.group_id, v.joiner, sig),
                   KITH_ERR_SIGNATURE);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(vector_reproduces),
      cmocka_unit_test(public_vector_reproduces),
      cmocka_unit_test(public_addrs_round_trip),
      cmocka_unit_test(round_trips),
      cmocka_unit_test(other_members_round_trip),
      cmocka_unit_test(relays_round_trip),
      cmocka_unit_test(encode_rejects_bad_invites),
      cmocka_unit_test(single_char_changes_detected),
      cmocka_unit_test(prefix_and_space),
      cmocka_unit_test(content_checks),
      cmocka_unit_test(join_proof),
  };
  int failed = cmocka_run_group_tests_name("invite", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
