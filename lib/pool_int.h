/* The layout of a pool, its destinations and its connections: pool.c's,
 * shared with tests.
 *
 * Locking: the pool's lock guards the destination table, every list, every
 * count and each connection's idle flag, DNS fields and links. The
 * counters in st are updated with relaxed __atomic builtins, so the hit
 * path can count after it dropped the lock. A connection handed out is the
 * caller's: its other fields are touched only by the thread holding it. */
#ifndef DT_POOL_INT_H
#define DT_POOL_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addrsort.h"
#include "clock.h"
#include "conn_int.h"
#include "dialtone/name.h"
#include "dialtone/pool.h"
#include "dt_uthash.h"

/* A link of an intrusive, circular, doubly linked list; a list is a
 * sentinel link, empty when it points at itself. */
typedef struct dt__plink {
  struct dt__plink *prev, *next;
} dt__plink_t;

/* Addresses of one DNS answer a destination remembers: as many as a dial
 * can try. */
#define DT__POOL_DNS_MAX DT_DIAL_MAX_ATTEMPTS

typedef struct dt__pdest dt__pdest_t;

typedef struct dt__pconn {
  dt_conn_t c;       /* first: the dt_conn_t * callers hold points here */
  dt_pool_t *pool;   /* NULL once dt_pool_free detached it */
  dt__pdest_t *dest; /* NULL once detached or condemned */
  /* Idle: in dest->idle and pool->lru, most recently released first.
   * Handed out: by_pool is in pool->active (for dt_pool_free). Condemned:
   * by_pool is in a caller's local list of connections to close. */
  dt__plink_t by_dest;
  dt__plink_t by_pool;
  bool idle;
  dt_clock_t clock;       /* the pool's, kept for dt_pool_conn_get_info */
  uint64_t born_us;       /* when the dial returned */
  uint64_t idle_since_us; /* when it was last released */
  uint64_t idle_us;       /* how long it sat before the current hand-out */
  uint64_t uses;          /* hand-outs, the current one included */
  bool reused;            /* the current hand-out came from the idle list */
  struct sockaddr_storage peer;
  socklen_t peerlen;
  /* DNS coherence: the peer came from a DNS answer; dns_gen is the
   * generation of dest's answer it was last found in (0: never) and
   * dns_expiry_us when that answer expires. */
  bool dns_tracked;
  uint64_t dns_gen;
  uint64_t dns_expiry_us;
} dt__pconn_t;

struct dt__pdest {
  dt__plink_t idle; /* dt__pconn_t.by_dest, most recently released first */
  size_t nidle;
  size_t nactive;      /* handed out or dialing, including reservations */
  size_t nwaiting;     /* acquires waiting at the active limit */
  pthread_cond_t cond; /* signalled when nactive drops below the limit */
  /* DNS coherence: the latest answer seen for the name. dns_gen grows
   * whenever the address set changes. */
  bool dns_known;
  bool dns_checking; /* one acquire is looking the name up again */
  uint64_t dns_gen;
  uint64_t dns_expiry_us;
  size_t ndns;
  dt__ipaddr_t dns[DT__POOL_DNS_MAX];
  UT_hash_handle hh;
  size_t keylen;
  char key[]; /* "name#port", "[v6]#port" or "unix:/path", NUL-terminated */
};

struct dt_pool {
  dt_pool_opts_t o;
  dt_clock_t clock;
  dt_dialer_t *dialer;
  bool own_dialer;
  pthread_mutex_t lock;
  dt__pdest_t *dests; /* uthash, by key */
  dt__plink_t lru;    /* every idle connection: dt__pconn_t.by_pool */
  dt__plink_t active; /* connections handed out: dt__pconn_t.by_pool */
  size_t nidle;
  size_t nactive;
  size_t ndests;
  dt_pool_stats_t st; /* counters only; idle, active, destinations unused */
};

/* Room for a destination key: a normal-form name (the longest of the key
 * forms) and "#65535". */
#define DT__POOL_KEY_MAX (DT_NAME_BUFSIZE + 8)

/* Counts one event in p->st. */
#define POOL_STAT(p, field)                                                    \
  ((void)__atomic_fetch_add(&(p)->st.field, 1, __ATOMIC_RELAXED))

/* ---- lists (pool files only) ---- */

static inline void list_init(dt__plink_t *h) {
  h->prev = h;
  h->next = h;
}

static inline bool list_empty(const dt__plink_t *h) {
  return h->next == h;
}

static inline void list_push(dt__plink_t *h, dt__plink_t *l) {
  l->next = h->next;
  l->prev = h;
  h->next->prev = l;
  h->next = l;
}

static inline void list_del(dt__plink_t *l) {
  l->prev->next = l->next;
  l->next->prev = l->prev;
  l->prev = l;
  l->next = l;
}

static inline dt__pconn_t *by_dest(dt__plink_t *l) {
  return (dt__pconn_t *)(void *)((char *)l - offsetof(dt__pconn_t, by_dest));
}

static inline dt__pconn_t *by_pool(dt__plink_t *l) {
  return (dt__pconn_t *)(void *)((char *)l - offsetof(dt__pconn_t, by_pool));
}

/* ---- pool.c ---- */

/* The destination key of host and port into key (DT__POOL_KEY_MAX bytes):
 * Unix paths as given, IP literals in canonical text, names in normal
 * form. DT_OK; DT_EBADNAME; DT_ENAMETOOLONG; DT_EINVAL. */
dt_status_t dt__pool_key(const char *host, uint16_t port, char *key,
                         size_t *len);

/* The destination of a key, or NULL; under the lock. */
dt__pdest_t *dt__pool_dest_find(dt_pool_t *p, const char *key, size_t len);

/* Condemns an idle connection: out of the lists, onto doomed (to be
 * closed by dt__pool_close_all once the lock is dropped), its destination
 * forgotten if that was its last tie; under the lock. */
void dt__pool_evict(dt_pool_t *p, dt__pconn_t *c, dt_pool_evict_t why,
                    dt__plink_t *doomed);

/* Closes and frees the connections of a local list; without the lock. */
void dt__pool_close_all(dt__plink_t *doomed);

/* Milliseconds left until deadline on the pool's clock, for a blocking
 * call: -1 (the callee's own limit) when there is none. */
int dt__pool_left_ms(const dt_pool_t *p, dt_deadline_t deadline);

/* The free_fn of every pooled connection, which also identifies them. */
void dt__pool_conn_free(dt_conn_t *conn);

/* ---- pool_dns.c ---- */

/* Whether c's peer is in d's latest answer; under the lock. */
bool dt__pool_in_answer(const dt__pdest_t *d, const dt__pconn_t *c);

/* Looks host up again for d, whose dns_checking the caller set (and holds
 * a reservation of), and closes the idle connections the answer no longer
 * holds. Takes the lock itself; called without it. */
void dt__pool_dns_recheck(dt_pool_t *p, dt__pdest_t *d, const char *host,
                          dt_deadline_t deadline);

/* After a dial of c for d: learns the answer its address came from when it
 * came from DNS, marks c as followed, and condemns onto doomed the idle
 * connections of d the answer no longer holds. Takes the lock itself;
 * called without it. */
void dt__pool_dns_learn(dt_pool_t *p, dt__pdest_t *d, dt__pconn_t *c,
                        const char *host, const dt_dial_report_t *rep,
                        dt_deadline_t deadline, dt__plink_t *doomed);

#endif
