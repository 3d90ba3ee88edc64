/*
 * echo_server: a framed echo server. Every frame a client sends (a 4-byte
 * big-endian length, then the payload) comes back unchanged.
 *
 * What it shows: one SO_REUSEPORT listener per thread on the same address
 * and port, so the kernel spreads new connections over the threads' own
 * accept queues; each thread runs a poll() loop over its listener and its
 * connections; dt_conn_t buffers both directions, so a burst of small
 * frames costs a couple of system calls, not two per frame.
 *
 * Build, after `make install`:
 *   cc -o echo_server echo_server.c $(pkg-config --cflags --libs dialtone) \
 *     -lpthread
 * Run:
 *   ./echo_server -p 7000 -t 4
 * then talk to it with rpc_client (examples/rpc_client.c):
 *   ./rpc_client -n 10 127.0.0.1 7000
 * Stop it with Ctrl-C or SIGTERM: it prints what each thread served.
 *
 * Options:
 *   -a ADDR  address to listen on (default 127.0.0.1; "::" for every
 *            address of both families)
 *   -p PORT  port (default 0: the kernel picks one; it is printed)
 *   -t N     threads, each with its own listener (default 2)
 *
 * Once listening it prints "echo_server: listening on ADDR#PORT with N
 * threads" on stdout. Frames are at most 64 KiB - 4 bytes, so that every
 * frame fits in a connection's read buffer and a thread never waits for
 * the rest of one: a larger frame closes its connection. Exit status: 0
 * after a signal, 1 bad usage, 2 when the server cannot start.
 */
#define _POSIX_C_SOURCE 200809L

#include <dialtone.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_THREADS 64
/* Connections one thread serves at once; more wait in its accept queue. */
#define MAX_CONNS 256
/* A client that stops reading holds its thread this long at most. */
#define WRITE_TIMEOUT_MS 5000
#define BUFFER_SIZE 65536

typedef struct {
  pthread_t thread;
  int id;
  int listen_fd;
  unsigned long connections;
  unsigned long frames;
} worker_t;

/* Written by the signal handler; every thread polls its read end, which
 * stays readable, so one byte stops them all. */
static int stop_pipe[2] = {-1, -1};

static void on_signal(int sig) {
  (void)sig;
  int saved = errno;
  (void)!write(stop_pipe[1], "x", 1);
  errno = saved;
}

static void usage(void) {
  fprintf(stderr, "usage: echo_server [-a ADDR] [-p PORT] [-t THREADS]\n");
}

/* Echoes every complete frame buffered on c. Returns false when the
 * connection is done (closed by the client, or failed). */
static bool serve(worker_t *w, dt_conn_t *c) {
  for (;;) {
    const uint8_t *payload;
    size_t len;
    /* Timeout 0: take what has arrived, never wait for more. A frame
     * still incomplete stays buffered for the next POLLIN. */
    dt_status_t st = dt_frame_read(c, 0, &payload, &len);
    if (st == DT_ETIMEDOUT) {
      break;
    }
    if (st != DT_OK) {
      if (st != DT_EOF) {
        fprintf(stderr, "echo_server: thread %d: read: %s\n", w->id,
                dt_strerror(st));
      }
      return false;
    }
    /* The payload lives in c's read buffer until the next read: the write
     * copies it into the write buffer first. */
    st = dt_frame_write(c, payload, len, WRITE_TIMEOUT_MS);
    if (st != DT_OK) {
      fprintf(stderr, "echo_server: thread %d: write: %s\n", w->id,
              dt_strerror(st));
      return false;
    }
    w->frames++;
  }
  /* One send for every reply of the burst. */
  dt_status_t st = dt_flush(c, WRITE_TIMEOUT_MS);
  if (st != DT_OK) {
    fprintf(stderr, "echo_server: thread %d: flush: %s\n", w->id,
            dt_strerror(st));
    return false;
  }
  return true;
}

static void accept_one(worker_t *w, dt_conn_t **conns, size_t *nconns) {
  int fd = accept(w->listen_fd, NULL, NULL);
  if (fd < 0) {
    /* EAGAIN: another wakeup took it; anything else (EMFILE, a reset
     * before accept) concerns that one client only. */
    return;
  }
  /* TCP_NODELAY and keepalive, as the dialer gives its client sockets. */
  int family = AF_INET;
  struct sockaddr_storage ss;
  socklen_t sslen = sizeof(ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0) {
    family = ss.ss_family;
  }
  (void)dt_sockopt_apply(fd, family, NULL, NULL);

  dt_conn_opts_t copts;
  dt_conn_opts_init(&copts);
  copts.read_buffer_size = BUFFER_SIZE;
  copts.write_buffer_size = BUFFER_SIZE;
  copts.max_frame_size = BUFFER_SIZE - 4;
  dt_conn_t *c;
  dt_status_t st = dt_conn_new(fd, &copts, &c);
  if (st != DT_OK) {
    /* On failure the descriptor is still ours. */
    fprintf(stderr, "echo_server: thread %d: %s\n", w->id, dt_strerror(st));
    close(fd);
    return;
  }
  conns[(*nconns)++] = c;
  w->connections++;
}

