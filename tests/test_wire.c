#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ldns/ldns.h>

#include "alloc.h"
#include "dialtone.h"
#include "wire.h"

/* ---- packets made with ldns ---------------------------------------------- */

typedef struct {
  const char *qname;
  uint16_t qtype;
  int rcode;
  const char *an[24]; /* records in ldns's text form; NULL ends a list */
  const char *ns[4];
  const char *ar[4];
  bool topbit; /* set the top bit of every answer and authority TTL */
} spec_t;

static void push_all(ldns_pkt *p, ldns_pkt_section sec, const char *const *rrs,
                     size_t max, bool topbit) {
  for (size_t i = 0; i < max && rrs[i] != NULL; i++) {
    ldns_rr *rr = NULL;
    ldns_status s = ldns_rr_new_frm_str(&rr, rrs[i], 0, NULL, NULL);
    if (s != LDNS_STATUS_OK) {
      fail_msg("ldns cannot read \"%s\": %s", rrs[i],
               ldns_get_errorstr_by_id(s));
    }
    if (topbit) {
      ldns_rr_set_ttl(rr, ldns_rr_ttl(rr) | 0x80000000u);
    }
    assert_true(ldns_pkt_push_rr(p, sec, rr));
  }
}

/* The reply described by s, in wire form (compressed by ldns); free(). */
static uint8_t *wire_of(const spec_t *s, size_t *len) {
  ldns_pkt *p = ldns_pkt_new();
  assert_non_null(p);
  ldns_pkt_set_id(p, 0x1234);
  ldns_pkt_set_qr(p, true);
  ldns_pkt_set_rd(p, true);
  ldns_pkt_set_ra(p, true);
  ldns_pkt_set_rcode(p, (uint8_t)s->rcode);
  ldns_rr *q = ldns_rr_new();
  ldns_rdf *owner = ldns_dname_new_frm_str(s->qname);
  assert_non_null(q);
  assert_non_null(owner);
  ldns_rr_set_owner(q, owner);
  ldns_rr_set_type(q, (ldns_rr_type)s->qtype);
  ldns_rr_set_class(q, LDNS_RR_CLASS_IN);
  ldns_rr_set_question(q, true);
  assert_true(ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, q));
  push_all(p, LDNS_SECTION_ANSWER, s->an, 24, s->topbit);
  push_all(p, LDNS_SECTION_AUTHORITY, s->ns, 4, s->topbit);
  push_all(p, LDNS_SECTION_ADDITIONAL, s->ar, 4, false);
  uint8_t *w = NULL;
  assert_int_equal(ldns_pkt2wire(&w, p, len), LDNS_STATUS_OK);
  ldns_pkt_free(p);
  return w;
}

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static char *hex(const uint8_t *b, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) {
    sprintf(out + 2 * i, "%02x", b[i]);
  }
  out[2 * n] = '\0';
  return out;
}

/* ---- dt__wire_random ----------------------------------------------------- */

static void test_random(void **state) {
  (void)state;
  uint8_t a[64], b[64];
  memset(a, 0, sizeof(a));
  memset(b, 0, sizeof(b));
  assert_int_equal(dt__wire_random(a, sizeof(a)), DT_OK);
  assert_int_equal(dt__wire_random(b, sizeof(b)), DT_OK);
  assert_memory_not_equal(a, b, sizeof(a));
  assert_int_equal(dt__wire_random(NULL, 0), DT_OK);
  assert_int_equal(dt__wire_random(NULL, 1), DT_EINVAL);
}

/* ---- dt__wire_build_query ------------------------------------------------ */

