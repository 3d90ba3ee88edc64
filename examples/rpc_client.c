/*
 * rpc_client: framed requests over pooled connections to a framed echo
 * server (examples/echo_server.c), reporting for each request whether its
 * connection was dialed for it or reused from the pool.
 *
 * What it shows: a dt_pool_t shared by every thread; dt_pool_acquire()
 * hands back an idle connection after a health check, or dials one (Happy
 * Eyeballs, the resolver's cache); dt_pool_release() keeps it for the next
 * request. A reused connection the server closed meanwhile fails with
 * DT_ESTALECONN before any reply: the request is retried once on a fresh
 * connection, which is safe here because an echo is idempotent.
 *
 * Build, after `make install`:
 *   cc -o rpc_client rpc_client.c $(pkg-config --cflags --libs dialtone) \
 *     -lpthread
 * Run, with ./echo_server -p 7000 running:
 *   ./rpc_client -n 5 127.0.0.1 7000 hello
 *   ./rpc_client -n 100 -c 4 localhost 7000
 *   ./rpc_client -r ./resolv.conf -n 3 echo.test 7000
 *
 * Options:
 *   -r FILE  resolv.conf to read instead of /etc/resolv.conf; a nameserver
 *            may carry a port: "nameserver [127.0.0.1]:5353"
 *   -n N     requests per thread (default 5)
 *   -c N     threads sharing the pool (default 1)
 *   -t MS    limit of each request, connecting included (default 5000)
 *
 * Output, one line per request, then a summary from the pool's counters:
 *   request 1: "hello 1" echoed, new connection to 127.0.0.1#7000, 0.41 ms
 *   request 2: "hello 2" echoed, reused connection (use 2, idle 0.05 ms), ...
 *   5 requests, 5 echoed: 1 dial, 4 reuses
 * Exit status: 0 when every request was echoed, 1 bad usage, 2 otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include <dialtone.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64

typedef struct {
  pthread_t thread;
  int id;
  dt_pool_t *pool;
  const char *host;
  uint16_t port;
  const char *message;
  long requests;
  int timeout_ms;
  bool prefix; /* several threads: say which one printed */
  long echoed;
} client_t;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void usage(void) {
  fprintf(stderr, "usage: rpc_client [-r RESOLV_CONF] [-n REQUESTS] "
                  "[-c THREADS] [-t MS] HOST PORT [MESSAGE]\n");
}

/* One request on one connection: send the frame, read the reply. */
static dt_status_t exchange(dt_conn_t *c, const char *req, size_t len,
                            int timeout_ms) {
  const uint8_t *reply;
  size_t rlen;
  dt_status_t st = dt_frame_write(c, req, len, timeout_ms);
  if (st == DT_OK) {
    st = dt_flush(c, timeout_ms);
  }
  if (st == DT_OK) {
    st = dt_frame_read(c, timeout_ms, &reply, &rlen);
  }
  if (st == DT_OK && (rlen != len || memcmp(reply, req, len) != 0)) {
    /* Not an echo: the protocol is off, the connection must not be
     * pooled again. */
    st = DT_EBADREPLY;
  }
  return st;
}

static bool request(client_t *cl, long i) {
  char req[512], prefix[16] = "";
  int len = snprintf(req, sizeof(req), "%s %ld", cl->message, i);
  size_t reqlen = len < (int)sizeof(req) ? (size_t)len : sizeof(req) - 1;
  if (cl->prefix) {
    snprintf(prefix, sizeof(prefix), "[%d] ", cl->id);
  }
  double t0 = now_ms();
  dt_status_t st;
  dt_conn_t *c = NULL;
  dt_pool_conn_info_t info;
  for (int attempt = 0; attempt < 2; attempt++) {
    st = dt_pool_acquire(cl->pool, cl->host, cl->port, cl->timeout_ms, &c);
    if (st != DT_OK) {
      break;
    }
    dt_pool_conn_get_info(c, &info);
    st = exchange(c, req, reqlen, cl->timeout_ms);
    /* Reusable only after a clean exchange; release closes a broken
     * connection anyway. */
    dt_pool_release(cl->pool, c, st == DT_OK);
    if (st != DT_ESTALECONN) {
      break;
    }
    printf("%srequest %ld: reused connection was closed by the server, "
           "retrying on a new one\n",
           prefix, i);
  }
  double ms = now_ms() - t0;
  if (st != DT_OK) {
    fprintf(stderr, "%srpc_client: request %ld: %s (%s)\n", prefix, i,
            dt_strerror(st), dt_status_name(st));
    return false;
  }
  char peer[DT_SOCKADDR_STRLEN];
  dt_sockaddr_tostr((const struct sockaddr *)&info.peer, info.peerlen, peer,
                    sizeof(peer));
  if (info.reused) {
    printf("%srequest %ld: \"%s\" echoed, reused connection to %s (use %lu, "
           "idle %.3f ms), %.3f ms\n",
           prefix, i, req, peer, (unsigned long)info.uses,
           (double)info.idle_us / 1000.0, ms);
  } else {
    printf("%srequest %ld: \"%s\" echoed, new connection to %s, %.3f ms\n",
           prefix, i, req, peer, ms);
  }
  return true;
}

