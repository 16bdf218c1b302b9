/* Unit tests for net/wire: the decoders of link frames, signal payloads,
 * and join requests, on bytes packed here; fixed identity seeds. (Relayed
 * signals are opened in net/signal.c: test_signal.) */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <string.h>

#include "core/codec.h"
#include "net/wire.h"

#define NOW_MS UINT64_C(1700000000000)

static kith_ident me, peer;

/* The packed bytes of p (g_malloc'ed); p is reset. */
static uint8_t *take(kith_pack *p, size_t *len) {
  uint8_t *buf = NULL;
  assert_int_equal(kith_pack_take(p, &buf, len), KITH_OK);
  return buf;
}

static kith_err decode_frame(kith_pack *p, kith_wire_frame *f) {
  size_t len;
  uint8_t *buf = take(p, &len);
  kith_err err = kith_wire_frame_decode(buf, len, f);
  g_free(buf);
  return err;
}

static void ping_decodes_with_its_clock(void **state) {
  kith_pack p;
  kith_wire_frame f;
  kith_pack_init(&p);
  kith_pack_array(&p, 2);
  kith_pack_uint(&p, FRAME_PING);
  kith_pack_uint(&p, 4242);
  assert_int_equal(decode_frame(&p, &f), KITH_OK);
  assert_int_equal(f.type, FRAME_PING);
  assert_int_equal(f.t, 4242);
  kith_wire_frame_clear(&f);
}

/* A GOSSIP frame names its group by 8 bytes (what nodes send) or 32. */
static void gossip_names_its_group_by_8_or_32_bytes(void **state) {
  kith_pack p;
  kith_wire_frame f;
  kith_pack_init(&p);
  for (size_t len = 8; len <= 32; len += 24) {
    kith_pack_array(&p, 3);
    kith_pack_uint(&p, FRAME_GOSSIP);
    kith_pack_bin(&p, me.pk, len);
    kith_pack_bin(&p, peer.pk, 5);
    assert_int_equal(decode_frame(&p, &f), KITH_OK);
    assert_int_equal(f.type, FRAME_GOSSIP);
    assert_int_equal(f.gid_len, len);
    assert_memory_equal(f.gid, me.pk, len);
    assert_int_equal(f.len, 5);
    kith_wire_frame_clear(&f);
  }
}

static void unknown_type_or_arity_is_type_zero(void **state) {
  kith_pack p;
  kith_wire_frame f;
  kith_pack_init(&p);
  kith_pack_array(&p, 1);
  kith_pack_uint(&p, 99);
  assert_int_equal(decode_frame(&p, &f), KITH_OK);
  assert_int_equal(f.type, 0);
  kith_wire_frame_clear(&f);
  kith_pack_array(&p, 3); /* a PING with one field too many */
  kith_pack_uint(&p, FRAME_PING);
  kith_pack_uint(&p, 1);
  kith_pack_uint(&p, 2);
  assert_int_equal(decode_frame(&p, &f), KITH_OK);
  assert_int_equal(f.type, 0);
  kith_wire_frame_clear(&f);
}

static void malformed_frames_are_rejected(void **state) {
  static const uint8_t not_canonical[] = {0x92, 0x01, 0xcc, 0x05};
  static const uint8_t not_array[] = {0x01};
  uint8_t short_gid[31] = {0};
  kith_wire_frame f;
  kith_pack p;
  assert_int_equal(
      kith_wire_frame_decode(not_canonical, sizeof not_canonical, &f),
      KITH_ERR_DECODE);
  kith_wire_frame_clear(&f);
  assert_int_equal(kith_wire_frame_decode(not_array, sizeof not_array, &f),
                   KITH_ERR_DECODE);
  kith_wire_frame_clear(&f);
  kith_pack_init(&p);
  kith_pack_array(&p, 3);
  kith_pack_uint(&p, FRAME_GOSSIP);
  kith_pack_bin(&p, short_gid, sizeof short_gid);
  kith_pack_bin(&p, short_gid, 4);
  assert_int_equal(decode_frame(&p, &f), KITH_ERR_DECODE);
  kith_wire_frame_clear(&f);
  kith_pack_array(&p, 2); /* ELSEWHERE without a time */
  kith_pack_uint(&p, FRAME_ELSEWHERE);
  kith_pack_nil(&p);
  assert_int_equal(decode_frame(&p, &f), KITH_ERR_DECODE);
  kith_wire_frame_clear(&f);
  kith_pack_array(&p, 5); /* RELAY of an unknown kind */
  kith_pack_uint(&p, FRAME_RELAY);
  kith_pack_uint(&p, 2);
  kith_pack_bin(&p, me.pk, 32);
  kith_pack_bin(&p, peer.pk, 32);
  kith_pack_bin(&p, me.pk, 8);
  assert_int_equal(decode_frame(&p, &f), KITH_ERR_DECODE);
  kith_wire_frame_clear(&f);
}

