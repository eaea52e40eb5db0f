/* SPDX-License-Identifier: MIT */
/* The producer: a source, the server lending its buffers, allocation that
 * fits the consumers awaited at start, and the end-of-stream drain. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <libgen.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <zcv/abi.h>
#include <zcv/log.h>
#include <zcv/memory.h>
#include <zcv/pattern.h>
#include <zcv/producer_internal.h>
#include <zcv/server.h>
#include <zcv/source.h>
#include <zcv/v4l2.h>

#define NSEC_PER_SEC 1000000000ull

/* what woke the producer's epoll fd */
enum { TAG_TIMER = 1, TAG_SERVER, TAG_SOURCE, TAG_DEVDIR };

struct zcv_producer {
	struct zcv_producer_config cfg;
	struct zcv_producer_callbacks cbs;
	void *data;
	struct zcv_source *src;
	struct zcv_server *srv;
	int epfd;
	int timer_fd;  /* wakes the caller's loop: a failure to report, the drain's deadline */
	bool started;  /* the source runs */
	bool admitted; /* the consumers awaited at start were allocated for */
	bool draining;
	uint64_t drain_deadline;
	/* noted inside server or source callbacks, reported by dispatch */
	int start_error;
	int fatal;             /* error: the stream cannot go on */
	const char *fatal_bye; /* what consumers are told then */
	int result; /* once the stream is over: 1, or the negative errno it failed with */
	char error[512];
	char alloc[320]; /* what the allocation for the consumers at start chose, and why */
	/* test aids (zcv_producer_log_frames) */
	FILE *checksums, *dump;
	uint64_t checksum_every, logged;
	struct zcv_stats stats;
	/* persistent: sources whose device went away, kept until consumers
	 * gave their buffers back; the needs the pool was fitted to */
	bool source_gone;
	uint64_t next_reopen, reopen_every;
	int devdir_fd;         /* inotify on the device's directory while it is gone; -1 */
	unsigned devdir_wakes; /* its events while the device was gone */
	struct zcv_source *retired[4];
	unsigned lost, returned;
	uint64_t last_sequence, retired_dropped, retired_starved;
	bool have_fit;
	struct zcv_constraints fit;
	unsigned fit_buffers; /* buffers the admitted consumers' holds need */
};

static const char *source_name(const struct zcv_producer *p)
{
	return p->cfg.source == ZCV_PRODUCER_V4L2 ? p->cfg.device : "pattern";
}

