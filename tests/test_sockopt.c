/* Socket options and listeners on real sockets: what the kernel applied is
 * read back with getsockopt(). */
/* SO_REUSEPORT is a Linux extension glibc hides under strict POSIX. */
#define _GNU_SOURCE
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "dialtone.h"

static int get_int(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof(v);
  assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
  return v;
}

static bool have_ipv6(void) {
  int fd = -1;
  if (dt_listen(NULL, "::1", 0, &fd) != DT_OK) {
    return false;
  }
  close(fd);
  return true;
}

static void test_apply_defaults(void **state) {
  (void)state;
  dt_sockopt_opts_t o;
  dt_sockopt_opts_init(&o);
  assert_true(o.nodelay);
  assert_true(o.keepalive);
  assert_int_equal(o.keepidle_s, 30);
  assert_int_equal(o.keepintvl_s, 10);
  assert_int_equal(o.keepcnt, 3);
  assert_int_equal(o.rcvbuf, 0);
  assert_int_equal(o.user_timeout_ms, 0);

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  int rcv_before = get_int(fd, SOL_SOCKET, SO_RCVBUF);
  const char *failed = "x";
  assert_int_equal(dt_sockopt_apply(fd, AF_INET, NULL, &failed), DT_OK);
  assert_null(failed);
  assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_NODELAY), 1);
  assert_int_equal(get_int(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
  assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE), 30);
  assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL), 10);
  assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_KEEPCNT), 3);
  /* 0 leaves the buffers to autotuning: untouched. */
  assert_int_equal(get_int(fd, SOL_SOCKET, SO_RCVBUF), rcv_before);
  assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 0);
  close(fd);
}

static void test_apply_custom(void **state) {
  (void)state;
  dt_sockopt_opts_t o;
  dt_sockopt_opts_init(&o);
  o.nodelay = false;
  o.keepalive = false;
  o.rcvbuf = 65536;
  o.sndbuf = 32768;
  o.user_timeout_ms = 7000;
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
  }
  assert_true(fd >= 0);
  assert_int_equal(dt_sockopt_apply(fd, AF_INET6, &o, NULL), DT_OK);
  assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_NODELAY), 0);
  assert_int_equal(get_int(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
  /* Linux doubles the size for its bookkeeping. */
  assert_true(get_int(fd, SOL_SOCKET, SO_RCVBUF) >= 65536);
  assert_true(get_int(fd, SOL_SOCKET, SO_SNDBUF) >= 32768);
  assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 7000);
  close(fd);

  /* Unix sockets take the buffers and nothing of TCP's. */
  fd = socket(AF_UNIX, SOCK_STREAM, 0);
  dt_sockopt_opts_init(&o);
  o.sndbuf = 32768;
  assert_int_equal(dt_sockopt_apply(fd, AF_UNIX, &o, NULL), DT_OK);
  assert_true(get_int(fd, SOL_SOCKET, SO_SNDBUF) >= 32768);
  close(fd);
}

/* A rejected option is reported with its name and errno, not ignored. */
static void test_apply_failure_named(void **state) {
  (void)state;
  const char *failed = NULL;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  dt_status_t st = dt_sockopt_apply(fd, AF_INET, NULL, &failed);
  assert_int_not_equal(st, DT_OK);
  assert_non_null(failed);
  assert_string_equal(failed, "TCP_NODELAY");
  assert_true(errno != 0);
  close(fd);

  dt_sockopt_opts_t o;
  dt_sockopt_opts_init(&o);
  o.rcvbuf = 4096;
  assert_int_equal(dt_sockopt_apply(fd, AF_INET, &o, &failed), DT_ESYS);
  assert_string_equal(failed, "SO_RCVBUF");
  assert_int_equal(errno, EBADF);

  o.rcvbuf = -1;
  assert_int_equal(dt_sockopt_apply(0, AF_INET, &o, &failed), DT_EINVAL);
}

