/* Reuse of connected UDP sockets across address lookups (lib/udpidle.c)
 * and the event loop's coalescing of a parked socket's removal and re-add
 * (lib/loop_fd.c), against the fake DNS server on loopback.
 *
 * Idle sockets are kept only while some lookup of the resolver runs, so
 * most tests keep one "holder" lookup in flight on a loop that is never
 * processed: a name the server never answers. */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "dialtone.h"
#include "fake/fakedns.h"

static const char *zone[] = {
    "dt.test. 3600 IN SOA ns.dt.test. admin.dt.test. 1 7200 900 1209600 60",
    "both.dt.test. 60 IN A 192.0.2.30",
    "both.dt.test. 60 IN AAAA 2001:db8::30",
    "other.dt.test. 60 IN A 192.0.2.31",
    "other.dt.test. 60 IN AAAA 2001:db8::31",
};

static fakedns_t *srv;
static char server[64];

static int setup(void **state) {
  (void)state;
  assert_int_equal(fakedns_new(NULL, &srv), DT_OK);
  assert_int_equal(fakedns_start(srv), DT_OK);
  snprintf(server, sizeof(server), "127.0.0.1:%u", (unsigned)fakedns_port(srv));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  fakedns_free(srv);
  return 0;
}

static int reset(void **state) {
  (void)state;
  fakedns_clear(srv);
  for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]); i++) {
    assert_int_equal(fakedns_add(srv, zone[i]), DT_OK);
  }
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.black_hole = true;
  assert_int_equal(fakedns_set_behaviour(srv, "hold.dt.test", DT_TYPE_A, &b),
                   DT_OK);
  assert_int_equal(fakedns_set_behaviour(srv, "hold.dt.test", DT_TYPE_AAAA, &b),
                   DT_OK);
  return 0;
}

static int open_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  while (readdir(d) != NULL) {
    n++;
  }
  closedir(d);
  return n;
}

static dt_resolver_t *resolver(int timeout_ms, int attempts) {
  const char *s[] = {server};
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  o.servers = s;
  o.nservers = 1;
  o.hosts = "";
  o.cache = false; /* every lookup goes to the server */
  o.timeout_ms = timeout_ms;
  o.attempts = attempts;
  dt_resolver_t *r = NULL;
  assert_int_equal(dt_resolver_new(&o, &r), DT_OK);
  return r;
}

static uint64_t opened(dt_resolver_t *r) {
  dt_resolver_stats_t st;
  dt_resolver_get_stats(r, &st);
  return st.udp_sockets_opened;
}

static void lookup_ok(dt_resolver_t *r, const char *name) {
  dt_addr_t addrs[4];
  size_t n = 0;
  assert_int_equal(
      dt_resolver_lookup_addrs(r, name, AF_UNSPEC, -1, addrs, 4, &n), DT_OK);
  assert_int_equal(n, 2);
}

/* ---- the holder: one lookup that keeps the resolver busy ---------------- */

typedef struct {
  dt_loop_t *loop;
  dt_status_t st;
  int calls;
} holder_t;

static void holder_cb(void *user, dt_status_t st, const dt_addr_t *addrs,
                      size_t n) {
  (void)addrs;
  (void)n;
  holder_t *h = user;
  h->st = st;
  h->calls++;
}

static void hold(holder_t *h, dt_loop_t *loop, dt_resolver_t *r) {
  memset(h, 0, sizeof(*h));
  h->loop = loop;
  assert_int_equal(dt_resolve_start(loop, r, "hold.dt.test", AF_UNSPEC, 0,
                                    60000, holder_cb, h, NULL),
                   DT_OK);
}

/* ---- blocking lookups ---------------------------------------------------- */

