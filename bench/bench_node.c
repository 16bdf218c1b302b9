/* kith-bench node: what a real `kith node` costs on a given home (one that
 * kith-bench build-store wrote, or any other).
 *
 * It starts `kith --home DIR node --port 0 --bind 127.0.0.1` --starts
 * times and measures, from the spawn, the time until the control socket
 * answers a `status` request (polled every millisecond), stopping the node
 * (SIGTERM) between starts. On the last start it waits --idle-ms and reads
 * VmRSS, VmHWM, RssAnon and RssFile from /proc/PID/status and Pss from
 * /proc/PID/smaps_rollup (idle), then over one control
 * connection asks --logs times for `log [GROUP, 50]` (what `kith log -n
 * 50` asks first) and runs `kith log GROUP -n 50` --logs times as a
 * process (its output discarded), reads the memory again, then sends
 * --sends messages one after another (`send`, each acknowledged only once
 * committed to the store), timing each round trip, and reads the memory a
 * last time. The time to start a `kith --version` process is measured
 * too: it is the part of a command's time that is not the node's. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "cli/cli.h"
#include "cli/out.h"
#include "cli/rpc.h"
#include "core/home.h"

extern char **environ;

#define START_TIMEOUT_S 300.0 /* a node that does not answer by then fails */
#define STOP_TIMEOUT_S 60.0
#define POLL_US 1000
#define LOG_COUNT 50
#define RPC_TIMEOUT_MS 60000
#define EXEC_SAMPLES 5

#define USAGE                                                                  \
  "--kith PATH --home DIR [--group NAME] [--starts N] [--idle-ms MS] "         \
  "[--logs N] [--sends N] [--text-bytes B] [--node-log FILE] [--json]"

typedef struct opts {
  const char *kith, *home, *group, *node_log;
  long starts, idle_ms, logs, sends, text_bytes;
  int json;
} opts;

typedef struct mem {
  long rss_kb, hwm_kb;
  long anon_kb, file_kb; /* RssAnon, RssFile: the heap and stacks, and
                            mapped files (mostly shared libraries) */
  long pss_kb; /* shared pages divided among the processes that map them */
} mem;

typedef struct result {
  double *starts; /* seconds from spawn to the first status answer */
  double exec_s;  /* median start of a `kith --version` process */
  mem idle, after_log, after_send;
  double *log_rpc, *log_cli, *send; /* seconds per call */
  uint64_t events;                  /* the group's, before the sends */
  uint64_t db_bytes;
} result;

static int parse_opts(int argc, char **argv, opts *o) {
  *o = (opts){.group = "bench",
              .starts = 3,
              .idle_ms = 2000,
              .logs = 20,
              .sends = 200,
              .text_bytes = 100};
  const bench_opt table[] = {
      {"--kith", BENCH_OPT_STR, &o->kith, 0, 0},
      {"--home", BENCH_OPT_STR, &o->home, 0, 0},
      {"--group", BENCH_OPT_STR, &o->group, 0, 0},
      {"--node-log", BENCH_OPT_STR, &o->node_log, 0, 0},
      {"--starts", BENCH_OPT_LONG, &o->starts, 1, 100},
      {"--idle-ms", BENCH_OPT_LONG, &o->idle_ms, 0, 600000},
      {"--logs", BENCH_OPT_LONG, &o->logs, 1, 10000},
      {"--sends", BENCH_OPT_LONG, &o->sends, 1, 1000000},
      {"--text-bytes", BENCH_OPT_LONG, &o->text_bytes, 1, KITH_TEXT_MAX - 1},
      {"--json", BENCH_OPT_FLAG, &o->json, 0, 0},
  };
  int rc = bench_parse("node", USAGE, argc, argv, table, G_N_ELEMENTS(table));
  if (rc < 0 && (!o->kith || !o->home)) {
    fprintf(stderr, "usage: kith-bench node %s\n", USAGE);
    return 2;
  }
  return rc;
}

/* ---- the node process ---- */

static pid_t spawn_node(const opts *o) {
  char *argv[] = {(char *)o->kith, "--home",    (char *)o->home,
                  "node",          "--port",    "0",
                  "--bind",        "127.0.0.1", NULL};
  posix_spawn_file_actions_t fa;
  pid_t pid = -1;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1,
                                   o->node_log ? o->node_log : "/dev/null",
                                   O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  int rc = posix_spawn(&pid, o->kith, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    fprintf(stderr, "kith-bench node: cannot start %s: %s\n", o->kith,
            strerror(rc));
    return -1;
  }
  return pid;
}

