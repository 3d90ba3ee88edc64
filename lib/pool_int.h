/* The layout of a pool, its destinations and its connections, and the
 * acquire state machine: shared by the pool's files and tests.
 *
 * Locking: the pool's lock guards the destination table, every list, every
 * count and each connection's idle flag, DNS fields and links. The
 * counters in st are updated with relaxed __atomic builtins, so the hit
 * path can count after it dropped the lock. A connection handed out is the
 * caller's: its other fields are touched only by the thread holding it.
 * The only system calls made under the lock are on a destination's
 * eventfd, once acquires have waited at its active limit: the write or
 * read that keeps it in step with its waiters, and its close when the
 * destination is forgotten. None of them blocks. */
#ifndef DT_POOL_INT_H
#define DT_POOL_INT_H

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "addrsort.h"
#include "clock.h"
#include "conn_int.h"
#include "dial_int.h"
#include "dialtone/name.h"
#include "dialtone/pool.h"
#include "dt_uthash.h"
#include "opreg.h"

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
  size_t nactive;  /* handed out or dialing, including reservations */
  size_t nwaiting; /* acquires waiting at the active limit */
  /* Waiters poll this eventfd (-1 until the first waiter comes): it is
   * readable exactly while a waiter can take a slot (nwaiting > 0 and
   * nactive below the limit). efd_ready says whether its count is 1. */
  int efd;
  bool efd_ready;
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
  dt__opreg_t opreg;  /* event-loop acquires started on the pool */
};

/* Room for a destination key: a normal-form name (the longest of the key
 * forms) and "#65535". */
#define DT__POOL_KEY_MAX (DT_NAME_BUFSIZE + 8)

/* Most expired connections one acquire or release closes in passing: a
 * burst of expiries is spread over calls instead of stalling one (the rest
 * are found when popped, or by dt_pool_prune). */
#define DT__POOL_REAP_BATCH 8

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

/* Finds or makes the destination of a key; under the lock. DT_OK;
 * DT_ENOMEM. */
dt_status_t dt__pool_dest_get(dt_pool_t *p, const char *key, size_t len,
                              dt__pdest_t **out);

/* Forgets d if nothing refers to it any more (no idle or active
 * connection, reservation, waiter or DNS check); under the lock. Whatever
 * holds one of those may keep its pointer to d across unlocks. */
void dt__pool_dest_maybe_free(dt_pool_t *p, dt__pdest_t *d);

/* Condemns an idle connection: out of the lists, onto doomed (to be
 * closed by dt__pool_close_all once the lock is dropped), its destination
 * forgotten if that was its last tie; under the lock. */
void dt__pool_evict(dt_pool_t *p, dt__pconn_t *c, dt_pool_evict_t why,
                    dt__plink_t *doomed);

/* Evicts up to max connections idle past the timeout, oldest first; under
 * the lock. Returns how many. */
size_t dt__pool_reap(dt_pool_t *p, uint64_t now, size_t max,
                     dt__plink_t *doomed);

/* The most recently released usable idle connection of d, moved to the
 * active list, or NULL; expired ones met on the way go to doomed. d must
 * hold a reservation. Under the lock. */
dt__pconn_t *dt__pool_pop(dt_pool_t *p, dt__pdest_t *d, uint64_t now,
                          dt__plink_t *doomed);

/* Gives a handed-out connection (in the active list) back: kept idle or
 * closed by the pool's rules, its reservation freed. Takes the lock
 * itself. DT_OK; DT_EINVAL when it is not handed out. */
dt_status_t dt__pool_give_back(dt_pool_t *p, dt__pconn_t *c, bool reusable);

/* Closes and frees one connection that is in no list; without the
 * lock. */
void dt__pool_conn_destroy(dt__pconn_t *c);

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

/* Starts looking host up for DNS coherence, as dt_resolver_lookup_addrs
 * would with the dialer's resolver and family and the time left until
 * deadline. True when the answer is in already (a literal, the hosts file,
 * the cache, or a failure to start): *st says how, and on DT_OK addrs
 * (room for DT__POOL_DNS_MAX) and *n hold it; l holds nothing. False: l
 * runs; once l->done, dt__pool_dns_finish gives the answer. */
bool dt__pool_dns_start(dt_pool_t *p, const char *host, dt_deadline_t deadline,
                        dt_lookup_t *l, dt_addr_t *addrs, size_t *n,
                        dt_status_t *st);

/* The answer of a lookup that is done, as dt__pool_dns_start gives it;
 * cleans l up. */
void dt__pool_dns_finish(dt_lookup_t *l, dt_addr_t *addrs, size_t *n,
                         dt_status_t *st);

/* Applies the answer of a recheck of d, whose dns_checking the caller set:
 * clears it, records the answer and closes the idle connections it no
 * longer holds. Takes the lock itself. */
void dt__pool_dns_recheck_done(dt_pool_t *p, dt__pdest_t *d, dt_status_t st,
                               const dt_addr_t *addrs, size_t n);

/* Whether the dial that made a connection reached an address from DNS,
 * which DNS coherence then follows. */
bool dt__pool_dns_followed(const dt_dial_report_t *rep);

