/* kith: a group's log as clients see it (docs/protocol.md 12.3): items
 * (messages with their replies, reactions, edits and deletions; notices
 * of changes), pages of them, the read marker, the methods that react,
 * edit and delete, and the notifications that carry new and changed items
 * to subscribers. */
#include <sodium.h>
#include <string.h>

#include "../core/codec.h"
#include "node_rpc_int.h"

#define LOG_PAGE_MAX 500 /* items in one log reply */
/* one log reply at most (the control socket's limit is 256 KiB) */
#define LOG_PAGE_BYTES (192 * 1024)
#define LOG_ENTRY_OVERHEAD 300 /* keys, ids and name of one entry */
#define REACTIONS_MAX 64       /* distinct emoji shown on one message */

typedef struct reaction {
  char emoji[KITH_EMOJI_MAX + 1];
  uint32_t count;
  int mine;
} reaction;

/* The last react event of each (author, emoji) decides; related items
 * come in (depth, id) order. */
static void tally(kith_node *n, GPtrArray *rel, GArray *out) {
  GHashTable *last =
      g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < rel->len; i++) {
    kith_store_item *r = rel->pdata[i];
    if (r->kind != KITH_EV_REACT || !r->text)
      continue;
    char author[KITH_ID_TEXT_LEN + 1];
    kith_id_to_text(r->author, author);
    g_hash_table_replace(last, g_strconcat(author, " ", r->text, NULL),
                         GINT_TO_POINTER((r->flag & KITH_STORE_ON) ? 1 : 2));
  }
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init(&it, last);
  while (g_hash_table_iter_next(&it, &k, &v)) {
    if (GPOINTER_TO_INT(v) != 1)
      continue; /* taken back */
    const char *emoji = strchr(k, ' ') + 1;
    int mine = strncmp(k, n->me_text, KITH_ID_TEXT_LEN) == 0;
    guint j = 0;
    while (j < out->len &&
           strcmp(g_array_index(out, reaction, j).emoji, emoji) != 0)
      j++;
    if (j == out->len && out->len < REACTIONS_MAX) {
      reaction r = {.count = 0};
      g_strlcpy(r.emoji, emoji, sizeof r.emoji);
      g_array_append_val(out, r);
    }
    if (j < out->len) {
      g_array_index(out, reaction, j).count++;
      g_array_index(out, reaction, j).mine |= mine;
    }
  }
  g_hash_table_destroy(last);
}

static void pack_reactions(kith_pack *pk, GArray *rs) {
  kith_pack_cstr(pk, "reactions");
  kith_pack_array(pk, rs->len);
  for (guint i = 0; i < rs->len; i++) {
    const reaction *r = &g_array_index(rs, reaction, i);
    msgpack_pack_map(&pk->pk, 3);
    rpc_kv_str(pk, "emoji", r->emoji);
    rpc_kv_uint(pk, "count", r->count);
    kith_pack_cstr(pk, "mine");
    kith_pack_bool(pk, r->mine);
  }
}

/* One item as a map; with_gid adds group_id (notifications); fresh: a
 * message accepted just now, which nothing can react to, edit or delete
 * yet (those apply only to a message accepted before them, 5.7), so the
 * store is not asked. Returns 0 (and packs nothing) for a control event
 * that shows no notice. */
