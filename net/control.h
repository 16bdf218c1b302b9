/* kith: the control socket: msgpack-RPC over a Unix stream socket.
 *
 * request [0, msgid uint, method str, params array]
 * response [1, msgid, error, result]: error is nil or [code int, message
 *   str] (code a kith_err; message one line for the user); result is any
 *   msgpack object (maps with string keys for records)
 * notification [2, method str, params array] (node to subscribed clients)
 * Frames on the socket are plain consecutive msgpack objects, each at most
 * KITH_CONTROL_MAX_MSG bytes. The socket file has mode 0600. */
#ifndef KITH_CONTROL_H
#define KITH_CONTROL_H

#include <glib.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"

#define KITH_CONTROL_MAX_MSG (256 * 1024)
#define KITH_CONTROL_MAX_CLIENTS 64

typedef struct kith_control kith_control;
typedef struct kith_rpc_call kith_rpc_call;

/* A method handler. params borrow until return. The handler must answer
 * exactly once, now or later, with kith_rpc_reply or kith_rpc_error. */
typedef void (*kith_rpc_handler)(kith_rpc_call *call,
                                 const msgpack_object *params, void *ud);

KITH_MUST kith_err kith_control_new(GMainContext *ctx, const char *path,
                                    kith_control **out);
/* Closes every client and removes the socket file. */
void kith_control_free(kith_control *c);
void kith_control_register(kith_control *c, const char *method,
                           kith_rpc_handler h, void *ud);

/* result: the packed bytes of one msgpack object (copied). Frees call. */
void kith_rpc_reply(kith_rpc_call *call, const uint8_t *result, size_t len);
/* Frees call. message is copied. */
void kith_rpc_error(kith_rpc_call *call, kith_err code, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
/* Is the client that made this call still connected? (long calls) */
int kith_rpc_is_alive(const kith_rpc_call *call);
/* Sends a notification to this call's client only (progress lines). */
void kith_rpc_notify_caller(kith_rpc_call *call, const char *method,
                            const uint8_t *params, size_t len);
/* Subscribes this call's client to topic (e.g. a group id in hex). */
void kith_rpc_subscribe(kith_rpc_call *call, const char *topic);

/* Is any client subscribed to topic? */
int kith_control_has_topic(const kith_control *c, const char *topic);
/* Sends [2, method, params] to every client subscribed to topic. params are
 * the packed bytes of one array. */
void kith_control_notify(kith_control *c, const char *topic, const char *method,
                         const uint8_t *params, size_t len);

/* Decodes one request [0, msgid, method, params] (loose msgpack: maps are
 * allowed in params) into u (caller calls msgpack_unpacked_init before and
 * msgpack_unpacked_destroy after, also on error): *msgid, the method name
 * copied into method (NUL-terminated), *params (an array) borrowing from
 * u. Returns KITH_OK, KITH_ERR_DECODE or KITH_ERR_LIMIT. */
#define KITH_CONTROL_MAX_METHOD 64 /* bytes of a method name */
KITH_MUST kith_err kith_control_decode_request(
    const uint8_t *buf, size_t len, msgpack_unpacked *u, uint64_t *msgid,
    char method[KITH_CONTROL_MAX_METHOD + 1], const msgpack_object **params);

/* Finding message boundaries on a stream without allocating: a resumable
 * scan over msgpack headers that never trusts a declared length or count
 * beyond max bytes. Used by the control server and by its clients. */
typedef struct kith_control_scanner {
  size_t pos;       /* offset of the next item header not yet consumed */
  uint64_t pending; /* items still to read before the object is complete */
} kith_control_scanner;

void kith_control_scan_init(kith_control_scanner *s);
/* buf holds the bytes received so far of the current object (the same
 * prefix on every call, growing). Returns the length of the first complete
 * object (then call kith_control_scan_init before the next one), 0 if more
 * bytes are needed, or -1 if the bytes are not msgpack or the object would
 * be longer than max. */
KITH_MUST long kith_control_scan(kith_control_scanner *s, const uint8_t *buf,
                                 size_t len, size_t max);

#endif
