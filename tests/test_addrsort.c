/* RFC 6724 destination ordering and RFC 8305 interleaving, with the source
 * addresses given by the test; then the kernel's own answer on loopback. */
#include "config.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "addrsort.h"
#include "sockopt.h"

static dt__ipaddr_t ip(const char *s) {
  dt__ipaddr_t a;
  memset(&a, 0, sizeof(a));
  if (inet_pton(AF_INET6, s, &a.in6.sin6_addr) == 1) {
    a.in6.sin6_family = AF_INET6;
  } else {
    assert_int_equal(inet_pton(AF_INET, s, &a.in.sin_addr), 1);
    a.in.sin_family = AF_INET;
  }
  return a;
}

/* dst with its source; src NULL means unusable. tag keeps the input
 * position. */
static dt__sortaddr_t entry(const char *dst, const char *src, unsigned tag) {
  dt__sortaddr_t e;
  memset(&e, 0, sizeof(e));
  e.dst = ip(dst);
  if (src != NULL) {
    e.src = ip(src);
    e.usable = true;
  }
  e.tag = tag;
  return e;
}

static void text(const dt__sortaddr_t *e, char *buf, size_t len) {
  if (e->dst.sa.sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &e->dst.in6.sin6_addr, buf, (socklen_t)len);
  } else {
    inet_ntop(AF_INET, &e->dst.in.sin_addr, buf, (socklen_t)len);
  }
}

static void expect_order(const dt__sortaddr_t *a, size_t n,
                         const char *const *want) {
  char buf[64];
  for (size_t i = 0; i < n; i++) {
    text(&a[i], buf, sizeof(buf));
    assert_string_equal(buf, want[i]);
  }
}

static void test_policy_table(void **state) {
  (void)state;
  static const struct {
    const char *addr;
    int precedence, label, scope;
  } cases[] = {
      {"::1", 50, 0, 2},
      {"2001:db8::1", 40, 1, 14},
      {"192.0.2.1", 35, 4, 14},
      {"127.0.0.1", 35, 4, 2},
      {"169.254.1.1", 35, 4, 2},
      {"10.0.0.1", 35, 4, 14},
      {"::ffff:10.0.0.1", 35, 4, 14},
      {"2002:c000:201::1", 30, 2, 14},
      {"2001:0:1::1", 5, 5, 14},
      {"fd00::1", 3, 13, 14},
      {"::10.0.0.1", 1, 3, 14},
      {"fec0::1", 1, 11, 5},
      {"3ffe::1", 1, 12, 14},
      {"fe80::1", 40, 1, 2},
      {"ff02::1", 40, 1, 2},
      {"ff05::1", 40, 1, 5},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    dt__ipaddr_t a = ip(cases[i].addr);
    assert_int_equal(dt__addrsort_precedence(&a), cases[i].precedence);
    assert_int_equal(dt__addrsort_label(&a), cases[i].label);
    assert_int_equal(dt__addrsort_scope(&a), cases[i].scope);
  }
}

static void test_rules(void **state) {
  (void)state;
  /* Rule 6: IPv6 before IPv4 when both have a source; ::1 before
   * 127.0.0.1. */
  dt__sortaddr_t a[] = {entry("192.0.2.1", "192.0.2.9", 0),
                        entry("2001:db8::1", "2001:db8::9", 1)};
  dt__addrsort_sort(a, 2);
  static const char *const w1[] = {"2001:db8::1", "192.0.2.1"};
  expect_order(a, 2, w1);
  dt__sortaddr_t lo[] = {entry("127.0.0.1", "127.0.0.1", 0),
                         entry("::1", "::1", 1)};
  dt__addrsort_sort(lo, 2);
  static const char *const w2[] = {"::1", "127.0.0.1"};
  expect_order(lo, 2, w2);

  /* Rule 1: no IPv6 source, IPv4 first. */
  dt__sortaddr_t b[] = {entry("2001:db8::1", NULL, 0),
                        entry("192.0.2.1", "192.0.2.9", 1)};
  dt__addrsort_sort(b, 2);
  static const char *const w3[] = {"192.0.2.1", "2001:db8::1"};
  expect_order(b, 2, w3);

  /* Rule 2: matching scope beats precedence: a global destination with
   * only a link-local source goes after IPv4. */
  dt__sortaddr_t c[] = {entry("2001:db8::1", "fe80::9", 0),
                        entry("192.0.2.1", "192.0.2.9", 1)};
  dt__addrsort_sort(c, 2);
  expect_order(c, 2, w3);

  /* Rule 5: matching label beats precedence (6to4 source for a 6to4
   * destination). */
  dt__sortaddr_t d[] = {entry("2001:db8::1", "2002:c000:201::9", 0),
                        entry("2002:c000:202::1", "2002:c000:201::9", 1)};
  dt__addrsort_sort(d, 2);
  static const char *const w4[] = {"2002:c000:202::1", "2001:db8::1"};
  expect_order(d, 2, w4);

  /* Rule 6 with the table: IPv4 before ULA and Teredo. */
  dt__sortaddr_t e[] = {entry("fd00::1", "fd00::9", 0),
                        entry("2001:0:1::1", "2001:0:1::9", 1),
                        entry("192.0.2.1", "192.0.2.9", 2)};
  dt__addrsort_sort(e, 3);
  static const char *const w5[] = {"192.0.2.1", "2001:0:1::1", "fd00::1"};
  expect_order(e, 3, w5);

  /* Rule 8: smaller scope first at equal precedence. */
  dt__sortaddr_t f[] = {entry("192.0.2.1", "192.0.2.9", 0),
                        entry("127.0.0.1", "127.0.0.1", 1)};
  dt__addrsort_sort(f, 2);
  static const char *const w6[] = {"127.0.0.1", "192.0.2.1"};
  expect_order(f, 2, w6);

  /* Rule 9: longest prefix shared with the source, IPv6 only. */
  dt__sortaddr_t g[] = {entry("2001:db8:2::1", "2001:db8:1::9", 0),
                        entry("2001:db8:1::1", "2001:db8:1::9", 1)};
  dt__addrsort_sort(g, 2);
  static const char *const w7[] = {"2001:db8:1::1", "2001:db8:2::1"};
  expect_order(g, 2, w7);
  /* ... capped at 64 bits: same /64, order kept. */
  dt__sortaddr_t h[] = {entry("2001:db8::ff", "2001:db8::1", 0),
                        entry("2001:db8::2", "2001:db8::1", 1)};
  dt__addrsort_sort(h, 2);
  static const char *const w8[] = {"2001:db8::ff", "2001:db8::2"};
  expect_order(h, 2, w8);
  /* ... and never for IPv4, which would defeat DNS round robin. */
  dt__sortaddr_t i[] = {entry("198.51.100.1", "192.0.2.9", 0),
                        entry("192.0.2.1", "192.0.2.9", 1)};
  dt__addrsort_sort(i, 2);
  static const char *const w9[] = {"198.51.100.1", "192.0.2.1"};
  expect_order(i, 2, w9);
}

