/* kith-sim: command line and report (CLI.md "Benchmarks and simulator"). */
#include <errno.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "sim.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: kith-sim --nodes N [--messages M] [--loss P] [--crash P]\n"
          "                [--late P] [--latency-ms L] [--seed S]\n"
          "                [--interval-ms I] [--payload-bytes B]\n"
          "                [--beats SECONDS] [--json]\n"
          "Runs the real gossip engine on N simulated nodes of one group in\n"
          "virtual time. --loss: fraction of frames lost; --crash: fraction\n"
          "of nodes killed between the first and the last message; --late:\n"
          "fraction of nodes that join after the last message and catch up\n"
          "the history by reconciliation, as joining nodes do;\n"
          "--interval-ms: one message per interval (default 1000);\n"
          "--beats: every node also sends presence beats (ephemeral\n"
          "payloads, one per period of the group's size) for SECONDS from\n"
          "the first message on; the traffic per node and second is\n"
          "measured after the first period (use --messages 1 to see the\n"
          "beats' cost alone).\n");
}

static int num(const char *s, double lo, double hi, double *v) {
  char *end;
  errno = 0;
  double d = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || d < lo || d > hi)
    return -1;
  *v = d;
  return 0;
}

static int parse(int argc, char **argv, sim_params *p, int *json) {
  double v;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--json") == 0) {
      *json = 1;
      continue;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      exit(0);
    }
    if (i + 1 >= argc)
      return -1;
    const char *s = argv[++i];
    if (strcmp(a, "--nodes") == 0 && !num(s, 2, SIM_MAX_NODES, &v))
      p->nodes = (uint32_t)v;
    else if (strcmp(a, "--messages") == 0 && !num(s, 1, SIM_MAX_MESSAGES, &v))
      p->messages = (uint32_t)v;
    else if (strcmp(a, "--loss") == 0 && !num(s, 0, 0.9, &v))
      p->loss = v;
    else if (strcmp(a, "--crash") == 0 && !num(s, 0, 0.9, &v))
      p->crash = v;
    else if (strcmp(a, "--late") == 0 && !num(s, 0, 0.5, &v))
      p->late = v;
    else if (strcmp(a, "--latency-ms") == 0 && !num(s, 0, 60000, &v))
      p->latency_ms = (uint32_t)v;
    else if (strcmp(a, "--interval-ms") == 0 && !num(s, 1, 3600000, &v))
      p->interval_ms = (uint32_t)v;
    else if (strcmp(a, "--seed") == 0 && !num(s, 0, 9007199254740992.0, &v))
      p->seed = (uint64_t)v;
    else if (strcmp(a, "--beats") == 0 && !num(s, 1, 86400, &v))
      p->beats_s = (uint32_t)v;
    else if (strcmp(a, "--payload-bytes") == 0 &&
             !num(s, 4, SIM_MAX_PAYLOAD, &v))
      p->payload_bytes = (uint32_t)v;
    else
      return -1;
  }
  return p->nodes >= 2 ? 0 : -1;
}

static void cpu_model(char *buf, size_t n) {
  snprintf(buf, n, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f == NULL)
    return;
  char line[512];
  while (fgets(line, sizeof line, f) != NULL) {
    char *c = strchr(line, ':');
    if (strncmp(line, "model name", 10) == 0 && c != NULL) {
      snprintf(buf, n, "%s", c + 2);
      buf[strcspn(buf, "\n")] = '\0';
      break;
    }
  }
  fclose(f);
}

static const char *build_type(void) {
#ifdef __OPTIMIZE__
  return "optimized (" __VERSION__ ")";
#else
  return "unoptimized (" __VERSION__ ")";
#endif
}

#define ADD_INT(b, k, v)                                                       \
  do {                                                                         \
    json_builder_set_member_name(b, k);                                        \
    json_builder_add_int_value(b, (gint64)(v));                                \
  } while (0)
#define ADD_DBL(b, k, v)                                                       \
  do {                                                                         \
    json_builder_set_member_name(b, k);                                        \
    json_builder_add_double_value(b, v);                                       \
  } while (0)
#define ADD_STR(b, k, v)                                                       \
  do {                                                                         \
    json_builder_set_member_name(b, k);                                        \
    json_builder_add_string_value(b, v);                                       \
  } while (0)

