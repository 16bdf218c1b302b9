/* kith: one group: its event DAG, derived state, keys, and event bodies.
 *
 * State is a pure function of the set of accepted events (docs/protocol.md
 * 5.7-5.9 and 6). Two replicas with the same events have the same
 * kith_group_state_hash. Events whose parents are missing, whose epoch key
 * is not known yet, or that are dated too far ahead of this node's clock
 * are held (bounded per author, the deepest evicted first, never marked
 * invalid) and re-examined when what they wait for arrives.
 *
 * Memory does not grow with the history: control events (every kind but
 * message, react, edit, delete) stay in memory, other events only as
 * summaries in a bounded cache. With a store attached (kith_group_open,
 * kith_group_attach_store) every accepted event, its text and every key
 * learned are written to the store inside the caller's transaction, and a
 * replica is rebuilt from the store without verifying or decrypting
 * anything but the control events.
 *
 * Epochs are named by epoch ids (kith_gcrypto_epoch_id of the meta key).
 * Bodies (the event's body: a bin in version 1, the array itself in
 * version 2) are msgpack:
 *   message, react, edit, delete: [epoch uint, n uint, sealed bin]
 *       (version 2: [n uint, sealed bin], the epoch being the current
 *       epoch at the event's parents)
 *       sealed = kith_gcrypto_seal(message key n of author's chain, ad,
 *       inner); version 2: kith_gcrypto_seal_at with the nonce
 *       grp_message_nonce derives (n, ts_ms, parents), not sent
 *   every other kind: [epoch uint, sealed bin, extra bin|nil]
 *       (extra: a bin for add, rekey and keys, nil otherwise)
 *       sealed = kith_gcrypto_seal(meta_key(E_epoch), ad, inner)
 *   ad = "kith body v1" || kind (1 byte) || author (32) || group id (32,
 *        zero for create)
 * Inner plaintexts (extra is nil unless said otherwise):
 *   create:   [name str, history uint, owner_name str, admins_only uint]
 *   invite:   [invite_pk bin32, uses uint, expires_ms uint]
 *   add:      [member bin32, name str, invite_pk bin32, join_sig bin64]
 *             extra = sealed box to member of a key list
 *   remove, ban, unban: [member bin32]
 *   leave:    []
 *   role:     [member bin32, role uint]
 *   topic:    [topic str]           (0..KITH_TOPIC_MAX bytes)
 *   rekey:    [new_epoch uint] or [new_epoch uint, replaces bin32]
 *             extra = msgpack array of one sealed box per member of the
 *             state at the rekey's parents, in member id order, each
 *             holding the new epoch secret (version 2: the 32 bytes
 *             alone; version 1: a key list that starts with it)
 *   revoke:   [invite_pk bin32]
 *   settings: [key uint (1 invites, 2 mode), value uint (0, 1)]
 *   mute:     [member bin32, until_ms uint (0: unmute)]
 *   message:  [text str] or [text str, reply_to bin32]
 *   react:    [target bin32, emoji str, on uint (1 add, 0 remove)]
 *   edit:     [target bin32, text str]
 *   delete:   [target bin32]
 *   need:     [[epoch uint, ...]]   (the epochs whose keys the author
 *             asks for; sealed in the current epoch or the one before)
 *   keys:     [need bin32]; its one parent is that need, its epoch the
 *             need's; extra = sealed box to the need's author of a key
 *             list
 *   key list: [[epoch uint, key bin32, full uint]...]; full = 1: the epoch
 *             secret, 0: only its meta key. */
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
/* A rekey seals the new epoch to every member in one event: one box of at
 * most KITH_REKEY_BOX bytes each (bin8 header 2, sealed-box overhead 48, a
 * key list of one entry 46: [[epoch uint64, secret bin32, 1]] in version
 * 1; version 2 boxes hold the bare secret, 82 bytes) and at most
 * KITH_REKEY_REST bytes for the rest of its body (array header, epoch,
 * sealed inner, bin32 and array16 headers). So a group has at most as
 * many members as boxes fit: 852. (More would need rekeys in several
 * events or tree-based key agreement: docs/security.md, known limits.) */
#define KITH_REKEY_BOX 96
#define KITH_REKEY_REST 128
#define KITH_GROUP_MAX_MEMBERS                                                 \
  ((KITH_EVENT_MAX_BODY - KITH_REKEY_REST) / KITH_REKEY_BOX)
#define KITH_GROUP_MAX_HELD 4096 /* events waiting for parents or keys */
/* The event version a replica builds until told otherwise: version 2
 * (smaller, docs/protocol.md 4); the create of kith_group_create is
 * always version 1. Every replica reads both versions, in any mix;
 * kith_group_set_event_version(g, KITH_EVENT_V1) builds the old form. */
