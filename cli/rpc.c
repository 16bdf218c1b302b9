/* kith CLI: the control socket client. */
#include "rpc.h"

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "../core/home.h"
#include "../net/control.h"

#define RPC_READ_CHUNK (16 * 1024)
#define RPC_MAX_METHOD 64 /* bytes of a notification's method name */

enum { READ_OK, READ_EOF, READ_TIMEOUT, READ_BAD };

struct cli_rpc {
  GSocket *sock;
  GByteArray *in;
  kith_control_scanner scan;
  msgpack_unpacked msg;
  uint32_t next_id;
};

/* No node answers for the home: say how to start one, or, for a home
 * without an identity, how to make one first. */
static int no_node(const cli_opts *o) {
  char *hint = cli_home_hint(o);
  char *key = kith_home_path(o->home, KITH_HOME_KEY_FILE);
  int rc = CLI_NO_NODE;

  if (!g_file_test(key, G_FILE_TEST_EXISTS)) {
    rc = cli_error("%s has no identity; create one with: kith init%s", o->home,
                   hint);
  } else {
    /* Through the error sink (the chat screen shows it in its status
     * line), keeping the exit code that says no node runs. */
    (void)cli_error("no node is running for %s; start it with: kith node%s",
                    o->home, hint);
  }
  g_free(key);
  g_free(hint);
  return rc;
}

/* A missing socket file (or home) and a socket nobody listens on both
 * mean that no node runs for this home. */
static int connect_error(const cli_opts *o, const char *path, GError *err) {
  if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) ||
      g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED) ||
      g_error_matches(err, G_IO_ERROR, G_IO_ERROR_NOT_DIRECTORY))
    return no_node(o);
  return cli_error("cannot connect to %s: %s", path, err->message);
}

int cli_rpc_open(const cli_opts *o, cli_rpc **out) {
  *out = NULL;
  char *path = kith_home_path(o->home, KITH_HOME_SOCKET_FILE);
  if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
    int rc =
        cli_error("the socket path %s is too long; use a shorter --home", path);
    g_free(path);
    return rc;
  }
  GError *err = NULL;
  GSocket *s = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                            G_SOCKET_PROTOCOL_DEFAULT, &err);
  GSocketAddress *a = g_unix_socket_address_new(path);
  int rc = CLI_OK;
  if (s == NULL)
    rc = cli_error("cannot create a socket: %s", err->message);
  else if (!g_socket_connect(s, a, NULL, &err))
    rc = connect_error(o, path, err);
  g_clear_error(&err);
  g_object_unref(a);
  g_free(path);
  if (rc != CLI_OK) {
    if (s != NULL)
      g_object_unref(s);
    return rc;
  }
  cli_rpc *r = g_new0(cli_rpc, 1);
  r->sock = s;
  r->in = g_byte_array_new();
  kith_control_scan_init(&r->scan);
  msgpack_unpacked_init(&r->msg);
  r->next_id = 1;
  *out = r;
  return CLI_OK;
}

void cli_rpc_free(cli_rpc *r) {
  if (r == NULL)
    return;
  g_object_unref(r->sock);
  g_byte_array_unref(r->in);
  msgpack_unpacked_destroy(&r->msg);
  g_free(r);
}

/* Takes the next complete message out of the input buffer, if any. */
static int take_message(cli_rpc *r, int *got) {
  long n = kith_control_scan(&r->scan, r->in->data, r->in->len,
                             KITH_CONTROL_MAX_MSG);
  *got = n > 0;
  if (n <= 0)
    return n < 0 ? READ_BAD : READ_OK;
  msgpack_unpacked_destroy(&r->msg);
  msgpack_unpacked_init(&r->msg);
  kith_err e = kith_codec_unpack_loose(r->in->data, (size_t)n, &r->msg);
  g_byte_array_remove_range(r->in, 0, (guint)n);
  kith_control_scan_init(&r->scan);
  return e == KITH_OK ? READ_OK : READ_BAD;
}

