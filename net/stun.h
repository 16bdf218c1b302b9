/* kith: STUN binding messages on the signal port (sans-I/O), built and
 * read with libnice's STUN library (stun/stunmessage.h).
 *
 * A node run with --relay answers binding requests (RFC 5389, and the
 * cookie-less RFC 3489 requests libnice sends when it gathers
 * server-reflexive candidates) from its friends; every node sends its own
 * binding requests to its relay friends and STUN servers to learn its
 * public address (protocol.md 8.7). IPv4 only, like the signal port. */
#ifndef KITH_STUN_H
#define KITH_STUN_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"

#define KITH_STUN_ID_LEN 16 /* transaction id, with the cookie if any */
#define KITH_STUN_HEADER 20
/* The answer to a binding request from an IPv4 address: the header and
 * one (XOR-)MAPPED-ADDRESS attribute. */
#define KITH_STUN_ANSWER_LEN 32
/* kith's own requests are padded (a SOFTWARE attribute) to this size, so
 * that an answer never outgrows them. */
#define KITH_STUN_REQUEST_LEN 64
#define KITH_STUN_MAX 548 /* the largest message read (RFC 5389 7.1) */

typedef enum kith_stun_kind {
  KITH_STUN_NOT = 0,        /* not a STUN message: a kith datagram */
  KITH_STUN_REQUEST = 1,    /* a binding request */
  KITH_STUN_RESPONSE = 2,   /* a binding success response */
  KITH_STUN_OTHER_STUN = 3, /* another STUN message: dropped */
} kith_stun_kind;

/* What buf holds: a sealed kith datagram never parses as STUN (a length
 * field that matches, a zero top bits and a binding method are needed,
 * and anything that passes for STUN but is not a binding request or
 * success response is KITH_STUN_OTHER_STUN only with the magic cookie). */
kith_stun_kind kith_stun_classify(const uint8_t *buf, size_t len);

/* Builds the success response to the binding request req (classified as
 * KITH_STUN_REQUEST) from src: the request's transaction id and
 * XOR-MAPPED-ADDRESS (RFC 5389, request with the cookie) or MAPPED-ADDRESS
 * (RFC 3489, without), KITH_STUN_ANSWER_LEN bytes written to out (cap at
 * least that). Returns the length, or 0 if req is not a binding request. */
size_t kith_stun_answer(const uint8_t *req, size_t len,
                        const struct sockaddr_in *src, uint8_t *out,
                        size_t cap);

/* Builds a binding request (RFC 5389) of KITH_STUN_REQUEST_LEN bytes with a
 * fresh random transaction id, copied to id. out holds at least
 * KITH_STUN_REQUEST_LEN bytes. */
void kith_stun_request(uint8_t *out, uint8_t id[KITH_STUN_ID_LEN]);

/* Reads a binding success response: its transaction id and the mapped
 * IPv4 address (XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS). KITH_ERR_DECODE
 * if it is not one or carries no IPv4 mapped address. */
KITH_MUST kith_err kith_stun_read_response(const uint8_t *buf, size_t len,
                                           uint8_t id[KITH_STUN_ID_LEN],
                                           struct sockaddr_in *mapped);

#endif
