/* Unit tests for cli/item.c: log items as the control-socket contract
 * shapes them (docs/protocol.md 12.3), their human form, and names told
 * apart. No node: the items are packed here. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glib.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/item.h"
#include "core/codec.h"

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ID_C "aaaaaaaaaaaxaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define EV_1 "e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1"
#define EV_2 "e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2"
#define T0 1764442953000LL /* 2025-11-29 19:02:33 UTC */

/* What a test item may say; NULL and 0 fields are left out of the map,
 * as an older node leaves them out. */
typedef struct spec {
  const char *type, *event_id, *sender_id, *sender_name, *text, *reply_to;
  int edited, deleted;
  const char *emoji; /* one reaction: emoji, count 2, mine */
  const char *group_id;
} spec;

static void kv(kith_pack *p, const char *k, const char *v) {
  kith_pack_cstr(p, k);
  kith_pack_cstr(p, v);
}

static cli_item *make(const spec *s) {
  kith_pack p;
  kith_pack_init(&p);
  uint32_t n = 7 + !!s->type + !!s->reply_to + !!s->emoji + !!s->group_id;
  msgpack_pack_map(&p.pk, n);
  kv(&p, "event_id", s->event_id);
  kith_pack_cstr(&p, "time_ms");
  kith_pack_uint(&p, T0);
  kv(&p, "sender_id", s->sender_id ? s->sender_id : ID_A);
  if (s->type)
    kv(&p, "type", s->type);
  if (s->reply_to)
    kv(&p, "reply_to", s->reply_to);
  kv(&p, "sender_name", s->sender_name ? s->sender_name : "alice");
  kv(&p, "text", s->text ? s->text : "hi");
  if (s->emoji) {
    kith_pack_cstr(&p, "reactions");
    kith_pack_array(&p, 2);
    msgpack_pack_map(&p.pk, 3);
    kv(&p, "emoji", s->emoji);
    kith_pack_cstr(&p, "count");
    kith_pack_uint(&p, 2);
    kith_pack_cstr(&p, "mine");
    kith_pack_bool(&p, 1);
    msgpack_pack_map(&p.pk, 2);
    kv(&p, "emoji", "x");
    kith_pack_cstr(&p, "count");
    kith_pack_uint(&p, 1);
  }
  if (s->group_id)
    kv(&p, "group_id", s->group_id);
  uint8_t *buf = NULL;
  size_t len = 0;
  /* edited and deleted go last, always */
  kith_pack_cstr(&p, "edited");
  kith_pack_bool(&p, s->edited);
  kith_pack_cstr(&p, "deleted");
  kith_pack_bool(&p, s->deleted);
  assert_int_equal(kith_pack_take(&p, &buf, &len), KITH_OK);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  assert_int_equal(kith_codec_unpack_loose(buf, len, &u), KITH_OK);
  cli_item *it = cli_item_parse(&u.data);
  msgpack_unpacked_destroy(&u);
  g_free(buf);
  return it;
}

static char *format(const cli_item *it, cli_names *nb, cli_item_find_fn find,
                    void *ud) {
  GString *out = g_string_new(NULL);
  cli_item_format(it, nb, find, ud, out);
  return g_string_free(out, FALSE);
}

static void parse_reads_every_contract_field(void **state) {
  spec s = {.type = "notice",
            .event_id = EV_1,
            .text = "t",
            .reply_to = EV_2,
            .edited = 1,
            .deleted = 1,
            .emoji = "👍",
            .group_id = "g1"};
  cli_item *it = make(&s);
  assert_non_null(it);
  assert_int_equal(it->type, CLI_ITEM_NOTICE);
  assert_string_equal(it->event_id, EV_1);
  assert_int_equal(it->time_ms, T0);
  assert_string_equal(it->sender_id, ID_A);
  assert_string_equal(it->sender_name, "alice");
  assert_string_equal(it->reply_to, EV_2);
  assert_true(it->edited);
  assert_true(it->deleted);
  assert_string_equal(it->group_id, "g1");
  assert_int_equal(it->reactions->len, 2);
  cli_reaction *r = &g_array_index(it->reactions, cli_reaction, 0);
  assert_string_equal(r->emoji, "👍");
  assert_int_equal(r->count, 2);
  assert_true(r->mine);
  assert_false(g_array_index(it->reactions, cli_reaction, 1).mine);
  cli_item_free(it);
}

static void parse_defaults_when_keys_are_missing(void **state) {
  spec s = {.event_id = EV_1};
  cli_item *it = make(&s);
  assert_int_equal(it->type, CLI_ITEM_MESSAGE);
  assert_null(it->reply_to);
  assert_null(it->group_id);
  assert_int_equal(it->reactions->len, 0);
  assert_false(it->edited);
  cli_item_free(it);
}

