/* CLOCK_MONOTONIC_COARSE is Linux's. */
#define _GNU_SOURCE
#include "config.h"

#include <limits.h>
#include <time.h>

#include "clock.h"

uint64_t dt__now_us(void) {
  struct timespec ts;
  /* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer. */
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t dt__now_coarse_us(void *ctx) {
  (void)ctx;
#ifdef CLOCK_MONOTONIC_COARSE
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0) {
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
  }
#endif
  return dt__now_us();
}

uint64_t dt__now_ms(void) {
  return dt__now_us() / 1000u;
}

uint64_t dt__clock_us(const dt_clock_t *c) {
  if (c == NULL || c->now_us == NULL) {
    return dt__now_us();
  }
  return c->now_us(c->ctx);
}

dt_deadline_t dt__deadline_in(const dt_clock_t *c, int64_t timeout_ms) {
  dt_deadline_t d = {DT_DEADLINE_NEVER};
  if (timeout_ms < 0) {
    return d;
  }
  uint64_t now = dt__clock_us(c);
  uint64_t add = (uint64_t)timeout_ms * 1000u;
  if ((uint64_t)timeout_ms > UINT64_MAX / 1000u ||
      add >= DT_DEADLINE_NEVER - now) {
    return d;
  }
  d.at_us = now + add;
  return d;
}

dt_deadline_t dt__deadline_min(dt_deadline_t a, dt_deadline_t b) {
  return a.at_us <= b.at_us ? a : b;
}

bool dt__deadline_passed(const dt_clock_t *c, dt_deadline_t d) {
  if (d.at_us == DT_DEADLINE_NEVER) {
    return false;
  }
  return dt__clock_us(c) >= d.at_us;
}

uint64_t dt__deadline_left_us(const dt_clock_t *c, dt_deadline_t d) {
  if (d.at_us == DT_DEADLINE_NEVER) {
    return UINT64_MAX;
  }
  uint64_t now = dt__clock_us(c);
  return now >= d.at_us ? 0 : d.at_us - now;
}

int dt__deadline_poll_ms(const dt_clock_t *c, dt_deadline_t d) {
  if (d.at_us == DT_DEADLINE_NEVER) {
    return -1;
  }
  uint64_t left = dt__deadline_left_us(c, d);
  uint64_t ms = (left + 999u) / 1000u;
  return ms > INT_MAX ? INT_MAX : (int)ms;
}
