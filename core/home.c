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

/* A passphrase-protected key file: magic, Argon2id salt and limits, then
 * the storage key sealed (XChaCha20-Poly1305) under the derived key. */
#define PW_MAGIC "KITHPW1"
#define PW_MAGIC_LEN 8
#define PW_FILE_LEN                                                            \
  (PW_MAGIC_LEN + crypto_pwhash_SALTBYTES + 16 +                               \
   crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + KEY_LEN +                    \
   crypto_aead_xchacha20poly1305_ietf_ABYTES)
#define KEY_FILE_MAX 256

static void put_le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

/* Bounds on the Argon2id limits read from a key file. They are used before
 * anything in the file is authenticated, so a tampered file could otherwise
 * make us allocate gigabytes or hash for hours. We write the moderate
 * limits (3 passes, 256 MiB); the bounds leave room for stronger settings
 * up to libsodium's "sensitive" cost (4 passes over 1 GiB, a few seconds):
 * at most 1 GiB, at most 32 passes, and passes x memory at most that of
 * "sensitive" (so 32 passes only over 128 MiB). Outside: a malformed file. */
#define KDF_OPSLIMIT_MAX (16ull * crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE)
#define KDF_MEMLIMIT_MAX ((uint64_t)crypto_pwhash_argon2id_MEMLIMIT_SENSITIVE)
#define KDF_COST_MAX                                                           \
  ((uint64_t)crypto_pwhash_argon2id_OPSLIMIT_SENSITIVE * KDF_MEMLIMIT_MAX)

G_STATIC_ASSERT(KITH_HOME_KDF_OPSLIMIT ==
                crypto_pwhash_argon2id_OPSLIMIT_MODERATE);
G_STATIC_ASSERT(KITH_HOME_KDF_MEMLIMIT ==
                crypto_pwhash_argon2id_MEMLIMIT_MODERATE);

static int is_sane_kdf_limits(uint64_t ops, uint64_t mem) {
  return ops >= crypto_pwhash_argon2id_OPSLIMIT_MIN &&
         ops <= KDF_OPSLIMIT_MAX &&
         mem >= crypto_pwhash_argon2id_MEMLIMIT_MIN &&
         mem <= KDF_MEMLIMIT_MAX && ops * mem <= KDF_COST_MAX;
}

/* Derives the key-encryption key from the passphrase (Argon2id). */
static kith_err derive(const char *pass, size_t pass_len, const uint8_t *salt,
                       uint64_t ops, uint64_t mem, uint8_t kek[KEY_LEN]) {
  if (!is_sane_kdf_limits(ops, mem))
    return KITH_ERR_IO;
  if (crypto_pwhash(kek, KEY_LEN, pass, pass_len, salt, ops, (size_t)mem,
                    crypto_pwhash_ALG_ARGON2ID13) != 0)
    return KITH_ERR_NOMEM;
  return KITH_OK;
}

static kith_err seal_key(const uint8_t key[KEY_LEN], const char *pass,
                         size_t pass_len, uint64_t ops, uint64_t mem,
                         uint8_t out[PW_FILE_LEN]) {
  uint8_t kek[KEY_LEN];
  uint8_t *salt = out + PW_MAGIC_LEN;
  uint8_t *limits = salt + crypto_pwhash_SALTBYTES;
  uint8_t *nonce = limits + 16;

  memcpy(out, PW_MAGIC, PW_MAGIC_LEN);
  randombytes_buf(salt, crypto_pwhash_SALTBYTES);
  put_le64(limits, ops);
  put_le64(limits + 8, mem);
  randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
  kith_err err = derive(pass, pass_len, salt, ops, mem, kek);
  if (err == KITH_OK)
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, NULL, key,
        KEY_LEN, out, PW_MAGIC_LEN, NULL, nonce, kek);
  sodium_memzero(kek, sizeof kek);
  return err;
}

static kith_err open_key(const uint8_t in[PW_FILE_LEN], const char *pass,
                         size_t pass_len, uint8_t key[KEY_LEN]) {
  uint8_t kek[KEY_LEN];
  const uint8_t *salt = in + PW_MAGIC_LEN;
  const uint8_t *limits = salt + crypto_pwhash_SALTBYTES;
  const uint8_t *nonce = limits + 16;
  kith_err err =
      derive(pass, pass_len, salt, get_le64(limits), get_le64(limits + 8), kek);

  if (err == KITH_OK &&
      crypto_aead_xchacha20poly1305_ietf_decrypt(
          key, NULL, NULL, nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
          KEY_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES, in, PW_MAGIC_LEN,
          nonce, kek) != 0)
    err = KITH_ERR_CRYPTO;
  sodium_memzero(kek, sizeof kek);
  return err;
}

/* Writes file (file_len bytes) as the key file: at `name` in the home,
 * created exclusively with mode 0600, synced. A half-written file is
 * removed (it would lock the user out later). */
