/* The stub resolver against the project's fake DNS server on loopback. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "clock.h"
#include "dialtone.h"
#include "fake/fakedns.h"

static const char *zone[] = {
    "www.dt.test. 300 IN A 192.0.2.1",
    "www.dt.test. 300 IN A 192.0.2.2",
    "www.dt.test. 200 IN AAAA 2001:db8::1",
    "dt.test. 3600 IN SOA ns.dt.test. admin.dt.test. 1 7200 900 1209600 60",
    "dt.test. 3600 IN NS ns.dt.test.",
    "dt.test. 3600 IN MX 10 mail.dt.test.",
    "txt.dt.test. 60 IN TXT \"hello world\" \"second\"",
    "_sip._tcp.dt.test. 60 IN SRV 10 20 5060 sip.dt.test.",
    "1.2.0.192.in-addr.arpa. 60 IN PTR www.dt.test.",
    "dt.test. 60 IN CAA 0 issue \"ca.example\"",
    "svc.dt.test. 60 IN HTTPS 1 . alpn=h2",
    "c1.dt.test. 100 IN CNAME c2.dt.test.",
    "c2.dt.test. 50 IN CNAME c3.dt.test.",
    "c3.dt.test. 400 IN A 192.0.2.3",
    "loop1.dt.test. 60 IN CNAME loop2.dt.test.",
    "loop2.dt.test. 60 IN CNAME loop1.dt.test.",
    "onlytxt.dt.test. 60 IN TXT \"x\"",
    "big.dt.test. 60 IN A 192.0.2.10",
    "host.a.test. 60 IN A 192.0.2.21",
    "host.b.test. 60 IN A 192.0.2.22",
    "a.test. 60 IN SOA ns.a.test. admin.a.test. 1 7200 900 1209600 30",
    "b.test. 60 IN SOA ns.b.test. admin.b.test. 1 7200 900 1209600 30",
    "both.dt.test. 60 IN A 192.0.2.30",
    "both.dt.test. 60 IN AAAA 2001:db8::30",
};

typedef struct {
  fakedns_t *srv;
  fakedns_t *srv2;
  char addr[64];
  char addr2[64];
} fixture_t;

static fakedns_t *new_server(char *addr, size_t len) {
  fakedns_t *srv = NULL;
  assert_int_equal(fakedns_new(NULL, &srv), DT_OK);
  for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]); i++) {
    assert_int_equal(fakedns_add(srv, zone[i]), DT_OK);
  }
  assert_int_equal(fakedns_start(srv), DT_OK);
  snprintf(addr, len, "127.0.0.1:%u", (unsigned)fakedns_port(srv));
  return srv;
}

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  f->srv = new_server(f->addr, sizeof(f->addr));
  f->srv2 = new_server(f->addr2, sizeof(f->addr2));
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  fakedns_free(f->srv);
  fakedns_free(f->srv2);
  free(f);
  return 0;
}

/* Each test starts from clean scripts and counters. */
static int reset(void **state) {
  fixture_t *f = *state;
  fakedns_t *s[2] = {f->srv, f->srv2};
  for (int i = 0; i < 2; i++) {
    fakedns_clear(s[i]);
    for (size_t j = 0; j < sizeof(zone) / sizeof(zone[0]); j++) {
      assert_int_equal(fakedns_add(s[i], zone[j]), DT_OK);
    }
    fakedns_reset_stats(s[i]);
  }
  dt__alloc_reset_counts();
  return 0;
}

static dt_resolver_t *resolver_with(const char *const *servers, size_t n,
                                    int timeout_ms, int attempts) {
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  o.servers = servers;
  o.nservers = n;
  o.hosts = "";
  o.cache = false; /* the query engine itself; the cache has its own tests */
  o.timeout_ms = timeout_ms;
  o.attempts = attempts;
  dt_resolver_t *r = NULL;
  assert_int_equal(dt_resolver_new(&o, &r), DT_OK);
  return r;
}

static dt_resolver_t *one(fixture_t *f) {
  const char *s[] = {f->addr};
  return resolver_with(s, 1, 1000, 2);
}

