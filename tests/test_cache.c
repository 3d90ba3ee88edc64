#include "config.h"

#include <pthread.h>
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
#include "cache.h"
#include "dialtone.h"
#include "wire.h"

#define S 1000000ull  /* microseconds per second */
#define T0 (1000 * S) /* the fake clock's start */
#define IN 1

/* ---- answers: replies made with ldns, parsed by wire --------------------- */

typedef struct {
  const char *qname;
  uint16_t qtype;
  int rcode;
  const char *an[24]; /* records in ldns's text form, NULL-terminated */
  const char *ns[2];
  bool tc;
  bool topbit; /* set the top bit of every TTL (RFC 2181 §8) */
} reply_t;

static void push(ldns_pkt *p, ldns_pkt_section sec, const char *const *rrs,
                 size_t max, bool topbit) {
  for (size_t i = 0; i < max && rrs[i] != NULL; i++) {
    ldns_rr *rr = NULL;
    if (ldns_rr_new_frm_str(&rr, rrs[i], 0, NULL, NULL) != LDNS_STATUS_OK) {
      fail_msg("ldns cannot read \"%s\"", rrs[i]);
    }
    if (topbit) {
      ldns_rr_set_ttl(rr, ldns_rr_ttl(rr) | 0x80000000u);
    }
    assert_true(ldns_pkt_push_rr(p, sec, rr));
  }
}

/* The answer wire makes of the reply r; free with dt_answer_free. */
static dt_answer_t *answer_of(const reply_t *r) {
  ldns_rdf *qname = ldns_dname_new_frm_str(r->qname);
  assert_non_null(qname);
  ldns_pkt *p = ldns_pkt_query_new(qname, (ldns_rr_type)r->qtype,
                                   LDNS_RR_CLASS_IN, LDNS_RD);
  assert_non_null(p);
  ldns_pkt_set_qr(p, true);
  ldns_pkt_set_ra(p, true);
  ldns_pkt_set_tc(p, r->tc);
  ldns_pkt_set_rcode(p, (uint8_t)r->rcode);
  push(p, LDNS_SECTION_ANSWER, r->an, 24, r->topbit);
  push(p, LDNS_SECTION_AUTHORITY, r->ns, 2, r->topbit);
  uint8_t *w = NULL;
  size_t len = 0;
  assert_int_equal(ldns_pkt2wire(&w, p, &len), LDNS_STATUS_OK);
  ldns_pkt_free(p);
  dt_answer_t *a = NULL;
  assert_int_equal(dt__wire_parse(w, len, &a), DT_OK);
  free(w);
  return a;
}

/* One A record "name ttl IN A addr", asked as name. */
static dt_answer_t *a_record(const char *name, uint32_t ttl, const char *addr) {
  char rr[512];
  snprintf(rr, sizeof(rr), "%s %u IN A %s", name, (unsigned)ttl, addr);
  reply_t r = {.qname = name, .qtype = DT_TYPE_A, .an = {rr}};
  return answer_of(&r);
}

static const char *const SOA_600_50 =
    "test. 600 IN SOA ns.test. host.test. 1 7200 900 1209600 50";
static const char *const SOA_40_300 =
    "test. 40 IN SOA ns.test. host.test. 1 7200 900 1209600 300";

static dt_answer_t *nxdomain(const char *name, const char *soa) {
  reply_t r = {.qname = name, .qtype = DT_TYPE_A, .rcode = 3, .ns = {soa}};
  return answer_of(&r);
}

static dt_answer_t *nodata(const char *name, uint16_t type, const char *soa) {
  reply_t r = {.qname = name, .qtype = type, .ns = {soa}};
  return answer_of(&r);
}

/* ---- a cache on a fake clock ----------------------------------------------
 */

typedef struct {
  uint64_t now;
  dt_cache_config_t cfg;
  dt_cache_t *c;
} fx_t;

static uint64_t fake_now(void *ctx) {
  return *(const uint64_t *)ctx;
}

/* Sets up fx with the defaults on the fake clock; edit fx->cfg, then
 * fx_open. */
static void fx_init(fx_t *fx) {
  memset(fx, 0, sizeof(*fx));
  fx->now = T0;
  dt__cache_config_init(&fx->cfg);
  fx->cfg.clock.now_us = fake_now;
  fx->cfg.clock.ctx = &fx->now;
}

static void fx_open(fx_t *fx) {
  assert_int_equal(dt__cache_new(&fx->cfg, &fx->c), DT_OK);
}

static void fx_close(fx_t *fx) {
  dt__cache_free(fx->c);
  fx->c = NULL;
}

static dt_cache_put_t put(fx_t *fx, const char *name, uint16_t type,
                          const dt_answer_t *a) {
  dt_cache_put_t what = (dt_cache_put_t)-1;
  assert_int_equal(dt__cache_put(fx->c, name, type, IN, a, &what), DT_OK);
  return what;
}

/* Stores a and frees it. */
static dt_cache_put_t put_free(fx_t *fx, const char *name, uint16_t type,
                               dt_answer_t *a) {
  dt_cache_put_t what = put(fx, name, type, a);
  dt_answer_free(a);
  return what;
}

/* What a visitor saw: the hit, and the answer copied into storage the way
 * the resolver copies it. */
typedef struct {
  int calls;
  dt_cache_hit_t hit;
  uint64_t store[512];
  dt_answer_t *answer;
} got_t;

static void visit_copy(const dt_cache_hit_t *hit, void *ctx) {
  got_t *g = ctx;
  g->calls++;
  g->hit = *hit;
  g->hit.answer = NULL;
  g->answer = NULL;
  if (dt__answer_copy_into(hit->answer, g->store, sizeof(g->store),
                           &g->answer) != DT_OK) {
    g->answer = NULL;
  }
}

static dt_cache_result_t look(fx_t *fx, const char *name, uint16_t type,
                              bool allow_stale, got_t *g) {
  got_t local;
  if (g == NULL) {
    g = &local;
  }
  memset(g, 0, sizeof(*g));
  dt_cache_result_t r =
      dt__cache_get(fx->c, name, type, IN, allow_stale, visit_copy, g);
  assert_int_equal(g->calls, r == DT_CACHE_MISS ? 0 : 1);
  return r;
}

/* The remaining TTL of a fresh hit, or -1 for anything else. */
static long remaining(fx_t *fx, const char *name, uint16_t type) {
  got_t g;
  if (look(fx, name, type, false, &g) != DT_CACHE_HIT) {
    return -1;
  }
  return (long)g.hit.remaining_s;
}

static dt_cache_stats_t stats(fx_t *fx) {
  dt_cache_stats_t st;
  memset(&st, 0xff, sizeof(st));
  dt__cache_get_stats(fx->c, &st);
  return st;
}

/* ---- listing ----------------------------------------------------------------
 */

/* The first 64 entries listed, and a digest of all of them. */
typedef struct {
  size_t n;
  uint64_t digest;
  struct {
    char name[256]; /* any normal form without escapes */
    dt_cache_entry_info_t info;
  } e[64];
} listing_t;

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) {
    h = (h ^ b[i]) * 0x100000001b3ull;
  }
  return h;
}

static void visit_list(const dt_cache_entry_info_t *e, void *ctx) {
  listing_t *l = ctx;
  l->digest = fnv(l->digest, e->name, strlen(e->name) + 1);
  uint64_t facts[] = {e->type,  e->qclass,          e->remaining_s, e->negative,
                      e->stale, (uint64_t)e->rcode, e->bytes};
  l->digest = fnv(l->digest, facts, sizeof(facts));
  if (l->n < 64) {
    snprintf(l->e[l->n].name, sizeof(l->e[l->n].name), "%s", e->name);
    l->e[l->n].info = *e;
    l->e[l->n].info.name = l->e[l->n].name;
  }
  l->n++;
}

static void list(fx_t *fx, listing_t *l) {
  memset(l, 0, sizeof(*l));
  l->digest = 0xcbf29ce484222325ull;
  dt__cache_list(fx->c, visit_list, l);
}

/* ---- configuration ----------------------------------------------------------
 */

