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
  memset(ss, 0, sizeof(*ss));
  struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)p);
    *len = sizeof(*v4);
    return DT_OK;
  }
  char *pct = strchr(host, '%');
  if (pct != NULL) {
    *pct = '\0';
  }
  if (inet_pton(AF_INET6, host, &v6->sin6_addr) != 1) {
    return DT_EINVAL;
  }
  if (pct != NULL) {
    unsigned idx = if_nametoindex(pct + 1);
    if (idx == 0) {
      char *end;
      unsigned long n = strtoul(pct + 1, &end, 10);
      if (pct[1] == '\0' || *end != '\0' || n > UINT_MAX) {
        return DT_EINVAL;
      }
      idx = (unsigned)n;
    }
    v6->sin6_scope_id = idx;
  }
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons((uint16_t)p);
  *len = sizeof(*v6);
  return DT_OK;
}

static socklen_t sockaddr_len(const struct sockaddr_storage *ss) {
  return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                   : sizeof(struct sockaddr_in);
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
  bool lock_ok = false, rw_ok = false, reload_ok = false;
  r->clock.now_us = opts->clock_us;
  r->clock.ctx = opts->clock_ctx;
  r->timeout_ms = 2000;
  r->attempts = 3;
  r->ndots = 1;
  r->rotate = opts->rotate;
  r->edns = opts->edns;
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
      r->servers[i].len = sockaddr_len(&conf->servers[i]);
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
}

/* ---- the question machine ------------------------------------------- */

/* Server order for one candidate: healthy servers in configured order
 * (rotated when asked), then penalised ones, soonest-recovering first, so
 * a dead server costs nothing until its penalty runs out and a recovered
 * one is used again. */
static void order_servers(dt_rquery_t *q) {
  dt_resolver_t *r = q->r;
  size_t n = r->nservers;
  size_t start = 0;
  if (r->rotate) {
    start = __atomic_fetch_add(&r->rotate_next, 1, __ATOMIC_RELAXED) % n;
  }
  uint64_t now = dt__clock_us(&r->clock);
  uint64_t until[DT_CONF_MAX_SERVERS];
  pthread_mutex_lock(&r->lock);
  for (size_t i = 0; i < n; i++) {
    until[i] = r->servers[i].penalty_until_us;
  }
  pthread_mutex_unlock(&r->lock);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    size_t s = (start + i) % n;
    if (until[s] <= now) {
      q->order[k++] = s;
    }
  }
  size_t healthy = k;
  for (size_t i = 0; i < n; i++) {
    size_t s = (start + i) % n;
    if (until[s] > now) {
      size_t j = k++;
      while (j > healthy && until[q->order[j - 1]] > until[s]) {
        q->order[j] = q->order[j - 1];
        j--;
      }
      q->order[j] = s;
    }
  }
  q->norder = n;
}

static void penalise(dt_rquery_t *q, size_t s) {
  dt_resolver_t *r = q->r;
  uint64_t now = dt__clock_us(&r->clock);
  pthread_mutex_lock(&r->lock);
  r->servers[s].failures++;
  r->servers[s].penalty_until_us = now + (uint64_t)r->penalty_ms * 1000u;
  pthread_mutex_unlock(&r->lock);
}

static void absolve(dt_rquery_t *q, size_t s) {
  dt_resolver_t *r = q->r;
  pthread_mutex_lock(&r->lock);
  r->servers[s].failures = 0;
  r->servers[s].penalty_until_us = 0;
  pthread_mutex_unlock(&r->lock);
}

static void finish(dt_rquery_t *q, dt_status_t st) {
  if (q->active) {
    dt__exchange_close(&q->ex);
    q->active = false;
  }
  q->done = true;
  q->status = q->best != NULL ? DT_OK : st;
}

/* Keeps the most useful reply seen: positive > NODATA > server errors >
 * NXDOMAIN; the first of equal rank. Takes ownership of a. */