static void test_listen_tcp(void **state) {
  (void)state;
  dt_listen_opts_t o;
  dt_listen_opts_init(&o);
  assert_int_equal(o.backlog, DT_LISTEN_BACKLOG_MAX);
  assert_true(o.reuseaddr);
  assert_false(o.reuseport);
  int fd = -1;
  assert_int_equal(dt_listen(&o, "127.0.0.1", 0, &fd), DT_OK);
  assert_int_equal(get_int(fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
  assert_int_equal(get_int(fd, SOL_SOCKET, SO_REUSEADDR), 1);
  assert_int_equal(get_int(fd, SOL_SOCKET, SO_REUSEPORT), 0);
  assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  uint16_t port = 0;
  assert_int_equal(dt_listen_get_port(fd, &port), DT_OK);
  assert_true(port != 0);
  /* Taken without SO_REUSEPORT. */
  int fd2 = -1;
  assert_int_equal(dt_listen(&o, "127.0.0.1", port, &fd2), DT_EADDRINUSE);
  assert_int_equal(fd2, -1);
  close(fd);

  o.nonblocking = true;
  o.reuseaddr = false;
  o.rcvbuf = 65536;
  o.backlog = 0;
  assert_int_equal(dt_listen(&o, "127.0.0.1", 0, &fd), DT_OK);
  assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
  assert_int_equal(get_int(fd, SOL_SOCKET, SO_REUSEADDR), 0);
  assert_true(get_int(fd, SOL_SOCKET, SO_RCVBUF) >= 65536);
  close(fd);

  assert_int_equal(dt_listen(NULL, "not-an-address", 0, &fd), DT_EINVAL);
  assert_int_equal(dt_listen(NULL, "127.0.0.1:80", 0, &fd), DT_EINVAL);
  o.backlog = -2;
  assert_int_equal(dt_listen(&o, "127.0.0.1", 0, &fd), DT_EINVAL);
  assert_int_equal(dt_listen(NULL, "127.0.0.1", 0, NULL), DT_EINVAL);
  /* 192.0.2.1 is not local. */
  assert_int_equal(dt_listen(NULL, "192.0.2.1", 0, &fd), DT_EADDRINUSE);
}

static int connect_to(int family, uint16_t port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  socklen_t len;
  if (family == AF_INET) {
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(*v4);
  } else {
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    v6->sin6_addr = in6addr_loopback;
    len = sizeof(*v6);
  }
  int fd = socket(family, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* SO_REUSEPORT: two listeners on one port, each with its own queue, and
 * the kernel spreads new connections over both. */
static void test_listen_reuseport(void **state) {
  (void)state;
  dt_listen_opts_t o;
  dt_listen_opts_init(&o);
  o.reuseport = true;
  o.nonblocking = true;
  int a = -1, b = -1;
  assert_int_equal(dt_listen(&o, "127.0.0.1", 0, &a), DT_OK);
  assert_int_equal(get_int(a, SOL_SOCKET, SO_REUSEPORT), 1);
  uint16_t port;
  assert_int_equal(dt_listen_get_port(a, &port), DT_OK);
  assert_int_equal(dt_listen(&o, "127.0.0.1", port, &b), DT_OK);
  int clients[32];
  for (int i = 0; i < 32; i++) {
    clients[i] = connect_to(AF_INET, port);
    assert_true(clients[i] >= 0);
  }
  int got[2] = {0, 0};
  int ls[2] = {a, b};
  for (int k = 0; k < 2; k++) {
    int c;
    while ((c = accept(ls[k], NULL, NULL)) >= 0) {
      got[k]++;
      close(c);
    }
  }
  assert_int_equal(got[0] + got[1], 32);
  /* A 4-tuple hash puts all 32 on one queue with odds of 2^-31. */
  assert_true(got[0] > 0 && got[1] > 0);
  for (int i = 0; i < 32; i++) {
    close(clients[i]);
  }
  close(a);
  close(b);
}

static void test_listen_v6only(void **state) {
  (void)state;
  if (!have_ipv6()) {
    print_message("::1 unavailable on this host: IPv6 listeners skipped\n");
    skip();
  }
  dt_listen_opts_t o;
  dt_listen_opts_init(&o);
  o.v6only = 1;
  int fd = -1;
  assert_int_equal(dt_listen(&o, "::", 0, &fd), DT_OK);
  assert_int_equal(get_int(fd, IPPROTO_IPV6, IPV6_V6ONLY), 1);
  uint16_t port;
  assert_int_equal(dt_listen_get_port(fd, &port), DT_OK);
  int c = connect_to(AF_INET, port);
  assert_int_equal(c, -1); /* IPv4 does not reach a v6-only listener */
  c = connect_to(AF_INET6, port);
  assert_true(c >= 0);
  close(c);
  close(fd);

  o.v6only = 0;
  assert_int_equal(dt_listen(&o, NULL, 0, &fd), DT_OK);
  assert_int_equal(get_int(fd, IPPROTO_IPV6, IPV6_V6ONLY), 0);
  assert_int_equal(dt_listen_get_port(fd, &port), DT_OK);
  c = connect_to(AF_INET, port); /* dual-stack: mapped IPv4 */
  assert_true(c >= 0);
  close(c);
  close(fd);
  o.v6only = 2;
  assert_int_equal(dt_listen(&o, "::", 0, &fd), DT_EINVAL);
}

static char dir[64];

static int unix_setup(void **state) {
  (void)state;
  snprintf(dir, sizeof(dir), "/tmp/dt-test-sockopt-XXXXXX");
  return mkdtemp(dir) != NULL ? 0 : -1;
}

static int unix_teardown(void **state) {
  (void)state;
  char p[128];
  static const char *const names[] = {"a.sock", "file", "live.sock"};
  for (size_t i = 0; i < 3; i++) {
    snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
    unlink(p);
  }
  rmdir(dir);
  return 0;
}

static void test_listen_unix(void **state) {
  (void)state;
  char path[128];
  snprintf(path, sizeof(path), "%s/a.sock", dir);
  dt_listen_opts_t o;
  dt_listen_opts_init(&o);
  o.unix_mode = 0600;
  int fd = -1;
  assert_int_equal(dt_listen_unix(&o, path, &fd), DT_OK);
  struct stat sb;
  assert_int_equal(lstat(path, &sb), 0);
  assert_true(S_ISSOCK(sb.st_mode));
  assert_int_equal(sb.st_mode & 0777, 0600);
  assert_int_equal(get_int(fd, SOL_SOCKET, SO_ACCEPTCONN), 1);

  /* A live listener's socket is never replaced. */
  int fd2 = -1;
  assert_int_equal(dt_listen_unix(NULL, path, &fd2), DT_EADDRINUSE);
  assert_int_equal(fd2, -1);
  dt_dialer_t *d = NULL;
  dt_dial_opts_t dopts;
  dt_dial_opts_init(&dopts);
  static const char *const servers[] = {"127.0.0.1:9"};
  dt_resolver_opts_t ro;
  dt_resolver_opts_init(&ro);
  ro.servers = servers;
  ro.nservers = 1;
  ro.hosts = "";
  dt_resolver_t *r = NULL;
  assert_int_equal(dt_resolver_new(&ro, &r), DT_OK);
  dopts.resolver = r;
  assert_int_equal(dt_dialer_new(&dopts, &d), DT_OK);
  int c = -1;
  assert_int_equal(dt_dial_unix(d, path, 1000, &c, NULL), DT_OK);
  close(c);

  /* Once its process is gone the file is stale, and replaced. */
  close(fd);
  assert_int_equal(lstat(path, &sb), 0);
  assert_int_equal(dt_dial_unix(d, path, 1000, &c, NULL), DT_ECONNREFUSED);
  assert_int_equal(dt_listen_unix(NULL, "unix-relative-ignored", NULL),
                   DT_EINVAL);
  assert_int_equal(dt_listen(NULL, path, 0, &fd), DT_EINVAL);
  char upath[140];
  snprintf(upath, sizeof(upath), "unix:%s", path);
  assert_int_equal(dt_listen(NULL, upath, 0, &fd), DT_OK);
  assert_int_equal(dt_dial_unix(d, path, 1000, &c, NULL), DT_OK);
  close(c);
  close(fd);

  /* Any other kind of file stays. */
  char file[128];
  snprintf(file, sizeof(file), "%s/file", dir);
  FILE *fp = fopen(file, "w");
  assert_non_null(fp);
  fputs("precious\n", fp);
  fclose(fp);
  assert_int_equal(dt_listen_unix(NULL, file, &fd), DT_EADDRINUSE);
  assert_int_equal(lstat(file, &sb), 0);
  assert_true(S_ISREG(sb.st_mode));
  assert_int_equal(sb.st_size, 9);

  /* Too long for sun_path. */
  char longp[200];
  memset(longp, 'x', sizeof(longp));
  longp[0] = '/';
  longp[sizeof(longp) - 1] = '\0';
  assert_int_equal(dt_listen_unix(NULL, longp, &fd), DT_ENAMETOOLONG);
  snprintf(path, sizeof(path), "%s/no/such/dir.sock", dir);
  assert_int_equal(dt_listen_unix(NULL, path, &fd), DT_ENOENT);
  dt_dialer_free(d);
  dt_resolver_free(r);
}

static void test_sockaddr_tostr(void **state) {
  (void)state;
  char buf[DT_SOCKADDR_STRLEN];
  struct sockaddr_in v4;
  memset(&v4, 0, sizeof(v4));
  v4.sin_family = AF_INET;
  v4.sin_port = htons(80);
  inet_pton(AF_INET, "192.0.2.1", &v4.sin_addr);
  assert_string_equal(
      dt_sockaddr_tostr((struct sockaddr *)&v4, sizeof(v4), buf, sizeof(buf)),
      "192.0.2.1#80");
  v4.sin_port = 0;
  assert_string_equal(
      dt_sockaddr_tostr((struct sockaddr *)&v4, sizeof(v4), buf, sizeof(buf)),
      "192.0.2.1");
  struct sockaddr_in6 v6;
  memset(&v6, 0, sizeof(v6));
  v6.sin6_family = AF_INET6;
  v6.sin6_port = htons(443);
  inet_pton(AF_INET6, "2001:db8::1", &v6.sin6_addr);
  assert_string_equal(
      dt_sockaddr_tostr((struct sockaddr *)&v6, sizeof(v6), buf, sizeof(buf)),
      "2001:db8::1#443");
  v6.sin6_scope_id = 4000000;
  assert_string_equal(
      dt_sockaddr_tostr((struct sockaddr *)&v6, sizeof(v6), buf, sizeof(buf)),
      "2001:db8::1%4000000#443");
  struct sockaddr_un un;
  memset(&un, 0, sizeof(un));
  un.sun_family = AF_UNIX;
  strcpy(un.sun_path, "/run/x.sock");
  assert_string_equal(dt_sockaddr_tostr((struct sockaddr *)&un,
                                        (socklen_t)sizeof(un), buf,
                                        sizeof(buf)),
                      "unix:/run/x.sock");
  char small[8];
  assert_string_equal(dt_sockaddr_tostr((struct sockaddr *)&v4, sizeof(v4),
                                        small, sizeof(small)),
                      "192.0.2");
  assert_string_equal(dt_sockaddr_tostr(NULL, 0, buf, sizeof(buf)), "?");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_apply_defaults),
      cmocka_unit_test(test_apply_custom),
      cmocka_unit_test(test_apply_failure_named),
      cmocka_unit_test(test_listen_tcp),
      cmocka_unit_test(test_listen_reuseport),
      cmocka_unit_test(test_listen_v6only),
      cmocka_unit_test_setup_teardown(test_listen_unix, unix_setup,
                                      unix_teardown),
      cmocka_unit_test(test_sockaddr_tostr),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
