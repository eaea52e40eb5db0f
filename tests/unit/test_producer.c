/* SPDX-License-Identifier: MIT */
/* The producer library with a pattern source and real clients on a
 * temporary socket: allocation that fits the consumers awaited at start
 * (zero copy after the refit, layouts that meet every constraint), the
 * copy tier with its reason for needs the pool cannot meet, the
 * end-of-stream drain, and bad configs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <cmocka.h>
#include <zcv/client.h>
#include <zcv/pattern.h>
#include <zcv/producer_internal.h>
#include "fdcheck.h"

#define MAX_SINKS 3
#define W 320
#define H 180 /* not a multiple of 16: a height alignment moves plane 1 */

struct sink {
	struct zcv_client *c;
	bool manual; /* keep frames until the test releases them */
	struct zcv_client_format fmt;
	unsigned formats, n_frames, bad_frames;
	struct zcv_client_frame held[8];
	unsigned n_held;
	uint32_t last_flags;
	bool closed;
	int close_error;
	char close_reason[128];
	int result;
	uint8_t *scratch;
};

struct env {
	char dir[64];
	char path[128];
	struct zcv_producer *p;
	int result;    /* the producer's last dispatch result */
	int allocated; /* result of the allocated callback; 99: not called */
	char summary[512];
	unsigned joined, left;
	struct sink sinks[MAX_SINKS];
};

static void sink_format(void *data, const struct zcv_client_format *fmt)
{
	struct sink *s = data;

	s->formats++;
	s->fmt = *fmt;
	free(s->scratch);
	s->scratch = malloc(fmt->layout.size);
}

/* Every frame must be the pattern's frame of its sequence, read at the
 * strides and offsets the format announced. */
static void sink_frame(void *data, const struct zcv_client_frame *fr)
{
	struct sink *s = data;

	s->n_frames++;
	s->last_flags = fr->flags;
	if (!s->scratch || fr->generation != s->fmt.generation ||
	    zcv_pattern_check(ZCV_PATTERN_BARS, &s->fmt.layout, fr->sequence, fr->planes,
			      s->scratch, NULL) < 0)
		s->bad_frames++;
	if (s->manual) {
		assert_true(s->n_held < ZCV_ARRAY_SIZE(s->held));
		s->held[s->n_held++] = *fr;
	} else {
		assert_int_equal(zcv_client_release(s->c, fr), 0);
	}
}

static void sink_closed(void *data, int error, const char *reason)
{
	struct sink *s = data;

	s->closed = true;
	s->close_error = error;
	snprintf(s->close_reason, sizeof(s->close_reason), "%s", reason);
}

static const struct zcv_client_callbacks sink_cbs = {
	.size = sizeof(struct zcv_client_callbacks),
	.format = sink_format,
	.frame = sink_frame,
	.closed = sink_closed,
};

static void on_allocated(void *data, int result, const char *summary)
{
	struct env *e = data;

	e->allocated = result;
	snprintf(e->summary, sizeof(e->summary), "%s", summary);
}

static void on_joined(void *data, const struct zcv_producer_consumer *c)
{
	((struct env *)data)->joined++;
}

static void on_left(void *data, const struct zcv_producer_consumer *c)
{
	assert_true(c->gone);
	((struct env *)data)->left++;
}

static const struct zcv_producer_callbacks producer_cbs = {
	.size = sizeof(struct zcv_producer_callbacks),
	.consumer_joined = on_joined,
	.consumer_left = on_left,
	.allocated = on_allocated,
};

/* A pattern producer, unpaced (frames come as fast as buffers come back:
 * nothing here depends on time), listening on a temporary socket. */
static void env_start(struct env *e, struct zcv_producer_config *cfg)
{
	char why[256] = "";

	memset(e, 0, sizeof(*e));
	e->allocated = 99;
	strcpy(e->dir, "/tmp/zcv-producer-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/p.sock", e->dir);
	cfg->size = sizeof(*cfg);
	cfg->socket_path = e->path;
	cfg->width = W;
	cfg->height = H;
	assert_int_equal(zcv_producer_create(cfg, &producer_cbs, e, &e->p, why, sizeof(why)), 0);
	assert_string_equal(why, "");
	assert_int_equal(zcv_producer_start(e->p), 0);
	assert_string_equal(zcv_producer_socket_path(e->p), e->path);
}

