/*
 * hello: the getstartedlab web app. Answers every HTTP request with
 *   Hello World! Hostname: <hostname>
 * (NAME from the environment replaces "World", as in docker's get-started
 * app). Single-threaded poll() loop, HTTP/1.1 keep-alive, exits 0 on SIGTERM
 * so a replica stops at once instead of waiting for SIGKILL. Built static so
 * the image needs no libc: FROM scratch.
 *
 * usage: hello [PORT]          serve on PORT (default 80)
 *        hello --hostname    print the hostname and exit (for `skiff container exec`)
 *        hello --healthy-unless PATH
 *                            a health check: exit 1 when PATH exists, else 0
 *        hello --exit N      exit N at once (a broken release, for update tests)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 1024
#define BUF_SIZE 8192

struct conn {
  int fd;
  size_t len;
  char buf[BUF_SIZE];
};

static volatile sig_atomic_t stopping = 0;
static void on_term(int sig) {
  (void)sig;
  stopping = 1;
}

static struct conn conns[MAX_CONNS];
static struct pollfd pfds[MAX_CONNS + 1];

static int write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Answers every complete request in c->buf; returns -1 to close. */
static int serve(struct conn* c, const char* body, size_t body_len) {
  for (;;) {
    char* end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (end == NULL) return c->len == BUF_SIZE ? -1 : 0;
    size_t req_len = (size_t)(end - c->buf) + 4;
    /* HTTP/1.0 and "Connection: close" end the connection after the answer. */
    int keep = memmem(c->buf, req_len, "HTTP/1.1", 8) != NULL;
    for (char* p = c->buf; p + 17 <= c->buf + req_len; p++) {
      if (strncasecmp(p, "connection: close", 17) == 0) keep = 0;
    }
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                      "Content-Length: %zu\r\nConnection: %s\r\n\r\n",
                      body_len, keep ? "keep-alive" : "close");
    if (write_all(c->fd, head, (size_t)hn) < 0 || write_all(c->fd, body, body_len) < 0) return -1;
    memmove(c->buf, c->buf + req_len, c->len - req_len);
    c->len -= req_len;
    if (!keep) return -1;
  }
}

int main(int argc, char** argv) {
  char host[256] = "unknown";
  gethostname(host, sizeof host - 1);
  if (argc > 1 && strcmp(argv[1], "--hostname") == 0) {
    printf("%s\n", host);
    return 0;
  }
  if (argc > 2 && strcmp(argv[1], "--healthy-unless") == 0) {
    if (access(argv[2], F_OK) == 0) {
      printf("unhealthy: %s exists\n", argv[2]);
      return 1;
    }
    return 0;
  }
  if (argc > 2 && strcmp(argv[1], "--exit") == 0) return atoi(argv[2]);
  int port = argc > 1 ? atoi(argv[1]) : 80;
  const char* name = getenv("NAME");
  char body[512];
  int body_len = snprintf(body, sizeof body, "Hello %s! Hostname: %s\n", name && *name ? name : "World", host);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  int lfd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int v6 = 1;
  if (lfd < 0) {
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    v6 = 0;
  }
  int one = 1, zero = 0;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc;
  if (v6) {
    setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    struct sockaddr_in6 a6;
    memset(&a6, 0, sizeof a6);
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons((unsigned short)port);
    a6.sin6_addr = in6addr_any;
    rc = bind(lfd, (struct sockaddr*)&a6, sizeof a6);
  } else {
    struct sockaddr_in a4;
    memset(&a4, 0, sizeof a4);
    a4.sin_family = AF_INET;
    a4.sin_port = htons((unsigned short)port);
    a4.sin_addr.s_addr = htonl(INADDR_ANY);
    rc = bind(lfd, (struct sockaddr*)&a4, sizeof a4);
  }
  if (rc < 0 || listen(lfd, 512) < 0) {
    fprintf(stderr, "hello: cannot listen on port %d: %s\n", port, strerror(errno));
    return 1;
  }
  printf("hello: listening on port %d as %s\n", port, host);
  fflush(stdout);

  for (int i = 0; i < MAX_CONNS; i++) conns[i].fd = -1;
  while (!stopping) {
    int n = 0;
    pfds[n].fd = lfd;
    pfds[n].events = POLLIN;
    n++;
    int idx[MAX_CONNS];
    for (int i = 0; i < MAX_CONNS; i++) {
      if (conns[i].fd < 0) continue;
      pfds[n].fd = conns[i].fd;
      pfds[n].events = POLLIN;
      idx[n - 1] = i;
      n++;
    }
    if (poll(pfds, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      perror("hello: poll");
      return 1;
    }
    if (pfds[0].revents & POLLIN) {
      int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
      if (cfd >= 0) {
        int slot = -1;
        for (int i = 0; i < MAX_CONNS && slot < 0; i++) {
          if (conns[i].fd < 0) slot = i;
        }
        if (slot < 0) {
          close(cfd);
        } else {
          conns[slot].fd = cfd;
          conns[slot].len = 0;
        }
      }
    }
    for (int k = 1; k < n; k++) {
      if (!(pfds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      struct conn* c = &conns[idx[k - 1]];
      ssize_t r = read(c->fd, c->buf + c->len, BUF_SIZE - c->len);
      if (r <= 0 || (c->len += (size_t)r, serve(c, body, (size_t)body_len) < 0)) {
        close(c->fd);
        c->fd = -1;
      }
    }
  }
  printf("hello: stopping\n");
  return 0;
}
