#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "dnsq.h"

/* Memory here comes from the C library, not dt__malloc: tests that inject
 * allocation failures into dialtone must not see this helper's allocations
 * counted or failed. */

#define DNS_HEADER_LEN 12

void dnsq_opts_init(dnsq_opts_t *opts) {
  memset(opts, 0, sizeof(*opts));
  opts->family = AF_INET;
  opts->timeout_ms = 2000;
}

dt_status_t dnsq_loopback(int family, uint16_t port,
                          struct sockaddr_storage *addr, socklen_t *addrlen) {
  memset(addr, 0, sizeof(*addr));
  if (family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *)addr;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *addrlen = sizeof(*sin);
    return DT_OK;
  }
  if (family == AF_INET6) {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)addr;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_addr = in6addr_loopback;
    *addrlen = sizeof(*sin6);
    return DT_OK;
  }
  return DT_EAFNOSUPPORT;
}

/* Non-blocking so that every wait goes through poll() and its deadline;
 * close-on-exec so a server the test forks later does not inherit it. */
static dt_status_t open_socket(int family, int type, int *out) {
  int fd = socket(family, type, 0);
  if (fd < 0) {
    return dt_status_from_errno(errno);
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
    int err = errno;
    close(fd);
    return dt_status_from_errno(err);
  }
  *out = fd;
  return DT_OK;
}

static dt_status_t wait_fd(int fd, short events, dt_deadline_t deadline) {
  for (;;) {
    int ms = dt__deadline_poll_ms(NULL, deadline);
    if (ms == 0) {
      return DT_ETIMEDOUT;
    }
    struct pollfd p = {.fd = fd, .events = events, .revents = 0};
    int n = poll(&p, 1, ms);
    if (n > 0) {
      /* POLLERR/POLLHUP are reported as ready: the next call on the
       * socket returns the error itself. */
      return DT_OK;
    }
    if (n < 0 && errno != EINTR) {
      return dt_status_from_errno(errno);
    }
  }
}

static bool would_block(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

static dt_status_t udp_exchange(int fd, const uint8_t *query, size_t query_len,
                                uint8_t *reply, size_t reply_cap,
                                size_t *reply_len, dt_deadline_t deadline) {
  for (;;) {
    if (send(fd, query, query_len, 0) >= 0) {
      break;
    }
    if (!would_block(errno)) {
      return dt_status_from_errno(errno);
    }
    dt_status_t st = wait_fd(fd, POLLOUT, deadline);
    if (st != DT_OK) {
      return st;
    }
  }
  for (;;) {
    dt_status_t st = wait_fd(fd, POLLIN, deadline);
    if (st != DT_OK) {
      return st;
    }
    ssize_t n = recv(fd, reply, reply_cap, 0);
    if (n < 0) {
      if (would_block(errno)) {
        continue;
      }
      /* ECONNREFUSED: an ICMP port unreachable came back, nothing listens. */
      return dt_status_from_errno(errno);
    }
    /* The connected socket already filters the source; the ID filters
     * stale replies to an earlier query that used the same port. */
    if ((size_t)n < DNS_HEADER_LEN || memcmp(reply, query, 2) != 0) {
      continue;
    }
    *reply_len = (size_t)n;
    return DT_OK;
  }
}

static dt_status_t send_all(int fd, const uint8_t *buf, size_t len,
                            dt_deadline_t deadline) {
  size_t done = 0;
  while (done < len) {
    /* MSG_NOSIGNAL: a server that closes early must give EPIPE, not kill
     * the test with SIGPIPE. */
    ssize_t n = send(fd, buf + done, len - done, MSG_NOSIGNAL);
    if (n >= 0) {
      done += (size_t)n;
      continue;
    }
    if (!would_block(errno)) {
      return dt_status_from_errno(errno);
    }
    dt_status_t st = wait_fd(fd, POLLOUT, deadline);
    if (st != DT_OK) {
      return st;
    }
  }
  return DT_OK;
}

static dt_status_t recv_all(int fd, uint8_t *buf, size_t len,
                            dt_deadline_t deadline) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = recv(fd, buf + done, len - done, 0);
    if (n > 0) {
      done += (size_t)n;
      continue;
    }
    if (n == 0) {
      return DT_EBADREPLY; /* closed before the whole message came */
    }
    if (!would_block(errno)) {
      return dt_status_from_errno(errno);
    }
    dt_status_t st = wait_fd(fd, POLLIN, deadline);
    if (st != DT_OK) {
      return st;
    }
  }
  return DT_OK;
}

static dt_status_t tcp_exchange(int fd, const uint8_t *query, size_t query_len,
                                uint8_t *reply, size_t reply_cap,
                                size_t *reply_len, dt_deadline_t deadline) {
  if (query_len > 65535) {
    return DT_EINVAL;
  }
  /* Prefix and message leave in one send: two small writes could wait on
   * Nagle and delayed ACK for tens of milliseconds. */
  uint8_t *frame = malloc(query_len + 2);
  if (frame == NULL) {
    return DT_ENOMEM;
  }
  frame[0] = (uint8_t)(query_len >> 8);
  frame[1] = (uint8_t)(query_len & 0xff);
  memcpy(frame + 2, query, query_len);
  dt_status_t st = send_all(fd, frame, query_len + 2, deadline);
  free(frame);
  if (st != DT_OK) {
    return st;
  }
  uint8_t prefix[2];
  st = recv_all(fd, prefix, sizeof(prefix), deadline);
  if (st != DT_OK) {
    return st;
  }
  size_t len = ((size_t)prefix[0] << 8) | prefix[1];
  if (len > reply_cap) {
    return DT_ETOOBIG;
  }
  st = recv_all(fd, reply, len, deadline);
  if (st != DT_OK) {
    return st;
  }
  if (len < DNS_HEADER_LEN || memcmp(reply, query, 2) != 0) {
    return DT_EBADREPLY;
  }
  *reply_len = len;
  return DT_OK;
}

