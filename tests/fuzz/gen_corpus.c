/* kith-fuzz-corpus DIR: writes the seed corpus of every fuzz target into
 * DIR/NAME/ (tests/fuzz/corpus/ in the tree): real encodings made by the
 * real encoders, for the fixed identities and clock of fuzz_common.h, in
 * the input format each target's header describes. Randomness comes from
 * a fixed-key ChaCha20 stream, so the same tree writes the same files.
 * Run it after changing a format: make fuzz-corpus. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "core/codec.h"
#include "core/event.h"
#include "core/gcrypto.h"
#include "core/gossip.h"
#include "core/group.h"
#include "core/invite.h"
#include "core/presence.h"
#include "core/reconcile.h"
#include "core/store.h"
#include "fuzz_rows.h"
#include "net/control.h"
#include "net/ice.h"
#include "net/session.h"
#include "net/stun.h"
#include "net/wire.h"

#include <sqlite3.h>
#include <unistd.h>

static const char *out_dir;

/* ---- deterministic randomness ---- */

static uint64_t rng_counter;

static void rng_buf(void *buf, size_t n) {
  static const uint8_t key[crypto_stream_chacha20_KEYBYTES] =
      "kith fuzz corpus";
  uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
  memcpy(nonce, &rng_counter, sizeof rng_counter);
  rng_counter++;
  crypto_stream_chacha20(buf, n, nonce, key);
}

static uint32_t rng_random(void) {
  uint32_t v;
  rng_buf(&v, sizeof v);
  return v;
}

static const char *rng_name(void) {
  return "kith-fuzz-corpus";
}

static randombytes_implementation rng = {
    .implementation_name = rng_name, .random = rng_random, .buf = rng_buf};

/* ---- writing seeds ---- */

static void write_seed(const char *target, const char *name, const void *p,
                       size_t n) {
  char *dir = g_build_filename(out_dir, target, NULL);
  char *path = g_build_filename(dir, name, NULL);
  if (g_mkdir_with_parents(dir, 0755) != 0 ||
      !g_file_set_contents(path, p, (gssize)n, NULL)) {
    fprintf(stderr, "kith-fuzz-corpus: cannot write %s\n", path);
    exit(1);
  }
  g_free(path);
  g_free(dir);
}

/* Writes prefix (len bytes, may be 0) then p. */
static void write_prefixed(const char *target, const char *name,
                           const uint8_t *prefix, size_t plen, const void *p,
                           size_t n) {
  GByteArray *b = g_byte_array_new();
  g_byte_array_append(b, prefix, (guint)plen);
  g_byte_array_append(b, p, (guint)n);
  write_seed(target, name, b->data, b->len);
  g_byte_array_unref(b);
}

static void take(kith_pack *pk, uint8_t **out, size_t *len) {
  if (kith_pack_take(pk, out, len) != KITH_OK)
    abort();
}

static void must(kith_err err, const char *what) {
  if (err != KITH_OK) {
    fprintf(stderr, "kith-fuzz-corpus: %s: %s\n", what, kith_strerror(err));
    exit(1);
  }
}

/* FUZZ_PEER's need [[current epoch]] on g's heads, received by g; then
 * g's maintenance at `later` (which answers it with a keys event). */
static void peer_need(kith_group *g, uint64_t ts, uint64_t later,
                      GPtrArray *acc) {
  kith_event ev = {.kind = KITH_EV_NEED, .ts_ms = ts};
  GByteArray *heads = g_byte_array_new();
  uint8_t *inner, *body;
  size_t ilen, blen;
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 1);
  kith_pack_array(&p, 1);
  kith_pack_uint(&p, kith_group_epoch_id(g));
  take(&p, &inner, &ilen);
  fuzz_pack_sealed(&p, g, KITH_EV_NEED, fuzz_ident(FUZZ_PEER)->pk, inner, ilen);
  kith_pack_nil(&p);
  take(&p, &body, &blen);
  kith_group_heads(g, heads);
  memcpy(ev.group_id, kith_group_id(g), 32);
  for (guint i = 0; i < heads->len / 32 && i < KITH_EVENT_MAX_PARENTS; i++) {
    uint64_t depth;
    memcpy(ev.parents[ev.n_parents++], heads->data + 32 * i, 32);
    must(kith_group_event_info(g, heads->data + 32 * i, &depth, NULL, NULL,
                               NULL),
         "head");
    ev.depth = MAX(ev.depth, depth + 1);
  }
  must(kith_event_build(&ev, fuzz_ident(FUZZ_PEER), body, blen), "need");
  must(kith_group_receive(g, ev.raw, ev.raw_len, ts, acc), "need");
  must(kith_group_maintain(g, later, acc), "keys");
  kith_event_clear(&ev);
  g_byte_array_unref(heads);
  g_free(inner);
  g_free(body);
}

/* ---- events and bodies ---- */

/* The version-1 form (which stores written before version 2 hold) of a
 * control event whose body is the same in both versions, signed again by
 * its author: an event seed of its own (another id). */
static void v1_seed(const kith_event *ev, const uint8_t gid[32], guint i) {
  const kith_ident *who = fuzz_ident(FUZZ_ME);
  if (memcmp(ev->author, who->pk, 32) != 0)
    who = fuzz_ident(FUZZ_PEER);
  if (memcmp(ev->author, who->pk, 32) != 0 || ev->kind == KITH_EV_REKEY ||
      fuzz_message_like(ev->kind))
    return; /* message-like and rekey bodies differ between versions */
  kith_event v1;
  char name[32];
  must(kith_event_copy(&v1, ev), "copy");
  g_free(v1.raw);
  v1.raw = NULL;
  v1.version = KITH_EVENT_V1;
  must(kith_event_build(&v1, who, ev->body, ev->body_len), "v1");
  g_snprintf(name, sizeof name, "v1-%02u-%s", i,
             kith_event_kind_name(ev->kind));
  write_prefixed("event", name, gid, 32, v1.raw, v1.raw_len);
  kith_event_clear(&v1);
}

