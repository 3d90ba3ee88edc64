/*
 * dial: connect to HOST PORT with dialtone's Happy Eyeballs dialer
 * (RFC 8305) and print the race as a timeline: the AAAA and A lookups,
 * every connection attempt as it starts and ends, the winner, then a chart
 * of the attempts over time.
 *
 * What it shows: dt_dial() is one call; its trace callback sees every step
 * as it happens, and its report tells the whole story afterwards, on
 * success and on failure alike. When IPv6 is broken (an address that never
 * answers), the IPv4 attempt starts after the attempt delay (250 ms) and
 * wins, instead of the connection hanging for the system's timeout.
 *
 * Build, after `make install`:
 *   cc -o dial dial.c $(pkg-config --cflags --libs dialtone)
 * Run:
 *   ./dial www.example.com 80
 *   ./dial -r ./resolv.conf www.test 8080
 *   ./dial unix:/run/app.sock 0
 *
 * Options:
 *   -r FILE  resolv.conf to read instead of /etc/resolv.conf; a nameserver
 *            may carry a port: "nameserver [127.0.0.1]:5353"
 *   -4, -6   one address family only
 *   -t MS    overall limit, lookup included (default 10000)
 *   -d MS    connection attempt delay (default 250)
 *
 * Output:
 *       0.014 ms  looking up AAAA www.test
 *       0.019 ms  looking up A www.test
 *       0.322 ms  AAAA: 1 address (dns)
 *       0.341 ms  attempt 1: ::1#8080 started
 *       ...
 *     250.733 ms  connected to 127.0.0.1#8080
 * followed by the chart and a summary line. Exit status: 0 connected,
 * 1 bad usage, 2 nothing connected (the reason is on stderr).
 */
#define _POSIX_C_SOURCE 200809L

#include <dialtone.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Columns of the attempts chart. */
#define CHART_WIDTH 40

static void usage(void) {
  fprintf(stderr, "usage: dial [-r RESOLV_CONF] [-4|-6] [-t MS] [-d MS] "
                  "HOST PORT\n");
}

static const char *qtype(int family) {
  return family == AF_INET6 ? "AAAA" : "A";
}

/* Runs on the dialing thread inside dt_dial(), as each step happens:
 * printing is all it does, so it cannot slow the race down. */
static void on_event(const dt_dial_event_t *ev, void *ctx) {
  (void)ctx;
  char addr[DT_SOCKADDR_STRLEN] = "";
  if (ev->addr != NULL) {
    dt_sockaddr_tostr(ev->addr, ev->addrlen, addr, sizeof(addr));
  }
  printf("%11.3f ms  ", (double)ev->elapsed_us / 1000.0);
  switch (ev->type) {
  case DT_DIAL_EV_LOOKUP_START:
    printf("looking up %s %s\n", qtype(ev->family), ev->host);
    break;
  case DT_DIAL_EV_LOOKUP_DONE:
    if (ev->status == DT_OK) {
      printf("%s: %zu address%s (%s)\n", qtype(ev->family), ev->naddrs,
             ev->naddrs == 1 ? "" : "es", dt_dial_source_tostr(ev->source));
    } else {
      printf("%s: %s\n", qtype(ev->family), dt_strerror(ev->status));
    }
    break;
  case DT_DIAL_EV_ATTEMPT_START:
    printf("attempt %zu: %s started\n", ev->attempt + 1, addr);
    break;
  case DT_DIAL_EV_ATTEMPT_DONE:
    printf("attempt %zu: %s %s\n", ev->attempt + 1, addr,
           ev->status == DT_OK ? "connected" : dt_strerror(ev->status));
    break;
  case DT_DIAL_EV_CONNECTED:
    printf("connected to %s\n", addr);
    break;
  case DT_DIAL_EV_FAILED:
    printf("gave up: %s\n", dt_strerror(ev->status));
    break;
  }
  /* Each line as it happens, also into a pipe. */
  fflush(stdout);
}

/* One row per attempt: '=' while it ran, on a scale from the start of the
 * dial to its end. */
