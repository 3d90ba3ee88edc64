/* Tests of the fake DNS server, through plain sockets and ldns only: the
 * resolver that will rely on this server must not be needed to trust it.
 * Timing windows are wide because the test machines are small and shared. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ldns/ldns.h>

#include "fake/fakedns.h"

static const char base_zone[] =
    "example. 300 IN SOA ns.example. host.example. 1 3600 600 86400 120\n"
    "www.example. 300 IN A 192.0.2.1\n"
    "www.example. 300 IN A 192.0.2.2\n"
    "www.example. 600 IN AAAA 2001:db8::1\n"
    "zero.example. 0 IN A 192.0.2.9\n"
    "alias.example. 60 IN CNAME mid.example.\n"
    "mid.example. 60 IN CNAME www.example.\n"
    "loop1.example. 60 IN CNAME loop2.example.\n"
    "loop2.example. 60 IN CNAME loop1.example.\n"
    "dangling.example. 60 IN CNAME missing.example.\n";

static fakedns_t *srv;
static uint16_t next_id = 0x1000;
static pid_t child = -1;

static int setup(void **state) {
  (void)state;
  if (fakedns_new(NULL, &srv) != DT_OK) {
    return -1;
  }
  unsigned line = 0;
  if (fakedns_load(srv, base_zone, &line) != DT_OK) {
    fprintf(stderr, "base zone line %u\n", line);
    return -1;
  }
  return fakedns_start(srv) == DT_OK ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  fakedns_free(srv);
  srv = NULL;
  if (child > 0) {
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    child = -1;
  }
  return 0;
}

/* --- plain-socket client ---------------------------------------------------
 */

static uint64_t ms_since(uint64_t t0_us) {
  return (fakedns_now_us() - t0_us) / 1000u;
}

static size_t build_query(const char *name, uint16_t type, bool edns,
                          uint16_t id, uint8_t *out, size_t cap) {
  ldns_rdf *d = ldns_dname_new_frm_str(name);
  assert_non_null(d);
  ldns_pkt *q = ldns_pkt_query_new(d, type, LDNS_RR_CLASS_IN, LDNS_RD);
  assert_non_null(q);
  ldns_pkt_set_id(q, id);
  if (edns) {
    ldns_pkt_set_edns_udp_size(q, 1232);
  }
  uint8_t *wire = NULL;
  size_t len = 0;
  assert_int_equal(ldns_pkt2wire(&wire, q, &len), LDNS_STATUS_OK);
  assert_true(len <= cap);
  memcpy(out, wire, len);
  free(wire);
  ldns_pkt_free(q);
  return len;
}

static socklen_t server_addr(int family, struct sockaddr_storage *ss) {
  socklen_t len = 0;
  assert_int_equal(fakedns_sockaddr(srv, family, ss, &len), DT_OK);
  return len;
}

/* Unconnected on purpose: a connected socket would let the kernel drop
 * datagrams from other ports, hiding the wrong-port spoof. */
static int udp_open(int family) {
  int fd = socket(family, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  return fd;
}

static void udp_send(int fd, int family, const uint8_t *q, size_t len) {
  struct sockaddr_storage ss;
  socklen_t sl = server_addr(family, &ss);
  assert_int_equal(sendto(fd, q, len, 0, (struct sockaddr *)&ss, sl),
                   (ssize_t)len);
}

static uint16_t udp_query(int fd, int family, const char *name, uint16_t type,
                          bool edns) {
  uint8_t q[512];
  uint16_t id = next_id++;
  size_t len = build_query(name, type, edns, id, q, sizeof(q));
  udp_send(fd, family, q, len);
  return id;
}

/* One datagram, or -1 after timeout_ms; *port is its source port. */
static ssize_t udp_recv(int fd, uint8_t *buf, size_t cap, int timeout_ms,
                        uint16_t *port) {
  struct pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) {
    return -1;
  }
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  ssize_t n = recvfrom(fd, buf, cap, 0, (struct sockaddr *)&ss, &sl);
  assert_true(n >= 0);
  if (port != NULL) {
    *port = ss.ss_family == AF_INET
                ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  }
  return n;
}

static int tcp_open(int family) {
  int fd = socket(family, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_storage ss;
  socklen_t sl = server_addr(family, &ss);
  assert_int_equal(connect(fd, (struct sockaddr *)&ss, sl), 0);
  return fd;
}

static void send_all(int fd, const uint8_t *p, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    assert_true(n > 0);
    p += n;
    len -= (size_t)n;
  }
}

static uint16_t tcp_query(int fd, const char *name, uint16_t type, bool edns) {
  uint8_t q[2 + 512];
  uint16_t id = next_id++;
  size_t len = build_query(name, type, edns, id, q + 2, sizeof(q) - 2);
  q[0] = (uint8_t)(len >> 8);
  q[1] = (uint8_t)len;
  send_all(fd, q, len + 2);
  return id;
}

/* Reads exactly len bytes: 1 done, 0 EOF, -1 timeout. */
static int read_exact(int fd, uint8_t *p, size_t len, uint64_t deadline_us) {
  while (len > 0) {
    uint64_t now = fakedns_now_us();
    if (now >= deadline_us) {
      return -1;
    }
    struct pollfd pf = {fd, POLLIN, 0};
    if (poll(&pf, 1, (int)((deadline_us - now) / 1000u) + 1) <= 0) {
      return -1;
    }
    ssize_t n = recv(fd, p, len, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      return 0;
    }
    assert_true(n > 0);
    p += n;
    len -= (size_t)n;
  }
  return 1;
}

/* One frame: its length, -1 on timeout, -2 on EOF. */
static ssize_t tcp_recv(int fd, uint8_t *buf, size_t cap, int timeout_ms) {
  uint64_t deadline = fakedns_now_us() + (uint64_t)timeout_ms * 1000u;
  uint8_t h[2];
  int r = read_exact(fd, h, 2, deadline);
  if (r <= 0) {
    return r == 0 ? -2 : -1;
  }
  size_t len = (size_t)h[0] << 8 | h[1];
  assert_true(len <= cap);
  r = read_exact(fd, buf, len, deadline);
  if (r <= 0) {
    return r == 0 ? -2 : -1;
  }
  return (ssize_t)len;
}

static ldns_pkt *parse(const uint8_t *buf, ssize_t len) {
  ldns_pkt *p = NULL;
  assert_true(len > 0);
  assert_int_equal(ldns_wire2pkt(&p, buf, (size_t)len), LDNS_STATUS_OK);
  return p;
}

/* Asks once and returns the first reply (its ID checked), NULL when none
 * arrived within timeout_ms. */
static ldns_pkt *ask(int family, fakedns_transport_t t, const char *name,
                     uint16_t type, bool edns, int timeout_ms) {
  static uint8_t buf[65536];
  ssize_t n;
  uint16_t id;
  if (t == FAKEDNS_UDP) {
    int fd = udp_open(family);
    id = udp_query(fd, family, name, type, edns);
    n = udp_recv(fd, buf, sizeof(buf), timeout_ms, NULL);
    close(fd);
  } else {
    int fd = tcp_open(family);
    id = tcp_query(fd, name, type, edns);
    n = tcp_recv(fd, buf, sizeof(buf), timeout_ms);
    close(fd);
  }
  if (n < 0) {
    return NULL;
  }
  ldns_pkt *p = parse(buf, n);
  assert_int_equal(ldns_pkt_id(p), id);
  return p;
}

static ldns_pkt *ask4(const char *name, uint16_t type) {
  ldns_pkt *p = ask(AF_INET, FAKEDNS_UDP, name, type, false, 2000);
  assert_non_null(p);
  return p;
}

/* True when some record of the list prints with text in it. */
static bool list_has(const ldns_rr_list *l, const char *text) {
  for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++) {
    char *s = ldns_rr2str(ldns_rr_list_rr(l, i));
    bool hit = s != NULL && strstr(s, text) != NULL;
    free(s);
    if (hit) {
      return true;
    }
  }
  return false;
}

