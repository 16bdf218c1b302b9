/* Unit tests for net/stun: binding requests and answers on the signal
 * port, against libnice's own STUN client and RFC 5769's sample values. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <sodium.h>
#include <string.h>
#include <stun/stunagent.h>
#include <stun/usages/bind.h>

#include "net/stun.h"

static struct sockaddr_in addr4(const char *ip, uint16_t port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
  return a;
}

static void own_request_is_answered_no_larger(void **state) {
  uint8_t req[KITH_STUN_REQUEST_LEN], id[KITH_STUN_ID_LEN],
      back[KITH_STUN_ID_LEN], out[KITH_STUN_MAX];
  kith_stun_request(req, id);
  assert_int_equal(kith_stun_classify(req, sizeof req), KITH_STUN_REQUEST);
  struct sockaddr_in src = addr4("198.51.100.7", 40000), mapped;
  size_t n = kith_stun_answer(req, sizeof req, &src, out, sizeof out);
  assert_int_equal(n, KITH_STUN_ANSWER_LEN);
  assert_true(n <= sizeof req);
  assert_int_equal(kith_stun_classify(out, n), KITH_STUN_RESPONSE);
  assert_int_equal(kith_stun_read_response(out, n, back, &mapped), KITH_OK);
  assert_memory_equal(back, id, sizeof id);
  assert_int_equal(mapped.sin_addr.s_addr, src.sin_addr.s_addr);
  assert_int_equal(mapped.sin_port, src.sin_port);
  /* a response is not answered */
  assert_int_equal(kith_stun_answer(out, n, &src, out, sizeof out), 0);
  (void)state;
}

/* libnice gathers server-reflexive candidates with bare RFC 3489 requests
 * (20 bytes, no cookie) and reads the answer with stun_usage_bind_process:
 * the answer must satisfy it. */
static void libnice_gathering_request_gets_a_usable_answer(void **state) {
  StunAgent agent;
  StunMessage msg, resp;
  uint8_t req[64], out[KITH_STUN_MAX];
  stun_agent_init(&agent, STUN_ALL_KNOWN_ATTRIBUTES, STUN_COMPATIBILITY_RFC3489,
                  0);
  size_t len = stun_usage_bind_create(&agent, &msg, req, sizeof req);
  assert_int_equal(len, 20);
  assert_int_equal(kith_stun_classify(req, len), KITH_STUN_REQUEST);
  struct sockaddr_in src = addr4("100.64.0.11", 51234);
  size_t n = kith_stun_answer(req, len, &src, out, sizeof out);
  assert_int_equal(n, KITH_STUN_ANSWER_LEN);
  assert_int_equal(stun_agent_validate(&agent, &resp, out, n, NULL, NULL),
                   STUN_VALIDATION_SUCCESS);
  struct sockaddr_storage got, alt;
  socklen_t gl = sizeof got, al = sizeof alt;
  assert_int_equal(stun_usage_bind_process(&resp, (struct sockaddr *)&got, &gl,
                                           (struct sockaddr *)&alt, &al),
                   STUN_USAGE_BIND_RETURN_SUCCESS);
  const struct sockaddr_in *g = (const struct sockaddr_in *)&got;
  assert_int_equal(g->sin_addr.s_addr, src.sin_addr.s_addr);
  assert_int_equal(g->sin_port, src.sin_port);
  (void)state;
}

/* RFC 5769 2.2: transaction id b7e7a701bc34d686fa87dfae, mapped
 * 192.0.2.1:32853 (here without MESSAGE-INTEGRITY and FINGERPRINT). */
static void rfc5769_sample_response_reads(void **state) {
  static const uint8_t resp[] = {
      0x01, 0x01, 0x00, 0x1c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01,
      0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b,
      't',  'e',  's',  't',  ' ',  'v',  'e',  'c',  't',  'o',  'r',  ' ',
      0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43};
  uint8_t id[KITH_STUN_ID_LEN];
  struct sockaddr_in mapped;
  assert_int_equal(kith_stun_read_response(resp, sizeof resp, id, &mapped),
                   KITH_OK);
  assert_int_equal(ntohs(mapped.sin_port), 32853);
  assert_int_equal(mapped.sin_addr.s_addr,
                   addr4("192.0.2.1", 1).sin_addr.s_addr);
  assert_int_equal(id[4], 0xb7);
  assert_int_equal(id[15], 0xae);
  (void)state;
}

static void kith_datagrams_and_junk_are_not_stun(void **state) {
  uint8_t buf[1400];
  for (int i = 0; i < 2000; i++) {
    size_t len = 49 + (size_t)randombytes_uniform(1351);
    randombytes_buf(buf, len);
    assert_int_equal(kith_stun_classify(buf, len), KITH_STUN_NOT);
  }
  uint8_t req[KITH_STUN_REQUEST_LEN], id[KITH_STUN_ID_LEN];
  kith_stun_request(req, id);
  assert_int_equal(kith_stun_classify(req, sizeof req - 4), KITH_STUN_NOT);
  req[3] ^= 4; /* length field off by 4 */
  assert_int_equal(kith_stun_classify(req, sizeof req), KITH_STUN_NOT);
  req[3] ^= 4;
  req[1] = 0x11; /* an indication */
  assert_int_equal(kith_stun_classify(req, sizeof req), KITH_STUN_OTHER_STUN);
  struct sockaddr_in src = addr4("192.0.2.9", 9), mapped;
  uint8_t out[KITH_STUN_MAX];
  assert_int_equal(kith_stun_answer(req, sizeof req, &src, out, sizeof out), 0);
  assert_int_equal(kith_stun_read_response(req, sizeof req, id, &mapped),
                   KITH_ERR_DECODE);
  (void)state;
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(own_request_is_answered_no_larger),
      cmocka_unit_test(libnice_gathering_request_gets_a_usable_answer),
      cmocka_unit_test(rfc5769_sample_response_reads),
      cmocka_unit_test(kith_datagrams_and_junk_are_not_stun),
  };
  int failed = cmocka_run_group_tests_name("stun", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
