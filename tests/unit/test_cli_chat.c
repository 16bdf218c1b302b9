/* Unit tests for the parts of kith chat that need no terminal and no node:
 * the input line editor (cli/chat_input.c), the commands typed
 * (cli/chat_cmd.c) and line wrapping (cli/chat_view.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glib.h>
#include <locale.h>
#include <string.h>

#include "cli/chat_cmd.h"
#include "cli/chat_int.h"
#include "core/codec.h"

static void assert_text(chat_input *in, const char *want) {
  char *s = chat_input_text(in);
  assert_string_equal(s, want);
  g_free(s);
}

static void input_edits_like_a_shell_line(void **state) {
  chat_input in;
  chat_input_init(&in);
  chat_input_insert_utf8(&in, "hello world");
  for (int i = 0; i < 5; i++)
    chat_input_edit(&in, CHAT_ED_LEFT);
  chat_input_insert_utf8(&in, "big ");
  assert_text(&in, "hello big world");
  chat_input_edit(&in, CHAT_ED_KILL_WORD);
  assert_text(&in, "hello world");
  chat_input_edit(&in, CHAT_ED_HOME);
  chat_input_edit(&in, CHAT_ED_DELETE);
  assert_text(&in, "ello world");
  chat_input_edit(&in, CHAT_ED_WORD_RIGHT);
  chat_input_edit(&in, CHAT_ED_KILL_END);
  assert_text(&in, "ello");
  chat_input_edit(&in, CHAT_ED_END);
  chat_input_edit(&in, CHAT_ED_BACKSPACE);
  chat_input_insert(&in, '\n');
  chat_input_insert_utf8(&in, "👍");
  assert_text(&in, "ell\n👍");
  chat_input_edit(&in, CHAT_ED_KILL_START);
  assert_text(&in, "");
  chat_input_edit(&in, CHAT_ED_BACKSPACE); /* nothing to delete */
  chat_input_edit(&in, CHAT_ED_LEFT);
  assert_int_equal(in.cursor, 0);
  chat_input_clear(&in);
}

static void input_history_recalls_and_keeps_the_new_line(void **state) {
  chat_input in;
  chat_input_init(&in);
  chat_input_insert_utf8(&in, "first");
  g_free(chat_input_take(&in));
  chat_input_insert_utf8(&in, "second");
  char *s = chat_input_take(&in);
  assert_string_equal(s, "second");
  g_free(s);
  chat_input_insert_utf8(&in, "draft");
  chat_input_edit(&in, CHAT_ED_HISTORY_UP);
  assert_text(&in, "second");
  chat_input_edit(&in, CHAT_ED_HISTORY_UP);
  chat_input_edit(&in, CHAT_ED_HISTORY_UP); /* stays at the oldest */
  assert_text(&in, "first");
  chat_input_edit(&in, CHAT_ED_HISTORY_DOWN);
  chat_input_edit(&in, CHAT_ED_HISTORY_DOWN);
  assert_text(&in, "draft");
  g_free(chat_input_take(&in));
  g_free(chat_input_take(&in)); /* empty lines are not remembered */
  assert_int_equal(in.history->len, 3);
  chat_input_clear(&in);
}

static void input_is_capped(void **state) {
  chat_input in;
  chat_input_init(&in);
  for (int i = 0; i < CHAT_INPUT_MAX + 10; i++)
    chat_input_insert(&in, 'x');
  assert_int_equal(in.text->len, CHAT_INPUT_MAX);
  chat_input_clear(&in);
}

static void parse_ok(const char *line, chat_cmd *cmd) {
  char *error = NULL;
  int ok = chat_cmd_parse(line, cmd, &error);
  if (!ok)
    fail_msg("'%s': %s", line, error);
}

static char *parse_error(const char *line) {
  chat_cmd cmd;
  char *error = NULL;
  assert_false(chat_cmd_parse(line, &cmd, &error));
  assert_non_null(error);
  return error;
}

