/**
 * @file dialtone/listen.h
 * @brief Listening sockets for servers and tests: TCP on an IP literal
 * with SO_REUSEADDR, SO_REUSEPORT (several threads or processes each
 * accepting on their own queue), backlog, buffers and IPV6_V6ONLY; Unix
 * stream listeners that replace a stale socket file and nothing else.
 */
#ifndef DIALTONE_LISTEN_H
#define DIALTONE_LISTEN_H

#include <stdbool.h>
#include <stdint.h>

#include "dialtone/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Backlog value meaning "as long as the kernel allows" (SOMAXCONN, which
 * Linux caps at net.core.somaxconn). */
#define DT_LISTEN_BACKLOG_MAX (-1)

/** Marks an on/off option as "leave the kernel's default". */
#define DT_LISTEN_DEFAULT (-1)

/**
 * Listener options. Fill with dt_listen_opts_init(), then change fields.
 * New fields are only appended.
 */
typedef struct {
  /** Pending-connection queue length (default DT_LISTEN_BACKLOG_MAX);
   * 0 is allowed and keeps the queue as short as the kernel permits. */
  int backlog;
  /** SO_REUSEADDR: rebind at once after a restart (default true). TCP
   * only. */
  bool reuseaddr;
  /** SO_REUSEPORT: let several sockets bind the same address and port,
   * the kernel spreading new connections over their queues (default
   * false). Every socket of the group must set it. TCP only. */
  bool reuseport;
  /** IPV6_V6ONLY for IPv6 addresses: 1 IPv6 only, 0 IPv4 too through
   * mapped addresses, DT_LISTEN_DEFAULT (default) the kernel's
   * (net.ipv6.bindv6only, usually 0). */
  int v6only;
  /** SO_RCVBUF / SO_SNDBUF in bytes, set before listen() so accepted
   * connections inherit them and window scaling takes them; 0 (default)
   * keeps autotuning. */
  int rcvbuf;
  int sndbuf; /**< as rcvbuf, for SO_SNDBUF */
  /** Hand the descriptor back non-blocking (default false). It is
   * close-on-exec either way. */
  bool nonblocking;
  /** Unix listeners: permission bits for the socket file (e.g. 0660), or
   * DT_LISTEN_DEFAULT (default) to leave what the umask gave. */
  int unix_mode;
} dt_listen_opts_t;

/** Sets every option to its default. @param opts  the options to fill. */
DT_EXTERN void dt_listen_opts_init(dt_listen_opts_t *opts);

/**
 * Creates a listening TCP socket.
 *
 * @param opts  NULL for the defaults.
 * @param addr  an IPv4 or IPv6 literal ("0.0.0.0", "::", "::1",
 *              "fe80::1%eth0"), NULL or "" for "::" (every address, both
 *              families unless v6only), or "unix:/path" for
 *              dt_listen_unix(); borrowed.
 * @param port  0 lets the kernel pick one (see dt_listen_get_port()).
 * @param fd    set on DT_OK only: the listening socket; the caller owns it
 *              and closes it.
 * @return DT_OK; DT_EINVAL (addr is not a literal, bad option);
 *         DT_EADDRINUSE (the address and port are taken, or the address
 *         is not local); DT_EACCES (a privileged port); DT_EAFNOSUPPORT;
 *         DT_EMFILE; the status of a rejected option (errno left set).
 */
DT_EXTERN dt_status_t dt_listen(const dt_listen_opts_t *opts, const char *addr,
                                uint16_t port, int *fd);

/**
 * Creates a listening Unix stream socket at path. An existing socket file
 * nobody listens on (left by a process that died) is replaced; a live
 * listener's socket, or any file that is not a socket, never is.
 *
 * @param opts  NULL for the defaults (backlog, buffers, nonblocking and
 *              unix_mode apply).
 * @param path  borrowed.
 * @param fd    set on DT_OK only; the caller owns it. Removing the file
 *              when done is the caller's business.
 * @return DT_OK; DT_ENAMETOOLONG (path does not fit sun_path);
 *         DT_EADDRINUSE (a live listener, or a file that is not a socket,
 *         is there); DT_ENOENT (no such directory); DT_EACCES; DT_EMFILE.
 */
DT_EXTERN dt_status_t dt_listen_unix(const dt_listen_opts_t *opts,
                                     const char *path, int *fd);

/**
 * The local port of a bound socket (the one the kernel picked for port 0).
 * @param fd    the socket, borrowed.
 * @param port  set on DT_OK only.
 * @return DT_OK; DT_EINVAL when fd is not an IPv4 or IPv6 socket; the
 *         status of getsockname()'s failure.
 */
DT_EXTERN dt_status_t dt_listen_get_port(int fd, uint16_t *port);

#ifdef __cplusplus
}
#endif

#endif
