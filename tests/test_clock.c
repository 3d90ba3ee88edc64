#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "clock.h"

static uint64_t fake_now;

static uint64_t fake_clock(void *ctx) {
  (void)ctx;
  return fake_now;
}

static const dt_clock_t fake = {fake_clock, NULL};

static void test_monotonic_advances(void **state) {
  (void)state;
  uint64_t a = dt__now_us();
  struct timespec ts = {0, 2000000}; /* 2 ms */
  nanosleep(&ts, NULL);
  uint64_t b = dt__now_us();
  assert_true(b >= a + 2000);
  assert_true(dt__now_ms() >= a / 1000);
  assert_true(dt__clock_us(NULL) >= b);
}

static void test_deadline_with_fake_clock(void **state) {
  (void)state;
  fake_now = 1000000;
  dt_deadline_t d = dt__deadline_in(&fake, 250);
  assert_int_equal(d.at_us, 1250000);
  assert_false(dt__deadline_passed(&fake, d));
  assert_int_equal(dt__deadline_left_us(&fake, d), 250000);
  assert_int_equal(dt__deadline_poll_ms(&fake, d), 250);
  fake_now += 249001; /* 999 us left: poll must not round down to 0 */
  assert_int_equal(dt__deadline_poll_ms(&fake, d), 1);
  fake_now += 999;
  assert_true(dt__deadline_passed(&fake, d));
  assert_int_equal(dt__deadline_left_us(&fake, d), 0);
  assert_int_equal(dt__deadline_poll_ms(&fake, d), 0);
  fake_now += 1000000;
  assert_int_equal(dt__deadline_left_us(&fake, d), 0);
}

static void test_deadline_never(void **state) {
  (void)state;
  fake_now = 5;
  dt_deadline_t never = dt__deadline_in(&fake, -1);
  assert_int_equal(never.at_us, DT_DEADLINE_NEVER);
  assert_false(dt__deadline_passed(&fake, never));
  assert_int_equal(dt__deadline_poll_ms(&fake, never), -1);
  assert_int_equal(dt__deadline_left_us(&fake, never), UINT64_MAX);
  /* A huge timeout saturates to never instead of wrapping. */
  dt_deadline_t huge = dt__deadline_in(&fake, INT64_MAX);
  assert_int_equal(huge.at_us, DT_DEADLINE_NEVER);
  dt_deadline_t soon = dt__deadline_in(&fake, 10);
  assert_int_equal(dt__deadline_min(never, soon).at_us, soon.at_us);
  assert_int_equal(dt__deadline_min(soon, never).at_us, soon.at_us);
  /* A timeout too long for poll's int is clamped, not wrapped. */
  dt_deadline_t far = dt__deadline_in(&fake, (int64_t)1 << 40);
  assert_int_equal(dt__deadline_poll_ms(&fake, far), 2147483647);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_monotonic_advances),
      cmocka_unit_test(test_deadline_with_fake_clock),
      cmocka_unit_test(test_deadline_never),
  };
  return cmocka_run_group_tests_name("clock", tests, NULL, NULL);
}
