/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <zcv/pool.h>
#include "source_priv.h"

struct pattern_source {
	struct zcv_source base;
	struct zcv_pattern_source_config cfg;
	uint64_t start_ns;
	uint64_t next; /* frame number to produce next */
	bool waiting_for_buffer;
	bool started;
	/* the pool before a refit: a server may still name it until it is
	 * given the new one (zcv_server_set_pool), so it lives on */
	struct zcv_pool *old_pool;
};

static uint64_t due_ns(const struct pattern_source *ps, uint64_t k)
{
	return ps->start_ns + k * 1000000000ull * ps->cfg.fps_den / ps->cfg.fps_num;
}

static bool paced(const struct pattern_source *ps)
{
	return ps->cfg.fps_num != 0;
}

/* Paced: a timerfd armed for the next frame's due time. Unpaced: an
 * eventfd kept readable while a buffer is free, so the caller's loop
 * runs the source flat out without spinning while all buffers are lent. */
static int arm(struct pattern_source *ps, bool now)
{
	if (!paced(ps)) {
		uint64_t one = 1, v;

		if (now)
			return write(ps->base.fd, &one, sizeof(one)) < 0 ? -errno : 0;
		/* drain: nothing to do until a buffer comes back */
		return read(ps->base.fd, &v, sizeof(v)) < 0 && errno != EAGAIN ? -errno : 0;
	}
	struct itimerspec its = { 0 };
	uint64_t t = now ? zcv_now_ns() : due_ns(ps, ps->next);

	if (t == 0)
		t = 1;
	its.it_value.tv_sec = (time_t)(t / 1000000000ull);
	its.it_value.tv_nsec = (long)(t % 1000000000ull);
	return timerfd_settime(ps->base.fd, TFD_TIMER_ABSTIME, &its, NULL) < 0 ? -errno : 0;
}

static void on_free(void *data, struct zcv_pool *pool, struct zcv_buffer *buf)
{
	struct pattern_source *ps = data;

	if (ps->waiting_for_buffer) {
		ps->waiting_for_buffer = false;
		arm(ps, true);
	}
}

