/**
 * @file dialtone/common.h
 * @brief Export macro, status codes and the allocator hook shared by every
 * dialtone module.
 */
#ifndef DIALTONE_COMMON_H
#define DIALTONE_COMMON_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Marks a declaration as part of the shared library's public ABI. */
#if defined(DT_BUILDING) && defined(__GNUC__)
#define DT_EXTERN __attribute__((visibility("default")))
#else
#define DT_EXTERN
#endif

/**
 * Every status a dialtone call can return: X(name, text).
 *
 * One list generates the enum, dt_strerror() and dt_status_name(), so codes
 * and texts cannot drift. New codes are only appended.
 */
#define DT_STATUS_MAP(X)                                                       \
  X(OK, "success")                                                             \
  X(EINVAL, "invalid argument")                                                \
  X(EBADNAME, "invalid domain name")                                           \
  X(ENOMEM, "out of memory")                                                   \
  X(ENXDOMAIN, "no such name (NXDOMAIN)")                                      \
  X(ENODATA, "name has no records of the requested type")                      \
  X(ESERVFAIL, "server failure (SERVFAIL)")                                    \
  X(EREFUSED, "query refused by server (REFUSED)")                             \
  X(ETIMEDOUT, "timed out: no reply")                                          \
  X(EBADREPLY, "malformed or unexpected reply")                                \
  X(ECONNREFUSED, "connection refused")                                        \
  X(ENETUNREACH, "network unreachable")                                        \
  X(EHOSTUNREACH, "host unreachable")                                          \
  X(ECONNRESET, "connection reset by peer")                                    \
  X(EOF, "end of stream")                                                      \
  X(EUNEXPECTEDEOF, "unexpected end of stream inside a frame")                 \
  X(EFRAMETOOBIG, "frame larger than the allowed maximum")                     \
  X(ECANCELED, "operation canceled")                                           \
  X(ESYS, "system error (see errno)")                                          \
  X(ENOENT, "no such file or directory")                                       \
  X(EACCES, "permission denied")                                               \
  X(EMFILE, "too many open files")                                             \
  X(EADDRINUSE, "address already in use")                                      \
  X(EAFNOSUPPORT, "address family not supported")                              \
  X(ENAMETOOLONG, "name or path too long")                                     \
  X(ETOOBIG, "input larger than the allowed maximum")                          \
  X(ENOSERVER, "no name server configured")                                    \
  X(EFORMERR, "server could not parse the query (FORMERR)")                    \
  X(ENOTIMP, "server does not implement the query (NOTIMP)")                   \
  X(ELOOP, "CNAME chain loops or is too long")                                 \
  X(EBUSY, "resource busy: limit reached")                                     \
  X(EBROKEN, "connection is broken and cannot be used")                        \
  X(ENOTSUP, "operation not supported")                                        \
  X(ESTALECONN, "reused connection failed before any reply arrived")

/** Status of a dialtone call; DT_OK is 0, every failure is non-zero. */
typedef enum {
#define DT__STATUS_ENUM(name, text) DT_##name,
  DT_STATUS_MAP(DT__STATUS_ENUM)
#undef DT__STATUS_ENUM
      DT__STATUS_COUNT
} dt_status_t;

/**
 * Human-readable text for a status.
 * @param status  any value, known or not.
 * @return a static string; never NULL (unknown codes give "unknown status").
 */
DT_EXTERN const char *dt_strerror(dt_status_t status);

/**
 * The status's symbolic name, such as "DT_ENXDOMAIN".
 * @param status  any value, known or not.
 * @return a static string; never NULL (unknown codes give "DT_UNKNOWN").
 */
DT_EXTERN const char *dt_status_name(dt_status_t status);

/**
 * Maps an errno value to the closest status (ECONNREFUSED to
 * DT_ECONNREFUSED, ENOMEM to DT_ENOMEM, ...); anything without a closer
 * match is DT_ESYS. Calls that fail with a status derived from errno leave
 * errno set to the raw value for diagnostics.
 * @param err  an errno value.
 * @return the status; DT_OK for 0.
 */
DT_EXTERN dt_status_t dt_status_from_errno(int err);

/** Memory functions used by every allocation dialtone makes. */
typedef struct {
  void *(*malloc_fn)(size_t size);             /**< as malloc() */
  void *(*realloc_fn)(void *ptr, size_t size); /**< as realloc() */
  void (*free_fn)(void *ptr);                  /**< as free() */
} dt_allocator_t;

/**
 * Replaces the allocator (all three functions must be set), or restores the
 * C library's with NULL. Call it before creating any dialtone object: memory
 * is always released through the allocator that made it.
 * @param allocator  the functions, copied; NULL for the C library's.
 * @return DT_OK, or DT_EINVAL when a function is missing.
 */
DT_EXTERN dt_status_t dt_set_allocator(const dt_allocator_t *allocator);

/** The library's version. @return a static string, such as "0.1.0". */
DT_EXTERN const char *dt_version(void);

#ifdef __cplusplus
}
#endif

#endif
