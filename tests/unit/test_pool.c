/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>
#include <zcv/memory.h>
#include <zcv/pool.h>
#include <zcv/stats.h>
#include "fdcheck.h"

static void test_memfd_sealed(void **state)
{
	int fd = zcv_memfd_create("t", 4096);
	uint64_t size = 0;

	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	/* nobody may shrink or grow it, so no mapper can be made to SIGBUS */
	assert_int_equal(ftruncate(fd, 100), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(ftruncate(fd, 8192), -1);
	/* but it is writable until sealed read-only: not fit to lend yet */
	assert_int_equal(zcv_memfd_check_sealed(fd, 4096, &size), -EPERM);
	assert_int_equal(pwrite(fd, "x", 1, 0), 1);
	assert_int_equal(zcv_memfd_seal_readonly(fd), 0);
	assert_int_equal(fcntl(fd, F_GET_SEALS), ZCV_MEMFD_SEALS);
	assert_int_equal(zcv_memfd_check_sealed(fd, 4096, &size), 0);
	assert_int_equal(size, 4096);
	assert_int_equal(pwrite(fd, "x", 1, 0), -1);
	assert_int_equal(errno, EPERM);
	assert_true(mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED);
	assert_int_equal(zcv_memfd_check_sealed(fd, 8192, NULL), -EMSGSIZE);
	assert_int_equal(zcv_memfd_create("t", 0), -EINVAL);
	close(fd);
	assert_int_equal(zcv_memfd_seal_readonly(fd), -EBADF);

	/* an unsealed memfd is refused */
	fd = memfd_create("plain", MFD_CLOEXEC);
	assert_int_equal(ftruncate(fd, 4096), 0);
	assert_int_equal(zcv_memfd_check_sealed(fd, 0, NULL), -EPERM);
	close(fd);
	/* nor is a file that is no memfd */
	fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(zcv_memfd_check_sealed(fd, 0, NULL), -EINVAL);
	assert_false(zcv_fd_is_dmabuf(fd));
	close(fd);
}

static void test_fd_size_and_sync(void **state)
{
	int fd = zcv_memfd_create("t", 12345);
	uint64_t size = 0;

	assert_int_equal(zcv_fd_size(fd, &size), 0);
	assert_int_equal(size, 12345);
	assert_false(zcv_fd_is_dmabuf(fd));
	/* no bracketing needed for memfd: succeed without doing anything */
	assert_int_equal(zcv_dmabuf_sync_start(fd, ZCV_SYNC_READ), 0);
	assert_int_equal(zcv_dmabuf_sync_end(fd, ZCV_SYNC_READ | ZCV_SYNC_WRITE), 0);
	close(fd);
	assert_int_equal(zcv_dmabuf_sync_start(fd, ZCV_SYNC_READ), -EBADF);
}

static void test_copy_counter(void **state)
{
	uint8_t a[100] = { 1, 2, 3 }, b[100];
	uint64_t before = zcv_copied_bytes_get();

	zcv_frame_copy(b, a, sizeof(a));
	assert_memory_equal(a, b, sizeof(a));
	assert_int_equal(zcv_copied_bytes_get() - before, 100);
}

struct freed {
	unsigned count, last;
};

static void on_free(void *data, struct zcv_pool *pool, struct zcv_buffer *buf)
{
	struct freed *f = data;

	f->count++;
	f->last = buf->index;
}

static void test_pool_accounting(void **state)
{
	struct zcv_layout l;
	struct zcv_pool *pool = NULL;
	struct zcv_buffer *b0, *b1;
	struct freed fr = { 0 };

	assert_int_equal(zcv_format_layout(ZCV_FMT_NV12, 64, 32, 64, &l), 0);
	assert_int_equal(zcv_pool_create_memfd(&l, 3, 7, &pool), 0);
	pool->on_free = on_free;
	pool->on_free_data = &fr;
	assert_int_equal(pool->generation, 7);
	assert_int_equal(zcv_pool_count(pool, ZCV_BUFFER_FREE), 3);
	/* mapped writable for the producer, then sealed: fit to lend */
	for (unsigned i = 0; i < 3; i++) {
		assert_non_null(pool->buffers[i].map[0]);
		((uint8_t *)pool->buffers[i].map[0])[l.size - 1] = 0xab;
		assert_int_equal(zcv_memfd_check_sealed(pool->buffers[i].fds[0], l.size, NULL), 0);
	}

	b0 = zcv_pool_acquire(pool);
	b1 = zcv_pool_acquire(pool);
	assert_int_equal(b0->index, 0);
	assert_int_equal(b1->index, 1);
	assert_int_equal(zcv_pool_count(pool, ZCV_BUFFER_PRODUCER), 2);

	/* lent to two consumers: free only after both released */
	assert_int_equal(zcv_pool_lend(pool, 0, 2), 0);
	assert_int_equal(zcv_pool_lend(pool, 0, 1), -EINVAL); /* not the producer's any more */
	assert_int_equal(zcv_pool_unhold(pool, 0), 1);
	assert_int_equal(fr.count, 0);
	assert_int_equal(zcv_pool_unhold(pool, 0), 0);
	assert_int_equal(fr.count, 1);
	assert_int_equal(fr.last, 0);
	assert_int_equal(b0->state, ZCV_BUFFER_FREE);
	assert_int_equal(zcv_pool_unhold(pool, 0), -EINVAL); /* double release */

	/* nobody took it: free at once */
	assert_int_equal(zcv_pool_lend(pool, 1, 0), 0);
	assert_int_equal(fr.count, 2);
	assert_int_equal(zcv_pool_lend(pool, 5, 1), -EINVAL);
	assert_int_equal(zcv_pool_unhold(pool, 99), -EINVAL);

	/* map once: same pointer again; plane pointers at the layout offsets */
	assert_int_equal(zcv_pool_map(pool, 2, PROT_READ | PROT_WRITE), 0);
	void *m = pool->buffers[2].map[0];
	assert_int_equal(zcv_pool_map(pool, 2, PROT_READ | PROT_WRITE), 0);
	assert_ptr_equal(pool->buffers[2].map[0], m);
	assert_ptr_equal(zcv_buffer_plane(pool, &pool->buffers[2], 1),
			 (uint8_t *)m + l.planes[1].offset);
	assert_null(zcv_buffer_plane(pool, &pool->buffers[2], 2));
	zcv_pool_destroy(pool);
	zcv_pool_destroy(NULL);
	/* a buffer without memory has no planes */
	assert_int_equal(zcv_pool_create_empty(&l, 1, 1, ZCV_MEMORY_DMABUF, &pool), 0);
	assert_null(zcv_buffer_plane(pool, &pool->buffers[0], 0)); /* unmapped */
	zcv_pool_destroy(pool);
}

static void test_pool_bad_input(void **state)
{
	struct zcv_layout l;
	struct zcv_pool *pool = (void *)0x1, *p2 = NULL;
	static const uint8_t plane_fd[4] = { 0, 1 };
	int fds[2];

	assert_int_equal(zcv_format_layout(ZCV_FMT_NV12, 64, 32, 1, &l), 0);
	assert_int_equal(zcv_pool_create_memfd(&l, 0, 1, &pool), -EINVAL);
	assert_int_equal(zcv_pool_create_memfd(&l, ZCV_POOL_MAX_BUFFERS + 1, 1, &pool), -EINVAL);
	assert_ptr_equal(pool, (void *)0x1);

	/* set_fds takes the fds even when it fails: nothing may leak */
	assert_int_equal(zcv_pool_create_empty(&l, 2, 1, ZCV_MEMORY_DMABUF, &p2), 0);
	fds[0] = zcv_memfd_create("y", l.planes[0].size);
	fds[1] = zcv_memfd_create("uv", 10); /* too small for the UV plane */
	assert_int_equal(zcv_pool_set_fds(p2, 0, 2, fds, plane_fd), -EINVAL);
	fds[0] = zcv_memfd_create("y", l.planes[0].size);
	assert_int_equal(zcv_pool_set_fds(p2, 5, 1, fds, plane_fd), -EINVAL); /* bad index */
	fds[0] = zcv_memfd_create("y", l.planes[0].size);
	fds[1] = zcv_memfd_create("uv", l.planes[1].offset + l.planes[1].size);
	assert_int_equal(zcv_pool_set_fds(p2, 1, 2, fds, plane_fd), 0);
	fds[0] = zcv_memfd_create("again", 4096);
	assert_int_equal(zcv_pool_set_fds(p2, 1, 1, fds, plane_fd), -EINVAL); /* already set */
	zcv_pool_destroy(p2);
}

static void test_stats(void **state)
{
	struct zcv_stats s;
	char *buf = NULL;
	size_t len = 0;
	struct zcv_json extra;
	FILE *f;

	zcv_stats_init(&s);
	for (uint64_t i = 1; i <= 100; i++)
		zcv_latency_add(&s.latency, i * 1000);
	assert_int_equal(zcv_latency_percentile(&s.latency, 0.5), 50000);
	assert_int_equal(zcv_latency_percentile(&s.latency, 0.99), 99000);
	assert_int_equal(s.latency.max_ns, 100000);
	s.frames = 61;
	s.start_ns = 0;
	s.end_ns = 1000000000;
	s.path = "memfd";
	assert_true(zcv_stats_fps(&s) > 59.99 && zcv_stats_fps(&s) < 60.01);
	zcv_json_init(&extra, 0);
	zcv_json_begin_object(&extra);
	zcv_json_kv_int(&extra, "x", 1);
	zcv_json_end_object(&extra);
	f = open_memstream(&buf, &len);
	assert_int_equal(zcv_stats_write_json(&s, f, &extra), 0);
	fclose(f);
	zcv_json_finish(&extra);
	assert_non_null(strstr(buf, "\"frames\": 61"));
	assert_non_null(strstr(buf, "\"path\": \"memfd\""));
	assert_non_null(strstr(buf, "\"copied_bytes\": 0"));
	assert_non_null(
		strstr(buf, "\"latency_us\": {\"p50\": 50.0, \"p99\": 99.0, \"max\": 100.0}"));
	assert_non_null(strstr(buf, ", \"x\": 1}"));
	free(buf);
	zcv_stats_finish(&s);

	/* a capped recorder keeps max and count beyond its limit */
	zcv_latency_init(&s.latency, 10);
	for (int i = 0; i < 50; i++)
		zcv_latency_add(&s.latency, (uint64_t)i);
	assert_int_equal(s.latency.n, 10);
	assert_int_equal(s.latency.count, 50);
	assert_int_equal(s.latency.max_ns, 49);
	zcv_latency_finish(&s.latency);
	assert_int_equal(zcv_stats_write_json_file(&s, "/nonexistent-dir/x.json", NULL), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_memfd_sealed, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_fd_size_and_sync, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_copy_counter, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_pool_accounting, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_pool_bad_input, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_stats, zcv_test_fd_setup,
						zcv_test_fd_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
