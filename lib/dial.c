#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "closefd.h"
#include "dial_int.h"
#include "sockopt.h"

/* Family indexes of the machine's per-family arrays. */
enum { V6 = 0, V4 = 1 };

/* dt__sortaddr_t.tag bits. */
enum { TAG_TRIED = 1u << 0, TAG_SOURCED = 1u << 1 };

/* Unix connect() retries while the listener's queue is full: Linux answers
 * EAGAIN instead of waiting, and offers nothing to poll for. */
enum { UNIX_BACKOFF_FIRST_MS = 1, UNIX_BACKOFF_MAX_MS = 64 };

static int family_of(int i) {
  return i == V6 ? AF_INET6 : AF_INET;
}

static dt_dial_lookup_t *lookup_rec(dt__dial_t *m, int i) {
  return i == V6 ? &m->rep->aaaa : &m->rep->a;
}

/* The clock is read once per step of the machine (start, process, feed,
 * abort): every time stamp and deadline of a step uses that reading, so
 * what happens in one step happens at one time, and a literal dial costs
 * two clock reads rather than a dozen. */
static void tick(dt__dial_t *m) {
  m->now = dt__clock_us(m->clock);
}

static uint64_t since(const dt__dial_t *m) {
  return m->now > m->t0 ? m->now - m->t0 : 0;
}

/* ms (not negative) after the step's time. */
static dt_deadline_t after(const dt__dial_t *m, int64_t ms) {
  dt_deadline_t d = {m->now + (uint64_t)ms * 1000u};
  return d;
}

static bool passed(const dt__dial_t *m, dt_deadline_t d) {
  return d.at_us != DT_DEADLINE_NEVER && m->now >= d.at_us;
}

static dt_status_t status_of(int err) {
  dt_status_t st = dt_status_from_errno(err);
  return st == DT_OK ? DT_ESYS : st;
}

static void close_fd(const dt__dial_t *m, int fd) {
  int saved = errno;
  m->d->ops.close(m->d->ops.ctx, fd);
  dt__closed(fd); /* an event loop may be watching the number */
  errno = saved;
}

/* ---- trace --------------------------------------------------------------- */

static void emit(const dt__dial_t *m, dt_dial_event_t *ev) {
  ev->time_us = m->now;
  ev->elapsed_us = ev->time_us > m->t0 ? ev->time_us - m->t0 : 0;
  ev->host = m->host;
  m->d->o.trace(ev, m->d->o.trace_ctx);
}

static void emit_lookup(const dt__dial_t *m, dt_dial_event_type_t type, int i) {
  if (m->d->o.trace == NULL) {
    return;
  }
  const dt_dial_lookup_t *r = i == V6 ? &m->rep->aaaa : &m->rep->a;
  dt_dial_event_t ev;
  memset(&ev, 0, sizeof(ev));
  ev.type = type;
  ev.family = family_of(i);
  ev.status = r->status;
  ev.naddrs = r->naddrs;
  ev.source = r->source;
  emit(m, &ev);
}

static void emit_attempt(const dt__dial_t *m, dt_dial_event_type_t type,
                         size_t i) {
  if (m->d->o.trace == NULL) {
    return;
  }
  const dt_dial_attempt_t *a = &m->rep->attempts[i];
  dt_dial_event_t ev;
  memset(&ev, 0, sizeof(ev));
  ev.type = type;
  ev.family = a->addr.ss_family;
  ev.status = a->status;
  ev.sys_errno = a->sys_errno;
  ev.sockopt = a->sockopt;
  ev.attempt = i;
  ev.addr = (const struct sockaddr *)&a->addr;
  ev.addrlen = a->addrlen;
  emit(m, &ev);
}

/* ---- ending -------------------------------------------------------------- */

static void drop_lookup(dt__dial_t *m) {
  if (m->lookup != NULL) {
    dt__lookup_cleanup(m->lookup);
    if (m->lookup != m->lookup_mem) {
      dt__free(m->lookup);
    }
    m->lookup = NULL;
  }
}

/* Records how attempt i ended and closes its socket. A failure lets the
 * next attempt start at once (RFC 8305 §5). */
