/* Socket options and socket plumbing shared by dial and listen: every
 * setsockopt() dialtone makes lives in sockopt.c, called through the
 * dt_sockops_t seam so tests can watch and fail each one. */
#ifndef DT_SOCKOPT_H
#define DT_SOCKOPT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dialtone/dial.h"
#include "dialtone/listen.h"
#include "dialtone/sockopt.h"

/* Copies in (NULL: all system calls) into out, filling every NULL member
 * with the system call, so callers never test for NULL. */
void dt__sockops_init(dt_sockops_t *out, const dt_sockops_t *in);

/* The system's operations. */
const dt_sockops_t *dt__sockops_system(void);

/* A new non-blocking, close-on-exec socket, or -1 with errno. */
int dt__sock_open(const dt_sockops_t *ops, int family, int type);

/* The options a connecting socket needs before connect(): buffers, then
 * (TCP) nodelay, keepalive and its parameters, user timeout. Stops at the
 * first failure: returns its status, sets *err to errno and *failed to the
 * option's name. */
dt_status_t dt__sockopt_apply(const dt_sockopt_opts_t *o,
                              const dt_sockops_t *ops, int fd, int family,
                              const char **failed, int *err);

/* The options a listening socket needs before bind() (reuse, v6only) and
 * before listen() (buffers); reports like dt__sockopt_apply. */
dt_status_t dt__sockopt_listener(const dt_listen_opts_t *o,
                                 const dt_sockops_t *ops, int fd, int family,
                                 const char **failed, int *err);

/* Binds fd to a local address before connect(); for IPv4 and IPv6 with
 * port 0, asks Linux to pick the port at connect() time
 * (IP_BIND_ADDRESS_NO_PORT), so a busy client does not run out of ports
 * that bind() would reserve for every destination. */
dt_status_t dt__sock_bind_local(const dt_sockops_t *ops, int fd,
                                const struct sockaddr *sa, socklen_t len,
                                const char **failed, int *err);

/* Parses an IPv4 or IPv6 literal (IPv6 with an optional %scope, as an
 * interface name or number; no brackets, no port) into ss with port.
 * DT_OK or DT_EINVAL. */
dt_status_t dt__sockaddr_parse(const char *s, uint16_t port,
                               struct sockaddr_storage *ss, socklen_t *len);

/* The socket-address length of an AF_INET or AF_INET6 address. */
socklen_t dt__sockaddr_len(int family);

#endif
