/* dt_pool_acquire_start: pool acquires on an event loop. A dial, an idle
 * hit delivered on the next step (never inside the start call), waits at
 * the active limit woken by releases (from callbacks and from another
 * thread), a wait's deadline, cancel in each state, the pool freed with
 * acquires in flight, start failures, and the epoll-style watch contract
 * for the destination's wait descriptor.
 *
 * Servers are loopback listeners nobody accepts from: a connection is
 * established as soon as the kernel queues it. Destinations are IP
 * literals, so no DNS is asked; the resolver still names a loopback
 * server (nothing listens there), never the machine's resolv.conf. Time
 * windows are generous, for valgrind on a small shared machine. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "dialtone.h"

static dt_resolver_t *resolver;
static dt_dialer_t *dialer;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] != '.') {
      n++;
    }
  }
  closedir(d);
  return n;
}

/* A loopback TCP listener that never accepts. */
static int listener(uint16_t *port) {
  dt_listen_opts_t o;
  dt_listen_opts_init(&o);
  o.backlog = 64;
  int fd = -1;
  assert_int_equal(dt_listen(&o, "127.0.0.1", 0, &fd), DT_OK);
  assert_int_equal(dt_listen_get_port(fd, port), DT_OK);
  return fd;
}

static dt_pool_t *pool_new(size_t max_active) {
  dt_pool_opts_t o;
  dt_pool_opts_init(&o);
  o.dialer = dialer;
  o.max_active_per_dest = max_active;
  o.conn.read_buffer_size = 4096;
  o.conn.write_buffer_size = 4096;
  dt_pool_t *p = NULL;
  assert_int_equal(dt_pool_new(&o, &p), DT_OK);
  return p;
}

static dt_pool_dest_stats_t dstats(dt_pool_t *p, uint16_t port) {
  dt_pool_dest_stats_t s = {0, 0, 0};
  dt_status_t st = dt_pool_get_dest_stats(p, "127.0.0.1", port, &s);
  assert_true(st == DT_OK || st == DT_ENOENT);
  return s;
}

/* ---- completions --------------------------------------------------------- */

static bool in_start; /* a start call is running */

typedef struct {
  int calls;
  dt_status_t st;
  dt_conn_t *conn;
  bool reused;
  dt_pool_t *pool;
  bool release_in_cb; /* give the connection back from the callback */
  uint64_t at_ms;
} res_t;

static void on_acquire(void *user, dt_status_t st, dt_conn_t *conn) {
  res_t *r = user;
  assert_false(in_start);
  r->calls++;
  r->st = st;
  r->conn = conn;
  r->at_ms = now_ms();
  if (st == DT_OK) {
    assert_non_null(conn);
    dt_pool_conn_info_t info;
    assert_int_equal(dt_pool_conn_get_info(conn, &info), DT_OK);
    r->reused = info.reused;
    if (r->release_in_cb) {
      assert_int_equal(dt_pool_release(r->pool, conn, true), DT_OK);
      r->conn = NULL;
    }
  } else {
    assert_null(conn);
  }
}

static dt_op_t *start(dt_loop_t *l, dt_pool_t *p, uint16_t port, int ms,
                      res_t *r) {
  dt_op_t *op = NULL;
  r->pool = p;
  in_start = true;
  dt_status_t st =
      dt_pool_acquire_start(l, p, "127.0.0.1", port, ms, on_acquire, r, &op);
  in_start = false;
  assert_int_equal(st, DT_OK);
  assert_non_null(op);
  assert_int_equal(r->calls, 0);
  return op;
}

static dt_loop_t *loop_new(void) {
  dt_loop_t *l = NULL;
  assert_int_equal(dt_loop_new(NULL, &l), DT_OK);
  return l;
}

/* ---- fixtures --------------------------------------------------------------
 */

