/* The programs in examples/ as a user runs them, on loopback only: names
 * from the in-process fake DNS server through a resolv.conf written for
 * it, echo_server and rpc_client against each other, http_get against a
 * small HTTP/1.1 server in this program, dial against local listeners.
 *
 * With DT_EXAMPLES_VALGRIND=1 in the environment every example runs under
 * valgrind memcheck (through libtool, as the test suite's own programs do
 * in CI), so the examples' own leaks and errors fail the test. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dialtone.h"
#include "fake/fakedns.h"

/* Generous: an example under valgrind starts in seconds, not ms. */
#define CHILD_TIMEOUT_MS 120000

static fakedns_t *dns;
static char tmpdir[] = "/tmp/dt-examples-XXXXXX";
static char resolv_conf[64], hosts[64];

static char out[65536], err[65536];

/* --- running the examples ----------------------------------------------- */

typedef struct {
  pid_t pid;
  int out; /* read ends of the child's stdout and stderr */
  int err;
} child_t;

static void start(child_t *ch, const char *prog, const char *const *args) {
  static char path[512];
  snprintf(path, sizeof(path), "%s/examples/%s", DT_BUILDDIR, prog);
  char *argv[64];
  size_t n = 0;
  const char *vg = getenv("DT_EXAMPLES_VALGRIND");
  if (vg != NULL && strcmp(vg, "1") == 0) {
    argv[n++] = (char *)DT_BUILDDIR "/libtool";
    argv[n++] = (char *)"--mode=execute";
    argv[n++] = (char *)"valgrind";
    argv[n++] = (char *)"-q";
    argv[n++] = (char *)"--leak-check=full";
    argv[n++] = (char *)"--errors-for-leak-kinds=definite,indirect";
    argv[n++] = (char *)"--error-exitcode=99";
  }
  argv[n++] = path;
  for (size_t i = 0; args[i] != NULL && n < 63; i++) {
    argv[n++] = (char *)args[i];
  }
  argv[n] = NULL;

  int po[2], pe[2];
  assert_int_equal(pipe(po), 0);
  assert_int_equal(pipe(pe), 0);
  ch->pid = fork();
  assert_true(ch->pid >= 0);
  if (ch->pid == 0) {
    dup2(po[1], 1);
    dup2(pe[1], 2);
    close(po[0]);
    close(pe[0]);
    close(po[1]);
    close(pe[1]);
    execv(argv[0], argv);
    _exit(127);
  }
  close(po[1]);
  close(pe[1]);
  ch->out = po[0];
  ch->err = pe[0];
}

/* Reads both pipes to their end (a child blocked on a full stderr pipe
 * would never close stdout), then waits; returns the exit code. */
static int finish(child_t *ch) {
  size_t got[2] = {0, 0};
  char *buf[2] = {out, err};
  size_t cap[2] = {sizeof(out), sizeof(err)};
  struct pollfd pfd[2] = {{.fd = ch->out, .events = POLLIN},
                          {.fd = ch->err, .events = POLLIN}};
  while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
    int k = poll(pfd, 2, CHILD_TIMEOUT_MS);
    if (k < 0 && errno == EINTR) {
      continue;
    }
    if (k <= 0) {
      kill(ch->pid, SIGKILL);
      fail_msg("an example hung");
    }
    for (int i = 0; i < 2; i++) {
      if (pfd[i].fd < 0 || pfd[i].revents == 0) {
        continue;
      }
      ssize_t r = read(pfd[i].fd, buf[i] + got[i], cap[i] - 1 - got[i]);
      if (r > 0) {
        got[i] += (size_t)r;
      } else if (r == 0 || errno != EINTR) {
        close(pfd[i].fd);
        pfd[i].fd = -1;
      }
    }
  }
  out[got[0]] = '\0';
  err[got[1]] = '\0';
  int status;
  while (waitpid(ch->pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int run(const char *prog, const char *const *args) {
  child_t ch;
  start(&ch, prog, args);
  return finish(&ch);
}

/* Reads one line of the child's stdout, without waiting for its end. */
static void read_line(child_t *ch, char *line, size_t cap) {
  size_t n = 0;
  while (n + 1 < cap) {
    struct pollfd p = {.fd = ch->out, .events = POLLIN};
    assert_int_equal(poll(&p, 1, CHILD_TIMEOUT_MS), 1);
    char c;
    if (read(ch->out, &c, 1) != 1 || c == '\n') {
      break;
    }
    line[n++] = c;
  }
  line[n] = '\0';
}

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = strstr(hay, needle); p != NULL;
       p = strstr(p + 1, needle)) {
    n++;
  }
  return n;
}

