/* kith chat: the input line editor. */
#include "chat_input.h"

#include <string.h>

void chat_input_init(chat_input *in) {
  memset(in, 0, sizeof *in);
  in->text = g_array_new(FALSE, FALSE, sizeof(gunichar));
  in->history = g_ptr_array_new_with_free_func(g_free);
}

void chat_input_clear(chat_input *in) {
  g_array_unref(in->text);
  g_ptr_array_unref(in->history);
  g_free(in->stash);
  memset(in, 0, sizeof *in);
}

void chat_input_insert(chat_input *in, gunichar c) {
  if (in->text->len >= CHAT_INPUT_MAX)
    return;
  g_array_insert_val(in->text, in->cursor, c);
  in->cursor++;
}

void chat_input_insert_utf8(chat_input *in, const char *s) {
  for (const char *p = s; *p; p = g_utf8_next_char(p))
    chat_input_insert(in, g_utf8_get_char(p));
}

char *chat_input_text(const chat_input *in) {
  char *s = g_ucs4_to_utf8((const gunichar *)(void *)in->text->data,
                           (glong)in->text->len, NULL, NULL, NULL);
  return s ? s : g_strdup("");
}

static void set_text(chat_input *in, const char *s) {
  g_array_set_size(in->text, 0);
  in->cursor = 0;
  chat_input_insert_utf8(in, s ? s : "");
}

char *chat_input_take(chat_input *in) {
  char *s = chat_input_text(in);
  if (*s != '\0') {
    if (in->history->len >= CHAT_HISTORY_MAX)
      g_ptr_array_remove_index(in->history, 0);
    g_ptr_array_add(in->history, g_strdup(s));
  }
  g_array_set_size(in->text, 0);
  in->cursor = 0;
  in->hist_pos = in->history->len;
  g_clear_pointer(&in->stash, g_free);
  return s;
}

static gunichar at(const chat_input *in, guint i) {
  return g_array_index(in->text, gunichar, i);
}

static guint word_start(const chat_input *in) {
  guint i = in->cursor;
  while (i > 0 && g_unichar_isspace(at(in, i - 1)))
    i--;
  while (i > 0 && !g_unichar_isspace(at(in, i - 1)))
    i--;
  return i;
}

static guint word_end(const chat_input *in) {
  guint i = in->cursor;
  while (i < in->text->len && g_unichar_isspace(at(in, i)))
    i++;
  while (i < in->text->len && !g_unichar_isspace(at(in, i)))
    i++;
  return i;
}

static void history_move(chat_input *in, int up) {
  if (up && in->hist_pos == 0)
    return;
  if (!up && in->hist_pos >= in->history->len)
    return;
  if (in->hist_pos == in->history->len) {
    g_free(in->stash);
    in->stash = chat_input_text(in);
  }
  in->hist_pos += up ? -1 : 1;
  set_text(in, in->hist_pos == in->history->len
                   ? in->stash
                   : in->history->pdata[in->hist_pos]);
}

static void delete_range(chat_input *in, guint from, guint to) {
  if (to > from)
    g_array_remove_range(in->text, from, to - from);
  in->cursor = from;
}

void chat_input_edit(chat_input *in, chat_edit op) {
  guint len = in->text->len;
  switch (op) {
  case CHAT_ED_LEFT:
    in->cursor -= in->cursor > 0;
    break;
  case CHAT_ED_RIGHT:
    in->cursor += in->cursor < len;
    break;
  case CHAT_ED_HOME:
    in->cursor = 0;
    break;
  case CHAT_ED_END:
    in->cursor = len;
    break;
  case CHAT_ED_BACKSPACE:
    if (in->cursor > 0)
      delete_range(in, in->cursor - 1, in->cursor);
    break;
  case CHAT_ED_DELETE:
    if (in->cursor < len)
      g_array_remove_index(in->text, in->cursor);
    break;
  case CHAT_ED_KILL_START:
    delete_range(in, 0, in->cursor);
    break;
  case CHAT_ED_KILL_END:
    g_array_set_size(in->text, in->cursor);
    break;
  case CHAT_ED_KILL_WORD:
    delete_range(in, word_start(in), in->cursor);
    break;
  case CHAT_ED_WORD_LEFT:
    in->cursor = word_start(in);
    break;
  case CHAT_ED_WORD_RIGHT:
    in->cursor = word_end(in);
    break;
  case CHAT_ED_HISTORY_UP:
  case CHAT_ED_HISTORY_DOWN:
    history_move(in, op == CHAT_ED_HISTORY_UP);
    break;
  }
}
