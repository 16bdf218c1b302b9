/* kith init: create the node's identity. The one command that writes the
 * home itself; every other one asks the running node (kith id reads the
 * home itself when no node runs). */
#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <unistd.h>

#include "../core/codec.h"
#include "../core/group.h"
#include "../core/home.h"
#include "../core/ident.h"
#include "../core/store.h"
#include "out.h"

/* A name others will see: 1 to KITH_NAME_MAX bytes of printable UTF-8. */
static int name_is_valid(const char *name) {
  size_t len = strlen(name);
  if (len == 0 || len > KITH_NAME_MAX || !g_utf8_validate(name, -1, NULL))
    return 0;
  for (const char *p = name; *p; p = g_utf8_next_char(p))
    if (!g_unichar_isprint(g_utf8_get_char(p)))
      return 0;
  return 1;
}

/* Generates the identity and stores it under the new storage key. */
static kith_err store_identity(const char *db, const uint8_t key[32],
                               const char *name,
                               char id_text[KITH_ID_TEXT_LEN + 1]) {
  kith_store *s = NULL;
  kith_ident id = {0};
  uint8_t seed[KITH_SEED_LEN];
  kith_err e = kith_store_open(db, key, &s);
  if (e == KITH_OK)
    e = kith_ident_generate(&id);
  if (e == KITH_OK) {
    kith_ident_seed(&id, seed);
    e = kith_store_put_identity(s, seed, name);
    kith_id_to_text(id.pk, id_text);
  }
  sodium_memzero(seed, sizeof seed);
  kith_ident_clear(&id);
  if (s != NULL)
    kith_store_close(s);
  return e;
}

static int create(const cli_opts *o, const char *name, const char *pass,
                  size_t pass_len, char id_text[KITH_ID_TEXT_LEN + 1]) {
  uint8_t key[32];
  if (kith_home_prepare(o->home) != KITH_OK)
    return cli_error("cannot create the home %s: %s", o->home,
                     g_strerror(errno));
  kith_err e = kith_home_create_key(o->home, pass, pass_len, key);
  if (e == KITH_ERR_EXISTS)
    return cli_error("%s already has an identity", o->home);
  if (e != KITH_OK)
    return cli_error("cannot write the storage key in %s: %s", o->home,
                     kith_strerror(e));
  char *db = kith_home_path(o->home, KITH_HOME_DB_FILE);
  e = store_identity(db, key, name, id_text);
  sodium_memzero(key, sizeof key);
  int rc = CLI_OK;
  if (e != KITH_OK) {
    /* Without the key a later init can start afresh. */
    char *kf = kith_home_path(o->home, KITH_HOME_KEY_FILE);
    unlink(kf);
    g_free(kf);
    rc = cli_error("cannot store the identity in %s: %s", db, kith_strerror(e));
  }
  g_free(db);
  return rc;
}

static void print_identity(const cli_opts *o, const char *id_text,
                           const char *name) {
  kith_pack p;
  kith_pack_init(&p);
  if (msgpack_pack_map(&p.pk, 2) != 0)
    p.failed = 1;
  kith_pack_cstr(&p, "node_id");
  kith_pack_cstr(&p, id_text);
  kith_pack_cstr(&p, "name");
  kith_pack_cstr(&p, name);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  if (!p.failed && kith_codec_unpack_loose((const uint8_t *)p.sb.data,
                                           p.sb.size, &u) == KITH_OK)
    cli_out_map(o, &u.data, CLI_ID_FIELDS);
  msgpack_unpacked_destroy(&u);
  kith_pack_clear(&p);
}

/* kith id without a node: the identity from the store, opened with the
 * storage key (asking for the passphrase if the home has one). */
int cli_id_from_home(const cli_opts *o, const char *pass_file) {
  char *pass = NULL, *name = NULL;
  size_t pass_len = 0;
  uint8_t key[32], seed[KITH_SEED_LEN];
  kith_store *s = NULL;
  kith_ident id = {0};
  char id_text[KITH_ID_TEXT_LEN + 1];
  int rc = CLI_OK;
  if (pass_file || kith_home_key_is_protected(o->home))
    rc = cli_read_passphrase(pass_file, o->home, &pass, &pass_len);
  if (rc != CLI_OK)
    return rc;
  kith_err e = kith_home_load_key(o->home, pass, pass_len, key);
  cli_passphrase_free(pass, pass_len);
  if (e == KITH_ERR_NOT_FOUND) {
    char *hint = cli_home_hint(o);
    rc = cli_error("%s has no identity; create one with: kith init%s", o->home,
                   hint);
    g_free(hint);
    return rc;
  }
  if (e == KITH_ERR_CRYPTO)
    return cli_error("wrong passphrase for %s", o->home);
  char *db = kith_home_path(o->home, KITH_HOME_DB_FILE);
  if (e == KITH_OK)
    e = kith_store_open(db, key, &s);
  sodium_memzero(key, sizeof key);
  if (e == KITH_OK)
    e = kith_store_get_identity(s, seed, &name);
  if (e == KITH_OK)
    e = kith_ident_from_seed(&id, seed);
  sodium_memzero(seed, sizeof seed);
  if (e == KITH_OK) {
    kith_id_to_text(id.pk, id_text);
    print_identity(o, id_text, name);
  } else {
    rc = cli_error("cannot read the identity in %s: %s", db, kith_strerror(e));
  }
  kith_ident_clear(&id);
  if (s != NULL)
    kith_store_close(s);
  g_free(name);
  g_free(db);
  return rc;
}

int cli_cmd_init(cli_opts *o, int argc, char **argv) {
  char *name = NULL, *pass_file = NULL, *pass = NULL;
  size_t pass_len = 0;
  const GOptionEntry entries[] = {
      {"name", 0, 0, G_OPTION_ARG_STRING, &name,
       "Your name as others see it (default: your login name)", "NAME"},
      {"passphrase-file", 0, 0, G_OPTION_ARG_FILENAME, &pass_file,
       "Protect the home with the passphrase in FILE (Argon2id); kith node "
       "then asks for it",
       "FILE"},
      G_OPTION_ENTRY_NULL};
  int rc = cli_parse(o, "init", NULL, 0,
                     "Create this node's identity in the home; refuses if "
                     "one exists.",
                     entries, &argc, &argv);
  if (rc == CLI_OK && name == NULL)
    name = g_strdup(g_get_user_name());
  if (rc == CLI_OK && !name_is_valid(name))
    rc = cli_usage("init", "a name is 1 to %d bytes of printable text",
                   KITH_NAME_MAX);
  if (rc == CLI_OK && pass_file)
    rc = cli_read_passphrase(pass_file, o->home, &pass, &pass_len);
  char id_text[KITH_ID_TEXT_LEN + 1];
  if (rc == CLI_OK)
    rc = create(o, name, pass, pass_len, id_text);
  cli_passphrase_free(pass, pass_len);
  g_free(pass_file);
  if (rc == CLI_OK)
    print_identity(o, id_text, name);
  g_free(name);
  return rc;
}
