#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "clock.h"
#include "conn_int.h"
#include "dialtone.h"

/* Long enough never to expire on a loaded 2-core machine; a bug shows as a
 * failure instead of a hang. */
#define LONG_MS 30000
#define KIB 1024u
#define MIB (1024u * 1024u)

/* ---- fixtures ----------------------------------------------------------- */

static void pair_unix(int sv[2]) {
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

/* sv[0] is the connecting side, sv[1] the accepted one. */
static void pair_tcp(int sv[2]) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(l >= 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(listen(l, 1), 0);
  socklen_t alen = sizeof(a);
  assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(c >= 0);
  assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
  int s = accept(l, NULL, NULL);
  assert_true(s >= 0);
  close(l);
  sv[0] = c;
  sv[1] = s;
}

typedef void (*pair_fn)(int sv[2]);

static dt_conn_t *conn_of(int fd, const dt_conn_opts_t *o) {
  dt_conn_t *c = NULL;
  assert_int_equal(dt_conn_new(fd, o, &c), DT_OK);
  assert_non_null(c);
  return c;
}

static bool fd_open(int fd) {
  return fcntl(fd, F_GETFD) != -1;
}

static void set_nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  assert_true(fl >= 0);
  assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* Payload bytes are a function of the frame's tag, so a reader can check
 * every byte without being told what was sent. */
static void fill_payload(uint8_t *p, size_t n, uint64_t tag) {
  uint64_t x = tag * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
  for (size_t i = 0; i < n; i++) {
    if (i % 8 == 0) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
    }
    p[i] = (uint8_t)(x >> (8 * (i % 8)));
  }
}

static bool payload_ok(const uint8_t *p, size_t n, uint64_t tag,
                       uint8_t *scratch) {
  fill_payload(scratch, n, tag);
  return n == 0 || memcmp(p, scratch, n) == 0;
}

static uint64_t rng_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *s = x;
  return x;
}

/* Appends a frame with a hdr-byte header to a raw byte string. */
static size_t raw_frame(uint8_t *out, unsigned hdr, uint32_t len,
                        uint64_t tag) {
  if (hdr == 4) {
    out[0] = (uint8_t)(len >> 24);
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
  } else {
    out[0] = (uint8_t)(len >> 8);
    out[1] = (uint8_t)len;
  }
  fill_payload(out + hdr, len, tag);
  return hdr + len;
}

static void write_all(int fd, const void *buf, size_t len) {
  const uint8_t *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    assert_true(n > 0);
    p += n;
    len -= (size_t)n;
  }
}

/* ---- peer threads (no cmocka asserts off the main thread) --------------- */

/* Writes bytes raw, chunk bytes per write(), then shuts down writing. */
typedef struct {
  int fd;
  const uint8_t *data;
  size_t len;
  size_t chunk;
  bool failed;
} raw_writer_t;

static void *raw_writer(void *arg) {
  raw_writer_t *w = arg;
  size_t off = 0;
  while (off < w->len) {
    size_t n = w->len - off < w->chunk ? w->len - off : w->chunk;
    ssize_t r = write(w->fd, w->data + off, n);
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r <= 0) {
      w->failed = true;
      break;
    }
    off += (size_t)r;
    if (w->chunk == 1) {
      sched_yield(); /* lets the reader see a byte at a time */
    }
  }
  shutdown(w->fd, SHUT_WR);
  return NULL;
}

/* Reads raw, chunk bytes per read(), until end of stream. */
typedef struct {
  int fd;
  size_t chunk;
  uint8_t *data; /* malloc'd */
  size_t len;
  bool failed;
} raw_reader_t;

static void *raw_reader(void *arg) {
  raw_reader_t *r = arg;
  size_t cap = 1 * MIB;
  r->data = malloc(cap);
  r->len = 0;
  for (;;) {
    if (r->len + r->chunk > cap) {
      cap *= 2;
      uint8_t *p = realloc(r->data, cap);
      if (p == NULL) {
        r->failed = true;
        return NULL;
      }
      r->data = p;
    }
    ssize_t n = read(r->fd, r->data + r->len, r->chunk);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      r->failed = true;
      return NULL;
    }
    if (n == 0) {
      return NULL;
    }
    r->len += (size_t)n;
  }
}

/* Checks a raw stream of 4-byte-header frames tagged 0, 1, ...; returns
 * the number of frames, or -1 when the stream is malformed. */
static long check_stream(const uint8_t *d, size_t len, const size_t *sizes) {
  uint8_t *scratch = malloc(17 * MIB);
  long count = 0;
  size_t off = 0;
  while (off < len) {
    if (len - off < 4) {
      count = -1;
      break;
    }
    uint32_t n = (uint32_t)d[off] << 24 | (uint32_t)d[off + 1] << 16 |
                 (uint32_t)d[off + 2] << 8 | d[off + 3];
    if (len - off - 4 < n || (sizes != NULL && sizes[count] != n) ||
        !payload_ok(d + off + 4, n, (uint64_t)count, scratch)) {
      count = -1;
      break;
    }
    off += 4 + n;
    count++;
  }
  free(scratch);
  return count;
}

/* Writes frames through a dialtone connection: sizes[i] bytes tagged i,
 * in batches of `batch` with dt_frame_writev when batch > 1; then flushes
 * and shuts down writing. */
typedef struct {
  dt_conn_t *conn;
  const size_t *sizes;
  size_t n;
  size_t batch;
  int timeout_ms;
  dt_status_t st;
} frame_writer_t;

static void *frame_writer(void *arg) {
  frame_writer_t *w = arg;
  size_t maxlen = 0;
  for (size_t i = 0; i < w->n; i++) {
    maxlen = w->sizes[i] > maxlen ? w->sizes[i] : maxlen;
  }
  size_t batch = w->batch > 1 ? w->batch : 1;
  uint8_t **bufs = calloc(batch, sizeof(*bufs));
  dt_iovec_t *iov = calloc(batch, sizeof(*iov));
  for (size_t b = 0; b < batch; b++) {
    bufs[b] = malloc(maxlen + 1);
  }
  w->st = DT_OK;
  for (size_t i = 0; i < w->n && w->st == DT_OK;) {
    if (w->batch <= 1) {
      fill_payload(bufs[0], w->sizes[i], i);
      w->st = dt_frame_write(w->conn, bufs[0], w->sizes[i], w->timeout_ms);
      i++;
      continue;
    }
    size_t k = 0;
    for (; k < batch && i + k < w->n; k++) {
      fill_payload(bufs[k], w->sizes[i + k], i + k);
      iov[k].base = bufs[k];
      iov[k].len = w->sizes[i + k];
    }
    w->st = dt_frame_writev(w->conn, iov, k, w->timeout_ms);
    i += k;
  }
  if (w->st == DT_OK) {
    w->st = dt_conn_shutdown_write(w->conn, w->timeout_ms);
  }
  for (size_t b = 0; b < batch; b++) {
    free(bufs[b]);
  }
  free(bufs);
  free(iov);
  return NULL;
}

/* Reads frames tagged 0..n-1 of the given sizes, then expects DT_EOF.
 * mode 0: dt_frame_read views; 1: dt_frame_peek + dt_frame_read_into;
 * 2: alternate by a random draw. */
