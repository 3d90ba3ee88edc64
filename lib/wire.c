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
