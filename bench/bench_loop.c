/* bench_loop: lookups per second from one thread with K lookups in flight,
 * dialtone's event-loop API against c-ares, against one local
 * authoritative server. Prints Markdown tables and, with -T, appends the
 * same figures to a bench/benchtsv.h file; bench/run-bench.sh (section
 * loop) sets up the server and the CPU pinning around it.
 *
 * The zone holds names n0.DOMAIN ... n(N-1).DOMAIN, name i with one A
 * record 198.18.(i / 256).(i % 256) and one AAAA record 2001:db8::<i in
 * hex> (the zone bench/run-bench.sh writes). One run of a contender looks
 * up all N names, A and AAAA each (AF_UNSPEC), keeping K in flight: each
 * completion starts the next name until N were started, and the run's
 * figure is the answers that were right per second, from the first start
 * to the last completion. Every answer is checked against the zone; a
 * lookup that fails or comes back wrong is counted, never timed as a
 * success.
 *
 * Contenders, each on one thread:
 *   dialtone-epoll  dt_resolve_start() on a dt_loop_t whose watch and timer
 *                   callbacks keep an epoll set and a deadline;
 *                   dt_loop_process_fd() per ready descriptor
 *   dialtone-run    the same lookups driven by dt_loop_run() (poll style)
 *   cares           ares_getaddrinfo() with c-ares's socket options left
 *                   at their defaults, driven through its socket-state
 *                   callback and epoll
 *   cares-rcvbuf    the same with ARES_OPT_SOCK_RCVBUF (-b, default 4 MiB;
 *                   the kernel caps it at net.core.rmem_max)
 *   raw-shared      a reference, not a contender: no library, 16 shared
 *                   UDP sockets and hand-built queries (see below), the
 *                   ceiling one thread reaches against this server
 * Both libraries get the same settings otherwise: the server, no search
 * list, a 2000 ms timeout, one try, and no hosts file (dialtone's
 * hosts = "", c-ares's lookups = "b"). Neither may answer from a cache:
 * names are distinct within a run, and every run gets a fresh resolver
 * (hence an empty cache) or channel, made before the clock starts; the
 * dialtone runs check that the cache served nothing (c-ares 1.18 has no
 * cache). DT_QUERY_NOCACHE is not used, so dialtone pays its cache fill.
 *
 * Runs are interleaved: for each repetition, for each K, every contender
 * runs once, starting with a different one each time, so drift on a
 * shared machine hits all of them alike. A figure is the median over the
 * repetitions. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "benchtsv.h"
#include "benchutil.h"
#include "dialtone.h"

#ifdef DT_BENCH_CARES
#include <ares.h>
#endif

#define MAX_NAMES 60000
#define MAX_KS 16
#define MAX_RUNS 101
#define LOOKUP_TIMEOUT_MS 2000
#define DEFAULT_RCVBUF (4 * 1024 * 1024)

typedef enum {
  C_DT_EPOLL,
  C_DT_RUN,
  C_CARES,
  C_CARES_RCVBUF,
  C_RAW,
  NCONTENDERS
} contender_t;

static const char *const contender_key[NCONTENDERS] = {
    "dialtone-epoll", "dialtone-run", "cares", "cares-rcvbuf", "raw-shared"};
static const char *const contender_label[NCONTENDERS] = {
    "dialtone `dt_resolve_start`, epoll via watch/timer callbacks",
    "dialtone `dt_resolve_start`, `dt_loop_run` (poll)",
    "c-ares `ares_getaddrinfo`, default socket options, epoll",
    "c-ares `ares_getaddrinfo`, ARES_OPT_SOCK_RCVBUF, epoll",
    "reference, no library: 16 shared UDP sockets, hand-built queries, epoll",
};

typedef struct {
  const char *server; /* "ADDR:PORT" */
  const char *domain;
  size_t nnames;
  size_t ks[MAX_KS];
  size_t nks;
  size_t runs;
  bool want[NCONTENDERS];
  const char *title;
  const char *placement; /* TSV figure suffix, e.g. "pinned" */
  const char *tsv;       /* append figures here, or NULL */
  const char *plot;      /* -p: the #plot of lookups/s by K, or NULL */
  bool goal;             /* -G: the goal over the whole file */
  bool cares_missing;    /* c-ares wanted but not built in */
  int rcvbuf;
  int wait_ms;
  int run_limit_s;
} config_t;

static void die(const char *fmt, const char *arg) {
  fprintf(stderr, "bench_loop: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n");
  exit(2);
}

/* ---- checking answers against the zone ---------------------------------- */

static void name_of(const config_t *cf, size_t i, char *buf, size_t cap) {
  snprintf(buf, cap, "n%zu.%s", i, cf->domain);
}

typedef struct {
  int v4, v6, wrong;
} tally_t;

/* Socket addresses are read with memcpy, never through a cast struct
 * pointer: the aliasing rules allow nothing else. */
static void tally_add(tally_t *t, size_t i, const void *sa) {
  const char *p = sa;
  sa_family_t family;
  memcpy(&family, p + offsetof(struct sockaddr, sa_family), sizeof(family));
  if (family == AF_INET) {
    struct in_addr a;
    memcpy(&a, p + offsetof(struct sockaddr_in, sin_addr), sizeof(a));
    uint32_t want = (198u << 24) | (18u << 16) | (uint32_t)i;
    if (ntohl(a.s_addr) == want) {
      t->v4++;
    } else {
      t->wrong++;
    }
  } else if (family == AF_INET6) {
    struct in6_addr a, want;
    memcpy(&a, p + offsetof(struct sockaddr_in6, sin6_addr), sizeof(a));
    memset(&want, 0, sizeof(want));
    want.s6_addr[0] = 0x20;
    want.s6_addr[1] = 0x01;
    want.s6_addr[2] = 0x0d;
    want.s6_addr[3] = 0xb8;
    want.s6_addr[14] = (uint8_t)(i >> 8);
    want.s6_addr[15] = (uint8_t)i;
    if (memcmp(&a, &want, sizeof(a)) == 0) {
      t->v6++;
    } else {
      t->wrong++;
    }
  } else {
    t->wrong++;
  }
}

static bool tally_ok(const tally_t *t) {
  return t->v4 == 1 && t->v6 == 1 && t->wrong == 0;
}

/* ---- one run ------------------------------------------------------------- */

