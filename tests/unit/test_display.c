/* SPDX-License-Identifier: MIT */
/* The display sink's hardware-free parts: software conversion and
 * centring (the copy path), the PNG writer, and clear failures without a
 * DRM device. The KMS paths run against vkms and bochs in tests/vm. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>
#include <zcv/display.h>
#include "fdcheck.h"

struct frame {
	struct zcv_layout l;
	uint8_t *base;
	const uint8_t *planes[ZCV_MAX_PLANES];
	uint32_t strides[ZCV_MAX_PLANES];
};

static void frame_init(struct frame *f, uint32_t fourcc, uint32_t w, uint32_t h)
{
	assert_int_equal(zcv_format_layout(fourcc, w, h, 1, &f->l), 0);
	f->base = calloc(1, f->l.size);
	assert_non_null(f->base);
	for (unsigned p = 0; p < f->l.n_planes; p++) {
		f->planes[p] = f->base + f->l.planes[p].offset;
		f->strides[p] = f->l.planes[p].stride;
	}
}

/* Fills a YUV frame with one colour. */
static void fill_yuv(struct frame *f, uint8_t y, uint8_t u, uint8_t v)
{
	uint8_t *p0 = (uint8_t *)f->planes[0];

	switch (f->l.fourcc) {
	case ZCV_FMT_NV12:
	case ZCV_FMT_NV16:
		memset(p0, y, f->l.planes[0].size);
		for (uint32_t i = 0; i < f->l.planes[1].size; i += 2) {
			((uint8_t *)f->planes[1])[i] = u;
			((uint8_t *)f->planes[1])[i + 1] = v;
		}
		break;
	case ZCV_FMT_YUV420:
		memset(p0, y, f->l.planes[0].size);
		memset((uint8_t *)f->planes[1], u, f->l.planes[1].size);
		memset((uint8_t *)f->planes[2], v, f->l.planes[2].size);
		break;
	case ZCV_FMT_YUYV:
	case ZCV_FMT_UYVY:
		for (uint32_t i = 0; i < f->l.planes[0].size; i += 4) {
			bool yuyv = f->l.fourcc == ZCV_FMT_YUYV;

			p0[i + (yuyv ? 0 : 1)] = y;
			p0[i + (yuyv ? 2 : 3)] = y;
			p0[i + (yuyv ? 1 : 0)] = u;
			p0[i + (yuyv ? 3 : 2)] = v;
		}
		break;
	}
}

static void expect_pixel(const uint8_t *px, uint8_t r, uint8_t g, uint8_t b, int tol)
{
	assert_in_range(px[2], r > tol ? r - tol : 0, r + tol > 255 ? 255 : r + tol);
	assert_in_range(px[1], g > tol ? g - tol : 0, g + tol > 255 ? 255 : g + tol);
	assert_in_range(px[0], b > tol ? b - tol : 0, b + tol > 255 ? 255 : b + tol);
}

/* Limited-range white, black and BT.601 red (SD) / BT.709 red (HD) for
 * every YUV format. */
static void test_convert_yuv(void **state)
{
	static const uint32_t fmts[] = { ZCV_FMT_NV12, ZCV_FMT_NV16, ZCV_FMT_YUV420, ZCV_FMT_YUYV,
					 ZCV_FMT_UYVY };

	for (unsigned i = 0; i < ZCV_ARRAY_SIZE(fmts); i++) {
		struct frame f;
		uint8_t *dst = malloc(64 * 48 * 4);

		frame_init(&f, fmts[i], 64, 48);
		fill_yuv(&f, 235, 128, 128);
		assert_int_equal(
			zcv_display_convert(&f.l, 0, f.planes, f.strides, dst, 64, 48, 256),
			64 * 48 * 4);
		expect_pixel(dst, 255, 255, 255, 1);
		expect_pixel(dst + 47 * 256 + 63 * 4, 255, 255, 255, 1);
		fill_yuv(&f, 16, 128, 128);
		zcv_display_convert(&f.l, 0, f.planes, f.strides, dst, 64, 48, 256);
		expect_pixel(dst + 10 * 256 + 33 * 4, 0, 0, 0, 0);
		/* BT.601 red: Y 81, Cb 90, Cr 240 */
		fill_yuv(&f, 81, 90, 240);
		zcv_display_convert(&f.l, 1 /* SMPTE170M */, f.planes, f.strides, dst, 64, 48, 256);
		expect_pixel(dst + 5 * 256 + 7 * 4, 255, 0, 0, 2);
		/* BT.709 red: Y 63, Cb 102, Cr 240 */
		fill_yuv(&f, 63, 102, 240);
		zcv_display_convert(&f.l, 3 /* REC709 */, f.planes, f.strides, dst, 64, 48, 256);
		expect_pixel(dst + 5 * 256 + 7 * 4, 255, 0, 0, 2);
		free(f.base);
		free(dst);
	}
}

