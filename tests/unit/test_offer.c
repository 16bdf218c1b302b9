/* Unit tests for the rule of protocol.md 8.4 on re-sent offers: an offer
 * that carries the ICE ufrag of the offer a link answers is answered again
 * while that link is connecting (the answer may have been lost), and
 * ignored while the answer is still being gathered or once the link is
 * up. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "net/node_int.h"

static node_peer answering(peer_state st) {
  node_peer p;
  memset(&p, 0, sizeof p);
  p.offerer = 0;
  p.state = st;
  strcpy(p.remote.ufrag, "AbCd");
  return p;
}

static void resent_offer_is_answered_again_until_the_link_is_up(void **state) {
  node_peer p = answering(PEER_CONNECTING);
  assert_true(peer_is_same_offer(&p, "AbCd"));
  assert_true(peer_answers_again(&p));
  p.state = PEER_HANDSHAKE;
  assert_true(peer_answers_again(&p));
  p.state = PEER_UP;
  assert_false(peer_answers_again(&p));
  p.state = PEER_GATHERING;
  assert_false(peer_answers_again(&p));
  (void)state;
}

static void other_ufrag_or_own_offer_is_not_a_resend(void **state) {
  node_peer p = answering(PEER_CONNECTING);
  assert_false(peer_is_same_offer(&p, "AbCe"));
  assert_false(peer_is_same_offer(&p, "AbC"));
  p.offerer = 1; /* a crossing offer: handled by the crossing rule */
  assert_false(peer_is_same_offer(&p, "AbCd"));
  (void)state;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(resent_offer_is_answered_again_until_the_link_is_up),
      cmocka_unit_test(other_ufrag_or_own_offer_is_not_a_resend),
  };
  int failed = cmocka_run_group_tests_name("offer", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
