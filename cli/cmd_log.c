/* kith log [-n N] [--follow] [--unread]: a group's messages and notices. */
#include <stdio.h>
#include <string.h>

#include "item.h"
#include "rpc.h"

#define CLI_FOLLOW_MAX_SEEN 100000 /* items kept for repeats and replies */
#define CLI_FOLLOW_MAX_EARLY 4096  /* notifications held while the log loads */
#define KITH_LOG_MAX_COUNT (1 << 30) /* the node's limit on n */
#define CLI_LOG_ALL G_MININT         /* no -n: the whole log */

typedef struct logview {
  const cli_opts *o;
  const char *group; /* as the user named it */
  cli_names *names;
  GHashTable *items; /* event id -> cli_item: printed ones */
  GPtrArray *early;  /* GBytes: notifications that came before the log */
  int live;          /* the log is printed: print notifications as they come */
  int removed;       /* a `removed` notification came */
} logview;

static const cli_item *find_item(const char *id, void *ud) {
  logview *v = ud;
  return id ? g_hash_table_lookup(v->items, id) : NULL;
}

static void keep_item(logview *v, cli_item *it) {
  if (g_hash_table_size(v->items) < CLI_FOLLOW_MAX_SEEN ||
      g_hash_table_contains(v->items, it->event_id))
    g_hash_table_replace(v->items, it->event_id, it);
  else
    cli_item_free(it);
}

/* Prints an item (a map) unless it was printed already; an update (an
 * item already shown that changed) is printed again, its text line marked
 * with "~ ". */
static void print_item(logview *v, const msgpack_object *m, int update) {
  cli_item *it = cli_item_parse(m);
  if (it == NULL)
    return;
  if (!update && g_hash_table_contains(v->items, it->event_id)) {
    cli_item_free(it);
    return;
  }
  if (v->o->json) {
    cli_out_json(m);
  } else {
    GString *out = g_string_new(update ? "~ " : "");
    cli_item_format(it, v->names, find_item, v, out);
    fputs(out->str, stdout);
    g_string_free(out, TRUE);
  }
  keep_item(v, it);
  if (v->live)
    fflush(stdout);
}

static void hold(logview *v, const char *method, const msgpack_object *m) {
  kith_pack p;
  kith_pack_init(&p);
  uint8_t *buf = NULL;
  size_t len = 0;
  kith_pack_array(&p, 2);
  kith_pack_cstr(&p, method);
  if (v->early->len < CLI_FOLLOW_MAX_EARLY &&
      msgpack_pack_object(&p.pk, *m) == 0 &&
      kith_pack_take(&p, &buf, &len) == KITH_OK)
    g_ptr_array_add(v->early, g_bytes_new_take(buf, len));
  kith_pack_clear(&p);
}

/* "you were removed from G by X": the end of following. */
static void print_removed(logview *v, const msgpack_object *m) {
  char *line = cli_removed_text(v->names, m, v->group);
  fprintf(stderr, "kith: %s\n", line);
  v->removed = 1;
  g_free(line);
}

static void on_notify(const char *method, const msgpack_object *params,
                      void *ud) {
  logview *v = ud;
  int update = strcmp(method, "update") == 0;
  if (!update && strcmp(method, "message") != 0 &&
      strcmp(method, "removed") != 0)
    return;
  for (uint32_t i = 0; i < params->via.array.size; i++) {
    const msgpack_object *m = &params->via.array.ptr[i];
    if (!v->live)
      hold(v, method, m);
    else if (method[0] == 'r')
      print_removed(v, m);
    else
      print_item(v, m, update);
  }
}

static void print_held(logview *v) {
  for (guint i = 0; i < v->early->len; i++) {
    gsize len = 0;
    const uint8_t *buf = g_bytes_get_data(v->early->pdata[i], &len);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    const msgpack_object *it = NULL;
    char method[16];
    if (kith_codec_unpack_loose(buf, len, &u) == KITH_OK &&
        kith_codec_array(&u.data, 2, &it) == KITH_OK &&
        it[0].type == MSGPACK_OBJECT_STR &&
        it[0].via.str.size < sizeof method) {
      memcpy(method, it[0].via.str.ptr, it[0].via.str.size);
      method[it[0].via.str.size] = '\0';
      msgpack_object one = {.type = MSGPACK_OBJECT_ARRAY,
                            .via.array = {1, (msgpack_object *)&it[1]}};
      on_notify(method, &one, v);
    }
    msgpack_unpacked_destroy(&u);
  }
  g_ptr_array_set_size(v->early, 0);
}

static int call_group(cli_rpc *r, logview *v, const char *method,
                      const char *group, const msgpack_object **res) {
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 1);
  kith_pack_cstr(&p, group);
  return cli_rpc_call(r, method, &p, CLI_CALL_TIMEOUT_MS, on_notify, v, res);
}

/* The members, for names and roles. */
static int load_names(cli_rpc *r, logview *v, const char *group) {
  const msgpack_object *res = NULL;
  int rc = call_group(r, v, "group.members", group, &res);
  if (rc == CLI_OK)
    cli_names_add_members(v->names, res);
  return rc;
}

/* Asks for the page of the log before event `before` (NULL: the newest),
 * keeping it packed in pages. Sets *first to the page's first event id
 * (g_malloc'ed, NULL for an empty page) and *count to its size. */
