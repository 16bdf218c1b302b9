/* libFuzzer target for net/stun.c: any datagram that reaches the signal
 * port is classified; what passes as a binding request is answered (the
 * answer must be a binding response no larger than 32 bytes) and what
 * passes as a response is read (its mapped address must be IPv4).
 * Seeds (corpus/stun): binding requests with and without the magic cookie,
 * as kith_stun_request and libnice send them, and their answers. */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "net/stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t out[KITH_STUN_MAX], id[KITH_STUN_ID_LEN];
  struct sockaddr_in src, mapped;
  memset(&src, 0, sizeof src);
  src.sin_family = AF_INET;
  src.sin_port = htons(40000);
  src.sin_addr.s_addr = htonl(0xc0000207); /* 192.0.2.7 */
  kith_stun_kind k = kith_stun_classify(data, size);
  if (k == KITH_STUN_REQUEST) {
    size_t n = kith_stun_answer(data, size, &src, out, sizeof out);
    if (n != KITH_STUN_ANSWER_LEN ||
        kith_stun_classify(out, n) != KITH_STUN_RESPONSE)
      __builtin_trap();
  }
  if (kith_stun_read_response(data, size, id, &mapped) == KITH_OK &&
      (k != KITH_STUN_RESPONSE || mapped.sin_family != AF_INET))
    __builtin_trap();
  return 0;
}
