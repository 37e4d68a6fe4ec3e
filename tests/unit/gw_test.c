#include "gw_test.h"

#include <ctype.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

int gw_test_failures;

static void print_escaped(const unsigned char *p, size_t n)
{
    size_t shown = n > 200 ? 200 : n;
    fputc('"', stderr);
    for (size_t i = 0; i < shown; i++) {
        if (isprint(p[i]) && p[i] != '"' && p[i] != '\\')
            fputc(p[i], stderr);
        else
            fprintf(stderr, "\\x%02x", p[i]);
    }
    fputc('"', stderr);
    if (shown < n)
        fprintf(stderr, "...(%zu bytes)", n);
}

int gw_test_mem_eq(const char *file, int line, const char *an, const void *a, size_t alen,
                   const char *bn, const void *b, size_t blen)
{
    if (alen == blen && (alen == 0 || memcmp(a, b, alen) == 0))
        return 1;
    fprintf(stderr, "%s:%d: %s == %s:\n  ", file, line, an, bn);
    print_escaped(a, alen);
    fprintf(stderr, " (%zu)\n  ", alen);
    print_escaped(b, blen);
    fprintf(stderr, " (%zu)\n", blen);
    gw_test_failures++;
    return 0;
}

void gw_test_socket_pair(int fds[2], int sndbuf)
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) {
        perror("socketpair");
        exit(1);
    }
    if (sndbuf)
        setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    fcntl(fds[0], F_SETFL, O_NONBLOCK);
}

size_t gw_test_read_all(int fd, char *buf, size_t cap)
{
    fcntl(fd, F_SETFL, O_NONBLOCK);
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n <= 0)
            return got;
        got += (size_t)n;
    }
}

int gw_test_main(int argc, char **argv, const struct gw_test_case *cases, size_t n)
{
    size_t ran = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)
            continue;
        int before = gw_test_failures;
        cases[i].fn();
        ran++;
        if (gw_test_failures != before) {
            failed++;
            fprintf(stderr, "FAIL %s\n", cases[i].name);
        } else {
            printf("ok   %s\n", cases[i].name);
        }
    }
    printf("%zu passed, %zu failed\n", ran - failed, failed);
    return failed || ran == 0 ? 1 : 0;
}
