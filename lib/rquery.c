#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "alloc.h"
#include "name.h"
#include "resolver_int.h"

#define ADD(r, field) __atomic_add_fetch(&(r)->field, 1, __ATOMIC_RELAXED)

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
