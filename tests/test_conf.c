#include "config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "conf.h"

/* ---- fixtures ----------------------------------------------------------- */

/* Every file a test writes lives in one mkdtemp directory, removed at the
 * end: the machine's own /etc files are never read. */
static char tmpdir[64];
static char paths[16][128];
static size_t npaths;

static int setup_dir(void **state) {
  (void)state;
  strcpy(tmpdir, "/tmp/dt-conf-XXXXXX");
  return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int remove_dir(void **state) {
  (void)state;
  for (size_t i = 0; i < npaths; i++) {
    chmod(paths[i], 0700);
    if (unlink(paths[i]) != 0) {
      rmdir(paths[i]);
    }
  }
  return rmdir(tmpdir);
}

static const char *tmp_path(const char *name) {
  assert_true(npaths < sizeof(paths) / sizeof(paths[0]));
  snprintf(paths[npaths], sizeof(paths[0]), "%s/%s", tmpdir, name);
  return paths[npaths++];
}

static const char *write_file(const char *name, const char *data, size_t len) {
  const char *path = tmp_path(name);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
  return path;
}

/* A sparse file of the given size, cheap even at 64 MiB. */
static const char *sized_file(const char *name, off_t size) {
  const char *path = tmp_path(name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(ftruncate(fd, size), 0);
  close(fd);
  return path;
}

/* An allocator that knows how many blocks are live, so a failed call can
 * be shown to have released everything it took. */
static long live_blocks;

static void *count_malloc(size_t n) {
  void *p = malloc(n);
  if (p != NULL) {
    live_blocks++;
  }
  return p;
}

static void *count_realloc(void *old, size_t n) {
  void *p = realloc(old, n);
  if (p != NULL && old == NULL) {
    live_blocks++;
  }
  return p;
}

static void count_free(void *p) {
  if (p != NULL) {
    live_blocks--;
  }
  free(p);
}

static const dt_allocator_t counting = {count_malloc, count_realloc,
                                        count_free};

/* ---- resolv.conf -------------------------------------------------------- */

static void put(char *buf, size_t size, const char *fmt, ...) {
  size_t used = strlen(buf);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + used, size - used, fmt, ap);
  va_end(ap);
}

/* The whole parse result as one line, so that a table entry states all of
 * it and a failure shows everything that differs. */
static void describe_conf(const dt_resolv_conf_t *c, char *buf, size_t size) {
  buf[0] = '\0';
  put(buf, size, "ns");
  for (size_t i = 0; i < c->nservers; i++) {
    char a[INET6_ADDRSTRLEN];
    const struct sockaddr_storage *ss = &c->servers[i];
    if (ss->ss_family == AF_INET) {
      const struct sockaddr_in *sin = (const void *)ss;
      inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
      put(buf, size, " %s:%u", a, ntohs(sin->sin_port));
    } else {
      const struct sockaddr_in6 *sin6 = (const void *)ss;
      inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a));
      put(buf, size, " [%s", a);
      if (sin6->sin6_scope_id != 0) {
        put(buf, size, "%%%u", (unsigned)sin6->sin6_scope_id);
      }
      put(buf, size, "]:%u", ntohs(sin6->sin6_port));
    }
  }
  put(buf, size, "; search");
  for (size_t i = 0; i < c->nsearch; i++) {
    put(buf, size, " %s", c->search[i]);
  }
  put(buf, size, "; ndots %d timeout %d attempts %d%s%s; set", c->ndots,
      c->timeout_ms, c->attempts, c->rotate ? " rotate" : "",
      c->edns0 ? " edns0" : "");
  static const char *const bits[] = {"ndots",  "timeout", "attempts",
                                     "rotate", "edns0",   "search"};
  for (size_t i = 0; i < 6; i++) {
    if (c->set & (1u << i)) {
      put(buf, size, " %s", bits[i]);
    }
  }
  put(buf, size, "; ignored %zu", c->lines_ignored);
}

#define DEFAULT_OPTS "ndots 1 timeout 5000 attempts 2; set"

struct resolv_case {
  const char *what;
  const char *text;
  size_t len; /* 0: strlen(text) */
  const char *want;
};

/* Lines just over and just at DT_CONF_MAX_LINE, built at run time. */
static char long_ok[DT_CONF_MAX_LINE + 2];
static char long_bad[DT_CONF_MAX_LINE + 3];