static void offer(dt_rquery_t *q, dt_answer_t *a, int rank) {
  if (rank > q->best_rank || q->best == NULL) {
    dt_answer_free(q->best);
    q->best = a;
    q->best_rank = rank;
  } else {
    dt_answer_free(a);
  }
}

enum { RANK_NXDOMAIN = 1, RANK_FAIL = 2, RANK_NODATA = 3, RANK_POSITIVE = 4 };

static void next_candidate(dt_rquery_t *q);
static void start_try(dt_rquery_t *q);

/* The current candidate ended without a final reply from any server. */
static void candidate_failed(dt_rquery_t *q, dt_status_t st) {
  if (q->cand_fail != NULL) {
    /* Every server answered SERVFAIL-like: glibc moves on in the search
     * list; remember the reply in case nothing better comes. */
    offer(q, q->cand_fail, RANK_FAIL);
    q->cand_fail = NULL;
    next_candidate(q);
    return;
  }
  /* No reply at all: searching further would only multiply the wait. */
  finish(q, st);
}

static void advance(dt_rquery_t *q, dt_status_t why) {
  if (q->active) {
    dt__exchange_close(&q->ex);
    q->active = false;
  }
  q->tryno++;
  q->tcp = (q->flags & DT_QUERY_TCP) != 0;
  if (q->tryno >= q->ntries || dt__deadline_passed(&q->r->clock, q->deadline)) {
    candidate_failed(q, why);
    return;
  }
  ADD(q->r, failovers);
  start_try(q);
}

static void start_try(dt_rquery_t *q) {
  dt_resolver_t *r = q->r;
  for (;;) {
    if (dt__deadline_passed(&r->clock, q->deadline)) {
      candidate_failed(q, DT_ETIMEDOUT);
      return;
    }
    q->server = q->order[q->tryno % q->norder];
    q->edns_sent =
        r->edns && !(q->flags & DT_QUERY_NOEDNS) && !q->no_edns[q->server];
    dt_status_t st =
        dt__wire_build_query(q->qname, q->qtype, q->edns_sent, q->query,
                             sizeof(q->query), &q->qlen, &q->id);
    if (st != DT_OK) {
      finish(q, st);
      return;
    }
    dt_server_t *s = &r->servers[q->server];
    st = dt__exchange_start(&q->ex, (struct sockaddr *)&s->addr, s->len,
                            q->tcp ? DT_TRANSPORT_TCP : DT_TRANSPORT_UDP,
                            q->query, q->qlen, &r->ex);
    if (st == DT_OK) {
      q->active = true;
      q->try_deadline = dt__deadline_min(
          dt__deadline_in(&r->clock, r->timeout_ms), q->deadline);
      return;
    }
    if (st == DT_ENOMEM || st == DT_EMFILE) {
      finish(q, st); /* local trouble: another server will not help */
      return;
    }
    penalise(q, q->server);
    q->tryno++;
    q->tcp = (q->flags & DT_QUERY_TCP) != 0;
    if (q->tryno >= q->ntries) {
      candidate_failed(q, st);
      return;
    }
    ADD(r, failovers);
  }
}

static void start_candidate(dt_rquery_t *q) {
  dt_status_t st = dt__candidate_name(q->r, q->name, q->cand[q->icand],
                                      q->qname, sizeof(q->qname));
  if (st != DT_OK) {
    /* name + domain too long: that candidate does not exist */
    next_candidate(q);
    return;
  }
  order_servers(q);
  q->tryno = 0;
  q->ntries = q->norder * (size_t)q->r->attempts;
  q->tcp = (q->flags & DT_QUERY_TCP) != 0;
  start_try(q);
}

static void next_candidate(dt_rquery_t *q) {
  q->icand++;
  if (q->icand >= q->ncand) {
    finish(q, q->best != NULL ? DT_OK : DT_ENXDOMAIN);
    return;
  }
  start_candidate(q);
}

