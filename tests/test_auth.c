#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cmocka.h>
#include <ldns/ldns.h>

#include "clock.h"
#include "fake/authsrv.h"
#include "fake/dnsq.h"

/* Integration tests of the real authoritative server harness: every case
 * that tests/fake/test.zone documents is asked of NSD with plain sockets
 * (tests/fake/dnsq.c) and the reply checked, so later resolver tests can
 * trust what the server says. One NSD serves the whole group. */

static authsrv_t *srv;

/* A name inside the test zone: Z("www") is "www.dialtone.test.". */
#define Z(label) label "." AUTHSRV_ZONE

static int group_setup(void **state) {
  (void)state;
  authsrv_status_t st = authsrv_start(&srv);
  if (st == AUTHSRV_OK) {
    return 0;
  }
  fprintf(stderr, "authsrv_start: %s\n", authsrv_last_error());
  return -1;
}

static int group_teardown(void **state) {
  (void)state;
  authsrv_stop_free(srv);
  srv = NULL;
  return 0;
}

/* --- asking --------------------------------------------------------------- */

static ldns_pkt *ask_via(const char *name, ldns_rr_type type, int family,
                         bool tcp, uint16_t edns_size) {
  dnsq_opts_t o;
  dnsq_opts_init(&o);
  o.family = family;
  o.port = authsrv_port(srv);
  o.tcp = tcp;
  o.edns_size = edns_size;
  ldns_pkt *reply = NULL;
  dt_status_t st = dnsq_query(&o, name, type, &reply);
  if (st != DT_OK) {
    fail_msg("%s type %d over %s/%s: %s", name, (int)type,
             family == AF_INET6 ? "IPv6" : "IPv4", tcp ? "TCP" : "UDP",
             dt_strerror(st));
  }
  return reply;
}

/* The common case: UDP over IPv4 without EDNS, like a minimal stub. */
static ldns_pkt *ask(const char *name, ldns_rr_type type) {
  return ask_via(name, type, AF_INET, false, 0);
}

/* --- looking at replies --------------------------------------------------- */

static ldns_rr_list *section(const ldns_pkt *p, ldns_pkt_section sec) {
  switch (sec) {
  case LDNS_SECTION_ANSWER:
    return ldns_pkt_answer(p);
  case LDNS_SECTION_AUTHORITY:
    return ldns_pkt_authority(p);
  default:
    return ldns_pkt_additional(p);
  }
}

static size_t count_type(const ldns_pkt *p, ldns_pkt_section sec,
                         ldns_rr_type type) {
  ldns_rr_list *l = section(p, sec);
  size_t n = 0;
  for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++) {
    if (ldns_rr_get_type(ldns_rr_list_rr(l, i)) == type) {
      n++;
    }
  }
  return n;
}

/* The n-th record of type in a section, or NULL. */
static const ldns_rr *nth_type(const ldns_pkt *p, ldns_pkt_section sec,
                               ldns_rr_type type, size_t n) {
  ldns_rr_list *l = section(p, sec);
  for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++) {
    const ldns_rr *rr = ldns_rr_list_rr(l, i);
    if (ldns_rr_get_type(rr) == type && n-- == 0) {
      return rr;
    }
  }
  return NULL;
}

static bool name_is(const ldns_rdf *rdf, const char *name) {
  ldns_rdf *want = ldns_dname_new_frm_str(name);
  bool same = want != NULL && rdf != NULL &&
              ldns_rdf_get_type(rdf) == LDNS_RDF_TYPE_DNAME &&
              ldns_dname_compare(rdf, want) == 0;
  ldns_rdf_deep_free(want);
  return same;
}

/* A character-string rdata field (TXT, CAA tag): a length byte, then
 * bytes. */
static bool string_is(const ldns_rdf *rdf, const char *s) {
  size_t len = strlen(s);
  return rdf != NULL && ldns_rdf_size(rdf) == len + 1 &&
         ldns_rdf_data(rdf)[0] == len &&
         memcmp(ldns_rdf_data(rdf) + 1, s, len) == 0;
}

/* Whether the answer holds a record of type whose first rdata field prints
 * as text (an address, a name). */
