/* Pools of idle connections per destination (dialtone/pool.h): options,
 * destinations, the idle lists, the active limit, acquire and release.
 * DNS coherence is in pool_dns.c, counters and descriptions in
 * pool_info.c.
 *
 * Shape: one lock per pool, held for list and table operations only. The
 * health check, dials, DNS lookups and close() run with it released; a
 * connection being checked or dialed is already counted as active, so the
 * limits hold while the lock is dropped. Connections the pool decides to
 * close are collected on a local list under the lock and closed after. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "dial_int.h"
#include "pool_int.h"
#include "sockopt.h"

enum {
  DEFAULT_MAX_IDLE_PER_DEST = 8,
  DEFAULT_MAX_IDLE_TOTAL = 128,
  DEFAULT_IDLE_TIMEOUT_MS = 90000,
  DEFAULT_DNS_RECHECK_MIN_MS = 1000,
  /* Most expired connections one acquire or release closes in passing: a
   * burst of expiries is spread over calls instead of stalling one (the
   * rest are found when popped, or by dt_pool_prune). */
  REAP_BATCH = 8,
};

/* ---- options, creation ------------------------------------------------- */

void dt_pool_opts_init(dt_pool_opts_t *opts) {
  if (opts == NULL) {
    return;
  }
  memset(opts, 0, sizeof(*opts));
  opts->max_idle_per_dest = DEFAULT_MAX_IDLE_PER_DEST;
  opts->max_idle_total = DEFAULT_MAX_IDLE_TOTAL;
  opts->idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
  opts->max_lifetime_ms = 0;
  opts->max_active_per_dest = 0;
  opts->fail_fast = false;
  opts->dns_coherence = false;
  opts->dns_recheck_min_ms = DEFAULT_DNS_RECHECK_MIN_MS;
  dt_conn_opts_init(&opts->conn);
}

static dt_status_t check_opts(const dt_pool_opts_t *o) {
  const dt_conn_opts_t *c = &o->conn;
  if (o->idle_timeout_ms < 0 || o->max_lifetime_ms < 0 ||
      o->dns_recheck_min_ms < 0 ||
      (c->frame_header_size != 2 && c->frame_header_size != 4) ||
      c->read_buffer_size < DT_CONN_BUFFER_MIN ||
      c->write_buffer_size < DT_CONN_BUFFER_MIN) {
    return DT_EINVAL;
  }
  return DT_OK;
}

dt_status_t dt_pool_new(const dt_pool_opts_t *opts, dt_pool_t **out) {
  dt_pool_opts_t defaults;
  if (out == NULL) {
    return DT_EINVAL;
  }
  if (opts == NULL) {
    dt_pool_opts_init(&defaults);
    opts = &defaults;
  }
  dt_status_t st = check_opts(opts);
  if (st != DT_OK) {
    return st;
  }
  dt_pool_t *p = dt__calloc(1, sizeof(*p));
  if (p == NULL) {
    return DT_ENOMEM;
  }
  bool locked_made = false;
  p->o = *opts;
  p->clock.now_us = opts->clock_us;
  p->clock.ctx = opts->clock_ctx;
  list_init(&p->lru);
  list_init(&p->active);
  if (pthread_mutex_init(&p->lock, NULL) != 0) {
    st = DT_ENOMEM;
    goto done;
  }
  locked_made = true;
  if (opts->dialer != NULL) {
    p->dialer = opts->dialer;
  } else {
    dt_dial_opts_t dopts;
    dt_dial_opts_init(&dopts);
    dopts.clock_us = opts->clock_us;
    dopts.clock_ctx = opts->clock_ctx;
    st = dt_dialer_new(&dopts, &p->dialer);
    if (st != DT_OK) {
      goto done;
    }
    p->own_dialer = true;
  }
  p->o.dialer = p->dialer;
  *out = p;

done:
  if (st != DT_OK) {
    if (locked_made) {
      pthread_mutex_destroy(&p->lock);
    }
    dt__free(p);
  }
  return st;
}

