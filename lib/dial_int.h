/* The dial state machine behind dt_dial(), shared with tests and the
 * coming event-loop API. Like the resolver's machines it says which
 * descriptors it waits on (dt__dial_pollfds) and its next deadline
 * (dt__dial_deadline), and advances when poll() reports readiness or the
 * deadline passes (dt__dial_process). Each machine is used by one thread;
 * the dialer it runs on is shared and read-only. */
#ifndef DT_DIAL_INT_H
#define DT_DIAL_INT_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/un.h>

#include "addrsort.h"
#include "clock.h"
#include "dialtone/dial.h"
#include "dialtone/name.h"
#include "opreg.h"
#include "resolver_int.h"

struct dt_dialer {
  dt_dial_opts_t o; /* o.bind_addr and o.sockops are not kept */
  dt_sockops_t ops; /* every member set */
  dt_clock_t clock;
  dt_resolver_t *resolver;
  bool own_resolver;
  bool has_bind;
  dt__ipaddr_t bind; /* the parsed bind_addr */
  /* Event-loop dials started on the dialer, ended with DT_ECANCELED when
   * it is freed (before the resolver it made goes). */
  dt__opreg_t opreg;
};

/* Addresses kept per family: together at most DT_DIAL_MAX_ATTEMPTS, so
 * every address can be tried once and reported. */
#define DT__DIAL_PER_FAMILY (DT_DIAL_MAX_ATTEMPTS / 2)

/* Room dt__dial_pollfds needs: the lookup's two plus every attempt. */
#define DT__DIAL_MAX_POLLFDS (2 + DT_DIAL_MAX_ATTEMPTS)

/* dt__dial_start flags. */
enum {
  /* Tests: the answers of the two families come through dt__dial_feed()
   * instead of the hosts file and the resolver. */
  DT__DIAL_FEED = 1u << 0,
};

typedef struct {
  int fd;              /* -1 once finished */
  dt_deadline_t limit; /* per-attempt limit (never when none) */
  dt_deadline_t retry; /* Unix: when to call connect() again */
  unsigned backoff_ms; /* Unix: next retry interval */
} dt__dial_live_t;

typedef struct {
  const dt_dialer_t *d;
  const dt_clock_t *clock;
  uint16_t port;
  unsigned flags;
  uint64_t t0;
  uint64_t now; /* the clock at the current step */
  dt_deadline_t deadline;
  dt_dial_report_t *rep; /* the caller's, or own */

  /* Lookup: families are indexed 0 (IPv6, AAAA) and 1 (IPv4, A). A family
   * is final once its answer is in for good, or it is not wanted. */
  dt_lookup_t *lookup;     /* owned; NULL when no DNS is (any longer) needed */
  dt_lookup_t *lookup_mem; /* the caller's storage for it, or NULL */
  bool want[2];            /* the options allow the family */
  bool final[2];
  size_t filtered;          /* addresses of a family the options exclude */
  bool started;             /* the first attempt has been made */
  bool delay_armed;         /* A came first: waiting for AAAA */
  dt_deadline_t delay_ends; /* resolution delay */

  size_t naddrs;         /* entries of addrs */
  size_t ninflight;      /* attempts with an open socket */
  dt_deadline_t next_at; /* the attempt delay after the latest start */
  bool kick;             /* an attempt failed: start the next at once */

  bool is_unix;
  struct sockaddr_un un;
  socklen_t unlen;

  bool done;
  dt_status_t status;
  int fd; /* the winner's, owned until taken */

  /* Below: storage written before it is read, so starting a dial does not
   * clear it. */
  char host[DT_NAME_BUFSIZE];
  /* Every address known, in dialing order (RFC 6724, then interleaved);
   * tags say which were tried and which have their source looked up. */
  dt__sortaddr_t addrs[DT_DIAL_MAX_ATTEMPTS];
  /* Attempts, indexed like rep->attempts (valid below rep->nattempts). */
  dt__dial_live_t live[DT_DIAL_MAX_ATTEMPTS];
  dt_dial_report_t own;
} dt__dial_t;

/* Starts a dial (the hosts file and IP literals answer here; DNS questions
 * leave; the first attempt may start). On DT_OK the machine runs, possibly
 * already done, and must be finished with dt__dial_cleanup(); on failure
 * (DT_EINVAL, DT_EBADNAME, DT_ENAMETOOLONG, DT_ENOMEM) it holds nothing.
 * host is copied; report, when not NULL, is written until cleanup. */
dt_status_t dt__dial_start(dt__dial_t *m, const dt_dialer_t *d,
                           const char *host, uint16_t port, int timeout_ms,
                           dt_dial_report_t *report, unsigned flags);
/* dt__dial_start with storage for the lookup (NULL: allocated when a name
 * needs DNS), which must outlive the machine: an event-loop dial embeds
 * it, so the operation is one allocation. */
dt_status_t dt__dial_start_in(dt__dial_t *m, const dt_dialer_t *d,
                              const char *host, uint16_t port, int timeout_ms,
                              dt_dial_report_t *report, unsigned flags,
                              dt_lookup_t *lookup_mem);
/* Fills pfd (room for DT__DIAL_MAX_POLLFDS) with what the machine waits
 * on; returns how many. */
size_t dt__dial_pollfds(const dt__dial_t *m, struct pollfd *pfd);
/* The next time the machine must run even if no descriptor is ready. */
dt_deadline_t dt__dial_deadline(const dt__dial_t *m);
/* Advances with poll()'s results (n 0, or revents all 0, when only time
 * passed). */
void dt__dial_process(dt__dial_t *m, const struct pollfd *pfd, size_t n);
/* Ends the dial now with st (e.g. poll() failed): everything is closed. */
void dt__dial_abort(dt__dial_t *m, dt_status_t st);
/* DT__DIAL_FEED: one family's final answer, as the resolver would give
 * it; the machine advances (attempts may start). */
void dt__dial_feed(dt__dial_t *m, int family, const dt_addr_t *addrs, size_t n,
                   dt_status_t st, dt_dial_source_t source);
/* Once done: DT_OK hands the connected descriptor over (*fd), else the
 * dial's status. */
dt_status_t dt__dial_take(dt__dial_t *m, int *fd);
/* Closes whatever the machine still holds. */
void dt__dial_cleanup(dt__dial_t *m);

#endif