/* A group of FUZZ_ME with FUZZ_PEER admitted, a message, a reaction, an
 * edit, a delete, a topic, a setting, a mute, a need of the peer and the
 * keys that answer it, a ban, a role change and a removal: every event's raw
 * bytes go to the event, codec and (raw mode) group corpora. */
static void events(void) {
  const kith_ident *peer = fuzz_ident(FUZZ_PEER);
  GPtrArray *acc =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
  kith_group *g = fuzz_group_with_peer(acc);
  uint64_t t = FUZZ_NOW_MS + 3;
  uint8_t hello[32];

  must(kith_group_send(g, "hello", 5, NULL, t++, acc), "send");
  memcpy(hello, ((kith_accepted *)acc->pdata[acc->len - 1])->ev.id, 32);
  must(kith_group_react(g, hello, "+1", 1, t++, acc), "react");
  must(kith_group_edit(g, hello, "hello, edited", 13, t++, acc), "edit");
  must(kith_group_delete(g, hello, t++, acc), "delete");
  must(kith_group_set_topic(g, "seeds", 5, t++, acc), "topic");
  must(kith_group_set_announce(g, 1, t++, acc), "settings");
  must(kith_group_mute(g, peer->pk, t + 60000, t, acc), "mute");
  t++;
  peer_need(g, t, t + 600000, acc);
  t++;
  must(kith_group_ban(g, fuzz_ident(FUZZ_THIRD)->pk, t++, acc), "ban");
  must(kith_group_set_role(g, peer->pk, KITH_ROLE_ADMIN, t++, acc), "role");
  must(kith_group_remove(g, peer->pk, t++, acc), "remove");
  for (guint i = 0; i < acc->len; i++) {
    const kith_event *ev = &((kith_accepted *)acc->pdata[i])->ev;
    char name[32];
    uint8_t raw_mode = 64;
    g_snprintf(name, sizeof name, "%02u-%s", i, kith_event_kind_name(ev->kind));
    write_prefixed("event", name, kith_group_id(g), 32, ev->raw, ev->raw_len);
    write_seed("codec", name, ev->raw, ev->raw_len);
    write_prefixed("group", name, &raw_mode, 1, ev->raw, ev->raw_len);
    v1_seed(ev, kith_group_id(g), i);
  }
  g_ptr_array_unref(acc);
  kith_group_free(g);
}

/* One fuzz_group input: flags, the inner part, the extra. */
static void body_seed(const char *name, uint8_t flags, kith_pack *inner,
                      const uint8_t *extra, size_t xlen) {
  uint8_t *in;
  size_t ilen;
  GByteArray *b = g_byte_array_new();
  take(inner, &in, &ilen);
  fuzz_put_u8(b, flags);
  fuzz_put(b, in, ilen);
  g_byte_array_append(b, extra, (guint)xlen);
  write_seed("group", name, b->data, b->len);
  g_byte_array_unref(b);
  g_free(in);
}

/* One fuzz_group input with an empty inner part. */
static void body_seed_raw(const char *name, uint8_t flags, const uint8_t *extra,
                          size_t xlen) {
  GByteArray *b = g_byte_array_new();
  fuzz_put_u8(b, flags);
  fuzz_put(b, NULL, 0);
  g_byte_array_append(b, extra, (guint)xlen);
  write_seed("group", name, b->data, b->len);
  g_byte_array_unref(b);
}

/* Flags of fuzz_group.c: kind - 1 in bits 0-3 and 7, FUZZ_PEER as
 * author. */
#define BODY(kind, by_peer)                                                    \
  ((uint8_t)(((kind)-1) & 15) | (uint8_t)((((kind)-1) & 16) << 3) |            \
   ((by_peer) ? 16 : 0))

