/* kith chat: drawing the screen with ncursesw.
 *
 * Layout: a title line (group, mode, topic); the messages, with the member
 * list on the right when the terminal is wide enough; a bar with the
 * groups and their unread counts; the input line. Everything shown from
 * the network went through cli_clean first. */
#include <curses.h>
#include <string.h>
#include <wchar.h>

#include "chat_int.h"

#define TIME_COLS 6 /* "HH:MM " */

typedef struct seg {
  char *text;
  attr_t attr;
} seg;

typedef struct line {
  seg segs[8];
  int n;
} line;

static int char_width(gunichar c) {
  int w = wcwidth((wchar_t)c);
  return w < 0 ? 1 : w;
}

int chat_width(const char *text) {
  int w = 0;
  for (const char *p = text; *p; p = g_utf8_next_char(p))
    w += char_width(g_utf8_get_char(p));
  return w;
}

/* Where a line of at most max columns starting at p ends: after the last
 * space that fits, else as many characters as fit (at least one). */
static const char *line_end(const char *p, int max) {
  const char *brk = NULL, *q = p;
  int w = 0;
  while (*q) {
    int cw = char_width(g_utf8_get_char(q));
    if (w + cw > max && q > p)
      return *q == ' ' ? q : (brk ? brk : q);
    if (*q == ' ')
      brk = q;
    w += cw;
    q = g_utf8_next_char(q);
  }
  return q;
}

GPtrArray *chat_wrap(const char *text, int first, int rest) {
  GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
  const char *p = text;
  do {
    int max = MAX(1, out->len == 0 ? first : rest);
    const char *e = line_end(p, max);
    g_ptr_array_add(out, g_strndup(p, (gsize)(e - p)));
    p = *e == ' ' ? e + 1 : e;
  } while (*p);
  return out;
}

/* Writes text at the cursor, at most max columns; returns columns used.
 * A terminal that is not UTF-8 gets '?' for other characters. */
static int put(chat *c, const char *text, int max, attr_t attr) {
  int used = 0;
  attron(attr);
  for (const char *p = text; *p; p = g_utf8_next_char(p)) {
    gunichar ch = g_utf8_get_char(p);
    int w = c->utf8 ? char_width(ch) : 1;
    if (used + w > max)
      break;
    if (!c->utf8 && ch > 0x7e)
      addch('?');
    else
      addnstr(p, (int)(g_utf8_next_char(p) - p));
    used += w;
  }
  attroff(attr);
  return used;
}

static void fill(int y, int x, int cols, attr_t attr) {
  attron(attr);
  mvhline(y, x, ' ', cols);
  attroff(attr);
}

char *chat_age(int64_t now_ms, int64_t then_ms) {
  static const struct {
    int64_t ms;
    char unit;
  } UNITS[] = {{86400000, 'd'}, {3600000, 'h'}, {60000, 'm'}};
  if (then_ms <= 0)
    return NULL;
  int64_t d = MAX(0, now_ms - then_ms);
  for (size_t i = 0; i < G_N_ELEMENTS(UNITS); i++)
    if (d >= UNITS[i].ms)
      return g_strdup_printf("%" G_GINT64_FORMAT "%c", d / UNITS[i].ms,
                             UNITS[i].unit);
  return g_strdup("now");
}

/* ---- items to lines ---- */

static attr_t name_attr(const char *id) {
  if (!has_colors())
    return A_BOLD;
  return A_BOLD | COLOR_PAIR(1 + g_str_hash(id) % 6);
}

static void add_seg(line *l, char *text, attr_t attr) {
  if (l->n < (int)G_N_ELEMENTS(l->segs))
    l->segs[l->n++] = (seg){text, attr};
  else
    g_free(text);
}

static line *new_line(GPtrArray *lines) {
  line *l = g_new0(line, 1);
  g_ptr_array_add(lines, l);
  return l;
}

static char *time_text(int64_t ms) {
  GDateTime *t = g_date_time_new_from_unix_local(ms / 1000);
  char *s = t ? g_date_time_format(t, "%H:%M") : g_strdup("--:--");
  if (t)
    g_date_time_unref(t);
  return s;
}

/* The body lines of text (cleaned; newlines kept) after a first line that
 * already holds `used` columns. */
static void add_body(GPtrArray *lines, line *first, int used, int width,
                     const char *text, attr_t attr) {
  char *clean = cli_clean(text, strlen(text), 1);
  char **paras = g_strsplit(clean, "\n", -1);
  for (int i = 0; paras[i] != NULL; i++) {
    g_strdelimit(paras[i], "\t", ' ');
    GPtrArray *w = chat_wrap(
        paras[i], i == 0 ? width - used : width - TIME_COLS, width - TIME_COLS);
    for (guint k = 0; k < w->len; k++) {
      line *l = i == 0 && k == 0 ? first : new_line(lines);
      if (l != first)
        add_seg(l, g_strnfill(TIME_COLS, ' '), 0);
      add_seg(l, g_strdup(w->pdata[k]), attr);
    }
    g_ptr_array_unref(w);
  }
  g_strfreev(paras);
  g_free(clean);
}

