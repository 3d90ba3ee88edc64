/* bench_resolve: cold A+AAAA lookups of distinct names against one local
 * authoritative server, for dialtone, glibc's getaddrinfo and c-ares, and
 * the cost of a hosts-file hit. Prints Markdown tables; bench/run-bench.sh
 * sets up the server, the namespace and the CPU pinning around it.
 *
 * The zone holds names n0.DOMAIN ... n(N+W-1).DOMAIN, name i with one A
 * record 198.18.(i / 256).(i % 256) (so at most MAX_NAMES of them) and one
 * AAAA record 2001:db8::<i in hex>. Names N .. N+W-1 warm every contender
 * up; names 0 .. N-1 are measured. Each name is looked up once by each
 * contender, in rounds: round i asks name i of every contender, starting
 * with a different contender each round, so drift on a shared machine
 * hits all of them alike. Every answer is checked against the zone; a
 * wrong or missing address is counted as a failure, never timed. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "benchtsv.h"
#include "benchutil.h"
#include "dialtone.h"

#ifdef DT_BENCH_CARES
#include <ares.h>
#endif

#define MAX_NAMES 60000
#define LOOKUP_TIMEOUT_MS 2000
/* A run that fails this often is measuring a broken setup, not a
 * resolver. */
#define MAX_FAILURES 50

typedef enum {
  C_DIALTONE,
  C_GLIBC,
  C_CARES,
  C_CARES_QUERY,
  NCONTENDERS
} contender_t;

static const char *const contender_key[NCONTENDERS] = {"dialtone", "glibc",
                                                       "cares", "cares-query"};
static const char *const contender_label[NCONTENDERS] = {
    "dialtone `dt_resolver_lookup_addrs`",
    "glibc `getaddrinfo`",
    "c-ares `ares_getaddrinfo`",
    "c-ares `ares_query` A + AAAA (reference)",
};
/* The same, plain, for the TSV and the plots. */
static const char *const contender_short[NCONTENDERS] = {
    "dialtone lookup_addrs", "glibc getaddrinfo", "c-ares ares_getaddrinfo",
    "c-ares ares_query A+AAAA"};
static const char *const contender_kind[NCONTENDERS] = {"base", "alt", "alt",
                                                        "ref"};

typedef struct {
  const char *server; /* "ADDR:PORT" */
  const char *domain;
  size_t nnames;
  size_t nwarm;
  bool want[NCONTENDERS];
  const char *title;
  const char *hosts_file; /* NULL: no hosts-file section */
  const char *hosts_name;
  bool etc_hosts; /* /etc/hosts is hosts_file (-G yes) */
  bool glibc_ok;  /* /etc/resolv.conf names the server first */
  int wait_ms;
  int limit_s;
  const char *skip[NCONTENDERS]; /* why a wanted contender is not run */
  bench_tsv_t *tsv;              /* NULL: no -T */
  const char *figure;            /* the cold run's figure in the TSV */
  const char *what;              /* and what it shows (default: title) */
  const char *plot; /* the headline run's plot, its goal in the summary */
} config_t;

static void die(const char *fmt, const char *arg) {
  fprintf(stderr, "bench_resolve: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n");
  exit(2);
}

static void name_of(const config_t *cf, size_t i, char *buf, size_t cap) {
  snprintf(buf, cap, "n%zu.%s", i, cf->domain);
}

static uint32_t v4_of(size_t i) {
  return (198u << 24) | (18u << 16) | (uint32_t)i;
}

static void v6_of(size_t i, struct in6_addr *a) {
  memset(a, 0, sizeof(*a));
  a->s6_addr[0] = 0x20;
  a->s6_addr[1] = 0x01;
  a->s6_addr[2] = 0x0d;
  a->s6_addr[3] = 0xb8;
  a->s6_addr[14] = (uint8_t)(i >> 8);
  a->s6_addr[15] = (uint8_t)i;
}

/* Tally of the addresses one lookup returned, to check against the zone. */
typedef struct {
  int v4, v6, wrong;
} tally_t;

static void tally_v4(tally_t *t, size_t i, const struct in_addr *a) {
  if (ntohl(a->s_addr) == v4_of(i)) {
    t->v4++;
  } else {
    t->wrong++;
  }
}

static void tally_v6(tally_t *t, size_t i, const struct in6_addr *a) {
  struct in6_addr want;
  v6_of(i, &want);
  if (memcmp(a, &want, sizeof(want)) == 0) {
    t->v6++;
  } else {
    t->wrong++;
  }
}

/* Socket addresses are read with memcpy: reading a struct sockaddr_in
 * through a struct sockaddr pointer breaks the aliasing rules, and GCC 12
 * at -O2 did lose the stores of a sockaddr_in filled on the stack. */
