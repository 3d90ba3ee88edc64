/* The pool's acquire machine (dt__pacq_*, pool_int.h) driven directly with
 * poll(), as the event-loop API drives it: many acquires waiting at the
 * active limit on one thread, woken by releases on another; cleanup in
 * every state; the blocking call and the machine sharing one wait.
 *
 * Servers are loopback listeners nobody accepts from: a connection is
 * established (and quiet, so healthy) as soon as the kernel queues it.
 * Names come from the fake DNS server with TTL 0, so no answer is cached
 * and every lookup of them stays in flight until the machine reads the
 * reply, which the tests can choose never to do. Deadlines run on a clock
 * that follows real time plus an offset the tests move; real waits have
 * generous windows, for valgrind on small shared machines. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "clock.h"
#include "dialtone.h"
#include "fake/fakedns.h"
#include "pool_int.h"

#define MS 1000ull
#define SEC 1000000ull

/* Names the fake server answers with TTL 0 (never cached). */
#define ZERO "zero.pacq.test"
#define ZERO2 "zero2.pacq.test"

static fakedns_t *dns;
static char dns_server[64];
static dt_resolver_t *resolver;
static dt_dialer_t *dialer;

/* ---- the clock --------------------------------------------------------- */

static uint64_t offset_us; /* atomic */

static uint64_t fake_clock(void *ctx) {
  (void)ctx;
  return dt__now_us() + __atomic_load_n(&offset_us, __ATOMIC_RELAXED);
}

static void advance(uint64_t us) {
  __atomic_fetch_add(&offset_us, us, __ATOMIC_RELAXED);
}

/* ---- helpers ----------------------------------------------------------- */

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

static dt_pool_t *pool_with(dt_pool_opts_t *o) {
  o->dialer = dialer;
  o->clock_us = fake_clock;
  o->conn.read_buffer_size = 4096;
  o->conn.write_buffer_size = 4096;
  dt_pool_t *p = NULL;
  assert_int_equal(dt_pool_new(o, &p), DT_OK);
  return p;
}

static dt_pool_stats_t stats(dt_pool_t *p) {
  dt_pool_stats_t s;
  dt_pool_get_stats(p, &s);
  return s;
}

/* Destination counts; all zero once the destination is forgotten. */
static dt_pool_dest_stats_t dstats(dt_pool_t *p, const char *host,
                                   uint16_t port) {
  dt_pool_dest_stats_t s = {0, 0, 0};
  dt_status_t st = dt_pool_get_dest_stats(p, host, port, &s);
  assert_true(st == DT_OK || st == DT_ENOENT);
  return s;
}

static void assert_dest(dt_pool_t *p, const char *host, uint16_t port,
                        size_t idle, size_t active, size_t waiting) {
  dt_pool_dest_stats_t s = dstats(p, host, port);
  assert_int_equal(s.idle, idle);
  assert_int_equal(s.active, active);
  assert_int_equal(s.waiting, waiting);
}

/* A loopback TCP listener that never accepts: connects complete in its
 * backlog. */
static int listener(uint16_t *port) {
  dt_listen_opts_t o;
  dt_listen_opts_init(&o);
  o.backlog = 256;
  int fd = -1;
  assert_int_equal(dt_listen(&o, "127.0.0.1", 0, &fd), DT_OK);
  assert_int_equal(dt_listen_get_port(fd, port), DT_OK);
  return fd;
}

/* One poll() over the machine's descriptors, until its deadline but at
 * most max_ms, then one step. */
static void step(dt__pacq_t *m, int max_ms) {
  struct pollfd pfd[DT__PACQ_MAX_POLLFDS];
  size_t n = dt__pacq_pollfds(m, pfd);
  int ms = dt__deadline_poll_ms(NULL, dt__pacq_deadline(m));
  if (ms < 0 || ms > max_ms) {
    ms = max_ms;
  }
  int rc = poll(pfd, (nfds_t)n, ms);
  assert_true(rc >= 0);
  dt__pacq_process(m, pfd, rc > 0 ? n : 0);
}

/* Drives the machine until it leaves state (10 s at most). */
static void run_while(dt__pacq_t *m, dt__pacq_state_t state) {
  uint64_t until = dt__now_us() + 10 * SEC;
  while (!m->done && m->state == state && dt__now_us() < until) {
    step(m, 100);
  }
  assert_true(m->done || m->state != state);
}

