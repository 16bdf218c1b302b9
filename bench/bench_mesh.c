/* kith-bench mesh: N real `kith node` processes in one group, measured from
 * outside through their control sockets (docs/performance.md, "Real nodes").
 *
 * Each run is a child process. As root it first moves into a network
 * namespace of its own, where only its nodes talk (on loopback), so the
 * interface counters count exactly their traffic; otherwise the nodes run
 * on the host's loopback and bytes are not measured. The run makes N homes
 * (`kith init`), starts N nodes, creates a group on node 0 and joins the
 * others with one invite code (the CLI, as a user would), subscribes to
 * every node, lets the overlay settle, then posts M messages, one every I
 * ms, from rotating senders (post k from node k mod N) with the control
 * method `send`. A post's latency at a node is the time from writing its
 * `send` request to reading that node's `message` notification, both on
 * this process's monotonic clock. Measured over the posting phase, until
 * every node had every post plus TAIL_MS: CPU time of all nodes (every
 * thread, /proc/PID/task/TID/schedstat), bytes and packets sent on the
 * namespace's interfaces (/proc/self/net/dev), and the gossip engines'
 * counters (`gossip.stats`: GRAFTs, PRUNEs, ...). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glib.h>
#include <json-glib/json-glib.h>
#include <msgpack.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "core/codec.h"

#define NODES_MAX 64
#define POSTS_MAX 100000
#define RUNS_MAX 100
#define TEXT_MAX 60000
#define START_TIMEOUT_MS 15000 /* a node's control socket answers */
#define CALL_TIMEOUT_MS 30000  /* one control call */
#define READY_TIMEOUT_MS 60000 /* every node sees every member */
#define TAIL_MS 500            /* measured on after the last delivery */
#define STOP_TIMEOUT_MS 5000   /* SIGTERM -> exit, else SIGKILL */
#define READ_CHUNK 65536

typedef struct mopts {
  int nodes, posts, interval_ms, text_bytes, runs, settle_ms, drain_ms;
  int json, keep, trace;
  char *kith;
} mopts;

typedef struct conn {
  int fd;
  msgpack_unpacker up;
  uint32_t next_id;
} conn;

typedef struct counters {
  double cpu_s;
  long long bytes, packets; /* -1: not measured */
  long long grafts, prunes, ihaves, wants, payloads, duplicates, held;
} counters;

/* One run's figures; also what a run's process hands to its parent. */
typedef struct result {
  int ok, netns, nodes, posts, interval_ms, text_bytes;
  double delivered, p50_ms, p90_ms, p99_ms, max_ms, cpu_per_1000,
      bytes_per_post, packets_per_post, post_s, setup_s;
  counters d; /* over the measured phase */
  int send_errors, hard_stops;
  char why[160]; /* when !ok */
} result;

typedef struct run {
  const mopts *o;
  char *dir;
  int n;
  pid_t pid[NODES_MAX];
  conn c[NODES_MAX];
  char gid[64];
  int64_t *sent_us; /* per post: when its send request went out */
  uint8_t *got;     /* nodes x posts */
  int64_t *lat_us;
  size_t n_lat, want_lat, missing;
  int send_errors;
} run;

static int64_t now_us(void) {
  return g_get_monotonic_time();
}

static void fail(result *res, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void fail(result *res, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (res->why[0] == '\0')
    vsnprintf(res->why, sizeof res->why, fmt, ap);
  va_end(ap);
  res->ok = 0;
}

/* ---- the network namespace ---- */

static int lo_up(void) {
  struct ifreq ifr;
  int fd = socket(AF_INET, SOCK_DGRAM, 0), rc = -1;
  if (fd < 0)
    return -1;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags |= IFF_UP;
    rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
  }
  close(fd);
  return rc;
}