static bool answer_has(const ldns_pkt *p, ldns_rr_type type, const char *text) {
  for (size_t i = 0;; i++) {
    const ldns_rr *rr = nth_type(p, LDNS_SECTION_ANSWER, type, i);
    if (rr == NULL) {
      return false;
    }
    char *s = ldns_rdf2str(ldns_rr_rdf(rr, 0));
    bool same = s != NULL && strcmp(s, text) == 0;
    free(s);
    if (same) {
      return true;
    }
  }
}

/* An authoritative, untruncated answer with this rcode. */
static void assert_authoritative(const ldns_pkt *p, ldns_pkt_rcode rcode) {
  assert_true(ldns_pkt_qr(p));
  assert_true(ldns_pkt_aa(p));
  assert_false(ldns_pkt_tc(p));
  assert_int_equal(ldns_pkt_get_rcode(p), rcode);
}

/* Exactly these addresses of type in the answer, in any order, every one
 * owned by owner. */
static void assert_addresses(const ldns_pkt *p, ldns_rr_type type,
                             const char *owner, const char *const *want,
                             size_t n) {
  assert_int_equal(count_type(p, LDNS_SECTION_ANSWER, type), n);
  for (size_t i = 0; i < n; i++) {
    if (!answer_has(p, type, want[i])) {
      fail_msg("%s missing from the answer for %s", want[i], owner);
    }
    assert_true(name_is(
        ldns_rr_owner(nth_type(p, LDNS_SECTION_ANSWER, type, i)), owner));
  }
}

/* RFC 2308: a negative answer has no records of the type asked and the
 * zone's SOA in the authority section. NSD sends that SOA with a TTL of
 * min(SOA TTL, MINIMUM), which for these zones is MINIMUM, 300 s. */
static void assert_negative(const ldns_pkt *p, ldns_pkt_rcode rcode,
                            ldns_rr_type asked, const char *zone) {
  assert_authoritative(p, rcode);
  assert_int_equal(count_type(p, LDNS_SECTION_ANSWER, asked), 0);
  assert_int_equal(count_type(p, LDNS_SECTION_AUTHORITY, LDNS_RR_TYPE_SOA), 1);
  const ldns_rr *soa = nth_type(p, LDNS_SECTION_AUTHORITY, LDNS_RR_TYPE_SOA, 0);
  assert_true(name_is(ldns_rr_owner(soa), zone));
  assert_int_equal(ldns_rdf2native_int32(ldns_rr_rdf(soa, 6)), 300);
  assert_int_equal(ldns_rr_ttl(soa), 300);
}

/* --- addresses ------------------------------------------------------------ */

static void test_a(void **state) {
  (void)state;
  ldns_pkt *p = ask(Z("www"), LDNS_RR_TYPE_A);
  assert_authoritative(p, LDNS_RCODE_NOERROR);
  static const char *const want[] = {"192.0.2.1"};
  assert_addresses(p, LDNS_RR_TYPE_A, Z("www"), want, 1);
  assert_int_equal(ldns_pkt_ancount(p), 1);
  ldns_pkt_free(p);
}

static void test_aaaa(void **state) {
  (void)state;
  ldns_pkt *p = ask(Z("www"), LDNS_RR_TYPE_AAAA);
  assert_authoritative(p, LDNS_RCODE_NOERROR);
  static const char *const want[] = {"2001:db8::1"};
  assert_addresses(p, LDNS_RR_TYPE_AAAA, Z("www"), want, 1);
  ldns_pkt_free(p);
}

static void test_one_family_is_nodata_for_the_other(void **state) {
  (void)state;
  ldns_pkt *p = ask(Z("v4only"), LDNS_RR_TYPE_AAAA);
  assert_negative(p, LDNS_RCODE_NOERROR, LDNS_RR_TYPE_AAAA, AUTHSRV_ZONE);
  ldns_pkt_free(p);
  p = ask(Z("v6only"), LDNS_RR_TYPE_A);
  assert_negative(p, LDNS_RCODE_NOERROR, LDNS_RR_TYPE_A, AUTHSRV_ZONE);
  ldns_pkt_free(p);
  p = ask(Z("v6only"), LDNS_RR_TYPE_AAAA);
  static const char *const want[] = {"2001:db8::2"};
  assert_addresses(p, LDNS_RR_TYPE_AAAA, Z("v6only"), want, 1);
  ldns_pkt_free(p);
}

