/* dt-fakedns: the fake DNS server as a program, for `make demo` and manual
 * experiments.
 *
 *   dt-fakedns [-p PORT] [-4] [-z ZONEFILE]... [--pidfile F] [--port-file F]
 *
 * Serves the records of the zone files on 127.0.0.1 and ::1 (only
 * 127.0.0.1 with -4, or when the host has no IPv6), UDP and TCP, on PORT
 * (default 0: a free port), until SIGTERM or SIGINT. It prints
 * "dt-fakedns: serving on port N ..." on stdout once ready; --port-file
 * writes the bare port number and --pidfile the process ID (each written
 * whole, by rename, and removed at exit) so scripts can wait for them.
 *
 * Zone files hold one record per line in zone-file syntax
 * ("www.example. 300 IN A 192.0.2.1"; TTL and class optional, every name
 * absolute, no $ directives, no parentheses) and ';' comments.
 *
 * Fakedns directives: a comment line starting with ";!" scripts how queries
 * of one name and type are treated:
 *
 *   ;! VERB NAME TYPE [ARGS]
 *
 * NAME is a domain name, or "*" for every query that no other directive
 * covers (TYPE must then be "*" too); TYPE is a mnemonic (A, AAAA, MX,
 * TYPE65, ...) or "*" for all types of NAME. Directives for the same NAME
 * and TYPE combine. VERBs:
 *
 *   rcode RCODE        answer RCODE (NOERROR, FORMERR, SERVFAIL, NXDOMAIN,
 *                      NOTIMP, REFUSED or 0..15) with empty sections; SOA
 *                      added for NXDOMAIN
 *   delay MS           reply MS milliseconds late (others served meanwhile)
 *   drop N             ignore the first N queries
 *   blackhole          never reply
 *   tc [KEEP]          UDP replies get TC and keep KEEP answers (default 0)
 *   wrong-id           send a reply with another ID first
 *   wrong-question     send a reply for another question first
 *   wrong-port         send the reply from another source port first
 *   lower-question     send a reply with the question in lower case first
 *   spoof-only         with wrong-*: send only the spoofs
 *   spoof RECORD...    the spoofs answer with this record instead
 *   garbage before|instead [random|random:LEN|HEX] [keep-id]
 *                      send junk bytes before or instead of the reply;
 *                      keep-id puts the query's ID in the first two bytes
 *   edns echo|ignore|formerr
 *                      reply with OPT (default), without OPT, or FORMERR to
 *                      queries with OPT
 *   hold TYPE          hold replies until NAME TYPE was queried too
 *   tcp-close          over TCP, close the connection instead of replying
 *
 * Example, a name whose AAAA answers are slow:
 *
 *   slow.demo.example. 60 IN A    192.0.2.10
 *   slow.demo.example. 60 IN AAAA 2001:db8::10
 *   ;! delay slow.demo.example. AAAA 800
 *
 * Exit status: 0 after a signal, 1 on a bad zone file, 2 on bad usage,
 * 3 when the server cannot start.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fakedns.h"

static void usage(FILE *f) {
  fprintf(f, "usage: dt-fakedns [-p PORT] [-4] [-z ZONEFILE]... "
             "[--pidfile F] [--port-file F]\n");
}

/* Writes "value\n" to path through a temporary file and rename(), so a
 * script polling for the file never reads half of it. */
