/* The dialer on real loopback sockets, names answered by the fake DNS
 * server. A "stuck" IPv6 listener (backlog 0 and one connection never
 * accepted: Linux drops further SYNs) makes an IPv6 connect hang without
 * root. Timing windows are generous (fallback 200-600 ms): the exact
 * timings are checked on the fake clock by test_dial. */
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
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "dialtone.h"
#include "fake/fakedns.h"

#define MS 1000u

static fakedns_t *srv;
static char server[64];
static bool ipv6; /* ::1 usable for the fake server and for listeners */

static const char *zone[] = {
    "dial.test. 60 IN SOA ns.dial.test. admin.dial.test. 1 7200 900 86400 60",
    "dual.dial.test. 60 IN AAAA ::1",
    "dual.dial.test. 60 IN A 127.0.0.1",
    "slow6.dial.test. 60 IN AAAA ::1",
    "slow6.dial.test. 60 IN A 127.0.0.1",
    "held.dial.test. 60 IN AAAA ::1",
    "held.dial.test. 60 IN A 127.0.0.1",
    "v4.dial.test. 60 IN A 127.0.0.1",
};

static int group_setup(void **state) {
  (void)state;
  if (fakedns_new(NULL, &srv) != DT_OK) {
    return -1;
  }
  for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]); i++) {
    if (fakedns_add(srv, zone[i]) != DT_OK) {
      return -1;
    }
  }
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.delay_ms = 500;
  fakedns_set_behaviour(srv, "slow6.dial.test", DT_TYPE_AAAA, &b);
  /* Each waits for the other: answered only if both are in flight. */
  fakedns_behaviour_init(&b);
  b.hold_until = DT_TYPE_A;
  fakedns_set_behaviour(srv, "held.dial.test", DT_TYPE_AAAA, &b);
  b.hold_until = DT_TYPE_AAAA;
  fakedns_set_behaviour(srv, "held.dial.test", DT_TYPE_A, &b);
  if (fakedns_start(srv) != DT_OK) {
    return -1;
  }
  snprintf(server, sizeof(server), "127.0.0.1:%u", fakedns_port(srv));
  int fd = -1;
  ipv6 = dt_listen(NULL, "::1", 0, &fd) == DT_OK;
  if (fd >= 0) {
    close(fd);
  }
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  fakedns_free(srv);
  return 0;
}

static bool need_ipv6(void) {
  if (!ipv6) {
    print_message("::1 unavailable on this host: test skipped\n");
    return false;
  }
  return true;
}

static dt_resolver_t *resolver(void) {
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  const char *servers[] = {server};
  o.servers = servers;
  o.nservers = 1;
  o.hosts = "";
  o.timeout_ms = 1000;
  o.attempts = 2;
  dt_resolver_t *r = NULL;
  assert_int_equal(dt_resolver_new(&o, &r), DT_OK);
  return r;
}

typedef struct {
  dt_resolver_t *r;
  dt_dialer_t *d;
} env_t;

static env_t env_with(dt_dial_opts_t *o) {
  env_t e;
  e.r = resolver();
  o->resolver = e.r;
  e.d = NULL;
  assert_int_equal(dt_dialer_new(o, &e.d), DT_OK);
  return e;
}

static env_t env(void) {
  dt_dial_opts_t o;
  dt_dial_opts_init(&o);
  return env_with(&o);
}

static void env_free(env_t *e) {
  dt_dialer_free(e->d);
  dt_resolver_free(e->r);
}

/* What sits at each address of a pair. */
typedef enum { GOOD, STUCK, CLOSED } kind_t;

typedef struct {
  uint16_t port;
  int fd6, fd4;
  int filler; /* the connection that fills a stuck listener's queue */
} pair_t;

