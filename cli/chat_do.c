/* kith chat: running what is typed (chat_cmd.h) against the node. */
#include <string.h>

#include "chat_cmd.h"
#include "chat_int.h"

static int is_message(const cli_item *it) {
  return it->event_id[0] != CHAT_LOCAL_PREFIX && it->type == CLI_ITEM_MESSAGE;
}

/* The newest message that is (mine = 1) or is not (mine = 0) this node's. */
static const cli_item *newest(chat *c, chat_group *g, int mine) {
  for (guint i = g->items->len; i-- > 0;) {
    const cli_item *it = g->items->pdata[i];
    if (is_message(it) && !it->deleted &&
        (strcmp(it->sender_id, c->me) == 0) == mine)
      return it;
  }
  return NULL;
}

static const cli_item *nth_back(chat_group *g, uint32_t n) {
  for (guint i = g->items->len; i-- > 0;)
    if (is_message(g->items->pdata[i]) && --n == 0)
      return g->items->pdata[i];
  return NULL;
}

/* The one loaded item whose id starts with prefix, or NULL. */
static const cli_item *by_prefix(chat_group *g, const char *prefix) {
  const cli_item *found = NULL;
  for (guint i = 0; i < g->items->len; i++) {
    const cli_item *it = g->items->pdata[i];
    if (is_message(it) && g_str_has_prefix(it->event_id, prefix)) {
      if (found != NULL)
        return NULL;
      found = it;
    }
  }
  return found;
}

/* The event a command is about: its REF, or the default. Sets *item when
 * the event is loaded. Returns the id (or prefix) to send, g_malloc'ed, or
 * NULL (said). */
static char *target(chat *c, const chat_cmd *cmd, int mine,
                    const cli_item **item) {
  chat_group *g = chat_current(c);
  *item = cmd->ref_id     ? by_prefix(g, cmd->ref_id)
          : cmd->ref_back ? nth_back(g, cmd->ref_back)
                          : newest(c, g, mine);
  if (*item != NULL)
    return g_strdup((*item)->event_id);
  if (cmd->ref_id != NULL) /* not loaded: the node knows */
    return g_strdup(cmd->ref_id);
  chat_say(c, cmd->ref_back ? "there are not that many messages"
              : mine        ? "you have no message here yet"
                            : "there is no message to answer yet");
  return NULL;
}

/* send [GROUP, text, reply_to?] */
static void do_send(chat *c, const char *text, const char *reply_to) {
  size_t len = strlen(text);
  if (len >= 65536) {
    chat_say(c, "a message is 1 to 65535 bytes");
    return;
  }
  const msgpack_object *res = NULL;
  if (reply_to)
    chat_call(c, "send", &res, 3, chat_current(c)->id, text, reply_to);
  else
    chat_call(c, "send", &res, 2, chat_current(c)->id, text);
}

static void do_react(chat *c, const chat_cmd *cmd) {
  const cli_item *it = NULL;
  char *id = target(c, cmd, 0, &it);
  if (id == NULL)
    return;
  int remove = 0;
  for (guint i = 0; it && i < it->reactions->len; i++) {
    const cli_reaction *r = &g_array_index(it->reactions, cli_reaction, i);
    remove |= r->mine && strcmp(r->emoji, cmd->arg) == 0;
  }
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 4);
  kith_pack_cstr(&p, chat_current(c)->id);
  kith_pack_cstr(&p, id);
  kith_pack_cstr(&p, cmd->arg);
  kith_pack_bool(&p, remove);
  const msgpack_object *res = NULL;
  (void)cli_rpc_call(c->r, "react", &p, CLI_CALL_TIMEOUT_MS, chat_on_notify, c,
                     &res);
  g_free(id);
}

static void do_on_event(chat *c, const chat_cmd *cmd) {
  const cli_item *it = NULL;
  int mine = cmd->op != CHAT_REPLY;
  char *id = target(c, cmd, mine, &it);
  const msgpack_object *res = NULL;
  const char *g = chat_current(c)->id;
  if (id == NULL)
    return;
  if (cmd->op == CHAT_REPLY)
    do_send(c, cmd->text, id);
  else if (cmd->op == CHAT_EDIT)
    chat_call(c, "edit", &res, 3, g, id, cmd->text);
  else
    chat_call(c, "delete", &res, 2, g, id);
  g_free(id);
}

static void do_mute(chat *c, const chat_cmd *cmd) {
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 3);
  kith_pack_cstr(&p, chat_current(c)->id);
  kith_pack_cstr(&p, cmd->arg);
  kith_pack_uint(&p, cmd->secs);
  const msgpack_object *res = NULL;
  (void)cli_rpc_call(c->r, "mute", &p, CLI_CALL_TIMEOUT_MS, chat_on_notify, c,
                     &res);
}