static void tally_add(tally_t *t, size_t i, const void *sa) {
  const char *p = sa;
  sa_family_t family;
  memcpy(&family, p + offsetof(struct sockaddr, sa_family), sizeof(family));
  if (family == AF_INET) {
    struct in_addr a;
    memcpy(&a, p + offsetof(struct sockaddr_in, sin_addr), sizeof(a));
    tally_v4(t, i, &a);
  } else if (family == AF_INET6) {
    struct in6_addr a;
    memcpy(&a, p + offsetof(struct sockaddr_in6, sin6_addr), sizeof(a));
    tally_v6(t, i, &a);
  } else {
    t->wrong++;
  }
}

static bool tally_ok(const tally_t *t) {
  return t->v4 == 1 && t->v6 == 1 && t->wrong == 0;
}

/* ---- dialtone ---------------------------------------------------------- */

static dt_resolver_t *dt_open(const config_t *cf, const char *hosts) {
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  const char *servers[1] = {cf->server};
  o.servers = servers;
  o.nservers = 1;
  o.hosts = hosts;
  o.timeout_ms = LOOKUP_TIMEOUT_MS;
  o.attempts = 1;
  dt_resolver_t *r = NULL;
  dt_status_t st = dt_resolver_new(&o, &r);
  if (st != DT_OK) {
    die("dt_resolver_new: %s", dt_strerror(st));
  }
  return r;
}

/* The wait for the server to answer at all, before anything is timed. */
static void wait_ready(const config_t *cf, dt_resolver_t *r) {
  int64_t until = bench_now_ns() + (int64_t)cf->wait_ms * 1000000;
  for (;;) {
    dt_answer_t *a = NULL;
    dt_status_t st = dt_resolver_query(r, cf->domain, DT_TYPE_SOA, 0, 200, &a);
    bool ok = st == DT_OK && dt_answer_status(a) == DT_OK;
    dt_answer_free(a);
    if (ok) {
      return;
    }
    if (bench_now_ns() > until) {
      fprintf(stderr,
              "bench_resolve: no SOA for %s from %s within %d ms (%s)\n",
              cf->domain, cf->server, cf->wait_ms, dt_strerror(st));
      exit(2);
    }
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
  }
}

static bool dt_lookup(dt_resolver_t *r, const char *name, size_t i,
                      int64_t *ns) {
  dt_addr_t addrs[8];
  size_t n = 0;
  int64_t t0 = bench_now_ns();
  dt_status_t st = dt_resolver_lookup_addrs(r, name, AF_UNSPEC,
                                            LOOKUP_TIMEOUT_MS, addrs, 8, &n);
  *ns = bench_now_ns() - t0;
  if (st != DT_OK) {
    return false;
  }
  tally_t t = {0, 0, 0};
  for (size_t k = 0; k < n; k++) {
    tally_add(&t, i, &addrs[k].addr);
  }
  return tally_ok(&t);
}

/* ---- glibc ------------------------------------------------------------- */

static bool gai_lookup(const char *name, size_t i, int64_t *ns) {
  struct addrinfo hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo *res = NULL;
  int64_t t0 = bench_now_ns();
  int rc = getaddrinfo(name, NULL, &hints, &res);
  *ns = bench_now_ns() - t0;
  if (rc != 0) {
    return false;
  }
  tally_t t = {0, 0, 0};
  for (struct addrinfo *p = res; p != NULL; p = p->ai_next) {
    tally_add(&t, i, p->ai_addr);
  }
  freeaddrinfo(res);
  return tally_ok(&t);
}

/* ---- c-ares ------------------------------------------------------------ */

#ifdef DT_BENCH_CARES
/* The channel is created once and kept, as a program that resolves many
 * names would. c-ares 1.18 sends both questions of a lookup on one UDP
 * socket, which it closes once no query is pending. */
static ares_channel cares_open(const config_t *cf, const char *lookups) {
  struct ares_options o;
  memset(&o, 0, sizeof(o));
  int mask = 0;
  o.flags = 0; /* ARES_FLAG_NOCHECKRESP stays off */
  mask |= ARES_OPT_FLAGS;
  o.lookups = (char *)lookups; /* "b": DNS only, /etc/hosts never read */
  mask |= ARES_OPT_LOOKUPS;
  o.ndots = 1;
  mask |= ARES_OPT_NDOTS;
  o.domains = NULL;
  o.ndomains = 0; /* no search list: the name is asked as-is */
  mask |= ARES_OPT_DOMAINS;
  o.timeout = LOOKUP_TIMEOUT_MS;
  mask |= ARES_OPT_TIMEOUTMS;
  o.tries = 1;
  mask |= ARES_OPT_TRIES;
  ares_channel ch;
  int rc = ares_init_options(&ch, &o, mask);
  if (rc != ARES_SUCCESS) {
    die("ares_init_options: %s", ares_strerror(rc));
  }
  rc = ares_set_servers_ports_csv(ch, cf->server);
  if (rc != ARES_SUCCESS) {
    die("ares_set_servers_ports_csv: %s", ares_strerror(rc));
  }
  return ch;
}