static int bound_socket(int family, uint16_t port) {
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
  assert_true(fd >= 0);
  if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Starts a non-blocking connect to [::1]:port; returns the socket. */
static int connect6(uint16_t port) {
  struct sockaddr_in6 v6;
  memset(&v6, 0, sizeof(v6));
  v6.sin6_family = AF_INET6;
  v6.sin6_port = htons(port);
  v6.sin6_addr = in6addr_loopback;
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  int rc = connect(fd, (struct sockaddr *)&v6, sizeof(v6));
  assert_true(rc == 0 || errno == EINPROGRESS);
  return fd;
}

static bool connected_within(int fd, int ms) {
  struct pollfd p = {fd, POLLOUT, 0};
  if (poll(&p, 1, ms) != 1) {
    return false;
  }
  int err = -1;
  socklen_t len = sizeof(err);
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  return err == 0;
}

static void setup_family(pair_t *p, int fd, kind_t kind) {
  if (kind == CLOSED) {
    return; /* bound, not listening: connects are refused */
  }
  assert_int_equal(listen(fd, kind == STUCK ? 0 : SOMAXCONN), 0);
  if (kind == STUCK) {
    /* Fill the queue of one, then prove the next connect hangs. */
    p->filler = connect6(p->port);
    assert_true(connected_within(p->filler, 1000));
    int probe = connect6(p->port);
    bool hung = !connected_within(probe, 100);
    close(probe);
    if (!hung) {
      fail_msg("a full listen queue did not drop SYNs on this kernel");
    }
  }
}

/* The same port on ::1 and 127.0.0.1, each side as asked. */
static pair_t pair(kind_t v6, kind_t v4) {
  pair_t p;
  memset(&p, 0, sizeof(p));
  p.filler = -1;
  if (!ipv6) {
    /* No ::1: the IPv4 side alone, on any free port. */
    p.fd6 = -1;
    p.fd4 = bound_socket(AF_INET, 0);
    assert_true(p.fd4 >= 0);
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(p.fd4, (struct sockaddr *)&a, &len), 0);
    p.port = ntohs(a.sin_port);
    setup_family(&p, p.fd4, v4);
    return p;
  }
  for (int tries = 0; tries < 50; tries++) {
    p.fd6 = bound_socket(AF_INET6, 0);
    assert_true(p.fd6 >= 0);
    struct sockaddr_in6 a;
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(p.fd6, (struct sockaddr *)&a, &len), 0);
    p.port = ntohs(a.sin6_port);
    p.fd4 = bound_socket(AF_INET, p.port);
    if (p.fd4 >= 0) {
      setup_family(&p, p.fd6, v6);
      setup_family(&p, p.fd4, v4);
      return p;
    }
    close(p.fd6);
  }
  fail_msg("no port free on both ::1 and 127.0.0.1");
  return p;
}

static void pair_close(pair_t *p) {
  if (p->fd6 >= 0) {
    close(p->fd6);
  }
  close(p->fd4);
  if (p->filler >= 0) {
    close(p->filler);
  }
}

static const char *addr_str(const dt_dial_attempt_t *a, char *buf) {
  return dt_sockaddr_tostr((const struct sockaddr *)&a->addr, a->addrlen, buf,
                           DT_SOCKADDR_STRLEN);
}

static void test_stuck_ipv6_falls_back(void **state) {
  (void)state;
  if (!need_ipv6()) {
    skip();
  }
  pair_t p = pair(STUCK, GOOD);
  env_t e = env();
  dt_dial_report_t r;
  int fd = -1;
  assert_int_equal(dt_dial(e.d, "dual.dial.test", p.port, 5000, &fd, &r),
                   DT_OK);
  char buf[DT_SOCKADDR_STRLEN], want[64];
  assert_int_equal(r.family, AF_INET);
  assert_int_equal(r.nattempts, 2);
  snprintf(want, sizeof(want), "::1#%u", p.port);
  assert_string_equal(addr_str(&r.attempts[0], buf), want);
  assert_int_equal(r.attempts[0].status, DT_ECANCELED);
  snprintf(want, sizeof(want), "127.0.0.1#%u", p.port);
  assert_string_equal(addr_str(&r.attempts[1], buf), want);
  assert_int_equal(r.winner, 1);
  uint64_t fallback = r.attempts[1].end_us - r.attempts[0].start_us;
  print_message("fallback to IPv4 after %.1f ms\n", fallback / 1000.0);
  assert_in_range(fallback, 200 * MS, 600 * MS);
  struct sockaddr_in peer;
  socklen_t len = sizeof(peer);
  assert_int_equal(getpeername(fd, (struct sockaddr *)&peer, &len), 0);
  assert_int_equal(ntohs(peer.sin_port), p.port);
  close(fd);
  env_free(&e);
  pair_close(&p);
}

