/* A tiny static program run inside test containers. It prints what the
 * container looks like from inside, one line, then optionally waits for
 * SIGTERM and exits with the code given (bounded by alarm so it never lingers).
 *   helper            print and exit 0
 *   helper wait CODE  print, then exit CODE on SIGTERM (30 s at most) */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int exitCode = 0;

static void onTerm(int sig) {
  (void)sig;
  _exit(exitCode);
}

static void readFirstLine(const char* path, char* out, size_t size) {
  FILE* f = fopen(path, "r");
  out[0] = '\0';
  if (!f) {
    snprintf(out, size, "<missing>");
    return;
  }
  if (fgets(out, (int)size, f)) out[strcspn(out, "\n")] = '\0';
  fclose(f);
}

int main(int argc, char** argv) {
  char host[256] = {0};
  char etcHostname[256];
  char data[256];
  char cwd[256] = {0};
  gethostname(host, sizeof host - 1);
  readFirstLine("/etc/hostname", etcHostname, sizeof etcHostname);
  readFirstLine("/data/msg", data, sizeof data);
  int fd = open("/data/msg", O_WRONLY);
  int readOnly = fd < 0 && errno == EROFS;
  if (fd >= 0) close(fd);
  if (!getcwd(cwd, sizeof cwd - 1)) strcpy(cwd, "?");
  printf(
      "pid=%d hostname=%s etc_hostname=%s devnull=%d proc1=%d data=%s data_ro=%d cwd=%s uid=%d "
      "env_foo=%s\n",
      (int)getpid(), host, etcHostname, access("/dev/null", W_OK) == 0,
      access("/proc/1/stat", R_OK) == 0, data, readOnly, cwd, (int)getuid(),
      getenv("FOO") ? getenv("FOO") : "");
  fflush(stdout);
  if (argc >= 3 && strcmp(argv[1], "wait") == 0) {
    exitCode = atoi(argv[2]);
    signal(SIGTERM, onTerm);
    alarm(30);
    for (;;) pause();
  }
  return 0;
}