static void pconn_destroy(dt__pconn_t *c) {
  dt__conn_fini(&c->c);
  dt__free(c);
}

/* Closes the connections of a local list built under the lock. */
void dt__pool_close_all(dt__plink_t *doomed) {
  while (!list_empty(doomed)) {
    dt__pconn_t *c = by_pool(doomed->next);
    list_del(&c->by_pool);
    pconn_destroy(c);
  }
}

void dt_pool_free(dt_pool_t *pool) {
  if (pool == NULL) {
    return;
  }
  while (!list_empty(&pool->lru)) {
    dt__pconn_t *c = by_pool(pool->lru.next);
    list_del(&c->by_pool);
    list_del(&c->by_dest);
    pconn_destroy(c);
  }
  /* Handed-out connections outlive the pool as plain connections: their
   * free_fn sees pool NULL and just closes. */
  while (!list_empty(&pool->active)) {
    dt__pconn_t *c = by_pool(pool->active.next);
    list_del(&c->by_pool);
    c->pool = NULL;
    c->dest = NULL;
  }
  dt__pdest_t *d, *tmp;
  HASH_ITER(hh, pool->dests, d, tmp) {
    HASH_DELETE(hh, pool->dests, d);
    pthread_cond_destroy(&d->cond);
    dt__free(d);
  }
  pthread_mutex_destroy(&pool->lock);
  if (pool->own_dialer) {
    dt_dialer_free(pool->dialer);
  }
  dt__free(pool);
}

/* ---- destinations ------------------------------------------------------ */

/* Appends the decimal digits of v at key + n; returns the new length. */
static size_t put_uint(char *key, size_t n, unsigned v) {
  char digits[10];
  size_t k = 0;
  do {
    digits[k++] = (char)('0' + v % 10u);
    v /= 10u;
  } while (v != 0);
  while (k > 0) {
    key[n++] = digits[--k];
  }
  return n;
}

/* The destination key: Unix paths as given, IP literals in their
 * canonical text (so "::0001" and "::1" share connections), names in
 * their normal form, each with "#port". Built by hand rather than with
 * snprintf: it runs on every acquire. */
dt_status_t dt__pool_key(const char *host, uint16_t port, char *key,
                         size_t *len) {
  size_t hl = strlen(host);
  if (strncmp(host, "unix:", 5) == 0) {
    if (hl == 5) {
      return DT_EINVAL;
    }
    if (hl - 5 >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
      return DT_ENAMETOOLONG;
    }
    memcpy(key, host, hl + 1);
    *len = hl;
    return DT_OK;
  }
  struct sockaddr_storage ss;
  socklen_t sl;
  size_t n = 0;
  if (dt__sockaddr_parse(host, 0, &ss, &sl) == DT_OK) {
    if (ss.ss_family == AF_INET) {
      const uint8_t *b =
          (const uint8_t *)&((const struct sockaddr_in *)&ss)->sin_addr;
      for (int i = 0; i < 4; i++) {
        if (i > 0) {
          key[n++] = '.';
        }
        n = put_uint(key, n, b[i]);
      }
    } else {
      const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&ss;
      key[n++] = '[';
      inet_ntop(AF_INET6, &v6->sin6_addr, key + n, INET6_ADDRSTRLEN);
      n += strlen(key + n);
      if (v6->sin6_scope_id != 0) {
        key[n++] = '%';
        n = put_uint(key, n, (unsigned)v6->sin6_scope_id);
      }
      key[n++] = ']';
    }
  } else {
    /* DT_NAME_BUFSIZE is always enough for the normal form, and the key
     * has room for it and the port. */
    dt_status_t st = dt_name_normalize(host, key, DT_NAME_BUFSIZE);
    if (st != DT_OK) {
      return st == DT_EINVAL ? DT_EINVAL : DT_EBADNAME;
    }
    n = strlen(key);
  }
  key[n++] = '#';
  n = put_uint(key, n, port);
  key[n] = '\0';
  *len = n;
  return DT_OK;
}