static void test_slow_aaaa(void **state) {
  (void)state;
  if (!need_ipv6()) {
    skip();
  }
  /* Both listeners good: waiting for AAAA would make IPv6 win. */
  pair_t p = pair(GOOD, GOOD);
  env_t e = env();
  dt_dial_report_t r;
  int fd = -1;
  assert_int_equal(dt_dial(e.d, "slow6.dial.test", p.port, 5000, &fd, &r),
                   DT_OK);
  print_message("connected after %.1f ms with AAAA 500 ms late\n",
                r.total_us / 1000.0);
  assert_int_equal(r.family, AF_INET);
  assert_true(r.total_us < 300 * MS);
  assert_true(r.a.done);
  assert_false(r.aaaa.done);
  assert_int_equal(r.a.source, DT_DIAL_SOURCE_DNS);
  close(fd);
  env_free(&e);
  pair_close(&p);
}

static void test_both_good_ipv6_wins(void **state) {
  (void)state;
  if (!need_ipv6()) {
    skip();
  }
  pair_t p = pair(GOOD, GOOD);
  env_t e = env();
  dt_dial_report_t r;
  int fd = -1;
  assert_int_equal(dt_dial(e.d, "dual.dial.test", p.port, 5000, &fd, &r),
                   DT_OK);
  assert_int_equal(r.family, AF_INET6);
  assert_int_equal(r.nattempts, 1);
  assert_int_equal(r.winner, 0);
  assert_true(r.dns_us > 0);
  assert_true(r.dns_us <= r.total_us);
  assert_int_equal(r.connect_us, r.attempts[0].end_us - r.attempts[0].start_us);
  close(fd);
  env_free(&e);
  pair_close(&p);
}

static void test_all_refused(void **state) {
  (void)state;
  if (!need_ipv6()) {
    skip();
  }
  pair_t p = pair(CLOSED, CLOSED);
  env_t e = env();
  dt_dial_report_t r;
  int fd = -1;
  assert_int_equal(dt_dial(e.d, "dual.dial.test", p.port, 5000, &fd, &r),
                   DT_ECONNREFUSED);
  assert_int_equal(fd, -1);
  assert_int_equal(r.status, DT_ECONNREFUSED);
  assert_int_equal(r.nattempts, 2);
  char buf[DT_SOCKADDR_STRLEN], want[64];
  snprintf(want, sizeof(want), "::1#%u", p.port);
  assert_string_equal(addr_str(&r.attempts[0], buf), want);
  snprintf(want, sizeof(want), "127.0.0.1#%u", p.port);
  assert_string_equal(addr_str(&r.attempts[1], buf), want);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(r.attempts[i].status, DT_ECONNREFUSED);
    assert_int_equal(r.attempts[i].sys_errno, ECONNREFUSED);
  }
  /* A refusal starts the next attempt at once: no attempt delay. */
  assert_true(r.attempts[1].start_us - r.attempts[0].start_us < 200 * MS);
  env_free(&e);
  pair_close(&p);
}

