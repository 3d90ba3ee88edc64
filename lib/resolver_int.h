/* Resolver internals shared with the dialer and tests: the per-question
 * state machine and the address-lookup machine built from two of them.
 * Machines say which descriptor they wait on and their next deadline, and
 * advance when poll() reports readiness or the deadline passes. */
#ifndef DT_RESOLVER_INT_H
#define DT_RESOLVER_INT_H

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache.h"
#include "clock.h"
#include "conf.h"
#include "dt_uthash.h"
#include "dialtone/resolver.h"
#include "opreg.h"
#include "transport.h"

typedef struct {
  struct sockaddr_storage addr;
  socklen_t len;
  /* Guarded by the resolver's lock. A server that timed out or failed at
   * the network level sorts behind the others until penalty_until. */
  uint64_t penalty_until_us;
  uint32_t failures;
} dt_server_t;

/* Internal question flag: skip the cache when reading, fill it as usual. */
#define DT__QUERY_REFRESH (1u << 15)
#define DT_PREFETCH_SLOTS 4

/* A question on the wire that identical questions wait for instead of
 * sending their own (coalescing). Guarded by the resolver's flight_lock;
 * freed when the last of leader and waiters lets go. */
typedef struct dt_flight {
  uint8_t key[2 + DT_NAME_BUFSIZE]; /* type, then the normalised name */
  size_t keylen;
  int refs;
  bool done;
  dt_answer_t *answer; /* the leader's reply, for waiters (may be NULL) */
  int pipe[2];         /* made when the first waiter comes; -1 before */
  UT_hash_handle hh;
} dt_flight_t;

/* Idle connected UDP sockets kept per server; taken LIFO so the ones
 * in use stay few and warm. A socket retires after DT__UDP_MAX_USES
 * questions or DT__UDP_MAX_AGE_US so that its source port, the spoofer's
 * other unknown besides the ID, keeps changing (SECURITY.md). */
#define DT__UDP_IDLE_MAX 64
#define DT__UDP_MAX_USES 64
#define DT__UDP_MAX_AGE_US (30u * 1000000u)

typedef struct {
  int fd;
  uint32_t uses;
  uint64_t born_us;
} dt__udp_idle_t;

typedef struct {
  dt__udp_idle_t idle[DT__UDP_IDLE_MAX];
  size_t n;
} dt__udp_pool_t;

struct dt_resolver {
  dt_clock_t clock;
  dt_server_t servers[DT_CONF_MAX_SERVERS];
  size_t nservers;
  char (*search)[DT_NAME_BUFSIZE];
  size_t nsearch;
  int timeout_ms;
  int attempts;
  int ndots;
  int penalty_ms;
  bool rotate;
  bool edns;
  bool dns0x20;         /* random case in questions, exact case in replies */
  unsigned rotate_next; /* atomic */
  pthread_mutex_t lock; /* servers' penalties */

  char *hosts_path; /* NULL: no hosts file */
  dt_hosts_t *hosts;
  pthread_rwlock_t hosts_lock;
  pthread_mutex_t hosts_reload;
  uint64_t hosts_checked_ms; /* atomic */
  struct {
    long long mtime_ns;
    unsigned long long ino, dev;
    long long size;
    bool exists;
  } hosts_id;

  dt_cache_t *cache; /* NULL when caching is off */
  /* Refresh queries started by hits near expiry (prefetch); advanced with
   * a zero-timeout poll by whichever call comes next. */
  pthread_mutex_t prefetch_lock;
  struct dt_rquery *prefetch[DT_PREFETCH_SLOTS];
  unsigned prefetching; /* atomic: slots in use */
  pthread_mutex_t flight_lock;
  dt_flight_t *flights;