static void arm_timer(struct zcv_producer *p, uint64_t at_ns)
{
	struct itimerspec its = { 0 };

	at_ns = at_ns ? at_ns : 1; /* 0 would disarm it */
	its.it_value.tv_sec = (time_t)(at_ns / NSEC_PER_SEC);
	its.it_value.tv_nsec = (long)(at_ns % NSEC_PER_SEC);
	if (timerfd_settime(p->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		zcv_debug("producer: timerfd_settime: %s", strerror(errno));
}

/* Makes the fd readable now, so the caller's loop comes to dispatch. */
static void wake(struct zcv_producer *p)
{
	arm_timer(p, zcv_now_ns());
}

static void consumer_view(const struct zcv_consumer_info *ci, struct zcv_producer_consumer *out)
{
	memset(out, 0, sizeof(*out));
	out->id = ci->id;
	snprintf(out->name, sizeof(out->name), "%s", ci->name);
	out->pid = ci->pid;
	out->uid = ci->uid;
	out->path = ci->path;
	snprintf(out->path_reason, sizeof(out->path_reason), "%s", ci->path_reason);
	out->constraints = ci->constraints;
	out->max_hold = ci->max_hold;
	out->held = ci->held;
	out->frames_sent = ci->frames_sent;
	out->skipped = ci->skipped;
	out->copied_bytes = ci->copied_bytes;
	out->gone = ci->state == ZCV_CONSUMER_GONE;
	out->end_error = ci->end_error;
	snprintf(out->end_reason, sizeof(out->end_reason), "%s", ci->end_reason);
}

/* The frame as captured, read through the producer's own mapping, for
 * tests to compare with what consumers saw: a checksum of every Nth frame
 * and the last (reading whole frames slows an emulated guest enough to
 * lose frames), and/or every frame's visible lines after a header. */
static void log_frame(struct zcv_producer *p, const struct zcv_buffer *buf,
		      const struct zcv_frame_meta *meta)
{
	struct zcv_pool *pool = zcv_source_get_pool(p->src);
	const struct zcv_layout *l = &pool->layout;
	const struct zcv_format_info *fi = zcv_format_lookup(l->fourcc);
	const uint8_t *planes[ZCV_MAX_PLANES] = { 0 };
	uint32_t hdr[8] = { 0x4456435a,
			    l->width,
			    l->height,
			    l->fourcc,
			    (uint32_t)meta->sequence,
			    (uint32_t)(meta->sequence >> 32) };
	bool sum = p->checksums &&
		   (p->logged++ % p->checksum_every == 0 || (meta->flags & ZCV_FRAME_FLAG_LAST));

	if (!sum && !p->dump)
		return;
	if (!fi || zcv_pool_map(pool, buf->index, PROT_READ) < 0) {
		if (sum)
			fprintf(p->checksums, "%" PRIu64 " unmappable\n", meta->sequence);
		return;
	}
	zcv_buffer_begin_access(buf, ZCV_SYNC_READ);
	for (unsigned i = 0; i < l->n_planes; i++) {
		planes[i] = zcv_buffer_plane(pool, buf, i);
		hdr[6] += zcv_format_plane_row_bytes(fi, i, l->width) *
			  zcv_format_plane_lines(fi, i, l->height);
	}
	if (sum)
		fprintf(p->checksums, "%" PRIu64 " %016" PRIx64 "\n", meta->sequence,
			zcv_frame_checksum(l, planes));
	if (p->dump)
		fwrite(hdr, sizeof(hdr), 1, p->dump);
	for (unsigned i = 0; p->dump && i < l->n_planes; i++)
		for (uint32_t y = 0; y < zcv_format_plane_lines(fi, i, l->height); y++)
			fwrite(planes[i] + (size_t)y * l->planes[i].stride,
			       zcv_format_plane_row_bytes(fi, i, l->width), 1, p->dump);
	zcv_buffer_end_access(buf, ZCV_SYNC_READ);
}

static void on_frame(void *data, struct zcv_buffer *buf, const struct zcv_frame_meta *meta)
{
	struct zcv_producer *p = data;
	uint64_t now;
	int n;

	log_frame(p, buf, meta);
	p->last_sequence = meta->sequence;
	n = zcv_server_publish(p->srv, buf->index, meta);
	now = zcv_now_ns();
	if (n < 0 && !p->fatal) {
		/* the buffer would stay the producer's for good */
		snprintf(p->error, sizeof(p->error), "internal error publishing buffer %u: %s",
			 buf->index, strerror(-n));
		p->fatal = n;
		p->fatal_bye = "producer failed";
	}
	if (!p->stats.frames)
		p->stats.start_ns = now;
	p->stats.end_ns = now;
	p->stats.frames++;
	/* producer-side latency: capture (render done) to hand-off done */
	zcv_latency_add(&p->stats.latency, now - meta->timestamp_ns);
}

/* The source starts once the consumers awaited at start stream. */
static void maybe_start(struct zcv_producer *p)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = TAG_SOURCE };
	int r;

	if (p->started || p->draining || p->result ||
	    zcv_server_streaming_count(p->srv) < p->cfg.wait_consumers)
		return;
	p->started = true;
	r = zcv_source_start(p->src);
	/* polled from now on only: a V4L2 fd not streaming reports POLLERR */
	if (r == 0 && epoll_ctl(p->epfd, EPOLL_CTL_ADD, zcv_source_get_fd(p->src), &ev) < 0)
		r = -errno;
	if (r < 0) {
		p->start_error = r;
		wake(p);
	}
}

static void on_joined(void *data, const struct zcv_consumer_info *ci)
{
	struct zcv_producer *p = data;
	struct zcv_producer_consumer c;

	if (p->cbs.consumer_joined) {
		consumer_view(ci, &c);
		p->cbs.consumer_joined(p->data, &c);
	}
	maybe_start(p);
}

static void on_left(void *data, const struct zcv_consumer_info *ci)
{
	struct zcv_producer *p = data;
	struct zcv_producer_consumer c;

	if (p->cbs.consumer_left) {
		consumer_view(ci, &c);
		p->cbs.consumer_left(p->data, &c);
	}
}

/*
 * Allocation that fits: once the consumers awaited at start have said
 * what they need, the source reallocates (if it must) for all of them,
 * and only then are they sent the pool.
 */
