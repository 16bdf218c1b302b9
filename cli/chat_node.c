/* kith chat: the model and the node's side (the control socket): groups,
 * history pages, notifications, and the commands typed. */
#include <stdarg.h>
#include <string.h>

#include "chat_cmd.h"
#include "chat_int.h"

/* ---- the model ---- */

static void member_free(gpointer p) {
  chat_member *m = p;
  g_free(m->id);
  g_free(m->name);
  g_free(m->role);
  g_free(m);
}

chat_group *chat_group_new(const char *id, const char *name) {
  chat_group *g = g_new0(chat_group, 1);
  g->id = g_strdup(id);
  g->name = g_strdup(name);
  g->items = g_ptr_array_new_with_free_func((GDestroyNotify)cli_item_free);
  g->by_id = g_hash_table_new(g_str_hash, g_str_equal);
  g->members = g_ptr_array_new_with_free_func(member_free);
  g->names = cli_names_new();
  return g;
}

void chat_group_free(gpointer p) {
  chat_group *g = p;
  g_free(g->id);
  g_free(g->name);
  g_free(g->topic);
  g_free(g->mode);
  g_hash_table_unref(g->by_id);
  g_ptr_array_unref(g->items);
  g_ptr_array_unref(g->members);
  cli_names_free(g->names);
  g_free(g->marker);
  g_free(g->read_upto);
  g_free(g);
}

chat_group *chat_current(chat *c) {
  return c->groups->pdata[c->cur];
}

static chat_group *group_by_id(chat *c, const char *id) {
  for (guint i = 0; id && i < c->groups->len; i++)
    if (strcmp(((chat_group *)c->groups->pdata[i])->id, id) == 0)
      return c->groups->pdata[i];
  return NULL;
}

static int item_before(const cli_item *a, const cli_item *b) {
  if (a->time_ms != b->time_ms)
    return a->time_ms < b->time_ms;
  return strcmp(a->event_id, b->event_id) < 0;
}

/* Puts an item in display order ((time, id), as the node orders them);
 * an item already there is replaced. Returns 1 if it is new. */
static int insert_item(chat_group *g, cli_item *it) {
  cli_item *old = g_hash_table_lookup(g->by_id, it->event_id);
  if (old != NULL) {
    /* The key is the old item's id, freed by the replacement. */
    g_hash_table_remove(g->by_id, it->event_id);
    cli_item_replace(old, it);
    g_hash_table_insert(g->by_id, old->event_id, old);
    return 0;
  }
  guint at = g->items->len;
  while (at > 0 && item_before(it, g->items->pdata[at - 1]))
    at--;
  g_ptr_array_insert(g->items, (gint)at, it);
  g_hash_table_insert(g->by_id, it->event_id, it);
  cli_names_add(g->names, it->sender_id, it->sender_name, NULL);
  if (g->items->len > CHAT_MAX_ITEMS) {
    cli_item *first = g->items->pdata[0];
    g_hash_table_remove(g->by_id, first->event_id);
    g_ptr_array_remove_index(g->items, 0);
    g->at_start = 0;
  }
  return 1;
}

/* A line made by the chat itself (help, errors, invite codes), shown in
 * the current group only, never sent. */
void chat_say(chat *c, const char *text) {
  chat_group *g = chat_current(c);
  cli_item *it = g_new0(cli_item, 1);
  it->type = CLI_ITEM_NOTICE;
  it->event_id = g_strdup_printf("%c%08u", CHAT_LOCAL_PREFIX, c->local_seq++);
  it->time_ms = g_get_real_time() / 1000;
  it->sender_id = g_strdup("");
  it->sender_name = g_strdup("");
  it->text = g_strdup(text);
  it->reactions = g_array_new(FALSE, TRUE, sizeof(cli_reaction));
  g_ptr_array_add(g->items, it);
  g_hash_table_insert(g->by_id, it->event_id, it);
}

static int is_local(const cli_item *it) {
  return it->event_id[0] == CHAT_LOCAL_PREFIX;
}

