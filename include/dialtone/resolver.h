/**
 * @file dialtone/resolver.h
 * @brief The stub resolver: queries of any type, address lookups with A and
 * AAAA in parallel, hosts file, search list, failover between servers.
 *
 * One resolver is meant to be shared by every thread of a program: all
 * calls on it are thread-safe. The calls block the calling thread up to
 * their timeout; inside, every lookup is a non-blocking state machine
 * driven by poll().
 */
#ifndef DIALTONE_RESOLVER_H
#define DIALTONE_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dialtone/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An opaque resolver; see dt_resolver_new(). */
typedef struct dt_resolver dt_resolver_t;

/** Record types dialtone names; any other 16-bit type works by number. */
enum {
  DT_TYPE_A = 1,
  DT_TYPE_NS = 2,
  DT_TYPE_CNAME = 5,
  DT_TYPE_SOA = 6,
  DT_TYPE_PTR = 12,
  DT_TYPE_MX = 15,
  DT_TYPE_TXT = 16,
  DT_TYPE_AAAA = 28,
  DT_TYPE_SRV = 33,
  DT_TYPE_OPT = 41,
  DT_TYPE_SVCB = 64,
  DT_TYPE_HTTPS = 65,
  DT_TYPE_ANY = 255,
  DT_TYPE_CAA = 257,
};

/** DNS response codes (RFC 1035, RFC 6895). */
enum {
  DT_RCODE_NOERROR = 0,
  DT_RCODE_FORMERR = 1,
  DT_RCODE_SERVFAIL = 2,
  DT_RCODE_NXDOMAIN = 3,
  DT_RCODE_NOTIMP = 4,
  DT_RCODE_REFUSED = 5,
};

/** Header flags of a reply, as bits of dt_answer_t.flags. */
enum {
  DT_FLAG_AA = 1u << 0, /**< authoritative answer */
  DT_FLAG_TC = 1u << 1, /**< truncated */
  DT_FLAG_RD = 1u << 2, /**< recursion desired */
  DT_FLAG_RA = 1u << 3, /**< recursion available */
  DT_FLAG_AD = 1u << 4, /**< authentic data */
  DT_FLAG_CD = 1u << 5, /**< checking disabled */
};

/** Flags of dt_resolver_query(). */
enum {
  DT_QUERY_TCP = 1u << 0,      /**< use TCP from the first try */
  DT_QUERY_NOCACHE = 1u << 1,  /**< neither read nor fill the cache */
  DT_QUERY_NOSEARCH = 1u << 2, /**< ignore the search list and ndots */
  DT_QUERY_NOEDNS = 1u << 3,   /**< send no EDNS0 OPT record */
};

/** How a reply travelled. */
typedef enum { DT_TRANSPORT_UDP = 0, DT_TRANSPORT_TCP = 1 } dt_transport_t;

/** Marks an integer option as "resolv.conf's value, else the default". */
#define DT_RESOLVER_DEFAULT (-1)

/**
 * Resolver options. Fill with dt_resolver_opts_init(), then change fields;
 * the resolver copies what it keeps. New fields are only appended.
 */
typedef struct {
  /** Name servers as "ADDR", "ADDR:PORT", "[V6ADDR]:PORT" or "V6ADDR";
   * borrowed. When nservers is 0 they come from resolv_conf. */
  const char *const *servers;
  size_t nservers; /**< entries in servers */
  /** resolv.conf to read when no servers are given (default
   * "/etc/resolv.conf"). Its options override the integer options left at
   * DT_RESOLVER_DEFAULT and can turn rotate and edns on. */
  const char *resolv_conf;
  /** hosts file (default "/etc/hosts"); "" disables it. */
  const char *hosts;
  /** Search list, borrowed; NULL keeps resolv.conf's (when read). */
  const char *const *search;
  size_t nsearch; /**< entries in search */
  /** Time to wait for one server's reply, ms (default 2000). */
  int timeout_ms;
  /** Rounds over the server list (default 3). */
  int attempts;
  /** Names with at least ndots dots are tried as-is first (default 1). */
  int ndots;
  /** Start each query at the next server in turn (default false). */
  bool rotate;
  /** Send an EDNS0 OPT record advertising 1232 bytes (default true). */
  bool edns;
  /** How long a server that failed is moved behind the others before it
   * gets a fresh chance, ms (default 30000). */
  int server_penalty_ms;
  /** Test seam: a monotonic clock in microseconds (NULL: the system's). */
  uint64_t (*clock_us)(void *ctx);
  void *clock_ctx; /**< passed to clock_us */
  /** Keep answers for their TTL and answer repeats from memory (default
   * true). Identical questions in flight at once share one query. */
  bool cache;
  /** Most answers kept (default 10000); the least recently used goes. */
  size_t cache_max_entries;
  /** Most bytes kept, entry overhead included (default 0: no limit). */
  size_t cache_max_bytes;
  /** Clamps on positive answers' lifetimes, seconds (default 0, 86400). */
  uint32_t cache_min_ttl;
  uint32_t cache_max_ttl; /**< see cache_min_ttl */
  /** Clamps on negative answers' lifetimes, seconds (default 0, 3600). */
  uint32_t cache_neg_min_ttl;
  uint32_t cache_neg_max_ttl; /**< see cache_neg_min_ttl */
  /** RFC 8767: when every server fails, answer from an expired entry of
   * at most stale_window_s ago, with TTL 30 and marked stale (default
   * false, 86400 s). */
  bool serve_stale;
  uint32_t stale_window_s; /**< see serve_stale */
  /** A hit in the last 10% of an entry's TTL sends a refresh query at once
   * without waiting for it; the reply is taken in by later calls on the
   * resolver, so popular names do not miss (default false). */
  bool prefetch;
  /** DNS 0x20: every query's name goes out with its letters in random
   * case (from the system's CSPRNG), and a reply counts only when its
   * question repeats that spelling exactly; others are dropped (counted in
   * dropped_question) and the wait goes on. An off-path spoofer must then
   * also guess one bit per letter. Answers show the question and the
   * owners that spell it in lower case. Some servers and middleboxes do
   * not preserve case: use it with servers known to (default false). */
  bool dns0x20;
} dt_resolver_opts_t;