static size_t count_type(const ldns_rr_list *l, ldns_rr_type t) {
  size_t n = 0;
  for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++) {
    n += ldns_rr_get_type(ldns_rr_list_rr(l, i)) == t;
  }
  return n;
}

static void set_beh(const char *name, uint16_t type,
                    const fakedns_behaviour_t *b) {
  assert_int_equal(fakedns_set_behaviour(srv, name, type, b), DT_OK);
}

/* --- answers ----------------------------------------------------------------
 */

static void test_records_and_ttls(void **state) {
  (void)state;
  ldns_pkt *r = ask4("www.example.", LDNS_RR_TYPE_A);
  assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOERROR);
  assert_true(ldns_pkt_qr(r));
  assert_true(ldns_pkt_aa(r));
  assert_true(ldns_pkt_rd(r));
  assert_false(ldns_pkt_tc(r));
  assert_int_equal(ldns_pkt_qdcount(r), 1);
  const ldns_rr_list *an = ldns_pkt_answer(r);
  assert_int_equal(ldns_rr_list_rr_count(an), 2);
  for (size_t i = 0; i < 2; i++) {
    assert_int_equal(ldns_rr_ttl(ldns_rr_list_rr(an, i)), 300);
    assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(an, i)), LDNS_RR_TYPE_A);
  }
  assert_true(list_has(an, "192.0.2.1"));
  assert_true(list_has(an, "192.0.2.2"));
  assert_int_equal(ldns_pkt_nscount(r), 0);
  ldns_pkt_free(r);

  r = ask4("www.example.", LDNS_RR_TYPE_AAAA);
  an = ldns_pkt_answer(r);
  assert_int_equal(ldns_rr_list_rr_count(an), 1);
  assert_int_equal(ldns_rr_ttl(ldns_rr_list_rr(an, 0)), 600);
  assert_true(list_has(an, "2001:db8::1"));
  ldns_pkt_free(r);

  /* TTL 0 is served as 0, not replaced by a default. */
  r = ask4("zero.example.", LDNS_RR_TYPE_A);
  assert_int_equal(ldns_pkt_ancount(r), 1);
  assert_int_equal(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(r), 0)), 0);
  ldns_pkt_free(r);

  /* Added while running, several of one type, and ANY returns all. */
  assert_int_equal(fakedns_add(srv, "new.example. 30 IN TXT \"hello\""), DT_OK);
  assert_int_equal(fakedns_add(srv, "new.example. 30 IN TXT \"world\""), DT_OK);
  assert_int_equal(fakedns_add(srv, "new.example. 30 IN MX 10 mx.example."),
                   DT_OK);
  r = ask4("new.example.", LDNS_RR_TYPE_TXT);
  assert_int_equal(ldns_pkt_ancount(r), 2);
  ldns_pkt_free(r);
  r = ask4("new.example.", LDNS_RR_TYPE_ANY);
  assert_int_equal(ldns_pkt_ancount(r), 3);
  ldns_pkt_free(r);
  assert_int_equal(fakedns_add(srv, "bad.example. 30 IN A not-an-address"),
                   DT_EINVAL);
}

static void test_cname_chain(void **state) {
  (void)state;
  ldns_pkt *r = ask4("alias.example.", LDNS_RR_TYPE_A);
  assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOERROR);
  const ldns_rr_list *an = ldns_pkt_answer(r);
  assert_int_equal(ldns_rr_list_rr_count(an), 4);
  /* The chain in order, then the data at its end. */
  assert_true(list_has(an, "alias.example.\t60\tIN\tCNAME\tmid.example."));
  assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(an, 0)),
                   LDNS_RR_TYPE_CNAME);
  assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(an, 1)),
                   LDNS_RR_TYPE_CNAME);
  assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(an, 2)), LDNS_RR_TYPE_A);
  assert_true(list_has(an, "mid.example.\t60\tIN\tCNAME\twww.example."));
  ldns_pkt_free(r);

  /* Asking for the CNAME itself does not follow it. */
  r = ask4("alias.example.", LDNS_RR_TYPE_CNAME);
  assert_int_equal(ldns_pkt_ancount(r), 1);
  ldns_pkt_free(r);

  /* A loop yields a bounded, looping answer. */
  r = ask4("loop1.example.", LDNS_RR_TYPE_A);
  assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOERROR);
  assert_int_equal(ldns_pkt_ancount(r), 8);
  assert_int_equal(count_type(ldns_pkt_answer(r), LDNS_RR_TYPE_CNAME), 8);
  ldns_pkt_free(r);

  /* A chain into a missing name: NXDOMAIN with the CNAME and the SOA. */
  r = ask4("dangling.example.", LDNS_RR_TYPE_A);
  assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NXDOMAIN);
  assert_int_equal(ldns_pkt_ancount(r), 1);
  assert_int_equal(count_type(ldns_pkt_authority(r), LDNS_RR_TYPE_SOA), 1);
  ldns_pkt_free(r);
}

static void test_nxdomain_soa(void **state) {
  (void)state;
  ldns_pkt *r = ask4("nope.example.", LDNS_RR_TYPE_A);
  assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NXDOMAIN);
  assert_int_equal(ldns_pkt_ancount(r), 0);
  assert_int_equal(ldns_pkt_nscount(r), 1);
  const ldns_rr *soa = ldns_rr_list_rr(ldns_pkt_authority(r), 0);
  assert_int_equal(ldns_rr_get_type(soa), LDNS_RR_TYPE_SOA);
  /* Served as scripted: TTL 300, MINIMUM 120, for the client to combine. */
  assert_int_equal(ldns_rr_ttl(soa), 300);
  assert_int_equal(ldns_rdf2native_int32(ldns_rr_rdf(soa, 6)), 120);
  ldns_pkt_free(r);

  /* Outside every scripted zone there is no SOA to give. */
  r = ask4("elsewhere.test.", LDNS_RR_TYPE_A);
  assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NXDOMAIN);
  assert_int_equal(ldns_pkt_nscount(r), 0);
  ldns_pkt_free(r);
}

static void test_nodata_soa(void **state) {
  (void)state;
  ldns_pkt *r = ask4("www.example.", LDNS_RR_TYPE_MX);
  assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOERROR);
  assert_int_equal(ldns_pkt_ancount(r), 0);
  assert_int_equal(count_type(ldns_pkt_authority(r), LDNS_RR_TYPE_SOA), 1);
  ldns_pkt_free(r);
}

