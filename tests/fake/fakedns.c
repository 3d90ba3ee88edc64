/* The fake server's sockets, thread and timers. One thread polls every
 * socket; replies that must wait (delay, hold) sit in a list with their due
 * time, so a slow answer never holds up another. Data and counters are
 * shared with the scripting calls under srv->lock; connections and pending
 * replies belong to the thread alone. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include "fakedns_int.h"

/* Tries at finding a port free on all four sockets before giving up. */
#define FK_BIND_TRIES 16
/* Connections beyond this are closed at once: the fake must not run out of
 * descriptors because a test leaks connections. */
#define FK_MAX_CONNS 256
/* Datagrams read per socket per wake-up, so one busy socket cannot starve
 * the others. */
#define FK_UDP_BATCH 64
/* How long listeners are left alone after accept() ran out of resources. */
#define FK_ACCEPT_PAUSE_US 50000u

uint64_t fakedns_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void fakedns_opts_init(fakedns_opts_t *opts) {
  memset(opts, 0, sizeof(*opts));
  opts->max_cname = 8;
}

static void close_fd(int *fd) {
  if (*fd >= 0) {
    close(*fd);
    *fd = -1;
  }
}

static bool set_flags(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
    return false;
  }
  int fd_fl = fcntl(fd, F_GETFD);
  return fd_fl >= 0 && fcntl(fd, F_SETFD, fd_fl | FD_CLOEXEC) == 0;
}

static socklen_t loopback(int fam, uint16_t port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof(*ss));
  if (fam == 0) {
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sizeof(*sin);
  }
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  sin6->sin6_addr = in6addr_loopback;
  return sizeof(*sin6);
}

/* A non-blocking socket bound to the loopback address of fam; -1 with errno
 * set on failure. */
static int bound_socket(int fam, int type, uint16_t port) {
  int fd = socket(fam == 0 ? AF_INET : AF_INET6, type, 0);
  if (fd < 0) {
    return -1;
  }
  int one = 1;
  if (fam == 1) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  /* Lets dt-fakedns restart on its port while old connections linger in
   * TIME_WAIT; never on UDP, where it would let two servers share a port. */
  if (type == SOCK_STREAM) {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  }
  struct sockaddr_storage ss;
  socklen_t len = loopback(fam, port, &ss);
  if (!set_flags(fd) || bind(fd, (struct sockaddr *)&ss, len) != 0 ||
      (type == SOCK_STREAM && listen(fd, 64) != 0)) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

static uint16_t bound_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
    return 0;
  }
  if (ss.ss_family == AF_INET) {
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  }
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void close_sockets(fakedns_t *srv) {
  for (int i = 0; i < 2; i++) {
    close_fd(&srv->udp[i]);
    close_fd(&srv->tcp[i]);
    close_fd(&srv->alt[i]);
  }
}

/* True when a failure to use ::1 means the host has no IPv6 rather than a
 * port clash. */
static bool no_ipv6(int err) {
  return err == EAFNOSUPPORT || err == EADDRNOTAVAIL || err == EPROTONOSUPPORT;
}

/* One attempt at binding all sockets on one port. */
static int bind_all(fakedns_t *srv, uint16_t want) {
  srv->udp[0] = bound_socket(0, SOCK_DGRAM, want);
  if (srv->udp[0] < 0) {
    return errno;
  }
  uint16_t port = bound_port(srv->udp[0]);
  srv->tcp[0] = bound_socket(0, SOCK_STREAM, port);
  if (srv->tcp[0] < 0) {
    return errno;
  }
  srv->alt[0] = bound_socket(0, SOCK_DGRAM, 0);
  if (srv->alt[0] < 0) {
    return errno;
  }
  srv->port = port;
  srv->has_v6 = false;
  if (srv->opts.ipv4_only) {
    return 0;
  }
  srv->udp[1] = bound_socket(1, SOCK_DGRAM, port);
  if (srv->udp[1] < 0) {
    return no_ipv6(errno) ? 0 : errno;
  }
  srv->tcp[1] = bound_socket(1, SOCK_STREAM, port);
  if (srv->tcp[1] < 0) {
    return errno;
  }
  srv->alt[1] = bound_socket(1, SOCK_DGRAM, 0);
  if (srv->alt[1] < 0) {
    return errno;
  }
  srv->has_v6 = true;
  return 0;
}