/** Sets every option to its default. @param opts  the options to fill. */
DT_EXTERN void dt_resolver_opts_init(dt_resolver_opts_t *opts);

/**
 * Creates a resolver.
 * @param opts  options, copied; NULL for the defaults.
 * @param out  set to the new resolver on DT_OK only; free with
 *             dt_resolver_free().
 * @return DT_OK; DT_EINVAL for a malformed server address or option;
 *         DT_ENOSERVER when no server is usable; DT_ETOOBIG, DT_EACCES or
 *         DT_ESYS when a configuration file cannot be read; DT_ENOMEM.
 *         A missing resolv.conf means servers 127.0.0.1 and ::1 (glibc);
 *         a missing hosts file means none.
 */
DT_EXTERN dt_status_t dt_resolver_new(const dt_resolver_opts_t *opts,
                                      dt_resolver_t **out);

/**
 * Frees a resolver; NULL does nothing. No call may be running on it.
 * Event-loop operations started on it (dt_resolve_start(),
 * dt_query_start()) that have not completed end first: each callback runs
 * once with DT_ECANCELED inside this call, on the calling thread, so call
 * it from the thread that runs those loops.
 * @param r  the resolver, or NULL.
 */
DT_EXTERN void dt_resolver_free(dt_resolver_t *r);

/** One resource record of an answer. Borrowed from its dt_answer_t. */
typedef struct {
  const char *owner;    /**< owner name, presentation form with trailing dot */
  uint16_t type;        /**< DT_TYPE_* or any number */
  uint16_t rclass;      /**< 1 for IN */
  uint32_t ttl;         /**< remaining TTL in seconds */
  const uint8_t *rdata; /**< uncompressed wire-form RDATA */
  uint16_t rdlength;    /**< bytes at rdata */
  const char *data;     /**< RDATA in presentation form ("192.0.2.1") */
} dt_rr_t;

/**
 * A reply to one question. Allocated by the library as one block; release
 * it with dt_answer_free(). Every pointer inside lives as long as it.
 */
typedef struct {
  const char *qname; /**< the name asked, after search-list expansion */
  uint16_t qtype;    /**< the type asked */
  uint16_t qclass;   /**< the class asked (1, IN) */
  int rcode;         /**< DT_RCODE_* */
  unsigned flags;    /**< DT_FLAG_* */
  /** The end of the CNAME chain (qname when there is no CNAME). */
  const char *canonical;
  /** The answer chain: the CNAMEs from qname, then the records of qtype at
   * the canonical name. Records outside this chain are never included. */
  const dt_rr_t *answer;
  size_t nanswer; /**< records in answer */
  /** For negative answers, the zone's SOA from the authority section. */
  const dt_rr_t *authority;
  size_t nauthority; /**< records in authority */
  /** Remaining lifetime in seconds: the smallest TTL of the answer chain,
   * or for negative answers min(SOA TTL, SOA MINIMUM) (RFC 2308). */
  uint32_t ttl;
  struct sockaddr_storage server; /**< who answered (unset on a hit) */
  socklen_t server_len;           /**< server's length (0 on a hit) */
  dt_transport_t transport;       /**< how the reply travelled */
  bool from_cache;                /**< served from the cache, no query sent */
  bool stale; /**< expired entry served because servers failed */
} dt_answer_t;