static void test_reused_by_next_lookup(void **state) {
  (void)state;
  int fds = open_fds();
  dt_resolver_t *r = resolver(2000, 1);
  dt_loop_t *loop = NULL;
  assert_int_equal(dt_loop_new(NULL, &loop), DT_OK);
  holder_t h;
  hold(&h, loop, r);
  assert_int_equal(opened(r), 1);
  for (int i = 0; i < 10; i++) {
    lookup_ok(r, i % 2 ? "both.dt.test" : "other.dt.test");
    /* The holder's socket and the one idle socket, nothing more. */
    assert_int_equal(open_fds(), fds + 2);
  }
  assert_int_equal(opened(r), 2);
  dt_resolver_stats_t st;
  dt_resolver_get_stats(r, &st);
  assert_int_equal(st.queries_udp, 2 + 20);
  assert_int_equal(st.dropped_id + st.dropped_source + st.dropped_question, 0);
  /* The last lookup ends: the idle socket goes with it. */
  dt_loop_free(loop);
  assert_int_equal(h.calls, 1);
  assert_int_equal(h.st, DT_ECANCELED);
  assert_int_equal(open_fds(), fds);
  dt_resolver_free(r);
  assert_int_equal(open_fds(), fds);
}

/* At rest a resolver holds no socket: lookups one after the other, with
 * nothing else running, each open their own. */
static void test_at_rest_nothing_kept(void **state) {
  (void)state;
  int fds = open_fds();
  dt_resolver_t *r = resolver(2000, 1);
  for (int i = 0; i < 3; i++) {
    lookup_ok(r, "both.dt.test");
    assert_int_equal(open_fds(), fds);
  }
  assert_int_equal(opened(r), 3);
  dt_resolver_free(r);
}

static void test_timeout_not_reused(void **state) {
  (void)state;
  dt_resolver_t *r = resolver(300, 2);
  dt_loop_t *loop = NULL;
  assert_int_equal(dt_loop_new(NULL, &loop), DT_OK);
  holder_t h;
  hold(&h, loop, r);
  lookup_ok(r, "both.dt.test");
  assert_int_equal(opened(r), 2);
  /* The A question's first try goes unanswered: its retry gets the
   * reply, but the lost one may still come, so the socket is closed. */
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.drop_first = 1;
  assert_int_equal(fakedns_set_behaviour(srv, "both.dt.test", DT_TYPE_A, &b),
                   DT_OK);
  lookup_ok(r, "both.dt.test");
  dt_resolver_stats_t st;
  dt_resolver_get_stats(r, &st);
  assert_int_equal(st.timeouts, 1);
  assert_int_equal(opened(r), 2); /* it took the idle one */
  lookup_ok(r, "both.dt.test");
  assert_int_equal(opened(r), 3); /* ... which was not given back */
  lookup_ok(r, "both.dt.test");
  assert_int_equal(opened(r), 3); /* a clean lookup gives it back */
  dt_loop_free(loop);
  dt_resolver_free(r);
}

static void mismatch_not_reused(bool wrong_port) {
  dt_resolver_t *r = resolver(2000, 1);
  dt_loop_t *loop = NULL;
  assert_int_equal(dt_loop_new(NULL, &loop), DT_OK);
  holder_t h;
  hold(&h, loop, r);
  lookup_ok(r, "both.dt.test");
  assert_int_equal(opened(r), 2);
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.wrong_id = !wrong_port;
  b.wrong_port = wrong_port;
  assert_int_equal(fakedns_set_behaviour(srv, "both.dt.test", DT_TYPE_A, &b),
                   DT_OK);
  lookup_ok(r, "both.dt.test");
  dt_resolver_stats_t st;
  dt_resolver_get_stats(r, &st);
  if (wrong_port) {
    /* The kernel drops it on a connected socket; if it got through, it
     * was counted. Either way the genuine reply came. */
    assert_true(st.dropped_source <= 1);
  } else {
    assert_int_equal(st.dropped_id, 1);
  }
  assert_int_equal(opened(r), 2);
  lookup_ok(r, "other.dt.test");
  assert_int_equal(opened(r), wrong_port && st.dropped_source == 0 ? 2 : 3);
  dt_loop_free(loop);
  dt_resolver_free(r);
}

static void test_mismatch_not_reused(void **state) {
  (void)state;
  mismatch_not_reused(false);
  reset(state);
  mismatch_not_reused(true);
}