static void test_multi_address(void **state) {
  (void)state;
  ldns_pkt *p = ask(Z("multi"), LDNS_RR_TYPE_A);
  assert_authoritative(p, LDNS_RCODE_NOERROR);
  static const char *const v4[] = {"192.0.2.10", "192.0.2.11", "192.0.2.12"};
  assert_addresses(p, LDNS_RR_TYPE_A, Z("multi"), v4, 3);
  ldns_pkt_free(p);
  p = ask(Z("multi"), LDNS_RR_TYPE_AAAA);
  assert_authoritative(p, LDNS_RCODE_NOERROR);
  static const char *const v6[] = {"2001:db8::10", "2001:db8::11",
                                   "2001:db8::12"};
  assert_addresses(p, LDNS_RR_TYPE_AAAA, Z("multi"), v6, 3);
  ldns_pkt_free(p);
}

/* The question's spelling comes back byte for byte: reply matching (and
 * DNS 0x20, later) may compare it exactly. */
static void test_question_case_is_echoed(void **state) {
  (void)state;
  const char *mixed = "WwW.DiAlToNe.TeSt.";
  ldns_pkt *p = ask(mixed, LDNS_RR_TYPE_A);
  assert_authoritative(p, LDNS_RCODE_NOERROR);
  ldns_rdf *want = ldns_dname_new_frm_str(mixed);
  const ldns_rdf *got = ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(p), 0));
  assert_int_equal(ldns_rdf_size(got), ldns_rdf_size(want));
  assert_memory_equal(ldns_rdf_data(got), ldns_rdf_data(want),
                      ldns_rdf_size(want));
  ldns_rdf_deep_free(want);
  assert_true(answer_has(p, LDNS_RR_TYPE_A, "192.0.2.1"));
  ldns_pkt_free(p);
}

/* --- CNAME ---------------------------------------------------------------- */

static void assert_cname(const ldns_pkt *p, size_t i, const char *owner,
                         const char *target, uint32_t ttl) {
  const ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_answer(p), i);
  assert_non_null(rr);
  assert_int_equal(ldns_rr_get_type(rr), LDNS_RR_TYPE_CNAME);
  assert_true(name_is(ldns_rr_owner(rr), owner));
  assert_true(name_is(ldns_rr_rdf(rr, 0), target));
  assert_int_equal(ldns_rr_ttl(rr), ttl);
}

static void test_cname_chain(void **state) {
  (void)state;
  static const struct {
    ldns_rr_type type;
    const char *addr;
  } finals[] = {{LDNS_RR_TYPE_A, "192.0.2.20"},
                {LDNS_RR_TYPE_AAAA, "2001:db8::20"}};
  for (size_t i = 0; i < 2; i++) {
    ldns_pkt *p = ask(Z("hop1"), finals[i].type);
    assert_authoritative(p, LDNS_RCODE_NOERROR);
    /* The server follows the whole chain inside its zone, in order. */
    assert_int_equal(ldns_pkt_ancount(p), 4);
    assert_cname(p, 0, Z("hop1"), Z("hop2"), 300);
    assert_cname(p, 1, Z("hop2"), Z("hop3"), 20);
    assert_cname(p, 2, Z("hop3"), Z("end"), 120);
    const ldns_rr *last = ldns_rr_list_rr(ldns_pkt_answer(p), 3);
    assert_int_equal(ldns_rr_get_type(last), finals[i].type);
    assert_true(name_is(ldns_rr_owner(last), Z("end")));
    assert_int_equal(ldns_rr_ttl(last), 600);
    assert_true(answer_has(p, finals[i].type, finals[i].addr));
    ldns_pkt_free(p);
  }
}

static void test_dangling_cname(void **state) {
  (void)state;
  ldns_pkt *p = ask(Z("dangling"), LDNS_RR_TYPE_A);
  /* The rcode is the target's: NXDOMAIN, though the alias exists. */
  assert_negative(p, LDNS_RCODE_NXDOMAIN, LDNS_RR_TYPE_A, AUTHSRV_ZONE);
  assert_int_equal(ldns_pkt_ancount(p), 1);
  assert_cname(p, 0, Z("dangling"), Z("nowhere"), 3600);
  ldns_pkt_free(p);
}

/* --- other types ---------------------------------------------------------- */