static const char *sigil(cli_names *nb, const char *id) {
  const char *role = cli_names_role(nb, id);
  return role == NULL ? "" : role[0] == 'o' ? "~" : "@";
}

static const cli_item *find_in(const char *id, void *ud) {
  return id ? g_hash_table_lookup(((chat_group *)ud)->by_id, id) : NULL;
}

static void message_lines(chat_group *g, const cli_item *it, int width,
                          GPtrArray *lines, line *l, int used) {
  char *label = cli_names_label(g->names, it->sender_id, it->sender_name);
  char *who = g_strdup_printf("%s%s%s", cli_item_is_action(it) ? "* " : "",
                              sigil(g->names, it->sender_id), label);
  used += chat_width(who);
  add_seg(l, who, name_attr(it->sender_id));
  g_free(label);
  const char *body = it->text;
  char *edited = NULL;
  if (it->deleted)
    body = "(message deleted)";
  else if (cli_item_is_action(it))
    body = it->text + 4;
  if (it->edited && !it->deleted)
    body = edited = g_strdup_printf("%s (edited)", body);
  const char *sep = cli_item_is_action(it) ? " " : ": ";
  add_seg(l, g_strdup(sep), 0);
  add_body(lines, l, used + (int)strlen(sep), width, body,
           it->deleted ? A_DIM : 0);
  g_free(edited);
}

/* Appends the screen lines of one item. */
static void item_lines(chat_group *g, const cli_item *it, int width,
                       GPtrArray *lines) {
  if (g->marker && strcmp(g->marker, it->event_id) == 0) {
    line *m = new_line(lines);
    add_seg(m, g_strdup("------------ new ------------"), A_BOLD);
  }
  if (it->reply_to != NULL) {
    line *r = new_line(lines);
    char *re = cli_item_reply_text(it, g->names, find_in, g);
    add_seg(r, g_strdup_printf("%*s> %s", TIME_COLS, "", re), A_DIM);
    g_free(re);
  }
  line *l = new_line(lines);
  add_seg(l, time_text(it->time_ms), A_DIM);
  add_seg(l, g_strdup(" "), 0);
  if (it->event_id[0] == CHAT_LOCAL_PREFIX) {
    add_seg(l, g_strdup("-!- "), A_BOLD);
    add_body(lines, l, TIME_COLS + 4, width, it->text, A_BOLD);
  } else if (it->type == CLI_ITEM_NOTICE) {
    add_seg(l, g_strdup("-- "), A_DIM);
    add_body(lines, l, TIME_COLS + 3, width, it->text, A_DIM);
  } else
    message_lines(g, it, width, lines, l, TIME_COLS);
  char *re = cli_item_reactions_text(it);
  if (re != NULL) {
    line *x = new_line(lines);
    add_seg(x, g_strdup_printf("%*s%s", TIME_COLS, "", re), A_DIM);
  }
  g_free(re);
}

static void line_free(gpointer p) {
  line *l = p;
  for (int i = 0; i < l->n; i++)
    g_free(l->segs[i].text);
  g_free(l);
}

/* ---- panes ---- */

static void draw_messages(chat *c, chat_group *g, int top, int rows,
                          int width) {
  int skip = c->scroll, y = top + rows;
  c->top_reached = 1;
  for (guint i = g->items->len; i-- > 0 && y > top;) {
    GPtrArray *lines = g_ptr_array_new_with_free_func(line_free);
    item_lines(g, g->items->pdata[i], width, lines);
    for (guint k = lines->len; k-- > 0 && y > top;) {
      if (skip > 0) {
        skip--;
        continue;
      }
      line *l = lines->pdata[k];
      move(--y, 0);
      int used = 0;
      for (int s = 0; s < l->n; s++)
        used += put(c, l->segs[s].text, width - used, l->segs[s].attr);
    }
    if (y <= top && i > 0)
      c->top_reached = 0;
    g_ptr_array_unref(lines);
  }
  /* Scrolled past the top: the oldest line goes to the top of the pane. */
  int spare = (y - top) + skip;
  if (spare > 0 && c->scroll > 0) {
    c->scroll = MAX(0, c->scroll - spare);
    for (int r = top; r < top + rows; r++) {
      move(r, 0);
      clrtoeol();
    }
    draw_messages(c, g, top, rows, width);
  }
}

static int member_rank(const chat_member *m) {
  int role = m->role[0] == 'o' ? 0 : m->role[0] == 'a' ? 1 : 2;
  return role * 2 + !m->online;
}

static gint member_cmp(gconstpointer a, gconstpointer b) {
  const chat_member *x = *(chat_member *const *)a;
  const chat_member *y = *(chat_member *const *)b;
  int d = member_rank(x) - member_rank(y);
  return d ? d : g_utf8_collate(x->name, y->name);
}