/* Reads until one message is in r->msg. deadline: monotonic µs or -1. */
static int read_message(cli_rpc *r, gint64 deadline) {
  for (;;) {
    int got = 0;
    int st = take_message(r, &got);
    if (st != READ_OK || got)
      return st;
    gint64 wait = deadline < 0 ? -1 : deadline - g_get_monotonic_time();
    if (deadline >= 0 && wait <= 0)
      return READ_TIMEOUT;
    GError *err = NULL;
    if (!g_socket_condition_timed_wait(r->sock, G_IO_IN, wait, NULL, &err)) {
      int to = g_error_matches(err, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
      g_error_free(err);
      return to ? READ_TIMEOUT : READ_EOF;
    }
    uint8_t buf[RPC_READ_CHUNK];
    gssize n = g_socket_receive(r->sock, (gchar *)buf, sizeof buf, NULL, &err);
    if (n < 0) {
      g_error_free(err);
      return READ_EOF;
    }
    if (n == 0)
      return READ_EOF;
    g_byte_array_append(r->in, buf, (guint)n);
  }
}

static int node_error(const msgpack_object *e) {
  const msgpack_object *it = NULL;
  if (kith_codec_array(e, 2, &it) != KITH_OK ||
      it[1].type != MSGPACK_OBJECT_STR)
    return cli_error("the node sent a malformed error");
  char *msg = cli_out_text(&it[1], NULL, 0);
  cli_error("%s", msg);
  g_free(msg);
  int timeout = it[0].type == MSGPACK_OBJECT_NEGATIVE_INTEGER &&
                it[0].via.i64 == KITH_ERR_TIMEOUT;
  return timeout ? CLI_TIMEOUT : CLI_ERROR;
}

static void notify(const msgpack_object *it, cli_notify_fn fn, void *ud) {
  char method[RPC_MAX_METHOD + 1];
  const char *s = NULL;
  size_t len = 0;
  if (fn == NULL ||
      kith_codec_str(&it[1], RPC_MAX_METHOD, &s, &len) != KITH_OK ||
      it[2].type != MSGPACK_OBJECT_ARRAY)
    return;
  memcpy(method, s, len);
  method[len] = '\0';
  fn(method, &it[2], ud);
}

#define ANY_REPLY UINT64_MAX
#define NO_REPLY (UINT64_MAX - 1)

/* Handles the message in r->msg: an exit code once the reply to msgid
 * (any reply with ANY_REPLY; none with NO_REPLY) is in (*result set on
 * success, *got its id), or -1 to keep reading. */
static int handle(cli_rpc *r, uint64_t msgid, cli_notify_fn fn, void *ud,
                  const msgpack_object **result, uint32_t *got) {
  const msgpack_object *o = &r->msg.data;
  const msgpack_object *it = NULL;
  uint64_t type = 0, id = 0;
  if (kith_codec_array(o, UINT32_MAX, &it) != KITH_OK ||
      o->via.array.size < 3 || kith_codec_uint(&it[0], 2, &type) != KITH_OK)
    return cli_error("the node sent a malformed message");
  if (type == 2 && o->via.array.size == 3) {
    notify(it, fn, ud);
    return -1;
  }
  if (type != 1 || o->via.array.size != 4 ||
      kith_codec_uint(&it[1], UINT32_MAX, &id) != KITH_OK)
    return cli_error("the node sent a malformed message");
  if (msgid != ANY_REPLY && id != msgid)
    return -1;
  if (got != NULL)
    *got = (uint32_t)id;
  if (it[2].type != MSGPACK_OBJECT_NIL)
    return node_error(&it[2]);
  *result = &it[3];
  return CLI_OK;
}

static int send_all(cli_rpc *r, const uint8_t *buf, size_t len) {
  size_t off = 0;
  while (off < len) {
    GError *err = NULL;
    gssize n =
        g_socket_send(r->sock, (const gchar *)buf + off, len - off, NULL, &err);
    if (n < 0) {
      int rc = cli_error("cannot talk to the node: %s", err->message);
      g_error_free(err);
      return rc;
    }
    off += (size_t)n;
  }
  return CLI_OK;
}

static int send_request(cli_rpc *r, uint32_t id, const char *method,
                        kith_pack *params) {
  uint8_t *pbuf = NULL, *req = NULL;
  size_t plen = 0, len = 0;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 4);
  kith_pack_uint(&p, 0);
  kith_pack_uint(&p, id);
  kith_pack_cstr(&p, method);
  if (kith_pack_take(params, &pbuf, &plen) != KITH_OK ||
      msgpack_sbuffer_write(&p.sb, (const char *)pbuf, plen) != 0)
    p.failed = 1;
  int rc = kith_pack_take(&p, &req, &len) == KITH_OK
               ? send_all(r, req, len)
               : cli_error("out of memory");
  g_free(pbuf);
  g_free(req);
  return rc;
}

static int read_error(int st, int timeout_ms) {
  if (st == READ_TIMEOUT) {
    cli_error("the node did not answer within %d s; it may still be working",
              timeout_ms / 1000);
    return CLI_TIMEOUT;
  }
  if (st == READ_EOF)
    return cli_error("the node closed the connection; is it still running?");
  return cli_error("the node sent a malformed message");
}

static gint64 deadline_of(int timeout_ms) {
  return timeout_ms < 0 ? -1
                        : g_get_monotonic_time() + (gint64)timeout_ms * 1000;
}

