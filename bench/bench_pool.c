/* bench_pool: what a pool of connections saves, in one run on one machine.
 * Not a test: it prints Markdown (and writes it to the file named by its
 * argument, if any).
 *
 * A server thread answers every 16-byte request with 16 bytes, on
 * 127.0.0.1, one listener (so one port) per contender, which lets the
 * TIME_WAIT entries each leaves behind be counted apart. Contenders:
 *
 * 1. raw reused: one socket, write 16 / read 16 in a loop (the ceiling);
 * 2. pooled: dt_pool_acquire(), the request through dt_conn_t, then
 *    dt_pool_release(), every request;
 * 3. fresh dialtone: dt_dial() + dt_conn_new() + request + dt_conn_free();
 * 4. raw fresh: socket() + connect() + request + close().
 *
 * All of them (and 2 again with a deadline on every dt_conn call) take
 * turns in time slices, so that drift on a shared machine hits them alike. Then
 * the cost of an acquire+release hit (health check included) and of the health
 * check's recv(MSG_PEEK) alone, in nanoseconds.
 *
 * `make bench-pool` runs it under `taskset -c 0`: client and server share
 * one CPU, as in the issue's own figures. Uses the public API only.
 *
 * usage: bench_pool [MARKDOWN [TSV]]: the TSV gets the same figures, for
 * bench/report.sh. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "benchtsv.h"
#include "dialtone.h"

/* Many short turns rather than a few long ones: on a shared machine, load
 * from elsewhere comes in bursts that would otherwise land on one
 * contender. About 8 s in all. */
#define SLICES 16
#define SLICE_US 125000u /* per turn of a reused-connection contender */
#define FRESH_US                                                               \
  62500u             /* per turn of a fresh-connection contender: 1 s          \
                        in all, a few thousand connections, well inside        \
                        the ephemeral port range */
#define HIT_N 200000 /* acquire+release hits timed one by one */
#define MSG 16

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void die(const char *what) {
  fprintf(stderr, "bench_pool: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void die_st(const char *what, dt_status_t st) {
  fprintf(stderr, "bench_pool: %s: %s\n", what, dt_strerror(st));
  exit(1);
}

/* ---- the server ---------------------------------------------------------- */

/* One epoll thread for every listener and connection; level-triggered, so
 * a blocking read after EPOLLIN never blocks. Requests are echoed. */
#define MAXFD 65536

typedef struct {
  int ep;
  int stop[2];
  pthread_t th;
} server_t;

static uint8_t have[MAXFD];
static uint8_t buf[MAXFD][MSG];
static bool is_listener[MAXFD];

static void *server_main(void *arg) {
  server_t *s = arg;
  struct epoll_event evs[64];
  for (;;) {
    int n = epoll_wait(s->ep, evs, 64, -1);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == s->stop[0]) {
        return NULL;
      }
      if (is_listener[fd]) {
        int c = accept(fd, NULL, NULL);
        if (c < 0 || c >= MAXFD) {
          if (c >= 0) {
            close(c);
          }
          continue;
        }
        have[c] = 0;
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, c, &ev) != 0) {
          die("epoll_ctl");
        }
        continue;
      }
      ssize_t r = read(fd, buf[fd] + have[fd], MSG - have[fd]);
      if (r <= 0) {
        /* Closing removes it from the epoll set. */
        close(fd);
        continue;
      }
      have[fd] = (uint8_t)(have[fd] + r);
      if (have[fd] == MSG) {
        have[fd] = 0;
        if (write(fd, buf[fd], MSG) != MSG) {
          close(fd);
        }
      }
    }
  }
}

static void server_start(server_t *s) {
  s->ep = epoll_create1(0);
  if (s->ep < 0 || pipe(s->stop) != 0) {
    die("server");
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = s->stop[0]};
  if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->stop[0], &ev) != 0) {
    die("epoll_ctl");
  }
  if (pthread_create(&s->th, NULL, server_main, s) != 0) {
    die("pthread_create");
  }
}

