/* dt-hangv6: a listener pair for `make demo` and manual Happy Eyeballs
 * checks. On one port, 127.0.0.1 accepts (and closes) connections while
 * [::1] hangs: it listens with a backlog of 0 and holds one connection it
 * never accepts, so further SYNs are dropped and connects stall, as behind
 * a broken IPv6 route. No root needed.
 *
 * usage: dt-hangv6 [--port-file FILE]   (runs until SIGTERM or SIGINT) */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static int bound(int family, uint16_t port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  socklen_t len;
  if (family == AF_INET6) {
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    v6->sin6_addr = in6addr_loopback;
    len = sizeof(*v6);
  } else {
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(*v4);
  }
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return -1;
  }
  if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static uint16_t port_of(int fd) {
  struct sockaddr_in6 sa;
  socklen_t len = sizeof(sa);
  getsockname(fd, (struct sockaddr *)&sa, &len);
  return ntohs(sa.sin6_port);
}

int main(int argc, char **argv) {
  const char *port_file = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc) {
      port_file = argv[++i];
    } else {
      fprintf(stderr, "usage: dt-hangv6 [--port-file FILE]\n");
      return 2;
    }
  }
  int fd6 = -1, fd4 = -1;
  for (int tries = 0; tries < 50 && fd4 < 0; tries++) {
    fd6 = bound(AF_INET6, 0);
    if (fd6 < 0) {
      fprintf(stderr, "dt-hangv6: cannot bind [::1]: %s\n", strerror(errno));
      return 3;
    }
    fd4 = bound(AF_INET, port_of(fd6));
    if (fd4 < 0) {
      close(fd6);
    }
  }
  if (fd4 < 0 || listen(fd4, SOMAXCONN) != 0 || listen(fd6, 0) != 0) {
    fprintf(stderr, "dt-hangv6: cannot listen: %s\n", strerror(errno));
    return 3;
  }
  uint16_t port = port_of(fd6);
  /* The one connection the IPv6 queue holds, never accepted. */
  struct sockaddr_in6 to;
  memset(&to, 0, sizeof(to));
  to.sin6_family = AF_INET6;
  to.sin6_port = htons(port);
  to.sin6_addr = in6addr_loopback;
  int filler = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (filler < 0 || connect(filler, (struct sockaddr *)&to, sizeof(to)) != 0) {
    fprintf(stderr, "dt-hangv6: cannot fill the IPv6 queue: %s\n",
            strerror(errno));
    return 3;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  if (port_file != NULL) {
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
    FILE *fp = fopen(tmp, "w");
    if (fp == NULL || fprintf(fp, "%u\n", (unsigned)port) < 0 ||
        fclose(fp) != 0 || rename(tmp, port_file) != 0) {
      fprintf(stderr, "dt-hangv6: cannot write %s\n", port_file);
      return 3;
    }
  }
  printf("dt-hangv6: port %u: 127.0.0.1 accepts, [::1] hangs\n",
         (unsigned)port);
  fflush(stdout);
  while (!stop) {
    struct pollfd p = {fd4, POLLIN, 0};
    if (poll(&p, 1, 200) > 0) {
      int c = accept(fd4, NULL, NULL);
      if (c >= 0) {
        close(c);
      }
    }
  }
  close(filler);
  close(fd4);
  close(fd6);
  if (port_file != NULL) {
    unlink(port_file);
  }
  return 0;
}