static void commands_parse_with_their_arguments(void **state) {
  chat_cmd c;
  parse_ok("hello there", &c);
  assert_int_equal(c.op, CHAT_SAY);
  assert_string_equal(c.text, "hello there");
  chat_cmd_clear(&c);
  parse_ok("//not a command", &c);
  assert_int_equal(c.op, CHAT_SAY);
  assert_string_equal(c.text, "/not a command");
  chat_cmd_clear(&c);
  parse_ok("/me waves", &c);
  assert_int_equal(c.op, CHAT_ME);
  assert_string_equal(c.text, "waves");
  chat_cmd_clear(&c);
  parse_ok("/reply ^2 me too", &c);
  assert_int_equal(c.op, CHAT_REPLY);
  assert_int_equal(c.ref_back, 2);
  assert_string_equal(c.text, "me too");
  chat_cmd_clear(&c);
  parse_ok("/reply #k3x9 ok", &c);
  assert_string_equal(c.ref_id, "k3x9");
  chat_cmd_clear(&c);
  parse_ok("/reply sure", &c);
  assert_int_equal(c.ref_back, 0);
  assert_null(c.ref_id);
  assert_string_equal(c.text, "sure");
  chat_cmd_clear(&c);
  parse_ok("/react ^1 👍", &c);
  assert_int_equal(c.op, CHAT_REACT);
  assert_string_equal(c.arg, "👍");
  chat_cmd_clear(&c);
  parse_ok("/mute bob 10m", &c);
  assert_int_equal(c.op, CHAT_MUTE);
  assert_string_equal(c.arg, "bob");
  assert_int_equal(c.secs, 600);
  chat_cmd_clear(&c);
  parse_ok("/mute bob", &c);
  assert_int_equal(c.secs, 0);
  chat_cmd_clear(&c);
  parse_ok("/invite 3", &c);
  assert_int_equal(c.uses, 3);
  chat_cmd_clear(&c);
  parse_ok("/invite", &c);
  assert_int_equal(c.uses, 1);
  chat_cmd_clear(&c);
  parse_ok("/topic", &c); /* clears the topic */
  assert_int_equal(c.op, CHAT_TOPIC);
  assert_string_equal(c.text, "");
  chat_cmd_clear(&c);
  parse_ok("/delete", &c);
  assert_int_equal(c.op, CHAT_DELETE);
  chat_cmd_clear(&c);
  parse_ok("/quit", &c);
  assert_int_equal(c.op, CHAT_QUIT);
  chat_cmd_clear(&c);
}

static void bad_commands_say_what_is_wrong(void **state) {
  static const struct {
    const char *line, *says;
  } CASES[] = {
      {"/nope", "unknown command /nope"},
      {"/kick", "usage: /kick MEMBER"},
      {"/kick a b", "usage: /kick MEMBER"},
      {"/reply", "usage: /reply [REF] TEXT"},
      {"/reply ^x hi", "no message reference"},
      {"/reply ^0 hi", "no message reference"},
      {"/mute bob 10x", "no duration"},
      {"/invite 0", "1 to 1000 uses"},
      {"/react 0123456789012345678901234567890123", "1 to 32 bytes"},
      {"/quit now", "usage: /quit"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(CASES); i++) {
    char *e = parse_error(CASES[i].line);
    if (strstr(e, CASES[i].says) == NULL)
      fail_msg("'%s' says '%s'", CASES[i].line, e);
    g_free(e);
  }
  char *e = parse_error("");
  assert_string_equal(e, "");
  g_free(e);
}

static void assert_lines(GPtrArray *got, const char *const *want, guint n) {
  assert_int_equal(got->len, n);
  for (guint i = 0; i < n; i++)
    assert_string_equal(got->pdata[i], want[i]);
  g_ptr_array_unref(got);
}

static void wrap_breaks_at_spaces_and_counts_columns(void **state) {
  const char *const a[] = {"hello world", "foo"};
  assert_lines(chat_wrap("hello world foo", 11, 11), a, 2);
  const char *const b[] = {"abcd", "efgh", "ij"};
  assert_lines(chat_wrap("abcdefghij", 4, 4), b, 3);
  const char *const c[] = {"👍👍", "👍"}; /* two columns each */
  assert_lines(chat_wrap("👍👍👍", 5, 5), c, 2);
  const char *const d[] = {"ab", "cdef", "gh"};
  assert_lines(chat_wrap("ab cdef gh", 3, 4), d, 3);
  const char *const e[] = {""};
  assert_lines(chat_wrap("", 10, 10), e, 1);
  const char *const f[] = {"x", "y"}; /* widths below one still progress */
  assert_lines(chat_wrap("xy", 0, 0), f, 2);
  assert_int_equal(chat_width("a👍é"), 4);
}

static void ages_are_short(void **state) {
  static const struct {
    int64_t ago;
    const char *says;
  } CASES[] = {{30000, "now"},
               {5 * 60000 + 1, "5m"},
               {3 * 3600000LL, "3h"},
               {2 * 86400000LL + 5, "2d"},
               {-5000, "now"}}; /* a clock ahead */
  int64_t now = 1000LL * 86400 * 400;
  assert_null(chat_age(now, 0));
  for (size_t i = 0; i < G_N_ELEMENTS(CASES); i++) {
    char *a = chat_age(now, now - CASES[i].ago);
    assert_string_equal(a, CASES[i].says);
    g_free(a);
  }
}

/* A notification's params: [ {event_id, time_ms, sender_id, sender_name,
 * text, group_id, edited} ], decoded into u. */
static const msgpack_object *notice_params(msgpack_unpacked *u,
                                           const char *group, const char *id,
                                           uint64_t time_ms, const char *from,
                                           const char *text, int edited) {
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 1);
  msgpack_pack_map(&p.pk, 7);
  const char *kv[][2] = {{"event_id", id},
                         {"sender_id", from},
                         {"sender_name", from},
                         {"text", text},
                         {"group_id", group}};
  for (size_t i = 0; i < G_N_ELEMENTS(kv); i++) {
    kith_pack_cstr(&p, kv[i][0]);
    kith_pack_cstr(&p, kv[i][1]);
  }
  kith_pack_cstr(&p, "time_ms");
  kith_pack_uint(&p, time_ms);
  kith_pack_cstr(&p, "edited");
  kith_pack_bool(&p, edited);
  uint8_t *buf = NULL;
  size_t len = 0;
  assert_int_equal(kith_pack_take(&p, &buf, &len), KITH_OK);
  msgpack_unpacked_init(u);
  assert_int_equal(kith_codec_unpack_loose(buf, len, u), KITH_OK);
  g_free(buf);
  return &u->data;
}

