/* kith: the control socket server (msgpack-RPC over a Unix stream socket).
 *
 * Each client has a capped input buffer, cut into messages by
 * kith_control_scan (which never trusts a declared size), and a capped
 * output buffer flushed when the socket is writable. A client that sends
 * anything but well-formed requests, or does not read its replies, is
 * dropped; the others are not affected. */
#include "control.h"

#include <errno.h>
#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../core/codec.h"

#define CONTROL_MAX_OUT (4 * 1024 * 1024) /* queued bytes per client */
#define CONTROL_READ_CHUNK (16 * 1024)    /* bytes read per wakeup */
#define CONTROL_MAX_IN (KITH_CONTROL_MAX_MSG + CONTROL_READ_CHUNK)
#define CONTROL_MAX_TOPICS 256  /* subscriptions per client */
#define CONTROL_MAX_ERRMSG 1024 /* bytes of an error message */
#define CONTROL_BACKLOG 16

typedef struct client {
  int refs; /* the control's list holds one, each pending call one */
  int closed;
  kith_control *ctl; /* NULL once closed */
  GSocket *sock;
  GSource *in_src;
  GSource *out_src;
  GByteArray *in;
  kith_control_scanner scan;
  GByteArray *out;
  GHashTable *topics; /* char* -> NULL (a set) */
} client;

typedef struct rpc_method {
  kith_rpc_handler h;
  void *ud;
} rpc_method;

struct kith_control {
  GMainContext *ctx;
  char *path;
  GSocket *listener;
  GSource *accept_src;
  GHashTable *methods; /* char* -> rpc_method* */
  GPtrArray *clients;  /* client*, each holding one ref */
};

struct kith_rpc_call {
  client *cl;
  uint64_t msgid;
};

/* ---- message boundaries ---- */

void kith_control_scan_init(kith_control_scanner *s) {
  s->pos = 0;
  s->pending = 1;
}

/* Big-endian length field of w bytes at p. */
static uint64_t read_be(const uint8_t *p, unsigned w) {
  uint64_t v = 0;
  for (unsigned i = 0; i < w; i++)
    v = (v << 8) | p[i];
  return v;
}

/* The types 0xc4..0xdf: width of the length field that follows the type
 * byte (0: fixed size), bytes after it before the payload, and whether the
 * length counts payload bytes (1), array items (2) or map pairs (3). */
typedef struct item_kind {
  uint8_t width, extra, what;
} item_kind;

static const item_kind VAR_KINDS[0xe0 - 0xc4] = {
    {1, 0, 1}, {2, 0, 1}, {4, 0, 1},                        /* bin */
    {1, 1, 1}, {2, 1, 1}, {4, 1, 1},                        /* ext */
    {0, 4, 0}, {0, 8, 0},                                   /* float */
    {0, 1, 0}, {0, 2, 0}, {0, 4, 0}, {0, 8, 0},             /* uint */
    {0, 1, 0}, {0, 2, 0}, {0, 4, 0}, {0, 8, 0},             /* int */
    {0, 2, 0}, {0, 3, 0}, {0, 5, 0}, {0, 9, 0}, {0, 17, 0}, /* fixext */
    {1, 0, 1}, {2, 0, 1}, {4, 0, 1},                        /* str */
    {2, 0, 2}, {4, 0, 2},                                   /* array */
    {2, 0, 3}, {4, 0, 3},                                   /* map */
};

/* The item at p: *size = its header and payload bytes, *kids = the items
 * nested directly in it. Returns 0, 1 if p holds too few bytes to tell, or
 * -1 for a byte that starts no msgpack item. */
static int item_size(const uint8_t *p, size_t avail, uint64_t *size,
                     uint64_t *kids) {
  if (avail < 1)
    return 1;
  uint8_t b = p[0];
  *size = 1;
  *kids = 0;
  if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
    return 0;
  if (b <= 0x9f) { /* fixmap, fixarray */
    *kids = (uint64_t)(b & 0x0f) * (b <= 0x8f ? 2 : 1);
    return 0;
  }
  if (b <= 0xbf) { /* fixstr */
    *size = 1 + (uint64_t)(b & 0x1f);
    return 0;
  }
  if (b == 0xc1)
    return -1;
  item_kind k = VAR_KINDS[b - 0xc4];
  if (avail < 1u + k.width)
    return 1;
  uint64_t n = read_be(p + 1, k.width);
  *size = 1u + k.width + k.extra + (k.what == 1 ? n : 0);
  *kids = k.what == 2 ? n : k.what == 3 ? 2 * n : 0;
  return 0;
}