static void read_and_check(dt_conn_t *c, const size_t *sizes, size_t n,
                           int mode, int timeout_ms) {
  uint8_t *scratch = malloc(17 * MIB);
  uint8_t *into = malloc(17 * MIB);
  assert_non_null(scratch);
  assert_non_null(into);
  uint64_t rng = 42;
  for (size_t i = 0; i < n; i++) {
    bool use_into = mode == 1 || (mode == 2 && rng_next(&rng) % 4 == 0);
    const uint8_t *p = NULL;
    size_t len = SIZE_MAX;
    if (use_into) {
      size_t announced = 0;
      assert_int_equal(dt_frame_peek(c, timeout_ms, &announced), DT_OK);
      assert_int_equal(announced, sizes[i]);
      assert_int_equal(dt_frame_read_into(c, into, announced, &len, timeout_ms),
                       DT_OK);
      p = into;
    } else {
      assert_int_equal(dt_frame_read(c, timeout_ms, &p, &len), DT_OK);
    }
    assert_int_equal(len, sizes[i]);
    if (!payload_ok(p, len, i, scratch)) {
      fail_msg("frame %zu (%zu bytes) differs", i, len);
    }
  }
  const uint8_t *p = NULL;
  size_t len = 0;
  assert_int_equal(dt_frame_read(c, timeout_ms, &p, &len), DT_EOF);
  assert_int_equal(dt_frame_read(c, timeout_ms, &p, &len), DT_EOF);
  assert_false(dt_conn_is_broken(c));
  free(scratch);
  free(into);
}

/* One dialtone writer thread, one dialtone reader (this thread). */
static void round_trip(pair_fn pair, const dt_conn_opts_t *wo,
                       const dt_conn_opts_t *ro, const size_t *sizes, size_t n,
                       size_t batch, int mode, bool nonblocking) {
  int sv[2];
  pair(sv);
  if (nonblocking) {
    set_nonblocking(sv[0]);
    set_nonblocking(sv[1]);
  }
  dt_conn_t *wc = conn_of(sv[0], wo);
  dt_conn_t *rc = conn_of(sv[1], ro);
  frame_writer_t w = {wc, sizes, n, batch, LONG_MS, DT_OK};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, frame_writer, &w), 0);
  read_and_check(rc, sizes, n, mode, LONG_MS);
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(w.st, DT_OK);
  assert_int_equal(dt_conn_pending_output(wc), 0);
  assert_int_equal(dt_conn_pending_input(rc), 0);
  dt_conn_free(wc);
  dt_conn_free(rc);
}

/* ---- options and construction ------------------------------------------- */

static void test_opts_defaults(void **state) {
  (void)state;
  dt_conn_opts_t o;
  memset(&o, 0xab, sizeof(o));
  dt_conn_opts_init(&o);
  assert_int_equal(o.read_buffer_size, 64 * KIB);
  assert_int_equal(o.write_buffer_size, 64 * KIB);
  assert_int_equal(o.max_frame_size, 16 * MIB);
  assert_int_equal(o.frame_header_size, 4);
  assert_null(o.clock_us);
  assert_null(o.clock_ctx);
  dt_conn_opts_init(NULL);
}

static void test_new_rejects(void **state) {
  (void)state;
  dt_conn_t *c = NULL;
  int sv[2];
  pair_unix(sv);
  assert_int_equal(dt_conn_new(-1, NULL, &c), DT_EINVAL);
  assert_int_equal(dt_conn_new(sv[0], NULL, NULL), DT_EINVAL);
  dt_conn_opts_t o;
  dt_conn_opts_init(&o);
  o.frame_header_size = 3;
  assert_int_equal(dt_conn_new(sv[0], &o, &c), DT_EINVAL);
  dt_conn_opts_init(&o);
  o.read_buffer_size = DT_CONN_BUFFER_MIN - 1;
  assert_int_equal(dt_conn_new(sv[0], &o, &c), DT_EINVAL);
  dt_conn_opts_init(&o);
  o.write_buffer_size = 0;
  assert_int_equal(dt_conn_new(sv[0], &o, &c), DT_EINVAL);
  assert_null(c);
  /* Failure leaves the descriptor with the caller. */
  assert_true(fd_open(sv[0]));

  int p[2];
  assert_int_equal(pipe(p), 0);
  assert_int_equal(dt_conn_new(p[0], NULL, &c), DT_ENOTSUP);
  assert_true(fd_open(p[0]));
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(u >= 0);
  assert_int_equal(dt_conn_new(u, NULL, &c), DT_ENOTSUP);
  int closed = dup(u);
  close(closed);
  assert_int_equal(dt_conn_new(closed, NULL, &c), DT_EINVAL);
  assert_null(c);
  close(u);
  close(p[0]);
  close(p[1]);

  dt_conn_free(NULL);
  assert_int_equal(dt_conn_fd(NULL), -1);
  assert_true(dt_conn_is_broken(NULL));
  assert_int_equal(dt_frame_read(NULL, 0, NULL, NULL), DT_EINVAL);
  assert_int_equal(dt_frame_write(NULL, NULL, 0, 0), DT_EINVAL);
  assert_int_equal(dt_flush(NULL, 0), DT_EINVAL);

  c = conn_of(sv[0], NULL);
  assert_int_equal(dt_conn_fd(c), sv[0]);
  assert_int_equal(dt_frame_write(c, NULL, 1, 0), DT_EINVAL);
  assert_int_equal(dt_frame_writev(c, NULL, 1, 0), DT_EINVAL);
  dt_iovec_t bad = {NULL, 3};
  assert_int_equal(dt_frame_writev(c, &bad, 1, 0), DT_EINVAL);
  assert_false(dt_conn_is_broken(c));
  dt_conn_free(c);
  assert_false(fd_open(sv[0])); /* owned, so closed */
  close(sv[1]);
}

static void test_new_out_of_memory(void **state) {
  (void)state;
  int sv[2];
  pair_unix(sv);
  for (uint64_t n = 1; n <= 2; n++) {
    dt_conn_t *c = NULL;
    dt__alloc_fail_at(n);
    assert_int_equal(dt_conn_new(sv[0], NULL, &c), DT_ENOMEM);
    dt__alloc_fail_at(0);
    assert_null(c);
    assert_true(fd_open(sv[0]));
  }
  dt__alloc_reset_counts();
  dt_conn_t *c = conn_of(sv[0], NULL);
  assert_int_equal(dt__alloc_count(), 2); /* the object, one buffer block */
  dt_conn_free(c);
  close(sv[1]);
}

/* The pool embeds dt_conn_t as the first member of its own object. */
typedef struct {
  dt_conn_t conn;
  int freed;
} embedder_t;

static void embedder_free(dt_conn_t *c) {
  embedder_t *e = (embedder_t *)c;
  dt__conn_fini(c);
  e->freed++;
}

static void test_embedding(void **state) {
  (void)state;
  int sv[2];
  pair_unix(sv);
  embedder_t e;
  memset(&e, 0, sizeof(e));
  assert_int_equal(dt__conn_init(&e.conn, sv[0], NULL), DT_OK);
  e.conn.free_fn = embedder_free;
  dt_conn_t *c = &e.conn;
  assert_int_equal(dt_frame_write(c, "hi", 2, 0), DT_OK);
  assert_int_equal(dt_flush(c, LONG_MS), DT_OK);
  dt_conn_free(c);
  assert_int_equal(e.freed, 1);
  assert_false(fd_open(sv[0]));
  uint8_t buf[8];
  assert_int_equal(read(sv[1], buf, sizeof(buf)), 6);
  close(sv[1]);
}

