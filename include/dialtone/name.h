/**
 * @file dialtone/name.h
 * @brief Domain name validation, normalisation and reverse names.
 */
#ifndef DIALTONE_NAME_H
#define DIALTONE_NAME_H

#include <stddef.h>

#include "dialtone/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Size of a buffer that holds any valid name in presentation form,
 * escapes (`\DDD`) included, plus the terminating NUL.
 */
#define DT_NAME_BUFSIZE 1024

/**
 * Validates a domain name in presentation form and writes its normal form:
 * ASCII letters folded to lower case, no trailing dot (the root stays "."),
 * escapes in one canonical spelling (a dot or backslash inside a label
 * gets a backslash before it, other bytes outside printable ASCII become
 * `\DDD`).
 * "A.Example." and "a.example" give the same normal form.
 *
 * Rules: at most 255 bytes in wire form (253 characters without escapes),
 * labels of 1 to 63 bytes, no empty label ("a..b", ".a"), escapes `\X` or
 * `\DDD` with DDD at most 255.
 *
 * @param name    the name, borrowed; NUL-terminated.
 * @param out     receives the normal form; written only on DT_OK.
 * @param outlen  size of out; DT_NAME_BUFSIZE is always enough.
 * @return DT_OK; DT_EINVAL for NULL arguments; DT_EBADNAME for an invalid
 *         name; DT_ENAMETOOLONG when out is too small.
 */
DT_EXTERN dt_status_t dt_name_normalize(const char *name, char *out,
                                        size_t outlen);

/**
 * Builds the reverse-lookup name of an IPv4 or IPv6 address given as text:
 * "192.0.2.1" gives "1.2.0.192.in-addr.arpa" and "2001:db8::1" gives the
 * 32-nibble name under ip6.arpa.
 *
 * @param addr    address in presentation form, borrowed.
 * @param out     receives the name (no trailing dot); written only on DT_OK.
 * @param outlen  size of out; 74 bytes is always enough.
 * @return DT_OK; DT_EINVAL when addr is not an IPv4 or IPv6 address;
 *         DT_ENAMETOOLONG when out is too small.
 */
DT_EXTERN dt_status_t dt_name_reverse(const char *addr, char *out,
                                      size_t outlen);

#ifdef __cplusplus
}
#endif

#endif
