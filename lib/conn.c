#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "conn_int.h"

void dt_conn_opts_init(dt_conn_opts_t *opts) {
  if (opts == NULL) {
    return;
  }
  memset(opts, 0, sizeof(*opts));
  opts->read_buffer_size = DT_CONN_BUFFER_DEFAULT;
  opts->write_buffer_size = DT_CONN_BUFFER_DEFAULT;
  opts->max_frame_size = DT_CONN_MAX_FRAME_DEFAULT;
  opts->frame_header_size = 4;
}

/* Frames need a byte stream without record boundaries (SOCK_STREAM), and
 * only sockets take MSG_NOSIGNAL and MSG_DONTWAIT, which let dialtone
 * leave the descriptor's flags and the process's signal dispositions
 * alone. */
static dt_status_t check_stream_socket(int fd) {
  int type = 0;
  socklen_t len = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
    return errno == ENOTSOCK ? DT_ENOTSUP : DT_EINVAL;
  }
  return type == SOCK_STREAM ? DT_OK : DT_ENOTSUP;
}

dt_status_t dt__conn_init(dt_conn_t *c, int fd, const dt_conn_opts_t *opts) {
  dt_conn_opts_t defaults;
  if (opts == NULL) {
    dt_conn_opts_init(&defaults);
    opts = &defaults;
  }
  if (c == NULL || fd < 0) {
    return DT_EINVAL;
  }
  if (opts->frame_header_size != 2 && opts->frame_header_size != 4) {
    return DT_EINVAL;
  }
  size_t rcap = opts->read_buffer_size;
  size_t wcap = opts->write_buffer_size;
  if (rcap < DT_CONN_BUFFER_MIN || wcap < DT_CONN_BUFFER_MIN ||
      rcap > SIZE_MAX / 2 || wcap > SIZE_MAX / 2) {
    return DT_EINVAL;
  }
  dt_status_t st = check_stream_socket(fd);
  if (st != DT_OK) {
    return st;
  }
  uint8_t *block = dt__malloc(rcap + wcap);
  if (block == NULL) {
    return DT_ENOMEM;
  }
  memset(c, 0, sizeof(*c));
  c->fd = fd;
  c->hdr_len = (uint8_t)opts->frame_header_size;
  size_t limit = c->hdr_len == 2 ? UINT16_MAX : UINT32_MAX;
  if (limit > SIZE_MAX - 16) {
    limit = SIZE_MAX - 16; /* header + payload must not wrap a 32-bit size_t */
  }
  c->max_frame = opts->max_frame_size < limit ? opts->max_frame_size : limit;
  c->clock.now_us = opts->clock_us;
  c->clock.ctx = opts->clock_ctx;
  c->rbuf = block;
  c->rcap = rcap;
  c->wbuf = block + rcap;
  c->wcap = wcap;
  return DT_OK;
}

void dt__conn_drop_big(dt_conn_t *c) {
  if (c->big != NULL) {
    dt__free(c->big);
    c->big = NULL;
  }
}

void dt__conn_fini(dt_conn_t *c) {
  if (c->fd >= 0) {
    /* On Linux the descriptor is gone even when close reports EINTR, so
     * there is nothing to retry. */
    (void)close(c->fd);
    c->fd = -1;
  }
  dt__free(c->big);
  c->big = NULL;
  dt__free(c->rbuf); /* the block holding both buffers */
  c->rbuf = NULL;
  c->wbuf = NULL;
}

dt_status_t dt_conn_new(int fd, const dt_conn_opts_t *opts, dt_conn_t **out) {
  if (out == NULL) {
    return DT_EINVAL;
  }
  dt_conn_t *c = dt__malloc(sizeof(*c));
  if (c == NULL) {
    return DT_ENOMEM;
  }
  dt_status_t st = dt__conn_init(c, fd, opts);
  if (st != DT_OK) {
    dt__free(c);
    return st;
  }
  *out = c;
  return DT_OK;
}

void dt_conn_free(dt_conn_t *conn) {
  if (conn == NULL) {
    return;
  }
  if (conn->free_fn != NULL) {
    conn->free_fn(conn);
    return;
  }
  dt__conn_fini(conn);
  dt__free(conn);
}

int dt_conn_fd(const dt_conn_t *conn) {
  return conn == NULL ? -1 : conn->fd;
}

dt_status_t dt_conn_release_fd(dt_conn_t *conn, int *fd) {
  if (conn == NULL || fd == NULL || conn->fd < 0) {
    return DT_EINVAL;
  }
  if (dt_conn_pending_input(conn) > 0 || dt_conn_pending_output(conn) > 0) {
    return DT_EBUSY;
  }
  *fd = conn->fd;
  conn->fd = -1;
  dt__conn_break(conn);
  return DT_OK;
}

bool dt_conn_is_broken(const dt_conn_t *conn) {
  return conn == NULL || dt__conn_broken(conn);
}

size_t dt_conn_pending_input(const dt_conn_t *conn) {
  return conn == NULL ? 0 : conn->rend - conn->rpos;
}

size_t dt_conn_pending_output(const dt_conn_t *conn) {
  return conn == NULL ? 0 : conn->wlen - conn->woff;
}

dt_status_t dt_conn_shutdown_write(dt_conn_t *conn, int timeout_ms) {
  if (conn == NULL || conn->wr_shut) {
    return DT_EINVAL;
  }
  if (dt__conn_broken(conn)) {
    return DT_EBROKEN;
  }
  if (conn->wlen > conn->woff) {
    dt__op_t op;
    dt__op_init(&op, timeout_ms);
    dt_status_t st = dt__conn_flush(conn, &op);
    if (st != DT_OK) {
      return st;
    }
  }
  if (shutdown(conn->fd, SHUT_WR) != 0) {
    return dt_status_from_errno(errno);
  }
  conn->wr_shut = true;
  return DT_OK;
}