static void test_config(void **state) {
  (void)state;
  dt_cache_config_t cfg;
  memset(&cfg, 0x5a, sizeof(cfg));
  dt__cache_config_init(&cfg);
  assert_int_equal(cfg.max_entries, 10000);
  assert_int_equal(cfg.max_bytes, 0);
  assert_int_equal(cfg.pos_min_s, 0);
  assert_int_equal(cfg.pos_max_s, 86400);
  assert_int_equal(cfg.neg_min_s, 0);
  assert_int_equal(cfg.neg_max_s, 3600);
  assert_false(cfg.serve_stale);
  assert_int_equal(cfg.stale_window_s, 86400);
  assert_int_equal(cfg.stale_ttl_s, 30);
  assert_false(cfg.prefetch);
  assert_null(cfg.clock.now_us);
  dt__cache_config_init(NULL);

  dt_cache_t *c = NULL;
  assert_int_equal(dt__cache_new(NULL, &c), DT_OK); /* NULL: defaults */
  dt__cache_free(c);
  assert_int_equal(dt__cache_new(&cfg, NULL), DT_EINVAL);
  cfg.max_entries = 0; /* the default */
  assert_int_equal(dt__cache_new(&cfg, &c), DT_OK);
  dt__cache_free(c);

  c = NULL;
  cfg.pos_min_s = 10;
  cfg.pos_max_s = 9;
  assert_int_equal(dt__cache_new(&cfg, &c), DT_EINVAL);
  dt__cache_config_init(&cfg);
  cfg.neg_min_s = 3601;
  assert_int_equal(dt__cache_new(&cfg, &c), DT_EINVAL);
  assert_null(c);
  cfg.neg_max_s = 3601; /* equal is fine */
  assert_int_equal(dt__cache_new(&cfg, &c), DT_OK);
  dt__cache_free(c);

  dt__alloc_fail_at(1);
  assert_int_equal(dt__cache_new(NULL, &c), DT_ENOMEM);
  dt__alloc_fail_at(2);
  assert_int_equal(dt__cache_new(NULL, &c), DT_ENOMEM);
  dt__alloc_fail_at(0);

  dt__cache_free(NULL);
  dt__cache_flush(NULL, NULL);
  dt__cache_count_coalesced(NULL);
  dt__cache_get_stats(NULL, NULL);
  dt__cache_list(NULL, visit_list, NULL);
  assert_int_equal(dt__cache_get(NULL, "a.test", 1, IN, false, NULL, NULL),
                   DT_CACHE_MISS);
}

/* ---- TTLs ------------------------------------------------------------------
 */

static void test_chain_min_ttl(void **state) {
  (void)state;
  fx_t fx;
  fx_init(&fx);
  fx_open(&fx);
  reply_t r = {.qname = "www.test.",
               .qtype = DT_TYPE_A,
               .an = {"www.test. 300 IN CNAME mid.test.",
                      "mid.test. 100 IN CNAME a.test.",
                      "a.test. 600 IN A 192.0.2.1",
                      "a.test. 600 IN A 192.0.2.2"}};
  dt_answer_t *a = answer_of(&r);
  assert_int_equal(a->ttl, 100);
  assert_int_equal(put_free(&fx, "www.test", DT_TYPE_A, a), DT_CACHE_STORED);

  got_t g;
  assert_int_equal(look(&fx, "www.test", DT_TYPE_A, false, &g), DT_CACHE_HIT);
  assert_int_equal(g.hit.remaining_s, 100);
  assert_int_equal(g.hit.elapsed_s, 0);
  assert_false(g.hit.stale);
  assert_false(g.hit.prefetch_due);
  /* The answer as stored: records, strings, TTLs as they came. */
  dt_answer_t *c = g.answer;
  assert_non_null(c);
  assert_string_equal(c->qname, "www.test.");
  assert_string_equal(c->canonical, "a.test.");
  assert_int_equal(c->qtype, DT_TYPE_A);
  assert_int_equal(c->qclass, IN);
  assert_int_equal(c->rcode, 0);
  assert_true((c->flags & DT_FLAG_RA) != 0);
  assert_int_equal(c->ttl, 100);
  assert_true(c->from_cache);
  assert_false(c->stale);
  assert_int_equal(c->server_len, 0);
  assert_int_equal(c->nanswer, 4);
  assert_int_equal(c->nauthority, 0);
  assert_null(c->authority);
  assert_string_equal(c->answer[0].owner, "www.test.");
  assert_string_equal(c->answer[0].data, "mid.test.");
  assert_int_equal(c->answer[0].ttl, 300);
  assert_string_equal(c->answer[1].owner, "mid.test.");
  assert_int_equal(c->answer[1].ttl, 100);
  assert_string_equal(c->answer[3].owner, "a.test.");
  assert_string_equal(c->answer[3].data, "192.0.2.2");
  assert_int_equal(c->answer[3].rdlength, 4);
  static const uint8_t rd[] = {192, 0, 2, 2};
  assert_memory_equal(c->answer[3].rdata, rd, 4);
  assert_int_equal(dt_answer_status(c), DT_OK);
  fx_close(&fx);
}

static void test_ttl_decrement_and_expiry(void **state) {
  (void)state;
  fx_t fx;
  fx_init(&fx);
  fx_open(&fx);
  assert_int_equal(
      put_free(&fx, "a.test", DT_TYPE_A, a_record("a.test.", 10, "192.0.2.1")),
      DT_CACHE_STORED);
  got_t g;
  fx.now = T0 + 3 * S + S / 2;
  assert_int_equal(look(&fx, "a.test", DT_TYPE_A, false, &g), DT_CACHE_HIT);
  assert_int_equal(g.hit.remaining_s, 7); /* 3.5 s elapsed: 3 whole */
  assert_int_equal(g.hit.elapsed_s, 3);
  assert_int_equal(g.answer->answer[0].ttl, 10); /* as stored */
  fx.now = T0 + 9 * S;
  assert_int_equal(remaining(&fx, "a.test", DT_TYPE_A), 1);
  /* The last microsecond of the lifetime still counts one second... */
  fx.now = T0 + 10 * S - 1;
  assert_int_equal(look(&fx, "a.test", DT_TYPE_A, false, &g), DT_CACHE_HIT);
  assert_int_equal(g.hit.remaining_s, 1);
  assert_int_equal(g.hit.elapsed_s, 9);
  /* ...and at the exact second it is gone, and reclaimed. */
  fx.now = T0 + 10 * S;
  assert_int_equal(look(&fx, "a.test", DT_TYPE_A, false, NULL), DT_CACHE_MISS);
  dt_cache_stats_t st = stats(&fx);
  assert_int_equal(st.hits, 3);
  assert_int_equal(st.misses, 1);
  assert_int_equal(st.expired, 1);
  assert_int_equal(st.entries, 0);
  assert_int_equal(st.bytes, 0);

  /* A clock that reads earlier than the store (another thread's put) is
   * no time elapsed. */
  fx.now = T0 + 100 * S;
  put_free(&fx, "a.test", DT_TYPE_A, a_record("a.test.", 10, "192.0.2.1"));
  fx.now = T0 + 99 * S;
  assert_int_equal(look(&fx, "a.test", DT_TYPE_A, false, &g), DT_CACHE_HIT);
  assert_int_equal(g.hit.remaining_s, 10);
  assert_int_equal(g.hit.elapsed_s, 0);
  fx_close(&fx);
}

