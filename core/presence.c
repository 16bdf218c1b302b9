/* kith: presence beats and the table of who was heard from lately. */
#include "presence.h"

#include <glib.h>
#include <string.h>

#include "codec.h"

#define BEAT_CONTEXT "kith-presence-v1"
#define BEAT_CONTEXT_LEN (sizeof BEAT_CONTEXT - 1)
#define TS_MAX (UINT64_C(1) << 62)

typedef struct entry {
  uint8_t node[32];
  uint64_t beat_ts;  /* the newest beat's ts_ms (replays are older) */
  uint64_t state_ts; /* ts_ms of the newest beat or event heard */
  uint64_t heard;    /* monotonic ms when last heard */
  uint64_t seen;     /* wall ms when last heard */
  uint8_t online;
} entry;

struct kith_presence {
  uint8_t group[32];
  GHashTable *nodes; /* node id -> entry */
};

static guint id_hash(gconstpointer k) {
  guint h;
  memcpy(&h, k, sizeof h);
  return h;
}

static gboolean id_equal(gconstpointer a, gconstpointer b) {
  return memcmp(a, b, 32) == 0;
}

/* The signed part: the context, then [group, node, ts_ms, state]. */
static void pack_signed(kith_pack *pk, const uint8_t group[32],
                        const uint8_t node[32], uint64_t ts, int state,
                        uint32_t n) {
  kith_pack_array(pk, n);
  kith_pack_bin(pk, group, 32);
  kith_pack_bin(pk, node, 32);
  kith_pack_uint(pk, ts);
  kith_pack_uint(pk, (uint64_t)state);
}

static kith_err signed_bytes(const uint8_t group[32], const uint8_t node[32],
                             uint64_t ts, int state, uint8_t **msg,
                             size_t *len) {
  kith_pack pk;
  uint8_t *body;
  size_t blen;
  kith_pack_init(&pk);
  pack_signed(&pk, group, node, ts, state, 4);
  kith_err err = kith_pack_take(&pk, &body, &blen);
  if (err != KITH_OK)
    return err;
  *msg = g_malloc(BEAT_CONTEXT_LEN + blen);
  memcpy(*msg, BEAT_CONTEXT, BEAT_CONTEXT_LEN);
  memcpy(*msg + BEAT_CONTEXT_LEN, body, blen);
  *len = BEAT_CONTEXT_LEN + blen;
  g_free(body);
  return KITH_OK;
}

kith_err kith_beat_encode(const kith_ident *id, const uint8_t group[32],
                          uint64_t ts_ms, int state, uint8_t out[KITH_BEAT_MAX],
                          size_t *len) {
  uint8_t sig[KITH_SIG_LEN], *msg, *beat;
  size_t mlen, blen;
  kith_pack pk;
  if ((state != KITH_PRESENCE_OFFLINE && state != KITH_PRESENCE_ONLINE) ||
      ts_ms > TS_MAX)
    return KITH_ERR_ARG;
  kith_err err = signed_bytes(group, id->pk, ts_ms, state, &msg, &mlen);
  if (err != KITH_OK)
    return err;
  kith_ident_sign(id, msg, mlen, sig);
  g_free(msg);
  kith_pack_init(&pk);
  pack_signed(&pk, group, id->pk, ts_ms, state, 5);
  kith_pack_bin(&pk, sig, sizeof sig);
  if ((err = kith_pack_take(&pk, &beat, &blen)) != KITH_OK)
    return err;
  g_assert(blen <= KITH_BEAT_MAX);
  memcpy(out, beat, blen);
  *len = blen;
  g_free(beat);
  return KITH_OK;
}

static kith_err read_beat(const msgpack_object *root, kith_beat *b) {
  const msgpack_object *f;
  uint64_t ts, state;
  if (kith_codec_array(root, 5, &f) != KITH_OK ||
      kith_codec_bin_fixed(&f[0], b->group, 32) != KITH_OK ||
      kith_codec_bin_fixed(&f[1], b->node, 32) != KITH_OK ||
      kith_codec_uint(&f[2], TS_MAX, &ts) != KITH_OK ||
      kith_codec_uint(&f[3], KITH_PRESENCE_ONLINE, &state) != KITH_OK ||
      kith_codec_bin_fixed(&f[4], b->sig, KITH_SIG_LEN) != KITH_OK)
    return KITH_ERR_DECODE;
  b->ts_ms = ts;
  b->state = (uint8_t)state;
  return KITH_OK;
}

