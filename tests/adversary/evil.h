/* A malicious member for the adversary suite: it builds the events a
 * modified node could sign and send. Any author key, any parents (old ones
 * included), any depth and date, any body bytes, sealed under a key the
 * attacker holds (a meta key, a message key) or under garbage; rekey boxes
 * of its choosing (garbage, stuffed key lists, fake epochs whose keys fit
 * their ids); adds of any id with any join proof; and frames that are not
 * events at all (bad signatures, wrong group, junk).
 *
 * Everything here goes through the public wire formats of
 * docs/protocol.md sections 4 and 5 only: the bytes it returns are fed to
 * kith_group_receive exactly as a peer's would be. Include after cmocka. */
#ifndef KITH_TEST_EVIL_H
#define KITH_TEST_EVIL_H

#include <glib.h>
#include <sodium.h>
#include <string.h>

#include "core/codec.h"
#include "core/event.h"
#include "core/gcrypto.h"
#include "core/group.h"
#include "core/ident.h"
#include "core/invite.h"

/* The attacker: the key it signs with, the group, and its own replica
 * (borrowed), from which it reads parents' depths and dates and the epoch
 * secrets it was given. */
typedef struct evil {
  const kith_ident *me;
  uint8_t gid[32];
  kith_group *view;
  uint32_t stuff;         /* entries of a stuffed key list (EVIL_BOX_STUFFED) */
  uint32_t rekey_version; /* the event version of its rekeys (1 or 2) */
  GHashTable *made; /* id -> depth, ts of the events it built (evil_note) */
} evil;

/* Where an event hangs: its parents, depth and date. depth 0 means "1 +
 * the deepest parent" (the honest value), ts 0 means "the latest parent's
 * date" (the earliest honest date). */
typedef struct evil_at {
  size_t n;
  uint8_t ids[KITH_EVENT_MAX_PARENTS][32];
  uint64_t depth, ts;
} evil_at;

static inline void evil_init(evil *e, const kith_ident *me, kith_group *view) {
  e->me = me;
  memcpy(e->gid, kith_group_id(view), 32);
  e->view = view;
  e->stuff = 200;
  e->rekey_version = KITH_EVENT_V1;
  e->made = g_hash_table_new_full(g_bytes_hash, g_bytes_equal,
                                  (GDestroyNotify)g_bytes_unref, g_free);
}

static inline void evil_clear(evil *e) {
  g_hash_table_destroy(e->made);
  memset(e, 0, sizeof *e);
}

/* Remembers the depth and date of an event the attacker built, so that
 * its next events can hang on it before its own replica has it. */
static inline void evil_note(const evil *e, const uint8_t id[32],
                             uint64_t depth, uint64_t ts) {
  uint64_t *v = g_new(uint64_t, 2);
  v[0] = depth;
  v[1] = ts;
  g_hash_table_replace(e->made, g_bytes_new(id, 32), v);
}

/* Depth and date of an event the attacker built or its view holds; 0 if
 * neither (an orphan's missing parent). */
static inline int evil_lookup(const evil *e, const uint8_t id[32],
                              uint64_t *depth, uint64_t *ts) {
  GBytes *k = g_bytes_new_static(id, 32);
  const uint64_t *v = g_hash_table_lookup(e->made, k);
  g_bytes_unref(k);
  if (v) {
    *depth = v[0];
    *ts = v[1];
    return 1;
  }
  return kith_group_event_info(e->view, id, depth, ts, NULL, NULL) == KITH_OK;
}

static inline gint evil_id_cmp(gconstpointer a, gconstpointer b) {
  return memcmp(a, b, 32);
}

/* One parent, any accepted event of the view (an old one: back-dating). */
static inline evil_at evil_on(const uint8_t id[32]) {
  evil_at at = {.n = 1};
  memcpy(at.ids[0], id, 32);
  return at;
}

/* The view's current heads (at most 16), as an honest node would. */
static inline evil_at evil_on_heads(const evil *e) {
  evil_at at = {0};
  GByteArray *hs = g_byte_array_new();
  kith_group_heads(e->view, hs);
  for (guint i = 0; i + 32 <= hs->len && at.n < KITH_EVENT_MAX_PARENTS; i += 32)
    memcpy(at.ids[at.n++], hs->data + i, 32);
  g_byte_array_free(hs, TRUE);
  return at;
}

