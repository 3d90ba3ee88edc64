#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "name.h"
#include "resolver_int.h"
#include "sockopt.h"

#define ADD(r, field) __atomic_add_fetch(&(r)->field, 1, __ATOMIC_RELAXED)
#define LOAD(r, field) __atomic_load_n(&(r)->field, __ATOMIC_RELAXED)

void dt_resolver_opts_init(dt_resolver_opts_t *opts) {
  memset(opts, 0, sizeof(*opts));
  opts->resolv_conf = "/etc/resolv.conf";
  opts->hosts = "/etc/hosts";
  opts->timeout_ms = DT_RESOLVER_DEFAULT;
  opts->attempts = DT_RESOLVER_DEFAULT;
  opts->ndots = DT_RESOLVER_DEFAULT;
  opts->rotate = false;
  opts->edns = true;
  opts->server_penalty_ms = 30000;
  opts->cache = true;
  opts->cache_max_entries = 10000;
  opts->cache_max_bytes = 0;
  opts->cache_min_ttl = 0;
  opts->cache_max_ttl = 86400;
  opts->cache_neg_min_ttl = 0;
  opts->cache_neg_max_ttl = 3600;
  opts->serve_stale = false;
  opts->stale_window_s = 86400;
  opts->prefetch = false;
  opts->dns0x20 = false;
}

/* "ADDR", "ADDR:PORT", "[V6]:PORT", "V6" and "V6%scope" (port 53 unless
 * given). */
static dt_status_t parse_server(const char *s, struct sockaddr_storage *ss,
                                socklen_t *len) {
  char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  const char *port = NULL;
  size_t hl;
  if (s[0] == '[') {
    const char *end = strchr(s, ']');
    if (end == NULL || (end[1] != '\0' && end[1] != ':')) {
      return DT_EINVAL;
    }
    hl = (size_t)(end - s - 1);
    if (hl >= sizeof(host)) {
      return DT_EINVAL;
    }
    memcpy(host, s + 1, hl);
    if (end[1] == ':') {
      port = end + 2;
    }
  } else {
    const char *c = strchr(s, ':');
    if (c != NULL && strchr(c + 1, ':') == NULL) {
      hl = (size_t)(c - s); /* one colon: IPv4 with port */
      port = c + 1;
    } else {
      hl = strlen(s);
    }
    if (hl >= sizeof(host)) {
      return DT_EINVAL;
    }
    memcpy(host, s, hl);
  }
  host[hl] = '\0';

  unsigned long p = 53;
  if (port != NULL) {
    char *end;
    errno = 0;
    p = strtoul(port, &end, 10);
    if (*port == '\0' || *end != '\0' || errno != 0 || p == 0 || p > 65535) {
      return DT_EINVAL;
    }
  }
  return dt__sockaddr_parse(host, (uint16_t)p, ss, len);
}

