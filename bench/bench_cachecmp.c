/* bench_cachecmp: what a lookup of a name already in the cache costs, for
 * dialtone, libunbound's cache and glibc's getaddrinfo (which keeps no
 * cache, so every call asks the server), on one thread and on two threads
 * looking up different names; and what one cached answer costs in memory.
 * Prints Markdown; bench/run-bench.sh sets up the server, the namespace
 * and the CPUs around it.
 *
 * The zone is run-bench.sh's: n<i>.DOMAIN has one A record
 * 198.18.(i/256).(i%256) and one AAAA 2001:db8::<i in hex>; m<i>.DOMAIN
 * has one A record 10.(i/65536).(i/256%256).(i%256). Thread k looks up
 * n<k>; the memory figures fill caches with m0, m1, ...
 *
 * Timing: a batch is many calls in a row timed as a whole, because reading
 * the clock costs about as much as a dialtone hit; a figure is the median
 * of the batches' mean time per call. On one thread the contenders'
 * batches are interleaved, so that drift on a shared machine hits all of
 * them alike. Every answer is checked in full once before it is timed,
 * and every timed call's status and number of records. */

/* CPU affinity, mallinfo2 and malloc_usable_size are GNU extensions. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "benchtsv.h"
#include "benchutil.h"
#include "dialtone.h"

#ifdef DT_BENCH_UNBOUND
#include <unbound.h>
#endif

#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
#define HAVE_MALLINFO2 1
#endif

#define TIMEOUT_MS 2000
#define MAX_THREADS 2
/* Interleaved rounds of the one-thread run: one batch per contender each. */
#define ROUNDS 201
/* How long both threads of a two-thread run look up, ms. */
#define TWO_THREAD_MS 500
#define MAX_BATCHES 20000
/* Largest memory run; names m0 .. m(MAX_MEM-1). */
#define MAX_MEM 10000000
#define MAX_SIZES 8
/* Threads filling dialtone's cache, spread over the CPUs: its calls block,
 * so several keep NSD and the CPUs busy (a million names in about 35 s
 * here, against 150 s with one thread per CPU). */
#define FILL_THREADS 8

typedef struct {
  const char *server; /* "ADDR:PORT" */
  const char *domain;
  int cpu[MAX_THREADS];
  int ncpu;
  size_t mem_dt[MAX_SIZES], nmem_dt;
  size_t mem_ub[MAX_SIZES], nmem_ub;
  int64_t fill_deadline; /* ns, bench_now_ns(): fills stop there */
  bench_tsv_t *tsv;      /* NULL: no -T */
} config_t;

static void die(const char *fmt, const char *arg) {
  fprintf(stderr, "bench_cachecmp: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n");
  exit(2);
}

static bool pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

/* ---- memory --------------------------------------------------------------
 * Three views: every allocation dialtone makes, through dt_set_allocator,
 * at its real size; every chunk the C library's malloc has handed out and
 * not taken back (mallinfo2: libunbound has no allocator hook); and the
 * resident size, which also sees the allocator's own overhead. */

static size_t dt_heap; /* atomic */

/* glibc keeps one size word in front of each chunk. */
static size_t real_size(void *p) {
  return p != NULL ? malloc_usable_size(p) + sizeof(size_t) : 0;
}

static void *count_malloc(size_t n) {
  void *p = malloc(n);
  __atomic_add_fetch(&dt_heap, real_size(p), __ATOMIC_RELAXED);
  return p;
}

static void *count_realloc(void *old, size_t n) {
  size_t was = real_size(old);
  void *p = realloc(old, n);
  if (p != NULL) {
    __atomic_sub_fetch(&dt_heap, was, __ATOMIC_RELAXED);
    __atomic_add_fetch(&dt_heap, real_size(p), __ATOMIC_RELAXED);
  }
  return p;
}

static void count_free(void *p) {
  __atomic_sub_fetch(&dt_heap, real_size(p), __ATOMIC_RELAXED);
  free(p);
}

static size_t counted_heap(void) {
  return __atomic_load_n(&dt_heap, __ATOMIC_RELAXED);
}

/* Bytes in chunks in use, all arenas (0 without mallinfo2). */
static size_t malloc_in_use(void) {
#ifdef HAVE_MALLINFO2
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
#else
  return 0;
#endif
}

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

/* ---- the zone ------------------------------------------------------------ */

static void hit_name(const config_t *cf, size_t i, char *buf, size_t cap) {
  snprintf(buf, cap, "n%zu.%s", i, cf->domain);
}

static void mem_name(const config_t *cf, size_t i, char *buf, size_t cap) {
  snprintf(buf, cap, "m%zu.%s", i, cf->domain);
}

static void hit_v4(size_t i, uint8_t a[4]) {
  a[0] = 198;
  a[1] = 18;
  a[2] = (uint8_t)(i >> 8);
  a[3] = (uint8_t)i;
}

static void hit_v6(size_t i, uint8_t a[16]) {
  memset(a, 0, 16);
  a[0] = 0x20;
  a[1] = 0x01;
  a[2] = 0x0d;
  a[3] = 0xb8;
  a[14] = (uint8_t)(i >> 8);
  a[15] = (uint8_t)i;
}

static void mem_v4(size_t i, uint8_t a[4]) {
  a[0] = 10;
  a[1] = (uint8_t)(i >> 16);
  a[2] = (uint8_t)(i >> 8);
  a[3] = (uint8_t)i;
}

/* Socket addresses are read with memcpy, never through a cast pointer
 * (see bench_resolve.c). True when sa is name i's A or AAAA address. */
static bool sa_is_hit_addr(const void *sa, size_t i) {
  const char *p = sa;
  sa_family_t family;
  uint8_t want[16], got[16];
  memcpy(&family, p + offsetof(struct sockaddr, sa_family), sizeof(family));
  if (family == AF_INET) {
    hit_v4(i, want);
    memcpy(got, p + offsetof(struct sockaddr_in, sin_addr), 4);
    return memcmp(want, got, 4) == 0;
  }
  if (family == AF_INET6) {
    hit_v6(i, want);
    memcpy(got, p + offsetof(struct sockaddr_in6, sin6_addr), 16);
    return memcmp(want, got, 16) == 0;
  }
  return false;
}

/* ---- the contenders ------------------------------------------------------ */

typedef enum {
  H_DT_ADDRS,
  H_DT_ADDRS4,
  H_DT_INTO,
  H_UB_ASYNC,
  H_UB_SYNC,
  H_GAI,
  NHITTERS
} hitter_t;

