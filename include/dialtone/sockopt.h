/**
 * @file dialtone/sockopt.h
 * @brief Socket options in one place: what the dialer applies to every
 * connection attempt (before connect(), so that buffer sizes reach the
 * window-scale negotiation), and the address-to-text helper the reports
 * use.
 */
#ifndef DIALTONE_SOCKOPT_H
#define DIALTONE_SOCKOPT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "dialtone/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Options of a stream socket. Fill with dt_sockopt_opts_init(), then change
 * fields. A zero size or time leaves the kernel's own value in place. New
 * fields are only appended.
 */
typedef struct {
  /** TCP_NODELAY: send small writes at once (default true). */
  bool nodelay;
  /** SO_KEEPALIVE with the three parameters below (default true). */
  bool keepalive;
  /** TCP_KEEPIDLE: idle seconds before the first probe (default 30). */
  int keepidle_s;
  /** TCP_KEEPINTVL: seconds between probes (default 10). */
  int keepintvl_s;
  /** TCP_KEEPCNT: unanswered probes before the connection drops
   * (default 3). */
  int keepcnt;
  /** SO_RCVBUF / SO_SNDBUF in bytes; 0 (default) keeps the kernel's
   * autotuning, which a fixed size turns off. Linux doubles the value for
   * its bookkeeping and caps it at net.core.rmem_max / wmem_max. */
  int rcvbuf;
  int sndbuf; /**< as rcvbuf, for SO_SNDBUF */
  /** TCP_USER_TIMEOUT, ms: how long sent data may stay unacknowledged
   * before the connection is dropped; 0 (default) keeps the kernel's. */
  unsigned user_timeout_ms;
} dt_sockopt_opts_t;

/** Sets every option to its default. @param opts  the options to fill. */
DT_EXTERN void dt_sockopt_opts_init(dt_sockopt_opts_t *opts);

/**
 * Applies opts to a socket: buffers for every family; TCP_NODELAY,
 * keepalive and TCP_USER_TIMEOUT for AF_INET and AF_INET6 only. Stops at the
 * first failure.
 *
 * @param fd      a socket, borrowed.
 * @param family  its address family (AF_INET, AF_INET6 or AF_UNIX).
 * @param opts    NULL for the defaults.
 * @param failed  if not NULL, set on failure to the static name of the
 *                option the kernel rejected ("TCP_KEEPIDLE", ...), else
 *                to NULL.
 * @return DT_OK, or the status of the failing setsockopt() (errno is left
 *         set); DT_EINVAL for a negative size or count.
 */
DT_EXTERN dt_status_t dt_sockopt_apply(int fd, int family,
                                       const dt_sockopt_opts_t *opts,
                                       const char **failed);

/** Room for any text dt_sockaddr_tostr() writes, NUL included. */
#define DT_SOCKADDR_STRLEN 128

/**
 * Formats an address the way dialtone's tools print it: "192.0.2.1#80",
 * "2001:db8::1#443", "fe80::1%eth0#22", "unix:/run/app.sock" (port-less
 * forms when the port is 0).
 *
 * @param sa     the address, borrowed.
 * @param salen  its length.
 * @param buf    receives the text; DT_SOCKADDR_STRLEN bytes always suffice.
 * @param len    the size of buf.
 * @return buf; "?" for an unknown family. The text is truncated (and
 *         still NUL-terminated) when len is too small.
 */
DT_EXTERN const char *dt_sockaddr_tostr(const struct sockaddr *sa,
                                        socklen_t salen, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
