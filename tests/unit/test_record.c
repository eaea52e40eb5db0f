/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <zcv/pattern.h>
#include <zcv/record.h>
#include "fdcheck.h"

static char dir[] = "/tmp/zcv-test-record-XXXXXX";

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Sample (x, y) of component c (0 Y, 1 U, 2 V) read straight from the
 * source layout, the reference the Y4M planes must match. */
static uint8_t sample(const struct zcv_layout *l, uint8_t *const pl[], int c, uint32_t x,
		      uint32_t y)
{
	switch (l->fourcc) {
	case ZCV_FMT_NV12:
	case ZCV_FMT_NV16: {
		uint32_t cy = l->fourcc == ZCV_FMT_NV12 ? y / 2 : y;
		return c == 0 ? pl[0][y * l->planes[0].stride + x] :
				pl[1][cy * l->planes[1].stride + (x / 2) * 2 + (c - 1)];
	}
	case ZCV_FMT_YUYV:
		return c == 0 ? pl[0][y * l->planes[0].stride + x * 2] :
				pl[0][y * l->planes[0].stride + (x / 2) * 4 + (c == 1 ? 1 : 3)];
	case ZCV_FMT_UYVY:
		return c == 0 ? pl[0][y * l->planes[0].stride + x * 2 + 1] :
				pl[0][y * l->planes[0].stride + (x / 2) * 4 + (c == 1 ? 0 : 2)];
	default: /* I420 */
		return c == 0 ? pl[0][y * l->planes[0].stride + x] :
				pl[c][(y / 2) * l->planes[c].stride + x / 2];
	}
}

static void roundtrip(uint32_t fourcc, const char *tag, uint32_t vsub, bool expect_conversion)
{
	char path[128];
	struct zcv_layout l;
	struct zcv_record *rec = NULL;
	uint8_t *base, *pl[ZCV_MAX_PLANES] = { 0 }, *file;
	size_t len, hdr_len;
	char hdr[128];
	const uint32_t w = 96, h = 64, frames = 3;

	/* stride padding (align 64 on a 96-wide 4:2:x plane) checks the writer
	 * drops padding */
	assert_int_equal(zcv_format_layout(fourcc, w, h, 64, &l), 0);
	base = malloc(l.size);
	for (unsigned p = 0; p < l.n_planes; p++)
		pl[p] = base + l.planes[p].offset;
	snprintf(path, sizeof(path), "%s/out.y4m", dir);
	assert_int_equal(zcv_record_create(path, false, &rec), 0);
	for (uint32_t k = 0; k < frames; k++) {
		assert_int_equal(zcv_pattern_render(ZCV_PATTERN_BARS, &l, k, pl), 0);
		assert_int_equal(zcv_record_write(rec, &l, 60, 1, (const uint8_t *const *)pl), 0);
	}
	assert_int_equal(zcv_record_frames(rec), frames);
	assert_true(expect_conversion ? zcv_record_converted_bytes(rec) > 0 :
					zcv_record_converted_bytes(rec) == 0);
	assert_int_equal(zcv_record_destroy(rec), 0);

	file = read_file(path, &len);
	hdr_len = (size_t)snprintf(hdr, sizeof(hdr), "YUV4MPEG2 W%u H%u F60:1 Ip A1:1 C%s\n", w, h,
				   tag);
	assert_memory_equal(file, hdr, hdr_len);
	size_t frame_len = 6 + (size_t)w * h + 2 * (size_t)(w / 2) * (h / vsub);
	assert_int_equal(len, hdr_len + frames * frame_len);
	for (uint32_t k = 0; k < frames; k++) {
		const uint8_t *f = file + hdr_len + k * frame_len;

		assert_memory_equal(f, "FRAME\n", 6);
		f += 6;
		assert_int_equal(zcv_pattern_render(ZCV_PATTERN_BARS, &l, k, pl), 0);
		for (uint32_t y = 0; y < h; y++)
			for (uint32_t x = 0; x < w; x++)
				assert_int_equal(f[y * w + x], sample(&l, pl, 0, x, y));
		for (int c = 1; c <= 2; c++) {
			const uint8_t *cp =
				f + (size_t)w * h + (size_t)(c - 1) * (w / 2) * (h / vsub);

			for (uint32_t y = 0; y < h / vsub; y++)
				for (uint32_t x = 0; x < w / 2; x++)
					assert_int_equal(cp[y * (w / 2) + x],
							 sample(&l, pl, c, x * 2, y * vsub));
		}
	}
	free(file);
	free(base);
	unlink(path);
}

static void test_y4m_formats(void **state)
{
	roundtrip(ZCV_FMT_YUV420, "420jpeg", 2, false);
	roundtrip(ZCV_FMT_NV12, "420jpeg", 2, true);
	roundtrip(ZCV_FMT_NV16, "422", 1, true);
	roundtrip(ZCV_FMT_YUYV, "422", 1, true);
	roundtrip(ZCV_FMT_UYVY, "422", 1, true);
}

static void test_raw_and_errors(void **state)
{
	char path[128];
	struct zcv_layout l, l2;
	struct zcv_record *rec = (void *)0x1;
	uint8_t *base, *pl[ZCV_MAX_PLANES] = { 0 }, *file;
	size_t len;

	assert_int_equal(zcv_record_create("/nonexistent-dir/x.y4m", false, &rec), -ENOENT);
	assert_ptr_equal(rec, (void *)0x1);

	/* raw keeps the layout as it is, padding included */
	assert_int_equal(zcv_format_layout(ZCV_FMT_XRGB8888, 30, 10, 64, &l), 0);
	base = calloc(1, l.size);
	pl[0] = base;
	snprintf(path, sizeof(path), "%s/out.raw", dir);
	assert_int_equal(zcv_record_create(path, true, &rec), 0);
	assert_int_equal(zcv_pattern_render(ZCV_PATTERN_BARS, &l, 9, pl), 0);
	assert_int_equal(zcv_record_write(rec, &l, 0, 0, (const uint8_t *const *)pl), 0);
	/* a layout change mid-file is refused */
	assert_int_equal(zcv_format_layout(ZCV_FMT_XRGB8888, 32, 10, 64, &l2), 0);
	assert_int_equal(zcv_record_write(rec, &l2, 0, 0, (const uint8_t *const *)pl), -EINVAL);
	assert_int_equal(zcv_record_destroy(rec), 0);
	file = read_file(path, &len);
	assert_int_equal(len, 30 * 4 * 10);
	for (int y = 0; y < 10; y++)
		assert_memory_equal(file + y * 120, base + y * l.planes[0].stride, 120);
	free(file);
	unlink(path);

	/* RGB has no Y4M form */
	snprintf(path, sizeof(path), "%s/rgb.y4m", dir);
	assert_int_equal(zcv_record_create(path, false, &rec), 0);
	assert_int_equal(zcv_record_write(rec, &l, 60, 1, (const uint8_t *const *)pl), -EINVAL);
	assert_int_equal(zcv_record_destroy(rec), 0);
	assert_int_equal(zcv_record_destroy(NULL), 0);
	unlink(path);
	free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_y4m_formats, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_raw_and_errors, zcv_test_fd_setup,
						zcv_test_fd_teardown),
	};
	int r;

	if (!mkdtemp(dir))
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(dir);
	return r;
}