static void test_mx(void **state) {
  (void)state;
  ldns_pkt *p = ask(AUTHSRV_ZONE, LDNS_RR_TYPE_MX);
  assert_authoritative(p, LDNS_RCODE_NOERROR);
  assert_int_equal(count_type(p, LDNS_SECTION_ANSWER, LDNS_RR_TYPE_MX), 2);
  bool seen10 = false;
  bool seen20 = false;
  for (size_t i = 0; i < 2; i++) {
    const ldns_rr *rr = nth_type(p, LDNS_SECTION_ANSWER, LDNS_RR_TYPE_MX, i);
    uint16_t pref = ldns_rdf2native_int16(ldns_rr_rdf(rr, 0));
    if (pref == 10) {
      seen10 = name_is(ldns_rr_rdf(rr, 1), Z("mail"));
    } else if (pref == 20) {
      seen20 = name_is(ldns_rr_rdf(rr, 1), Z("mail2"));
    }
  }
  assert_true(seen10);
  assert_true(seen20);
  ldns_pkt_free(p);
}

static void test_txt(void **state) {
  (void)state;
  ldns_pkt *p = ask(Z("txt"), LDNS_RR_TYPE_TXT);
  assert_authoritative(p, LDNS_RCODE_NOERROR);
  assert_int_equal(count_type(p, LDNS_SECTION_ANSWER, LDNS_RR_TYPE_TXT), 2);
  const ldns_rr *single = NULL;
  const ldns_rr *multi = NULL;
  for (size_t i = 0; i < 2; i++) {
    const ldns_rr *rr = nth_type(p, LDNS_SECTION_ANSWER, LDNS_RR_TYPE_TXT, i);
    if (ldns_rr_rd_count(rr) == 1) {
      single = rr;
    } else {
      multi = rr;
    }
  }
  assert_non_null(single);
  assert_non_null(multi);
  assert_true(string_is(ldns_rr_rdf(single, 0), "v=spf1 -all"));
  /* Three strings kept apart, with their spaces, quotes and semicolon. */
  assert_int_equal(ldns_rr_rd_count(multi), 3);
  assert_true(string_is(ldns_rr_rdf(multi, 0), "hello world"));
  assert_true(string_is(ldns_rr_rdf(multi, 1), "say \"hi\""));
  assert_true(string_is(ldns_rr_rdf(multi, 2), "a;b c"));
  ldns_pkt_free(p);
}

static void test_srv(void **state) {
  (void)state;
  ldns_pkt *p = ask(Z("_http._tcp"), LDNS_RR_TYPE_SRV);
  assert_authoritative(p, LDNS_RCODE_NOERROR);
  static const struct {
    uint16_t prio, weight, port;
    const char *target;
  } want[] = {{10, 60, 8080, Z("www")},
              {10, 40, 8081, Z("multi")},
              {20, 0, 80, Z("v4only")}};
  assert_int_equal(count_type(p, LDNS_SECTION_ANSWER, LDNS_RR_TYPE_SRV), 3);
  for (size_t w = 0; w < 3; w++) {
    bool found = false;
    for (size_t i = 0; i < 3 && !found; i++) {
      const ldns_rr *rr = nth_type(p, LDNS_SECTION_ANSWER, LDNS_RR_TYPE_SRV, i);
      found = ldns_rdf2native_int16(ldns_rr_rdf(rr, 0)) == want[w].prio &&
              ldns_rdf2native_int16(ldns_rr_rdf(rr, 1)) == want[w].weight &&
              ldns_rdf2native_int16(ldns_rr_rdf(rr, 2)) == want[w].port &&
              name_is(ldns_rr_rdf(rr, 3), want[w].target);
    }
    if (!found) {
      fail_msg("SRV %u %u %u %s missing", want[w].prio, want[w].weight,
               want[w].port, want[w].target);
    }
  }
  ldns_pkt_free(p);
}

