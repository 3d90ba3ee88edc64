/* What a pool and its connections can say about themselves
 * (dialtone/pool.h): counters, destinations, one connection's history. */
#include "config.h"

#include <string.h>

#include "pool_int.h"

dt_status_t dt_pool_conn_get_info(const dt_conn_t *conn,
                                  dt_pool_conn_info_t *out) {
  if (conn == NULL || out == NULL || conn->free_fn != dt__pool_conn_free) {
    return DT_EINVAL;
  }
  const dt__pconn_t *c = (const dt__pconn_t *)(const void *)conn;
  uint64_t now = dt__clock_us(&c->clock);
  memset(out, 0, sizeof(*out));
  out->reused = c->reused;
  out->idle_us = c->reused ? c->idle_us : 0;
  out->age_us = now >= c->born_us ? now - c->born_us : 0;
  out->uses = c->uses;
  memcpy(&out->peer, &c->peer, sizeof(out->peer));
  out->peerlen = c->peerlen;
  out->dns_tracked = c->dns_tracked;
  if (c->dns_tracked && c->dns_expiry_us > now) {
    out->dns_expires_in_us = c->dns_expiry_us - now;
  }
  return DT_OK;
}

static uint64_t load(const uint64_t *v) {
  return __atomic_load_n(v, __ATOMIC_RELAXED);
}

void dt_pool_get_stats(dt_pool_t *pool, dt_pool_stats_t *out) {
  if (pool == NULL || out == NULL) {
    return;
  }
  const dt_pool_stats_t *s = &pool->st;
  memset(out, 0, sizeof(*out));
  out->acquires = load(&s->acquires);
  out->reuses = load(&s->reuses);
  out->dials = load(&s->dials);
  out->dial_failures = load(&s->dial_failures);
  for (int i = 0; i < DT_POOL_CHECK__COUNT; i++) {
    out->check_closed[i] = load(&s->check_closed[i]);
  }
  for (int i = 0; i < DT_POOL_EVICT__COUNT; i++) {
    out->evicted[i] = load(&s->evicted[i]);
  }
  for (int i = 0; i < DT_POOL_DISCARD__COUNT; i++) {
    out->discarded[i] = load(&s->discarded[i]);
  }
  out->waits = load(&s->waits);
  out->wait_timeouts = load(&s->wait_timeouts);
  out->busy = load(&s->busy);
  out->dns_lookups = load(&s->dns_lookups);
  out->dns_failures = load(&s->dns_failures);
  pthread_mutex_lock(&pool->lock);
  out->idle = pool->nidle;
  out->active = pool->nactive;
  out->destinations = pool->ndests;
  pthread_mutex_unlock(&pool->lock);
}

static void dest_stats(const dt__pdest_t *d, dt_pool_dest_stats_t *out) {
  out->idle = d->nidle;
  out->active = d->nactive;
  out->waiting = d->nwaiting;
}

dt_status_t dt_pool_get_dest_stats(dt_pool_t *pool, const char *host,
                                   uint16_t port, dt_pool_dest_stats_t *out) {
  if (pool == NULL || host == NULL || out == NULL) {
    return DT_EINVAL;
  }
  char key[DT__POOL_KEY_MAX];
  size_t keylen;
  dt_status_t st = dt__pool_key(host, port, key, &keylen);
  if (st != DT_OK) {
    return st;
  }
  memset(out, 0, sizeof(*out));
  pthread_mutex_lock(&pool->lock);
  const dt__pdest_t *d = dt__pool_dest_find(pool, key, keylen);
  if (d != NULL) {
    dest_stats(d, out);
  }
  pthread_mutex_unlock(&pool->lock);
  return DT_OK;
}

void dt_pool_list(dt_pool_t *pool,
                  void (*visit)(const char *key, const dt_pool_dest_stats_t *s,
                                void *ctx),
                  void *ctx) {
  if (pool == NULL || visit == NULL) {
    return;
  }
  pthread_mutex_lock(&pool->lock);
  dt__pdest_t *d, *tmp;
  HASH_ITER(hh, pool->dests, d, tmp) {
    dt_pool_dest_stats_t s;
    dest_stats(d, &s);
    visit(d->key, &s, ctx);
  }
  pthread_mutex_unlock(&pool->lock);
}

const char *dt_pool_check_tostr(dt_pool_check_t reason) {
  switch (reason) {
  case DT_POOL_CHECK_EOF:
    return "eof";
  case DT_POOL_CHECK_DATA:
    return "data";
  case DT_POOL_CHECK_ERROR:
    return "error";
  case DT_POOL_CHECK__COUNT:
    break;
  }
  return "?";
}

const char *dt_pool_evict_tostr(dt_pool_evict_t reason) {
  switch (reason) {
  case DT_POOL_EVICT_IDLE:
    return "idle";
  case DT_POOL_EVICT_LIFETIME:
    return "lifetime";
  case DT_POOL_EVICT_CAPACITY:
    return "capacity";
  case DT_POOL_EVICT_DNS:
    return "dns";
  case DT_POOL_EVICT__COUNT:
    break;
  }
  return "?";
}

const char *dt_pool_discard_tostr(dt_pool_discard_t reason) {
  switch (reason) {
  case DT_POOL_DISCARD_UNREUSABLE:
    return "unreusable";
  case DT_POOL_DISCARD_INPUT:
    return "input";
  case DT_POOL_DISCARD_OUTPUT:
    return "output";
  case DT_POOL_DISCARD_BROKEN:
    return "broken";
  case DT_POOL_DISCARD__COUNT:
    break;
  }
  return "?";
}
