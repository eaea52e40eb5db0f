/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include <zcv/format.h>

/*
 * The deterministic test pattern. Frame k is a pure function of
 * (pattern, layout, k): eight colour bars, a box that moves with k, and
 * k itself as a 32-cell bar code along the top (cell i white when bit
 * 31-i of k is set) so any consumer can tell which frame it holds.
 * Padding bytes (stride beyond the visible row) are 0.
 */
enum zcv_pattern {
	ZCV_PATTERN_BARS = 0, /* bars + moving box + frame code */
	ZCV_PATTERN_CHECKERS, /* checkerboard scrolling with k + moving box + frame code */
};

/* "bars" / "checkers" -> pattern; returns 0 or -EINVAL. */
int zcv_pattern_from_name(const char *name, enum zcv_pattern *ret_pattern);
const char *zcv_pattern_name(enum zcv_pattern pattern);

/*
 * Renders frame k into planes[p] (each at least layout->planes[p].size
 * bytes, at the layout's strides). Returns 0, -EINVAL (unknown
 * format/pattern) or -ENOMEM.
 */
int zcv_pattern_render(enum zcv_pattern pattern, const struct zcv_layout *layout, uint64_t k,
		       uint8_t *const planes[ZCV_MAX_PLANES]);

/* Reads the frame code of a frame. Returns 0 or -EBADMSG when the cells
 * are not clean black/white (not a pattern frame, or corrupted). */
int zcv_pattern_read_code(const struct zcv_layout *layout,
			  const uint8_t *const planes[ZCV_MAX_PLANES], uint32_t *ret_k);

/*
 * Compares a frame with the pattern's frame k, visible bytes only.
 * scratch: layout->size bytes of working memory (caller's, reused across
 * calls so checking costs no allocation). Returns 0 when equal, -EBADMSG
 * when not (ret_first_diff, when not NULL, gets plane*2^32 + byte offset).
 */
int zcv_pattern_check(enum zcv_pattern pattern, const struct zcv_layout *layout, uint64_t k,
		      const uint8_t *const planes[ZCV_MAX_PLANES], uint8_t *scratch,
		      uint64_t *ret_first_diff);