static void bodies(void) {
  const kith_ident *peer = fuzz_ident(FUZZ_PEER),
                   *third = fuzz_ident(FUZZ_THIRD);
  uint8_t zero[64] = {0}, secret[32], meta[32];
  kith_pack p;

  kith_pack_init(&p);
  kith_pack_array(&p, 1);
  kith_pack_cstr(&p, "a message from the peer");
  body_seed("message", BODY(KITH_EV_MESSAGE, 1), &p, NULL, 0);
  kith_pack_array(&p, 1);
  kith_pack_cstr(&p, "a topic");
  body_seed("topic", BODY(KITH_EV_TOPIC, 0), &p, NULL, 0);
  kith_pack_array(&p, 2);
  kith_pack_bin(&p, peer->pk, 32);
  kith_pack_uint(&p, KITH_ROLE_ADMIN);
  body_seed("role", BODY(KITH_EV_ROLE, 0), &p, NULL, 0);
  kith_pack_array(&p, 1);
  kith_pack_bin(&p, peer->pk, 32);
  body_seed("remove", BODY(KITH_EV_REMOVE, 0), &p, NULL, 0);
  kith_pack_array(&p, 0);
  body_seed("leave", BODY(KITH_EV_LEAVE, 1), &p, NULL, 0);
  kith_pack_array(&p, 3);
  kith_pack_bin(&p, zero, 32);
  kith_pack_cstr(&p, "+1");
  kith_pack_uint(&p, 1);
  body_seed("react", BODY(KITH_EV_REACT, 1), &p, NULL, 0);
  kith_pack_array(&p, 2);
  kith_pack_bin(&p, zero, 32);
  kith_pack_cstr(&p, "edited");
  body_seed("edit", BODY(KITH_EV_EDIT, 0), &p, NULL, 0);
  kith_pack_array(&p, 1);
  kith_pack_bin(&p, zero, 32);
  body_seed("delete", BODY(KITH_EV_DELETE, 0), &p, NULL, 0);
  kith_pack_array(&p, 1);
  kith_pack_bin(&p, third->pk, 32);
  body_seed("ban", BODY(KITH_EV_BAN, 0), &p, NULL, 0);
  kith_pack_array(&p, 2);
  kith_pack_bin(&p, peer->pk, 32);
  kith_pack_uint(&p, FUZZ_NOW_MS + 60000);
  body_seed("mute", BODY(KITH_EV_MUTE, 0), &p, NULL, 0);
  kith_pack_array(&p, 2);
  kith_pack_uint(&p, 2);
  kith_pack_uint(&p, 1);
  body_seed("settings", BODY(KITH_EV_SETTINGS, 0), &p, NULL, 0);
  kith_pack_array(&p, 3);
  kith_pack_bin(&p, zero, 32);
  kith_pack_uint(&p, 5);
  kith_pack_uint(&p, FUZZ_NOW_MS + 3600000);
  body_seed("invite", BODY(KITH_EV_INVITE, 1), &p, NULL, 0);
  kith_pack_array(&p, 4);
  kith_pack_cstr(&p, "renamed");
  kith_pack_uint(&p, KITH_HISTORY_JOINED);
  kith_pack_cstr(&p, "owner");
  kith_pack_uint(&p, 1);
  body_seed("create", BODY(KITH_EV_CREATE, 0), &p, NULL, 0);
  /* A rekey whose boxes hold a genuine key list of its new epoch. */
  randombytes_buf(secret, sizeof secret);
  kith_gcrypto_meta_key(secret, meta);
  uint64_t epoch = kith_gcrypto_epoch_id(meta);
  kith_pack keys;
  uint8_t *kl;
  size_t kll;
  kith_pack_init(&keys);
  kith_pack_array(&keys, 1);
  kith_pack_array(&keys, 3);
  kith_pack_uint(&keys, epoch);
  kith_pack_bin(&keys, secret, 32);
  kith_pack_uint(&keys, 1);
  take(&keys, &kl, &kll);
  kith_pack_array(&p, 1);
  kith_pack_uint(&p, epoch);
  body_seed("rekey", BODY(KITH_EV_REKEY, 0) | 32, &p, kl, kll);
  /* An add of a third node, with a key list sealed to us. */
  kith_pack_array(&p, 4);
  kith_pack_bin(&p, third->pk, 32);
  kith_pack_cstr(&p, "third");
  kith_pack_bin(&p, zero, 32);
  kith_pack_bin(&p, zero, 64);
  body_seed("add", BODY(KITH_EV_ADD, 1) | 32, &p, kl, kll);
  /* A need and the keys that answer FUZZ_ME's need (empty inners: the
   * target writes the ones its history calls for), and a need of its own
   * form. */
  body_seed_raw("need", BODY(KITH_EV_NEED, 1), NULL, 0);
  body_seed_raw("keys", BODY(KITH_EV_KEYS, 1) | 32, kl, kll);
  kith_pack_array(&p, 1);
  kith_pack_array(&p, 2);
  kith_pack_uint(&p, 1);
  kith_pack_uint(&p, epoch);
  body_seed("need-two", BODY(KITH_EV_NEED, 1), &p, NULL, 0);
  g_free(kl);
  kith_pack_clear(&p);
}

/* ---- invite codes ---- */

static void invites(void) {
  kith_invite inv = {.n_addrs = 2, .n_others = 1, .n_relays = 1};
  char code[KITH_INVITE_CODE_MAX + 1];
  memset(inv.group_id, 1, 32);
  memset(inv.secret, 2, 32);
  memcpy(inv.inviter, fuzz_ident(FUZZ_PEER)->pk, 32);
  inv.addrs[0] = (kith_addr){"127.0.0.1", 7733};
  inv.addrs[1] = (kith_addr){"2001:db8::1", 7733};
  memcpy(inv.others[0].id, fuzz_ident(FUZZ_THIRD)->pk, 32);
  inv.others[0].addr = (kith_addr){"192.0.2.7", 40000};
  memcpy(inv.relays[0].id, fuzz_ident(FUZZ_ME)->pk, 32);
  inv.relays[0].addr = (kith_addr){"relay.example.org", 7733};
  must(kith_invite_encode(&inv, code, sizeof code), "invite code");
  write_seed("invite", "full", code, strlen(code));
  inv.n_others = inv.n_relays = 0;
  inv.n_addrs = 1;
  must(kith_invite_encode(&inv, code, sizeof code), "invite code");
  write_seed("invite", "one-addr", code, strlen(code));
}

/* ---- ICE parameters, signal payloads, join requests ---- */

static kith_ice_params ice_params(void) {
  kith_ice_params p = {
      .ufrag = "fUzZ", .pwd = "0123456789abcdefghijkl", .n_cands = 3};
  p.cands[0] =
      (kith_ice_cand){"1", 2130706431, "192.168.1.20", 50000, KITH_CAND_HOST};
  p.cands[1] =
      (kith_ice_cand){"2", 1694498815, "203.0.113.9", 61000, KITH_CAND_SRFLX};
  p.cands[2] =
      (kith_ice_cand){"3", 16777215, "2001:db8::5", 3478, KITH_CAND_RELAY};
  return p;
}

static void join_request(uint8_t **out, size_t *len) {
  kith_pack pk;
  uint8_t zero[64] = {0};
  kith_pack_init(&pk);
  kith_pack_array(&pk, 4);
  kith_pack_bin(&pk, fuzz_store_gid, 32);
  kith_pack_bin(&pk, zero, 32);
  kith_pack_bin(&pk, zero, KITH_SIG_LEN);
  kith_pack_cstr(&pk, "joiner");
  take(&pk, out, len);
}

/* [kind, ice params bin, join bin | nil, since, nonce] for an offer or
 * answer, [3, reason, nil] for a refusal, [4, since, nil] for ELSEWHERE. */
