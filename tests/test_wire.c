#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Offset just past the question of a packet with one question. */
static size_t question_end(const uint8_t *w) {
  size_t pos = 12;
  while (w[pos] != 0 && (w[pos] & 0xc0) == 0) {
    pos += (size_t)w[pos] + 1;
  }
  pos += (w[pos] & 0xc0) ? 2 : 1;
  return pos + 4;
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

/* 0x20: letters get a random case, everything else stays; the exact
 * match then refuses the reply in any other case. */
static void test_mix_case(void **state) {
  (void)state;
  const char *name = "abcdefghijklmnopqrstuvwxyz-0123.Example.";
  uint8_t q[DT_WIRE_QUERY_MAX], plain[DT_WIRE_QUERY_MAX];
  size_t qlen, plen;
  uint16_t id;
  bool upper = false, lower_seen = false;
  for (int round = 0; round < 4; round++) {
    assert_int_equal(
        dt__wire_build_query(name, DT_TYPE_A, true, q, sizeof(q), &qlen, &id),
        DT_OK);
    memcpy(plain, q, qlen);
    plen = qlen;
    assert_int_equal(dt__wire_mix_case(q, qlen), DT_OK);
    assert_int_equal(qlen, plen);
    for (size_t i = 0; i < qlen; i++) {
      uint8_t a = q[i], b = plain[i];
      if (a != b) {
        assert_true((a | 0x20) == (b | 0x20) && (a | 0x20) >= 'a' &&
                    (a | 0x20) <= 'z');
      }
      upper = upper || (a >= 'A' && a <= 'Z');
      lower_seen = lower_seen || (a >= 'a' && a <= 'z');
    }
    /* The reply echoes the mixed name: it matches, exactly too; the
     * query as first built (other case) matches only loosely. */
    uint8_t r[DT_WIRE_QUERY_MAX];
    memcpy(r, q, qlen);
    r[2] |= 0x80;
    assert_int_equal(dt__wire_match_exact(r, qlen, q, qlen), DT_MATCH_OK);
    memcpy(r + 12, plain + 12, qlen - 12);
    assert_int_equal(dt__wire_match(r, qlen, q, qlen), DT_MATCH_OK);
    if (memcmp(plain, q, qlen) != 0) {
      assert_int_equal(dt__wire_match_exact(r, qlen, q, qlen),
                       DT_MATCH_QUESTION);
    }
  }
  /* 30 letters a round: all one case in four rounds would be 2^-118. */
  assert_true(upper && lower_seen);
  assert_int_equal(dt__wire_mix_case(q, 5), DT_EINVAL);
  assert_int_equal(dt__wire_mix_case(NULL, 0), DT_EINVAL);
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

/* Every prefix of a reply is matched, walked and parsed without crashing:
 * cut inside the question it is MALFORMED, after it the question still
 * matches, and only the whole packet parses. */
static void test_truncated(void **state) {
  (void)state;
  uint8_t q[DT_WIRE_QUERY_MAX];
  size_t qlen;
  uint16_t id;
  assert_int_equal(dt__wire_build_query("www.dialtone.test", DT_TYPE_A, false,
                                        q, sizeof(q), &qlen, &id),
                   DT_OK);
  spec_t s = {.qname = "www.dialtone.test.",
              .qtype = DT_TYPE_A,
              .an = {"www.dialtone.test. 60 IN CNAME web.dialtone.test.",
                     "web.dialtone.test. 60 IN A 192.0.2.1"},
              .ns = {"dialtone.test. 60 IN NS ns.dialtone.test."},
              .ar = {"ns.dialtone.test. 60 IN A 192.0.2.53"}};
  size_t len;
  uint8_t *w = wire_of(&s, &len);
  w[0] = q[0];
  w[1] = q[1];
  size_t qend = question_end(w);
  for (size_t n = 0; n <= len; n++) {
    uint8_t *cut = malloc(n > 0 ? n : 1); /* exact size: ASan sees overreads */
    assert_non_null(cut);
    memcpy(cut, w, n);
    dt_match_t m = dt__wire_match(cut, n, q, qlen);
    assert_int_equal(m, n < qend ? DT_MATCH_MALFORMED : DT_MATCH_OK);
    dt_reply_head_t h;
    assert_int_equal(dt__wire_head(cut, n, &h), n < len ? DT_EBADREPLY : DT_OK);
    dt_answer_t *a = NULL;
    dt_status_t st = dt__wire_parse(cut, n, &a);
    assert_int_equal(st, n < len ? DT_EBADREPLY : DT_OK);
    dt_answer_free(a);
    free(cut);
  }
  free(w);
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

/* ---- dt__wire_parse: table ----------------------------------------------- */

typedef struct {
  const char *label;
  spec_t pkt;
  dt_status_t parse;  /* from dt__wire_parse */
  dt_status_t status; /* from dt_answer_status */
  const char *canonical;
  uint32_t ttl;
  const char *answer[24]; /* dt_rr_tostr lines, in order */
  const char *authority[2];
  const char *rdata0; /* hex of the first answer's RDATA, when set */
} parse_case_t;

#define SOA_TEST(ttl, min)                                                     \
  "test. " #ttl " IN SOA ns.test. host.test. 1 3600 900 604800 " #min
#define SOA_TEST_TEXT(ttl, min)                                                \
  "test.\t" #ttl "\tIN\tSOA\tns.test. host.test. 1 3600 900 604800 " #min

static const parse_case_t parse_cases[] = {
    {.label = "A",
     .pkt = {.qname = "a.test.",
             .qtype = DT_TYPE_A,
             .an = {"a.test. 300 IN A 192.0.2.1",
                    "a.test. 200 IN A 192.0.2.2"}},
     .canonical = "a.test.",
     .ttl = 200,
     .answer = {"a.test.\t300\tIN\tA\t192.0.2.1",
                "a.test.\t200\tIN\tA\t192.0.2.2"},
     .rdata0 = "c0000201"},
    {.label = "AAAA",
     .pkt = {.qname = "a.test.",
             .qtype = DT_TYPE_AAAA,
             .an = {"a.test. 300 IN AAAA 2001:db8::1"}},
     .canonical = "a.test.",
     .ttl = 300,
     .answer = {"a.test.\t300\tIN\tAAAA\t2001:db8::1"},
     .rdata0 = "20010db8000000000000000000000001"},
    {.label = "CNAME chain of 3, records out of order",
     .pkt = {.qname = "www.test.",
             .qtype = DT_TYPE_A,
             .an = {"c2.test. 50 IN CNAME c3.test.",
                    "c3.test. 300 IN A 192.0.2.7",
                    "www.test. 100 IN CNAME c1.test.",
                    "c1.test. 70 IN CNAME c2.test."}},
     .canonical = "c3.test.",
     .ttl = 50,
     .answer = {"www.test.\t100\tIN\tCNAME\tc1.test.",
                "c1.test.\t70\tIN\tCNAME\tc2.test.",
                "c2.test.\t50\tIN\tCNAME\tc3.test.",
                "c3.test.\t300\tIN\tA\t192.0.2.7"},
     .rdata0 = "026331047465737400"},
    {.label = "MX",
     .pkt = {.qname = "dialtone.test.",
             .qtype = DT_TYPE_MX,
             .an = {"dialtone.test. 300 IN MX 10 mail.dialtone.test."}},
     .canonical = "dialtone.test.",
     .ttl = 300,
     .answer = {"dialtone.test.\t300\tIN\tMX\t10 mail.dialtone.test."},
     /* uncompressed, though ldns compressed the name on the wire */
     .rdata0 = "000a 046d61696c 086469616c746f6e65 0474657374 00"},
    {.label = "TXT with spaces and quotes",
     .pkt = {.qname = "t.test.",
             .qtype = DT_TYPE_TXT,
             .an = {"t.test. 300 IN TXT \"hello world\" \"say \\\"hi\\\"\""}},
     .canonical = "t.test.",
     .ttl = 300,
     .answer = {"t.test.\t300\tIN\tTXT\t\"hello world\" \"say \\\"hi\\\"\""},
     .rdata0 = "0b 68656c6c6f20776f726c64 08 7361792022686922"},
    {.label = "SRV",
     .pkt = {.qname = "_sip._tcp.test.",
             .qtype = DT_TYPE_SRV,
             .an = {"_sip._tcp.test. 300 IN SRV 10 20 5060 sip.test."}},
     .canonical = "_sip._tcp.test.",
     .ttl = 300,
     .answer = {"_sip._tcp.test.\t300\tIN\tSRV\t10 20 5060 sip.test."}},
    {.label = "NS",
     .pkt = {.qname = "test.",
             .qtype = DT_TYPE_NS,
             .an = {"test. 300 IN NS ns1.test.", "test. 300 IN NS ns2.test."}},
     .canonical = "test.",
     .ttl = 300,
     .answer = {"test.\t300\tIN\tNS\tns1.test.",
                "test.\t300\tIN\tNS\tns2.test."}},
    {.label = "SOA",
     .pkt = {.qname = "test.", .qtype = DT_TYPE_SOA, .an = {SOA_TEST(300, 60)}},
     .canonical = "test.",
     .ttl = 300,
     .answer = {SOA_TEST_TEXT(300, 60)}},
    {.label = "PTR",
     .pkt = {.qname = "1.2.0.192.in-addr.arpa.",
             .qtype = DT_TYPE_PTR,
             .an = {"1.2.0.192.in-addr.arpa. 300 IN PTR a.test."}},
     .canonical = "1.2.0.192.in-addr.arpa.",
     .ttl = 300,
     .answer = {"1.2.0.192.in-addr.arpa.\t300\tIN\tPTR\ta.test."}},
    {.label = "CAA",
     .pkt = {.qname = "a.test.",
             .qtype = DT_TYPE_CAA,
             .an = {"a.test. 300 IN CAA 0 issue \"ca.test\""}},
     .canonical = "a.test.",
     .ttl = 300,
     .answer = {"a.test.\t300\tIN\tCAA\t0 issue \"ca.test\""},
     .rdata0 = "00 05 6973737565 63612e74657374"},
    {.label = "HTTPS",
     .pkt = {.qname = "a.test.",
             .qtype = DT_TYPE_HTTPS,
             .an = {"a.test. 300 IN HTTPS 1 . alpn=h2,h3 ipv4hint=192.0.2.1"}},
     .canonical = "a.test.",
     .ttl = 300,
     .answer = {"a.test.\t300\tIN\tHTTPS\t1 . alpn=h2,h3 ipv4hint=192.0.2.1"},
     .rdata0 = "0001 00 0001 0006 026832026833 0004 0004 c0000201"},
    {.label = "SVCB",
     .pkt = {.qname = "_dns.a.test.",
             .qtype = DT_TYPE_SVCB,
             .an = {"_dns.a.test. 300 IN SVCB 1 dns.test. alpn=dot port=853"}},
     .canonical = "_dns.a.test.",
     .ttl = 300,
     .answer = {"_dns.a.test.\t300\tIN\tSVCB\t1 dns.test. alpn=dot port=853"}},
    {.label = "unknown type 65280",
     .pkt = {.qname = "a.test.",
             .qtype = 65280,
             .an = {"a.test. 300 IN TYPE65280 \\# 3 010203"}},
     .canonical = "a.test.",
     .ttl = 300,
     .answer = {"a.test.\t300\tIN\tTYPE65280\t\\# 3 010203"},
     .rdata0 = "010203"},
    {.label = "records outside the chain are dropped",
     .pkt = {.qname = "a.test.",
             .qtype = DT_TYPE_A,
             .an = {"b.test. 5 IN A 192.0.2.66", "a.test. 300 IN A 192.0.2.1",
                    "a.test. 5 IN AAAA 2001:db8::66",
                    "a.test. 5 CH A 192.0.2.67", "x.test. 5 IN CNAME a.test."},
             .ns = {"test. 5 IN NS ns.test.", SOA_TEST(5, 5)},
             .ar = {"a.test. 5 IN A 192.0.2.68", "ns.test. 5 IN A 192.0.2.53"}},
     .canonical = "a.test.",
     .ttl = 300,
     .answer = {"a.test.\t300\tIN\tA\t192.0.2.1"}},
    {.label = "ANY: every record at the name",
     .pkt = {.qname = "a.test.",
             .qtype = DT_TYPE_ANY,
             .an = {"a.test. 300 IN A 192.0.2.1", "a.test. 100 IN MX 0 .",
                    "b.test. 5 IN A 192.0.2.2"}},
     .canonical = "a.test.",
     .ttl = 100,
     .answer = {"a.test.\t300\tIN\tA\t192.0.2.1", "a.test.\t100\tIN\tMX\t0 ."}},
    {.label = "CNAME question: the CNAME is the answer",
     .pkt = {.qname = "a.test.",
             .qtype = DT_TYPE_CNAME,
             .an = {"a.test. 300 IN CNAME b.test.",
                    "b.test. 300 IN A 192.0.2.1"}},
     .canonical = "a.test.",
     .ttl = 300,
     .answer = {"a.test.\t300\tIN\tCNAME\tb.test."}},
    {.label = "NXDOMAIN: MINIMUM below the SOA's TTL",
     .pkt = {.qname = "nx.test.",
             .qtype = DT_TYPE_A,
             .rcode = 3,
             .ns = {SOA_TEST(600, 120)}},
     .status = DT_ENXDOMAIN,
     .canonical = "nx.test.",
     .ttl = 120,
     .authority = {SOA_TEST_TEXT(600, 120)}},
    {.label = "NXDOMAIN: SOA's TTL below MINIMUM",
     .pkt = {.qname = "nx.test.",
             .qtype = DT_TYPE_A,
             .rcode = 3,
             .ns = {SOA_TEST(30, 120)}},
     .status = DT_ENXDOMAIN,
     .canonical = "nx.test.",
     .ttl = 30,
     .authority = {SOA_TEST_TEXT(30, 120)}},
    {.label = "NODATA",
     .pkt = {.qname = "a.test.",
             .qtype = DT_TYPE_AAAA,
             .an = {"a.test. 300 IN A 192.0.2.1"},
             .ns = {SOA_TEST(600, 90)}},
     .status = DT_ENODATA,
     .canonical = "a.test.",
     .ttl = 90,
     .authority = {SOA_TEST_TEXT(600, 90)}},
    {.label = "NXDOMAIN after a CNAME: the SOA of the target's zone, and no "
              "longer than the CNAME",
     .pkt = {.qname = "a.test.",
             .qtype = DT_TYPE_A,
             .rcode = 3,
             .an = {"a.test. 30 IN CNAME b.other."},
             .ns = {SOA_TEST(600, 120),
                    "other. 600 IN SOA ns.other. host.other. 1 3600 900 "
                    "604800 60"}},
     .status = DT_ENXDOMAIN,
     .canonical = "b.other.",
     .ttl = 30,
     .answer = {"a.test.\t30\tIN\tCNAME\tb.other."},
     .authority = {"other.\t600\tIN\tSOA\tns.other. host.other. 1 3600 900 "
                   "604800 60"}},
    {.label = "negative without SOA",
     .pkt = {.qname = "nx.test.",
             .qtype = DT_TYPE_A,
             .rcode = 3,
             .ns = {"test. 5 IN NS ns.test."}},
     .status = DT_ENXDOMAIN,
     .canonical = "nx.test.",
     .ttl = 0},
    {.label = "negative with the SOA of another zone",
     .pkt = {.qname = "nx.test.",
             .qtype = DT_TYPE_A,
             .rcode = 3,
             .ns = {"evil. 600 IN SOA ns.evil. host.evil. 1 3600 900 604800 "
                    "120"}},
     .status = DT_ENXDOMAIN,
     .canonical = "nx.test.",
     .ttl = 0},
    {.label = "TTLs with the top bit set count as 0",
     .pkt = {.qname = "a.test.",
             .qtype = DT_TYPE_A,
             .an = {"a.test. 300 IN A 192.0.2.1"},
             .topbit = true},
     .canonical = "a.test.",
     .ttl = 0,
     .answer = {"a.test.\t0\tIN\tA\t192.0.2.1"}},
    {.label = "negative: SOA TTL with the top bit set",
     .pkt = {.qname = "nx.test.",
             .qtype = DT_TYPE_A,
             .rcode = 3,
             .ns = {SOA_TEST(600, 120)},
             .topbit = true},
     .status = DT_ENXDOMAIN,
     .canonical = "nx.test.",
     .ttl = 0,
     .authority = {SOA_TEST_TEXT(0, 120)}},
    {.label = "negative: SOA MINIMUM with the top bit set",
     .pkt = {.qname = "nx.test.",
             .qtype = DT_TYPE_A,
             .rcode = 3,
             .ns = {SOA_TEST(600, 2147483649)}},
     .status = DT_ENXDOMAIN,
     .canonical = "nx.test.",
     .ttl = 0,
     .authority = {SOA_TEST_TEXT(600, 2147483649)}},
    {.label = "SERVFAIL",
     .pkt = {.qname = "a.test.", .qtype = DT_TYPE_A, .rcode = 2},
     .status = DT_ESERVFAIL,
     .canonical = "a.test."},
    {.label = "REFUSED",
     .pkt = {.qname = "a.test.", .qtype = DT_TYPE_A, .rcode = 5},
     .status = DT_EREFUSED,
     .canonical = "a.test."},
    {.label = "FORMERR",
     .pkt = {.qname = "a.test.", .qtype = DT_TYPE_A, .rcode = 1},
     .status = DT_EFORMERR,
     .canonical = "a.test."},
    {.label = "NOTIMP",
     .pkt = {.qname = "a.test.", .qtype = DT_TYPE_A, .rcode = 4},
     .status = DT_ENOTIMP,
     .canonical = "a.test."},
    {.label = "NOTAUTH: another rcode",
     .pkt = {.qname = "a.test.", .qtype = DT_TYPE_A, .rcode = 9},
     .status = DT_EBADREPLY,
     .canonical = "a.test."},
    {.label = "CNAME loop",
     .pkt = {.qname = "a.test.",
             .qtype = DT_TYPE_A,
             .an = {"a.test. 300 IN CNAME b.test.",
                    "b.test. 300 IN CNAME a.test."}},
     .parse = DT_ELOOP},
    {.label = "CNAME to itself",
     .pkt = {.qname = "a.test.",
             .qtype = DT_TYPE_A,
             .an = {"a.test. 300 IN CNAME A.TEST."}},
     .parse = DT_ELOOP},
};

static size_t count_lines(const char *const *lines, size_t max) {
  size_t n = 0;
  while (n < max && lines[n] != NULL) {
    n++;
  }
  return n;
}

static void check_rrs(const char *label, const dt_rr_t *rrs, size_t n,
                      const char *const *want, size_t max) {
  if (n != count_lines(want, max)) {
    for (size_t i = 0; i < n; i++) {
      char line[1024];
      dt_rr_tostr(&rrs[i], line, sizeof(line));
      print_message("  got: %s\n", line);
    }
    fail_msg("%s: %zu records, want %zu", label, n, count_lines(want, max));
  }
  for (size_t i = 0; i < n; i++) {
    char line[1024];
    assert_int_equal(dt_rr_tostr(&rrs[i], line, sizeof(line)), DT_OK);
    if (strcmp(line, want[i]) != 0) {
      fail_msg("%s: record %zu is \"%s\", want \"%s\"", label, i, line,
               want[i]);
    }
  }
}

static void run_parse_case(void **state) {
  const parse_case_t *c = *state;
  size_t len;
  uint8_t *w = wire_of(&c->pkt, &len);
  dt_answer_t *a = NULL;
  dt_status_t st = dt__wire_parse(w, len, &a);
  free(w);
  if (st != c->parse) {
    fail_msg("%s: parse gave %s", c->label, dt_status_name(st));
  }
  if (st != DT_OK) {
    assert_null(a);
    return;
  }
  assert_int_equal(dt_answer_status(a), c->status);
  char qname[300];
  snprintf(qname, sizeof(qname), "%s", c->pkt.qname);
  assert_string_equal(a->qname, qname);
  assert_int_equal(a->qtype, c->pkt.qtype);
  assert_int_equal(a->qclass, 1);
  assert_int_equal(a->rcode, c->pkt.rcode);
  assert_int_equal(a->flags, DT_FLAG_RD | DT_FLAG_RA);
  assert_string_equal(a->canonical, c->canonical);
  assert_int_equal(a->ttl, c->ttl);
  check_rrs(c->label, a->answer, a->nanswer, c->answer, 24);
  check_rrs(c->label, a->authority, a->nauthority, c->authority, 2);
  if (c->rdata0 != NULL) {
    char want[256], got[256];
    size_t j = 0;
    for (const char *p = c->rdata0; *p != '\0'; p++) {
      if (*p != ' ') {
        want[j++] = *p;
      }
    }
    want[j] = '\0';
    assert_string_equal(hex(a->answer[0].rdata, a->answer[0].rdlength, got),
                        want);
  }
  assert_int_equal(a->server_len, 0);
  assert_false(a->from_cache);
  dt_answer_free(a);
}

/* ---- dt__wire_parse: chains and malformed packets ------------------------ */

/* A chain of hops CNAMEs from h0.test. ending in an A record. */
static dt_status_t parse_chain(size_t hops, dt_answer_t **out) {
  char lines[24][80];
  spec_t s = {.qname = "h0.test.", .qtype = DT_TYPE_A};
  for (size_t i = 0; i < hops; i++) {
    snprintf(lines[i], sizeof(lines[i]), "h%zu.test. 60 IN CNAME h%zu.test.", i,
             i + 1);
    s.an[i] = lines[i];
  }
  snprintf(lines[hops], sizeof(lines[hops]), "h%zu.test. 60 IN A 192.0.2.1",
           hops);
  s.an[hops] = lines[hops];
  size_t len;
  uint8_t *w = wire_of(&s, &len);
  dt_status_t st = dt__wire_parse(w, len, out);
  free(w);
  return st;
}

static void test_parse_hops(void **state) {
  (void)state;
  dt_answer_t *a = NULL;
  assert_int_equal(parse_chain(DT_WIRE_MAX_CNAME_HOPS, &a), DT_OK);
  assert_int_equal(a->nanswer, DT_WIRE_MAX_CNAME_HOPS + 1);
  assert_string_equal(a->canonical, "h16.test.");
  assert_int_equal(dt_answer_status(a), DT_OK);
  dt_answer_free(a);
  a = NULL;
  assert_int_equal(parse_chain(DT_WIRE_MAX_CNAME_HOPS + 1, &a), DT_ELOOP);
  assert_null(a);
}

/* Header for a reply to a.test/A with the given counts, then its
 * question; returns the length written. */
static size_t raw_head(uint8_t *b, uint16_t an, uint16_t ns, uint16_t ar) {
  static const uint8_t h[] = {0x12, 0x34, 0x81, 0x80, 0, 1,   0, 0,
                              0,    0,    0,    0,    1, 'a', 4, 't',
                              'e',  's',  't',  0,    0, 1,   0, 1};
  memcpy(b, h, sizeof(h));
  put16(b + 6, an);
  put16(b + 8, ns);
  put16(b + 10, ar);
  return sizeof(h);
}

static dt_status_t parse_raw(const uint8_t *b, size_t n) {
  uint8_t *copy = malloc(n); /* exact size so ASan sees any overread */
  assert_non_null(copy);
  memcpy(copy, b, n);
  dt_answer_t *a = NULL;
  dt_status_t st = dt__wire_parse(copy, n, &a);
  if (st == DT_OK) {
    assert_non_null(a);
  } else {
    assert_null(a);
  }
  dt_answer_free(a);
  free(copy);
  return st;
}

static void test_parse_counts_lie(void **state) {
  (void)state;
  uint8_t b[64];
  size_t n = raw_head(b, 65535, 0, 0);
  static const uint8_t one[] = {0xc0, 12, 0, 1, 0,   1, 0, 0,
                                0,    60, 0, 4, 192, 0, 2, 1};
  memcpy(b + n, one, sizeof(one));
  dt__alloc_reset_counts();
  assert_int_equal(parse_raw(b, n + sizeof(one)), DT_EBADREPLY);
  assert_int_equal(dt__alloc_count(), 0);
  put16(b + 6, 0);
  put16(b + 10, 65535);
  assert_int_equal(parse_raw(b, n + sizeof(one)), DT_EBADREPLY);
  put16(b + 10, 0);
  put16(b + 4, 65535);
  assert_int_equal(parse_raw(b, n), DT_EBADREPLY);
  /* The honest header parses. */
  put16(b + 4, 1);
  put16(b + 6, 1);
  assert_int_equal(parse_raw(b, n + sizeof(one)), DT_OK);
}

/* The worst a 64 KiB reply (TCP) can make the parser do: about 5,400
 * records whose owner names each take the longest pointer chain the
 * parser follows (127 jumps), a 16-hop CNAME chain it must walk the whole
 * answer section for at every hop, and the final A. Work is bounded per
 * name and per hop, so the whole parse stays linear in the packet's size;
 * allocation does not depend on the record count at all. */
static size_t put_name(uint8_t *b, const char *labels) {
  size_t n = 0;
  while (*labels != '\0') {
    const char *dot = strchr(labels, '.');
    size_t l = dot != NULL ? (size_t)(dot - labels) : strlen(labels);
    b[n++] = (uint8_t)l;
    memcpy(b + n, labels, l);
    n += l;
    labels += l + (dot != NULL ? 1 : 0);
  }
  b[n++] = 0;
  return n;
}

static size_t put_rr(uint8_t *b, uint16_t type, uint16_t rdlength) {
  put16(b, type);
  put16(b + 2, 1);
  put16(b + 4, 0);
  put16(b + 6, 60);
  put16(b + 8, rdlength);
  return 10;
}

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t worst_reply(uint8_t *b, size_t cap, size_t chain,
                          unsigned *count) {
  size_t n = raw_head(b, 0, 0, 0);
  unsigned an = 0;
  /* Record 1: opaque RDATA holding the pointer chain; pointer k points at
   * pointer k-1, the first at the question's name (offset 12). */
  n += put_name(b + n, "a.test");
  size_t rd = n + 10;
  n += put_rr(b + n, 65280, (uint16_t)(2 * chain));
  for (size_t k = 0; k < chain; k++) {
    size_t target = k == 0 ? 12 : rd + 2 * (k - 1);
    b[n++] = (uint8_t)(0xc0 | target >> 8);
    b[n++] = (uint8_t)target;
  }
  an++;
  size_t last = rd + 2 * (chain - 1);
  /* The CNAME chain and its final A go at the end: 16 hops from a.test. */
  uint8_t tail[2048];
  size_t t = 0;
  char from[32], to[32];
  for (int h = 0; h < DT_WIRE_MAX_CNAME_HOPS; h++) {
    snprintf(from, sizeof(from), h == 0 ? "a.test" : "h%d.test", h);
    snprintf(to, sizeof(to), "h%d.test", h + 1);
    t += put_name(tail + t, from);
    uint8_t target[64];
    size_t tl = put_name(target, to);
    t += put_rr(tail + t, DT_TYPE_CNAME, (uint16_t)tl);
    memcpy(tail + t, target, tl);
    t += tl;
  }
  snprintf(from, sizeof(from), "h%d.test", DT_WIRE_MAX_CNAME_HOPS);
  t += put_name(tail + t, from);
  t += put_rr(tail + t, DT_TYPE_A, 4);
  memcpy(tail + t, "\xc0\x00\x02\x01", 4);
  t += 4;
  /* Filler: owner = a pointer to the chain's end, type TXT, no RDATA. */
  while (n + 12 + t <= cap) {
    b[n++] = (uint8_t)(0xc0 | last >> 8);
    b[n++] = (uint8_t)last;
    n += put_rr(b + n, DT_TYPE_TXT, 0);
    an++;
  }
  memcpy(b + n, tail, t);
  n += t;
  an += DT_WIRE_MAX_CNAME_HOPS + 1;
  put16(b + 6, (uint16_t)an);
  *count = an;
  return n;
}

static void test_parse_bounded(void **state) {
  (void)state;
  size_t cap = 65535;
  uint8_t *b = malloc(cap);
  assert_non_null(b);
  unsigned an = 0;
  size_t n = worst_reply(b, cap, 126, &an);
  assert_true(an > 5000);

  dt__alloc_reset_counts();
  double t0 = cpu_seconds();
  dt_answer_t *a = NULL;
  assert_int_equal(dt__wire_parse(b, n, &a), DT_OK);
  double spent = cpu_seconds() - t0;
  /* One allocation, the answer's block, whatever the record count. */
  assert_true(dt__alloc_count() <= 1);
  assert_int_equal(a->nanswer, DT_WIRE_MAX_CNAME_HOPS + 1);
  assert_string_equal(a->canonical, "h16.test.");
  dt_answer_free(a);
  dt_reply_head_t head;
  assert_int_equal(dt__wire_head(b, n, &head), DT_OK);
  /* About 10 ms at -O2 and 0.1 s under ASan here; the bound leaves room
   * for valgrind (about 50 times slower) and a busy machine. A parser
   * quadratic in the record count would take minutes. */
  print_message("worst 64 KiB reply (%u records): %.3f s CPU\n", an, spent);
  assert_true(spent < 20.0);

  /* One pointer more than the parser follows: the chain's names fail. */
  n = worst_reply(b, cap, 127, &an);
  assert_int_equal(parse_raw(b, n), DT_EBADREPLY);

  /* The same packet claiming 65535 answers: refused after walking what
   * is there, with nothing allocated. */
  n = worst_reply(b, cap, 126, &an);
  put16(b + 6, 65535);
  dt__alloc_reset_counts();
  t0 = cpu_seconds();
  assert_int_equal(parse_raw(b, n), DT_EBADREPLY);
  assert_int_equal(dt__alloc_count(), 0);
  assert_true(cpu_seconds() - t0 < 20.0);
  free(b);
}

static void test_parse_malformed(void **state) {
  (void)state;
  static const struct {
    const char *label;
    uint16_t an, ns;
    uint8_t rr[40];
    size_t len;
    dt_status_t want;
  } cases[] = {
      {"owner points to itself",
       1,
       0,
       {0xc0, 24, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1},
       16,
       DT_EBADREPLY},
      {"owner points forwards",
       1,
       0,
       {0xc0, 26, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1},
       16,
       DT_EBADREPLY},
      /* The first A's last two bytes are a pointer to the second owner,
       * which points back at them. */
      {"two pointers to each other",
       2,
       0,
       {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 0xc0, 40,
        0xc0, 38, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1,   2, 3,    4},
       32,
       DT_EBADREPLY},
      {"CNAME target loops",
       1,
       0,
       {0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 36},
       14,
       DT_EBADREPLY},
      {"A with 3 bytes",
       1,
       0,
       {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 3, 1, 2, 3},
       15,
       DT_EBADREPLY},
      {"A with 5 bytes",
       1,
       0,
       {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 5, 1, 2, 3, 4, 5},
       17,
       DT_EBADREPLY},
      {"A with no bytes",
       1,
       0,
       {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 0},
       12,
       DT_EBADREPLY},
      {"CNAME with a byte after the name",
       1,
       0,
       {0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, 'b', 0, 7},
       16,
       DT_EBADREPLY},
      {"CNAME whose name runs past its RDATA",
       2,
       0,
       {0xc0, 12, 0, 5, 0, 1, 0, 0,  0, 60, 0, 2, 1, 'b', 0,
        0,    1,  0, 1, 0, 0, 0, 60, 0, 4,  1, 2, 3, 4},
       29,
       DT_EBADREPLY},
      {"rdlength past the end",
       1,
       0,
       {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 9, 1, 2, 3, 4},
       16,
       DT_EBADREPLY},
      {"short SOA in the authority",
       0,
       1,
       {0xc0, 14, 0, 6, 0, 1, 0, 0, 0, 60, 0, 4, 0, 0, 0, 1},
       16,
       DT_EBADREPLY},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint8_t b[128];
    size_t n = raw_head(b, cases[i].an, cases[i].ns, 0);
    memcpy(b + n, cases[i].rr, cases[i].len);
    dt_status_t st = parse_raw(b, n + cases[i].len);
    if (st != cases[i].want) {
      fail_msg("%s: %s", cases[i].label, dt_status_name(st));
    }
  }
  /* No question, two questions. */
  uint8_t b[64];
  size_t n = raw_head(b, 0, 0, 0);
  put16(b + 4, 0);
  assert_int_equal(parse_raw(b, 12), DT_EBADREPLY);
  memcpy(b + n, b + 12, n - 12);
  put16(b + 4, 2);
  assert_int_equal(parse_raw(b, n + n - 12), DT_EBADREPLY);
  assert_int_equal(dt__wire_parse(NULL, 0, NULL), DT_EINVAL);
}

/* Names are matched without regard to case but kept as the server sent
 * them. Raw bytes: ldns would compress the owners into the question. */
static void test_parse_case(void **state) {
  (void)state;
  uint8_t b[128];
  size_t n = raw_head(b, 2, 0, 0);
  b[13] = 'A';
  static const uint8_t rrs[] = {
      1, 'a', 4,  'T', 'E', 'S', 'T', 0, 0,   5,   0,   1,   0,
      0, 0,   60, 0,   8,   1,   'B', 4, 't', 'e', 's', 't', 0, /* */
      1, 'b', 4,  'T', 'E', 'S', 'T', 0, 0,   1,   0,   1,   0,
      0, 0,   60, 0,   4,   192, 0,   2, 1};
  memcpy(b + n, rrs, sizeof(rrs));
  dt_answer_t *a = NULL;
  assert_int_equal(dt__wire_parse(b, n + sizeof(rrs), &a), DT_OK);
  assert_string_equal(a->qname, "A.test.");
  assert_string_equal(a->canonical, "B.test.");
  assert_int_equal(a->nanswer, 2);
  assert_string_equal(a->answer[0].owner, "a.TEST.");
  assert_string_equal(a->answer[0].data, "B.test.");
  assert_string_equal(a->answer[1].owner, "b.TEST.");
  assert_int_equal(dt_answer_status(a), DT_OK);
  dt_answer_free(a);
}

/* Names built from pointers to earlier names may not grow past 255
 * octets: four owners of one 63-octet label each, every one pointing at
 * the previous, make 257. */
static void test_parse_long_name(void **state) {
  (void)state;
  uint8_t b[512];
  size_t n = raw_head(b, 4, 0, 0);
  size_t prev = 0;
  for (int i = 0; i < 4; i++) {
    size_t at = n;
    b[n++] = 63;
    memset(b + n, 'a' + i, 63);
    n += 63;
    if (i == 0) {
      b[n++] = 0;
    } else {
      b[n++] = (uint8_t)(0xc0 | prev >> 8);
      b[n++] = (uint8_t)prev;
    }
    static const uint8_t rest[] = {0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4};
    memcpy(b + n, rest, sizeof(rest));
    n += sizeof(rest);
    prev = at;
  }
  assert_int_equal(parse_raw(b, n), DT_EBADREPLY);
  dt_reply_head_t h;
  assert_int_equal(dt__wire_head(b, n, &h), DT_EBADREPLY);
  /* Three of them (193 octets) are fine. */
  put16(b + 6, 3);
  assert_int_equal(dt__wire_head(b, n, &h), DT_OK);
}

/* RDATA ldns cannot present is shown in the generic form (RFC 3597). */
static void test_parse_generic_fallback(void **state) {
  (void)state;
  uint8_t b[128];
  size_t n = raw_head(b, 1, 0, 0);
  b[n - 3] = DT_TYPE_HTTPS;
  /* HTTPS 1 . with a SvcParam claiming 5 bytes of which 3 are there. */
  static const uint8_t rr[] = {0xc0, 12, 0, 65, 0, 1, 0, 0, 0, 60,  0,
                               10,   0,  1, 0,  0, 1, 0, 5, 2, 'h', '2'};
  memcpy(b + n, rr, sizeof(rr));
  dt_answer_t *a = NULL;
  assert_int_equal(dt__wire_parse(b, n + sizeof(rr), &a), DT_OK);
  assert_int_equal(a->nanswer, 1);
  assert_string_equal(a->answer[0].data, "\\# 10 00010000010005026832");
  assert_int_equal(a->answer[0].rdlength, 10);
  dt_answer_free(a);

  /* A type ldns does not know, with empty RDATA (RFC 3597 allows it). */
  b[n - 4] = 0xff;
  b[n - 3] = 0x00;
  static const uint8_t empty[] = {0xc0, 12, 0xff, 0, 0, 1, 0, 0, 0, 60, 0, 0};
  memcpy(b + n, empty, sizeof(empty));
  assert_int_equal(dt__wire_parse(b, n + sizeof(empty), &a), DT_OK);
  assert_int_equal(a->nanswer, 1);
  assert_string_equal(a->answer[0].data, "\\# 0");
  assert_int_equal(a->answer[0].rdlength, 0);
  assert_int_equal(dt_answer_status(a), DT_OK);
  dt_answer_free(a);
}

/* SVCB and HTTPS parameters are presented by dialtone, never by ldns 1.8,
 * whose printer aborts the process on replies like this one (found by
 * fuzz_reply; tests/fuzz/corpus/reply has it and a well-formed one that
 * also made it assert). Lists breaking RFC 9460's rules take the generic
 * form. */
static void test_parse_svcb_generic(void **state) {
  (void)state;
  static const uint8_t crash[] = {
      0x50, 0x9e, 0x85, 0x80, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
      0x03, 0x73, 0x76, 0x63, 0x02, 0x66, 0x7a, 0x04, 0x74, 0x65, 0x73, 0x74,
      0x00, 0x00, 0x41, 0x00, 0x01, 0xc0, 0x0c, 0x00, 0x41, 0x00, 0x01, 0x00,
      0x22, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x03, 0x00, 0x00, 0x00, 0x01,
      0x00, 0x01, 0xc0, 0x0c, 0x00, 0x09, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10,
      0x00, 0x04, 0xc0, 0x00, 0x02, 0x64, 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01,
      0x00, 0x00, 0x0e, 0x10, 0x00, 0x04, 0xc0, 0x00, 0x02, 0x65, 0xc0, 0x0c,
      0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x04, 0xc0, 0x00,
      0x02, 0x66, 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x04, 0xc0, 0x00, 0x02, 0x67,
      0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x38,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0e, 0x10, 0x00,
      0x04, 0xc0, 0x00, 0x02, 0x67, 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00,
      0x00, 0x0e, 0x10, 0x00, 0x39, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x01,
      0x90, 0x00, 0x04, 0x04, 0xc0, 0x00, 0x02, 0x68, 0xc0, 0x0c, 0x00, 0x01,
      0x00, 0x01, 0x00, 0x00, 0x0e, 0x10, 0x00, 0x01, 0x00, 0x61, 0x20, 0x00,
      0x58, 0xb0, 0x58, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,
      0x0e, 0x10, 0x00, 0x04, 0xc0, 0x00, 0x02, 0x6a, 0xc0, 0x0c, 0x00, 0x01,
      0x00, 0x01, 0x00, 0x00, 0x0e, 0x00, 0x04, 0xc2, 0x00, 0x02, 0x6b, 0x01,
      0x02, 0x6d, 0xc0, 0x0c, 0xe3, 0x16, 0x00, 0xc0,
  };
  dt_answer_t *a = NULL;
  dt_status_t st = dt__wire_parse(crash, sizeof(crash), &a);
  assert_true(st == DT_OK || st == DT_EBADREPLY);
  if (st == DT_OK) {
    for (size_t i = 0; i < a->nanswer; i++) {
      if (a->answer[i].type == DT_TYPE_HTTPS) {
        assert_memory_equal(a->answer[i].data, "\\# ", 3);
      }
    }
    dt_answer_free(a);
  }

  uint8_t b[128];
  size_t n = raw_head(b, 1, 0, 0);
  b[n - 3] = DT_TYPE_HTTPS;
  /* HTTPS 1 . alpn=h2: well formed, presented. */
  static const uint8_t rr[] = {0xc0, 12, 0, 65, 0, 1, 0, 0, 0, 60,  0,
                               10,   0,  1, 0,  0, 1, 0, 3, 2, 'h', '2'};
  memcpy(b + n, rr, sizeof(rr));
  assert_int_equal(dt__wire_parse(b, n + sizeof(rr), &a), DT_OK);
  assert_int_equal(a->nanswer, 1);
  assert_string_equal(a->answer[0].data, "1 . alpn=h2");
  dt_answer_free(a);

  /* Every known key, an unknown one and ech, as RFC 9460 presents them. */
  static const uint8_t all[] = {
      0xc0, 12, 0, 65, 0,    1,    0,   0,   0,   60,  0, 53, 0, 1, 0, /* 1 . */
      0,    0,  0, 4,  0,    1,    0,   3,             /* mandatory */
      0,    1,  0, 6,  2,    'h',  '2', 2,   'h', '3', /* alpn */
      0,    2,  0, 0,                                  /* no-def */
      0,    3,  0, 2,  0x01, 0xbb,                     /* port */
      0,    4,  0, 4,  192,  0,    2,   1,             /* v4hint */
      0,    5,  0, 4,  'a',  'b',  'c', 'd',           /* ech */
      0,    9,  0, 2,  'x',  0x01};                    /* key9 */
  memcpy(b + n, all, sizeof(all));
  assert_int_equal(dt__wire_parse(b, n + sizeof(all), &a), DT_OK);
  assert_string_equal(a->answer[0].data,
                      "1 . mandatory=alpn,port alpn=h2,h3 no-default-alpn "
                      "port=443 ipv4hint=192.0.2.1 ech=YWJjZA== "
                      "key9=\"x\\001\"");
  dt_answer_free(a);

  /* The same with mandatory=(nothing): ill formed, generic. */
  static const uint8_t bad[] = {0xc0, 12, 0,  65, 0, 1, 0,   0,  0,
                                60,   0,  14, 0,  1, 0, 0,   0,  0,
                                0,    0,  1,  0,  3, 2, 'h', '2'};
  memcpy(b + n, bad, sizeof(bad));
  assert_int_equal(dt__wire_parse(b, n + sizeof(bad), &a), DT_OK);
  assert_string_equal(a->answer[0].data, "\\# 14 0001000000000000010003026832");
  dt_answer_free(a);
}

static void test_parse_garbage(void **state) {
  (void)state;
  uint8_t b[512];
  srand(1234);
  for (int round = 0; round < 2000; round++) {
    size_t n = (size_t)rand() % sizeof(b);
    for (size_t i = 0; i < n; i++) {
      b[i] = (uint8_t)rand();
    }
    if (round % 2 == 0 && n >= 12) {
      /* Plausible counts make the walk go further. */
      put16(b + 4, 1);
      put16(b + 6, (uint16_t)(rand() % 4));
      put16(b + 8, (uint16_t)(rand() % 2));
      put16(b + 10, 0);
    }
    dt_status_t st = parse_raw(b, n);
    assert_true(st == DT_OK || st == DT_EBADREPLY || st == DT_ELOOP);
    dt_reply_head_t h;
    dt__wire_head(b, n, &h);
    dt__wire_match(b, n, b, n);
  }
  memset(b, 0xff, sizeof(b));
  assert_int_equal(parse_raw(b, sizeof(b)), DT_EBADREPLY);
  memset(b, 0, sizeof(b));
  assert_int_equal(parse_raw(b, sizeof(b)), DT_EBADREPLY);
}

/* Every allocation dt__wire_parse makes through dialtone's allocator can
 * fail; each failure is DT_ENOMEM and leaks nothing (ASan checks ldns's). */
static void test_parse_alloc_failures(void **state) {
  (void)state;
  spec_t s = {
      .qname = "www.test.",
      .qtype = DT_TYPE_A,
      .an = {"www.test. 60 IN CNAME a.test.", "a.test. 60 IN A 192.0.2.1"}};
  size_t len;
  uint8_t *w = wire_of(&s, &len);
  size_t failures = 0;
  for (uint64_t n = 1;; n++) {
    dt__alloc_reset_counts();
    dt__alloc_fail_at(n);
    dt_answer_t *a = NULL;
    dt_status_t st = dt__wire_parse(w, len, &a);
    if (st == DT_OK) {
      dt_answer_free(a);
      assert_int_equal(dt__free_count(), dt__alloc_count());
      break;
    }
    assert_int_equal(st, DT_ENOMEM);
    assert_null(a);
    /* Everything that was allocated, except the one that failed, is
     * freed. */
    assert_int_equal(dt__free_count(), dt__alloc_count() - 1);
    failures++;
    assert_true(n < 100);
  }
  assert_true(failures >= 1);
  dt__alloc_reset_counts();
  free(w);
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

/* ---- answers ------------------------------------------------------------- */

static dt_answer_t *sample_answer(void) {
  spec_t s = {.qname = "www.test.",
              .qtype = DT_TYPE_A,
              .rcode = 0,
              .an = {"www.test. 100 IN CNAME a.test.",
                     "a.test. 300 IN A 192.0.2.1",
                     "a.test. 300 IN A 192.0.2.2"}};
  size_t len;
  uint8_t *w = wire_of(&s, &len);
  dt_answer_t *a = NULL;
  assert_int_equal(dt__wire_parse(w, len, &a), DT_OK);
  free(w);
  return a;
}

static bool inside(const void *p, const void *block, size_t size) {
  const uint8_t *b = block;
  return (const uint8_t *)p >= b && (const uint8_t *)p < b + size;
}

static void test_clone_size_age(void **state) {
  (void)state;
  dt_answer_t *a = sample_answer();
  size_t size = dt__answer_size(a);
  assert_true(size > sizeof(dt_answer_t) + 3 * sizeof(dt_rr_t));
  assert_int_equal(dt__answer_size(NULL), 0);

  dt_answer_t *c = NULL;
  dt__alloc_fail_at(1);
  assert_int_equal(dt__answer_clone(a, &c), DT_ENOMEM);
  assert_null(c);
  dt__alloc_reset_counts();
  assert_int_equal(dt__answer_clone(a, &c), DT_OK);
  assert_int_equal(dt__answer_clone(NULL, &c), DT_EINVAL);
  dt_answer_free(a);

  /* The copy stands alone: every pointer lies in its own block. */
  assert_int_equal(dt__answer_size(c), size);
  assert_true(inside(c->qname, c, size));
  assert_true(inside(c->canonical, c, size));
  assert_true(inside(c->answer, c, size));
  assert_null(c->authority);
  assert_string_equal(c->qname, "www.test.");
  assert_string_equal(c->canonical, "a.test.");
  assert_int_equal(c->nanswer, 3);
  for (size_t i = 0; i < c->nanswer; i++) {
    assert_true(inside(c->answer[i].owner, c, size));
    assert_true(inside(c->answer[i].data, c, size));
    assert_true(inside(c->answer[i].rdata, c, size));
  }
  assert_string_equal(c->answer[2].data, "192.0.2.2");
  static const uint8_t rd[] = {192, 0, 2, 2};
  assert_memory_equal(c->answer[2].rdata, rd, 4);
  assert_int_equal(c->ttl, 100);

  dt__answer_age(c, 60);
  assert_int_equal(c->ttl, 40);
  assert_int_equal(c->answer[0].ttl, 40);
  assert_int_equal(c->answer[1].ttl, 240);
  dt__answer_age(c, 1000);
  assert_int_equal(c->ttl, 0);
  assert_int_equal(c->answer[2].ttl, 0);
  dt__answer_age(NULL, 1);
  dt_answer_free(c);
  dt_answer_free(NULL);
  assert_int_equal(dt_answer_status(NULL), DT_EINVAL);

  /* A negative answer keeps its SOA in the copy. */
  spec_t s = {.qname = "nx.test.",
              .qtype = DT_TYPE_A,
              .rcode = 3,
              .ns = {"test. 600 IN SOA ns.test. host.test. 1 2 3 4 50"}};
  size_t len;
  uint8_t *w = wire_of(&s, &len);
  assert_int_equal(dt__wire_parse(w, len, &a), DT_OK);
  free(w);
  assert_int_equal(dt__answer_clone(a, &c), DT_OK);
  dt_answer_free(a);
  assert_null(c->answer);
  assert_int_equal(c->nauthority, 1);
  assert_true(inside(c->authority, c, dt__answer_size(c)));
  assert_string_equal(c->authority[0].owner, "test.");
  dt__answer_age(c, 10);
  assert_int_equal(c->ttl, 40);
  assert_int_equal(c->authority[0].ttl, 590);
  assert_int_equal(dt_answer_status(c), DT_ENXDOMAIN);
  dt_answer_free(c);
}

/* Copies into caller storage: the resolver's way of handing out cache hits
 * without allocating. */
static void test_copy_into(void **state) {
  (void)state;
  dt_answer_t *a = sample_answer();
  size_t size = dt__answer_size(a);
  /* uint64_t storage gives the 8-byte alignment the contract asks for. */
  uint64_t store[256];
  assert_true(size + 8 <= sizeof(store));
  uint8_t *buf = (uint8_t *)store;
  dt_answer_t *c = NULL;

  assert_int_equal(dt__answer_copy_into(NULL, buf, size, &c), DT_EINVAL);
  assert_int_equal(dt__answer_copy_into(a, NULL, size, &c), DT_EINVAL);
  assert_int_equal(dt__answer_copy_into(a, buf, size, NULL), DT_EINVAL);
  for (size_t off = 1; off < 8; off++) {
    assert_int_equal(dt__answer_copy_into(a, buf + off, size, &c), DT_EINVAL);
  }
  /* Too small: refused, and the buffer is left as it was. */
  memset(buf, 0xa5, sizeof(store));
  assert_int_equal(dt__answer_copy_into(a, buf, size - 1, &c), DT_ETOOBIG);
  assert_int_equal(dt__answer_copy_into(a, buf, 0, &c), DT_ETOOBIG);
  assert_null(c);
  for (size_t i = 0; i < sizeof(store); i++) {
    assert_int_equal(buf[i], 0xa5);
  }

  /* Exactly dt__answer_size bytes are enough, and nothing past them is
   * written. */
  dt__alloc_reset_counts();
  assert_int_equal(dt__answer_copy_into(a, buf, size, &c), DT_OK);
  assert_int_equal(dt__alloc_count(), 0);
  assert_ptr_equal(c, buf);
  for (size_t i = size; i < sizeof(store); i++) {
    assert_int_equal(buf[i], 0xa5);
  }
  assert_int_equal(dt__answer_size(c), size);
  dt_answer_free(a); /* the copy must not lean on the original */
  assert_true(inside(c->qname, buf, size));
  assert_true(inside(c->canonical, buf, size));
  assert_true(inside(c->answer, buf, size));
  assert_string_equal(c->qname, "www.test.");
  assert_string_equal(c->canonical, "a.test.");
  assert_int_equal(c->nanswer, 3);
  for (size_t i = 0; i < c->nanswer; i++) {
    assert_true(inside(c->answer[i].owner, buf, size));
    assert_true(inside(c->answer[i].data, buf, size));
    assert_true(inside(c->answer[i].rdata, buf, size));
  }
  assert_string_equal(c->answer[1].data, "192.0.2.1");
  assert_int_equal(c->ttl, 100);

  /* A copy of a copy, into a bigger buffer, is the same answer. */
  uint64_t store2[300];
  dt_answer_t *d = NULL;
  assert_int_equal(dt__answer_copy_into(c, store2, sizeof(store2), &d), DT_OK);
  assert_int_equal(dt__answer_size(d), size);
  assert_string_equal(d->answer[2].data, "192.0.2.2");
  assert_true(inside(d->answer[2].data, store2, size));

  /* Absent strings and RDATA stay absent. */
  const dt_rr_t au[] = {{"test.", DT_TYPE_SOA, 1, 90, NULL, 0, NULL}};
  dt_answer_t h;
  memset(&h, 0, sizeof(h));
  h.qname = "x.test.";
  h.rcode = DT_RCODE_NXDOMAIN;
  h.authority = au;
  h.nauthority = 1;
  assert_int_equal(dt__answer_copy_into(&h, store, sizeof(store), &c), DT_OK);
  assert_null(c->canonical);
  assert_null(c->answer);
  assert_null(c->authority[0].rdata);
  assert_null(c->authority[0].data);
  assert_string_equal(c->authority[0].owner, "test.");
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
  static const struct CMUnitTest fixed[] = {
      cmocka_unit_test(test_random),
      cmocka_unit_test(test_query_layout),
      cmocka_unit_test(test_query_ids),
      cmocka_unit_test(test_query_names),
      cmocka_unit_test(test_query_limits),
      cmocka_unit_test(test_match),
      cmocka_unit_test(test_match_compressed),
      cmocka_unit_test(test_mix_case),
      cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_head),
      cmocka_unit_test(test_parse_hops),
      cmocka_unit_test(test_parse_counts_lie),
      cmocka_unit_test(test_parse_bounded),
      cmocka_unit_test(test_parse_malformed),
      cmocka_unit_test(test_parse_case),
      cmocka_unit_test(test_parse_long_name),
      cmocka_unit_test(test_parse_generic_fallback),
      cmocka_unit_test(test_parse_svcb_generic),
      cmocka_unit_test(test_parse_garbage),
      cmocka_unit_test(test_parse_alloc_failures),
      cmocka_unit_test(test_answer_by_hand),
      cmocka_unit_test(test_clone_size_age),
      cmocka_unit_test(test_copy_into),
      cmocka_unit_test(test_type_str),
      cmocka_unit_test(test_rcode_str),
      cmocka_unit_test(test_rr_str),
  };
  enum { NFIXED = sizeof(fixed) / sizeof(fixed[0]) };
  enum { NCASES = sizeof(parse_cases) / sizeof(parse_cases[0]) };
  /* One named test per row of the parse table. */
  static struct CMUnitTest tests[NFIXED + NCASES];
  memcpy(tests, fixed, sizeof(fixed));
  for (size_t i = 0; i < NCASES; i++) {
    struct CMUnitTest t = {parse_cases[i].label, run_parse_case, NULL, NULL,
                           (void *)&parse_cases[i]};
    tests[NFIXED + i] = t;
  }
  return _cmocka_run_group_tests("wire", tests, NFIXED + NCASES, NULL, NULL);
}
