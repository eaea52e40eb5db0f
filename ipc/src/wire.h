/* SPDX-License-Identifier: MIT */
/*
 * Encoding, validation and fd passing for the messages of protocol.h.
 * Private to libzcv.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "closer.h"
#include "protocol.h"

/* Any message, aligned for every body; receive buffers are this type so a
 * packet can be read once and then looked at as whatever its header says. */
union zcv_msg {
	struct zcv_msg_hdr hdr;
	struct zcv_msg_hello hello;
	struct zcv_msg_welcome welcome;
	struct zcv_msg_buffer buffer;
	struct zcv_msg_frame frame;
	struct zcv_msg_release release;
	struct zcv_msg_bye bye;
	struct zcv_msg_status status;
	uint8_t raw[ZCV_MSG_MAX_SIZE];
};

/* Body size this build knows for a message type (header included), or 0
 * for an unknown type. */
size_t zcv_msg_known_size(unsigned type);

/* Short name of a message type for debug output ("HELLO", ..., "?"). */
const char *zcv_msg_type_name(unsigned type);

/* Zeroes msg and fills its header: type, ZCV_PROTOCOL_VERSION and the
 * known size of the type. Returns that size (what to send). */
size_t zcv_msg_init(void *msg, enum zcv_msg_type type);

/* Fills a BYE; reason may be NULL and is truncated to fit. Returns its size. */
size_t zcv_msg_init_bye(struct zcv_msg_bye *bye, int error, const char *reason);

/*
 * Checks a received message against everything that can be checked
 * without connection state: len covers a header, hdr.size == len, the body
 * is at least as large as the known one for the type, the type is known,
 * the fd count is what the type allows (only BUFFER carries fds: 1 to
 * ZCV_MSG_MAX_FDS of them, exactly its n_fds field), indices are below
 * ZCV_POOL_MAX_BUFFERS, strings are NUL-terminated, enum fields are known.
 * State checks (generation current, index < n_buffers, something is held)
 * are the caller's. Returns 0 or -EPROTO. Never touches fds.
 */
int zcv_msg_validate(const void *buf, size_t len, unsigned n_fds);

/*
 * Sends one message with n_fds fds (borrowed; may be 0) without blocking
 * and without SIGPIPE. Returns 0, -EAGAIN when the socket is full, -EINVAL
 * for more than ZCV_MSG_MAX_FDS fds, or the errno of sendmsg (-EPIPE,
 * -ECONNRESET, ...).
 */
int zcv_msg_send(int sock, const void *msg, size_t len, const int *fds, unsigned n_fds);

/* The most fds one message can carry (SCM_MAX_FD of the kernel). */
#define ZCV_KERNEL_MAX_FDS 253

/*
 * Receives one packet without blocking into buf (size bytes, zero-filled
 * first) and up to ZCV_MSG_MAX_FDS fds into fds[] (new fds, CLOEXEC, the
 * caller must close them, or zcv_fds_dispose() them when they came from a
 * peer). Returns the packet length and sets *ret_n_fds, 0 for end of file
 * (no fds), -EAGAIN when nothing is pending, -EPROTO for a packet larger
 * than size (MSG_TRUNC), one whose fds did not all arrive (MSG_CTRUNC) or
 * with more than ZCV_MSG_MAX_FDS, or the errno of recvmsg. On any error
 * every fd that arrived has gone to zcv_fds_dispose().
 *
 * The control buffer has room for ZCV_KERNEL_MAX_FDS: fds the kernel
 * cannot install are released in the receiver's context, where their
 * final close could block (a lingering TCP socket); so every fd a peer
 * sends is taken in and disposed of off the loop instead. (When the
 * process has no free fd slot the kernel still releases the rest here:
 * keep RLIMIT_NOFILE well above what the process uses.)
 */
int zcv_msg_recv(int sock, void *buf, size_t size, int fds[ZCV_MSG_MAX_FDS], unsigned *ret_n_fds);

/* zcv_msg_recv() into a union zcv_msg followed by zcv_msg_validate(): on a
 * validation failure the fds are disposed of and -EPROTO returned. */
int zcv_msg_read(int sock, union zcv_msg *msg, int fds[ZCV_MSG_MAX_FDS], unsigned *ret_n_fds);

/* Messages read in one recvmmsg (zcv_msg_read_batch). */
#define ZCV_MSG_BATCH 8
struct zcv_msg_batch {
	unsigned n;
	union zcv_msg msgs[ZCV_MSG_BATCH];
	/* each message's outcome as zcv_msg_read() returns it: its length
	 * (its fds in fds[i], the caller's), 0 (the peer hung up, or an
	 * empty packet: stop there, but dispose of the fds of later slots),
	 * -EPROTO (its fds disposed of already) */
	int res[ZCV_MSG_BATCH];
	int fds[ZCV_MSG_BATCH][ZCV_MSG_MAX_FDS];
	unsigned n_fds[ZCV_MSG_BATCH];
};

/*
 * Up to max (at most ZCV_MSG_BATCH; 0: that many) messages in one
 * recvmmsg(), each validated as zcv_msg_read() does. Returns the number
 * read (b->n; slot i's outcome in b->res[i]), 0 when the peer hung up
 * before any, or a negative errno (-EAGAIN: nothing queued). Fewer than
 * max read means the queue was empty then: a level-triggered poll says
 * when more arrives, so no read is needed to find out (one syscall a
 * wake-up instead of two).
 */
int zcv_msg_read_batch(int sock, struct zcv_msg_batch *b, unsigned max);

/*
 * zcv_msg_read_batch() that waits on a blocking socket (O_NONBLOCK clear)
 * for the first message (recvmmsg with MSG_WAITFORONE: the rest of what is
 * queued then comes in the same call), for at most the socket's
 * SO_RCVTIMEO. Returns as zcv_msg_read_batch(), -EAGAIN (or -EWOULDBLOCK)
 * when SO_RCVTIMEO ran out, -EINTR when a signal came (not retried: with
 * SO_RCVTIMEO set the kernel does not restart it even under SA_RESTART,
 * and a caller's signal flag must be seen).
 */
int zcv_msg_read_batch_wait(int sock, struct zcv_msg_batch *b, unsigned max);

/* Closes n fds (skipping -1) and sets them to -1. */
void zcv_close_fds(int *fds, unsigned n);

/* Sockets (socket.c). */

/*
 * Creates a listening SOCK_SEQPACKET socket (non-blocking, CLOEXEC) bound
 * at path with the given file mode. A socket file already there is probed:
 * when a producer answers, -EADDRINUSE; when nobody does (ECONNREFUSED), it
 * is stale and replaced. Anything else at path: -EEXIST. Returns a new fd
 * the caller must close, or a negative errno (-ENAMETOOLONG, ...).
 */
int zcv_socket_listen(const char *path, unsigned mode);

/* Connects a non-blocking SOCK_SEQPACKET socket to path: never waits (a
 * listener with a full backlog: -EAGAIN). Returns a new fd (CLOEXEC,
 * O_NONBLOCK) or a negative errno (-ENOENT, -ECONNREFUSED, -EAGAIN, ...). */
int zcv_socket_connect(const char *path);

/* zcv_socket_default_path() without creating the directory (clients). */
int zcv_socket_default_path_nocreate(char *buf, size_t size);

/* Fills a sockaddr_un; -ENAMETOOLONG when path does not fit. */
struct sockaddr_un;
int zcv_socket_addr(const char *path, struct sockaddr_un *ret_addr);
