#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "cache.h"
#include "dt_uthash.h"
#include "name.h"

/* ---- sharding -----------------------------------------------------------
 * The cache is split into up to 32 shards by the key's hash, each with its
 * own mutex, uthash table, LRU list, bounds and counters, so threads on
 * different names rarely meet on a lock and a hit touches no shared cache
 * line. The bounds are divided between the shards: no global counter is
 * written on a put, at the price of an LRU that is exact within a shard
 * only. Small caches get fewer shards so that each keeps enough entries
 * for its LRU to mean something (one shard below 64 entries: exact LRU). */
#define MAX_SHARDS 32
#define MIN_ENTRIES_PER_SHARD 32
#define MIN_BYTES_PER_SHARD 16384

#define US_PER_S 1000000u

#define DEFAULT_MAX_ENTRIES 10000
#define DEFAULT_POS_MAX_S 86400
#define DEFAULT_NEG_MAX_S 3600
#define DEFAULT_STALE_WINDOW_S 86400
#define DEFAULT_STALE_TTL_S 30

/* A key is the type and class (big-endian) followed by the normalised
 * name, without NUL: "A.Example." and "a.example" give the same bytes. */
#define KEY_HEAD 4

typedef struct {
  /* Room for the name, its NUL, and the trailing dot put adds. */
  uint8_t b[KEY_HEAD + DT_NAME_BUFSIZE + 1];
  size_t len; /* key bytes: KEY_HEAD + name length */
  unsigned hashv;
} ckey_t;

enum {
  E_NEGATIVE = 1u << 0,
  E_PREFETCHED = 1u << 1, /* prefetch_due already reported */
};

/* ---- entries --------------------------------------------------------------
 * One allocation per entry: this header, the dt_rr_t array (answer records
 * then authority), the key bytes, then strings and RDATA. The header keeps
 * only what an answer needs besides its records; a hit builds the
 * dt_answer_t on the reader's stack, which saves the 216 bytes of a stored
 * dt_answer_t (most of them the sockaddr of a server a hit does not have).
 * The key's name is stored with a trailing dot and NUL after the key bytes,
 * and any string of the answer equal to it or to a recent string is stored
 * once: qname, canonical name and owners are usually the same text. */
typedef struct entry {
  UT_hash_handle hh;
  struct entry *newer, *older; /* LRU list, newer toward the MRU end */
  uint64_t stored_us;
  uint32_t life_s; /* lifetime: the answer's TTL after the clamps */
  uint32_t size;   /* bytes of this allocation */
  uint32_t ttl;    /* the answer's own ttl field */
  uint32_t aflags; /* DT_FLAG_* */
  uint32_t qname_at, canonical_at; /* offsets in the block; 0 is NULL */
  uint16_t qtype, qclass, rcode;
  uint16_t nanswer, nauthority;
  uint8_t flags; /* E_* */
} entry_t;

struct rr_align {
  char c;
  dt_rr_t rr;
};

static size_t rrs_at(void) {
  size_t a = offsetof(struct rr_align, rr);
  return (sizeof(entry_t) + a - 1) / a * a;
}

static const dt_rr_t *entry_rrs(const entry_t *e) {
  return (const dt_rr_t *)((const uint8_t *)e + rrs_at());
}

static const char *entry_str(const entry_t *e, uint32_t at) {
  return at != 0 ? (const char *)e + at : NULL;
}

/* ---- the cache ------------------------------------------------------------
 */

typedef struct {
  pthread_mutex_t lock;
  entry_t *table;      /* uthash head */
  entry_t *mru, *lru;  /* LRU list ends */
  size_t count, bytes; /* bytes: the entries' blocks */
  size_t max_entries, max_bytes;
  uint64_t hits, misses, expired, evicted, stale_served;
} shard_t;

/* Shards sit on their own cache lines: a lock taken by one thread must not
 * slow the shard next to it. */
#define LINE 64
typedef union {
  shard_t s;
  char pad[(sizeof(shard_t) + LINE - 1) / LINE * LINE];
} slot_t;

