#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "conf.h"
#include "dt_uthash.h"
#include "name.h"

#define NDOTS_MAX 15
#define TIMEOUT_MAX_S 30
#define ATTEMPTS_MAX 5

/* Text of an IPv6 address with a scope: address, '%', interface name. */
#define ADDR_TEXT_MAX (INET6_ADDRSTRLEN + IF_NAMESIZE + 1)

/* A piece of the input: configuration text is not NUL-terminated. */
typedef struct {
  const char *p;
  size_t len;
} span_t;

/* ---- lines and fields, shared by both parsers ------------------------- */

typedef struct {
  const char *text;
  size_t len;
  size_t pos;
} lines_t;

static bool next_line(lines_t *it, span_t *line) {
  if (it->pos >= it->len) {
    return false;
  }
  const char *start = it->text + it->pos;
  size_t left = it->len - it->pos;
  const char *nl = memchr(start, '\n', left);
  line->p = start;
  line->len = nl != NULL ? (size_t)(nl - start) : left;
  it->pos += line->len + (nl != NULL ? 1 : 0);
  return true;
}

/* Whether the line is worth reading at all. An overlong line is dropped
 * whole rather than cut: a cut "nameserver" or "search" line would silently
 * mean something else. A NUL byte means the file is not text there; C
 * string functions would see a shorter line than the file holds. */
static bool line_usable(span_t line) {
  return line.len <= DT_CONF_MAX_LINE && memchr(line.p, '\0', line.len) == NULL;
}

/* Drops everything from the first comment character on. */
static span_t cut_comment(span_t line, const char *comment_chars) {
  for (size_t i = 0; i < line.len; i++) {
    if (strchr(comment_chars, line.p[i]) != NULL) {
      line.len = i;
      break;
    }
  }
  return line;
}

static bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Takes the next whitespace-separated field off the front of *rest. */
static bool next_field(span_t *rest, span_t *field) {
  size_t i = 0;
  while (i < rest->len && is_space(rest->p[i])) {
    i++;
  }
  if (i == rest->len) {
    rest->p += i;
    rest->len = 0;
    return false;
  }
  size_t start = i;
  while (i < rest->len && !is_space(rest->p[i])) {
    i++;
  }
  field->p = rest->p + start;
  field->len = i - start;
  rest->p += i;
  rest->len -= i;
  return true;
}

static bool field_is(span_t f, const char *word) {
  size_t n = strlen(word);
  return f.len == n && memcmp(f.p, word, n) == 0;
}

/* Copies a field into a C string; false when it does not fit. */
static bool field_str(span_t f, char *buf, size_t size) {
  if (f.len >= size) {
    return false;
  }
  memcpy(buf, f.p, f.len);
  buf[f.len] = '\0';
  return true;
}

/* A field as a normalised name; false for anything that is not one. */
static bool field_name(span_t f, char *out) {
  char text[DT_NAME_BUFSIZE];
  return field_str(f, text, sizeof(text)) &&
         dt_name_normalize(text, out, DT_NAME_BUFSIZE) == DT_OK;
}

/* Decimal digits only, saturating at UINT_MAX instead of overflowing:
 * "ndots:99999999999" means the cap, not whatever it wraps to. */
static bool parse_uint(const char *p, size_t len, unsigned *out) {
  unsigned v = 0;
  if (len == 0) {
    return false;
  }
  for (size_t i = 0; i < len; i++) {
    if (p[i] < '0' || p[i] > '9') {
      return false;
    }
    unsigned d = (unsigned)(p[i] - '0');
    v = v > (UINT_MAX - d) / 10 ? UINT_MAX : v * 10 + d;
  }
  *out = v;
  return true;
}

/* ---- bounded file reading --------------------------------------------- */

/* Reads a whole file into a new buffer of at most max bytes. The size from
 * fstat is only a first guess: /proc and similar files report 0 or lie, so
 * the limit is enforced again on the bytes actually read. DT_ENOENT means
 * the file (or a directory on its path) does not exist. */
