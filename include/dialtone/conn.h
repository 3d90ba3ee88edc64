/**
 * @file dialtone/conn.h
 * @brief Connections: buffered reads and writes and length-prefixed frames
 * over a connected stream socket, with a deadline on every call.
 *
 * A dt_conn_t owns a connected SOCK_STREAM socket (TCP, Unix; dialed,
 * pooled or accepted) and two buffers. Writes are gathered in the write
 * buffer and leave in large system calls; reads fill the read buffer with
 * large system calls, and data already buffered costs none. A program that
 * sends thousands of small frames makes a handful of system calls.
 *
 * Frames: a big-endian payload length, 4 bytes (or 2, as DNS over TCP,
 * RFC 1035 4.2.2), then the payload. A frame longer than the connection's
 * maximum is refused on read and on write with DT_EFRAMETOOBIG before any
 * allocation, and the connection is marked broken.
 *
 * Timeouts: every call that may do I/O takes timeout_ms, the longest it
 * may wait for the socket, counted from the first time it has to wait.
 * Negative waits without limit; 0 does what can be done without waiting.
 * A timeout bounds waiting only: a call whose frame or bytes are buffered,
 * or whose socket is ready, completes whatever the timeout. Blocking
 * and non-blocking sockets both work: dialtone never changes the
 * descriptor's flags and waits with poll(). Interrupted calls are
 * retried; SIGPIPE is never raised.
 *
 * Broken: a connection whose byte stream can no longer be trusted (a
 * system error, a frame cut by end of stream or by a timeout after part of
 * it was consumed or sent, an oversized frame) is marked broken and every
 * later I/O call returns DT_EBROKEN. A timeout that leaves the stream
 * intact (nothing of the frame consumed or accepted yet) does not break
 * it: the same call can be made again.
 *
 * Reused connections: on a connection dt_pool_acquire() took from its idle
 * list, any I/O failure or end of stream before the first byte is received
 * returns DT_ESTALECONN (and breaks the connection): the peer most likely
 * closed it while it sat idle, and idempotent work can be retried on a
 * fresh connection. Timeouts keep their own status.
 *
 * Threads: one thread may read while another writes; two threads must not
 * read (or write) the same connection at once.
 */
#ifndef DIALTONE_CONN_H
#define DIALTONE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dialtone/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An opaque connection; see dt_conn_new(). */
typedef struct dt_conn dt_conn_t;

/** Default size of each buffer: 64 KiB. */
#define DT_CONN_BUFFER_DEFAULT 65536u
/** Smallest buffer size accepted. */
#define DT_CONN_BUFFER_MIN 16u
/** Default maximum frame payload: 16 MiB. */
#define DT_CONN_MAX_FRAME_DEFAULT (16u * 1024u * 1024u)

/**
 * Connection options. Fill with dt_conn_opts_init(), then change fields;
 * the connection copies them. New fields are only appended.
 */
typedef struct {
  /** Read buffer, bytes (default 64 KiB, at least DT_CONN_BUFFER_MIN).
   * Frames that fit in it are read without a copy. */
  size_t read_buffer_size;
  /** Write buffer, bytes (default 64 KiB, at least DT_CONN_BUFFER_MIN).
   * Writes leave when it is full or on dt_flush(). */
  size_t write_buffer_size;
  /** Largest frame payload accepted on read and on write (default
   * 16 MiB); larger values are lowered to what the header can say. */
  size_t max_frame_size;
  /** Bytes of the length header: 4 (default) or 2 (DNS over TCP, whose
   * frames are at most 65535 bytes). */
  unsigned frame_header_size;
  /** Test seam: a monotonic clock in microseconds (NULL: the system's). */
  uint64_t (*clock_us)(void *ctx);
  void *clock_ctx; /**< passed to clock_us */
} dt_conn_opts_t;

/** One frame's payload for dt_frame_writev(); the bytes are borrowed. */
typedef struct {
  const void *base; /**< the payload's first byte */
  size_t len;       /**< its length */
} dt_iovec_t;

/** Sets every option to its default. @param opts  the options to fill. */
DT_EXTERN void dt_conn_opts_init(dt_conn_opts_t *opts);

/**
 * Wraps a connected stream socket.
 *
 * @param fd    a connected SOCK_STREAM socket, blocking or not. The
 *              connection owns it on DT_OK only (dt_conn_free() closes
 *              it); on failure the caller still owns it.
 * @param opts  options, copied; NULL for the defaults.
 * @param out   set to the new connection on DT_OK only; free with
 *              dt_conn_free().
 * @return DT_OK; DT_EINVAL for a negative or closed fd, a NULL out or a
 *         bad option; DT_ENOTSUP when fd is not a stream socket; DT_ENOMEM.
 */
DT_EXTERN dt_status_t dt_conn_new(int fd, const dt_conn_opts_t *opts,
                                  dt_conn_t **out);