static void parse_rejects_items_without_an_id(void **state) {
  msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
  assert_null(cli_item_parse(&nil));
  msgpack_object empty = {.type = MSGPACK_OBJECT_MAP};
  assert_null(cli_item_parse(&empty));
}

static void clean_replaces_what_could_drive_a_terminal(void **state) {
  const char *evil = "a\x1b]0;t\x07"
                     "b\xc2\x9b"
                     "c\xe2\x80\xa8"
                     "d\xe2\x80\xae"
                     "e\nf\tg";
  char *one = cli_clean(evil, strlen(evil), 0);
  assert_string_equal(one, "a\xef\xbf\xbd]0;t\xef\xbf\xbd"
                           "b\xef\xbf\xbd"
                           "c\xef\xbf\xbd"
                           "d\xef\xbf\xbd"
                           "e f g");
  char *multi = cli_clean(evil, strlen(evil), 1);
  assert_non_null(strstr(multi, "e\nf\tg"));
  g_free(one);
  g_free(multi);
}

static void shared_names_get_an_id_suffix(void **state) {
  cli_names *nb = cli_names_new();
  cli_names_add(nb, ID_A, "creator", "owner");
  char *alone = cli_names_label(nb, ID_A, "creator");
  assert_string_equal(alone, "creator");
  cli_names_add(nb, ID_B, "creator", "member");
  char *a = cli_names_label(nb, ID_A, "creator");
  char *b = cli_names_label(nb, ID_B, "creator");
  assert_string_equal(a, "creator#aaaaaaaa");
  assert_string_equal(b, "creator#bbbbbbbb");
  char *unique = cli_names_label(nb, "cccc", "bob");
  assert_string_equal(unique, "bob");
  g_free(alone);
  g_free(a);
  g_free(b);
  g_free(unique);
  cli_names_free(nb);
}

static void lookalike_names_count_as_shared(void **state) {
  static const char *const LOOKALIKES[] = {
      "Creator", "CREATOR", "\xef\xbd\x83reator" /* fullwidth c */,
      "cre\xe2\x80\x8b"
      "ator" /* zero-width space */};
  for (size_t i = 0; i < G_N_ELEMENTS(LOOKALIKES); i++) {
    cli_names *nb = cli_names_new();
    cli_names_add(nb, ID_A, "creator", NULL);
    cli_names_add(nb, ID_B, LOOKALIKES[i], NULL);
    char *a = cli_names_label(nb, ID_A, "creator");
    assert_string_equal(a, "creator#aaaaaaaa");
    g_free(a);
    cli_names_free(nb);
  }
}

static void names_that_mimic_labels_always_get_a_suffix(void **state) {
  static const char *const MIMICS[] = {
      "alice [owner]", "bob#aaaaaaaa", "~alice",  "@bob",
      "* bob waves",   "-- notice",    " padded", "trailing "};
  cli_names *nb = cli_names_new();
  for (size_t i = 0; i < G_N_ELEMENTS(MIMICS); i++) {
    char *l = cli_names_label(nb, ID_B, MIMICS[i]);
    assert_true(g_str_has_suffix(l, "#bbbbbbbb"));
    g_free(l);
  }
  char *nameless = cli_names_label(nb, ID_A, "");
  assert_string_equal(nameless, "#aaaaaaaa");
  g_free(nameless);
  cli_names_free(nb);
}

static void suffix_grows_until_the_ids_differ(void **state) {
  cli_names *nb = cli_names_new();
  cli_names_add(nb, ID_A, "creator", NULL);
  cli_names_add(nb, ID_C, "creator", NULL);
  char *a = cli_names_label(nb, ID_A, "creator");
  char *c = cli_names_label(nb, ID_C, "creator");
  assert_string_equal(a, "creator#aaaaaaaaaaaa");
  assert_string_equal(c, "creator#aaaaaaaaaaax");
  g_free(a);
  g_free(c);
  cli_names_free(nb);
}

static void roles_are_marked_for_owners_and_admins(void **state) {
  cli_names *nb = cli_names_new();
  cli_names_add(nb, ID_A, "alice", "owner");
  cli_names_add(nb, ID_B, "bob", "member");
  cli_names_add(nb, "c", "carol", "admin");
  assert_string_equal(cli_names_role(nb, ID_A), "owner");
  assert_null(cli_names_role(nb, ID_B));
  assert_string_equal(cli_names_role(nb, "c"), "admin");
  cli_names_clear_roles(nb);
  assert_null(cli_names_role(nb, ID_A));
  cli_names_free(nb);
}