static int group_setup(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN);
  /* Nothing listens on port 9 of loopback; no name is asked anyway. */
  const char *servers[] = {"127.0.0.1:9"};
  dt_resolver_opts_t ro;
  dt_resolver_opts_init(&ro);
  ro.servers = servers;
  ro.nservers = 1;
  ro.hosts = "";
  if (dt_resolver_new(&ro, &resolver) != DT_OK) {
    return -1;
  }
  dt_dial_opts_t d;
  dt_dial_opts_init(&d);
  d.resolver = resolver;
  return dt_dialer_new(&d, &dialer) == DT_OK ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  dt_dialer_free(dialer);
  dt_resolver_free(resolver);
  return 0;
}

/* ---- tests -----------------------------------------------------------------
 */

/* A dial, then an idle hit: the hit is known at start but delivered by the
 * next processing step, with the connection marked reused. */
static void test_dial_then_idle_hit(void **state) {
  (void)state;
  int fds0 = count_fds();
  uint16_t port;
  int lfd = listener(&port);
  dt_pool_t *p = pool_new(0);
  dt_loop_t *l = loop_new();

  res_t a = {0};
  start(l, p, port, 5000, &a);
  assert_int_equal(dt_loop_pending(l), 1);
  assert_int_equal(dt_loop_run(l, 5000), DT_OK);
  assert_int_equal(a.calls, 1);
  assert_int_equal(a.st, DT_OK);
  assert_false(a.reused);
  assert_int_equal(dt_pool_release(p, a.conn, true), DT_OK);
  assert_int_equal(dstats(p, port).idle, 1);

  res_t b = {0};
  start(l, p, port, 5000, &b);
  assert_int_equal(dt_loop_timeout_ms(l), 0);
  assert_int_equal(dt_loop_process(l, NULL, 0), DT_OK);
  assert_int_equal(b.calls, 1);
  assert_int_equal(b.st, DT_OK);
  assert_true(b.reused);
  assert_ptr_equal(b.conn, a.conn); /* the same connection came back */
  assert_int_equal(dt_pool_release(p, b.conn, true), DT_OK);
  assert_int_equal(dt_loop_pending(l), 0);
  assert_int_equal(dt_loop_timeout_ms(l), -1);

  dt_loop_free(l);
  dt_pool_free(p);
  close(lfd);
  assert_int_equal(count_fds(), fds0);
}

typedef struct {
  dt_pool_t *p;
  dt_conn_t *conn;
  unsigned after_ms;
} releaser_t;

static void *release_later(void *arg) {
  releaser_t *r = arg;
  sleep_ms(r->after_ms);
  dt_pool_release(r->p, r->conn, true);
  return NULL;
}

/* Three acquires wait at an active limit of 1 held by a blocking caller.
 * A release on another thread wakes the loop; each callback gives its
 * connection back, which wakes the next: all three get the one
 * connection, each exactly once. */
static void test_wait_woken_by_releases(void **state) {
  (void)state;
  int fds0 = count_fds();
  uint16_t port;
  int lfd = listener(&port);
  dt_pool_t *p = pool_new(1);
  dt_conn_t *held = NULL;
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &held), DT_OK);
  dt_loop_t *l = loop_new();

  res_t r[3];
  memset(r, 0, sizeof(r));
  for (int i = 0; i < 3; i++) {
    r[i].release_in_cb = true;
    start(l, p, port, 20000, &r[i]);
  }
  /* Nothing is free: a short run delivers nothing. */
  assert_int_equal(dt_loop_run(l, 100), DT_ETIMEDOUT);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(r[i].calls, 0);
  }
  assert_int_equal(dstats(p, port).waiting, 3);

  releaser_t rel = {p, held, 100};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, release_later, &rel), 0);
  assert_int_equal(dt_loop_run(l, 20000), DT_OK);
  assert_int_equal(pthread_join(t, NULL), 0);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(r[i].calls, 1);
    assert_int_equal(r[i].st, DT_OK);
    assert_true(r[i].reused);
  }
  dt_pool_dest_stats_t s = dstats(p, port);
  assert_int_equal(s.idle, 1);
  assert_int_equal(s.active, 0);
  assert_int_equal(s.waiting, 0);
  dt_loop_free(l);
  dt_pool_free(p);
  close(lfd);
  assert_int_equal(count_fds(), fds0);
}

