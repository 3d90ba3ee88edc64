/* DNS wire format: the only module that includes ldns. Builds queries,
 * matches replies to the query they answer, parses replies into
 * dialtone's own answer structs and formats records as text. */
#ifndef DT_WIRE_H
#define DT_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dialtone/common.h"
#include "dialtone/resolver.h"

/* Largest query we build: header, a 255-byte name, type/class, OPT. */
#define DT_WIRE_QUERY_MAX 512
/* UDP payload size advertised with EDNS0 (DNS flag day 2020). */
#define DT_WIRE_EDNS_UDP_SIZE 1232
#define DT_WIRE_MAX_CNAME_HOPS 16

/* Fills buf with n bytes from the kernel's CSPRNG (getrandom, or
 * arc4random_buf where present). */
dt_status_t dt__wire_random(void *buf, size_t n);

/* Builds a query for name (presentation form, absolute or not: it is
 * always asked as a fully qualified name), with a fresh random ID, RD set,
 * and an EDNS0 OPT record (UDP size 1232, no options) when edns is true.
 * Writes the ID to *id. DT_EBADNAME, DT_ENAMETOOLONG (buf too small). */
dt_status_t dt__wire_build_query(const char *name, uint16_t qtype, bool edns,
                                 uint8_t *buf, size_t buflen, size_t *len,
                                 uint16_t *id);

/* Why a datagram was not taken as the reply to a query. */
typedef enum {
  DT_MATCH_OK = 0,
  DT_MATCH_MALFORMED, /* shorter than a header, or question unparsable */
  DT_MATCH_ID,        /* ID differs */
  DT_MATCH_QUESTION,  /* QR clear, opcode differs, QDCOUNT != 1, or another
                         question (name compared case-insensitively) */
} dt_match_t;

/* Checks, without allocating, that pkt answers the query in q: same ID, QR
 * set, same opcode, exactly one question equal to the query's (name
 * case-insensitive, type and class). Compression in the reply's question
 * is followed with loop protection. */
dt_match_t dt__wire_match(const uint8_t *pkt, size_t len, const uint8_t *q,
                          size_t qlen);

/* DNS 0x20 (draft-vixie-dnsext-dns0x20): gives each letter of the question
 * name of a query built by dt__wire_build_query a random case, one bit per
 * letter from the CSPRNG, so an off-path attacker must also guess the
 * spelling. The reply must then pass dt__wire_match_exact. DT_EINVAL when
 * q holds no walkable question. */
dt_status_t dt__wire_mix_case(uint8_t *q, size_t qlen);

/* dt__wire_match, but the reply's question name must equal the query's
 * byte for byte, case included (0x20 mode): a reply in another case is
 * DT_MATCH_QUESTION. */
dt_match_t dt__wire_match_exact(const uint8_t *pkt, size_t len,
                                const uint8_t *q, size_t qlen);

/* Facts of a matched reply the resolver acts on before parsing. */
typedef struct {
  int rcode; /* with the extended bits from OPT when present */
  bool tc;
  bool has_opt;
} dt_reply_head_t;

/* Reads rcode, TC and OPT presence of a matched reply (no allocation).
 * DT_EBADREPLY when the packet cannot be walked. */
dt_status_t dt__wire_head(const uint8_t *pkt, size_t len, dt_reply_head_t *out);

/* Parses a matched reply into a new answer, built as one allocation (see
 * dt__answer_clone). Follows the CNAME chain from the question's name
 * (at most DT_WIRE_MAX_CNAME_HOPS; a loop or a longer chain is DT_ELOOP),
 * keeps only the chain and the final RRset of qtype (qtype CNAME or ANY:
 * the records at qname), and for negative replies (NXDOMAIN, or NOERROR
 * without the final RRset) the SOA of the authority section. TTLs with the
 * top bit set count as 0 (RFC 2181 §8). answer->ttl is the chain's
 * smallest TTL, or min(SOA TTL, SOA MINIMUM) for negatives, and no more
 * than the TTL of any CNAME that led there (0 without an SOA). qname in
 * the answer is the question as asked. Server, transport
 * and cache fields are left zero for the caller to fill.
 * DT_EBADREPLY for malformed packets, DT_ELOOP, DT_ENOMEM. */
dt_status_t dt__wire_parse(const uint8_t *pkt, size_t len, dt_answer_t **out);

/* Copies an answer into one new allocation (pointers relocated). */
dt_status_t dt__answer_clone(const dt_answer_t *a, dt_answer_t **out);
/* Copies an answer into caller storage, laid out as dt__answer_clone lays
 * out its block: buf must be 8-byte aligned, must not overlap a, and needs
 * dt__answer_size(a) bytes. *out (which is buf) is set only on DT_OK; its
 * pointers point into buf, so it lives as long as buf and is never passed
 * to dt_answer_free. DT_OK, DT_ETOOBIG (len too small, buf untouched),
 * DT_EINVAL (a NULL argument or buf misaligned). */
dt_status_t dt__answer_copy_into(const dt_answer_t *a, void *buf, size_t len,
                                 dt_answer_t **out);
/* Bytes the answer's block occupies (for cache memory limits). */
size_t dt__answer_size(const dt_answer_t *a);
/* Subtracts elapsed seconds from every TTL in the answer (floor 0). */
void dt__answer_age(dt_answer_t *a, uint32_t elapsed_s);

#endif