/* A socket retires after 64 questions: 32 lookups of A and AAAA. */
static void test_retired_after_max_uses(void **state) {
  (void)state;
  dt_resolver_t *r = resolver(2000, 1);
  dt_loop_t *loop = NULL;
  assert_int_equal(dt_loop_new(NULL, &loop), DT_OK);
  holder_t h;
  hold(&h, loop, r);
  for (int i = 0; i < 32; i++) {
    lookup_ok(r, "both.dt.test");
  }
  assert_int_equal(opened(r), 2);
  lookup_ok(r, "both.dt.test");
  assert_int_equal(opened(r), 3);
  for (int i = 0; i < 31; i++) {
    lookup_ok(r, "both.dt.test");
  }
  assert_int_equal(opened(r), 3);
  lookup_ok(r, "both.dt.test");
  assert_int_equal(opened(r), 4);
  dt_loop_free(loop);
  dt_resolver_free(r);
}

static uint64_t fake_now_us;

static uint64_t fake_clock(void *ctx) {
  (void)ctx;
  return fake_now_us;
}

/* A socket retires 30 s after its opening, however few its questions. */
static void test_retired_after_max_age(void **state) {
  (void)state;
  int fds = open_fds();
  fake_now_us = 1000000000u;
  const char *s[] = {server};
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  o.servers = s;
  o.nservers = 1;
  o.hosts = "";
  o.cache = false;
  o.clock_us = fake_clock;
  dt_resolver_t *r = NULL;
  assert_int_equal(dt_resolver_new(&o, &r), DT_OK);
  dt_loop_t *loop = NULL;
  assert_int_equal(dt_loop_new(NULL, &loop), DT_OK);
  holder_t h;
  hold(&h, loop, r);
  lookup_ok(r, "both.dt.test");
  fake_now_us += 29000000u;
  lookup_ok(r, "both.dt.test");
  assert_int_equal(opened(r), 2);
  fake_now_us += 1000000u;
  lookup_ok(r, "other.dt.test");
  assert_int_equal(opened(r), 3);
  assert_int_equal(open_fds(), fds + 2); /* the old one was closed */
  lookup_ok(r, "both.dt.test");
  assert_int_equal(opened(r), 3);
  dt_loop_free(loop);
  dt_resolver_free(r);
  assert_int_equal(open_fds(), fds);
}

/* dt_resolver_free ends the holder and closes the idle sockets. */
static void test_free_closes_idle(void **state) {
  (void)state;
  int fds = open_fds();
  dt_resolver_t *r = resolver(2000, 1);
  dt_loop_t *loop = NULL;
  assert_int_equal(dt_loop_new(NULL, &loop), DT_OK);
  holder_t h;
  hold(&h, loop, r);
  lookup_ok(r, "both.dt.test");
  assert_int_equal(open_fds(), fds + 2);
  dt_resolver_free(r);
  assert_int_equal(h.calls, 1);
  assert_int_equal(h.st, DT_ECANCELED);
  assert_int_equal(open_fds(), fds);
  dt_loop_free(loop);
  assert_int_equal(open_fds(), fds);
}

typedef struct {
  dt_resolver_t *r;
  int failures;
} thread_arg_t;

static void *thread_main(void *p) {
  thread_arg_t *a = p;
  for (int i = 0; i < 40; i++) {
    dt_addr_t addrs[4];
    size_t n = 0;
    if (dt_resolver_lookup_addrs(a->r, i % 2 ? "both.dt.test" : "other.dt.test",
                                 AF_UNSPEC, -1, addrs, 4, &n) != DT_OK ||
        n != 2) {
      a->failures++;
    }
  }
  return NULL;
}

/* Threads share the idle sockets: at most one per thread is in use at a
 * time, so few are opened, and every answer is right. */
static void test_threads_share_idle(void **state) {
  (void)state;
  int fds = open_fds();
  dt_resolver_t *r = resolver(5000, 2);
  dt_loop_t *loop = NULL;
  assert_int_equal(dt_loop_new(NULL, &loop), DT_OK);
  holder_t h;
  hold(&h, loop, r);
  enum { NT = 4 };
  pthread_t t[NT];
  thread_arg_t a[NT];
  for (int i = 0; i < NT; i++) {
    a[i].r = r;
    a[i].failures = 0;
    assert_int_equal(pthread_create(&t[i], NULL, thread_main, &a[i]), 0);
  }
  for (int i = 0; i < NT; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(a[i].failures, 0);
  }
  /* The holder's, then at most one per thread plus retirements (320
   * questions, 64 each). */
  assert_true(opened(r) <= 1 + NT + 320 / 64 + NT);
  dt_loop_free(loop);
  dt_resolver_free(r);
  assert_int_equal(open_fds(), fds);
}

