/* kith chat [GROUP]: a full-screen chat in the terminal (ncursesw). It
 * talks to the node only through the control socket, subscribed to every
 * group this node is in; see chat_int.h for the parts. */
#include <curses.h>
#include <errno.h>
#include <langinfo.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "chat_int.h"

#define CHAT_TICK_MS 1000 /* the loop wakes at least this often */
#define KEY_CTRL(c) ((c)&0x1f)
#define KEY_ESCAPE 27

static void on_error_line(const char *msg, void *ud) {
  chat_say(ud, msg);
}

/* ---- setting up ---- */

static int subscribe(chat *c, chat_group *g) {
  const msgpack_object *res = NULL;
  return chat_call(c, "subscribe", &res, 1, g->id);
}

/* This node's id, and every group it is in (with their unread counts). */
static int load_groups(chat *c) {
  const msgpack_object *res = NULL;
  int rc = chat_call(c, "id", &res, 0);
  if (rc != CLI_OK)
    return rc;
  const msgpack_object *id = cli_map_get(res, "node_id");
  if (id == NULL || id->type != MSGPACK_OBJECT_STR)
    return cli_error("the node sent a malformed result");
  c->me = g_strndup(id->via.str.ptr, id->via.str.size);
  rc = chat_call(c, "group.list", &res, 0);
  if (rc != CLI_OK || res->type != MSGPACK_OBJECT_ARRAY)
    return rc != CLI_OK ? rc : cli_error("the node sent a malformed result");
  for (uint32_t i = 0; i < res->via.array.size; i++) {
    const msgpack_object *r = &res->via.array.ptr[i];
    const msgpack_object *gid = cli_map_get(r, "group_id");
    const msgpack_object *name = cli_map_get(r, "name");
    const msgpack_object *unread = cli_map_get(r, "unread");
    if (!gid || gid->type != MSGPACK_OBJECT_STR || !name ||
        name->type != MSGPACK_OBJECT_STR)
      continue;
    char *a = g_strndup(gid->via.str.ptr, gid->via.str.size);
    char *b = g_utf8_make_valid(name->via.str.ptr, (gssize)name->via.str.size);
    chat_group *g = chat_group_new(a, b);
    if (unread && unread->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
      g->unread = unread->via.u64;
    g_ptr_array_add(c->groups, g);
    g_free(a);
    g_free(b);
  }
  return CLI_OK;
}

static gint by_name(gconstpointer a, gconstpointer b) {
  const chat_group *x = *(chat_group *const *)a;
  const chat_group *y = *(chat_group *const *)b;
  return g_utf8_collate(x->name, y->name);
}

/* The group asked for: the node resolves GROUP (name, id or prefix). A
 * group this node left is shown too (read only). */
static int pick_group(chat *c, const char *arg) {
  const msgpack_object *res = NULL;
  if (arg == NULL) {
    if (c->groups->len == 0)
      return cli_error("you are in no group yet; make one with kith group "
                       "create NAME, or join one with kith join CODE");
    return CLI_OK;
  }
  int rc = chat_call(c, "group.info", &res, 1, arg);
  if (rc != CLI_OK)
    return rc;
  const msgpack_object *gid = cli_map_get(res, "group_id");
  const msgpack_object *name = cli_map_get(res, "name");
  if (!gid || gid->type != MSGPACK_OBJECT_STR || !name ||
      name->type != MSGPACK_OBJECT_STR)
    return cli_error("the node sent a malformed result");
  char *id = g_strndup(gid->via.str.ptr, gid->via.str.size);
  for (c->cur = 0; c->cur < c->groups->len; c->cur++)
    if (strcmp(chat_current(c)->id, id) == 0)
      break;
  if (c->cur == c->groups->len) {
    char *n = g_utf8_make_valid(name->via.str.ptr, (gssize)name->via.str.size);
    g_ptr_array_add(c->groups, chat_group_new(id, n));
    g_free(n);
  }
  g_free(id);
  return CLI_OK;
}

static int start(chat *c, const char *arg) {
  int rc = load_groups(c);
  if (rc == CLI_OK) {
    g_ptr_array_sort(c->groups, by_name);
    rc = pick_group(c, arg);
  }
  for (guint i = 0; rc == CLI_OK && i < c->groups->len; i++)
    rc = subscribe(c, c->groups->pdata[i]);
  return rc;
}

/* ---- keys ---- */

static void switch_to(chat *c, guint i) {
  if (i >= c->groups->len || i == c->cur)
    return;
  g_clear_pointer(&chat_current(c)->marker, g_free); /* it was read */
  c->cur = i;
  c->scroll = 0;
  chat_open(c, chat_current(c));
}

static void scroll_by(chat *c, int lines) {
  c->scroll = MAX(0, c->scroll + lines);
  chat_group *g = chat_current(c);
  if (lines > 0 && c->top_reached && !g->at_start)
    (void)chat_load_page(c, g);
}

static void submit(chat *c) {
  char *line = chat_input_take(&c->in);
  chat_exec(c, line);
  g_free(line);
}

static int edit_key(int key, chat_edit *op) {
  static const struct {
    int key;
    chat_edit op;
  } MAP[] = {{KEY_LEFT, CHAT_ED_LEFT},
             {KEY_RIGHT, CHAT_ED_RIGHT},
             {KEY_HOME, CHAT_ED_HOME},
             {KEY_CTRL('a'), CHAT_ED_HOME},
             {KEY_END, CHAT_ED_END},
             {KEY_CTRL('e'), CHAT_ED_END},
             {KEY_BACKSPACE, CHAT_ED_BACKSPACE},
             {127, CHAT_ED_BACKSPACE},
             {KEY_CTRL('h'), CHAT_ED_BACKSPACE},
             {KEY_DC, CHAT_ED_DELETE},
             {KEY_CTRL('d'), CHAT_ED_DELETE},
             {KEY_CTRL('u'), CHAT_ED_KILL_START},
             {KEY_CTRL('k'), CHAT_ED_KILL_END},
             {KEY_CTRL('w'), CHAT_ED_KILL_WORD},
             {KEY_UP, CHAT_ED_HISTORY_UP},
             {KEY_DOWN, CHAT_ED_HISTORY_DOWN}};
  for (size_t i = 0; i < G_N_ELEMENTS(MAP); i++)
    if (MAP[i].key == key) {
      *op = MAP[i].op;
      return 1;
    }
  return 0;
}

/* Alt-key (ESC then the key): Alt-Enter a new line, Alt-1..9 a group,
 * Alt-b/f a word left/right. */
static void alt_key(chat *c, int key) {
  if (key == '\r' || key == '\n' || key == KEY_ENTER)
    chat_input_insert(&c->in, '\n');
  else if (key >= '1' && key <= '9')
    switch_to(c, (guint)(key - '1'));
  else if (key == 'b')
    chat_input_edit(&c->in, CHAT_ED_WORD_LEFT);
  else if (key == 'f')
    chat_input_edit(&c->in, CHAT_ED_WORD_RIGHT);
}

static void on_key(chat *c, int key, int is_code, int *alt) {
  chat_edit op;
  if (*alt) {
    *alt = 0;
    alt_key(c, key);
  } else if (!is_code && key == KEY_ESCAPE) {
    *alt = 1;
  } else if (key == '\r' || key == KEY_ENTER) {
    submit(c);
  } else if (!is_code && key == '\n') { /* Ctrl-J */
    chat_input_insert(&c->in, '\n');
  } else if (key == KEY_CTRL('c')) {
    c->quit = 1;
  } else if (key == KEY_CTRL('n') || key == KEY_CTRL('p')) {
    guint n = c->groups->len;
    switch_to(c, (c->cur + (key == KEY_CTRL('n') ? 1 : n - 1)) % n);
  } else if (key == KEY_PPAGE || key == KEY_NPAGE) {
    int page = MAX(1, c->page_lines - 2);
    scroll_by(c, key == KEY_PPAGE ? page : -page);
  } else if (key == KEY_CTRL('l') || key == KEY_RESIZE) {
    clearok(curscr, TRUE);
  } else if ((is_code || key < 0x20) && edit_key(key, &op)) {
    chat_input_edit(&c->in, op);
  } else if (!is_code && key >= 0x20 && key != 127) {
    chat_input_insert(&c->in, (gunichar)key);
  }
}

/* Reads every key that is waiting. */
static void read_keys(chat *c, int *alt) {
  wint_t ch;
  int kind;
  while (!c->quit && (kind = get_wch(&ch)) != ERR) {
    int code = kind == KEY_CODE_YES;
    /* keypad codes and control keys both fit in an int */
    on_key(c, (int)ch, code, alt);
  }
}

/* ---- the loop ---- */

static void screen_up(chat *c) {
  initscr();
  raw();
  noecho();
  nonl();
  keypad(stdscr, TRUE);
  nodelay(stdscr, TRUE);
  set_escdelay(25);
  if (has_colors()) {
    start_color();
    use_default_colors();
    for (short i = 1; i <= 6; i++)
      init_pair(i, i, -1);
  }
  c->utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
  c->sink = on_error_line;
  cli_set_error_sink(on_error_line, c);
}

static void screen_down(void) {
  cli_set_error_sink(NULL, NULL);
  endwin();
}

static int loop(chat *c) {
  int alt = 0, rc = CLI_OK;
  chat_open(c, chat_current(c));
  while (!c->quit) {
    if (c->scroll == 0)
      chat_mark_read(c);
    chat_draw(c);
    struct pollfd fds[2] = {{.fd = 0, .events = POLLIN},
                            {.fd = cli_rpc_fd(c->r), .events = POLLIN}};
    if (poll(fds, 2, CHAT_TICK_MS) < 0 && errno != EINTR)
      break;
    read_keys(c, &alt); /* also after EINTR: a resize is a key */
    if (fds[1].revents != 0 &&
        (rc = cli_rpc_pump(c->r, chat_on_notify, c)) != CLI_OK)
      break;
    chat_refresh(c);
  }
  return rc;
}

int cli_cmd_chat(cli_opts *o, int argc, char **argv) {
  int rc = cli_parse(o, "chat", "[GROUP]", 1,
                     "Chat in GROUP (or your first group) full screen: "
                     "history, new messages live, members and who is "
                     "online, all your groups (Ctrl-N/Ctrl-P). /help in the "
                     "chat lists the commands.",
                     NULL, &argc, &argv);
  if (rc == CLI_OK && (!isatty(0) || !isatty(1)))
    rc = cli_error("kith chat needs a terminal; use kith log --follow and "
                   "kith send in scripts");
  chat c = {.o = o, .mark_read_ok = 1, .show_members = 1};
  if (rc == CLI_OK)
    rc = cli_rpc_open(o, &c.r);
  if (rc != CLI_OK)
    return rc;
  c.groups = g_ptr_array_new_with_free_func(chat_group_free);
  chat_input_init(&c.in);
  rc = start(&c, argc > 1 ? argv[1] : NULL);
  if (rc == CLI_OK) {
    screen_up(&c);
    rc = loop(&c);
    screen_down();
    if (rc != CLI_OK) /* said inside the screen: say it again outside */
      rc = cli_error("the connection to the node was lost");
  }
  chat_input_clear(&c.in);
  g_ptr_array_unref(c.groups);
  g_free(c.me);
  cli_rpc_free(c.r);
  return rc;
}
