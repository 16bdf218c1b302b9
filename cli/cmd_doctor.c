/* kith doctor: the node's connectivity report (net/doctor.c makes it):
 * local addresses, STUN servers and relay friends (reachable, round trip,
 * the public address each sees), the NAT's mapping behaviour, UDP, TURN,
 * and what that means for joining and being joined. Exit 1 when nothing
 * outside could be reached. */
#include <stdio.h>
#include <string.h>

#include "out.h"
#include "rpc.h"

#define DOCTOR_WAIT_MS (15 * 1000) /* the node answers within ~2.5 s */

/* The text of a field of map ("" when absent). g_malloc'ed. */
static char *field(const msgpack_object *map, const char *key) {
  const msgpack_object *v = cli_map_get(map, key);
  return v ? cli_out_text(v, NULL, 0) : g_strdup("");
}

static int is_true(const msgpack_object *map, const char *key) {
  const msgpack_object *v = cli_map_get(map, key);
  return v && v->type == MSGPACK_OBJECT_BOOLEAN && v->via.boolean;
}

static void print_line(const char *label, const char *text) {
  printf("%-13s %s\n", label, text);
}

/* One line per STUN server, relay friend or TURN server. */
static void print_servers(const msgpack_object *res, const char *key,
                          const char *label) {
  const msgpack_object *list = cli_map_get(res, key);
  if (!list || list->type != MSGPACK_OBJECT_ARRAY ||
      list->via.array.size == 0) {
    print_line(label, "none configured");
    return;
  }
  for (uint32_t i = 0; i < list->via.array.size; i++) {
    const msgpack_object *m = &list->via.array.ptr[i];
    char *name = field(m, "name"), *addr = field(m, "addr"),
         *server = field(m, "server"), *rtt = field(m, "rtt_ms"),
         *pub = field(m, "public"), *cred = field(m, "credentials"),
         *relayed = field(m, "relayed");
    GString *s = g_string_new(server[0] ? server : addr);
    if (name[0])
      g_string_append_printf(s, " (%s)", name);
    if (cli_map_get(m, "linked"))
      g_string_append(s, is_true(m, "linked") ? "  linked" : "  not linked");
    if (is_true(m, "reachable"))
      g_string_append_printf(s, "  reachable, rtt %s ms", rtt);
    else
      g_string_append(s, "  no answer");
    if (pub[0])
      g_string_append_printf(s, ", sees us as %s", pub);
    if (cred[0])
      g_string_append_printf(s, ", credentials %s", cred);
    if (relayed[0])
      g_string_append_printf(s, " (relayed address %s)", relayed);
    print_line(label, s->str);
    g_string_free(s, TRUE);
    g_free(name), g_free(addr), g_free(server), g_free(rtt), g_free(pub);
    g_free(cred), g_free(relayed);
  }
}

static void print_report(const msgpack_object *res) {
  const msgpack_object *addrs = cli_map_get(res, "addresses");
  const msgpack_object *v = cli_map_get(res, "verdict");
  GString *a = g_string_new("");
  for (uint32_t i = 0; addrs && addrs->type == MSGPACK_OBJECT_ARRAY &&
                       i < addrs->via.array.size;
       i++) {
    char *t = cli_out_text(&addrs->via.array.ptr[i], NULL, 0);
    g_string_append_printf(a, "%s%s", i ? " " : "", t);
    g_free(t);
  }
  print_line("addresses", a->len ? a->str : "none");
  g_string_free(a, TRUE);
  char *udp = field(res, "udp"), *nat = field(res, "nat_mapping");
  print_line("udp", udp);
  print_line("nat mapping", nat);
  g_free(udp), g_free(nat);
  print_servers(res, "stun", "stun");
  print_servers(res, "relays", "relay friend");
  print_servers(res, "turn", "turn");
  if (v && v->type == MSGPACK_OBJECT_MAP) {
    char *s = field(v, "summary"), *j = field(v, "joining"),
         *b = field(v, "being_joined");
    print_line("verdict", s);
    print_line("joining", j);
    print_line("being joined", b);
    g_free(s), g_free(j), g_free(b);
  }
}

int cli_cmd_doctor(cli_opts *o, int argc, char **argv) {
  int rc = cli_parse(
      o, "doctor", NULL, 0,
      "Connectivity report: local addresses, STUN servers and relay "
      "friends (reachable, round trip, the public address each sees), NAT "
      "mapping, UDP, TURN, and what it means for joining and being joined. "
      "Exit 1 when nothing outside can be reached.",
      NULL, &argc, &argv);
  cli_rpc *r = NULL;
  if (rc == CLI_OK)
    rc = cli_rpc_open(o, &r);
  if (rc != CLI_OK)
    return rc;
  kith_pack p;
  const msgpack_object *res = NULL;
  rc = cli_rpc_call(r, "doctor", cli_no_params(&p), DOCTOR_WAIT_MS, NULL, NULL,
                    &res);
  if (rc == CLI_OK && res->type != MSGPACK_OBJECT_MAP)
    rc = cli_error("the node sent a malformed result");
  if (rc == CLI_OK) {
    const msgpack_object *v = cli_map_get(res, "verdict");
    if (o->json)
      cli_out_json(res);
    else
      print_report(res);
    if (!v || v->type != MSGPACK_OBJECT_MAP || !is_true(v, "reachable"))
      rc = cli_error("nothing outside this network answered; see the report "
                     "above");
  }
  cli_rpc_free(r);
  return rc;
}
