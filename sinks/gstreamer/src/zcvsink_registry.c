/* SPDX-License-Identifier: MIT */
#include "zcvsink_registry.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void close_owned(struct zcvsink_registry *r)
{
	for (unsigned i = 0; i < ZCV_POOL_MAX_BUFFERS; i++)
		for (unsigned f = 0; f < ZCV_MAX_PLANES; f++) {
			if (r->fds[i][f] >= 0)
				close(r->fds[i][f]);
			r->fds[i][f] = -1;
		}
}

void zcvsink_registry_init(struct zcvsink_registry *r)
{
	memset(r, 0, sizeof(*r));
	for (unsigned i = 0; i < ZCV_POOL_MAX_BUFFERS; i++)
		for (unsigned f = 0; f < ZCV_MAX_PLANES; f++)
			r->fds[i][f] = -1;
}

void zcvsink_registry_reset(struct zcvsink_registry *r, bool disable)
{
	unsigned completed = r->completed;

	close_owned(r);
	zcvsink_registry_init(r);
	r->completed = completed;
	r->disabled = disable;
}

int zcvsink_key_from_fds(const int *fds, unsigned n, struct zcvsink_key *ret_key)
{
	struct zcvsink_key k = { .n = n };

	if (n == 0 || n > ZCV_MAX_PLANES)
		return -EINVAL;
	for (unsigned f = 0; f < n; f++) {
		struct stat st;

		if (fstat(fds[f], &st) < 0)
			return -errno;
		k.dev[f] = (uint64_t)st.st_dev;
		k.ino[f] = (uint64_t)st.st_ino;
	}
	*ret_key = k;
	return 0;
}

static bool key_equal(const struct zcvsink_key *a, const struct zcvsink_key *b)
{
	if (a->n != b->n)
		return false;
	for (unsigned f = 0; f < a->n; f++)
		if (a->dev[f] != b->dev[f] || a->ino[f] != b->ino[f])
			return false;
	return true;
}

static int find(const struct zcvsink_registry *r, const struct zcvsink_key *key)
{
	for (unsigned i = 0; i < r->n; i++)
		if (key_equal(&r->keys[i], key))
			return (int)i;
	return -1;
}

/* Appends key (and dups of fds) as entry n. Returns 0 or a negative errno. */
static int add(struct zcvsink_registry *r, const struct zcvsink_key *key, const int *fds)
{
	unsigned i = r->n;

	for (unsigned f = 0; fds && f < key->n; f++) {
		int d = fcntl(fds[f], F_DUPFD_CLOEXEC, 3);

		if (d < 0) {
			int e = -errno;

			for (unsigned g = 0; g < f; g++) {
				close(r->fds[i][g]);
				r->fds[i][g] = -1;
			}
			return e;
		}
		r->fds[i][f] = d;
	}
	r->keys[i] = *key;
	r->n++;
	return 0;
}

static int complete(struct zcvsink_registry *r, unsigned idx, unsigned *ret_index)
{
	r->complete = true;
	r->completed++;
	*ret_index = idx;
	return ZCVSINK_REG_COMPLETE;
}

int zcvsink_registry_feed(struct zcvsink_registry *r, const struct zcvsink_key *key, const int *fds,
			  unsigned expected, unsigned *ret_index)
{
	int i, e;

	if (key->n == 0 || key->n > ZCV_MAX_PLANES)
		return -EINVAL;
	if (r->disabled)
		return ZCVSINK_REG_DISABLED;
	i = find(r, key);
	if (r->complete) {
		if (i >= 0) {
			*ret_index = (unsigned)i;
			return ZCVSINK_REG_KNOWN;
		}
		/* Upstream reallocated (or grew its pool): learn the new set,
		 * starting with this buffer. */
		zcvsink_registry_reset(r, false);
		e = add(r, key, fds);
		return e < 0 ? e : ZCVSINK_REG_UNKNOWN;
	}
	if (i >= 0)
		return complete(r, (unsigned)i, ret_index);
	if (expected > ZCV_POOL_MAX_BUFFERS || r->n == ZCV_POOL_MAX_BUFFERS) {
		zcvsink_registry_reset(r, true);
		return ZCVSINK_REG_DISABLED;
	}
	e = add(r, key, fds);
	if (e < 0)
		return e;
	if (expected && r->n == expected)
		return complete(r, r->n - 1, ret_index);
	return ZCVSINK_REG_COPY;
}

unsigned zcvsink_registry_take_fds(struct zcvsink_registry *r, unsigned i, int *ret_fds)
{
	unsigned n = 0;

	if (i >= r->n || r->fds[i][0] < 0)
		return 0;
	for (; n < r->keys[i].n; n++) {
		ret_fds[n] = r->fds[i][n];
		r->fds[i][n] = -1;
	}
	return n;
}

unsigned zcvsink_count_fds_on(const struct zcvsink_key *keys, unsigned n)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned count = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		struct stat st;
		bool hit = false;

		if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &st, 0) < 0)
			continue;
		for (unsigned i = 0; i < n && !hit; i++)
			for (unsigned f = 0; f < keys[i].n && !hit; f++)
				hit = keys[i].dev[f] == (uint64_t)st.st_dev &&
				      keys[i].ino[f] == (uint64_t)st.st_ino;
		count += hit;
	}
	closedir(d);
	return count;
}