static void chart(const dt_dial_report_t *rep) {
  uint64_t total = rep->total_us > 0 ? rep->total_us : 1;
  if (rep->nattempts == 0) {
    return;
  }
  printf("\nattempts, 0 to %.3f ms (one column is %.3f ms):\n",
         (double)total / 1000.0, (double)total / 1000.0 / CHART_WIDTH);
  for (size_t i = 0; i < rep->nattempts; i++) {
    const dt_dial_attempt_t *a = &rep->attempts[i];
    char addr[DT_SOCKADDR_STRLEN], bar[CHART_WIDTH + 1];
    dt_sockaddr_tostr((const struct sockaddr *)&a->addr, a->addrlen, addr,
                      sizeof(addr));
    size_t from = (size_t)(a->start_us * CHART_WIDTH / total);
    size_t to = (size_t)(a->end_us * CHART_WIDTH / total);
    from = from < CHART_WIDTH ? from : CHART_WIDTH - 1;
    to = to > from ? (to <= CHART_WIDTH ? to : CHART_WIDTH) : from + 1;
    memset(bar, ' ', CHART_WIDTH);
    memset(bar + from, '=', to - from);
    bar[CHART_WIDTH] = '\0';
    printf("  %-24s |%s| %s\n", addr, bar,
           a->status == DT_OK ? "connected" : dt_strerror(a->status));
  }
}

int main(int argc, char **argv) {
  dt_resolver_opts_t ropts;
  dt_resolver_opts_init(&ropts);
  dt_dial_opts_t dopts;
  dt_dial_opts_init(&dopts);
  dopts.trace = on_event;
  int timeout_ms = 10000;
  int c;
  while ((c = getopt(argc, argv, "r:46t:d:")) != -1) {
    switch (c) {
    case 'r':
      ropts.resolv_conf = optarg;
      break;
    case '4':
      dopts.family = AF_INET;
      break;
    case '6':
      dopts.family = AF_INET6;
      break;
    case 't':
      timeout_ms = atoi(optarg);
      break;
    case 'd':
      dopts.attempt_delay_ms = atoi(optarg);
      break;
    default:
      usage();
      return 1;
    }
  }
  char *end = "";
  long port = argc - optind == 2 ? strtol(argv[optind + 1], &end, 10) : -1;
  if (port < 0 || port > 65535 || *end != '\0' || timeout_ms < 0) {
    usage();
    return 1;
  }
  const char *host = argv[optind];

  /* The dialer borrows the resolver: it must outlive the dialer. */
  dt_resolver_t *r = NULL;
  dt_dialer_t *d = NULL;
  dt_status_t st = dt_resolver_new(&ropts, &r);
  if (st == DT_OK) {
    dopts.resolver = r;
    st = dt_dialer_new(&dopts, &d);
  }
  if (st != DT_OK) {
    fprintf(stderr, "dial: cannot set up: %s (%s)\n", dt_strerror(st),
            dt_status_name(st));
    dt_resolver_free(r);
    return st == DT_EINVAL ? 1 : 2;
  }

  int fd;
  dt_dial_report_t rep;
  st = dt_dial(d, host, (uint16_t)port, timeout_ms, &fd, &rep);
  chart(&rep);
  int rc = 0;
  if (st == DT_OK) {
    char peer[DT_SOCKADDR_STRLEN];
    const dt_dial_attempt_t *w = &rep.attempts[rep.winner];
    dt_sockaddr_tostr((const struct sockaddr *)&w->addr, w->addrlen, peer,
                      sizeof(peer));
    printf("\nconnected to %s: lookup %.3f ms, connect %.3f ms, "
           "total %.3f ms\n",
           peer, (double)rep.dns_us / 1000.0, (double)rep.connect_us / 1000.0,
           (double)rep.total_us / 1000.0);
    /* The socket is ours now: a real program would use it, or wrap it in
     * a dt_conn_t for buffered I/O. */
    close(fd);
  } else {
    fprintf(stderr, "dial: %s port %ld: %s (%s) after %zu attempt%s\n", host,
            port, dt_strerror(st), dt_status_name(st), rep.nattempts,
            rep.nattempts == 1 ? "" : "s");
    rc = 2;
  }
  dt_dialer_free(d);
  dt_resolver_free(r);
  return rc;
}
