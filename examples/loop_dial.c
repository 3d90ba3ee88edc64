/* loop_dial: 1,000 lookups and 1,000 dials at once from one thread, on the
 * program's own epoll loop.
 *
 * What it shows: how a program that already runs an epoll loop drives
 * dialtone's event-loop API (dialtone/loop.h). The loop's watch callback
 * keeps the epoll set in step with the descriptors dialtone waits on, its
 * timer callback sets the epoll_wait() timeout, and after each wait the
 * program hands every ready descriptor to dt_loop_process_fd() and, when
 * the timeout passed, calls dt_loop_process(). Every lookup and every dial
 * completes through its callback, on this thread; nothing blocks.
 *
 * It starts COUNT lookups (dt_resolve_start(), A and AAAA) and COUNT dials
 * of HOST:PORT (dt_dial_start(), Happy Eyeballs) all at once, closes each
 * connection as soon as it is made, and prints a summary: completions,
 * failures by status, elapsed time, the most operations in flight, and the
 * open descriptors before and after (the same number: nothing leaked).
 *
 * usage: loop_dial [-c COUNT] [-r RESOLV_CONF] [-n NAME] [-t TIMEOUT_MS]
 *                  [-v] HOST PORT
 *   -c  lookups, and dials, to start (default 1000)
 *   -r  resolv.conf to read (default /etc/resolv.conf); its nameserver
 *       lines may carry a port, "nameserver [127.0.0.1]:5353"
 *   -n  the names to look up: NAME with "%d" replaced by 0 .. COUNT-1
 *       ("n%d.example."), or one name for all (default HOST)
 *   -t  limit for each lookup and dial (default 10000 ms)
 *   -v  one line per completion: "lookup NAME ok ADDR..." and
 *       "dial HOST:PORT ok PEER"
 *
 * Try it against a local listener (nc -lk 127.0.0.1 8080 in another
 * terminal; connections are closed at once):
 *
 *   examples/loop_dial -n localhost localhost 8080
 *
 * Many descriptors are open at once (a lookup holds one socket, a dial one
 * per connection attempt): the program raises its soft RLIMIT_NOFILE to
 * the hard limit, and reports DT_EMFILE failures if that is not enough.
 * Exit status: 0 when every operation succeeded, 1 when some failed, 2 on
 * bad usage or a setup error. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <dialtone.h>

#define MAX_COUNT 100000
#define NSTATUS 64 /* more than dialtone has codes */

typedef struct {
  int epfd;
  /* The events each descriptor is registered with, 0 when it is not. */
  unsigned *registered;
  size_t nregistered;
  /* When dialtone wants dt_loop_process() called, or -1 for never. */
  long long deadline_ms;
  /* Counters for the summary. */
  size_t inflight, max_inflight;
  size_t lookups_done, lookups_ok, dials_done, dials_ok;
  size_t failed[NSTATUS];
  bool verbose;
} app_t;

typedef struct {
  app_t *app;
  char name[256]; /* the lookup's name, or "HOST:PORT" for a dial */
} op_ctx_t;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the glue between dialtone and epoll ------------------------------- */

/* Watch callback. dialtone may report a descriptor after closing it, and
 * the kernel may hand the same number to a new socket: epoll forgot the
 * old one on close, so a MOD that finds nothing becomes an ADD, and a DEL
 * that finds nothing is fine. */