/* [type, attempt, ice params bin] with params that decode, or junk. */
static kith_err decode_path(int type, uint64_t attempt, int junk,
                            kith_wire_frame *f) {
  kith_ice_params ip = {
      .ufrag = "Ab3x", .pwd = "0123456789abcdefghijkl", .n_cands = 1};
  ip.cands[0] =
      (kith_ice_cand){"1", 2130706431, "192.0.2.10", 40000, KITH_CAND_HOST};
  uint8_t *pb;
  size_t pl;
  kith_pack p;
  assert_int_equal(kith_ice_params_encode(&ip, &pb, &pl), KITH_OK);
  if (junk)
    pb[1] = 0xc0; /* the ufrag is not a string */
  kith_pack_init(&p);
  kith_pack_array(&p, 3);
  kith_pack_uint(&p, (uint64_t)type);
  kith_pack_uint(&p, attempt);
  kith_pack_bin(&p, pb, pl);
  g_free(pb);
  return decode_frame(&p, f);
}

static void move_and_path_frames_decode(void **state) {
  kith_pack p;
  kith_wire_frame f;
  kith_pack_init(&p);
  kith_pack_array(&p, 2);
  kith_pack_uint(&p, FRAME_MOVE);
  kith_pack_uint(&p, 7);
  assert_int_equal(decode_frame(&p, &f), KITH_OK);
  assert_int_equal(f.type, FRAME_MOVE);
  assert_int_equal(f.t, 7);
  kith_wire_frame_clear(&f);
  for (int type = FRAME_PATH_OFFER; type <= FRAME_PATH_ANSWER; type++) {
    assert_int_equal(decode_path(type, 3, 0, &f), KITH_OK);
    assert_int_equal(f.type, type);
    assert_int_equal(f.t, 3);
    assert_string_equal(f.params.ufrag, "Ab3x");
    assert_int_equal(f.params.n_cands, 1);
    assert_int_equal(f.params.cands[0].port, 40000);
    kith_wire_frame_clear(&f);
    assert_int_equal(decode_path(type, 3, 1, &f), KITH_ERR_DECODE);
    kith_wire_frame_clear(&f);
  }
  (void)state;
}

static void pack_addr(kith_pack *p, const uint8_t *id, size_t id_len,
                      const char *host, uint64_t port) {
  kith_pack_array(p, 4);
  kith_pack_bin(p, id, id_len);
  kith_pack_cstr(p, host);
  kith_pack_uint(p, port);
  kith_pack_uint(p, NOW_MS + port);
}

/* Retired frames of older nodes (EVENT 3, HAVE 4) are not ours: type 0. */
static void retired_event_and_have_are_type_zero(void **state) {
  kith_pack p;
  kith_wire_frame f;
  kith_pack_init(&p);
  kith_pack_array(&p, 3);
  kith_pack_uint(&p, 3);
  kith_pack_bin(&p, me.pk, 32);
  kith_pack_bin(&p, me.pk, 8);
  assert_int_equal(decode_frame(&p, &f), KITH_OK);
  assert_int_equal(f.type, 0);
  kith_wire_frame_clear(&f);
  kith_pack_array(&p, 4);
  kith_pack_uint(&p, 4);
  kith_pack_bin(&p, me.pk, 32);
  kith_pack_bin(&p, me.pk, 32);
  kith_pack_bool(&p, 1);
  assert_int_equal(decode_frame(&p, &f), KITH_OK);
  assert_int_equal(f.type, 0);
  kith_wire_frame_clear(&f);
}