static void make_long_lines(const char *head) {
  size_t n = strlen(head);
  memset(long_ok, ' ', DT_CONF_MAX_LINE);
  memcpy(long_ok, head, n);
  long_ok[DT_CONF_MAX_LINE] = '\n';
  long_ok[DT_CONF_MAX_LINE + 1] = '\0';
  memset(long_bad, ' ', DT_CONF_MAX_LINE + 1);
  memcpy(long_bad, head, n);
  long_bad[DT_CONF_MAX_LINE + 1] = '\n';
  long_bad[DT_CONF_MAX_LINE + 2] = '\0';
}

static const struct resolv_case resolv_cases[] = {
    {"empty", "", 0, "ns; search; " DEFAULT_OPTS "; ignored 0"},
    {"typical",
     "nameserver 192.0.2.1\nnameserver 2001:db8::53\n"
     "search Example.COM. b.example\n"
     "options ndots:2 timeout:3 attempts:4 rotate edns0\n",
     0,
     "ns 192.0.2.1:53 [2001:db8::53]:53; search example.com b.example; "
     "ndots 2 timeout 3000 attempts 4 rotate edns0; "
     "set ndots timeout attempts rotate edns0 search; ignored 0"},
    {"comments and blanks",
     "# a comment\n; another\n\n   \n\t\r\n"
     "nameserver 192.0.2.1 # after\n"
     "nameserver 192.0.2.2;after\n"
     "search a.example # b.example\n",
     0,
     "ns 192.0.2.1:53 192.0.2.2:53; search a.example; " DEFAULT_OPTS
     " search; ignored 0"},
    {"garbage",
     "garbage\nnameserver\nnameserver not-an-ip\nnameserver 192.0.2.300\n"
     "sortlist 192.0.2.0/24\nNAMESERVER 192.0.2.9\nnameserver192.0.2.8\n"
     "options\n\x01\xff\n"
     "nameserver 192.0.2.2 trailing words\n",
     0, "ns 192.0.2.2:53; search; " DEFAULT_OPTS "; ignored 9"},
    {"crlf and no final newline",
     "nameserver 192.0.2.1\r\nsearch example.com\r\nnameserver ::1", 0,
     "ns 192.0.2.1:53 [::1]:53; search example.com; " DEFAULT_OPTS
     " search; ignored 0"},
    {"nul byte ignores its line",
     "nameserver 192.0.2.1\0junk\nnameserver 192.0.2.2\n"
     "search a.example\0\n\0\n",
     sizeof("nameserver 192.0.2.1\0junk\nnameserver 192.0.2.2\n"
            "search a.example\0\n\0\n") -
         1,
     "ns 192.0.2.2:53; search; " DEFAULT_OPTS "; ignored 3"},
    {"ports", /* OpenBSD's "[address]:port" */
     "nameserver [127.0.0.1]:5353\nnameserver [::1]:53000\n"
     "nameserver [::1]\nnameserver [::1]:0\nnameserver [::1]:65536\n"
     "nameserver [::1\nnameserver [::1]x\nnameserver [::1]:\n"
     "nameserver ::1]:5\nnameserver [127.0.0.1]:-1\n",
     0,
     "ns 127.0.0.1:5353 [::1]:53000 [::1]:53; search; " DEFAULT_OPTS
     "; ignored 7"},
    {"scopes",
     "nameserver fe80::1%3\nnameserver fe80::2%no-such-if0\n"
     "nameserver 192.0.2.1%3\nnameserver [fe80::3%4]:54\n"
     "nameserver fe80::4%\n",
     0,
     "ns [fe80::1%3]:53 [fe80::3%4]:54; search; " DEFAULT_OPTS "; ignored 3"},
    {"too many servers",
     "nameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\n"
     "nameserver 192.0.2.4\nnameserver 192.0.2.5\nnameserver 192.0.2.6\n"
     "nameserver 192.0.2.7\nnameserver 192.0.2.8\nnameserver 192.0.2.9\n"
     "nameserver 192.0.2.10\n",
     0,
     "ns 192.0.2.1:53 192.0.2.2:53 192.0.2.3:53 192.0.2.4:53 192.0.2.5:53 "
     "192.0.2.6:53 192.0.2.7:53 192.0.2.8:53; search; " DEFAULT_OPTS
     "; ignored 2"},
    {"option caps", "options ndots:99 timeout:99 attempts:99\n", 0,
     "ns; search; ndots 15 timeout 30000 attempts 5; "
     "set ndots timeout attempts; ignored 0"},
    {"option floors", "options ndots:0 timeout:0 attempts:0\n", 0,
     "ns; search; ndots 0 timeout 1000 attempts 1; "
     "set ndots timeout attempts; ignored 0"},
    {"huge option values",
     "options ndots:99999999999999999999999 "
     "timeout:4294967296 attempts:18446744073709551617\n",
     0,
     "ns; search; ndots 15 timeout 30000 attempts 5; "
     "set ndots timeout attempts; ignored 0"},
    {"malformed and unknown options",
     "options ndots:-1 ndots:x ndots: ndots timeout:2s attempts:+2 "
     "rotate:1 inet6 single-request trust-ad ndots:3:4\n",
     0, "ns; search; " DEFAULT_OPTS "; ignored 0"},
    {"options accumulate, last value wins",
     "options ndots:3\noptions rotate\noptions ndots:4 timeout:1\n", 0,
     "ns; search; ndots 4 timeout 1000 attempts 2 rotate; "
     "set ndots timeout rotate; ignored 0"},
    {"domain after search wins",
     "search a.example b.example\ndomain C.Example\n", 0,
     "ns; search c.example; " DEFAULT_OPTS " search; ignored 0"},
    {"search after domain wins",
     "domain c.example\nsearch a.example b.example\n", 0,
     "ns; search a.example b.example; " DEFAULT_OPTS " search; ignored 0"},
    {"domain reads its first field", "domain c.example d.example\n", 0,
     "ns; search c.example; " DEFAULT_OPTS " search; ignored 0"},
    {"invalid search names",
     "search a..b good.example .bad\nsearch\ndomain a..b\nsearch ..\n", 0,
     "ns; search good.example; " DEFAULT_OPTS " search; ignored 4"},
    {"a bad search line keeps the previous list",
     "search a.example\nsearch x..y\n", 0,
     "ns; search a.example; " DEFAULT_OPTS " search; ignored 1"},
    {"search list limit", "search a b c d e f g h i j\n", 0,
     "ns; search a b c d e f g h; " DEFAULT_OPTS " search; ignored 1"},
    {"root search domain", "search .\n", 0,
     "ns; search .; " DEFAULT_OPTS " search; ignored 0"},
};

