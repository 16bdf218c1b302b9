/* kith: internals of the group engine, shared by
 *   group.c          receipt: decode, parents, time, holding, acceptance
 *   group_dag.c      control events, frontiers, ancestry, summaries, heads
 *   group_state.c    the derived state, the fold and the rules
 *   group_body.c     keys, chains, bodies, inner plaintexts, key lists
 *   group_compose.c  local events
 * Not a public API. docs/architecture.md ("The group engine") explains the
 * design; docs/protocol.md 5.7-5.9 the rules.
 *
 * Control events (every kind but message) are few and stay in memory with
 * their decoded contents. Every other event is known by a summary (depth,
 * timestamp, kind, author, control frontier) kept in a bounded cache and,
 * when a store is attached, in the store. The state at an event's parents
 * is the fold of the control events in its causal past, which is named by
 * its control frontier (the maximal control events in that past); states
 * are cached by frontier. Control events get sequence numbers (cseq) in
 * the order they are accepted, which is a topological order of the DAG, so
 * the ancestors of a control event are a set of cseqs, kept as sorted
 * intervals (mostly one: "everything before"). */
#ifndef KITH_GROUP_INT_H
#define KITH_GROUP_INT_H

#include "group.h"

#include "codec.h"
#include "gcrypto.h"
#include "store.h"

#define GROUP_MAX_INVITES 65536      /* invite events in a group's life */
#define GROUP_MAX_LIVE_INVITES 64    /* unused, unrevoked invites per member */
#define GROUP_MAX_CONTROL (1u << 20) /* control events in a group's life */
/* Keys a replica keeps: one per epoch, two if its meta key came before its
 * secret. Every epoch is started by a control event, so the table cannot
 * fill before the control events do. */
#define GROUP_MAX_SECRETS (2 * GROUP_MAX_CONTROL)
#define GROUP_MAX_KEY_LIST 1025 /* entries of one key list */
/* Bytes a key list entry [epoch uint, key bin32, full uint] takes at most,
 * and the locked scratch area a key list is opened in. */
#define GROUP_KEY_ENTRY_MAX 46
#define GROUP_KEY_SCRATCH (GROUP_MAX_KEY_LIST * GROUP_KEY_ENTRY_MAX + 16)
#define GROUP_MAX_EVENTS (UINT64_C(1) << 40)
#define GROUP_MAX_HELD_BYTES (32u << 20)
#define GROUP_HELD_PER_AUTHOR 512 /* held events of one author, at most */
/* Ids of evicted held events kept for kith_group_take_evicted, at most */
#define GROUP_EVICTED_MAX KITH_GROUP_MAX_HELD
#define GROUP_EPOCH_MAX KITH_EPOCH_ID_MAX
#define GROUP_MSG_N_MAX (UINT64_C(1) << 40)
#define GROUP_SUM_CACHE 65536  /* event summaries kept in memory (store) */
#define GROUP_STATE_CACHE 16   /* states at frontiers kept in memory */
#define GROUP_CHAIN_CACHE 1024 /* sender chains kept in memory (store) */
#define GROUP_MAX_REPORTS 4096
#define GROUP_NEED_MAX 256 /* epochs one need asks for */

/* ---- interval sets of control sequence numbers ---- */

/* Sorted, disjoint, non-adjacent inclusive intervals [v[2i], v[2i+1]]. */
typedef struct grp_ivs {
  uint32_t *v;
  uint32_t n; /* intervals */
} grp_ivs;

void grp_ivs_clear(grp_ivs *s);
int grp_ivs_has(const grp_ivs *s, uint32_t x);
/* dst = dst | src. */
void grp_ivs_union(grp_ivs *dst, const grp_ivs *src);
void grp_ivs_add(grp_ivs *dst, uint32_t x);
void grp_ivs_copy(grp_ivs *dst, const grp_ivs *src);

/* ---- frontiers: sets of control events, interned and refcounted ---- */

typedef struct grp_state grp_state;