struct dt_cache {
  dt_cache_config_t cfg;
  uint64_t window_us; /* stale window; 0 when serve-stale is off */
  unsigned nshards;
  slot_t *slots; /* aligned to LINE inside raw */
  void *raw;
  uint64_t coalesced; /* atomic: bumped by the resolver, not under a lock */
};

void dt__cache_config_init(dt_cache_config_t *c) {
  if (c == NULL) {
    return;
  }
  memset(c, 0, sizeof(*c));
  c->max_entries = DEFAULT_MAX_ENTRIES;
  c->pos_max_s = DEFAULT_POS_MAX_S;
  c->neg_max_s = DEFAULT_NEG_MAX_S;
  c->stale_window_s = DEFAULT_STALE_WINDOW_S;
  c->stale_ttl_s = DEFAULT_STALE_TTL_S;
}

/* The largest power of two of shards, up to MAX_SHARDS, that leaves each
 * shard at least MIN_ENTRIES_PER_SHARD entries and MIN_BYTES_PER_SHARD
 * bytes. */
static unsigned shard_count(size_t max_entries, size_t max_bytes) {
  unsigned n = 1;
  while (n < MAX_SHARDS && max_entries / (2 * n) >= MIN_ENTRIES_PER_SHARD &&
         (max_bytes == 0 || max_bytes / (2 * n) >= MIN_BYTES_PER_SHARD)) {
    n *= 2;
  }
  return n;
}

static shard_t *shard_at(const dt_cache_t *c, unsigned i) {
  return &c->slots[i].s;
}

static shard_t *shard_of(const dt_cache_t *c, unsigned hashv) {
  /* The high bits pick the shard; uthash picks buckets with the low ones. */
  return shard_at(c, (unsigned)(((uint64_t)hashv * c->nshards) >> 32));
}

dt_status_t dt__cache_new(const dt_cache_config_t *cfg, dt_cache_t **out) {
  if (out == NULL) {
    return DT_EINVAL;
  }
  dt_cache_config_t def;
  if (cfg == NULL) {
    dt__cache_config_init(&def);
    cfg = &def;
  }
  if (cfg->pos_min_s > cfg->pos_max_s || cfg->neg_min_s > cfg->neg_max_s) {
    return DT_EINVAL;
  }
  dt_cache_t *c = dt__calloc(1, sizeof(*c));
  if (c == NULL) {
    return DT_ENOMEM;
  }
  c->cfg = *cfg;
  if (c->cfg.max_entries == 0) {
    c->cfg.max_entries = DEFAULT_MAX_ENTRIES;
  }
  c->window_us =
      c->cfg.serve_stale ? (uint64_t)c->cfg.stale_window_s * US_PER_S : 0;
  c->nshards = shard_count(c->cfg.max_entries, c->cfg.max_bytes);
  c->raw = dt__calloc(1, (size_t)c->nshards * sizeof(slot_t) + LINE - 1);
  if (c->raw == NULL) {
    dt__free(c);
    return DT_ENOMEM;
  }
  uintptr_t p = ((uintptr_t)c->raw + LINE - 1) / LINE * LINE;
  c->slots = (slot_t *)p;
  for (unsigned i = 0; i < c->nshards; i++) {
    shard_t *s = shard_at(c, i);
    /* Spread the bounds so that the shards add up to them exactly. */
    s->max_entries = c->cfg.max_entries / c->nshards +
                     (i < c->cfg.max_entries % c->nshards ? 1 : 0);
    s->max_bytes = c->cfg.max_bytes / c->nshards;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
      while (i-- > 0) {
        pthread_mutex_destroy(&shard_at(c, i)->lock);
      }
      dt__free(c->raw);
      dt__free(c);
      return DT_ENOMEM;
    }
  }
  *out = c;
  return DT_OK;
}

/* ---- keys and time --------------------------------------------------------
 */