static void file_identity(dt_resolver_t *r, const struct stat *st) {
  r->hosts_id.exists = st != NULL;
  if (st != NULL) {
    r->hosts_id.mtime_ns =
        (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
    r->hosts_id.ino = (unsigned long long)st->st_ino;
    r->hosts_id.dev = (unsigned long long)st->st_dev;
    r->hosts_id.size = (long long)st->st_size;
  }
}

static bool identity_changed(const dt_resolver_t *r, const struct stat *st) {
  if (st == NULL) {
    return r->hosts_id.exists;
  }
  return !r->hosts_id.exists ||
         r->hosts_id.mtime_ns != (long long)st->st_mtim.tv_sec * 1000000000LL +
                                     st->st_mtim.tv_nsec ||
         r->hosts_id.ino != (unsigned long long)st->st_ino ||
         r->hosts_id.dev != (unsigned long long)st->st_dev ||
         r->hosts_id.size != (long long)st->st_size;
}

/* Reloads the hosts file when it changed, looking at most once a second:
 * the common case is one clock read and no system call. */
static void hosts_refresh(dt_resolver_t *r) {
  if (r->hosts_path == NULL) {
    return;
  }
  uint64_t now = dt__clock_us(&r->clock) / 1000u;
  uint64_t last = LOAD(r, hosts_checked_ms);
  if (now - last < 1000) {
    return;
  }
  if (pthread_mutex_trylock(&r->hosts_reload) != 0) {
    return; /* another thread is checking */
  }
  __atomic_store_n(&r->hosts_checked_ms, now, __ATOMIC_RELAXED);
  struct stat st;
  bool exists = stat(r->hosts_path, &st) == 0;
  if (identity_changed(r, exists ? &st : NULL)) {
    dt_hosts_t *fresh = NULL;
    /* On failure keep serving the old table; the next check retries. */
    if (dt__hosts_load(r->hosts_path, &fresh) == DT_OK) {
      pthread_rwlock_wrlock(&r->hosts_lock);
      dt_hosts_t *old = r->hosts;
      r->hosts = fresh;
      file_identity(r, exists ? &st : NULL);
      pthread_rwlock_unlock(&r->hosts_lock);
      dt__hosts_free(old);
    }
  }
  pthread_mutex_unlock(&r->hosts_reload);
}

dt_status_t dt_resolver_new(const dt_resolver_opts_t *opts,
                            dt_resolver_t **out) {
  dt_resolver_opts_t defaults;
  if (out == NULL) {
    return DT_EINVAL;
  }
  if (opts == NULL) {
    dt_resolver_opts_init(&defaults);
    opts = &defaults;
  }
  if ((opts->nservers > 0 && opts->servers == NULL) ||
      (opts->nsearch > 0 && opts->search == NULL) ||
      opts->nservers > DT_CONF_MAX_SERVERS ||
      opts->nsearch > DT_CONF_MAX_SEARCH) {
    return DT_EINVAL;
  }
  dt_status_t st = DT_OK;
  dt_resolv_conf_t *conf = NULL;
  dt_resolver_t *r = dt__calloc(1, sizeof(*r));
  if (r == NULL) {
    return DT_ENOMEM;
  }
  bool lock_ok = false, rw_ok = false, reload_ok = false, flight_ok = false,
       prefetch_ok = false, opreg_ok = false, udp_ok = false;
  r->clock.now_us = opts->clock_us;
  r->clock.ctx = opts->clock_ctx;
  r->timeout_ms = 2000;
  r->attempts = 3;
  r->ndots = 1;
  r->rotate = opts->rotate;
  r->edns = opts->edns;
  r->dns0x20 = opts->dns0x20;
  r->penalty_ms = opts->server_penalty_ms < 0 ? 0 : opts->server_penalty_ms;

  conf = dt__malloc(sizeof(*conf));
  if (conf == NULL) {
    st = DT_ENOMEM;
    goto done;
  }
  dt__resolv_conf_defaults(conf);
  if (opts->nservers == 0) {
    const char *path =
        opts->resolv_conf ? opts->resolv_conf : "/etc/resolv.conf";
    st = dt__resolv_conf_load(path, conf);
    if (st != DT_OK) {
      goto done;
    }
    for (size_t i = 0; i < conf->nservers; i++) {
      r->servers[i].addr = conf->servers[i];
      r->servers[i].len = dt__sockaddr_len(conf->servers[i].ss_family);
    }
    r->nservers = conf->nservers;
    if (conf->set & DT_CONF_SET_TIMEOUT) {
      r->timeout_ms = conf->timeout_ms;
    }
    if (conf->set & DT_CONF_SET_ATTEMPTS) {
      r->attempts = conf->attempts;
    }
    if (conf->set & DT_CONF_SET_NDOTS) {
      r->ndots = conf->ndots;
    }
    r->rotate = r->rotate || conf->rotate;
    r->edns = r->edns || conf->edns0;
  } else {
    for (size_t i = 0; i < opts->nservers; i++) {
      if (opts->servers[i] == NULL) {
        st = DT_EINVAL;
        goto done;
      }
      st = parse_server(opts->servers[i], &r->servers[i].addr,
                        &r->servers[i].len);
      if (st != DT_OK) {
        goto done;
      }
    }
    r->nservers = opts->nservers;
  }
  if (r->nservers == 0) {
    st = DT_ENOSERVER;
    goto done;
  }
  /* Explicit options win over resolv.conf's. */
  if (opts->timeout_ms != DT_RESOLVER_DEFAULT) {
    r->timeout_ms = opts->timeout_ms;
  }
  if (opts->attempts != DT_RESOLVER_DEFAULT) {
    r->attempts = opts->attempts;
  }
  if (opts->ndots != DT_RESOLVER_DEFAULT) {
    r->ndots = opts->ndots;
  }
  if (r->timeout_ms <= 0 || r->attempts <= 0 || r->ndots < 0) {
    st = DT_EINVAL;
    goto done;
  }

  size_t nsearch =
      opts->search ? opts->nsearch : (opts->nservers == 0 ? conf->nsearch : 0);
  if (nsearch > 0) {
    r->search = dt__calloc(nsearch, sizeof(*r->search));
    if (r->search == NULL) {
      st = DT_ENOMEM;
      goto done;
    }
    for (size_t i = 0; i < nsearch; i++) {
      if (opts->search) {
        if (opts->search[i] == NULL) {
          st = DT_EINVAL;
          goto done;
        }
        st = dt_name_normalize(opts->search[i], r->search[i],
                               sizeof(r->search[i]));
        if (st != DT_OK) {
          goto done;
        }
      } else {
        memcpy(r->search[i], conf->search[i], sizeof(r->search[i]));
      }
    }
    r->nsearch = nsearch;
  }

  if (pthread_mutex_init(&r->lock, NULL) != 0) {
    st = DT_ESYS;
    goto done;
  }
  lock_ok = true;
  if (pthread_rwlock_init(&r->hosts_lock, NULL) != 0) {
    st = DT_ESYS;
    goto done;
  }
  rw_ok = true;
  if (pthread_mutex_init(&r->hosts_reload, NULL) != 0) {
    st = DT_ESYS;
    goto done;
  }
  reload_ok = true;
  if (pthread_mutex_init(&r->flight_lock, NULL) != 0) {
    st = DT_ESYS;
    goto done;
  }
  flight_ok = true;
  if (pthread_mutex_init(&r->prefetch_lock, NULL) != 0) {
    st = DT_ESYS;
    goto done;
  }
  prefetch_ok = true;
  st = dt__opreg_init(&r->opreg);
  if (st != DT_OK) {
    goto done;
  }
  opreg_ok = true;
  if (pthread_mutex_init(&r->udp_lock, NULL) != 0) {
    st = DT_ESYS;
    goto done;
  }
  udp_ok = true;
  r->udp = dt__calloc(DT_CONF_MAX_SERVERS, sizeof(*r->udp));
  if (r->udp == NULL) {
    st = DT_ENOMEM;
    goto done;
  }

  if (opts->cache) {
    dt_cache_config_t cc;
    dt__cache_config_init(&cc);
    cc.max_entries = opts->cache_max_entries;
    cc.max_bytes = opts->cache_max_bytes;
    cc.pos_min_s = opts->cache_min_ttl;
    cc.pos_max_s = opts->cache_max_ttl;
    cc.neg_min_s = opts->cache_neg_min_ttl;
    cc.neg_max_s = opts->cache_neg_max_ttl;
    cc.serve_stale = opts->serve_stale;
    cc.stale_window_s = opts->stale_window_s;
    cc.prefetch = opts->prefetch;
    /* TTLs count seconds: unless a test clock is set, the cache reads the
     * coarse clock, the cheapest part of a hit to cut. Both clocks are
     * CLOCK_MONOTONIC underneath. */
    cc.clock = r->clock;
    if (cc.clock.now_us == NULL) {
      cc.clock.now_us = dt__now_coarse_us;
    }
    st = dt__cache_new(&cc, &r->cache);
    if (st != DT_OK) {
      goto done;
    }
  }

  const char *hosts = opts->hosts ? opts->hosts : "/etc/hosts";
  if (hosts[0] != '\0') {
    r->hosts_path = dt__strdup(hosts);
    if (r->hosts_path == NULL) {
      st = DT_ENOMEM;
      goto done;
    }
    struct stat sb;
    bool exists = stat(hosts, &sb) == 0;
    st = dt__hosts_load(hosts, &r->hosts);
    if (st != DT_OK) {
      goto done;
    }
    file_identity(r, exists ? &sb : NULL);
    r->hosts_checked_ms = dt__clock_us(&r->clock) / 1000u;
  }

done:
  dt__free(conf);
  if (st != DT_OK) {
    dt__cache_free(r->cache);
    dt__free(r->udp);
    if (udp_ok) {
      pthread_mutex_destroy(&r->udp_lock);
    }
    if (opreg_ok) {
      dt__opreg_destroy(&r->opreg);
    }
    if (prefetch_ok) {
      pthread_mutex_destroy(&r->prefetch_lock);
    }
    if (flight_ok) {
      pthread_mutex_destroy(&r->flight_lock);
    }
    if (reload_ok) {
      pthread_mutex_destroy(&r->hosts_reload);
    }
    if (rw_ok) {
      pthread_rwlock_destroy(&r->hosts_lock);
    }
    if (lock_ok) {
      pthread_mutex_destroy(&r->lock);
    }
    dt__hosts_free(r->hosts);
    dt__free(r->hosts_path);
    dt__free(r->search);
    dt__free(r);
    return st;
  }
  *out = r;
  return DT_OK;
}

void dt_resolver_free(dt_resolver_t *r) {
  if (r == NULL) {
    return;
  }
  /* Loop operations end first, callbacks included: they use everything
   * below. */
  dt__opreg_abort_all(&r->opreg);
  dt__opreg_destroy(&r->opreg);
  for (size_t i = 0; i < DT_PREFETCH_SLOTS; i++) {
    if (r->prefetch[i] != NULL) {
      dt__rquery_cleanup(r->prefetch[i]);
      dt__free(r->prefetch[i]);
    }
  }
  pthread_mutex_destroy(&r->prefetch_lock);
  /* After the operations and prefetches: they give their sockets back. */
  dt__udp_idle_free(r);
  dt__free(r->udp);
  pthread_mutex_destroy(&r->udp_lock);
  dt__cache_free(r->cache);
  pthread_mutex_destroy(&r->flight_lock);
  pthread_mutex_destroy(&r->hosts_reload);
  pthread_rwlock_destroy(&r->hosts_lock);
  pthread_mutex_destroy(&r->lock);
  dt__hosts_free(r->hosts);
  dt__free(r->hosts_path);
  dt__free(r->search);
  dt__free(r);
}

void dt_resolver_get_stats(dt_resolver_t *r, dt_resolver_stats_t *out) {
  memset(out, 0, sizeof(*out));
  if (r == NULL) {
    return;
  }
  out->queries_udp = LOAD(r, ex.queries_udp);
  out->queries_tcp = LOAD(r, ex.queries_tcp);
  out->replies_accepted = LOAD(r, ex.replies_accepted);
  out->dropped_source = LOAD(r, ex.dropped_source);
  out->dropped_id = LOAD(r, ex.dropped_id);
  out->dropped_question = LOAD(r, ex.dropped_question);
  out->dropped_malformed = LOAD(r, ex.dropped_malformed);
  out->timeouts = LOAD(r, timeouts);
  out->failovers = LOAD(r, failovers);
  out->truncated = LOAD(r, truncated);
  out->edns_fallbacks = LOAD(r, edns_fallbacks);
  out->hosts_hits = LOAD(r, hosts_hits);
  out->udp_sockets_opened = LOAD(r, udp_opened);
}

/* ---- public calls ---------------------------------------------------- */

dt_deadline_t dt__resolver_deadline(const dt_resolver_t *r, int timeout_ms) {
  return dt__deadline_in(&r->clock, timeout_ms < 0 ? -1 : timeout_ms);
}

dt_status_t dt__query_begin(dt_rquery_t *q, dt_resolver_t *r, const char *name,
                            uint16_t type, unsigned flags, int timeout_ms) {
  dt__prefetch_poll(r);
  return dt__rquery_start(q, r, name, type, flags,
                          dt__resolver_deadline(r, timeout_ms), NULL);
}

dt_status_t dt_resolver_query(dt_resolver_t *r, const char *name, uint16_t type,
                              unsigned flags, int timeout_ms,
                              dt_answer_t **out) {
  if (r == NULL || name == NULL || out == NULL) {
    return DT_EINVAL;
  }
  dt_rquery_t *q = dt__malloc(sizeof(*q));
  if (q == NULL) {
    return DT_ENOMEM;
  }
  dt_status_t st = dt__query_begin(q, r, name, type, flags, timeout_ms);
  if (st != DT_OK) {
    dt__free(q);
    return st;
  }
  while (!q->done) {
    struct pollfd pfd;
    bool waiting = dt__rquery_pollfd(q, &pfd);
    int rc = poll(&pfd, waiting ? 1 : 0,
                  dt__deadline_poll_ms(&r->clock, dt__rquery_deadline(q)));
    if (rc < 0 && errno != EINTR) {
      dt__rquery_cleanup(q);
      dt__free(q);
      return dt_status_from_errno(errno);
    }
    dt__rquery_process(q, rc > 0 ? pfd.revents : 0);
  }
  st = dt__rquery_take(q, out);
  dt__rquery_cleanup(q);
  dt__free(q);
  return st;
}

void dt_cache_get_stats(dt_resolver_t *r, dt_cache_stats_t *out) {
  memset(out, 0, sizeof(*out));
  if (r != NULL && r->cache != NULL) {
    dt__cache_get_stats(r->cache, out);
  }
}

void dt_cache_flush(dt_resolver_t *r, const char *name) {
  if (r != NULL && r->cache != NULL) {
    dt__cache_flush(r->cache, name);
  }
}

void dt_cache_list(dt_resolver_t *r,
                   void (*visit)(const dt_cache_entry_t *e, void *ctx),
                   void *ctx) {
  if (r != NULL && r->cache != NULL && visit != NULL) {
    dt__cache_list(r->cache, visit, ctx);
  }
}

typedef struct {
  void *buf;
  size_t len;
  size_t need;
  const dt_answer_t *out;
  dt_status_t st;
  bool prefetch;
} into_ctx_t;

static void copy_hit(const dt_cache_hit_t *hit, void *ctx) {
  into_ctx_t *c = ctx;
  dt_answer_t *a = NULL;
  c->prefetch = hit->prefetch_due;
  c->need = dt__answer_size(hit->answer);
  c->st = dt__answer_copy_into(hit->answer, c->buf, c->len, &a);
  if (c->st == DT_OK) {
    dt__answer_from_hit(a, hit);
    c->out = a;
  }
}

dt_status_t dt_resolver_query_into(dt_resolver_t *r, const char *name,
                                   uint16_t type, unsigned flags,
                                   int timeout_ms, void *buf, size_t *buflen,
                                   const dt_answer_t **out) {
  if (r == NULL || name == NULL || buf == NULL || buflen == NULL ||
      out == NULL) {
    return DT_EINVAL;
  }
  if ((uintptr_t)buf % 8 != 0) {
    return DT_EINVAL;
  }
  dt__prefetch_poll(r);
  if (r->cache != NULL && !(flags & DT_QUERY_NOCACHE)) {
    /* The hit path: the first candidate name answered from the cache,
     * straight into buf. Anything else takes the full machine. */
    int cand[DT_MAX_CANDIDATES];
    char qname[DT_NAME_BUFSIZE];
    size_t n = dt__candidates(r, name, flags, cand);
    if (n > 0 &&
        dt__candidate_name(r, name, cand[0], qname, sizeof(qname)) == DT_OK) {
      into_ctx_t c = {buf, *buflen, 0, NULL, DT_OK, false};
      dt_cache_result_t res =
          cand[0] < 0 ? dt__cache_probe_normal(r->cache, qname, strlen(qname),
                                               type, 1, copy_hit, &c)
                      : dt__cache_probe(r->cache, qname, type, 1, copy_hit, &c);
      if (c.prefetch) {
        dt__prefetch_start(r, qname, type);
      }
      if (res != DT_CACHE_MISS &&
          (n == 1 || (c.st == DT_OK && dt_answer_status(c.out) == DT_OK))) {
        if (c.st == DT_ETOOBIG) {
          *buflen = c.need;
        }
        if (c.st == DT_OK) {
          *out = c.out;
        }
        return c.st;
      }
    }
  }
  dt_answer_t *a = NULL;
  dt_status_t st = dt_resolver_query(r, name, type, flags, timeout_ms, &a);
  if (st != DT_OK) {
    return st;
  }
  dt_answer_t *copy = NULL;
  st = dt__answer_copy_into(a, buf, *buflen, &copy);
  if (st == DT_ETOOBIG) {
    *buflen = dt__answer_size(a);
  } else if (st == DT_OK) {
    *out = copy;
  }
  dt_answer_free(a);
  return st;
}

/* The hit path is measured in nanoseconds: dt_resolver_lookup_addrs
 * inlines the step it shares with dt_resolve_start, and keeps the miss
 * out of line. */
#if defined(__GNUC__)
#define HOT_INLINE inline __attribute__((always_inline))
#define COLD __attribute__((noinline))
#else
#define HOT_INLINE inline
#define COLD
#endif

/* Addresses of one cached question, written straight to the caller. */
typedef struct {
  dt_addr_t *addrs;
  size_t max, n;
  dt_status_t st;
  bool prefetch;
} addrs_ctx_t;

static void addrs_hit(const dt_cache_hit_t *hit, void *ctx) {
  addrs_ctx_t *c = ctx;
  c->prefetch = hit->prefetch_due;
  c->st = dt_answer_status(hit->answer);
  if (c->st == DT_OK) {
    size_t k = dt__answer_addrs(hit->answer, c->addrs + c->n, c->max - c->n);
    for (size_t i = 0; i < k; i++) {
      c->addrs[c->n + i].ttl = hit->remaining_s;
    }
    c->n += k;
  }
}

/* Answers a lookup from the cache alone, allocating nothing: true when
 * every question of the search had an entry. */
static HOT_INLINE bool lookup_from_cache(dt_resolver_t *r, const char *host,
                                         const char *norm, int family,
                                         unsigned flags, dt_addr_t *addrs,
                                         size_t max, size_t *count,
                                         dt_status_t *status) {
  static const uint16_t types[2] = {DT_TYPE_AAAA, DT_TYPE_A};
  static const int families[2] = {AF_INET6, AF_INET};
  int cand[DT_MAX_CANDIDATES];
  char qname[DT_NAME_BUFSIZE];
  size_t ncand = dt__candidates(r, host, flags, cand);
  bool nodata = false;
  for (size_t c = 0; c < ncand; c++) {
    size_t qlen = 0;
    if (cand[c] < 0) {
      /* As-is: the caller normalised it already. */
      qlen = strlen(norm);
      memcpy(qname, norm, qlen + 1);
    } else if (dt__candidate_name(r, host, cand[c], qname, sizeof(qname)) !=
               DT_OK) {
      continue;
    }
    addrs_ctx_t ctx = {addrs, max, 0, DT_OK, false};
    bool negative = true;
    for (size_t i = 0; i < 2; i++) {
      if (family != AF_UNSPEC && family != families[i]) {
        continue;
      }
      ctx.prefetch = false;
      /* The as-is candidate is in normal form already: its key is not
       * folded again. */
      dt_cache_result_t res =
          cand[c] < 0
              ? dt__cache_probe_normal(r->cache, qname, qlen, types[i], 1,
                                       addrs_hit, &ctx)
              : dt__cache_probe(r->cache, qname, types[i], 1, addrs_hit, &ctx);
      if (res == DT_CACHE_MISS) {
        return false;
      }
      if (ctx.prefetch) {
        dt__prefetch_start(r, qname, types[i]);
      }
      if (ctx.st == DT_OK) {
        negative = false;
      } else if (ctx.st == DT_ENODATA) {
        nodata = true;
      } else if (ctx.st != DT_ENXDOMAIN) {
        return false;
      }
    }
    if (!negative && ctx.n > 0) {
      *count = ctx.n;
      *status = DT_OK;
      return true;
    }
  }
  *status = nodata ? DT_ENODATA : DT_ENXDOMAIN;
  return true;
}

static HOT_INLINE bool parse_literal(const char *host, dt_addr_t *a) {
  memset(a, 0, sizeof(*a));
  struct sockaddr_in *v4 = (struct sockaddr_in *)&a->addr;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    a->addrlen = sizeof(*v4);
    return true;
  }
  struct sockaddr_storage ss;
  socklen_t len;
  /* IPv6 literals, with an optional %scope; never a port here. */
  if (strchr(host, ':') != NULL && host[0] != '[' &&
      parse_server(host, &ss, &len) == DT_OK && ss.ss_family == AF_INET6) {
    ((struct sockaddr_in6 *)&ss)->sin6_port = 0;
    memcpy(&a->addr, &ss, len);
    a->addrlen = len;
    return true;
  }
  return false;
}

