/* The pool on real loopback sockets: TCP and Unix servers in threads (or
 * accepted by the test itself, to script the peer exactly), names from the
 * fake DNS server. Timeouts, lifetimes and TTLs run on a clock that follows
 * real time plus an offset the tests move; the windows of real waits are
 * generous, for small shared machines. */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "clock.h"
#include "dialtone.h"
#include "fake/fakedns.h"
#include "pool_int.h"

#define SEC 1000000ull

static fakedns_t *dns;
static char dns_server[64];
static char tmpdir[64];
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

static dt_pool_t *pool_default(void) {
  dt_pool_opts_t o;
  dt_pool_opts_init(&o);
  return pool_with(&o);
}

static dt_pool_stats_t stats(dt_pool_t *p) {
  dt_pool_stats_t s;
  dt_pool_get_stats(p, &s);
  return s;
}

static dt_pool_conn_info_t info(dt_conn_t *c) {
  dt_pool_conn_info_t i;
  assert_int_equal(dt_pool_conn_get_info(c, &i), DT_OK);
  return i;
}

static int tcp_listener(const char *addr, uint16_t port, uint16_t *bound) {
  int fd = -1;
  if (dt_listen(NULL, addr, port, &fd) != DT_OK) {
    return -1;
  }
  assert_int_equal(dt_listen_get_port(fd, bound), DT_OK);
  return fd;
}

/* A Unix listener at tmpdir/name; *dest gets "unix:PATH". */
static int unix_listener(const char *name, char *dest, size_t len) {
  char path[128];
  snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
  snprintf(dest, len, "unix:%s", path);
  int fd = -1;
  assert_int_equal(dt_listen_unix(NULL, path, &fd), DT_OK);
  return fd;
}

static int accept_within(int lfd, int ms) {
  struct pollfd p = {lfd, POLLIN, 0};
  assert_int_equal(poll(&p, 1, ms), 1);
  int fd = accept(lfd, NULL, NULL);
  assert_true(fd >= 0);
  return fd;
}

/* Waits until fd has something to report (bytes, end of stream, error). */
static void wait_readable(int fd) {
  struct pollfd p = {fd, POLLIN, 0};
  assert_int_equal(poll(&p, 1, 5000), 1);
}

static void write_all(int fd, const void *buf, size_t len) {
  assert_int_equal(write(fd, buf, len), (ssize_t)len);
}

/* One 16-byte request and its 16-byte echo. */
static dt_status_t roundtrip(dt_conn_t *c) {
  uint8_t req[16], resp[16];
  for (size_t i = 0; i < sizeof(req); i++) {
    req[i] = (uint8_t)(rand() & 0xff);
  }
  dt_status_t st = dt_conn_write(c, req, sizeof(req), 5000);
  if (st == DT_OK) {
    st = dt_flush(c, 5000);
  }
  size_t got = 0;
  while (st == DT_OK && got < sizeof(resp)) {
    size_t n = 0;
    st = dt_conn_read(c, resp + got, sizeof(resp) - got, &n, 5000);
    got += n;
  }
  if (st != DT_OK) {
    return st;
  }
  return memcmp(req, resp, sizeof(req)) == 0 ? DT_OK : DT_EBADREPLY;
}

static bool same_fd_peer(dt_conn_t *c, const char *ip) {
  dt_pool_conn_info_t i = info(c);
  char text[64];
  const struct sockaddr_in *v4 = (const struct sockaddr_in *)&i.peer;
  return i.peer.ss_family == AF_INET &&
         inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text)) != NULL &&
         strcmp(text, ip) == 0;
}

/* ---- an echo server ---------------------------------------------------- */

/* One thread serving every connection of a listener with poll(): each
 * 16 bytes read are written back. With close_every N, it closes a
 * connection after its N-th response, as servers with a request limit
 * per connection do. */
#define SRV_MAX 1024

typedef struct {
  int lfd;
  int ctl[2];
  pthread_t th;
  unsigned close_every;
  int open;     /* atomic: connections open on the server side */
  int accepted; /* atomic */
  int closed;   /* atomic: closed by the server after a response */
} srv_t;

typedef struct {
  uint8_t buf[16];
  size_t have;
  unsigned served;
} srv_conn_t;

static void *srv_main(void *arg) {
  srv_t *s = arg;
  static __thread struct pollfd pfd[SRV_MAX + 2];
  static __thread srv_conn_t cs[SRV_MAX];
  size_t n = 0;
  for (;;) {
    pfd[0].fd = s->ctl[0];
    pfd[0].events = POLLIN;
    pfd[1].fd = n < SRV_MAX ? s->lfd : -1;
    pfd[1].events = POLLIN;
    if (poll(pfd, 2 + n, -1) < 0) {
      continue;
    }
    if (pfd[0].revents != 0) {
      break;
    }
    size_t polled = n;
    if (pfd[1].revents & POLLIN) {
      int fd = accept(s->lfd, NULL, NULL);
      if (fd >= 0) {
        pfd[2 + n].fd = fd;
        pfd[2 + n].events = POLLIN;
        pfd[2 + n].revents = 0;
        memset(&cs[n], 0, sizeof(cs[n]));
        n++;
        __atomic_fetch_add(&s->accepted, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&s->open, 1, __ATOMIC_RELAXED);
      }
    }
    for (size_t i = 0; i < polled && i < n;) {
      struct pollfd *p = &pfd[2 + i];
      srv_conn_t *c = &cs[i];
      bool drop = false;
      if (p->revents != 0) {
        p->revents = 0;
        ssize_t r = read(p->fd, c->buf + c->have, sizeof(c->buf) - c->have);
        if (r <= 0) {
          drop = true;
        } else if ((c->have += (size_t)r) == sizeof(c->buf)) {
          c->have = 0;
          c->served++;
          if (write(p->fd, c->buf, sizeof(c->buf)) != sizeof(c->buf)) {
            drop = true;
          } else if (s->close_every > 0 && c->served % s->close_every == 0) {
            drop = true;
            __atomic_fetch_add(&s->closed, 1, __ATOMIC_RELAXED);
          }
        }
      }
      if (!drop) {
        i++;
        continue;
      }
      close(p->fd);
      __atomic_fetch_sub(&s->open, 1, __ATOMIC_RELAXED);
      n--;
      /* The last entry moves here; if it was polled, its revents are
       * still to be handled, at this index. */
      pfd[2 + i] = pfd[2 + n];
      cs[i] = cs[n];
      if (n < polled) {
        polled--;
      }
    }
  }
  for (size_t i = 0; i < n; i++) {
    close(pfd[2 + i].fd);
  }
  return NULL;
}