/* A new listener on 127.0.0.1 served by s; returns its port. */
static uint16_t server_listen(server_t *s) {
  int fd = -1;
  uint16_t port = 0;
  dt_status_t st = dt_listen(NULL, "127.0.0.1", 0, &fd);
  if (st != DT_OK || dt_listen_get_port(fd, &port) != DT_OK) {
    die_st("dt_listen", st);
  }
  is_listener[fd] = true;
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
    die("epoll_ctl");
  }
  return port;
}

static void server_stop(server_t *s) {
  if (write(s->stop[1], "x", 1) != 1) {
    die("write");
  }
  pthread_join(s->th, NULL);
}

/* ---- TIME_WAIT ----------------------------------------------------------- */

/* Sockets in TIME_WAIT (state 06 in /proc/net/tcp) on either side of a
 * connection to 127.0.0.1:port. */
static unsigned time_wait(uint16_t port) {
  FILE *f = fopen("/proc/net/tcp", "r");
  if (f == NULL) {
    return 0;
  }
  char line[512];
  unsigned n = 0;
  while (fgets(line, sizeof(line), f) != NULL) {
    unsigned lport, rport, state;
    if (sscanf(line, " %*u: %*8x:%x %*8x:%x %x", &lport, &rport, &state) == 3 &&
        state == 6 && (lport == port || rport == port)) {
      n++;
    }
  }
  fclose(f);
  return n;
}

/* ---- contenders ---------------------------------------------------------- */

static const uint8_t request[MSG] = "0123456789abcdef";

static int raw_connect(uint16_t port) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    die("connect");
  }
  return fd;
}

static void raw_request(int fd) {
  uint8_t resp[MSG];
  if (write(fd, request, MSG) != MSG) {
    die("write");
  }
  size_t got = 0;
  while (got < MSG) {
    ssize_t r = read(fd, resp + got, MSG - got);
    if (r <= 0) {
      die("read");
    }
    got += (size_t)r;
  }
}

/* One request through the connection's buffers. timeout_ms -1 on a
 * blocking socket makes the same system calls as raw_request(); with a
 * deadline, dt_conn reads with MSG_DONTWAIT and poll()s when the reply is
 * not there yet, which on one CPU it never is. */
static void conn_request(dt_conn_t *c, int timeout_ms) {
  uint8_t resp[MSG];
  dt_status_t st = dt_conn_write(c, request, MSG, timeout_ms);
  if (st == DT_OK) {
    st = dt_flush(c, timeout_ms);
  }
  size_t got = 0;
  while (st == DT_OK && got < MSG) {
    size_t n = 0;
    st = dt_conn_read(c, resp + got, MSG - got, &n, timeout_ms);
    got += n;
  }
  if (st != DT_OK) {
    die_st("request", st);
  }
}

/* Requests over fd until the slice ends; returns how many. */
static uint64_t slice_raw(int fd, uint64_t ns) {
  uint64_t n = 0, end = now_ns() + ns;
  do {
    raw_request(fd);
    n++;
  } while ((n & 63) != 0 || now_ns() < end);
  return n;
}

static uint64_t slice_pooled(dt_pool_t *p, uint16_t port, uint64_t ns,
                             int timeout_ms) {
  uint64_t n = 0, end = now_ns() + ns;
  do {
    dt_conn_t *c = NULL;
    dt_status_t st = dt_pool_acquire(p, "127.0.0.1", port, 5000, &c);
    if (st != DT_OK) {
      die_st("dt_pool_acquire", st);
    }
    conn_request(c, timeout_ms);
    dt_pool_release(p, c, true);
    n++;
  } while ((n & 63) != 0 || now_ns() < end);
  return n;
}

static uint64_t slice_fresh_dialtone(dt_dialer_t *d, uint16_t port,
                                     uint64_t ns) {
  uint64_t n = 0, end = now_ns() + ns;
  do {
    int fd = -1;
    dt_status_t st = dt_dial(d, "127.0.0.1", port, 5000, &fd, NULL);
    if (st != DT_OK) {
      die_st("dt_dial", st);
    }
    dt_conn_t *c = NULL;
    if ((st = dt_conn_new(fd, NULL, &c)) != DT_OK) {
      die_st("dt_conn_new", st);
    }
    conn_request(c, -1);
    dt_conn_free(c);
    n++;
  } while (now_ns() < end);
  return n;
}