static void on_hello(void *data, const struct zcv_consumer_info *ci)
{
	struct zcv_producer *p = data;
	unsigned n = zcv_server_pending_count(p->srv);
	char summary[sizeof(p->error)];
	struct zcv_constraints k;
	int r, set_r = 0;

	(void)ci;
	if (p->admitted || n < p->cfg.wait_consumers)
		return;
	p->admitted = true;
	zcv_server_pending_constraints(p->srv, &k);
	p->fit = k;
	p->have_fit = true;
	/* a pool size the user chose is kept; else it grows to what the
	 * consumers awaited need to hold (the budget then grants each all it
	 * asked). Without consumers to await, it is not sized for whichever
	 * came first. */
	p->fit_buffers =
		p->cfg.n_buffers || !p->cfg.wait_consumers ? 0 : zcv_server_pending_buffers(p->srv);
	if (zcv_pool_check(zcv_source_get_pool(p->src), &k, p->alloc, sizeof(p->alloc)) ==
		    ZCV_FIT_OK &&
	    p->fit_buffers <= zcv_source_get_pool(p->src)->n_buffers) {
		r = 0;
		snprintf(p->alloc, sizeof(p->alloc),
			 "the %u %s buffers as allocated fit every consumer",
			 zcv_source_get_pool(p->src)->n_buffers, zcv_source_path(p->src));
	} else {
		r = zcv_source_fit(p->src, &k, p->fit_buffers, p->alloc, sizeof(p->alloc));
	}
	snprintf(summary, sizeof(summary),
		 "allocation for %u consumer%s (stride align %u, height align %u): %s%s", n,
		 n == 1 ? "" : "s", k.stride_align ? k.stride_align : 1,
		 k.height_align ? k.height_align : 1,
		 r == 1 ? "reallocated: " :
		 r == 0 ? "" :
			  "cannot fit: ",
		 p->alloc);
	/* a source left without buffers, or a server that cannot take the
	 * new ones, cannot stream: dispatch ends it */
	if (r == 1)
		set_r = zcv_server_set_pool(p->srv, zcv_source_get_pool(p->src));
	if ((r < 0 && !zcv_source_get_pool(p->src)) || set_r < 0) {
		snprintf(p->error, sizeof(p->error), "%s", summary);
		p->fatal = set_r < 0 ? set_r : r;
		p->fatal_bye = "the producer could not allocate its buffers";
		wake(p);
		return;
	}
	if (p->cbs.allocated)
		p->cbs.allocated(p->data, r, summary);
	zcv_server_admit(p->srv);
}

static int check_config(const struct zcv_producer_config *c, char *why, size_t why_size)
{
	enum zcv_pattern pattern;
	const char *bad = NULL;

	if (c->source != ZCV_PRODUCER_PATTERN && c->source != ZCV_PRODUCER_V4L2)
		bad = "unknown source kind";
	else if (c->source == ZCV_PRODUCER_V4L2 && (!c->device || !c->device[0]))
		bad = "a V4L2 source needs a device";
	else if (c->pattern && zcv_pattern_from_name(c->pattern, &pattern) < 0)
		bad = "unknown pattern (bars, checkers)";
	else if (c->fps_num && !c->fps_den)
		bad = "a frame rate needs a denominator";
	else if (c->n_buffers == 1 || c->n_buffers > ZCV_POOL_MAX_BUFFERS)
		bad = "the pool needs 2 to 32 buffers";
	else if (c->max_hold > ZCV_POOL_MAX_BUFFERS)
		bad = "max_hold is above 32";
	if (!bad)
		return 0;
	snprintf(why, why_size, "%s", bad);
	return -EINVAL;
}

/* Opens the configured source into p->src. like (when not NULL): the
 * stream it replaces on the same consumers: same format and size, the
 * next generation, sequence numbers going on. */
static int open_source(struct zcv_producer *p, const struct zcv_pool *like, char *why,
		       size_t why_size)
{
	const struct zcv_producer_config *c = &p->cfg;
	const struct zcv_source_callbacks cbs = { .frame = on_frame };
	const char *err = NULL;
	int r;

	if (c->source == ZCV_PRODUCER_PATTERN) {
		struct zcv_pattern_source_config pc = {
			.fourcc = c->fourcc ? c->fourcc : ZCV_FMT_NV12,
			.width = c->width || c->height ? c->width : 1280,
			.height = c->width || c->height ? c->height : 720,
			.n_buffers = c->n_buffers,
			.fps_num = c->fps_num,
			.fps_den = c->fps_den,
			.frames = c->frames,
		};

		zcv_pattern_from_name(c->pattern ? c->pattern : "bars", &pc.pattern);
		r = zcv_pattern_source_create(&pc, &cbs, p, &p->src);
		if (r < 0)
			snprintf(why, why_size, "cannot create the pattern source (%ux%u): %s",
				 pc.width, pc.height, strerror(-r));
		return r;
	}
	r = zcv_v4l2_source_create(
		&(struct zcv_v4l2_source_config){
			.device = c->device,
			.input = c->select_input ? (int)c->input : -1,
			.width = like ? like->layout.width : c->width,
			.height = like ? like->layout.height : c->height,
			.fourcc = like && !c->fourcc ? like->layout.fourcc : c->fourcc,
			.multiplanar_planes = c->fd_per_plane,
			.fps_num = c->fps_num,
			.fps_den = c->fps_den,
			.dv_timings = c->dv_timings,
			.n_buffers = like ? like->n_buffers : c->n_buffers,
			.frames = c->frames && like ? (c->frames > p->stats.frames ?
							       c->frames - p->stats.frames :
							       1) :
						      c->frames,
			.require_zero_copy = c->require_zero_copy,
			.force_copy = c->force_copy,
			.generation = like ? like->generation + 1 : 0,
			.first_sequence = like ? p->last_sequence + 1 : 0,
		},
		&cbs, p, &p->src, &err);
	if (r < 0)
		snprintf(why, why_size, "%s", err ? err : strerror(-r));
	return r;
}