/* Bytes and packets sent on every interface of this namespace. */
static void net_sent(long long *bytes, long long *packets) {
  char *text = NULL;
  *bytes = *packets = 0;
  if (!g_file_get_contents("/proc/self/net/dev", &text, NULL, NULL))
    return;
  char **lines = g_strsplit(text, "\n", -1);
  for (char **l = lines; *l; l++) {
    const char *colon = strchr(*l, ':');
    unsigned long long f[10];
    if (colon && sscanf(colon + 1,
                        "%llu %llu %llu %llu %llu %llu %llu %llu "
                        "%llu %llu",
                        &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7],
                        &f[8], &f[9]) == 10) {
      *bytes += (long long)f[8];
      *packets += (long long)f[9];
    }
  }
  g_strfreev(lines);
  g_free(text);
}

/* CPU time of every thread of pid, in seconds. */
static double cpu_of(pid_t pid) {
  char path[64];
  double s = 0;
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  GDir *d = g_dir_open(path, 0, NULL);
  const char *tid;
  while (d && (tid = g_dir_read_name(d)) != NULL) {
    char *f = g_strdup_printf("%s/%s/schedstat", path, tid), *text = NULL;
    unsigned long long ns;
    if (g_file_get_contents(f, &text, NULL, NULL) &&
        sscanf(text, "%llu", &ns) == 1)
      s += (double)ns / 1e9;
    g_free(text);
    g_free(f);
  }
  if (d)
    g_dir_close(d);
  return s;
}

/* ---- the control socket: msgpack-RPC (docs/protocol.md 12) ---- */

static int conn_open(conn *c, const char *home) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  int64_t until = now_us() + START_TIMEOUT_MS * 1000ll;
  if ((size_t)snprintf(a.sun_path, sizeof a.sun_path, "%s/control.sock",
                       home) >= sizeof a.sun_path)
    return -1;
  c->next_id = 1;
  do {
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd >= 0 && connect(c->fd, (struct sockaddr *)&a, sizeof a) == 0) {
      msgpack_unpacker_init(&c->up, READ_CHUNK);
      return 0;
    }
    if (c->fd >= 0)
      close(c->fd);
    c->fd = -1;
    g_usleep(50000);
  } while (now_us() < until);
  return -1;
}

static void conn_close(conn *c) {
  if (c->fd < 0)
    return;
  close(c->fd);
  msgpack_unpacker_destroy(&c->up);
  c->fd = -1;
}

/* Sends [0, msgid, method, params]; params is a packed array (cleared). */
static int conn_send(conn *c, const char *method, kith_pack *params,
                     uint32_t *msgid) {
  kith_pack pk;
  uint8_t *buf;
  size_t len, off = 0;
  *msgid = c->next_id++;
  kith_pack_init(&pk);
  kith_pack_array(&pk, 4);
  kith_pack_uint(&pk, 0);
  kith_pack_uint(&pk, *msgid);
  kith_pack_cstr(&pk, method);
  if (msgpack_sbuffer_write(&pk.sb, params->sb.data, params->sb.size) != 0)
    pk.failed = 1;
  kith_pack_clear(params);
  if (kith_pack_take(&pk, &buf, &len) != KITH_OK)
    return -1;
  while (off < len) {
    ssize_t k = write(c->fd, buf + off, len - off);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0) {
      g_free(buf);
      return -1;
    }
    off += (size_t)k;
  }
  g_free(buf);
  return 0;
}

