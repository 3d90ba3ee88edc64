/* Measures the cache, asserts nothing: ns per hit on a warm entry (one
 * thread, then several on different names), and memory per entry for
 * caches of single-A answers, three ways: the cache's own byte count, the
 * heap the allocator really handed out, and the process's resident size.
 *
 *   make bench/bench_cache && bench/bench_cache [threads]
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "cache.h"
#include "clock.h"
#include "dialtone.h"

#define HITS 10000000L

/* ---- heap accounting: every dialtone allocation, at its real size ------- */

static size_t heap;

#ifdef __GLIBC__
/* glibc keeps one size word in front of each chunk. */
#define CHUNK_OVERHEAD sizeof(size_t)
static size_t real_size(void *p) {
  return p != NULL ? malloc_usable_size(p) + CHUNK_OVERHEAD : 0;
}
#else
static size_t real_size(void *p) {
  (void)p;
  return 0;
}
#endif

static void *count_malloc(size_t n) {
  void *p = malloc(n);
  __atomic_add_fetch(&heap, real_size(p), __ATOMIC_RELAXED);
  return p;
}

static void *count_realloc(void *old, size_t n) {
  size_t was = real_size(old);
  void *p = realloc(old, n);
  if (p != NULL) {
    __atomic_sub_fetch(&heap, was, __ATOMIC_RELAXED);
    __atomic_add_fetch(&heap, real_size(p), __ATOMIC_RELAXED);
  }
  return p;
}

static void count_free(void *p) {
  __atomic_sub_fetch(&heap, real_size(p), __ATOMIC_RELAXED);
  free(p);
}

/* Resident bytes, from /proc (0 where there is none). */
static size_t rss(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, res = 0;
  if (f != NULL) {
    if (fscanf(f, "%lu %lu", &size, &res) != 2) {
      res = 0;
    }
    fclose(f);
  }
  return (size_t)res * 4096;
}

/* ---- answers as the resolver stores them ----------------------------------
 */

/* One A record for name (with its trailing dot), asked as name. */
static void one_a(dt_answer_t *a, dt_rr_t *rr, const char *fqdn,
                  const uint8_t addr[4], const char *text) {
  memset(a, 0, sizeof(*a));
  *rr = (dt_rr_t){fqdn, DT_TYPE_A, 1, 300, addr, 4, text};
  a->qname = fqdn;
  a->qtype = DT_TYPE_A;
  a->qclass = 1;
  a->flags = DT_FLAG_RD | DT_FLAG_RA;
  a->canonical = fqdn;
  a->answer = rr;
  a->nanswer = 1;
  a->ttl = 300;
}

static void put_host(dt_cache_t *c, unsigned long i) {
  char fqdn[64], text[16];
  uint8_t addr[4] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
  snprintf(fqdn, sizeof(fqdn), "host%07lu.example.com.", i);
  snprintf(text, sizeof(text), "%u.%u.%u.%u", addr[0], addr[1], addr[2],
           addr[3]);
  dt_answer_t a;
  dt_rr_t rr;
  one_a(&a, &rr, fqdn, addr, text);
  if (dt__cache_put(c, fqdn, DT_TYPE_A, 1, &a, NULL) != DT_OK) {
    fprintf(stderr, "put failed\n");
    exit(1);
  }
}

/* ---- hits ------------------------------------------------------------------
 */

static void copy_addr(const dt_cache_hit_t *hit, void *ctx) {
  memcpy(ctx, hit->answer->answer[0].rdata, 4);
}

/* One per thread, far enough apart not to share a cache line: a runner's
 * visitor writes addr on every hit, which must not slow the next runner. */
typedef struct {
  dt_cache_t *c;
  char name[64];
  long n;
  uint8_t addr[4];
  char pad[192];
} runner_t;

static void *hit_loop(void *arg) {
  runner_t *r = arg;
  for (long i = 0; i < r->n; i++) {
    if (dt__cache_get(r->c, r->name, DT_TYPE_A, 1, false, copy_addr, r->addr) !=
        DT_CACHE_HIT) {
      fprintf(stderr, "miss on a warm entry\n");
      exit(1);
    }
  }
  return NULL;
}

static void bench_hits(int nthreads) {
  dt_cache_t *c = NULL;
  if (dt__cache_new(NULL, &c) != DT_OK) {
    exit(1);
  }
  runner_t *r = calloc((size_t)nthreads, sizeof(*r));
  pthread_t *t = calloc((size_t)nthreads, sizeof(*t));
  if (r == NULL || t == NULL) {
    exit(1);
  }
  for (int i = 0; i < nthreads; i++) {
    put_host(c, (unsigned long)i);
    r[i].c = c;
    snprintf(r[i].name, sizeof(r[i].name), "host%07d.example.com", i);
    r[i].n = HITS;
  }

  uint64_t t0 = dt__now_us();
  hit_loop(&r[0]);
  uint64_t us = dt__now_us() - t0;
  printf("hit, 1 thread:   %.1f ns per hit (%ld hits, %.2f s)\n",
         us * 1000.0 / HITS, HITS, us / 1e6);

  if (nthreads > 1) {
    t0 = dt__now_us();
    for (int i = 0; i < nthreads; i++) {
      pthread_create(&t[i], NULL, hit_loop, &r[i]);
    }
    for (int i = 0; i < nthreads; i++) {
      pthread_join(t[i], NULL);
    }
    us = dt__now_us() - t0;
    printf("hit, %d threads:  %.1f ns per hit per thread, %.1f M hits/s in "
           "all (different names)\n",
           nthreads, us * 1000.0 / HITS, nthreads * (double)HITS / us);
  }
  dt__cache_free(c);
  free(r);
  free(t);
}

/* ---- memory ----------------------------------------------------------------
 */

static void bench_memory(unsigned long n) {
  size_t heap0 = heap, rss0 = rss();
  dt_cache_config_t cfg;
  dt__cache_config_init(&cfg);
  cfg.max_entries = n;
  dt_cache_t *c = NULL;
  if (dt__cache_new(&cfg, &c) != DT_OK) {
    exit(1);
  }
  uint64_t t0 = dt__now_us();
  for (unsigned long i = 0; i < n; i++) {
    put_host(c, i);
  }
  uint64_t us = dt__now_us() - t0;
  dt_cache_stats_t st;
  dt__cache_get_stats(c, &st);
  size_t heap1 = heap, rss1 = rss();
  printf("%7lu entries: stats %.1f B/entry (%.1f MB), heap %.1f B/entry "
         "(%.1f MB), RSS %+.1f B/entry (%.1f MB); %.0f ns per put\n",
         (unsigned long)st.entries, (double)st.bytes / st.entries,
         st.bytes / 1e6, (double)(heap1 - heap0) / st.entries,
         (heap1 - heap0) / 1e6, ((double)rss1 - rss0) / st.entries,
         ((double)rss1 - rss0) / 1e6, us * 1000.0 / n);
  dt__cache_free(c);
}

int main(int argc, char **argv) {
  int nthreads = argc > 1 ? atoi(argv[1]) : 2;
  if (nthreads < 1) {
    nthreads = 1;
  }
  const dt_allocator_t counting = {count_malloc, count_realloc, count_free};
  dt_set_allocator(&counting);
  printf("entry: host%%07lu.example.com. A, TTL 300, as the resolver "
         "stores it\n");
  bench_memory(100000);
  bench_memory(1000000);
  bench_hits(nthreads);
  return 0;
}