#define KITH_GROUP_EVENT_VERSION KITH_EVENT_V2
#define KITH_INVITE_MAX_USES 1000
#define KITH_INVITE_MAX_TTL_MS (UINT64_C(366) * 24 * 3600 * 1000)
#define KITH_TOPIC_MAX 256 /* bytes of a topic */
#define KITH_EMOJI_MAX 32  /* bytes of a reaction */
#define KITH_TS_MAX (UINT64_C(1) << 50)
/* Clock skew tolerated: an event may be dated up to this much before its
 * latest parent, and is held while dated more than this ahead of the
 * receiver's clock. */
#define KITH_CLOCK_SKEW_MS (10 * 60 * 1000)
/* A rekey a departed or removed member left owed: the designated member
 * makes it at once, every other member after this grace period. */
#define KITH_REKEY_GRACE_MS (30 * 1000)
/* A member whose box of the current epoch's rekey did not open asks for
 * the key (a need); if nobody gives it, the most senior of those asking
 * makes a new epoch (a recovery rekey) this long after asking, the others
 * a turn later each. */
#define KITH_RECOVERY_WAIT_MS (60 * 1000)
/* Rekeys one member may make in a row: a rekey whose author made this
 * many since the last membership change (create, add, remove, ban, leave
 * that took effect), in the fold at its parents, is refused. */
#define KITH_REKEY_RUN 4
/* kith_group_secret_at/add_secret: an epoch with this bit set carries only
 * the epoch's meta key (history "joined"), not its secret. */
#define KITH_EPOCH_META_ONLY (UINT64_C(1) << 63)

struct kith_store;

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
  char *text;    /* plaintext (g_malloc, NUL-terminated) or NULL: a
                    message's, edit's text, reaction's emoji, topic */
  size_t text_len;
  uint8_t ref[32]; /* reply_to, or the target of react/edit/delete */
  int has_ref;
  int on;         /* react: 1 adds, 0 removes */
  int applies;    /* react, edit, delete (read): its target rules hold, so it
                      changes how its target is shown (docs/protocol.md 5.7) */
  int effective;  /* control events: took effect in the group state */
  uint64_t epoch; /* the epoch its body is in (a version-2 message names
                     none: the current epoch at its parents) */
} kith_accepted;
void kith_accepted_free(kith_accepted *a);

typedef struct kith_group kith_group;

/* A replica of group gid for identity me (borrowed; must outlive g), kept
 * in memory only. */
kith_group *kith_group_new(const uint8_t gid[32], const kith_ident *me);
/* A replica backed by store (borrowed; must outlive g): loads the group's
 * keys, control events, heads and count from it, and upgrades events
 * stored by an older kith (verifying them). Errors: KITH_ERR_IO,
 * KITH_ERR_CRYPTO (wrong storage key). */
KITH_MUST kith_err kith_group_open(const uint8_t gid[32], const kith_ident *me,
                                   struct kith_store *store, kith_group **out);
/* Attaches a store to a replica that has none yet (a group just created
 * or being joined) and writes what it holds. */
KITH_MUST kith_err kith_group_attach_store(kith_group *g,
                                           struct kith_store *store);
void kith_group_free(kith_group *g);
/* Writes what is kept in memory between events (sender chains, keys) to
 * the store; the caller does it before committing a batch. */
KITH_MUST kith_err kith_group_flush(kith_group *g);

/* Gives the group a key from the store (trusted; see
 * KITH_EPOCH_META_ONLY); ignored unless it is the key of that epoch id. */
void kith_group_add_secret(kith_group *g, uint64_t epoch,
                           const uint8_t secret[32]);
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

/* The version of the events g builds from now on: KITH_EVENT_V2 (the
 * default) or KITH_EVENT_V1; anything else is ignored. Every replica reads
 * both. */
void kith_group_set_event_version(kith_group *g, uint32_t version);

/* Posts a message (reply_to: an accepted event of the group, or NULL).
 * Appends the accepted events to acc: a rekey first when the current
 * epoch was given to someone who is no longer a member (a sender never
 * encrypts to such an epoch), then the message. Errors: KITH_ERR_ARG
 * (empty, too long or not UTF-8), KITH_ERR_NOT_MEMBER, KITH_ERR_FORBIDDEN
 * (muted, or announce mode and not an admin), KITH_ERR_NOT_FOUND (no such
 * reply_to), KITH_ERR_STATE (no key for the current epoch: waiting for a
 * rekey), KITH_ERR_IO (the store). */
