/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <zcv/format.h>
#include <zcv/stream.h>

/*
 * Consumer side of a zcv stream: the public API for custom sinks.
 *
 * Runs on the caller's loop: poll zcv_client_get_fd() for the events
 * zcv_client_get_events() asks for (POLLIN, plus POLLOUT while releases
 * wait for room in the socket) and call zcv_client_dispatch() when any
 * is ready. Callbacks run inside dispatch. Do not destroy the client from
 * a callback.
 *
 * Frame lifetime: a frame handed to the frame callback is valid until the
 * sink releases it with zcv_client_release() (from the callback or later)
 * or until the closed callback runs, whichever comes first; the producer
 * does not reuse the buffer before. Once the closed callback has run with
 * an error its pixels may change under the sink (an evicted consumer's
 * buffers go back to the producer); the mapping and fds stay valid, and
 * the frame counts as held, until it is released or the client is
 * destroyed. Dispatch reads ahead: a FRAME the producer sent before
 * evicting us (a BYE with an error, or any other failure, behind it in the
 * socket) is never delivered; frames before a clean end of stream are.
 * With reconnect (zcv_client_config.reconnect), the disconnected callback
 * takes the closed callback's place when the producer goes away: frames
 * the sink holds of that connection stay valid until released (the
 * producer is gone or has taken them back: their pixels may change; the
 * release sends nothing), and no frame of it is delivered after.
 * Hold frames briefly: the producer skips a consumer at its hold limit and
 * evicts one that holds a frame longer than its timeout (default 1 s).
 *
 * Threads: zcv_client_release() may be called from any thread, at any
 * time before zcv_client_destroy() (GStreamer, for one, drops buffers on
 * its streaming threads); it may wait while dispatch runs the callbacks,
 * so a callback must not wait for another thread's release. Everything
 * else, destroy included, belongs to the thread that dispatches. A release
 * from another thread that finds the socket full is queued: the
 * dispatching thread sends it once it wakes (zcv_client_get_events() then
 * asks for POLLOUT), so such a loop polls with a timeout.
 *
 * ABI: structs the caller passes in (config, callbacks) start with their
 * size: set it to sizeof the struct. The library accepts the shorter
 * structs of older headers (missing fields read as zero) and longer ones
 * of newer headers as long as what it does not know is zero. Structs the
 * library hands out (format, frame) only grow at their end.
 *
 * Trust: the client trusts nothing the producer sends. The producer's
 * identity is checked at connect (SO_PEERCRED, see zcv_client_config);
 * on the DMA-BUF path only real DMA-BUFs are accepted, on the memfd and
 * copy paths only memfds sealed against shrinking, growing and writing
 * (so nobody, this consumer included, can change a frame or make its
 * mapping fault). Anything else ends the stream with -EPROTO and a reason,
 * every fd of the message closed, nothing mapped.
 */
struct zcv_client;

/* Stream description, valid until the next format callback. */
struct zcv_client_format {
	uint8_t stream_id[16];
	int path; /* enum zcv_path */
	unsigned version;
	struct zcv_layout layout;
	uint64_t modifier;
	uint32_t colorspace;
	uint32_t fps_num, fps_den;
	uint32_t generation;
	unsigned n_buffers;
	unsigned max_hold;
};

struct zcv_client_frame {
	uint32_t generation;
	uint32_t index;
	uint64_t sequence;
	uint64_t timestamp_ns; /* capture time, CLOCK_MONOTONIC */
	uint64_t received_ns;  /* when dispatch read it, CLOCK_MONOTONIC */
	uint32_t flags;        /* ZCV_FRAME_FLAG_* of <zcv/stream.h> */
	unsigned n_planes;
	const uint8_t *planes[ZCV_MAX_PLANES]; /* NULL when the client does not map */
	uint32_t stride[ZCV_MAX_PLANES];
	uint32_t bytesused[ZCV_MAX_PLANES];
	/* Import handles: plane p lives in fd[p] (borrowed; owned by the client,
	 * valid while the frame is held) at offset[p]; length[p] is the size of
	 * the memory object fd[p] (what V4L2 DMABUF import calls length).
	 * Read pixels between zcv_client_begin_access() and
	 * zcv_client_end_access(). */
	int fd[ZCV_MAX_PLANES];
	uint32_t offset[ZCV_MAX_PLANES];
	uint64_t length[ZCV_MAX_PLANES];
};