static int fetch_page(cli_rpc *r, logview *v, const char *group, gint want,
                      const char *before, int unread, GPtrArray *pages,
                      char **first, guint *count) {
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, unread ? 4 : before ? 3 : 2);
  kith_pack_cstr(&p, group);
  kith_pack_uint(&p, (uint64_t)want);
  if (before != NULL)
    kith_pack_cstr(&p, before);
  else if (unread)
    kith_pack_nil(&p);
  if (unread)
    kith_pack_bool(&p, 1);
  const msgpack_object *res = NULL;
  int rc = cli_rpc_call(r, "log", &p, CLI_CALL_TIMEOUT_MS, on_notify, v, &res);
  *first = NULL;
  *count = 0;
  if (rc != CLI_OK)
    return rc;
  if (res->type != MSGPACK_OBJECT_ARRAY)
    return cli_error("the node sent a malformed log");
  *count = res->via.array.size;
  if (*count == 0)
    return CLI_OK;
  const msgpack_object *id = cli_map_get(&res->via.array.ptr[0], "event_id");
  if (id == NULL || id->type != MSGPACK_OBJECT_STR)
    return cli_error("the node sent a malformed log");
  *first = g_strndup(id->via.str.ptr, id->via.str.size);
  kith_pack keep;
  kith_pack_init(&keep);
  uint8_t *buf = NULL;
  size_t len = 0;
  if (msgpack_pack_object(&keep.pk, *res) != 0 ||
      kith_pack_take(&keep, &buf, &len) != KITH_OK) {
    kith_pack_clear(&keep);
    return cli_error("out of memory");
  }
  g_ptr_array_add(pages, g_bytes_new_take(buf, len));
  return CLI_OK;
}

static void print_pages(logview *v, GPtrArray *pages) {
  for (guint i = pages->len; i-- > 0;) {
    gsize len = 0;
    const uint8_t *buf = g_bytes_get_data(pages->pdata[i], &len);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (kith_codec_unpack_loose(buf, len, &u) == KITH_OK)
      for (uint32_t k = 0; k < u.data.via.array.size; k++)
        print_item(v, &u.data.via.array.ptr[k], 0);
    msgpack_unpacked_destroy(&u);
  }
}

/* The node answers a long log in pages, newest first; they are printed
 * oldest first. n: CLI_LOG_ALL or a count (0 prints nothing). */
static int fetch_log(cli_rpc *r, logview *v, const char *group, gint n,
                     int unread) {
  GPtrArray *pages =
      g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  char *before = NULL;
  gint got = 0;
  int rc = CLI_OK;
  while (rc == CLI_OK && (n == CLI_LOG_ALL || got < n)) {
    char *first = NULL;
    guint count = 0;
    rc = fetch_page(r, v, group, n == CLI_LOG_ALL ? 0 : n - got, before, unread,
                    pages, &first, &count);
    g_free(before);
    before = first;
    got += (gint)count;
    if (count == 0 || first == NULL)
      break;
  }
  g_free(before);
  if (rc == CLI_OK)
    print_pages(v, pages);
  g_ptr_array_unref(pages);
  return rc;
}

/* With --follow: subscribe first, so nothing falls between the log and
 * the first notification; what came twice is printed once. */
static int run_log(cli_rpc *r, logview *v, const char *group, gint n,
                   int unread, int keep_following) {
  const msgpack_object *res = NULL;
  int rc = load_names(r, v, group);
  if (rc == CLI_OK && keep_following)
    rc = call_group(r, v, "subscribe", group, &res);
  if (rc == CLI_OK)
    rc = fetch_log(r, v, group, n, unread);
  if (rc != CLI_OK)
    return rc;
  v->live = 1;
  print_held(v);
  fflush(stdout);
  if (!keep_following || v->removed)
    return v->removed ? CLI_ERROR : CLI_OK;
  rc = cli_rpc_listen(r, on_notify, v);
  return v->removed ? CLI_ERROR : rc;
}

int cli_cmd_log(cli_opts *o, int argc, char **argv) {
  gint n = CLI_LOG_ALL;
  gboolean keep_following = FALSE, unread = FALSE;
  const GOptionEntry entries[] = {
      {"lines", 'n', 0, G_OPTION_ARG_INT, &n,
       "Only the last N items (default: all; 0: none, with --follow only "
       "new ones)",
       "N"},
      {"follow", 'f', 0, G_OPTION_ARG_NONE, &keep_following,
       "Keep printing new items until interrupted", NULL},
      {"unread", 0, 0, G_OPTION_ARG_NONE, &unread,
       "Only the items not yet read (kith chat marks what you read)", NULL},
      G_OPTION_ENTRY_NULL};
  int rc = cli_parse(o, "log", "GROUP", 1,
                     "Print a group's messages and notices in display "
                     "order: local time, sender (with an id suffix when "
                     "names look alike, and [owner] or [admin]), text. Later "
                     "lines of a text start with '  | ', reactions with "
                     "'  + ', notices with '--'.",
                     entries, &argc, &argv);
  if (rc == CLI_OK && n < 0 && n != CLI_LOG_ALL)
    rc = cli_usage("log", "-n takes a count of 0 or more, not %d", n);
  if (rc == CLI_OK && n > KITH_LOG_MAX_COUNT)
    rc = cli_usage("log", "-n takes a count up to %d", KITH_LOG_MAX_COUNT);
  cli_rpc *r = NULL;
  if (rc == CLI_OK)
    rc = cli_rpc_open(o, &r);
  if (rc != CLI_OK)
    return rc;
  logview v = {o,
               argv[1],
               cli_names_new(),
               g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                     (GDestroyNotify)cli_item_free),
               g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref),
               0,
               0};
  rc = run_log(r, &v, argv[1], n, unread, keep_following);
  g_hash_table_unref(v.items);
  g_ptr_array_unref(v.early);
  cli_names_free(v.names);
  cli_rpc_free(r);
  return rc;
}
