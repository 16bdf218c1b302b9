/* kith: writes the group known-answer vectors of tests/vectors/groups/.
 *
 * Each vector is a group built through the public core API by honest
 * replicas (several identities, partial syncs for concurrency), stored as
 * the raw bytes of every event and the state hash the engine derived.
 * tests/unit/test_group_vectors.c replays them and checks that the engine
 * still derives the same state hash. The committed vectors were written by
 * this program at commit 12e2c4d (the engine before issue 9); running it
 * again writes new events (fresh keys and nonces), not those.
 *
 * Build and run (from the repository root, after `make`):
 *   cc -std=c11 -D_GNU_SOURCE -I. tests/vectors/gen_group_vectors.c \
 *     build/libkith_core.a $(pkg-config --cflags --libs libsodium msgpack \
 *     glib-2.0 sqlite3) -o /tmp/gen && /tmp/gen tests/vectors/groups
 *
 * File format (canonical msgpack):
 *   ["kith group vector v1", viewer_seed bin32, state_hash bin32,
 *    n_events uint, [raw bin, ...]]
 * A replica with the viewer's identity that receives every raw event (in
 * any order) must derive state_hash. */
#include <glib.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "core/group.h"
#include "core/invite.h"

#define T0 1700000000000ull
#define HOUR (3600ull * 1000)
#define N 7

static const char *const NAMES[N] = {"alice", "bob",  "carol", "dave",
                                     "erin",  "fred", "gina"};

typedef struct gen {
  kith_ident id[N];
  uint8_t seed[N][32];
  kith_group *g[N];
  uint8_t gid[32];
  GPtrArray *log; /* GBytes* */
  uint64_t now;
  uint8_t inv_secret[32], inv_pk[32];
  GRand *rng;
  GByteArray *got[N]; /* got[n]->data[i]: node n has log entry i */
} gen;

static void die(const char *what, kith_err rc) {
  fprintf(stderr, "gen_group_vectors: %s: %s\n", what, kith_strerror(rc));
  exit(1);
}

/* Grows node n's marks to the log's length (new entries: not held). */
static void grow(gen *w, int n) {
  guint old = w->got[n]->len;
  g_byte_array_set_size(w->got[n], w->log->len);
  memset(w->got[n]->data + old, 0, w->log->len - old);
}

/* Events made by node `by` (which holds them already). */
static void take_by(gen *w, int by, GPtrArray *acc) {
  for (guint i = 0; i < acc->len; i++) {
    kith_accepted *a = acc->pdata[i];
    g_ptr_array_add(w->log, g_bytes_new(a->ev.raw, a->ev.raw_len));
    grow(w, by);
    w->got[by]->data[w->log->len - 1] = 1;
    kith_accepted_free(a);
  }
  g_ptr_array_free(acc, TRUE);
}

static void take_one(gen *w, int by, kith_accepted *a) {
  GPtrArray *acc = g_ptr_array_new();
  g_ptr_array_add(acc, a);
  take_by(w, by, acc);
}

static void deliver(kith_group *g, GBytes *raw) {
  GPtrArray *acc =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
  size_t len;
  const uint8_t *p = g_bytes_get_data(raw, &len);
  (void)!kith_group_receive(g, p, len, T0, acc);
  g_ptr_array_unref(acc);
}

/* Node n receives each logged event it lacks with probability p (1:
 * all). */
static void sync_p(gen *w, int n, double p) {
  grow(w, n);
  for (guint i = 0; i < w->log->len; i++)
    if (!w->got[n]->data[i] && (p >= 1.0 || g_rand_double(w->rng) < p)) {
      deliver(w->g[n], w->log->pdata[i]);
      w->got[n]->data[i] = 1;
    }
}

static void sync_all(gen *w, int last) {
  for (int i = 0; i <= last; i++)
    sync_p(w, i, 1.0);
}

static void start(gen *w, kith_history history, guint32 seed) {
  memset(w, 0, sizeof *w);
  w->log = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  w->now = T0;
  w->rng = g_rand_new_with_seed(seed);
  for (int i = 0; i < N; i++) {
    w->got[i] = g_byte_array_new();
    memset(w->seed[i], 0x30 + i, 32);
    if (kith_ident_from_seed(&w->id[i], w->seed[i]) != KITH_OK)
      die("identity", KITH_ERR_ARG);
  }
  kith_group_options o = {.name = "vectors",
                          .owner_name = NAMES[0],
                          .history = history,
                          .admins_only_invites = 0};
  kith_accepted *a = NULL;
  kith_err rc = kith_group_create(&w->id[0], &o, w->now, &w->g[0], &a);
  if (rc != KITH_OK)
    die("create", rc);
  memcpy(w->gid, kith_group_id(w->g[0]), 32);
  take_one(w, 0, a);
  for (int i = 1; i < N; i++)
    w->g[i] = kith_group_new(w->gid, &w->id[i]);
}