static void attempt_end(dt__dial_t *m, size_t i, dt_status_t st, int err,
                        const char *opt) {
  dt__dial_live_t *l = &m->live[i];
  if (l->fd >= 0) {
    close_fd(m, l->fd);
    l->fd = -1;
    m->ninflight--;
  }
  dt_dial_attempt_t *a = &m->rep->attempts[i];
  a->status = st;
  a->sys_errno = err;
  a->sockopt = opt;
  a->end_us = since(m);
  m->kick = true;
  emit_attempt(m, DT_DIAL_EV_ATTEMPT_DONE, i);
}

/* Ends every attempt still in flight with st. */
static void close_live(dt__dial_t *m, dt_status_t st, int err) {
  for (size_t i = 0; i < m->rep->nattempts; i++) {
    if (m->live[i].fd >= 0) {
      attempt_end(m, i, st, err, NULL);
    }
  }
}

static void finish(dt__dial_t *m, dt_status_t st) {
  drop_lookup(m);
  m->done = true;
  m->status = st;
  m->rep->status = st;
  m->rep->total_us = since(m);
  if (m->d->o.trace == NULL) {
    return;
  }
  if (st == DT_OK) {
    emit_attempt(m, DT_DIAL_EV_CONNECTED, (size_t)m->rep->winner);
  } else {
    dt_dial_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = DT_DIAL_EV_FAILED;
    ev.status = st;
    emit(m, &ev);
  }
}

/* How telling a failure is, for the dial's overall status: a refusal
 * proves the host is up and the port closed; a timeout that something is
 * in the way; local errors (descriptors, memory, a rejected option) that
 * the problem is here; unreachable routes and a disabled family say least,
 * since the other family often explains more. */
static int rank(dt_status_t st) {
  switch (st) {
  case DT_ECONNREFUSED:
    return 7;
  case DT_ETIMEDOUT:
    return 6;
  case DT_ECONNRESET:
    return 5;
  case DT_EHOSTUNREACH:
    return 3;
  case DT_ENETUNREACH:
    return 2;
  case DT_EAFNOSUPPORT:
    return 1;
  case DT_OK:
  case DT_ECANCELED:
    return 0;
  default:
    return 4;
  }
}

/* The status of a dial that connected nowhere. timed_out: the overall
 * limit passed, which counts as one more timeout. */
static dt_status_t aggregate(const dt__dial_t *m, bool timed_out) {
  const dt_dial_report_t *r = m->rep;
  dt_status_t best = timed_out ? DT_ETIMEDOUT : DT_OK;
  for (size_t i = 0; i < r->nattempts; i++) {
    if (rank(r->attempts[i].status) > rank(best)) {
      best = r->attempts[i].status;
    }
  }
  if (best != DT_OK) {
    return best;
  }
  /* Nothing was tried: the lookup says why. */
  if (m->filtered > 0) {
    return DT_EAFNOSUPPORT; /* addresses, none of a family allowed */
  }
  const dt_dial_lookup_t *l[2] = {&r->aaaa, &r->a};
  for (int i = 0; i < 2; i++) {
    if (l[i]->done && l[i]->status != DT_OK && l[i]->status != DT_ENODATA) {
      return l[i]->status;
    }
  }
  return DT_ENODATA;
}

/* Attempt i connected: it wins, everything else is closed at once. */
static void win(dt__dial_t *m, size_t i) {
  const dt_dialer_t *d = m->d;
  int fd = m->live[i].fd;
  if (!d->o.nonblocking && d->ops.set_nonblocking(d->ops.ctx, fd, false)) {
    int e = errno;
    attempt_end(m, i, status_of(e), e, "O_NONBLOCK");
    return;
  }
  m->live[i].fd = -1;
  m->ninflight--;
  dt_dial_attempt_t *a = &m->rep->attempts[i];
  a->status = DT_OK;
  a->end_us = since(m);
  emit_attempt(m, DT_DIAL_EV_ATTEMPT_DONE, i);
  m->fd = fd;
  m->rep->winner = (int)i;
  m->rep->family = a->addr.ss_family;
  m->rep->connect_us = a->end_us - a->start_us;
  close_live(m, DT_ECANCELED, 0);
  finish(m, DT_OK);
}