static void signal_payload(int kind, int with_join, uint8_t **out,
                           size_t *len) {
  static const uint8_t nonce[16] = {0x11, 0x22, 0x33, 0x44};
  kith_ice_params params = ice_params();
  uint8_t *pb, *join;
  size_t pl, jl;
  kith_pack pk;
  must(kith_ice_params_encode(&params, &pb, &pl), "ice params");
  join_request(&join, &jl);
  kith_pack_init(&pk);
  kith_pack_array(&pk, kind == SIG_OFFER || kind == SIG_ANSWER ? 5 : 3);
  kith_pack_uint(&pk, (uint64_t)kind);
  if (kind == SIG_REFUSE)
    kith_pack_cstr(&pk, "the invite code has expired; ask for a new one");
  else if (kind == SIG_ELSEWHERE)
    kith_pack_uint(&pk, FUZZ_NOW_MS - 5000);
  else
    kith_pack_bin(&pk, pb, pl);
  if (with_join)
    kith_pack_bin(&pk, join, jl);
  else
    kith_pack_nil(&pk);
  if (kind == SIG_OFFER || kind == SIG_ANSWER) {
    kith_pack_uint(&pk, FUZZ_NOW_MS - 10000);
    kith_pack_bin(&pk, nonce, sizeof nonce);
  }
  take(&pk, out, len);
  g_free(pb);
  g_free(join);
}

static void ice_and_join(void) {
  kith_ice_params p = ice_params();
  uint8_t *buf;
  size_t len;
  must(kith_ice_params_encode(&p, &buf, &len), "ice params");
  write_seed("ice", "three-cands", buf, len);
  write_seed("codec", "ice-params", buf, len);
  g_free(buf);
  p.n_cands = 1;
  must(kith_ice_params_encode(&p, &buf, &len), "ice params");
  write_seed("ice", "one-cand", buf, len);
  g_free(buf);
  join_request(&buf, &len);
  write_seed("join", "request", buf, len);
  g_free(buf);
}

/* A relayed signal's plaintext [from, to, ts, payload, sig] (relay.c). */
static void relayed_plain(const uint8_t *payload, size_t len, uint8_t **out,
                          size_t *out_len) {
  const kith_ident *peer = fuzz_ident(FUZZ_PEER);
  uint8_t sig[KITH_SIG_LEN], *signed_part;
  size_t sl;
  kith_pack pk;
  for (int with_sig = 0; with_sig < 2; with_sig++) {
    kith_pack_init(&pk);
    kith_pack_array(&pk, with_sig ? 5 : 4);
    kith_pack_bin(&pk, peer->pk, 32);
    kith_pack_bin(&pk, fuzz_ident(FUZZ_ME)->pk, 32);
    kith_pack_uint(&pk, FUZZ_NOW_MS);
    kith_pack_bin(&pk, payload, len);
    if (with_sig) {
      kith_pack_bin(&pk, sig, sizeof sig);
      take(&pk, out, out_len);
    } else {
      take(&pk, &signed_part, &sl);
      kith_ident_sign(peer, signed_part, sl, sig);
      g_free(signed_part);
    }
  }
}

/* fuzz_signal mode 4: checks of a replay cache, [source, tag, expiry,
 * step] each: three sources, a replay, a quota reached, time passing. */
static void replay_seed(void) {
  static const uint8_t ops[] = {4, 1, 1,   5,   2, 2, 200, 0, 4, 1, 1,   5,
                                2, 3, 200, 0,   2, 4, 200, 0, 2, 5, 200, 0,
                                3, 6, 10,  250, 0, 7, 10,  0, 5, 8, 255, 255};
  write_seed("signal", "mode4-replay", ops, sizeof ops);
}

static void signals(void) {
  static const char *const names[] = {"", "offer", "answer", "refuse",
                                      "elsewhere"};
  for (int kind = SIG_OFFER; kind <= SIG_ELSEWHERE; kind++) {
    uint8_t *pl, *dg, *plain, *rel;
    size_t pll, dl, rl;
    char name[32];
    uint8_t mode;
    signal_payload(kind, kind == SIG_OFFER, &pl, &pll);
    must(kith_signal_seal_datagram(fuzz_ident(FUZZ_PEER),
                                   fuzz_ident(FUZZ_ME)->pk, pl, pll, 0,
                                   FUZZ_NOW_MS, &dg, &dl),
         "datagram");
    plain = g_malloc(dl - KITH_SEAL_OVERHEAD);
    must(kith_unseal(fuzz_ident(FUZZ_ME), dg, dl, plain), "unseal");
    relayed_plain(pl, pll, &rel, &rl);
    for (mode = 0; mode < 4; mode++) {
      const uint8_t *p[] = {dg, plain, pl, rel};
      size_t n[] = {dl, dl - KITH_SEAL_OVERHEAD, pll, rl};
      g_snprintf(name, sizeof name, "mode%u-%s", mode, names[kind]);
      write_prefixed("signal", name, &mode, 1, p[mode], n[mode]);
    }
    write_seed("codec", names[kind], pl, pll);
    g_free(pl);
    g_free(dg);
    g_free(plain);
    g_free(rel);
  }
}

/* ---- link frames ---- */

static void frame_seed(const char *name, kith_pack *pk) {
  uint8_t *buf;
  size_t len;
  take(pk, &buf, &len);
  write_seed("frame", name, buf, len);
  g_free(buf);
}

/* An ADDRS entry [id, host, port, version]. */
static void addr_entry(kith_pack *pk, int who, const char *host, uint64_t port,
                       uint64_t version) {
  kith_pack_array(pk, 4);
  kith_pack_bin(pk, fuzz_ident(who)->pk, 32);
  kith_pack_cstr(pk, host);
  kith_pack_uint(pk, port);
  kith_pack_uint(pk, version);
}

/* [type, attempt, ice params bin] */
static void path_frame(kith_pack *pk, uint64_t type, const char *name) {
  kith_ice_params p = ice_params();
  uint8_t *buf;
  size_t len;
  must(kith_ice_params_encode(&p, &buf, &len), "ice params");
  kith_pack_array(pk, 3);
  kith_pack_uint(pk, type);
  kith_pack_uint(pk, 3);
  kith_pack_bin(pk, buf, len);
  frame_seed(name, pk);
  g_free(buf);
}

