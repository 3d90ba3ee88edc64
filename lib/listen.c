#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sockopt.h"

void dt_listen_opts_init(dt_listen_opts_t *o) {
  memset(o, 0, sizeof(*o));
  o->backlog = DT_LISTEN_BACKLOG_MAX;
  o->reuseaddr = true;
  o->reuseport = false;
  o->v6only = DT_LISTEN_DEFAULT;
  o->nonblocking = false;
  o->unix_mode = DT_LISTEN_DEFAULT;
}

static dt_status_t fail(int fd, int err) {
  if (fd >= 0) {
    close(fd);
  }
  errno = err;
  dt_status_t st = dt_status_from_errno(err);
  return st == DT_OK ? DT_ESYS : st;
}

/* listen() and the blocking mode asked for: the last steps of both kinds
 * of listener. */
static dt_status_t start_listening(const dt_listen_opts_t *o, int fd,
                                   int *out) {
  if (listen(fd, o->backlog == DT_LISTEN_BACKLOG_MAX ? SOMAXCONN
                                                     : o->backlog) != 0) {
    return fail(fd, errno);
  }
  if (!o->nonblocking &&
      dt__sockops_system()->set_nonblocking(NULL, fd, false) != 0) {
    return fail(fd, errno);
  }
  *out = fd;
  return DT_OK;
}

static dt_status_t listen_at(const dt_listen_opts_t *o,
                             const struct sockaddr_storage *ss, socklen_t len,
                             int *out) {
  const dt_sockops_t *ops = dt__sockops_system();
  int fd = dt__sock_open(ops, ss->ss_family, SOCK_STREAM);
  if (fd < 0) {
    return fail(-1, errno);
  }
  const char *opt;
  int err;
  dt_status_t st = dt__sockopt_listener(o, ops, fd, ss->ss_family, &opt, &err);
  if (st != DT_OK) {
    close(fd);
    errno = err;
    return st;
  }
  if (bind(fd, (const struct sockaddr *)ss, len) != 0) {
    return fail(fd, errno);
  }
  return start_listening(o, fd, out);
}

dt_status_t dt_listen(const dt_listen_opts_t *opts, const char *addr,
                      uint16_t port, int *fd) {
  dt_listen_opts_t defaults;
  if (fd == NULL) {
    return DT_EINVAL;
  }
  if (opts == NULL) {
    dt_listen_opts_init(&defaults);
    opts = &defaults;
  }
  if (opts->backlog < DT_LISTEN_BACKLOG_MAX) {
    return DT_EINVAL;
  }
  if (addr != NULL && strncmp(addr, "unix:", 5) == 0) {
    return dt_listen_unix(opts, addr + 5, fd);
  }
  bool any = addr == NULL || addr[0] == '\0';
  struct sockaddr_storage ss;
  socklen_t len;
  if (dt__sockaddr_parse(any ? "::" : addr, port, &ss, &len) != DT_OK) {
    return DT_EINVAL;
  }
  dt_status_t st = listen_at(opts, &ss, len, fd);
  if (st == DT_EAFNOSUPPORT && any) {
    /* A kernel without IPv6: "every address" is every IPv4 address. */
    dt__sockaddr_parse("0.0.0.0", port, &ss, &len);
    st = listen_at(opts, &ss, len, fd);
  }
  return st;
}

/* A socket file nobody accepts on: connect() is refused. A live listener
 * with a full queue answers EAGAIN, which is not stale. */
static dt_status_t probe_stale(const struct sockaddr_un *un, socklen_t len,
                               bool *stale) {
  *stale = false;
  int fd = dt__sock_open(dt__sockops_system(), AF_UNIX, SOCK_STREAM);
  if (fd < 0) {
    return fail(-1, errno);
  }
  int rc = connect(fd, (const struct sockaddr *)un, len);
  int err = errno;
  close(fd);
  if (rc == 0 || err == EAGAIN || err == EINPROGRESS) {
    return DT_OK;
  }
  if (err == ECONNREFUSED) {
    *stale = true;
    return DT_OK;
  }
  return fail(-1, err);
}

dt_status_t dt_listen_unix(const dt_listen_opts_t *opts, const char *path,
                           int *fd) {
  dt_listen_opts_t defaults;
  struct sockaddr_un un;
  if (path == NULL || fd == NULL) {
    return DT_EINVAL;
  }
  if (opts == NULL) {
    dt_listen_opts_init(&defaults);
    opts = &defaults;
  }
  size_t n = strlen(path);
  if (n == 0 || opts->backlog < DT_LISTEN_BACKLOG_MAX) {
    return DT_EINVAL;
  }
  if (n >= sizeof(un.sun_path)) {
    return DT_ENAMETOOLONG;
  }
  memset(&un, 0, sizeof(un));
  un.sun_family = AF_UNIX;
  memcpy(un.sun_path, path, n);
  socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  bool abstract = path[0] == '@';
  if (abstract) {
    un.sun_path[0] = '\0'; /* Linux abstract namespace: no file at all */
    len--;
  }
  const dt_sockops_t *ops = dt__sockops_system();
  int s = dt__sock_open(ops, AF_UNIX, SOCK_STREAM);
  if (s < 0) {
    return fail(-1, errno);
  }
  const char *opt;
  int err;
  dt_status_t st = dt__sockopt_listener(opts, ops, s, AF_UNIX, &opt, &err);
  if (st != DT_OK) {
    close(s);
    errno = err;
    return st;
  }
  if (bind(s, (const struct sockaddr *)&un, len) != 0) {
    if (errno != EADDRINUSE || abstract) {
      return fail(s, errno);
    }
    /* Something is at path. Only a socket file may be replaced, and only
     * when nobody listens on it. */
    struct stat sb;
    if (lstat(path, &sb) != 0) {
      return fail(s, errno);
    }
    if (!S_ISSOCK(sb.st_mode)) {
      return fail(s, EADDRINUSE);
    }
    bool stale;
    st = probe_stale(&un, len, &stale);
    if (st != DT_OK) {
      int e = errno;
      close(s);
      errno = e;
      return st;
    }
    if (!stale) {
      return fail(s, EADDRINUSE);
    }
    if (unlink(path) != 0 && errno != ENOENT) {
      return fail(s, errno);
    }
    if (bind(s, (const struct sockaddr *)&un, len) != 0) {
      return fail(s, errno);
    }
  }
  /* Before listen(): nobody can connect through the wrong permissions. */
  if (opts->unix_mode != DT_LISTEN_DEFAULT && !abstract &&
      chmod(path, (mode_t)opts->unix_mode) != 0) {
    int e = errno;
    unlink(path);
    return fail(s, e);
  }
  st = start_listening(opts, s, fd);
  if (st != DT_OK && !abstract) {
    int e = errno;
    unlink(path); /* ours: bind made it */
    errno = e;
  }
  return st;
}

dt_status_t dt_listen_get_port(int fd, uint16_t *port) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (port == NULL) {
    return DT_EINVAL;
  }
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
    return fail(-1, errno);
  }
  if (ss.ss_family == AF_INET) {
    *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  } else {
    return DT_EINVAL;
  }
  return DT_OK;
}