static dt_status_t read_file(const char *path, size_t max, char **out,
                             size_t *outlen) {
  dt_status_t st = DT_OK;
  char *buf = NULL;
  size_t len = 0;
  int err = 0;
  int fd;

  do {
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    err = errno;
    st = (err == ENOENT || err == ENOTDIR) ? DT_ENOENT
                                           : dt_status_from_errno(err);
    goto done;
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    err = errno;
    st = dt_status_from_errno(err);
    goto done;
  }
  /* One byte beyond the expected size, so that reaching end of file needs
   * no reallocation, and reading max + 1 bytes proves the file too big. */
  size_t cap = 4096;
  if (S_ISREG(sb.st_mode)) {
    if (sb.st_size < 0 || (uintmax_t)sb.st_size > max) {
      st = DT_ETOOBIG;
      goto done;
    }
    if (sb.st_size > 0) {
      cap = (size_t)sb.st_size + 1;
    }
  }
  if (cap > max + 1) {
    cap = max + 1;
  }
  buf = dt__malloc(cap);
  if (buf == NULL) {
    st = DT_ENOMEM;
    goto done;
  }
  for (;;) {
    if (len == cap) {
      if (len > max) {
        st = DT_ETOOBIG;
        goto done;
      }
      size_t ncap = cap > (max + 1) / 2 ? max + 1 : cap * 2;
      char *nbuf = dt__realloc(buf, ncap);
      if (nbuf == NULL) {
        st = DT_ENOMEM;
        goto done;
      }
      buf = nbuf;
      cap = ncap;
    }
    ssize_t n = read(fd, buf + len, cap - len);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      err = errno;
      st = dt_status_from_errno(err);
      goto done;
    }
    if (n == 0) {
      break;
    }
    len += (size_t)n;
  }

done:
  if (fd >= 0) {
    close(fd);
  }
  if (st != DT_OK) {
    dt__free(buf);
    if (err != 0) {
      errno = err;
    }
    return st;
  }
  *out = buf;
  *outlen = len;
  return DT_OK;
}

/* ---- resolv.conf ------------------------------------------------------ */

void dt__resolv_conf_defaults(dt_resolv_conf_t *out) {
  memset(out, 0, sizeof(*out));
  out->ndots = 1;
  out->timeout_ms = 5000;
  out->attempts = 2;
}

/* The address of a nameserver line: "192.0.2.1", "2001:db8::1",
 * "fe80::1%eth0" (scope by interface name or number), or with a port in
 * OpenBSD's spelling "[192.0.2.1]:5353", "[::1]:5353". A port is the only
 * way to point dialtone at a test server on loopback. */
static bool parse_server(span_t f, struct sockaddr_storage *ss) {
  char text[ADDR_TEXT_MAX + 1];
  unsigned port = 53;
  span_t host = f;

  if (f.len > 0 && f.p[0] == '[') {
    const char *rb = memchr(f.p, ']', f.len);
    if (rb == NULL) {
      return false;
    }
    host.p = f.p + 1;
    host.len = (size_t)(rb - host.p);
    size_t after = f.len - (size_t)(rb + 1 - f.p);
    if (after > 0) {
      if (rb[1] != ':' || !parse_uint(rb + 2, after - 1, &port) || port == 0 ||
          port > 65535) {
        return false;
      }
    }
  }
  if (!field_str(host, text, sizeof(text))) {
    return false;
  }

  memset(ss, 0, sizeof(*ss));
  struct sockaddr_in *sin = (struct sockaddr_in *)ss;
  if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    return true;
  }

  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
  char *pct = strchr(text, '%');
  if (pct != NULL) {
    *pct = '\0';
  }
  if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1) {
    return false;
  }
  if (pct != NULL) {
    const char *scope = pct + 1;
    unsigned idx = if_nametoindex(scope);
    if (idx == 0 && !parse_uint(scope, strlen(scope), &idx)) {
      /* An unknown interface cannot be reached: better no server than a
       * server silently bound to the wrong link. */
      return false;
    }
    sin6->sin6_scope_id = idx;
  }
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons((uint16_t)port);
  return true;
}