/* ---- an epoll-style loop ----------------------------------------------- */

typedef struct {
  struct {
    int fd;
    short ev;
    bool open; /* the number was open when told */
  } log[256];
  size_t nlog;
  short ev[1024]; /* what the callback holds, by descriptor */
  dt_loop_t *loop;
  dt_resolver_t *r;
  int started, done, failed;
  int chain;
} watch_t;

static void on_watch(void *ctx, int fd, short events) {
  watch_t *w = ctx;
  assert_true(w->nlog < sizeof(w->log) / sizeof(w->log[0]));
  w->log[w->nlog].fd = fd;
  w->log[w->nlog].ev = events;
  w->log[w->nlog].open = fcntl(fd, F_GETFD) != -1;
  w->nlog++;
  assert_true(fd >= 0 && fd < 1024);
  w->ev[fd] = events;
}

/* Between steps the watch callback holds exactly the loop's table. */
static void check_told(const watch_t *w) {
  struct pollfd pfd[16];
  size_t n = dt_loop_pollfds(w->loop, pfd, 16);
  assert_true(n <= 16);
  size_t held = 0;
  for (int fd = 0; fd < 1024; fd++) {
    held += w->ev[fd] != 0;
  }
  assert_int_equal(held, n);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(w->ev[pfd[i].fd], pfd[i].events);
  }
}

static void chain_cb(void *user, dt_status_t st, const dt_addr_t *addrs,
                     size_t n) {
  (void)addrs;
  watch_t *w = user;
  w->done++;
  if (st != DT_OK || n != 2) {
    w->failed++;
  }
  if (w->started < w->chain) {
    w->started++;
    assert_int_equal(dt_resolve_start(w->loop, w->r, "both.dt.test", AF_UNSPEC,
                                      0, 5000, chain_cb, w, NULL),
                     DT_OK);
  }
}

static size_t count(const watch_t *w, int fd, short ev) {
  size_t k = 0;
  for (size_t i = 0; i < w->nlog; i++) {
    k += w->log[i].fd == fd && w->log[i].ev == ev;
  }
  return k;
}

/* Drives the loop with poll() over its descriptor table until every
 * chained lookup is done. */
static void drive(watch_t *w) {
  for (int spins = 0; w->done < w->chain && spins < 1000; spins++) {
    struct pollfd pfd[16];
    size_t n = dt_loop_pollfds(w->loop, pfd, 16);
    assert_true(n <= 16);
    int ms = dt_loop_timeout_ms(w->loop);
    int rc = poll(pfd, (nfds_t)n, ms < 0 || ms > 1000 ? 1000 : ms);
    assert_true(rc >= 0);
    assert_int_equal(dt_loop_process(w->loop, pfd, n), DT_OK);
    check_told(w);
  }
}

/* Each callback starts the next lookup, which takes the socket the last
 * one parked: the watch callback hears of it once, added, and once,
 * removed, at the end; never a removal and re-add in between. */
static void test_loop_chain_no_del_add(void **state) {
  (void)state;
  int fds = open_fds();
  watch_t w;
  memset(&w, 0, sizeof(w));
  w.chain = 20;
  w.r = resolver(5000, 1);
  dt_loop_opts_t o;
  dt_loop_opts_init(&o);
  o.watch = on_watch;
  o.watch_ctx = &w;
  assert_int_equal(dt_loop_new(&o, &w.loop), DT_OK);
  holder_t h;
  hold(&h, w.loop, w.r);
  assert_int_equal(w.nlog, 1);
  int hold_fd = w.log[0].fd;
  w.started = 1;
  assert_int_equal(dt_resolve_start(w.loop, w.r, "both.dt.test", AF_UNSPEC, 0,
                                    5000, chain_cb, &w, NULL),
                   DT_OK);
  assert_int_equal(w.nlog, 2);
  int fd = w.log[1].fd;
  assert_int_equal(w.log[1].ev, POLLIN);
  drive(&w);
  assert_int_equal(w.done, w.chain);
  assert_int_equal(w.failed, 0);
  assert_int_equal(opened(w.r), 2);
  assert_int_equal(count(&w, fd, POLLIN), 1);
  assert_int_equal(count(&w, fd, 0), 1);
  assert_int_equal(w.nlog, 3);
  assert_true(w.log[2].open); /* told before any close */
  /* The holder's cancellation closes its socket: told while open. */
  assert_int_equal(dt_loop_pending(w.loop), 1);
  dt_loop_free(w.loop);
  assert_int_equal(h.st, DT_ECANCELED);
  assert_int_equal(count(&w, hold_fd, 0), 1);
  for (size_t i = 0; i < w.nlog; i++) {
    assert_true(w.log[i].open);
  }
  dt_resolver_free(w.r);
  assert_int_equal(open_fds(), fds);
}

