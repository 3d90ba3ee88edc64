/**
 * @file dialtone/dial.h
 * @brief The Happy Eyeballs dialer (RFC 8305): a host name or IP literal
 * and a port in, a connected, tuned TCP socket out, as fast as the network
 * allows. Unix stream sockets too.
 *
 * How a dial runs: AAAA and A questions leave together (the hosts file and
 * the resolver's cache answer first when they can). A positive AAAA starts
 * connecting at once; a positive A first waits up to the resolution delay
 * for AAAA. Addresses are ordered by RFC 6724 destination selection and
 * the families interleaved. One attempt starts, then the next when the
 * connection attempt delay passes or as soon as an attempt fails; the
 * first to connect wins and every other attempt is closed at once.
 * Addresses that arrive while attempts run join the list.
 *
 * A dialer is immutable once made: any number of threads may dial through
 * one at the same time.
 */
#ifndef DIALTONE_DIAL_H
#define DIALTONE_DIAL_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dialtone/common.h"
#include "dialtone/resolver.h"
#include "dialtone/sockopt.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An opaque dialer; see dt_dialer_new(). */
typedef struct dt_dialer dt_dialer_t;

/** Most connection attempts one dial makes (and its report holds): up to
 * half of them per address family. */
#define DT_DIAL_MAX_ATTEMPTS 32

/** Where a family's addresses came from. */
typedef enum {
  DT_DIAL_SOURCE_NONE = 0, /**< not asked, or no answer yet */
  DT_DIAL_SOURCE_LITERAL,  /**< the host was an IP literal: no lookup */
  DT_DIAL_SOURCE_HOSTS,    /**< the hosts file */
  DT_DIAL_SOURCE_CACHE,    /**< the resolver's cache: no query sent */
  DT_DIAL_SOURCE_DNS,      /**< a reply from a name server */
} dt_dial_source_t;

/** What the trace callback is told about. */
typedef enum {
  DT_DIAL_EV_LOOKUP_START = 0, /**< a family's question left (family) */
  DT_DIAL_EV_LOOKUP_DONE,      /**< its answer: status, naddrs, source */
  DT_DIAL_EV_ATTEMPT_START,    /**< attempt, addr */
  DT_DIAL_EV_ATTEMPT_DONE,     /**< attempt, addr, status (DT_OK when
                                    connected), sys_errno, sockopt */
  DT_DIAL_EV_CONNECTED,        /**< the winner: attempt, addr */
  DT_DIAL_EV_FAILED,           /**< the dial gave up: status */
} dt_dial_event_type_t;

/** One trace event. Every pointer is borrowed for the callback only. */
typedef struct {
  dt_dial_event_type_t type;
  uint64_t time_us;    /**< monotonic timestamp, the dialer's clock */
  uint64_t elapsed_us; /**< since the dial started */
  const char *host;    /**< the host being dialed */
  int family;          /**< AF_INET6, AF_INET or AF_UNIX */
  dt_status_t status;
  int sys_errno;               /**< raw errno behind status, 0 if none */
  const char *sockopt;         /**< option that failed, else NULL */
  size_t naddrs;               /**< LOOKUP_DONE: addresses received */
  dt_dial_source_t source;     /**< LOOKUP_DONE: where they came from */
  size_t attempt;              /**< index into dt_dial_report_t.attempts */
  const struct sockaddr *addr; /**< attempts: the destination, with port */
  socklen_t addrlen;
} dt_dial_event_t;

/** A trace callback: runs on the dialing thread, inside dt_dial(); it must
 * not block, and must not free the dialer. */
typedef void (*dt_dial_trace_fn)(const dt_dial_event_t *ev, void *ctx);

/**
 * Socket operations: a test seam. Each function behaves like the system
 * call it is named after (-1 and errno on failure); set_nonblocking turns
 * O_NONBLOCK on or off. A NULL member means the real system call.
 * Applications leave the whole struct zeroed.
 */
typedef struct {
  int (*socket)(void *ctx, int domain, int type, int protocol);
  int (*connect)(void *ctx, int fd, const struct sockaddr *addr, socklen_t len);
  int (*bind)(void *ctx, int fd, const struct sockaddr *addr, socklen_t len);
  int (*getsockname)(void *ctx, int fd, struct sockaddr *addr, socklen_t *len);
  int (*setsockopt)(void *ctx, int fd, int level, int name, const void *val,
                    socklen_t len);
  int (*getsockopt)(void *ctx, int fd, int level, int name, void *val,
                    socklen_t *len);
  int (*set_nonblocking)(void *ctx, int fd, bool on);
  int (*poll)(void *ctx, struct pollfd *fds, nfds_t nfds, int timeout_ms);
  int (*close)(void *ctx, int fd);
  void *ctx;
} dt_sockops_t;

