/* Parsers for resolv.conf and the hosts file, written as pure functions:
 * text in, struct out. The load functions only add bounded file reading. */
#ifndef DT_CONF_H
#define DT_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dialtone/common.h"
#include "dialtone/name.h"

/* glibc stops at 3 name servers; a few more cost nothing and some setups
 * list them. Further ones are ignored (counted in lines_ignored). */
#define DT_CONF_MAX_SERVERS 8
#define DT_CONF_MAX_SEARCH 8
/* Files larger than these are refused with DT_ETOOBIG rather than read. */
#define DT_CONF_RESOLV_MAX_BYTES (1u << 20)
#define DT_CONF_HOSTS_MAX_BYTES (64u << 20)
/* A longer line is ignored as a whole (counted), never truncated. */
#define DT_CONF_MAX_LINE 4096

/* Which options the file set, so they override the caller's defaults only
 * where present (glibc's rule). */
enum {
  DT_CONF_SET_NDOTS = 1u << 0,
  DT_CONF_SET_TIMEOUT = 1u << 1,
  DT_CONF_SET_ATTEMPTS = 1u << 2,
  DT_CONF_SET_ROTATE = 1u << 3,
  DT_CONF_SET_EDNS0 = 1u << 4,
  DT_CONF_SET_SEARCH = 1u << 5,
};

typedef struct {
  struct sockaddr_storage servers[DT_CONF_MAX_SERVERS]; /* port 53 unless
                                                            the line says */
  size_t nservers;
  char search[DT_CONF_MAX_SEARCH][DT_NAME_BUFSIZE]; /* normalised */
  size_t nsearch;
  int ndots;      /* glibc: 1, capped at 15 */
  int timeout_ms; /* glibc: 5 s, capped at 30 s */
  int attempts;   /* glibc: 2, capped at 5 */
  bool rotate;
  bool edns0;
  unsigned set;         /* DT_CONF_SET_* */
  size_t lines_ignored; /* malformed, unknown or overlong lines */
} dt_resolv_conf_t;

/* Fills *out with glibc's defaults: no servers, no search list, ndots 1,
 * timeout 5000 ms, attempts 2, rotate and edns0 off. */
void dt__resolv_conf_defaults(dt_resolv_conf_t *out);

/* Parses resolv.conf text (need not be NUL-terminated; NUL bytes end a line's
 * meaning and the line is ignored). Never fails on content: bad lines are
 * skipped and counted. Returns DT_EINVAL for NULL arguments. When no
 * nameserver line is usable the result has nservers == 0; loading adds the
 * fallback. */
dt_status_t dt__resolv_conf_parse(const char *text, size_t len,
                                  dt_resolv_conf_t *out);

/* Reads and parses a file. A missing file gives the defaults with name
 * servers 127.0.0.1 and ::1 (glibc's behaviour) and DT_OK; so does a file
 * without a usable nameserver line. Unreadable: DT_EACCES or DT_ESYS; too
 * big: DT_ETOOBIG. */
dt_status_t dt__resolv_conf_load(const char *path, dt_resolv_conf_t *out);

/* The hosts file as a table: normalised name (canonical names and aliases
 * alike) to its addresses in file order. */
typedef struct dt_hosts dt_hosts_t;

typedef struct {
  int family; /* AF_INET or AF_INET6 */
  union {
    uint8_t v4[4];
    uint8_t v6[16];
  } addr;
} dt_hosts_addr_t;

/* Parses hosts text into a new table (*out set only on DT_OK). Malformed
 * lines are skipped and counted. DT_ENOMEM on allocation failure with
 * nothing leaked. */
dt_status_t dt__hosts_parse(const char *text, size_t len, dt_hosts_t **out);
/* Reads and parses a file; a missing file gives an empty table and DT_OK. */
dt_status_t dt__hosts_load(const char *path, dt_hosts_t **out);
void dt__hosts_free(dt_hosts_t *h);
size_t dt__hosts_lines_ignored(const dt_hosts_t *h);
/* Looks up a name (any case, trailing dot allowed). family is AF_INET,
 * AF_INET6 or AF_UNSPEC. Returns the number of addresses found (possibly
 * more than max; only max are written) and a borrowed pointer to the
 * canonical name in *canon when non-NULL; no allocation. *canon is NULL
 * when the name is not in the table, and set when it is even if none of its
 * addresses is of the family asked (the caller can tell "no such host" from
 * "no address of that family"). The canonical name lives as long as h. */
size_t dt__hosts_lookup(const dt_hosts_t *h, const char *name, int family,
                        dt_hosts_addr_t *addrs, size_t max, const char **canon);

#endif
