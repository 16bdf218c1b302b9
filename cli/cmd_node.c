/* kith node: run the node in the foreground (net/node.c does the work).
 *
 * Options come from the command line and, for what it does not give, from
 * the home's config file kith.conf:
 *   [node]
 *   port=7733
 *   stun=HOST:PORT
 *   turn=turn://USER:PASS@HOST:PORT;turn://...
 *   relay=true
 */
#include <arpa/inet.h>

#include "../core/home.h"
#include "../net/ice.h"
#include "../net/node.h"
#include "cli.h"

#define CLI_DEFAULT_PORT 7733 /* the signal port when --port is not given */
#define CLI_CONFIG_FILE "kith.conf"

typedef struct node_opts {
  gint port; /* -1: not given */
  char *bind_addr;
  char *pass_file;
  char **stun; /* only the first is used by libnice */
  char **turn;
  gboolean relay;
} node_opts;

/* Fills what the command line left out from <home>/kith.conf. */
static int read_config(const cli_opts *o, node_opts *n) {
  char *path = kith_home_path(o->home, CLI_CONFIG_FILE);
  GKeyFile *kf = g_key_file_new();
  GError *err = NULL;
  int rc = CLI_OK;

  if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &err)) {
    if (!g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOENT))
      rc = cli_error("cannot read %s: %s", path, err->message);
    g_clear_error(&err);
    goto out;
  }
  if (n->port < 0 && g_key_file_has_key(kf, "node", "port", NULL))
    n->port = g_key_file_get_integer(kf, "node", "port", NULL);
  if (!n->stun)
    n->stun = g_key_file_get_string_list(kf, "node", "stun", NULL, NULL);
  if (!n->turn)
    n->turn = g_key_file_get_string_list(kf, "node", "turn", NULL, NULL);
  if (!n->relay)
    n->relay = g_key_file_get_boolean(kf, "node", "relay", NULL);
out:
  g_key_file_unref(kf);
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
    if (kith_turn_parse(n->turn[i], &t) != KITH_OK)
      return cli_usage("node",
                       "--turn takes turn://USER:PASS@HOST:PORT with a "
                       "numeric HOST, not '%s'",
                       n->turn[i]);
  }
  return CLI_OK;
}

static void free_opts(node_opts *n) {
  g_free(n->bind_addr);
  g_free(n->pass_file);
  g_strfreev(n->stun);
  g_strfreev(n->turn);
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