static dt_status_t connect_by(int fd, const struct sockaddr_storage *addr,
                              socklen_t addrlen, dt_deadline_t deadline) {
  if (connect(fd, (const struct sockaddr *)addr, addrlen) == 0) {
    return DT_OK;
  }
  if (errno != EINPROGRESS && errno != EINTR) {
    return dt_status_from_errno(errno);
  }
  dt_status_t st = wait_fd(fd, POLLOUT, deadline);
  if (st != DT_OK) {
    return st;
  }
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
    return dt_status_from_errno(errno);
  }
  return err == 0 ? DT_OK : dt_status_from_errno(err);
}

dt_status_t dnsq_exchange(const dnsq_opts_t *opts, const uint8_t *query,
                          size_t query_len, uint8_t *reply, size_t reply_cap,
                          size_t *reply_len) {
  if (opts == NULL || query == NULL || query_len < DNS_HEADER_LEN ||
      reply == NULL || reply_len == NULL || opts->port == 0) {
    return DT_EINVAL;
  }
  struct sockaddr_storage addr;
  socklen_t addrlen;
  dt_status_t st = dnsq_loopback(opts->family, opts->port, &addr, &addrlen);
  if (st != DT_OK) {
    return st;
  }
  dt_deadline_t deadline = dt__deadline_in(NULL, opts->timeout_ms);
  int fd = -1;
  st = open_socket(opts->family, opts->tcp ? SOCK_STREAM : SOCK_DGRAM, &fd);
  if (st != DT_OK) {
    return st;
  }
  st = connect_by(fd, &addr, addrlen, deadline);
  if (st == DT_OK) {
    if (opts->tcp) {
      st = tcp_exchange(fd, query, query_len, reply, reply_cap, reply_len,
                        deadline);
    } else {
      st = udp_exchange(fd, query, query_len, reply, reply_cap, reply_len,
                        deadline);
    }
  }
  close(fd);
  return st;
}

/* The reply answers our query only if it is a response with our question:
 * a server that echoes another name or type is answering something else. */
static bool same_question(const ldns_pkt *query, const ldns_pkt *reply) {
  if (!ldns_pkt_qr(reply) || ldns_pkt_id(reply) != ldns_pkt_id(query) ||
      ldns_pkt_qdcount(reply) != 1) {
    return false;
  }
  const ldns_rr *q = ldns_rr_list_rr(ldns_pkt_question(query), 0);
  const ldns_rr *r = ldns_rr_list_rr(ldns_pkt_question(reply), 0);
  return r != NULL && ldns_rr_get_type(r) == ldns_rr_get_type(q) &&
         ldns_rr_get_class(r) == ldns_rr_get_class(q) &&
         ldns_dname_compare(ldns_rr_owner(r), ldns_rr_owner(q)) == 0;
}

dt_status_t dnsq_query(const dnsq_opts_t *opts, const char *name,
                       ldns_rr_type type, ldns_pkt **out) {
  if (opts == NULL || name == NULL || out == NULL) {
    return DT_EINVAL;
  }
  dt_status_t st = DT_OK;
  ldns_pkt *query = NULL;
  ldns_pkt *reply = NULL;
  uint8_t *wire = NULL;
  uint8_t *buf = NULL;
  size_t wire_len = 0;
  size_t reply_len = 0;

  ldns_rdf *qname = ldns_dname_new_frm_str(name);
  if (qname == NULL) {
    return DT_EBADNAME;
  }
  /* The packet owns qname only once it exists: ldns 1.8 leaves it to the
   * caller when ldns_pkt_query_new() fails. */
  query =
      ldns_pkt_query_new(qname, type, LDNS_RR_CLASS_IN, opts->rd ? LDNS_RD : 0);
  if (query == NULL) {
    ldns_rdf_deep_free(qname);
    return DT_ENOMEM;
  }
  ldns_pkt_set_random_id(query);
  if (opts->edns_size > 0) {
    ldns_pkt_set_edns_udp_size(query, opts->edns_size);
  }
  if (ldns_pkt2wire(&wire, query, &wire_len) != LDNS_STATUS_OK) {
    st = DT_ENOMEM;
    goto done;
  }
  buf = malloc(LDNS_MAX_PACKETLEN);
  if (buf == NULL) {
    st = DT_ENOMEM;
    goto done;
  }
  st = dnsq_exchange(opts, wire, wire_len, buf, LDNS_MAX_PACKETLEN, &reply_len);
  if (st != DT_OK) {
    goto done;
  }
  if (ldns_wire2pkt(&reply, buf, reply_len) != LDNS_STATUS_OK) {
    reply = NULL;
    st = DT_EBADREPLY;
    goto done;
  }
  if (!same_question(query, reply)) {
    st = DT_EBADREPLY;
    goto done;
  }
  *out = reply;
  reply = NULL;

done:
  ldns_pkt_free(reply);
  free(buf);
  free(wire);
  ldns_pkt_free(query);
  return st;
}
