#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef HAVE_GETRANDOM
#include <sys/random.h>
#endif

#include <ldns/ldns.h>

#include "alloc.h"
#include "name.h"
#include "wire.h"

/* RFC 1035 §2.3.4: a name is at most 255 octets on the wire, root included;
 * a label at most 63. */
#define NAME_MAX_WIRE DT_NAME_WIRE_MAX
/* No name has more than 127 labels, so a name that needs more jumps than
 * that is a pointer chain built to waste time. */
#define MAX_JUMPS 127

#define HEADER_LEN 12
#define TYPE_A 1
#define TYPE_SOA 6
#define TYPE_AAAA 28
#define TYPE_SVCB 64
#define TYPE_HTTPS 65

/* Header bits (RFC 1035 §4.1.1), by byte. */
#define B2_QR 0x80
#define B2_OPCODE 0x78
#define B2_AA 0x04
#define B2_TC 0x02
#define B2_RD 0x01
#define B3_RA 0x80
#define B3_AD 0x20
#define B3_CD 0x10
#define B3_RCODE 0x0f

static uint16_t rd16(const uint8_t *p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static void wr16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v) {
  wr16(p, (uint16_t)(v >> 16));
  wr16(p + 2, (uint16_t)v);
}

/* RFC 2181 §8: a TTL with the top bit set is treated as zero. */
static uint32_t ttl_fix(uint32_t ttl) {
  return (ttl & 0x80000000u) ? 0 : ttl;
}

static uint32_t min32(uint32_t a, uint32_t b) {
  return a < b ? a : b;
}

/* Query IDs come two bytes at a time; a getrandom call per query cost 0.45
 * us of a 60 us lookup, so each thread draws 256 bytes at once. A forked
 * child must never reuse its parent's bytes: the atfork handler empties
 * the pool of the thread that forked, the only one the child has. */
#define ID_POOL 256
static __thread uint8_t id_pool[ID_POOL];
static __thread size_t id_left;
static pthread_once_t id_once = PTHREAD_ONCE_INIT;

static void id_pool_forget(void) {
  id_left = 0;
}

static void id_pool_setup(void) {
  pthread_atfork(NULL, NULL, id_pool_forget);
}

/* n (at most ID_POOL) bytes from the thread's pool; 0x20 case bits come
 * from here too. */
static dt_status_t pool_take(uint8_t *out, size_t n) {
  if (id_left < n) {
    pthread_once(&id_once, id_pool_setup);
    dt_status_t st = dt__wire_random(id_pool, sizeof(id_pool));
    if (st != DT_OK) {
      return st;
    }
    id_left = sizeof(id_pool);
  }
  id_left -= n;
  memcpy(out, id_pool + id_left, n);
  /* Spent bytes are not left behind for a later reader of the memory. */
  memset(id_pool + id_left, 0, n);
  return DT_OK;
}

static dt_status_t random_id(uint8_t out[2]) {
  return pool_take(out, 2);
}

dt_status_t dt__wire_random(void *buf, size_t n) {
  if (buf == NULL && n > 0) {
    return DT_EINVAL;
  }
#if defined(HAVE_GETRANDOM)
  /* Preferred over glibc's arc4random_buf, which aborts the process when
   * the kernel refuses randomness: here that is a status. */
  uint8_t *p = buf;
  while (n > 0) {
    ssize_t got = getrandom(p, n, 0);
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      return dt_status_from_errno(errno);
    }
    p += got;
    n -= (size_t)got;
  }
  return DT_OK;
#elif defined(HAVE_ARC4RANDOM_BUF)
  arc4random_buf(buf, n);
  return DT_OK;
#else
#error "dialtone needs getrandom() or arc4random_buf()"
#endif
}

/* ---- names on the wire ------------------------------------------------------
 * Every read below is checked against the message length first. */

/* Walks the name at *pos in the message m of len bytes. Writes its
 * uncompressed wire form to out (NAME_MAX_WIRE bytes) when out is not NULL
 * and its length to *outlen when outlen is not NULL, and moves *pos past
 * the name as it sits in the message. A compression pointer must point
 * strictly before the first byte of the labels being read, so every jump
 * goes backwards and the walk ends; jumps and length are bounded too. */
static bool name_walk(const uint8_t *m, size_t len, size_t *pos, uint8_t *out,
                      size_t *outlen) {
  size_t p = *pos;
  size_t run = p;
  size_t end = 0;
  size_t n = 0;
  unsigned jumps = 0;
  for (;;) {
    if (p >= len) {
      return false;
    }
    uint8_t c = m[p];
    if ((c & 0xc0) == 0xc0) {
      if (p + 1 >= len || ++jumps > MAX_JUMPS) {
        return false;
      }
      size_t target = (size_t)(c & 0x3f) << 8 | m[p + 1];
      if (target >= run) {
        return false;
      }
      if (end == 0) {
        end = p + 2;
      }
      p = run = target;
      continue;
    }
    /* 0x40 and 0x80 are the extended and reserved label types: no server
     * uses them. */
    if ((c & 0xc0) != 0 || len - p < (size_t)c + 1 ||
        n + c + 1 > NAME_MAX_WIRE) {
      return false;
    }
    if (out != NULL) {
      memcpy(out + n, m + p, (size_t)c + 1);
    }
    n += (size_t)c + 1;
    p += (size_t)c + 1;
    if (c == 0) {
      break;
    }
  }
  *pos = end != 0 ? end : p;
  if (outlen != NULL) {
    *outlen = n;
  }
  return true;
}