static void test_query_layout(void **state) {
  (void)state;
  uint8_t buf[DT_WIRE_QUERY_MAX];
  size_t len = 0;
  uint16_t id = 0;
  assert_int_equal(dt__wire_build_query("a.test", DT_TYPE_AAAA, true, buf,
                                        sizeof(buf), &len, &id),
                   DT_OK);
  static const uint8_t want[] = {
      0x01, 0x00, 0,  1,    0,    0,   0,   0, 0, 1,   /* RD, counts */
      1,    'a',  4,  't',  'e',  's', 't', 0,         /* name */
      0,    28,   0,  1,                               /* AAAA IN */
      0,    0,    41, 0x04, 0xd0, 0,   0,   0, 0, 0, 0 /* OPT 1232 */
  };
  assert_int_equal(len, 2 + sizeof(want));
  assert_int_equal(buf[0] << 8 | buf[1], id);
  assert_memory_equal(buf + 2, want, sizeof(want));

  /* ldns reads it as the same question. */
  ldns_pkt *p = NULL;
  assert_int_equal(ldns_wire2pkt(&p, buf, len), LDNS_STATUS_OK);
  assert_int_equal(ldns_pkt_id(p), id);
  assert_true(ldns_pkt_rd(p));
  assert_false(ldns_pkt_qr(p));
  assert_int_equal(ldns_pkt_edns_udp_size(p), DT_WIRE_EDNS_UDP_SIZE);
  ldns_rr *q = ldns_rr_list_rr(ldns_pkt_question(p), 0);
  char *owner = ldns_rdf2str(ldns_rr_owner(q));
  assert_string_equal(owner, "a.test.");
  free(owner);
  assert_int_equal(ldns_rr_get_type(q), LDNS_RR_TYPE_AAAA);
  ldns_pkt_free(p);

  /* Without EDNS: no additional record; a trailing dot changes nothing. */
  uint8_t buf2[DT_WIRE_QUERY_MAX];
  size_t len2;
  assert_int_equal(dt__wire_build_query("a.test.", DT_TYPE_AAAA, false, buf2,
                                        sizeof(buf2), &len2, &id),
                   DT_OK);
  assert_int_equal(len2, 24);
  assert_int_equal(buf2[11], 0);
  assert_memory_equal(buf2 + 2, want, 9);
  assert_memory_equal(buf2 + 12, want + 10, 12);
}

static void test_query_ids(void **state) {
  (void)state;
  uint16_t ids[64];
  size_t distinct = 0;
  for (size_t i = 0; i < 64; i++) {
    uint8_t buf[DT_WIRE_QUERY_MAX];
    size_t len;
    assert_int_equal(dt__wire_build_query("a.test", DT_TYPE_A, true, buf,
                                          sizeof(buf), &len, &ids[i]),
                     DT_OK);
    bool seen = false;
    for (size_t j = 0; j < i; j++) {
      seen = seen || ids[j] == ids[i];
    }
    distinct += !seen;
  }
  /* 64 draws from 65536 collide about once in 32 runs; many collisions
   * mean the ID is not random. */
  assert_true(distinct >= 60);
}

static void test_query_names(void **state) {
  (void)state;
  static const struct {
    const char *name;
    dt_status_t want;
    const char *wire_hex; /* the encoded name when DT_OK */
  } cases[] = {
      {".", DT_OK, "00"},
      {"test", DT_OK, "047465737400"},
      {"a\\.b.test.", DT_OK,
       "03612e620474657374"
       "00"},
      {"\\065bc", DT_OK, "0341626300"},
      {"\\000", DT_OK, "010000"},
      {"x\\\\y", DT_OK, "03785c7900"},
      {"", DT_EBADNAME, NULL},
      {"..", DT_EBADNAME, NULL},
      {".a", DT_EBADNAME, NULL},
      {"a..b", DT_EBADNAME, NULL},
      {"a\\", DT_EBADNAME, NULL},
      {"\\256", DT_EBADNAME, NULL},
      {"\\1", DT_EBADNAME, NULL},
      {"\\12x", DT_EBADNAME, NULL},
      {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test",
       DT_EBADNAME, NULL}, /* 64-octet label */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint8_t buf[DT_WIRE_QUERY_MAX];
    size_t len = 7;
    uint16_t id = 7;
    dt_status_t st = dt__wire_build_query(cases[i].name, DT_TYPE_A, false, buf,
                                          sizeof(buf), &len, &id);
    if (st != cases[i].want) {
      fail_msg("\"%s\": %s", cases[i].name, dt_status_name(st));
    }
    if (st != DT_OK) {
      assert_int_equal(len, 7); /* outputs untouched on failure */
      assert_int_equal(id, 7);
      continue;
    }
    char h[2 * DT_WIRE_QUERY_MAX + 1];
    size_t nlen = len - 12 - 4;
    assert_string_equal(hex(buf + 12, nlen, h), cases[i].wire_hex);
  }
}