typedef struct {
  size_t ok;
  size_t timeouts;
  size_t errors; /* failures other than timeouts */
  size_t wrong;  /* success, but not exactly the zone's two addresses */
  size_t max_inflight;
  int64_t ns;
  int64_t cpu_ns;    /* this process's user + system time */
  bool cache_served; /* dialtone only: the cache answered something */
} outcome_t;

typedef struct run run_t;

/* One lookup's context, handed to the library as its callback argument. */
typedef struct {
  run_t *run;
  size_t i;
} slot_t;

struct run {
  const config_t *cf;
  contender_t who;
  size_t k;
  slot_t *slots; /* one per name */
  size_t next;   /* next name to start */
  size_t done;
  size_t inflight;
  bool refilling;
  bool stopping; /* tearing down: start nothing more */
  outcome_t out;
  int epfd;
  /* Descriptors registered in epfd, with their events (0: not there). */
  uint32_t *reg;
  size_t nreg;
  /* dialtone-epoll: when the loop wants processing, or -1. */
  int64_t deadline_ns;
  dt_loop_t *loop;
  dt_resolver_t *resolver;
#ifdef DT_BENCH_CARES
  ares_channel ch;
#endif
  /* raw-shared */
  int raw_fd[16];
  uint32_t *raw_owner; /* by query ID: 1 + (name << 1 | is_aaaa), or 0 */
  uint8_t *raw_state;  /* by name: bits 1 A right, 2 AAAA right, 4 wrong,
                          8 A in, 16 AAAA in */
  uint16_t raw_seq;
};

static bool start_one(run_t *r, size_t i);

/* Keeps k lookups in flight. A library may complete a lookup from inside
 * the call that starts another (c-ares does on an immediate error): the
 * flag makes such a completion leave the refilling to the loop already
 * running here instead of recursing. */
static void refill(run_t *r) {
  if (r->refilling || r->stopping) {
    return;
  }
  r->refilling = true;
  while (r->inflight < r->k && r->next < r->cf->nnames) {
    size_t i = r->next++;
    r->inflight++;
    if (r->inflight > r->out.max_inflight) {
      r->out.max_inflight = r->inflight;
    }
    if (!start_one(r, i)) {
      r->inflight--;
      r->done++;
      r->out.errors++;
    }
  }
  r->refilling = false;
}

static void finish(run_t *r, bool ok, bool timeout, bool wrong) {
  r->inflight--;
  r->done++;
  if (ok) {
    r->out.ok++;
  } else if (wrong) {
    r->out.wrong++;
  } else if (timeout) {
    r->out.timeouts++;
  } else {
    r->out.errors++;
  }
  refill(r);
}

/* The epoll set, kept in step with what a library asks for. A library
 * may tell of a descriptor after it closed it (which removed it from the
 * set) and may get the same number back for a new socket, so MOD falls
 * back to ADD and DEL ignores that the descriptor is gone. */
static void ep_watch(run_t *r, int fd, uint32_t events) {
  if (fd < 0) {
    return;
  }
  if ((size_t)fd >= r->nreg) {
    size_t n = r->nreg ? r->nreg : 1024;
    while (n <= (size_t)fd) {
      n *= 2;
    }
    uint32_t *p = realloc(r->reg, n * sizeof(*p));
    if (p == NULL) {
      die("%s", "out of memory");
    }
    memset(p + r->nreg, 0, (n - r->nreg) * sizeof(*p));
    r->reg = p;
    r->nreg = n;
  }
  struct epoll_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.events = events;
  ev.data.fd = fd;
  if (events == 0) {
    if (r->reg[fd] != 0) {
      (void)epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);
      r->reg[fd] = 0;
    }
    return;
  }
  if (r->reg[fd] == events) {
    return;
  }
  int op = r->reg[fd] != 0 ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  int rc = epoll_ctl(r->epfd, op, fd, &ev);
  if (rc != 0 && op == EPOLL_CTL_MOD && errno == ENOENT) {
    rc = epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev);
  } else if (rc != 0 && op == EPOLL_CTL_ADD && errno == EEXIST) {
    rc = epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, &ev);
  }
  if (rc != 0) {
    die("epoll_ctl: %s", strerror(errno));
  }
  r->reg[fd] = events;
}

/* Milliseconds from now until deadline_ns, rounded up; -1 for none. */
static int ms_until(int64_t deadline_ns) {
  if (deadline_ns < 0) {
    return -1;
  }
  int64_t left = deadline_ns - bench_now_ns();
  if (left <= 0) {
    return 0;
  }
  int64_t ms = (left + 999999) / 1000000;
  return ms > 60000 ? 60000 : (int)ms;
}

/* CPU time this process used so far, user and system. On a shared
 * machine the wall-clock rate moves with other work; the client's own CPU
 * time per lookup moves much less, and is the library's cost. */
