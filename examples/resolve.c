/*
 * resolve: look up the addresses of host names with dialtone's resolver,
 * showing each address's remaining TTL and where the answer came from: the
 * cache, a DNS server, the hosts file, or the name itself (an IP literal).
 *
 * What it shows: one resolver, made once and shared by every lookup of the
 * program; its cache answers a name again within its TTL with no query
 * and no allocation, and the TTL it reports counts down.
 *
 * Build, after `make install`:
 *   cc -o resolve resolve.c $(pkg-config --cflags --libs dialtone)
 * Run:
 *   ./resolve www.example.com
 *   ./resolve -n 3 -i 1000 www.example.com   three rounds, one second apart
 *   ./resolve -r ./resolv.conf -H "" www.test
 *
 * Options:
 *   -r FILE  resolv.conf to read instead of /etc/resolv.conf; a nameserver
 *            may carry a port: "nameserver [127.0.0.1]:5353"
 *   -H FILE  hosts file instead of /etc/hosts; -H "" reads none
 *   -4, -6   IPv4 or IPv6 addresses only
 *   -n N     look every name up N times (default 1)
 *   -i MS    pause between rounds, milliseconds (default 0)
 *
 * Output, one block per lookup:
 *   www.test: 2 addresses from dns in 0.412 ms
 *     2001:db8::1  ttl 300
 *     192.0.2.1    ttl 300
 * Exit status: 0 when every lookup succeeded, 1 on bad usage, 2 when a
 * lookup failed (the reason is on stderr).
 */
#define _POSIX_C_SOURCE 200809L

#include <dialtone.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_ADDRS 32

static void usage(void) {
  fprintf(stderr, "usage: resolve [-r RESOLV_CONF] [-H HOSTS] [-4|-6] "
                  "[-n COUNT] [-i MS] NAME...\n");
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* The counters tell where one lookup's answer came from: the resolver
 * counts hosts-file answers, the cache counts hits and misses. A lookup of
 * both families asks two questions, which may be answered differently. */
static const char *source(const dt_resolver_stats_t *rs0,
                          const dt_resolver_stats_t *rs1,
                          const dt_cache_stats_t *cs0,
                          const dt_cache_stats_t *cs1) {
  uint64_t hits = cs1->hits - cs0->hits;
  uint64_t misses = cs1->misses - cs0->misses;
  if (rs1->hosts_hits != rs0->hosts_hits) {
    return "the hosts file";
  }
  if (hits > 0 && misses > 0) {
    return "cache and dns";
  }
  if (hits > 0) {
    return "cache";
  }
  if (misses > 0) {
    return "dns";
  }
  return "the name itself";
}

static int lookup(dt_resolver_t *r, const char *name, int family) {
  dt_addr_t addrs[MAX_ADDRS];
  size_t n;
  dt_resolver_stats_t rs0, rs1;
  dt_cache_stats_t cs0, cs1;

  dt_resolver_get_stats(r, &rs0);
  dt_cache_get_stats(r, &cs0);
  double t0 = now_ms();
  /* -1: the resolver's own limit (timeout x attempts x servers). */
  dt_status_t st =
      dt_resolver_lookup_addrs(r, name, family, -1, addrs, MAX_ADDRS, &n);
  double ms = now_ms() - t0;
  if (st != DT_OK) {
    fprintf(stderr, "resolve: %s: %s (%s)\n", name, dt_strerror(st),
            dt_status_name(st));
    return -1;
  }
  dt_resolver_get_stats(r, &rs1);
  dt_cache_get_stats(r, &cs1);

  printf("%s: %zu address%s from %s in %.3f ms\n", name, n, n == 1 ? "" : "es",
         source(&rs0, &rs1, &cs0, &cs1), ms);
  for (size_t i = 0; i < n; i++) {
    char text[DT_SOCKADDR_STRLEN];
    dt_sockaddr_tostr((const struct sockaddr *)&addrs[i].addr, addrs[i].addrlen,
                      text, sizeof(text));
    printf("  %-26s ttl %u\n", text, (unsigned)addrs[i].ttl);
  }
  return 0;
}

int main(int argc, char **argv) {
  dt_resolver_opts_t opts;
  dt_resolver_opts_init(&opts);
  int family = AF_UNSPEC;
  long rounds = 1, pause_ms = 0;
  int c;
  while ((c = getopt(argc, argv, "r:H:46n:i:")) != -1) {
    switch (c) {
    case 'r':
      opts.resolv_conf = optarg;
      break;
    case 'H':
      opts.hosts = optarg;
      break;
    case '4':
      family = AF_INET;
      break;
    case '6':
      family = AF_INET6;
      break;
    case 'n':
      rounds = strtol(optarg, NULL, 10);
      break;
    case 'i':
      pause_ms = strtol(optarg, NULL, 10);
      break;
    default:
      usage();
      return 1;
    }
  }
  if (optind == argc || rounds < 1 || rounds > 1000000 || pause_ms < 0 ||
      pause_ms > 3600000) {
    usage();
    return 1;
  }

  dt_resolver_t *r;
  dt_status_t st = dt_resolver_new(&opts, &r);
  if (st != DT_OK) {
    fprintf(stderr, "resolve: cannot create the resolver: %s (%s)\n",
            dt_strerror(st), dt_status_name(st));
    return 2;
  }
  int rc = 0;
  for (long round = 0; round < rounds; round++) {
    if (round > 0 && pause_ms > 0) {
      sleep_ms(pause_ms);
    }
    for (int i = optind; i < argc; i++) {
      if (lookup(r, argv[i], family) != 0) {
        rc = 2;
      }
    }
  }
  dt_resolver_free(r);
  return rc;
}