/* A wait whose deadline passes ends with DT_EBUSY, not earlier. */
static void test_wait_deadline(void **state) {
  (void)state;
  uint16_t port;
  int lfd = listener(&port);
  dt_pool_t *p = pool_new(1);
  dt_conn_t *held = NULL;
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &held), DT_OK);
  dt_loop_t *l = loop_new();
  res_t r = {0};
  uint64_t t0 = now_ms();
  start(l, p, port, 200, &r);
  assert_int_equal(dt_loop_run(l, 20000), DT_OK);
  assert_int_equal(r.calls, 1);
  assert_int_equal(r.st, DT_EBUSY);
  assert_true(r.at_ms - t0 >= 190);
  assert_int_equal(dstats(p, port).waiting, 0);
  assert_int_equal(dt_pool_release(p, held, true), DT_OK);
  dt_loop_free(l);
  dt_pool_free(p);
  close(lfd);
}

/* Cancel while waiting, while dialing, and after an idle hit was found but
 * not delivered: DT_ECANCELED once each, from the next step; the wait and
 * the reservation are given back and the found connection is idle again. */
static void test_cancel_states(void **state) {
  (void)state;
  int fds0 = count_fds();
  uint16_t port;
  int lfd = listener(&port);
  dt_pool_t *p = pool_new(2);
  dt_loop_t *l = loop_new();

  /* Dialing: cancelled before the loop ever ran it. */
  res_t dialing = {0};
  dt_op_t *op = start(l, p, port, 5000, &dialing);
  assert_int_equal(dstats(p, port).active, 1);
  assert_int_equal(dt_op_cancel(op), DT_OK);
  assert_int_equal(dt_op_cancel(op), DT_OK); /* again: nothing more */
  assert_int_equal(dialing.calls, 0);        /* never inside cancel */
  assert_int_equal(dstats(p, port).active, 0);
  assert_int_equal(dt_loop_run(l, 5000), DT_OK);
  assert_int_equal(dialing.calls, 1);
  assert_int_equal(dialing.st, DT_ECANCELED);

  /* An idle hit found at start, cancelled before delivery. */
  dt_conn_t *c = NULL;
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &c), DT_OK);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  res_t hit = {0};
  op = start(l, p, port, 5000, &hit);
  assert_int_equal(dstats(p, port).idle, 0);
  assert_int_equal(dt_op_cancel(op), DT_OK);
  assert_int_equal(dstats(p, port).idle, 1);
  assert_int_equal(dt_loop_run(l, 5000), DT_OK);
  assert_int_equal(hit.calls, 1);
  assert_int_equal(hit.st, DT_ECANCELED);

  /* Waiting at the limit of 2. */
  dt_conn_t *h1 = NULL, *h2 = NULL;
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &h1), DT_OK);
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &h2), DT_OK);
  res_t waiting = {0};
  op = start(l, p, port, 20000, &waiting);
  assert_int_equal(dt_loop_run(l, 50), DT_ETIMEDOUT);
  assert_int_equal(dstats(p, port).waiting, 1);
  assert_int_equal(dt_op_cancel(op), DT_OK);
  assert_int_equal(dstats(p, port).waiting, 0);
  assert_int_equal(dt_loop_run(l, 5000), DT_OK);
  assert_int_equal(waiting.calls, 1);
  assert_int_equal(waiting.st, DT_ECANCELED);

  assert_int_equal(dt_pool_release(p, h1, true), DT_OK);
  assert_int_equal(dt_pool_release(p, h2, true), DT_OK);
  dt_pool_dest_stats_t s = dstats(p, port);
  assert_int_equal(s.active, 0);
  assert_int_equal(s.idle, 2);
  dt_loop_free(l);
  dt_pool_free(p);
  close(lfd);
  assert_int_equal(count_fds(), fds0);
}

/* Freeing the pool ends its acquires in flight (waiting, dialing, a hit
 * not delivered) inside dt_pool_free, each once with DT_ECANCELED. */
