/* Destination address ordering for the dialer: RFC 6724 §6 destination
 * address selection with the source address the kernel would pick (found
 * by connecting a UDP socket, which sends nothing, and reading it back with
 * getsockname(), as musl and c-ares do), then RFC 8305 §4 interleaving of
 * the two families. */
#ifndef DT_ADDRSORT_H
#define DT_ADDRSORT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "dialtone/dial.h"

/* An IPv4 or IPv6 socket address. */
typedef union {
  struct sockaddr sa;
  struct sockaddr_in in;
  struct sockaddr_in6 in6;
} dt__ipaddr_t;

typedef struct {
  dt__ipaddr_t dst;
  dt__ipaddr_t src; /* meaningful when usable */
  bool usable;      /* the kernel has a route and a source for dst */
  unsigned tag;     /* carried along by the sort, never read */
} dt__sortaddr_t;

/* Asks the kernel which source it would use for a->dst and sets a->src and
 * a->usable (false when it has no route or the family is off). Four system
 * calls through ops; no packet leaves. */
void dt__addrsort_source(const dt_sockops_t *ops, dt__sortaddr_t *a);

/* Orders a[0..n) by RFC 6724 §6 rules 1 (usable first), 2 (matching
 * scope), 5 (matching label), 6 (higher precedence), 8 (smaller scope),
 * 9 (longest common prefix with the source, IPv6 only, up to 64 bits) and
 * 10 (otherwise keep the order). Rules 3, 4 and 7 need information the
 * kernel does not give a socket and are skipped, as musl does. Stable. */
void dt__addrsort_sort(dt__sortaddr_t *a, size_t n);

/* RFC 8305 §4: first_count addresses of the first address's family, then
 * one of the other family and one of the first in turn; what remains of
 * the longer family goes last. Order within a family is kept. */
void dt__addrsort_interleave(dt__sortaddr_t *a, size_t n, unsigned first_count);

/* RFC 6724 §3.1 scope (2 link-local, 5 site-local, 14 global, or the
 * multicast scope field) and §2.1 policy-table precedence and label of an
 * address; exposed for tests. */
int dt__addrsort_scope(const dt__ipaddr_t *a);
int dt__addrsort_precedence(const dt__ipaddr_t *a);
int dt__addrsort_label(const dt__ipaddr_t *a);

#endif
