/* Getting a connection from a pool (dialtone/pool.h): the acquire state
 * machine (pool_int.h), which the event-loop API runs too, the active
 * limit it waits at, and dt_pool_acquire, a poll() loop over the machine.
 *
 * An acquire reserves a slot of its destination (waiting at the active
 * limit for one), may look the name up again (DNS coherence), then takes
 * the most recently released idle connection that passes the health check,
 * or dials and may learn the DNS answer the dial used. Each wait is a
 * state; the health check never blocks and stays inside a step. An idle
 * hit finishes inside dt__pacq_start, with no poll() and no allocation,
 * so the blocking call costs what it did before it became a loop. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "closefd.h"
#include "pool_int.h"

/* For the one step an idle hit goes through and that two states share: a
 * call there costs a measurable part of a hit. */
#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

/* ---- the active limit -------------------------------------------------- */

/* Waiters poll one eventfd per destination, level-triggered. Its count is
 * 1 exactly while a waiter can take a slot, and is moved under the lock
 * whenever nwaiting or nactive change that, so:
 * - a release on any thread wakes waiters on every thread and loop;
 * - the waiter that takes the last free slot drains it, and those that
 *   lost the race find it quiet when they poll again: nobody spins;
 * - a waiter that leaves (deadline, cleanup) takes nothing with it: a slot
 *   freed meanwhile stays visible to the other waiters, or, with none
 *   left, free for the next acquire.
 * Fairness: an acquire never takes a slot while others wait (it joins
 * them), so a stream of newcomers cannot starve waiters. Among waiters the
 * first to run after a release gets the slot, as threads woken by a
 * broadcast would; there is no FIFO order. */
void dt__pool_wake_sync(const dt_pool_t *p, dt__pdest_t *d) {
  bool ready = d->nwaiting > 0 && d->nactive < p->o.max_active_per_dest;
  if (d->efd < 0 || ready == d->efd_ready) {
    return;
  }
  uint64_t v = 1;
  ssize_t rc =
      ready ? write(d->efd, &v, sizeof(v)) : read(d->efd, &v, sizeof(v));
  /* Neither can fail: the count only moves between 0 and 1. */
  (void)rc;
  d->efd_ready = ready;
}

/* ---- steps ------------------------------------------------------------- */

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

static void finish(dt__pacq_t *m, dt_status_t st) {
  m->state = DT__PACQ_DONE;
  m->done = true;
  m->status = st;
}

/* Ends with st, giving the reservation back. */
static void fail(dt__pacq_t *m, dt_status_t st) {
  dt_pool_t *p = m->p;
  pthread_mutex_lock(&p->lock);
  dt__pool_slot_free(p, m->d);
  dt__pool_dest_maybe_free(p, m->d);
  pthread_mutex_unlock(&p->lock);
  finish(m, st);
}

static void dial_begin(dt__pacq_t *m, const char *host);

/* c failed the health check for why: closes it and pops the next
 * candidate (or NULL), updating *now. */
static DT__NOINLINE dt__pconn_t *next_idle(dt__pacq_t *m, dt__pconn_t *c,
                                           int why, uint64_t *now) {
  dt_pool_t *p = m->p;
  POOL_STAT(p, check_closed[why]);
  dt__plink_t doomed;
  list_init(&doomed);
  pthread_mutex_lock(&p->lock);
  list_del(&c->by_pool);
  *now = dt__clock_us(&p->clock);
  dt__pconn_t *next = dt__pool_pop(p, m->d, *now, &doomed);
  pthread_mutex_unlock(&p->lock);
  dt__pool_conn_destroy(c);
  dt__pool_close_all(&doomed);
  return next;
}

/* c is the first idle candidate (popped), or NULL: finishes with the first
 * one that passes the health check, else dials. */
static inline void try_idle(dt__pacq_t *m, dt__pconn_t *c, uint64_t now,
                            const char *host) {
  while (c != NULL) {
    int why = health_check(c->c.fd);
    if (why < 0) {
      c->idle_us = now >= c->idle_since_us ? now - c->idle_since_us : 0;
      m->c = c;
      m->reused = true;
      finish(m, DT_OK);
      return;
    }
    c = next_idle(m, c, why, &now);
  }
  dial_begin(m, host);
}

