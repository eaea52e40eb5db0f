/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <zcv/format.h>

/*
 * Consumer side of a zcv stream: the public API for custom sinks.
 *
 * Runs on the caller's loop: poll zcv_client_get_fd() for POLLIN and call
 * zcv_client_dispatch() when readable. Callbacks run inside dispatch.
 * Each frame handed to the frame callback is held until the sink calls
 * zcv_client_release() for it (from the callback or later): the producer
 * does not reuse the buffer until then. Hold frames briefly: the producer
 * skips a consumer at its hold limit and evicts one that holds a frame
 * longer than its timeout (default 1 s).
 */
struct zcv_client;

/* Stream description, valid until the next format callback. */
struct zcv_client_format {
	uint8_t stream_id[16];
	int path; /* 1 dmabuf, 2 memfd, 3 copy */
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
	uint32_t flags;        /* ZCV_FRAME_FLAG_ERROR = 1, ZCV_FRAME_FLAG_LAST = 2 */
	unsigned n_planes;
	const uint8_t *planes[ZCV_MAX_PLANES]; /* NULL when the client does not map */
	uint32_t stride[ZCV_MAX_PLANES];
	uint32_t bytesused[ZCV_MAX_PLANES];
	/* Import handles: plane p lives in fd[p] (borrowed; owned by the client,
	 * valid until the pool generation changes) at offset[p]. */
	int fd[ZCV_MAX_PLANES];
	uint32_t offset[ZCV_MAX_PLANES];
};

struct zcv_client_callbacks {
	/* Stream format and pool are known (first time, or a new generation);
	 * all the generation's buffers have arrived. */
	void (*format)(void *data, const struct zcv_client_format *fmt);
	/* A frame; call zcv_client_release() when done with it. */
	void (*frame)(void *data, const struct zcv_client_frame *frame);
	/* The producer ended the stream (error 0) or dropped us (negative errno)
	 * or the connection broke. No callbacks follow. */
	void (*closed)(void *data, int error, const char *reason);
};

#define ZCV_CLIENT_CAP_DMABUF (1u << 0)
#define ZCV_CLIENT_CAP_MEMFD (1u << 1)
#define ZCV_CLIENT_CAP_NEEDS_COPY (1u << 2)

/*
 * What a sink needs of the buffers it imports, told to the producer at the
 * handshake (0 everywhere: no needs). A producer that allocates for its
 * consumers (zcv-capture with --wait-consumers) makes buffers that satisfy
 * every consumer present at start; a consumer whose needs the pool cannot
 * meet gets the copy tier, into a private pool laid out for it, and the
 * producer reports why.
 */
struct zcv_client_constraints {
	uint32_t min_plane_size[ZCV_MAX_PLANES]; /* bytes plane p needs from its offset */
	uint32_t stride_align; /* strides a multiple of this (power of two, 0/1 none) */
	uint32_t height_align; /* planes laid out for ALIGN(height, this) lines, one
				* after another in a one-object buffer (hardware
				* codecs' macroblock rows); power of two, 0/1 none */
};

struct zcv_client_config {
	const char *socket_path; /* NULL: the default path (see zcv_socket_default_path) */
	const char *name;        /* shown in the producer's stats */
	uint32_t caps;           /* 0: DMABUF | MEMFD */
	unsigned max_hold;       /* 0: the producer's default */
	bool no_map;             /* true: do not mmap (the sink imports fds itself) */
	bool map_writable;       /* map PROT_READ|PROT_WRITE (tests); default read-only */
	struct zcv_client_constraints constraints; /* appended; zeroed: none */
};

/*
 * Connects and sends the handshake; the rest happens in dispatch.
 * Returns 0 or: -ENOENT (no socket there: is zcv-capture running?),
 * -ECONNREFUSED (stale socket), -EACCES, -ENAMETOOLONG, -ENOMEM.
 */
ZCV_EXPORT int zcv_client_connect(const struct zcv_client_config *cfg,
				  const struct zcv_client_callbacks *cbs, void *data,
				  struct zcv_client **ret_client);

/* Releases nothing on the wire (the producer reclaims on hang-up), unmaps,
 * closes all fds. Accepts NULL. */
ZCV_EXPORT void zcv_client_destroy(struct zcv_client *c);

/* The socket fd to poll for POLLIN; owned by the client. */
ZCV_EXPORT int zcv_client_get_fd(struct zcv_client *c);

/*
 * Reads and handles every pending message without blocking.
 * Returns 0 while the stream goes on; 1 once it has ended cleanly (closed
 * callback called with 0); or a negative errno: -EPROTO for a malformed or
 * unexpected message from the producer (all fds it carried are closed),
 * -EPROTONOSUPPORT for no common version, -ECONNRESET when the producer
 * went away, -ETIMEDOUT/-other when the producer evicted us (see reason).
 */
ZCV_EXPORT int zcv_client_dispatch(struct zcv_client *c);

/* Hands a frame back. Returns 0, -EINVAL for a frame not held, -EPIPE when
 * disconnected, -EAGAIN when the socket is full (retry after dispatch). */
ZCV_EXPORT int zcv_client_release(struct zcv_client *c, const struct zcv_client_frame *frame);

/* Frames the client saw missing from the sequence (skipped by the producer
 * or lost at capture). */
ZCV_EXPORT uint64_t zcv_client_dropped(struct zcv_client *c);

/* Frames currently held by the sink. */
ZCV_EXPORT unsigned zcv_client_held(struct zcv_client *c);

/* The current format, or NULL before the handshake completed. */
ZCV_EXPORT const struct zcv_client_format *zcv_client_get_format(struct zcv_client *c);

/* Blocks until the fd is readable (or timeout_ms, -1 forever) and
 * dispatches: a convenience for sinks with no loop of their own.
 * Returns as zcv_client_dispatch, or 0 on timeout. */
ZCV_EXPORT int zcv_client_wait_dispatch(struct zcv_client *c, int timeout_ms);

/* "dmabuf", "memfd", "copy" or "unknown" for a zcv_client_format.path. */
ZCV_EXPORT const char *zcv_path_name(int path);