size_t dt__candidates(const dt_resolver_t *r, const char *name, unsigned flags,
                      int *cand) {
  size_t n = 0;
  bool search = !(flags & DT_QUERY_NOSEARCH) && !dt__name_is_absolute(name) &&
                r->nsearch > 0;
  bool as_is_first = !search || dt__name_ndots(name) >= (size_t)r->ndots;
  if (as_is_first) {
    cand[n++] = -1;
  }
  if (search) {
    for (size_t i = 0; i < r->nsearch; i++) {
      cand[n++] = (int)i;
    }
    if (!as_is_first) {
      cand[n++] = -1;
    }
  }
  return n;
}

dt_status_t dt__candidate_name(const dt_resolver_t *r, const char *name,
                               int cand, char *out, size_t outlen) {
  if (cand < 0) {
    return dt_name_normalize(name, out, outlen);
  }
  return dt__name_join(name, r->search[cand], out, outlen);
}

dt_status_t dt__rquery_start(dt_rquery_t *q, dt_resolver_t *r, const char *name,
                             uint16_t qtype, unsigned flags,
                             dt_deadline_t deadline) {
  char norm[DT_NAME_BUFSIZE];
  dt_status_t st = dt_name_normalize(name, norm, sizeof(norm));
  if (st != DT_OK) {
    return st == DT_ENAMETOOLONG ? DT_EBADNAME : st;
  }
  /* One memset keeps every field defined; its cost is nothing next to a
   * network round trip. */
  memset(q, 0, sizeof(*q));
  q->ex.fd = -1;
  q->r = r;
  q->qtype = qtype;
  q->flags = flags;
  q->deadline = deadline;
  memcpy(q->name, name, strlen(name) + 1);

  q->ncand = dt__candidates(r, name, flags, q->cand);
  q->icand = 0;
  start_candidate(q);
  return DT_OK;
}

bool dt__rquery_pollfd(const dt_rquery_t *q, struct pollfd *pfd) {
  if (q->done || !q->active) {
    return false;
  }
  pfd->fd = dt__exchange_fd(&q->ex);
  pfd->events = dt__exchange_events(&q->ex);
  pfd->revents = 0;
  return true;
}

dt_deadline_t dt__rquery_deadline(const dt_rquery_t *q) {
  dt_deadline_t never = {DT_DEADLINE_NEVER};
  if (q->done) {
    return never;
  }
  return q->active ? q->try_deadline : q->deadline;
}

/* A reply matched the current try. */
static void on_reply(dt_rquery_t *q) {
  dt_resolver_t *r = q->r;
  size_t len;
  const uint8_t *pkt = dt__exchange_reply(&q->ex, &len);
  dt_reply_head_t head;
  if (dt__wire_head(pkt, len, &head) != DT_OK) {
    advance(q, DT_EBADREPLY);
    return;
  }
  if (head.tc && !q->tcp) {
    /* Truncated: ask the same server again over TCP, with a fresh try
     * deadline, without counting a failover. */
    ADD(r, truncated);
    dt__exchange_close(&q->ex);
    q->active = false;
    q->tcp = true;
    start_try(q);
    return;
  }
  if (q->edns_sent && head.rcode == DT_RCODE_FORMERR) {
    /* A server that does not speak EDNS0: ask it again without. */
    ADD(r, edns_fallbacks);
    q->no_edns[q->server] = true;
    dt__exchange_close(&q->ex);
    q->active = false;
    start_try(q);
    return;
  }
  dt_answer_t *a = NULL;
  dt_status_t st = dt__wire_parse(pkt, len, &a);
  if (st == DT_ENOMEM || st == DT_ELOOP) {
    finish(q, st);
    return;
  }
  if (st != DT_OK) {
    advance(q, DT_EBADREPLY);
    return;
  }
  dt_server_t *s = &r->servers[q->server];
  memcpy(&a->server, &s->addr, s->len);
  a->server_len = s->len;
  a->transport = q->tcp ? DT_TRANSPORT_TCP : DT_TRANSPORT_UDP;
  absolve(q, q->server);

  switch (head.rcode) {
  case DT_RCODE_NOERROR:
    if (dt_answer_status(a) == DT_OK) {
      offer(q, a, RANK_POSITIVE);
      finish(q, DT_OK);
    } else {
      offer(q, a, RANK_NODATA);
      dt__exchange_close(&q->ex);
      q->active = false;
      next_candidate(q);
    }
    return;
  case DT_RCODE_NXDOMAIN:
    offer(q, a, RANK_NXDOMAIN);
    dt__exchange_close(&q->ex);
    q->active = false;
    next_candidate(q);
    return;
  default:
    /* SERVFAIL, REFUSED, NOTIMP, ...: another server may do better. */
    dt_answer_free(q->cand_fail);
    q->cand_fail = a;
    advance(q, dt_answer_status(a));
    return;
  }
}

