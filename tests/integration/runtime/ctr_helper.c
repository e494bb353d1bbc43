/* A tiny static program run inside test containers. It prints what the
 * container looks like from inside, one line, then optionally waits for
 * SIGTERM and exits with the code given (bounded by alarm so it never lingers).
 *   helper            print and exit 0
 *   helper wait CODE  print, then exit CODE on SIGTERM (30 s at most)
 *   helper caps       print its privileges instead: capability sets and
 *                     no_new_privs from /proc/self/status, whether a /proc/sys
 *                     file opens for writing (never written) and whether
 *                     mount(2) is refused
 *   helper seccomp    print the seccomp mode (/proc/self/status) and what
 *                     unshare(CLONE_NEWUSER), keyctl(2) and mount(2) return:
 *                     "ok" or the errno's name
 *   helper whoami     print uid, gid, what stdin is (pipe, tty, other), the
 *                     seccomp mode, then /proc/self/cgroup on one line
 *   helper cat        copy stdin to stdout
 *   helper cat FILE.. print the files (stdout)
 *   helper exit CODE  print "exit CODE" on stderr and exit CODE
 *   helper env        print the cwd, uid and gid, then the environment, one
 *                     variable a line
 *   helper ns         print where /proc/self/ns/{ipc,mnt,net,pid,uts} point
 *   helper readlink P print where the symlink P points
 *   helper spam N     write N bytes on stdout: 'a'..'z' repeated
 *   helper sleepers   print "sleeping", fork a child, both sleep 60 s */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
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

static void statusField(const char* key, char* out, size_t size) {
  char line[256];
  size_t keyLen = strlen(key);
  FILE* f = fopen("/proc/self/status", "r");
  snprintf(out, size, "<missing>");
  if (!f) return;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, key, keyLen) == 0 && line[keyLen] == ':') {
      char* v = line + keyLen + 1;
      while (*v == ' ' || *v == '\t') ++v;
      v[strcspn(v, "\n")] = '\0';
      snprintf(out, size, "%s", v);
      break;
    }
  }
  fclose(f);
}

static const char* errName(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EROFS: return "EROFS";
    case ENOENT: return "ENOENT";
    case ENOSYS: return "ENOSYS";
    case EINVAL: return "EINVAL";
    default: return "other";
  }
}

static int printPrivileges(void) {
  char capEff[64], capBnd[64], capPrm[64], capInh[64], capAmb[64], nnp[16];
  statusField("CapEff", capEff, sizeof capEff);
  statusField("CapBnd", capBnd, sizeof capBnd);
  statusField("CapPrm", capPrm, sizeof capPrm);
  statusField("CapInh", capInh, sizeof capInh);
  statusField("CapAmb", capAmb, sizeof capAmb);
  statusField("NoNewPrivs", nnp, sizeof nnp);
  /* Only asks whether the open is allowed; nothing is ever written. */
  int fd = open("/proc/sys/kernel/core_pattern", O_WRONLY | O_CLOEXEC);
  int sysErr = fd < 0 ? errno : 0;
  if (fd >= 0) close(fd);
  /* Inside the container's own mount namespace: harmless even if allowed. */
  int mountErr = mount("tmpfs", "/dev/shm", "tmpfs", 0, NULL) == 0 ? 0 : errno;
  printf("capeff=%s capbnd=%s capprm=%s capinh=%s capamb=%s nnp=%s sys_write=%s mount=%s\n",
         capEff, capBnd, capPrm, capInh, capAmb, nnp, fd >= 0 ? "ok" : errName(sysErr),
         mountErr == 0 ? "ok" : errName(mountErr));
  fflush(stdout);
  return 0;
}

static const char* outcome(long rc) { return rc >= 0 ? "ok" : errName(errno); }

/* Each call is harmless when allowed: the new user namespace is this
 * process's alone, the keyring id is only read, and the tmpfs lands in the
 * container's own mount namespace. */
static int printSeccomp(void) {
  char mode[16];
  statusField("Seccomp", mode, sizeof mode);
  const char* unshareUser = outcome(unshare(CLONE_NEWUSER));
  const char* keyctl = outcome(syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */,
                                       -3 /* KEY_SPEC_SESSION_KEYRING */, 0));
  const char* mnt = outcome(mount("tmpfs", "/dev/shm", "tmpfs", 0, NULL));
  printf("seccomp=%s unshare_user=%s keyctl=%s mount=%s getpid=%s\n", mode, unshareUser, keyctl,
         mnt, outcome(getpid()));
  fflush(stdout);
  return 0;
}