/* ---- sizes at the edges ------------------------------------------------- */

static const size_t edge_sizes[] = {
    0,   1, 64 * KIB - 4, 64 * KIB, 64 * KIB + 1, 16 * MIB, 0,
    100, 5, 64 * KIB - 5, 3,        64 * KIB - 3, 2 * MIB,  1};
#define NEDGE (sizeof(edge_sizes) / sizeof(edge_sizes[0]))

static void test_edges_unix(void **state) {
  (void)state;
  round_trip(pair_unix, NULL, NULL, edge_sizes, NEDGE, 1, 0, false);
  round_trip(pair_unix, NULL, NULL, edge_sizes, NEDGE, 1, 1, false);
}

static void test_edges_tcp(void **state) {
  (void)state;
  round_trip(pair_tcp, NULL, NULL, edge_sizes, NEDGE, 1, 0, false);
  round_trip(pair_tcp, NULL, NULL, edge_sizes, NEDGE, 3, 1, true);
}

/* Buffers as small as allowed: every frame but the tiniest takes the
 * paths for frames larger than the buffers. */
static void test_edges_small_buffers(void **state) {
  (void)state;
  dt_conn_opts_t o;
  dt_conn_opts_init(&o);
  o.read_buffer_size = DT_CONN_BUFFER_MIN;
  o.write_buffer_size = DT_CONN_BUFFER_MIN;
  static const size_t sizes[] = {0, 1, 11, 12, 13, 16, 17, 1000, 0, 12, 70000};
  size_t n = sizeof(sizes) / sizeof(sizes[0]);
  round_trip(pair_unix, &o, &o, sizes, n, 1, 0, false);
  round_trip(pair_unix, &o, &o, sizes, n, 4, 2, true);
}

static void test_max_plus_one_write(void **state) {
  (void)state;
  int sv[2];
  pair_unix(sv);
  dt_conn_opts_t o;
  dt_conn_opts_init(&o);
  o.max_frame_size = 1000;
  dt_conn_t *c = conn_of(sv[0], &o);
  static uint8_t big[1001];
  assert_int_equal(dt_frame_write(c, big, 1000, 0), DT_OK);
  dt__alloc_reset_counts();
  assert_int_equal(dt_frame_write(c, big, 1001, 0), DT_EFRAMETOOBIG);
  assert_int_equal(dt__alloc_count(), 0);
  assert_true(dt_conn_is_broken(c));
  assert_int_equal(dt_frame_write(c, big, 1, 0), DT_EBROKEN);
  assert_int_equal(dt_flush(c, 0), DT_EBROKEN);
  dt_conn_free(c);
  close(sv[1]);

  /* A batch is checked whole before anything is written. */
  pair_unix(sv);
  c = conn_of(sv[0], &o);
  dt_iovec_t v[3] = {{big, 10}, {big, 20}, {big, 1001}};
  assert_int_equal(dt_frame_writev(c, v, 3, 0), DT_EFRAMETOOBIG);
  assert_int_equal(dt_conn_pending_output(c), 0);
  assert_true(dt_conn_is_broken(c));
  dt_conn_free(c);
  close(sv[1]);
}

static void test_max_plus_one_read(void **state) {
  (void)state;
  int sv[2];
  pair_unix(sv);
  dt_conn_opts_t o;
  dt_conn_opts_init(&o);
  o.max_frame_size = 100000;
  dt_conn_t *c = conn_of(sv[1], &o);
  static uint8_t raw[2 * 100005];
  size_t len = raw_frame(raw, 4, 100000, 0);
  len += raw_frame(raw + len, 4, 100001, 1);
  raw_writer_t w = {sv[0], raw, len, len, false};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, raw_writer, &w), 0);
  uint8_t scratch[100001];
  const uint8_t *p = NULL;
  size_t n = 0;
  assert_int_equal(dt_frame_read(c, LONG_MS, &p, &n), DT_OK);
  assert_int_equal(n, 100000);
  assert_true(payload_ok(p, n, 0, scratch));
  assert_int_equal(dt_frame_peek(c, LONG_MS, &n), DT_EFRAMETOOBIG);
  assert_true(dt_conn_is_broken(c));
  assert_int_equal(dt_frame_read(c, LONG_MS, &p, &n), DT_EBROKEN);
  assert_int_equal(dt_frame_read_into(c, scratch, sizeof(scratch), &n, 0),
                   DT_EBROKEN);
  dt_conn_free(c); /* closes sv[1]: the writer may see EPIPE */
  assert_int_equal(pthread_join(t, NULL), 0);
  close(sv[0]);
}

/* ---- the buffered fast paths ------------------------------------------- */

/* A frame already buffered is served without a system call, but only when
 * the arguments and the connection allow it: every refusal of the slow
 * paths holds with the frame in the buffer too, and consumes nothing. */
static void test_fast_path_refusals(void **state) {
  (void)state;
  int sv[2];
  pair_unix(sv);
  dt_conn_opts_t o;
  dt_conn_opts_init(&o);
  o.max_frame_size = 100;
  dt_conn_t *c = conn_of(sv[1], &o);
  uint8_t raw[3 * (4 + 101)];
  size_t len = raw_frame(raw, 4, 10, 0);
  len += raw_frame(raw + len, 4, 20, 1);
  len += raw_frame(raw + len, 4, 101, 2); /* over the maximum */
  write_all(sv[0], raw, len);
  size_t n = 0;
  assert_int_equal(dt_frame_peek(c, LONG_MS, &n), DT_OK);
  assert_int_equal(dt_conn_pending_input(c), len); /* all of it buffered */
  const uint8_t *p = NULL;
  assert_int_equal(dt_frame_read(c, 0, NULL, &n), DT_EINVAL);
  assert_int_equal(dt_frame_read(c, 0, &p, NULL), DT_EINVAL);
  assert_int_equal(dt_conn_pending_input(c), len);
  uint8_t scratch[128];
  assert_int_equal(dt_frame_read(c, 0, &p, &n), DT_OK);
  assert_int_equal(n, 10);
  assert_true(payload_ok(p, n, 0, scratch));
  assert_int_equal(dt_frame_read(c, 0, &p, &n), DT_OK);
  assert_int_equal(n, 20);
  assert_true(payload_ok(p, n, 1, scratch));
  /* Whole in the buffer, yet over the maximum. */
  dt__alloc_reset_counts();
  assert_int_equal(dt_frame_read(c, 0, &p, &n), DT_EFRAMETOOBIG);
  assert_int_equal(dt__alloc_count(), 0);
  assert_true(dt_conn_is_broken(c));
  dt_conn_free(c);
  close(sv[0]);

  /* Broken with a whole frame buffered; writes that would fit. */
  pair_unix(sv);
  c = conn_of(sv[1], NULL);
  len = raw_frame(raw, 4, 10, 0);
  write_all(sv[0], raw, len);
  assert_int_equal(dt_frame_peek(c, LONG_MS, &n), DT_OK);
  dt__conn_break(c);
  assert_int_equal(dt_frame_read(c, 0, &p, &n), DT_EBROKEN);
  assert_int_equal(dt_frame_write(c, "x", 1, 0), DT_EBROKEN);
  assert_int_equal(dt_conn_pending_input(c), len);
  assert_int_equal(dt_conn_pending_output(c), 0);
  dt_conn_free(c);
  close(sv[0]);

  /* A frame larger than the read buffer, then small ones that arrived with
   * it: the next read drops the big frame's block and serves them. */
  pair_unix(sv);
  o.max_frame_size = 1000;
  o.read_buffer_size = DT_CONN_BUFFER_MIN;
  c = conn_of(sv[1], &o);
  len = raw_frame(raw, 4, 40, 0);
  len += raw_frame(raw + len, 4, 2, 1);
  len += raw_frame(raw + len, 4, 0, 2);
  write_all(sv[0], raw, len);
  assert_int_equal(dt_frame_read(c, LONG_MS, &p, &n), DT_OK);
  assert_int_equal(n, 40);
  assert_true(payload_ok(p, n, 0, scratch));
  assert_int_equal(dt_conn_pending_input(c), 6 + 4);
  uint64_t frees = dt__free_count();
  assert_int_equal(dt_frame_read(c, 0, &p, &n), DT_OK);
  assert_int_equal(dt__free_count(), frees + 1);
  assert_int_equal(n, 2);
  assert_true(payload_ok(p, n, 1, scratch));
  assert_int_equal(dt_frame_read(c, 0, &p, &n), DT_OK);
  assert_int_equal(n, 0);
  assert_int_equal(dt_frame_read(c, 0, &p, &n), DT_ETIMEDOUT);
  dt_conn_free(c);
  close(sv[0]);
}

