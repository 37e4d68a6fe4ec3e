#include "gw_alloc.h"
#include "gw_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void out_of_memory(size_t size)
{
    gw_log_flush();
    fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", size);
    abort();
}

void *gw_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

void *gw_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        out_of_memory(count * size);
    return p;
}

void *gw_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        out_of_memory(size);
    return p;
}

char *gw_strdup(const char *s)
{
    return gw_strndup(s, strlen(s));
}

char *gw_strndup(const char *s, size_t n)
{
    char *p = gw_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void *gw_memdup(const void *src, size_t n)
{
    void *p = gw_malloc(n);
    if (n)
        memcpy(p, src, n);
    return p;
}

void gw_free(void *ptr)
{
    free(ptr);
}

void gw_assert_fail(const char *expr, const char *file, int line)
{
    gw_log_flush();
    fprintf(stderr, "fatal: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}
