/* kith CLI: log items and the names book. */
#include "item.h"

#include <string.h>

#include "out.h"

/* ---- items ---- */

static char *str_or(const msgpack_object *m, const char *key,
                    const char *dflt) {
  const msgpack_object *v = cli_map_get(m, key);
  if (v == NULL || v->type != MSGPACK_OBJECT_STR)
    return dflt ? g_strdup(dflt) : NULL;
  return g_utf8_make_valid(v->via.str.ptr, (gssize)v->via.str.size);
}

static int bool_of(const msgpack_object *m, const char *key) {
  const msgpack_object *v = cli_map_get(m, key);
  return v != NULL && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
}

static void reaction_clear(gpointer p) {
  g_free(((cli_reaction *)p)->emoji);
}

static void parse_reactions(cli_item *it, const msgpack_object *m) {
  const msgpack_object *v = cli_map_get(m, "reactions");
  if (v == NULL || v->type != MSGPACK_OBJECT_ARRAY)
    return;
  for (uint32_t i = 0; i < v->via.array.size; i++) {
    const msgpack_object *r = &v->via.array.ptr[i];
    const msgpack_object *count = cli_map_get(r, "count");
    cli_reaction x = {str_or(r, "emoji", NULL), 0, bool_of(r, "mine")};
    if (x.emoji == NULL)
      continue;
    if (count && count->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
      x.count = count->via.u64;
    g_array_append_val(it->reactions, x);
  }
}

cli_item *cli_item_parse(const msgpack_object *m) {
  const msgpack_object *id = cli_map_get(m, "event_id");
  if (id == NULL || id->type != MSGPACK_OBJECT_STR)
    return NULL;
  cli_item *it = g_new0(cli_item, 1);
  char *type = str_or(m, "type", "message");
  it->type = strcmp(type, "notice") == 0 ? CLI_ITEM_NOTICE : CLI_ITEM_MESSAGE;
  g_free(type);
  it->event_id = str_or(m, "event_id", "");
  const msgpack_object *t = cli_map_get(m, "time_ms");
  if (t && t->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
    it->time_ms = (int64_t)MIN(t->via.u64, (uint64_t)INT64_MAX);
  it->sender_id = str_or(m, "sender_id", "");
  it->sender_name = str_or(m, "sender_name", "");
  it->text = str_or(m, "text", "");
  it->reply_to = str_or(m, "reply_to", NULL);
  it->reactions = g_array_new(FALSE, TRUE, sizeof(cli_reaction));
  g_array_set_clear_func(it->reactions, reaction_clear);
  parse_reactions(it, m);
  it->edited = bool_of(m, "edited");
  it->deleted = bool_of(m, "deleted");
  it->group_id = str_or(m, "group_id", NULL);
  return it;
}

static void item_clear(cli_item *it) {
  g_free(it->event_id);
  g_free(it->sender_id);
  g_free(it->sender_name);
  g_free(it->text);
  g_free(it->reply_to);
  g_array_unref(it->reactions);
  g_free(it->group_id);
}

void cli_item_free(cli_item *it) {
  if (it == NULL)
    return;
  item_clear(it);
  g_free(it);
}

void cli_item_replace(cli_item *dst, cli_item *src) {
  item_clear(dst);
  *dst = *src;
  g_free(src);
}

int cli_item_is_action(const cli_item *it) {
  return it->type == CLI_ITEM_MESSAGE && !it->deleted &&
         g_str_has_prefix(it->text, "/me ");
}

/* ---- terminal text ---- */

/* Control characters (C0, DEL, C1), line and paragraph separators and bidi
 * overrides could rewrite the terminal or disguise text. */
static int is_unsafe(gunichar c) {
  return c < 0x20 || (c >= 0x7f && c < 0xa0) || c == 0x2028 || c == 0x2029 ||
         (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

char *cli_clean(const char *s, size_t len, int multiline) {
  char *v = g_utf8_make_valid(s, (gssize)len);
  GString *out = g_string_sized_new(len);
  for (const char *p = v; *p; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    if (!is_unsafe(c))
      g_string_append_unichar(out, c);
    else if (c == '\n' || c == '\t')
      g_string_append_c(out, multiline ? (char)c : ' ');
    else
      g_string_append_unichar(out, 0xfffd);
  }
  g_free(v);
  return g_string_free(out, FALSE);
}

/* ---- names ---- */

typedef struct person {
  char *id;
  char *name;
  char *skel; /* what the name looks like, for comparison */
  char *role; /* NULL: not a member (now) */
} person;

struct cli_names {
  GHashTable *people; /* id -> person */
  GHashTable *looks;  /* skeleton -> GPtrArray of ids (borrowed) */
};

/* Names that look alike have one skeleton: compatibility-decomposed,
 * case-folded, without zero-width characters. */
static char *skeleton(const char *name) {
  char *n = g_utf8_normalize(name, -1, G_NORMALIZE_ALL);
  char *f = g_utf8_casefold(n ? n : "", -1);
  GString *out = g_string_new(NULL);
  for (const char *p = f; *p; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    if (!g_unichar_iszerowidth(c) && c != 0x00ad)
      g_string_append_unichar(out, c);
  }
  g_free(n);
  g_free(f);
  return g_string_free(out, FALSE);
}

static void person_free(gpointer p) {
  person *x = p;
  g_free(x->id);
  g_free(x->name);
  g_free(x->skel);
  g_free(x->role);
  g_free(x);
}

cli_names *cli_names_new(void) {
  cli_names *nb = g_new0(cli_names, 1);
  nb->people =
      g_hash_table_new_full(g_str_hash, g_str_equal, NULL, person_free);
  nb->looks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                    (GDestroyNotify)g_ptr_array_unref);
  return nb;
}

void cli_names_free(cli_names *nb) {
  if (nb == NULL)
    return;
  g_hash_table_unref(nb->looks);
  g_hash_table_unref(nb->people);
  g_free(nb);
}

static void add_look(cli_names *nb, person *x) {
  GPtrArray *ids = g_hash_table_lookup(nb->looks, x->skel);
  if (ids == NULL) {
    ids = g_ptr_array_new();
    g_hash_table_insert(nb->looks, g_strdup(x->skel), ids);
  }
  g_ptr_array_add(ids, x->id);
}

void cli_names_add(cli_names *nb, const char *id, const char *name,
                   const char *role) {
  if (id == NULL || *id == '\0')
    return;
  person *x = g_hash_table_lookup(nb->people, id);
  if (x == NULL) {
    x = g_new0(person, 1);
    x->id = g_strdup(id);
    g_hash_table_insert(nb->people, x->id, x);
  }
  if (role != NULL) {
    g_free(x->role);
    x->role = g_strdup(role);
  }
  /* The first name seen for an id stays: a node has one name. */
  if (x->name == NULL && name != NULL && *name != '\0') {
    x->name = g_strdup(name);
    x->skel = skeleton(name);
    add_look(nb, x);
  }
}

void cli_names_add_members(cli_names *nb, const msgpack_object *rows) {
  if (rows == NULL || rows->type != MSGPACK_OBJECT_ARRAY)
    return;
  for (uint32_t i = 0; i < rows->via.array.size; i++) {
    const msgpack_object *r = &rows->via.array.ptr[i];
    char *id = str_or(r, "node_id", NULL);
    char *name = str_or(r, "name", NULL);
    char *role = str_or(r, "role", "member");
    cli_names_add(nb, id, name, role);
    g_free(id);
    g_free(name);
    g_free(role);
  }
}

void cli_names_clear_roles(cli_names *nb) {
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init(&it, nb->people);
  while (g_hash_table_iter_next(&it, NULL, &v))
    g_clear_pointer(&((person *)v)->role, g_free);
}

const char *cli_names_role(cli_names *nb, const char *id) {
  person *x = id ? g_hash_table_lookup(nb->people, id) : NULL;
  if (x == NULL || x->role == NULL || strcmp(x->role, "member") == 0)
    return NULL;
  return x->role;
}

/* A name that could be read as part of a label gets a suffix always. */
static int is_plain(const char *name) {
  return strpbrk(name, "#[]") == NULL && strchr("~@*- ", name[0]) == NULL &&
         !g_str_has_suffix(name, " ");
}

/* Id characters that tell id apart from every other id in ids. */
static size_t suffix_len(const char *id, const GPtrArray *ids) {
  size_t len = CLI_NAME_SUFFIX, max = strlen(id);
  for (guint i = 0; ids != NULL && i < ids->len; i++) {
    const char *other = ids->pdata[i];
    size_t same = 0;
    if (strcmp(other, id) == 0)
      continue;
    while (id[same] && id[same] == other[same])
      same++;
    len = MAX(len, same + 1);
  }
  return MIN(len, max);
}

char *cli_names_label(cli_names *nb, const char *id, const char *name) {
  if (id == NULL)
    id = "";
  cli_names_add(nb, id, name, NULL);
  char *skel = name && *name ? skeleton(name) : NULL;
  GPtrArray *ids = skel ? g_hash_table_lookup(nb->looks, skel) : NULL;
  g_free(skel);
  char *shown = name && *name ? cli_clean(name, strlen(name), 0) : NULL;
  if (shown != NULL && is_plain(shown) && (ids == NULL || ids->len < 2))
    return shown;
  char *label = g_strdup_printf("%s#%.*s", shown ? shown : "",
                                (int)suffix_len(id, ids), id);
  g_free(shown);
  return label;
}

char *cli_removed_text(cli_names *nb, const msgpack_object *m,
                       const char *group) {
  char *id = str_or(m, "by", "");
  char *name = str_or(m, "by_name", "");
  char *who = cli_names_label(nb, id, name);
  char *g = cli_clean(group, strlen(group), 0);
  char *line = g_strdup_printf("you were removed from %s by %s", g, who);
  g_free(g);
  g_free(who);
  g_free(name);
  g_free(id);
  return line;
}

/* ---- human form ---- */

char *cli_item_reply_text(const cli_item *it, cli_names *nb,
                          cli_item_find_fn find, void *ud) {
  const cli_item *to = find ? find(it->reply_to, ud) : NULL;
  if (to == NULL)
    return g_strdup_printf("event %.*s", CLI_NAME_SUFFIX, it->reply_to);
  char *who = cli_names_label(nb, to->sender_id, to->sender_name);
  if (to->deleted) {
    char *r = g_strdup_printf("%s: (deleted)", who);
    g_free(who);
    return r;
  }
  char *flat = cli_clean(to->text, strlen(to->text), 0);
  glong n = g_utf8_strlen(flat, -1);
  char *cut = g_utf8_substring(flat, 0, MIN(n, CLI_SNIPPET_CHARS));
  char *r = g_strdup_printf("%s: \"%s%s\"", who, cut,
                            n > CLI_SNIPPET_CHARS ? "…" : "");
  g_free(cut);
  g_free(flat);
  g_free(who);
  return r;
}

char *cli_item_reactions_text(const cli_item *it) {
  if (it->reactions->len == 0)
    return NULL;
  GString *s = g_string_new(NULL);
  for (guint i = 0; i < it->reactions->len; i++) {
    const cli_reaction *r = &g_array_index(it->reactions, cli_reaction, i);
    char *e = cli_clean(r->emoji, strlen(r->emoji), 0);
    g_string_append_printf(s, "%s%s %" G_GUINT64_FORMAT "%s", i ? ", " : "", e,
                           r->count, r->mine ? " (you)" : "");
    g_free(e);
  }
  return g_string_free(s, FALSE);
}

/* Appends text, its later lines behind "  | ". */
static void append_text(GString *out, const char *text) {
  char *t = cli_clean(text, strlen(text), 1);
  char **lines = g_strsplit(t, "\n", -1);
  for (int i = 0; lines[i] != NULL; i++)
    g_string_append_printf(out, "%s%s", i ? "\n  | " : "", lines[i]);
  g_strfreev(lines);
  g_free(t);
}

static void format_message(const cli_item *it, cli_names *nb,
                           cli_item_find_fn find, void *ud, GString *out) {
  char *who = cli_names_label(nb, it->sender_id, it->sender_name);
  const char *role = cli_names_role(nb, it->sender_id);
  if (cli_item_is_action(it)) {
    g_string_append_printf(out, "* %s", who);
    if (role != NULL)
      g_string_append_printf(out, " [%s]", role);
    g_string_append_c(out, ' ');
    append_text(out, it->text + 4);
  } else {
    g_string_append(out, who);
    if (role != NULL)
      g_string_append_printf(out, " [%s]", role);
    if (it->reply_to != NULL) {
      char *re = cli_item_reply_text(it, nb, find, ud);
      g_string_append_printf(out, " (reply to %s)", re);
      g_free(re);
    }
    g_string_append(out, ": ");
    if (it->deleted)
      g_string_append(out, "(message deleted)");
    else
      append_text(out, it->text);
  }
  if (it->edited && !it->deleted)
    g_string_append(out, " (edited)");
  g_free(who);
}

void cli_item_format(const cli_item *it, cli_names *nb, cli_item_find_fn find,
                     void *ud, GString *out) {
  char *when = cli_time_local(it->time_ms);
  g_string_append_printf(out, "%s ", when);
  g_free(when);
  if (it->type == CLI_ITEM_NOTICE) {
    g_string_append(out, "-- ");
    append_text(out, it->text);
  } else {
    format_message(it, nb, find, ud, out);
  }
  g_string_append_c(out, '\n');
  char *re = cli_item_reactions_text(it);
  if (re != NULL)
    g_string_append_printf(out, "  + %s\n", re);
  g_free(re);
}