static uint8_t lower(uint8_t c) {
  return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* Compares two uncompressed wire names, ASCII case-insensitively. Length
 * octets are at most 63, below 'A', so folding them is harmless and equal
 * bytes mean equal label structure. */
static bool name_eq(const uint8_t *a, size_t alen, const uint8_t *b,
                    size_t blen) {
  if (alen != blen) {
    return false;
  }
  for (size_t i = 0; i < alen; i++) {
    if (lower(a[i]) != lower(b[i])) {
      return false;
    }
  }
  return true;
}

/* Whether zone is name or one of its ancestors (both uncompressed). */
static bool name_under(const uint8_t *name, size_t nlen, const uint8_t *zone,
                       size_t zlen) {
  size_t off = 0;
  while (nlen - off > zlen && name[off] != 0) {
    off += (size_t)name[off] + 1;
  }
  return name_eq(name + off, nlen - off, zone, zlen);
}

/* ---- queries and matching ------------------------------------------------ */

dt_status_t dt__wire_build_query(const char *name, uint16_t qtype, bool edns,
                                 uint8_t *buf, size_t buflen, size_t *len,
                                 uint16_t *id) {
  if (name == NULL || buf == NULL || len == NULL || id == NULL) {
    return DT_EINVAL;
  }
  uint8_t qname[NAME_MAX_WIRE];
  size_t qlen;
  dt_status_t st = dt__name_to_wire(name, qname, sizeof(qname), &qlen);
  if (st != DT_OK) {
    return st == DT_ENAMETOOLONG ? DT_EBADNAME : st;
  }
  size_t need = HEADER_LEN + qlen + 4 + (edns ? 11 : 0);
  if (buflen < need) {
    return DT_ENAMETOOLONG;
  }
  uint8_t rid[2];
  st = random_id(rid);
  if (st != DT_OK) {
    return st;
  }
  memset(buf, 0, HEADER_LEN);
  memcpy(buf, rid, 2);
  buf[2] = B2_RD;
  wr16(buf + 4, 1);
  wr16(buf + 10, edns ? 1 : 0);
  uint8_t *p = buf + HEADER_LEN;
  memcpy(p, qname, qlen);
  p += qlen;
  wr16(p, qtype);
  wr16(p + 2, LDNS_RR_CLASS_IN);
  p += 4;
  if (edns) {
    /* OPT (RFC 6891): root owner, CLASS is the UDP payload size, TTL holds
     * extended rcode, version 0 and no DO bit, no options. */
    p[0] = 0;
    wr16(p + 1, DT_TYPE_OPT);
    wr16(p + 3, DT_WIRE_EDNS_UDP_SIZE);
    wr32(p + 5, 0);
    wr16(p + 9, 0);
    p += 11;
  }
  *len = (size_t)(p - buf);
  *id = rd16(rid);
  return DT_OK;
}

/* Decodes the one question at offset 12: name, type and class; *end is set
 * past it. */
static bool question_read(const uint8_t *m, size_t len, uint8_t *name,
                          size_t *nlen, uint16_t *type, uint16_t *rclass,
                          size_t *end) {
  size_t pos = HEADER_LEN;
  if (!name_walk(m, len, &pos, name, nlen) || len - pos < 4) {
    return false;
  }
  *type = rd16(m + pos);
  *rclass = rd16(m + pos + 2);
  *end = pos + 4;
  return true;
}

dt_status_t dt__wire_mix_case(uint8_t *q, size_t qlen) {
  if (q == NULL || qlen < HEADER_LEN || rd16(q + 4) != 1) {
    return DT_EINVAL;
  }
  size_t end = HEADER_LEN;
  if (!name_walk(q, qlen, &end, NULL, NULL)) {
    return DT_EINVAL;
  }
  /* One bit per byte of the name: at most 255 bits. */
  uint8_t bits[NAME_MAX_WIRE / 8 + 1];
  dt_status_t st = pool_take(bits, sizeof(bits));
  if (st != DT_OK) {
    return st;
  }
  /* A query's name is uncompressed: length octets, then label bytes. */
  size_t i = HEADER_LEN;
  while (i < end && q[i] != 0) {
    size_t l = q[i++];
    for (size_t k = 0; k < l; k++, i++) {
      uint8_t c = lower(q[i]);
      size_t b = i - HEADER_LEN;
      if (c >= 'a' && c <= 'z' && (bits[b / 8] >> (b % 8) & 1)) {
        c = (uint8_t)(c - ('a' - 'A'));
      }
      q[i] = c;
    }
  }
  memset(bits, 0, sizeof(bits));
  return DT_OK;
}

static dt_match_t match(const uint8_t *pkt, size_t len, const uint8_t *q,
                        size_t qlen, bool exact) {
  if (pkt == NULL || q == NULL || len < HEADER_LEN || qlen < HEADER_LEN) {
    return DT_MATCH_MALFORMED;
  }
  if (pkt[0] != q[0] || pkt[1] != q[1]) {
    return DT_MATCH_ID;
  }
  if (!(pkt[2] & B2_QR) || ((pkt[2] ^ q[2]) & B2_OPCODE) != 0 ||
      rd16(pkt + 4) != 1) {
    return DT_MATCH_QUESTION;
  }
  uint8_t rname[NAME_MAX_WIRE], qname[NAME_MAX_WIRE];
  size_t rlen, qnlen, end;
  uint16_t rtype, rclass, qtype, qclass;
  if (!question_read(pkt, len, rname, &rlen, &rtype, &rclass, &end) ||
      !question_read(q, qlen, qname, &qnlen, &qtype, &qclass, &end)) {
    return DT_MATCH_MALFORMED;
  }
  if (rtype != qtype || rclass != qclass ||
      !name_eq(rname, rlen, qname, qnlen) ||
      (exact && memcmp(rname, qname, rlen) != 0)) {
    return DT_MATCH_QUESTION;
  }
  return DT_MATCH_OK;
}

dt_match_t dt__wire_match(const uint8_t *pkt, size_t len, const uint8_t *q,
                          size_t qlen) {
  return match(pkt, len, q, qlen, false);
}

dt_match_t dt__wire_match_exact(const uint8_t *pkt, size_t len,
                                const uint8_t *q, size_t qlen) {
  return match(pkt, len, q, qlen, true);
}

dt_status_t dt__wire_head(const uint8_t *pkt, size_t len,
                          dt_reply_head_t *out) {
  if (pkt == NULL || out == NULL) {
    return DT_EINVAL;
  }
  if (len < HEADER_LEN) {
    return DT_EBADREPLY;
  }
  /* Walking every record both finds the OPT and proves the counts: each
   * record consumes at least 11 bytes, so a header that claims more than
   * the packet holds fails here after at most len / 11 steps. */
  size_t pos = HEADER_LEN;
  for (unsigned i = rd16(pkt + 4); i > 0; i--) {
    if (!name_walk(pkt, len, &pos, NULL, NULL) || len - pos < 4) {
      return DT_EBADREPLY;
    }
    pos += 4;
  }
  unsigned before_ar = (unsigned)rd16(pkt + 6) + rd16(pkt + 8);
  unsigned total = before_ar + rd16(pkt + 10);
  bool has_opt = false;
  unsigned ext = 0;
  for (unsigned i = 0; i < total; i++) {
    size_t at = pos, nlen;
    if (!name_walk(pkt, len, &pos, NULL, &nlen) || len - pos < 10) {
      return DT_EBADREPLY;
    }
    const uint8_t *p = pkt + pos;
    size_t rdlength = rd16(p + 8);
    if (len - pos - 10 < rdlength) {
      return DT_EBADREPLY;
    }
    if (rd16(p) == DT_TYPE_OPT) {
      /* RFC 6891 §6.1.1: one OPT, owned by the root, in the additional
       * section; anything else is a malformed reply. */
      if (i < before_ar || has_opt || nlen != 1 || pkt[at] != 0) {
        return DT_EBADREPLY;
      }
      has_opt = true;
      ext = p[4];
    }
    pos += 10 + rdlength;
  }
  out->rcode = (int)(ext << 4 | (pkt[3] & B3_RCODE));
  out->tc = (pkt[2] & B2_TC) != 0;
  out->has_opt = has_opt;
  return DT_OK;
}

/* ---- answers: one block -----------------------------------------------------
 * Layout: the dt_answer_t, the dt_rr_t array (answer then authority), then
 * qname, canonical, and for each record its RDATA, owner and data. Size,
 * clone and parse all follow this order. */

struct rr_align {
  char c;
  dt_rr_t rr;
};

static size_t rrs_offset(void) {
  size_t a = offsetof(struct rr_align, rr);
  return (sizeof(dt_answer_t) + a - 1) / a * a;
}

static size_t str_size(const char *s) {
  return s != NULL ? strlen(s) + 1 : 0;
}

static const char *put_str(uint8_t **cur, const char *s) {
  if (s == NULL) {
    return NULL;
  }
  size_t n = strlen(s) + 1;
  memcpy(*cur, s, n);
  const char *at = (const char *)*cur;
  *cur += n;
  return at;
}

static const uint8_t *put_bytes(uint8_t **cur, const uint8_t *b, size_t n) {
  const uint8_t *at = *cur;
  if (n > 0) {
    memcpy(*cur, b, n);
    *cur += n;
  }
  return at;
}

size_t dt__answer_size(const dt_answer_t *a) {
  if (a == NULL) {
    return 0;
  }
  size_t n = rrs_offset() + (a->nanswer + a->nauthority) * sizeof(dt_rr_t) +
             str_size(a->qname) + str_size(a->canonical);
  for (size_t i = 0; i < a->nanswer + a->nauthority; i++) {
    const dt_rr_t *rr =
        i < a->nanswer ? &a->answer[i] : &a->authority[i - a->nanswer];
    n += rr->rdlength + str_size(rr->owner) + str_size(rr->data);
  }
  return n;
}

/* Every block starts with a dt_answer_t; callers' buffers must be aligned
 * for it. 8 bytes is what the header promises, so check it holds here. */
#define COPY_ALIGN 8

struct answer_align {
  char c;
  dt_answer_t a;
};

/* Fails to compile where dt_answer_t needs more than COPY_ALIGN. */
typedef char answer_align_ok[COPY_ALIGN % offsetof(struct answer_align, a) == 0
                                 ? 1
                                 : -1];

dt_status_t dt__answer_copy_into(const dt_answer_t *a, void *buf, size_t len,
                                 dt_answer_t **out) {
  if (a == NULL || buf == NULL || out == NULL ||
      (uintptr_t)buf % COPY_ALIGN != 0) {
    return DT_EINVAL;
  }
  if (len < dt__answer_size(a)) {
    return DT_ETOOBIG;
  }
  uint8_t *block = buf;
  dt_answer_t *c = (dt_answer_t *)block;
  *c = *a;
  dt_rr_t *rrs = (dt_rr_t *)(block + rrs_offset());
  size_t n = a->nanswer + a->nauthority;
  uint8_t *cur = (uint8_t *)(rrs + n);
  c->qname = put_str(&cur, a->qname);
  c->canonical = put_str(&cur, a->canonical);
  for (size_t i = 0; i < n; i++) {
    rrs[i] = i < a->nanswer ? a->answer[i] : a->authority[i - a->nanswer];
    rrs[i].rdata = rrs[i].rdata != NULL
                       ? put_bytes(&cur, rrs[i].rdata, rrs[i].rdlength)
                       : NULL;
    rrs[i].owner = put_str(&cur, rrs[i].owner);
    rrs[i].data = put_str(&cur, rrs[i].data);
  }
  c->answer = a->nanswer > 0 ? rrs : NULL;
  c->authority = a->nauthority > 0 ? rrs + a->nanswer : NULL;
  *out = c;
  return DT_OK;
}

dt_status_t dt__answer_clone(const dt_answer_t *a, dt_answer_t **out) {
  if (a == NULL || out == NULL) {
    return DT_EINVAL;
  }
  size_t size = dt__answer_size(a);
  /* malloc's alignment suits any object, so copy_into cannot refuse it. */
  void *block = dt__malloc(size);
  if (block == NULL) {
    return DT_ENOMEM;
  }
  dt_status_t ret = dt__answer_copy_into(a, block, size, out);
  if (ret != DT_OK) {
    dt__free(block);
  }
  return ret;
}

void dt__answer_age(dt_answer_t *a, uint32_t elapsed_s) {
  if (a == NULL) {
    return;
  }
  /* The records live in the answer's own block, which is writable: the
   * const in dt_answer_t only keeps users from editing it. */
  dt_rr_t *an = (dt_rr_t *)(uintptr_t)a->answer;
  dt_rr_t *au = (dt_rr_t *)(uintptr_t)a->authority;
  for (size_t i = 0; i < a->nanswer; i++) {
    an[i].ttl = an[i].ttl > elapsed_s ? an[i].ttl - elapsed_s : 0;
  }
  for (size_t i = 0; i < a->nauthority; i++) {
    au[i].ttl = au[i].ttl > elapsed_s ? au[i].ttl - elapsed_s : 0;
  }
  a->ttl = a->ttl > elapsed_s ? a->ttl - elapsed_s : 0;
}

void dt_answer_free(dt_answer_t *answer) {
  dt__free(answer);
}

dt_status_t dt_answer_status(const dt_answer_t *a) {
  if (a == NULL) {
    return DT_EINVAL;
  }
  switch (a->rcode) {
  case DT_RCODE_NOERROR:
    for (size_t i = 0; i < a->nanswer; i++) {
      if (a->answer[i].type == a->qtype || a->qtype == DT_TYPE_ANY ||
          a->qtype == DT_TYPE_CNAME) {
        return DT_OK;
      }
    }
    return DT_ENODATA;
  case DT_RCODE_NXDOMAIN:
    return DT_ENXDOMAIN;
  case DT_RCODE_SERVFAIL:
    return DT_ESERVFAIL;
  case DT_RCODE_REFUSED:
    return DT_EREFUSED;
  case DT_RCODE_FORMERR:
    return DT_EFORMERR;
  case DT_RCODE_NOTIMP:
    return DT_ENOTIMP;
  default:
    return DT_EBADREPLY;
  }
}

/* ---- parsing ----------------------------------------------------------------
 * The structure of the reply (sections, names, the chain) is walked here
 * byte by byte; ldns only splits the RDATA of the records kept into fields
 * and writes them as text. Its buffers stage the text and RDATA (ldns
 * allocates them itself) until the answer's size is known. */

/* One resource record as it sits in a message. */
typedef struct {
  size_t at;    /* offset of the owner name */
  size_t rdata; /* offset of the RDATA */
  uint16_t type;
  uint16_t rclass;
  uint32_t ttl; /* as sent */
  uint16_t rdlength;
  uint8_t owner[NAME_MAX_WIRE]; /* uncompressed */
  size_t ownerlen;
} record_t;

/* Reads the record at *pos and moves *pos past it. */
static bool record_read(const uint8_t *m, size_t len, size_t *pos,
                        record_t *r) {
  r->at = *pos;
  if (!name_walk(m, len, pos, r->owner, &r->ownerlen) || len - *pos < 10) {
    return false;
  }
  const uint8_t *p = m + *pos;
  r->type = rd16(p);
  r->rclass = rd16(p + 2);
  r->ttl = rd32(p + 4);
  r->rdlength = rd16(p + 8);
  *pos += 10;
  if (len - *pos < r->rdlength) {
    return false;
  }
  r->rdata = *pos;
  *pos += r->rdlength;
  return true;
}

typedef struct {
  const uint8_t *m;
  size_t len;
  ldns_buffer *text; /* qname, canonical, then owner and data per record,
                        each NUL-terminated */
  ldns_buffer *bin;  /* per record: type, class, TTL, rdlength, RDATA */
  size_t nrecords;
  size_t rdata_total;
} stage_t;

static dt_status_t from_ldns(ldns_status s) {
  return s == LDNS_STATUS_MEM_ERR ? DT_ENOMEM : DT_EBADREPLY;
}

static bool buf_put(ldns_buffer *b, const void *data, size_t n) {
  if (!ldns_buffer_reserve(b, n)) {
    return false;
  }
  ldns_buffer_write(b, data, n);
  return true;
}

static bool buf_puts(ldns_buffer *b, const char *s) {
  return buf_put(b, s, strlen(s));
}

/* Appends a wire name as presentation text and a NUL: labels joined by
 * dots with a trailing dot, "." for the root, and ldns's escaping ("\." ,
 * "\;", "\(", "\)", "\\" for those characters, "\DDD" outside printable
 * ASCII). Written by hand: ldns formats names a character at a time
 * through printf, which was most of a reply's parsing cost. */
static dt_status_t put_name_text(ldns_buffer *b, const uint8_t *wire,
                                 size_t n) {
  char out[4 * DT_NAME_WIRE_MAX + 2];
  size_t o = 0, i = 0;
  while (i < n && wire[i] != 0) {
    size_t len = wire[i++];
    for (size_t k = 0; k < len && i < n; k++, i++) {
      uint8_t c = wire[i];
      if (c == '.' || c == ';' || c == '(' || c == ')' || c == '\\') {
        out[o++] = '\\';
        out[o++] = (char)c;
      } else if (c <= 0x20 || c >= 0x7f) {
        out[o++] = '\\';
        out[o++] = (char)('0' + c / 100);
        out[o++] = (char)('0' + c / 10 % 10);
        out[o++] = (char)('0' + c % 10);
      } else {
        out[o++] = (char)c;
      }
    }
    out[o++] = '.';
  }
  if (o == 0) {
    out[o++] = '.';
  }
  out[o++] = '\0';
  return buf_put(b, out, o) ? DT_OK : DT_ENOMEM;
}

/* RFC 3597 §5 generic form: "\# 3 0a0b0c". */
static bool put_generic(ldns_buffer *b, const uint8_t *rdata, size_t n) {
  static const char hex[] = "0123456789abcdef";
  char head[32];
  snprintf(head, sizeof(head), "\\# %zu%s", n, n > 0 ? " " : "");
  if (!buf_puts(b, head)) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    char two[2] = {hex[rdata[i] >> 4], hex[rdata[i] & 0xf]};
    if (!buf_put(b, two, 2)) {
      return false;
    }
  }
  return true;
}