KITH_MUST kith_err kith_group_send(kith_group *g, const char *text, size_t len,
                                   const uint8_t *reply_to, uint64_t now_ms,
                                   GPtrArray *acc);
/* React to, edit (own messages) or delete (own, or as owner/admin) an
 * accepted message; appends to acc like kith_group_send. react: emoji is
 * 1..KITH_EMOJI_MAX bytes of UTF-8 without control characters or leading
 * space; on = 0 takes one's reaction back. */
KITH_MUST kith_err kith_group_react(kith_group *g, const uint8_t target[32],
                                    const char *emoji, int on, uint64_t now_ms,
                                    GPtrArray *acc);
KITH_MUST kith_err kith_group_edit(kith_group *g, const uint8_t target[32],
                                   const char *text, size_t len,
                                   uint64_t now_ms, GPtrArray *acc);
KITH_MUST kith_err kith_group_delete(kith_group *g, const uint8_t target[32],
                                     uint64_t now_ms, GPtrArray *acc);
KITH_MUST kith_err kith_group_invite(kith_group *g, uint32_t uses,
                                     uint64_t expires_ms, uint64_t now_ms,
                                     uint8_t secret_out[32],
                                     kith_accepted **out);
/* Admits an invite holder. Appends the add (and, with history "joined",
 * the rekey that starts the newcomer's first epoch) to acc. Errors as
 * below (KITH_ERR_ARG also for a member id no sealed box can be made to:
 * not a usable Ed25519 key), and KITH_ERR_NOT_FOUND (no such invite, or
 * revoked),
 * KITH_ERR_EXPIRED, KITH_ERR_USED_UP, KITH_ERR_SIGNATURE (bad join proof),
 * KITH_ERR_EXISTS (already a member), KITH_ERR_FORBIDDEN (banned). */
KITH_MUST kith_err kith_group_admit(kith_group *g, const uint8_t member[32],
                                    const char *name,
                                    const uint8_t invite_pk[32],
                                    const uint8_t join_sig[KITH_SIG_LEN],
                                    uint64_t now_ms, GPtrArray *acc);

/* Membership and settings changes. Each composes, signs and applies the
 * event(s) and appends them (kith_accepted*) to acc. Errors:
 * KITH_ERR_NOT_MEMBER (we or the target are not members), KITH_ERR_FORBIDDEN
 * (our rank does not allow it), KITH_ERR_ARG (bad text or role),
 * KITH_ERR_EXISTS (nothing would change), KITH_ERR_STATE (no key for the
 * current epoch yet), KITH_ERR_LIMIT, KITH_ERR_IO.
 * Acting on another member (remove, ban, demote, mute) needs a higher
 * rank: a higher role, or the same role and an earlier admission.
 * remove: owner/admin; not oneself (use leave). Appends the remove and the
 *   rekey that excludes the member. The member is banned (no invite
 *   admits it again until unbanned) and its invites are revoked. If the
 *   rekey cannot be made, the remove still stands and KITH_ERR_REKEY is
 *   returned: kith_group_maintain retries it, and no message is sent in
 *   the old epoch meanwhile.
 * ban: owner/admin; any node id; removes it too if it is a member (then
 *   with its rekey, as remove). unban: owner/admin; lifts a ban.
 * leave: any member. The remaining members rekey (kith_group_maintain).
 *   If the last owner leaves, ownership passes to the remaining member
 *   with the highest role, lowest node id first.
 * set_role: owner/admin; not one's own role; the new role at most one's
 *   own.
 * set_topic: owner/admin; 0..KITH_TOPIC_MAX bytes of UTF-8 text.
 * set_invites: owner/admin; admins_only 1: only owners and admins invite.
 * set_announce: owner/admin; on 1: only owners and admins post messages.
 * mute: owner/admin; until_ms 0 unmutes; a muted member cannot post
 *   (message, react, edit, delete) dated before until_ms.
 * revoke: the invite's maker, an owner or an admin.
 * rekey: any member: a fresh epoch secret sealed to every member;
 *   KITH_ERR_LIMIT after KITH_REKEY_RUN rekeys in a row (no membership
 *   change between). */
KITH_MUST kith_err kith_group_remove(kith_group *g, const uint8_t member[32],
                                     uint64_t now_ms, GPtrArray *acc);
KITH_MUST kith_err kith_group_ban(kith_group *g, const uint8_t node[32],
                                  uint64_t now_ms, GPtrArray *acc);
