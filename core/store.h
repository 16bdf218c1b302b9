/* kith: the SQLite store (WAL). The only place core touches the disk.
 *
 * Everything secret or decrypted is stored sealed under the storage key
 * (XChaCha20-Poly1305, random nonce, the row's table and key as additional
 * data): the identity seed, names, epoch secrets, sender chains and
 * message texts. Event bytes are stored as received (their bodies are
 * already encrypted to the group). Each write is one transaction, or part
 * of the open batch. */
#ifndef KITH_STORE_H
#define KITH_STORE_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "event.h"

typedef struct kith_store kith_store;

/* Opens (creating if missing) the database at path. key is copied. */
KITH_MUST kith_err kith_store_open(const char *path, const uint8_t key[32],
                                   kith_store **out);
void kith_store_close(kith_store *s);

/* Identity: seed and display name. get: KITH_ERR_NOT_FOUND if none;
 * KITH_ERR_CRYPTO if the storage key is wrong. *name is g_malloc'ed. */
KITH_MUST kith_err kith_store_put_identity(kith_store *s,
                                           const uint8_t seed[32],
                                           const char *name);
KITH_MUST kith_err kith_store_get_identity(kith_store *s, uint8_t seed[32],
                                           char **name);

/* Groups this node holds (member or joining). */
KITH_MUST kith_err kith_store_put_group(kith_store *s, const uint8_t gid[32]);
KITH_MUST kith_err kith_store_list_groups(kith_store *s, GByteArray *gids);

/* Forgets everything stored of a group (a join that did not succeed). */
KITH_MUST kith_err kith_store_drop_group(kith_store *s, const uint8_t gid[32]);

/* Read marker and event count of a group (0 and no marker if none). */
typedef struct kith_store_group {
  uint64_t n_events;
  int has_read;
  uint64_t read_ts;
  uint8_t read_id[32];
} kith_store_group;
KITH_MUST kith_err kith_store_get_group(kith_store *s, const uint8_t gid[32],
                                        kith_store_group *out);
KITH_MUST kith_err kith_store_set_count(kith_store *s, const uint8_t gid[32],
                                        uint64_t n_events);
KITH_MUST kith_err kith_store_set_read(kith_store *s, const uint8_t gid[32],
                                       uint64_t ts, const uint8_t id[32]);

/* An accepted event as the group engine writes it (core/group_int.h):
 * cseq is the control sequence number of a control event, UINT32_MAX for
 * the others; cf is the control frontier of the event's parents for a
 * control event, the event's own for the others (cseqs, ascending); facts
 * the control event's facts at its parents (opaque here); text its
 * decrypted text, if any (stored sealed); ref the event a reply, reaction,
 * edit or delete refers to; flag its KITH_STORE_* bits. convert: the row
 * was stored by an older kith (schema 2): write its derived columns,
 * keeping its text. KITH_ERR_DUPLICATE if the id is stored already
 * (nothing is written). */
#define KITH_STORE_ON 1      /* flag: a reaction added (not taken back) */
#define KITH_STORE_APPLIES 2 /* flag: a react, edit or delete that applies */
typedef struct kith_store_row {
  const kith_event *ev;
  uint32_t cseq;
  const uint32_t *cf;
  uint32_t n_cf;
  const uint8_t *facts;
  size_t facts_len;
  const char *text;
  size_t text_len;
  const uint8_t *ref;
  int flag;
  int convert;
} kith_store_row;
KITH_MUST kith_err kith_store_put_event(kith_store *s, const kith_store_row *r);

/* What the engine keeps of an event it does not hold in memory.
 * KITH_ERR_NOT_FOUND for an event not stored (or not converted yet). */
typedef struct kith_store_sum {
  uint64_t depth, ts;
  uint32_t kind;
  uint8_t author[32];
  uint32_t cseq;
  uint32_t *cf; /* g_malloc'ed */
  uint32_t n_cf;
} kith_store_sum;
void kith_store_sum_clear(kith_store_sum *s);
KITH_MUST kith_err kith_store_get_summary(kith_store *s, const uint8_t gid[32],
                                          const uint8_t id[32],
                                          kith_store_sum *out);
/* Raw bytes of a stored event (a new GBytes). */
KITH_MUST kith_err kith_store_get_raw(kith_store *s, const uint8_t gid[32],
                                      const uint8_t id[32], GBytes **out);
