/* Internal name helpers for the resolver and conf modules. None of them
 * allocates: callers pass the storage. Names are in presentation form with
 * the escapes of dialtone/name.h ("\X", "\DDD"). */
#ifndef DT_NAME_H
#define DT_NAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dialtone/common.h"
#include "dialtone/name.h"

/* Largest name in wire form, final root label included (RFC 1035 2.3.4). */
#define DT_NAME_WIRE_MAX 255

/* Converts a presentation name to uncompressed wire form: length-prefixed
 * labels ending with the root label; "." gives the single byte 0. The name
 * is always taken as fully qualified, trailing dot or not. Case is kept.
 * out and *wirelen are written only on DT_OK.
 * Returns DT_EINVAL for NULL arguments, DT_EBADNAME for an invalid name,
 * DT_ENAMETOOLONG when outlen is smaller than the wire form (a buffer of
 * DT_NAME_WIRE_MAX bytes is always enough). */
dt_status_t dt__name_to_wire(const char *name, uint8_t *out, size_t outlen,
                             size_t *wirelen);

/* Number of unescaped dots in name, a trailing dot not counted: the "dots"
 * that resolv.conf's ndots option compares with. Does not validate. */
size_t dt__name_ndots(const char *name);

/* True when name ends with an unescaped dot (it is fully qualified and
 * takes no search suffix). Does not validate. */
bool dt__name_is_absolute(const char *name);

/* True when both are valid names with the same wire form, ASCII letters
 * compared without case: "A.example." equals "a.example", "a\046b" equals
 * "a\.b". An invalid name equals nothing. */
bool dt__name_equal(const char *a, const char *b);

/* Writes "name.suffix" to out, for search-list expansion. name must be
 * relative (not end with a dot); a trailing dot of suffix is dropped, and a
 * suffix of "." (the root) gives name alone. The spelling of both parts is
 * kept (no case folding). out is written only on DT_OK.
 * Returns DT_EINVAL for NULL arguments or an absolute name, DT_EBADNAME
 * when either part is invalid or the result exceeds 255 bytes in wire form,
 * DT_ENAMETOOLONG when out is too small (DT_NAME_BUFSIZE is always
 * enough: a valid name needs at most 4 characters per wire byte). */
dt_status_t dt__name_join(const char *name, const char *suffix, char *out,
                          size_t outlen);

#endif