dt_status_t fakedns_new(const fakedns_opts_t *opts, fakedns_t **out) {
  if (out == NULL) {
    return DT_EINVAL;
  }
  fakedns_t *srv = calloc(1, sizeof(*srv));
  if (srv == NULL) {
    return DT_ENOMEM;
  }
  if (opts != NULL) {
    srv->opts = *opts;
  } else {
    fakedns_opts_init(&srv->opts);
  }
  for (int i = 0; i < 2; i++) {
    srv->udp[i] = srv->tcp[i] = srv->alt[i] = srv->wake[i] = -1;
  }
  srv->rng = fakedns_now_us() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)srv;
  if (srv->rng == 0) {
    srv->rng = 1;
  }
  dt_status_t st = DT_ENOMEM;
  bool locked = false, cond = false;
  pthread_condattr_t ca;
  if (pthread_mutex_init(&srv->lock, NULL) != 0) {
    goto done;
  }
  locked = true;
  /* Monotonic so fakedns_wait() survives wall-clock steps. */
  if (pthread_condattr_init(&ca) != 0) {
    goto done;
  }
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  cond = pthread_cond_init(&srv->arrived, &ca) == 0;
  pthread_condattr_destroy(&ca);
  if (!cond) {
    goto done;
  }
  if (pipe(srv->wake) != 0 || !set_flags(srv->wake[0]) ||
      !set_flags(srv->wake[1])) {
    st = dt_status_from_errno(errno);
    goto done;
  }
  int err = EADDRINUSE;
  for (int t = 0; t < FK_BIND_TRIES && err == EADDRINUSE; t++) {
    err = bind_all(srv, srv->opts.port);
    if (err != 0) {
      close_sockets(srv);
    }
    if (srv->opts.port != 0) {
      break; /* a fixed port cannot get any freer by retrying */
    }
  }
  if (err != 0) {
    st = dt_status_from_errno(err);
    goto done;
  }
  st = DT_OK;
done:
  if (st != DT_OK) {
    close_sockets(srv);
    close_fd(&srv->wake[0]);
    close_fd(&srv->wake[1]);
    if (cond) {
      pthread_cond_destroy(&srv->arrived);
    }
    if (locked) {
      pthread_mutex_destroy(&srv->lock);
    }
    free(srv);
    return st;
  }
  *out = srv;
  return DT_OK;
}

uint16_t fakedns_port(const fakedns_t *srv) {
  return srv->port;
}

bool fakedns_has_ipv6(const fakedns_t *srv) {
  return srv->has_v6;
}

dt_status_t fakedns_sockaddr(const fakedns_t *srv, int family,
                             struct sockaddr_storage *out, socklen_t *len) {
  if (family != AF_INET && family != AF_INET6) {
    return DT_EINVAL;
  }
  if (family == AF_INET6 && !srv->has_v6) {
    return DT_EAFNOSUPPORT;
  }
  *len = loopback(family == AF_INET ? 0 : 1, srv->port, out);
  return DT_OK;
}

/* --- the server thread ---------------------------------------------------- */

static fakedns__conn_t *conn_by_id(fakedns_t *srv, uint64_t id) {
  for (fakedns__conn_t *c = srv->conns; c != NULL; c = c->next) {
    if (c->id == id) {
      return c;
    }
  }
  return NULL;
}

static void conn_flush(fakedns__conn_t *c) {
  while (!c->dead && c->out_off < c->out_len) {
    /* MSG_NOSIGNAL: a client that went away must not kill the process. */
    ssize_t n =
        send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (n > 0) {
      c->out_off += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;
    } else {
      c->dead = true;
    }
  }
  c->out_off = c->out_len = 0;
}