/**
 * Dialer options. Fill with dt_dial_opts_init(), then change fields; the
 * dialer copies them. New fields are only appended.
 */
typedef struct {
  /** Resolver for names, borrowed: it must outlive the dialer. NULL: the
   * dialer makes its own with the defaults (resolv.conf, hosts file). */
  dt_resolver_t *resolver;
  /** AF_UNSPEC (default), or AF_INET / AF_INET6 to use one family only. */
  int family;
  /** Overall limit of one dial, lookup included, ms (default 30000);
   * dt_dial()'s own timeout_ms overrides it when not negative. */
  int timeout_ms;
  /** RFC 8305 connection attempt delay, ms: the wait before the next
   * attempt starts while earlier ones are still in flight (default 250,
   * clamped to [10, 2000]). */
  int attempt_delay_ms;
  /** RFC 8305 resolution delay, ms: how long a positive A answer waits for
   * AAAA before connecting starts (default 50; 0 never waits). */
  int resolution_delay_ms;
  /** Limit of one attempt, ms; 0 (default) lets an attempt run until the
   * overall limit. An attempt that times out counts as failed, and the
   * next one starts at once. */
  int attempt_timeout_ms;
  /** RFC 8305 "first address family count": how many addresses of the
   * preferred family come before the first of the other (default 1). */
  int first_family_count;
  /** Options applied to each attempt's socket before connect(). */
  dt_sockopt_opts_t sockopts;
  /** Local address to bind before connect() (an IP literal, port 0, with
   * %scope for IPv6 link-local), or NULL (default). Only destinations of
   * its family are tried. Copied. */
  const char *bind_addr;
  /** Hand the descriptor back non-blocking (default false: blocking). It
   * is close-on-exec either way. */
  bool nonblocking;
  /** Trace callback and its context, or NULL (default). */
  dt_dial_trace_fn trace;
  void *trace_ctx;
  /** Test seam: socket operations (NULL: the system's). Copied. */
  const dt_sockops_t *sockops;
  /** Test seam: a monotonic clock in microseconds (NULL: the system's);
   * also given to the resolver the dialer makes for itself. */
  uint64_t (*clock_us)(void *ctx);
  void *clock_ctx;
} dt_dial_opts_t;

/** Sets every option to its default. */
DT_EXTERN void dt_dial_opts_init(dt_dial_opts_t *opts);

/**
 * Creates a dialer. opts may be NULL for the defaults.
 * @param out  set to the new dialer on DT_OK only; free with
 *             dt_dialer_free().
 * @return DT_OK; DT_EINVAL for a bad option (a negative time, a count
 *         below 1, an unknown family, a bind_addr that is not an IP literal
 *         or does not match family); DT_ENOMEM; any status of
 *         dt_resolver_new() when the dialer makes its own resolver.
 */
DT_EXTERN dt_status_t dt_dialer_new(const dt_dial_opts_t *opts,
                                    dt_dialer_t **out);

/** Frees a dialer (and the resolver it made, not a borrowed one); NULL
 * does nothing. No dial may be running on it. Event-loop dials started on
 * it (dt_dial_start()) that have not completed end first: each callback
 * runs once with DT_ECANCELED inside this call, on the calling thread, so
 * call it from the thread that runs those loops. */
DT_EXTERN void dt_dialer_free(dt_dialer_t *d);

/** One connection attempt of a dial. */
typedef struct {
  struct sockaddr_storage addr; /**< the destination, with port */
  socklen_t addrlen;
  /** DT_OK: connected (the winner). DT_ECANCELED: closed because another
   * attempt won. DT_ETIMEDOUT: no answer within the attempt or overall
   * limit. Otherwise why it failed: DT_ECONNREFUSED, DT_ENETUNREACH,
   * DT_EHOSTUNREACH, DT_EMFILE, the status of a rejected socket option... */
  dt_status_t status;
  int sys_errno;       /**< raw errno behind status, 0 if none */
  const char *sockopt; /**< static name of the option that failed, else
                            NULL */
  uint64_t start_us;   /**< since the dial started */
  uint64_t end_us;     /**< since the dial started */
} dt_dial_attempt_t;