/**
 * Closes the descriptor (unless released) and frees the connection and its
 * buffers; NULL does nothing. Output still buffered is discarded: call
 * dt_flush() first. No call may be running on the connection.
 * @param conn  the connection, or NULL.
 */
DT_EXTERN void dt_conn_free(dt_conn_t *conn);

/**
 * The connection's descriptor, still owned by the connection (for poll()
 * or socket options; reading or writing it directly bypasses the
 * buffers).
 * @param conn  the connection.
 * @return the descriptor; -1 after dt_conn_release_fd().
 */
DT_EXTERN int dt_conn_fd(const dt_conn_t *conn);

/**
 * Hands the descriptor back to the caller, open, for the caller's own I/O.
 * The connection keeps nothing but its buffers: it is marked broken and
 * must still be freed with dt_conn_free(), which then closes nothing.
 *
 * @param conn  the connection.
 * @param fd  set on DT_OK to the descriptor, now owned by the caller.
 * @return DT_OK; DT_EBUSY when bytes are buffered in either direction
 *         (they would be lost: flush, or read them, first); DT_EINVAL when
 *         the descriptor was already released or an argument is NULL.
 */
DT_EXTERN dt_status_t dt_conn_release_fd(dt_conn_t *conn, int *fd);

/**
 * Whether the connection is broken (see the file comment).
 * @param conn  the connection.
 * @return true when broken, and for NULL.
 */
DT_EXTERN bool dt_conn_is_broken(const dt_conn_t *conn);

/**
 * Bytes received and buffered but not yet read by the caller.
 * @param conn  the connection.
 * @return the count.
 */
DT_EXTERN size_t dt_conn_pending_input(const dt_conn_t *conn);

/**
 * Bytes accepted by writes but not yet sent.
 * @param conn  the connection.
 * @return the count.
 */
DT_EXTERN size_t dt_conn_pending_output(const dt_conn_t *conn);

/**
 * Reads up to cap bytes: buffered bytes first, without a system call;
 * otherwise waits for at least one byte (reads of at least the buffer's
 * size go straight into buf).
 *
 * @param conn        the connection.
 * @param buf         caller storage for cap bytes.
 * @param cap         the most bytes to read.
 * @param n           set on DT_OK to the number of bytes read, at least 1
 *                    (0 when cap is 0).
 * @param timeout_ms  longest wait for the socket; negative: no limit.
 * @return DT_OK; DT_EOF at the end of the stream; DT_ETIMEDOUT (nothing
 *         consumed); DT_EBROKEN; DT_EINVAL; DT_ECONNRESET or another
 *         status from errno, and the connection is broken.
 */
DT_EXTERN dt_status_t dt_conn_read(dt_conn_t *conn, void *buf, size_t cap,
                                   size_t *n, int timeout_ms);

/**
 * Writes len bytes through the write buffer: they are copied into it when
 * they fit in its free space, or after a flush when they fit in the
 * buffer; more than the buffer holds leave together with the buffered
 * bytes in vectored sends, without a copy (only a last part that fits in
 * the buffer is copied when the socket is full). Returns once every byte
 * is sent or buffered.
 *
 * @param conn        the connection.
 * @param buf         the bytes, borrowed for the call only.
 * @param len         how many.
 * @param timeout_ms  longest wait for the socket; negative: no limit.
 * @return DT_OK; DT_ETIMEDOUT: none of the bytes were accepted, the
 *         connection is intact, unless len exceeds the write buffer and
 *         some were sent (then it is broken); DT_EBROKEN; DT_EINVAL (also
 *         after dt_conn_shutdown_write()); DT_ECONNRESET when the peer is
 *         gone, or another status from errno, and the connection is
 *         broken.
 */
DT_EXTERN dt_status_t dt_conn_write(dt_conn_t *conn, const void *buf,
                                    size_t len, int timeout_ms);

/**
 * Sends everything buffered for writing.
 * @param conn        the connection.
 * @param timeout_ms  longest wait for the socket; negative: no limit.
 * @return DT_OK when the buffer is empty; DT_ETIMEDOUT with the rest still
 *         buffered (the connection is intact; call again); DT_EBROKEN;
 *         DT_ECONNRESET or another status from errno, and the connection
 *         is broken.
 */
DT_EXTERN dt_status_t dt_flush(dt_conn_t *conn, int timeout_ms);

/**
 * Flushes, then shuts down the sending direction (shutdown SHUT_WR): the
 * peer reads end of stream after the last byte, and can still answer.
 * Later writes fail with DT_EINVAL.
 * @param conn        the connection.
 * @param timeout_ms  longest wait for the flush; negative: no limit.
 * @return DT_OK; what dt_flush() returns; a status from errno.
 */