#define assert_contains(hay, needle)                                           \
  do {                                                                         \
    if (strstr((hay), (needle)) == NULL) {                                     \
      fail_msg("missing \"%s\" in:\n%s", (needle), (hay));                     \
    }                                                                          \
  } while (0)

/* --- a small HTTP/1.1 server -------------------------------------------- */

/* One connection at a time, which is all http_get uses. Paths: /hello
 * (Content-Length), /chunked, /close (no length, closes), /hangup (a
 * keep-alive reply, then the server closes anyway, as servers do with idle
 * connections), anything else 404. */
static struct {
  pthread_t thread;
  int listen_fd;
  uint16_t port;
  int stop[2];
  pthread_mutex_t lock;
  int connections;
  int requests;
  char last_request[1024];
} web = {.listen_fd = -1, .stop = {-1, -1}, .lock = PTHREAD_MUTEX_INITIALIZER};

static bool send_all(int fd, const char *s) {
  size_t len = strlen(s);
  while (len > 0) {
    ssize_t k = send(fd, s, len, MSG_NOSIGNAL);
    if (k <= 0) {
      return false;
    }
    s += k;
    len -= (size_t)k;
  }
  return true;
}

/* Waits for fd or the stop pipe; false when stopping. */
static bool wait_readable(int fd) {
  struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                        {.fd = web.stop[0], .events = POLLIN}};
  while (poll(p, 2, -1) < 0) {
    if (errno != EINTR) {
      return false;
    }
  }
  return p[1].revents == 0;
}

static void serve_http(int fd) {
  char req[4096] = "";
  size_t len = 0;
  for (;;) {
    char *end = NULL;
    while ((end = strstr(req, "\r\n\r\n")) == NULL || len == 0) {
      if (len + 1 >= sizeof(req) || !wait_readable(fd)) {
        return;
      }
      ssize_t k = recv(fd, req + len, sizeof(req) - 1 - len, 0);
      if (k <= 0) {
        return;
      }
      len += (size_t)k;
      req[len] = '\0';
    }
    char path[256] = "";
    sscanf(req, "GET %255s HTTP/1.1\r\n", path);
    pthread_mutex_lock(&web.lock);
    web.requests++;
    snprintf(web.last_request, sizeof(web.last_request), "%.*s",
             (int)(end + 4 - req), req);
    pthread_mutex_unlock(&web.lock);
    /* No pipelining from http_get: the request is all that was read. */
    len = 0;
    req[0] = '\0';
    const char *resp;
    bool close_after = false;
    if (strcmp(path, "/hello") == 0) {
      resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
             "Content-Length: 13\r\n\r\nhello, world\n";
    } else if (strcmp(path, "/chunked") == 0) {
      resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
             "7\r\nhello, \r\nE;ext=1\r\nchunked world\n\r\n0\r\n"
             "X-Trailer: yes\r\n\r\n";
    } else if (strcmp(path, "/hangup") == 0) {
      resp = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbye\n";
      close_after = true;
    } else if (strcmp(path, "/close") == 0) {
      resp = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close\n";
      close_after = true;
    } else {
      resp = "HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\n"
             "not found\n";
    }
    if (!send_all(fd, resp) || close_after) {
      return;
    }
  }
}