static void srv_start(srv_t *s, int lfd, unsigned close_every) {
  memset(s, 0, sizeof(*s));
  s->lfd = lfd;
  s->close_every = close_every;
  assert_int_equal(pipe(s->ctl), 0);
  assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void srv_stop(srv_t *s) {
  close(s->ctl[1]);
  pthread_join(s->th, NULL);
  close(s->ctl[0]);
  close(s->lfd);
}

static int srv_get(int *v) {
  return __atomic_load_n(v, __ATOMIC_RELAXED);
}

/* Waits until *v == want (5 s at most). */
static void wait_for(int *v, int want) {
  for (int i = 0; i < 5000 && srv_get(v) != want; i++) {
    sleep_ms(1);
  }
  assert_int_equal(srv_get(v), want);
}

/* ---- fixtures ---------------------------------------------------------- */

static int group_setup(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN);
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/dt-pool-XXXXXX");
  if (mkdtemp(tmpdir) == NULL) {
    return -1;
  }
  if (fakedns_new(NULL, &dns) != DT_OK || fakedns_start(dns) != DT_OK) {
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
  ro.timeout_ms = 1000;
  ro.attempts = 2;
  ro.clock_us = fake_clock;
  if (dt_resolver_new(&ro, &resolver) != DT_OK) {
    return -1;
  }
  dt_dial_opts_t d;
  dt_dial_opts_init(&d);
  d.resolver = resolver;
  d.family = AF_INET; /* the names below have A records only */
  d.clock_us = fake_clock;
  return dt_dialer_new(&d, &dialer) == DT_OK ? 0 : -1;
}

static int group_teardown(void **state) {
  (void)state;
  dt_dialer_free(dialer);
  dt_resolver_free(resolver);
  fakedns_free(dns);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

static int reset(void **state) {
  (void)state;
  __atomic_store_n(&offset_us, 0, __ATOMIC_RELAXED);
  return 0;
}

/* ---- tests ------------------------------------------------------------- */

static void test_options_and_arguments(void **state) {
  (void)state;
  dt_pool_opts_t o;
  dt_pool_opts_init(&o);
  assert_null(o.dialer);
  assert_int_equal(o.max_idle_per_dest, 8);
  assert_int_equal(o.max_idle_total, 128);
  assert_int_equal(o.idle_timeout_ms, 90000);
  assert_int_equal(o.max_lifetime_ms, 0);
  assert_int_equal(o.max_active_per_dest, 0);
  assert_false(o.fail_fast);
  assert_false(o.dns_coherence);
  assert_int_equal(o.dns_recheck_min_ms, 1000);
  assert_int_equal(o.conn.read_buffer_size, DT_CONN_BUFFER_DEFAULT);

  dt_pool_t *p = NULL;
  assert_int_equal(dt_pool_new(&o, NULL), DT_EINVAL);
  o.dialer = dialer;
  o.idle_timeout_ms = -1;
  assert_int_equal(dt_pool_new(&o, &p), DT_EINVAL);
  dt_pool_opts_init(&o);
  o.dialer = dialer;
  o.conn.frame_header_size = 3;
  assert_int_equal(dt_pool_new(&o, &p), DT_EINVAL);
  assert_null(p);
  dt_pool_free(NULL);

  p = pool_default();
  dt_conn_t *c = NULL;
  assert_int_equal(dt_pool_acquire(NULL, "x", 1, 0, &c), DT_EINVAL);
  assert_int_equal(dt_pool_acquire(p, NULL, 1, 0, &c), DT_EINVAL);
  assert_int_equal(dt_pool_acquire(p, "x", 1, 0, NULL), DT_EINVAL);
  assert_int_equal(dt_pool_acquire(p, "bad..name", 80, 1000, &c), DT_EBADNAME);
  assert_int_equal(dt_pool_acquire(p, "unix:", 0, 1000, &c), DT_EINVAL);
  char longpath[200];
  memset(longpath, 'a', sizeof(longpath) - 1);
  memcpy(longpath, "unix:/", 6);
  longpath[sizeof(longpath) - 1] = '\0';
  assert_int_equal(dt_pool_acquire(p, longpath, 0, 1000, &c), DT_ENAMETOOLONG);
  assert_null(c);

  /* Connections that did not come from the pool are refused. */
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  assert_int_equal(dt_conn_new(sv[0], NULL, &c), DT_OK);
  assert_int_equal(dt_pool_release(p, c, true), DT_EINVAL);
  assert_int_equal(dt_pool_release(p, NULL, true), DT_EINVAL);
  dt_pool_conn_info_t i;
  assert_int_equal(dt_pool_conn_get_info(c, &i), DT_EINVAL);
  dt_conn_free(c);
  close(sv[1]);

  /* Nothing to dial at a path nobody listens on: the dial's status. */
  char path[128];
  snprintf(path, sizeof(path), "unix:%s/nobody", tmpdir);
  assert_int_equal(dt_pool_acquire(p, path, 0, 1000, &c), DT_ENOENT);
  dt_pool_stats_t s = stats(p);
  assert_int_equal(s.dials, 1);
  assert_int_equal(s.dial_failures, 1);
  assert_int_equal(s.active, 0);
  assert_int_equal(s.destinations, 0);

  assert_string_equal(dt_pool_check_tostr(DT_POOL_CHECK_DATA), "data");
  assert_string_equal(dt_pool_evict_tostr(DT_POOL_EVICT_DNS), "dns");
  assert_string_equal(dt_pool_discard_tostr(DT_POOL_DISCARD_INPUT), "input");
  assert_string_equal(dt_pool_evict_tostr((dt_pool_evict_t)99), "?");
  assert_string_equal(dt_strerror(DT_ESTALECONN),
                      "reused connection failed before any reply arrived");
  dt_pool_free(p);
}

/* Destination keys: one spelling per destination. */
static void test_keys(void **state) {
  (void)state;
  static const struct {
    const char *host;
    uint16_t port;
    const char *key;
  } cases[] = {
      {"127.0.0.1", 80, "127.0.0.1#80"},
      {"255.255.255.255", 65535, "255.255.255.255#65535"},
      {"0.0.0.0", 0, "0.0.0.0#0"},
      {"::0001", 443, "[::1]#443"},
      {"2001:DB8:0:0::1", 443, "[2001:db8::1]#443"},
      {"fe80::1%7", 22, "[fe80::1%7]#22"},
      {"WWW.Example.", 443, "www.example#443"},
      {"www.example", 443, "www.example#443"},
      {"unix:/run/App.sock", 99, "unix:/run/App.sock"},
  };
  char key[DT__POOL_KEY_MAX];
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    size_t len = 0;
    assert_int_equal(dt__pool_key(cases[i].host, cases[i].port, key, &len),
                     DT_OK);
    assert_string_equal(key, cases[i].key);
    assert_int_equal(len, strlen(cases[i].key));
  }
  size_t len = 0;
  assert_int_equal(dt__pool_key("a..b", 1, key, &len), DT_EBADNAME);
  assert_int_equal(dt__pool_key("unix:", 1, key, &len), DT_EINVAL);
  /* The longest name there is still fits, with the longest port. */
  char name[300];
  memset(name, 'a', 253);
  for (int i = 63; i < 253; i += 64) {
    name[i] = '.';
  }
  name[253] = '\0';
  assert_int_equal(dt__pool_key(name, 65535, key, &len), DT_OK);
  assert_int_equal(len, 253 + 6);
}

static void list_visit(const char *key, const dt_pool_dest_stats_t *s,
                       void *ctx) {
  char *out = ctx;
  snprintf(out + strlen(out), 256 - strlen(out), "%s i%zu a%zu w%zu;", key,
           s->idle, s->active, s->waiting);
}

/* The basic promise: the second acquire is the first connection again,
 * and it knows it was reused and for how long it sat. */
static void test_reuse(void **state) {
  (void)state;
  uint16_t port;
  int lfd = tcp_listener("127.0.0.1", 0, &port);
  assert_true(lfd >= 0);
  srv_t srv;
  srv_start(&srv, lfd, 0);
  int fds0 = count_fds();
  dt_pool_t *p = pool_default();

  dt_conn_t *c = NULL;
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &c), DT_OK);
  dt_pool_conn_info_t i = info(c);
  assert_false(i.reused);
  assert_int_equal(i.uses, 1);
  assert_int_equal(i.idle_us, 0);
  assert_false(i.dns_tracked);
  assert_true(same_fd_peer(c, "127.0.0.1"));
  assert_int_equal(ntohs(((struct sockaddr_in *)&i.peer)->sin_port), port);
  assert_int_equal(roundtrip(c), DT_OK);
  int fd = dt_conn_fd(c);
  dt_conn_t *first = c;
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  dt_pool_stats_t s = stats(p);
  assert_int_equal(s.idle, 1);
  assert_int_equal(s.active, 0);

  advance(5 * SEC);
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &c), DT_OK);
  assert_ptr_equal(c, first);
  assert_int_equal(dt_conn_fd(c), fd);
  i = info(c);
  assert_true(i.reused);
  assert_int_equal(i.uses, 2);
  assert_true(i.idle_us >= 5 * SEC && i.idle_us < 6 * SEC);
  assert_true(i.age_us >= 5 * SEC);
  assert_int_equal(roundtrip(c), DT_OK);

  dt_pool_dest_stats_t ds;
  assert_int_equal(dt_pool_get_dest_stats(p, "127.0.0.1", port, &ds), DT_OK);
  assert_int_equal(ds.active, 1);
  assert_int_equal(ds.idle, 0);
  assert_int_equal(dt_pool_get_dest_stats(p, "127.0.0.1", 1, &ds), DT_OK);
  assert_int_equal(ds.active, 0);
  char seen[256] = "", want[64];
  dt_pool_list(p, list_visit, seen);
  snprintf(want, sizeof(want), "127.0.0.1#%u i0 a1 w0;", (unsigned)port);
  assert_string_equal(seen, want);

  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  /* Released twice: refused, and the pool is unharmed. */
  assert_int_equal(dt_pool_release(p, c, true), DT_EINVAL);
  s = stats(p);
  assert_int_equal(s.acquires, 2);
  assert_int_equal(s.reuses, 1);
  assert_int_equal(s.dials, 1);
  assert_int_equal(s.idle, 1);
  assert_int_equal(s.destinations, 1);
  dt_pool_free(p);
  wait_for(&srv.open, 0); /* the server side closes when it sees ours */
  assert_int_equal(count_fds(), fds0);
  srv_stop(&srv);
}

