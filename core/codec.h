/* kith: strict msgpack decoding and small packing helpers.
 *
 * Every byte string that comes from a peer or from disk is decoded through
 * kith_codec_unpack(): it pre-scans the bytes (depth, declared lengths,
 * element counts) before msgpack-c sees them, rejects trailing bytes and
 * rejects anything that is not in canonical form (re-encoding gives other
 * bytes). kith wire formats use only nil, bool, int, str, bin and array:
 * maps, floats and ext types are rejected. */
#ifndef KITH_CODEC_H
#define KITH_CODEC_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define KITH_CODEC_MAX_DEPTH 8        /* nesting of arrays in any kith format */
#define KITH_CODEC_MAX_LEN (1u << 20) /* largest buffer ever decoded */

/* Checks buf without allocating: well-formed msgpack of exactly one object,
 * nesting <= max_depth, each declared str/bin/array length fits in the bytes
 * left, total declared elements <= len, only allowed types.
 * Returns KITH_OK or KITH_ERR_DECODE (KITH_ERR_LIMIT if len too large). */
#define KITH_CODEC_ALLOW_MAPS 1u /* flag: accept maps (control socket only) */
KITH_MUST kith_err kith_codec_prescan(const uint8_t *buf, size_t len,
                                      unsigned max_depth, unsigned flags);

/* Pre-scan, unpack into out (caller calls msgpack_unpacked_init before and
 * msgpack_unpacked_destroy after, also on error), require no trailing bytes
 * and canonical encoding. out's objects borrow from out's zone. */
KITH_MUST kith_err kith_codec_unpack(const uint8_t *buf, size_t len,
                                     msgpack_unpacked *out);

/* Like kith_codec_unpack but allows maps and does not require canonical
 * form: for the local control socket only, never for peer or disk bytes. */
KITH_MUST kith_err kith_codec_unpack_loose(const uint8_t *buf, size_t len,
                                           msgpack_unpacked *out);

/* Field readers: return KITH_ERR_DECODE on a wrong type or size. */
KITH_MUST kith_err kith_codec_array(const msgpack_object *o, uint32_t n,
                                    const msgpack_object **items);
KITH_MUST kith_err kith_codec_uint(const msgpack_object *o, uint64_t max,
                                   uint64_t *v);
/* bin of exactly n bytes, copied to out */
KITH_MUST kith_err kith_codec_bin_fixed(const msgpack_object *o, void *out,
                                        size_t n);
/* bin of at most max bytes; *p borrows from the object */
KITH_MUST kith_err kith_codec_bin(const msgpack_object *o, size_t max,
                                  const uint8_t **p, size_t *len);
/* str of at most max bytes, valid UTF-8 without NUL; *p borrows */
KITH_MUST kith_err kith_codec_str(const msgpack_object *o, size_t max,
                                  const char **p, size_t *len);
/* same, copied to a new NUL-terminated g_malloc'ed string in *out */
KITH_MUST kith_err kith_codec_strdup(const msgpack_object *o, size_t max,
                                     char **out);

/* Packing: a growable buffer plus packer in one. */
typedef struct kith_pack {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  int failed; /* set once any pack call failed (allocation) */
} kith_pack;

void kith_pack_init(kith_pack *p);
void kith_pack_clear(kith_pack *p);
void kith_pack_array(kith_pack *p, uint32_t n);
void kith_pack_uint(kith_pack *p, uint64_t v);
void kith_pack_bin(kith_pack *p, const void *data, size_t len);
void kith_pack_str(kith_pack *p, const char *s, size_t len);
void kith_pack_cstr(kith_pack *p, const char *s);
void kith_pack_nil(kith_pack *p);
void kith_pack_bool(kith_pack *p, int v);
/* Moves the packed bytes out (g_malloc'ed, caller frees with g_free) and
 * resets p. Returns KITH_ERR_NOMEM if any pack call failed. */
KITH_MUST kith_err kith_pack_take(kith_pack *p, uint8_t **out, size_t *len);

#endif