static int64_t cpu_now_ns(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
         ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

/* ---- dialtone ------------------------------------------------------------ */

static dt_resolver_t *dt_open(const config_t *cf) {
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  const char *servers[1] = {cf->server};
  o.servers = servers;
  o.nservers = 1;
  o.hosts = "";
  o.timeout_ms = LOOKUP_TIMEOUT_MS;
  o.attempts = 1;
  dt_resolver_t *r = NULL;
  dt_status_t st = dt_resolver_new(&o, &r);
  if (st != DT_OK) {
    die("dt_resolver_new: %s", dt_strerror(st));
  }
  return r;
}

static void dt_done(void *user, dt_status_t status, const dt_addr_t *addrs,
                    size_t n) {
  slot_t *s = user;
  if (status != DT_OK) {
    finish(s->run, false, status == DT_ETIMEDOUT, false);
    return;
  }
  tally_t t = {0, 0, 0};
  for (size_t j = 0; j < n; j++) {
    tally_add(&t, s->i, &addrs[j].addr);
  }
  bool ok = tally_ok(&t);
  finish(s->run, ok, false, !ok);
}

static void dt_watch(void *ctx, int fd, short events) {
  uint32_t ev = 0;
  if (events & POLLIN) {
    ev |= EPOLLIN;
  }
  if (events & POLLOUT) {
    ev |= EPOLLOUT;
  }
  ep_watch(ctx, fd, ev);
}

static void dt_timer(void *ctx, int timeout_ms) {
  run_t *r = ctx;
  r->deadline_ns =
      timeout_ms < 0 ? -1 : bench_now_ns() + (int64_t)timeout_ms * 1000000;
}

static void dt_setup(run_t *r) {
  dt_loop_opts_t o;
  dt_loop_opts_init(&o);
  if (r->who == C_DT_EPOLL) {
    o.watch = dt_watch;
    o.watch_ctx = r;
    o.timer = dt_timer;
    o.timer_ctx = r;
  }
  dt_status_t st = dt_loop_new(&o, &r->loop);
  if (st != DT_OK) {
    die("dt_loop_new: %s", dt_strerror(st));
  }
  r->resolver = dt_open(r->cf);
}

static bool dt_start(run_t *r, size_t i) {
  char name[300];
  name_of(r->cf, i, name, sizeof(name));
  dt_status_t st = dt_resolve_start(r->loop, r->resolver, name, AF_UNSPEC, 0,
                                    -1, dt_done, &r->slots[i], NULL);
  return st == DT_OK;
}

/* Runs until every lookup is done or the run's time is up. */
static void dt_drive(run_t *r, int64_t limit_ns) {
  if (r->who == C_DT_RUN) {
    int ms = (int)((limit_ns - bench_now_ns()) / 1000000);
    dt_status_t st = dt_loop_run(r->loop, ms > 0 ? ms : 0);
    if (st != DT_OK && st != DT_ETIMEDOUT) {
      die("dt_loop_run: %s", dt_strerror(st));
    }
    return;
  }
  struct epoll_event evs[256];
  while (r->done < r->cf->nnames && bench_now_ns() < limit_ns) {
    int n = epoll_wait(r->epfd, evs, 256, ms_until(r->deadline_ns));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      die("epoll_wait: %s", strerror(errno));
    }
    for (int j = 0; j < n; j++) {
      short re = 0;
      uint32_t e = evs[j].events;
      re |= (e & EPOLLIN) ? POLLIN : 0;
      re |= (e & EPOLLOUT) ? POLLOUT : 0;
      re |= (e & EPOLLERR) ? POLLERR : 0;
      re |= (e & EPOLLHUP) ? POLLHUP : 0;
      (void)dt_loop_process_fd(r->loop, evs[j].data.fd, re);
    }
    /* The timer is one-shot: once it fired, the loop sets the next. */
    if (r->deadline_ns >= 0 && bench_now_ns() >= r->deadline_ns) {
      r->deadline_ns = -1;
      (void)dt_loop_process(r->loop, NULL, 0);
    }
  }
}

static void dt_teardown(run_t *r) {
  dt_cache_stats_t cs;
  dt_cache_get_stats(r->resolver, &cs);
  r->out.cache_served = cs.hits != 0;
  r->stopping = true;
  /* Whatever is still in flight (a run cut short) is cancelled here, its
   * callback counting it as failed. */
  dt_loop_free(r->loop);
  dt_resolver_free(r->resolver);
}

/* ---- c-ares -------------------------------------------------------------- */

#ifdef DT_BENCH_CARES
static void cares_sock(void *data, ares_socket_t fd, int readable,
                       int writable) {
  ep_watch(data, fd, (readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0));
}

static void cares_setup(run_t *r) {
  struct ares_options o;
  memset(&o, 0, sizeof(o));
  int mask = 0;
  o.flags = 0; /* ARES_FLAG_NOCHECKRESP stays off */
  mask |= ARES_OPT_FLAGS;
  o.lookups = (char *)"b"; /* DNS only, as dialtone with hosts = "" */
  mask |= ARES_OPT_LOOKUPS;
  o.ndots = 1;
  mask |= ARES_OPT_NDOTS;
  o.domains = NULL;
  o.ndomains = 0;
  mask |= ARES_OPT_DOMAINS;
  o.timeout = LOOKUP_TIMEOUT_MS;
  mask |= ARES_OPT_TIMEOUTMS;
  o.tries = 1;
  mask |= ARES_OPT_TRIES;
  o.sock_state_cb = cares_sock;
  o.sock_state_cb_data = r;
  mask |= ARES_OPT_SOCK_STATE_CB;
  if (r->who == C_CARES_RCVBUF) {
    o.socket_receive_buffer_size = r->cf->rcvbuf;
    mask |= ARES_OPT_SOCK_RCVBUF;
  }
  int rc = ares_init_options(&r->ch, &o, mask);
  if (rc != ARES_SUCCESS) {
    die("ares_init_options: %s", ares_strerror(rc));
  }
  rc = ares_set_servers_ports_csv(r->ch, r->cf->server);
  if (rc != ARES_SUCCESS) {
    die("ares_set_servers_ports_csv: %s", ares_strerror(rc));
  }
}

static void cares_done(void *arg, int status, int timeouts,
                       struct ares_addrinfo *res) {
  (void)timeouts;
  slot_t *s = arg;
  if (status != ARES_SUCCESS) {
    ares_freeaddrinfo(res);
    finish(s->run, false, status == ARES_ETIMEOUT, false);
    return;
  }
  tally_t t = {0, 0, 0};
  for (struct ares_addrinfo_node *p = res ? res->nodes : NULL; p != NULL;
       p = p->ai_next) {
    tally_add(&t, s->i, p->ai_addr);
  }
  ares_freeaddrinfo(res);
  bool ok = tally_ok(&t);
  finish(s->run, ok, false, !ok);
}

static bool cares_start(run_t *r, size_t i) {
  char name[300];
  name_of(r->cf, i, name, sizeof(name));
  struct ares_addrinfo_hints hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  ares_getaddrinfo(r->ch, name, NULL, &hints, cares_done, &r->slots[i]);
  return true; /* failures come back through the callback */
}

/* The loop a user of c-ares on epoll writes: the socket-state callback
 * keeps the set, ares_timeout() bounds the wait, ares_process_fd() takes
 * each ready descriptor, or none when the wait timed out. */
static void cares_drive(run_t *r, int64_t limit_ns) {
  struct epoll_event evs[256];
  while (r->done < r->cf->nnames && bench_now_ns() < limit_ns) {
    struct timeval maxtv = {1, 0};
    struct timeval tv;
    struct timeval *tvp = ares_timeout(r->ch, &maxtv, &tv);
    int ms = (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000);
    int n = epoll_wait(r->epfd, evs, 256, ms);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      die("epoll_wait: %s", strerror(errno));
    }
    if (n == 0) {
      ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      continue;
    }
    for (int j = 0; j < n; j++) {
      uint32_t e = evs[j].events;
      int fd = evs[j].data.fd;
      ares_process_fd(
          r->ch, (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? fd : ARES_SOCKET_BAD,
          (e & EPOLLOUT) ? fd : ARES_SOCKET_BAD);
    }
  }
}