static void frames(void) {
  static const uint8_t prune[] = {0x93, KITH_GF_PRUNE, 0xcf, 0x03, 0xa1, 0x07,
                                  0xbf, 0xf3,          0xce, 0x10, 0xbe, 0x00};
  uint8_t ids[64] = {1, 2, 3};
  kith_pack pk;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 2);
  kith_pack_uint(&pk, FRAME_PING);
  kith_pack_uint(&pk, 123456);
  frame_seed("ping", &pk);
  /* retired: EVENT [3, gid, event], HAVE [4, gid, ids, more] */
  kith_pack_array(&pk, 3);
  kith_pack_uint(&pk, 3);
  kith_pack_bin(&pk, fuzz_store_gid, 32);
  kith_pack_bin(&pk, ids, 40);
  frame_seed("retired-event", &pk);
  kith_pack_array(&pk, 4);
  kith_pack_uint(&pk, 4);
  kith_pack_bin(&pk, fuzz_store_gid, 32);
  kith_pack_bin(&pk, ids, 64);
  kith_pack_bool(&pk, 1);
  frame_seed("retired-have", &pk);
  kith_pack_array(&pk, 2);
  kith_pack_uint(&pk, FRAME_ADDRS);
  kith_pack_array(&pk, 2);
  addr_entry(&pk, FUZZ_PEER, "127.0.0.1", 7733, FUZZ_NOW_MS);
  addr_entry(&pk, FUZZ_THIRD, "2001:db8::2", 40000, FUZZ_NOW_MS - 60000);
  frame_seed("addrs", &pk);
  for (size_t glen = KITH_WIRE_GROUP_TAG_LEN; glen <= 32; glen += 24) {
    kith_pack_array(&pk, 3);
    kith_pack_uint(&pk, FRAME_GOSSIP);
    kith_pack_bin(&pk, fuzz_store_gid, glen);
    kith_pack_bin(&pk, prune, sizeof prune);
    frame_seed(glen == 32 ? "gossip-gid" : "gossip-tag", &pk);
  }
  kith_pack_array(&pk, 5);
  kith_pack_uint(&pk, FRAME_RELAY);
  kith_pack_uint(&pk, 1);
  kith_pack_bin(&pk, fuzz_ident(FUZZ_ME)->pk, 32);
  kith_pack_bin(&pk, fuzz_ident(FUZZ_PEER)->pk, 32);
  kith_pack_bin(&pk, ids, 20);
  frame_seed("relay", &pk);
  kith_pack_array(&pk, 1);
  kith_pack_uint(&pk, FRAME_BYE);
  frame_seed("bye", &pk);
  kith_pack_array(&pk, 2);
  kith_pack_uint(&pk, FRAME_ELSEWHERE);
  kith_pack_uint(&pk, FUZZ_NOW_MS - 5000);
  frame_seed("elsewhere", &pk);
  kith_pack_array(&pk, 2);
  kith_pack_uint(&pk, FRAME_MOVE);
  kith_pack_uint(&pk, 3);
  frame_seed("move", &pk);
  path_frame(&pk, FRAME_PATH_OFFER, "path_offer");
  path_frame(&pk, FRAME_PATH_ANSWER, "path_answer");
}

/* ---- STUN on the signal port ---- */

/* A binding request with the cookie (RFC 5389) and one without (RFC 3489,
 * as libnice sends), and the answer to each. */
static void stun(void) {
  uint8_t req[KITH_STUN_REQUEST_LEN], ans[KITH_STUN_MAX], id[KITH_STUN_ID_LEN];
  struct sockaddr_in src = {.sin_family = AF_INET};
  src.sin_port = htons(40000);
  src.sin_addr.s_addr = htonl(0xc0000207); /* 192.0.2.7 */
  kith_stun_request(req, id);
  for (int cookie = 1; cookie >= 0; cookie--) {
    size_t n;
    if (!cookie)
      memset(req + 4, 0x5a, 4); /* an RFC 3489 transaction id */
    n = kith_stun_answer(req, sizeof req, &src, ans, sizeof ans);
    if (n == 0)
      must(KITH_ERR_DECODE, "stun answer");
    write_seed("stun", cookie ? "request" : "request-3489", req, sizeof req);
    write_seed("stun", cookie ? "answer" : "answer-3489", ans, n);
  }
}

/* ---- control requests ---- */

static void control(void) {
  kith_pack pk;
  uint8_t *buf;
  size_t len;
  GByteArray *all = g_byte_array_new();
  kith_pack_init(&pk);
  kith_pack_array(&pk, 4);
  kith_pack_uint(&pk, 0);
  kith_pack_uint(&pk, 1);
  kith_pack_cstr(&pk, "status");
  kith_pack_array(&pk, 0);
  take(&pk, &buf, &len);
  write_seed("control", "status", buf, len);
  g_byte_array_append(all, buf, (guint)len);
  g_free(buf);
  kith_pack_array(&pk, 4);
  kith_pack_uint(&pk, 0);
  kith_pack_uint(&pk, 2);
  kith_pack_cstr(&pk, "send");
  kith_pack_array(&pk, 3);
  kith_pack_cstr(&pk, "friends");
  kith_pack_cstr(&pk, "hello");
  msgpack_pack_map(&pk.pk, 1);
  kith_pack_cstr(&pk, "json");
  kith_pack_bool(&pk, 1);
  take(&pk, &buf, &len);
  write_seed("control", "send", buf, len);
  g_byte_array_append(all, buf, (guint)len);
  write_seed("control", "two-requests", all->data, all->len);
  g_free(buf);
  g_byte_array_unref(all);
}

/* ---- sessions ---- */

static void sessions(void) {
  kith_session *i =
      kith_session_new(fuzz_ident(FUZZ_PEER), fuzz_ident(FUZZ_ME)->pk, 1);
  GByteArray *hello = g_byte_array_new();
  static const uint8_t ping[] = {0x92, FRAME_PING, 0x05};
  static const uint8_t mode0[] = {0, 20}, mode2[] = {2, 4}, mode3[] = {3, 0},
                       mode4[] = {4, 4}, mode5[] = {5, 7};
  must(kith_session_start(i, hello), "session");
  write_prefixed("session", "hello", mode0, 2, hello->data, hello->len);
  write_prefixed("session", "record", mode2, 2, hello->data, hello->len);
  write_prefixed("session", "frame", mode3, 2, ping, sizeof ping);
  write_prefixed("session", "record-later", mode4, 2, hello->data, hello->len);
  write_prefixed("session", "frame-later", mode5, 2, ping, sizeof ping);
  g_byte_array_unref(hello);
  kith_session_free(i);
}

