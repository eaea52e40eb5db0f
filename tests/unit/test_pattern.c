/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <zcv/pattern.h>
#include "fdcheck.h"

static void planes_of(uint8_t *base, const struct zcv_layout *l, uint8_t *planes[ZCV_MAX_PLANES])
{
	for (unsigned p = 0; p < ZCV_MAX_PLANES; p++)
		planes[p] = p < l->n_planes ? base + l->planes[p].offset : NULL;
}

/* Every format: deterministic, frame code readable, frames differ, the
 * checker finds a single flipped byte. */
static void test_all_formats(void **state)
{
	const struct zcv_format_info *fi;

	for (unsigned i = 0; (fi = zcv_format_at(i)); i++) {
		for (int pat = ZCV_PATTERN_BARS; pat <= ZCV_PATTERN_CHECKERS; pat++) {
			struct zcv_layout l;
			uint8_t *a, *b, *scratch, *pa[ZCV_MAX_PLANES], *pb[ZCV_MAX_PLANES];
			uint32_t code = 0;
			uint64_t diff = 0;

			assert_int_equal(zcv_format_layout(fi->fourcc, 320, 180, 64, &l), 0);
			a = malloc(l.size);
			b = malloc(l.size);
			scratch = malloc(l.size);
			memset(a, 0x5a, l.size);
			memset(b, 0xa5, l.size);
			planes_of(a, &l, pa);
			planes_of(b, &l, pb);
			assert_int_equal(zcv_pattern_render(pat, &l, 123456, pa), 0);
			assert_int_equal(zcv_pattern_render(pat, &l, 123456, pb), 0);
			assert_memory_equal(a, b, l.size); /* pure function, padding too */
			assert_int_equal(
				zcv_pattern_read_code(&l, (const uint8_t *const *)pa, &code), 0);
			assert_int_equal(code, 123456);
			assert_int_equal(zcv_pattern_check(pat, &l, 123456,
							   (const uint8_t *const *)pa, scratch,
							   NULL),
					 0);

			assert_int_equal(zcv_pattern_render(pat, &l, 123457, pb), 0);
			assert_memory_not_equal(a, b, l.size);
			assert_int_equal(zcv_pattern_check(pat, &l, 123456,
							   (const uint8_t *const *)pb, scratch,
							   NULL),
					 -EBADMSG);

			/* one byte in the last plane's last visible row */
			unsigned lp = l.n_planes - 1;
			size_t off = (size_t)(zcv_format_plane_lines(fi, lp, l.height) - 1) *
					     l.planes[lp].stride +
				     5;
			pa[lp][off] ^= 0x40;
			assert_int_equal(zcv_pattern_check(pat, &l, 123456,
							   (const uint8_t *const *)pa, scratch,
							   &diff),
					 -EBADMSG);
			assert_int_equal(diff, ((uint64_t)lp << 32) | off);
			free(a);
			free(b);
			free(scratch);
		}
	}
}

static void test_moving_element(void **state)
{
	struct zcv_layout l;
	uint8_t *a, *b, *pa[ZCV_MAX_PLANES], *pb[ZCV_MAX_PLANES];
	uint32_t code_rows = 180 / 16;

	assert_int_equal(zcv_format_layout(ZCV_FMT_GREY, 320, 180, 1, &l), 0);
	a = calloc(1, l.size);
	b = calloc(1, l.size);
	planes_of(a, &l, pa);
	planes_of(b, &l, pb);
	/* frames 0 and 1 have the same code rows except bit 0, but the picture
	 * below the code must move too */
	assert_int_equal(zcv_pattern_render(ZCV_PATTERN_BARS, &l, 0, pa), 0);
	assert_int_equal(zcv_pattern_render(ZCV_PATTERN_BARS, &l, 1, pb), 0);
	assert_memory_not_equal(a + (code_rows + 2) * 320, b + (code_rows + 2) * 320,
				l.size - (code_rows + 2) * 320);
	free(a);
	free(b);
}

static void test_bad_input(void **state)
{
	struct zcv_layout l;
	uint8_t buf[64] = { 0 }, *p[ZCV_MAX_PLANES] = { buf };
	enum zcv_pattern pat = ZCV_PATTERN_CHECKERS;
	uint32_t code = 77;

	assert_int_equal(zcv_format_layout(ZCV_FMT_GREY, 8, 8, 1, &l), 0);
	assert_int_equal(zcv_pattern_render((enum zcv_pattern)9, &l, 0, p), -EINVAL);
	assert_int_equal(zcv_pattern_from_name("plaid", &pat), -EINVAL);
	assert_int_equal(pat, ZCV_PATTERN_CHECKERS);
	assert_int_equal(zcv_pattern_from_name("bars", &pat), 0);
	assert_int_equal(pat, ZCV_PATTERN_BARS);
	/* too narrow for a readable code, and grey noise is not a code */
	assert_int_equal(zcv_pattern_read_code(&l, (const uint8_t *const *)p, &code), -EBADMSG);
	assert_int_equal(zcv_format_layout(ZCV_FMT_GREY, 64, 16, 1, &l), 0);
	uint8_t grey[1024];
	memset(grey, 128, sizeof(grey));
	p[0] = grey;
	assert_int_equal(zcv_pattern_read_code(&l, (const uint8_t *const *)p, &code), -EBADMSG);
	assert_int_equal(code, 77);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_all_formats, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_moving_element, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, zcv_test_fd_setup,
						zcv_test_fd_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