int zcv_producer_create(const struct zcv_producer_config *cfg,
			const struct zcv_producer_callbacks *cbs, void *data,
			struct zcv_producer **ret_producer, char *why, size_t why_size)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = TAG_TIMER };
	struct zcv_producer_callbacks cb;
	struct zcv_producer_config c;
	struct zcv_producer *p;
	char none[1];
	int r;

	if (!why || !why_size) {
		why = none;
		why_size = sizeof(none);
	}
	why[0] = '\0';
	if (!cfg || !ret_producer) {
		snprintf(why, why_size, "no config or nowhere to return the producer");
		return -EINVAL;
	}
	memset(&cb, 0, sizeof(cb));
	r = zcv_struct_copy_in(&c, sizeof(c), cfg);
	if (r == 0 && cbs)
		r = zcv_struct_copy_in(&cb, sizeof(cb), cbs);
	if (r < 0) {
		snprintf(why, why_size, "%s",
			 r == -E2BIG ? "a field this library does not know is set" :
				       "the config or callbacks struct says no size");
		return r;
	}
	r = check_config(&c, why, why_size);
	if (r < 0)
		return r;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cfg = c;
	p->cbs = cb;
	p->data = data;
	zcv_stats_init(&p->stats);
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	p->devdir_fd = -1;
	p->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (p->epfd < 0 || p->timer_fd < 0 ||
	    epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->timer_fd, &ev) < 0) {
		r = -errno;
		snprintf(why, why_size, "cannot make the producer's event fds: %s", strerror(-r));
		goto fail;
	}
	r = open_source(p, NULL, why, why_size);
	if (r < 0)
		goto fail;
	*ret_producer = p;
	return 0;
fail:
	zcv_producer_destroy(p);
	return r;
}

int zcv_producer_start(struct zcv_producer *p)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = TAG_SERVER };
	const struct zcv_server_callbacks cbs = {
		.consumer_joined = on_joined,
		.consumer_left = on_left,
		.consumer_hello = on_hello,
	};
	struct zcv_server_config sc = {
		.socket_path = p->cfg.socket_path,
		.max_hold = p->cfg.max_hold,
		.hold_timeout_ns = p->cfg.hold_timeout_ns,
		.max_consumers = p->cfg.max_consumers,
		.source_reserve = p->cfg.source_reserve,
		.leave_room = true,
		.allow_group = p->cfg.allow_group,
		.allowed_gid = (gid_t)p->cfg.allowed_gid,
		/* consumers awaited at start wait for the allocation that fits them */
		.defer_admission = p->cfg.wait_consumers > 0,
	};
	int r;

	if (p->srv || p->result)
		return -EALREADY;
	if (p->cfg.source == ZCV_PRODUCER_V4L2) {
		zcv_v4l2_source_fps(p->src, &sc.fps_num, &sc.fps_den);
	} else {
		sc.fps_num = p->cfg.fps_num;
		sc.fps_den = p->cfg.fps_num ? p->cfg.fps_den : 1;
	}
	r = zcv_server_create(&sc, &cbs, p, zcv_source_get_pool(p->src), &p->srv);
	if (r < 0)
		return r;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, zcv_server_get_fd(p->srv), &ev) < 0) {
		r = -errno;
		zcv_server_destroy(p->srv);
		p->srv = NULL;
		return r;
	}
	maybe_start(p);
	return 0;
}

/* Consumers are told; the source is not dispatched any more; dispatch
 * finishes once every lent buffer is back and every consumer gone. */
