/**
 * @file dialtone/loop.h
 * @brief The event-loop API: lookups, dials and pool acquires that return
 * at once and complete through a callback, for programs that run their own
 * loop (epoll, kqueue, libuv, libevent, poll).
 *
 * A dt_loop_t gathers operations in flight. The program's loop learns
 * which descriptors to watch and when the next deadline falls, waits, and
 * hands what happened back to dt_loop_process(). Two ways to learn:
 *
 * - poll style: before each wait, dt_loop_pollfds() and
 *   dt_loop_timeout_ms() give every descriptor and the timeout; after it,
 *   dt_loop_process() takes the pollfd array back.
 * - epoll style: the watch callback (dt_loop_opts_t) is told each change of
 *   interest in a descriptor as it happens, and the timer callback each
 *   change of the next deadline; after a wait, dt_loop_process_fd() for each
 *   ready descriptor and dt_loop_process(loop, NULL, 0) when the timer
 *   fired. Register descriptors level-triggered. A descriptor the library
 *   closed is reported as watch(fd, 0), possibly after the close: ignore
 *   EBADF/ENOENT from epoll_ctl(EPOLL_CTL_DEL), and when epoll_ctl
 *   (EPOLL_CTL_MOD) fails with ENOENT, add the descriptor instead.
 *
 * The callback rule (libuv's): when a start call fails, its callback never
 * runs; otherwise it runs exactly once, with the result, with DT_ECANCELED
 * after dt_op_cancel(), or with DT_ECANCELED when the loop or the object the
 * operation was started on (resolver, dialer, pool) is freed first. It never
 * runs from inside the start call, not even for a cache hit, an IP literal
 * or an immediate failure: those complete on the next processing step
 * (dt_loop_timeout_ms() is then 0). A callback may start and cancel
 * operations on any loop; it must not free the loop it runs on.
 *
 * Threads: a loop and its operations belong to one thread at a time. The
 * resolvers, dialers and pools operations run on stay shareable: blocking
 * calls and other loops may use them from other threads meanwhile.
 *
 * The blocking calls (dt_resolver_lookup_addrs(), dt_dial(),
 * dt_pool_acquire(), ...) run the same state machines with poll(); the two
 * paths share all their logic.
 */
#ifndef DIALTONE_LOOP_H
#define DIALTONE_LOOP_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "dialtone/common.h"
#include "dialtone/conn.h"
#include "dialtone/dial.h"
#include "dialtone/pool.h"
#include "dialtone/resolver.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An opaque loop; see dt_loop_new(). */
typedef struct dt_loop dt_loop_t;

/** An operation in flight; a handle for dt_op_cancel(), valid until its
 * callback has run. */
typedef struct dt_op dt_op_t;

/**
 * Watch callback: from now on, wait for events (POLLIN, POLLOUT or both)
 * on fd; 0 means stop watching it (it may already be closed).
 */
typedef void (*dt_loop_watch_fn)(void *ctx, int fd, short events);

/**
 * Timer callback: the loop must be processed (dt_loop_process(loop, NULL,
 * 0)) in timeout_ms milliseconds, 0 meaning as soon as possible; -1 means
 * no timer is needed any more. Each call replaces the previous timer.
 */
typedef void (*dt_loop_timer_fn)(void *ctx, int timeout_ms);

/**
 * Loop options. Fill with dt_loop_opts_init(), then change fields; the loop
 * copies them. New fields are only appended.
 */
typedef struct {
  /** Change notifications for epoll-style loops, or NULL (default) for a
   * poll-style loop that asks with dt_loop_pollfds() and
   * dt_loop_timeout_ms(). Both styles may be mixed. */
  dt_loop_watch_fn watch;
  void *watch_ctx;
  dt_loop_timer_fn timer;
  void *timer_ctx;
  /** Test seam: a monotonic clock in microseconds (NULL: the system's).
   * Give the same clock to the resolvers, dialers and pools used. */
  uint64_t (*clock_us)(void *ctx);
  void *clock_ctx;
} dt_loop_opts_t;

/** Sets every option to its default. */
DT_EXTERN void dt_loop_opts_init(dt_loop_opts_t *opts);

/**
 * Creates a loop. opts may be NULL for the defaults.
 * @param out  set on DT_OK only; free with dt_loop_free().
 * @return DT_OK; DT_EINVAL; DT_ENOMEM.
 */
DT_EXTERN dt_status_t dt_loop_new(const dt_loop_opts_t *opts,
                                  dt_loop_t **out);

/**
 * Frees a loop; NULL does nothing. Operations still in flight stop, and
 * their callbacks run with DT_ECANCELED before it returns; operations
 * those callbacks try to start on this loop fail with DT_EINVAL. Not from
 * inside a callback of this loop.
 */
DT_EXTERN void dt_loop_free(dt_loop_t *loop);

/** Operations whose callback has not run yet. */
DT_EXTERN size_t dt_loop_pending(const dt_loop_t *loop);

/**
 * Poll style: the descriptors to wait on, one entry per descriptor with
 * its events and revents 0.
 * @param pfd  room for max entries (may be NULL when max is 0).
 * @return how many entries there are; only the first max are written,
 *         so call again with more room when the result is larger.
 */
DT_EXTERN size_t dt_loop_pollfds(dt_loop_t *loop, struct pollfd *pfd,
                                 size_t max);

/**
 * Milliseconds until the loop must be processed even if no descriptor is
 * ready: 0 when a completion is waiting, -1 when nothing is pending.
 */
DT_EXTERN int dt_loop_timeout_ms(dt_loop_t *loop);