static int str_is(const msgpack_object *o, const char *s) {
  return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
         memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

static const msgpack_object *map_get(const msgpack_object *m, const char *k) {
  if (m->type != MSGPACK_OBJECT_MAP)
    return NULL;
  for (uint32_t i = 0; i < m->via.map.size; i++)
    if (str_is(&m->via.map.ptr[i].key, k))
      return &m->via.map.ptr[i].val;
  return NULL;
}

static long long map_int(const msgpack_object *m, const char *k) {
  const msgpack_object *v = map_get(m, k);
  return v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (long long)v->via.u64
                                                         : 0;
}

/* A `message` notification at node i: the post's receipt there. */
static void on_message(run *r, int i, const msgpack_object *params) {
  const msgpack_object *t;
  char buf[32];
  if (params->type != MSGPACK_OBJECT_ARRAY || params->via.array.size < 1 ||
      (t = map_get(&params->via.array.ptr[0], "text")) == NULL ||
      t->type != MSGPACK_OBJECT_STR)
    return;
  size_t n = MIN(t->via.str.size, sizeof buf - 1);
  memcpy(buf, t->via.str.ptr, n);
  buf[n] = '\0';
  char *end;
  if (strncmp(buf, "mesh ", 5) != 0)
    return;
  unsigned long k = strtoul(buf + 5, &end, 10);
  if (end == buf + 5 || k >= (unsigned long)r->o->posts ||
      r->got[(size_t)i * r->o->posts + k])
    return;
  r->got[(size_t)i * r->o->posts + k] = 1;
  if ((int)(k % (unsigned long)r->n) != i && r->sent_us[k] != 0) {
    r->lat_us[r->n_lat++] = now_us() - r->sent_us[k];
    if (r->o->trace && r->lat_us[r->n_lat - 1] > 30000)
      fprintf(stderr, "post %lu at node %d: %.1f ms\n", k, i,
              r->lat_us[r->n_lat - 1] / 1000.0);
  }
}

/* Reads what node i sent and handles every complete object. If want is
 * not 0 and its response arrives, it is moved to *res and 1 returned. */
static int conn_read(run *r, int i, uint32_t want, msgpack_unpacked *res) {
  conn *c = &r->c[i];
  int found = 0;
  if (!msgpack_unpacker_reserve_buffer(&c->up, READ_CHUNK))
    return -1;
  ssize_t k = read(c->fd, msgpack_unpacker_buffer(&c->up), READ_CHUNK);
  if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN))
    return -1;
  if (k > 0)
    msgpack_unpacker_buffer_consumed(&c->up, (size_t)k);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  while (msgpack_unpacker_next(&c->up, &u) == MSGPACK_UNPACK_SUCCESS) {
    const msgpack_object *o = &u.data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 3)
      continue;
    const msgpack_object *f = o->via.array.ptr;
    if (f[0].via.u64 == 2 && str_is(&f[1], "message")) {
      on_message(r, i, &f[2]);
    } else if (f[0].via.u64 == 1 && o->via.array.size == 4) {
      if (want != 0 && f[1].via.u64 == want && res != NULL) {
        msgpack_unpacked_destroy(res);
        *res = u; /* keeps the zone */
        msgpack_unpacked_init(&u);
        found = 1;
      } else if (f[2].type != MSGPACK_OBJECT_NIL) {
        r->send_errors++;
      }
    }
  }
  msgpack_unpacked_destroy(&u);
  return found;
}

/* One call to node i; *res gets the response [1, id, error, result]. */
static int call(run *r, int i, const char *method, kith_pack *params,
                msgpack_unpacked *res) {
  uint32_t id;
  int64_t until = now_us() + CALL_TIMEOUT_MS * 1000ll;
  if (conn_send(&r->c[i], method, params, &id) != 0)
    return -1;
  while (now_us() < until) {
    struct pollfd p = {.fd = r->c[i].fd, .events = POLLIN};
    if (poll(&p, 1, 100) <= 0)
      continue;
    int got = conn_read(r, i, id, res);
    if (got != 0)
      return got > 0 && res->data.via.array.ptr[2].type == MSGPACK_OBJECT_NIL
                 ? 0
                 : -1;
  }
  return -1;
}

static kith_pack *params_of(kith_pack *p, const char *s1, const char *s2) {
  kith_pack_init(p);
  kith_pack_array(p, (s1 != NULL) + (s2 != NULL));
  if (s1 != NULL)
    kith_pack_cstr(p, s1);
  if (s2 != NULL)
    kith_pack_cstr(p, s2);
  return p;
}

/* ---- the nodes ---- */

static char *home_of(run *r, int i) {
  return g_strdup_printf("%s/n%02d", r->dir, i);
}