/* 1 once pid has exited (reaped). */
static int has_exited(pid_t pid) {
  int st;
  return waitpid(pid, &st, WNOHANG) == pid;
}

static int stop_node(pid_t pid) {
  kill(pid, SIGTERM);
  double t = bench_now();
  while (bench_now() - t < STOP_TIMEOUT_S) {
    if (has_exited(pid))
      return 1;
    g_usleep(10000);
  }
  fprintf(stderr,
          "kith-bench node: the node did not stop in %.0f s; "
          "killed\n",
          STOP_TIMEOUT_S);
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  return 0;
}

static void drop_error(const char *msg, void *ud) {}

/* Connects and asks `status` until the node answers (*r stays connected),
 * or it exits (*exited set: it is reaped), or START_TIMEOUT_S passes.
 * Returns the seconds since t0, or -1. Tries to connect only once the
 * socket file is there (cli_rpc_open prints "no node is running" on
 * stderr before, past the error sink). */
static double wait_answer(const cli_opts *co, pid_t pid, double t0, cli_rpc **r,
                          int *exited) {
  char *sock = kith_home_path(co->home, KITH_HOME_SOCKET_FILE);
  cli_set_error_sink(drop_error, NULL);
  double t = -1;
  while (t < 0 && bench_now() - t0 < START_TIMEOUT_S &&
         !(*exited = has_exited(pid))) {
    kith_pack p;
    const msgpack_object *res = NULL;
    /* cli_rpc_call clears the params, so they are made once connected */
    if (g_file_test(sock, G_FILE_TEST_EXISTS) &&
        cli_rpc_open(co, r) == CLI_OK &&
        cli_rpc_call(*r, "status", cli_no_params(&p), RPC_TIMEOUT_MS, NULL,
                     NULL, &res) == CLI_OK) {
      t = bench_now() - t0;
      break;
    }
    cli_rpc_free(*r);
    *r = NULL;
    g_usleep(POLL_US);
  }
  cli_set_error_sink(NULL, NULL);
  g_free(sock);
  return t;
}

/* The value of the line "name: N kB" of a /proc file's text, or -1. */
static long proc_field(const char *text, const char *name) {
  size_t n = strlen(name);
  for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : 0)
    if (strncmp(l, name, n) == 0 && l[n] == ':')
      return strtol(l + n + 1, NULL, 10);
  return -1;
}

static mem read_mem(pid_t pid) {
  mem m = {-1, -1, -1, -1, -1};
  char path[64], *text = NULL;
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  if (g_file_get_contents(path, &text, NULL, NULL)) {
    m.rss_kb = proc_field(text, "VmRSS");
    m.hwm_kb = proc_field(text, "VmHWM");
    m.anon_kb = proc_field(text, "RssAnon");
    m.file_kb = proc_field(text, "RssFile");
    g_free(text);
  }
  snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
  if (g_file_get_contents(path, &text, NULL, NULL)) {
    m.pss_kb = proc_field(text, "Pss");
    g_free(text);
  }
  return m;
}

/* ---- calls ---- */

/* One request; returns its round-trip time in seconds, or -1 (printed). */
static double timed_call(cli_rpc *r, const char *method, kith_pack *p,
                         const msgpack_object **res) {
  double t = bench_now();
  if (cli_rpc_call(r, method, p, RPC_TIMEOUT_MS, NULL, NULL, res) != CLI_OK)
    return -1;
  return bench_now() - t;
}

static double call_log(cli_rpc *r, const opts *o) {
  kith_pack p;
  const msgpack_object *res = NULL;
  kith_pack_init(&p);
  kith_pack_array(&p, 2);
  kith_pack_cstr(&p, o->group);
  kith_pack_uint(&p, LOG_COUNT);
  double t = timed_call(r, "log", &p, &res);
  return t >= 0 && res->type == MSGPACK_OBJECT_ARRAY ? t : -1;
}

static double call_send(cli_rpc *r, const opts *o, long i, char *text) {
  kith_pack p;
  const msgpack_object *res = NULL;
  bench_text(text, (size_t)o->text_bytes, (uint64_t)i);
  kith_pack_init(&p);
  kith_pack_array(&p, 2);
  kith_pack_cstr(&p, o->group);
  kith_pack_cstr(&p, text);
  return timed_call(r, "send", &p, &res);
}

