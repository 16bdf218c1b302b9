/* Tests for net/control.c: a real server on a temporary Unix socket, driven
 * by plain GSocket clients while the test iterates the GMainContext. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/codec.h"
#include "net/control.h"

#define WAIT_US (5 * G_USEC_PER_SEC) /* bound on every wait */

typedef struct fixture {
  char *dir;
  char *path;
  GMainContext *ctx;
  kith_control *ctl;
  kith_rpc_call *pending; /* the "later" call waiting for its idle */
} fixture;

typedef struct conn {
  GSocket *sock;
  GByteArray *in;
  msgpack_unpacked msg;
} conn;

/* ---- server side: test methods ---- */

static void reply_object(kith_rpc_call *call, const msgpack_object *o) {
  kith_pack p;
  kith_pack_init(&p);
  if (msgpack_pack_object(&p.pk, *o) != 0)
    p.failed = 1;
  uint8_t *buf = NULL;
  size_t len = 0;
  assert_int_equal(kith_pack_take(&p, &buf, &len), KITH_OK);
  kith_rpc_reply(call, buf, len);
  g_free(buf);
}

static void m_echo(kith_rpc_call *call, const msgpack_object *params,
                   void *ud) {
  reply_object(call, params);
}

static gboolean later_idle(gpointer ud) {
  fixture *f = ud;
  static const uint8_t DONE[] = {0xa4, 'd', 'o', 'n', 'e'};
  kith_rpc_reply(f->pending, DONE, sizeof DONE);
  f->pending = NULL;
  return G_SOURCE_REMOVE;
}

static void m_later(kith_rpc_call *call, const msgpack_object *params,
                    void *ud) {
  fixture *f = ud;
  f->pending = call;
  GSource *s = g_idle_source_new();
  g_source_set_callback(s, later_idle, f, NULL);
  g_source_attach(s, f->ctx);
  g_source_unref(s);
}

static void m_sub(kith_rpc_call *call, const msgpack_object *params, void *ud) {
  const msgpack_object *it = NULL;
  char *topic = NULL;
  if (kith_codec_array(params, 1, &it) != KITH_OK ||
      kith_codec_strdup(&it[0], 64, &topic) != KITH_OK) {
    kith_rpc_error(call, KITH_ERR_ARG, "subscribe needs [topic]");
    return;
  }
  kith_rpc_subscribe(call, topic);
  g_free(topic);
  static const uint8_t EMPTY_MAP = 0x80;
  kith_rpc_reply(call, &EMPTY_MAP, 1);
}

static int setup(void **state) {
  fixture *f = g_new0(fixture, 1);
  f->dir = g_dir_make_tmp("kith-control-XXXXXX", NULL);
  assert_non_null(f->dir);
  f->path = g_build_filename(f->dir, "control.sock", NULL);
  f->ctx = g_main_context_new();
  assert_int_equal(kith_control_new(f->ctx, f->path, &f->ctl), KITH_OK);
  kith_control_register(f->ctl, "echo", m_echo, f);
  kith_control_register(f->ctl, "later", m_later, f);
  kith_control_register(f->ctl, "subscribe", m_sub, f);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  kith_control_free(f->ctl);
  /* Run idles still queued (a "later" whose client left). */
  while (g_main_context_iteration(f->ctx, FALSE))
    ;
  g_main_context_unref(f->ctx);
  rmdir(f->dir);
  g_free(f->path);
  g_free(f->dir);
  g_free(f);
  return 0;
}

/* ---- client side ---- */

static conn *conn_open(fixture *f) {
  conn *c = g_new0(conn, 1);
  c->sock = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                         G_SOCKET_PROTOCOL_DEFAULT, NULL);
  GSocketAddress *a = g_unix_socket_address_new(f->path);
  assert_true(g_socket_connect(c->sock, a, NULL, NULL));
  g_object_unref(a);
  g_socket_set_blocking(c->sock, FALSE);
  c->in = g_byte_array_new();
  msgpack_unpacked_init(&c->msg);
  return c;
}

static void conn_close(conn *c) {
  g_object_unref(c->sock);
  g_byte_array_unref(c->in);
  msgpack_unpacked_destroy(&c->msg);
  g_free(c);
}

