/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zcv/common.h>
#include <zcv/format.h>
#include <zcv/stream.h>

/*
 * Producer side of a zcv stream: a frame source (the deterministic test
 * pattern, or a V4L2 capture device whose buffers are exported as
 * DMA-BUFs), the Unix socket consumers connect to, buffers allocated to
 * fit the consumers known at start, and a clean end of stream.
 *
 * Life of a producer:
 *  1. zcv_producer_create() opens the source.
 *  2. zcv_producer_start() listens on the socket. The source starts once
 *     wait_consumers consumers are streaming (at once when 0). Consumers
 *     awaited at start are sent the pool only after the producer has
 *     allocated for all of them: their constraints merged, the source's
 *     buffers kept when they fit, else reallocated (the allocated
 *     callback says which and why). A consumer the pool cannot serve
 *     gets the copy tier, with the reason.
 *  3. Poll zcv_producer_get_fd() (an epoll fd covering the source, the
 *     socket and the producer's timer) for POLLIN in your loop and call
 *     zcv_producer_dispatch() when it is readable.
 *  4. The stream ends after the source's last frame (config.frames), or
 *     on zcv_producer_stop() (e.g. on SIGINT): consumers are told, and
 *     dispatch returns 1 once they have released their frames or left,
 *     or after the hold timeout plus a second.
 *  5. zcv_producer_destroy().
 *
 * Callbacks run inside zcv_producer_dispatch() and zcv_producer_stop().
 * Everything runs on one thread. Library calls never print.
 *
 * ABI: structs the caller passes in (config, callbacks) start with their
 * size: set it to sizeof the struct. The library accepts the shorter
 * structs of older headers (missing fields read as zero) and longer ones
 * of newer headers as long as what it does not know is zero. Structs the
 * library hands out (zcv_producer_consumer) only grow at their end; an
 * array of them is filled with the caller's element size.
 */
struct zcv_producer;

/* What the frames come from. */
enum zcv_producer_source {
	ZCV_PRODUCER_PATTERN = 0, /* the test pattern: frame k is a pure function of k */
	ZCV_PRODUCER_V4L2 = 1,    /* a V4L2 capture device (config.device) */
};

struct zcv_producer_config {
	size_t size; /* sizeof(struct zcv_producer_config) */

	/* The source. */
	enum zcv_producer_source source;
	const char *device;        /* V4L2: the device node, e.g. /dev/video0 */
	const char *pattern;       /* pattern: "bars" (NULL) or "checkers" */
	uint32_t fourcc;           /* ZCV_FMT_*; 0: pattern NV12, V4L2 the driver's */
	uint32_t width, height;    /* 0x0: pattern 1280x720, V4L2 the driver's */
	uint32_t fps_num, fps_den; /* pattern: 0 unpaced; V4L2: 0 the driver's */
	/* Buffers in the pool (2..32), kept as they are. 0: 6 at first, grown
	 * (up to 32, or the driver's limit) when the consumers awaited at
	 * start (wait_consumers) need more to hold what they asked for plus
	 * source_reserve. */
	unsigned n_buffers;
	uint64_t frames; /* end of stream after this many frames; 0: never */
	/* V4L2 only */
	bool select_input;      /* select input (VIDIOC_S_INPUT); false: leave it */
	unsigned input;         /* the input's index */
	const char *dv_timings; /* "WxHpF", or "auto" (the best the input lists); NULL: none */
	bool fd_per_plane;      /* the one-buffer-per-plane variant (NV12M...): a DMA-BUF
				 * per plane */
	bool require_zero_copy; /* fail instead of copying when export is impossible */
	bool force_copy;        /* take the copy tier even when export works (tests) */

	/* The socket. */
	const char *socket_path; /* NULL: $XDG_RUNTIME_DIR/zcv/default.sock, else
				  * /tmp/zcv-$UID/default.sock */
	/* Frames one consumer may hold at most (1..32), whatever it asks
	 * for, and what one that asks for no number gets. 0: up to 16 for
	 * those that ask, 2 for those that do not. */
	unsigned max_hold;
	uint64_t hold_timeout_ns; /* a consumer holding a frame longer is evicted; 0: 1 s */
	unsigned max_consumers;   /* at once; 0: 16 */
	unsigned source_reserve;  /* buffers consumers may never hold all of; 0: 2 */
	/* Also serve consumers of this group (default: the same user only).
	 * The socket, and the default socket's directory, become its. */
	bool allow_group;
	uint32_t allowed_gid;