static void test_caa(void **state) {
  (void)state;
  ldns_pkt *p = ask(AUTHSRV_ZONE, LDNS_RR_TYPE_CAA);
  assert_authoritative(p, LDNS_RCODE_NOERROR);
  assert_int_equal(count_type(p, LDNS_SECTION_ANSWER, LDNS_RR_TYPE_CAA), 2);
  static const struct {
    uint8_t flags;
    const char *tag, *value;
  } want[] = {{0, "issue", "ca.example.net"},
              {128, "iodef", "mailto:security@dialtone.test"}};
  for (size_t w = 0; w < 2; w++) {
    bool found = false;
    for (size_t i = 0; i < 2 && !found; i++) {
      const ldns_rr *rr = nth_type(p, LDNS_SECTION_ANSWER, LDNS_RR_TYPE_CAA, i);
      /* Flags, then the tag as a character-string, then the value as the
       * rest of the rdata (no length byte). */
      const ldns_rdf *value = ldns_rr_rdf(rr, 2);
      found = ldns_rr_rd_count(rr) == 3 &&
              ldns_rdf2native_int8(ldns_rr_rdf(rr, 0)) == want[w].flags &&
              string_is(ldns_rr_rdf(rr, 1), want[w].tag) &&
              ldns_rdf_size(value) == strlen(want[w].value) &&
              memcmp(ldns_rdf_data(value), want[w].value,
                     ldns_rdf_size(value)) == 0;
    }
    if (!found) {
      fail_msg("CAA %u %s \"%s\" missing", want[w].flags, want[w].tag,
               want[w].value);
    }
  }
  ldns_pkt_free(p);
}

static void test_ptr(void **state) {
  (void)state;
  ldns_pkt *p = ask("1.2.0.192.in-addr.arpa.", LDNS_RR_TYPE_PTR);
  assert_authoritative(p, LDNS_RCODE_NOERROR);
  assert_int_equal(count_type(p, LDNS_SECTION_ANSWER, LDNS_RR_TYPE_PTR), 1);
  assert_true(answer_has(p, LDNS_RR_TYPE_PTR, Z("www")));
  ldns_pkt_free(p);

  p = ask("10.2.0.192.in-addr.arpa.", LDNS_RR_TYPE_PTR);
  assert_authoritative(p, LDNS_RCODE_NOERROR);
  assert_int_equal(count_type(p, LDNS_SECTION_ANSWER, LDNS_RR_TYPE_PTR), 2);
  assert_true(answer_has(p, LDNS_RR_TYPE_PTR, Z("multi")));
  assert_true(answer_has(p, LDNS_RR_TYPE_PTR, Z("multi-alias")));
  ldns_pkt_free(p);

  p = ask("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0." AUTHSRV_ZONE_REV6,
          LDNS_RR_TYPE_PTR);
  assert_authoritative(p, LDNS_RCODE_NOERROR);
  assert_true(answer_has(p, LDNS_RR_TYPE_PTR, Z("www")));
  ldns_pkt_free(p);

  p = ask("99.2.0.192.in-addr.arpa.", LDNS_RR_TYPE_PTR);
  assert_negative(p, LDNS_RCODE_NXDOMAIN, LDNS_RR_TYPE_PTR, AUTHSRV_ZONE_REV4);
  ldns_pkt_free(p);
}

/* --- negative answers and TTLs -------------------------------------------- */

static void test_nxdomain(void **state) {
  (void)state;
  ldns_pkt *p = ask(Z("nope"), LDNS_RR_TYPE_A);
  assert_negative(p, LDNS_RCODE_NXDOMAIN, LDNS_RR_TYPE_A, AUTHSRV_ZONE);
  assert_int_equal(ldns_pkt_ancount(p), 0);
  ldns_pkt_free(p);
}

static void test_nodata(void **state) {
  (void)state;
  ldns_pkt *p = ask(Z("txtonly"), LDNS_RR_TYPE_A);
  assert_negative(p, LDNS_RCODE_NOERROR, LDNS_RR_TYPE_A, AUTHSRV_ZONE);
  assert_int_equal(ldns_pkt_ancount(p), 0);
  ldns_pkt_free(p);
  p = ask(Z("txtonly"), LDNS_RR_TYPE_AAAA);
  assert_negative(p, LDNS_RCODE_NOERROR, LDNS_RR_TYPE_AAAA, AUTHSRV_ZONE);
  ldns_pkt_free(p);
  /* The name itself exists. */
  p = ask(Z("txtonly"), LDNS_RR_TYPE_TXT);
  assert_authoritative(p, LDNS_RCODE_NOERROR);
  assert_int_equal(count_type(p, LDNS_SECTION_ANSWER, LDNS_RR_TYPE_TXT), 1);
  ldns_pkt_free(p);
}