/* The loop a blocking user of c-ares writes: ares_getsock for the
 * descriptors, ares_timeout for the wait, poll, ares_process_fd. */
static void cares_wait(ares_channel ch, const int *done) {
  while (!*done) {
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
    struct pollfd pfd[ARES_GETSOCK_MAXNUM];
    nfds_t n = 0;
    for (int k = 0; k < ARES_GETSOCK_MAXNUM; k++) {
      short ev = 0;
      if (ARES_GETSOCK_READABLE(bits, k)) {
        ev |= POLLIN;
      }
      if (ARES_GETSOCK_WRITABLE(bits, k)) {
        ev |= POLLOUT;
      }
      if (ev != 0) {
        pfd[n].fd = socks[k];
        pfd[n].events = ev;
        pfd[n].revents = 0;
        n++;
      }
    }
    struct timeval maxtv = {1, 0};
    struct timeval tv;
    struct timeval *tvp = ares_timeout(ch, &maxtv, &tv);
    int ms = (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000);
    int rc = poll(pfd, n, ms);
    if (rc < 0 && errno != EINTR) {
      die("poll: %s", strerror(errno));
    }
    if (rc <= 0) {
      ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      continue;
    }
    for (nfds_t k = 0; k < n; k++) {
      short re = pfd[k].revents;
      if (re == 0) {
        continue;
      }
      ares_process_fd(
          ch, (re & (POLLIN | POLLERR | POLLHUP)) ? pfd[k].fd : ARES_SOCKET_BAD,
          (re & POLLOUT) ? pfd[k].fd : ARES_SOCKET_BAD);
    }
  }
}

typedef struct {
  int done;
  int status;
  struct ares_addrinfo *res;
} gai_wait_t;

static void cares_gai_cb(void *arg, int status, int timeouts,
                         struct ares_addrinfo *res) {
  (void)timeouts;
  gai_wait_t *w = arg;
  w->done = 1;
  w->status = status;
  w->res = res;
}

static bool cares_lookup(ares_channel ch, const char *name, size_t i,
                         int64_t *ns) {
  struct ares_addrinfo_hints hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  gai_wait_t w = {0, 0, NULL};
  int64_t t0 = bench_now_ns();
  ares_getaddrinfo(ch, name, NULL, &hints, cares_gai_cb, &w);
  cares_wait(ch, &w.done);
  *ns = bench_now_ns() - t0;
  if (w.status != ARES_SUCCESS) {
    ares_freeaddrinfo(w.res);
    return false;
  }
  tally_t t = {0, 0, 0};
  for (struct ares_addrinfo_node *p = w.res ? w.res->nodes : NULL; p != NULL;
       p = p->ai_next) {
    tally_add(&t, i, p->ai_addr);
  }
  ares_freeaddrinfo(w.res);
  return tally_ok(&t);
}

/* Reference: the two questions c-ares's engine sends for a lookup, with
 * the replies parsed, but without ares_getaddrinfo's address sorting and
 * result building. It shows how much of c-ares's time is its query engine. */
typedef struct query_wait query_wait_t;

typedef struct {
  query_wait_t *w;
  int type; /* 1 (A) or 28 (AAAA) */
} query_arg_t;

struct query_wait {
  int pending;
  int done;
  size_t i;
  tally_t t;
  bool failed;
  query_arg_t arg[2];
};

static void cares_query_cb(void *arg, int status, int timeouts,
                           unsigned char *abuf, int alen) {
  (void)timeouts;
  query_arg_t *qa = arg;
  query_wait_t *w = qa->w;
  struct ares_addrttl a4[4];
  struct ares_addr6ttl a6[4];
  int n = 4;
  if (status != ARES_SUCCESS) {
    w->failed = true;
  } else if (qa->type == 1) {
    if (ares_parse_a_reply(abuf, alen, NULL, a4, &n) != ARES_SUCCESS) {
      w->failed = true;
      n = 0;
    }
    for (int k = 0; k < n; k++) {
      tally_v4(&w->t, w->i, &a4[k].ipaddr);
    }
  } else {
    if (ares_parse_aaaa_reply(abuf, alen, NULL, a6, &n) != ARES_SUCCESS) {
      w->failed = true;
      n = 0;
    }
    for (int k = 0; k < n; k++) {
      struct in6_addr a;
      memcpy(&a, &a6[k].ip6addr, sizeof(a));
      tally_v6(&w->t, w->i, &a);
    }
  }
  if (--w->pending == 0) {
    w->done = 1;
  }
}