static void test_not_cacheable(void **state) {
  (void)state;
  fx_t fx;
  fx_init(&fx);
  fx.cfg.pos_min_s = 60; /* a floor never makes TTL 0 cacheable */
  fx.cfg.neg_min_s = 60;
  fx_open(&fx);

  dt_answer_t *a = a_record("z.test.", 0, "192.0.2.1");
  assert_int_equal(put_free(&fx, "z.test", DT_TYPE_A, a),
                   DT_CACHE_NOT_CACHEABLE);

  reply_t top = {.qname = "t.test.",
                 .qtype = DT_TYPE_A,
                 .an = {"t.test. 300 IN A 192.0.2.1"},
                 .topbit = true};
  a = answer_of(&top);
  assert_int_equal(a->ttl, 0); /* 2^31 + 300 counts as 0 */
  assert_int_equal(put_free(&fx, "t.test", DT_TYPE_A, a),
                   DT_CACHE_NOT_CACHEABLE);
  reply_t topnx = {.qname = "t.test.",
                   .qtype = DT_TYPE_A,
                   .rcode = 3,
                   .ns = {SOA_600_50},
                   .topbit = true};
  assert_int_equal(put_free(&fx, "t.test", DT_TYPE_A, answer_of(&topnx)),
                   DT_CACHE_NOT_CACHEABLE);

  /* Error rcodes are not cached even with records and an SOA. */
  static const int rcodes[] = {DT_RCODE_SERVFAIL, DT_RCODE_REFUSED,
                               DT_RCODE_FORMERR, DT_RCODE_NOTIMP, 9};
  for (size_t i = 0; i < sizeof(rcodes) / sizeof(rcodes[0]); i++) {
    reply_t r = {.qname = "e.test.",
                 .qtype = DT_TYPE_A,
                 .rcode = rcodes[i],
                 .an = {"e.test. 300 IN A 192.0.2.1"},
                 .ns = {SOA_600_50}};
    a = answer_of(&r);
    a->ttl = 300; /* whatever wire made of it: the rcode decides */
    assert_int_equal(put_free(&fx, "e.test", DT_TYPE_A, a),
                     DT_CACHE_NOT_CACHEABLE);
  }

  reply_t tc = {.qname = "tc.test.",
                .qtype = DT_TYPE_A,
                .an = {"tc.test. 300 IN A 192.0.2.1"},
                .tc = true};
  a = answer_of(&tc);
  assert_true((a->flags & DT_FLAG_TC) != 0);
  assert_int_equal(a->ttl, 300);
  assert_int_equal(put_free(&fx, "tc.test", DT_TYPE_A, a),
                   DT_CACHE_NOT_CACHEABLE);

  /* Negative answers without an SOA have no TTL to live by. */
  a = nxdomain("nx.test.", NULL);
  a->ttl = 300;
  assert_int_equal(put_free(&fx, "nx.test", DT_TYPE_A, a),
                   DT_CACHE_NOT_CACHEABLE);
  a = nodata("nd.test.", DT_TYPE_AAAA, NULL);
  a->ttl = 300;
  assert_int_equal(put_free(&fx, "nd.test", DT_TYPE_AAAA, a),
                   DT_CACHE_NOT_CACHEABLE);

  dt_cache_stats_t st = stats(&fx);
  assert_int_equal(st.entries, 0);
  assert_int_equal(st.bytes, 0);
  assert_int_equal(look(&fx, "e.test", DT_TYPE_A, false, NULL), DT_CACHE_MISS);

  /* An answer that cannot be cached leaves an older entry alone. */
  put_free(&fx, "k.test", DT_TYPE_A, a_record("k.test.", 100, "192.0.2.7"));
  reply_t sf = {.qname = "k.test.", .qtype = DT_TYPE_A, .rcode = 2};
  assert_int_equal(put_free(&fx, "k.test", DT_TYPE_A, answer_of(&sf)),
                   DT_CACHE_NOT_CACHEABLE);
  assert_int_equal(remaining(&fx, "k.test", DT_TYPE_A), 100);

  /* what may be NULL; bad arguments are refused. */
  a = a_record("n.test.", 100, "192.0.2.1");
  assert_int_equal(dt__cache_put(fx.c, "n.test", DT_TYPE_A, IN, a, NULL),
                   DT_OK);
  assert_int_equal(dt__cache_put(fx.c, "n..test", DT_TYPE_A, IN, a, NULL),
                   DT_EBADNAME);
  assert_int_equal(dt__cache_put(fx.c, NULL, DT_TYPE_A, IN, a, NULL),
                   DT_EBADNAME);
  assert_int_equal(dt__cache_put(fx.c, "n.test", DT_TYPE_A, IN, NULL, NULL),
                   DT_EINVAL);
  assert_int_equal(dt__cache_put(NULL, "n.test", DT_TYPE_A, IN, a, NULL),
                   DT_EINVAL);
  dt_answer_free(a);
  fx_close(&fx);
}

static void test_negative(void **state) {
  (void)state;
  fx_t fx;
  fx_init(&fx);
  fx_open(&fx);
  /* RFC 2308 §5: min(SOA TTL, SOA MINIMUM), either way round. */
  assert_int_equal(
      put_free(&fx, "nx1.test", DT_TYPE_A, nxdomain("nx1.test.", SOA_600_50)),
      DT_CACHE_STORED);
  assert_int_equal(
      put_free(&fx, "nx2.test", DT_TYPE_A, nxdomain("nx2.test.", SOA_40_300)),
      DT_CACHE_STORED);
  assert_int_equal(put_free(&fx, "nd1.test", DT_TYPE_AAAA,
                            nodata("nd1.test.", DT_TYPE_AAAA, SOA_600_50)),
                   DT_CACHE_STORED);
  assert_int_equal(put_free(&fx, "nd2.test", DT_TYPE_AAAA,
                            nodata("nd2.test.", DT_TYPE_AAAA, SOA_40_300)),
                   DT_CACHE_STORED);

  got_t g;
  assert_int_equal(look(&fx, "nx1.test", DT_TYPE_A, false, &g), DT_CACHE_HIT);
  assert_int_equal(g.hit.remaining_s, 50);
  assert_int_equal(dt_answer_status(g.answer), DT_ENXDOMAIN);
  assert_int_equal(g.answer->nanswer, 0);
  assert_null(g.answer->answer);
  assert_int_equal(g.answer->nauthority, 1);
  assert_int_equal(g.answer->authority[0].type, DT_TYPE_SOA);
  assert_string_equal(g.answer->authority[0].owner, "test.");
  assert_int_equal(g.answer->authority[0].ttl, 600);
  assert_int_equal(remaining(&fx, "nx2.test", DT_TYPE_A), 40);
  assert_int_equal(look(&fx, "nd1.test", DT_TYPE_AAAA, false, &g),
                   DT_CACHE_HIT);
  assert_int_equal(g.hit.remaining_s, 50);
  assert_int_equal(dt_answer_status(g.answer), DT_ENODATA);
  assert_int_equal(remaining(&fx, "nd2.test", DT_TYPE_AAAA), 40);
  /* NODATA for AAAA says nothing of A. */
  assert_int_equal(remaining(&fx, "nd1.test", DT_TYPE_A), -1);

  fx.now = T0 + 40 * S;
  assert_int_equal(remaining(&fx, "nx1.test", DT_TYPE_A), 10);
  assert_int_equal(remaining(&fx, "nx2.test", DT_TYPE_A), -1);
  assert_int_equal(remaining(&fx, "nd2.test", DT_TYPE_AAAA), -1);
  fx.now = T0 + 50 * S;
  assert_int_equal(remaining(&fx, "nx1.test", DT_TYPE_A), -1);
  assert_int_equal(remaining(&fx, "nd1.test", DT_TYPE_AAAA), -1);
  assert_int_equal(stats(&fx).entries, 0);
  fx_close(&fx);
}

static void test_clamps(void **state) {
  (void)state;
  fx_t fx;

  /* The defaults cap positives at a day and negatives at an hour. */
  fx_init(&fx);
  fx_open(&fx);
  put_free(&fx, "big.test", DT_TYPE_A,
           a_record("big.test.", 2000000, "192.0.2.1"));
  assert_int_equal(remaining(&fx, "big.test", DT_TYPE_A), 86400);
  put_free(
      &fx, "nx.test", DT_TYPE_A,
      nxdomain("nx.test.", "test. 7200 IN SOA ns.test. h.test. 1 2 3 4 7200"));
  assert_int_equal(remaining(&fx, "nx.test", DT_TYPE_A), 3600);
  fx_close(&fx);

  /* Each clamp alone; the others leave the TTLs be. */
  fx_init(&fx);
  fx.cfg.pos_min_s = 60;
  fx_open(&fx);
  put_free(&fx, "p.test", DT_TYPE_A, a_record("p.test.", 5, "192.0.2.1"));
  put_free(&fx, "q.test", DT_TYPE_A, a_record("q.test.", 61, "192.0.2.1"));
  put_free(&fx, "nx.test", DT_TYPE_A, nxdomain("nx.test.", SOA_600_50));
  assert_int_equal(remaining(&fx, "p.test", DT_TYPE_A), 60);
  assert_int_equal(remaining(&fx, "q.test", DT_TYPE_A), 61);
  assert_int_equal(remaining(&fx, "nx.test", DT_TYPE_A), 50);
  fx_close(&fx);

  fx_init(&fx);
  fx.cfg.pos_max_s = 30;
  fx_open(&fx);
  put_free(&fx, "p.test", DT_TYPE_A, a_record("p.test.", 300, "192.0.2.1"));
  put_free(&fx, "q.test", DT_TYPE_A, a_record("q.test.", 29, "192.0.2.1"));
  put_free(&fx, "nx.test", DT_TYPE_A, nxdomain("nx.test.", SOA_600_50));
  assert_int_equal(remaining(&fx, "p.test", DT_TYPE_A), 30);
  assert_int_equal(remaining(&fx, "q.test", DT_TYPE_A), 29);
  assert_int_equal(remaining(&fx, "nx.test", DT_TYPE_A), 50);
  fx.now = T0 + 30 * S;
  assert_int_equal(remaining(&fx, "p.test", DT_TYPE_A), -1);
  fx_close(&fx);

  fx_init(&fx);
  fx.cfg.neg_min_s = 120;
  fx_open(&fx);
  put_free(&fx, "nx.test", DT_TYPE_A, nxdomain("nx.test.", SOA_600_50));
  put_free(&fx, "nd.test", DT_TYPE_TXT,
           nodata("nd.test.", DT_TYPE_TXT, SOA_40_300));
  put_free(&fx, "p.test", DT_TYPE_A, a_record("p.test.", 5, "192.0.2.1"));
  assert_int_equal(remaining(&fx, "nx.test", DT_TYPE_A), 120);
  assert_int_equal(remaining(&fx, "nd.test", DT_TYPE_TXT), 120);
  assert_int_equal(remaining(&fx, "p.test", DT_TYPE_A), 5);
  fx_close(&fx);

  fx_init(&fx);
  fx.cfg.neg_max_s = 30;
  fx_open(&fx);
  put_free(&fx, "nx.test", DT_TYPE_A, nxdomain("nx.test.", SOA_600_50));
  put_free(&fx, "p.test", DT_TYPE_A, a_record("p.test.", 500, "192.0.2.1"));
  assert_int_equal(remaining(&fx, "nx.test", DT_TYPE_A), 30);
  assert_int_equal(remaining(&fx, "p.test", DT_TYPE_A), 500);
  fx_close(&fx);

  /* A cap of 0 turns that kind of caching off. */
  fx_init(&fx);
  fx.cfg.neg_max_s = 0;
  fx_open(&fx);
  assert_int_equal(
      put_free(&fx, "nx.test", DT_TYPE_A, nxdomain("nx.test.", SOA_600_50)),
      DT_CACHE_NOT_CACHEABLE);
  assert_int_equal(
      put_free(&fx, "p.test", DT_TYPE_A, a_record("p.test.", 5, "192.0.2.1")),
      DT_CACHE_STORED);
  fx_close(&fx);
}