static uint64_t slice_fresh_raw(uint16_t port, uint64_t ns) {
  uint64_t n = 0, end = now_ns() + ns;
  do {
    int fd = raw_connect(port);
    raw_request(fd);
    close(fd);
    n++;
  } while (now_ns() < end);
  return n;
}

/* Requests per second of each slice of one contender, and their median:
 * the figure, so that a burst of load from elsewhere moves one slice and
 * not the result. */
typedef struct {
  double rate[SLICES];
  uint64_t requests;
  double median, min, max;
} rps_t;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void rps_add(rps_t *r, int slice, uint64_t n, uint64_t ns) {
  r->rate[slice] = (double)n / ((double)ns / 1e9);
  r->requests += n;
}

static void rps_done(rps_t *r) {
  qsort(r->rate, SLICES, sizeof(r->rate[0]), cmp_double);
  r->median = (r->rate[SLICES / 2 - 1] + r->rate[SLICES / 2]) / 2;
  r->min = r->rate[0];
  r->max = r->rate[SLICES - 1];
}

/* Sorts v in place; its p-th percentile. */
static uint64_t pct(uint64_t *v, size_t n, unsigned p) {
  qsort(v, n, sizeof(*v), cmp_u64);
  return v[(n - 1) * p / 100];
}

/* ---- report -------------------------------------------------------------- */

static char out[16384];
static size_t outlen;

static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void emit(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out + outlen, sizeof(out) - outlen, fmt, ap);
  va_end(ap);
  if (n > 0) {
    outlen += (size_t)n < sizeof(out) - outlen ? (size_t)n : 0;
  }
}

static void loadavg(char *dst, size_t len) {
  FILE *f = fopen("/proc/loadavg", "r");
  double a = 0, b = 0, c = 0;
  if (f != NULL && fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3) {
    snprintf(dst, len, "%.2f %.2f %.2f", a, b, c);
  } else {
    snprintf(dst, len, "?");
  }
  if (f != NULL) {
    fclose(f);
  }
}

static void cpu_model(char *dst, size_t len) {
  snprintf(dst, len, "?");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (f == NULL) {
    return;
  }
  char line[256];
  while (fgets(line, sizeof(line), f) != NULL) {
    char *colon = strchr(line, ':');
    if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
      snprintf(dst, len, "%s", colon + 2);
      dst[strcspn(dst, "\n")] = '\0';
      break;
    }
  }
  fclose(f);
}

