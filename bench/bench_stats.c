/* kith-bench gossip-stats: the gossip counters of a running node
 * (`gossip.stats`, docs/protocol.md 12.3), one JSON line per running
 * engine, for the benchmark scripts to show where a sync stands. */
#include <stdio.h>

#include "bench.h"
#include "cli/cli.h"
#include "cli/out.h"
#include "cli/rpc.h"

#define STATS_TIMEOUT_MS 5000
#define USAGE "--home DIR"

int bench_gossip_stats(int argc, char **argv) {
  const char *home = NULL;
  const bench_opt table[] = {{"--home", BENCH_OPT_STR, &home, 0, 0}};
  int rc = bench_parse("gossip-stats", USAGE, argc, argv, table,
                       G_N_ELEMENTS(table));
  if (rc >= 0)
    return rc;
  if (!home) {
    fprintf(stderr, "kith-bench gossip-stats: --home is required\n");
    return 2;
  }
  cli_opts co = {.home = g_strdup(home), .home_given = 1};
  cli_rpc *r = NULL;
  kith_pack p;
  const msgpack_object *res = NULL;
  rc = cli_rpc_open(&co, &r);
  if (rc == CLI_OK)
    rc = cli_rpc_call(r, "gossip.stats", cli_no_params(&p), STATS_TIMEOUT_MS,
                      NULL, NULL, &res);
  if (rc == CLI_OK && res->type == MSGPACK_OBJECT_ARRAY)
    for (uint32_t i = 0; i < res->via.array.size; i++)
      cli_out_json(&res->via.array.ptr[i]);
  cli_rpc_free(r);
  g_free(co.home);
  return rc == CLI_OK ? 0 : 1;
}