struct zcv_client_callbacks {
	size_t size; /* sizeof(struct zcv_client_callbacks) */
	/* Stream format and pool are known (first time, or a new generation);
	 * all the generation's buffers have arrived. */
	void (*format)(void *data, const struct zcv_client_format *fmt);
	/* A frame; call zcv_client_release() when done with it. */
	void (*frame)(void *data, const struct zcv_client_frame *frame);
	/* The producer ended the stream (error 0) or dropped us (negative errno)
	 * or the connection broke. reason is printable text (control and
	 * invalid UTF-8 bytes of the producer's words escaped), safe to print
	 * as is. No callbacks follow. */
	void (*closed)(void *data, int error, const char *reason);
	/* With zcv_client_config.reconnect.enable: the producer went away or
	 * ended the stream (error 0: it said so; negative errno: the
	 * connection broke, or it ended with a failure of its own) and the
	 * client waits to connect again; reason is printable, as for closed.
	 * Called once per lost connection, after the frames that may still be
	 * delivered; no frame of that connection follows. Frames the sink
	 * still holds stay valid until released (their release sends
	 * nothing). The next format callback (new stream id, a generation
	 * above every earlier one) starts the new stream. Appended: optional. */
	void (*disconnected)(void *data, int error, const char *reason);
	/* The producer's source went away (present false: a camera unplugged;
	 * the stream stays up, frames stop until it is back) or came back
	 * (present true; a format callback with the next generation follows
	 * before its frames). reason is printable, as for closed. Appended:
	 * optional. */
	void (*source)(void *data, bool present, const char *reason);
};

/* Whom the client accepts as its producer (checked with SO_PEERCRED when
 * it connects, before anything is sent or received). Any other value
 * counts as ZCV_TRUST_SAME_USER. */
enum zcv_client_trust {
	ZCV_TRUST_SAME_USER = 0, /* our effective uid, or root (the default) */
	ZCV_TRUST_UID = 1,       /* as SAME_USER, or zcv_client_config.producer_uid */
	ZCV_TRUST_ANYONE = 2,    /* no check: only when the socket's directory already
				  * restricts who can listen there */
};

/* zcv_client_config.reconnect: see there. */
struct zcv_client_reconnect {
	bool enable;             /* reconnect after the producer goes away */
	bool wait;               /* connect succeeds before the producer exists */
	uint32_t max_attempts;   /* consecutive failures before giving up; 0: never */
	uint32_t backoff_min_ms; /* 0: 100 */
	uint32_t backoff_max_ms; /* 0: 2000 */
};

struct zcv_client_config {
	size_t size;             /* sizeof(struct zcv_client_config) */
	const char *socket_path; /* NULL: the default path ($XDG_RUNTIME_DIR/zcv/default.sock,
				  * else /tmp/zcv-$UID/default.sock) */
	const char *name;        /* shown in the producer's stats */
	uint32_t caps;           /* ZCV_CAP_*; 0: DMABUF | MEMFD */
	bool no_map;             /* true: do not mmap (the sink imports fds itself) */
	/* What the sink needs of the buffers (zeroed: nothing), and how many
	 * frames it holds at once (hold; 0: the producer's default). The
	 * producer grants at most what it can (zcv_client_format.max_hold). */
	struct zcv_constraints constraints;
	/* Who may be the producer; zeroed: same user or root. */
	enum zcv_client_trust producer_trust;
	uint32_t producer_uid; /* the extra uid of ZCV_TRUST_UID */
	/*
	 * Appended: waiting for the producer and reconnecting (zeroed: off,
	 * and zcv_client_connect() fails when there is no producer).
	 *
	 * wait: zcv_client_connect() succeeds while the socket does not exist
	 * yet (or is stale: -ENOENT, -ECONNREFUSED, or the producer hung up
	 * during the handshake) and connects in dispatch once it appears.
	 * enable: as wait for the first connection, and after the producer
	 * goes away (the connection broke, or its BYE said the stream ended:
	 * error 0, -ECONNRESET, -EPIPE, -ESHUTDOWN, -ENODEV, -EIO) the
	 * disconnected callback runs and the client connects again. Never
	 * after an eviction or a refusal (a BYE with -ETIMEDOUT, -EPROTO,
	 * -EACCES, ... : what we did would be done again), nor after a
	 * protocol error or untrusted producer found here: those close the
	 * client as without reconnect.
	 * Attempts are spaced backoff_min_ms (0: 100), doubling up to
	 * backoff_max_ms (0: 2000) at most 60000; and, where the socket's
	 * directory exists, made at once when a file of the socket's name
	 * appears in it (inotify; then, as the producer may not listen yet,
	 * from a tenth of backoff_min_ms on, doubling). max_attempts (0: forever) consecutive
	 * failures (a connection dropped before its first format counts as
	 * one) end the client: the closed callback runs with the last error.
	 * While waiting, zcv_client_get_fd() is a timer the caller polls like
	 * the socket: dispatch never sleeps.
	 */
	struct zcv_client_reconnect reconnect;
	/* Appended. The sink keeps its latest frame until a newer one comes (a
	 * display's frame on screen): the producer does not apply its hold
	 * timeout to the newest frame it sent us while it has published
	 * nothing newer (a paused stream, a source that went away, a stalled
	 * producer), and starts that frame's clock when a newer frame is
	 * published (whether we get it or are skipped). Older held frames
	 * time out as ever. */
	bool keeps_latest;
};

