/* kith group create|list|info|members. */
#include <string.h>

#include "rpc.h"

static const cli_field CREATED_FIELDS[] = {
    {"group_id", "group id", NULL}, {"name", "name", NULL}, {NULL, NULL, NULL}};

static const cli_field LIST_FIELDS[] = {{"group_id", NULL, NULL},
                                        {"name", NULL, NULL},
                                        {"members", NULL, NULL},
                                        {"role", NULL, NULL},
                                        {NULL, NULL, NULL}};

static const cli_simple LIST = {
    .cmd = "group list",
    .method = "group.list",
    .summary = "List your groups: id, name, members, role.",
    .fields = LIST_FIELDS,
    .rows = 1};

/* Labels are the JSON keys, so scripts can grep either form. */
static const cli_field INFO_FIELDS[] = {
    {"group_id", "group_id", NULL}, {"name", "name", NULL},
    {"topic", "topic", NULL},       {"history", "history", NULL},
    {"epoch", "epoch", NULL},       {"members", "members", NULL},
    {"events", "events", NULL},     {"state_hash", "state_hash", NULL},
    {"links", "links", NULL},       {NULL, NULL, NULL}};

static const cli_simple INFO = {.cmd = "group info",
                                .method = "group.info",
                                .params = "GROUP",
                                .nargs = 1,
                                .summary =
                                    "Show a group's state as this node sees "
                                    "it. GROUP is a name, an id or a "
                                    "unique prefix of one.",
                                .fields = INFO_FIELDS};

static const cli_field MEMBER_FIELDS[] = {{"node_id", NULL, NULL},
                                          {"name", NULL, NULL},
                                          {"role", NULL, NULL},
                                          {"online", NULL, "online|offline"},
                                          {NULL, NULL, NULL}};

static const cli_simple MEMBERS = {.cmd = "group members",
                                   .method = "group.members",
                                   .params = "GROUP",
                                   .nargs = 1,
                                   .summary = "List the members of a group.",
                                   .fields = MEMBER_FIELDS,
                                   .rows = 1};

static int group_create(cli_opts *o, int argc, char **argv) {
  char *history = NULL;
  const GOptionEntry entries[] = {
      {"history", 0, 0, G_OPTION_ARG_STRING, &history,
       "Who sees messages from before they joined: shared (everyone, the "
       "default) or joined (only what came after)",
       "shared|joined"},
      G_OPTION_ENTRY_NULL};
  int rc = cli_parse(o, "group create", "NAME", 1,
                     "Make a group; you are its owner.", entries, &argc, &argv);
  if (rc == CLI_OK && history != NULL && strcmp(history, "shared") != 0 &&
      strcmp(history, "joined") != 0)
    rc = cli_usage("group create", "--history is shared or joined");
  if (rc == CLI_OK) {
    kith_pack p;
    kith_pack_init(&p);
    kith_pack_array(&p, 2);
    kith_pack_cstr(&p, argv[1]);
    kith_pack_cstr(&p, history ? history : "shared");
    rc = cli_call_show(o, "group.create", &p, CREATED_FIELDS, 0);
  }
  g_free(history);
  return rc;
}

static int group_list(cli_opts *o, int argc, char **argv) {
  return cli_run_simple(o, &LIST, argc, argv);
}

static int group_info(cli_opts *o, int argc, char **argv) {
  return cli_run_simple(o, &INFO, argc, argv);
}

static int group_members(cli_opts *o, int argc, char **argv) {
  return cli_run_simple(o, &MEMBERS, argc, argv);
}

static const cli_cmd GROUP_COMMANDS[] = {
    {"create", group_create, "make a group (you are its owner)"},
    {"list", group_list, "your groups"},
    {"info", group_info, "a group's state as this node sees it"},
    {"members", group_members, "members of a group"},
    {NULL, NULL, NULL},
};

int cli_cmd_group(cli_opts *o, int argc, char **argv) {
  return cli_dispatch(o, "group", GROUP_COMMANDS, argc, argv);
}