static int pattern_dispatch(struct zcv_source *src)
{
	struct pattern_source *ps = (struct pattern_source *)src;
	uint64_t v;

	if (read(src->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	/* Paced, one frame per call: when late, the next one is due already,
	 * the timer armed for it fires at once, and the caller's loop serves
	 * consumers (their releases, the frame just sent) between renders
	 * instead of waiting for a backlog rendered back to back. Unpaced, at
	 * most a pool's worth per call. */
	unsigned limit = paced(ps) ? 1 : src->pool->n_buffers;

	for (unsigned n = 0; n < limit; n++) {
		struct zcv_frame_meta meta = { 0 };
		uint8_t *planes[ZCV_MAX_PLANES] = { 0 };
		struct zcv_buffer *buf;
		int r;

		if (ps->cfg.frames && ps->next >= ps->cfg.frames)
			return 1;
		if (paced(ps) && zcv_now_ns() < due_ns(ps, ps->next))
			break;
		buf = zcv_pool_acquire(src->pool);
		if (!buf) {
			ps->waiting_for_buffer = true;
			return paced(ps) ? 0 : arm(ps, false);
		}
		for (unsigned p = 0; p < src->pool->layout.n_planes; p++)
			planes[p] = zcv_buffer_plane(src->pool, buf, p);
		r = zcv_pattern_render(ps->cfg.pattern, &src->pool->layout, ps->next, planes);
		if (r < 0)
			return r;
		meta.sequence = ps->next;
		meta.timestamp_ns = zcv_now_ns();
		if (ps->cfg.frames && ps->next + 1 == ps->cfg.frames)
			meta.flags |= ZCV_FRAME_FLAG_LAST;
		for (unsigned p = 0; p < src->pool->layout.n_planes; p++)
			meta.bytesused[p] = src->pool->layout.planes[p].size;
		ps->next++;
		src->frames++;
		src->cbs.frame(src->data, buf, &meta);
	}
	if (ps->cfg.frames && ps->next >= ps->cfg.frames)
		return 1;
	return arm(ps, !paced(ps));
}

static void pattern_destroy(struct zcv_source *src)
{
	zcv_pool_destroy(src->pool);
	zcv_pool_destroy(((struct pattern_source *)src)->old_pool);
	if (src->fd >= 0)
		close(src->fd);
	free(src);
}

static const char *pattern_path(struct zcv_source *src)
{
	return "memfd";
}

static int pattern_start(struct zcv_source *src)
{
	struct pattern_source *ps = (struct pattern_source *)src;

	ps->start_ns = zcv_now_ns();
	ps->started = true;
	return arm(ps, true);
}

/* n memfd buffers of layout l, mapped for rendering, their releases
 * waking the source. */
static int make_pool(struct pattern_source *ps, const struct zcv_layout *l, unsigned n,
		     uint32_t generation, struct zcv_pool **ret_pool)
{
	struct zcv_pool *pool;
	int r;

	r = zcv_pool_create_memfd(l, n, generation, &pool);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < pool->n_buffers; i++) {
		r = zcv_pool_map(pool, i, PROT_READ | PROT_WRITE);
		if (r < 0) {
			zcv_pool_destroy(pool);
			return r;
		}
	}
	pool->on_free = on_free;
	pool->on_free_data = ps;
	*ret_pool = pool;
	return 0;
}

/* Memory of our own: any constraints can be met by laying the frame out
 * for them (zcv_constraints_layout) in a new pool of the next generation. */
static int pattern_fit(struct zcv_source *src, const struct zcv_constraints *fit,
		       unsigned n_buffers, char *how, size_t how_size)
{
	struct pattern_source *ps = (struct pattern_source *)src;
	const struct zcv_layout *old = &src->pool->layout;
	unsigned n = ZCV_MAX(n_buffers, src->pool->n_buffers);
	struct zcv_pool *pool;
	struct zcv_layout l;
	char why[160];
	int r;

	if (ps->started)
		return -EBUSY;
	if (zcv_pool_check(src->pool, fit, why, sizeof(why)) == ZCV_FIT_OK) {
		if (n == src->pool->n_buffers) {
			snprintf(how, how_size, "the memfd buffers already fit");
			return 0;
		}
		snprintf(why, sizeof(why), "%u buffers are too few", src->pool->n_buffers);
	}
	r = zcv_constraints_layout(fit, old, &l);
	if (r < 0) {
		snprintf(how, how_size, "%s, and no layout meets them (%s)", why, strerror(-r));
		return -EOPNOTSUPP;
	}
	r = make_pool(ps, &l, n, src->pool->generation + 1, &pool);
	if (r < 0) {
		snprintf(how, how_size, "%s, and allocating larger memfd buffers failed (%s)", why,
			 strerror(-r));
		return r;
	}
	zcv_pool_destroy(ps->old_pool);
	ps->old_pool = src->pool;
	src->pool = pool;
	snprintf(how, how_size, "%u memfd buffers of %llu bytes laid out for them (strides",
		 pool->n_buffers, (unsigned long long)l.size);
	for (unsigned p = 0; p < l.n_planes; p++)
		snprintf(how + strlen(how), how_size - strlen(how), "%s %u", p ? "," : "",
			 l.planes[p].stride);
	for (unsigned p = 1; p < l.n_planes; p++)
		snprintf(how + strlen(how), how_size - strlen(how), "; plane %u at %u", p,
			 l.planes[p].offset);
	snprintf(how + strlen(how), how_size - strlen(how), ")");
	return 1;
}

static const struct zcv_source_ops pattern_ops = {
	.destroy = pattern_destroy,
	.start = pattern_start,
	.dispatch = pattern_dispatch,
	.path = pattern_path,
	.fit = pattern_fit,
};

int zcv_pattern_source_create(const struct zcv_pattern_source_config *cfg,
			      const struct zcv_source_callbacks *cbs, void *data,
			      struct zcv_source **ret_source)
{
	struct pattern_source *ps;
	struct zcv_layout layout;
	int r;

	if (cfg->fps_num && !cfg->fps_den)
		return -EINVAL;
	r = zcv_format_layout(cfg->fourcc, cfg->width, cfg->height,
			      cfg->stride_align ? cfg->stride_align : 64, &layout);
	if (r < 0)
		return r;
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	ps->base.ops = &pattern_ops;
	ps->base.cbs = *cbs;
	ps->base.data = data;
	ps->cfg = *cfg;
	ps->base.fd = paced(ps) ? timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK) :
				  eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ps->base.fd < 0) {
		r = -errno;
		free(ps);
		return r;
	}
	r = make_pool(ps, &layout, ps->cfg.n_buffers ? ps->cfg.n_buffers : 6, 1, &ps->base.pool);
	if (r < 0)
		goto fail;
	*ret_source = &ps->base;
	return 0;
fail:
	pattern_destroy(&ps->base);
	return r;
}