static void env_finish(struct env *e)
{
	for (int i = 0; i < MAX_SINKS; i++) {
		zcv_client_destroy(e->sinks[i].c);
		free(e->sinks[i].scratch);
	}
	zcv_producer_destroy(e->p);
	rmdir(e->dir);
}

static struct sink *sink_connect(struct env *e, int i, const struct zcv_constraints *k,
				 uint32_t caps, bool manual)
{
	struct sink *s = &e->sinks[i];
	struct zcv_client_config cfg = {
		.size = sizeof(cfg),
		.socket_path = e->path,
		.name = "sink",
		.caps = caps,
	};

	if (k)
		cfg.constraints = *k;
	memset(s, 0, sizeof(*s));
	s->manual = manual;
	assert_int_equal(zcv_client_connect(&cfg, &sink_cbs, s, &s->c), 0);
	return s;
}

/*
 * One round: waits for any of the producer's or the clients' fds (never
 * longer than 10 s: a test that hangs fails) and dispatches them all.
 * Events, not time, drive it: clients and producer share this process,
 * so a message sent is readable at once, and the only timers are the
 * producer's own (hold timeout, drain deadline), which wake its fd.
 */
static void step(struct env *e)
{
	struct pollfd pfd[MAX_SINKS + 1] = { { .fd = zcv_producer_get_fd(e->p),
					       .events = POLLIN } };

	for (int i = 0; i < MAX_SINKS; i++) {
		struct sink *s = &e->sinks[i];

		pfd[i + 1].fd = s->c && !s->result ? zcv_client_get_fd(s->c) : -1;
		pfd[i + 1].events = s->c ? zcv_client_get_events(s->c) : 0;
	}
	assert_true(poll(pfd, MAX_SINKS + 1, 10000) > 0);
	if (e->result == 0)
		e->result = zcv_producer_dispatch(e->p);
	for (int i = 0; i < MAX_SINKS; i++) {
		struct sink *s = &e->sinks[i];

		if (s->c && !s->result)
			s->result = zcv_client_dispatch(s->c);
	}
}

/* Steps until cond holds; at most 1000 rounds. */
#define STEP_UNTIL(e, cond)                                                                        \
	do {                                                                                       \
		for (int round_ = 0; !(cond); round_++) {                                          \
			assert_true(round_ < 1000);                                                \
			step(e);                                                                   \
		}                                                                                  \
	} while (0)

static void release_all(struct sink *s)
{
	for (unsigned i = 0; i < s->n_held; i++)
		assert_int_equal(zcv_client_release(s->c, &s->held[i]), 0);
	s->n_held = 0;
}

/* The layout a sink was given meets what it asked for. */
static void assert_meets(const struct zcv_layout *l, const struct zcv_constraints *k)
{
	uint32_t h = k->height_align > 1 ? ZCV_ALIGN_UP(l->height, k->height_align) : l->height;

	for (unsigned p = 0; p < l->n_planes; p++) {
		const struct zcv_format_info *fi = zcv_format_lookup(l->fourcc);

		if (k->stride_align > 1)
			assert_int_equal(l->planes[p].stride % k->stride_align, 0);
		assert_true(l->size >= (uint64_t)l->planes[p].offset + k->min_plane_size[p]);
		assert_true(l->planes[p].size >=
			    (uint64_t)l->planes[p].stride * zcv_format_plane_lines(fi, p, h));
		if (p > 0)
			assert_int_equal(l->planes[p].offset,
					 l->planes[p - 1].offset + l->planes[p - 1].size);
	}
}

static const struct zcv_producer_consumer *consumer(struct env *e, unsigned id,
						    struct zcv_producer_consumer *all)
{
	unsigned n = zcv_producer_get_consumers(e->p, all, 16, sizeof(*all));

	for (unsigned i = 0; i < n; i++)
		if (all[i].id == id)
			return &all[i];
	fail_msg("no consumer %u", id);
	return NULL;
}

/*
 * Two consumers awaited at start, one needing strides aligned to 256 and
 * a large plane 1, the other 16-line macroblock rows: the pattern's pool
 * (strides of 320, plane 1 at line 180) fits neither; it is reallocated
 * for both, and both get the zero-copy memfd path to frames laid out as
 * they asked, content intact, nothing copied.
 */
