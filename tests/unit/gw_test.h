/* Minimal unit test harness: TEST(name) functions listed in a table, asserts that print both
 * operands, and a main that runs them all (or the one named on the command line). */
#ifndef GW_TEST_H
#define GW_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int gw_test_failures;

#define TEST(name) static void name(void)

#define GW_FAIL_AT(...)                                                                            \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                            \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        gw_test_failures++;                                                                        \
        return;                                                                                    \
    } while (0)

#define ASSERT_TRUE(c)                                                                             \
    do {                                                                                           \
        if (!(c))                                                                                  \
            GW_FAIL_AT("expected true: %s", #c);                                                   \
    } while (0)

#define ASSERT_INT_EQ(a, b)                                                                        \
    do {                                                                                           \
        long long _a = (long long)(a), _b = (long long)(b);                                        \
        if (_a != _b)                                                                              \
            GW_FAIL_AT("%s == %s: %lld != %lld", #a, #b, _a, _b);                                  \
    } while (0)

#define ASSERT_UINT_EQ(a, b)                                                                       \
    do {                                                                                           \
        unsigned long long _a = (unsigned long long)(a), _b = (unsigned long long)(b);             \
        if (_a != _b)                                                                              \
            GW_FAIL_AT("%s == %s: %llu != %llu", #a, #b, _a, _b);                                  \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *_a = (a), *_b = (b);                                                           \
        if (strcmp(_a, _b) != 0)                                                                   \
            GW_FAIL_AT("%s == %s: \"%s\" != \"%s\"", #a, #b, _a, _b);                              \
    } while (0)

/* Compares lengths and bytes; prints both as escaped strings. */
#define ASSERT_MEM_EQ(a, alen, b, blen)                                                            \
    do {                                                                                           \
        if (!gw_test_mem_eq(__FILE__, __LINE__, #a, (a), (alen), #b, (b), (blen)))                 \
            return;                                                                                \
    } while (0)

int gw_test_mem_eq(const char *file, int line, const char *an, const void *a, size_t alen,
                   const char *bn, const void *b, size_t blen);

struct gw_test_case {
    const char *name;
    void (*fn)(void);
};

#define TEST_CASE(name)                                                                            \
    {                                                                                              \
#name, name                                                                                \
    }

/* A connected AF_UNIX stream pair for output tests: fds[0] non-blocking with a send buffer of
 * sndbuf bytes (0: the default). Exits the test program if the system refuses. */
void gw_test_socket_pair(int fds[2], int sndbuf);
/* Reads fd (made non-blocking) until nothing is left; returns the bytes read. */
size_t gw_test_read_all(int fd, char *buf, size_t cap);

int gw_test_main(int argc, char **argv, const struct gw_test_case *cases, size_t n);

#define GW_TEST_MAIN(...)                                                                          \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        static const struct gw_test_case cases[] = {__VA_ARGS__};                                  \
        return gw_test_main(argc, argv, cases, sizeof(cases) / sizeof(cases[0]));                  \
    }

#endif