typedef struct grp_front {
  uint32_t n;   /* control events */
  uint32_t *cs; /* their cseqs, ascending */
  grp_ivs anc;  /* every ancestor-or-self of them */
  guint hash;
  int refs;
  grp_state *st;  /* the state of exactly anc, if cached */
  GList *st_link; /* its place in the state cache */
} grp_front;

/* ---- decoded inner plaintexts ---- */

typedef struct grp_inner {
  char *name;       /* create: group name; add: member name */
  char *owner_name; /* create */
  char *text;       /* message text or topic, NUL-terminated */
  size_t text_len;
  uint64_t history, admins_only;
  uint8_t pk[32];     /* invite, add, revoke: invite public key */
  uint8_t member[32]; /* add, remove, ban, unban, role, mute */
  uint8_t ref[32];    /* message: reply_to; rekey: the rekey it replaces; keys:
                         the need it answers */
  int has_ref;
  uint64_t uses, expires;
  uint64_t role;       /* role: the new role */
  uint64_t new_epoch;  /* rekey */
  uint64_t key, value; /* settings */
  uint64_t until;      /* mute: muted until (ms), 0 = unmuted */
  int unread;          /* message accepted without its text */
  int applies;         /* react, edit, delete: its target rules hold */
  uint8_t *pt;         /* control events: the inner plaintext's bytes */
  size_t pt_len;
  uint64_t *epochs; /* need: the epochs asked for, ascending */
  uint32_t n_epochs;
} grp_inner;

void grp_inner_clear(grp_inner *in);

enum { GRP_POWER_NONE = 0, GRP_POWER_EXIT = 1, GRP_POWER_DEMOTE = 2 };
enum { GRP_SET_INVITES = 1, GRP_SET_MODE = 2 }; /* settings keys */
#define GRP_NO_CSEQ UINT32_MAX

/* One accepted control event. */
typedef struct grp_ctl {
  uint32_t cseq;
  uint32_t kind;
  uint8_t id[32], author[32];
  uint64_t depth, ts;
  uint64_t epoch; /* the epoch its body names */
  grp_inner in;
  grp_front *pf;   /* control frontier of its parents (NULL: create) */
  grp_front *self; /* {cseq} */
  /* facts of the state at its parents */
  uint8_t a_role;   /* the author's role */
  uint8_t t_role;   /* the target's role (remove, ban, role, mute) */
  uint8_t needs;    /* the role this event needs of its author */
  uint8_t power;    /* GRP_POWER_*: takes power away from `member` */
  uint32_t a_since; /* cseq of the author's admission */
  uint32_t *rcpt;   /* rekey: member numbers it was sealed to, sorted */
  uint32_t n_rcpt;
  /* results of the last global fold */
  uint8_t effective;
} grp_ctl;

/* Summary of any accepted event (what deciding on its children needs). */
typedef struct grp_sum {
  uint8_t id[32];
  uint8_t author[32];
  uint64_t depth, ts;
  uint32_t kind;
  grp_front *cf; /* control frontier of the event (for control: {self}) */
  GList link;    /* place in the cache's LRU queue */
} grp_sum;

/* ---- derived state ---- */

typedef struct grp_member {
  kith_member m;  /* id, name (borrowed from the admitting event), role */
  uint32_t since; /* cseq of the admitting event (create or add) */
  uint64_t muted_until;
  uint32_t run, run_gen; /* rekeys in a row, counted in change run_gen */
} grp_member;

typedef struct grp_invite {
  uint8_t pk[32];
  uint64_t uses, used, expires;
  uint8_t by[32];
  uint32_t cseq;
  int revoked;
} grp_invite;

typedef struct grp_report {
  uint8_t reporter[32], accused[32], rekey[32];
} grp_report;

/* A request: member lacks the key of epoch; the need (cseq) that asked
 * last, how many needs asked, whether it is open (a keys event answering
 * that need closes it). */
typedef struct grp_need {
  uint8_t member[32];
  uint64_t epoch;
  uint32_t need, asked;
  int open;
} grp_need;