static const char *const hitter_label[NHITTERS] = {
    "dialtone `dt_resolver_lookup_addrs`, AF_UNSPEC (A and AAAA entries)",
    "dialtone `dt_resolver_lookup_addrs`, AF_INET (one entry)",
    "dialtone `dt_resolver_query_into`, A",
    "libunbound `ub_resolve_async` + `ub_wait`, A",
    "libunbound `ub_resolve`, A",
    "glibc `getaddrinfo`, AF_UNSPEC (no cache: asks NSD every time)",
};

/* The same, plain, for the TSV and the plots; and what each is. */
static const char *const hitter_short[NHITTERS] = {
    "dialtone lookup_addrs AF_UNSPEC", "dialtone lookup_addrs AF_INET",
    "dialtone query_into A",           "libunbound ub_resolve_async+ub_wait A",
    "libunbound ub_resolve A",         "glibc getaddrinfo (no cache)",
};
static const char *const hitter_kind[NHITTERS] = {
    "base", "dialtone", "dialtone", "alt", "alt", "alt"};

/* Calls per timed batch: each batch lasts a fraction of a millisecond. */
static const size_t hitter_batch[NHITTERS] = {2000, 2000, 2000, 20, 2, 5};

typedef struct {
  dt_resolver_t *dt;
#ifdef DT_BENCH_UNBOUND
  struct ub_ctx *ub;
#endif
  char name[MAX_THREADS][300];
  const char *skip[NHITTERS];     /* why not measured at all */
  const char *skip_two[NHITTERS]; /* why not on two threads */
} world_t;

static bool dt_addrs_one(world_t *w, int k) {
  dt_addr_t a[4];
  size_t n = 0;
  return dt_resolver_lookup_addrs(w->dt, w->name[k], AF_UNSPEC, TIMEOUT_MS, a,
                                  4, &n) == DT_OK &&
         n == 2;
}

static bool dt_addrs_check(world_t *w, int k) {
  dt_addr_t a[4];
  size_t n = 0;
  if (dt_resolver_lookup_addrs(w->dt, w->name[k], AF_UNSPEC, TIMEOUT_MS, a, 4,
                               &n) != DT_OK ||
      n != 2) {
    return false;
  }
  return sa_is_hit_addr(&a[0].addr, (size_t)k) &&
         sa_is_hit_addr(&a[1].addr, (size_t)k);
}

/* One cached question: the hit a user of one family pays. */
static bool dt_addrs4(world_t *w, int k, bool check) {
  dt_addr_t a[4];
  size_t n = 0;
  if (dt_resolver_lookup_addrs(w->dt, w->name[k], AF_INET, TIMEOUT_MS, a, 4,
                               &n) != DT_OK ||
      n != 1) {
    return false;
  }
  return !check || sa_is_hit_addr(&a[0].addr, (size_t)k);
}

/* Caller storage for dt_resolver_query_into, aligned to 8 as it needs. */
typedef struct {
  uint64_t words[256];
} answer_buf_t;

static bool dt_into_one(world_t *w, int k) {
  answer_buf_t buf;
  size_t len = sizeof(buf);
  const dt_answer_t *a = NULL;
  return dt_resolver_query_into(w->dt, w->name[k], DT_TYPE_A, 0, TIMEOUT_MS,
                                &buf, &len, &a) == DT_OK &&
         a->nanswer == 1;
}

static bool dt_into_check(world_t *w, int k) {
  answer_buf_t buf;
  size_t len = sizeof(buf);
  const dt_answer_t *a = NULL;
  uint8_t want[4];
  hit_v4((size_t)k, want);
  return dt_resolver_query_into(w->dt, w->name[k], DT_TYPE_A, 0, TIMEOUT_MS,
                                &buf, &len, &a) == DT_OK &&
         a->nanswer == 1 && a->answer[0].rdlength == 4 &&
         memcmp(a->answer[0].rdata, want, 4) == 0;
}

#ifdef DT_BENCH_UNBOUND
typedef struct {
  int done;
  int ok;
  uint8_t v4[4];
} ub_wait_t;

static void ub_cb(void *arg, int err, struct ub_result *r) {
  ub_wait_t *x = arg;
  x->ok = err == 0 && r->havedata && r->len[0] == 4;
  if (x->ok) {
    memcpy(x->v4, r->data[0], 4);
  }
  ub_resolve_free(r);
  x->done = 1;
}

static bool ub_async(world_t *w, int k, uint8_t v4[4]) {
  ub_wait_t x;
  memset(&x, 0, sizeof(x));
  int id;
  if (ub_resolve_async(w->ub, w->name[k], 1, 1, &x, ub_cb, &id) != 0) {
    return false;
  }
  while (!x.done) {
    if (ub_wait(w->ub) != 0) {
      return false;
    }
  }
  memcpy(v4, x.v4, 4);
  return x.ok;
}

static bool ub_sync(world_t *w, int k, uint8_t v4[4]) {
  struct ub_result *r = NULL;
  bool ok = ub_resolve(w->ub, w->name[k], 1, 1, &r) == 0 && r->havedata &&
            r->len[0] == 4;
  if (ok) {
    memcpy(v4, r->data[0], 4);
  }
  ub_resolve_free(r);
  return ok;
}
#endif

static bool gai(const char *name, size_t i, bool check) {
  struct addrinfo hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo *res = NULL;
  if (getaddrinfo(name, NULL, &hints, &res) != 0) {
    return false;
  }
  size_t n = 0;
  bool ok = true;
  for (struct addrinfo *p = res; p != NULL; p = p->ai_next) {
    n++;
    if (check) {
      ok = ok && sa_is_hit_addr(p->ai_addr, i);
    }
  }
  freeaddrinfo(res);
  return ok && n == 2;
}

/* One lookup of thread k's name; check: the whole answer, else only the
 * status and the number of records. */
static bool lookup(world_t *w, hitter_t h, int k, bool check) {
#ifdef DT_BENCH_UNBOUND
  uint8_t v4[4], want[4];
  hit_v4((size_t)k, want);
#endif
  switch (h) {
  case H_DT_ADDRS:
    return check ? dt_addrs_check(w, k) : dt_addrs_one(w, k);
  case H_DT_ADDRS4:
    return dt_addrs4(w, k, check);
  case H_DT_INTO:
    return check ? dt_into_check(w, k) : dt_into_one(w, k);
#ifdef DT_BENCH_UNBOUND
  case H_UB_ASYNC:
    return ub_async(w, k, v4) && (!check || memcmp(v4, want, 4) == 0);
  case H_UB_SYNC:
    return ub_sync(w, k, v4) && (!check || memcmp(v4, want, 4) == 0);
#endif
  case H_GAI:
    return gai(w->name[k], (size_t)k, check);
  default:
    return false;
  }
}

/* ---- timing -------------------------------------------------------------- */

typedef struct {
  int64_t *mean; /* ns per call of each batch */
  size_t n;
  int64_t median, best, p10, p90;
  bool failed;
} series_t;