dt__pdest_t *dt__pool_dest_find(dt_pool_t *p, const char *key, size_t len) {
  dt__pdest_t *d = NULL;
  HASH_FIND(hh, p->dests, key, len, d);
  return d;
}

/* Finds or makes the destination; under the lock. */
static dt_status_t dest_get(dt_pool_t *p, const char *key, size_t len,
                            dt__pdest_t **out) {
  dt__pdest_t *d = dt__pool_dest_find(p, key, len);
  if (d != NULL) {
    *out = d;
    return DT_OK;
  }
  d = dt__malloc(sizeof(*d) + len + 1);
  if (d == NULL) {
    return DT_ENOMEM;
  }
  memset(d, 0, sizeof(*d));
  list_init(&d->idle);
  d->keylen = len;
  memcpy(d->key, key, len + 1);
  /* Waits are measured on CLOCK_MONOTONIC, like every other wait. */
  pthread_condattr_t ca;
  if (pthread_condattr_init(&ca) != 0) {
    dt__free(d);
    return DT_ENOMEM;
  }
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int rc = pthread_cond_init(&d->cond, &ca);
  pthread_condattr_destroy(&ca);
  if (rc != 0) {
    dt__free(d);
    return DT_ENOMEM;
  }
  HASH_ADD_KEYPTR(hh, p->dests, d->key, len, d);
  if (!DT_HASH_ADDED(d)) {
    pthread_cond_destroy(&d->cond);
    dt__free(d);
    return DT_ENOMEM;
  }
  p->ndests++;
  *out = d;
  return DT_OK;
}

/* Forgets a destination nothing refers to any more; under the lock. A
 * destination with a reservation (an acquire in progress) is never
 * freed, which is what lets acquire keep its pointer across unlocks. */
static void dest_maybe_free(dt_pool_t *p, dt__pdest_t *d) {
  if (d->nidle > 0 || d->nactive > 0 || d->nwaiting > 0 || d->dns_checking) {
    return;
  }
  HASH_DELETE(hh, p->dests, d);
  pthread_cond_destroy(&d->cond);
  dt__free(d);
  p->ndests--;
}

/* ---- idle connections -------------------------------------------------- */

static bool past(uint64_t now, uint64_t since, int limit_ms) {
  return limit_ms > 0 && now >= since &&
         now - since >= (uint64_t)limit_ms * 1000u;
}

static bool idle_expired(const dt_pool_t *p, const dt__pconn_t *c,
                         uint64_t now) {
  return past(now, c->idle_since_us, p->o.idle_timeout_ms);
}

static bool life_expired(const dt_pool_t *p, const dt__pconn_t *c,
                         uint64_t now) {
  return past(now, c->born_us, p->o.max_lifetime_ms);
}

/* Takes an idle connection out of both idle lists; under the lock. */
static void idle_unlink(dt_pool_t *p, dt__pconn_t *c) {
  list_del(&c->by_dest);
  list_del(&c->by_pool);
  c->idle = false;
  c->dest->nidle--;
  p->nidle--;
}

/* Condemns an idle connection: out of the lists, onto doomed, its
 * destination forgotten if that was its last tie; under the lock. */
void dt__pool_evict(dt_pool_t *p, dt__pconn_t *c, dt_pool_evict_t why,
                    dt__plink_t *doomed) {
  dt__pdest_t *d = c->dest;
  idle_unlink(p, c);
  POOL_STAT(p, evicted[why]);
  c->dest = NULL;
  list_push(doomed, &c->by_pool);
  dest_maybe_free(p, d);
}

/* Evicts up to max connections idle past the timeout, oldest first: the
 * pool's LRU list is ordered by release time, so the walk stops at the
 * first one still fresh. Under the lock. */