KITH_MUST kith_err kith_group_unban(kith_group *g, const uint8_t node[32],
                                    uint64_t now_ms, GPtrArray *acc);
KITH_MUST kith_err kith_group_leave(kith_group *g, uint64_t now_ms,
                                    GPtrArray *acc);
KITH_MUST kith_err kith_group_set_role(kith_group *g, const uint8_t member[32],
                                       kith_role role, uint64_t now_ms,
                                       GPtrArray *acc);
KITH_MUST kith_err kith_group_set_topic(kith_group *g, const char *topic,
                                        size_t len, uint64_t now_ms,
                                        GPtrArray *acc);
KITH_MUST kith_err kith_group_set_invites(kith_group *g, int admins_only,
                                          uint64_t now_ms, GPtrArray *acc);
KITH_MUST kith_err kith_group_set_announce(kith_group *g, int on,
                                           uint64_t now_ms, GPtrArray *acc);
KITH_MUST kith_err kith_group_mute(kith_group *g, const uint8_t member[32],
                                   uint64_t until_ms, uint64_t now_ms,
                                   GPtrArray *acc);
KITH_MUST kith_err kith_group_revoke(kith_group *g, const uint8_t invite_pk[32],
                                     uint64_t now_ms, GPtrArray *acc);
KITH_MUST kith_err kith_group_rekey(kith_group *g, uint64_t now_ms,
                                    GPtrArray *acc);
/* Asks for the keys of epochs this node lacks (a need: for what held
 * control events wait for, or the current epoch's if its box did not
 * open), answers the needs whose turn has come to it (keys events), makes
 * a recovery rekey if the current epoch's key never came, makes any rekey
 * this node owes (after a removal, a leave, a missed epoch, an invite
 * race: the designated member at once, any member after
 * KITH_REKEY_GRACE_MS), and retries events held for their date. The node
 * calls it after every batch of received events and once a second;
 * appends 0 or more accepted events to acc. Errors: KITH_ERR_IO (the
 * store), or why an owed rekey could not be made (tried again later). */
KITH_MUST kith_err kith_group_maintain(kith_group *g, uint64_t now_ms,
                                       GPtrArray *acc);

/* While on, kith_group_receive does not decrypt messages (their texts are
 * already in the store): it only advances the ratchets so that used
 * message keys stay deleted. Used while upgrading an old store. */
void kith_group_set_replay(kith_group *g, int on);
/* Would an admission with this invite succeed now? Same errors as admit. */
KITH_MUST kith_err kith_group_check_invite(const kith_group *g,
                                           const uint8_t invite_pk[32],
                                           uint64_t now_ms);

/* Receives an event's raw bytes from a peer. Every event accepted by this
 * call (this one, and held ones it released, in the order accepted) is
 * appended to accepted (GPtrArray of kith_accepted*, caller frees each).
 * now_ms is this node's wall clock (for the future bound on dates).
 * Returns KITH_OK (accepted), KITH_ERR_DUPLICATE (already have it),
 * KITH_ERR_MISSING (held: parents, keys or its date; never a verdict on
 * the bytes), KITH_ERR_IO (the store failed: nothing changed, try again),
 * or the reason it was rejected (KITH_ERR_DECODE, KITH_ERR_SIGNATURE,
 * KITH_ERR_PROTOCOL, KITH_ERR_NOT_MEMBER, KITH_ERR_FORBIDDEN,
 * KITH_ERR_CRYPTO, KITH_ERR_LIMIT): those depend only on the bytes and
 * their causal past, so the same bytes are rejected everywhere (a node
 * that lacks an event's key holds it: it is no verdict). A member that
 * holds the current epoch accepts a message (react, edit, delete) whose
 * key it lacks unread instead of holding it (docs/protocol.md 5.7, step
 * 7). Rejected events leave the state unchanged. */
KITH_MUST kith_err kith_group_receive(kith_group *g, const uint8_t *raw,
                                      size_t len, uint64_t now_ms,
                                      GPtrArray *accepted);
/* As kith_group_receive, for bytes whose signature was already checked by
 * kith_event_decode with this group's id (step 1 of 5.7 done elsewhere:
 * the node's crypto worker); the caller answers for that. */
KITH_MUST kith_err kith_group_receive_trusted(kith_group *g, const uint8_t *raw,
                                              size_t len, uint64_t now_ms,
                                              GPtrArray *accepted);
/* Ids of parents that held events wait for (32 bytes each, at most max),
 * to ask peers for. */
