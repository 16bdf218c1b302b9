/* Unit tests for core/home.c: directory and key file modes, the storage
 * key file, and the node lock. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <glib.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/home.h"

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  return remove(path);
}

static void rm_rf(const char *dir) {
  assert_int_equal(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static int setup(void **state) {
  char *tmp = g_dir_make_tmp("kith-home-XXXXXX", NULL);
  if (!tmp)
    return -1;
  *state = tmp;
  return 0;
}

static int teardown(void **state) {
  rm_rf(*state);
  g_free(*state);
  return 0;
}

static mode_t mode_of(const char *path) {
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  return st.st_mode & 07777;
}

static void prepare_creates_dir_0700(void **state) {
  char *dir = g_build_filename(*state, "a", "b", "home", NULL);
  assert_int_equal(kith_home_prepare(dir), KITH_OK);
  assert_true(g_file_test(dir, G_FILE_TEST_IS_DIR));
  assert_int_equal(mode_of(dir), 0700);
  /* Preparing again is harmless. */
  assert_int_equal(kith_home_prepare(dir), KITH_OK);
  assert_int_equal(mode_of(dir), 0700);
  g_free(dir);
}

static void prepare_fixes_0755_dir(void **state) {
  char *dir = g_build_filename(*state, "loose", NULL);
  assert_int_equal(mkdir(dir, 0755), 0);
  assert_int_equal(chmod(dir, 0755), 0);
  assert_int_equal(kith_home_prepare(dir), KITH_OK);
  assert_int_equal(mode_of(dir), 0700);
  g_free(dir);
}

static void prepare_refuses_file(void **state) {
  char *path = g_build_filename(*state, "plain", NULL);
  assert_true(g_file_set_contents(path, "x", 1, NULL));
  assert_int_equal(kith_home_prepare(path), KITH_ERR_IO);
  assert_int_equal(kith_home_prepare(""), KITH_ERR_ARG);
  g_free(path);
}

static void path_joins(void **state) {
  char *p = kith_home_path("/x/home", KITH_HOME_DB_FILE);
  assert_string_equal(p, "/x/home/kith.db");
  g_free(p);
}

static void create_key_0600_and_load(void **state) {
  uint8_t key[32], loaded[32], zero[32] = {0};
  assert_int_equal(kith_home_create_key(*state, NULL, 0, key), KITH_OK);
  assert_memory_not_equal(key, zero, 32);
  char *path = kith_home_path(*state, KITH_HOME_KEY_FILE);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  assert_int_equal(st.st_size, 32);
  assert_int_equal(kith_home_load_key(*state, NULL, 0, loaded), KITH_OK);
  assert_memory_equal(key, loaded, 32);
  g_free(path);
}

static void create_key_twice_exists(void **state) {
  uint8_t key[32], again[32], loaded[32];
  assert_int_equal(kith_home_create_key(*state, NULL, 0, key), KITH_OK);
  assert_int_equal(kith_home_create_key(*state, NULL, 0, again),
                   KITH_ERR_EXISTS);
  /* The first key is untouched. */
  assert_int_equal(kith_home_load_key(*state, NULL, 0, loaded), KITH_OK);
  assert_memory_equal(key, loaded, 32);
}

static void load_key_not_found(void **state) {
  uint8_t key[32];
  assert_int_equal(kith_home_load_key(*state, NULL, 0, key),
                   KITH_ERR_NOT_FOUND);
}

static void load_key_wrong_size(void **state) {
  uint8_t key[32];
  char *path = kith_home_path(*state, KITH_HOME_KEY_FILE);
  assert_true(g_file_set_contents(path, "short", 5, NULL));
  assert_int_equal(kith_home_load_key(*state, NULL, 0, key), KITH_ERR_IO);
  char big[33];
  memset(big, 'k', sizeof big);
  assert_true(g_file_set_contents(path, big, sizeof big, NULL));
  assert_int_equal(kith_home_load_key(*state, NULL, 0, key), KITH_ERR_IO);
  g_free(path);
}