/* ---- keys
 * --------------------------------------------------------------------- */

static void test_keys(void **state) {
  (void)state;
  fx_t fx;
  fx_init(&fx);
  fx_open(&fx);
  put_free(&fx, "A.Example.", DT_TYPE_A,
           a_record("A.Example.", 100, "192.0.2.1"));
  assert_int_equal(remaining(&fx, "a.example", DT_TYPE_A), 100);
  assert_int_equal(remaining(&fx, "a.example.", DT_TYPE_A), 100);
  assert_int_equal(remaining(&fx, "A.EXAMPLE", DT_TYPE_A), 100);
  assert_int_equal(remaining(&fx, "a.example", DT_TYPE_AAAA), -1);
  assert_int_equal(
      dt__cache_get(fx.c, "a.example", DT_TYPE_A, 3, false, NULL, NULL),
      DT_CACHE_MISS); /* class CH is another key */
  assert_int_equal(remaining(&fx, "b.example", DT_TYPE_A), -1);
  assert_int_equal(remaining(&fx, "example", DT_TYPE_A), -1);
  assert_int_equal(remaining(&fx, "a.example.com", DT_TYPE_A), -1);
  /* The answer keeps its own spelling. */
  got_t g;
  look(&fx, "a.example", DT_TYPE_A, false, &g);
  assert_string_equal(g.answer->qname, "A.Example.");

  /* One entry whatever the spelling of the put. */
  put_free(&fx, "a.EXAMPLE", DT_TYPE_A,
           a_record("a.example.", 200, "192.0.2.2"));
  assert_int_equal(stats(&fx).entries, 1);
  assert_int_equal(remaining(&fx, "A.Example.", DT_TYPE_A), 200);

  /* Class is part of the key. */
  dt_answer_t *a = a_record("a.example.", 300, "192.0.2.3");
  assert_int_equal(dt__cache_put(fx.c, "a.example", DT_TYPE_A, 3, a, NULL),
                   DT_OK);
  dt_answer_free(a);
  assert_int_equal(stats(&fx).entries, 2);
  assert_int_equal(remaining(&fx, "a.example", DT_TYPE_A), 200);

  /* Invalid names are misses; the root and escapes are names like any. */
  assert_int_equal(look(&fx, "a..example", DT_TYPE_A, false, NULL),
                   DT_CACHE_MISS);
  assert_int_equal(look(&fx, NULL, DT_TYPE_A, false, NULL), DT_CACHE_MISS);
  reply_t root = {.qname = ".",
                  .qtype = DT_TYPE_NS,
                  .an = {". 500 IN NS a.root-servers.net."}};
  assert_int_equal(put_free(&fx, ".", DT_TYPE_NS, answer_of(&root)),
                   DT_CACHE_STORED);
  assert_int_equal(look(&fx, ".", DT_TYPE_NS, false, &g), DT_CACHE_HIT);
  assert_string_equal(g.answer->qname, ".");
  assert_string_equal(g.answer->answer[0].owner, ".");
  put_free(&fx, "a\\.b.example", DT_TYPE_A,
           a_record("a\\.b.example.", 100, "192.0.2.4"));
  assert_int_equal(remaining(&fx, "A\\046B.example.", DT_TYPE_A), 100);
  assert_int_equal(remaining(&fx, "a.b.example", DT_TYPE_A), -1);
  fx_close(&fx);
}

/* Whatever path builds a key, its name is dt_name_normalize's normal form,
 * and a name it rejects is rejected. */
static void test_key_forms(void **state) {
  (void)state;
  char l63[64], l64[65], n253[254], n254[255], n253dot[255];
  memset(l63, 'x', 63);
  l63[63] = '\0';
  memset(l64, 'x', 64);
  l64[64] = '\0';
  /* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 characters. */
  snprintf(n253, sizeof(n253), "%s.%s.%s.%.61s", l63, l63, l63, l63);
  assert_int_equal(strlen(n253), 253);
  snprintf(n254, sizeof(n254), "%s.%s.%s.%.62s", l63, l63, l63, l63);
  snprintf(n253dot, sizeof(n253dot), "%s.", n253);
  const char *names[] = {"a",
                         "A",
                         "a.",
                         "A.B.C.",
                         "Host-1_x.Example.COM",
                         "*.wild.test",
                         "a!#$%&'()*+,/:;<=>?@[]^`{|}~\"Z.test",
                         l63,
                         l64,
                         n253,
                         n254,
                         n253dot,
                         "",
                         ".",
                         "..",
                         ".a",
                         "a..b",
                         "a.b..",
                         "a b.test",
                         "a\\.b",
                         "a\\066C",
                         "A\\Z.test",
                         "a\\",
                         "\xc3\xa9T\xc3\xa9.test",
                         "a\t.test",
                         "x.\x7f",
                         "a\\000.test"};
  fx_t fx;
  fx_init(&fx);
  fx_open(&fx);
  dt_answer_t *a = a_record("x.test.", 100, "192.0.2.1");
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    char want[DT_NAME_BUFSIZE];
    dt_status_t norm = dt_name_normalize(names[i], want, sizeof(want));
    dt_status_t st = dt__cache_put(fx.c, names[i], DT_TYPE_A, IN, a, NULL);
    if (norm != DT_OK) {
      assert_int_equal(st, DT_EBADNAME);
      continue;
    }
    assert_int_equal(st, DT_OK);
    listing_t l;
    list(&fx, &l);
    assert_int_equal(l.n, 1);
    if (strlen(want) < sizeof(l.e[0].name)) {
      assert_string_equal(l.e[0].name, want);
    }
    assert_int_equal(look(&fx, want, DT_TYPE_A, false, NULL), DT_CACHE_HIT);
    assert_int_equal(look(&fx, names[i], DT_TYPE_A, false, NULL), DT_CACHE_HIT);
    dt__cache_flush(fx.c, names[i]);
    assert_int_equal(stats(&fx).entries, 0);
  }
  dt_answer_free(a);
  fx_close(&fx);
}

/* An answer made by hand: absent strings and RDATA, many records, names
 * that repeat and names that do not. */
