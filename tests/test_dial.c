/* The dial state machine, deterministic: fake sockets (dt_sockops_t) whose
 * connects complete when the test says, on a fake clock that poll()
 * advances. Address answers come at scripted times through the machine's
 * feed (DT__DIAL_FEED) or, for dt_dial() itself, from IP literals and a
 * hosts file. No packet leaves and no real time passes. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "dial_int.h"
#include "dialtone.h"

#define MS 1000u
#define NEVER UINT64_MAX

/* ---- the fake network ---------------------------------------------------- */

typedef enum {
  HANG = 0, /* SYN dropped: nothing ever happens */
  CONNECT,  /* handshake completes after at_ms */
  FAIL,     /* the connect fails after at_ms with err */
} outcome_t;

typedef struct {
  const char *addr; /* destination as text, no port */
  outcome_t what;
  unsigned at_ms;
  int err;      /* FAIL: errno poll() reports through SO_ERROR */
  int sync_err; /* connect() itself fails with this errno */
} script_t;

typedef struct {
  bool used, open, tcp;
  int family;
  char dst[64];
  const script_t *sc;
  uint64_t connect_at, closed_at;
  bool connecting; /* connect() returned EINPROGRESS */
  bool blocking_set;
  int opts[32][3]; /* level, name, value of each setsockopt */
  size_t nopts;
  uint64_t opts_at; /* time of the last setsockopt */
  bool bound;
} fsock_t;

#define FD_BASE 1000
#define MAX_SOCKS 256

typedef struct {
  uint64_t now;
  script_t script[16];
  size_t nscript;
  fsock_t socks[MAX_SOCKS];
  size_t nsocks;
  bool no_v6_source; /* UDP connects to IPv6 fail: no route */
  int fail_level, fail_name, fail_errno, fail_family;
  int socket_errno; /* socket() fails */
  struct {
    char dst[64];
    uint64_t at;
  } connects[64];
  size_t nconnects;
  size_t udp_opened;
} fake_t;

static fake_t F;

static fsock_t *sock_of(fake_t *f, int fd) {
  assert_true(fd >= FD_BASE && (size_t)(fd - FD_BASE) < f->nsocks);
  fsock_t *s = &f->socks[fd - FD_BASE];
  assert_true(s->open);
  return s;
}

static const script_t *script_for(fake_t *f, const char *dst) {
  for (size_t i = 0; i < f->nscript; i++) {
    if (strcmp(f->script[i].addr, dst) == 0) {
      return &f->script[i];
    }
  }
  return NULL; /* unscripted destinations hang */
}

static uint64_t ready_at(const fsock_t *s) {
  if (!s->connecting || s->sc == NULL || s->sc->what == HANG) {
    return NEVER;
  }
  return s->connect_at + (uint64_t)s->sc->at_ms * MS;
}

static void addr_text(const struct sockaddr *sa, char *buf, size_t len) {
  if (sa->sa_family == AF_UNIX) {
    snprintf(buf, len, "unix");
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6,
              &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
              (socklen_t)len);
  } else {
    inet_ntop(AF_INET,
              &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
              (socklen_t)len);
  }
}

static int f_socket(void *ctx, int domain, int type, int protocol) {
  fake_t *f = ctx;
  (void)protocol;
  assert_true(type & SOCK_NONBLOCK);
  assert_true(type & SOCK_CLOEXEC);
  if (f->socket_errno != 0) {
    errno = f->socket_errno;
    return -1;
  }
  assert_true(f->nsocks < MAX_SOCKS);
  fsock_t *s = &f->socks[f->nsocks];
  memset(s, 0, sizeof(*s));
  s->used = s->open = true;
  s->family = domain;
  s->tcp = (type & 0xf) == SOCK_STREAM;
  if (!s->tcp) {
    f->udp_opened++;
  }
  return FD_BASE + (int)f->nsocks++;
}

static int f_connect(void *ctx, int fd, const struct sockaddr *sa,
                     socklen_t len) {
  fake_t *f = ctx;
  (void)len;
  fsock_t *s = sock_of(f, fd);
  addr_text(sa, s->dst, sizeof(s->dst));
  if (!s->tcp) {
    if (sa->sa_family == AF_INET6 && f->no_v6_source) {
      errno = ENETUNREACH;
      return -1;
    }
    return 0;
  }
  /* Every option goes on before the SYN. */
  assert_true(s->nopts == 0 || s->opts_at <= f->now);
  assert_true(f->nconnects < 64);
  memcpy(f->connects[f->nconnects].dst, s->dst, sizeof(s->dst));
  f->connects[f->nconnects++].at = f->now;
  s->sc = script_for(f, s->dst);
  s->connect_at = f->now;
  if (s->sc != NULL && s->sc->sync_err != 0) {
    errno = s->sc->sync_err;
    return -1;
  }
  s->connecting = true;
  errno = EINPROGRESS;
  return -1;
}

static int f_bind(void *ctx, int fd, const struct sockaddr *sa, socklen_t len) {
  (void)sa;
  (void)len;
  sock_of(ctx, fd)->bound = true;
  return 0;
}

static int f_getsockname(void *ctx, int fd, struct sockaddr *sa,
                         socklen_t *len) {
  fsock_t *s = sock_of(ctx, fd);
  assert_false(s->tcp);
  if (s->family == AF_INET6) {
    struct sockaddr_in6 v6;
    memset(&v6, 0, sizeof(v6));
    v6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::99", &v6.sin6_addr);
    memcpy(sa, &v6, sizeof(v6));
    *len = sizeof(v6);
  } else {
    struct sockaddr_in v4;
    memset(&v4, 0, sizeof(v4));
    v4.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.99", &v4.sin_addr);
    memcpy(sa, &v4, sizeof(v4));
    *len = sizeof(v4);
  }
  return 0;
}

static int f_setsockopt(void *ctx, int fd, int level, int name, const void *val,
                        socklen_t len) {
  fake_t *f = ctx;
  fsock_t *s = sock_of(f, fd);
  assert_int_equal(len, sizeof(int));
  assert_false(s->connecting); /* never after connect() */
  if (level == f->fail_level && name == f->fail_name &&
      (f->fail_family == 0 || f->fail_family == s->family)) {
    errno = f->fail_errno;
    return -1;
  }
  if (s->nopts < 32) {
    s->opts[s->nopts][0] = level;
    s->opts[s->nopts][1] = name;
    memcpy(&s->opts[s->nopts][2], val, sizeof(int));
    s->nopts++;
  }
  s->opts_at = f->now;
  return 0;
}

