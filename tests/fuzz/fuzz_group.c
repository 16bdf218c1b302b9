/* libFuzzer target: event bodies, through kith_group_receive.
 *
 * The node under test (FUZZ_ME) owns a group that FUZZ_PEER was admitted
 * to (create, invite, add), and FUZZ_ME asked for the keys of the current
 * epoch (a need, so that a keys event on top can answer it); built once.
 * Each input becomes one event on top of that history, received by a
 * fresh replica of the group:
 *   byte 0: bits 0-3 and 7 the kind (1 + value % KITH_EV_KIND_MAX, the
 *     value's bit 4 from bit 7), bit 4 the author (FUZZ_PEER, else
 *     FUZZ_ME), bit 5 "extra sealed" (for add and keys: a box to FUZZ_ME;
 *     for rekey: an array of one box per member), bit 6 "raw": the rest of
 *     the input is a raw event instead;
 *   then the inner plaintext (a fuzz_take part), then the extra (the
 *   rest; add, rekey and keys only). An empty inner plaintext of a need
 *   or keys event is replaced by the one the history makes acceptable
 *   ([[current epoch]], [the need's id]; ids and epochs differ in each
 *   run, so seeds cannot name them).
 * The inner plaintext is sealed as group.h says, under the key of the
 * group's current epoch (the message key 0 of the author's chain for a
 * message, react, edit or delete), so the body and inner parsers and the rules
 * are reached. Checks: a rejected or held event leaves the state hash
 * unchanged; an accepted one adds at least one event. */
#include <stdlib.h>

#include "core/codec.h"
#include "core/event.h"
#include "core/group.h"
#include "fuzz_common.h"

static uint8_t gid[32];
static GPtrArray *history; /* GBytes of the base events, in order */
static GArray *secrets;    /* epoch (8) || secret (32) blocks */

static void keep_accepted(GPtrArray *acc) {
  for (guint i = 0; i < acc->len; i++) {
    const kith_accepted *a = acc->pdata[i];
    g_ptr_array_add(history, g_bytes_new(a->ev.raw, a->ev.raw_len));
  }
  g_ptr_array_set_size(acc, 0);
}

static kith_err on_head(kith_group *g, uint32_t kind, const kith_ident *author,
                        int sealed_extra, const uint8_t *inner, size_t ilen,
                        const uint8_t *extra, size_t xlen, kith_event *ev);

/* The inner plaintext of a need or keys event acceptable on g's head:
 * [[current epoch]] or [head id] (g_malloc'ed). */
static void fitting_inner(const kith_group *g, uint32_t kind, uint8_t **inner,
                          size_t *ilen) {
  GByteArray *ids = g_byte_array_new();
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 1);
  if (kind == KITH_EV_NEED) {
    kith_pack_array(&p, 1);
    kith_pack_uint(&p, kith_group_epoch_id(g));
  } else {
    kith_group_heads(g, ids);
    kith_pack_bin(&p, ids->data, 32);
  }
  g_byte_array_unref(ids);
  if (kith_pack_take(&p, inner, ilen) != KITH_OK)
    abort();
}

/* FUZZ_ME's need [[current epoch]] on top of g, received and kept. */
static void add_need(kith_group *g, GPtrArray *acc) {
  uint8_t *inner;
  size_t ilen;
  kith_event ev = {0};
  fitting_inner(g, KITH_EV_NEED, &inner, &ilen);
  if (on_head(g, KITH_EV_NEED, fuzz_ident(FUZZ_ME), 0, inner, ilen, NULL, 0,
              &ev) != KITH_OK ||
      kith_group_receive(g, ev.raw, ev.raw_len, FUZZ_NOW_MS + 10, acc) !=
          KITH_OK)
    abort();
  keep_accepted(acc);
  kith_event_clear(&ev);
  g_free(inner);
}

static void build_history(void) {
  GPtrArray *acc =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
  kith_group *g = fuzz_group_with_peer(acc);

  history = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  memcpy(gid, kith_group_id(g), 32);
  keep_accepted(acc);
  add_need(g, acc);
  secrets = g_array_new(FALSE, FALSE, 40);
  for (size_t i = 0; i < kith_group_n_secrets(g); i++) {
    uint8_t block[40];
    uint64_t epoch;
    kith_group_secret_at(g, i, &epoch, block + 8);
    memcpy(block, &epoch, 8);
    g_array_append_val(secrets, block);
  }
  g_ptr_array_unref(acc);
  kith_group_free(g);
}

/* A replica of the base group as the node under test holds it. */
static kith_group *replica(void) {
  kith_group *g = kith_group_new(gid, fuzz_ident(FUZZ_ME));
  GPtrArray *acc =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
  for (guint i = 0; i < secrets->len; i++) {
    const uint8_t *block = &g_array_index(secrets, uint8_t, i * 40);
    uint64_t epoch;
    memcpy(&epoch, block, 8);
    kith_group_add_secret(g, epoch, block + 8);
  }
  for (guint i = 0; i < history->len; i++) {
    gsize len;
    const uint8_t *raw = g_bytes_get_data(history->pdata[i], &len);
    if (kith_group_receive(g, raw, len, FUZZ_NOW_MS + 10, acc) != KITH_OK)
      abort();
  }
  g_ptr_array_unref(acc);
  return g;
}

