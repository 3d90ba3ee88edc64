#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef HAVE_GETRANDOM
#include <sys/random.h>
#endif

#include <ldns/ldns.h>

#include "alloc.h"
#include "wire.h"

/* RFC 1035 §2.3.4: a name is at most 255 octets on the wire, root included;
 * a label at most 63. */
#define NAME_MAX_WIRE 255
#define LABEL_MAX 63
/* No name has more than 127 labels, so a name that needs more jumps than
 * that is a pointer chain built to waste time. */
#define MAX_JUMPS 127

#define HEADER_LEN 12
#define TYPE_SOA 6

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

static void wr16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v) {
  wr16(p, (uint16_t)(v >> 16));
  wr16(p + 2, (uint16_t)v);
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

/* Encodes a presentation-form name ("www.example", "a\.b.", "\065bc")
 * into uncompressed wire form in out (NAME_MAX_WIRE bytes). A trailing dot
 * is optional; "." is the root. Empty labels, labels over 63 octets,
 * names over 255 octets and bad escapes are DT_EBADNAME. */
static dt_status_t name_encode(const char *s, uint8_t *out, size_t *outlen) {
  size_t w = 0;
  if (strcmp(s, ".") == 0) {
    out[0] = 0;
    *outlen = 1;
    return DT_OK;
  }
  while (*s != '\0') {
    size_t lenpos = w++;
    size_t label = 0;
    while (*s != '\0' && *s != '.') {
      unsigned c = (unsigned char)*s++;
      if (c == '\\') {
        if (s[0] >= '0' && s[0] <= '9') {
          if (!(s[1] >= '0' && s[1] <= '9') || !(s[2] >= '0' && s[2] <= '9')) {
            return DT_EBADNAME;
          }
          c = (unsigned)(s[0] - '0') * 100 + (unsigned)(s[1] - '0') * 10 +
              (unsigned)(s[2] - '0');
          if (c > 255) {
            return DT_EBADNAME;
          }
          s += 3;
        } else if (*s == '\0') {
          return DT_EBADNAME;
        } else {
          c = (unsigned char)*s++;
        }
      }
      /* w + 1 more octets must leave room for the root label. */
      if (label == LABEL_MAX || w + 2 > NAME_MAX_WIRE) {
        return DT_EBADNAME;
      }
      out[w++] = (uint8_t)c;
      label++;
    }
    if (label == 0) {
      return DT_EBADNAME;
    }
    out[lenpos] = (uint8_t)label;
    if (*s == '.') {
      s++;
    }
  }
  if (w == 0) {
    return DT_EBADNAME;
  }
  out[w++] = 0;
  *outlen = w;
  return DT_OK;
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
  dt_status_t st = name_encode(name, qname, &qlen);
  if (st != DT_OK) {
    return st;
  }
  size_t need = HEADER_LEN + qlen + 4 + (edns ? 11 : 0);
  if (buflen < need) {
    return DT_ENAMETOOLONG;
  }
  uint8_t rid[2];
  st = dt__wire_random(rid, sizeof(rid));
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

dt_match_t dt__wire_match(const uint8_t *pkt, size_t len, const uint8_t *q,
                          size_t qlen) {
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
      !name_eq(rname, rlen, qname, qnlen)) {
    return DT_MATCH_QUESTION;
  }
  return DT_MATCH_OK;
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

dt_status_t dt__answer_clone(const dt_answer_t *a, dt_answer_t **out) {
  if (a == NULL || out == NULL) {
    return DT_EINVAL;
  }
  size_t size = dt__answer_size(a);
  uint8_t *block = dt__malloc(size);
  if (block == NULL) {
    return DT_ENOMEM;
  }
  dt_answer_t *c = (dt_answer_t *)block;
  *c = *a;
  dt_rr_t *rrs = (dt_rr_t *)(block + rrs_offset());
  size_t n = a->nanswer + a->nauthority;
  uint8_t *cur = (uint8_t *)(rrs + n);
  c->qname = put_str(&cur, a->qname);
  c->canonical = put_str(&cur, a->canonical);
  for (size_t i = 0; i < n; i++) {
    rrs[i] = i < a->nanswer ? a->answer[i] : a->authority[i - a->nanswer];
    rrs[i].rdata = put_bytes(&cur, rrs[i].rdata, rrs[i].rdlength);
    rrs[i].owner = put_str(&cur, rrs[i].owner);
    rrs[i].data = put_str(&cur, rrs[i].data);
  }
  c->answer = a->nanswer > 0 ? rrs : NULL;
  c->authority = a->nauthority > 0 ? rrs + a->nanswer : NULL;
  *out = c;
  return DT_OK;
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
