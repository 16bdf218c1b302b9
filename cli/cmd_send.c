/* kith send, kith log [--follow]: messages. */
#include <stdio.h>
#include <string.h>

#include "../core/group.h"
#include "rpc.h"

#define CLI_FOLLOW_MAX_SEEN 100000 /* event ids kept to drop repeats */
#define CLI_FOLLOW_MAX_EARLY 4096  /* messages held while the log loads */
#define CLI_SENDER_PREFIX 8 /* id characters shown for a nameless sender */

static const cli_field EVENT_FIELDS[] = {{"event_id", "event id", NULL},
                                         {NULL, NULL, NULL}};

/* Reads all of stdin, keeping at most KITH_TEXT_MAX + 1 bytes; returns the
 * full length, without one trailing newline. -1 on a read error. */
static long read_stdin(GString *out) {
  char buf[4096];
  size_t n, total = 0;
  char last = 0;
  while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
    size_t room = KITH_TEXT_MAX + 1 - MIN(out->len, KITH_TEXT_MAX + 1);
    g_string_append_len(out, buf, (gssize)MIN(n, room));
    total += n;
    last = buf[n - 1];
  }
  if (ferror(stdin))
    return -1;
  if (last == '\n') {
    if (out->len == total)
      g_string_truncate(out, out->len - 1);
    total--;
  }
  return (long)total;
}

static int check_text(const GString *text, long len) {
  if (len < 0)
    return cli_error("cannot read the message from stdin");
  if (len == 0)
    return cli_error("the message is empty; there is nothing to send");
  if (len >= KITH_TEXT_MAX)
    return cli_error("message too long (%ld bytes; the limit is %d)", len,
                     KITH_TEXT_MAX - 1);
  if (!g_utf8_validate(text->str, (gssize)text->len, NULL))
    return cli_error("the message is not UTF-8 text");
  return CLI_OK;
}

int cli_cmd_send(cli_opts *o, int argc, char **argv) {
  int rc = cli_parse(o, "send", "GROUP TEXT", 2,
                     "Post a message to GROUP; a TEXT of - reads it from "
                     "stdin.",
                     NULL, &argc, &argv);
  if (rc != CLI_OK)
    return rc;
  GString *text = g_string_new(NULL);
  long len = 0;
  if (strcmp(argv[2], "-") == 0) {
    len = read_stdin(text);
  } else {
    g_string_assign(text, argv[2]);
    len = (long)text->len;
  }
  rc = check_text(text, len);
  if (rc == CLI_OK) {
    kith_pack p;
    kith_pack_init(&p);
    kith_pack_array(&p, 2);
    kith_pack_cstr(&p, argv[1]);
    kith_pack_str(&p, text->str, text->len);
    rc = cli_call_show(o, "send", &p, EVENT_FIELDS, 0);
  }
  g_string_free(text, TRUE);
  return rc;
}

/* ---- log ---- */

typedef struct follow {
  const cli_opts *o;
  GHashTable *seen; /* event ids already printed */
  GPtrArray *early; /* GBytes: messages that came before the log */
  int live;         /* the log is printed: print messages as they come */
} follow;

static char *sender_text(const msgpack_object *m) {
  const msgpack_object *name = cli_map_get(m, "sender_name");
  const msgpack_object *id = cli_map_get(m, "sender_id");
  if (name && name->type == MSGPACK_OBJECT_STR && name->via.str.size > 0)
    return cli_out_text(name, NULL, 0);
  if (id == NULL || id->type != MSGPACK_OBJECT_STR)
    return g_strdup("?");
  msgpack_object prefix = *id;
  prefix.via.str.size = MIN(id->via.str.size, CLI_SENDER_PREFIX);
  return cli_out_text(&prefix, NULL, 0);
}

static void print_message(const cli_opts *o, const msgpack_object *m) {
  if (o->json) {
    cli_out_json(m);
    return;
  }
  const msgpack_object *t = cli_map_get(m, "time_ms");
  const msgpack_object *text = cli_map_get(m, "text");
  char *when = t && t->type == MSGPACK_OBJECT_POSITIVE_INTEGER
                   ? cli_time_local((int64_t)t->via.u64)
                   : g_strdup("?");
  char *who = sender_text(m);
  char *what = text ? cli_out_text(text, NULL, 1) : g_strdup("");
  printf("%s %s: %s\n", when, who, what);
  g_free(when);
  g_free(who);
  g_free(what);
}

/* Prints m unless its event id was printed already. */
static void print_new(follow *f, const msgpack_object *m) {
  const msgpack_object *id = cli_map_get(m, "event_id");
  if (m->type != MSGPACK_OBJECT_MAP)
    return;
  if (id && id->type == MSGPACK_OBJECT_STR) {
    char *key = g_strndup(id->via.str.ptr, id->via.str.size);
    if (g_hash_table_contains(f->seen, key)) {
      g_free(key);
      return;
    }
    if (g_hash_table_size(f->seen) < CLI_FOLLOW_MAX_SEEN)
      g_hash_table_add(f->seen, key);
    else
      g_free(key);
  }
  print_message(f->o, m);
  if (f->live)
    fflush(stdout);
}