static void test_record_types(void **state) {
  fixture_t *f = *state;
  dt_resolver_t *r = one(f);
  static const struct {
    const char *name;
    uint16_t type;
    const char *data;
  } cases[] = {
      {"www.dt.test", DT_TYPE_A, "192.0.2.1"},
      {"www.dt.test", DT_TYPE_AAAA, "2001:db8::1"},
      {"dt.test", DT_TYPE_MX, "10 mail.dt.test."},
      {"dt.test", DT_TYPE_NS, "ns.dt.test."},
      {"dt.test", DT_TYPE_SOA,
       "ns.dt.test. admin.dt.test. 1 7200 900 1209600 60"},
      {"txt.dt.test", DT_TYPE_TXT, "\"hello world\" \"second\""},
      {"_sip._tcp.dt.test", DT_TYPE_SRV, "10 20 5060 sip.dt.test."},
      {"1.2.0.192.in-addr.arpa", DT_TYPE_PTR, "www.dt.test."},
      {"dt.test", DT_TYPE_CAA, "0 issue \"ca.example\""},
      {"c1.dt.test", DT_TYPE_CNAME, "c2.dt.test."},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    dt_answer_t *a = NULL;
    assert_int_equal(
        dt_resolver_query(r, cases[i].name, cases[i].type, 0, -1, &a), DT_OK);
    assert_int_equal(dt_answer_status(a), DT_OK);
    assert_true(a->nanswer >= 1);
    assert_int_equal(a->answer[0].type, cases[i].type);
    assert_string_equal(a->answer[0].data, cases[i].data);
    assert_int_equal(a->rcode, DT_RCODE_NOERROR);
    assert_int_equal(a->transport, DT_TRANSPORT_UDP);
    assert_false(a->from_cache);
    dt_answer_free(a);
  }
  /* HTTPS comes back with its parameters in text form. */
  dt_answer_t *a = NULL;
  assert_int_equal(
      dt_resolver_query(r, "svc.dt.test", DT_TYPE_HTTPS, 0, -1, &a), DT_OK);
  assert_int_equal(a->nanswer, 1);
  assert_non_null(strstr(a->answer[0].data, "alpn"));
  char line[512];
  assert_int_equal(dt_rr_tostr(&a->answer[0], line, sizeof(line)), DT_OK);
  assert_non_null(strstr(line, "HTTPS"));
  dt_answer_free(a);
  /* Two A records, the TTL and the server that answered. */
  assert_int_equal(dt_resolver_query(r, "WWW.dt.test.", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  assert_int_equal(a->nanswer, 2);
  assert_true(a->ttl <= 300 && a->ttl >= 299);
  assert_int_equal(a->server.ss_family, AF_INET);
  assert_int_equal(ntohs(((struct sockaddr_in *)&a->server)->sin_port),
                   fakedns_port(f->srv));
  dt_answer_free(a);
  dt_resolver_free(r);
}

static void test_cname_chain(void **state) {
  fixture_t *f = *state;
  dt_resolver_t *r = one(f);
  dt_answer_t *a = NULL;
  assert_int_equal(dt_resolver_query(r, "c1.dt.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  assert_int_equal(a->nanswer, 3);
  assert_int_equal(a->answer[0].type, DT_TYPE_CNAME);
  assert_int_equal(a->answer[1].type, DT_TYPE_CNAME);
  assert_int_equal(a->answer[2].type, DT_TYPE_A);
  assert_string_equal(a->answer[2].data, "192.0.2.3");
  assert_string_equal(a->canonical, "c3.dt.test.");
  assert_int_equal(a->ttl, 50); /* the smallest TTL of the chain */
  dt_answer_free(a);

  dt_addr_t addrs[4];
  size_t n = 0;
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "c1.dt.test", AF_INET, -1, addrs, 4, &n),
      DT_OK);
  assert_int_equal(n, 1);
  assert_int_equal(addrs[0].ttl, 50);

  /* A loop in the chain is an error, not a hang. */
  assert_int_equal(dt_resolver_query(r, "loop1.dt.test", DT_TYPE_A, 0, -1, &a),
                   DT_ELOOP);
  dt_resolver_free(r);
}

static void test_negative_answers(void **state) {
  fixture_t *f = *state;
  dt_resolver_t *r = one(f);
  dt_answer_t *a = NULL;
  assert_int_equal(dt_resolver_query(r, "nope.dt.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  assert_int_equal(dt_answer_status(a), DT_ENXDOMAIN);
  assert_int_equal(a->rcode, DT_RCODE_NXDOMAIN);
  assert_int_equal(a->nanswer, 0);
  assert_int_equal(a->nauthority, 1);
  assert_int_equal(a->authority[0].type, DT_TYPE_SOA);
  assert_int_equal(a->ttl, 60); /* min(SOA TTL 3600, MINIMUM 60) */
  dt_answer_free(a);
  assert_int_equal(
      dt_resolver_query(r, "onlytxt.dt.test", DT_TYPE_A, 0, -1, &a), DT_OK);
  assert_int_equal(dt_answer_status(a), DT_ENODATA);
  dt_answer_free(a);

  dt_addr_t addrs[4];
  size_t n = 0;
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "nope.dt.test", AF_UNSPEC, -1, addrs, 4, &n),
      DT_ENXDOMAIN);
  assert_int_equal(dt_resolver_lookup_addrs(r, "onlytxt.dt.test", AF_UNSPEC, -1,
                                            addrs, 4, &n),
                   DT_ENODATA);
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "www.dt.test", AF_INET6, -1, addrs, 4, &n),
      DT_OK);
  assert_int_equal(n, 1);
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "c3.dt.test", AF_INET6, -1, addrs, 4, &n),
      DT_ENODATA);
  dt_resolver_free(r);
}