static void test_resolv_parse_table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(resolv_cases) / sizeof(resolv_cases[0]); i++) {
    const struct resolv_case *c = &resolv_cases[i];
    dt_resolv_conf_t conf;
    char got[2048];
    memset(&conf, 0xa5, sizeof(conf));
    size_t len = c->len != 0 ? c->len : strlen(c->text);
    assert_int_equal(dt__resolv_conf_parse(c->text, len, &conf), DT_OK);
    describe_conf(&conf, got, sizeof(got));
    if (strcmp(got, c->want) != 0) {
      fail_msg("%s:\n got  %s\n want %s", c->what, got, c->want);
    }
  }
}

static void test_resolv_long_lines(void **state) {
  (void)state;
  dt_resolv_conf_t conf;
  char got[1024];

  /* A line of exactly DT_CONF_MAX_LINE bytes is read; one more and it is
   * ignored whole, not cut. */
  make_long_lines("nameserver 192.0.2.1");
  assert_int_equal(dt__resolv_conf_parse(long_ok, strlen(long_ok), &conf),
                   DT_OK);
  describe_conf(&conf, got, sizeof(got));
  assert_string_equal(got,
                      "ns 192.0.2.1:53; search; " DEFAULT_OPTS "; ignored 0");
  assert_int_equal(dt__resolv_conf_parse(long_bad, strlen(long_bad), &conf),
                   DT_OK);
  describe_conf(&conf, got, sizeof(got));
  assert_string_equal(got, "ns; search; " DEFAULT_OPTS "; ignored 1");

  /* The same without a final newline. */
  assert_int_equal(dt__resolv_conf_parse(long_bad, strlen(long_bad) - 1, &conf),
                   DT_OK);
  assert_int_equal(conf.nservers, 0);
  assert_int_equal(conf.lines_ignored, 1);
}

static void test_resolv_named_scope(void **state) {
  (void)state;
  unsigned lo = if_nametoindex("lo");
  if (lo == 0) {
    skip();
  }
  dt_resolv_conf_t conf;
  const char *text = "nameserver fe80::53%lo\n";
  assert_int_equal(dt__resolv_conf_parse(text, strlen(text), &conf), DT_OK);
  assert_int_equal(conf.nservers, 1);
  const struct sockaddr_in6 *sin6 = (const void *)&conf.servers[0];
  assert_int_equal(sin6->sin6_family, AF_INET6);
  assert_int_equal(sin6->sin6_scope_id, lo);
}