struct grp_state {
  int created;
  const char *name, *topic; /* borrowed from control events */
  kith_history history;
  int admins_only, announce;
  uint64_t epoch;      /* id of the current epoch */
  uint64_t generation; /* rekeys that took effect */
  uint32_t epoch_ctl;  /* cseq of the event that started it */
  GArray *members;     /* grp_member, sorted by id */
  GArray *invites;     /* grp_invite, sorted by pk */
  GByteArray *bans;    /* 32-byte ids, sorted */
  GByteArray *shared;  /* ids added to the current epoch's holders */
  GArray *reports;     /* grp_report */
  GArray *needs;       /* grp_need, sorted by (member, epoch) */
  uint64_t change_ts;  /* last membership change: when, by whom */
  uint8_t change_by[32];
  uint32_t change_gen; /* membership changes so far (rekey runs) */
  int ext;       /* an event of a kind after 9 (or a recovery rekey) applied */
  int has_needs; /* a need took effect: the hash's ext carries the needs */
};

/* Binary search of key among n sorted elements of stride bytes at base;
 * the index where it is (*found set) or would go. */
guint grp_bsearch(const void *base, guint n, size_t stride,
                  int (*cmp)(const void *elem, const void *key),
                  const void *key, int *found);
void grp_state_init(grp_state *s);
void grp_state_clear(grp_state *s);
void grp_state_copy(grp_state *dst, const grp_state *src);
grp_member *grp_state_member(const grp_state *s, const uint8_t id[32]);
grp_invite *grp_state_invite(const grp_state *s, const uint8_t pk[32]);
int grp_state_is_banned(const grp_state *s, const uint8_t id[32]);
/* Outranks: higher role, or the same role and admitted earlier. */
int grp_state_outranks(const kith_group *g, const grp_member *a,
                       const grp_member *b);
/* The add rules on the invite at time ts. */
kith_err grp_state_check_invite(const grp_state *s, const uint8_t pk[32],
                                uint64_t ts);
/* Checks the kind rule of a would-be event (kind, author, inner, ts) at
 * state s. KITH_OK or KITH_ERR_NOT_MEMBER, _FORBIDDEN, _PROTOCOL,
 * _NOT_FOUND, _EXPIRED, _USED_UP, _EXISTS, _LIMIT, _ARG (an add of an id
 * no sealed box can be made to). */
kith_err grp_state_check(const kith_group *g, const grp_state *s, uint32_t kind,
                         const uint8_t author[32], const grp_inner *in,
                         uint64_t ts);
/* Fills the at-parents facts of c (roles, since, power, needs, rcpt). */
void grp_state_note_facts(kith_group *g, const grp_state *s, grp_ctl *c);
/* The fold: the state of the control events in sub (NULL: all of them);
 * with sub NULL it also sets every control event's `effective`. */
void grp_fold(kith_group *g, const grp_ivs *sub, grp_state *out);
/* Applies control event c on top of the global state when nothing is
 * concurrent with it (its parents' frontier is the control heads). */
void grp_fold_append(kith_group *g, grp_ctl *c);
/* State at a frontier (cached; borrowed until the next change of g). */
const grp_state *grp_state_at(kith_group *g, grp_front *f);
void grp_state_cache_drop(kith_group *g, grp_front *f);
/* The holders of the current epoch (sorted ids) and everyone who was sent
 * its secret (holders and every newcomer of an add in it, taking effect
 * or not). */
void grp_state_holders(kith_group *g, const grp_state *s, GByteArray *out);
void grp_state_exposed(kith_group *g, const grp_state *s, GByteArray *out);
int grp_state_rekey_due(kith_group *g, const grp_state *s);
/* The open request of member for epoch in s, or NULL. */
const grp_need *grp_state_need(const grp_state *s, const uint8_t member[32],
                               uint64_t epoch);
/* The need event c still has an open request in s. */
int grp_state_need_open(const grp_state *s, const grp_ctl *c);
/* The epoch besides the current one that a need or recovery rekey may be
 * sealed in: the body epoch of the rekey that started the current epoch
 * (0 if a create started it). */
