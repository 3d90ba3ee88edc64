/* A load run, not a test: two threads share one resolver with a small
 * cache (1000 entries) and resolve 10,000 distinct names of a generated
 * zone, A and AAAA, against NSD on loopback, round and round for
 * LOAD_SECONDS (default 30). Every answer is checked; the resident set is
 * sampled each second and must stay flat after the warm-up: a leak on
 * the miss, eviction or coalescing paths shows as growth. `make load`
 * runs it; it exits 0 when there was no error and no growth, 77 when nsd
 * is missing. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "dialtone.h"
#include "fake/authsrv.h"

#define NAMES 10000
#define THREADS 2
#define CACHE_ENTRIES 1000
#define ZONE "load.test."
/* Growth allowed between the end of the warm-up and the end of the run:
 * allocator noise, not a leak (a leak of one answer per miss would add
 * megabytes a second). */
#define GROWTH_KB 1024

static volatile int stop;

typedef struct {
  dt_resolver_t *r;
  unsigned start;
  unsigned long lookups, errors;
} worker_t;

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;
  if (f == NULL) {
    return -1;
  }
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) {
    resident = -1;
  }
  fclose(f);
  return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Name i has A 198.18.x.y (RFC 2544's benchmarking range) and
 * AAAA 2001:db8::i (i in the last 16 bits). */
static bool check(unsigned i, const dt_addr_t *addrs, size_t n) {
  bool v4 = false, v6 = false;
  for (size_t k = 0; k < n; k++) {
    if (addrs[k].addr.ss_family == AF_INET) {
      const uint8_t *b =
          (const uint8_t *)&((const struct sockaddr_in *)&addrs[k].addr)
              ->sin_addr;
      v4 = b[0] == 198 && b[1] == 18 && b[2] == i / 256 && b[3] == i % 256;
    } else if (addrs[k].addr.ss_family == AF_INET6) {
      const uint8_t *b =
          ((const struct sockaddr_in6 *)&addrs[k].addr)->sin6_addr.s6_addr;
      v6 =
          b[0] == 0x20 && b[1] == 0x01 && b[14] == i >> 8 && b[15] == (i & 255);
    }
  }
  return n == 2 && v4 && v6;
}

static void *work(void *arg) {
  worker_t *w = arg;
  char name[64];
  for (unsigned i = w->start; !stop; i = (i + 7) % NAMES) {
    snprintf(name, sizeof(name), "n%u." ZONE, i);
    dt_addr_t addrs[4];
    size_t n = 0;
    dt_status_t st =
        dt_resolver_lookup_addrs(w->r, name, AF_UNSPEC, 5000, addrs, 4, &n);
    w->lookups++;
    if (st != DT_OK || !check(i, addrs, n)) {
      if (w->errors++ < 5) {
        fprintf(stderr, "load: %s: %s\n", name, dt_status_name(st));
      }
    }
  }
  return NULL;
}

static bool write_zone(const char *path) {
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    return false;
  }
  fprintf(f, "$ORIGIN " ZONE "\n$TTL 3600\n"
             "@ IN SOA ns." ZONE " admin." ZONE " 1 3600 600 86400 300\n"
             "@ IN NS ns." ZONE "\nns IN A 127.0.0.1\n");
  for (unsigned i = 0; i < NAMES; i++) {
    fprintf(f, "n%u IN A 198.18.%u.%u\nn%u IN AAAA 2001:db8::%x\n", i, i / 256,
            i % 256, i, i);
  }
  return fclose(f) == 0;
}

