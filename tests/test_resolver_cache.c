/* The resolver's use of the cache: hits without allocation or queries,
 * remaining TTLs, coalescing of identical questions, serve-stale. Against
 * the fake DNS server; TTL logic runs on a fake clock. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "alloc.h"
#include "clock.h"
#include "dialtone.h"
#include "fake/fakedns.h"

static fakedns_t *srv;
static char addr[64];
/* The resolver's clock runs with real time (timeouts must pass) plus an
 * offset the tests move to jump over TTLs without sleeping. */
static uint64_t fake_now;

static uint64_t fake_clock(void *ctx) {
  (void)ctx;
  return dt__now_us() + fake_now;
}

static const char *zone[] = {
    "www.c.test. 300 IN A 192.0.2.1",
    "www.c.test. 300 IN AAAA 2001:db8::1",
    "alias.c.test. 60 IN CNAME www.c.test.",
    "c.test. 3600 IN SOA ns.c.test. admin.c.test. 1 7200 900 1209600 120",
    "txt.c.test. 100 IN TXT \"x\"",
    "slow.c.test. 300 IN A 192.0.2.9",
    "zero.c.test. 0 IN A 192.0.2.10",
};

static int setup(void **state) {
  (void)state;
  if (fakedns_new(NULL, &srv) != DT_OK || fakedns_start(srv) != DT_OK) {
    return -1;
  }
  snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)fakedns_port(srv));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  fakedns_free(srv);
  return 0;
}

static int reset(void **state) {
  (void)state;
  fakedns_clear(srv);
  for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]); i++) {
    assert_int_equal(fakedns_add(srv, zone[i]), DT_OK);
  }
  fakedns_reset_stats(srv);
  fake_now = 0;
  return 0;
}

static dt_resolver_t *resolver(bool fake_time, bool stale) {
  const char *s[] = {addr};
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  o.servers = s;
  o.nservers = 1;
  o.hosts = "";
  o.timeout_ms = 300;
  o.attempts = 1;
  o.serve_stale = stale;
  if (fake_time) {
    o.clock_us = fake_clock;
  }
  dt_resolver_t *r = NULL;
  assert_int_equal(dt_resolver_new(&o, &r), DT_OK);
  return r;
}

static unsigned asked(const char *name, uint16_t type) {
  return fakedns_count(srv, name, type, FAKEDNS_UDP) +
         fakedns_count(srv, name, type, FAKEDNS_TCP);
}