/* The CPUs this process may run on, as /proc/self/status says. */
static void affinity(char *dst, size_t len) {
  snprintf(dst, len, "?");
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) {
    return;
  }
  char line[256];
  while (fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, "Cpus_allowed_list:", 18) == 0) {
      snprintf(dst, len, "%s", line + 18 + strspn(line + 18, " \t"));
      dst[strcspn(dst, "\n")] = '\0';
      break;
    }
  }
  fclose(f);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  char load0[64], load1[64], cpu[128], cpus[64];
  loadavg(load0, sizeof(load0));
  cpu_model(cpu, sizeof(cpu));
  affinity(cpus, sizeof(cpus));

  server_t srv;
  server_start(&srv);
  dt_dial_opts_t dopts;
  dt_dial_opts_init(&dopts);
  dt_resolver_opts_t ropts;
  dt_resolver_opts_init(&ropts);
  const char *servers[] = {"127.0.0.1:53"};
  ropts.servers = servers; /* never asked: every host is an IP literal */
  ropts.nservers = 1;
  ropts.hosts = "";
  dt_resolver_t *r = NULL;
  dt_dialer_t *d = NULL;
  dt_pool_t *p = NULL;
  dt_status_t st = dt_resolver_new(&ropts, &r);
  if (st == DT_OK) {
    dopts.resolver = r;
    st = dt_dialer_new(&dopts, &d);
  }
  dt_pool_opts_t popts;
  dt_pool_opts_init(&popts);
  popts.dialer = d;
  if (st == DT_OK) {
    st = dt_pool_new(&popts, &p);
  }
  if (st != DT_OK) {
    die_st("setup", st);
  }

  /* Every contender, in turns. */
  uint16_t port_raw = server_listen(&srv);
  uint16_t port_pool = server_listen(&srv);
  uint16_t port_dt = server_listen(&srv);
  uint16_t port_fresh = server_listen(&srv);
  int fd = raw_connect(port_raw);
  for (int i = 0; i < 2000; i++) { /* warm-up: caches, the pool's dial */
    raw_request(fd);
  }
  (void)slice_pooled(p, port_pool, 50000000u, -1);
  enum { C_RAW, C_POOL, C_DL, C_DT, C_FRESH, NC };
  static rps_t rps[NC];
  for (int s = 0; s < SLICES; s++) {
    uint64_t t0 = now_ns();
    uint64_t n = slice_raw(fd, SLICE_US * 1000ull);
    uint64_t t1 = now_ns();
    rps_add(&rps[C_RAW], s, n, t1 - t0);
    n = slice_pooled(p, port_pool, SLICE_US * 1000ull, -1);
    t0 = now_ns();
    rps_add(&rps[C_POOL], s, n, t0 - t1);
    n = slice_pooled(p, port_pool, SLICE_US * 1000ull, 5000);
    t1 = now_ns();
    rps_add(&rps[C_DL], s, n, t1 - t0);
    n = slice_fresh_dialtone(d, port_dt, FRESH_US * 1000ull);
    t0 = now_ns();
    rps_add(&rps[C_DT], s, n, t0 - t1);
    n = slice_fresh_raw(port_fresh, FRESH_US * 1000ull);
    rps_add(&rps[C_FRESH], s, n, now_ns() - t0);
  }
  close(fd);
  for (int c = 0; c < NC; c++) {
    rps_done(&rps[c]);
  }
  double rps_raw = rps[C_RAW].median;
  double rps_pool = rps[C_POOL].median;
  double rps_dt = rps[C_DT].median;
  double rps_fresh = rps[C_FRESH].median;
  dt_pool_stats_t ps;
  dt_pool_get_stats(p, &ps);
  unsigned tw_pool = time_wait(port_pool);
  unsigned tw_dt = time_wait(port_dt);
  unsigned tw_fresh = time_wait(port_fresh);

  /* The cost of a hit, and of the health check inside it. */
  uint64_t *hit = malloc(HIT_N * sizeof(*hit));
  uint64_t *peek = malloc(HIT_N * sizeof(*peek));
  if (hit == NULL || peek == NULL) {
    die("malloc");
  }
  for (int i = 0; i < HIT_N; i++) {
    dt_conn_t *c = NULL;
    uint64_t t0 = now_ns();
    st = dt_pool_acquire(p, "127.0.0.1", port_pool, 5000, &c);
    dt_pool_release(p, c, true);
    hit[i] = now_ns() - t0;
    if (st != DT_OK) {
      die_st("hit", st);
    }
  }
  int idle = raw_connect(port_raw);
  for (int i = 0; i < HIT_N; i++) {
    char b;
    uint64_t t0 = now_ns();
    ssize_t rc = recv(idle, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    peek[i] = now_ns() - t0;
    if (rc >= 0 || errno != EAGAIN) {
      die("peek");
    }
  }
  close(idle);
  uint64_t hit50 = pct(hit, HIT_N, 50), hit90 = pct(hit, HIT_N, 90);
  uint64_t hit10 = pct(hit, HIT_N, 10);
  uint64_t peek50 = pct(peek, HIT_N, 50), peek90 = pct(peek, HIT_N, 90);
  uint64_t peek10 = pct(peek, HIT_N, 10);
  dt_pool_free(p);
  dt_dialer_free(d);
  dt_resolver_free(r);
  server_stop(&srv);
  loadavg(load1, sizeof(load1));

  struct utsname u;
  uname(&u);
  emit("# dialtone pool benchmark\n\n");
  emit("`make bench-pool` (bench/bench_pool.c), one run: Linux %s, %ld CPUs "
       "(%s), dialtone %s. Client and server threads allowed on CPUs %s; "
       "load average %s before, %s after.\n\n",
       u.release, sysconf(_SC_NPROCESSORS_ONLN), cpu, dt_version(), cpus, load0,
       load1);
  emit("## Requests per second, 16-byte request, 16-byte response, "
       "127.0.0.1\n\n");
  static const char *const label[NC] = {
      [C_RAW] = "raw socket, one connection reused",
      [C_POOL] = "dialtone pool: acquire, request, release",
      [C_DL] = "the same, every dt_conn call with a 5 s deadline",
      [C_DT] = "dialtone, fresh `dt_dial` + `dt_conn` per request",
      [C_FRESH] = "raw socket + connect + close per request"};
  static const char *const plain[NC] = {
      [C_RAW] = "raw socket, one connection reused",
      [C_POOL] = "dialtone pool",
      [C_DL] = "dialtone pool, 5 s deadline per call",
      [C_DT] = "dialtone, fresh dt_dial per request",
      [C_FRESH] = "raw connect + close per request"};
  static const char *const kind[NC] = {[C_RAW] = "alt",
                                       [C_POOL] = "base",
                                       [C_DL] = "dialtone",
                                       [C_DT] = "dialtone",
                                       [C_FRESH] = "alt"};
  unsigned tw[NC] = {[C_RAW] = 0,
                     [C_POOL] = tw_pool,
                     [C_DL] = tw_pool,
                     [C_DT] = tw_dt,
                     [C_FRESH] = tw_fresh};
  emit("| contender | requests | requests/s, median of %d slices | min - max "
       "| TIME_WAIT after |\n",
       SLICES);
  emit("|---|---|---|---|---|\n");
  for (int c = 0; c < NC; c++) {
    emit("| %s | %llu | %.0f | %.0f - %.0f | %u |\n", label[c],
         (unsigned long long)rps[c].requests, rps[c].median, rps[c].min,
         rps[c].max, tw[c]);
  }
  emit("\n");
  emit("The contenders took turns in %d rounds: %.3f s slices for the "
       "three over one connection, %.4f s for the two that connect per "
       "request. TIME_WAIT entries are counted on the contender's own port "
       "(Linux may reuse some on loopback before counting, net.ipv4."
       "tcp_tw_reuse). The pool dialed %llu connection(s) for its %llu "
       "acquires. Requests "
       "through dt_conn use blocking calls without a deadline (timeout -1), "
       "which make the same system calls as the raw loop; with a deadline "
       "dt_conn reads with MSG_DONTWAIT and poll()s when the reply is not "
       "in yet, which costs two system calls more per request when client "
       "and server share a CPU. The fresh dialtone contender uses "
       "blocking calls too.\n\n",
       SLICES, SLICE_US / 1e6, FRESH_US / 1e6, (unsigned long long)ps.dials,
       (unsigned long long)ps.acquires);
  emit("Each slice's requests per second is one measurement; the figure is "
       "their median, the ratios below are taken between medians.\n\n");
  emit("## Cost of a hit\n\n");
  emit("%d rounds, each timed alone (nanosecond clock, ~20 ns of it the "
       "clock).\n\n",
       HIT_N);
  emit("| operation | median ns | p90 ns |\n|---|---|---|\n");
  emit("| `dt_pool_acquire` (hit, health check included) + "
       "`dt_pool_release` | %llu | %llu |\n",
       (unsigned long long)hit50, (unsigned long long)hit90);
  emit("| the health check alone: `recv(MSG_PEEK \\| MSG_DONTWAIT)` on an "
       "idle socket | %llu | %llu |\n\n",
       (unsigned long long)peek50, (unsigned long long)peek90);
  emit("## Goals (issue 6)\n\n");
  emit("| goal | measured | met |\n|---|---|---|\n");
  emit("| pooled >= 0.9x one raw reused connection | %.2fx | %s |\n",
       rps_pool / rps_raw, rps_pool >= 0.9 * rps_raw ? "yes" : "no");
  emit("| pooled >= 4x a fresh dialtone connection per request | %.1fx | "
       "%s |\n",
       rps_pool / rps_dt, rps_pool >= 4 * rps_dt ? "yes" : "no");
  emit("| (for reference: one raw reused connection against a raw connect "
       "per request) | %.1fx | |\n",
       rps_raw / rps_fresh);
  emit("| no TIME_WAIT growth while pooled | %u | %s |\n", tw_pool,
       tw_pool == 0 ? "yes" : "no");
  emit("| acquire+release under 2 us, health check included | %.2f us | "
       "%s |\n",
       hit50 / 1000.0, hit50 < 2000 ? "yes" : "no");
  free(hit);
  free(peek);

  bench_tsv_t *t = bench_tsv_open(argc > 2 ? argv[2] : NULL, "pool");
  char stat[64];
  snprintf(stat, sizeof(stat), "median of %d time slices", SLICES);
  bench_tsv_figure(t, "rps",
                   "Requests/s, 16-byte request and response over "
                   "127.0.0.1, client and server on one CPU",
                   "requests/s", stat, "min-max");
  for (int c = 0; c < NC; c++) {
    bench_tsv_row(t, BENCH_NO_PARAM, plain[c], kind[c], rps[c].median,
                  rps[c].min, rps[c].max, SLICES, NULL);
  }
  bench_tsv_goal(t, BENCH_NO_PARAM, true,
                 "pooled at least 0.9× one raw reused connection",
                 "× raw reused", rps_pool / rps_raw, rps_pool >= 0.9 * rps_raw);
  bench_tsv_goal(t, BENCH_NO_PARAM, true,
                 "pooled at least 4× a fresh dialtone connection per request",
                 "× fresh", rps_pool / rps_dt, rps_pool >= 4 * rps_dt);
  bench_tsv_plot(t, "pool-rps", "bars", "rps",
                 "Requests/s over pooled and fresh connections (min-max "
                 "bars)");
  bench_tsv_figure(t, "time_wait", "TIME_WAIT entries left after the run",
                   "entries", "count after the run", "-");
  for (int c = C_POOL; c < NC; c++) {
    if (c != C_DL) {
      bench_tsv_row(t, BENCH_NO_PARAM, plain[c], kind[c], tw[c], NAN, NAN, 1,
                    NULL);
    }
  }
  bench_tsv_goal(t, BENCH_NO_PARAM, false, "no TIME_WAIT growth while pooled",
                 "entries", tw_pool, tw_pool == 0);
  snprintf(stat, sizeof(stat), "median of %d, each timed alone", HIT_N);
  bench_tsv_figure(t, "hit",
                   "Pool hit: dt_pool_acquire + dt_pool_release, health "
                   "check included",
                   "ns", stat, "p10-p90");
  bench_tsv_row(t, BENCH_NO_PARAM, "dialtone acquire + release", "base",
                (double)hit50, (double)hit10, (double)hit90, HIT_N, NULL);
  bench_tsv_row(t, BENCH_NO_PARAM, "health check alone: recv(MSG_PEEK)", "ref",
                (double)peek50, (double)peek10, (double)peek90, HIT_N, NULL);
  bench_tsv_goal(t, BENCH_NO_PARAM, true,
                 "acquire + release under 2 µs, health check included", "ns",
                 (double)hit50, hit50 < 2000);
  bench_tsv_close(t);

  fputs(out, stdout);
  if (argc > 1) {
    FILE *f = fopen(argv[1], "w");
    if (f == NULL || fputs(out, f) < 0 || fclose(f) != 0) {
      die(argv[1]);
    }
  }
  return 0;
}