static dt_status_t key_make(ckey_t *k, const char *name, uint16_t type,
                            uint16_t qclass) {
  if (name == NULL) {
    return DT_EBADNAME;
  }
  char *out = (char *)k->b + KEY_HEAD;
  size_t len;
  /* DT_NAME_BUFSIZE holds every valid name: a failure is the name's.
   * Plain names take the normaliser's one-pass path. */
  if (dt_name_normalize(name, out, DT_NAME_BUFSIZE) != DT_OK) {
    return DT_EBADNAME;
  }
  len = strlen(out);
  k->b[0] = (uint8_t)(type >> 8);
  k->b[1] = (uint8_t)type;
  k->b[2] = (uint8_t)(qclass >> 8);
  k->b[3] = (uint8_t)qclass;
  k->len = KEY_HEAD + len;
  HASH_VALUE(k->b, k->len, k->hashv);
  return DT_OK;
}

static uint64_t elapsed_us(const entry_t *e, uint64_t now) {
  /* now may have been read just before another thread stored e. */
  return now > e->stored_us ? now - e->stored_us : 0;
}

static uint64_t life_us(const entry_t *e) {
  return (uint64_t)e->life_s * US_PER_S;
}

/* Past its lifetime and any stale window: never to be returned again. */
static bool entry_dead(const dt_cache_t *c, const entry_t *e, uint64_t now) {
  return elapsed_us(e, now) >= life_us(e) + c->window_us;
}

static uint32_t secs32(uint64_t us) {
  uint64_t s = us / US_PER_S;
  return s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
}

/* ---- shard lists (lock held) ------------------------------------------------
 */

static size_t table_bytes(const shard_t *s) {
  if (s->table == NULL) {
    return 0;
  }
  return sizeof(UT_hash_table) +
         (size_t)s->table->hh.tbl->num_buckets * sizeof(UT_hash_bucket);
}

/* What the shard holds: the entries and its hash table's own arrays. */
static size_t shard_bytes(const shard_t *s) {
  return s->bytes + table_bytes(s);
}

static void lru_unlink(shard_t *s, entry_t *e) {
  if (e->newer != NULL) {
    e->newer->older = e->older;
  } else {
    s->mru = e->older;
  }
  if (e->older != NULL) {
    e->older->newer = e->newer;
  } else {
    s->lru = e->newer;
  }
}

static void lru_push(shard_t *s, entry_t *e) {
  e->newer = NULL;
  e->older = s->mru;
  if (s->mru != NULL) {
    s->mru->newer = e;
  } else {
    s->lru = e;
  }
  s->mru = e;
}

static void lru_touch(shard_t *s, entry_t *e) {
  if (s->mru != e) {
    lru_unlink(s, e);
    lru_push(s, e);
  }
}

/* Takes e out of the shard and chains it on *doomed (through older), to be
 * freed once the lock is released. Deleting never allocates. */
static void entry_remove(shard_t *s, entry_t *e, entry_t **doomed) {
  HASH_DELETE(hh, s->table, e);
  lru_unlink(s, e);
  s->count--;
  s->bytes -= e->size;
  e->older = *doomed;
  *doomed = e;
}

static void free_chain(entry_t *e) {
  while (e != NULL) {
    entry_t *next = e->older;
    dt__free(e);
    e = next;
  }
}

/* ---- storing ----------------------------------------------------------------
 */

/* Places an entry's variable part; with base NULL it only measures. The
 * same calls in the same order give the same offsets both times. */
typedef struct {
  uint8_t *base;
  size_t at;
  /* Strings already placed (source text and offset), so that repeats are
   * stored once: slot 0 keeps the key's name, the others the latest. */
  const char *seen[4];
  size_t seen_at[4];
  size_t next_seen;
} layout_t;

static size_t place_bytes(layout_t *l, const void *b, size_t n) {
  size_t at = l->at;
  if (l->base != NULL && n > 0) {
    memcpy(l->base + at, b, n);
  }
  l->at += n;
  return at;
}

static uint32_t place_str(layout_t *l, const char *s) {
  if (s == NULL) {
    return 0;
  }
  for (size_t i = 0; i < 4; i++) {
    if (l->seen[i] != NULL && strcmp(l->seen[i], s) == 0) {
      return (uint32_t)l->seen_at[i];
    }
  }
  size_t at = place_bytes(l, s, strlen(s) + 1);
  l->seen[l->next_seen] = s;
  l->seen_at[l->next_seen] = at;
  l->next_seen = l->next_seen == 3 ? 1 : l->next_seen + 1;
  return (uint32_t)at;
}