/* ---- attempts ------------------------------------------------------------ */

static void unix_connect(dt__dial_t *m, size_t i);

/* Opens, tunes and connects a socket for attempt i, whose address is in
 * the report. */
static void attempt_run(dt__dial_t *m, size_t i) {
  const dt_dialer_t *d = m->d;
  dt_dial_attempt_t *a = &m->rep->attempts[i];
  int family = a->addr.ss_family;
  dt__dial_live_t *l = &m->live[i];
  l->limit.at_us = DT_DEADLINE_NEVER;
  l->retry.at_us = DT_DEADLINE_NEVER;
  l->backoff_ms = UNIX_BACKOFF_FIRST_MS;
  l->fd = dt__sock_open(&d->ops, family, SOCK_STREAM);
  if (l->fd < 0) {
    int e = errno;
    attempt_end(m, i, status_of(e), e, NULL);
    return;
  }
  m->ninflight++;
  const char *opt = NULL;
  int err = 0;
  dt_status_t st =
      dt__sockopt_apply(&d->o.sockopts, &d->ops, l->fd, family, &opt, &err);
  if (st == DT_OK && d->has_bind && family != AF_UNIX) {
    st = dt__sock_bind_local(&d->ops, l->fd, &d->bind.sa,
                             dt__sockaddr_len(family), &opt, &err);
  }
  if (st != DT_OK) {
    attempt_end(m, i, st, err, opt);
    return;
  }
  if (d->o.attempt_timeout_ms > 0) {
    l->limit = after(m, d->o.attempt_timeout_ms);
  }
  if (family == AF_UNIX) {
    unix_connect(m, i);
    return;
  }
  if (d->ops.connect(d->ops.ctx, l->fd, (const struct sockaddr *)&a->addr,
                     a->addrlen) == 0) {
    win(m, i);
    return;
  }
  int e = errno;
  /* EINTR: a non-blocking connect goes on in the background. */
  if (e == EINPROGRESS || e == EINTR) {
    return;
  }
  attempt_end(m, i, status_of(e), e, NULL);
}

/* Adds an attempt to the report and runs it. */
static void attempt_start(dt__dial_t *m, const struct sockaddr *sa,
                          socklen_t len) {
  size_t i = m->rep->nattempts++;
  dt_dial_attempt_t *a = &m->rep->attempts[i];
  memset(a, 0, sizeof(*a));
  memcpy(&a->addr, sa, len);
  a->addrlen = len;
  a->start_us = since(m);
  m->live[i].fd = -1;
  m->started = true;
  m->kick = false;
  m->next_at = after(m, m->d->o.attempt_delay_ms);
  emit_attempt(m, DT_DIAL_EV_ATTEMPT_START, i);
  attempt_run(m, i);
}

static void unix_connect(dt__dial_t *m, size_t i) {
  const dt_dialer_t *d = m->d;
  dt__dial_live_t *l = &m->live[i];
  l->retry.at_us = DT_DEADLINE_NEVER;
  if (d->ops.connect(d->ops.ctx, l->fd, (const struct sockaddr *)&m->un,
                     m->unlen) == 0) {
    win(m, i);
    return;
  }
  int e = errno;
  if (e == EAGAIN || e == EWOULDBLOCK) {
    l->retry = after(m, l->backoff_ms);
    l->backoff_ms = l->backoff_ms * 2 > UNIX_BACKOFF_MAX_MS
                        ? UNIX_BACKOFF_MAX_MS
                        : l->backoff_ms * 2;
    return;
  }
  if (e == EINPROGRESS || e == EINTR) {
    return;
  }
  attempt_end(m, i, status_of(e), e, NULL);
}

/* poll() said something about attempt i's socket. */
static void attempt_check(dt__dial_t *m, size_t i, short revents) {
  const dt_dialer_t *d = m->d;
  int soerr = 0;
  socklen_t len = sizeof(soerr);
  if (d->ops.getsockopt(d->ops.ctx, m->live[i].fd, SOL_SOCKET, SO_ERROR, &soerr,
                        &len) != 0) {
    soerr = errno;
  }
  if (soerr == 0 && (revents & POLLOUT)) {
    win(m, i);
    return;
  }
  if (soerr == 0) {
    soerr = ECONNRESET; /* hung up without saying why */
  }
  attempt_end(m, i, status_of(soerr), soerr, NULL);
}