/* The recheck's answer is in: apply it, then try the idle connections it
 * left. */
static void recheck_end(dt__pacq_t *m, dt_status_t st, const dt_addr_t *addrs,
                        size_t n, const char *host) {
  dt_pool_t *p = m->p;
  dt__pool_dns_recheck_done(p, m->d, st, addrs, n);
  dt__plink_t doomed;
  list_init(&doomed);
  pthread_mutex_lock(&p->lock);
  uint64_t now = dt__clock_us(&p->clock);
  dt__pconn_t *c = dt__pool_pop(p, m->d, now, &doomed);
  pthread_mutex_unlock(&p->lock);
  dt__pool_close_all(&doomed);
  try_idle(m, c, now, host);
}

static DT__NOINLINE void recheck_begin(dt__pacq_t *m, const char *host) {
  dt_addr_t addrs[DT__POOL_DNS_MAX];
  size_t n = 0;
  dt_status_t st;
  POOL_STAT(m->p, dns_lookups);
  m->state = DT__PACQ_RECHECK;
  if (dt__pool_dns_start(m->p, host, m->deadline, &m->u.lookup, addrs, &n,
                         &st)) {
    recheck_end(m, st, addrs, n, host);
  }
}

/* Under the lock, with a slot reserved: closes a batch of expired idle
 * connections, then looks the name up again when DNS coherence says it is
 * time, else tries the idle connections. Drops the lock. */
static ALWAYS_INLINE void reserved(dt__pacq_t *m, uint64_t now,
                                   const char *host) {
  dt_pool_t *p = m->p;
  dt__pdest_t *d = m->d;
  dt__plink_t doomed;
  list_init(&doomed);
  dt__pool_reap(p, now, DT__POOL_REAP_BATCH, &doomed);
  bool recheck = p->o.dns_coherence && d->dns_known && !d->dns_checking &&
                 d->nidle > 0 && now >= d->dns_expiry_us;
  dt__pconn_t *c = NULL;
  if (recheck) {
    d->dns_checking = true;
  } else {
    c = dt__pool_pop(p, d, now, &doomed);
  }
  pthread_mutex_unlock(&p->lock);
  dt__pool_close_all(&doomed);
  if (recheck) {
    recheck_begin(m, host);
  } else {
    try_idle(m, c, now, host);
  }
}

/* The dial is done: the connection is made and enters the active list
 * (it holds the reservation from now on), then the answer its address
 * came from is learned when DNS coherence follows it. */
static void dial_end(dt__pacq_t *m, const char *host) {
  dt_pool_t *p = m->p;
  dt__pconn_t *c = m->c;
  int fd = -1;
  dt_status_t st = dt__dial_take(&m->u.dial, &fd);
  dt__dial_cleanup(&m->u.dial);
  if (st != DT_OK) {
    POOL_STAT(p, dial_failures);
  } else {
    st = dt__conn_init(&c->c, fd, &p->o.conn);
    if (st != DT_OK) {
      dt__close(fd); /* an event loop watched it during the dial */
    }
  }
  if (st != DT_OK) {
    dt__free(c);
    m->c = NULL;
    fail(m, st);
    return;
  }
  /* The report lives in the dial, which the lookup below overwrites: read
   * it first. */
  const dt_dial_report_t *rep = m->u.dial.rep;
  if (rep->winner >= 0) {
    const dt_dial_attempt_t *w = &rep->attempts[rep->winner];
    memcpy(&c->peer, &w->addr, w->addrlen);
    c->peerlen = w->addrlen;
  }
  bool follow = p->o.dns_coherence && dt__pool_dns_followed(rep);
  c->c.free_fn = dt__pool_conn_free;
  c->pool = p;
  c->dest = m->d;
  c->clock = p->clock;
  c->born_us = dt__clock_us(&p->clock);
  list_init(&c->by_dest);
  pthread_mutex_lock(&p->lock);
  list_push(&p->active, &c->by_pool);
  pthread_mutex_unlock(&p->lock);
  m->reused = false;
  if (!follow) {
    finish(m, DT_OK);
    return;
  }
  dt_addr_t addrs[DT__POOL_DNS_MAX];
  size_t n = 0;
  m->state = DT__PACQ_LEARN;
  if (dt__pool_dns_start(p, host, m->deadline, &m->u.lookup, addrs, &n, &st)) {
    dt__pool_dns_learn_done(p, m->d, c, st, addrs, n);
    finish(m, DT_OK);
  }
}