static bool cares_query_lookup(ares_channel ch, const char *name, size_t i,
                               int64_t *ns) {
  query_wait_t w;
  memset(&w, 0, sizeof(w));
  w.pending = 2;
  w.i = i;
  w.arg[0].w = &w;
  w.arg[0].type = 28;
  w.arg[1].w = &w;
  w.arg[1].type = 1;
  int64_t t0 = bench_now_ns();
  ares_query(ch, name, 1 /* IN */, 28 /* AAAA */, cares_query_cb, &w.arg[0]);
  ares_query(ch, name, 1 /* IN */, 1 /* A */, cares_query_cb, &w.arg[1]);
  cares_wait(ch, &w.done);
  *ns = bench_now_ns() - t0;
  return !w.failed && tally_ok(&w.t);
}
#endif

/* ---- statistics -------------------------------------------------------- */

typedef struct {
  int64_t *ns;
  size_t n;
  size_t failed;
  int64_t median, p10, p90, p99, min, max;
} series_t;

static void summarise(series_t *s) {
  if (s->n == 0) {
    return;
  }
  qsort(s->ns, s->n, sizeof(s->ns[0]), bench_cmp_i64);
  s->median = bench_pct(s->ns, s->n, 50);
  s->p10 = bench_pct(s->ns, s->n, 10);
  s->p90 = bench_pct(s->ns, s->n, 90);
  s->p99 = bench_pct(s->ns, s->n, 99);
  s->min = s->ns[0];
  s->max = s->ns[s->n - 1];
}

static double us(int64_t ns) {
  return (double)ns / 1000.0;
}

/* ---- the cold-lookup run ----------------------------------------------- */

/* The cold run's figures: the median (with p10-p90) and the p99 of each
 * contender's lookups. */
static void cold_tsv(const config_t *cf, const series_t *s, size_t rounds,
                     double goal) {
  if (cf->tsv == NULL) {
    return;
  }
  char fig[100], title[300], stat[100];
  for (int pass = 0; pass < 2; pass++) {
    snprintf(fig, sizeof(fig), pass ? "%s_p99" : "%s", cf->figure);
    snprintf(title, sizeof(title), "Cold A+AAAA lookup%s, %s",
             pass ? ", p99" : "", cf->what);
    snprintf(stat, sizeof(stat), "%s of %zu lookups, one per round",
             pass ? "p99" : "median", rounds);
    bench_tsv_figure(cf->tsv, fig, title, "µs", stat, pass ? "-" : "p10-p90");
    for (int k = 0; k < NCONTENDERS; k++) {
      const series_t *x = &s[k];
      char note[64] = "";
      if (cf->skip[k] != NULL) {
        bench_tsv_skip(cf->tsv, BENCH_NO_PARAM, contender_short[k],
                       contender_kind[k], cf->skip[k]);
        continue;
      }
      if (!cf->want[k]) {
        continue;
      }
      if (x->n == 0) {
        bench_tsv_skip(cf->tsv, BENCH_NO_PARAM, contender_short[k],
                       contender_kind[k], "every lookup failed");
        continue;
      }
      if (x->failed > 0) {
        snprintf(note, sizeof(note), "%zu failed lookups not timed", x->failed);
      }
      bench_tsv_row(cf->tsv, BENCH_NO_PARAM, contender_short[k],
                    contender_kind[k], us(pass ? x->p99 : x->median),
                    pass ? NAN : us(x->p10), pass ? NAN : us(x->p90),
                    (long)x->n, note);
    }
  }
  snprintf(title, sizeof(title), "Cold A+AAAA lookup, %s", cf->what);
  bench_tsv_figure(cf->tsv, cf->figure, title, "µs", "median", "p10-p90");
  bench_tsv_goal(cf->tsv, BENCH_NO_PARAM, cf->plot != NULL,
                 "dialtone's median at most 0.9 × c-ares ares_getaddrinfo's",
                 "× c-ares", goal, goal <= 0.9);
  if (cf->plot != NULL) {
    snprintf(fig, sizeof(fig), "%s,%s_p99", cf->figure, cf->figure);
    bench_tsv_plot(cf->tsv, cf->plot, "bars", fig,
                   "Cold A+AAAA lookup latency, median and p99 (µs)");
  }
}

typedef struct {
  dt_resolver_t *dt;
#ifdef DT_BENCH_CARES
  ares_channel ch;
#endif
} clients_t;

static bool lookup_one(clients_t *c, contender_t k, const char *name, size_t i,
                       int64_t *ns) {
  switch (k) {
  case C_DIALTONE:
    return dt_lookup(c->dt, name, i, ns);
  case C_GLIBC:
    return gai_lookup(name, i, ns);
#ifdef DT_BENCH_CARES
  case C_CARES:
    return cares_lookup(c->ch, name, i, ns);
  case C_CARES_QUERY:
    return cares_query_lookup(c->ch, name, i, ns);
#endif
  default:
    return false;
  }
}

