/* kith: a link's session records sealed and opened on a worker thread
 * (crypt.h). */
#include "crypt.h"

#include <sodium.h>
#include <string.h>

#define CRYPT_WORKERS 1 /* threads of the process-wide pool */
/* A direction does records at once (no thread hop) while it moves less
 * than CRYPT_BURST bytes in CRYPT_WINDOW_US: chat and upkeep; above
 * that it is bulk, and the worker takes it. */
#define CRYPT_WINDOW_US 10000
#define CRYPT_BURST (64 * 1024)
/* An rx job's buffer starts this big, so that a bulk job does not grow it
 * by reallocation (a copy of all it holds at each doubling). A tx job's
 * buffer is handed on whole (on_out), so the next one is sized from the
 * last: twice its bytes, between CRYPT_TX_START and CRYPT_BUF_START. */
#define CRYPT_BUF_START (256 * 1024)
#define CRYPT_TX_START (4 * 1024)
#define CRYPT_SPIN_US 100 /* a worker waits this long for the next job */

typedef struct keys {
  uint8_t tx[32], rx[32];
} keys;

typedef struct job {
  kith_crypt *c;
  int tx;
  GByteArray *buf; /* tx: whole records; rx: record payloads */
  GArray *spans;   /* kith_record_span */
  size_t bytes;    /* tx: frame bytes (unsent) */
  kith_err err;    /* rx: KITH_OK, or why record `bad` did not open */
  guint bad;
  void *check_ctx; /* rx with a check: what check_begin gave */
  GArray *marks;   /* rx with a check: kith_crypt_mark, one per span */
  GMutex lock;
  GCond cond;
  int finished; /* the worker is done (under lock) */
  int handled;  /* its results were delivered (node's thread) */
} job;

struct kith_crypt {
  int refs; /* the owner's, and one per job in flight */
  int dead; /* the owner freed it */
  GMainContext *ctx;
  kith_session *s;
  kith_crypt_callbacks cbs;
  void *ud;
  keys *k; /* sodium_malloc'ed once the session is established */
  GByteArray *tx_buf;
  GArray *tx_spans;
  size_t tx_bytes;
  job *tx_job;
  GByteArray *rx_buf;
  GArray *rx_spans;
  job *rx_job;
  int64_t window_us[2]; /* rx, tx: when the current window began */
  size_t window_bytes[2];
};

static GThreadPool *pool;

static void unref(kith_crypt *c) {
  if (--c->refs > 0)
    return;
  if (c->k)
    sodium_free(c->k); /* wipes */
  g_byte_array_unref(c->tx_buf);
  g_array_unref(c->tx_spans);
  g_byte_array_unref(c->rx_buf);
  g_array_unref(c->rx_spans);
  g_main_context_unref(c->ctx);
  g_free(c);
}

/* ---- the worker ---- */

static gboolean job_done(gpointer data);

static void run_job(gpointer data, gpointer unused) {
  job *j = data;
  const keys *k = j->c->k;

  for (guint i = 0; i < j->spans->len && j->err == KITH_OK; i++) {
    const kith_record_span *sp = &g_array_index(j->spans, kith_record_span, i);
    if (j->tx) {
      kith_record_seal(k->tx, sp->n, j->buf->data + sp->at,
                       sp->len - KITH_SESSION_TAG_LEN);
    } else {
      j->err = kith_record_open(k->rx, sp->n, j->buf->data + sp->at, sp->len);
      j->bad = i;
    }
  }
  if (j->marks) /* the frames opened: all, or those before `bad` */
    for (guint i = 0; i < (j->err == KITH_OK ? j->spans->len : j->bad); i++) {
      const kith_record_span *sp =
          &g_array_index(j->spans, kith_record_span, i);
      if (sp->len > KITH_SESSION_TAG_LEN)
        j->c->cbs.check(j->check_ctx, j->buf->data + sp->at,
                        sp->len - KITH_SESSION_TAG_LEN,
                        &g_array_index(j->marks, kith_crypt_mark, i));
    }
  g_mutex_lock(&j->lock);
  j->finished = 1;
  g_cond_signal(&j->cond);
  g_mutex_unlock(&j->lock);
  /* Back to the node's thread (attaching a source is thread-safe). */
  GSource *src = g_idle_source_new();
  g_source_set_priority(src, G_PRIORITY_DEFAULT);
  g_source_set_callback(src, job_done, j, NULL);
  g_source_attach(src, j->c->ctx);
  g_source_unref(src);
  /* In bulk the next job comes within microseconds: waiting for it here
   * spares the node's thread the wake-up of a sleeping worker. The wait
   * yields the core, so that other work on it is not held up. */
  int64_t until = g_get_monotonic_time() + CRYPT_SPIN_US;
  while (g_thread_pool_unprocessed(pool) == 0 && g_get_monotonic_time() < until)
    g_thread_yield();
}

static gpointer make_pool(gpointer unused) {
  return g_thread_pool_new(run_job, NULL, CRYPT_WORKERS, FALSE, NULL);
}

