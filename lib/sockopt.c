/* SO_REUSEPORT and the TCP keepalive options are Linux extensions that
 * glibc hides under strict POSIX. */
#define _GNU_SOURCE
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockopt.h"

/* ---- the system's socket operations -------------------------------------- */

static int sys_socket(void *ctx, int domain, int type, int protocol) {
  (void)ctx;
  return socket(domain, type, protocol);
}

static int sys_connect(void *ctx, int fd, const struct sockaddr *addr,
                       socklen_t len) {
  (void)ctx;
  return connect(fd, addr, len);
}

static int sys_bind(void *ctx, int fd, const struct sockaddr *addr,
                    socklen_t len) {
  (void)ctx;
  return bind(fd, addr, len);
}

static int sys_getsockname(void *ctx, int fd, struct sockaddr *addr,
                           socklen_t *len) {
  (void)ctx;
  return getsockname(fd, addr, len);
}

static int sys_setsockopt(void *ctx, int fd, int level, int name,
                          const void *val, socklen_t len) {
  (void)ctx;
  return setsockopt(fd, level, name, val, len);
}

static int sys_getsockopt(void *ctx, int fd, int level, int name, void *val,
                          socklen_t *len) {
  (void)ctx;
  return getsockopt(fd, level, name, val, len);
}

static int sys_set_nonblocking(void *ctx, int fd, bool on) {
  (void)ctx;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) {
    return -1;
  }
  int want = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
  return want == fl ? 0 : fcntl(fd, F_SETFL, want);
}

static int sys_poll(void *ctx, struct pollfd *fds, nfds_t nfds,
                    int timeout_ms) {
  (void)ctx;
  return poll(fds, nfds, timeout_ms);
}

static int sys_close(void *ctx, int fd) {
  (void)ctx;
  return close(fd);
}

static const dt_sockops_t system_ops = {
    sys_socket,
    sys_connect,
    sys_bind,
    sys_getsockname,
    sys_setsockopt,
    sys_getsockopt,
    sys_set_nonblocking,
    sys_poll,
    sys_close,
    NULL,
};

const dt_sockops_t *dt__sockops_system(void) {
  return &system_ops;
}

void dt__sockops_init(dt_sockops_t *out, const dt_sockops_t *in) {
  *out = in != NULL ? *in : system_ops;
#define FILL(m)                                                                \
  if (out->m == NULL) {                                                        \
    out->m = system_ops.m;                                                     \
  }
  FILL(socket)
  FILL(connect)
  FILL(bind)
  FILL(getsockname)
  FILL(setsockopt)
  FILL(getsockopt)
  FILL(set_nonblocking)
  FILL(poll)
  FILL(close)
#undef FILL
}