static int f_getsockopt(void *ctx, int fd, int level, int name, void *val,
                        socklen_t *len) {
  fake_t *f = ctx;
  fsock_t *s = sock_of(f, fd);
  assert_int_equal(level, SOL_SOCKET);
  assert_int_equal(name, SO_ERROR);
  int err = 0;
  if (s->sc != NULL && s->sc->what == FAIL && ready_at(s) <= f->now) {
    err = s->sc->err;
  }
  memcpy(val, &err, sizeof(err));
  *len = sizeof(err);
  return 0;
}

static int f_set_nonblocking(void *ctx, int fd, bool on) {
  fsock_t *s = sock_of(ctx, fd);
  assert_false(on);
  s->blocking_set = true;
  return 0;
}

/* Advances the clock to the first scripted completion among fds, or by the
 * timeout when none comes sooner. */
static int f_poll(void *ctx, struct pollfd *fds, nfds_t n, int timeout_ms) {
  fake_t *f = ctx;
  uint64_t first = NEVER;
  for (nfds_t i = 0; i < n; i++) {
    fds[i].revents = 0;
    uint64_t t = ready_at(sock_of(f, fds[i].fd));
    if (t < first) {
      first = t;
    }
  }
  if (first == NEVER && timeout_ms < 0) {
    fail_msg("poll() would wait forever");
  }
  uint64_t limit = timeout_ms < 0 ? NEVER : f->now + (uint64_t)timeout_ms * MS;
  if (first > limit) {
    f->now = limit;
    return 0;
  }
  if (first > f->now) {
    f->now = first;
  }
  int ready = 0;
  for (nfds_t i = 0; i < n; i++) {
    const fsock_t *s = sock_of(f, fds[i].fd);
    if (ready_at(s) <= f->now) {
      fds[i].revents =
          s->sc->what == CONNECT ? POLLOUT : (POLLOUT | POLLERR | POLLHUP);
      ready++;
    }
  }
  return ready;
}

static int f_close(void *ctx, int fd) {
  fake_t *f = ctx;
  fsock_t *s = sock_of(f, fd);
  s->open = false;
  s->closed_at = f->now;
  return 0;
}

static uint64_t f_clock(void *ctx) {
  return ((fake_t *)ctx)->now;
}

static const dt_sockops_t fake_ops = {
    f_socket,     f_connect,         f_bind, f_getsockname, f_setsockopt,
    f_getsockopt, f_set_nonblocking, f_poll, f_close,       &F,
};

static void script(const char *addr, outcome_t what, unsigned at_ms, int err) {
  assert_true(F.nscript < 16);
  script_t *s = &F.script[F.nscript++];
  memset(s, 0, sizeof(*s));
  s->addr = addr;
  s->what = what;
  s->at_ms = at_ms;
  s->err = err;
}

static void script_sync(const char *addr, int sync_err) {
  script(addr, FAIL, 0, sync_err);
  F.script[F.nscript - 1].sync_err = sync_err;
}

static size_t open_tcp(void) {
  size_t n = 0;
  for (size_t i = 0; i < F.nsocks; i++) {
    n += F.socks[i].open && F.socks[i].tcp;
  }
  return n;
}

/* ---- fixtures ------------------------------------------------------------ */

static dt_resolver_t *R;
static char hosts_path[64];

static int group_setup(void **state) {
  (void)state;
  snprintf(hosts_path, sizeof(hosts_path), "/tmp/dt-test-dial-XXXXXX");
  int fd = mkstemp(hosts_path);
  if (fd < 0) {
    return -1;
  }
  const char text[] = "2001:db8::10 both.test\n"
                      "192.0.2.10 both.test\n"
                      "2001:db8::11 both.test\n"
                      "192.0.2.11 v4only.test\n";
  if (write(fd, text, sizeof(text) - 1) != (ssize_t)sizeof(text) - 1) {
    return -1;
  }
  close(fd);
  /* A resolver that never sends: every test name is answered by the hosts
   * file, a literal, or the feed. */
  dt_resolver_opts_t ro;
  dt_resolver_opts_init(&ro);
  static const char *const servers[] = {"127.0.0.1:9"};
  ro.servers = servers;
  ro.nservers = 1;
  ro.hosts = hosts_path;
  ro.clock_us = f_clock;
  ro.clock_ctx = &F;
  return dt_resolver_new(&ro, &R) == DT_OK ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  dt_resolver_free(R);
  unlink(hosts_path);
  return 0;
}

static int reset(void **state) {
  (void)state;
  memset(&F, 0, sizeof(F));
  F.now = 1000000 * MS; /* an arbitrary start, far from 0 */
  dt__alloc_reset_counts();
  return 0;
}

static void opts_init(dt_dial_opts_t *o) {
  dt_dial_opts_init(o);
  o->resolver = R;
  o->sockops = &fake_ops;
  o->clock_us = f_clock;
  o->clock_ctx = &F;
}

static dt_dialer_t *dialer(const dt_dial_opts_t *o) {
  dt_dialer_t *d = NULL;
  assert_int_equal(dt_dialer_new(o, &d), DT_OK);
  return d;
}

static dt_dialer_t *default_dialer(void) {
  dt_dial_opts_t o;
  opts_init(&o);
  return dialer(&o);
}

/* ---- the feed driver ----------------------------------------------------- */

typedef struct {
  unsigned at_ms;
  int family;
  const char *addrs[4];
  dt_status_t st;
} answer_t;

static void to_addrs(const answer_t *a, dt_addr_t *out, size_t *n) {
  *n = 0;
  for (size_t i = 0; i < 4 && a->addrs[i] != NULL; i++) {
    memset(&out[i], 0, sizeof(out[i]));
    if (a->family == AF_INET6) {
      struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out[i].addr;
      v6->sin6_family = AF_INET6;
      assert_int_equal(inet_pton(AF_INET6, a->addrs[i], &v6->sin6_addr), 1);
      out[i].addrlen = sizeof(*v6);
    } else {
      struct sockaddr_in *v4 = (struct sockaddr_in *)&out[i].addr;
      v4->sin_family = AF_INET;
      assert_int_equal(inet_pton(AF_INET, a->addrs[i], &v4->sin_addr), 1);
      out[i].addrlen = sizeof(*v4);
    }
    (*n)++;
  }
}

