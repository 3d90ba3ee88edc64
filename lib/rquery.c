#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "alloc.h"
#include "closefd.h"
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

static void flight_end(dt_rquery_t *q, const dt_answer_t *a);

static void finish(dt_rquery_t *q, dt_status_t st) {
  if (q->active) {
    dt__exchange_close(&q->ex);
    q->active = false;
  }
  flight_end(q, NULL);
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
static bool serve_stale(dt_rquery_t *q);

static void candidate_failed(dt_rquery_t *q, dt_status_t st) {
  flight_end(q, q->cand_fail);
  if (serve_stale(q)) {
    return;
  }
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

/* The query of the current try is on its way (or held to be sent). */
static void try_started(dt_rquery_t *q) {
  dt_resolver_t *r = q->r;
  q->ex.exact_case = r->dns0x20;
  q->active = true;
  q->try_deadline =
      dt__deadline_min(dt__deadline_in(&r->clock, r->timeout_ms), q->deadline);
}

/* The current try could not send: true when the question is finished,
 * false when it should try the next server. */
static bool try_failed(dt_rquery_t *q, dt_status_t st) {
  if (st == DT_ENOMEM || st == DT_EMFILE) {
    finish(q, st); /* local trouble: another server will not help */
    return true;
  }
  penalise(q, q->server);
  q->tryno++;
  q->tcp = (q->flags & DT_QUERY_TCP) != 0;
  if (q->tryno >= q->ntries) {
    candidate_failed(q, st);
    return true;
  }
  ADD(q->r, failovers);
  return false;
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
    if (st == DT_OK && r->dns0x20) {
      st = dt__wire_mix_case(q->query, q->qlen);
    }
    if (st != DT_OK) {
      finish(q, st);
      return;
    }
    dt_server_t *s = &r->servers[q->server];
    dt_udp_share_t *sh = q->share;
    if (!q->tcp && sh != NULL && (sh->fd < 0 || sh->server == q->server)) {
      st = DT_OK;
      if (sh->fd < 0) {
        st = dt__udp_take(r, q->server, sh);
      }
      if (st == DT_OK && sh->defer && sh->nheld < DT_EX_BATCH_MAX) {
        st =
            dt__exchange_prepare_on(&q->ex, sh->fd, (struct sockaddr *)&s->addr,
                                    s->len, q->query, q->qlen, &r->ex);
        if (st == DT_OK) {
          sh->held[sh->nheld++] = q;
          try_started(q);
          return;
        }
      } else if (st == DT_OK) {
        st = dt__exchange_start_on(&q->ex, sh->fd, (struct sockaddr *)&s->addr,
                                   s->len, q->query, q->qlen, &r->ex);
        if (st == DT_OK) {
          sh->sent++;
          sh->uses++;
        } else {
          sh->dirty = true; /* a send error: the socket is suspect */
        }
      }
    } else {
      st = dt__exchange_start(&q->ex, (struct sockaddr *)&s->addr, s->len,
                              q->tcp ? DT_TRANSPORT_TCP : DT_TRANSPORT_UDP,
                              q->query, q->qlen, &r->ex);
    }
    if (st == DT_OK) {
      try_started(q);
      return;
    }
    if (try_failed(q, st)) {
      return;
    }
  }
}

void dt__share_flush(dt_udp_share_t *sh) {
  size_t n = sh->nheld;
  sh->nheld = 0;
  sh->defer = false;
  if (n == 0) {
    return;
  }
  dt_rquery_t *held[DT_EX_BATCH_MAX];
  dt_exchange_t *ex[DT_EX_BATCH_MAX];
  dt_status_t st[DT_EX_BATCH_MAX];
  for (size_t i = 0; i < n; i++) {
    held[i] = sh->held[i];
    ex[i] = &held[i]->ex;
  }
  if (dt__exchange_send_batch(ex, n, st) == n && n > 1) {
    ADD(held[0]->r, udp_pairs);
  }
  for (size_t i = 0; i < n; i++) {
    dt_rquery_t *q = held[i];
    if (st[i] == DT_OK) {
      sh->sent++;
      sh->uses++;
      continue;
    }
    /* What start_try does with a send that failed at once. */
    sh->dirty = true;
    q->active = false; /* the batch closed the exchange */
    if (!try_failed(q, st[i])) {
      start_try(q);
    }
  }
}

static bool cache_answer(dt_rquery_t *q);
static bool flight_join(dt_rquery_t *q);

/* Asks the current candidate of the servers, from the first in order. */
static void ask_servers(dt_rquery_t *q) {
  order_servers(q);
  q->tryno = 0;
  q->ntries = q->norder * (size_t)q->r->attempts;
  q->tcp = (q->flags & DT_QUERY_TCP) != 0;
  start_try(q);
}

static void start_candidate(dt_rquery_t *q) {
  dt_status_t st = dt__candidate_name(q->r, q->name, q->cand[q->icand],
                                      q->qname, sizeof(q->qname));
  if (st != DT_OK) {
    /* name + domain too long: that candidate does not exist */
    next_candidate(q);
    return;
  }
  if (q->r->cache != NULL &&
      !(q->flags & (DT_QUERY_NOCACHE | DT__QUERY_REFRESH))) {
    if (cache_answer(q) || flight_join(q)) {
      return;
    }
  }
  ask_servers(q);
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
  /* Cheapest test first: most resolvers have no search list. */
  bool search = r->nsearch > 0 && !(flags & DT_QUERY_NOSEARCH) &&
                !dt__name_is_absolute(name);
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
                             dt_deadline_t deadline, dt_udp_share_t *share) {
  char norm[DT_NAME_BUFSIZE];
  dt_status_t st = dt_name_normalize(name, norm, sizeof(norm));
  if (st != DT_OK) {
    return st == DT_ENAMETOOLONG ? DT_EBADNAME : st;
  }
  /* Every field is defined, but the exchange's receive buffer is left as
   * it is: the exchange sets up its own state when it starts. */
  memset(q, 0, offsetof(dt_rquery_t, ex));
  q->ex.fd = -1;
  q->ex.borrowed = false;
  q->ex.tcp_buf = NULL;
  q->ex.state = DT_EX_IDLE;
  q->share = share;
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

int dt__rquery_fd(const dt_rquery_t *q) {
  if (q->done) {
    return -1;
  }
  if (q->waiting) {
    return q->flight->pipe[0];
  }
  return q->active ? dt__exchange_fd(&q->ex) : -1;
}

bool dt__rquery_pollfd(const dt_rquery_t *q, struct pollfd *pfd) {
  int fd = dt__rquery_fd(q);
  if (fd < 0) {
    return false;
  }
  pfd->fd = fd;
  pfd->events = q->waiting ? POLLIN : dt__exchange_events(&q->ex);
  pfd->revents = 0;
  return true;
}

dt_deadline_t dt__rquery_deadline(const dt_rquery_t *q) {
  dt_deadline_t never = {DT_DEADLINE_NEVER};
  if (q->done) {
    return never;
  }
  return q->active && !q->waiting ? q->try_deadline : q->deadline;
}

static void fold(char *s) {
  for (; *s != '\0'; s++) {
    if (*s >= 'A' && *s <= 'Z') {
      *s = (char)(*s + ('a' - 'A'));
    }
  }
}

/* 0x20 mode: the question went out in random case and the server echoed
 * it; the caller sees it in lower case instead, in the answer's qname and
 * in the owners that spell the same name. The strings live in the
 * answer's own writable block (dt__wire_parse); folding keeps lengths. */
static void unmix_case(dt_answer_t *a) {
  char *qname = (char *)(uintptr_t)a->qname;
  dt_rr_t *rrs[2] = {(dt_rr_t *)(uintptr_t)a->answer,
                     (dt_rr_t *)(uintptr_t)a->authority};
  size_t counts[2] = {a->nanswer, a->nauthority};
  for (size_t k = 0; k < 2; k++) {
    for (size_t i = 0; i < counts[k]; i++) {
      char *owner = (char *)(uintptr_t)rrs[k][i].owner;
      if (owner != NULL && qname != NULL && strcasecmp(owner, qname) == 0) {
        fold(owner);
      }
    }
  }
  if (a->canonical != NULL && qname != NULL &&
      strcasecmp(a->canonical, qname) == 0) {
    fold((char *)(uintptr_t)a->canonical);
  }
  if (qname != NULL) {
    fold(qname);
  }
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
  if (r->dns0x20) {
    unmix_case(a);
  }
  dt_server_t *s = &r->servers[q->server];
  memcpy(&a->server, &s->addr, s->len);
  a->server_len = s->len;
  a->transport = q->tcp ? DT_TRANSPORT_TCP : DT_TRANSPORT_UDP;
  absolve(q, q->server);
  if (head.rcode == DT_RCODE_NOERROR || head.rcode == DT_RCODE_NXDOMAIN) {
    if (q->r->cache != NULL && !(q->flags & DT_QUERY_NOCACHE)) {
      /* Out of memory here costs a future hit, not this answer. */
      (void)dt__cache_put(q->r->cache, q->qname, q->qtype, 1, a, NULL);
    }
    flight_end(q, a);
  }

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

static void flight_wait_process(dt_rquery_t *q);

void dt__rquery_process(dt_rquery_t *q, short revents) {
  if (q->waiting) {
    flight_wait_process(q);
    return;
  }
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

bool dt__rquery_on_share(const dt_rquery_t *q) {
  return !q->done && !q->waiting && q->active && q->ex.borrowed &&
         q->ex.state == DT_EX_UDP_WAIT;
}

bool dt__rquery_offer_datagram(dt_rquery_t *q, const uint8_t *pkt, size_t len,
                               bool truncated, dt_match_t *why) {
  if (!dt__rquery_on_share(q)) {
    *why = DT_MATCH_ID;
    return false;
  }
  *why = dt__exchange_match(&q->ex, pkt, len);
  if (*why != DT_MATCH_OK) {
    return false;
  }
  dt__exchange_deliver(&q->ex, pkt, len, truncated);
  on_reply(q);
  return true;
}

void dt__rquery_share_failed(dt_rquery_t *q, dt_status_t st) {
  if (!dt__rquery_on_share(q)) {
    return;
  }
  penalise(q, q->server);
  advance(q, st);
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
  flight_end(q, NULL);
  dt_answer_free(q->best);
  q->best = NULL;
  dt_answer_free(q->cand_fail);
  q->cand_fail = NULL;
}

/* ---- cache and coalescing ------------------------------------------------ */

/* A copy of a cached answer as a reader sees it: remaining TTLs, never the
 * stored ones, and no record outliving its entry. */
static void age_answer(dt_answer_t *a, const dt_cache_hit_t *hit) {
  dt__answer_age(a, hit->elapsed_s);
  dt_rr_t *rrs[2] = {(dt_rr_t *)(uintptr_t)a->answer,
                     (dt_rr_t *)(uintptr_t)a->authority};
  size_t counts[2] = {a->nanswer, a->nauthority};
  for (size_t k = 0; k < 2; k++) {
    for (size_t i = 0; i < counts[k]; i++) {
      if (hit->stale || rrs[k][i].ttl > hit->remaining_s) {
        rrs[k][i].ttl = hit->remaining_s;
      }
    }
  }
  a->ttl = hit->remaining_s;
  a->from_cache = true;
  a->stale = hit->stale;
  memset(&a->server, 0, sizeof(a->server));
  a->server_len = 0;
}

typedef struct {
  dt_answer_t *copy;
  dt_status_t st;
  bool prefetch;
} clone_ctx_t;

static void clone_hit(const dt_cache_hit_t *hit, void *ctx) {
  clone_ctx_t *c = ctx;
  c->prefetch = hit->prefetch_due;
  c->st = dt__answer_clone(hit->answer, &c->copy);
  if (c->st == DT_OK) {
    age_answer(c->copy, hit);
  }
}

void dt__answer_from_hit(dt_answer_t *a, const dt_cache_hit_t *hit) {
  age_answer(a, hit);
}

/* Takes a final answer for the current candidate, as if a server had sent
 * it: positive ends the question, negative moves the search on. */
static void take_answer(dt_rquery_t *q, dt_answer_t *a) {
  dt_status_t st = dt_answer_status(a);
  if (st == DT_OK) {
    offer(q, a, RANK_POSITIVE);
    finish(q, DT_OK);
  } else if (st == DT_ENODATA || st == DT_ENXDOMAIN) {
    offer(q, a, st == DT_ENODATA ? RANK_NODATA : RANK_NXDOMAIN);
    next_candidate(q);
  } else {
    offer(q, a, RANK_FAIL);
    next_candidate(q);
  }
}

/* Answers the current candidate from the cache; false on a miss. */
static bool cache_answer(dt_rquery_t *q) {
  clone_ctx_t c = {NULL, DT_OK, false};
  if (dt__cache_get(q->r->cache, q->qname, q->qtype, 1, false, clone_hit, &c) ==
      DT_CACHE_MISS) {
    return false;
  }
  if (c.prefetch) {
    dt__prefetch_start(q->r, q->qname, q->qtype);
  }
  if (c.st != DT_OK) {
    finish(q, c.st);
    return true;
  }
  take_answer(q, c.copy);
  return true;
}

/* RFC 8767: every server failed; an expired entry within the stale window
 * is better than nothing. */
static bool serve_stale(dt_rquery_t *q) {
  if (q->r->cache == NULL || (q->flags & DT_QUERY_NOCACHE)) {
    return false;
  }
  clone_ctx_t c = {NULL, DT_OK, false};
  if (dt__cache_get(q->r->cache, q->qname, q->qtype, 1, true, clone_hit, &c) ==
      DT_CACHE_MISS) {
    return false;
  }
  if (c.st != DT_OK) {
    finish(q, c.st);
    return true;
  }
  dt_answer_free(q->cand_fail);
  q->cand_fail = NULL;
  take_answer(q, c.copy);
  return true;
}

static size_t flight_key(const dt_rquery_t *q, uint8_t *key) {
  key[0] = (uint8_t)(q->qtype >> 8);
  key[1] = (uint8_t)q->qtype;
  /* qname is valid: normalising it cannot fail for want of room. */
  if (dt_name_normalize(q->qname, (char *)key + 2, DT_NAME_BUFSIZE) != DT_OK) {
    return 0;
  }
  return 2 + strlen((char *)key + 2);
}

static void flight_free(dt_flight_t *f) {
  if (f->pipe[0] >= 0) {
    dt__close(f->pipe[0]);
    dt__close(f->pipe[1]);
  }
  dt_answer_free(f->answer);
  dt__free(f);
}

/* Either joins a flight for the same question (true: the machine now waits
 * on its pipe) or registers this question as the leader of a new one
 * (false: go ahead and ask). Any failure here just means no coalescing. */
static bool flight_join(dt_rquery_t *q) {
  dt_resolver_t *r = q->r;
  uint8_t key[2 + DT_NAME_BUFSIZE];
  size_t keylen = flight_key(q, key);
  if (keylen == 0) {
    return false;
  }
  dt_flight_t *f = NULL;
  pthread_mutex_lock(&r->flight_lock);
  HASH_FIND(hh, r->flights, key, keylen, f);
  if (f != NULL) {
    if (f->pipe[0] < 0 && pipe(f->pipe) != 0) {
      f->pipe[0] = f->pipe[1] = -1;
      pthread_mutex_unlock(&r->flight_lock);
      return false;
    }
    if (f->pipe[0] >= 0) {
      fcntl(f->pipe[0], F_SETFD, FD_CLOEXEC);
      fcntl(f->pipe[1], F_SETFD, FD_CLOEXEC);
    }
    f->refs++;
    q->flight = f;
    q->waiting = true;
    pthread_mutex_unlock(&r->flight_lock);
    dt__cache_count_coalesced(r->cache);
    return true;
  }
  f = dt__malloc(sizeof(*f));
  if (f != NULL) {
    memcpy(f->key, key, keylen);
    f->keylen = keylen;
    f->refs = 1;
    f->done = false;
    f->answer = NULL;
    f->pipe[0] = f->pipe[1] = -1;
    HASH_ADD(hh, r->flights, key, keylen, f);
    if (DT_HASH_ADDED(f)) {
      q->flight = f;
    } else {
      dt__free(f);
    }
  }
  pthread_mutex_unlock(&r->flight_lock);
  return false;
}

/* Lets go of the flight: a leader publishes its reply (or that it has none)
 * and wakes the waiters; a waiter just leaves. The last one out frees it. */
static void flight_end(dt_rquery_t *q, const dt_answer_t *a) {
  dt_flight_t *f = q->flight;
  if (f == NULL) {
    return;
  }
  dt_resolver_t *r = q->r;
  pthread_mutex_lock(&r->flight_lock);
  if (!q->waiting && !f->done) {
    f->done = true;
    HASH_DELETE(hh, r->flights, f);
    if (f->refs > 1 && a != NULL) {
      /* Waiters read the cache first; this copy serves replies the cache
       * does not keep (SERVFAIL, TTL 0). Without memory they ask again. */
      (void)dt__answer_clone(a, &f->answer);
    }
    if (f->pipe[1] >= 0) {
      ssize_t n;
      do {
        n = write(f->pipe[1], "", 1);
      } while (n < 0 && errno == EINTR);
    }
  }
  bool last = --f->refs == 0;
  pthread_mutex_unlock(&r->flight_lock);
  if (last) {
    flight_free(f);
  }
  q->flight = NULL;
  q->waiting = false;
}

/* A waiter's turn: the flight landed, or its own deadline passed. */
static void flight_wait_process(dt_rquery_t *q) {
  dt_resolver_t *r = q->r;
  dt_flight_t *f = q->flight;
  pthread_mutex_lock(&r->flight_lock);
  bool landed = f->done;
  dt_answer_t *copy = NULL;
  dt_status_t st = DT_OK;
  if (landed && f->answer != NULL) {
    st = dt__answer_clone(f->answer, &copy);
  }
  pthread_mutex_unlock(&r->flight_lock);
  if (!landed) {
    if (dt__deadline_passed(&r->clock, q->deadline)) {
      /* This waiter leaves alone; the leader and the others go on. */
      flight_end(q, NULL);
      finish(q, DT_ETIMEDOUT);
    }
    return;
  }
  flight_end(q, NULL);
  if (st != DT_OK) {
    finish(q, st);
    return;
  }
  if (cache_answer(q)) {
    dt_answer_free(copy);
    return;
  }
  if (copy != NULL) {
    take_answer(q, copy);
    return;
  }
  /* The leader got no reply (or gave up early): one of the waiters leads
   * the next flight, the others wait for it. */
  if (flight_join(q)) {
    return;
  }
  ask_servers(q);
}

/* ---- prefetch ---------------------------------------------------------- */

void dt__prefetch_start(dt_resolver_t *r, const char *name, uint16_t type) {
  if (pthread_mutex_trylock(&r->prefetch_lock) != 0) {
    return; /* someone else is at it; this hit just does not prefetch */
  }
  for (size_t i = 0; i < DT_PREFETCH_SLOTS; i++) {
    if (r->prefetch[i] != NULL) {
      continue;
    }
    dt_rquery_t *q = dt__malloc(sizeof(*q));
    if (q == NULL) {
      break;
    }
    int64_t budget = (int64_t)r->timeout_ms * r->attempts;
    char absolute[DT_NAME_BUFSIZE + 1];
    size_t n = strlen(name);
    memcpy(absolute, name, n);
    absolute[n] = '.';
    absolute[n + 1] = '\0';
    if (dt__rquery_start(q, r, absolute, type,
                         DT__QUERY_REFRESH | DT_QUERY_NOSEARCH,
                         dt__deadline_in(&r->clock, budget), NULL) != DT_OK) {
      dt__free(q);
      break;
    }
    r->prefetch[i] = q;
    __atomic_add_fetch(&r->prefetching, 1, __ATOMIC_RELAXED);
    break;
  }
  pthread_mutex_unlock(&r->prefetch_lock);
}

void dt__prefetch_poll(dt_resolver_t *r) {
  if (__atomic_load_n(&r->prefetching, __ATOMIC_RELAXED) == 0 ||
      pthread_mutex_trylock(&r->prefetch_lock) != 0) {
    return;
  }
  for (size_t i = 0; i < DT_PREFETCH_SLOTS; i++) {
    dt_rquery_t *q = r->prefetch[i];
    if (q == NULL) {
      continue;
    }
    struct pollfd pfd;
    short revents = 0;
    if (dt__rquery_pollfd(q, &pfd) && poll(&pfd, 1, 0) > 0) {
      revents = pfd.revents;
    }
    dt__rquery_process(q, revents);
    if (q->done) {
      /* The reply, if any, is in the cache now. */
      dt__rquery_cleanup(q);
      dt__free(q);
      r->prefetch[i] = NULL;
      __atomic_sub_fetch(&r->prefetching, 1, __ATOMIC_RELAXED);
    }
  }
  pthread_mutex_unlock(&r->prefetch_lock);
}