/* ldns splits RDATA into fields but checks neither that they fill it
 * exactly nor that the required ones are there: a record that disagrees
 * with its rdlength is malformed. Names are measured as they sit in the
 * message (they may be compressed); other fields are copied as sent.
 * Sets *size to the RDATA's uncompressed length. */
static bool rdata_fits(const stage_t *st, const record_t *r, const ldns_rr *rr,
                       size_t *size) {
  size_t count = ldns_rr_rd_count(rr);
  const ldns_rr_descriptor *d = ldns_rr_descript(r->type);
  bool opaque =
      d == NULL || ldns_rr_descriptor_field_type(d, 0) == LDNS_RDF_TYPE_UNKNOWN;
  if (!opaque && count < ldns_rr_descriptor_minimum(d)) {
    return false;
  }
  size_t p = r->rdata;
  size_t end = r->rdata + r->rdlength;
  size_t total = 0;
  for (size_t i = 0; i < count; i++) {
    const ldns_rdf *f = ldns_rr_rdf(rr, i);
    if (ldns_rdf_get_type(f) == LDNS_RDF_TYPE_DNAME) {
      if (!name_walk(st->m, st->len, &p, NULL, NULL)) {
        return false;
      }
    } else {
      p += ldns_rdf_size(f);
    }
    total += ldns_rdf_size(f);
    if (p > end) {
      return false;
    }
  }
  if (p != end || total > UINT16_MAX) {
    return false;
  }
  *size = total;
  return true;
}

