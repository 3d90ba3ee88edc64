/**
 * @file fakedns.h
 * @brief A scriptable fake DNS server for tests and demos.
 *
 * The server runs in its own thread and answers on 127.0.0.1 and ::1, over
 * UDP and TCP, all four on one port. A test scripts it with zone-file lines
 * (fakedns_add()) and with per-(name, type) behaviours (delay, drop,
 * truncate, spoof, mangle, ...), points the code under test at
 * fakedns_port(), and reads back what arrived (fakedns_get_stats()).
 *
 * Answers follow the scripted data like an authoritative server that also
 * plays the recursive resolver a stub talks to: AA and RA set, RD copied,
 * CNAME chains followed within the data (up to opts.max_cname links, so a
 * scripted CNAME loop yields a looping answer), NXDOMAIN when the name has
 * no records of any type and NODATA (NOERROR, empty answer) when it has
 * other types, both with the closest enclosing SOA in the authority section.
 * That SOA is served exactly as scripted (its TTL is not lowered to its
 * MINIMUM), so tests control both numbers of RFC 2308. Names match
 * case-insensitively; the question of a reply echoes the query's exact case
 * and so does the owner of the first answer record. Wildcards and DNSSEC are
 * not implemented.
 *
 * UDP replies larger than the client allows (512 bytes without EDNS,
 * otherwise the smaller of its EDNS size and 1232) lose their additional,
 * then authority, then trailing answer records and get TC, as real servers
 * do; TCP replies are always complete. EDNS queries get an OPT record
 * (payload 1232) back unless a behaviour says otherwise.
 *
 * Every function is thread-safe. Scripting may happen before or while the
 * server runs. The fake allocates with the C library directly, never
 * through dialtone's allocator, so failure injection in the code under test
 * cannot disturb it. Programs linking libfakedns.la also link ldns,
 * pthreads and libdialtone_core.la (for dt_status_from_errno()).
 */
#ifndef DT_FAKEDNS_H
#define DT_FAKEDNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dialtone/common.h"

/** A fake server: opaque, created by fakedns_new(). */
typedef struct fakedns fakedns_t;

/** Transport a query arrived on. */
typedef enum { FAKEDNS_UDP = 0, FAKEDNS_TCP = 1 } fakedns_transport_t;

/** Server options; fakedns_opts_init() sets every default. */
typedef struct {
  /** Port for all four sockets; 0 (default) picks a free one. */
  uint16_t port;
  /** Do not even try ::1 (default false). */
  bool ipv4_only;
  /** CNAME links followed in one answer (default 8). */
  unsigned max_cname;
  /** Test seam: SO_SNDBUF of accepted TCP connections, small to force
   * partial writes; 0 (default) keeps the system's. */
  int tcp_sndbuf;
} fakedns_opts_t;

/** rcode value meaning "answer from the scripted data". */
#define FAKEDNS_RCODE_DATA (-1)

/** What happens to EDNS (OPT) in replies. */
typedef enum {
  /** Reply with an OPT record when the query had one (default). */
  FAKEDNS_EDNS_ECHO = 0,
  /** Never put OPT in replies, like a server that predates EDNS. */
  FAKEDNS_EDNS_IGNORE,
  /** Answer FORMERR (without OPT) to queries that carry OPT; queries
   * without OPT are answered normally. */
  FAKEDNS_EDNS_FORMERR
} fakedns_edns_t;

/** Where garbage bytes go. */
typedef enum {
  FAKEDNS_GARBAGE_NONE = 0,
  /** Garbage first, then the replies that would have been sent. */
  FAKEDNS_GARBAGE_BEFORE,
  /** Garbage only: no genuine reply. */
  FAKEDNS_GARBAGE_INSTEAD
} fakedns_garbage_t;

/**
 * How the server treats queries of one (name, type), or all queries with
 * fakedns_set_default(). fakedns_behaviour_init() gives "answer normally";
 * fields combine. For one query, messages go out in this order: garbage,
 * wrong-port spoof, wrong-ID spoof, wrong-question spoof, genuine reply.
 * On TCP each message is one length-prefixed frame and wrong_port does not
 * apply.
 */