static size_t hosts_answer(dt_resolver_t *r, const char *host, int family,
                           dt_addr_t *addrs, size_t max) {
  dt_hosts_addr_t found[16];
  size_t n = 0;
  hosts_refresh(r);
  pthread_rwlock_rdlock(&r->hosts_lock);
  size_t total = r->hosts
                     ? dt__hosts_lookup(r->hosts, host, family, found,
                                        sizeof(found) / sizeof(found[0]), NULL)
                     : 0;
  pthread_rwlock_unlock(&r->hosts_lock);
  if (total > sizeof(found) / sizeof(found[0])) {
    total = sizeof(found) / sizeof(found[0]);
  }
  /* IPv6 first, as for DNS answers; file order within a family. */
  for (int pass = 0; pass < 2; pass++) {
    int want = pass == 0 ? AF_INET6 : AF_INET;
    for (size_t i = 0; i < total && n < max; i++) {
      if (found[i].family != want) {
        continue;
      }
      dt_addr_t *a = &addrs[n++];
      memset(a, 0, sizeof(*a));
      if (want == AF_INET6) {
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a->addr;
        v6->sin6_family = AF_INET6;
        memcpy(&v6->sin6_addr, found[i].addr.v6, 16);
        a->addrlen = sizeof(*v6);
      } else {
        struct sockaddr_in *v4 = (struct sockaddr_in *)&a->addr;
        v4->sin_family = AF_INET;
        memcpy(&v4->sin_addr, found[i].addr.v4, 4);
        a->addrlen = sizeof(*v4);
      }
    }
  }
  return n;
}