static void addrs_keep_only_well_formed_entries(void **state) {
  kith_pack p;
  kith_wire_frame f;
  kith_pack_init(&p);
  kith_pack_array(&p, 2);
  kith_pack_uint(&p, FRAME_ADDRS);
  kith_pack_array(&p, 5);
  pack_addr(&p, peer.pk, 32, "127.0.0.1", 7733);
  pack_addr(&p, peer.pk, 32, "not.an.address", 7733);
  pack_addr(&p, peer.pk, 32, "::1", 0);
  pack_addr(&p, peer.pk, 31, "127.0.0.2", 1);
  pack_addr(&p, me.pk, 32, "2001:db8::1", 65535);
  assert_int_equal(decode_frame(&p, &f), KITH_OK);
  assert_int_equal(f.type, FRAME_ADDRS);
  assert_int_equal(f.n_addrs, 2);
  assert_string_equal(f.addrs[0].host, "127.0.0.1");
  assert_int_equal(f.addrs[0].port, 7733);
  assert_true(f.addrs[0].version == NOW_MS + 7733);
  assert_memory_equal(f.addrs[1].id, me.pk, 32);
  assert_string_equal(f.addrs[1].host, "2001:db8::1");
  kith_wire_frame_clear(&f);
}

static void addrs_over_the_cap_are_rejected(void **state) {
  kith_pack p;
  kith_wire_frame f;
  kith_pack_init(&p);
  kith_pack_array(&p, 2);
  kith_pack_uint(&p, FRAME_ADDRS);
  kith_pack_array(&p, KITH_WIRE_ADDRS_MAX + 1);
  for (int i = 0; i <= KITH_WIRE_ADDRS_MAX; i++)
    pack_addr(&p, peer.pk, 32, "127.0.0.1", 7733);
  assert_int_equal(decode_frame(&p, &f), KITH_ERR_DECODE);
  kith_wire_frame_clear(&f);
}

/* An offer or answer payload with real ICE parameters. */
static uint8_t *signal_payload(uint64_t kind, int join_kind, size_t *len) {
  kith_ice_params ip = {
      .ufrag = "ufrg", .pwd = "0123456789abcdefghijkl", .n_cands = 1};
  ip.cands[0] = (kith_ice_cand){"1", 100, "127.0.0.1", 5000, KITH_CAND_HOST};
  uint8_t *pb, join[40] = {1, 2, 3};
  size_t pl;
  kith_pack p;
  assert_int_equal(kith_ice_params_encode(&ip, &pb, &pl), KITH_OK);
  uint8_t nonce[16] = {5};
  kith_pack_init(&p);
  kith_pack_array(&p, 5);
  kith_pack_uint(&p, kind);
  kith_pack_bin(&p, pb, pl);
  if (join_kind == 0)
    kith_pack_nil(&p);
  else if (join_kind == 1)
    kith_pack_bin(&p, join, sizeof join);
  else
    kith_pack_uint(&p, 7);
  kith_pack_uint(&p, NOW_MS);
  kith_pack_bin(&p, nonce, sizeof nonce);
  g_free(pb);
  return take(&p, len);
}

static void offer_carries_its_join_request(void **state) {
  kith_wire_signal s;
  size_t len;
  uint8_t *buf = signal_payload(SIG_OFFER, 1, &len);
  assert_int_equal(kith_wire_signal_decode(buf, len, &s), KITH_OK);
  assert_int_equal(s.kind, SIG_OFFER);
  assert_string_equal(s.params.ufrag, "ufrg");
  assert_int_equal(s.params.n_cands, 1);
  assert_true(s.has_join);
  assert_int_equal(s.join_len, 40);
  assert_int_equal(s.join[2], 3);
  assert_true(s.since_ms == NOW_MS);
  assert_int_equal(s.nonce[0], 5);
  g_free(buf);
  /* A join request that is not a bin still counts, empty: refused. */
  buf = signal_payload(SIG_OFFER, 2, &len);
  assert_int_equal(kith_wire_signal_decode(buf, len, &s), KITH_OK);
  assert_true(s.has_join);
  assert_int_equal(s.join_len, 0);
  g_free(buf);
  buf = signal_payload(SIG_ANSWER, 0, &len);
  assert_int_equal(kith_wire_signal_decode(buf, len, &s), KITH_OK);
  assert_false(s.has_join);
  g_free(buf);
  /* An answer carries no join request. */
  buf = signal_payload(SIG_ANSWER, 1, &len);
  assert_int_equal(kith_wire_signal_decode(buf, len, &s), KITH_ERR_DECODE);
  g_free(buf);
}

