/* kith: one group: its event DAG, derived state, keys, and event bodies.
 *
 * State is a pure function of the set of accepted events, applied in the
 * order (depth, id). Two replicas with the same events have the same
 * kith_group_state_hash. Events whose parents are missing, or that arrive
 * before this node holds the group's keys, are held (bounded) and
 * re-examined when what they wait for arrives. The concurrency rules are
 * written at the top of group_state.c and in docs/security.md.
 *
 * Epochs are named by epoch ids (kith_gcrypto_epoch_id of the meta key).
 * Bodies (the bin in the event) are msgpack:
 *   non-message kinds: [epoch uint, sealed bin, extra bin|nil]
 *       sealed = kith_gcrypto_seal(meta_key(E_epoch), ad, inner)
 *   message:           [epoch uint, n uint, sealed bin]
 *       sealed = kith_gcrypto_seal(message key n of author's chain, ad, inner)
 *   ad = "kith body v1" || kind (1 byte) || author (32) || group id (32,
 *        zero for create)
 *   epoch must be the current epoch of the state at the event's parents
 *   (for create: the id of the first epoch).
 * Inner plaintexts (extra is nil unless said otherwise):
 *   create:  [name str, history uint, owner_name str, admins_only uint]
 *   invite:  [invite_pk bin32, uses uint, expires_ms uint]
 *   add:     [member bin32, name str, invite_pk bin32, join_sig bin64]
 *            extra = sealed box to member of a key list
 *   remove:  [member bin32]
 *   leave:   []
 *   role:    [member bin32, role uint]
 *   topic:   [topic str]           (0..KITH_TOPIC_MAX bytes)
 *   rekey:   [new_epoch uint]
 *            extra = msgpack array of one sealed box per member of the
 *            state at the rekey's parents, in member id order, each
 *            holding a key list that starts with the new epoch secret
 *   message: [text str]
 *   key list: [[epoch uint, key bin32, full uint]...]; full = 1: the epoch
 *            secret, 0: only its meta key (history "joined": a newcomer
 *            can read the group's state but not the earlier messages).
 *            Every key is checked against its epoch id before use. */
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
#define KITH_TOPIC_MAX 256 /* bytes of a topic */
/* A rekey a departed or removed member left owed: the designated member
 * makes it at once, every other member after this grace period. */
#define KITH_REKEY_GRACE_MS (30 * 1000)
/* kith_group_secret_at/add_secret: an epoch with this bit set carries only
 * the epoch's meta key (history "joined"), not its secret. */
#define KITH_EPOCH_META_ONLY (UINT64_C(1) << 63)

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

/* Gives the group an epoch secret (from the store, on restart); ignored
 * unless it is the key of that epoch id (see KITH_EPOCH_META_ONLY). */
void kith_group_add_secret(kith_group *g, uint64_t epoch,
                           const uint8_t secret[32]);
/* Number of epoch secrets known, and each by index (for persisting). */
size_t kith_group_n_secrets(const kith_group *g);
void kith_group_secret_at(const kith_group *g, size_t i, uint64_t *epoch,
                          uint8_t secret[32]);

typedef struct kith_group_options {
  const char *name;       /* group name */
  const char *owner_name; /* the creator's member name */
  kith_history history;
  int admins_only_invites; /* only owner/admins may invite */
} kith_group_options;

/* Makes a new group: creates the first epoch and the signed create event.
 * Returns a new group (owned by caller) with the create already applied;
 * *out gets the accepted create (caller frees with kith_accepted_free).
 * KITH_ERR_ARG on a bad name or option. */
KITH_MUST kith_err kith_group_create(const kith_ident *me,
                                     const kith_group_options *opt,
                                     uint64_t now_ms, kith_group **g_out,
                                     kith_accepted **out);

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
/* Admits an invite holder. Appends the add (and, with history "joined",
 * the rekey that starts the newcomer's first epoch) to acc. */
KITH_MUST kith_err kith_group_admit(kith_group *g, const uint8_t member[32],
                                    const char *name,
                                    const uint8_t invite_pk[32],
                                    const uint8_t join_sig[KITH_SIG_LEN],
                                    uint64_t now_ms, GPtrArray *acc);

