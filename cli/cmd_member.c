/* kith kick, ban, unban, mute, unmute, leave, role, topic: changing a
 * group. Each is one call to the node, which makes and spreads the signed
 * event. MEMBER is a node id, a unique prefix of one, or a unique name. */
#include <string.h>

#include "../core/group.h"
#include "rpc.h"

#define CLI_MAX_MUTE_S (365ull * 24 * 3600)

#define MEMBER_CMD(fn, name, summary)                                          \
  int fn(cli_opts *o, int argc, char **argv) {                                 \
    static const cli_simple s = {                                              \
        name, name, "GROUP MEMBER", 2, summary, CLI_EVENT_FIELDS, 0};          \
    return cli_run_simple(o, &s, argc, argv);                                  \
  }

MEMBER_CMD(cli_cmd_kick, "kick",
           "Remove MEMBER (a node id, unique prefix or unique name) from "
           "GROUP and rekey (owner or admin only). A removed member cannot "
           "come back by invite until unbanned.")
MEMBER_CMD(cli_cmd_ban, "ban",
           "Ban MEMBER (a member, or any node id) from GROUP: a member is "
           "removed, and no invite admits the node until it is unbanned "
           "(owner or admin only).")
MEMBER_CMD(cli_cmd_unban, "unban",
           "Lift the ban of MEMBER (a node id, or a unique prefix among the "
           "banned) so an invite may admit it again (owner or admin only).")
MEMBER_CMD(cli_cmd_unmute, "unmute",
           "Let MEMBER post in GROUP again (owner or admin only).")

int cli_cmd_mute(cli_opts *o, int argc, char **argv) {
  char *for_text = NULL;
  uint64_t secs = 0;
  const GOptionEntry entries[] = {
      {"for", 0, 0, G_OPTION_ARG_STRING, &for_text,
       "How long: 30s, 10m, 24h, 7d (at most 365d; default: until "
       "unmuted)",
       "DURATION"},
      G_OPTION_ENTRY_NULL};
  int rc = cli_parse(o, "mute", "GROUP MEMBER", 2,
                     "Stop MEMBER from posting in GROUP (owner or admin "
                     "only); reactions stay allowed.",
                     entries, &argc, &argv);
  if (rc == CLI_OK)
    rc = cli_duration_option("mute", "--for", for_text, CLI_MAX_MUTE_S, &secs);
  g_free(for_text);
  if (rc != CLI_OK)
    return rc;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 3);
  kith_pack_cstr(&p, argv[1]);
  kith_pack_cstr(&p, argv[2]);
  kith_pack_uint(&p, secs);
  return cli_call_show(o, "mute", &p, CLI_EVENT_FIELDS, 0);
}

int cli_cmd_leave(cli_opts *o, int argc, char **argv) {
  static const cli_simple s = {"leave",
                               "leave",
                               "GROUP",
                               1,
                               "Leave GROUP; the others rekey without you.",
                               CLI_EVENT_FIELDS,
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
      CLI_EVENT_FIELDS,
      0};
  return cli_run_simple(o, &s, argc, argv);
}

int cli_cmd_topic(cli_opts *o, int argc, char **argv) {
  int rc = cli_parse(o, "topic", "GROUP TEXT", 2,
                     "Set GROUP's topic: 0 to 256 bytes of text without "
                     "control characters (empty clears it; owner or admin "
                     "only).",
                     NULL, &argc, &argv);
  if (rc == CLI_OK && strlen(argv[2]) > KITH_TOPIC_MAX)
    return cli_error("a topic is 0 to %d bytes of text without control "
                     "characters; this one is %zu bytes",
                     KITH_TOPIC_MAX, strlen(argv[2]));
  if (rc != CLI_OK)
    return rc;
  return cli_call_strs(o, "topic", 2, argv + 1, CLI_EVENT_FIELDS, 0);
}
