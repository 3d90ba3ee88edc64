/*
 * http_get: a minimal HTTP/1.1 GET over plain TCP, on a pooled
 * connection: a real protocol on top of dialtone.
 *
 * What it shows: the pool gives a connection (dialed with Happy Eyeballs,
 * or an idle one kept from the previous request: HTTP/1.1 keeps
 * connections open), and dt_conn_t's buffers make a byte-at-a-time header
 * parser cheap, since reading one byte from the buffer makes no system
 * call. A response whose end the parser is sure of goes back to the pool
 * for the next request; anything else closes the connection.
 *
 * Handled: Content-Length and chunked bodies, bodies that end when the
 * server closes, 1xx interim responses, 204 and 304. Not handled: TLS
 * (https://), redirects, proxies, compression.
 *
 * Build, after `make install`:
 *   cc -o http_get http_get.c $(pkg-config --cflags --libs dialtone)
 * Run:
 *   ./http_get http://example.com/
 *   ./http_get -n 3 http://127.0.0.1:8080/index.html   three GETs, one
 *                                                       connection
 *   ./http_get -r ./resolv.conf http://www.test:8080/
 *
 * Options:
 *   -r FILE  resolv.conf to read instead of /etc/resolv.conf; a nameserver
 *            may carry a port: "nameserver [127.0.0.1]:5353"
 *   -n N     GET the URL N times (default 1)
 *   -t MS    limit of each read, write or connect (default 10000)
 *
 * The body goes to stdout; one line per request goes to stderr:
 *   http_get: GET http://127.0.0.1:8080/: 200 OK, 13 bytes, reused
 *   connection to 127.0.0.1#8080 (use 2)
 * Exit status: 0 when every response arrived with a status below 400,
 * 1 bad usage, 2 a request failed, 3 a status of 400 or more.
 */
#define _POSIX_C_SOURCE 200809L

#include <dialtone.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Bounds that a hostile server cannot push past. */
#define MAX_LINE 8192
#define MAX_HEADERS 100
#define MAX_HOST 256

typedef struct {
  char host[MAX_HOST];      /* to dial: a name, or an IP literal */
  char authority[MAX_HOST]; /* for the Host header, as in the URL */
  uint16_t port;
  const char *path;
} url_t;

/* What a response said about itself. */
typedef struct {
  int status;
  char reason[64];
  bool keep_alive;
  bool chunked;
  bool has_length;
  unsigned long long length;
} response_t;

static void usage(void) {
  fprintf(stderr, "usage: http_get [-r RESOLV_CONF] [-n COUNT] [-t MS] "
                  "http://HOST[:PORT][/PATH]\n");
}

/* http://host[:port][/path], host being a name, an IPv4 literal or an
 * IPv6 literal in brackets. */
static bool parse_url(const char *s, url_t *u) {
  const char *scheme = "http://";
  if (strncasecmp(s, scheme, strlen(scheme)) != 0) {
    return false;
  }
  s += strlen(scheme);
  const char *slash = strchr(s, '/');
  size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
  u->path = slash != NULL ? slash : "/";
  if (alen == 0 || alen >= MAX_HOST) {
    return false;
  }
  memcpy(u->authority, s, alen);
  u->authority[alen] = '\0';

  const char *host = u->authority, *colon;
  size_t hlen;
  if (host[0] == '[') {
    const char *rb = strchr(host, ']');
    if (rb == NULL) {
      return false;
    }
    host++;
    hlen = (size_t)(rb - host);
    colon = rb[1] == ':' ? rb + 1 : NULL;
    if (rb[1] != '\0' && colon == NULL) {
      return false;
    }
  } else {
    colon = strchr(host, ':');
    hlen = colon != NULL ? (size_t)(colon - host) : strlen(host);
  }
  if (hlen == 0) {
    return false;
  }
  memcpy(u->host, host, hlen);
  u->host[hlen] = '\0';
  u->port = 80;
  if (colon != NULL) {
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535) {
      return false;
    }
    u->port = (uint16_t)port;
  }
  return true;
}

/* One line without its CR LF. Reading one byte at a time is fine: the
 * bytes come from the connection's buffer, refilled by large reads. */
static dt_status_t read_line(dt_conn_t *c, char *line, size_t cap,
                             int timeout_ms) {
  size_t len = 0;
  for (;;) {
    char ch;
    size_t n;
    dt_status_t st = dt_conn_read(c, &ch, 1, &n, timeout_ms);
    if (st != DT_OK) {
      return st == DT_EOF && len > 0 ? DT_EUNEXPECTEDEOF : st;
    }
    if (ch == '\n') {
      break;
    }
    if (len + 1 >= cap) {
      return DT_ETOOBIG;
    }
    line[len++] = ch;
  }
  if (len > 0 && line[len - 1] == '\r') {
    len--;
  }
  line[len] = '\0';
  return DT_OK;
}

