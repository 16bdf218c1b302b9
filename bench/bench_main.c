/* kith-bench: dispatches the benchmark subcommands and states the
 * conditions they ran under. */
#include <glib.h>
#include <json-glib/json-glib.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
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
     "decrypt+store of N message events vs the raw Ed25519 verify rate"},
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