static void cares_teardown(run_t *r) {
  r->stopping = true;
  ares_destroy(r->ch); /* cancels what is left, callbacks count it */
}
#endif

/* ---- reference: raw sockets ---------------------------------------------
 *
 * Not a contender: what one thread gets from the server with no library at
 * all, as a ceiling to judge the others by. Sixteen connected UDP sockets
 * made before the clock starts, each with a 4 MiB receive buffer, carry
 * every lookup's two questions (built by hand, no EDNS); replies are
 * matched by ID alone and their first answer checked against the zone.
 * No retries: a lost reply ends the run after 2 s of silence. Nothing a
 * resolver must do (random ports per query, question checks, CNAMEs,
 * caching, sorting) is done. */

#define RAW_SOCKETS 16

static void raw_setup(run_t *r) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  socklen_t len;
  char host[INET6_ADDRSTRLEN + 2];
  const char *s = r->cf->server;
  const char *colon = s[0] == '[' ? strstr(s, "]:") : strrchr(s, ':');
  size_t hl = colon != NULL ? (size_t)(colon - s) : 0;
  if (colon == NULL || hl >= sizeof(host)) {
    die("raw-shared: bad server %s", s);
  }
  memcpy(host, s[0] == '[' ? s + 1 : s, s[0] == '[' ? hl - 1 : hl);
  host[s[0] == '[' ? hl - 1 : hl] = '\0';
  int port = atoi(colon + (s[0] == '[' ? 2 : 1));
  struct sockaddr_in v4;
  struct sockaddr_in6 v6;
  memset(&v4, 0, sizeof(v4));
  memset(&v6, 0, sizeof(v6));
  if (inet_pton(AF_INET, host, &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons((uint16_t)port);
    memcpy(&ss, &v4, sizeof(v4));
    len = sizeof(v4);
  } else if (inet_pton(AF_INET6, host, &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons((uint16_t)port);
    memcpy(&ss, &v6, sizeof(v6));
    len = sizeof(v6);
  } else {
    die("raw-shared: bad server %s", s);
  }
  for (int j = 0; j < RAW_SOCKETS; j++) {
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int buf = 4 * 1024 * 1024;
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf)) != 0 ||
        connect(fd, (const struct sockaddr *)&ss, len) != 0) {
      die("raw-shared: socket: %s", strerror(errno));
    }
    r->raw_fd[j] = fd;
    ep_watch(r, fd, EPOLLIN);
  }
  r->raw_owner = calloc(65536, sizeof(*r->raw_owner));
  r->raw_state = calloc(r->cf->nnames, 1);
  if (r->raw_owner == NULL || r->raw_state == NULL) {
    die("%s", "out of memory");
  }
}

static bool raw_start(run_t *r, size_t i) {
  char name[300];
  name_of(r->cf, i, name, sizeof(name));
  uint8_t q[320];
  for (int aaaa = 0; aaaa < 2; aaaa++) {
    uint16_t id = r->raw_seq++;
    size_t n = 0;
    memset(q, 0, 12);
    q[0] = (uint8_t)(id >> 8);
    q[1] = (uint8_t)id;
    q[5] = 1; /* one question */
    n = 12;
    for (const char *l = name; *l != '\0';) {
      const char *dot = strchr(l, '.');
      size_t ll = dot != NULL ? (size_t)(dot - l) : strlen(l);
      if (ll == 0 || ll > 63 || n + ll + 6 > sizeof(q)) {
        return false;
      }
      q[n++] = (uint8_t)ll;
      memcpy(q + n, l, ll);
      n += ll;
      l += ll + (dot != NULL);
    }
    q[n++] = 0;
    q[n++] = 0;
    q[n++] = aaaa ? 28 : 1;
    q[n++] = 0;
    q[n++] = 1; /* IN */
    r->raw_owner[id] = 1 + (uint32_t)(i << 1 | (size_t)aaaa);
    if (send(r->raw_fd[i % RAW_SOCKETS], q, n, 0) != (ssize_t)n) {
      return false;
    }
  }
  return true;
}

/* Skips a name at p in m[0..len); returns the offset after it, or 0. */
static size_t raw_skip_name(const uint8_t *m, size_t len, size_t p) {
  while (p < len) {
    if (m[p] == 0) {
      return p + 1;
    }
    if ((m[p] & 0xc0) == 0xc0) {
      return p + 2 <= len ? p + 2 : 0;
    }
    p += 1 + (size_t)m[p];
  }
  return 0;
}

static void raw_reply(run_t *r, const uint8_t *m, size_t len) {
  if (len < 12) {
    return;
  }
  uint16_t id = (uint16_t)(m[0] << 8 | m[1]);
  uint32_t v = r->raw_owner[id];
  if (v == 0) {
    return;
  }
  r->raw_owner[id] = 0;
  size_t i = (v - 1) >> 1;
  bool aaaa = (v - 1) & 1;
  uint8_t *st = &r->raw_state[i];
  *st |= aaaa ? 16 : 8;
  bool right = false;
  size_t p = raw_skip_name(m, len, 12);
  if ((m[3] & 0x0f) == 0 && m[6] == 0 && m[7] == 1 && p != 0 && p + 4 <= len) {
    p = raw_skip_name(m, len, p + 4);
    if (p != 0 && p + 10 <= len) {
      size_t rdlen = (size_t)(m[p + 8] << 8 | m[p + 9]);
      const uint8_t *rd = m + p + 10;
      if (p + 10 + rdlen <= len && !aaaa && rdlen == 4) {
        right = rd[0] == 198 && rd[1] == 18 && rd[2] == (uint8_t)(i >> 8) &&
                rd[3] == (uint8_t)i;
      } else if (p + 10 + rdlen <= len && aaaa && rdlen == 16) {
        static const uint8_t pre[14] = {0x20, 0x01, 0x0d, 0xb8};
        right = memcmp(rd, pre, 14) == 0 && rd[14] == (uint8_t)(i >> 8) &&
                rd[15] == (uint8_t)i;
      }
    }
  }
  *st |= right ? (aaaa ? 2 : 1) : 4;
  if ((*st & 24) == 24) {
    bool ok = (*st & 7) == 3;
    finish(r, ok, false, !ok);
  }
}