static void do_invite(chat *c, const chat_cmd *cmd) {
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 2);
  kith_pack_cstr(&p, chat_current(c)->id);
  kith_pack_uint(&p, cmd->uses);
  const msgpack_object *res = NULL;
  if (cli_rpc_call(c->r, "invite", &p, CLI_CALL_TIMEOUT_MS, chat_on_notify, c,
                   &res) != CLI_OK)
    return;
  char *code = cli_out_text(
      cli_map_get(res, "code") ? cli_map_get(res, "code") : res, NULL, 0);
  char *line = g_strdup_printf("invite code (%u use%s, valid 24h): %s",
                               cmd->uses, cmd->uses == 1 ? "" : "s", code);
  chat_say(c, line);
  g_free(line);
  g_free(code);
}

/* /members: beside the messages when there is room, else as lines. */
static void do_members(chat *c) {
  chat_group *g = chat_current(c);
  c->show_members = !c->show_members;
  if (chat_has_side())
    return;
  c->show_members = 0;
  for (guint i = 0; i < g->members->len; i++) {
    chat_member *m = g->members->pdata[i];
    char *label = cli_names_label(g->names, m->id, m->name);
    char *age = chat_age(g_get_real_time() / 1000, m->last_seen_ms);
    char *line = g_strdup_printf(
        "%s %s (%s%s%s)", label, m->role, m->online ? "online" : "offline",
        !m->online && age ? ", last seen " : "", !m->online && age ? age : "");
    g_free(age);
    chat_say(c, line);
    g_free(line);
    g_free(label);
  }
}

static void do_group(chat *c, const char *name) {
  int found = -1, count = 0;
  for (guint i = 0; i < c->groups->len; i++) {
    chat_group *g = c->groups->pdata[i];
    if (strcmp(g->name, name) == 0 || g_str_has_prefix(g->id, name)) {
      found = (int)i;
      count++;
    }
  }
  if (count == 1) {
    c->cur = (guint)found;
    c->scroll = 0;
    chat_open(c, chat_current(c));
  } else {
    chat_say(c, count ? "that matches several groups; give more of the id"
                      : "no such group here; kith group list shows yours");
  }
}

static void do_help(chat *c) {
  char **lines = g_strsplit(CHAT_HELP_TEXT, "\n", -1);
  for (int i = 0; lines[i] != NULL; i++)
    chat_say(c, lines[i]);
  g_strfreev(lines);
}

/* Commands that are one call with GROUP and one string. */
static const char *member_method(chat_op op) {
  switch (op) {
  case CHAT_TOPIC:
    return "topic";
  case CHAT_KICK:
    return "kick";
  case CHAT_BAN:
    return "ban";
  case CHAT_UNBAN:
    return "unban";
  case CHAT_UNMUTE:
    return "unmute";
  default:
    return NULL;
  }
}

static void run(chat *c, const chat_cmd *cmd) {
  const msgpack_object *res = NULL;
  const char *method = member_method(cmd->op);
  if (method != NULL) {
    if (chat_call(c, method, &res, 2, chat_current(c)->id,
                  cmd->op == CHAT_TOPIC ? cmd->text : cmd->arg) == CLI_OK)
      chat_current(c)->members_ms = 0; /* ask again: roles, topic */
    return;
  }
  switch (cmd->op) {
  case CHAT_SAY:
    do_send(c, cmd->text, NULL);
    break;
  case CHAT_ME: {
    char *t = g_strdup_printf("/me %s", cmd->text);
    do_send(c, t, NULL);
    g_free(t);
    break;
  }
  case CHAT_REACT:
    do_react(c, cmd);
    break;
  case CHAT_REPLY:
  case CHAT_EDIT:
  case CHAT_DELETE:
    do_on_event(c, cmd);
    break;
  case CHAT_MUTE:
    do_mute(c, cmd);
    break;
  case CHAT_INVITE:
    do_invite(c, cmd);
    break;
  case CHAT_MEMBERS:
    do_members(c);
    break;
  case CHAT_GROUP:
    do_group(c, cmd->text);
    break;
  case CHAT_HELP:
    do_help(c);
    break;
  default:
    c->quit = 1;
  }
}

void chat_exec(chat *c, const char *line) {
  chat_cmd cmd;
  char *error = NULL;
  if (!chat_cmd_parse(line, &cmd, &error)) {
    if (error && *error)
      chat_say(c, error);
    g_free(error);
    return;
  }
  c->scroll = 0;
  run(c, &cmd);
  chat_cmd_clear(&cmd);
}