static DT__NOINLINE void dial_begin(dt__pacq_t *m, const char *host) {
  dt_pool_t *p = m->p;
  POOL_STAT(p, dials);
  m->c = dt__calloc(1, sizeof(*m->c));
  if (m->c == NULL) {
    fail(m, DT_ENOMEM);
    return;
  }
  dt_status_t st = dt__dial_start(&m->u.dial, p->dialer, host, m->port,
                                  dt__pool_left_ms(p, m->deadline), NULL, 0);
  if (st != DT_OK) {
    POOL_STAT(p, dial_failures);
    dt__free(m->c);
    m->c = NULL;
    fail(m, st);
    return;
  }
  m->state = DT__PACQ_DIAL;
  if (m->u.dial.done) {
    dial_end(m, host);
  }
}

/* At the active limit: takes a free slot (even past the deadline, so a
 * release that came in time is not wasted), else leaves once the deadline
 * passed. */
static void wait_step(dt__pacq_t *m) {
  dt_pool_t *p = m->p;
  dt__pdest_t *d = m->d;
  pthread_mutex_lock(&p->lock);
  if (d->nactive < p->o.max_active_per_dest) {
    d->nwaiting--;
    d->nactive++;
    p->nactive++;
    dt__pool_wake_sync(p, d);
    reserved(m, dt__clock_us(&p->clock), m->host);
    return;
  }
  if (!dt__deadline_passed(&p->clock, m->deadline)) {
    pthread_mutex_unlock(&p->lock);
    return;
  }
  d->nwaiting--;
  dt__pool_wake_sync(p, d);
  POOL_STAT(p, wait_timeouts);
  dt__pool_dest_maybe_free(p, d);
  pthread_mutex_unlock(&p->lock);
  finish(m, DT_EBUSY);
}

/* ---- the machine ------------------------------------------------------- */

dt_status_t dt__pacq_start(dt__pacq_t *m, dt_pool_t *p, const char *host,
                           uint16_t port, int timeout_ms) {
  if (m == NULL) {
    return DT_EINVAL;
  }
  /* Holding nothing until the end of the checks: dt__pacq_cleanup after a
   * failed start does no harm. */
  m->p = p;
  m->c = NULL;
  m->state = DT__PACQ_DONE;
  m->done = true;
  m->status = DT_EINVAL;
  if (p == NULL || host == NULL) {
    return DT_EINVAL;
  }
  char key[DT__POOL_KEY_MAX];
  size_t keylen;
  dt_status_t st = dt__pool_key(host, port, key, &keylen);
  if (st != DT_OK) {
    return st;
  }
  POOL_STAT(p, acquires);
  /* One clock read serves the deadline and the expiry checks. */
  uint64_t now = dt__clock_us(&p->clock);
  m->d = NULL;
  m->port = port;
  m->deadline.at_us =
      timeout_ms >= 0 ? now + (uint64_t)timeout_ms * 1000u : DT_DEADLINE_NEVER;
  m->reused = false;

  pthread_mutex_lock(&p->lock);
  m->d = dt__pool_dest_find(p, key, keylen);
  if (m->d == NULL) {
    st = dt__pool_dest_get(p, key, keylen, &m->d);
    if (st != DT_OK) {
      pthread_mutex_unlock(&p->lock);
      return st;
    }
  }
  /* From here the machine holds something and runs. */
  m->done = false;
  m->status = DT_OK;
  dt__pdest_t *d = m->d;
  size_t limit = p->o.max_active_per_dest;
  if (limit > 0 && (d->nactive >= limit || d->nwaiting > 0)) {
    if (p->o.fail_fast) {
      POOL_STAT(p, busy);
      dt__pool_dest_maybe_free(p, d);
      pthread_mutex_unlock(&p->lock);
      finish(m, DT_EBUSY);
      return DT_OK;
    }
    if (d->efd < 0) {
      d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (d->efd < 0) {
        st = dt_status_from_errno(errno);
        dt__pool_dest_maybe_free(p, d);
        pthread_mutex_unlock(&p->lock);
        finish(m, DT_EINVAL);
        return st == DT_OK ? DT_ESYS : st;
      }
    }
    POOL_STAT(p, waits);
    d->nwaiting++;
    dt__pool_wake_sync(p, d);
    pthread_mutex_unlock(&p->lock);
    m->state = DT__PACQ_WAIT;
  } else {
    d->nactive++;
    p->nactive++;
    reserved(m, now, host);
  }
  /* Later steps need host; a hit (the common case) does not. */
  if (!m->done) {
    size_t hl = strlen(host);
    if (hl >= sizeof(m->host)) {
      /* Only escapes make a valid name this long, and only a wait gets
       * here with one (a lookup or a dial refuses it at once). */
      dt__pacq_cleanup(m);
      return DT_EBADNAME;
    }
    memcpy(m->host, host, hl + 1);
  }
  return DT_OK;
}