/**
 * Advances the operations: those whose descriptors pfd reports ready
 * (entries with revents 0, and descriptors the loop does not know, are
 * skipped), those whose deadline passed, and completions waiting; runs
 * the callbacks of every operation that finished.
 * @param pfd  poll()'s array (from dt_loop_pollfds() or the program's own,
 *             which may hold other descriptors), or NULL with n 0 after a
 *             timeout.
 * @return DT_OK; DT_EINVAL when loop is NULL or pfd is NULL with n > 0.
 */
DT_EXTERN dt_status_t dt_loop_process(dt_loop_t *loop,
                                      const struct pollfd *pfd, size_t n);

/**
 * Epoll style: one descriptor is ready with revents (POLLIN, POLLOUT,
 * POLLERR, POLLHUP; EPOLLIN and friends have the same values on Linux);
 * then as dt_loop_process().
 */
DT_EXTERN dt_status_t dt_loop_process_fd(dt_loop_t *loop, int fd,
                                         short revents);

/**
 * Runs the loop with poll() until no operation is pending or timeout_ms
 * passes (negative: no limit). For tests, tools and simple programs.
 * @return DT_OK when nothing is pending; DT_ETIMEDOUT; DT_ESYS when poll()
 *         failed (errno set).
 */
DT_EXTERN dt_status_t dt_loop_run(dt_loop_t *loop, int timeout_ms);

/**
 * Stops an operation whose callback has not run yet: its descriptors are
 * closed (a finished dial's socket too, a pooled connection goes back to
 * its pool) and its callback runs with DT_ECANCELED from the next
 * processing step, never from inside dt_op_cancel(). Cancelling an
 * operation that is already cancelled does nothing.
 * @return DT_OK; DT_EINVAL when op is NULL.
 */
DT_EXTERN dt_status_t dt_op_cancel(dt_op_t *op);

/**
 * Completion of dt_resolve_start().
 * @param status  as dt_resolver_lookup_addrs().
 * @param addrs   on DT_OK the addresses with their remaining TTLs (IPv6
 *                first); borrowed for the duration of the callback.
 * @param n       how many (0 unless DT_OK).
 */
typedef void (*dt_resolve_cb)(void *user, dt_status_t status,
                              const dt_addr_t *addrs, size_t n);

/** The most addresses a dt_resolve_cb receives. */
#define DT_RESOLVE_MAX_ADDRS 32

/**
 * Starts looking up the addresses of a host, as dt_resolver_lookup_addrs()
 * does: an IP literal, the hosts file, the cache, else A and AAAA together.
 * @param flags       DT_QUERY_* bits (DT_QUERY_NOCACHE, ...).
 * @param timeout_ms  overall limit; negative for the resolver's own.
 * @param op          if not NULL, set on DT_OK to the operation's handle.
 * @return DT_OK (cb will run once); DT_EINVAL; DT_EBADNAME; DT_ENOMEM;
 *         DT_EMFILE when no socket could be opened.
 */
DT_EXTERN dt_status_t dt_resolve_start(dt_loop_t *loop, dt_resolver_t *r,
                                       const char *host, int family,
                                       unsigned flags, int timeout_ms,
                                       dt_resolve_cb cb, void *user,
                                       dt_op_t **op);

/**
 * Completion of dt_query_start().
 * @param status  as dt_resolver_query().
 * @param answer  on DT_OK the reply, owned by the callback: free it with
 *                dt_answer_free(); NULL otherwise.
 */
typedef void (*dt_query_cb)(void *user, dt_status_t status,
                            dt_answer_t *answer);

/**
 * Starts asking one question, as dt_resolver_query() does.
 * @return as dt_resolve_start().
 */
DT_EXTERN dt_status_t dt_query_start(dt_loop_t *loop, dt_resolver_t *r,
                                     const char *name, uint16_t type,
                                     unsigned flags, int timeout_ms,
                                     dt_query_cb cb, void *user, dt_op_t **op);

/**
 * Completion of dt_dial_start().
 * @param status  as dt_dial().
 * @param fd      on DT_OK the connected socket, owned by the callback
 *                (blocking unless the dialer says otherwise); -1 otherwise.
 * @param report  the dial's story, borrowed for the duration of the
 *                callback.
 */
typedef void (*dt_dial_cb)(void *user, dt_status_t status, int fd,
                           const dt_dial_report_t *report);

/**
 * Starts a Happy Eyeballs dial of host:port (or "unix:/path"), as dt_dial()
 * does.
 * @return as dt_resolve_start(); DT_ENAMETOOLONG for a Unix path too long.
 */
DT_EXTERN dt_status_t dt_dial_start(dt_loop_t *loop, dt_dialer_t *d,
                                    const char *host, uint16_t port,
                                    int timeout_ms, dt_dial_cb cb, void *user,
                                    dt_op_t **op);

/**
 * Completion of dt_pool_acquire_start().
 * @param status  as dt_pool_acquire().
 * @param conn    on DT_OK the connection, owned by the callback until it is
 *                given back with dt_pool_release(); NULL otherwise.
 */
typedef void (*dt_pool_acquire_cb)(void *user, dt_status_t status,
                                   dt_conn_t *conn);

/**
 * Starts getting a connection to host:port from a pool, as
 * dt_pool_acquire() does: an idle connection that passes the health check
 * completes on the next processing step; otherwise a wait at the active
 * limit (woken when another caller, on any thread, releases one) and a
 * dial run on the loop.
 * @return as dt_resolve_start().
 */
DT_EXTERN dt_status_t dt_pool_acquire_start(dt_loop_t *loop, dt_pool_t *pool,
                                            const char *host, uint16_t port,
                                            int timeout_ms,
                                            dt_pool_acquire_cb cb, void *user,
                                            dt_op_t **op);

#ifdef __cplusplus
}
#endif

#endif
