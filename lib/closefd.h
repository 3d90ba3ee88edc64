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

/* Parked descriptors: sockets dialtone keeps open and idle between
 * operations (the resolver's idle UDP sockets, udpidle.c), possibly
 * handed to an operation on another thread. When one is parked while an
 * event loop watches it, the loop defers telling its watch callback that
 * nobody waits on it until the end of the processing step, so an
 * operation that takes it again in the same step costs no epoll_ctl. Every
 * close of a descriptor that may have been parked goes through
 * dt__park_close, on any thread: a loop then knows that a parked number it
 * sees again may be a new descriptor, and announces it afresh. */
void dt__park(int fd);
void dt__park_close(int fd);

#endif
