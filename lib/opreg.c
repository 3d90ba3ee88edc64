#include "config.h"

#include <errno.h>

#include "opreg.h"

dt_status_t dt__opreg_init(dt__opreg_t *reg) {
  int rc = pthread_mutex_init(&reg->lock, NULL);
  if (rc != 0) {
    errno = rc;
    return DT_ESYS;
  }
  reg->head.prev = reg->head.next = &reg->head;
  reg->head.reg = reg;
  reg->head.abort = NULL;
  return DT_OK;
}

void dt__opreg_destroy(dt__opreg_t *reg) {
  pthread_mutex_destroy(&reg->lock);
}

void dt__opreg_add(dt__opreg_t *reg, dt__opent_t *e,
                   void (*abort)(dt__opent_t *e)) {
  e->abort = abort;
  pthread_mutex_lock(&reg->lock);
  e->reg = reg;
  e->next = &reg->head;
  e->prev = reg->head.prev;
  reg->head.prev->next = e;
  reg->head.prev = e;
  pthread_mutex_unlock(&reg->lock);
}

static void unlink_locked(dt__opent_t *e) {
  e->prev->next = e->next;
  e->next->prev = e->prev;
  e->prev = e->next = e;
  e->reg = NULL;
}

void dt__opreg_del(dt__opent_t *e) {
  /* reg is only cleared by the thread that owns the operation, or by an
   * abort_all that the caller runs on that same thread: reading it
   * unlocked is safe. */
  dt__opreg_t *reg = e->reg;
  if (reg == NULL) {
    return;
  }
  pthread_mutex_lock(&reg->lock);
  unlink_locked(e);
  pthread_mutex_unlock(&reg->lock);
}

void dt__opreg_abort_all(dt__opreg_t *reg) {
  for (;;) {
    pthread_mutex_lock(&reg->lock);
    dt__opent_t *e = reg->head.next;
    if (e == &reg->head) {
      pthread_mutex_unlock(&reg->lock);
      return;
    }
    unlink_locked(e);
    pthread_mutex_unlock(&reg->lock);
    e->abort(e);
  }
}
