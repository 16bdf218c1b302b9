/* kith node: run the node in the foreground (net/node.c does the work).
 *
 * Options come from the command line and, for what it does not give, from
 * the home's config file kith.conf:
 *   [node]
 *   port=7733
 *   stun=HOST:PORT
 *   turn=turn://USER:PASS@HOST:PORT;turn://...
 *   relay=true
 * TURN URLs carry a password, and a command line is visible to every user
 * (ps): they are best given with --turn-file FILE (one URL per line), the
 * environment variable KITH_TURN (URLs separated by ';') or kith.conf in
 * the home (mode 0700). A password given with --turn gets a warning. */
#include <arpa/inet.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../core/home.h"
#include "../net/ice.h"
#include "../net/node.h"
#include "cli.h"

#define CLI_DEFAULT_PORT 7733 /* the signal port when --port is not given */
#define CLI_CONFIG_FILE "kith.conf"
#define CLI_TURN_ENV "KITH_TURN"
#define TURN_FILE_MAX (64 * 1024) /* bytes of a --turn-file */

typedef struct node_opts {
  gint port; /* -1: not given */
  char *bind_addr;
  char *pass_file;
  char **stun; /* only the first is used by libnice */
  char **turn;
  char *turn_file;
  gboolean relay;
} node_opts;

/* Reads TURN URLs, one per line (blank lines and # comments skipped), and
 * appends them to n->turn. */
static int read_turn_file(node_opts *n) {
  char *text = NULL;
  gsize len = 0;
  GError *err = NULL;

  if (!g_file_get_contents(n->turn_file, &text, &len, &err)) {
    int rc =
        cli_error("cannot read --turn-file %s: %s", n->turn_file, err->message);
    g_error_free(err);
    return rc;
  }
  if (len > TURN_FILE_MAX) {
    g_free(text);
    return cli_error("--turn-file %s is larger than %d bytes", n->turn_file,
                     TURN_FILE_MAX);
  }
  GStrvBuilder *b = g_strv_builder_new();
  for (char **l = n->turn; l && *l; l++)
    g_strv_builder_add(b, *l);
  char **lines = g_strsplit(text, "\n", -1);
  for (char **l = lines; *l; l++) {
    g_strstrip(*l);
    if (**l && **l != '#')
      g_strv_builder_add(b, *l);
  }
  g_strfreev(lines);
  g_strfreev(n->turn);
  n->turn = g_strv_builder_end(b);
  g_strv_builder_unref(b);
  g_free(text);
  return CLI_OK;
}

/* KITH_TURN: URLs separated by ';' (used when neither --turn nor
 * --turn-file gave any). */
static void read_turn_env(node_opts *n) {
  const char *env = g_getenv(CLI_TURN_ENV);
  if (n->turn || !env || !*env)
    return;
  n->turn = g_strsplit(env, ";", -1);
}

/* kith.conf: "[node]", then "key=value" lines; blank lines and lines
 * starting with '#' or ';' are ignored. Anything else (an unknown section
 * or key, a key set twice, a value that does not parse) is an error that
 * names the line. */
typedef struct conf {
  const char *path;
  int line;
  int in_node; /* inside [node] */
  int seen[4]; /* line of each key, 0 if not set */
  node_opts from_file;
} conf;

static const char *const CONF_KEYS[] = {"port", "stun", "turn", "relay"};