/* The group's event count (group.info "events"). */
static int group_events(cli_rpc *r, const opts *o, uint64_t *n) {
  kith_pack p;
  const msgpack_object *res = NULL;
  kith_pack_init(&p);
  kith_pack_array(&p, 1);
  kith_pack_cstr(&p, o->group);
  if (timed_call(r, "group.info", &p, &res) < 0)
    return 0;
  const msgpack_object *ev = cli_map_get(res, "events");
  if (!ev || ev->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
    return 0;
  *n = ev->via.u64;
  return 1;
}

/* Runs a kith command (argv after the program) and returns its wall time
 * in seconds, or -1 if it failed. */
static double timed_command(const opts *o, const char *const *args) {
  GPtrArray *argv = g_ptr_array_new();
  g_ptr_array_add(argv, (char *)o->kith);
  for (size_t i = 0; args[i]; i++)
    g_ptr_array_add(argv, (char *)args[i]);
  g_ptr_array_add(argv, NULL);
  int status = -1;
  GError *err = NULL;
  double t = bench_now();
  gboolean ok =
      g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_STDOUT_TO_DEV_NULL,
                   NULL, NULL, NULL, NULL, &status, &err);
  t = bench_now() - t;
  g_ptr_array_free(argv, TRUE);
  if (!ok || !g_spawn_check_wait_status(status, &err)) {
    char *cmd = g_strjoinv(" ", (char **)args);
    fprintf(stderr, "kith-bench node: kith %s failed: %s\n", cmd,
            err ? err->message : "?");
    g_free(cmd);
    g_clear_error(&err);
    return -1;
  }
  return t;
}

static double exec_time(const opts *o) {
  static const char *const args[] = {"--version", NULL};
  double v[EXEC_SAMPLES];
  for (size_t i = 0; i < EXEC_SAMPLES; i++)
    if ((v[i] = timed_command(o, args)) < 0)
      return -1;
  return bench_percentile(v, EXEC_SAMPLES, 50);
}

/* The measurements on a running node (see the top). */
static int measure_running(const opts *o, cli_rpc *r, pid_t pid, result *res) {
  const char *const log_args[] = {"--home", o->home, "log", o->group,
                                  "-n",     "50",    NULL};
  char *text = g_malloc((size_t)o->text_bytes + 1);
  int ok = 1;
  g_usleep((gulong)o->idle_ms * 1000);
  res->idle = read_mem(pid);
  ok = group_events(r, o, &res->events);
  for (long i = 0; ok && i < o->logs; i++)
    ok = (res->log_rpc[i] = call_log(r, o)) >= 0;
  for (long i = 0; ok && i < o->logs; i++)
    ok = (res->log_cli[i] = timed_command(o, log_args)) >= 0;
  res->after_log = read_mem(pid);
  for (long i = 0; ok && i < o->sends; i++)
    ok = (res->send[i] = call_send(r, o, i, text)) >= 0;
  res->after_send = read_mem(pid);
  g_free(text);
  return ok;
}

static int run(const opts *o, result *res) {
  cli_opts co = {.home = g_strdup(o->home), .home_given = 1};
  int ok = (res->exec_s = exec_time(o)) >= 0;
  for (long i = 0; ok && i < o->starts; i++) {
    cli_rpc *r = NULL;
    int exited = 0;
    double t0 = bench_now();
    pid_t pid = spawn_node(o);
    ok = pid > 0 &&
         (res->starts[i] = wait_answer(&co, pid, t0, &r, &exited)) >= 0;
    if (pid > 0 && !ok)
      fprintf(stderr, "kith-bench node: the node did not answer%s\n",
              o->node_log ? "; see its log" : "");
    if (ok && i == o->starts - 1)
      ok = measure_running(o, r, pid, res);
    cli_rpc_free(r);
    if (pid > 0 && !exited)
      ok = stop_node(pid) && ok;
  }
  g_free(co.home);
  char *db = kith_home_path(o->home, KITH_HOME_DB_FILE);
  res->db_bytes = bench_file_size(db);
  g_free(db);
  return ok;
}

/* ---- output ---- */

typedef struct stats {
  double p50, p99, min, max;
} stats;

static stats stats_of(double *v, long n) {
  stats s;
  s.p50 = bench_percentile(v, (size_t)n, 50); /* sorts v */
  s.p99 = bench_percentile(v, (size_t)n, 99);
  s.min = v[0];
  s.max = v[n - 1];
  return s;
}

