/* kith: the sentences control events show as in a group's log
 * (kith_group_notice, group.h). */
#include "group_int.h"

#include <string.h>

/* A member's name, with the start of its id when another member (or the
 * author of the event) has the same name: names are not identities. */
static char *label(const kith_group *g, const uint8_t id[32]) {
  const char *name = kith_group_name_of(g, id);
  int shared = !name[0];
  for (guint i = 0; !shared && i < g->st.members->len; i++) {
    const grp_member *m = &g_array_index(g->st.members, grp_member, i);
    shared = memcmp(m->m.id, id, 32) != 0 && strcmp(m->m.name, name) == 0;
  }
  if (!shared)
    return g_strdup(name);
  char text[KITH_ID_TEXT_LEN + 1];
  kith_id_to_text(id, text);
  return g_strdup_printf("%s#%.8s", name[0] ? name : "someone", text);
}

static const char *role_word(uint64_t role) {
  return role == KITH_ROLE_OWNER   ? "an owner"
         : role == KITH_ROLE_ADMIN ? "an admin"
                                   : "a member";
}

static char *until_text(uint64_t until) {
  if (until >= KITH_TS_MAX)
    return g_strdup("until unmuted");
  GDateTime *t = g_date_time_new_from_unix_utc((gint64)(until / 1000));
  char *s = t ? g_date_time_format(t, "until %Y-%m-%d %H:%M UTC")
              : g_strdup("for a while");
  if (t)
    g_date_time_unref(t);
  return s;
}

static char *settings_text(const char *who, const grp_inner *in) {
  if (in->key == GRP_SET_INVITES)
    return in->value
               ? g_strdup_printf("%s let only owners and admins invite", who)
               : g_strdup_printf("%s let every member invite", who);
  return in->value ? g_strdup_printf("%s put the group in announce mode "
                                     "(only owners and admins post)",
                                     who)
                   : g_strdup_printf("%s opened the group to every member's "
                                     "posts",
                                     who);
}

/* A need shows only when it reports a forger: its author asks for the key
 * of an epoch whose rekey was sealed to it (by another member). */
static char *report_text(const kith_group *g, const char *who,
                         const uint8_t author[32], const grp_inner *in) {
  for (uint32_t i = 0; i < in->n_epochs; i++) {
    const grp_ctl *k = grp_epoch_start(g, in->epochs[i], NULL);
    if (!k || k->kind != KITH_EV_REKEY || memcmp(k->author, author, 32) == 0 ||
        !grp_was_sent(g, in->epochs[i], NULL, author))
      continue;
    char *accused = label(g, k->author);
    char *s = g_strdup_printf("%s reported that the new keys from %s did "
                              "not open for them",
                              who, accused);
    g_free(accused);
    return s;
  }
  return NULL;
}

static char *sentence(const kith_group *g, uint32_t kind, const char *who,
                      const char *target, const grp_inner *in,
                      const uint8_t author[32]) {
  switch (kind) {
  case KITH_EV_CREATE:
    return g_strdup_printf("%s created the group", who);
  case KITH_EV_ADD:
    return g_strdup_printf("%s joined (admitted by %s)", target, who);
  case KITH_EV_REMOVE:
    return g_strdup_printf("%s was removed by %s", target, who);
  case KITH_EV_BAN:
    return g_strdup_printf("%s was banned by %s", target, who);
  case KITH_EV_UNBAN:
    return g_strdup_printf("%s lifted the ban on %s", who, target);
  case KITH_EV_LEAVE:
    return g_strdup_printf("%s left", who);
  case KITH_EV_ROLE:
    return g_strdup_printf("%s made %s %s", who, target, role_word(in->role));
  case KITH_EV_TOPIC:
    return in->text_len
               ? g_strdup_printf("%s set the topic to \"%s\"", who, in->text)
               : g_strdup_printf("%s cleared the topic", who);
  case KITH_EV_SETTINGS:
    return settings_text(who, in);
  case KITH_EV_MUTE: {
    if (!in->until)
      return g_strdup_printf("%s unmuted %s", who, target);
    char *until = until_text(in->until);
    char *s = g_strdup_printf("%s muted %s %s", who, target, until);
    g_free(until);
    return s;
  }
  case KITH_EV_REKEY: {
    const grp_ctl *bad = grp_ctl_by_id(g, in->ref);
    char *accused = bad ? label(g, bad->author) : g_strdup("another member");
    char *s = g_strdup_printf("nobody could give %s the keys from %s; the "
                              "group moved on to new ones",
                              who, accused);
    g_free(accused);
    return s;
  }
  case KITH_EV_NEED:
    return report_text(g, who, author, in);
  default:
    return NULL;
  }
}

char *kith_group_notice(kith_group *g, uint32_t kind, const uint8_t author[32],
                        uint64_t ts_ms, const uint8_t *inner, size_t len) {
  if (!g || !author || (!inner && len) || grp_is_message_like(kind))
    return NULL;
  kith_event ev = {.kind = kind, .ts_ms = ts_ms};
  memcpy(ev.author, author, 32);
  grp_inner in = {0};
  if (grp_parse_inner(g, &ev, inner ? inner : (const uint8_t *)"", len, &in) !=
      KITH_OK)
    return NULL;
  if (kind == KITH_EV_REKEY && !in.has_ref) {
    grp_inner_clear(&in);
    return NULL;
  }
  char *who = label(g, author), *target = label(g, in.member);
  char *s = sentence(g, kind, who, target, &in, author);
  g_free(who);
  g_free(target);
  grp_inner_clear(&in);
  return s;
}
