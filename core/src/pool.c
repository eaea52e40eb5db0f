/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <zcv/memory.h>
#include <zcv/pool.h>

static int pool_alloc(const struct zcv_layout *layout, unsigned n, uint32_t generation,
		      enum zcv_memory_kind kind, struct zcv_pool **ret_pool)
{
	struct zcv_pool *pool;

	if (n == 0 || n > ZCV_POOL_MAX_BUFFERS || zcv_layout_validate(layout) < 0)
		return -EINVAL;
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	pool->generation = generation;
	pool->kind = kind;
	pool->layout = *layout;
	pool->n_buffers = n;
	for (unsigned i = 0; i < n; i++) {
		struct zcv_buffer *b = &pool->buffers[i];

		b->index = i;
		for (unsigned f = 0; f < ZCV_MAX_PLANES; f++)
			b->fds[f] = -1;
	}
	*ret_pool = pool;
	return 0;
}

int zcv_pool_create_empty(const struct zcv_layout *layout, unsigned n, uint32_t generation,
			  enum zcv_memory_kind kind, struct zcv_pool **ret_pool)
{
	if (kind != ZCV_MEMORY_MEMFD && kind != ZCV_MEMORY_DMABUF)
		return -EINVAL;
	return pool_alloc(layout, n, generation, kind, ret_pool);
}

int zcv_pool_create_memfd(const struct zcv_layout *layout, unsigned n, uint32_t generation,
			  struct zcv_pool **ret_pool)
{
	struct zcv_pool *pool = NULL;
	int r = pool_alloc(layout, n, generation, ZCV_MEMORY_MEMFD, &pool);

	if (r < 0)
		return r;
	for (unsigned i = 0; i < n; i++) {
		static const uint8_t all_in_first[ZCV_MAX_PLANES] = { 0 };
		char name[32];
		int fd;

		snprintf(name, sizeof(name), "zcv-g%u-b%u", generation, i);
		fd = zcv_memfd_create(name, layout->size);
		if (fd < 0) {
			zcv_pool_destroy(pool);
			return fd;
		}
		r = zcv_pool_set_fds(pool, i, 1, &fd, all_in_first);
		/* The producer's writable mapping first, then the seal: from
		 * then on that mapping is the only way to write the buffer, and
		 * consumers get fds they can only read through. */
		if (r == 0)
			r = zcv_pool_map(pool, i, PROT_READ | PROT_WRITE);
		if (r == 0)
			r = zcv_memfd_seal_readonly(pool->buffers[i].fds[0]);
		if (r < 0) {
			zcv_pool_destroy(pool);
			return r;
		}
	}
	*ret_pool = pool;
	return 0;
}

int zcv_pool_set_fds(struct zcv_pool *pool, unsigned idx, unsigned n_fds, const int *fds,
		     const uint8_t *plane_fd)
{
	struct zcv_buffer *b;
	uint64_t sizes[ZCV_MAX_PLANES] = { 0 };
	int r = 0;

	if (idx >= pool->n_buffers || n_fds == 0 || n_fds > ZCV_MAX_PLANES ||
	    pool->buffers[idx].n_fds) {
		r = -EINVAL;
		goto fail;
	}
	for (unsigned f = 0; f < n_fds; f++) {
		r = zcv_fd_size(fds[f], &sizes[f]);
		if (r < 0)
			goto fail;
	}
	for (unsigned p = 0; p < pool->layout.n_planes; p++) {
		const struct zcv_plane_layout *pl = &pool->layout.planes[p];

		if (plane_fd[p] >= n_fds || (uint64_t)pl->offset + pl->size > sizes[plane_fd[p]]) {
			r = -EINVAL;
			goto fail;
		}
	}
	b = &pool->buffers[idx];
	b->n_fds = n_fds;
	for (unsigned f = 0; f < n_fds; f++) {
		b->fds[f] = fds[f];
		b->fd_size[f] = sizes[f];
	}
	for (unsigned p = 0; p < ZCV_MAX_PLANES; p++)
		b->plane_fd[p] = p < pool->layout.n_planes ? plane_fd[p] : 0;
	return 0;
fail:
	/* the fds were given to us: close them on failure too */
	for (unsigned f = 0; f < n_fds && f < ZCV_MAX_PLANES; f++)
		if (fds[f] >= 0)
			close(fds[f]);
	return r;
}

void zcv_pool_destroy(struct zcv_pool *pool)
{
	if (!pool)
		return;
	for (unsigned i = 0; i < pool->n_buffers; i++) {
		struct zcv_buffer *b = &pool->buffers[i];

		for (unsigned f = 0; f < ZCV_MAX_PLANES; f++) {
			if (b->map[f])
				munmap(b->map[f], b->fd_size[f]);
			if (b->fds[f] >= 0)
				close(b->fds[f]);
		}
	}
	free(pool);
}

int zcv_pool_map(struct zcv_pool *pool, unsigned idx, int prot)
{
	struct zcv_buffer *b;

	if (idx >= pool->n_buffers || !pool->buffers[idx].n_fds)
		return -EINVAL;
	b = &pool->buffers[idx];
	for (unsigned f = 0; f < b->n_fds; f++) {
		void *m;

		if (b->map[f])
			continue;
		m = mmap(NULL, b->fd_size[f], prot, MAP_SHARED, b->fds[f], 0);
		if (m == MAP_FAILED)
			return -errno;
		b->map[f] = m;
	}
	return 0;
}