long kith_control_scan(kith_control_scanner *s, const uint8_t *buf, size_t len,
                       size_t max) {
  while (s->pending > 0) {
    uint64_t size, kids;
    if (s->pos > len || s->pos > max)
      return -1;
    int r = item_size(buf + s->pos, len - s->pos, &size, &kids);
    if (r < 0)
      return -1;
    if (r == 0 && size > max - s->pos)
      return -1;
    if (r > 0 || size > len - s->pos)
      return s->pos >= max ? -1 : 0;
    s->pos += size;
    s->pending = s->pending - 1 + kids;
    /* Every item still to come takes at least one byte. */
    if (s->pending > max - s->pos)
      return -1;
  }
  return (long)s->pos;
}

/* ---- clients ---- */

static client *client_ref(client *cl) {
  cl->refs++;
  return cl;
}

static void client_unref(client *cl) {
  if (--cl->refs > 0)
    return;
  g_byte_array_unref(cl->in);
  g_byte_array_unref(cl->out);
  g_hash_table_unref(cl->topics);
  g_object_unref(cl->sock);
  g_free(cl);
}

static void drop_source(GSource **src) {
  if (*src == NULL)
    return;
  g_source_destroy(*src);
  g_source_unref(*src);
  *src = NULL;
}

/* Safe to call from inside the client's own callbacks and more than once;
 * pending calls keep the struct alive but answer into nothing. */
static void client_close(client *cl) {
  if (cl->closed)
    return;
  cl->closed = 1;
  drop_source(&cl->in_src);
  drop_source(&cl->out_src);
  g_socket_close(cl->sock, NULL);
  g_ptr_array_remove(cl->ctl->clients, cl);
  cl->ctl = NULL;
  client_unref(cl);
}

static gboolean on_writable(GSocket *sock, GIOCondition cond, gpointer ud);

static void client_flush(client *cl) {
  while (!cl->closed && cl->out->len > 0) {
    GError *err = NULL;
    gssize n = g_socket_send(cl->sock, (const gchar *)cl->out->data,
                             cl->out->len, NULL, &err);
    if (n < 0) {
      int again = g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
      g_error_free(err);
      if (!again) {
        client_close(cl);
        return;
      }
      break;
    }
    g_byte_array_remove_range(cl->out, 0, (guint)n);
  }
  if (cl->closed)
    return;
  if (cl->out->len == 0) {
    drop_source(&cl->out_src);
  } else if (cl->out_src == NULL) {
    cl->out_src = g_socket_create_source(cl->sock, G_IO_OUT, NULL);
    g_source_set_callback(cl->out_src, (GSourceFunc)(void (*)(void))on_writable,
                          cl, NULL);
    g_source_attach(cl->out_src, cl->ctl->ctx);
  }
}

static gboolean on_writable(GSocket *sock, GIOCondition cond, gpointer ud) {
  client *cl = ud;
  client_ref(cl);
  client_flush(cl);
  client_unref(cl);
  return G_SOURCE_CONTINUE; /* client_flush removes this source when done */
}

/* Queues head (and tail, if any) as one message. A client that lets more
 * than CONTROL_MAX_OUT bytes pile up is not reading: drop it. */
static void client_send(client *cl, const uint8_t *head, size_t hlen,
                        const uint8_t *tail, size_t tlen) {
  if (cl->closed)
    return;
  if (cl->out->len + hlen + tlen > CONTROL_MAX_OUT) {
    client_close(cl);
    return;
  }
  g_byte_array_append(cl->out, head, (guint)hlen);
  if (tlen > 0)
    g_byte_array_append(cl->out, tail, (guint)tlen);
  client_flush(cl);
}

/* ---- frames ---- */

/* Packs [1, msgid, nil] or [2, method] and sends it followed by the packed
 * object in body (nil when empty). */
static void send_frame(client *cl, kith_pack *p, const uint8_t *body,
                       size_t len) {
  static const uint8_t NIL = 0xc0;
  uint8_t *head = NULL;
  size_t hlen = 0;
  if (kith_pack_take(p, &head, &hlen) != KITH_OK) {
    client_close(cl);
    return;
  }
  if (body == NULL || len == 0)
    client_send(cl, head, hlen, &NIL, 1);
  else
    client_send(cl, head, hlen, body, len);
  g_free(head);
}