/* Lays out a's records, the key (k->b with the name's trailing dot added
 * by the caller, fqdn_len bytes of name) and a's strings after the header
 * of e (NULL: measure only). Returns the entry's size. */
static size_t entry_layout(entry_t *e, const dt_answer_t *a, const ckey_t *k,
                           size_t fqdn_len) {
  layout_t l;
  memset(&l, 0, sizeof(l));
  l.base = (uint8_t *)e;
  size_t n = a->nanswer + a->nauthority;
  l.at = rrs_at() + n * sizeof(dt_rr_t);
  size_t key_at = place_bytes(&l, k->b, KEY_HEAD + fqdn_len + 1);
  l.seen[0] = (const char *)k->b + KEY_HEAD;
  l.seen_at[0] = key_at + KEY_HEAD;
  l.next_seen = 1;
  uint32_t qname_at = place_str(&l, a->qname);
  uint32_t canonical_at = place_str(&l, a->canonical);
  dt_rr_t *rrs = e != NULL ? (dt_rr_t *)(l.base + rrs_at()) : NULL;
  for (size_t i = 0; i < n; i++) {
    const dt_rr_t *rr =
        i < a->nanswer ? &a->answer[i] : &a->authority[i - a->nanswer];
    size_t rdata_at =
        rr->rdata != NULL ? place_bytes(&l, rr->rdata, rr->rdlength) : 0;
    uint32_t owner_at = place_str(&l, rr->owner);
    uint32_t data_at = place_str(&l, rr->data);
    if (rrs != NULL) {
      rrs[i] = *rr;
      rrs[i].rdata = rr->rdata != NULL ? l.base + rdata_at : NULL;
      rrs[i].owner = entry_str(e, owner_at);
      rrs[i].data = entry_str(e, data_at);
    }
  }
  if (e != NULL) {
    e->hh.key = l.base + key_at;
    e->qname_at = qname_at;
    e->canonical_at = canonical_at;
  }
  return l.at;
}

/* The lifetime an answer earns, 0 when it is not to be cached. */
static uint32_t lifetime(const dt_cache_config_t *cfg, const dt_answer_t *a,
                         bool *negative) {
  if ((a->flags & DT_FLAG_TC) != 0 || a->ttl == 0) {
    return 0;
  }
  uint32_t lo, hi;
  switch (dt_answer_status(a)) {
  case DT_OK:
    *negative = false;
    lo = cfg->pos_min_s;
    hi = cfg->pos_max_s;
    break;
  case DT_ENXDOMAIN:
  case DT_ENODATA:
    /* RFC 2308 §5: without the SOA there is no negative TTL. */
    if (a->nauthority == 0) {
      return 0;
    }
    *negative = true;
    lo = cfg->neg_min_s;
    hi = cfg->neg_max_s;
    break;
  default:
    return 0;
  }
  uint32_t t = a->ttl;
  t = t < lo ? lo : t;
  return t > hi ? hi : t;
}

