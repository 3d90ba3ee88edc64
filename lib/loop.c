/* The event loop: operations in flight, the descriptors they wait on
 * (aggregated per descriptor, told to the program's loop as changes of
 * the union), a min-heap of their deadlines, and a queue of completions
 * whose callbacks run from the next processing step. The kinds of
 * operation live in loop_ops.c; see loop_int.h. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "closefd.h"
#include "dt_uthash.h"
#include "loop_int.h"

#define NO_HEAP SIZE_MAX
/* Closes noted during one step; past that every watch of the op is
 * treated as closed, which costs announcements, never correctness. */
#define MAX_CLOSED 16

#define CONTAINER(ptr, type, member)                                           \
  ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* What the timer callback was told last. */
enum { TOLD_NONE = 0, TOLD_ASAP, TOLD_AT };

/* One descriptor some operations wait on. */
struct dt__fdent {
  int fd;
  unsigned nin, nout; /* waiters wanting POLLIN, POLLOUT */
  short told;         /* the events the watch callback holds */
  dt__link_t waiters; /* dt__watch_t.link */
  dt__fdent_t *spare; /* next in the loop's spare list */
  UT_hash_handle hh;
};

struct dt_loop {
  dt_loop_opts_t o;
  dt_clock_t clock;
  bool closing; /* dt_loop_free runs: no new operation */
  size_t nops;  /* allocated, callbacks not finished: bounds the heap */
  size_t pending;
  dt__link_t all;   /* dt_op_t.all: every op whose callback has not run */
  dt__link_t run;   /* dt_op_t.q: scheduled for a step */
  dt__link_t ready; /* dt_op_t.q: waiting for delivery */
  dt_op_t **heap;   /* by due; room for nops entries */
  size_t nheap, heapcap;
  dt__fdent_t *fds; /* uthash by fd */
  size_t nfds;
  dt__fdent_t *spare; /* entries kept for reuse */
  struct pollfd *pfd; /* dt_loop_run's array: room for nfds */
  size_t pfdcap;
  int told;
  uint64_t told_at;
  int closed[MAX_CLOSED];
  size_t nclosed;
  bool closed_overflow;
};

/* ---- lists --------------------------------------------------------------- */

static void link_init(dt__link_t *h) {
  h->prev = h;
  h->next = h;
}

static bool link_empty(const dt__link_t *h) {
  return h->next == h;
}

static void link_push(dt__link_t *h, dt__link_t *l) {
  l->prev = h->prev;
  l->next = h;
  h->prev->next = l;
  h->prev = l;
}

static void link_del(dt__link_t *l) {
  l->prev->next = l->next;
  l->next->prev = l->prev;
  link_init(l);
}

/* Moves every element of from into the empty list to. */
static void link_take(dt__link_t *to, dt__link_t *from) {
  link_init(to);
  if (link_empty(from)) {
    return;
  }
  to->next = from->next;
  to->prev = from->prev;
  to->next->prev = to;
  to->prev->next = to;
  link_init(from);
}

/* ---- the current loop and closed descriptors -------------------------- */

static __thread dt_loop_t *current;

dt_loop_t *dt__loop_enter(dt_loop_t *loop) {
  dt_loop_t *prev = current;
  current = loop;
  return prev;
}

void dt__loop_leave(dt_loop_t *prev) {
  current = prev;
}

void dt__closed(int fd) {
  dt_loop_t *l = current;
  if (l == NULL) {
    return;
  }
  if (l->nclosed < MAX_CLOSED) {
    l->closed[l->nclosed++] = fd;
  } else {
    l->closed_overflow = true;
  }
}

void dt__close(int fd) {
  int saved = errno;
  /* On Linux the number is free again even when close() says EINTR. */
  (void)close(fd);
  dt__closed(fd);
  errno = saved;
}

static bool was_closed(const dt_loop_t *l, int fd) {
  if (l->closed_overflow) {
    return true;
  }
  for (size_t i = 0; i < l->nclosed; i++) {
    if (l->closed[i] == fd) {
      return true;
    }
  }
  return false;
}

static void forget_closed(dt_loop_t *l) {
  l->nclosed = 0;
  l->closed_overflow = false;
}

/* ---- the timer ----------------------------------------------------------- */

/* Tells the timer callback when the loop must run next, if that changed.
 * force: the program's timer just fired (it is one-shot), so even the
 * same deadline is told again. */
