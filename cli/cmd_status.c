/* kith id, kith status, kith peers: what the node says about itself. */
#include "rpc.h"

const cli_field CLI_ID_FIELDS[] = {
    {"node_id", "node id", NULL}, {"name", "name", NULL}, {NULL, NULL, NULL}};

static const cli_field STATUS_FIELDS[] = {{"node_id", "node id", NULL},
                                          {"name", "name", NULL},
                                          {"port", "port", NULL},
                                          {"peers", "peers", NULL},
                                          {"groups", "groups", NULL},
                                          {"uptime_s", "uptime", " s"},
                                          {NULL, NULL, NULL}};

static const cli_simple STATUS = {
    .cmd = "status",
    .method = "status",
    .summary = "Is the node up; how many peers and groups.",
    .fields = STATUS_FIELDS};

static const cli_field PEER_FIELDS[] = {
    {"node_id", NULL, NULL}, {"name", NULL, NULL}, {"path", NULL, NULL},
    {"path_s", "for", " s"}, {"addr", NULL, NULL}, {"rtt_ms", NULL, " ms"},
    {NULL, NULL, NULL}};

static const cli_simple PEERS = {
    .cmd = "peers",
    .method = "peers",
    .summary =
        "List connected peers: id, name, path (host, srflx, prflx, relay, "
        "friend-relay) and for how long, address, round-trip time.",
    .fields = PEER_FIELDS,
    .rows = 1};

static void quiet(const char *msg, void *ud) {}

/* Asks the running node, else reads the home. */
int cli_cmd_id(cli_opts *o, int argc, char **argv) {
  char *pass_file = NULL;
  const GOptionEntry entries[] = {
      {"passphrase-file", 0, 0, G_OPTION_ARG_FILENAME, &pass_file,
       "When no node runs and the home has a passphrase: read it from FILE",
       "FILE"},
      G_OPTION_ENTRY_NULL};
  int rc = cli_parse(o, "id", NULL, 0,
                     "Print this node's id and name (from the running node, "
                     "else from the home).",
                     entries, &argc, &argv);
  cli_rpc *r = NULL;
  if (rc == CLI_OK) {
    cli_set_error_sink(quiet, NULL);
    int up = cli_rpc_open(o, &r);
    cli_set_error_sink(NULL, NULL);
    if (up == CLI_NO_NODE)
      rc = cli_id_from_home(o, pass_file);
    else if (up != CLI_OK)
      rc = cli_rpc_open(o, &r); /* says why */
    else
      rc = CLI_OK;
  }
  if (r != NULL) {
    const msgpack_object *res = NULL;
    kith_pack p;
    rc = cli_rpc_call(r, "id", cli_no_params(&p), CLI_CALL_TIMEOUT_MS, NULL,
                      NULL, &res);
    if (rc == CLI_OK)
      cli_out_map(o, res, CLI_ID_FIELDS);
    cli_rpc_free(r);
  }
  g_free(pass_file);
  return rc;
}

int cli_cmd_status(cli_opts *o, int argc, char **argv) {
  return cli_run_simple(o, &STATUS, argc, argv);
}

int cli_cmd_peers(cli_opts *o, int argc, char **argv) {
  return cli_run_simple(o, &PEERS, argc, argv);
}