static void *web_main(void *arg) {
  (void)arg;
  while (wait_readable(web.listen_fd)) {
    int fd = accept(web.listen_fd, NULL, NULL);
    if (fd < 0) {
      continue;
    }
    pthread_mutex_lock(&web.lock);
    web.connections++;
    pthread_mutex_unlock(&web.lock);
    serve_http(fd);
    close(fd);
  }
  return NULL;
}

static void web_counts(int *connections, int *requests) {
  pthread_mutex_lock(&web.lock);
  *connections = web.connections;
  *requests = web.requests;
  pthread_mutex_unlock(&web.lock);
}

/* --- fixtures ------------------------------------------------------------ */

static int setup(void **state) {
  (void)state;
  if (mkdtemp(tmpdir) == NULL || fakedns_new(NULL, &dns) != DT_OK) {
    return -1;
  }
  const char *zone[] = {
      "ex.test. 60 IN SOA ns.ex.test. admin.ex.test. 1 7200 900 86400 60",
      "dual.ex.test. 60 IN AAAA ::1",
      "dual.ex.test. 60 IN A 127.0.0.1",
      "v4.ex.test. 30 IN A 127.0.0.1",
      "alias.ex.test. 300 IN CNAME v4.ex.test.",
  };
  for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]); i++) {
    if (fakedns_add(dns, zone[i]) != DT_OK) {
      return -1;
    }
  }
  if (fakedns_start(dns) != DT_OK) {
    return -1;
  }
  /* The examples find the fake server through this file only: never the
   * machine's resolv.conf. */
  snprintf(resolv_conf, sizeof(resolv_conf), "%s/resolv.conf", tmpdir);
  snprintf(hosts, sizeof(hosts), "%s/hosts", tmpdir);
  FILE *f = fopen(resolv_conf, "w");
  if (f == NULL) {
    return -1;
  }
  fprintf(f, "nameserver [127.0.0.1]:%u\noptions timeout:2 attempts:2\n",
          fakedns_port(dns));
  fclose(f);
  if ((f = fopen(hosts, "w")) == NULL) {
    return -1;
  }
  fprintf(f, "127.0.0.2 fromhosts.ex.test\n");
  fclose(f);

  if (pipe(web.stop) != 0 ||
      dt_listen(NULL, "127.0.0.1", 0, &web.listen_fd) != DT_OK ||
      dt_listen_get_port(web.listen_fd, &web.port) != DT_OK ||
      pthread_create(&web.thread, NULL, web_main, NULL) != 0) {
    return -1;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  (void)!write(web.stop[1], "x", 1);
  pthread_join(web.thread, NULL);
  close(web.listen_fd);
  close(web.stop[0]);
  close(web.stop[1]);
  fakedns_free(dns);
  unlink(resolv_conf);
  unlink(hosts);
  rmdir(tmpdir);
  return 0;
}

/* --- resolve -------------------------------------------------------------- */

static void test_resolve(void **state) {
  (void)state;
  const char *args[] = {"-r", resolv_conf, "-H",           "",
                        "-n", "2",         "dual.ex.test", NULL};
  assert_int_equal(run("resolve", args), 0);
  assert_string_equal(err, "");
  /* First from the server with the TTL it gave, then from the cache. */
  const char *first = strstr(out, "dual.ex.test: 2 addresses from dns in ");
  const char *second = strstr(out, "dual.ex.test: 2 addresses from cache in ");
  assert_non_null(first);
  assert_non_null(second);
  assert_true(first < second);
  assert_contains(first, "\n  ::1                        ttl 60\n"
                         "  127.0.0.1                  ttl 60\n");
  assert_int_equal(count(out, "ttl "), 4);
  /* One A and one AAAA question reached the server, the second round none. */
  assert_int_equal(fakedns_count(dns, "dual.ex.test", DT_TYPE_A, FAKEDNS_UDP),
                   1);
  assert_int_equal(
      fakedns_count(dns, "dual.ex.test", DT_TYPE_AAAA, FAKEDNS_UDP), 1);
}

