/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/*
 * Disposal of fds a peer sent us, off the caller's loop.
 *
 * close() of the last reference to a file can block for as long as the
 * peer chooses: a TCP socket with SO_LINGER, a FUSE file, a unix socket
 * whose queue holds further such fds. Neither the producer nor a consumer
 * may be stalled that way, so every fd that arrived from a peer and is not
 * kept (unexpected, refused, or the connection itself once the peer is
 * dropped) is handed here and closed by a background thread.
 *
 * That thread is not stalled by the usual tricks either: a socket's
 * SO_LINGER is switched off before its close (the kernel finishes or
 * aborts the connection in the background), and a unix socket is emptied
 * first (the fds queued in it, and in pending connections of a listening
 * one, are closed the same way, a few levels deep). Anything else whose
 * close blocks (a FUSE file) delays only the queue behind it.
 */

/* Takes fd (>= 0; -1 is ignored) and closes it on the closer thread.
 * Never blocks on the fd. When the thread cannot be started or its queue
 * is full, the fd is closed here as a last resort (counted). */
void zcv_fd_dispose(int fd);

/* zcv_fd_dispose() for each of n fds; sets each to -1. */
void zcv_fds_dispose(int *fds, unsigned n);

struct zcv_closer_stats {
	uint64_t queued;       /* fds handed to the closer thread */
	uint64_t closed_async; /* of those, closed by it */
	uint64_t closed_sync;  /* closed by the caller: queue full or no thread */
	unsigned pending;      /* queued and not closed yet */
};

/* Waits until every fd handed over so far is closed, at most timeout_ns.
 * Blocks: for shutdown paths (so an fd count at exit is exact) and tests,
 * never for a loop. Returns 0, or -ETIMEDOUT when fds are still pending
 * (the closer is stuck on one: they are closed later or at exit). */
int zcv_fd_dispose_flush(uint64_t timeout_ns);

/* Counters since the process started. */
void zcv_fd_dispose_get_stats(struct zcv_closer_stats *ret);

/* Tests only: while hold is true the closer thread takes nothing from its
 * queue, so a test can fill it and see the last-resort path. */
void zcv_fd_dispose_hold(bool hold);