static void test_stored_answer_shape(void **state) {
  (void)state;
  fx_t fx;
  fx_init(&fx);
  fx_open(&fx);
  static const uint8_t rd[4] = {198, 51, 100, 7};
  char owners[20][32], datas[20][32];
  dt_rr_t an[20];
  for (int i = 0; i < 20; i++) {
    snprintf(owners[i], sizeof(owners[i]), "%s", i % 3 ? "x.test." : "y.test.");
    snprintf(datas[i], sizeof(datas[i]), "198.51.100.%d", i);
    an[i] = (dt_rr_t){owners[i], DT_TYPE_A, IN,      (uint32_t)(100 + i),
                      rd,        4,         datas[i]};
  }
  an[5].data = NULL;
  an[6].rdata = NULL;
  an[6].rdlength = 0;
  dt_rr_t au[1] = {{"test.", DT_TYPE_SOA, IN, 90, NULL, 0, NULL}};
  dt_answer_t a;
  memset(&a, 0, sizeof(a));
  a.qname = "X.test";
  a.qtype = DT_TYPE_A;
  a.qclass = IN;
  a.canonical = NULL;
  a.answer = an;
  a.nanswer = 20;
  a.authority = au;
  a.nauthority = 1;
  a.ttl = 100;
  a.flags = DT_FLAG_AA | DT_FLAG_AD;
  assert_int_equal(put(&fx, "x.test", DT_TYPE_A, &a), DT_CACHE_STORED);
  got_t g;
  assert_int_equal(look(&fx, "x.test", DT_TYPE_A, false, &g), DT_CACHE_HIT);
  dt_answer_t *c = g.answer;
  assert_string_equal(c->qname, "X.test");
  assert_null(c->canonical);
  assert_int_equal(c->flags, DT_FLAG_AA | DT_FLAG_AD);
  assert_int_equal(c->nanswer, 20);
  for (int i = 0; i < 20; i++) {
    assert_string_equal(c->answer[i].owner, owners[i]);
    assert_int_equal(c->answer[i].ttl, 100 + i);
    if (i == 5) {
      assert_null(c->answer[i].data);
    } else {
      assert_string_equal(c->answer[i].data, datas[i]);
    }
    if (i == 6) {
      assert_null(c->answer[i].rdata);
    } else {
      assert_memory_equal(c->answer[i].rdata, rd, 4);
    }
  }
  assert_int_equal(c->nauthority, 1);
  assert_string_equal(c->authority[0].owner, "test.");
  assert_null(c->authority[0].rdata);
  assert_null(c->authority[0].data);
  fx_close(&fx);
}

/* ---- bounds
 * ------------------------------------------------------------------ */

static void test_lru_order(void **state) {
  (void)state;
  fx_t fx;
  fx_init(&fx);
  fx.cfg.max_entries = 3; /* a small cache is one shard: exact LRU */
  fx_open(&fx);
  put_free(&fx, "a.test", DT_TYPE_A, a_record("a.test.", 100, "192.0.2.1"));
  put_free(&fx, "b.test", DT_TYPE_A, a_record("b.test.", 100, "192.0.2.2"));
  put_free(&fx, "c.test", DT_TYPE_A, a_record("c.test.", 100, "192.0.2.3"));
  listing_t l;
  list(&fx, &l);
  assert_int_equal(l.n, 3);
  assert_string_equal(l.e[0].name, "c.test"); /* most recent first */
  assert_string_equal(l.e[2].name, "a.test");

  /* Reading a saves it: b is now the oldest. */
  assert_int_equal(look(&fx, "a.test", DT_TYPE_A, false, NULL), DT_CACHE_HIT);
  put_free(&fx, "d.test", DT_TYPE_A, a_record("d.test.", 100, "192.0.2.4"));
  list(&fx, &l);
  assert_int_equal(l.n, 3);
  assert_string_equal(l.e[0].name, "d.test");
  assert_string_equal(l.e[1].name, "a.test");
  assert_string_equal(l.e[2].name, "c.test");
  assert_int_equal(stats(&fx).evicted, 1);

  /* Replacing makes it the most recent and evicts nothing. */
  put_free(&fx, "c.test", DT_TYPE_A, a_record("c.test.", 100, "192.0.2.9"));
  list(&fx, &l);
  assert_string_equal(l.e[0].name, "c.test");
  assert_string_equal(l.e[2].name, "a.test");
  assert_int_equal(stats(&fx).evicted, 1);

  put_free(&fx, "e.test", DT_TYPE_A, a_record("e.test.", 100, "192.0.2.5"));
  assert_int_equal(look(&fx, "a.test", DT_TYPE_A, false, NULL), DT_CACHE_MISS);
  assert_int_equal(look(&fx, "b.test", DT_TYPE_A, false, NULL), DT_CACHE_MISS);
  assert_int_equal(look(&fx, "c.test", DT_TYPE_A, false, NULL), DT_CACHE_HIT);
  assert_int_equal(look(&fx, "d.test", DT_TYPE_A, false, NULL), DT_CACHE_HIT);
  assert_int_equal(look(&fx, "e.test", DT_TYPE_A, false, NULL), DT_CACHE_HIT);
  dt_cache_stats_t st = stats(&fx);
  assert_int_equal(st.evicted, 2);
  assert_int_equal(st.entries, 3);

  /* An expired entry pushed out by the bound counts as expired. */
  fx.now = T0 + 100 * S;
  put_free(&fx, "f.test", DT_TYPE_A, a_record("f.test.", 100, "192.0.2.6"));
  st = stats(&fx);
  assert_int_equal(st.evicted, 2);
  assert_int_equal(st.expired, 1);
  fx_close(&fx);
}

static void test_byte_limit(void **state) {
  (void)state;
  fx_t fx;
  /* Learn the size of one entry and of an empty shard's table. */
  fx_init(&fx);
  fx_open(&fx);
  put_free(&fx, "h1.test", DT_TYPE_A, a_record("h1.test.", 100, "192.0.2.1"));
  listing_t l;
  list(&fx, &l);
  size_t entry = l.e[0].info.bytes;
  size_t table = stats(&fx).bytes - entry;
  /* Honest bytes: at least the records and strings the answer needs. */
  assert_true(entry >=
              sizeof(dt_rr_t) + sizeof("h1.test.") + sizeof("192.0.2.1") + 4);
  assert_true(table > 0);
  fx_close(&fx);

  fx_init(&fx);
  fx.cfg.max_bytes = table + 3 * entry + entry / 2;
  fx_open(&fx);
  char name[32];
  for (int i = 1; i <= 5; i++) {
    snprintf(name, sizeof(name), "h%d.test", i);
    put_free(&fx, name, DT_TYPE_A, a_record(name, 100, "192.0.2.1"));
    dt_cache_stats_t st = stats(&fx);
    assert_true(st.bytes <= fx.cfg.max_bytes);
    assert_int_equal(st.entries, i < 3 ? i : 3);
    assert_int_equal(st.bytes, table + st.entries * entry);
  }
  assert_int_equal(stats(&fx).evicted, 2);
  assert_int_equal(look(&fx, "h2.test", DT_TYPE_A, false, NULL), DT_CACHE_MISS);
  assert_int_equal(look(&fx, "h3.test", DT_TYPE_A, false, NULL), DT_CACHE_HIT);

  /* An answer bigger than the whole bound is not cached and evicts
   * nothing. */
  reply_t big = {.qname = "big.test.", .qtype = DT_TYPE_TXT};
  char txt[20][300];
  for (int i = 0; i < 20; i++) {
    snprintf(txt[i], sizeof(txt[i]), "big.test. 100 IN TXT \"%0250d\"", i);
    big.an[i] = txt[i];
  }
  assert_int_equal(put_free(&fx, "big.test", DT_TYPE_TXT, answer_of(&big)),
                   DT_CACHE_NOT_CACHEABLE);
  assert_int_equal(stats(&fx).entries, 3);
  assert_int_equal(stats(&fx).evicted, 2);
  fx_close(&fx);
}

/* ---- replace, flush, list, stats
 * ---------------------------------------------- */

static void test_replace(void **state) {
  (void)state;
  fx_t fx;
  fx_init(&fx);
  fx_open(&fx);
  put_free(&fx, "r.test", DT_TYPE_A, a_record("r.test.", 100, "192.0.2.1"));
  size_t before = stats(&fx).bytes;
  fx.now = T0 + 10 * S;
  put_free(&fx, "r.test", DT_TYPE_A, a_record("r.test.", 200, "192.0.2.9"));
  got_t g;
  assert_int_equal(look(&fx, "r.test", DT_TYPE_A, false, &g), DT_CACHE_HIT);
  assert_int_equal(g.hit.remaining_s, 200);
  assert_int_equal(g.hit.elapsed_s, 0);
  assert_string_equal(g.answer->answer[0].data, "192.0.2.9");
  dt_cache_stats_t st = stats(&fx);
  assert_int_equal(st.entries, 1);
  assert_int_equal(st.bytes, before);
  assert_int_equal(st.evicted, 0);

  /* A positive answer replaces a negative one and the other way round. */
  put_free(&fx, "r.test", DT_TYPE_A, nxdomain("r.test.", SOA_600_50));
  assert_int_equal(look(&fx, "r.test", DT_TYPE_A, false, &g), DT_CACHE_HIT);
  assert_int_equal(dt_answer_status(g.answer), DT_ENXDOMAIN);
  assert_int_equal(stats(&fx).entries, 1);
  fx_close(&fx);
}

