/* sendmmsg(2) is a Linux call. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "closefd.h"
#include "transport.h"

#define COUNT(ex, field)                                                       \
  do {                                                                         \
    if ((ex)->counters != NULL) {                                              \
      __atomic_add_fetch(&(ex)->counters->field, 1, __ATOMIC_RELAXED);         \
    }                                                                          \
  } while (0)

bool dt__sockaddr_equal(const struct sockaddr *a, const struct sockaddr *b) {
  if (a->sa_family != b->sa_family) {
    return false;
  }
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a;
    const struct sockaddr_in *y = (const struct sockaddr_in *)b;
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->sa_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
  }
  return false;
}

void dt__count_drop(dt_ex_counters_t *c, dt_match_t why) {
  if (c == NULL || why == DT_MATCH_OK) {
    return;
  }
  uint64_t *n = why == DT_MATCH_ID         ? &c->dropped_id
                : why == DT_MATCH_QUESTION ? &c->dropped_question
                                           : &c->dropped_malformed;
  __atomic_add_fetch(n, 1, __ATOMIC_RELAXED);
}

static void fail_close(dt_exchange_t *ex) {
  int saved = errno;
  dt__exchange_close(ex);
  errno = saved;
}

static void exchange_init(dt_exchange_t *ex, const struct sockaddr *server,
                          socklen_t server_len, dt_transport_t transport,
                          const uint8_t *query, size_t qlen,
                          dt_ex_counters_t *counters) {
  ex->fd = -1;
  ex->borrowed = false;
  ex->state = DT_EX_IDLE;
  ex->transport = transport;
  memcpy(&ex->server, server, server_len);
  ex->server_len = server_len;
  ex->counters = counters;
  ex->exact_case = false;
  ex->out[0] = (uint8_t)(qlen >> 8);
  ex->out[1] = (uint8_t)qlen;
  memcpy(ex->out + 2, query, qlen);
  ex->qlen = qlen;
  ex->sent = 0;
  ex->tcp_got = 0;
  ex->tcp_buf = NULL;
  ex->tcp_need = 0;
  ex->reply = NULL;
  ex->reply_len = 0;
}

static dt_status_t udp_send(dt_exchange_t *ex) {
  ssize_t n;
  do {
    n = send(ex->fd, ex->out + 2, ex->qlen, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != (ssize_t)ex->qlen) {
    return n < 0 ? dt_status_from_errno(errno) : DT_ESYS;
  }
  COUNT(ex, queries_udp);
  ex->state = DT_EX_UDP_WAIT;
  return DT_OK;
}

static dt_status_t open_connected(const struct sockaddr *server,
                                  socklen_t server_len, int type, int *fd) {
  *fd = socket(server->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (*fd < 0) {
    return dt_status_from_errno(errno);
  }
  /* connect() on UDP makes the kernel pick a random source port and drop
   * datagrams from other sources; we still check the source ourselves. */
  if (connect(*fd, server, server_len) != 0 && errno != EINPROGRESS) {
    dt_status_t st = dt_status_from_errno(errno);
    dt__close(*fd);
    *fd = -1;
    return st;
  }
  return DT_OK;
}

dt_status_t dt__udp_open(const struct sockaddr *server, socklen_t server_len,
                         int *fd) {
  return open_connected(server, server_len, SOCK_DGRAM, fd);
}

dt_status_t dt__exchange_start(dt_exchange_t *ex, const struct sockaddr *server,
                               socklen_t server_len, dt_transport_t transport,
                               const uint8_t *query, size_t qlen,
                               dt_ex_counters_t *counters) {
  if (qlen < 12 || qlen > DT_WIRE_QUERY_MAX ||
      server_len > sizeof(ex->server)) {
    return DT_EINVAL;
  }
  exchange_init(ex, server, server_len, transport, query, qlen, counters);
  dt_status_t st = open_connected(
      server, server_len,
      transport == DT_TRANSPORT_TCP ? SOCK_STREAM : SOCK_DGRAM, &ex->fd);
  if (st != DT_OK) {
    return st;
  }
  if (transport == DT_TRANSPORT_UDP) {
    st = udp_send(ex);
    if (st != DT_OK) {
      fail_close(ex);
    }
    return st;
  }
  COUNT(ex, queries_tcp);
  ex->state = DT_EX_TCP_CONNECT;
  return DT_OK;
}

dt_status_t dt__exchange_prepare_on(dt_exchange_t *ex, int fd,
                                    const struct sockaddr *server,
                                    socklen_t server_len, const uint8_t *query,
                                    size_t qlen, dt_ex_counters_t *counters) {
  if (qlen < 12 || qlen > DT_WIRE_QUERY_MAX ||
      server_len > sizeof(ex->server)) {
    return DT_EINVAL;
  }
  exchange_init(ex, server, server_len, DT_TRANSPORT_UDP, query, qlen,
                counters);
  ex->fd = fd;
  ex->borrowed = true;
  return DT_OK;
}