static kith_err write_key_file(const char *dir, const char *name,
                               const uint8_t *file, size_t file_len) {
  char *path = kith_home_path(dir, name);
  int fd =
      open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    kith_err err = errno == EEXIST ? KITH_ERR_EXISTS : KITH_ERR_IO;
    g_free(path);
    return err;
  }
  int bad = fchmod(fd, 0600) != 0 || write_all(fd, file, file_len) != 0 ||
            fsync(fd) != 0;
  if (bad) {
    close_keep_errno(fd);
    int saved = errno;
    (void)unlink(path);
    errno = saved;
    g_free(path);
    return KITH_ERR_IO;
  }
  g_free(path);
  return close(fd) == 0 ? KITH_OK : KITH_ERR_IO;
}

kith_err kith_home_create_key_limits(const char *dir, const char *pass,
                                     size_t pass_len, uint64_t ops,
                                     uint64_t mem, uint8_t key[32]) {
  uint8_t file[PW_FILE_LEN];
  size_t file_len = KEY_LEN;
  kith_err err = KITH_OK;

  if (!dir || !key || (pass && !is_sane_kdf_limits(ops, mem)))
    return KITH_ERR_ARG;
  randombytes_buf(key, KEY_LEN);
  if (pass) {
    err = seal_key(key, pass, pass_len, ops, mem, file);
    file_len = PW_FILE_LEN;
  } else {
    memcpy(file, key, KEY_LEN);
  }
  if (err == KITH_OK)
    err = write_key_file(dir, KITH_HOME_KEY_FILE, file, file_len);
  sodium_memzero(file, sizeof file);
  if (err != KITH_OK) {
    sodium_memzero(key, KEY_LEN);
    return err;
  }
  sync_dir(dir);
  return KITH_OK;
}

kith_err kith_home_create_key(const char *dir, const char *pass,
                              size_t pass_len, uint8_t key[32]) {
  return kith_home_create_key_limits(
      dir, pass, pass_len, KITH_HOME_KDF_OPSLIMIT, KITH_HOME_KDF_MEMLIMIT, key);
}

/* Reads the whole key file (at most KEY_FILE_MAX bytes) into buf. */
static kith_err read_key_file(const char *dir, uint8_t buf[KEY_FILE_MAX],
                              size_t *got) {
  struct stat st;
  char *path = kith_home_path(dir, KITH_HOME_KEY_FILE);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

  g_free(path);
  *got = 0;
  if (fd < 0)
    return errno == ENOENT ? KITH_ERR_NOT_FOUND : KITH_ERR_IO;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_size > KEY_FILE_MAX) {
    close_keep_errno(fd);
    return KITH_ERR_IO;
  }
  while (*got < KEY_FILE_MAX) {
    ssize_t n = read(fd, buf + *got, KEY_FILE_MAX - *got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      close_keep_errno(fd);
      return KITH_ERR_IO;
    }
    if (n == 0)
      break;
    *got += (size_t)n;
  }
  close(fd);
  return KITH_OK;
}

static int is_protected(const uint8_t *buf, size_t len) {
  return len == PW_FILE_LEN && memcmp(buf, PW_MAGIC, PW_MAGIC_LEN) == 0;
}

kith_err kith_home_load_key(const char *dir, const char *pass, size_t pass_len,
                            uint8_t key[32]) {
  uint8_t buf[KEY_FILE_MAX];
  size_t len;
  kith_err err;

  if (!dir || !key)
    return KITH_ERR_ARG;
  err = read_key_file(dir, buf, &len);
  if (err == KITH_OK) {
    if (len == KEY_LEN)
      memcpy(key, buf, KEY_LEN);
    else if (!is_protected(buf, len))
      err = KITH_ERR_IO;
    else if (!pass)
      err = KITH_ERR_FORBIDDEN;
    else
      err = open_key(buf, pass, pass_len, key);
  }
  sodium_memzero(buf, sizeof buf);
  return err;
}

/* Only the owner may touch a home or its secrets (mode & 077 == 0). */
static kith_err check_private(const char *path, int is_dir, char **why) {
  struct stat st;

  if (lstat(path, &st) != 0) {
    *why = g_strdup_printf("cannot read %s: %s", path, g_strerror(errno));
    return errno == ENOENT ? KITH_ERR_NOT_FOUND : KITH_ERR_IO;
  }
  if (is_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
    *why = g_strdup_printf("%s is not a %s", path,
                           is_dir ? "directory" : "regular file");
    return KITH_ERR_IO;
  }
  if (st.st_uid != geteuid()) {
    *why = g_strdup_printf("%s belongs to another user (uid %u); run kith as "
                           "that user, or give this user its own home",
                           path, (unsigned)st.st_uid);
    return KITH_ERR_IO;
  }
  if (st.st_mode & 077) {
    *why = g_strdup_printf("%s is open to other users (mode %04o); run: "
                           "chmod %s %s",
                           path, (unsigned)(st.st_mode & 07777),
                           is_dir ? "700" : "600", path);
    return KITH_ERR_FORBIDDEN;
  }
  return KITH_OK;
}

