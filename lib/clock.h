/* Monotonic time and deadlines. Wall-clock time is never used for timing or
 * TTLs: it jumps. A clock source can be replaced per object (a fake clock in
 * tests); NULL means the system's CLOCK_MONOTONIC. */
#ifndef DT_CLOCK_H
#define DT_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "dialtone/common.h"

/* Microseconds since an arbitrary fixed point, from CLOCK_MONOTONIC. */
uint64_t dt__now_us(void);
uint64_t dt__now_ms(void);
/* The same clock read at the kernel tick's resolution (a few ms), at a
 * fraction of the cost: enough for TTLs counted in seconds. Has the
 * signature of a dt_clock_t source; ctx is unused. */
uint64_t dt__now_coarse_us(void *ctx);

/* A clock source: the seam through which tests drive time. */
typedef struct dt_clock {
  uint64_t (*now_us)(void *ctx);
  void *ctx;
} dt_clock_t;

/* Reads a clock source; NULL (or a NULL function) is the system clock. */
uint64_t dt__clock_us(const dt_clock_t *c);

/* A point in monotonic time; DT_DEADLINE_NEVER waits forever. */
typedef struct {
  uint64_t at_us;
} dt_deadline_t;

#define DT_DEADLINE_NEVER UINT64_MAX

/* now + timeout_ms; a negative timeout means no deadline. */
dt_deadline_t dt__deadline_in(const dt_clock_t *c, int64_t timeout_ms);
/* The earlier of two deadlines. */
dt_deadline_t dt__deadline_min(dt_deadline_t a, dt_deadline_t b);
bool dt__deadline_passed(const dt_clock_t *c, dt_deadline_t d);
/* Microseconds left, 0 once passed, UINT64_MAX for never. */
uint64_t dt__deadline_left_us(const dt_clock_t *c, dt_deadline_t d);
/* Milliseconds left for poll(): rounded up so a poll never wakes just before
 * the deadline and spins; -1 for never; clamped to INT_MAX. */
int dt__deadline_poll_ms(const dt_clock_t *c, dt_deadline_t d);

#endif
