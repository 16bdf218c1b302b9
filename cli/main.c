/* kith: the command-line program. Global options, then one subcommand from
 * the table below; see /work/shared/CLI.md for the contract. */
#include <locale.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

#ifndef KITH_VERSION
#define KITH_VERSION "0.1.0"
#endif

static const cli_cmd COMMANDS[] = {
    {"init", cli_cmd_init, "create this node's identity in the home"},
    {"node", cli_cmd_node, "run the node in the foreground"},
    {"id", cli_cmd_id, "print this node's id and name"},
    {"status", cli_cmd_status, "is the node up; counts"},
    {"peers", cli_cmd_peers, "list connected peers"},
    {"group", cli_cmd_group, "create, list and inspect groups"},
    {"invite", cli_cmd_invite, "make, list or revoke invite codes"},
    {"join", cli_cmd_join, "join a group with an invite code"},
    {"send", cli_cmd_send, "post a message (or one per line) to a group"},
    {"log", cli_cmd_log, "print a group's messages and notices"},
    {"chat", cli_cmd_chat, "chat in a group, full screen"},
    {"react", cli_cmd_react, "react to a message with an emoji"},
    {"edit", cli_cmd_edit, "change the text of your message"},
    {"delete", cli_cmd_delete, "delete a message (yours, or as moderator)"},
    {"kick", cli_cmd_kick, "remove a member from a group and rekey"},
    {"ban", cli_cmd_ban, "remove a node and keep it out"},
    {"unban", cli_cmd_unban, "let a banned node be invited again"},
    {"mute", cli_cmd_mute, "stop a member from posting (for a while)"},
    {"unmute", cli_cmd_unmute, "let a muted member post again"},
    {"leave", cli_cmd_leave, "leave a group"},
    {"role", cli_cmd_role, "change a member's role"},
    {"topic", cli_cmd_topic, "set a group's topic"},
    {"friend", cli_cmd_friend, "manage relay friends"},
    {"doctor", cli_cmd_doctor, "connectivity report (NAT, STUN, relays, TURN)"},
    {NULL, NULL, NULL},
};

static void print_help(void) {
  printf("Usage: kith [--home DIR] [--json] COMMAND [ARG...]\n\n"
         "A peer-to-peer group messenger.\n\nCommands:\n");
  for (const cli_cmd *c = COMMANDS; c->name != NULL; c++)
    printf("  %-8s %s\n", c->name, c->help);
  printf("\nGlobal options (before or after the command):\n"
         "  --home DIR  data directory (default: $KITH_HOME, else\n"
         "              $XDG_DATA_HOME/kith, else ~/.local/share/kith)\n"
         "  --json      one JSON object per line on stdout\n"
         "  --help      show help (also 'kith COMMAND --help')\n"
         "  --version   show the version\n"
         "\nExit codes: 0 ok, 1 error, 2 usage error, 3 no node running, "
         "4 timed out.\n");
}

static char *default_home(void) {
  const char *e = g_getenv("KITH_HOME");
  if (e != NULL && *e != '\0')
    return g_strdup(e);
  e = g_getenv("XDG_DATA_HOME");
  if (e != NULL && *e == '/') /* relative values are invalid (XDG spec) */
    return g_build_filename(e, "kith", NULL);
  return g_build_filename(g_get_home_dir(), ".local", "share", "kith", NULL);
}

/* Options before the command. Returns -1 to go on with argv[*i] as the
 * command, else an exit code. */
static int parse_globals(cli_opts *o, int argc, char **argv, int *i) {
  for (*i = 1; *i < argc; (*i)++) {
    const char *a = argv[*i];
    if (strcmp(a, "--json") == 0) {
      o->json = TRUE;
    } else if (strcmp(a, "--home") == 0 || strncmp(a, "--home=", 7) == 0) {
      const char *v = a[6] == '=' ? a + 7 : (*i + 1 < argc ? argv[++*i] : "");
      if (*v == '\0')
        return cli_usage(NULL, "--home needs a directory");
      g_free(o->home);
      o->home = g_strdup(v);
      o->home_given = 1;
    } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      print_help();
      return CLI_OK;
    } else if (strcmp(a, "--version") == 0) {
      printf("kith %s\n", KITH_VERSION);
      return CLI_OK;
    } else if (a[0] == '-') {
      return cli_usage(NULL, "unknown option '%s'", a);
    } else {
      return -1;
    }
  }
  return cli_usage(NULL, "missing command");
}

static int run(cli_opts *o, int argc, char **argv) {
  int i = 0;
  int rc = parse_globals(o, argc, argv, &i);
  if (rc >= 0)
    return rc;
  if (o->home == NULL)
    o->home = default_home();
  for (const cli_cmd *c = COMMANDS; c->name != NULL; c++)
    if (strcmp(c->name, argv[i]) == 0)
      return c->fn(o, argc - i, argv + i);
  return cli_usage(NULL, "unknown command '%s'", argv[i]);
}

int main(int argc, char **argv) {
  setlocale(LC_ALL, "");
  if (sodium_init() < 0) {
    fprintf(stderr, "kith: error: libsodium failed to initialise\n");
    return CLI_ERROR;
  }
  cli_opts o = {0};
  int rc = run(&o, argc, argv);
  g_free(o.home);
  return rc;
}