/* Runs a dial whose answers arrive as scripted, the way dt_dial() runs one:
 * poll until the next deadline (or the next answer), process, repeat. */
static dt_status_t drive(dt_dialer_t *d, const answer_t *ans, size_t nans,
                         int timeout_ms, int *fd, dt_dial_report_t *rep) {
  dt__dial_t *m = malloc(sizeof(*m));
  assert_non_null(m);
  uint64_t t0 = F.now;
  assert_int_equal(
      dt__dial_start(m, d, "dual.test", 443, timeout_ms, rep, DT__DIAL_FEED),
      DT_OK);
  size_t next = 0;
  for (;;) {
    while (!m->done && next < nans &&
           t0 + (uint64_t)ans[next].at_ms * MS <= F.now) {
      dt_addr_t a[4];
      size_t n;
      to_addrs(&ans[next], a, &n);
      dt__dial_feed(m, ans[next].family, a, n, ans[next].st,
                    DT_DIAL_SOURCE_DNS);
      next++;
    }
    if (m->done) {
      break;
    }
    struct pollfd pfd[DT__DIAL_MAX_POLLFDS];
    size_t n = dt__dial_pollfds(m, pfd);
    uint64_t dl = dt__dial_deadline(m).at_us;
    if (next < nans && t0 + (uint64_t)ans[next].at_ms * MS < dl) {
      dl = t0 + (uint64_t)ans[next].at_ms * MS;
    }
    int ms = dl == NEVER ? -1 : (int)((dl - F.now + MS - 1) / MS);
    int rc = f_poll(&F, pfd, n, ms);
    dt__dial_process(m, pfd, rc > 0 ? n : 0);
  }
  dt_status_t st = dt__dial_take(m, fd);
  dt__dial_cleanup(m);
  free(m);
  return st;
}

#define V6(at, ...)                                                            \
  { at, AF_INET6, {__VA_ARGS__}, DT_OK }
#define V4(at, ...)                                                            \
  { at, AF_INET, {__VA_ARGS__}, DT_OK }

static uint64_t rel(uint64_t t, uint64_t t0) {
  return (t - t0) / MS;
}

static const char *attempt_addr(const dt_dial_report_t *r, size_t i,
                                char *buf) {
  addr_text((const struct sockaddr *)&r->attempts[i].addr, buf, 64);
  return buf;
}

/* Checks the attempts' destinations and start times (ms since the start). */
static void expect_attempts(const dt_dial_report_t *r, const char *const *dst,
                            const unsigned *start_ms, size_t n) {
  char buf[64];
  assert_int_equal(r->nattempts, n);
  for (size_t i = 0; i < n; i++) {
    assert_string_equal(attempt_addr(r, i, buf), dst[i]);
    assert_int_equal(r->attempts[i].start_us / MS, start_ms[i]);
  }
}

/* ---- tests --------------------------------------------------------------- */

static void test_literal(void **state) {
  (void)state;
  dt_dialer_t *d = default_dialer();
  script("192.0.2.1", CONNECT, 5, 0);
  dt_dial_report_t r;
  int fd = -1;
  assert_int_equal(dt_dial(d, "192.0.2.1", 80, -1, &fd, &r), DT_OK);
  assert_int_equal(fd, FD_BASE);
  assert_int_equal(r.status, DT_OK);
  assert_int_equal(r.nattempts, 1);
  assert_int_equal(r.winner, 0);
  assert_int_equal(r.family, AF_INET);
  assert_int_equal(r.connect_us, 5 * MS);
  assert_int_equal(r.total_us, 5 * MS);
  assert_int_equal(r.dns_us, 0);
  assert_int_equal(r.a.source, DT_DIAL_SOURCE_LITERAL);
  assert_false(r.a.asked);
  assert_false(r.aaaa.asked);
  char buf[DT_SOCKADDR_STRLEN];
  assert_string_equal(dt_sockaddr_tostr((struct sockaddr *)&r.attempts[0].addr,
                                        r.attempts[0].addrlen, buf,
                                        sizeof(buf)),
                      "192.0.2.1#80");
  /* One address: no source lookups; tuned, then handed back blocking. */
  assert_int_equal(F.udp_opened, 0);
  fsock_t *s = &F.socks[0];
  assert_true(s->blocking_set);
  static const int want[][3] = {
      {IPPROTO_TCP, TCP_NODELAY, 1},   {SOL_SOCKET, SO_KEEPALIVE, 1},
      {IPPROTO_TCP, TCP_KEEPIDLE, 30}, {IPPROTO_TCP, TCP_KEEPINTVL, 10},
      {IPPROTO_TCP, TCP_KEEPCNT, 3},
  };
  assert_int_equal(s->nopts, 5);
  assert_memory_equal(s->opts, want, sizeof(want));
  assert_true(s->open);

  /* IPv6 literal, and a scope. */
  reset(NULL);
  script("2001:db8::1", CONNECT, 1, 0);
  assert_int_equal(dt_dial(d, "2001:db8::1", 443, -1, &fd, &r), DT_OK);
  assert_int_equal(r.family, AF_INET6);
  assert_int_equal(dt_dial(d, "fe80::1%1", 443, -1, &fd, &r), DT_ETIMEDOUT);
  assert_int_equal(((struct sockaddr_in6 *)&r.attempts[0].addr)->sin6_scope_id,
                   1);
  dt_dialer_free(d);
}

/* RFC 8305 §5: one attempt, then the next each attempt delay, families
 * interleaved; the first to connect wins and the rest close at once. */