static void test_pool_free_in_flight(void **state) {
  (void)state;
  int fds0 = count_fds();
  uint16_t port, port2;
  int lfd = listener(&port);
  int lfd2 = listener(&port2);
  dt_pool_t *p = pool_new(1);
  dt_loop_t *l = loop_new();

  dt_conn_t *c = NULL;
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &c), DT_OK);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  res_t hit = {0}, waiting = {0}, dialing = {0};
  start(l, p, port, 5000, &hit); /* takes the idle one: the limit is full */
  start(l, p, port, 20000, &waiting);
  start(l, p, port2, 5000, &dialing);
  assert_int_equal(dt_loop_pending(l), 3);

  dt_pool_free(p);
  assert_int_equal(hit.calls, 1);
  assert_int_equal(hit.st, DT_ECANCELED);
  assert_int_equal(waiting.calls, 1);
  assert_int_equal(waiting.st, DT_ECANCELED);
  assert_int_equal(dialing.calls, 1);
  assert_int_equal(dialing.st, DT_ECANCELED);
  assert_int_equal(dt_loop_pending(l), 0);
  assert_int_equal(dt_loop_run(l, 100), DT_OK);
  assert_int_equal(hit.calls + waiting.calls + dialing.calls, 3);
  dt_loop_free(l);
  close(lfd);
  close(lfd2);
  assert_int_equal(count_fds(), fds0);
}

/* Refused starts never call back and leave nothing behind. */
static void test_start_failures(void **state) {
  (void)state;
  int fds0 = count_fds();
  uint16_t port;
  int lfd = listener(&port);
  dt_pool_t *p = pool_new(0);
  dt_loop_t *l = loop_new();
  res_t r = {0};
  dt_op_t *op = NULL;
  assert_int_equal(dt_pool_acquire_start(NULL, p, "127.0.0.1", port, 1000,
                                         on_acquire, &r, &op),
                   DT_EINVAL);
  assert_int_equal(dt_pool_acquire_start(l, NULL, "127.0.0.1", port, 1000,
                                         on_acquire, &r, &op),
                   DT_EINVAL);
  assert_int_equal(
      dt_pool_acquire_start(l, p, NULL, port, 1000, on_acquire, &r, &op),
      DT_EINVAL);
  assert_int_equal(
      dt_pool_acquire_start(l, p, "127.0.0.1", port, 1000, NULL, &r, &op),
      DT_EINVAL);
  assert_int_equal(
      dt_pool_acquire_start(l, p, "bad..name", port, 1000, on_acquire, &r, &op),
      DT_EBADNAME);
  assert_null(op);

  /* Out of memory at every allocation of a start that dials. */
  for (uint64_t n = 1;; n++) {
    dt__alloc_fail_at(n);
    dt_status_t st = dt_pool_acquire_start(l, p, "127.0.0.1", port, 5000,
                                           on_acquire, &r, &op);
    dt__alloc_fail_at(0);
    if (st == DT_OK) {
      assert_int_equal(dt_loop_run(l, 5000), DT_OK);
      assert_int_equal(r.calls, 1);
      if (r.st == DT_OK) {
        assert_int_equal(dt_pool_release(p, r.conn, false), DT_OK);
      }
      break;
    }
    assert_int_equal(st, DT_ENOMEM);
    assert_true(n < 100);
  }
  assert_int_equal(r.calls, 1);
  assert_int_equal(dt_loop_pending(l), 0);
  dt_loop_free(l);
  dt_pool_free(p);
  close(lfd);
  assert_int_equal(count_fds(), fds0);
}

/* Epoll style: the watch callback's view of descriptors, kept in a shadow
 * table, matches dt_loop_pollfds at every step, the destination's wait
 * descriptor included, and is empty once nothing is pending. */
#define SHADOW 64
typedef struct {
  int fd[SHADOW];
  short ev[SHADOW];
  int timer_ms;
} shadow_t;

static void sh_watch(void *ctx, int fd, short events) {
  shadow_t *s = ctx;
  for (int i = 0; i < SHADOW; i++) {
    if (s->fd[i] == fd) {
      if (events == 0) {
        s->fd[i] = -1;
      } else {
        s->ev[i] = events;
      }
      return;
    }
  }
  assert_true(events != 0);
  for (int i = 0; i < SHADOW; i++) {
    if (s->fd[i] < 0) {
      s->fd[i] = fd;
      s->ev[i] = events;
      return;
    }
  }
  fail_msg("shadow table full");
}