/* Runs `kith --home HOME args...`; its stdout in *out if out is not NULL. */
static int cli(run *r, int i, char **out, const char *a1, const char *a2,
               const char *a3, const char *a4, const char *a5) {
  char *home = home_of(r, i), *err = NULL;
  const char *argv[] = {r->o->kith, "--home", home, a1, a2, a3, a4, a5, NULL};
  int status = -1;
  GError *e = NULL;
  gboolean ok = g_spawn_sync(NULL, (char **)argv, NULL,
                             out ? G_SPAWN_DEFAULT : G_SPAWN_STDOUT_TO_DEV_NULL,
                             NULL, NULL, out, &err, &status, &e) &&
                g_spawn_check_wait_status(status, NULL);
  if (!ok && r->o->keep)
    fprintf(stderr, "kith-bench mesh: %s %s: %s", a1, a2 ? a2 : "",
            e     ? e->message
            : err ? err
                  : "");
  g_clear_error(&e);
  g_free(err);
  g_free(home);
  return ok ? 0 : -1;
}

static pid_t start_node(run *r, int i) {
  char *home = home_of(r, i);
  char *log = g_strdup_printf("%s/n%02d.log", r->dir, i);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int nul = open("/dev/null", O_RDONLY);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (fd < 0 || nul < 0 || dup2(nul, 0) < 0 || dup2(fd, 1) < 0 ||
        dup2(fd, 2) < 0)
      _exit(127);
    execl(r->o->kith, r->o->kith, "--home", home, "node", "--port", "0",
          "--bind", "127.0.0.1", (char *)NULL);
    _exit(127);
  }
  g_free(log);
  g_free(home);
  return pid;
}

/* SIGTERM, then SIGKILL after STOP_TIMEOUT_MS; returns 1 if it needed
 * SIGKILL. */
static int stop_node(pid_t pid) {
  int status;
  kill(pid, SIGTERM);
  for (int64_t until = now_us() + STOP_TIMEOUT_MS * 1000ll; now_us() < until;
       g_usleep(20000))
    if (waitpid(pid, &status, WNOHANG) == pid)
      return 0;
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return 1;
}

/* Homes, nodes, the group, the joins and the subscriptions. */
static void setup(run *r, result *res) {
  char *out = NULL, *code = NULL;
  for (int i = 0; i < r->n && res->ok; i++) {
    char name[16], *home = home_of(r, i);
    snprintf(name, sizeof name, "m%02d", i);
    if (cli(r, i, NULL, "init", "--name", name, NULL, NULL) != 0)
      fail(res, "kith init failed");
    else if ((r->pid[i] = start_node(r, i)) < 0 ||
             conn_open(&r->c[i], home) != 0)
      fail(res, "node %d did not start", i);
    g_free(home);
  }
  if (res->ok &&
      (cli(r, 0, NULL, "group", "create", "mesh", NULL, NULL) != 0 ||
       cli(r, 0, &out, "--json", "invite", "mesh", "--uses", "64") != 0))
    fail(res, "could not create the group or an invite");
  JsonParser *jp = json_parser_new();
  if (res->ok && json_parser_load_from_data(jp, out, -1, NULL) &&
      JSON_NODE_HOLDS_OBJECT(json_parser_get_root(jp)))
    code = g_strdup(json_object_get_string_member_with_default(
        json_node_get_object(json_parser_get_root(jp)), "code", ""));
  g_object_unref(jp);
  g_free(out);
  for (int i = 1; i < r->n && res->ok; i++)
    if (cli(r, i, NULL, "join", code, "--timeout", "60", NULL) != 0)
      fail(res, "node %d could not join", i);
  g_free(code);
}

/* Subscribes to every node and waits until each sees all n members. */
static void subscribe_all(run *r, result *res) {
  msgpack_unpacked u;
  kith_pack p;
  msgpack_unpacked_init(&u);
  if (res->ok && call(r, 0, "group.info", params_of(&p, "mesh", NULL), &u) == 0)
    snprintf(r->gid, sizeof r->gid, "%.*s",
             (int)map_get(&u.data.via.array.ptr[3], "group_id")->via.str.size,
             map_get(&u.data.via.array.ptr[3], "group_id")->via.str.ptr);
  for (int i = 0; i < r->n && res->ok; i++)
    if (call(r, i, "subscribe", params_of(&p, r->gid, NULL), &u) != 0)
      fail(res, "node %d: subscribe failed", i);
  int64_t until = now_us() + READY_TIMEOUT_MS * 1000ll;
  for (int i = 0; i < r->n && res->ok;) {
    if (call(r, i, "group.info", params_of(&p, r->gid, NULL), &u) == 0 &&
        map_int(&u.data.via.array.ptr[3], "members") == r->n &&
        map_int(&u.data.via.array.ptr[3], "links") > 0)
      i++;
    else if (now_us() > until)
      fail(res, "node %d does not see every member", i);
    else
      g_usleep(100000);
  }
  msgpack_unpacked_destroy(&u);
}

