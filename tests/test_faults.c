/* Fault injection across the public API: the 1st, 2nd, ... allocation of a
 * call fails in turn, and the descriptor table runs full. Every run must
 * end in a clean status (DT_ENOMEM, DT_EMFILE) or in a success that
 * absorbed the failure (a cache fill is optional), leave nothing behind
 * (the sanitizer and valgrind builds prove the memory; descriptors are
 * counted here), and leave the objects usable. The resolver's query
 * engine without a cache has its own loops in test_resolver; these cover
 * the cache, the configuration files, the dialer and the listeners. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "dialtone.h"
#include "fake/fakedns.h"

static fakedns_t *srv;
static char server[64];
static int listen_fd = -1;
static uint16_t listen_port;
static char dir[64];
static char conf_path[128], hosts_path[128];

static const char *zone[] = {
    "v4.fault.test. 300 IN A 127.0.0.1",
    "www.fault.test. 300 IN A 192.0.2.1",
    "www.fault.test. 300 IN AAAA 2001:db8::1",
    "alias.fault.test. 300 IN CNAME www.fault.test.",
    "fault.test. 300 IN SOA ns.fault.test. a.fault.test. 1 2 3 4 60",
};

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int setup(void **state) {
  (void)state;
  if (fakedns_new(NULL, &srv) != DT_OK) {
    return -1;
  }
  for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]); i++) {
    fakedns_add(srv, zone[i]);
  }
  if (fakedns_start(srv) != DT_OK) {
    return -1;
  }
  snprintf(server, sizeof(server), "127.0.0.1:%u", (unsigned)fakedns_port(srv));
  if (dt_listen(NULL, "127.0.0.1", 0, &listen_fd) != DT_OK ||
      dt_listen_get_port(listen_fd, &listen_port) != DT_OK) {
    return -1;
  }
  snprintf(dir, sizeof(dir), "/tmp/dt-faults-XXXXXX");
  if (mkdtemp(dir) == NULL) {
    return -1;
  }
  char text[256];
  snprintf(conf_path, sizeof(conf_path), "%s/resolv.conf", dir);
  snprintf(text, sizeof(text),
           "nameserver 127.0.0.1\nnameserver ::1\n"
           "search fault.test other.test\n"
           "options ndots:1 timeout:1 attempts:2 rotate edns0\n");
  write_file(conf_path, text);
  snprintf(hosts_path, sizeof(hosts_path), "%s/hosts", dir);
  write_file(hosts_path, "127.0.0.1 localhost\n192.0.2.9 pinned.fault.test "
                         "pinned\n::1 localhost ip6-localhost\n");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  fakedns_free(srv);
  close(listen_fd);
  unlink(conf_path);
  unlink(hosts_path);
  rmdir(dir);
  return 0;
}

static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  if (d == NULL) {
    return -1;
  }
  while (readdir(d) != NULL) {
    n++;
  }
  closedir(d);
  return n;
}

/* ---- allocation failures --------------------------------------------------
 */

typedef struct {
  dt_status_t (*run)(void *ctx);
  void (*release)(void *ctx); /* after DT_OK: free what run made */
  void (*prepare)(void *ctx); /* before each run, may be NULL */
  void *ctx;
} op_t;

/* Fails the 1st, 2nd, ... allocation of op until a run makes fewer
 * allocations than the one that would fail. Returns the runs that ended
 * in DT_ENOMEM; every other run succeeded. */
static unsigned fail_each(const char *what, const op_t *op) {
  unsigned enomem = 0;
  int fds = open_fds();
  for (uint64_t n = 1;; n++) {
    if (op->prepare != NULL) {
      op->prepare(op->ctx);
    }
    dt__alloc_fail_at(n);
    dt_status_t st = op->run(op->ctx);
    bool reached = dt__alloc_count() >= n;
    dt__alloc_reset_counts();
    if (st == DT_OK) {
      op->release(op->ctx);
    } else {
      if (st != DT_ENOMEM) {
        print_error("%s: allocation %llu failed: %s\n", what,
                    (unsigned long long)n, dt_status_name(st));
      }
      assert_int_equal(st, DT_ENOMEM);
      enomem++;
    }
    assert_int_equal(open_fds(), fds);
    if (!reached) {
      assert_int_equal(st, DT_OK); /* nothing failed: it must work */
      break;
    }
    assert_true(n < 2000);
  }
  print_message("%s: %u of its allocations fail it with DT_ENOMEM\n", what,
                enomem);
  return enomem;
}