/** What the lookup of one family did during a dial. */
typedef struct {
  /** Looked up (hosts file, cache or DNS); false for literals, Unix paths
   * and a family the options exclude. */
  bool asked;
  bool done;          /**< its answer was in before the dial ended */
  dt_status_t status; /**< DT_OK with addresses, else why not */
  size_t naddrs;      /**< addresses it brought */
  dt_dial_source_t source;
  uint64_t end_us; /**< when it was in, since the dial started */
} dt_dial_lookup_t;

/**
 * The story of one dial, for diagnostics and tools. Filled by dt_dial()
 * whether it succeeds or fails (unlike a result, that is the point of it).
 */
typedef struct {
  dt_status_t status;    /**< what dt_dial() returned */
  uint64_t start_us;     /**< monotonic timestamp of the start, dialer clock */
  uint64_t dns_us;       /**< until the first usable addresses were known (0
                              for literals and Unix paths) */
  uint64_t connect_us;   /**< the winning attempt's duration */
  uint64_t total_us;     /**< the whole call */
  int family;            /**< AF_INET6, AF_INET or AF_UNIX when connected, else
                              AF_UNSPEC */
  dt_dial_lookup_t aaaa; /**< the IPv6 lookup */
  dt_dial_lookup_t a;    /**< the IPv4 lookup */
  /** Attempts in the order they started; the winner's index, or -1. */
  size_t nattempts;
  int winner;
  dt_dial_attempt_t attempts[DT_DIAL_MAX_ATTEMPTS];
} dt_dial_report_t;

/**
 * Connects to host:port and returns the connected socket.
 *
 * @param d           the dialer.
 * @param host        a host name, an IPv4 or IPv6 literal (with %scope),
 *                    or "unix:/path" for a Unix stream socket; borrowed.
 * @param port        TCP port (ignored for Unix paths).
 * @param timeout_ms  overall limit, lookup included; negative for the
 *                    dialer's own.
 * @param fd          set on DT_OK only: the connected socket, tuned by the
 *                    dialer's socket options, close-on-exec, blocking
 *                    unless the dialer says otherwise. Ownership passes to
 *                    the caller, who closes it.
 * @param report      if not NULL, filled on success and on failure with
 *                    every attempt and the lookups.
 * @return DT_OK. When nothing connected, the most useful reason:
 *         DT_ECONNREFUSED (a server answered: nothing listens),
 *         DT_ETIMEDOUT (nothing answered in time), DT_EHOSTUNREACH,
 *         DT_ENETUNREACH, DT_EMFILE, ... from the attempts; DT_ENXDOMAIN,
 *         DT_ENODATA, DT_ESERVFAIL, DT_ETIMEDOUT, ... from the lookup when
 *         it found no address; DT_EAFNOSUPPORT when every address is of
 *         a family the dialer's family or bind_addr excludes; DT_EBADNAME;
 *         DT_ENAMETOOLONG for a Unix path longer than sun_path; DT_EINVAL;
 *         DT_ENOMEM.
 */
DT_EXTERN dt_status_t dt_dial(dt_dialer_t *d, const char *host, uint16_t port,
                              int timeout_ms, int *fd,
                              dt_dial_report_t *report);

/**
 * Connects a Unix stream socket to path: dt_dial() with "unix:" + path.
 * @return as dt_dial(); DT_ENOENT (no such socket file), DT_ECONNREFUSED
 *         (nobody listens), DT_ETIMEDOUT (the listener's queue stayed full),
 *         DT_ENAMETOOLONG (longer than sun_path allows).
 */
DT_EXTERN dt_status_t dt_dial_unix(dt_dialer_t *d, const char *path,
                                   int timeout_ms, int *fd,
                                   dt_dial_report_t *report);

/** "lookup-start", "lookup-done", "attempt-start", "attempt-done",
 * "connected", "failed"; "?" for other values. */
DT_EXTERN const char *dt_dial_event_tostr(dt_dial_event_type_t type);

/** "none", "literal", "hosts", "cache", "dns"; "?" for other values. */
DT_EXTERN const char *dt_dial_source_tostr(dt_dial_source_t source);

#ifdef __cplusplus
}
#endif

#endif
