#include "err.h"

const char *kith_strerror(int err) {
  switch ((kith_err)err) {
  case KITH_OK:
    return "success";
  case KITH_ERR_ARG:
    return "invalid argument";
  case KITH_ERR_NOT_FOUND:
    return "not found";
  case KITH_ERR_EXISTS:
    return "already exists";
  case KITH_ERR_AMBIGUOUS:
    return "ambiguous name or prefix";
  case KITH_ERR_STATE:
    return "invalid state";
  case KITH_ERR_NOT_MEMBER:
    return "not a member of the group";
  case KITH_ERR_FORBIDDEN:
    return "not allowed";
  case KITH_ERR_BUSY:
    return "busy: in use by another process";
  case KITH_ERR_REKEY:
    return "done, but the rekey it needs could not be made yet (retrying)";
  case KITH_ERR_NOMEM:
    return "out of memory";
  case KITH_ERR_LIMIT:
    return "limit exceeded";
  case KITH_ERR_IO:
    return "input/output error";
  case KITH_ERR_FULL:
    return "disk full";
  case KITH_ERR_CRYPTO:
    return "cryptographic failure";
  case KITH_ERR_SIGNATURE:
    return "bad signature";
  case KITH_ERR_DECODE:
    return "malformed or non-canonical data";
  case KITH_ERR_PROTOCOL:
    return "protocol violation";
  case KITH_ERR_MISSING:
    return "refers to unknown data";
  case KITH_ERR_DUPLICATE:
    return "duplicate";
  case KITH_ERR_CHECKSUM:
    return "checksum mismatch";
  case KITH_ERR_EXPIRED:
    return "expired";
  case KITH_ERR_USED_UP:
    return "used up";
  case KITH_ERR_TIMEOUT:
    return "timed out";
  }
  return "unknown error";
}
