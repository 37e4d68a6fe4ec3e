/* Many connections' output queues written with one system call: one io_uring submission of a
 * non-blocking send per queue, in place of one writev each.
 *
 * A loop turn that writes to many connections (a heartbeat window, a fan-out) would otherwise
 * pay a system call's entry and exit per connection; on a host with page-table isolation that
 * is a large part of a small write's cost. The sends never wait (MSG_DONTWAIT): a full socket
 * answers GW_EAGAIN at once, exactly like writev, so the caller's write path stays the same and
 * every send has completed, in order, when gw_sendbatch_send returns.
 *
 * Where io_uring is missing or forbidden (old kernels, seccomp in containers,
 * kernel.io_uring_disabled) gw_sendbatch_new returns NULL and callers write one queue at a
 * time. */
#ifndef GW_SENDBATCH_H
#define GW_SENDBATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct gw_outq;
struct gw_sendbatch;

/* A batch of up to `sends` sends; NULL (errno says why) when io_uring cannot be used here. */
struct gw_sendbatch *gw_sendbatch_new(unsigned sends);
void gw_sendbatch_free(struct gw_sendbatch *b);

/* Adds a send of q's first bytes to fd (q must not change until gw_sendbatch_send); false when
 * the batch is full. */
bool gw_sendbatch_add(struct gw_sendbatch *b, struct gw_outq *q, int fd);
size_t gw_sendbatch_count(const struct gw_sendbatch *b);

/* Sends everything added, in one system call where it can, waits for all of it, drops what
 * was written from each queue and empties the batch. Send i's result is then
 * gw_sendbatch_result(b, i): the bytes written, GW_EAGAIN (the socket is full) or GW_EIO with
 * *err set to the errno. */
void gw_sendbatch_send(struct gw_sendbatch *b);
ssize_t gw_sendbatch_result(const struct gw_sendbatch *b, size_t i, int *err);

#endif