/* Each control event of a group in cseq order, with its parents'
 * frontier, its facts and its inner plaintext (stored as its text, so a
 * restart needs no group key to read control events). fn's pointers are
 * valid during the call only. */
typedef struct kith_store_ctl {
  const uint8_t *raw;
  size_t len;
  uint32_t cseq;
  const uint32_t *pf;
  uint32_t n_pf;
  const uint8_t *facts, *note;
  size_t facts_len, note_len;
} kith_store_ctl;
typedef kith_err (*kith_store_ctl_fn)(void *ctx, const kith_store_ctl *c);
KITH_MUST kith_err kith_store_load_controls(kith_store *s,
                                            const uint8_t gid[32],
                                            kith_store_ctl_fn fn, void *ctx);
/* Replaces the group's heads by ids (32 bytes each). */
KITH_MUST kith_err kith_store_set_heads(kith_store *s, const uint8_t gid[32],
                                        const uint8_t *ids, size_t n);
/* The group's heads (32-byte ids appended to ids). */
KITH_MUST kith_err kith_store_load_heads(kith_store *s, const uint8_t gid[32],
                                         GByteArray *ids);
/* Raw bytes (GBytes*) of every event stored by an older kith and not
 * converted yet, in (depth, id) order. */
KITH_MUST kith_err kith_store_load_old(kith_store *s, const uint8_t gid[32],
                                       GPtrArray *out);

/* Up to 2 ids of the group's events in [lo, hi] (32 bytes each), appended
 * to out. */
KITH_MUST kith_err kith_store_find_range(kith_store *s, const uint8_t gid[32],
                                         const uint8_t lo[32],
                                         const uint8_t hi[32], GByteArray *out);
/* Calls fn with the timestamp and id of every stored event of a group. */
typedef void (*kith_store_id_fn)(void *ctx, uint64_t ts, const uint8_t id[32]);
KITH_MUST kith_err kith_store_each_id(kith_store *s, const uint8_t gid[32],
                                      kith_store_id_fn fn, void *ctx);

/* The read-only range API of reconciliation (core/recon_index.h), in the
 * order (ts, id) of the events_log index. Each calls fn with (ts, id):
 * scan, up to max events of the group at or after (ts, id) in that order;
 * by_prefix, up to max events whose id begins with prefix[0..plen); has, the
 * event id if the group holds it. Rows written in the open batch count. */
KITH_MUST kith_err kith_store_scan_ids(kith_store *s, const uint8_t gid[32],
                                       uint64_t ts, const uint8_t id[32],
                                       size_t max, kith_store_id_fn fn,
                                       void *ctx);
KITH_MUST kith_err kith_store_ids_by_prefix(kith_store *s,
                                            const uint8_t gid[32],
                                            const uint8_t *prefix, size_t plen,
                                            size_t max, kith_store_id_fn fn,
                                            void *ctx);
KITH_MUST kith_err kith_store_has_id(kith_store *s, const uint8_t gid[32],
                                     const uint8_t id[32], kith_store_id_fn fn,
                                     void *ctx);

/* Sender chain state (sealed) of a group, by key k (40 bytes). */
KITH_MUST kith_err kith_store_put_chain(kith_store *s, const uint8_t gid[32],
                                        const uint8_t k[40],
                                        const uint8_t *state, size_t len);
/* *state is g_malloc'ed (wipe it after use). KITH_ERR_NOT_FOUND. */
KITH_MUST kith_err kith_store_get_chain(kith_store *s, const uint8_t gid[32],
                                        const uint8_t k[40], uint8_t **state,
                                        size_t *len);

/* One item of a group's log: a message with its text, or a control event
 * that makes a notice (its text is then the event's inner plaintext, to
 * be rendered); or a react, edit or delete that refers to a message. */
typedef struct kith_store_item {
  uint8_t id[32], author[32], ref[32];
  int has_ref, flag; /* flag: KITH_STORE_ON, KITH_STORE_APPLIES */
  uint64_t ts, depth;
  uint32_t kind;
  uint8_t *text; /* g_malloc'ed, NUL-terminated (text_len excludes it) */
  size_t text_len;
} kith_store_item;
void kith_store_item_free(kith_store_item *it);
/* A page of the log in display order (ts, id): the last n (at most
 * MAX_ROWS) items before event `before` (NULL: the newest), and only
 * after (after_ts, after_id) when after_id is set. Appends
 * kith_store_item* to out. */
