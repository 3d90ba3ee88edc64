/* DNS coherence for the pool (dialtone/pool.h): a destination remembers
 * the latest DNS answer for its name; idle connections whose peer left it
 * are closed, and connections handed out meanwhile are checked when they
 * come back. The lookups are steps of the acquire machine
 * (pool_acquire.c): an answer from the hosts file or the cache lands at
 * once, else a lookup machine runs, always without the pool's lock. */
#include "config.h"

#include <string.h>

#include "dial_int.h"
#include "pool_int.h"
#include "sockopt.h"

static bool same_ip(const struct sockaddr *a, const dt__ipaddr_t *b) {
  if (a->sa_family != b->sa.sa_family) {
    return false;
  }
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)(const void *)a;
    return x->sin_addr.s_addr == b->in.sin_addr.s_addr;
  }
  if (a->sa_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)(const void *)a;
    return memcmp(&x->sin6_addr, &b->in6.sin6_addr, sizeof(x->sin6_addr)) == 0;
  }
  return false;
}

bool dt__pool_in_answer(const dt__pdest_t *d, const dt__pconn_t *c) {
  for (size_t i = 0; i < d->ndns; i++) {
    if (same_ip((const struct sockaddr *)&c->peer, &d->dns[i])) {
      return true;
    }
  }
  return false;
}

static bool same_set(const dt__pdest_t *d, const dt_addr_t *a, size_t n) {
  if (n != d->ndns) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    bool found = false;
    for (size_t j = 0; j < d->ndns && !found; j++) {
      found = same_ip((const struct sockaddr *)&a[i].addr, &d->dns[j]);
    }
    if (!found) {
      return false;
    }
  }
  return true;
}

/* Records the latest answer for d's name and closes the idle connections
 * whose peer left it; under the lock. Runs once per lookup, so walking
 * d's idle list (at most max_idle_per_dest long) is cheap. */
static void dns_apply(dt_pool_t *p, dt__pdest_t *d, const dt_addr_t *a,
                      size_t n, uint64_t now, dt__plink_t *doomed) {
  uint64_t ttl_us = UINT64_MAX;
  for (size_t i = 0; i < n; i++) {
    if ((uint64_t)a[i].ttl * 1000000u < ttl_us) {
      ttl_us = (uint64_t)a[i].ttl * 1000000u;
    }
  }
  uint64_t floor_us = (uint64_t)p->o.dns_recheck_min_ms * 1000u;
  if (n == 0 || ttl_us < floor_us) {
    ttl_us = floor_us;
  }
  if (!d->dns_known || !same_set(d, a, n)) {
    d->ndns = 0;
    for (size_t i = 0; i < n && d->ndns < DT__POOL_DNS_MAX; i++) {
      if (a[i].addr.ss_family == AF_INET || a[i].addr.ss_family == AF_INET6) {
        memcpy(&d->dns[d->ndns++], &a[i].addr,
               dt__sockaddr_len(a[i].addr.ss_family));
      }
    }
    d->dns_gen++;
    d->dns_known = true;
  }
  d->dns_expiry_us = now + ttl_us;
  dt__plink_t *l = d->idle.next;
  while (l != &d->idle) {
    dt__pconn_t *c = by_dest(l);
    l = l->next;
    if (!c->dns_tracked) {
      continue;
    }
    if (c->dns_gen != d->dns_gen && !dt__pool_in_answer(d, c)) {
      dt__pool_evict(p, c, DT_POOL_EVICT_DNS, doomed);
      continue;
    }
    c->dns_gen = d->dns_gen;
    c->dns_expiry_us = d->dns_expiry_us;
  }
}

static int dialer_family(const dt_dialer_t *dl) {
  return dl->has_bind ? dl->bind.sa.sa_family : dl->o.family;
}

bool dt__pool_dns_start(dt_pool_t *p, const char *host, dt_deadline_t deadline,
                        dt_lookup_t *l, dt_addr_t *addrs, size_t *n,
                        dt_status_t *st) {
  dt_resolver_t *r = p->dialer->resolver;
  int family = dialer_family(p->dialer);
  *n = 0;
  if (dt__resolve_pre(r, host, family, 0, addrs, DT__POOL_DNS_MAX, n, st) !=
      DT__RESOLVE_ASK) {
    return true;
  }
  /* The resolver's own deadline, as dt_resolver_lookup_addrs would set it
   * for the time left. */
  *st = dt__lookup_start(
      l, r, host, family, 0,
      dt__deadline_in(&r->clock, dt__pool_left_ms(p, deadline)));
  if (*st != DT_OK) {
    dt__lookup_cleanup(l);
    return true;
  }
  if (l->done) {
    dt__pool_dns_finish(l, addrs, n, st);
    return true;
  }
  return false;
}

void dt__pool_dns_finish(dt_lookup_t *l, dt_addr_t *addrs, size_t *n,
                         dt_status_t *st) {
  *st = l->status;
  *n = *st == DT_OK ? dt__lookup_addrs(l, addrs, DT__POOL_DNS_MAX) : 0;
  dt__lookup_cleanup(l);
}

/* The recheck's answer (the lookup ran without the lock; d->dns_checking
 * kept other acquires from doing the same). A name that no longer exists
 * closes every idle connection of d; a failed lookup keeps them and is
 * retried after dns_recheck_min_ms. */
void dt__pool_dns_recheck_done(dt_pool_t *p, dt__pdest_t *d, dt_status_t st,
                               const dt_addr_t *addrs, size_t n) {
  dt__plink_t doomed;
  list_init(&doomed);
  pthread_mutex_lock(&p->lock);
  uint64_t now = dt__clock_us(&p->clock);
  d->dns_checking = false;
  if (st == DT_OK) {
    dns_apply(p, d, addrs, n, now, &doomed);
  } else if (st == DT_ENXDOMAIN || st == DT_ENODATA) {
    dns_apply(p, d, NULL, 0, now, &doomed);
  } else {
    POOL_STAT(p, dns_failures);
    d->dns_expiry_us = now + (uint64_t)p->o.dns_recheck_min_ms * 1000u;
  }
  pthread_mutex_unlock(&p->lock);
  dt__pool_close_all(&doomed);
}

/* Only an address from DNS (or the cache of DNS answers) has an answer to
 * follow: literals, the hosts file and Unix paths do not change under a
 * connection. */
bool dt__pool_dns_followed(const dt_dial_report_t *rep) {
  const dt_dial_lookup_t *lk = rep->family == AF_INET6 ? &rep->aaaa : &rep->a;
  return (rep->family == AF_INET || rep->family == AF_INET6) &&
         (lk->source == DT_DIAL_SOURCE_CACHE ||
          lk->source == DT_DIAL_SOURCE_DNS);
}

void dt__pool_dns_learn_done(dt_pool_t *p, dt__pdest_t *d, dt__pconn_t *c,
                             dt_status_t st, const dt_addr_t *addrs, size_t n) {
  if (st != DT_OK) {
    return; /* not followed: nothing to compare it with */
  }
  dt__plink_t doomed;
  list_init(&doomed);
  pthread_mutex_lock(&p->lock);
  dns_apply(p, d, addrs, n, dt__clock_us(&p->clock), &doomed);
  c->dns_tracked = true;
  /* A peer the fresh answer does not hold keeps generation 0 and is
   * closed when released. */
  c->dns_gen = dt__pool_in_answer(d, c) ? d->dns_gen : 0;
  c->dns_expiry_us = d->dns_expiry_us;
  pthread_mutex_unlock(&p->lock);
  dt__pool_close_all(&doomed);
}
