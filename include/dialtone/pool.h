/**
 * @file dialtone/pool.h
 * @brief Pools of idle connections per destination: one handshake serves
 * many requests, and a connection the server has already closed is never
 * handed out knowingly.
 *
 * A pool keeps the connections its callers release, per destination (the
 * normalised host and the port, or the Unix path), and hands the most
 * recently used one back on the next dt_pool_acquire() of that
 * destination, after one non-blocking look at its socket (the health
 * check): a connection whose peer closed it, that has unexpected bytes
 * waiting (a desynchronised protocol) or an error pending is closed and the
 * next one is tried. When none is left the pool dials, through its dialer
 * (Happy Eyeballs, the resolver's cache).
 *
 * Limits: idle connections per destination and in total (the least
 * recently used goes first), an idle timeout, a maximum lifetime, and
 * optionally active connections per destination, for which acquire waits.
 * Expired connections are closed lazily by dt_pool_acquire(),
 * dt_pool_release() and dt_pool_prune(); no thread runs in the background.
 *
 * A reused connection that fails before the first byte of a reply
 * arrives reports DT_ESTALECONN (see dialtone/conn.h): idempotent work can
 * be retried on a fresh connection, anything else should not be.
 *
 * DNS coherence (optional): a connection remembers the address it reached
 * and when the DNS answer it came from expires; once it has, acquire looks
 * the name up again (usually a cache hit) and closes idle connections to
 * addresses that are no longer in the answer.
 *
 * Threads: one pool is shared by every thread; all calls are thread-safe.
 * Locks are held around memory operations only, never across a dial, a
 * lookup or the health check (while acquires wait at an active limit, a
 * release also signals them through a descriptor, without blocking). A
 * hit costs no allocation and one system call (the health check).
 */
#ifndef DIALTONE_POOL_H
#define DIALTONE_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dialtone/common.h"
#include "dialtone/conn.h"
#include "dialtone/dial.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An opaque pool; see dt_pool_new(). */
typedef struct dt_pool dt_pool_t;

/**
 * Pool options. Fill with dt_pool_opts_init(), then change fields; the
 * pool copies them. New fields are only appended.
 */
typedef struct {
  /** Dialer for new connections, borrowed: it must outlive the pool. NULL
   * (default): the pool makes its own with the defaults, and that one's
   * resolver with them. */
  dt_dialer_t *dialer;
  /** Idle connections kept per destination (default 8); 0 keeps none. */
  size_t max_idle_per_dest;
  /** Idle connections kept in total (default 128); 0 keeps none. */
  size_t max_idle_total;
  /** An idle connection older than this is closed, ms (default 90000);
   * 0: never. */
  int idle_timeout_ms;
  /** A connection older than this (since it was dialed) is closed when
   * it is next released or found idle, ms (default 0: no limit). */
  int max_lifetime_ms;
  /** Connections of one destination handed out (or being dialed) at
   * once (default 0: no limit). At the limit, acquire waits for a
   * release until its deadline, or fails at once with fail_fast. */
  size_t max_active_per_dest;
  /** At the active limit, fail with DT_EBUSY at once instead of waiting
   * (default false). */
  bool fail_fast;
  /** DNS coherence (default false): see the file comment. Applies to
   * names answered by DNS or the cache; IP literals, the hosts file and
   * Unix paths are left alone. One acquire per destination does the
   * lookup; acquires that come meanwhile take idle connections as
   * before, and any of them the answer drops is closed on release. */
  bool dns_coherence;
  /** DNS coherence: shortest time between two lookups of one destination,
   * ms (default 1000), so that a TTL of 0 does not cost a query per
   * acquire; also the retry interval after a lookup failed. */
  int dns_recheck_min_ms;
  /** Options of the connections the pool makes (default: those of
   * dt_conn_opts_init()). Every idle connection keeps its buffers: small
   * buffers make large pools cheap. */
  dt_conn_opts_t conn;
  /** Test seam: a monotonic clock in microseconds (NULL: the system's);
   * also given to the dialer the pool makes for itself. */
  uint64_t (*clock_us)(void *ctx);
  void *clock_ctx; /**< passed to clock_us */
} dt_pool_opts_t;

/** Sets every option to its default. @param opts  the options to fill. */
DT_EXTERN void dt_pool_opts_init(dt_pool_opts_t *opts);

/**
 * Creates a pool.
 * @param opts  options, copied; NULL for the defaults.
 * @param out  set to the new pool on DT_OK only; free with dt_pool_free().
 * @return DT_OK; DT_EINVAL for a negative time or bad connection options;
 *         DT_ENOMEM; any status of dt_dialer_new() when the pool makes its
 *         own dialer.
 */
DT_EXTERN dt_status_t dt_pool_new(const dt_pool_opts_t *opts, dt_pool_t **out);

