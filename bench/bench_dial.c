/* bench_dial: what Happy Eyeballs costs and saves, in one run on one
 * machine. Not a test: it prints Markdown (and writes it to the file named
 * by its argument, if any).
 *
 * 1. Fallback: a name with two addresses, [::1] whose listener is stuck
 *    (backlog 0 and one connection never accepted, so Linux drops further
 *    SYNs) and a good 127.0.0.1 on the same port. Time until a connection
 *    for dialtone (hosts file, so no DNS), curl (--resolve with both
 *    addresses, its time_connect), Python asyncio with happy_eyeballs_delay
 *    0.25 when python3 is there, and a naive dialer that tries the
 *    addresses in order with a 5 s connect timeout.
 * 2. Overhead: dt_dial() to an IP literal against a raw non-blocking
 *    connect() + poll() to the same listener, in microseconds, both bare
 *    and with the socket options dialtone applies by default. Contenders
 *    take turns every round so drift hits all alike.
 *
 * Uses the public API only.
 *
 * usage: bench_dial [MARKDOWN [TSV]]: the TSV gets the same figures, for
 * bench/report.sh. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "benchtsv.h"
#include "dialtone.h"

#define FALLBACK_RUNS 7
#define PY_RUNS 3
/* Each naive run waits out its 5 s connect timeout: a few are enough for
 * a median, the figure hardly moves. */
