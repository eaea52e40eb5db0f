/* SPDX-License-Identifier: MIT */
#include <string.h>
#include <zcv/pattern.h>

struct rgb {
	uint8_t r, g, b;
};

struct yuv {
	uint8_t y, u, v;
};

/* 75% colour bars plus the code's black and white, the box colour. */
enum { WHITE = 8, BLACK, BOX, N_COLOURS };
static const struct rgb palette[N_COLOURS] = {
	{ 191, 191, 191 }, { 191, 191, 0 }, { 0, 191, 191 }, { 0, 191, 0 },
	{ 191, 0, 191 },   { 191, 0, 0 },   { 0, 0, 191 },   { 16, 16, 16 },
	{ 255, 255, 255 }, { 0, 0, 0 },     { 255, 128, 0 },
};

/* BT.601 limited range, integer, so every platform renders the same bytes. */
static struct yuv to_yuv(struct rgb c)
{
	int y = ((66 * c.r + 129 * c.g + 25 * c.b + 128) >> 8) + 16;
	int u = ((-38 * c.r - 74 * c.g + 112 * c.b + 128) >> 8) + 128;
	int v = ((112 * c.r - 94 * c.g - 18 * c.b + 128) >> 8) + 128;

	return (struct yuv){ (uint8_t)y, (uint8_t)u, (uint8_t)v };
}

struct geometry {
	uint32_t code_h, cell_w;    /* frame code rows and cell width */
	uint32_t box, box_x, box_y; /* moving box */
};

static struct geometry geometry_of(const struct zcv_layout *l, uint64_t k)
{
	struct geometry g;

	g.cell_w = l->width / 32;
	g.cell_w &= ~1u; /* even, so 4:2:x chroma samples never straddle cells */
	g.code_h = l->height / 16 < 8 ? 8 : l->height / 16;
	g.code_h = ZCV_ALIGN_UP(g.code_h, 2u);
	if (g.code_h > l->height)
		g.code_h = l->height & ~1u;
	g.box = ZCV_MIN(l->width, l->height) / 4;
	g.box &= ~1u;
	g.box_x = l->width > g.box ? (uint32_t)((k * 8) % (l->width - g.box)) & ~1u : 0;
	g.box_y = l->height - g.code_h > g.box ?
			  g.code_h + (uint32_t)((k * 4) % (l->height - g.code_h - g.box)) :
			  g.code_h;
	g.box_y &= ~1u;
	return g;
}

static struct yuv yuv_palette[N_COLOURS];

static void palette_init(void)
{
	static int done;

	if (__atomic_load_n(&done, __ATOMIC_ACQUIRE))
		return;
	for (int c = 0; c < N_COLOURS; c++)
		yuv_palette[c] = to_yuv(palette[c]);
	__atomic_store_n(&done, 1, __ATOMIC_RELEASE);
}

/*
 * Palette index of every pixel of line y. Rendering goes through these
 * index rows so each output byte is a table lookup: the source renders
 * 1080p60 on one core with room to spare.
 */
static void index_row(enum zcv_pattern pat, const struct zcv_layout *l, const struct geometry *g,
		      uint64_t k, uint32_t y, uint8_t *idx)
{
	if (y < g->code_h) {
		for (uint32_t x = 0; x < l->width; x++) {
			uint32_t cell = g->cell_w ? x / g->cell_w : 32;

			idx[x] = cell < 32 && ((k >> (31 - cell)) & 1) ? WHITE : BLACK;
		}
		return;
	}
	for (uint32_t x = 0; x < l->width; x++) {
		if (pat == ZCV_PATTERN_CHECKERS)
			/* 16-pixel squares scrolling right by 2 pixels a frame */
			idx[x] = ((((x + 2 * k) >> 4) ^ (y >> 4)) & 1) ? 0 : 7;
		else
			idx[x] = (uint8_t)((uint64_t)x * 8 / l->width);
	}
	if (y >= g->box_y && y < g->box_y + g->box)
		memset(idx + g->box_x, BOX, g->box);
}

int zcv_pattern_from_name(const char *name, enum zcv_pattern *ret_pattern)
{
	if (!strcmp(name, "bars"))
		*ret_pattern = ZCV_PATTERN_BARS;
	else if (!strcmp(name, "checkers"))
		*ret_pattern = ZCV_PATTERN_CHECKERS;
	else
		return -EINVAL;
	return 0;
}

const char *zcv_pattern_name(enum zcv_pattern pattern)
{
	return pattern == ZCV_PATTERN_CHECKERS ? "checkers" : "bars";
}