/* A smaller frame lands centred and leaves the rest alone; a larger one is
 * cut to its centre. */
static void test_convert_centre(void **state)
{
	struct frame f;
	uint8_t *dst = malloc(100 * 60 * 4);
	int64_t n;

	frame_init(&f, ZCV_FMT_XRGB8888, 40, 20);
	for (uint32_t y = 0; y < 20; y++)
		for (uint32_t x = 0; x < 40; x++) {
			uint8_t *p = (uint8_t *)f.planes[0] + y * f.strides[0] + x * 4;

			p[0] = (uint8_t)x;
			p[1] = (uint8_t)y;
			p[2] = 200;
			p[3] = 0;
		}
	memset(dst, 0xee, 100 * 60 * 4);
	n = zcv_display_convert(&f.l, 0, f.planes, f.strides, dst, 100, 60, 400);
	assert_int_equal(n, 40 * 20 * 4);
	/* frame at (30, 20) */
	assert_int_equal(dst[20 * 400 + 30 * 4 + 2], 200);
	assert_int_equal(dst[20 * 400 + 30 * 4], 0);
	assert_int_equal(dst[39 * 400 + 69 * 4], 39);
	assert_int_equal(dst[39 * 400 + 69 * 4 + 1], 19);
	assert_int_equal(dst[19 * 400 + 30 * 4], 0xee);
	assert_int_equal(dst[20 * 400 + 29 * 4], 0xee);
	assert_int_equal(dst[40 * 400 + 30 * 4], 0xee);

	/* 40x20 into 10x6: columns 14.., lines 6.. (offsets rounded down to even) */
	n = zcv_display_convert(&f.l, 0, f.planes, f.strides, dst, 10, 6, 40);
	assert_int_equal(n, 10 * 6 * 4);
	assert_int_equal(dst[0], 14);
	assert_int_equal(dst[1], 6);
	assert_int_equal(dst[5 * 40 + 9 * 4], 23);
	free(f.base);

	f.l.fourcc = ZCV_FOURCC('Z', 'Z', 'Z', 'Z');
	assert_int_equal(zcv_display_convert(&f.l, 0, f.planes, f.strides, dst, 10, 6, 40),
			 -EINVAL);
	free(dst);
}

