/* The TTL-honouring answer cache: positive and negative answers keyed by
 * normalised name, type and class, bounded by entries and bytes with LRU
 * eviction, sharded locks, optional serve-stale. The cache never does I/O
 * and never calls out while holding a lock except to the visitor of
 * dt__cache_get, which must only copy. */
#ifndef DT_CACHE_H
#define DT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "dialtone/resolver.h"

typedef struct dt_cache dt_cache_t;

typedef struct {
  size_t max_entries;            /* default 10000; 0 means the default */
  size_t max_bytes;              /* 0: no byte limit */
  uint32_t pos_min_s, pos_max_s; /* clamps, default 0 / 86400 */
  uint32_t neg_min_s, neg_max_s; /* clamps, default 0 / 3600 */
  bool serve_stale;              /* default false */
  uint32_t stale_window_s;       /* how long past expiry, default 86400 */
  uint32_t stale_ttl_s;          /* TTL a stale answer is served with, 30 */
  bool prefetch;                 /* default false */
  dt_clock_t clock;              /* zero: the system's monotonic clock */
} dt_cache_config_t;

void dt__cache_config_init(dt_cache_config_t *c);

/* DT_OK, DT_EINVAL (a min clamp above its max), DT_ENOMEM. */
dt_status_t dt__cache_new(const dt_cache_config_t *c, dt_cache_t **out);
void dt__cache_free(dt_cache_t *c);

/* What the cache did with an answer. */
typedef enum {
  DT_CACHE_STORED = 0,
  DT_CACHE_NOT_CACHEABLE, /* TTL 0, SERVFAIL/REFUSED/other rcodes, TC set,
                             negative without SOA */
} dt_cache_put_t;

/* Stores a copy of an answer under (name, type, class); name is any valid
 * presentation name ("A.Example." and "a.example" are one key). Lifetime:
 * positive answers a->ttl (the smallest TTL of the chain, as parsed),
 * negative answers (NXDOMAIN or NODATA) a->ttl when the answer carries an
 * SOA (a->nauthority > 0, RFC 2308), clamped by the config. Replaces an
 * older entry of the same key. Evicts least recently used entries to stay
 * within the bounds. *what (may be NULL) says whether it was stored.
 * DT_OK, DT_EBADNAME, DT_ENOMEM (the cache is unchanged). */
dt_status_t dt__cache_put(dt_cache_t *c, const char *name, uint16_t type,
                          uint16_t qclass, const dt_answer_t *a,
                          dt_cache_put_t *what);

/* A hit as the visitor sees it. The answer is the stored one, with the
 * TTLs it was stored with; remaining_s is what a reader must be told
 * (already the stale TTL when stale). */
typedef struct {
  const dt_answer_t *answer;
  uint32_t remaining_s;
  uint32_t elapsed_s; /* seconds since it was stored, for aging records */
  bool stale;
  bool prefetch_due; /* first hit in the last 10% of the TTL (prefetch on) */
} dt_cache_hit_t;

typedef enum {
  DT_CACHE_MISS = 0,
  DT_CACHE_HIT,
  DT_CACHE_HIT_STALE,
} dt_cache_result_t;

/* Looks up a key. On a fresh hit (or a stale one when allow_stale and
 * serve-stale is on and the entry is within its window) calls visit once,
 * under the shard's lock: visit must only copy, never call back into the
 * cache. Makes the entry most recently used. Expired entries past any
 * stale window are reclaimed here. Never allocates, no system call beyond
 * the clock. */
dt_cache_result_t
dt__cache_get(dt_cache_t *c, const char *name, uint16_t type, uint16_t qclass,
              bool allow_stale,
              void (*visit)(const dt_cache_hit_t *hit, void *ctx), void *ctx);

/* dt__cache_get without stale answers, for a fast path that falls back to
 * the full query machine on a miss: a hit counts as usual, a miss does
 * not, since the machine looks again and counts it then. */
dt_cache_result_t
dt__cache_probe(dt_cache_t *c, const char *name, uint16_t type, uint16_t qclass,
                void (*visit)(const dt_cache_hit_t *hit, void *ctx), void *ctx);
/* dt__cache_probe for a name already in normal form (dt_name_normalize),
 * len its length: skips folding the key, the larger part of a hit's cost. */
dt_cache_result_t dt__cache_probe_normal(
    dt_cache_t *c, const char *norm, size_t len, uint16_t type, uint16_t qclass,
    void (*visit)(const dt_cache_hit_t *hit, void *ctx), void *ctx);

/* Removes every entry (name NULL) or every entry of one name (any type). */
void dt__cache_flush(dt_cache_t *c, const char *name);

/* dt_cache_stats_t is the public struct of dialtone/resolver.h. */

void dt__cache_get_stats(dt_cache_t *c, dt_cache_stats_t *out);
/* get counts hits, misses (only when allow_stale is false: the second,
 * stale-allowed look after a failure is not a new miss) and stale_served.
 * The resolver counts the questions that waited for another's query. */
void dt__cache_count_coalesced(dt_cache_t *c);

/* Visits every live entry (fresh, or stale within the window), one shard
 * lock at a time; visit must only copy. name is the normalised key. */
/* The public dt_cache_entry_t of dialtone/resolver.h. */
typedef dt_cache_entry_t dt_cache_entry_info_t;

void dt__cache_list(dt_cache_t *c,
                    void (*visit)(const dt_cache_entry_info_t *e, void *ctx),
                    void *ctx);

#endif