static void print_json(const sim_params *p, const sim_result *r,
                       const char *machine, double wall) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  ADD_INT(b, "nodes", r->nodes);
  ADD_DBL(b, "delivered_ratio", r->delivered_ratio);
  ADD_INT(b, "late_joiners", r->late);
  ADD_INT(b, "late_expected", r->late_expected);
  ADD_INT(b, "late_delivered", r->late_delivered);
  ADD_DBL(b, "copies_per_node_per_msg", r->copies_per_node_per_msg);
  ADD_INT(b, "hops_p50", r->hops_p50);
  ADD_INT(b, "hops_p99", r->hops_p99);
  ADD_INT(b, "latency_ms_p50", r->latency_ms_p50);
  ADD_INT(b, "latency_ms_p99", r->latency_ms_p99);
  ADD_DBL(b, "bytes_per_node_per_msg", r->bytes_per_node_per_msg);
  ADD_DBL(b, "copies_after_first_msg", r->copies_after_first);
  ADD_INT(b, "messages", r->messages);
  ADD_INT(b, "live_nodes", r->live);
  ADD_DBL(b, "loss", p->loss);
  ADD_DBL(b, "crash", p->crash);
  ADD_DBL(b, "late", p->late);
  ADD_INT(b, "latency_ms", p->latency_ms);
  ADD_INT(b, "payload_bytes", p->payload_bytes);
  ADD_INT(b, "interval_ms", p->interval_ms);
  ADD_INT(b, "seed", p->seed);
  ADD_INT(b, "deliveries_expected", r->expected);
  ADD_INT(b, "deliveries", r->delivered);
  ADD_INT(b, "grafts", r->grafts);
  ADD_INT(b, "prunes", r->prunes);
  ADD_INT(b, "recon_rounds", r->recon_rounds);
  ADD_INT(b, "active_view_max", r->active_max_seen);
  ADD_DBL(b, "active_view_avg", r->active_avg);
  ADD_INT(b, "frames", r->frames);
  ADD_INT(b, "events", r->events);
  ADD_INT(b, "virtual_ms", r->virtual_ms);
  ADD_INT(b, "beats_s", p->beats_s);
  ADD_INT(b, "beat_period_ms", r->beat_period_ms);
  ADD_INT(b, "beats_sent", r->beats_sent);
  ADD_INT(b, "beat_deliveries_expected", r->beats_expected);
  ADD_INT(b, "beat_deliveries", r->beats_delivered);
  ADD_DBL(b, "bytes_per_node_per_s", r->beat_bytes_per_node_s);
  ADD_DBL(b, "frames_per_node_per_s", r->beat_frames_per_node_s);
  ADD_STR(b, "build", build_type());
  ADD_STR(b, "machine", machine);
  ADD_DBL(b, "wall_s", wall);
  json_builder_end_object(b);
  JsonGenerator *gen = json_generator_new();
  JsonNode *root = json_builder_get_root(b);
  json_generator_set_root(gen, root);
  gchar *s = json_generator_to_data(gen, NULL);
  printf("%s\n", s);
  g_free(s);
  json_node_unref(root);
  g_object_unref(gen);
  g_object_unref(b);
}

static void print_human(const sim_params *p, const sim_result *r,
                        const char *machine, double wall) {
  printf("kith-sim: %u nodes (%u live at the end), %u messages of %u bytes\n",
         r->nodes, r->live, r->messages, p->payload_bytes);
  printf("  conditions: loss %.3f, crash %.3f, late %.3f, latency %u ms "
         "+-50%%, seed %llu\n",
         p->loss, p->crash, p->late, p->latency_ms,
         (unsigned long long)p->seed);
  printf("  delivered_ratio          %.6f (%llu of %llu)\n", r->delivered_ratio,
         (unsigned long long)r->delivered, (unsigned long long)r->expected);
  if (r->late > 0)
    printf("  late joiners             %u caught up %llu of %llu\n", r->late,
           (unsigned long long)r->late_delivered,
           (unsigned long long)r->late_expected);
  printf("  copies_per_node_per_msg  %.3f (%.3f after the first message)\n",
         r->copies_per_node_per_msg, r->copies_after_first);
  printf("  hops p50/p99             %u / %u\n", r->hops_p50, r->hops_p99);
  printf("  latency_ms p50/p99       %llu / %llu\n",
         (unsigned long long)r->latency_ms_p50,
         (unsigned long long)r->latency_ms_p99);
  printf("  bytes_per_node_per_msg   %.0f\n", r->bytes_per_node_per_msg);
  printf("  active view avg/max      %.2f / %u\n", r->active_avg,
         r->active_max_seen);
  printf("  grafts %llu, prunes %llu, recon rounds %llu\n",
         (unsigned long long)r->grafts, (unsigned long long)r->prunes,
         (unsigned long long)r->recon_rounds);
  if (p->beats_s > 0)
    printf("  presence beats           every %.1f s +-25 %% for %u s: %llu "
           "sent, %llu of %llu deliveries; %.0f bytes and %.1f frames per "
           "node per s\n",
           r->beat_period_ms / 1000.0, p->beats_s,
           (unsigned long long)r->beats_sent,
           (unsigned long long)r->beats_delivered,
           (unsigned long long)r->beats_expected, r->beat_bytes_per_node_s,
           r->beat_frames_per_node_s);
  printf("  build %s; machine %s; wall %.2f s (virtual %.1f s, %llu events)\n",
         build_type(), machine, wall, r->virtual_ms / 1000.0,
         (unsigned long long)r->events);
}

int main(int argc, char **argv) {
  sim_params p = {.messages = 50,
                  .latency_ms = 50,
                  .interval_ms = 1000,
                  .seed = 1,
                  .payload_bytes = 256,
                  .detect_ms = 1000,
                  .drain_ms = 30000,
                  .contacts = 3};
  int json = 0;
  if (parse(argc, argv, &p, &json) != 0) {
    usage(stderr);
    return 2;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  sim_result r;
  if (sim_run(&p, &r) != 0) {
    fprintf(stderr,
            "kith-sim: error: sizes out of range (nodes x messages "
            "at most %llu)\n",
            (unsigned long long)SIM_MAX_CELLS);
    return 1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double wall = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  struct utsname u;
  char cpu[256], machine[400];
  cpu_model(cpu, sizeof cpu);
  if (uname(&u) == 0)
    snprintf(machine, sizeof machine, "%s %s, %s", u.sysname, u.machine, cpu);
  else
    snprintf(machine, sizeof machine, "%s", cpu);
  if (json)
    print_json(&p, &r, machine, wall);
  else
    print_human(&p, &r, machine, wall);
  return 0;
}