static void test_flush(void **state) {
  (void)state;
  fx_t fx;
  fx_init(&fx);
  fx_open(&fx);
  put_free(&fx, "www.test", DT_TYPE_A, a_record("www.test.", 100, "192.0.2.1"));
  put_free(&fx, "www.test", DT_TYPE_AAAA,
           nodata("www.test.", DT_TYPE_AAAA, SOA_600_50));
  put_free(&fx, "www.test", DT_TYPE_TXT,
           nodata("www.test.", DT_TYPE_TXT, SOA_600_50));
  put_free(&fx, "other.test", DT_TYPE_A,
           a_record("other.test.", 100, "192.0.2.2"));
  put_free(&fx, "x.www.test", DT_TYPE_A,
           a_record("x.www.test.", 100, "192.0.2.3"));
  assert_int_equal(stats(&fx).entries, 5);

  dt__cache_flush(fx.c, "not..valid"); /* nothing */
  dt__cache_flush(fx.c, "nothere.test");
  assert_int_equal(stats(&fx).entries, 5);

  dt__cache_flush(fx.c, "WWW.Test.");
  assert_int_equal(stats(&fx).entries, 2);
  assert_int_equal(remaining(&fx, "www.test", DT_TYPE_A), -1);
  assert_int_equal(remaining(&fx, "www.test", DT_TYPE_AAAA), -1);
  assert_int_equal(remaining(&fx, "other.test", DT_TYPE_A), 100);
  assert_int_equal(remaining(&fx, "x.www.test", DT_TYPE_A), 100);

  dt__cache_flush(fx.c, NULL);
  dt_cache_stats_t st = stats(&fx);
  assert_int_equal(st.entries, 0);
  assert_int_equal(st.bytes, 0);
  assert_int_equal(st.evicted, 0); /* flushing is not evicting */
  assert_int_equal(remaining(&fx, "other.test", DT_TYPE_A), -1);
  /* The cache works on after a flush. */
  put_free(&fx, "www.test", DT_TYPE_A, a_record("www.test.", 100, "192.0.2.1"));
  assert_int_equal(remaining(&fx, "www.test", DT_TYPE_A), 100);
  fx_close(&fx);
}

static const dt_cache_entry_info_t *find(const listing_t *l, const char *name,
                                         uint16_t type) {
  for (size_t i = 0; i < l->n; i++) {
    if (strcmp(l->e[i].name, name) == 0 && l->e[i].info.type == type) {
      return &l->e[i].info;
    }
  }
  return NULL;
}

static void test_list(void **state) {
  (void)state;
  fx_t fx;
  fx_init(&fx);
  fx.cfg.serve_stale = true;
  fx.cfg.stale_window_s = 100;
  fx_open(&fx);
  listing_t l;
  list(&fx, &l);
  assert_int_equal(l.n, 0);
  dt__cache_list(fx.c, NULL, NULL);

  put_free(&fx, "Pos.Test.", DT_TYPE_A,
           a_record("pos.test.", 100, "192.0.2.1"));
  put_free(&fx, "nx.test", DT_TYPE_A, nxdomain("nx.test.", SOA_600_50));
  put_free(&fx, "short.test", DT_TYPE_A,
           a_record("short.test.", 10, "192.0.2.1"));
  fx.now = T0 + 20 * S;
  list(&fx, &l);
  assert_int_equal(l.n, 3);
  const dt_cache_entry_info_t *e = find(&l, "pos.test", DT_TYPE_A);
  assert_non_null(e);
  assert_int_equal(e->qclass, IN);
  assert_int_equal(e->remaining_s, 80);
  assert_false(e->negative);
  assert_false(e->stale);
  assert_int_equal(e->rcode, 0);
  assert_true(e->bytes > 0);
  e = find(&l, "nx.test", DT_TYPE_A);
  assert_non_null(e);
  assert_true(e->negative);
  assert_int_equal(e->rcode, DT_RCODE_NXDOMAIN);
  assert_int_equal(e->remaining_s, 30);
  e = find(&l, "short.test", DT_TYPE_A);
  assert_non_null(e);
  assert_true(e->stale);
  assert_int_equal(e->remaining_s, 30); /* the stale TTL */
  size_t total = 0;
  for (size_t i = 0; i < l.n; i++) {
    total += l.e[i].info.bytes;
  }
  assert_true(total < stats(&fx).bytes); /* plus the tables */

  /* Past every window (pos.test's ends last, at 100 + 100 s), entries
   * are no longer listed. */
  fx.now = T0 + 200 * S - 1;
  list(&fx, &l);
  assert_int_equal(l.n, 1);
  fx.now = T0 + 200 * S;
  list(&fx, &l);
  assert_int_equal(l.n, 0);
  /* Listing changes nothing: no counter, no LRU order. */
  dt_cache_stats_t st = stats(&fx);
  assert_int_equal(st.hits + st.misses + st.expired + st.stale_served, 0);
  fx_close(&fx);
}

static void test_stats(void **state) {
  (void)state;
  fx_t fx;
  fx_init(&fx);
  fx.cfg.serve_stale = true;
  fx.cfg.stale_window_s = 10;
  fx.cfg.max_entries = 2;
  fx_open(&fx);
  dt_cache_stats_t st = stats(&fx);
  assert_int_equal(st.hits, 0);
  assert_int_equal(st.misses, 0);
  assert_int_equal(st.expired, 0);
  assert_int_equal(st.evicted, 0);
  assert_int_equal(st.stale_served, 0);
  assert_int_equal(st.coalesced, 0);
  assert_int_equal(st.entries, 0);
  assert_int_equal(st.bytes, 0);

  put_free(&fx, "a.test", DT_TYPE_A, a_record("a.test.", 5, "192.0.2.1"));
  look(&fx, "a.test", DT_TYPE_A, false, NULL); /* hit */
  look(&fx, "a.test", DT_TYPE_A, true, NULL);  /* hit */
  look(&fx, "b.test", DT_TYPE_A, false, NULL); /* miss */
  look(&fx, "b.test", DT_TYPE_A, true, NULL);  /* not a new miss */
  fx.now = T0 + 5 * S;
  look(&fx, "a.test", DT_TYPE_A, false, NULL); /* miss, kept */
  look(&fx, "a.test", DT_TYPE_A, true, NULL);  /* stale */
  fx.now = T0 + 15 * S;
  look(&fx, "a.test", DT_TYPE_A, true, NULL); /* expired */
  dt__cache_count_coalesced(fx.c);
  dt__cache_count_coalesced(fx.c);
  put_free(&fx, "c.test", DT_TYPE_A, a_record("c.test.", 5, "192.0.2.1"));
  put_free(&fx, "d.test", DT_TYPE_A, a_record("d.test.", 5, "192.0.2.1"));
  put_free(&fx, "e.test", DT_TYPE_A, a_record("e.test.", 5, "192.0.2.1"));
  st = stats(&fx);
  assert_int_equal(st.hits, 2);
  assert_int_equal(st.misses, 2);
  assert_int_equal(st.stale_served, 1);
  assert_int_equal(st.expired, 1);
  assert_int_equal(st.evicted, 1);
  assert_int_equal(st.coalesced, 2);
  assert_int_equal(st.entries, 2);
  assert_true(st.bytes > 0);
  fx_close(&fx);
}

/* ---- serve-stale and prefetch
 * --------------------------------------------------- */

