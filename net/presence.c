/* kith: presence on the node (core/presence.h, docs/protocol.md 11.7.7).
 *
 * Every group whose gossip engine runs sends a signed beat every period
 * (jittered) as an ephemeral gossip payload, at once when the engine gets
 * its first neighbour, and an offline beat when the node stops cleanly.
 * Beats and events heard from members feed the group's presence table,
 * which group.members reads. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "node_int.h"

/* KITH_PRESENCE_MS (tests): the smallest beat period, in ms. */
#define PRESENCE_ENV "KITH_PRESENCE_MS"
#define PRESENCE_ENV_MIN 100

void presence_init(kith_node *n) {
  const char *v = g_getenv(PRESENCE_ENV);
  char *end = NULL;
  unsigned long long ms = v ? strtoull(v, &end, 10) : 0;

  n->presence_min_ms = KITH_PRESENCE_PERIOD_MIN_MS;
  if (v && *v && end && *end == '\0' && ms >= PRESENCE_ENV_MIN &&
      ms <= KITH_PRESENCE_PERIOD_MAX_MS)
    n->presence_min_ms = ms;
  else if (v)
    node_log(n, "%s=%s ignored: it takes %d to %d (ms)", PRESENCE_ENV, v,
             PRESENCE_ENV_MIN, KITH_PRESENCE_PERIOD_MAX_MS);
}

static uint64_t period(kith_node *n, node_group *ng) {
  return kith_presence_period(kith_group_n_members(ng->g), n->presence_min_ms);
}

static kith_presence *table(node_group *ng) {
  if (!ng->pr)
    ng->pr = kith_presence_new(kith_group_id(ng->g));
  return ng->pr;
}

static void send_beat(kith_node *n, node_group *ng, int state) {
  uint8_t beat[KITH_BEAT_MAX];
  size_t len;

  if (kith_beat_encode(&n->me, kith_group_id(ng->g), node_wall_ms(), state,
                       beat, &len) == KITH_OK)
    gossip_publish_ephemeral(n, ng, beat, len);
}

/* P +- KITH_PRESENCE_JITTER_PCT %, uniformly. */
static uint64_t jittered(uint64_t p) {
  uint64_t span = p * KITH_PRESENCE_JITTER_PCT / 100;
  return p - span +
         randombytes_uniform((uint32_t)MIN(2 * span + 1, UINT32_MAX));
}

void presence_tick(kith_node *n) {
  GList *groups = g_hash_table_get_values(n->groups);
  uint64_t now = node_now();

  for (GList *l = groups; l; l = l->next) {
    node_group *ng = l->data;
    size_t links = ng->gs ? kith_gossip_active(ng->gs, NULL, 0) : 0;
    int first = links > 0 && ng->beat_links == 0;
    ng->beat_links = (uint32_t)links;
    if (links == 0 || (!first && now < ng->beat_at))
      continue;
    send_beat(n, ng, KITH_PRESENCE_ONLINE);
    ng->beat_at = now + jittered(period(n, ng));
  }
  g_list_free(groups);
}

void presence_published(kith_node *n, node_group *ng) {
  /* The event counts as a beat where it arrives: the next beat can wait
   * a period from now (not before the first neighbour's, though). */
  if (ng->beat_links > 0)
    ng->beat_at = node_now() + jittered(period(n, ng));
}

void presence_stop(kith_node *n) {
  GList *groups = n->groups ? g_hash_table_get_values(n->groups) : NULL;

  for (GList *l = groups; l; l = l->next) {
    node_group *ng = l->data;
    if (ng->gs && kith_gossip_active(ng->gs, NULL, 0) > 0)
      send_beat(n, ng, KITH_PRESENCE_OFFLINE);
  }
  g_list_free(groups);
}

kith_gossip_verdict_kind presence_judge(kith_node *n, node_group *ng,
                                        const uint8_t *data, size_t len) {
  kith_beat b;

  if (kith_beat_decode(data, len, &b) != KITH_OK ||
      memcmp(b.group, kith_group_id(ng->g), 32) != 0)
    return KITH_GOSSIP_INVALID;
  /* Membership and clocks may differ between nodes for a while: no blame,
   * but not passed on either. */
  if (!kith_group_is_member(ng->g, b.node) ||
      memcmp(b.node, n->me.pk, KITH_ID_LEN) == 0 ||
      kith_presence_beat(table(ng), &b, node_now(), node_wall_ms()) != KITH_OK)
    return KITH_GOSSIP_LATER;
  return KITH_GOSSIP_VALID;
}

void presence_heard(kith_node *n, node_group *ng, const kith_event *ev) {
  (void)n;
  if (memcmp(ev->author, n->me.pk, KITH_ID_LEN) != 0)
    kith_presence_heard(table(ng), ev->author, ev->ts_ms, node_now(),
                        node_wall_ms());
}

/* A link counts while it hears from its peer (a PING or PONG comes every
 * PEER_PING_MS): one whose peer was killed is kept up to
 * PEER_IDLE_TIMEOUT_MS, which is longer than presence needs. */
#define LINK_FRESH_MS (2 * PEER_PING_MS)

static int linked(kith_node *n, const uint8_t id[32]) {
  node_peer *p = peer_find_up(n, id);
  return p && node_now() < p->last_rx_ms + LINK_FRESH_MS;
}

int presence_online(kith_node *n, node_group *ng, const uint8_t id[32],
                    uint64_t *last_seen_ms) {
  if (memcmp(id, n->me.pk, KITH_ID_LEN) == 0 || linked(n, id)) {
    *last_seen_ms = node_wall_ms();
    return 1;
  }
  *last_seen_ms = 0;
  return ng->pr && kith_presence_online(ng->pr, id, node_now(), period(n, ng),
                                        last_seen_ms);
}