static void test_query_limits(void **state) {
  (void)state;
  /* 63+63+63+61 octets of labels: 255 octets on the wire, the most. */
  char name[300];
  memset(name, 'a', sizeof(name));
  name[63] = name[127] = name[191] = '.';
  name[253] = '\0';
  uint8_t buf[DT_WIRE_QUERY_MAX];
  size_t len;
  uint16_t id;
  assert_int_equal(
      dt__wire_build_query(name, DT_TYPE_A, true, buf, sizeof(buf), &len, &id),
      DT_OK);
  assert_int_equal(len, 12 + 255 + 4 + 11);
  assert_int_equal(
      dt__wire_build_query(name, DT_TYPE_A, true, buf, len, &len, &id), DT_OK);
  size_t before = len;
  assert_int_equal(
      dt__wire_build_query(name, DT_TYPE_A, true, buf, len - 1, &len, &id),
      DT_ENAMETOOLONG);
  assert_int_equal(len, before);
  name[253] = 'a';
  name[254] = '\0';
  assert_int_equal(
      dt__wire_build_query(name, DT_TYPE_A, true, buf, sizeof(buf), &len, &id),
      DT_EBADNAME);
  assert_int_equal(
      dt__wire_build_query(NULL, DT_TYPE_A, true, buf, sizeof(buf), &len, &id),
      DT_EINVAL);
  assert_int_equal(
      dt__wire_build_query("a", DT_TYPE_A, true, NULL, 0, &len, &id),
      DT_EINVAL);
}

/* ---- dt__wire_match ------------------------------------------------------ */

typedef struct {
  uint8_t q[DT_WIRE_QUERY_MAX];
  size_t qlen;
  uint8_t r[DT_WIRE_QUERY_MAX];
  size_t rlen;
} exchange_t;

/* A query for www.dialtone.test/A and its bare reply (the same bytes with
 * QR set). */
static void exchange(exchange_t *x) {
  uint16_t id;
  assert_int_equal(dt__wire_build_query("www.dialtone.test", DT_TYPE_A, true,
                                        x->q, sizeof(x->q), &x->qlen, &id),
                   DT_OK);
  memcpy(x->r, x->q, x->qlen);
  x->rlen = x->qlen;
  x->r[2] |= 0x80;
}

static void mut_none(exchange_t *x) {
  (void)x;
}
static void mut_id(exchange_t *x) {
  x->r[1] ^= 1;
}
static void mut_qr(exchange_t *x) {
  x->r[2] &= 0x7f;
}
static void mut_opcode(exchange_t *x) {
  x->r[2] |= 2 << 3;
}
static void mut_qd0(exchange_t *x) {
  put16(x->r + 4, 0);
}
static void mut_qd2(exchange_t *x) {
  put16(x->r + 4, 2);
}
static void mut_name(exchange_t *x) {
  x->r[13] = 'x';
}
static void mut_case(exchange_t *x) {
  x->r[13] = 'W';
  x->r[17] = 'D';
  x->r[26] = 'T';
}
static void mut_type(exchange_t *x) {
  x->r[12 + 19 + 1] = 28;
}
static void mut_class(exchange_t *x) {
  x->r[12 + 19 + 3] = 3;
}
static void mut_short(exchange_t *x) {
  x->rlen = 11;
}
static void mut_labeltype(exchange_t *x) {
  x->r[12] = 0x43;
}
static void mut_label_overrun(exchange_t *x) {
  x->r[12] = 63;
}

static void test_match(void **state) {
  (void)state;
  static const struct {
    const char *label;
    void (*mutate)(exchange_t *);
    dt_match_t want;
  } cases[] = {
      {"same", mut_none, DT_MATCH_OK},
      {"other ID", mut_id, DT_MATCH_ID},
      {"QR clear", mut_qr, DT_MATCH_QUESTION},
      {"other opcode", mut_opcode, DT_MATCH_QUESTION},
      {"no question", mut_qd0, DT_MATCH_QUESTION},
      {"two questions", mut_qd2, DT_MATCH_QUESTION},
      {"other name", mut_name, DT_MATCH_QUESTION},
      {"name in other case", mut_case, DT_MATCH_OK},
      {"other type", mut_type, DT_MATCH_QUESTION},
      {"other class", mut_class, DT_MATCH_QUESTION},
      {"shorter than a header", mut_short, DT_MATCH_MALFORMED},
      {"extended label type", mut_labeltype, DT_MATCH_MALFORMED},
      {"label past the end", mut_label_overrun, DT_MATCH_MALFORMED},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    exchange_t x;
    exchange(&x);
    cases[i].mutate(&x);
    dt_match_t got = dt__wire_match(x.r, x.rlen, x.q, x.qlen);
    if (got != cases[i].want) {
      fail_msg("%s: got %d, want %d", cases[i].label, (int)got,
               (int)cases[i].want);
    }
  }
}