static void run_to_done(dt__pacq_t *m) {
  uint64_t until = dt__now_us() + 10 * SEC;
  while (!m->done && dt__now_us() < until) {
    step(m, 100);
  }
  assert_true(m->done);
}

/* Whether the machine's descriptors are ready now. */
static bool ready_now(const dt__pacq_t *m) {
  struct pollfd pfd[DT__PACQ_MAX_POLLFDS];
  size_t n = dt__pacq_pollfds(m, pfd);
  return poll(pfd, (nfds_t)n, 0) > 0;
}

/* ---- fixtures ---------------------------------------------------------- */

static int group_setup(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN);
  if (fakedns_new(NULL, &dns) != DT_OK || fakedns_start(dns) != DT_OK) {
    return -1;
  }
  if (fakedns_add(dns, ZERO ". 0 IN A 127.0.0.1") != DT_OK ||
      fakedns_add(dns, ZERO2 ". 0 IN A 127.0.0.1") != DT_OK) {
    return -1;
  }
  snprintf(dns_server, sizeof(dns_server), "127.0.0.1:%u",
           (unsigned)fakedns_port(dns));
  const char *servers[] = {dns_server};
  dt_resolver_opts_t ro;
  dt_resolver_opts_init(&ro);
  ro.servers = servers;
  ro.nservers = 1;
  ro.hosts = "";
  ro.timeout_ms = 2000;
  ro.attempts = 2;
  ro.clock_us = fake_clock;
  if (dt_resolver_new(&ro, &resolver) != DT_OK) {
    return -1;
  }
  dt_dial_opts_t d;
  dt_dial_opts_init(&d);
  d.resolver = resolver;
  d.family = AF_INET; /* the names have A records only */
  d.clock_us = fake_clock;
  return dt_dialer_new(&d, &dialer) == DT_OK ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  dt_dialer_free(dialer);
  dt_resolver_free(resolver);
  fakedns_free(dns);
  return 0;
}

static int reset(void **state) {
  (void)state;
  __atomic_store_n(&offset_us, 0, __ATOMIC_RELAXED);
  return 0;
}

/* ---- start: what it refuses, what finishes at once --------------------- */

static void test_start(void **state) {
  (void)state;
  uint16_t port;
  int lfd = listener(&port);
  dt_pool_opts_t o;
  dt_pool_opts_init(&o);
  o.max_active_per_dest = 1;
  o.fail_fast = true;
  dt_pool_t *p = pool_with(&o);
  dt__pacq_t *m = malloc(sizeof(*m));
  assert_non_null(m);

  /* Bad input: refused, nothing held, and cleanup after it is harmless. */
  assert_int_equal(dt__pacq_start(NULL, p, "127.0.0.1", port, 0), DT_EINVAL);
  assert_int_equal(dt__pacq_start(m, NULL, "127.0.0.1", port, 0), DT_EINVAL);
  dt__pacq_cleanup(m);
  assert_int_equal(dt__pacq_start(m, p, NULL, port, 0), DT_EINVAL);
  assert_int_equal(dt__pacq_start(m, p, "bad..name", port, 0), DT_EBADNAME);
  dt__pacq_cleanup(m);
  char path[200];
  memset(path, 'x', sizeof(path) - 1);
  path[sizeof(path) - 1] = '\0';
  memcpy(path, "unix:", 5);
  assert_int_equal(dt__pacq_start(m, p, path, 0, 0), DT_ENAMETOOLONG);
  dt_pool_stats_t s = stats(p);
  assert_int_equal(s.acquires, 0);
  assert_int_equal(s.destinations, 0);

  /* A dial of an IP literal; the connection is the machine's until
   * taken, and taking twice gives nothing more. */
  assert_int_equal(dt__pacq_start(m, p, "127.0.0.1", port, 5000), DT_OK);
  run_to_done(m);
  assert_int_equal(m->status, DT_OK);
  assert_int_equal(dt__pacq_pollfds(m, NULL), 0);
  assert_int_equal(dt__pacq_deadline(m).at_us, DT_DEADLINE_NEVER);
  dt_conn_t *c = NULL, *c2 = NULL;
  assert_int_equal(dt__pacq_take(m, &c), DT_OK);
  assert_non_null(c);
  assert_int_equal(dt__pacq_take(m, &c2), DT_EINVAL);
  assert_null(c2);
  dt__pacq_cleanup(m);
  dt__pacq_cleanup(m); /* again: nothing */
  assert_dest(p, "127.0.0.1", port, 0, 1, 0);

  /* fail_fast at the limit: the start succeeds, the machine is done with
   * DT_EBUSY, nothing is held. */
  assert_int_equal(dt__pacq_start(m, p, "127.0.0.1", port, 5000), DT_OK);
  assert_true(m->done);
  assert_int_equal(dt__pacq_take(m, &c2), DT_EBUSY);
  dt__pacq_cleanup(m);
  assert_int_equal(stats(p).busy, 1);
  assert_dest(p, "127.0.0.1", port, 0, 1, 0);

  /* An idle hit finishes inside start, without a poll(). */
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  assert_int_equal(dt__pacq_start(m, p, "127.0.0.1", port, 5000), DT_OK);
  assert_true(m->done);
  assert_int_equal(dt__pacq_take(m, &c2), DT_OK);
  assert_ptr_equal(c2, c);
  dt__pacq_cleanup(m);
  dt_pool_conn_info_t i;
  assert_int_equal(dt_pool_conn_get_info(c2, &i), DT_OK);
  assert_true(i.reused);
  assert_int_equal(i.uses, 2);
  assert_int_equal(dt_pool_release(p, c2, true), DT_OK);
  /* The blocking hit allocates nothing either. */
  dt__alloc_reset_counts();
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &c2), DT_OK);
  assert_int_equal(dt_pool_release(p, c2, true), DT_OK);
  assert_int_equal(dt__alloc_count(), 0);
  s = stats(p);
  assert_int_equal(s.acquires, 4);
  assert_int_equal(s.reuses, 2);
  assert_int_equal(s.dials, 1);

  free(m);
  dt_pool_free(p);
  close(lfd);
}

