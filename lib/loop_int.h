/* The event loop's internals: the operation every kind (address lookup,
 * question, dial, pool acquire) is built on, and the calls a
 * kind's start function makes.
 *
 * A kind embeds dt_op_t first in its own struct, with its machine, and
 * provides a dt__op_vt_t. Its start function:
 *
 *   dt__op_new(loop, &vt, sizeof(kind), user, &op)   one allocation
 *   prev = dt__loop_enter(loop)
 *   start the machine; on failure: clean it up, dt__op_abandon(op)
 *   finished at once (a cache hit, a literal, an immediate failure)?
 *     set op->status and keep the result in the kind's struct
 *   dt__op_launch(op, &owner->opreg, finished)
 *   dt__loop_leave(prev)
 *
 * From then on the loop calls the vtable: pollfds and deadline after each
 * step, process when a descriptor is ready or the deadline passed,
 * discard on cancel (and when the loop or the owner is freed), deliver
 * once to run the callback. The loop frees the op after deliver. */
#ifndef DT_LOOP_INT_H
#define DT_LOOP_INT_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "dialtone/loop.h"
#include "dt_uthash.h"
#include "opreg.h"

/* The most descriptors one operation waits on at once: a dial's two
 * lookup sockets and every attempt. */
#define DT__OP_MAX_FDS 40

/* A link of an intrusive, circular, doubly linked list; a list is a
 * sentinel link, empty when it points at itself. */
typedef struct dt__link {
  struct dt__link *prev, *next;
} dt__link_t;

typedef struct dt__fdent dt__fdent_t;

/* One descriptor an operation waits on, linked into the loop's entry for
 * that descriptor (several operations may wait on one: coalesced
 * questions share their flight's pipe). */
typedef struct {
  int fd;
  short events;
  short revents; /* gathered by processing for the next step */
  dt__fdent_t *ent;
  dt_op_t *op;
  dt__link_t link; /* in ent->waiters */
} dt__watch_t;

typedef struct {
  /* Most entries pollfds fills; at most DT__OP_MAX_FDS. */
  size_t maxfds;
  /* What the running machine waits on now. */
  size_t (*pollfds)(dt_op_t *op, struct pollfd *pfd);
  /* When the running machine must be advanced even if nothing is ready. */
  dt_deadline_t (*deadline)(const dt_op_t *op);
  /* Advances the running machine with the revents of its descriptors
   * (all 0 when only time passed). True once it has finished: then
   * op->status is set, the result is kept in the op, and the machine
   * holds nothing but that result. */
  bool (*process)(dt_op_t *op, const struct pollfd *pfd, size_t n);
  /* Lets go of everything the op holds: a running machine (its sockets
   * are closed) or a result not delivered (a finished dial's socket, an
   * answer, a pooled connection). Idempotent. */
  void (*discard)(dt_op_t *op);
  /* Runs the callback once with op->status and, on DT_OK, the result,
   * which passes to the callback. */
  void (*deliver)(dt_op_t *op);
} dt__op_vt_t;

typedef enum {
  DT__OP_RUNNING = 0, /* the machine runs: watched, maybe in the heap */
  DT__OP_READY,       /* finished or cancelled: waits for delivery */
  DT__OP_DELIVERING,  /* the callback runs; freed after it */
} dt__op_state_t;

struct dt_op {
  const dt__op_vt_t *vt;
  dt_loop_t *loop;
  dt__opent_t owner; /* in the registry of the object it runs on */
  dt__link_t all;    /* in loop->all until delivery */
  /* RUNNING: in loop->run while scheduled for a step. READY: in
   * loop->ready, or in the batch being delivered. */
  dt__link_t q;
  dt__op_state_t state;
  bool scheduled;
  bool expired; /* scheduled because its deadline passed */
  bool cancelled;
  dt_status_t status; /* READY: what the callback will be told */
  size_t heap;        /* index in the loop's deadline heap, or SIZE_MAX */
  uint64_t due;       /* the deadline it is filed under */
  size_t nw;
  dt__watch_t *w; /* vt->maxfds slots, after the kind's struct */
  void *user;
};

