/* kith: a link's session records sealed and opened on a worker thread.
 *
 * The record cipher costs about as much CPU per byte as libnice's
 * pseudo-TCP itself (docs/performance.md, Links), so bulk records are
 * sealed and opened on a worker while the node's thread runs libnice.
 * The boundary (docs/architecture.md, Threads and time): the worker runs
 * only kith_record_seal and kith_record_open, on buffers a job owns, with
 * the session's two transport keys, and the optional check of an rx job's
 * frames (below: the node verifies event signatures there); the session
 * (framing, counters, the handshake), the callbacks and everything else stay on
 * the thread of the GMainContext given here. Records keep their order: counters
 * are handed out in order on that thread, at most one job per direction is in
 * flight, and a frame is sealed in place (at once) only when nothing is queued
 * or in flight ahead of it. Small frames (up to KITH_CRYPT_INLINE_MAX) with
 * nothing ahead are done at once while a direction moves little (under
 * 64 KiB in 10 ms), so chatty traffic pays no thread hop. */
#ifndef KITH_CRYPT_H
#define KITH_CRYPT_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "session.h"

#define KITH_CRYPT_INLINE_MAX (4 * 1024) /* bytes done at once, not queued */

typedef struct kith_crypt kith_crypt;

/* What the check callback found in one opened frame: ok = 1 when it
 * verified the bytes frame[at, at + len) (the node: the signature of the
 * event a PAYLOAD frame carries) for `key` (the node: the group id); all
 * zero when it verified nothing. */
typedef struct kith_crypt_mark {
  uint8_t ok;
  uint8_t key[32];
  uint32_t at, len;
} kith_crypt_mark;

typedef struct kith_crypt_callbacks {
  /* Records a job sealed, in order after everything returned before; the
   * callee takes ownership of the buffer (kith_outq_push keeps it without
   * a copy). */
  void (*on_out)(void *ud, GByteArray *records);
  /* Frames a job opened (GBytes*, borrowed until return), in order after
   * everything returned before, and what check found in each (marks[i] for
   * frames->pdata[i]; NULL when nothing was checked); err != KITH_OK: the
   * record after them did not open and the session is dead. */
  void (*on_frames)(void *ud, GPtrArray *frames, const kith_crypt_mark *marks,
                    kith_err err);
  /* Optional (NULL: frames are not checked). A bulk rx job also checks its
   * opened frames on the worker, so that the node's thread does not:
   * check_begin runs on ctx's thread as the job starts and returns what
   * check may read (the job owns it; check_free frees it on ctx's thread);
   * check runs on the worker for each frame the job opened, and fills m
   * (zeroed before) when it verified something. check may read only its
   * arguments. Frames opened at once (small traffic) are not checked. */
  void *(*check_begin)(void *ud);
  void (*check)(const void *ctx, const uint8_t *frame, size_t len,
                kith_crypt_mark *m);
  void (*check_free)(void *ctx);
} kith_crypt_callbacks;

/* s is borrowed (it must outlive the kith_crypt); callbacks run on ctx's
 * thread, and from inside no kith_crypt_* call but kith_crypt_sync_tx. */
kith_crypt *kith_crypt_new(GMainContext *ctx, kith_session *s,
                           const kith_crypt_callbacks *cbs, void *ud);
/* No callback runs afterwards; jobs in flight finish and are dropped.
 * Safe from inside a callback. */
void kith_crypt_free(kith_crypt *c);
/* Seals a frame: into out at once when it is small and nothing is ahead of
 * it (or the session is not established: then as kith_session_seal),
 * otherwise queued for the worker (its records come through on_out).
 * Errors as kith_session_seal. */
KITH_MUST kith_err kith_crypt_seal(kith_crypt *c, const uint8_t *frame,
                                   size_t len, GByteArray *out);
/* Bytes from the link: as kith_session_recv (records to send to out,
 * frames to frames, unchecked) for what is done at once; bulk records of
 * an established session go to the worker, and their frames (checked, if
 * check is set) come through on_frames. An error means the session is
 * dead. */
KITH_MUST kith_err kith_crypt_recv(kith_crypt *c, const uint8_t *buf,
                                   size_t len, GByteArray *out,
                                   GPtrArray *frames);
/* Frame bytes queued or being sealed. */
size_t kith_crypt_unsent(const kith_crypt *c);
/* Waits for the sealing in flight and seals what is queued, delivering it
 * all through on_out now: afterwards the next kith_crypt_seal of a small
 * frame goes out at once, after everything sealed before (a carrier
 * switch needs that). */
void kith_crypt_sync_tx(kith_crypt *c);

#endif