static int conf_error(const conf *c, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static int conf_error(const conf *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  int rc = cli_error("%s line %d: %s", c->path, c->line, msg);
  g_free(msg);
  return rc;
}

static int conf_value(conf *c, int key, const char *v) {
  node_opts *f = &c->from_file;
  char *end = NULL;
  switch (key) {
  case 0: {
    guint64 port = g_ascii_strtoull(v, &end, 10);
    if (!g_ascii_isdigit(v[0]) || *end != '\0' || port > 65535)
      return conf_error(c, "port is 0 to 65535, not '%s'", v);
    f->port = (gint)port;
    return CLI_OK;
  }
  case 1:
  case 2:
    if (*v == '\0')
      return conf_error(c, "%s needs a value", CONF_KEYS[key]);
    *(key == 1 ? &f->stun : &f->turn) = g_strsplit(v, ";", -1);
    return CLI_OK;
  default:
    if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
      return conf_error(c, "relay is true or false, not '%s'", v);
    f->relay = v[0] == 't';
    return CLI_OK;
  }
}

static int conf_line(conf *c, char *text) {
  g_strstrip(text);
  if (text[0] == '\0' || text[0] == '#' || text[0] == ';')
    return CLI_OK;
  if (text[0] == '[') {
    c->in_node = strcmp(text, "[node]") == 0;
    return c->in_node ? CLI_OK
                      : conf_error(c,
                                   "unknown section %s (the one section "
                                   "is [node])",
                                   text);
  }
  char *eq = strchr(text, '=');
  if (eq == NULL)
    return conf_error(c, "'%s' is not key=value", text);
  *eq = '\0';
  char *key = g_strstrip(text), *value = g_strstrip(eq + 1);
  if (!c->in_node)
    return conf_error(c, "%s is outside the [node] section", key);
  for (int k = 0; k < (int)G_N_ELEMENTS(CONF_KEYS); k++) {
    if (strcmp(key, CONF_KEYS[k]) != 0)
      continue;
    if (c->seen[k])
      return conf_error(c, "%s is set twice (first on line %d)", key,
                        c->seen[k]);
    c->seen[k] = c->line;
    return conf_value(c, k, value);
  }
  return conf_error(c, "unknown key '%s' (known: port, stun, turn, relay)",
                    key);
}

/* Fills what the command line left out from <home>/kith.conf. */
static int read_config(const cli_opts *o, node_opts *n) {
  char *path = kith_home_path(o->home, CLI_CONFIG_FILE);
  char *text = NULL;
  GError *err = NULL;
  conf c = {.path = path, .from_file = {.port = -1}};
  int rc = CLI_OK;

  if (!g_file_get_contents(path, &text, NULL, &err)) {
    if (!g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT))
      rc = cli_error("cannot read %s: %s", path, err->message);
    g_clear_error(&err);
    g_free(path);
    return rc;
  }
  char **lines = g_strsplit(text, "\n", -1);
  for (int i = 0; rc == CLI_OK && lines[i] != NULL; i++) {
    c.line = i + 1;
    rc = conf_line(&c, lines[i]);
  }
  node_opts *f = &c.from_file;
  if (rc == CLI_OK && n->port < 0)
    n->port = f->port;
  if (rc == CLI_OK && !n->stun)
    n->stun = g_steal_pointer(&f->stun);
  if (rc == CLI_OK && !n->turn)
    n->turn = g_steal_pointer(&f->turn);
  if (rc == CLI_OK && !n->relay)
    n->relay = f->relay;
  g_strfreev(f->stun);
  g_strfreev(f->turn);
  g_strfreev(lines);
  g_free(text);
  g_free(path);
  return rc;
}

static int check_opts(const node_opts *n) {
  struct in_addr a;
  kith_turn t;

  if (n->port < 0 || n->port > 65535)
    return cli_usage("node", "--port must be 0 to 65535");
  if (n->bind_addr && inet_pton(AF_INET, n->bind_addr, &a) != 1)
    return cli_usage("node", "--bind takes an IPv4 address, not '%s'",
                     n->bind_addr);
  if (n->stun && n->stun[0] && !strchr(n->stun[0], ':'))
    return cli_usage("node", "--stun takes HOST:PORT, not '%s'", n->stun[0]);
  for (int i = 0; n->turn && n->turn[i]; i++) {
    if (i >= KITH_TURN_MAX)
      return cli_usage("node", "at most %d TURN servers", KITH_TURN_MAX);
    /* The URL holds a password: never echo it. */
    if (kith_turn_parse(n->turn[i], &t) != KITH_OK)
      return cli_usage("node",
                       "TURN server %d is not turn://USER:PASS@HOST:PORT "
                       "with a numeric HOST",
                       i + 1);
    sodium_memzero(&t, sizeof t);
  }
  return CLI_OK;
}