static void test_fit_zero_copy(void **state)
{
	struct zcv_producer_config cfg = { .wait_consumers = 2, .fps_num = 0, .frames = 20 };
	struct zcv_constraints ka = { .stride_align = 256, .min_plane_size = { 0, 70000 } };
	struct zcv_constraints kb = { .height_align = 16 };
	struct zcv_producer_consumer all[16];
	struct zcv_layout l;
	struct sink *a, *b;
	struct env e;

	env_start(&e, &cfg);
	zcv_producer_get_layout(e.p, &l);
	assert_int_equal(l.planes[0].stride, W);
	assert_int_equal(l.planes[1].offset, W * H);
	a = sink_connect(&e, 0, &ka, 0, false);
	b = sink_connect(&e, 1, &kb, 0, false);
	STEP_UNTIL(&e, a->formats && b->formats);
	assert_int_equal(e.allocated, 1);
	assert_non_null(strstr(e.summary, "allocation for 2 consumers (stride align 256, "
					  "height align 16): reallocated: "));
	zcv_producer_get_layout(e.p, &l);
	assert_int_equal(l.planes[0].stride, 512);
	assert_int_equal(l.planes[1].offset, 512 * 192);
	for (int i = 0; i < 2; i++) {
		struct sink *s = &e.sinks[i];

		assert_int_equal(s->fmt.path, ZCV_PATH_MEMFD);
		assert_int_equal(s->fmt.generation, 2);
		assert_memory_equal(&s->fmt.layout, &l, sizeof(l));
		assert_meets(&s->fmt.layout, i == 0 ? &ka : &kb);
	}
	STEP_UNTIL(&e, e.result != 0);
	assert_int_equal(e.result, 1);
	for (int i = 0; i < 2; i++) {
		struct sink *s = &e.sinks[i];

		const struct zcv_producer_consumer *ci = consumer(&e, (unsigned)i + 1, all);

		/* unpaced: a frame finding it at its hold limit skips it */
		assert_int_equal(ci->frames_sent + ci->skipped, 20);
		assert_int_equal(s->n_frames, ci->frames_sent);
		assert_true(s->n_frames > 0);
		assert_int_equal(s->bad_frames, 0);
		assert_true(s->closed);
		assert_int_equal(s->close_error, 0);
		assert_int_equal(ci->copied_bytes, 0);
		assert_int_equal(ci->path, ZCV_PATH_MEMFD);
	}
	assert_int_equal(zcv_producer_frames(e.p), 20);
	assert_int_equal(e.joined, 2);
	assert_int_equal(e.left, 2);
	env_finish(&e);
}

/* Consumers with no needs: the buffers fit as they are; no new pool. */
static void test_fit_as_is(void **state)
{
	struct zcv_producer_config cfg = { .wait_consumers = 1, .frames = 3 };
	struct sink *a;
	struct env e;

	env_start(&e, &cfg);
	a = sink_connect(&e, 0, NULL, 0, false);
	STEP_UNTIL(&e, e.result != 0);
	assert_int_equal(e.result, 1);
	assert_int_equal(e.allocated, 0);
	assert_non_null(strstr(e.summary, "fit every consumer"));
	assert_int_equal(a->fmt.generation, 1);
	assert_int_equal(a->fmt.path, ZCV_PATH_MEMFD);
	assert_true(a->n_frames > 0);
	assert_int_equal(a->bad_frames, 0);
	assert_true(a->closed);
	assert_string_equal(a->close_reason, "end of stream");
	env_finish(&e);
}

/*
 * Holds that need more buffers than the pool has: two consumers ask for
 * 10 and 5 frames (the cap is 16), the default pool of 6 would grant
 * them 4 between them. With no count chosen the pool grows to 10 + 5 +
 * the source's 2 and both get all they asked; with 6 buffers chosen the
 * count is kept and the budget grants what it holds: the first one's
 * deep hold is cut to leave the second the default of 2.
 */
