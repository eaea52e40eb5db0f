/* SPDX-License-Identifier: MIT */
/* Software conversion of every zcv format to XRGB8888, for the display's
 * copy path and for snapshots of a shown frame. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <zcv/display.h>

/* V4L2_COLORSPACE_REC709: HD sources (vivid's HDMI input at 720p/1080p) */
#define COLORSPACE_REC709 3

/* Limited-range YCbCr to RGB in 8.8 fixed point: tables of the terms so the
 * inner loop is three lookups and adds per pixel (it runs under emulation
 * in the tests). */
struct yuv_tables {
	int y[256], rv[256], gu[256], gv[256], bu[256];
};

/* V4L2_COLORSPACE_DEFAULT (0, unknown): V4L2's and GStreamer's rule, HD is
 * BT.709 and SD is BT.601 */
static bool is_bt709(uint32_t colorspace, uint32_t height)
{
	return colorspace == COLORSPACE_REC709 || (colorspace == 0 && height >= 720);
}

static void tables_init(struct yuv_tables *t, bool bt709)
{
	/* BT.601: 1.164, 1.596, 0.392, 0.813, 2.017; BT.709: 1.164, 1.793,
	 * 0.213, 0.533, 2.112 (times 256) */
	int crv = 409, cgu = 100, cgv = 208, cbu = 516;

	if (bt709) {
		crv = 459;
		cgu = 55;
		cgv = 136;
		cbu = 541;
	}
	for (int i = 0; i < 256; i++) {
		t->y[i] = 298 * (i - 16) + 128;
		t->rv[i] = crv * (i - 128);
		t->gu[i] = -cgu * (i - 128);
		t->gv[i] = -cgv * (i - 128);
		t->bu[i] = cbu * (i - 128);
	}
}

static inline uint8_t clamp8(int v)
{
	v >>= 8;
	return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

static inline void put(uint8_t *d, const struct yuv_tables *t, int y, int r, int g, int b)
{
	int yy = t->y[y];

	d[0] = clamp8(yy + b);
	d[1] = clamp8(yy + g);
	d[2] = clamp8(yy + r);
	d[3] = 0xff;
}

/* One line of n pixels (n even except possibly the last pair) from Y with
 * separate U and V sample pointers advancing every 2 pixels by ustep. */
static void line_yuv(uint8_t *d, const struct yuv_tables *t, const uint8_t *y, unsigned ystep,
		     const uint8_t *u, const uint8_t *v, unsigned cstep, uint32_t n)
{
	for (uint32_t x = 0; x < n; x += 2) {
		int r = t->rv[*v], g = t->gu[*u] + t->gv[*v], b = t->bu[*u];

		put(d, t, y[0], r, g, b);
		if (x + 1 < n)
			put(d + 4, t, y[ystep], r, g, b);
		d += 8;
		y += 2 * ystep;
		u += cstep;
		v += cstep;
	}
}

int64_t zcv_display_convert(const struct zcv_layout *l, uint32_t colorspace,
			    const uint8_t *const planes[ZCV_MAX_PLANES],
			    const uint32_t strides[ZCV_MAX_PLANES], uint8_t *dst, uint32_t dw,
			    uint32_t dh, uint32_t dstride)
{
	const struct zcv_format_info *fi = zcv_format_lookup(l->fourcc);
	struct yuv_tables t;
	uint32_t sx, sy, dx, dy, w, h;

	if (!fi || !dst || !dw || !dh)
		return -EINVAL;
	for (unsigned p = 0; p < fi->n_planes; p++)
		if (!planes[p])
			return -EINVAL;
	/* centre: cut the source where it is larger, pad where smaller;
	 * source offsets even so chroma pairs stay aligned */
	w = ZCV_MIN(l->width, dw);
	h = ZCV_MIN(l->height, dh);
	sx = ((l->width - w) / 2) & ~1u;
	sy = ((l->height - h) / 2) & ~1u;
	dx = (dw - w) / 2;
	dy = (dh - h) / 2;
	if (fi->is_yuv)
		tables_init(&t, is_bt709(colorspace, l->height));

	for (uint32_t row = 0; row < h; row++) {
		uint32_t r = sy + row;
		uint8_t *d = dst + (size_t)(dy + row) * dstride + (size_t)dx * 4;
		const uint8_t *p0 = planes[0] + (size_t)r * strides[0];

		switch (l->fourcc) {
		case ZCV_FMT_XRGB8888:
		case ZCV_FMT_ARGB8888:
			memcpy(d, p0 + (size_t)sx * 4, (size_t)w * 4);
			break;
		case ZCV_FMT_GREY:
			for (uint32_t x = 0; x < w; x++) {
				uint8_t g = p0[sx + x];

				d[4 * x] = d[4 * x + 1] = d[4 * x + 2] = g;
				d[4 * x + 3] = 0xff;
			}
			break;
		case ZCV_FMT_NV12:
		case ZCV_FMT_NV16: {
			uint32_t cr = l->fourcc == ZCV_FMT_NV12 ? r / 2 : r;
			const uint8_t *uv = planes[1] + (size_t)cr * strides[1] + sx;

			line_yuv(d, &t, p0 + sx, 1, uv, uv + 1, 2, w);
			break;
		}
		case ZCV_FMT_YUV420: {
			const uint8_t *u = planes[1] + (size_t)(r / 2) * strides[1] + sx / 2;
			const uint8_t *v = planes[2] + (size_t)(r / 2) * strides[2] + sx / 2;

			line_yuv(d, &t, p0 + sx, 1, u, v, 1, w);
			break;
		}
		case ZCV_FMT_YUYV: {
			const uint8_t *s = p0 + (size_t)sx * 2;

			line_yuv(d, &t, s, 2, s + 1, s + 3, 4, w);
			break;
		}
		case ZCV_FMT_UYVY: {
			const uint8_t *s = p0 + (size_t)sx * 2;

			line_yuv(d, &t, s + 1, 2, s, s + 2, 4, w);
			break;
		}
		default:
			return -EINVAL;
		}
	}
	return (int64_t)w * h * 4;
}