size_t dt__pacq_pollfds(const dt__pacq_t *m, struct pollfd *pfd) {
  switch (m->state) {
  case DT__PACQ_WAIT:
    /* d->efd is set for good before any waiter comes (under the lock). */
    pfd[0].fd = m->d->efd;
    pfd[0].events = POLLIN;
    pfd[0].revents = 0;
    return 1;
  case DT__PACQ_RECHECK:
  case DT__PACQ_LEARN:
    return dt__lookup_pollfds(&m->u.lookup, pfd);
  case DT__PACQ_DIAL:
    return dt__dial_pollfds(&m->u.dial, pfd);
  case DT__PACQ_DONE:
    break;
  }
  return 0;
}

dt_deadline_t dt__pacq_deadline(const dt__pacq_t *m) {
  switch (m->state) {
  case DT__PACQ_WAIT:
    return m->deadline;
  case DT__PACQ_RECHECK:
  case DT__PACQ_LEARN:
    return dt__lookup_deadline(&m->u.lookup);
  case DT__PACQ_DIAL:
    return dt__dial_deadline(&m->u.dial);
  case DT__PACQ_DONE:
    break;
  }
  dt_deadline_t never = {DT_DEADLINE_NEVER};
  return never;
}

void dt__pacq_process(dt__pacq_t *m, const struct pollfd *pfd, size_t n) {
  dt_addr_t addrs[DT__POOL_DNS_MAX];
  size_t na = 0;
  dt_status_t st;
  switch (m->state) {
  case DT__PACQ_WAIT:
    wait_step(m);
    break;
  case DT__PACQ_RECHECK:
    dt__lookup_process(&m->u.lookup, pfd, n);
    if (m->u.lookup.done) {
      dt__pool_dns_finish(&m->u.lookup, addrs, &na, &st);
      recheck_end(m, st, addrs, na, m->host);
    }
    break;
  case DT__PACQ_DIAL:
    dt__dial_process(&m->u.dial, pfd, n);
    if (m->u.dial.done) {
      dial_end(m, m->host);
    }
    break;
  case DT__PACQ_LEARN:
    dt__lookup_process(&m->u.lookup, pfd, n);
    if (m->u.lookup.done) {
      dt__pool_dns_finish(&m->u.lookup, addrs, &na, &st);
      dt__pool_dns_learn_done(m->p, m->d, m->c, st, addrs, na);
      finish(m, DT_OK);
    }
    break;
  case DT__PACQ_DONE:
    break;
  }
}

/* Inline so that the blocking call's hit pays no call for it. */
static inline dt_status_t take(dt__pacq_t *m, dt_conn_t **conn) {
  if (!m->done) {
    return DT_EINVAL;
  }
  if (m->status != DT_OK) {
    return m->status;
  }
  dt__pconn_t *c = m->c;
  if (c == NULL) {
    return DT_EINVAL; /* taken already */
  }
  m->c = NULL;
  /* Counted here rather than when found, so that an acquire cancelled
   * before its connection was taken counts no reuse and no use. */
  c->uses++;
  if (m->reused) {
    POOL_STAT(m->p, reuses);
    c->reused = true;
    __atomic_store_n(&c->c.reuse_unproven, true, __ATOMIC_RELAXED);
  }
  *conn = &c->c;
  return DT_OK;
}

