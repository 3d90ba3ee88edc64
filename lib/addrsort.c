#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "addrsort.h"
#include "sockopt.h"

/* An address as the policy table sees it: IPv6, with IPv4 mapped into
 * ::ffff:0:0/96 (RFC 6724 §2.1). */
static void as_v6(const dt__ipaddr_t *a, uint8_t out[16]) {
  if (a->sa.sa_family == AF_INET6) {
    memcpy(out, &a->in6.sin6_addr, 16);
    return;
  }
  memset(out, 0, 10);
  out[10] = 0xff;
  out[11] = 0xff;
  memcpy(out + 12, &a->in.sin_addr, 4);
}

/* RFC 6724 §2.1 default policy table, longest prefixes first so the first
 * match is the longest. */
static const struct {
  uint8_t prefix[16];
  unsigned len;
  int precedence;
  int label;
} policy[] = {
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, 50, 0},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96, 35, 4},
    {{0}, 96, 1, 3},
    {{0x20, 0x01, 0, 0}, 32, 5, 5},
    {{0x20, 0x02}, 16, 30, 2},
    {{0x3f, 0xfe}, 16, 1, 12},
    {{0xfe, 0xc0}, 10, 1, 11},
    {{0xfc}, 7, 3, 13},
    {{0}, 0, 40, 1},
};

static bool prefix_match(const uint8_t *addr, const uint8_t *prefix,
                         unsigned len) {
  unsigned bytes = len / 8, bits = len % 8;
  if (memcmp(addr, prefix, bytes) != 0) {
    return false;
  }
  if (bits == 0) {
    return true;
  }
  uint8_t mask = (uint8_t)(0xff << (8 - bits));
  return (addr[bytes] & mask) == (prefix[bytes] & mask);
}

static size_t policy_of(const dt__ipaddr_t *a) {
  uint8_t v6[16];
  as_v6(a, v6);
  size_t n = sizeof(policy) / sizeof(policy[0]);
  for (size_t i = 0; i < n; i++) {
    if (prefix_match(v6, policy[i].prefix, policy[i].len)) {
      return i;
    }
  }
  return n - 1; /* unreachable: ::/0 matches everything */
}

int dt__addrsort_precedence(const dt__ipaddr_t *a) {
  return policy[policy_of(a)].precedence;
}

int dt__addrsort_label(const dt__ipaddr_t *a) {
  return policy[policy_of(a)].label;
}

enum { SCOPE_LINK = 2, SCOPE_SITE = 5, SCOPE_GLOBAL = 14 };

int dt__addrsort_scope(const dt__ipaddr_t *a) {
  if (a->sa.sa_family == AF_INET) {
    const uint8_t *b = (const uint8_t *)&a->in.sin_addr;
    /* RFC 6724 §3.2: loopback and autoconfiguration addresses are
     * link-local; private ranges are global. */
    if (b[0] == 127 || (b[0] == 169 && b[1] == 254)) {
      return SCOPE_LINK;
    }
    return SCOPE_GLOBAL;
  }
  const uint8_t *b = (const uint8_t *)&a->in6.sin6_addr;
  if (b[0] == 0xff) {
    return b[1] & 0x0f;
  }
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) {
    return SCOPE_LINK;
  }
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) {
    return SCOPE_SITE;
  }
  static const uint8_t loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                       0, 0, 0, 0, 0, 0, 0, 1};
  if (memcmp(b, loopback, 16) == 0) {
    return SCOPE_LINK;
  }
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (memcmp(b, mapped, 12) == 0) {
    dt__ipaddr_t v4;
    memset(&v4, 0, sizeof(v4));
    v4.in.sin_family = AF_INET;
    memcpy(&v4.in.sin_addr, b + 12, 4);
    return dt__addrsort_scope(&v4);
  }
  return SCOPE_GLOBAL;
}

/* Leading bits two IPv6 addresses share, up to 64: RFC 6724 §2.2 limits
 * CommonPrefixLen to the source's prefix, which is 64 bits for nearly every
 * IPv6 subnet and unknown to a socket. */
static unsigned common_prefix(const dt__ipaddr_t *x, const dt__ipaddr_t *y) {
  const uint8_t *a = (const uint8_t *)&x->in6.sin6_addr;
  const uint8_t *b = (const uint8_t *)&y->in6.sin6_addr;
  unsigned n = 0;
  for (size_t i = 0; i < 8; i++) {
    uint8_t d = a[i] ^ b[i];
    if (d == 0) {
      n += 8;
      continue;
    }
    while (!(d & 0x80)) {
      n++;
      d = (uint8_t)(d << 1);
    }
    break;
  }
  return n;
}