/*
 * Connects, checks who the producer is (config.producer_trust) and sends
 * the handshake; the rest happens in dispatch.
 * With config.reconnect.enable or .wait set, a producer that is not there
 * yet (-ENOENT, -ECONNREFUSED) is not an error: 0 is returned and dispatch
 * connects once it appears.
 * Returns 0 or: -EINVAL (a config or callbacks struct without its size, or
 * a reconnect member that makes no sense: fields set without enable or
 * wait, backoff_min_ms above backoff_max_ms, backoff_max_ms above 60000),
 * -E2BIG (a field of a newer header set that this library does not know),
 * -ENOENT (no socket there: is zcv-capture running?),
 * -ECONNREFUSED (stale socket), -EACCES (we may not connect, or the
 * producer refused us; or the producer runs as a user we do not trust:
 * then, and only then, the closed callback runs once before this returns,
 * with a reason naming the producer's uid), -ENAMETOOLONG, -ENOMEM.
 */
ZCV_EXPORT int zcv_client_connect(const struct zcv_client_config *cfg,
				  const struct zcv_client_callbacks *cbs, void *data,
				  struct zcv_client **ret_client);

/* Sends BYE (the producer reclaims what we held; queued releases are
 * dropped), unmaps, closes all fds. Frames still held are gone with it:
 * no release may be running or follow on another thread. Accepts NULL. */
ZCV_EXPORT void zcv_client_destroy(struct zcv_client *c);

/* The fd to poll (for zcv_client_get_events()); owned by the client.
 * The socket's O_NONBLOCK flag is clear (zcv_client_wait_dispatch() sleeps
 * in it; every other call passes MSG_DONTWAIT): poll it, do not read it or
 * change its flags.
 * Without reconnect it is the socket, the same for the client's life. With
 * config.reconnect it changes: the socket while connected, a timer (an
 * epoll fd) while waiting to connect: ask again after every dispatch (a
 * caller's epoll set must swap it; the old fd may be closed by then). */
ZCV_EXPORT int zcv_client_get_fd(struct zcv_client *c);

/* The poll events to wait for on zcv_client_get_fd(): POLLIN, plus POLLOUT
 * while releases are queued because the socket was full. Ask again after
 * every dispatch or release; when either is ready call zcv_client_dispatch(),
 * which sends the queued releases first. */
ZCV_EXPORT short zcv_client_get_events(struct zcv_client *c);

/*
 * Sends queued releases, then reads and handles every pending message
 * without blocking (all that is in the socket, at most 256, before any
 * frame is delivered: see "Frame lifetime" above).
 * Returns 0 while the stream goes on; 1 once it has ended cleanly (closed
 * callback called with 0); or a negative errno: -EPROTO for a malformed or
 * unexpected message from the producer, or memory that is not what the
 * path promises (a file or memfd on the DMA-BUF path, a memfd without the
 * shrink/grow/write seals, a buffer smaller than announced: the reason
 * says which; every fd the message carried is closed, nothing is mapped),
 * -EPROTONOSUPPORT for no common version, -ECONNRESET when the producer
 * went away, -ETIMEDOUT/-other when the producer evicted us (see reason).
 * With config.reconnect.enable a producer going away is not an end: 0
 * (disconnected callback) while the client waits and reconnects; the
 * last connect error (-ENOENT, ...) once max_attempts ran out.
 * After the end it keeps returning the same value. -EBUSY when called from
 * one of its own callbacks.
 */
