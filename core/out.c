/* kith: the engines' output queue. */
#include "out.h"

#include <glib.h>
#include <string.h>

void kith_out_init(kith_out *o) {
  memset(o, 0, sizeof *o);
}

void kith_out_reset(kith_out *o) {
  for (size_t i = 0; i < o->n; i++)
    g_free(o->items[i].data);
  o->n = 0;
}

void kith_out_clear(kith_out *o) {
  kith_out_reset(o);
  g_free(o->items);
  kith_out_init(o);
}

kith_out_item *kith_out_push(kith_out *o, kith_out_kind kind,
                             const uint8_t peer[32], uint8_t *data,
                             size_t len) {
  if (o->n >= KITH_OUT_MAX) {
    g_free(data);
    o->dropped++;
    return NULL;
  }
  if (o->n == o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 16;
    o->items = g_renew(kith_out_item, o->items, cap);
    o->cap = cap;
  }
  kith_out_item *it = &o->items[o->n++];
  memset(it, 0, sizeof *it);
  it->kind = kind;
  if (peer != NULL)
    memcpy(it->peer, peer, 32);
  it->data = data;
  it->len = len;
  return it;
}

uint8_t *kith_out_take_data(kith_out *o, size_t i) {
  if (i >= o->n)
    return NULL;
  uint8_t *d = o->items[i].data;
  o->items[i].data = NULL;
  return d;
}