/* ---- addresses ----------------------------------------------------------- */

static bool has_family(const dt__dial_t *m, int family) {
  for (size_t k = 0; k < m->naddrs; k++) {
    if (m->addrs[k].dst.sa.sa_family == family) {
      return true;
    }
  }
  return false;
}

static size_t next_untried(const dt__dial_t *m) {
  for (size_t k = 0; k < m->naddrs; k++) {
    if (!(m->addrs[k].tag & TAG_TRIED)) {
      return k;
    }
  }
  return SIZE_MAX;
}

/* Puts every known address in dialing order. Tried addresses stay in the
 * list so that the families keep alternating around them when addresses
 * arrive late; the next attempt is the first untried one. */
static void order(dt__dial_t *m) {
  if (m->naddrs < 2) {
    return; /* nothing to order: spare the source lookups */
  }
  for (size_t k = 0; k < m->naddrs; k++) {
    if (!(m->addrs[k].tag & TAG_SOURCED)) {
      dt__addrsort_source(&m->d->ops, &m->addrs[k]);
      m->addrs[k].tag |= TAG_SOURCED;
    }
  }
  dt__addrsort_sort(m->addrs, m->naddrs);
  dt__addrsort_interleave(m->addrs, m->naddrs,
                          (unsigned)m->d->o.first_family_count);
}

/* One family's final answer: its addresses join the list. */
static void add_family(dt__dial_t *m, int i, const dt_addr_t *addrs, size_t n,
                       dt_status_t st, dt_dial_source_t source) {
  if (m->final[i]) {
    return;
  }
  m->final[i] = true;
  size_t mine = 0;
  for (size_t j = 0; j < n; j++) {
    mine += addrs[j].addr.ss_family == family_of(i);
  }
  dt_dial_lookup_t *r = lookup_rec(m, i);
  r->done = true;
  r->status = st == DT_OK && mine == 0 ? DT_ENODATA : st;
  r->naddrs = mine;
  r->source = source;
  r->end_us = since(m);
  if (source != DT_DIAL_SOURCE_LITERAL) {
    emit_lookup(m, DT_DIAL_EV_LOOKUP_DONE, i);
  }
  size_t added = 0, have = 0;
  for (size_t k = 0; k < m->naddrs; k++) {
    have += m->addrs[k].dst.sa.sa_family == family_of(i);
  }
  for (size_t j = 0; j < n && have < DT__DIAL_PER_FAMILY; j++) {
    if (addrs[j].addr.ss_family != family_of(i)) {
      continue;
    }
    dt__sortaddr_t s;
    memset(&s, 0, sizeof(s));
    memcpy(&s.dst, &addrs[j].addr, dt__sockaddr_len(family_of(i)));
    if (i == V6) {
      s.dst.in6.sin6_port = htons(m->port);
    } else {
      s.dst.in.sin_port = htons(m->port);
    }
    bool dup = false;
    for (size_t k = 0; k < m->naddrs && !dup; k++) {
      dup = dt__sockaddr_equal(&m->addrs[k].dst.sa, &s.dst.sa);
    }
    if (dup) {
      continue;
    }
    m->addrs[m->naddrs++] = s;
    have++;
    added++;
  }
  if (added == 0) {
    return;
  }
  if (m->naddrs == added && source != DT_DIAL_SOURCE_LITERAL) {
    m->rep->dns_us = r->end_us; /* the first addresses of the dial */
  }
  order(m);
}

/* Answers that came as one list (literal, hosts file): each family gets
 * its share, families the options exclude are counted as filtered. */
static void add_list(dt__dial_t *m, const dt_addr_t *addrs, size_t n,
                     dt_dial_source_t source) {
  for (int i = 0; i < 2; i++) {
    size_t count = 0;
    for (size_t j = 0; j < n; j++) {
      count += addrs[j].addr.ss_family == family_of(i);
    }
    if (!m->want[i]) {
      m->filtered += count;
      continue;
    }
    if (source == DT_DIAL_SOURCE_LITERAL && count == 0) {
      m->final[i] = true; /* a literal of the other family: not asked */
      continue;
    }
    add_family(m, i, addrs, n, count > 0 ? DT_OK : DT_ENODATA, source);
  }
}

