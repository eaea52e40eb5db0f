/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zcv/client.h>

/*
 * Sinks: what a consumer does with the frames of a zcv stream (show them,
 * encode them, record them, check them), behind one interface, and one
 * loop that runs a client and a sink.
 *
 * Writing a sink: fill a struct zcv_sink_ops (only frame is required) and
 * call zcv_sink_create() with your state as data. The run hands every
 * frame to ops.frame; the sink reads it (between zcv_sink_begin_access()
 * and zcv_sink_end_access() when it touches pixels through planes[]) or
 * imports its fds, and calls zcv_sink_done() when it no longer needs it:
 * that releases the frame to the producer. A sink with work of its own in
 * flight (page flips, an encoder's queues) gives the run an fd to poll
 * (ops.get_fd) and handles it in ops.dispatch; one that must finish that
 * work at the end of the stream has ops.drain.
 *
 * Using a sink: zcv_sink_create() (or a sink library's own create),
 * zcv_sink_connect() to a producer, zcv_sink_run() until the stream ends,
 * then zcv_sink_get_stats() and zcv_sink_destroy().
 *
 * Threads: everything runs on the thread that calls zcv_sink_run(), the
 * ops included, except zcv_sink_done(), which may be called from any
 * thread (as zcv_client_release()).
 *
 * ABI: structs passed in (ops, run config) and the stats struct filled in
 * start with their size: set it to sizeof the struct. Shorter structs of
 * older headers are accepted (missing fields read as zero), longer ones
 * when every field this library does not know is zero.
 */
struct zcv_sink;

/* ops.frame's answer for a frame the sink does not want (no room, not
 * ready): the run releases it at once, counts it in declined and goes on. */
#define ZCV_SINK_DECLINE 1

/* ops.flags: the sink measures the latency it reports itself (capture to
 * flip, to encoder output) with zcv_sink_add_latency(); without it the run
 * records capture to receipt for every frame the sink takes. */
#define ZCV_SINK_OWN_LATENCY (1u << 0)

struct zcv_sink_stats;

/*
 * What a sink does. Every op gets the data given to zcv_sink_create() and
 * runs on the run's thread. An op that fails returns a negative errno,
 * best after saying why with zcv_sink_fail(); the run then stops.
 */
struct zcv_sink_ops {
	size_t size;    /* sizeof(struct zcv_sink_ops) */
	uint32_t flags; /* ZCV_SINK_* */
	/* A stream format and pool (the first one, or a new generation);
	 * frames of that generation follow. fmt is valid until the next
	 * format. Returns 0 or a negative errno (the run stops). Optional. */
	int (*format)(void *data, const struct zcv_client_format *fmt);
	/* A frame. Returns 0: the sink took it and calls zcv_sink_done() for
	 * it exactly once, now or later (it is valid until then); or
	 * ZCV_SINK_DECLINE; or a negative errno: the sink did not take it, the
	 * run releases it and stops. Required. */
	int (*frame)(void *data, const struct zcv_client_frame *frame);
	/* The fd the run polls for this sink now and the events to wait for
	 * (borrowed: the sink owns it), or -1 when there is nothing to wait
	 * for. Asked before every wait. Optional. */
	int (*get_fd)(void *data, short *ret_events);
	/* The fd of get_fd is ready: handle what happened without blocking.
	 * Returns 0; 1 once a drain this sink started has finished; or a
	 * negative errno: the run stops at once, without a drain. Required
	 * with get_fd. */
	int (*dispatch)(void *data);
	/* The run stops (end of stream, frame limit, a signal, a failure):
	 * finish the work in flight, hand back what the sink holds. No frame
	 * follows. Returns 1 when done already, 0 when dispatch will return 1
	 * once done, or a negative errno (done; the run fails). Called at most
	 * once. Optional (nothing to finish). */
	int (*drain)(void *data);
	/* Adjusts what zcv_sink_get_stats() reports (e.g. frames out of an
	 * encoder instead of frames in, or the path ZCV_PATH_COPY for a sink
	 * that copies each frame itself). stats->size says how much of the
	 * struct this library has: touch no field beyond it. Optional. */
	void (*stats)(void *data, struct zcv_sink_stats *stats);
	/* zcv_sink_destroy(): free the sink's state. Frames still held may
	 * be handed back with zcv_sink_done() here: the client is still
	 * there. Optional. */
	void (*destroy)(void *data);
};