static void pack_notification_head(kith_pack *p, const char *method) {
  kith_pack_init(p);
  kith_pack_array(p, 3);
  kith_pack_uint(p, 2);
  kith_pack_cstr(p, method);
}

static void call_free(kith_rpc_call *call) {
  client_unref(call->cl);
  g_free(call);
}

void kith_rpc_reply(kith_rpc_call *call, const uint8_t *result, size_t len) {
  if (!call->cl->closed) {
    kith_pack p;
    kith_pack_init(&p);
    kith_pack_array(&p, 4);
    kith_pack_uint(&p, 1);
    kith_pack_uint(&p, call->msgid);
    kith_pack_nil(&p);
    send_frame(call->cl, &p, result, len);
    kith_pack_clear(&p);
  }
  call_free(call);
}

/* One valid UTF-8 line of bounded length, whatever the handler wrote. */
static char *one_line(const char *msg) {
  char *s = g_utf8_make_valid(msg, -1);
  if (strlen(s) > CONTROL_MAX_ERRMSG) {
    char *end = g_utf8_find_prev_char(s, s + CONTROL_MAX_ERRMSG + 1);
    *end = '\0';
  }
  for (char *q = s; *q; q++)
    if ((unsigned char)*q < 0x20 || *q == 0x7f)
      *q = ' ';
  return s;
}

void kith_rpc_error(kith_rpc_call *call, kith_err code, const char *fmt, ...) {
  if (!call->cl->closed) {
    va_list ap;
    va_start(ap, fmt);
    char *raw = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    char *msg = one_line(raw);
    kith_pack p;
    kith_pack_init(&p);
    kith_pack_array(&p, 4);
    kith_pack_uint(&p, 1);
    kith_pack_uint(&p, call->msgid);
    kith_pack_array(&p, 2);
    if (msgpack_pack_int(&p.pk, (int)code) != 0)
      p.failed = 1;
    kith_pack_cstr(&p, msg);
    send_frame(call->cl, &p, NULL, 0);
    kith_pack_clear(&p);
    g_free(msg);
    g_free(raw);
  }
  call_free(call);
}

int kith_rpc_is_alive(const kith_rpc_call *call) {
  return !call->cl->closed;
}

void kith_rpc_notify_caller(kith_rpc_call *call, const char *method,
                            const uint8_t *params, size_t len) {
  if (call->cl->closed)
    return;
  kith_pack p;
  pack_notification_head(&p, method);
  send_frame(call->cl, &p, params, len);
  kith_pack_clear(&p);
}

/* A full topic set ignores further topics: the cap only bounds memory, and
 * no client of ours needs that many. */
void kith_rpc_subscribe(kith_rpc_call *call, const char *topic) {
  client *cl = call->cl;
  if (cl->closed || g_hash_table_size(cl->topics) >= CONTROL_MAX_TOPICS)
    return;
  g_hash_table_add(cl->topics, g_strdup(topic));
}

int kith_control_has_topic(const kith_control *c, const char *topic) {
  for (guint i = 0; c && i < c->clients->len; i++)
    if (g_hash_table_contains(((client *)c->clients->pdata[i])->topics, topic))
      return 1;
  return 0;
}

void kith_control_notify(kith_control *c, const char *topic, const char *method,
                         const uint8_t *params, size_t len) {
  kith_pack p;
  pack_notification_head(&p, method);
  uint8_t *head = NULL;
  size_t hlen = 0;
  if (kith_pack_take(&p, &head, &hlen) != KITH_OK) {
    kith_pack_clear(&p);
    return;
  }
  /* A send may drop a client (and edit the list): walk a copy. */
  GPtrArray *snap = g_ptr_array_new();
  for (guint i = 0; i < c->clients->len; i++)
    g_ptr_array_add(snap, client_ref(c->clients->pdata[i]));
  for (guint i = 0; i < snap->len; i++) {
    client *cl = snap->pdata[i];
    if (g_hash_table_contains(cl->topics, topic))
      client_send(cl, head, hlen, params, len);
    client_unref(cl);
  }
  g_ptr_array_free(snap, TRUE);
  g_free(head);
  kith_pack_clear(&p);
}

