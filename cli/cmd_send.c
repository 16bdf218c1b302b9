/* kith send (also one message per line), react, edit, delete: posting
 * and changing messages. */
#include <stdio.h>
#include <string.h>

#include "../core/group.h"
#include "item.h"
#include "rpc.h"

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

#define CLI_BULK_WINDOW 64 /* sends in flight over one connection */

/* Sends the text (one message) as GROUP's message, optionally a reply. */
static void pack_send(kith_pack *p, const char *group, const char *text,
                      size_t len, const char *reply_to) {
  kith_pack_init(p);
  kith_pack_array(p, reply_to ? 3 : 2);
  kith_pack_cstr(p, group);
  kith_pack_str(p, text, len);
  if (reply_to != NULL)
    kith_pack_cstr(p, reply_to);
}

/* ---- bulk: one message per line of stdin over one connection ---- */

typedef struct bulk {
  const cli_opts *o;
  cli_rpc *r;
  uint32_t base_id; /* msgid of the first request */
  GArray *line_of;  /* guint32: input line of msgid base_id + i */
  long in_flight;
  long sent;  /* acknowledged */
  int failed; /* an error reply came: send no more */
} bulk;

/* Waits for one reply; prints its event id (JSON) and counts it. */
static int bulk_collect(bulk *b) {
  uint32_t id = 0;
  const msgpack_object *res = NULL;
  int rc = cli_rpc_reply(b->r, CLI_CALL_TIMEOUT_MS, NULL, NULL, &id, &res);
  b->in_flight--;
  if (rc == CLI_OK) {
    if (b->o->json)
      cli_out_json(res);
    b->sent++;
  } else if (id >= b->base_id && id - b->base_id < b->line_of->len) {
    fprintf(stderr, "kith: (that was line %u of the input)\n",
            g_array_index(b->line_of, guint32, id - b->base_id));
    b->failed = 1;
  } else {
    b->in_flight = 0; /* the connection is gone */
  }
  return rc;
}

static int bulk_line(bulk *b, const char *group, GString *line, long no) {
  if (line->len > 0 && line->str[line->len - 1] == '\n')
    g_string_truncate(line, line->len - 1);
  if (line->len == 0)
    return CLI_OK; /* an empty line is no message */
  if (line->len >= KITH_TEXT_MAX)
    return cli_error("line %ld is too long (a message is 1 to %d bytes)", no,
                     KITH_TEXT_MAX - 1);
  if (!g_utf8_validate(line->str, (gssize)line->len, NULL))
    return cli_error("line %ld is not UTF-8 text", no);
  int rc = CLI_OK;
  while (rc == CLI_OK && b->in_flight >= CLI_BULK_WINDOW)
    rc = bulk_collect(b);
  if (rc != CLI_OK)
    return rc;
  kith_pack p;
  uint32_t id = 0;
  guint32 at = (guint32)no;
  pack_send(&p, group, line->str, line->len, NULL);
  rc = cli_rpc_send(b->r, "send", &p, &id);
  if (rc == CLI_OK) {
    if (b->line_of->len == 0)
      b->base_id = id;
    g_array_append_val(b->line_of, at);
    b->in_flight++;
  }
  return rc;
}

/* Reads a line of any length (up to the message limit plus one byte). */
static int read_line(GString *line) {
  g_string_truncate(line, 0);
  int c;
  while ((c = getchar()) != EOF) {
    if (line->len <= KITH_TEXT_MAX)
      g_string_append_c(line, (char)c);
    if (c == '\n')
      return 1;
  }
  return line->len > 0;
}

static int send_lines(const cli_opts *o, const char *group) {
  bulk b = {.o = o, .line_of = g_array_new(FALSE, FALSE, sizeof(guint32))};
  int rc = cli_rpc_open(o, &b.r);
  GString *line = g_string_new(NULL);
  gint64 start = g_get_monotonic_time();
  for (long no = 1; rc == CLI_OK && !b.failed && read_line(line); no++)
    rc = bulk_line(&b, group, line, no);
  if (rc == CLI_OK && ferror(stdin))
    rc = cli_error("cannot read stdin");
  /* What is in flight is still answered, and counted. */
  while (b.r != NULL && b.in_flight > 0) {
    int one = bulk_collect(&b);
    if (rc == CLI_OK)
      rc = one;
  }
  double s = (double)(g_get_monotonic_time() - start) / 1e6;
  if (b.r != NULL && !o->json)
    printf("sent %ld messages in %.2f s (%.0f/s)\n", b.sent, s,
           s > 0 ? (double)b.sent / s : 0.0);
  g_string_free(line, TRUE);
  g_array_unref(b.line_of);
  cli_rpc_free(b.r);
  return rc;
}