static size_t reap(dt_pool_t *p, uint64_t now, size_t max,
                   dt__plink_t *doomed) {
  size_t n = 0;
  while (n < max && !list_empty(&p->lru)) {
    dt__pconn_t *c = by_pool(p->lru.prev);
    if (!idle_expired(p, c, now)) {
      break;
    }
    dt__pool_evict(p, c, DT_POOL_EVICT_IDLE, doomed);
    n++;
  }
  return n;
}

/* The most recently released usable idle connection of d, moved to the
 * active list, or NULL; expired ones met on the way are evicted. d holds a
 * reservation, so evictions never free it. Under the lock. */
static dt__pconn_t *pop(dt_pool_t *p, dt__pdest_t *d, uint64_t now,
                        dt__plink_t *doomed) {
  while (!list_empty(&d->idle)) {
    dt__pconn_t *c = by_dest(d->idle.next);
    if (idle_expired(p, c, now)) {
      dt__pool_evict(p, c, DT_POOL_EVICT_IDLE, doomed);
      continue;
    }
    if (life_expired(p, c, now)) {
      dt__pool_evict(p, c, DT_POOL_EVICT_LIFETIME, doomed);
      continue;
    }
    idle_unlink(p, c);
    list_push(&p->active, &c->by_pool);
    return c;
  }
  return NULL;
}

/* One non-blocking look at an idle socket: -1 when it is quiet (healthy),
 * else why it must be closed. A peek reports all three cases in one
 * system call: 0 bytes is end of stream, bytes are bytes, and a pending
 * error (a reset) comes back as the call's error. */
static int health_check(int fd) {
  for (;;) {
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) {
      return DT_POOL_CHECK_EOF;
    }
    if (n > 0) {
      return DT_POOL_CHECK_DATA;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return -1;
    }
    if (errno != EINTR) {
      return DT_POOL_CHECK_ERROR;
    }
  }
}

/* ---- the active limit -------------------------------------------------- */

/* Frees one reservation of d and wakes one waiter for it; under the
 * lock. */
static void slot_free(dt_pool_t *p, dt__pdest_t *d) {
  d->nactive--;
  p->nactive--;
  if (d->nwaiting > 0) {
    pthread_cond_signal(&d->cond);
  }
}

/* Sleeps on d->cond until signalled or until deadline on the pool's
 * clock, converted to CLOCK_MONOTONIC (the pool's clock may be a test's).
 * Under the lock, which the wait drops. */
static void wait_slot(dt_pool_t *p, dt__pdest_t *d, dt_deadline_t deadline) {
  if (deadline.at_us == DT_DEADLINE_NEVER) {
    pthread_cond_wait(&d->cond, &p->lock);
    return;
  }
  uint64_t left = dt__deadline_left_us(&p->clock, deadline);
  /* The caller's loop waits again if the deadline is further away: the
   * cap only keeps the sum and the time_t conversion in range. */
  if (left > 3600ull * 1000000u) {
    left = 3600ull * 1000000u;
  }
  uint64_t at = dt__now_us() + left;
  struct timespec ts;
  ts.tv_sec = (time_t)(at / 1000000u);
  ts.tv_nsec = (long)(at % 1000000u) * 1000;
  pthread_cond_timedwait(&d->cond, &p->lock, &ts);
}

/* Reserves an active slot of d, waiting for one when the limit is
 * reached; under the lock. A waiter that wakes to a free slot takes it
 * even if its deadline passed meanwhile, so no wake-up is ever lost. */