/* Small payloads are copied into the write buffer with fixed-size moves
 * that overlap; every length around their boundaries must arrive intact,
 * through dt_frame_write and dt_frame_writev. */
static void test_small_lengths(void **state) {
  (void)state;
  enum { MAXLEN = 150 };
  size_t sizes[2 * (MAXLEN + 1)];
  size_t n = 0;
  for (size_t pass = 0; pass < 2; pass++) {
    for (size_t len = 0; len <= MAXLEN; len++) {
      sizes[n++] = pass == 0 ? len : MAXLEN - len;
    }
  }
  round_trip(pair_unix, NULL, NULL, sizes, n, 1, 0, false);
  round_trip(pair_unix, NULL, NULL, sizes, n, 7, 0, false);
}

/* ---- a header announcing 4 GiB ------------------------------------------ */

static void expect_refused_4gib(int how) {
  int sv[2];
  pair_unix(sv);
  dt_conn_t *c = conn_of(sv[1], NULL);
  static const uint8_t hdr[] = {0xff, 0xff, 0xff, 0xff, 'x', 'y'};
  write_all(sv[0], hdr, sizeof(hdr));
  uint8_t buf[16];
  const uint8_t *p = NULL;
  size_t n = 0;
  dt__alloc_reset_counts();
  dt_status_t st;
  if (how == 0) {
    st = dt_frame_read(c, LONG_MS, &p, &n);
  } else if (how == 1) {
    st = dt_frame_read_into(c, buf, sizeof(buf), &n, LONG_MS);
  } else {
    st = dt_frame_peek(c, LONG_MS, &n);
  }
  assert_int_equal(st, DT_EFRAMETOOBIG);
  assert_int_equal(dt__alloc_count(), 0);
  assert_true(dt_conn_is_broken(c));
  assert_int_equal(dt_frame_read(c, LONG_MS, &p, &n), DT_EBROKEN);
  assert_int_equal(dt__alloc_count(), 0);
  dt_conn_free(c);
  close(sv[0]);
}

static void test_header_4gib(void **state) {
  (void)state;
  expect_refused_4gib(0);
  expect_refused_4gib(1);
  expect_refused_4gib(2);
}

/* ---- one byte at a time ------------------------------------------------- */

/* Deterministic: this thread feeds the peer byte by byte and polls with a
 * zero timeout, which must time out without consuming anything until the
 * frame is complete. */
static void test_bytewise_feed_zero_timeout(void **state) {
  (void)state;
  int sv[2];
  pair_unix(sv);
  dt_conn_t *c = conn_of(sv[1], NULL);
  uint8_t raw[2 * (4 + 300)];
  size_t len = raw_frame(raw, 4, 300, 7);
  len += raw_frame(raw + len, 4, 0, 8);
  uint8_t scratch[300];
  const uint8_t *p = NULL;
  size_t n = 0;
  for (size_t i = 0; i < 4 + 300; i++) {
    assert_int_equal(dt_frame_read(c, 0, &p, &n), DT_ETIMEDOUT);
    assert_false(dt_conn_is_broken(c));
    assert_int_equal(dt_conn_pending_input(c), i);
    write_all(sv[0], raw + i, 1);
  }
  assert_int_equal(dt_frame_read(c, 0, &p, &n), DT_OK);
  assert_int_equal(n, 300);
  assert_true(payload_ok(p, n, 7, scratch));
  for (size_t i = 304; i < len; i++) {
    assert_int_equal(dt_frame_peek(c, 0, &n), DT_ETIMEDOUT);
    write_all(sv[0], raw + i, 1);
  }
  assert_int_equal(dt_frame_read_into(c, scratch, 0, &n, 0), DT_OK);
  assert_int_equal(n, 0);
  assert_int_equal(dt_frame_read(c, 0, &p, &n), DT_ETIMEDOUT);
  close(sv[0]);
  assert_int_equal(dt_frame_read(c, 0, &p, &n), DT_EOF);
  dt_conn_free(c);
}

/* A peer thread that writes one byte per system call, frames larger and
 * smaller than the read buffer. */
static void test_peer_writes_bytewise(void **state) {
  (void)state;
  static const size_t sizes[] = {0, 1, 200, 5000, 0, 40000, 3};
  size_t nf = sizeof(sizes) / sizeof(sizes[0]);
  dt_conn_opts_t o;
  dt_conn_opts_init(&o);
  o.read_buffer_size = 4096;
  uint8_t *raw = malloc(64 * KIB);
  size_t len = 0;
  for (size_t i = 0; i < nf; i++) {
    len += raw_frame(raw + len, 4, (uint32_t)sizes[i], i);
  }
  for (int mode = 0; mode < 2; mode++) {
    int sv[2];
    pair_unix(sv);
    dt_conn_t *c = conn_of(sv[1], &o);
    raw_writer_t w = {sv[0], raw, len, 1, false};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, raw_writer, &w), 0);
    read_and_check(c, sizes, nf, mode, mode == 0 ? -1 : LONG_MS);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_false(w.failed);
    dt_conn_free(c);
    close(sv[0]);
  }
  free(raw);
}

/* A peer thread that reads one byte per system call: dialtone's writes
 * meet a full socket over and over. */
static void test_peer_reads_bytewise(void **state) {
  (void)state;
  static const size_t sizes[] = {0, 1, 70000, 100, 65532, 65536, 300000, 2};
  size_t nf = sizeof(sizes) / sizeof(sizes[0]);
  for (int timeout = 0; timeout < 2; timeout++) {
    int sv[2];
    pair_unix(sv);
    /* A small socket buffer makes the writer wait often. */
    int small = 4096;
    assert_int_equal(
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    dt_conn_t *c = conn_of(sv[0], NULL);
    raw_reader_t r = {sv[1], 1, NULL, 0, false};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, raw_reader, &r), 0);
    frame_writer_t w = {
        c, sizes, nf, timeout ? 1 : 3, timeout ? LONG_MS : -1, DT_OK};
    frame_writer(&w);
    assert_int_equal(w.st, DT_OK);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_false(r.failed);
    assert_int_equal(check_stream(r.data, r.len, sizes), (long)nf);
    free(r.data);
    dt_conn_free(c);
    close(sv[1]);
  }
}