static void test_attempt_delay_and_losers(void **state) {
  (void)state;
  dt_dialer_t *d = default_dialer();
  script("192.0.2.2", CONNECT, 10, 0);
  answer_t ans[] = {V6(0, "2001:db8::1", "2001:db8::2"),
                    V4(0, "192.0.2.1", "192.0.2.2")};
  dt_dial_report_t r;
  int fd = -1;
  uint64_t t0 = F.now;
  assert_int_equal(drive(d, ans, 2, -1, &fd, &r), DT_OK);
  static const char *const dst[] = {"2001:db8::1", "192.0.2.1", "2001:db8::2",
                                    "192.0.2.2"};
  static const unsigned at[] = {0, 250, 500, 750};
  expect_attempts(&r, dst, at, 4);
  assert_int_equal(r.winner, 3);
  assert_int_equal(r.total_us, 760 * MS);
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(r.attempts[i].status, DT_ECANCELED);
    assert_int_equal(r.attempts[i].end_us, 760 * MS);
  }
  assert_int_equal(r.attempts[3].status, DT_OK);
  /* Losers closed at the moment of the win; only the winner is open. */
  assert_int_equal(open_tcp(), 1);
  for (size_t i = 0; i < F.nsocks; i++) {
    if (F.socks[i].tcp && !F.socks[i].open) {
      assert_int_equal(rel(F.socks[i].closed_at, t0), 760);
    }
  }
  assert_true(F.socks[fd - FD_BASE].open);
  assert_string_equal(F.socks[fd - FD_BASE].dst, "192.0.2.2");
  /* The source of each address was asked once, and those sockets closed. */
  assert_int_equal(F.udp_opened, 4);
  dt_dialer_free(d);
}

/* A failed attempt starts the next at once, asynchronously or not. */
static void test_failure_starts_next(void **state) {
  (void)state;
  dt_dialer_t *d = default_dialer();
  script("2001:db8::1", FAIL, 30, ECONNREFUSED);
  script_sync("192.0.2.1", ENETUNREACH);
  script("2001:db8::2", FAIL, 20, EHOSTUNREACH);
  script("192.0.2.2", CONNECT, 5, 0);
  answer_t ans[] = {V6(0, "2001:db8::1", "2001:db8::2"),
                    V4(0, "192.0.2.1", "192.0.2.2")};
  dt_dial_report_t r;
  int fd;
  assert_int_equal(drive(d, ans, 2, -1, &fd, &r), DT_OK);
  static const char *const dst[] = {"2001:db8::1", "192.0.2.1", "2001:db8::2",
                                    "192.0.2.2"};
  static const unsigned at[] = {0, 30, 30, 50};
  expect_attempts(&r, dst, at, 4);
  assert_int_equal(r.attempts[0].status, DT_ECONNREFUSED);
  assert_int_equal(r.attempts[0].sys_errno, ECONNREFUSED);
  assert_int_equal(r.attempts[1].status, DT_ENETUNREACH);
  assert_int_equal(r.attempts[1].end_us, 30 * MS);
  assert_int_equal(r.attempts[2].status, DT_EHOSTUNREACH);
  assert_int_equal(r.attempts[3].status, DT_OK);
  assert_int_equal(r.total_us, 55 * MS);
  dt_dialer_free(d);
}

/* Never two SYNs at once: with everything hanging, connects are spaced by
 * the attempt delay, which is clamped to [10 ms, 2 s]. */
static void test_no_burst_and_clamp(void **state) {
  (void)state;
  for (int k = 0; k < 3; k++) {
    reset(NULL);
    static const int asked[] = {1, 100, 5000};
    static const unsigned spacing[] = {10, 100, 2000};
    dt_dial_opts_t o;
    opts_init(&o);
    o.attempt_delay_ms = asked[k];
    dt_dialer_t *d = dialer(&o);
    answer_t ans[] = {V6(0, "2001:db8::1", "2001:db8::2", "2001:db8::3"),
                      V4(0, "192.0.2.1", "192.0.2.2", "192.0.2.3")};
    dt_dial_report_t r;
    int fd;
    assert_int_equal(drive(d, ans, 2, 10000, &fd, &r), DT_ETIMEDOUT);
    assert_int_equal(r.nattempts, spacing[k] * 6 < 10000 ? 6 : 5);
    for (size_t i = 0; i < F.nconnects; i++) {
      assert_int_equal(rel(F.connects[i].at, F.connects[0].at), i * spacing[k]);
    }
    dt_dialer_free(d);
  }
}

/* RFC 8305 §4 first address family count. */
static void test_first_family_count(void **state) {
  (void)state;
  dt_dial_opts_t o;
  opts_init(&o);
  o.first_family_count = 2;
  o.attempt_delay_ms = 100;
  dt_dialer_t *d = dialer(&o);
  answer_t ans[] = {V6(0, "2001:db8::1", "2001:db8::2", "2001:db8::3"),
                    V4(0, "192.0.2.1", "192.0.2.2")};
  dt_dial_report_t r;
  int fd;
  assert_int_equal(drive(d, ans, 2, 1000, &fd, &r), DT_ETIMEDOUT);
  static const char *const dst[] = {"2001:db8::1", "2001:db8::2", "192.0.2.1",
                                    "2001:db8::3", "192.0.2.2"};
  static const unsigned at[] = {0, 100, 200, 300, 400};
  expect_attempts(&r, dst, at, 5);
  dt_dialer_free(d);
}