  /* Idle UDP sockets by server index (udpidle.c), guarded by udp_lock;
   * udp_opened counts sockets made, atomically. */
  pthread_mutex_t udp_lock;
  dt__udp_pool_t *udp; /* DT_CONF_MAX_SERVERS pools */
  uint64_t udp_opened;
  unsigned udp_users;  /* atomic: lookups running (dt__udp_hold) */
  dt_ex_counters_t ex; /* updated by exchanges, atomically */
  uint64_t timeouts, failovers, truncated, edns_fallbacks, hosts_hits;
  uint64_t udp_pairs; /* both questions of a lookup left in one sendmmsg */
  /* Event-loop operations started on the resolver (loop_ops.c), ended
   * with DT_ECANCELED when it is freed. */
  dt__opreg_t opreg;
};

/* A UDP socket both questions of an address lookup send on while they ask
 * the same server, as glibc does: one socket, connect and close instead of
 * two. The lookup owns and reads it, and delivers each reply to the
 * question it matches. It comes from the resolver's idle sockets when one
 * is there (udpidle.c) and goes back to them when the lookup ends clean. */
typedef struct {
  int fd;           /* -1 until a question takes one */
  size_t server;    /* index of the server it is connected to */
  uint32_t uses;    /* questions ever sent on it, this lookup's included */
  uint64_t born_us; /* opened at, on the resolver's clock */
  unsigned sent;    /* this lookup's questions sent on it */
  unsigned replied; /* replies it delivered to them */
  /* It saw a datagram it could not place, an error, or a question moved
   * to TCP: whatever it holds or may still receive is not ours to hand
   * to the next lookup. */
  bool dirty;
  /* While defer is set, questions that reach the socket only prepare their
   * query and wait in held[] for dt__share_flush to send them together:
   * one system call, one wake-up of a server on the same CPU, instead of
   * one per question. */
  bool defer;
  size_t nheld;
  struct dt_rquery *held[DT_EX_BATCH_MAX];
} dt_udp_share_t;

/* The names a query tries, in order (glibc's res_search): "as-is" first
 * when the name has at least ndots dots, then each search domain, then
 * as-is if not yet tried; an absolute name only as-is. */
#define DT_MAX_CANDIDATES (DT_CONF_MAX_SEARCH + 1)

typedef struct dt_rquery {
  dt_resolver_t *r;
  uint16_t qtype;
  unsigned flags;
  char name[DT_NAME_BUFSIZE];  /* as given, validated */
  int cand[DT_MAX_CANDIDATES]; /* -1 as-is, k: search[k] */
  size_t ncand, icand;
  char qname[DT_NAME_BUFSIZE]; /* the candidate being asked */

  size_t order[DT_CONF_MAX_SERVERS];
  size_t norder;
  size_t tryno, ntries;
  bool no_edns[DT_CONF_MAX_SERVERS];
  bool edns_sent;
  bool tcp;
  uint8_t query[DT_WIRE_QUERY_MAX];
  size_t qlen;
  uint16_t id;
  bool active;
  size_t server; /* index into r->servers of the current try */
  dt_deadline_t try_deadline;
  dt_deadline_t deadline;
  dt_udp_share_t *share; /* the lookup's shared UDP socket, or NULL */
  dt_flight_t *flight;   /* the flight led or waited for */
  bool waiting;          /* waiting for another question's flight */

  bool done;
  dt_status_t status; /* when done: DT_OK with best set, or why not */
  dt_answer_t *best;  /* owned until taken */
  int best_rank;
  dt_answer_t *cand_fail; /* SERVFAIL-like reply of this candidate */
  /* Last: dt__rquery_start zeroes everything before it, not its 4 KB
   * receive buffer. */
  dt_exchange_t ex;
} dt_rquery_t;

/* Starts a question. On DT_OK the machine runs (possibly already done) and
 * must be finished with dt__rquery_cleanup. */
dt_status_t dt__rquery_start(dt_rquery_t *q, dt_resolver_t *r, const char *name,
                             uint16_t qtype, unsigned flags,
                             dt_deadline_t deadline, dt_udp_share_t *share);
/* Sends the questions held by sh (see dt_udp_share_t.defer) and ends the
 * deferral. A question whose send fails goes on as if its send had failed
 * at its start: the next server, or finished. */