/* Stages one record: its type, class, TTL (top bit cleared) and
 * uncompressed RDATA in bin, its owner and RDATA text in text. Sets *ttl to
 * the record's TTL and, for a SOA, *soa_min to its MINIMUM field. */
/* Whether a SvcParams list (RFC 9460 section 2.2) is well formed: keys
 * strictly ascending, each value within the list, and the values of the
 * keys with a fixed shape of that shape (mandatory: ascending keys other
 * than mandatory; alpn: non-empty length-prefixed ids filling it;
 * no-default-alpn: empty; port: 2 bytes; address hints: whole, non-empty
 * lists of addresses). Unknown keys may hold anything. */
static bool svcparams_ok(const uint8_t *p, size_t n) {
  long prev = -1;
  size_t i = 0;
  while (i < n) {
    if (n - i < 4) {
      return false;
    }
    unsigned key = rd16(p + i);
    size_t len = rd16(p + i + 2);
    i += 4;
    if ((long)key <= prev || len > n - i) {
      return false;
    }
    prev = (long)key;
    const uint8_t *v = p + i;
    switch (key) {
    case 0: /* mandatory */
      if (len == 0 || len % 2 != 0) {
        return false;
      }
      for (size_t k = 0; k < len; k += 2) {
        if (rd16(v + k) == 0 || (k > 0 && rd16(v + k) <= rd16(v + k - 2))) {
          return false;
        }
      }
      break;
    case 1: /* alpn */
      if (len == 0) {
        return false;
      }
      for (size_t k = 0; k < len; k += 1u + v[k]) {
        if (v[k] == 0 || v[k] > len - k - 1) {
          return false;
        }
      }
      break;
    case 2: /* no-default-alpn */
      if (len != 0) {
        return false;
      }
      break;
    case 3: /* port */
      if (len != 2) {
        return false;
      }
      break;
    case 4: /* ipv4hint */
    case 6: /* ipv6hint */
      if (len == 0 || len % (key == 4 ? 4u : 16u) != 0) {
        return false;
      }
      break;
    default:
      break;
    }
    i += len;
  }
  return true;
}