static void run_cold(const config_t *cf, clients_t *c) {
  contender_t order[NCONTENDERS];
  size_t nk = 0;
  for (int k = 0; k < NCONTENDERS; k++) {
    if (cf->want[k]) {
      order[nk++] = (contender_t)k;
    }
  }
  series_t s[NCONTENDERS];
  memset(s, 0, sizeof(s));
  for (size_t j = 0; j < nk; j++) {
    s[order[j]].ns = calloc(cf->nnames, sizeof(int64_t));
    if (s[order[j]].ns == NULL) {
      die("%s", "out of memory");
    }
  }

  char name[300];
  int64_t scratch;
  for (size_t w = 0; w < cf->nwarm; w++) {
    name_of(cf, cf->nnames + w, name, sizeof(name));
    for (size_t j = 0; j < nk; j++) {
      lookup_one(c, order[j], name, cf->nnames + w, &scratch);
    }
  }

  int64_t start = bench_now_ns();
  int64_t limit = (int64_t)cf->limit_s * 1000000000;
  size_t rounds = 0;
  size_t failures = 0;
  for (size_t i = 0; i < cf->nnames; i++) {
    name_of(cf, i, name, sizeof(name));
    for (size_t j = 0; j < nk; j++) {
      contender_t k = order[(i + j) % nk];
      int64_t ns;
      if (lookup_one(c, k, name, i, &ns)) {
        s[k].ns[s[k].n++] = ns;
      } else {
        s[k].failed++;
        failures++;
      }
    }
    rounds++;
    if (failures > MAX_FAILURES) {
      fprintf(stderr, "bench_resolve: more than %d failed lookups, stopping\n",
              MAX_FAILURES);
      break;
    }
    if (bench_now_ns() - start > limit) {
      fprintf(stderr, "bench_resolve: time limit of %d s reached\n",
              cf->limit_s);
      break;
    }
  }
  double elapsed = (double)(bench_now_ns() - start) / 1e9;
  for (size_t j = 0; j < nk; j++) {
    summarise(&s[order[j]]);
  }

  printf("### %s\n\n", cf->title);
  printf("%zu rounds of distinct names (after %zu warm-up names), each round "
         "asking every contender once, %.1f s.\n\n",
         rounds, cf->nwarm, elapsed);
  printf("| contender | ok | failed | median µs | p90 µs | p99 µs | min µs | "
         "max µs | dialtone ÷ this, median | dialtone ÷ this, p99 |\n");
  printf("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
  const series_t *d = cf->want[C_DIALTONE] ? &s[C_DIALTONE] : NULL;
  for (size_t j = 0; j < nk; j++) {
    const series_t *x = &s[order[j]];
    printf("| %s | %zu | %zu |", contender_label[order[j]], x->n, x->failed);
    if (x->n == 0) {
      printf(" – | – | – | – | – | – | – |\n");
      continue;
    }
    printf(" %.1f | %.1f | %.1f | %.1f | %.1f |", us(x->median), us(x->p90),
           us(x->p99), us(x->min), us(x->max));
    if (d != NULL && d->n > 0) {
      printf(" %.2f | %.2f |\n", (double)d->median / (double)x->median,
             (double)d->p99 / (double)x->p99);
    } else {
      printf(" – | – |\n");
    }
  }
  printf("\n");
  double goal = NAN;
  if (d != NULL && d->n > 0 && cf->want[C_CARES] && s[C_CARES].n > 0) {
    goal = (double)d->median / (double)s[C_CARES].median;
    printf("Goal, dialtone's cold median at most 0.9 × c-ares's: "
           "%.1f / %.1f µs = %.2f → **%s**\n\n",
           us(d->median), us(s[C_CARES].median), goal,
           goal <= 0.9 ? "met" : "not met");
  }
  cold_tsv(cf, s, rounds, goal);
  for (size_t j = 0; j < nk; j++) {
    free(s[order[j]].ns);
  }
}

/* ---- the hosts-file run ------------------------------------------------ */

#define HOSTS_BATCHES 31

typedef struct {
  const char *label;
  size_t batch; /* lookups per batch */
  int64_t mean[HOSTS_BATCHES];
  size_t nbatches;
  bool ok;
  const char *skip; /* why it was not measured */
} hosts_series_t;

/* Returns the mean ns per lookup of the median batch. */
static int64_t hosts_median(hosts_series_t *h) {
  qsort(h->mean, h->nbatches, sizeof(h->mean[0]), bench_cmp_i64);
  return h->mean[h->nbatches / 2];
}

static bool hosts_dt_one(dt_resolver_t *r, const char *name) {
  dt_addr_t addrs[8];
  size_t n = 0;
  return dt_resolver_lookup_addrs(r, name, AF_UNSPEC, LOOKUP_TIMEOUT_MS, addrs,
                                  8, &n) == DT_OK &&
         n == 2;
}

static bool hosts_gai_one(const char *name) {
  struct addrinfo hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo *res = NULL;
  if (getaddrinfo(name, NULL, &hints, &res) != 0) {
    return false;
  }
  size_t n = 0;
  for (struct addrinfo *p = res; p != NULL; p = p->ai_next) {
    n++;
  }
  freeaddrinfo(res);
  return n == 2;
}

#ifdef DT_BENCH_CARES
static bool hosts_cares_file_one(ares_channel ch, const char *name) {
  struct hostent *he = NULL;
  if (ares_gethostbyname_file(ch, name, AF_INET, &he) != ARES_SUCCESS) {
    return false;
  }
  bool ok = he->h_addr_list[0] != NULL;
  ares_free_hostent(he);
  return ok;
}

static bool hosts_cares_gai_one(ares_channel ch, const char *name) {
  struct ares_addrinfo_hints hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  gai_wait_t w = {0, 0, NULL};
  ares_getaddrinfo(ch, name, NULL, &hints, cares_gai_cb, &w);
  /* A hosts-file hit calls back before ares_getaddrinfo returns; a miss
   * would go to DNS, which this channel (lookups "f") never does. */
  cares_wait(ch, &w.done);
  size_t n = 0;
  for (struct ares_addrinfo_node *p = w.res ? w.res->nodes : NULL; p != NULL;
       p = p->ai_next) {
    n++;
  }
  ares_freeaddrinfo(w.res);
  return w.status == ARES_SUCCESS && n == 2;
}
#endif

enum { H_DIALTONE, H_GLIBC, H_CARES_GAI, H_CARES_FILE, NHOSTS };

static bool hosts_one(int which, dt_resolver_t *r, void *ch, const char *name) {
  switch (which) {
  case H_DIALTONE:
    return hosts_dt_one(r, name);
  case H_GLIBC:
    return hosts_gai_one(name);
#ifdef DT_BENCH_CARES
  case H_CARES_GAI:
    return hosts_cares_gai_one(*(ares_channel *)ch, name);
  case H_CARES_FILE:
    return hosts_cares_file_one(*(ares_channel *)ch, name);
#endif
  default:
    (void)ch;
    return false;
  }
}

static const char *const hosts_short[NHOSTS] = {
    "dialtone lookup_addrs", "glibc getaddrinfo", "c-ares ares_getaddrinfo",
    "c-ares gethostbyname_file AF_INET"};
static const char *const hosts_kind[NHOSTS] = {"base", "alt", "alt", "ref"};

/* After the table: the series are sorted, mean[0] is the best batch. */
static void hosts_tsv(const config_t *cf, hosts_series_t *h, double dmed) {
  if (cf->tsv == NULL) {
    return;
  }
  char stat[100];
  snprintf(stat, sizeof(stat), "median of %d batch means", HOSTS_BATCHES);
  bench_tsv_figure(cf->tsv, "hosts_hit",
                   "Hosts-file hit, AF_UNSPEC, small hosts file", "ns", stat,
                   "min-max");
  for (int k = 0; k < NHOSTS; k++) {
    if (!h[k].ok) {
      bench_tsv_skip(cf->tsv, BENCH_NO_PARAM, hosts_short[k], hosts_kind[k],
                     h[k].skip ? h[k].skip : "not measured");
      continue;
    }
    bench_tsv_row(cf->tsv, BENCH_NO_PARAM, hosts_short[k], hosts_kind[k],
                  (double)hosts_median(&h[k]), (double)h[k].mean[0],
                  (double)h[k].mean[h[k].nbatches - 1], (long)h[k].nbatches,
                  NULL);
  }
  bench_tsv_goal(cf->tsv, BENCH_NO_PARAM, true,
                 "a dialtone hosts-file hit under 1 µs", "ns", dmed,
                 dmed < 1000);
}

static void run_hosts(const config_t *cf) {
  hosts_series_t h[NHOSTS];
  memset(h, 0, sizeof(h));
  h[H_DIALTONE].label = "dialtone `dt_resolver_lookup_addrs`, AF_UNSPEC";
  h[H_DIALTONE].batch = 2000;
  h[H_GLIBC].label = "glibc `getaddrinfo`, AF_UNSPEC";
  h[H_GLIBC].batch = 200;
  h[H_CARES_GAI].label = "c-ares `ares_getaddrinfo` (lookups \"f\"), "
                         "AF_UNSPEC";
  h[H_CARES_GAI].batch = 200;
  h[H_CARES_FILE].label = "c-ares `ares_gethostbyname_file`, AF_INET";
  h[H_CARES_FILE].batch = 200;

  dt_resolver_t *r = dt_open(cf, cf->hosts_file);
  void *chp = NULL;
#ifdef DT_BENCH_CARES
  ares_channel ch = cares_open(cf, "f");
  chp = &ch;
#else
  h[H_CARES_GAI].skip = "SKIP c-ares: libc-ares-dev not installed";
  h[H_CARES_FILE].skip = "SKIP c-ares: libc-ares-dev not installed";
#endif
  /* glibc and c-ares read /etc/hosts only (c-ares 1.18 ignores
   * CARES_HOSTS in these calls); glibc also falls back to DNS on a miss,
   * so it runs only where that DNS is the benchmark's server. */
  if (!cf->etc_hosts) {
    h[H_GLIBC].skip = "SKIP glibc: /etc/hosts is the machine's (needs "
                      "unshare -mn, root)";
    if (h[H_CARES_GAI].skip == NULL) {
      h[H_CARES_GAI].skip = h[H_CARES_FILE].skip =
          "SKIP c-ares: reads /etc/hosts, the machine's (needs unshare -mn, "
          "root)";
    }
  } else if (!cf->glibc_ok) {
    h[H_GLIBC].skip = "SKIP glibc: /etc/resolv.conf does not name the server";
  }

  for (int k = 0; k < NHOSTS; k++) {
    if (h[k].skip != NULL) {
      continue;
    }
    /* Proves the name is found where it should be before timing it: a
     * miss would time something else (a DNS query, an error path). */
    if (!hosts_one(k, r, chp, cf->hosts_name)) {
      h[k].skip = "name not found in the hosts file";
      continue;
    }
    h[k].ok = true;
  }
  if (h[H_DIALTONE].ok) {
    dt_resolver_stats_t st;
    dt_resolver_get_stats(r, &st);
    if (st.hosts_hits != 1 || st.queries_udp != 0) {
      h[H_DIALTONE].ok = false;
      h[H_DIALTONE].skip = "answered by DNS, not the hosts file";
    }
  }

  /* Batches of the contenders are interleaved like the cold rounds. */
  for (size_t b = 0; b < HOSTS_BATCHES; b++) {
    for (int k = 0; k < NHOSTS; k++) {
      if (!h[k].ok) {
        continue;
      }
      int64_t t0 = bench_now_ns();
      bool ok = true;
      for (size_t i = 0; i < h[k].batch; i++) {
        ok &= hosts_one(k, r, chp, cf->hosts_name);
      }
      int64_t dt = bench_now_ns() - t0;
      if (!ok) {
        h[k].ok = false;
        h[k].skip = "a lookup failed during the run";
        continue;
      }
      h[k].mean[h[k].nbatches++] = dt / (int64_t)h[k].batch;
    }
  }

  printf("### Hosts-file hit\n\n");
  printf("The name `%s` from a %s; %d batches per contender, interleaved; "
         "figure = median of the per-batch mean time per lookup.\n\n",
         cf->hosts_name, "small hosts file (the one in bench/run-bench.sh)",
         HOSTS_BATCHES);
  printf("| lookup | lookups per batch | median of batch means, ns | "
         "best batch, ns | this ÷ dialtone |\n");
  printf("|---|--:|--:|--:|--:|\n");
  int64_t dmed = 0;
  for (int k = 0; k < NHOSTS; k++) {
    if (!h[k].ok) {
      printf("| %s | – | %s | – | – |\n", h[k].label,
             h[k].skip ? h[k].skip : "not measured");
      continue;
    }
    int64_t med = hosts_median(&h[k]);
    if (k == H_DIALTONE) {
      dmed = med;
    }
    printf("| %s | %zu | %lld | %lld |", h[k].label, h[k].batch, (long long)med,
           (long long)h[k].mean[0]);
    if (dmed > 0) {
      printf(" %.1f |\n", (double)med / (double)dmed);
    } else {
      printf(" – |\n");
    }
  }
  printf("\n");
  if (h[H_DIALTONE].ok) {
    printf("Goal, a dialtone hosts-file hit under 1 µs: %lld ns → **%s**\n\n",
           (long long)dmed, dmed < 1000 ? "met" : "not met");
  }
  hosts_tsv(cf, h, h[H_DIALTONE].ok ? (double)dmed : NAN);
  dt_resolver_free(r);
#ifdef DT_BENCH_CARES
  ares_destroy(ch);
#endif
}

/* ---- main -------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr,
          "usage: bench_resolve [-s ADDR:PORT] [-d DOMAIN] [-n NAMES] "
          "[-w WARMUP]\n"
          "         [-c dialtone,glibc,cares,cares-query] [-t TITLE] "
          "[-l SECONDS]\n"
          "         [-H HOSTSFILE -N NAME [-G yes]] [-W WAIT_MS]\n"
          "         [-T TSV [-f FIGURE] [-D WHAT] [-P PLOT]]\n"
          "  -s  the authoritative server (default 127.0.0.1:53)\n"
          "  -d  its zone, holding n0.DOMAIN ... (default bench.test)\n"
          "  -n  distinct names measured per contender (default 3000)\n"
          "  -w  further names used to warm up (default 50)\n"
          "  -c  contenders, comma-separated; \"none\" for only -H\n"
          "  -H  also time hosts-file hits of NAME in HOSTSFILE; -G yes when\n"
          "      /etc/hosts is that file, so glibc and c-ares are timed too\n"
          "  -l  stop the cold run after this many seconds (default 60)\n"
          "  -T  also append the figures to TSV (see bench/report.sh), the\n"
          "      cold run's as FIGURE (default cold) showing WHAT (default\n"
          "      TITLE); -P: this is the headline run, its goal is in the\n"
          "      summary and its latency plot is PLOT.png\n");
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

static void parse_contenders(config_t *cf, const char *list) {
  char buf[200];
  if (strlen(list) >= sizeof(buf)) {
    die("bad contender list: %s", list);
  }
  strcpy(buf, list);
  for (char *tok = strtok(buf, ","); tok != NULL; tok = strtok(NULL, ",")) {
    if (strcmp(tok, "none") == 0) {
      continue;
    }
    bool found = false;
    for (int k = 0; k < NCONTENDERS; k++) {
      if (strcmp(tok, contender_key[k]) == 0) {
        cf->want[k] = true;
        found = true;
      }
    }
    if (!found) {
      die("unknown contender: %s", tok);
    }
  }
}

int main(int argc, char **argv) {
  config_t cf;
  memset(&cf, 0, sizeof(cf));
  cf.server = "127.0.0.1:53";
  cf.domain = "bench.test";
  cf.nnames = 3000;
  cf.nwarm = 50;
  cf.title = "Cold A+AAAA lookups";
  cf.wait_ms = 10000;
  cf.limit_s = 60;
  const char *contenders = "dialtone,glibc,cares,cares-query";
  const char *tsv_path = NULL;
  cf.figure = "cold";

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
    case 'n':
      cf.nnames = parse_count(val, MAX_NAMES);
      break;
    case 'w':
      cf.nwarm = parse_count(val, MAX_NAMES);
      break;
    case 'c':
      contenders = val;
      break;
    case 't':
      cf.title = val;
      break;
    case 'l':
      cf.limit_s = (int)parse_count(val, 3600);
      break;
    case 'H':
      cf.hosts_file = val;
      break;
    case 'N':
      cf.hosts_name = val;
      break;
    case 'G':
      cf.etc_hosts = strcmp(val, "yes") == 0;
      break;
    case 'W':
      cf.wait_ms = (int)parse_count(val, 600000);
      break;
    case 'T':
      tsv_path = val;
      break;
    case 'f':
      cf.figure = val;
      break;
    case 'D':
      cf.what = val;
      break;
    case 'P':
      cf.plot = val;
      break;
    default:
      usage();
    }
  }
  if (cf.nnames + cf.nwarm > MAX_NAMES) {
    die("%s", "at most 60000 names and warm-up names together");
  }
  if ((cf.hosts_file == NULL) != (cf.hosts_name == NULL)) {
    usage();
  }
  parse_contenders(&cf, contenders);
  if (cf.what == NULL) {
    cf.what = cf.title;
  }

  setvbuf(stdout, NULL, _IOLBF, 0);
  clients_t c;
  memset(&c, 0, sizeof(c));
  c.dt = dt_open(&cf, "");
  wait_ready(&cf, c.dt);

#ifdef DT_BENCH_CARES
  int rc = ares_library_init(ARES_LIB_INIT_ALL);
  if (rc != ARES_SUCCESS) {
    die("ares_library_init: %s", ares_strerror(rc));
  }
  c.ch = cares_open(&cf, "b");
#else
  if (cf.want[C_CARES] || cf.want[C_CARES_QUERY]) {
    printf("SKIP c-ares: libc-ares-dev not installed\n\n");
    for (int k = C_CARES; k <= C_CARES_QUERY; k++) {
      if (cf.want[k]) {
        cf.skip[k] = "SKIP c-ares: libc-ares-dev not installed";
      }
    }
    cf.want[C_CARES] = cf.want[C_CARES_QUERY] = false;
  }
#endif

  const char *no_glibc = bench_glibc_unusable(cf.server);
  if (cf.want[C_GLIBC] && no_glibc != NULL) {
    printf("%s\n\n", no_glibc);
    cf.skip[C_GLIBC] = no_glibc;
    cf.want[C_GLIBC] = false;
  }
  /* Only once the run is sure to happen: a probe (-n 0) writes nothing. */
  if (tsv_path != NULL) {
    cf.tsv = bench_tsv_open(tsv_path, "resolve");
  }
  cf.glibc_ok = no_glibc == NULL;

  bool any = false;
  for (int k = 0; k < NCONTENDERS; k++) {
    any = any || cf.want[k];
  }
  if (any && cf.nnames > 0) {
    run_cold(&cf, &c);
  }
  if (cf.hosts_file != NULL) {
    run_hosts(&cf);
  }

  bench_tsv_close(cf.tsv);
  dt_resolver_free(c.dt);
#ifdef DT_BENCH_CARES
  ares_destroy(c.ch);
  ares_library_cleanup();
#endif
  return 0;
}
