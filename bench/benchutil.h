/* Helpers shared by the benchmark programs of bench/: the clock, sorting
 * and percentiles, and the check that makes getaddrinfo safe to time. */
#ifndef DT_BENCHUTIL_H
#define DT_BENCHUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic time in nanoseconds. */
int64_t bench_now_ns(void);

/* qsort comparison of int64_t. */
int bench_cmp_i64(const void *a, const void *b);

/* Nearest-rank percentile p (0-100) of a sorted array of n > 0 values. */
int64_t bench_pct(const int64_t *v, size_t n, double p);

/* getaddrinfo asks the servers of /etc/resolv.conf on port 53. Timing it
 * means something, and sends nothing anywhere else, only when the first of
 * them is server ("ADDR:PORT", "[V6ADDR]:PORT"): bench/run-bench.sh
 * arranges that in a private mount namespace. Returns NULL when it is so,
 * else a static "SKIP glibc: ..." line saying why not. */
const char *bench_glibc_unusable(const char *server);

#endif