	/* Allocation that fits: the source starts once this many consumers
	 * are streaming, and the pool is allocated for these first ones. */
	unsigned wait_consumers;

	/* V4L2: when the device goes away (unplugged, driver unbound) keep
	 * the consumers connected, reopen the device when it is back (tried
	 * every 250 ms, then every second), capture the same format again
	 * and send it as a new pool generation; sequence numbers go on where
	 * they stopped. false: the stream ends ("capture device
	 * disconnected"). */
	bool persistent;
};

/* A consumer as the producer sees it. Peer strings (name, reasons) are
 * the consumer's words, reduced to printable ASCII at receipt. */
struct zcv_producer_consumer {
	unsigned id; /* in order of arrival, from 1 */
	char name[32];
	int pid;               /* SO_PEERCRED */
	uint32_t uid;          /* SO_PEERCRED */
	int path;              /* enum zcv_path; 0 before it was admitted */
	char path_reason[128]; /* why it got the copy tier; "" otherwise */
	/* What it said it needs; hold: frames it asked to hold (0: the default). */
	struct zcv_constraints constraints;
	unsigned max_hold; /* frames it may hold at once, granted from the budget */
	unsigned held;     /* frames it holds now */
	uint64_t frames_sent;
	uint64_t skipped;      /* frames it missed because it was at its hold limit */
	uint64_t copied_bytes; /* bytes the producer copied for it (copy tier) */
	bool gone;             /* it left (or was refused): end_error, end_reason say why */
	int end_error;         /* 0: a clean end; else a negative errno */
	char end_reason[64];
};

struct zcv_producer_callbacks {
	size_t size; /* sizeof(struct zcv_producer_callbacks) */
	/* A consumer's handshake completed: it is streaming (path chosen). */
	void (*consumer_joined)(void *data, const struct zcv_producer_consumer *consumer);
	/* A consumer that had joined is gone (consumer->gone, end_reason). */
	void (*consumer_left)(void *data, const struct zcv_producer_consumer *consumer);
	/* With wait_consumers: the pool was allocated for the consumers awaited
	 * at start. result: 0 the source's buffers fit them as they were, 1
	 * they were reallocated, negative: they cannot be made to fit (those
	 * they do not fit get the copy tier). summary is one line saying for
	 * how many consumers, their merged needs, and what was done or why it
	 * could not be. When the attempt left the source without buffers, this
	 * is not called: dispatch fails instead. */
	void (*allocated)(void *data, int result, const char *summary);
	/* persistent: the source went away (present false) or is back
	 * (present true, a new generation is on its way to the consumers);
	 * what says how, in a sentence. */
	void (*source_changed)(void *data, bool present, const char *what);
};

/*
 * Opens the source. cfg and cbs are copied (cbs may be NULL; the strings
 * cfg points at must outlive the producer); data is passed to the
 * callbacks. why (when not NULL, why_size bytes) gets a sentence on
 * failure.
 * Returns 0 or: -EINVAL (a config or callbacks struct without its size, or
 * a bad value: why says which), -E2BIG (a field of a newer header set that
 * this library does not know), -ENOMEM, or the source's error: -ENOENT (no
 * such device), -ENOTTY (not V4L2), -ENODEV (not a capture device),
 * -EINVAL (a format, size, rate, input or timings the device does not
 * take; a size that does not suit the pattern's format), -EOPNOTSUPP (zero
 * copy required but impossible), -EBUSY (device in use), or a driver errno.
 * On failure *ret_producer is untouched and nothing is left open.
 */
ZCV_EXPORT int zcv_producer_create(const struct zcv_producer_config *cfg,
				   const struct zcv_producer_callbacks *cbs, void *data,
				   struct zcv_producer **ret_producer, char *why, size_t why_size);

