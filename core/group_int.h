/* kith: internals shared by group.c (receipt, holding), group_state.c
 * (derived state and the rules), group_body.c (keys, bodies, inner
 * plaintexts) and group_compose.c (local events). Not a public API. */
#ifndef KITH_GROUP_INT_H
#define KITH_GROUP_INT_H

#include "group.h"

#include "gcrypto.h"

#define GROUP_MAX_INVITES 4096
#define GROUP_MAX_SECRETS 1024 /* epochs a group can have (keys held) */
#define GROUP_CATCHUP_MAX 64   /* older keys in a rekey box for a member */
#define GROUP_MAX_EVENTS (1u << 22)
#define GROUP_MAX_HELD_BYTES (32u << 20)
#define GROUP_EPOCH_MAX KITH_EPOCH_ID_MAX
#define GROUP_MSG_N_MAX (UINT64_C(1) << 40)

/* Decoded inner plaintext of one accepted event (only the fields of its
 * kind are set). */
typedef struct grp_inner {
  char *name;       /* create: group name; add: member name */
  char *owner_name; /* create */
  char *text;       /* message text or topic, NUL-terminated */
  size_t text_len;
  uint64_t history, admins_only;
  uint8_t pk[32];     /* invite, add: invite public key */
  uint8_t member[32]; /* add, remove, role: the member concerned */
  uint64_t uses, expires;
  uint64_t role;      /* role: the new role */
  uint64_t new_epoch; /* rekey */
  uint8_t *holders;   /* rekey: member ids at its parents, 32 each, sorted */
  size_t n_holders;
  int unread; /* message accepted without its text */
} grp_inner;

typedef struct grp_entry {
  kith_event ev;
  uint64_t epoch; /* epoch named by the body */
  uint64_t n;     /* message: chain position */
  grp_inner in;
} grp_entry;

typedef struct grp_invite {
  uint8_t pk[32];
  uint64_t uses, used, expires;
} grp_invite;

/* Derived state: a fold of entries in (depth, id) order. */
typedef struct grp_state {
  int created;
  char *name, *topic;
  kith_history history;
  int admins_only;
  uint64_t epoch;      /* id of the current epoch */
  uint64_t generation; /* rekeys that took effect */
  GPtrArray *members;  /* kith_member*, sorted by id */
  GArray *invites;     /* grp_invite, sorted by pk */
  GByteArray *holders; /* 32-byte ids (sorted) given the current epoch */
  uint64_t change_ts;  /* last membership change: when, by whom */
  uint8_t change_by[32];
} grp_state;

void grp_state_init(grp_state *s);
void grp_state_clear(grp_state *s);
/* Checks e's rule against s (the state before e). Returns KITH_OK or
 * KITH_ERR_NOT_MEMBER, _FORBIDDEN, _PROTOCOL, _NOT_FOUND, _EXPIRED,
 * _USED_UP, _EXISTS, _LIMIT. */
kith_err grp_state_check(const grp_state *s, const grp_entry *e);
/* Applies e if its rule holds in s; otherwise e has no effect. */
void grp_state_apply(grp_state *s, const grp_entry *e);
kith_member *grp_state_member(const grp_state *s, const uint8_t id[32]);
const grp_invite *grp_state_invite(const grp_state *s, const uint8_t pk[32]);
/* The add rules on the invite at time ts. */
kith_err grp_state_check_invite(const grp_state *s, const uint8_t pk[32],
                                uint64_t ts);
/* Does id hold the current epoch? */
int grp_state_is_holder(const grp_state *s, const uint8_t id[32]);
/* Holders differ from members: a rekey is owed. */
int grp_state_rekey_due(const grp_state *s);
/* The member who owes that rekey first (see group_state.c). */
const uint8_t *grp_state_rekeyer(const grp_state *s);
/* Packs the state fields of the state hash (one array). */
struct kith_pack;
void grp_state_pack(const grp_state *s, struct kith_pack *p);

/* Order of application: (depth, id). */
int grp_entry_cmp(const grp_entry *a, const grp_entry *b);
void grp_inner_clear(grp_inner *in);
/* Name rule: valid UTF-8, 1..KITH_NAME_MAX bytes, no control chars. */
int grp_name_is_valid(const char *s, size_t len);
int grp_topic_is_valid(const char *s, size_t len);

typedef struct secret_rec {
  uint64_t epoch;
  int full;                  /* key is the epoch secret; else its meta key */
  uint8_t key[KITH_KEY_LEN]; /* secret or meta key */
} secret_rec;