/* ---- system calls ------------------------------------------------------- */

/* Without a deadline a blocking socket may block in the call itself, which
 * saves the failed try and the poll() a non-blocking call costs each time
 * the socket is not ready; with one, every call must return at once. */
static int io_flags(const dt__op_t *op) {
  return op->timeout_ms < 0 ? 0 : MSG_DONTWAIT;
}

/* Waits until fd is ready for events or op's deadline passes. A deadline
 * bounds waiting, so it starts here, at the call's first wait: a call that
 * finds the socket ready never reads the clock. */
static dt_status_t wait_fd(dt_conn_t *c, short events, dt__op_t *op) {
  if (op->timeout_ms == 0) {
    return DT_ETIMEDOUT; /* the call was not ready and may not wait */
  }
  if (!op->started) {
    op->deadline = dt__deadline_in(&c->clock, op->timeout_ms);
    op->started = true;
  }
  for (;;) {
    struct pollfd pfd = {.fd = c->fd, .events = events, .revents = 0};
    int rc = poll(&pfd, 1, dt__deadline_poll_ms(&c->clock, op->deadline));
    if (rc > 0) {
      if (pfd.revents & POLLNVAL) {
        errno = EBADF;
        dt__conn_break(c);
        return DT_ESYS;
      }
      /* Readable, writable, POLLERR or POLLHUP: the next call reports
       * which. */
      return DT_OK;
    }
    if (rc == 0) {
      return DT_ETIMEDOUT;
    }
    if (errno != EINTR) {
      int err = errno;
      dt__conn_break(c);
      errno = err;
      return dt_status_from_errno(err);
    }
  }
}

/* A reused connection that fails before its first byte arrived gets its
 * own status (see reuse_unproven); it is broken either way. */
static dt_status_t stale_or(dt_conn_t *c, dt_status_t st) {
  if (__atomic_load_n(&c->reuse_unproven, __ATOMIC_RELAXED)) {
    dt__conn_break(c);
    return DT_ESTALECONN;
  }
  return st;
}

static dt_status_t io_error(dt_conn_t *c, int err) {
  dt__conn_break(c);
  errno = err;
  return stale_or(c, dt_status_from_errno(err));
}

static size_t iov_total(const struct iovec *iov, int iovcnt) {
  size_t n = 0;
  for (int i = 0; i < iovcnt; i++) {
    n += iov[i].iov_len;
  }
  return n;
}

/* With a deadline, a socket that the last call emptied (or filled) is
 * almost always still empty (full): waiting first saves the failed try,
 * so a wait costs two system calls rather than three. */
static dt_status_t wait_first(dt_conn_t *c, short events, bool likely_blocked,
                              dt__op_t *op) {
  if (op->timeout_ms <= 0 || !likely_blocked) {
    return DT_OK;
  }
  return wait_fd(c, events, op);
}

dt_status_t dt__conn_recv(dt_conn_t *c, struct iovec *iov, int iovcnt,
                          dt__op_t *op, size_t *got) {
  dt_status_t st = wait_first(c, POLLIN, c->rdrained, op);
  if (st != DT_OK) {
    return st;
  }
  for (;;) {
    ssize_t n;
    if (iovcnt == 1) {
      n = recv(c->fd, iov[0].iov_base, iov[0].iov_len, io_flags(op));
    } else {
      struct msghdr msg;
      memset(&msg, 0, sizeof(msg));
      msg.msg_iov = iov;
      msg.msg_iovlen = (size_t)iovcnt;
      n = recvmsg(c->fd, &msg, io_flags(op));
    }
    if (n > 0) {
      c->rdrained = (size_t)n < iov_total(iov, iovcnt);
      if (__atomic_load_n(&c->reuse_unproven, __ATOMIC_RELAXED)) {
        __atomic_store_n(&c->reuse_unproven, false, __ATOMIC_RELAXED);
      }
      *got = (size_t)n;
      return DT_OK;
    }
    if (n == 0) {
      c->eof = true;
      return stale_or(c, DT_EOF);
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return io_error(c, errno);
    }
    st = wait_fd(c, POLLIN, op);
    if (st != DT_OK) {
      return st;
    }
  }
}

dt_status_t dt__conn_send(dt_conn_t *c, struct iovec *iov, int iovcnt,
                          dt__op_t *op, size_t *sent) {
  dt_status_t st = wait_first(c, POLLOUT, c->wfull, op);
  if (st != DT_OK) {
    return st;
  }
  for (;;) {
    ssize_t n;
    int flags = MSG_NOSIGNAL | io_flags(op);
    if (iovcnt == 1) {
      n = send(c->fd, iov[0].iov_base, iov[0].iov_len, flags);
    } else {
      struct msghdr msg;
      memset(&msg, 0, sizeof(msg));
      msg.msg_iov = iov;
      msg.msg_iovlen = (size_t)iovcnt;
      n = sendmsg(c->fd, &msg, flags);
    }
    if (n > 0) {
      c->wfull = (size_t)n < iov_total(iov, iovcnt);
      *sent = (size_t)n;
      return DT_OK;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      return io_error(c, errno);
    }
    /* n == 0 for a non-empty send cannot happen on a stream socket; treat
     * it as "not ready" rather than spin. */
    st = wait_fd(c, POLLOUT, op);
    if (st != DT_OK) {
      return st;
    }
  }
}