/* ---- many waiters on one thread, releases from another ------------------ */

enum { NWAIT = 16, LIMIT = 2 };

/* Releases, after a short pause each, the connections the test thread
 * queues, until it has released want of them. */
typedef struct {
  dt_pool_t *p;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  dt_conn_t *queue[NWAIT + LIMIT];
  size_t head, tail;
  size_t want;
} releaser_t;

static void rel_push(releaser_t *r, dt_conn_t *c) {
  pthread_mutex_lock(&r->lock);
  r->queue[r->tail++] = c;
  pthread_cond_signal(&r->cond);
  pthread_mutex_unlock(&r->lock);
}

static void *rel_main(void *arg) {
  releaser_t *r = arg;
  for (size_t done = 0; done < r->want; done++) {
    pthread_mutex_lock(&r->lock);
    while (r->head == r->tail) {
      pthread_cond_wait(&r->cond, &r->lock);
    }
    dt_conn_t *c = r->queue[r->head++];
    pthread_mutex_unlock(&r->lock);
    sleep_ms(2);
    if (dt_pool_release(r->p, c, true) != DT_OK) {
      abort();
    }
  }
  return NULL;
}

static void test_waiters_woken_across_threads(void **state) {
  (void)state;
  uint16_t port;
  int lfd = listener(&port);
  dt_pool_opts_t o;
  dt_pool_opts_init(&o);
  o.max_active_per_dest = LIMIT;
  dt_pool_t *p = pool_with(&o);
  dt_conn_t *held[LIMIT];
  for (int i = 0; i < LIMIT; i++) {
    assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &held[i]),
                     DT_OK);
  }

  dt__pacq_t *m = calloc(NWAIT, sizeof(*m));
  assert_non_null(m);
  for (int i = 0; i < NWAIT; i++) {
    assert_int_equal(dt__pacq_start(&m[i], p, "127.0.0.1", port, 60000), DT_OK);
    assert_false(m[i].done);
    assert_int_equal(m[i].state, DT__PACQ_WAIT);
  }
  assert_dest(p, "127.0.0.1", port, 0, LIMIT, NWAIT);
  /* Nothing is free: the shared descriptor is quiet. */
  assert_false(ready_now(&m[0]));

  releaser_t r;
  memset(&r, 0, sizeof(r));
  r.p = p;
  r.want = NWAIT + LIMIT;
  pthread_mutex_init(&r.lock, NULL);
  pthread_cond_init(&r.cond, NULL);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, rel_main, &r), 0);
  for (int i = 0; i < LIMIT; i++) {
    rel_push(&r, held[i]);
  }

  /* One loop for all of them. Every release must wake it (a lost wake-up
   * leaves poll() to its 10 s cap), and every wake-up must let a waiter
   * take a slot (a descriptor readable with nothing to take would spin). */
  int got[NWAIT] = {0};
  size_t ndone = 0, wakeups = 0, idle_wakeups = 0;
  while (ndone < NWAIT) {
    struct pollfd pfd[NWAIT];
    size_t at[NWAIT + 1];
    size_t k = 0;
    for (int i = 0; i < NWAIT; i++) {
      at[i] = k;
      if (!m[i].done) {
        k += dt__pacq_pollfds(&m[i], &pfd[k]);
      }
    }
    at[NWAIT] = k;
    int rc = poll(pfd, (nfds_t)k, 10000);
    assert_true(rc > 0);
    wakeups++;
    size_t before = ndone;
    for (int i = 0; i < NWAIT; i++) {
      if (m[i].done) {
        continue;
      }
      dt__pacq_process(&m[i], &pfd[at[i]], at[i + 1] - at[i]);
      if (m[i].done) {
        dt_conn_t *c = NULL;
        assert_int_equal(dt__pacq_take(&m[i], &c), DT_OK);
        got[i]++;
        ndone++;
        assert_true(dstats(p, "127.0.0.1", port).active <= LIMIT);
        rel_push(&r, c);
      }
    }
    if (ndone == before) {
      idle_wakeups++;
    }
  }
  pthread_join(th, NULL);
  for (int i = 0; i < NWAIT; i++) {
    assert_int_equal(got[i], 1);
    dt__pacq_cleanup(&m[i]);
  }
  assert_int_equal(idle_wakeups, 0);
  assert_true(wakeups <= NWAIT);
  dt_pool_stats_t s = stats(p);
  assert_int_equal(s.waits, NWAIT);
  assert_int_equal(s.wait_timeouts, 0);
  assert_int_equal(s.dials, LIMIT);
  assert_int_equal(s.reuses, NWAIT);
  assert_dest(p, "127.0.0.1", port, LIMIT, 0, 0);
  pthread_cond_destroy(&r.cond);
  pthread_mutex_destroy(&r.lock);
  free(m);
  dt_pool_free(p);
  close(lfd);
}