static void passphrase_protects_key(void **state) {
  uint8_t key[32], loaded[32];
  const char *pass = "correct horse battery staple";
  assert_int_equal(kith_home_create_key(*state, pass, strlen(pass), key),
                   KITH_OK);
  assert_int_equal(kith_home_key_is_protected(*state), 1);
  /* The key itself is not in the file. */
  char *path = kith_home_path(*state, KITH_HOME_KEY_FILE);
  gchar *file;
  gsize len;
  assert_true(g_file_get_contents(path, &file, &len, NULL));
  assert_null(memmem(file, len, key, 32));
  g_free(file);
  g_free(path);
  assert_int_equal(kith_home_load_key(*state, NULL, 0, loaded),
                   KITH_ERR_FORBIDDEN);
  assert_int_equal(kith_home_load_key(*state, "wrong", 5, loaded),
                   KITH_ERR_CRYPTO);
  assert_int_equal(kith_home_load_key(*state, pass, strlen(pass), loaded),
                   KITH_OK);
  assert_memory_equal(key, loaded, 32);
}

/* Offset of the Argon2id limits in a protected key file: magic, salt. */
#define LIMITS_AT (8 + crypto_pwhash_SALTBYTES)

static void put_le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

/* Writes a protected key file, then overwrites its stored Argon2id limits
 * (as an attacker with write access to the file could) and loads it. */
static kith_err load_with_limits(const char *dir, uint64_t ops, uint64_t mem) {
  uint8_t key[32], loaded[32];
  const char *pass = "pass";
  char *path = kith_home_path(dir, KITH_HOME_KEY_FILE);
  (void)unlink(path);
  assert_int_equal(
      kith_home_create_key_limits(dir, pass, strlen(pass),
                                  crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                  crypto_pwhash_MEMLIMIT_INTERACTIVE, key),
      KITH_OK);
  gchar *file;
  gsize len;
  assert_true(g_file_get_contents(path, &file, &len, NULL));
  assert_true(len > LIMITS_AT + 16);
  put_le64((uint8_t *)file + LIMITS_AT, ops);
  put_le64((uint8_t *)file + LIMITS_AT + 8, mem);
  assert_true(g_file_set_contents(path, file, (gssize)len, NULL));
  g_free(file);
  g_free(path);
  return kith_home_load_key(dir, pass, strlen(pass), loaded);
}

static void tampered_kdf_limits_are_refused_quickly(void **state) {
  uint64_t ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
  uint64_t mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
  gint64 start = g_get_monotonic_time();
  /* Unauthenticated limits are checked before any hashing is done. */
  assert_int_equal(load_with_limits(*state, ops, 1ull << 32), KITH_ERR_IO);
  assert_int_equal(load_with_limits(*state, ops, (1ull << 30) + 1),
                   KITH_ERR_IO);
  assert_int_equal(load_with_limits(*state, ops, UINT64_MAX), KITH_ERR_IO);
  assert_int_equal(load_with_limits(*state, ops, 0), KITH_ERR_IO);
  assert_int_equal(load_with_limits(*state, 1000000, mem), KITH_ERR_IO);
  assert_int_equal(load_with_limits(*state, 0, mem), KITH_ERR_IO);
  /* Each bound alone would allow this pair; their product is too much. */
  assert_int_equal(load_with_limits(*state, 32, 1ull << 30), KITH_ERR_IO);
  /* 7 key files written at interactive cost, none read: well under 5 s. */
  assert_true(g_get_monotonic_time() - start < 5 * G_USEC_PER_SEC);
  /* Within the bounds, changed limits derive another key: the file does
   * not open (so nobody can quietly weaken it). */
  assert_int_equal(load_with_limits(*state, ops + 1, mem), KITH_ERR_CRYPTO);
}

/* The Argon2id limits a file records, read back. */
static void limits_of(const char *dir, uint64_t *ops, uint64_t *mem) {
  char *path = kith_home_path(dir, KITH_HOME_KEY_FILE);
  gchar *file;
  gsize len;
  assert_true(g_file_get_contents(path, &file, &len, NULL));
  assert_true(len > LIMITS_AT + 16);
  *ops = *mem = 0;
  for (int i = 7; i >= 0; i--) {
    *ops = (*ops << 8) | (uint8_t)file[LIMITS_AT + i];
    *mem = (*mem << 8) | (uint8_t)file[LIMITS_AT + 8 + i];
  }
  g_free(file);
  g_free(path);
}

