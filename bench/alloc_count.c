/*
 * alloc_count: an LD_PRELOAD library only (a CMake MODULE, which nothing can link). It defines
 * malloc, calloc, realloc and free for the whole process it is loaded into, so linking it into a
 * program or test would silently replace that program's allocator.
 *
 * It counts a process's heap allocations, for bench/upgrade_allocs.py. Every malloc, calloc,
 * realloc, aligned allocation and free adds one to a counter in a file that the process maps
 * shared (path in $ALLOC_COUNT_FILE, 64 bytes, created by the caller), so another process reads
 * the counts at any moment without stopping this one. Counting only: the real allocator does
 * the work.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

enum { C_MALLOC, C_CALLOC, C_REALLOC, C_FREE, C_N };

static volatile uint64_t *counts;
static uint64_t unused[C_N]; /* before the file is mapped, or without one */
static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);

/* dlsym() may itself calloc before real_calloc is known: serve that from a static arena. */
static char bootstrap[4096];
static size_t bootstrap_used;

static void count(int which)
{
    (counts ? counts : unused)[which]++;
}

__attribute__((constructor)) static void init(void)
{
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_free = dlsym(RTLD_NEXT, "free");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    const char *path = getenv("ALLOC_COUNT_FILE");
    int fd = path ? open(path, O_RDWR) : -1;
    if (fd < 0)
        return;
    void *p = mmap(NULL, 64, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p != MAP_FAILED)
        counts = p;
}

void *malloc(size_t n)
{
    if (!real_malloc)
        init();
    count(C_MALLOC);
    return real_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    if (!real_calloc) {
        size_t n = (a * b + 15) & ~(size_t)15;
        if (bootstrap_used + n > sizeof(bootstrap))
            return NULL;
        void *p = bootstrap + bootstrap_used;
        bootstrap_used += n;
        return p;
    }
    count(C_CALLOC);
    return real_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    if (!real_realloc)
        init();
    count(C_REALLOC);
    return real_realloc(p, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    if (!real_posix_memalign)
        init();
    count(C_MALLOC);
    return real_posix_memalign(out, align, n);
}

void free(void *p)
{
    if (!p || ((char *)p >= bootstrap && (char *)p < bootstrap + sizeof(bootstrap)))
        return;
    if (!real_free)
        init();
    count(C_FREE);
    real_free(p);
}