/* The SOA itself keeps its own TTL (3600) when asked for; only in negative
 * answers does it come with MINIMUM (300). The two differ so a cache that
 * uses the wrong one for negatives shows it. */
static void test_soa_ttl_differs_from_minimum(void **state) {
  (void)state;
  ldns_pkt *p = ask(AUTHSRV_ZONE, LDNS_RR_TYPE_SOA);
  assert_authoritative(p, LDNS_RCODE_NOERROR);
  const ldns_rr *soa = nth_type(p, LDNS_SECTION_ANSWER, LDNS_RR_TYPE_SOA, 0);
  assert_non_null(soa);
  assert_int_equal(ldns_rr_ttl(soa), 3600);
  assert_int_equal(ldns_rdf2native_int32(ldns_rr_rdf(soa, 6)), 300);
  ldns_pkt_free(p);
}

static void assert_ttl(const char *name, ldns_rr_type type, uint32_t ttl) {
  ldns_pkt *p = ask(name, type);
  assert_authoritative(p, LDNS_RCODE_NOERROR);
  const ldns_rr *rr = nth_type(p, LDNS_SECTION_ANSWER, type, 0);
  if (rr == NULL || ldns_rr_ttl(rr) != ttl) {
    fail_msg("%s type %d: TTL %ld, want %lu", name, (int)type,
             rr == NULL ? -1L : (long)ldns_rr_ttl(rr), (unsigned long)ttl);
  }
  ldns_pkt_free(p);
}

static void test_ttls(void **state) {
  (void)state;
  assert_ttl(Z("www"), LDNS_RR_TYPE_A, 3600); /* the zone's $TTL */
  assert_ttl(Z("ttl0"), LDNS_RR_TYPE_A, 0);
  assert_ttl(Z("ttl2"), LDNS_RR_TYPE_A, 2);
  assert_ttl(Z("mixttl"), LDNS_RR_TYPE_A, 60);
  assert_ttl(Z("mixttl"), LDNS_RR_TYPE_AAAA, 7200);
}

/* --- size and transport --------------------------------------------------- */

static void assert_big_complete(const ldns_pkt *p) {
  assert_authoritative(p, LDNS_RCODE_NOERROR);
  assert_int_equal(count_type(p, LDNS_SECTION_ANSWER, LDNS_RR_TYPE_A), 40);
  for (int i = 100; i < 140; i++) {
    char addr[32];
    snprintf(addr, sizeof(addr), "192.0.2.%d", i);
    if (!answer_has(p, LDNS_RR_TYPE_A, addr)) {
      fail_msg("%s missing from big's answer", addr);
    }
  }
}

/* Without EDNS a UDP reply may be 512 bytes; the 40 records do not fit, so
 * the server sets TC and the client must ask again over TCP. */
static void test_big_truncated_over_udp(void **state) {
  (void)state;
  ldns_pkt *p = ask(Z("big"), LDNS_RR_TYPE_A);
  assert_true(ldns_pkt_qr(p));
  assert_true(ldns_pkt_tc(p));
  assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
  assert_true(ldns_pkt_size(p) <= 512);
  assert_true(count_type(p, LDNS_SECTION_ANSWER, LDNS_RR_TYPE_A) < 40);
  ldns_pkt_free(p);
}

static void test_big_complete_over_tcp(void **state) {
  (void)state;
  ldns_pkt *p = ask_via(Z("big"), LDNS_RR_TYPE_A, AF_INET, true, 0);
  assert_true(ldns_pkt_size(p) > 512);
  assert_big_complete(p);
  ldns_pkt_free(p);
}

/* With EDNS (1232) the same answer fits one datagram. */
static void test_big_fits_with_edns(void **state) {
  (void)state;
  ldns_pkt *p = ask_via(Z("big"), LDNS_RR_TYPE_A, AF_INET, false, 1232);
  assert_true(ldns_pkt_edns(p));
  assert_true(ldns_pkt_size(p) > 512);
  assert_true(ldns_pkt_size(p) <= 1232);
  assert_big_complete(p);
  ldns_pkt_free(p);
}

/* bigtxt is larger than 1232 bytes: truncated even with EDNS, whole over
 * TCP. */
