/* SPDX-License-Identifier: MIT */
/*
 * zcvsink's registry of upstream DMA-BUF buffers (sinks/gstreamer): how
 * it learns upstream's set, completes it, relearns after a reallocation,
 * gives up beyond ZCV_POOL_MAX_BUFFERS, and owns the fds it dups. memfds
 * stand in for DMA-BUFs: identity is fstat's (st_dev, st_ino) for both.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>
#include "fdcheck.h"
/* The unit is built into the GStreamer plugin only; it has no GStreamer
 * dependency, so the test compiles it in (the unit tests' CMake builds
 * tests/unit/test_<name>.c against the core libraries alone). */
#include "../../sinks/gstreamer/src/zcvsink_registry.c"

static struct zcvsink_key key1(uint64_t ino)
{
	return (struct zcvsink_key){ .n = 1, .dev = { 7 }, .ino = { ino } };
}

static int feed(struct zcvsink_registry *r, uint64_t ino, unsigned expected, unsigned *idx)
{
	struct zcvsink_key k = key1(ino);

	return zcvsink_registry_feed(r, &k, NULL, expected, idx);
}

static void test_learn_by_cycle(void **state)
{
	struct zcvsink_registry r;
	unsigned idx = 99;

	zcvsink_registry_init(&r);
	/* upstream circulates 4 buffers and says nothing of its count */
	for (uint64_t i = 100; i < 104; i++)
		assert_int_equal(feed(&r, i, 0, &idx), ZCVSINK_REG_COPY);
	assert_int_equal(idx, 99); /* untouched while copying */
	assert_false(r.complete);
	assert_int_equal(r.n, 4);
	/* the first one coming back closes the cycle; it is lent at once */
	assert_int_equal(feed(&r, 100, 0, &idx), ZCVSINK_REG_COMPLETE);
	assert_int_equal(idx, 0);
	assert_int_equal(r.completed, 1);
	for (uint64_t i = 101; i < 104; i++) {
		assert_int_equal(feed(&r, i, 0, &idx), ZCVSINK_REG_KNOWN);
		assert_int_equal(idx, i - 100);
	}
	/* expected is only read while learning */
	assert_int_equal(feed(&r, 102, 9, &idx), ZCVSINK_REG_KNOWN);
	assert_int_equal(idx, 2);
	zcvsink_registry_reset(&r, false);
}

static void test_learn_fixed_count(void **state)
{
	struct zcvsink_registry r;
	unsigned idx = 99;

	zcvsink_registry_init(&r);
	/* upstream's pool states 3 buffers: complete at the third, no cycle */
	assert_int_equal(feed(&r, 1, 3, &idx), ZCVSINK_REG_COPY);
	assert_int_equal(feed(&r, 2, 3, &idx), ZCVSINK_REG_COPY);
	assert_int_equal(feed(&r, 3, 3, &idx), ZCVSINK_REG_COMPLETE);
	assert_int_equal(idx, 2);
	assert_int_equal(feed(&r, 1, 3, &idx), ZCVSINK_REG_KNOWN);
	assert_int_equal(idx, 0);

	/* a stated count larger than what circulates: the cycle decides */
	zcvsink_registry_reset(&r, false);
	assert_int_equal(r.completed, 1); /* kept across resets */
	assert_int_equal(feed(&r, 1, 8, &idx), ZCVSINK_REG_COPY);
	assert_int_equal(feed(&r, 2, 8, &idx), ZCVSINK_REG_COPY);
	assert_int_equal(feed(&r, 1, 8, &idx), ZCVSINK_REG_COMPLETE);
	assert_int_equal(idx, 0);
	assert_int_equal(r.n, 2);
}