void dt__rquery_process(dt_rquery_t *q, short revents) {
  if (q->done || !q->active) {
    return;
  }
  if (revents != 0) {
    dt_status_t err;
    switch (dt__exchange_process(&q->ex, revents, &err)) {
    case DT_EX_REPLY:
      on_reply(q);
      return;
    case DT_EX_ERROR:
      if (err == DT_ENOMEM) {
        finish(q, err);
        return;
      }
      penalise(q, q->server);
      advance(q, err);
      return;
    case DT_EX_PENDING:
      break;
    }
  }
  if (dt__deadline_passed(&q->r->clock, q->try_deadline)) {
    ADD(q->r, timeouts);
    penalise(q, q->server);
    advance(q, DT_ETIMEDOUT);
  }
}

dt_status_t dt__rquery_take(dt_rquery_t *q, dt_answer_t **out) {
  if (!q->done) {
    return DT_EINVAL;
  }
  if (q->status != DT_OK) {
    return q->status;
  }
  *out = q->best;
  q->best = NULL;
  return DT_OK;
}

void dt__rquery_cleanup(dt_rquery_t *q) {
  if (q->active) {
    dt__exchange_close(&q->ex);
    q->active = false;
  }
  dt_answer_free(q->best);
  q->best = NULL;
  dt_answer_free(q->cand_fail);
  q->cand_fail = NULL;
}

/* ---- the address lookup machine ------------------------------------ */

/* A and AAAA for one candidate name at a time, both in flight together;
 * the search list moves on only when both say the name has no address
 * (musl's and glibc's getaddrinfo do the same). */
static void lookup_start_candidate(dt_lookup_t *l);

static void lookup_finish(dt_lookup_t *l, dt_status_t st) {
  for (size_t i = 0; i < 2; i++) {
    if (l->used[i]) {
      dt__rquery_cleanup(&l->q[i]);
      l->used[i] = false;
    }
  }
  l->done = true;
  l->status = st;
}

/* Both questions of the candidate are answered: decide. */
static void lookup_settle(dt_lookup_t *l) {
  dt_status_t worst = DT_OK;
  bool positive = false;
  for (size_t i = 0; i < 2; i++) {
    if (!l->used[i]) {
      continue;
    }
    dt_answer_t *a = NULL;
    dt_status_t st = dt__rquery_take(&l->q[i], &a);
    if (st == DT_OK) {
      st = dt_answer_status(a);
      if (st == DT_OK) {
        positive = true;
        dt_answer_free(l->answers[i]);
        l->answers[i] = a;
        continue;
      }
      dt_answer_free(a);
    }
    /* Rank the failure the way the caller most wants to hear it. */
    if (st == DT_ENODATA) {
      l->nodata = true;
    } else if (st == DT_ENXDOMAIN) {
      l->nxdomain = true;
    } else if (worst == DT_OK || worst == DT_ESERVFAIL ||
               worst == DT_EREFUSED) {
      worst = st;
    }
  }
  if (positive) {
    lookup_finish(l, DT_OK);
    return;
  }
  if (worst != DT_OK && worst != DT_ESERVFAIL && worst != DT_EREFUSED &&
      worst != DT_EFORMERR && worst != DT_ENOTIMP) {
    /* No reply, out of memory, a CNAME loop: searching on would not help. */
    lookup_finish(l, worst);
    return;
  }
  if (worst != DT_OK) {
    l->fail = worst;
  }
  l->icand++;
  if (l->icand >= l->ncand) {
    lookup_finish(l, l->nodata     ? DT_ENODATA
                     : l->fail     ? l->fail
                     : l->nxdomain ? DT_ENXDOMAIN
                                   : DT_ENXDOMAIN);
    return;
  }
  lookup_start_candidate(l);
}

