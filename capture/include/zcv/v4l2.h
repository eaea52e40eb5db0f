/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <zcv/source.h>

struct zcv_v4l2_source_config {
	const char *device;        /* /dev/videoN */
	int input;                 /* VIDIOC_S_INPUT index; -1: leave as is */
	uint32_t width, height;    /* 0: keep the driver's */
	uint32_t fourcc;           /* ZCV_FMT_* (V4L2 fourcc); 0: keep the driver's */
	bool multiplanar_planes;   /* ask for one memory plane per colour plane (NV12M) */
	uint32_t fps_num, fps_den; /* S_PARM; 0: keep the driver's */
	const char *dv_timings;    /* "WxHpF", "auto" (the best the device lists), NULL: none */
	unsigned n_buffers;        /* 0: 6 */
	uint64_t frames;           /* stop after this many frames; 0: never */
	bool require_zero_copy;    /* fail instead of falling back to the copy tier */
	bool force_copy;           /* tests: take the copy tier even when EXPBUF works */
	/* A source that replaces another on the same stream (the device came
	 * back): its pool's generation (0: 1) and its first frame's sequence
	 * number (0: the driver's); later ones follow the driver's count. */
	uint32_t generation;
	uint64_t first_sequence;
};

/*
 * V4L2 capture through libv4l2. Each driver buffer is exported once per
 * plane (VIDIOC_EXPBUF, read-only, close-on-exec) and becomes a DMA-BUF
 * pool buffer: a frame is dequeued, published, and re-queued only when every
 * consumer released it. When export is impossible (no EXPBUF, or a format
 * libv4l2 emulates by converting) the source copies each frame into a
 * sealed memfd pool instead — the copy tier — and says why in
 * zcv_v4l2_source_fallback_reason(); every copied byte is counted.
 *
 * Returns 0 or: -ENOENT (no such device), -ENOTTY (not a V4L2 device),
 * -ENODEV (not a video capture device with streaming I/O), -EINVAL
 * (format/size/rate/input/timings the device does not support; see
 * zcv_v4l2_source_error()), -EOPNOTSUPP (zero copy required but impossible),
 * -EBUSY (device in use), or another errno of the driver.
 * On failure, *ret_error (when not NULL) gets a static or thread-local
 * human-readable explanation.
 */
int zcv_v4l2_source_create(const struct zcv_v4l2_source_config *cfg,
			   const struct zcv_source_callbacks *cbs, void *data,
			   struct zcv_source **ret_source, const char **ret_error);

/* Why the copy tier is in use, or NULL on the zero-copy path. */
const char *zcv_v4l2_source_fallback_reason(struct zcv_source *src);

/* Frames whose driver timestamp was not usable as CLOCK_MONOTONIC (then
 * the dequeue time was used). */
uint64_t zcv_v4l2_source_foreign_timestamps(struct zcv_source *src);

/* Frame rate the driver runs at (from G_PARM / DV timings); 0/1 unknown. */
void zcv_v4l2_source_fps(struct zcv_source *src, uint32_t *ret_num, uint32_t *ret_den);

/* Lists every V4L2 capture device under /dev: its formats (emulated ones
 * marked), frame sizes, inputs, and whether buffers export as DMA-BUF. */
int zcv_v4l2_list(FILE *out);