static void test_match_compressed(void **state) {
  (void)state;
  uint8_t q[DT_WIRE_QUERY_MAX];
  size_t qlen;
  uint16_t id;
  assert_int_equal(
      dt__wire_build_query("www", DT_TYPE_A, false, q, sizeof(q), &qlen, &id),
      DT_OK);
  /* The reply's question is "WWW" then a pointer to offset 11, the low
   * byte of ARCOUNT (0): the root. Legal, if odd. */
  uint8_t r[] = {q[0], q[1], 0x81, 0x80, 0,   1,    0,  0, 0, 0, 0,
                 0,    3,    'W',  'W',  'W', 0xc0, 11, 0, 1, 0, 1};
  assert_int_equal(dt__wire_match(r, sizeof(r), q, qlen), DT_MATCH_OK);
  /* A pointer to itself, and one to the start of its own name, loop. */
  uint8_t self[] = {q[0], q[1], 0x81, 0x80, 0,  1, 0, 0, 0,
                    0,    0,    0,    0xc0, 12, 0, 1, 0, 1};
  assert_int_equal(dt__wire_match(self, sizeof(self), q, qlen),
                   DT_MATCH_MALFORMED);
  uint8_t back[] = {q[0], q[1], 0x81, 0x80, 0,   1,    0,  0, 0, 0, 0,
                    0,    3,    'w',  'w',  'w', 0xc0, 12, 0, 1, 0, 1};
  assert_int_equal(dt__wire_match(back, sizeof(back), q, qlen),
                   DT_MATCH_MALFORMED);
  /* A pointer forwards. */
  uint8_t fwd[] = {q[0], q[1], 0x81, 0x80, 0, 1, 0, 0,   0,   0,   0, 0,
                   0xc0, 18,   0,    1,    0, 1, 3, 'w', 'w', 'w', 0};
  assert_int_equal(dt__wire_match(fwd, sizeof(fwd), q, qlen),
                   DT_MATCH_MALFORMED);
}

/* ---- dt__wire_head ------------------------------------------------------- */

static void test_head(void **state) {
  (void)state;
  spec_t s = {.qname = "a.test.", .qtype = DT_TYPE_A, .rcode = 3};
  size_t len;
  uint8_t *w = wire_of(&s, &len);
  dt_reply_head_t h;
  assert_int_equal(dt__wire_head(w, len, &h), DT_OK);
  assert_int_equal(h.rcode, 3);
  assert_false(h.tc);
  assert_false(h.has_opt);
  w[2] |= 0x02;
  assert_int_equal(dt__wire_head(w, len, &h), DT_OK);
  assert_true(h.tc);
  free(w);
  assert_int_equal(dt__wire_head(NULL, 0, &h), DT_EINVAL);

  /* Our own query with QR set has an OPT; its TTL's top byte extends the
   * rcode (RFC 6891 §6.1.3): 1 << 4 | 0 is BADVERS. */
  exchange_t x;
  exchange(&x);
  assert_int_equal(dt__wire_head(x.r, x.rlen, &h), DT_OK);
  assert_true(h.has_opt);
  assert_int_equal(h.rcode, 0);
  x.r[x.rlen - 6] = 1;
  assert_int_equal(dt__wire_head(x.r, x.rlen, &h), DT_OK);
  assert_int_equal(h.rcode, 16);
  x.r[3] |= 3;
  assert_int_equal(dt__wire_head(x.r, x.rlen, &h), DT_OK);
  assert_int_equal(h.rcode, 19);

  /* Two OPT records, or an OPT with an owner, are malformed. */
  uint8_t two[DT_WIRE_QUERY_MAX * 2];
  memcpy(two, x.r, x.rlen);
  memcpy(two + x.rlen, x.r + x.rlen - 11, 11);
  put16(two + 10, 2);
  assert_int_equal(dt__wire_head(two, x.rlen + 11, &h), DT_EBADREPLY);
  memcpy(two, x.r, x.rlen - 11);
  static const uint8_t named_opt[] = {1, 'x', 0, 0, 41, 4, 0xd0,
                                      0, 0,   0, 0, 0,  0};
  memcpy(two + x.rlen - 11, named_opt, sizeof(named_opt));
  put16(two + 10, 1);
  assert_int_equal(dt__wire_head(two, x.rlen - 11 + sizeof(named_opt), &h),
                   DT_EBADREPLY);
}