static void test_truncated_retries_over_tcp(void **state) {
  fixture_t *f = *state;
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.truncate = true;
  b.tc_keep = 0;
  assert_int_equal(fakedns_set_behaviour(f->srv, "www.dt.test", DT_TYPE_A, &b),
                   DT_OK);
  dt_resolver_t *r = one(f);
  dt_answer_t *a = NULL;
  assert_int_equal(dt_resolver_query(r, "www.dt.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  assert_int_equal(a->nanswer, 2);
  assert_int_equal(a->transport, DT_TRANSPORT_TCP);
  dt_answer_free(a);
  /* The TCP query really reached the server. */
  assert_int_equal(fakedns_count(f->srv, "www.dt.test", DT_TYPE_A, FAKEDNS_UDP),
                   1);
  assert_int_equal(fakedns_count(f->srv, "www.dt.test", DT_TYPE_A, FAKEDNS_TCP),
                   1);
  dt_resolver_stats_t st;
  dt_resolver_get_stats(r, &st);
  assert_int_equal(st.truncated, 1);
  assert_int_equal(st.queries_tcp, 1);

  /* +tcp: TCP from the first try. */
  assert_int_equal(
      dt_resolver_query(r, "c3.dt.test", DT_TYPE_A, DT_QUERY_TCP, -1, &a),
      DT_OK);
  assert_int_equal(a->transport, DT_TRANSPORT_TCP);
  dt_answer_free(a);
  assert_int_equal(fakedns_count(f->srv, "c3.dt.test", DT_TYPE_A, FAKEDNS_UDP),
                   0);
  dt_resolver_free(r);
}

/* Spoofed replies (wrong ID, wrong question, wrong source port) carry a
 * poisoned address; the resolver must drop them and take the real one. */
static void spoof_case(fixture_t *f, void (*set)(fakedns_behaviour_t *),
                       size_t field_offset) {
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  set(&b);
  b.spoof_rr = "x. 300 IN A 6.6.6.6";
  assert_int_equal(fakedns_set_behaviour(f->srv, "c3.dt.test", DT_TYPE_A, &b),
                   DT_OK);
  dt_resolver_t *r = one(f);
  dt_answer_t *a = NULL;
  assert_int_equal(dt_resolver_query(r, "c3.dt.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  assert_int_equal(a->nanswer, 1);
  assert_string_equal(a->answer[0].data, "192.0.2.3");
  dt_answer_free(a);
  dt_resolver_stats_t st;
  dt_resolver_get_stats(r, &st);
  if (field_offset != SIZE_MAX) {
    uint64_t dropped;
    memcpy(&dropped, (char *)&st + field_offset, sizeof(dropped));
    assert_int_equal(dropped, 1);
  }
  assert_int_equal(st.replies_accepted, 1);
  assert_int_equal(st.timeouts, 0);
  dt_resolver_free(r);
}

static void set_wrong_id(fakedns_behaviour_t *b) {
  b->wrong_id = true;
}
static void set_wrong_question(fakedns_behaviour_t *b) {
  b->wrong_question = true;
}
static void set_wrong_port(fakedns_behaviour_t *b) {
  b->wrong_port = true;
}

static void test_spoofed_replies_dropped(void **state) {
  fixture_t *f = *state;
  spoof_case(f, set_wrong_id, offsetof(dt_resolver_stats_t, dropped_id));
  reset(state);
  spoof_case(f, set_wrong_question,
             offsetof(dt_resolver_stats_t, dropped_question));
  reset(state);
  /* The connected socket lets the kernel drop another port's datagram
   * before we see it, so only the outcome is asserted. */
  spoof_case(f, set_wrong_port, SIZE_MAX);
}

/* DNS 0x20. The name has 31 letters, so a query in all lower case, which
 * the lower-case spoof would match, comes once in 2^31 runs. */
#define LONG_NAME "abcdefghijklmnopqrstuvwxyzabcde.dt.test"

static dt_resolver_t *resolver_0x20(fixture_t *f, bool on, int timeout_ms) {
  const char *s[] = {f->addr};
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  o.servers = s;
  o.nservers = 1;
  o.hosts = "";
  o.cache = false;
  o.timeout_ms = timeout_ms;
  o.attempts = 1;
  o.dns0x20 = on;
  dt_resolver_t *r = NULL;
  assert_int_equal(dt_resolver_new(&o, &r), DT_OK);
  return r;
}

static void lower_spoof(fixture_t *f, uint16_t type, const char *rr,
                        bool spoof_only) {
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.lower_question = true;
  b.spoof_only = spoof_only;
  b.spoof_rr = rr;
  assert_int_equal(fakedns_set_behaviour(f->srv, LONG_NAME, type, &b), DT_OK);
}

static void test_dns0x20(void **state) {
  fixture_t *f = *state;
  assert_int_equal(fakedns_add(f->srv, LONG_NAME ". 60 IN A 192.0.2.40"),
                   DT_OK);
  assert_int_equal(fakedns_add(f->srv, LONG_NAME ". 60 IN AAAA 2001:db8::40"),
                   DT_OK);
  dt_answer_t *a = NULL;
  dt_resolver_stats_t st;

  /* The fake echoes the query's case: answers come back, shown in lower
   * case whatever the spelling on the wire. */
  dt_resolver_t *r = resolver_0x20(f, true, 1000);
  assert_int_equal(dt_resolver_query(r,
                                     "ABCdefghijklmnopqrstuvwxyzabcde.DT.test",
                                     DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  assert_string_equal(a->qname, LONG_NAME ".");
  assert_string_equal(a->answer[0].owner, LONG_NAME ".");
  assert_string_equal(a->answer[0].data, "192.0.2.40");
  dt_answer_free(a);

  /* Without 0x20 a spoof whose question is in lower case is taken (case
   * is ignored) and its forged address wins; with 0x20 it is dropped and
   * the genuine reply behind it taken, over UDP and over TCP. */
  lower_spoof(f, DT_TYPE_A, "x 60 IN A 192.0.2.66", false);
  dt_resolver_t *plain = resolver_0x20(f, false, 1000);
  assert_int_equal(dt_resolver_query(plain, LONG_NAME, DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  assert_string_equal(a->answer[0].data, "192.0.2.66");
  dt_answer_free(a);
  dt_resolver_free(plain);
  for (int tcp = 0; tcp < 2; tcp++) {
    dt_resolver_get_stats(r, &st);
    uint64_t before = st.dropped_question;
    assert_int_equal(dt_resolver_query(r, LONG_NAME, DT_TYPE_A,
                                       tcp ? DT_QUERY_TCP : 0, -1, &a),
                     DT_OK);
    assert_string_equal(a->answer[0].data, "192.0.2.40");
    assert_int_equal(a->nanswer, 1);
    dt_answer_free(a);
    dt_resolver_get_stats(r, &st);
    assert_int_equal(st.dropped_question, before + 1);
  }

  /* Both questions of an address lookup share one UDP socket: each
   * question's spelling is checked against its own reply. */
  lower_spoof(f, DT_TYPE_AAAA, "x 60 IN AAAA 2001:db8::66", false);
  dt_addr_t addrs[4];
  size_t n = 0;
  dt_resolver_get_stats(r, &st);
  uint64_t before = st.dropped_question;
  assert_int_equal(
      dt_resolver_lookup_addrs(r, LONG_NAME, AF_UNSPEC, -1, addrs, 4, &n),
      DT_OK);
  assert_int_equal(n, 2);
  char text[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&addrs[0].addr)->sin6_addr, text,
            sizeof(text));
  assert_string_equal(text, "2001:db8::40");
  inet_ntop(AF_INET, &((struct sockaddr_in *)&addrs[1].addr)->sin_addr, text,
            sizeof(text));
  assert_string_equal(text, "192.0.2.40");
  dt_resolver_get_stats(r, &st);
  assert_int_equal(st.dropped_question, before + 2);

  /* Only the spoof comes: no reply counts, the query times out. */
  lower_spoof(f, DT_TYPE_A, NULL, true);
  assert_int_equal(dt_resolver_query(r, LONG_NAME, DT_TYPE_A, 0, 300, &a),
                   DT_ETIMEDOUT);
  dt_resolver_free(r);
}

static void test_garbage_survived(void **state) {
  fixture_t *f = *state;
  /* A compression loop in the question, carrying the query's ID. */
  static const uint8_t loop[] = {0, 0, 0x81, 0x80, 0,    1, 0, 0, 0,
                                 0, 0, 0,    0xc0, 0x0c, 0, 1, 0, 1};
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.garbage = FAKEDNS_GARBAGE_BEFORE;
  b.garbage_bytes = loop;
  b.garbage_len = sizeof(loop);
  b.garbage_keep_id = true;
  assert_int_equal(fakedns_set_behaviour(f->srv, "c3.dt.test", DT_TYPE_A, &b),
                   DT_OK);
  fakedns_behaviour_init(&b);
  b.garbage = FAKEDNS_GARBAGE_BEFORE; /* random bytes */
  assert_int_equal(fakedns_set_behaviour(f->srv, "www.dt.test", DT_TYPE_A, &b),
                   DT_OK);
  dt_resolver_t *r = one(f);
  dt_answer_t *a = NULL;
  assert_int_equal(dt_resolver_query(r, "c3.dt.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  assert_string_equal(a->answer[0].data, "192.0.2.3");
  dt_answer_free(a);
  for (int i = 0; i < 20; i++) {
    assert_int_equal(dt_resolver_query(r, "www.dt.test", DT_TYPE_A, 0, -1, &a),
                     DT_OK);
    assert_int_equal(a->nanswer, 2);
    dt_answer_free(a);
  }
  dt_resolver_stats_t st;
  dt_resolver_get_stats(r, &st);
  assert_int_equal(st.dropped_malformed + st.dropped_id + st.dropped_question,
                   21);
  assert_int_equal(st.timeouts, 0);
  dt_resolver_free(r);
}

static void test_dropped_query_retried(void **state) {
  fixture_t *f = *state;
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.drop_first = 1;
  assert_int_equal(fakedns_set_behaviour(f->srv, "c3.dt.test", DT_TYPE_A, &b),
                   DT_OK);
  const char *s[] = {f->addr};
  dt_resolver_t *r = resolver_with(s, 1, 200, 3);
  dt_answer_t *a = NULL;
  assert_int_equal(dt_resolver_query(r, "c3.dt.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  dt_answer_free(a);
  assert_int_equal(fakedns_count(f->srv, "c3.dt.test", DT_TYPE_A, FAKEDNS_UDP),
                   2);
  dt_resolver_stats_t st;
  dt_resolver_get_stats(r, &st);
  assert_int_equal(st.timeouts, 1);
  dt_resolver_free(r);
}

/* A port with nothing behind it: the kernel answers port unreachable. */
static void dead_address(char *out, size_t len) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof(sa);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sl), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
  close(fd);
  snprintf(out, len, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
}

static void test_failover_dead_and_blackholed(void **state) {
  fixture_t *f = *state;
  char dead[64];
  dead_address(dead, sizeof(dead));
  const char *s1[] = {dead, f->addr2};
  dt_resolver_t *r = resolver_with(s1, 2, 300, 2);
  dt_answer_t *a = NULL;
  uint64_t t0 = dt__now_us();
  assert_int_equal(dt_resolver_query(r, "c3.dt.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  /* Port unreachable fails at once, well before the 300 ms timeout. */
  assert_true(dt__now_us() - t0 < 250000);
  dt_answer_free(a);
  dt_resolver_stats_t st;
  dt_resolver_get_stats(r, &st);
  assert_int_equal(st.failovers, 1);
  dt_resolver_free(r);

  /* Black hole: first server never answers; failover after its timeout,
   * and the next query starts at the healthy server. */
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.black_hole = true;
  assert_int_equal(fakedns_set_default(f->srv, &b), DT_OK);
  const char *s2[] = {f->addr, f->addr2};
  r = resolver_with(s2, 2, 200, 2);
  t0 = dt__now_us();
  assert_int_equal(dt_resolver_query(r, "c3.dt.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  uint64_t took = dt__now_us() - t0;
  assert_true(took >= 190000 && took < 1500000);
  assert_int_equal(ntohs(((struct sockaddr_in *)&a->server)->sin_port),
                   fakedns_port(f->srv2));
  dt_answer_free(a);
  assert_int_equal(dt_resolver_query(r, "www.dt.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  dt_answer_free(a);
  assert_int_equal(fakedns_count(f->srv, "www.dt.test", DT_TYPE_A, FAKEDNS_UDP),
                   0);
  dt_resolver_free(r);
  fakedns_set_default(f->srv, NULL);
}

static uint64_t fake_now_us;
static uint64_t fake_clock(void *ctx) {
  (void)ctx;
  return fake_now_us;
}

/* A server that failed is retried once its penalty has passed, so it can
 * recover (c-ares once never retried a recovered server). */
static void test_failed_server_recovers(void **state) {
  fixture_t *f = *state;
  char dead[64];
  dead_address(dead, sizeof(dead));
  const char *s[] = {dead, f->addr2};
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  o.servers = s;
  o.nservers = 2;
  o.hosts = "";
  o.cache = false; /* the query engine itself; the cache has its own tests */
  o.timeout_ms = 500;
  o.attempts = 1;
  o.server_penalty_ms = 5000;
  fake_now_us = dt__now_us();
  o.clock_us = fake_clock;
  dt_resolver_t *r = NULL;
  assert_int_equal(dt_resolver_new(&o, &r), DT_OK);
  dt_answer_t *a = NULL;
  assert_int_equal(dt_resolver_query(r, "c3.dt.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  dt_answer_free(a);
  dt_resolver_stats_t st;
  dt_resolver_get_stats(r, &st);
  assert_int_equal(st.failovers, 1);
  /* Within the penalty the dead server is asked last: no failover. */
  fake_now_us += 4000000;
  assert_int_equal(dt_resolver_query(r, "c3.dt.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  dt_answer_free(a);
  dt_resolver_get_stats(r, &st);
  assert_int_equal(st.failovers, 1);
  /* After it, the first server is tried first again. */
  fake_now_us += 2000000;
  assert_int_equal(dt_resolver_query(r, "c3.dt.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  dt_answer_free(a);
  dt_resolver_get_stats(r, &st);
  assert_int_equal(st.failovers, 2);
  dt_resolver_free(r);
}

static void test_servfail_and_refused_fail_over(void **state) {
  fixture_t *f = *state;
  const char *s[] = {f->addr, f->addr2};
  int rcodes[] = {2, 5}; /* SERVFAIL, REFUSED */
  for (int i = 0; i < 2; i++) {
    fakedns_behaviour_t b;
    fakedns_behaviour_init(&b);
    b.rcode = rcodes[i];
    assert_int_equal(fakedns_set_default(f->srv, &b), DT_OK);
    dt_resolver_t *r = resolver_with(s, 2, 500, 1);
    dt_answer_t *a = NULL;
    assert_int_equal(dt_resolver_query(r, "c3.dt.test", DT_TYPE_A, 0, -1, &a),
                     DT_OK);
    assert_int_equal(dt_answer_status(a), DT_OK);
    assert_int_equal(ntohs(((struct sockaddr_in *)&a->server)->sin_port),
                     fakedns_port(f->srv2));
    dt_answer_free(a);
    /* When every server fails the same way, the caller sees that rcode. */
    assert_int_equal(fakedns_set_default(f->srv2, &b), DT_OK);
    assert_int_equal(dt_resolver_query(r, "c3.dt.test", DT_TYPE_A, 0, -1, &a),
                     DT_OK);
    assert_int_equal(dt_answer_status(a), i == 0 ? DT_ESERVFAIL : DT_EREFUSED);
    dt_answer_free(a);
    dt_addr_t addrs[2];
    size_t n;
    assert_int_equal(
        dt_resolver_lookup_addrs(r, "c3.dt.test", AF_INET, -1, addrs, 2, &n),
        i == 0 ? DT_ESERVFAIL : DT_EREFUSED);
    dt_resolver_free(r);
    fakedns_set_default(f->srv, NULL);
    fakedns_set_default(f->srv2, NULL);
  }
}

static void test_no_reply_times_out(void **state) {
  fixture_t *f = *state;
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.black_hole = true;
  assert_int_equal(fakedns_set_default(f->srv, &b), DT_OK);
  const char *s[] = {f->addr};
  dt_resolver_t *r = resolver_with(s, 1, 150, 2);
  dt_answer_t *a = NULL;
  uint64_t t0 = dt__now_us();
  assert_int_equal(dt_resolver_query(r, "c3.dt.test", DT_TYPE_A, 0, -1, &a),
                   DT_ETIMEDOUT);
  uint64_t took = dt__now_us() - t0;
  assert_true(took >= 290000 && took < 2000000);
  assert_int_equal(fakedns_count(f->srv, "c3.dt.test", DT_TYPE_A, FAKEDNS_UDP),
                   2);
  /* An overall timeout shorter than the tries wins. */
  t0 = dt__now_us();
  dt_addr_t addrs[2];
  size_t n;
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "c3.dt.test", AF_UNSPEC, 100, addrs, 2, &n),
      DT_ETIMEDOUT);
  took = dt__now_us() - t0;
  assert_true(took >= 95000 && took < 1500000);
  dt_resolver_free(r);
  fakedns_set_default(f->srv, NULL);
}

static void test_search_list_and_ndots(void **state) {
  fixture_t *f = *state;
  const char *s[] = {f->addr};
  const char *search[] = {"a.test", "b.test"};
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  o.servers = s;
  o.nservers = 1;
  o.hosts = "";
  o.cache = false; /* the query engine itself; the cache has its own tests */
  o.search = search;
  o.nsearch = 2;
  o.ndots = 1;
  dt_resolver_t *r = NULL;
  assert_int_equal(dt_resolver_new(&o, &r), DT_OK);
  /* "host" has 0 dots < ndots: search domains first, found in a.test. */
  dt_answer_t *a = NULL;
  assert_int_equal(dt_resolver_query(r, "host", DT_TYPE_A, 0, -1, &a), DT_OK);
  assert_string_equal(a->answer[0].data, "192.0.2.21");
  dt_answer_free(a);
  assert_int_equal(fakedns_count(f->srv, "host", DT_TYPE_A, FAKEDNS_UDP), 0);
  /* Not found anywhere: a.test, b.test, then as-is, in that order. */
  assert_int_equal(dt_resolver_query(r, "nohost", DT_TYPE_A, 0, -1, &a), DT_OK);
  assert_int_equal(dt_answer_status(a), DT_ENXDOMAIN);
  dt_answer_free(a);
  fakedns_stats_t sa, sb, sn;
  fakedns_get_stats(f->srv, "nohost.a.test", DT_TYPE_A, &sa);
  fakedns_get_stats(f->srv, "nohost.b.test", DT_TYPE_A, &sb);
  fakedns_get_stats(f->srv, "nohost", DT_TYPE_A, &sn);
  assert_int_equal(sa.udp, 1);
  assert_int_equal(sb.udp, 1);
  assert_int_equal(sn.udp, 1);
  assert_true(sa.first_us <= sb.first_us && sb.first_us <= sn.first_us);
  /* "www.dt.test" has 2 dots >= ndots: as-is first, found at once. */
  assert_int_equal(dt_resolver_query(r, "www.dt.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  dt_answer_free(a);
  assert_int_equal(
      fakedns_count(f->srv, "www.dt.test.a.test", DT_TYPE_A, FAKEDNS_UDP), 0);
  /* An absolute name is asked only as-is. */
  assert_int_equal(dt_resolver_query(r, "host.", DT_TYPE_A, 0, -1, &a), DT_OK);
  assert_int_equal(dt_answer_status(a), DT_ENXDOMAIN);
  dt_answer_free(a);
  assert_int_equal(fakedns_count(f->srv, "host", DT_TYPE_A, FAKEDNS_UDP), 1);
  /* Address lookups search the same way, A and AAAA together. */
  dt_addr_t addrs[4];
  size_t n;
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "host", AF_UNSPEC, -1, addrs, 4, &n), DT_OK);
  assert_int_equal(n, 1);
  assert_int_equal(
      fakedns_count(f->srv, "host.a.test", DT_TYPE_AAAA, FAKEDNS_UDP), 1);
  dt_resolver_free(r);
}

static void test_edns_fallback(void **state) {
  fixture_t *f = *state;
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.edns = FAKEDNS_EDNS_FORMERR;
  assert_int_equal(fakedns_set_default(f->srv, &b), DT_OK);
  dt_resolver_t *r = one(f);
  dt_answer_t *a = NULL;
  assert_int_equal(dt_resolver_query(r, "c3.dt.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  assert_int_equal(dt_answer_status(a), DT_OK);
  dt_answer_free(a);
  fakedns_stats_t s;
  fakedns_get_stats(f->srv, "c3.dt.test", DT_TYPE_A, &s);
  assert_int_equal(s.udp, 2);
  assert_int_equal(s.edns, 1);
  assert_int_equal(s.last_edns_size, 0);
  dt_resolver_stats_t st;
  dt_resolver_get_stats(r, &st);
  assert_int_equal(st.edns_fallbacks, 1);
  dt_resolver_free(r);
  fakedns_set_default(f->srv, NULL);

  /* A server that ignores EDNS (no OPT in its reply) still gave a valid
   * answer: it is taken as it is, without asking again. */
  fakedns_behaviour_init(&b);
  b.edns = FAKEDNS_EDNS_IGNORE;
  assert_int_equal(fakedns_set_default(f->srv, &b), DT_OK);
  fakedns_reset_stats(f->srv);
  r = one(f);
  assert_int_equal(dt_resolver_query(r, "c3.dt.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  assert_string_equal(a->answer[0].data, "192.0.2.3");
  dt_answer_free(a);
  assert_int_equal(fakedns_count(f->srv, "c3.dt.test", DT_TYPE_A, FAKEDNS_UDP),
                   1);
  dt_resolver_free(r);
  fakedns_set_default(f->srv, NULL);

  /* With EDNS on, queries advertise 1232 bytes. */
  r = one(f);
  assert_int_equal(dt_resolver_query(r, "www.dt.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  dt_answer_free(a);
  fakedns_get_stats(f->srv, "www.dt.test", DT_TYPE_A, &s);
  assert_int_equal(s.last_edns_size, 1232);
  assert_true(s.last_rd);
  dt_resolver_free(r);
}

/* Each reply is held until the other question has arrived: a resolver that
 * asked A and AAAA one after the other would time out. */
static void test_a_and_aaaa_in_flight_together(void **state) {
  fixture_t *f = *state;
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.hold_until = DT_TYPE_AAAA;
  assert_int_equal(fakedns_set_behaviour(f->srv, "both.dt.test", DT_TYPE_A, &b),
                   DT_OK);
  b.hold_until = DT_TYPE_A;
  assert_int_equal(
      fakedns_set_behaviour(f->srv, "both.dt.test", DT_TYPE_AAAA, &b), DT_OK);
  const char *s[] = {f->addr};
  dt_resolver_t *r = resolver_with(s, 1, 1500, 1);
  dt_addr_t addrs[4];
  size_t n = 0;
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "both.dt.test", AF_UNSPEC, -1, addrs, 4, &n),
      DT_OK);
  assert_int_equal(n, 2);
  assert_int_equal(addrs[0].addr.ss_family, AF_INET6);
  assert_int_equal(addrs[1].addr.ss_family, AF_INET);
  assert_int_equal(addrs[0].ttl, 60);
  dt_resolver_stats_t st;
  dt_resolver_get_stats(r, &st);
  assert_int_equal(st.timeouts, 0);
  dt_resolver_free(r);
}

static void test_rotate(void **state) {
  fixture_t *f = *state;
  const char *s[] = {f->addr, f->addr2};
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  o.servers = s;
  o.nservers = 2;
  o.hosts = "";
  o.cache = false; /* the query engine itself; the cache has its own tests */
  o.rotate = true;
  dt_resolver_t *r = NULL;
  assert_int_equal(dt_resolver_new(&o, &r), DT_OK);
  for (int i = 0; i < 4; i++) {
    dt_answer_t *a = NULL;
    assert_int_equal(dt_resolver_query(r, "c3.dt.test", DT_TYPE_A, 0, -1, &a),
                     DT_OK);
    dt_answer_free(a);
  }
  assert_int_equal(fakedns_count(f->srv, "c3.dt.test", DT_TYPE_A, FAKEDNS_UDP),
                   2);
  assert_int_equal(fakedns_count(f->srv2, "c3.dt.test", DT_TYPE_A, FAKEDNS_UDP),
                   2);
  dt_resolver_free(r);
}

typedef struct {
  dt_resolver_t *r;
  int ok;
} worker_t;

static void *worker(void *arg) {
  worker_t *w = arg;
  static const char *names[] = {"www.dt.test", "both.dt.test", "c1.dt.test"};
  for (int i = 0; i < 60; i++) {
    dt_addr_t addrs[4];
    size_t n;
    if (dt_resolver_lookup_addrs(w->r, names[i % 3], AF_UNSPEC, 5000, addrs, 4,
                                 &n) == DT_OK &&
        n >= 1) {
      w->ok++;
    }
  }
  return NULL;
}

/* One resolver shared by several threads. */
static void test_shared_between_threads(void **state) {
  fixture_t *f = *state;
  dt_resolver_t *r = one(f);
  pthread_t t[4];
  worker_t w[4];
  for (int i = 0; i < 4; i++) {
    w[i].r = r;
    w[i].ok = 0;
    assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(w[i].ok, 60);
  }
  dt_resolver_stats_t st;
  dt_resolver_get_stats(r, &st);
  assert_int_equal(st.queries_udp, 4 * 60 * 2);
  assert_int_equal(st.replies_accepted, 4 * 60 * 2);
  dt_resolver_free(r);
}

static void test_literals_and_bad_input(void **state) {
  fixture_t *f = *state;
  dt_resolver_t *r = one(f);
  dt_addr_t addrs[2];
  size_t n = 0;
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "192.0.2.7", AF_UNSPEC, -1, addrs, 2, &n),
      DT_OK);
  assert_int_equal(n, 1);
  assert_int_equal(addrs[0].addr.ss_family, AF_INET);
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "2001:db8::7", AF_UNSPEC, -1, addrs, 2, &n),
      DT_OK);
  assert_int_equal(addrs[0].addr.ss_family, AF_INET6);
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "2001:db8::7", AF_INET, -1, addrs, 2, &n),
      DT_ENODATA);
  assert_int_equal(fakedns_total(f->srv, FAKEDNS_UDP), 0);

  dt_answer_t *a = NULL;
  char longname[300];
  memset(longname, 'a', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = '\0';
  assert_int_equal(dt_resolver_query(r, longname, DT_TYPE_A, 0, -1, &a),
                   DT_EBADNAME);
  assert_int_equal(dt_resolver_query(r, "a..b", DT_TYPE_A, 0, -1, &a),
                   DT_EBADNAME);
  assert_int_equal(dt_resolver_query(r, NULL, DT_TYPE_A, 0, -1, &a), DT_EINVAL);
  assert_int_equal(dt_resolver_query(NULL, "x", DT_TYPE_A, 0, -1, &a),
                   DT_EINVAL);
  assert_null(a);
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "a..b", AF_UNSPEC, -1, addrs, 2, &n),
      DT_EBADNAME);
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "x.test", AF_UNIX, -1, addrs, 2, &n),
      DT_EINVAL);
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "x.test", AF_UNSPEC, -1, addrs, 0, &n),
      DT_EINVAL);
  assert_int_equal(fakedns_total(f->srv, FAKEDNS_UDP), 0);
  dt_resolver_free(r);

  static const char *bad_servers[] = {
      "",       "300.1.1.1",  "1.2.3.4:0", "1.2.3.4:x",    "[::1",
      "[::1]x", "::1%nosuch", "host.test", "1.2.3.4:65536"};
  for (size_t i = 0; i < sizeof(bad_servers) / sizeof(bad_servers[0]); i++) {
    dt_resolver_opts_t o;
    dt_resolver_opts_init(&o);
    o.servers = &bad_servers[i];
    o.nservers = 1;
    o.hosts = "";
    o.cache = false; /* the query engine itself; the cache has its own tests */
    dt_resolver_t *bad = NULL;
    assert_int_equal(dt_resolver_new(&o, &bad), DT_EINVAL);
    assert_null(bad);
  }
  dt_resolver_free(NULL);
}

static void write_file(const char *path, const char *text) {
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  fclose(fp);
}

static void test_resolv_conf_and_hosts(void **state) {
  fixture_t *f = *state;
  char dir[] = "/tmp/dt-resolver-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char conf[128], hosts[128], text[512];
  snprintf(conf, sizeof(conf), "%s/resolv.conf", dir);
  snprintf(hosts, sizeof(hosts), "%s/hosts", dir);
  /* resolv.conf cannot carry a port, so no query goes to the server it
   * names: only hosts-file answers are asked of this resolver. */
  snprintf(text, sizeof(text),
           "nameserver 127.0.0.1\nsearch a.test\noptions ndots:3 timeout:1 "
           "attempts:1\n");
  write_file(conf, text);
  write_file(hosts, "192.0.2.99 pinned.test pinned\n"
                    "2001:db8::99 pinned.test\n");
  fake_now_us = dt__now_us();
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  o.resolv_conf = conf;
  o.hosts = hosts;
  o.clock_us = fake_clock;
  dt_resolver_t *r = NULL;
  assert_int_equal(dt_resolver_new(&o, &r), DT_OK);
  dt_addr_t addrs[4];
  size_t n = 0;
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "PINNED.test.", AF_UNSPEC, -1, addrs, 4, &n),
      DT_OK);
  assert_int_equal(n, 2);
  assert_int_equal(addrs[0].addr.ss_family, AF_INET6);
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "pinned", AF_INET, -1, addrs, 4, &n), DT_OK);
  assert_int_equal(n, 1);
  assert_int_equal(((struct sockaddr_in *)&addrs[0].addr)->sin_addr.s_addr,
                   inet_addr("192.0.2.99"));
  /* A change is seen once a second has passed, not before. */
  write_file(hosts, "192.0.2.100 pinned.test\n");
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "pinned.test", AF_INET, -1, addrs, 4, &n),
      DT_OK);
  assert_int_equal(((struct sockaddr_in *)&addrs[0].addr)->sin_addr.s_addr,
                   inet_addr("192.0.2.99"));
  fake_now_us += 1100000;
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "pinned.test", AF_INET, -1, addrs, 4, &n),
      DT_OK);
  assert_int_equal(((struct sockaddr_in *)&addrs[0].addr)->sin_addr.s_addr,
                   inet_addr("192.0.2.100"));
  dt_resolver_stats_t st;
  dt_resolver_get_stats(r, &st);
  assert_int_equal(st.hosts_hits, 4);
  assert_int_equal(st.queries_udp, 0);
  dt_resolver_free(r);

  /* Explicit servers ignore resolv.conf; a hosts entry still wins. */
  const char *s[] = {f->addr};
  o.servers = s;
  o.nservers = 1;
  o.clock_us = NULL;
  assert_int_equal(dt_resolver_new(&o, &r), DT_OK);
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "www.dt.test", AF_INET, -1, addrs, 4, &n),
      DT_OK);
  assert_int_equal(n, 2);
  dt_resolver_free(r);

  /* A missing resolv.conf falls back to loopback servers, as glibc. */
  o.servers = NULL;
  o.nservers = 0;
  snprintf(conf, sizeof(conf), "%s/missing.conf", dir);
  o.resolv_conf = conf;
  assert_int_equal(dt_resolver_new(&o, &r), DT_OK);
  dt_resolver_free(r);
  unlink(hosts);
  snprintf(conf, sizeof(conf), "%s/resolv.conf", dir);
  unlink(conf);
  rmdir(dir);
}

/* poll(), never select(): descriptors above 1024 must work. */
static void test_high_descriptors(void **state) {
  fixture_t *f = *state;
  struct rlimit rl;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_cur < 2048) {
    rlim_t want = rl.rlim_max < 2048 ? rl.rlim_max : 2048;
    rl.rlim_cur = want;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur < 1200) {
    skip(); /* hard limit too low on this machine */
  }
  int fds[1100];
  for (int i = 0; i < 1100; i++) {
    fds[i] = open("/dev/null", O_RDONLY);
    assert_true(fds[i] >= 0);
  }
  dt_resolver_t *r = one(f);
  dt_addr_t addrs[4];
  size_t n = 0;
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "both.dt.test", AF_UNSPEC, -1, addrs, 4, &n),
      DT_OK);
  assert_int_equal(n, 2);
  dt_resolver_free(r);
  for (int i = 0; i < 1100; i++) {
    close(fds[i]);
  }
}