static void test_hit_counts_down(void **state) {
  (void)state;
  dt_resolver_t *r = resolver(true, false);
  dt_answer_t *a = NULL;
  assert_int_equal(dt_resolver_query(r, "alias.c.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  assert_false(a->from_cache);
  assert_int_equal(a->ttl, 60);
  dt_answer_free(a);
  fake_now += 25 * 1000000ull;
  /* Another spelling of the same name is the same entry. */
  assert_int_equal(dt_resolver_query(r, "ALIAS.c.Test.", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  assert_true(a->from_cache);
  assert_int_equal(a->ttl, 35);
  assert_int_equal(a->nanswer, 2);
  /* Every record shows its remaining TTL, none beyond the entry's. */
  assert_int_equal(a->answer[0].ttl, 35);
  assert_int_equal(a->answer[1].ttl, 35);
  assert_int_equal(a->server_len, 0);
  dt_answer_free(a);
  assert_int_equal(asked("alias.c.test", DT_TYPE_A), 1);
  /* Expired at 60 s: asked again. */
  fake_now += 35 * 1000000ull;
  assert_int_equal(dt_resolver_query(r, "alias.c.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  assert_false(a->from_cache);
  dt_answer_free(a);
  assert_int_equal(asked("alias.c.test", DT_TYPE_A), 2);
  /* DT_QUERY_NOCACHE always asks. */
  assert_int_equal(
      dt_resolver_query(r, "alias.c.test", DT_TYPE_A, DT_QUERY_NOCACHE, -1, &a),
      DT_OK);
  assert_false(a->from_cache);
  dt_answer_free(a);
  assert_int_equal(asked("alias.c.test", DT_TYPE_A), 3);
  /* TTL 0 is never cached. */
  for (int i = 0; i < 2; i++) {
    assert_int_equal(dt_resolver_query(r, "zero.c.test", DT_TYPE_A, 0, -1, &a),
                     DT_OK);
    dt_answer_free(a);
  }
  assert_int_equal(asked("zero.c.test", DT_TYPE_A), 2);
  dt_cache_stats_t cs;
  dt_cache_get_stats(r, &cs);
  assert_int_equal(cs.hits, 1);
  dt_resolver_free(r);
}

static void test_negative_answers_cached(void **state) {
  (void)state;
  dt_resolver_t *r = resolver(true, false);
  dt_addr_t addrs[4];
  size_t n;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(
        dt_resolver_lookup_addrs(r, "nope.c.test", AF_UNSPEC, -1, addrs, 4, &n),
        DT_ENXDOMAIN);
    assert_int_equal(
        dt_resolver_lookup_addrs(r, "txt.c.test", AF_UNSPEC, -1, addrs, 4, &n),
        DT_ENODATA);
  }
  assert_int_equal(asked("nope.c.test", DT_TYPE_A), 1);
  assert_int_equal(asked("nope.c.test", DT_TYPE_AAAA), 1);
  assert_int_equal(asked("txt.c.test", DT_TYPE_A), 1);
  /* min(SOA TTL 3600, MINIMUM 120) */
  fake_now += 119 * 1000000ull;
  dt_answer_t *a = NULL;
  assert_int_equal(dt_resolver_query(r, "nope.c.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  assert_true(a->from_cache);
  assert_int_equal(a->ttl, 1);
  assert_int_equal(dt_answer_status(a), DT_ENXDOMAIN);
  dt_answer_free(a);
  fake_now += 1000000ull;
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "nope.c.test", AF_UNSPEC, -1, addrs, 4, &n),
      DT_ENXDOMAIN);
  assert_int_equal(asked("nope.c.test", DT_TYPE_A), 2);
  dt_resolver_free(r);
}

/* A hit allocates nothing, through both calls that can take one. */
/* misses counts questions that had to be asked, once each: the fast
 * paths of lookup_addrs and query_into look in the cache before the query
 * machine looks again, and only the machine's look counts. */
static void test_misses_counted_once(void **state) {
  (void)state;
  dt_resolver_t *r = resolver(true, false);
  dt_addr_t addrs[4];
  size_t n;
  dt_cache_stats_t cs;
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "www.c.test", AF_UNSPEC, -1, addrs, 4, &n),
      DT_OK);
  dt_cache_get_stats(r, &cs);
  assert_int_equal(cs.misses, 2); /* AAAA and A */
  assert_int_equal(cs.hits, 0);
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "www.c.test", AF_UNSPEC, -1, addrs, 4, &n),
      DT_OK);
  dt_cache_get_stats(r, &cs);
  assert_int_equal(cs.misses, 2);
  assert_int_equal(cs.hits, 2);
  uint64_t buf[512];
  size_t len = sizeof(buf);
  const dt_answer_t *a = NULL;
  assert_int_equal(dt_resolver_query_into(r, "alias.c.test", DT_TYPE_A, 0, -1,
                                          buf, &len, &a),
                   DT_OK);
  dt_cache_get_stats(r, &cs);
  assert_int_equal(cs.misses, 3);
  assert_int_equal(cs.hits, 2);
  dt_resolver_free(r);
}

static void test_hit_allocates_nothing(void **state) {
  (void)state;
  dt_resolver_t *r = resolver(false, false);
  dt_addr_t addrs[4];
  size_t n = 0;
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "www.c.test", AF_UNSPEC, -1, addrs, 4, &n),
      DT_OK);
  assert_int_equal(n, 2);
  uint64_t buf[512];
  size_t len = sizeof(buf);
  const dt_answer_t *a = NULL;
  assert_int_equal(dt_resolver_query_into(r, "www.c.test", DT_TYPE_AAAA, 0, -1,
                                          buf, &len, &a),
                   DT_OK);
  dt__alloc_reset_counts();
  for (int i = 0; i < 1000; i++) {
    n = 0;
    assert_int_equal(
        dt_resolver_lookup_addrs(r, "www.c.test", AF_UNSPEC, -1, addrs, 4, &n),
        DT_OK);
    assert_int_equal(n, 2);
    len = sizeof(buf);
    assert_int_equal(dt_resolver_query_into(r, "www.c.test", DT_TYPE_AAAA, 0,
                                            -1, buf, &len, &a),
                     DT_OK);
    assert_true(a->from_cache);
    assert_string_equal(a->answer[0].data, "2001:db8::1");
  }
  assert_int_equal(dt__alloc_count(), 0);
  assert_int_equal(addrs[0].addr.ss_family, AF_INET6);
  assert_true(addrs[0].ttl <= 300 && addrs[0].ttl >= 299);
  assert_int_equal(asked("www.c.test", DT_TYPE_A), 1);
  assert_int_equal(asked("www.c.test", DT_TYPE_AAAA), 1);
  /* Too small a buffer says how much is needed. */
  len = 16;
  assert_int_equal(dt_resolver_query_into(r, "www.c.test", DT_TYPE_AAAA, 0, -1,
                                          buf, &len, &a),
                   DT_ETOOBIG);
  assert_true(len > 16 && len <= sizeof(buf));
  assert_int_equal(dt_resolver_query_into(r, "www.c.test", DT_TYPE_AAAA, 0, -1,
                                          (char *)buf + 1, &len, &a),
                   DT_EINVAL);
  dt_resolver_free(r);
}