/* The resolver marks answers served from its cache. */
static dt_dial_source_t answer_source(const dt_lookup_t *l, int i) {
  const dt_answer_t *a = l->done ? l->answers[i] : l->q[i].best;
  return a != NULL && a->from_cache ? DT_DIAL_SOURCE_CACHE : DT_DIAL_SOURCE_DNS;
}

/* Takes what the lookup has learnt. A family's positive answer counts as
 * soon as its question is done; a negative one only once the whole lookup
 * is, since the search list may still find the name elsewhere. */
static void ingest(dt__dial_t *m) {
  dt_lookup_t *l = m->lookup;
  if (l == NULL) {
    return;
  }
  for (int i = 0; i < 2; i++) {
    if (m->final[i]) {
      continue;
    }
    dt_addr_t got[DT__DIAL_PER_FAMILY];
    size_t n = 0;
    dt_status_t st;
    if (!dt__lookup_peek(l, family_of(i), got, DT__DIAL_PER_FAMILY, &n, &st)) {
      continue;
    }
    if (st != DT_OK && !l->done) {
      continue;
    }
    add_family(m, i, got, n, st, answer_source(l, i));
  }
  if (m->final[V6] && m->final[V4]) {
    drop_lookup(m); /* closes its sockets now rather than at the end */
  }
}

/* ---- scheduling ---------------------------------------------------------- */

/* RFC 8305 §3: connecting starts once IPv6 addresses are in, or AAAA has
 * given its final word; IPv4 addresses alone wait up to the resolution
 * delay, counted from their arrival, for AAAA. */
static bool gate_open(dt__dial_t *m) {
  if (m->final[V6] || has_family(m, AF_INET6)) {
    return true;
  }
  if (!m->delay_armed) {
    m->delay_armed = true;
    m->delay_ends = after(m, m->d->o.resolution_delay_ms);
  }
  return passed(m, m->delay_ends);
}

/* Starts what may start now, and ends the dial when nothing is left. */
static void advance(dt__dial_t *m) {
  while (!m->done && !m->is_unix) {
    size_t k = next_untried(m);
    if (k == SIZE_MAX || (!m->started && !gate_open(m))) {
      break;
    }
    /* One attempt at a time: the next waits for the attempt delay unless
     * one failed; never a burst of SYNs. */
    if (m->ninflight > 0 && !m->kick && !passed(m, m->next_at)) {
      break;
    }
    m->addrs[k].tag |= TAG_TRIED;
    dt__ipaddr_t dst = m->addrs[k].dst; /* order() may move addrs */
    attempt_start(m, &dst.sa, dt__sockaddr_len(dst.sa.sa_family));
  }
  if (!m->done && m->ninflight == 0 && next_untried(m) == SIZE_MAX &&
      m->final[V6] && m->final[V4]) {
    finish(m, aggregate(m, false));
  }
}

static void check_timers(dt__dial_t *m) {
  for (size_t i = 0; i < m->rep->nattempts; i++) {
    if (m->live[i].fd >= 0 && passed(m, m->live[i].limit)) {
      attempt_end(m, i, DT_ETIMEDOUT, ETIMEDOUT, NULL);
    }
  }
  if (passed(m, m->deadline)) {
    close_live(m, DT_ETIMEDOUT, ETIMEDOUT);
    finish(m, aggregate(m, true));
  }
}

/* ---- the machine --------------------------------------------------------- */

static dt_status_t start_unix(dt__dial_t *m, const char *path) {
  size_t n = strlen(path);
  if (n == 0) {
    return DT_EINVAL;
  }
  if (n >= sizeof(m->un.sun_path)) {
    return DT_ENAMETOOLONG;
  }
  memset(&m->un, 0, sizeof(m->un));
  m->un.sun_family = AF_UNIX;
  memcpy(m->un.sun_path, path, n);
  m->unlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  if (path[0] == '@') {
    /* Linux abstract namespace, named as ss(8) shows it; no NUL counted. */
    m->un.sun_path[0] = '\0';
    m->unlen--;
  }
  m->is_unix = true;
  m->final[V6] = m->final[V4] = true;
  attempt_start(m, (const struct sockaddr *)&m->un, m->unlen);
  if (!m->done && m->ninflight == 0) {
    finish(m, aggregate(m, false));
  }
  return DT_OK;
}

