/* kith: a group replica and its store (group.h): writing accepted events,
 * rebuilding a replica from the store at start-up, upgrading events
 * stored by an older kith, and flushing what is kept in memory between
 * events.
 *
 * A restart reads only the group's keys, its control events (with their
 * facts at their parents and their inner plaintexts, so nothing needs
 * decrypting or verifying), its heads and its count, then folds the
 * control events once: its cost grows with the control events, not with
 * the messages. */
#include "group_int.h"

#include <sodium.h>
#include <string.h>

#include "codec.h"

/* Facts of a control event, kept in the store so that a restart needs no
 * state at its parents: [a_role, t_role, needs, power, a_since, rcpt bin
 * (32-byte ids)]. */
static uint8_t *pack_facts(kith_group *g, const grp_ctl *c, size_t *len) {
  kith_pack p;
  kith_pack_init(&p);
  kith_pack_array(&p, 6);
  kith_pack_uint(&p, c->a_role);
  kith_pack_uint(&p, c->t_role);
  kith_pack_uint(&p, c->needs);
  kith_pack_uint(&p, c->power);
  kith_pack_uint(&p, c->a_since);
  GByteArray *ids = g_byte_array_new();
  for (uint32_t i = 0; i < c->n_rcpt; i++)
    g_byte_array_append(ids, grp_member_id(g, c->rcpt[i]), 32);
  kith_pack_bin(&p, ids->data, ids->len);
  g_byte_array_free(ids, TRUE);
  uint8_t *out = NULL;
  if (kith_pack_take(&p, &out, len) != KITH_OK)
    out = NULL;
  return out;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static kith_err unpack_facts(kith_group *g, const uint8_t *buf, size_t len,
                             grp_ctl *c) {
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  const msgpack_object *it;
  uint64_t v[5];
  const uint8_t *ids;
  size_t n;
  kith_err rc = buf ? kith_codec_unpack(buf, len, &u) : KITH_ERR_IO;
  if (rc == KITH_OK)
    rc = kith_codec_array(&u.data, 6, &it);
  for (int i = 0; rc == KITH_OK && i < 5; i++)
    rc = kith_codec_uint(&it[i], UINT32_MAX, &v[i]);
  if (rc == KITH_OK)
    rc = kith_codec_bin(&it[5], 32 * KITH_GROUP_MAX_MEMBERS, &ids, &n);
  /* the author's admission (a cseq the fold indexes by) came before */
  if (rc == KITH_OK && (n % 32 || v[0] > 2 || v[1] > 2 || v[2] > 2 ||
                        v[3] > 2 || (v[4] >= c->cseq && v[4] != GRP_NO_CSEQ)))
    rc = KITH_ERR_IO;
  if (rc == KITH_OK) {
    c->a_role = (uint8_t)v[0];
    c->t_role = (uint8_t)v[1];
    c->needs = (uint8_t)v[2];
    c->power = (uint8_t)v[3];
    c->a_since = (uint32_t)v[4];
    c->n_rcpt = (uint32_t)(n / 32);
    c->rcpt = c->n_rcpt ? g_new(uint32_t, c->n_rcpt) : NULL;
    for (uint32_t i = 0; i < c->n_rcpt; i++)
      c->rcpt[i] = grp_member_number(g, ids + 32 * i);
    if (c->n_rcpt)
      qsort(c->rcpt, c->n_rcpt, sizeof *c->rcpt, cmp_u32);
  }
  msgpack_unpacked_destroy(&u);
  return rc == KITH_OK ? KITH_OK : KITH_ERR_IO;
}

kith_err grp_store_event(kith_group *g, const kith_event *ev, const grp_ctl *c,
                         grp_front *cf, const grp_inner *in) {
  if (!g->store) {
    grp_keep_raw(g, ev);
    return KITH_OK;
  }
  size_t facts_len = 0;
  uint8_t *facts = c ? pack_facts(g, c, &facts_len) : NULL;
  const grp_front *f = c ? c->pf : cf;
  kith_store_row r = {.ev = ev,
                      .cseq = c ? c->cseq : GRP_NO_CSEQ,
                      .cf = f ? f->cs : NULL,
                      .n_cf = f ? f->n : 0,
                      .facts = facts,
                      .facts_len = facts_len,
                      .text = c            ? (const char *)c->in.pt
                              : in->unread ? NULL
                                           : in->text,
                      .text_len = c            ? c->in.pt_len
                                  : in->unread ? 0
                                               : in->text_len,
                      .ref = in->has_ref ? in->ref : NULL,
                      .flag = (in->value ? KITH_STORE_ON : 0) |
                              (in->applies ? KITH_STORE_APPLIES : 0),
                      .convert = g->converting};
  kith_err rc =
      c && !facts ? KITH_ERR_NOMEM : kith_store_put_event(g->store, &r);
  g_free(facts);
  return rc;
}

/* ---- rebuilding from the store ---- */

static kith_err load_control(void *ctx, const kith_store_ctl *r) {
  kith_group *g = ctx;
  kith_event ev;
  body b;
  if (r->cseq != g->ctl->len ||
      kith_event_decode_trusted(r->raw, r->len, g->gid, &ev) != KITH_OK)
    return KITH_ERR_IO;
  kith_err rc = grp_parse_body(&ev, &b);
  grp_ctl *c = g_new0(grp_ctl, 1);
  c->cseq = r->cseq;
  c->kind = ev.kind;
  memcpy(c->id, ev.id, 32);
  memcpy(c->author, ev.author, 32);
  c->depth = ev.depth;
  c->ts = ev.ts_ms;
  c->epoch = b.epoch;
  for (uint32_t i = 0; rc == KITH_OK && i < r->n_pf; i++)
    if (r->pf[i] >= c->cseq || (i && r->pf[i] <= r->pf[i - 1]))
      rc = KITH_ERR_IO;
  if (rc == KITH_OK && ev.kind != KITH_EV_CREATE)
    c->pf = grp_front_intern(g, r->pf, r->n_pf);
  if (rc == KITH_OK)
    rc = grp_parse_inner(g, &ev, r->note, r->note_len, &c->in);
  if (rc == KITH_OK)
    rc = unpack_facts(g, r->facts, r->facts_len, c);
  if (rc == KITH_OK) {
    c->in.pt =
        g_memdup2(r->note_len ? r->note : (const uint8_t *)"", r->note_len);
    c->in.pt_len = r->note_len;
    grp_ctl_insert(g, c);
    if (c->kind == KITH_EV_CREATE || c->kind == KITH_EV_REKEY)
      grp_epoch_started(
          g, c->kind == KITH_EV_REKEY ? c->in.new_epoch : c->epoch, c->cseq);
    if (c->kind > KITH_EV_MESSAGE)
      g->has_ext_kind = 1;
  } else {
    grp_ctl_free(g, c);
    rc = KITH_ERR_IO;
  }
  grp_body_clear(&b);
  kith_event_clear(&ev);
  return rc;
}

static kith_err load_keys(kith_group *g) {
  GByteArray *secrets = g_byte_array_new();
  kith_err rc = kith_store_load_secrets(g->store, g->gid, secrets);
  for (guint i = 0; rc == KITH_OK && i + 40 <= secrets->len; i += 40) {
    uint64_t epoch = 0;
    for (int b = 7; b >= 0; b--)
      epoch = (epoch << 8) | secrets->data[i + b];
    kith_group_add_secret(g, epoch, secrets->data + i + 8);
  }
  sodium_memzero(secrets->data, secrets->len);
  g_byte_array_unref(secrets);
  return rc;
}

static kith_err load_heads(kith_group *g) {
  GByteArray *ids = g_byte_array_new();
  kith_err rc = kith_store_load_heads(g->store, g->gid, ids);
  for (guint i = 0; rc == KITH_OK && i + 32 <= ids->len; i += 32) {
    grp_sum *s = grp_sum_get(g, ids->data + i);
    if (!s) {
      rc = KITH_ERR_IO;
      break;
    }
    kith_event ev = {.depth = s->depth, .ts_ms = s->ts, .kind = s->kind};
    memcpy(ev.id, s->id, 32);
    memcpy(ev.author, s->author, 32);
    grp_heads_update(g, &ev, s->cf);
  }
  g->heads_dirty = 0;
  g_byte_array_unref(ids);
  return rc;
}

/* Events a kith before schema 3 stored: through the engine once (trusted:
 * they were verified when they arrived; their texts are in the store).
 * Their dates were checked against a clock then too: none is held for
 * its date now (KITH_TS_MAX as the clock), or nothing would be converted
 * until the first kith_group_maintain, with messages decrypted again. */
static kith_err convert_old(kith_group *g) {
  const uint64_t now_ms = KITH_TS_MAX;
  GPtrArray *raws =
      g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  GPtrArray *acc =
      g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
  kith_err rc = kith_store_load_old(g->store, g->gid, raws);
  kith_group_set_replay(g, 1);
  g->converting = 1;
  for (guint i = 0; rc == KITH_OK && i < raws->len; i++) {
    gsize len;
    const uint8_t *raw = g_bytes_get_data(raws->pdata[i], &len);
    kith_event ev;
    if (kith_event_decode_trusted(raw, len, g->gid, &ev) != KITH_OK)
      continue;
    kith_err e = grp_receive_event(g, &ev, now_ms, acc);
    kith_event_clear(&ev);
    if (e == KITH_ERR_IO)
      rc = e;
    g_ptr_array_set_size(acc, 0);
  }
  kith_group_set_replay(g, 0);
  g->converting = 0;
  if (rc == KITH_OK && raws->len > 0)
    rc = kith_group_flush(g);
  g_ptr_array_unref(acc);
  g_ptr_array_unref(raws);
  return rc;
}

kith_err kith_group_open(const uint8_t gid[32], const kith_ident *me,
                         kith_store *store, kith_group **out) {
  if (!gid || !me || !store || !out)
    return KITH_ERR_ARG;
  kith_group *g = kith_group_new(gid, me);
  kith_store_group row;
  g->store = store;
  kith_err rc = load_keys(g);
  if (rc == KITH_OK)
    rc = kith_store_load_controls(store, gid, load_control, g);
  if (rc == KITH_OK) {
    grp_state_clear(&g->st);
    grp_fold(g, NULL, &g->st);
    g->st_version++;
    grp_note_victim(g);
    rc = load_heads(g);
  }
  if (rc == KITH_OK) {
    rc = kith_store_get_group(store, gid, &row);
    if (rc == KITH_ERR_NOT_FOUND)
      rc = KITH_OK, row.n_events = 0;
    g->n_events = row.n_events;
  }
  if (rc == KITH_OK)
    rc = convert_old(g);
  if (rc != KITH_OK) {
    kith_group_free(g);
    return rc;
  }
  *out = g;
  return KITH_OK;
}

kith_err kith_group_attach_store(kith_group *g, kith_store *store) {
  if (!g || !store || g->store)
    return KITH_ERR_ARG;
  if (g->n_events != g->ctl->len)
    return KITH_ERR_STATE; /* only groups of control events so far */
  g->store = store;
  kith_err rc = KITH_OK;
  for (guint i = 0; rc == KITH_OK && i < g->ctl->len; i++) {
    grp_ctl *c = g->ctl->pdata[i];
    GBytes *bytes = grp_raw_of(g, c->id);
    kith_event ev;
    if (!bytes || kith_event_decode_trusted(g_bytes_get_data(bytes, NULL),
                                            g_bytes_get_size(bytes), g->gid,
                                            &ev) != KITH_OK) {
      rc = KITH_ERR_STATE;
      break;
    }
    rc = grp_store_event(g, &ev, c, NULL, &c->in);
    kith_event_clear(&ev);
  }
  if (rc == KITH_OK)
    rc = kith_group_flush(g);
  if (rc != KITH_OK) {
    g->store = NULL;
    return rc;
  }
  if (g->raws)
    g_hash_table_destroy(g->raws);
  if (g->raw_order)
    g_ptr_array_free(g->raw_order, TRUE);
  g->raws = NULL;
  g->raw_order = NULL;
  return KITH_OK;
}

kith_err kith_group_flush(kith_group *g) {
  if (!g || !g->store)
    return KITH_OK;
  kith_err rc = grp_save_keys(g);
  if (rc == KITH_OK)
    rc = grp_save_chains(g);
  if (rc == KITH_OK) /* a no-op until the group has its row */
    rc = kith_store_set_count(g->store, g->gid, g->n_events);
  if (rc == KITH_OK && g->heads_dirty) {
    GByteArray *ids = g_byte_array_new();
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, g->heads);
    while (g_hash_table_iter_next(&it, &k, NULL))
      g_byte_array_append(ids, k, 32);
    rc = kith_store_set_heads(g->store, g->gid, ids->data, ids->len / 32);
    g_byte_array_unref(ids);
    if (rc == KITH_OK)
      g->heads_dirty = 0;
  }
  return rc;
}