static void drain_begin(struct zcv_producer *p, int error, const char *reason)
{
	uint64_t hold = p->cfg.hold_timeout_ns ? p->cfg.hold_timeout_ns : NSEC_PER_SEC;

	p->draining = true;
	if (p->started)
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, zcv_source_get_fd(p->src), NULL);
	/* a consumer that holds a frame past the hold timeout is evicted;
	 * the second more is for its socket's hang-up to arrive */
	p->drain_deadline = zcv_now_ns() + hold + NSEC_PER_SEC;
	zcv_server_end(p->srv, error, reason);
	wake(p);
}

void zcv_producer_stop(struct zcv_producer *p)
{
	if (p->result || p->draining)
		return;
	if (!p->srv) {
		p->result = 1;
		return;
	}
	drain_begin(p, 0, "producer stopped");
}

void zcv_producer_destroy(struct zcv_producer *p)
{
	if (!p)
		return;
	zcv_server_destroy(p->srv);
	zcv_source_destroy(p->src);
	for (unsigned i = 0; i < ZCV_ARRAY_SIZE(p->retired); i++)
		zcv_source_destroy(p->retired[i]);
	if (p->devdir_fd >= 0)
		close(p->devdir_fd);
	if (p->timer_fd >= 0)
		close(p->timer_fd);
	if (p->epfd >= 0)
		close(p->epfd);
	zcv_stats_finish(&p->stats);
	free(p);
}

int zcv_producer_get_fd(struct zcv_producer *p)
{
	return p->epfd;
}

/* The stream is over for good: consumers are told why (bye), unless the
 * server itself failed. */
static int fail(struct zcv_producer *p, int error, const char *bye, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(struct zcv_producer *p, int error, const char *bye, const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(p->error, sizeof(p->error), fmt, ap);
		va_end(ap);
	}
	if (bye)
		zcv_server_end(p->srv, error, bye);
	p->result = error;
	return error;
}

/* Sources retired (their device went away) go once consumers gave all
 * their buffers back. Returns whether none is left. */
static bool retired_collect(struct zcv_producer *p)
{
	bool none = true;

	for (unsigned i = 0; i < ZCV_ARRAY_SIZE(p->retired); i++) {
		if (p->retired[i] &&
		    zcv_pool_count(zcv_source_get_pool(p->retired[i]), ZCV_BUFFER_LENT) == 0) {
			zcv_source_destroy(p->retired[i]);
			p->retired[i] = NULL;
		}
		none = none && !p->retired[i];
	}
	return none;
}

static bool drained(struct zcv_producer *p)
{
	return retired_collect(p) &&
	       zcv_pool_count(zcv_source_get_pool(p->src), ZCV_BUFFER_LENT) == 0 &&
	       zcv_server_streaming_count(p->srv) == 0;
}

#define REOPEN_FIRST_NS (250ull * 1000000ull)
#define REOPEN_LATER_NS NSEC_PER_SEC

/*
 * While the device is gone, entries appearing or changing in its
 * directory (the node, a by-id link, permissions udev sets) wake a reopen
 * at once; the timer stays as the fallback. The directory itself may be
 * gone too (udev removes an empty /dev/v4l/by-id): then /dev is watched.
 */
static void devdir_watch(struct zcv_producer *p)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = TAG_DEVDIR };
	char path[sizeof(p->error)];
	const char *dir;

	if (p->devdir_fd >= 0 || p->cfg.source != ZCV_PRODUCER_V4L2)
		return;
	p->devdir_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (p->devdir_fd < 0)
		return;
	snprintf(path, sizeof(path), "%s", p->cfg.device);
	dir = dirname(path);
	if (inotify_add_watch(p->devdir_fd, dir, IN_CREATE | IN_ATTRIB | IN_MOVED_TO) < 0 &&
	    inotify_add_watch(p->devdir_fd, "/dev", IN_CREATE | IN_ATTRIB | IN_MOVED_TO) < 0) {
		close(p->devdir_fd);
		p->devdir_fd = -1;
		return;
	}
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->devdir_fd, &ev) < 0) {
		close(p->devdir_fd);
		p->devdir_fd = -1;
	}
}

static void devdir_unwatch(struct zcv_producer *p)
{
	if (p->devdir_fd < 0)
		return;
	epoll_ctl(p->epfd, EPOLL_CTL_DEL, p->devdir_fd, NULL);
	close(p->devdir_fd);
	p->devdir_fd = -1;
}

/* persistent: the device went away. Consumers stay; the source stops
 * being polled and is tried again from the timer. */