/* The complaint the issue starts from: the server closes a connection
 * after its response while it sits in the pool. */
static void test_server_closed_idle_is_never_handed_out(void **state) {
  (void)state;
  uint16_t port;
  int lfd = tcp_listener("127.0.0.1", 0, &port);
  srv_t srv;
  srv_start(&srv, lfd, 1);
  dt_pool_t *p = pool_default();
  for (int round = 1; round <= 3; round++) {
    dt_conn_t *c = NULL;
    assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &c), DT_OK);
    /* Every connection in the pool was closed by the server: none may be
     * handed out, so this one was dialed. */
    assert_false(info(c).reused);
    assert_int_equal(roundtrip(c), DT_OK);
    int fd = dt_conn_fd(c);
    assert_int_equal(dt_pool_release(p, c, true), DT_OK);
    wait_for(&srv.closed, round);
    wait_readable(fd); /* the FIN is in */
  }
  dt_pool_stats_t s = stats(p);
  assert_int_equal(s.check_closed[DT_POOL_CHECK_EOF], 2);
  assert_int_equal(s.reuses, 0);
  assert_int_equal(s.dials, 3);
  assert_int_equal(s.idle, 1);
  dt_pool_free(p);
  srv_stop(&srv);
}

/* Each health-check reason, with the peer scripted by the test. */
static void test_health_check_reasons(void **state) {
  (void)state;
  char dest[160];
  int lfd = unix_listener("hc.sock", dest, sizeof(dest));
  int fds0 = count_fds();
  dt_pool_t *p = pool_default();
  dt_conn_t *c = NULL;

  /* Unexpected bytes pending: a desynchronised protocol. */
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  int peer = accept_within(lfd, 5000);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  write_all(peer, "x", 1);
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  assert_false(info(c).reused);
  assert_int_equal(stats(p).check_closed[DT_POOL_CHECK_DATA], 1);
  close(peer);

  /* The peer closed it. */
  peer = accept_within(lfd, 5000);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  close(peer);
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  assert_false(info(c).reused);
  assert_int_equal(stats(p).check_closed[DT_POOL_CHECK_EOF], 1);
  peer = accept_within(lfd, 5000);

  /* A healthy one is taken. */
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  dt_conn_t *again = NULL;
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &again), DT_OK);
  assert_ptr_equal(again, c);
  assert_int_equal(dt_pool_release(p, again, true), DT_OK);
  close(peer);
  dt_pool_free(p);
  close(lfd);

  /* An error pending: the TCP peer resets the connection. */
  uint16_t port;
  lfd = tcp_listener("127.0.0.1", 0, &port);
  p = pool_default();
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &c), DT_OK);
  peer = accept_within(lfd, 5000);
  int fd = dt_conn_fd(c);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  struct linger lg = {1, 0};
  assert_int_equal(setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
  close(peer);
  wait_readable(fd);
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &c), DT_OK);
  assert_false(info(c).reused);
  dt_pool_stats_t s = stats(p);
  assert_int_equal(s.check_closed[DT_POOL_CHECK_ERROR], 1);
  assert_int_equal(s.check_closed[DT_POOL_CHECK_EOF], 0);
  peer = accept_within(lfd, 5000);
  dt_conn_free(c);
  assert_int_equal(stats(p).active, 0);
  close(peer);
  dt_pool_free(p);
  close(lfd);
  assert_int_equal(count_fds(), fds0 - 1);
}

