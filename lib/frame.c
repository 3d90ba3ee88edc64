#include "config.h"

#include <arpa/inet.h>
#include <string.h>

#include "alloc.h"
#include "conn_int.h"

/* Headers are read and written as one big-endian load or store. */
static inline size_t get_len(const dt_conn_t *c, const uint8_t *h) {
  if (DT__LIKELY(c->hdr_len == 4)) {
    uint32_t be;
    memcpy(&be, h, 4);
    return ntohl(be);
  }
  uint16_t be;
  memcpy(&be, h, 2);
  return ntohs(be);
}

/* len <= c->max_frame, which fits in the header. */
static inline void put_len(const dt_conn_t *c, uint8_t *h, size_t len) {
  if (DT__LIKELY(c->hdr_len == 4)) {
    uint32_t be = htonl((uint32_t)len);
    memcpy(h, &be, 4);
  } else {
    uint16_t be = htons((uint16_t)len);
    memcpy(h, &be, 2);
  }
}

/* Copies a payload from the caller's memory into the write buffer (the two
 * never overlap). Up to 64 bytes, two fixed-size moves that may overlap
 * each other do it in a few loads and stores: for a small frame, a call to
 * memcpy would cost as much as the rest of its path. */
static inline void copy_payload(uint8_t *d, const uint8_t *s, size_t n) {
  if (n > 64) {
    memcpy(d, s, n);
  } else if (n >= 32) {
    memcpy(d, s, 32);
    memcpy(d + n - 32, s + n - 32, 32);
  } else if (n >= 16) {
    memcpy(d, s, 16);
    memcpy(d + n - 16, s + n - 16, 16);
  } else if (n >= 8) {
    memcpy(d, s, 8);
    memcpy(d + n - 8, s + n - 8, 8);
  } else if (n >= 4) {
    memcpy(d, s, 4);
    memcpy(d + n - 4, s + n - 4, 4);
  } else if (n > 0) {
    d[0] = s[0];
    d[n / 2] = s[n / 2];
    d[n - 1] = s[n - 1];
  }
}

/* Buffers and decodes the next header, consuming nothing. The length is
 * checked before anything is allocated or read for the payload; a refused
 * header breaks the connection, since the only way past it would be to
 * read and discard what the peer claims to send. */
static dt_status_t next_header(dt_conn_t *c, dt__op_t *op, size_t *len) {
  dt_status_t st = dt__conn_fill(c, c->hdr_len, op);
  if (st == DT_EOF) {
    if (c->rend == c->rpos) {
      return DT_EOF;
    }
    dt__conn_break(c);
    return DT_EUNEXPECTEDEOF;
  }
  if (st != DT_OK) {
    return st;
  }
  size_t n = get_len(c, c->rbuf + c->rpos);
  if (n > c->max_frame) {
    dt__conn_break(c);
    return DT_EFRAMETOOBIG;
  }
  *len = n;
  return DT_OK;
}

/* Buffers a whole frame of need bytes (<= rcap). A timeout consumes
 * nothing, so the connection stays usable. */
static dt_status_t fill_frame(dt_conn_t *c, size_t need, dt__op_t *op) {
  dt_status_t st = dt__conn_fill(c, need, op);
  if (st == DT_EOF) {
    dt__conn_break(c);
    return DT_EUNEXPECTEDEOF;
  }
  return st;
}

/* Consumes the buffered header and moves the n-byte payload to dst: the
 * buffered part by copy, the rest received straight into dst. Each receive
 * also offers the emptied read buffer, so the bytes after the frame arrive
 * in the same system call. Any failure leaves the stream inside the frame,
 * so it breaks the connection. */
static dt_status_t read_direct(dt_conn_t *c, uint8_t *dst, size_t n,
                               dt__op_t *op) {
  c->rpos += c->hdr_len;
  size_t have = c->rend - c->rpos;
  size_t done = have < n ? have : n;
  memcpy(dst, c->rbuf + c->rpos, done);
  c->rpos += done;
  while (done < n) {
    c->rpos = c->rend = 0;
    struct iovec iov[2] = {{dst + done, n - done}, {c->rbuf, c->rcap}};
    size_t got = 0;
    dt_status_t st = c->eof ? DT_EOF : dt__conn_recv(c, iov, 2, op, &got);
    if (st != DT_OK) {
      dt__conn_break(c);
      return st == DT_EOF ? DT_EUNEXPECTEDEOF : st;
    }
    if (got <= n - done) {
      done += got;
    } else {
      c->rend = got - (n - done);
      done = n;
    }
  }
  return DT_OK;
}