/* Fills in the honest depth and date where the caller left 0. Parents the
 * view does not hold (orphans) count as depth 0, date 0. */
static inline void evil_settle(const evil *e, evil_at *at) {
  uint64_t depth = 0, ts = 0;
  qsort(at->ids, at->n, 32, (int (*)(const void *, const void *))evil_id_cmp);
  for (size_t i = 0; i < at->n; i++) {
    uint64_t d = 0, t = 0;
    if (!evil_lookup(e, at->ids[i], &d, &t))
      d = 0, t = 0;
    depth = MAX(depth, d + 1);
    ts = MAX(ts, t);
  }
  if (!at->depth)
    at->depth = depth;
  if (!at->ts)
    at->ts = ts;
}

/* ---- keys ---- */

/* The secret of epoch that the view holds; 0 if it holds none. */
static inline int evil_secret(const evil *e, uint64_t epoch,
                              uint8_t secret[32]) {
  for (size_t i = 0; i < kith_group_n_secrets(e->view); i++) {
    uint64_t ep;
    kith_group_secret_at(e->view, i, &ep, secret);
    if (ep == epoch)
      return 1;
  }
  return 0;
}

static inline void evil_meta(const evil *e, uint64_t epoch, uint8_t meta[32]) {
  uint8_t secret[32];
  if (evil_secret(e, epoch, secret))
    kith_gcrypto_meta_key(secret, meta);
  else
    randombytes_buf(meta, 32); /* garbage: nobody can open it */
  sodium_memzero(secret, sizeof secret);
}

/* A fresh epoch: its secret and its id. */
static inline uint64_t evil_new_epoch(uint8_t secret[32]) {
  uint8_t meta[32];
  randombytes_buf(secret, 32);
  kith_gcrypto_meta_key(secret, meta);
  return kith_gcrypto_epoch_id(meta);
}

/* Message key n of author's chain in the epoch whose secret is given. */
static inline void evil_msg_key(const uint8_t secret[32],
                                const uint8_t author[32], uint64_t n,
                                uint8_t key[32]) {
  uint8_t chain[32];
  kith_gcrypto_chain_start(secret, author, chain);
  for (uint64_t i = 0; i <= n; i++)
    kith_gcrypto_chain_step(chain, key);
  sodium_memzero(chain, sizeof chain);
}

/* ---- key lists and boxes ---- */

/* A key list of n entries: first (if given) is [first_epoch, first, 1],
 * then real keys the view holds (up to real), then fake epochs made up on
 * the spot, each with a key that fits its id (so only "does this epoch
 * exist?" can refuse them). */
static inline void evil_key_list(const evil *e, kith_pack *p, uint32_t n,
                                 uint64_t first_epoch, const uint8_t *first,
                                 uint32_t real) {
  kith_pack_array(p, n);
  uint32_t k = 0;
  if (first && k < n) {
    kith_pack_array(p, 3);
    kith_pack_uint(p, first_epoch);
    kith_pack_bin(p, first, 32);
    kith_pack_uint(p, 1);
    k++;
  }
  for (size_t i = 0; e && i < kith_group_n_secrets(e->view) && real && k < n;
       i++, real--, k++) {
    uint64_t ep;
    uint8_t key[32];
    kith_group_secret_at(e->view, i, &ep, key);
    kith_pack_array(p, 3);
    kith_pack_uint(p, ep & ~KITH_EPOCH_META_ONLY);
    kith_pack_bin(p, key, 32);
    kith_pack_uint(p, (ep & KITH_EPOCH_META_ONLY) ? 0 : 1);
    sodium_memzero(key, sizeof key);
  }
  for (; k < n; k++) {
    uint8_t secret[32];
    uint64_t ep = evil_new_epoch(secret);
    kith_pack_array(p, 3);
    kith_pack_uint(p, ep);
    kith_pack_bin(p, secret, 32);
    kith_pack_uint(p, 1);
  }
}

/* A sealed box of the packed key list to the node id `to`. */
static inline GBytes *evil_box(const uint8_t to[32], const kith_pack *list) {
  size_t len = list->sb.size + KITH_SEAL_OVERHEAD;
  uint8_t *out = g_malloc(len);
  if (kith_seal(to, list->sb.data, list->sb.size, out) != KITH_OK) {
    g_free(out);
    return NULL;
  }
  return g_bytes_new_take(out, len);
}

