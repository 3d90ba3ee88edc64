/* Pools of idle connections per destination (dialtone/pool.h): options,
 * destinations, the idle lists and release. Acquire and the active limit
 * are in pool_acquire.c, DNS coherence in pool_dns.c, counters and
 * descriptions in pool_info.c.
 *
 * Shape: one lock per pool, held for list and table operations only (and
 * the eventfd calls of pool_int.h). The health check, dials, DNS lookups
 * and the close() of connections run with it released; a
 * connection being checked or dialed is already counted as active, so the
 * limits hold while the lock is dropped. Connections the pool decides to
 * close are collected on a local list under the lock and closed after. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>
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
  bool locked_made = false, opreg_made = false;
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
  st = dt__opreg_init(&p->opreg);
  if (st != DT_OK) {
    goto done;
  }
  opreg_made = true;
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
    if (opreg_made) {
      dt__opreg_destroy(&p->opreg);
    }
    if (locked_made) {
      pthread_mutex_destroy(&p->lock);
    }
    dt__free(p);
  }
  return st;
}

void dt__pool_conn_destroy(dt__pconn_t *c) {
  dt__conn_fini(&c->c);
  dt__free(c);
}

/* Closes the connections of a local list built under the lock. */
void dt__pool_close_all(dt__plink_t *doomed) {
  while (!list_empty(doomed)) {
    dt__pconn_t *c = by_pool(doomed->next);
    list_del(&c->by_pool);
    dt__pool_conn_destroy(c);
  }
}

void dt_pool_free(dt_pool_t *pool) {
  if (pool == NULL) {
    return;
  }
  /* Event-loop acquires end first (their callbacks run here), giving back
   * their reservations, waits and connections while the pool still
   * stands. */
  dt__opreg_abort_all(&pool->opreg);
  dt__opreg_destroy(&pool->opreg);
  while (!list_empty(&pool->lru)) {
    dt__pconn_t *c = by_pool(pool->lru.next);
    list_del(&c->by_pool);
    list_del(&c->by_dest);
    dt__pool_conn_destroy(c);
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
    if (d->efd >= 0) {
      close(d->efd);
    }
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

dt_status_t dt__pool_dest_get(dt_pool_t *p, const char *key, size_t len,
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
  d->efd = -1;
  d->keylen = len;
  memcpy(d->key, key, len + 1);
  HASH_ADD_KEYPTR(hh, p->dests, d->key, len, d);
  if (!DT_HASH_ADDED(d)) {
    dt__free(d);
    return DT_ENOMEM;
  }
  p->ndests++;
  *out = d;
  return DT_OK;
}

/* A destination with a reservation (an acquire in progress) is never
 * freed, which is what lets acquire keep its pointer across unlocks. */
void dt__pool_dest_maybe_free(dt_pool_t *p, dt__pdest_t *d) {
  if (d->nidle > 0 || d->nactive > 0 || d->nwaiting > 0 || d->dns_checking) {
    return;
  }
  HASH_DELETE(hh, p->dests, d);
  if (d->efd >= 0) {
    close(d->efd);
  }
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
  dt__pool_dest_maybe_free(p, d);
}

/* The pool's LRU list is ordered by release time, so the walk stops at
 * the first one still fresh. */
size_t dt__pool_reap(dt_pool_t *p, uint64_t now, size_t max,
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

/* d holds a reservation, so evictions never free it. */
dt__pconn_t *dt__pool_pop(dt_pool_t *p, dt__pdest_t *d, uint64_t now,
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

/* ---- deadlines -------------------------------------------------------- */

/* Milliseconds left until deadline for a blocking call: -1 (the callee's
 * own limit) when there is none. */
int dt__pool_left_ms(const dt_pool_t *p, dt_deadline_t deadline) {
  if (deadline.at_us == DT_DEADLINE_NEVER) {
    return -1;
  }
  return dt__deadline_poll_ms(&p->clock, deadline);
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

dt_status_t dt__pool_give_back(dt_pool_t *p, dt__pconn_t *c, bool reusable) {
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
  dt__pool_slot_free(p, d);
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
    dt__pool_dest_maybe_free(p, d);
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
  dt__pool_reap(p, now, DT__POOL_REAP_BATCH, &doomed);
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
  return dt__pool_give_back(pool, c, reusable);
}

/* dt_conn_free() on a pooled connection: closes it and frees its place,
 * or, once the pool is gone, just closes it. */
void dt__pool_conn_free(dt_conn_t *conn) {
  dt__pconn_t *c = (dt__pconn_t *)conn;
  if (c->pool == NULL) {
    dt__pool_conn_destroy(c);
    return;
  }
  /* Fails only for a connection that is idle (a caller freeing what it
   * already released): it stays the pool's rather than being freed
   * twice. */
  (void)dt__pool_give_back(c->pool, c, false);
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