/* How the run ends. */
struct zcv_sink_run_config {
	size_t size;         /* sizeof(struct zcv_sink_run_config) */
	uint64_t max_frames; /* stop once the sink took this many frames; 0: no limit */
	/* SIGINT and SIGTERM stop the run: the first drains, a second stops it
	 * at once; both end it with 0. They are blocked in the calling thread
	 * and read from a signalfd, and stay blocked when the run returns (so
	 * that a late one cannot kill a process still writing its results). */
	bool handle_signals;
	/* How long a drain may take; 0: 10 s. */
	uint32_t drain_timeout_ms;
	/* Told about each format the sink took (after ops.format succeeded).
	 * Optional. */
	void (*format)(void *data, const struct zcv_client_format *fmt);
	void *data; /* for format, disconnected and source */
	/* Appended. With zcv_client_config.reconnect.enable: the producer went
	 * away (error and reason as the client's disconnected callback) and
	 * the client reconnects; the run goes on (max_frames counts on over
	 * streams) and the next format is the new stream's, given to
	 * ops.format and to format above. Optional. */
	void (*disconnected)(void *data, int error, const char *reason);
	/* Appended. The producer's source went away or came back (as the
	 * client's source callback; reason is printable). Optional. */
	void (*source)(void *data, bool present, const char *reason);
};

/* What a sink did: zcv_sink_get_stats(). */
struct zcv_sink_stats {
	size_t size;             /* sizeof(struct zcv_sink_stats), set by the caller */
	uint64_t frames;         /* frames the sink took (ops.stats may count otherwise) */
	uint64_t released;       /* frames handed back with zcv_sink_done() */
	uint64_t declined;       /* frames it answered ZCV_SINK_DECLINE */
	uint64_t discarded;      /* frames released unseen after the run had stopped */
	uint64_t dropped;        /* frames missing from the sequence (zcv_client_dropped) */
	uint64_t first_ns;       /* when the first frame taken was received (CLOCK_MONOTONIC) */
	uint64_t last_ns;        /* when the last one was: with frames, the rate */
	uint64_t copied_bytes;   /* frame bytes zcv copied in this process: 0 unless the
				  * sink copies (the copy tier's copies are the producer's) */
	uint64_t latency_p50_ns; /* capture to receipt, or what the sink measures */
	uint64_t latency_p99_ns; /* (ZCV_SINK_OWN_LATENCY) */
	uint64_t latency_max_ns;
	int path; /* enum zcv_path of the stream; 0 before the first format */
};

/*
 * Creates a sink: ops (copied; read with its size) on data (borrowed; the
 * ops get it, ops.destroy frees it).
 * Returns 0, -EINVAL (no ops, ops without its size or frame, get_fd
 * without dispatch), -E2BIG (an
 * ops field this library does not know is set) or -ENOMEM; on failure
 * nothing is called and data stays the caller's.
 */
ZCV_EXPORT int zcv_sink_create(const struct zcv_sink_ops *ops, void *data,
			       struct zcv_sink **ret_sink);

/*
 * Calls ops.destroy, then destroys the client (zcv_client_destroy: the
 * producer reclaims what is still held). Not during zcv_sink_run().
 * Accepts NULL.
 */
ZCV_EXPORT void zcv_sink_destroy(struct zcv_sink *sink);

/*
 * Connects a client whose frames go to this sink (zcv_client_connect with
 * cfg). The client belongs to the sink; *ret_client (may be NULL) borrows
 * it, for zcv_client_get_format() and the like, until zcv_sink_destroy().
 * Returns as zcv_client_connect, or -EBUSY when the sink has a client.
 */
ZCV_EXPORT int zcv_sink_connect(struct zcv_sink *sink, const struct zcv_client_config *cfg,
				struct zcv_client **ret_client);

/* The sink's client (borrowed), NULL before zcv_sink_connect(). */
ZCV_EXPORT struct zcv_client *zcv_sink_get_client(struct zcv_sink *sink);