/** Frees an answer; NULL does nothing. @param answer  the answer. */
DT_EXTERN void dt_answer_free(dt_answer_t *answer);

/**
 * The status an answer stands for: DT_OK when it has records of the type
 * asked, DT_ENXDOMAIN, DT_ENODATA (NOERROR without them), DT_ESERVFAIL,
 * DT_EREFUSED, DT_EFORMERR, DT_ENOTIMP, or DT_EBADREPLY for other rcodes.
 * @param answer  the answer.
 * @return the status.
 */
DT_EXTERN dt_status_t dt_answer_status(const dt_answer_t *answer);

/**
 * Asks one question and waits for the reply (search list and ndots apply
 * unless DT_QUERY_NOSEARCH; an absolute name "x.example." is asked as-is).
 *
 * @param r           the resolver.
 * @param name        the name, borrowed.
 * @param type        record type (DT_TYPE_* or any number).
 * @param flags       DT_QUERY_* bits.
 * @param timeout_ms  overall limit, ms; negative for the resolver's own
 *                    (timeout × attempts × servers).
 * @param out         set on DT_OK to the reply, which may still be negative
 *                    or an error rcode (see dt_answer_status()); the caller
 *                    frees it with dt_answer_free().
 * @return DT_OK when a server replied; DT_ETIMEDOUT when none did;
 *         DT_EBADNAME; DT_EINVAL; DT_ENOMEM; DT_ESYS (errno set).
 */
DT_EXTERN dt_status_t dt_resolver_query(dt_resolver_t *r, const char *name,
                                        uint16_t type, unsigned flags,
                                        int timeout_ms, dt_answer_t **out);

/** One address of a lookup, with its remaining TTL (0 for literals and
 * the hosts file). The port is 0. */
typedef struct {
  struct sockaddr_storage addr; /**< the address, port 0 */
  socklen_t addrlen;            /**< its length */
  uint32_t ttl;                 /**< remaining TTL in seconds */
} dt_addr_t;

/**
 * Looks up the addresses of a host: an IP literal at once, else the hosts
 * file, else A and AAAA queries sent together.
 *
 * @param r           the resolver.
 * @param host        a host name or an IP literal, borrowed.
 * @param family      AF_INET, AF_INET6 or AF_UNSPEC (both).
 * @param addrs       caller storage for up to max addresses (IPv6 first
 *                    when both families answer: ordering for connecting is
 *                    the dialer's job).
 * @param max         room in addrs, at least 1.
 * @param timeout_ms  overall limit, ms; negative for the resolver's own.
 * @param count       set on DT_OK to the number written (at least 1).
 * @return DT_OK; DT_ENXDOMAIN; DT_ENODATA (the name has no address of the
 *         family); DT_ETIMEDOUT; DT_ESERVFAIL or DT_EREFUSED when every
 *         server failed that way; DT_EBADNAME; DT_EINVAL; DT_ENOMEM.
 */
DT_EXTERN dt_status_t dt_resolver_lookup_addrs(dt_resolver_t *r,
                                               const char *host, int family,
                                               int timeout_ms, dt_addr_t *addrs,
                                               size_t max, size_t *count);

/** Counters of a resolver since it was created. */
typedef struct {
  uint64_t queries_udp;       /**< queries sent over UDP */
  uint64_t queries_tcp;       /**< queries sent over TCP */
  uint64_t replies_accepted;  /**< replies that matched their query */
  uint64_t dropped_source;    /**< from an address other than the server */
  uint64_t dropped_id;        /**< wrong ID */
  uint64_t dropped_question;  /**< wrong question or not a reply */
  uint64_t dropped_malformed; /**< could not be parsed */
  uint64_t timeouts;          /**< tries that got no reply in time */
  uint64_t failovers;         /**< moves to another server */
  uint64_t truncated;         /**< UDP replies with TC, retried over TCP */
  uint64_t edns_fallbacks;    /**< retries without EDNS */
  uint64_t hosts_hits;        /**< lookups answered by the hosts file */
  /** UDP sockets address lookups opened; a lookup takes an idle one left
   * by an earlier lookup to the same server when there is one (each is
   * retired after 64 questions or 30 s), so this grows more slowly than
   * the lookups. */
  uint64_t udp_sockets_opened;
} dt_resolver_stats_t;

/**
 * Copies the counters; consistent per field, not across fields.
 * @param r    the resolver.
 * @param out  receives the counters.
 */
DT_EXTERN void dt_resolver_get_stats(dt_resolver_t *r,
                                     dt_resolver_stats_t *out);

