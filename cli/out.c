/* kith CLI: human and JSON output of msgpack results. */
#include "out.h"

#include <inttypes.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>

#include "../core/ident.h"
#include "item.h"

#define OUT_COLUMN_GAP "  "
#define OUT_MAX_COLUMNS 16

const cli_field CLI_EVENT_FIELDS[] = {{"event_id", "event id", NULL},
                                      {NULL, NULL, NULL}};

const msgpack_object *cli_map_get(const msgpack_object *map, const char *key) {
  if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
    return NULL;
  size_t klen = strlen(key);
  for (uint32_t i = 0; i < map->via.map.size; i++) {
    const msgpack_object *k = &map->via.map.ptr[i].key;
    if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
        memcmp(k->via.str.ptr, key, klen) == 0)
      return &map->via.map.ptr[i].val;
  }
  return NULL;
}

/* ---- time ---- */

static char *format_ms(int64_t ms, int utc) {
  int64_t s = ms / 1000, frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    s--;
  }
  GDateTime *t = utc ? g_date_time_new_from_unix_utc(s)
                     : g_date_time_new_from_unix_local(s);
  if (t == NULL)
    return g_strdup("?");
  char *d =
      g_date_time_format(t, utc ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%d %H:%M:%S");
  g_date_time_unref(t);
  char *r = utc ? g_strdup_printf("%s.%03dZ", d, (int)frac) : g_strdup(d);
  g_free(d);
  return r;
}

char *cli_time_rfc3339(int64_t ms) {
  return format_ms(ms, 1);
}

char *cli_time_local(int64_t ms) {
  return format_ms(ms, 0);
}

/* ---- human text ---- */

static char *bool_word(const char *fmt, int v) {
  const char *bar = fmt ? strchr(fmt, '|') : NULL;
  if (bar == NULL)
    return g_strdup(v ? "yes" : "no");
  return v ? g_strndup(fmt, (gsize)(bar - fmt)) : g_strdup(bar + 1);
}

char *cli_out_text(const msgpack_object *v, const char *fmt, int multiline) {
  const char *unit = fmt && !strchr(fmt, '|') ? fmt : "";
  if (fmt != NULL && strcmp(fmt, CLI_FMT_TIME) == 0) {
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 == 0 ||
        v->via.u64 > INT64_MAX)
      return g_strdup("-");
    return cli_time_local((int64_t)v->via.u64);
  }
  switch (v->type) {
  case MSGPACK_OBJECT_NIL:
    return g_strdup("-");
  case MSGPACK_OBJECT_BOOLEAN:
    return bool_word(fmt, v->via.boolean);
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    return g_strdup_printf("%" PRIu64 "%s", v->via.u64, unit);
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    return g_strdup_printf("%" PRId64 "%s", v->via.i64, unit);
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    return g_strdup_printf("%.1f%s", v->via.f64, unit);
  case MSGPACK_OBJECT_STR:
    return cli_clean(v->via.str.ptr, v->via.str.size, multiline);
  default:
    return g_strdup("?");
  }
}

void cli_out_map(const cli_opts *o, const msgpack_object *map,
                 const cli_field *fields) {
  if (o->json) {
    cli_out_json(map);
    return;
  }
  for (const cli_field *f = fields; f->key != NULL; f++) {
    const msgpack_object *v = cli_map_get(map, f->key);
    if (v == NULL)
      continue;
    char *t = cli_out_text(v, f->fmt, 0);
    if (f->label != NULL)
      printf("%s: %s\n", f->label, t);
    else
      printf("%s\n", t);
    g_free(t);
  }
}

/* One row of cells, in fields order; widths grow to fit. */
static char **row_cells(const msgpack_object *row, const cli_field *fields,
                        size_t *widths) {
  size_t n = 0;
  while (fields[n].key != NULL && n < OUT_MAX_COLUMNS)
    n++;
  char **cells = g_new0(char *, n + 1);
  for (size_t i = 0; i < n; i++) {
    const msgpack_object *v = cli_map_get(row, fields[i].key);
    cells[i] = v ? cli_out_text(v, fields[i].fmt, 0) : g_strdup("-");
    if (cells[i][0] == '\0') { /* keep every column visible */
      g_free(cells[i]);
      cells[i] = g_strdup("-");
    }
    size_t w = (size_t)g_utf8_strlen(cells[i], -1);
    if (w > widths[i])
      widths[i] = w;
  }
  return cells;
}

static void print_cells(char **cells, const size_t *widths) {
  for (size_t i = 0; cells[i] != NULL; i++) {
    int last = cells[i + 1] == NULL;
    size_t pad = widths[i] - (size_t)g_utf8_strlen(cells[i], -1);
    printf("%s%s%*s", i ? OUT_COLUMN_GAP : "", cells[i], last ? 0 : (int)pad,
           "");
  }
  printf("\n");
}