#define NAIVE_RUNS 3
#define NAIVE_TIMEOUT_MS 5000
#define OVERHEAD_N 5000
#define OVERHEAD_WARM 300

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static bench_tsv_t *tsv; /* NULL: no TSV asked for */

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Sorts v and returns its median. */
static uint64_t median(uint64_t *v, size_t n) {
  qsort(v, n, sizeof(*v), cmp_u64);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what) {
  fprintf(stderr, "bench_dial: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* ---- listeners ----------------------------------------------------------- */

typedef struct {
  int fd;
  bool http; /* answer one HTTP request (curl waits for a reply) */
  volatile bool stop;
  pthread_t th;
} server_t;

static void *serve(void *arg) {
  server_t *s = arg;
  while (!s->stop) {
    struct pollfd p = {s->fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) {
      continue;
    }
    int c = accept(s->fd, NULL, NULL);
    if (c < 0) {
      continue;
    }
    if (s->http) {
      /* Whatever the request, one reply; a dialtone client sends nothing
       * and closes, which ends the read at once. */
      struct timeval tv = {0, 200000};
      setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      char buf[4096];
      if (read(c, buf, sizeof(buf)) > 0) {
        static const char reply[] = "HTTP/1.0 204 No Content\r\n\r\n";
        if (write(c, reply, sizeof(reply) - 1) < 0) {
          /* the client left: nothing to do */
        }
      }
    }
    close(c);
  }
  return NULL;
}

static void server_start(server_t *s, int fd, bool http) {
  s->fd = fd;
  s->http = http;
  s->stop = false;
  if (pthread_create(&s->th, NULL, serve, s) != 0) {
    die("pthread_create");
  }
}

static void server_stop(server_t *s) {
  s->stop = true;
  pthread_join(s->th, NULL);
  close(s->fd);
}

static void loopback(int family, uint16_t port, struct sockaddr_storage *ss,
                     socklen_t *len) {
  memset(ss, 0, sizeof(*ss));
  if (family == AF_INET6) {
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    v6->sin6_addr = in6addr_loopback;
    *len = sizeof(*v6);
  } else {
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *len = sizeof(*v4);
  }
}

/* A stuck [::1]:port and a good 127.0.0.1:port; false without IPv6. */
typedef struct {
  uint16_t port;
  int stuck, filler;
  server_t good;
} pair_t;

static bool pair_open(pair_t *p) {
  dt_listen_opts_t o;
  dt_listen_opts_init(&o);
  for (int tries = 0; tries < 50; tries++) {
    o.backlog = 0;
    if (dt_listen(&o, "::1", 0, &p->stuck) != DT_OK) {
      return false;
    }
    dt_listen_get_port(p->stuck, &p->port);
    o.backlog = DT_LISTEN_BACKLOG_MAX;
    int good;
    if (dt_listen(&o, "127.0.0.1", p->port, &good) != DT_OK) {
      close(p->stuck);
      continue;
    }
    struct sockaddr_storage ss;
    socklen_t len;
    loopback(AF_INET6, p->port, &ss, &len);
    p->filler = socket(AF_INET6, SOCK_STREAM, 0);
    if (p->filler < 0 || connect(p->filler, (struct sockaddr *)&ss, len) != 0) {
      die("filling the stuck listener's queue");
    }
    server_start(&p->good, good, true);
    return true;
  }
  return false;
}

static void pair_close(pair_t *p) {
  server_stop(&p->good);
  close(p->filler);
  close(p->stuck);
}

/* ---- part 1: fallback ---------------------------------------------------- */

typedef struct {
  const char *label;
  const char *plain; /* for the TSV and the plots */
  const char *kind;  /* base, alt, ref: see benchtsv.h */
  bool run;
  const char *why; /* when not run */
  uint64_t us[FALLBACK_RUNS];
  size_t n;
} row_t;

static dt_dialer_t *dialer_with_hosts(const char *hosts, dt_resolver_t **r,
                                      const dt_dial_opts_t *base) {
  dt_resolver_opts_t ro;
  dt_resolver_opts_init(&ro);
  static const char *const servers[] = {"127.0.0.1:9"}; /* never asked */
  ro.servers = servers;
  ro.nservers = 1;
  ro.hosts = hosts;
  if (dt_resolver_new(&ro, r) != DT_OK) {
    die("dt_resolver_new");
  }
  dt_dial_opts_t o;
  if (base != NULL) {
    o = *base;
  } else {
    dt_dial_opts_init(&o);
  }
  o.resolver = *r;
  dt_dialer_t *d = NULL;
  if (dt_dialer_new(&o, &d) != DT_OK) {
    die("dt_dialer_new");
  }
  return d;
}

static bool have(const char *tool) {
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
  return system(cmd) == 0;
}

/* Runs cmd, which prints a number of seconds; returns µs, or 0. */
static uint64_t run_seconds(const char *cmd) {
  FILE *fp = popen(cmd, "r");
  if (fp == NULL) {
    return 0;
  }
  double s = -1;
  if (fscanf(fp, "%lf", &s) != 1) {
    s = -1;
  }
  int rc = pclose(fp);
  (void)rc; /* curl exits non-zero on an empty reply; time_connect holds */
  return s > 0 ? (uint64_t)(s * 1e6 + 0.5) : 0;
}

static const char asyncio_script[] =
    "import asyncio, socket, sys, time\n"
    "port = int(sys.argv[1])\n"
    "async def main():\n"
    "    loop = asyncio.get_running_loop()\n"
    "    async def gai(host, p, *, family=0, type=0, proto=0, flags=0):\n"
    "        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, '', ('::1', p, "
    "0, 0)),\n"
    "                (socket.AF_INET, socket.SOCK_STREAM, 6, '', "
    "('127.0.0.1', p))]\n"
    "    loop.getaddrinfo = gai\n"
    "    t = time.perf_counter()\n"
    "    r, w = await asyncio.open_connection('bench.test', port,\n"
    "                                         happy_eyeballs_delay=0.25)\n"
    "    print(time.perf_counter() - t)\n"
    "    w.close()\n"
    "asyncio.run(main())\n";

/* Tries each address in turn, waiting up to the connect timeout: the dialer
 * Happy Eyeballs replaces. */
static uint64_t naive_dial(uint16_t port) {
  static const int families[2] = {AF_INET6, AF_INET};
  uint64_t t0 = now_us();
  for (int i = 0; i < 2; i++) {
    struct sockaddr_storage ss;
    socklen_t len;
    loopback(families[i], port, &ss, &len);
    int fd = socket(families[i], SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      continue;
    }
    if (connect(fd, (struct sockaddr *)&ss, len) != 0 && errno != EINPROGRESS) {
      close(fd);
      continue;
    }
    struct pollfd p = {fd, POLLOUT, 0};
    int err = -1;
    socklen_t el = sizeof(err);
    if (poll(&p, 1, NAIVE_TIMEOUT_MS) == 1 &&
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0) {
      close(fd);
      return now_us() - t0;
    }
    close(fd);
  }
  return 0;
}

static void fallback(FILE *out) {
  pair_t p;
  row_t rows[4];
  memset(rows, 0, sizeof(rows));
  rows[0].label = "dialtone `dt_dial` (attempt delay 250 ms)";
  rows[1].label = "curl `--resolve NAME:PORT:[::1],127.0.0.1` (time_connect)";
  rows[2].label = "Python asyncio `open_connection(happy_eyeballs_delay=0.25)`";
  rows[3].label = "naive sequential connect, 5 s connect timeout";
  rows[0].plain = "dialtone dt_dial (delay 250 ms)";
  rows[1].plain = "curl (delay 200 ms)";
  rows[2].plain = "Python asyncio (delay 250 ms)";
  rows[3].plain = "naive sequential, 5 s timeout";
  rows[0].kind = "base";
  rows[1].kind = rows[2].kind = rows[3].kind = "alt";
  bench_tsv_figure(tsv, "fallback",
                   "Happy Eyeballs fallback: stuck [::1], good 127.0.0.1, "
                   "time to a connected socket",
                   "ms", "median of the runs", "min-max");
  fprintf(out, "## Fallback: stuck [::1], good 127.0.0.1 (same port)\n\n");
  if (!pair_open(&p)) {
    fprintf(out, "SKIP: ::1 is not available on this machine.\n\n");
    for (size_t i = 0; i < 4; i++) {
      bench_tsv_skip(tsv, BENCH_NO_PARAM, rows[i].plain, rows[i].kind,
                     "SKIP: ::1 is not available on this machine");
    }
    return;
  }

  char hosts[] = "/tmp/dt-bench-dial-hosts-XXXXXX";
  int hfd = mkstemp(hosts);
  const char text[] = "::1 bench.test\n127.0.0.1 bench.test\n";
  if (hfd < 0 || write(hfd, text, sizeof(text) - 1) < 0) {
    die("hosts file");
  }
  close(hfd);
  dt_resolver_t *r;
  dt_dialer_t *d = dialer_with_hosts(hosts, &r, NULL);
  uint64_t after_v6[FALLBACK_RUNS];
  rows[0].run = true;
  for (size_t i = 0; i < FALLBACK_RUNS; i++) {
    dt_dial_report_t rep;
    int fd;
    if (dt_dial(d, "bench.test", p.port, 5000, &fd, &rep) != DT_OK ||
        rep.family != AF_INET || rep.nattempts != 2) {
      fprintf(stderr, "bench_dial: the dial did not fall back as set up\n");
      exit(1);
    }
    rows[0].us[rows[0].n++] = rep.total_us;
    after_v6[i] = rep.attempts[rep.winner].end_us - rep.attempts[0].start_us;
    close(fd);
  }
  dt_dialer_free(d);
  dt_resolver_free(r);
  unlink(hosts);

  char cmd[1024];
  if (have("curl")) {
    rows[1].run = true;
    for (size_t i = 0; i < FALLBACK_RUNS; i++) {
      snprintf(cmd, sizeof(cmd),
               "curl -s -o /dev/null --max-time 10 --resolve "
               "bench.test:%u:[::1],127.0.0.1 -w '%%{time_connect}' "
               "http://bench.test:%u/",
               p.port, p.port);
      uint64_t us = run_seconds(cmd);
      if (us > 0) {
        rows[1].us[rows[1].n++] = us;
      }
    }
  } else {
    rows[1].why = "curl not installed";
  }
  if (have("python3")) {
    rows[2].run = true;
    char script[] = "/tmp/dt-bench-dial-py-XXXXXX";
    int sfd = mkstemp(script);
    if (sfd < 0 || write(sfd, asyncio_script, sizeof(asyncio_script) - 1) < 0) {
      die("python script");
    }
    close(sfd);
    for (size_t i = 0; i < PY_RUNS; i++) {
      snprintf(cmd, sizeof(cmd), "python3 %s %u 2>/dev/null", script, p.port);
      uint64_t us = run_seconds(cmd);
      if (us > 0) {
        rows[2].us[rows[2].n++] = us;
      }
    }
    unlink(script);
  } else {
    rows[2].why = "python3 not installed";
  }
  rows[3].run = true;
  for (size_t i = 0; i < NAIVE_RUNS; i++) {
    uint64_t naive = naive_dial(p.port);
    if (naive > 0) {
      rows[3].us[rows[3].n++] = naive;
    }
  }
  pair_close(&p);

  fprintf(out, "Time from the start of the call to a connected socket, "
               "ms (median of the runs; min - max).\n\n");
  fprintf(out, "| dialer | runs | median | min - max |\n|---|---|---|---|\n");
  for (size_t i = 0; i < 4; i++) {
    if (!rows[i].run || rows[i].n == 0) {
      char why[128];
      snprintf(why, sizeof(why), "SKIP: %s",
               rows[i].why ? rows[i].why : "no successful run");
      fprintf(out, "| %s | 0 | %s | |\n", rows[i].label, why);
      bench_tsv_skip(tsv, BENCH_NO_PARAM, rows[i].plain, rows[i].kind, why);
      continue;
    }
    uint64_t med = median(rows[i].us, rows[i].n);
    fprintf(out, "| %s | %zu | %.1f | %.1f - %.1f |\n", rows[i].label,
            rows[i].n, med / 1000.0, rows[i].us[0] / 1000.0,
            rows[i].us[rows[i].n - 1] / 1000.0);
    bench_tsv_row(tsv, BENCH_NO_PARAM, rows[i].plain, rows[i].kind,
                  med / 1000.0, rows[i].us[0] / 1000.0,
                  rows[i].us[rows[i].n - 1] / 1000.0, (long)rows[i].n, NULL);
  }
  uint64_t med = median(after_v6, FALLBACK_RUNS);
  double late = med > 250000 ? (med - 250000) / 1000.0 : 0.0;
  bench_tsv_goal(tsv, BENCH_NO_PARAM, true,
                 "dialtone connects over IPv4 at most 2 ms after the 250 ms "
                 "attempt delay (median)",
                 "ms late", late, late <= 2.0);
  bench_tsv_plot(tsv, "he-fallback", "bars", "fallback",
                 "Happy Eyeballs fallback: ms to a connected socket "
                 "(min-max bars)");
  fprintf(out,
          "\ndialtone connected over IPv4 %.2f ms (median; %.2f - %.2f) "
          "after its IPv6 attempt started: the attempt delay plus %.2f ms "
          "(goal: at most 2 ms).\n\n",
          med / 1000.0, after_v6[0] / 1000.0,
          after_v6[FALLBACK_RUNS - 1] / 1000.0, late);
}

/* ---- part 2: overhead of a literal dial ---------------------------------- */

enum { RAW, RAW_TUNED, DT_BARE, DT_DEFAULT, NOVER };

static const char *const over_label[NOVER] = {
    "raw: socket + connect + poll + SO_ERROR",
    "raw + dialtone's default options (5 setsockopt) + blocking fcntl",
    "`dt_dial` literal, options off, non-blocking",
    "`dt_dial` literal, default options, blocking",
};

static void drop(int fd) {
  /* RST instead of TIME_WAIT: thousands of connects would otherwise eat
   * the ephemeral ports. Not timed. */
  struct linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

static uint64_t raw_dial(const struct sockaddr_storage *ss, socklen_t len,
                         bool tuned) {
  uint64_t t0 = now_ns();
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    die("socket");
  }
  if (tuned) {
    int one = 1, idle = 30, intvl = 10, cnt = 3;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
  }
  if (connect(fd, (const struct sockaddr *)ss, len) != 0 &&
      errno != EINPROGRESS) {
    die("connect");
  }
  struct pollfd p = {fd, POLLOUT, 0};
  int err = -1;
  socklen_t el = sizeof(err);
  if (poll(&p, 1, 5000) != 1 ||
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
    die("raw connect");
  }
  if (tuned) {
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  }
  uint64_t t = now_ns() - t0;
  drop(fd);
  return t;
}

static uint64_t dt_dial_once(dt_dialer_t *d, uint16_t port) {
  int fd;
  uint64_t t0 = now_ns();
  if (dt_dial(d, "127.0.0.1", port, 5000, &fd, NULL) != DT_OK) {
    die("dt_dial");
  }
  uint64_t t = now_ns() - t0;
  drop(fd);
  return t;
}

static void overhead(FILE *out) {
  int lfd;
  if (dt_listen(NULL, "127.0.0.1", 0, &lfd) != DT_OK) {
    die("listen");
  }
  uint16_t port;
  dt_listen_get_port(lfd, &port);
  server_t srv;
  server_start(&srv, lfd, false);
  struct sockaddr_storage ss;
  socklen_t len;
  loopback(AF_INET, port, &ss, &len);

  dt_dial_opts_t bare;
  dt_dial_opts_init(&bare);
  bare.nonblocking = true;
  bare.sockopts.nodelay = false;
  bare.sockopts.keepalive = false;
  dt_resolver_t *r1, *r2;
  dt_dialer_t *d_bare = dialer_with_hosts("", &r1, &bare);
  dt_dialer_t *d_def = dialer_with_hosts("", &r2, NULL);

  static uint64_t t[NOVER][OVERHEAD_N];
  for (int warm = 0; warm < OVERHEAD_WARM; warm++) {
    raw_dial(&ss, len, warm % 2);
    dt_dial_once(warm % 2 ? d_bare : d_def, port);
  }
  /* Rounds: each contender once per round, starting with a different one
   * each time, so drift on a shared machine hits all of them alike. */
  for (size_t i = 0; i < OVERHEAD_N; i++) {
    for (int k = 0; k < NOVER; k++) {
      int c = (int)((i + (size_t)k) % NOVER);
      switch (c) {
      case RAW:
        t[c][i] = raw_dial(&ss, len, false);
        break;
      case RAW_TUNED:
        t[c][i] = raw_dial(&ss, len, true);
        break;
      case DT_BARE:
        t[c][i] = dt_dial_once(d_bare, port);
        break;
      default:
        t[c][i] = dt_dial_once(d_def, port);
        break;
      }
    }
  }
  server_stop(&srv);
  dt_dialer_free(d_bare);
  dt_dialer_free(d_def);
  dt_resolver_free(r1);
  dt_resolver_free(r2);

  /* Contenders alternate every round, so the difference within a round
   * is the cost with the machine's drift taken out. */
  static int64_t diff[2][OVERHEAD_N];
  for (size_t i = 0; i < OVERHEAD_N; i++) {
    diff[0][i] = (int64_t)t[DT_BARE][i] - (int64_t)t[RAW][i];
    diff[1][i] = (int64_t)t[DT_DEFAULT][i] - (int64_t)t[RAW_TUNED][i];
  }
  double dmed[2];
  for (int k = 0; k < 2; k++) {
    qsort(diff[k], OVERHEAD_N, sizeof(diff[k][0]), cmp_i64);
    dmed[k] = diff[k][OVERHEAD_N / 2] / 1000.0;
  }
  double med[NOVER], p10[NOVER], p90[NOVER];
  for (int c = 0; c < NOVER; c++) {
    med[c] = median(t[c], OVERHEAD_N) / 1000.0;
    p10[c] = t[c][OVERHEAD_N / 10] / 1000.0;
    p90[c] = t[c][OVERHEAD_N * 9 / 10] / 1000.0;
  }
  /* Two figures, each dialtone against the raw connect doing its work. */
  static const char *const fig[2] = {"literal_bare", "literal_default"};
  static const char *const title[2] = {
      "Dial to 127.0.0.1, no socket options",
      "Dial to 127.0.0.1, dialtone's default socket options"};
  static const int pair[2][2] = {{DT_BARE, RAW}, {DT_DEFAULT, RAW_TUNED}};
  static const char *const plain[NOVER] = {
      "raw connect + poll", "raw connect + poll + the same options",
      "dialtone dt_dial, options off", "dialtone dt_dial, default options"};
  char stat[64];
  snprintf(stat, sizeof(stat), "median of %d connects", OVERHEAD_N);
  for (int f = 0; f < 2; f++) {
    bench_tsv_figure(tsv, fig[f], title[f], "µs", stat, "p10-p90");
    for (int k = 0; k < 2; k++) {
      int c = pair[f][k];
      bench_tsv_row(tsv, BENCH_NO_PARAM, plain[c], k == 0 ? "base" : "alt",
                    med[c], p10[c], p90[c], OVERHEAD_N, NULL);
    }
    double x = med[pair[f][0]] / med[pair[f][1]];
    bench_tsv_goal(tsv, BENCH_NO_PARAM, f == 1,
                   "dt_dial within 10% of the raw connect doing the same work",
                   "× raw", x, x <= 1.10);
  }
  fprintf(out, "## Cost of a dial to an IP literal (127.0.0.1)\n\n");
  fprintf(out,
          "%d rounds of one connect per contender, after %d warm-up "
          "rounds; µs from the first system call to a connected socket "
          "(nanosecond clock).\n\n",
          OVERHEAD_N, OVERHEAD_WARM);
  fprintf(out, "| contender | median µs | p90 µs |\n|---|---|---|\n");
  for (int c = 0; c < NOVER; c++) {
    fprintf(out, "| %s | %.1f | %.1f |\n", over_label[c], med[c], p90[c]);
  }
  fprintf(out,
          "\n`dt_dial` against the raw connect doing the same work: %+.1f%% "
          "bare, %+.1f%% with the default options (goal: within 10%%). "
          "Median difference within a round: %+.2f µs bare (%+.1f%%), "
          "%+.2f µs with the options (%+.1f%%).\n\n",
          100.0 * (med[DT_BARE] - med[RAW]) / med[RAW],
          100.0 * (med[DT_DEFAULT] - med[RAW_TUNED]) / med[RAW_TUNED], dmed[0],
          100.0 * dmed[0] / med[RAW], dmed[1],
          100.0 * dmed[1] / med[RAW_TUNED]);
}

int main(int argc, char **argv) {
  char *buf = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&buf, &len);
  if (out == NULL) {
    die("open_memstream");
  }
  struct utsname u;
  uname(&u);
  char cpu[256] = "unknown";
  FILE *ci = fopen("/proc/cpuinfo", "r");
  if (ci != NULL) {
    char line[512];
    while (fgets(line, sizeof(line), ci) != NULL) {
      if (strncmp(line, "model name", 10) == 0) {
        char *c = strchr(line, ':');
        if (c != NULL) {
          snprintf(cpu, sizeof(cpu), "%s", c + 2);
          cpu[strcspn(cpu, "\n")] = '\0';
        }
        break;
      }
    }
    fclose(ci);
  }
  char curl[128] = "not installed";
  FILE *cv = popen("curl --version 2>/dev/null", "r");
  if (cv != NULL) {
    if (fgets(curl, sizeof(curl), cv) != NULL) {
      size_t n = strcspn(curl, "(\n");
      while (n > 0 && curl[n - 1] == ' ') {
        n--;
      }
      curl[n] = '\0';
    }
    pclose(cv);
  }
  double load[3] = {0, 0, 0};
  FILE *la = fopen("/proc/loadavg", "r");
  if (la == NULL ||
      fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) {
    load[0] = load[1] = load[2] = NAN;
  }
  if (la != NULL) {
    fclose(la);
  }
  tsv = bench_tsv_open(argc > 2 ? argv[2] : NULL, "dial");
  fprintf(out, "# dialtone dial benchmark\n\n");
  fprintf(out,
          "`make bench-dial` (bench/bench_dial.c), one run: Linux %s, "
          "%ld CPUs (%s), dialtone %s, %s; load average %.2f %.2f %.2f "
          "before.\n\n",
          u.release, sysconf(_SC_NPROCESSORS_ONLN), cpu, dt_version(), curl,
          load[0], load[1], load[2]);
  fallback(out);
  overhead(out);
  fclose(out);
  bench_tsv_close(tsv);
  fputs(buf, stdout);
  if (argc > 1) {
    FILE *f = fopen(argv[1], "w");
    if (f == NULL) {
      die(argv[1]);
    }
    fputs(buf, f);
    fclose(f);
  }
  free(buf);
  return 0;
}