dt_status_t dt__dial_start(dt__dial_t *m, const dt_dialer_t *d,
                           const char *host, uint16_t port, int timeout_ms,
                           dt_dial_report_t *report, unsigned flags) {
  return dt__dial_start_in(m, d, host, port, timeout_ms, report, flags, NULL);
}

dt_status_t dt__dial_start_in(dt__dial_t *m, const dt_dialer_t *d,
                              const char *host, uint16_t port, int timeout_ms,
                              dt_dial_report_t *report, unsigned flags,
                              dt_lookup_t *lookup_mem) {
  if (m == NULL || d == NULL || host == NULL) {
    return DT_EINVAL;
  }
  size_t hl = strlen(host);
  if (strncmp(host, "unix:", 5) == 0 &&
      hl - 5 >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
    return DT_ENAMETOOLONG;
  }
  if (hl >= sizeof(m->host)) {
    return DT_EBADNAME;
  }
  memset(m, 0, offsetof(dt__dial_t, host));
  m->lookup_mem = lookup_mem;
  m->d = d;
  m->clock = &d->clock;
  memcpy(m->host, host, hl + 1);
  m->port = port;
  m->flags = flags;
  m->fd = -1;
  m->rep = report != NULL ? report : &m->own;
  memset(m->rep, 0, offsetof(dt_dial_report_t, attempts));
  m->rep->winner = -1;
  m->rep->family = AF_UNSPEC;
  tick(m);
  m->t0 = m->now;
  m->rep->start_us = m->t0;
  m->deadline = after(m, timeout_ms < 0 ? d->o.timeout_ms : timeout_ms);

  if (strncmp(host, "unix:", 5) == 0) {
    return start_unix(m, host + 5);
  }
  int family = d->has_bind ? d->bind.sa.sa_family : d->o.family;
  m->want[V6] = family != AF_INET;
  m->want[V4] = family != AF_INET6;
  m->final[V6] = !m->want[V6];
  m->final[V4] = !m->want[V4];

  dt_addr_t pre[DT_DIAL_MAX_ATTEMPTS];
  size_t n = 0;
  dt__pre_t kind = DT__PRE_NONE;
  if (!(flags & DT__DIAL_FEED)) {
    kind = dt__resolver_hosts_or_literal(d->resolver, host, AF_UNSPEC, pre,
                                         DT_DIAL_MAX_ATTEMPTS, &n);
    if (kind == DT__PRE_LITERAL) {
      add_list(m, pre, n, DT_DIAL_SOURCE_LITERAL);
      advance(m);
      return DT_OK;
    }
    char norm[DT_NAME_BUFSIZE];
    if (dt_name_normalize(host, norm, sizeof(norm)) != DT_OK) {
      return DT_EBADNAME;
    }
  }
  for (int i = 0; i < 2; i++) {
    if (m->want[i]) {
      lookup_rec(m, i)->asked = true;
      emit_lookup(m, DT_DIAL_EV_LOOKUP_START, i);
    }
  }
  if (flags & DT__DIAL_FEED) {
    advance(m);
    return DT_OK;
  }
  if (kind == DT__PRE_HOSTS) {
    add_list(m, pre, n, DT_DIAL_SOURCE_HOSTS);
    advance(m);
    return DT_OK;
  }
  m->lookup =
      m->lookup_mem != NULL ? m->lookup_mem : dt__malloc(sizeof(*m->lookup));
  if (m->lookup == NULL) {
    return DT_ENOMEM;
  }
  /* AAAA and A leave together; a cache hit may finish either here. */
  dt_status_t st =
      dt__lookup_start(m->lookup, d->resolver, host, family, 0, m->deadline);
  if (st != DT_OK) {
    drop_lookup(m);
    return st;
  }
  ingest(m);
  advance(m);
  return DT_OK;
}

