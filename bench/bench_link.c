/* kith-bench link: bulk bytes through one kith session over two libnice
 * agents on loopback, against raw libnice pseudo-TCP in the same run.
 *
 * raw:     two NiceAgents in reliable mode on 127.0.0.1; the sender calls
 *          nice_agent_send with 64 KiB chunks whenever pseudo-TCP has room
 *          and the receiver counts bytes. No kith code at all.
 * session: two kith_ice links (net/ice.c) carrying two kith_sessions
 *          (net/session.c) through kith_crypt (net/crypt.c: bulk records
 *          sealed and opened on its worker thread), with the node's send
 *          path: frames of --frame bytes sealed into the link's queue while
 *          it holds less than the node's history window, and decrypted
 *          back into frames. --no-worker seals and opens every record on
 *          the main thread (the node before the worker) for comparison.
 * Both ends run in this one thread (as a node does), so the figures count
 * the work of both sides. The timing starts when the first byte is handed
 * over and ends when the last byte (frame) has arrived. Rounds alternate
 * raw and session; medians are reported. Each transfer's CPU time is
 * reported too, per byte moved: of the thread that runs end a (both ends,
 * with one thread) and of the whole process (the crypto worker, and b's
 * thread with two): unlike the rates, it hardly moves when other work
 * shares the cores. For profiling one side alone,
 * KITH_BENCH_LINK_ONLY=raw or =session skips the other (its figure is then
 * meaningless). */
#include <glib.h>
#include <json-glib/json-glib.h>
#include <nice/agent.h>
#include <nice/nice-version.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench.h"
#include "net/crypt.h"
#include "net/ice.h"
#include "net/outq.h"
#include "net/session.h"

#define MB_DEFAULT 128
#define MB_MAX 4096
#define FRAME_DEFAULT (16 * 1024)
#define ROUNDS_DEFAULT 3
#define ROUNDS_MAX 15
#define RAW_CHUNK (64 * 1024)
#define QUEUE_WINDOW (256 * 1024) /* the node's PUSH_WINDOW */
#define SETUP_TIMEOUT_S 10.0
#define TARGET_RATIO 0.8

typedef struct opts {
  long mb;
  long frame;
  long rounds;
  long threads;
  int json;
  int no_worker;
} opts;

/* ---- two ends, one or two threads ---- */

/* Each end has its own GMainContext. With two threads, b's context runs
 * on its own thread during the transfer (two nodes do not share a core);
 * with one, both ends share one context and one thread. */
typedef struct ends {
  GMainContext *ctx_a, *ctx_b;
  size_t total;
  gsize received; /* atomic: bytes that arrived at b (b's thread) */
  double t_done;  /* when the last byte arrived (b's thread) */
  gint done;      /* atomic */
} ends;

/* What one transfer took: seconds, and CPU seconds of a's thread and of
 * the process. */
typedef struct xfer {
  double dt, cpu_a, cpu_all;
} xfer;