static void test_resolv_parse_args(void **state) {
  (void)state;
  dt_resolv_conf_t conf;
  assert_int_equal(dt__resolv_conf_parse(NULL, 0, &conf), DT_EINVAL);
  assert_int_equal(dt__resolv_conf_parse("", 0, NULL), DT_EINVAL);
  /* len, not a NUL, ends the text. */
  assert_int_equal(dt__resolv_conf_parse("nameserver 192.0.2.1x", 20, &conf),
                   DT_OK);
  assert_int_equal(conf.nservers, 1);
}

static void test_resolv_defaults(void **state) {
  (void)state;
  dt_resolv_conf_t conf;
  char got[1024];
  memset(&conf, 0xa5, sizeof(conf));
  dt__resolv_conf_defaults(&conf);
  describe_conf(&conf, got, sizeof(got));
  assert_string_equal(got, "ns; search; " DEFAULT_OPTS "; ignored 0");
}

static void load_and_describe(const char *path, dt_status_t want_st,
                              const char *want) {
  dt_resolv_conf_t conf;
  char got[1024];
  memset(&conf, 0xa5, sizeof(conf));
  dt_status_t st = dt__resolv_conf_load(path, &conf);
  if (st != want_st) {
    fail_msg("%s: got %s, want %s", path, dt_status_name(st),
             dt_status_name(want_st));
  }
  if (want == NULL) {
    /* Nothing written on failure. */
    assert_int_equal(conf.nservers, (size_t)0xa5a5a5a5a5a5a5a5u);
    return;
  }
  describe_conf(&conf, got, sizeof(got));
  if (strcmp(got, want) != 0) {
    fail_msg("%s:\n got  %s\n want %s", path, got, want);
  }
}

#define FALLBACK "ns 127.0.0.1:53 [::1]:53; "

static void test_resolv_load(void **state) {
  (void)state;
  const char *text = "nameserver 192.0.2.1\nsearch example.com\n";

  load_and_describe(write_file("resolv.conf", text, strlen(text)), DT_OK,
                    "ns 192.0.2.1:53; search example.com; " DEFAULT_OPTS
                    " search; ignored 0");
  /* Missing file or no usable server: glibc's local fallback. */
  load_and_describe(tmp_path("no-such-resolv.conf"), DT_OK,
                    FALLBACK "search; " DEFAULT_OPTS "; ignored 0");
  load_and_describe(tmp_path("no-such-dir/resolv.conf"), DT_OK,
                    FALLBACK "search; " DEFAULT_OPTS "; ignored 0");
  text = "nameserver bogus\nsearch example.com\noptions ndots:3\n";
  load_and_describe(write_file("noservers.conf", text, strlen(text)), DT_OK,
                    FALLBACK "search example.com; ndots 3 timeout 5000 "
                             "attempts 2; set ndots search; ignored 1");
  load_and_describe(write_file("empty.conf", "", 0), DT_OK,
                    FALLBACK "search; " DEFAULT_OPTS "; ignored 0");

  /* Size limits: by fstat for regular files... */
  load_and_describe(sized_file("big.conf", DT_CONF_RESOLV_MAX_BYTES + 1),
                    DT_ETOOBIG, NULL);
  load_and_describe(sized_file("max.conf", DT_CONF_RESOLV_MAX_BYTES), DT_OK,
                    FALLBACK "search; " DEFAULT_OPTS "; ignored 1");
  /* ...and by counting for files whose size says nothing. */
  if (access("/dev/zero", R_OK) == 0) {
    load_and_describe("/dev/zero", DT_ETOOBIG, NULL);
  }

  /* A directory cannot be read. */
  const char *dir = tmp_path("adir");
  assert_int_equal(mkdir(dir, 0700), 0);
  load_and_describe(dir, DT_ESYS, NULL);

  /* Permission is not checked for root, who reads anything. */
  const char *locked = write_file("locked.conf", text, strlen(text));
  assert_int_equal(chmod(locked, 0), 0);
  if (geteuid() != 0) {
    load_and_describe(locked, DT_EACCES, NULL);
  }

  dt_resolv_conf_t conf;
  assert_int_equal(dt__resolv_conf_load(NULL, &conf), DT_EINVAL);
  assert_int_equal(dt__resolv_conf_load("x", NULL), DT_EINVAL);
}

