/* The two questions of an address lookup leave together in one sendmmsg(2)
 * on the lookup's shared UDP socket (lib/rquery.c dt__share_flush), and a
 * batch the kernel takes only in part falls back to one send(2) per
 * remaining question (lib/transport.c dt__exchange_send_batch).
 *
 * The lookups run against the fake DNS server on loopback; the partial
 * sends use an AF_UNIX datagram socketpair whose peer queue is filled, so
 * the kernel refuses the second message of a batch deterministically. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "dialtone.h"
#include "fake/fakedns.h"
#include "resolver_int.h"
#include "transport.h"

static const char *zone[] = {
    "dt.test. 3600 IN SOA ns.dt.test. admin.dt.test. 1 7200 900 1209600 60",
    "both.dt.test. 60 IN A 192.0.2.30",
    "both.dt.test. 60 IN AAAA 2001:db8::30",
    "v4.dt.test. 60 IN A 192.0.2.31",
};

static fakedns_t *srv;
static char server[64];

static int setup(void **state) {
  (void)state;
  assert_int_equal(fakedns_new(NULL, &srv), DT_OK);
  assert_int_equal(fakedns_start(srv), DT_OK);
  snprintf(server, sizeof(server), "127.0.0.1:%u", (unsigned)fakedns_port(srv));
  for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]); i++) {
    assert_int_equal(fakedns_add(srv, zone[i]), DT_OK);
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  fakedns_free(srv);
  return 0;
}

static dt_resolver_t *resolver(void) {
  const char *s[] = {server};
  dt_resolver_opts_t o;
  dt_resolver_opts_init(&o);
  o.servers = s;
  o.nservers = 1;
  o.hosts = "";
  o.cache = false; /* every lookup goes to the server */
  o.timeout_ms = 5000;
  o.attempts = 1;
  dt_resolver_t *r = NULL;
  assert_int_equal(dt_resolver_new(&o, &r), DT_OK);
  return r;
}

static uint64_t pairs(dt_resolver_t *r) {
  return __atomic_load_n(&r->udp_pairs, __ATOMIC_RELAXED);
}

/* ---- lookups against the fake server ------------------------------------ */

static void test_pair_in_one_call(void **state) {
  (void)state;
  fakedns_reset_stats(srv);
  dt_resolver_t *r = resolver();
  for (int i = 0; i < 3; i++) {
    dt_addr_t addrs[4];
    size_t n = 0;
    assert_int_equal(dt_resolver_lookup_addrs(r, "both.dt.test", AF_UNSPEC, -1,
                                              addrs, 4, &n),
                     DT_OK);
    assert_int_equal(n, 2);
    /* IPv6 first, as before. */
    assert_int_equal(addrs[0].addr.ss_family, AF_INET6);
    assert_int_equal(addrs[1].addr.ss_family, AF_INET);
  }
  assert_int_equal(pairs(r), 3);
  assert_int_equal(
      fakedns_count(srv, "both.dt.test", DT_TYPE_AAAA, FAKEDNS_UDP), 3);
  assert_int_equal(fakedns_count(srv, "both.dt.test", DT_TYPE_A, FAKEDNS_UDP),
                   3);
  dt_resolver_stats_t st;
  dt_resolver_get_stats(r, &st);
  /* One query counted per question, however many system calls sent it. */
  assert_int_equal(st.queries_udp, 6);
  assert_int_equal(st.replies_accepted, 6);
  assert_int_equal(st.queries_tcp, 0);
  dt_resolver_free(r);
}

/* One family asks one question: nothing to pair, it goes alone. */
static void test_single_family_alone(void **state) {
  (void)state;
  fakedns_reset_stats(srv);
  dt_resolver_t *r = resolver();
  dt_addr_t addrs[4];
  size_t n = 0;
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "v4.dt.test", AF_INET, -1, addrs, 4, &n),
      DT_OK);
  assert_int_equal(n, 1);
  assert_int_equal(pairs(r), 0);
  dt_resolver_stats_t st;
  dt_resolver_get_stats(r, &st);
  assert_int_equal(st.queries_udp, 1);
  assert_int_equal(fakedns_count(srv, "v4.dt.test", DT_TYPE_AAAA, FAKEDNS_UDP),
                   0);
  dt_resolver_free(r);
}

/* A paired lookup whose AAAA has no records still settles as before. */
static void test_pair_nodata_half(void **state) {
  (void)state;
  fakedns_reset_stats(srv);
  dt_resolver_t *r = resolver();
  dt_addr_t addrs[4];
  size_t n = 0;
  assert_int_equal(
      dt_resolver_lookup_addrs(r, "v4.dt.test", AF_UNSPEC, -1, addrs, 4, &n),
      DT_OK);
  assert_int_equal(n, 1);
  assert_int_equal(addrs[0].addr.ss_family, AF_INET);
  assert_int_equal(pairs(r), 1);
  assert_int_equal(fakedns_count(srv, "v4.dt.test", DT_TYPE_AAAA, FAKEDNS_UDP),
                   1);
  dt_resolver_free(r);
}

/* ---- the batch helper on a socketpair ------------------------------------ */

