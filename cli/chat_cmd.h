/* kith chat: what a line typed in the chat asks for (no I/O).
 *
 *   TEXT                 a message ("//TEXT" sends "/TEXT")
 *   /me TEXT             an action, shown "* alice TEXT" (sent as "/me TEXT")
 *   /reply [REF] TEXT    a reply to REF (default: the newest message that
 *                        is not yours)
 *   /react [REF] EMOJI   adds your reaction to REF, or takes it back if
 *                        you gave that one already
 *   /edit [REF] TEXT     (default: your newest message)
 *   /delete [REF]        (default: your newest message)
 *   /topic [TEXT]        sets (or, without TEXT, clears) the topic
 *   /kick, /ban, /unban, /unmute MEMBER
 *   /mute MEMBER [DURATION]
 *   /invite [USES]       prints an invite code
 *   /members             shows or hides the member list
 *   /group NAME          switches to another group
 *   /help, /quit
 *
 * REF is ^N (the N-th message from the bottom, ^1 the newest) or #ID (an
 * event id or a unique prefix of one). */
#ifndef KITH_CLI_CHAT_CMD_H
#define KITH_CLI_CHAT_CMD_H

#include <stdint.h>

typedef enum {
  CHAT_SAY,
  CHAT_ME,
  CHAT_REPLY,
  CHAT_REACT,
  CHAT_EDIT,
  CHAT_DELETE,
  CHAT_TOPIC,
  CHAT_KICK,
  CHAT_BAN,
  CHAT_UNBAN,
  CHAT_MUTE,
  CHAT_UNMUTE,
  CHAT_INVITE,
  CHAT_MEMBERS,
  CHAT_GROUP,
  CHAT_HELP,
  CHAT_QUIT,
} chat_op;

#define CHAT_MAX_MUTE_S (365ull * 24 * 3600)

typedef struct chat_cmd {
  chat_op op;
  uint32_t ref_back; /* ^N: N; 0 when not given that way */
  char *ref_id;      /* #ID: the id or prefix, else NULL */
  char *arg;         /* MEMBER, EMOJI, NAME, or NULL */
  char *text;        /* TEXT (a message, topic), or NULL */
  uint64_t secs;     /* /mute DURATION, 0: until unmuted */
  uint32_t uses;     /* /invite USES, default 1 */
} chat_cmd;

/* Parses one line. Returns 1 with *cmd filled (free with chat_cmd_clear),
 * or 0 with *error set (g_malloc'ed, one line saying what is wrong, with
 * the command's form). An empty line is an error too (""). */
int chat_cmd_parse(const char *line, chat_cmd *cmd, char **error);
void chat_cmd_clear(chat_cmd *cmd);

/* The help text, lines separated by "\n". */
extern const char CHAT_HELP_TEXT[];

#endif