static void new_key_files_use_moderate_limits(void **state) {
  uint8_t key[32];
  uint64_t ops, mem;
  assert_int_equal(kith_home_create_key(*state, "pass", 4, key), KITH_OK);
  limits_of(*state, &ops, &mem);
  assert_int_equal(ops, crypto_pwhash_argon2id_OPSLIMIT_MODERATE);
  assert_int_equal(mem, crypto_pwhash_argon2id_MEMLIMIT_MODERATE);
  assert_true(ops > crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE);
  assert_true(mem > crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE);
  assert_int_equal(kith_home_key_is_weak(*state), 0);
}

/* A home made before (INTERACTIVE limits) still opens, is seen to be weak,
 * and is re-sealed under the current limits with the same storage key. */
static void old_interactive_key_opens_and_is_resealed(void **state) {
  uint8_t key[32], loaded[32];
  uint64_t ops, mem;
  const char *pass = "an older passphrase";
  assert_int_equal(
      kith_home_create_key_limits(*state, pass, strlen(pass),
                                  crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                  crypto_pwhash_MEMLIMIT_INTERACTIVE, key),
      KITH_OK);
  assert_int_equal(kith_home_key_is_weak(*state), 1);
  assert_int_equal(kith_home_load_key(*state, pass, strlen(pass), loaded),
                   KITH_OK);
  assert_memory_equal(key, loaded, 32);
  assert_int_equal(kith_home_reseal_key(*state, "wrong", 5), KITH_ERR_CRYPTO);
  assert_int_equal(kith_home_key_is_weak(*state), 1);
  assert_int_equal(kith_home_reseal_key(*state, pass, strlen(pass)), KITH_OK);
  assert_int_equal(kith_home_key_is_weak(*state), 0);
  limits_of(*state, &ops, &mem);
  assert_int_equal(ops, KITH_HOME_KDF_OPSLIMIT);
  assert_int_equal(mem, KITH_HOME_KDF_MEMLIMIT);
  memset(loaded, 0, sizeof loaded);
  assert_int_equal(kith_home_load_key(*state, pass, strlen(pass), loaded),
                   KITH_OK);
  assert_memory_equal(key, loaded, 32);
  char *path = kith_home_path(*state, KITH_HOME_KEY_FILE);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  g_free(path);
}

static void plain_key_is_not_protected(void **state) {
  uint8_t key[32];
  assert_int_equal(kith_home_create_key(*state, NULL, 0, key), KITH_OK);
  assert_int_equal(kith_home_key_is_protected(*state), 0);
}

/* A home as kith init leaves it: 0700, key and database 0600. */
static char *made_home(const char *parent) {
  uint8_t key[32];
  char *dir = g_build_filename(parent, "home", NULL);
  assert_int_equal(kith_home_prepare(dir), KITH_OK);
  assert_int_equal(kith_home_create_key(dir, NULL, 0, key), KITH_OK);
  char *db = kith_home_path(dir, KITH_HOME_DB_FILE);
  assert_true(g_file_set_contents(db, "", 0, NULL));
  assert_int_equal(chmod(db, 0600), 0);
  g_free(db);
  return dir;
}

/* kith_home_check's verdict, and that its line names `what`. */
static void expect_home_check(const char *dir, kith_err want,
                              const char *what) {
  char *why = NULL;
  assert_int_equal(kith_home_check(dir, &why), want);
  if (want == KITH_OK) {
    assert_null(why);
    return;
  }
  assert_non_null(why);
  assert_non_null(strstr(why, what));
  assert_null(strchr(why, '\n'));
  g_free(why);
}

static void check_accepts_a_private_home(void **state) {
  char *dir = made_home(*state);
  expect_home_check(dir, KITH_OK, NULL);
  g_free(dir);
}

static void check_refuses_what_others_can_read_with_the_chmod(void **state) {
  char *dir = made_home(*state);
  char *key = kith_home_path(dir, KITH_HOME_KEY_FILE);
  char *db = kith_home_path(dir, KITH_HOME_DB_FILE);
  char *wal = g_strconcat(db, "-wal", NULL);
  char *want;

  assert_int_equal(chmod(dir, 0755), 0);
  want = g_strdup_printf("chmod 700 %s", dir);
  expect_home_check(dir, KITH_ERR_FORBIDDEN, want);
  g_free(want);
  assert_int_equal(chmod(dir, 0700), 0);

  assert_int_equal(chmod(key, 0644), 0);
  want = g_strdup_printf("chmod 600 %s", key);
  expect_home_check(dir, KITH_ERR_FORBIDDEN, want);
  g_free(want);
  assert_int_equal(chmod(key, 0600), 0);

  assert_int_equal(chmod(db, 0640), 0);
  want = g_strdup_printf("chmod 600 %s", db);
  expect_home_check(dir, KITH_ERR_FORBIDDEN, want);
  g_free(want);
  assert_int_equal(chmod(db, 0600), 0);

  assert_true(g_file_set_contents(wal, "", 0, NULL));
  assert_int_equal(chmod(wal, 0604), 0);
  expect_home_check(dir, KITH_ERR_FORBIDDEN, "-wal");
  assert_int_equal(chmod(wal, 0600), 0);
  expect_home_check(dir, KITH_OK, NULL);
  g_free(wal);
  g_free(db);
  g_free(key);
  g_free(dir);
}