static dt_resolver_t *make_resolver(bool cache) {
  const char *s[] = {server};
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  o.servers = s;
  o.nservers = 1;
  o.hosts = hosts_path;
  o.cache = cache;
  o.cache_max_entries = 64;
  o.timeout_ms = 1000;
  o.attempts = 2;
  dt_resolver_t *r = NULL;
  assert_int_equal(dt_resolver_new(&o, &r), DT_OK);
  return r;
}

typedef struct {
  dt_resolver_opts_t o;
  dt_resolver_t *r;
  dt_dialer_t *d;
  dt_answer_t *a;
  int fd;
  const char *name;
  uint64_t buf[1024]; /* 8-byte aligned storage for query_into */
} ctx_t;

static dt_status_t run_resolver_new(void *p) {
  ctx_t *c = p;
  return dt_resolver_new(&c->o, &c->r);
}

static void free_resolver(void *p) {
  ctx_t *c = p;
  dt_resolver_free(c->r);
  c->r = NULL;
}

/* Every constructor's path: the files, the search list, the cache. */
static void test_constructors(void **state) {
  (void)state;
  ctx_t c;
  memset(&c, 0, sizeof(c));
  dt_resolver_opts_init(&c.o);
  c.o.resolv_conf = conf_path;
  c.o.hosts = hosts_path;
  c.o.serve_stale = true;
  c.o.prefetch = true;
  op_t op = {run_resolver_new, free_resolver, NULL, &c};
  assert_true(fail_each("dt_resolver_new (files, cache)", &op) > 0);

  const char *s[] = {server};
  const char *search[] = {"fault.test", "other.test"};
  dt_resolver_opts_init(&c.o);
  c.o.servers = s;
  c.o.nservers = 1;
  c.o.search = search;
  c.o.nsearch = 2;
  c.o.hosts = "";
  assert_true(fail_each("dt_resolver_new (servers, search)", &op) > 0);
}

static dt_status_t run_dialer_new(void *p) {
  ctx_t *c = p;
  dt_dial_opts_t o;
  dt_dial_opts_init(&o);
  o.resolver = c->r;
  o.bind_addr = "127.0.0.1";
  return dt_dialer_new(&o, &c->d);
}

static void free_dialer(void *p) {
  ctx_t *c = p;
  dt_dialer_free(c->d);
  c->d = NULL;
}

static dt_status_t run_listen(void *p) {
  ctx_t *c = p;
  dt_listen_opts_t o;
  dt_listen_opts_init(&o);
  o.reuseport = true;
  return dt_listen(&o, "127.0.0.1", 0, &c->fd);
}

static dt_status_t run_listen_unix(void *p) {
  ctx_t *c = p;
  char path[128];
  snprintf(path, sizeof(path), "%s/sock", dir);
  dt_status_t st = dt_listen_unix(NULL, path, &c->fd);
  unlink(path);
  return st;
}

static void close_fd(void *p) {
  ctx_t *c = p;
  close(c->fd);
  c->fd = -1;
}

static void test_dialer_and_listeners(void **state) {
  (void)state;
  ctx_t c;
  memset(&c, 0, sizeof(c));
  c.r = make_resolver(true);
  op_t op = {run_dialer_new, free_dialer, NULL, &c};
  fail_each("dt_dialer_new", &op);
  op_t lis = {run_listen, close_fd, NULL, &c};
  fail_each("dt_listen", &lis);
  op_t lun = {run_listen_unix, close_fd, NULL, &c};
  fail_each("dt_listen_unix", &lun);
  dt_resolver_free(c.r);
}

/* Each run starts from an empty cache, so it takes the whole path: the
 * query, the flight, the parse, the cache fill. */