static void timer_sync(dt_loop_t *l, bool force) {
  if (l->o.timer == NULL) {
    return;
  }
  int kind = TOLD_NONE;
  uint64_t at = 0;
  if (!link_empty(&l->ready)) {
    kind = TOLD_ASAP;
  } else if (l->nheap > 0) {
    kind = TOLD_AT;
    at = l->heap[0]->due;
  }
  if (kind == l->told && (kind != TOLD_AT || at == l->told_at) &&
      (!force || kind == TOLD_NONE)) {
    return;
  }
  l->told = kind;
  l->told_at = at;
  int ms = -1;
  if (kind == TOLD_ASAP) {
    ms = 0;
  } else if (kind == TOLD_AT) {
    dt_deadline_t d = {at};
    ms = dt__deadline_poll_ms(&l->clock, d);
  }
  l->o.timer(l->o.timer_ctx, ms);
}

/* ---- the deadline heap --------------------------------------------------- */

static void heap_set(dt_loop_t *l, size_t i, dt_op_t *op) {
  l->heap[i] = op;
  op->heap = i;
}

static void heap_up(dt_loop_t *l, size_t i) {
  dt_op_t *op = l->heap[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (l->heap[p]->due <= op->due) {
      break;
    }
    heap_set(l, i, l->heap[p]);
    i = p;
  }
  heap_set(l, i, op);
}

static void heap_down(dt_loop_t *l, size_t i) {
  dt_op_t *op = l->heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= l->nheap) {
      break;
    }
    if (c + 1 < l->nheap && l->heap[c + 1]->due < l->heap[c]->due) {
      c++;
    }
    if (op->due <= l->heap[c]->due) {
      break;
    }
    heap_set(l, i, l->heap[c]);
    i = c;
  }
  heap_set(l, i, op);
}

static void heap_remove(dt_loop_t *l, dt_op_t *op) {
  size_t i = op->heap;
  if (i == NO_HEAP) {
    return;
  }
  op->heap = NO_HEAP;
  dt_op_t *last = l->heap[--l->nheap];
  if (i == l->nheap) {
    return;
  }
  heap_set(l, i, last);
  if (i > 0 && last->due < l->heap[(i - 1) / 2]->due) {
    heap_up(l, i);
  } else {
    heap_down(l, i);
  }
}

/* Files op under due; never fails: dt__op_new reserved its place. */
static void heap_file(dt_loop_t *l, dt_op_t *op, uint64_t due) {
  if (due == DT_DEADLINE_NEVER) {
    heap_remove(l, op);
    op->due = due;
    return;
  }
  if (op->heap == NO_HEAP) {
    op->due = due;
    heap_set(l, l->nheap++, op);
    heap_up(l, op->heap);
    return;
  }
  uint64_t old = op->due;
  op->due = due;
  if (due < old) {
    heap_up(l, op->heap);
  } else if (due > old) {
    heap_down(l, op->heap);
  }
}

/* ---- descriptors --------------------------------------------------------- */

static short ent_events(const dt__fdent_t *e) {
  return (short)((e->nin > 0 ? POLLIN : 0) | (e->nout > 0 ? POLLOUT : 0));
}

static void ent_count(dt__fdent_t *e, short events, int delta) {
  if (events & POLLIN) {
    e->nin += (unsigned)delta;
  }
  if (events & POLLOUT) {
    e->nout += (unsigned)delta;
  }
}

static dt__fdent_t *ent_find(dt_loop_t *l, int fd) {
  dt__fdent_t *e = NULL;
  HASH_FIND_INT(l->fds, &fd, e);
  return e;
}

/* The entry of fd, made when missing; NULL without memory. */
static dt__fdent_t *ent_get(dt_loop_t *l, int fd) {
  dt__fdent_t *e = ent_find(l, fd);
  if (e != NULL) {
    return e;
  }
  if (l->nfds + 1 > l->pfdcap) {
    size_t cap = l->pfdcap < 16 ? 16 : l->pfdcap * 2;
    struct pollfd *p = dt__realloc(l->pfd, cap * sizeof(*p));
    if (p == NULL) {
      return NULL;
    }
    l->pfd = p;
    l->pfdcap = cap;
  }
  if (l->spare != NULL) {
    e = l->spare;
    l->spare = e->spare;
  } else {
    e = dt__malloc(sizeof(*e));
    if (e == NULL) {
      return NULL;
    }
  }
  memset(e, 0, sizeof(*e));
  e->fd = fd;
  link_init(&e->waiters);
  HASH_ADD_INT(l->fds, fd, e);
  if (!DT_HASH_ADDED(e)) {
    e->spare = l->spare;
    l->spare = e;
    return NULL;
  }
  l->nfds++;
  return e;
}