int dt__sock_open(const dt_sockops_t *ops, int family, int type) {
  /* Both flags atomically: no window where an exec in another thread
   * inherits the descriptor, and no extra fcntl() per attempt. */
  return ops->socket(ops->ctx, family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

/* ---- options ------------------------------------------------------------- */

/* One setsockopt with an int value; on failure records which option. */
static bool set_int(const dt_sockops_t *ops, int fd, int level, int name,
                    int value, const char *label, const char **failed,
                    int *err) {
  if (ops->setsockopt(ops->ctx, fd, level, name, &value, sizeof(value)) == 0) {
    return true;
  }
  *err = errno;
  *failed = label;
  return false;
}

#define SET(level, name, value)                                                \
  set_int(ops, fd, level, name, value, #name, failed, err)

void dt_sockopt_opts_init(dt_sockopt_opts_t *o) {
  memset(o, 0, sizeof(*o));
  o->nodelay = true;
  o->keepalive = true;
  o->keepidle_s = 30;
  o->keepintvl_s = 10;
  o->keepcnt = 3;
}

static dt_status_t failure(int err) {
  dt_status_t st = dt_status_from_errno(err);
  errno = err;
  return st == DT_OK ? DT_ESYS : st;
}

dt_status_t dt__sockopt_apply(const dt_sockopt_opts_t *o,
                              const dt_sockops_t *ops, int fd, int family,
                              const char **failed, int *err) {
  *failed = NULL;
  *err = 0;
  if (o->rcvbuf < 0 || o->sndbuf < 0 || o->keepidle_s < 0 ||
      o->keepintvl_s < 0 || o->keepcnt < 0 || o->user_timeout_ms > INT_MAX) {
    *err = EINVAL;
    return DT_EINVAL;
  }
  /* Buffers first: the receive buffer fixes the window scale the SYN
   * advertises, so it is too late once connect() has run. */
  if (o->rcvbuf > 0 && !SET(SOL_SOCKET, SO_RCVBUF, o->rcvbuf)) {
    return failure(*err);
  }
  if (o->sndbuf > 0 && !SET(SOL_SOCKET, SO_SNDBUF, o->sndbuf)) {
    return failure(*err);
  }
  if (family != AF_INET && family != AF_INET6) {
    return DT_OK;
  }
  if (o->nodelay && !SET(IPPROTO_TCP, TCP_NODELAY, 1)) {
    return failure(*err);
  }
  if (o->keepalive) {
    if (!SET(SOL_SOCKET, SO_KEEPALIVE, 1)) {
      return failure(*err);
    }
    if (o->keepidle_s > 0 && !SET(IPPROTO_TCP, TCP_KEEPIDLE, o->keepidle_s)) {
      return failure(*err);
    }
    if (o->keepintvl_s > 0 &&
        !SET(IPPROTO_TCP, TCP_KEEPINTVL, o->keepintvl_s)) {
      return failure(*err);
    }
    if (o->keepcnt > 0 && !SET(IPPROTO_TCP, TCP_KEEPCNT, o->keepcnt)) {
      return failure(*err);
    }
  }
  if (o->user_timeout_ms > 0 &&
      !SET(IPPROTO_TCP, TCP_USER_TIMEOUT, (int)o->user_timeout_ms)) {
    return failure(*err);
  }
  return DT_OK;
}

dt_status_t dt_sockopt_apply(int fd, int family, const dt_sockopt_opts_t *opts,
                             const char **failed) {
  dt_sockopt_opts_t defaults;
  const char *name = NULL;
  int err = 0;
  if (opts == NULL) {
    dt_sockopt_opts_init(&defaults);
    opts = &defaults;
  }
  dt_status_t st =
      dt__sockopt_apply(opts, &system_ops, fd, family, &name, &err);
  if (failed != NULL) {
    *failed = name;
  }
  if (st != DT_OK) {
    errno = err;
  }
  return st;
}

dt_status_t dt__sockopt_listener(const dt_listen_opts_t *o,
                                 const dt_sockops_t *ops, int fd, int family,
                                 const char **failed, int *err) {
  *failed = NULL;
  *err = 0;
  if (o->rcvbuf < 0 || o->sndbuf < 0 || o->v6only < DT_LISTEN_DEFAULT ||
      o->v6only > 1) {
    *err = EINVAL;
    return DT_EINVAL;
  }
  if (family == AF_INET || family == AF_INET6) {
    if (o->reuseaddr && !SET(SOL_SOCKET, SO_REUSEADDR, 1)) {
      return failure(*err);
    }
    if (o->reuseport && !SET(SOL_SOCKET, SO_REUSEPORT, 1)) {
      return failure(*err);
    }
  }
  if (family == AF_INET6 && o->v6only != DT_LISTEN_DEFAULT &&
      !SET(IPPROTO_IPV6, IPV6_V6ONLY, o->v6only)) {
    return failure(*err);
  }
  /* Accepted sockets inherit the listener's buffers; like a client's, they
   * must be in place before the handshake picks the window scale. */
  if (o->rcvbuf > 0 && !SET(SOL_SOCKET, SO_RCVBUF, o->rcvbuf)) {
    return failure(*err);
  }
  if (o->sndbuf > 0 && !SET(SOL_SOCKET, SO_SNDBUF, o->sndbuf)) {
    return failure(*err);
  }
  return DT_OK;
}

dt_status_t dt__sock_bind_local(const dt_sockops_t *ops, int fd,
                                const struct sockaddr *sa, socklen_t len,
                                const char **failed, int *err) {
  *failed = NULL;
  *err = 0;
#ifdef IP_BIND_ADDRESS_NO_PORT
  uint16_t port =
      sa->sa_family == AF_INET6
          ? ((const struct sockaddr_in6 *)(const void *)sa)->sin6_port
          : ((const struct sockaddr_in *)(const void *)sa)->sin_port;
  /* Only an optimisation: an old kernel without it still binds. */
  if (port == 0) {
    int one = 1;
    (void)ops->setsockopt(ops->ctx, fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT,
                          &one, sizeof(one));
  }
#endif
  if (ops->bind(ops->ctx, fd, sa, len) != 0) {
    *err = errno;
    *failed = "bind";
    return failure(*err);
  }
  return DT_OK;
}

#undef SET

/* ---- addresses ----------------------------------------------------------- */

socklen_t dt__sockaddr_len(int family) {
  return family == AF_INET6 ? (socklen_t)sizeof(struct sockaddr_in6)
                            : (socklen_t)sizeof(struct sockaddr_in);
}

dt_status_t dt__sockaddr_parse(const char *s, uint16_t port,
                               struct sockaddr_storage *ss, socklen_t *len) {
  char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  size_t n = strlen(s);
  if (n == 0 || n >= sizeof(host)) {
    return DT_EINVAL;
  }
  memcpy(host, s, n + 1);
  memset(ss, 0, sizeof(*ss));
  struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    *len = sizeof(*v4);
    return DT_OK;
  }
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
  char *pct = strchr(host, '%');
  if (pct != NULL) {
    *pct = '\0';
  }
  if (inet_pton(AF_INET6, host, &v6->sin6_addr) != 1) {
    return DT_EINVAL;
  }
  if (pct != NULL) {
    unsigned idx = if_nametoindex(pct + 1);
    if (idx == 0) {
      char *end;
      errno = 0;
      unsigned long v = strtoul(pct + 1, &end, 10);
      if (pct[1] == '\0' || *end != '\0' || errno != 0 || v > UINT32_MAX) {
        return DT_EINVAL;
      }
      idx = (unsigned)v;
    }
    v6->sin6_scope_id = idx;
  }
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons(port);
  *len = sizeof(*v6);
  return DT_OK;
}

const char *dt_sockaddr_tostr(const struct sockaddr *sa, socklen_t salen,
                              char *buf, size_t len) {
  char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  unsigned port = 0;
  if (len == 0) {
    return buf;
  }
  if (sa == NULL) {
    snprintf(buf, len, "?");
    return buf;
  }
  switch (sa->sa_family) {
  case AF_INET: {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)(const void *)sa;
    if (salen < (socklen_t)sizeof(*v4) ||
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host)) == NULL) {
      break;
    }
    port = ntohs(v4->sin_port);
    goto ip;
  }
  case AF_INET6: {
    const struct sockaddr_in6 *v6 =
        (const struct sockaddr_in6 *)(const void *)sa;
    if (salen < (socklen_t)sizeof(*v6) ||
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host)) == NULL) {
      break;
    }
    if (v6->sin6_scope_id != 0) {
      size_t n = strlen(host);
      char ifname[IF_NAMESIZE];
      if (if_indextoname(v6->sin6_scope_id, ifname) != NULL) {
        snprintf(host + n, sizeof(host) - n, "%%%s", ifname);
      } else {
        snprintf(host + n, sizeof(host) - n, "%%%u",
                 (unsigned)v6->sin6_scope_id);
      }
    }
    port = ntohs(v6->sin6_port);
    goto ip;
  }
  case AF_UNIX: {
    const struct sockaddr_un *un = (const struct sockaddr_un *)(const void *)sa;
    size_t off = offsetof(struct sockaddr_un, sun_path);
    size_t plen = salen > off ? (size_t)salen - off : 0;
    if (plen > sizeof(un->sun_path)) {
      plen = sizeof(un->sun_path);
    }
    if (plen > 0 && un->sun_path[0] == '\0') {
      /* Linux abstract namespace: shown with '@', as ss(8) does. */
      snprintf(buf, len, "unix:@%.*s", (int)(plen - 1), un->sun_path + 1);
    } else {
      snprintf(buf, len, "unix:%.*s", (int)strnlen(un->sun_path, plen),
               un->sun_path);
    }
    return buf;
  }
  default:
    break;
  }
  snprintf(buf, len, "?");
  return buf;
ip:
  if (port != 0) {
    snprintf(buf, len, "%s#%u", host, port);
  } else {
    snprintf(buf, len, "%s", host);
  }
  return buf;
}
