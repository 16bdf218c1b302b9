/* libFuzzer target: the bytes a control-socket client sends, cut into
 * messages by the scanner and decoded as requests exactly as the server
 * does (kith_control_scan, kith_control_decode_request). A request that
 * decodes has a method name of at most KITH_CONTROL_MAX_METHOD bytes and
 * an array of parameters. */
#include <stdlib.h>

#include "fuzz_common.h"
#include "net/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t off = 0;

  while (off < size) {
    kith_control_scanner sc;
    kith_control_scan_init(&sc);
    long n =
        kith_control_scan(&sc, data + off, size - off, KITH_CONTROL_MAX_MSG);
    if (n <= 0)
      return 0;
    if ((size_t)n > size - off)
      abort(); /* an object longer than the bytes it came in */
    msgpack_unpacked u;
    uint64_t msgid = 0;
    char method[KITH_CONTROL_MAX_METHOD + 1];
    const msgpack_object *params = NULL;
    msgpack_unpacked_init(&u);
    kith_err err = kith_control_decode_request(data + off, (size_t)n, &u,
                                               &msgid, method, &params);
    if (err == KITH_OK && (params->type != MSGPACK_OBJECT_ARRAY ||
                           strlen(method) > KITH_CONTROL_MAX_METHOD))
      abort();
    msgpack_unpacked_destroy(&u);
    if (err != KITH_OK)
      return 0;
    off += (size_t)n;
  }
  return 0;
}
