/* kith: a replay cache (sans-I/O: time comes in as now_ms).
 *
 * Remembers 16-byte tags (a datagram's nonce, a digest of a signed
 * message) until they expire, so that the same message is not taken twice
 * while it is still fresh enough to be taken at all. Each tag is charged to
 * a source (1 to KITH_REPLAY_SOURCE_MAX bytes: an address, a node id).
 *
 * Caps: at most `cap` tags in all, at most `per_source` for one source.
 * Room is made, never refused, so that a flood cannot shut anybody out: a
 * source at its quota forgets its own oldest tag; otherwise expired tags go
 * first, then, if the cache is full, the oldest of all. A replay of a
 * forgotten message is then taken again, so the messages a cache guards
 * must be harmless to take twice; what the cache buys is that a flood from
 * other sources cannot make anybody's recent tag be forgotten (the
 * per-source quota). Tags are hashed with a random key per cache. */
#ifndef KITH_REPLAY_H
#define KITH_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#define KITH_REPLAY_TAG_LEN 16
#define KITH_REPLAY_SOURCE_MAX 32

typedef struct kith_replay kith_replay;

/* cap >= 1, 1 <= per_source <= cap; NULL otherwise. */
kith_replay *kith_replay_new(size_t cap, size_t per_source);
void kith_replay_free(kith_replay *r);
/* 1 if tag is new: it is remembered (charged to source) until expiry_ms.
 * 0 if it is a replay of a remembered tag (nothing changes), or if source
 * is empty or longer than KITH_REPLAY_SOURCE_MAX. */
int kith_replay_check(kith_replay *r, const uint8_t tag[KITH_REPLAY_TAG_LEN],
                      const uint8_t *source, size_t source_len,
                      uint64_t expiry_ms, uint64_t now_ms);
/* Tags remembered now (at most cap). */
size_t kith_replay_size(const kith_replay *r);

#endif