KITH_MUST kith_err kith_store_list_items(kith_store *s, const uint8_t gid[32],
                                         size_t n, const uint8_t *before,
                                         uint64_t after_ts,
                                         const uint8_t *after_id,
                                         GPtrArray *out);
/* The reacts, edits and deletes that apply to message `target`, in
 * (depth, id) order. */
KITH_MUST kith_err kith_store_list_related(kith_store *s, const uint8_t gid[32],
                                           const uint8_t target[32],
                                           GPtrArray *out);
/* One item by id (any kind with a stored text). KITH_ERR_NOT_FOUND. */
KITH_MUST kith_err kith_store_get_item(kith_store *s, const uint8_t gid[32],
                                       const uint8_t id[32],
                                       kith_store_item **out);
/* Events after (ts, id) in display order that count as unread: the
 * readable messages (kind message, with a text) not written by `me`,
 * among the first KITH_STORE_UNREAD_SCAN events after (ts, id), so the
 * count is at most KITH_STORE_UNREAD_SCAN and costs at most that many
 * rows however long the log. */
#define KITH_STORE_UNREAD_SCAN 1000
KITH_MUST kith_err kith_store_count_after(kith_store *s, const uint8_t gid[32],
                                          uint64_t ts, const uint8_t id[32],
                                          const uint8_t me[32], uint64_t *n);

/* Epoch secrets. load appends (epoch uint64 LE 8 bytes || secret 32) blocks
 * of 40 bytes to out. */
KITH_MUST kith_err kith_store_put_secret(kith_store *s, const uint8_t gid[32],
                                         uint64_t epoch,
                                         const uint8_t secret[32]);
KITH_MUST kith_err kith_store_load_secrets(kith_store *s, const uint8_t gid[32],
                                           GByteArray *out);

/* Batches: writes between batch_begin and batch_commit share one
 * transaction, which makes ingest several times faster than a commit per
 * event. A write that fails loses the whole batch (see
 * kith_store_batch_failed): commit then returns KITH_ERR_FULL (the disk
 * is full) or KITH_ERR_IO, and none of the writes since batch_begin are
 * on disk. Any write returns KITH_ERR_FULL when the disk is full. */
KITH_MUST kith_err kith_store_batch_begin(kith_store *s);
KITH_MUST kith_err kith_store_batch_commit(kith_store *s);
/* The same, synced to the disk (SQLite synchronous=FULL for this commit):
 * it survives power loss, not only a crash of the process. */
KITH_MUST kith_err kith_store_batch_commit_durable(kith_store *s);
/* Ends the batch, writing none of it (a no-op outside a batch). */
void kith_store_batch_abort(kith_store *s);
int kith_store_in_batch(const kith_store *s);
/* A write of the open batch failed: the batch is lost (its writes are
 * rolled back; every later write, and the commit, which ends the batch,
 * return the same KITH_ERR_FULL or KITH_ERR_IO). A duplicate
 * (KITH_ERR_DUPLICATE) or a missing row (KITH_ERR_NOT_FOUND) is not a
 * failure. */
int kith_store_batch_failed(const kith_store *s);

/* Last known signal address of a node (for reconnecting). */
KITH_MUST kith_err kith_store_put_peer(kith_store *s, const uint8_t node[32],
                                       const char *host, uint16_t port,
                                       uint64_t seen_ms);
typedef struct kith_stored_peer {
  uint8_t node[32];
  char host[64];
  uint16_t port;
  uint64_t seen_ms;
} kith_stored_peer;
/* Appends kith_stored_peer structs (by value) to out (a GArray of them). */
KITH_MUST kith_err kith_store_list_peers(kith_store *s, GArray *out);

/* Relay friends: nodes this one relays for (with --relay) and may relay
 * through. The name is sealed; host may be "" (port 0) when unknown. */
typedef struct kith_friend {
  uint8_t node[32];
  char *name; /* g_malloc'ed */
  char host[64];
  uint16_t port;
} kith_friend;
void kith_friend_free(kith_friend *f);
/* Adds or updates a friend. */
KITH_MUST kith_err kith_store_put_friend(kith_store *s, const uint8_t node[32],
                                         const char *name, const char *host,
                                         uint16_t port);
/* KITH_ERR_NOT_FOUND if node is not a friend. */
KITH_MUST kith_err kith_store_remove_friend(kith_store *s,
                                            const uint8_t node[32]);
/* Appends kith_friend* (free with kith_friend_free) in node id order. */
KITH_MUST kith_err kith_store_list_friends(kith_store *s, GPtrArray *out);

#endif