kith_err kith_beat_decode(const uint8_t *buf, size_t len, kith_beat *b) {
  msgpack_unpacked u;
  uint8_t *msg;
  size_t mlen;
  if (buf == NULL || len == 0 || len > KITH_BEAT_MAX)
    return KITH_ERR_DECODE;
  msgpack_unpacked_init(&u);
  kith_err err = kith_codec_unpack(buf, len, &u);
  if (err == KITH_OK)
    err = read_beat(&u.data, b);
  msgpack_unpacked_destroy(&u);
  if (err != KITH_OK)
    return KITH_ERR_DECODE;
  err = signed_bytes(b->group, b->node, b->ts_ms, b->state, &msg, &mlen);
  if (err != KITH_OK)
    return err;
  err = kith_sig_verify(b->node, msg, mlen, b->sig);
  g_free(msg);
  return err;
}

uint64_t kith_presence_period(size_t members, uint64_t min_ms) {
  uint64_t p = (uint64_t)members * KITH_PRESENCE_PER_MEMBER_MS;
  p = MIN(p, KITH_PRESENCE_PERIOD_MAX_MS);
  return MAX(p, min_ms);
}

kith_presence *kith_presence_new(const uint8_t group[32]) {
  kith_presence *p = g_new0(kith_presence, 1);
  memcpy(p->group, group, 32);
  p->nodes = g_hash_table_new_full(id_hash, id_equal, NULL, g_free);
  return p;
}

void kith_presence_free(kith_presence *p) {
  if (p == NULL)
    return;
  g_hash_table_destroy(p->nodes);
  g_free(p);
}

static int within_skew(uint64_t ts, uint64_t wall) {
  uint64_t d = ts > wall ? ts - wall : wall - ts;
  return d <= KITH_PRESENCE_SKEW_MS;
}

/* node's entry (made; NULL if the table is full). */
static entry *entry_get(kith_presence *p, const uint8_t node[32]) {
  entry *e = g_hash_table_lookup(p->nodes, node);
  if (e != NULL || g_hash_table_size(p->nodes) >= KITH_PRESENCE_MAX)
    return e;
  e = g_new0(entry, 1);
  memcpy(e->node, node, 32);
  g_hash_table_insert(p->nodes, e->node, e);
  return e;
}

static void note(entry *e, uint64_t ts, int online, uint64_t now,
                 uint64_t wall) {
  e->state_ts = ts;
  e->online = (uint8_t)online;
  e->heard = now;
  e->seen = MAX(e->seen, wall);
}

kith_err kith_presence_beat(kith_presence *p, const kith_beat *b,
                            uint64_t now_ms, uint64_t wall_ms) {
  if (memcmp(b->group, p->group, 32) != 0)
    return KITH_ERR_PROTOCOL;
  if (!within_skew(b->ts_ms, wall_ms))
    return KITH_ERR_EXPIRED;
  entry *e = g_hash_table_lookup(p->nodes, b->node);
  if (e != NULL && b->ts_ms <= e->beat_ts)
    return KITH_ERR_DUPLICATE;
  if (e == NULL && (e = entry_get(p, b->node)) == NULL)
    return KITH_ERR_LIMIT;
  e->beat_ts = b->ts_ms;
  if (b->ts_ms > e->state_ts)
    note(e, b->ts_ms, b->state == KITH_PRESENCE_ONLINE, now_ms, wall_ms);
  return KITH_OK;
}

void kith_presence_heard(kith_presence *p, const uint8_t node[32],
                         uint64_t ts_ms, uint64_t now_ms, uint64_t wall_ms) {
  if (!within_skew(ts_ms, wall_ms))
    return;
  entry *e = entry_get(p, node);
  if (e != NULL && ts_ms > e->state_ts)
    note(e, ts_ms, 1, now_ms, wall_ms);
}

int kith_presence_online(const kith_presence *p, const uint8_t node[32],
                         uint64_t now_ms, uint64_t period_ms,
                         uint64_t *last_seen_ms) {
  const entry *e = g_hash_table_lookup(p->nodes, node);
  uint64_t timeout =
      period_ms * KITH_PRESENCE_TIMEOUT_NUM / KITH_PRESENCE_TIMEOUT_DEN;
  if (last_seen_ms != NULL)
    *last_seen_ms = e != NULL ? e->seen : 0;
  return e != NULL && e->online && now_ms < e->heard + timeout;
}

void kith_presence_forget(kith_presence *p, const uint8_t node[32]) {
  g_hash_table_remove(p->nodes, node);
}

size_t kith_presence_size(const kith_presence *p) {
  return g_hash_table_size(p->nodes);
}