/* "search" replaces the list, "domain" makes it one name: the last such
 * line wins, as in glibc. Names that are not valid are dropped; a line
 * without any valid name changes nothing. */
static bool parse_search(span_t rest, bool one, dt_resolv_conf_t *out) {
  char name[DT_NAME_BUFSIZE];
  span_t f;
  size_t n = 0;
  bool clean = true;

  while (next_field(&rest, &f)) {
    if (!field_name(f, name)) {
      clean = false;
    } else if (n == DT_CONF_MAX_SEARCH) {
      clean = false;
      break;
    } else {
      memcpy(out->search[n++], name, strlen(name) + 1);
    }
    if (one) {
      /* glibc reads only the first field of "domain". */
      break;
    }
  }
  if (n == 0) {
    return false;
  }
  out->nsearch = n;
  out->set |= DT_CONF_SET_SEARCH;
  return clean;
}

/* Values are capped as glibc caps them; timeout and attempts are also at
 * least 1, since glibc treats 0 as 1 second and 0 attempts would never ask.
 * Unknown options and malformed values are ignored: resolv.conf is shared
 * with other resolvers that have options of their own. */
static void parse_option(span_t f, dt_resolv_conf_t *out) {
  const char *colon = memchr(f.p, ':', f.len);
  span_t key = f;
  unsigned v = 0;
  bool has_value = false;

  if (colon != NULL) {
    key.len = (size_t)(colon - f.p);
    has_value = parse_uint(colon + 1, f.len - key.len - 1, &v);
  }
  if (colon == NULL && field_is(key, "rotate")) {
    out->rotate = true;
    out->set |= DT_CONF_SET_ROTATE;
  } else if (colon == NULL && field_is(key, "edns0")) {
    out->edns0 = true;
    out->set |= DT_CONF_SET_EDNS0;
  } else if (!has_value) {
    return;
  } else if (field_is(key, "ndots")) {
    out->ndots = v > NDOTS_MAX ? NDOTS_MAX : (int)v;
    out->set |= DT_CONF_SET_NDOTS;
  } else if (field_is(key, "timeout")) {
    v = v < 1 ? 1 : v > TIMEOUT_MAX_S ? TIMEOUT_MAX_S : v;
    out->timeout_ms = (int)v * 1000;
    out->set |= DT_CONF_SET_TIMEOUT;
  } else if (field_is(key, "attempts")) {
    v = v < 1 ? 1 : v > ATTEMPTS_MAX ? ATTEMPTS_MAX : v;
    out->attempts = (int)v;
    out->set |= DT_CONF_SET_ATTEMPTS;
  }
}

/* One line; false when it is to be counted as ignored. */
static bool resolv_line(span_t line, dt_resolv_conf_t *out) {
  span_t rest = cut_comment(line, "#;");
  span_t key, f;

  if (!next_field(&rest, &key)) {
    return true;
  }
  if (field_is(key, "nameserver")) {
    /* Like glibc, only the first field counts; text after it is ignored. */
    if (!next_field(&rest, &f) || out->nservers == DT_CONF_MAX_SERVERS ||
        !parse_server(f, &out->servers[out->nservers])) {
      return false;
    }
    out->nservers++;
    return true;
  }
  if (field_is(key, "search") || field_is(key, "domain")) {
    return parse_search(rest, field_is(key, "domain"), out);
  }
  if (field_is(key, "options")) {
    bool any = false;
    while (next_field(&rest, &f)) {
      parse_option(f, out);
      any = true;
    }
    return any;
  }
  return false;
}

dt_status_t dt__resolv_conf_parse(const char *text, size_t len,
                                  dt_resolv_conf_t *out) {
  if (text == NULL || out == NULL) {
    return DT_EINVAL;
  }
  dt__resolv_conf_defaults(out);
  lines_t it = {text, len, 0};
  span_t line;
  while (next_line(&it, &line)) {
    if (!line_usable(line) || !resolv_line(line, out)) {
      out->lines_ignored++;
    }
  }
  return DT_OK;
}