/* len random bytes. */
static inline GBytes *evil_garbage(size_t len) {
  uint8_t *b = g_malloc(len ? len : 1);
  randombytes_buf(b, len);
  return g_bytes_new_take(b, len);
}

/* How the attacker fills one member's box of a rekey. */
typedef enum evil_box_kind {
  EVIL_BOX_GOOD,    /* [new epoch, secret, 1] */
  EVIL_BOX_GARBAGE, /* random bytes the size of a good box */
  EVIL_BOX_STUFFED, /* the secret, then the real keys, then fake epochs */
  EVIL_BOX_WRONG,   /* a well sealed list that starts with another epoch */
} evil_box_kind;

/* The extra of a rekey: one box per id (32 bytes each, in the order
 * given), each of the kind asked for (kinds[i], or kinds[0] for all if
 * n_kinds is 1). */
static inline GBytes *evil_rekey_boxes(const evil *e, const GByteArray *ids,
                                       const evil_box_kind *kinds,
                                       size_t n_kinds, uint64_t new_epoch,
                                       const uint8_t secret[32]) {
  kith_pack x;
  kith_pack_init(&x);
  kith_pack_array(&x, ids->len / 32);
  for (guint i = 0; i + 32 <= ids->len; i += 32) {
    evil_box_kind k = kinds[n_kinds == 1 ? 0 : i / 32];
    kith_pack list;
    kith_pack_init(&list);
    uint8_t other[32];
    if (k == EVIL_BOX_WRONG)
      evil_key_list(e, &list, 1, evil_new_epoch(other), other, 0);
    else
      evil_key_list(e, &list, k == EVIL_BOX_STUFFED ? e->stuff : 1, new_epoch,
                    secret, k == EVIL_BOX_STUFFED ? 64 : 0);
    if (e && e->rekey_version == KITH_EVENT_V2 && k != EVIL_BOX_STUFFED) {
      /* version 2: a good box seals the bare secret, a wrong one another
       * epoch's, a garbage one is random bytes of that size */
      kith_pack_clear(&list);
      kith_pack_init(&list);
      msgpack_sbuffer_write(
          &list.sb, (const char *)(k == EVIL_BOX_WRONG ? other : secret), 32);
    }
    GBytes *box = k == EVIL_BOX_GARBAGE ? evil_garbage(list.sb.size + 48)
                                        : evil_box(ids->data + i, &list);
    kith_pack_clear(&list);
    kith_pack_bin(&x, g_bytes_get_data(box, NULL), g_bytes_get_size(box));
    g_bytes_unref(box);
  }
  GBytes *out = g_bytes_new(x.sb.data, x.sb.size);
  kith_pack_clear(&x);
  return out;
}

/* ---- inner plaintexts (docs/protocol.md 5.6) ---- */

static inline void evil_inner_id(kith_pack *p, const uint8_t id[32]) {
  kith_pack_array(p, 1);
  kith_pack_bin(p, id, 32);
}

static inline void evil_inner_role(kith_pack *p, const uint8_t id[32],
                                   unsigned role) {
  kith_pack_array(p, 2);
  kith_pack_bin(p, id, 32);
  kith_pack_uint(p, role);
}

static inline void evil_inner_text(kith_pack *p, const char *text) {
  kith_pack_array(p, 1);
  kith_pack_cstr(p, text);
}

static inline void evil_inner_invite(kith_pack *p, const uint8_t pk[32],
                                     uint64_t uses, uint64_t expires) {
  kith_pack_array(p, 3);
  kith_pack_bin(p, pk, 32);
  kith_pack_uint(p, uses);
  kith_pack_uint(p, expires);
}

/* An add of `member` (any 32 bytes) with a join proof made with the
 * invite secret. */
static inline void evil_inner_add(const evil *e, kith_pack *p,
                                  const uint8_t member[32], const char *name,
                                  const uint8_t invite_secret[32]) {
  uint8_t pk[32], sig[64];
  kith_invite_public_key(invite_secret, pk);
  kith_invite_sign_join(invite_secret, e->gid, member, sig);
  kith_pack_array(p, 4);
  kith_pack_bin(p, member, 32);
  kith_pack_cstr(p, name);
  kith_pack_bin(p, pk, 32);
  kith_pack_bin(p, sig, 64);
}

