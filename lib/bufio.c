#include "config.h"

#include <string.h>

#include "conn_int.h"

dt_status_t dt__conn_fill(dt_conn_t *c, size_t need, dt__op_t *op) {
  while (c->rend - c->rpos < need) {
    if (c->eof) {
      return DT_EOF;
    }
    size_t have = c->rend - c->rpos;
    if (have == 0) {
      c->rpos = c->rend = 0;
    } else if (c->rpos > 0 &&
               (c->rcap - c->rpos < need || c->rcap - c->rend < c->rcap / 2)) {
      /* have < need, so this moves less than one frame; it buys a long
       * read instead of a short one into the buffer's tail. */
      memmove(c->rbuf, c->rbuf + c->rpos, have);
      c->rpos = 0;
      c->rend = have;
    }
    struct iovec iov = {c->rbuf + c->rend, c->rcap - c->rend};
    size_t got = 0;
    dt_status_t st = dt__conn_recv(c, &iov, 1, op, &got);
    if (st != DT_OK) {
      return st;
    }
    c->rend += got;
  }
  return DT_OK;
}

/* Copies bytes [off, hlen + plen) of hdr||p to dst. */
static void copy_piece(uint8_t *dst, const uint8_t *hdr, size_t hlen,
                       const uint8_t *p, size_t plen, size_t off) {
  if (off < hlen) {
    memcpy(dst, hdr + off, hlen - off);
    dst += hlen - off;
    off = hlen;
  }
  if (plen > off - hlen) {
    memcpy(dst, p + (off - hlen), plen - (off - hlen));
  }
}

dt_status_t dt__conn_put(dt_conn_t *c, const uint8_t *hdr, size_t hlen,
                         const uint8_t *p, size_t plen, dt__op_t *op) {
  size_t total = hlen + plen;
  size_t done = 0; /* bytes of hdr||p already sent */
  for (;;) {
    size_t pending = c->wlen - c->woff;
    size_t left = total - done;
    if (pending == 0) {
      c->woff = c->wlen = 0;
      if (left <= c->wcap) {
        copy_piece(c->wbuf, hdr, hlen, p, plen, done);
        c->wlen = left;
        return DT_OK;
      }
    }
    /* One vectored send of the buffer and the piece: the piece is not
     * copied, and the kernel gets as many bytes per call as possible. */
    struct iovec iov[3];
    int n = 0;
    if (pending > 0) {
      iov[n].iov_base = c->wbuf + c->woff;
      iov[n++].iov_len = pending;
    }
    if (done < hlen) {
      iov[n].iov_base = (void *)(hdr + done);
      iov[n++].iov_len = hlen - done;
    }
    size_t poff = done > hlen ? done - hlen : 0;
    if (plen > poff) {
      iov[n].iov_base = (void *)(p + poff);
      iov[n++].iov_len = plen - poff;
    }
    size_t sent = 0;
    dt_status_t st = dt__conn_send(c, iov, n, op, &sent);
    if (st != DT_OK) {
      /* Part of the piece on the wire and the rest in the caller's memory,
       * which the caller is free to reuse: the peer would see a cut frame
       * followed by whatever comes next. */
      if (st == DT_ETIMEDOUT && done > 0) {
        dt__conn_break(c);
      }
      return st;
    }
    size_t from_buffer = sent < pending ? sent : pending;
    c->woff += from_buffer;
    done += sent - from_buffer;
  }
}

dt_status_t dt__conn_flush(dt_conn_t *c, dt__op_t *op) {
  while (c->wlen > c->woff) {
    struct iovec iov = {c->wbuf + c->woff, c->wlen - c->woff};
    size_t sent = 0;
    dt_status_t st = dt__conn_send(c, &iov, 1, op, &sent);
    if (st != DT_OK) {
      return st;
    }
    c->woff += sent;
  }
  c->woff = c->wlen = 0;
  return DT_OK;
}

dt_status_t dt_conn_read(dt_conn_t *conn, void *buf, size_t cap, size_t *n,
                         int timeout_ms) {
  if (conn == NULL || n == NULL || (buf == NULL && cap > 0)) {
    return DT_EINVAL;
  }
  if (dt__conn_broken(conn)) {
    return DT_EBROKEN;
  }
  dt__conn_drop_big(conn);
  if (cap == 0) {
    *n = 0;
    return DT_OK;
  }
  size_t avail = conn->rend - conn->rpos;
  if (avail == 0) {
    if (conn->eof) {
      return DT_EOF;
    }
    dt__op_t op;
    dt__op_init(&op, timeout_ms);
    if (cap >= conn->rcap) {
      struct iovec iov = {buf, cap};
      return dt__conn_recv(conn, &iov, 1, &op, n);
    }
    dt_status_t st = dt__conn_fill(conn, 1, &op);
    if (st != DT_OK) {
      return st;
    }
    avail = conn->rend - conn->rpos;
  }
  size_t take = avail < cap ? avail : cap;
  memcpy(buf, conn->rbuf + conn->rpos, take);
  conn->rpos += take;
  *n = take;
  return DT_OK;
}

dt_status_t dt_conn_write(dt_conn_t *conn, const void *buf, size_t len,
                          int timeout_ms) {
  if (conn == NULL || (buf == NULL && len > 0)) {
    return DT_EINVAL;
  }
  if (dt__conn_broken(conn)) {
    return DT_EBROKEN;
  }
  if (conn->wr_shut) {
    return DT_EINVAL;
  }
  if (len <= conn->wcap - conn->wlen) {
    if (len > 0) {
      memcpy(conn->wbuf + conn->wlen, buf, len);
      conn->wlen += len;
    }
    return DT_OK;
  }
  dt__op_t op;
  dt__op_init(&op, timeout_ms);
  return dt__conn_put(conn, NULL, 0, buf, len, &op);
}

dt_status_t dt_flush(dt_conn_t *conn, int timeout_ms) {
  if (conn == NULL) {
    return DT_EINVAL;
  }
  if (dt__conn_broken(conn)) {
    return DT_EBROKEN;
  }
  if (conn->wlen == conn->woff) {
    return DT_OK;
  }
  dt__op_t op;
  dt__op_init(&op, timeout_ms);
  return dt__conn_flush(conn, &op);
}