static void series_alloc(series_t *s) {
  memset(s, 0, sizeof(*s));
  s->mean = calloc(MAX_BATCHES, sizeof(int64_t));
  if (s->mean == NULL) {
    die("%s", "out of memory");
  }
}

static void series_done(series_t *s) {
  if (s->n == 0) {
    return;
  }
  qsort(s->mean, s->n, sizeof(s->mean[0]), bench_cmp_i64);
  s->median = bench_pct(s->mean, s->n, 50);
  s->p10 = bench_pct(s->mean, s->n, 10);
  s->p90 = bench_pct(s->mean, s->n, 90);
  s->best = s->mean[0];
}

/* One batch: false when a call failed. */
static bool batch(world_t *w, hitter_t h, int k, series_t *s) {
  size_t calls = hitter_batch[h];
  bool ok = true;
  int64_t t0 = bench_now_ns();
  for (size_t i = 0; i < calls; i++) {
    ok &= lookup(w, h, k, false);
  }
  int64_t dt = bench_now_ns() - t0;
  if (s->n < MAX_BATCHES) {
    s->mean[s->n++] = dt / (int64_t)calls;
  }
  return ok;
}

typedef struct {
  world_t *w;
  hitter_t h;
  int k, cpu;
  pthread_barrier_t *start;
  int *stop; /* atomic */
  series_t s;
  bool pinned;
} runner_t;

static void *runner(void *arg) {
  runner_t *r = arg;
  r->pinned = pin(r->cpu);
  pthread_barrier_wait(r->start);
  while (!__atomic_load_n(r->stop, __ATOMIC_RELAXED) && r->s.n < MAX_BATCHES) {
    if (!batch(r->w, r->h, r->k, &r->s)) {
      r->s.failed = true;
      break;
    }
  }
  return NULL;
}

/* Both threads look up at once, each its own name on its own CPU, for
 * TWO_THREAD_MS. */
static void run_two(const config_t *cf, world_t *w, hitter_t h,
                    series_t out[MAX_THREADS]) {
  pthread_barrier_t start;
  int stop = 0;
  runner_t r[MAX_THREADS];
  pthread_t t[MAX_THREADS];
  pthread_barrier_init(&start, NULL, MAX_THREADS + 1);
  for (int k = 0; k < MAX_THREADS; k++) {
    memset(&r[k], 0, sizeof(r[k]));
    r[k].w = w;
    r[k].h = h;
    r[k].k = k;
    r[k].cpu = cf->cpu[k];
    r[k].start = &start;
    r[k].stop = &stop;
    r[k].s = out[k];
    if (pthread_create(&t[k], NULL, runner, &r[k]) != 0) {
      die("%s", "pthread_create failed");
    }
  }
  pthread_barrier_wait(&start);
  struct timespec ts = {TWO_THREAD_MS / 1000,
                        (TWO_THREAD_MS % 1000) * 1000000L};
  nanosleep(&ts, NULL);
  __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
  for (int k = 0; k < MAX_THREADS; k++) {
    pthread_join(t[k], NULL);
    if (!r[k].pinned) {
      die("%s", "cannot pin a thread to its CPU");
    }
    out[k] = r[k].s;
    series_done(&out[k]);
  }
  pthread_barrier_destroy(&start);
}

/* ---- setup --------------------------------------------------------------- */

static dt_resolver_t *dt_open(const config_t *cf, size_t max_entries) {
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  const char *servers[1] = {cf->server};
  o.servers = servers;
  o.nservers = 1;
  o.hosts = ""; /* no hosts file: every name goes to the cache */
  o.timeout_ms = TIMEOUT_MS;
  o.attempts = 1;
  if (max_entries > 0) {
    o.cache_max_entries = max_entries;
  }
  dt_resolver_t *r = NULL;
  dt_status_t st = dt_resolver_new(&o, &r);
  if (st != DT_OK) {
    die("dt_resolver_new: %s", dt_strerror(st));
  }
  return r;
}

#ifdef DT_BENCH_UNBOUND
/* A context forwarding everything to the benchmark's server, resolving in
 * a thread of this process (not a forked one) so that its cache is in this
 * process's heap and shared by every call. cache_mb: the limit of each of
 * its two caches (messages, RRsets), 0 for libunbound's default. Returns
 * NULL with *why set when it cannot be set up. */
static struct ub_ctx *ub_open(const config_t *cf, size_t cache_mb,
                              const char **why) {
  static char msg[300];
  char fwd[300];
  const char *s = cf->server;
  const char *colon = strrchr(s, ':');
  /* libunbound writes ADDR@PORT. */
  if (s[0] == '[') {
    const char *end = strchr(s, ']');
    if (end == NULL) {
      die("bad server: %s", s);
    }
    snprintf(fwd, sizeof(fwd), "%.*s@%s", (int)(end - s - 1), s + 1,
             end[1] == ':' ? end + 2 : "53");
  } else if (colon != NULL) {
    snprintf(fwd, sizeof(fwd), "%.*s@%s", (int)(colon - s), s, colon + 1);
  } else {
    snprintf(fwd, sizeof(fwd), "%s", s);
  }
  struct ub_ctx *ub = ub_ctx_create();
  if (ub == NULL) {
    *why = "SKIP libunbound: ub_ctx_create failed";
    return NULL;
  }
  char size[32];
  snprintf(size, sizeof(size), "%zum", cache_mb);
  int rc = 0;
  const char *step = "";
  /* By default libunbound never asks 127.0.0.0/8 or ::1. */
  if ((rc = ub_ctx_set_option(ub, "do-not-query-localhost:", "no")) != 0) {
    step = "do-not-query-localhost";
  } else if (cache_mb > 0 &&
             (rc = ub_ctx_set_option(ub, "msg-cache-size:", size)) != 0) {
    step = "msg-cache-size";
  } else if (cache_mb > 0 &&
             (rc = ub_ctx_set_option(ub, "rrset-cache-size:", size)) != 0) {
    step = "rrset-cache-size";
  } else if ((rc = ub_ctx_set_fwd(ub, fwd)) != 0) {
    step = "ub_ctx_set_fwd";
  } else if ((rc = ub_ctx_async(ub, 1)) != 0) {
    step = "ub_ctx_async";
  } else if ((rc = ub_ctx_zone_add(ub, cf->domain, "transparent")) != 0) {
    /* Unbound's built-in local zones answer NXDOMAIN for every name under
     * the special-use "test." (RFC 6761); a transparent zone for the
     * benchmark's domain lets its questions through. This also finalises
     * the context, so it comes last. */
    step = "ub_ctx_zone_add";
  }
  if (rc != 0) {
    snprintf(msg, sizeof(msg), "SKIP libunbound: %s: %s", step,
             ub_strerror(rc));
    *why = msg;
    ub_ctx_delete(ub);
    return NULL;
  }
  return ub;
}
#endif