static dt_status_t reserve(dt_pool_t *p, dt__pdest_t *d, dt_deadline_t deadline,
                           bool *waited) {
  size_t limit = p->o.max_active_per_dest;
  if (limit > 0 && d->nactive >= limit) {
    if (p->o.fail_fast) {
      POOL_STAT(p, busy);
      return DT_EBUSY;
    }
    POOL_STAT(p, waits);
    *waited = true;
    d->nwaiting++;
    while (d->nactive >= limit) {
      if (dt__deadline_passed(&p->clock, deadline)) {
        d->nwaiting--;
        POOL_STAT(p, wait_timeouts);
        return DT_EBUSY;
      }
      wait_slot(p, d, deadline);
    }
    d->nwaiting--;
  }
  d->nactive++;
  p->nactive++;
  return DT_OK;
}

/* Milliseconds left until deadline for a blocking call: -1 (the callee's
 * own limit) when there is none. */
int dt__pool_left_ms(const dt_pool_t *p, dt_deadline_t deadline) {
  if (deadline.at_us == DT_DEADLINE_NEVER) {
    return -1;
  }
  return dt__deadline_poll_ms(&p->clock, deadline);
}

/* ---- acquire ----------------------------------------------------------- */

/* Dials a new connection for d, whose reservation the caller holds; the
 * reservation becomes the connection's, or is freed on failure. */
static dt_status_t dial_new(dt_pool_t *p, dt__pdest_t *d, const char *host,
                            uint16_t port, dt_deadline_t deadline,
                            dt_conn_t **out) {
  dt__plink_t doomed;
  list_init(&doomed);
  POOL_STAT(p, dials);
  dt_status_t st = DT_ENOMEM;
  int fd = -1;
  dt__pconn_t *c = dt__calloc(1, sizeof(*c));
  if (c != NULL) {
    dt_dial_report_t rep;
    st = dt_dial(p->dialer, host, port, dt__pool_left_ms(p, deadline), &fd,
                 &rep);
    if (st != DT_OK) {
      POOL_STAT(p, dial_failures);
    } else {
      st = dt__conn_init(&c->c, fd, &p->o.conn);
      if (st != DT_OK) {
        close(fd);
      } else if (rep.winner >= 0) {
        const dt_dial_attempt_t *w = &rep.attempts[rep.winner];
        memcpy(&c->peer, &w->addr, w->addrlen);
        c->peerlen = w->addrlen;
      }
    }
    if (st == DT_OK) {
      c->c.free_fn = dt__pool_conn_free;
      c->pool = p;
      c->dest = d;
      c->clock = p->clock;
      c->born_us = dt__clock_us(&p->clock);
      c->uses = 1;
      list_init(&c->by_dest);
      if (p->o.dns_coherence) {
        dt__pool_dns_learn(p, d, c, host, &rep, deadline, &doomed);
      }
    }
  }
  pthread_mutex_lock(&p->lock);
  if (st == DT_OK) {
    list_push(&p->active, &c->by_pool);
  } else {
    slot_free(p, d);
    dest_maybe_free(p, d);
  }
  pthread_mutex_unlock(&p->lock);
  dt__pool_close_all(&doomed);
  if (st != DT_OK) {
    dt__free(c);
    return st;
  }
  *out = &c->c;
  return DT_OK;
}

