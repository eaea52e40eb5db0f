/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <zcv/format.h>

#define DRM_FOURCC(a, b, c, d) ZCV_FOURCC(a, b, c, d)

/* cpp is per plane in bytes for one sample column before subsampling:
 * NV12's UV plane has cpp 2 (U and V) at hsub 2, so a line holds
 * width/2 * 2 bytes. */
static const struct zcv_format_info formats[] = {
	{ ZCV_FMT_NV12,
	  DRM_FOURCC('N', 'V', '1', '2'),
	  "NV12",
	  2,
	  { 1, 2 },
	  { 1, 2 },
	  { 1, 2 },
	  2,
	  2,
	  true },
	{ ZCV_FMT_NV16,
	  DRM_FOURCC('N', 'V', '1', '6'),
	  "NV16",
	  2,
	  { 1, 2 },
	  { 1, 2 },
	  { 1, 1 },
	  2,
	  1,
	  true },
	{ ZCV_FMT_YUV420,
	  DRM_FOURCC('Y', 'U', '1', '2'),
	  "I420",
	  3,
	  { 1, 1, 1 },
	  { 1, 2, 2 },
	  { 1, 2, 2 },
	  2,
	  2,
	  true },
	{ ZCV_FMT_YUYV,
	  DRM_FOURCC('Y', 'U', 'Y', 'V'),
	  "YUYV",
	  1,
	  { 2 },
	  { 1 },
	  { 1 },
	  2,
	  1,
	  true },
	{ ZCV_FMT_UYVY,
	  DRM_FOURCC('U', 'Y', 'V', 'Y'),
	  "UYVY",
	  1,
	  { 2 },
	  { 1 },
	  { 1 },
	  2,
	  1,
	  true },
	{ ZCV_FMT_XRGB8888,
	  DRM_FOURCC('X', 'R', '2', '4'),
	  "XRGB8888",
	  1,
	  { 4 },
	  { 1 },
	  { 1 },
	  1,
	  1,
	  false },
	{ ZCV_FMT_ARGB8888,
	  DRM_FOURCC('A', 'R', '2', '4'),
	  "ARGB8888",
	  1,
	  { 4 },
	  { 1 },
	  { 1 },
	  1,
	  1,
	  false },
	{ ZCV_FMT_GREY,
	  DRM_FOURCC('R', '8', ' ', ' '),
	  "GREY",
	  1,
	  { 1 },
	  { 1 },
	  { 1 },
	  1,
	  1,
	  false },
};

static const struct {
	const char *alias;
	uint32_t fourcc;
} aliases[] = {
	{ "YU12", ZCV_FMT_YUV420 },   { "YUV420", ZCV_FMT_YUV420 }, { "GRAY8", ZCV_FMT_GREY },
	{ "Y8", ZCV_FMT_GREY },       { "YUY2", ZCV_FMT_YUYV },     { "BGRX", ZCV_FMT_XRGB8888 },
	{ "XR24", ZCV_FMT_XRGB8888 }, { "AR24", ZCV_FMT_ARGB8888 }, { "BGRA", ZCV_FMT_ARGB8888 },
};

const struct zcv_format_info *zcv_format_lookup(uint32_t fourcc)
{
	for (size_t i = 0; i < ZCV_ARRAY_SIZE(formats); i++)
		if (formats[i].fourcc == fourcc)
			return &formats[i];
	return NULL;
}

const struct zcv_format_info *zcv_format_lookup_name(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < ZCV_ARRAY_SIZE(formats); i++)
		if (!strcasecmp(formats[i].name, name))
			return &formats[i];
	for (size_t i = 0; i < ZCV_ARRAY_SIZE(aliases); i++)
		if (!strcasecmp(aliases[i].alias, name))
			return zcv_format_lookup(aliases[i].fourcc);
	return NULL;
}

const struct zcv_format_info *zcv_format_at(unsigned int i)
{
	return i < ZCV_ARRAY_SIZE(formats) ? &formats[i] : NULL;
}

