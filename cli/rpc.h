/* kith CLI: the client side of the control socket (msgpack-RPC, see
 * net/control.h), blocking, one call at a time.
 *
 * Every function prints its own error line and returns an exit code:
 * CLI_NO_NODE if no node listens on <home>/control.sock, CLI_TIMEOUT if the
 * node did not answer in time or answered with KITH_ERR_TIMEOUT, CLI_ERROR
 * for other failures. */
#ifndef KITH_CLI_RPC_H
#define KITH_CLI_RPC_H

#include <msgpack.h>

#include "../core/codec.h"
#include "cli.h"
#include "out.h"

#define CLI_CALL_TIMEOUT_MS 30000 /* ordinary calls */
#define CLI_WAIT_FOREVER (-1)

typedef struct cli_rpc cli_rpc;

/* A notification [2, method, params]; params borrow until return. */
typedef void (*cli_notify_fn)(const char *method, const msgpack_object *params,
                              void *ud);

int cli_rpc_open(const cli_opts *o, cli_rpc **out);
void cli_rpc_free(cli_rpc *r);

/* Sends method with params (a packed array; the pack is cleared) and waits
 * up to timeout_ms (or forever) for the reply, passing notifications that
 * arrive meanwhile to fn (may be NULL). *result borrows from r until the
 * next call. */
int cli_rpc_call(cli_rpc *r, const char *method, kith_pack *params,
                 int timeout_ms, cli_notify_fn fn, void *ud,
                 const msgpack_object **result);

/* Pipelining: sends a request without waiting for its reply; *id is its
 * msgid. */
int cli_rpc_send(cli_rpc *r, const char *method, kith_pack *params,
                 uint32_t *id);
/* Waits up to timeout_ms for the next reply to any request: *id is its
 * msgid; an error reply is printed and its exit code returned (with *id
 * set). *result borrows from r until the next call. */
int cli_rpc_reply(cli_rpc *r, int timeout_ms, cli_notify_fn fn, void *ud,
                  uint32_t *id, const msgpack_object **result);

/* For an event loop: the socket's descriptor, and a pump that passes the
 * notifications already readable to fn without blocking (CLI_OK), or
 * fails (printed) once the node closed the connection. */
int cli_rpc_fd(const cli_rpc *r);
int cli_rpc_pump(cli_rpc *r, cli_notify_fn fn, void *ud);

/* Passes notifications to fn until the node closes the connection: then
 * prints "kith: error: the node stopped" and returns CLI_NO_NODE. */
int cli_rpc_listen(cli_rpc *r, cli_notify_fn fn, void *ud);

/* What most commands are: one call, print the result: a map (rows = 0)
 * or an array of maps (rows = 1) with fields (see out.h). */
int cli_call_show(const cli_opts *o, const char *method, kith_pack *params,
                  const cli_field *fields, int rows);

/* One call whose params are the n strings strs, printed as cli_call_show
 * does. */
int cli_call_strs(const cli_opts *o, const char *method, int n,
                  char *const *strs, const cli_field *fields, int rows);

/* A command that is one call: no options but the global ones, its
 * positional arguments (nargs of them, named in params) sent as strings. */
typedef struct cli_simple {
  const char *cmd;    /* as typed: "group info" */
  const char *method; /* "group.info" */
  const char *params; /* "GROUP", or NULL */
  int nargs;
  const char *summary; /* for --help */
  const cli_field *fields;
  int rows;
} cli_simple;

int cli_run_simple(cli_opts *o, const cli_simple *s, int argc, char **argv);

/* An empty params array, for methods that take none. */
kith_pack *cli_no_params(kith_pack *p);

#endif