uint8_t *zcv_buffer_plane(const struct zcv_pool *pool, const struct zcv_buffer *buf, unsigned p)
{
	uint8_t *base;

	if (p >= pool->layout.n_planes)
		return NULL;
	base = buf->map[buf->plane_fd[p]];
	return base ? base + pool->layout.planes[p].offset : NULL;
}

struct zcv_buffer *zcv_pool_acquire(struct zcv_pool *pool)
{
	for (unsigned i = 0; i < pool->n_buffers; i++) {
		struct zcv_buffer *b = &pool->buffers[i];

		if (b->state == ZCV_BUFFER_FREE) {
			b->state = ZCV_BUFFER_PRODUCER;
			return b;
		}
	}
	return NULL;
}

static void buffer_freed(struct zcv_pool *pool, struct zcv_buffer *b)
{
	b->state = ZCV_BUFFER_FREE;
	b->holders = 0;
	if (pool->on_free)
		pool->on_free(pool->on_free_data, pool, b);
}

int zcv_pool_lend(struct zcv_pool *pool, unsigned idx, unsigned holders)
{
	struct zcv_buffer *b;

	if (idx >= pool->n_buffers || pool->buffers[idx].state != ZCV_BUFFER_PRODUCER)
		return -EINVAL;
	b = &pool->buffers[idx];
	if (holders == 0) {
		buffer_freed(pool, b);
		return 0;
	}
	b->state = ZCV_BUFFER_LENT;
	b->holders = holders;
	return 0;
}

int zcv_pool_unhold(struct zcv_pool *pool, unsigned idx)
{
	struct zcv_buffer *b;

	if (idx >= pool->n_buffers || pool->buffers[idx].state != ZCV_BUFFER_LENT ||
	    pool->buffers[idx].holders == 0)
		return -EINVAL;
	b = &pool->buffers[idx];
	if (--b->holders == 0) {
		buffer_freed(pool, b);
		return 0;
	}
	return (int)b->holders;
}

unsigned zcv_pool_count(const struct zcv_pool *pool, enum zcv_buffer_state state)
{
	unsigned n = 0;

	for (unsigned i = 0; i < pool->n_buffers; i++)
		n += pool->buffers[i].state == state;
	return n;
}

int zcv_pool_check(const struct zcv_pool *pool, const struct zcv_constraints *c, char *why,
		   size_t why_size)
{
	const struct zcv_layout *l = &pool->layout;
	const struct zcv_format_info *fi = zcv_format_lookup(l->fourcc);
	uint32_t h = zcv_constraints_height(c, l->height);
	int ret = ZCV_FIT_OK;

	if (!fi) {
		snprintf(why, why_size, "the pool's format is unknown");
		return ZCV_FIT_LAYOUT;
	}
	for (unsigned p = 0; p < l->n_planes; p++) {
		const struct zcv_plane_layout *pl = &l->planes[p];
		uint64_t need = zcv_constraints_plane_need(c, l, p);

		if (c->stride_align > 1 && pl->stride % c->stride_align) {
			snprintf(why, why_size, "plane %u stride %u is not a multiple of %u", p,
				 pl->stride, c->stride_align);
			return ZCV_FIT_LAYOUT;
		}
		/* planes sharing a memory object must follow each other at the
		 * aligned height, where a codec reads them */
		if (p > 0 && h != l->height) {
			const struct zcv_plane_layout *q = &l->planes[p - 1];
			uint64_t at = (uint64_t)q->offset +
				      (uint64_t)q->stride * zcv_format_plane_lines(fi, p - 1, h);

			for (unsigned i = 0; i < pool->n_buffers; i++)
				if (pool->buffers[i].plane_fd[p] ==
					    pool->buffers[i].plane_fd[p - 1] &&
				    pl->offset != at) {
					snprintf(why, why_size,
						 "it needs plane %u at offset %llu (%u lines), the "
						 "pool has it at %u",
						 p, (unsigned long long)at, h, pl->offset);
					return ZCV_FIT_LAYOUT;
				}
		}
		for (unsigned i = 0; i < pool->n_buffers && ret == ZCV_FIT_OK; i++) {
			const struct zcv_buffer *b = &pool->buffers[i];
			uint64_t have = b->fd_size[b->plane_fd[p]];

			if (have < pl->offset + need) {
				snprintf(why, why_size,
					 "it needs %llu bytes for plane %u (%u lines), the pool's "
					 "buffers have %llu",
					 (unsigned long long)need, p, h,
					 (unsigned long long)(have > pl->offset ?
								      have - pl->offset :
								      0));
				ret = ZCV_FIT_SIZE;
			}
		}
	}
	return ret;
}

int zcv_buffer_begin_access(const struct zcv_buffer *buf, unsigned flags)
{
	return zcv_dmabuf_access(buf->fds, buf->n_fds, flags, true);
}

int zcv_buffer_end_access(const struct zcv_buffer *buf, unsigned flags)
{
	return zcv_dmabuf_access(buf->fds, buf->n_fds, flags, false);
}
