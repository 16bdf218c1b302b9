/* libFuzzer target: bytes a control-socket client sends, cut into messages
 * by the scanner and parsed as requests exactly as the server does.
 * Includes control.c to reach its static request parser. */
#include "net/control.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t off = 0;
  while (off < size) {
    kith_control_scanner sc;
    kith_control_scan_init(&sc);
    long n =
        kith_control_scan(&sc, data + off, size - off, KITH_CONTROL_MAX_MSG);
    if (n <= 0)
      return 0;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    uint64_t msgid = 0;
    char name[CONTROL_MAX_METHOD + 1];
    const msgpack_object *params = NULL;
    int bad = kith_codec_unpack_loose(data + off, (size_t)n, &u) != KITH_OK ||
              parse_request(&u.data, &msgid, name, &params) != KITH_OK;
    if (!bad && (params->type != MSGPACK_OBJECT_ARRAY || strlen(name) > 64))
      __builtin_trap();
    msgpack_unpacked_destroy(&u);
    if (bad)
      return 0;
    off += (size_t)n;
  }
  return 0;
}