/* Tells the watch callback the entry's new union of events, if it
 * changed; stale: the number was closed meanwhile, so whatever the
 * program's loop registered is gone (epoll drops a closed descriptor) and
 * is announced removed first. An entry nobody waits on is dropped. */
static void ent_announce(dt_loop_t *l, dt__fdent_t *e, bool stale) {
  short ev = ent_events(e);
  if (l->o.watch != NULL) {
    if (stale && e->told != 0) {
      l->o.watch(l->o.watch_ctx, e->fd, 0);
      e->told = 0;
    }
    if (ev != e->told) {
      l->o.watch(l->o.watch_ctx, e->fd, ev);
    }
  }
  e->told = ev;
  if (link_empty(&e->waiters)) {
    HASH_DEL(l->fds, e);
    l->nfds--;
    e->spare = l->spare;
    l->spare = e;
  }
}

static dt_status_t watch_add(dt_loop_t *l, dt_op_t *op, int fd, short events) {
  dt__fdent_t *e = ent_get(l, fd);
  if (e == NULL) {
    return DT_ENOMEM;
  }
  dt__watch_t *w = &op->w[op->nw++];
  w->fd = fd;
  w->events = events;
  w->revents = 0;
  w->ent = e;
  w->op = op;
  link_push(&e->waiters, &w->link);
  ent_count(e, events, 1);
  ent_announce(l, e, false);
  return DT_OK;
}

/* Drops watch i of op; the last slot moves into its place. */
static void watch_del(dt_loop_t *l, dt_op_t *op, size_t i) {
  dt__watch_t *w = &op->w[i];
  dt__fdent_t *e = w->ent;
  link_del(&w->link);
  ent_count(e, w->events, -1);
  ent_announce(l, e, false);
  size_t last = --op->nw;
  if (i != last) {
    *w = op->w[last];
    /* The moved watch is linked: its neighbours point at the old slot. */
    w->link.prev->next = &w->link;
    w->link.next->prev = &w->link;
  }
}

static void unwatch_all(dt_loop_t *l, dt_op_t *op) {
  while (op->nw > 0) {
    watch_del(l, op, op->nw - 1);
  }
}

/* Brings op's watches in line with what its machine waits on now. A
 * number closed during the step and wanted again is a new descriptor
 * behind an old number: announced removed, then added. */
static dt_status_t rewatch(dt_loop_t *l, dt_op_t *op) {
  struct pollfd got[DT__OP_MAX_FDS];
  size_t n = op->vt->pollfds(op, got);
  /* One entry per descriptor, events merged; no events, no wait. */
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    short ev = got[i].events & (POLLIN | POLLOUT);
    if (got[i].fd < 0 || ev == 0) {
      continue;
    }
    size_t j = 0;
    while (j < k && got[j].fd != got[i].fd) {
      j++;
    }
    if (j == k) {
      got[k].fd = got[i].fd;
      got[k].events = 0;
      got[k].revents = 0;
      k++;
    }
    got[j].events |= ev;
  }
  for (size_t i = op->nw; i-- > 0;) {
    dt__watch_t *w = &op->w[i];
    size_t j = 0;
    while (j < k && got[j].fd != w->fd) {
      j++;
    }
    if (j == k) {
      watch_del(l, op, i);
      continue;
    }
    got[j].revents = 1; /* kept */
    if (got[j].events != w->events) {
      ent_count(w->ent, w->events, -1);
      ent_count(w->ent, got[j].events, 1);
      w->events = got[j].events;
    }
    ent_announce(l, w->ent, was_closed(l, w->fd));
  }
  for (size_t j = 0; j < k; j++) {
    if (got[j].revents == 0) {
      dt_status_t st = watch_add(l, op, got[j].fd, got[j].events);
      if (st != DT_OK) {
        return st;
      }
    }
  }
  return DT_OK;
}