static void flush(void *p) {
  ctx_t *c = p;
  dt_cache_flush(c->r, NULL);
}

static dt_status_t run_query(void *p) {
  ctx_t *c = p;
  dt_status_t st = dt_resolver_query(c->r, c->name, DT_TYPE_A, 0, -1, &c->a);
  if (st == DT_OK &&
      (c->a->nanswer == 0 ||
       strcmp(c->a->answer[c->a->nanswer - 1].data, "192.0.2.1") != 0)) {
    return DT_EBADREPLY; /* a success must be a right answer */
  }
  return st;
}

static void free_answer(void *p) {
  ctx_t *c = p;
  dt_answer_free(c->a);
  c->a = NULL;
}

static dt_status_t run_query_into(void *p) {
  ctx_t *c = p;
  size_t len = sizeof(c->buf);
  const dt_answer_t *a = NULL;
  dt_status_t st = dt_resolver_query_into(c->r, c->name, DT_TYPE_AAAA, 0, -1,
                                          c->buf, &len, &a);
  if (st == DT_OK &&
      (a->nanswer == 0 || a->answer[a->nanswer - 1].type != DT_TYPE_AAAA)) {
    return DT_EBADREPLY;
  }
  return st;
}

static void nothing(void *p) {
  (void)p;
}

static dt_status_t run_lookup(void *p) {
  ctx_t *c = p;
  dt_addr_t addrs[8];
  size_t n = 0;
  dt_status_t st =
      dt_resolver_lookup_addrs(c->r, c->name, AF_UNSPEC, -1, addrs, 8, &n);
  if (st == DT_OK && n != 2) {
    return DT_EBADREPLY;
  }
  return st;
}

static dt_status_t run_dial(void *p) {
  ctx_t *c = p;
  return dt_dial(c->d, c->name, listen_port, 5000, &c->fd, NULL);
}

static void test_calls(void **state) {
  (void)state;
  ctx_t c;
  memset(&c, 0, sizeof(c));
  for (int cache = 1; cache >= 0; cache--) {
    c.r = make_resolver(cache);
    /* Through a CNAME and the search list ("alias" + "fault.test" is
     * not tried: ndots 1 asks "alias" first only when it has a dot). */
    c.name = "alias.fault.test";
    op_t q = {run_query, free_answer, flush, &c};
    assert_true(fail_each(cache ? "dt_resolver_query (cache)"
                                : "dt_resolver_query (no cache)",
                          &q) > 0);
    op_t qi = {run_query_into, nothing, flush, &c};
    assert_true(fail_each(cache ? "dt_resolver_query_into (cache)"
                                : "dt_resolver_query_into (no cache)",
                          &qi) > 0);
    c.name = "www.fault.test";
    op_t l = {run_lookup, nothing, flush, &c};
    assert_true(fail_each(cache ? "dt_resolver_lookup_addrs (cache)"
                                : "dt_resolver_lookup_addrs (no cache)",
                          &l) > 0);
    dt_dial_opts_t o;
    dt_dial_opts_init(&o);
    o.resolver = c.r;
    assert_int_equal(dt_dialer_new(&o, &c.d), DT_OK);
    c.name = "v4.fault.test";
    op_t d = {run_dial, close_fd, flush, &c};
    assert_true(
        fail_each(cache ? "dt_dial (cache)" : "dt_dial (no cache)", &d) > 0);
    /* The literal path allocates nothing at all. */
    c.name = "127.0.0.1";
    dt__alloc_reset_counts();
    assert_int_equal(run_dial(&c), DT_OK);
    assert_int_equal(dt__alloc_count(), 0);
    close(c.fd);
    dt_dialer_free(c.d);

    /* Still usable: every call works once more, and a cache hit into
     * caller storage allocates nothing. */
    c.name = "alias.fault.test";
    assert_int_equal(run_query(&c), DT_OK);
    free_answer(&c);
    assert_int_equal(run_query_into(&c), DT_OK);
    if (cache) {
      dt__alloc_reset_counts();
      assert_int_equal(run_query_into(&c), DT_OK);
      assert_int_equal(dt__alloc_count(), 0);
    }
    dt_resolver_free(c.r);
  }
}