static void test_forced_rcodes(void **state) {
  (void)state;
  static const int rcodes[] = {LDNS_RCODE_SERVFAIL, LDNS_RCODE_REFUSED,
                               LDNS_RCODE_FORMERR, LDNS_RCODE_NOTIMPL,
                               LDNS_RCODE_NXDOMAIN};
  for (size_t i = 0; i < sizeof(rcodes) / sizeof(rcodes[0]); i++) {
    fakedns_behaviour_t b;
    fakedns_behaviour_init(&b);
    b.rcode = rcodes[i];
    set_beh("www.example.", LDNS_RR_TYPE_A, &b);
    for (int t = FAKEDNS_UDP; t <= FAKEDNS_TCP; t++) {
      ldns_pkt *r = ask(AF_INET, (fakedns_transport_t)t, "www.example.",
                        LDNS_RR_TYPE_A, false, 2000);
      assert_non_null(r);
      assert_int_equal(ldns_pkt_get_rcode(r), rcodes[i]);
      assert_int_equal(ldns_pkt_ancount(r), 0);
      assert_int_equal(ldns_pkt_qdcount(r), 1);
      size_t soas = count_type(ldns_pkt_authority(r), LDNS_RR_TYPE_SOA);
      assert_int_equal(soas, rcodes[i] == LDNS_RCODE_NXDOMAIN ? 1 : 0);
      ldns_pkt_free(r);
    }
  }
  /* Only that type: AAAA still answers. */
  ldns_pkt *r = ask4("www.example.", LDNS_RR_TYPE_AAAA);
  assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOERROR);
  ldns_pkt_free(r);

  /* Type 0 covers the other types of the name; the A behaviour wins. */
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.rcode = LDNS_RCODE_REFUSED;
  set_beh("www.example.", 0, &b);
  r = ask4("www.example.", LDNS_RR_TYPE_AAAA);
  assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_REFUSED);
  ldns_pkt_free(r);
  r = ask4("www.example.", LDNS_RR_TYPE_A);
  assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NXDOMAIN);
  ldns_pkt_free(r);

  /* Removing the behaviour restores the data. */
  set_beh("www.example.", LDNS_RR_TYPE_A, NULL);
  set_beh("www.example.", 0, NULL);
  r = ask4("www.example.", LDNS_RR_TYPE_A);
  assert_int_equal(ldns_pkt_ancount(r), 2);
  ldns_pkt_free(r);

  b.rcode = 16;
  assert_int_equal(fakedns_set_behaviour(srv, "www.example.", 1, &b),
                   DT_EINVAL);
}

/* --- timing -----------------------------------------------------------------
 */

static void test_delay(void **state) {
  (void)state;
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.delay_ms = 700;
  set_beh("www.example.", LDNS_RR_TYPE_AAAA, &b);

  uint8_t buf[4096];
  int slow = udp_open(AF_INET), fast = udp_open(AF_INET);
  uint64_t t0 = fakedns_now_us();
  uint16_t slow_id =
      udp_query(slow, AF_INET, "www.example.", LDNS_RR_TYPE_AAAA, false);
  uint16_t fast_id =
      udp_query(fast, AF_INET, "www.example.", LDNS_RR_TYPE_A, false);
  /* The other name is served while the slow reply waits. */
  ssize_t n = udp_recv(fast, buf, sizeof(buf), 3000, NULL);
  assert_true(n > 0);
  assert_true(ms_since(t0) < 600);
  ldns_pkt *r = parse(buf, n);
  assert_int_equal(ldns_pkt_id(r), fast_id);
  ldns_pkt_free(r);
  n = udp_recv(slow, buf, sizeof(buf), 3000, NULL);
  uint64_t took = ms_since(t0);
  assert_true(n > 0);
  assert_true(took >= 700 && took < 1700);
  r = parse(buf, n);
  assert_int_equal(ldns_pkt_id(r), slow_id);
  assert_int_equal(ldns_pkt_ancount(r), 1);
  ldns_pkt_free(r);
  close(slow);
  close(fast);

  /* On one TCP connection the fast reply overtakes the slow one. */
  int fd = tcp_open(AF_INET);
  t0 = fakedns_now_us();
  slow_id = tcp_query(fd, "www.example.", LDNS_RR_TYPE_AAAA, false);
  fast_id = tcp_query(fd, "www.example.", LDNS_RR_TYPE_A, false);
  n = tcp_recv(fd, buf, sizeof(buf), 3000);
  assert_true(ms_since(t0) < 600);
  r = parse(buf, n);
  assert_int_equal(ldns_pkt_id(r), fast_id);
  ldns_pkt_free(r);
  n = tcp_recv(fd, buf, sizeof(buf), 3000);
  took = ms_since(t0);
  assert_true(took >= 700 && took < 1700);
  r = parse(buf, n);
  assert_int_equal(ldns_pkt_id(r), slow_id);
  ldns_pkt_free(r);
  close(fd);
}

static void test_drop_first(void **state) {
  (void)state;
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.drop_first = 2;
  set_beh("www.example.", LDNS_RR_TYPE_A, &b);
  assert_null(ask(AF_INET, FAKEDNS_UDP, "www.example.", 1, false, 300));
  assert_null(ask(AF_INET, FAKEDNS_UDP, "www.example.", 1, false, 300));
  ldns_pkt *r = ask4("www.example.", LDNS_RR_TYPE_A);
  assert_int_equal(ldns_pkt_ancount(r), 2);
  ldns_pkt_free(r);
  assert_int_equal(fakedns_count(srv, "www.example.", 1, FAKEDNS_UDP), 3);

  /* Setting it again restarts the count; TCP queries count too. */
  b.drop_first = 1;
  set_beh("www.example.", LDNS_RR_TYPE_A, &b);
  assert_null(ask(AF_INET, FAKEDNS_TCP, "www.example.", 1, false, 300));
  r = ask(AF_INET, FAKEDNS_TCP, "www.example.", 1, false, 2000);
  assert_non_null(r);
  ldns_pkt_free(r);
}

static void test_hold_and_arrival(void **state) {
  (void)state;
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.hold_until = LDNS_RR_TYPE_AAAA;
  set_beh("www.example.", LDNS_RR_TYPE_A, &b);
  b.hold_until = LDNS_RR_TYPE_A;
  set_beh("www.example.", LDNS_RR_TYPE_AAAA, &b);

  uint8_t buf[4096];
  uint64_t t0 = fakedns_now_us();
  int a = udp_open(AF_INET), aaaa = udp_open(AF_INET);
  uint16_t a_id = udp_query(a, AF_INET, "www.example.", 1, false);
  assert_int_equal(fakedns_wait(srv, "www.example.", 1, 1, 2000), DT_OK);
  /* Held: nothing comes while AAAA has not been asked. */
  assert_true(udp_recv(a, buf, sizeof(buf), 300, NULL) < 0);
  uint16_t aaaa_id =
      udp_query(aaaa, AF_INET, "www.example.", LDNS_RR_TYPE_AAAA, false);
  ssize_t n = udp_recv(a, buf, sizeof(buf), 2000, NULL);
  ldns_pkt *r = parse(buf, n);
  assert_int_equal(ldns_pkt_id(r), a_id);
  ldns_pkt_free(r);
  n = udp_recv(aaaa, buf, sizeof(buf), 2000, NULL);
  r = parse(buf, n);
  assert_int_equal(ldns_pkt_id(r), aaaa_id);
  ldns_pkt_free(r);
  close(a);
  close(aaaa);

  fakedns_stats_t sa, saaaa;
  assert_int_equal(fakedns_get_stats(srv, "www.example.", 1, &sa), DT_OK);
  assert_int_equal(
      fakedns_get_stats(srv, "www.example.", LDNS_RR_TYPE_AAAA, &saaaa), DT_OK);
  assert_true(sa.first_us >= t0);
  assert_true(saaaa.first_us >= sa.first_us + 300000);
  assert_true(saaaa.first_us <= fakedns_now_us());
  assert_int_equal(sa.first_us, sa.last_us);

  /* Waiting for what never comes times out. */
  t0 = fakedns_now_us();
  assert_int_equal(fakedns_wait(srv, "www.example.", LDNS_RR_TYPE_MX, 1, 200),
                   DT_ETIMEDOUT);
  assert_true(ms_since(t0) >= 190);
  assert_int_equal(fakedns_wait(srv, "www.example.", 1, 2, 100), DT_ETIMEDOUT);
  assert_int_equal(fakedns_wait(srv, "WWW.example.", 1, 1, 0), DT_OK);
}

/* --- truncation and TCP ------------------------------------------------------
 */