static void refusal_and_bad_kinds(void **state) {
  kith_wire_signal s;
  kith_pack p;
  size_t len;
  uint8_t *buf;
  kith_pack_init(&p);
  kith_pack_array(&p, 3);
  kith_pack_uint(&p, SIG_REFUSE);
  kith_pack_cstr(&p, "the group is full");
  kith_pack_nil(&p);
  buf = take(&p, &len);
  assert_int_equal(kith_wire_signal_decode(buf, len, &s), KITH_OK);
  assert_string_equal(s.reason, "the group is full");
  g_free(buf);
  kith_pack_array(&p, 3);
  kith_pack_uint(&p, SIG_ELSEWHERE);
  kith_pack_uint(&p, NOW_MS);
  kith_pack_nil(&p);
  buf = take(&p, &len);
  assert_int_equal(kith_wire_signal_decode(buf, len, &s), KITH_OK);
  assert_int_equal(s.kind, SIG_ELSEWHERE);
  assert_true(s.since_ms == NOW_MS);
  g_free(buf);
  /* kinds 0 and 5, and REFUSE or ELSEWHERE with 5 elements */
  for (uint64_t kind = 0; kind <= 5; kind++) {
    if (kind == SIG_OFFER || kind == SIG_ANSWER)
      continue;
    buf = signal_payload(kind, 0, &len);
    assert_int_equal(kith_wire_signal_decode(buf, len, &s), KITH_ERR_DECODE);
    g_free(buf);
  }
}

static uint8_t *join_request(const char *name, size_t name_len, size_t *len) {
  kith_pack p;
  uint8_t sig[KITH_SIG_LEN] = {9};
  kith_pack_init(&p);
  kith_pack_array(&p, 4);
  kith_pack_bin(&p, me.pk, 32);
  kith_pack_bin(&p, peer.pk, 32);
  kith_pack_bin(&p, sig, sizeof sig);
  kith_pack_str(&p, name, name_len);
  return take(&p, len);
}

static void join_request_decodes_and_checks_the_name(void **state) {
  kith_wire_join j;
  char long_name[KITH_NAME_MAX + 1];
  size_t len;
  uint8_t *buf = join_request("bob", 3, &len);
  assert_int_equal(kith_wire_join_decode(buf, len, &j), KITH_OK);
  assert_memory_equal(j.gid, me.pk, 32);
  assert_memory_equal(j.invite_pk, peer.pk, 32);
  assert_int_equal(j.sig[0], 9);
  assert_string_equal(j.name, "bob");
  g_free(buf);
  buf = join_request("b\xff", 2, &len); /* not UTF-8 */
  assert_int_equal(kith_wire_join_decode(buf, len, &j), KITH_ERR_DECODE);
  g_free(buf);
  memset(long_name, 'x', sizeof long_name);
  buf = join_request(long_name, sizeof long_name, &len);
  assert_int_equal(kith_wire_join_decode(buf, len, &j), KITH_ERR_DECODE);
  g_free(buf);
}

int main(void) {
  uint8_t seed[KITH_SEED_LEN];
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ping_decodes_with_its_clock),
      cmocka_unit_test(gossip_names_its_group_by_8_or_32_bytes),
      cmocka_unit_test(unknown_type_or_arity_is_type_zero),
      cmocka_unit_test(malformed_frames_are_rejected),
      cmocka_unit_test(addrs_keep_only_well_formed_entries),
      cmocka_unit_test(retired_event_and_have_are_type_zero),
      cmocka_unit_test(addrs_over_the_cap_are_rejected),
      cmocka_unit_test(offer_carries_its_join_request),
      cmocka_unit_test(refusal_and_bad_kinds),
      cmocka_unit_test(join_request_decodes_and_checks_the_name),
      cmocka_unit_test(move_and_path_frames_decode),
  };
  if (sodium_init() < 0)
    return 1;
  memset(seed, 1, sizeof seed);
  if (kith_ident_from_seed(&me, seed) != KITH_OK)
    return 1;
  memset(seed, 2, sizeof seed);
  if (kith_ident_from_seed(&peer, seed) != KITH_OK)
    return 1;
  int failed = cmocka_run_group_tests_name("wire", tests, NULL, NULL);
  kith_ident_clear(&me);
  kith_ident_clear(&peer);
  return failed > 255 ? 255 : failed;
}