int zcv_pattern_render(enum zcv_pattern pat, const struct zcv_layout *l, uint64_t k,
		       uint8_t *const planes[ZCV_MAX_PLANES])
{
	const struct zcv_format_info *fi = zcv_format_lookup(l->fourcc);
	uint8_t *idx;
	struct geometry g;

	if (!fi || (pat != ZCV_PATTERN_BARS && pat != ZCV_PATTERN_CHECKERS))
		return -EINVAL;
	idx = malloc(l->width);
	if (!idx)
		return -ENOMEM;
	palette_init();
	g = geometry_of(l, k);

	for (unsigned p = 0; p < l->n_planes; p++) {
		uint32_t lines = zcv_format_plane_lines(fi, p, l->height);
		uint32_t row = zcv_format_plane_row_bytes(fi, p, l->width);
		uint32_t stride = l->planes[p].stride;

		for (uint32_t py = 0; py < lines; py++) {
			uint8_t *d = planes[p] + (size_t)py * stride;

			/* chroma of subsampled planes comes from the top-left pixel */
			index_row(pat, l, &g, k, py * fi->vsub[p], idx);
			memset(d + row, 0, stride - row);
			switch (l->fourcc) {
			case ZCV_FMT_NV12:
			case ZCV_FMT_NV16:
			case ZCV_FMT_YUV420:
			case ZCV_FMT_GREY:
				if (p == 0) {
					for (uint32_t x = 0; x < l->width; x++)
						d[x] = yuv_palette[idx[x]].y;
				} else if (fi->n_planes == 2) { /* interleaved UV */
					for (uint32_t cx = 0; cx < row / 2; cx++) {
						d[2 * cx] = yuv_palette[idx[2 * cx]].u;
						d[2 * cx + 1] = yuv_palette[idx[2 * cx]].v;
					}
				} else { /* planar U (p 1) or V (p 2) */
					for (uint32_t cx = 0; cx < row; cx++)
						d[cx] = p == 1 ? yuv_palette[idx[2 * cx]].u :
								 yuv_palette[idx[2 * cx]].v;
				}
				break;
			case ZCV_FMT_YUYV:
			case ZCV_FMT_UYVY: {
				/* byte order Y0 U Y1 V, or U Y0 V Y1 */
				int yo = l->fourcc == ZCV_FMT_YUYV ? 0 : 1, co = 1 - yo;

				for (uint32_t x = 0; x < l->width; x += 2) {
					struct yuv c0 = yuv_palette[idx[x]];

					d[2 * x + yo] = c0.y;
					d[2 * x + co] = c0.u;
					d[2 * x + 2 + yo] = yuv_palette[idx[x + 1]].y;
					d[2 * x + 2 + co] = c0.v;
				}
				break;
			}
			case ZCV_FMT_XRGB8888:
			case ZCV_FMT_ARGB8888:
				for (uint32_t x = 0; x < l->width; x++) {
					d[4 * x] = palette[idx[x]].b;
					d[4 * x + 1] = palette[idx[x]].g;
					d[4 * x + 2] = palette[idx[x]].r;
					d[4 * x + 3] = 0xff;
				}
				break;
			default:
				free(idx);
				return -EINVAL;
			}
		}
	}
	free(idx);
	return 0;
}

/* Luma (or green for RGB) of the centre of cell i of the frame code. */
static int code_sample(const struct zcv_layout *l, const uint8_t *const planes[], uint32_t x,
		       uint32_t y)
{
	const uint8_t *row = planes[0] + (size_t)y * l->planes[0].stride;

	switch (l->fourcc) {
	case ZCV_FMT_YUYV:
		return row[2 * x];
	case ZCV_FMT_UYVY:
		return row[2 * x + 1];
	case ZCV_FMT_XRGB8888:
	case ZCV_FMT_ARGB8888:
		return row[4 * x + 1];
	default:
		return row[x];
	}
}

int zcv_pattern_read_code(const struct zcv_layout *l, const uint8_t *const planes[ZCV_MAX_PLANES],
			  uint32_t *ret_k)
{
	struct geometry g = geometry_of(l, 0);
	uint32_t k = 0;

	if (g.cell_w == 0 || g.code_h == 0)
		return -EBADMSG;
	for (uint32_t i = 0; i < 32; i++) {
		int v = code_sample(l, planes, i * g.cell_w + g.cell_w / 2, g.code_h / 2);

		/* limited-range white is 235, black 16; RGB 255/0 */
		if (v >= 200)
			k |= 1u << (31 - i);
		else if (v > 40)
			return -EBADMSG;
	}
	*ret_k = k;
	return 0;
}

int zcv_pattern_check(enum zcv_pattern pat, const struct zcv_layout *l, uint64_t k,
		      const uint8_t *const planes[ZCV_MAX_PLANES], uint8_t *scratch,
		      uint64_t *ret_first_diff)
{
	const struct zcv_format_info *fi = zcv_format_lookup(l->fourcc);
	uint8_t *ref[ZCV_MAX_PLANES] = { 0 };
	int r;

	if (!fi)
		return -EINVAL;
	for (unsigned p = 0; p < l->n_planes; p++)
		ref[p] = scratch + l->planes[p].offset;
	r = zcv_pattern_render(pat, l, k, ref);
	if (r < 0)
		return r;
	for (unsigned p = 0; p < l->n_planes; p++) {
		uint32_t row = zcv_format_plane_row_bytes(fi, p, l->width);
		uint32_t lines = zcv_format_plane_lines(fi, p, l->height);

		for (uint32_t y = 0; y < lines; y++) {
			const uint8_t *a = planes[p] + (size_t)y * l->planes[p].stride;
			const uint8_t *b = ref[p] + (size_t)y * l->planes[p].stride;

			if (memcmp(a, b, row)) {
				uint32_t x = 0;

				while (a[x] == b[x])
					x++;
				if (ret_first_diff)
					*ret_first_diff = ((uint64_t)p << 32) |
							  ((uint64_t)y * l->planes[p].stride + x);
				return -EBADMSG;
			}
		}
	}
	return 0;
}
