/* The resolver and the dialer on a bad network: loss and delay from tc
 * netem on the loopback of a private network namespace. Run only through
 * tests/netem.sh, which makes the namespace: this program rewrites the
 * qdisc of lo wherever it runs, so it refuses to start anywhere else. */
#include "config.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "dialtone.h"
#include "fake/fakedns.h"

static fakedns_t *srv;
static char server[64];

/* Sets the qdisc of this namespace's lo; "" removes it. */
static void netem(const char *spec) {
  char cmd[256];
  if (spec[0] == '\0') {
    snprintf(cmd, sizeof(cmd), "tc qdisc del dev lo root 2>/dev/null");
    (void)system(cmd);
    return;
  }
  snprintf(cmd, sizeof(cmd), "tc qdisc replace dev lo root netem %s", spec);
  assert_int_equal(system(cmd), 0);
}

static int setup(void **state) {
  (void)state;
  if (fakedns_new(NULL, &srv) != DT_OK) {
    return -1;
  }
  char line[128];
  for (int i = 0; i < 40; i++) {
    snprintf(line, sizeof(line), "n%d.netem.test. 60 IN A 192.0.2.%d", i,
             i + 1);
    fakedns_add(srv, line);
  }
  fakedns_add(srv, "dual.netem.test. 60 IN A 127.0.0.1");
  fakedns_add(srv, "dual.netem.test. 60 IN AAAA ::1");
  if (fakedns_start(srv) != DT_OK) {
    return -1;
  }
  snprintf(server, sizeof(server), "127.0.0.1:%u", (unsigned)fakedns_port(srv));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  netem("");
  fakedns_free(srv);
  return 0;
}

static dt_resolver_t *resolver(int timeout_ms, int attempts) {
  const char *s[] = {server};
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  o.servers = s;
  o.nservers = 1;
  o.hosts = "";
  o.cache = false;
  o.timeout_ms = timeout_ms;
  o.attempts = attempts;
  dt_resolver_t *r = NULL;
  assert_int_equal(dt_resolver_new(&o, &r), DT_OK);
  return r;
}

/* A quarter of all packets lost, queries and replies alike: every name
 * still resolves, through retries. One try succeeds with probability
 * 0.75^2; twenty failing in a row is a 1 in 15 million event. */
static void test_retries_under_loss(void **state) {
  (void)state;
  netem("loss 25%");
  dt_resolver_t *r = resolver(100, 20);
  char name[64];
  for (int i = 0; i < 40; i++) {
    snprintf(name, sizeof(name), "n%d.netem.test", i);
    dt_answer_t *a = NULL;
    assert_int_equal(dt_resolver_query(r, name, DT_TYPE_A, 0, -1, &a), DT_OK);
    assert_int_equal(a->nanswer, 1);
    dt_answer_free(a);
  }
  dt_resolver_stats_t st;
  dt_resolver_get_stats(r, &st);
  print_message("40 names at 25%% loss: %llu queries, %llu timeouts\n",
                (unsigned long long)st.queries_udp,
                (unsigned long long)st.timeouts);
  assert_true(st.timeouts > 0);
  assert_int_equal(st.queries_udp, 40 + st.timeouts);
  dt_resolver_free(r);
  netem("");
}

/* 150 ms each way: a 100 ms try deadline never sees a reply and the
 * query times out after its tries; a 1 s one waits the round trip out. */
static void test_delay(void **state) {
  (void)state;
  netem("delay 150ms");
  dt_resolver_t *r = resolver(100, 2);
  dt_answer_t *a = NULL;
  uint64_t t0 = dt__now_us();
  assert_int_equal(dt_resolver_query(r, "n1.netem.test", DT_TYPE_A, 0, -1, &a),
                   DT_ETIMEDOUT);
  uint64_t spent = dt__now_us() - t0;
  assert_true(spent >= 190000 && spent < 1000000);
  dt_resolver_free(r);
  r = resolver(1000, 1);
  t0 = dt__now_us();
  assert_int_equal(dt_resolver_query(r, "n1.netem.test", DT_TYPE_A, 0, -1, &a),
                   DT_OK);
  spent = dt__now_us() - t0;
  print_message("round trip at 150 ms each way: %llu ms\n",
                (unsigned long long)(spent / 1000));
  assert_true(spent >= 290000);
  dt_answer_free(a);
  dt_resolver_free(r);
  netem("");
}

/* RFC 8305 under latency: 200 ms each way makes a connect take 400 ms,
 * longer than the 250 ms attempt delay, so IPv4 starts while IPv6 is
 * still in flight, and IPv6, first and first to finish, wins; the IPv4
 * attempt is canceled. The names come from DNS over the same slow lo. */
static void test_happy_eyeballs_latency(void **state) {
  (void)state;
  int l6 = -1, l4 = -1;
  if (dt_listen(NULL, "::1", 0, &l6) != DT_OK) {
    skip(); /* no IPv6 loopback in this namespace */
  }
  uint16_t port;
  assert_int_equal(dt_listen_get_port(l6, &port), DT_OK);
  assert_int_equal(dt_listen(NULL, "127.0.0.1", port, &l4), DT_OK);
  netem("delay 200ms");
  dt_resolver_t *r = resolver(2000, 1);
  dt_dial_opts_t o;
  dt_dial_opts_init(&o);
  o.resolver = r;
  dt_dialer_t *d = NULL;
  assert_int_equal(dt_dialer_new(&o, &d), DT_OK);
  dt_dial_report_t rep;
  int fd = -1;
  assert_int_equal(dt_dial(d, "dual.netem.test", port, 10000, &fd, &rep),
                   DT_OK);
  close(fd);
  print_message("dial: dns %llu ms, %zu attempts, winner %d, total %llu ms\n",
                (unsigned long long)(rep.dns_us / 1000), rep.nattempts,
                rep.winner, (unsigned long long)(rep.total_us / 1000));
  assert_int_equal(rep.family, AF_INET6);
  assert_int_equal(rep.nattempts, 2);
  assert_int_equal(rep.winner, 0);
  assert_int_equal(rep.attempts[1].addr.ss_family, AF_INET);
  assert_int_equal(rep.attempts[1].status, DT_ECANCELED);
  uint64_t gap = rep.attempts[1].start_us - rep.attempts[0].start_us;
  assert_true(gap >= 240000 && gap < 400000);
  assert_true(rep.dns_us >= 390000);
  dt_dialer_free(d);
  dt_resolver_free(r);
  netem("");
  close(l4);
  close(l6);
}

/* True when this process runs in the namespace tests/netem.sh named: the
 * one place where changing lo's qdisc touches nothing else. */
static bool in_private_namespace(void) {
  const char *ns = getenv("DT_NETEM_NS");
  char path[256];
  struct stat mine, named;
  if (ns == NULL || ns[0] == '\0' || strchr(ns, '/') != NULL) {
    return false;
  }
  snprintf(path, sizeof(path), "/run/netns/%s", ns);
  return stat("/proc/self/ns/net", &mine) == 0 && stat(path, &named) == 0 &&
         mine.st_ino == named.st_ino && mine.st_dev == named.st_dev;
}

int main(void) {
  if (!in_private_namespace()) {
    printf("SKIP: test_netem changes lo's qdisc: run it through "
           "tests/netem.sh, in its own network namespace\n");
    return 77;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_retries_under_loss),
      cmocka_unit_test(test_delay),
      cmocka_unit_test(test_happy_eyeballs_latency),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
