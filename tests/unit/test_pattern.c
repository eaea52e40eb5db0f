/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>
#include <cmocka.h>
#include <zcv/pattern.h>
#include <zcv/source.h>
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

struct fit_run {
	struct zcv_source *src;
	unsigned frames, bad;
	uint8_t *scratch;
};

/* Each frame the source renders must be its pattern frame at the layout
 * of the pool it came from; handed straight back (no consumer). */
static void fit_frame(void *data, struct zcv_buffer *buf, const struct zcv_frame_meta *meta)
{
	struct fit_run *run = data;
	struct zcv_pool *pool = zcv_source_get_pool(run->src);
	const uint8_t *planes[ZCV_MAX_PLANES] = { 0 };

	for (unsigned p = 0; p < pool->layout.n_planes; p++)
		planes[p] = zcv_buffer_plane(pool, buf, p);
	run->frames++;
	run->bad += zcv_pattern_check(ZCV_PATTERN_BARS, &pool->layout, meta->sequence, planes,
				      run->scratch, NULL) != 0;
	assert_int_equal(zcv_pool_lend(pool, buf->index, 0), 0);
}

/*
 * The pattern source's fit: buffers that already fit are kept; otherwise
 * a memfd pool of the next generation laid out for the constraints, which
 * the fit check then accepts, and frames are rendered into it at that
 * layout; constraints no layout meets are refused with the reason and the
 * pool kept; after the start, nothing changes.
 */
static void test_source_fit(void **state)
{
	struct zcv_pattern_source_config cfg = {
		.fourcc = ZCV_FMT_NV12,
		.width = 320,
		.height = 180,
		.frames = 4,
	};
	struct zcv_constraints none = { 0 }, odd = { .stride_align = 3 };
	struct zcv_constraints k = { .stride_align = 256,
				     .height_align = 16,
				     .min_plane_size = { 0, 60000 } };
	struct fit_run run = { 0 };
	struct zcv_pool *old;
	char how[256], why[160];
	int r;

	assert_int_equal(zcv_pattern_source_create(
				 &cfg, &(struct zcv_source_callbacks){ fit_frame }, &run, &run.src),
			 0);
	old = zcv_source_get_pool(run.src);
	assert_int_equal(zcv_source_fit(run.src, &none, 0, how, sizeof(how)), 0);
	assert_non_null(strstr(how, "already fit"));
	assert_ptr_equal(zcv_source_get_pool(run.src), old);
	assert_int_equal(zcv_source_fit(run.src, &odd, 0, how, sizeof(how)), -EOPNOTSUPP);
	assert_non_null(strstr(how, "not a multiple of 3"));
	assert_ptr_equal(zcv_source_get_pool(run.src), old);

	assert_int_equal(zcv_pool_check(old, &k, why, sizeof(why)), ZCV_FIT_LAYOUT);
	assert_int_equal(zcv_source_fit(run.src, &k, 0, how, sizeof(how)), 1);
	assert_ptr_not_equal(zcv_source_get_pool(run.src), old);
	/* the old pool stays valid (a server may still name it) */
	assert_int_equal(old->generation, 1);
	{
		struct zcv_pool *pool = zcv_source_get_pool(run.src);

		assert_int_equal(pool->generation, 2);
		assert_int_equal(pool->n_buffers, old->n_buffers);
		assert_int_equal(pool->kind, ZCV_MEMORY_MEMFD);
		assert_int_equal(zcv_pool_check(pool, &k, why, sizeof(why)), ZCV_FIT_OK);
		assert_int_equal(pool->layout.planes[0].stride, 512);
		assert_int_equal(pool->layout.planes[1].offset, 512 * 192);
		/* the plane's own lines; the object holds its 60000 bytes */
		assert_int_equal(pool->layout.planes[1].size, 512 * 96);
		assert_int_equal(pool->layout.size, 512 * 192 + 60000);
		run.scratch = malloc(pool->layout.size);
	}
	assert_int_equal(zcv_source_start(run.src), 0);
	/* unpaced, every buffer back at once: a dispatch or two renders all */
	for (int i = 0; (r = zcv_source_dispatch(run.src)) == 0; i++)
		assert_true(i < 100);
	assert_int_equal(r, 1);
	assert_int_equal(run.frames, 4);
	assert_int_equal(run.bad, 0);
	assert_int_equal(zcv_source_fit(run.src, &none, 0, how, sizeof(how)), -EBUSY);
	zcv_source_destroy(run.src);
	free(run.scratch);
}

/*
 * Paced and late, the pattern source renders one frame per dispatch and
 * its fd is readable again at once: the caller's loop gets to serve
 * consumers between the frames of a backlog, and no frame is skipped.
 * The backlog is made by not dispatching for 20 frame periods (1 ms each;
 * sleeping longer only makes it longer).
 */
static void test_source_backlog(void **state)
{
	struct zcv_pattern_source_config cfg = {
		.fourcc = ZCV_FMT_NV12,
		.width = 64,
		.height = 32,
		.fps_num = 1000,
		.fps_den = 1,
		.frames = 20,
	};
	struct fit_run run = { 0 };
	struct pollfd pfd = { .events = POLLIN };

	(void)state;
	assert_int_equal(zcv_pattern_source_create(
				 &cfg, &(struct zcv_source_callbacks){ fit_frame }, &run, &run.src),
			 0);
	run.scratch = malloc(zcv_source_get_pool(run.src)->layout.size);
	pfd.fd = zcv_source_get_fd(run.src);
	assert_int_equal(zcv_source_start(run.src), 0);
	usleep(25000);
	for (unsigned k = 1; k <= 19; k++) {
		assert_int_equal(poll(&pfd, 1, 0), 1);
		assert_int_equal(zcv_source_dispatch(run.src), 0);
		assert_int_equal(run.frames, k);
	}
	assert_int_equal(poll(&pfd, 1, 0), 1);
	assert_int_equal(zcv_source_dispatch(run.src), 1);
	assert_int_equal(run.frames, 20);
	assert_int_equal(zcv_source_frames(run.src), 20);
	assert_int_equal(run.bad, 0);
	zcv_source_destroy(run.src);
	free(run.scratch);
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
		cmocka_unit_test_setup_teardown(test_source_fit, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_source_backlog, zcv_test_fd_setup,
						zcv_test_fd_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
