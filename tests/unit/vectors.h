/* Unit tests: reading a known-answer vector file of tests/vectors/, lines
 * "key value" (values are hex), '#' starting a comment line. Include after
 * cmocka.h. */
#ifndef KITH_TEST_VECTORS_H
#define KITH_TEST_VECTORS_H

#include <glib.h>
#include <string.h>

#ifndef KITH_VECTORS_DIR
#define KITH_VECTORS_DIR "tests/vectors"
#endif

/* key -> value of tests/vectors/name; both borrow from *text (g_free it,
 * after g_hash_table_destroy). */
static inline GHashTable *vectors_read(const char *name, gchar **text) {
  gchar *path = g_build_filename(KITH_VECTORS_DIR, name, NULL);
  assert_true(g_file_get_contents(path, text, NULL, NULL));
  g_free(path);
  GHashTable *kv = g_hash_table_new(g_str_hash, g_str_equal);
  for (char *l = strtok(*text, "\n"); l != NULL; l = strtok(NULL, "\n")) {
    char *sp = strchr(l, ' ');
    if (*l == '#' || sp == NULL)
      continue;
    *sp = '\0';
    g_hash_table_insert(kv, l, sp + 1);
  }
  return kv;
}

#endif