static void on_watch(void *ctx, int fd, short events) {
  app_t *app = ctx;
  if (fd < 0) {
    return;
  }
  if ((size_t)fd >= app->nregistered) {
    size_t n = app->nregistered ? app->nregistered * 2 : 1024;
    while (n <= (size_t)fd) {
      n *= 2;
    }
    unsigned *p = realloc(app->registered, n * sizeof(*p));
    if (p == NULL) {
      fprintf(stderr, "loop_dial: out of memory\n");
      exit(2);
    }
    memset(p + app->nregistered, 0, (n - app->nregistered) * sizeof(*p));
    app->registered = p;
    app->nregistered = n;
  }
  unsigned want = 0;
  if (events & POLLIN) {
    want |= EPOLLIN;
  }
  if (events & POLLOUT) {
    want |= EPOLLOUT;
  }
  unsigned had = app->registered[fd];
  if (want == had) {
    return;
  }
  struct epoll_event ev;
  memset(&ev, 0, sizeof(ev));
  ev.events = want;
  ev.data.fd = fd;
  int rc = 0;
  if (want == 0) {
    (void)epoll_ctl(app->epfd, EPOLL_CTL_DEL, fd, NULL);
  } else if (had == 0) {
    rc = epoll_ctl(app->epfd, EPOLL_CTL_ADD, fd, &ev);
    if (rc != 0 && errno == EEXIST) {
      rc = epoll_ctl(app->epfd, EPOLL_CTL_MOD, fd, &ev);
    }
  } else {
    rc = epoll_ctl(app->epfd, EPOLL_CTL_MOD, fd, &ev);
    if (rc != 0 && errno == ENOENT) {
      rc = epoll_ctl(app->epfd, EPOLL_CTL_ADD, fd, &ev);
    }
  }
  if (rc != 0) {
    /* Nothing sensible is left to do: the operation would never finish. */
    perror("loop_dial: epoll_ctl");
    exit(2);
  }
  app->registered[fd] = want;
}

/* Timer callback: one deadline, replaced at each call. */
static void on_timer(void *ctx, int timeout_ms) {
  app_t *app = ctx;
  app->deadline_ms = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

static int wait_ms(const app_t *app) {
  if (app->deadline_ms < 0) {
    return -1;
  }
  long long left = app->deadline_ms - now_ms();
  return left <= 0 ? 0 : (int)left;
}

/* ---- completions -------------------------------------------------------- */

/* The address (and port) of a socket address as text. Copied out with
 * memcpy: reading a sockaddr_storage through a cast pointer breaks C's
 * aliasing rules. */
static const char *addr_text(const struct sockaddr_storage *ss, char *buf,
                             size_t cap, unsigned *port) {
  if (ss->ss_family == AF_INET6) {
    struct sockaddr_in6 s6;
    memcpy(&s6, ss, sizeof(s6));
    if (port != NULL) {
      *port = ntohs(s6.sin6_port);
    }
    return inet_ntop(AF_INET6, &s6.sin6_addr, buf, (socklen_t)cap);
  }
  if (ss->ss_family == AF_INET) {
    struct sockaddr_in s4;
    memcpy(&s4, ss, sizeof(s4));
    if (port != NULL) {
      *port = ntohs(s4.sin_port);
    }
    return inet_ntop(AF_INET, &s4.sin_addr, buf, (socklen_t)cap);
  }
  return "?";
}

static void count_failure(app_t *app, dt_status_t status) {
  app->failed[(unsigned)status < NSTATUS ? (unsigned)status : 0]++;
}

static void on_resolved(void *user, dt_status_t status, const dt_addr_t *addrs,
                        size_t n) {
  op_ctx_t *op = user;
  app_t *app = op->app;
  app->inflight--;
  app->lookups_done++;
  if (status != DT_OK) {
    count_failure(app, status);
    if (app->verbose) {
      printf("lookup %s %s\n", op->name, dt_status_name(status));
    }
    return;
  }
  app->lookups_ok++;
  if (app->verbose) {
    printf("lookup %s ok", op->name);
    for (size_t i = 0; i < n; i++) {
      char text[INET6_ADDRSTRLEN];
      printf(" %s", addr_text(&addrs[i].addr, text, sizeof(text), NULL));
    }
    printf("\n");
  }
}

static void on_dialed(void *user, dt_status_t status, int fd,
                      const dt_dial_report_t *report) {
  (void)report;
  op_ctx_t *op = user;
  app_t *app = op->app;
  app->inflight--;
  app->dials_done++;
  if (status != DT_OK) {
    count_failure(app, status);
    if (app->verbose) {
      printf("dial %s %s\n", op->name, dt_status_name(status));
    }
    return;
  }
  app->dials_ok++;
  if (app->verbose) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char text[INET6_ADDRSTRLEN];
    unsigned port = 0;
    const char *peer = "?";
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
      peer = addr_text(&ss, text, sizeof(text), &port);
    }
    printf("dial %s ok %s %u\n", op->name, peer, port);
  }
  /* The connection is the callback's to keep; this program only counts. */
  close(fd);
}