size_t dt__answer_addrs(const dt_answer_t *a, dt_addr_t *addrs, size_t max) {
  size_t n = 0;
  for (size_t i = 0; a != NULL && i < a->nanswer && n < max; i++) {
    const dt_rr_t *rr = &a->answer[i];
    dt_addr_t *out = &addrs[n];
    memset(out, 0, sizeof(*out));
    if (rr->type == DT_TYPE_AAAA && rr->rdlength == 16) {
      struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->addr;
      v6->sin6_family = AF_INET6;
      memcpy(&v6->sin6_addr, rr->rdata, 16);
      out->addrlen = sizeof(*v6);
    } else if (rr->type == DT_TYPE_A && rr->rdlength == 4) {
      struct sockaddr_in *v4 = (struct sockaddr_in *)&out->addr;
      v4->sin_family = AF_INET;
      memcpy(&v4->sin_addr, rr->rdata, 4);
      out->addrlen = sizeof(*v4);
    } else {
      continue;
    }
    out->ttl = a->ttl;
    n++;
  }
  return n;
}

dt__pre_t dt__resolver_hosts_or_literal(dt_resolver_t *r, const char *host,
                                        int family, dt_addr_t *addrs,
                                        size_t max, size_t *n) {
  dt_addr_t lit;
  *n = 0;
  if (parse_literal(host, &lit)) {
    if (max > 0 && (family == AF_UNSPEC || family == lit.addr.ss_family)) {
      addrs[0] = lit;
      *n = 1;
    }
    return DT__PRE_LITERAL;
  }
  if (r->hosts_path != NULL && max > 0) {
    *n = hosts_answer(r, host, family, addrs, max);
    if (*n > 0) {
      ADD(r, hosts_hits);
      return DT__PRE_HOSTS;
    }
  }
  return DT__PRE_NONE;
}