static void raw_drive(run_t *r, int64_t limit_ns) {
  struct epoll_event evs[RAW_SOCKETS];
  uint8_t m[1500];
  while (r->done < r->cf->nnames && bench_now_ns() < limit_ns) {
    int n = epoll_wait(r->epfd, evs, RAW_SOCKETS, 2000);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      die("epoll_wait: %s", strerror(errno));
    }
    if (n == 0) {
      fprintf(stderr, "bench_loop: raw-shared: replies lost, run ends\n");
      return;
    }
    for (int j = 0; j < n; j++) {
      ssize_t got;
      while ((got = recv(evs[j].data.fd, m, sizeof(m), 0)) > 0) {
        raw_reply(r, m, (size_t)got);
      }
    }
  }
}

static void raw_teardown(run_t *r) {
  r->stopping = true;
  r->out.timeouts += r->inflight; /* replies that never came */
  for (int j = 0; j < RAW_SOCKETS; j++) {
    ep_watch(r, r->raw_fd[j], 0);
    close(r->raw_fd[j]);
  }
  free(r->raw_owner);
  free(r->raw_state);
}

static bool start_one(run_t *r, size_t i) {
  switch (r->who) {
  case C_DT_EPOLL:
  case C_DT_RUN:
    return dt_start(r, i);
#ifdef DT_BENCH_CARES
  case C_CARES:
  case C_CARES_RCVBUF:
    return cares_start(r, i);
#endif
  case C_RAW:
    return raw_start(r, i);
  default:
    return false;
  }
}

static outcome_t run_once(const config_t *cf, contender_t who, size_t k,
                          size_t nnames) {
  config_t c = *cf;
  c.nnames = nnames;
  run_t r;
  memset(&r, 0, sizeof(r));
  r.cf = &c;
  r.who = who;
  r.k = k;
  r.deadline_ns = -1;
  r.slots = calloc(nnames, sizeof(*r.slots));
  if (r.slots == NULL) {
    die("%s", "out of memory");
  }
  for (size_t i = 0; i < nnames; i++) {
    r.slots[i].run = &r;
    r.slots[i].i = i;
  }
  r.epfd = epoll_create1(EPOLL_CLOEXEC);
  if (r.epfd < 0) {
    die("epoll_create1: %s", strerror(errno));
  }
  bool is_dt = who == C_DT_EPOLL || who == C_DT_RUN;
  if (is_dt) {
    dt_setup(&r);
  } else if (who == C_RAW) {
    raw_setup(&r);
  } else {
#ifdef DT_BENCH_CARES
    cares_setup(&r);
#endif
  }

  int64_t cpu0 = cpu_now_ns();
  int64_t t0 = bench_now_ns();
  int64_t limit = t0 + (int64_t)cf->run_limit_s * 1000000000;
  refill(&r);
  if (is_dt) {
    dt_drive(&r, limit);
  } else if (who == C_RAW) {
    raw_drive(&r, limit);
  } else {
#ifdef DT_BENCH_CARES
    cares_drive(&r, limit);
#endif
  }
  r.out.ns = bench_now_ns() - t0;
  r.out.cpu_ns = cpu_now_ns() - cpu0;
  if (r.done < nnames) {
    fprintf(stderr,
            "bench_loop: %s K=%zu: run cut short after %d s, %zu of %zu "
            "lookups done\n",
            contender_key[who], k, cf->run_limit_s, r.done, nnames);
  }

  if (is_dt) {
    dt_teardown(&r);
  } else if (who == C_RAW) {
    raw_teardown(&r);
  } else {
#ifdef DT_BENCH_CARES
    cares_teardown(&r);
#endif
  }
  /* Lookups never started count as failed too. */
  r.out.errors += nnames - r.next;
  close(r.epfd);
  free(r.reg);
  free(r.slots);
  return r.out;
}

/* ---- the measurements ---------------------------------------------------- */

typedef struct {
  double rate[MAX_RUNS]; /* right answers per second */
  double cpu[MAX_RUNS];  /* client CPU µs per lookup */
  size_t n;
  size_t ok, timeouts, errors, wrong, max_inflight;
  bool cache_served;
  double median, min, max;
  double cpu_median, cpu_min, cpu_max;
} cell_t;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a;
  double y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Sorts v and returns its median. */
static double median_of(double *v, size_t n) {
  qsort(v, n, sizeof(v[0]), cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

static void summarise(cell_t *c) {
  if (c->n == 0) {
    return;
  }
  double v[MAX_RUNS];
  memcpy(v, c->rate, c->n * sizeof(v[0]));
  c->median = median_of(v, c->n);
  c->min = v[0];
  c->max = v[c->n - 1];
  memcpy(v, c->cpu, c->n * sizeof(v[0]));
  c->cpu_median = median_of(v, c->n);
  c->cpu_min = v[0];
  c->cpu_max = v[c->n - 1];
}

/* A short run of each contender before anything is timed: first sockets,
 * page faults and the server's first answers are not part of a figure. */
static void warm_up(const config_t *cf, const contender_t *order, size_t nk) {
  size_t n = cf->nnames < 500 ? cf->nnames : 500;
  for (size_t j = 0; j < nk; j++) {
    (void)run_once(cf, order[j], 16, n);
  }
}

static void measure(const config_t *cf, cell_t cells[][MAX_KS],
                    const contender_t *order, size_t nk) {
  size_t turn = 0;
  for (size_t rep = 0; rep < cf->runs; rep++) {
    for (size_t ki = 0; ki < cf->nks; ki++) {
      for (size_t j = 0; j < nk; j++) {
        contender_t who = order[(turn + j) % nk];
        outcome_t o = run_once(cf, who, cf->ks[ki], cf->nnames);
        cell_t *c = &cells[who][ki];
        c->cpu[c->n] = (double)o.cpu_ns / 1000.0 / (double)cf->nnames;
        c->rate[c->n++] = (double)o.ok * 1e9 / (double)o.ns;
        c->ok += o.ok;
        c->timeouts += o.timeouts;
        c->errors += o.errors;
        c->wrong += o.wrong;
        if (o.max_inflight > c->max_inflight) {
          c->max_inflight = o.max_inflight;
        }
        c->cache_served |= o.cache_served;
      }
      turn++;
    }
  }
}

/* kind of each contender's rows in loop.tsv: ratios are taken to
 * dialtone-epoll, the style most event-loop users would write. */
static const char *const contender_kind[NCONTENDERS] = {"base", "dialtone",
                                                        "alt", "alt", "ref"};

/* The best lookups/s figure of the loop section's rows already in path
 * (the other configuration's run) whose contender is one of keys[0..nkeys)
 * and, when k is not 0, whose param is k: *best and *where are raised
 * when one beats them. A missing file or row changes nothing. */
static void best_in_file(const char *path, const char *const *keys,
                         size_t nkeys, size_t k, double *best, char *where,
                         size_t cap) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    return;
  }
  char line[2048];
  while (fgets(line, sizeof(line), f) != NULL) {
    char *field[15];
    size_t nf = 0;
    for (char *p = line, *tab; nf < 15; p = tab + 1) {
      field[nf++] = p;
      tab = strpbrk(p, "\t\n");
      if (tab == NULL) {
        break;
      }
      *tab = '\0';
    }
    /* section figure title param contender kind unit stat value ... */
    if (nf < 9 || strcmp(field[0], "loop") != 0 ||
        strncmp(field[1], "rate_", 5) != 0 ||
        strcmp(field[6], "lookups/s") != 0 || strcmp(field[8], "-") == 0) {
      continue;
    }
    if (k != 0 && strtoul(field[3], NULL, 10) != k) {
      continue;
    }
    for (size_t i = 0; i < nkeys; i++) {
      double v = strtod(field[8], NULL);
      if (strcmp(field[4], keys[i]) == 0 && v > *best) {
        *best = v;
        snprintf(where, cap, "%s %s K=%s", field[4], field[1] + 5, field[3]);
      }
    }
  }
  fclose(f);
}