/* ---- end of stream ------------------------------------------------------ */

/* Sends raw bytes, closes the sending side, and reads one frame with each
 * reading call. */
static void expect_eof(const uint8_t *raw, size_t len, dt_status_t want,
                       size_t rbuf) {
  for (int how = 0; how < 3; how++) {
    int sv[2];
    pair_unix(sv);
    dt_conn_opts_t o;
    dt_conn_opts_init(&o);
    o.read_buffer_size = rbuf;
    dt_conn_t *c = conn_of(sv[1], &o);
    if (len > 0) {
      write_all(sv[0], raw, len);
    }
    shutdown(sv[0], SHUT_WR);
    uint8_t buf[256];
    const uint8_t *p = NULL;
    size_t n = 0;
    dt_status_t st;
    if (how == 0) {
      st = dt_frame_read(c, LONG_MS, &p, &n);
    } else if (how == 1) {
      st = dt_frame_read_into(c, buf, sizeof(buf), &n, LONG_MS);
    } else {
      st = dt_frame_peek(c, LONG_MS, &n);
      if (st == DT_OK) {
        st = dt_frame_read(c, LONG_MS, &p, &n);
      }
    }
    assert_int_equal(st, want);
    if (want == DT_EOF) {
      assert_false(dt_conn_is_broken(c));
      assert_int_equal(dt_frame_read(c, LONG_MS, &p, &n), DT_EOF);
    } else {
      assert_true(dt_conn_is_broken(c));
      assert_int_equal(dt_frame_read(c, LONG_MS, &p, &n), DT_EBROKEN);
    }
    dt_conn_free(c);
    close(sv[0]);
  }
}

static void test_eof(void **state) {
  (void)state;
  uint8_t raw[300] = {0};
  expect_eof(raw, 0, DT_EOF, 64 * KIB);
  /* In the middle of the header. */
  raw_frame(raw, 4, 100, 1);
  expect_eof(raw, 1, DT_EUNEXPECTEDEOF, 64 * KIB);
  expect_eof(raw, 3, DT_EUNEXPECTEDEOF, 64 * KIB);
  /* In the middle of the payload, through the buffer and straight into
   * the destination (a 100-byte frame does not fit a 32-byte buffer). */
  expect_eof(raw, 4, DT_EUNEXPECTEDEOF, 64 * KIB);
  expect_eof(raw, 54, DT_EUNEXPECTEDEOF, 64 * KIB);
  expect_eof(raw, 54, DT_EUNEXPECTEDEOF, 32);
  expect_eof(raw, 103, DT_EUNEXPECTEDEOF, 32);
}

static void test_eof_between_frames(void **state) {
  (void)state;
  int sv[2];
  pair_tcp(sv);
  dt_conn_t *c = conn_of(sv[1], NULL);
  uint8_t raw[64];
  size_t len = raw_frame(raw, 4, 10, 0);
  len += raw_frame(raw + len, 4, 0, 1);
  write_all(sv[0], raw, len);
  close(sv[0]);
  const uint8_t *p = NULL;
  size_t n = 0;
  assert_int_equal(dt_frame_read(c, LONG_MS, &p, &n), DT_OK);
  assert_int_equal(n, 10);
  assert_int_equal(dt_frame_read(c, LONG_MS, &p, &n), DT_OK);
  assert_int_equal(n, 0);
  assert_int_equal(dt_frame_read(c, LONG_MS, &p, &n), DT_EOF);
  assert_int_equal(dt_frame_peek(c, LONG_MS, &n), DT_EOF);
  uint8_t b[4];
  assert_int_equal(dt_conn_read(c, b, sizeof(b), &n, LONG_MS), DT_EOF);
  assert_false(dt_conn_is_broken(c));
  dt_conn_free(c);
}

/* ---- deadlines ---------------------------------------------------------- */

static void test_stuck_peer_read(void **state) {
  (void)state;
  int sv[2];
  pair_unix(sv);
  dt_conn_t *c = conn_of(sv[1], NULL);
  uint8_t raw[64];
  size_t len = raw_frame(raw, 4, 20, 3);
  write_all(sv[0], raw, 10); /* half a frame, then silence */
  const uint8_t *p = NULL;
  size_t n = 0;
  uint64_t t0 = dt__now_us();
  assert_int_equal(dt_frame_read(c, 100, &p, &n), DT_ETIMEDOUT);
  uint64_t waited = dt__now_us() - t0;
  assert_true(waited >= 99000);
  assert_true(waited < 20000000);
  assert_false(dt_conn_is_broken(c));
  assert_int_equal(dt_conn_pending_input(c), 10);
  /* Nothing was consumed: the rest completes the same frame. */
  write_all(sv[0], raw + 10, len - 10);
  assert_int_equal(dt_frame_read(c, LONG_MS, &p, &n), DT_OK);
  uint8_t scratch[20];
  assert_int_equal(n, 20);
  assert_true(payload_ok(p, n, 3, scratch));
  dt_conn_free(c);
  close(sv[0]);
}

/* The clock seam: a clock that leaps an hour at every reading makes the
 * deadline pass at the first wait, with no time spent. */
static uint64_t leaping_now;

static uint64_t leaping_clock(void *ctx) {
  (void)ctx;
  leaping_now += 3600ull * 1000000u;
  return leaping_now;
}

static void test_deadline_with_clock_seam(void **state) {
  (void)state;
  int sv[2];
  pair_unix(sv);
  dt_conn_opts_t o;
  dt_conn_opts_init(&o);
  o.clock_us = leaping_clock;
  dt_conn_t *c = conn_of(sv[1], &o);
  const uint8_t *p = NULL;
  size_t n = 0;
  uint64_t before = leaping_now;
  uint64_t t0 = dt__now_us();
  /* A one-minute deadline, passed at once on the fake clock. */
  assert_int_equal(dt_frame_read(c, 60 * 1000, &p, &n), DT_ETIMEDOUT);
  assert_true(leaping_now > before);
  assert_true(dt__now_us() - t0 < 30u * 1000000u);
  assert_false(dt_conn_is_broken(c));
  /* No deadline: the clock is never read. */
  write_all(sv[0], "\0\0\0\1z", 5);
  before = leaping_now;
  assert_int_equal(dt_frame_read(c, -1, &p, &n), DT_OK);
  assert_int_equal(n, 1);
  assert_int_equal(leaping_now, before);
  dt_conn_free(c);
  close(sv[0]);
}

/* A timeout bounds waiting, and only waiting: on the leaping clock every
 * deadline has passed by the time it is first looked at, yet a frame that
 * is buffered, or already in the socket, is read, and a write that the
 * socket takes is sent. None of them reads the clock; only a wait does. */