static void test_resolv_load_oom(void **state) {
  (void)state;
  const char *text = "nameserver 192.0.2.1\n";
  const char *path = write_file("oom.conf", text, strlen(text));
  assert_int_equal(dt_set_allocator(&counting), DT_OK);
  for (uint64_t n = 1;; n++) {
    dt_resolv_conf_t conf;
    conf.nservers = 99;
    dt__alloc_fail_at(n);
    dt_status_t st = dt__resolv_conf_load(path, &conf);
    dt__alloc_fail_at(0);
    assert_int_equal(live_blocks, 0);
    if (st == DT_OK) {
      assert_int_equal(conf.nservers, 1);
      break;
    }
    assert_int_equal(st, DT_ENOMEM);
    assert_int_equal(conf.nservers, 99);
  }
  /* Reading a file whose size is unknown grows the buffer: fail each
   * step of that too. */
  if (access("/dev/zero", R_OK) == 0) {
    for (uint64_t n = 1; n < 12; n++) {
      dt_resolv_conf_t conf;
      dt__alloc_fail_at(n);
      dt_status_t st = dt__resolv_conf_load("/dev/zero", &conf);
      dt__alloc_fail_at(0);
      assert_int_equal(live_blocks, 0);
      assert_true(st == DT_ENOMEM || st == DT_ETOOBIG);
    }
  }
  assert_int_equal(dt_set_allocator(NULL), DT_OK);
  dt__alloc_reset_counts();
}

/* ---- hosts -------------------------------------------------------------- */

/* Addresses found for a name, then "=canon", or "-" when nothing. */
static void describe_lookup(const dt_hosts_t *h, const char *name, int family,
                            char *buf, size_t size) {
  dt_hosts_addr_t addrs[8];
  const char *canon = "unset";
  size_t n = dt__hosts_lookup(h, name, family, addrs, 8, &canon);
  buf[0] = '\0';
  for (size_t i = 0; i < n && i < 8; i++) {
    char a[INET6_ADDRSTRLEN];
    inet_ntop(addrs[i].family, &addrs[i].addr, a, sizeof(a));
    put(buf, size, "%s ", a);
  }
  if (canon == NULL) {
    put(buf, size, "-");
  } else {
    put(buf, size, "=%s", canon);
  }
}

struct lookup {
  const char *name;
  int family;
  const char *want;
};

struct hosts_case {
  const char *what;
  const char *text;
  size_t len; /* 0: strlen(text) */
  size_t ignored;
  struct lookup lookups[8];
};

