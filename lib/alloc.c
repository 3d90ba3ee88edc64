#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "dialtone/common.h"

static dt_allocator_t current = {malloc, realloc, free};

static uint64_t fail_at;
static uint64_t attempts;
static uint64_t frees;

dt_status_t dt_set_allocator(const dt_allocator_t *allocator) {
  if (allocator == NULL) {
    current.malloc_fn = malloc;
    current.realloc_fn = realloc;
    current.free_fn = free;
    return DT_OK;
  }
  if (allocator->malloc_fn == NULL || allocator->realloc_fn == NULL ||
      allocator->free_fn == NULL) {
    return DT_EINVAL;
  }
  current = *allocator;
  return DT_OK;
}

/* Counts an allocation attempt and says whether the test hook fails it. */
static int injected_failure(void) {
  uint64_t n = __atomic_add_fetch(&attempts, 1, __ATOMIC_RELAXED);
  uint64_t target = __atomic_load_n(&fail_at, __ATOMIC_RELAXED);
  return target != 0 && n == target;
}

void *dt__malloc(size_t size) {
  if (injected_failure()) {
    return NULL;
  }
  return current.malloc_fn(size == 0 ? 1 : size);
}

void *dt__calloc(size_t n, size_t size) {
  if (size != 0 && n > SIZE_MAX / size) {
    return NULL;
  }
  void *p = dt__malloc(n * size);
  if (p != NULL) {
    memset(p, 0, n * size);
  }
  return p;
}

void *dt__realloc(void *ptr, size_t size) {
  if (injected_failure()) {
    return NULL;
  }
  return current.realloc_fn(ptr, size == 0 ? 1 : size);
}

void dt__free(void *ptr) {
  if (ptr != NULL) {
    __atomic_add_fetch(&frees, 1, __ATOMIC_RELAXED);
    current.free_fn(ptr);
  }
}

char *dt__strndup(const char *s, size_t n) {
  size_t len = strnlen(s, n);
  char *p = dt__malloc(len + 1);
  if (p != NULL) {
    memcpy(p, s, len);
    p[len] = '\0';
  }
  return p;
}

char *dt__strdup(const char *s) {
  return dt__strndup(s, SIZE_MAX);
}

void dt__alloc_fail_at(uint64_t n) {
  __atomic_store_n(&attempts, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&fail_at, n, __ATOMIC_RELAXED);
}

uint64_t dt__alloc_count(void) {
  return __atomic_load_n(&attempts, __ATOMIC_RELAXED);
}

uint64_t dt__free_count(void) {
  return __atomic_load_n(&frees, __ATOMIC_RELAXED);
}

void dt__alloc_reset_counts(void) {
  __atomic_store_n(&attempts, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&frees, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&fail_at, 0, __ATOMIC_RELAXED);
}