static void invite(gen *w, int by, uint32_t uses) {
  kith_accepted *a = NULL;
  w->now += 1000;
  kith_err rc = kith_group_invite(w->g[by], uses, w->now + 24 * HOUR, w->now,
                                  w->inv_secret, &a);
  if (rc != KITH_OK)
    die("invite", rc);
  kith_invite_public_key(w->inv_secret, w->inv_pk);
  take_one(w, by, a);
}

static void admit(gen *w, int by, int who) {
  uint8_t sig[64];
  GPtrArray *acc = g_ptr_array_new();
  w->now += 1000;
  kith_invite_sign_join(w->inv_secret, w->gid, w->id[who].pk, sig);
  kith_err rc = kith_group_admit(w->g[by], w->id[who].pk, NAMES[who], w->inv_pk,
                                 sig, w->now, acc);
  if (rc != KITH_OK)
    die("admit", rc);
  take_by(w, by, acc);
}

static void say(gen *w, int by, const char *text) {
  kith_accepted *a = NULL;
  w->now += 1000;
  kith_err rc = kith_group_send(w->g[by], text, strlen(text), w->now, &a);
  if (rc != KITH_OK)
    die("send", rc);
  take_one(w, by, a);
}

typedef kith_err (*op_fn)(kith_group *g, uint64_t now, GPtrArray *acc);

static void op(gen *w, int by, op_fn fn, const char *what) {
  GPtrArray *acc = g_ptr_array_new();
  w->now += 1000;
  kith_err rc = fn(w->g[by], w->now, acc);
  if (rc != KITH_OK)
    die(what, rc);
  take_by(w, by, acc);
}

static void role(gen *w, int by, int who, kith_role r) {
  GPtrArray *acc = g_ptr_array_new();
  w->now += 1000;
  kith_err rc = kith_group_set_role(w->g[by], w->id[who].pk, r, w->now, acc);
  if (rc != KITH_OK)
    die("role", rc);
  take_by(w, by, acc);
}

static void topic(gen *w, int by, const char *t) {
  GPtrArray *acc = g_ptr_array_new();
  w->now += 1000;
  kith_err rc = kith_group_set_topic(w->g[by], t, strlen(t), w->now, acc);
  if (rc != KITH_OK)
    die("topic", rc);
  take_by(w, by, acc);
}

static void kick(gen *w, int by, int who) {
  GPtrArray *acc = g_ptr_array_new();
  w->now += 1000;
  kith_err rc = kith_group_remove(w->g[by], w->id[who].pk, w->now, acc);
  if (rc != KITH_OK)
    die("remove", rc);
  take_by(w, by, acc);
}

static void maintain(gen *w, int by) {
  GPtrArray *acc = g_ptr_array_new();
  w->now += 1000;
  kith_err rc = kith_group_maintain(w->g[by], w->now, acc);
  if (rc != KITH_OK)
    die("maintain", rc);
  take_by(w, by, acc);
}

static void finish(gen *w, int viewer, const char *dir, const char *name) {
  uint8_t hash[32], check[32];
  kith_group *g = kith_group_new(w->gid, &w->id[viewer]);
  sync_p(w, viewer, 1.0);
  for (guint i = 0; i < w->log->len; i++)
    deliver(g, w->log->pdata[i]);
  kith_group_state_hash(g, hash);
  kith_group_state_hash(w->g[viewer], check);
  if (memcmp(hash, check, 32) != 0 || kith_group_n_events(g) != w->log->len ||
      kith_group_n_held(g) != 0) {
    fprintf(stderr, "gen_group_vectors: %s: the viewer does not converge\n",
            name);
    exit(1);
  }
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 5);
  kith_pack_cstr(&p, "kith group vector v1");
  kith_pack_bin(&p, w->seed[viewer], 32);
  kith_pack_bin(&p, hash, 32);
  kith_pack_uint(&p, w->log->len);
  kith_pack_array(&p, w->log->len);
  for (guint i = 0; i < w->log->len; i++) {
    size_t len;
    const void *raw = g_bytes_get_data(w->log->pdata[i], &len);
    kith_pack_bin(&p, raw, len);
  }
  char *path = g_strdup_printf("%s/%s.kgv", dir, name);
  GError *err = NULL;
  if (p.failed ||
      !g_file_set_contents(path, p.sb.data, (gssize)p.sb.size, &err)) {
    fprintf(stderr, "gen_group_vectors: cannot write %s\n", path);
    exit(1);
  }
  printf("%s: %u events, state_hash ", path, w->log->len);
  for (int i = 0; i < 32; i++)
    printf("%02x", hash[i]);
  printf("\n");
  g_free(path);
  kith_pack_clear(&p);
  kith_group_free(g);
  for (int i = 0; i < N; i++) {
    kith_group_free(w->g[i]);
    kith_ident_clear(&w->id[i]);
  }
  g_ptr_array_unref(w->log);
  g_rand_free(w->rng);
}

