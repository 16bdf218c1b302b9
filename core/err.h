/* kith: one error enum for the whole project.
 *
 * 0 is success; negative values are grouped by cause. kith_strerror()
 * returns a static English phrase for each (never NULL). */
#ifndef KITH_ERR_H
#define KITH_ERR_H

#define KITH_MUST __attribute__((warn_unused_result))

typedef enum kith_err {
  KITH_OK = 0,
  /* bad argument (the caller's fault) */
  KITH_ERR_ARG = -1,
  KITH_ERR_NOT_FOUND = -2,
  KITH_ERR_EXISTS = -3,
  KITH_ERR_AMBIGUOUS = -4,
  /* bad state */
  KITH_ERR_STATE = -10,
  KITH_ERR_NOT_MEMBER = -11,
  KITH_ERR_FORBIDDEN = -12,
  KITH_ERR_BUSY = -13,
  KITH_ERR_REKEY = -14, /* done, but the rekey it owes is not made yet */
  /* resources */
  KITH_ERR_NOMEM = -20,
  KITH_ERR_LIMIT = -21,
  /* local I/O */
  KITH_ERR_IO = -30,
  KITH_ERR_FULL = -31, /* the disk (or the file system) is full */
  /* crypto */
  KITH_ERR_CRYPTO = -40,
  KITH_ERR_SIGNATURE = -41,
  /* protocol: what peers send */
  KITH_ERR_DECODE = -50,    /* malformed or non-canonical bytes */
  KITH_ERR_PROTOCOL = -51,  /* well-formed but breaks a rule */
  KITH_ERR_MISSING = -52,   /* refers to something we do not have yet */
  KITH_ERR_DUPLICATE = -53, /* already have it (idempotent no-op) */
  /* invite codes */
  KITH_ERR_CHECKSUM = -60,
  KITH_ERR_EXPIRED = -61,
  KITH_ERR_USED_UP = -62,
  KITH_ERR_TIMEOUT = -70,
} kith_err;

/* Static description of err; never NULL, unknown codes say so. */
const char *kith_strerror(int err);

#endif