/* Looks up every name once (the cold, cache-filling lookup) and checks
 * the answers; marks what cannot be measured. */
static void warm_up(const config_t *cf, world_t *w) {
  int nthreads = cf->ncpu;
  for (int h = 0; h < NHITTERS; h++) {
    if (w->skip[h] != NULL) {
      continue;
    }
    for (int k = 0; k < nthreads; k++) {
      lookup(w, (hitter_t)h, k, false);
      if (!lookup(w, (hitter_t)h, k, true)) {
        w->skip[h] = "wrong or no answer before timing";
      }
    }
  }
}

/* ---- the hit run --------------------------------------------------------- */

static double rate_m(int64_t ns_per_call) {
  return ns_per_call > 0 ? 1000.0 / (double)ns_per_call : 0;
}

/* The hit run's figures and goals, from the series of its tables. */
static void hits_tsv(const config_t *cf, const world_t *w,
                     const series_t one[NHITTERS],
                     series_t two[NHITTERS][MAX_THREADS],
                     const double scaling[NHITTERS]) {
  bench_tsv_t *t = cf->tsv;
  if (t == NULL) {
    return;
  }
  char title[200];
  snprintf(title, sizeof(title), "Cached lookup, one thread on CPU %d",
           cf->cpu[0]);
  bench_tsv_figure(t, "hit_1t", title, "ns", "median of batch means",
                   "p10-p90");
  for (int h = 0; h < NHITTERS; h++) {
    const series_t *s = &one[h];
    if (w->skip[h] != NULL || s->failed || s->n == 0) {
      bench_tsv_skip(t, BENCH_NO_PARAM, hitter_short[h], hitter_kind[h],
                     w->skip[h] != NULL ? w->skip[h]
                                        : "a call failed during the run");
      continue;
    }
    bench_tsv_row(t, BENCH_NO_PARAM, hitter_short[h], hitter_kind[h],
                  (double)s->median, (double)s->p10, (double)s->p90, (long)s->n,
                  NULL);
  }
  const series_t *base = &one[H_DT_ADDRS];
  bool have_base = w->skip[H_DT_ADDRS] == NULL && !base->failed && base->n;
  double hit4 = w->skip[H_DT_ADDRS4] == NULL && !one[H_DT_ADDRS4].failed &&
                        one[H_DT_ADDRS4].n > 0
                    ? (double)one[H_DT_ADDRS4].median
                    : NAN;
  bench_tsv_goal(t, BENCH_NO_PARAM, true,
                 "a hit under 150 ns single-threaded (one cached answer: "
                 "lookup_addrs AF_INET)",
                 "ns", hit4, hit4 < 150);
  double ub_best = NAN;
  for (int h = H_UB_ASYNC; h <= H_UB_SYNC; h++) {
    if (w->skip[h] == NULL && !one[h].failed && one[h].n > 0 &&
        (isnan(ub_best) || one[h].median < ub_best)) {
      ub_best = (double)one[h].median;
    }
  }
  double x = have_base ? ub_best / (double)base->median : NAN;
  bench_tsv_goal(t, BENCH_NO_PARAM, true,
                 "over 100× faster than libunbound's fastest cached lookup "
                 "(lookup_addrs AF_UNSPEC)",
                 "×", x, x > 100);

  snprintf(title, sizeof(title),
           "Cached lookups per second, two threads on different names, "
           "CPUs %d and %d",
           cf->cpu[0], cf->ncpu >= 2 ? cf->cpu[1] : cf->cpu[0]);
  bench_tsv_figure(t, "hit_2t", title, "lookups/s",
                   "sum of the two threads' median batch rates", "-");
  for (int h = 0; h < NHITTERS; h++) {
    const series_t *p = two[h];
    const char *why = w->skip[h]       ? w->skip[h]
                      : cf->ncpu < 2   ? "SKIP: one CPU only"
                      : w->skip_two[h] ? w->skip_two[h]
                      : one[h].failed || p[0].failed || p[1].failed ||
                              p[0].n == 0 || p[1].n == 0
                          ? "a call failed during the run"
                          : NULL;
    if (why != NULL) {
      bench_tsv_skip(t, BENCH_NO_PARAM, hitter_short[h], hitter_kind[h], why);
      continue;
    }
    double all = 1e9 / (double)p[0].median + 1e9 / (double)p[1].median;
    bench_tsv_row(t, BENCH_NO_PARAM, hitter_short[h], hitter_kind[h], all, NAN,
                  NAN, (long)(p[0].n < p[1].n ? p[0].n : p[1].n), NULL);
  }
  double sc =
      cf->ncpu >= 2 && scaling[H_DT_ADDRS] > 0 && scaling[H_DT_INTO] > 0
          ? (scaling[H_DT_ADDRS] < scaling[H_DT_INTO] ? scaling[H_DT_ADDRS]
                                                      : scaling[H_DT_INTO])
          : NAN;
  bench_tsv_goal(t, BENCH_NO_PARAM, true,
                 "two threads give at least 1.8× the lookups/s of one "
                 "(the lesser of lookup_addrs and query_into)",
                 "×", sc, sc >= 1.8);
  bench_tsv_plot(t, "cache-hit", "bars", "hit_1t",
                 "Cached lookup, one thread: median ns per lookup");
}

