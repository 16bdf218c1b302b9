/* kith: helpers shared by the control-socket method files (node_rpc.c:
 * status, groups, messages; node_rpc_mod.c: moderation and invites). Not
 * an API. */
#ifndef KITH_NODE_RPC_INT_H
#define KITH_NODE_RPC_INT_H

#include "node_int.h"

const char *rpc_role_name(kith_role r);
/* Map entries: a string, an unsigned integer, an id in base32. */
void rpc_kv_str(kith_pack *pk, const char *k, const char *v);
void rpc_kv_uint(kith_pack *pk, const char *k, uint64_t v);
void rpc_kv_id(kith_pack *pk, const char *k, const uint8_t id[32]);
/* params[i] as an unsigned integer at most max. */
int rpc_param_uint(const msgpack_object *params, uint32_t i, uint64_t max,
                   uint64_t *v);
/* GROUP (params[0]), MEMBER (params[1]) and EVENT (params[i]) by the
 * naming rules of docs/protocol.md 12.4; each replies with the error
 * itself and returns NULL (0) when it fails. */
node_group *rpc_resolve_group(kith_node *n, kith_rpc_call *call,
                              const msgpack_object *params);
const kith_member *rpc_resolve_member(kith_rpc_call *call, node_group *ng,
                                      const msgpack_object *params, uint32_t i);
int rpc_resolve_event(kith_node *n, kith_rpc_call *call, node_group *ng,
                      const msgpack_object *params, uint32_t i,
                      uint8_t out[32]);
/* An array for accepted events (kith_accepted_free). */
GPtrArray *rpc_new_batch(void);
/* Stores and spreads the events of a local change, then answers with the
 * id of the first one, or with the error (err). Takes acc. */
void rpc_publish_change(kith_node *n, kith_rpc_call *call, node_group *ng,
                        kith_err err, GPtrArray *acc);
const char *rpc_change_error(kith_err err);
/* The answer to a change that could not be written: nothing changed. */
void rpc_reply_store_error(kith_node *n, kith_rpc_call *call, kith_err err);
void rpc_pack_event_id(kith_node *n, kith_rpc_call *call, const uint8_t id[32]);

/* node_rpc_mod.c */
void node_rpc_mod_register(kith_node *n);

/* node_log.c */
void node_log_register(kith_node *n);
/* Readable messages after the group's read marker. */
uint64_t node_unread(kith_node *n, node_group *ng);

#endif