/* Idle timeout on the fake clock: lazily on acquire, and by prune. */
static void test_idle_timeout(void **state) {
  (void)state;
  char dest[160];
  int lfd = unix_listener("idle.sock", dest, sizeof(dest));
  dt_pool_t *p = pool_default();
  dt_conn_t *a = NULL, *b = NULL, *c = NULL;
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &a), DT_OK);
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &b), DT_OK);
  assert_int_equal(dt_pool_release(p, a, true), DT_OK);
  assert_int_equal(dt_pool_release(p, b, true), DT_OK);

  advance(89 * SEC);
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  assert_ptr_equal(c, b); /* the most recently used */
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  assert_int_equal(stats(p).evicted[DT_POOL_EVICT_IDLE], 0);

  /* a has now sat 91 s, b 2 s: a goes on the next call, b stays. */
  advance(2 * SEC);
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  assert_ptr_equal(c, b);
  dt_pool_stats_t s = stats(p);
  assert_int_equal(s.evicted[DT_POOL_EVICT_IDLE], 1);
  assert_int_equal(s.idle, 0);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);

  /* Nothing touches the pool: prune does the job. */
  advance(89 * SEC);
  assert_int_equal(dt_pool_prune(p), 0);
  advance(2 * SEC);
  assert_int_equal(dt_pool_prune(p), 1);
  s = stats(p);
  assert_int_equal(s.evicted[DT_POOL_EVICT_IDLE], 2);
  assert_int_equal(s.idle, 0);
  assert_int_equal(s.destinations, 0);
  dt_pool_free(p);

  /* A timeout of 0 keeps them for ever. */
  dt_pool_opts_t o;
  dt_pool_opts_init(&o);
  o.idle_timeout_ms = 0;
  p = pool_with(&o);
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &a), DT_OK);
  assert_int_equal(dt_pool_release(p, a, true), DT_OK);
  advance(1000000 * SEC);
  assert_int_equal(dt_pool_prune(p), 0);
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  assert_ptr_equal(c, a);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  dt_pool_free(p);
  close(lfd);
}

static void test_max_lifetime(void **state) {
  (void)state;
  char dest[160];
  int lfd = unix_listener("life.sock", dest, sizeof(dest));
  dt_pool_opts_t o;
  dt_pool_opts_init(&o);
  o.max_lifetime_ms = 10000;
  dt_pool_t *p = pool_with(&o);
  dt_conn_t *a = NULL, *c = NULL;

  /* Out past its lifetime: closed when released. */
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &a), DT_OK);
  assert_int_equal(dt_pool_release(p, a, true), DT_OK);
  advance(6 * SEC);
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  assert_ptr_equal(c, a);
  advance(5 * SEC);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  dt_pool_stats_t s = stats(p);
  assert_int_equal(s.evicted[DT_POOL_EVICT_LIFETIME], 1);
  assert_int_equal(s.idle, 0);

  /* Idle past its lifetime: passed over on acquire. */
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &a), DT_OK);
  assert_false(info(a).reused);
  assert_int_equal(dt_pool_release(p, a, true), DT_OK);
  advance(11 * SEC);
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  assert_false(info(c).reused);
  assert_int_equal(stats(p).evicted[DT_POOL_EVICT_LIFETIME], 2);

  /* And by prune. */
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  advance(9 * SEC);
  assert_int_equal(dt_pool_prune(p), 0);
  advance(2 * SEC);
  assert_int_equal(dt_pool_prune(p), 1);
  s = stats(p);
  assert_int_equal(s.evicted[DT_POOL_EVICT_LIFETIME], 3);
  assert_int_equal(s.evicted[DT_POOL_EVICT_IDLE], 0);
  dt_pool_free(p);
  close(lfd);
}

/* Per-destination and total idle limits, least recently used first. */
static void test_capacity_lru(void **state) {
  (void)state;
  char da[160], db[160];
  int la = unix_listener("cap-a.sock", da, sizeof(da));
  int lb = unix_listener("cap-b.sock", db, sizeof(db));
  int fds0 = count_fds();
  dt_pool_opts_t o;
  dt_pool_opts_init(&o);
  o.max_idle_per_dest = 2;
  o.max_idle_total = 3;
  dt_pool_t *p = pool_with(&o);
  dt_conn_t *a[3], *b[2], *c = NULL;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(dt_pool_acquire(p, da, 0, 5000, &a[i]), DT_OK);
  }
  for (int i = 0; i < 3; i++) {
    advance(SEC);
    assert_int_equal(dt_pool_release(p, a[i], true), DT_OK);
  }
  /* a0 was the least recently used of A's three. */
  dt_pool_stats_t s = stats(p);
  assert_int_equal(s.idle, 2);
  assert_int_equal(s.evicted[DT_POOL_EVICT_CAPACITY], 1);

  for (int i = 0; i < 2; i++) {
    assert_int_equal(dt_pool_acquire(p, db, 0, 5000, &b[i]), DT_OK);
  }
  for (int i = 0; i < 2; i++) {
    advance(SEC);
    assert_int_equal(dt_pool_release(p, b[i], true), DT_OK);
  }
  /* Four idle over a total of three: a1, the oldest anywhere, goes. */
  s = stats(p);
  assert_int_equal(s.idle, 3);
  assert_int_equal(s.evicted[DT_POOL_EVICT_CAPACITY], 2);
  dt_pool_dest_stats_t ds;
  assert_int_equal(dt_pool_get_dest_stats(p, da, 0, &ds), DT_OK);
  assert_int_equal(ds.idle, 1);

  assert_int_equal(dt_pool_acquire(p, da, 0, 5000, &c), DT_OK);
  assert_ptr_equal(c, a[2]);
  dt_conn_t *fresh = NULL;
  assert_int_equal(dt_pool_acquire(p, da, 0, 5000, &fresh), DT_OK);
  assert_false(info(fresh).reused);
  dt_conn_t *x = NULL, *y = NULL;
  assert_int_equal(dt_pool_acquire(p, db, 0, 5000, &x), DT_OK);
  assert_int_equal(dt_pool_acquire(p, db, 0, 5000, &y), DT_OK);
  assert_ptr_equal(x, b[1]);
  assert_ptr_equal(y, b[0]);
  dt_conn_free(c);
  dt_conn_free(fresh);
  dt_conn_free(x);
  dt_conn_free(y);
  s = stats(p);
  assert_int_equal(s.active, 0);
  assert_int_equal(s.idle, 0);
  assert_int_equal(s.discarded[DT_POOL_DISCARD_UNREUSABLE], 4);
  dt_pool_free(p);

  /* A limit of 0 keeps nothing. */
  o.max_idle_per_dest = 0;
  p = pool_with(&o);
  assert_int_equal(dt_pool_acquire(p, da, 0, 5000, &c), DT_OK);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  s = stats(p);
  assert_int_equal(s.idle, 0);
  assert_int_equal(s.evicted[DT_POOL_EVICT_CAPACITY], 1);
  dt_pool_free(p);
  assert_int_equal(count_fds(), fds0);
  close(la);
  close(lb);
}

typedef struct {
  dt_pool_t *p;
  const char *host;
  uint16_t port;
  int timeout_ms;
  int hold_ms;
  pthread_barrier_t *start;
  int *inside; /* atomic: connections held right now */
  int *most;   /* atomic: the most held at once */
  dt_status_t st;
  bool reused;
} holder_t;

