/* kith chat: the input line, an editor without I/O (the chat maps keys to
 * these operations), so it can be tested alone.
 *
 * The text is a sequence of Unicode characters, newlines included
 * (multi-line input), at most CHAT_INPUT_MAX characters; the cursor is an
 * index into it. History keeps the last CHAT_HISTORY_MAX submitted
 * lines. */
#ifndef KITH_CLI_CHAT_INPUT_H
#define KITH_CLI_CHAT_INPUT_H

#include <glib.h>

#define CHAT_INPUT_MAX                                                         \
  65535 /* characters (a message is at most that many bytes) */
#define CHAT_HISTORY_MAX 200

typedef enum {
  CHAT_ED_LEFT,
  CHAT_ED_RIGHT,
  CHAT_ED_HOME,
  CHAT_ED_END,
  CHAT_ED_BACKSPACE,
  CHAT_ED_DELETE,
  CHAT_ED_KILL_START, /* Ctrl-U: delete to the start */
  CHAT_ED_KILL_END,   /* Ctrl-K: delete to the end */
  CHAT_ED_KILL_WORD,  /* Ctrl-W: delete the word before the cursor */
  CHAT_ED_WORD_LEFT,
  CHAT_ED_WORD_RIGHT,
  CHAT_ED_HISTORY_UP,
  CHAT_ED_HISTORY_DOWN,
} chat_edit;

typedef struct chat_input {
  GArray *text; /* gunichar */
  guint cursor;
  GPtrArray *history; /* char *, oldest first */
  guint hist_pos;     /* == history->len: editing a new line */
  char *stash;        /* the new line while browsing history */
} chat_input;

void chat_input_init(chat_input *in);
void chat_input_clear(chat_input *in);
/* Inserts c at the cursor (ignored when full). */
void chat_input_insert(chat_input *in, gunichar c);
/* Inserts UTF-8 text (a paste). */
void chat_input_insert_utf8(chat_input *in, const char *s);
void chat_input_edit(chat_input *in, chat_edit op);
/* The text as UTF-8 (g_malloc'ed). */
char *chat_input_text(const chat_input *in);
/* Takes the text (g_malloc'ed), empties the line and remembers a non-empty
 * text in the history. */
char *chat_input_take(chat_input *in);

#endif
