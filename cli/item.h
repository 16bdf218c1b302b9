/* kith CLI: log items (messages and notices) as the node sends them, and
 * how people are named on screen.
 *
 * An item is what `log` returns and `message`/`update` notifications carry
 * (docs/protocol.md 12.3): {type, event_id, time_ms, sender_id,
 * sender_name, text, reply_to, reactions, edited, deleted} (+ group_id in
 * notifications). Keys a node does not send take their defaults (type
 * message, no reply, no reactions).
 *
 * Names are not identities: any member may call itself "creator". A
 * cli_names book knows every person in view (members and senders) and
 * labels a name with a short id suffix ("creator#k3x9ab12") whenever
 * another person in view has a name that looks the same (equal after
 * Unicode compatibility folding and case folding), or when the name holds
 * a character that the labels themselves use ('#', '[', ']', or a leading
 * '~', '@', '*', '-', or space), so no name can pose as another's label.
 * The suffix is CLI_NAME_SUFFIX id characters, more when that is not
 * enough to tell two of them apart. */
#ifndef KITH_CLI_ITEM_H
#define KITH_CLI_ITEM_H

#include <glib.h>
#include <msgpack.h>
#include <stdint.h>

#define CLI_NAME_SUFFIX 8    /* id characters in a name's suffix */
#define CLI_SNIPPET_CHARS 40 /* characters of a replied-to text shown */
#define CLI_EMOJI_MAX 32     /* bytes of a reaction (the node's limit) */

typedef enum { CLI_ITEM_MESSAGE, CLI_ITEM_NOTICE } cli_item_type;

typedef struct cli_reaction {
  char *emoji;
  uint64_t count;
  int mine;
} cli_reaction;

typedef struct cli_item {
  cli_item_type type;
  char *event_id;
  int64_t time_ms;
  char *sender_id;
  char *sender_name;
  char *text;        /* valid UTF-8, not yet cleaned for the terminal */
  char *reply_to;    /* event id, or NULL */
  GArray *reactions; /* cli_reaction */
  int edited, deleted;
  char *group_id; /* notifications only, else NULL */
} cli_item;

/* Parses one item (a map). NULL if it is not a map or has no event_id
 * string. The result owns copies of everything. */
cli_item *cli_item_parse(const msgpack_object *m);
void cli_item_free(cli_item *it);
/* Moves src's fields into dst (an `update` of the same event); frees
 * src. */
void cli_item_replace(cli_item *dst, cli_item *src);
/* 1 if the item is a /me action: a message whose text starts "/me ". */
int cli_item_is_action(const cli_item *it);

/* Text for a terminal: control characters (C0, DEL, C1), line and
 * paragraph separators and bidi overrides become U+FFFD; with multiline,
 * newlines and tabs stay, else they become spaces. g_malloc'ed. */
char *cli_clean(const char *s, size_t len, int multiline);

typedef struct cli_names cli_names;

cli_names *cli_names_new(void);
void cli_names_free(cli_names *nb);
/* Records a person. role: "owner", "admin", "member", or NULL to keep what
 * is known (senders who left have none). An empty name is ignored. */
void cli_names_add(cli_names *nb, const char *id, const char *name,
                   const char *role);
/* Records every row of a group.members result (an array of maps). */
void cli_names_add_members(cli_names *nb, const msgpack_object *rows);
/* Forgets the roles (before a fresh member list). */
void cli_names_clear_roles(cli_names *nb);
/* The label of a person: the cleaned name, with "#" and an id suffix when
 * needed (see above); a person with no name is "#" and the suffix.
 * g_malloc'ed. */
char *cli_names_label(cli_names *nb, const char *id, const char *name);
/* "owner", "admin" or NULL. */
const char *cli_names_role(cli_names *nb, const char *id);

/* The line for a `removed` notification ({group_id, by, by_name}): "you
 * were removed from GROUP by LABEL", the group's name cleaned.
 * g_malloc'ed. */
char *cli_removed_text(cli_names *nb, const msgpack_object *m,
                       const char *group);

/* Finds an item by event id (for replies); may return NULL. */
typedef const cli_item *(*cli_item_find_fn)(const char *event_id, void *ud);

/* The replied-to part: "alice: \"first words of the te…\"" or "event
 * k3x9ab12" when the item is not at hand. g_malloc'ed. */
char *cli_item_reply_text(const cli_item *it, cli_names *nb,
                          cli_item_find_fn find, void *ud);
/* "👍 2 (you), ❤ 1", or NULL without reactions. g_malloc'ed. */
char *cli_item_reactions_text(const cli_item *it);

/* Appends the human form of an item to out, for `kith log`: the first line
 * starts with the local date and time; a message then has the sender's
 * label, its role ("[owner]", "[admin]"), an optional "(reply to ...)",
 * a colon and the text; a notice has "--" and the node's sentence; a /me
 * action "*", the label and the rest. Further lines of a text start with
 * "  | ", a reactions line with "  + ", so no text can pass for a line of
 * its own. Every line ends in "\n". */
void cli_item_format(const cli_item *it, cli_names *nb, cli_item_find_fn find,
                     void *ud, GString *out);

#endif