static void conn_write(fixture *f, conn *c, const uint8_t *buf, size_t len) {
  size_t off = 0;
  while (off < len) {
    gssize n =
        g_socket_send(c->sock, (const gchar *)buf + off, len - off, NULL, NULL);
    if (n > 0)
      off += (size_t)n;
    g_main_context_iteration(f->ctx, FALSE);
  }
}

/* Reads one message into c->msg, iterating the server meanwhile. Returns 1,
 * or 0 on end of stream, or -1 if nothing came within WAIT_US. */
static int conn_read(fixture *f, conn *c, gint64 wait_us) {
  gint64 deadline = g_get_monotonic_time() + wait_us;
  kith_control_scanner sc;
  kith_control_scan_init(&sc);
  for (;;) {
    long n =
        kith_control_scan(&sc, c->in->data, c->in->len, KITH_CONTROL_MAX_MSG);
    assert_true(n >= 0);
    if (n > 0) {
      msgpack_unpacked_destroy(&c->msg);
      msgpack_unpacked_init(&c->msg);
      assert_int_equal(kith_codec_unpack_loose(c->in->data, (size_t)n, &c->msg),
                       KITH_OK);
      g_byte_array_remove_range(c->in, 0, (guint)n);
      return 1;
    }
    uint8_t buf[4096];
    gssize r = g_socket_receive(c->sock, (gchar *)buf, sizeof buf, NULL, NULL);
    if (r == 0)
      return 0;
    if (r > 0) {
      g_byte_array_append(c->in, buf, (guint)r);
      continue;
    }
    if (g_get_monotonic_time() > deadline)
      return -1;
    if (!g_main_context_iteration(f->ctx, FALSE))
      g_usleep(1000);
  }
}

static uint8_t *pack_request(uint64_t msgid, const char *method, size_t *len,
                             const char *arg) {
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 4);
  kith_pack_uint(&p, 0);
  kith_pack_uint(&p, msgid);
  kith_pack_cstr(&p, method);
  kith_pack_array(&p, arg ? 1 : 0);
  if (arg)
    kith_pack_cstr(&p, arg);
  uint8_t *buf = NULL;
  assert_int_equal(kith_pack_take(&p, &buf, len), KITH_OK);
  return buf;
}

static void call(fixture *f, conn *c, uint64_t msgid, const char *method,
                 const char *arg) {
  size_t len = 0;
  uint8_t *req = pack_request(msgid, method, &len, arg);
  conn_write(f, c, req, len);
  g_free(req);
}

