/* kith: signed group events.
 *
 * Wire form (canonical msgpack, arrays only), version 2 (what this node
 * builds):
 *   [version=2, kind uint, author bin32, parents [bin32...], depth uint,
 *    ts_ms uint, body array, sig bin64]
 * The body is the outer body itself (a msgpack array, see group.h), not
 * wrapped in a bin. The group id is not carried: the receiver knows the
 * group from where the bytes came (a gossip frame's group tag, a store
 * row, a join), and the signature covers it:
 *   sig = Ed25519 by author over "kith event v2" || group_id (32 zero
 *         bytes for a create) || raw[0 .. len - 66)
 * so an event valid in one group fails to verify in another.
 * Version 1 (still decoded: stores and vectors written before):
 *   [version=1, group_id bin(0|32), kind, author, parents, depth, ts_ms,
 *    body bin, sig bin64]
 * with group_id empty exactly for a create, sig over the first eight
 * elements re-packed as an 8-element array.
 * id = BLAKE2b-256 of the full encoding, in both versions.
 * depth = 1 + max depth of parents (0 for create). Parents are sorted
 * ascending and distinct. The body is opaque here (see group.h). */
#ifndef KITH_EVENT_H
#define KITH_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "ident.h"

#define KITH_EVENT_V1 1
#define KITH_EVENT_V2 2
#define KITH_EVENT_VERSION KITH_EVENT_V2 /* the newest: kith_event_build's */
#define KITH_EVENT_ID_LEN 32
#define KITH_EVENT_MAX_PARENTS 16
#define KITH_EVENT_MAX_BODY (80 * 1024)
#define KITH_EVENT_MAX (KITH_EVENT_MAX_BODY + 1024)

typedef enum kith_event_kind {
  KITH_EV_CREATE = 1,
  KITH_EV_INVITE = 2,
  KITH_EV_ADD = 3,
  KITH_EV_REMOVE = 4,
  KITH_EV_LEAVE = 5,
  KITH_EV_ROLE = 6,
  KITH_EV_TOPIC = 7,
  KITH_EV_REKEY = 8,
  KITH_EV_MESSAGE = 9,
  KITH_EV_BAN = 10,
  KITH_EV_UNBAN = 11,
  KITH_EV_REVOKE = 12,
  KITH_EV_SETTINGS = 13,
  KITH_EV_MUTE = 14,
  KITH_EV_REACT = 15,
  KITH_EV_EDIT = 16,
  KITH_EV_DELETE = 17,
  KITH_EV_NEED = 18, /* asks for the keys of epochs this member lacks */
  KITH_EV_KEYS = 19, /* gives them */
} kith_event_kind;
#define KITH_EV_KIND_MAX 19

typedef struct kith_event {
  uint32_t version; /* KITH_EVENT_V1 or KITH_EVENT_V2 */
  uint8_t id[KITH_EVENT_ID_LEN];
  uint8_t group_id[32]; /* == id for create */
  uint32_t kind;
  uint8_t author[KITH_ID_LEN];
  size_t n_parents;
  uint8_t parents[KITH_EVENT_MAX_PARENTS][KITH_EVENT_ID_LEN];
  uint64_t depth;
  uint64_t ts_ms;
  uint8_t *body; /* g_malloc'ed copy: the outer body's msgpack bytes */
  size_t body_len;
  uint8_t sig[KITH_SIG_LEN];
  uint8_t *raw; /* g_malloc'ed canonical encoding */
  size_t raw_len;
} kith_event;

/* Decodes and checks raw bytes of an event of the group gid: strict
 * canonical msgpack, field limits, known kind, sorted distinct parents,
 * create has no parents and depth 0, signature valid. gid (borrowed) is
 * the group the bytes came for; a version-2 event other than a create
 * signs it and gets it as its group_id (NULL: such an event is
 * KITH_ERR_DECODE); a version-1 event carries its own group_id, which the
 * group checks. Fills ev (owning copies). Does not check the DAG or the
 * group rules. Errors: KITH_ERR_DECODE, KITH_ERR_SIGNATURE (also: signed
 * for another group), KITH_ERR_LIMIT. On error ev is left cleared. */
KITH_MUST kith_err kith_event_decode(const uint8_t *buf, size_t len,
                                     const uint8_t *gid, kith_event *ev);

/* The same for bytes this node verified before and read back from its
 * own authenticated store: every check but the signature. */
KITH_MUST kith_err kith_event_decode_trusted(const uint8_t *buf, size_t len,
                                             const uint8_t *gid,
                                             kith_event *ev);

/* Builds an event: ev's group_id (ignored for create), kind, parents
 * (sorted here), depth, ts_ms and body (copied) must be set; author is set
 * from me; ev->version 0 builds the current version (KITH_EVENT_VERSION),
 * KITH_EVENT_V1 the old form (for tests and vectors). A version-2 body
 * must be one canonical msgpack array (else KITH_ERR_ARG). Encodes,
 * signs, sets version, raw, sig and id (and group_id for create). Takes
 * no ownership of body. */
KITH_MUST kith_err kith_event_build(kith_event *ev, const kith_ident *me,
                                    const uint8_t *body, size_t body_len);

/* Deep copy. */
KITH_MUST kith_err kith_event_copy(kith_event *dst, const kith_event *src);
void kith_event_clear(kith_event *ev);

/* Short human name of a kind ("message"), "unknown" otherwise. */
const char *kith_event_kind_name(uint32_t kind);

#endif