static const uint8_t query_a[12] = {0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
static const uint8_t query_b[13] = {0x56, 0x78, 1, 0, 0, 1, 0,
                                    0,    0,    0, 0, 0, 9};

typedef struct {
  int fd[2];
  dt_ex_counters_t counters;
  dt_exchange_t ex[2];
  dt_exchange_t *exp[2];
} pair_t;

static void pair_open(pair_t *p, bool fill) {
  memset(p, 0, sizeof(*p));
  assert_int_equal(
      socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p->fd),
      0);
  /* A peer address for the exchanges; nothing reads it when sending. */
  struct sockaddr_storage peer;
  memset(&peer, 0, sizeof(peer));
  peer.ss_family = AF_UNIX;
  if (fill) {
    /* Fill the peer's queue until the kernel refuses. */
    uint8_t junk[sizeof(query_b)] = {0};
    int sent = 0;
    while (send(p->fd[0], junk, sizeof(junk), MSG_NOSIGNAL) > 0) {
      assert_true(++sent < 1000000);
    }
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
  }
  assert_int_equal(dt__exchange_prepare_on(
                       &p->ex[0], p->fd[0], (struct sockaddr *)&peer,
                       sizeof(peer), query_a, sizeof(query_a), &p->counters),
                   DT_OK);
  assert_int_equal(dt__exchange_prepare_on(
                       &p->ex[1], p->fd[0], (struct sockaddr *)&peer,
                       sizeof(peer), query_b, sizeof(query_b), &p->counters),
                   DT_OK);
  p->exp[0] = &p->ex[0];
  p->exp[1] = &p->ex[1];
}

static void pair_close(pair_t *p) {
  dt__exchange_close(&p->ex[0]);
  dt__exchange_close(&p->ex[1]);
  close(p->fd[0]);
  close(p->fd[1]);
}

/* Reads datagrams until the one the batch sent last; returns its length. */
static ssize_t drain_last(int fd, uint8_t *buf, size_t len) {
  ssize_t last = -1, n;
  while ((n = recv(fd, buf, len, 0)) >= 0) {
    last = n;
  }
  return last;
}

static void test_batch_both(void **state) {
  (void)state;
  pair_t p;
  pair_open(&p, false);
  dt_status_t st[2];
  assert_int_equal(dt__exchange_send_batch(p.exp, 2, st), 2);
  assert_int_equal(st[0], DT_OK);
  assert_int_equal(st[1], DT_OK);
  assert_int_equal(p.counters.queries_udp, 2);
  assert_int_equal(p.ex[0].state, DT_EX_UDP_WAIT);
  assert_int_equal(p.ex[1].state, DT_EX_UDP_WAIT);
  uint8_t buf[64];
  assert_int_equal(recv(p.fd[1], buf, sizeof(buf), 0), sizeof(query_a));
  assert_memory_equal(buf, query_a, sizeof(query_a));
  assert_int_equal(recv(p.fd[1], buf, sizeof(buf), 0), sizeof(query_b));
  assert_memory_equal(buf, query_b, sizeof(query_b));
  pair_close(&p);
}

/* The kernel takes the first message only: the second goes through the
 * single send, which fails the same way, and is reported and closed. */
static void test_batch_first_only(void **state) {
  (void)state;
  pair_t p;
  pair_open(&p, true);
  uint8_t buf[64];
  /* Room for exactly one more datagram. */
  assert_true(recv(p.fd[1], buf, sizeof(buf), 0) > 0);
  dt_status_t st[2];
  assert_int_equal(dt__exchange_send_batch(p.exp, 2, st), 1);
  assert_int_equal(st[0], DT_OK);
  assert_int_equal(st[1], dt_status_from_errno(EAGAIN));
  assert_int_equal(p.counters.queries_udp, 1);
  assert_int_equal(p.ex[0].state, DT_EX_UDP_WAIT);
  assert_int_equal(p.ex[1].state, DT_EX_IDLE);
  assert_int_equal(p.ex[1].fd, -1);
  assert_int_equal(drain_last(p.fd[1], buf, sizeof(buf)), sizeof(query_a));
  assert_memory_equal(buf, query_a, sizeof(query_a));
  pair_close(&p);
}

/* The first message does not go: sendmmsg fails as a whole and each
 * question gets the error its own send gives. */
static void test_batch_none(void **state) {
  (void)state;
  pair_t p;
  pair_open(&p, true);
  dt_status_t st[2];
  assert_int_equal(dt__exchange_send_batch(p.exp, 2, st), 0);
  assert_int_equal(st[0], dt_status_from_errno(EAGAIN));
  assert_int_equal(st[1], dt_status_from_errno(EAGAIN));
  assert_int_equal(p.counters.queries_udp, 0);
  assert_int_equal(p.ex[0].fd, -1);
  assert_int_equal(p.ex[1].fd, -1);
  pair_close(&p);
}

/* A batch of one is a plain send(2). */
static void test_batch_of_one(void **state) {
  (void)state;
  pair_t p;
  pair_open(&p, false);
  dt_status_t st[1];
  assert_int_equal(dt__exchange_send_batch(p.exp, 1, st), 0);
  assert_int_equal(st[0], DT_OK);
  assert_int_equal(p.counters.queries_udp, 1);
  uint8_t buf[64];
  assert_int_equal(recv(p.fd[1], buf, sizeof(buf), 0), sizeof(query_a));
  pair_close(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pair_in_one_call),
      cmocka_unit_test(test_single_family_alone),
      cmocka_unit_test(test_pair_nodata_half),
      cmocka_unit_test(test_batch_both),
      cmocka_unit_test(test_batch_first_only),
      cmocka_unit_test(test_batch_none),
      cmocka_unit_test(test_batch_of_one),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