static void run_hits(const config_t *cf, world_t *w) {
  series_t one[NHITTERS];
  series_t two[NHITTERS][MAX_THREADS];
  memset(two, 0, sizeof(two));
  for (int h = 0; h < NHITTERS; h++) {
    series_alloc(&one[h]);
  }

  warm_up(cf, w);
  dt_resolver_stats_t rs0, rs1;
  dt_cache_stats_t cs0, cs1;
  dt_resolver_get_stats(w->dt, &rs0);
  dt_cache_get_stats(w->dt, &cs0);

  /* One thread, on the first CPU, contenders interleaved, starting with a
   * different one each round. */
  int64_t t0 = bench_now_ns();
  for (int round = 0; round < ROUNDS; round++) {
    for (int j = 0; j < NHITTERS; j++) {
      hitter_t h = (hitter_t)((round + j) % NHITTERS);
      if (w->skip[h] != NULL || one[h].failed) {
        continue;
      }
      if (!batch(w, h, 0, &one[h])) {
        one[h].failed = true;
      }
    }
  }
  double elapsed1 = (double)(bench_now_ns() - t0) / 1e9;
  for (int h = 0; h < NHITTERS; h++) {
    series_done(&one[h]);
  }

  /* Two threads, one contender at a time. */
  double elapsed2 = 0;
  if (cf->ncpu >= 2) {
    t0 = bench_now_ns();
    for (int h = 0; h < NHITTERS; h++) {
      if (w->skip[h] != NULL || w->skip_two[h] != NULL || one[h].failed) {
        continue;
      }
      for (int k = 0; k < MAX_THREADS; k++) {
        series_alloc(&two[h][k]);
      }
      run_two(cf, w, (hitter_t)h, two[h]);
    }
    elapsed2 = (double)(bench_now_ns() - t0) / 1e9;
  }
  dt_resolver_get_stats(w->dt, &rs1);
  dt_cache_get_stats(w->dt, &cs1);

  printf("### Cached lookups\n\n");
  printf("Each name is looked up once first (the cold lookup that fills the "
         "cache) and its answer checked; then thread k looks up `n<k>.%s` "
         "(one A and one AAAA) over and over. A batch is a run of calls "
         "(column 2) timed as a whole; the figure is the median of the "
         "batches' mean time per call. One thread: CPU %d, %d rounds of one "
         "batch per "
         "contender, interleaved (%.1f s). Two threads: CPUs %d and %d, "
         "different names, %d ms per contender (%.1f s). NSD, on CPU 0, is "
         "idle during cache hits.\n\n",
         cf->domain, cf->cpu[0], ROUNDS, elapsed1, cf->cpu[0],
         cf->ncpu >= 2 ? cf->cpu[1] : cf->cpu[0], TWO_THREAD_MS, elapsed2);
  printf("| lookup | calls per batch | 1 thread: median ns | 1 thread: best "
         "batch, ns | 2 threads: median ns, thread 0 / thread 1 | 2 threads: "
         "lookups/s in all | 2 threads ÷ 1 thread, lookups/s | this ÷ "
         "dialtone `lookup_addrs`, 1 thread |\n");
  printf("|---|--:|--:|--:|--:|--:|--:|--:|\n");
  int64_t base = 0;
  if (w->skip[H_DT_ADDRS] == NULL && !one[H_DT_ADDRS].failed) {
    base = one[H_DT_ADDRS].median;
  }
  double scaling[NHITTERS] = {0};
  for (int h = 0; h < NHITTERS; h++) {
    const series_t *s = &one[h];
    printf("| %s | %zu |", hitter_label[h], hitter_batch[h]);
    if (w->skip[h] != NULL || s->failed || s->n == 0) {
      printf(" %s | – | – | – | – | – |\n",
             w->skip[h] != NULL ? w->skip[h] : "a call failed during the run");
      continue;
    }
    printf(" %lld | %lld |", (long long)s->median, (long long)s->best);
    const series_t *t = two[h];
    if (cf->ncpu < 2) {
      printf(" one CPU only | – | – |");
    } else if (w->skip_two[h] != NULL) {
      printf(" %s | – | – |", w->skip_two[h]);
    } else if (t[0].failed || t[1].failed || t[0].n == 0 || t[1].n == 0) {
      printf(" a call failed during the run | – | – |");
    } else {
      double all = rate_m(t[0].median) + rate_m(t[1].median);
      scaling[h] = all / rate_m(s->median);
      printf(" %lld / %lld | %.0f | %.2f |", (long long)t[0].median,
             (long long)t[1].median, all * 1e6, scaling[h]);
    }
    if (base > 0) {
      printf(" %.1f |\n", (double)s->median / (double)base);
    } else {
      printf(" – |\n");
    }
  }
  printf("\n");
  uint64_t sent0 = rs0.queries_udp + rs0.queries_tcp;
  uint64_t sent1 = rs1.queries_udp + rs1.queries_tcp;
  printf("Checks: dialtone answered %llu questions from its cache during the "
         "timed runs and sent %llu queries%s.\n\n",
         (unsigned long long)(cs1.hits - cs0.hits),
         (unsigned long long)(sent1 - sent0),
         sent1 == sent0 ? " (all hits)"
                        : " — **some timed calls were not "
                          "hits**");
#ifdef DT_BENCH_UNBOUND
  printf("libunbound: threaded (`ub_ctx_async(ctx, 1)`), forwarding to NSD "
         "(`ub_ctx_set_fwd`), default options otherwise; its worker thread "
         "shares CPU %d with the caller, its fastest placement here (about "
         "twice as fast as letting it run on the other CPU). `ub_resolve` "
         "sets up a resolver worker for every call (perf shows SHA-256 "
         "seeding its random state and page faults of fresh buffers), which "
         "is why it is slower than the round trip to the worker thread of "
         "`ub_resolve_async`.\n\n",
         cf->cpu[0]);
#endif
  printf("getaddrinfo has no cache: each call is a full query to NSD. With "
         "two threads, the one on CPU 0 shares that CPU with NSD, which "
         "every query of both threads needs.\n\n");

  if (base > 0) {
    int64_t ub_best = 0, ub_best_batch = 0;
    const char *ub_best_label = NULL;
    for (int h = H_UB_ASYNC; h <= H_UB_SYNC; h++) {
      if (w->skip[h] == NULL && !one[h].failed && one[h].n > 0 &&
          (ub_best == 0 || one[h].median < ub_best)) {
        ub_best = one[h].median;
        ub_best_batch = one[h].best;
        ub_best_label = hitter_label[h];
      }
    }
    if (ub_best > 0) {
      printf("dialtone's `dt_resolver_lookup_addrs` (two cache entries) is "
             "**%.0f×** faster than libunbound's fastest cached lookup (%s, "
             "one entry: %.1f µs; best batches against best batch: %.0f×)",
             (double)ub_best / (double)base, ub_best_label,
             (double)ub_best / 1000.0,
             (double)ub_best_batch / (double)one[H_DT_ADDRS].best);
      if (w->skip[H_DT_INTO] == NULL && !one[H_DT_INTO].failed) {
        printf("; `dt_resolver_query_into` A, like for like, is **%.0f×** "
               "faster",
               (double)ub_best / (double)one[H_DT_INTO].median);
      }
      if (w->skip[H_UB_SYNC] == NULL && !one[H_UB_SYNC].failed &&
          one[H_UB_SYNC].n > 0) {
        printf(", and `dt_resolver_lookup_addrs` is %.0f× faster than "
               "`ub_resolve`",
               (double)one[H_UB_SYNC].median / (double)base);
      }
      printf(".\n\n");
    }
    /* A hit is one cached answer: judged on the one-entry lookup, with the
     * two-entry AF_UNSPEC figure beside it. */
    long long one_hit = w->skip[H_DT_ADDRS4] == NULL && !one[H_DT_ADDRS4].failed
                            ? (long long)one[H_DT_ADDRS4].median
                            : -1;
    printf("Goal, a hit under 150 ns single-threaded (one cached answer, "
           "`dt_resolver_lookup_addrs` AF_INET): %lld ns → **%s** "
           "(AF_UNSPEC, two cached answers: %lld ns)\n\n",
           one_hit, one_hit >= 0 && one_hit < 150 ? "met" : "not met",
           (long long)base);
    if (ub_best > 0) {
      double x = (double)ub_best / (double)base;
      printf("Goal, over 100× faster than libunbound's cached lookup: "
             "%.1f× → **%s**\n\n",
             x, x > 100 ? "met" : "not met");
    } else {
      printf("Goal, over 100× faster than libunbound's cached lookup: not "
             "measured (libunbound skipped)\n\n");
    }
    if (cf->ncpu >= 2 && scaling[H_DT_ADDRS] > 0) {
      printf("Goal, scaling with threads on different names (criterion: two "
             "threads give at least 1.8× the lookups per second of one): "
             "`dt_resolver_lookup_addrs` %.2f×, `dt_resolver_query_into` "
             "%.2f× → **%s**\n\n",
             scaling[H_DT_ADDRS], scaling[H_DT_INTO],
             scaling[H_DT_ADDRS] >= 1.8 && scaling[H_DT_INTO] >= 1.8
                 ? "met"
                 : "not met");
    }
  }
  hits_tsv(cf, w, one, two, scaling);
  for (int h = 0; h < NHITTERS; h++) {
    free(one[h].mean);
    for (int k = 0; k < MAX_THREADS; k++) {
      free(two[h][k].mean);
    }
  }
}