/*
 * The loop: polls the client, the sink's fd (ops.get_fd) and, with
 * cfg->handle_signals, SIGINT/SIGTERM; dispatches; hands the sink every
 * format and frame; stops at the end of the stream, at cfg->max_frames,
 * on a signal or a failure; drains the sink (ops.drain, at most
 * cfg->drain_timeout_ms) and returns. Frames that arrive after the stop
 * are released unseen. The client stays connected: its figures and format
 * can still be read. Runs once per sink. cfg may be NULL (no limit, no
 * signals).
 * Returns 0 when the stream ended cleanly, at the frame limit or on a
 * signal; else a negative errno: the sink's failure (zcv_sink_error:
 * ops.format/frame/dispatch/drain failed, -ETIMEDOUT when the drain took
 * too long), or the stream's (zcv_sink_stream_error: -ETIMEDOUT/-EPROTO/...
 * the producer evicted us or sent something wrong, -ECONNRESET it went
 * away), whichever came first; -EINVAL/-E2BIG for cfg (as zcv_sink_create
 * for ops), -EBUSY without a client or when it ran already, or the errno
 * of poll()/signalfd().
 */
ZCV_EXPORT int zcv_sink_run(struct zcv_sink *sink, const struct zcv_sink_run_config *cfg);

/*
 * How the stream ended: 0 (cleanly, not yet, or after the run had
 * stopped on its own) or a negative errno (the producer evicted us or
 * failed, -ECONNRESET when it vanished, -EPROTO when it broke the
 * protocol). *ret_reason (may be NULL) gets what the producer or the
 * client said, printable ("end of stream", or "" when nothing was said),
 * valid until zcv_sink_destroy().
 */
ZCV_EXPORT int zcv_sink_stream_error(struct zcv_sink *sink, const char **ret_reason);

/* The sink's own first failure: 0 or a negative errno, and in *ret_text
 * (may be NULL) what it said (zcv_sink_fail), "" when none; valid until
 * zcv_sink_destroy(). */
ZCV_EXPORT int zcv_sink_error(struct zcv_sink *sink, const char **ret_text);

/*
 * Fills *ret_stats (its size set by the caller; fields beyond it are left
 * alone) with the run's figures, adjusted by ops.stats. Sorts latency
 * samples: not from an op.
 * Returns 0 or -EINVAL (no size).
 */
ZCV_EXPORT int zcv_sink_get_stats(struct zcv_sink *sink, struct zcv_sink_stats *ret_stats);

/* --- for sink implementations ----------------------------------------- */

/*
 * The sink is done with a frame it took: releases it to the producer
 * (zcv_client_release). Callable from any thread, once per frame taken.
 * Returns 0, or -EINVAL for a frame not held (released already).
 */
ZCV_EXPORT int zcv_sink_done(struct zcv_sink *sink, const struct zcv_client_frame *frame);

/*
 * CPU access bracket around reading a held frame's pixels through
 * planes[] (zcv_client_begin_access/end_access: DMA_BUF_IOCTL_SYNC on the
 * DMA-BUF path). In pairs. Returns 0, -EINVAL for a frame not held, or
 * the ioctl's negative errno (the bracket still needs its end).
 */
ZCV_EXPORT int zcv_sink_begin_access(struct zcv_sink *sink, const struct zcv_client_frame *frame);
ZCV_EXPORT int zcv_sink_end_access(struct zcv_sink *sink, const struct zcv_client_frame *frame);

/*
 * Records the sink's failure (the first one counts: error, a negative
 * errno, and the printf-style text saying why, for the caller to print)
 * and stops the run: no more frames, then the drain. From an op, or from
 * a callback of the sink's own inside dispatch. Returns error, so an op
 * can `return zcv_sink_fail(...)`.
 */
ZCV_EXPORT int zcv_sink_fail(struct zcv_sink *sink, int error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* One latency sample in ns (sinks with ZCV_SINK_OWN_LATENCY). */
ZCV_EXPORT void zcv_sink_add_latency(struct zcv_sink *sink, uint64_t ns);

/* The data given to zcv_sink_create() when ops is the ops pointer given
 * there, else NULL: how a sink library gets its state back from a
 * struct zcv_sink it made. */
ZCV_EXPORT void *zcv_sink_get_data(struct zcv_sink *sink, const struct zcv_sink_ops *ops);