static void test_truncation(void **state) {
  (void)state;
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.truncate = true;
  set_beh("www.example.", LDNS_RR_TYPE_A, &b);
  ldns_pkt *r = ask4("www.example.", LDNS_RR_TYPE_A);
  assert_true(ldns_pkt_tc(r));
  assert_int_equal(ldns_pkt_ancount(r), 0);
  ldns_pkt_free(r);
  r = ask(AF_INET, FAKEDNS_TCP, "www.example.", 1, false, 2000);
  assert_non_null(r);
  assert_false(ldns_pkt_tc(r));
  assert_int_equal(ldns_pkt_ancount(r), 2);
  ldns_pkt_free(r);
  b.tc_keep = 1;
  set_beh("www.example.", LDNS_RR_TYPE_A, &b);
  r = ask4("www.example.", LDNS_RR_TYPE_A);
  assert_true(ldns_pkt_tc(r));
  assert_int_equal(ldns_pkt_ancount(r), 1);
  ldns_pkt_free(r);

  /* Too big for 512 bytes: cut and TC, like a real server; EDNS room and
   * TCP take it whole. */
  char line[128];
  for (int i = 0; i < 60; i++) {
    snprintf(line, sizeof(line), "big.example. 60 IN A 198.51.100.%d", i);
    assert_int_equal(fakedns_add(srv, line), DT_OK);
  }
  r = ask4("big.example.", LDNS_RR_TYPE_A);
  assert_true(ldns_pkt_tc(r));
  assert_true(ldns_pkt_ancount(r) > 0 && ldns_pkt_ancount(r) < 60);
  assert_true(ldns_pkt_size(r) <= 512);
  ldns_pkt_free(r);
  r = ask(AF_INET, FAKEDNS_UDP, "big.example.", 1, true, 2000);
  assert_non_null(r);
  assert_false(ldns_pkt_tc(r));
  assert_int_equal(ldns_pkt_ancount(r), 60);
  ldns_pkt_free(r);
  r = ask(AF_INET, FAKEDNS_TCP, "big.example.", 1, false, 2000);
  assert_non_null(r);
  assert_int_equal(ldns_pkt_ancount(r), 60);
  ldns_pkt_free(r);
}

static void test_tcp_framing(void **state) {
  (void)state;
  uint8_t buf[65536];
  /* Two queries sent one byte at a time, with pauses so the server sees
   * partial frames and partial length prefixes. */
  uint8_t q[2 * (2 + 512)];
  size_t len = 0;
  uint16_t ids[2];
  for (int i = 0; i < 2; i++) {
    ids[i] = next_id++;
    size_t ql = build_query(i == 0 ? "www.example." : "alias.example.", 1,
                            false, ids[i], q + len + 2, 512);
    q[len] = (uint8_t)(ql >> 8);
    q[len + 1] = (uint8_t)ql;
    len += 2 + ql;
  }
  int fd = tcp_open(AF_INET);
  for (size_t i = 0; i < len; i++) {
    send_all(fd, q + i, 1);
    if (i % 16 == 0) {
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, NULL);
    }
  }
  for (int i = 0; i < 2; i++) {
    ssize_t n = tcp_recv(fd, buf, sizeof(buf), 2000);
    ldns_pkt *r = parse(buf, n);
    assert_int_equal(ldns_pkt_id(r), ids[i]);
    assert_int_equal(ldns_pkt_ancount(r), i == 0 ? 2 : 4);
    ldns_pkt_free(r);
  }
  close(fd);

  /* A reply far bigger than the server's send buffer: it must finish its
   * partial writes as the client drains. */
  fakedns_opts_t o;
  fakedns_opts_init(&o);
  o.tcp_sndbuf = 4096;
  fakedns_t *small = NULL;
  assert_int_equal(fakedns_new(&o, &small), DT_OK);
  char line[128];
  for (int i = 0; i < 3000; i++) {
    snprintf(line, sizeof(line), "huge.example. 60 IN A 10.%d.%d.%d",
             i >> 16 & 255, i >> 8 & 255, i & 255);
    assert_int_equal(fakedns_add(small, line), DT_OK);
  }
  assert_int_equal(fakedns_start(small), DT_OK);
  fakedns_t *saved = srv;
  srv = small;
  fd = tcp_open(AF_INET);
  uint16_t id = tcp_query(fd, "huge.example.", 1, false);
  struct timespec ts = {0, 100000000};
  nanosleep(&ts, NULL); /* let the server fill its buffer first */
  ssize_t n = tcp_recv(fd, buf, sizeof(buf), 10000);
  assert_true(n > 40000);
  ldns_pkt *r = parse(buf, n);
  assert_int_equal(ldns_pkt_id(r), id);
  assert_int_equal(ldns_pkt_ancount(r), 3000);
  ldns_pkt_free(r);
  /* And a query after it on the same connection. */
  id = tcp_query(fd, "huge.example.", 1, false);
  n = tcp_recv(fd, buf, sizeof(buf), 10000);
  r = parse(buf, n);
  assert_int_equal(ldns_pkt_id(r), id);
  ldns_pkt_free(r);
  close(fd);
  srv = saved;
  fakedns_free(small);

  /* Several connections at once, each with a query in flight. */
  enum { NCONN = 6 };
  int fds[NCONN];
  uint16_t cid[NCONN];
  for (int i = 0; i < NCONN; i++) {
    fds[i] = tcp_open(AF_INET);
    cid[i] = tcp_query(fds[i], "www.example.", LDNS_RR_TYPE_AAAA, false);
  }
  for (int i = NCONN - 1; i >= 0; i--) {
    n = tcp_recv(fds[i], buf, sizeof(buf), 2000);
    r = parse(buf, n);
    assert_int_equal(ldns_pkt_id(r), cid[i]);
    ldns_pkt_free(r);
  }
  fakedns_totals_t t;
  fakedns_get_totals(srv, &t);
  assert_int_equal(t.tcp_accepted, 1 + NCONN);

  /* Stopping closes every connection cleanly: the clients read EOF. */
  fakedns_stop(srv);
  for (int i = 0; i < NCONN; i++) {
    assert_int_equal(tcp_recv(fds[i], buf, sizeof(buf), 2000), -2);
    close(fds[i]);
  }
  /* And the server can start again on the same port. */
  assert_int_equal(fakedns_start(srv), DT_OK);
  assert_int_equal(fakedns_start(srv), DT_EBUSY);
  r = ask(AF_INET, FAKEDNS_TCP, "www.example.", 1, false, 2000);
  assert_non_null(r);
  ldns_pkt_free(r);
}

static void test_tcp_close(void **state) {
  (void)state;
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.tcp_close = true;
  set_beh("www.example.", LDNS_RR_TYPE_A, &b);
  uint8_t buf[512];
  int fd = tcp_open(AF_INET);
  tcp_query(fd, "www.example.", 1, false);
  assert_int_equal(tcp_recv(fd, buf, sizeof(buf), 2000), -2);
  close(fd);
  /* UDP is not affected. */
  ldns_pkt *r = ask4("www.example.", LDNS_RR_TYPE_A);
  assert_int_equal(ldns_pkt_ancount(r), 2);
  ldns_pkt_free(r);
}

/* --- spoofs and junk --------------------------------------------------------
 */

static void test_wrong_id(void **state) {
  (void)state;
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.wrong_id = true;
  b.spoof_rr = "whatever. 300 IN A 198.51.100.66";
  set_beh("www.example.", LDNS_RR_TYPE_A, &b);
  uint8_t buf[4096];
  int fd = udp_open(AF_INET);
  uint16_t id = udp_query(fd, AF_INET, "www.example.", 1, false);
  ssize_t n = udp_recv(fd, buf, sizeof(buf), 2000, NULL);
  ldns_pkt *r = parse(buf, n);
  assert_int_not_equal(ldns_pkt_id(r), id);
  assert_int_equal(ldns_pkt_ancount(r), 1);
  assert_true(
      list_has(ldns_pkt_answer(r), "www.example.\t300\tIN\tA\t198.51.100.66"));
  ldns_pkt_free(r);
  n = udp_recv(fd, buf, sizeof(buf), 2000, NULL);
  r = parse(buf, n);
  assert_int_equal(ldns_pkt_id(r), id);
  assert_true(list_has(ldns_pkt_answer(r), "192.0.2.1"));
  ldns_pkt_free(r);
  close(fd);

  /* Over TCP: two frames on the connection, spoof first. */
  fd = tcp_open(AF_INET);
  id = tcp_query(fd, "www.example.", 1, false);
  n = tcp_recv(fd, buf, sizeof(buf), 2000);
  r = parse(buf, n);
  assert_int_not_equal(ldns_pkt_id(r), id);
  ldns_pkt_free(r);
  n = tcp_recv(fd, buf, sizeof(buf), 2000);
  r = parse(buf, n);
  assert_int_equal(ldns_pkt_id(r), id);
  ldns_pkt_free(r);
  close(fd);
}