dt_status_t dt__cache_put(dt_cache_t *c, const char *name, uint16_t type,
                          uint16_t qclass, const dt_answer_t *a,
                          dt_cache_put_t *what) {
  if (c == NULL || a == NULL) {
    return DT_EINVAL;
  }
  ckey_t k;
  if (key_make(&k, name, type, qclass) != DT_OK) {
    return DT_EBADNAME;
  }
  shard_t *s = shard_of(c, k.hashv);
  bool negative = false;
  uint32_t life = lifetime(&c->cfg, a, &negative);
  /* The name with a trailing dot is how owners and qnames are spelled, so
   * the copy kept for the key can stand for them too. */
  size_t fqdn_len = k.len - KEY_HEAD;
  if (fqdn_len != 1 || k.b[KEY_HEAD] != '.') {
    k.b[KEY_HEAD + fqdn_len++] = '.';
  }
  k.b[KEY_HEAD + fqdn_len] = '\0';
  size_t size = life != 0 ? entry_layout(NULL, a, &k, fqdn_len) : 0;
  /* A lone entry with an empty shard's table must fit in the shard. */
  size_t least_table =
      sizeof(UT_hash_table) + HASH_INITIAL_NUM_BUCKETS * sizeof(UT_hash_bucket);
  if (life == 0 || a->nanswer > UINT16_MAX || a->nauthority > UINT16_MAX ||
      size > UINT32_MAX ||
      (s->max_bytes > 0 && size + least_table > s->max_bytes)) {
    /* An older entry stays: it was valid for its own TTL, and a failed
     * refresh must not take it away. */
    if (what != NULL) {
      *what = DT_CACHE_NOT_CACHEABLE;
    }
    return DT_OK;
  }
  entry_t *e = dt__malloc(size);
  if (e == NULL) {
    return DT_ENOMEM;
  }
  memset(e, 0, sizeof(*e));
  entry_layout(e, a, &k, fqdn_len);
  e->life_s = life;
  e->size = (uint32_t)size;
  e->ttl = a->ttl;
  e->aflags = a->flags;
  e->qtype = a->qtype;
  e->qclass = a->qclass;
  e->rcode = (uint16_t)a->rcode;
  e->nanswer = (uint16_t)a->nanswer;
  e->nauthority = (uint16_t)a->nauthority;
  e->flags = negative ? E_NEGATIVE : 0;
  uint64_t now = dt__clock_us(&c->cfg.clock);
  e->stored_us = now;

  entry_t *doomed = NULL;
  pthread_mutex_lock(&s->lock);
  entry_t *old = NULL;
  HASH_FIND_BYHASHVALUE(hh, s->table, k.b, k.len, k.hashv, old);
  /* Added before the old entry goes: adding is the only step that can
   * fail, and if it does the shard is as it was. For a moment the table
   * holds the key twice; HASH_DELETE removes the old one by its handle. */
  HASH_ADD_KEYPTR_BYHASHVALUE(hh, s->table, e->hh.key, k.len, k.hashv, e);
  if (!DT_HASH_ADDED(e)) {
    pthread_mutex_unlock(&s->lock);
    dt__free(e);
    return DT_ENOMEM;
  }
  if (old != NULL) {
    entry_remove(s, old, &doomed);
  }
  lru_push(s, e);
  s->count++;
  s->bytes += size;
  while (s->count > s->max_entries ||
         (s->max_bytes > 0 && shard_bytes(s) > s->max_bytes)) {
    entry_t *victim = s->lru;
    if (victim == e) {
      break; /* only the new entry is left (its table grew past the bound) */
    }
    if (entry_dead(c, victim, now)) {
      s->expired++;
    } else {
      s->evicted++;
    }
    entry_remove(s, victim, &doomed);
  }
  pthread_mutex_unlock(&s->lock);
  free_chain(doomed);
  if (what != NULL) {
    *what = DT_CACHE_STORED;
  }
  return DT_OK;
}

/* ---- reading ----------------------------------------------------------------
 */

/* The answer as stored, built on the reader's stack around e's records. */
static void entry_view(const entry_t *e, bool stale, dt_answer_t *v) {
  const dt_rr_t *rrs = entry_rrs(e);
  /* Every field is set; of the server address, which a hit does not have,
   * only what says "none" (clearing all 128 bytes was a tenth of a hit). */
  v->server.ss_family = AF_UNSPEC;
  v->server_len = 0;
  v->transport = DT_TRANSPORT_UDP;
  v->qname = entry_str(e, e->qname_at);
  v->qtype = e->qtype;
  v->qclass = e->qclass;
  v->rcode = e->rcode;
  v->flags = e->aflags;
  v->canonical = entry_str(e, e->canonical_at);
  v->answer = e->nanswer > 0 ? rrs : NULL;
  v->nanswer = e->nanswer;
  v->authority = e->nauthority > 0 ? rrs + e->nanswer : NULL;
  v->nauthority = e->nauthority;
  v->ttl = e->ttl;
  v->from_cache = true;
  v->stale = stale;
}