static int pack_item(kith_node *n, node_group *ng, const kith_store_item *it,
                     int with_gid, int fresh, kith_pack *pk) {
  int message = it->kind == KITH_EV_MESSAGE;
  char *notice = message ? NULL
                         : kith_group_notice(ng->g, it->kind, it->author,
                                             it->ts, it->text, it->text_len);
  if (!message && !notice)
    return 0;
  GPtrArray *rel =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_store_item_free);
  if (message && !fresh &&
      kith_store_list_related(n->store, kith_group_id(ng->g), it->id, rel) !=
          KITH_OK)
    g_ptr_array_set_size(rel, 0);
  const char *text = message ? (const char *)it->text : notice;
  int edited = 0, deleted = 0;
  for (guint i = 0; i < rel->len; i++) {
    const kith_store_item *r = rel->pdata[i];
    if (r->kind == KITH_EV_EDIT && r->text)
      text = (const char *)r->text, edited = 1;
    else if (r->kind == KITH_EV_DELETE)
      deleted = 1;
  }
  GArray *rs = g_array_new(FALSE, TRUE, sizeof(reaction));
  tally(n, rel, rs);
  msgpack_pack_map(&pk->pk, with_gid ? 11 : 10);
  rpc_kv_str(pk, "type", message ? "message" : "notice");
  rpc_kv_id(pk, "event_id", it->id);
  rpc_kv_uint(pk, "time_ms", it->ts);
  rpc_kv_id(pk, "sender_id", it->author);
  rpc_kv_str(pk, "sender_name", kith_group_name_of(ng->g, it->author));
  rpc_kv_str(pk, "text", deleted ? "" : text);
  kith_pack_cstr(pk, "reply_to");
  if (message && it->has_ref) {
    char ref[KITH_ID_TEXT_LEN + 1];
    kith_id_to_text(it->ref, ref);
    kith_pack_cstr(pk, ref);
  } else {
    kith_pack_nil(pk);
  }
  pack_reactions(pk, deleted ? g_array_set_size(rs, 0) : rs);
  kith_pack_cstr(pk, "edited");
  kith_pack_bool(pk, edited);
  kith_pack_cstr(pk, "deleted");
  kith_pack_bool(pk, deleted);
  if (with_gid)
    rpc_kv_str(pk, "group_id", ng->id_text);
  g_array_free(rs, TRUE);
  g_ptr_array_unref(rel);
  g_free(notice);
  return 1;
}

/* [GROUP, n, before EVENT or nil, unread bool]: one page of the log, the
 * newest items (at most n, 0 = any number) before `before` (or the newest
 * of all), only the unread ones if asked, as many as fit in
 * LOG_PAGE_BYTES, in display order (time, id). */
static void rpc_log(kith_rpc_call *call, const msgpack_object *params,
                    void *ud) {
  kith_node *n = ud;
  node_group *ng = rpc_resolve_group(n, call, params);
  uint64_t count = 0;
  uint8_t before[32];
  int has_before = params->via.array.size > 2 &&
                   params->via.array.ptr[2].type != MSGPACK_OBJECT_NIL;
  int unread = params->via.array.size > 3 &&
               params->via.array.ptr[3].type == MSGPACK_OBJECT_BOOLEAN &&
               params->via.array.ptr[3].via.boolean;

  if (!ng)
    return;
  if (params->via.array.size > 1 &&
      !rpc_param_uint(params, 1, 1u << 30, &count)) {
    kith_rpc_error(call, KITH_ERR_ARG,
                   "log takes a count (0 to 2^30) and an event id");
    return;
  }
  if (has_before && !rpc_resolve_event(n, call, ng, params, 2, before))
    return;
  kith_store_group row = {0};
  if (unread &&
      kith_store_get_group(n->store, kith_group_id(ng->g), &row) != KITH_OK)
    row.has_read = 0;
  static const uint8_t zero[32];
  GPtrArray *items =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_store_item_free);
  kith_err err = kith_store_list_items(
      n->store, kith_group_id(ng->g),
      count && count < LOG_PAGE_MAX ? (size_t)count : LOG_PAGE_MAX,
      has_before ? before : NULL, row.has_read ? row.read_ts : 0,
      unread ? (row.has_read ? row.read_id : zero) : NULL, items);
  if (err != KITH_OK) {
    kith_rpc_error(call, err, "cannot read the log: %s", kith_strerror(err));
    g_ptr_array_unref(items);
    return;
  }
  /* Keep the newest items that fit (an item alone always fits). */
  size_t first, bytes = 0;
  for (first = items->len; first > 0; first--) {
    size_t len = ((kith_store_item *)items->pdata[first - 1])->text_len +
                 LOG_ENTRY_OVERHEAD;
    if (bytes + len > LOG_PAGE_BYTES && first < items->len)
      break;
    bytes += len;
  }
  kith_pack body;
  kith_pack_init(&body);
  uint32_t shown = 0;
  for (guint i = (guint)first; i < items->len; i++)
    shown += pack_item(n, ng, items->pdata[i], 0, 0, &body);
  kith_pack pk;
  kith_pack_init(&pk);
  kith_pack_array(&pk, shown);
  msgpack_sbuffer_write(&pk.sb, body.sb.data, body.sb.size);
  kith_pack_clear(&body);
  g_ptr_array_unref(items);
  node_rpc_reply(n, call, &pk);
}