static int write_number_file(const char *path, long value) {
  size_t n = strlen(path) + 5;
  char *tmp = malloc(n);
  if (tmp == NULL) {
    return -1;
  }
  snprintf(tmp, n, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  int rc = -1;
  if (f != NULL) {
    bool ok = fprintf(f, "%ld\n", value) > 0;
    ok = fclose(f) == 0 && ok;
    rc = ok ? rename(tmp, path) : -1;
    if (rc != 0) {
      unlink(tmp);
    }
  }
  free(tmp);
  return rc;
}

int main(int argc, char **argv) {
  enum { OPT_PIDFILE = 256, OPT_PORTFILE };
  static const struct option longopts[] = {
      {"port", required_argument, NULL, 'p'},
      {"ipv4-only", no_argument, NULL, '4'},
      {"zone", required_argument, NULL, 'z'},
      {"pidfile", required_argument, NULL, OPT_PIDFILE},
      {"port-file", required_argument, NULL, OPT_PORTFILE},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  fakedns_opts_t opts;
  fakedns_opts_init(&opts);
  const char *pidfile = NULL, *portfile = NULL;
  const char **zones = calloc((size_t)argc, sizeof(*zones));
  size_t nzones = 0;
  if (zones == NULL) {
    fprintf(stderr, "dt-fakedns: out of memory\n");
    return 3;
  }
  int c;
  while ((c = getopt_long(argc, argv, "p:4z:h", longopts, NULL)) != -1) {
    switch (c) {
    case 'p': {
      char *end = NULL;
      long v = strtol(optarg, &end, 10);
      if (*optarg == '\0' || *end != '\0' || v < 0 || v > 65535) {
        fprintf(stderr, "dt-fakedns: bad port '%s'\n", optarg);
        free(zones);
        return 2;
      }
      opts.port = (uint16_t)v;
      break;
    }
    case '4':
      opts.ipv4_only = true;
      break;
    case 'z':
      zones[nzones++] = optarg;
      break;
    case OPT_PIDFILE:
      pidfile = optarg;
      break;
    case OPT_PORTFILE:
      portfile = optarg;
      break;
    case 'h':
      usage(stdout);
      free(zones);
      return 0;
    default:
      usage(stderr);
      free(zones);
      return 2;
    }
  }
  if (optind != argc) {
    usage(stderr);
    free(zones);
    return 2;
  }

  /* Blocked before the server thread exists, so it inherits the mask and
   * the signals reach sigwait() below, never the thread. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);

  fakedns_t *srv = NULL;
  dt_status_t st = fakedns_new(&opts, &srv);
  if (st != DT_OK) {
    fprintf(stderr, "dt-fakedns: cannot listen: %s\n", dt_strerror(st));
    free(zones);
    return 3;
  }
  int rc = 0;
  bool wrote_pidfile = false, wrote_portfile = false;
  for (size_t i = 0; i < nzones; i++) {
    unsigned line = 0;
    st = fakedns_load_file(srv, zones[i], &line);
    if (st != DT_OK) {
      if (line > 0) {
        fprintf(stderr, "dt-fakedns: %s:%u: %s\n", zones[i], line,
                dt_strerror(st));
      } else {
        fprintf(stderr, "dt-fakedns: %s: %s\n", zones[i], dt_strerror(st));
      }
      rc = 1;
      goto done;
    }
  }
  st = fakedns_start(srv);
  if (st != DT_OK) {
    fprintf(stderr, "dt-fakedns: cannot start: %s\n", dt_strerror(st));
    rc = 3;
    goto done;
  }
  uint16_t port = fakedns_port(srv);
  if (pidfile != NULL) {
    if (write_number_file(pidfile, (long)getpid()) != 0) {
      fprintf(stderr, "dt-fakedns: %s: %s\n", pidfile, strerror(errno));
      rc = 3;
      goto done;
    }
    wrote_pidfile = true;
  }
  if (portfile != NULL) {
    if (write_number_file(portfile, port) != 0) {
      fprintf(stderr, "dt-fakedns: %s: %s\n", portfile, strerror(errno));
      rc = 3;
      goto done;
    }
    wrote_portfile = true;
  }
  printf("dt-fakedns: serving on port %u (127.0.0.1%s; UDP and TCP)\n",
         (unsigned)port, fakedns_has_ipv6(srv) ? " and ::1" : "");
  fflush(stdout);

  int sig = 0;
  while (sigwait(&sigs, &sig) != 0) {
  }
done:
  fakedns_free(srv);
  /* Only files this run wrote: a stale one from a crashed run is left to
   * whoever looks at it. */
  if (wrote_pidfile) {
    unlink(pidfile);
  }
  if (wrote_portfile) {
    unlink(portfile);
  }
  free(zones);
  return rc;
}