dt_status_t dt_pool_acquire(dt_pool_t *pool, const char *host, uint16_t port,
                            int timeout_ms, dt_conn_t **conn) {
  if (pool == NULL || host == NULL || conn == NULL) {
    return DT_EINVAL;
  }
  char key[DT__POOL_KEY_MAX];
  size_t keylen;
  dt_status_t st = dt__pool_key(host, port, key, &keylen);
  if (st != DT_OK) {
    return st;
  }
  POOL_STAT(pool, acquires);
  /* One clock read serves the deadline and the expiry checks below. */
  uint64_t now = dt__clock_us(&pool->clock);
  dt_deadline_t deadline = {DT_DEADLINE_NEVER};
  if (timeout_ms >= 0) {
    deadline.at_us = now + (uint64_t)timeout_ms * 1000u;
  }
  dt__plink_t doomed;
  list_init(&doomed);

  pthread_mutex_lock(&pool->lock);
  dt__pdest_t *d = NULL;
  bool waited = false;
  st = dest_get(pool, key, keylen, &d);
  if (st == DT_OK) {
    st = reserve(pool, d, deadline, &waited);
    if (st != DT_OK) {
      dest_maybe_free(pool, d);
    }
  }
  if (st != DT_OK) {
    pthread_mutex_unlock(&pool->lock);
    return st;
  }
  if (waited) {
    now = dt__clock_us(&pool->clock);
  }
  reap(pool, now, REAP_BATCH, &doomed);
  bool recheck = pool->o.dns_coherence && d->dns_known && !d->dns_checking &&
                 d->nidle > 0 && now >= d->dns_expiry_us;
  dt__pconn_t *c = NULL;
  if (recheck) {
    d->dns_checking = true;
  } else {
    c = pop(pool, d, now, &doomed);
  }
  pthread_mutex_unlock(&pool->lock);
  dt__pool_close_all(&doomed);

  if (recheck) {
    dt__pool_dns_recheck(pool, d, host, deadline);
    pthread_mutex_lock(&pool->lock);
    now = dt__clock_us(&pool->clock);
    c = pop(pool, d, now, &doomed);
    pthread_mutex_unlock(&pool->lock);
    dt__pool_close_all(&doomed);
  }
  for (;;) {
    if (c == NULL) {
      return dial_new(pool, d, host, port, deadline, conn);
    }
    int why = health_check(c->c.fd);
    if (why < 0) {
      break;
    }
    POOL_STAT(pool, check_closed[why]);
    pthread_mutex_lock(&pool->lock);
    list_del(&c->by_pool);
    now = dt__clock_us(&pool->clock);
    dt__pconn_t *next = pop(pool, d, now, &doomed);
    pthread_mutex_unlock(&pool->lock);
    pconn_destroy(c);
    dt__pool_close_all(&doomed);
    c = next;
  }
  POOL_STAT(pool, reuses);
  c->reused = true;
  c->uses++;
  c->idle_us = now >= c->idle_since_us ? now - c->idle_since_us : 0;
  __atomic_store_n(&c->c.reuse_unproven, true, __ATOMIC_RELAXED);
  *conn = &c->c;
  return DT_OK;
}

/* ---- release ----------------------------------------------------------- */

/* Why a released connection cannot be kept, from its own state: -1 when
 * it can. Read without the lock: the caller still owns it. */
static int discard_reason(const dt__pconn_t *c, bool reusable) {
  if (!reusable) {
    return DT_POOL_DISCARD_UNREUSABLE;
  }
  if (dt__conn_broken(&c->c) || c->c.fd < 0 || c->c.eof || c->c.wr_shut) {
    return DT_POOL_DISCARD_BROKEN;
  }
  if (dt_conn_pending_input(&c->c) > 0) {
    return DT_POOL_DISCARD_INPUT;
  }
  if (dt_conn_pending_output(&c->c) > 0) {
    return DT_POOL_DISCARD_OUTPUT;
  }
  return -1;
}