/* Across retirements (every 32 lookups) the new socket may take the old
 * one's number: the callback is told of the removal and the addition, and
 * its view matches the loop's after every step. */
static void test_loop_chain_retirements(void **state) {
  (void)state;
  int fds = open_fds();
  watch_t w;
  memset(&w, 0, sizeof(w));
  w.chain = 70;
  w.r = resolver(5000, 1);
  dt_loop_opts_t o;
  dt_loop_opts_init(&o);
  o.watch = on_watch;
  o.watch_ctx = &w;
  assert_int_equal(dt_loop_new(&o, &w.loop), DT_OK);
  holder_t h;
  hold(&h, w.loop, w.r);
  w.started = 1;
  assert_int_equal(dt_resolve_start(w.loop, w.r, "both.dt.test", AF_UNSPEC, 0,
                                    5000, chain_cb, &w, NULL),
                   DT_OK);
  drive(&w);
  assert_int_equal(w.done, w.chain);
  assert_int_equal(w.failed, 0);
  assert_int_equal(opened(w.r), 1 + 3);
  /* The holder, then per socket one addition and one removal. */
  assert_int_equal(w.nlog, 1 + 3 * 2);
  for (size_t i = 0; i < w.nlog; i++) {
    assert_true(w.log[i].open);
  }
  dt_loop_free(w.loop);
  dt_resolver_free(w.r);
  assert_int_equal(open_fds(), fds);
}

/* A lookup that ends dirty closes its socket; the watch callback hears of
 * the removal while the number is still open (no EBADF for epoll). */
static void test_loop_close_told_first(void **state) {
  (void)state;
  watch_t w;
  memset(&w, 0, sizeof(w));
  w.chain = 1;
  w.r = resolver(5000, 1);
  dt_loop_opts_t o;
  dt_loop_opts_init(&o);
  o.watch = on_watch;
  o.watch_ctx = &w;
  assert_int_equal(dt_loop_new(&o, &w.loop), DT_OK);
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.wrong_id = true;
  assert_int_equal(fakedns_set_behaviour(srv, "both.dt.test", DT_TYPE_A, &b),
                   DT_OK);
  w.started = 1;
  assert_int_equal(dt_resolve_start(w.loop, w.r, "both.dt.test", AF_UNSPEC, 0,
                                    5000, chain_cb, &w, NULL),
                   DT_OK);
  drive(&w);
  assert_int_equal(w.done, 1);
  assert_int_equal(w.failed, 0);
  assert_int_equal(w.nlog, 2);
  assert_int_equal(w.log[1].ev, 0);
  assert_true(w.log[1].open);
  dt_loop_free(w.loop);
  dt_resolver_free(w.r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_reused_by_next_lookup, reset),
      cmocka_unit_test_setup(test_at_rest_nothing_kept, reset),
      cmocka_unit_test_setup(test_timeout_not_reused, reset),
      cmocka_unit_test_setup(test_mismatch_not_reused, reset),
      cmocka_unit_test_setup(test_retired_after_max_uses, reset),
      cmocka_unit_test_setup(test_retired_after_max_age, reset),
      cmocka_unit_test_setup(test_free_closes_idle, reset),
      cmocka_unit_test_setup(test_threads_share_idle, reset),
      cmocka_unit_test_setup(test_loop_chain_no_del_add, reset),
      cmocka_unit_test_setup(test_loop_chain_retirements, reset),
      cmocka_unit_test_setup(test_loop_close_told_first, reset),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
