/* loop_uv: many lookups and dials at once on a libuv loop.
 *
 * What it shows: how a libuv program drives dialtone's event-loop API
 * (dialtone/loop.h). dialtone's watch callback starts, changes or stops a
 * uv_poll_t for each descriptor it waits on; its timer callback starts or
 * stops one uv_timer_t. libuv calls back when a descriptor is ready
 * (dt_loop_process_fd()) or the timer fires (dt_loop_process()); dialtone
 * then calls the lookups' and dials' own callbacks, on the loop's thread.
 * The program's other libuv work (servers, timers, files) would run on the
 * same uv_run() undisturbed.
 *
 * It starts COUNT lookups (dt_resolve_start(), A and AAAA) and COUNT dials
 * of HOST:PORT (dt_dial_start()) at once, closes each connection as soon
 * as it is made, and prints the same summary as loop_dial: completions,
 * failures by status, elapsed time, the most in flight, descriptors
 * before and after.
 *
 * usage: loop_uv [-c COUNT] [-r RESOLV_CONF] [-n NAME] [-t TIMEOUT_MS] [-v]
 *                HOST PORT
 * with the options of loop_dial (see examples/loop_dial.c), e.g.
 *
 *   examples/loop_uv -n localhost localhost 8080
 *
 * Built only when configure finds libuv (apt-get install libuv1-dev). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <dialtone.h>
#include <uv.h>

#define MAX_COUNT 100000
#define NSTATUS 64 /* more than dialtone has codes */

typedef struct {
  uv_loop_t *uv;
  uv_timer_t timer;
  dt_loop_t *loop;
  /* One poll handle per descriptor dialtone waits on, by number. */
  uv_poll_t **polls;
  size_t npolls;
  size_t inflight, max_inflight;
  size_t lookups_done, lookups_ok, dials_done, dials_ok;
  size_t failed[NSTATUS];
  bool verbose;
} app_t;

typedef struct {
  app_t *app;
  char name[256]; /* the lookup's name, or "HOST:PORT" for a dial */
} op_ctx_t;

/* ---- the glue between dialtone and libuv ------------------------------- */

static void on_poll(uv_poll_t *h, int status, int events) {
  app_t *app = h->data;
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)h, &fd) != 0) {
    return;
  }
  short revents = 0;
  if (status < 0) {
    revents = POLLERR; /* dialtone reads the socket's error itself */
  }
  if (events & UV_READABLE) {
    revents |= POLLIN;
  }
  if (events & UV_WRITABLE) {
    revents |= POLLOUT;
  }
  if (events & UV_DISCONNECT) {
    revents |= POLLHUP;
  }
  dt_loop_process_fd(app->loop, fd, revents);
}

static void free_handle(uv_handle_t *h) {
  free(h);
}

/* Watch callback. A handle is stopped at once, not when its close
 * completes: dialtone may report a descriptor after closing it and the
 * kernel may give the number to a new socket in the same step, which then
 * needs a handle of its own right away. */
static void on_watch(void *ctx, int fd, short events) {
  app_t *app = ctx;
  if (fd < 0) {
    return;
  }
  if ((size_t)fd >= app->npolls) {
    size_t n = app->npolls ? app->npolls * 2 : 1024;
    while (n <= (size_t)fd) {
      n *= 2;
    }
    uv_poll_t **p = realloc(app->polls, n * sizeof(*p));
    if (p == NULL) {
      fprintf(stderr, "loop_uv: out of memory\n");
      exit(2);
    }
    memset(p + app->npolls, 0, (n - app->npolls) * sizeof(*p));
    app->polls = p;
    app->npolls = n;
  }
  uv_poll_t *h = app->polls[fd];
  if (events == 0) {
    if (h != NULL) {
      uv_poll_stop(h);
      uv_close((uv_handle_t *)h, free_handle);
      app->polls[fd] = NULL;
    }
    return;
  }
  if (h == NULL) {
    h = malloc(sizeof(*h));
    int rc = h != NULL ? uv_poll_init_socket(app->uv, h, fd) : UV_ENOMEM;
    if (rc != 0) {
      /* The operation would never finish: nothing sensible is left. */
      fprintf(stderr, "loop_uv: uv_poll_init_socket: %s\n", uv_strerror(rc));
      exit(2);
    }
    h->data = app;
    app->polls[fd] = h;
  }
  int want = 0;
  if (events & POLLIN) {
    want |= UV_READABLE;
  }
  if (events & POLLOUT) {
    want |= UV_WRITABLE;
  }
  int rc = uv_poll_start(h, want, on_poll);
  if (rc != 0) {
    fprintf(stderr, "loop_uv: uv_poll_start: %s\n", uv_strerror(rc));
    exit(2);
  }
}

static void on_timeout(uv_timer_t *t) {
  app_t *app = t->data;
  dt_loop_process(app->loop, NULL, 0);
}

