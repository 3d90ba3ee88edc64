#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dialtone.h"

/* Every code has its own text and name, and names follow the enum. */
static void test_texts_and_names_are_distinct(void **state) {
  (void)state;
  for (int a = 0; a < DT__STATUS_COUNT; a++) {
    const char *na = dt_status_name((dt_status_t)a);
    assert_non_null(dt_strerror((dt_status_t)a));
    assert_true(strncmp(na, "DT_", 3) == 0);
    for (int b = a + 1; b < DT__STATUS_COUNT; b++) {
      assert_string_not_equal(na, dt_status_name((dt_status_t)b));
      assert_string_not_equal(dt_strerror((dt_status_t)a),
                              dt_strerror((dt_status_t)b));
    }
  }
  assert_int_equal(DT_OK, 0);
  assert_string_equal(dt_status_name(DT_ENXDOMAIN), "DT_ENXDOMAIN");
  assert_string_equal(dt_status_name(DT_ETIMEDOUT), "DT_ETIMEDOUT");
  assert_string_equal(dt_strerror(DT_OK), "success");
}

static void test_unknown_codes(void **state) {
  (void)state;
  assert_string_equal(dt_status_name((dt_status_t)-1), "DT_UNKNOWN");
  assert_string_equal(dt_status_name(DT__STATUS_COUNT), "DT_UNKNOWN");
  assert_string_equal(dt_strerror((dt_status_t)9999), "unknown status");
}

static void test_errno_mapping(void **state) {
  (void)state;
  static const struct {
    int err;
    dt_status_t want;
  } cases[] = {
      {0, DT_OK},
      {EINVAL, DT_EINVAL},
      {ENOMEM, DT_ENOMEM},
      {ENOBUFS, DT_ENOMEM},
      {ETIMEDOUT, DT_ETIMEDOUT},
      {ECONNREFUSED, DT_ECONNREFUSED},
      {ENETUNREACH, DT_ENETUNREACH},
      {EHOSTUNREACH, DT_EHOSTUNREACH},
      {ECONNRESET, DT_ECONNRESET},
      {EPIPE, DT_ECONNRESET},
      {ECANCELED, DT_ECANCELED},
      {ENOENT, DT_ENOENT},
      {EACCES, DT_EACCES},
      {EMFILE, DT_EMFILE},
      {ENFILE, DT_EMFILE},
      {EADDRINUSE, DT_EADDRINUSE},
      {EAFNOSUPPORT, DT_EAFNOSUPPORT},
      {ENAMETOOLONG, DT_ENAMETOOLONG},
      {EIO, DT_ESYS},
      {EROFS, DT_ESYS},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    assert_int_equal(dt_status_from_errno(cases[i].err), cases[i].want);
  }
}

static void test_version(void **state) {
  (void)state;
  assert_string_equal(dt_version(), PACKAGE_VERSION);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_texts_and_names_are_distinct),
      cmocka_unit_test(test_unknown_codes),
      cmocka_unit_test(test_errno_mapping),
      cmocka_unit_test(test_version),
  };
  return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
