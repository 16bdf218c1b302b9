/* kith group create|list|info|members|mode|invites. */
#include <stdio.h>
#include <string.h>

#include "../core/group.h"
#include "rpc.h"

static const cli_field CREATED_FIELDS[] = {
    {"group_id", "group id", NULL}, {"name", "name", NULL}, {NULL, NULL, NULL}};

static const cli_field LIST_FIELDS[] = {
    {"group_id", NULL, NULL},    {"name", NULL, NULL},
    {"members", NULL, NULL},     {"role", NULL, NULL},
    {"unread", NULL, " unread"}, {NULL, NULL, NULL}};

static const cli_simple LIST = {
    .cmd = "group list",
    .method = "group.list",
    .summary = "List your groups: id, name, members, your role, unread "
               "messages. A group you left or were removed from is listed "
               "with the role 'former'.",
    .fields = LIST_FIELDS,
    .rows = 1};

/* Labels are the JSON keys, so scripts can grep either form. */
static const cli_field INFO_FIELDS[] = {{"group_id", "group_id", NULL},
                                        {"name", "name", NULL},
                                        {"topic", "topic", NULL},
                                        {"history", "history", NULL},
                                        {"epoch", "epoch", NULL},
                                        {"members", "members", NULL},
                                        {"events", "events", NULL},
                                        {"state_hash", "state_hash", NULL},
                                        {"links", "links", NULL},
                                        {"mode", "mode", NULL},
                                        {"invites", "invites", NULL},
                                        {"banned", "banned", NULL},
                                        {NULL, NULL, NULL}};

static const cli_simple INFO = {.cmd = "group info",
                                .method = "group.info",
                                .params = "GROUP",
                                .nargs = 1,
                                .summary =
                                    "Show a group's state as this node sees "
                                    "it. GROUP is a name, an id or a "
                                    "unique prefix of one.",
                                .fields = INFO_FIELDS};

/* The keys of a member in --json (CLI.md); in text, "online" becomes
 * "online", "offline, last seen TIME" or "offline, never seen". */
#define MEMBER_KEYS 4
static const cli_field MEMBER_FIELDS[] = {{"node_id", NULL, NULL},
                                          {"name", NULL, NULL},
                                          {"role", NULL, NULL},
                                          {"online", NULL, NULL},
                                          {NULL, NULL, NULL}};

static const cli_simple MEMBERS = {.cmd = "group members",
                                   .method = "group.members",
                                   .params = "GROUP",
                                   .nargs = 1,
                                   .summary =
                                       "List the members of a group: node "
                                       "id, name, role, online (reachable "
                                       "in the group's mesh, or when last "
                                       "seen).",
                                   .fields = MEMBER_FIELDS,
                                   .rows = 1};

/* A group name: trimmed, 1 to KITH_NAME_MAX bytes of printable text. */
static char *group_name(const char *arg) {
  char *name = g_strstrip(g_strdup(arg));
  size_t len = strlen(name);
  int ok = len > 0 && len <= KITH_NAME_MAX && g_utf8_validate(name, -1, NULL);
  for (const char *p = name; ok && *p; p = g_utf8_next_char(p))
    ok = g_unichar_isprint(g_utf8_get_char(p));
  if (!ok)
    g_clear_pointer(&name, g_free);
  return name;
}

static int is_word(const char *s, const char *a, const char *b) {
  return s != NULL && (strcmp(s, a) == 0 || strcmp(s, b) == 0);
}

