#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <unistd.h>
#include <string.h>
#include <sys/socket.h>

#include "alloc.h"
#include "resolver_int.h"

/* ---- the address lookup machine ------------------------------------ */

/* A and AAAA for one candidate name at a time, both in flight together;
 * the search list moves on only when both say the name has no address
 * (musl's and glibc's getaddrinfo do the same). */
static void lookup_start_candidate(dt_lookup_t *l);

/* Gives the shared socket back to the resolver, which keeps it for the
 * next lookup only if this one used it clean (udpidle.c). */
static void share_close(dt_lookup_t *l) {
  dt__udp_give(l->r, &l->share);
}

static void lookup_finish(dt_lookup_t *l, dt_status_t st) {
  /* Held questions never left; their exchanges close with them below. */
  l->share.nheld = 0;
  l->share.defer = false;
  for (size_t i = 0; i < 2; i++) {
    if (l->used[i] && l->q[i].tcp) {
      l->share.dirty = true; /* a truncated reply: not worth the doubt */
    }
    if (l->used[i]) {
      dt__rquery_cleanup(&l->q[i]);
      l->used[i] = false;
    }
  }
  share_close(l);
  l->done = true;
  l->status = st;
}

/* Both questions of the candidate are answered: decide. */
static void lookup_settle(dt_lookup_t *l) {
  dt_status_t worst = DT_OK;
  bool positive = false, nomem = false;
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
    nomem = nomem || st == DT_ENOMEM;
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
  if (nomem) {
    /* The other family's addresses alone would pass for the whole answer:
     * running out of memory is said, not hidden. */
    lookup_finish(l, DT_ENOMEM);
    return;
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
  /* Both questions of the candidate usually go to the same server on the
   * shared socket: they leave together in dt__share_flush. */
  l->share.defer = true;
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
                         l->flags | DT_QUERY_NOSEARCH, l->deadline, &l->share);
    qname[n] = '\0';
    if (st != DT_OK) {
      lookup_finish(l, st);
      return;
    }
    l->used[i] = true;
  }
  dt__share_flush(&l->share);
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
  memset(l, 0, offsetof(dt_lookup_t, q));
  l->share.fd = -1;
  l->r = r;
  l->family = family;
  l->flags = flags & ~DT_QUERY_NOSEARCH;
  l->deadline = deadline;
  size_t len = strlen(name);
  if (len >= sizeof(l->name)) {
    return DT_EBADNAME;
  }
  memcpy(l->name, name, len + 1);
  dt__udp_hold(r);
  l->udp_held = true;
  l->ncand = dt__candidates(r, name, flags, l->cand);
  if (l->ncand == 0) {
    lookup_finish(l, DT_ENXDOMAIN);
    return DT_OK;
  }
  lookup_start_candidate(l);
  return DT_OK;
}

size_t dt__lookup_pollfds(const dt_lookup_t *l, struct pollfd *pfd) {
  size_t k = 0;
  bool share = false;
  for (size_t i = 0; i < 2 && !l->done; i++) {
    if (!l->used[i]) {
      continue;
    }
    if (dt__rquery_on_share(&l->q[i])) {
      share = true;
    } else if (dt__rquery_pollfd(&l->q[i], &pfd[k])) {
      k++;
    }
  }
  if (share) {
    pfd[k].fd = l->share.fd;
    pfd[k].events = POLLIN;
    pfd[k].revents = 0;
    k++;
  }
  return k;
}

/* Reads the shared socket dry, handing each datagram to the question it
 * answers; anything that answers neither is dropped and counted. */
static void share_read(dt_lookup_t *l) {
  dt_resolver_t *r = l->r;
  const dt_server_t *srv = &r->servers[l->share.server];
  uint8_t buf[DT_UDP_BUF];
  for (;;) {
    struct sockaddr_storage from;
    socklen_t fromlen = sizeof(from);
    ssize_t n = recvfrom(l->share.fd, buf, sizeof(buf), MSG_TRUNC,
                         (struct sockaddr *)&from, &fromlen);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return;
      }
      /* ICMP errors (port unreachable) surface here: both questions on
       * the socket fail over. */
      dt_status_t st = dt_status_from_errno(errno);
      l->share.dirty = true;
      for (size_t i = 0; i < 2; i++) {
        if (l->used[i]) {
          dt__rquery_share_failed(&l->q[i], st);
        }
      }
      return;
    }
    if (!dt__sockaddr_equal((struct sockaddr *)&from,
                            (const struct sockaddr *)&srv->addr)) {
      __atomic_add_fetch(&r->ex.dropped_source, 1, __ATOMIC_RELAXED);
      l->share.dirty = true;
      continue;
    }
    bool truncated = (size_t)n > sizeof(buf);
    size_t len = truncated ? sizeof(buf) : (size_t)n;
    dt_match_t why = DT_MATCH_MALFORMED;
    bool taken = false;
    for (size_t i = 0; i < 2 && !taken; i++) {
      dt_match_t w;
      if (l->used[i] &&
          dt__rquery_offer_datagram(&l->q[i], buf, len, truncated, &w)) {
        taken = true;
      } else if (l->used[i] && w != DT_MATCH_ID) {
        why = w;
      } else if (why == DT_MATCH_MALFORMED && l->used[i]) {
        why = w;
      }
    }
    if (taken) {
      l->share.replied++;
    } else {
      dt__count_drop(&r->ex, why);
      l->share.dirty = true;
    }
    bool listening = false;
    for (size_t i = 0; i < 2; i++) {
      listening = listening || (l->used[i] && dt__rquery_on_share(&l->q[i]));
    }
    if (l->share.fd < 0 || !listening) {
      return; /* nobody is listening any more */
    }
  }
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
  for (size_t j = 0; j < n; j++) {
    if (pfd[j].revents != 0 && l->share.fd >= 0 && pfd[j].fd == l->share.fd) {
      share_read(l);
    }
  }
  for (size_t i = 0; i < 2; i++) {
    if (!l->used[i] || l->q[i].done) {
      continue;
    }
    short revents = 0;
    if (!dt__rquery_on_share(&l->q[i])) {
      int fd = dt__rquery_fd(&l->q[i]);
      for (size_t j = 0; j < n; j++) {
        if (fd >= 0 && pfd[j].fd == fd) {
          revents = pfd[j].revents;
        }
      }
    }
    dt__rquery_process(&l->q[i], revents);
  }
  if (dt__lookup_done_questions(l)) {
    lookup_settle(l);
  }
}

size_t dt__lookup_addrs(const dt_lookup_t *l, dt_addr_t *addrs, size_t max) {
  size_t n = dt__answer_addrs(l->answers[0], addrs, max);
  return n + dt__answer_addrs(l->answers[1], addrs + n, max - n);
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
  share_close(l);
  if (l->udp_held) {
    l->udp_held = false;
    dt__udp_release(l->r);
  }
}

/* Drives a lookup with poll() until it is done. */
dt_status_t dt__lookup_run(dt_lookup_t *l) {
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