static void conn_queue(fakedns__conn_t *c, const fakedns__msg_t *m) {
  if (c->dead) {
    return;
  }
  if (m->close) {
    c->dead = true;
    return;
  }
  size_t need = c->out_len + 2 + m->len;
  if (need > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 1024;
    while (cap < need) {
      cap *= 2;
    }
    uint8_t *p = realloc(c->out, cap);
    if (p == NULL) {
      c->dead = true;
      return;
    }
    c->out = p;
    c->out_cap = cap;
  }
  c->out[c->out_len++] = (uint8_t)(m->len >> 8);
  c->out[c->out_len++] = (uint8_t)m->len;
  memcpy(c->out + c->out_len, m->data, m->len);
  c->out_len += m->len;
}

static void deliver(fakedns_t *srv, fakedns_transport_t transport, int fam,
                    const struct sockaddr_storage *peer, socklen_t peer_len,
                    uint64_t conn_id, const fakedns__msg_t *msgs) {
  if (transport == FAKEDNS_UDP) {
    for (const fakedns__msg_t *m = msgs; m != NULL; m = m->next) {
      int fd = m->alt ? srv->alt[fam] : srv->udp[fam];
      /* A full socket buffer loses the datagram, as the network may. */
      (void)sendto(fd, m->data, m->len, 0, (const struct sockaddr *)peer,
                   peer_len);
    }
    return;
  }
  fakedns__conn_t *c = conn_by_id(srv, conn_id);
  if (c == NULL) {
    return; /* the client hung up first */
  }
  for (const fakedns__msg_t *m = msgs; m != NULL; m = m->next) {
    conn_queue(c, m);
  }
  conn_flush(c);
}

/* Handles one received message: plans under the lock, then sends now or
 * parks the reply. */
static void handle(fakedns_t *srv, const uint8_t *msg, size_t len,
                   fakedns_transport_t transport, int fam,
                   const struct sockaddr_storage *peer, socklen_t peer_len,
                   fakedns__conn_t *conn) {
  uint64_t now = fakedns_now_us();
  fakedns__plan_t plan;
  pthread_mutex_lock(&srv->lock);
  fakedns__plan(srv, msg, len, transport, now, &plan);
  pthread_mutex_unlock(&srv->lock);

  if (plan.arrived) {
    /* This query may be the one others were held for. */
    for (fakedns__pending_t *p = srv->pending; p != NULL; p = p->next) {
      if (p->held && memcmp(&p->hold_key, &plan.arrived_key,
                            sizeof(plan.arrived_key)) == 0) {
        p->held = false;
        p->due_us = now + (uint64_t)p->delay_ms * 1000u;
      }
    }
  }
  if (plan.msgs == NULL) {
    return;
  }
  if (!plan.hold && plan.delay_ms == 0) {
    deliver(srv, transport, fam, peer, peer_len, conn ? conn->id : 0,
            plan.msgs);
    fakedns__msgs_free(plan.msgs);
    return;
  }
  fakedns__pending_t *p = calloc(1, sizeof(*p));
  if (p == NULL) {
    fakedns__msgs_free(plan.msgs);
    return;
  }
  p->delay_ms = plan.delay_ms;
  p->due_us = now + (uint64_t)plan.delay_ms * 1000u;
  p->held = plan.hold;
  p->hold_key = plan.hold_key;
  p->transport = transport;
  p->fam = fam;
  if (peer != NULL) {
    memcpy(&p->peer, peer, peer_len);
    p->peer_len = peer_len;
  }
  if (conn != NULL) {
    p->conn_id = conn->id;
    conn->pending++;
  }
  p->msgs = plan.msgs;
  p->next = srv->pending;
  srv->pending = p;
}

static void pending_free(fakedns_t *srv, fakedns__pending_t *p) {
  if (p->transport == FAKEDNS_TCP) {
    fakedns__conn_t *c = conn_by_id(srv, p->conn_id);
    if (c != NULL && c->pending > 0) {
      c->pending--;
    }
  }
  fakedns__msgs_free(p->msgs);
  free(p);
}

