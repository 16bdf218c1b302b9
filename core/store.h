/* kith: the SQLite store (WAL). The only place core touches the disk.
 *
 * Everything secret or decrypted is stored sealed under the storage key
 * (XChaCha20-Poly1305, random nonce, the row's table and key as additional
 * data): the identity seed, names, epoch secrets and message texts. Event
 * bytes are stored as received (their bodies are already encrypted to the
 * group). Each write is one transaction. */
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

/* An accepted event, with its decrypted text if it is a message (text may
 * be NULL), in one transaction. Storing the same id twice is a no-op. */
KITH_MUST kith_err kith_store_put_event(kith_store *s, const kith_event *ev,
                                        const char *text, size_t text_len);
/* Raw bytes of every event of a group in (depth, id) order: appends a
 * GBytes* per event to out. */
KITH_MUST kith_err kith_store_load_events(kith_store *s, const uint8_t gid[32],
                                          GPtrArray *out);

typedef struct kith_stored_msg {
  uint8_t event_id[32];
  uint8_t sender[32];
  uint64_t ts_ms;
  char *text; /* g_malloc'ed, NUL-terminated */
} kith_stored_msg;
void kith_stored_msg_free(kith_stored_msg *m);
/* The last n (0 = all) messages of a group in display order (ts, id):
 * appends kith_stored_msg* to out. */
KITH_MUST kith_err kith_store_list_messages(kith_store *s,
                                            const uint8_t gid[32], size_t n,
                                            GPtrArray *out);
/* The same, among the messages before event `before` in display order
 * (before NULL: all), for reading a long log page by page. */
KITH_MUST kith_err kith_store_list_messages_before(kith_store *s,
                                                   const uint8_t gid[32],
                                                   size_t n,
                                                   const uint8_t *before,
                                                   GPtrArray *out);

/* Epoch secrets. load appends (epoch uint64 LE 8 bytes || secret 32) blocks
 * of 40 bytes to out. */
KITH_MUST kith_err kith_store_put_secret(kith_store *s, const uint8_t gid[32],
                                         uint64_t epoch,
                                         const uint8_t secret[32]);
KITH_MUST kith_err kith_store_load_secrets(kith_store *s, const uint8_t gid[32],
                                           GByteArray *out);

/* Batches: writes between batch_begin and batch_commit share one
 * transaction (each write is still all-or-nothing), which
 * makes ingest several times faster than a commit per event. commit
 * returns KITH_ERR_FULL (disk full) or KITH_ERR_IO if the batch was lost:
 * the writes since batch_begin are then not on disk. Any write returns
 * KITH_ERR_FULL when the disk is full. */
KITH_MUST kith_err kith_store_batch_begin(kith_store *s);
KITH_MUST kith_err kith_store_batch_commit(kith_store *s);
/* Ends the batch, writing none of it (a no-op outside a batch). */
void kith_store_batch_abort(kith_store *s);
int kith_store_in_batch(const kith_store *s);

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