/* After a dial of c for d whose address DNS gave: applies the answer it
 * came from (when st is DT_OK), marks c as followed, and closes the idle
 * connections of d the answer no longer holds. Takes the lock itself. */
void dt__pool_dns_learn_done(dt_pool_t *p, dt__pdest_t *d, dt__pconn_t *c,
                             dt_status_t st, const dt_addr_t *addrs, size_t n);

/* ---- pool_acquire.c: the acquire machine ---- */

/* Makes d->efd say whether a waiter can take a slot now; under the lock,
 * after any change of d->nwaiting or d->nactive while waiters exist. */
void dt__pool_wake_sync(const dt_pool_t *p, dt__pdest_t *d);

/* Frees one reservation of d and wakes the waiters; under the lock.
 * Inline: every release runs it. */
static inline void dt__pool_slot_free(dt_pool_t *p, dt__pdest_t *d) {
  d->nactive--;
  p->nactive--;
  if (d->nwaiting > 0) {
    dt__pool_wake_sync(p, d);
  }
}

/* What an acquire is doing. Each state holds something of the pool,
 * which dt__pacq_cleanup gives back. */
typedef enum {
  /* At the active limit: counted in d->nwaiting, polling d->efd. */
  DT__PACQ_WAIT,
  /* DNS coherence: a reservation, d->dns_checking set, the lookup. */
  DT__PACQ_RECHECK,
  /* A reservation, c allocated (not yet a connection), the dial. */
  DT__PACQ_DIAL,
  /* After the dial, the answer its address came from: c (connected, in
   * the active list, holding the reservation), the lookup. */
  DT__PACQ_LEARN,
  /* Finished: c (as in LEARN) until taken, or nothing. */
  DT__PACQ_DONE,
} dt__pacq_state_t;

/* One dt_pool_acquire as a state machine, shaped like the dialer's
 * (dial_int.h): it says which descriptors it waits on and its next
 * deadline, and advances when poll() reports readiness or the deadline
 * passes. Used by one thread at a time; the pool it runs on stays shared.
 * Large (a dial and a lookup): allocate it, or keep it on a stack. */
typedef struct {
  dt_pool_t *p;
  dt__pdest_t *d; /* kept alive by what the state holds */
  dt__pacq_state_t state;
  uint16_t port;
  dt_deadline_t deadline; /* on the pool's clock */
  bool done;
  dt_status_t status; /* once done */
  dt__pconn_t *c;     /* see the states */
  bool reused;        /* c came from the idle list */
  /* Below: storage written before it is read, so a start (and an idle
   * hit) does not clear it. */
  char host[DT_NAME_BUFSIZE]; /* copied when the machine outlives start */
  union {
    dt_lookup_t lookup; /* RECHECK, LEARN */
    dt__dial_t dial;    /* DIAL */
  } u;
} dt__pacq_t;

/* Room dt__pacq_pollfds needs: a dial's (the most of any state). */
#define DT__PACQ_MAX_POLLFDS DT__DIAL_MAX_POLLFDS

/* Starts an acquire: an idle connection that passes the health check
 * finishes it here, without waiting; else it waits at the active limit,
 * looks the name up again (DNS coherence) or dials. On DT_OK the machine
 * runs, possibly already done, and must be finished with
 * dt__pacq_cleanup(); failures that come later, DT_EBUSY included, are
 * its status. Else (DT_EINVAL, DT_EBADNAME, DT_ENAMETOOLONG, DT_ENOMEM,
 * DT_EMFILE when waiting needs a descriptor) it holds nothing. host is
 * copied. */
dt_status_t dt__pacq_start(dt__pacq_t *m, dt_pool_t *p, const char *host,
                           uint16_t port, int timeout_ms);
/* Fills pfd (room for DT__PACQ_MAX_POLLFDS) with what the machine waits
 * on; returns how many (0 once done). While waiting at the active limit it
 * is the destination's eventfd (POLLIN, level-triggered): the pool's, not
 * the machine's, shared by every machine waiting there, and left open when
 * the machine moves on. */
size_t dt__pacq_pollfds(const dt__pacq_t *m, struct pollfd *pfd);
/* The next time the machine must run even if no descriptor is ready: on
 * the pool's clock while waiting, the resolver's during a lookup, the
 * dialer's during the dial (one clock, unless a program gives them
 * different ones). */
dt_deadline_t dt__pacq_deadline(const dt__pacq_t *m);
/* Advances with poll()'s results (n 0, or revents all 0, when only time
 * passed). */
void dt__pacq_process(dt__pacq_t *m, const struct pollfd *pfd, size_t n);
/* Once done: DT_OK hands the connection over (*conn), owned by the caller
 * as dt_pool_acquire's; else the acquire's status (DT_EINVAL when not
 * done or already taken). */
dt_status_t dt__pacq_take(dt__pacq_t *m, dt_conn_t **conn);
/* Gives back whatever the machine holds, in any state: the wait, the
 * reservation, d->dns_checking, a dial in progress (closed), and a
 * connection not taken (kept idle or closed by the pool's rules). Call it
 * before dt_pool_free() for machines still running. Calling it again does
 * nothing. */
void dt__pacq_cleanup(dt__pacq_t *m);

#endif