/* Appends a byte of a SvcParam value, escaped as RFC 9460 section A.1
 * allows: \DDD outside printable ASCII and for the characters that
 * delimit values. */
static bool put_svc_char(ldns_buffer *b, uint8_t c) {
  char e[4];
  if (c <= 0x20 || c >= 0x7f || c == '"' || c == ',' || c == '\\' || c == ';') {
    e[0] = '\\';
    e[1] = (char)('0' + c / 100);
    e[2] = (char)('0' + c / 10 % 10);
    e[3] = (char)('0' + c % 10);
    return buf_put(b, e, 4);
  }
  return buf_put(b, &c, 1);
}

static const char *const svc_keys[] = {
    "mandatory", "alpn", "no-default-alpn", "port",
    "ipv4hint",  "ech",  "ipv6hint",
};

static bool put_svc_key(ldns_buffer *b, unsigned key) {
  char name[16];
  if (key < sizeof(svc_keys) / sizeof(svc_keys[0])) {
    return buf_puts(b, svc_keys[key]);
  }
  snprintf(name, sizeof(name), "key%u", key);
  return buf_puts(b, name);
}

/* Appends a list svcparams_ok() accepted in presentation form: " key=value"
 * per parameter, values as RFC 9460 presents them (ech in base64, keys
 * without a known shape as escaped text). */
