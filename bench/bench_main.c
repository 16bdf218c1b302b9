/* kith-bench: dispatches the benchmark subcommands and states the
 * conditions they ran under. */
#include <glib.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <sched.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define CPUINFO_MAX (1024 * 1024) /* bytes of /proc/cpuinfo we read */

typedef struct bench_cmd {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *help;
} bench_cmd;

static const bench_cmd cmds[] = {
    {"ingest", bench_ingest,
     "ingest [--events N] [--text-bytes B] [--json]  decode+verify+"
     "decrypt+store of N message events vs the raw Ed25519 verify rate\n"
     "  ingest --history N [--senders S] [--reorder P] [--window W] "
     "[--base N0]\n"
     "         the same into a store-backed group that already holds N "
     "events, S concurrent senders, a fraction P arriving after later "
     "siblings; per-event cost at N against N0 (1000)"},
    {"reconcile", bench_reconcile,
     "reconcile [--items N] [--diff D] [--json]  set reconciliation of two "
     "replicas of N events differing by D"},
    {"link", bench_link,
     "link [--mb N] [--frame BYTES] [--rounds R] [--json]  bulk bytes "
     "through one kith session over two libnice agents vs raw pseudo-TCP"},
    {"mesh", bench_mesh,
     "mesh [--nodes N] [--posts M] [--interval-ms I] [--runs R] [--json]  "
     "N real kith nodes in one group (own network namespace as root): "
     "latency, CPU, bytes per post, GRAFTs and PRUNEs"},
    {"event", bench_event,
     "event [--messages M] [--text-bytes B] [--version V] [--json]  the "
     "overhead of a message event (its bytes minus its text)"},
    {"rekey", bench_rekey,
     "rekey [--members N] [--version V] [--json]  the bytes of one rekey "
     "event in a group of N members"},
    {"build-store", bench_build_store,
     "build-store --home DIR --events N [--text-bytes B] [--nodes K]\n"
     "         [--port-base P] [--halves]  writes a home (K homes DIR/n0..) "
     "holding a group of N messages, through the engine"},
    {"node", bench_node,
     "node --kith PATH --home DIR [--sends N] [--logs N] [--starts N]  "
     "start-up, RSS, log -n 50 and send latency of a real kith node"},
    {"gossip-stats", bench_gossip_stats,
     "gossip-stats --home DIR  the gossip counters of a running node, one "
     "JSON line per group"},
};

static void usage(FILE *f) {
  fprintf(f, "usage: kith-bench <command> [options]\n\ncommands:\n");
  for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++)
    fprintf(f, "  %s\n", cmds[i].help);
  fprintf(f, "\nEach prints a human summary, or with --json one JSON object, "
             "and the conditions it ran under.\n");
}

/* The "model name" line of /proc/cpuinfo (x86), else "Hardware"/"CPU part"
 * (ARM); "unknown" if there is none. */
static char *cpu_model(void) {
  static const char *const keys[] = {"model name", "Hardware", "cpu model"};
  char *text = NULL;
  gsize len = 0;
  char *model = NULL;

  if (!g_file_get_contents("/proc/cpuinfo", &text, &len, NULL))
    return g_strdup("unknown");
  if (len > CPUINFO_MAX)
    text[CPUINFO_MAX] = '\0';
  char **lines = g_strsplit(text, "\n", -1);
  for (size_t k = 0; !model && k < G_N_ELEMENTS(keys); k++) {
    for (char **l = lines; !model && *l; l++) {
      const char *colon = strchr(*l, ':');
      if (colon && g_str_has_prefix(*l, keys[k]))
        model = g_strstrip(g_strdup(colon + 1));
    }
  }
  g_strfreev(lines);
  g_free(text);
  return model ? model : g_strdup("unknown");
}

char *bench_conditions(void) {
  char *cpu = cpu_model();
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
#ifdef __OPTIMIZE__
  const char *build = "optimized";
#else
  const char *build = "unoptimized";
#endif
#if defined(__clang__)
  const char *compiler = __VERSION__; /* says "Clang x.y.z" itself */
#elif defined(__GNUC__)
  const char *compiler = "gcc " __VERSION__;
#else
  const char *compiler = "unknown";
#endif
  char *s = g_strdup_printf("cpu=\"%s\" cores=%ld build=%s compiler=\"%s\" "
                            "libsodium=%s sqlite=%s",
                            cpu, cores, build, compiler,
                            sodium_version_string(), sqlite3_libversion());
  g_free(cpu);
  return s;
}