/* ---- deadlines and slots freed while waiting --------------------------- */

static void test_wait_deadlines(void **state) {
  (void)state;
  uint16_t port;
  int lfd = listener(&port);
  dt_pool_opts_t o;
  dt_pool_opts_init(&o);
  o.max_active_per_dest = 1;
  dt_pool_t *p = pool_with(&o);
  dt__pacq_t *m = calloc(6, sizeof(*m));
  assert_non_null(m);
  dt__pacq_t *a = &m[0], *b = &m[1], *c = &m[2], *d = &m[3], *e = &m[4],
             *f = &m[5];
  dt_conn_t *held = NULL, *got = NULL;
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &held), DT_OK);

  /* A and C give up at their deadline with DT_EBUSY; B, with a later one,
   * stays. The clock moves; nothing sleeps. */
  assert_int_equal(dt__pacq_start(a, p, "127.0.0.1", port, 100), DT_OK);
  assert_int_equal(dt__pacq_start(b, p, "127.0.0.1", port, 100000), DT_OK);
  assert_int_equal(dt__pacq_start(c, p, "127.0.0.1", port, 100), DT_OK);
  dt__pacq_process(a, NULL, 0);
  assert_false(a->done); /* not yet */
  advance(200 * MS);
  dt__pacq_process(a, NULL, 0);
  dt__pacq_process(b, NULL, 0);
  dt__pacq_process(c, NULL, 0);
  assert_true(a->done && c->done);
  assert_false(b->done);
  assert_int_equal(dt__pacq_take(a, &got), DT_EBUSY);
  assert_int_equal(dt__pacq_take(c, &got), DT_EBUSY);
  dt__pacq_cleanup(a);
  dt__pacq_cleanup(c);
  assert_int_equal(stats(p).wait_timeouts, 2);
  assert_dest(p, "127.0.0.1", port, 0, 1, 1);

  /* A release makes the descriptor readable; D, coming now, queues behind
   * B instead of taking the free slot. */
  assert_int_equal(dt_pool_release(p, held, true), DT_OK);
  assert_true(ready_now(b));
  assert_int_equal(dt__pacq_start(d, p, "127.0.0.1", port, 100000), DT_OK);
  assert_int_equal(d->state, DT__PACQ_WAIT);
  assert_dest(p, "127.0.0.1", port, 1, 0, 2);

  /* B leaves without processing: the slot is not lost, D sees it. */
  dt__pacq_cleanup(b);
  assert_true(b->done);
  assert_dest(p, "127.0.0.1", port, 1, 0, 1);
  assert_true(ready_now(d));
  step(d, 1000);
  assert_true(d->done);
  assert_int_equal(dt__pacq_take(d, &got), DT_OK);
  dt__pacq_cleanup(d);
  /* D took the last slot: the descriptor is quiet again. */
  assert_int_equal(dt__pacq_start(e, p, "127.0.0.1", port, 100), DT_OK);
  assert_false(ready_now(e));

  /* A release that came before E ran is E's even though its deadline
   * passed by the time it runs. */
  assert_int_equal(dt_pool_release(p, got, true), DT_OK);
  advance(200 * MS);
  dt__pacq_process(e, NULL, 0);
  assert_true(e->done);
  assert_int_equal(dt__pacq_take(e, &got), DT_OK);
  dt__pacq_cleanup(e);
  assert_int_equal(stats(p).wait_timeouts, 2);

  /* Without a deadline the wait has none either. */
  assert_int_equal(dt__pacq_start(f, p, "127.0.0.1", port, -1), DT_OK);
  assert_int_equal(dt__pacq_deadline(f).at_us, DT_DEADLINE_NEVER);
  advance(3600 * SEC);
  dt__pacq_process(f, NULL, 0);
  assert_false(f->done);
  dt__pacq_cleanup(f);
  assert_int_equal(dt_pool_release(p, got, true), DT_OK);
  dt_pool_stats_t s = stats(p);
  assert_int_equal(s.waits, 6);
  assert_int_equal(s.dials, 1);
  assert_dest(p, "127.0.0.1", port, 1, 0, 0);
  free(m);
  dt_pool_free(p);
  close(lfd);
}

