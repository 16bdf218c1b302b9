/* kith: one group: its event DAG, derived state, keys, and event bodies.
 *
 * State is a pure function of the set of accepted events, applied in the
 * order (depth, id). Two replicas with the same events have the same
 * kith_group_state_hash. Events whose parents are missing, or that arrive
 * before this node holds the group's keys, are held (bounded) and
 * re-examined when what they wait for arrives.
 *
 * Bodies (the bin in the event) are msgpack:
 *   non-message kinds: [epoch uint, sealed bin, extra bin|nil]
 *       sealed = kith_gcrypto_seal(meta_key(E_epoch), ad, inner)
 *   message:           [epoch uint, n uint, sealed bin]
 *       sealed = kith_gcrypto_seal(message key n of author's chain, ad, inner)
 *   ad = "kith body v1" || kind (1 byte) || author (32) || group id (32,
 *        zero for create)
 * Inner plaintexts:
 *   create:  [name str, history uint]                (extra nil)
 *   invite:  [invite_pk bin32, uses uint, expires_ms uint] (extra nil)
 *   add:     [member bin32, name str, invite_pk bin32, join_sig bin64]
 *            extra = sealed box to member of [[epoch uint, secret bin32]...]
 *   message: [text str]
 * Rules (checked on receipt, against the state derived so far):
 *   create is the root, author is owner; invite/message by members only;
 *   add: invite exists, not expired at the add's ts, uses left, join_sig
 *   valid, member not yet a member. */
#ifndef KITH_GROUP_H
#define KITH_GROUP_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "event.h"
#include "ident.h"

#define KITH_NAME_MAX 64          /* bytes of a group or member name */
#define KITH_TEXT_MAX (64 * 1024) /* message text: at most 64 KiB - 1 */
#define KITH_GROUP_MAX_MEMBERS 1000
#define KITH_GROUP_MAX_HELD 4096 /* events waiting for parents or keys */
#define KITH_INVITE_MAX_USES 1000

typedef enum kith_role {
  KITH_ROLE_MEMBER = 0,
  KITH_ROLE_ADMIN = 1,
  KITH_ROLE_OWNER = 2,
} kith_role;

typedef enum kith_history {
  KITH_HISTORY_SHARED = 0,
  KITH_HISTORY_JOINED = 1,
} kith_history;

typedef struct kith_member {
  uint8_t id[KITH_ID_LEN];
  char *name; /* NUL-terminated, owned by the group */
  kith_role role;
} kith_member;

/* One event accepted by kith_group_receive (or a local compose). */
typedef struct kith_accepted {
  kith_event ev; /* owned */
  char *text;    /* message plaintext (g_malloc, NUL-terminated) or NULL */
  size_t text_len;
} kith_accepted;
void kith_accepted_free(kith_accepted *a);

typedef struct kith_group kith_group;

/* A replica of group gid for identity me (borrowed; must outlive g). */
kith_group *kith_group_new(const uint8_t gid[32], const kith_ident *me);
void kith_group_free(kith_group *g);

/* Gives the group an epoch secret (from the store, on restart). */
void kith_group_add_secret(kith_group *g, uint64_t epoch,
                           const uint8_t secret[32]);
/* Number of epoch secrets known, and each by index (for persisting). */
size_t kith_group_n_secrets(const kith_group *g);
void kith_group_secret_at(const kith_group *g, size_t i, uint64_t *epoch,
                          uint8_t secret[32]);

/* Makes a new group: creates E_0 and the signed create event. Returns a
 * new group (owned by caller) with the create already applied; *out gets
 * the accepted create (caller frees with kith_accepted_free). */
KITH_MUST kith_err kith_group_create(const kith_ident *me, const char *name,
                                     kith_history history, uint64_t now_ms,
                                     kith_group **g_out, kith_accepted **out);

/* Composes, signs and applies a local event. *out gets the accepted event.
 * Errors: KITH_ERR_NOT_MEMBER, KITH_ERR_ARG (empty or too long text),
 * for add: KITH_ERR_NOT_FOUND (no such invite), KITH_ERR_EXPIRED,
 * KITH_ERR_USED_UP, KITH_ERR_SIGNATURE (bad join proof), KITH_ERR_EXISTS
 * (already a member). */
KITH_MUST kith_err kith_group_send(kith_group *g, const char *text, size_t len,
                                   uint64_t now_ms, kith_accepted **out);
KITH_MUST kith_err kith_group_invite(kith_group *g, uint32_t uses,
                                     uint64_t expires_ms, uint64_t now_ms,
                                     uint8_t secret_out[32],
                                     kith_accepted **out);
KITH_MUST kith_err kith_group_admit(kith_group *g, const uint8_t member[32],
                                    const char *name,
                                    const uint8_t invite_pk[32],
                                    const uint8_t join_sig[KITH_SIG_LEN],
                                    uint64_t now_ms, kith_accepted **out);
/* Would an admission with this invite succeed now? Same errors as admit. */
KITH_MUST kith_err kith_group_check_invite(const kith_group *g,
                                           const uint8_t invite_pk[32],
                                           uint64_t now_ms);

/* Receives an event's raw bytes from a peer or from the store. Every event
 * accepted by this call (this one, and held ones it released, in apply
 * order) is appended to accepted (GPtrArray of kith_accepted*, caller
 * frees each). Returns KITH_OK (accepted), KITH_ERR_DUPLICATE (already
 * have it), KITH_ERR_MISSING (held: parents or keys missing), or the reason
 * it was rejected (KITH_ERR_DECODE, KITH_ERR_SIGNATURE, KITH_ERR_PROTOCOL,
 * KITH_ERR_NOT_MEMBER, KITH_ERR_FORBIDDEN, KITH_ERR_CRYPTO, KITH_ERR_LIMIT).
 * Rejected events leave the state unchanged. */
KITH_MUST kith_err kith_group_receive(kith_group *g, const uint8_t *raw,
                                      size_t len, uint64_t now_ms,
                                      GPtrArray *accepted);

/* Derived state (all borrowed until the next call that changes g). */
const uint8_t *kith_group_id(const kith_group *g);
int kith_group_is_ready(const kith_group *g); /* create applied, have keys */
const char *kith_group_name(const kith_group *g); /* "" until known */
const char *kith_group_topic(const kith_group *g);
kith_history kith_group_history(const kith_group *g);
uint64_t kith_group_epoch(const kith_group *g);
size_t kith_group_n_members(const kith_group *g);
const kith_member *kith_group_member_at(const kith_group *g, size_t i);
const kith_member *kith_group_find_member(const kith_group *g,
                                          const uint8_t id[32]);
int kith_group_is_member(const kith_group *g, const uint8_t id[32]);
size_t kith_group_n_events(const kith_group *g); /* accepted events */
size_t kith_group_n_held(const kith_group *g);
int kith_group_has_event(const kith_group *g, const uint8_t id[32]);
/* Borrowed event by id, NULL if not accepted. */
const kith_event *kith_group_event(const kith_group *g, const uint8_t id[32]);
/* All accepted event ids in apply order (depth, id): appends 32-byte
 * blocks to ids. */
void kith_group_event_ids(const kith_group *g, GByteArray *ids);
/* BLAKE2b-256 of the canonical encoding of the derived state: name, topic,
 * history, epoch, members (sorted), invites (sorted), heads (sorted). */
void kith_group_state_hash(const kith_group *g, uint8_t out[32]);

#endif