static const struct hosts_case hosts_cases[] = {
    {"empty", "", 0, 0, {{"localhost", AF_UNSPEC, "-"}}},
    {"aliases and both families",
     "192.0.2.1 Host.Example host alias\n"
     "2001:db8::1\thost.example\n",
     0,
     0,
     {{"host.example", AF_UNSPEC, "192.0.2.1 2001:db8::1 =host.example"},
      {"host.example", AF_INET, "192.0.2.1 =host.example"},
      {"host.example", AF_INET6, "2001:db8::1 =host.example"},
      {"ALIAS.", AF_UNSPEC, "192.0.2.1 =host.example"},
      {"Host", AF_UNSPEC, "192.0.2.1 =host.example"},
      {"host", AF_INET6, "=host.example"},
      {"other", AF_UNSPEC, "-"}}},
    {"case and trailing dots",
     "192.0.2.1 MiXeD.Example.\n",
     0,
     0,
     {{"mixed.example", AF_UNSPEC, "192.0.2.1 =mixed.example"},
      {"MIXED.EXAMPLE.", AF_INET, "192.0.2.1 =mixed.example"},
      {"Mixed.Example", AF_UNSPEC, "192.0.2.1 =mixed.example"},
      {"mixed.example..", AF_UNSPEC, "-"},
      {"mixed", AF_UNSPEC, "-"},
      {"", AF_UNSPEC, "-"}}},
    {"comments",
     "# 192.0.2.9 commented\n"
     "192.0.2.1 a # b c\n"
     "   # indented comment\n"
     "192.0.2.2 c#d\n"
     "#192.0.2.3 e\n",
     0,
     0,
     {{"a", AF_UNSPEC, "192.0.2.1 =a"},
      {"b", AF_UNSPEC, "-"},
      {"c", AF_UNSPEC, "192.0.2.2 =c"},
      {"d", AF_UNSPEC, "-"},
      {"e", AF_UNSPEC, "-"},
      {"commented", AF_UNSPEC, "-"}}},
    {"bad addresses",
     "192.0.2.300 bad\nnot-an-ip x\n192.0.2 y\nfe80::1%lo z\n"
     "2001:db8::1::2 w\n192.0.2.1\n192.0.2.5 good\n",
     0,
     6,
     {{"good", AF_UNSPEC, "192.0.2.5 =good"},
      {"bad", AF_UNSPEC, "-"},
      {"x", AF_UNSPEC, "-"},
      {"y", AF_UNSPEC, "-"},
      {"z", AF_UNSPEC, "-"},
      {"w", AF_UNSPEC, "-"}}},
    {"bad names",
     "192.0.2.1 a..b first also\n"
     "192.0.2.2 .bad a\\\n",
     0,
     2,
     {{"first", AF_UNSPEC, "192.0.2.1 =first"},
      {"also", AF_UNSPEC, "192.0.2.1 =first"},
      {"a..b", AF_UNSPEC, "-"}}},
    {"nul bytes",
     "192.0.2.1 a\0b\n192.0.2.2 c\n\0\n192.0.2.3 d",
     sizeof("192.0.2.1 a\0b\n192.0.2.2 c\n\0\n192.0.2.3 d") - 1,
     2,
     {{"a", AF_UNSPEC, "-"},
      {"b", AF_UNSPEC, "-"},
      {"c", AF_UNSPEC, "192.0.2.2 =c"},
      {"d", AF_UNSPEC, "192.0.2.3 =d"}}},
    {"one name on several lines",
     "192.0.2.1 multi\n"
     "192.0.2.2 other multi\n"
     "::1 multi multi\n"
     "::1 multi\n"
     "192.0.2.3 multi\n",
     0,
     0,
     {{"multi", AF_UNSPEC, "192.0.2.1 192.0.2.2 ::1 192.0.2.3 =multi"},
      {"multi", AF_INET, "192.0.2.1 192.0.2.2 192.0.2.3 =multi"},
      {"multi", AF_INET6, "::1 =multi"},
      {"other", AF_UNSPEC, "192.0.2.2 =other"}}},
    {"canonical name of the first line",
     "192.0.2.1 a b\n192.0.2.2 b c\n",
     0,
     0,
     {{"b", AF_UNSPEC, "192.0.2.1 192.0.2.2 =a"},
      {"c", AF_UNSPEC, "192.0.2.2 =b"}}},
    {"crlf, tabs, mapped addresses",
     "192.0.2.1\t\tcrlf\r\n::ffff:192.0.2.7 mapped\r\n",
     0,
     0,
     {{"crlf", AF_UNSPEC, "192.0.2.1 =crlf"},
      {"mapped", AF_INET, "=mapped"},
      {"mapped", AF_INET6, "::ffff:192.0.2.7 =mapped"}}},
    {"escapes in names",
     "192.0.2.1 a\\046b\n",
     0,
     0,
     {{"a\\.b", AF_UNSPEC, "192.0.2.1 =a\\.b"},
      {"A\\046B.", AF_UNSPEC, "192.0.2.1 =a\\.b"},
      {"a.b", AF_UNSPEC, "-"}}},
};

static void check_hosts(const dt_hosts_t *h, const struct hosts_case *c) {
  if (dt__hosts_lines_ignored(h) != c->ignored) {
    fail_msg("%s: ignored %zu, want %zu", c->what, dt__hosts_lines_ignored(h),
             c->ignored);
  }
  for (size_t j = 0; j < 8 && c->lookups[j].name != NULL; j++) {
    const struct lookup *l = &c->lookups[j];
    char got[512];
    describe_lookup(h, l->name, l->family, got, sizeof(got));
    if (strcmp(got, l->want) != 0) {
      fail_msg("%s: lookup \"%s\" family %d:\n got  %s\n want %s", c->what,
               l->name, l->family, got, l->want);
    }
  }
}

static void test_hosts_parse_table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(hosts_cases) / sizeof(hosts_cases[0]); i++) {
    const struct hosts_case *c = &hosts_cases[i];
    dt_hosts_t *h = NULL;
    size_t len = c->len != 0 ? c->len : strlen(c->text);
    assert_int_equal(dt__hosts_parse(c->text, len, &h), DT_OK);
    assert_non_null(h);
    check_hosts(h, c);
    dt__hosts_free(h);
  }
}

