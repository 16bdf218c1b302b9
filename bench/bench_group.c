/* kith-bench: what the benchmarks share to build groups and stores: the
 * node's store batches, temporary directories, copies of stores, admitting
 * a member, message texts. */
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"
#include "core/invite.h"

#define INVITE_TTL_MS (3600ull * 1000)

void bench_batch_init(bench_batch *b, kith_store *s, kith_group *g,
                      unsigned max) {
  *b = (bench_batch){.s = s, .g = g, .max = max};
}

void bench_batch_open(bench_batch *b) {
  if (!kith_store_in_batch(b->s))
    b->bad |= kith_store_batch_begin(b->s) != KITH_OK;
}

void bench_batch_commit(bench_batch *b) {
  if (!kith_store_in_batch(b->s))
    return;
  b->bad |= b->g && kith_group_flush(b->g) != KITH_OK;
  b->bad |= kith_store_batch_commit(b->s) != KITH_OK;
  b->n = 0;
}

void bench_batch_add(bench_batch *b, unsigned n) {
  b->n += n;
  if (b->n >= b->max)
    bench_batch_commit(b);
}

char *bench_tmpdir(const char *what) {
  char *tmpl = g_strdup_printf("kith-bench-%s-XXXXXX", what);
  char *dir = g_dir_make_tmp(tmpl, NULL);
  g_free(tmpl);
  return dir;
}

void bench_rmtree(const char *dir) {
  GDir *d = dir ? g_dir_open(dir, 0, NULL) : NULL;
  const char *name;
  while (d && (name = g_dir_read_name(d))) {
    char *p = g_build_filename(dir, name, NULL);
    if (g_file_test(p, G_FILE_TEST_IS_DIR) &&
        !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
      bench_rmtree(p);
    else
      g_remove(p);
    g_free(p);
  }
  if (d) {
    g_dir_close(d);
    g_rmdir(dir);
  }
}

int bench_copy_file(const char *from, const char *to) {
  GFile *src = g_file_new_for_path(from), *dst = g_file_new_for_path(to);
  GError *err = NULL;
  int ok = g_file_copy(src, dst, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, &err);
  if (!ok)
    fprintf(stderr, "kith-bench: cannot copy %s: %s\n", from, err->message);
  g_clear_error(&err);
  g_object_unref(src);
  g_object_unref(dst);
  return ok;
}

uint64_t bench_file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

GPtrArray *bench_acc_new(void) {
  return g_ptr_array_new_with_free_func((GDestroyNotify)kith_accepted_free);
}

kith_err bench_admit(kith_group *g, const kith_ident *member, const char *name,
                     uint64_t now_ms, GPtrArray *acc) {
  uint8_t secret[32], pk[32], sig[KITH_SIG_LEN];
  kith_accepted *a = NULL;
  kith_err rc =
      kith_group_invite(g, 1, now_ms + INVITE_TTL_MS, now_ms, secret, &a);
  if (rc != KITH_OK)
    return rc;
  g_ptr_array_add(acc, a);
  kith_invite_public_key(secret, pk);
  kith_invite_sign_join(secret, kith_group_id(g), member->pk, sig);
  sodium_memzero(secret, sizeof secret);
  return kith_group_admit(g, member->pk, name, pk, sig, now_ms + 1, acc);
}

void bench_text(char *text, size_t len, uint64_t i) {
  int n = snprintf(text, len + 1, "message %llu ", (unsigned long long)i);
  for (size_t k = n > 0 ? (size_t)n : 0; k < len; k++)
    text[k] = (char)('a' + (k % 26));
  text[len] = '\0';
}