/* The TTL a cached answer reports counts down. */
static void test_resolve_ttl(void **state) {
  (void)state;
  const char *args[] = {"-r", resolv_conf, "-H", "",     "-4",
                        "-n", "2",         "-i", "2100", "alias.ex.test",
                        NULL};
  assert_int_equal(run("resolve", args), 0);
  unsigned t1, t2;
  const char *first = strstr(out, "alias.ex.test: 1 address from dns in ");
  const char *second = strstr(out, "alias.ex.test: 1 address from cache in ");
  assert_non_null(first);
  assert_non_null(second);
  assert_int_equal(sscanf(strstr(first, "127.0.0.1"), "127.0.0.1 ttl %u", &t1),
                   1);
  assert_int_equal(sscanf(strstr(second, "127.0.0.1"), "127.0.0.1 ttl %u", &t2),
                   1);
  /* The chain's smallest TTL: v4's 30 s, not the CNAME's 300. */
  assert_int_equal(t1, 30);
  assert_true(t2 >= 20 && t2 <= 28);
}

static void test_resolve_sources(void **state) {
  (void)state;
  const char *args[] = {
      "-r", resolv_conf, "-H", hosts, "fromhosts.ex.test", "192.0.2.7", NULL};
  assert_int_equal(run("resolve", args), 0);
  assert_contains(out, "fromhosts.ex.test: 1 address from the hosts file in ");
  assert_contains(out, "  127.0.0.2                  ttl 0\n");
  assert_contains(out, "192.0.2.7: 1 address from the name itself in ");
}

static void test_resolve_failures(void **state) {
  (void)state;
  const char *nx[] = {"-r",           resolv_conf,  "-H", "",
                      "nope.ex.test", "v4.ex.test", NULL};
  assert_int_equal(run("resolve", nx), 2);
  assert_string_equal(err, "resolve: nope.ex.test: no such name (NXDOMAIN) "
                           "(DT_ENXDOMAIN)\n");
  /* The other name still resolved. */
  assert_contains(out, "v4.ex.test: 1 address from dns in ");

  const char *nodata[] = {"-r", resolv_conf,  "-H", "",
                          "-6", "v4.ex.test", NULL};
  assert_int_equal(run("resolve", nodata), 2);
  assert_contains(err, "(DT_ENODATA)");

  const char *bad[] = {"-r", resolv_conf, "-H", "", "a..b", NULL};
  assert_int_equal(run("resolve", bad), 2);
  assert_contains(err, "resolve: a..b: invalid domain name (DT_EBADNAME)");

  const char *zero[] = {"-r", resolv_conf, "-n", "0", "v4.ex.test", NULL};
  assert_int_equal(run("resolve", zero), 1);
  assert_contains(err, "usage: resolve ");
  const char *none[] = {NULL};
  assert_int_equal(run("resolve", none), 1);
  assert_contains(err, "usage: resolve ");
}

/* --- dial ----------------------------------------------------------------- */

/* A port open on 127.0.0.1 and, when the host has IPv6, bound but not
 * listening on ::1 (connections refused at once). */
static int open_dual_port(int *good, int *closed6, uint16_t *port) {
  *good = *closed6 = -1;
  for (int tries = 0; tries < 50; tries++) {
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof(a));
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    socklen_t len = sizeof(a);
    int s6 = socket(AF_INET6, SOCK_STREAM, 0);
    if (s6 < 0 || bind(s6, (struct sockaddr *)&a, len) != 0) {
      if (s6 >= 0) {
        close(s6);
      }
      return dt_listen(NULL, "127.0.0.1", 0, good) == DT_OK &&
                     dt_listen_get_port(*good, port) == DT_OK
                 ? 0
                 : -1;
    }
    getsockname(s6, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin6_port);
    if (dt_listen(NULL, "127.0.0.1", *port, good) == DT_OK) {
      *closed6 = s6;
      return 0;
    }
    close(s6);
  }
  return -1;
}

