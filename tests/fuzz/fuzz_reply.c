/* libFuzzer harness: bytes as a DNS reply, through everything the resolver
 * does with one: matching against a query, the header walk, parsing, the
 * cache, and formatting and copying the answer. */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "dialtone.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fixed clock: TTL arithmetic must not depend on when the input ran. */
static uint64_t fixed_clock(void *ctx) {
  (void)ctx;
  return 1000000000u;
}

static void visit(const dt_cache_hit_t *hit, void *ctx) {
  /* The visitor only copies, as the cache's contract says. */
  size_t *bytes = ctx;
  *bytes = dt__answer_size(hit->answer);
}

static void visit_entry(const dt_cache_entry_info_t *e, void *ctx) {
  size_t *n = ctx;
  *n += strlen(e->name) + e->bytes;
}

/* Every record formats into a buffer large enough, and into a tiny one
 * without writing past it. */
static void format_all(const dt_rr_t *rrs, size_t n) {
  static char big[1 << 17];
  char small[8];
  for (size_t i = 0; i < n; i++) {
    if (dt_rr_tostr(&rrs[i], big, sizeof(big)) != DT_OK) {
      abort(); /* RDATA text is bounded well below 128 KiB */
    }
    (void)dt_rr_tostr(&rrs[i], small, sizeof(small));
  }
}

static void exercise_answer(dt_answer_t *a) {
  format_all(a->answer, a->nanswer);
  format_all(a->authority, a->nauthority);
  (void)dt_answer_status(a);

  dt_answer_t *copy = NULL;
  if (dt__answer_clone(a, &copy) == DT_OK) {
    if (dt__answer_size(copy) != dt__answer_size(a)) {
      abort();
    }
    dt__answer_age(copy, 7);
    format_all(copy->answer, copy->nanswer);
    dt_answer_free(copy);
  }
  size_t need = dt__answer_size(a);
  /* Exactly the size: a one-byte overrun shows under ASan. */
  void *buf = malloc(need);
  dt_answer_t *in = NULL;
  if (buf != NULL && dt__answer_copy_into(a, buf, need, &in) != DT_OK) {
    abort();
  }
  if (buf != NULL &&
      dt__answer_copy_into(a, buf, need - 1, &in) != DT_ETOOBIG) {
    abort();
  }
  free(buf);

  dt_cache_config_t cfg;
  dt__cache_config_init(&cfg);
  cfg.max_entries = 2; /* the second put under another key evicts */
  cfg.clock.now_us = fixed_clock;
  dt_cache_t *c = NULL;
  if (dt__cache_new(&cfg, &c) != DT_OK) {
    return;
  }
  const char *name = a->qname != NULL ? a->qname : ".";
  (void)dt__cache_put(c, name, a->qtype, a->qclass, a, NULL);
  (void)dt__cache_put(c, name, a->qtype, a->qclass, a, NULL); /* replace */
  (void)dt__cache_put(c, "other.example", DT_TYPE_A, 1, a, NULL);
  (void)dt__cache_put(c, "third.example", DT_TYPE_A, 1, a, NULL);
  size_t bytes = 0;
  (void)dt__cache_get(c, name, a->qtype, a->qclass, true, visit, &bytes);
  size_t listed = 0;
  dt__cache_list(c, visit_entry, &listed);
  dt__cache_flush(c, name);
  dt__cache_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* The question a stub would have sent; the reply's ID is copied in so
   * the fuzzer reaches the question check instead of stopping at IDs. */
  uint8_t q[DT_WIRE_QUERY_MAX];
  size_t qlen = 0;
  uint16_t id;
  if (dt__wire_build_query("www.dialtone.test", DT_TYPE_A, true, q, sizeof(q),
                           &qlen, &id) != DT_OK) {
    abort();
  }
  if (size >= 2) {
    memcpy(q, data, 2);
  }
  (void)dt__wire_match(data, size, q, qlen);

  dt_reply_head_t head;
  (void)dt__wire_head(data, size, &head);

  dt_answer_t *a = NULL;
  dt_status_t st = dt__wire_parse(data, size, &a);
  if (st == DT_OK) {
    exercise_answer(a);
    dt_answer_free(a);
  }
  return 0;
}