/* RFC 8305 §3: A first waits up to the resolution delay for AAAA. */
static void test_resolution_delay(void **state) {
  (void)state;
  dt_dialer_t *d = default_dialer();
  dt_dial_report_t r;
  int fd;
  /* AAAA within the delay: IPv6 goes first, when AAAA arrives. */
  answer_t soon[] = {V4(0, "192.0.2.1"), V6(30, "2001:db8::1")};
  assert_int_equal(drive(d, soon, 2, 1000, &fd, &r), DT_ETIMEDOUT);
  static const char *const d1[] = {"2001:db8::1", "192.0.2.1"};
  static const unsigned t1[] = {30, 280};
  expect_attempts(&r, d1, t1, 2);
  assert_int_equal(r.dns_us, 0); /* A's addresses were known at once */

  /* AAAA late: IPv4 starts when the delay ends, IPv6 joins the list and is
   * next, ahead of the second IPv4 address. */
  reset(NULL);
  answer_t late[] = {V4(0, "192.0.2.1", "192.0.2.2"), V6(80, "2001:db8::1")};
  assert_int_equal(drive(d, late, 2, 1000, &fd, &r), DT_ETIMEDOUT);
  static const char *const d2[] = {"192.0.2.1", "2001:db8::1", "192.0.2.2"};
  static const unsigned t2[] = {50, 300, 550};
  expect_attempts(&r, d2, t2, 3);
  assert_true(r.aaaa.done);
  assert_int_equal(r.aaaa.end_us, 80 * MS);

  /* A negative AAAA ends the wait at once. */
  reset(NULL);
  answer_t neg[] = {{5, AF_INET6, {NULL}, DT_ENODATA}, V4(10, "192.0.2.1")};
  script("192.0.2.1", CONNECT, 1, 0);
  assert_int_equal(drive(d, neg, 2, 1000, &fd, &r), DT_OK);
  static const char *const d3[] = {"192.0.2.1"};
  static const unsigned t3[] = {10};
  expect_attempts(&r, d3, t3, 1);
  assert_int_equal(r.aaaa.status, DT_ENODATA);

  /* AAAA first: connecting starts at once; A joins later. */
  reset(NULL);
  answer_t v6first[] = {V6(10, "2001:db8::1"), V4(100, "192.0.2.1")};
  assert_int_equal(drive(d, v6first, 2, 1000, &fd, &r), DT_ETIMEDOUT);
  static const char *const d4[] = {"2001:db8::1", "192.0.2.1"};
  static const unsigned t4[] = {10, 260};
  expect_attempts(&r, d4, t4, 2);

  /* A resolution delay of 0 never waits. */
  dt_dialer_free(d);
  reset(NULL);
  dt_dial_opts_t o;
  opts_init(&o);
  o.resolution_delay_ms = 0;
  d = dialer(&o);
  answer_t nowait[] = {V4(0, "192.0.2.1"), V6(30, "2001:db8::1")};
  assert_int_equal(drive(d, nowait, 2, 1000, &fd, &r), DT_ETIMEDOUT);
  static const char *const d5[] = {"192.0.2.1", "2001:db8::1"};
  static const unsigned t5[] = {0, 250};
  expect_attempts(&r, d5, t5, 2);
  dt_dialer_free(d);
}

/* Addresses arriving when every attempt has failed start at once; the dial
 * waits for the other family before giving up. */
static void test_late_family_after_failures(void **state) {
  (void)state;
  dt_dialer_t *d = default_dialer();
  script("192.0.2.1", FAIL, 5, ECONNREFUSED);
  script("2001:db8::1", CONNECT, 3, 0);
  answer_t ans[] = {V4(0, "192.0.2.1"), V6(400, "2001:db8::1")};
  dt_dial_report_t r;
  int fd;
  assert_int_equal(drive(d, ans, 2, 1000, &fd, &r), DT_OK);
  static const char *const dst[] = {"192.0.2.1", "2001:db8::1"};
  static const unsigned at[] = {50, 400};
  expect_attempts(&r, dst, at, 2);
  assert_int_equal(r.family, AF_INET6);
  assert_int_equal(r.total_us, 403 * MS);
  dt_dialer_free(d);
}

/* RFC 6724 rule 1: with no IPv6 source, IPv6 addresses go last. */
static void test_unusable_family_last(void **state) {
  (void)state;
  dt_dialer_t *d = default_dialer();
  F.no_v6_source = true;
  /* A first (so the IPv6 address is not tried alone on arrival), AAAA in
   * the same instant. */
  answer_t ans[] = {V4(0, "192.0.2.1", "192.0.2.2"), V6(0, "2001:db8::1")};
  dt_dial_report_t r;
  int fd;
  assert_int_equal(drive(d, ans, 2, 700, &fd, &r), DT_ETIMEDOUT);
  static const char *const dst[] = {"192.0.2.1", "192.0.2.2", "2001:db8::1"};
  static const unsigned at[] = {0, 250, 500};
  expect_attempts(&r, dst, at, 3);
  dt_dialer_free(d);
}

static void test_overall_timeout(void **state) {
  (void)state;
  dt_dialer_t *d = default_dialer();
  answer_t ans[] = {V6(0, "2001:db8::1", "2001:db8::2"),
                    V4(0, "192.0.2.1", "192.0.2.2")};
  dt_dial_report_t r;
  int fd = -7;
  uint64_t t0 = F.now;
  assert_int_equal(drive(d, ans, 2, 1000, &fd, &r), DT_ETIMEDOUT);
  assert_int_equal(fd, -7); /* untouched on failure */
  assert_int_equal(r.status, DT_ETIMEDOUT);
  assert_int_equal(r.total_us, 1000 * MS);
  assert_int_equal(r.nattempts, 4);
  assert_int_equal(r.winner, -1);
  assert_int_equal(r.family, AF_UNSPEC);
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(r.attempts[i].status, DT_ETIMEDOUT);
    assert_int_equal(r.attempts[i].end_us, 1000 * MS);
  }
  assert_int_equal(open_tcp(), 0);
  assert_int_equal(rel(F.now, t0), 1000);

  /* The dialer's own limit applies when the call gives none. */
  reset(NULL);
  dt_dialer_free(d);
  dt_dial_opts_t o;
  opts_init(&o);
  o.timeout_ms = 300;
  d = dialer(&o);
  assert_int_equal(dt_dial(d, "192.0.2.1", 80, -1, &fd, &r), DT_ETIMEDOUT);
  assert_int_equal(r.total_us, 300 * MS);
  /* No answer at all before the limit: timed out, nothing tried. */
  reset(NULL);
  answer_t none[] = {V6(5000, "2001:db8::1")};
  assert_int_equal(drive(d, none, 1, -1, &fd, &r), DT_ETIMEDOUT);
  assert_int_equal(r.nattempts, 0);
  assert_false(r.aaaa.done);
  dt_dialer_free(d);
}

static void test_attempt_timeout(void **state) {
  (void)state;
  dt_dial_opts_t o;
  opts_init(&o);
  o.attempt_timeout_ms = 100;
  dt_dialer_t *d = dialer(&o);
  script("192.0.2.1", CONNECT, 20, 0);
  answer_t ans[] = {V6(0, "2001:db8::1"), V4(0, "192.0.2.1")};
  dt_dial_report_t r;
  int fd;
  assert_int_equal(drive(d, ans, 2, -1, &fd, &r), DT_OK);
  static const char *const dst[] = {"2001:db8::1", "192.0.2.1"};
  static const unsigned at[] = {0, 100};
  expect_attempts(&r, dst, at, 2);
  assert_int_equal(r.attempts[0].status, DT_ETIMEDOUT);
  assert_int_equal(r.attempts[0].end_us, 100 * MS);
  dt_dialer_free(d);
}