static void test_fit_grows_for_holds(void **state)
{
	struct zcv_constraints ka = { .hold = 10 }, kb = { .hold = 5 };
	struct zcv_producer_consumer all[16];

	for (int chosen = 0; chosen < 2; chosen++) {
		struct zcv_producer_config cfg = { .wait_consumers = 2,
						   .frames = 30,
						   .n_buffers = chosen ? 6 : 0 };
		struct sink *a, *b;
		struct env e;

		env_start(&e, &cfg);
		a = sink_connect(&e, 0, &ka, 0, false);
		STEP_UNTIL(&e, zcv_producer_get_consumers(e.p, all, 16, sizeof(all[0])) == 1);
		b = sink_connect(&e, 1, &kb, 0, false);
		STEP_UNTIL(&e, a->formats && b->formats);
		if (chosen) {
			assert_int_equal(e.allocated, 0);
			assert_non_null(strstr(e.summary, "the 6 memfd buffers as allocated fit"));
			assert_int_equal(a->fmt.n_buffers, 6);
			/* not sized for it: cut to leave b the default */
			assert_int_equal(a->fmt.max_hold, 2);
			assert_int_equal(b->fmt.max_hold, 2);
			assert_int_equal(b->fmt.path, ZCV_PATH_MEMFD);
		} else {
			assert_int_equal(e.allocated, 1);
			assert_non_null(strstr(e.summary, "reallocated: 17 memfd buffers"));
			assert_int_equal(a->fmt.n_buffers, 17);
			assert_int_equal(a->fmt.generation, 2);
			assert_int_equal(a->fmt.max_hold, 10);
			assert_int_equal(b->fmt.max_hold, 5);
			assert_int_equal(b->fmt.path, ZCV_PATH_MEMFD);
		}
		STEP_UNTIL(&e, e.result != 0);
		assert_int_equal(e.result, 1);
		assert_int_equal(consumer(&e, 1, all)->max_hold, chosen ? 2 : 10);
		assert_int_equal(consumer(&e, 1, all)->copied_bytes, 0);
		assert_int_equal(a->bad_frames, 0);
		assert_int_equal(b->bad_frames, 0);
		env_finish(&e);
	}
}

/* The consumer table is filled at the caller's element size: an older
 * program's shorter struct gets its fields and nothing beyond, a newer
 * one's longer struct gets zeros where this library knows nothing. */
static void test_consumers_elem_size(void **state)
{
	struct zcv_producer_config cfg = { .wait_consumers = 1, .frames = 3 };
	const size_t v1 = offsetof(struct zcv_producer_consumer, end_reason) +
			  sizeof(((struct zcv_producer_consumer *)0)->end_reason);
	struct zcv_producer_consumer now[2];
	uint8_t buf[2][sizeof(struct zcv_producer_consumer) + 16];
	struct env e;

	env_start(&e, &cfg);
	sink_connect(&e, 0, NULL, 0, false);
	sink_connect(&e, 1, NULL, 0, false);
	STEP_UNTIL(&e, e.result != 0);
	assert_int_equal(zcv_producer_get_consumers(e.p, now, 2, sizeof(now[0])), 2);
	assert_int_equal(now[0].id, 1);
	assert_int_equal(now[1].id, 2);
	/* longer elements: each at its own stride, the tail zeroed */
	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(zcv_producer_get_consumers(e.p, (void *)buf, 2, sizeof(buf[0])), 2);
	for (int i = 0; i < 2; i++) {
		assert_memory_equal(buf[i], &now[i], sizeof(now[i]));
		for (size_t b = sizeof(now[i]); b < sizeof(buf[i]); b++)
			assert_int_equal(buf[i][b], 0);
	}
	/* the first version's size: the second element right after it */
	memset(buf, 0xa5, sizeof(buf));
	assert_int_equal(zcv_producer_get_consumers(e.p, (void *)buf, 2, v1), 2);
	assert_memory_equal(buf[0], &now[0], v1);
	assert_memory_equal((uint8_t *)buf + v1, &now[1], v1);
	assert_int_equal(((uint8_t *)buf)[2 * v1], 0xa5); /* nothing written past */
	assert_int_equal(zcv_producer_get_consumers(e.p, (void *)buf, 2, v1 - 1), 0);
	env_finish(&e);
}

/*
 * What the pool cannot give gets the copy tier, with the reason: a
 * consumer that joins after the allocation for the ones awaited at start
 * and needs strides aligned to 4096. Its frames come in a private pool
 * laid out for it; the others keep the zero-copy path.
 */