static dt_status_t give_back(dt_pool_t *p, dt__pconn_t *c, bool reusable) {
  int discard = discard_reason(c, reusable);
  __atomic_store_n(&c->c.reuse_unproven, false, __ATOMIC_RELAXED);
  dt__conn_drop_big(&c->c);
  dt__plink_t doomed;
  list_init(&doomed);

  pthread_mutex_lock(&p->lock);
  dt__pdest_t *d = c->dest;
  if (c->idle || d == NULL) {
    pthread_mutex_unlock(&p->lock);
    return DT_EINVAL; /* released twice */
  }
  list_del(&c->by_pool);
  slot_free(p, d);
  uint64_t now = dt__clock_us(&p->clock);
  int evict_why = -1;
  if (discard < 0) {
    if (life_expired(p, c, now)) {
      evict_why = DT_POOL_EVICT_LIFETIME;
    } else if (p->o.dns_coherence && c->dns_tracked &&
               c->dns_gen != d->dns_gen) {
      /* The answer changed while it was out: keep it only if its peer is
       * still in the new one. */
      if (dt__pool_in_answer(d, c)) {
        c->dns_gen = d->dns_gen;
        c->dns_expiry_us = d->dns_expiry_us;
      } else {
        evict_why = DT_POOL_EVICT_DNS;
      }
    }
    if (evict_why < 0 &&
        (p->o.max_idle_per_dest == 0 || p->o.max_idle_total == 0)) {
      evict_why = DT_POOL_EVICT_CAPACITY;
    }
  }
  if (discard >= 0 || evict_why >= 0) {
    if (discard >= 0) {
      POOL_STAT(p, discarded[discard]);
    } else {
      POOL_STAT(p, evicted[evict_why]);
    }
    c->dest = NULL;
    dest_maybe_free(p, d);
    list_push(&doomed, &c->by_pool);
  } else {
    if (c->dns_tracked && c->dns_gen == d->dns_gen) {
      c->dns_expiry_us = d->dns_expiry_us;
    }
    c->idle = true;
    c->idle_since_us = now;
    list_push(&d->idle, &c->by_dest);
    list_push(&p->lru, &c->by_pool);
    d->nidle++;
    p->nidle++;
    /* c is the most recent of both lists, and both limits are at least
     * 1 here, so neither loop can take c (nor free d). */
    while (d->nidle > p->o.max_idle_per_dest) {
      dt__pool_evict(p, by_dest(d->idle.prev), DT_POOL_EVICT_CAPACITY, &doomed);
    }
    while (p->nidle > p->o.max_idle_total) {
      dt__pool_evict(p, by_pool(p->lru.prev), DT_POOL_EVICT_CAPACITY, &doomed);
    }
  }
  reap(p, now, REAP_BATCH, &doomed);
  pthread_mutex_unlock(&p->lock);
  dt__pool_close_all(&doomed);
  return DT_OK;
}

dt_status_t dt_pool_release(dt_pool_t *pool, dt_conn_t *conn, bool reusable) {
  if (pool == NULL || conn == NULL || conn->free_fn != dt__pool_conn_free) {
    return DT_EINVAL;
  }
  dt__pconn_t *c = (dt__pconn_t *)conn;
  if (c->pool != pool) {
    return DT_EINVAL;
  }
  return give_back(pool, c, reusable);
}

/* dt_conn_free() on a pooled connection: closes it and frees its place,
 * or, once the pool is gone, just closes it. */
void dt__pool_conn_free(dt_conn_t *conn) {
  dt__pconn_t *c = (dt__pconn_t *)conn;
  if (c->pool == NULL) {
    pconn_destroy(c);
    return;
  }
  /* Fails only for a connection that is idle (a caller freeing what it
   * already released): it stays the pool's rather than being freed
   * twice. */
  (void)give_back(c->pool, c, false);
}

/* ---- maintenance and introspection ------------------------------------- */

size_t dt_pool_prune(dt_pool_t *pool) {
  if (pool == NULL) {
    return 0;
  }
  dt__plink_t doomed;
  list_init(&doomed);
  size_t n = 0;
  pthread_mutex_lock(&pool->lock);
  uint64_t now = dt__clock_us(&pool->clock);
  dt__plink_t *l = pool->lru.prev;
  while (l != &pool->lru) {
    dt__pconn_t *c = by_pool(l);
    l = l->prev;
    if (idle_expired(pool, c, now)) {
      dt__pool_evict(pool, c, DT_POOL_EVICT_IDLE, &doomed);
      n++;
    } else if (life_expired(pool, c, now)) {
      dt__pool_evict(pool, c, DT_POOL_EVICT_LIFETIME, &doomed);
      n++;
    }
  }
  pthread_mutex_unlock(&pool->lock);
  dt__pool_close_all(&doomed);
  return n;
}