/* A header's value, if line is that header (names are case-insensitive). */
static const char *header(const char *line, const char *name) {
  size_t n = strlen(name);
  if (strncasecmp(line, name, n) != 0 || line[n] != ':') {
    return NULL;
  }
  const char *v = line + n + 1;
  while (*v == ' ' || *v == '\t') {
    v++;
  }
  return v;
}

static bool contains_token(const char *value, const char *token) {
  size_t n = strlen(token);
  for (const char *p = value; *p != '\0'; p++) {
    if (strncasecmp(p, token, n) == 0) {
      return true;
    }
  }
  return false;
}

/* The status line and headers of one response; 1xx interim responses are
 * skipped. */
static dt_status_t read_head(dt_conn_t *c, int timeout_ms, response_t *r) {
  char line[MAX_LINE];
  for (;;) {
    dt_status_t st = read_line(c, line, sizeof(line), timeout_ms);
    if (st != DT_OK) {
      return st;
    }
    int minor, consumed = 0;
    memset(r, 0, sizeof(*r));
    if (sscanf(line, "HTTP/1.%1d %3d%n", &minor, &r->status, &consumed) != 2 ||
        consumed != 12 || r->status < 100 || r->status > 999) {
      return DT_EBADREPLY;
    }
    /* The reason phrase is for people: a long one is cut. */
    snprintf(r->reason, sizeof(r->reason), "%.*s", (int)sizeof(r->reason) - 1,
             line[12] == ' ' ? line + 13 : "");
    r->keep_alive = minor >= 1;
    for (int i = 0;; i++) {
      if (i == MAX_HEADERS) {
        return DT_ETOOBIG;
      }
      st = read_line(c, line, sizeof(line), timeout_ms);
      if (st != DT_OK) {
        return st;
      }
      if (line[0] == '\0') {
        break;
      }
      const char *v;
      if ((v = header(line, "Content-Length")) != NULL) {
        char *end;
        r->length = strtoull(v, &end, 10);
        if (end == v || *end != '\0' || r->length > (1ull << 62)) {
          return DT_EBADREPLY;
        }
        r->has_length = true;
      } else if ((v = header(line, "Transfer-Encoding")) != NULL) {
        r->chunked = contains_token(v, "chunked");
      } else if ((v = header(line, "Connection")) != NULL) {
        if (contains_token(v, "close")) {
          r->keep_alive = false;
        } else if (contains_token(v, "keep-alive")) {
          r->keep_alive = true;
        }
      }
    }
    if (r->status >= 200) {
      return DT_OK;
    }
  }
}

/* Copies exactly n body bytes to stdout. */
static dt_status_t copy_body(dt_conn_t *c, unsigned long long n, int timeout_ms,
                             unsigned long long *total) {
  char buf[16384];
  while (n > 0) {
    size_t got, want = n < sizeof(buf) ? (size_t)n : sizeof(buf);
    dt_status_t st = dt_conn_read(c, buf, want, &got, timeout_ms);
    if (st != DT_OK) {
      return st == DT_EOF ? DT_EUNEXPECTEDEOF : st;
    }
    fwrite(buf, 1, got, stdout);
    n -= got;
    *total += got;
  }
  return DT_OK;
}

static dt_status_t read_chunked(dt_conn_t *c, int timeout_ms,
                                unsigned long long *total) {
  char line[MAX_LINE];
  for (;;) {
    dt_status_t st = read_line(c, line, sizeof(line), timeout_ms);
    if (st != DT_OK) {
      return st;
    }
    /* The size in hex, maybe followed by ";extension". */
    char *end;
    unsigned long long size = strtoull(line, &end, 16);
    if (end == line || end - line > 15 || (*end != '\0' && *end != ';')) {
      return DT_EBADREPLY;
    }
    if (size == 0) {
      break;
    }
    st = copy_body(c, size, timeout_ms, total);
    if (st == DT_OK) {
      st = read_line(c, line, sizeof(line), timeout_ms);
    }
    if (st != DT_OK) {
      return st;
    }
    if (line[0] != '\0') {
      return DT_EBADREPLY;
    }
  }
  /* Trailer fields, up to the empty line. */
  for (int i = 0; i < MAX_HEADERS; i++) {
    dt_status_t st = read_line(c, line, sizeof(line), timeout_ms);
    if (st != DT_OK || line[0] == '\0') {
      return st;
    }
  }
  return DT_ETOOBIG;
}

/* Sends the request and reads the response on c. *reusable says whether
 * the connection may carry the next request: only when the body's end was
 * known and the server keeps the connection open. */
