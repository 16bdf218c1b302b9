/* kith: the data directory ("home") on local disk.
 *
 * Layout: DIR (mode 0700) holds storage.key (mode 0600: the 32-byte storage
 * key, or that key sealed under a passphrase),
 * kith.db (the SQLite store, see store.h), control.sock (the node's control
 * socket) and node.lock (held with flock while a node runs). */
#ifndef KITH_HOME_H
#define KITH_HOME_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define KITH_HOME_KEY_FILE "storage.key"
#define KITH_HOME_DB_FILE "kith.db"
#define KITH_HOME_SOCKET_FILE "control.sock"
#define KITH_HOME_LOCK_FILE "node.lock"

/* Creates dir (and parents) if missing and sets it to mode 0700.
 * KITH_ERR_IO with errno kept. */
KITH_MUST kith_err kith_home_prepare(const char *dir);
/* Path of a file in the home, g_malloc'ed. */
char *kith_home_path(const char *dir, const char *file);
/* Argon2id limits of new passphrase-protected key files: libsodium's
 * MODERATE (3 passes over 256 MiB; about a second on one core). The limits
 * are recorded in each file, so files made with other limits (homes made
 * before, with INTERACTIVE limits: 2 passes over 64 MiB) still open; see
 * kith_home_key_is_weak. */
#define KITH_HOME_KDF_OPSLIMIT 3ull
#define KITH_HOME_KDF_MEMLIMIT 268435456ull

/* Writes a new random storage key (fails with KITH_ERR_EXISTS if one
 * exists). With pass == NULL the file holds the key itself (mode 0600);
 * otherwise it holds the key sealed under Argon2id(pass) (crypto_pwhash,
 * KITH_HOME_KDF_* limits, random salt; format in docs/protocol.md). */
KITH_MUST kith_err kith_home_create_key(const char *dir, const char *pass,
                                        size_t pass_len, uint8_t key[32]);
/* The same with chosen Argon2id limits (within the bounds a file may
 * carry, else KITH_ERR_ARG): for tests that need the files of older
 * homes. */
KITH_MUST kith_err kith_home_create_key_limits(const char *dir,
                                               const char *pass,
                                               size_t pass_len, uint64_t ops,
                                               uint64_t mem, uint8_t key[32]);
/* 1 if the home's key file is protected with Argon2id limits below
 * KITH_HOME_KDF_* (a home made before they were raised), else 0. */
int kith_home_key_is_weak(const char *dir);
/* Re-seals a protected key file under the current limits (a new salt and
 * nonce; the storage key stays), replacing it atomically. pass must open
 * it (else KITH_ERR_CRYPTO and nothing changes). */
KITH_MUST kith_err kith_home_reseal_key(const char *dir, const char *pass,
                                        size_t pass_len);
/* Reads the storage key. KITH_ERR_NOT_FOUND if there is none (no
 * identity: run kith init), KITH_ERR_FORBIDDEN if the file is protected and
 * pass is NULL, KITH_ERR_CRYPTO for a wrong passphrase, KITH_ERR_IO if
 * unreadable or malformed. pass is ignored for an unprotected file. */
KITH_MUST kith_err kith_home_load_key(const char *dir, const char *pass,
                                      size_t pass_len, uint8_t key[32]);
/* Checks the home before a node opens it, as ssh checks ~/.ssh: the home
 * exists, is a directory of this user that it can write, and neither it
 * nor storage.key nor kith.db (nor its -wal and -shm files) is open to
 * other users; storage.key and kith.db can be read. Returns KITH_OK, or
 * sets *why to one line (g_malloc'ed) that names the file, the cause and
 * what to do, and returns:
 *   KITH_ERR_NOT_FOUND  no home, or no storage.key: no identity yet
 *   KITH_ERR_FORBIDDEN  open to other users (*why gives the chmod to run)
 *   KITH_ERR_IO         not a directory or file, another user's, the home
 *                       not writable, a file unreadable */
KITH_MUST kith_err kith_home_check(const char *dir, char **why);
/* 1 if the home's key file is protected by a passphrase, else 0. */
int kith_home_key_is_protected(const char *dir);
/* Takes the node lock (non-blocking). KITH_ERR_BUSY if another process
 * holds it. *fd stays open while the lock is held; close it to release. */
KITH_MUST kith_err kith_home_lock(const char *dir, int *fd);

#endif
