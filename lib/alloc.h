/* Internal allocator: every allocation in dialtone goes through these, so a
 * user allocator and the test hook that fails the N-th allocation see all of
 * them. */
#ifndef DT_ALLOC_H
#define DT_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *dt__malloc(size_t size);
void *dt__calloc(size_t n, size_t size);
void *dt__realloc(void *ptr, size_t size);
void dt__free(void *ptr);
char *dt__strdup(const char *s);
char *dt__strndup(const char *s, size_t n);

/* Test hook: the n-th allocation counted from now fails (1 = the next one);
 * 0 turns failure injection off. Counting is process-wide and atomic. */
void dt__alloc_fail_at(uint64_t n);
/* Allocations attempted since the last dt__alloc_fail_at() or reset. */
uint64_t dt__alloc_count(void);
/* Calls made to dt__free (of non-NULL pointers) since the last reset. */
uint64_t dt__free_count(void);
void dt__alloc_reset_counts(void);

#endif
