/*
 * loopback_floor: the kernel's cost of one broadcast on loopback, with no server in between.
 *
 *   loopback_floor [--conns 1000] [--bytes 80] [--sweeps 2000] [--cpu-sender C --cpu-reader C]
 *
 * It opens N TCP connections over 127.0.0.1 to a forked child that reads them all with epoll
 * (level-triggered, discarding the data, as a client would), then, N times per sweep, writes
 * one B-byte message to each of the N sockets with a plain write() (TCP_NODELAY, like the
 * gateway's websockets), sweep after sweep. A sweep is the physical lower bound for a
 * publish to N recipients: the last socket of a broadcast cannot be written earlier than
 * N kernel sends after the first. Between sweeps it waits until the reader has drained
 * everything (the reader acknowledges each whole sweep over a pipe), so every sweep starts from
 * empty socket buffers, like a broadcast on an idle server.
 *
 * Prints one JSON line:
 *   {"tool":"loopback_floor","conns":N,"bytes":B,"sweeps":S,
 *    "sweep_us":{"p50":..,"p90":..,"p99":..,"min":..,"max":..},"write_us_p50":..,
 *    "sender_cpu_us_per_write":..}
 * sweep_us: wall time of one sweep (N writes); write_us_p50 = sweep p50 / N;
 * sender_cpu_us_per_write: the sender's CPU time (user + system) over all sweeps / writes
 * (on loopback the sender also pays for much of the receiver's TCP processing).
 * --cpu-sender / --cpu-reader pin the two processes (sched_setaffinity), optional.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void pin(int cpu)
{
    cpu_set_t set;

    if (cpu < 0)
        return;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) < 0)
        warn("sched_setaffinity(%d)", cpu);
}

/* The reader: accepts N connections, reads everything, writes one byte to `ack` each time
 * another N * bytes have arrived (one sweep). Ends at EOF on all of them. */
static void reader(int lfd, int n, long bytes, int ack, int cpu)
{
    int ep = epoll_create1(0), open_conns = 0, accepted = 0;
    long long got = 0, per_sweep = (long long)n * bytes, acked = 0;
    struct epoll_event ev = {.events = EPOLLIN}, evs[256];
    static char buf[65536];

    pin(cpu);
    ev.data.fd = lfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    while (accepted < n || open_conns > 0) {
        int k = epoll_wait(ep, evs, 256, 60000);

        if (k <= 0) {
            if (k < 0 && errno == EINTR)
                continue;
            errx(1, "reader: nothing for 60 s");
        }
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;

            if (fd == lfd) {
                int c = accept(lfd, NULL, NULL);

                if (c < 0)
                    err(1, "accept");
                ev.data.fd = c;
                epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                accepted++;
                open_conns++;
                if (accepted == n)
                    epoll_ctl(ep, EPOLL_CTL_DEL, lfd, NULL);
                continue;
            }
            ssize_t r = read(fd, buf, sizeof(buf));

            if (r > 0) {
                got += r;
                while (got - acked >= per_sweep) {
                    acked += per_sweep;
                    if (write(ack, "x", 1) != 1)
                        err(1, "ack");
                }
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(fd);
                open_conns--;
            }
        }
    }
    _exit(0);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"conns", required_argument, NULL, 'n'},      {"bytes", required_argument, NULL, 'b'},
        {"sweeps", required_argument, NULL, 's'},     {"cpu-sender", required_argument, NULL, 'S'},
        {"cpu-reader", required_argument, NULL, 'R'}, {NULL, 0, NULL, 0},
    };
    int n = 1000, sweeps = 2000, cpu_s = -1, cpu_r = -1, ch, lfd, ackp[2], one = 1;
    long bytes = 80;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t sl = sizeof(sa);
    struct rlimit rl;
    struct rusage ru0, ru1;
    pid_t child;

    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            n = atoi(optarg);
            break;
        case 'b':
            bytes = atol(optarg);
            break;
        case 's':
            sweeps = atoi(optarg);
            break;
        case 'S':
            cpu_s = atoi(optarg);
            break;
        case 'R':
            cpu_r = atoi(optarg);
            break;
        default:
            fprintf(stderr, "usage: loopback_floor [--conns N] [--bytes B] [--sweeps S] "
                            "[--cpu-sender C] [--cpu-reader C]\n");
            return 2;
        }
    }
    if (n < 1 || bytes < 1 || bytes > 65536 || sweeps < 1)
        errx(2, "need --conns >= 1, 1 <= --bytes <= 65536, --sweeps >= 1");
    getrlimit(RLIMIT_NOFILE, &rl);
    if ((rlim_t)n + 16 > rl.rlim_cur)
        errx(2, "--conns %d needs more fds than the limit %llu", n,
             (unsigned long long)rl.rlim_cur);
    signal(SIGPIPE, SIG_IGN);

    lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0)
        err(1, "listen");
    if (pipe(ackp) < 0)
        err(1, "pipe");
    child = fork();
    if (child < 0)
        err(1, "fork");
    if (child == 0) {
        close(ackp[0]);
        reader(lfd, n, bytes, ackp[1], cpu_r);
    }
    close(ackp[1]);
    close(lfd);
    pin(cpu_s);

    int *fds = calloc((size_t)n, sizeof(int));
    double *sweep_us = calloc((size_t)sweeps, sizeof(double));
    char *msg = malloc((size_t)bytes);

    if (!fds || !sweep_us || !msg)
        err(1, "calloc");
    memset(msg, 'x', (size_t)bytes);
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)) < 0)
            err(1, "connect %d", i);
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    getrusage(RUSAGE_SELF, &ru0);
    for (int s = 0; s < sweeps; s++) {
        char a;
        double t0 = now_us();

        for (int i = 0; i < n; i++)
            if (write(fds[i], msg, (size_t)bytes) != bytes)
                err(1, "write");
        sweep_us[s] = now_us() - t0;
        /* Wait for the reader to have everything: the next sweep starts from empty buffers. */
        if (read(ackp[0], &a, 1) != 1)
            errx(1, "the reader died");
    }
    getrusage(RUSAGE_SELF, &ru1);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    waitpid(child, NULL, 0);

    double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) * 1e6 +
                 (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) +
                 (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1e6 +
                 (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
    qsort(sweep_us, (size_t)sweeps, sizeof(double), cmp_double);
#define PCT(p) sweep_us[(int)((double)(sweeps - 1) * (p))]
    printf("{\"tool\":\"loopback_floor\",\"conns\":%d,\"bytes\":%ld,\"sweeps\":%d,"
           "\"sweep_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"min\":%.1f,\"max\":%.1f},"
           "\"write_us_p50\":%.3f,\"sender_cpu_us_per_write\":%.3f}\n",
           n, bytes, sweeps, PCT(0.5), PCT(0.9), PCT(0.99), sweep_us[0], sweep_us[sweeps - 1],
           PCT(0.5) / n, cpu / ((double)n * sweeps));
    return 0;
}
