/* SPDX-License-Identifier: MIT */
#pragma once

#include <zcv/source.h>

/* Each source kind implements these; zcv_source_* dispatch through them. */
struct zcv_source_ops {
	void (*destroy)(struct zcv_source *src);
	int (*start)(struct zcv_source *src);
	int (*dispatch)(struct zcv_source *src);
	const char *(*path)(struct zcv_source *src);
	/* optional: see zcv_source_fit() */
	int (*fit)(struct zcv_source *src, const struct zcv_constraints *fit, unsigned n_buffers,
		   char *how, size_t how_size);
	/* optional: see zcv_source_release_device() */
	void (*release_device)(struct zcv_source *src);
};

struct zcv_source {
	const struct zcv_source_ops *ops;
	struct zcv_source_callbacks cbs;
	void *data;
	struct zcv_pool *pool;
	int fd; /* what the caller polls */
	uint64_t frames, dropped;
	uint64_t starved; /* times the source was left with nothing to fill */
};