static dt_cache_result_t
get_by_key(dt_cache_t *c, const ckey_t *kp, bool valid, bool allow_stale,
           bool count_miss, void (*visit)(const dt_cache_hit_t *hit, void *ctx),
           void *ctx) {
  shard_t *s = shard_of(c, valid ? kp->hashv : 0);
  uint64_t now = dt__clock_us(&c->cfg.clock);
  entry_t *doomed = NULL;
  dt_cache_result_t res = DT_CACHE_MISS;

  pthread_mutex_lock(&s->lock);
  entry_t *e = NULL;
  if (valid) {
    HASH_FIND_BYHASHVALUE(hh, s->table, kp->b, kp->len, kp->hashv, e);
  }
  if (e != NULL) {
    uint64_t el = elapsed_us(e, now);
    uint64_t life = life_us(e);
    dt_cache_hit_t hit;
    memset(&hit, 0, sizeof(hit));
    hit.elapsed_s = secs32(el);
    if (el < life) {
      /* Whole seconds elapsed come off the lifetime: remaining_s is at
       * least 1 until the lifetime is over to the microsecond. */
      hit.remaining_s = e->life_s - hit.elapsed_s;
      if (c->cfg.prefetch && (e->flags & E_PREFETCHED) == 0 &&
          (life - el) * 10 <= life) {
        hit.prefetch_due = true;
        e->flags |= E_PREFETCHED;
      }
      res = DT_CACHE_HIT;
      s->hits++;
    } else if (el - life < c->window_us) {
      if (allow_stale) {
        hit.remaining_s = c->cfg.stale_ttl_s;
        hit.stale = true;
        res = DT_CACHE_HIT_STALE;
        s->stale_served++;
      }
      /* Otherwise kept: a later look that allows stale answers may use
       * it. */
    } else {
      s->expired++;
      entry_remove(s, e, &doomed);
    }
    if (res != DT_CACHE_MISS) {
      lru_touch(s, e);
      if (visit != NULL) {
        dt_answer_t view;
        entry_view(e, hit.stale, &view);
        hit.answer = &view;
        visit(&hit, ctx);
      }
    }
  }
  if (res == DT_CACHE_MISS && !allow_stale && count_miss) {
    s->misses++;
  }
  pthread_mutex_unlock(&s->lock);
  free_chain(doomed);
  return res;
}

static dt_cache_result_t
cache_get(dt_cache_t *c, const char *name, uint16_t type, uint16_t qclass,
          bool allow_stale, bool count_miss,
          void (*visit)(const dt_cache_hit_t *hit, void *ctx), void *ctx) {
  if (c == NULL) {
    return DT_CACHE_MISS;
  }
  ckey_t k;
  bool valid = key_make(&k, name, type, qclass) == DT_OK;
  return get_by_key(c, &k, valid, allow_stale, count_miss, visit, ctx);
}

dt_cache_result_t
dt__cache_get(dt_cache_t *c, const char *name, uint16_t type, uint16_t qclass,
              bool allow_stale,
              void (*visit)(const dt_cache_hit_t *hit, void *ctx), void *ctx) {
  return cache_get(c, name, type, qclass, allow_stale, true, visit, ctx);
}

dt_cache_result_t
dt__cache_probe(dt_cache_t *c, const char *name, uint16_t type, uint16_t qclass,
                void (*visit)(const dt_cache_hit_t *hit, void *ctx),
                void *ctx) {
  return cache_get(c, name, type, qclass, false, false, visit, ctx);
}

dt_cache_result_t dt__cache_probe_normal(
    dt_cache_t *c, const char *norm, size_t len, uint16_t type, uint16_t qclass,
    void (*visit)(const dt_cache_hit_t *hit, void *ctx), void *ctx) {
  if (c == NULL || len == 0 || len >= DT_NAME_BUFSIZE) {
    return DT_CACHE_MISS;
  }
  ckey_t k;
  k.b[0] = (uint8_t)(type >> 8);
  k.b[1] = (uint8_t)type;
  k.b[2] = (uint8_t)(qclass >> 8);
  k.b[3] = (uint8_t)qclass;
  memcpy(k.b + KEY_HEAD, norm, len + 1);
  k.len = KEY_HEAD + len;
  HASH_VALUE(k.b, k.len, k.hashv);
  return get_by_key(c, &k, true, false, false, visit, ctx);
}

/* ---- maintenance ------------------------------------------------------------
 */