static void test_wrong_question(void **state) {
  (void)state;
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.wrong_question = true;
  set_beh("www.example.", LDNS_RR_TYPE_A, &b);
  uint8_t buf[4096];
  int fd = udp_open(AF_INET);
  uint16_t id = udp_query(fd, AF_INET, "www.example.", 1, false);
  ssize_t n = udp_recv(fd, buf, sizeof(buf), 2000, NULL);
  ldns_pkt *r = parse(buf, n);
  assert_int_equal(ldns_pkt_id(r), id);
  assert_true(list_has(ldns_pkt_question(r), "x--spoof.www.example."));
  ldns_pkt_free(r);
  n = udp_recv(fd, buf, sizeof(buf), 2000, NULL);
  r = parse(buf, n);
  assert_int_equal(ldns_pkt_id(r), id);
  assert_false(list_has(ldns_pkt_question(r), "x--spoof"));
  assert_true(list_has(ldns_pkt_question(r), "www.example."));
  ldns_pkt_free(r);

  /* spoof_only: the genuine reply never comes. */
  b.spoof_only = true;
  set_beh("www.example.", LDNS_RR_TYPE_A, &b);
  udp_query(fd, AF_INET, "www.example.", 1, false);
  assert_true(udp_recv(fd, buf, sizeof(buf), 2000, NULL) > 0);
  assert_true(udp_recv(fd, buf, sizeof(buf), 300, NULL) < 0);
  close(fd);
}

static void test_wrong_port(void **state) {
  (void)state;
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.wrong_port = true;
  set_beh("www.example.", LDNS_RR_TYPE_A, &b);
  uint8_t buf[4096];
  uint16_t port = 0;
  int fd = udp_open(AF_INET);
  uint16_t id = udp_query(fd, AF_INET, "www.example.", 1, false);
  ssize_t n = udp_recv(fd, buf, sizeof(buf), 2000, &port);
  assert_int_not_equal(port, fakedns_port(srv));
  ldns_pkt *r = parse(buf, n);
  assert_int_equal(ldns_pkt_id(r), id); /* only the port gives it away */
  ldns_pkt_free(r);
  n = udp_recv(fd, buf, sizeof(buf), 2000, &port);
  assert_int_equal(port, fakedns_port(srv));
  r = parse(buf, n);
  assert_int_equal(ldns_pkt_id(r), id);
  ldns_pkt_free(r);

  b.spoof_only = true;
  set_beh("www.example.", LDNS_RR_TYPE_A, &b);
  udp_query(fd, AF_INET, "www.example.", 1, false);
  assert_true(udp_recv(fd, buf, sizeof(buf), 2000, &port) > 0);
  assert_int_not_equal(port, fakedns_port(srv));
  assert_true(udp_recv(fd, buf, sizeof(buf), 300, NULL) < 0);
  close(fd);
}

static void test_garbage(void **state) {
  (void)state;
  /* A reply whose question name points at itself: a compression loop. */
  static const uint8_t loop[] = {0, 0, 0x81, 0x80, 0,    1, 0, 0, 0,
                                 0, 0, 0,    0xc0, 0x0c, 0, 1, 0, 1};
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.garbage = FAKEDNS_GARBAGE_INSTEAD;
  b.garbage_bytes = loop;
  b.garbage_len = sizeof(loop);
  b.garbage_keep_id = true;
  set_beh("www.example.", LDNS_RR_TYPE_A, &b);
  uint8_t buf[4096];
  int fd = udp_open(AF_INET);
  uint16_t id = udp_query(fd, AF_INET, "www.example.", 1, false);
  ssize_t n = udp_recv(fd, buf, sizeof(buf), 2000, NULL);
  assert_int_equal(n, sizeof(loop));
  assert_int_equal(buf[0] << 8 | buf[1], id);
  assert_memory_equal(buf + 2, loop + 2, sizeof(loop) - 2);
  ldns_pkt *r = NULL;
  assert_int_not_equal(ldns_wire2pkt(&r, buf, (size_t)n), LDNS_STATUS_OK);
  assert_true(udp_recv(fd, buf, sizeof(buf), 300, NULL) < 0);

  /* Random junk before the genuine reply. */
  fakedns_behaviour_init(&b);
  b.garbage = FAKEDNS_GARBAGE_BEFORE;
  set_beh("www.example.", LDNS_RR_TYPE_AAAA, &b);
  id = udp_query(fd, AF_INET, "www.example.", LDNS_RR_TYPE_AAAA, false);
  n = udp_recv(fd, buf, sizeof(buf), 2000, NULL);
  assert_true(n >= 1 && n <= 512);
  n = udp_recv(fd, buf, sizeof(buf), 2000, NULL);
  r = parse(buf, n);
  assert_int_equal(ldns_pkt_id(r), id);
  assert_int_equal(ldns_pkt_ancount(r), 1);
  ldns_pkt_free(r);

  /* A fixed amount of random junk. */
  b.garbage = FAKEDNS_GARBAGE_INSTEAD;
  b.garbage_len = 7;
  set_beh("www.example.", LDNS_RR_TYPE_AAAA, &b);
  udp_query(fd, AF_INET, "www.example.", LDNS_RR_TYPE_AAAA, false);
  assert_int_equal(udp_recv(fd, buf, sizeof(buf), 2000, NULL), 7);
  close(fd);

  /* Over TCP the junk comes framed. */
  fd = tcp_open(AF_INET);
  tcp_query(fd, "www.example.", 1, false);
  n = tcp_recv(fd, buf, sizeof(buf), 2000);
  assert_int_equal(n, sizeof(loop));
  assert_memory_equal(buf + 2, loop + 2, sizeof(loop) - 2);
  close(fd);
}

static void test_edns(void **state) {
  (void)state;
  ldns_pkt *r = ask(AF_INET, FAKEDNS_UDP, "www.example.", 1, true, 2000);
  assert_non_null(r);
  assert_true(ldns_pkt_edns(r));
  assert_int_equal(ldns_pkt_edns_udp_size(r), 1232);
  ldns_pkt_free(r);
  r = ask4("www.example.", 1);
  assert_false(ldns_pkt_edns(r));
  ldns_pkt_free(r);

  fakedns_stats_t st;
  assert_int_equal(fakedns_get_stats(srv, "www.example.", 1, &st), DT_OK);
  assert_int_equal(st.udp, 2);
  assert_int_equal(st.edns, 1);
  assert_int_equal(st.last_edns_size, 0);
  assert_true(st.last_rd);

  /* A server that predates EDNS: answers, never with OPT. */
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.edns = FAKEDNS_EDNS_IGNORE;
  set_beh("www.example.", LDNS_RR_TYPE_A, &b);
  r = ask(AF_INET, FAKEDNS_UDP, "www.example.", 1, true, 2000);
  assert_non_null(r);
  assert_false(ldns_pkt_edns(r));
  assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOERROR);
  assert_int_equal(ldns_pkt_ancount(r), 2);
  ldns_pkt_free(r);

  /* One that chokes on OPT: FORMERR with EDNS, an answer without. */
  b.edns = FAKEDNS_EDNS_FORMERR;
  set_beh("www.example.", LDNS_RR_TYPE_A, &b);
  for (int t = FAKEDNS_UDP; t <= FAKEDNS_TCP; t++) {
    r = ask(AF_INET, (fakedns_transport_t)t, "www.example.", 1, true, 2000);
    assert_non_null(r);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_FORMERR);
    assert_false(ldns_pkt_edns(r));
    ldns_pkt_free(r);
    r = ask(AF_INET, (fakedns_transport_t)t, "www.example.", 1, false, 2000);
    assert_non_null(r);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOERROR);
    assert_int_equal(ldns_pkt_ancount(r), 2);
    ldns_pkt_free(r);
  }
  assert_int_equal(fakedns_get_stats(srv, "www.example.", 1, &st), DT_OK);
  assert_int_equal(st.edns, 4);
  fakedns_totals_t t;
  fakedns_get_totals(srv, &t);
  assert_int_equal(t.edns, 4);
}