uint64_t grp_state_prior_epoch(kith_group *g, const grp_state *s);
/* Was member among the recipients of the control event that started
 * epoch in past (a rekey's, or the creator of the create's)? */
int grp_was_sent(const kith_group *g, uint64_t epoch, const grp_ivs *past,
                 const uint8_t member[32]);
const uint8_t *grp_state_rekeyer(const grp_state *s);
struct kith_pack;
void grp_state_pack(kith_group *g, const grp_state *s, struct kith_pack *p);
void grp_state_pack_ext(kith_group *g, const grp_state *s, struct kith_pack *p);
int grp_name_is_valid(const char *s, size_t len);
int grp_topic_is_valid(const char *s, size_t len);
int grp_emoji_is_valid(const char *s, size_t len);

/* ---- keys and chains ---- */

typedef struct secret_rec {
  uint64_t epoch;
  int full;                  /* key is the epoch secret; else its meta key */
  uint8_t key[KITH_KEY_LEN]; /* secret or meta key */
} secret_rec;

typedef struct chain_slot {
  uint8_t k[40]; /* epoch (8, little endian) || sender (32) */
  kith_chain *c;
  uint64_t next_n; /* 1 + highest n seen from this sender */
  int dirty;       /* changed since written to the store */
  GList link;
} chain_slot;

/* A key list an add sealed to this node, waiting for its add. */
typedef struct prov_keys {
  uint8_t add_id[32];
  secret_rec *keys; /* sodium_malloc'ed */
  size_t n;
} prov_keys;

typedef struct held held;

/* The outer body (see group.h); sealed/extra are owned copies. version
 * is the event's: in version 2 a message-like body names no epoch (it is
 * the current epoch at the event's parents: epoch_implied until the group
 * sets it), its sealed part has no nonce (derived: grp_message_nonce),
 * and a rekey's boxes hold the bare secret. */
typedef struct body {
  uint32_t version;
  int epoch_implied;
  uint64_t epoch, n;
  uint8_t *sealed, *extra;
  size_t sealed_len, extra_len;
} body;

struct kith_group {
  uint8_t gid[32];
  uint32_t event_version; /* of the events this replica builds */
  const kith_ident *me;
  kith_store *store; /* NULL: everything in memory */
  /* control events */
  GPtrArray *ctl;      /* grp_ctl*, by cseq */
  GHashTable *ctl_ids; /* id -> grp_ctl* */
  GPtrArray *order;    /* grp_ctl*, by (depth, id) */
  grp_front *ctl_heads;
  GHashTable *fronts; /* interned frontiers (key and value: grp_front*) */
  GQueue st_cache;    /* grp_front* whose state is cached, newest first */
  grp_state st;       /* the global state */
  /* member numbers: every node id that was ever a member */
  GHashTable *mnum; /* id -> GUINT_TO_POINTER(1 + number) */
  GPtrArray *mids;  /* number -> 32-byte id */
  /* all events */
  GHashTable *sums; /* id -> grp_sum* (a bounded cache with a store) */
  GQueue sum_lru;
  GHashTable *heads;    /* id -> grp_sum* (own refs: not in the cache) */
  GHashTable *raws;     /* id -> GBytes (only without a store) */
  GPtrArray *raw_order; /* their ids (keys of raws), in acceptance order */
  uint64_t n_events;
  int has_ext_kind;
  /* held events */
  GHashTable *held;      /* id -> held* */
  GHashTable *waiting;   /* missing parent id -> GPtrArray of held* */
  GHashTable *by_author; /* author -> GQueue of held* (oldest first) */
  GPtrArray *wait_keys;  /* held* that wait for an epoch key */
  GPtrArray *wait_time;  /* held* dated too far ahead */
  size_t held_bytes;
  GByteArray *evicted; /* ids of held events forgotten, not yet taken */
  GQueue ready;        /* held* released, to be examined again (a worklist) */
  int draining;        /* the worklist is being drained further up the stack */
  /* keys: one sodium_malloc'ed block, a scratch area of GROUP_KEY_SCRATCH
   * bytes (key lists are opened there) and then the table of cap_secrets
   * records; it is replaced only when the table grows */
  uint8_t *key_mem;
  secret_rec *secrets; /* key_mem + GROUP_KEY_SCRATCH */
  size_t n_secrets, cap_secrets, secrets_saved;
  GHashTable *key_index; /* epoch -> 1 + index of its record (full first) */
  GHashTable *epochs;    /* epochs that exist -> who started them (dag.c) */
  GPtrArray *prov;       /* prov_keys* */
  GHashTable *chains;    /* k(40) -> chain_slot* */
  GQueue chain_lru;
  uint8_t victim_of[32]; /* current rekey whose box for us did not open */
  int victim;
  int replay;
  int converting;  /* rows a schema-2 kith stored go through once */
  int heads_dirty; /* the heads changed since the store last got them */
  uint64_t last_rekey_ms;
  int rekey_failed;
  GHashTable *need_seen;  /* need cseq -> when this node first saw it open */
  kith_group_stats stats; /* kith_group_get_stats */
  uint64_t st_version;    /* bumped whenever the global state changes */
  uint64_t due_version;
  int due_cached;
};