static inline void evil_inner_rekey(kith_pack *p, uint64_t new_epoch,
                                    const uint8_t *replaces) {
  kith_pack_array(p, replaces ? 2 : 1);
  kith_pack_uint(p, new_epoch);
  if (replaces)
    kith_pack_bin(p, replaces, 32);
}

static inline void evil_inner_settings(kith_pack *p, unsigned key,
                                       unsigned value) {
  kith_pack_array(p, 2);
  kith_pack_uint(p, key);
  kith_pack_uint(p, value);
}

/* ---- bodies and events ---- */

/* The sealed part: inner under key, additional data binding kind, author
 * and group (docs/protocol.md 5.4). */
static inline void evil_pack_sealed(kith_pack *body, uint32_t kind,
                                    const uint8_t author[32],
                                    const uint8_t gid[32],
                                    const uint8_t key[32],
                                    const kith_pack *inner) {
  uint8_t ad[77];
  memcpy(ad, "kith body v1", 12);
  ad[12] = (uint8_t)kind;
  memcpy(ad + 13, author, 32);
  memcpy(ad + 45, gid, 32);
  size_t sl = inner->sb.size + KITH_SEALED_OVERHEAD;
  uint8_t *sealed = g_malloc(sl);
  kith_gcrypto_seal(key, ad, sizeof ad, (const uint8_t *)inner->sb.data,
                    inner->sb.size, sealed);
  kith_pack_bin(body, sealed, sl);
  g_free(sealed);
}

/* Packs and signs an event of the given version with signer; author NULL
 * means the signer's own id (any other author makes the signature wrong).
 * Version 1 (the form in which any epoch can be named): [1, gid, kind,
 * author, parents, depth, ts, body bin, sig]; version 2: [2, kind, author,
 * parents, depth, ts, body (its bytes as they are), sig], signed with gid.
 * The parents are packed as given. */
static inline GBytes *evil_sign_v(const kith_ident *signer, const uint8_t *gid,
                                  uint32_t version, uint32_t kind,
                                  const uint8_t *author, const evil_at *at,
                                  const uint8_t *body, size_t body_len) {
  kith_pack p;
  uint8_t sig[64], *out;
  size_t len;
  kith_pack_init(&p);
  kith_pack_array(&p, version == KITH_EVENT_V2 ? 8 : 9);
  kith_pack_uint(&p, version);
  if (version != KITH_EVENT_V2)
    kith_pack_bin(&p, gid, gid ? 32 : 0);
  kith_pack_uint(&p, kind);
  kith_pack_bin(&p, author ? author : signer->pk, 32);
  kith_pack_array(&p, (uint32_t)at->n);
  for (size_t i = 0; i < at->n; i++)
    kith_pack_bin(&p, at->ids[i], 32);
  kith_pack_uint(&p, at->depth);
  kith_pack_uint(&p, at->ts);
  GByteArray *msg = g_byte_array_new();
  if (version == KITH_EVENT_V2) {
    msgpack_sbuffer_write(&p.sb, (const char *)body, body_len);
    g_byte_array_append(msg, (const guint8 *)"kith event v2", 13);
    g_byte_array_append(msg, gid, 32);
    g_byte_array_append(msg, (const guint8 *)p.sb.data, (guint)p.sb.size);
  } else {
    kith_pack_bin(&p, body, body_len);
    g_byte_array_append(msg, (const guint8 *)"\x98", 1);
    g_byte_array_append(msg, (const guint8 *)p.sb.data + 1,
                        (guint)p.sb.size - 1);
  }
  kith_ident_sign(signer, msg->data, msg->len, sig);
  g_byte_array_unref(msg);
  kith_pack_bin(&p, sig, 64);
  if (kith_pack_take(&p, &out, &len) != KITH_OK)
    return NULL;
  return g_bytes_new_take(out, len);
}

static inline GBytes *evil_sign(const kith_ident *signer, const uint8_t *gid,
                                uint32_t kind, const uint8_t *author,
                                const evil_at *at, const uint8_t *body,
                                size_t body_len) {
  return evil_sign_v(signer, gid, KITH_EVENT_V1, kind, author, at, body,
                     body_len);
}