static void submit(kith_crypt *c, int tx) {
  static GOnce once = G_ONCE_INIT;
  job *j = g_new0(job, 1);

  pool = g_once(&once, make_pool, NULL);
  j->c = c;
  j->tx = tx;
  g_mutex_init(&j->lock);
  g_cond_init(&j->cond);
  if (tx) {
    j->buf = c->tx_buf;
    j->spans = c->tx_spans;
    j->bytes = c->tx_bytes;
    c->tx_buf = g_byte_array_sized_new(
        CLAMP(2 * j->buf->len, CRYPT_TX_START, CRYPT_BUF_START));
    c->tx_spans = g_array_new(FALSE, FALSE, sizeof(kith_record_span));
    c->tx_bytes = 0;
    c->tx_job = j;
  } else {
    j->buf = c->rx_buf;
    j->spans = c->rx_spans;
    /* The opened frames keep the job's buffer (add_frames): no reuse. */
    c->rx_buf = g_byte_array_sized_new(CRYPT_BUF_START);
    c->rx_spans = g_array_new(FALSE, FALSE, sizeof(kith_record_span));
    c->rx_job = j;
    if (c->cbs.check) {
      j->check_ctx = c->cbs.check_begin ? c->cbs.check_begin(c->ud) : NULL;
      j->marks = g_array_sized_new(FALSE, TRUE, sizeof(kith_crypt_mark),
                                   j->spans->len);
      g_array_set_size(j->marks, j->spans->len);
    }
  }
  c->refs++;
  g_thread_pool_push(pool, j, NULL);
}

static void job_free(job *j) {
  if (j->buf)
    g_byte_array_unref(j->buf);
  if (j->marks)
    g_array_unref(j->marks);
  if (j->check_ctx && j->c->cbs.check_free)
    j->c->cbs.check_free(j->check_ctx);
  g_array_unref(j->spans);
  g_mutex_clear(&j->lock);
  g_cond_clear(&j->cond);
  g_free(j);
}

/* ---- the node's thread ---- */

static void take_keys(kith_crypt *c) {
  if (c->k)
    return;
  c->k = sodium_malloc(sizeof *c->k);
  if (!c->k)
    g_error("kith: out of locked memory for session keys");
  kith_session_key(c->s, 1, c->k->tx);
  kith_session_key(c->s, 0, c->k->rx);
}

/* The frames of opened records (payloads in buf, in place) before index
 * `to`, as slices of one GBytes; with marks (one per span), theirs go to
 * out_marks, one per frame added. */
static void add_frames(GByteArray *buf, GArray *spans, guint to,
                       GPtrArray *frames, const GArray *marks,
                       GArray *out_marks) {
  GBytes *all = g_byte_array_free_to_bytes(g_byte_array_ref(buf));

  for (guint i = 0; i < to; i++) {
    const kith_record_span *sp = &g_array_index(spans, kith_record_span, i);
    size_t flen = sp->len - KITH_SESSION_TAG_LEN;
    if (flen == 0)
      continue; /* an empty frame is not delivered (10.3) */
    g_ptr_array_add(frames, g_bytes_new_from_bytes(all, sp->at, flen));
    if (marks)
      g_array_append_val(out_marks, g_array_index(marks, kith_crypt_mark, i));
  }
  g_bytes_unref(all);
}

static void pump(kith_crypt *c, int tx);

/* May `len` more bytes of one direction be done here and now? */
static int light(kith_crypt *c, int tx, size_t len) {
  int64_t now = g_get_monotonic_time();

  if (now - c->window_us[tx] > CRYPT_WINDOW_US) {
    c->window_us[tx] = now;
    c->window_bytes[tx] = 0;
  }
  c->window_bytes[tx] += len;
  return c->window_bytes[tx] <= CRYPT_BURST;
}

/* Hands a finished tx job's records on (its buffer goes with them). */
static void hand_out(kith_crypt *c, job *j) {
  GByteArray *records = j->buf;

  j->buf = NULL;
  c->tx_job = NULL;
  c->cbs.on_out(c->ud, records);
}

/* Delivers a finished job's results (once), then starts the next job. */
static void complete(job *j) {
  kith_crypt *c = j->c;

  if (j->handled)
    return;
  j->handled = 1;
  if (c->dead)
    return;
  c->refs++; /* a callback may free c */
  if (j->tx) {
    hand_out(c, j);
  } else {
    GPtrArray *frames =
        g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    GArray *marks = g_array_new(FALSE, FALSE, sizeof(kith_crypt_mark));
    c->rx_job = NULL;
    add_frames(j->buf, j->spans, j->err == KITH_OK ? j->spans->len : j->bad,
               frames, j->marks, marks);
    if (j->err != KITH_OK)
      kith_session_kill(c->s, j->err);
    c->cbs.on_frames(c->ud, frames,
                     j->marks ? (const kith_crypt_mark *)marks->data : NULL,
                     j->err);
    g_ptr_array_unref(frames);
    g_array_unref(marks);
  }
  if (!c->dead)
    pump(c, j->tx);
  unref(c);
}

