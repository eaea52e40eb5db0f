/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zcv/client.h>

/*
 * Display sink: shows a zcv stream on a KMS display (libdrm).
 *
 * Zero-copy path: each pool buffer is imported once (drmPrimeFDToHandle,
 * drmModeAddFB2[WithModifiers], GEM handle closed at once) into a
 * framebuffer kept per (generation, buffer index), and presented with
 * non-blocking page flips. A frame stays held while it is on screen or
 * waiting to be flipped: the display hands it back (release callback) only
 * when the flip to the next frame has completed, because until then the
 * display engine may still read it. When frames arrive faster than the
 * display refreshes, the newest waiting frame replaces the previous one,
 * which is released at once (counted in skipped). So the display holds at
 * most 3 frames: shown, flip pending, next. Ask the producer for
 * --max-hold 3; with 2 the producer skips the display now and then.
 *
 * Copy path (fallback): when PRIME import or AddFB2 fails, or the display
 * refuses the imported framebuffer (format it cannot scan out, a placement
 * it cannot do), frames are copied into two mode-sized XRGB8888 dumb
 * buffers, converted from YUV in software when needed, and centred. The
 * reason is in zcv_display_info.fallback_reason; the bytes written are in
 * zcv_display_stats.copied_bytes and in zcv_copied_bytes_get(). The copy
 * path holds frames exactly like the zero-copy path (the source of what is
 * on screen stays held until the next flip), so a snapshot can name it.
 *
 * Everything runs on the caller's loop: poll zcv_display_get_fd() for POLLIN
 * and call zcv_display_dispatch(). Callbacks run inside dispatch, show and
 * destroy. Library code prints nothing.
 */
struct zcv_display;

struct zcv_display_config {
	/* "/dev/dri/cardN"; NULL: the first card (in number order) that has a
	 * connected connector */
	const char *device;
	/* connector name as "<type>-<n>" ("HDMI-A-1", "Virtual-1"); NULL: the
	 * first connected one */
	const char *connector;
	/* mode size; 0x0: the connector's preferred mode (else its first) */
	uint32_t width, height;
	/* refresh rate in Hz for choosing among modes of that size; 0: any,
	 * preferring the preferred mode, then the highest rate */
	uint32_t refresh;
	bool legacy;     /* use legacy modesetting even where atomic works */
	bool force_copy; /* take the copy path even where import works (testing) */
	bool scale;      /* zero-copy: scale to fit (aspect kept) when the plane
			  * can scale; otherwise, and by default, centre */
};

struct zcv_display_callbacks {
	/* The display no longer needs frame: hand it back to the producer
	 * (zcv_client_release). Required. */
	void (*release)(void *data, const struct zcv_client_frame *frame);
	/* frame reached the screen: the flip to it completed at flip_ns
	 * (CLOCK_MONOTONIC, the vblank time when the driver reports it).
	 * Optional. */
	void (*flipped)(void *data, const struct zcv_client_frame *frame, uint64_t flip_ns);
	/* The copy path is taken for the current format, and why (also in
	 * zcv_display_info.fallback_reason). Optional. */
	void (*fallback)(void *data, const char *reason);
	/* The CPU access bracket around the display reading frame's pixels
	 * (copy path, snapshot): begin, then the same with begin false
	 * (zcv_client_begin_access/end_access). Optional: without it the
	 * display reads the mappings as they are. */
	void (*access)(void *data, const struct zcv_client_frame *frame, bool begin);
};

struct zcv_display_info {
	char device[64];    /* "/dev/dri/card1" */
	char driver[32];    /* "vkms" */
	char connector[32]; /* "Virtual-1" */
	uint32_t connector_id, crtc_id, plane_id;
	uint32_t mode_width, mode_height, mode_refresh;
	bool atomic;               /* atomic modesetting (else legacy) */
	bool writeback;            /* a writeback connector can capture this CRTC */
	bool plane_scaling;        /* the zero-copy placement scales */
	bool copy;                 /* the copy path is in use (for the current format) */
	char placement[16];        /* "full", "centred", "scaled", "cropped" */
	char fallback_reason[256]; /* why the copy path is in use; "" if it is not */
};

struct zcv_display_stats {
	uint64_t frames;       /* frames handed to zcv_display_show() */
	uint64_t flips;        /* completed flips (each shows a new frame) */
	uint64_t skipped;      /* frames replaced before they were shown */
	uint64_t copied_bytes; /* bytes the copy path wrote (copies + conversions) */
	uint64_t imports;      /* framebuffers made from pool buffers */
	uint64_t first_flip_ns, last_flip_ns;
	unsigned held_max; /* most frames held at once */
};

/*
 * Opens the device (O_RDWR | O_CLOEXEC; the fd is owned by the display),
 * becomes DRM master, picks connector, CRTC, primary plane and mode. Shows
 * nothing until the first frame. On failure, when errbuf is not NULL, a
 * one-line explanation (device, driver, what was missing, modes on offer)
 * is written to it.
 * Returns 0 or: -ENOENT (the device, or any /dev/dri/card*, does not exist),
 * -ENODEV (not a modesetting device, no connected connector, no usable
 * CRTC or plane), -EINVAL (no such connector or mode), -EBUSY/-EACCES/-EPERM
 * (cannot become DRM master: another display server owns the device),
 * -ENOMEM, or an errno of open()/ioctl().
 */
ZCV_EXPORT int zcv_display_create(const struct zcv_display_config *cfg,
				  const struct zcv_display_callbacks *cbs, void *data,
				  struct zcv_display **ret_display, char *errbuf, size_t errlen);

/*
 * Turns the display back to what it showed before (or off), removes every
 * framebuffer and dumb buffer — the display engine has stopped reading the
 * frames when this returns — then hands every held frame to the release
 * callback, drops DRM master and closes the device. Accepts NULL.
 */