static void *holder_main(void *arg) {
  holder_t *h = arg;
  if (h->start != NULL) {
    pthread_barrier_wait(h->start);
  }
  dt_conn_t *c = NULL;
  h->st = dt_pool_acquire(h->p, h->host, h->port, h->timeout_ms, &c);
  if (h->st != DT_OK) {
    return NULL;
  }
  h->reused = info(c).reused;
  if (h->inside != NULL) {
    int now = __atomic_add_fetch(h->inside, 1, __ATOMIC_SEQ_CST);
    int seen = __atomic_load_n(h->most, __ATOMIC_SEQ_CST);
    while (now > seen &&
           !__atomic_compare_exchange_n(h->most, &seen, now, false,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    }
  }
  sleep_ms((unsigned)h->hold_ms);
  if (roundtrip(c) != DT_OK) {
    h->st = DT_EBADREPLY;
  }
  if (h->inside != NULL) {
    __atomic_sub_fetch(h->inside, 1, __ATOMIC_SEQ_CST);
  }
  dt_pool_release(h->p, c, true);
  return NULL;
}

static uint64_t ms_since(uint64_t t0) {
  return (dt__now_us() - t0) / 1000u;
}

static void test_active_limit(void **state) {
  (void)state;
  uint16_t port;
  int lfd = tcp_listener("127.0.0.1", 0, &port);
  srv_t srv;
  srv_start(&srv, lfd, 0);
  dt_pool_opts_t o;
  dt_pool_opts_init(&o);
  o.max_active_per_dest = 2;
  dt_pool_t *p = pool_with(&o);

  /* Six threads, two slots: never more than two out at once. */
  enum { N = 6 };
  pthread_t th[N];
  holder_t h[N];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, N);
  int inside = 0, most = 0;
  for (int i = 0; i < N; i++) {
    h[i] = (holder_t){p,      "127.0.0.1", port,  20000, 100,
                      &start, &inside,     &most, DT_OK, false};
    pthread_create(&th[i], NULL, holder_main, &h[i]);
  }
  for (int i = 0; i < N; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(h[i].st, DT_OK);
  }
  pthread_barrier_destroy(&start);
  assert_true(most >= 1 && most <= 2);
  dt_pool_stats_t s = stats(p);
  assert_true(s.waits >= 1);
  assert_int_equal(s.wait_timeouts, 0);
  assert_int_equal(s.active, 0);
  assert_true(s.dials <= 2);

  /* At the limit until the deadline: DT_EBUSY, after the deadline. */
  dt_conn_t *c1 = NULL, *c2 = NULL, *c3 = NULL;
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &c1), DT_OK);
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &c2), DT_OK);
  uint64_t t0 = dt__now_us();
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 300, &c3), DT_EBUSY);
  uint64_t waited = ms_since(t0);
  assert_true(waited >= 295 && waited < 5000);
  assert_int_equal(stats(p).wait_timeouts, 1);

  /* A waiter gets the connection released to it. */
  holder_t w = {p, "127.0.0.1", port, 20000, 0, NULL, NULL, NULL, DT_OK, false};
  pthread_t wt;
  pthread_create(&wt, NULL, holder_main, &w);
  dt_pool_dest_stats_t ds = {0, 0, 0};
  for (int i = 0; i < 5000 && ds.waiting == 0; i++) {
    sleep_ms(1);
    dt_pool_get_dest_stats(p, "127.0.0.1", port, &ds);
  }
  assert_int_equal(ds.waiting, 1);
  assert_int_equal(ds.active, 2);
  assert_int_equal(dt_pool_release(p, c1, true), DT_OK);
  pthread_join(wt, NULL);
  assert_int_equal(w.st, DT_OK);
  assert_true(w.reused);
  assert_int_equal(dt_pool_release(p, c2, true), DT_OK);
  dt_pool_free(p);

  /* fail_fast: refused at once. */
  o.max_active_per_dest = 1;
  o.fail_fast = true;
  p = pool_with(&o);
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &c1), DT_OK);
  t0 = dt__now_us();
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &c3), DT_EBUSY);
  assert_true(ms_since(t0) < 1000);
  s = stats(p);
  assert_int_equal(s.busy, 1);
  assert_int_equal(s.waits, 0);
  /* Other destinations are not limited by this one. */
  char dest[160];
  int ul = unix_listener("active.sock", dest, sizeof(dest));
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c3), DT_OK);
  dt_conn_free(c3);
  assert_int_equal(dt_pool_release(p, c1, true), DT_OK);
  dt_pool_free(p);
  close(ul);
  srv_stop(&srv);
}

/* What release closes instead of keeping. */
static void test_release_discards(void **state) {
  (void)state;
  char dest[160];
  int lfd = unix_listener("rel.sock", dest, sizeof(dest));
  int fds0 = count_fds();
  dt_pool_t *p = pool_default();
  dt_conn_t *c = NULL;

  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  int peer = accept_within(lfd, 5000);
  assert_int_equal(dt_pool_release(p, c, false), DT_OK);
  assert_int_equal(stats(p).discarded[DT_POOL_DISCARD_UNREUSABLE], 1);
  close(peer);

  /* Unsent output. */
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  assert_false(info(c).reused);
  peer = accept_within(lfd, 5000);
  assert_int_equal(dt_conn_write(c, "abcd", 4, 1000), DT_OK);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  assert_int_equal(stats(p).discarded[DT_POOL_DISCARD_OUTPUT], 1);
  close(peer);

  /* Unread input: 32 bytes arrive, 16 are read. */
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  peer = accept_within(lfd, 5000);
  char buf[32];
  memset(buf, 'r', sizeof(buf));
  write_all(peer, buf, sizeof(buf));
  size_t got = 0;
  while (got < 16) {
    size_t n = 0;
    assert_int_equal(dt_conn_read(c, buf, 16 - got, &n, 5000), DT_OK);
    got += n;
  }
  assert_true(dt_conn_pending_input(c) > 0);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  assert_int_equal(stats(p).discarded[DT_POOL_DISCARD_INPUT], 1);
  close(peer);

  /* End of stream seen on a fresh connection: DT_EOF, then broken. */
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  peer = accept_within(lfd, 5000);
  close(peer);
  size_t n = 0;
  assert_int_equal(dt_conn_read(c, buf, 1, &n, 5000), DT_EOF);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  assert_int_equal(stats(p).discarded[DT_POOL_DISCARD_BROKEN], 1);

  /* An oversized frame breaks the connection. */
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  peer = accept_within(lfd, 5000);
  uint8_t hdr[4] = {0x7f, 0xff, 0xff, 0xff};
  write_all(peer, hdr, sizeof(hdr));
  const uint8_t *payload;
  assert_int_equal(dt_frame_read(c, 5000, &payload, &n), DT_EFRAMETOOBIG);
  assert_true(dt_conn_is_broken(c));
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  assert_int_equal(stats(p).discarded[DT_POOL_DISCARD_BROKEN], 2);
  close(peer);

  /* A connection from another pool is refused by this one. */
  dt_pool_t *other = pool_default();
  assert_int_equal(dt_pool_acquire(other, dest, 0, 5000, &c), DT_OK);
  peer = accept_within(lfd, 5000);
  assert_int_equal(dt_pool_release(p, c, true), DT_EINVAL);
  assert_int_equal(dt_pool_release(other, c, true), DT_OK);
  dt_pool_free(other);
  close(peer);

  dt_pool_stats_t s = stats(p);
  assert_int_equal(s.idle, 0);
  assert_int_equal(s.active, 0);
  assert_int_equal(s.reuses, 0);
  dt_pool_free(p);
  assert_int_equal(count_fds(), fds0);
  close(lfd);
}

/* The first I/O of a reused connection fails with its own status; a
 * fresh connection's, or a reused one's after a byte arrived, does not. */