static void test_unknown_relearns(void **state)
{
	struct zcvsink_registry r;
	unsigned idx = 99;

	zcvsink_registry_init(&r);
	assert_int_equal(feed(&r, 1, 0, &idx), ZCVSINK_REG_COPY);
	assert_int_equal(feed(&r, 2, 0, &idx), ZCVSINK_REG_COPY);
	assert_int_equal(feed(&r, 1, 0, &idx), ZCVSINK_REG_COMPLETE);
	/* upstream reallocated: a new object is copied and learning starts
	 * again from it; the old ones are strangers now */
	idx = 99;
	assert_int_equal(feed(&r, 10, 0, &idx), ZCVSINK_REG_UNKNOWN);
	assert_int_equal(idx, 99);
	assert_false(r.complete);
	assert_int_equal(r.n, 1);
	assert_int_equal(feed(&r, 11, 0, &idx), ZCVSINK_REG_COPY);
	assert_int_equal(feed(&r, 1, 0, &idx), ZCVSINK_REG_COPY);
	assert_int_equal(feed(&r, 10, 0, &idx), ZCVSINK_REG_COMPLETE);
	assert_int_equal(idx, 0);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.completed, 2);
	assert_int_equal(feed(&r, 1, 0, &idx), ZCVSINK_REG_KNOWN);
	assert_int_equal(idx, 2);
}

static void test_capacity(void **state)
{
	struct zcvsink_registry r;
	unsigned idx = 99;

	zcvsink_registry_init(&r);
	for (uint64_t i = 0; i < ZCV_POOL_MAX_BUFFERS; i++)
		assert_int_equal(feed(&r, i, 0, &idx), ZCVSINK_REG_COPY);
	/* one more than a zcv pool holds: give up, copy until reset */
	assert_int_equal(feed(&r, 1000, 0, &idx), ZCVSINK_REG_DISABLED);
	assert_int_equal(feed(&r, 0, 0, &idx), ZCVSINK_REG_DISABLED);
	assert_int_equal(r.n, 0);
	zcvsink_registry_reset(&r, false);
	assert_int_equal(feed(&r, 0, 0, &idx), ZCVSINK_REG_COPY);

	/* exactly ZCV_POOL_MAX_BUFFERS fits */
	zcvsink_registry_reset(&r, false);
	for (uint64_t i = 0; i < ZCV_POOL_MAX_BUFFERS - 1; i++)
		assert_int_equal(feed(&r, i, ZCV_POOL_MAX_BUFFERS, &idx), ZCVSINK_REG_COPY);
	assert_int_equal(feed(&r, 99, ZCV_POOL_MAX_BUFFERS, &idx), ZCVSINK_REG_COMPLETE);
	assert_int_equal(idx, ZCV_POOL_MAX_BUFFERS - 1);

	/* a stated count above it: disabled at once */
	zcvsink_registry_reset(&r, false);
	assert_int_equal(feed(&r, 0, ZCV_POOL_MAX_BUFFERS + 1, &idx), ZCVSINK_REG_DISABLED);
	/* and reset(true) disables by itself (registering failed) */
	zcvsink_registry_reset(&r, true);
	assert_int_equal(feed(&r, 0, 0, &idx), ZCVSINK_REG_DISABLED);
}

