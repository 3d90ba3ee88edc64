/* dnsq: a tiny DNS client for tests. It sends one query to a server on
 * loopback (127.0.0.1 or ::1) over UDP or TCP and returns the reply, with a
 * deadline enforced by poll(). It is deliberately independent of the
 * dialtone resolver, so the resolver can later be checked against what this
 * helper sees from the same server.
 *
 * Each call is self-contained (its own socket, no global state), so threads
 * may call it concurrently. */
#ifndef DT_TESTS_DNSQ_H
#define DT_TESTS_DNSQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ldns/ldns.h>

#include "dialtone/common.h"

/* Where and how one query travels. Fill with dnsq_opts_init() first. */
typedef struct {
  int family;         /* AF_INET: 127.0.0.1; AF_INET6: ::1 */
  uint16_t port;      /* server port on loopback, host byte order */
  bool tcp;           /* TCP with the 2-byte length prefix instead of UDP */
  uint16_t edns_size; /* 0: no OPT record; else the UDP size advertised */
  bool rd;            /* set RD (recursion desired) in the query */
  int timeout_ms;     /* bound on the whole exchange */
} dnsq_opts_t;

/* Defaults: AF_INET, port 0 (must be set), UDP, no EDNS, RD clear,
 * 2000 ms. */
void dnsq_opts_init(dnsq_opts_t *opts);

/* Fills *addr with the loopback address of family and port.
 * @return DT_OK; DT_EAFNOSUPPORT for a family other than AF_INET/AF_INET6. */
dt_status_t dnsq_loopback(int family, uint16_t port,
                          struct sockaddr_storage *addr, socklen_t *addrlen);

/* Sends a query in wire form and receives the reply in wire form.
 * Over UDP the socket is connected, so only the server's datagrams arrive;
 * datagrams that are too short or carry another ID are dropped and the wait
 * goes on. A UDP datagram longer than reply_cap is cut to reply_cap, so pass
 * 65535 bytes to see every reply whole.
 * @param reply_len receives the reply's length; set only on DT_OK.
 * @return DT_OK; DT_ETIMEDOUT when no reply came before the deadline;
 *         DT_ECONNREFUSED when nothing listens on the port; DT_ETOOBIG when
 *         a TCP reply is larger than reply_cap; DT_EBADREPLY for a short
 *         TCP reply or one with another ID; DT_EINVAL for bad arguments;
 *         other statuses from errno. */
dt_status_t dnsq_exchange(const dnsq_opts_t *opts, const uint8_t *query,
                          size_t query_len, uint8_t *reply, size_t reply_cap,
                          size_t *reply_len);

/* Asks name (presentation form, absolute or not: it is taken as absolute)
 * for type in class IN, with a random ID, and parses the reply.
 * The reply must have QR set, the query's ID and the same question (names
 * compared without regard to case); the rcode is left for the caller.
 * @param out receives the reply, owned by the caller (ldns_pkt_free()); set
 *            only on DT_OK.
 * @return DT_OK; DT_EBADNAME when name cannot be parsed; DT_EBADREPLY when
 *         the reply does not parse or does not match the query; the
 *         statuses of dnsq_exchange(). */
dt_status_t dnsq_query(const dnsq_opts_t *opts, const char *name,
                       ldns_rr_type type, ldns_pkt **out);

#endif
