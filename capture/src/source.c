/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include "source_priv.h"

void zcv_source_destroy(struct zcv_source *src)
{
	if (src)
		src->ops->destroy(src);
}

int zcv_source_start(struct zcv_source *src)
{
	return src->ops->start(src);
}

int zcv_source_get_fd(struct zcv_source *src)
{
	return src->fd;
}

int zcv_source_dispatch(struct zcv_source *src)
{
	return src->ops->dispatch(src);
}

struct zcv_pool *zcv_source_get_pool(struct zcv_source *src)
{
	return src->pool;
}

uint64_t zcv_source_frames(struct zcv_source *src)
{
	return src->frames;
}

uint64_t zcv_source_dropped(struct zcv_source *src)
{
	return src->dropped;
}

uint64_t zcv_source_starved(struct zcv_source *src)
{
	return src->starved;
}

const char *zcv_source_path(struct zcv_source *src)
{
	return src->ops->path(src);
}

int zcv_source_fit(struct zcv_source *src, const struct zcv_constraints *fit, unsigned n_buffers,
		   char *how, size_t how_size)
{
	char dummy[8];

	if (!how) {
		how = dummy;
		how_size = sizeof(dummy);
	}
	how[0] = '\0';
	if (!src->ops->fit) {
		snprintf(how, how_size, "this source cannot reallocate its buffers");
		return -EOPNOTSUPP;
	}
	return src->ops->fit(src, fit, ZCV_MIN(n_buffers, ZCV_POOL_MAX_BUFFERS), how, how_size);
}

void zcv_source_release_device(struct zcv_source *src)
{
	if (src->ops->release_device)
		src->ops->release_device(src);
}