/* Everything dt_frame_read does when no whole frame is buffered, or when
 * an argument or the connection's state needs a look: out of line, so
 * that the fast path is a few instructions with no call in them and needs
 * no stack frame. */
static DT__NOINLINE dt_status_t read_slow(dt_conn_t *c, int timeout_ms,
                                          const uint8_t **payload,
                                          size_t *len) {
  if (c == NULL || payload == NULL || len == NULL) {
    return DT_EINVAL;
  }
  if (dt__conn_broken(c)) {
    return DT_EBROKEN;
  }
  dt__conn_drop_big(c);
  dt__op_t op;
  dt__op_init(&op, timeout_ms);
  size_t n = 0;
  dt_status_t st = next_header(c, &op, &n);
  if (st != DT_OK) {
    return st;
  }
  size_t need = c->hdr_len + n;
  if (need <= c->rcap) {
    st = fill_frame(c, need, &op);
    if (st != DT_OK) {
      return st;
    }
    *payload = c->rbuf + c->rpos + c->hdr_len;
    *len = n;
    c->rpos += need;
    return DT_OK;
  }
  /* n <= max_frame: the peer cannot make this allocation unbounded. */
  uint8_t *block = dt__malloc(n);
  if (block == NULL) {
    return DT_ENOMEM;
  }
  st = read_direct(c, block, n, &op);
  if (st != DT_OK) {
    dt__free(block);
    return st;
  }
  c->big = block;
  *payload = block;
  *len = n;
  return DT_OK;
}

dt_status_t dt_frame_read(dt_conn_t *conn, int timeout_ms,
                          const uint8_t **payload, size_t *len) {
  /* Fast path: a whole frame is buffered, the arguments are there, the
   * connection is sound and holds no big frame to drop. Any other case,
   * however rare, goes to read_slow, which checks everything again. The
   * atomic load comes first so that the compiler can keep the fields read
   * after it in registers. */
  if (DT__LIKELY(conn != NULL) && DT__LIKELY(payload != NULL) &&
      DT__LIKELY(len != NULL) && DT__LIKELY(!dt__conn_broken(conn)) &&
      DT__LIKELY(conn->big == NULL)) {
    size_t hl = conn->hdr_len;
    size_t pos = conn->rpos;
    size_t avail = conn->rend - pos;
    if (DT__LIKELY(avail >= hl)) {
      const uint8_t *h = conn->rbuf + pos;
      size_t n = get_len(conn, h);
      if (DT__LIKELY(n <= avail - hl) && DT__LIKELY(n <= conn->max_frame)) {
        *payload = h + hl;
        *len = n;
        conn->rpos = pos + hl + n;
        return DT_OK;
      }
    }
  }
  return read_slow(conn, timeout_ms, payload, len);
}

dt_status_t dt_frame_peek(dt_conn_t *conn, int timeout_ms, size_t *len) {
  if (conn == NULL || len == NULL) {
    return DT_EINVAL;
  }
  if (dt__conn_broken(conn)) {
    return DT_EBROKEN;
  }
  dt__conn_drop_big(conn);
  dt__op_t op;
  dt__op_init(&op, timeout_ms);
  return next_header(conn, &op, len);
}

dt_status_t dt_frame_read_into(dt_conn_t *conn, void *buf, size_t cap,
                               size_t *len, int timeout_ms) {
  if (conn == NULL || len == NULL || (buf == NULL && cap > 0)) {
    return DT_EINVAL;
  }
  if (dt__conn_broken(conn)) {
    return DT_EBROKEN;
  }
  dt__conn_drop_big(conn);
  dt__op_t op;
  dt__op_init(&op, timeout_ms);
  size_t n = 0;
  dt_status_t st = next_header(conn, &op, &n);
  if (st != DT_OK) {
    return st;
  }
  if (n > cap) {
    return DT_ETOOBIG;
  }
  size_t need = conn->hdr_len + n;
  if (need <= conn->rcap) {
    /* Through the buffer: a timeout then consumes nothing. */
    st = fill_frame(conn, need, &op);
    if (st != DT_OK) {
      return st;
    }
    if (n > 0) {
      memcpy(buf, conn->rbuf + conn->rpos + conn->hdr_len, n);
    }
    conn->rpos += need;
  } else {
    st = read_direct(conn, buf, n, &op);
    if (st != DT_OK) {
      return st;
    }
  }
  *len = n;
  return DT_OK;
}