static void test_black_hole(void **state) {
  (void)state;
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.black_hole = true;
  set_beh("www.example.", LDNS_RR_TYPE_A, &b);
  assert_null(ask(AF_INET, FAKEDNS_UDP, "www.example.", 1, false, 400));
  assert_null(ask(AF_INET, FAKEDNS_TCP, "www.example.", 1, false, 400));
  assert_int_equal(fakedns_count(srv, "www.example.", 1, FAKEDNS_UDP), 1);
  assert_int_equal(fakedns_count(srv, "www.example.", 1, FAKEDNS_TCP), 1);
}

static void test_default_behaviour(void **state) {
  (void)state;
  /* A dead server: everything REFUSED... */
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.rcode = LDNS_RCODE_REFUSED;
  assert_int_equal(fakedns_set_default(srv, &b), DT_OK);
  ldns_pkt *r = ask4("www.example.", 1);
  assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_REFUSED);
  ldns_pkt_free(r);
  r = ask4("nope.example.", LDNS_RR_TYPE_TXT);
  assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_REFUSED);
  ldns_pkt_free(r);
  /* ...except where a name has its own behaviour. */
  fakedns_behaviour_t normal;
  fakedns_behaviour_init(&normal);
  set_beh("www.example.", LDNS_RR_TYPE_AAAA, &normal);
  r = ask4("www.example.", LDNS_RR_TYPE_AAAA);
  assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOERROR);
  ldns_pkt_free(r);

  /* A black-holed server. */
  fakedns_behaviour_init(&b);
  b.black_hole = true;
  assert_int_equal(fakedns_set_default(srv, &b), DT_OK);
  assert_null(ask(AF_INET, FAKEDNS_UDP, "www.example.", 1, false, 300));
  assert_null(ask(AF_INET, FAKEDNS_TCP, "nope.example.", 1, false, 300));

  assert_int_equal(fakedns_set_default(srv, NULL), DT_OK);
  r = ask4("www.example.", 1);
  assert_int_equal(ldns_pkt_ancount(r), 2);
  ldns_pkt_free(r);
}

/* --- counters, malformed input, addresses -----------------------------------
 */

static void test_counters(void **state) {
  (void)state;
  uint8_t buf[4096];
  int u = udp_open(AF_INET);
  for (int i = 0; i < 2; i++) {
    udp_query(u, AF_INET, "www.example.", 1, i == 0);
    assert_true(udp_recv(u, buf, sizeof(buf), 2000, NULL) > 0);
  }
  udp_query(u, AF_INET, "www.example.", LDNS_RR_TYPE_AAAA, false);
  assert_true(udp_recv(u, buf, sizeof(buf), 2000, NULL) > 0);
  int t = tcp_open(AF_INET);
  for (int i = 0; i < 3; i++) {
    tcp_query(t, "www.example.", 1, true);
    assert_true(tcp_recv(t, buf, sizeof(buf), 2000) > 0);
  }
  close(t);
  /* Names are counted case-insensitively. */
  assert_int_equal(fakedns_count(srv, "WWW.Example.", 1, FAKEDNS_UDP), 2);
  assert_int_equal(fakedns_count(srv, "www.example.", 1, FAKEDNS_TCP), 3);
  assert_int_equal(
      fakedns_count(srv, "www.example.", LDNS_RR_TYPE_AAAA, FAKEDNS_UDP), 1);
  assert_int_equal(
      fakedns_count(srv, "www.example.", LDNS_RR_TYPE_AAAA, FAKEDNS_TCP), 0);
  assert_int_equal(fakedns_count(srv, "other.example.", 1, FAKEDNS_UDP), 0);
  fakedns_stats_t st;
  assert_int_equal(fakedns_get_stats(srv, "www.example", 1, &st), DT_OK);
  assert_int_equal(st.edns, 4);
  assert_int_equal(st.last_edns_size, 1232);
  assert_true(st.first_us > 0 && st.first_us < st.last_us);
  assert_int_equal(fakedns_total(srv, FAKEDNS_UDP), 3);
  assert_int_equal(fakedns_total(srv, FAKEDNS_TCP), 3);

  /* Junk is counted, answered FORMERR when it has a header, else dropped;
   * a non-QUERY opcode gets NOTIMP. */
  static const uint8_t junk[5] = {1, 2, 3, 4, 5};
  udp_send(u, AF_INET, junk, sizeof(junk));
  assert_true(udp_recv(u, buf, sizeof(buf), 300, NULL) < 0);
  static const uint8_t hdr[12] = {0xab, 0xcd, 0x01, 0, 0, 5, 0, 0, 0, 0, 0, 0};
  udp_send(u, AF_INET, hdr, sizeof(hdr));
  ssize_t n = udp_recv(u, buf, sizeof(buf), 2000, NULL);
  ldns_pkt *r = parse(buf, n);
  assert_int_equal(ldns_pkt_id(r), 0xabcd);
  assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_FORMERR);
  ldns_pkt_free(r);
  uint8_t q[512];
  size_t ql = build_query("www.example.", 1, false, 0x4242, q, sizeof(q));
  q[2] = (uint8_t)((q[2] & ~0x78) | (LDNS_PACKET_NOTIFY << 3));
  udp_send(u, AF_INET, q, ql);
  n = udp_recv(u, buf, sizeof(buf), 2000, NULL);
  r = parse(buf, n);
  assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOTIMPL);
  ldns_pkt_free(r);
  close(u);
  fakedns_totals_t tot;
  fakedns_get_totals(srv, &tot);
  assert_int_equal(tot.malformed, 2);
  assert_int_equal(tot.udp, 6);
  assert_int_equal(tot.tcp_accepted, 1);

  fakedns_reset_stats(srv);
  assert_int_equal(fakedns_get_stats(srv, "www.example.", 1, &st), DT_OK);
  assert_int_equal(st.udp + st.tcp + st.edns, 0);
  assert_int_equal(st.first_us, 0);
  fakedns_get_totals(srv, &tot);
  assert_int_equal(tot.udp + tot.tcp + tot.malformed + tot.edns, 0);
  assert_int_equal(fakedns_get_stats(srv, "bad..name", 1, &st), DT_EINVAL);
}

static void test_case_echo(void **state) {
  (void)state;
  ldns_pkt *r = ask4("wWw.ExAmPlE.", LDNS_RR_TYPE_A);
  char *q =
      ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(r), 0)));
  assert_string_equal(q, "wWw.ExAmPlE.");
  free(q);
  assert_int_equal(ldns_pkt_ancount(r), 2);
  char *o = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_answer(r), 0)));
  assert_string_equal(o, "wWw.ExAmPlE.");
  free(o);
  ldns_pkt_free(r);
  /* Scripted data in capitals matches lower-case questions too. */
  assert_int_equal(fakedns_add(srv, "UPPER.Example. 60 IN A 192.0.2.77"),
                   DT_OK);
  r = ask4("upper.example.", LDNS_RR_TYPE_A);
  assert_true(list_has(ldns_pkt_answer(r), "192.0.2.77"));
  ldns_pkt_free(r);
}