/* ---- notifications ---- */

static void on_item(chat *c, const msgpack_object *m, int update) {
  cli_item *it = cli_item_parse(m);
  chat_group *g = it ? group_by_id(c, it->group_id) : NULL;
  if (g == NULL) {
    cli_item_free(it);
    return;
  }
  int mine = c->me && strcmp(it->sender_id, c->me) == 0;
  int notice = it->type == CLI_ITEM_NOTICE;
  char *id = g_strdup(it->event_id);
  if (!insert_item(g, it) || update || mine) {
    g_free(id);
    return;
  }
  if (g != chat_current(c) || c->scroll > 0) {
    g->unread++;
    if (g->marker == NULL)
      g->marker = g_strdup(id);
  }
  if (notice) /* the topic, a role, the members or the mode changed */
    g->members_ms = 0;
  g_free(id);
}

static void on_removed(chat *c, const msgpack_object *m) {
  const msgpack_object *gid = cli_map_get(m, "group_id");
  char *id = gid && gid->type == MSGPACK_OBJECT_STR
                 ? g_strndup(gid->via.str.ptr, gid->via.str.size)
                 : NULL;
  chat_group *g = group_by_id(c, id);
  g_free(id);
  if (g == NULL)
    return;
  char *text = cli_removed_text(g->names, m, g->name);
  guint keep = c->cur;
  for (guint i = 0; i < c->groups->len; i++)
    if (c->groups->pdata[i] == g)
      c->cur = i;
  chat_say(c, text);
  c->cur = keep;
  g_free(text);
}

void chat_on_notify(const char *method, const msgpack_object *params,
                    void *ud) {
  chat *c = ud;
  int update = strcmp(method, "update") == 0;
  int removed = strcmp(method, "removed") == 0;
  if (!update && !removed && strcmp(method, "message") != 0)
    return;
  for (uint32_t i = 0; i < params->via.array.size; i++) {
    if (removed)
      on_removed(c, &params->via.array.ptr[i]);
    else
      on_item(c, &params->via.array.ptr[i], update);
  }
}

/* ---- calls ---- */

/* One call with string params; the result borrows from c->r. */
int chat_call(chat *c, const char *method, const msgpack_object **res, int n,
              ...) {
  va_list ap;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, (uint32_t)n);
  va_start(ap, n);
  for (int i = 0; i < n; i++)
    kith_pack_cstr(&p, va_arg(ap, const char *));
  va_end(ap);
  return cli_rpc_call(c->r, method, &p, CLI_CALL_TIMEOUT_MS, chat_on_notify, c,
                      res);
}

static char *str_of(const msgpack_object *m, const char *key) {
  const msgpack_object *v = cli_map_get(m, key);
  if (v == NULL || v->type != MSGPACK_OBJECT_STR)
    return NULL;
  return g_utf8_make_valid(v->via.str.ptr, (gssize)v->via.str.size);
}