/* [GROUP, EVENT]: everything up to EVENT (display order) is read. */
static void rpc_mark_read(kith_rpc_call *call, const msgpack_object *params,
                          void *ud) {
  kith_node *n = ud;
  node_group *ng = rpc_resolve_group(n, call, params);
  uint8_t id[32];
  uint64_t ts;
  kith_pack pk;

  if (!ng || !rpc_resolve_event(n, call, ng, params, 1, id))
    return;
  if (kith_group_event_info(ng->g, id, NULL, &ts, NULL, NULL) != KITH_OK ||
      kith_store_set_read(n->store, kith_group_id(ng->g), ts, id) != KITH_OK) {
    kith_rpc_error(call, KITH_ERR_IO, "could not store the read marker");
    return;
  }
  kith_pack_init(&pk);
  msgpack_pack_map(&pk.pk, 0);
  node_rpc_reply(n, call, &pk);
}

uint64_t node_unread(kith_node *n, node_group *ng) {
  kith_store_group row = {0};
  static const uint8_t zero[32];
  uint64_t count = 0;
  if (kith_store_get_group(n->store, kith_group_id(ng->g), &row) != KITH_OK)
    return 0;
  if (kith_store_count_after(
          n->store, kith_group_id(ng->g), row.has_read ? row.read_ts : 0,
          row.has_read ? row.read_id : zero, n->me.pk, &count) != KITH_OK)
    return 0;
  return count;
}

static const char *post_error(kith_err err) {
  switch (err) {
  case KITH_ERR_FORBIDDEN:
    return "not allowed: only the author edits a message, its author or an "
           "owner or admin deletes it, and a muted member cannot post";
  case KITH_ERR_NOT_FOUND:
    return "no such message in this group";
  case KITH_ERR_ARG:
    return "a reaction is 1 to 32 bytes of text without control characters";
  case KITH_ERR_STATE:
    return "this node does not hold the group's current key yet";
  default:
    return kith_strerror(err);
  }
}

static void post_done(kith_node *n, kith_rpc_call *call, node_group *ng,
                      kith_err err, GPtrArray *acc) {
  if (err != KITH_OK && err != KITH_ERR_REKEY && err != KITH_ERR_IO &&
      err != KITH_ERR_FULL) {
    g_ptr_array_unref(acc);
    kith_rpc_error(call, err, "cannot do that: %s", post_error(err));
    return;
  }
  rpc_publish_change(n, call, ng, err, acc);
}

/* [GROUP, EVENT, emoji, remove bool] */
static void rpc_react(kith_rpc_call *call, const msgpack_object *params,
                      void *ud) {
  kith_node *n = ud;
  node_group *ng = rpc_resolve_group(n, call, params);
  char emoji[KITH_EMOJI_MAX + 1];
  uint8_t id[32];

  if (!ng || !rpc_resolve_event(n, call, ng, params, 1, id))
    return;
  if (!node_rpc_param_str(params, 2, emoji, sizeof emoji) || !emoji[0]) {
    kith_rpc_error(call, KITH_ERR_ARG, "%s", post_error(KITH_ERR_ARG));
    return;
  }
  int remove = params->via.array.size > 3 &&
               params->via.array.ptr[3].type == MSGPACK_OBJECT_BOOLEAN &&
               params->via.array.ptr[3].via.boolean;
  GPtrArray *acc = rpc_new_batch();
  node_local_begin(n);
  post_done(n, call, ng,
            kith_group_react(ng->g, id, emoji, !remove, node_wall_ms(), acc),
            acc);
}

/* [GROUP, EVENT, text] */
static void rpc_edit(kith_rpc_call *call, const msgpack_object *params,
                     void *ud) {
  kith_node *n = ud;
  node_group *ng = rpc_resolve_group(n, call, params);
  uint8_t id[32];
  const char *text;
  size_t len;

  if (!ng || !rpc_resolve_event(n, call, ng, params, 1, id))
    return;
  if (params->via.array.size < 3 ||
      kith_codec_str(&params->via.array.ptr[2], KITH_TEXT_MAX - 1, &text,
                     &len) != KITH_OK ||
      len == 0) {
    kith_rpc_error(call, KITH_ERR_ARG,
                   "a message is 1 to %d bytes of UTF-8 text",
                   KITH_TEXT_MAX - 1);
    return;
  }
  GPtrArray *acc = rpc_new_batch();
  node_local_begin(n);
  post_done(n, call, ng,
            kith_group_edit(ng->g, id, text, len, node_wall_ms(), acc), acc);
}