/* Membership and settings changes. Each composes, signs and applies the
 * event(s) and appends them (kith_accepted*) to acc. Errors:
 * KITH_ERR_NOT_MEMBER (we or the target are not members), KITH_ERR_FORBIDDEN
 * (our role does not allow it), KITH_ERR_ARG (bad text or role),
 * KITH_ERR_EXISTS (the target already has that role), KITH_ERR_STATE (no
 * key for the current epoch yet), KITH_ERR_LIMIT.
 * remove: owner/admin; an admin cannot remove an owner; not oneself (use
 *   leave). Appends the remove and the rekey that excludes the member.
 * leave: any member. The remaining members rekey (kith_group_maintain).
 *   If the last owner leaves, ownership passes to the remaining member
 *   with the highest role, lowest node id first.
 * set_role: owner/admin; not one's own role; an admin cannot change an
 *   owner's role nor grant owner.
 * set_topic: owner/admin; 0..KITH_TOPIC_MAX bytes of UTF-8 text.
 * rekey: any member: a fresh epoch secret sealed to every member. */
KITH_MUST kith_err kith_group_remove(kith_group *g, const uint8_t member[32],
                                     uint64_t now_ms, GPtrArray *acc);
KITH_MUST kith_err kith_group_leave(kith_group *g, uint64_t now_ms,
                                    GPtrArray *acc);
KITH_MUST kith_err kith_group_set_role(kith_group *g, const uint8_t member[32],
                                       kith_role role, uint64_t now_ms,
                                       GPtrArray *acc);
KITH_MUST kith_err kith_group_set_topic(kith_group *g, const char *topic,
                                        size_t len, uint64_t now_ms,
                                        GPtrArray *acc);
KITH_MUST kith_err kith_group_rekey(kith_group *g, uint64_t now_ms,
                                    GPtrArray *acc);
/* Makes any rekey this node owes (after a removal, a leave or a missed
 * epoch: the designated member at once, any member after
 * KITH_REKEY_GRACE_MS). The node calls it after every batch of received
 * events and once a second; appends 0 or more events to acc. */
KITH_MUST kith_err kith_group_maintain(kith_group *g, uint64_t now_ms,
                                       GPtrArray *acc);

/* While on, kith_group_receive does not decrypt messages (their texts
 * are already in the store): it only advances the ratchets so that used
 * message keys stay deleted. The node turns it on while it replays its
 * store at start-up. */
void kith_group_set_replay(kith_group *g, int on);
/* Would an admission with this invite succeed now? Same errors as admit. */
KITH_MUST kith_err kith_group_check_invite(const kith_group *g,
                                           const uint8_t invite_pk[32],
                                           uint64_t now_ms);

/* Receives an event's raw bytes from a peer or from the store. Every event
 * accepted by this call (this one, and held ones it released, in apply
 * order) is appended to accepted (GPtrArray of kith_accepted*, caller
 * frees each). A message is accepted whenever its author may post at its
 * parents; its text is set only if this node could decrypt it and the
 * author is still a member here (a message concurrent with its author's
 * removal that arrives after the removal is kept in the DAG, unread). A
 * node that was a member and no longer is gets KITH_ERR_NOT_MEMBER for
 * events it cannot decrypt instead of holding them. Returns KITH_OK (accepted),
 * KITH_ERR_DUPLICATE (already have it), KITH_ERR_MISSING (held: parents or keys
 * missing), or the reason it was rejected (KITH_ERR_DECODE, KITH_ERR_SIGNATURE,
 * KITH_ERR_PROTOCOL, KITH_ERR_NOT_MEMBER, KITH_ERR_FORBIDDEN, KITH_ERR_CRYPTO,
 * KITH_ERR_LIMIT). Rejected events leave the state unchanged. */
KITH_MUST kith_err kith_group_receive(kith_group *g, const uint8_t *raw,
                                      size_t len, uint64_t now_ms,
                                      GPtrArray *accepted);

/* Derived state (all borrowed until the next call that changes g). */
const uint8_t *kith_group_id(const kith_group *g);
/* create applied and we hold the current epoch's secret (we can send) */
int kith_group_is_ready(const kith_group *g);
int kith_group_admins_only_invites(const kith_group *g);
const char *kith_group_name(const kith_group *g); /* "" until known */
const char *kith_group_topic(const kith_group *g);
kith_history kith_group_history(const kith_group *g);
/* Epoch generation: 0 at create, +1 per rekey that took effect. */
uint64_t kith_group_epoch(const kith_group *g);
uint64_t kith_group_epoch_id(const kith_group *g); /* id of that epoch */
/* A rekey is owed: someone holds the current epoch who is no longer a
 * member, or a member does not hold it. */
int kith_group_rekey_due(const kith_group *g);
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
 * history, invite policy, epoch, members (sorted), invites (sorted),
 * epoch holders, heads (sorted), event count. */
void kith_group_state_hash(const kith_group *g, uint8_t out[32]);

#endif