/* ---- measuring ---- */

static void snapshot(run *r, counters *c) {
  msgpack_unpacked u;
  kith_pack p;
  memset(c, 0, sizeof *c);
  for (int i = 0; i < r->n; i++)
    c->cpu_s += cpu_of(r->pid[i]);
  net_sent(&c->bytes, &c->packets);
  msgpack_unpacked_init(&u);
  for (int i = 0; i < r->n; i++) {
    if (call(r, i, "gossip.stats", params_of(&p, NULL, NULL), &u) != 0)
      continue;
    const msgpack_object *a = &u.data.via.array.ptr[3];
    for (uint32_t k = 0;
         a->type == MSGPACK_OBJECT_ARRAY && k < a->via.array.size; k++) {
      const msgpack_object *m = &a->via.array.ptr[k];
      c->grafts += map_int(m, "grafts_sent");
      c->prunes += map_int(m, "prunes_sent");
      c->ihaves += map_int(m, "ihave_sent");
      c->wants += map_int(m, "wants_sent");
      c->payloads += map_int(m, "payloads");
      c->duplicates += map_int(m, "duplicates");
      c->held += map_int(m, "held");
    }
  }
  msgpack_unpacked_destroy(&u);
}

static void diff(const counters *a, const counters *b, counters *d) {
  d->cpu_s = b->cpu_s - a->cpu_s;
  d->bytes = b->bytes - a->bytes;
  d->packets = b->packets - a->packets;
  d->grafts = b->grafts - a->grafts;
  d->prunes = b->prunes - a->prunes;
  d->ihaves = b->ihaves - a->ihaves;
  d->wants = b->wants - a->wants;
  d->payloads = b->payloads - a->payloads;
  d->duplicates = b->duplicates - a->duplicates;
  d->held = b->held;
}

/* Reads every readable node until deadline (monotonic us). */
static void pump_until(run *r, int64_t deadline) {
  struct pollfd p[NODES_MAX];
  for (;;) {
    int64_t left = deadline - now_us();
    if (left <= 0)
      return;
    for (int i = 0; i < r->n; i++)
      p[i] = (struct pollfd){.fd = r->c[i].fd, .events = POLLIN};
    if (poll(p, (nfds_t)r->n, (int)((left + 999) / 1000)) <= 0)
      continue;
    for (int i = 0; i < r->n; i++)
      if (p[i].revents & (POLLIN | POLLHUP | POLLERR))
        (void)conn_read(r, i, 0, NULL);
  }
}

static void post(run *r, int k) {
  kith_pack p;
  char *text = g_malloc((size_t)r->o->text_bytes + 1);
  int len = snprintf(text, (size_t)r->o->text_bytes + 1, "mesh %d ", k);
  uint32_t id;
  if (len < r->o->text_bytes)
    memset(text + len, 'x', (size_t)(r->o->text_bytes - len));
  text[r->o->text_bytes] = '\0';
  r->sent_us[k] = now_us();
  if (conn_send(&r->c[k % r->n], "send", params_of(&p, r->gid, text), &id) != 0)
    r->send_errors++;
  g_free(text);
}

