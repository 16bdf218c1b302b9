/* kith-bench: shared declarations of the benchmark subcommands. */
#ifndef KITH_BENCH_H
#define KITH_BENCH_H

#include <json-glib/json-glib.h>
#include <stdint.h>

/* Each subcommand parses its own options (argv[0] is its name), prints a
 * human summary or, with --json, one JSON object, and returns an exit
 * code. */
int bench_ingest(int argc, char **argv);
int bench_reconcile(int argc, char **argv);
int bench_link(int argc, char **argv);
int bench_mesh(int argc, char **argv);

/* Conditions every benchmark prints: machine (CPU model, cores), build type,
 * compiler. g_malloc'ed one-line string. */
char *bench_conditions(void);
/* Prints the object b holds (ended) as one line and frees b. */
void bench_print_json(JsonBuilder *b);
/* Monotonic time in seconds (benchmarks may read clocks; core may not). */
double bench_now(void);

#endif