static int group_create(cli_opts *o, int argc, char **argv) {
  char *history = NULL, *invites = NULL, *name = NULL;
  gboolean announce = FALSE;
  const GOptionEntry entries[] = {
      {"history", 0, 0, G_OPTION_ARG_STRING, &history,
       "Who sees messages from before they joined: shared (everyone, the "
       "default) or joined (only what came after)",
       "shared|joined"},
      {"announce", 0, 0, G_OPTION_ARG_NONE, &announce,
       "Announcement mode: only owners and admins post; members read and "
       "react",
       NULL},
      {"invites", 0, 0, G_OPTION_ARG_STRING, &invites,
       "Who may invite: all members (the default) or only owners and "
       "admins",
       "all|admins"},
      G_OPTION_ENTRY_NULL};
  int rc = cli_parse(o, "group create", "NAME", 1,
                     "Make a group; you are its owner. NAME is 1 to 64 bytes "
                     "of printable text (spaces around it are dropped) and "
                     "differs from your other groups' names.",
                     entries, &argc, &argv);
  if (rc == CLI_OK && history != NULL && !is_word(history, "shared", "joined"))
    rc = cli_usage("group create", "--history is shared or joined");
  if (rc == CLI_OK && invites != NULL && !is_word(invites, "all", "admins"))
    rc = cli_usage("group create", "--invites is all or admins");
  if (rc == CLI_OK && (name = group_name(argv[1])) == NULL)
    rc = cli_usage("group create",
                   "a group name is 1 to %d bytes of printable text",
                   KITH_NAME_MAX);
  if (rc == CLI_OK) {
    kith_pack p;
    kith_pack_init(&p);
    kith_pack_array(&p, 4);
    kith_pack_cstr(&p, name);
    kith_pack_cstr(&p, history ? history : "shared");
    kith_pack_bool(&p, announce);
    kith_pack_cstr(&p, invites ? invites : "all");
    rc = cli_call_show(o, "group.create", &p, CREATED_FIELDS, 0);
  }
  g_free(history);
  g_free(invites);
  g_free(name);
  return rc;
}

/* kith group mode GROUP announce|open, kith group invites GROUP
 * all|admins: a setting with two values. */
static int group_setting(cli_opts *o, const char *cmd, const char *a,
                         const char *b, const char *summary, int argc,
                         char **argv) {
  char *params = g_strdup_printf("GROUP %s|%s", a, b);
  int rc = cli_parse(o, cmd, params, 2, summary, NULL, &argc, &argv);
  g_free(params);
  if (rc == CLI_OK && !is_word(argv[2], a, b))
    rc = cli_usage(cmd, "the setting is %s or %s, not '%s'", a, b, argv[2]);
  if (rc != CLI_OK)
    return rc;
  /* "group mode" calls group.mode */
  char *method = g_strdelimit(g_strdup(cmd), " ", '.');
  rc = cli_call_strs(o, method, 2, argv + 1, CLI_EVENT_FIELDS, 0);
  g_free(method);
  return rc;
}

static int group_mode(cli_opts *o, int argc, char **argv) {
  return group_setting(o, "group mode", "announce", "open",
                       "Announcement mode (only owners and admins post; "
                       "members read and react) or open (everyone posts). "
                       "Owner or admin only.",
                       argc, argv);
}

static int group_invites(cli_opts *o, int argc, char **argv) {
  return group_setting(o, "group invites", "all", "admins",
                       "Who may invite: all members, or only owners and "
                       "admins. Owner or admin only.",
                       argc, argv);
}

static int group_list(cli_opts *o, int argc, char **argv) {
  return cli_run_simple(o, &LIST, argc, argv);
}

/* Reports (members that a member reported, e.g. a rekey whose box did not
 * open) follow the fields, one line each. */
static void print_reports(const msgpack_object *info) {
  const msgpack_object *reps = cli_map_get(info, "reports");
  if (reps == NULL || reps->type != MSGPACK_OBJECT_ARRAY)
    return;
  for (uint32_t i = 0; i < reps->via.array.size; i++) {
    const msgpack_object *r = &reps->via.array.ptr[i];
    char *parts[3] = {NULL, NULL, NULL};
    const char *keys[3] = {"by", "about", "what"};
    for (int k = 0; k < 3; k++) {
      const msgpack_object *v = cli_map_get(r, keys[k]);
      parts[k] = v ? cli_out_text(v, NULL, 0) : g_strdup("?");
    }
    printf("report: %s about %s: %s\n", parts[0], parts[1], parts[2]);
    for (int k = 0; k < 3; k++)
      g_free(parts[k]);
  }
}

/* Parses `s->cmd GROUP` and calls s->method [GROUP]; on CLI_OK *res (of
 * type want) borrows from *r, which the caller frees (also on error). */
static int call_group(cli_opts *o, const cli_simple *s, int argc, char **argv,
                      msgpack_object_type want, cli_rpc **r,
                      const msgpack_object **res) {
  int rc = cli_parse(o, s->cmd, s->params, 1, s->summary, NULL, &argc, &argv);
  if (rc == CLI_OK)
    rc = cli_rpc_open(o, r);
  if (rc != CLI_OK)
    return rc;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 1);
  kith_pack_cstr(&p, argv[1]);
  rc = cli_rpc_call(*r, s->method, &p, CLI_CALL_TIMEOUT_MS, NULL, NULL, res);
  if (rc == CLI_OK && (*res)->type != want)
    rc = cli_error("the node sent a malformed result");
  return rc;
}