/* Times of the timeline's lines, in order, up to the blank line. */
static void assert_timeline_ordered(const char *text) {
  double last = -1;
  int lines = 0;
  for (const char *p = text; *p != '\0' && *p != '\n';) {
    double t;
    char unit[3];
    if (sscanf(p, "%lf %2s", &t, unit) != 2 || strcmp(unit, "ms") != 0) {
      fail_msg("not a timeline line: %.60s", p);
    }
    assert_true(t >= last);
    last = t;
    lines++;
    p = strchr(p, '\n');
    assert_non_null(p);
    p++;
  }
  assert_true(lines >= 4);
}

static void test_dial(void **state) {
  (void)state;
  int good, closed6;
  uint16_t port;
  assert_int_equal(open_dual_port(&good, &closed6, &port), 0);
  char port_s[8], want[160];
  snprintf(port_s, sizeof(port_s), "%u", port);

  const char *args[] = {"-r", resolv_conf, "dual.ex.test", port_s, NULL};
  assert_int_equal(run("dial", args), 0);
  assert_string_equal(err, "");
  assert_timeline_ordered(out);
  assert_contains(out, " ms  looking up AAAA dual.ex.test\n");
  assert_contains(out, " ms  looking up A dual.ex.test\n");
  assert_contains(out, " ms  A: 1 address (dns)\n");
  assert_contains(out, " ms  AAAA: 1 address (dns)\n");
  if (closed6 >= 0) {
    /* IPv6 first (RFC 6724), refused, then IPv4 at once. */
    snprintf(want, sizeof(want), " ms  attempt 1: ::1#%s started\n", port_s);
    assert_contains(out, want);
    snprintf(want, sizeof(want), " ms  attempt 1: ::1#%s connection refused\n",
             port_s);
    assert_contains(out, want);
    snprintf(want, sizeof(want), " ms  attempt 2: 127.0.0.1#%s connected\n",
             port_s);
    assert_contains(out, want);
  }
  snprintf(want, sizeof(want), " ms  connected to 127.0.0.1#%s\n", port_s);
  assert_contains(out, want);
  /* The chart: one row per attempt, the winner last. */
  assert_contains(out, "\nattempts, 0 to ");
  snprintf(want, sizeof(want), "\n  127.0.0.1#%-*s |", 24 - 10, port_s);
  assert_contains(out, want);
  assert_contains(out, "=| connected\n");
  snprintf(want, sizeof(want), "\nconnected to 127.0.0.1#%s: lookup ", port_s);
  assert_contains(out, want);

  /* Nothing listens once both are closed: refused, exit 2. */
  close(good);
  if (closed6 >= 0) {
    close(closed6);
  }
  const char *lit[] = {"127.0.0.1", port_s, NULL};
  assert_int_equal(run("dial", lit), 2);
  snprintf(want, sizeof(want),
           "dial: 127.0.0.1 port %s: connection refused (DT_ECONNREFUSED) "
           "after 1 attempt\n",
           port_s);
  assert_string_equal(err, want);
  assert_contains(out, " ms  gave up: connection refused\n");

  const char *nx[] = {"-r", resolv_conf, "nope.ex.test", "80", NULL};
  assert_int_equal(run("dial", nx), 2);
  assert_contains(err, "no such name (NXDOMAIN) (DT_ENXDOMAIN) after 0 "
                       "attempts\n");
  const char *usage[] = {"dual.ex.test", "99999", NULL};
  assert_int_equal(run("dial", usage), 1);
  assert_contains(err, "usage: dial ");
}

/* --- echo_server and rpc_client ------------------------------------------ */

