/* kith: a replay cache (see replay.h). */
#include "replay.h"

#include <glib.h>
#include <sodium.h>
#include <string.h>

typedef struct source source;

/* A remembered tag sits in the tag set and in two insertion-ordered
 * queues (all tags, and its source's), through the links embedded here. */
typedef struct seen {
  uint8_t tag[KITH_REPLAY_TAG_LEN];
  guint hash;
  uint64_t expiry_ms;
  source *src;
  GList all_link; /* in kith_replay.order */
  GList src_link; /* in source.order */
} seen;

struct source {
  uint8_t key[KITH_REPLAY_SOURCE_MAX];
  size_t len;
  guint hash;
  GQueue order; /* its tags, oldest first; at most per_source */
};

struct kith_replay {
  size_t cap, per_source;
  GHashTable *seen;    /* seen* set */
  GQueue order;        /* the same, oldest first */
  GHashTable *sources; /* source* set, each holding >= 1 tag */
  uint8_t hash_key[crypto_shorthash_KEYBYTES];
};

static guint keyed_hash(const kith_replay *r, const uint8_t *b, size_t len) {
  uint8_t h[crypto_shorthash_BYTES];
  guint v;
  crypto_shorthash(h, b, len, r->hash_key);
  memcpy(&v, h, sizeof v);
  return v;
}

static guint seen_hash(gconstpointer k) {
  return ((const seen *)k)->hash;
}

static gboolean seen_equal(gconstpointer a, gconstpointer b) {
  return memcmp(((const seen *)a)->tag, ((const seen *)b)->tag,
                KITH_REPLAY_TAG_LEN) == 0;
}

static guint source_hash(gconstpointer k) {
  return ((const source *)k)->hash;
}

static gboolean source_equal(gconstpointer a, gconstpointer b) {
  const source *x = a, *y = b;
  return x->len == y->len && memcmp(x->key, y->key, x->len) == 0;
}

kith_replay *kith_replay_new(size_t cap, size_t per_source) {
  if (cap < 1 || per_source < 1 || per_source > cap)
    return NULL;
  kith_replay *r = g_new0(kith_replay, 1);
  r->cap = cap;
  r->per_source = per_source;
  r->seen = g_hash_table_new_full(seen_hash, seen_equal, g_free, NULL);
  g_queue_init(&r->order);
  r->sources = g_hash_table_new_full(source_hash, source_equal, g_free, NULL);
  randombytes_buf(r->hash_key, sizeof r->hash_key);
  return r;
}

void kith_replay_free(kith_replay *r) {
  if (r == NULL)
    return;
  g_hash_table_destroy(r->seen); /* frees the tags and with them the links */
  g_hash_table_destroy(r->sources);
  g_free(r);
}

size_t kith_replay_size(const kith_replay *r) {
  return r ? g_hash_table_size(r->seen) : 0;
}

static void forget(kith_replay *r, seen *s) {
  source *src = s->src;
  g_queue_unlink(&r->order, &s->all_link);
  g_queue_unlink(&src->order, &s->src_link);
  if (g_queue_is_empty(&src->order))
    g_hash_table_remove(r->sources, src); /* frees src */
  g_hash_table_remove(r->seen, s);        /* frees s */
}

/* Makes room for one tag of src (NULL: a source holding none yet). */
static void make_room(kith_replay *r, source *src, uint64_t now_ms) {
  GList *oldest;
  if (src != NULL && src->order.length >= r->per_source) {
    forget(r, src->order.head->data);
    return;
  }
  while ((oldest = r->order.head) != NULL &&
         (((seen *)oldest->data)->expiry_ms < now_ms ||
          g_hash_table_size(r->seen) >= r->cap))
    forget(r, oldest->data);
}

int kith_replay_check(kith_replay *r, const uint8_t tag[KITH_REPLAY_TAG_LEN],
                      const uint8_t *source_key, size_t source_len,
                      uint64_t expiry_ms, uint64_t now_ms) {
  seen key;
  source skey = {.len = source_len};
  if (r == NULL || tag == NULL || source_key == NULL || source_len == 0 ||
      source_len > KITH_REPLAY_SOURCE_MAX)
    return 0;
  memcpy(key.tag, tag, KITH_REPLAY_TAG_LEN);
  key.hash = keyed_hash(r, tag, KITH_REPLAY_TAG_LEN);
  if (g_hash_table_contains(r->seen, &key))
    return 0;
  memcpy(skey.key, source_key, source_len);
  skey.hash = keyed_hash(r, source_key, source_len);
  source *src = g_hash_table_lookup(r->sources, &skey);
  make_room(r, src, now_ms);
  /* make_room may have freed src (it held only its oldest tag). */
  src = g_hash_table_lookup(r->sources, &skey);
  if (src == NULL) {
    src = g_memdup2(&skey, sizeof skey);
    g_queue_init(&src->order);
    g_hash_table_add(r->sources, src);
  }
  seen *s = g_memdup2(&key, sizeof key);
  s->expiry_ms = expiry_ms;
  s->src = src;
  s->all_link = (GList){.data = s};
  s->src_link = (GList){.data = s};
  g_queue_push_tail_link(&r->order, &s->all_link);
  g_queue_push_tail_link(&src->order, &s->src_link);
  g_hash_table_add(r->seen, s);
  return 1;
}