typedef struct {
  dt_resolver_t *r;
  int timeout_ms;
  dt_status_t st;
  uint64_t took_us;
} asker_t;

static void *ask(void *arg) {
  asker_t *k = arg;
  dt_addr_t addrs[4];
  size_t n;
  uint64_t t0 = dt__now_us();
  k->st = dt_resolver_lookup_addrs(k->r, "slow.c.test", AF_INET, k->timeout_ms,
                                   addrs, 4, &n);
  k->took_us = dt__now_us() - t0;
  return NULL;
}

/* Eight threads ask one name while its reply takes 1.5 s: one query goes
 * upstream; a waiter with a short deadline leaves alone. */
static void test_coalescing(void **state) {
  (void)state;
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.delay_ms = 1500; /* long enough to outlast a slow start under valgrind */
  assert_int_equal(fakedns_set_behaviour(srv, "slow.c.test", 0, &b), DT_OK);
  const char *s[] = {addr};
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  o.servers = s;
  o.nservers = 1;
  o.hosts = "";
  o.timeout_ms = 5000;
  o.attempts = 1;
  dt_resolver_t *r = NULL;
  assert_int_equal(dt_resolver_new(&o, &r), DT_OK);
  pthread_t t[9];
  asker_t k[9];
  for (int i = 0; i < 9; i++) {
    k[i].r = r;
    k[i].timeout_ms = i == 8 ? 50 : 10000;
    if (i == 8) {
      /* The short waiter comes once the query is on the wire, so it is
       * surely a waiter, not the leader. */
      assert_int_equal(fakedns_wait(srv, "slow.c.test", DT_TYPE_A, 1, 2000),
                       DT_OK);
    }
    assert_int_equal(pthread_create(&t[i], NULL, ask, &k[i]), 0);
  }
  for (int i = 0; i < 9; i++) {
    pthread_join(t[i], NULL);
  }
  for (int i = 0; i < 8; i++) {
    assert_int_equal(k[i].st, DT_OK);
  }
  assert_int_equal(k[8].st, DT_ETIMEDOUT);
  /* It left before the reply came, not with it. */
  assert_true(k[8].took_us < 1400000);
  assert_int_equal(asked("slow.c.test", DT_TYPE_A), 1);
  dt_cache_stats_t cs;
  dt_cache_get_stats(r, &cs);
  assert_true(cs.coalesced >= 1);
  dt_resolver_free(r);
  fakedns_set_behaviour(srv, "slow.c.test", 0, NULL);
}

static void test_serve_stale(void **state) {
  (void)state;
  for (int on = 0; on < 2; on++) {
    reset(state);
    dt_resolver_t *r = resolver(true, on == 1);
    dt_answer_t *a = NULL;
    assert_int_equal(dt_resolver_query(r, "www.c.test", DT_TYPE_A, 0, -1, &a),
                     DT_OK);
    dt_answer_free(a);
    /* Expired, and the only server is down. */
    fake_now += 301 * 1000000ull;
    fakedns_behaviour_t b;
    fakedns_behaviour_init(&b);
    b.black_hole = true;
    assert_int_equal(fakedns_set_default(srv, &b), DT_OK);
    dt_status_t st = dt_resolver_query(r, "www.c.test", DT_TYPE_A, 0, -1, &a);
    if (on) {
      assert_int_equal(st, DT_OK);
      assert_true(a->stale);
      assert_true(a->from_cache);
      assert_int_equal(a->ttl, 30);
      assert_string_equal(a->answer[0].data, "192.0.2.1");
      dt_answer_free(a);
      dt_cache_stats_t cs;
      dt_cache_get_stats(r, &cs);
      assert_int_equal(cs.stale_served, 1);
      /* Past the stale window (a day) nothing is served. */
      fake_now += 86400 * 1000000ull;
      assert_int_equal(dt_resolver_query(r, "www.c.test", DT_TYPE_A, 0, -1, &a),
                       DT_ETIMEDOUT);
    } else {
      assert_int_equal(st, DT_ETIMEDOUT);
    }
    fakedns_set_default(srv, NULL);
    dt_resolver_free(r);
  }
}