static int64_t int_of(const msgpack_object *m, const char *key) {
  const msgpack_object *v = cli_map_get(m, key);
  if (v == NULL || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
    return 0;
  return (int64_t)MIN(v->via.u64, (uint64_t)INT64_MAX);
}

void chat_reload_members(chat *c, chat_group *g) {
  const msgpack_object *res = NULL;
  g->members_ms = g_get_monotonic_time() / 1000;
  if (chat_call(c, "group.info", &res, 1, g->id) == CLI_OK) {
    g_free(g->topic);
    g_free(g->mode);
    g->topic = str_of(res, "topic");
    g->mode = str_of(res, "mode");
  }
  if (chat_call(c, "group.members", &res, 1, g->id) != CLI_OK ||
      res->type != MSGPACK_OBJECT_ARRAY)
    return;
  g_ptr_array_set_size(g->members, 0);
  cli_names_clear_roles(g->names);
  cli_names_add_members(g->names, res);
  for (uint32_t i = 0; i < res->via.array.size; i++) {
    const msgpack_object *r = &res->via.array.ptr[i];
    const msgpack_object *on = cli_map_get(r, "online");
    chat_member *m = g_new0(chat_member, 1);
    m->id = str_of(r, "node_id");
    m->name = str_of(r, "name");
    m->role = str_of(r, "role");
    m->online = on && on->type == MSGPACK_OBJECT_BOOLEAN && on->via.boolean;
    m->last_seen_ms = int_of(r, "last_seen_ms");
    if (m->id == NULL || m->name == NULL || m->role == NULL) {
      member_free(m);
      continue;
    }
    g_ptr_array_add(g->members, m);
  }
}

/* The first item the node knows (for the page before it). */
static const char *first_real(chat_group *g) {
  for (guint i = 0; i < g->items->len; i++)
    if (!is_local(g->items->pdata[i]))
      return ((cli_item *)g->items->pdata[i])->event_id;
  return NULL;
}

/* Asks for the page before the oldest item held (the newest page when
 * none is held). */
int chat_load_page(chat *c, chat_group *g) {
  const char *first = first_real(g);
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, first ? 3 : 2);
  kith_pack_cstr(&p, g->id);
  kith_pack_uint(&p, CHAT_PAGE);
  if (first)
    kith_pack_cstr(&p, first);
  const msgpack_object *res = NULL;
  int rc = cli_rpc_call(c->r, "log", &p, CLI_CALL_TIMEOUT_MS, chat_on_notify, c,
                        &res);
  if (rc != CLI_OK || res->type != MSGPACK_OBJECT_ARRAY)
    return rc;
  g->at_start = res->via.array.size < CHAT_PAGE;
  for (uint32_t i = 0; i < res->via.array.size; i++) {
    cli_item *it = cli_item_parse(&res->via.array.ptr[i]);
    if (it != NULL)
      insert_item(g, it);
  }
  return CLI_OK;
}

/* Loads a group when it is first shown: members, settings, the newest
 * page, and the unread marker above the first unread item. */
void chat_open(chat *c, chat_group *g) {
  if (g->loaded)
    return;
  g->loaded = 1;
  chat_reload_members(c, g);
  if (chat_load_page(c, g) != CLI_OK)
    return;
  guint real = 0, seen = 0;
  for (guint i = 0; i < g->items->len; i++)
    real += !is_local(g->items->pdata[i]);
  if (g->unread == 0 || g->unread > real || g->marker != NULL)
    return;
  for (guint i = g->items->len; i-- > 0;) {
    cli_item *it = g->items->pdata[i];
    if (!is_local(it) && ++seen == g->unread) {
      g->marker = g_strdup(it->event_id);
      break;
    }
  }
}

/* Keeps the member list (presence) fresh. */
void chat_refresh(chat *c) {
  chat_group *g = chat_current(c);
  int64_t now = g_get_monotonic_time() / 1000;
  if (g->loaded && now - g->members_ms >= CHAT_PRESENCE_MS)
    chat_reload_members(c, g);
}

/* Error lines of a mark_read go nowhere: a node without it just does not
 * keep unread counts. */
static void swallow(const char *msg, void *ud) {
  *(int *)ud = strstr(msg, "unknown method") != NULL;
}

void chat_mark_read(chat *c) {
  chat_group *g = chat_current(c);
  const char *last = NULL;
  for (guint i = g->items->len; i-- > 0 && last == NULL;)
    if (!is_local(g->items->pdata[i]))
      last = ((cli_item *)g->items->pdata[i])->event_id;
  g->unread = 0;
  if (!c->mark_read_ok || c->scroll > 0 || last == NULL ||
      g_strcmp0(last, g->read_upto) == 0)
    return;
  g_free(g->read_upto);
  g->read_upto = g_strdup(last);
  int unknown = 0;
  const msgpack_object *res = NULL;
  cli_set_error_sink(swallow, &unknown);
  (void)chat_call(c, "mark_read", &res, 2, g->id, last);
  cli_set_error_sink(c->sink, c);
  if (unknown)
    c->mark_read_ok = 0;
}