/* Reads until the reply to msgid (or any, see handle) is in. */
static int wait_reply(cli_rpc *r, uint64_t msgid, int timeout_ms,
                      cli_notify_fn fn, void *ud, uint32_t *got,
                      const msgpack_object **result) {
  gint64 deadline = deadline_of(timeout_ms);
  for (;;) {
    int st = read_message(r, deadline);
    if (st != READ_OK)
      return read_error(st, timeout_ms);
    int rc = handle(r, msgid, fn, ud, result, got);
    if (rc >= 0)
      return rc;
  }
}

int cli_rpc_call(cli_rpc *r, const char *method, kith_pack *params,
                 int timeout_ms, cli_notify_fn fn, void *ud,
                 const msgpack_object **result) {
  uint32_t id = r->next_id++;
  int rc = send_request(r, id, method, params);
  if (rc != CLI_OK)
    return rc;
  return wait_reply(r, id, timeout_ms, fn, ud, NULL, result);
}

int cli_rpc_send(cli_rpc *r, const char *method, kith_pack *params,
                 uint32_t *id) {
  *id = r->next_id++;
  return send_request(r, *id, method, params);
}

int cli_rpc_reply(cli_rpc *r, int timeout_ms, cli_notify_fn fn, void *ud,
                  uint32_t *id, const msgpack_object **result) {
  *id = 0;
  return wait_reply(r, ANY_REPLY, timeout_ms, fn, ud, id, result);
}

int cli_rpc_listen(cli_rpc *r, cli_notify_fn fn, void *ud) {
  for (;;) {
    int st = read_message(r, CLI_WAIT_FOREVER);
    if (st == READ_EOF) {
      cli_error("the node stopped");
      return CLI_NO_NODE;
    }
    if (st != READ_OK)
      return read_error(st, 0);
    const msgpack_object *unused = NULL;
    int rc = handle(r, NO_REPLY, fn, ud, &unused, NULL);
    if (rc >= 0)
      return rc;
  }
}

int cli_rpc_fd(const cli_rpc *r) {
  return g_socket_get_fd(r->sock);
}

int cli_rpc_pump(cli_rpc *r, cli_notify_fn fn, void *ud) {
  for (;;) {
    int got = 0;
    int st = take_message(r, &got);
    if (st != READ_OK)
      return read_error(st, 0);
    if (got) {
      const msgpack_object *unused = NULL;
      int rc = handle(r, NO_REPLY, fn, ud, &unused, NULL);
      if (rc >= 0)
        return rc;
      continue;
    }
    if (g_socket_condition_check(r->sock, G_IO_IN | G_IO_HUP | G_IO_ERR) == 0)
      return CLI_OK;
    uint8_t buf[RPC_READ_CHUNK];
    gssize n = g_socket_receive(r->sock, (gchar *)buf, sizeof buf, NULL, NULL);
    if (n <= 0)
      return read_error(READ_EOF, 0);
    g_byte_array_append(r->in, buf, (guint)n);
  }
}

kith_pack *cli_no_params(kith_pack *p) {
  kith_pack_init(p);
  kith_pack_array(p, 0);
  return p;
}

int cli_call_show(const cli_opts *o, const char *method, kith_pack *params,
                  const cli_field *fields, int rows) {
  cli_rpc *r = NULL;
  int rc = cli_rpc_open(o, &r);
  if (rc != CLI_OK) {
    kith_pack_clear(params);
    return rc;
  }
  const msgpack_object *res = NULL;
  rc = cli_rpc_call(r, method, params, CLI_CALL_TIMEOUT_MS, NULL, NULL, &res);
  if (rc == CLI_OK && rows)
    rc = cli_out_rows(o, res, fields);
  else if (rc == CLI_OK && res->type != MSGPACK_OBJECT_MAP)
    rc = cli_error("the node sent a malformed result");
  else if (rc == CLI_OK)
    cli_out_map(o, res, fields);
  cli_rpc_free(r);
  return rc;
}

int cli_call_strs(const cli_opts *o, const char *method, int n,
                  char *const *strs, const cli_field *fields, int rows) {
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, (uint32_t)n);
  for (int i = 0; i < n; i++)
    kith_pack_cstr(&p, strs[i]);
  return cli_call_show(o, method, &p, fields, rows);
}

int cli_run_simple(cli_opts *o, const cli_simple *s, int argc, char **argv) {
  int rc =
      cli_parse(o, s->cmd, s->params, s->nargs, s->summary, NULL, &argc, &argv);
  if (rc != CLI_OK)
    return rc;
  return cli_call_strs(o, s->method, s->nargs, argv + 1, s->fields, s->rows);
}