static dt_status_t get(dt_conn_t *c, const url_t *u, int timeout_ms,
                       response_t *resp, unsigned long long *total,
                       bool *reusable) {
  char req[MAX_LINE];
  int len = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "User-Agent: dialtone-http_get/%s\r\n"
                     "Accept: */*\r\n"
                     "\r\n",
                     u->path, u->authority, dt_version());
  *reusable = false;
  *total = 0;
  if (len < 0 || (size_t)len >= sizeof(req)) {
    return DT_ETOOBIG;
  }
  dt_status_t st = dt_conn_write(c, req, (size_t)len, timeout_ms);
  if (st == DT_OK) {
    st = dt_flush(c, timeout_ms);
  }
  if (st == DT_OK) {
    st = read_head(c, timeout_ms, resp);
  }
  if (st != DT_OK) {
    return st;
  }
  if (resp->status == 204 || resp->status == 304) {
    *reusable = resp->keep_alive;
  } else if (resp->chunked) {
    st = read_chunked(c, timeout_ms, total);
    *reusable = st == DT_OK && resp->keep_alive;
  } else if (resp->has_length) {
    st = copy_body(c, resp->length, timeout_ms, total);
    *reusable = st == DT_OK && resp->keep_alive;
  } else {
    /* No length: the body ends when the server closes the connection. */
    st = copy_body(c, ~0ull, timeout_ms, total);
    if (st == DT_EUNEXPECTEDEOF) {
      st = DT_OK;
    }
  }
  fflush(stdout);
  return st;
}

int main(int argc, char **argv) {
  dt_resolver_opts_t ropts;
  dt_resolver_opts_init(&ropts);
  long count = 1;
  int timeout_ms = 10000;
  int opt;
  while ((opt = getopt(argc, argv, "r:n:t:")) != -1) {
    switch (opt) {
    case 'r':
      ropts.resolv_conf = optarg;
      break;
    case 'n':
      count = strtol(optarg, NULL, 10);
      break;
    case 't':
      timeout_ms = atoi(optarg);
      break;
    default:
      usage();
      return 1;
    }
  }
  url_t u;
  if (argc - optind != 1 || count < 1 || timeout_ms < 0) {
    usage();
    return 1;
  }
  if (!parse_url(argv[optind], &u)) {
    fprintf(stderr,
            "http_get: %s: not an http:// URL this example "
            "handles\n",
            argv[optind]);
    return 1;
  }

  dt_resolver_t *r = NULL;
  dt_dialer_t *d = NULL;
  dt_pool_t *pool = NULL;
  dt_status_t st = dt_resolver_new(&ropts, &r);
  if (st == DT_OK) {
    dt_dial_opts_t dopts;
    dt_dial_opts_init(&dopts);
    dopts.resolver = r;
    st = dt_dialer_new(&dopts, &d);
  }
  if (st == DT_OK) {
    dt_pool_opts_t popts;
    dt_pool_opts_init(&popts);
    popts.dialer = d;
    st = dt_pool_new(&popts, &pool);
  }
  if (st != DT_OK) {
    fprintf(stderr, "http_get: cannot set up: %s (%s)\n", dt_strerror(st),
            dt_status_name(st));
    dt_dialer_free(d);
    dt_resolver_free(r);
    return 2;
  }

  int rc = 0;
  for (long i = 0; i < count && rc != 2; i++) {
    response_t resp;
    unsigned long long total = 0;
    bool reusable = false;
    dt_pool_conn_info_t info;
    /* A kept connection the server has closed meanwhile fails before the
     * first byte of the response (DT_ESTALECONN): GET is idempotent, so
     * it is sent again once, on a new connection. */
    for (int attempt = 0; attempt < 2; attempt++) {
      dt_conn_t *c;
      st = dt_pool_acquire(pool, u.host, u.port, timeout_ms, &c);
      if (st != DT_OK) {
        break;
      }
      dt_pool_conn_get_info(c, &info);
      st = get(c, &u, timeout_ms, &resp, &total, &reusable);
      dt_pool_release(pool, c, st == DT_OK && reusable);
      if (st != DT_ESTALECONN) {
        break;
      }
    }
    if (st != DT_OK) {
      fprintf(stderr, "http_get: GET %s: %s (%s)\n", argv[optind],
              dt_strerror(st), dt_status_name(st));
      rc = 2;
      break;
    }
    char peer[DT_SOCKADDR_STRLEN];
    dt_sockaddr_tostr((const struct sockaddr *)&info.peer, info.peerlen, peer,
                      sizeof(peer));
    fprintf(stderr,
            "http_get: GET %s: %d %s, %llu bytes, %s connection to %s "
            "(use %lu)%s\n",
            argv[optind], resp.status, resp.reason, total,
            info.reused ? "reused" : "new", peer, (unsigned long)info.uses,
            reusable ? "" : ", closed");
    if (resp.status >= 400) {
      rc = 3;
    }
  }
  dt_pool_stats_t ps;
  dt_pool_get_stats(pool, &ps);
  fprintf(stderr, "http_get: %lu connection%s dialed, %lu reused\n",
          (unsigned long)ps.dials, ps.dials == 1 ? "" : "s",
          (unsigned long)ps.reuses);
  dt_pool_free(pool);
  dt_dialer_free(d);
  dt_resolver_free(r);
  return rc;
}
