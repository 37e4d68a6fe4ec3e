/* Allocation wrappers: the only place where running out of memory is handled, by aborting.
 * Bad input never reaches an abort; limits are checked before anything is allocated. */
#ifndef GW_ALLOC_H
#define GW_ALLOC_H

#include <stddef.h>

void *gw_malloc(size_t size);
void *gw_calloc(size_t count, size_t size);
void *gw_realloc(void *ptr, size_t size);
char *gw_strdup(const char *s);
char *gw_strndup(const char *s, size_t n);
void *gw_memdup(const void *p, size_t n);
void gw_free(void *ptr);

/* Always-on check of our own invariants (never of input). */
#define GW_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond))                                                                               \
            gw_assert_fail(#cond, __FILE__, __LINE__);                                             \
    } while (0)

_Noreturn void gw_assert_fail(const char *expr, const char *file, int line);

/* 1 under AddressSanitizer: our pools and slabs then hand every object to malloc and free,
 * so that ASan still sees each one's lifetime (use after free, overflows, leaks). */
#if defined(__SANITIZE_ADDRESS__)
#define GW_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GW_ASAN 1
#endif
#endif
#ifndef GW_ASAN
#define GW_ASAN 0
#endif

#define GW_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define GW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