static void test_copy_tier_reason(void **state)
{
	struct zcv_constraints ka = { .stride_align = 128 };
	struct zcv_constraints kc = { .stride_align = 4096 };
	struct zcv_producer_consumer all[16];
	const struct zcv_producer_consumer *ic;
	struct sink *a, *c;
	struct env e;

	env_start(&e, &(struct zcv_producer_config){ .wait_consumers = 1, .max_hold = 2 });
	a = sink_connect(&e, 0, &ka, 0, false);
	STEP_UNTIL(&e, a->n_frames >= 2);
	assert_int_equal(e.allocated, 1);
	assert_int_equal(a->fmt.path, ZCV_PATH_MEMFD);
	assert_meets(&a->fmt.layout, &ka);

	c = sink_connect(&e, 1, &kc, 0, false);
	STEP_UNTIL(&e, c->n_frames >= 3);
	assert_int_equal(c->fmt.path, ZCV_PATH_COPY);
	assert_meets(&c->fmt.layout, &kc);
	assert_int_equal(c->bad_frames, 0);
	ic = consumer(&e, 2, all);
	assert_int_equal(ic->path, ZCV_PATH_COPY);
	assert_non_null(strstr(ic->path_reason, "is not a multiple of 4096"));
	assert_true(ic->copied_bytes > 0);
	assert_int_equal(consumer(&e, 1, all)->copied_bytes, 0);
	assert_int_equal(a->fmt.path, ZCV_PATH_MEMFD);
	assert_int_equal(a->bad_frames, 0);
	env_finish(&e);
}

/* stop() once a consumer holds all it may (max_hold 2), never releasing. */
static struct sink *stop_while_held(struct env *e, struct zcv_producer_config *cfg)
{
	struct sink *a;

	cfg->wait_consumers = 1;
	cfg->max_hold = 2;
	env_start(e, cfg);
	a = sink_connect(e, 0, NULL, 0, true);
	STEP_UNTIL(e, a->n_held == 2);
	zcv_producer_stop(e->p);
	return a;
}

/*
 * stop() while a consumer holds frames: it is told the stream ended, the
 * producer waits (dispatch returns 0) until it gives them back, then
 * dispatch returns 1, and keeps returning it.
 */
static void test_drain_release(void **state)
{
	/* a hold timeout no run of this test reaches: only the release ends it */
	struct zcv_producer_config cfg = { .hold_timeout_ns = 3600 * 1000000000ull };
	uint64_t frames;
	struct env e;
	struct sink *a = stop_while_held(&e, &cfg);

	frames = zcv_producer_frames(e.p);
	STEP_UNTIL(&e, a->closed);
	assert_int_equal(a->close_error, 0);
	assert_string_equal(a->close_reason, "producer stopped");
	/* the producer still waits for the frames */
	assert_int_equal(e.result, 0);
	assert_int_equal(zcv_producer_dispatch(e.p), 0);
	assert_int_equal(zcv_producer_streaming(e.p), 1);
	release_all(a);
	STEP_UNTIL(&e, e.result != 0);
	assert_int_equal(e.result, 1);
	assert_int_equal(zcv_producer_dispatch(e.p), 1);
	assert_int_equal(zcv_producer_streaming(e.p), 0);
	/* nothing was captured once stopped */
	assert_int_equal(zcv_producer_frames(e.p), frames);
	assert_string_equal(zcv_producer_error(e.p), "");
	env_finish(&e);
}

/* A consumer that never gives its frames back does not hold the drain up
 * for good: the hold timeout evicts it and dispatch returns 1. */
static void test_drain_timeout(void **state)
{
	struct zcv_producer_config cfg = { .hold_timeout_ns = 50 * 1000000ull };
	struct zcv_producer_consumer all[16];
	struct env e;
	struct sink *a = stop_while_held(&e, &cfg);

	STEP_UNTIL(&e, e.result != 0);
	assert_int_equal(e.result, 1);
	assert_non_null(strstr(consumer(&e, 1, all)->end_reason, "held frame"));
	assert_int_equal(consumer(&e, 1, all)->end_error, -ETIMEDOUT);
	release_all(a); /* too late: only freed here */
	env_finish(&e);
}

/* Stopped before it started: finished at once. */
static void test_stop_before_start(void **state)
{
	struct zcv_producer_config cfg = { .size = sizeof(cfg) };
	struct zcv_producer *p = NULL;

	assert_int_equal(zcv_producer_create(&cfg, NULL, NULL, &p, NULL, 0), 0);
	assert_int_equal(zcv_producer_dispatch(p), -EINVAL);
	assert_null(zcv_producer_socket_path(p));
	zcv_producer_stop(p);
	assert_int_equal(zcv_producer_dispatch(p), 1);
	assert_int_equal(zcv_producer_start(p), -EALREADY);
	zcv_producer_destroy(p);
}