static double cpu_seconds(int who) {
  struct rusage u;
  getrusage(who, &u);
  return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static void ends_init(ends *e, int threads, size_t total) {
  *e = (ends){.total = total};
  e->ctx_a = g_main_context_new();
  e->ctx_b = threads == 2 ? g_main_context_new() : g_main_context_ref(e->ctx_a);
}

static void ends_clear(ends *e) {
  for (int i = 0; i < 200; i++) { /* let libnice finish closing */
    g_main_context_iteration(e->ctx_a, FALSE);
    g_main_context_iteration(e->ctx_b, FALSE);
  }
  g_main_context_unref(e->ctx_a);
  g_main_context_unref(e->ctx_b);
}

/* b's side counts bytes; the last one ends the run. */
static void ends_arrived(ends *e, size_t n) {
  gsize now = (gsize)g_atomic_pointer_add(&e->received, n) + n;
  if (now >= e->total && !g_atomic_int_get(&e->done)) {
    e->t_done = bench_now();
    g_atomic_int_set(&e->done, 1);
    g_main_context_wakeup(e->ctx_a);
  }
}

/* Iterates both contexts until *a and *b (set-up, on this thread). */
static gboolean ends_wait(ends *e, const gboolean *a, const gboolean *b) {
  double end = bench_now() + SETUP_TIMEOUT_S;
  while (!(*a && *b)) {
    if (bench_now() > end)
      return FALSE;
    g_main_context_iteration(e->ctx_a, FALSE);
    if (e->ctx_b != e->ctx_a)
      g_main_context_iteration(e->ctx_b, FALSE);
  }
  return TRUE;
}

static gpointer run_b(gpointer data) {
  ends *e = data;
  g_main_context_push_thread_default(e->ctx_b);
  while (!g_atomic_int_get(&e->done))
    g_main_context_iteration(e->ctx_b, TRUE);
  g_main_context_pop_thread_default(e->ctx_b);
  return NULL;
}

/* Runs the transfer that start() begins; *failed aborts it. Sets x->dt
 * to the seconds from start() to the last byte (< 0 on failure), and the
 * CPU seconds meanwhile. */
static void ends_transfer(ends *e, void (*start)(void *), void *ud,
                          const gboolean *failed, xfer *x) {
  GThread *tb = NULL;
  double a0 = cpu_seconds(RUSAGE_THREAD), all0 = cpu_seconds(RUSAGE_SELF);
  if (e->ctx_b != e->ctx_a)
    tb = g_thread_new("bench-b", run_b, e);
  double t0 = bench_now();
  start(ud);
  while (!g_atomic_int_get(&e->done) && !*failed)
    g_main_context_iteration(e->ctx_a, TRUE);
  if (*failed) {
    g_atomic_int_set(&e->done, 1);
    g_main_context_wakeup(e->ctx_b);
  }
  if (tb)
    g_thread_join(tb);
  x->cpu_a = cpu_seconds(RUSAGE_THREAD) - a0;
  x->cpu_all = cpu_seconds(RUSAGE_SELF) - all0;
  x->dt = *failed ? -1 : e->t_done - t0;
}

/* ---- raw pseudo-TCP ---- */

typedef struct raw_end {
  NiceAgent *agent;
  guint stream;
  gboolean gathered, ready;
} raw_end;

typedef struct raw_run {
  ends *e;
  raw_end a, b; /* a sends, b receives */
  size_t sent;
  uint8_t *chunk;
  gboolean failed;
} raw_run;

static void raw_gathered(NiceAgent *agent, guint stream, gpointer data) {
  ((raw_end *)data)->gathered = TRUE;
}

static void raw_state(NiceAgent *agent, guint stream, guint comp, guint state,
                      gpointer data) {
  if (state == NICE_COMPONENT_STATE_READY)
    ((raw_end *)data)->ready = TRUE;
}

static void raw_push(void *data) {
  raw_run *r = data;
  while (r->sent < r->e->total) {
    size_t n = MIN(RAW_CHUNK, r->e->total - r->sent);
    gint k = nice_agent_send(r->a.agent, r->a.stream, 1, (guint)n,
                             (const gchar *)r->chunk);
    if (k <= 0)
      return; /* reliable-transport-writable resumes */
    r->sent += (size_t)k;
  }
}

static void raw_writable(NiceAgent *agent, guint stream, guint comp,
                         gpointer data) {
  raw_push(data);
}

static void raw_recv(NiceAgent *agent, guint stream, guint comp, guint len,
                     gchar *buf, gpointer data) {
  raw_run *r = data;
  if (agent == r->b.agent)
    ends_arrived(r->e, len);
}

static void raw_end_init(raw_end *e, GMainContext *ctx, gboolean controlling,
                         raw_run *r) {
  NiceAddress addr;
  e->agent = nice_agent_new_full(ctx, NICE_COMPATIBILITY_RFC5245,
                                 NICE_AGENT_OPTION_RELIABLE);
  g_object_set(e->agent, "upnp", FALSE, "ice-tcp", FALSE, "controlling-mode",
               controlling, NULL);
  nice_address_init(&addr);
  nice_address_set_from_string(&addr, "127.0.0.1");
  nice_agent_add_local_address(e->agent, &addr);
  e->stream = nice_agent_add_stream(e->agent, 1);
  g_signal_connect(e->agent, "candidate-gathering-done",
                   G_CALLBACK(raw_gathered), e);
  g_signal_connect(e->agent, "component-state-changed", G_CALLBACK(raw_state),
                   e);
  g_signal_connect(e->agent, "reliable-transport-writable",
                   G_CALLBACK(raw_writable), r);
  /* Both ends need a receive callback: without one libnice does not read
   * the socket at all (no connectivity checks either). */
  nice_agent_attach_recv(e->agent, e->stream, 1, ctx, raw_recv, r);
  nice_agent_gather_candidates(e->agent, e->stream);
}

static void raw_tell(raw_end *from, raw_end *to) {
  gchar *ufrag = NULL, *pwd = NULL;
  nice_agent_get_local_credentials(from->agent, from->stream, &ufrag, &pwd);
  nice_agent_set_remote_credentials(to->agent, to->stream, ufrag, pwd);
  GSList *c = nice_agent_get_local_candidates(from->agent, from->stream, 1);
  nice_agent_set_remote_candidates(to->agent, to->stream, 1, c);
  g_slist_free_full(c, (GDestroyNotify)nice_candidate_free);
  g_free(ufrag);
  g_free(pwd);
}

/* Moves the bytes (x->dt < 0 on failure). */
static void run_raw(int threads, size_t total, xfer *x) {
  ends e;
  ends_init(&e, threads, total);
  raw_run r = {.e = &e};
  r.chunk = g_malloc(RAW_CHUNK);
  randombytes_buf(r.chunk, RAW_CHUNK);
  raw_end_init(&r.a, e.ctx_a, TRUE, &r);
  raw_end_init(&r.b, e.ctx_b, FALSE, &r);
  x->dt = -1;
  if (ends_wait(&e, &r.a.gathered, &r.b.gathered)) {
    raw_tell(&r.a, &r.b);
    raw_tell(&r.b, &r.a);
    if (ends_wait(&e, &r.a.ready, &r.b.ready))
      ends_transfer(&e, raw_push, &r, &r.failed, x);
  }
  g_object_unref(r.a.agent);
  g_object_unref(r.b.agent);
  ends_clear(&e);
  g_free(r.chunk);
}

/* ---- kith session over kith_ice ---- */

typedef struct sess_end {
  kith_ice *ice;
  kith_session *sess;
  kith_crypt *crypt; /* NULL with --no-worker */
  kith_outq out;     /* sealed records libnice has not taken yet */
  gboolean gathered, established;
  struct sess_run *run;
} sess_end;

typedef struct sess_run {
  ends *e;
  sess_end a, b; /* a sends, b receives */
  kith_ident ia, ib;
  size_t sent, frame;
  uint8_t *payload;
  gboolean failed;
} sess_run;

static void sess_arrived(sess_end *e, GPtrArray *frames) {
  size_t n = 0;
  for (guint i = 0; i < frames->len; i++)
    n += g_bytes_get_size(frames->pdata[i]);
  if (n > 0 && e == &e->run->b)
    ends_arrived(e->run->e, n);
}

static void sess_flush(sess_end *e) {
  const uint8_t *data;
  size_t n;
  while ((n = kith_outq_piece(&e->out, 0, &data)) > 0) {
    ssize_t k = kith_ice_send(e->ice, data, n);
    if (k < 0) {
      e->run->failed = TRUE;
      return;
    }
    if (k == 0)
      return;
    kith_outq_consume(&e->out, (size_t)k);
  }
}

static size_t sess_unsent(const sess_end *e) {
  return kith_outq_len(&e->out) + (e->crypt ? kith_crypt_unsent(e->crypt) : 0);
}

/* The node's pump: seal frames while the queue is under the window. */
static void sess_pump(void *data) {
  sess_run *r = data;
  sess_end *a = &r->a;
  while (r->sent < r->e->total && sess_unsent(a) < QUEUE_WINDOW) {
    size_t n = MIN(r->frame, r->e->total - r->sent);
    kith_err err = a->crypt ? kith_crypt_seal(a->crypt, r->payload, n,
                                              kith_outq_tail(&a->out))
                            : kith_session_seal(a->sess, r->payload, n,
                                                kith_outq_tail(&a->out));
    if (err != KITH_OK) {
      r->failed = TRUE;
      return;
    }
    r->sent += n;
    sess_flush(a);
  }
}

static void sess_on_gathered(kith_ice *ice, void *ud) {
  ((sess_end *)ud)->gathered = TRUE;
}

static void sess_on_state(kith_ice *ice, int ready, void *ud) {
  sess_end *e = ud;
  if (!ready ||
      kith_session_start(e->sess, kith_outq_tail(&e->out)) != KITH_OK) {
    e->run->failed = TRUE;
    return;
  }
  sess_flush(e);
}

static void sess_on_recv(kith_ice *ice, const uint8_t *buf, size_t len,
                         void *ud) {
  sess_end *e = ud;
  GPtrArray *frames =
      g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
  if ((e->crypt ? kith_crypt_recv(e->crypt, buf, len, kith_outq_tail(&e->out),
                                  frames)
                : kith_session_recv(e->sess, buf, len, kith_outq_tail(&e->out),
                                    frames)) != KITH_OK)
    e->run->failed = TRUE;
  e->established = kith_session_is_established(e->sess);
  sess_flush(e);
  sess_arrived(e, frames);
  g_ptr_array_unref(frames);
}

static void sess_on_crypt_out(void *ud, GByteArray *records) {
  sess_end *e = ud;
  kith_outq_push(&e->out, records);
  sess_flush(e);
  if (e == &e->run->a)
    sess_pump(e->run);
}

static void sess_on_crypt_frames(void *ud, GPtrArray *frames,
                                 const kith_crypt_mark *marks, kith_err err) {
  sess_end *e = ud;
  if (err != KITH_OK)
    e->run->failed = TRUE;
  sess_arrived(e, frames);
}

static const kith_crypt_callbacks sess_crypt_cbs = {
    .on_out = sess_on_crypt_out,
    .on_frames = sess_on_crypt_frames,
};

static void sess_on_writable(kith_ice *ice, void *ud) {
  sess_end *e = ud;
  sess_flush(e);
  if (e == &e->run->a && e->established)
    sess_pump(e->run);
}

static const kith_ice_callbacks sess_cbs = {
    .on_gathered = sess_on_gathered,
    .on_state = sess_on_state,
    .on_recv = sess_on_recv,
    .on_writable = sess_on_writable,
};

static gboolean sess_end_init(sess_end *e, sess_run *r, GMainContext *ctx,
                              const kith_ident *me, const kith_ident *peer,
                              int initiator, int worker) {
  kith_ice_config cfg = {.controlling = initiator, .only_addr = "127.0.0.1"};
  e->run = r;
  kith_outq_init(&e->out);
  e->sess = kith_session_new(me, peer->pk, initiator);
  if (e->sess != NULL && worker)
    e->crypt = kith_crypt_new(ctx, e->sess, &sess_crypt_cbs, e);
  return e->sess != NULL &&
         kith_ice_new(ctx, &cfg, &sess_cbs, e, &e->ice) == KITH_OK;
}

static gboolean sess_tell(sess_end *from, sess_end *to) {
  kith_ice_params p;
  return kith_ice_local_params(from->ice, &p) == KITH_OK &&
         kith_ice_set_remote(to->ice, &p) == KITH_OK;
}

static void sess_end_clear(sess_end *e) {
  kith_crypt_free(e->crypt);
  kith_ice_free(e->ice);
  kith_session_free(e->sess);
  kith_outq_clear(&e->out);
}

static gboolean make_ident(kith_ident *id) {
  uint8_t seed[KITH_SEED_LEN];
  randombytes_buf(seed, sizeof seed);
  return kith_ident_from_seed(id, seed) == KITH_OK;
}

static void run_session(int threads, size_t total, size_t frame, int worker,
                        xfer *x) {
  ends e;
  ends_init(&e, threads, total);
  sess_run r = {.e = &e, .frame = frame};
  r.payload = g_malloc(frame);
  randombytes_buf(r.payload, frame);
  x->dt = -1;
  if (make_ident(&r.ia) && make_ident(&r.ib) &&
      sess_end_init(&r.a, &r, e.ctx_a, &r.ia, &r.ib, 1, worker) &&
      sess_end_init(&r.b, &r, e.ctx_b, &r.ib, &r.ia, 0, worker) &&
      ends_wait(&e, &r.a.gathered, &r.b.gathered) && sess_tell(&r.a, &r.b) &&
      sess_tell(&r.b, &r.a) &&
      ends_wait(&e, &r.a.established, &r.b.established))
    ends_transfer(&e, sess_pump, &r, &r.failed, x);
  sess_end_clear(&r.a);
  sess_end_clear(&r.b);
  ends_clear(&e);
  kith_ident_clear(&r.ia);
  kith_ident_clear(&r.ib);
  g_free(r.payload);
}

/* ---- driver ---- */

static int parse_opts(int argc, char **argv, opts *o) {
  *o = (opts){MB_DEFAULT, FRAME_DEFAULT, ROUNDS_DEFAULT, 1, 0, 0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    long *target = NULL, max = 0;
    if (strcmp(a, "--json") == 0) {
      o->json = 1;
      continue;
    }
    if (strcmp(a, "--no-worker") == 0) {
      o->no_worker = 1;
      continue;
    }
    if (strcmp(a, "--mb") == 0)
      target = &o->mb, max = MB_MAX;
    else if (strcmp(a, "--frame") == 0)
      target = &o->frame, max = KITH_SESSION_MAX_FRAME;
    else if (strcmp(a, "--rounds") == 0)
      target = &o->rounds, max = ROUNDS_MAX;
    else if (strcmp(a, "--threads") == 0)
      target = &o->threads, max = 2;
    if (!target || i + 1 >= argc) {
      int help = strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
      fprintf(help ? stdout : stderr,
              "usage: kith-bench link [--mb N] [--frame BYTES] "
              "[--rounds R] [--threads 1|2] [--no-worker] [--json]\n");
      return help ? 0 : 2;
    }
    char *end = NULL;
    *target = strtol(argv[++i], &end, 10);
    if (!end || *end || *target < 1 || *target > max) {
      fprintf(stderr, "kith-bench link: %s must be 1..%ld\n", a, max);
      return 2;
    }
  }
  return -1;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, long n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Medians over the rounds: rates (MB/s) and CPU per byte (ns) of a's
 * thread and of the process, raw then session. */
typedef struct summary {
  double raw, sess;
  double raw_cpu_a, raw_cpu_all, sess_cpu_a, sess_cpu_all;
} summary;

static void summarize(const xfer *raw, const xfer *sess, long rounds, double mb,
                      summary *out) {
  double v[6][ROUNDS_MAX];
  for (long i = 0; i < rounds; i++) {
    v[0][i] = mb / raw[i].dt;
    v[1][i] = mb / sess[i].dt;
    v[2][i] = raw[i].cpu_a * 1e3 / mb; /* s per MB = ns per byte / 1e3 */
    v[3][i] = raw[i].cpu_all * 1e3 / mb;
    v[4][i] = sess[i].cpu_a * 1e3 / mb;
    v[5][i] = sess[i].cpu_all * 1e3 / mb;
  }
  *out = (summary){median(v[0], rounds), median(v[1], rounds),
                   median(v[2], rounds), median(v[3], rounds),
                   median(v[4], rounds), median(v[5], rounds)};
}

static void print_json(const opts *o, const summary *m, const char *cond) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
#define KEY(k, type, v)                                                        \
  json_builder_set_member_name(b, k);                                          \
  json_builder_add_##type##_value(b, v)
  KEY("session_mb_s", double, m->sess);
  KEY("raw_mb_s", double, m->raw);
  KEY("ratio", double, m->raw > 0 ? m->sess / m->raw : 0);
  KEY("target_ratio", double, TARGET_RATIO);
  KEY("raw_cpu_ns_per_byte_thread_a", double, m->raw_cpu_a);
  KEY("raw_cpu_ns_per_byte_process", double, m->raw_cpu_all);
  KEY("session_cpu_ns_per_byte_thread_a", double, m->sess_cpu_a);
  KEY("session_cpu_ns_per_byte_process", double, m->sess_cpu_all);
  KEY("mb", int, o->mb);
  KEY("frame_bytes", int, o->frame);
  KEY("rounds", int, o->rounds);
  KEY("threads", int, o->threads);
  KEY("crypto_worker", boolean, !o->no_worker);
  KEY("conditions", string, cond);
#undef KEY
  json_builder_end_object(b);
  bench_print_json(b);
}

static void print_text(const opts *o, const summary *m, const char *cond) {
  printf("link: %ld MB one way over loopback, %ld-byte frames, %s, "
         "records %s, median of %ld rounds\n",
         o->mb, o->frame,
         o->threads == 2 ? "each end on its own thread"
                         : "both ends on one thread",
         o->no_worker ? "sealed and opened on the main thread"
                      : "sealed and opened on the crypto worker",
         o->rounds);
  printf("  raw pseudo-TCP %.1f MB/s, kith session %.1f MB/s: ratio %.2f "
         "(target >= %.1f)\n",
         m->raw, m->sess, m->sess / m->raw, TARGET_RATIO);
  printf("  CPU per byte, %s thread / process: raw %.2f / %.2f ns, "
         "session %.2f / %.2f ns\n",
         o->threads == 2 ? "the sender's" : "the ends'", m->raw_cpu_a,
         m->raw_cpu_all, m->sess_cpu_a, m->sess_cpu_all);
  printf("  conditions: %s libnice=%d.%d.%d\n", cond, NICE_VERSION_MAJOR,
         NICE_VERSION_MINOR, NICE_VERSION_MICRO);
}

int bench_link(int argc, char **argv) {
  opts o;
  int rc = parse_opts(argc, argv, &o);
  if (rc >= 0)
    return rc;
  size_t total = (size_t)o.mb * 1000 * 1000;
  xfer raw[ROUNDS_MAX], sess[ROUNDS_MAX];
  const char *only = g_getenv("KITH_BENCH_LINK_ONLY"); /* for profiling */
  for (long i = 0; i < o.rounds; i++) {
    raw[i] = sess[i] = (xfer){1, 0, 0};
    if (!only || strcmp(only, "session") != 0)
      run_raw((int)o.threads, total, &raw[i]);
    if (!only || strcmp(only, "raw") != 0)
      run_session((int)o.threads, total, (size_t)o.frame, !o.no_worker,
                  &sess[i]);
    if (raw[i].dt <= 0 || sess[i].dt <= 0) {
      fprintf(stderr,
              "kith-bench link: the %s link did not come up or "
              "failed on 127.0.0.1\n",
              raw[i].dt <= 0 ? "raw" : "session");
      return 1;
    }
  }
  summary m;
  summarize(raw, sess, o.rounds, (double)o.mb, &m);
  char *cond = bench_conditions();
  if (o.json)
    print_json(&o, &m, cond);
  else
    print_text(&o, &m, cond);
  g_free(cond);
  return 0;
}
