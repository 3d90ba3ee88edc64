/* libFuzzer harness: a byte stream through the frame reader, with a small
 * maximum frame size and small buffers so every path (view, read into the
 * caller's memory, peek, oversized frames, EOF inside a header or payload)
 * is reached with short inputs. The first byte picks the header size and
 * the reader. Checks what the reader promises: frames never exceed the
 * maximum, a refused or truncated frame breaks the connection, and the
 * stream ends with one of the documented statuses. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dialtone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FRAME 300

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 60000) {
    return 0; /* the whole stream must fit in the socket's buffer */
  }
  uint8_t mode = data[0];
  data++;
  size--;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return 0;
  }
  int bufsize = 1 << 20;
  setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
  setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
  size_t off = 0;
  while (off < size) {
    ssize_t n = write(sv[1], data + off, size - off);
    if (n <= 0) {
      close(sv[0]);
      close(sv[1]);
      return 0;
    }
    off += (size_t)n;
  }
  shutdown(sv[1], SHUT_WR);

  dt_conn_opts_t o;
  dt_conn_opts_init(&o);
  o.read_buffer_size = DT_CONN_BUFFER_MIN;
  o.write_buffer_size = DT_CONN_BUFFER_MIN;
  o.max_frame_size = MAX_FRAME;
  o.frame_header_size = (mode & 1) ? 2 : 4;
  dt_conn_t *c = NULL;
  if (dt_conn_new(sv[0], &o, &c) != DT_OK) {
    close(sv[0]);
    close(sv[1]);
    return 0;
  }
  uint8_t buf[MAX_FRAME];
  dt_status_t st = DT_OK;
  for (int i = 0; i < 100000 && st == DT_OK; i++) {
    const uint8_t *p = NULL;
    size_t len = 0;
    switch ((mode >> 1) % 3) {
    case 0:
      st = dt_frame_read(c, 1000, &p, &len);
      if (st == DT_OK && len > 0 && p == NULL) {
        abort();
      }
      break;
    case 1:
      st = dt_frame_read_into(c, buf, sizeof(buf), &len, 1000);
      break;
    default:
      st = dt_frame_peek(c, 1000, &len);
      if (st == DT_OK) {
        st = dt_frame_read_into(c, buf, sizeof(buf), &len, 1000);
      }
      break;
    }
    if (st == DT_OK && len > MAX_FRAME) {
      abort();
    }
  }
  if (st != DT_OK && st != DT_EOF && st != DT_EUNEXPECTEDEOF &&
      st != DT_EFRAMETOOBIG) {
    abort(); /* nothing else can happen on a complete, closed stream */
  }
  if ((st == DT_EUNEXPECTEDEOF || st == DT_EFRAMETOOBIG) &&
      !dt_conn_is_broken(c)) {
    abort(); /* never left half-read and silently desynchronised */
  }
  dt_conn_free(c);
  close(sv[1]);
  return 0;
}