/* [GROUP, EVENT] */
static void rpc_delete(kith_rpc_call *call, const msgpack_object *params,
                       void *ud) {
  kith_node *n = ud;
  node_group *ng = rpc_resolve_group(n, call, params);
  uint8_t id[32];

  if (!ng || !rpc_resolve_event(n, call, ng, params, 1, id))
    return;
  GPtrArray *acc = rpc_new_batch();
  node_local_begin(n);
  post_done(n, call, ng, kith_group_delete(ng->g, id, node_wall_ms(), acc),
            acc);
}

/* ---- notifications ---- */

static void notify_with(kith_node *n, node_group *ng, const kith_store_item *it,
                        int fresh, const char *method) {
  uint8_t *buf;
  size_t len;
  kith_pack pk;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 1);
  if (pack_item(n, ng, it, 1, fresh, &pk) &&
      kith_pack_take(&pk, &buf, &len) == KITH_OK) {
    kith_control_notify(n->ctl, ng->id_text, method, buf, len);
    g_free(buf);
  } else {
    kith_pack_clear(&pk);
  }
}

/* The item as the store holds it now (with what relates to it). */
static void notify_item(kith_node *n, node_group *ng, const uint8_t id[32],
                        const char *method) {
  kith_store_item *it = NULL;
  if (kith_store_get_item(n->store, kith_group_id(ng->g), id, &it) != KITH_OK)
    return;
  notify_with(n, ng, it, 0, method);
  kith_store_item_free(it);
}

/* A message just accepted, from what the engine handed over: the same
 * item the store would give back, without reading it back. */
static void notify_message(kith_node *n, node_group *ng,
                           const kith_accepted *a) {
  kith_store_item it = {.has_ref = a->has_ref,
                        .ts = a->ev.ts_ms,
                        .depth = a->ev.depth,
                        .kind = a->ev.kind,
                        .text = (uint8_t *)a->text,
                        .text_len = a->text_len};
  memcpy(it.id, a->ev.id, 32);
  memcpy(it.author, a->ev.author, 32);
  memcpy(it.ref, a->ref, 32);
  notify_with(n, ng, &it, 1, "message");
}

/* This node was removed or banned by an event that took effect. */
static void notify_removed(kith_node *n, node_group *ng,
                           const kith_accepted *a) {
  uint8_t *buf;
  size_t len;
  kith_pack pk;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 1);
  msgpack_pack_map(&pk.pk, 3);
  rpc_kv_str(&pk, "group_id", ng->id_text);
  rpc_kv_id(&pk, "by", a->ev.author);
  rpc_kv_str(&pk, "by_name", kith_group_name_of(ng->g, a->ev.author));
  if (kith_pack_take(&pk, &buf, &len) == KITH_OK) {
    kith_control_notify(n->ctl, ng->id_text, "removed", buf, len);
    g_free(buf);
  }
}

void node_notify_accepted(kith_node *n, node_group *ng, const kith_accepted *a,
                          int was_member) {
  if (was_member && !kith_group_is_member(ng->g, n->me.pk) &&
      (a->ev.kind == KITH_EV_REMOVE || a->ev.kind == KITH_EV_BAN))
    notify_removed(n, ng, a);
  if (!kith_control_has_topic(n->ctl, ng->id_text))
    return;
  if (a->ev.kind == KITH_EV_MESSAGE && a->text)
    notify_message(n, ng, a);
  else if (a->ev.kind == KITH_EV_REACT || a->ev.kind == KITH_EV_EDIT ||
           a->ev.kind == KITH_EV_DELETE) {
    if (a->applies)
      notify_item(n, ng, a->ref, "update");
  } else if (a->ev.kind != KITH_EV_MESSAGE) {
    notify_item(n, ng, a->ev.id, "message");
  }
}

void node_log_register(kith_node *n) {
  static const struct {
    const char *name;
    kith_rpc_handler fn;
  } methods[] = {
      {"log", rpc_log},   {"mark_read", rpc_mark_read}, {"react", rpc_react},
      {"edit", rpc_edit}, {"delete", rpc_delete},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(methods); i++)
    kith_control_register(n->ctl, methods[i].name, methods[i].fn, n);
}