/* ---- the memory run ------------------------------------------------------ */

typedef struct {
  const char *label;
  size_t names, entries, failed;
  double fill_s;
  size_t heap;    /* mallinfo2 delta */
  size_t counted; /* dialtone's allocator hook delta (0: not available) */
  size_t own;     /* the cache's own count (0: not available) */
  long long rss;  /* delta */
  bool stopped;   /* the time limit cut the fill short */
  const char *skip;
} mem_row_t;

typedef struct {
  const config_t *cf;
  dt_resolver_t *r;
  size_t from, step, n;
  int cpu;
  size_t failed;
  bool stopped;
} filler_t;

static void *dt_fill(void *arg) {
  filler_t *f = arg;
  if (f->cpu >= 0) {
    pin(f->cpu);
  }
  char name[300];
  size_t asked = 0;
  for (size_t i = f->from; i < f->n; i += f->step) {
    if (++asked % 1024 == 0 && bench_now_ns() > f->cf->fill_deadline) {
      f->stopped = true;
      break;
    }
    mem_name(f->cf, i, name, sizeof(name));
    dt_answer_t *a = NULL;
    uint8_t want[4];
    mem_v4(i, want);
    if (dt_resolver_query(f->r, name, DT_TYPE_A, 0, TIMEOUT_MS, &a) != DT_OK ||
        dt_answer_status(a) != DT_OK || a->nanswer != 1 ||
        a->answer[0].rdlength != 4 ||
        memcmp(a->answer[0].rdata, want, 4) != 0) {
      f->failed++;
    }
    dt_answer_free(a);
  }
  return NULL;
}

/* Fills a fresh resolver's cache with n names of one A record each, asked
 * with dt_resolver_query as a program would, by FILL_THREADS threads
 * spread over the CPUs. */
static void mem_dialtone(const config_t *cf, size_t n, mem_row_t *row) {
  memset(row, 0, sizeof(*row));
  row->label = "dialtone";
  row->names = n;
  /* The bounds are split between the cache's shards: twice the names
   * keeps every shard under its share. */
  dt_resolver_t *r = dt_open(cf, 2 * n);
  size_t counted0 = counted_heap(), heap0 = malloc_in_use(), rss0 = rss();
  int64_t t0 = bench_now_ns();
  filler_t f[FILL_THREADS];
  pthread_t t[FILL_THREADS];
  int nthreads = FILL_THREADS;
  for (int k = 0; k < nthreads; k++) {
    f[k] = (filler_t){
        cf, r, (size_t)k, (size_t)nthreads, n, cf->cpu[k % cf->ncpu], 0, false};
    if (pthread_create(&t[k], NULL, dt_fill, &f[k]) != 0) {
      die("%s", "pthread_create failed");
    }
  }
  for (int k = 0; k < nthreads; k++) {
    pthread_join(t[k], NULL);
    row->failed += f[k].failed;
    row->stopped |= f[k].stopped;
  }
  row->fill_s = (double)(bench_now_ns() - t0) / 1e9;
  dt_cache_stats_t st;
  dt_cache_get_stats(r, &st);
  row->entries = st.entries;
  row->own = st.bytes;
  row->counted = counted_heap() - counted0;
  row->heap = malloc_in_use() - heap0;
  row->rss = (long long)rss() - (long long)rss0;
  dt_resolver_free(r);
  /* Gives the freed memory back, so that the next run's RSS starts low. */
  malloc_trim(0);
}

#ifdef DT_BENCH_UNBOUND
typedef struct {
  size_t pending, done, failed;
} ub_fill_t;

typedef struct {
  ub_fill_t *fill;
  size_t i;
} ub_fill_arg_t;

static void ub_fill_cb(void *arg, int err, struct ub_result *r) {
  ub_fill_arg_t *a = arg;
  uint8_t want[4];
  mem_v4(a->i, want);
  if (err != 0 || !r->havedata || r->len[0] != 4 ||
      memcmp(r->data[0], want, 4) != 0) {
    a->fill->failed++;
  }
  ub_resolve_free(r);
  a->fill->pending--;
  a->fill->done++;
}

/* Fills a fresh context's cache with n names, up to 256 questions in
 * flight (fewer than its num-queries-per-thread), results collected with
 * ub_process when its descriptor is readable. */