dt_status_t dt__exchange_start_on(dt_exchange_t *ex, int fd,
                                  const struct sockaddr *server,
                                  socklen_t server_len, const uint8_t *query,
                                  size_t qlen, dt_ex_counters_t *counters) {
  dt_status_t st = dt__exchange_prepare_on(ex, fd, server, server_len, query,
                                           qlen, counters);
  if (st != DT_OK) {
    return st;
  }
  st = udp_send(ex);
  if (st != DT_OK) {
    dt__exchange_close(ex);
  }
  return st;
}

size_t dt__exchange_send_batch(dt_exchange_t *const *ex, size_t n,
                               dt_status_t *st) {
  struct mmsghdr msg[DT_EX_BATCH_MAX];
  struct iovec iov[DT_EX_BATCH_MAX];
  int sent = 0;
  bool same_fd = n >= 2 && n <= DT_EX_BATCH_MAX;
  for (size_t i = 1; same_fd && i < n; i++) {
    same_fd = ex[i]->fd == ex[0]->fd;
  }
  if (same_fd) {
    memset(msg, 0, sizeof(msg[0]) * n);
    for (size_t i = 0; i < n; i++) {
      iov[i].iov_base = ex[i]->out + 2;
      iov[i].iov_len = ex[i]->qlen;
      msg[i].msg_hdr.msg_iov = &iov[i];
      msg[i].msg_hdr.msg_iovlen = 1;
    }
    do {
      sent = sendmmsg(ex[0]->fd, msg, (unsigned)n, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    /* -1 says nothing about which message failed, and the kernel stops at
     * the first that would not go: the rest take the single-send path
     * below, which gives each its own errno. */
    if (sent < 0) {
      sent = 0;
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (i < (size_t)sent) {
      if (msg[i].msg_len != ex[i]->qlen) {
        st[i] = DT_ESYS; /* as udp_send says of a datagram cut short */
      } else {
        COUNT(ex[i], queries_udp);
        ex[i]->state = DT_EX_UDP_WAIT;
        st[i] = DT_OK;
      }
    } else {
      st[i] = udp_send(ex[i]);
    }
    if (st[i] != DT_OK) {
      dt__exchange_close(ex[i]);
    }
  }
  return (size_t)sent;
}

void dt__exchange_deliver(dt_exchange_t *ex, const uint8_t *pkt, size_t len,
                          bool truncated) {
  if (len > sizeof(ex->udp)) {
    len = sizeof(ex->udp);
    truncated = true;
  }
  memcpy(ex->udp, pkt, len);
  if (truncated) {
    ex->udp[2] |= 0x02; /* go to TCP, as for any datagram cut short */
  }
  COUNT(ex, replies_accepted);
  ex->reply = ex->udp;
  ex->reply_len = len;
  ex->state = DT_EX_DONE;
}

int dt__exchange_fd(const dt_exchange_t *ex) {
  return ex->fd;
}

short dt__exchange_events(const dt_exchange_t *ex) {
  switch (ex->state) {
  case DT_EX_TCP_CONNECT:
  case DT_EX_TCP_SEND:
    return POLLOUT;
  case DT_EX_UDP_WAIT:
  case DT_EX_TCP_RECV:
    return POLLIN;
  default:
    return 0;
  }
}

dt_match_t dt__exchange_match(const dt_exchange_t *ex, const uint8_t *pkt,
                              size_t len) {
  return ex->exact_case ? dt__wire_match_exact(pkt, len, ex->out + 2, ex->qlen)
                        : dt__wire_match(pkt, len, ex->out + 2, ex->qlen);
}

/* Reads datagrams until one matches or the socket would block. */
static dt_ex_result_t udp_recv(dt_exchange_t *ex, dt_status_t *err) {
  for (;;) {
    struct sockaddr_storage from;
    socklen_t fromlen = sizeof(from);
    ssize_t n = recvfrom(ex->fd, ex->udp, sizeof(ex->udp), MSG_TRUNC,
                         (struct sockaddr *)&from, &fromlen);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return DT_EX_PENDING;
      }
      /* ICMP errors (port unreachable) surface here on a connected socket:
       * the server is down, no use waiting for the deadline. */
      *err = dt_status_from_errno(errno);
      return DT_EX_ERROR;
    }
    if (!dt__sockaddr_equal((struct sockaddr *)&from,
                            (struct sockaddr *)&ex->server)) {
      COUNT(ex, dropped_source);
      continue;
    }
    size_t len = (size_t)n;
    if (len > sizeof(ex->udp)) {
      /* Larger than anything we advertised: keep the header, which
       * matches like any reply, and flag TC so the caller moves to TCP. */
      len = sizeof(ex->udp);
      ex->udp[2] |= 0x02;
    }
    dt_match_t m = dt__exchange_match(ex, ex->udp, len);
    if (m == DT_MATCH_OK) {
      COUNT(ex, replies_accepted);
      ex->reply = ex->udp;
      ex->reply_len = len;
      ex->state = DT_EX_DONE;
      return DT_EX_REPLY;
    }
    dt__count_drop(ex->counters, m);
  }
}

static dt_ex_result_t tcp_send(dt_exchange_t *ex, dt_status_t *err) {
  size_t total = ex->qlen + 2;
  while (ex->sent < total) {
    ssize_t n =
        send(ex->fd, ex->out + ex->sent, total - ex->sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return DT_EX_PENDING;
      }
      *err = dt_status_from_errno(errno);
      return DT_EX_ERROR;
    }
    ex->sent += (size_t)n;
  }
  ex->state = DT_EX_TCP_RECV;
  return DT_EX_PENDING;
}