/* Timer callback: one deadline, replaced at each call. */
static void on_timer(void *ctx, int timeout_ms) {
  app_t *app = ctx;
  if (timeout_ms < 0) {
    uv_timer_stop(&app->timer);
  } else {
    uv_timer_start(&app->timer, on_timeout, (uint64_t)timeout_ms, 0);
  }
}

/* ---- completions -------------------------------------------------------- */

/* The address (and port) of a socket address as text, copied out with
 * memcpy (reading a sockaddr_storage through a cast pointer breaks C's
 * aliasing rules). */
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
  fprintf(stderr, "usage: loop_uv [-c COUNT] [-r RESOLV_CONF] [-n NAME] "
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
    fprintf(stderr, "loop_uv: -n takes one %%d and no other %%\n");
    return 2;
  }

  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
  app_t app;
  memset(&app, 0, sizeof(app));
  app.verbose = verbose;
  uv_loop_t uv;
  int rc = uv_loop_init(&uv);
  if (rc != 0) {
    fprintf(stderr, "loop_uv: uv_loop_init: %s\n", uv_strerror(rc));
    return 2;
  }
  app.uv = &uv;
  /* Counted with the libuv loop open, and again before it is closed:
   * libuv keeps a few descriptors of its own for the whole process (its
   * signal pipe), which are no leak of dialtone's. */
  int fds_before = open_fds();
  uv_timer_init(&uv, &app.timer);
  app.timer.data = &app;

  dt_resolver_opts_t ro;
  dt_resolver_opts_init(&ro);
  if (resolv_conf != NULL) {
    ro.resolv_conf = resolv_conf;
  }
  dt_resolver_t *resolver = NULL;
  dt_status_t st = dt_resolver_new(&ro, &resolver);
  if (st != DT_OK) {
    fprintf(stderr, "loop_uv: resolver: %s\n", dt_strerror(st));
    return 2;
  }
  dt_dial_opts_t dopts;
  dt_dial_opts_init(&dopts);
  dopts.resolver = resolver;
  dopts.timeout_ms = timeout_ms;
  dt_dialer_t *dialer = NULL;
  st = dt_dialer_new(&dopts, &dialer);
  if (st != DT_OK) {
    fprintf(stderr, "loop_uv: dialer: %s\n", dt_strerror(st));
    return 2;
  }
  dt_loop_opts_t lo;
  dt_loop_opts_init(&lo);
  lo.watch = on_watch;
  lo.watch_ctx = &app;
  lo.timer = on_timer;
  lo.timer_ctx = &app;
  st = dt_loop_new(&lo, &app.loop);
  if (st != DT_OK) {
    fprintf(stderr, "loop_uv: loop: %s\n", dt_strerror(st));
    return 2;
  }

  op_ctx_t *ops = calloc((size_t)count * 2, sizeof(*ops));
  if (ops == NULL) {
    fprintf(stderr, "loop_uv: out of memory\n");
    return 2;
  }
  uint64_t t0 = uv_hrtime();
  for (long i = 0; i < count; i++) {
    op_ctx_t *op = &ops[i];
    op->app = &app;
    if (pct != NULL) {
      snprintf(op->name, sizeof(op->name), "%.*s%ld%s", (int)(pct - names),
               names, i, pct + 2);
    } else {
      snprintf(op->name, sizeof(op->name), "%s", names);
    }
    st = dt_resolve_start(app.loop, resolver, op->name, AF_UNSPEC, 0,
                          timeout_ms, on_resolved, op, NULL);
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
    st = dt_dial_start(app.loop, dialer, host, port, timeout_ms, on_dialed, op,
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

  /* uv_run returns once no handle is active: every operation finished,
   * so dialtone stopped its descriptors and its timer. */
  uv_run(&uv, UV_RUN_DEFAULT);
  uint64_t elapsed_ms = (uv_hrtime() - t0) / 1000000;
  if (dt_loop_pending(app.loop) != 0) {
    fprintf(stderr, "loop_uv: libuv stopped with %zu operations pending\n",
            dt_loop_pending(app.loop));
  }

  dt_loop_free(app.loop);
  dt_dialer_free(dialer);
  dt_resolver_free(resolver);
  /* Handles dialtone left (none when everything finished), then the
   * timer; their closes complete in one more turn of the loop. */
  for (size_t fd = 0; fd < app.npolls; fd++) {
    if (app.polls[fd] != NULL) {
      uv_close((uv_handle_t *)app.polls[fd], free_handle);
    }
  }
  uv_close((uv_handle_t *)&app.timer, NULL);
  uv_run(&uv, UV_RUN_DEFAULT);
  int fds_after = open_fds();
  uv_loop_close(&uv);
  free(app.polls);
  free(ops);

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
  printf("elapsed: %llu ms\n", (unsigned long long)elapsed_ms);
  printf("max in flight: %zu\n", app.max_inflight);
  printf("descriptors: %d open before, %d after\n", fds_before, fds_after);
  return nfailed == 0 ? 0 : 1;
}
