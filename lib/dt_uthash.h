/* uthash, pointed at dialtone's allocator. Out of memory inside a hash
 * operation never exits the process: HASH_NONFATAL_OOM makes a failed add
 * leave the table as it was and set the element's hh.tbl to NULL, which
 * DT_HASH_ADDED() tests right after every HASH_ADD*. */
#ifndef DT_UTHASH_H
#define DT_UTHASH_H

#include "alloc.h"

#define HASH_NONFATAL_OOM 1
#define uthash_malloc(sz) dt__malloc(sz)
#define uthash_free(ptr, sz) dt__free(ptr)

#include <uthash.h>

/* True when the HASH_ADD* just made on elt succeeded. */
#define DT_HASH_ADDED(elt) ((elt)->hh.tbl != NULL)

#endif