static void test_ready_needs_no_clock(void **state) {
  (void)state;
  int sv[2];
  pair_unix(sv);
  dt_conn_opts_t o;
  dt_conn_opts_init(&o);
  o.clock_us = leaping_clock;
  dt_conn_t *r = conn_of(sv[1], &o);
  dt_conn_t *w = conn_of(sv[0], &o);
  uint64_t before = leaping_now;
  /* Two frames written and flushed, sitting in the socket. */
  assert_int_equal(dt_frame_write(w, "abc", 3, 60 * 1000), DT_OK);
  assert_int_equal(dt_frame_write(w, "de", 2, 60 * 1000), DT_OK);
  assert_int_equal(dt_flush(w, 60 * 1000), DT_OK);
  const uint8_t *p = NULL;
  size_t n = 0;
  assert_int_equal(dt_frame_read(r, 60 * 1000, &p, &n), DT_OK);
  assert_int_equal(n, 3);
  assert_memory_equal(p, "abc", 3);
  /* Buffered by that read's one receive. */
  assert_int_equal(dt_frame_read(r, 60 * 1000, &p, &n), DT_OK);
  assert_int_equal(n, 2);
  assert_memory_equal(p, "de", 2);
  assert_int_equal(leaping_now, before);
  /* Now there is nothing to read: the wait reads the clock, and times out
   * at once on it. */
  uint64_t t0 = dt__now_us();
  assert_int_equal(dt_frame_read(r, 60 * 1000, &p, &n), DT_ETIMEDOUT);
  assert_true(leaping_now > before);
  assert_true(dt__now_us() - t0 < 30u * 1000000u);
  assert_false(dt_conn_is_broken(r));
  /* With 0, a frame in the socket is still read: no wait was needed. */
  write_all(sv[0], "\0\0\0\1z", 5);
  before = leaping_now;
  assert_int_equal(dt_frame_read(r, 0, &p, &n), DT_OK);
  assert_int_equal(n, 1);
  assert_int_equal(*p, 'z');
  assert_int_equal(leaping_now, before);
  dt_conn_free(r);
  dt_conn_free(w);
}

/* A peer that never reads: small frames time out whole and stay unsent,
 * so every accepted frame arrives once the peer reads again. */
typedef struct {
  int fd;
  long frames;
  bool ok;
} draining_t;

static void *drain_frames(void *arg) {
  draining_t *d = arg;
  raw_reader_t r = {d->fd, 64 * KIB, NULL, 0, false};
  raw_reader(&r);
  d->frames = r.failed ? -1 : check_stream(r.data, r.len, NULL);
  free(r.data);
  return NULL;
}

static void test_stuck_peer_write(void **state) {
  (void)state;
  for (int nb = 0; nb < 2; nb++) {
    int sv[2];
    pair_unix(sv);
    if (nb) {
      set_nonblocking(sv[0]);
    }
    dt_conn_t *c = conn_of(sv[0], NULL);
    uint8_t frame[1000];
    long accepted = 0;
    dt_status_t st = DT_OK;
    while (accepted < 1000000) {
      fill_payload(frame, sizeof(frame), (uint64_t)accepted);
      st = dt_frame_write(c, frame, sizeof(frame), 20);
      if (st != DT_OK) {
        break;
      }
      accepted++;
    }
    assert_int_equal(st, DT_ETIMEDOUT);
    assert_false(dt_conn_is_broken(c));
    assert_true(dt_conn_pending_output(c) > 0);
    assert_int_equal(dt_flush(c, 0), DT_ETIMEDOUT);
    assert_false(dt_conn_is_broken(c));

    draining_t d = {sv[1], 0, false};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, drain_frames, &d), 0);
    assert_int_equal(dt_conn_shutdown_write(c, LONG_MS), DT_OK);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(d.frames, accepted);
    assert_int_equal(dt_frame_write(c, frame, 1, 0), DT_EINVAL);
    dt_conn_free(c);
    close(sv[1]);
  }
}

/* A frame larger than the write buffer that times out half sent leaves a
 * cut frame on the wire: the connection must say so. */
static void test_stuck_peer_big_write(void **state) {
  (void)state;
  int sv[2];
  pair_unix(sv);
  dt_conn_t *c = conn_of(sv[0], NULL);
  size_t len = 8 * MIB;
  uint8_t *big = calloc(1, len);
  assert_int_equal(dt_frame_write(c, big, len, 50), DT_ETIMEDOUT);
  assert_true(dt_conn_is_broken(c));
  assert_int_equal(dt_frame_write(c, big, 1, 50), DT_EBROKEN);
  free(big);
  dt_conn_free(c);
  close(sv[1]);
}

/* A batch that stalls half way cannot say how many of its frames left. */
static void test_stuck_peer_batch(void **state) {
  (void)state;
  int sv[2];
  pair_unix(sv);
  dt_conn_t *c = conn_of(sv[0], NULL);
  enum { NB = 10000 };
  static uint8_t frame[1000];
  dt_iovec_t *v = malloc(NB * sizeof(*v));
  for (size_t i = 0; i < NB; i++) {
    v[i].base = frame;
    v[i].len = sizeof(frame);
  }
  assert_int_equal(dt_frame_writev(c, v, NB, 20), DT_ETIMEDOUT);
  assert_true(dt_conn_is_broken(c));
  free(v);
  dt_conn_free(c);
  close(sv[1]);
}

/* Signals that interrupt a wait or a blocking call are not failures. */
static volatile sig_atomic_t sigusr1s;

static void on_sigusr1(int sig) {
  (void)sig;
  sigusr1s++;
}

typedef struct {
  pthread_t target;
  int fd;
} interrupter_t;

static void *interrupter(void *arg) {
  interrupter_t *it = arg;
  for (int i = 0; i < 5; i++) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    pthread_kill(it->target, SIGUSR1);
  }
  struct timespec ts = {0, 20 * 1000 * 1000};
  nanosleep(&ts, NULL);
  write_all(it->fd, "\0\0\0\3abc", 7);
  return NULL;
}

static void test_interrupted_waits(void **state) {
  (void)state;
  struct sigaction sa, old;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_sigusr1; /* no SA_RESTART: calls fail with EINTR */
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
  /* No deadline (a blocking recv), then a deadline (poll). */
  int timeouts[2] = {-1, LONG_MS};
  for (int i = 0; i < 2; i++) {
    int sv[2];
    pair_unix(sv);
    dt_conn_t *c = conn_of(sv[1], NULL);
    sigusr1s = 0;
    interrupter_t it = {pthread_self(), sv[0]};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, interrupter, &it), 0);
    const uint8_t *p = NULL;
    size_t n = 0;
    assert_int_equal(dt_frame_read(c, timeouts[i], &p, &n), DT_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(p, "abc", 3);
    assert_int_equal(pthread_join(t, NULL), 0);
    /* Pending signals of one kind merge: at least one was delivered. */
    assert_true(sigusr1s >= 1);
    dt_conn_free(c);
    close(sv[0]);
  }
  assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

/* ---- a closed peer ------------------------------------------------------ */

static volatile sig_atomic_t sigpipes;

static void on_sigpipe(int sig) {
  (void)sig;
  sigpipes++;
}

static void test_closed_peer_no_sigpipe(void **state) {
  (void)state;
  struct sigaction sa, old;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_sigpipe;
  sigemptyset(&sa.sa_mask);
  assert_int_equal(sigaction(SIGPIPE, &sa, &old), 0);
  sigpipes = 0;
  pair_fn pairs[2] = {pair_unix, pair_tcp};
  for (int i = 0; i < 2; i++) {
    int sv[2];
    pairs[i](sv);
    dt_conn_t *c = conn_of(sv[0], NULL);
    close(sv[1]);
    uint8_t frame[512] = {0};
    dt_status_t st = DT_OK;
    /* TCP may take the first bytes before the reset comes back. */
    for (int k = 0; k < 1000 && st == DT_OK; k++) {
      st = dt_frame_write(c, frame, sizeof(frame), LONG_MS);
      if (st == DT_OK) {
        st = dt_flush(c, LONG_MS);
      }
    }
    assert_int_equal(st, DT_ECONNRESET);
    assert_true(dt_conn_is_broken(c));
    assert_int_equal(dt_flush(c, 0), DT_EBROKEN);
    dt_conn_free(c);
  }
  assert_int_equal(sigpipes, 0);
  assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
}

