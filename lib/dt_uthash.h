/* uthash, pointed at dialtone's allocator. Out of memory inside a hash
 * operation never exits the process: HASH_NONFATAL_OOM makes a failed add
 * leave the table as it was and set the element's hh.tbl to NULL, which
 * DT_HASH_ADDED() tests right after every HASH_ADD*. */
#ifndef DT_UTHASH_H
#define DT_UTHASH_H

#include <stdint.h>
#include <string.h>

#include "alloc.h"

static inline unsigned dt__hash_bytes(const void *key, size_t n) {
  const unsigned char *b = key;
  uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, b, 8);
    h = (h ^ w) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
    b += 8;
    n -= 8;
  }
  uint64_t w = 0;
  memcpy(&w, b, n);
  h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 29;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 32;
  return (unsigned)h;
}

#define HASH_NONFATAL_OOM 1
/* A word-at-a-time multiply-xorshift hash: on the short keys dialtone
 * hashes (names, "type+name" cache keys) it costs a sixth of uthash's
 * default Jenkins hash, which was a tenth of a cache hit. */
#define HASH_FUNCTION(keyptr, keylen, hashv)                                   \
  ((hashv) = dt__hash_bytes((keyptr), (size_t)(keylen)))
#define uthash_malloc(sz) dt__malloc(sz)
#define uthash_free(ptr, sz) dt__free(ptr)

#include <uthash.h>

/* True when the HASH_ADD* just made on elt succeeded. */
#define DT_HASH_ADDED(elt) ((elt)->hh.tbl != NULL)

#endif