static dt_status_t write_check(dt_conn_t *c) {
  if (dt__conn_broken(c)) {
    return DT_EBROKEN;
  }
  return c->wr_shut ? DT_EINVAL : DT_OK;
}

/* The fast path of a write: copies a frame of len <= max_frame when it
 * fits in the buffer's free space. */
static inline bool append_frame(dt_conn_t *c, const void *payload, size_t len) {
  size_t need = c->hdr_len + len;
  if (need > c->wcap - c->wlen) {
    return false;
  }
  uint8_t *d = c->wbuf + c->wlen;
  put_len(c, d, len);
  copy_payload(d + c->hdr_len, payload, len);
  c->wlen += need;
  return true;
}

static DT__NOINLINE dt_status_t put_frame_slow(dt_conn_t *c,
                                               const void *payload, size_t len,
                                               dt__op_t *op) {
  uint8_t h[4];
  put_len(c, h, len);
  return dt__conn_put(c, h, c->hdr_len, payload, len, op);
}

/* Everything dt_frame_write does when the frame does not fit in the
 * write buffer's free space, or when an argument or the connection's
 * state needs a look (see read_slow). */
static DT__NOINLINE dt_status_t write_slow(dt_conn_t *c, const void *payload,
                                           size_t len, int timeout_ms) {
  if (c == NULL || (payload == NULL && len > 0)) {
    return DT_EINVAL;
  }
  dt_status_t st = write_check(c);
  if (st != DT_OK) {
    return st;
  }
  if (len > c->max_frame) {
    dt__conn_break(c);
    return DT_EFRAMETOOBIG;
  }
  if (append_frame(c, payload, len)) {
    return DT_OK;
  }
  dt__op_t op;
  dt__op_init(&op, timeout_ms);
  return put_frame_slow(c, payload, len, &op);
}

dt_status_t dt_frame_write(dt_conn_t *conn, const void *payload, size_t len,
                           int timeout_ms) {
  /* Fast path: the frame fits in the buffer's free space and nothing needs
   * a second look (see dt_frame_read). len is bounded by max_frame
   * (< SIZE_MAX - 16) before the header is added to it, so the sum cannot
   * wrap. */
  if (DT__LIKELY(conn != NULL) && DT__LIKELY(!dt__conn_broken(conn)) &&
      DT__LIKELY(!conn->wr_shut) && DT__LIKELY(payload != NULL || len == 0)) {
    size_t hl = conn->hdr_len;
    size_t wlen = conn->wlen;
    if (DT__LIKELY(len <= conn->max_frame) &&
        DT__LIKELY(hl + len <= conn->wcap - wlen)) {
      uint8_t *d = conn->wbuf + wlen;
      put_len(conn, d, len);
      conn->wlen = wlen + hl + len;
      copy_payload(d + hl, payload, len);
      return DT_OK;
    }
  }
  return write_slow(conn, payload, len, timeout_ms);
}

dt_status_t dt_frame_writev(dt_conn_t *conn, const dt_iovec_t *frames, size_t n,
                            int timeout_ms) {
  if (conn == NULL || (frames == NULL && n > 0)) {
    return DT_EINVAL;
  }
  dt_status_t st = write_check(conn);
  if (st != DT_OK) {
    return st;
  }
  for (size_t i = 0; i < n; i++) {
    if (frames[i].base == NULL && frames[i].len > 0) {
      return DT_EINVAL;
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (frames[i].len > conn->max_frame) {
      dt__conn_break(conn);
      return DT_EFRAMETOOBIG;
    }
  }
  dt__op_t op;
  dt__op_init(&op, timeout_ms);
  for (size_t i = 0; i < n; i++) {
    if (append_frame(conn, frames[i].base, frames[i].len)) {
      continue;
    }
    st = put_frame_slow(conn, frames[i].base, frames[i].len, &op);
    if (st != DT_OK) {
      /* Frames 0..i-1 are accepted but the caller cannot tell how many:
       * retrying the batch would send them twice. */
      if (i > 0) {
        dt__conn_break(conn);
      }
      return st;
    }
  }
  if (conn->wlen == conn->woff) {
    return DT_OK;
  }
  return dt__conn_flush(conn, &op);
}