static int printWhoami(void) {
  char mode[16];
  char cgroups[4096] = {0};
  struct stat st;
  const char* in = "other";
  if (isatty(0)) in = "tty";
  else if (fstat(0, &st) == 0 && S_ISFIFO(st.st_mode)) in = "pipe";
  statusField("Seccomp", mode, sizeof mode);
  FILE* f = fopen("/proc/self/cgroup", "r");
  if (f) {
    size_t n = fread(cgroups, 1, sizeof cgroups - 1, f);
    cgroups[n] = '\0';
    fclose(f);
  }
  for (char* c = cgroups; *c; ++c) {
    if (*c == '\n') *c = ';';
  }
  /* No trailing ';': the last line's newline. */
  size_t len = strlen(cgroups);
  if (len > 0 && cgroups[len - 1] == ';') cgroups[len - 1] = '\0';
  printf("uid=%d gid=%d stdin=%s seccomp=%s\ncgroup=%s\n", (int)getuid(), (int)getgid(), in, mode,
         cgroups);
  fflush(stdout);
  return 0;
}

static int copyStdin(void) {
  char buf[4096];
  ssize_t n;
  while ((n = read(0, buf, sizeof buf)) > 0) {
    if (write(1, buf, (size_t)n) != n) return 1;
  }
  return n < 0 ? 1 : 0;
}

static int catFiles(int argc, char** argv) {
  char buf[4096];
  for (int i = 2; i < argc; ++i) {
    int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      fprintf(stderr, "cat: %s: %s\n", argv[i], strerror(errno));
      return 1;
    }
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
      if (write(1, buf, (size_t)n) != n) return 1;
    }
    close(fd);
  }
  return 0;
}

extern char** environ;

static int printEnv(void) {
  char cwd[256];
  if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "?");
  printf("cwd=%s uid=%d gid=%d\n", cwd, (int)getuid(), (int)getgid());
  for (char** e = environ; *e; ++e) printf("%s\n", *e);
  fflush(stdout);
  return 0;
}

static int printLink(const char* path) {
  char target[512];
  ssize_t n = readlink(path, target, sizeof target - 1);
  if (n < 0) {
    printf("%s -> <%s>\n", path, errName(errno));
    return 1;
  }
  target[n] = '\0';
  printf("%s -> %s\n", path, target);
  return 0;
}

static int printNamespaces(void) {
  static const char* const kNs[] = {"ipc", "mnt", "net", "pid", "uts"};
  int rc = 0;
  for (size_t i = 0; i < sizeof kNs / sizeof kNs[0]; ++i) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/ns/%s", kNs[i]);
    rc |= printLink(path);
  }
  fflush(stdout);
  return rc;
}

static int spam(long n) {
  char buf[4096];
  long i = 0;
  while (i < n) {
    size_t k = 0;
    for (; k < sizeof buf && i < n; ++k, ++i) buf[k] = (char)('a' + i % 26);
    if (write(1, buf, k) != (ssize_t)k) return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 2 && strcmp(argv[1], "caps") == 0) return printPrivileges();
  if (argc >= 2 && strcmp(argv[1], "whoami") == 0) return printWhoami();
  if (argc >= 3 && strcmp(argv[1], "cat") == 0) return catFiles(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "cat") == 0) return copyStdin();
  if (argc >= 3 && strcmp(argv[1], "exit") == 0) {
    fprintf(stderr, "exit %s\n", argv[2]);
    return atoi(argv[2]);
  }
  if (argc >= 2 && strcmp(argv[1], "env") == 0) return printEnv();
  if (argc >= 2 && strcmp(argv[1], "ns") == 0) return printNamespaces();
  if (argc >= 3 && strcmp(argv[1], "readlink") == 0) return printLink(argv[2]);
  if (argc >= 3 && strcmp(argv[1], "spam") == 0) return spam(atol(argv[2]));
  if (argc >= 2 && strcmp(argv[1], "sleepers") == 0) {
    printf("sleeping\n");
    fflush(stdout);
    if (fork() < 0) return 1;
    sleep(60);
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "seccomp") == 0) return printSeccomp();
  // "wait": the handler is in place before the line a test waits for is
  // printed. As pid 1 of its namespace, the helper ignores a SIGTERM that
  // comes before it: a test that signalled right after reading the line
  // then waited in vain (seen under ASan on a loaded machine).
  const int waiting = argc >= 3 && strcmp(argv[1], "wait") == 0;
  if (waiting) {
    exitCode = atoi(argv[2]);
    signal(SIGTERM, onTerm);
  }
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
  if (waiting) {
    alarm(30);
    for (;;) pause();
  }
  return 0;
}
