/* A registry of the event-loop operations started on one object (a
 * resolver, a dialer, a pool), so that freeing the object can end each of
 * them first: the object embeds a dt__opreg_t, each operation a
 * dt__opent_t. Operations may run on loops of several threads, hence the
 * mutex; it is held only to link and unlink, never while an operation is
 * aborted, so an abort may start or cancel other operations. */
#ifndef DT_OPREG_H
#define DT_OPREG_H

#include <pthread.h>
#include <stdbool.h>

#include "dialtone/common.h"

struct dt__opreg;

typedef struct dt__opent {
  struct dt__opent *prev, *next;
  struct dt__opreg *reg; /* NULL when not registered */
  /* Ends the operation for good, on the thread freeing the object: its
   * machine lets go of the object, its callback runs with DT_ECANCELED,
   * its memory is freed. Called once, after the entry left the registry. */
  void (*abort)(struct dt__opent *e);
} dt__opent_t;

typedef struct dt__opreg {
  pthread_mutex_t lock;
  dt__opent_t head; /* sentinel of a circular list */
} dt__opreg_t;

/* DT_OK or DT_ESYS (errno set) when the mutex cannot be made. */
dt_status_t dt__opreg_init(dt__opreg_t *reg);
/* The registry must be empty: dt__opreg_abort_all() first. */
void dt__opreg_destroy(dt__opreg_t *reg);
void dt__opreg_add(dt__opreg_t *reg, dt__opent_t *e,
                   void (*abort)(dt__opent_t *e));
/* Unlinks e; does nothing when it is not registered (any more). */
void dt__opreg_del(dt__opent_t *e);
/* Aborts every registered entry, one at a time, including entries added
 * by the aborts themselves. */
void dt__opreg_abort_all(dt__opreg_t *reg);

#endif