/* ---- group_dag.c ---- */
grp_front *grp_front_intern(kith_group *g, const uint32_t *cs, uint32_t n);
grp_front *grp_front_ref(grp_front *f);
void grp_front_unref(kith_group *g, grp_front *f);
/* The maximal control events of the union of fronts (a new ref). */
grp_front *grp_front_merge(kith_group *g, grp_front *const *fronts, size_t n);
int grp_ctl_concurrent(const grp_ctl *a, const grp_ctl *b);
grp_ctl *grp_ctl_by_id(const kith_group *g, const uint8_t id[32]);
static inline grp_ctl *grp_ctl_at(const kith_group *g, uint32_t cseq) {
  return cseq < g->ctl->len ? g->ctl->pdata[cseq] : NULL;
}
/* Adds c (cseq, pf set) to the control DAG and the (depth, id) order. */
void grp_ctl_insert(kith_group *g, grp_ctl *c);
void grp_ctl_free(kith_group *g, grp_ctl *c);
int grp_ctl_cmp(const grp_ctl *a, const grp_ctl *b);
/* The summary of an accepted event, from the cache or the store (NULL if
 * not accepted). Borrowed until the next call into g. */
grp_sum *grp_sum_get(kith_group *g, const uint8_t id[32]);
/* Whether id is an accepted event this replica knows without asking the
 * store (cached summaries, heads, control events). */
int grp_known_cached(kith_group *g, const uint8_t id[32]);
grp_sum *grp_sum_add(kith_group *g, const kith_event *ev, grp_front *cf);
/* Heads: the new event replaces its parents. */
void grp_heads_update(kith_group *g, const kith_event *ev, grp_front *cf);
/* The epoch was started by the control event cseq (a create or rekey). */
void grp_epoch_started(kith_group *g, uint64_t epoch, uint32_t cseq);
/* The (first) control event that started epoch and is in past (NULL: any
 * that this replica holds); NULL if none. */
const grp_ctl *grp_epoch_start(const kith_group *g, uint64_t epoch,
                               const grp_ivs *past);
uint32_t grp_member_number(kith_group *g, const uint8_t id[32]);
const uint8_t *grp_member_id(const kith_group *g, uint32_t num);
void grp_dag_init(kith_group *g);
void grp_dag_clear(kith_group *g);

/* ---- group.c ---- */
/* Checks and accepts ev (parents present, key known) at the state at its
 * parents. own, if set, is the inner plaintext of a local event (moved
 * in). On KITH_OK ev moves into the group and a copy goes to acc;
 * otherwise the caller still owns ev and own is cleared. */
kith_err grp_accept(kith_group *g, kith_event *ev, const body *b,
                    grp_inner *own, uint64_t now_ms, GPtrArray *acc);
/* The control frontier of ev's parents (a new ref), or NULL if a parent
 * is missing. */