static void test_stable(void **state) {
  (void)state;
  dt__sortaddr_t a[8];
  for (unsigned k = 0; k < 8; k++) {
    char dst[32];
    snprintf(dst, sizeof(dst), "192.0.2.%u", 200 - k);
    a[k] = entry(dst, "192.0.2.9", k);
  }
  dt__addrsort_sort(a, 8);
  for (unsigned k = 0; k < 8; k++) {
    assert_int_equal(a[k].tag, k);
  }
}

static void test_interleave(void **state) {
  (void)state;
  dt__sortaddr_t a[] = {
      entry("2001:db8::1", "2001:db8::9", 0),
      entry("2001:db8::2", "2001:db8::9", 1),
      entry("2001:db8::3", "2001:db8::9", 2),
      entry("192.0.2.1", "192.0.2.9", 3),
      entry("192.0.2.2", "192.0.2.9", 4),
      entry("2001:db8::4", NULL, 5),
  };
  dt__sortaddr_t b[6];
  memcpy(b, a, sizeof(a));
  dt__addrsort_interleave(b, 6, 1);
  static const char *const w1[] = {"2001:db8::1", "192.0.2.1",   "2001:db8::2",
                                   "192.0.2.2",   "2001:db8::3", "2001:db8::4"};
  expect_order(b, 6, w1);
  memcpy(b, a, sizeof(a));
  dt__addrsort_interleave(b, 6, 2);
  static const char *const w2[] = {"2001:db8::1", "2001:db8::2", "192.0.2.1",
                                   "2001:db8::3", "192.0.2.2",   "2001:db8::4"};
  expect_order(b, 6, w2);
  memcpy(b, a, sizeof(a));
  dt__addrsort_interleave(b, 6, 5);
  static const char *const w3[] = {"2001:db8::1", "2001:db8::2", "2001:db8::3",
                                   "192.0.2.1",   "192.0.2.2",   "2001:db8::4"};
  expect_order(b, 6, w3);
  /* IPv4 preferred: it leads. */
  dt__sortaddr_t c[] = {entry("192.0.2.1", "192.0.2.9", 0),
                        entry("192.0.2.2", "192.0.2.9", 1),
                        entry("2001:db8::1", "2001:db8::9", 2)};
  dt__addrsort_interleave(c, 3, 1);
  static const char *const w4[] = {"192.0.2.1", "2001:db8::1", "192.0.2.2"};
  expect_order(c, 3, w4);
  /* One family: unchanged. */
  dt__sortaddr_t d[] = {entry("192.0.2.1", "192.0.2.9", 0),
                        entry("192.0.2.2", "192.0.2.9", 1)};
  dt__addrsort_interleave(d, 2, 1);
  static const char *const w5[] = {"192.0.2.1", "192.0.2.2"};
  expect_order(d, 2, w5);
}

/* The kernel's answer on loopback, through the real socket operations. */
static void test_source_loopback(void **state) {
  (void)state;
  dt__sortaddr_t a = entry("127.0.0.1", NULL, 0);
  dt__addrsort_source(dt__sockops_system(), &a);
  assert_true(a.usable);
  assert_int_equal(a.src.sa.sa_family, AF_INET);
  assert_int_equal(ntohl(a.src.in.sin_addr.s_addr), 0x7f000001);

  dt__sortaddr_t b = entry("::1", NULL, 0);
  dt__addrsort_source(dt__sockops_system(), &b);
  if (!b.usable) {
    print_message("::1 unavailable on this host: IPv6 source skipped\n");
    skip();
  }
  char buf[64];
  inet_ntop(AF_INET6, &b.src.in6.sin6_addr, buf, sizeof(buf));
  assert_string_equal(buf, "::1");
  /* Link-local without a scope: no route, unusable. */
  dt__sortaddr_t c = entry("fe80::1", NULL, 0);
  dt__addrsort_source(dt__sockops_system(), &c);
  assert_false(c.usable);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_policy_table),    cmocka_unit_test(test_rules),
      cmocka_unit_test(test_stable),          cmocka_unit_test(test_interleave),
      cmocka_unit_test(test_source_loopback),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
