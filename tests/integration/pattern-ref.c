/* SPDX-License-Identifier: MIT */
/*
 * Reference frames for the integration tests, computed from the pattern
 * function alone:
 *   pattern-ref fnv  WxH FORMAT FIRST COUNT   zcv_frame_checksum of each frame
 *   pattern-ref i420 WxH FIRST COUNT OUT      frames as packed I420 (what a Y4M
 *                                             decoder yields for NV12/I420 input)
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <zcv/pattern.h>
#include "tool_common.h"

int main(int argc, char **argv)
{
	struct zcv_layout l;
	uint32_t w, h, fourcc = ZCV_FMT_YUV420;
	uint64_t first, count;
	bool i420 = argc == 6 && !strcmp(argv[1], "i420");
	uint8_t *base, *pl[ZCV_MAX_PLANES] = { 0 };
	FILE *out = stdout;

	if (!(argc == 6 && (i420 || !strcmp(argv[1], "fnv")))) {
		fprintf(stderr, "usage: pattern-ref fnv WxH FORMAT FIRST COUNT | i420 WxH FIRST "
				"COUNT OUT\n");
		return 2;
	}
	if (tool_parse_size("pattern-ref", argv[2], &w, &h) < 0 ||
	    (!i420 && tool_parse_format("pattern-ref", argv[3], &fourcc) < 0) ||
	    tool_parse_uint("pattern-ref", "FIRST", argv[i420 ? 3 : 4], UINT32_MAX, &first) < 0 ||
	    tool_parse_uint("pattern-ref", "COUNT", argv[i420 ? 4 : 5], UINT32_MAX, &count) < 0)
		return 2;
	if (zcv_format_layout(fourcc, w, h, i420 ? 1 : 64, &l) < 0)
		return 2;
	base = malloc(l.size);
	for (unsigned p = 0; p < l.n_planes; p++)
		pl[p] = base + l.planes[p].offset;
	if (i420 && !(out = fopen(argv[5], "wb")))
		return 1;
	for (uint64_t k = first; k < first + count; k++) {
		zcv_pattern_render(ZCV_PATTERN_BARS, &l, k, pl);
		if (i420)
			fwrite(base, 1, l.size, out);
		else
			printf("%" PRIu64 " %016" PRIx64 "\n", k,
			       zcv_frame_checksum(&l, (const uint8_t *const *)pl));
	}
	free(base);
	return fclose(out) ? 1 : 0;
}