static int str_is(const msgpack_object *o, const char *s) {
  return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
         memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* Checks c->msg is [1, msgid, nil, result] and returns result. */
static const msgpack_object *expect_result(conn *c, uint64_t msgid) {
  const msgpack_object *it = NULL;
  uint64_t v = 0;
  assert_int_equal(kith_codec_array(&c->msg.data, 4, &it), KITH_OK);
  assert_int_equal(kith_codec_uint(&it[0], 1, &v), KITH_OK);
  assert_int_equal(v, 1);
  assert_int_equal(kith_codec_uint(&it[1], UINT32_MAX, &v), KITH_OK);
  assert_int_equal(v, msgid);
  assert_int_equal(it[2].type, MSGPACK_OBJECT_NIL);
  return &it[3];
}

static void expect_echo(fixture *f, conn *c, uint64_t msgid, const char *arg) {
  assert_int_equal(conn_read(f, c, WAIT_US), 1);
  const msgpack_object *r = expect_result(c, msgid);
  assert_int_equal(r->type, MSGPACK_OBJECT_ARRAY);
  assert_int_equal(r->via.array.size, 1);
  assert_true(str_is(&r->via.array.ptr[0], arg));
}

/* ---- tests ---- */

static void echo_answers_with_the_same_msgid(void **state) {
  fixture *f = *state;
  conn *c = conn_open(f);
  call(f, c, 7, "echo", "hello");
  expect_echo(f, c, 7, "hello");
  conn_close(c);
}

static void two_requests_in_one_write_get_two_replies(void **state) {
  fixture *f = *state;
  conn *c = conn_open(f);
  size_t l1 = 0, l2 = 0;
  uint8_t *r1 = pack_request(1, "echo", &l1, "one");
  uint8_t *r2 = pack_request(2, "echo", &l2, "two");
  GByteArray *both = g_byte_array_new();
  g_byte_array_append(both, r1, (guint)l1);
  g_byte_array_append(both, r2, (guint)l2);
  conn_write(f, c, both->data, both->len);
  expect_echo(f, c, 1, "one");
  expect_echo(f, c, 2, "two");
  g_byte_array_unref(both);
  g_free(r1);
  g_free(r2);
  conn_close(c);
}

static void request_split_byte_by_byte_is_reassembled(void **state) {
  fixture *f = *state;
  conn *c = conn_open(f);
  size_t len = 0;
  uint8_t *req = pack_request(99, "echo", &len, "slowly");
  for (size_t i = 0; i < len; i++) {
    conn_write(f, c, req + i, 1);
    for (int k = 0; k < 3; k++)
      g_main_context_iteration(f->ctx, FALSE);
  }
  expect_echo(f, c, 99, "slowly");
  g_free(req);
  conn_close(c);
}

static void unknown_method_gets_an_arg_error(void **state) {
  fixture *f = *state;
  conn *c = conn_open(f);
  call(f, c, 5, "nope", NULL);
  assert_int_equal(conn_read(f, c, WAIT_US), 1);
  const msgpack_object *it = NULL, *e = NULL;
  assert_int_equal(kith_codec_array(&c->msg.data, 4, &it), KITH_OK);
  assert_int_equal(it[1].via.u64, 5);
  assert_int_equal(it[3].type, MSGPACK_OBJECT_NIL);
  assert_int_equal(kith_codec_array(&it[2], 2, &e), KITH_OK);
  assert_int_equal(e[0].type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
  assert_int_equal(e[0].via.i64, KITH_ERR_ARG);
  assert_true(str_is(&e[1], "unknown method nope"));
  conn_close(c);
}

static void later_replies_from_an_idle_callback(void **state) {
  fixture *f = *state;
  conn *c = conn_open(f);
  call(f, c, 11, "later", NULL);
  assert_int_equal(conn_read(f, c, WAIT_US), 1);
  assert_true(str_is(expect_result(c, 11), "done"));
  conn_close(c);
}

static void reply_after_client_left_is_dropped(void **state) {
  fixture *f = *state;
  conn *c = conn_open(f);
  call(f, c, 12, "later", NULL);
  /* Close before the idle runs; the reply must just free the call. */
  while (f->pending == NULL)
    g_main_context_iteration(f->ctx, TRUE);
  conn_close(c);
  gint64 deadline = g_get_monotonic_time() + WAIT_US;
  while (f->pending != NULL && g_get_monotonic_time() < deadline)
    g_main_context_iteration(f->ctx, FALSE);
  assert_null(f->pending);
}

static void garbage_closes_only_that_client(void **state) {
  fixture *f = *state;
  conn *bad = conn_open(f);
  conn *good = conn_open(f);
  static const uint8_t JUNK[] = {0xc1, 0x00, 0x01};
  conn_write(f, bad, JUNK, sizeof JUNK);
  assert_int_equal(conn_read(f, bad, WAIT_US), 0);
  /* Well-formed msgpack that is no request closes as well. */
  conn *bad2 = conn_open(f);
  static const uint8_t NOT_REQ[] = {0x94, 0x01, 0x01, 0xc0, 0xc0};
  conn_write(f, bad2, NOT_REQ, sizeof NOT_REQ);
  assert_int_equal(conn_read(f, bad2, WAIT_US), 0);
  call(f, good, 3, "echo", "still here");
  expect_echo(f, good, 3, "still here");
  conn_close(bad);
  conn_close(bad2);
  conn_close(good);
}

static void oversized_declaration_closes_at_once(void **state) {
  fixture *f = *state;
  conn *c = conn_open(f);
  /* A str32 header declaring 4 GiB: no waiting for the bytes. */
  static const uint8_t BIG[] = {0x94, 0x00, 0x01, 0xdb, 0xff, 0xff, 0xff, 0xff};
  conn_write(f, c, BIG, sizeof BIG);
  assert_int_equal(conn_read(f, c, WAIT_US), 0);
  conn_close(c);
}

static void notify_reaches_subscribers_only(void **state) {
  fixture *f = *state;
  conn *a = conn_open(f);
  conn *b = conn_open(f);
  call(f, a, 1, "subscribe", "topic-1");
  assert_int_equal(conn_read(f, a, WAIT_US), 1);
  assert_int_equal(expect_result(a, 1)->type, MSGPACK_OBJECT_MAP);
  static const uint8_t PARAMS[] = {0x91, 0xa2, 'h', 'i'}; /* ["hi"] */
  kith_control_notify(f->ctl, "topic-1", "message", PARAMS, sizeof PARAMS);
  kith_control_notify(f->ctl, "topic-2", "message", PARAMS, sizeof PARAMS);
  assert_int_equal(conn_read(f, a, WAIT_US), 1);
  const msgpack_object *it = NULL;
  assert_int_equal(kith_codec_array(&a->msg.data, 3, &it), KITH_OK);
  assert_int_equal(it[0].via.u64, 2);
  assert_true(str_is(&it[1], "message"));
  assert_int_equal(it[2].via.array.size, 1);
  assert_true(str_is(&it[2].via.array.ptr[0], "hi"));
  /* b's next message is its own reply, not a notification. */
  call(f, b, 4, "echo", "b");
  expect_echo(f, b, 4, "b");
  /* and a's next is its reply too (topic-2 was not delivered). */
  call(f, a, 5, "echo", "a");
  expect_echo(f, a, 5, "a");
  conn_close(a);
  conn_close(b);
}

static void socket_is_private_and_second_server_is_busy(void **state) {
  fixture *f = *state;
  struct stat st;
  assert_int_equal(stat(f->path, &st), 0);
  assert_true(S_ISSOCK(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0600);
  kith_control *other = NULL;
  assert_int_equal(kith_control_new(f->ctx, f->path, &other), KITH_ERR_BUSY);
  assert_null(other);
}

static void stale_socket_file_is_replaced_and_free_unlinks(void **state) {
  fixture *f = *state;
  char *stale = g_build_filename(f->dir, "stale.sock", NULL);
  GSocket *s = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                            G_SOCKET_PROTOCOL_DEFAULT, NULL);
  GSocketAddress *a = g_unix_socket_address_new(stale);
  assert_true(g_socket_bind(s, a, FALSE, NULL));
  g_object_unref(a);
  g_object_unref(s); /* the file stays, nobody listens */
  kith_control *c = NULL;
  assert_int_equal(kith_control_new(f->ctx, stale, &c), KITH_OK);
  kith_control_free(c);
  assert_int_not_equal(access(stale, F_OK), 0);
  g_free(stale);
}

static void client_over_the_limit_is_turned_away(void **state) {
  fixture *f = *state;
  conn *c[KITH_CONTROL_MAX_CLIENTS + 1];
  for (int i = 0; i <= KITH_CONTROL_MAX_CLIENTS; i++) {
    c[i] = conn_open(f);
    while (g_main_context_iteration(f->ctx, FALSE))
      ;
  }
  assert_int_equal(conn_read(f, c[KITH_CONTROL_MAX_CLIENTS], WAIT_US), 0);
  call(f, c[0], 1, "echo", "first");
  expect_echo(f, c[0], 1, "first");
  for (int i = 0; i <= KITH_CONTROL_MAX_CLIENTS; i++)
    conn_close(c[i]);
}

static void client_that_does_not_read_is_dropped(void **state) {
  fixture *f = *state;
  conn *slow = conn_open(f);
  call(f, slow, 1, "subscribe", "t");
  while (g_main_context_iteration(f->ctx, FALSE))
    ;
  /* ["xxx...": 64 KiB] 100 times: 6.4 MiB, over the 4 MiB cap */
  enum { BIG = 64 * 1024 };
  uint8_t *params = g_malloc(BIG + 6);
  params[0] = 0x91;
  params[1] = 0xdb;
  params[2] = 0, params[3] = 1, params[4] = 0, params[5] = 0;
  memset(params + 6, 'x', BIG);
  for (int i = 0; i < 100; i++)
    kith_control_notify(f->ctl, "t", "message", params, BIG + 6);
  g_free(params);
  int r = 1, n = 0;
  while ((r = conn_read(f, slow, WAIT_US)) == 1)
    n++;
  assert_int_equal(r, 0); /* closed, not waiting */
  assert_true(n < 100);
  conn_close(slow);
}

static void message_over_the_size_limit_closes(void **state) {
  fixture *f = *state;
  conn *c = conn_open(f);
  size_t len = KITH_CONTROL_MAX_MSG + 16;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 4);
  kith_pack_uint(&p, 0);
  kith_pack_uint(&p, 1);
  kith_pack_cstr(&p, "echo");
  kith_pack_array(&p, 1);
  char *big = g_malloc0(len);
  memset(big, 'y', len - 1);
  kith_pack_cstr(&p, big);
  g_free(big);
  uint8_t *buf = NULL;
  assert_int_equal(kith_pack_take(&p, &buf, &len), KITH_OK);
  /* The server closes early; the rest of the write may fail. */
  for (size_t off = 0; off < len;) {
    gssize n =
        g_socket_send(c->sock, (const gchar *)buf + off, len - off, NULL, NULL);
    if (n <= 0 && !g_main_context_iteration(f->ctx, FALSE))
      break;
    off += n > 0 ? (size_t)n : 0;
  }
  g_free(buf);
  assert_int_equal(conn_read(f, c, WAIT_US), 0);
  conn_close(c);
}

static long scan_all(const uint8_t *buf, size_t len, size_t max) {
  kith_control_scanner sc;
  kith_control_scan_init(&sc);
  return kith_control_scan(&sc, buf, len, max);
}

static void scanner_finds_boundaries_and_rejects_junk(void **state) {
  static const uint8_t TWO[] = {0x92, 0xa1, 'x', 0x81, 0x01, 0xc3, 0x05};
  assert_int_equal(scan_all(TWO, sizeof TWO, 100), 6);
  assert_int_equal(scan_all(TWO, 5, 100), 0);
  static const uint8_t BAD[] = {0x91, 0xc1};
  assert_int_equal(scan_all(BAD, sizeof BAD, 100), -1);
  /* array32 of 2^32-1 items: more items than bytes allowed */
  static const uint8_t MANY[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
  assert_int_equal(scan_all(MANY, sizeof MANY, 1000), -1);
  /* bin16 of 300 bytes against a 100-byte limit */
  static const uint8_t LONG[] = {0xc5, 0x01, 0x2c};
  assert_int_equal(scan_all(LONG, sizeof LONG, 100), -1);
  /* fixext4 and float64 have fixed sizes */
  static const uint8_t EXT[] = {0x92, 0xd6, 1, 0, 0, 0, 0, 0xcb,
                                0,    0,    0, 0, 0, 0, 0, 0};
  assert_int_equal(scan_all(EXT, sizeof EXT, 100), 16);
  /* resumable: feeding a growing prefix gives the same answer */
  kith_control_scanner sc;
  kith_control_scan_init(&sc);
  for (size_t i = 0; i < sizeof EXT - 1; i++)
    assert_int_equal(kith_control_scan(&sc, EXT, i, 100), 0);
  assert_int_equal(kith_control_scan(&sc, EXT, sizeof EXT, 100), 16);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(scanner_finds_boundaries_and_rejects_junk),
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
      T(echo_answers_with_the_same_msgid),
      T(two_requests_in_one_write_get_two_replies),
      T(request_split_byte_by_byte_is_reassembled),
      T(unknown_method_gets_an_arg_error),
      T(later_replies_from_an_idle_callback),
      T(reply_after_client_left_is_dropped),
      T(garbage_closes_only_that_client),
      T(oversized_declaration_closes_at_once),
      T(notify_reaches_subscribers_only),
      T(socket_is_private_and_second_server_is_busy),
      T(stale_socket_file_is_replaced_and_free_unlinks),
      T(client_over_the_limit_is_turned_away),
      T(client_that_does_not_read_is_dropped),
      T(message_over_the_size_limit_closes),
#undef T
  };
  int failed = cmocka_run_group_tests_name("control", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