/* The status says why in the most useful terms; every attempt is listed. */
static void test_error_aggregation(void **state) {
  (void)state;
  dt_dialer_t *d = default_dialer();
  dt_dial_report_t r;
  int fd;
  char buf[64];

  script("2001:db8::1", FAIL, 2, ECONNREFUSED);
  script("192.0.2.1", FAIL, 3, ECONNREFUSED);
  answer_t both[] = {V6(0, "2001:db8::1"), V4(0, "192.0.2.1")};
  assert_int_equal(drive(d, both, 2, -1, &fd, &r), DT_ECONNREFUSED);
  assert_int_equal(r.nattempts, 2);
  assert_string_equal(attempt_addr(&r, 0, buf), "2001:db8::1");
  assert_string_equal(attempt_addr(&r, 1, buf), "192.0.2.1");
  assert_int_equal(r.attempts[0].status, DT_ECONNREFUSED);
  assert_int_equal(r.attempts[1].status, DT_ECONNREFUSED);
  assert_int_equal(r.total_us, 5 * MS);

  /* One refusal beats an unreachable network. */
  reset(NULL);
  script_sync("2001:db8::1", ENETUNREACH);
  script("192.0.2.1", FAIL, 3, ECONNREFUSED);
  assert_int_equal(drive(d, both, 2, -1, &fd, &r), DT_ECONNREFUSED);

  /* Unreachable and silent: timed out. */
  reset(NULL);
  script_sync("2001:db8::1", ENETUNREACH);
  assert_int_equal(drive(d, both, 2, 500, &fd, &r), DT_ETIMEDOUT);
  assert_int_equal(r.attempts[0].status, DT_ENETUNREACH);
  assert_int_equal(r.attempts[1].status, DT_ETIMEDOUT);

  /* Host unreachable beats network unreachable. */
  reset(NULL);
  script_sync("2001:db8::1", ENETUNREACH);
  script("192.0.2.1", FAIL, 3, EHOSTUNREACH);
  assert_int_equal(drive(d, both, 2, -1, &fd, &r), DT_EHOSTUNREACH);

  /* The name does not exist: no such name, nothing tried. */
  reset(NULL);
  answer_t nx[] = {{3, AF_INET6, {NULL}, DT_ENXDOMAIN},
                   {4, AF_INET, {NULL}, DT_ENXDOMAIN}};
  assert_int_equal(drive(d, nx, 2, -1, &fd, &r), DT_ENXDOMAIN);
  assert_int_equal(r.nattempts, 0);
  assert_int_equal(r.aaaa.status, DT_ENXDOMAIN);
  assert_int_equal(r.total_us, 4 * MS);

  /* No address of either family. */
  reset(NULL);
  answer_t nodata[] = {{3, AF_INET6, {NULL}, DT_ENODATA},
                       {4, AF_INET, {NULL}, DT_ENODATA}};
  assert_int_equal(drive(d, nodata, 2, -1, &fd, &r), DT_ENODATA);

  /* A refused IPv4 while AAAA is still out: wait for AAAA before deciding;
   * its failure leaves the refusal as the answer. */
  reset(NULL);
  script("192.0.2.1", FAIL, 1, ECONNREFUSED);
  answer_t wait6[] = {V4(0, "192.0.2.1"),
                      {200, AF_INET6, {NULL}, DT_ETIMEDOUT}};
  assert_int_equal(drive(d, wait6, 2, -1, &fd, &r), DT_ECONNREFUSED);
  assert_int_equal(r.total_us, 200 * MS);

  /* Out of descriptors. */
  reset(NULL);
  F.socket_errno = EMFILE;
  assert_int_equal(drive(d, both, 2, -1, &fd, &r), DT_EMFILE);
  assert_int_equal(r.nattempts, 2);
  assert_int_equal(r.attempts[1].sys_errno, EMFILE);
  dt_dialer_free(d);
}

/* A rejected option fails its attempt, named; the next one goes on. */
static void test_sockopt_failure(void **state) {
  (void)state;
  dt_dialer_t *d = default_dialer();
  F.fail_level = IPPROTO_TCP;
  F.fail_name = TCP_KEEPIDLE;
  F.fail_errno = EINVAL;
  F.fail_family = AF_INET6;
  script("192.0.2.1", CONNECT, 2, 0);
  answer_t ans[] = {V6(0, "2001:db8::1"), V4(0, "192.0.2.1")};
  dt_dial_report_t r;
  int fd;
  assert_int_equal(drive(d, ans, 2, -1, &fd, &r), DT_OK);
  assert_int_equal(r.nattempts, 2);
  assert_int_equal(r.attempts[0].status, DT_EINVAL);
  assert_int_equal(r.attempts[0].sys_errno, EINVAL);
  assert_string_equal(r.attempts[0].sockopt, "TCP_KEEPIDLE");
  assert_int_equal(r.attempts[1].start_us, 0);
  assert_null(r.attempts[1].sockopt);
  /* No SYN went out for the failed one. */
  assert_int_equal(F.nconnects, 1);
  dt_dialer_free(d);

  /* Buffers, user timeout and bind all go on before connect(). */
  reset(NULL);
  dt_dial_opts_t o;
  opts_init(&o);
  o.sockopts.rcvbuf = 1 << 20;
  o.sockopts.sndbuf = 1 << 19;
  o.sockopts.user_timeout_ms = 5000;
  o.sockopts.keepalive = false;
  o.sockopts.nodelay = false;
  o.bind_addr = "192.0.2.200";
  o.nonblocking = true;
  d = dialer(&o);
  script("192.0.2.1", CONNECT, 2, 0);
  assert_int_equal(dt_dial(d, "192.0.2.1", 80, -1, &fd, &r), DT_OK);
  fsock_t *s = &F.socks[0];
  static const int want[][3] = {{SOL_SOCKET, SO_RCVBUF, 1 << 20},
                                {SOL_SOCKET, SO_SNDBUF, 1 << 19},
                                {IPPROTO_TCP, TCP_USER_TIMEOUT, 5000}};
  assert_true(s->nopts >= 3);
  assert_memory_equal(s->opts, want, sizeof(want));
  assert_true(s->bound);
  assert_false(s->blocking_set); /* handed back non-blocking */
  /* Bound to IPv4: IPv6 destinations are not tried. */
  assert_int_equal(dt_dial(d, "2001:db8::1", 80, -1, &fd, &r), DT_EAFNOSUPPORT);
  assert_int_equal(r.nattempts, 0);
  dt_dialer_free(d);
}