static void test_bigtxt_needs_tcp_even_with_edns(void **state) {
  (void)state;
  ldns_pkt *p = ask_via(Z("bigtxt"), LDNS_RR_TYPE_TXT, AF_INET, false, 1232);
  assert_true(ldns_pkt_tc(p));
  assert_true(ldns_pkt_size(p) <= 1232);
  ldns_pkt_free(p);
  p = ask_via(Z("bigtxt"), LDNS_RR_TYPE_TXT, AF_INET, true, 1232);
  assert_authoritative(p, LDNS_RCODE_NOERROR);
  assert_int_equal(count_type(p, LDNS_SECTION_ANSWER, LDNS_RR_TYPE_TXT), 12);
  assert_true(ldns_pkt_size(p) > 1232);
  ldns_pkt_free(p);
}

static void test_ipv6_transport(void **state) {
  (void)state;
  if (!authsrv_has_ipv6(srv)) {
    print_message("no usable ::1 on this machine: IPv6 transport not tested\n");
    skip();
  }
  static const char *const want[] = {"192.0.2.1"};
  for (int tcp = 0; tcp < 2; tcp++) {
    ldns_pkt *p = ask_via(Z("www"), LDNS_RR_TYPE_A, AF_INET6, tcp != 0, 0);
    assert_authoritative(p, LDNS_RCODE_NOERROR);
    assert_addresses(p, LDNS_RR_TYPE_A, Z("www"), want, 1);
    ldns_pkt_free(p);
  }
  ldns_pkt *p = ask_via(Z("big"), LDNS_RR_TYPE_A, AF_INET6, true, 0);
  assert_big_complete(p);
  ldns_pkt_free(p);
}

/* A name outside every zone served is refused, not answered: the case a
 * resolver reports as "refused" and fails over on. */
static void test_outside_zones_refused(void **state) {
  (void)state;
  ldns_pkt *p = ask("www.example.com.", LDNS_RR_TYPE_A);
  assert_true(ldns_pkt_qr(p));
  assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_REFUSED);
  assert_int_equal(ldns_pkt_ancount(p), 0);
  ldns_pkt_free(p);
}

/* Debian's NSD rate-limits identical answers by default (200 per second
 * per /24). A burst of 200 alone can stay under that limit on a fast
 * machine, since NSD averages over a second and only acts when the limit is
 * exceeded; 1000 in a row (a fraction of a second here) trips it for sure,
 * with dropped or TC replies, whenever RRL is left on. */
#define RRL_BURST 1000

static void test_rrl_is_off(void **state) {
  (void)state;
  for (int i = 0; i < RRL_BURST; i++) {
    ldns_pkt *p = ask(Z("www"), LDNS_RR_TYPE_A);
    if (ldns_pkt_tc(p) || ldns_pkt_ancount(p) != 1) {
      fail_msg("query %d of %d was rate limited (TC %d, %u answers)", i + 1,
               RRL_BURST, (int)ldns_pkt_tc(p), (unsigned)ldns_pkt_ancount(p));
    }
    ldns_pkt_free(p);
  }
}

/* --- the harness and the helper themselves -------------------------------- */

/* A second server gets its own port and directory, and stopping it removes
 * the directory. */
static void test_second_server_and_cleanup(void **state) {
  (void)state;
  authsrv_t *other = NULL;
  if (authsrv_start(&other) != AUTHSRV_OK) {
    fail_msg("second server: %s", authsrv_last_error());
  }
  assert_int_not_equal(authsrv_port(other), authsrv_port(srv));
  assert_string_not_equal(authsrv_dir(other), authsrv_dir(srv));
  char dir[4096];
  snprintf(dir, sizeof(dir), "%s", authsrv_dir(other));
  struct stat st;
  assert_int_equal(stat(dir, &st), 0);

  dnsq_opts_t o;
  dnsq_opts_init(&o);
  o.port = authsrv_port(other);
  ldns_pkt *p = NULL;
  assert_int_equal(dnsq_query(&o, Z("www"), LDNS_RR_TYPE_A, &p), DT_OK);
  assert_true(answer_has(p, LDNS_RR_TYPE_A, "192.0.2.1"));
  ldns_pkt_free(p);

  authsrv_stop_free(other);
  assert_int_equal(stat(dir, &st), -1);
  assert_int_equal(errno, ENOENT);
  /* Nothing answers there any more. */
  o.timeout_ms = 300;
  p = NULL;
  assert_int_not_equal(dnsq_query(&o, Z("www"), LDNS_RR_TYPE_A, &p), DT_OK);
  assert_null(p);
}