dt_status_t dt__pacq_take(dt__pacq_t *m, dt_conn_t **conn) {
  return take(m, conn);
}

/* Whether the machine holds nothing any more: it failed, or its connection
 * was taken. */
static inline bool empty(const dt__pacq_t *m) {
  return m->state == DT__PACQ_DONE && m->c == NULL;
}

void dt__pacq_cleanup(dt__pacq_t *m) {
  if (m == NULL || empty(m)) {
    return;
  }
  dt_pool_t *p = m->p;
  dt__pdest_t *d = m->d;
  switch (m->state) {
  case DT__PACQ_WAIT:
    pthread_mutex_lock(&p->lock);
    d->nwaiting--;
    dt__pool_wake_sync(p, d);
    dt__pool_dest_maybe_free(p, d);
    pthread_mutex_unlock(&p->lock);
    break;
  case DT__PACQ_RECHECK:
    dt__lookup_cleanup(&m->u.lookup);
    /* The next acquire looks again: the answer is still expired. */
    pthread_mutex_lock(&p->lock);
    d->dns_checking = false;
    dt__pool_slot_free(p, d);
    dt__pool_dest_maybe_free(p, d);
    pthread_mutex_unlock(&p->lock);
    break;
  case DT__PACQ_DIAL:
    dt__dial_cleanup(&m->u.dial);
    dt__free(m->c);
    m->c = NULL;
    fail(m, DT_ECANCELED);
    break;
  case DT__PACQ_LEARN:
    dt__lookup_cleanup(&m->u.lookup);
    break;
  case DT__PACQ_DONE:
    break;
  }
  /* LEARN, or done but not taken: the connection is healthy and unused,
   * so it goes back as if released (the pool's rules may still close
   * it). */
  if (m->c != NULL) {
    (void)dt__pool_give_back(p, m->c, true);
    m->c = NULL;
  }
  if (!m->done) {
    finish(m, DT_ECANCELED);
  }
  m->state = DT__PACQ_DONE;
}

/* ---- the blocking call ------------------------------------------------- */

/* The clock a state's deadline is on: a lookup's is the resolver's, a
 * dial's the dialer's (normally all one clock). */
static const dt_clock_t *state_clock(const dt__pacq_t *m) {
  const dt_dialer_t *dl = m->p->dialer;
  switch (m->state) {
  case DT__PACQ_RECHECK:
  case DT__PACQ_LEARN:
    return &dl->resolver->clock;
  case DT__PACQ_DIAL:
    return &dl->clock;
  default:
    return &m->p->clock;
  }
}

dt_status_t dt_pool_acquire(dt_pool_t *pool, const char *host, uint16_t port,
                            int timeout_ms, dt_conn_t **conn) {
  if (conn == NULL) {
    return DT_EINVAL;
  }
  dt__pacq_t m;
  dt_status_t st = dt__pacq_start(&m, pool, host, port, timeout_ms);
  if (st != DT_OK) {
    return st;
  }
  while (!m.done) {
    struct pollfd pfd[DT__PACQ_MAX_POLLFDS];
    size_t n = dt__pacq_pollfds(&m, pfd);
    int ms = dt__deadline_poll_ms(state_clock(&m), dt__pacq_deadline(&m));
    /* A dial polls through the dialer's socket seam, as dt_dial does. */
    const dt_sockops_t *ops = &pool->dialer->ops;
    int rc = m.state == DT__PACQ_DIAL ? ops->poll(ops->ctx, pfd, (nfds_t)n, ms)
                                      : poll(pfd, (nfds_t)n, ms);
    if (rc < 0) {
      if (errno == EINTR) {
        continue;
      }
      st = dt_status_from_errno(errno);
      dt__pacq_cleanup(&m);
      return st == DT_OK ? DT_ESYS : st;
    }
    dt__pacq_process(&m, pfd, rc > 0 ? n : 0);
  }
  st = take(&m, conn);
  if (!empty(&m)) {
    dt__pacq_cleanup(&m);
  }
  return st;
}