/* Writes this run's figures to cf->tsv through benchtsv: lookups/s and
 * client CPU per lookup by K, the goal judged within this configuration
 * (detail rows), and with -G the goal over every configuration in
 * the file (the summary row). */
static void report_tsv(const config_t *cf, cell_t cells[][MAX_KS],
                       const contender_t *order, size_t nk) {
  size_t kmax = 0;
  for (size_t ki = 1; ki < cf->nks; ki++) {
    if (cf->ks[ki] > cf->ks[kmax]) {
      kmax = ki;
    }
  }
  /* The figures of the other configuration, read before this run's are
   * appended to the same file. */
  static const char *const cares_keys[] = {"cares", "cares-rcvbuf"};
  static const char *const dt_keys[] = {"dialtone-epoll", "dialtone-run"};
  double all_cares = 0, all_dt = 0;
  char all_cares_at[128] = "", all_dt_at[128] = "";
  if (cf->goal) {
    best_in_file(cf->tsv, cares_keys, 2, 0, &all_cares, all_cares_at,
                 sizeof(all_cares_at));
    best_in_file(cf->tsv, dt_keys, 2, cf->ks[kmax], &all_dt, all_dt_at,
                 sizeof(all_dt_at));
  }

  bench_tsv_t *t = bench_tsv_open(cf->tsv, "loop");
  bench_tsv_meta(t, "lookups per run", "%zu (A+AAAA, distinct names)",
                 cf->nnames);
  char rate_fig[64], cpu_fig[64], title[256], stat[64];
  snprintf(rate_fig, sizeof(rate_fig), "rate_%s", cf->placement);
  snprintf(cpu_fig, sizeof(cpu_fig), "cpu_%s", cf->placement);
  snprintf(stat, sizeof(stat), "median of %zu runs", cf->runs);

  snprintf(title, sizeof(title), "Lookups/s by K in flight, one thread, %s",
           cf->title);
  bench_tsv_figure(t, rate_fig, title, "lookups/s", stat, "min-max");
  for (size_t j = 0; j < nk; j++) {
    contender_t who = order[j];
    for (size_t ki = 0; ki < cf->nks; ki++) {
      const cell_t *c = &cells[who][ki];
      char note[128];
      snprintf(note, sizeof(note),
               "%zu timeouts, %zu other errors, %zu wrong answers%s",
               c->timeouts, c->errors, c->wrong,
               c->cache_served ? "; WARNING: the cache answered" : "");
      bench_tsv_row(t, (long)cf->ks[ki], contender_key[who],
                    contender_kind[who], c->median, c->min, c->max, (long)c->n,
                    note);
    }
  }
  if (cf->cares_missing) {
    for (int who = C_CARES; who <= C_CARES_RCVBUF; who++) {
      for (size_t ki = 0; ki < cf->nks; ki++) {
        bench_tsv_skip(t, (long)cf->ks[ki], contender_key[who],
                       contender_kind[who],
                       "SKIP c-ares: libc-ares-dev not installed");
      }
    }
  }

  /* Within this configuration: each dialtone style at the largest K
   * against c-ares's best at any K, as the Markdown says. */
  double best = 0;
  char best_at[128] = "";
  for (int who = C_CARES; who <= C_CARES_RCVBUF; who++) {
    for (size_t ki = 0; cf->want[who] && ki < cf->nks; ki++) {
      if (cells[who][ki].median > best) {
        best = cells[who][ki].median;
        snprintf(best_at, sizeof(best_at), "%s %s K=%zu", contender_key[who],
                 cf->placement, cf->ks[ki]);
      }
    }
  }
  for (int who = C_DT_EPOLL; who <= C_DT_RUN; who++) {
    if (!cf->want[who]) {
      continue;
    }
    double d = cells[who][kmax].median;
    if (d > all_dt) {
      all_dt = d;
      snprintf(all_dt_at, sizeof(all_dt_at), "%s %s K=%zu", contender_key[who],
               cf->placement, cf->ks[kmax]);
    }
    char goal[256];
    snprintf(goal, sizeof(goal),
             "%s at %zu in flight >= 1.5x c-ares's best figure in this "
             "configuration (%s)",
             contender_key[who], cf->ks[kmax], best > 0 ? best_at : "none");
    bench_tsv_goal(t, (long)cf->ks[kmax], false, goal, "× c-ares",
                   best > 0 ? d / best : NAN, best > 0 && d >= 1.5 * best);
  }
  if (best > all_cares) {
    all_cares = best;
    snprintf(all_cares_at, sizeof(all_cares_at), "%s", best_at);
  }
  if (cf->goal) {
    /* The goal, in the summary: on the headline figure (pinned),
     * though it is judged over every configuration in the file. */
    bench_tsv_figure(t, "rate_pinned",
                     "Lookups/s by K in flight, one thread, Pinned: client "
                     "and server on CPU 0 (headline)",
                     "lookups/s", stat, "min-max");
    bench_tsv_meta(t, "goal compares",
                   "dialtone's best at K=%zu, %s (%.0f lookups/s), with "
                   "c-ares's best, %s (%.0f lookups/s)",
                   cf->ks[kmax], all_dt > 0 ? all_dt_at : "none", all_dt,
                   all_cares > 0 ? all_cares_at : "none", all_cares);
    bool measured = all_dt > 0 && all_cares > 0;
    bench_tsv_goal(t, (long)cf->ks[kmax], true,
                   "dialtone at 256 in flight >= 1.5x c-ares's best figure "
                   "(any K, either configuration)",
                   "× c-ares", measured ? all_dt / all_cares : NAN,
                   measured && all_dt >= 1.5 * all_cares);
  }

  snprintf(title, sizeof(title), "Client CPU per lookup by K in flight, %s",
           cf->title);
  bench_tsv_figure(t, cpu_fig, title, "µs/lookup", stat, "min-max");
  for (size_t j = 0; j < nk; j++) {
    contender_t who = order[j];
    for (size_t ki = 0; ki < cf->nks; ki++) {
      const cell_t *c = &cells[who][ki];
      bench_tsv_row(t, (long)cf->ks[ki], contender_key[who],
                    contender_kind[who], c->cpu_median, c->cpu_min, c->cpu_max,
                    (long)c->n, NULL);
    }
  }
  if (cf->plot != NULL) {
    bench_tsv_plot(t, cf->plot, "lines", rate_fig,
                   "Lookups/s by K in flight, one thread, client and server "
                   "on CPU 0 (min-max bars)");
  }
  bench_tsv_close(t);
}