static void test_ipv6_server(void **state) {
  fixture_t *f = *state;
  if (!fakedns_has_ipv6(f->srv)) {
    skip();
  }
  char addr[64];
  snprintf(addr, sizeof(addr), "[::1]:%u", (unsigned)fakedns_port(f->srv));
  const char *s[] = {addr};
  dt_resolver_t *r = resolver_with(s, 1, 1000, 1);
  dt_answer_t *a = NULL;
  assert_int_equal(dt_resolver_query(r, "c3.dt.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  assert_int_equal(a->server.ss_family, AF_INET6);
  dt_answer_free(a);
  assert_int_equal(
      dt_resolver_query(r, "c3.dt.test", DT_TYPE_A, DT_QUERY_TCP, -1, &a),
      DT_OK);
  dt_answer_free(a);
  dt_resolver_free(r);
}

/* Every allocation in turn fails: a clean DT_ENOMEM, no leak, and the
 * resolver works afterwards. */
static void test_out_of_memory(void **state) {
  fixture_t *f = *state;
  const char *s[] = {f->addr};
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  o.servers = s;
  o.nservers = 1;
  o.hosts = "";
  o.cache = false; /* the query engine itself; the cache has its own tests */
  for (uint64_t n = 1;; n++) {
    dt_resolver_t *r = NULL;
    dt__alloc_fail_at(n);
    dt_status_t st = dt_resolver_new(&o, &r);
    dt__alloc_reset_counts();
    if (st == DT_OK) {
      dt_resolver_free(r);
      break;
    }
    assert_int_equal(st, DT_ENOMEM);
    assert_true(n < 100);
  }
  dt_resolver_t *r = one(f);
  for (uint64_t n = 1;; n++) {
    dt_answer_t *a = NULL;
    dt__alloc_fail_at(n);
    dt_status_t st = dt_resolver_query(r, "c1.dt.test", DT_TYPE_A, 0, -1, &a);
    dt__alloc_reset_counts();
    if (st == DT_OK) {
      dt_answer_free(a);
      break;
    }
    assert_int_equal(st, DT_ENOMEM);
    assert_true(n < 100);
  }
  for (uint64_t n = 1;; n++) {
    dt_addr_t addrs[4];
    size_t cnt;
    dt__alloc_fail_at(n);
    dt_status_t st = dt_resolver_lookup_addrs(r, "both.dt.test", AF_UNSPEC, -1,
                                              addrs, 4, &cnt);
    dt__alloc_reset_counts();
    if (st == DT_OK) {
      break;
    }
    assert_int_equal(st, DT_ENOMEM);
    assert_true(n < 100);
  }
  dt_answer_t *a = NULL;
  assert_int_equal(dt_resolver_query(r, "c1.dt.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  dt_answer_free(a);
  dt_resolver_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_record_types, reset),
      cmocka_unit_test_setup(test_cname_chain, reset),
      cmocka_unit_test_setup(test_negative_answers, reset),
      cmocka_unit_test_setup(test_truncated_retries_over_tcp, reset),
      cmocka_unit_test_setup(test_spoofed_replies_dropped, reset),
      cmocka_unit_test_setup(test_dns0x20, reset),
      cmocka_unit_test_setup(test_garbage_survived, reset),
      cmocka_unit_test_setup(test_dropped_query_retried, reset),
      cmocka_unit_test_setup(test_failover_dead_and_blackholed, reset),
      cmocka_unit_test_setup(test_failed_server_recovers, reset),
      cmocka_unit_test_setup(test_servfail_and_refused_fail_over, reset),
      cmocka_unit_test_setup(test_no_reply_times_out, reset),
      cmocka_unit_test_setup(test_search_list_and_ndots, reset),
      cmocka_unit_test_setup(test_edns_fallback, reset),
      cmocka_unit_test_setup(test_a_and_aaaa_in_flight_together, reset),
      cmocka_unit_test_setup(test_rotate, reset),
      cmocka_unit_test_setup(test_shared_between_threads, reset),
      cmocka_unit_test_setup(test_literals_and_bad_input, reset),
      cmocka_unit_test_setup(test_resolv_conf_and_hosts, reset),
      cmocka_unit_test_setup(test_high_descriptors, reset),
      cmocka_unit_test_setup(test_ipv6_server, reset),
      cmocka_unit_test_setup(test_out_of_memory, reset),
  };
  return cmocka_run_group_tests_name("resolver", tests, setup, teardown);
}
