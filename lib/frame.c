#include "config.h"

#include <string.h>

#include "alloc.h"
#include "conn_int.h"

static size_t get_len(const dt_conn_t *c, const uint8_t *h) {
  if (c->hdr_len == 4) {
    return (size_t)((uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
                    (uint32_t)h[2] << 8 | (uint32_t)h[3]);
  }
  return (size_t)((uint32_t)h[0] << 8 | (uint32_t)h[1]);
}

/* len <= c->max_frame, which fits in the header. */
static void put_len(const dt_conn_t *c, uint8_t *h, size_t len) {
  if (c->hdr_len == 4) {
    h[0] = (uint8_t)(len >> 24);
    h[1] = (uint8_t)(len >> 16);
    h[2] = (uint8_t)(len >> 8);
    h[3] = (uint8_t)len;
  } else {
    h[0] = (uint8_t)(len >> 8);
    h[1] = (uint8_t)len;
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

static dt_status_t read_slow(dt_conn_t *c, int timeout_ms,
                             const uint8_t **payload, size_t *len) {
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
  if (conn == NULL || payload == NULL || len == NULL) {
    return DT_EINVAL;
  }
  if (dt__conn_broken(conn)) {
    return DT_EBROKEN;
  }
  dt__conn_drop_big(conn);
  /* Fast path: a whole frame is buffered. */
  size_t avail = conn->rend - conn->rpos;
  if (avail >= conn->hdr_len) {
    const uint8_t *h = conn->rbuf + conn->rpos;
    size_t n = get_len(conn, h);
    if (n <= conn->max_frame && n <= avail - conn->hdr_len) {
      *payload = h + conn->hdr_len;
      *len = n;
      conn->rpos += conn->hdr_len + n;
      return DT_OK;
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

/* Appends one frame of len <= max_frame: a copy when it fits, else the
 * vectored slow path. */
static dt_status_t put_frame(dt_conn_t *c, const void *payload, size_t len,
                             dt__op_t *op) {
  size_t need = c->hdr_len + len;
  if (need <= c->wcap - c->wlen) {
    uint8_t *d = c->wbuf + c->wlen;
    put_len(c, d, len);
    if (len > 0) {
      memcpy(d + c->hdr_len, payload, len);
    }
    c->wlen += need;
    return DT_OK;
  }
  uint8_t h[4];
  put_len(c, h, len);
  return dt__conn_put(c, h, c->hdr_len, payload, len, op);
}

dt_status_t dt_frame_write(dt_conn_t *conn, const void *payload, size_t len,
                           int timeout_ms) {
  if (conn == NULL || (payload == NULL && len > 0)) {
    return DT_EINVAL;
  }
  dt_status_t st = write_check(conn);
  if (st != DT_OK) {
    return st;
  }
  if (len > conn->max_frame) {
    dt__conn_break(conn);
    return DT_EFRAMETOOBIG;
  }
  dt__op_t op;
  dt__op_init(&op, timeout_ms);
  return put_frame(conn, payload, len, &op);
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
    st = put_frame(conn, frames[i].base, frames[i].len, &op);
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
