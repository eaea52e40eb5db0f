/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <zcv/format.h>
#include "fdcheck.h"

/* Expected layouts worked out by hand from the formats' definitions. */
struct expect {
	uint32_t fourcc, w, h, align;
	unsigned n_planes;
	uint32_t stride[3], offset[3], size[3];
	uint64_t total;
};

static const struct expect cases[] = {
	{ ZCV_FMT_NV12,
	  1280,
	  720,
	  1,
	  2,
	  { 1280, 1280 },
	  { 0, 921600 },
	  { 921600, 460800 },
	  1382400 },
	{ ZCV_FMT_NV12,
	  1920,
	  1080,
	  64,
	  2,
	  { 1920, 1920 },
	  { 0, 2073600 },
	  { 2073600, 1036800 },
	  3110400 },
	{ ZCV_FMT_NV12, 100, 50, 64, 2, { 128, 128 }, { 0, 6400 }, { 6400, 3200 }, 9600 },
	{ ZCV_FMT_NV16, 640, 480, 1, 2, { 640, 640 }, { 0, 307200 }, { 307200, 307200 }, 614400 },
	{ ZCV_FMT_YUV420,
	  640,
	  480,
	  1,
	  3,
	  { 640, 320, 320 },
	  { 0, 307200, 384000 },
	  { 307200, 76800, 76800 },
	  460800 },
	/* 4:2:0 with padding: chroma stride 50 -> 64, each plane offset aligned */
	{ ZCV_FMT_YUV420,
	  100,
	  20,
	  64,
	  3,
	  { 128, 64, 64 },
	  { 0, 2560, 3200 },
	  { 2560, 640, 640 },
	  3840 },
	{ ZCV_FMT_YUYV, 1280, 720, 1, 1, { 2560 }, { 0 }, { 1843200 }, 1843200 },
	{ ZCV_FMT_UYVY, 642, 2, 64, 1, { 1344 }, { 0 }, { 2688 }, 2688 },
	{ ZCV_FMT_XRGB8888, 1280, 720, 1, 1, { 5120 }, { 0 }, { 3686400 }, 3686400 },
	{ ZCV_FMT_ARGB8888, 3, 3, 16, 1, { 16 }, { 0 }, { 48 }, 48 },
	{ ZCV_FMT_GREY, 33, 7, 32, 1, { 64 }, { 0 }, { 448 }, 448 },
};

static void test_layouts(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct expect *e = &cases[i];
		struct zcv_layout l;

		assert_int_equal(zcv_format_layout(e->fourcc, e->w, e->h, e->align, &l), 0);
		assert_int_equal(l.n_planes, e->n_planes);
		for (unsigned p = 0; p < e->n_planes; p++) {
			assert_int_equal(l.planes[p].stride, e->stride[p]);
			assert_int_equal(l.planes[p].offset, e->offset[p]);
			assert_int_equal(l.planes[p].size, e->size[p]);
		}
		assert_int_equal(l.size, e->total);
		assert_int_equal(zcv_layout_validate(&l), 0);
	}
}

static void test_every_format_has_sane_math(void **state)
{
	const struct zcv_format_info *fi;

	for (unsigned i = 0; (fi = zcv_format_at(i)); i++) {
		struct zcv_layout l;

		assert_ptr_equal(zcv_format_lookup(fi->fourcc), fi);
		assert_ptr_equal(zcv_format_lookup_name(fi->name), fi);
		assert_int_equal(zcv_format_layout(fi->fourcc, 320, 240, 256, &l), 0);
		for (unsigned p = 0; p < l.n_planes; p++) {
			assert_int_equal(l.planes[p].stride % 256, 0);
			assert_int_equal(l.planes[p].offset % 256, 0);
			assert_true(l.planes[p].stride >= zcv_format_plane_row_bytes(fi, p, 320));
			if (p)
				assert_true(l.planes[p].offset >=
					    l.planes[p - 1].offset + l.planes[p - 1].size);
		}
	}
	assert_true(zcv_format_at(7) != NULL); /* the eight formats the project promises */
}

static void test_rejects(void **state)
{
	struct zcv_layout l, untouched;

	memset(&untouched, 0xa5, sizeof(untouched));
	l = untouched;
	assert_int_equal(zcv_format_layout(0x12345678, 64, 64, 1, &l), -EINVAL);
	assert_int_equal(zcv_format_layout(ZCV_FMT_NV12, 0, 64, 1, &l), -EINVAL);
	assert_int_equal(zcv_format_layout(ZCV_FMT_NV12, 63, 64, 1, &l), -EINVAL); /* odd width */
	assert_int_equal(zcv_format_layout(ZCV_FMT_NV12, 64, 63, 1, &l), -EINVAL); /* odd height */
	assert_int_equal(zcv_format_layout(ZCV_FMT_YUYV, 63, 64, 1, &l), -EINVAL);
	assert_int_equal(zcv_format_layout(ZCV_FMT_NV12, 64, 64, 3, &l), -EINVAL); /* not pow2 */
	assert_int_equal(zcv_format_layout(ZCV_FMT_NV12, 64, 64, 0, &l), -EINVAL);
	assert_int_equal(zcv_format_layout(ZCV_FMT_XRGB8888, 20000, 64, 1, &l), -EOVERFLOW);
	assert_memory_equal(&l, &untouched, sizeof(l)); /* ret_* untouched on failure */
	assert_null(zcv_format_lookup_name("NV21"));
	assert_null(zcv_format_lookup_name(NULL));
	assert_ptr_equal(zcv_format_lookup_name("i420"), zcv_format_lookup(ZCV_FMT_YUV420));
	assert_ptr_equal(zcv_format_lookup_name("YU12"), zcv_format_lookup(ZCV_FMT_YUV420));
}

static void test_validate(void **state)
{
	struct zcv_layout l, bad;

	assert_int_equal(zcv_format_layout(ZCV_FMT_NV12, 64, 32, 1, &l), 0);
	bad = l;
	bad.planes[0].stride = 63; /* shorter than a line */
	assert_int_equal(zcv_layout_validate(&bad), -EINVAL);
	bad = l;
	bad.planes[1].offset = (uint32_t)l.size; /* past the end */
	assert_int_equal(zcv_layout_validate(&bad), -EINVAL);
	bad = l;
	bad.n_planes = 1;
	assert_int_equal(zcv_layout_validate(&bad), -EINVAL);
	bad = l;
	bad.planes[1].size = 10;
	assert_int_equal(zcv_layout_validate(&bad), -EINVAL);
	bad = l;
	bad.fourcc = 0;
	assert_int_equal(zcv_layout_validate(&bad), -EINVAL);
	bad = l;
	bad.width = 65;
	assert_int_equal(zcv_layout_validate(&bad), -EINVAL);
}

static void test_fourcc_str(void **state)
{
	char b[5];

	assert_string_equal(zcv_fourcc_str(ZCV_FMT_NV12, b), "NV12");
	assert_string_equal(zcv_fourcc_str(0x01020304, b), "????");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_layouts, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_every_format_has_sane_math, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_rejects, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_validate, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_fourcc_str, zcv_test_fd_setup,
						zcv_test_fd_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