static int all_in(run *r) {
  return r->n_lat >= r->want_lat;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static double pct_ms(const int64_t *v, size_t n, unsigned p) {
  if (n == 0)
    return 0;
  size_t k = (n * p + 99) / 100;
  return (double)v[k > 0 ? k - 1 : 0] / 1000.0;
}

static void measure(run *r, result *res) {
  counters a, b;
  const mopts *o = r->o;
  snapshot(r, &a);
  int64_t t0 = now_us();
  for (int k = 0; k < o->posts; k++) {
    pump_until(r, t0 + (int64_t)k * o->interval_ms * 1000);
    post(r, k);
  }
  int64_t last = now_us(), until = last + (int64_t)o->drain_ms * 1000;
  while (!all_in(r) && now_us() < until)
    pump_until(r, MIN(until, now_us() + 10000));
  pump_until(r, now_us() + TAIL_MS * 1000);
  snapshot(r, &b);
  diff(&a, &b, &res->d);
  res->post_s = (double)(last - t0) / 1e6;
  qsort(r->lat_us, r->n_lat, sizeof *r->lat_us, cmp_i64);
  res->delivered = (double)r->n_lat / (double)r->want_lat;
  res->p50_ms = pct_ms(r->lat_us, r->n_lat, 50);
  res->p90_ms = pct_ms(r->lat_us, r->n_lat, 90);
  res->p99_ms = pct_ms(r->lat_us, r->n_lat, 99);
  res->max_ms = r->n_lat ? (double)r->lat_us[r->n_lat - 1] / 1000.0 : 0;
  res->cpu_per_1000 = res->d.cpu_s * 1000.0 / o->posts;
  res->bytes_per_post = res->netns ? (double)res->d.bytes / o->posts : -1;
  res->packets_per_post = res->netns ? (double)res->d.packets / o->posts : -1;
  res->send_errors = r->send_errors;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *f) {
  (void)st;
  (void)flag;
  (void)f;
  return remove(path) == 0 ? 0 : 0; /* best effort: go on */
}

static void run_one(const mopts *o, result *res) {
  run r = {.o = o, .n = o->nodes};
  memset(res, 0, sizeof *res);
  res->ok = 1;
  res->nodes = o->nodes;
  res->posts = o->posts;
  res->interval_ms = o->interval_ms;
  res->text_bytes = o->text_bytes;
  res->netns = geteuid() == 0 && unshare(CLONE_NEWNET) == 0 && lo_up() == 0;
  r.dir = g_strdup("/tmp/kith-mesh.XXXXXX");
  if (g_mkdtemp_full(r.dir, 0700) == NULL) {
    fail(res, "cannot make a work directory");
    return;
  }
  for (int i = 0; i < NODES_MAX; i++)
    r.c[i].fd = -1;
  r.sent_us = g_new0(int64_t, o->posts);
  r.got = g_new0(uint8_t, (size_t)o->nodes * o->posts);
  r.want_lat = (size_t)(o->nodes - 1) * o->posts;
  r.lat_us = g_new0(int64_t, r.want_lat + 1);
  int64_t t0 = now_us();
  setup(&r, res);
  subscribe_all(&r, res);
  res->setup_s = (double)(now_us() - t0) / 1e6;
  if (res->ok) {
    pump_until(&r, now_us() + (int64_t)o->settle_ms * 1000);
    measure(&r, res);
  }
  for (int i = 0; i < r.n; i++) {
    conn_close(&r.c[i]);
    if (r.pid[i] > 0)
      res->hard_stops += stop_node(r.pid[i]);
  }
  if (o->keep || !res->ok)
    fprintf(stderr, "kith-bench mesh: work directory kept: %s\n", r.dir);
  else
    nftw(r.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  g_free(r.sent_us);
  g_free(r.got);
  g_free(r.lat_us);
  g_free(r.dir);
}

/* Each run in a process of its own (its own namespace); the figures come
 * back through a pipe. */
static int run_child(const mopts *o, result *res) {
  int fd[2];
  if (pipe(fd) != 0)
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    run_one(o, res);
    ssize_t w = write(fd[1], res, sizeof *res);
    _exit(w == (ssize_t)sizeof *res ? 0 : 1);
  }
  close(fd[1]);
  ssize_t got = pid > 0 ? read(fd[0], res, sizeof *res) : -1;
  close(fd[0]);
  if (pid > 0)
    waitpid(pid, NULL, 0);
  return got == (ssize_t)sizeof *res ? 0 : -1;
}

/* ---- options and report ---- */

static int parse_opts(int argc, char **argv, mopts *o) {
  static char self_kith[4096];
  *o = (mopts){.nodes = 10,
               .posts = 1000,
               .interval_ms = 5,
               .text_bytes = 100,
               .runs = 1,
               .settle_ms = 12000,
               .drain_ms = 30000};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int *t = NULL, lo = 1, hi = 0;
    if (strcmp(a, "--json") == 0) {
      o->json = 1;
      continue;
    }
    if (strcmp(a, "--keep") == 0) {
      o->keep = 1;
      continue;
    }
    if (strcmp(a, "--trace") == 0) { /* receipts over 30 ms, on stderr */
      o->trace = 1;
      continue;
    }
    if (strcmp(a, "--kith") == 0 && i + 1 < argc) {
      o->kith = argv[++i];
      continue;
    }
    if (strcmp(a, "--nodes") == 0)
      t = &o->nodes, lo = 2, hi = NODES_MAX;
    else if (strcmp(a, "--posts") == 0)
      t = &o->posts, hi = POSTS_MAX;
    else if (strcmp(a, "--interval-ms") == 0)
      t = &o->interval_ms, hi = 60000;
    else if (strcmp(a, "--text-bytes") == 0)
      t = &o->text_bytes, lo = 16, hi = TEXT_MAX;
    else if (strcmp(a, "--runs") == 0)
      t = &o->runs, hi = RUNS_MAX;
    else if (strcmp(a, "--settle-ms") == 0)
      t = &o->settle_ms, lo = 0, hi = 600000;
    else if (strcmp(a, "--drain-ms") == 0)
      t = &o->drain_ms, lo = 0, hi = 600000;
    char *end = NULL;
    long v = 0;
    if (t == NULL || i + 1 >= argc ||
        (v = strtol(argv[++i], &end, 10), end == argv[i] || *end) || v < lo ||
        v > hi) {
      fprintf(stderr, "usage: kith-bench mesh [--nodes N] [--posts M] "
                      "[--interval-ms I] [--text-bytes B] [--runs R]\n"
                      "                       [--settle-ms S] [--drain-ms D] "
                      "[--kith PATH] [--keep] [--json]\n");
      return 2;
    }
    *t = (int)v;
  }
  if (o->kith == NULL) { /* the kith next to this program */
    ssize_t n = readlink("/proc/self/exe", self_kith, sizeof self_kith - 1);
    char *slash = n > 0 ? (self_kith[n] = '\0', strrchr(self_kith, '/')) : NULL;
    if (slash == NULL || (size_t)(slash - self_kith) + 6 > sizeof self_kith) {
      fprintf(stderr, "kith-bench mesh: say where kith is with --kith\n");
      return 2;
    }
    strcpy(slash + 1, "kith");
    o->kith = self_kith;
  }
  if (access(o->kith, X_OK) != 0) {
    fprintf(stderr, "kith-bench mesh: cannot run %s\n", o->kith);
    return 2;
  }
  return -1;
}

