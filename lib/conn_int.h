/* The layout of dt_conn_t and the helpers shared by conn.c (object, system
 * calls), bufio.c (buffered bytes) and frame.c (frames).
 *
 * Embedding: another module (the pool) may make a dt_conn_t the first
 * member of its own struct, set it up with dt__conn_init() and set free_fn
 * so that dt_conn_free() on the handed-out dt_conn_t * reaches it. */
#ifndef DT_CONN_INT_H
#define DT_CONN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "clock.h"
#include "dialtone/conn.h"

/* Keeps a slow path out of its fast path's function, and says which way
 * the fast path's tests go so that it is laid out as one straight line. */
#if defined(__GNUC__)
#define DT__NOINLINE __attribute__((noinline))
#define DT__LIKELY(x) __builtin_expect(!!(x), 1)
#else
#define DT__NOINLINE
#define DT__LIKELY(x) (x)
#endif

struct dt_conn {
  /* Set by dt__conn_init; fd changes only in dt_conn_release_fd. */
  int fd;
  uint8_t hdr_len;  /* 2 or 4 */
  size_t max_frame; /* fits in the header */
  dt_clock_t clock;
  /* When set, dt_conn_free(c) calls it and does nothing else: it must
   * call dt__conn_fini(c) and release the memory holding c. */
  void (*free_fn)(dt_conn_t *c);
  /* Read by both sides, set by either: accessed with __atomic builtins. */
  bool broken;
  /* Set by the pool when it hands out a reused connection, cleared by the
   * first byte received (atomic, like broken). Until then a failure or end
   * of stream most likely means the peer closed it while it sat idle, and
   * is reported as DT_ESTALECONN so callers can retry idempotent work. */
  bool reuse_unproven;

  /* Read side. Unread bytes are rbuf[rpos, rend). big holds the last frame
   * dt_frame_read could not fit in rbuf, until the next read call. */
  uint8_t *rbuf;
  size_t rcap, rpos, rend;
  uint8_t *big;
  bool eof;      /* the peer's end of stream was seen */
  bool rdrained; /* the last receive emptied the socket */

  /* Keeps the two sides' hot fields off one cache line when a reader and
   * a writer thread share the connection. */
  char side_pad[64];

  /* Write side. Unsent bytes are wbuf[woff, wlen). */
  uint8_t *wbuf;
  size_t wcap, woff, wlen;
  bool wr_shut; /* dt_conn_shutdown_write succeeded */
  bool wfull;   /* the last send filled the socket */
};

/* Sets up c around fd (a connected stream socket) with opts (NULL:
 * defaults): allocates both buffers, as one block. c owns fd on DT_OK only.
 * free_fn is left NULL. Errors as dt_conn_new. */
dt_status_t dt__conn_init(dt_conn_t *c, int fd, const dt_conn_opts_t *opts);

/* Closes the fd unless released and frees the buffers; does not free c. */
void dt__conn_fini(dt_conn_t *c);

static inline bool dt__conn_broken(const dt_conn_t *c) {
  return __atomic_load_n(&c->broken, __ATOMIC_RELAXED);
}

static inline void dt__conn_break(dt_conn_t *c) {
  __atomic_store_n(&c->broken, true, __ATOMIC_RELAXED);
}

/* Frees the block of the last frame larger than rbuf: its view lives
 * until the next read call. */
void dt__conn_drop_big(dt_conn_t *c);

/* The wait budget of one public call. The deadline is set (the clock read)
 * at the call's first wait, never before: a call served from the buffers
 * or by a socket that is ready does not read the clock. */
typedef struct {
  int timeout_ms; /* negative: no limit */
  bool started;
  dt_deadline_t deadline;
} dt__op_t;

static inline void dt__op_init(dt__op_t *op, int timeout_ms) {
  op->timeout_ms = timeout_ms;
  op->started = false;
}

/* One receive into iov (one or two parts), waiting up to op's deadline
 * for the socket to become readable. DT_OK with *got > 0; DT_EOF (sets
 * c->eof); DT_ETIMEDOUT; or a status from errno, and c is broken. */
dt_status_t dt__conn_recv(dt_conn_t *c, struct iovec *iov, int iovcnt,
                          dt__op_t *op, size_t *got);

/* One send of iov (up to three parts), never raising SIGPIPE, waiting up
 * to op's deadline for the socket to become writable. DT_OK with
 * *sent > 0; DT_ETIMEDOUT; or a status from errno, and c is broken. */
dt_status_t dt__conn_send(dt_conn_t *c, struct iovec *iov, int iovcnt,
                          dt__op_t *op, size_t *sent);

/* Buffers until at least need (<= rcap) unread bytes are in rbuf,
 * compacting it when they would not fit after rpos. DT_OK; DT_EOF when
 * the stream ended first (what was buffered stays); DT_ETIMEDOUT (same);
 * errors of dt__conn_recv. */
dt_status_t dt__conn_fill(dt_conn_t *c, size_t need, dt__op_t *op);

/* The slow path of a write of hdr||p (hdr may be empty) that does not fit
 * in the write buffer's free space. A piece that fits in the buffer is
 * copied after a flush; a larger one is sent together with the buffered
 * bytes, in vectored sends, until its rest fits in the emptied buffer,
 * where it is copied. DT_OK; DT_ETIMEDOUT with nothing of the piece
 * accepted, or, when some of it was sent, with c broken; errors of
 * dt__conn_send. */
dt_status_t dt__conn_put(dt_conn_t *c, const uint8_t *hdr, size_t hlen,
                         const uint8_t *p, size_t plen, dt__op_t *op);

/* Sends every buffered byte. DT_OK; DT_ETIMEDOUT (the rest stays
 * buffered); errors of dt__conn_send. */
dt_status_t dt__conn_flush(dt_conn_t *c, dt__op_t *op);

#endif