void dt__addrsort_source(const dt_sockops_t *ops, dt__sortaddr_t *a) {
  a->usable = false;
  memset(&a->src, 0, sizeof(a->src));
  int family = a->dst.sa.sa_family;
  int fd = dt__sock_open(ops, family, SOCK_DGRAM);
  if (fd < 0) {
    return; /* EAFNOSUPPORT: the family is off in this kernel */
  }
  socklen_t len = dt__sockaddr_len(family);
  dt__ipaddr_t dst = a->dst;
  /* Connecting needs a port; any will do since nothing is sent. */
  if (family == AF_INET6 && dst.in6.sin6_port == 0) {
    dst.in6.sin6_port = htons(9);
  } else if (family == AF_INET && dst.in.sin_port == 0) {
    dst.in.sin_port = htons(9);
  }
  socklen_t got = sizeof(a->src);
  if (ops->connect(ops->ctx, fd, &dst.sa, len) == 0 &&
      ops->getsockname(ops->ctx, fd, &a->src.sa, &got) == 0 &&
      a->src.sa.sa_family == family) {
    a->usable = true;
  }
  int saved = errno;
  ops->close(ops->ctx, fd);
  errno = saved;
}

/* Negative when x goes before y. */
static int compare(const dt__sortaddr_t *x, const dt__sortaddr_t *y) {
  /* Rule 1: avoid unusable destinations. */
  if (x->usable != y->usable) {
    return x->usable ? -1 : 1;
  }
  int dsx = dt__addrsort_scope(&x->dst), dsy = dt__addrsort_scope(&y->dst);
  size_t px = policy_of(&x->dst), py = policy_of(&y->dst);
  if (x->usable) {
    /* Rule 2: prefer matching scope. */
    bool mx = dsx == dt__addrsort_scope(&x->src);
    bool my = dsy == dt__addrsort_scope(&y->src);
    if (mx != my) {
      return mx ? -1 : 1;
    }
    /* Rule 5: prefer matching label. */
    mx = policy[px].label == dt__addrsort_label(&x->src);
    my = policy[py].label == dt__addrsort_label(&y->src);
    if (mx != my) {
      return mx ? -1 : 1;
    }
  }
  /* Rule 6: prefer higher precedence. */
  if (policy[px].precedence != policy[py].precedence) {
    return policy[px].precedence > policy[py].precedence ? -1 : 1;
  }
  /* Rule 8: prefer smaller scope. */
  if (dsx != dsy) {
    return dsx < dsy ? -1 : 1;
  }
  /* Rule 9: longest matching prefix. Only between IPv6 destinations:
   * applied to IPv4 it defeats DNS round robin (the reason glibc and
   * others dropped it there). */
  if (x->usable && x->dst.sa.sa_family == AF_INET6 &&
      y->dst.sa.sa_family == AF_INET6) {
    unsigned cx = common_prefix(&x->dst, &x->src);
    unsigned cy = common_prefix(&y->dst, &y->src);
    if (cx != cy) {
      return cx > cy ? -1 : 1;
    }
  }
  /* Rule 10: leave the order unchanged. */
  return 0;
}

void dt__addrsort_sort(dt__sortaddr_t *a, size_t n) {
  /* Insertion sort: stable, and n is at most a few dozen. */
  for (size_t i = 1; i < n; i++) {
    dt__sortaddr_t cur = a[i];
    size_t j = i;
    while (j > 0 && compare(&cur, &a[j - 1]) < 0) {
      a[j] = a[j - 1];
      j--;
    }
    a[j] = cur;
  }
}

void dt__addrsort_interleave(dt__sortaddr_t *a, size_t n,
                             unsigned first_count) {
  /* Unusable addresses stay at the end, where rule 1 put them: trying one
   * early would only cost a failed connect(). */
  size_t usable = 0;
  while (usable < n && a[usable].usable) {
    usable++;
  }
  if (usable < 2) {
    return;
  }
  if (first_count < 1) {
    first_count = 1;
  }
  int first = a[0].dst.sa.sa_family;
  dt__sortaddr_t tmp[DT_DIAL_MAX_ATTEMPTS];
  if (usable > DT_DIAL_MAX_ATTEMPTS) {
    usable = DT_DIAL_MAX_ATTEMPTS; /* the dialer never holds more */
  }
  size_t k = 0, ip = 0, io = 0; /* next of the preferred / other family */
  bool want_first = true;
  unsigned run = 0;
  while (k < usable) {
    while (ip < usable && a[ip].dst.sa.sa_family != first) {
      ip++;
    }
    while (io < usable && a[io].dst.sa.sa_family == first) {
      io++;
    }
    if (ip >= usable && io >= usable) {
      break;
    }
    bool take_first = io >= usable || (ip < usable && want_first);
    if (take_first) {
      tmp[k++] = a[ip++];
      if (++run >= first_count) {
        want_first = false;
      }
    } else {
      tmp[k++] = a[io++];
      want_first = true;
    }
  }
  memcpy(a, tmp, k * sizeof(*a));
}