/* Notes a built event (see evil_note). */
static inline void evil_remember(const evil *e, GBytes *raw) {
  kith_event ev;
  size_t len;
  const uint8_t *p = g_bytes_get_data(raw, &len);
  if (kith_event_decode(p, len, e->gid, &ev) != KITH_OK)
    return;
  evil_note(e, ev.id, ev.depth, ev.ts_ms);
  kith_event_clear(&ev);
}

/* The outer body (docs/protocol.md 5.5) around inner sealed under key:
 * [epoch, n, sealed] for a message (n >= 0), [epoch, sealed, extra|nil]
 * otherwise; signed at `at` (settled by the caller) and remembered. inner
 * is consumed, key wiped. */
static inline GBytes *evil_finish(const evil *e, uint32_t kind,
                                  const evil_at *at, uint64_t epoch, int64_t n,
                                  uint8_t key[32], kith_pack *inner,
                                  GBytes *extra) {
  uint8_t *body;
  size_t len;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 3);
  kith_pack_uint(&p, epoch);
  if (n >= 0)
    kith_pack_uint(&p, (uint64_t)n);
  evil_pack_sealed(&p, kind, e->me->pk, e->gid, key, inner);
  if (n < 0 && extra)
    kith_pack_bin(&p, g_bytes_get_data(extra, NULL), g_bytes_get_size(extra));
  else if (n < 0)
    kith_pack_nil(&p);
  sodium_memzero(key, 32);
  kith_pack_clear(inner);
  if (kith_pack_take(&p, &body, &len) != KITH_OK)
    return NULL;
  GBytes *raw = evil_sign_v(
      e->me, e->gid, kind == KITH_EV_REKEY ? e->rekey_version : KITH_EVENT_V1,
      kind, NULL, at, body, len);
  g_free(body);
  evil_remember(e, raw);
  return raw;
}

/* A control event by the attacker at `at`, its body naming `epoch` and
 * sealed under that epoch's meta key (garbage if the view lacks it);
 * extra is the add's or rekey's third element (NULL: nil). inner is
 * consumed. */
static inline GBytes *evil_control(const evil *e, uint32_t kind, evil_at at,
                                   uint64_t epoch, kith_pack *inner,
                                   GBytes *extra) {
  uint8_t meta[32];
  evil_settle(e, &at);
  evil_meta(e, epoch, meta);
  return evil_finish(e, kind, &at, epoch, -1, meta, inner, extra);
}

/* The same, sealed under the meta key of the epoch whose secret is given
 * (one the attacker's view does not hold yet, such as its own new one). */
static inline GBytes *evil_control_in(const evil *e, uint32_t kind, evil_at at,
                                      uint64_t epoch, const uint8_t secret[32],
                                      kith_pack *inner, GBytes *extra) {
  uint8_t meta[32];
  evil_settle(e, &at);
  kith_gcrypto_meta_key(secret, meta);
  return evil_finish(e, kind, &at, epoch, -1, meta, inner, extra);
}

/* A message by the attacker at `at` in epoch, chain number n, under the
 * right message key if the epoch's secret is given or the view holds it
 * (else under garbage). */
static inline GBytes *evil_message(const evil *e, evil_at at, uint64_t epoch,
                                   const uint8_t *given, uint64_t n,
                                   const char *text) {
  uint8_t secret[32], key[32];
  evil_settle(e, &at);
  if (given)
    memcpy(secret, given, 32);
  if (given || evil_secret(e, epoch, secret))
    evil_msg_key(secret, e->me->pk, n, key);
  else
    randombytes_buf(key, sizeof key);
  sodium_memzero(secret, sizeof secret);
  kith_pack inner;
  kith_pack_init(&inner);
  evil_inner_text(&inner, text);
  return evil_finish(e, KITH_EV_MESSAGE, &at, epoch, (int64_t)n, key, &inner,
                     NULL);
}

/* A rekey at `at` (its body in epoch) to the epoch new_epoch whose secret
 * is given (a fresh one, or one that exists already), one box per id of
 * `members` (which should be the members at `at`, by id) of the kinds
 * asked for; replaces makes it a recovery rekey. */
