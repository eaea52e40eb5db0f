/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <zcv/common.h>

#define ZCV_MAX_PLANES 4

#define ZCV_FOURCC(a, b, c, d)                                                                     \
	((uint32_t)(a) | ((uint32_t)(b) << 8) | ((uint32_t)(c) << 16) | ((uint32_t)(d) << 24))

/* Fourccs follow V4L2's naming; the DRM equivalent is in zcv_format_info. */
#define ZCV_FMT_NV12 ZCV_FOURCC('N', 'V', '1', '2')
#define ZCV_FMT_NV16 ZCV_FOURCC('N', 'V', '1', '6')
/* I420 */
#define ZCV_FMT_YUV420 ZCV_FOURCC('Y', 'U', '1', '2')
#define ZCV_FMT_YUYV ZCV_FOURCC('Y', 'U', 'Y', 'V')
#define ZCV_FMT_UYVY ZCV_FOURCC('U', 'Y', 'V', 'Y')
/* V4L2_PIX_FMT_XBGR32 = DRM_FORMAT_XRGB8888: B, G, R, X in memory */
#define ZCV_FMT_XRGB8888 ZCV_FOURCC('X', 'R', '2', '4')
/* V4L2_PIX_FMT_ABGR32 = DRM_FORMAT_ARGB8888: B, G, R, A in memory */
#define ZCV_FMT_ARGB8888 ZCV_FOURCC('A', 'R', '2', '4')
#define ZCV_FMT_GREY ZCV_FOURCC('G', 'R', 'E', 'Y')

/* Static description of one pixel format. */
struct zcv_format_info {
	uint32_t fourcc;              /* V4L2 fourcc */
	uint32_t drm_fourcc;          /* DRM fourcc of the same memory layout, 0 if none */
	const char *name;             /* "NV12", "YUYV", ... as accepted on command lines */
	uint8_t n_planes;             /* colour planes in memory */
	uint8_t cpp[ZCV_MAX_PLANES];  /* bytes per pixel group column per plane (before hsub) */
	uint8_t hsub[ZCV_MAX_PLANES]; /* horizontal subsampling per plane */
	uint8_t vsub[ZCV_MAX_PLANES]; /* vertical subsampling per plane */
	uint8_t pixel_align;          /* width must be a multiple of this (YUYV: 2) */
	uint8_t height_align;         /* height must be a multiple of this (4:2:0: 2) */
	bool is_yuv;
};

/* Layout of one plane inside a buffer. */
struct zcv_plane_layout {
	uint32_t offset; /* from the start of the plane's memory object */
	uint32_t stride; /* bytes per line */
	uint32_t size;   /* stride * lines */
};

/* Complete memory layout of a frame. All planes share one memory object
 * (contiguous, in plane order) unless a producer says otherwise. */
struct zcv_layout {
	uint32_t fourcc;
	uint32_t width;
	uint32_t height;
	uint32_t n_planes;
	struct zcv_plane_layout planes[ZCV_MAX_PLANES];
	uint64_t size; /* bytes of the whole frame, planes + padding */
};

/* Looks up a format by V4L2 fourcc. Returns NULL when unknown. */
ZCV_EXPORT const struct zcv_format_info *zcv_format_lookup(uint32_t fourcc);

/* Looks up a format by name ("NV12", "I420", "YU12", "yuyv", ...; case-insensitive).
 * Returns NULL when unknown. */
ZCV_EXPORT const struct zcv_format_info *zcv_format_lookup_name(const char *name);

/* Index i of the format table, for listing; NULL past the end. */
ZCV_EXPORT const struct zcv_format_info *zcv_format_at(unsigned int i);

/* Writes the 4 characters of a fourcc and a NUL into buf (at least 5 bytes). */
ZCV_EXPORT const char *zcv_fourcc_str(uint32_t fourcc, char buf[static 5]);

/*
 * Computes a packed layout: plane strides rounded up to stride_align bytes
 * (a power of two, 1 for none), planes one after another, each plane's
 * offset aligned to stride_align too.
 *
 * Returns 0, or -EINVAL for an unknown format, zero or misaligned size or a
 * stride_align that is not a power of two, -EOVERFLOW when the frame would
 * not fit 32-bit plane sizes.
 */
ZCV_EXPORT int zcv_format_layout(uint32_t fourcc, uint32_t width, uint32_t height,
				 uint32_t stride_align, struct zcv_layout *ret_layout);

/* Bytes of visible pixels in one line of plane p, and number of lines. */
ZCV_EXPORT uint32_t zcv_format_plane_row_bytes(const struct zcv_format_info *fi, unsigned p,
					       uint32_t width);
ZCV_EXPORT uint32_t zcv_format_plane_lines(const struct zcv_format_info *fi, unsigned p,
					   uint32_t height);

/*
 * Checks a layout received from elsewhere: known format, plane count,
 * each stride >= row bytes, plane offset + size within object_size when
 * object_size is not 0, no 32-bit overflow.
 * Returns 0 or -EINVAL.
 */
ZCV_EXPORT int zcv_layout_validate(const struct zcv_layout *l);

/*
 * Checksum of a frame's visible bytes (stride padding excluded), so two
 * processes can show they saw the same pixels: a 64-bit FNV-1a variant that
 * takes 8 bytes a step (then the row's tail byte by byte), fast enough for
 * 1080p60 under emulation. planes[p] points at plane p.
 */
ZCV_EXPORT uint64_t zcv_frame_checksum(const struct zcv_layout *layout,
				       const uint8_t *const planes[ZCV_MAX_PLANES]);