static void test_keys(void **state)
{
	struct zcvsink_registry r;
	struct zcvsink_key a = key1(5), b = key1(5), bad = { 0 };
	unsigned idx = 99;
	int fds[2];

	zcvsink_registry_init(&r);
	/* one object per plane: equal only when every plane's object is */
	a.n = 2;
	a.dev[1] = 7;
	a.ino[1] = 6;
	assert_int_equal(zcvsink_registry_feed(&r, &a, NULL, 0, &idx), ZCVSINK_REG_COPY);
	assert_int_equal(zcvsink_registry_feed(&r, &b, NULL, 0, &idx), ZCVSINK_REG_COPY);
	b.dev[0] = 8; /* same inode number on another device */
	assert_int_equal(zcvsink_registry_feed(&r, &b, NULL, 0, &idx), ZCVSINK_REG_COPY);
	assert_int_equal(r.n, 3);
	assert_int_equal(zcvsink_registry_feed(&r, &a, NULL, 0, &idx), ZCVSINK_REG_COMPLETE);
	assert_int_equal(idx, 0);

	assert_int_equal(zcvsink_registry_feed(&r, &bad, NULL, 0, &idx), -EINVAL);
	bad.n = ZCV_MAX_PLANES + 1;
	assert_int_equal(zcvsink_registry_feed(&r, &bad, NULL, 0, &idx), -EINVAL);
	assert_int_equal(zcvsink_key_from_fds(fds, 0, &a), -EINVAL);
	assert_int_equal(zcvsink_key_from_fds(fds, ZCV_MAX_PLANES + 1, &a), -EINVAL);
	fds[0] = 1000000;
	b = a;
	assert_int_equal(zcvsink_key_from_fds(fds, 1, &a), -EBADF);
	assert_memory_equal(&a, &b, sizeof(a)); /* untouched on failure */
}

static void test_fds_identity_and_ownership(void **state)
{
	struct zcvsink_registry r;
	struct zcvsink_key k[3], other;
	int mem[3], alias, taken[ZCV_MAX_PLANES];
	unsigned idx = 99;

	zcvsink_registry_init(&r);
	for (int i = 0; i < 3; i++) {
		mem[i] = memfd_create("zcvsink-registry", MFD_CLOEXEC);
		assert_true(mem[i] >= 0);
		assert_int_equal(zcvsink_key_from_fds(&mem[i], 1, &k[i]), 0);
	}
	/* another fd number for the same object is the same buffer: identity
	 * is the object, not the fd */
	alias = fcntl(mem[0], F_DUPFD_CLOEXEC, 3);
	assert_int_equal(zcvsink_key_from_fds(&alias, 1, &other), 0);
	assert_memory_equal(&other, &k[0], sizeof(other));
	assert_memory_not_equal(&k[0], &k[1], sizeof(other));

	assert_int_equal(zcvsink_count_fds_on(k, 3), 4);
	for (int i = 0; i < 3; i++)
		assert_int_equal(zcvsink_registry_feed(&r, &k[i], &mem[i], 0, &idx),
				 ZCVSINK_REG_COPY);
	/* learning keeps a CLOEXEC dup of each, so the set survives upstream
	 * dropping its buffers between frames */
	assert_int_equal(zcvsink_count_fds_on(k, 3), 7);
	assert_true(fcntl(r.fds[1][0], F_GETFD) & FD_CLOEXEC);
	assert_int_equal(zcvsink_registry_feed(&r, &other, &alias, 0, &idx), ZCVSINK_REG_COMPLETE);
	assert_int_equal(idx, 0);
	assert_int_equal(zcvsink_count_fds_on(k, 3), 7); /* a known one is not dup'd again */

	/* taking moves ownership out: the registry no longer closes it */
	assert_int_equal(zcvsink_registry_take_fds(&r, 1, taken), 1);
	assert_int_equal(zcvsink_key_from_fds(taken, 1, &other), 0);
	assert_memory_equal(&other, &k[1], sizeof(other));
	assert_int_equal(zcvsink_registry_take_fds(&r, 1, taken + 1), 0); /* taken already */
	assert_int_equal(zcvsink_registry_take_fds(&r, 3, taken + 1), 0); /* no such entry */
	zcvsink_registry_reset(&r, false);
	assert_int_equal(zcvsink_count_fds_on(k, 3), 5); /* the memfds, alias, taken */
	close(taken[0]);
	close(alias);
	for (int i = 0; i < 3; i++)
		close(mem[i]);
	assert_int_equal(zcvsink_count_fds_on(k, 3), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_learn_by_cycle, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_learn_fixed_count, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_unknown_relearns, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_capacity, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_keys, zcv_test_fd_setup, zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_fds_identity_and_ownership, zcv_test_fd_setup,
						zcv_test_fd_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