static void report(const config_t *cf, cell_t cells[][MAX_KS],
                   const contender_t *order, size_t nk) {
  printf("### %s\n\n", cf->title);
  printf("%zu lookups (A+AAAA, distinct names) per run, %zu runs per "
         "contender and K, interleaved; figure = median of the runs' right "
         "answers per second (min–max in the second table).\n\n",
         cf->nnames, cf->runs);

  printf("| contender |");
  for (size_t ki = 0; ki < cf->nks; ki++) {
    printf(" K=%zu |", cf->ks[ki]);
  }
  printf("\n|---|");
  for (size_t ki = 0; ki < cf->nks; ki++) {
    printf("--:|");
  }
  printf("\n");
  for (size_t j = 0; j < nk; j++) {
    printf("| %s |", contender_label[order[j]]);
    for (size_t ki = 0; ki < cf->nks; ki++) {
      printf(" %.0f |", cells[order[j]][ki].median);
    }
    printf("\n");
  }
  printf("\n");

  const cell_t *ref = cf->want[C_DT_EPOLL] ? cells[C_DT_EPOLL] : NULL;
  printf("| contender | K | median lookups/s | min | max | client CPU µs per "
         "lookup, median | runs | right answers | timeouts | other errors | "
         "wrong or incomplete answers | most in flight | this ÷ "
         "dialtone-epoll, lookups/s |\n");
  printf("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
  for (size_t j = 0; j < nk; j++) {
    contender_t who = order[j];
    for (size_t ki = 0; ki < cf->nks; ki++) {
      const cell_t *c = &cells[who][ki];
      printf("| %s | %zu | %.0f | %.0f | %.0f | %.1f | %zu | %zu | %zu | %zu | "
             "%zu | %zu |",
             contender_key[who], cf->ks[ki], c->median, c->min, c->max,
             c->cpu_median, c->n, c->ok, c->timeouts, c->errors, c->wrong,
             c->max_inflight);
      if (ref != NULL && ref[ki].median > 0) {
        printf(" %.2f |\n", c->median / ref[ki].median);
      } else {
        printf(" – |\n");
      }
    }
  }
  printf("\n");
  for (size_t j = 0; j < nk; j++) {
    for (size_t ki = 0; ki < cf->nks; ki++) {
      if (cells[order[j]][ki].cache_served) {
        printf("WARNING: %s K=%zu: the cache answered lookups of a timed "
               "run\n\n",
               contender_key[order[j]], cf->ks[ki]);
      }
    }
  }

  /* The headline: dialtone with the most in flight against c-ares's best
   * figure over every K and both configurations. */
  size_t kmax = 0;
  for (size_t ki = 1; ki < cf->nks; ki++) {
    if (cf->ks[ki] > cf->ks[kmax]) {
      kmax = ki;
    }
  }
  contender_t best_who = NCONTENDERS;
  size_t best_k = 0;
  double best = 0;
  for (int who = C_CARES; who <= C_CARES_RCVBUF; who++) {
    if (!cf->want[who]) {
      continue;
    }
    for (size_t ki = 0; ki < cf->nks; ki++) {
      if (cells[who][ki].median > best) {
        best = cells[who][ki].median;
        best_who = (contender_t)who;
        best_k = ki;
      }
    }
  }
  if (best_who != NCONTENDERS) {
    for (int who = C_DT_EPOLL; who <= C_DT_RUN; who++) {
      if (!cf->want[who]) {
        continue;
      }
      double d = cells[who][kmax].median;
      double ratio = d / best;
      printf("Goal, %s at K=%zu at least 1.5 × c-ares's best (%s, K=%zu): "
             "%.0f / %.0f = %.2f → **%s**\n\n",
             contender_key[who], cf->ks[kmax], contender_key[best_who],
             cf->ks[best_k], d, best, ratio, ratio >= 1.5 ? "met" : "not met");
    }
  }

  if (cf->tsv != NULL) {
    report_tsv(cf, cells, order, nk);
  }
}

/* ---- main ---------------------------------------------------------------- */

/* The wait for the server to answer at all, before anything is timed. */
static void wait_ready(const config_t *cf) {
  dt_resolver_t *r = dt_open(cf);
  int64_t until = bench_now_ns() + (int64_t)cf->wait_ms * 1000000;
  for (;;) {
    dt_answer_t *a = NULL;
    dt_status_t st = dt_resolver_query(r, cf->domain, DT_TYPE_SOA, 0, 200, &a);
    bool ok = st == DT_OK && dt_answer_status(a) == DT_OK;
    dt_answer_free(a);
    if (ok) {
      break;
    }
    if (bench_now_ns() > until) {
      fprintf(stderr, "bench_loop: no SOA for %s from %s within %d ms (%s)\n",
              cf->domain, cf->server, cf->wait_ms, dt_strerror(st));
      exit(2);
    }
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
  }
  dt_resolver_free(r);
}

static void usage(void) {
  fprintf(
      stderr,
      "usage: bench_loop [-s ADDR:PORT] [-d DOMAIN] [-n LOOKUPS] "
      "[-k K,K,...] [-r RUNS]\n"
      "         [-c dialtone-epoll,dialtone-run,cares,cares-rcvbuf,"
      "raw-shared]\n"
      "         [-b BYTES] [-t TITLE] [-P PLACEMENT] [-T TSVFILE] [-p PLOT]\n"
      "         [-G yes|no] [-l SECONDS] [-W WAIT_MS]\n"
      "  -s  the authoritative server (default 127.0.0.1:53)\n"
      "  -d  its zone, holding n0.DOMAIN ... (default bench.test)\n"
      "  -n  lookups per run, one per name (default 5000)\n"
      "  -k  lookups kept in flight (default 1,16,64,128,256)\n"
      "  -r  runs per contender and K (default 5)\n"
      "  -b  cares-rcvbuf's ARES_OPT_SOCK_RCVBUF (default 4194304)\n"
      "  -P  suffix of the TSV figure names (default pinned)\n"
      "  -T  append this run's figures to this file (bench/benchtsv.h)\n"
      "  -p  ask bench/report.sh for plots/PLOT.png, lookups/s by K\n"
      "  -G  yes: also judge the issue's goal over every run in the -T file\n"
      "  -l  cut a run short after this many seconds (default 60)\n"
      "  -W  wait this long for the server first (default 10000)\n");
  exit(2);
}

static size_t parse_count(const char *s, size_t max) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (*s == '\0' || *end != '\0' || errno != 0 || v > max) {
    die("bad number: %s", s);
  }
  return (size_t)v;
}