static void add_fallback_servers(dt_resolv_conf_t *out) {
  struct sockaddr_in *sin = (struct sockaddr_in *)&out->servers[0];
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->servers[1];

  memset(out->servers, 0, 2 * sizeof(out->servers[0]));
  sin->sin_family = AF_INET;
  sin->sin_port = htons(53);
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(53);
  sin6->sin6_addr = in6addr_loopback;
  out->nservers = 2;
}

dt_status_t dt__resolv_conf_load(const char *path, dt_resolv_conf_t *out) {
  char *buf = NULL;
  size_t len = 0;

  if (path == NULL || out == NULL) {
    return DT_EINVAL;
  }
  dt_status_t st = read_file(path, DT_CONF_RESOLV_MAX_BYTES, &buf, &len);
  if (st == DT_ENOENT) {
    dt__resolv_conf_defaults(out);
  } else if (st != DT_OK) {
    return st;
  } else {
    dt__resolv_conf_parse(buf, len, out);
    dt__free(buf);
  }
  if (out->nservers == 0) {
    add_fallback_servers(out);
  }
  return DT_OK;
}

/* ---- hosts ------------------------------------------------------------ */

typedef struct host_entry {
  UT_hash_handle hh;
  const char *canon;      /* the first name of the line that brought this one */
  dt_hosts_addr_t *addrs; /* &one until a second address arrives */
  size_t naddrs;
  size_t cap;
  dt_hosts_addr_t one;
  char name[]; /* normalised; the key */
} host_entry_t;

struct dt_hosts {
  host_entry_t *table;
  size_t lines_ignored;
};

void dt__hosts_free(dt_hosts_t *h) {
  if (h == NULL) {
    return;
  }
  host_entry_t *e, *tmp;
  HASH_ITER(hh, h->table, e, tmp) {
    HASH_DEL(h->table, e);
    if (e->addrs != &e->one) {
      dt__free(e->addrs);
    }
    dt__free(e);
  }
  dt__free(h);
}

size_t dt__hosts_lines_ignored(const dt_hosts_t *h) {
  return h != NULL ? h->lines_ignored : 0;
}

static bool same_addr(const dt_hosts_addr_t *a, const dt_hosts_addr_t *b) {
  size_t n = a->family == AF_INET ? 4 : 16;
  return a->family == b->family && memcmp(&a->addr, &b->addr, n) == 0;
}

static dt_status_t add_addr(host_entry_t *e, const dt_hosts_addr_t *a) {
  /* "127.0.0.1 foo foo" or the same line twice would list an address
   * twice in a row; a connect attempt per copy helps nobody. */
  if (e->naddrs > 0 && same_addr(&e->addrs[e->naddrs - 1], a)) {
    return DT_OK;
  }
  if (e->naddrs == e->cap) {
    if (e->cap > SIZE_MAX / 2 / sizeof(*a)) {
      return DT_ENOMEM;
    }
    size_t ncap = e->cap * 2;
    dt_hosts_addr_t *n;
    if (e->addrs == &e->one) {
      n = dt__malloc(ncap * sizeof(*n));
      if (n != NULL) {
        n[0] = e->one;
      }
    } else {
      n = dt__realloc(e->addrs, ncap * sizeof(*n));
    }
    if (n == NULL) {
      return DT_ENOMEM;
    }
    e->addrs = n;
    e->cap = ncap;
  }
  e->addrs[e->naddrs++] = *a;
  return DT_OK;
}

/* The entry for a normalised name, made when new with canon as its
 * canonical name (NULL: the name is its own). */
static dt_status_t get_entry(dt_hosts_t *h, const char *key, const char *canon,
                             host_entry_t **out) {
  size_t klen = strlen(key);
  host_entry_t *e;

  HASH_FIND(hh, h->table, key, klen, e);
  if (e == NULL) {
    e = dt__malloc(sizeof(*e) + klen + 1);
    if (e == NULL) {
      return DT_ENOMEM;
    }
    memcpy(e->name, key, klen + 1);
    e->canon = canon != NULL ? canon : e->name;
    e->addrs = &e->one;
    e->naddrs = 0;
    e->cap = 1;
    HASH_ADD_KEYPTR(hh, h->table, e->name, klen, e);
    if (!DT_HASH_ADDED(e)) {
      dt__free(e);
      return DT_ENOMEM;
    }
  }
  *out = e;
  return DT_OK;
}