static void test_echo_rpc(void **state) {
  (void)state;
  child_t server;
  const char *sargs[] = {"-a", "127.0.0.1", "-p", "0", "-t", "2", NULL};
  start(&server, "echo_server", sargs);
  char line[128], port_s[8], want[160];
  read_line(&server, line, sizeof(line));
  unsigned port = 0;
  assert_int_equal(sscanf(line,
                          "echo_server: listening on 127.0.0.1#%u with 2 "
                          "threads",
                          &port),
                   1);
  snprintf(port_s, sizeof(port_s), "%u", port);

  /* One connection, dialed once and reused for the other four. */
  const char *one[] = {"-n", "5", "127.0.0.1", port_s, "hello", NULL};
  assert_int_equal(run("rpc_client", one), 0);
  assert_string_equal(err, "");
  snprintf(want, sizeof(want),
           "request 1: \"hello 1\" echoed, new connection to 127.0.0.1#%s, ",
           port_s);
  assert_contains(out, want);
  for (int i = 2; i <= 5; i++) {
    snprintf(want, sizeof(want),
             "request %d: \"hello %d\" echoed, reused connection to "
             "127.0.0.1#%s (use %d, idle ",
             i, i, port_s, i);
    assert_contains(out, want);
  }
  assert_contains(out, "5 requests, 5 echoed: 1 dial, 4 reuses\n");

  /* Three threads share one pool; a name from the fake DNS server. */
  const char *three[] = {"-r", resolv_conf,  "-c",   "3", "-n",
                         "4",  "v4.ex.test", port_s, NULL};
  assert_int_equal(run("rpc_client", three), 0);
  unsigned long dials = 0, reuses = 0;
  const char *sum = strstr(out, "12 requests, 12 echoed: ");
  assert_non_null(sum);
  assert_int_equal(sscanf(sum, "12 requests, 12 echoed: %lu dial%*s %lu reuse",
                          &dials, &reuses),
                   2);
  assert_true(dials >= 1 && dials <= 3);
  assert_int_equal(dials + reuses, 12);
  assert_int_equal(count(out, "\" echoed, "), 12);
  assert_int_equal(count(out, "[3] request 4: \"ping 4\" echoed"), 1);

  /* The server counted every frame, and stops cleanly on SIGTERM. */
  kill(server.pid, SIGTERM);
  assert_int_equal(finish(&server), 0);
  snprintf(want, sizeof(want),
           "echo_server: %lu connections, 17 frames "
           "echoed\n",
           1 + dials);
  assert_contains(err, want);
  assert_int_equal(count(err, "echo_server: thread "), 2);

  /* Nothing listens there now. */
  const char *refused[] = {"-n", "2", "127.0.0.1", port_s, NULL};
  assert_int_equal(run("rpc_client", refused), 2);
  assert_contains(err, "rpc_client: request 1: connection refused "
                       "(DT_ECONNREFUSED)\n");
  assert_contains(out, "2 requests, 0 echoed: 2 dials, 0 reuses\n");
}

static void test_echo_server_usage(void **state) {
  (void)state;
  const char *bad[] = {"-a", "not-an-address", NULL};
  assert_int_equal(run("echo_server", bad), 2);
  assert_contains(err, "echo_server: cannot listen on not-an-address port 0: "
                       "invalid argument (DT_EINVAL)\n");
  const char *threads[] = {"-t", "0", NULL};
  assert_int_equal(run("echo_server", threads), 1);
  assert_contains(err, "usage: echo_server ");
}

/* --- http_get ------------------------------------------------------------- */

static void test_http_get(void **state) {
  (void)state;
  char url[128], want[256];
  int c0, r0, c1, r1;
  web_counts(&c0, &r0);
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/hello", web.port);
  const char *args[] = {"-n", "3", url, NULL};
  assert_int_equal(run("http_get", args), 0);
  assert_string_equal(out, "hello, world\nhello, world\nhello, world\n");
  snprintf(want, sizeof(want),
           "http_get: GET %s: 200 OK, 13 bytes, new connection to "
           "127.0.0.1#%u (use 1)\n",
           url, web.port);
  assert_contains(err, want);
  snprintf(want, sizeof(want),
           "http_get: GET %s: 200 OK, 13 bytes, reused connection to "
           "127.0.0.1#%u (use 3)\n",
           url, web.port);
  assert_contains(err, want);
  assert_contains(err, "http_get: 1 connection dialed, 2 reused\n");
  /* The server agrees: three requests on one connection. */
  web_counts(&c1, &r1);
  assert_int_equal(c1 - c0, 1);
  assert_int_equal(r1 - r0, 3);
  pthread_mutex_lock(&web.lock);
  snprintf(want, sizeof(want), "GET /hello HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n",
           web.port);
  assert_contains(web.last_request, want);
  pthread_mutex_unlock(&web.lock);
}