size_t kith_group_missing(const kith_group *g, GByteArray *ids, size_t max);
/* Moves into ids (32 bytes each) the ids of held events forgotten at a
 * bound since the last call (at most KITH_GROUP_MAX_HELD are noted
 * between two calls; docs/protocol.md 5.8), and returns how many: the
 * node's gossip engine forgets them too, so that they are taken again
 * when they come. */
size_t kith_group_take_evicted(kith_group *g, GByteArray *ids);

/* Derived state (all borrowed until the next call that changes g). */
const uint8_t *kith_group_id(const kith_group *g);
/* create applied and we hold the current epoch's secret (we can send) */
int kith_group_is_ready(const kith_group *g);
int kith_group_admins_only_invites(const kith_group *g);
int kith_group_announce(const kith_group *g);
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
/* Muted until (ms), 0 if not muted. */
uint64_t kith_group_muted_until(const kith_group *g, const uint8_t id[32]);
size_t kith_group_n_banned(const kith_group *g);
const uint8_t *kith_group_banned_at(const kith_group *g, size_t i);
/* The name a node had in this group, current member or not ("" if never
 * a member). */
const char *kith_group_name_of(const kith_group *g, const uint8_t id[32]);

typedef struct kith_invite_info {
  uint8_t pk[32];
  uint8_t by[32];
  uint32_t uses, used;
  uint64_t expires_ms;
  int revoked;
} kith_invite_info;
size_t kith_group_n_invites(const kith_group *g);
void kith_group_invite_at(const kith_group *g, size_t i, kith_invite_info *out);

/* Reports: a member asked for the key of an epoch whose rekey another
 * member sealed to it (its box did not open); that author is reported. */
size_t kith_group_n_reports(const kith_group *g);
void kith_group_report_at(const kith_group *g, size_t i, uint8_t reporter[32],
                          uint8_t accused[32], uint8_t rekey[32]);

uint64_t kith_group_n_events(const kith_group *g); /* accepted events */

/* The engine's work, counted in steps of the loops whose length could grow
 * with a group's history (for tests and benchmarks: a deterministic
 * measure of what an event cost). Counters only grow. */
typedef struct kith_group_stats {
  uint64_t fold_steps;  /* control events visited by folds of the state */
  uint64_t front_steps; /* frontier elements compared when merging parents */
  uint64_t sum_lookups; /* event summaries looked up (memory or store) */
  uint64_t held_steps;  /* held events or their authors examined */
  uint64_t head_steps;  /* heads examined when choosing parents */
  uint64_t key_allocs;  /* locked allocations made for keys (the table
                           growing, an add's key list that opened) */
} kith_group_stats;
void kith_group_get_stats(const kith_group *g, kith_group_stats *out);
size_t kith_group_n_held(const kith_group *g);
int kith_group_has_event(kith_group *g, const uint8_t id[32]);
/* The raw bytes of an accepted event (from memory or the store).
 * KITH_ERR_NOT_FOUND if not accepted. */
KITH_MUST kith_err kith_group_event_raw(kith_group *g, const uint8_t id[32],
                                        GBytes **out);
/* An accepted event named by its base32 id or a prefix of it.
 * KITH_ERR_NOT_FOUND, KITH_ERR_AMBIGUOUS (several match), KITH_ERR_ARG. */
KITH_MUST kith_err kith_group_find_event(kith_group *g, const char *text,
                                         uint8_t id[32]);
/* Depth, timestamp, kind and author of an accepted event. */
KITH_MUST kith_err kith_group_event_info(kith_group *g, const uint8_t id[32],
                                         uint64_t *depth, uint64_t *ts_ms,
                                         uint32_t *kind, uint8_t author[32]);
/* Calls fn with the timestamp and id of every accepted event, in the
 * order they were accepted (parents before children). */
KITH_MUST kith_err kith_group_each_id(kith_group *g,
                                      void (*fn)(void *ctx, uint64_t ts_ms,
                                                 const uint8_t id[32]),
                                      void *ctx);
/* The sentence a control event shows as in the log ("bob was removed by
 * alice"), from its kind, author, date and inner plaintext (as the store
 * keeps it); NULL for what shows nothing (invite, revoke, a rekey that is
 * not a recovery). Names shared by several members carry the start of the
 * id. g_malloc'ed. */
char *kith_group_notice(kith_group *g, uint32_t kind, const uint8_t author[32],
                        uint64_t ts_ms, const uint8_t *inner, size_t len);
/* Current heads (32-byte ids, sorted). */
void kith_group_heads(const kith_group *g, GByteArray *ids);
/* BLAKE2b-256 of the canonical encoding of the derived state (section 6
 * of docs/protocol.md). */
void kith_group_state_hash(kith_group *g, uint8_t out[32]);

#endif