typedef struct {
  /** FAKEDNS_RCODE_DATA, or an rcode to force (LDNS_RCODE_SERVFAIL,
   * ..._REFUSED, ..._FORMERR, ..._NOTIMPL, ...) with empty sections;
   * NXDOMAIN also gets the closest enclosing SOA. */
  int rcode;
  /** Wait this long before replying; other queries are served meanwhile. */
  unsigned delay_ms;
  /** Ignore the first N queries (any transport) after this behaviour was
   * set; later ones are answered. */
  unsigned drop_first;
  /** Never reply (counted, though). */
  bool black_hole;
  /** Set TC on UDP replies and keep only the first tc_keep answer records
   * (authority and additional emptied). TCP replies are complete. */
  bool truncate;
  unsigned tc_keep;
  /** Send a reply with another ID first. */
  bool wrong_id;
  /** Send a reply whose question name has an extra leading label first. */
  bool wrong_question;
  /** Send the reply from a second UDP socket (another source port) first. */
  bool wrong_port;
  /** With wrong_*: send only the spoofs, never the genuine reply. */
  bool spoof_only;
  /** Zone-file line whose record (owner replaced by the query name) is the
   * whole answer section of the spoofs, so accepting a spoof shows; NULL
   * means the spoofs carry the genuine answer. Copied. */
  const char *spoof_rr;
  /** Garbage placement; garbage_bytes (copied) or, when NULL, 1 to 512
   * random bytes (garbage_len of them when non-zero). On TCP the garbage is
   * framed like a message. */
  fakedns_garbage_t garbage;
  const uint8_t *garbage_bytes;
  size_t garbage_len;
  /** Overwrite the first two garbage bytes with the query's ID, so a client
   * that matches IDs goes on to parse it (e.g. a compression loop). */
  bool garbage_keep_id;
  /** EDNS handling. */
  fakedns_edns_t edns;
  /** Non-zero: hold replies until a query for the same name with this type
   * has arrived too (delay_ms then counts from the release), e.g. hold A
   * until AAAA to prove both are in flight before either is answered. */
  uint16_t hold_until;
  /** TCP: close the connection instead of replying. */
  bool tcp_close;
  /** Send a reply whose question is the query's name in lower case first:
   * what a server or an off-path spoofer that ignores the case of a DNS
   * 0x20 query sends. Counts as a spoof for spoof_only. */
  bool lower_question;
} fakedns_behaviour_t;

/** Counters of one (name, type). */
typedef struct {
  unsigned udp;            /**< queries received over UDP */
  unsigned tcp;            /**< queries received over TCP */
  unsigned edns;           /**< of which carried an OPT record */
  uint64_t first_us;       /**< arrival of the first, on the clock of
                                fakedns_now_us(); 0 when none */
  uint64_t last_us;        /**< arrival of the latest; 0 when none */
  uint16_t last_edns_size; /**< EDNS payload size of the latest; 0 no OPT */
  bool last_rd;            /**< RD flag of the latest */
} fakedns_stats_t;

/** Server-wide counters. */
typedef struct {
  unsigned udp;          /**< messages received over UDP */
  unsigned tcp;          /**< messages received over TCP */
  unsigned edns;         /**< queries that carried an OPT record */
  unsigned malformed;    /**< messages that did not parse as a query */
  unsigned tcp_accepted; /**< TCP connections accepted */
} fakedns_totals_t;

/** Fills opts with every default. */
void fakedns_opts_init(fakedns_opts_t *opts);

/**
 * Creates a server and binds its sockets (so fakedns_port() is known), but
 * does not serve until fakedns_start().
 * @param opts NULL for defaults; copied.
 * @param out set only on DT_OK; release with fakedns_free().
 * @return DT_OK, DT_EADDRINUSE (a fixed port is taken, or no common free
 * port was found), DT_ENOMEM, or another status from errno.
 */
dt_status_t fakedns_new(const fakedns_opts_t *opts, fakedns_t **out);

/** Starts the server thread. @return DT_OK, DT_EBUSY if running, or a
 * status from pthread_create's error. */
dt_status_t fakedns_start(fakedns_t *srv);

/** Stops the thread: pending replies are dropped and TCP connections closed
 * (after one last attempt to flush what was queued). Sockets stay bound;
 * fakedns_start() may be called again. Does nothing when not running. */
void fakedns_stop(fakedns_t *srv);

