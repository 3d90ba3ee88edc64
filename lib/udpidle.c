/* Idle connected UDP sockets, kept per server for the next address lookup.
 *
 * socket(), connect() and close() cost about as much client CPU as the
 * rest of a lookup on loopback, and an event loop pays for registering
 * and dropping each new descriptor on top. A socket is only handed on
 * when nothing of the last lookup can still arrive on it: every question
 * sent on it got its reply and no stray datagram, error or TCP fallback
 * was seen. A late or spoofed datagram that reaches an idle socket anyway
 * fails the next lookup's matching (ID and question), is dropped and
 * counted, and retires the socket. */
#include "config.h"

#include <stddef.h>

#include "closefd.h"
#include "resolver_int.h"

static bool due_to_retire(const dt_resolver_t *r, uint32_t uses,
                          uint64_t born_us) {
  uint64_t now = dt__clock_us(&r->clock);
  return uses >= DT__UDP_MAX_USES ||
         (now >= born_us && now - born_us >= DT__UDP_MAX_AGE_US);
}

dt_status_t dt__udp_take(dt_resolver_t *r, size_t server, dt_udp_share_t *sh) {
  int stale[DT__UDP_IDLE_MAX];
  size_t nstale = 0;
  bool found = false;
  sh->server = server;
  sh->sent = 0;
  sh->replied = 0;
  sh->dirty = false;
  if (r->udp != NULL && server < r->nservers) {
    dt__udp_pool_t *p = &r->udp[server];
    pthread_mutex_lock(&r->udp_lock);
    while (p->n > 0 && !found) {
      dt__udp_idle_t *e = &p->idle[--p->n];
      if (due_to_retire(r, e->uses, e->born_us)) {
        stale[nstale++] = e->fd;
        continue;
      }
      sh->fd = e->fd;
      sh->uses = e->uses;
      sh->born_us = e->born_us;
      found = true;
    }
    pthread_mutex_unlock(&r->udp_lock);
  }
  /* Never close under the lock: it is held around memory only. */
  for (size_t i = 0; i < nstale; i++) {
    dt__park_close(stale[i]);
  }
  if (found) {
    return DT_OK;
  }
  const dt_server_t *s = &r->servers[server];
  dt_status_t st =
      dt__udp_open((const struct sockaddr *)&s->addr, s->len, &sh->fd);
  if (st != DT_OK) {
    sh->fd = -1;
    return st;
  }
  __atomic_add_fetch(&r->udp_opened, 1, __ATOMIC_RELAXED);
  sh->uses = 0;
  sh->born_us = dt__clock_us(&r->clock);
  return DT_OK;
}

void dt__udp_give(dt_resolver_t *r, dt_udp_share_t *sh) {
  if (sh->fd < 0) {
    return;
  }
  int fd = sh->fd;
  sh->fd = -1;
  bool kept = false;
  if (r->udp != NULL && sh->server < r->nservers && !sh->dirty &&
      sh->sent == sh->replied && !due_to_retire(r, sh->uses, sh->born_us)) {
    /* Parked before another thread can take it, close it and reopen the
     * number (closefd.h). */
    dt__park(fd);
    dt__udp_pool_t *p = &r->udp[sh->server];
    pthread_mutex_lock(&r->udp_lock);
    if (p->n < DT__UDP_IDLE_MAX) {
      p->idle[p->n].fd = fd;
      p->idle[p->n].uses = sh->uses;
      p->idle[p->n].born_us = sh->born_us;
      p->n++;
      kept = true;
    }
    pthread_mutex_unlock(&r->udp_lock);
  }
  if (!kept) {
    dt__park_close(fd);
  }
}

void dt__udp_idle_free(dt_resolver_t *r) {
  if (r->udp == NULL) {
    return;
  }
  int fds[DT_CONF_MAX_SERVERS * DT__UDP_IDLE_MAX];
  size_t n = 0;
  pthread_mutex_lock(&r->udp_lock);
  for (size_t s = 0; s < DT_CONF_MAX_SERVERS; s++) {
    for (size_t i = 0; i < r->udp[s].n; i++) {
      fds[n++] = r->udp[s].idle[i].fd;
    }
    r->udp[s].n = 0;
  }
  pthread_mutex_unlock(&r->udp_lock);
  for (size_t i = 0; i < n; i++) {
    dt__park_close(fds[i]);
  }
}

void dt__udp_hold(dt_resolver_t *r) {
  __atomic_add_fetch(&r->udp_users, 1, __ATOMIC_ACQ_REL);
}

void dt__udp_release(dt_resolver_t *r) {
  /* A lookup that starts meanwhile may lose the sockets it would have
   * found, never leak one: whatever is given back before a release is
   * closed by the release that reaches 0 after it. */
  if (__atomic_sub_fetch(&r->udp_users, 1, __ATOMIC_ACQ_REL) == 0) {
    dt__udp_idle_free(r);
  }
}