static void test_png(void **state)
{
	char dir[] = "/tmp/zcv-test-display-XXXXXX", path[128];
	uint32_t w = 33, h = 7;
	uint8_t *px = malloc((size_t)w * h * 4), *file, *raw;
	uLongf raw_len = (uLongf)(w * 3 + 1) * h;
	FILE *fp;
	long n;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/x.png", dir);
	for (uint32_t i = 0; i < w * h; i++) {
		px[i * 4] = (uint8_t)i;           /* B */
		px[i * 4 + 1] = (uint8_t)(i * 3); /* G */
		px[i * 4 + 2] = (uint8_t)(i * 7); /* R */
		px[i * 4 + 3] = 0x55;
	}
	assert_int_equal(zcv_png_write_xrgb(path, px, w, h, w * 4), 0);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	file = malloc((size_t)n);
	assert_int_equal(fread(file, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	assert_memory_equal(file, "\x89PNG\r\n\x1a\n", 8);
	assert_memory_equal(file + 12, "IHDR", 4);
	assert_int_equal(file[16 + 3], w);
	assert_int_equal(file[20 + 3], h);
	assert_int_equal(file[24], 8);
	assert_int_equal(file[25], 2);
	/* one IDAT after IHDR (8 + 25 bytes) */
	assert_memory_equal(file + 33 + 4, "IDAT", 4);
	{
		uint32_t len = (uint32_t)file[33] << 24 | file[34] << 16 | file[35] << 8 | file[36];

		raw = malloc(raw_len);
		assert_int_equal(uncompress(raw, &raw_len, file + 41, len), Z_OK);
		assert_int_equal(raw_len, (w * 3 + 1) * h);
		assert_int_equal(crc32(crc32(0, file + 37, 4), file + 41, len),
				 (uLong)file[41 + len] << 24 | file[42 + len] << 16 |
					 file[43 + len] << 8 | file[44 + len]);
	}
	for (uint32_t y = 0; y < h; y++) {
		assert_int_equal(raw[y * (w * 3 + 1)], 0);
		for (uint32_t x = 0; x < w; x++) {
			const uint8_t *p = raw + y * (w * 3 + 1) + 1 + x * 3,
				      *s = px + (y * w + x) * 4;

			assert_int_equal(p[0], s[2]);
			assert_int_equal(p[1], s[1]);
			assert_int_equal(p[2], s[0]);
		}
	}
	assert_int_equal(zcv_png_write_xrgb(path, px, 0, h, w * 4), -EINVAL);
	assert_int_equal(zcv_png_write_xrgb(path, px, w, h, w), -EINVAL);
	snprintf(path, sizeof(path), "%s/no/such/dir.png", dir);
	assert_int_equal(zcv_png_write_xrgb(path, px, w, h, w * 4), -ENOENT);
	snprintf(path, sizeof(path), "%s/x.png", dir);
	unlink(path);
	rmdir(dir);
	free(px);
	free(file);
	free(raw);
}

static void on_release(void *data, const struct zcv_client_frame *f)
{
}

static void test_no_device(void **state)
{
	struct zcv_display_config cfg = { .device = "/dev/dri/zcv-no-such-card" };
	struct zcv_display_callbacks cbs = { .release = on_release };
	struct zcv_display *d = NULL;
	char err[256] = "";

	assert_int_equal(zcv_display_create(&cfg, &cbs, NULL, &d, err, sizeof(err)), -ENOENT);
	assert_null(d);
	assert_non_null(strstr(err, "cannot open /dev/dri/zcv-no-such-card"));
	cfg.device = "/dev/null";
	assert_int_equal(zcv_display_create(&cfg, &cbs, NULL, &d, err, sizeof(err)), -ENODEV);
	assert_non_null(strstr(err, "is not a DRM device"));
	cfg.width = 640; /* width without height */
	assert_int_equal(zcv_display_create(&cfg, &cbs, NULL, &d, err, sizeof(err)), -EINVAL);
	cbs.release = NULL;
	cfg.width = 0;
	assert_int_equal(zcv_display_create(&cfg, &cbs, NULL, &d, NULL, 0), -EINVAL);
	zcv_display_destroy(NULL);
}

/* The display sink fails as the display does, and leaves nothing behind. */
static void test_sink_no_device(void **state)
{
	struct zcv_display_config cfg = { .device = "/dev/dri/zcv-no-such-card" };
	struct zcv_sink *sink = NULL;
	struct zcv_display *d = NULL;
	char err[256] = "";

	assert_int_equal(zcv_display_sink_create(&cfg, NULL, NULL, &sink, &d, err, sizeof(err)),
			 -ENOENT);
	assert_null(sink);
	assert_null(d);
	assert_non_null(strstr(err, "cannot open /dev/dri/zcv-no-such-card"));
	cfg.device = "/dev/null";
	assert_int_equal(zcv_display_sink_create(&cfg, NULL, NULL, &sink, &d, err, sizeof(err)),
			 -ENODEV);
	assert_null(sink);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_convert_yuv, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_convert_centre, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_png, zcv_test_fd_setup, zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_no_device, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_sink_no_device, zcv_test_fd_setup,
						zcv_test_fd_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