typedef struct {
  char lines[32][256];
  size_t n;
} trace_t;

static void on_event(const dt_dial_event_t *ev, void *ctx) {
  trace_t *t = ctx;
  char addr[DT_SOCKADDR_STRLEN] = "";
  if (ev->addr != NULL) {
    dt_sockaddr_tostr(ev->addr, ev->addrlen, addr, sizeof(addr));
  }
  assert_string_equal(ev->host, "dual.test");
  assert_int_equal(ev->time_us, F.now);
  if (t->n < 32) {
    snprintf(t->lines[t->n++], sizeof(t->lines[0]), "%llu %s %d %s %s %s %zu",
             (unsigned long long)(ev->elapsed_us / MS),
             dt_dial_event_tostr(ev->type), ev->family, addr,
             dt_status_name(ev->status), dt_dial_source_tostr(ev->source),
             ev->naddrs);
  }
}

static void test_trace(void **state) {
  (void)state;
  trace_t t;
  memset(&t, 0, sizeof(t));
  dt_dial_opts_t o;
  opts_init(&o);
  o.trace = on_event;
  o.trace_ctx = &t;
  dt_dialer_t *d = dialer(&o);
  script("2001:db8::1", FAIL, 10, ECONNREFUSED);
  script("192.0.2.1", CONNECT, 5, 0);
  answer_t ans[] = {V4(0, "192.0.2.1"), V6(20, "2001:db8::1")};
  dt_dial_report_t r;
  int fd;
  assert_int_equal(drive(d, ans, 2, -1, &fd, &r), DT_OK);
  static const char *const want[] = {
      "0 lookup-start 10  DT_OK none 0",
      "0 lookup-start 2  DT_OK none 0",
      "0 lookup-done 2  DT_OK dns 1",
      "20 lookup-done 10  DT_OK dns 1",
      "20 attempt-start 10 2001:db8::1#443 DT_OK none 0",
      "30 attempt-done 10 2001:db8::1#443 DT_ECONNREFUSED none 0",
      "30 attempt-start 2 192.0.2.1#443 DT_OK none 0",
      "35 attempt-done 2 192.0.2.1#443 DT_OK none 0",
      "35 connected 2 192.0.2.1#443 DT_OK none 0",
  };
  assert_int_equal(t.n, sizeof(want) / sizeof(want[0]));
  for (size_t i = 0; i < t.n; i++) {
    assert_string_equal(t.lines[i], want[i]);
  }
  /* A failure ends with "failed". */
  reset(NULL);
  memset(&t, 0, sizeof(t));
  answer_t nx[] = {{1, AF_INET6, {NULL}, DT_ENXDOMAIN},
                   {1, AF_INET, {NULL}, DT_ENXDOMAIN}};
  assert_int_equal(drive(d, nx, 2, -1, &fd, &r), DT_ENXDOMAIN);
  assert_string_equal(t.lines[t.n - 1], "1 failed 0  DT_ENXDOMAIN none 0");
  dt_dialer_free(d);
}

/* dt_dial() through the hosts file: both families at once, IPv6 first. */
static void test_hosts_file(void **state) {
  (void)state;
  dt_dialer_t *d = default_dialer();
  script("192.0.2.10", CONNECT, 1, 0);
  dt_dial_report_t r;
  int fd;
  assert_int_equal(dt_dial(d, "both.test", 8080, -1, &fd, &r), DT_OK);
  static const char *const dst[] = {"2001:db8::10", "192.0.2.10"};
  static const unsigned at[] = {0, 250};
  expect_attempts(&r, dst, at, 2);
  assert_int_equal(r.aaaa.source, DT_DIAL_SOURCE_HOSTS);
  assert_int_equal(r.aaaa.naddrs, 2);
  assert_int_equal(r.a.naddrs, 1);
  assert_true(r.a.asked);

  /* Only IPv4 in the file: AAAA is "no data" and nobody waits for it. */
  reset(NULL);
  script("192.0.2.11", CONNECT, 1, 0);
  assert_int_equal(dt_dial(d, "v4only.test", 80, -1, &fd, &r), DT_OK);
  assert_int_equal(r.aaaa.status, DT_ENODATA);
  assert_int_equal(r.attempts[0].start_us, 0);
  dt_dialer_free(d);

  /* family AF_INET: IPv6 never tried. */
  reset(NULL);
  dt_dial_opts_t o;
  opts_init(&o);
  o.family = AF_INET;
  d = dialer(&o);
  script("192.0.2.10", CONNECT, 1, 0);
  assert_int_equal(dt_dial(d, "both.test", 80, -1, &fd, &r), DT_OK);
  assert_int_equal(r.nattempts, 1);
  assert_false(r.aaaa.asked);
  dt_dialer_free(d);
}