static void mem_unbound(const config_t *cf, size_t n, mem_row_t *row) {
  memset(row, 0, sizeof(*row));
  row->label = "libunbound";
  row->names = n;
  /* Messages and RRsets each get room for every name many times over:
   * nothing is evicted. */
  size_t mb = n / 1000 + 64;
  const char *why = NULL;
  struct ub_ctx *ub = ub_open(cf, mb, &why);
  if (ub == NULL) {
    row->skip = why;
    return;
  }
  ub_fill_arg_t *args = calloc(n, sizeof(*args));
  if (args == NULL) {
    die("%s", "out of memory");
  }
  ub_fill_t fill = {0, 0, 0};
  /* The first question starts the worker thread and finalises the
   * context: its memory is not the cache's. */
  char name[300];
  hit_name(cf, 0, name, sizeof(name));
  struct ub_result *res = NULL;
  if (ub_resolve(ub, name, 1, 1, &res) != 0) {
    row->skip = "SKIP libunbound: the first question failed";
    ub_resolve_free(res);
    ub_ctx_delete(ub);
    free(args);
    return;
  }
  ub_resolve_free(res);
  ub_wait_t x;
  memset(&x, 0, sizeof(x));
  int id;
  if (ub_resolve_async(ub, name, 1, 1, &x, ub_cb, &id) == 0) {
    ub_wait(ub);
  }
  size_t heap0 = malloc_in_use(), rss0 = rss();
  int64_t t0 = bench_now_ns();
  size_t next = 0;
  while (fill.done < n) {
    if (next < n && bench_now_ns() > cf->fill_deadline) {
      row->stopped = true;
      n = next; /* wait for the questions in flight only */
    }
    while (fill.pending < 256 && next < n) {
      mem_name(cf, next, name, sizeof(name));
      args[next] = (ub_fill_arg_t){&fill, next};
      if (ub_resolve_async(ub, name, 1, 1, &args[next], ub_fill_cb, &id) != 0) {
        fill.failed++;
        fill.done++;
      } else {
        fill.pending++;
      }
      next++;
    }
    struct pollfd pfd = {ub_fd(ub), POLLIN, 0};
    if (poll(&pfd, 1, TIMEOUT_MS) < 0 && errno != EINTR) {
      die("poll: %s", strerror(errno));
    }
    if (ub_process(ub) != 0) {
      die("%s", "ub_process failed");
    }
  }
  row->fill_s = (double)(bench_now_ns() - t0) / 1e9;
  row->failed = fill.failed;
  row->entries = n - fill.failed;
  /* The argument array is the benchmark's, not the cache's. */
  size_t args_bytes = real_size(args);
  row->heap = malloc_in_use() - heap0 - args_bytes;
  row->rss = (long long)rss() - (long long)rss0;
  ub_ctx_delete(ub);
  free(args);
  malloc_trim(0);
}
#endif

static void print_bpe(size_t bytes, size_t entries) {
  if (bytes == 0 || entries == 0) {
    printf(" – |");
  } else {
    printf(" %.0f |", (double)bytes / (double)entries);
  }
}

/* Bytes per entry on the heap, the measure both caches share; one fill
 * each (a fill of a million names takes half a minute; the figure is a
 * count of bytes, not a time, and moves by a few bytes between runs). */
static void memory_tsv(const config_t *cf, const mem_row_t *rows, size_t nrows,
                       const mem_row_t *goal) {
  bench_tsv_t *t = cf->tsv;
  if (t == NULL) {
    return;
  }
  bench_tsv_figure(t, "mem_entry",
                   "Heap per cached entry (one A record), by names cached",
                   "B/entry", "heap growth ÷ entries, one fill", "-");
  for (size_t i = 0; i < nrows; i++) {
    const mem_row_t *m = &rows[i];
    bool dt = strcmp(m->label, "dialtone") == 0;
    if (m->skip != NULL) {
      bench_tsv_skip(t, (long)m->names, m->label, dt ? "base" : "alt", m->skip);
      continue;
    }
    if (m->heap == 0 || m->entries == 0) {
      bench_tsv_skip(t, (long)m->names, m->label, dt ? "base" : "alt",
                     "no heap figure (no mallinfo2)");
      continue;
    }
    bench_tsv_row(t, (long)m->names, m->label, dt ? "base" : "alt",
                  (double)m->heap / (double)m->entries, NAN, NAN, 1,
                  m->stopped ? "fill cut short by the time limit" : NULL);
  }
  double mb = NAN;
  if (goal != NULL && goal->entries == 1000000) {
    mb =
        (double)(goal->heap > goal->counted ? goal->heap : goal->counted) / 1e6;
  }
  bench_tsv_goal(t, 1000000, true,
                 "1M entries of one A record each in under 300 MB", "MB", mb,
                 mb < 300);
}