/**
 * Closes every idle connection and frees the pool (and the dialer it made,
 * not a borrowed one); NULL does nothing. No call may be running on the
 * pool. Connections still acquired stay usable and are detached from it:
 * free them with dt_conn_free() (dt_pool_release() is no longer possible).
 * @param pool  the pool, or NULL.
 */
DT_EXTERN void dt_pool_free(dt_pool_t *pool);

/**
 * Gets a connection to host:port: the most recently used idle one of that
 * destination that passes the health check, else a new one from the
 * dialer.
 *
 * @param pool        the pool.
 * @param host        a host name, an IP literal, or "unix:/path"; borrowed.
 *                    Names are compared in their normal form
 *                    ("WWW.Example." is "www.example").
 * @param port        TCP port (ignored for Unix paths).
 * @param timeout_ms  limit for the whole call: waiting at the active limit,
 *                    the DNS coherence lookup and the dial; negative waits
 *                    without limit and dials with the dialer's own limit.
 * @param conn        set on DT_OK only: the connection, owned by the
 *                    caller until it is given back with dt_pool_release()
 *                    (or closed with dt_conn_free(), which also frees its
 *                    place in the pool). dt_pool_conn_get_info() says
 *                    whether it was reused.
 * @return DT_OK; DT_EBUSY when the destination's active limit was reached
 *         (at once with fail_fast, else still at the deadline); any status
 *         of dt_dial() when a dial was needed and failed; DT_EBADNAME;
 *         DT_ENAMETOOLONG (Unix path); DT_EINVAL; DT_ENOMEM; DT_EMFILE
 *         when waiting at the active limit needed a descriptor (the first
 *         waiter of a destination makes one, kept while the destination
 *         is) and none could be made.
 */
DT_EXTERN dt_status_t dt_pool_acquire(dt_pool_t *pool, const char *host,
                                      uint16_t port, int timeout_ms,
                                      dt_conn_t **conn);

/**
 * Gives a connection back. It is kept idle unless it is not reusable,
 * still holds unread input or unsent output, saw an error or end of stream
 * (broken), has outlived the maximum lifetime, or (DNS coherence) leads to
 * an address no longer in its name's answer: then it is closed. Keeping it
 * may close the least recently used idle connection to stay within the
 * limits.
 *
 * @param pool      the pool the connection came from.
 * @param conn      a connection from dt_pool_acquire() on this pool;
 *                  ownership passes to the pool on DT_OK.
 * @param reusable  false closes it whatever its state (say so after a
 *                  protocol error, a timeout in the middle of a reply, a
 *                  "close" request from the server).
 * @return DT_OK (kept or closed); DT_EINVAL when conn is NULL, not from
 *         this pool, or not acquired (then the caller keeps it).
 */
DT_EXTERN dt_status_t dt_pool_release(dt_pool_t *pool, dt_conn_t *conn,
                                      bool reusable);

/**
 * Closes the idle connections past the idle timeout or the maximum
 * lifetime now, instead of waiting for acquire and release to come across
 * them. For programs that go quiet for long.
 * @param pool  the pool.
 * @return how many were closed.
 */
DT_EXTERN size_t dt_pool_prune(dt_pool_t *pool);

/** What a pooled connection knows about itself. */
typedef struct {
  /** Taken from the idle list by the acquire that returned it (false: it
   * was dialed for it). */
  bool reused;
  /** How long it sat idle before that acquire, µs (0 when dialed). */
  uint64_t idle_us;
  /** Since it was dialed, µs. */
  uint64_t age_us;
  /** Acquires that returned it, that one included. */
  uint64_t uses;
  /** The address it reached, with port (AF_UNIX with the path for Unix
   * destinations). */
  struct sockaddr_storage peer;
  socklen_t peerlen; /**< peer's length */
  /** DNS coherence follows it: its address came from a DNS answer. */
  bool dns_tracked;
  /** DNS coherence: µs until the answer its address belongs to expires
   * (0 when expired or not tracked). */
  uint64_t dns_expires_in_us;
} dt_pool_conn_info_t;

/**
 * Describes a connection handed out by a pool (also after dt_pool_free()).
 * @param conn  the connection.
 * @param out  filled on DT_OK only.
 * @return DT_OK; DT_EINVAL when conn did not come from a pool or an
 *         argument is NULL.
 */
DT_EXTERN dt_status_t dt_pool_conn_get_info(const dt_conn_t *conn,
                                            dt_pool_conn_info_t *out);

/** Why a health check closed an idle connection. */
typedef enum {
  DT_POOL_CHECK_EOF = 0, /**< the peer closed it (end of stream) */
  DT_POOL_CHECK_DATA,    /**< bytes nobody asked for were waiting */
  DT_POOL_CHECK_ERROR,   /**< an error was pending (reset, ...) */
  DT_POOL_CHECK__COUNT
} dt_pool_check_t;