static void free_strv_wiped(char **v) {
  for (char **l = v; l && *l; l++)
    sodium_memzero(*l, strlen(*l));
  g_strfreev(v);
}

static void free_opts(node_opts *n) {
  g_free(n->bind_addr);
  g_free(n->pass_file);
  g_free(n->turn_file);
  g_strfreev(n->stun);
  free_strv_wiped(n->turn);
}

/* TURN servers: --turn and --turn-file, else KITH_TURN, else kith.conf
 * (read_config). A password on the command line gets a warning. */
static int gather_turn(node_opts *n) {
  if (n->turn && n->turn[0])
    fprintf(stderr, "kith: warning: a TURN password given with --turn is "
                    "visible to every user of this machine (ps); use "
                    "--turn-file FILE, the " CLI_TURN_ENV " environment "
                    "variable or kith.conf instead\n");
  if (n->turn_file) {
    int rc = read_turn_file(n);
    if (rc != CLI_OK)
      return rc;
  }
  read_turn_env(n);
  return CLI_OK;
}

int cli_cmd_node(cli_opts *o, int argc, char **argv) {
  node_opts n = {.port = -1};
  char *pass = NULL;
  size_t pass_len = 0;
  const GOptionEntry entries[] = {
      {"port", 0, 0, G_OPTION_ARG_INT, &n.port,
       "UDP signal port (default 7733; 0 picks a free one)", "N"},
      {"bind", 0, 0, G_OPTION_ARG_STRING, &n.bind_addr,
       "Use only this IPv4 address (e.g. 127.0.0.1 for tests)", "ADDR"},
      {"stun", 0, 0, G_OPTION_ARG_STRING_ARRAY, &n.stun,
       "STUN server for server-reflexive candidates", "HOST:PORT"},
      {"turn", 0, 0, G_OPTION_ARG_STRING_ARRAY, &n.turn,
       "TURN server for relayed candidates (repeatable)",
       "turn://USER:PASS@HOST:PORT"},
      {"turn-file", 0, 0, G_OPTION_ARG_FILENAME, &n.turn_file,
       "Read TURN URLs from FILE, one per line (keeps the password out of "
       "ps; also: $KITH_TURN, kith.conf)",
       "FILE"},
      {"relay", 0, 0, G_OPTION_ARG_NONE, &n.relay,
       "Relay signalling and traffic for the nodes on the friend list", NULL},
      {"passphrase-file", 0, 0, G_OPTION_ARG_FILENAME, &n.pass_file,
       "Read the home's passphrase from FILE instead of asking", "FILE"},
      G_OPTION_ENTRY_NULL};
  int rc = cli_parse(o, "node", NULL, 0,
                     "Run the node in the foreground until SIGINT or "
                     "SIGTERM; logs go to stderr. Options not given are "
                     "read from kith.conf in the home, section [node].",
                     entries, &argc, &argv);
  if (rc == CLI_OK)
    rc = gather_turn(&n);
  if (rc == CLI_OK)
    rc = read_config(o, &n);
  if (rc == CLI_OK && n.port < 0)
    n.port = CLI_DEFAULT_PORT;
  if (rc == CLI_OK)
    rc = check_opts(&n);
  if (rc == CLI_OK && (n.pass_file || kith_home_key_is_protected(o->home)))
    rc = cli_read_passphrase(n.pass_file, o->home, &pass, &pass_len);
  if (rc == CLI_OK) {
    kith_node_config cfg = {.home = o->home,
                            .port = (uint16_t)n.port,
                            .loopback = 1,
                            .bind_addr = n.bind_addr,
                            .passphrase = pass,
                            .passphrase_len = pass_len,
                            .stun = n.stun ? n.stun[0] : NULL,
                            .turn = (const char *const *)n.turn,
                            .relay = n.relay};
    rc = kith_node_run(&cfg);
  }
  cli_passphrase_free(pass, pass_len);
  free_opts(&n);
  return rc;
}