static void *run(void *arg) {
  worker_t *w = arg;
  dt_conn_t *conns[MAX_CONNS];
  size_t nconns = 0;
  struct pollfd pfd[MAX_CONNS + 2];

  for (;;) {
    pfd[0] = (struct pollfd){.fd = stop_pipe[0], .events = POLLIN};
    /* A negative fd is skipped by poll(): a full thread stops accepting. */
    pfd[1] = (struct pollfd){.fd = nconns < MAX_CONNS ? w->listen_fd : -1,
                             .events = POLLIN};
    for (size_t i = 0; i < nconns; i++) {
      pfd[i + 2] =
          (struct pollfd){.fd = dt_conn_fd(conns[i]), .events = POLLIN};
    }
    if (poll(pfd, nconns + 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      perror("echo_server: poll");
      break;
    }
    if (pfd[0].revents != 0) {
      break;
    }
    /* Backwards, so that removing one moves only entries already done. */
    for (size_t i = nconns; i-- > 0;) {
      if (pfd[i + 2].revents != 0 && !serve(w, conns[i])) {
        dt_conn_free(conns[i]);
        conns[i] = conns[--nconns];
      }
    }
    if (pfd[1].revents != 0) {
      accept_one(w, conns, &nconns);
    }
  }
  for (size_t i = 0; i < nconns; i++) {
    dt_conn_free(conns[i]);
  }
  return NULL;
}

int main(int argc, char **argv) {
  const char *addr = "127.0.0.1";
  long port = 0, nthreads = 2;
  int c;
  while ((c = getopt(argc, argv, "a:p:t:")) != -1) {
    switch (c) {
    case 'a':
      addr = optarg;
      break;
    case 'p':
      port = strtol(optarg, NULL, 10);
      break;
    case 't':
      nthreads = strtol(optarg, NULL, 10);
      break;
    default:
      usage();
      return 1;
    }
  }
  if (optind != argc || port < 0 || port > 65535 || nthreads < 1 ||
      nthreads > MAX_THREADS) {
    usage();
    return 1;
  }

  worker_t workers[MAX_THREADS];
  memset(workers, 0, sizeof(workers));
  dt_listen_opts_t lopts;
  dt_listen_opts_init(&lopts);
  /* Every listener of the group must set SO_REUSEPORT. Non-blocking: a
   * wakeup whose connection is gone must not block accept(). */
  lopts.reuseport = true;
  lopts.nonblocking = true;
  uint16_t bound = (uint16_t)port;
  dt_status_t st = DT_OK;
  long n;
  for (n = 0; n < nthreads && st == DT_OK; n++) {
    workers[n].id = (int)n;
    st = dt_listen(&lopts, addr, bound, &workers[n].listen_fd);
    /* With port 0 the first listener gets a port from the kernel and the
     * others join it. */
    if (st == DT_OK && n == 0) {
      st = dt_listen_get_port(workers[0].listen_fd, &bound);
      if (st != DT_OK) {
        close(workers[0].listen_fd);
      }
    }
  }
  if (st != DT_OK) {
    fprintf(stderr, "echo_server: cannot listen on %s port %u: %s (%s)\n", addr,
            bound, dt_strerror(st), dt_status_name(st));
    for (long i = 0; i < n - 1; i++) {
      close(workers[i].listen_fd);
    }
    return 2;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  if (pipe(stop_pipe) != 0 || sigaction(SIGINT, &sa, NULL) != 0 ||
      sigaction(SIGTERM, &sa, NULL) != 0) {
    perror("echo_server");
    return 2;
  }

  printf("echo_server: listening on %s#%u with %ld thread%s\n", addr, bound,
         nthreads, nthreads == 1 ? "" : "s");
  fflush(stdout);
  for (n = 0; n < nthreads; n++) {
    if (pthread_create(&workers[n].thread, NULL, run, &workers[n]) != 0) {
      fprintf(stderr, "echo_server: cannot start a thread\n");
      on_signal(0);
      break;
    }
  }
  unsigned long conns = 0, frames = 0;
  for (long i = 0; i < n; i++) {
    pthread_join(workers[i].thread, NULL);
  }
  for (long i = 0; i < nthreads; i++) {
    close(workers[i].listen_fd);
    if (i < n) {
      fprintf(stderr,
              "echo_server: thread %ld: %lu connection%s, %lu frame%s\n", i,
              workers[i].connections, workers[i].connections == 1 ? "" : "s",
              workers[i].frames, workers[i].frames == 1 ? "" : "s");
      conns += workers[i].connections;
      frames += workers[i].frames;
    }
  }
  fprintf(stderr, "echo_server: %lu connection%s, %lu frame%s echoed\n", conns,
          conns == 1 ? "" : "s", frames, frames == 1 ? "" : "s");
  close(stop_pipe[0]);
  close(stop_pipe[1]);
  return n == nthreads ? 0 : 2;
}