static void test_hosts_long_lines(void **state) {
  (void)state;
  dt_hosts_t *h = NULL;
  make_long_lines("192.0.2.1 long");
  assert_int_equal(dt__hosts_parse(long_ok, strlen(long_ok), &h), DT_OK);
  assert_int_equal(dt__hosts_lookup(h, "long", AF_UNSPEC, NULL, 0, NULL), 1);
  assert_int_equal(dt__hosts_lines_ignored(h), 0);
  dt__hosts_free(h);
  assert_int_equal(dt__hosts_parse(long_bad, strlen(long_bad), &h), DT_OK);
  assert_int_equal(dt__hosts_lookup(h, "long", AF_UNSPEC, NULL, 0, NULL), 0);
  assert_int_equal(dt__hosts_lines_ignored(h), 1);
  dt__hosts_free(h);

  /* A name longer than any valid name, on a line of legal length. */
  char line[2100];
  strcpy(line, "192.0.2.1 ");
  memset(line + 10, 'a', 2000);
  strcpy(line + 2010, " short\n");
  assert_int_equal(dt__hosts_parse(line, strlen(line), &h), DT_OK);
  assert_int_equal(dt__hosts_lines_ignored(h), 1);
  assert_int_equal(dt__hosts_lookup(h, "short", AF_UNSPEC, NULL, 0, NULL), 1);
  dt__hosts_free(h);
}

static void test_hosts_lookup_limits(void **state) {
  (void)state;
  const char *text = "192.0.2.1 n\n192.0.2.2 n\n2001:db8::3 n\n";
  dt_hosts_t *h = NULL;
  assert_int_equal(dt__hosts_parse(text, strlen(text), &h), DT_OK);

  /* More found than room: the count says so, only max are written. */
  dt_hosts_addr_t addrs[2];
  memset(addrs, 0, sizeof(addrs));
  const char *canon = NULL;
  assert_int_equal(dt__hosts_lookup(h, "n", AF_UNSPEC, addrs, 1, &canon), 3);
  assert_int_equal(addrs[0].family, AF_INET);
  assert_memory_equal(addrs[0].addr.v4, "\xc0\x00\x02\x01", 4);
  assert_int_equal(addrs[1].family, 0);
  assert_string_equal(canon, "n");
  assert_int_equal(dt__hosts_lookup(h, "n", AF_INET6, NULL, 0, NULL), 1);
  assert_int_equal(dt__hosts_lookup(h, "n", AF_INET, addrs, 2, NULL), 2);
  assert_memory_equal(addrs[1].addr.v4, "\xc0\x00\x02\x02", 4);

  /* Lookups allocate nothing. */
  dt__alloc_reset_counts();
  assert_int_equal(dt__hosts_lookup(h, "N.", AF_UNSPEC, addrs, 2, &canon), 3);
  assert_int_equal(dt__hosts_lookup(h, "none", AF_UNSPEC, addrs, 2, &canon), 0);
  assert_int_equal(dt__alloc_count(), 0);

  assert_int_equal(dt__hosts_lookup(NULL, "n", AF_UNSPEC, addrs, 2, NULL), 0);
  assert_int_equal(dt__hosts_lookup(h, NULL, AF_UNSPEC, addrs, 2, NULL), 0);
  dt__hosts_free(h);
  dt__hosts_free(NULL);
  assert_int_equal(dt__hosts_lines_ignored(NULL), 0);
  assert_int_equal(dt__hosts_parse(NULL, 0, &h), DT_EINVAL);
  assert_int_equal(dt__hosts_parse("", 0, NULL), DT_EINVAL);
}

static void test_hosts_load(void **state) {
  (void)state;
  const char *text = "127.0.0.1 localhost\n::1 localhost ip6-localhost\n";
  dt_hosts_t *h = NULL;

  assert_int_equal(dt__hosts_load(write_file("hosts", text, strlen(text)), &h),
                   DT_OK);
  assert_int_equal(dt__hosts_lookup(h, "LocalHost", AF_UNSPEC, NULL, 0, NULL),
                   2);
  dt__hosts_free(h);

  /* A missing file is an empty table. */
  h = NULL;
  assert_int_equal(dt__hosts_load(tmp_path("no-such-hosts"), &h), DT_OK);
  assert_non_null(h);
  assert_int_equal(dt__hosts_lookup(h, "localhost", AF_UNSPEC, NULL, 0, NULL),
                   0);
  assert_int_equal(dt__hosts_lines_ignored(h), 0);
  dt__hosts_free(h);

  h = NULL;
  assert_int_equal(
      dt__hosts_load(sized_file("big-hosts", DT_CONF_HOSTS_MAX_BYTES + 1), &h),
      DT_ETOOBIG);
  assert_null(h);
  if (access("/dev/zero", R_OK) == 0) {
    assert_int_equal(dt__hosts_load("/dev/zero", &h), DT_ETOOBIG);
    assert_null(h);
  }
  assert_int_equal(dt__hosts_load(tmpdir, &h), DT_ESYS);
  assert_null(h);
  assert_int_equal(dt__hosts_load(NULL, &h), DT_EINVAL);
  assert_int_equal(dt__hosts_load("x", NULL), DT_EINVAL);
}

