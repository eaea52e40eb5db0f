/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zcv/format.h>

/*
 * What a zcv stream is made of, shared by producers and consumers: the
 * transport paths, what a consumer can import, what a frame's flags mean,
 * and what a consumer needs of the buffers it imports.
 */

/* How a consumer receives frames. */
enum zcv_path {
	ZCV_PATH_DMABUF = 1, /* the producer's DMA-BUFs, lent (zero copy) */
	ZCV_PATH_MEMFD = 2,  /* the producer's sealed memfds, lent (zero copy) */
	ZCV_PATH_COPY = 3,   /* the producer copies each frame into a private memfd pool */
};

/* "dmabuf", "memfd", "copy", or "unknown" for any other value. */
ZCV_EXPORT const char *zcv_path_name(int path);

/* What a consumer can import (zcv_client_config.caps). */
#define ZCV_CAP_DMABUF (1u << 0)
#define ZCV_CAP_MEMFD (1u << 1)
#define ZCV_CAP_NEEDS_COPY (1u << 2) /* asks for the copy tier whatever the pool is */

/* Frame flags (zcv_client_frame.flags). */
#define ZCV_FRAME_FLAG_ERROR (1u << 0) /* the driver flagged the data as possibly corrupt */
#define ZCV_FRAME_FLAG_LAST (1u << 1)  /* last frame of the stream */

/*
 * What a consumer needs of the buffers it imports (0 everywhere: no needs).
 * A consumer states it at the handshake; a producer that allocates for its
 * consumers makes buffers that satisfy all of them (zcv_constraints_merge);
 * a consumer whose needs the pool cannot meet gets the copy tier, into a
 * private pool laid out for it (zcv_constraints_layout).
 */
struct zcv_constraints {
	uint32_t min_plane_size[ZCV_MAX_PLANES]; /* bytes plane p needs from its offset */
	uint32_t stride_align; /* strides a multiple of this (power of two; 0/1 none) */
	uint32_t height_align; /* planes laid out for ALIGN(height, this) lines, one
				* after another in a one-object buffer (hardware
				* codecs' macroblock rows); power of two, 0/1 none */
	uint32_t hold;         /* frames it needs to hold at once; 0: the producer's
				* default */
};

/* Folds b into a so a pool meeting a serves both: the largest sizes and
 * alignments of the two, their holds added. */
ZCV_EXPORT void zcv_constraints_merge(struct zcv_constraints *a, const struct zcv_constraints *b);

/* The height planes must be laid out for: ALIGN(height, c->height_align). */
ZCV_EXPORT uint32_t zcv_constraints_height(const struct zcv_constraints *c, uint32_t height);

/* Bytes plane p of layout l must have from its offset to meet c: its
 * stride times its lines at the aligned height, or c's minimum size when
 * larger. 0 for an unknown format or plane. */
ZCV_EXPORT uint64_t zcv_constraints_plane_need(const struct zcv_constraints *c,
					       const struct zcv_layout *l, unsigned p);

/*
 * The layout of src's frames in one memory object that meets c: strides
 * rounded up to c->stride_align, each plane right after the previous
 * one's lines at the aligned height, and the object (size) large enough
 * for every plane's minimum size from its offset.
 * Returns 0, -EINVAL (unknown format, alignment not a power of two) or
 * -EOVERFLOW (a plane beyond 32 bits).
 */
ZCV_EXPORT int zcv_constraints_layout(const struct zcv_constraints *c, const struct zcv_layout *src,
				      struct zcv_layout *ret_layout);

/* Result of a fit check (see zcv_pool_check in core). */
enum zcv_fit {
	ZCV_FIT_OK = 0,     /* the buffers meet the constraints */
	ZCV_FIT_SIZE = 1,   /* only sizes fall short: bigger buffers of the same layout fit */
	ZCV_FIT_LAYOUT = 2, /* a stride or a plane's place is wrong */
};