static void lookup_start_candidate(dt_lookup_t *l) {
  static const uint16_t types[2] = {DT_TYPE_AAAA, DT_TYPE_A};
  static const int families[2] = {AF_INET6, AF_INET};
  char qname[DT_NAME_BUFSIZE];
  for (;;) {
    dt_status_t st = dt__candidate_name(l->r, l->name, l->cand[l->icand], qname,
                                        sizeof(qname));
    if (st == DT_OK) {
      break;
    }
    if (++l->icand >= l->ncand) {
      lookup_finish(l, DT_ENXDOMAIN);
      return;
    }
  }
  for (size_t i = 0; i < 2; i++) {
    if (l->family != AF_UNSPEC && l->family != families[i]) {
      continue;
    }
    /* The candidate is already expanded: ask it exactly, as an absolute
     * name. */
    size_t n = strlen(qname);
    if (n + 2 <= sizeof(qname) && strcmp(qname, ".") != 0) {
      qname[n] = '.';
      qname[n + 1] = '\0';
    }
    dt_status_t st =
        dt__rquery_start(&l->q[i], l->r, qname, types[i],
                         l->flags | DT_QUERY_NOSEARCH, l->deadline);
    qname[n] = '\0';
    if (st != DT_OK) {
      lookup_finish(l, st);
      return;
    }
    l->used[i] = true;
  }
  if (dt__lookup_done_questions(l)) {
    lookup_settle(l);
  }
}

bool dt__lookup_done_questions(const dt_lookup_t *l) {
  for (size_t i = 0; i < 2; i++) {
    if (l->used[i] && !l->q[i].done) {
      return false;
    }
  }
  return true;
}

dt_status_t dt__lookup_start(dt_lookup_t *l, dt_resolver_t *r, const char *name,
                             int family, unsigned flags,
                             dt_deadline_t deadline) {
  memset(l, 0, sizeof(*l));
  l->r = r;
  l->family = family;
  l->flags = flags & ~DT_QUERY_NOSEARCH;
  l->deadline = deadline;
  size_t len = strlen(name);
  if (len >= sizeof(l->name)) {
    return DT_EBADNAME;
  }
  memcpy(l->name, name, len + 1);
  l->ncand = dt__candidates(r, name, flags, l->cand);
  lookup_start_candidate(l);
  return DT_OK;
}

size_t dt__lookup_pollfds(const dt_lookup_t *l, struct pollfd *pfd) {
  size_t k = 0;
  for (size_t i = 0; i < 2 && !l->done; i++) {
    if (l->used[i] && dt__rquery_pollfd(&l->q[i], &pfd[k])) {
      k++;
    }
  }
  return k;
}

dt_deadline_t dt__lookup_deadline(const dt_lookup_t *l) {
  dt_deadline_t d = {DT_DEADLINE_NEVER};
  for (size_t i = 0; i < 2 && !l->done; i++) {
    if (l->used[i]) {
      d = dt__deadline_min(d, dt__rquery_deadline(&l->q[i]));
    }
  }
  return d;
}

void dt__lookup_process(dt_lookup_t *l, const struct pollfd *pfd, size_t n) {
  if (l->done) {
    return;
  }
  for (size_t i = 0; i < 2; i++) {
    if (!l->used[i] || l->q[i].done) {
      continue;
    }
    short revents = 0;
    for (size_t j = 0; j < n; j++) {
      if (l->q[i].active && pfd[j].fd == dt__exchange_fd(&l->q[i].ex)) {
        revents = pfd[j].revents;
      }
    }
    dt__rquery_process(&l->q[i], revents);
  }
  if (dt__lookup_done_questions(l)) {
    lookup_settle(l);
  }
}