static void test_stale_status(void **state) {
  (void)state;
  char dest[160];
  int lfd = unix_listener("stale.sock", dest, sizeof(dest));
  dt_pool_t *p = pool_default();
  dt_conn_t *c = NULL;
  size_t n = 0;
  char buf[16];

  /* Write to a peer gone after the health check (Unix: EPIPE). */
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  int peer = accept_within(lfd, 5000);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  assert_true(info(c).reused);
  close(peer);
  assert_int_equal(dt_conn_write(c, "0123456789abcdef", 16, 1000), DT_OK);
  assert_int_equal(dt_flush(c, 1000), DT_ESTALECONN);
  assert_true(dt_conn_is_broken(c));
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);

  /* Read end of stream before any byte. */
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  assert_false(info(c).reused);
  peer = accept_within(lfd, 5000);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  assert_true(info(c).reused);
  close(peer);
  assert_int_equal(dt_conn_read(c, buf, 1, &n, 1000), DT_ESTALECONN);
  assert_int_equal(dt_conn_read(c, buf, 1, &n, 1000), DT_EBROKEN);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);

  /* A byte arrived first: a later end of stream is just that. */
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  peer = accept_within(lfd, 5000);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  assert_true(info(c).reused);
  write_all(peer, "z", 1);
  close(peer);
  assert_int_equal(dt_conn_read(c, buf, 1, &n, 1000), DT_OK);
  assert_int_equal(dt_conn_read(c, buf, 1, &n, 1000), DT_EOF);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);

  /* A fresh connection is never "stale". */
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  assert_false(info(c).reused);
  peer = accept_within(lfd, 5000);
  close(peer);
  assert_int_equal(dt_conn_read(c, buf, 1, &n, 1000), DT_EOF);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  dt_pool_free(p);
  close(lfd);

  /* TCP: the request leaves, the reply is end of stream. */
  uint16_t port;
  lfd = tcp_listener("127.0.0.1", 0, &port);
  p = pool_default();
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &c), DT_OK);
  peer = accept_within(lfd, 5000);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 5000, &c), DT_OK);
  assert_true(info(c).reused);
  shutdown(peer, SHUT_WR);
  assert_int_equal(dt_conn_write(c, "0123456789abcdef", 16, 1000), DT_OK);
  assert_int_equal(dt_flush(c, 1000), DT_OK);
  assert_int_equal(dt_conn_read(c, buf, sizeof(buf), &n, 1000), DT_ESTALECONN);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  close(peer);
  dt_pool_free(p);
  close(lfd);
}

/* DNS coherence: the name moves from 127.0.0.1 to 127.0.0.2 after its
 * TTL; idle connections to the old address go, new ones reach the new. */
static void test_dns_coherence(void **state) {
  (void)state;
  uint16_t port, port2;
  int l1 = tcp_listener("127.0.0.1", 0, &port);
  int l2 = tcp_listener("127.0.0.2", port, &port2);
  if (l2 < 0) {
    close(l1);
    print_message("127.0.0.2 unusable on this host: test skipped\n");
    skip();
  }
  srv_t s1, s2;
  srv_start(&s1, l1, 0);
  srv_start(&s2, l2, 0);
  fakedns_clear(dns);
  assert_int_equal(fakedns_add(dns, "svc.pool.test. 30 IN A 127.0.0.1"), DT_OK);
  fakedns_reset_stats(dns);
  dt_cache_flush(resolver, NULL);
  dt_pool_opts_t o;
  dt_pool_opts_init(&o);
  o.dns_coherence = true;
  dt_pool_t *p = pool_with(&o);

  dt_conn_t *a = NULL, *b = NULL, *c = NULL;
  assert_int_equal(dt_pool_acquire(p, "svc.pool.test", port, 5000, &a), DT_OK);
  assert_int_equal(dt_pool_acquire(p, "svc.pool.test", port, 5000, &b), DT_OK);
  assert_true(same_fd_peer(a, "127.0.0.1"));
  dt_pool_conn_info_t i = info(a);
  assert_true(i.dns_tracked);
  assert_true(i.dns_expires_in_us > 28 * SEC &&
              i.dns_expires_in_us <= 30 * SEC);
  assert_int_equal(dt_pool_release(p, a, true), DT_OK);
  assert_int_equal(dt_pool_release(p, b, true), DT_OK);
  /* Another spelling of the name is the same destination. */
  assert_int_equal(dt_pool_acquire(p, "SVC.Pool.Test.", port, 5000, &c), DT_OK);
  assert_ptr_equal(c, b);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  assert_int_equal(stats(p).dns_lookups, 0);

  /* Expired, unchanged: one lookup, nothing closed. */
  advance(31 * SEC);
  assert_int_equal(dt_pool_acquire(p, "svc.pool.test", port, 5000, &c), DT_OK);
  assert_true(info(c).reused);
  dt_pool_stats_t s = stats(p);
  assert_int_equal(s.dns_lookups, 1);
  assert_int_equal(s.evicted[DT_POOL_EVICT_DNS], 0);
  assert_int_equal(fakedns_count(dns, "svc.pool.test", DT_TYPE_A, FAKEDNS_UDP),
                   2);
  /* Within the fresh answer's TTL: no lookup. */
  assert_int_equal(dt_pool_acquire(p, "svc.pool.test", port, 5000, &a), DT_OK);
  assert_true(info(a).reused);
  assert_int_equal(dt_pool_release(p, a, true), DT_OK);
  assert_int_equal(stats(p).dns_lookups, 1);

  /* The name moves; c stays out meanwhile. */
  fakedns_clear(dns);
  assert_int_equal(fakedns_add(dns, "svc.pool.test. 30 IN A 127.0.0.2"), DT_OK);
  advance(31 * SEC);
  assert_int_equal(dt_pool_acquire(p, "svc.pool.test", port, 5000, &b), DT_OK);
  assert_false(info(b).reused);
  assert_true(same_fd_peer(b, "127.0.0.2"));
  s = stats(p);
  assert_int_equal(s.dns_lookups, 2);
  assert_int_equal(s.evicted[DT_POOL_EVICT_DNS], 1);
  assert_int_equal(s.idle, 0);
  /* c comes back to an answer without its address: closed. */
  assert_int_equal(roundtrip(c), DT_OK);
  assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  assert_int_equal(stats(p).evicted[DT_POOL_EVICT_DNS], 2);
  assert_int_equal(dt_pool_release(p, b, true), DT_OK);
  assert_int_equal(dt_pool_acquire(p, "svc.pool.test", port, 5000, &a), DT_OK);
  assert_ptr_equal(a, b);
  assert_int_equal(roundtrip(a), DT_OK);
  assert_int_equal(dt_pool_release(p, a, true), DT_OK);
  wait_for(&s2.accepted, 1);
  assert_int_equal(srv_get(&s1.accepted), 2);

  /* The name disappears: its idle connections go with it. */
  fakedns_clear(dns);
  assert_int_equal(
      fakedns_add(dns, "pool.test. 30 IN SOA ns.pool.test. a.pool.test. 1 "
                       "7200 900 86400 30"),
      DT_OK);
  advance(31 * SEC);
  assert_int_equal(dt_pool_acquire(p, "svc.pool.test", port, 5000, &a),
                   DT_ENXDOMAIN);
  s = stats(p);
  assert_int_equal(s.evicted[DT_POOL_EVICT_DNS], 3);
  assert_int_equal(s.dns_failures, 0);
  assert_int_equal(s.idle, 0);
  dt_pool_free(p);

  /* Off by default: the address change is not looked for. */
  fakedns_clear(dns);
  assert_int_equal(fakedns_add(dns, "svc.pool.test. 30 IN A 127.0.0.1"), DT_OK);
  advance(31 * SEC);
  p = pool_default();
  assert_int_equal(dt_pool_acquire(p, "svc.pool.test", port, 5000, &a), DT_OK);
  assert_false(info(a).dns_tracked);
  assert_int_equal(dt_pool_release(p, a, true), DT_OK);
  advance(31 * SEC);
  assert_int_equal(dt_pool_acquire(p, "svc.pool.test", port, 5000, &b), DT_OK);
  assert_ptr_equal(a, b);
  assert_int_equal(dt_pool_release(p, b, true), DT_OK);
  assert_int_equal(stats(p).dns_lookups, 0);
  dt_pool_free(p);
  srv_stop(&s1);
  srv_stop(&s2);
}