/* ---- operations ---------------------------------------------------------- */

dt_status_t dt__op_new(dt_loop_t *loop, const dt__op_vt_t *vt, size_t size,
                       void *user, dt_op_t **out) {
  if (loop->closing) {
    return DT_EINVAL;
  }
  if (loop->nops + 1 > loop->heapcap) {
    size_t cap = loop->heapcap < 16 ? 16 : loop->heapcap * 2;
    dt_op_t **h = dt__realloc(loop->heap, cap * sizeof(*h));
    if (h == NULL) {
      return DT_ENOMEM;
    }
    loop->heap = h;
    loop->heapcap = cap;
  }
  /* The watches follow the kind's struct, suitably aligned. */
  size_t align = offsetof(
      struct {
        char c;
        dt__watch_t w;
      },
      w);
  size_t off = (size + align - 1) / align * align;
  dt_op_t *op = dt__malloc(off + vt->maxfds * sizeof(dt__watch_t));
  if (op == NULL) {
    return DT_ENOMEM;
  }
  memset(op, 0, sizeof(*op));
  op->vt = vt;
  op->loop = loop;
  op->owner.prev = op->owner.next = &op->owner;
  op->owner.reg = NULL;
  link_init(&op->all);
  link_init(&op->q);
  op->state = DT__OP_RUNNING;
  op->heap = NO_HEAP;
  op->due = DT_DEADLINE_NEVER;
  op->w = (dt__watch_t *)(void *)((char *)op + off);
  op->user = user;
  loop->nops++;
  *out = op;
  return DT_OK;
}

static void op_free(dt_loop_t *l, dt_op_t *op) {
  l->nops--;
  dt__free(op);
}

void dt__op_abandon(dt_op_t *op) {
  op_free(op->loop, op);
}

static void op_owner_gone(dt__opent_t *e);

dt_status_t dt__op_launch(dt_op_t *op, dt__opreg_t *owner, bool finished) {
  dt_loop_t *l = op->loop;
  if (finished) {
    op->state = DT__OP_READY;
    link_push(&l->ready, &op->q);
  } else {
    /* Descriptors the start closed were never announced: not stale. */
    forget_closed(l);
    if (rewatch(l, op) != DT_OK) {
      unwatch_all(l, op);
      op->vt->discard(op);
      forget_closed(l);
      op_free(l, op);
      return DT_ENOMEM;
    }
    heap_file(l, op, op->vt->deadline(op).at_us);
  }
  forget_closed(l);
  link_push(&l->all, &op->all);
  l->pending++;
  if (owner != NULL) {
    dt__opreg_add(owner, &op->owner, op_owner_gone);
  }
  timer_sync(l, false);
  return DT_OK;
}

static void schedule(dt_loop_t *l, dt_op_t *op) {
  if (op->scheduled || op->state != DT__OP_RUNNING) {
    return;
  }
  op->scheduled = true;
  link_push(&l->run, &op->q);
}

/* A running op stops waiting: out of the run list, the heap and the
 * descriptor table (announced before its machine closes anything). */
static void op_unhook(dt_loop_t *l, dt_op_t *op) {
  if (op->scheduled) {
    link_del(&op->q);
    op->scheduled = false;
    op->expired = false;
  }
  heap_remove(l, op);
  unwatch_all(l, op);
}

static void op_make_ready(dt_loop_t *l, dt_op_t *op) {
  op->state = DT__OP_READY;
  link_push(&l->ready, &op->q);
}

static void op_step(dt_loop_t *l, dt_op_t *op) {
  struct pollfd pfd[DT__OP_MAX_FDS];
  size_t n = op->nw;
  for (size_t i = 0; i < n; i++) {
    pfd[i].fd = op->w[i].fd;
    pfd[i].events = op->w[i].events;
    pfd[i].revents = op->w[i].revents;
    op->w[i].revents = 0;
  }
  if (op->expired && n > 0) {
    /* A program's loop that runs late hands over the timer before the
     * readiness it has not read yet: ask the kernel, so a reply waiting
     * in a socket is taken rather than its question timed out (the
     * blocking calls' poll() reports both at once). */
    struct pollfd now[DT__OP_MAX_FDS];
    memcpy(now, pfd, n * sizeof(*now));
    if (poll(now, (nfds_t)n, 0) > 0) {
      for (size_t i = 0; i < n; i++) {
        pfd[i].revents |= now[i].revents;
      }
    }
  }
  op->expired = false;
  forget_closed(l);
  if (op->vt->process(op, pfd, n)) {
    op_unhook(l, op);
    op_make_ready(l, op);
  } else if (rewatch(l, op) != DT_OK) {
    /* No room to watch a new descriptor: the op fails, named. */
    op_unhook(l, op);
    op->vt->discard(op);
    op->status = DT_ENOMEM;
    op_make_ready(l, op);
  } else {
    heap_file(l, op, op->vt->deadline(op).at_us);
  }
  forget_closed(l);
}

