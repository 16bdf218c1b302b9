/* kith node: run the node in the foreground (net/node.c does the work). */
#include <arpa/inet.h>

#include "../core/home.h"
#include "../net/node.h"
#include "cli.h"

#define CLI_DEFAULT_PORT 7733 /* the signal port when --port is not given */

int cli_cmd_node(cli_opts *o, int argc, char **argv) {
  gint port = CLI_DEFAULT_PORT;
  char *bind_addr = NULL, *pass_file = NULL, *pass = NULL;
  size_t pass_len = 0;
  const GOptionEntry entries[] = {
      {"port", 0, 0, G_OPTION_ARG_INT, &port,
       "UDP signal port (default 7733; 0 picks a free one)", "N"},
      {"bind", 0, 0, G_OPTION_ARG_STRING, &bind_addr,
       "Use only this IPv4 address (e.g. 127.0.0.1 for tests)", "ADDR"},
      {"passphrase-file", 0, 0, G_OPTION_ARG_FILENAME, &pass_file,
       "Read the home's passphrase from FILE instead of asking", "FILE"},
      G_OPTION_ENTRY_NULL};
  int rc = cli_parse(o, "node", NULL, 0,
                     "Run the node in the foreground until SIGINT or "
                     "SIGTERM; logs go to stderr.",
                     entries, &argc, &argv);
  if (rc == CLI_OK && (port < 0 || port > 65535))
    rc = cli_usage("node", "--port must be 0 to 65535");
  struct in_addr a;
  if (rc == CLI_OK && bind_addr != NULL &&
      inet_pton(AF_INET, bind_addr, &a) != 1)
    rc = cli_usage("node", "--bind takes an IPv4 address, not '%s'", bind_addr);
  if (rc == CLI_OK && (pass_file || kith_home_key_is_protected(o->home)))
    rc = cli_read_passphrase(pass_file, o->home, &pass, &pass_len);
  if (rc == CLI_OK) {
    kith_node_config cfg = {.home = o->home,
                            .port = (uint16_t)port,
                            .loopback = 1,
                            .bind_addr = bind_addr,
                            .passphrase = pass,
                            .passphrase_len = pass_len};
    rc = kith_node_run(&cfg);
  }
  cli_passphrase_free(pass, pass_len);
  g_free(pass_file);
  g_free(bind_addr);
  return rc;
}