/* ---- cleanup in every state -------------------------------------------- */

static void test_cleanup_every_state(void **state) {
  (void)state;
  uint16_t port;
  int lfd = listener(&port);
  int fds0 = count_fds();
  dt_pool_opts_t o;
  dt_pool_opts_init(&o);
  o.dns_coherence = true;
  dt_pool_t *p = pool_with(&o);
  dt__pacq_t *m = malloc(sizeof(*m));
  assert_non_null(m);
  dt_conn_t *c = NULL, *c2 = NULL;
  struct pollfd pfd[DT__PACQ_MAX_POLLFDS];

  /* Waiting: see test_wait_deadlines and test_cleanup_before_pool_free.
   *
   * Dialing (its lookup in flight): the socket closes, the place frees,
   * the destination goes. */
  assert_int_equal(dt__pacq_start(m, p, ZERO, port, 5000), DT_OK);
  assert_int_equal(m->state, DT__PACQ_DIAL);
  assert_true(dt__pacq_pollfds(m, pfd) > 0);
  assert_dest(p, ZERO, port, 0, 1, 0);
  dt__pacq_cleanup(m);
  assert_true(m->done);
  assert_int_equal(dt__pacq_take(m, &c), DT_ECANCELED);
  assert_dest(p, ZERO, port, 0, 0, 0);
  assert_int_equal(stats(p).destinations, 0);
  assert_int_equal(count_fds(), fds0);

  /* Learning the answer after the dial: the new connection is healthy and
   * unused, so it goes back idle. */
  assert_int_equal(dt__pacq_start(m, p, ZERO, port, 5000), DT_OK);
  run_while(m, DT__PACQ_DIAL);
  assert_int_equal(m->state, DT__PACQ_LEARN);
  assert_false(m->done);
  assert_dest(p, ZERO, port, 0, 1, 0);
  dt__pacq_cleanup(m);
  assert_dest(p, ZERO, port, 1, 0, 0);
  assert_int_equal(count_fds(), fds0 + 1);
  dt_pool_stats_t s = stats(p);
  assert_int_equal(s.dials, 2);
  assert_int_equal(s.dial_failures, 0);
  assert_int_equal(s.reuses, 0);

  /* Blocking acquires: the first takes it (never followed: its answer was
   * not learned), the second dials and learns the answer (TTL 0: the
   * pool's floor of 1 s applies). */
  assert_int_equal(dt_pool_acquire(p, ZERO, port, 5000, &c), DT_OK);
  assert_int_equal(dt_pool_acquire(p, ZERO, port, 5000, &c2), DT_OK);
  dt_pool_conn_info_t i;
  assert_int_equal(dt_pool_conn_get_info(c, &i), DT_OK);
  assert_true(i.reused);
  assert_false(i.dns_tracked);
  assert_int_equal(dt_pool_conn_get_info(c2, &i), DT_OK);
  assert_false(i.reused);
  assert_true(i.dns_tracked);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  assert_int_equal(dt_pool_release(p, c2, true), DT_OK);

  /* Rechecking (the answer expired, the lookup in flight): dns_checking
   * is reset, the reservation freed, the idle connections stay. */
  advance(2 * SEC);
  assert_int_equal(dt__pacq_start(m, p, ZERO, port, 5000), DT_OK);
  assert_int_equal(m->state, DT__PACQ_RECHECK);
  dt__pdest_t *d = m->d;
  assert_true(d->dns_checking);
  assert_dest(p, ZERO, port, 2, 1, 0);
  assert_int_equal(stats(p).dns_lookups, 1);
  dt__pacq_cleanup(m);
  assert_false(d->dns_checking);
  assert_dest(p, ZERO, port, 2, 0, 0);
  assert_int_equal(count_fds(), fds0 + 2);
  /* So the next acquire looks again. */
  assert_int_equal(dt_pool_acquire(p, ZERO, port, 5000, &c), DT_OK);
  s = stats(p);
  assert_int_equal(s.dns_lookups, 2);
  assert_int_equal(s.dns_failures, 0);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);

  /* Done, not taken: a hit goes back idle, counted neither as a reuse nor
   * as a use of the connection. */
  uint64_t reuses = stats(p).reuses;
  assert_int_equal(dt__pacq_start(m, p, ZERO, port, 5000), DT_OK);
  assert_true(m->done);
  assert_int_equal(m->status, DT_OK);
  dt__pconn_t *pc = m->c;
  uint64_t uses = pc->uses;
  assert_dest(p, ZERO, port, 1, 1, 0);
  dt__pacq_cleanup(m);
  assert_dest(p, ZERO, port, 2, 0, 0);
  assert_int_equal(pc->uses, uses);
  assert_int_equal(stats(p).reuses, reuses);
  assert_int_equal(count_fds(), fds0 + 2);

  dt_pool_free(p);
  assert_int_equal(count_fds(), fds0);
  free(m);
  close(lfd);
}