/* TEXT, or all of stdin for "-". */
static int get_text(const char *arg, GString *text) {
  long len = 0;
  if (strcmp(arg, "-") == 0) {
    len = read_stdin(text);
  } else {
    g_string_assign(text, arg);
    len = (long)text->len;
  }
  return check_text(text, len);
}

int cli_cmd_send(cli_opts *o, int argc, char **argv) {
  char *reply_to = NULL;
  gboolean lines = FALSE;
  const GOptionEntry entries[] = {
      {"reply-to", 0, 0, G_OPTION_ARG_STRING, &reply_to,
       "Post it as a reply to EVENT (an event id or a unique prefix)", "EVENT"},
      {"lines", 0, 0, G_OPTION_ARG_NONE, &lines,
       "With TEXT '-': post one message per line of stdin (empty lines "
       "skipped) over one connection",
       NULL},
      G_OPTION_ENTRY_NULL};
  int rc = cli_parse(o, "send", "GROUP TEXT", 2,
                     "Post a message to GROUP (1 to 65535 bytes of UTF-8); "
                     "a TEXT of - reads it from stdin.",
                     entries, &argc, &argv);
  if (rc == CLI_OK && lines && strcmp(argv[2], "-") != 0)
    rc = cli_usage("send", "--lines reads stdin: give - as the TEXT");
  if (rc == CLI_OK && lines && reply_to != NULL)
    rc = cli_usage("send", "--lines posts new messages; it takes no "
                           "--reply-to");
  if (rc == CLI_OK && lines)
    rc = send_lines(o, argv[1]);
  else if (rc == CLI_OK) {
    GString *text = g_string_new(NULL);
    rc = get_text(argv[2], text);
    if (rc == CLI_OK) {
      kith_pack p;
      pack_send(&p, argv[1], text->str, text->len, reply_to);
      rc = cli_call_show(o, "send", &p, CLI_EVENT_FIELDS, 0);
    }
    g_string_free(text, TRUE);
  }
  g_free(reply_to);
  return rc;
}

/* An emoji reaction: 1 to CLI_EMOJI_MAX bytes of UTF-8 without control
 * characters (the node checks it again). */
static int emoji_is_valid(const char *e) {
  size_t len = strlen(e);
  if (len == 0 || len > CLI_EMOJI_MAX || !g_utf8_validate(e, -1, NULL))
    return 0;
  for (const char *p = e; *p; p = g_utf8_next_char(p))
    if (g_unichar_iscntrl(g_utf8_get_char(p)))
      return 0;
  return 1;
}

int cli_cmd_react(cli_opts *o, int argc, char **argv) {
  gboolean remove = FALSE;
  const GOptionEntry entries[] = {{"remove", 0, 0, G_OPTION_ARG_NONE, &remove,
                                   "Take your reaction back instead", NULL},
                                  G_OPTION_ENTRY_NULL};
  int rc = cli_parse(o, "react", "GROUP EVENT EMOJI", 3,
                     "React to a message with EMOJI (1 to 32 bytes of text).",
                     entries, &argc, &argv);
  if (rc == CLI_OK && !emoji_is_valid(argv[3]))
    rc = cli_usage("react",
                   "a reaction is 1 to %d bytes of UTF-8 text without "
                   "control characters",
                   CLI_EMOJI_MAX);
  if (rc != CLI_OK)
    return rc;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 4);
  kith_pack_cstr(&p, argv[1]);
  kith_pack_cstr(&p, argv[2]);
  kith_pack_cstr(&p, argv[3]);
  kith_pack_bool(&p, remove);
  return cli_call_show(o, "react", &p, CLI_EVENT_FIELDS, 0);
}

int cli_cmd_edit(cli_opts *o, int argc, char **argv) {
  int rc = cli_parse(o, "edit", "GROUP EVENT TEXT", 3,
                     "Replace the text of your message EVENT (- reads it "
                     "from stdin); everyone sees it marked edited.",
                     NULL, &argc, &argv);
  if (rc != CLI_OK)
    return rc;
  GString *text = g_string_new(NULL);
  rc = get_text(argv[3], text);
  if (rc == CLI_OK) {
    kith_pack p;
    kith_pack_init(&p);
    kith_pack_array(&p, 3);
    kith_pack_cstr(&p, argv[1]);
    kith_pack_cstr(&p, argv[2]);
    kith_pack_str(&p, text->str, text->len);
    rc = cli_call_show(o, "edit", &p, CLI_EVENT_FIELDS, 0);
  }
  g_string_free(text, TRUE);
  return rc;
}

int cli_cmd_delete(cli_opts *o, int argc, char **argv) {
  static const cli_simple s = {
      "delete",
      "delete",
      "GROUP EVENT",
      2,
      "Delete message EVENT: your own, or anyone's as an owner or admin. It "
      "is hidden on every node.",
      CLI_EVENT_FIELDS,
      0};
  return cli_run_simple(o, &s, argc, argv);
}