static void hold(follow *f, const msgpack_object *m) {
  kith_pack p;
  kith_pack_init(&p);
  uint8_t *buf = NULL;
  size_t len = 0;
  if (f->early->len < CLI_FOLLOW_MAX_EARLY &&
      msgpack_pack_object(&p.pk, *m) == 0 &&
      kith_pack_take(&p, &buf, &len) == KITH_OK)
    g_ptr_array_add(f->early, g_bytes_new_take(buf, len));
  kith_pack_clear(&p);
}

static void on_message(const char *method, const msgpack_object *params,
                       void *ud) {
  follow *f = ud;
  if (strcmp(method, "message") != 0)
    return;
  for (uint32_t i = 0; i < params->via.array.size; i++) {
    if (f->live)
      print_new(f, &params->via.array.ptr[i]);
    else
      hold(f, &params->via.array.ptr[i]);
  }
}

static void print_held(follow *f) {
  for (guint i = 0; i < f->early->len; i++) {
    gsize len = 0;
    const uint8_t *buf = g_bytes_get_data(f->early->pdata[i], &len);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (kith_codec_unpack_loose(buf, len, &u) == KITH_OK)
      print_new(f, &u.data);
    msgpack_unpacked_destroy(&u);
  }
  g_ptr_array_set_size(f->early, 0);
}

static int subscribe(cli_rpc *r, follow *f, const char *group) {
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 1);
  kith_pack_cstr(&p, group);
  const msgpack_object *res = NULL;
  return cli_rpc_call(r, "subscribe", &p, CLI_CALL_TIMEOUT_MS, on_message, f,
                      &res);
}

/* Asks for the page of the log before event `before` ("" for the newest),
 * keeping it packed in pages. Sets *first to the page's first event id
 * (g_malloc'ed, NULL for an empty page) and *count to its size. */
static int fetch_page(cli_rpc *r, follow *f, const char *group, gint want,
                      const char *before, GPtrArray *pages, char **first,
                      guint *count) {
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 3);
  kith_pack_cstr(&p, group);
  kith_pack_uint(&p, (uint64_t)want);
  kith_pack_cstr(&p, before);
  const msgpack_object *res = NULL;
  int rc = cli_rpc_call(r, "log", &p, CLI_CALL_TIMEOUT_MS, on_message, f, &res);
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

/* The node answers a long log in pages, newest first; they are printed
 * oldest first. */
static int fetch_log(cli_rpc *r, follow *f, const char *group, gint n) {
  GPtrArray *pages =
      g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  char *before = g_strdup("");
  gint got = 0;
  int rc = CLI_OK;
  while (rc == CLI_OK && (n == 0 || got < n)) {
    char *first = NULL;
    guint count = 0;
    rc =
        fetch_page(r, f, group, n ? n - got : 0, before, pages, &first, &count);
    g_free(before);
    before = first;
    got += (gint)count;
    if (count == 0 || first == NULL)
      break;
  }
  g_free(before);
  for (guint i = pages->len; rc == CLI_OK && i-- > 0;) {
    gsize len = 0;
    const uint8_t *buf = g_bytes_get_data(pages->pdata[i], &len);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (kith_codec_unpack_loose(buf, len, &u) == KITH_OK)
      for (uint32_t k = 0; k < u.data.via.array.size; k++)
        print_new(f, &u.data.via.array.ptr[k]);
    msgpack_unpacked_destroy(&u);
  }
  g_ptr_array_unref(pages);
  return rc;
}

/* With --follow: subscribe first, so nothing falls between the log and
 * the first notification; what came twice is printed once. */
static int run_log(cli_rpc *r, follow *f, const char *group, gint n,
                   int keep_following) {
  int rc = keep_following ? subscribe(r, f, group) : CLI_OK;
  if (rc == CLI_OK)
    rc = fetch_log(r, f, group, n);
  if (rc != CLI_OK)
    return rc;
  f->live = 1;
  print_held(f);
  fflush(stdout);
  return keep_following ? cli_rpc_listen(r, on_message, f) : CLI_OK;
}

int cli_cmd_log(cli_opts *o, int argc, char **argv) {
  gint n = 0;
  gboolean keep_following = FALSE;
  const GOptionEntry entries[] = {
      {"lines", 'n', 0, G_OPTION_ARG_INT, &n,
       "Only the last N messages (default: all)", "N"},
      {"follow", 'f', 0, G_OPTION_ARG_NONE, &keep_following,
       "Keep printing new messages until interrupted", NULL},
      G_OPTION_ENTRY_NULL};
  int rc = cli_parse(o, "log", "GROUP", 1,
                     "Print a group's messages in display order.", entries,
                     &argc, &argv);
  if (rc == CLI_OK && n < 0)
    rc = cli_usage("log", "-n takes a count of 0 or more");
  cli_rpc *r = NULL;
  if (rc == CLI_OK)
    rc = cli_rpc_open(o, &r);
  if (rc != CLI_OK)
    return rc;
  follow f = {o, g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
              g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref), 0};
  rc = run_log(r, &f, argv[1], n, keep_following);
  g_hash_table_unref(f.seen);
  g_ptr_array_unref(f.early);
  cli_rpc_free(r);
  return rc;
}