bool dt__lookup_peek(const dt_lookup_t *l, int family, dt_addr_t *addrs,
                     size_t max, size_t *n, dt_status_t *st) {
  size_t i = family == AF_INET6 ? 0 : 1;
  *n = 0;
  if (l->done) {
    *n = dt__answer_addrs(l->answers[i], addrs, max);
    *st = *n > 0 ? DT_OK : (l->status == DT_OK ? DT_ENODATA : l->status);
    return true;
  }
  if (!l->used[i] || !l->q[i].done) {
    return false;
  }
  const dt_rquery_t *q = &l->q[i];
  if (q->status != DT_OK || q->best == NULL) {
    *st = q->status != DT_OK ? q->status : DT_ENODATA;
    return true;
  }
  *st = dt_answer_status(q->best);
  if (*st == DT_OK) {
    *n = dt__answer_addrs(q->best, addrs, max);
  }
  return true;
}

void dt__lookup_cleanup(dt_lookup_t *l) {
  for (size_t i = 0; i < 2; i++) {
    if (l->used[i]) {
      dt__rquery_cleanup(&l->q[i]);
      l->used[i] = false;
    }
    dt_answer_free(l->answers[i]);
    l->answers[i] = NULL;
  }
}

/* Drives a lookup with poll() until it is done. */
static dt_status_t lookup_run(dt_lookup_t *l) {
  while (!l->done) {
    struct pollfd pfd[2];
    size_t k = dt__lookup_pollfds(l, pfd);
    int rc = poll(pfd, (nfds_t)k,
                  dt__deadline_poll_ms(&l->r->clock, dt__lookup_deadline(l)));
    if (rc < 0) {
      if (errno == EINTR) {
        continue;
      }
      dt_status_t st = dt_status_from_errno(errno);
      lookup_finish(l, st);
      return st;
    }
    dt__lookup_process(l, pfd, k);
  }
  return l->status;
}

/* ---- public calls ---------------------------------------------------- */

static dt_deadline_t overall_deadline(dt_resolver_t *r, int timeout_ms) {
  return dt__deadline_in(&r->clock, timeout_ms < 0 ? -1 : timeout_ms);
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
  dt_status_t st = dt__rquery_start(q, r, name, type, flags,
                                    overall_deadline(r, timeout_ms));
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

static bool parse_literal(const char *host, dt_addr_t *a) {
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

dt_status_t dt_resolver_lookup_addrs(dt_resolver_t *r, const char *host,
                                     int family, int timeout_ms,
                                     dt_addr_t *addrs, size_t max,
                                     size_t *count) {
  if (r == NULL || host == NULL || addrs == NULL || max == 0 || count == NULL ||
      (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)) {
    return DT_EINVAL;
  }
  dt_addr_t lit;
  if (parse_literal(host, &lit)) {
    if (family != AF_UNSPEC && family != lit.addr.ss_family) {
      return DT_ENODATA;
    }
    addrs[0] = lit;
    *count = 1;
    return DT_OK;
  }
  char norm[DT_NAME_BUFSIZE];
  dt_status_t st = dt_name_normalize(host, norm, sizeof(norm));
  if (st != DT_OK) {
    return st == DT_ENAMETOOLONG ? DT_EBADNAME : st;
  }
  if (r->hosts_path != NULL) {
    size_t n = hosts_answer(r, host, family, addrs, max);
    if (n > 0) {
      ADD(r, hosts_hits);
      *count = n;
      return DT_OK;
    }
  }
  dt_lookup_t *l = dt__malloc(sizeof(*l));
  if (l == NULL) {
    return DT_ENOMEM;
  }
  st = dt__lookup_start(l, r, host, family, 0, overall_deadline(r, timeout_ms));
  if (st == DT_OK) {
    st = lookup_run(l);
  }
  if (st == DT_OK) {
    size_t n = dt__answer_addrs(l->answers[0], addrs, max);
    n += dt__answer_addrs(l->answers[1], addrs + n, max - n);
    *count = n;
  }
  dt__lookup_cleanup(l);
  dt__free(l);
  return st;
}