static void draw_members(chat *c, chat_group *g, int top, int rows, int x) {
  int w = CHAT_MEMBERS_WIDTH;
  mvvline(top, x - 1, ACS_VLINE, rows);
  g_ptr_array_sort(g->members, member_cmp);
  int online = 0;
  for (guint i = 0; i < g->members->len; i++)
    online += ((chat_member *)g->members->pdata[i])->online;
  char *head =
      g_strdup_printf("members %u, online %d", g->members->len, online);
  move(top, x);
  put(c, head, w, A_BOLD);
  g_free(head);
  for (guint i = 0; i < g->members->len && (int)i + 1 < rows; i++) {
    chat_member *m = g->members->pdata[i];
    char *label = cli_names_label(g->names, m->id, m->name);
    move(top + 1 + (int)i, x);
    int used = put(c, m->online ? (c->utf8 ? "● " : "+ ") : "  ", w,
                   m->online ? A_BOLD : A_DIM);
    used += put(c, sigil(g->names, m->id), w - used, A_BOLD);
    used += put(c, label, w - used, m->online ? name_attr(m->id) : A_DIM);
    char *age =
        m->online ? NULL : chat_age(g_get_real_time() / 1000, m->last_seen_ms);
    if (age != NULL) {
      char *seen = g_strdup_printf(" %s", age);
      put(c, seen, w - used, A_DIM);
      g_free(seen);
    }
    g_free(age);
    g_free(label);
  }
}

static void draw_title(chat *c, chat_group *g, int cols) {
  fill(0, 0, cols, A_REVERSE);
  char *name = cli_clean(g->name, strlen(g->name), 0);
  char *topic = g->topic ? cli_clean(g->topic, strlen(g->topic), 0) : NULL;
  char *t = g_strdup_printf(
      " kith: %s%s%s%s", name,
      g->mode && strcmp(g->mode, "announce") == 0 ? " [announce]" : "",
      topic && *topic ? " | " : "", topic && *topic ? topic : "");
  move(0, 0);
  put(c, t, cols, A_REVERSE | A_BOLD);
  g_free(t);
  g_free(name);
  g_free(topic);
}

static void draw_bar(chat *c, int y, int cols) {
  fill(y, 0, cols, A_REVERSE);
  move(y, 0);
  int used = 0;
  for (guint i = 0; i < c->groups->len && used < cols; i++) {
    chat_group *g = c->groups->pdata[i];
    char *name = cli_clean(g->name, strlen(g->name), 0);
    char *t = g->unread && i != c->cur
                  ? g_strdup_printf(" %u:%s (%" G_GUINT64_FORMAT ") ", i + 1,
                                    name, g->unread)
                  : g_strdup_printf(" %u:%s ", i + 1, name);
    attr_t a =
        i == c->cur ? A_BOLD : (g->unread ? A_REVERSE | A_BOLD : A_REVERSE);
    used += put(c, t, cols - used, a);
    g_free(t);
    g_free(name);
  }
  if (c->scroll > 0 && used + 12 < cols) {
    move(y, cols - 12);
    put(c, "[scrolled]", 12, A_REVERSE | A_BOLD);
  }
}

/* The input line scrolls sideways to keep the cursor in view; newlines
 * show as a return sign. */
static void draw_input(chat *c, int y, int cols) {
  move(y, 0);
  clrtoeol();
  put(c, "> ", cols, A_BOLD);
  int room = cols - 3, cur_col = 0;
  guint start = 0, len = c->in.text->len;
  gunichar *t = (gunichar *)(void *)c->in.text->data;
  for (guint i = 0; i < c->in.cursor; i++)
    cur_col += t[i] == '\n' ? 1 : char_width(t[i]);
  while (cur_col > room) {
    cur_col -= t[start] == '\n' ? 1 : char_width(t[start]);
    start++;
  }
  int used = 0;
  for (guint i = start; i < len && used < room; i++) {
    char buf[8] = {0};
    if (t[i] == '\n')
      used += put(c, c->utf8 ? "↵" : "|", room - used, A_DIM);
    else {
      g_unichar_to_utf8(t[i], buf);
      used += put(c, buf, room - used, 0);
    }
  }
  move(y, 2 + cur_col);
}

int chat_has_side(void) {
  return COLS >= CHAT_MIN_COLS_MEMBERS;
}

void chat_draw(chat *c) {
  int rows = LINES, cols = COLS;
  erase();
  chat_group *g = chat_current(c);
  if (rows < 5 || cols < 20) {
    mvaddstr(0, 0, "kith: the terminal is too small");
    refresh();
    return;
  }
  int pane = rows - 3;
  int side = c->show_members && chat_has_side();
  int width = side ? cols - CHAT_MEMBERS_WIDTH - 1 : cols;
  c->page_lines = pane;
  draw_title(c, g, cols);
  draw_messages(c, g, 1, pane, width);
  if (side)
    draw_members(c, g, 1, pane, width + 1);
  draw_bar(c, rows - 2, cols);
  draw_input(c, rows - 1, cols);
  refresh();
}
