/* kith chat: parsing what is typed. */
#include "chat_cmd.h"

#include <glib.h>
#include <string.h>

#include "../core/group.h"
#include "cli.h"
#include "item.h"

const char CHAT_HELP_TEXT[] =
    "Type a message and press Enter; Ctrl-J (or Alt-Enter) starts a new "
    "line.\n"
    "/me TEXT · /reply [REF] TEXT · /react [REF] EMOJI · /edit [REF] TEXT · "
    "/delete [REF]\n"
    "/topic [TEXT] · /kick MEMBER · /ban MEMBER · /unban MEMBER · /mute "
    "MEMBER [30m] · /unmute MEMBER\n"
    "/invite [USES] · /members · /group NAME · /help · /quit\n"
    "REF: ^1 the newest message, ^2 the one before, or #ID (event id "
    "prefix); default: the newest not yours\n"
    "Keys: PgUp/PgDn scroll, Ctrl-N/Ctrl-P next/previous group, Up/Down "
    "input history, Ctrl-C quits";

typedef struct spec {
  const char *name;
  chat_op op;
  int ref;   /* takes an optional REF */
  int needs; /* 0: nothing, 1: one word, 2: text, 3: word then text */
  const char *form;
} spec;

static const spec SPECS[] = {
    {"me", CHAT_ME, 0, 2, "/me TEXT"},
    {"reply", CHAT_REPLY, 1, 2, "/reply [REF] TEXT"},
    {"react", CHAT_REACT, 1, 1, "/react [REF] EMOJI"},
    {"edit", CHAT_EDIT, 1, 2, "/edit [REF] TEXT"},
    {"delete", CHAT_DELETE, 1, 0, "/delete [REF]"},
    {"topic", CHAT_TOPIC, 0, 4, "/topic [TEXT]"},
    {"kick", CHAT_KICK, 0, 1, "/kick MEMBER"},
    {"ban", CHAT_BAN, 0, 1, "/ban MEMBER"},
    {"unban", CHAT_UNBAN, 0, 1, "/unban MEMBER"},
    {"mute", CHAT_MUTE, 0, 3, "/mute MEMBER [DURATION]"},
    {"unmute", CHAT_UNMUTE, 0, 1, "/unmute MEMBER"},
    {"invite", CHAT_INVITE, 0, 5, "/invite [USES]"},
    {"members", CHAT_MEMBERS, 0, 0, "/members"},
    {"group", CHAT_GROUP, 0, 2, "/group NAME"},
    {"help", CHAT_HELP, 0, 0, "/help"},
    {"quit", CHAT_QUIT, 0, 0, "/quit"},
};

void chat_cmd_clear(chat_cmd *cmd) {
  g_free(cmd->ref_id);
  g_free(cmd->arg);
  g_free(cmd->text);
  memset(cmd, 0, sizeof *cmd);
}

/* Splits off the first word of *rest (skipping blanks); NULL if none. */
static char *next_word(const char **rest) {
  const char *p = *rest;
  while (*p == ' ')
    p++;
  const char *e = p;
  while (*e != '\0' && *e != ' ')
    e++;
  *rest = e;
  return e > p ? g_strndup(p, (gsize)(e - p)) : NULL;
}

static const char *skip_blanks(const char *p) {
  while (*p == ' ')
    p++;
  return p;
}

/* A REF at the start of *rest, if any: ^N or #ID. */
static int take_ref(const char **rest, chat_cmd *cmd, char **error) {
  const char *p = skip_blanks(*rest);
  if (*p != '^' && *p != '#')
    return 1;
  const char *q = p;
  char *w = next_word(&q);
  int ok = 1;
  if (w[0] == '^') {
    char *end = NULL;
    guint64 n = g_ascii_strtoull(w + 1, &end, 10);
    ok = g_ascii_isdigit(w[1]) && *end == '\0' && n >= 1 && n <= 100000;
    cmd->ref_back = (uint32_t)n;
  } else {
    ok = w[1] != '\0';
    cmd->ref_id = g_strdup(w + 1);
  }
  if (!ok)
    *error = g_strdup_printf("'%s' is no message reference: ^N (^1 the "
                             "newest) or #ID",
                             w);
  g_free(w);
  *rest = q;
  return ok;
}

