/* Closing descriptors that an event loop may be watching.
 *
 * Within one step a machine may close descriptor N and open a socket that
 * gets the same number (lookup failover, the next dial attempt). With
 * epoll the old registration vanished with the close, so a loop that only
 * compares "N wanted before" with "N wanted now" would never register the
 * new socket. Every close of a machine's descriptor therefore goes through
 * here: when the calling thread is running an event loop's machines (see
 * dt__loop_enter), the number is noted, and the loop announces it as
 * removed and added again. Outside a loop these are plain close(). */
#ifndef DT_CLOSEFD_H
#define DT_CLOSEFD_H

/* close(fd), errno preserved; noted by the current loop, if any. */
void dt__close(int fd);
/* Notes that fd was closed by other means (the dialer's socket seam). */
void dt__closed(int fd);

#endif
