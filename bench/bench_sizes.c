/* kith-bench event and kith-bench rekey: the bytes of events as the engine
 * builds them, the form they take on the wire inside a gossip payload.
 *
 * event: one member posts M messages of B bytes in a two-member group;
 * the overhead of a message event is its size minus its text.
 * rekey: an owner admits N - 1 members, then rekeys; the rekey event
 * carries one sealed box per member. --version: the events' version
 * (default the newest, 2; the group's create is version 1 either way). */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define EVENT_USAGE "[--messages M] [--text-bytes B] [--version V] [--json]"
#define REKEY_USAGE "[--members N] [--version V] [--json]"
#define MESSAGES_DEFAULT 1000
#define MESSAGES_MAX 1000000
#define TEXT_DEFAULT 100
#define MEMBERS_DEFAULT 128

/* A group of `members` members (the owner and members - 1 others, all
 * admitted by the owner), at now_ms. */
static kith_err make_group(long members, long version, uint64_t now_ms,
                           kith_ident *owner, kith_group **g) {
  const kith_group_options go = {
      .name = "bench", .owner_name = "owner", .history = KITH_HISTORY_SHARED};
  uint8_t seed[32] = {0};
  kith_accepted *a = NULL;
  kith_err rc = kith_ident_from_seed(owner, seed);
  if (rc == KITH_OK)
    rc = kith_group_create(owner, &go, now_ms, g, &a);
  kith_accepted_free(a);
  if (rc == KITH_OK)
    kith_group_set_event_version(*g, (uint32_t)version);
  GPtrArray *acc = bench_acc_new();
  for (long i = 1; rc == KITH_OK && i < members; i++) {
    kith_ident m;
    memcpy(seed, &i, sizeof i);
    rc = kith_ident_from_seed(&m, seed);
    if (rc == KITH_OK)
      rc = bench_admit(*g, &m, "member", now_ms + 2 * (uint64_t)i, acc);
    g_ptr_array_set_size(acc, 0);
  }
  g_ptr_array_unref(acc);
  return rc;
}

/* The last accepted event of kind in acc, or NULL. */
static const kith_event *last_of(const GPtrArray *acc, uint32_t kind) {
  for (guint i = acc->len; i-- > 0;) {
    const kith_accepted *a = acc->pdata[i];
    if (a->ev.kind == kind)
      return &a->ev;
  }
  return NULL;
}

typedef struct sizes {
  size_t min, max, total, n;
} sizes;

static void note_size(sizes *s, size_t v) {
  s->min = s->n == 0 || v < s->min ? v : s->min;
  s->max = v > s->max ? v : s->max;
  s->total += v;
  s->n++;
}

int bench_event(int argc, char **argv) {
  long messages = MESSAGES_DEFAULT, text_bytes = TEXT_DEFAULT;
  long version = KITH_EVENT_VERSION;
  int json = 0;
  const bench_opt table[] = {
      {"--messages", BENCH_OPT_LONG, &messages, 1, MESSAGES_MAX},
      {"--text-bytes", BENCH_OPT_LONG, &text_bytes, 1, KITH_TEXT_MAX - 1},
      {"--version", BENCH_OPT_LONG, &version, 1, KITH_EVENT_VERSION},
      {"--json", BENCH_OPT_FLAG, &json, 0, 0},
  };
  int prc =
      bench_parse("event", EVENT_USAGE, argc, argv, table, G_N_ELEMENTS(table));
  if (prc >= 0)
    return prc;
  uint64_t now = bench_wall_ms();
  kith_ident owner;
  kith_group *g = NULL;
  kith_err rc = make_group(2, version, now, &owner, &g);
  char *text = g_malloc((size_t)text_bytes + 1);
  GPtrArray *acc = bench_acc_new();
  sizes s = {0};
  for (long i = 0; rc == KITH_OK && i < messages; i++) {
    bench_text(text, (size_t)text_bytes, (uint64_t)i);
    rc = kith_group_send(g, text, (size_t)text_bytes, NULL,
                         now + 10 + 5 * (uint64_t)i, acc);
    const kith_event *ev = last_of(acc, KITH_EV_MESSAGE);
    if (rc == KITH_OK && ev)
      note_size(&s, ev->raw_len - (size_t)text_bytes);
    g_ptr_array_set_size(acc, 0);
  }
  g_ptr_array_unref(acc);
  g_free(text);
  kith_group_free(g);
  if (rc != KITH_OK || s.n == 0) {
    fprintf(stderr, "kith-bench event: %s\n", kith_strerror(rc));
    return 1;
  }
  double mean = (double)s.total / (double)s.n;
  char *cond = bench_conditions();
  if (json) {
    JsonBuilder *b = bench_json_begin("event");
    bench_json_int(b, "version", version);
    bench_json_int(b, "messages", messages);
    bench_json_int(b, "text_bytes", text_bytes);
    bench_json_int(b, "overhead_min", (int64_t)s.min);
    bench_json_num(b, "overhead_mean", mean);
    bench_json_int(b, "overhead_max", (int64_t)s.max);
    bench_json_str(b, "conditions", cond);
    bench_json_end(b);
  } else {
    printf("event: version %ld, %ld messages of %ld bytes, one sender, one "
           "parent each\n"
           "  overhead of a message event (bytes - text): min %zu, mean "
           "%.1f, max %zu\n  %s\n",
           version, messages, text_bytes, s.min, mean, s.max, cond);
  }
  g_free(cond);
  return 0;
}

int bench_rekey(int argc, char **argv) {
  long members = MEMBERS_DEFAULT, version = KITH_EVENT_VERSION;
  int json = 0;
  const bench_opt table[] = {
      {"--members", BENCH_OPT_LONG, &members, 2, KITH_GROUP_MAX_MEMBERS},
      {"--version", BENCH_OPT_LONG, &version, 1, KITH_EVENT_VERSION},
      {"--json", BENCH_OPT_FLAG, &json, 0, 0},
  };
  int prc =
      bench_parse("rekey", REKEY_USAGE, argc, argv, table, G_N_ELEMENTS(table));
  if (prc >= 0)
    return prc;
  uint64_t now = bench_wall_ms();
  kith_ident owner;
  kith_group *g = NULL;
  kith_err rc = make_group(members, version, now, &owner, &g);
  GPtrArray *acc = bench_acc_new();
  if (rc == KITH_OK)
    rc = kith_group_rekey(g, now + 10 * (uint64_t)members, acc);
  const kith_event *ev = rc == KITH_OK ? last_of(acc, KITH_EV_REKEY) : NULL;
  size_t bytes = ev ? ev->raw_len : 0;
  g_ptr_array_unref(acc);
  kith_group_free(g);
  if (!bytes) {
    fprintf(stderr, "kith-bench rekey: %s\n", kith_strerror(rc));
    return 1;
  }
  double per = (double)bytes / (double)members;
  char *cond = bench_conditions();
  if (json) {
    JsonBuilder *b = bench_json_begin("rekey");
    bench_json_int(b, "version", version);
    bench_json_int(b, "members", members);
    bench_json_int(b, "event_bytes", (int64_t)bytes);
    bench_json_num(b, "bytes_per_member", per);
    bench_json_str(b, "conditions", cond);
    bench_json_end(b);
  } else {
    printf("rekey: version %ld, %ld members, one rekey event of %zu bytes "
           "(%.1f bytes per member)\n  %s\n",
           version, members, bytes, per, cond);
  }
  g_free(cond);
  return 0;
}