/* ---- the blocking call and the machine share one wait ------------------ */

typedef struct {
  dt_pool_t *p;
  uint16_t port;
  dt_status_t st;
  bool reused;
} blocker_t;

static void *blocker_main(void *arg) {
  blocker_t *b = arg;
  dt_conn_t *c = NULL;
  b->st = dt_pool_acquire(b->p, "127.0.0.1", b->port, 30000, &c);
  if (b->st == DT_OK) {
    dt_pool_conn_info_t i;
    b->reused = dt_pool_conn_get_info(c, &i) == DT_OK && i.reused;
    dt_pool_release(b->p, c, true);
  }
  return NULL;
}

static void test_blocking_and_machine_share_the_wait(void **state) {
  (void)state;
  uint16_t port;
  int lfd = listener(&port);
  dt_pool_opts_t o;
  dt_pool_opts_init(&o);
  o.max_active_per_dest = 1;
  dt_pool_t *p = pool_with(&o);
  dt__pacq_t *m = malloc(sizeof(*m));
  assert_non_null(m);

  /* The machine holds the only slot, done but not taken; a blocking
   * caller on another thread waits; the machine's cleanup hands the
   * connection back and wakes it. */
  assert_int_equal(dt__pacq_start(m, p, "127.0.0.1", port, 5000), DT_OK);
  run_to_done(m);
  assert_int_equal(m->status, DT_OK);
  blocker_t b = {p, port, DT_EINVAL, false};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, blocker_main, &b), 0);
  for (int i = 0; i < 10000 && dstats(p, "127.0.0.1", port).waiting == 0; i++) {
    sleep_ms(1);
  }
  assert_dest(p, "127.0.0.1", port, 0, 1, 1);
  dt__pacq_cleanup(m);
  pthread_join(th, NULL);
  assert_int_equal(b.st, DT_OK);
  assert_true(b.reused);

  /* The other way round: a blocking caller holds the slot; a machine
   * waits; a release on the other thread wakes it. */
  dt_conn_t *c = NULL;
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &c), DT_OK);
  assert_int_equal(dt__pacq_start(m, p, "127.0.0.1", port, 30000), DT_OK);
  assert_int_equal(m->state, DT__PACQ_WAIT);
  releaser_t r;
  memset(&r, 0, sizeof(r));
  r.p = p;
  r.want = 1;
  pthread_mutex_init(&r.lock, NULL);
  pthread_cond_init(&r.cond, NULL);
  assert_int_equal(pthread_create(&th, NULL, rel_main, &r), 0);
  rel_push(&r, c);
  run_to_done(m);
  pthread_join(th, NULL);
  assert_int_equal(dt__pacq_take(m, &c), DT_OK);
  dt__pacq_cleanup(m);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  dt_pool_stats_t s = stats(p);
  assert_int_equal(s.waits, 2);
  assert_int_equal(s.dials, 1);
  assert_int_equal(s.wait_timeouts, 0);
  pthread_cond_destroy(&r.cond);
  pthread_mutex_destroy(&r.lock);
  free(m);
  dt_pool_free(p);
  close(lfd);
}