/* Sends what is due; returns the poll timeout until the next one. */
static int fire_due(fakedns_t *srv) {
  uint64_t now = fakedns_now_us();
  uint64_t next = UINT64_MAX;
  fakedns__pending_t **pp = &srv->pending;
  while (*pp != NULL) {
    fakedns__pending_t *p = *pp;
    if (!p->held && p->due_us <= now) {
      *pp = p->next;
      deliver(srv, p->transport, p->fam, &p->peer, p->peer_len, p->conn_id,
              p->msgs);
      pending_free(srv, p);
      continue;
    }
    if (!p->held && p->due_us < next) {
      next = p->due_us;
    }
    pp = &p->next;
  }
  if (next == UINT64_MAX) {
    return -1;
  }
  /* Rounded up: waking a hair early would only spin. */
  uint64_t ms = (next - now + 999) / 1000;
  return ms > 60000 ? 60000 : (int)ms;
}

static void read_udp(fakedns_t *srv, int fam) {
  /* On the stack: several servers may run in one process. */
  uint8_t buf[65536];
  for (int i = 0; i < FK_UDP_BATCH; i++) {
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    ssize_t n = recvfrom(srv->udp[fam], buf, sizeof(buf), 0,
                         (struct sockaddr *)&peer, &plen);
    if (n < 0) {
      return; /* EAGAIN, or an ICMP error from an earlier send */
    }
    handle(srv, buf, (size_t)n, FAKEDNS_UDP, fam, &peer, plen, NULL);
  }
}

static void accept_tcp(fakedns_t *srv, int fam) {
  for (;;) {
    int fd = accept(srv->tcp[fam], NULL, NULL);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM) {
        /* The connection stays queued and the listener readable: rest a
         * while instead of spinning (a test may be exhausting
         * descriptors on purpose). */
        srv->accept_pause_until = fakedns_now_us() + FK_ACCEPT_PAUSE_US;
      }
      return;
    }
    if (srv->nconns >= FK_MAX_CONNS || !set_flags(fd)) {
      close(fd);
      continue;
    }
    if (srv->opts.tcp_sndbuf > 0) {
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &srv->opts.tcp_sndbuf,
                 sizeof(srv->opts.tcp_sndbuf));
    }
    fakedns__conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
      close(fd);
      continue;
    }
    c->fd = fd;
    c->id = ++srv->next_conn_id;
    c->next = srv->conns;
    srv->conns = c;
    srv->nconns++;
    pthread_mutex_lock(&srv->lock);
    srv->totals.tcp_accepted++;
    pthread_mutex_unlock(&srv->lock);
  }
}

static void read_conn(fakedns_t *srv, fakedns__conn_t *c) {
  for (;;) {
    ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
    if (n == 0) {
      c->eof = true;
      return;
    }
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        c->dead = true;
      }
      return;
    }
    c->in_len += (size_t)n;
    /* Every complete frame in the buffer, in order. */
    size_t off = 0;
    while (!c->dead && c->in_len - off >= 2) {
      size_t flen = (size_t)c->in[off] << 8 | c->in[off + 1];
      if (c->in_len - off - 2 < flen) {
        break;
      }
      handle(srv, c->in + off + 2, flen, FAKEDNS_TCP, 0, NULL, 0, c);
      off += 2 + flen;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
  }
}

static void conn_close(fakedns_t *srv, fakedns__conn_t *c) {
  close(c->fd);
  free(c->out);
  free(c);
  srv->nconns--;
}

/* Closes connections that are dead, or finished after the peer's EOF. */
static void reap(fakedns_t *srv) {
  fakedns__conn_t **cp = &srv->conns;
  while (*cp != NULL) {
    fakedns__conn_t *c = *cp;
    if (c->dead || (c->eof && c->pending == 0 && c->out_len == 0)) {
      *cp = c->next;
      conn_close(srv, c);
      continue;
    }
    cp = &c->next;
  }
}

/* What a pollfd stands for. */
typedef struct {
  enum { FK_WAKE, FK_UDP, FK_TCP, FK_CONN } kind;
  int fam;
  fakedns__conn_t *conn;
} fk_watch_t;

static bool stop_requested(fakedns_t *srv) {
  uint8_t b[64];
  while (read(srv->wake[0], b, sizeof(b)) > 0) {
  }
  pthread_mutex_lock(&srv->lock);
  bool stop = srv->stopping;
  pthread_mutex_unlock(&srv->lock);
  return stop;
}