static void test_not_installed(void **state) {
  (void)state;
  const char *old = getenv("DT_NSD");
  char *saved = old != NULL ? strdup(old) : NULL;
  assert_int_equal(setenv("DT_NSD", "/nonexistent/nsd", 1), 0);
  assert_false(authsrv_available());
  authsrv_t *none = (authsrv_t *)&none; /* must stay untouched */
  assert_int_equal(authsrv_start(&none), AUTHSRV_NOT_INSTALLED);
  assert_ptr_equal(none, (authsrv_t *)&none);
  if (saved != NULL) {
    setenv("DT_NSD", saved, 1);
    free(saved);
  } else {
    unsetenv("DT_NSD");
  }
  assert_true(authsrv_available());
}

/* A port bound by a socket that never answers: the helper gives up at its
 * deadline instead of waiting forever. */
static void test_dnsq_times_out(void **state) {
  (void)state;
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_storage addr;
  socklen_t len;
  assert_int_equal(dnsq_loopback(AF_INET, 0, &addr, &len), DT_OK);
  assert_int_equal(bind(fd, (struct sockaddr *)&addr, len), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);

  dnsq_opts_t o;
  dnsq_opts_init(&o);
  o.port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
  o.timeout_ms = 100;
  ldns_pkt *p = NULL;
  uint64_t start = dt__now_ms();
  assert_int_equal(dnsq_query(&o, Z("www"), LDNS_RR_TYPE_A, &p), DT_ETIMEDOUT);
  uint64_t took = dt__now_ms() - start;
  assert_true(took >= 100);
  assert_true(took < 2000);
  assert_null(p);
  close(fd);
}

/* TCP to a port where nothing listens is refused at once. */
static void test_dnsq_tcp_refused(void **state) {
  (void)state;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_storage addr;
  socklen_t len;
  assert_int_equal(dnsq_loopback(AF_INET, 0, &addr, &len), DT_OK);
  assert_int_equal(bind(fd, (struct sockaddr *)&addr, len), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);

  dnsq_opts_t o;
  dnsq_opts_init(&o);
  o.tcp = true;
  o.port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
  o.timeout_ms = 1000;
  ldns_pkt *p = NULL;
  /* Bound but not listening: connect() is refused. */
  assert_int_equal(dnsq_query(&o, Z("www"), LDNS_RR_TYPE_A, &p),
                   DT_ECONNREFUSED);
  assert_null(p);
  close(fd);
}

int main(void) {
  /* Checked before cmocka runs: a missing nsd is a skip (exit 77), which a
   * failing group setup cannot express. */
  if (!authsrv_available()) {
    printf("%s\n", AUTHSRV_SKIP_LINE);
    return AUTHSRV_EXIT_SKIP;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_a),
      cmocka_unit_test(test_aaaa),
      cmocka_unit_test(test_one_family_is_nodata_for_the_other),
      cmocka_unit_test(test_multi_address),
      cmocka_unit_test(test_question_case_is_echoed),
      cmocka_unit_test(test_cname_chain),
      cmocka_unit_test(test_dangling_cname),
      cmocka_unit_test(test_mx),
      cmocka_unit_test(test_txt),
      cmocka_unit_test(test_srv),
      cmocka_unit_test(test_caa),
      cmocka_unit_test(test_ptr),
      cmocka_unit_test(test_nxdomain),
      cmocka_unit_test(test_nodata),
      cmocka_unit_test(test_soa_ttl_differs_from_minimum),
      cmocka_unit_test(test_ttls),
      cmocka_unit_test(test_big_truncated_over_udp),
      cmocka_unit_test(test_big_complete_over_tcp),
      cmocka_unit_test(test_big_fits_with_edns),
      cmocka_unit_test(test_bigtxt_needs_tcp_even_with_edns),
      cmocka_unit_test(test_ipv6_transport),
      cmocka_unit_test(test_outside_zones_refused),
      cmocka_unit_test(test_rrl_is_off),
      cmocka_unit_test(test_second_server_and_cleanup),
      cmocka_unit_test(test_not_installed),
      cmocka_unit_test(test_dnsq_times_out),
      cmocka_unit_test(test_dnsq_tcp_refused),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
