/* The resolver against a real authoritative server (NSD) on loopback,
 * serving tests/fake/test.zone. Skips (exit 77) when nsd is not installed. */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dialtone.h"
#include "fake/authsrv.h"

static authsrv_t *srv;
static char server4[64];
static char server6[64];

static int setup(void **state) {
  (void)state;
  if (authsrv_start(&srv) != AUTHSRV_OK) {
    fprintf(stderr, "nsd failed to start: %s\n", authsrv_last_error());
    return -1;
  }
  snprintf(server4, sizeof(server4), "127.0.0.1:%u",
           (unsigned)authsrv_port(srv));
  snprintf(server6, sizeof(server6), "[::1]:%u", (unsigned)authsrv_port(srv));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  authsrv_stop_free(srv);
  return 0;
}

static dt_resolver_t *resolver(const char *server, bool edns) {
  const char *s[] = {server};
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  o.servers = s;
  o.nservers = 1;
  o.hosts = "";
  o.timeout_ms = 2000;
  o.attempts = 2;
  o.edns = edns;
  dt_resolver_t *r = NULL;
  assert_int_equal(dt_resolver_new(&o, &r), DT_OK);
  return r;
}

static dt_answer_t *ask(dt_resolver_t *r, const char *name, uint16_t type,
                        dt_status_t want) {
  dt_answer_t *a = NULL;
  assert_int_equal(dt_resolver_query(r, name, type, 0, -1, &a), DT_OK);
  assert_int_equal(dt_answer_status(a), want);
  return a;
}

static bool has_data(const dt_answer_t *a, uint16_t type, const char *data) {
  for (size_t i = 0; i < a->nanswer; i++) {
    if (a->answer[i].type == type && strcmp(a->answer[i].data, data) == 0) {
      return true;
    }
  }
  return false;
}

static void test_record_types(void **state) {
  (void)state;
  dt_resolver_t *r = resolver(server4, true);
  dt_answer_t *a = ask(r, "www.dialtone.test", DT_TYPE_A, DT_OK);
  assert_true(has_data(a, DT_TYPE_A, "192.0.2.1"));
  assert_true(a->flags & DT_FLAG_AA);
  assert_int_equal(a->ttl, 3600);
  dt_answer_free(a);
  a = ask(r, "www.dialtone.test", DT_TYPE_AAAA, DT_OK);
  assert_true(has_data(a, DT_TYPE_AAAA, "2001:db8::1"));
  dt_answer_free(a);
  a = ask(r, "dialtone.test", DT_TYPE_MX, DT_OK);
  assert_int_equal(a->nanswer, 2);
  assert_true(has_data(a, DT_TYPE_MX, "10 mail.dialtone.test."));
  dt_answer_free(a);
  a = ask(r, "txt.dialtone.test", DT_TYPE_TXT, DT_OK);
  assert_true(has_data(a, DT_TYPE_TXT, "\"v=spf1 -all\""));
  assert_true(
      has_data(a, DT_TYPE_TXT, "\"hello world\" \"say \\\"hi\\\"\" \"a;b c\""));
  dt_answer_free(a);
  a = ask(r, "_http._tcp.dialtone.test", DT_TYPE_SRV, DT_OK);
  assert_int_equal(a->nanswer, 3);
  assert_true(has_data(a, DT_TYPE_SRV, "10 60 8080 www.dialtone.test."));
  dt_answer_free(a);
  a = ask(r, "dialtone.test", DT_TYPE_CAA, DT_OK);
  assert_true(has_data(a, DT_TYPE_CAA, "0 issue \"ca.example.net\""));
  dt_answer_free(a);
  a = ask(r, "dialtone.test", DT_TYPE_SOA, DT_OK);
  assert_int_equal(a->answer[0].ttl, 3600);
  dt_answer_free(a);
  a = ask(r, "dialtone.test", DT_TYPE_NS, DT_OK);
  assert_true(has_data(a, DT_TYPE_NS, "ns1.dialtone.test."));
  dt_answer_free(a);
  char rev[128];
  assert_int_equal(dt_name_reverse("192.0.2.1", rev, sizeof(rev)), DT_OK);
  a = ask(r, rev, DT_TYPE_PTR, DT_OK);
  assert_true(has_data(a, DT_TYPE_PTR, "www.dialtone.test."));
  dt_answer_free(a);
  assert_int_equal(dt_name_reverse("2001:db8::1", rev, sizeof(rev)), DT_OK);
  a = ask(r, rev, DT_TYPE_PTR, DT_OK);
  assert_true(has_data(a, DT_TYPE_PTR, "www.dialtone.test."));
  dt_answer_free(a);
  a = ask(r, "ttl0.dialtone.test", DT_TYPE_A, DT_OK);
  assert_int_equal(a->ttl, 0);
  dt_answer_free(a);
  dt_resolver_free(r);
}