/** Why the pool closed a connection it could have kept. */
typedef enum {
  DT_POOL_EVICT_IDLE = 0, /**< idle longer than the idle timeout */
  DT_POOL_EVICT_LIFETIME, /**< older than the maximum lifetime */
  DT_POOL_EVICT_CAPACITY, /**< least recently used over an idle limit */
  DT_POOL_EVICT_DNS,      /**< its address left its name's DNS answer */
  DT_POOL_EVICT__COUNT
} dt_pool_evict_t;

/** Why dt_pool_release() closed a connection instead of keeping it. */
typedef enum {
  DT_POOL_DISCARD_UNREUSABLE = 0, /**< released as not reusable, or
                                       closed with dt_conn_free() */
  DT_POOL_DISCARD_INPUT,          /**< unread input was buffered */
  DT_POOL_DISCARD_OUTPUT,         /**< unsent output was buffered */
  DT_POOL_DISCARD_BROKEN, /**< broken, end of stream seen, write side shut
                               or descriptor released */
  DT_POOL_DISCARD__COUNT
} dt_pool_discard_t;

/** Counters of a pool since it was created, and its size now. */
typedef struct {
  uint64_t acquires;      /**< dt_pool_acquire() calls */
  uint64_t reuses;        /**< of which returned an idle connection */
  uint64_t dials;         /**< dials started */
  uint64_t dial_failures; /**< of which failed */
  /** Idle connections the health check closed, by dt_pool_check_t. */
  uint64_t check_closed[DT_POOL_CHECK__COUNT];
  /** Connections closed by the limits and DNS, by dt_pool_evict_t. */
  uint64_t evicted[DT_POOL_EVICT__COUNT];
  /** Released connections closed, by dt_pool_discard_t. */
  uint64_t discarded[DT_POOL_DISCARD__COUNT];
  uint64_t waits;         /**< acquires that waited at the active limit */
  uint64_t wait_timeouts; /**< of which gave up with DT_EBUSY at the
                               deadline */
  uint64_t busy;          /**< acquires refused at once (fail_fast) */
  uint64_t dns_lookups;   /**< DNS coherence lookups */
  uint64_t dns_failures;  /**< of which failed (connections kept) */
  uint64_t idle;          /**< idle connections now */
  uint64_t active;        /**< connections handed out or dialing now */
  uint64_t destinations;  /**< destinations with connections or waiters */
} dt_pool_stats_t;

/**
 * Copies the counters; consistent per field, not across fields.
 * @param pool  the pool.
 * @param out   receives the counters.
 */
DT_EXTERN void dt_pool_get_stats(dt_pool_t *pool, dt_pool_stats_t *out);

/** One destination's connections now. */
typedef struct {
  size_t idle;    /**< idle connections kept */
  size_t active;  /**< handed out or being dialed */
  size_t waiting; /**< acquires waiting at the active limit */
} dt_pool_dest_stats_t;

/**
 * Counts one destination's connections now (all zero when the pool has
 * none for it).
 * @param pool  the pool.
 * @param host  the destination's host or "unix:/path", as for
 *              dt_pool_acquire(); borrowed.
 * @param port  its port (ignored for Unix paths).
 * @param out   filled on DT_OK only.
 * @return DT_OK; DT_EBADNAME, DT_ENAMETOOLONG or DT_EINVAL as
 *         dt_pool_acquire() for host.
 */
DT_EXTERN dt_status_t dt_pool_get_dest_stats(dt_pool_t *pool, const char *host,
                                             uint16_t port,
                                             dt_pool_dest_stats_t *out);

/**
 * Calls visit for every destination the pool has connections or waiters
 * for, with its key ("www.example#443", "[2001:db8::1]#443",
 * "unix:/run/app.sock"), borrowed for the call. Runs under the pool's
 * lock: visit must be quick and must not call into the pool.
 * @param pool   the pool.
 * @param visit  called once per destination with its key, its counts and
 *               ctx.
 * @param ctx    passed to visit.
 */
DT_EXTERN void dt_pool_list(dt_pool_t *pool,
                            void (*visit)(const char *key,
                                          const dt_pool_dest_stats_t *s,
                                          void *ctx),
                            void *ctx);

/**
 * Names a health-check reason.
 * @param reason  any value.
 * @return a static string: "eof", "data", "error"; "?" for other values.
 */
DT_EXTERN const char *dt_pool_check_tostr(dt_pool_check_t reason);

/**
 * Names an eviction reason.
 * @param reason  any value.
 * @return a static string: "idle", "lifetime", "capacity", "dns"; "?" for
 *         other values.
 */
DT_EXTERN const char *dt_pool_evict_tostr(dt_pool_evict_t reason);

/**
 * Names a discard reason.
 * @param reason  any value.
 * @return a static string: "unreusable", "input", "output", "broken"; "?"
 *         for other values.
 */
DT_EXTERN const char *dt_pool_discard_tostr(dt_pool_discard_t reason);

#ifdef __cplusplus
}
#endif

#endif
