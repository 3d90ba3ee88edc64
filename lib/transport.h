/* One exchange with one server: a query out, the matching reply in, over
 * UDP or TCP on a non-blocking socket. The caller polls the descriptor
 * (dt__exchange_fd / dt__exchange_events) and calls dt__exchange_process on
 * readiness; deadlines belong to the caller. */
#ifndef DT_TRANSPORT_H
#define DT_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dialtone/resolver.h"
#include "wire.h"

/* Big enough for any EDNS reply we ask for; a larger datagram is treated
 * as truncated and retried over TCP. */
#define DT_UDP_BUF 4096

typedef enum {
  DT_EX_IDLE = 0,
  DT_EX_UDP_WAIT,
  DT_EX_TCP_CONNECT,
  DT_EX_TCP_SEND,
  DT_EX_TCP_RECV,
  DT_EX_DONE,
} dt_ex_state_t;

/* What dt__exchange_process says. */
typedef enum {
  DT_EX_PENDING = 0, /* keep waiting */
  DT_EX_REPLY,       /* a matched reply is in dt__exchange_reply() */
  DT_EX_ERROR,       /* the exchange failed; see the status */
} dt_ex_result_t;

/* Counters an exchange adds to; all updated atomically. */
typedef struct {
  uint64_t queries_udp;
  uint64_t queries_tcp;
  uint64_t replies_accepted;
  uint64_t dropped_source;
  uint64_t dropped_id;
  uint64_t dropped_question;
  uint64_t dropped_malformed;
} dt_ex_counters_t;

typedef struct {
  int fd;
  bool borrowed; /* fd belongs to a shared socket: never read or closed here */
  dt_ex_state_t state;
  dt_transport_t transport;
  struct sockaddr_storage server;
  socklen_t server_len;
  dt_ex_counters_t *counters; /* may be NULL */
  /* 0x20 mode: the reply's question must keep the query's case. Set by the
   * caller after a start (no reply is read before the first process). */
  bool exact_case;
  /* The query with room for TCP's 2-byte length in front. */
  uint8_t out[2 + DT_WIRE_QUERY_MAX];
  size_t qlen;
  size_t sent; /* TCP: bytes of out written */
  /* Reply: UDP datagrams land in udp; TCP reads the length, then into a
   * buffer of exactly that size. */
  uint8_t udp[DT_UDP_BUF];
  uint8_t tcp_len[2];
  size_t tcp_got; /* bytes of length + body received */
  uint8_t *tcp_buf;
  size_t tcp_need;
  const uint8_t *reply;
  size_t reply_len;
} dt_exchange_t;

/* Opens the socket and sends (UDP) or starts connecting (TCP). The query
 * is copied. On failure the exchange holds nothing and the status says why
 * (DT_ENETUNREACH, DT_ECONNREFUSED, DT_EMFILE, DT_ENOMEM, ...). */
dt_status_t dt__exchange_start(dt_exchange_t *ex, const struct sockaddr *server,
                               socklen_t server_len, dt_transport_t transport,
                               const uint8_t *query, size_t qlen,
                               dt_ex_counters_t *counters);
/* Opens a non-blocking UDP socket connected to server (kernel-chosen
 * random source port). */
dt_status_t dt__udp_open(const struct sockaddr *server, socklen_t server_len,
                         int *fd);
/* Like dt__exchange_start over UDP, but sends on a socket the caller owns
 * and reads: replies come in through dt__exchange_deliver. */
dt_status_t dt__exchange_start_on(dt_exchange_t *ex, int fd,
                                  const struct sockaddr *server,
                                  socklen_t server_len, const uint8_t *query,
                                  size_t qlen, dt_ex_counters_t *counters);
/* Like dt__exchange_start_on, but the query does not leave yet: the
 * exchange holds the socket and waits for dt__exchange_send_batch. */
dt_status_t dt__exchange_prepare_on(dt_exchange_t *ex, int fd,
                                    const struct sockaddr *server,
                                    socklen_t server_len, const uint8_t *query,
                                    size_t qlen, dt_ex_counters_t *counters);
/* Most prepared exchanges dt__exchange_send_batch sends at once. */
#define DT_EX_BATCH_MAX 2
/* Sends the queries of n prepared exchanges (dt__exchange_prepare_on), in
 * order: with one sendmmsg(2) when 2 <= n <= DT_EX_BATCH_MAX and they share
 * one socket; whatever that call did not send goes out with a send(2) of
 * its own, as from dt__exchange_start_on. st[i] says how exchange i fared,
 * as dt__exchange_start_on would; a failed exchange is closed. Returns how
 * many left in the one sendmmsg (0 when it was not used or sent nothing). */
size_t dt__exchange_send_batch(dt_exchange_t *const *ex, size_t n,
                               dt_status_t *st);
/* Hands a datagram the caller matched (dt__wire_match) to a borrowed-socket
 * exchange; it becomes the reply. truncated: the datagram was longer than
 * the caller's buffer (the reply gets TC, so the question moves to TCP). */
void dt__exchange_deliver(dt_exchange_t *ex, const uint8_t *pkt, size_t len,
                          bool truncated);
/* Whether pkt answers the exchange's query (dt__wire_match, or
 * dt__wire_match_exact in 0x20 mode). */
dt_match_t dt__exchange_match(const dt_exchange_t *ex, const uint8_t *pkt,
                              size_t len);
int dt__exchange_fd(const dt_exchange_t *ex);
/* POLLIN or POLLOUT: what the exchange waits for. */
short dt__exchange_events(const dt_exchange_t *ex);
/* Advances after poll reported revents for the descriptor (0 to just try).
 * Mismatched datagrams are dropped, counted, and the wait goes on. */
dt_ex_result_t dt__exchange_process(dt_exchange_t *ex, short revents,
                                    dt_status_t *err);
/* The matched reply, valid until dt__exchange_close. */
const uint8_t *dt__exchange_reply(const dt_exchange_t *ex, size_t *len);
/* Closes the socket and frees buffers; safe to call twice. */
void dt__exchange_close(dt_exchange_t *ex);

/* Counts a datagram that matched no question, by why (dt__wire_match). */
void dt__count_drop(dt_ex_counters_t *c, dt_match_t why);

/* Equality of two socket addresses (family, address, port). */
bool dt__sockaddr_equal(const struct sockaddr *a, const struct sockaddr *b);

#endif