static void test_bad_input(void **state) {
  (void)state;
  dt_dialer_t *d = default_dialer();
  dt_dial_report_t r;
  int fd = -5;
  char path[300];
  memset(path, 'p', sizeof(path));
  memcpy(path, "unix:/", 6);
  path[sizeof(path) - 1] = '\0';
  assert_int_equal(dt_dial(d, path, 0, -1, &fd, &r), DT_ENAMETOOLONG);
  assert_int_equal(r.status, DT_ENAMETOOLONG);
  assert_int_equal(r.nattempts, 0);
  assert_int_equal(dt_dial_unix(d, path + 5, -1, &fd, &r), DT_ENAMETOOLONG);
  /* 107 bytes fit sun_path with the NUL, 108 do not. */
  path[5 + 108] = '\0';
  assert_int_equal(dt_dial(d, path, 0, -1, &fd, &r), DT_ENAMETOOLONG);
  assert_int_equal(dt_dial(d, "unix:", 0, -1, &fd, &r), DT_EINVAL);
  assert_int_equal(dt_dial(d, "bad..name", 80, -1, &fd, &r), DT_EBADNAME);
  assert_int_equal(dt_dial(d, NULL, 80, -1, &fd, &r), DT_EINVAL);
  assert_int_equal(dt_dial(d, "192.0.2.1", 80, -1, NULL, &r), DT_EINVAL);
  assert_int_equal(dt_dial(NULL, "192.0.2.1", 80, -1, &fd, NULL), DT_EINVAL);
  assert_int_equal(fd, -5);
  assert_int_equal(F.nsocks, 0); /* none of that opened a socket */
  path[5 + 107] = '\0';
  assert_int_equal(dt_dial(d, path, 0, 10, &fd, &r), DT_ETIMEDOUT);
  assert_int_equal(r.nattempts, 1);
  dt_dialer_free(d);

  dt_dial_opts_t o;
  dt_dialer_t *x = NULL;
  struct {
    int field, value;
  } bad[] = {{0, 7}, {1, 0}, {2, -1}, {3, -1}, {4, -1}, {5, 0}, {6, -1}};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    opts_init(&o);
    int *f[] = {&o.family,
                &o.timeout_ms,
                &o.attempt_delay_ms,
                &o.resolution_delay_ms,
                &o.attempt_timeout_ms,
                &o.first_family_count,
                &o.sockopts.rcvbuf};
    *f[bad[i].field] = bad[i].value;
    assert_int_equal(dt_dialer_new(&o, &x), DT_EINVAL);
    assert_null(x);
  }
  opts_init(&o);
  o.bind_addr = "not an address";
  assert_int_equal(dt_dialer_new(&o, &x), DT_EINVAL);
  o.bind_addr = "2001:db8::1";
  o.family = AF_INET;
  assert_int_equal(dt_dialer_new(&o, &x), DT_EINVAL);
  assert_int_equal(dt_dialer_new(NULL, NULL), DT_EINVAL);
  dt_dialer_free(NULL);
}

/* Unix sockets through the seam: a full queue (EAGAIN) is retried until it
 * drains or the limit passes. */
static int eagain_left;
static int eagain_connect(void *ctx, int fd, const struct sockaddr *sa,
                          socklen_t len) {
  fake_t *f = ctx;
  (void)len;
  assert_int_equal(sa->sa_family, AF_UNIX);
  assert_int_equal(f->socks[fd - FD_BASE].family, AF_UNIX);
  if (eagain_left-- > 0) {
    errno = EAGAIN;
    return -1;
  }
  return 0;
}

static void test_unix_retry(void **state) {
  (void)state;
  dt_sockops_t ops = fake_ops;
  ops.connect = eagain_connect;
  dt_dial_opts_t o;
  opts_init(&o);
  o.sockops = &ops;
  dt_dialer_t *d = dialer(&o);
  dt_dial_report_t r;
  int fd;
  eagain_left = 3;
  assert_int_equal(dt_dial(d, "unix:/run/x.sock", 0, -1, &fd, &r), DT_OK);
  assert_int_equal(r.family, AF_UNIX);
  assert_int_equal(r.total_us, 7 * MS); /* retries after 1, 2 and 4 ms */
  char buf[DT_SOCKADDR_STRLEN];
  assert_string_equal(dt_sockaddr_tostr((struct sockaddr *)&r.attempts[0].addr,
                                        r.attempts[0].addrlen, buf,
                                        sizeof(buf)),
                      "unix:/run/x.sock");
  /* Buffers only: no TCP option on a Unix socket. */
  assert_int_equal(F.socks[0].nopts, 0);
  reset(NULL);
  eagain_left = 1000000;
  assert_int_equal(dt_dial(d, "unix:/run/x.sock", 0, 100, &fd, &r),
                   DT_ETIMEDOUT);
  assert_int_equal(r.total_us, 100 * MS);
  assert_int_equal(open_tcp(), 0);
  for (size_t i = 0; i < F.nsocks; i++) {
    assert_false(F.socks[i].open);
  }
  dt_dialer_free(d);
}

static void test_alloc_failure(void **state) {
  (void)state;
  dt_dial_opts_t o;
  opts_init(&o);
  dt_dialer_t *d = NULL;
  dt__alloc_fail_at(1);
  assert_int_equal(dt_dialer_new(&o, &d), DT_ENOMEM);
  assert_null(d);
  dt__alloc_reset_counts();
  d = dialer(&o);
  /* A literal dial allocates nothing. */
  script("192.0.2.1", CONNECT, 1, 0);
  dt__alloc_reset_counts();
  int fd;
  assert_int_equal(dt_dial(d, "192.0.2.1", 80, -1, &fd, NULL), DT_OK);
  assert_int_equal(dt__alloc_count(), 0);
  /* A name that needs DNS: the lookup's memory. */
  dt__alloc_fail_at(1);
  assert_int_equal(dt_dial(d, "needs-dns.test", 80, -1, &fd, NULL), DT_ENOMEM);
  dt__alloc_reset_counts();
  dt_dialer_free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_literal, reset),
      cmocka_unit_test_setup(test_attempt_delay_and_losers, reset),
      cmocka_unit_test_setup(test_failure_starts_next, reset),
      cmocka_unit_test_setup(test_no_burst_and_clamp, reset),
      cmocka_unit_test_setup(test_first_family_count, reset),
      cmocka_unit_test_setup(test_resolution_delay, reset),
      cmocka_unit_test_setup(test_late_family_after_failures, reset),
      cmocka_unit_test_setup(test_unusable_family_last, reset),
      cmocka_unit_test_setup(test_overall_timeout, reset),
      cmocka_unit_test_setup(test_attempt_timeout, reset),
      cmocka_unit_test_setup(test_error_aggregation, reset),
      cmocka_unit_test_setup(test_sockopt_failure, reset),
      cmocka_unit_test_setup(test_trace, reset),
      cmocka_unit_test_setup(test_hosts_file, reset),
      cmocka_unit_test_setup(test_bad_input, reset),
      cmocka_unit_test_setup(test_unix_retry, reset),
      cmocka_unit_test_setup(test_alloc_failure, reset),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
