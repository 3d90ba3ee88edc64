/* A load run, not a test (issue 8): 10,000 concurrent pooled connections
 * to one local server, each used for framed requests, none lost, and the
 * descriptor table back to its start count afterwards.
 *
 * A forked child echoes bytes on 127.0.0.1 (an epoll loop: echoing bytes
 * echoes frames). The parent acquires 10,000 connections without
 * releasing any, sends three frames of 16, 1000 and 20000 bytes on each
 * (a pattern of connection index, frame and offset) and checks the echoes
 * byte for byte; releases them all as reusable; acquires 10,000 again,
 * which must all be reuses, with one more round trip each; releases them,
 * frees the pool and counts its descriptors again. The server lives in
 * its own process so that each side needs ~10,000 descriptors rather than
 * one process ~20,000.
 *
 * `make load` runs it. Exit 0: no error, no loss, no leak (or SKIP when
 * the descriptor limit is too low); 1 otherwise. Linux only (epoll,
 * /proc/self/fd). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dialtone.h"

#define CONNS 10000
/* Both processes need CONNS descriptors plus a few. */
#define NOFILE_NEED (CONNS + 300)
#define TIMEOUT_MS 10000
#define MAX_FRAME 20000

static const size_t round1_sizes[] = {16, 1000, 20000};
#define ROUND1_FRAMES (sizeof(round1_sizes) / sizeof(round1_sizes[0]))
#define ROUND2_SIZE 512

/* ---- the echo server (child) -------------------------------------------- */

typedef struct {
  uint8_t *pending; /* echo bytes the socket did not take yet */
  size_t len, off;
} echo_t;

static void echo_close(int ep, echo_t *e, int fd) {
  epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
  close(fd);
  free(e->pending);
  memset(e, 0, sizeof(*e));
}

/* Sends what is pending; false when the peer is gone. */
static bool echo_flush(echo_t *e, int fd) {
  while (e->off < e->len) {
    ssize_t n = send(fd, e->pending + e->off, e->len - e->off, MSG_NOSIGNAL);
    if (n < 0) {
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
    e->off += (size_t)n;
  }
  free(e->pending);
  e->pending = NULL;
  e->len = e->off = 0;
  return true;
}

static void set_events(int ep, int fd, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

/* Echoes until the control pipe closes (the parent is done or dead). A
 * connection with unsent echo stops being read until it drains. */
static int echo_server(int lfd, int ctl, int maxfd) {
  static uint8_t buf[65536];
  echo_t *conns = calloc((size_t)maxfd, sizeof(*conns));
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (conns == NULL || ep < 0) {
    return 1;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  ev.data.fd = ctl;
  epoll_ctl(ep, EPOLL_CTL_ADD, ctl, &ev);
  fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int k = 0; k < n; k++) {
      int fd = evs[k].data.fd;
      if (fd == ctl) {
        return 0;
      }
      if (fd == lfd) {
        int c;
        while ((c = accept(lfd, NULL, NULL)) >= 0) {
          if (c >= maxfd) {
            close(c);
            continue;
          }
          fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      echo_t *e = &conns[fd];
      if (e->pending != NULL) {
        if (!echo_flush(e, fd)) {
          echo_close(ep, e, fd);
        } else if (e->pending == NULL) {
          set_events(ep, fd, EPOLLIN);
        }
        continue;
      }
      ssize_t r = recv(fd, buf, sizeof(buf), 0);
      if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
        echo_close(ep, e, fd);
        continue;
      }
      if (r < 0) {
        continue;
      }
      ssize_t w = send(fd, buf, (size_t)r, MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        echo_close(ep, e, fd);
        continue;
      }
      size_t sent = w < 0 ? 0 : (size_t)w;
      if (sent < (size_t)r) {
        e->pending = malloc((size_t)r - sent);
        if (e->pending == NULL) {
          echo_close(ep, e, fd);
          continue;
        }
        memcpy(e->pending, buf + sent, (size_t)r - sent);
        e->len = (size_t)r - sent;
        e->off = 0;
        set_events(ep, fd, EPOLLOUT);
      }
    }
  }
}

/* ---- the client (parent) ------------------------------------------------- */

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) {
    return -1;
  }
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] != '.') {
      n++;
    }
  }
  closedir(d);
  return n - 1; /* opendir's own */
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Payload of frame f of round r on connection i: its identity in the
 * first bytes, then bytes that depend on all three and the offset. */
static void fill(uint8_t *p, size_t len, unsigned i, unsigned r, unsigned f) {
  uint8_t id[8] = {(uint8_t)(i >> 24),  (uint8_t)(i >> 16), (uint8_t)(i >> 8),
                   (uint8_t)i,          (uint8_t)r,         (uint8_t)f,
                   (uint8_t)(len >> 8), (uint8_t)len};
  for (size_t k = 0; k < len; k++) {
    p[k] = k < sizeof(id) ? id[k] : (uint8_t)(i * 131u + r * 29u + f * 17u + k);
  }
}