DT_EXTERN dt_status_t dt_conn_shutdown_write(dt_conn_t *conn, int timeout_ms);

/**
 * Reads the next frame and returns a view of its payload, without a copy.
 * A frame already in the read buffer costs no system call. A frame larger
 * than the read buffer (up to the maximum) is read into a block allocated
 * for it; dt_frame_read_into() avoids that.
 *
 * @param conn        the connection.
 * @param timeout_ms  longest wait for the socket; negative: no limit.
 * @param payload  set on DT_OK to the payload, owned by the connection and
 *                 valid until the next read call on it or dt_conn_free().
 * @param len      set on DT_OK to the payload's length (0 is a frame).
 * @return DT_OK; DT_EOF when the stream ended cleanly between frames;
 *         DT_EUNEXPECTEDEOF when it ended inside a frame (broken);
 *         DT_EFRAMETOOBIG when the header announces more than the maximum
 *         (broken, nothing allocated); DT_ETIMEDOUT (the connection is
 *         intact unless the frame was larger than the read buffer and
 *         partly read: then it is broken); DT_EBROKEN; DT_EINVAL;
 *         DT_ENOMEM (nothing consumed); DT_ECONNRESET or another status
 *         from errno (broken).
 */
DT_EXTERN dt_status_t dt_frame_read(dt_conn_t *conn, int timeout_ms,
                                    const uint8_t **payload, size_t *len);

/**
 * Waits for the next frame's header and says how long its payload is,
 * consuming nothing (to size the buffer of dt_frame_read_into()).
 * @param conn        the connection.
 * @param timeout_ms  longest wait for the socket; negative: no limit.
 * @param len  set on DT_OK to the payload's length.
 * @return as dt_frame_read(), except DT_ENOMEM.
 */
DT_EXTERN dt_status_t dt_frame_peek(dt_conn_t *conn, int timeout_ms,
                                    size_t *len);

/**
 * Reads the next frame's payload into caller memory. Bytes already
 * buffered are copied; the rest of a frame larger than the read buffer is
 * read straight into buf, with no intermediate copy.
 *
 * @param conn        the connection.
 * @param buf         caller storage for cap bytes; written only up to the
 *                    payload's length.
 * @param cap         the size of buf.
 * @param len         set on DT_OK to the payload's length.
 * @param timeout_ms  longest wait for the socket; negative: no limit.
 * @return as dt_frame_read(), plus DT_ETOOBIG when the payload is longer
 *         than cap (nothing consumed, not broken: see dt_frame_peek()).
 */
DT_EXTERN dt_status_t dt_frame_read_into(dt_conn_t *conn, void *buf, size_t cap,
                                         size_t *len, int timeout_ms);

/**
 * Writes one frame. A frame that fits in the write buffer is copied into
 * it, after a flush when the buffer is too full: buffered frames leave
 * when the buffer is full or on dt_flush(), and no send is longer than the
 * buffer. A larger frame leaves with the buffered bytes in one vectored
 * send of buffer, header and payload, without a copy (if the socket fills
 * up, the last part, once it fits in the buffer, is copied there).
 *
 * @param conn        the connection.
 * @param payload     len bytes, borrowed for the call only (NULL when len
 *                    is 0).
 * @param len         the payload's length, at most the maximum frame.
 * @param timeout_ms  longest wait for the socket; negative: no limit.
 * @return DT_OK once the frame is sent or buffered; DT_EFRAMETOOBIG when
 *         len exceeds the maximum (nothing written, broken); DT_ETIMEDOUT:
 *         the frame was not accepted and the connection is intact, unless
 *         the frame was larger than the write buffer and partly sent (then
 *         broken); DT_EBROKEN; DT_EINVAL (also after
 *         dt_conn_shutdown_write()); DT_ECONNRESET when the peer is gone,
 *         or another status from errno (broken).
 */
DT_EXTERN dt_status_t dt_frame_write(dt_conn_t *conn, const void *payload,
                                     size_t len, int timeout_ms);

/**
 * Writes n frames, one per element, then flushes once: the batch costs
 * the system calls of its bytes, not of its frames. Every length is
 * checked before anything is written.
 *
 * @param conn    the connection.
 * @param frames  n payloads, borrowed for the call only.
 * @param n       how many frames.
 * @param timeout_ms  limit for the whole batch.
 * @return DT_OK when every frame is sent; DT_EFRAMETOOBIG (nothing
 *         written, broken); DT_ETIMEDOUT with the connection intact when
 *         no frame was accepted, or when all were and only the final flush
 *         timed out (the rest stays buffered, as with dt_flush()); a
 *         failure between those cases breaks the connection; otherwise as
 *         dt_frame_write().
 */
DT_EXTERN dt_status_t dt_frame_writev(dt_conn_t *conn, const dt_iovec_t *frames,
                                      size_t n, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