/* ---- gossip: a peer's engine talking to ours ---- */

/* Runs FUZZ_PEER's engine against a stand-in for ours and records what it
 * sends ours as fuzz_gossip operations (frames, ticks, verdicts). */
static void gossip(void) {
  const uint8_t *me = fuzz_ident(FUZZ_ME)->pk,
                *peer = fuzz_ident(FUZZ_PEER)->pk;
  kith_gossip *a = kith_gossip_new(peer, 7, NULL),
              *b = kith_gossip_new(me, 1, NULL);
  static const uint8_t zeros[70];
  kith_out o;
  GByteArray *ops = g_byte_array_new();
  uint64_t now = 1000;
  kith_out_init(&o);
  kith_gossip_link_up(a, me, now, &o);
  kith_gossip_link_up(b, peer, now, &o);
  kith_out_reset(&o);
  must(kith_gossip_join(b, peer, now, &o), "join");
  for (int round = 0; round < 40; round++) {
    kith_out next;
    kith_out_init(&next);
    for (size_t k = 0; k < o.n; k++) {
      kith_out_item *it = &o.items[k];
      int to_a = memcmp(it->peer, peer, 32) == 0;
      if (it->kind != KITH_OUT_SEND)
        continue;
      if (to_a) {
        (void)!kith_gossip_recv(a, me, it->data, it->len, now, &next);
      } else {
        fuzz_put_u8(ops, 0);
        fuzz_put(ops, it->data, it->len);
        (void)!kith_gossip_recv(b, peer, it->data, it->len, now, &next);
      }
    }
    kith_out_clear(&o);
    o = next;
    if (round % 4 == 0) {
      uint8_t payload[16] = {(uint8_t)round};
      (void)!kith_gossip_publish(a, FUZZ_NOW_MS + (uint64_t)round, payload,
                                 sizeof payload, now, &o);
      fuzz_put_u8(ops, 3 | 8);
      fuzz_put(ops, NULL, 0);
    }
    now += 700;
    kith_gossip_tick(a, now, &o);
    kith_gossip_tick(b, now, &o);
    fuzz_put_u8(ops, 2);
    fuzz_put(ops, zeros, 70); /* 700 ms */
  }
  write_seed("gossip", "session", ops->data, ops->len);
  kith_out_clear(&o);
  g_byte_array_unref(ops);
  kith_gossip_free(a);
  kith_gossip_free(b);
}

/* One fuzz_gossip operation: frame pk (taken) from FUZZ_PEER (op 0). */
static void gossip_op(GByteArray *ops, kith_pack *pk) {
  uint8_t *buf;
  size_t len;
  take(pk, &buf, &len);
  fuzz_put_u8(ops, 0);
  fuzz_put(ops, buf, len);
  g_free(buf);
}

/* The engine frames in the forms of tests/vectors/gossip.txt, from
 * FUZZ_PEER about a payload it published: PAYLOAD, IHAVE, GRAFT (with and
 * without sources), PRUNE (both trees), WANT; each a seed, and all of them
 * in one, then a verdict and a tick. */
static void gossip_vectors(void) {
  static const uint8_t payload[] = "kith gossip vector";
  static const char *const names[] = {"payload",       "ihave", "graft",
                                      "graft-sources", "prune", "prune-own",
                                      "want"};
  const uint8_t *peer = fuzz_ident(FUZZ_PEER)->pk;
  GByteArray *all = g_byte_array_new();
  uint64_t tag = 0;
  uint8_t id[32], hops = 0x81;
  kith_pack pk;
  for (int i = 0; i < 8; i++)
    tag = tag << 8 | peer[i];
  kith_gossip_payload_id(payload, sizeof payload, id);
  kith_pack_init(&pk);
  for (int f = 0; f < 7; f++) {
    GByteArray *one = g_byte_array_new();
    switch (f) {
    case 0:
      kith_pack_array(&pk, 5);
      kith_pack_uint(&pk, KITH_GF_PAYLOAD);
      kith_pack_uint(&pk, tag);
      kith_pack_uint(&pk, 1);
      kith_pack_uint(&pk, 1);
      kith_pack_bin(&pk, payload, sizeof payload);
      break;
    case 1:
      kith_pack_array(&pk, 3);
      kith_pack_uint(&pk, KITH_GF_IHAVE);
      kith_pack_bin(&pk, id, 8);
      kith_pack_bin(&pk, &hops, 1);
      break;
    case 2:
    case 3:
      kith_pack_array(&pk, 4);
      kith_pack_uint(&pk, KITH_GF_GRAFT);
      kith_pack_bin(&pk, id, 8);
      kith_pack_array(&pk, f == 3 ? 1 : 0);
      if (f == 3)
        kith_pack_uint(&pk, tag);
      kith_pack_uint(&pk, f == 3);
      break;
    case 4:
    case 5:
      kith_pack_array(&pk, 3);
      kith_pack_uint(&pk, KITH_GF_PRUNE);
      kith_pack_uint(&pk, tag);
      kith_pack_uint(&pk, f == 5);
      break;
    default:
      kith_pack_array(&pk, 2);
      kith_pack_uint(&pk, KITH_GF_WANT);
      kith_pack_array(&pk, 1);
      kith_pack_bin(&pk, id, 32);
    }
    gossip_op(one, &pk);
    write_seed("gossip", names[f], one->data, one->len);
    g_byte_array_append(all, one->data, one->len);
    g_byte_array_unref(one);
    if (f == 0) {
      fuzz_put_u8(all, 3 | 8); /* valid */
      fuzz_put(all, NULL, 0);
    }
  }
  fuzz_put_u8(all, 2);
  fuzz_put(all, id, 32); /* 320 ms */
  write_seed("gossip", "vectors", all->data, all->len);
  g_byte_array_unref(all);
}

/* ---- reconciliation ---- */

