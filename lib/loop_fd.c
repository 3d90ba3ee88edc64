/* The loop's descriptor table: every descriptor some operation waits on,
 * with its waiters and the union of their events, which is what the watch
 * callback is told about; and the numbers closed during a step, so that a
 * number closed and reopened is announced again (closefd.h). */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "closefd.h"
#include "loop_int.h"

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
  if (l->nclosed < DT__MAX_CLOSED) {
    l->closed[l->nclosed++] = fd;
  } else {
    l->closed_overflow = true;
  }
}

static dt__fdent_t *ent_find(dt_loop_t *l, int fd);

/* Closes of descriptors that may have been parked, by any thread. */
static uint64_t park_epoch;

void dt__close(int fd) {
  int saved = errno;
  dt_loop_t *l = current;
  if (l != NULL && l->o.watch != NULL) {
    /* Told while the number is still open: epoll_ctl(DEL) after the close
     * would only fail with EBADF. */
    dt__fdent_t *e = ent_find(l, fd);
    if (e != NULL && e->told != 0) {
      l->o.watch(l->o.watch_ctx, fd, 0);
      e->told = 0;
    }
  }
  /* On Linux the number is free again even when close() says EINTR. */
  (void)close(fd);
  dt__closed(fd);
  errno = saved;
}

void dt__park(int fd) {
  dt_loop_t *l = current;
  if (l == NULL) {
    return;
  }
  dt__fdent_t *e = ent_find(l, fd);
  if (e != NULL) {
    e->parked = true;
    e->park_epoch = __atomic_load_n(&park_epoch, __ATOMIC_ACQUIRE);
  }
}

void dt__park_close(int fd) {
  /* Before the close: once the number is free another thread may reopen
   * and park it, and a loop must not take that for the old one. */
  __atomic_add_fetch(&park_epoch, 1, __ATOMIC_ACQ_REL);
  dt__close(fd);
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

void dt__fds_forget_closed(dt_loop_t *l) {
  l->nclosed = 0;
  l->closed_overflow = false;
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
static void ent_drop(dt_loop_t *l, dt__fdent_t *e) {
  HASH_DEL(l->fds, e);
  l->nfds--;
  e->spare = l->spare;
  l->spare = e;
}

static void ent_announce(dt_loop_t *l, dt__fdent_t *e, bool stale) {
  short ev = ent_events(e);
  if (l->o.watch != NULL) {
    if (e->parked && ev != 0 &&
        e->park_epoch != __atomic_load_n(&park_epoch, __ATOMIC_ACQUIRE)) {
      /* Some parked descriptor was closed since this one was parked: the
       * number may now stand for another socket. */
      stale = true;
    }
    if (stale && e->told != 0) {
      l->o.watch(l->o.watch_ctx, e->fd, 0);
      e->told = 0;
    }
    if (ev == 0 && e->told != 0 && e->parked && l->depth > 0) {
      if (!e->deferred) {
        e->deferred = true;
        e->next_deferred = l->deferred;
        l->deferred = e;
      }
      return; /* told stays: the callback still holds it */
    }
    if (ev != e->told) {
      l->o.watch(l->o.watch_ctx, e->fd, ev);
    }
  }
  e->told = ev;
  if (ev != 0) {
    e->parked = false;
  }
  if (link_empty(&e->waiters) && !e->deferred) {
    ent_drop(l, e);
  }
}

void dt__fds_step_end(dt_loop_t *l) {
  if (l->depth > 0) {
    return;
  }
  while (l->deferred != NULL) {
    dt__fdent_t *e = l->deferred;
    l->deferred = e->next_deferred;
    e->deferred = false;
    e->next_deferred = NULL;
    if (!link_empty(&e->waiters)) {
      continue; /* taken again: still registered, nothing to say */
    }
    if (e->told != 0 && l->o.watch != NULL) {
      l->o.watch(l->o.watch_ctx, e->fd, 0);
    }
    e->told = 0;
    e->parked = false;
    ent_drop(l, e);
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
  ent_announce(l, e, e->deferred && was_closed(l, fd));
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

void dt__fds_unwatch(dt_loop_t *l, dt_op_t *op) {
  while (op->nw > 0) {
    watch_del(l, op, op->nw - 1);
  }
}

/* Brings op's watches in line with what its machine waits on now. A
 * number closed during the step and wanted again is a new descriptor
 * behind an old number: announced removed, then added. */
dt_status_t dt__fds_rewatch(dt_loop_t *l, dt_op_t *op) {
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

void dt__fds_ready(dt_loop_t *l, int fd, short revents) {
  if (revents == 0) {
    return;
  }
  dt__fdent_t *e = ent_find(l, fd);
  if (e == NULL) {
    return;
  }
  for (dt__link_t *k = e->waiters.next; k != &e->waiters; k = k->next) {
    dt__watch_t *w = DT__CONTAINER(k, dt__watch_t, link);
    w->revents |= revents & (w->events | POLLERR | POLLHUP | POLLNVAL);
    dt__loop_schedule(l, w->op);
  }
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

void dt__fds_free(dt_loop_t *l) {
  while (l->spare != NULL) {
    dt__fdent_t *e = l->spare;
    l->spare = e->spare;
    dt__free(e);
  }
}
