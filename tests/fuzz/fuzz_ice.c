/* libFuzzer target: ICE parameters from an offer or answer
 * (kith_ice_params_decode). What decodes must be valid by the rules
 * ice.h lists, re-encode (also cut to a budget) and decode again to the
 * same parameters. */
#include <stdlib.h>

#include "fuzz_common.h"
#include "net/ice.h"

static int same_params(const kith_ice_params *a, const kith_ice_params *b,
                       size_t n) {
  if (strcmp(a->ufrag, b->ufrag) != 0 || strcmp(a->pwd, b->pwd) != 0)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (strcmp(a->cands[i].foundation, b->cands[i].foundation) != 0 ||
        a->cands[i].priority != b->cands[i].priority ||
        strcmp(a->cands[i].addr, b->cands[i].addr) != 0 ||
        a->cands[i].port != b->cands[i].port ||
        a->cands[i].type != b->cands[i].type)
      return 0;
  return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  kith_ice_params p, back;
  uint8_t *buf = NULL;
  size_t len = 0;

  if (kith_ice_params_decode(data, size, &p) != KITH_OK)
    return 0;
  if (p.n_cands > KITH_ICE_MAX_CANDS)
    abort();
  for (size_t i = 0; i < p.n_cands; i++)
    if (p.cands[i].port == 0 || p.cands[i].priority == 0 ||
        p.cands[i].type > KITH_CAND_RELAY)
      abort();
  if (kith_ice_params_encode(&p, &buf, &len) != KITH_OK ||
      kith_ice_params_decode(buf, len, &back) != KITH_OK ||
      back.n_cands != p.n_cands || !same_params(&p, &back, p.n_cands))
    abort();
  g_free(buf);
  /* Cut to half the bytes: what is kept still decodes. */
  if (kith_ice_params_encode_max(&p, len / 2, &buf, &len) == KITH_OK &&
      (kith_ice_params_decode(buf, len, &back) != KITH_OK ||
       back.n_cands > p.n_cands))
    abort();
  g_free(buf);
  return 0;
}
