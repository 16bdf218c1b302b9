/* kith: the data directory on local disk (see home.h). */
#include "home.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <sodium.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_LEN 32

/* Closes fd without letting close() overwrite the errno that explains the
 * failure we are reporting. */
static void close_keep_errno(int fd) {
  int saved = errno;
  (void)close(fd);
  errno = saved;
}

kith_err kith_home_prepare(const char *dir) {
  struct stat st;

  if (!dir || !*dir)
    return KITH_ERR_ARG;
  if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return KITH_ERR_IO;
  }
  if (g_mkdir_with_parents(dir, 0700) != 0)
    return KITH_ERR_IO;
  /* mkdir does not change an existing directory, and the umask may have
   * narrowed a new one oddly: set the mode explicitly either way. */
  if (chmod(dir, 0700) != 0)
    return KITH_ERR_IO;
  return KITH_OK;
}

char *kith_home_path(const char *dir, const char *file) {
  return g_build_filename(dir, file, NULL);
}

static int write_all(int fd, const uint8_t *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Makes the new directory entry itself durable, not only the file data. */
static void sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    (void)close(fd);
  }
}

kith_err kith_home_create_key(const char *dir, uint8_t key[32]) {
  if (!dir || !key)
    return KITH_ERR_ARG;
  char *path = kith_home_path(dir, KITH_HOME_KEY_FILE);
  int fd =
      open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    kith_err err = errno == EEXIST ? KITH_ERR_EXISTS : KITH_ERR_IO;
    g_free(path);
    return err;
  }
  randombytes_buf(key, KEY_LEN);
  if (fchmod(fd, 0600) != 0 || write_all(fd, key, KEY_LEN) != 0 ||
      fsync(fd) != 0) {
    /* A half-written key file would lock the user out later. */
    close_keep_errno(fd);
    int saved = errno;
    (void)unlink(path);
    errno = saved;
    sodium_memzero(key, KEY_LEN);
    g_free(path);
    return KITH_ERR_IO;
  }
  g_free(path);
  if (close(fd) != 0) {
    sodium_memzero(key, KEY_LEN);
    return KITH_ERR_IO;
  }
  sync_dir(dir);
  return KITH_OK;
}

/* Reads exactly KEY_LEN bytes and checks that nothing follows. */
static kith_err read_key(int fd, uint8_t key[32]) {
  uint8_t buf[KEY_LEN + 1];
  size_t got = 0;

  while (got < sizeof buf) {
    ssize_t n = read(fd, buf + got, sizeof buf - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      sodium_memzero(buf, sizeof buf);
      return KITH_ERR_IO;
    }
    if (n == 0)
      break;
    got += (size_t)n;
  }
  kith_err err = KITH_ERR_IO;
  if (got == KEY_LEN) {
    memcpy(key, buf, KEY_LEN);
    err = KITH_OK;
  }
  sodium_memzero(buf, sizeof buf);
  return err;
}

kith_err kith_home_load_key(const char *dir, uint8_t key[32]) {
  struct stat st;

  if (!dir || !key)
    return KITH_ERR_ARG;
  char *path = kith_home_path(dir, KITH_HOME_KEY_FILE);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  g_free(path);
  if (fd < 0)
    return errno == ENOENT ? KITH_ERR_NOT_FOUND : KITH_ERR_IO;
  kith_err err = KITH_ERR_IO;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == KEY_LEN)
    err = read_key(fd, key);
  close_keep_errno(fd);
  return err;
}

kith_err kith_home_lock(const char *dir, int *fd) {
  if (!dir || !fd)
    return KITH_ERR_ARG;
  *fd = -1;
  char *path = kith_home_path(dir, KITH_HOME_LOCK_FILE);
  int lfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  g_free(path);
  if (lfd < 0)
    return KITH_ERR_IO;
  /* flock locks belong to the open file description, so a second open()
   * of the same file is refused even inside one process. */
  while (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR)
      continue;
    kith_err err = errno == EWOULDBLOCK ? KITH_ERR_BUSY : KITH_ERR_IO;
    close_keep_errno(lfd);
    return err;
  }
  *fd = lfd;
  return KITH_OK;
}