#define ADD_DBL(b, k, v)                                                       \
  do {                                                                         \
    json_builder_set_member_name(b, k);                                        \
    json_builder_add_double_value(b, v);                                       \
  } while (0)
#define ADD_INT(b, k, v)                                                       \
  do {                                                                         \
    json_builder_set_member_name(b, k);                                        \
    json_builder_add_int_value(b, (gint64)(v));                                \
  } while (0)

static void add_run(JsonBuilder *b, const result *r) {
  json_builder_begin_object(b);
  ADD_INT(b, "ok", r->ok);
  if (!r->ok) {
    json_builder_set_member_name(b, "error");
    json_builder_add_string_value(b, r->why);
  }
  ADD_DBL(b, "delivered_ratio", r->delivered);
  ADD_DBL(b, "latency_ms_p50", r->p50_ms);
  ADD_DBL(b, "latency_ms_p90", r->p90_ms);
  ADD_DBL(b, "latency_ms_p99", r->p99_ms);
  ADD_DBL(b, "latency_ms_max", r->max_ms);
  ADD_DBL(b, "cpu_s_per_1000_posts", r->cpu_per_1000);
  ADD_DBL(b, "bytes_per_post", r->bytes_per_post);
  ADD_DBL(b, "packets_per_post", r->packets_per_post);
  ADD_INT(b, "grafts", r->d.grafts);
  ADD_INT(b, "prunes", r->d.prunes);
  ADD_INT(b, "ihaves", r->d.ihaves);
  ADD_INT(b, "wants", r->d.wants);
  ADD_INT(b, "payload_frames", r->d.payloads);
  ADD_INT(b, "duplicate_payloads", r->d.duplicates);
  ADD_INT(b, "held_at_end", r->d.held);
  ADD_INT(b, "send_errors", r->send_errors);
  ADD_INT(b, "nodes_killed_after_sigterm", r->hard_stops);
  ADD_DBL(b, "posting_s", r->post_s);
  ADD_DBL(b, "setup_s", r->setup_s);
  json_builder_end_object(b);
}

