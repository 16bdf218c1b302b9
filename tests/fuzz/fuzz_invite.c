/* libFuzzer target for core/invite.c: decoding any text must not crash or
 * leak, and an accepted code must survive encode/decode unchanged. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/invite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same_invite(const kith_invite *a, const kith_invite *b) {
  if (memcmp(a->group_id, b->group_id, 32) != 0 ||
      memcmp(a->secret, b->secret, 32) != 0 ||
      memcmp(a->inviter, b->inviter, KITH_ID_LEN) != 0 ||
      a->n_addrs != b->n_addrs)
    return 0;
  for (size_t i = 0; i < a->n_addrs; i++)
    if (strcmp(a->addrs[i].host, b->addrs[i].host) != 0 ||
        a->addrs[i].port != b->addrs[i].port)
      return 0;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text;
  kith_invite inv, back;
  char code[KITH_INVITE_CODE_MAX + 1];
  if (size > 4 * KITH_INVITE_CODE_MAX)
    return 0;
  text = malloc(size + 1);
  if (text == NULL)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  if (kith_invite_decode(text, &inv) == KITH_OK) {
    if (kith_invite_encode(&inv, code, sizeof code) != KITH_OK ||
        kith_invite_decode(code, &back) != KITH_OK || !same_invite(&inv, &back))
      abort();
  }
  free(text);
  return 0;
}