/* Enough names that the hash table grows its buckets (uthash expands at
 * ten entries per bucket), and names with several addresses so the
 * address arrays grow too: every allocation the parser makes is failed in
 * turn. */
static char *oom_text(size_t *len) {
  size_t cap = 64 * 1024;
  char *text = malloc(cap);
  assert_non_null(text);
  text[0] = '\0';
  for (int i = 0; i < 600; i++) {
    put(text, cap, "192.0.%d.%d host%d alias%d shared\n", i / 250, i % 250, i,
        i);
    if (i % 7 == 0) {
      put(text, cap, "2001:db8::%x host%d\n", i, i);
    }
  }
  put(text, cap, "bogus line\n");
  *len = strlen(text);
  return text;
}

static void test_hosts_parse_oom(void **state) {
  (void)state;
  size_t len;
  char *text = oom_text(&len);
  uint64_t failures = 0;

  assert_int_equal(dt_set_allocator(&counting), DT_OK);
  for (uint64_t n = 1;; n++) {
    dt_hosts_t *h = (dt_hosts_t *)&failures; /* must stay untouched */
    dt__alloc_fail_at(n);
    dt_status_t st = dt__hosts_parse(text, len, &h);
    dt__alloc_fail_at(0);
    if (st == DT_OK) {
      assert_int_equal(dt__hosts_lookup(h, "shared", AF_UNSPEC, NULL, 0, NULL),
                       600);
      assert_int_equal(dt__hosts_lookup(h, "host7", AF_UNSPEC, NULL, 0, NULL),
                       2);
      assert_int_equal(dt__hosts_lines_ignored(h), 1);
      dt__hosts_free(h);
      assert_int_equal(live_blocks, 0);
      break;
    }
    assert_int_equal(st, DT_ENOMEM);
    assert_ptr_equal(h, (dt_hosts_t *)&failures);
    assert_int_equal(live_blocks, 0);
    failures++;
  }
  /* One entry and a few arrays per name, and a few table growths. */
  assert_true(failures > 1200);
  assert_int_equal(dt_set_allocator(NULL), DT_OK);
  dt__alloc_reset_counts();
  free(text);
}

static void test_hosts_load_oom(void **state) {
  (void)state;
  const char *text = "192.0.2.1 a b\n192.0.2.2 a\n";
  const char *path = write_file("hosts-oom", text, strlen(text));
  assert_int_equal(dt_set_allocator(&counting), DT_OK);
  for (uint64_t n = 1;; n++) {
    dt_hosts_t *h = NULL;
    dt__alloc_fail_at(n);
    dt_status_t st = dt__hosts_load(path, &h);
    dt__alloc_fail_at(0);
    if (st == DT_OK) {
      assert_int_equal(dt__hosts_lookup(h, "a", AF_UNSPEC, NULL, 0, NULL), 2);
      dt__hosts_free(h);
      assert_int_equal(live_blocks, 0);
      break;
    }
    assert_int_equal(st, DT_ENOMEM);
    assert_null(h);
    assert_int_equal(live_blocks, 0);
  }
  /* The empty table of a missing file is an allocation too. */
  dt_hosts_t *h = NULL;
  dt__alloc_fail_at(1);
  assert_int_equal(dt__hosts_load(tmp_path("missing-oom"), &h), DT_ENOMEM);
  dt__alloc_fail_at(0);
  assert_null(h);
  assert_int_equal(live_blocks, 0);
  assert_int_equal(dt_set_allocator(NULL), DT_OK);
  dt__alloc_reset_counts();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_resolv_defaults),
      cmocka_unit_test(test_resolv_parse_table),
      cmocka_unit_test(test_resolv_long_lines),
      cmocka_unit_test(test_resolv_named_scope),
      cmocka_unit_test(test_resolv_parse_args),
      cmocka_unit_test(test_resolv_load),
      cmocka_unit_test(test_resolv_load_oom),
      cmocka_unit_test(test_hosts_parse_table),
      cmocka_unit_test(test_hosts_long_lines),
      cmocka_unit_test(test_hosts_lookup_limits),
      cmocka_unit_test(test_hosts_load),
      cmocka_unit_test(test_hosts_parse_oom),
      cmocka_unit_test(test_hosts_load_oom),
  };
  return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