int cli_out_rows(const cli_opts *o, const msgpack_object *rows,
                 const cli_field *fields) {
  if (rows->type != MSGPACK_OBJECT_ARRAY)
    return cli_error("the node sent a malformed result");
  const msgpack_object *items = rows->via.array.ptr;
  if (o->json) {
    for (uint32_t i = 0; i < rows->via.array.size; i++)
      cli_out_json(&items[i]);
    return CLI_OK;
  }
  size_t widths[OUT_MAX_COLUMNS] = {0};
  GPtrArray *table = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
  for (uint32_t i = 0; i < rows->via.array.size; i++)
    g_ptr_array_add(table, row_cells(&items[i], fields, widths));
  for (guint i = 0; i < table->len; i++)
    print_cells(table->pdata[i], widths);
  g_ptr_array_free(table, TRUE);
  return CLI_OK;
}

/* ---- JSON ---- */

static void add_value(JsonBuilder *b, const msgpack_object *v);

static void add_bin(JsonBuilder *b, const msgpack_object *v) {
  char *s = g_malloc((v->via.bin.size * 8 + 4) / 5 + 1);
  kith_base32_encode((const uint8_t *)v->via.bin.ptr, v->via.bin.size, s);
  json_builder_add_string_value(b, s);
  g_free(s);
}

/* Times in results are ms since the epoch under a key ending in "_ms"; in
 * JSON they are RFC 3339 strings under the key without it (0 means
 * unknown: null). Durations (rtt_ms) stay numbers. */
static const char *const TIME_KEYS[][2] = {{"time_ms", "time"},
                                           {"expires_ms", "expires"},
                                           {"last_seen_ms", "last_seen"}};

static const char *time_key(const char *name, const msgpack_object *v) {
  if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > INT64_MAX)
    return NULL;
  for (size_t i = 0; i < G_N_ELEMENTS(TIME_KEYS); i++)
    if (strcmp(name, TIME_KEYS[i][0]) == 0)
      return TIME_KEYS[i][1];
  return NULL;
}

static void add_member(JsonBuilder *b, const msgpack_object *k,
                       const msgpack_object *v) {
  if (k->type != MSGPACK_OBJECT_STR)
    return;
  char *name = g_utf8_make_valid(k->via.str.ptr, (gssize)k->via.str.size);
  const char *as_time = time_key(name, v);
  if (as_time != NULL) {
    json_builder_set_member_name(b, as_time);
    if (v->via.u64 == 0 && strcmp(name, "time_ms") != 0) {
      json_builder_add_null_value(b);
    } else {
      char *t = cli_time_rfc3339((int64_t)v->via.u64);
      json_builder_add_string_value(b, t);
      g_free(t);
    }
  } else {
    json_builder_set_member_name(b, name);
    add_value(b, v);
  }
  g_free(name);
}

static void add_value(JsonBuilder *b, const msgpack_object *v) {
  switch (v->type) {
  case MSGPACK_OBJECT_BOOLEAN:
    json_builder_add_boolean_value(b, v->via.boolean);
    break;
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    if (v->via.u64 > INT64_MAX)
      json_builder_add_double_value(b, (double)v->via.u64);
    else
      json_builder_add_int_value(b, (gint64)v->via.u64);
    break;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    json_builder_add_int_value(b, v->via.i64);
    break;
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    json_builder_add_double_value(b, v->via.f64);
    break;
  case MSGPACK_OBJECT_STR: {
    char *s = g_utf8_make_valid(v->via.str.ptr, (gssize)v->via.str.size);
    json_builder_add_string_value(b, s);
    g_free(s);
    break;
  }
  case MSGPACK_OBJECT_BIN:
    add_bin(b, v);
    break;
  case MSGPACK_OBJECT_ARRAY:
    json_builder_begin_array(b);
    for (uint32_t i = 0; i < v->via.array.size; i++)
      add_value(b, &v->via.array.ptr[i]);
    json_builder_end_array(b);
    break;
  case MSGPACK_OBJECT_MAP:
    json_builder_begin_object(b);
    for (uint32_t i = 0; i < v->via.map.size; i++)
      add_member(b, &v->via.map.ptr[i].key, &v->via.map.ptr[i].val);
    json_builder_end_object(b);
    break;
  default:
    json_builder_add_null_value(b);
  }
}

void cli_out_json(const msgpack_object *map) {
  JsonBuilder *b = json_builder_new();
  add_value(b, map);
  JsonNode *root = json_builder_get_root(b);
  JsonGenerator *gen = json_generator_new();
  json_generator_set_root(gen, root);
  char *s = json_generator_to_data(gen, NULL);
  printf("%s\n", s);
  g_free(s);
  g_object_unref(gen);
  json_node_unref(root);
  g_object_unref(b);
}