static void recon_fill(kith_recon *r, unsigned skip) {
  for (unsigned i = 1; i <= 300; i++) {
    uint8_t id[32];
    if (i % skip == 0)
      continue;
    crypto_generichash(id, sizeof id, (const uint8_t *)&i, sizeof i, NULL, 0);
    must(kith_recon_add(r, 1000 + i / 3, id), "recon add");
  }
}

/* Every message of one reconciliation between two sets that differ. */
static void reconcile(void) {
  kith_recon *side[2] = {kith_recon_new(), kith_recon_new()};
  GByteArray *ids = g_byte_array_new();
  uint8_t *msg, *reply;
  size_t len, rlen;
  recon_fill(side[0], 7);
  recon_fill(side[1], 11);
  must(kith_recon_initiate(side[0], &msg, &len), "recon");
  for (int n = 0, turn = 1; msg != NULL && n < 20; n++, turn ^= 1) {
    char name[16];
    g_snprintf(name, sizeof name, "step%02d", n);
    write_seed("reconcile", name, msg, len);
    must(kith_recon_step(side[turn], msg, len, &reply, &rlen, ids, ids),
         "recon step");
    g_free(msg);
    msg = reply;
    len = rlen;
  }
  g_free(msg);
  g_byte_array_unref(ids);
  kith_recon_free(side[0]);
  kith_recon_free(side[1]);
}

/* ---- store rows ---- */

/* The last accepted event of acc (its id). */
static const uint8_t *last_id(const GPtrArray *acc) {
  return ((const kith_accepted *)acc->pdata[acc->len - 1])->ev.id;
}

/* Delivers the events of acc to g (another member's replica; it holds
 * what it cannot open yet until the add sealed to it comes). */
static void deliver(kith_group *g, const GPtrArray *acc, uint64_t now) {
  GPtrArray *out =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
  for (guint i = 0; i < acc->len; i++) {
    const kith_event *ev = &((const kith_accepted *)acc->pdata[i])->ev;
    kith_err err = kith_group_receive(g, ev->raw, ev->raw_len, now, out);
    if (err != KITH_ERR_MISSING)
      must(err, "deliver");
  }
  if (kith_group_n_held(g) != 0)
    must(KITH_ERR_MISSING, "deliver");
  g_ptr_array_unref(out);
}

/* A group FUZZ_ME made, kept in a store as the engine writes it: FUZZ_PEER
 * admitted, messages of both (a reply, a reaction, an edit, a delete),
 * a topic, a setting, a role, a mute, a need of the peer and the keys that
 * answer it, a ban, an invite revoked, the peer
 * removed (and the rekey that follows), a message in the new epoch (so
 * that the sender chain the next message uses is a stored one). */
static kith_group *stored_group(kith_store *s) {
  const kith_ident *peer = fuzz_ident(FUZZ_PEER);
  GPtrArray *acc =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
  kith_accepted *a;
  uint8_t secret[32], pk[32], hello[32], theirs[32], reply[32];
  uint64_t t = FUZZ_NOW_MS + 10;
  kith_group *g = fuzz_group_with_peer(acc);
  kith_group *pg = kith_group_new(kith_group_id(g), peer);
  must(kith_store_put_group(s, kith_group_id(g)), "group");
  must(kith_group_attach_store(g, s), "attach");
  must(kith_group_send(g, "hello", 5, NULL, t++, acc), "send");
  memcpy(hello, last_id(acc), 32);
  deliver(pg, acc, t);
  g_ptr_array_set_size(acc, 0);
  must(kith_group_send(pg, "hi from the peer", 16, NULL, t++, acc), "send");
  memcpy(theirs, last_id(acc), 32);
  deliver(g, acc, t);
  must(kith_group_send(g, "a reply", 7, theirs, t++, acc), "reply");
  memcpy(reply, last_id(acc), 32);
  must(kith_group_react(g, theirs, "+1", 1, t++, acc), "react");
  must(kith_group_edit(g, hello, "hello, edited", 13, t++, acc), "edit");
  must(kith_group_delete(g, reply, t++, acc), "delete");
  must(kith_group_set_topic(g, "seeds", 5, t++, acc), "topic");
  must(kith_group_set_invites(g, 1, t++, acc), "settings");
  must(kith_group_set_role(g, peer->pk, KITH_ROLE_ADMIN, t++, acc), "role");
  must(kith_group_mute(g, peer->pk, t + 60000, t, acc), "mute");
  t++;
  peer_need(g, t, t + 600000, acc);
  t++;
  must(kith_group_ban(g, fuzz_ident(FUZZ_THIRD)->pk, t++, acc), "ban");
  must(kith_group_invite(g, 1, t + 3600000, t, secret, &a), "invite");
  t++;
  kith_accepted_free(a);
  kith_invite_public_key(secret, pk);
  must(kith_group_revoke(g, pk, t++, acc), "revoke");
  must(kith_group_remove(g, peer->pk, t++, acc), "remove");
  must(kith_group_send(g, "alone", 5, NULL, t++, acc), "send");
  must(kith_store_set_read(s, kith_group_id(g), t, last_id(acc)), "read");
  must(kith_group_flush(g), "flush");
  g_ptr_array_unref(acc);
  kith_group_free(pg);
  return g;
}

/* Appends the current result row of st, a row of table t, in the format
 * of fuzz_rows.h: the group id as FUZZ_COL_GID, sealed columns as their
 * plaintext (FUZZ_COL_SEALED), so that the fuzzer mutates what the store
 * unseals. */