static void print_json(const mopts *o, const result *rs, int n,
                       const char *cond) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  ADD_INT(b, "nodes", o->nodes);
  ADD_INT(b, "posts", o->posts);
  ADD_INT(b, "interval_ms", o->interval_ms);
  ADD_INT(b, "text_bytes", o->text_bytes);
  ADD_INT(b, "netns", rs[0].netns);
  json_builder_set_member_name(b, "conditions");
  json_builder_add_string_value(b, cond);
  json_builder_set_member_name(b, "runs");
  json_builder_begin_array(b);
  for (int i = 0; i < n; i++)
    add_run(b, &rs[i]);
  json_builder_end_array(b);
  json_builder_end_object(b);
  JsonGenerator *gen = json_generator_new();
  JsonNode *root = json_builder_get_root(b);
  json_generator_set_root(gen, root);
  gchar *s = json_generator_to_data(gen, NULL);
  printf("%s\n", s);
  g_free(s);
  json_node_unref(root);
  g_object_unref(gen);
  g_object_unref(b);
}

static void print_human(const mopts *o, const result *rs, int n,
                        const char *cond) {
  printf("kith-bench mesh: %d real nodes in one group, %d posts of %d bytes, "
         "one every %d ms from rotating senders\n",
         o->nodes, o->posts, o->text_bytes, o->interval_ms);
  printf("  %s\n", rs[0].netns ? "each run in its own network namespace "
                                 "(loopback only)"
                               : "on the host's loopback (not root): bytes "
                                 "not measured");
  printf("  %s\n", cond);
  printf("  run delivered  p50 ms  p99 ms  max ms  cpu s/1000  bytes/post  "
         "pkts/post  grafts  prunes  wants  dups  ihaves/post\n");
  for (int i = 0; i < n; i++) {
    const result *r = &rs[i];
    if (!r->ok) {
      printf("  %3d failed: %s\n", i + 1, r->why);
      continue;
    }
    printf("  %3d %9.4f %7.1f %7.1f %7.1f %11.2f %11.0f %10.1f %7lld %7lld "
           "%6lld %5lld %12.1f%s\n",
           i + 1, r->delivered, r->p50_ms, r->p99_ms, r->max_ms,
           r->cpu_per_1000, r->bytes_per_post, r->packets_per_post, r->d.grafts,
           r->d.prunes, r->d.wants, r->d.duplicates,
           o->posts ? (double)r->d.ihaves / o->posts : 0.0,
           r->hard_stops ? "  (a node needed SIGKILL)" : "");
  }
}

int bench_mesh(int argc, char **argv) {
  mopts o;
  int rc = parse_opts(argc, argv, &o);
  if (rc >= 0)
    return rc;
  result *rs = g_new0(result, o.runs);
  int bad = 0;
  char *cond = bench_conditions();
  for (int i = 0; i < o.runs; i++) {
    if (run_child(&o, &rs[i]) != 0)
      fail(&rs[i], "the run's process failed");
    bad += !rs[i].ok || rs[i].delivered < 1.0;
    if (!o.json)
      fprintf(stderr, "kith-bench mesh: run %d of %d done\n", i + 1, o.runs);
  }
  if (o.json)
    print_json(&o, rs, o.runs, cond);
  else
    print_human(&o, rs, o.runs, cond);
  g_free(cond);
  g_free(rs);
  return bad ? 1 : 0;
}