static void *serve(void *arg) {
  fakedns_t *srv = arg;
  struct pollfd *pfd = NULL;
  fk_watch_t *w = NULL;
  size_t cap = 0;
  bool stop = false;
  while (!stop) {
    int timeout = fire_due(srv);
    reap(srv);
    uint64_t now = fakedns_now_us();
    bool accepting = now >= srv->accept_pause_until;
    if (!accepting) {
      int rest = (int)((srv->accept_pause_until - now + 999) / 1000);
      if (timeout < 0 || rest < timeout) {
        timeout = rest;
      }
    }
    size_t need = 5 + srv->nconns;
    if (need > cap) {
      struct pollfd *np = realloc(pfd, need * 2 * sizeof(*np));
      if (np != NULL) {
        pfd = np;
      }
      fk_watch_t *nw = realloc(w, need * 2 * sizeof(*nw));
      if (nw != NULL) {
        w = nw;
      }
      if (np == NULL || nw == NULL) {
        /* Try again shortly; nothing is lost but time. */
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
        continue;
      }
      cap = need * 2;
    }
    size_t n = 0;
    pfd[n] = (struct pollfd){srv->wake[0], POLLIN, 0};
    w[n++] = (fk_watch_t){FK_WAKE, 0, NULL};
    for (int fam = 0; fam < 2; fam++) {
      if (srv->udp[fam] >= 0) {
        pfd[n] = (struct pollfd){srv->udp[fam], POLLIN, 0};
        w[n++] = (fk_watch_t){FK_UDP, fam, NULL};
      }
      if (srv->tcp[fam] >= 0 && accepting) {
        pfd[n] = (struct pollfd){srv->tcp[fam], POLLIN, 0};
        w[n++] = (fk_watch_t){FK_TCP, fam, NULL};
      }
    }
    for (fakedns__conn_t *c = srv->conns; c != NULL; c = c->next) {
      short ev = c->eof ? 0 : POLLIN;
      if (c->out_len > 0) {
        ev |= POLLOUT;
      }
      pfd[n] = (struct pollfd){c->fd, ev, 0};
      w[n++] = (fk_watch_t){FK_CONN, 0, c};
    }
    if (poll(pfd, (nfds_t)n, timeout) < 0) {
      continue; /* EINTR: the descriptors are ours and valid */
    }
    for (size_t i = 0; i < n; i++) {
      short re = pfd[i].revents;
      if (re == 0) {
        continue;
      }
      fakedns__conn_t *c = w[i].conn;
      switch (w[i].kind) {
      case FK_WAKE:
        stop = stop_requested(srv);
        break;
      case FK_UDP:
        read_udp(srv, w[i].fam);
        break;
      case FK_TCP:
        accept_tcp(srv, w[i].fam);
        break;
      case FK_CONN:
        if (c->eof && (re & (POLLHUP | POLLERR))) {
          /* Gone both ways: nothing sent could arrive, and poll would
           * report this again at once. */
          c->dead = true;
          break;
        }
        if (re & (POLLIN | POLLHUP | POLLERR)) {
          read_conn(srv, c);
        }
        if (re & POLLOUT) {
          conn_flush(c);
        }
        break;
      }
    }
  }
  free(pfd);
  free(w);
  while (srv->pending != NULL) {
    fakedns__pending_t *p = srv->pending;
    srv->pending = p->next;
    pending_free(srv, p);
  }
  while (srv->conns != NULL) {
    fakedns__conn_t *c = srv->conns;
    srv->conns = c->next;
    conn_flush(c);
    conn_close(srv, c);
  }
  return NULL;
}

dt_status_t fakedns_start(fakedns_t *srv) {
  pthread_mutex_lock(&srv->lock);
  if (srv->running) {
    pthread_mutex_unlock(&srv->lock);
    return DT_EBUSY;
  }
  int err = pthread_create(&srv->thread, NULL, serve, srv);
  srv->running = err == 0;
  pthread_mutex_unlock(&srv->lock);
  return err == 0 ? DT_OK : dt_status_from_errno(err);
}

