/* SPDX-License-Identifier: MIT */
/* The constraints model (<zcv/stream.h>): merging consumers' needs, the
 * layout that meets them, and the fit check of a pool against them — the
 * layout helper's output always passes the check. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>
#include <zcv/pool.h>
#include <zcv/stream.h>
#include "fdcheck.h"

static void test_path_names(void **state)
{
	assert_string_equal(zcv_path_name(ZCV_PATH_DMABUF), "dmabuf");
	assert_string_equal(zcv_path_name(ZCV_PATH_MEMFD), "memfd");
	assert_string_equal(zcv_path_name(ZCV_PATH_COPY), "copy");
	assert_string_equal(zcv_path_name(0), "unknown");
	assert_string_equal(zcv_path_name(4), "unknown");
}

static void test_merge(void **state)
{
	struct zcv_constraints a = { .min_plane_size = { 100, 0, 7 },
				     .stride_align = 16,
				     .hold = 3 };
	struct zcv_constraints b = { .min_plane_size = { 50, 60 }, .height_align = 32, .hold = 4 };
	struct zcv_constraints big = { .hold = UINT32_MAX - 1 };

	zcv_constraints_merge(&a, &b);
	assert_int_equal(a.min_plane_size[0], 100);
	assert_int_equal(a.min_plane_size[1], 60);
	assert_int_equal(a.min_plane_size[2], 7);
	assert_int_equal(a.stride_align, 16);
	assert_int_equal(a.height_align, 32);
	/* a pool serving both lets each hold what it asked for */
	assert_int_equal(a.hold, 7);
	zcv_constraints_merge(&a, &big);
	assert_int_equal(a.hold, UINT32_MAX);
}

/* A pool of n memfd buffers with layout l (one object per buffer). */
static struct zcv_pool *pool_of(const struct zcv_layout *l, unsigned n)
{
	struct zcv_pool *pool = NULL;

	assert_int_equal(zcv_pool_create_memfd(l, n, 1, &pool), 0);
	return pool;
}

static void check_layout_fits(uint32_t fourcc, uint32_t w, uint32_t h,
			      const struct zcv_constraints *c)
{
	struct zcv_layout src, l;
	struct zcv_pool *pool;
	char why[160] = "";

	assert_int_equal(zcv_format_layout(fourcc, w, h, 1, &src), 0);
	assert_int_equal(zcv_constraints_layout(c, &src, &l), 0);
	assert_int_equal(zcv_layout_validate(&l), 0);
	pool = pool_of(&l, 2);
	assert_int_equal(zcv_pool_check(pool, c, why, sizeof(why)), ZCV_FIT_OK);
	for (unsigned p = 0; p < l.n_planes; p++) {
		if (c->stride_align > 1)
			assert_int_equal(l.planes[p].stride % c->stride_align, 0);
		assert_true(l.size >= l.planes[p].offset + zcv_constraints_plane_need(c, &l, p));
	}
	zcv_pool_destroy(pool);
}

static void test_layout_meets_check(void **state)
{
	struct zcv_constraints none = { 0 };
	struct zcv_constraints codec = { .stride_align = 64, .height_align = 16 };
	/* a one-buffer format's sizeimage covers both planes: plane 0's
	 * minimum reaches across plane 1, which stays where a codec reads it */
	struct zcv_constraints sizeimage = { .height_align = 16, .min_plane_size = { 200000 } };
	struct zcv_constraints last = { .min_plane_size = { 0, 100000 } };
	struct zcv_layout src, l;

	check_layout_fits(ZCV_FMT_NV12, 320, 180, &none);
	check_layout_fits(ZCV_FMT_NV12, 1920, 1080, &codec);
	check_layout_fits(ZCV_FMT_NV12, 320, 180, &sizeimage);
	check_layout_fits(ZCV_FMT_YUV420, 322, 180, &codec);
	check_layout_fits(ZCV_FMT_YUYV, 640, 480, &last);

	assert_int_equal(zcv_format_layout(ZCV_FMT_NV12, 320, 180, 1, &src), 0);
	assert_int_equal(zcv_constraints_layout(&sizeimage, &src, &l), 0);
	assert_int_equal(l.planes[1].offset, 320 * 192);
	assert_int_equal(l.size, 200000);
	assert_int_equal(zcv_constraints_layout(&codec, &src, &l), 0);
	assert_int_equal(l.planes[0].stride, 320);
	assert_int_equal(l.planes[1].offset, 320 * 192);
	assert_int_equal(l.size, 320 * 192 + 320 * 96);
}

static void test_layout_errors(void **state)
{
	struct zcv_constraints odd = { .stride_align = 24 };
	struct zcv_constraints odd_h = { .height_align = 3 };
	struct zcv_constraints huge = { .stride_align = 1u << 31 };
	struct zcv_layout src, l, before;

	assert_int_equal(zcv_format_layout(ZCV_FMT_NV12, 320, 180, 1, &src), 0);
	memset(&l, 0xa5, sizeof(l));
	before = l;
	assert_int_equal(zcv_constraints_layout(&odd, &src, &l), -EINVAL);
	assert_int_equal(zcv_constraints_layout(&odd_h, &src, &l), -EINVAL);
	assert_int_equal(zcv_constraints_layout(&huge, &src, &l), -EOVERFLOW);
	assert_memory_equal(&l, &before, sizeof(l)); /* untouched on failure */
	src.fourcc = 0x12345678;
	assert_int_equal(zcv_constraints_layout(&odd, &src, &l), -EINVAL);
}

/* The check tells sizes that fall short (bigger buffers fix it) from a
 * layout that is wrong (strides, plane placement). */
static void test_check_kinds(void **state)
{
	struct zcv_layout l;
	struct zcv_pool *pool;
	struct zcv_constraints stride = { .stride_align = 256 };
	struct zcv_constraints size = { .min_plane_size = { 0, 1u << 20 } };
	struct zcv_constraints place = { .height_align = 64 };
	char why[160];

	assert_int_equal(zcv_format_layout(ZCV_FMT_NV12, 320, 180, 64, &l), 0);
	pool = pool_of(&l, 2);
	assert_int_equal(zcv_pool_check(pool, &stride, why, sizeof(why)), ZCV_FIT_LAYOUT);
	assert_non_null(strstr(why, "stride 320 is not a multiple of 256"));
	assert_int_equal(zcv_pool_check(pool, &size, why, sizeof(why)), ZCV_FIT_SIZE);
	assert_non_null(strstr(why, "for plane 1"));
	assert_int_equal(zcv_pool_check(pool, &place, why, sizeof(why)), ZCV_FIT_LAYOUT);
	assert_non_null(strstr(why, "plane 1 at offset"));
	zcv_pool_destroy(pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, zcv_test_fd_setup, zcv_test_fd_teardown)
		T(test_path_names),    T(test_merge),       T(test_layout_meets_check),
		T(test_layout_errors), T(test_check_kinds),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