static void put_row(GByteArray *b, size_t t, sqlite3_stmt *st,
                    const uint8_t gid[32]) {
  fuzz_val row[FUZZ_MAX_COLS];
  fuzz_put_u8(b, (uint8_t)t);
  for (int c = 0; c < fuzz_tables[t].n_cols; c++) {
    int type = sqlite3_column_type(st, c);
    fuzz_val *x = &row[c];
    uint8_t le[8];
    size_t n = 0;
    GByteArray *ad = g_byte_array_new();
    uint8_t *pt = NULL;
    x->type = type == SQLITE_INTEGER ? FUZZ_COL_INT
              : type == SQLITE_TEXT  ? FUZZ_COL_TEXT
              : type == SQLITE_NULL  ? FUZZ_COL_NULL
                                     : FUZZ_COL_BLOB;
    x->v = sqlite3_column_int64(st, c);
    x->p = sqlite3_column_blob(st, c);
    x->n = (size_t)sqlite3_column_bytes(st, c);
    if (x->type == FUZZ_COL_BLOB && fuzz_row_ad(t, c, row, ad))
      pt = fuzz_seal(0, ad, x->p, x->n, &n);
    for (int i = 0; i < 8; i++)
      le[i] = (uint8_t)((uint64_t)x->v >> (8 * i));
    if (pt) {
      fuzz_put_u8(b, FUZZ_COL_SEALED);
      fuzz_put(b, pt, n);
    } else if (x->type == FUZZ_COL_BLOB && x->n == 32 &&
               memcmp(x->p, gid, 32) == 0) {
      fuzz_put_u8(b, FUZZ_COL_GID);
      fuzz_put(b, NULL, 0);
    } else {
      fuzz_put_u8(b, (uint8_t)x->type);
      fuzz_put(b, x->type == FUZZ_COL_INT ? le : x->p,
               x->type == FUZZ_COL_INT ? 8 : x->n);
    }
    g_free(pt);
    g_byte_array_unref(ad);
  }
}

/* Writes the store's rows as seeds: NAME (every table) and, if tables
 * is set, one seed per table. */
static void dump_rows(const char *path, const uint8_t gid[32], const char *name,
                      int tables) {
  GByteArray *all = g_byte_array_new();
  sqlite3 *db;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
    abort();
  fuzz_put(all, gid, 32);
  for (size_t t = 0; t < FUZZ_N_TABLES; t++) {
    GByteArray *one = g_byte_array_new();
    char *sql = g_strdup_printf("SELECT * FROM %s", fuzz_tables[t].name);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
        sqlite3_column_count(st) != fuzz_tables[t].n_cols)
      abort();
    fuzz_put(one, gid, 32);
    while (sqlite3_step(st) == SQLITE_ROW) {
      put_row(one, t, st, gid);
      put_row(all, t, st, gid);
    }
    if (tables)
      write_seed("store", fuzz_tables[t].name, one->data, one->len);
    sqlite3_finalize(st);
    g_free(sql);
    g_byte_array_unref(one);
  }
  write_seed("store", name, all->data, all->len);
  sqlite3_close(db);
  g_byte_array_unref(all);
}

/* Makes the group's rows what a store of schema 2 upgraded in place holds
 * (docs/protocol.md 13.3): no derived columns, heads or chains yet, and
 * texts only for messages. */
static void make_old(const char *path) {
  sqlite3 *db;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
      sqlite3_exec(db,
                   "UPDATE events SET cseq = NULL, cf = NULL, facts = NULL,"
                   " ref = NULL, flag = 0;"
                   "UPDATE events SET text = NULL WHERE kind <> 9;"
                   "DELETE FROM heads; DELETE FROM chains;"
                   "UPDATE groups SET n_events = 0, read_ts = NULL,"
                   " read_id = NULL;",
                   NULL, NULL, NULL) != SQLITE_OK)
    abort();
  sqlite3_close(db);
}

/* A real store: an identity, a group (stored_group), a peer and a relay
 * friend; its rows as they are ("group", one seed per table) and as an
 * upgraded schema-2 store holds them ("old"). */
static void store(void) {
  char *dir = g_dir_make_tmp("kith-fuzz-corpus-XXXXXX", NULL);
  char *path = g_build_filename(dir, "kith.db", NULL);
  uint8_t key[32], seed[32], gid[32];
  kith_store *s;
  fuzz_store_key(key);
  memset(seed, FUZZ_ME, sizeof seed);
  must(kith_store_open(path, key, &s), "store");
  must(kith_store_put_identity(s, seed, "me"), "identity");
  kith_group *g = stored_group(s);
  memcpy(gid, kith_group_id(g), 32);
  must(kith_store_put_peer(s, fuzz_ident(FUZZ_PEER)->pk, "127.0.0.1", 7733,
                           FUZZ_NOW_MS),
       "peer");
  must(kith_store_put_friend(s, fuzz_ident(FUZZ_THIRD)->pk, "relay",
                             "192.0.2.1", 7733),
       "friend");
  kith_group_free(g);
  kith_store_close(s);
  dump_rows(path, gid, "group", 1);
  make_old(path);
  dump_rows(path, gid, "old", 0);
  for (const char *const *x = (const char *const[]){"", "-wal", "-shm", NULL};
       *x; x++) {
    char *f = g_strconcat(path, *x, NULL);
    (void)unlink(f);
    g_free(f);
  }
  (void)rmdir(dir);
  g_free(path);
  g_free(dir);
}

/* ---- presence beats ---- */

static void beats(void) {
  static const uint8_t group[32] = {0xd0, 0xd1, 0xd2, 0xd3};
  uint8_t beat[KITH_BEAT_MAX];
  size_t len;
  must(kith_beat_encode(fuzz_ident(FUZZ_PEER), group, FUZZ_NOW_MS,
                        KITH_PRESENCE_ONLINE, beat, &len),
       "beat");
  write_seed("presence", "beat", beat, len);
  must(kith_beat_encode(fuzz_ident(FUZZ_PEER), group, FUZZ_NOW_MS,
                        KITH_PRESENCE_OFFLINE, beat, &len),
       "offline beat");
  write_seed("presence", "offline", beat, len);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: kith-fuzz-corpus DIR\n");
    return 2;
  }
  out_dir = argv[1];
  if (randombytes_set_implementation(&rng) != 0 || sodium_init() < 0)
    return 1;
  events();
  bodies();
  invites();
  ice_and_join();
  signals();
  replay_seed();
  frames();
  stun();
  control();
  sessions();
  gossip();
  gossip_vectors();
  reconcile();
  store();
  beats();
  return 0;
}