/* ---- 16 threads, 4 destinations ---------------------------------------- */

typedef struct {
  dt_pool_t *p;
  const char *const *dests;
  const uint16_t *ports;
  unsigned seed;
  uint64_t until_us;
  unsigned ok, stale, errors;
  dt_status_t last_error;
} worker_t;

static void *worker_main(void *arg) {
  worker_t *w = arg;
  while (dt__now_us() < w->until_us) {
    unsigned k = (unsigned)rand_r(&w->seed) % 4;
    dt_conn_t *c = NULL;
    dt_status_t st = dt_pool_acquire(w->p, w->dests[k], w->ports[k], 10000, &c);
    if (st == DT_OK) {
      st = roundtrip(c);
      /* Now and then a caller gives up on a connection. */
      bool keep = st == DT_OK && rand_r(&w->seed) % 16 != 0;
      if (rand_r(&w->seed) % 64 == 0) {
        dt_conn_free(c);
      } else {
        dt_pool_release(w->p, c, keep);
      }
    }
    if (st == DT_OK) {
      w->ok++;
    } else if (st == DT_ESTALECONN) {
      w->stale++;
    } else {
      w->errors++;
      w->last_error = st;
    }
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  /* Two TCP and two Unix servers; one of each closes connections after a
   * few responses, so stale connections keep turning up. */
  srv_t srv[4];
  char d2[160], d3[160];
  uint16_t ports[4] = {0, 0, 0, 0};
  srv_start(&srv[0], tcp_listener("127.0.0.1", 0, &ports[0]), 0);
  srv_start(&srv[1], tcp_listener("127.0.0.1", 0, &ports[1]), 3);
  srv_start(&srv[2], unix_listener("t2.sock", d2, sizeof(d2)), 0);
  srv_start(&srv[3], unix_listener("t3.sock", d3, sizeof(d3)), 5);
  const char *dests[4] = {"127.0.0.1", "127.0.0.1", d2, d3};
  int fds0 = count_fds();

  dt_pool_opts_t o;
  dt_pool_opts_init(&o);
  o.max_idle_per_dest = 4;
  o.max_idle_total = 12;
  o.max_active_per_dest = 6;
  dt_pool_t *p = pool_with(&o);
  enum { N = 16 };
  pthread_t th[N];
  worker_t w[N];
  uint64_t until = dt__now_us() + 2 * SEC;
  for (int i = 0; i < N; i++) {
    w[i] = (worker_t){p, dests, ports, (unsigned)i * 7919u + 1, until, 0,
                      0, 0,     DT_OK};
    assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
  }
  unsigned ok = 0, stale = 0, errors = 0;
  for (int i = 0; i < N; i++) {
    pthread_join(th[i], NULL);
    ok += w[i].ok;
    stale += w[i].stale;
    errors += w[i].errors;
    if (w[i].errors > 0) {
      print_message("worker %d: %u errors, last %s\n", i, w[i].errors,
                    dt_status_name(w[i].last_error));
    }
  }
  dt_pool_stats_t s = stats(p);
  print_message("%u round trips, %u stale; %llu acquires, %llu reuses, "
                "%llu dials, health-check closes %llu/%llu/%llu, "
                "capacity evictions %llu, waits %llu\n",
                ok, stale, (unsigned long long)s.acquires,
                (unsigned long long)s.reuses, (unsigned long long)s.dials,
                (unsigned long long)s.check_closed[0],
                (unsigned long long)s.check_closed[1],
                (unsigned long long)s.check_closed[2],
                (unsigned long long)s.evicted[DT_POOL_EVICT_CAPACITY],
                (unsigned long long)s.waits);
  assert_int_equal(errors, 0);
  assert_true(ok > 100);
  assert_true(s.reuses > 0);
  assert_int_equal(s.acquires, s.reuses + s.dials);
  assert_int_equal(s.dial_failures, 0);
  assert_int_equal(s.active, 0);
  assert_true(s.idle <= 12);
  dt_pool_free(p);
  /* Every client descriptor is closed exactly once: the servers see each
   * connection end, and the count is back where it was. A double close
   * would have hit someone else's descriptor and shown up as an error. */
  for (int i = 0; i < 4; i++) {
    wait_for(&srv[i].open, 0);
  }
  assert_int_equal(count_fds(), fds0);
  for (int i = 0; i < 4; i++) {
    srv_stop(&srv[i]);
  }
}

/* ---- 10,000 idle connections ------------------------------------------- */

enum { MANY = 10000 };

/* Raises the soft descriptor limit to at least need; false when the hard
 * limit does not allow it. */
static bool raise_nofile(rlim_t need, struct rlimit *saved) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return false;
  }
  *saved = rl;
  if (rl.rlim_cur >= need) {
    return true;
  }
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
    return false;
  }
  rl.rlim_cur = need;
  return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

/* The server side lives in a child process: with its own descriptor
 * table each side needs ~10,000 descriptors instead of one process
 * needing ~20,000. Only system calls run between fork and _exit. */
/* The test binary's own path, to run the accepting server as a fresh
 * process: a forked copy of this one would carry the test's allocations
 * and fake servers into its exit, where valgrind counts them as leaks. */
static const char *self_path;

static void child_accept(int lfd, int ctl) {
  for (;;) {
    struct pollfd pfd[2] = {{ctl, POLLIN, 0}, {lfd, POLLIN, 0}};
    if (poll(pfd, 2, -1) < 0) {
      continue;
    }
    if (pfd[0].revents != 0) {
      _exit(0);
    }
    if (pfd[1].revents & POLLIN) {
      (void)accept(lfd, NULL, NULL);
    }
  }
}