void bench_print_json(JsonBuilder *b) {
  JsonGenerator *g = json_generator_new();
  JsonNode *root = json_builder_get_root(b);
  json_generator_set_root(g, root);
  char *s = json_generator_to_data(g, NULL);
  printf("%s\n", s);
  fflush(stdout);
  g_free(s);
  json_node_unref(root);
  g_object_unref(g);
  g_object_unref(b);
}

double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t bench_wall_ms(void) {
  return (uint64_t)(g_get_real_time() / 1000);
}

int bench_pin_cpu(void) {
  int cpu = sched_getcpu();
  cpu_set_t set;
  if (cpu < 0)
    return -1;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0 ? cpu : -1;
}

uint64_t bench_rand(uint64_t *state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static const bench_opt *find_opt(const bench_opt *opts, size_t n,
                                 const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(opts[i].name, name) == 0)
      return &opts[i];
  return NULL;
}

/* Sets the option's target from text; 0 if it is not a number in range. */
static int set_opt(const bench_opt *o, const char *text) {
  if (o->kind == BENCH_OPT_STR) {
    *(const char **)o->target = text;
    return 1;
  }
  char *end = NULL;
  double v = o->kind == BENCH_OPT_LONG ? (double)strtol(text, &end, 10)
                                       : strtod(text, &end);
  if (!end || end == text || *end || !isfinite(v) || v < o->min || v > o->max)
    return 0;
  if (o->kind == BENCH_OPT_LONG)
    *(long *)o->target = (long)v;
  else
    *(double *)o->target = v;
  return 1;
}

int bench_parse(const char *cmd, const char *usage, int argc, char **argv,
                const bench_opt *opts, size_t n_opts) {
  for (int i = 1; i < argc; i++) {
    const bench_opt *o = find_opt(opts, n_opts, argv[i]);
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      printf("usage: kith-bench %s %s\n", cmd, usage);
      return 0;
    }
    if (o && o->kind == BENCH_OPT_FLAG) {
      *(int *)o->target = 1;
      continue;
    }
    if (!o || i + 1 >= argc) {
      fprintf(stderr, "usage: kith-bench %s %s\n", cmd, usage);
      return 2;
    }
    if (!set_opt(o, argv[++i])) {
      fprintf(stderr, "kith-bench %s: %s must be %g..%g\n", cmd, o->name,
              o->min, o->max);
      return 2;
    }
  }
  return -1;
}

JsonBuilder *bench_json_begin(const char *benchmark) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  bench_json_str(b, "benchmark", benchmark);
  return b;
}

void bench_json_num(JsonBuilder *b, const char *key, double v) {
  json_builder_set_member_name(b, key);
  json_builder_add_double_value(b, v);
}

void bench_json_int(JsonBuilder *b, const char *key, int64_t v) {
  json_builder_set_member_name(b, key);
  json_builder_add_int_value(b, v);
}

void bench_json_str(JsonBuilder *b, const char *key, const char *v) {
  json_builder_set_member_name(b, key);
  json_builder_add_string_value(b, v);
}

void bench_json_bool(JsonBuilder *b, const char *key, int v) {
  json_builder_set_member_name(b, key);
  json_builder_add_boolean_value(b, v != 0);
}

void bench_json_end(JsonBuilder *b) {
  char *cond = bench_conditions();
  bench_json_str(b, "conditions", cond);
  g_free(cond);
  json_builder_end_object(b);
  bench_print_json(b);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

double bench_percentile(double *v, size_t n, double p) {
  if (n == 0)
    return 0;
  qsort(v, n, sizeof *v, cmp_double);
  size_t rank = (size_t)ceil(p / 100.0 * (double)n);
  return v[rank > 0 ? rank - 1 : 0];
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    usage(stdout);
    return 0;
  }
  if (sodium_init() < 0) {
    fprintf(stderr, "kith-bench: libsodium failed to initialise\n");
    return 1;
  }
  for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++)
    if (strcmp(argv[1], cmds[i].name) == 0)
      return cmds[i].run(argc - 1, argv + 1);
  fprintf(stderr, "kith-bench: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
