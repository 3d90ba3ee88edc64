/* The kinds of event-loop operation: an address lookup, one question and
 * a dial, each the machine the blocking call runs, driven by the loop.
 * See loop_int.h for the shape of a kind. */
#include "config.h"

#include <string.h>
#include <sys/socket.h>

#include "dial_int.h"
#include "loop_int.h"
#include "resolver_int.h"

#define KIND(type, op) ((type *)(void *)(op))

/* A machine that ended during its start for want of memory or
 * descriptors: the start call fails rather than report it later. */
static bool start_failure(dt_status_t st) {
  return st == DT_ENOMEM || st == DT_EMFILE;
}

/* ---- dt_resolve_start ---------------------------------------------------- */

typedef struct {
  dt_op_t op;
  dt_resolve_cb cb;
  dt_resolver_t *r;
  bool machine; /* l holds sockets or answers */
  size_t n;
  dt_addr_t addrs[DT_RESOLVE_MAX_ADDRS];
  dt_lookup_t l; /* last: large, and only partly cleared by its start */
} resolve_op_t;

static size_t resolve_pollfds(dt_op_t *op, struct pollfd *pfd) {
  return dt__lookup_pollfds(&KIND(resolve_op_t, op)->l, pfd);
}

static dt_deadline_t resolve_deadline(const dt_op_t *op) {
  return dt__lookup_deadline(&KIND(const resolve_op_t, op)->l);
}

static void resolve_settle(resolve_op_t *o) {
  o->op.status = o->l.status;
  o->n = 0;
  if (o->l.status == DT_OK) {
    o->n = dt__lookup_addrs(&o->l, o->addrs, DT_RESOLVE_MAX_ADDRS);
  }
  dt__lookup_cleanup(&o->l);
  o->machine = false;
}

static bool resolve_process(dt_op_t *op, const struct pollfd *pfd, size_t n) {
  resolve_op_t *o = KIND(resolve_op_t, op);
  /* Refreshes started by hits advance whenever the resolver is used, on
   * the loop as in blocking calls. */
  dt__prefetch_poll(o->r);
  dt__lookup_process(&o->l, pfd, n);
  if (!o->l.done) {
    return false;
  }
  resolve_settle(o);
  return true;
}

static void resolve_discard(dt_op_t *op) {
  resolve_op_t *o = KIND(resolve_op_t, op);
  if (o->machine) {
    dt__lookup_cleanup(&o->l);
    o->machine = false;
  }
  o->n = 0;
}

static void resolve_deliver(dt_op_t *op) {
  resolve_op_t *o = KIND(resolve_op_t, op);
  bool ok = op->status == DT_OK;
  o->cb(op->user, op->status, ok ? o->addrs : NULL, ok ? o->n : 0);
}

static const dt__op_vt_t resolve_vt = {
    2,
    resolve_pollfds,
    resolve_deadline,
    resolve_process,
    resolve_discard,
    resolve_deliver,
};

dt_status_t dt_resolve_start(dt_loop_t *loop, dt_resolver_t *r,
                             const char *host, int family, unsigned flags,
                             int timeout_ms, dt_resolve_cb cb, void *user,
                             dt_op_t **out) {
  if (loop == NULL || r == NULL || host == NULL || cb == NULL ||
      (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)) {
    return DT_EINVAL;
  }
  dt_op_t *op = NULL;
  dt_status_t st =
      dt__op_new(loop, &resolve_vt, sizeof(resolve_op_t), user, &op);
  if (st != DT_OK) {
    return st;
  }
  resolve_op_t *o = KIND(resolve_op_t, op);
  o->cb = cb;
  o->r = r;
  o->machine = false;
  o->n = 0;
  dt_loop_t *prev = dt__loop_enter(loop);
  bool finished = true;
  dt_status_t res = DT_OK;
  switch (dt__resolve_pre(r, host, family, flags, o->addrs,
                          DT_RESOLVE_MAX_ADDRS, &o->n, &res)) {
  case DT__RESOLVE_FAIL:
    dt__loop_leave(prev);
    dt__op_abandon(op);
    return res;
  case DT__RESOLVE_DONE:
    op->status = res;
    break;
  case DT__RESOLVE_ASK:
    st = dt__lookup_start(&o->l, r, host, family, flags,
                          dt__resolver_deadline(r, timeout_ms));
    o->machine = true;
    if (st == DT_OK && o->l.done && start_failure(o->l.status)) {
      st = o->l.status;
    }
    if (st != DT_OK) {
      resolve_discard(op);
      dt__loop_leave(prev);
      dt__op_abandon(op);
      return st;
    }
    if (o->l.done) {
      resolve_settle(o);
    } else {
      finished = false;
    }
    break;
  }
  st = dt__op_launch(op, &r->opreg, finished);
  dt__loop_leave(prev);
  if (st == DT_OK && out != NULL) {
    *out = op;
  }
  return st;
}