/* ---- requests ---- */

kith_err kith_control_decode_request(const uint8_t *buf, size_t len,
                                     msgpack_unpacked *u, uint64_t *msgid,
                                     char method[KITH_CONTROL_MAX_METHOD + 1],
                                     const msgpack_object **params) {
  const msgpack_object *it = NULL;
  uint64_t type = 0;
  const char *s = NULL;
  size_t slen = 0;
  kith_err err = kith_codec_unpack_loose(buf, len, u);
  if (err != KITH_OK)
    return err;
  if (kith_codec_array(&u->data, 4, &it) != KITH_OK ||
      kith_codec_uint(&it[0], 0, &type) != KITH_OK ||
      kith_codec_uint(&it[1], UINT32_MAX, msgid) != KITH_OK ||
      kith_codec_str(&it[2], KITH_CONTROL_MAX_METHOD, &s, &slen) != KITH_OK ||
      it[3].type != MSGPACK_OBJECT_ARRAY)
    return KITH_ERR_DECODE;
  memcpy(method, s, slen);
  method[slen] = '\0';
  *params = &it[3];
  return KITH_OK;
}

static void dispatch(client *cl, uint64_t msgid, const char *name,
                     const msgpack_object *params) {
  kith_rpc_call *call = g_new0(kith_rpc_call, 1);
  call->cl = client_ref(cl);
  call->msgid = msgid;
  rpc_method *m = g_hash_table_lookup(cl->ctl->methods, name);
  if (m == NULL)
    kith_rpc_error(call, KITH_ERR_ARG, "unknown method %s", name);
  else
    m->h(call, params, m->ud);
}

static void handle_message(client *cl, const uint8_t *buf, size_t len) {
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  uint64_t msgid = 0;
  char name[KITH_CONTROL_MAX_METHOD + 1];
  const msgpack_object *params = NULL;
  if (kith_control_decode_request(buf, len, &u, &msgid, name, &params) !=
      KITH_OK)
    client_close(cl);
  else
    dispatch(cl, msgid, name, params);
  msgpack_unpacked_destroy(&u);
}

/* Handles every complete message in the input buffer. */
static void client_consume(client *cl) {
  while (!cl->closed) {
    long n = kith_control_scan(&cl->scan, cl->in->data, cl->in->len,
                               KITH_CONTROL_MAX_MSG);
    if (n < 0 || cl->in->len > CONTROL_MAX_IN) {
      client_close(cl);
      return;
    }
    if (n == 0)
      return;
    handle_message(cl, cl->in->data, (size_t)n);
    g_byte_array_remove_range(cl->in, 0, (guint)n);
    kith_control_scan_init(&cl->scan);
  }
}

static gboolean on_readable(GSocket *sock, GIOCondition cond, gpointer ud) {
  client *cl = ud;
  uint8_t chunk[CONTROL_READ_CHUNK];
  GError *err = NULL;
  gssize n = g_socket_receive(sock, (gchar *)chunk, sizeof chunk, NULL, &err);
  if (n < 0 && g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
    g_error_free(err);
    return G_SOURCE_CONTINUE;
  }
  g_clear_error(&err);
  client_ref(cl);
  if (n <= 0) {
    client_close(cl);
  } else {
    g_byte_array_append(cl->in, chunk, (guint)n);
    client_consume(cl);
  }
  gboolean keep = !cl->closed;
  client_unref(cl);
  return keep;
}