static void run_memory(const config_t *cf) {
  mem_row_t rows[2 * MAX_SIZES];
  size_t nrows = 0;
  for (size_t i = 0; i < cf->nmem_dt; i++) {
    mem_dialtone(cf, cf->mem_dt[i], &rows[nrows++]);
  }
  for (size_t i = 0; i < cf->nmem_ub; i++) {
#ifdef DT_BENCH_UNBOUND
    mem_unbound(cf, cf->mem_ub[i], &rows[nrows]);
#else
    memset(&rows[nrows], 0, sizeof(rows[nrows]));
    rows[nrows].label = "libunbound";
    rows[nrows].names = cf->mem_ub[i];
    rows[nrows].skip = "SKIP libunbound: libunbound-dev not installed";
#endif
    nrows++;
  }
  if (nrows == 0) {
    return;
  }

  printf("### Memory per cached entry\n\n");
  printf("A fresh cache is filled with the names `m0.%s`, `m1.%s`, ..., one A "
         "record each, looked up once (dialtone: `dt_resolver_query` A from "
         "%d threads spread over the CPUs; libunbound: `ub_resolve_async` A, "
         "256 in flight, its cache limits raised so that nothing is evicted). "
         "Bytes per "
         "entry = growth during the fill ÷ entries. *heap*: bytes in chunks "
         "that glibc's malloc has handed out (mallinfo2, every arena, chunk "
         "headers included; the same measure for both). *allocator hook*: "
         "every allocation dialtone makes, counted at its real chunk size "
         "through `dt_set_allocator()`. *own count*: the cache's own "
         "`bytes` statistic. *RSS*: resident size, which also sees "
         "malloc's free lists and page granularity. MB = 10⁶ bytes.\n\n",
         cf->domain, cf->domain, FILL_THREADS);
  printf("| cache | names | entries | failed | fill s | B/entry, heap | "
         "B/entry, allocator hook | B/entry, own count | B/entry, RSS | "
         "heap in all, MB |\n");
  printf("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
  const mem_row_t *goal = NULL;
  for (size_t i = 0; i < nrows; i++) {
    const mem_row_t *m = &rows[i];
    printf("| %s | %zu |", m->label, m->names);
    if (m->skip != NULL) {
      printf(" %s | – | – | – | – | – | – | – |\n", m->skip);
      continue;
    }
    printf(" %zu%s | %zu | %.1f |", m->entries,
           m->stopped ? " (time limit)" : "", m->failed, m->fill_s);
    print_bpe(m->heap, m->entries);
    print_bpe(m->counted, m->entries);
    print_bpe(m->own, m->entries);
    if (m->rss > 0 && m->entries > 0) {
      printf(" %.0f |", (double)m->rss / (double)m->entries);
    } else {
      printf(" – |");
    }
    printf(" %.1f |\n",
           (double)(m->heap > m->counted ? m->heap : m->counted) / 1e6);
    if (strcmp(m->label, "dialtone") == 0 && m->names == 1000000) {
      goal = m;
    }
  }
  printf("\n");
  for (size_t i = 0; i < nrows; i++) {
    for (size_t j = 0; j < nrows; j++) {
      const mem_row_t *d = &rows[i], *u = &rows[j];
      if (strcmp(d->label, "dialtone") == 0 &&
          strcmp(u->label, "libunbound") == 0 && d->names == u->names &&
          d->skip == NULL && u->skip == NULL && d->entries > 0 &&
          u->entries > 0 && d->heap > 0) {
        printf("At %zu names, a dialtone entry takes %.2f× the heap of a "
               "libunbound one (message and RRset).\n\n",
               d->names,
               ((double)d->heap / (double)d->entries) /
                   ((double)u->heap / (double)u->entries));
      }
    }
  }
  if (goal != NULL) {
    size_t bytes = goal->heap > goal->counted ? goal->heap : goal->counted;
    printf("Goal, 1M entries of one A record each in under 300 MB (the "
           "larger of heap and allocator hook): %.1f MB for %zu entries → "
           "**%s**\n\n",
           (double)bytes / 1e6, goal->entries,
           goal->entries == 1000000 && bytes < 300000000 ? "met" : "not met");
  }
  memory_tsv(cf, rows, nrows, goal);
}

/* ---- main ---------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr,
          "usage: bench_cachecmp [-s ADDR:PORT] [-d DOMAIN] [-p CPU[,CPU]]\n"
          "         [-m SIZES] [-u SIZES] [-l SECONDS] [-T TSV]\n"
          "  -s  the authoritative server (default 127.0.0.1:53)\n"
          "  -d  its zone, holding n0, n1 and m0 ... (default bench.test)\n"
          "  -p  CPUs of the threads: one for one thread, two for two too "
          "(default 0)\n"
          "  -m  dialtone cache sizes for memory per entry, comma-separated, "
          "\"\" for none\n"
          "      (default 100000,1000000)\n"
          "  -u  the same for libunbound (default 100000)\n"
          "  -l  cache fills stop this many seconds after the start "
          "(default 120)\n"
          "  -T  also append the figures to this TSV (see bench/report.sh)\n");
  exit(2);
}

static size_t parse_count(const char *s, size_t max) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (*s == '\0' || *end != '\0' || errno != 0 || v > max) {
    die("bad number: %s", s);
  }
  return (size_t)v;
}

static size_t parse_list(const char *list, size_t *out, size_t max_items,
                         size_t max_value) {
  char buf[200];
  if (strlen(list) >= sizeof(buf)) {
    die("list too long: %s", list);
  }
  strcpy(buf, list);
  size_t n = 0;
  for (char *tok = strtok(buf, ","); tok != NULL; tok = strtok(NULL, ",")) {
    if (n == max_items) {
      die("too many items: %s", list);
    }
    out[n++] = parse_count(tok, max_value);
  }
  return n;
}

int main(int argc, char **argv) {
  config_t cf;
  memset(&cf, 0, sizeof(cf));
  cf.server = "127.0.0.1:53";
  cf.domain = "bench.test";
  const char *cpus = "0";
  const char *mem_dt = "100000,1000000";
  const char *mem_ub = "100000";
  size_t limit_s = 120;
  const char *tsv_path = NULL;
  for (int a = 1; a < argc; a++) {
    const char *opt = argv[a];
    if (opt[0] != '-' || opt[1] == '\0' || opt[2] != '\0' || a + 1 >= argc) {
      usage();
    }
    const char *val = argv[++a];
    switch (opt[1]) {
    case 's':
      cf.server = val;
      break;
    case 'd':
      cf.domain = val;
      break;
    case 'p':
      cpus = val;
      break;
    case 'm':
      mem_dt = val;
      break;
    case 'u':
      mem_ub = val;
      break;
    case 'l':
      limit_s = parse_count(val, 3600);
      break;
    case 'T':
      tsv_path = val;
      break;
    default:
      usage();
    }
  }
  size_t cpu[MAX_THREADS];
  cf.ncpu = (int)parse_list(cpus, cpu, MAX_THREADS, CPU_SETSIZE - 1);
  if (cf.ncpu == 0) {
    usage();
  }
  for (int k = 0; k < cf.ncpu; k++) {
    cf.cpu[k] = (int)cpu[k];
  }
  cf.nmem_dt = parse_list(mem_dt, cf.mem_dt, MAX_SIZES, MAX_MEM);
  cf.nmem_ub = parse_list(mem_ub, cf.mem_ub, MAX_SIZES, MAX_MEM);
  cf.fill_deadline = bench_now_ns() + (int64_t)limit_s * 1000000000;

  setvbuf(stdout, NULL, _IOLBF, 0);
  cf.tsv = bench_tsv_open(tsv_path, "cache");
  /* Before any dialtone object exists: memory goes back through the
   * allocator that gave it. */
  const dt_allocator_t counting = {count_malloc, count_realloc, count_free};
  if (dt_set_allocator(&counting) != DT_OK) {
    die("%s", "dt_set_allocator failed");
  }
  /* The main thread, and libunbound's worker thread that it starts,
   * stay on the first CPU. */
  if (!pin(cf.cpu[0])) {
    die("cannot pin to CPU %s", cpus);
  }

  world_t w;
  memset(&w, 0, sizeof(w));
  for (int k = 0; k < MAX_THREADS; k++) {
    hit_name(&cf, (size_t)k, w.name[k], sizeof(w.name[k]));
  }
  w.dt = dt_open(&cf, 0);
#ifdef DT_BENCH_UNBOUND
  const char *why = NULL;
  w.ub = ub_open(&cf, 0, &why);
  if (w.ub == NULL) {
    w.skip[H_UB_ASYNC] = w.skip[H_UB_SYNC] = why;
  }
  printf("- libunbound %s\n\n", ub_version());
#else
  w.skip[H_UB_ASYNC] = w.skip[H_UB_SYNC] =
      "SKIP libunbound: libunbound-dev not installed";
  printf("- libunbound: none\n\nSKIP libunbound: libunbound-dev not "
         "installed\n\n");
#endif
  /* ub_wait and ub_process hand every finished question of a context to
   * whichever thread calls them: no thread can wait for its own alone. */
  w.skip_two[H_UB_ASYNC] = "not measured: `ub_wait` serves every thread's "
                           "questions, not the caller's";
  const char *no_glibc = bench_glibc_unusable(cf.server);
  if (no_glibc != NULL) {
    w.skip[H_GAI] = no_glibc;
    printf("%s\n\n", no_glibc);
  }

  run_hits(&cf, &w);
  dt_resolver_free(w.dt);
#ifdef DT_BENCH_UNBOUND
  if (w.ub != NULL) {
    ub_ctx_delete(w.ub);
  }
#endif
  malloc_trim(0);
  run_memory(&cf);
  bench_tsv_close(cf.tsv);
  return 0;
}
