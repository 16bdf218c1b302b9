/* kith chat: what the chat's files share (the model, drawing, wrapping).
 *
 * chat.c talks to the node and runs the loop; chat_view.c draws the model
 * with ncursesw; chat_input.c and chat_cmd.c edit and parse the input. */
#ifndef KITH_CLI_CHAT_INT_H
#define KITH_CLI_CHAT_INT_H

#include <glib.h>
#include <stdint.h>

#include "chat_input.h"
#include "item.h"
#include "rpc.h"

#define CHAT_PAGE 200            /* items asked for at a time */
#define CHAT_MAX_ITEMS 20000     /* items kept per group (oldest dropped) */
#define CHAT_MEMBERS_WIDTH 26    /* columns of the member list */
#define CHAT_MIN_COLS_MEMBERS 70 /* narrower: no member list beside */
#define CHAT_PRESENCE_MS 10000   /* the member list is asked for again */
#define CHAT_LOCAL_PREFIX '!'    /* event ids of lines made by the chat */

typedef struct chat_member {
  char *id;
  char *name;
  char *role;
  int online;
  int64_t last_seen_ms;
} chat_member;

typedef struct chat_group {
  char *id;
  char *name;
  char *topic;
  char *mode;         /* "announce", "open", or NULL (unknown) */
  GPtrArray *items;   /* cli_item, display order */
  GHashTable *by_id;  /* event id -> cli_item (borrowed from items) */
  GPtrArray *members; /* chat_member */
  cli_names *names;
  uint64_t unread;    /* shown in the group bar */
  char *marker;       /* the first unread item when opened, or NULL */
  char *read_upto;    /* the last id reported read */
  int loaded;         /* history and members asked for */
  int at_start;       /* no older items */
  int64_t members_ms; /* when the member list was asked for */
} chat_group;

typedef struct chat {
  const cli_opts *o;
  cli_rpc *r;
  char *me;          /* this node's id */
  GPtrArray *groups; /* chat_group */
  guint cur;
  chat_input in;
  int scroll; /* screen lines up from the bottom */
  int show_members;
  int quit;
  int mark_read_ok; /* the node knows mark_read */
  int utf8;         /* the terminal shows UTF-8 */
  guint local_seq;
  int page_lines;      /* lines of the message pane (for PgUp) */
  int top_reached;     /* the last draw showed the oldest loaded item */
  cli_error_sink sink; /* error lines into the chat */
} chat;

/* Breaks text (UTF-8, no newlines) into lines of at most `first` columns
 * (the first line) and `rest` columns (the others), at spaces where
 * possible; returns g_malloc'ed lines (a GPtrArray with free func). An
 * empty text is one empty line. Widths below 1 count as 1. */
GPtrArray *chat_wrap(const char *text, int first, int rest);
/* Columns the UTF-8 text takes on a terminal. */
int chat_width(const char *text);
/* How long ago then_ms was, short: "now", "5m", "3h", "2d"; NULL when
 * unknown (0). g_malloc'ed. */
char *chat_age(int64_t now_ms, int64_t then_ms);

/* Draws the whole screen (ncurses must be up). */
void chat_draw(chat *c);
/* 1 if the terminal is wide enough for the member list beside. */
int chat_has_side(void);

/* chat_node.c: the model and the node. */
chat_group *chat_group_new(const char *id, const char *name);
void chat_group_free(gpointer g);
chat_group *chat_current(chat *c);
/* Adds a line of the chat's own to the current group. */
void chat_say(chat *c, const char *text);
/* The notification handler (message, update, removed). */
void chat_on_notify(const char *method, const msgpack_object *params, void *ud);
/* Loads a group on first sight; asks for the page before the oldest item;
 * refreshes presence when due; reports what is read. */
void chat_open(chat *c, chat_group *g);
int chat_load_page(chat *c, chat_group *g);
void chat_refresh(chat *c);
void chat_mark_read(chat *c);
/* One call whose params are the n strings that follow. */
int chat_call(chat *c, const char *method, const msgpack_object **res, int n,
              ...);
void chat_reload_members(chat *c, chat_group *g);

/* chat_do.c: runs a line typed in the input. */
void chat_exec(chat *c, const char *line);

#endif
