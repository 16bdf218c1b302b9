/* kith friend add|list|remove: the nodes this node relays for (when run
 * with --relay) and may relay through. */
#include "rpc.h"

static const cli_field FRIEND_FIELDS[] = {{"node_id", NULL, NULL},
                                          {"name", NULL, NULL},
                                          {"addr", NULL, NULL},
                                          {NULL, NULL, NULL}};

static int friend_add(cli_opts *o, int argc, char **argv) {
  char *addr = NULL, *name = NULL;
  const GOptionEntry entries[] = {
      {"addr", 0, 0, G_OPTION_ARG_STRING, &addr,
       "Where the friend's node can be reached (its signal port)", "HOST:PORT"},
      {"name", 0, 0, G_OPTION_ARG_STRING, &name, "A name for the friend",
       "NAME"},
      G_OPTION_ENTRY_NULL};
  int rc = cli_parse(o, "friend add", "NODE_ID", 1,
                     "Add a friend: relay for it (with kith node --relay) "
                     "and relay through it.",
                     entries, &argc, &argv);
  if (rc == CLI_OK) {
    kith_pack p;
    kith_pack_init(&p);
    kith_pack_array(&p, 3);
    kith_pack_cstr(&p, argv[1]);
    kith_pack_cstr(&p, name ? name : "");
    kith_pack_cstr(&p, addr ? addr : "");
    rc = cli_call_show(o, "friend.add", &p, FRIEND_FIELDS, 0);
  }
  g_free(addr);
  g_free(name);
  return rc;
}

static const cli_simple LIST = {.cmd = "friend list",
                                .method = "friend.list",
                                .summary = "List the relay friends.",
                                .fields = FRIEND_FIELDS,
                                .rows = 1};

static const cli_simple REMOVE = {.cmd = "friend remove",
                                  .method = "friend.remove",
                                  .params = "NODE_ID",
                                  .nargs = 1,
                                  .summary = "Remove a friend.",
                                  .fields = FRIEND_FIELDS};

static int friend_list(cli_opts *o, int argc, char **argv) {
  return cli_run_simple(o, &LIST, argc, argv);
}

static int friend_remove(cli_opts *o, int argc, char **argv) {
  return cli_run_simple(o, &REMOVE, argc, argv);
}

static const cli_cmd FRIEND_COMMANDS[] = {
    {"add", friend_add, "add a relay friend"},
    {"list", friend_list, "list the relay friends"},
    {"remove", friend_remove, "remove a relay friend"},
    {NULL, NULL, NULL},
};

int cli_cmd_friend(cli_opts *o, int argc, char **argv) {
  return cli_dispatch(o, "friend", FRIEND_COMMANDS, argc, argv);
}