/* Removes every entry of the shard whose name (key bytes after the type
 * and class) is the name given, or every entry when name is NULL. */
static void shard_flush(shard_t *s, const char *name, size_t len) {
  entry_t *doomed = NULL;
  pthread_mutex_lock(&s->lock);
  entry_t *e = s->mru;
  while (e != NULL) {
    entry_t *next = e->older;
    if (name == NULL ||
        (e->hh.keylen == KEY_HEAD + len &&
         memcmp((const uint8_t *)e->hh.key + KEY_HEAD, name, len) == 0)) {
      entry_remove(s, e, &doomed);
    }
    e = next;
  }
  pthread_mutex_unlock(&s->lock);
  free_chain(doomed);
}

void dt__cache_flush(dt_cache_t *c, const char *name) {
  if (c == NULL) {
    return;
  }
  char norm[DT_NAME_BUFSIZE];
  if (name != NULL && dt_name_normalize(name, norm, sizeof(norm)) != DT_OK) {
    return; /* an invalid name has no entries */
  }
  /* A name's types hash to different shards: all are searched. */
  for (unsigned i = 0; i < c->nshards; i++) {
    shard_flush(shard_at(c, i), name != NULL ? norm : NULL,
                name != NULL ? strlen(norm) : 0);
  }
}

void dt__cache_free(dt_cache_t *c) {
  if (c == NULL) {
    return;
  }
  for (unsigned i = 0; i < c->nshards; i++) {
    shard_t *s = shard_at(c, i);
    shard_flush(s, NULL, 0);
    pthread_mutex_destroy(&s->lock);
  }
  dt__free(c->raw);
  dt__free(c);
}

void dt__cache_get_stats(dt_cache_t *c, dt_cache_stats_t *out) {
  if (c == NULL || out == NULL) {
    return;
  }
  memset(out, 0, sizeof(*out));
  for (unsigned i = 0; i < c->nshards; i++) {
    shard_t *s = shard_at(c, i);
    pthread_mutex_lock(&s->lock);
    out->hits += s->hits;
    out->misses += s->misses;
    out->expired += s->expired;
    out->evicted += s->evicted;
    out->stale_served += s->stale_served;
    out->entries += s->count;
    out->bytes += shard_bytes(s);
    pthread_mutex_unlock(&s->lock);
  }
  out->coalesced = __atomic_load_n(&c->coalesced, __ATOMIC_RELAXED);
}

void dt__cache_count_coalesced(dt_cache_t *c) {
  if (c != NULL) {
    __atomic_add_fetch(&c->coalesced, 1, __ATOMIC_RELAXED);
  }
}

void dt__cache_list(dt_cache_t *c,
                    void (*visit)(const dt_cache_entry_info_t *e, void *ctx),
                    void *ctx) {
  if (c == NULL || visit == NULL) {
    return;
  }
  char name[DT_NAME_BUFSIZE];
  uint64_t now = dt__clock_us(&c->cfg.clock);
  for (unsigned i = 0; i < c->nshards; i++) {
    shard_t *s = shard_at(c, i);
    pthread_mutex_lock(&s->lock);
    for (const entry_t *e = s->mru; e != NULL; e = e->older) {
      if (entry_dead(c, e, now)) {
        continue;
      }
      const uint8_t *key = e->hh.key;
      size_t len = e->hh.keylen - KEY_HEAD;
      memcpy(name, key + KEY_HEAD, len);
      name[len] = '\0';
      dt_cache_entry_info_t info;
      memset(&info, 0, sizeof(info));
      info.name = name;
      info.type = (uint16_t)(key[0] << 8 | key[1]);
      info.qclass = (uint16_t)(key[2] << 8 | key[3]);
      uint64_t el = elapsed_us(e, now);
      info.stale = el >= life_us(e);
      info.remaining_s =
          info.stale ? c->cfg.stale_ttl_s : e->life_s - secs32(el);
      info.negative = (e->flags & E_NEGATIVE) != 0;
      info.rcode = e->rcode;
      info.bytes = e->size;
      visit(&info, ctx);
    }
    pthread_mutex_unlock(&s->lock);
  }
}