static int group_info(cli_opts *o, int argc, char **argv) {
  cli_rpc *r = NULL;
  const msgpack_object *res = NULL;
  int rc = call_group(o, &INFO, argc, argv, MSGPACK_OBJECT_MAP, &r, &res);
  if (rc == CLI_OK) {
    cli_out_map(o, res, INFO_FIELDS);
    if (!o->json)
      print_reports(res);
  }
  cli_rpc_free(r);
  return rc;
}

static msgpack_object str_object(const char *s) {
  msgpack_object v = {.type = MSGPACK_OBJECT_STR};
  v.via.str.ptr = s;
  v.via.str.size = (uint32_t)strlen(s);
  return v;
}

/* A member's presence in words (owned by texts). */
static const char *presence_text(const msgpack_object *row, GPtrArray *texts) {
  const msgpack_object *on = cli_map_get(row, "online");
  const msgpack_object *seen = cli_map_get(row, "last_seen_ms");
  if (on != NULL && on->type == MSGPACK_OBJECT_BOOLEAN && on->via.boolean)
    return "online";
  if (seen == NULL || seen->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      seen->via.u64 == 0 || seen->via.u64 > INT64_MAX)
    return "offline, never seen";
  char *t = cli_time_local((int64_t)seen->via.u64);
  char *s = g_strdup_printf("offline, last seen %s", t);
  g_free(t);
  g_ptr_array_add(texts, s);
  return s;
}

/* Each member as a map of exactly the MEMBER_FIELDS keys: their values (in
 * JSON), or with online in words (in text). */
static int group_members(cli_opts *o, int argc, char **argv) {
  cli_rpc *r = NULL;
  const msgpack_object *res = NULL;
  int rc = call_group(o, &MEMBERS, argc, argv, MSGPACK_OBJECT_ARRAY, &r, &res);
  uint32_t n = rc == CLI_OK ? res->via.array.size : 0;
  msgpack_object_kv *kvs = g_new0(msgpack_object_kv, (size_t)n * MEMBER_KEYS);
  msgpack_object *rows = g_new0(msgpack_object, n + 1);
  GPtrArray *texts = g_ptr_array_new_with_free_func(g_free);
  for (uint32_t i = 0; i < n && rc == CLI_OK; i++) {
    const msgpack_object *row = &res->via.array.ptr[i];
    if (row->type != MSGPACK_OBJECT_MAP) {
      rc = cli_error("the node sent a malformed result");
      break;
    }
    for (int k = 0; k < MEMBER_KEYS; k++) {
      msgpack_object_kv *kv = &kvs[(size_t)i * MEMBER_KEYS + k];
      const msgpack_object *v = cli_map_get(row, MEMBER_FIELDS[k].key);
      kv->key = str_object(MEMBER_FIELDS[k].key);
      kv->val = v ? *v : (msgpack_object){.type = MSGPACK_OBJECT_NIL};
      if (k == MEMBER_KEYS - 1 && !o->json)
        kv->val = str_object(presence_text(row, texts));
    }
    rows[i] = (msgpack_object){.type = MSGPACK_OBJECT_MAP};
    rows[i].via.map.size = MEMBER_KEYS;
    rows[i].via.map.ptr = &kvs[(size_t)i * MEMBER_KEYS];
  }
  if (rc == CLI_OK) {
    msgpack_object all = {.type = MSGPACK_OBJECT_ARRAY};
    all.via.array.size = n;
    all.via.array.ptr = rows;
    rc = cli_out_rows(o, &all, MEMBER_FIELDS);
  }
  g_ptr_array_unref(texts);
  g_free(rows);
  g_free(kvs);
  cli_rpc_free(r);
  return rc;
}

static const cli_cmd GROUP_COMMANDS[] = {
    {"create", group_create, "make a group (you are its owner)"},
    {"list", group_list, "your groups"},
    {"info", group_info, "a group's state as this node sees it"},
    {"members", group_members, "members of a group"},
    {"mode", group_mode, "announcement mode on or off"},
    {"invites", group_invites, "who may invite: all members or admins"},
    {NULL, NULL, NULL},
};

int cli_cmd_group(cli_opts *o, int argc, char **argv) {
  return cli_dispatch(o, "group", GROUP_COMMANDS, argc, argv);
}