/* ---- answers built by hand ---------------------------------------------- */

/* Clone works on any answer, not only parsed ones: the cache may build
 * them from its own storage. */
static void test_answer_by_hand(void **state) {
  (void)state;
  static const uint8_t rd1[] = {192, 0, 2, 1};
  const dt_rr_t an[] = {
      {"www.test.", DT_TYPE_CNAME, 1, 30, (const uint8_t *)"\1a\4test", 8,
       "a.test."},
      {"a.test.", DT_TYPE_A, 1, 60, rd1, 4, "192.0.2.1"},
  };
  const dt_rr_t au[] = {{"test.", DT_TYPE_SOA, 1, 90, NULL, 0, NULL}};
  dt_answer_t a;
  memset(&a, 0, sizeof(a));
  a.qname = "www.test.";
  a.qtype = DT_TYPE_A;
  a.qclass = 1;
  a.canonical = NULL;
  a.answer = an;
  a.nanswer = 2;
  a.authority = au;
  a.nauthority = 1;
  a.ttl = 30;
  a.from_cache = true;
  assert_int_equal(dt_answer_status(&a), DT_OK);
  a.qtype = DT_TYPE_AAAA;
  assert_int_equal(dt_answer_status(&a), DT_ENODATA);
  a.qtype = DT_TYPE_CNAME;
  assert_int_equal(dt_answer_status(&a), DT_OK);
  a.qtype = DT_TYPE_ANY;
  assert_int_equal(dt_answer_status(&a), DT_OK);
  a.qtype = DT_TYPE_A;

  dt_answer_t *c = NULL;
  assert_int_equal(dt__answer_clone(&a, &c), DT_OK);
  size_t size = dt__answer_size(c);
  assert_int_equal(size, dt__answer_size(&a));
  const uint8_t *lo = (const uint8_t *)c, *hi = lo + size;
  assert_true((const uint8_t *)c->qname > lo && (const uint8_t *)c->qname < hi);
  assert_string_equal(c->qname, "www.test.");
  assert_null(c->canonical); /* absent strings stay absent */
  assert_true(c->from_cache);
  assert_int_equal(c->nanswer, 2);
  assert_int_equal(c->nauthority, 1);
  assert_true((const uint8_t *)c->answer[1].rdata > lo &&
              (const uint8_t *)c->answer[1].rdata + 4 <= hi);
  assert_memory_equal(c->answer[1].rdata, rd1, 4);
  assert_string_equal(c->answer[1].data, "192.0.2.1");
  assert_null(c->authority[0].data);
  assert_string_equal(c->authority[0].owner, "test.");
  dt__answer_age(c, 45);
  assert_int_equal(c->ttl, 0);
  assert_int_equal(c->answer[0].ttl, 0);
  assert_int_equal(c->answer[1].ttl, 15);
  assert_int_equal(c->authority[0].ttl, 45);
  assert_int_equal(a.answer[1].ttl, 60); /* the original is untouched */

  static const struct {
    int rcode;
    dt_status_t want;
  } rcodes[] = {{1, DT_EFORMERR},  {2, DT_ESERVFAIL}, {3, DT_ENXDOMAIN},
                {4, DT_ENOTIMP},   {5, DT_EREFUSED},  {9, DT_EBADREPLY},
                {16, DT_EBADREPLY}};
  for (size_t i = 0; i < sizeof(rcodes) / sizeof(rcodes[0]); i++) {
    c->rcode = rcodes[i].rcode;
    assert_int_equal(dt_answer_status(c), rcodes[i].want);
  }
  dt_answer_free(c);
}

/* ---- text ---------------------------------------------------------------- */