static void test_ipv6(void **state) {
  (void)state;
  if (!fakedns_has_ipv6(srv)) {
    print_message("::1 unavailable on this host: IPv6 part skipped\n");
    struct sockaddr_storage ss;
    socklen_t sl;
    assert_int_equal(fakedns_sockaddr(srv, AF_INET6, &ss, &sl),
                     DT_EAFNOSUPPORT);
    skip();
  }
  for (int t = FAKEDNS_UDP; t <= FAKEDNS_TCP; t++) {
    ldns_pkt *r = ask(AF_INET6, (fakedns_transport_t)t, "www.example.",
                      LDNS_RR_TYPE_AAAA, true, 2000);
    assert_non_null(r);
    assert_true(list_has(ldns_pkt_answer(r), "2001:db8::1"));
    ldns_pkt_free(r);
  }
  assert_int_equal(fakedns_count(srv, "www.example.", 28, FAKEDNS_UDP), 1);
  assert_int_equal(fakedns_count(srv, "www.example.", 28, FAKEDNS_TCP), 1);
  /* The wrong-port spoof works over IPv6 too. */
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.wrong_port = true;
  b.spoof_only = true;
  set_beh("www.example.", 28, &b);
  uint8_t buf[4096];
  uint16_t port = 0;
  int fd = udp_open(AF_INET6);
  udp_query(fd, AF_INET6, "www.example.", 28, false);
  assert_true(udp_recv(fd, buf, sizeof(buf), 2000, &port) > 0);
  assert_int_not_equal(port, fakedns_port(srv));
  close(fd);
}

static void test_ports(void **state) {
  (void)state;
  uint16_t port = fakedns_port(srv);
  assert_int_not_equal(port, 0);
  /* All four sockets share the port: none of them can be bound again. */
  int fams[2] = {AF_INET, AF_INET6};
  int types[2] = {SOCK_DGRAM, SOCK_STREAM};
  for (int f = 0; f < (fakedns_has_ipv6(srv) ? 2 : 1); f++) {
    for (int t = 0; t < 2; t++) {
      int fd = socket(fams[f], types[t], 0);
      struct sockaddr_storage ss;
      socklen_t sl = server_addr(fams[f], &ss);
      assert_int_equal(bind(fd, (struct sockaddr *)&ss, sl), -1);
      assert_int_equal(errno, EADDRINUSE);
      close(fd);
    }
  }
  fakedns_opts_t o;
  fakedns_opts_init(&o);
  o.port = port;
  fakedns_t *other = NULL;
  assert_int_equal(fakedns_new(&o, &other), DT_EADDRINUSE);
  assert_null(other);

  /* A fixed port that is free works. */
  fakedns_t *tmp = NULL;
  assert_int_equal(fakedns_new(NULL, &tmp), DT_OK);
  o.port = fakedns_port(tmp);
  o.ipv4_only = true;
  fakedns_free(tmp);
  assert_int_equal(fakedns_new(&o, &other), DT_OK);
  assert_int_equal(fakedns_port(other), o.port);
  assert_false(fakedns_has_ipv6(other));
  fakedns_free(other);
  fakedns_free(NULL);
}

static void test_high_descriptors(void **state) {
  (void)state;
  struct rlimit old, rl;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
  rl = old;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 1200) {
    print_message("RLIMIT_NOFILE hard limit %lu < 1200: skipped\n",
                  (unsigned long)rl.rlim_max);
    skip();
  }
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur < 1200) {
    rl.rlim_cur = 1200;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
  }
  /* Fill the descriptors below 1100, so the server's (and the clients')
   * land above FD_SETSIZE, where select() would break. */
  int dups[1100];
  int nd = 0;
  int nul = open("/dev/null", O_RDONLY);
  assert_true(nul >= 0);
  while (nd < 1100) {
    int fd = dup(nul);
    assert_true(fd >= 0);
    dups[nd++] = fd;
    if (fd >= 1099) {
      break;
    }
  }
  fakedns_t *high = NULL;
  assert_int_equal(fakedns_new(NULL, &high), DT_OK);
  assert_int_equal(fakedns_add(high, "hi.example. 1 IN A 192.0.2.3"), DT_OK);
  assert_int_equal(fakedns_start(high), DT_OK);
  fakedns_t *saved = srv;
  srv = high;
  ldns_pkt *r = ask(AF_INET, FAKEDNS_UDP, "hi.example.", 1, false, 2000);
  assert_non_null(r);
  ldns_pkt_free(r);
  r = ask(AF_INET, FAKEDNS_TCP, "hi.example.", 1, false, 2000);
  assert_non_null(r);
  assert_int_equal(ldns_pkt_ancount(r), 1);
  ldns_pkt_free(r);
  srv = saved;
  fakedns_free(high);
  for (int i = 0; i < nd; i++) {
    close(dups[i]);
  }
  close(nul);
  setrlimit(RLIMIT_NOFILE, &old);
}

/* --- zone text and the program ----------------------------------------------
 */

static void test_load_directives(void **state) {
  (void)state;
  static const char text[] =
      "; comment line\n"
      "\n"
      "  semi.example. 60 IN TXT \"a;b\" ; the ; in quotes stays\n"
      "slow.example. 60 IN A 192.0.2.5\n"
      ";! delay slow.example. A 400 ; trailing comment\n"
      ";! rcode refused.example. * REFUSED\n"
      ";! tc slow.example. AAAA 1\n"
      ";! garbage junk.example. A instead 0102ff keep-id\n"
      ";! spoof spoofed.example. A spoofed.example. 5 IN A 198.51.100.1\n"
      ";! wrong-id spoofed.example. A\n"
      ";! rcode notimp.example. A NOTIMP\n"
      "rel.example 60 IN A 192.0.2.44\r\n"; /* relative, CRLF */
  unsigned line = 99;
  assert_int_equal(fakedns_load(srv, text, &line), DT_OK);
  assert_int_equal(line, 0);
  ldns_pkt *r = ask4("rel.example.", LDNS_RR_TYPE_A);
  assert_true(list_has(ldns_pkt_answer(r), "192.0.2.44"));
  ldns_pkt_free(r);
  r = ask4("semi.example.", LDNS_RR_TYPE_TXT);
  assert_true(list_has(ldns_pkt_answer(r), "\"a;b\""));
  ldns_pkt_free(r);
  uint64_t t0 = fakedns_now_us();
  r = ask4("slow.example.", LDNS_RR_TYPE_A);
  assert_true(ms_since(t0) >= 400);
  ldns_pkt_free(r);
  r = ask4("refused.example.", LDNS_RR_TYPE_MX);
  assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_REFUSED);
  ldns_pkt_free(r);
  r = ask4("notimp.example.", 1);
  assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOTIMPL);
  ldns_pkt_free(r);
  r = ask4("slow.example.", LDNS_RR_TYPE_AAAA);
  assert_true(ldns_pkt_tc(r));
  ldns_pkt_free(r);

  uint8_t buf[512];
  int fd = udp_open(AF_INET);
  uint16_t id = udp_query(fd, AF_INET, "junk.example.", 1, false);
  assert_int_equal(udp_recv(fd, buf, sizeof(buf), 2000, NULL), 3);
  assert_int_equal(buf[0] << 8 | buf[1], id);
  assert_int_equal(buf[2], 0xff);
  udp_query(fd, AF_INET, "spoofed.example.", 1, false);
  ssize_t n = udp_recv(fd, buf, sizeof(buf), 2000, NULL);
  r = parse(buf, n);
  assert_true(list_has(ldns_pkt_answer(r), "198.51.100.1"));
  ldns_pkt_free(r);
  close(fd);

  /* Errors name their line; earlier lines stay loaded. */
  static const char bad[] = "ok.example. 60 IN A 192.0.2.8\n"
                            ";! delay ok.example. A soon\n";
  assert_int_equal(fakedns_load(srv, bad, &line), DT_EINVAL);
  assert_int_equal(line, 2);
  r = ask4("ok.example.", 1);
  assert_int_equal(ldns_pkt_ancount(r), 1);
  ldns_pkt_free(r);
  static const char *const wrong[] = {
      "$TTL 300\n",
      "x.example. 60 IN A\n",
      ";! frobnicate x.example. A\n",
      ";! delay * A 5\n",
      ";! hold x.example. A *\n",
      ";! garbage x.example. A sideways\n",
      ";! garbage x.example. A before 0g\n",
      ";! edns x.example. A maybe\n",
      ";! rcode x.example. A 16\n",
  };
  for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
    assert_int_equal(fakedns_load(srv, wrong[i], &line), DT_EINVAL);
    assert_int_equal(line, 1);
  }
  assert_int_equal(fakedns_load_file(srv, "/nonexistent/zone", &line),
                   DT_ENOENT);
  assert_int_equal(line, 0);

  /* A default from a directive, and clear() forgets everything. */
  assert_int_equal(fakedns_load(srv, ";! blackhole * *\n", NULL), DT_OK);
  assert_null(ask(AF_INET, FAKEDNS_UDP, "www.example.", 1, false, 300));
  fakedns_clear(srv);
  r = ask4("www.example.", 1);
  assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NXDOMAIN);
  ldns_pkt_free(r);
}