/* ---- no descriptor for a waiter ---------------------------------------- */

static void test_wait_without_descriptor(void **state) {
  (void)state;
  uint16_t port;
  int lfd = listener(&port);
  dt_pool_opts_t o;
  dt_pool_opts_init(&o);
  o.max_active_per_dest = 1;
  dt_pool_t *p = pool_with(&o);
  dt_conn_t *held = NULL, *c = NULL;
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &held), DT_OK);
  int fds0 = count_fds();
  /* A full descriptor table: the eventfd of the first waiter cannot be
   * made (as test_faults fills it: a low soft limit, then /dev/null). */
  struct rlimit saved, rl;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rl = saved;
  rl.rlim_cur = (rlim_t)fds0 + 64;
  if (rl.rlim_cur > saved.rlim_cur) {
    skip();
  }
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
  int fill[128], n = 0;
  for (;;) {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      assert_int_equal(errno, EMFILE);
      break;
    }
    assert_true(n < 128);
    fill[n++] = fd;
  }
  dt_status_t st = dt_pool_acquire(p, "127.0.0.1", port, 5000, &c);
  while (n > 0) {
    close(fill[--n]);
  }
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
  assert_int_equal(st, DT_EMFILE);
  assert_dest(p, "127.0.0.1", port, 0, 1, 0);
  assert_int_equal(stats(p).waits, 0);
  assert_int_equal(count_fds(), fds0);
  /* With descriptors back, the same wait works. */
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 0, &c), DT_EBUSY);
  assert_int_equal(stats(p).wait_timeouts, 1);
  assert_int_equal(count_fds(), fds0 + 1); /* the destination's eventfd */
  assert_int_equal(dt_pool_release(p, held, true), DT_OK);
  dt_pool_free(p);
  assert_int_equal(count_fds(), fds0 - 1);
  close(lfd);
}

/* ---- machines in flight when their pool is freed ----------------------- */

static void test_cleanup_before_pool_free(void **state) {
  (void)state;
  uint16_t port, port2;
  int lfd = listener(&port);
  int lfd2 = listener(&port2);
  int fds0 = count_fds();
  dt_pool_opts_t o;
  dt_pool_opts_init(&o);
  o.dns_coherence = true;
  o.max_active_per_dest = 1;
  dt_pool_t *p = pool_with(&o);
  dt__pacq_t *m = calloc(5, sizeof(*m));
  assert_non_null(m);
  dt_conn_t *held = NULL, *c = NULL;

  /* ZERO: one idle connection whose answer has expired. */
  assert_int_equal(dt_pool_acquire(p, ZERO, port, 5000, &c), DT_OK);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  advance(2 * SEC);
  /* 127.0.0.1: the only slot held, so a machine waits. */
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &held), DT_OK);

  assert_int_equal(dt__pacq_start(&m[0], p, "127.0.0.1", port, 5000), DT_OK);
  assert_int_equal(m[0].state, DT__PACQ_WAIT);
  assert_int_equal(dt__pacq_start(&m[1], p, ZERO, port, 5000), DT_OK);
  assert_int_equal(m[1].state, DT__PACQ_RECHECK);
  assert_int_equal(dt__pacq_start(&m[2], p, ZERO2, port, 5000), DT_OK);
  assert_int_equal(m[2].state, DT__PACQ_DIAL);
  assert_int_equal(dt__pacq_start(&m[3], p, ZERO2, port, 5000), DT_OK);
  assert_int_equal(m[3].state, DT__PACQ_WAIT);
  assert_int_equal(dt__pacq_start(&m[4], p, "127.0.0.1", port2, 5000), DT_OK);
  run_to_done(&m[4]);
  assert_int_equal(m[4].status, DT_OK); /* done, not taken */
  dt_pool_stats_t s = stats(p);
  assert_int_equal(s.destinations, 4);

  /* What the event loop does when a pool goes with operations in flight:
   * cleanup of each, then the pool. */
  for (int i = 0; i < 5; i++) {
    dt__pacq_cleanup(&m[i]);
  }
  assert_dest(p, "127.0.0.1", port, 0, 1, 0);
  assert_dest(p, ZERO, port, 1, 0, 0);
  assert_dest(p, ZERO2, port, 0, 0, 0);
  assert_dest(p, "127.0.0.1", port2, 1, 0, 0);
  s = stats(p);
  assert_int_equal(s.active, 1);
  assert_int_equal(s.destinations, 3);
  assert_int_equal(dt_pool_release(p, held, true), DT_OK);
  dt_pool_free(p);
  assert_int_equal(count_fds(), fds0);
  free(m);
  close(lfd);
  close(lfd2);
}