static void parse_list(config_t *cf, const char *list, bool contenders) {
  char buf[200];
  if (strlen(list) >= sizeof(buf)) {
    die("list too long: %s", list);
  }
  strcpy(buf, list);
  for (char *tok = strtok(buf, ","); tok != NULL; tok = strtok(NULL, ",")) {
    if (!contenders) {
      if (cf->nks == MAX_KS) {
        die("at most 16 values of K: %s", list);
      }
      size_t k = parse_count(tok, MAX_NAMES);
      if (k == 0) {
        die("K must be at least 1: %s", list);
      }
      cf->ks[cf->nks++] = k;
      continue;
    }
    bool found = false;
    for (int k = 0; k < NCONTENDERS; k++) {
      if (strcmp(tok, contender_key[k]) == 0) {
        cf->want[k] = true;
        found = true;
      }
    }
    if (!found) {
      die("unknown contender: %s", tok);
    }
  }
}

int main(int argc, char **argv) {
  config_t cf;
  memset(&cf, 0, sizeof(cf));
  cf.server = "127.0.0.1:53";
  cf.domain = "bench.test";
  cf.nnames = 5000;
  cf.runs = 5;
  cf.title = "Lookups per second, one thread, K in flight";
  cf.placement = "pinned";
  cf.rcvbuf = DEFAULT_RCVBUF;
  cf.wait_ms = 10000;
  cf.run_limit_s = 60;
  const char *contenders =
      "dialtone-epoll,dialtone-run,cares,cares-rcvbuf,raw-shared";
  const char *ks = "1,16,64,128,256";

  for (int a = 1; a < argc; a++) {
    const char *opt = argv[a];
    if (opt[0] != '-' || opt[1] == '\0' || opt[2] != '\0' || a + 1 >= argc) {
      usage();
    }
    const char *val = argv[++a];
    switch (opt[1]) {
    case 's':
      cf.server = val;
      break;
    case 'd':
      cf.domain = val;
      break;
    case 'n':
      cf.nnames = parse_count(val, MAX_NAMES);
      break;
    case 'k':
      ks = val;
      break;
    case 'r':
      cf.runs = parse_count(val, MAX_RUNS);
      break;
    case 'c':
      contenders = val;
      break;
    case 'b':
      cf.rcvbuf = (int)parse_count(val, 1 << 30);
      break;
    case 't':
      cf.title = val;
      break;
    case 'P':
      cf.placement = val;
      break;
    case 'T':
      cf.tsv = val;
      break;
    case 'p':
      cf.plot = val;
      break;
    case 'G':
      cf.goal = strcmp(val, "yes") == 0;
      if (!cf.goal && strcmp(val, "no") != 0) {
        usage();
      }
      break;
    case 'l':
      cf.run_limit_s = (int)parse_count(val, 3600);
      break;
    case 'W':
      cf.wait_ms = (int)parse_count(val, 600000);
      break;
    default:
      usage();
    }
  }
  parse_list(&cf, ks, false);
  parse_list(&cf, contenders, true);
  if (cf.nnames == 0 || cf.runs == 0) {
    die("%s", "-n and -r must be at least 1");
  }

  /* K lookups hold up to 2 K sockets (more for c-ares's address sorting):
   * the soft limit goes up to the hard one. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }

  setvbuf(stdout, NULL, _IOLBF, 0);
  wait_ready(&cf);

#ifdef DT_BENCH_CARES
  int rc = ares_library_init(ARES_LIB_INIT_ALL);
  if (rc != ARES_SUCCESS) {
    die("ares_library_init: %s", ares_strerror(rc));
  }
#else
  if (cf.want[C_CARES] || cf.want[C_CARES_RCVBUF]) {
    printf("SKIP c-ares: libc-ares-dev not installed\n\n");
    cf.cares_missing = cf.want[C_CARES] || cf.want[C_CARES_RCVBUF];
    cf.want[C_CARES] = cf.want[C_CARES_RCVBUF] = false;
  }
#endif

  contender_t order[NCONTENDERS];
  size_t nk = 0;
  for (int k = 0; k < NCONTENDERS; k++) {
    if (cf.want[k]) {
      order[nk++] = (contender_t)k;
    }
  }
  static cell_t cells[NCONTENDERS][MAX_KS];
  if (nk > 0) {
    warm_up(&cf, order, nk);
    measure(&cf, cells, order, nk);
    for (size_t j = 0; j < nk; j++) {
      for (size_t ki = 0; ki < cf.nks; ki++) {
        summarise(&cells[order[j]][ki]);
      }
    }
    report(&cf, cells, order, nk);
  }

#ifdef DT_BENCH_CARES
  ares_library_cleanup();
#endif
  return 0;
}