/* A second producer on the same socket is refused; so is a second start. */
static void test_start_errors(void **state)
{
	struct zcv_producer_config cfg = { .size = sizeof(cfg) };
	struct zcv_producer *p2 = NULL;
	struct env e;

	env_start(&e, &(struct zcv_producer_config){ 0 });
	assert_int_equal(zcv_producer_start(e.p), -EALREADY);
	cfg.socket_path = e.path;
	assert_int_equal(zcv_producer_create(&cfg, NULL, NULL, &p2, NULL, 0), 0);
	assert_int_equal(zcv_producer_start(p2), -EADDRINUSE);
	zcv_producer_destroy(p2);
	env_finish(&e);
}

/* The config of a newer header, with a field this library does not know. */
struct config_v2 {
	struct zcv_producer_config v1;
	uint64_t future;
};

static void expect_refused(const struct zcv_producer_config *cfg,
			   const struct zcv_producer_callbacks *cbs, int error, const char *why)
{
	struct zcv_producer *p = (struct zcv_producer *)&p;
	char text[256] = "untouched";

	assert_int_equal(zcv_producer_create(cfg, cbs, NULL, &p, text, sizeof(text)), error);
	assert_ptr_equal(p, (struct zcv_producer *)&p); /* untouched */
	assert_non_null(strstr(text, why));
}

static void test_bad_config(void **state)
{
	struct zcv_producer_config ok = { .size = sizeof(ok) }, c;
	struct zcv_producer_callbacks cbs = { .size = sizeof(cbs) };
	struct config_v2 v2 = { .v1 = { .size = sizeof(v2) }, .future = 1 };
	struct {
		struct zcv_producer_callbacks v1;
		void *future;
	} cbs2 = { .v1 = { .size = sizeof(cbs2) }, .future = &cbs2 };
	struct zcv_producer *p = NULL;

	expect_refused(NULL, NULL, -EINVAL, "no config");
	c = ok;
	c.size = 0;
	expect_refused(&c, NULL, -EINVAL, "no size");
	expect_refused(&ok, &(struct zcv_producer_callbacks){ 0 }, -EINVAL, "no size");
	expect_refused(&v2.v1, NULL, -E2BIG, "does not know");
	expect_refused(&ok, &cbs2.v1, -E2BIG, "does not know");
	c = ok;
	c.source = 7;
	expect_refused(&c, &cbs, -EINVAL, "unknown source");
	c = ok;
	c.source = ZCV_PRODUCER_V4L2;
	expect_refused(&c, &cbs, -EINVAL, "needs a device");
	c.device = "/nonexistent/video0";
	expect_refused(&c, &cbs, -ENOENT, "/nonexistent/video0");
	c = ok;
	c.pattern = "plaid";
	expect_refused(&c, &cbs, -EINVAL, "unknown pattern");
	c = ok;
	c.fps_num = 30;
	expect_refused(&c, &cbs, -EINVAL, "denominator");
	c = ok;
	c.n_buffers = 1;
	expect_refused(&c, &cbs, -EINVAL, "2 to 32 buffers");
	c.n_buffers = 33;
	expect_refused(&c, &cbs, -EINVAL, "2 to 32 buffers");
	c = ok;
	c.max_hold = 33;
	expect_refused(&c, &cbs, -EINVAL, "max_hold");
	c = ok;
	c.width = 321; /* NV12 needs an even width */
	c.height = 180;
	expect_refused(&c, &cbs, -EINVAL, "cannot create the pattern source (321x180)");

	/* the same with all that unknown tail zeroed is a valid v2 caller */
	v2.future = 0;
	assert_int_equal(zcv_producer_create(&v2.v1, NULL, NULL, &p, NULL, 0), 0);
	zcv_producer_destroy(p);
	/* and an older, shorter struct reads as zeros beyond its size */
	c = ok;
	c.size = offsetof(struct zcv_producer_config, socket_path);
	c.max_hold = 33; /* beyond its size: not read */
	p = NULL;
	assert_int_equal(zcv_producer_create(&c, NULL, NULL, &p, NULL, 0), 0);
	zcv_producer_destroy(p);
	zcv_producer_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fit_zero_copy, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_fit_grows_for_holds, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_fit_as_is, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_consumers_elem_size, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_copy_tier_reason, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_drain_release, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_drain_timeout, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_stop_before_start, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_start_errors, zcv_test_fd_setup,
						zcv_test_fd_teardown),
		cmocka_unit_test_setup_teardown(test_bad_config, zcv_test_fd_setup,
						zcv_test_fd_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
