/* kith CLI: error lines, per-command option parsing, family dispatch. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static cli_error_sink error_sink;
static void *error_sink_ud;

void cli_set_error_sink(cli_error_sink fn, void *ud) {
  error_sink = fn;
  error_sink_ud = ud;
}

static void emit_error(const char *msg) {
  if (error_sink != NULL)
    error_sink(msg, error_sink_ud);
  else
    fprintf(stderr, "kith: error: %s\n", msg);
}

int cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  emit_error(msg);
  g_free(msg);
  return CLI_ERROR;
}

int cli_usage(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  char *line = g_strdup_printf("%s; see 'kith%s%s --help'", msg, cmd ? " " : "",
                               cmd ? cmd : "");
  emit_error(line);
  g_free(line);
  g_free(msg);
  return CLI_USAGE;
}

static gboolean on_home(const gchar *name, const gchar *value, gpointer data,
                        GError **error) {
  cli_opts *o = data;
  if (value == NULL || *value == '\0') {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                "--home needs a directory");
    return FALSE;
  }
  g_free(o->home);
  o->home = g_strdup(value);
  o->home_given = 1;
  return TRUE;
}

/* GOption leaves a "--" separator in argv in some cases; a user who wrote
 * one meant "only arguments follow". */
static void drop_separator(int *argc, char **argv) {
  for (int i = 1; i < *argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      memmove(&argv[i], &argv[i + 1], sizeof(char *) * (size_t)(*argc - i));
      (*argc)--;
      return;
    }
  }
}

static int check_count(const char *cmd, const char *params, int nargs, int argc,
                       char **argv) {
  int have = argc - 1;
  if (have > nargs)
    return cli_usage(cmd, "unexpected argument '%s'", argv[1 + nargs]);
  if (have == nargs)
    return CLI_OK;
  char **names = g_strsplit(params ? params : "", " ", -1);
  int n = (int)g_strv_length(names);
  if (have < n && names[have][0] == '[') { /* optional from here on */
    g_strfreev(names);
    return CLI_OK;
  }
  int rc = cli_usage(cmd, "missing %s", have < n ? names[have] : "argument");
  g_strfreev(names);
  return rc;
}

int cli_parse(cli_opts *o, const char *cmd, const char *params, int nargs,
              const char *summary, const GOptionEntry *entries, int *argc,
              char ***argv) {
  const GOptionEntry globals[] = {{"home", 0, 0, G_OPTION_ARG_CALLBACK,
                                   (gpointer)on_home,
                                   "Data directory of the node", "DIR"},
                                  {"json", 0, 0, G_OPTION_ARG_NONE, &o->json,
                                   "Print one JSON object per line", NULL},
                                  G_OPTION_ENTRY_NULL};
  /* --help then reads "Usage: kith send [OPTION...] GROUP TEXT". */
  char *prg = g_strdup_printf("kith %s", cmd);
  g_set_prgname(prg);
  g_free(prg);
  GOptionContext *ctx = g_option_context_new(params);
  GOptionGroup *g = g_option_group_new("kith", "", "", o, NULL);
  if (entries != NULL)
    g_option_group_add_entries(g, entries);
  g_option_group_add_entries(g, globals);
  g_option_context_set_main_group(ctx, g);
  g_option_context_set_summary(ctx, summary);
  GError *err = NULL;
  int rc = CLI_OK;
  if (!g_option_context_parse(ctx, argc, argv, &err)) {
    rc = cli_usage(cmd, "%s", err->message);
    g_error_free(err);
  } else {
    drop_separator(argc, *argv);
    rc = check_count(cmd, params, nargs, *argc, *argv);
  }
  g_option_context_free(ctx);
  return rc;
}

static void print_family(const char *family, const cli_cmd *table) {
  printf("Usage: kith %s COMMAND [OPTION...]\n\nCommands:\n", family);
  for (const cli_cmd *c = table; c->name != NULL; c++)
    printf("  %s %-10s %s\n", family, c->name, c->help);
  printf("\nRun 'kith %s COMMAND --help' for its options.\n", family);
}

/* "kith group --json list": global options may come before the family's
 * command. Returns the index of the command word, or 0. */
static int find_command(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--home") == 0)
      i++;
    else if (argv[i][0] != '-')
      return i;
  }
  return 0;
}

static int has_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
      return 1;
  return 0;
}

int cli_dispatch(cli_opts *o, const char *family, const cli_cmd *table,
                 int argc, char **argv) {
  int at = find_command(argc, argv);
  if (at == 0 && has_help(argc, argv)) {
    print_family(family, table);
    return CLI_OK;
  }
  if (at == 0)
    return cli_usage(family, "missing command");
  /* Move the command word to argv[1] so its own parser sees the options
   * that came before it. */
  char *cmd = argv[at];
  memmove(&argv[2], &argv[1], sizeof(char *) * (size_t)(at - 1));
  argv[1] = cmd;
  for (const cli_cmd *c = table; c->name != NULL; c++)
    if (strcmp(c->name, cmd) == 0)
      return c->fn(o, argc - 1, argv + 1);
  return cli_usage(family, "unknown command '%s %s'", family, cmd);
}

int cli_parse_duration(const char *s, uint64_t max_s, uint64_t *out) {
  static const struct {
    char unit;
    uint64_t mult;
  } UNITS[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
  if (!g_ascii_isdigit(s[0]))
    return 0;
  char *end = NULL;
  guint64 n = g_ascii_strtoull(s, &end, 10);
  if (end[0] == '\0' || end[1] != '\0' || n == 0)
    return 0;
  for (size_t i = 0; i < G_N_ELEMENTS(UNITS); i++) {
    if (UNITS[i].unit == end[0] && n <= max_s / UNITS[i].mult) {
      *out = n * UNITS[i].mult;
      return 1;
    }
  }
  return 0;
}

int cli_duration_option(const char *cmd, const char *opt, const char *text,
                        uint64_t max_s, uint64_t *out) {
  if (text == NULL || cli_parse_duration(text, max_s, out))
    return CLI_OK;
  return cli_usage(cmd,
                   "%s takes a duration like 30s, 10m, 24h or 7d (at most "
                   "%" G_GUINT64_FORMAT "d), not '%s'",
                   opt, max_s / 86400, text);
}

/* Characters that need no quoting in a POSIX shell word. */
static int is_plain_word(const char *s) {
  return *s != '\0' &&
         strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789/._+,:@%-") == strlen(s);
}

char *cli_home_hint(const cli_opts *o) {
  if (!o->home_given)
    return g_strdup("");
  if (is_plain_word(o->home))
    return g_strdup_printf(" --home %s", o->home);
  char *q = g_shell_quote(o->home);
  char *s = g_strdup_printf(" --home %s", q);
  g_free(q);
  return s;
}