/* Reads the 2-byte length, then the message; a message that does not
 * match is skipped and the next one read (a server may answer late). */
static dt_ex_result_t tcp_recv(dt_exchange_t *ex, dt_status_t *err) {
  for (;;) {
    uint8_t *dst;
    size_t want;
    if (ex->tcp_got < 2) {
      dst = ex->tcp_len + ex->tcp_got;
      want = 2 - ex->tcp_got;
    } else {
      dst = ex->tcp_buf + (ex->tcp_got - 2);
      want = ex->tcp_need - (ex->tcp_got - 2);
    }
    ssize_t n = recv(ex->fd, dst, want, 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return DT_EX_PENDING;
      }
      *err = dt_status_from_errno(errno);
      return DT_EX_ERROR;
    }
    if (n == 0) {
      *err = DT_ECONNRESET;
      return DT_EX_ERROR;
    }
    ex->tcp_got += (size_t)n;
    if (ex->tcp_got == 2) {
      ex->tcp_need = (size_t)ex->tcp_len[0] << 8 | ex->tcp_len[1];
      if (ex->tcp_need < 12) {
        COUNT(ex, dropped_malformed);
        *err = DT_EBADREPLY;
        return DT_EX_ERROR;
      }
      dt__free(ex->tcp_buf);
      ex->tcp_buf = dt__malloc(ex->tcp_need);
      if (ex->tcp_buf == NULL) {
        *err = DT_ENOMEM;
        return DT_EX_ERROR;
      }
    }
    if (ex->tcp_got > 2 && ex->tcp_got - 2 == ex->tcp_need) {
      dt_match_t m = dt__exchange_match(ex, ex->tcp_buf, ex->tcp_need);
      if (m == DT_MATCH_OK) {
        COUNT(ex, replies_accepted);
        ex->reply = ex->tcp_buf;
        ex->reply_len = ex->tcp_need;
        ex->state = DT_EX_DONE;
        return DT_EX_REPLY;
      }
      dt__count_drop(ex->counters, m);
      ex->tcp_got = 0;
    }
  }
}

dt_ex_result_t dt__exchange_process(dt_exchange_t *ex, short revents,
                                    dt_status_t *err) {
  *err = DT_OK;
  switch (ex->state) {
  case DT_EX_UDP_WAIT:
    /* A shared socket is read by its owner, who delivers. */
    return ex->borrowed ? DT_EX_PENDING : udp_recv(ex, err);
  case DT_EX_TCP_CONNECT: {
    if (revents == 0) {
      return DT_EX_PENDING;
    }
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(ex->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) {
      soerr = errno;
    }
    if (soerr != 0) {
      errno = soerr;
      *err = dt_status_from_errno(soerr);
      return DT_EX_ERROR;
    }
    ex->state = DT_EX_TCP_SEND;
  }
    /* fall through */
  case DT_EX_TCP_SEND: {
    dt_ex_result_t r = tcp_send(ex, err);
    if (r != DT_EX_PENDING || ex->state != DT_EX_TCP_RECV) {
      return r;
    }
    return tcp_recv(ex, err);
  }
  case DT_EX_TCP_RECV:
    return tcp_recv(ex, err);
  case DT_EX_DONE:
    return DT_EX_REPLY;
  default:
    *err = DT_EINVAL;
    return DT_EX_ERROR;
  }
}

const uint8_t *dt__exchange_reply(const dt_exchange_t *ex, size_t *len) {
  *len = ex->reply_len;
  return ex->reply;
}

void dt__exchange_close(dt_exchange_t *ex) {
  if (ex->fd >= 0 && !ex->borrowed) {
    dt__close(ex->fd);
  }
  ex->fd = -1;
  ex->borrowed = false;
  dt__free(ex->tcp_buf);
  ex->tcp_buf = NULL;
  ex->reply = NULL;
  ex->state = DT_EX_IDLE;
}
