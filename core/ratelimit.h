/* kith: rate limits (sans-I/O: time comes in as now_ms).
 *
 * A token bucket holds at most `burst` tokens and gains `rate` tokens per
 * second; an action that costs c tokens happens only if c tokens are there,
 * and takes them. A clock that goes backwards refills nothing.
 *
 * kith_ratelimit keeps one bucket per key (1 to KITH_RATELIMIT_KEY_MAX
 * bytes: an IPv4 address, a node id) for at most `cap` keys. A key seen for
 * the first time always gets a full bucket: when the table is full, the key
 * used least recently gives up its place (and starts full if it comes
 * back). So keys that flood the table cannot shut a new key out; what they
 * gain is a fresh burst each, which a caller bounds with one more bucket
 * shared by all keys. Keys are hashed with a random key per table, so
 * chosen keys cannot degrade the table. */
#ifndef KITH_RATELIMIT_H
#define KITH_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define KITH_RATELIMIT_KEY_MAX 32

typedef struct kith_bucket {
  double tokens;
  uint64_t at_ms; /* when tokens was last brought up to date */
} kith_bucket;

/* A full bucket. */
void kith_bucket_init(kith_bucket *b, double burst, uint64_t now_ms);
/* Refills the bucket up to now_ms; returns 1 and takes `cost` tokens if
 * that many are there, else 0 (and takes none). */
int kith_bucket_take(kith_bucket *b, double rate, double burst, double cost,
                     uint64_t now_ms);

typedef struct kith_ratelimit kith_ratelimit;

/* rate > 0 tokens per second, burst >= 1, cap >= 1 keys. NULL if out of
 * range. */
kith_ratelimit *kith_ratelimit_new(double rate, double burst, size_t cap);
void kith_ratelimit_free(kith_ratelimit *rl);
/* kith_bucket_take on the bucket of key (copied; created full if new). 0
 * also for a key of 0 or more than KITH_RATELIMIT_KEY_MAX bytes. */
int kith_ratelimit_take(kith_ratelimit *rl, const uint8_t *key, size_t key_len,
                        double cost, uint64_t now_ms);
/* Keys tracked now (at most cap). */
size_t kith_ratelimit_size(const kith_ratelimit *rl);

#endif