static void
a_message_is_one_line_and_a_newline_cannot_fake_another(void **state) {
  cli_names *nb = cli_names_new();
  cli_names_add(nb, ID_A, "alice", "owner");
  spec s = {.event_id = EV_1,
            .text = "hi\n2025-11-29 19:02:33 bob: send me your key"};
  cli_item *it = make(&s);
  char *out = format(it, nb, NULL, NULL);
  assert_string_equal(out, "2025-11-29 19:02:33 alice [owner]: hi\n"
                           "  | 2025-11-29 19:02:33 bob: send me your key\n");
  g_free(out);
  cli_item_free(it);
  cli_names_free(nb);
}

static void a_notice_is_marked_apart_from_messages(void **state) {
  cli_names *nb = cli_names_new();
  spec s = {
      .type = "notice", .event_id = EV_1, .text = "bob was removed by alice"};
  cli_item *it = make(&s);
  char *out = format(it, nb, NULL, NULL);
  assert_string_equal(out, "2025-11-29 19:02:33 -- bob was removed by alice\n");
  g_free(out);
  cli_item_free(it);
  cli_names_free(nb);
}

static const cli_item *find_one(const char *id, void *ud) {
  const cli_item *it = ud;
  return strcmp(id, it->event_id) == 0 ? it : NULL;
}

static void replies_reactions_edits_and_deletes_are_shown(void **state) {
  cli_names *nb = cli_names_new();
  spec first = {.event_id = EV_1,
                .text = "a long first message that goes on and on and on"};
  spec reply = {.event_id = EV_2,
                .sender_id = ID_B,
                .sender_name = "bob",
                .reply_to = EV_1,
                .text = "yes",
                .edited = 1,
                .emoji = "👍"};
  cli_item *a = make(&first), *b = make(&reply);
  char *out = format(b, nb, find_one, a);
  assert_string_equal(out, "2025-11-29 19:02:33 bob (reply to alice: \"a long "
                           "first message that goes on and on…\"): yes "
                           "(edited)\n  + 👍 2 (you), x 1\n");
  g_free(out);
  out = format(b, nb, NULL, NULL);
  assert_non_null(strstr(out, "(reply to event e1e1e1e1)"));
  g_free(out);
  spec gone = {.event_id = EV_1, .text = "", .deleted = 1, .edited = 1};
  cli_item *d = make(&gone);
  out = format(d, nb, NULL, NULL);
  assert_string_equal(out, "2025-11-29 19:02:33 alice: (message deleted)\n");
  g_free(out);
  cli_item_free(a);
  cli_item_free(b);
  cli_item_free(d);
  cli_names_free(nb);
}

static void an_action_shows_its_author_first(void **state) {
  cli_names *nb = cli_names_new();
  spec s = {.event_id = EV_1, .text = "/me waves"};
  cli_item *it = make(&s);
  assert_true(cli_item_is_action(it));
  char *out = format(it, nb, NULL, NULL);
  assert_string_equal(out, "2025-11-29 19:02:33 * alice waves\n");
  g_free(out);
  cli_item_free(it);
  cli_names_free(nb);
}

static void an_update_replaces_the_item(void **state) {
  spec s = {.event_id = EV_1, .text = "old"};
  spec u = {.event_id = EV_1, .text = "new", .edited = 1};
  cli_item *it = make(&s);
  cli_item_replace(it, make(&u));
  assert_string_equal(it->text, "new");
  assert_true(it->edited);
  cli_item_free(it);
}

int main(void) {
  setenv("TZ", "UTC", 1);
  tzset();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parse_reads_every_contract_field),
      cmocka_unit_test(parse_defaults_when_keys_are_missing),
      cmocka_unit_test(parse_rejects_items_without_an_id),
      cmocka_unit_test(clean_replaces_what_could_drive_a_terminal),
      cmocka_unit_test(shared_names_get_an_id_suffix),
      cmocka_unit_test(lookalike_names_count_as_shared),
      cmocka_unit_test(names_that_mimic_labels_always_get_a_suffix),
      cmocka_unit_test(suffix_grows_until_the_ids_differ),
      cmocka_unit_test(roles_are_marked_for_owners_and_admins),
      cmocka_unit_test(a_message_is_one_line_and_a_newline_cannot_fake_another),
      cmocka_unit_test(a_notice_is_marked_apart_from_messages),
      cmocka_unit_test(replies_reactions_edits_and_deletes_are_shown),
      cmocka_unit_test(an_action_shows_its_author_first),
      cmocka_unit_test(an_update_replaces_the_item),
  };
  int failed = cmocka_run_group_tests_name("cli_item", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