static void source_lost(struct zcv_producer *p)
{
	char what[320];

	epoll_ctl(p->epfd, EPOLL_CTL_DEL, zcv_source_get_fd(p->src), NULL);
	/* the device's node comes back under the same name only once nobody
	 * holds the old one open */
	zcv_source_release_device(p->src);
	p->source_gone = true;
	p->lost++;
	p->reopen_every = REOPEN_FIRST_NS;
	p->next_reopen = zcv_now_ns() + p->reopen_every;
	arm_timer(p, p->next_reopen);
	devdir_watch(p);
	snprintf(what, sizeof(what),
		 "the capture device %s is gone; consumers stay connected while it is "
		 "tried again",
		 source_name(p));
	zcv_server_set_source(p->srv, false, "the capture device is gone; waiting for it");
	if (p->cbs.source_changed)
		p->cbs.source_changed(p->data, false, what);
}

/* Errors of opening a device that is still (re)appearing. */
static bool transient(int r)
{
	return r == -ENOENT || r == -ENODEV || r == -ENXIO || r == -EBUSY || r == -EIO ||
	       r == -EACCES || r == -EPERM;
}

/* persistent: tries to open the device again. Returns 0 (back, or not
 * yet: tried again later) or a negative errno when it came back unusable. */
static int source_reopen(struct zcv_producer *p)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = TAG_SOURCE };
	struct zcv_source *old = p->src;
	const struct zcv_pool *like = zcv_source_get_pool(old);
	char why[320], what[400];
	unsigned slot;
	int r;

	for (slot = 0; slot < ZCV_ARRAY_SIZE(p->retired) && p->retired[slot]; slot++)
		;
	if (slot == ZCV_ARRAY_SIZE(p->retired)) {
		/* consumers still hold buffers of every earlier device: wait */
		p->next_reopen = zcv_now_ns() + REOPEN_LATER_NS;
		arm_timer(p, p->next_reopen);
		return 0;
	}
	p->src = NULL;
	r = open_source(p, like, why, sizeof(why));
	if (r < 0) {
		p->src = old;
		if (!transient(r)) {
			snprintf(p->error, sizeof(p->error),
				 "the capture device %s came back but cannot capture as before: %s",
				 source_name(p), why);
			return r;
		}
		p->reopen_every = REOPEN_LATER_NS;
		p->next_reopen = zcv_now_ns() + p->reopen_every;
		arm_timer(p, p->next_reopen);
		return 0;
	}
	if (p->have_fit &&
	    zcv_pool_check(zcv_source_get_pool(p->src), &p->fit, why, sizeof(why)) != ZCV_FIT_OK)
		zcv_source_fit(p->src, &p->fit, p->fit_buffers, why,
			       sizeof(why)); /* else: copy tier, said */
	p->retired_dropped += zcv_source_dropped(old);
	p->retired_starved += zcv_source_starved(old);
	p->retired[slot] = old;
	/* consumers hear it is back, then get its pool */
	zcv_server_set_source(p->srv, true, "the capture device is back");
	r = zcv_server_set_pool(p->srv, zcv_source_get_pool(p->src));
	if (r == 0)
		r = zcv_source_start(p->src);
	if (r == 0 && epoll_ctl(p->epfd, EPOLL_CTL_ADD, zcv_source_get_fd(p->src), &ev) < 0)
		r = -errno;
	if (r < 0) {
		snprintf(p->error, sizeof(p->error), "restarting the capture on %s failed: %s",
			 source_name(p), strerror(-r));
		return r;
	}
	p->source_gone = false;
	devdir_unwatch(p);
	p->returned++;
	snprintf(what, sizeof(what),
		 "the capture device %s is back: %ux%u, pool generation %u, from frame %llu",
		 source_name(p), zcv_source_get_pool(p->src)->layout.width,
		 zcv_source_get_pool(p->src)->layout.height,
		 zcv_source_get_pool(p->src)->generation, (unsigned long long)p->last_sequence + 1);
	if (p->cbs.source_changed)
		p->cbs.source_changed(p->data, true, what);
	return 0;
}