/* ---- allocation failures along every step ----------------------------- */

static void test_alloc_failures(void **state) {
  (void)state;
  uint16_t port;
  int lfd = listener(&port);
  int fds0 = count_fds();
  dt_pool_opts_t o;
  dt_pool_opts_init(&o);
  o.dns_coherence = true;
  dt_pool_t *p = pool_with(&o);
  dt_conn_t *idle = NULL;
  /* One idle connection whose answer has expired: the first acquire below
   * rechecks and takes it, the second dials and learns its answer; the
   * lookups and the dial allocate. */
  assert_int_equal(dt_pool_acquire(p, ZERO, port, 5000, &idle), DT_OK);
  assert_int_equal(dt_pool_release(p, idle, true), DT_OK);
  bool done = false;
  unsigned failed_rechecks = 0, failed_dials = 0;
  for (uint64_t n = 1; n < 400 && !done; n++) {
    advance(2 * SEC);
    uint64_t dns_failures = stats(p).dns_failures;
    dt_conn_t *a = NULL, *b = NULL;
    dt__alloc_fail_at(n);
    dt_status_t sa = dt_pool_acquire(p, ZERO, port, 5000, &a);
    dt_status_t sb = dt_pool_acquire(p, ZERO, port, 5000, &b);
    done = dt__alloc_count() < n;
    dt__alloc_fail_at(0);
    /* A recheck that cannot allocate counts as a failed lookup and keeps
     * the connections; a dial that cannot is DT_ENOMEM; a learn that
     * cannot leaves the connection unfollowed. */
    assert_int_equal(sa, DT_OK);
    assert_true(sb == DT_OK || sb == DT_ENOMEM);
    failed_rechecks += (unsigned)(stats(p).dns_failures - dns_failures);
    failed_dials += sb != DT_OK;
    assert_int_equal(dt_pool_release(p, a, true), DT_OK);
    if (sb == DT_OK) {
      /* Closed, so that one idle connection is left for the next round. */
      assert_int_equal(dt_pool_release(p, b, false), DT_OK);
    }
    dt_pool_stats_t s = stats(p);
    assert_int_equal(s.active, 0);
    assert_int_equal(s.idle, 1);
    assert_int_equal(s.destinations, 1);
    assert_dest(p, ZERO, port, 1, 0, 0);
    pthread_mutex_lock(&p->lock);
    char key[DT__POOL_KEY_MAX];
    size_t len;
    assert_int_equal(dt__pool_key(ZERO, port, key, &len), DT_OK);
    dt__pdest_t *d = dt__pool_dest_find(p, key, len);
    assert_non_null(d);
    assert_false(d->dns_checking);
    pthread_mutex_unlock(&p->lock);
  }
  assert_true(done);
  assert_true(failed_rechecks > 0);
  assert_true(failed_dials > 0);
  dt_pool_free(p);
  assert_int_equal(count_fds(), fds0);
  close(lfd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_start, reset),
      cmocka_unit_test_setup(test_waiters_woken_across_threads, reset),
      cmocka_unit_test_setup(test_wait_deadlines, reset),
      cmocka_unit_test_setup(test_cleanup_every_state, reset),
      cmocka_unit_test_setup(test_blocking_and_machine_share_the_wait, reset),
      cmocka_unit_test_setup(test_wait_without_descriptor, reset),
      cmocka_unit_test_setup(test_cleanup_before_pool_free, reset),
      cmocka_unit_test_setup(test_alloc_failures, reset),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