void fakedns_stop(fakedns_t *srv) {
  pthread_mutex_lock(&srv->lock);
  /* A stop already under way in another thread owns the join. */
  if (!srv->running || srv->stopping) {
    pthread_mutex_unlock(&srv->lock);
    return;
  }
  srv->stopping = true;
  pthread_mutex_unlock(&srv->lock);
  uint8_t b = 1;
  /* The pipe is non-blocking: when full, a wake-up is already pending. */
  (void)write(srv->wake[1], &b, 1);
  pthread_join(srv->thread, NULL);
  pthread_mutex_lock(&srv->lock);
  srv->running = false;
  srv->stopping = false;
  pthread_mutex_unlock(&srv->lock);
}

void fakedns_free(fakedns_t *srv) {
  if (srv == NULL) {
    return;
  }
  fakedns_stop(srv);
  close_sockets(srv);
  close_fd(&srv->wake[0]);
  close_fd(&srv->wake[1]);
  fakedns__zone_free(srv);
  pthread_cond_destroy(&srv->arrived);
  pthread_mutex_destroy(&srv->lock);
  free(srv);
}

/* --- counters ------------------------------------------------------------- */

dt_status_t fakedns_get_stats(fakedns_t *srv, const char *name, uint16_t type,
                              fakedns_stats_t *out) {
  fakedns__key_t key;
  if (!fakedns__key_from_str(&key, name, type)) {
    return DT_EINVAL;
  }
  memset(out, 0, sizeof(*out));
  pthread_mutex_lock(&srv->lock);
  fakedns__slot_t *s = fakedns__slot(srv, &key, false);
  if (s != NULL) {
    *out = s->stats;
  }
  pthread_mutex_unlock(&srv->lock);
  return DT_OK;
}

unsigned fakedns_count(fakedns_t *srv, const char *name, uint16_t type,
                       fakedns_transport_t transport) {
  fakedns_stats_t st;
  if (fakedns_get_stats(srv, name, type, &st) != DT_OK) {
    return 0;
  }
  return transport == FAKEDNS_UDP ? st.udp : st.tcp;
}

void fakedns_get_totals(fakedns_t *srv, fakedns_totals_t *out) {
  pthread_mutex_lock(&srv->lock);
  *out = srv->totals;
  pthread_mutex_unlock(&srv->lock);
}

unsigned fakedns_total(fakedns_t *srv, fakedns_transport_t transport) {
  fakedns_totals_t t;
  fakedns_get_totals(srv, &t);
  return transport == FAKEDNS_UDP ? t.udp : t.tcp;
}

void fakedns_reset_stats(fakedns_t *srv) {
  pthread_mutex_lock(&srv->lock);
  memset(&srv->totals, 0, sizeof(srv->totals));
  fakedns__slot_t *s, *tmp;
  HASH_ITER(hh, srv->slots, s, tmp) {
    memset(&s->stats, 0, sizeof(s->stats));
  }
  pthread_mutex_unlock(&srv->lock);
}

dt_status_t fakedns_wait(fakedns_t *srv, const char *name, uint16_t type,
                         unsigned n, int timeout_ms) {
  fakedns__key_t key;
  if (!fakedns__key_from_str(&key, name, type)) {
    return DT_EINVAL;
  }
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  if (timeout_ms >= 0) {
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
  }
  dt_status_t st = DT_OK;
  pthread_mutex_lock(&srv->lock);
  for (;;) {
    fakedns__slot_t *s = fakedns__slot(srv, &key, false);
    if (s != NULL && s->stats.udp + s->stats.tcp >= n) {
      break;
    }
    int err = timeout_ms < 0
                  ? pthread_cond_wait(&srv->arrived, &srv->lock)
                  : pthread_cond_timedwait(&srv->arrived, &srv->lock, &until);
    if (err == ETIMEDOUT) {
      s = fakedns__slot(srv, &key, false);
      if (s == NULL || s->stats.udp + s->stats.tcp < n) {
        st = DT_ETIMEDOUT;
      }
      break;
    }
  }
  pthread_mutex_unlock(&srv->lock);
  return st;
}