/* Sequential changes of every kind in a group with shared history. */
static void basic(const char *dir) {
  gen w;
  start(&w, KITH_HISTORY_SHARED, 1);
  say(&w, 0, "hello");
  invite(&w, 0, 5);
  admit(&w, 0, 1);
  admit(&w, 0, 2);
  admit(&w, 0, 3);
  sync_all(&w, 3);
  say(&w, 1, "hi from bob");
  topic(&w, 0, "board games on friday");
  role(&w, 0, 1, KITH_ROLE_ADMIN);
  sync_all(&w, 3);
  say(&w, 2, "carol here");
  kick(&w, 0, 3);
  sync_all(&w, 3);
  op(&w, 2, kith_group_leave, "leave");
  sync_all(&w, 2);
  maintain(&w, 0);
  sync_all(&w, 2);
  say(&w, 1, "after the changes");
  op(&w, 1, kith_group_rekey, "rekey");
  sync_all(&w, 2);
  say(&w, 0, "last word");
  finish(&w, 1, dir, "basic");
}

/* History "joined": every add is followed by its admitter's rekey. */
static void joined(const char *dir) {
  gen w;
  start(&w, KITH_HISTORY_JOINED, 2);
  say(&w, 0, "before anyone");
  invite(&w, 0, 3);
  admit(&w, 0, 1);
  sync_all(&w, 1);
  say(&w, 1, "bob joined");
  admit(&w, 1, 2);
  sync_all(&w, 2);
  say(&w, 2, "carol joined");
  topic(&w, 0, "joined history");
  sync_all(&w, 2);
  say(&w, 0, "bye");
  finish(&w, 2, dir, "joined");
}

/* Concurrency that every version of the rules settles the same way:
 * concurrent messages, concurrent rekeys, a single-use invite redeemed
 * twice, a removal concurrent with the removed member's message, a leave
 * and the designated member's rekey. */
static void concurrent(const char *dir) {
  gen w;
  start(&w, KITH_HISTORY_SHARED, 3);
  invite(&w, 0, 10);
  for (int i = 1; i <= 4; i++)
    admit(&w, 0, i);
  sync_all(&w, 4);
  for (int r = 0; r < 4; r++)
    for (int i = 0; i <= 4; i++)
      say(&w, i, "concurrent chatter");
  sync_all(&w, 4);
  op(&w, 1, kith_group_rekey, "rekey b");
  op(&w, 2, kith_group_rekey, "rekey c");
  say(&w, 1, "in b's epoch");
  say(&w, 2, "in c's epoch");
  sync_all(&w, 4);
  invite(&w, 0, 1);
  sync_all(&w, 4);
  admit(&w, 1, 5);
  admit(&w, 2, 6);
  sync_all(&w, 6);
  maintain(&w, 0);
  sync_all(&w, 6);
  kick(&w, 0, 4);
  say(&w, 4, "sent before erin saw her removal");
  say(&w, 3, "dave talks meanwhile");
  sync_all(&w, 6);
  op(&w, 3, kith_group_leave, "leave");
  sync_all(&w, 6);
  maintain(&w, 0);
  sync_all(&w, 6);
  say(&w, 1, "settled");
  finish(&w, 1, dir, "concurrent");
}

/* 10^4 events: six members chatting with partial syncs (so many events
 * are concurrent), with rekeys, topics and role changes between. */
static void big(const char *dir) {
  gen w;
  start(&w, KITH_HISTORY_SHARED, 4);
  invite(&w, 0, 10);
  for (int i = 1; i <= 5; i++)
    admit(&w, 0, i);
  sync_all(&w, 5);
  int controls = 0;
  while (w.log->len < 10000) {
    for (int k = 0; k < 50; k++) {
      int by = g_rand_int_range(w.rng, 0, 6);
      char text[64];
      snprintf(text, sizeof text, "message %u from %s", w.log->len, NAMES[by]);
      say(&w, by, text);
      if (g_rand_double(w.rng) < 0.3)
        sync_p(&w, g_rand_int_range(w.rng, 0, 6), 0.9);
    }
    if (w.log->len % 1000 < 50) {
      sync_all(&w, 5);
      switch (controls++ % 3) {
      case 0:
        op(&w, g_rand_int_range(w.rng, 0, 6), kith_group_rekey, "rekey");
        break;
      case 1:
        topic(&w, 0, controls % 2 ? "big group" : "still big");
        break;
      default: {
        int who = 1 + controls % 5;
        const kith_member *m = kith_group_find_member(w.g[0], w.id[who].pk);
        role(&w, 0, who,
             m->role == KITH_ROLE_MEMBER ? KITH_ROLE_ADMIN : KITH_ROLE_MEMBER);
      }
      }
      sync_all(&w, 5);
    }
  }
  sync_all(&w, 5);
  finish(&w, 2, dir, "big");
}

int main(int argc, char **argv) {
  if (argc != 2 || sodium_init() < 0) {
    fprintf(stderr, "usage: gen_group_vectors DIR\n");
    return 2;
  }
  basic(argv[1]);
  joined(argv[1]);
  concurrent(argv[1]);
  big(argv[1]);
  return 0;
}
