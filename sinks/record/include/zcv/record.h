/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <zcv/format.h>

/*
 * Record sink: writes frames to a Y4M file (or raw planes with raw=true).
 * Y4M carries planar YUV only, so NV12/NV16 are de-interleaved and
 * YUYV/UYVY unpacked to 4:2:2 planar on the way out; those conversions are
 * counted in zcv_record_converted_bytes(). Planar input (I420) and raw
 * output are written straight from the frame's mapping with writev, no
 * copy in user space. RGB formats can only be recorded raw.
 */
struct zcv_record;

/*
 * Opens path for writing ("-" is standard output; the fd is then
 * borrowed). Returns 0 or a negative errno of open(), -ENOMEM.
 */
int zcv_record_create(const char *path, bool raw, struct zcv_record **ret_rec);

/*
 * Appends one frame; the first frame's layout and rate fix the Y4M header.
 * planes[p] points at plane p (layout->planes[p].stride apart lines).
 * Returns 0 or: -EINVAL (layout differs from the first frame's, or an
 * RGB format in Y4M mode), -EIO/-ENOSPC/... from write.
 */
int zcv_record_write(struct zcv_record *rec, const struct zcv_layout *layout, uint32_t fps_num,
		     uint32_t fps_den, const uint8_t *const planes[ZCV_MAX_PLANES]);

uint64_t zcv_record_frames(const struct zcv_record *rec);
uint64_t zcv_record_bytes(const struct zcv_record *rec);
uint64_t zcv_record_converted_bytes(const struct zcv_record *rec);

/* Closes the file (no fsync). Returns 0 or the errno of close().
 * Accepts NULL. */
int zcv_record_destroy(struct zcv_record *rec);

struct zcv_sink;

/*
 * The record sink (<zcv/sink.h>): writes every frame it is given to rec
 * (borrowed: destroy rec after the sink), reading the pixels inside the
 * CPU access bracket, and hands the frame back at once. The run fails
 * with -EINVAL when a frame cannot be recorded ("cannot record this stream
 * as Y4M (RGB, or the format changed)"), -EFAULT when the client does not
 * map the frames, or the errno of a failed write ("write failed: ...").
 * Returns 0 or -ENOMEM.
 */
int zcv_record_sink_create(struct zcv_record *rec, struct zcv_sink **ret_sink);