static void test_http_get_chunked_by_name(void **state) {
  (void)state;
  char url[128];
  int c0, r0, c1, r1;
  web_counts(&c0, &r0);
  snprintf(url, sizeof(url), "http://v4.ex.test:%u/chunked", web.port);
  const char *args[] = {"-r", resolv_conf, "-n", "2", url, NULL};
  assert_int_equal(run("http_get", args), 0);
  assert_string_equal(out, "hello, chunked world\nhello, chunked world\n");
  assert_contains(err, ": 200 OK, 21 bytes, new connection to 127.0.0.1#");
  assert_contains(err, ": 200 OK, 21 bytes, reused connection to 127.0.0.1#");
  web_counts(&c1, &r1);
  assert_int_equal(c1 - c0, 1);
  assert_int_equal(r1 - r0, 2);
}

static void test_http_get_close_and_errors(void **state) {
  (void)state;
  char url[128];
  int c0, r0, c1, r1;
  web_counts(&c0, &r0);
  /* The body ends with the connection, which cannot be kept. */
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/close", web.port);
  const char *closing[] = {"-n", "2", url, NULL};
  assert_int_equal(run("http_get", closing), 0);
  assert_string_equal(out, "until close\nuntil close\n");
  assert_int_equal(count(err, ": 200 OK, 12 bytes, new connection to "), 2);
  assert_int_equal(count(err, " (use 1), closed\n"), 2);
  assert_contains(err, "http_get: 2 connections dialed, 0 reused\n");
  web_counts(&c1, &r1);
  assert_int_equal(c1 - c0, 2);

  /* A kept connection the server closed: the pool's health check finds it
   * closed, or the request fails with DT_ESTALECONN and is sent again on a
   * new one; either way both GETs succeed, on two connections. */
  web_counts(&c0, &r0);
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/hangup", web.port);
  const char *hangup[] = {"-n", "2", url, NULL};
  assert_int_equal(run("http_get", hangup), 0);
  assert_string_equal(out, "bye\nbye\n");
  /* The pool counts a reuse when the stale connection was handed out. */
  assert_contains(err, "http_get: 2 connections dialed, ");
  assert_int_equal(count(err, ": 200 OK, 4 bytes, new connection to "), 2);
  web_counts(&c1, &r1);
  assert_int_equal(c1 - c0, 2);
  assert_int_equal(r1 - r0, 2);

  snprintf(url, sizeof(url), "http://127.0.0.1:%u/missing", web.port);
  const char *missing[] = {url, NULL};
  assert_int_equal(run("http_get", missing), 3);
  assert_string_equal(out, "not found\n");
  assert_contains(err, ": 404 Not Found, 10 bytes, new connection");

  const char *https[] = {"https://127.0.0.1/", NULL};
  assert_int_equal(run("http_get", https), 1);
  assert_contains(err, "http_get: https://127.0.0.1/: not an http:// URL");
  const char *badport[] = {"http://127.0.0.1:0/", NULL};
  assert_int_equal(run("http_get", badport), 1);

  snprintf(url, sizeof(url), "http://nope.ex.test:%u/", web.port);
  const char *nx[] = {"-r", resolv_conf, url, NULL};
  assert_int_equal(run("http_get", nx), 2);
  assert_contains(err, ": no such name (NXDOMAIN) (DT_ENXDOMAIN)\n");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_resolve),
      cmocka_unit_test(test_resolve_ttl),
      cmocka_unit_test(test_resolve_sources),
      cmocka_unit_test(test_resolve_failures),
      cmocka_unit_test(test_dial),
      cmocka_unit_test(test_echo_rpc),
      cmocka_unit_test(test_echo_server_usage),
      cmocka_unit_test(test_http_get),
      cmocka_unit_test(test_http_get_chunked_by_name),
      cmocka_unit_test(test_http_get_close_and_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