static void test_type_str(void **state) {
  (void)state;
  static const struct {
    uint16_t type;
    const char *name;
  } names[] = {{1, "A"},
               {28, "AAAA"},
               {5, "CNAME"},
               {65, "HTTPS"},
               {64, "SVCB"},
               {257, "CAA"},
               {255, "ANY"},
               {0, "TYPE0"},
               {65280, "TYPE65280"},
               {65535, "TYPE65535"}};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    char buf[32];
    assert_string_equal(dt_type_tostr(names[i].type, buf, sizeof(buf)),
                        names[i].name);
    uint16_t t = 1;
    assert_int_equal(dt_type_fromstr(names[i].name, &t), DT_OK);
    assert_int_equal(t, names[i].type);
  }
  char small[3];
  assert_string_equal(dt_type_tostr(28, small, sizeof(small)), "AA");
  assert_string_equal(dt_type_tostr(28, NULL, 0), "");

  static const struct {
    const char *s;
    dt_status_t st;
    uint16_t type;
  } parse[] = {{"aaaa", DT_OK, 28},         {"Https", DT_OK, 65},
               {"type28", DT_OK, 28},       {"TyPe00065", DT_OK, 65},
               {"TYPE65536", DT_EINVAL, 0}, {"TYPE99999", DT_EINVAL, 0},
               {"TYPE", DT_EINVAL, 0},      {"TYPE1x", DT_EINVAL, 0},
               {"TYPE-1", DT_EINVAL, 0},    {"nonsense", DT_EINVAL, 0},
               {"", DT_EINVAL, 0},          {"A ", DT_EINVAL, 0}};
  for (size_t i = 0; i < sizeof(parse) / sizeof(parse[0]); i++) {
    uint16_t t = 0;
    dt_status_t st = dt_type_fromstr(parse[i].s, &t);
    if (st != parse[i].st || (st == DT_OK && t != parse[i].type)) {
      fail_msg("\"%s\": %s %u", parse[i].s, dt_status_name(st), t);
    }
  }
  uint16_t t;
  assert_int_equal(dt_type_fromstr(NULL, &t), DT_EINVAL);
  assert_int_equal(dt_type_fromstr("A", NULL), DT_EINVAL);
}

static void test_rcode_str(void **state) {
  (void)state;
  char buf[16];
  assert_string_equal(dt_rcode_tostr(0, buf, sizeof(buf)), "NOERROR");
  assert_string_equal(dt_rcode_tostr(3, buf, sizeof(buf)), "NXDOMAIN");
  assert_string_equal(dt_rcode_tostr(5, NULL, 0), "REFUSED");
  assert_string_equal(dt_rcode_tostr(16, buf, sizeof(buf)), "BADVERS");
  assert_string_equal(dt_rcode_tostr(23, buf, sizeof(buf)), "RCODE23");
  assert_string_equal(dt_rcode_tostr(-1, buf, sizeof(buf)), "RCODE-1");
}

static void test_rr_str(void **state) {
  (void)state;
  static const uint8_t rd[] = {192, 0, 2, 1};
  dt_rr_t rr = {"a.test.", 1, 1, 42, rd, 4, "192.0.2.1"};
  char buf[64];
  assert_int_equal(dt_rr_tostr(&rr, buf, sizeof(buf)), DT_OK);
  assert_string_equal(buf, "a.test.\t42\tIN\tA\t192.0.2.1");
  rr.rclass = 3;
  rr.type = 65280;
  rr.data = "\\# 0";
  assert_int_equal(dt_rr_tostr(&rr, buf, sizeof(buf)), DT_OK);
  assert_string_equal(buf, "a.test.\t42\tCLASS3\tTYPE65280\t\\# 0");
  char small[10];
  assert_int_equal(dt_rr_tostr(&rr, small, sizeof(small)), DT_ENAMETOOLONG);
  assert_string_equal(small, "a.test.\t4");
  assert_int_equal(dt_rr_tostr(NULL, buf, sizeof(buf)), DT_EINVAL);
  assert_int_equal(dt_rr_tostr(&rr, buf, 0), DT_EINVAL);
}

int main(void) {
  static const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_random),
      cmocka_unit_test(test_query_layout),
      cmocka_unit_test(test_query_ids),
      cmocka_unit_test(test_query_names),
      cmocka_unit_test(test_query_limits),
      cmocka_unit_test(test_match),
      cmocka_unit_test(test_match_compressed),
      cmocka_unit_test(test_head),
      cmocka_unit_test(test_answer_by_hand),
      cmocka_unit_test(test_type_str),
      cmocka_unit_test(test_rcode_str),
      cmocka_unit_test(test_rr_str),
  };
  return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}