int main(void) {
  int seconds = getenv("LOAD_SECONDS") ? atoi(getenv("LOAD_SECONDS")) : 30;
  if (seconds < 6) {
    seconds = 6;
  }
  char dir[] = "/tmp/dt-load-XXXXXX";
  if (mkdtemp(dir) == NULL) {
    perror("load: mkdtemp");
    return 1;
  }
  char zone[sizeof(dir) + 16];
  snprintf(zone, sizeof(zone), "%s/load.zone", dir);
  if (!write_zone(zone)) {
    perror("load: zone");
    return 1;
  }
  authsrv_t *srv = NULL;
  authsrv_status_t as = authsrv_start_extra(ZONE, zone, &srv);
  unlink(zone);
  rmdir(dir);
  if (as == AUTHSRV_NOT_INSTALLED) {
    printf("%s\n", AUTHSRV_SKIP_LINE);
    return 77;
  }
  if (as != AUTHSRV_OK) {
    fprintf(stderr, "load: %s\n", authsrv_last_error());
    return 1;
  }
  char server[64];
  snprintf(server, sizeof(server), "127.0.0.1:%u", (unsigned)authsrv_port(srv));
  const char *servers[] = {server};
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  o.servers = servers;
  o.nservers = 1;
  o.hosts = "";
  o.cache_max_entries = CACHE_ENTRIES;
  dt_resolver_t *r = NULL;
  if (dt_resolver_new(&o, &r) != DT_OK) {
    fprintf(stderr, "load: dt_resolver_new failed\n");
    return 1;
  }

  worker_t w[THREADS];
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) {
    w[i].r = r;
    w[i].start = (unsigned)i * (NAMES / THREADS);
    w[i].lookups = w[i].errors = 0;
    pthread_create(&t[i], NULL, work, &w[i]);
  }
  const int warmup = 5;
  long start_kb = rss_kb(), warm_kb = 0, max_after = 0, end_kb = 0;
  printf("load: %d threads, %d names (A+AAAA), cache %d entries, %d s\n",
         THREADS, NAMES, CACHE_ENTRIES, seconds);
  for (int s = 1; s <= seconds; s++) {
    sleep(1);
    long kb = rss_kb();
    if (s == warmup) {
      warm_kb = kb;
    }
    if (s >= warmup && kb > max_after) {
      max_after = kb;
    }
    end_kb = kb;
    if (s % 5 == 0) {
      unsigned long n = 0;
      for (int i = 0; i < THREADS; i++) {
        n += w[i].lookups;
      }
      printf("  %3d s: %lu lookups, RSS %ld KB\n", s, n, kb);
      fflush(stdout);
    }
  }
  stop = 1;
  unsigned long lookups = 0, errors = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(t[i], NULL);
    lookups += w[i].lookups;
    errors += w[i].errors;
  }
  dt_cache_stats_t cs;
  dt_resolver_stats_t rs;
  dt_cache_get_stats(r, &cs);
  dt_resolver_get_stats(r, &rs);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  dt_resolver_free(r);
  authsrv_stop_free(srv);

  long growth = max_after - warm_kb;
  printf("load: %lu lookups in %d s (%.0f/s), %lu errors\n", lookups, seconds,
         (double)lookups / seconds, errors);
  printf("load: cache %llu hits, %llu misses, %llu evicted, %llu coalesced, "
         "%llu entries (%llu bytes)\n",
         (unsigned long long)cs.hits, (unsigned long long)cs.misses,
         (unsigned long long)cs.evicted, (unsigned long long)cs.coalesced,
         (unsigned long long)cs.entries, (unsigned long long)cs.bytes);
  printf("load: %llu UDP queries, %llu timeouts, %llu dropped\n",
         (unsigned long long)rs.queries_udp, (unsigned long long)rs.timeouts,
         (unsigned long long)(rs.dropped_id + rs.dropped_question +
                              rs.dropped_malformed + rs.dropped_source));
  printf("load: RSS %ld KB at start, %ld KB after %d s warm-up, at most %ld "
         "KB after it, %ld KB at the end; peak RSS %ld KB\n",
         start_kb, warm_kb, warmup, max_after, end_kb, ru.ru_maxrss);
  bool ok = errors == 0 && growth <= GROWTH_KB && cs.evicted > 0;
  printf("%s: load: %s\n", ok ? "PASS" : "FAIL",
         errors != 0          ? "lookups failed"
         : growth > GROWTH_KB ? "memory grew after warm-up"
         : cs.evicted == 0    ? "the cache never evicted"
                              : "no error, memory flat");
  return ok ? 0 : 1;
}