typedef struct {
  unsigned long frames, bytes, errors;
} tally_t;

static void fail(tally_t *t, unsigned i, const char *what, dt_status_t st) {
  if (t->errors++ < 10) {
    fprintf(stderr, "load_pool: connection %u: %s: %s\n", i, what,
            dt_status_name(st));
  }
}

/* Writes the frames, flushes once, reads the echoes back and compares
 * them; false on any error (the connection must not be reused). */
static bool round_trip(dt_conn_t *c, unsigned i, unsigned r,
                       const size_t *sizes, size_t nframes, uint8_t *out,
                       uint8_t *in, tally_t *t) {
  for (size_t f = 0; f < nframes; f++) {
    fill(out, sizes[f], i, r, (unsigned)f);
    dt_status_t st = dt_frame_write(c, out, sizes[f], TIMEOUT_MS);
    if (st != DT_OK) {
      fail(t, i, "dt_frame_write", st);
      return false;
    }
  }
  dt_status_t st = dt_flush(c, TIMEOUT_MS);
  if (st != DT_OK) {
    fail(t, i, "dt_flush", st);
    return false;
  }
  for (size_t f = 0; f < nframes; f++) {
    size_t len = 0;
    st = dt_frame_read_into(c, in, MAX_FRAME, &len, TIMEOUT_MS);
    if (st != DT_OK) {
      fail(t, i, "dt_frame_read_into", st);
      return false;
    }
    fill(out, sizes[f], i, r, (unsigned)f);
    if (len != sizes[f] || memcmp(in, out, len) != 0) {
      fail(t, i, "echoed frame differs", DT_OK);
      return false;
    }
    t->frames++;
    t->bytes += len;
  }
  return true;
}

static dt_pool_stats_t stats(dt_pool_t *p) {
  dt_pool_stats_t s;
  dt_pool_get_stats(p, &s);
  return s;
}