/** Stops the server if needed and releases everything; NULL is ignored. */
void fakedns_free(fakedns_t *srv);

/** The port all sockets are bound to. */
uint16_t fakedns_port(const fakedns_t *srv);

/** True when the server also listens on ::1. */
bool fakedns_has_ipv6(const fakedns_t *srv);

/**
 * The server's address for a family (AF_INET: 127.0.0.1, AF_INET6: ::1).
 * @return DT_OK, or DT_EAFNOSUPPORT when the server does not serve it.
 */
dt_status_t fakedns_sockaddr(const fakedns_t *srv, int family,
                             struct sockaddr_storage *out, socklen_t *len);

/**
 * Adds one record from a zone-file line, e.g.
 * "www.example. 300 IN A 192.0.2.1" (TTL defaults to 3600, class to IN;
 * relative names are taken as absolute). Records are served as scripted,
 * duplicates included. @return DT_OK, DT_EINVAL on a parse error, DT_ENOMEM.
 */
dt_status_t fakedns_add(fakedns_t *srv, const char *rr_line);

/**
 * Loads zone text: one record per line, ';' comments, and the behaviour
 * directives of fakedns_main.c ("fakedns directives" there), e.g.
 * ";! delay www.example. AAAA 500". Lines before an error stay loaded.
 * @param bad_line if not NULL, set to the 1-based line of the error.
 * @return DT_OK, DT_EINVAL (syntax), DT_ENOMEM.
 */
dt_status_t fakedns_load(fakedns_t *srv, const char *text, unsigned *bad_line);

/** fakedns_load() on a file's contents (at most 16 MiB). @return as
 * fakedns_load(), or DT_ENOENT, DT_EACCES, DT_ETOOBIG, another errno
 * status (then *bad_line is 0). */
dt_status_t fakedns_load_file(fakedns_t *srv, const char *path,
                              unsigned *bad_line);

/** Removes every record and behaviour, the default one included. */
void fakedns_clear(fakedns_t *srv);

/** Fills b with "answer normally". */
void fakedns_behaviour_init(fakedns_behaviour_t *b);

/**
 * Sets the behaviour for queries of (name, type), replacing any earlier one
 * and restarting its drop_first count. type 0 covers every type of the name
 * that has no behaviour of its own. b NULL removes it.
 * @return DT_OK, DT_EINVAL (bad name, bad spoof_rr, rcode above 15),
 * DT_ENOMEM.
 */
dt_status_t fakedns_set_behaviour(fakedns_t *srv, const char *name,
                                  uint16_t type, const fakedns_behaviour_t *b);

/**
 * Sets the behaviour of queries that match no (name, type) behaviour, e.g.
 * rcode REFUSED for a dead server or black_hole for a black-holed one.
 * b NULL restores "answer normally". @return as fakedns_set_behaviour().
 */
dt_status_t fakedns_set_default(fakedns_t *srv, const fakedns_behaviour_t *b);

/**
 * Counters of (name, type); all zero when no such query arrived.
 * @return DT_OK, or DT_EINVAL for a bad name.
 */
dt_status_t fakedns_get_stats(fakedns_t *srv, const char *name, uint16_t type,
                              fakedns_stats_t *out);

/** Queries of (name, type) received over one transport (0 on a bad name). */
unsigned fakedns_count(fakedns_t *srv, const char *name, uint16_t type,
                       fakedns_transport_t transport);

/** Server-wide counters. */
void fakedns_get_totals(fakedns_t *srv, fakedns_totals_t *out);

/** Messages received over one transport. */
unsigned fakedns_total(fakedns_t *srv, fakedns_transport_t transport);

/** Zeroes every counter and arrival time (behaviours are kept). */
void fakedns_reset_stats(fakedns_t *srv);

/**
 * Waits until at least n queries of (name, type) have arrived (both
 * transports). @param timeout_ms negative waits forever.
 * @return DT_OK, DT_ETIMEDOUT, DT_EINVAL for a bad name.
 */
dt_status_t fakedns_wait(fakedns_t *srv, const char *name, uint16_t type,
                         unsigned n, int timeout_ms);

/** The clock of arrival times: CLOCK_MONOTONIC in microseconds, the same
 * clock as dialtone's dt__now_us(). */
uint64_t fakedns_now_us(void);

#endif