ZCV_EXPORT void zcv_display_destroy(struct zcv_display *d);

/* DRM fd to poll for POLLIN (flip completions); owned by the display. */
ZCV_EXPORT int zcv_display_get_fd(struct zcv_display *d);

/* Handles pending flip completions without blocking: releases frames that
 * left the screen, submits the next one. Returns 0 or a negative errno
 * (-EIO when the DRM fd failed). */
ZCV_EXPORT int zcv_display_dispatch(struct zcv_display *d);

/*
 * A new stream format / pool generation (call from the client's format
 * callback). Framebuffers of older generations are removed at once, or —
 * for frames still on screen — when those are released. Decides the path
 * anew: the zero-copy path is tried again for the new format.
 * Returns 0, -EINVAL for a layout the copy path cannot convert either, or
 * -ENOMEM / an ioctl errno when the dumb buffers cannot be made.
 */
ZCV_EXPORT int zcv_display_set_format(struct zcv_display *d, const struct zcv_client_format *fmt);

/*
 * Presents frame (after the format callback of its generation). On success
 * the display holds the frame (a copy of the struct; the fds are borrowed
 * from the client) until it calls the release callback. Falls back to the
 * copy path on the first import, AddFB2 or commit failure of a format.
 * Returns 0, or a negative errno and does not take the frame (the caller
 * releases it): -ESTALE (frame of another generation than set_format's),
 * -EINVAL (no format set), or a commit/page-flip errno the copy path did
 * not help with.
 */
ZCV_EXPORT int zcv_display_show(struct zcv_display *d, const struct zcv_client_frame *frame);

/* Blocks until no flip is pending (timeout_ms, -1 forever), dispatching
 * completions. Returns 0, -ETIMEDOUT, or as zcv_display_dispatch. */
ZCV_EXPORT int zcv_display_finish(struct zcv_display *d, int timeout_ms);

/* The frame on screen now (held by the display), or NULL. Valid until the
 * next dispatch/show/destroy. */
ZCV_EXPORT const struct zcv_client_frame *zcv_display_shown(struct zcv_display *d);

/* Image of what is on screen, XRGB8888 (B,G,R,X in memory), rows of
 * width * 4 bytes. */
struct zcv_display_image {
	uint32_t width, height;
	uint8_t *pixels;    /* malloc'ed; the caller frees it */
	uint64_t sequence;  /* sequence of the frame shown */
	const char *source; /* "writeback" or "buffer" (static string) */
};

/*
 * Captures what is on screen: through a writeback connector where the
 * driver has one for this CRTC (the whole CRTC output, mode-sized), else
 * read from the buffer being shown (the copy path's dumb buffer, or the
 * shown frame converted to XRGB8888 at its own size). Waits for a pending
 * flip first (up to 1 s). Returns 0, -ENODATA (nothing shown yet), -EIO
 * (the writeback did not complete within 1 s), -ENOMEM, or an ioctl errno.
 */
ZCV_EXPORT int zcv_display_snapshot(struct zcv_display *d, struct zcv_display_image *ret_image);

ZCV_EXPORT void zcv_display_get_info(struct zcv_display *d, struct zcv_display_info *ret_info);
ZCV_EXPORT void zcv_display_get_stats(struct zcv_display *d, struct zcv_display_stats *ret_stats);

/*
 * Writes an XRGB8888 image (rows stride bytes apart) as an 8-bit RGB PNG.
 * Returns 0, -EINVAL (zero or oversized image), -ENOMEM, or an errno of
 * open/write/rename (the file is replaced atomically via a temp file).
 */
ZCV_EXPORT int zcv_png_write_xrgb(const char *path, const uint8_t *pixels, uint32_t width,
				  uint32_t height, uint32_t stride);

/*
 * Converts (or copies) one frame into an XRGB8888 destination, centred:
 * the frame's centre lands on the destination's centre, lines and columns
 * outside either are cut. YUV is limited range, BT.709 for colorspace 3
 * (V4L2_COLORSPACE_REC709) and for colorspace 0 (unknown) at heights of 720
 * lines and more, BT.601 otherwise. Supports every zcv format.
 * planes[p]/strides[p] describe the source. Returns the bytes written, or
 * -EINVAL for an unsupported format. Counts nothing itself.
 */
ZCV_EXPORT int64_t zcv_display_convert(const struct zcv_layout *layout, uint32_t colorspace,
				       const uint8_t *const planes[ZCV_MAX_PLANES],
				       const uint32_t strides[ZCV_MAX_PLANES], uint8_t *dst,
				       uint32_t dst_width, uint32_t dst_height,
				       uint32_t dst_stride);

struct zcv_sink;

/*
 * The display sink (<zcv/sink.h>): a display made with cfg (as
 * zcv_display_create, whose errors and errbuf text it returns) behind the
 * sink interface. It owns the display (*ret_display borrows it for info,
 * stats and snapshots until zcv_sink_destroy()), hands frames back when
 * they leave the screen, brackets its CPU reads, reports capture-to-flip
 * latency, reports the path ZCV_PATH_COPY while it copies, and drains by
 * waiting for the pending flip. fallback (may be NULL) is told, with data,
 * when the copy path is taken and why. The run fails when the display
 * cannot take the format ("cannot display ..."), show a frame ("cannot
 * show frame ..."), or its fd fails ("display failed: ...").
 */
ZCV_EXPORT int zcv_display_sink_create(const struct zcv_display_config *cfg,
				       void (*fallback)(void *data, const char *reason), void *data,
				       struct zcv_sink **ret_sink, struct zcv_display **ret_display,
				       char *errbuf, size_t errlen);