static char *read_small_file(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    return NULL;
  }
  static char buf[64];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  return n > 0 ? buf : NULL;
}

static pid_t spawn(char *const argv[]) {
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    int nul = open("/dev/null", O_WRONLY);
    if (nul >= 0) {
      dup2(nul, STDOUT_FILENO);
    }
    execv(argv[0], argv);
    _exit(127);
  }
  return pid;
}

/* The child's exit status, -1 if it is still running after timeout_ms. */
static int wait_exit(pid_t pid, int timeout_ms) {
  uint64_t t0 = fakedns_now_us();
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (ms_since(t0) > (uint64_t)timeout_ms) {
      return -1;
    }
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
  }
}

static void test_standalone_program(void **state) {
  (void)state;
  char dir[] = "/tmp/dt-fakedns-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char portfile[64], pidfile[64], badzone[64];
  snprintf(portfile, sizeof(portfile), "%s/port", dir);
  snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
  snprintf(badzone, sizeof(badzone), "%s/bad.zone", dir);
  char prog[] = DT_BUILDDIR "/tests/fake/dt-fakedns";
  char zone[] = DT_SRCDIR "/tests/fake/demo.zone";
  char a_z[] = "-z", a_port[] = "--port-file", a_pid[] = "--pidfile";
  char a_p[] = "-p", a_0[] = "0";
  char *argv[] = {prog,   a_p,      a_0,   a_z,     zone,
                  a_port, portfile, a_pid, pidfile, NULL};
  child = spawn(argv);

  const char *text = NULL;
  for (int i = 0; i < 500 && text == NULL; i++) {
    text = read_small_file(portfile);
    if (text == NULL) {
      struct timespec ts = {0, 20000000};
      nanosleep(&ts, NULL);
    }
  }
  assert_non_null(text);
  long port = strtol(text, NULL, 10);
  assert_true(port > 0 && port < 65536);
  text = read_small_file(pidfile);
  assert_non_null(text);
  assert_int_equal(strtol(text, NULL, 10), child);

  /* The helpers address the in-process server; the program is addressed
   * by hand. */
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t)port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  uint8_t q[512], buf[4096];
  int fd = udp_open(AF_INET);
  size_t ql = build_query("fast.demo.example.", 1, false, 7, q, sizeof(q));
  assert_int_equal(sendto(fd, q, ql, 0, (struct sockaddr *)&sin, sizeof(sin)),
                   (ssize_t)ql);
  ssize_t n = udp_recv(fd, buf, sizeof(buf), 3000, NULL);
  ldns_pkt *r = parse(buf, n);
  assert_int_equal(ldns_pkt_id(r), 7);
  assert_true(list_has(ldns_pkt_answer(r), "127.0.0.1"));
  ldns_pkt_free(r);
  /* The demo's slow AAAA, with its directive honoured. */
  uint64_t t0 = fakedns_now_us();
  ql = build_query("slow.demo.example.", LDNS_RR_TYPE_AAAA, false, 8, q,
                   sizeof(q));
  assert_int_equal(sendto(fd, q, ql, 0, (struct sockaddr *)&sin, sizeof(sin)),
                   (ssize_t)ql);
  n = udp_recv(fd, buf, sizeof(buf), 5000, NULL);
  uint64_t took = ms_since(t0);
  assert_true(took >= 800 && took < 1800);
  r = parse(buf, n);
  assert_int_equal(ldns_pkt_id(r), 8);
  assert_true(list_has(ldns_pkt_answer(r), "::1"));
  ldns_pkt_free(r);
  close(fd);
  /* TCP as well. */
  fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
  uint16_t id = tcp_query(fd, "www.demo.example.", 1, false);
  n = tcp_recv(fd, buf, sizeof(buf), 3000);
  r = parse(buf, n);
  assert_int_equal(ldns_pkt_id(r), id);
  assert_int_equal(ldns_pkt_ancount(r), 2);
  ldns_pkt_free(r);

  /* SIGTERM: clean exit, connection closed, files removed. */
  assert_int_equal(kill(child, SIGTERM), 0);
  assert_int_equal(wait_exit(child, 5000), 0);
  child = -1;
  assert_int_equal(tcp_recv(fd, buf, sizeof(buf), 2000), -2);
  close(fd);
  assert_int_equal(access(portfile, F_OK), -1);
  assert_int_equal(access(pidfile, F_OK), -1);

  /* A bad zone file: exit status 1 before serving. */
  FILE *f = fopen(badzone, "w");
  assert_non_null(f);
  fputs("ok.example. 60 IN A 192.0.2.1\nnot a record\n", f);
  fclose(f);
  char *bad_argv[] = {prog, a_z, badzone, NULL};
  child = spawn(bad_argv);
  assert_int_equal(wait_exit(child, 5000), 1);
  child = -1;
  /* Bad usage: status 2. */
  char a_x[] = "--bogus";
  char *usage_argv[] = {prog, a_x, NULL};
  child = spawn(usage_argv);
  assert_int_equal(wait_exit(child, 5000), 2);
  child = -1;
  unlink(badzone);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_records_and_ttls, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cname_chain, setup, teardown),
      cmocka_unit_test_setup_teardown(test_nxdomain_soa, setup, teardown),
      cmocka_unit_test_setup_teardown(test_nodata_soa, setup, teardown),
      cmocka_unit_test_setup_teardown(test_forced_rcodes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_delay, setup, teardown),
      cmocka_unit_test_setup_teardown(test_drop_first, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hold_and_arrival, setup, teardown),
      cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tcp_framing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tcp_close, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrong_id, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrong_question, setup, teardown),
      cmocka_unit_test_setup_teardown(test_wrong_port, setup, teardown),
      cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
      cmocka_unit_test_setup_teardown(test_edns, setup, teardown),
      cmocka_unit_test_setup_teardown(test_black_hole, setup, teardown),
      cmocka_unit_test_setup_teardown(test_default_behaviour, setup, teardown),
      cmocka_unit_test_setup_teardown(test_counters, setup, teardown),
      cmocka_unit_test_setup_teardown(test_case_echo, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ipv6, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ports, setup, teardown),
      cmocka_unit_test_setup_teardown(test_high_descriptors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_load_directives, setup, teardown),
      cmocka_unit_test_setup_teardown(test_standalone_program, setup, teardown),
  };
  return cmocka_run_group_tests_name("fake", tests, NULL, NULL);
}