static void test_serve_stale(void **state) {
  (void)state;
  fx_t fx;
  fx_init(&fx);
  fx.cfg.serve_stale = true;
  fx.cfg.stale_window_s = 100;
  fx.cfg.stale_ttl_s = 7;
  fx_open(&fx);
  put_free(&fx, "s.test", DT_TYPE_A, a_record("s.test.", 10, "192.0.2.1"));
  got_t g;
  /* Fresh: a plain hit even when stale is allowed. */
  assert_int_equal(look(&fx, "s.test", DT_TYPE_A, true, &g), DT_CACHE_HIT);
  assert_false(g.hit.stale);
  assert_int_equal(g.hit.remaining_s, 10);

  fx.now = T0 + 10 * S;
  assert_int_equal(look(&fx, "s.test", DT_TYPE_A, false, &g), DT_CACHE_MISS);
  assert_int_equal(stats(&fx).entries, 1); /* kept for a stale look */
  assert_int_equal(look(&fx, "s.test", DT_TYPE_A, true, &g),
                   DT_CACHE_HIT_STALE);
  assert_true(g.hit.stale);
  assert_int_equal(g.hit.remaining_s, 7);
  assert_int_equal(g.hit.elapsed_s, 10);
  assert_false(g.hit.prefetch_due);
  assert_true(g.answer->stale);
  assert_true(g.answer->from_cache);
  assert_int_equal(g.answer->answer[0].ttl, 10);

  /* The window's last microsecond, then its end. */
  fx.now = T0 + 110 * S - 1;
  assert_int_equal(look(&fx, "s.test", DT_TYPE_A, true, &g),
                   DT_CACHE_HIT_STALE);
  assert_int_equal(g.hit.elapsed_s, 109);
  fx.now = T0 + 110 * S;
  assert_int_equal(look(&fx, "s.test", DT_TYPE_A, true, &g), DT_CACHE_MISS);
  dt_cache_stats_t st = stats(&fx);
  assert_int_equal(st.entries, 0);
  assert_int_equal(st.expired, 1);
  assert_int_equal(st.stale_served, 2);
  assert_int_equal(st.misses, 1);
  fx_close(&fx);

  /* Off (the default): expired entries are gone at once, allowed or not. */
  fx_init(&fx);
  fx_open(&fx);
  put_free(&fx, "s.test", DT_TYPE_A, a_record("s.test.", 10, "192.0.2.1"));
  fx.now = T0 + 10 * S;
  assert_int_equal(look(&fx, "s.test", DT_TYPE_A, true, &g), DT_CACHE_MISS);
  st = stats(&fx);
  assert_int_equal(st.entries, 0);
  assert_int_equal(st.expired, 1);
  assert_int_equal(st.stale_served, 0);
  fx_close(&fx);

  /* On with a window of 0 is the same as off. */
  fx_init(&fx);
  fx.cfg.serve_stale = true;
  fx.cfg.stale_window_s = 0;
  fx_open(&fx);
  put_free(&fx, "s.test", DT_TYPE_A, a_record("s.test.", 10, "192.0.2.1"));
  fx.now = T0 + 10 * S;
  assert_int_equal(look(&fx, "s.test", DT_TYPE_A, true, &g), DT_CACHE_MISS);
  fx_close(&fx);

  /* Negative answers go stale like positive ones. */
  fx_init(&fx);
  fx.cfg.serve_stale = true;
  fx_open(&fx);
  put_free(&fx, "nx.test", DT_TYPE_A, nxdomain("nx.test.", SOA_600_50));
  fx.now = T0 + 60 * S;
  assert_int_equal(look(&fx, "nx.test", DT_TYPE_A, true, &g),
                   DT_CACHE_HIT_STALE);
  assert_int_equal(dt_answer_status(g.answer), DT_ENXDOMAIN);
  assert_int_equal(g.hit.remaining_s, 30);
  fx_close(&fx);
}

static void test_prefetch(void **state) {
  (void)state;
  fx_t fx;
  fx_init(&fx);
  fx.cfg.prefetch = true;
  fx_open(&fx);
  put_free(&fx, "p.test", DT_TYPE_A, a_record("p.test.", 100, "192.0.2.1"));
  got_t g;
  fx.now = T0 + 90 * S - 1;
  look(&fx, "p.test", DT_TYPE_A, false, &g);
  assert_false(g.hit.prefetch_due);
  fx.now = T0 + 90 * S; /* the last 10 seconds begin */
  look(&fx, "p.test", DT_TYPE_A, false, &g);
  assert_true(g.hit.prefetch_due);
  assert_int_equal(g.hit.remaining_s, 10);
  look(&fx, "p.test", DT_TYPE_A, false, &g); /* once only */
  assert_false(g.hit.prefetch_due);
  fx.now = T0 + 99 * S;
  look(&fx, "p.test", DT_TYPE_A, false, &g);
  assert_false(g.hit.prefetch_due);

  /* A new entry (the refreshed answer) may be due again. */
  put_free(&fx, "p.test", DT_TYPE_A, a_record("p.test.", 100, "192.0.2.1"));
  fx.now = T0 + 99 * S + 95 * S;
  look(&fx, "p.test", DT_TYPE_A, false, &g);
  assert_true(g.hit.prefetch_due);

  /* Short TTLs: the last tenth of 5 s is half a second. */
  put_free(&fx, "q.test", DT_TYPE_A, a_record("q.test.", 5, "192.0.2.1"));
  fx.now += 4 * S + S / 2 - 1;
  look(&fx, "q.test", DT_TYPE_A, false, &g);
  assert_false(g.hit.prefetch_due);
  fx.now += 1;
  look(&fx, "q.test", DT_TYPE_A, false, &g);
  assert_true(g.hit.prefetch_due);
  fx_close(&fx);

  /* Off: never. */
  fx_init(&fx);
  fx_open(&fx);
  put_free(&fx, "p.test", DT_TYPE_A, a_record("p.test.", 100, "192.0.2.1"));
  fx.now = T0 + 95 * S;
  look(&fx, "p.test", DT_TYPE_A, false, &g);
  assert_false(g.hit.prefetch_due);
  fx_close(&fx);
}

/* ---- allocation
 * ------------------------------------------------------------------ */

static void visit_addr(const dt_cache_hit_t *hit, void *ctx) {
  memcpy(ctx, hit->answer->answer[0].rdata, 4);
}

static void test_hit_allocates_nothing(void **state) {
  (void)state;
  fx_t fx;
  fx_init(&fx);
  fx.cfg.serve_stale = true;
  fx_open(&fx);
  put_free(&fx, "warm.test", DT_TYPE_A,
           a_record("warm.test.", 100, "192.0.2.1"));
  put_free(&fx, "old.test", DT_TYPE_A, a_record("old.test.", 1, "192.0.2.2"));
  fx.now = T0 + 2 * S;
  uint8_t addr[4] = {0};
  got_t g;
  dt__alloc_reset_counts();
  for (int i = 0; i < 10000; i++) {
    assert_int_equal(dt__cache_get(fx.c, "Warm.Test.", DT_TYPE_A, IN, false,
                                   visit_addr, addr),
                     DT_CACHE_HIT);
    assert_int_equal(
        dt__cache_get(fx.c, "old.test", DT_TYPE_A, IN, true, visit_addr, addr),
        DT_CACHE_HIT_STALE);
    assert_int_equal(
        dt__cache_get(fx.c, "cold.test", DT_TYPE_A, IN, false, NULL, NULL),
        DT_CACHE_MISS);
  }
  /* Copying a hit into caller storage is free too. */
  assert_int_equal(look(&fx, "warm.test", DT_TYPE_A, false, &g), DT_CACHE_HIT);
  assert_int_equal(dt__alloc_count(), 0);
  assert_int_equal(dt__free_count(), 0);
  static const uint8_t want[] = {192, 0, 2, 2};
  assert_memory_equal(addr, want, 4);
  fx_close(&fx);
}

/* Everything a failed put could have disturbed. */
typedef struct {
  dt_cache_stats_t st;
  listing_t l;
} snapshot_t;

static void snap(fx_t *fx, snapshot_t *s) {
  s->st = stats(fx);
  list(fx, &s->l);
}

static void assert_same(const snapshot_t *a, const snapshot_t *b) {
  assert_memory_equal(&a->st, &b->st, sizeof(a->st));
  assert_int_equal(a->l.n, b->l.n);
  assert_int_equal(a->l.digest, b->l.digest);
  for (size_t i = 0; i < a->l.n && i < 64; i++) {
    assert_string_equal(a->l.e[i].name, b->l.e[i].name);
    assert_int_equal(a->l.e[i].info.type, b->l.e[i].info.type);
    assert_int_equal(a->l.e[i].info.remaining_s, b->l.e[i].info.remaining_s);
    assert_int_equal(a->l.e[i].info.bytes, b->l.e[i].info.bytes);
  }
}

/* Puts with the n-th allocation failing, n = 1, 2, ... until it succeeds;
 * every failure must be DT_ENOMEM and leave the cache as it was. Returns
 * how many failures came from inside uthash (n > 1). */
static int put_failing(fx_t *fx, const char *name, const dt_answer_t *a,
                       bool full_check) {
  int table_failures = 0;
  for (uint64_t n = 1;; n++) {
    snapshot_t before, after;
    if (full_check) {
      snap(fx, &before);
    } else {
      before.st = stats(fx);
    }
    dt__alloc_fail_at(n);
    dt_status_t st = dt__cache_put(fx->c, name, DT_TYPE_A, IN, a, NULL);
    dt__alloc_fail_at(0);
    if (st == DT_OK) {
      return table_failures;
    }
    assert_int_equal(st, DT_ENOMEM);
    table_failures += n > 1;
    if (full_check) {
      snap(fx, &after);
      assert_same(&before, &after);
    } else {
      after.st = stats(fx);
      assert_memory_equal(&before.st, &after.st, sizeof(before.st));
    }
    assert_true(n < 10);
  }
}