/* A hit near expiry sends a refresh without waiting for it; a later call
 * takes the reply in, and the name never misses. */
static void test_prefetch(void **state) {
  (void)state;
  const char *s[] = {addr};
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  o.servers = s;
  o.nservers = 1;
  o.hosts = "";
  o.prefetch = true;
  o.clock_us = fake_clock;
  dt_resolver_t *r = NULL;
  assert_int_equal(dt_resolver_new(&o, &r), DT_OK);
  dt_answer_t *a = NULL;
  assert_int_equal(dt_resolver_query(r, "www.c.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  dt_answer_free(a);
  fake_now += 200 * 1000000ull; /* not yet in the last 10% */
  assert_int_equal(dt_resolver_query(r, "www.c.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  dt_answer_free(a);
  assert_int_equal(asked("www.c.test", DT_TYPE_A), 1);
  fake_now += 80 * 1000000ull; /* 280 s of 300 */
  uint64_t t0 = dt__now_us();
  assert_int_equal(dt_resolver_query(r, "www.c.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  assert_true(a->from_cache);
  assert_int_equal(a->ttl, 20);
  dt_answer_free(a);
  assert_true(dt__now_us() - t0 < 100000); /* the hit did not wait */
  assert_int_equal(fakedns_wait(srv, "www.c.test", DT_TYPE_A, 2, 2000), DT_OK);
  uint32_t ttl = 0;
  for (int i = 0; i < 200 && ttl < 250; i++) {
    struct timespec ts = {0, 5000000};
    nanosleep(&ts, NULL);
    assert_int_equal(dt_resolver_query(r, "www.c.test", DT_TYPE_A, 0, -1, &a),
                     DT_OK);
    assert_true(a->from_cache);
    ttl = a->ttl;
    dt_answer_free(a);
  }
  assert_true(ttl >= 250);
  assert_int_equal(asked("www.c.test", DT_TYPE_A), 2);
  dt_resolver_free(r);
}

typedef struct {
  int entries;
  bool saw_www;
} list_ctx_t;

static void visit(const dt_cache_entry_t *e, void *ctx) {
  list_ctx_t *c = ctx;
  c->entries++;
  if (strcmp(e->name, "www.c.test") == 0 && e->type == DT_TYPE_A) {
    c->saw_www = true;
    assert_false(e->negative);
    assert_true(e->remaining_s <= 300);
  }
}

static void test_flush_and_list(void **state) {
  (void)state;
  dt_resolver_t *r = resolver(false, false);
  dt_addr_t addrs[4];
  size_t n;
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "www.c.test", AF_UNSPEC, -1, addrs, 4, &n),
      DT_OK);
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "nope.c.test", AF_UNSPEC, -1, addrs, 4, &n),
      DT_ENXDOMAIN);
  list_ctx_t c = {0, false};
  dt_cache_list(r, visit, &c);
  assert_int_equal(c.entries, 4);
  assert_true(c.saw_www);
  dt_cache_flush(r, "WWW.c.test.");
  c.entries = 0;
  c.saw_www = false;
  dt_cache_list(r, visit, &c);
  assert_int_equal(c.entries, 2);
  assert_false(c.saw_www);
  dt_cache_flush(r, NULL);
  c.entries = 0;
  dt_cache_list(r, visit, &c);
  assert_int_equal(c.entries, 0);
  dt_cache_stats_t cs;
  dt_cache_get_stats(r, &cs);
  assert_int_equal(cs.entries, 0);
  dt_resolver_free(r);
  /* With the cache off nothing is kept and stats stay zero. */
  const char *s[] = {addr};
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  o.servers = s;
  o.nservers = 1;
  o.hosts = "";
  o.cache = false;
  assert_int_equal(dt_resolver_new(&o, &r), DT_OK);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(
        dt_resolver_lookup_addrs(r, "www.c.test", AF_INET, -1, addrs, 4, &n),
        DT_OK);
  }
  dt_cache_get_stats(r, &cs);
  assert_int_equal(cs.hits + cs.misses + cs.entries, 0);
  dt_resolver_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_hit_counts_down, reset),
      cmocka_unit_test_setup(test_negative_answers_cached, reset),
      cmocka_unit_test_setup(test_misses_counted_once, reset),
      cmocka_unit_test_setup(test_hit_allocates_nothing, reset),
      cmocka_unit_test_setup(test_coalescing, reset),
      cmocka_unit_test_setup(test_serve_stale, reset),
      cmocka_unit_test_setup(test_prefetch, reset),
      cmocka_unit_test_setup(test_flush_and_list, reset),
  };
  return cmocka_run_group_tests_name("resolver_cache", tests, setup, teardown);
}