static void test_ten_thousand_idle(void **state) {
  (void)state;
  struct rlimit saved;
  if (!raise_nofile(MANY + 200, &saved)) {
    print_message("RLIMIT_NOFILE hard limit below %d: 10,000 idle "
                  "connections not tested\n",
                  MANY + 200);
    skip();
  }
  uint16_t port;
  dt_listen_opts_t lo;
  dt_listen_opts_init(&lo);
  int lfd = -1;
  assert_int_equal(dt_listen(&lo, "127.0.0.1", 0, &lfd), DT_OK);
  assert_int_equal(dt_listen_get_port(lfd, &port), DT_OK);
  int ctl[2];
  assert_int_equal(pipe(ctl), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(ctl[1]);
    char a[16], b[16];
    snprintf(a, sizeof(a), "%d", lfd);
    snprintf(b, sizeof(b), "%d", ctl[0]);
    fcntl(lfd, F_SETFD, 0);
    fcntl(ctl[0], F_SETFD, 0);
    execl(self_path, self_path, "--accept-child", a, b, (char *)NULL);
    _exit(127);
  }
  close(ctl[0]);
  close(lfd);
  int fds0 = count_fds();

  dt_pool_opts_t o;
  dt_pool_opts_init(&o);
  o.max_idle_per_dest = MANY;
  o.max_idle_total = MANY;
  o.dialer = dialer;
  o.clock_us = fake_clock;
  /* Small buffers: the pool keeps every idle connection's. */
  o.conn.read_buffer_size = 256;
  o.conn.write_buffer_size = 256;
  dt_pool_t *p = NULL;
  assert_int_equal(dt_pool_new(&o, &p), DT_OK);

  dt_conn_t **cs = calloc(MANY, sizeof(*cs));
  assert_non_null(cs);
  uint64_t t0 = dt__now_us();
  for (int i = 0; i < MANY; i++) {
    dt_status_t st = dt_pool_acquire(p, "127.0.0.1", port, 10000, &cs[i]);
    if (st != DT_OK) {
      print_message("acquire %d: %s\n", i, dt_status_name(st));
    }
    assert_int_equal(st, DT_OK);
  }
  uint64_t dial_ms = ms_since(t0);
  for (int i = 0; i < MANY; i++) {
    assert_int_equal(dt_pool_release(p, cs[i], true), DT_OK);
  }
  dt_pool_stats_t s = stats(p);
  assert_int_equal(s.idle, MANY);
  assert_int_equal(s.dials, MANY);
  assert_int_equal(count_fds(), fds0 + MANY);

  /* A hit among 10,000 idle costs what it costs among one. */
  t0 = dt__now_us();
  for (int i = 0; i < 1000; i++) {
    dt_conn_t *c = NULL;
    assert_int_equal(dt_pool_acquire(p, "127.0.0.1", port, 1000, &c), DT_OK);
    assert_int_equal(dt_pool_release(p, c, true), DT_OK);
  }
  uint64_t hit_us = dt__now_us() - t0;
  print_message("%d dials in %llu ms; 1000 acquire+release hits among them "
                "in %llu us\n",
                MANY, (unsigned long long)dial_ms, (unsigned long long)hit_us);
  assert_int_equal(stats(p).reuses, 1000);
  assert_int_equal(stats(p).idle, MANY);

  /* The server goes first, so the client's closes leave no TIME_WAIT. */
  close(ctl[1]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  dt_pool_free(p);
  free(cs);
  assert_int_equal(count_fds(), fds0 - 1); /* ctl[1] is closed too */
  setrlimit(RLIMIT_NOFILE, &saved);
}

/* ---- allocation failures and detached connections ---------------------- */

static void test_alloc_failures(void **state) {
  (void)state;
  char dest[160];
  int lfd = unix_listener("oom.sock", dest, sizeof(dest));
  int fds0 = count_fds();
  dt_pool_t *p = pool_default();
  bool done = false;
  for (uint64_t n = 1; n < 50 && !done; n++) {
    dt_conn_t *c = NULL;
    dt__alloc_fail_at(n);
    dt_status_t st = dt_pool_acquire(p, dest, 0, 5000, &c);
    bool injected = dt__alloc_count() >= n;
    dt__alloc_fail_at(0);
    if (st == DT_OK) {
      done = !injected;
      assert_int_equal(dt_pool_release(p, c, false), DT_OK);
    } else {
      assert_int_equal(st, DT_ENOMEM);
    }
    dt_pool_stats_t s = stats(p);
    assert_int_equal(s.active, 0);
    assert_int_equal(s.idle, 0);
    assert_int_equal(s.destinations, 0);
  }
  assert_true(done);
  dt_pool_free(p);
  int peer;
  struct pollfd pf = {lfd, POLLIN, 0};
  while (poll(&pf, 1, 0) == 1 && (peer = accept(lfd, NULL, NULL)) >= 0) {
    close(peer);
  }
  assert_int_equal(count_fds(), fds0);
  close(lfd);
}

static void test_connection_outlives_pool(void **state) {
  (void)state;
  char dest[160];
  int lfd = unix_listener("outlive.sock", dest, sizeof(dest));
  int fds0 = count_fds();
  dt_pool_t *p = pool_default();
  dt_conn_t *idle = NULL, *c = NULL;
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &idle), DT_OK);
  int peer1 = accept_within(lfd, 5000);
  assert_int_equal(dt_pool_acquire(p, dest, 0, 5000, &c), DT_OK);
  int peer2 = accept_within(lfd, 5000);
  assert_int_equal(dt_pool_release(p, idle, true), DT_OK);
  dt_pool_free(p);
  /* Still usable, still describable; dt_conn_free closes it. */
  assert_int_equal(dt_conn_write(c, "ping", 4, 1000), DT_OK);
  assert_int_equal(dt_flush(c, 1000), DT_OK);
  char buf[4];
  assert_int_equal(read(peer2, buf, sizeof(buf)), 4);
  assert_false(info(c).reused);
  dt_conn_free(c);
  assert_int_equal(read(peer2, buf, sizeof(buf)), 0);
  assert_int_equal(read(peer1, buf, sizeof(buf)), 0);
  close(peer1);
  close(peer2);
  assert_int_equal(count_fds(), fds0);
  close(lfd);
}

int main(int argc, char **argv) {
  self_path = argv[0];
  if (argc == 4 && strcmp(argv[1], "--accept-child") == 0) {
    child_accept(atoi(argv[2]), atoi(argv[3]));
    return 0;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_options_and_arguments, reset),
      cmocka_unit_test_setup(test_keys, reset),
      cmocka_unit_test_setup(test_reuse, reset),
      cmocka_unit_test_setup(test_server_closed_idle_is_never_handed_out,
                             reset),
      cmocka_unit_test_setup(test_health_check_reasons, reset),
      cmocka_unit_test_setup(test_idle_timeout, reset),
      cmocka_unit_test_setup(test_max_lifetime, reset),
      cmocka_unit_test_setup(test_capacity_lru, reset),
      cmocka_unit_test_setup(test_active_limit, reset),
      cmocka_unit_test_setup(test_release_discards, reset),
      cmocka_unit_test_setup(test_stale_status, reset),
      cmocka_unit_test_setup(test_dns_coherence, reset),
      cmocka_unit_test_setup(test_threads, reset),
      cmocka_unit_test_setup(test_ten_thousand_idle, reset),
      cmocka_unit_test_setup(test_alloc_failures, reset),
      cmocka_unit_test_setup(test_connection_outlives_pool, reset),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