const char *zcv_fourcc_str(uint32_t fourcc, char buf[static 5])
{
	for (int i = 0; i < 4; i++) {
		char c = (char)((fourcc >> (8 * i)) & 0xff);
		buf[i] = (c >= 0x20 && c < 0x7f) ? c : '?';
	}
	buf[4] = '\0';
	return buf;
}

uint32_t zcv_format_plane_row_bytes(const struct zcv_format_info *fi, unsigned p, uint32_t width)
{
	return (width + fi->hsub[p] - 1) / fi->hsub[p] * fi->cpp[p];
}

uint32_t zcv_format_plane_lines(const struct zcv_format_info *fi, unsigned p, uint32_t height)
{
	return (height + fi->vsub[p] - 1) / fi->vsub[p];
}

int zcv_format_layout(uint32_t fourcc, uint32_t width, uint32_t height, uint32_t stride_align,
		      struct zcv_layout *ret_layout)
{
	const struct zcv_format_info *fi = zcv_format_lookup(fourcc);
	struct zcv_layout l = { .fourcc = fourcc, .width = width, .height = height };
	uint64_t offset = 0;

	if (!fi || width == 0 || height == 0 || stride_align == 0 ||
	    (stride_align & (stride_align - 1)))
		return -EINVAL;
	if (width % fi->pixel_align || height % fi->height_align)
		return -EINVAL;
	/* 16384 is above any V4L2/KMS size and keeps every product in 64 bits. */
	if (width > 16384 || height > 16384)
		return -EOVERFLOW;

	l.n_planes = fi->n_planes;
	for (unsigned p = 0; p < fi->n_planes; p++) {
		uint64_t stride = ZCV_ALIGN_UP((uint64_t)zcv_format_plane_row_bytes(fi, p, width),
					       stride_align);
		uint64_t size = stride * zcv_format_plane_lines(fi, p, height);

		offset = ZCV_ALIGN_UP(offset, stride_align);
		if (offset + size > UINT32_MAX)
			return -EOVERFLOW;
		l.planes[p].offset = (uint32_t)offset;
		l.planes[p].stride = (uint32_t)stride;
		l.planes[p].size = (uint32_t)size;
		offset += size;
	}
	l.size = offset;
	*ret_layout = l;
	return 0;
}

int zcv_layout_validate(const struct zcv_layout *l)
{
	const struct zcv_format_info *fi = zcv_format_lookup(l->fourcc);

	if (!fi || l->n_planes != fi->n_planes || l->width == 0 || l->height == 0 ||
	    l->width > 16384 || l->height > 16384)
		return -EINVAL;
	if (l->width % fi->pixel_align || l->height % fi->height_align)
		return -EINVAL;
	for (unsigned p = 0; p < l->n_planes; p++) {
		const struct zcv_plane_layout *pl = &l->planes[p];
		uint64_t need = (uint64_t)pl->stride * zcv_format_plane_lines(fi, p, l->height);

		if (pl->stride < zcv_format_plane_row_bytes(fi, p, l->width) || pl->size < need)
			return -EINVAL;
		if (l->size && (uint64_t)pl->offset + pl->size > l->size)
			return -EINVAL;
	}
	return 0;
}

uint64_t zcv_frame_checksum(const struct zcv_layout *l, const uint8_t *const planes[ZCV_MAX_PLANES])
{
	const struct zcv_format_info *fi = zcv_format_lookup(l->fourcc);
	const uint64_t prime = 0x100000001b3ull;
	uint64_t h = 0xcbf29ce484222325ull;

	if (!fi)
		return 0;
	for (unsigned p = 0; p < l->n_planes; p++) {
		uint32_t row = zcv_format_plane_row_bytes(fi, p, l->width);
		uint32_t lines = zcv_format_plane_lines(fi, p, l->height);

		for (uint32_t y = 0; y < lines; y++) {
			const uint8_t *s = planes[p] + (size_t)y * l->planes[p].stride;
			uint32_t x = 0;

			for (; x + 8 <= row; x += 8) {
				uint64_t w;

				memcpy(&w, s + x, 8);
				h = (h ^ w) * prime;
			}
			for (; x < row; x++)
				h = (h ^ s[x]) * prime;
		}
	}
	return h;
}
