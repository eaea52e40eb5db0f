/* SPDX-License-Identifier: MIT */
/* Counting open fds around a test: every unit test asserts it leaked none. */
#pragma once

#include <dirent.h>
#include <stdio.h>
#include "closer.h"

static inline int zcv_test_count_fds(void)
{
	DIR *d;
	int n = 0;
	struct dirent *e;

	/* fds handed to the closer thread are still open until it gets to
	 * them: count what is leaked, not what is in flight */
	zcv_fd_dispose_flush(10ull * 1000000000ull);
	d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

/* cmocka setup/teardown pair: state holds the count from setup. */
static inline int zcv_test_fd_setup(void **state)
{
	*state = (void *)(long)zcv_test_count_fds();
	return 0;
}

static inline int zcv_test_fd_teardown(void **state)
{
	int before = (int)(long)*state, after = zcv_test_count_fds();

	if (before != after) {
		fprintf(stderr, "fd leak: %d fds before the test, %d after\n", before, after);
		return -1;
	}
	return 0;
}
