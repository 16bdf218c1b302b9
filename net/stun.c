#include "stun.h"

#include <sodium.h>
#include <string.h>
#include <stun/stunmessage.h>

#define TYPE_BINDING_REQUEST 0x0001
#define TYPE_BINDING_SUCCESS 0x0101
#define COOKIE 0x2112A442u
#define SOFTWARE_TEXT "kith"

static uint16_t be16(const uint8_t *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

static int has_cookie(const uint8_t *buf) {
  uint32_t c = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 |
               (uint32_t)buf[6] << 8 | buf[7];
  return c == COOKIE;
}

/* A read-only StunMessage over buf (the library only reads through it). */
static StunMessage view(const uint8_t *buf, size_t len) {
  StunMessage m;
  memset(&m, 0, sizeof m);
  m.buffer = (uint8_t *)buf;
  m.buffer_len = len;
  return m;
}

kith_stun_kind kith_stun_classify(const uint8_t *buf, size_t len) {
  if (buf == NULL || len < KITH_STUN_HEADER || len > KITH_STUN_MAX ||
      len % 4 != 0 || (buf[0] & 0xc0) != 0 ||
      (size_t)be16(buf + 2) + KITH_STUN_HEADER != len ||
      stun_message_validate_buffer_length(buf, len, true) != (int)len)
    return KITH_STUN_NOT;
  switch (be16(buf)) {
  case TYPE_BINDING_REQUEST:
    return KITH_STUN_REQUEST;
  case TYPE_BINDING_SUCCESS:
    return KITH_STUN_RESPONSE;
  default:
    return has_cookie(buf) ? KITH_STUN_OTHER_STUN : KITH_STUN_NOT;
  }
}

size_t kith_stun_answer(const uint8_t *req, size_t len,
                        const struct sockaddr_in *src, uint8_t *out,
                        size_t cap) {
  if (src == NULL || out == NULL || cap < KITH_STUN_ANSWER_LEN ||
      kith_stun_classify(req, len) != KITH_STUN_REQUEST)
    return 0;
  StunMessage q = view(req, len), r = view(out, KITH_STUN_ANSWER_LEN);
  StunTransactionId id;
  stun_message_id(&q, id);
  if (!stun_message_init(&r, STUN_RESPONSE, STUN_BINDING, id))
    return 0;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  memcpy(&ss, src, sizeof *src);
  StunMessageReturn rc =
      has_cookie(req)
          ? stun_message_append_xor_addr(&r, STUN_ATTRIBUTE_XOR_MAPPED_ADDRESS,
                                         &ss, sizeof *src)
          : stun_message_append_addr(&r, STUN_ATTRIBUTE_MAPPED_ADDRESS,
                                     (const struct sockaddr *)src, sizeof *src);
  if (rc != STUN_MESSAGE_RETURN_SUCCESS)
    return 0;
  return stun_message_length(&r);
}

void kith_stun_request(uint8_t *out, uint8_t id[KITH_STUN_ID_LEN]) {
  char pad[KITH_STUN_REQUEST_LEN];
  memset(pad, ' ', sizeof pad);
  memcpy(pad, SOFTWARE_TEXT, sizeof SOFTWARE_TEXT - 1);
  StunMessage m = view(out, KITH_STUN_REQUEST_LEN);
  id[0] = COOKIE >> 24;
  id[1] = (COOKIE >> 16) & 0xff;
  id[2] = (COOKIE >> 8) & 0xff;
  id[3] = COOKIE & 0xff;
  randombytes_buf(id + 4, KITH_STUN_ID_LEN - 4);
  (void)stun_message_init(&m, STUN_REQUEST, STUN_BINDING, id);
  /* SOFTWARE "kith" and spaces up to the full size: an answer (32
   * bytes) then never outgrows the request. */
  size_t text = KITH_STUN_REQUEST_LEN - KITH_STUN_HEADER - 4;
  (void)stun_message_append_bytes(&m, STUN_ATTRIBUTE_SOFTWARE, pad, text);
}

kith_err kith_stun_read_response(const uint8_t *buf, size_t len,
                                 uint8_t id[KITH_STUN_ID_LEN],
                                 struct sockaddr_in *mapped) {
  if (id == NULL || mapped == NULL ||
      kith_stun_classify(buf, len) != KITH_STUN_RESPONSE)
    return KITH_ERR_DECODE;
  StunMessage m = view(buf, len);
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  memset(&ss, 0, sizeof ss);
  if (stun_message_find_xor_addr(&m, STUN_ATTRIBUTE_XOR_MAPPED_ADDRESS, &ss,
                                 &sl) != STUN_MESSAGE_RETURN_SUCCESS) {
    sl = sizeof ss;
    if (stun_message_find_addr(&m, STUN_ATTRIBUTE_MAPPED_ADDRESS, &ss, &sl) !=
        STUN_MESSAGE_RETURN_SUCCESS)
      return KITH_ERR_DECODE;
  }
  if (ss.ss_family != AF_INET)
    return KITH_ERR_DECODE;
  memcpy(mapped, &ss, sizeof *mapped);
  stun_message_id(&m, id);
  return KITH_OK;
}