static void client_new(kith_control *c, GSocket *sock) {
  client *cl = g_new0(client, 1);
  cl->refs = 1;
  cl->ctl = c;
  cl->sock = sock;
  cl->in = g_byte_array_new();
  cl->out = g_byte_array_new();
  cl->topics = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  kith_control_scan_init(&cl->scan);
  g_socket_set_blocking(sock, FALSE);
  cl->in_src =
      g_socket_create_source(sock, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
  g_source_set_callback(cl->in_src, (GSourceFunc)(void (*)(void))on_readable,
                        cl, NULL);
  g_source_attach(cl->in_src, c->ctx);
  g_ptr_array_add(c->clients, cl);
}

static gboolean on_accept(GSocket *listener, GIOCondition cond, gpointer ud) {
  kith_control *c = ud;
  GSocket *sock = g_socket_accept(listener, NULL, NULL);
  if (sock == NULL)
    return G_SOURCE_CONTINUE;
  if (c->clients->len >= KITH_CONTROL_MAX_CLIENTS) {
    g_socket_close(sock, NULL);
    g_object_unref(sock);
    return G_SOURCE_CONTINUE;
  }
  client_new(c, sock);
  return G_SOURCE_CONTINUE;
}

/* ---- the server ---- */

/* Is a node already answering at path? Removes a stale socket file left
 * by a node that died; refuses to touch anything else. */
static kith_err clear_path(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0)
    return errno == ENOENT ? KITH_OK : KITH_ERR_IO;
  if (!S_ISSOCK(st.st_mode))
    return KITH_ERR_EXISTS;
  GSocket *s = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                            G_SOCKET_PROTOCOL_DEFAULT, NULL);
  if (s == NULL)
    return KITH_ERR_IO;
  GSocketAddress *a = g_unix_socket_address_new(path);
  GError *err = NULL;
  kith_err e = KITH_ERR_BUSY;
  if (!g_socket_connect(s, a, NULL, &err)) {
    if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
      e = unlink(path) == 0 || errno == ENOENT ? KITH_OK : KITH_ERR_IO;
    else if (!g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
      e = KITH_ERR_IO;
    g_error_free(err);
  }
  g_object_unref(a);
  g_object_unref(s);
  return e;
}

/* Binds with umask 077 so the socket is never reachable by others, not
 * even between bind and chmod. */
static kith_err bind_listener(GSocket *s, const char *path) {
  GSocketAddress *a = g_unix_socket_address_new(path);
  mode_t old = umask(077);
  gboolean ok = g_socket_bind(s, a, FALSE, NULL);
  umask(old);
  g_object_unref(a);
  if (!ok)
    return KITH_ERR_IO;
  if (chmod(path, 0600) != 0) {
    unlink(path);
    return KITH_ERR_IO;
  }
  g_socket_set_listen_backlog(s, CONTROL_BACKLOG);
  if (!g_socket_listen(s, NULL)) {
    unlink(path);
    return KITH_ERR_IO;
  }
  return KITH_OK;
}

static void method_free(gpointer m) {
  g_free(m);
}

kith_err kith_control_new(GMainContext *ctx, const char *path,
                          kith_control **out) {
  *out = NULL;
  if (path == NULL ||
      strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
    return KITH_ERR_ARG;
  kith_err e = clear_path(path);
  if (e != KITH_OK)
    return e;
  GSocket *s = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                            G_SOCKET_PROTOCOL_DEFAULT, NULL);
  if (s == NULL)
    return KITH_ERR_IO;
  e = bind_listener(s, path);
  if (e != KITH_OK) {
    g_object_unref(s);
    return e;
  }
  g_socket_set_blocking(s, FALSE);
  kith_control *c = g_new0(kith_control, 1);
  c->ctx = ctx ? g_main_context_ref(ctx) : g_main_context_ref_thread_default();
  c->path = g_strdup(path);
  c->listener = s;
  c->methods =
      g_hash_table_new_full(g_str_hash, g_str_equal, g_free, method_free);
  c->clients = g_ptr_array_new();
  c->accept_src = g_socket_create_source(s, G_IO_IN, NULL);
  g_source_set_callback(c->accept_src, (GSourceFunc)(void (*)(void))on_accept,
                        c, NULL);
  g_source_attach(c->accept_src, c->ctx);
  *out = c;
  return KITH_OK;
}

void kith_control_free(kith_control *c) {
  if (c == NULL)
    return;
  while (c->clients->len > 0)
    client_close(c->clients->pdata[c->clients->len - 1]);
  drop_source(&c->accept_src);
  g_socket_close(c->listener, NULL);
  g_object_unref(c->listener);
  unlink(c->path);
  g_free(c->path);
  g_hash_table_unref(c->methods);
  g_ptr_array_free(c->clients, TRUE);
  g_main_context_unref(c->ctx);
  g_free(c);
}

void kith_control_register(kith_control *c, const char *method_name,
                           kith_rpc_handler h, void *ud) {
  rpc_method *m = g_new0(rpc_method, 1);
  m->h = h;
  m->ud = ud;
  g_hash_table_replace(c->methods, g_strdup(method_name), m);
}
