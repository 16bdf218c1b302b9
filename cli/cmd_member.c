/* kith kick, leave, role, topic: changing a group. Each is one call to the
 * node, which makes and spreads the signed event. */
#include "rpc.h"

static const cli_field EVENT_FIELDS[] = {{"event_id", "event id", NULL},
                                         {NULL, NULL, NULL}};

int cli_cmd_kick(cli_opts *o, int argc, char **argv) {
  static const cli_simple s = {
      "kick",
      "kick",
      "GROUP MEMBER",
      2,
      "Remove MEMBER (a node id, unique prefix or unique name) from GROUP "
      "and rekey (owner or admin only).",
      EVENT_FIELDS,
      0};
  return cli_run_simple(o, &s, argc, argv);
}

int cli_cmd_leave(cli_opts *o, int argc, char **argv) {
  static const cli_simple s = {"leave",
                               "leave",
                               "GROUP",
                               1,
                               "Leave GROUP; the others rekey without you.",
                               EVENT_FIELDS,
                               0};
  return cli_run_simple(o, &s, argc, argv);
}

int cli_cmd_role(cli_opts *o, int argc, char **argv) {
  static const cli_simple s = {
      "role",
      "role",
      "GROUP MEMBER ROLE",
      3,
      "Set MEMBER's role in GROUP to owner, admin or member (owner or admin "
      "only).",
      EVENT_FIELDS,
      0};
  return cli_run_simple(o, &s, argc, argv);
}

int cli_cmd_topic(cli_opts *o, int argc, char **argv) {
  static const cli_simple s = {
      "topic", "topic", "GROUP TEXT", 2, "Set GROUP's topic.", EVENT_FIELDS, 0};
  return cli_run_simple(o, &s, argc, argv);
}