int main(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    perror("load_pool: getrlimit");
    return 1;
  }
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < NOFILE_NEED) {
    printf("SKIP load_pool: RLIMIT_NOFILE hard limit %llu is below %d: "
           "10,000 concurrent connections not run\n",
           (unsigned long long)rl.rlim_max, NOFILE_NEED);
    return 0;
  }
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    perror("load_pool: setrlimit");
    return 1;
  }
  int maxfd = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1048576
                  ? 1048576
                  : (int)rl.rlim_cur;

  /* The start count: before the server, the pipe and the pool. */
  int fds0 = count_fds();

  dt_listen_opts_t lo;
  dt_listen_opts_init(&lo);
  int lfd = -1;
  uint16_t port = 0;
  if (dt_listen(&lo, "127.0.0.1", 0, &lfd) != DT_OK ||
      dt_listen_get_port(lfd, &port) != DT_OK) {
    fprintf(stderr, "load_pool: cannot listen on 127.0.0.1\n");
    return 1;
  }
  /* The child stops when this pipe closes, even if the parent dies. */
  int ctl[2];
  if (pipe(ctl) != 0) {
    perror("load_pool: pipe");
    return 1;
  }
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    perror("load_pool: fork");
    return 1;
  }
  if (pid == 0) {
    close(ctl[1]);
    _exit(echo_server(lfd, ctl[0], maxfd));
  }
  close(ctl[0]);
  close(lfd);

  dt_pool_opts_t o;
  dt_pool_opts_init(&o);
  o.max_idle_per_dest = CONNS;
  o.max_idle_total = CONNS;
  o.idle_timeout_ms = 0;
  /* Every idle connection keeps its buffers: 4 KiB each way, not 64. */
  o.conn.read_buffer_size = 4096;
  o.conn.write_buffer_size = 4096;
  dt_pool_t *p = NULL;
  if (dt_pool_new(&o, &p) != DT_OK) {
    fprintf(stderr, "load_pool: dt_pool_new failed\n");
    return 1;
  }
  dt_conn_t **cs = calloc(CONNS, sizeof(*cs));
  uint8_t *out = malloc(MAX_FRAME), *in = malloc(MAX_FRAME);
  if (cs == NULL || out == NULL || in == NULL) {
    fprintf(stderr, "load_pool: out of memory\n");
    return 1;
  }
  tally_t t = {0, 0, 0};
  unsigned long lost = 0, not_reused = 0;
  printf("load_pool: %d concurrent pooled connections to 127.0.0.1:%u, "
         "frames of 16, 1000 and 20000 bytes, then %d bytes on reuse\n",
         CONNS, (unsigned)port, ROUND2_SIZE);
  fflush(stdout);
  double t0 = now_s();

  /* Round 1: every connection acquired before any is released. */
  for (unsigned i = 0; i < CONNS; i++) {
    dt_status_t st = dt_pool_acquire(p, "127.0.0.1", port, TIMEOUT_MS, &cs[i]);
    if (st != DT_OK) {
      fail(&t, i, "dt_pool_acquire (dial)", st);
      cs[i] = NULL;
    }
  }
  double t_dial = now_s() - t0;
  int fds_peak = count_fds();
  dt_pool_stats_t s1 = stats(p);
  for (unsigned i = 0; i < CONNS; i++) {
    if (cs[i] != NULL &&
        !round_trip(cs[i], i, 1, round1_sizes, ROUND1_FRAMES, out, in, &t)) {
      dt_pool_release(p, cs[i], false);
      cs[i] = NULL;
    }
  }
  for (unsigned i = 0; i < CONNS; i++) {
    if (cs[i] != NULL) {
      dt_pool_release(p, cs[i], true);
      cs[i] = NULL;
    }
  }
  dt_pool_stats_t s2 = stats(p);
  double t1 = now_s();

  /* Round 2: all 10,000 again, every one a reuse. */
  for (unsigned i = 0; i < CONNS; i++) {
    dt_status_t st = dt_pool_acquire(p, "127.0.0.1", port, TIMEOUT_MS, &cs[i]);
    if (st != DT_OK) {
      fail(&t, i, "dt_pool_acquire (reuse)", st);
      cs[i] = NULL;
      continue;
    }
    dt_pool_conn_info_t info;
    if (dt_pool_conn_get_info(cs[i], &info) != DT_OK || !info.reused) {
      not_reused++;
    }
  }
  for (unsigned i = 0; i < CONNS; i++) {
    const size_t size = ROUND2_SIZE;
    if (cs[i] != NULL && !round_trip(cs[i], i, 2, &size, 1, out, in, &t)) {
      dt_pool_release(p, cs[i], false);
      cs[i] = NULL;
    }
  }
  for (unsigned i = 0; i < CONNS; i++) {
    if (cs[i] != NULL) {
      dt_pool_release(p, cs[i], true);
    }
  }
  double t_end = now_s();
  dt_pool_stats_t s3 = stats(p);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);

  dt_pool_free(p);
  free(cs);
  free(out);
  free(in);
  /* Every pooled descriptor is closed; only the control pipe is left. */
  int fds_pool_freed = count_fds();
  close(ctl[1]);
  int status = 0;
  bool child_ok = waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
                  WEXITSTATUS(status) == 0;
  struct rusage ruc;
  getrusage(RUSAGE_CHILDREN, &ruc);
  int fds1 = count_fds();

  unsigned long expect_frames = CONNS * (ROUND1_FRAMES + 1);
  lost = expect_frames - t.frames;
  unsigned long round2_reuses = (unsigned long)(s3.reuses - s2.reuses);
  bool ok = t.errors == 0 && lost == 0 && s1.dials == CONNS &&
            s1.dial_failures == 0 && s3.dials == CONNS &&
            round2_reuses == CONNS && not_reused == 0 && s3.active == 0 &&
            s3.idle == CONNS && fds_peak == fds0 + 1 + CONNS &&
            fds_pool_freed == fds0 + 1 && fds1 == fds0 && child_ok;

  printf("load_pool: connections %d concurrent (descriptors while held: "
         "%d = start %d + control pipe + %d)\n",
         CONNS, fds_peak, fds0, fds_peak - fds0 - 1);
  printf("load_pool: frames %lu of %lu echoed intact, %lu payload bytes "
         "each way\n",
         t.frames, expect_frames, t.bytes);
  printf("load_pool: errors %lu, lost frames %lu, round-2 acquires not "
         "reused %lu\n",
         t.errors, lost, not_reused);
  printf("load_pool: dials %llu (failures %llu), reuses %llu (round 2: "
         "%lu), idle %llu, active %llu at the end\n",
         (unsigned long long)s3.dials, (unsigned long long)s3.dial_failures,
         (unsigned long long)s3.reuses, round2_reuses,
         (unsigned long long)s3.idle, (unsigned long long)s3.active);
  printf("load_pool: wall %.2f s (dial %d: %.2f s; round 1 with dials "
         "%.2f s; round 2 on reuse %.2f s)\n",
         t_end - t0, CONNS, t_dial, t1 - t0, t_end - t1);
  printf("load_pool: descriptors %d before, %d after (server stopped %s)\n",
         fds0, fds1, child_ok ? "cleanly" : "BADLY");
  printf("load_pool: peak RSS %ld KB client, %ld KB echo server\n",
         ru.ru_maxrss, ruc.ru_maxrss);
  printf("load_pool: %s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