static gboolean job_done(gpointer data) {
  job *j = data;
  kith_crypt *c = j->c;

  complete(j);
  job_free(j);
  unref(c);
  return G_SOURCE_REMOVE;
}

/* Starts the next job of one direction, if anything waits. */
static void pump(kith_crypt *c, int tx) {
  if (tx && !c->tx_job && c->tx_spans->len > 0)
    submit(c, 1);
  else if (!tx && !c->rx_job && c->rx_spans->len > 0 &&
           kith_session_is_established(c->s))
    submit(c, 0);
}

kith_crypt *kith_crypt_new(GMainContext *ctx, kith_session *s,
                           const kith_crypt_callbacks *cbs, void *ud) {
  kith_crypt *c = g_new0(kith_crypt, 1);

  c->refs = 1;
  c->ctx = g_main_context_ref(ctx);
  c->s = s;
  c->cbs = *cbs;
  c->ud = ud;
  c->tx_buf = g_byte_array_new();
  c->tx_spans = g_array_new(FALSE, FALSE, sizeof(kith_record_span));
  c->rx_buf = g_byte_array_new();
  c->rx_spans = g_array_new(FALSE, FALSE, sizeof(kith_record_span));
  return c;
}

void kith_crypt_free(kith_crypt *c) {
  if (!c || c->dead)
    return;
  c->dead = 1;
  unref(c);
}

size_t kith_crypt_unsent(const kith_crypt *c) {
  return c->tx_bytes + (c->tx_job ? c->tx_job->bytes : 0);
}

kith_err kith_crypt_seal(kith_crypt *c, const uint8_t *frame, size_t len,
                         GByteArray *out) {
  kith_record_span sp;
  kith_err err;

  if (!kith_session_is_established(c->s) ||
      (len <= KITH_CRYPT_INLINE_MAX && !c->tx_job && c->tx_spans->len == 0 &&
       light(c, 1, len)))
    return kith_session_seal(c->s, frame, len, out);
  take_keys(c);
  err = kith_session_seal_later(c->s, frame, len, c->tx_buf, &sp);
  if (err != KITH_OK)
    return err;
  g_array_append_val(c->tx_spans, sp);
  c->tx_bytes += len;
  pump(c, 1); /* a job now if none is in flight; else after it */
  return KITH_OK;
}

/* Opens the queued records here and now (a small batch, nothing ahead). */
static kith_err open_here(kith_crypt *c, GPtrArray *frames) {
  kith_err err = KITH_OK;
  guint i;

  for (i = 0; i < c->rx_spans->len && err == KITH_OK; i++) {
    const kith_record_span *sp =
        &g_array_index(c->rx_spans, kith_record_span, i);
    err = kith_record_open(c->k->rx, sp->n, c->rx_buf->data + sp->at, sp->len);
  }
  add_frames(c->rx_buf, c->rx_spans, err == KITH_OK ? i : i - 1, frames, NULL,
             NULL);
  g_byte_array_set_size(c->rx_buf, 0);
  g_array_set_size(c->rx_spans, 0);
  if (err != KITH_OK)
    kith_session_kill(c->s, err);
  return err;
}

kith_err kith_crypt_recv(kith_crypt *c, const uint8_t *buf, size_t len,
                         GByteArray *out, GPtrArray *frames) {
  kith_err err;

  if (!kith_session_is_established(c->s))
    return kith_session_recv(c->s, buf, len, out, frames);
  take_keys(c);
  err = kith_session_recv_later(c->s, buf, len, c->rx_buf, c->rx_spans);
  if (err != KITH_OK)
    return err;
  if (!c->rx_job && c->rx_buf->len <= KITH_CRYPT_INLINE_MAX &&
      light(c, 0, c->rx_buf->len))
    return open_here(c, frames);
  pump(c, 0); /* a job now if none is in flight; else after it */
  return KITH_OK;
}

void kith_crypt_sync_tx(kith_crypt *c) {
  job *j = c->tx_job;

  if (c->dead)
    return;
  if (j) {
    g_mutex_lock(&j->lock);
    while (!j->finished)
      g_cond_wait(&j->cond, &j->lock);
    g_mutex_unlock(&j->lock);
    j->handled = 1; /* job_done only frees it */
    c->refs++;
    hand_out(c, j);
    int dead = c->dead;
    unref(c);
    if (dead)
      return;
  }
  if (c->tx_spans->len == 0)
    return;
  for (guint i = 0; i < c->tx_spans->len; i++) {
    const kith_record_span *sp =
        &g_array_index(c->tx_spans, kith_record_span, i);
    kith_record_seal(c->k->tx, sp->n, c->tx_buf->data + sp->at,
                     sp->len - KITH_SESSION_TAG_LEN);
  }
  GByteArray *done = c->tx_buf;
  c->tx_buf = g_byte_array_new();
  g_array_set_size(c->tx_spans, 0);
  c->tx_bytes = 0;
  c->cbs.on_out(c->ud, done);
}