/* AAAA and A leave together: each is held until the other arrives. */
static void test_queries_together(void **state) {
  (void)state;
  pair_t p = pair(ipv6 ? GOOD : CLOSED, GOOD);
  env_t e = env();
  fakedns_reset_stats(srv);
  dt_dial_report_t r;
  int fd = -1;
  assert_int_equal(dt_dial(e.d, "held.dial.test", p.port, 3000, &fd, &r),
                   DT_OK);
  fakedns_stats_t s4, s6;
  assert_int_equal(fakedns_get_stats(srv, "held.dial.test", DT_TYPE_A, &s4),
                   DT_OK);
  assert_int_equal(fakedns_get_stats(srv, "held.dial.test", DT_TYPE_AAAA, &s6),
                   DT_OK);
  assert_int_equal(s4.udp, 1);
  assert_int_equal(s6.udp, 1);
  uint64_t gap = s4.first_us > s6.first_us ? s4.first_us - s6.first_us
                                           : s6.first_us - s4.first_us;
  assert_true(gap < 50 * MS);
  assert_true(r.total_us < 1000 * MS); /* no resolver retry was needed */
  assert_true(r.aaaa.asked && r.a.asked);
  close(fd);
  env_free(&e);
  pair_close(&p);
}

static void test_no_such_name(void **state) {
  (void)state;
  env_t e = env();
  dt_dial_report_t r;
  int fd = -1;
  assert_int_equal(dt_dial(e.d, "nope.dial.test", 80, 3000, &fd, &r),
                   DT_ENXDOMAIN);
  assert_int_equal(r.nattempts, 0);
  assert_int_equal(r.aaaa.status, DT_ENXDOMAIN);
  assert_int_equal(r.a.status, DT_ENXDOMAIN);
  env_free(&e);
}

static void test_literals_skip_dns(void **state) {
  (void)state;
  pair_t p = pair(ipv6 ? GOOD : CLOSED, GOOD);
  env_t e = env();
  fakedns_reset_stats(srv);
  dt_dial_report_t r;
  int fd = -1;
  assert_int_equal(dt_dial(e.d, "127.0.0.1", p.port, 1000, &fd, &r), DT_OK);
  assert_int_equal(r.family, AF_INET);
  assert_int_equal(r.dns_us, 0);
  close(fd);
  if (ipv6) {
    assert_int_equal(dt_dial(e.d, "::1", p.port, 1000, &fd, &r), DT_OK);
    assert_int_equal(r.family, AF_INET6);
    close(fd);
  }
  assert_int_equal(fakedns_total(srv, FAKEDNS_UDP), 0);
  assert_int_equal(fakedns_total(srv, FAKEDNS_TCP), 0);
  env_free(&e);
  pair_close(&p);
}

static void test_unix(void **state) {
  (void)state;
  char dir[] = "/tmp/dt-test-dial-net-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[128], host[140];
  snprintf(path, sizeof(path), "%s/s.sock", dir);
  snprintf(host, sizeof(host), "unix:%s", path);
  env_t e = env();
  dt_dial_report_t r;
  int fd = -1;
  assert_int_equal(dt_dial(e.d, host, 0, 1000, &fd, &r), DT_ENOENT);
  assert_int_equal(r.nattempts, 1);
  assert_int_equal(r.attempts[0].sys_errno, ENOENT);
  int l = -1;
  assert_int_equal(dt_listen_unix(NULL, path, &l), DT_OK);
  assert_int_equal(dt_dial(e.d, host, 0, 1000, &fd, &r), DT_OK);
  assert_int_equal(r.family, AF_UNIX);
  assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  int c = accept(l, NULL, NULL);
  assert_true(c >= 0);
  assert_int_equal(write(fd, "hi", 2), 2);
  char buf[2];
  assert_int_equal(read(c, buf, 2), 2);
  close(c);
  close(fd);
  close(l);
  unlink(path);
  rmdir(dir);
  env_free(&e);
}

static int get_int(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof(v);
  assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
  return v;
}