static bool put_svcparams(ldns_buffer *b, const uint8_t *p, size_t n) {
  static const char b64[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  while (i < n) {
    unsigned key = rd16(p + i);
    size_t len = rd16(p + i + 2);
    const uint8_t *v = p + i + 4;
    i += 4 + len;
    if (!buf_puts(b, " ") || !put_svc_key(b, key)) {
      return false;
    }
    if (key == 2) {
      continue; /* no-default-alpn: no value */
    }
    if (!buf_puts(b, "=")) {
      return false;
    }
    char tmp[INET6_ADDRSTRLEN + 8];
    bool ok = true;
    switch (key) {
    case 0:
      for (size_t k = 0; k < len && ok; k += 2) {
        ok = (k == 0 || buf_puts(b, ",")) && put_svc_key(b, rd16(v + k));
      }
      break;
    case 1:
      for (size_t k = 0; k < len && ok; k += 1u + v[k]) {
        ok = k == 0 || buf_puts(b, ",");
        for (size_t j = 1; j <= v[k] && ok; j++) {
          ok = put_svc_char(b, v[k + j]);
        }
      }
      break;
    case 3:
      snprintf(tmp, sizeof(tmp), "%u", (unsigned)rd16(v));
      ok = buf_puts(b, tmp);
      break;
    case 4:
    case 6:
      for (size_t k = 0; k < len && ok; k += key == 4 ? 4u : 16u) {
        ok = (k == 0 || buf_puts(b, ",")) &&
             inet_ntop(key == 4 ? AF_INET : AF_INET6, v + k, tmp,
                       sizeof(tmp)) != NULL &&
             buf_puts(b, tmp);
      }
      break;
    case 5:
      for (size_t k = 0; k < len && ok; k += 3) {
        uint32_t w = (uint32_t)v[k] << 16;
        w |= k + 1 < len ? (uint32_t)v[k + 1] << 8 : 0;
        w |= k + 2 < len ? v[k + 2] : 0;
        char q[4] = {b64[w >> 18], b64[(w >> 12) & 63],
                     k + 1 < len ? b64[(w >> 6) & 63] : '=',
                     k + 2 < len ? b64[w & 63] : '='};
        ok = buf_put(b, q, 4);
      }
      break;
    default:
      ok = buf_puts(b, "\"");
      for (size_t k = 0; k < len && ok; k++) {
        ok = put_svc_char(b, v[k]);
      }
      ok = ok && buf_puts(b, "\"");
      break;
    }
    if (!ok) {
      return false;
    }
  }
  return true;
}

/* Addresses, the records a lookup is made of, skip ldns: their RDATA is
 * fixed-size and their text is inet_ntop's. */
static dt_status_t emit_address(stage_t *st, record_t *r, uint32_t *ttl) {
  size_t rdlen = r->type == TYPE_A ? 4 : 16;
  if (r->rdlength != rdlen) {
    return DT_EBADREPLY;
  }
  *ttl = ttl_fix(r->ttl);
  uint8_t h[10];
  wr16(h, r->type);
  wr16(h + 2, r->rclass);
  wr32(h + 4, *ttl);
  wr16(h + 8, (uint16_t)rdlen);
  char text[INET6_ADDRSTRLEN];
  if (inet_ntop(r->type == TYPE_A ? AF_INET : AF_INET6, st->m + r->rdata, text,
                sizeof(text)) == NULL) {
    return DT_EBADREPLY;
  }
  if (!buf_put(st->bin, h, sizeof(h)) ||
      !buf_put(st->bin, st->m + r->rdata, rdlen)) {
    return DT_ENOMEM;
  }
  dt_status_t ret = put_name_text(st->text, r->owner, r->ownerlen);
  if (ret != DT_OK) {
    return ret;
  }
  if (!buf_put(st->text, text, strlen(text) + 1)) {
    return DT_ENOMEM;
  }
  st->nrecords++;
  st->rdata_total += rdlen;
  return DT_OK;
}

static dt_status_t emit(stage_t *st, record_t *r, uint32_t *ttl,
                        uint32_t *soa_min) {
  if (r->rclass == 1 && (r->type == TYPE_A || r->type == TYPE_AAAA)) {
    return emit_address(st, r, ttl);
  }
  ldns_rr *rr = ldns_rr_new();
  if (rr == NULL) {
    return DT_ENOMEM;
  }
  dt_status_t ret = DT_EBADREPLY;
  size_t pos = r->rdata - 2; /* ldns reads rdlength itself */
  ldns_rr_set_type(rr, (ldns_rr_type)r->type);
  ldns_status ls = ldns_wire2rdf(rr, st->m, st->len, &pos);
  size_t rdlen;
  if (ls != LDNS_STATUS_OK) {
    ret = from_ldns(ls);
    goto done;
  }
  if (!rdata_fits(st, r, rr, &rdlen)) {
    goto done;
  }
  size_t count = ldns_rr_rd_count(rr);
  if (r->type == TYPE_SOA && soa_min != NULL) {
    /* rdata_fits saw the 7 fields SOA requires; the last is MINIMUM. */
    *soa_min = ttl_fix(rd32(ldns_rdf_data(ldns_rr_rdf(rr, 6))));
  }
  *ttl = ttl_fix(r->ttl);

  ret = DT_ENOMEM;
  uint8_t h[10];
  wr16(h, r->type);
  wr16(h + 2, r->rclass);
  wr32(h + 4, *ttl);
  wr16(h + 8, (uint16_t)rdlen);
  size_t rdata_at = ldns_buffer_position(st->bin) + sizeof(h);
  if (!buf_put(st->bin, h, sizeof(h))) {
    goto done;
  }
  for (size_t i = 0; i < count; i++) {
    const ldns_rdf *f = ldns_rr_rdf(rr, i);
    if (!buf_put(st->bin, ldns_rdf_data(f), ldns_rdf_size(f))) {
      goto done;
    }
  }
  ret = put_name_text(st->text, r->owner, r->ownerlen);
  if (ret != DT_OK) {
    goto done;
  }
  ret = DT_ENOMEM;
  size_t mark = ldns_buffer_position(st->text);
  ls = LDNS_STATUS_OK;
  /* ldns 1.8's SvcParams printer writes past its buffer's reserve and
   * asserts (aborts the process) on replies a hostile server can send,
   * well-formed ones included (found by fuzz_reply): SVCB and HTTPS
   * parameters are presented here, and only when well formed. */
  bool svc = (r->type == TYPE_SVCB || r->type == TYPE_HTTPS) && count >= 3;
  if (svc) {
    count--;
  }
  for (size_t i = 0; i < count && ls == LDNS_STATUS_OK; i++) {
    if (i > 0 && !buf_put(st->text, " ", 1)) {
      goto done;
    }
    ls = ldns_rdf2buffer_str(st->text, ldns_rr_rdf(rr, i));
  }
  if (ls == LDNS_STATUS_MEM_ERR) {
    goto done;
  }
  if (svc && ls == LDNS_STATUS_OK) {
    const ldns_rdf *pf = ldns_rr_rdf(rr, count);
    if (!svcparams_ok(ldns_rdf_data(pf), ldns_rdf_size(pf))) {
      ls = LDNS_STATUS_ERR;
    } else if (!put_svcparams(st->text, ldns_rdf_data(pf), ldns_rdf_size(pf))) {
      goto done;
    }
  }
  if (count == 0 || ls != LDNS_STATUS_OK) {
    /* Fields ldns cannot present (or none at all): the generic form
     * always can. */
    ldns_buffer_set_position(st->text, mark);
    if (!put_generic(st->text, ldns_buffer_at(st->bin, rdata_at), rdlen)) {
      goto done;
    }
  }
  if (!buf_put(st->text, "", 1)) {
    goto done;
  }
  st->nrecords++;
  st->rdata_total += rdlen;
  ret = DT_OK;
done:
  ldns_rr_free(rr);
  return ret;
}

/* What dt__wire_parse learns from a walk of the reply, before it copies
 * anything. */
typedef struct {
  const uint8_t *m;
  size_t len;
  int rcode;
  uint16_t qtype;
  uint16_t qclass;
  size_t an_at; /* offset of the answer section */
  unsigned ancount;
  size_t ns_at; /* offset of the authority section */
  unsigned nscount;
  /* names[0] is the question's name, names[k] the target of the k-th
   * CNAME of the chain; names[hops] is the canonical name. */
  uint8_t names[DT_WIRE_MAX_CNAME_HOPS + 1][NAME_MAX_WIRE];
  size_t nlens[DT_WIRE_MAX_CNAME_HOPS + 1];
  size_t chain_at[DT_WIRE_MAX_CNAME_HOPS]; /* offsets of the chain's CNAMEs */
  size_t hops;
  size_t nfinal; /* records of the final RRset */
  bool negative;
  size_t soa_at; /* offset of the SOA kept; 0 for none (the header is
                    there) */
} reply_t;

/* Finds the first IN CNAME owned by the chain's last name in the answer
 * section and decodes its target. DT_OK when found, DT_ENODATA when not,
 * DT_EBADREPLY. */
static dt_status_t find_cname(const reply_t *rp, size_t *at, uint8_t *target,
                              size_t *tlen) {
  size_t pos = rp->an_at;
  record_t r;
  for (unsigned i = 0; i < rp->ancount; i++) {
    if (!record_read(rp->m, rp->len, &pos, &r)) {
      return DT_EBADREPLY;
    }
    if (r.rclass != LDNS_RR_CLASS_IN || r.type != DT_TYPE_CNAME ||
        !name_eq(r.owner, r.ownerlen, rp->names[rp->hops],
                 rp->nlens[rp->hops])) {
      continue;
    }
    size_t p = r.rdata;
    if (!name_walk(rp->m, rp->len, &p, target, tlen) ||
        p != r.rdata + r.rdlength) {
      return DT_EBADREPLY;
    }
    *at = r.at;
    return DT_OK;
  }
  return DT_ENODATA;
}

/* Follows the CNAME chain from the question's name. A name seen before is
 * a loop, and a chain longer than DT_WIRE_MAX_CNAME_HOPS is treated as
 * one: both DT_ELOOP. A CNAME or ANY question is answered by the records
 * at its own name, so its chain is not followed. */
static dt_status_t follow_chain(reply_t *rp) {
  if (rp->qtype == DT_TYPE_CNAME || rp->qtype == DT_TYPE_ANY) {
    return DT_OK;
  }
  for (;;) {
    uint8_t target[NAME_MAX_WIRE];
    size_t tlen, at;
    dt_status_t st = find_cname(rp, &at, target, &tlen);
    if (st == DT_ENODATA) {
      return DT_OK;
    }
    if (st != DT_OK) {
      return st;
    }
    if (rp->hops == DT_WIRE_MAX_CNAME_HOPS) {
      return DT_ELOOP;
    }
    for (size_t k = 0; k <= rp->hops; k++) {
      if (name_eq(rp->names[k], rp->nlens[k], target, tlen)) {
        return DT_ELOOP;
      }
    }
    rp->chain_at[rp->hops++] = at;
    memcpy(rp->names[rp->hops], target, tlen);
    rp->nlens[rp->hops] = tlen;
  }
}

/* Whether r belongs to the final RRset: IN, at the canonical name, of the
 * type asked (any type for ANY). */
static bool is_final(const reply_t *rp, const record_t *r) {
  return r->rclass == LDNS_RR_CLASS_IN &&
         (rp->qtype == DT_TYPE_ANY || r->type == rp->qtype) &&
         name_eq(r->owner, r->ownerlen, rp->names[rp->hops],
                 rp->nlens[rp->hops]);
}

/* Finds the SOA for a negative reply: the first IN SOA of the authority
 * section whose owner is the canonical name or an ancestor of it. Others
 * speak for zones the name is not in. */
static dt_status_t find_soa(reply_t *rp) {
  size_t pos = rp->ns_at;
  record_t r;
  for (unsigned i = 0; i < rp->nscount; i++) {
    if (!record_read(rp->m, rp->len, &pos, &r)) {
      return DT_EBADREPLY;
    }
    if (r.rclass == LDNS_RR_CLASS_IN && r.type == TYPE_SOA &&
        name_under(rp->names[rp->hops], rp->nlens[rp->hops], r.owner,
                   r.ownerlen)) {
      rp->soa_at = r.at;
      break;
    }
  }
  return DT_OK;
}

/* Walks the reply and decides which records the answer keeps. */
static dt_status_t reply_scan(reply_t *rp, const uint8_t *pkt, size_t len) {
  dt_reply_head_t head;
  if (dt__wire_head(pkt, len, &head) != DT_OK || rd16(pkt + 4) != 1) {
    return DT_EBADREPLY;
  }
  rp->m = pkt;
  rp->len = len;
  rp->rcode = head.rcode;
  rp->hops = 0;
  rp->nfinal = 0;
  rp->soa_at = 0;
  if (!question_read(pkt, len, rp->names[0], &rp->nlens[0], &rp->qtype,
                     &rp->qclass, &rp->an_at)) {
    return DT_EBADREPLY;
  }
  rp->ancount = rd16(pkt + 6);
  rp->nscount = rd16(pkt + 8);
  rp->ns_at = rp->an_at;
  record_t r;
  for (unsigned i = 0; i < rp->ancount; i++) {
    if (!record_read(pkt, len, &rp->ns_at, &r)) {
      return DT_EBADREPLY;
    }
  }
  dt_status_t st = follow_chain(rp);
  if (st != DT_OK) {
    return st;
  }
  size_t pos = rp->an_at;
  for (unsigned i = 0; i < rp->ancount; i++) {
    record_read(pkt, len, &pos, &r); /* read once above */
    rp->nfinal += is_final(rp, &r);
  }
  rp->negative = rp->rcode == DT_RCODE_NXDOMAIN ||
                 (rp->rcode == DT_RCODE_NOERROR && rp->nfinal == 0);
  return rp->negative ? find_soa(rp) : DT_OK;
}

/* Stages the records kept, in the answer's order (the chain, the final
 * RRset, the SOA), and computes the answer's TTL. */
static dt_status_t reply_stage(const reply_t *rp, stage_t *st, size_t *nanswer,
                               uint32_t *ttl) {
  dt_status_t ret;
  uint32_t min = UINT32_MAX, rttl;
  record_t r;
  size_t pos;
  if ((ret = put_name_text(st->text, rp->names[0], rp->nlens[0])) != DT_OK ||
      (ret = put_name_text(st->text, rp->names[rp->hops],
                           rp->nlens[rp->hops])) != DT_OK) {
    return ret;
  }
  for (size_t k = 0; k < rp->hops; k++) {
    pos = rp->chain_at[k];
    record_read(rp->m, rp->len, &pos, &r);
    if ((ret = emit(st, &r, &rttl, NULL)) != DT_OK) {
      return ret;
    }
    min = min32(min, rttl);
  }
  pos = rp->an_at;
  for (unsigned i = 0; i < rp->ancount; i++) {
    record_read(rp->m, rp->len, &pos, &r);
    if (!is_final(rp, &r)) {
      continue;
    }
    if ((ret = emit(st, &r, &rttl, NULL)) != DT_OK) {
      return ret;
    }
    min = min32(min, rttl);
  }
  *nanswer = st->nrecords;
  if (rp->soa_at != 0) {
    uint32_t soa_min = 0;
    pos = rp->soa_at;
    record_read(rp->m, rp->len, &pos, &r);
    if ((ret = emit(st, &r, &rttl, &soa_min)) != DT_OK) {
      return ret;
    }
    /* RFC 2308 §5; and a negative answer reached through CNAMEs lives no
     * longer than they do. */
    min = min32(min, min32(rttl, soa_min));
  } else if (rp->negative || *nanswer == 0) {
    min = 0;
  }
  *ttl = min;
  return DT_OK;
}

/* Copies the staged records into one block. */
static dt_status_t build(const reply_t *rp, const stage_t *st, size_t nanswer,
                         uint32_t ttl, dt_answer_t **out) {
  size_t n = st->nrecords;
  size_t size = rrs_offset() + n * sizeof(dt_rr_t) +
                ldns_buffer_position(st->text) + st->rdata_total;
  uint8_t *block = dt__malloc(size);
  if (block == NULL) {
    return DT_ENOMEM;
  }
  dt_answer_t *a = (dt_answer_t *)block;
  memset(a, 0, sizeof(*a));
  const uint8_t *m = rp->m;
  a->qtype = rp->qtype;
  a->qclass = rp->qclass;
  a->rcode = rp->rcode;
  a->flags =
      ((m[2] & B2_AA) ? DT_FLAG_AA : 0) | ((m[2] & B2_TC) ? DT_FLAG_TC : 0) |
      ((m[2] & B2_RD) ? DT_FLAG_RD : 0) | ((m[3] & B3_RA) ? DT_FLAG_RA : 0) |
      ((m[3] & B3_AD) ? DT_FLAG_AD : 0) | ((m[3] & B3_CD) ? DT_FLAG_CD : 0);
  a->ttl = ttl;
  dt_rr_t *rrs = (dt_rr_t *)(block + rrs_offset());
  uint8_t *cur = (uint8_t *)(rrs + n);
  const char *t = (const char *)ldns_buffer_begin(st->text);
  const uint8_t *b = ldns_buffer_begin(st->bin);
  a->qname = put_str(&cur, t);
  t += strlen(t) + 1;
  a->canonical = put_str(&cur, t);
  t += strlen(t) + 1;
  for (size_t i = 0; i < n; i++) {
    dt_rr_t *rr = &rrs[i];
    rr->type = rd16(b);
    rr->rclass = rd16(b + 2);
    rr->ttl = rd32(b + 4);
    rr->rdlength = rd16(b + 8);
    rr->rdata = put_bytes(&cur, b + 10, rr->rdlength);
    b += 10 + (size_t)rr->rdlength;
    rr->owner = put_str(&cur, t);
    t += strlen(t) + 1;
    rr->data = put_str(&cur, t);
    t += strlen(t) + 1;
  }
  a->answer = nanswer > 0 ? rrs : NULL;
  a->nanswer = nanswer;
  a->authority = n > nanswer ? rrs + nanswer : NULL;
  a->nauthority = n - nanswer;
  *out = a;
  return DT_OK;
}

dt_status_t dt__wire_parse(const uint8_t *pkt, size_t len, dt_answer_t **out) {
  if (pkt == NULL || out == NULL) {
    return DT_EINVAL;
  }
  reply_t rp;
  dt_status_t ret = reply_scan(&rp, pkt, len);
  if (ret != DT_OK) {
    return ret;
  }
  stage_t st = {pkt, len, ldns_buffer_new(512), ldns_buffer_new(512), 0, 0};
  size_t nanswer = 0;
  uint32_t ttl = 0;
  ret = DT_ENOMEM;
  if (st.text != NULL && st.bin != NULL) {
    ret = reply_stage(&rp, &st, &nanswer, &ttl);
  }
  if (ret == DT_OK) {
    /* ldns marks a buffer that failed to grow and ignores later writes. */
    ret = ldns_buffer_status_ok(st.text) && ldns_buffer_status_ok(st.bin)
              ? build(&rp, &st, nanswer, ttl, out)
              : DT_ENOMEM;
  }
  if (st.text != NULL) {
    ldns_buffer_free(st.text);
  }
  if (st.bin != NULL) {
    ldns_buffer_free(st.bin);
  }
  return ret;
}

/* ---- text ---------------------------------------------------------------- */

const char *dt_type_tostr(uint16_t type, char *buf, size_t len) {
  if (buf == NULL || len == 0) {
    return "";
  }
  char *s = ldns_rr_type2str((ldns_rr_type)type);
  if (s != NULL) {
    snprintf(buf, len, "%s", s);
    free(s); /* ldns allocates with the C library */
  } else {
    snprintf(buf, len, "TYPE%u", (unsigned)type);
  }
  return buf;
}

dt_status_t dt_type_fromstr(const char *s, uint16_t *type) {
  if (s == NULL || type == NULL) {
    return DT_EINVAL;
  }
  /* RFC 3597 §5 names any type TYPEnnn; ldns would read the number with
   * atoi and wrap it, so these are parsed here. */
  if (strncasecmp(s, "TYPE", 4) == 0) {
    unsigned long v = 0;
    const char *p = s + 4;
    if (*p == '\0') {
      return DT_EINVAL;
    }
    for (; *p != '\0'; p++) {
      if (*p < '0' || *p > '9') {
        return DT_EINVAL;
      }
      v = v * 10 + (unsigned long)(*p - '0');
      if (v > UINT16_MAX) {
        return DT_EINVAL;
      }
    }
    *type = (uint16_t)v;
    return DT_OK;
  }
  ldns_rr_type t = ldns_get_rr_type_by_name(s);
  if (t == 0 || (unsigned)t > UINT16_MAX) {
    return DT_EINVAL;
  }
  *type = (uint16_t)t;
  return DT_OK;
}

const char *dt_rcode_tostr(int rcode, char *buf, size_t len) {
  /* RFC 6895 §2.3, as dig names them. */
  static const char *const names[] = {
      "NOERROR",  "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP",  "REFUSED",
      "YXDOMAIN", "YXRRSET", "NXRRSET",  "NOTAUTH",  "NOTZONE", "DSOTYPENI",
  };
  if (rcode >= 0 && (size_t)rcode < sizeof(names) / sizeof(names[0])) {
    return names[rcode];
  }
  if (rcode == 16) {
    return "BADVERS";
  }
  if (buf == NULL || len == 0) {
    return "";
  }
  snprintf(buf, len, "RCODE%d", rcode);
  return buf;
}

dt_status_t dt_rr_tostr(const dt_rr_t *rr, char *buf, size_t len) {
  if (rr == NULL || buf == NULL || len == 0) {
    return DT_EINVAL;
  }
  char tbuf[16], cbuf[16];
  const char *cls = "IN";
  if (rr->rclass != LDNS_RR_CLASS_IN) {
    snprintf(cbuf, sizeof(cbuf), "CLASS%u", (unsigned)rr->rclass);
    cls = cbuf;
  }
  int n = snprintf(buf, len, "%s\t%lu\t%s\t%s\t%s",
                   rr->owner != NULL ? rr->owner : "", (unsigned long)rr->ttl,
                   cls, dt_type_tostr(rr->type, tbuf, sizeof(tbuf)),
                   rr->data != NULL ? rr->data : "");
  if (n < 0) {
    buf[0] = '\0';
    return DT_EINVAL;
  }
  return (size_t)n < len ? DT_OK : DT_ENAMETOOLONG;
}