/*
 * Listens on the socket (see zcv_producer_socket_path()) and starts the
 * source unless it waits for consumers. A source that fails to start is
 * reported by the next dispatch (the fd is made readable for it).
 * Returns 0 or: -EALREADY (started before), -EADDRINUSE (another producer
 * serves that path), -EEXIST (something else is at that path),
 * -ENAMETOOLONG, -EPERM (the default socket's directory is unsafe, or the
 * socket cannot be made allowed_gid's), -EACCES (allowed_gid cannot pass
 * the directory above the default socket's, as $XDG_RUNTIME_DIR usually
 * is: give a socket_path the group can reach), or a socket errno.
 */
ZCV_EXPORT int zcv_producer_start(struct zcv_producer *p);

/* Ends the stream: consumers are told ("producer stopped") and dispatch
 * returns 1 once they have given their frames back or left (bounded by
 * the hold timeout plus a second). Nothing more is captured. Before
 * zcv_producer_start() the producer is finished at once. Repeated calls
 * do nothing. */
ZCV_EXPORT void zcv_producer_stop(struct zcv_producer *p);

/* Sends end of stream to every consumer still there, closes everything.
 * Accepts NULL. */
ZCV_EXPORT void zcv_producer_destroy(struct zcv_producer *p);

/* The epoll fd to poll for POLLIN; owned by the producer. */
ZCV_EXPORT int zcv_producer_get_fd(struct zcv_producer *p);

/*
 * Handles what is pending (consumers, frames the source has, the drain)
 * without blocking. Returns 0 while the stream goes on, 1 once it has
 * ended and drained, or a negative errno: the stream failed, consumers
 * were told why and zcv_producer_error() says it in a sentence. -ENODEV:
 * the capture device is gone; -EINVAL before zcv_producer_start();
 * otherwise the source's, the socket's or an allocation's errno. After the
 * end it keeps returning the same value.
 */
ZCV_EXPORT int zcv_producer_dispatch(struct zcv_producer *p);

/* Why the stream failed, one sentence (owned by the producer); "" while
 * it has not. */
ZCV_EXPORT const char *zcv_producer_error(struct zcv_producer *p);

/* The socket path (owned by the producer), or NULL before start. */
ZCV_EXPORT const char *zcv_producer_socket_path(struct zcv_producer *p);

/* The frames' format and layout (of the current pool). */
ZCV_EXPORT void zcv_producer_get_layout(struct zcv_producer *p, struct zcv_layout *ret_layout);

/* How frames leave the source: "memfd" (pattern), "dmabuf" (V4L2 export)
 * or "copy" (V4L2 copy tier). */
ZCV_EXPORT const char *zcv_producer_path(struct zcv_producer *p);

/* Why the V4L2 source copies every frame (owned by the producer), or NULL
 * on the zero-copy path. */
ZCV_EXPORT const char *zcv_producer_fallback_reason(struct zcv_producer *p);

/* Times the source went away, and came back (persistent). */
ZCV_EXPORT unsigned zcv_producer_source_lost(struct zcv_producer *p);
ZCV_EXPORT unsigned zcv_producer_source_returned(struct zcv_producer *p);

/* Frames published so far; frames lost at the source (driver sequence
 * gaps). */
ZCV_EXPORT uint64_t zcv_producer_frames(struct zcv_producer *p);
ZCV_EXPORT uint64_t zcv_producer_dropped(struct zcv_producer *p);

/* Consumers streaming now. */
ZCV_EXPORT unsigned zcv_producer_streaming(struct zcv_producer *p);

/* Every consumer known: those connected and the most recent that left (up
 * to 64), in order of arrival, at most max into out, an array of
 * elements elem_size bytes apart: pass sizeof(*out), so that a program
 * built with an older, shorter struct gets what it knows of each. Returns
 * how many were written (0 before start, or for an elem_size smaller
 * than the first version's). */
ZCV_EXPORT unsigned zcv_producer_get_consumers(struct zcv_producer *p,
					       struct zcv_producer_consumer *out, unsigned max,
					       size_t elem_size);