/* ---- dt_query_start ------------------------------------------------------ */

typedef struct {
  dt_op_t op;
  dt_query_cb cb;
  dt_resolver_t *r;
  bool machine; /* q holds a socket, a flight or answers */
  dt_answer_t *answer;
  dt_rquery_t q; /* last: its receive buffer is not cleared */
} query_op_t;

static size_t query_pollfds(dt_op_t *op, struct pollfd *pfd) {
  return dt__rquery_pollfd(&KIND(query_op_t, op)->q, pfd) ? 1 : 0;
}

static dt_deadline_t query_deadline(const dt_op_t *op) {
  return dt__rquery_deadline(&KIND(const query_op_t, op)->q);
}

static void query_settle(query_op_t *o) {
  o->answer = NULL;
  o->op.status = dt__rquery_take(&o->q, &o->answer);
  dt__rquery_cleanup(&o->q);
  o->machine = false;
}

static bool query_process(dt_op_t *op, const struct pollfd *pfd, size_t n) {
  query_op_t *o = KIND(query_op_t, op);
  dt__prefetch_poll(o->r);
  int fd = dt__rquery_fd(&o->q);
  short revents = 0;
  for (size_t i = 0; i < n; i++) {
    if (pfd[i].fd == fd) {
      revents = pfd[i].revents;
    }
  }
  dt__rquery_process(&o->q, revents);
  if (!o->q.done) {
    return false;
  }
  query_settle(o);
  return true;
}

static void query_discard(dt_op_t *op) {
  query_op_t *o = KIND(query_op_t, op);
  if (o->machine) {
    dt__rquery_cleanup(&o->q);
    o->machine = false;
  }
  dt_answer_free(o->answer);
  o->answer = NULL;
}

static void query_deliver(dt_op_t *op) {
  query_op_t *o = KIND(query_op_t, op);
  dt_answer_t *a = op->status == DT_OK ? o->answer : NULL;
  o->answer = NULL;
  o->cb(op->user, op->status, a);
}

static const dt__op_vt_t query_vt = {
    1,
    query_pollfds,
    query_deadline,
    query_process,
    query_discard,
    query_deliver,
};

dt_status_t dt_query_start(dt_loop_t *loop, dt_resolver_t *r, const char *name,
                           uint16_t type, unsigned flags, int timeout_ms,
                           dt_query_cb cb, void *user, dt_op_t **out) {
  if (loop == NULL || r == NULL || name == NULL || cb == NULL) {
    return DT_EINVAL;
  }
  dt_op_t *op = NULL;
  dt_status_t st = dt__op_new(loop, &query_vt, sizeof(query_op_t), user, &op);
  if (st != DT_OK) {
    return st;
  }
  query_op_t *o = KIND(query_op_t, op);
  o->cb = cb;
  o->r = r;
  o->machine = false;
  o->answer = NULL;
  dt_loop_t *prev = dt__loop_enter(loop);
  st = dt__query_begin(&o->q, r, name, type, flags, timeout_ms);
  if (st == DT_OK) {
    o->machine = true;
    if (o->q.done && start_failure(o->q.status)) {
      st = o->q.status;
      query_discard(op);
    }
  }
  if (st != DT_OK) {
    dt__loop_leave(prev);
    dt__op_abandon(op);
    return st;
  }
  bool finished = o->q.done;
  if (finished) {
    query_settle(o);
  }
  st = dt__op_launch(op, &r->opreg, finished);
  dt__loop_leave(prev);
  if (st == DT_OK && out != NULL) {
    *out = op;
  }
  return st;
}

/* ---- dt_dial_start ------------------------------------------------------- */

