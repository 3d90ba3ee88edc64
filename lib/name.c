#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "dialtone/name.h"
#include "name.h"

#define LABEL_MAX 63

static bool is_digit(unsigned c) {
  return c >= '0' && c <= '9';
}

/* DNS compares names without case for ASCII letters only (RFC 4343): bytes
 * above 0x7f are never folded, whatever the locale says. */
static unsigned fold(unsigned c) {
  return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/* Reads one label byte at *pp, decoding "\X" and "\DDD", and advances *pp.
 * The caller has checked that **pp is neither NUL nor an unescaped dot. */
static dt_status_t read_byte(const unsigned char **pp, unsigned *byte) {
  const unsigned char *p = *pp;
  if (*p != '\\') {
    *byte = *p;
    *pp = p + 1;
    return DT_OK;
  }
  p++;
  if (*p == '\0') {
    return DT_EBADNAME;
  }
  if (!is_digit(*p)) {
    *byte = *p;
    *pp = p + 1;
    return DT_OK;
  }
  /* Exactly three digits: "\1" or "\12x" would be ambiguous to read back. */
  if (!is_digit(p[1]) || !is_digit(p[2])) {
    return DT_EBADNAME;
  }
  unsigned v = (p[0] - '0') * 100u + (p[1] - '0') * 10u + (p[2] - '0');
  if (v > 255) {
    return DT_EBADNAME;
  }
  *byte = v;
  *pp = p + 3;
  return DT_OK;
}

/* Presentation to wire form in buf, which holds DT_NAME_WIRE_MAX bytes: every
 * length limit of RFC 1035 is enforced here and nowhere else. */
static dt_status_t parse(const char *name, uint8_t *buf, size_t *len) {
  const unsigned char *p = (const unsigned char *)name;
  size_t n = 0;

  if (p[0] == '\0') {
    return DT_EBADNAME;
  }
  if (p[0] == '.' && p[1] == '\0') {
    buf[0] = 0;
    *len = 1;
    return DT_OK;
  }
  for (;;) {
    size_t lenpos = n;
    if (n >= DT_NAME_WIRE_MAX) {
      return DT_EBADNAME;
    }
    n++;
    while (*p != '\0' && *p != '.') {
      unsigned byte;
      dt_status_t st = read_byte(&p, &byte);
      if (st != DT_OK) {
        return st;
      }
      if (n - lenpos - 1 >= LABEL_MAX || n >= DT_NAME_WIRE_MAX) {
        return DT_EBADNAME;
      }
      buf[n++] = (uint8_t)byte;
    }
    size_t llen = n - lenpos - 1;
    if (llen == 0) {
      return DT_EBADNAME;
    }
    buf[lenpos] = (uint8_t)llen;
    if (*p == '\0') {
      break;
    }
    p++;
    if (*p == '\0') {
      break;
    }
  }
  if (n >= DT_NAME_WIRE_MAX) {
    return DT_EBADNAME;
  }
  buf[n++] = 0;
  *len = n;
  return DT_OK;
}

/* Wire form (as built by parse) to the normal presentation form. A space is
 * written as \032 like other non-graphic bytes, so that a normal name is
 * always one whitespace-free token in resolv.conf, hosts and tool output. */
static size_t format(const uint8_t *wire, char *out) {
  size_t o = 0;
  if (wire[0] == 0) {
    out[o++] = '.';
    out[o] = '\0';
    return o;
  }
  for (size_t i = 0; wire[i] != 0; i += (size_t)wire[i] + 1) {
    if (i != 0) {
      out[o++] = '.';
    }
    for (size_t j = 1; j <= wire[i]; j++) {
      unsigned c = fold(wire[i + j]);
      if (c == '.' || c == '\\') {
        out[o++] = '\\';
        out[o++] = (char)c;
      } else if (c < 0x21 || c > 0x7e) {
        out[o++] = '\\';
        out[o++] = (char)('0' + c / 100);
        out[o++] = (char)('0' + c / 10 % 10);
        out[o++] = (char)('0' + c % 10);
      } else {
        out[o++] = (char)c;
      }
    }
  }
  out[o] = '\0';
  return o;
}

/* The common case, a name of printable characters without escapes, in one
 * pass: its normal form is itself lower-cased without the trailing dot.
 * Returns false (out untouched or partly written) for anything else,
 * valid or not, which the general path then decides. */
static bool normalize_plain(const char *name, char *out, size_t outlen,
                            dt_status_t *st) {
  size_t i = 0, label = 0;
  for (;; i++) {
    unsigned ch = (unsigned char)name[i];
    if (ch == '\0') {
      break;
    }
    if (ch == '.') {
      if (label == 0) {
        return false;
      }
      if (name[i + 1] == '\0') {
        break;
      }
      label = 0;
    } else if (ch < 0x21 || ch > 0x7e || ch == '\\' || ++label > 63) {
      return false;
    }
    /* 253 characters without the trailing dot fill the 255-byte wire
     * form exactly. */
    if (i >= 253) {
      return false;
    }
  }
  if (i == 0) {
    return false;
  }
  if (i >= outlen) {
    *st = DT_ENAMETOOLONG;
    return true;
  }
  for (size_t k = 0; k < i; k++) {
    unsigned ch = (unsigned char)name[k];
    out[k] = (char)(ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch);
  }
  out[i] = '\0';
  *st = DT_OK;
  return true;
}

dt_status_t dt_name_normalize(const char *name, char *out, size_t outlen) {
  if (name != NULL && out != NULL) {
    dt_status_t fast;
    if (normalize_plain(name, out, outlen, &fast)) {
      return fast;
    }
  }
  uint8_t wire[DT_NAME_WIRE_MAX];
  size_t wlen;
  /* 4 characters per wire byte bounds any valid name below this size. */
  char text[DT_NAME_BUFSIZE];

  if (name == NULL || out == NULL) {
    return DT_EINVAL;
  }
  dt_status_t st = parse(name, wire, &wlen);
  if (st != DT_OK) {
    return st;
  }
  size_t tlen = format(wire, text);
  if (tlen >= outlen) {
    return DT_ENAMETOOLONG;
  }
  memcpy(out, text, tlen + 1);
  return DT_OK;
}

dt_status_t dt_name_reverse(const char *addr, char *out, size_t outlen) {
  static const char hex[] = "0123456789abcdef";
  unsigned char a[16];
  char text[80];
  size_t tlen = 0;

  if (addr == NULL || out == NULL) {
    return DT_EINVAL;
  }
  if (inet_pton(AF_INET, addr, a) == 1) {
    int n = snprintf(text, sizeof(text), "%u.%u.%u.%u.in-addr.arpa", a[3], a[2],
                     a[1], a[0]);
    tlen = (size_t)n;
  } else if (inet_pton(AF_INET6, addr, a) == 1) {
    /* IPv4-mapped addresses stay under ip6.arpa: the caller asked about an
     * IPv6 address, and rewriting it is the caller's policy, not ours. */
    for (int i = 15; i >= 0; i--) {
      text[tlen++] = hex[a[i] & 0xf];
      text[tlen++] = '.';
      text[tlen++] = hex[a[i] >> 4];
      text[tlen++] = '.';
    }
    memcpy(text + tlen, "ip6.arpa", sizeof("ip6.arpa"));
    tlen += sizeof("ip6.arpa") - 1;
  } else {
    return DT_EINVAL;
  }
  if (tlen >= outlen) {
    return DT_ENAMETOOLONG;
  }
  memcpy(out, text, tlen + 1);
  return DT_OK;
}

dt_status_t dt__name_to_wire(const char *name, uint8_t *out, size_t outlen,
                             size_t *wirelen) {
  uint8_t wire[DT_NAME_WIRE_MAX];
  size_t wlen;

  if (name == NULL || out == NULL || wirelen == NULL) {
    return DT_EINVAL;
  }
  dt_status_t st = parse(name, wire, &wlen);
  if (st != DT_OK) {
    return st;
  }
  if (wlen > outlen) {
    return DT_ENAMETOOLONG;
  }
  memcpy(out, wire, wlen);
  *wirelen = wlen;
  return DT_OK;
}

size_t dt__name_ndots(const char *name) {
  size_t n = 0;
  if (name == NULL) {
    return 0;
  }
  for (const char *p = name; *p != '\0'; p++) {
    if (*p == '\\') {
      /* Whatever follows a backslash belongs to a label; the digits of
       * "\DDD" are never dots, so skipping one character is enough. */
      if (*++p == '\0') {
        break;
      }
    } else if (*p == '.' && p[1] != '\0') {
      n++;
    }
  }
  return n;
}

bool dt__name_is_absolute(const char *name) {
  bool last_dot = false;
  if (name == NULL) {
    return false;
  }
  for (const char *p = name; *p != '\0'; p++) {
    if (*p == '\\') {
      last_dot = false;
      if (*++p == '\0') {
        break;
      }
    } else {
      last_dot = *p == '.';
    }
  }
  return last_dot;
}

bool dt__name_equal(const char *a, const char *b) {
  uint8_t wa[DT_NAME_WIRE_MAX], wb[DT_NAME_WIRE_MAX];
  size_t la, lb;

  if (a == NULL || b == NULL || parse(a, wa, &la) != DT_OK ||
      parse(b, wb, &lb) != DT_OK || la != lb) {
    return false;
  }
  /* Folding length bytes too is harmless: they are at most 63, below 'A'. */
  for (size_t i = 0; i < la; i++) {
    if (fold(wa[i]) != fold(wb[i])) {
      return false;
    }
  }
  return true;
}

dt_status_t dt__name_join(const char *name, const char *suffix, char *out,
                          size_t outlen) {
  uint8_t wn[DT_NAME_WIRE_MAX], ws[DT_NAME_WIRE_MAX];
  size_t ln, ls;

  if (name == NULL || suffix == NULL || out == NULL ||
      dt__name_is_absolute(name)) {
    return DT_EINVAL;
  }
  dt_status_t st = parse(name, wn, &ln);
  if (st == DT_OK) {
    st = parse(suffix, ws, &ls);
  }
  if (st != DT_OK) {
    return st;
  }
  /* name's root byte is replaced by suffix's labels. */
  if (ln - 1 + ls > DT_NAME_WIRE_MAX) {
    return DT_EBADNAME;
  }
  size_t a = strlen(name);
  size_t b = 0;
  if (ls > 1) {
    b = strlen(suffix);
    if (dt__name_is_absolute(suffix)) {
      b--;
    }
  }
  size_t total = a + (b != 0 ? 1 + b : 0);
  if (total >= outlen) {
    return DT_ENAMETOOLONG;
  }
  memcpy(out, name, a);
  if (b != 0) {
    out[a] = '.';
    memcpy(out + a + 1, suffix, b);
  }
  out[total] = '\0';
  return DT_OK;
}