static HOT_INLINE dt__resolve_pre_t
resolve_pre(dt_resolver_t *r, const char *host, int family, unsigned flags,
            dt_addr_t *addrs, size_t max, size_t *count, dt_status_t *st) {
  dt__prefetch_poll(r);
  dt_addr_t lit;
  if (parse_literal(host, &lit)) {
    if (family != AF_UNSPEC && family != lit.addr.ss_family) {
      *st = DT_ENODATA;
      return DT__RESOLVE_DONE;
    }
    addrs[0] = lit;
    *count = 1;
    *st = DT_OK;
    return DT__RESOLVE_DONE;
  }
  char norm[DT_NAME_BUFSIZE];
  *st = dt_name_normalize(host, norm, sizeof(norm));
  if (*st != DT_OK) {
    if (*st == DT_ENAMETOOLONG) {
      *st = DT_EBADNAME;
    }
    return DT__RESOLVE_FAIL;
  }
  if (r->hosts_path != NULL) {
    size_t n = hosts_answer(r, host, family, addrs, max);
    if (n > 0) {
      ADD(r, hosts_hits);
      *count = n;
      *st = DT_OK;
      return DT__RESOLVE_DONE;
    }
  }
  if (r->cache != NULL && !(flags & DT_QUERY_NOCACHE) &&
      lookup_from_cache(r, host, norm, family, flags, addrs, max, count, st)) {
    return DT__RESOLVE_DONE;
  }
  return DT__RESOLVE_ASK;
}