/* The arguments of a command after its name, by s->needs. */
static int take_args(const spec *s, const char *rest, chat_cmd *cmd) {
  const char *text = skip_blanks(rest);
  switch (s->needs) {
  case 0:
    return *text == '\0';
  case 1:
    cmd->arg = next_word(&rest);
    return cmd->arg != NULL && *skip_blanks(rest) == '\0';
  case 2:
    cmd->text = g_strdup(text);
    return *text != '\0';
  case 3:
    cmd->arg = next_word(&rest);
    cmd->text = g_strdup(skip_blanks(rest));
    return cmd->arg != NULL;
  case 4:
    cmd->text = g_strdup(text);
    return 1;
  default:
    cmd->arg = next_word(&rest);
    return *skip_blanks(rest) == '\0';
  }
}

/* Checks the values of /mute and /invite. */
static int check_values(chat_cmd *cmd, char **error) {
  if (cmd->op == CHAT_MUTE && cmd->text[0] != '\0' &&
      !cli_parse_duration(cmd->text, CHAT_MAX_MUTE_S, &cmd->secs)) {
    *error = g_strdup_printf("'%s' is no duration: 30s, 10m, 24h or 7d "
                             "(at most 365d)",
                             cmd->text);
    return 0;
  }
  if (cmd->op == CHAT_INVITE) {
    char *end = NULL;
    guint64 n = cmd->arg ? g_ascii_strtoull(cmd->arg, &end, 10) : 1;
    if (cmd->arg && (*end != '\0' || !g_ascii_isdigit(cmd->arg[0]) || n < 1 ||
                     n > KITH_INVITE_MAX_USES)) {
      *error = g_strdup_printf("an invite is for 1 to %d uses",
                               KITH_INVITE_MAX_USES);
      return 0;
    }
    cmd->uses = (uint32_t)n;
  }
  if (cmd->op == CHAT_REACT && strlen(cmd->arg) > CLI_EMOJI_MAX) {
    *error = g_strdup_printf("a reaction is 1 to %d bytes", CLI_EMOJI_MAX);
    return 0;
  }
  return 1;
}

static int parse_command(const char *line, chat_cmd *cmd, char **error) {
  const char *rest = line + 1;
  char *name = next_word(&rest);
  const spec *s = NULL;
  for (size_t i = 0; name && i < G_N_ELEMENTS(SPECS); i++)
    if (strcmp(SPECS[i].name, name) == 0)
      s = &SPECS[i];
  if (s == NULL) {
    *error = g_strdup_printf("unknown command /%s; /help lists them",
                             name ? name : "");
    g_free(name);
    return 0;
  }
  g_free(name);
  cmd->op = s->op;
  if (s->ref && !take_ref(&rest, cmd, error))
    return 0;
  if (!take_args(s, rest, cmd)) {
    *error = g_strdup_printf("usage: %s", s->form);
    return 0;
  }
  return check_values(cmd, error);
}

int chat_cmd_parse(const char *line, chat_cmd *cmd, char **error) {
  memset(cmd, 0, sizeof *cmd);
  *error = NULL;
  if (*line == '\0') {
    *error = g_strdup("");
    return 0;
  }
  int ok = 1;
  if (line[0] == '/' && line[1] != '/') {
    ok = parse_command(line, cmd, error);
  } else {
    cmd->op = CHAT_SAY;
    cmd->text = g_strdup(line[0] == '/' ? line + 1 : line);
  }
  if (!ok)
    chat_cmd_clear(cmd);
  return ok;
}