grp_front *grp_parents_front(kith_group *g, const kith_event *ev);
void grp_release_waiting(kith_group *g, const uint8_t id[32], uint64_t now_ms,
                         GPtrArray *acc);
void grp_release_keys(kith_group *g, uint64_t now_ms, GPtrArray *acc);
/* Sets victim/victim_of from the current epoch's rekey and our keys. */
void grp_note_victim(kith_group *g);
void grp_release_time(kith_group *g, uint64_t now_ms, GPtrArray *acc);
/* The epochs whose keys held control events wait for, each once
 * (appended to out, a GArray of uint64_t). */
void grp_held_key_epochs(const kith_group *g, GArray *out);

/* Receives a decoded event (moved in if held or accepted). */
kith_err grp_receive_event(kith_group *g, kith_event *ev, uint64_t now_ms,
                           GPtrArray *acc);
void grp_keep_raw(kith_group *g, const kith_event *ev);
GBytes *grp_raw_of(const kith_group *g, const uint8_t id[32]);

/* ---- group_load.c ---- */
/* Writes an accepted event (c: its control event, or NULL; cf: the
 * control frontier of a non-control event) to the store, or keeps its
 * bytes in memory without one. */
kith_err grp_store_event(kith_group *g, const kith_event *ev, const grp_ctl *c,
                         grp_front *cf, const grp_inner *in);
int grp_is_control(uint32_t kind);

/* ---- group_body.c ---- */
const uint8_t *grp_find_secret(const kith_group *g, uint64_t epoch);
int grp_meta_key(const kith_group *g, uint64_t epoch,
                 uint8_t key[KITH_KEY_LEN]);
/* Stores a key (full: secret, else meta key) if it is the key of epoch and
 * the epoch exists in the group (or `any`). 1 if stored or known. */
int grp_add_key(kith_group *g, uint64_t epoch, const uint8_t *key, int full,
                int any);
/* Writes keys learned since the last call to the store. */
kith_err grp_save_keys(kith_group *g);
/* Forgets the kept keys from record n on (an epoch that was never made). */
void grp_keys_truncate(kith_group *g, size_t n);
chain_slot *grp_chain_get(kith_group *g, uint64_t epoch,
                          const uint8_t sender[32]);
kith_err grp_save_chains(kith_group *g);
GHashTable *grp_chains_new(void);
void grp_chains_clear(kith_group *g);
void grp_make_ad(uint32_t kind, const uint8_t author[32], const uint8_t *gid,
                 uint8_t ad[77]);
kith_err grp_parse_body(const kith_event *ev, body *b);
/* A version-2 message-like body carries no epoch and no nonce. */
int grp_body_is_short(uint32_t version, uint32_t kind);
/* The nonce of a version-2 message-like event: BLAKE2b-192 of
 * "kith nonce v2" || LE64(n) || LE64(ts_ms) || its parents. */
void grp_message_nonce(const kith_event *ev, uint64_t n,
                       uint8_t nonce[KITH_NONCE_LEN]);
void grp_body_clear(body *b);
int grp_is_message_like(uint32_t kind);
int grp_has_extra(uint32_t kind);
kith_err grp_open_meta(const kith_group *g, const kith_event *ev, const body *b,
                       grp_inner *in);
kith_err grp_open_with(const kith_group *g, const kith_event *ev, const body *b,
                       const uint8_t key[KITH_KEY_LEN], grp_inner *in);
/* Parses an inner plaintext (already decrypted) into in. */
kith_err grp_parse_inner(const kith_group *g, const kith_event *ev,
                         const uint8_t *pt, size_t len, grp_inner *in);
/* Provisional keys from an add sealed to us (not yet accepted). */
void grp_prov_take(kith_group *g, const kith_event *ev, const body *b);
void grp_prov_promote(kith_group *g, const uint8_t add_id[32]);
void grp_prov_drop(kith_group *g, const uint8_t add_id[32]);
long grp_rekey_n_boxes(const body *b);
/* Takes the new epoch's secret from box i (its first entry); 1 if it was
 * there. */
