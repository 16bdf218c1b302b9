/* kith CLI: what every subcommand shares (options, exit codes, parsing).
 *
 * Each subcommand is a cli_cmd_fn in one of the cmd_*.c files, listed in
 * the one dispatch table in main.c. */
#ifndef KITH_CLI_H
#define KITH_CLI_H

#include <glib.h>
#include <stdint.h>

/* Exit codes (CLI.md). */
enum {
  CLI_OK = 0,
  CLI_ERROR = 1,   /* one line "kith: error: ..." printed */
  CLI_USAGE = 2,   /* bad command line */
  CLI_NO_NODE = 3, /* no node is running for the home */
  CLI_TIMEOUT = 4,
};

typedef struct cli_opts {
  char *home;     /* the data directory, g_malloc'ed */
  int home_given; /* from --home: hints must repeat it */
  gboolean json;  /* one JSON object per line on stdout */
} cli_opts;

/* argv[0] is the command's own name; returns an exit code. */
typedef int (*cli_cmd_fn)(cli_opts *o, int argc, char **argv);

typedef struct cli_cmd {
  const char *name;
  cli_cmd_fn fn;
  const char *help; /* one line for the command list */
} cli_cmd;

/* Prints "kith: error: <msg>" to stderr; returns CLI_ERROR. */
int cli_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
/* Prints "kith: error: <msg>; see 'kith <cmd> --help'"; returns CLI_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* While set (the chat's screen is up), error lines go to fn instead of
 * stderr. NULL restores stderr. */
typedef void (*cli_error_sink)(const char *msg, void *ud);
void cli_set_error_sink(cli_error_sink fn, void *ud);

/* "30s", "10m", "24h", "7d": 1 s to max_s seconds. Returns 0 if not. */
int cli_parse_duration(const char *s, uint64_t max_s, uint64_t *out);
/* The value of option opt of cmd: CLI_OK with *out set (untouched when
 * text is NULL), or CLI_USAGE (printed). */
int cli_duration_option(const char *cmd, const char *opt, const char *text,
                        uint64_t max_s, uint64_t *out);

/* Parses the options of command cmd (its entries plus the global --home
 * and --json; --help prints the usage and exits 0) and checks that exactly
 * nargs positional arguments remain, named in params ("GROUP TEXT"); names
 * in brackets ("[GROUP]") may be left out.
 * On success *argv[1..nargs] are the arguments. Returns CLI_OK or
 * CLI_USAGE (printed). */
int cli_parse(cli_opts *o, const char *cmd, const char *params, int nargs,
              const char *summary, const GOptionEntry *entries, int *argc,
              char ***argv);

/* Runs the subcommand of a family ("group create") from table. */
int cli_dispatch(cli_opts *o, const char *family, const cli_cmd *table,
                 int argc, char **argv);

/* The home as a shell word, for hints ("--home DIR" or ""). */
char *cli_home_hint(const cli_opts *o);

/* Reads a passphrase from file (one trailing newline dropped) or, when
 * file is NULL, from the terminal with echo off. Returns CLI_OK with *out
 * (free with cli_passphrase_free) or an exit code (printed). */
int cli_read_passphrase(const char *file, const char *home, char **out,
                        size_t *len);
void cli_passphrase_free(char *pass, size_t len);

/* Prints the identity stored in the home (kith id with no node running);
 * pass_file as for kith node. Returns an exit code (printed). */
int cli_id_from_home(const cli_opts *o, const char *pass_file);

/* Subcommands. */
int cli_cmd_init(cli_opts *o, int argc, char **argv);
int cli_cmd_node(cli_opts *o, int argc, char **argv);
int cli_cmd_id(cli_opts *o, int argc, char **argv);
int cli_cmd_status(cli_opts *o, int argc, char **argv);
int cli_cmd_peers(cli_opts *o, int argc, char **argv);
int cli_cmd_group(cli_opts *o, int argc, char **argv);
int cli_cmd_invite(cli_opts *o, int argc, char **argv);
int cli_cmd_join(cli_opts *o, int argc, char **argv);
int cli_cmd_send(cli_opts *o, int argc, char **argv);
int cli_cmd_react(cli_opts *o, int argc, char **argv);
int cli_cmd_edit(cli_opts *o, int argc, char **argv);
int cli_cmd_delete(cli_opts *o, int argc, char **argv);
int cli_cmd_chat(cli_opts *o, int argc, char **argv);
int cli_cmd_log(cli_opts *o, int argc, char **argv);
int cli_cmd_kick(cli_opts *o, int argc, char **argv);
int cli_cmd_ban(cli_opts *o, int argc, char **argv);
int cli_cmd_unban(cli_opts *o, int argc, char **argv);
int cli_cmd_mute(cli_opts *o, int argc, char **argv);
int cli_cmd_unmute(cli_opts *o, int argc, char **argv);
int cli_cmd_leave(cli_opts *o, int argc, char **argv);
int cli_cmd_role(cli_opts *o, int argc, char **argv);
int cli_cmd_topic(cli_opts *o, int argc, char **argv);
int cli_cmd_friend(cli_opts *o, int argc, char **argv);
int cli_cmd_doctor(cli_opts *o, int argc, char **argv);

#endif
