/* kith node: run the node in the foreground (net/node.c does the work). */
#include <arpa/inet.h>

#include "../net/node.h"
#include "cli.h"

#define CLI_DEFAULT_PORT 7733 /* the signal port when --port is not given */

int cli_cmd_node(cli_opts *o, int argc, char **argv) {
  gint port = CLI_DEFAULT_PORT;
  char *bind_addr = NULL;
  const GOptionEntry entries[] = {
      {"port", 0, 0, G_OPTION_ARG_INT, &port,
       "UDP signal port (default 7733; 0 picks a free one)", "N"},
      {"bind", 0, 0, G_OPTION_ARG_STRING, &bind_addr,
       "Use only this IPv4 address (e.g. 127.0.0.1 for tests)", "ADDR"},
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
  if (rc == CLI_OK) {
    kith_node_config cfg = {.home = o->home,
                            .port = (uint16_t)port,
                            .loopback = 1,
                            .bind_addr = bind_addr};
    rc = kith_node_run(&cfg);
  }
  g_free(bind_addr);
  return rc;
}
