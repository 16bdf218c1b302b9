/* kith: internals shared by group.c (receipt, keys, composing) and
 * group_state.c (derived state and the rules). Not a public API. */
#ifndef KITH_GROUP_INT_H
#define KITH_GROUP_INT_H

#include "group.h"

#define GROUP_MAX_INVITES 4096
#define GROUP_MAX_SECRETS 256
#define GROUP_MAX_EVENTS (1u << 22)
#define GROUP_MAX_HELD_BYTES (32u << 20)
#define GROUP_EPOCH_MAX UINT32_MAX
#define GROUP_MSG_N_MAX (UINT64_C(1) << 40)

/* Decoded inner plaintext of one accepted event (only the fields of its
 * kind are set). */
typedef struct grp_inner {
  char *name; /* create: group name; add: member name */
  char *text; /* message, NUL-terminated */
  size_t text_len;
  uint64_t history;
  uint8_t pk[32];     /* invite, add: invite public key */
  uint8_t member[32]; /* add */
  uint64_t uses, expires;
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
  uint64_t epoch;
  GPtrArray *members; /* kith_member*, sorted by id */
  GArray *invites;    /* grp_invite, sorted by pk */
} grp_state;

void grp_state_init(grp_state *s);
void grp_state_clear(grp_state *s);
/* Checks e's rule against s (the state before e). Returns KITH_OK or
 * KITH_ERR_NOT_MEMBER, _PROTOCOL, _NOT_FOUND, _EXPIRED, _USED_UP, _EXISTS,
 * _LIMIT. */
kith_err grp_state_check(const grp_state *s, const grp_entry *e);
/* Applies e if its rule holds in s; otherwise e has no effect. */
void grp_state_apply(grp_state *s, const grp_entry *e);
kith_member *grp_state_member(const grp_state *s, const uint8_t id[32]);
const grp_invite *grp_state_invite(const grp_state *s, const uint8_t pk[32]);
/* The add rules on the invite at time ts. */
kith_err grp_state_check_invite(const grp_state *s, const uint8_t pk[32],
                                uint64_t ts);
/* Packs the state fields of the state hash (without gid/heads/count). */
struct kith_pack;
void grp_state_pack(const grp_state *s, struct kith_pack *p);

/* Order of application: (depth, id). */
int grp_entry_cmp(const grp_entry *a, const grp_entry *b);
void grp_inner_clear(grp_inner *in);
/* Name rule: valid UTF-8, 1..KITH_NAME_MAX bytes, no control chars. */
int grp_name_is_valid(const char *s, size_t len);

#include "gcrypto.h"

typedef struct secret_rec {
  uint64_t epoch;
  uint8_t key[KITH_KEY_LEN];
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
  GHashTable *chains; /* epoch(8) || sender(32) -> chain_slot* */
};

/* group_body.c: epoch secrets, chains, bodies and inner plaintexts. */
const uint8_t *grp_find_secret(const kith_group *g, uint64_t epoch);
chain_slot *grp_chain_get(kith_group *g, uint64_t epoch,
                          const uint8_t sender[32]);
void grp_make_ad(uint32_t kind, const uint8_t author[32], const uint8_t *gid,
                 uint8_t ad[77]);
/* Outer body of ev into b (owned copies): KITH_ERR_DECODE/_PROTOCOL. */
kith_err grp_parse_body(const kith_event *ev, body *b);
void grp_body_clear(body *b);
/* Decrypts and parses ev's inner plaintext without spending its message
 * key. KITH_ERR_MISSING (no key), _CRYPTO, _DECODE, _PROTOCOL,
 * _SIGNATURE (bad join proof), _DUPLICATE/_LIMIT (chain). */
kith_err grp_open_event(kith_group *g, const kith_event *ev, const body *b,
                        grp_inner *in);
/* If ev is an add whose extra is sealed to us and whose body those
 * secrets open naming us, takes the secrets. Returns 1 if it did. */
int grp_take_secrets(kith_group *g, const kith_event *ev, const body *b);

#endif