static void sh_timer(void *ctx, int ms) {
  ((shadow_t *)ctx)->timer_ms = ms;
}

static size_t sh_count(const shadow_t *s) {
  size_t n = 0;
  for (int i = 0; i < SHADOW; i++) {
    n += s->fd[i] >= 0;
  }
  return n;
}

static void sh_check(const shadow_t *s, dt_loop_t *l) {
  struct pollfd pfd[SHADOW];
  size_t n = dt_loop_pollfds(l, pfd, SHADOW);
  assert_true(n <= SHADOW);
  assert_int_equal(n, sh_count(s));
  for (size_t k = 0; k < n; k++) {
    bool found = false;
    for (int i = 0; i < SHADOW; i++) {
      if (s->fd[i] == pfd[k].fd) {
        assert_int_equal(s->ev[i], pfd[k].events);
        found = true;
      }
    }
    assert_true(found);
  }
}

static void test_epoll_style_watch(void **state) {
  (void)state;
  uint16_t port;
  int lfd = listener(&port);
  dt_pool_t *p = pool_new(1);
  shadow_t sh;
  for (int i = 0; i < SHADOW; i++) {
    sh.fd[i] = -1;
  }
  sh.timer_ms = -1;
  dt_loop_opts_t o;
  dt_loop_opts_init(&o);
  o.watch = sh_watch;
  o.watch_ctx = &sh;
  o.timer = sh_timer;
  o.timer_ctx = &sh;
  dt_loop_t *l = NULL;
  assert_int_equal(dt_loop_new(&o, &l), DT_OK);

  dt_conn_t *held = NULL;
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &held), DT_OK);
  res_t w1 = {0}, w2 = {0};
  w1.release_in_cb = w2.release_in_cb = true;
  start(l, p, port, 20000, &w1);
  start(l, p, port, 20000, &w2);
  /* Both wait on the destination's one descriptor: watched once. */
  assert_int_equal(sh_count(&sh), 1);
  sh_check(&sh, l);
  assert_true(sh.timer_ms > 0);

  assert_int_equal(dt_pool_release(p, held, true), DT_OK);
  uint64_t until = now_ms() + 20000;
  while (dt_loop_pending(l) > 0 && now_ms() < until) {
    struct pollfd pfd[SHADOW];
    size_t n = 0;
    for (int i = 0; i < SHADOW; i++) {
      if (sh.fd[i] >= 0) {
        pfd[n].fd = sh.fd[i];
        pfd[n].events = sh.ev[i];
        pfd[n].revents = 0;
        n++;
      }
    }
    int ms = sh.timer_ms < 0 || sh.timer_ms > 100 ? 100 : sh.timer_ms;
    int rc = poll(pfd, (nfds_t)n, ms);
    assert_true(rc >= 0);
    bool any = false;
    for (size_t k = 0; k < n; k++) {
      if (pfd[k].revents != 0) {
        any = true;
        assert_int_equal(dt_loop_process_fd(l, pfd[k].fd, pfd[k].revents),
                         DT_OK);
        sh_check(&sh, l);
      }
    }
    if (!any) {
      assert_int_equal(dt_loop_process(l, NULL, 0), DT_OK);
      sh_check(&sh, l);
    }
  }
  assert_int_equal(w1.calls, 1);
  assert_int_equal(w2.calls, 1);
  assert_int_equal(w1.st, DT_OK);
  assert_int_equal(w2.st, DT_OK);
  assert_int_equal(sh_count(&sh), 0);
  assert_int_equal(sh.timer_ms, -1);
  dt_loop_free(l);
  dt_pool_free(p);
  close(lfd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dial_then_idle_hit),
      cmocka_unit_test(test_wait_woken_by_releases),
      cmocka_unit_test(test_wait_deadline),
      cmocka_unit_test(test_cancel_states),
      cmocka_unit_test(test_pool_free_in_flight),
      cmocka_unit_test(test_start_failures),
      cmocka_unit_test(test_epoll_style_watch),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