ZCV_EXPORT int zcv_client_dispatch(struct zcv_client *c);

/*
 * Hands a frame back; callable from any thread (see "Threads" above).
 * Never fails for a frame the sink holds: returns 0,
 * or -EINVAL for a frame not held (never delivered, or released already).
 * The frame's memory is the sink's no longer as soon as this returns.
 * When the socket is full the RELEASE message is queued (at most one per
 * frame the producer lent us, so the queue is bounded) and sent by the
 * next dispatch: zcv_client_get_events() asks for POLLOUT meanwhile. After
 * the stream ended with an error or the producer went away, nothing is
 * sent (it reclaimed our frames) and the frame is only freed here.
 */
ZCV_EXPORT int zcv_client_release(struct zcv_client *c, const struct zcv_client_frame *frame);

/* Releases queued in the client, waiting for room in the socket. */
ZCV_EXPORT unsigned zcv_client_queued_releases(struct zcv_client *c);

/* Frames the client saw missing from the sequence (skipped by the producer
 * or lost at capture). */
ZCV_EXPORT uint64_t zcv_client_dropped(struct zcv_client *c);

/* Frames currently held by the sink. */
ZCV_EXPORT unsigned zcv_client_held(struct zcv_client *c);

/* The current format, or NULL before the handshake completed. */
ZCV_EXPORT const struct zcv_client_format *zcv_client_get_format(struct zcv_client *c);

/*
 * Waits for the producer (at most timeout_ms; -1: no limit, 0: not at
 * all) and dispatches: for sinks with no loop of their own. Returns as
 * zcv_client_dispatch(), or 0 on timeout or when a signal interrupted the
 * wait (so a caller's signal flag is seen), -EBUSY when another thread is
 * in dispatch or wait_dispatch, or from a callback.
 *
 * Cost: while connected, with no release queued, it sleeps in one
 * recvmmsg() on the socket (no poll) that returns with everything queued
 * by then (up to 8 messages; more are read without blocking, as dispatch
 * reads): a sink that releases each frame from its callback makes two
 * syscalls per frame, that recvmmsg and the RELEASE's sendmsg. The first
 * call, and any whose timeout differs from the previous one's, also sets
 * SO_RCVTIMEO (one setsockopt). Otherwise (timeout_ms 0, releases queued
 * because the socket was full, waiting to reconnect, the stream ended) it
 * polls zcv_client_get_fd() for zcv_client_get_events() and then
 * dispatches, as before.
 *
 * Threads: the wait holds no lock, so zcv_client_release() from other
 * threads goes on meanwhile. A release another thread made while this one
 * waited that found the socket full is queued and sent by the next
 * dispatch or wait_dispatch (which then takes the poll path, asking for
 * POLLOUT, until the queue is empty): keep the timeout finite where that
 * matters.
 *
 * May return 0 before any event when timeout_ms is negative: the wait
 * then lasts at most 10 s (an unlimited socket read would be restarted
 * after a signal instead of returning); call it again.
 */
ZCV_EXPORT int zcv_client_wait_dispatch(struct zcv_client *c, int timeout_ms);

/*
 * CPU access bracket: call begin before reading a held frame's pixels
 * through planes[] and end after (in pairs; nested brackets are fine). On
 * the DMA-BUF path they are DMA_BUF_IOCTL_SYNC start/end on each memory
 * object, so a cache that is not coherent with the device that wrote the
 * frame is made so; on the memfd and copy paths they cost nothing.
 * Returns 0, -EINVAL for a frame the sink does not hold, or the ioctl's
 * negative errno (the pixels may then be stale; the bracket still needs
 * its end).
 */
ZCV_EXPORT int zcv_client_begin_access(struct zcv_client *c, const struct zcv_client_frame *frame);
ZCV_EXPORT int zcv_client_end_access(struct zcv_client *c, const struct zcv_client_frame *frame);
