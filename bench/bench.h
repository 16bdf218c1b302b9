/* kith-bench: shared declarations of the benchmark subcommands. */
#ifndef KITH_BENCH_H
#define KITH_BENCH_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stddef.h>
#include <stdint.h>

#include "core/group.h"
#include "core/store.h"
#include "net/node_int.h" /* STORE_BATCH_MAX */

/* Each subcommand parses its own options (argv[0] is its name), prints a
 * human summary or, with --json, one JSON object, and returns an exit
 * code. */
int bench_ingest(int argc, char **argv);
int bench_reconcile(int argc, char **argv);
int bench_build_store(int argc, char **argv);
int bench_node(int argc, char **argv);
int bench_gossip_stats(int argc, char **argv);
int bench_link(int argc, char **argv);
int bench_mesh(int argc, char **argv);
int bench_event(int argc, char **argv);
int bench_rekey(int argc, char **argv);

/* Conditions every benchmark prints: machine (CPU model, cores), build type,
 * compiler. g_malloc'ed one-line string. */
char *bench_conditions(void);
/* Prints the object b holds (ended) as one line and frees b. */
void bench_print_json(JsonBuilder *b);
/* Monotonic time in seconds (benchmarks may read clocks; core may not). */
double bench_now(void);
/* Wall-clock time in milliseconds since 1970. */
uint64_t bench_wall_ms(void);
/* One core: pins the process to the CPU it runs on, so that the figures
 * are per core. Returns that CPU, or -1. */
int bench_pin_cpu(void);
/* A seeded generator (splitmix64), so that a seed always gives the same
 * run. */
uint64_t bench_rand(uint64_t *state);

/* Options: a table of what a subcommand takes. A FLAG sets an int to 1;
 * LONG and DOUBLE take a number in [min, max]; STR a string (borrowed from
 * argv). */
typedef enum bench_opt_kind {
  BENCH_OPT_FLAG,
  BENCH_OPT_LONG,
  BENCH_OPT_DOUBLE,
  BENCH_OPT_STR,
} bench_opt_kind;
typedef struct bench_opt {
  const char *name; /* "--events" */
  bench_opt_kind kind;
  void *target; /* int*, long*, double* or const char** */
  double min, max;
} bench_opt;
/* Parses argv[1..] by the table. Returns -1 to go on, 0 after --help
 * (usage printed) or 2 on a bad option (printed). */
int bench_parse(const char *cmd, const char *usage, int argc, char **argv,
                const bench_opt *opts, size_t n_opts);

/* JSON output: one object, its first key "benchmark", its last
 * "conditions"; bench_json_end prints it on one line and frees b. */
JsonBuilder *bench_json_begin(const char *benchmark);
void bench_json_num(JsonBuilder *b, const char *key, double v);
void bench_json_int(JsonBuilder *b, const char *key, int64_t v);
void bench_json_str(JsonBuilder *b, const char *key, const char *v);
void bench_json_bool(JsonBuilder *b, const char *key, int v);
void bench_json_end(JsonBuilder *b);

/* The median and the p-th percentile (0..100, nearest rank) of n samples
 * (sorted in place). 0 when n is 0. */
double bench_percentile(double *v, size_t n, double p);

/* ---- groups and stores (bench_group.c) ---- */

/* The store batches of the node (net/node.c node_batch, node_store_flush):
 * the engine writes accepted events into one open transaction, committed
 * after `max` events (the node: STORE_BATCH_MAX, or at the end of a
 * main-loop round), every group flushing what it keeps in memory
 * (kith_group_flush) first. `bad` is set when a write fails. */
#define BENCH_NODE_BATCH STORE_BATCH_MAX
typedef struct bench_batch {
  kith_store *s;
  kith_group *g;
  unsigned max, n;
  int bad;
} bench_batch;
void bench_batch_init(bench_batch *b, kith_store *s, kith_group *g,
                      unsigned max);
/* Before anything that may make the group accept events. */
void bench_batch_open(bench_batch *b);
/* After n events were accepted: commits once max or more are written. */
void bench_batch_add(bench_batch *b, unsigned n);
/* Flushes the group and commits the open transaction, if any. */
void bench_batch_commit(bench_batch *b);

/* A new temporary directory under $TMPDIR (g_malloc'ed path), or NULL. */
char *bench_tmpdir(const char *what);
/* Removes dir and everything in it (it must be one bench_tmpdir made or
 * a home bench_build_store wrote). */
void bench_rmtree(const char *dir);
/* Copies a file (a closed store). */
int bench_copy_file(const char *from, const char *to);
/* Size in bytes of a file (0 if there is none). */
uint64_t bench_file_size(const char *path);

/* The owner of g invites and admits member (name), at now_ms; the
 * accepted events (invite, add, any rekey) are appended to acc. */
KITH_MUST kith_err bench_admit(kith_group *g, const kith_ident *member,
                               const char *name, uint64_t now_ms,
                               GPtrArray *acc);
/* Message text number i: "message i " then filler, len bytes and a NUL
 * (text has room for len + 1). */
void bench_text(char *text, size_t len, uint64_t i);
/* A new array of kith_accepted* that frees them. */
GPtrArray *bench_acc_new(void);

#endif