static void test_put_alloc_failures(void **state) {
  (void)state;
  fx_t fx;
  /* A small cache: failures at capacity evict nothing, failures on a
   * replace keep the old entry. */
  fx_init(&fx);
  fx.cfg.max_entries = 3;
  fx_open(&fx);
  dt_answer_t *a1 = a_record("x.test.", 100, "192.0.2.1");
  dt_answer_t *a2 = a_record("x.test.", 100, "192.0.2.2");
  const char *names[] = {"a.test", "b.test", "c.test",
                         "d.test", "a.test", "e.test"};
  for (size_t i = 0; i < 6; i++) {
    put_failing(&fx, names[i], i == 4 ? a2 : a1, true);
  }
  got_t g;
  assert_int_equal(look(&fx, "a.test", DT_TYPE_A, false, &g), DT_CACHE_HIT);
  assert_string_equal(g.answer->answer[0].data, "192.0.2.2");
  snapshot_t before, after;
  snap(&fx, &before);
  dt__alloc_fail_at(1);
  assert_int_equal(dt__cache_put(fx.c, "a.test", DT_TYPE_A, IN, a1, NULL),
                   DT_ENOMEM);
  dt__alloc_fail_at(0);
  snap(&fx, &after);
  assert_same(&before, &after);
  assert_int_equal(look(&fx, "a.test", DT_TYPE_A, false, &g), DT_CACHE_HIT);
  assert_string_equal(g.answer->answer[0].data, "192.0.2.2");
  fx_close(&fx);

  /* A big cache filled under failures: every shard's table is made and
   * grown with allocations failing. */
  fx_init(&fx);
  fx_open(&fx);
  int table_failures = 0;
  char name[32];
  for (int i = 0; i < 3000; i++) {
    snprintf(name, sizeof(name), "n%d.test", i);
    table_failures += put_failing(&fx, name, a1, i % 500 == 0);
  }
  /* More than the two allocations of each of the 32 shards' first table:
   * some bucket arrays failed to grow. */
  assert_true(table_failures > 64);
  assert_int_equal(stats(&fx).entries, 3000);
  for (int i = 0; i < 3000; i += 7) {
    snprintf(name, sizeof(name), "n%d.test", i);
    assert_int_equal(remaining(&fx, name, DT_TYPE_A), 100);
  }
  fx_close(&fx);
  dt_answer_free(a1);
  dt_answer_free(a2);
}

/* ---- threads
 * ------------------------------------------------------------------------ */

#define NTHREADS 8
#define NSHARED 16
#define NOWN 64
#define ROUNDS 20000

typedef struct {
  dt_cache_t *c;
  int id;
  dt_answer_t **shared; /* NSHARED answers for "sN.test", data 10.0.0.N */
  dt_answer_t *own[NOWN];
  char own_names[NOWN][32];
  uint64_t errors, hits;
} worker_t;

static uint64_t shared_clock;

/* Time moves a millisecond each time it is read, so entries expire,
 * go stale and get reclaimed while the threads run. */
static uint64_t ticking_now(void *ctx) {
  (void)ctx;
  return __atomic_add_fetch(&shared_clock, 1000, __ATOMIC_RELAXED);
}

typedef struct {
  const char *name;
  worker_t *w;
} check_t;

/* The hit must be the answer stored under that name, whole. */
static void visit_check(const dt_cache_hit_t *hit, void *ctx) {
  check_t *k = ctx;
  const dt_answer_t *a = hit->answer;
  char want[64];
  snprintf(want, sizeof(want), "%s.", k->name);
  if (a->nanswer != 1 || strcmp(a->qname, want) != 0 ||
      strcmp(a->answer[0].owner, want) != 0 || a->answer[0].rdlength != 4) {
    k->w->errors++;
    return;
  }
  char text[16];
  snprintf(text, sizeof(text), "%u.%u.%u.%u", a->answer[0].rdata[0],
           a->answer[0].rdata[1], a->answer[0].rdata[2], a->answer[0].rdata[3]);
  if (strcmp(text, a->answer[0].data) != 0) {
    k->w->errors++;
  }
  k->w->hits++;
}

static void *worker(void *arg) {
  worker_t *w = arg;
  char shared[32];
  for (int i = 0; i < ROUNDS; i++) {
    int r = (i * 7 + w->id * 13) % 100;
    check_t k = {NULL, w};
    const dt_answer_t *a;
    if (i % 2 == 0) {
      int n = (i / 2 + w->id) % NSHARED;
      snprintf(shared, sizeof(shared), "s%d.test", n);
      k.name = shared;
      a = w->shared[n];
    } else {
      int n = (i / 2) % NOWN;
      k.name = w->own_names[n];
      a = w->own[n];
    }
    if (r < 30) {
      if (dt__cache_put(w->c, k.name, DT_TYPE_A, IN, a, NULL) != DT_OK) {
        w->errors++;
      }
    } else if (r == 99 && w->id == 0 && i % 1000 == 1) {
      dt__cache_flush(w->c, i % 2000 == 1 ? NULL : k.name);
    } else if (r == 98) {
      dt_cache_stats_t st;
      dt__cache_get_stats(w->c, &st);
    } else {
      dt__cache_get(w->c, k.name, DT_TYPE_A, IN, r % 2 == 0, visit_check, &k);
    }
  }
  return NULL;
}

static void visit_count(const dt_cache_entry_info_t *e, void *ctx) {
  (void)e;
  (*(size_t *)ctx)++;
}

static void test_threads(void **state) {
  (void)state;
  dt_cache_config_t cfg;
  dt__cache_config_init(&cfg);
  cfg.max_entries = 256 + 64; /* below the names in play: evictions too */
  cfg.serve_stale = true;
  cfg.stale_window_s = 5;
  cfg.prefetch = true;
  cfg.clock.now_us = ticking_now;
  dt_cache_t *c = NULL;
  assert_int_equal(dt__cache_new(&cfg, &c), DT_OK);

  dt_answer_t *shared[NSHARED];
  char name[32], addr[32];
  for (int i = 0; i < NSHARED; i++) {
    snprintf(name, sizeof(name), "s%d.test.", i);
    snprintf(addr, sizeof(addr), "10.0.0.%d", i);
    shared[i] = a_record(name, 10, addr);
  }
  static worker_t w[NTHREADS];
  pthread_t t[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    memset(&w[i], 0, sizeof(w[i]));
    w[i].c = c;
    w[i].id = i;
    w[i].shared = shared;
    for (int j = 0; j < NOWN; j++) {
      snprintf(w[i].own_names[j], sizeof(w[i].own_names[j]), "t%d-%d.test", i,
               j);
      snprintf(name, sizeof(name), "%s.", w[i].own_names[j]);
      snprintf(addr, sizeof(addr), "10.1.%d.%d", i, j);
      w[i].own[j] = a_record(name, 1 + (uint32_t)j % 20, addr);
    }
  }
  for (int i = 0; i < NTHREADS; i++) {
    assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
  }
  /* Listing while they run: one shard lock at a time. */
  for (int i = 0; i < 50; i++) {
    size_t n = 0;
    dt__cache_list(c, visit_count, &n);
    assert_true(n <= cfg.max_entries);
  }
  uint64_t hits = 0;
  for (int i = 0; i < NTHREADS; i++) {
    assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(w[i].errors, 0);
    hits += w[i].hits;
  }
  assert_true(hits > 0);
  dt_cache_stats_t st;
  dt__cache_get_stats(c, &st);
  assert_true(st.entries <= cfg.max_entries);
  assert_int_equal(st.hits + st.stale_served, hits);
  assert_true(st.evicted + st.expired > 0);

  for (int i = 0; i < NTHREADS; i++) {
    for (int j = 0; j < NOWN; j++) {
      dt_answer_free(w[i].own[j]);
    }
  }
  for (int i = 0; i < NSHARED; i++) {
    dt_answer_free(shared[i]);
  }
  dt__cache_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config),
      cmocka_unit_test(test_chain_min_ttl),
      cmocka_unit_test(test_ttl_decrement_and_expiry),
      cmocka_unit_test(test_not_cacheable),
      cmocka_unit_test(test_negative),
      cmocka_unit_test(test_clamps),
      cmocka_unit_test(test_keys),
      cmocka_unit_test(test_key_forms),
      cmocka_unit_test(test_stored_answer_shape),
      cmocka_unit_test(test_lru_order),
      cmocka_unit_test(test_byte_limit),
      cmocka_unit_test(test_replace),
      cmocka_unit_test(test_flush),
      cmocka_unit_test(test_list),
      cmocka_unit_test(test_stats),
      cmocka_unit_test(test_serve_stale),
      cmocka_unit_test(test_prefetch),
      cmocka_unit_test(test_hit_allocates_nothing),
      cmocka_unit_test(test_put_alloc_failures),
      cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
