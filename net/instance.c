/* kith: one identity, one running node.
 *
 * Every run of a node is an *instance*: the wall-clock time it started and
 * 16 random bytes, sent in every offer and answer (docs/protocol.md 8.4).
 * A home copied to a second machine makes two instances of one identity.
 * Without a rule they knock each other off every link in turn ("the peer
 * reconnected"), forever. The rule: the newer instance keeps the links
 * (a restart is a newer instance too, so restarts are unaffected); a peer
 * refuses an offer from an older instance while a newer one is linked to
 * it and alive, answering it with ELSEWHERE, and tells the newer one over
 * its link. The older one says so in its log and makes no new link for
 * INSTANCE_BACKOFF_MS; the newer one says so in its log. */
#include <sodium.h>
#include <string.h>

#include "../core/codec.h"
#include "node_int.h"

#define INSTANCE_BACKOFF_MS (60 * KITH_SECOND) /* the older one waits */
#define INSTANCE_ALIVE_MS (2 * PEER_PING_MS)   /* a link heard from lately */
#define INSTANCE_LOG_MS (60 * KITH_SECOND)     /* one warning per minute */

void instance_init(kith_node *n) {
  n->inst.since_ms = node_wall_ms();
  randombytes_buf(n->inst.nonce, sizeof n->inst.nonce);
}

/* < 0 if a started before b (by time, then nonce), 0 if the same. */
static int instance_cmp(const node_instance *a, const node_instance *b) {
  if (a->since_ms != b->since_ms)
    return a->since_ms < b->since_ms ? -1 : 1;
  return memcmp(a->nonce, b->nonce, sizeof a->nonce);
}

static char *clock_text(uint64_t wall_ms) {
  GDateTime *t = g_date_time_new_from_unix_utc((gint64)(wall_ms / 1000));
  char *s = t ? g_date_time_format(t, "%Y-%m-%d %H:%M:%S UTC")
              : g_strdup("an unknown time");

  if (t)
    g_date_time_unref(t);
  return s;
}

/* One warning line per INSTANCE_LOG_MS: the conflict may go on for long. */
static void warn(kith_node *n, const char *what, uint64_t other_since) {
  uint64_t now = node_now();
  char *when;

  if (n->inst_warned_ms && now < n->inst_warned_ms + INSTANCE_LOG_MS)
    return;
  n->inst_warned_ms = now;
  when = clock_text(other_since);
  node_log(n,
           "another node runs with this identity (started %s): %s; running "
           "one home on two machines at once is not supported",
           when, what);
  g_free(when);
}

int instance_may_link(kith_node *n) {
  return !n->inst_backoff_until || node_now() >= n->inst_backoff_until;
}

/* The newer instance of a peer, if a live link of ours has one. */
static int has_live_newer(const node_peer *cur, const node_instance *offered) {
  return cur && cur->has_inst && instance_cmp(offered, &cur->inst) < 0 &&
         node_now() < cur->last_rx_ms + INSTANCE_ALIVE_MS;
}

int instance_refuses_offer(kith_node *n, node_peer *cur,
                           const kith_signal_msg *m, const node_instance *inst,
                           node_peer *relay) {
  kith_pack pk;
  uint8_t *buf;
  size_t len;
  kith_err err;

  if (!has_live_newer(cur, inst))
    return 0;
  node_log(n,
           "refused an offer from %.8s: an older instance of a node that "
           "is linked here already",
           cur->id_text);
  kith_pack_init(&pk);
  kith_pack_array(&pk, 3);
  kith_pack_uint(&pk, SIG_ELSEWHERE);
  kith_pack_uint(&pk, cur->inst.since_ms);
  kith_pack_nil(&pk);
  if (kith_pack_take(&pk, &buf, &len) == KITH_OK) {
    err = relay ? relay_send_signal(relay, m->from, buf, len)
                : kith_signal_reply(n->sig, m->from, m->src, buf, len, m->size);
    if (err != KITH_OK)
      node_log(n, "could not send ELSEWHERE: %s", kith_strerror(err));
    g_free(buf);
  }
  if (peer_is_up(cur))
    peer_send_uint_frame(cur, FRAME_ELSEWHERE, inst->since_ms);
  return 1;
}

void instance_on_elsewhere(kith_node *n, const uint8_t from[32],
                           uint64_t since) {
  char text[KITH_ID_TEXT_LEN + 1];
  char *what;

  /* A peer's word is enough to hold back: it costs us links for a while,
   * which is all a peer can do anyway by refusing our offers. */
  n->inst_backoff_until = node_now() + INSTANCE_BACKOFF_MS;
  kith_id_to_text(from, text);
  what = g_strdup_printf("%.8s refused this node, which started earlier; "
                         "this node makes no new link for %d s and leaves "
                         "the links to the other one",
                         text, INSTANCE_BACKOFF_MS / KITH_SECOND);
  warn(n, what, since);
  g_free(what);
}

void instance_on_frame(node_peer *p, uint64_t since) {
  char *what = g_strdup_printf("%.8s refused it, as it started earlier; "
                               "this node keeps the links",
                               p->id_text);

  warn(p->node, what, since);
  g_free(what);
}