/* A TCP peer that closes with our bytes unread resets the connection. */
static void test_reset_by_peer(void **state) {
  (void)state;
  int sv[2];
  pair_tcp(sv);
  dt_conn_t *c = conn_of(sv[0], NULL);
  assert_int_equal(dt_frame_write(c, "unread", 6, 0), DT_OK);
  assert_int_equal(dt_flush(c, LONG_MS), DT_OK);
  /* Closing with unread data sends RST, once the data has arrived. */
  struct pollfd pfd = {sv[1], POLLIN, 0};
  assert_int_equal(poll(&pfd, 1, LONG_MS), 1);
  close(sv[1]);
  const uint8_t *p = NULL;
  size_t n = 0;
  assert_int_equal(dt_frame_read(c, LONG_MS, &p, &n), DT_ECONNRESET);
  assert_int_equal(errno, ECONNRESET);
  assert_true(dt_conn_is_broken(c));
  dt_conn_free(c);
}

/* Out of memory for a frame larger than the read buffer consumes nothing. */
static void test_big_frame_out_of_memory(void **state) {
  (void)state;
  int sv[2];
  pair_unix(sv);
  dt_conn_opts_t o;
  dt_conn_opts_init(&o);
  o.read_buffer_size = 1024;
  dt_conn_t *c = conn_of(sv[1], &o);
  static uint8_t raw[4 + 5000];
  size_t len = raw_frame(raw, 4, 5000, 5);
  write_all(sv[0], raw, len);
  const uint8_t *p = NULL;
  size_t n = 0;
  dt__alloc_fail_at(1);
  assert_int_equal(dt_frame_read(c, LONG_MS, &p, &n), DT_ENOMEM);
  dt__alloc_fail_at(0);
  assert_false(dt_conn_is_broken(c));
  assert_int_equal(dt_frame_read(c, LONG_MS, &p, &n), DT_OK);
  assert_int_equal(n, 5000);
  uint8_t scratch[5000];
  assert_true(payload_ok(p, n, 5, scratch));
  dt_conn_free(c);
  close(sv[0]);
}

/* ---- byte I/O, half-close, handing the descriptor back ------------------ */

static void test_bytes_and_release(void **state) {
  (void)state;
  int sv[2];
  pair_unix(sv);
  dt_conn_opts_t o;
  dt_conn_opts_init(&o);
  o.read_buffer_size = 64;
  o.write_buffer_size = 64;
  dt_conn_t *a = conn_of(sv[0], &o);
  dt_conn_t *b = conn_of(sv[1], &o);
  uint8_t big[1000], got[1000];
  fill_payload(big, sizeof(big), 9);
  assert_int_equal(dt_conn_write(a, "hello ", 6, 0), DT_OK);
  assert_int_equal(dt_conn_pending_output(a), 6);
  assert_int_equal(dt_conn_write(a, big, sizeof(big), LONG_MS), DT_OK);
  assert_int_equal(dt_conn_write(a, NULL, 0, 0), DT_OK);
  assert_int_equal(dt_conn_shutdown_write(a, LONG_MS), DT_OK);
  assert_int_equal(dt_conn_pending_output(a), 0);
  assert_int_equal(dt_conn_write(a, "x", 1, 0), DT_EINVAL);
  assert_int_equal(dt_conn_shutdown_write(a, 0), DT_EINVAL);

  size_t n = 0;
  assert_int_equal(dt_conn_read(b, got, 0, &n, 0), DT_OK);
  assert_int_equal(n, 0);
  assert_int_equal(dt_conn_read(b, got, 3, &n, LONG_MS), DT_OK);
  assert_int_equal(n, 3);
  assert_memory_equal(got, "hel", 3);
  assert_true(dt_conn_pending_input(b) > 0);
  int fd = -1;
  assert_int_equal(dt_conn_release_fd(b, &fd), DT_EBUSY);
  assert_int_equal(dt_conn_read(b, got, 3, &n, LONG_MS), DT_OK);
  assert_memory_equal(got, "lo ", n);
  size_t off = 3 + n;
  while (off < 6 + sizeof(big)) {
    assert_int_equal(dt_conn_read(b, got, sizeof(got), &n, LONG_MS), DT_OK);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
      size_t at = off + i;
      assert_int_equal(got[i], at < 6 ? (uint8_t) "hello "[at] : big[at - 6]);
    }
    off += n;
  }
  assert_int_equal(dt_conn_read(b, got, sizeof(got), &n, LONG_MS), DT_EOF);

  /* The half-closed side still receives. */
  assert_int_equal(dt_frame_write(b, "back", 4, 0), DT_OK);
  assert_int_equal(dt_flush(b, LONG_MS), DT_OK);
  const uint8_t *p = NULL;
  assert_int_equal(dt_frame_read(a, LONG_MS, &p, &n), DT_OK);
  assert_memory_equal(p, "back", 4);

  assert_int_equal(dt_frame_write(b, "x", 1, 0), DT_OK);
  assert_int_equal(dt_conn_release_fd(b, &fd), DT_EBUSY);
  assert_int_equal(dt_flush(b, LONG_MS), DT_OK);
  assert_int_equal(dt_conn_release_fd(b, &fd), DT_OK);
  assert_int_equal(fd, sv[1]);
  assert_int_equal(dt_conn_fd(b), -1);
  assert_true(dt_conn_is_broken(b));
  assert_int_equal(dt_conn_release_fd(b, &fd), DT_EINVAL);
  assert_int_equal(dt_frame_write(b, "y", 1, 0), DT_EBROKEN);
  dt_conn_free(b);
  assert_true(fd_open(fd)); /* released, so not closed */
  write_all(fd, "\0\0\0\2ok", 6);
  assert_int_equal(dt_frame_read(a, LONG_MS, &p, &n), DT_OK);
  assert_int_equal(n, 1);
  assert_int_equal(dt_frame_read(a, LONG_MS, &p, &n), DT_OK);
  assert_memory_equal(p, "ok", 2);
  close(fd);
  assert_int_equal(dt_frame_read(a, LONG_MS, &p, &n), DT_EOF);
  dt_conn_free(a);
}

static void test_read_into_too_small(void **state) {
  (void)state;
  int sv[2];
  pair_unix(sv);
  dt_conn_t *c = conn_of(sv[1], NULL);
  uint8_t raw[200];
  size_t len = raw_frame(raw, 4, 150, 4);
  write_all(sv[0], raw, len);
  uint8_t buf[150], scratch[150];
  size_t n = 0;
  assert_int_equal(dt_frame_read_into(c, buf, 149, &n, LONG_MS), DT_ETOOBIG);
  assert_false(dt_conn_is_broken(c));
  assert_int_equal(dt_conn_pending_input(c), len);
  assert_int_equal(dt_frame_peek(c, 0, &n), DT_OK);
  assert_int_equal(n, 150);
  assert_int_equal(dt_frame_read_into(c, buf, n, &n, 0), DT_OK);
  assert_true(payload_ok(buf, n, 4, scratch));
  dt_conn_free(c);
  close(sv[0]);
}

/* ---- DNS over TCP framing ----------------------------------------------- */

