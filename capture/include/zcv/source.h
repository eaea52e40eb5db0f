/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include <zcv/pattern.h>
#include <zcv/pool.h>
#include <zcv/stream.h>

/*
 * A frame source owns a buffer pool and fills it. Runs on the caller's
 * loop: poll zcv_source_get_fd() for POLLIN, call zcv_source_dispatch().
 * Each filled buffer (state PRODUCER) is handed to the frame callback,
 * which publishes it (zcv_server_publish lends it to consumers); the
 * source takes it back when the pool reports it free.
 */
struct zcv_source;

struct zcv_source_callbacks {
	void (*frame)(void *data, struct zcv_buffer *buf, const struct zcv_frame_meta *meta);
};

struct zcv_pattern_source_config {
	enum zcv_pattern pattern;
	uint32_t fourcc, width, height;
	unsigned n_buffers;        /* 0: 6 */
	uint32_t fps_num, fps_den; /* 0/x: unpaced, as fast as buffers come back */
	uint64_t frames;           /* stop after this many; 0: never */
	uint32_t stride_align;     /* 0: 64 */
};

/*
 * Pattern source: frame k (sequence k, from 0) is zcv_pattern_render(k),
 * due at start + k/fps on CLOCK_MONOTONIC. It never skips a frame number:
 * when late, or when every buffer is lent, frame k comes out late.
 * Returns 0, -EINVAL (bad size/format/count), -ENOMEM, or a memfd/timerfd errno.
 */
int zcv_pattern_source_create(const struct zcv_pattern_source_config *cfg,
			      const struct zcv_source_callbacks *cbs, void *data,
			      struct zcv_source **ret_source);

/* Starts producing: frame 0 is due now. Returns 0 or a negative errno. */
int zcv_source_start(struct zcv_source *src);

void zcv_source_destroy(struct zcv_source *src); /* accepts NULL */
int zcv_source_get_fd(struct zcv_source *src);   /* owned by the source */

/* Produces frames that are due: the pattern source, paced, one per call
 * (its fd stays readable while more are due), so the caller's loop runs
 * between them. Returns 0, 1 once the last frame (cfg.frames) has been
 * produced, or a negative errno. */
int zcv_source_dispatch(struct zcv_source *src);

struct zcv_pool *zcv_source_get_pool(struct zcv_source *src);

/* Frames produced so far; frames the source lost (driver sequence gaps). */
uint64_t zcv_source_frames(struct zcv_source *src);
uint64_t zcv_source_dropped(struct zcv_source *src);

/* Times the source had no buffer to fill: a V4L2 driver left with none
 * queued (it then loses frames until one comes back). The buffer budget
 * keeps this at 0 while every consumer stays within what it was granted;
 * frames a driver loses while it has buffers are the driver's own
 * (zcv_source_dropped counts both). */
uint64_t zcv_source_starved(struct zcv_source *src);

/*
 * Before zcv_source_start(): reallocates the pool so its buffers satisfy
 * fit. Pattern: memfd buffers laid out for fit (zcv_constraints_layout).
 * V4L2: VIDIOC_CREATE_BUFS with larger sizes when only sizes fall
 * short; when planes must sit further apart than the driver puts them (a
 * codec's aligned height), capture in the driver's one-buffer-per-plane
 * variant (NV12M...) with V4L2_MEMORY_DMABUF into udmabuf slices of one
 * memfd laid out as the consumers need. how (when not NULL) gets what was
 * done, or why it could not be.
 * n_buffers: the pool also needs at least this many buffers (the
 * consumers' holds plus the source's reserve; at most
 * ZCV_POOL_MAX_BUFFERS; 0 or no more than it has: keep the count). A
 * driver may give fewer than asked; how says how many.
 * Returns 0 (the pool already fits; nothing changed), 1 (a new pool of the
 * next generation: zcv_source_get_pool() returns it; the old one stays
 * valid until the source is destroyed), -EOPNOTSUPP (impossible here: how
 * says why), -EBUSY (already started), or another negative errno: the
 * old pool is still in use, unless zcv_source_get_pool() now returns NULL
 * (the source is unusable; how says why).
 */
int zcv_source_fit(struct zcv_source *src, const struct zcv_constraints *fit, unsigned n_buffers,
		   char *how, size_t how_size);

/* The device went away: let go of it at once (its fd and mappings; a
 * V4L2 device's number is free again only once nobody holds it open) and
 * keep only the pool, whose buffers consumers may still hold. The source
 * produces nothing more; destroy it once the pool is back. No-op for
 * sources without a device. */
void zcv_source_release_device(struct zcv_source *src);

/* Path description for stats: "memfd" or "dmabuf"/"copy" for V4L2. */
const char *zcv_source_path(struct zcv_source *src);