static void notify(chat *c, const char *method, const char *group,
                   const char *id, uint64_t t, const char *from,
                   const char *text, int edited) {
  msgpack_unpacked u;
  chat_on_notify(method, notice_params(&u, group, id, t, from, text, edited),
                 c);
  msgpack_unpacked_destroy(&u);
}

static void notifications_keep_order_updates_and_unread(void **state) {
  chat c = {.me = g_strdup("me")};
  c.groups = g_ptr_array_new_with_free_func(chat_group_free);
  g_ptr_array_add(c.groups, chat_group_new("g1", "friends"));
  g_ptr_array_add(c.groups, chat_group_new("g2", "fans"));
  chat_group *g1 = c.groups->pdata[0], *g2 = c.groups->pdata[1];
  notify(&c, "message", "g1", "e2", 200, "bob", "second", 0);
  notify(&c, "message", "g1", "e1", 100, "bob", "first", 0);
  notify(&c, "message", "g1", "e1", 100, "bob", "first", 0); /* again */
  assert_int_equal(g1->items->len, 2);
  assert_string_equal(((cli_item *)g1->items->pdata[0])->text, "first");
  notify(&c, "update", "g1", "e1", 100, "bob", "first, edited", 1);
  assert_int_equal(g1->items->len, 2);
  const cli_item *e1 = g_hash_table_lookup(g1->by_id, "e1");
  assert_non_null(e1);
  assert_string_equal(e1->text, "first, edited");
  assert_true(e1->edited);
  assert_int_equal(g1->unread, 0); /* the group on screen, at the bottom */
  notify(&c, "message", "g2", "e3", 300, "bob", "elsewhere", 0);
  notify(&c, "message", "g2", "e4", 400, "me", "mine", 0);
  notify(&c, "message", "nope", "e5", 500, "bob", "no such group", 0);
  assert_int_equal(g2->unread, 1); /* one from another, not mine */
  assert_string_equal(g2->marker, "e3");
  assert_int_equal(g2->items->len, 2);
  g_ptr_array_unref(c.groups);
  g_free(c.me);
}

int main(void) {
  setlocale(LC_ALL, "C.UTF-8");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(input_edits_like_a_shell_line),
      cmocka_unit_test(input_history_recalls_and_keeps_the_new_line),
      cmocka_unit_test(input_is_capped),
      cmocka_unit_test(commands_parse_with_their_arguments),
      cmocka_unit_test(bad_commands_say_what_is_wrong),
      cmocka_unit_test(wrap_breaks_at_spaces_and_counts_columns),
      cmocka_unit_test(notifications_keep_order_updates_and_unread),
      cmocka_unit_test(ages_are_short),
  };
  int failed = cmocka_run_group_tests_name("cli_chat", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