/* The extra of an add or rekey: raw, or boxes holding it. */
static void pack_extra(kith_pack *p, const kith_group *g, uint32_t kind,
                       int sealed, const uint8_t *extra, size_t len) {
  uint8_t *box = g_malloc(len + KITH_SEAL_OVERHEAD);
  if (!sealed) {
    kith_pack_bin(p, extra, len);
  } else if (kind == KITH_EV_ADD || kind == KITH_EV_KEYS) {
    if (kith_seal(fuzz_ident(FUZZ_ME)->pk, extra, len, box) == KITH_OK)
      kith_pack_bin(p, box, len + KITH_SEAL_OVERHEAD);
  } else {
    kith_pack boxes;
    uint8_t *bytes = NULL;
    size_t blen = 0;
    kith_pack_init(&boxes);
    kith_pack_array(&boxes, (uint32_t)kith_group_n_members(g));
    for (size_t i = 0; i < kith_group_n_members(g); i++)
      if (kith_seal(kith_group_member_at(g, i)->id, extra, len, box) == KITH_OK)
        kith_pack_bin(&boxes, box, len + KITH_SEAL_OVERHEAD);
    if (kith_pack_take(&boxes, &bytes, &blen) == KITH_OK)
      kith_pack_bin(p, bytes, blen);
    g_free(bytes);
  }
  g_free(box);
}

/* The body [epoch, (n,) sealed, (extra)] of a kind-event by author. */
static kith_err make_body(const kith_group *g, uint32_t kind,
                          const uint8_t author[32], int sealed_extra,
                          const uint8_t *inner, size_t ilen,
                          const uint8_t *extra, size_t xlen, uint8_t **out,
                          size_t *out_len) {
  kith_pack p;
  kith_pack_init(&p);
  fuzz_pack_sealed(&p, g, kind, author, inner, ilen);
  if (kind == KITH_EV_ADD || kind == KITH_EV_REKEY || kind == KITH_EV_KEYS)
    pack_extra(&p, g, kind, sealed_extra, extra, xlen);
  else if (!fuzz_message_like(kind))
    kith_pack_nil(&p);
  return kith_pack_take(&p, out, out_len);
}

/* Receives raw into g and checks what the result promises. */
static void receive(kith_group *g, const uint8_t *raw, size_t len) {
  GPtrArray *acc =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
  uint8_t before[32], after[32];
  size_t n = kith_group_n_events(g);

  kith_group_state_hash(g, before);
  kith_err err = kith_group_receive(g, raw, len, FUZZ_NOW_MS + 20, acc);
  kith_group_state_hash(g, after);
  if (err == KITH_OK && (kith_group_n_events(g) <= n || acc->len == 0))
    abort(); /* accepted must mean kept */
  if (err != KITH_OK && memcmp(before, after, 32) != 0)
    abort(); /* rejected or held events change nothing */
  g_ptr_array_set_size(acc, 0);
  /* Whatever was accepted may oblige us to rekey. */
  (void)!kith_group_maintain(g, FUZZ_NOW_MS + 60000, acc);
  g_ptr_array_unref(acc);
}

/* The kind-event by author on g's one head (the base history is a chain),
 * in g's current epoch, into ev (cleared by the caller). */
static kith_err on_head(kith_group *g, uint32_t kind, const kith_ident *author,
                        int sealed_extra, const uint8_t *inner, size_t ilen,
                        const uint8_t *extra, size_t xlen, kith_event *ev) {
  uint8_t *body = NULL;
  size_t body_len = 0;
  GByteArray *ids = g_byte_array_new();
  kith_err err;

  /* version 1: the form whose bodies name their epoch, as make_body packs
   * them; the engine's own version-2 events come in as raw seeds */
  *ev = (kith_event){.version = KITH_EVENT_V1,
                     .kind = kind,
                     .n_parents = 1,
                     .ts_ms = FUZZ_NOW_MS + 30};
  kith_group_heads(g, ids);
  memcpy(ev->parents[0], ids->data, 32);
  g_byte_array_unref(ids);
  memcpy(ev->group_id, gid, 32);
  if (kith_group_event_info(g, ev->parents[0], &ev->depth, NULL, NULL, NULL) !=
      KITH_OK)
    abort();
  ev->depth++;
  err = make_body(g, kind, author->pk, sealed_extra, inner, ilen, extra, xlen,
                  &body, &body_len);
  if (err == KITH_OK)
    err = kith_event_build(ev, author, body, body_len);
  g_free(body);
  return err;
}

static void receive_body(kith_group *g, uint8_t flags, fuzz_in *in) {
  uint32_t kind = 1 + ((flags & 15) | (flags >> 3 & 16)) % KITH_EV_KIND_MAX;
  const kith_ident *author = fuzz_ident(flags & 16 ? FUZZ_PEER : FUZZ_ME);
  const uint8_t *inner;
  size_t ilen = fuzz_take(in, &inner);
  uint8_t *fitting = NULL;
  kith_event ev;

  if (ilen == 0 && (kind == KITH_EV_NEED || kind == KITH_EV_KEYS)) {
    fitting_inner(g, kind, &fitting, &ilen);
    inner = fitting;
  }
  if (on_head(g, kind, author, flags & 32, inner, ilen, in->p, in->n, &ev) ==
      KITH_OK)
    receive(g, ev.raw, ev.raw_len);
  kith_event_clear(&ev);
  g_free(fitting);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (history == NULL)
    build_history();
  if (size < 1 || size > KITH_EVENT_MAX_BODY / 2)
    return 0;
  fuzz_in in = {data + 1, size - 1};
  kith_group *g = replica();
  if (data[0] & 64)
    receive(g, in.p, in.n);
  else
    receive_body(g, data[0], &in);
  kith_group_free(g);
  return 0;
}