static void test_two_byte_header(void **state) {
  (void)state;
  dt_conn_opts_t o;
  dt_conn_opts_init(&o);
  o.frame_header_size = 2;
  static const size_t sizes[] = {0, 12, 512, 1232, 65535, 64 * KIB - 2, 7};
  round_trip(pair_tcp, &o, &o, sizes, sizeof(sizes) / sizeof(sizes[0]), 1, 2,
             false);

  int sv[2];
  pair_unix(sv);
  dt_conn_t *c = conn_of(sv[0], &o);
  static uint8_t big[65536];
  assert_int_equal(dt_frame_write(c, big, 65536, 0), DT_EFRAMETOOBIG);
  assert_true(dt_conn_is_broken(c));
  dt_conn_free(c);

  close(sv[1]);

  o.max_frame_size = 512;
  pair_unix(sv);
  c = conn_of(sv[1], &o);
  write_all(sv[0], "\x02\x01", 2); /* 513 */
  const uint8_t *p = NULL;
  size_t n = 0;
  dt__alloc_reset_counts();
  assert_int_equal(dt_frame_read(c, LONG_MS, &p, &n), DT_EFRAMETOOBIG);
  assert_int_equal(dt__alloc_count(), 0);
  dt_conn_free(c);
  close(sv[0]);
}

/* ---- batches ------------------------------------------------------------ */

static void test_writev_batch(void **state) {
  (void)state;
  size_t sizes[1000];
  for (size_t i = 0; i < 1000; i++) {
    sizes[i] = (i * 37) % 300;
  }
  sizes[500] = 100 * KIB; /* one frame larger than the write buffer */
  round_trip(pair_unix, NULL, NULL, sizes, 1000, 1000, 0, false);
  round_trip(pair_tcp, NULL, NULL, sizes, 1000, 64, 2, true);
}

/* ---- one reader and one writer thread on a connection, echo server ------ */

typedef struct {
  dt_conn_t *conn;
  dt_status_t st;
  long frames;
} echo_t;

/* Echoes frames until end of stream, flushing whenever no more input is
 * buffered: a batch of requests costs a batch of system calls. */
static void *echo_server(void *arg) {
  echo_t *e = arg;
  for (;;) {
    const uint8_t *p = NULL;
    size_t n = 0;
    e->st = dt_frame_read(e->conn, LONG_MS, &p, &n);
    if (e->st == DT_EOF) {
      e->st = dt_conn_shutdown_write(e->conn, LONG_MS);
      return NULL;
    }
    if (e->st == DT_OK) {
      e->st = dt_frame_write(e->conn, p, n, LONG_MS);
    }
    if (e->st == DT_OK && dt_conn_pending_input(e->conn) == 0) {
      e->st = dt_flush(e->conn, LONG_MS);
    }
    if (e->st != DT_OK) {
      return NULL;
    }
    e->frames++;
  }
}

static void test_echo_full_duplex(void **state) {
  (void)state;
  enum { N = 20000 };
  static size_t sizes[N];
  uint64_t rng = 99;
  for (size_t i = 0; i < N; i++) {
    sizes[i] = rng_next(&rng) % 2000;
  }
  int sv[2];
  pair_tcp(sv);
  dt_conn_t *client = conn_of(sv[0], NULL);
  echo_t server = {conn_of(sv[1], NULL), DT_OK, 0};
  pthread_t ts, tw;
  assert_int_equal(pthread_create(&ts, NULL, echo_server, &server), 0);
  /* The client writes from one thread while this one reads. */
  frame_writer_t w = {client, sizes, N, 16, LONG_MS, DT_OK};
  assert_int_equal(pthread_create(&tw, NULL, frame_writer, &w), 0);
  read_and_check(client, sizes, N, 2, LONG_MS);
  assert_int_equal(pthread_join(tw, NULL), 0);
  assert_int_equal(pthread_join(ts, NULL), 0);
  assert_int_equal(w.st, DT_OK);
  assert_int_equal(server.st, DT_OK);
  assert_int_equal(server.frames, N);
  dt_conn_free(client);
  dt_conn_free(server.conn);
}

/* ---- 100,000 random frames ---------------------------------------------- */

enum { NRANDOM = 100000 };

/* Mostly small frames, some around the buffer size, a few far larger. */
static size_t *random_sizes(uint64_t seed) {
  size_t *s = malloc(NRANDOM * sizeof(*s));
  uint64_t rng = seed;
  for (size_t i = 0; i < NRANDOM; i++) {
    uint64_t r = rng_next(&rng);
    unsigned kind = (unsigned)(r % 1000);
    r = rng_next(&rng);
    if (kind < 900) {
      s[i] = r % 257;
    } else if (kind < 990) {
      s[i] = r % (16 * KIB);
    } else if (kind < 998) {
      s[i] = 64 * KIB - 8 + r % 16;
    } else {
      s[i] = r % (300 * KIB);
    }
  }
  return s;
}

static void random_round_trip(pair_fn pair, uint64_t seed) {
  size_t *sizes = random_sizes(seed);
  /* Unbatched and blocking, then batched over non-blocking sockets, with
   * all three ways of reading mixed. */
  round_trip(pair, NULL, NULL, sizes, NRANDOM, 1, 2, false);
  round_trip(pair, NULL, NULL, sizes, NRANDOM, 50, 2, true);
  free(sizes);
}

static void test_random_unix(void **state) {
  (void)state;
  random_round_trip(pair_unix, 20260101);
}

static void test_random_tcp(void **state) {
  (void)state;
  random_round_trip(pair_tcp, 20260102);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_opts_defaults),
      cmocka_unit_test(test_new_rejects),
      cmocka_unit_test(test_new_out_of_memory),
      cmocka_unit_test(test_embedding),
      cmocka_unit_test(test_edges_unix),
      cmocka_unit_test(test_edges_tcp),
      cmocka_unit_test(test_edges_small_buffers),
      cmocka_unit_test(test_max_plus_one_write),
      cmocka_unit_test(test_max_plus_one_read),
      cmocka_unit_test(test_fast_path_refusals),
      cmocka_unit_test(test_small_lengths),
      cmocka_unit_test(test_header_4gib),
      cmocka_unit_test(test_bytewise_feed_zero_timeout),
      cmocka_unit_test(test_peer_writes_bytewise),
      cmocka_unit_test(test_peer_reads_bytewise),
      cmocka_unit_test(test_eof),
      cmocka_unit_test(test_eof_between_frames),
      cmocka_unit_test(test_stuck_peer_read),
      cmocka_unit_test(test_deadline_with_clock_seam),
      cmocka_unit_test(test_ready_needs_no_clock),
      cmocka_unit_test(test_stuck_peer_write),
      cmocka_unit_test(test_stuck_peer_big_write),
      cmocka_unit_test(test_stuck_peer_batch),
      cmocka_unit_test(test_interrupted_waits),
      cmocka_unit_test(test_closed_peer_no_sigpipe),
      cmocka_unit_test(test_reset_by_peer),
      cmocka_unit_test(test_big_frame_out_of_memory),
      cmocka_unit_test(test_bytes_and_release),
      cmocka_unit_test(test_read_into_too_small),
      cmocka_unit_test(test_two_byte_header),
      cmocka_unit_test(test_writev_batch),
      cmocka_unit_test(test_echo_full_duplex),
      cmocka_unit_test(test_random_unix),
      cmocka_unit_test(test_random_tcp),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