dt__resolve_pre_t dt__resolve_pre(dt_resolver_t *r, const char *host,
                                  int family, unsigned flags, dt_addr_t *addrs,
                                  size_t max, size_t *count, dt_status_t *st) {
  return resolve_pre(r, host, family, flags, addrs, max, count, st);
}

static COLD dt_status_t lookup_dns(dt_resolver_t *r, const char *host,
                                   int family, int timeout_ms, dt_addr_t *addrs,
                                   size_t max, size_t *count) {
  dt_lookup_t *l = dt__malloc(sizeof(*l));
  if (l == NULL) {
    return DT_ENOMEM;
  }
  dt_status_t st = dt__lookup_start(l, r, host, family, 0,
                                    dt__resolver_deadline(r, timeout_ms));
  if (st == DT_OK) {
    st = dt__lookup_run(l);
  }
  if (st == DT_OK) {
    *count = dt__lookup_addrs(l, addrs, max);
  }
  dt__lookup_cleanup(l);
  dt__free(l);
  return st;
}

dt_status_t dt_resolver_lookup_addrs(dt_resolver_t *r, const char *host,
                                     int family, int timeout_ms,
                                     dt_addr_t *addrs, size_t max,
                                     size_t *count) {
  if (r == NULL || host == NULL || addrs == NULL || max == 0 || count == NULL ||
      (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)) {
    return DT_EINVAL;
  }
  dt_status_t st;
  if (resolve_pre(r, host, family, 0, addrs, max, count, &st) !=
      DT__RESOLVE_ASK) {
    return st;
  }
  return lookup_dns(r, host, family, timeout_ms, addrs, max, count);
}