int zcv_producer_dispatch(struct zcv_producer *p)
{
	struct epoll_event ev[4];
	bool server = false, source = false, devdir = false;
	uint64_t ticks;
	int n, r;

	if (p->result)
		return p->result;
	if (!p->srv)
		return -EINVAL;
	n = epoll_wait(p->epfd, ev, ZCV_ARRAY_SIZE(ev), 0);
	for (int i = 0; i < n; i++) {
		if (ev[i].data.u32 == TAG_SERVER)
			server = true;
		else if (ev[i].data.u32 == TAG_SOURCE)
			source = true;
		else if (ev[i].data.u32 == TAG_DEVDIR)
			devdir = true;
		else if (read(p->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
			zcv_debug("producer: timerfd read: %s", strerror(errno));
	}
	if (server) {
		r = zcv_server_dispatch(p->srv);
		if (r < 0)
			return fail(p, r, NULL, "server failed: %s", strerror(-r));
	}
	if (p->fatal)
		return fail(p, p->fatal, p->fatal_bye, NULL);
	if (p->start_error)
		return fail(p, p->start_error, "the source could not start",
			    "cannot start the source %s: %s", source_name(p),
			    strerror(-p->start_error));
	retired_collect(p);
	if (devdir) {
		char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

		while (read(p->devdir_fd, buf, sizeof(buf)) > 0)
			;
		if (p->source_gone) {
			p->next_reopen = ZCV_MIN(p->next_reopen, zcv_now_ns());
			p->devdir_wakes++;
		}
	}
	if (p->source_gone && !p->draining && zcv_now_ns() >= p->next_reopen) {
		r = source_reopen(p);
		if (r < 0)
			return fail(p, r, "capture device unusable", NULL);
	} else if (p->source_gone && !p->draining) {
		arm_timer(p, p->next_reopen);
	}
	if (source && !p->draining && !p->source_gone) {
		r = zcv_source_dispatch(p->src);
		if (r == -ENODEV && p->cfg.persistent) {
			source_lost(p);
			return 0;
		}
		if (r == -ENODEV)
			return fail(
				p, r, "capture device disconnected",
				"the capture device %s is gone (disconnected); ending the stream",
				source_name(p));
		if (r < 0)
			return fail(p, r, "capture failed", "capture failed: %s", strerror(-r));
		if (p->fatal)
			return fail(p, p->fatal, p->fatal_bye, NULL);
		if (r == 1) /* the last frame is out: wait for its release */
			drain_begin(p, 0, "end of stream");
	}
	if (p->draining) {
		if (drained(p) || zcv_now_ns() >= p->drain_deadline)
			return p->result = 1;
		arm_timer(p, p->drain_deadline);
	}
	return 0;
}

const char *zcv_producer_error(struct zcv_producer *p)
{
	return p->result < 0 ? p->error : "";
}

const char *zcv_producer_socket_path(struct zcv_producer *p)
{
	return p->srv ? zcv_server_socket_path(p->srv) : NULL;
}

void zcv_producer_get_layout(struct zcv_producer *p, struct zcv_layout *ret_layout)
{
	const struct zcv_pool *pool = zcv_source_get_pool(p->src);

	if (pool)
		*ret_layout = pool->layout;
	else
		memset(ret_layout, 0, sizeof(*ret_layout));
}

const char *zcv_producer_path(struct zcv_producer *p)
{
	return zcv_source_path(p->src);
}

const char *zcv_producer_fallback_reason(struct zcv_producer *p)
{
	return p->cfg.source == ZCV_PRODUCER_V4L2 ? zcv_v4l2_source_fallback_reason(p->src) : NULL;
}

uint64_t zcv_producer_frames(struct zcv_producer *p)
{
	return p->stats.frames;
}

unsigned zcv_producer_source_lost(struct zcv_producer *p)
{
	return p->lost;
}

unsigned zcv_producer_source_returned(struct zcv_producer *p)
{
	return p->returned;
}

uint64_t zcv_producer_dropped(struct zcv_producer *p)
{
	return zcv_source_dropped(p->src) + p->retired_dropped;
}

unsigned zcv_producer_streaming(struct zcv_producer *p)
{
	return p->srv ? zcv_server_streaming_count(p->srv) : 0;
}

/* The first version of struct zcv_producer_consumer ends with end_reason. */
#define CONSUMER_V1_SIZE                                                                           \
	(offsetof(struct zcv_producer_consumer, end_reason) +                                      \
	 sizeof(((struct zcv_producer_consumer *)0)->end_reason))

unsigned zcv_producer_get_consumers(struct zcv_producer *p, struct zcv_producer_consumer *out,
				    unsigned max, size_t elem_size)
{
	struct zcv_consumer_info *ci;
	unsigned n;

	if (!p->srv || !out || !max || elem_size < CONSUMER_V1_SIZE)
		return 0;
	ci = calloc(max, sizeof(*ci));
	if (!ci)
		return 0;
	n = zcv_server_get_consumers(p->srv, ci, max);
	for (unsigned i = 0; i < n; i++) {
		struct zcv_producer_consumer v;
		uint8_t *dst = (uint8_t *)out + i * elem_size;

		consumer_view(&ci[i], &v);
		memcpy(dst, &v, ZCV_MIN(elem_size, sizeof(v)));
		if (elem_size > sizeof(v)) /* a newer caller: what we do not know is zero */
			memset(dst + sizeof(v), 0, elem_size - sizeof(v));
	}
	free(ci);
	return n;
}

void zcv_producer_log_frames(struct zcv_producer *p, FILE *checksums, uint64_t every, FILE *dump)
{
	p->checksums = checksums;
	p->checksum_every = every ? every : 1;
	p->dump = dump;
}

/* Consumer table for the stats JSON: every one the server remembers (those
 * connected and the most recent that left). */
static void consumers_json(struct zcv_producer *p, struct zcv_json *j)
{
	struct zcv_producer_consumer *c = NULL;
	unsigned n = 0, total = 0, granted = 0;

	/* at most max are written: ask again with more room until they fit */
	for (unsigned max = 32;; max *= 2) {
		struct zcv_producer_consumer *more = realloc(c, max * sizeof(*c));

		if (!more) {
			n = 0;
			break;
		}
		c = more;
		n = zcv_producer_get_consumers(p, c, max, sizeof(*c));
		if (n < max)
			break;
	}
	zcv_json_key(j, "consumers");
	zcv_json_begin_array(j);
	for (unsigned i = 0; i < n; i++) {
		zcv_json_begin_object(j);
		zcv_json_kv_uint(j, "id", c[i].id);
		zcv_json_kv_string(j, "name", c[i].name);
		zcv_json_kv_int(j, "pid", c[i].pid);
		/* "?": refused before it was given a path */
		zcv_json_kv_string(j, "path", c[i].path ? zcv_path_name(c[i].path) : "?");
		zcv_json_kv_string(j, "path_reason", c[i].path_reason);
		/* the hold it asked for and what the budget granted */
		zcv_json_kv_uint(j, "asked_hold", c[i].constraints.hold);
		zcv_json_kv_uint(j, "max_hold", c[i].max_hold);
		zcv_json_kv_uint(j, "held", c[i].held);
		zcv_json_kv_uint(j, "frames_sent", c[i].frames_sent);
		zcv_json_kv_uint(j, "skipped", c[i].skipped);
		zcv_json_kv_uint(j, "copied_bytes", c[i].copied_bytes);
		zcv_json_kv_int(j, "end_error", c[i].end_error);
		zcv_json_kv_string(j, "end_reason", c[i].end_reason);
		zcv_json_end_object(j);
	}
	zcv_json_end_array(j);
	free(c);
	zcv_server_get_budget(p->srv, &total, &granted);
	zcv_json_key(j, "budget");
	zcv_json_begin_object(j);
	zcv_json_kv_uint(j, "total", total);
	zcv_json_kv_uint(j, "granted", granted);
	zcv_json_end_object(j);
}

void zcv_producer_stats(struct zcv_producer *p, struct zcv_stats *ret_stats, struct zcv_json *j)
{
	struct zcv_pool *pool = zcv_source_get_pool(p->src);
	struct zcv_latency none = ret_stats->latency;

	ret_stats->frames = p->stats.frames;
	ret_stats->start_ns = p->stats.start_ns;
	ret_stats->end_ns = p->stats.end_ns;
	ret_stats->latency = p->stats.latency;
	p->stats.latency = none;
	if (p->srv) {
		/* every frame byte this process copied: source copy tier +
		 * per-consumer copies */
		ret_stats->copied_bytes = zcv_copied_bytes_get();
		consumers_json(p, j);
	}
	if (!pool)
		return;
	/* identity of the memory objects lent out: consumers can show they
	 * hold these very objects (same inode), not copies */
	zcv_json_key(j, "buffer_inodes");
	zcv_json_begin_array(j);
	for (unsigned i = 0; i < pool->n_buffers; i++)
		for (unsigned f = 0; f < pool->buffers[i].n_fds; f++) {
			struct stat st = { 0 };

			fstat(pool->buffers[i].fds[f], &st);
			zcv_json_uint(j, st.st_ino);
		}
	zcv_json_end_array(j);
	ret_stats->path = zcv_source_path(p->src);
	/* the contract's dropped, for a producer: frames lost at the source */
	ret_stats->dropped = zcv_source_dropped(p->src) + p->retired_dropped;
	zcv_json_kv_uint(j, "source_dropped", ret_stats->dropped);
	/* times the driver was left without a buffer to capture into */
	zcv_json_kv_uint(j, "source_starved", zcv_source_starved(p->src) + p->retired_starved);
	zcv_json_kv_uint(j, "source_lost", p->lost);
	zcv_json_kv_uint(j, "source_returned", p->returned);
	zcv_json_kv_uint(j, "source_dir_events", p->devdir_wakes);
	zcv_json_kv_string(j, "allocation", p->alloc);
}