typedef struct chain_slot {
  kith_chain *c;
  uint64_t next_n; /* 1 + highest n seen from this sender */
} chain_slot;

typedef struct held {
  kith_event ev;
  uint64_t epoch;
} held;

/* The outer body (see group.h); sealed/extra are owned copies. */
typedef struct body {
  uint64_t epoch, n;
  uint8_t *sealed, *extra;
  size_t sealed_len, extra_len;
} body;

struct kith_group {
  uint8_t gid[32];
  const kith_ident *me;
  GHashTable *events; /* id -> grp_entry* (owned) */
  GPtrArray *order;   /* grp_entry*, sorted by (depth, id) */
  GPtrArray *heads;   /* grp_entry*, accepted events without children */
  grp_state st;
  GHashTable *held; /* id -> held* (owned) */
  size_t held_bytes;
  secret_rec *secrets; /* sodium_malloc'ed, GROUP_MAX_SECRETS */
  size_t n_secrets;
  GHashTable *chains;     /* epoch(8) || sender(32) -> chain_slot* */
  int replay;             /* kith_group_set_replay */
  int was_member;         /* we have been a member (so losing it is final) */
  uint64_t last_rekey_ms; /* our last owed rekey (rate limit) */
  int rekey_failed;       /* the last rekey we tried could not be made */
};

/* group.c */
const grp_state *grp_state_at_parents(const kith_group *g, const kith_event *ev,
                                      grp_state *tmp);
/* Checks and applies ev (parents present, keys known). own, if set, is
 * the plaintext of a local event (moved in). On KITH_OK ev moves into the
 * group and a copy is appended to acc; otherwise the caller still owns ev
 * and own is cleared. */
kith_err grp_accept(kith_group *g, kith_event *ev, const body *b,
                    grp_inner *own, GPtrArray *acc);

/* group_body.c: epoch keys, chains, bodies and inner plaintexts. */
/* The epoch secret (full key) of epoch, or NULL. */
const uint8_t *grp_find_secret(const kith_group *g, uint64_t epoch);
/* The meta key of epoch into key; 0 if we have no key for it. */
int grp_meta_key(const kith_group *g, uint64_t epoch,
                 uint8_t key[KITH_KEY_LEN]);
/* Stores a key (full: secret, else meta key) if it is the key of epoch.
 * Returns 1 if it was stored or already known. */
int grp_add_key(kith_group *g, uint64_t epoch, const uint8_t *key, int full);
chain_slot *grp_chain_get(kith_group *g, uint64_t epoch,
                          const uint8_t sender[32]);
void grp_make_ad(uint32_t kind, const uint8_t author[32], const uint8_t *gid,
                 uint8_t ad[77]);
/* Outer body of ev into b (owned copies): KITH_ERR_DECODE/_PROTOCOL. */
kith_err grp_parse_body(const kith_event *ev, body *b);
void grp_body_clear(body *b);
/* Decrypts and parses the inner plaintext of a non-message ev under the
 * meta key of its epoch. KITH_ERR_MISSING (no key), _CRYPTO, _DECODE,
 * _PROTOCOL, _SIGNATURE (bad join proof). */
kith_err grp_open_meta(const kith_group *g, const kith_event *ev, const body *b,
                       grp_inner *in);
/* Decrypts a message with key into in (text). */
kith_err grp_open_with(const kith_group *g, const kith_event *ev, const body *b,
                       const uint8_t key[KITH_KEY_LEN], grp_inner *in);
/* If ev is an add whose extra is sealed to us, takes its keys. Returns 1
 * if it took any. */
int grp_take_add_keys(kith_group *g, const kith_event *ev, const body *b);
/* Rekey: number of boxes in the extra (-1 if malformed), and taking the
 * keys from box i (ours) if its first key is new_epoch's secret. */
long grp_rekey_n_boxes(const body *b);
int grp_take_rekey_keys(kith_group *g, const body *b, size_t i,
                        uint64_t new_epoch);
/* A key list sealed to member: every key we hold (as meta keys only if
 * meta_only), newest last, at most max entries, after the first entry
 * (if first_key is set). */
kith_err grp_seal_keys(const kith_group *g, const uint8_t member[32],
                       int meta_only, size_t max, uint64_t first_epoch,
                       const uint8_t *first_key, uint8_t **out,
                       size_t *out_len);

/* group_compose.c */
kith_err grp_compose_rekey(kith_group *g, uint64_t now_ms, GPtrArray *acc);

#endif