/* What the dialer asked for is what the kernel holds. */
static void test_socket_options(void **state) {
  (void)state;
  pair_t p = pair(ipv6 ? GOOD : CLOSED, GOOD);
  env_t e = env();
  int fd = -1;
  assert_int_equal(dt_dial(e.d, "v4.dial.test", p.port, 1000, &fd, NULL),
                   DT_OK);
  assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_NODELAY), 1);
  assert_int_equal(get_int(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
  assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE), 30);
  assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL), 10);
  assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_KEEPCNT), 3);
  assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  close(fd);
  env_free(&e);

  dt_dial_opts_t o;
  dt_dial_opts_init(&o);
  o.nonblocking = true;
  o.sockopts.nodelay = false;
  o.sockopts.keepalive = false;
  o.sockopts.rcvbuf = 65536;
  o.sockopts.sndbuf = 65536;
  o.sockopts.user_timeout_ms = 12000;
  o.bind_addr = "127.0.0.1";
  e = env_with(&o);
  assert_int_equal(dt_dial(e.d, "127.0.0.1", p.port, 1000, &fd, NULL), DT_OK);
  assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_NODELAY), 0);
  assert_int_equal(get_int(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
  assert_true(get_int(fd, SOL_SOCKET, SO_RCVBUF) >= 65536);
  assert_true(get_int(fd, SOL_SOCKET, SO_SNDBUF) >= 65536);
  assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 12000);
  assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
  struct sockaddr_in me;
  socklen_t len = sizeof(me);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&me, &len), 0);
  assert_int_equal(ntohl(me.sin_addr.s_addr), INADDR_LOOPBACK);
  close(fd);
  env_free(&e);
  pair_close(&p);
}

typedef struct {
  dt_dial_event_type_t type[16];
  dt_dial_source_t source[16];
  uint64_t t[16];
  size_t n;
} events_t;

static void record(const dt_dial_event_t *ev, void *ctx) {
  events_t *e = ctx;
  if (e->n < 16) {
    e->type[e->n] = ev->type;
    e->source[e->n] = ev->source;
    e->t[e->n] = ev->time_us;
    e->n++;
  }
}

static void test_trace(void **state) {
  (void)state;
  pair_t p = pair(ipv6 ? GOOD : CLOSED, GOOD);
  events_t ev;
  memset(&ev, 0, sizeof(ev));
  dt_dial_opts_t o;
  dt_dial_opts_init(&o);
  o.trace = record;
  o.trace_ctx = &ev;
  o.family = AF_INET;
  env_t e = env_with(&o);
  int fd = -1;
  dt_dial_report_t r;
  assert_int_equal(dt_dial(e.d, "dual.dial.test", p.port, 1000, &fd, &r),
                   DT_OK);
  close(fd);
  static const dt_dial_event_type_t want[] = {
      DT_DIAL_EV_LOOKUP_START, DT_DIAL_EV_LOOKUP_DONE, DT_DIAL_EV_ATTEMPT_START,
      DT_DIAL_EV_ATTEMPT_DONE, DT_DIAL_EV_CONNECTED};
  assert_int_equal(ev.n, 5);
  for (size_t i = 0; i < 5; i++) {
    assert_int_equal(ev.type[i], want[i]);
    if (i > 0) {
      assert_true(ev.t[i] >= ev.t[i - 1]);
    }
  }
  assert_int_equal(ev.source[1], DT_DIAL_SOURCE_DNS);
  assert_true(ev.t[0] >= r.start_us);
  env_free(&e);
  pair_close(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stuck_ipv6_falls_back),
      cmocka_unit_test(test_slow_aaaa),
      cmocka_unit_test(test_both_good_ipv6_wins),
      cmocka_unit_test(test_all_refused),
      cmocka_unit_test(test_queries_together),
      cmocka_unit_test(test_no_such_name),
      cmocka_unit_test(test_literals_skip_dns),
      cmocka_unit_test(test_unix),
      cmocka_unit_test(test_socket_options),
      cmocka_unit_test(test_trace),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