/* ---- descriptor exhaustion ------------------------------------------------
 */

/* Lowers the soft limit to a little above what is open and fills the
 * table; returns how many descriptors were taken (fds[]). */
static int fill_table(int *fds, int max) {
  int n = 0;
  for (;;) {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      assert_int_equal(errno, EMFILE);
      break;
    }
    assert_true(n < max);
    fds[n++] = fd;
  }
  return n;
}

static void test_descriptors_exhausted(void **state) {
  (void)state;
  struct rlimit saved, rl;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
  int used = open_fds();
  assert_true(used > 0);
  rl = saved;
  rl.rlim_cur = (rlim_t)used + 64;
  if (rl.rlim_cur > saved.rlim_cur) {
    skip();
  }
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);

  dt_resolver_t *r = make_resolver(false);
  dt_dial_opts_t o;
  dt_dial_opts_init(&o);
  o.resolver = r;
  dt_dialer_t *d = NULL;
  assert_int_equal(dt_dialer_new(&o, &d), DT_OK);
  int before = open_fds();

  int fds[128];
  int n = fill_table(fds, 128);
  dt_addr_t addrs[4];
  size_t cnt = 0;
  dt_answer_t *a = NULL;
  int fd = -1;
  dt_dial_report_t rep;
  assert_int_equal(dt_resolver_lookup_addrs(r, "www.fault.test", AF_UNSPEC, -1,
                                            addrs, 4, &cnt),
                   DT_EMFILE);
  assert_int_equal(dt_resolver_query(r, "www.fault.test", DT_TYPE_A, 0, -1, &a),
                   DT_EMFILE);
  assert_int_equal(
      dt_resolver_query(r, "www.fault.test", DT_TYPE_A, DT_QUERY_TCP, -1, &a),
      DT_EMFILE);
  /* A dial to a name fails in its lookup, one to a literal in its attempt;
   * the report says where. */
  assert_int_equal(dt_dial(d, "v4.fault.test", listen_port, 2000, &fd, &rep),
                   DT_EMFILE);
  assert_int_equal(rep.nattempts, 0);
  assert_int_equal(dt_dial(d, "127.0.0.1", listen_port, 2000, &fd, &rep),
                   DT_EMFILE);
  assert_int_equal(rep.nattempts, 1);
  assert_int_equal(rep.attempts[0].status, DT_EMFILE);
  /* The hosts file needs no descriptor once loaded. */
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "pinned", AF_INET, -1, addrs, 4, &cnt),
      DT_OK);

  /* Nothing was left open by the failures, and with room again every
   * call succeeds. */
  for (int i = 0; i < n; i++) {
    close(fds[i]);
  }
  assert_int_equal(open_fds(), before);
  assert_int_equal(dt_resolver_lookup_addrs(r, "www.fault.test", AF_UNSPEC, -1,
                                            addrs, 4, &cnt),
                   DT_OK);
  assert_int_equal(cnt, 2);
  assert_int_equal(dt_resolver_query(r, "www.fault.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  dt_answer_free(a);
  assert_int_equal(dt_dial(d, "v4.fault.test", listen_port, 2000, &fd, NULL),
                   DT_OK);
  close(fd);
  assert_int_equal(open_fds(), before);

  /* One descriptor short of a lookup's two questions' needs (one shared
   * socket suffices over UDP): it still works. */
  n = fill_table(fds, 128);
  close(fds[--n]);
  assert_int_equal(dt_resolver_lookup_addrs(r, "www.fault.test", AF_UNSPEC, -1,
                                            addrs, 4, &cnt),
                   DT_OK);
  for (int i = 0; i < n; i++) {
    close(fds[i]);
  }
  assert_int_equal(open_fds(), before);

  dt_dialer_free(d);
  dt_resolver_free(r);
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_constructors),
      cmocka_unit_test(test_dialer_and_listeners),
      cmocka_unit_test(test_calls),
      cmocka_unit_test(test_descriptors_exhausted),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