typedef struct {
  dt_op_t op;
  dt_dial_cb cb;
  bool machine; /* m holds sockets, a lookup or the winner */
  dt__dial_t m;
  dt_lookup_t lookup; /* m's, when the host needs DNS */
} dial_op_t;

static size_t dial_pollfds(dt_op_t *op, struct pollfd *pfd) {
  return dt__dial_pollfds(&KIND(dial_op_t, op)->m, pfd);
}

static dt_deadline_t dial_deadline(const dt_op_t *op) {
  return dt__dial_deadline(&KIND(const dial_op_t, op)->m);
}

static bool dial_process(dt_op_t *op, const struct pollfd *pfd, size_t n) {
  dial_op_t *o = KIND(dial_op_t, op);
  dt__dial_process(&o->m, pfd, n);
  if (!o->m.done) {
    return false;
  }
  /* The machine keeps only the winner's socket, until delivery. */
  op->status = o->m.status;
  return true;
}

static void dial_discard(dt_op_t *op) {
  dial_op_t *o = KIND(dial_op_t, op);
  if (o->machine) {
    /* The report tells the story of a cancelled dial too. */
    dt__dial_abort(&o->m, DT_ECANCELED);
    dt__dial_cleanup(&o->m);
    o->machine = false;
  }
}

static void dial_deliver(dt_op_t *op) {
  dial_op_t *o = KIND(dial_op_t, op);
  int fd = -1;
  if (op->status == DT_OK && dt__dial_take(&o->m, &fd) != DT_OK) {
    fd = -1;
  }
  if (o->machine) {
    dt__dial_cleanup(&o->m);
    o->machine = false;
  }
  o->cb(op->user, op->status, fd, o->m.rep);
}

static const dt__op_vt_t dial_vt = {
    DT__DIAL_MAX_POLLFDS, dial_pollfds, dial_deadline,
    dial_process,         dial_discard, dial_deliver,
};

dt_status_t dt_dial_start(dt_loop_t *loop, dt_dialer_t *d, const char *host,
                          uint16_t port, int timeout_ms, dt_dial_cb cb,
                          void *user, dt_op_t **out) {
  if (loop == NULL || d == NULL || host == NULL || cb == NULL) {
    return DT_EINVAL;
  }
  dt_op_t *op = NULL;
  dt_status_t st = dt__op_new(loop, &dial_vt, sizeof(dial_op_t), user, &op);
  if (st != DT_OK) {
    return st;
  }
  dial_op_t *o = KIND(dial_op_t, op);
  o->cb = cb;
  o->machine = false;
  dt_loop_t *prev = dt__loop_enter(loop);
  st = dt__dial_start_in(&o->m, d, host, port, timeout_ms, NULL, 0, &o->lookup);
  if (st == DT_OK) {
    o->machine = true;
    if (o->m.done && start_failure(o->m.status)) {
      st = o->m.status;
      dt__dial_cleanup(&o->m);
      o->machine = false;
    }
  }
  if (st != DT_OK) {
    dt__loop_leave(prev);
    dt__op_abandon(op);
    return st;
  }
  bool finished = o->m.done;
  if (finished) {
    op->status = o->m.status;
  }
  st = dt__op_launch(op, &d->opreg, finished);
  dt__loop_leave(prev);
  if (st == DT_OK && out != NULL) {
    *out = op;
  }
  return st;
}

/* ---- dt_pool_acquire_start ----------------------------------------------- */

/* The pool's acquire machine (dt__pacq_*) plugs in here as a fourth kind,
 * shaped like the dial above: a struct with dt_op_t first, the machine and
 * the connection it hands over; pollfds, deadline and process from the
 * machine (process takes the connection and cleans the machine up once it
 * is done); discard cleans up a running machine or gives a connection not
 * delivered back with dt_pool_release(); deliver calls the callback; the
 * start registers with the pool's dt__opreg_t (aborted at the top of
 * dt_pool_free). Until then the call refuses to start. */
dt_status_t dt_pool_acquire_start(dt_loop_t *loop, dt_pool_t *pool,
                                  const char *host, uint16_t port,
                                  int timeout_ms, dt_pool_acquire_cb cb,
                                  void *user, dt_op_t **op) {
  (void)loop;
  (void)pool;
  (void)host;
  (void)port;
  (void)timeout_ms;
  (void)cb;
  (void)user;
  (void)op;
  return DT_ENOTSUP;
}