/* Private, and openable in the given way (a node reads the key, reads
 * and writes the database). */
static kith_err check_file(const char *dir, const char *name, int amode,
                           char **why) {
  char *path = kith_home_path(dir, name);
  kith_err err = check_private(path, 0, why);

  if (err == KITH_OK && access(path, amode) != 0) {
    *why = g_strdup_printf("cannot %s %s: %s", amode & W_OK ? "open" : "read",
                           path, g_strerror(errno));
    err = KITH_ERR_IO;
  }
  g_free(path);
  return err;
}

kith_err kith_home_check(const char *dir, char **why) {
  static const char *const db_side[] = {"-wal", "-shm"};
  kith_err err;

  *why = NULL;
  if (!dir || !*dir) {
    *why = g_strdup("no home given");
    return KITH_ERR_ARG;
  }
  err = check_private(dir, 1, why);
  if (err == KITH_ERR_NOT_FOUND) {
    g_free(*why);
    *why = g_strdup_printf("the home %s does not exist; create an identity "
                           "with: kith init",
                           dir);
    return err;
  }
  if (err == KITH_OK && access(dir, W_OK | X_OK) != 0) {
    *why = g_strdup_printf("the home %s is not writable (%s); a node keeps "
                           "its lock, socket and database there",
                           dir, g_strerror(errno));
    err = KITH_ERR_IO;
  }
  if (err == KITH_OK) {
    err = check_file(dir, KITH_HOME_KEY_FILE, R_OK, why);
    if (err == KITH_ERR_NOT_FOUND) {
      g_free(*why);
      *why = g_strdup_printf("%s has no identity; create one with: kith init",
                             dir);
    }
  }
  if (err == KITH_OK) {
    err = check_file(dir, KITH_HOME_DB_FILE, R_OK | W_OK, why);
    if (err == KITH_ERR_NOT_FOUND)
      err = KITH_ERR_IO; /* a key without its store: the identity is gone */
  }
  for (size_t i = 0; err == KITH_OK && i < G_N_ELEMENTS(db_side); i++) {
    char *name = g_strconcat(KITH_HOME_DB_FILE, db_side[i], NULL);
    err = check_file(dir, name, R_OK | W_OK, why);
    if (err == KITH_ERR_NOT_FOUND) { /* made when needed */
      g_clear_pointer(why, g_free);
      err = KITH_OK;
    }
    g_free(name);
  }
  return err;
}

int kith_home_key_is_weak(const char *dir) {
  uint8_t buf[KEY_FILE_MAX];
  size_t len;
  int weak = 0;

  if (dir && read_key_file(dir, buf, &len) == KITH_OK &&
      is_protected(buf, len)) {
    const uint8_t *limits = buf + PW_MAGIC_LEN + crypto_pwhash_SALTBYTES;
    weak = get_le64(limits) < KITH_HOME_KDF_OPSLIMIT ||
           get_le64(limits + 8) < KITH_HOME_KDF_MEMLIMIT;
  }
  sodium_memzero(buf, sizeof buf);
  return weak;
}

kith_err kith_home_reseal_key(const char *dir, const char *pass,
                              size_t pass_len) {
  uint8_t key[KEY_LEN], file[PW_FILE_LEN];
  char *tmp_name = g_strconcat(KITH_HOME_KEY_FILE, ".new", NULL);
  char *tmp = kith_home_path(dir, tmp_name), *path = NULL;
  kith_err err =
      pass ? kith_home_load_key(dir, pass, pass_len, key) : KITH_ERR_ARG;

  if (err == KITH_OK)
    err = seal_key(key, pass, pass_len, KITH_HOME_KDF_OPSLIMIT,
                   KITH_HOME_KDF_MEMLIMIT, file);
  (void)unlink(tmp); /* a leftover of an interrupted re-seal */
  if (err == KITH_OK)
    err = write_key_file(dir, tmp_name, file, sizeof file);
  if (err == KITH_OK) {
    path = kith_home_path(dir, KITH_HOME_KEY_FILE);
    if (rename(tmp, path) != 0) {
      err = KITH_ERR_IO;
      (void)unlink(tmp);
    }
    sync_dir(dir);
  }
  sodium_memzero(key, sizeof key);
  sodium_memzero(file, sizeof file);
  g_free(path);
  g_free(tmp);
  g_free(tmp_name);
  return err;
}

int kith_home_key_is_protected(const char *dir) {
  uint8_t buf[KEY_FILE_MAX];
  size_t len;
  int prot = 0;

  if (dir && read_key_file(dir, buf, &len) == KITH_OK)
    prot = is_protected(buf, len);
  sodium_memzero(buf, sizeof buf);
  return prot;
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