/**
 * Like dt_resolver_query(), but the answer is built in caller storage, so a
 * cache hit costs no allocation.
 *
 * @param r           as dt_resolver_query().
 * @param name        as dt_resolver_query().
 * @param type        as dt_resolver_query().
 * @param flags       as dt_resolver_query().
 * @param timeout_ms  as dt_resolver_query().
 * @param buf     storage for the answer, aligned to 8 bytes; it must stay
 *                alive as long as *out is used. Nothing to free.
 * @param buflen  in: the size of buf; out on DT_ETOOBIG: the size needed.
 * @param out     set on DT_OK to the answer inside buf.
 * @return as dt_resolver_query(), plus DT_ETOOBIG when buf is too small
 *         (call again with *buflen bytes) and DT_EINVAL for a misaligned
 *         buf.
 */
DT_EXTERN dt_status_t dt_resolver_query_into(dt_resolver_t *r, const char *name,
                                             uint16_t type, unsigned flags,
                                             int timeout_ms, void *buf,
                                             size_t *buflen,
                                             const dt_answer_t **out);

/** Cache counters since the resolver was created, and its size now. */
typedef struct {
  uint64_t hits;         /**< questions answered from the cache */
  uint64_t misses;       /**< questions that had to be asked */
  uint64_t expired;      /**< entries dropped because their TTL ran out */
  uint64_t evicted;      /**< entries dropped to stay within the bounds */
  uint64_t stale_served; /**< expired answers served (serve_stale) */
  uint64_t coalesced;    /**< questions that waited for another's query */
  uint64_t entries;      /**< entries now */
  uint64_t bytes;        /**< bytes now, overhead included */
} dt_cache_stats_t;

/**
 * Copies the cache counters (all zero when the cache is off).
 * @param r    the resolver.
 * @param out  receives the counters.
 */
DT_EXTERN void dt_cache_get_stats(dt_resolver_t *r, dt_cache_stats_t *out);

/**
 * Removes every cached answer, or those of one name.
 * @param r     the resolver.
 * @param name  the name whose answers go (every type), or NULL for all.
 */
DT_EXTERN void dt_cache_flush(dt_resolver_t *r, const char *name);

/** One cache entry as dt_cache_list() shows it. Borrowed for the call. */
typedef struct {
  const char *name;     /**< normalised: lower case, no trailing dot */
  uint16_t type;        /**< the question's type */
  uint16_t qclass;      /**< the question's class */
  uint32_t remaining_s; /**< remaining TTL */
  bool negative;        /**< NXDOMAIN or NODATA */
  bool stale;           /**< expired, kept for serve-stale */
  int rcode;            /**< the answer's DT_RCODE_* */
  size_t bytes;         /**< memory it takes, overhead included */
} dt_cache_entry_t;

/**
 * Calls visit for every entry; visit must not call back into r.
 * @param r      the resolver.
 * @param visit  called once per entry with the entry (borrowed for the
 *               call) and ctx.
 * @param ctx    passed to visit.
 */
DT_EXTERN void
dt_cache_list(dt_resolver_t *r,
              void (*visit)(const dt_cache_entry_t *e, void *ctx), void *ctx);

/**
 * Names a record type.
 * @param type  any type.
 * @param buf   receives the name; 16 bytes always suffice.
 * @param len   the size of buf.
 * @return buf, holding "A", "AAAA", "TYPE65534"...; "" when buf is NULL
 *         or len 0.
 */
DT_EXTERN const char *dt_type_tostr(uint16_t type, char *buf, size_t len);
/**
 * Parses a record type.
 * @param s     "AAAA", "aaaa" or "TYPE28", borrowed.
 * @param type  set on DT_OK only.
 * @return DT_OK or DT_EINVAL.
 */
DT_EXTERN dt_status_t dt_type_fromstr(const char *s, uint16_t *type);
/**
 * Names a response code.
 * @param rcode  any code.
 * @param buf    receives the name of codes without a static one (16 bytes
 *               suffice).
 * @param len    the size of buf.
 * @return "NOERROR", "NXDOMAIN"...: a static string for known codes;
 *         otherwise buf, holding "RCODE23".
 */
DT_EXTERN const char *dt_rcode_tostr(int rcode, char *buf, size_t len);

/**
 * Formats a record as a dig-style line "owner TTL CLASS TYPE data" with its
 * remaining TTL.
 * @param rr   the record, borrowed.
 * @param buf  receives the line.
 * @param len  the size of buf.
 * @return DT_OK, or DT_ENAMETOOLONG when buf is too small (buf then holds
 *         a truncated, NUL-terminated line).
 */
DT_EXTERN dt_status_t dt_rr_tostr(const dt_rr_t *rr, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