static bool parse_host_addr(span_t f, dt_hosts_addr_t *a) {
  char text[INET6_ADDRSTRLEN + 1];

  memset(a, 0, sizeof(*a));
  if (!field_str(f, text, sizeof(text))) {
    return false;
  }
  if (inet_pton(AF_INET, text, a->addr.v4) == 1) {
    a->family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, text, a->addr.v6) == 1) {
    a->family = AF_INET6;
    return true;
  }
  return false;
}

/* One line: an address, then its canonical name, then aliases. A bad
 * address drops the line; a bad name drops only that name, and the first
 * good one is the canonical name. *clean is false when anything was
 * dropped. Fails only for lack of memory. */
static dt_status_t hosts_line(dt_hosts_t *h, span_t line, bool *clean) {
  char key[DT_NAME_BUFSIZE];
  span_t rest = cut_comment(line, "#");
  span_t f;
  dt_hosts_addr_t addr;
  const char *canon = NULL;

  *clean = true;
  if (!next_field(&rest, &f)) {
    return DT_OK;
  }
  if (!parse_host_addr(f, &addr)) {
    *clean = false;
    return DT_OK;
  }
  while (next_field(&rest, &f)) {
    host_entry_t *e;
    if (!field_name(f, key)) {
      *clean = false;
      continue;
    }
    dt_status_t st = get_entry(h, key, canon, &e);
    if (st == DT_OK) {
      st = add_addr(e, &addr);
    }
    if (st != DT_OK) {
      return st;
    }
    if (canon == NULL) {
      canon = e->name;
    }
  }
  if (canon == NULL) {
    *clean = false;
  }
  return DT_OK;
}

dt_status_t dt__hosts_parse(const char *text, size_t len, dt_hosts_t **out) {
  if (text == NULL || out == NULL) {
    return DT_EINVAL;
  }
  dt_hosts_t *h = dt__calloc(1, sizeof(*h));
  if (h == NULL) {
    return DT_ENOMEM;
  }
  lines_t it = {text, len, 0};
  span_t line;
  while (next_line(&it, &line)) {
    bool clean = false;
    if (line_usable(line)) {
      dt_status_t st = hosts_line(h, line, &clean);
      if (st != DT_OK) {
        dt__hosts_free(h);
        return st;
      }
    }
    if (!clean) {
      h->lines_ignored++;
    }
  }
  *out = h;
  return DT_OK;
}

dt_status_t dt__hosts_load(const char *path, dt_hosts_t **out) {
  char *buf = NULL;
  size_t len = 0;

  if (path == NULL || out == NULL) {
    return DT_EINVAL;
  }
  dt_status_t st = read_file(path, DT_CONF_HOSTS_MAX_BYTES, &buf, &len);
  if (st == DT_ENOENT) {
    return dt__hosts_parse("", 0, out);
  }
  if (st != DT_OK) {
    return st;
  }
  st = dt__hosts_parse(buf, len, out);
  dt__free(buf);
  return st;
}

size_t dt__hosts_lookup(const dt_hosts_t *h, const char *name, int family,
                        dt_hosts_addr_t *addrs, size_t max,
                        const char **canon) {
  char key[DT_NAME_BUFSIZE];
  host_entry_t *e = NULL;
  size_t found = 0;

  if (canon != NULL) {
    *canon = NULL;
  }
  if (h == NULL || name == NULL ||
      dt_name_normalize(name, key, sizeof(key)) != DT_OK) {
    return 0;
  }
  HASH_FIND(hh, h->table, key, strlen(key), e);
  if (e == NULL) {
    return 0;
  }
  for (size_t i = 0; i < e->naddrs; i++) {
    if (family != AF_UNSPEC && e->addrs[i].family != family) {
      continue;
    }
    if (addrs != NULL && found < max) {
      addrs[found] = e->addrs[i];
    }
    found++;
  }
  if (canon != NULL) {
    *canon = e->canon;
  }
  return found;
}
