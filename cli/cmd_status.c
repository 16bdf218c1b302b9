/* kith id, kith status, kith peers: what the node says about itself. */
#include "rpc.h"

const cli_field CLI_ID_FIELDS[] = {
    {"node_id", "node id", NULL}, {"name", "name", NULL}, {NULL, NULL, NULL}};

static const cli_simple ID = {.cmd = "id",
                              .method = "id",
                              .summary = "Print this node's id and name.",
                              .fields = CLI_ID_FIELDS};

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
    {"node_id", NULL, NULL}, {"name", NULL, NULL},    {"path", NULL, NULL},
    {"addr", NULL, NULL},    {"rtt_ms", NULL, " ms"}, {NULL, NULL, NULL}};

static const cli_simple PEERS = {
    .cmd = "peers",
    .method = "peers",
    .summary =
        "List connected peers: id, name, path (host, srflx, prflx, relay, "
        "friend-relay), address, round-trip time.",
    .fields = PEER_FIELDS,
    .rows = 1};

int cli_cmd_id(cli_opts *o, int argc, char **argv) {
  return cli_run_simple(o, &ID, argc, argv);
}

int cli_cmd_status(cli_opts *o, int argc, char **argv) {
  return cli_run_simple(o, &STATUS, argc, argv);
}

int cli_cmd_peers(cli_opts *o, int argc, char **argv) {
  return cli_run_simple(o, &PEERS, argc, argv);
}
