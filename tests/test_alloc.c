#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "dialtone.h"
#include "dt_uthash.h"

static void test_fail_nth(void **state) {
  (void)state;
  dt__alloc_fail_at(3);
  void *a = dt__malloc(8);
  void *b = dt__calloc(2, 8);
  void *c = dt__malloc(8);
  void *d = dt__malloc(8);
  assert_non_null(a);
  assert_non_null(b);
  assert_null(c);
  assert_non_null(d);
  assert_int_equal(dt__alloc_count(), 4);
  dt__free(a);
  dt__free(b);
  dt__free(d);
  dt__alloc_reset_counts();
  assert_non_null(a = dt__malloc(1));
  dt__free(a);
}

static void test_strdup_and_overflow(void **state) {
  (void)state;
  dt__alloc_reset_counts();
  char *s = dt__strdup("dialtone");
  assert_string_equal(s, "dialtone");
  char *t = dt__strndup("dialtone", 4);
  assert_string_equal(t, "dial");
  dt__free(s);
  dt__free(t);
  assert_int_equal(dt__free_count(), 2);
  assert_null(dt__calloc(SIZE_MAX / 2, 4));
  dt__alloc_fail_at(1);
  assert_null(dt__strdup("x"));
  dt__alloc_fail_at(1);
  assert_null(dt__realloc(NULL, 4));
  dt__alloc_reset_counts();
}

static size_t user_allocs;

static void *counting_malloc(size_t n) {
  user_allocs++;
  return malloc(n);
}

static void test_user_allocator(void **state) {
  (void)state;
  dt_allocator_t bad = {counting_malloc, NULL, free};
  assert_int_equal(dt_set_allocator(&bad), DT_EINVAL);
  dt_allocator_t good = {counting_malloc, realloc, free};
  assert_int_equal(dt_set_allocator(&good), DT_OK);
  void *p = dt__malloc(16);
  assert_int_equal(user_allocs, 1);
  dt__free(p);
  assert_int_equal(dt_set_allocator(NULL), DT_OK);
  p = dt__malloc(16);
  assert_int_equal(user_allocs, 1);
  dt__free(p);
}

struct item {
  int key;
  UT_hash_handle hh;
};

/* uthash runs out of memory without exiting, and DT_HASH_ADDED tells. */
static void test_uthash_nonfatal_oom(void **state) {
  (void)state;
  struct item *table = NULL;
  struct item one = {.key = 1};
  struct item two = {.key = 2};
  HASH_ADD_INT(table, key, &one);
  assert_true(DT_HASH_ADDED(&one));
  /* Adding to a populated table allocates nothing; the first add to an
   * empty one allocates the table, so that is where failure is injected. */
  struct item *other = NULL;
  dt__alloc_fail_at(1);
  HASH_ADD_INT(other, key, &two);
  assert_false(DT_HASH_ADDED(&two));
  assert_null(other);
  dt__alloc_reset_counts();
  HASH_ADD_INT(other, key, &two);
  assert_true(DT_HASH_ADDED(&two));
  HASH_CLEAR(hh, table);
  HASH_CLEAR(hh, other);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fail_nth),
      cmocka_unit_test(test_strdup_and_overflow),
      cmocka_unit_test(test_user_allocator),
      cmocka_unit_test(test_uthash_nonfatal_oom),
  };
  return cmocka_run_group_tests_name("alloc", tests, NULL, NULL);
}