void dt__dial_feed(dt__dial_t *m, int family, const dt_addr_t *addrs, size_t n,
                   dt_status_t st, dt_dial_source_t source) {
  if (m->done || !(m->flags & DT__DIAL_FEED)) {
    return;
  }
  int i = family == AF_INET6 ? V6 : V4;
  if (!m->want[i]) {
    return;
  }
  tick(m);
  add_family(m, i, addrs, n, st, source);
  advance(m);
}

size_t dt__dial_pollfds(const dt__dial_t *m, struct pollfd *pfd) {
  size_t k = 0;
  if (m->done) {
    return 0;
  }
  if (m->lookup != NULL) {
    k = dt__lookup_pollfds(m->lookup, pfd);
  }
  for (size_t i = 0; i < m->rep->nattempts; i++) {
    const dt__dial_live_t *l = &m->live[i];
    if (l->fd >= 0 && l->retry.at_us == DT_DEADLINE_NEVER) {
      pfd[k].fd = l->fd;
      pfd[k].events = POLLOUT;
      pfd[k].revents = 0;
      k++;
    }
  }
  return k;
}

dt_deadline_t dt__dial_deadline(const dt__dial_t *m) {
  dt_deadline_t d = {DT_DEADLINE_NEVER};
  if (m->done) {
    return d;
  }
  d = m->deadline;
  if (m->lookup != NULL) {
    d = dt__deadline_min(d, dt__lookup_deadline(m->lookup));
  }
  for (size_t i = 0; i < m->rep->nattempts; i++) {
    if (m->live[i].fd >= 0) {
      d = dt__deadline_min(d, m->live[i].limit);
      d = dt__deadline_min(d, m->live[i].retry);
    }
  }
  if (next_untried(m) != SIZE_MAX) {
    if (!m->started && m->delay_armed) {
      d = dt__deadline_min(d, m->delay_ends);
    } else if (m->started && m->ninflight > 0 && !m->kick) {
      d = dt__deadline_min(d, m->next_at);
    }
  }
  return d;
}

static short revents_of(const struct pollfd *pfd, size_t n, int fd) {
  for (size_t j = 0; j < n; j++) {
    if (pfd[j].fd == fd) {
      return pfd[j].revents;
    }
  }
  return 0;
}

void dt__dial_process(dt__dial_t *m, const struct pollfd *pfd, size_t n) {
  if (m->done) {
    return;
  }
  tick(m);
  if (m->lookup != NULL) {
    dt__lookup_process(m->lookup, pfd, n);
    ingest(m);
  }
  for (size_t i = 0; i < m->rep->nattempts && !m->done; i++) {
    dt__dial_live_t *l = &m->live[i];
    if (l->fd < 0) {
      continue;
    }
    if (l->retry.at_us != DT_DEADLINE_NEVER) {
      if (passed(m, l->retry)) {
        unix_connect(m, i);
      }
      continue;
    }
    short rev = revents_of(pfd, n, l->fd);
    if (rev != 0) {
      attempt_check(m, i, rev);
    }
  }
  if (m->done) {
    return;
  }
  check_timers(m);
  if (m->done) {
    return;
  }
  if (m->is_unix) {
    if (m->ninflight == 0) {
      finish(m, aggregate(m, false));
    }
    return;
  }
  advance(m);
}

void dt__dial_abort(dt__dial_t *m, dt_status_t st) {
  if (m->done) {
    return;
  }
  tick(m);
  close_live(m, DT_ECANCELED, 0);
  finish(m, st);
}

dt_status_t dt__dial_take(dt__dial_t *m, int *fd) {
  if (!m->done) {
    return DT_EINVAL;
  }
  if (m->status != DT_OK) {
    return m->status;
  }
  *fd = m->fd;
  m->fd = -1;
  return DT_OK;
}

void dt__dial_cleanup(dt__dial_t *m) {
  for (size_t i = 0; i < m->rep->nattempts; i++) {
    if (m->live[i].fd >= 0) {
      close_fd(m, m->live[i].fd);
      m->live[i].fd = -1;
    }
  }
  m->ninflight = 0;
  if (m->fd >= 0) {
    close_fd(m, m->fd);
    m->fd = -1;
  }
  drop_lookup(m);
}