int grp_take_rekey_keys(kith_group *g, const body *b, size_t i,
                        uint64_t new_epoch);
/* A keys event's box (its extra) for this node: keeps the keys of the
 * epochs its need asked for (epochs, n). */
void grp_take_given_keys(kith_group *g, const body *b, const uint64_t *epochs,
                         uint32_t n);
/* Seals to member a key list of epochs[i] (the secret if full[i], else
 * the meta key); every key must be held. */
kith_err grp_seal_given(const kith_group *g, const uint8_t member[32],
                        const uint64_t *epochs, const uint8_t *full, size_t n,
                        uint8_t **out, size_t *out_len);
/* A version-2 rekey's box for member: the bare secret, sealed. */
kith_err grp_seal_secret(const uint8_t member[32], const uint8_t secret[32],
                         uint8_t **out, size_t *out_len);
kith_err grp_seal_keys(const kith_group *g, const uint8_t member[32],
                       int meta_only, size_t max, uint64_t first_epoch,
                       const uint8_t *first_key, uint8_t **out,
                       size_t *out_len);
void grp_keys_clear(kith_group *g);

/* ---- group_compose.c ---- */
/* The ts_ms of a node's own event whose latest parent is dated
 * parent_ts: its clock, but never before the parent, and one ms after it
 * while that stays within GRP_TS_LEAD_MS of the clock, so that display
 * order (ts_ms, id) puts a child after its parent (a burst of events
 * within one ms would otherwise sort by id). */
#define GRP_TS_LEAD_MS 1000
static inline uint64_t grp_child_ts(uint64_t now_ms, uint64_t parent_ts) {
  if (parent_ts >= now_ms + GRP_TS_LEAD_MS)
    return parent_ts;
  return parent_ts + 1 > now_ms ? parent_ts + 1 : now_ms;
}

void grp_start_event(kith_group *g, kith_event *ev, uint32_t kind,
                     uint64_t now_ms);
/* Signs ev (kind, parents, ts set) with body inner/extra in epoch and
 * accepts it; own (moved into the group) is its decoded form. */
kith_err grp_compose_at(kith_group *g, kith_event *ev, uint64_t epoch,
                        const kith_pack *inner, const uint8_t *extra,
                        size_t extra_len, grp_inner *own, uint64_t now_ms,
                        GPtrArray *acc);
uint64_t grp_epoch_at_parents(kith_group *g, const kith_event *ev);
kith_err grp_compose(kith_group *g, uint32_t kind, const kith_pack *inner,
                     grp_inner *own, uint64_t now_ms, GPtrArray *acc);
kith_err grp_can_compose(const kith_group *g);
/* The rule of a would-be local event against the current state. */
kith_err grp_check_local(const kith_group *g, uint32_t kind,
                         const grp_inner *in, uint64_t now_ms);

/* ---- group_need.c ---- */
/* The rules of a need or keys event at its parents (s, pf); KITH_OK or
 * KITH_ERR_PROTOCOL. */
kith_err grp_need_check(kith_group *g, const grp_state *s, const grp_front *pf,
                        const kith_event *ev, const body *b,
                        const grp_inner *in);
/* The effect of a need (opens requests, reports a forger) or a keys event
 * (closes the requests of the needs it answers) in the fold; 1 if any. */
int grp_need_apply(kith_group *g, grp_state *s, const grp_ctl *c);
void grp_state_pack_needs(kith_group *g, const grp_state *s,
                          struct kith_pack *p);
/* kith_group_maintain's part: asks for the keys this node lacks, answers
 * the requests whose turn has come, and makes a recovery rekey when the
 * current epoch's key never came. */
kith_err grp_need_maintain(kith_group *g, uint64_t now_ms, GPtrArray *acc);

/* ---- group_admin.c ---- */
kith_err grp_compose_rekey(kith_group *g, uint64_t now_ms, GPtrArray *acc);
/* A rekey is owed before this node may post (group_admin.c). */
int grp_local_rekey_due(kith_group *g);

#endif
