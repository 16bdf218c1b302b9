/* kith CLI: reading a passphrase from a file or from the terminal. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

#define PASSPHRASE_MAX 1024

static int from_file(const char *file, char **out, size_t *len) {
  gchar *data = NULL;
  gsize n = 0;
  GError *err = NULL;

  if (!g_file_get_contents(file, &data, &n, &err)) {
    int rc = cli_error("cannot read the passphrase file: %s", err->message);
    g_error_free(err);
    return rc;
  }
  /* One trailing newline is the file's, not the passphrase's. */
  if (n > 0 && data[n - 1] == '\n')
    n--;
  if (n > 0 && data[n - 1] == '\r')
    n--;
  if (n == 0 || n > PASSPHRASE_MAX) {
    sodium_memzero(data, n);
    g_free(data);
    return cli_error("the passphrase in %s must be 1 to %d bytes", file,
                     PASSPHRASE_MAX);
  }
  data[n] = 0;
  *out = data;
  *len = n;
  return CLI_OK;
}

/* While echo is off, a signal that ends the program must first give the
 * terminal its echo back: the handler restores the saved settings
 * (tcsetattr is async-signal-safe), then lets the signal do what it would
 * have done. Ctrl-Z is ignored meanwhile, so the shell never gets back a
 * terminal without echo. */
static const int PROMPT_SIGNALS[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static volatile sig_atomic_t tty_fd = -1;
static struct termios tty_saved;

static void on_prompt_signal(int sig) {
  if (tty_fd >= 0)
    (void)tcsetattr(tty_fd, TCSANOW, &tty_saved);
  signal(sig, SIG_DFL);
  raise(sig);
}

typedef struct prompt_guard {
  struct sigaction old[G_N_ELEMENTS(PROMPT_SIGNALS)];
  struct sigaction old_tstp;
} prompt_guard;

static void guard_on(prompt_guard *g, int fd, const struct termios *saved) {
  struct sigaction sa = {0};
  tty_saved = *saved;
  tty_fd = fd;
  sa.sa_handler = on_prompt_signal;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < G_N_ELEMENTS(PROMPT_SIGNALS); i++)
    sigaction(PROMPT_SIGNALS[i], &sa, &g->old[i]);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGTSTP, &sa, &g->old_tstp);
}

static void guard_off(prompt_guard *g) {
  for (size_t i = 0; i < G_N_ELEMENTS(PROMPT_SIGNALS); i++)
    sigaction(PROMPT_SIGNALS[i], &g->old[i], NULL);
  sigaction(SIGTSTP, &g->old_tstp, NULL);
  tty_fd = -1;
}

/* Reads one line from the terminal with echo off. */
static int from_tty(const char *prompt, char **out, size_t *len) {
  int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
  struct termios old, quiet;
  char *buf = g_malloc0(PASSPHRASE_MAX + 2);
  ssize_t n = 0;
  prompt_guard guard;

  if (fd < 0 || tcgetattr(fd, &old) != 0) {
    if (fd >= 0)
      close(fd);
    g_free(buf);
    return -1;
  }
  quiet = old;
  quiet.c_lflag &= ~(tcflag_t)ECHO;
  guard_on(&guard, fd, &old);
  (void)tcsetattr(fd, TCSAFLUSH, &quiet);
  if (write(fd, prompt, strlen(prompt)) < 0)
    n = -1;
  if (n == 0)
    n = read(fd, buf, PASSPHRASE_MAX + 1);
  (void)tcsetattr(fd, TCSAFLUSH, &old);
  guard_off(&guard);
  if (write(fd, "\n", 1) < 0)
    n = -1;
  close(fd);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    buf[--n] = 0;
  if (n <= 0 || n > PASSPHRASE_MAX) {
    sodium_memzero(buf, PASSPHRASE_MAX + 2);
    g_free(buf);
    return cli_error("no passphrase given (1 to %d bytes)", PASSPHRASE_MAX);
  }
  *out = buf;
  *len = (size_t)n;
  return CLI_OK;
}

int cli_read_passphrase(const char *file, const char *home, char **out,
                        size_t *len) {
  char *prompt;
  int rc;

  *out = NULL;
  *len = 0;
  if (file)
    return from_file(file, out, len);
  prompt = g_strdup_printf("passphrase for %s: ", home);
  rc = from_tty(prompt, out, len);
  g_free(prompt);
  if (rc < 0)
    rc = cli_error("%s is protected by a passphrase and there is no "
                   "terminal to ask for it; give --passphrase-file FILE",
                   home);
  return rc;
}

void cli_passphrase_free(char *pass, size_t len) {
  if (pass) {
    sodium_memzero(pass, len);
    g_free(pass);
  }
}