/* Allocates an op of size bytes (the kind's struct, dt_op_t first) with
 * room for its watches; only the dt_op_t part is initialised.
 * DT_OK; DT_ENOMEM; DT_EINVAL while the loop is being freed. */
dt_status_t dt__op_new(dt_loop_t *loop, const dt__op_vt_t *vt, size_t size,
                       void *user, dt_op_t **out);
/* Frees an op that was never launched; its machine must hold nothing. */
void dt__op_abandon(dt_op_t *op);
/* Hands a started op to its loop: registered with owner (may be NULL),
 * and either watched with its deadline filed (finished false) or queued
 * for delivery on the next processing step. On failure (DT_ENOMEM for the
 * descriptor table) the machine is discarded and the op freed. */
dt_status_t dt__op_launch(dt_op_t *op, dt__opreg_t *owner, bool finished);

/* Makes loop the calling thread's current loop, which notes the
 * descriptors dt__close() closes; returns the previous one for
 * dt__loop_leave(). */
dt_loop_t *dt__loop_enter(dt_loop_t *loop);
void dt__loop_leave(dt_loop_t *prev);

/* ---- loop.c and loop_fd.c only ------------------------------------- */

#define DT__CONTAINER(ptr, type, member)                                       \
  ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Closes noted during one step; past that every watch of the op is
 * treated as closed, which costs announcements, never correctness. */
#define DT__MAX_CLOSED 16

/* What the timer callback was told last. */
enum { DT__TOLD_NONE = 0, DT__TOLD_ASAP, DT__TOLD_AT };

/* One descriptor some operations wait on. */
struct dt__fdent {
  int fd;
  unsigned nin, nout; /* waiters wanting POLLIN, POLLOUT */
  short told;         /* the events the watch callback holds */
  dt__link_t waiters; /* dt__watch_t.link */
  dt__fdent_t *spare; /* next in the loop's spare list */
  /* The descriptor was parked (closefd.h) at park_epoch: when its last
   * waiter goes, the removal waits for the end of the step (deferred, in
   * the loop's deferred list), so that the operation that takes it next
   * costs the watch callback nothing. */
  bool parked;
  bool deferred;
  uint64_t park_epoch;
  dt__fdent_t *next_deferred;
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
  unsigned depth;        /* processing steps running (run()) */
  dt__fdent_t *deferred; /* entries whose removal waits for the step end */
  int closed[DT__MAX_CLOSED];
  size_t nclosed;
  bool closed_overflow;
};

static inline void link_init(dt__link_t *h) {
  h->prev = h;
  h->next = h;
}

static inline bool link_empty(const dt__link_t *h) {
  return h->next == h;
}

static inline void link_push(dt__link_t *h, dt__link_t *l) {
  l->prev = h->prev;
  l->next = h;
  h->prev->next = l;
  h->prev = l;
}

static inline void link_del(dt__link_t *l) {
  l->prev->next = l->next;
  l->next->prev = l->prev;
  link_init(l);
}

/* Moves every element of from into the empty list to. */
static inline void link_take(dt__link_t *to, dt__link_t *from) {
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

/* loop_fd.c: brings op's watches in line with what its machine waits on
 * now (DT_ENOMEM when a descriptor cannot be added); drops them all; marks
 * the waiters of a ready descriptor and schedules them; forgets the
 * numbers noted closed; frees the spare entries. */
dt_status_t dt__fds_rewatch(dt_loop_t *l, dt_op_t *op);
void dt__fds_unwatch(dt_loop_t *l, dt_op_t *op);
void dt__fds_ready(dt_loop_t *l, int fd, short revents);
void dt__fds_forget_closed(dt_loop_t *l);
/* The end of a processing step (or of a call made outside one): removals
 * deferred for parked descriptors nobody took again are announced. */
void dt__fds_step_end(dt_loop_t *l);
void dt__fds_free(dt_loop_t *l);
/* loop.c: queues a running op for a step. */
void dt__loop_schedule(dt_loop_t *l, dt_op_t *op);

#endif