static void test_cname_chain_and_negatives(void **state) {
  (void)state;
  dt_resolver_t *r = resolver(server4, true);
  dt_answer_t *a = ask(r, "hop1.dialtone.test", DT_TYPE_A, DT_OK);
  assert_int_equal(a->nanswer, 4);
  assert_string_equal(a->canonical, "end.dialtone.test.");
  assert_int_equal(a->ttl, 20); /* the smallest in the chain */
  dt_answer_free(a);
  a = ask(r, "dangling.dialtone.test", DT_TYPE_A, DT_ENXDOMAIN);
  assert_int_equal(a->nauthority, 1);
  dt_answer_free(a);
  a = ask(r, "nothere.dialtone.test", DT_TYPE_A, DT_ENXDOMAIN);
  assert_int_equal(a->ttl, 300); /* min(SOA TTL, MINIMUM) */
  assert_int_equal(a->authority[0].type, DT_TYPE_SOA);
  dt_answer_free(a);
  a = ask(r, "txtonly.dialtone.test", DT_TYPE_A, DT_ENODATA);
  assert_int_equal(a->ttl, 300);
  dt_answer_free(a);
  a = ask(r, "outside.example", DT_TYPE_A, DT_EREFUSED);
  dt_answer_free(a);

  dt_addr_t addrs[16];
  size_t n;
  assert_int_equal(dt_resolver_lookup_addrs(r, "multi.dialtone.test", AF_UNSPEC,
                                            -1, addrs, 16, &n),
                   DT_OK);
  assert_int_equal(n, 6);
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(addrs[i].addr.ss_family, AF_INET6);
    assert_int_equal(addrs[i + 3].addr.ss_family, AF_INET);
  }
  assert_int_equal(dt_resolver_lookup_addrs(r, "v4only.dialtone.test", AF_INET6,
                                            -1, addrs, 16, &n),
                   DT_ENODATA);
  assert_int_equal(dt_resolver_lookup_addrs(r, "v4only.dialtone.test",
                                            AF_UNSPEC, -1, addrs, 16, &n),
                   DT_OK);
  assert_int_equal(n, 1);
  assert_int_equal(dt_resolver_lookup_addrs(r, "nothere.dialtone.test",
                                            AF_UNSPEC, -1, addrs, 16, &n),
                   DT_ENXDOMAIN);
  dt_resolver_free(r);
}

static void test_truncation_to_tcp(void **state) {
  (void)state;
  /* Without EDNS the 40 A records do not fit in 512 bytes. */
  dt_resolver_t *r = resolver(server4, false);
  dt_answer_t *a = ask(r, "big.dialtone.test", DT_TYPE_A, DT_OK);
  assert_int_equal(a->nanswer, 40);
  assert_int_equal(a->transport, DT_TRANSPORT_TCP);
  dt_answer_free(a);
  dt_resolver_stats_t st;
  dt_resolver_get_stats(r, &st);
  assert_int_equal(st.truncated, 1);
  assert_int_equal(st.queries_tcp, 1);
  dt_resolver_free(r);
  /* With EDNS they do; the 1.4 KB TXT set still needs TCP. */
  r = resolver(server4, true);
  a = ask(r, "big.dialtone.test", DT_TYPE_A, DT_OK);
  assert_int_equal(a->transport, DT_TRANSPORT_UDP);
  assert_int_equal(a->nanswer, 40);
  dt_answer_free(a);
  a = ask(r, "bigtxt.dialtone.test", DT_TYPE_TXT, DT_OK);
  assert_int_equal(a->transport, DT_TRANSPORT_TCP);
  assert_int_equal(a->nanswer, 12);
  dt_answer_free(a);
  dt_resolver_free(r);
}

static void test_ipv6_transport(void **state) {
  (void)state;
  if (!authsrv_has_ipv6(srv)) {
    skip();
  }
  dt_resolver_t *r = resolver(server6, true);
  dt_answer_t *a = ask(r, "www.dialtone.test", DT_TYPE_AAAA, DT_OK);
  assert_int_equal(a->server.ss_family, AF_INET6);
  dt_answer_free(a);
  dt_answer_t *b = NULL;
  assert_int_equal(dt_resolver_query(r, "big.dialtone.test", DT_TYPE_A,
                                     DT_QUERY_TCP, -1, &b),
                   DT_OK);
  assert_int_equal(b->nanswer, 40);
  dt_answer_free(b);
  dt_resolver_free(r);
}

int main(void) {
  if (!authsrv_available()) {
    printf("%s\n", AUTHSRV_SKIP_LINE);
    return AUTHSRV_EXIT_SKIP;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_record_types),
      cmocka_unit_test(test_cname_chain_and_negatives),
      cmocka_unit_test(test_truncation_to_tcp),
      cmocka_unit_test(test_ipv6_transport),
  };
  return cmocka_run_group_tests_name("integration", tests, setup, teardown);
}
