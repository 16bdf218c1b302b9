/* kith invite [list|revoke], kith join: invite codes. */
#include <stdio.h>
#include <string.h>

#include "../core/group.h"
#include "rpc.h"

#define CLI_MAX_TTL_S (365ull * 24 * 3600) /* as the node allows */
#define CLI_MAX_JOIN_TIMEOUT_S (24 * 3600)
#define CLI_JOIN_GRACE_S 5 /* the node answers a timed-out join itself */

static const cli_field CODE_FIELDS[] = {{"code", NULL, NULL},
                                        {NULL, NULL, NULL}};

static const cli_field JOINED_FIELDS[] = {
    {"group_id", "group id", NULL}, {"name", "name", NULL}, {NULL, NULL, NULL}};

static const cli_field INVITE_FIELDS[] = {{"invite_id", NULL, NULL},
                                          {"by_name", NULL, NULL},
                                          {"uses_left", NULL, " uses left"},
                                          {"expires_ms", NULL, CLI_FMT_TIME},
                                          {NULL, NULL, NULL}};

static const cli_simple LIST = {
    .cmd = "invite list",
    .method = "invite.list",
    .params = "GROUP",
    .nargs = 1,
    .summary = "List GROUP's live invites: id, who made it, uses left, "
               "expiry.",
    .fields = INVITE_FIELDS,
    .rows = 1};

static const cli_simple REVOKE = {
    .cmd = "invite revoke",
    .method = "invite.revoke",
    .params = "GROUP INVITE",
    .nargs = 2,
    .summary = "Revoke an invite: INVITE is its id, a unique prefix, or the "
               "kith: code itself (its maker, an owner or an admin).",
    .fields = CLI_EVENT_FIELDS};

/* Options of kith invite that take a value in the next word. */
static int takes_value(const char *a) {
  return strcmp(a, "--uses") == 0 || strcmp(a, "--ttl") == 0 ||
         strcmp(a, "--home") == 0;
}

/* "kith invite list G" and "kith invite revoke G I" are subcommands; "kith
 * invite list" alone invites to a group named list. */
static const cli_simple *subcommand(int argc, char **argv, int *at) {
  int first = 0, count = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      count += argc - i - 1;
      first = first ? first : (i + 1 < argc ? i + 1 : 0);
      break;
    }
    if (argv[i][0] == '-' && argv[i][1] != '\0') {
      i += takes_value(argv[i]);
      continue;
    }
    first = first ? first : i;
    count++;
  }
  if (first == 0 || count < 2)
    return NULL;
  *at = first;
  if (strcmp(argv[first], "list") == 0)
    return &LIST;
  return strcmp(argv[first], "revoke") == 0 ? &REVOKE : NULL;
}

int cli_cmd_invite(cli_opts *o, int argc, char **argv) {
  int at = 0;
  const cli_simple *sub = subcommand(argc, argv, &at);
  if (sub != NULL) {
    /* The subcommand word goes first, as cli_dispatch does it. */
    char *word = argv[at];
    memmove(&argv[2], &argv[1], sizeof(char *) * (size_t)(at - 1));
    argv[1] = word;
    return cli_run_simple(o, sub, argc - 1, argv + 1);
  }
  gint uses = 1;
  char *ttl_text = NULL;
  uint64_t ttl = 24 * 3600;
  const GOptionEntry entries[] = {
      {"uses", 0, 0, G_OPTION_ARG_INT, &uses,
       "How many people may join with the code (default 1)", "N"},
      {"ttl", 0, 0, G_OPTION_ARG_STRING, &ttl_text,
       "How long the code stays valid: 30s, 10m, 24h (default), 7d",
       "DURATION"},
      G_OPTION_ENTRY_NULL};
  int rc = cli_parse(o, "invite", "GROUP", 1, "Print an invite code for GROUP.",
                     entries, &argc, &argv);
  if (rc == CLI_OK && (uses < 1 || uses > KITH_INVITE_MAX_USES))
    rc = cli_usage("invite", "--uses must be 1 to %d", KITH_INVITE_MAX_USES);
  if (rc == CLI_OK)
    rc = cli_duration_option("invite", "--ttl", ttl_text, CLI_MAX_TTL_S, &ttl);
  g_free(ttl_text);
  if (rc != CLI_OK)
    return rc;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 3);
  kith_pack_cstr(&p, argv[1]);
  kith_pack_uint(&p, (uint64_t)uses);
  kith_pack_uint(&p, ttl);
  return cli_call_show(o, "invite", &p, CODE_FIELDS, 0);
}

/* Progress lines go to stderr in both output modes. */
static void on_progress(const char *method, const msgpack_object *params,
                        void *ud) {
  if (strcmp(method, "progress") != 0 || params->via.array.size < 1 ||
      params->via.array.ptr[0].type != MSGPACK_OBJECT_STR)
    return;
  char *text = cli_out_text(&params->via.array.ptr[0], NULL, 0);
  fprintf(stderr, "kith: %s\n", text);
  g_free(text);
}

static int join_call(cli_opts *o, const char *code, gint timeout) {
  cli_rpc *r = NULL;
  int rc = cli_rpc_open(o, &r);
  if (rc != CLI_OK)
    return rc;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 2);
  kith_pack_cstr(&p, code);
  kith_pack_uint(&p, (uint64_t)timeout);
  const msgpack_object *res = NULL;
  rc = cli_rpc_call(r, "join", &p, (timeout + CLI_JOIN_GRACE_S) * 1000,
                    on_progress, NULL, &res);
  if (rc == CLI_OK)
    cli_out_map(o, res, JOINED_FIELDS);
  cli_rpc_free(r);
  return rc;
}

int cli_cmd_join(cli_opts *o, int argc, char **argv) {
  gint timeout = 60;
  const GOptionEntry entries[] = {
      {"timeout", 0, 0, G_OPTION_ARG_INT, &timeout,
       "Give up after this many seconds (default 60)", "SECONDS"},
      G_OPTION_ENTRY_NULL};
  int rc = cli_parse(o, "join", "CODE", 1,
                     "Join a group with an invite code; returns once admitted "
                     "and the history is synced.",
                     entries, &argc, &argv);
  if (rc == CLI_OK && (timeout < 1 || timeout > CLI_MAX_JOIN_TIMEOUT_S))
    rc = cli_usage("join", "--timeout must be 1 to %d seconds",
                   CLI_MAX_JOIN_TIMEOUT_S);
  if (rc != CLI_OK)
    return rc;
  return join_call(o, argv[1], timeout);
}