static inline GBytes *evil_rekey_to(const evil *e, evil_at at, uint64_t epoch,
                                    const GByteArray *members,
                                    const evil_box_kind *kinds, size_t n_kinds,
                                    const uint8_t *replaces, uint64_t new_epoch,
                                    const uint8_t secret[32]) {
  GBytes *boxes =
      evil_rekey_boxes(e, members, kinds, n_kinds, new_epoch, secret);
  kith_pack inner;
  kith_pack_init(&inner);
  evil_inner_rekey(&inner, new_epoch, replaces);
  GBytes *raw = evil_control(e, KITH_EV_REKEY, at, epoch, &inner, boxes);
  g_bytes_unref(boxes);
  return raw;
}

/* The same to a fresh epoch; *new_epoch and secret_out (if given) get it. */
static inline GBytes *evil_rekey(const evil *e, evil_at at, uint64_t epoch,
                                 const GByteArray *members,
                                 const evil_box_kind *kinds, size_t n_kinds,
                                 const uint8_t *replaces, uint64_t *new_epoch,
                                 uint8_t *secret_out) {
  uint8_t secret[32];
  uint64_t ep = evil_new_epoch(secret);
  GBytes *raw = evil_rekey_to(e, at, epoch, members, kinds, n_kinds, replaces,
                              ep, secret);
  if (new_epoch)
    *new_epoch = ep;
  if (secret_out)
    memcpy(secret_out, secret, 32);
  sodium_memzero(secret, sizeof secret);
  return raw;
}

/* An add at `at` of member (any 32 bytes), its extra a box to member of a
 * key list of n entries (real keys first, then fake epochs), or `extra`
 * if given. */
static inline GBytes *evil_add(const evil *e, evil_at at, uint64_t epoch,
                               const uint8_t member[32], const char *name,
                               const uint8_t invite_secret[32], uint32_t n_keys,
                               GBytes *extra) {
  kith_pack inner, list;
  kith_pack_init(&inner);
  evil_inner_add(e, &inner, member, name, invite_secret);
  GBytes *box = extra ? g_bytes_ref(extra) : NULL;
  if (!box) {
    kith_pack_init(&list);
    evil_key_list(e, &list, n_keys, 0, NULL, n_keys);
    box = evil_box(member, &list);
    kith_pack_clear(&list);
  }
  if (!box)
    box = evil_garbage(100);
  GBytes *raw = evil_control(e, KITH_EV_ADD, at, epoch, &inner, box);
  g_bytes_unref(box);
  return raw;
}

/* ---- what is not an event ---- */

/* raw with one byte of the signature flipped. */
static inline GBytes *evil_bad_sig(GBytes *raw) {
  size_t len;
  const uint8_t *p = g_bytes_get_data(raw, &len);
  uint8_t *c = g_memdup2(p, len);
  c[len - 1] ^= 0x40;
  return g_bytes_new_take(c, len);
}

/* raw re-signed by the attacker under another author's id. */
static inline GBytes *evil_as_author(const evil *e, GBytes *raw,
                                     const uint8_t author[32]) {
  size_t len;
  kith_event ev;
  const uint8_t *p = g_bytes_get_data(raw, &len);
  if (kith_event_decode(p, len, e->gid, &ev) != KITH_OK)
    return NULL;
  evil_at at = {.n = ev.n_parents, .depth = ev.depth, .ts = ev.ts_ms};
  memcpy(at.ids, ev.parents, 32 * ev.n_parents);
  GBytes *out = evil_sign_v(e->me, ev.group_id, ev.version, ev.kind, author,
                            &at, ev.body, ev.body_len);
  kith_event_clear(&ev);
  return out;
}

/* A well signed event of another group (its group id is random). */
static inline GBytes *evil_other_group(const evil *e, evil_at at) {
  uint8_t gid[32], junk[80];
  randombytes_buf(gid, sizeof gid);
  randombytes_buf(junk, sizeof junk);
  evil_settle(e, &at);
  return evil_sign(e->me, gid, KITH_EV_TOPIC, NULL, &at, junk, sizeof junk);
}

/* A well signed event whose body is not a body. */
static inline GBytes *evil_junk_body(const evil *e, evil_at at, uint32_t kind) {
  uint8_t junk[64];
  randombytes_buf(junk, sizeof junk);
  evil_settle(e, &at);
  return evil_sign(e->me, e->gid, kind, NULL, &at, junk, sizeof junk);
}

#endif