void dt__share_flush(dt_udp_share_t *sh);
/* True when the question waits for a reply on the shared socket. */
bool dt__rquery_on_share(const dt_rquery_t *q);
/* A datagram from the shared socket, if it answers this question: true when
 * it was taken (*why is set to the mismatch otherwise). */
bool dt__rquery_offer_datagram(dt_rquery_t *q, const uint8_t *pkt, size_t len,
                               bool truncated, dt_match_t *why);
/* The shared socket failed (ICMP unreachable, ...) for this question. */
void dt__rquery_share_failed(dt_rquery_t *q, dt_status_t st);
/* The descriptor the machine waits on, or -1. */
int dt__rquery_fd(const dt_rquery_t *q);
/* Fills pfd when the machine waits on a descriptor; false when done. */
bool dt__rquery_pollfd(const dt_rquery_t *q, struct pollfd *pfd);
dt_deadline_t dt__rquery_deadline(const dt_rquery_t *q);
/* Advances with the revents of its descriptor (0 when only time passed). */
void dt__rquery_process(dt_rquery_t *q, short revents);
/* Takes the answer of a finished machine (DT_OK) or its status. */
dt_status_t dt__rquery_take(dt_rquery_t *q, dt_answer_t **out);
void dt__rquery_cleanup(dt_rquery_t *q);

/* The candidate names of a question (see above); cand has room for
 * DT_MAX_CANDIDATES. */
size_t dt__candidates(const dt_resolver_t *r, const char *name, unsigned flags,
                      int *cand);
dt_status_t dt__candidate_name(const dt_resolver_t *r, const char *name,
                               int cand, char *out, size_t outlen);

/* An address lookup: AAAA (q[0]) and A (q[1]) for one candidate name at a
 * time, both in flight together. The dialer watches q[] to start
 * connecting on the first family's answer. */
typedef struct {
  dt_resolver_t *r;
  int family;
  unsigned flags;
  char name[DT_NAME_BUFSIZE];
  int cand[DT_MAX_CANDIDATES];
  size_t ncand, icand;
  bool used[2];
  dt_answer_t *answers[2]; /* positive answers of the settled candidate */
  dt_deadline_t deadline;
  bool nodata, nxdomain;
  dt_status_t fail;
  bool done;
  dt_status_t status;
  dt_udp_share_t share;
  bool udp_held; /* counted in the resolver's udp_users */
  /* Last: set up by dt__rquery_start, not zeroed with the rest. */
  dt_rquery_t q[2];
} dt_lookup_t;

dt_status_t dt__lookup_start(dt_lookup_t *l, dt_resolver_t *r, const char *name,
                             int family, unsigned flags,
                             dt_deadline_t deadline);
/* Fills up to 2 pollfds (each question waits on one descriptor at most,
 * the shared socket counted once); returns how many. */
size_t dt__lookup_pollfds(const dt_lookup_t *l, struct pollfd *pfd);
dt_deadline_t dt__lookup_deadline(const dt_lookup_t *l);
void dt__lookup_process(dt_lookup_t *l, const struct pollfd *pfd, size_t n);
bool dt__lookup_done_questions(const dt_lookup_t *l);
void dt__lookup_cleanup(dt_lookup_t *l);
/* For the dialer (RFC 8305 §3): true once the family's question for the
 * current candidate name has finished, with its addresses (*st DT_OK) or
 * why not. Before l->done a negative result is not final: the search list
 * may still find the name elsewhere. After l->done it is. No allocation;
 * addresses carry their TTLs. */
/* Drives a lookup with poll() until it is done; returns its status. */
dt_status_t dt__lookup_run(dt_lookup_t *l);
bool dt__lookup_peek(const dt_lookup_t *l, int family, dt_addr_t *addrs,
                     size_t max, size_t *n, dt_status_t *st);