/* Runs op's callback and frees it; op has left every list but q/all. */
static void op_deliver(dt_loop_t *l, dt_op_t *op) {
  link_del(&op->q);
  link_del(&op->all);
  /* From here the owner's free no longer knows it: the callback may free
   * the owner. */
  dt__opreg_del(&op->owner);
  l->pending--;
  op->state = DT__OP_DELIVERING;
  op->vt->deliver(op);
  op_free(l, op);
}

/* Ends op at once with DT_ECANCELED, callback included: its owner or its
 * loop is being freed. */
static void op_end_now(dt_op_t *op) {
  dt_loop_t *l = op->loop;
  dt_loop_t *prev = dt__loop_enter(l);
  if (op->state == DT__OP_RUNNING) {
    op_unhook(l, op);
  }
  op->vt->discard(op);
  forget_closed(l);
  dt__loop_leave(prev);
  op->status = DT_ECANCELED;
  op_deliver(l, op);
}

static void op_owner_gone(dt__opent_t *e) {
  dt_op_t *op = CONTAINER(e, dt_op_t, owner);
  dt_loop_t *l = op->loop;
  op_end_now(op);
  timer_sync(l, false);
}

/* Delivers the completions queued so far; those queued by the callbacks
 * wait for the next step, so a callback that starts a cache hit each time
 * cannot keep one processing step going for ever. */
static void deliver_ready(dt_loop_t *l) {
  dt__link_t batch;
  link_take(&batch, &l->ready);
  while (!link_empty(&batch)) {
    op_deliver(l, CONTAINER(batch.next, dt_op_t, q));
  }
}

static void fd_ready(dt_loop_t *l, int fd, short revents) {
  if (revents == 0) {
    return;
  }
  dt__fdent_t *e = ent_find(l, fd);
  if (e == NULL) {
    return;
  }
  for (dt__link_t *k = e->waiters.next; k != &e->waiters; k = k->next) {
    dt__watch_t *w = CONTAINER(k, dt__watch_t, link);
    w->revents |= revents & (w->events | POLLERR | POLLHUP | POLLNVAL);
    schedule(l, w->op);
  }
}

/* Steps every op a descriptor woke or whose deadline passed, then runs
 * the callbacks. */
static void run(dt_loop_t *l, bool timer_fired) {
  uint64_t now = dt__clock_us(&l->clock);
  while (l->nheap > 0 && l->heap[0]->due <= now) {
    dt_op_t *op = l->heap[0];
    heap_remove(l, op);
    op->expired = true;
    schedule(l, op);
  }
  dt_loop_t *prev = dt__loop_enter(l);
  while (!link_empty(&l->run)) {
    dt_op_t *op = CONTAINER(l->run.next, dt_op_t, q);
    link_del(&op->q);
    op->scheduled = false;
    op_step(l, op);
  }
  dt__loop_leave(prev);
  deliver_ready(l);
  timer_sync(l, timer_fired);
}

/* ---- public calls -------------------------------------------------------- */

void dt_loop_opts_init(dt_loop_opts_t *opts) {
  memset(opts, 0, sizeof(*opts));
}

dt_status_t dt_loop_new(const dt_loop_opts_t *opts, dt_loop_t **out) {
  if (out == NULL) {
    return DT_EINVAL;
  }
  dt_loop_t *l = dt__calloc(1, sizeof(*l));
  if (l == NULL) {
    return DT_ENOMEM;
  }
  if (opts != NULL) {
    l->o = *opts;
  } else {
    dt_loop_opts_init(&l->o);
  }
  l->clock.now_us = l->o.clock_us;
  l->clock.ctx = l->o.clock_ctx;
  link_init(&l->all);
  link_init(&l->run);
  link_init(&l->ready);
  l->told = TOLD_NONE;
  *out = l;
  return DT_OK;
}

