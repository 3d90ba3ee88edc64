/* authsrv: a real authoritative DNS server (NSD) on loopback for
 * integration tests. It serves tests/fake/test.zone (dialtone.test.) and the
 * reverse zones tests/fake/test-rev4.zone (2.0.192.in-addr.arpa.) and
 * tests/fake/test-rev6.zone (8.b.d.0.1.0.0.2.ip6.arpa.) on 127.0.0.1, and on
 * ::1 when the machine has IPv6 loopback, at a free port.
 *
 * Everything NSD writes lives in a private temporary directory (under
 * $TMPDIR, else /tmp) that authsrv_stop_free() removes; the source tree is
 * only read, so read-only trees (make distcheck) work. NSD runs as the
 * calling user and never drops privileges, so root and non-root work alike.
 * Rate limiting (RRL) is off, so repeated identical queries are answered.
 *
 * Not thread-safe: start and stop servers from one thread. Queries to a
 * running server may come from any thread. */
#ifndef DT_TESTS_AUTHSRV_H
#define DT_TESTS_AUTHSRV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* The zones served, as absolute names. */
#define AUTHSRV_ZONE "dialtone.test."
#define AUTHSRV_ZONE_REV4 "2.0.192.in-addr.arpa."
#define AUTHSRV_ZONE_REV6 "8.b.d.0.1.0.0.2.ip6.arpa."

/* What a test prints, before exiting with AUTHSRV_EXIT_SKIP, when
 * authsrv_start() returns AUTHSRV_NOT_INSTALLED. */
#define AUTHSRV_SKIP_LINE "SKIP: nsd not installed (apt-get install nsd)"

/* The exit status automake's test driver counts as a skipped test. */
#define AUTHSRV_EXIT_SKIP 77

/* Results of authsrv_start(). Not dt_status_t on purpose: the one thing a
 * caller must tell apart is "skip, nsd is missing" from "fail, nsd is
 * there but broken", and no dt_status_t code means the first alone. */
typedef enum {
  AUTHSRV_OK = 0,
  AUTHSRV_NOT_INSTALLED, /* no nsd executable: the test should skip */
  AUTHSRV_FAILED         /* nsd is there but did not come up: a failure */
} authsrv_status_t;

typedef struct authsrv authsrv_t;

/* Starts NSD and returns once it answers an SOA query for every zone over
 * UDP on loopback (waiting at most 10 s).
 *
 * The executable is $DT_NSD when that is set and not empty (and nothing
 * else is tried then, so DT_NSD=/nonexistent forces a skip); otherwise
 * "nsd" in $PATH; otherwise /usr/sbin/nsd, since sbin is often missing
 * from a non-root PATH.
 *
 * @param out receives the server, released with authsrv_stop_free(); set
 *            only on AUTHSRV_OK.
 * @return AUTHSRV_OK; AUTHSRV_NOT_INSTALLED when no nsd executable was
 *         found; AUTHSRV_FAILED otherwise, with the reason (and the tail of
 *         NSD's log when it ran) in authsrv_last_error(). */
authsrv_status_t authsrv_start(authsrv_t **out);

/* authsrv_start(), also serving zone (an absolute name, e.g. "load.test.")
 * from the zone file at path, which is copied like the others; start-up
 * waits for its SOA too. NULL zone or path: authsrv_start(). For load runs
 * that need more names than the test zone has. */
authsrv_status_t authsrv_start_extra(const char *zone, const char *path,
                                     authsrv_t **out);

/* Whether authsrv_start() would find an nsd executable: lets a test decide
 * to skip before its test runner starts. */
bool authsrv_available(void);

/* Why the last authsrv_start() failed, or "" after a success. The text is
 * owned by this module and valid until the next authsrv_start(). */
const char *authsrv_last_error(void);

/* The port NSD listens on, UDP and TCP, on every loopback address it uses
 * (host byte order). */
uint16_t authsrv_port(const authsrv_t *srv);

/* Whether NSD also listens on ::1 (false when IPv6 loopback is unusable). */
bool authsrv_has_ipv6(const authsrv_t *srv);

/* Fills *addr with the server's address for family: 127.0.0.1 for AF_INET,
 * ::1 for AF_INET6, with the server's port.
 * @return true; false when the family is not served (AF_INET6 without
 *         authsrv_has_ipv6(), or any other family). */
bool authsrv_addr(const authsrv_t *srv, int family,
                  struct sockaddr_storage *addr, socklen_t *addrlen);

/* The server's private directory (nsd.conf, nsd.log, zone copies). Owned by
 * srv; gone after authsrv_stop_free(). */
const char *authsrv_dir(const authsrv_t *srv);

/* Stops NSD: SIGTERM to its main process, up to 5 s for it to exit, then
 * SIGKILL to whatever is left of its process group (all of it, if it did
 * not exit). Reaps it and removes the private directory. NULL does
 * nothing. */
void authsrv_stop_free(authsrv_t *srv);

#endif
