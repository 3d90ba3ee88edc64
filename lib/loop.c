/* The event loop: operations in flight, a min-heap of their deadlines,
 * and a queue of completions whose callbacks run from the next processing
 * step. The descriptors they wait on are loop_fd.c's, the kinds of
 * operation loop_ops.c's; see loop_int.h. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "loop_int.h"

#define NO_HEAP SIZE_MAX

/* ---- the timer ----------------------------------------------------------- */

/* Tells the timer callback when the loop must run next, if that changed.
 * A later deadline is not told while an earlier timer is armed: the first
 * op of the heap usually completes before its deadline, and re-arming the
 * program's timer on every completion (a timerfd_settime each, for many
 * loops) costs more than one early wake-up, after which the timer is
 * re-armed anyway. force: the program's timer just fired (it is one-shot),
 * so even the same deadline is told again. */
static void timer_sync(dt_loop_t *l, bool force) {
  if (l->o.timer == NULL) {
    return;
  }
  int kind = DT__TOLD_NONE;
  uint64_t at = 0;
  if (!link_empty(&l->ready)) {
    kind = DT__TOLD_ASAP;
  } else if (l->nheap > 0) {
    kind = DT__TOLD_AT;
    at = l->heap[0]->due;
  }
  if (kind == l->told && (kind != DT__TOLD_AT || at >= l->told_at) &&
      (!force || kind == DT__TOLD_NONE)) {
    return;
  }
  l->told = kind;
  l->told_at = at;
  int ms = -1;
  if (kind == DT__TOLD_ASAP) {
    ms = 0;
  } else if (kind == DT__TOLD_AT) {
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

/* ---- operations ---------------------------------------------------------- */

dt_status_t dt__op_new(dt_loop_t *loop, const dt__op_vt_t *vt, size_t size,
                       void *user, dt_op_t **out) {
  if (loop->closing || vt->maxfds > DT__OP_MAX_FDS) {
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
    dt__fds_forget_closed(l);
    if (dt__fds_rewatch(l, op) != DT_OK) {
      dt__fds_unwatch(l, op);
      op->vt->discard(op);
      dt__fds_forget_closed(l);
      op_free(l, op);
      return DT_ENOMEM;
    }
    heap_file(l, op, op->vt->deadline(op).at_us);
  }
  dt__fds_forget_closed(l);
  dt__fds_step_end(l);
  link_push(&l->all, &op->all);
  l->pending++;
  if (owner != NULL) {
    dt__opreg_add(owner, &op->owner, op_owner_gone);
  }
  timer_sync(l, false);
  return DT_OK;
}

void dt__loop_schedule(dt_loop_t *l, dt_op_t *op) {
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
  dt__fds_unwatch(l, op);
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
  dt__fds_forget_closed(l);
  if (op->vt->process(op, pfd, n)) {
    op_unhook(l, op);
    op_make_ready(l, op);
  } else if (dt__fds_rewatch(l, op) != DT_OK) {
    /* No room to watch a new descriptor: the op fails, named. */
    op_unhook(l, op);
    op->vt->discard(op);
    op->status = DT_ENOMEM;
    op_make_ready(l, op);
  } else {
    heap_file(l, op, op->vt->deadline(op).at_us);
  }
  dt__fds_forget_closed(l);
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
  dt__fds_forget_closed(l);
  dt__loop_leave(prev);
  dt__fds_step_end(l);
  op->status = DT_ECANCELED;
  op_deliver(l, op);
}

static void op_owner_gone(dt__opent_t *e) {
  dt_op_t *op = DT__CONTAINER(e, dt_op_t, owner);
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
    op_deliver(l, DT__CONTAINER(batch.next, dt_op_t, q));
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
    dt__loop_schedule(l, op);
  }
  /* Removals of parked descriptors wait for the end of the step, across
   * the callbacks: a callback that starts the next lookup takes the
   * socket the last one parked. */
  l->depth++;
  dt_loop_t *prev = dt__loop_enter(l);
  while (!link_empty(&l->run)) {
    dt_op_t *op = DT__CONTAINER(l->run.next, dt_op_t, q);
    link_del(&op->q);
    op->scheduled = false;
    op_step(l, op);
  }
  dt__loop_leave(prev);
  deliver_ready(l);
  l->depth--;
  dt__fds_step_end(l);
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
  l->told = DT__TOLD_NONE;
  *out = l;
  return DT_OK;
}

void dt_loop_free(dt_loop_t *loop) {
  if (loop == NULL) {
    return;
  }
  loop->closing = true;
  while (!link_empty(&loop->all)) {
    op_end_now(DT__CONTAINER(loop->all.next, dt_op_t, all));
  }
  timer_sync(loop, false);
  dt__fds_step_end(loop);
  dt__fds_free(loop);
  dt__free(loop->heap);
  dt__free(loop->pfd);
  dt__free(loop);
}

size_t dt_loop_pending(const dt_loop_t *loop) {
  return loop != NULL ? loop->pending : 0;
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
    dt__fds_ready(loop, pfd[i].fd, pfd[i].revents);
  }
  run(loop, pfd == NULL);
  return DT_OK;
}

dt_status_t dt_loop_process_fd(dt_loop_t *loop, int fd, short revents) {
  if (loop == NULL) {
    return DT_EINVAL;
  }
  dt__fds_ready(loop, fd, revents);
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
      dt__fds_ready(loop, loop->pfd[i].fd, loop->pfd[i].revents);
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
  dt__fds_forget_closed(l);
  dt__loop_leave(prev);
  dt__fds_step_end(l);
  op->status = DT_ECANCELED;
  timer_sync(l, false);
  return DT_OK;
}