void dt_loop_free(dt_loop_t *loop) {
  if (loop == NULL) {
    return;
  }
  loop->closing = true;
  while (!link_empty(&loop->all)) {
    op_end_now(CONTAINER(loop->all.next, dt_op_t, all));
  }
  timer_sync(loop, false);
  while (loop->spare != NULL) {
    dt__fdent_t *e = loop->spare;
    loop->spare = e->spare;
    dt__free(e);
  }
  dt__free(loop->heap);
  dt__free(loop->pfd);
  dt__free(loop);
}

size_t dt_loop_pending(const dt_loop_t *loop) {
  return loop != NULL ? loop->pending : 0;
}

size_t dt_loop_pollfds(dt_loop_t *loop, struct pollfd *pfd, size_t max) {
  if (loop == NULL) {
    return 0;
  }
  size_t n = 0;
  for (dt__fdent_t *e = loop->fds; e != NULL; e = e->hh.next) {
    if (n < max && pfd != NULL) {
      pfd[n].fd = e->fd;
      pfd[n].events = ent_events(e);
      pfd[n].revents = 0;
    }
    n++;
  }
  return n;
}

int dt_loop_timeout_ms(dt_loop_t *loop) {
  if (loop == NULL) {
    return -1;
  }
  if (!link_empty(&loop->ready)) {
    return 0;
  }
  if (loop->nheap == 0) {
    return -1;
  }
  dt_deadline_t d = {loop->heap[0]->due};
  return dt__deadline_poll_ms(&loop->clock, d);
}

dt_status_t dt_loop_process(dt_loop_t *loop, const struct pollfd *pfd,
                            size_t n) {
  if (loop == NULL || (pfd == NULL && n > 0)) {
    return DT_EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    fd_ready(loop, pfd[i].fd, pfd[i].revents);
  }
  run(loop, pfd == NULL);
  return DT_OK;
}

dt_status_t dt_loop_process_fd(dt_loop_t *loop, int fd, short revents) {
  if (loop == NULL) {
    return DT_EINVAL;
  }
  fd_ready(loop, fd, revents);
  run(loop, false);
  return DT_OK;
}

dt_status_t dt_loop_run(dt_loop_t *loop, int timeout_ms) {
  if (loop == NULL) {
    return DT_EINVAL;
  }
  dt_deadline_t end = dt__deadline_in(&loop->clock, timeout_ms);
  while (loop->pending > 0) {
    /* The array has room for every descriptor: ent_get sees to it. */
    size_t n = dt_loop_pollfds(loop, loop->pfd, loop->pfdcap);
    int ms = dt_loop_timeout_ms(loop);
    int left = dt__deadline_poll_ms(&loop->clock, end);
    if (left >= 0 && (ms < 0 || left < ms)) {
      ms = left;
    }
    int rc = poll(loop->pfd, (nfds_t)n, ms);
    if (rc < 0) {
      if (errno == EINTR) {
        continue;
      }
      return DT_ESYS;
    }
    /* Not the timer path: a loop run by dt_loop_run has no timer to
     * re-arm. */
    for (size_t i = 0; rc > 0 && i < n; i++) {
      fd_ready(loop, loop->pfd[i].fd, loop->pfd[i].revents);
    }
    run(loop, false);
    if (loop->pending > 0 && dt__deadline_passed(&loop->clock, end)) {
      return DT_ETIMEDOUT;
    }
  }
  return DT_OK;
}

dt_status_t dt_op_cancel(dt_op_t *op) {
  if (op == NULL) {
    return DT_EINVAL;
  }
  if (op->state == DT__OP_DELIVERING || op->cancelled) {
    return DT_OK;
  }
  dt_loop_t *l = op->loop;
  op->cancelled = true;
  dt_loop_t *prev = dt__loop_enter(l);
  if (op->state == DT__OP_RUNNING) {
    op_unhook(l, op);
    op->vt->discard(op);
    op_make_ready(l, op);
  } else {
    op->vt->discard(op); /* the result nobody will see */
  }
  forget_closed(l);
  dt__loop_leave(prev);
  op->status = DT_ECANCELED;
  timer_sync(l, false);
  return DT_OK;
}