static void check_names_a_missing_home_or_identity(void **state) {
  char *dir = g_build_filename(*state, "nowhere", NULL);
  expect_home_check(dir, KITH_ERR_NOT_FOUND, "kith init");
  assert_int_equal(kith_home_prepare(dir), KITH_OK);
  expect_home_check(dir, KITH_ERR_NOT_FOUND, "has no identity");
  g_free(dir);
  dir = made_home(*state);
  char *db = kith_home_path(dir, KITH_HOME_DB_FILE);
  assert_int_equal(unlink(db), 0);
  expect_home_check(dir, KITH_ERR_IO, db); /* a key without its store */
  g_free(db);
  g_free(dir);
}

static void check_refuses_a_file_as_home_and_a_dir_as_key(void **state) {
  char *file = g_build_filename(*state, "file", NULL);
  assert_true(g_file_set_contents(file, "x", 1, NULL));
  assert_int_equal(chmod(file, 0600), 0);
  expect_home_check(file, KITH_ERR_IO, "not a directory");
  g_free(file);
  char *dir = made_home(*state);
  char *key = kith_home_path(dir, KITH_HOME_KEY_FILE);
  assert_int_equal(unlink(key), 0);
  assert_int_equal(mkdir(key, 0700), 0);
  expect_home_check(dir, KITH_ERR_IO, "not a regular file");
  g_free(key);
  g_free(dir);
}

static void lock_twice_busy(void **state) {
  int fd1 = -1, fd2 = -1, fd3 = -1;
  assert_int_equal(kith_home_lock(*state, &fd1), KITH_OK);
  assert_true(fd1 >= 0);
  assert_true(fcntl(fd1, F_GETFD) & FD_CLOEXEC);
  char *path = kith_home_path(*state, KITH_HOME_LOCK_FILE);
  assert_int_equal(mode_of(path), 0600);
  g_free(path);
  /* A second open file description is refused even in this process. */
  assert_int_equal(kith_home_lock(*state, &fd2), KITH_ERR_BUSY);
  assert_int_equal(fd2, -1);
  /* Closing releases the lock. */
  assert_int_equal(close(fd1), 0);
  assert_int_equal(kith_home_lock(*state, &fd3), KITH_OK);
  assert_int_equal(close(fd3), 0);
}

int main(void) {
  if (sodium_init() < 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(prepare_creates_dir_0700, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(prepare_fixes_0755_dir, setup, teardown),
      cmocka_unit_test_setup_teardown(prepare_refuses_file, setup, teardown),
      cmocka_unit_test(path_joins),
      cmocka_unit_test_setup_teardown(create_key_0600_and_load, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(create_key_twice_exists, setup, teardown),
      cmocka_unit_test_setup_teardown(load_key_not_found, setup, teardown),
      cmocka_unit_test_setup_teardown(load_key_wrong_size, setup, teardown),
      cmocka_unit_test_setup_teardown(passphrase_protects_key, setup, teardown),
      cmocka_unit_test_setup_teardown(new_key_files_use_moderate_limits, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(old_interactive_key_opens_and_is_resealed,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(plain_key_is_not_protected, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(tampered_kdf_limits_are_refused_quickly,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(lock_twice_busy, setup, teardown),
      cmocka_unit_test_setup_teardown(check_accepts_a_private_home, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(
          check_refuses_what_others_can_read_with_the_chmod, setup, teardown),
      cmocka_unit_test_setup_teardown(check_names_a_missing_home_or_identity,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          check_refuses_a_file_as_home_and_a_dir_as_key, setup, teardown),
  };
  int failed = cmocka_run_group_tests_name("home", tests, NULL, NULL);
  return failed > 255 ? 255 : failed;
}