/* ---- main ---------------------------------------------------------------- */

/* Open descriptors of this process, to show that none leaked. */
static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) {
    return -1;
  }
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    n += e->d_name[0] != '.';
  }
  closedir(d);
  return n - 1; /* the directory's own */
}

static void usage(void) {
  fprintf(stderr, "usage: loop_dial [-c COUNT] [-r RESOLV_CONF] [-n NAME] "
                  "[-t TIMEOUT_MS] [-v] HOST PORT\n");
  exit(2);
}

static long number(const char *s, long min, long max) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max) {
    usage();
  }
  return v;
}

int main(int argc, char **argv) {
  long count = 1000;
  const char *resolv_conf = NULL;
  const char *names = NULL;
  int timeout_ms = 10000;
  bool verbose = false;
  int a = 1;
  for (; a < argc && argv[a][0] == '-'; a++) {
    const char *opt = argv[a];
    if (strcmp(opt, "-v") == 0) {
      verbose = true;
      continue;
    }
    if (a + 1 >= argc) {
      usage();
    }
    if (strcmp(opt, "-c") == 0) {
      count = number(argv[++a], 1, MAX_COUNT);
    } else if (strcmp(opt, "-r") == 0) {
      resolv_conf = argv[++a];
    } else if (strcmp(opt, "-n") == 0) {
      names = argv[++a];
    } else if (strcmp(opt, "-t") == 0) {
      timeout_ms = (int)number(argv[++a], 1, 3600000);
    } else {
      usage();
    }
  }
  if (argc - a != 2) {
    usage();
  }
  const char *host = argv[a];
  uint16_t port = (uint16_t)number(argv[a + 1], 1, 65535);
  if (names == NULL) {
    names = host;
  }
  const char *pct = strstr(names, "%d");
  if (pct != NULL && strstr(pct + 1, "%") != NULL) {
    fprintf(stderr, "loop_dial: -n takes one %%d and no other %%\n");
    return 2;
  }

  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
  int fds_before = open_fds();

  app_t app;
  memset(&app, 0, sizeof(app));
  app.deadline_ms = -1;
  app.verbose = verbose;
  app.epfd = epoll_create1(EPOLL_CLOEXEC);
  if (app.epfd < 0) {
    perror("loop_dial: epoll_create1");
    return 2;
  }

  /* One resolver, shared by the lookups and the dialer. */
  dt_resolver_opts_t ro;
  dt_resolver_opts_init(&ro);
  if (resolv_conf != NULL) {
    ro.resolv_conf = resolv_conf;
  }
  dt_resolver_t *resolver = NULL;
  dt_status_t st = dt_resolver_new(&ro, &resolver);
  if (st != DT_OK) {
    fprintf(stderr, "loop_dial: resolver: %s\n", dt_strerror(st));
    return 2;
  }
  dt_dial_opts_t dopts;
  dt_dial_opts_init(&dopts);
  dopts.resolver = resolver;
  dopts.timeout_ms = timeout_ms;
  dt_dialer_t *dialer = NULL;
  st = dt_dialer_new(&dopts, &dialer);
  if (st != DT_OK) {
    fprintf(stderr, "loop_dial: dialer: %s\n", dt_strerror(st));
    return 2;
  }
  dt_loop_opts_t lo;
  dt_loop_opts_init(&lo);
  lo.watch = on_watch;
  lo.watch_ctx = &app;
  lo.timer = on_timer;
  lo.timer_ctx = &app;
  dt_loop_t *loop = NULL;
  st = dt_loop_new(&lo, &loop);
  if (st != DT_OK) {
    fprintf(stderr, "loop_dial: loop: %s\n", dt_strerror(st));
    return 2;
  }

  op_ctx_t *ops = calloc((size_t)count * 2, sizeof(*ops));
  if (ops == NULL) {
    fprintf(stderr, "loop_dial: out of memory\n");
    return 2;
  }
  long long t0 = now_ms();
  /* Everything starts at once; a start that fails has no callback, so it
   * is counted here. */
  for (long i = 0; i < count; i++) {
    op_ctx_t *op = &ops[i];
    op->app = &app;
    if (pct != NULL) {
      snprintf(op->name, sizeof(op->name), "%.*s%ld%s", (int)(pct - names),
               names, i, pct + 2);
    } else {
      snprintf(op->name, sizeof(op->name), "%s", names);
    }
    st = dt_resolve_start(loop, resolver, op->name, AF_UNSPEC, 0, timeout_ms,
                          on_resolved, op, NULL);
    if (st != DT_OK) {
      app.lookups_done++;
      count_failure(&app, st);
      continue;
    }
    if (++app.inflight > app.max_inflight) {
      app.max_inflight = app.inflight;
    }
  }
  for (long i = 0; i < count; i++) {
    op_ctx_t *op = &ops[count + i];
    op->app = &app;
    snprintf(op->name, sizeof(op->name), "%s:%u", host, (unsigned)port);
    st = dt_dial_start(loop, dialer, host, port, timeout_ms, on_dialed, op,
                       NULL);
    if (st != DT_OK) {
      app.dials_done++;
      count_failure(&app, st);
      continue;
    }
    if (++app.inflight > app.max_inflight) {
      app.max_inflight = app.inflight;
    }
  }

  /* The program's loop: wait, hand over what is ready, repeat. */
  struct epoll_event evs[256];
  while (dt_loop_pending(loop) > 0) {
    int n = epoll_wait(app.epfd, evs, 256, wait_ms(&app));
    if (n < 0 && errno != EINTR) {
      perror("loop_dial: epoll_wait");
      return 2;
    }
    for (int i = 0; i < n; i++) {
      /* EPOLLIN and friends have poll()'s values on Linux. */
      dt_loop_process_fd(loop, evs[i].data.fd, (short)evs[i].events);
    }
    if (app.deadline_ms >= 0 && now_ms() >= app.deadline_ms) {
      app.deadline_ms = -1; /* one-shot: dialtone sets the next one */
      dt_loop_process(loop, NULL, 0);
    }
  }
  long long elapsed = now_ms() - t0;

  dt_loop_free(loop);
  dt_dialer_free(dialer);
  dt_resolver_free(resolver);
  close(app.epfd);
  free(app.registered);
  free(ops);
  int fds_after = open_fds();

  printf("lookups: %zu completed, %zu ok\n", app.lookups_done, app.lookups_ok);
  printf("dials: %zu completed, %zu ok\n", app.dials_done, app.dials_ok);
  size_t nfailed = 0;
  printf("failed:");
  for (int s = 0; s < NSTATUS; s++) {
    if (app.failed[s] > 0) {
      printf(" %s %zu", dt_status_name((dt_status_t)s), app.failed[s]);
      nfailed += app.failed[s];
    }
  }
  printf("%s\n", nfailed ? "" : " none");
  printf("elapsed: %lld ms\n", elapsed);
  printf("max in flight: %zu\n", app.max_inflight);
  printf("descriptors: %d open before, %d after\n", fds_before, fds_after);
  return nfailed == 0 ? 0 : 1;
}