/* Starts a refresh of (name, type) in a free prefetch slot, if any. */
void dt__prefetch_start(dt_resolver_t *r, const char *name, uint16_t type);
/* Advances refresh queries without waiting; cheap when there are none. */
void dt__prefetch_poll(dt_resolver_t *r);
/* Turns a copy of a cached answer into what a reader sees: remaining TTLs,
 * from_cache and stale set, no server. */
void dt__answer_from_hit(dt_answer_t *a, const dt_cache_hit_t *hit);
/* What dt_resolver_lookup_addrs consults before DNS, for the dialer, which
 * drives the DNS part itself: an IP literal (DT__PRE_LITERAL, its address
 * when it is of the family asked), else the hosts file (DT__PRE_HOSTS, IPv6
 * first, counted as a hosts hit), else DT__PRE_NONE: ask DNS. host must be
 * a valid name or literal. No I/O beyond the hosts file's reload check. */
typedef enum {
  DT__PRE_NONE = 0,
  DT__PRE_LITERAL,
  DT__PRE_HOSTS,
} dt__pre_t;
dt__pre_t dt__resolver_hosts_or_literal(dt_resolver_t *r, const char *host,
                                        int family, dt_addr_t *addrs,
                                        size_t max, size_t *n);
/* Writes the A/AAAA records of an answer as addresses; returns how many. */
size_t dt__answer_addrs(const dt_answer_t *a, dt_addr_t *addrs, size_t max);
/* The addresses of a finished lookup, IPv6 first; returns how many. */
size_t dt__lookup_addrs(const dt_lookup_t *l, dt_addr_t *addrs, size_t max);

/* What an address lookup does before DNS, for dt_resolver_lookup_addrs()
 * and dt_resolve_start() alike: advances prefetches, then answers an IP
 * literal, a hosts-file name or a name whose questions are all cached
 * (unless flags say DT_QUERY_NOCACHE), without allocating. */
typedef enum {
  DT__RESOLVE_FAIL = 0, /* bad input: *st says why (DT_EBADNAME) */
  DT__RESOLVE_DONE,     /* answered: *st, and addrs and *count on DT_OK */
  DT__RESOLVE_ASK,      /* ask DNS: start a dt_lookup_t */
} dt__resolve_pre_t;
dt__resolve_pre_t dt__resolve_pre(dt_resolver_t *r, const char *host,
                                  int family, unsigned flags, dt_addr_t *addrs,
                                  size_t max, size_t *count, dt_status_t *st);
/* The overall deadline of a call given timeout_ms (negative: none beyond
 * the resolver's tries). */
dt_deadline_t dt__resolver_deadline(const dt_resolver_t *r, int timeout_ms);
/* The start of dt_resolver_query() and dt_query_start(): advances
 * prefetches and starts the question (see dt__rquery_start). */
dt_status_t dt__query_begin(dt_rquery_t *q, dt_resolver_t *r, const char *name,
                            uint16_t type, unsigned flags, int timeout_ms);

/* udpidle.c: the lookup's shared socket for server, idle or new (counted
 * in udp_opened); sh is reset for this lookup. DT_OK, or why socket() or
 * connect() failed. */
dt_status_t dt__udp_take(dt_resolver_t *r, size_t server, dt_udp_share_t *sh);
/* Ends the lookup's hold on sh's socket: kept idle when the lookup used it
 * clean (every question sent got its reply, nothing else arrived) and it
 * is not due to retire, else closed (dt__close). sh->fd becomes -1. */
void dt__udp_give(dt_resolver_t *r, dt_udp_share_t *sh);
/* Closes every idle socket (the resolver is being freed). */
void dt__udp_idle_free(dt_resolver_t *r);
/* A lookup starts and ends. Idle sockets are kept only while some lookup
 * runs: the release of the last closes them all, so a resolver at rest
 * holds no descriptor (as c-ares closes its sockets once no query is
 * pending), and sockets go round only among lookups that overlap, which
 * is where their cost shows (many in flight on an event loop). */
void dt__udp_hold(dt_resolver_t *r);
void dt__udp_release(dt_resolver_t *r);

#endif