static void *run(void *arg) {
  client_t *cl = arg;
  for (long i = 1; i <= cl->requests; i++) {
    if (request(cl, i)) {
      cl->echoed++;
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  dt_resolver_opts_t ropts;
  dt_resolver_opts_init(&ropts);
  long requests = 5, nthreads = 1;
  int timeout_ms = 5000;
  int c;
  while ((c = getopt(argc, argv, "r:n:c:t:")) != -1) {
    switch (c) {
    case 'r':
      ropts.resolv_conf = optarg;
      break;
    case 'n':
      requests = strtol(optarg, NULL, 10);
      break;
    case 'c':
      nthreads = strtol(optarg, NULL, 10);
      break;
    case 't':
      timeout_ms = atoi(optarg);
      break;
    default:
      usage();
      return 1;
    }
  }
  int nargs = argc - optind;
  char *end = "";
  long port =
      nargs == 2 || nargs == 3 ? strtol(argv[optind + 1], &end, 10) : -1;
  if (port < 0 || port > 65535 || *end != '\0' || requests < 1 ||
      nthreads < 1 || nthreads > MAX_THREADS || timeout_ms < 0) {
    usage();
    return 1;
  }

  /* Resolver, dialer and pool are made once and shared by the threads;
   * each borrows the one before it, so they are freed in reverse. */
  dt_resolver_t *r = NULL;
  dt_dialer_t *d = NULL;
  dt_pool_t *pool = NULL;
  dt_status_t st = dt_resolver_new(&ropts, &r);
  if (st == DT_OK) {
    dt_dial_opts_t dopts;
    dt_dial_opts_init(&dopts);
    dopts.resolver = r;
    st = dt_dialer_new(&dopts, &d);
  }
  if (st == DT_OK) {
    dt_pool_opts_t popts;
    dt_pool_opts_init(&popts);
    popts.dialer = d;
    st = dt_pool_new(&popts, &pool);
  }
  if (st != DT_OK) {
    fprintf(stderr, "rpc_client: cannot set up: %s (%s)\n", dt_strerror(st),
            dt_status_name(st));
    dt_dialer_free(d);
    dt_resolver_free(r);
    return 2;
  }

  client_t clients[MAX_THREADS];
  long started = 0;
  for (long i = 0; i < nthreads; i++) {
    clients[i] = (client_t){.id = (int)i + 1,
                            .pool = pool,
                            .host = argv[optind],
                            .port = (uint16_t)port,
                            .message = nargs == 3 ? argv[optind + 2] : "ping",
                            .requests = requests,
                            .timeout_ms = timeout_ms,
                            .prefix = nthreads > 1};
  }
  if (nthreads == 1) {
    run(&clients[0]);
    started = 1;
  } else {
    for (; started < nthreads; started++) {
      if (pthread_create(&clients[started].thread, NULL, run,
                         &clients[started]) != 0) {
        fprintf(stderr, "rpc_client: cannot start a thread\n");
        break;
      }
    }
    for (long i = 0; i < started; i++) {
      pthread_join(clients[i].thread, NULL);
    }
  }

  long echoed = 0;
  for (long i = 0; i < started; i++) {
    echoed += clients[i].echoed;
  }
  dt_pool_stats_t ps;
  dt_pool_get_stats(pool, &ps);
  printf("%ld requests, %ld echoed: %lu dial%s, %lu reuse%s\n",
         requests * nthreads, echoed, (unsigned long)ps.dials,
         ps.dials == 1 ? "" : "s", (unsigned long)ps.reuses,
         ps.reuses == 1 ? "" : "s");
  dt_pool_free(pool);
  dt_dialer_free(d);
  dt_resolver_free(r);
  return echoed == requests * nthreads ? 0 : 2;
}