static void print_result(const opts *o, result *res) {
  stats st = stats_of(res->starts, o->starts);
  stats lr = stats_of(res->log_rpc, o->logs);
  stats lc = stats_of(res->log_cli, o->logs);
  stats sd = stats_of(res->send, o->sends);
  if (o->json) {
    JsonBuilder *b = bench_json_begin("node");
    bench_json_str(b, "home", o->home);
    bench_json_int(b, "events", (int64_t)res->events);
    bench_json_int(b, "db_bytes", (int64_t)res->db_bytes);
    bench_json_int(b, "starts", o->starts);
    bench_json_num(b, "startup_s", st.p50);
    bench_json_num(b, "startup_min_s", st.min);
    bench_json_num(b, "startup_max_s", st.max);
    bench_json_num(b, "exec_s", res->exec_s);
    bench_json_int(b, "rss_idle_kb", res->idle.rss_kb);
    bench_json_int(b, "hwm_idle_kb", res->idle.hwm_kb);
    bench_json_int(b, "rss_anon_idle_kb", res->idle.anon_kb);
    bench_json_int(b, "rss_file_idle_kb", res->idle.file_kb);
    bench_json_int(b, "pss_idle_kb", res->idle.pss_kb);
    bench_json_int(b, "rss_after_log_kb", res->after_log.rss_kb);
    bench_json_int(b, "hwm_after_log_kb", res->after_log.hwm_kb);
    bench_json_int(b, "rss_after_send_kb", res->after_send.rss_kb);
    bench_json_int(b, "hwm_after_send_kb", res->after_send.hwm_kb);
    bench_json_int(b, "logs", o->logs);
    bench_json_num(b, "log_rpc_ms_p50", lr.p50 * 1e3);
    bench_json_num(b, "log_rpc_ms_p99", lr.p99 * 1e3);
    bench_json_num(b, "log_cli_ms_p50", lc.p50 * 1e3);
    bench_json_num(b, "log_cli_ms_max", lc.max * 1e3);
    bench_json_int(b, "sends", o->sends);
    bench_json_int(b, "send_text_bytes", o->text_bytes);
    bench_json_num(b, "send_ms_p50", sd.p50 * 1e3);
    bench_json_num(b, "send_ms_p99", sd.p99 * 1e3);
    bench_json_num(b, "send_ms_max", sd.max * 1e3);
    bench_json_end(b);
    return;
  }
  char *cond = bench_conditions();
  printf("node: %s, group \"%s\" of %llu events, kith.db %.1f MB\n", o->home,
         o->group, (unsigned long long)res->events,
         (double)res->db_bytes / 1e6);
  printf("  start-up to the first status answer: %.3f s median of %ld "
         "(%.3f..%.3f); a `kith --version` process takes %.3f s\n",
         st.p50, o->starts, st.min, st.max, res->exec_s);
  printf("  memory: idle after %ld ms RSS %ld kB (peak %ld kB); after the "
         "logs RSS %ld kB (peak %ld kB); after the sends RSS %ld kB (peak "
         "%ld kB)\n",
         o->idle_ms, res->idle.rss_kb, res->idle.hwm_kb, res->after_log.rss_kb,
         res->after_log.hwm_kb, res->after_send.rss_kb, res->after_send.hwm_kb);
  printf("  idle RSS %ld kB = anonymous %ld kB + mapped files %ld kB "
         "(shared libraries, mostly); PSS %ld kB\n",
         res->idle.rss_kb, res->idle.anon_kb, res->idle.file_kb,
         res->idle.pss_kb);
  printf("  log -n 50: the node answers in %.2f ms median, %.2f ms p99 "
         "(%ld requests); `kith log -n 50` takes %.1f ms median\n",
         lr.p50 * 1e3, lr.p99 * 1e3, o->logs, lc.p50 * 1e3);
  printf("  send (%ld-byte texts, one connection): %.3f ms median, %.3f ms "
         "p99, %.3f ms max (%ld sends)\n",
         o->text_bytes, sd.p50 * 1e3, sd.p99 * 1e3, sd.max * 1e3, o->sends);
  printf("  conditions: %s\n", cond);
  g_free(cond);
}

int bench_node(int argc, char **argv) {
  opts o;
  int rc = parse_opts(argc, argv, &o);
  if (rc >= 0)
    return rc;
  result res = {.starts = g_new0(double, o.starts),
                .log_rpc = g_new0(double, o.logs),
                .log_cli = g_new0(double, o.logs),
                .send = g_new0(double, o.sends)};
  signal(SIGPIPE, SIG_IGN);
  int ok = run(&o, &res);
  if (ok)
    print_result(&o, &res);
  g_free(res.starts);
  g_free(res.log_rpc);
  g_free(res.log_cli);
  g_free(res.send);
  return ok ? 0 : 1;
}
