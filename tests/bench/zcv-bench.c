/* SPDX-License-Identifier: MIT */
/*
 * zcv-bench: what a frame costs through zcv, against the alternatives.
 *
 * The bench process is the producer: a memfd pool whose buffers are
 * rendered once (so rendering is not measured), a zcv_server on a private
 * socket, and N consumer processes (this binary again, --consumer) using
 * the public client API. Each run has two measured phases:
 *
 *   1. unpaced: a frame is published as soon as a buffer is free (and, on
 *      the copy tier, as soon as every consumer has room): frames/s and
 *      CPU time per frame of every process (CLOCK_PROCESS_CPUTIME_ID);
 *   2. lockstep: one frame in flight, the next published once every
 *      consumer released the previous one: hand-off latency (timestamp set
 *      just before zcv_server_publish -> received_ns in the consumer) with
 *      no queueing in it, and CPU per frame when every frame wakes everyone.
 *
 * Consumers find the phases from the sequence numbers (phase 2 starts at
 * PHASE2_SEQ) and report their CPU time and latency samples in a file.
 *
 * GStreamer's shmsink -> shmsrc is measured as an external peer: real
 * gst-launch-1.0 processes, CPU from their rusage (wait4), the cost of
 * rendering (videotestsrc ! fakesink) subtracted, startup removed by
 * running every pipeline at two frame counts and taking the difference.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zcv/client.h>
#include <zcv/pattern.h>
#include <zcv/pool.h>
#include <zcv/server.h>
#include <zcv/stats.h>

#define TOOL "zcv-bench"
#define PHASE2_SEQ 1000000000ull
#define MAX_CONSUMERS 16
#define NSEC 1000000000ull

enum mode { MODE_ZEROCOPY = 0, MODE_COPY, MODE_MAPFRAME, MODE_COUNT };
static const char *const mode_names[] = { "zero-copy", "copy", "map-per-frame" };
enum touch { TOUCH_NONE = 0, TOUCH_READ };
static const char *const touch_names[] = { "none", "read" };

/* ---------------------------------------------------------------- utils */

static uint64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ns(void)
{
	return zcv_now_ns();
}

static int pin_to(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) < 0 ? -errno : 0;
}

/* Reads every byte (as 64-bit words): what a sink that looks at the
 * pixels pays. Four accumulators so the loop is not one long chain. */
static uint64_t sum_bytes(const uint8_t *p, size_t n)
{
	uint64_t a = 0, b = 0, c = 0, d = 0, w;
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		memcpy(&w, p + i, 8), a += w;
		memcpy(&w, p + i + 8, 8), b += w;
		memcpy(&w, p + i + 16, 8), c += w;
		memcpy(&w, p + i + 24, 8), d += w;
	}
	for (; i < n; i++)
		a += p[i];
	return a + b + c + d;
}

/* ------------------------------------------------------------- consumer */

struct cons_report {
	uint64_t magic;
	uint64_t frames_total;
	uint64_t n1, cpu1_ns; /* unpaced phase */
	uint64_t n2, cpu2_ns; /* lockstep/paced phase */
	uint64_t dropped;
	uint64_t checksum;
	int32_t path;
	int32_t error;
	uint64_t n_lat;
	/* followed by n_lat uint64_t latency samples (ns) of phase 2 */
};
#define REPORT_MAGIC 0x7a637662656e6368ull

struct cons {
	struct zcv_client *cl;
	enum mode mode;
	enum touch touch;
	uint64_t warmup;
	bool p1, p2, done;
	uint64_t c1, c2, c3;
	uint64_t last_seq, phase_gap;
	struct cons_report rep;
	uint64_t *lat;
	size_t n_lat, cap_lat;
	int error;
};

static void cons_format(void *data, const struct zcv_client_format *fmt)
{
	struct cons *c = data;

	c->rep.path = fmt->path;
}

static void map_frame_and_touch(struct cons *c, const struct zcv_client_frame *f)
{
	const struct zcv_client_format *fmt = zcv_client_get_format(c->cl);
	const struct zcv_layout *l = &fmt->layout;
	/* one mapping per distinct fd: NV12 in a memfd pool is one fd */
	for (unsigned p = 0; p < f->n_planes; p++) {
		bool seen = false;
		uint64_t extent = 0;
		void *m;

		for (unsigned q = 0; q < p; q++)
			seen |= f->fd[q] == f->fd[p];
		if (seen)
			continue;
		for (unsigned q = p; q < f->n_planes; q++)
			if (f->fd[q] == f->fd[p])
				extent =
					ZCV_MAX(extent, (uint64_t)f->offset[q] + l->planes[q].size);
		m = mmap(NULL, extent, PROT_READ, MAP_SHARED, f->fd[p], 0);
		if (m == MAP_FAILED) {
			c->error = -errno;
			return;
		}
		if (c->touch == TOUCH_READ)
			for (unsigned q = p; q < f->n_planes; q++)
				if (f->fd[q] == f->fd[p])
					c->rep.checksum += sum_bytes(
						(const uint8_t *)m + f->offset[q], f->bytesused[q]);
		munmap(m, extent);
	}
}

static void cons_frame(void *data, const struct zcv_client_frame *f)
{
	struct cons *c = data;
	int r;

	if (!c->p1 && f->sequence >= c->warmup && f->sequence < PHASE2_SEQ) {
		c->p1 = true;
		c->c1 = cpu_ns();
	}
	if (!c->p2 && f->sequence >= PHASE2_SEQ) {
		c->p2 = true;
		c->c2 = cpu_ns();
		/* the jump to PHASE2_SEQ is ours, not a drop */
		c->phase_gap = f->sequence - c->last_seq - 1;
	}
	c->last_seq = f->sequence;
	c->rep.frames_total++;
	if (f->sequence >= PHASE2_SEQ) {
		c->rep.n2++;
		if (c->n_lat == c->cap_lat) {
			size_t cap = c->cap_lat ? 2 * c->cap_lat : 4096;
			uint64_t *n = realloc(c->lat, cap * sizeof(*n));

			if (n) {
				c->lat = n;
				c->cap_lat = cap;
			}
		}
		if (c->n_lat < c->cap_lat)
			c->lat[c->n_lat++] = f->received_ns - f->timestamp_ns;
	} else if (c->p1) {
		c->rep.n1++;
	}

	if (c->mode == MODE_MAPFRAME)
		map_frame_and_touch(c, f);
	else if (c->touch == TOUCH_READ)
		for (unsigned p = 0; p < f->n_planes; p++)
			c->rep.checksum += sum_bytes(f->planes[p], f->bytesused[p]);

	r = zcv_client_release(c->cl, f);
	if (r < 0 && !c->error)
		c->error = r;
	if (f->flags & ZCV_FRAME_FLAG_LAST) {
		c->c3 = cpu_ns();
		c->done = true;
	}
}

static void cons_closed(void *data, int error, const char *reason)
{
	struct cons *c = data;

	if (!c->done && error < 0 && !c->error)
		c->error = error;
	c->done = true;
}

static int consumer_main(int argc, char **argv)
{
	/* --consumer SOCKET REPORT MODE TOUCH CPU WARMUP MAXHOLD */
	struct cons c = { 0 };
	struct zcv_client_config cfg = { .size = sizeof(struct zcv_client_config),
					 .name = "zcv-bench" };
	uint64_t deadline;
	FILE *f;
	int r;

	if (argc != 9)
		return 2;
	c.mode = (enum mode)atoi(argv[4]);
	c.touch = (enum touch)atoi(argv[5]);
	if (pin_to(atoi(argv[6])) < 0)
		fprintf(stderr, TOOL ": consumer cannot pin to CPU %s\n", argv[6]);
	c.warmup = strtoull(argv[7], NULL, 10);
	cfg.socket_path = argv[2];
	cfg.constraints.hold = (unsigned)atoi(argv[8]);
	cfg.caps = c.mode == MODE_COPY ? ZCV_CAP_NEEDS_COPY : 0;
	cfg.no_map = c.mode == MODE_MAPFRAME;
	r = zcv_client_connect(
		&cfg,
		&(struct zcv_client_callbacks){ .size = sizeof(struct zcv_client_callbacks),
						.format = cons_format,
						.frame = cons_frame,
						.closed = cons_closed },
		&c, &c.cl);
	if (r < 0) {
		fprintf(stderr, TOOL ": consumer cannot connect to %s: %s\n", argv[2],
			strerror(-r));
		return 1;
	}
	deadline = mono_ns() + 600 * NSEC;
	while (!c.done && !c.error && mono_ns() < deadline) {
		struct pollfd pfd = { .fd = zcv_client_get_fd(c.cl), .events = POLLIN };

		if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
			break;
		r = zcv_client_dispatch(c.cl);
		if (r < 0 && !c.done)
			c.error = r;
		if (r != 0)
			break;
	}
	c.rep.magic = REPORT_MAGIC;
	c.rep.cpu1_ns = c.p1 && c.p2 ? c.c2 - c.c1 : 0;
	c.rep.cpu2_ns = c.p2 && c.c3 ? c.c3 - c.c2 : 0;
	c.rep.dropped = zcv_client_dropped(c.cl) - c.phase_gap;
	c.rep.error = c.error;
	c.rep.n_lat = c.n_lat;
	f = fopen(argv[3], "we");
	if (!f)
		return 1;
	fwrite(&c.rep, sizeof(c.rep), 1, f);
	fwrite(c.lat, sizeof(uint64_t), c.n_lat, f);
	r = fclose(f);
	zcv_client_destroy(c.cl);
	free(c.lat);
	return r == 0 && !c.error ? 0 : 1;
}

/* ------------------------------------------------------------- producer */

struct run_cfg {
	uint32_t w, h;
	unsigned n_cons;
	enum mode mode;
	enum touch touch;
	int prod_cpu, cons_cpu; /* -1: not pinned */
	const char *placement;
	double t1, t2; /* seconds of each phase (lower bound with min frames) */
	unsigned min1, max1, min2, max2;
	unsigned paced_fps; /* phase 2 paced at this rate instead of lockstep */
	const char *group;  /* which part of the report */
};

struct run_res {
	bool ok;
	char error[128];
	uint64_t frame_bytes;
	uint64_t f1, f2;
	double fps;
	double prod_cpu_us, cons_cpu_us;   /* unpaced, per frame (consumer: mean) */
	double prod2_cpu_us, cons2_cpu_us; /* phase 2, per frame */
	double phase2_wall_s, prod2_core_pct;
	double p50_us, p99_us, max_us;
	uint64_t dropped, skipped, copied_bytes;
	const char *path;
};

struct producer {
	struct zcv_server *srv;
	struct zcv_pool *pool;
	unsigned n_cons;
};

static int wait_children(pid_t *pids, unsigned n, int timeout_ms)
{
	uint64_t deadline = mono_ns() + (uint64_t)timeout_ms * 1000000ull;
	int bad = 0;

	for (unsigned i = 0; i < n; i++) {
		int st;

		while (pids[i] > 0) {
			pid_t r = waitpid(pids[i], &st, WNOHANG);

			if (r == pids[i]) {
				if (!WIFEXITED(st) || WEXITSTATUS(st))
					bad++;
				pids[i] = 0;
			} else if (r < 0) {
				pids[i] = 0;
				bad++;
			} else if (mono_ns() > deadline) {
				kill(pids[i], SIGKILL);
				waitpid(pids[i], &st, 0);
				pids[i] = 0;
				bad++;
			} else {
				usleep(1000);
			}
		}
	}
	return bad;
}

static bool any_child_died(pid_t *pids, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		int st;

		if (pids[i] > 0 && waitpid(pids[i], &st, WNOHANG) == pids[i]) {
			pids[i] = 0;
			return true;
		}
	}
	return false;
}

static int dispatch_wait(struct producer *p, int timeout_ms)
{
	struct pollfd pfd = { .fd = zcv_server_get_fd(p->srv), .events = POLLIN };

	if (poll(&pfd, 1, timeout_ms) < 0 && errno != EINTR)
		return -errno;
	return zcv_server_dispatch(p->srv);
}

/* Largest number of frames any consumer holds now (copy tier flow control:
 * its source buffer is free at once, the consumer's private one is not). */
static unsigned max_held(struct producer *p)
{
	struct zcv_consumer_info ci[MAX_CONSUMERS + 64];
	unsigned n = zcv_server_get_consumers(p->srv, ci, ZCV_ARRAY_SIZE(ci)), m = 0;

	for (unsigned i = 0; i < n; i++)
		if (ci[i].state == ZCV_CONSUMER_STREAMING)
			m = ZCV_MAX(m, ci[i].held);
	return m;
}

static double us_per(uint64_t ns, uint64_t n)
{
	return n ? (double)ns / 1e3 / (double)n : 0;
}

static int run_one(const struct run_cfg *rc, unsigned n_buffers, struct run_res *res)
{
	struct zcv_layout layout;
	struct producer p = { .n_cons = rc->n_cons };
	struct zcv_server_config scfg = { 0 };
	char dir[] = "/tmp/zcv-bench-XXXXXX", sock[64], rep[MAX_CONSUMERS][80];
	pid_t pids[MAX_CONSUMERS] = { 0 };
	cpu_set_t saved_mask;
	struct zcv_latency lat;
	uint64_t seq = 0, warmup = 2 * n_buffers, t1 = 0, c1 = 0, t2, c2, t3, c3, f1 = 0, f2 = 0;
	uint64_t est_held = 0, deadline;
	unsigned copy_window = n_buffers;
	double cons1 = 0, cons2 = 0;
	int r, tfd = -1;
	/* The producer grants holds out of its pool minus a reserve of 2 (the
	 * buffer budget): each consumer gets a window of up to n_buffers
	 * frames, and the pool is sized so every consumer's window fits. */
	unsigned hold = ZCV_MIN(n_buffers, (ZCV_POOL_MAX_BUFFERS - 2) / rc->n_cons);
	unsigned pool_n = rc->n_cons * hold + 2;

	memset(res, 0, sizeof(*res));
	zcv_latency_init(&lat, 0);
	sched_getaffinity(0, sizeof(saved_mask), &saved_mask);
	if (!mkdtemp(dir)) {
		snprintf(res->error, sizeof(res->error), "mkdtemp: %s", strerror(errno));
		return -errno;
	}
	snprintf(sock, sizeof(sock), "%s/s", dir);
	r = zcv_format_layout(ZCV_FMT_NV12, rc->w, rc->h, 64, &layout);
	if (r == 0)
		r = zcv_pool_create_memfd(&layout, pool_n, 1, &p.pool);
	for (unsigned i = 0; r == 0 && i < pool_n; i++) {
		uint8_t *planes[ZCV_MAX_PLANES] = { 0 };

		r = zcv_pool_map(p.pool, i, PROT_READ | PROT_WRITE);
		for (unsigned q = 0; r == 0 && q < layout.n_planes; q++)
			planes[q] = zcv_buffer_plane(p.pool, &p.pool->buffers[i], q);
		if (r == 0)
			r = zcv_pattern_render(ZCV_PATTERN_BARS, &layout, i, planes);
	}
	if (r < 0) {
		snprintf(res->error, sizeof(res->error), "pool: %s", strerror(-r));
		goto out;
	}
	res->frame_bytes = layout.size;
	scfg.socket_path = sock;
	scfg.max_hold = hold;
	scfg.hold_timeout_ns = 30 * NSEC;
	scfg.max_consumers = MAX_CONSUMERS;
	r = zcv_server_create(&scfg, NULL, NULL, p.pool, &p.srv);
	if (r < 0) {
		snprintf(res->error, sizeof(res->error), "server: %s", strerror(-r));
		goto out;
	}
	for (unsigned i = 0; i < rc->n_cons; i++) {
		char mode[8], touch[8], cpu[8], warm[24], hold_s[8];

		snprintf(rep[i], sizeof(rep[i]), "%s/c%u", dir, i);
		snprintf(mode, sizeof(mode), "%d", rc->mode);
		snprintf(touch, sizeof(touch), "%d", rc->touch);
		snprintf(cpu, sizeof(cpu), "%d", rc->cons_cpu);
		snprintf(warm, sizeof(warm), "%" PRIu64, warmup);
		snprintf(hold_s, sizeof(hold_s), "%u", hold);
		pids[i] = fork();
		if (pids[i] == 0) {
			char *args[] = { "zcv-bench", "--consumer", sock, rep[i], mode,
					 touch,       cpu,          warm, hold_s, NULL };

			execv("/proc/self/exe", args);
			_exit(127);
		}
		if (pids[i] < 0) {
			r = -errno;
			snprintf(res->error, sizeof(res->error), "fork: %s", strerror(errno));
			goto out;
		}
	}
	/* the producer is pinned after the fork so consumers start unpinned */
	pin_to(rc->prod_cpu);
	deadline = mono_ns() + 10 * NSEC;
	while (zcv_server_streaming_count(p.srv) < rc->n_cons) {
		if (mono_ns() > deadline || any_child_died(pids, rc->n_cons)) {
			r = -ETIMEDOUT;
			snprintf(res->error, sizeof(res->error), "consumers did not connect");
			goto out;
		}
		dispatch_wait(&p, 100);
	}

	/* Phase 0 (warm-up) and 1: unpaced. */
	for (;;) {
		bool stop = false;
		struct zcv_buffer *b;

		while (!stop) {
			uint64_t now = mono_ns();

			if (seq == warmup) {
				t1 = now;
				c1 = cpu_ns();
			}
			if (seq > warmup &&
			    ((now - t1 >= (uint64_t)(rc->t1 * 1e9) && f1 >= rc->min1) ||
			     f1 >= rc->max1)) {
				stop = true;
				break;
			}
			/* no consumer is sent more than its granted window */
			if (est_held >= ZCV_MIN(copy_window, hold))
				break;
			b = zcv_pool_acquire(p.pool);
			if (!b)
				break;
			r = zcv_server_publish(
				p.srv, b->index,
				&(struct zcv_frame_meta){ .sequence = seq,
							  .timestamp_ns = mono_ns() });
			if (r != (int)rc->n_cons) {
				snprintf(res->error, sizeof(res->error),
					 "frame %" PRIu64 " reached %d of %u consumers", seq, r,
					 rc->n_cons);
				r = -EIO;
				goto out;
			}
			if (seq >= warmup)
				f1++;
			seq++;
			est_held++;
		}
		if (stop)
			break;
		r = dispatch_wait(&p, 5000);
		if (r < 0 || zcv_server_streaming_count(p.srv) < rc->n_cons) {
			snprintf(res->error, sizeof(res->error), "a consumer left during phase 1");
			r = -EIO;
			goto out;
		}
		est_held = max_held(&p);
	}
	/* drain: every frame of phase 1 back */
	deadline = mono_ns() + 30 * NSEC;
	while (zcv_pool_count(p.pool, ZCV_BUFFER_LENT) ||
	       (rc->mode == MODE_COPY && max_held(&p) > 0)) {
		if (mono_ns() > deadline) {
			snprintf(res->error, sizeof(res->error), "phase 1 frames not released");
			r = -ETIMEDOUT;
			goto out;
		}
		dispatch_wait(&p, 100);
	}
	t2 = mono_ns();
	c2 = cpu_ns();

	/* Phase 2: lockstep (one frame in flight) or paced. */
	if (rc->paced_fps) {
		struct itimerspec its = { 0 };
		uint64_t period = NSEC / rc->paced_fps;

		tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
		its.it_interval.tv_nsec = (long)period;
		its.it_value.tv_nsec = (long)period;
		timerfd_settime(tfd, 0, &its, NULL);
	}
	for (uint64_t i = 0;; i++) {
		struct zcv_buffer *b;
		uint64_t now = mono_ns();
		bool last = i + 1 >= rc->max2 ||
			    (now - t2 >= (uint64_t)(rc->t2 * 1e9) && i + 1 >= rc->min2);

		if (tfd >= 0) {
			/* paced: wait for the tick, handling releases meanwhile */
			for (;;) {
				struct pollfd pf[2] = { { .fd = tfd, .events = POLLIN },
							{ .fd = zcv_server_get_fd(p.srv),
							  .events = POLLIN } };
				uint64_t ticks;

				if (poll(pf, 2, 5000) <= 0)
					break;
				if (pf[1].revents)
					zcv_server_dispatch(p.srv);
				if (pf[0].revents && read(tfd, &ticks, sizeof(ticks)) > 0)
					break;
			}
		}
		b = zcv_pool_acquire(p.pool);
		if (!b) {
			snprintf(res->error, sizeof(res->error), "phase 2: no free buffer");
			r = -EIO;
			goto out;
		}
		r = zcv_server_publish(
			p.srv, b->index,
			&(struct zcv_frame_meta){ .sequence = PHASE2_SEQ + i,
						  .timestamp_ns = mono_ns(),
						  .flags = last ? ZCV_FRAME_FLAG_LAST : 0 });
		if (r != (int)rc->n_cons) {
			snprintf(res->error, sizeof(res->error), "phase 2 frame reached %d of %u",
				 r, rc->n_cons);
			r = -EIO;
			goto out;
		}
		f2++;
		if (tfd < 0 || last) {
			deadline = mono_ns() + 30 * NSEC;
			while (zcv_pool_count(p.pool, ZCV_BUFFER_LENT) ||
			       (rc->mode == MODE_COPY && max_held(&p) > 0)) {
				if (mono_ns() > deadline) {
					snprintf(res->error, sizeof(res->error),
						 "phase 2 frame not released");
					r = -ETIMEDOUT;
					goto out;
				}
				dispatch_wait(&p, 100);
			}
		}
		if (last)
			break;
	}
	t3 = mono_ns();
	c3 = cpu_ns();
	res->copied_bytes = zcv_server_copied_bytes(p.srv);
	{
		struct zcv_consumer_info ci[MAX_CONSUMERS + 64];
		unsigned n = zcv_server_get_consumers(p.srv, ci, ZCV_ARRAY_SIZE(ci));

		for (unsigned i = 0; i < n; i++) {
			res->skipped += ci[i].skipped;
			res->path = zcv_path_name(ci[i].path);
		}
	}
	zcv_server_end(p.srv, 0, "benchmark done");
	deadline = mono_ns() + 5 * NSEC;
	while (zcv_server_streaming_count(p.srv) && mono_ns() < deadline)
		dispatch_wait(&p, 50);
	if (wait_children(pids, rc->n_cons, 10000)) {
		snprintf(res->error, sizeof(res->error), "a consumer failed");
		r = -EIO;
		goto out;
	}

	for (unsigned i = 0; i < rc->n_cons; i++) {
		struct cons_report cr;
		FILE *f = fopen(rep[i], "re");
		bool good = f && fread(&cr, sizeof(cr), 1, f) == 1 && cr.magic == REPORT_MAGIC;

		for (uint64_t k = 0; good && k < cr.n_lat; k++) {
			uint64_t v;

			if (fread(&v, sizeof(v), 1, f) != 1)
				good = false;
			else
				zcv_latency_add(&lat, v);
		}
		if (f)
			fclose(f);
		if (!good || cr.error || cr.n1 != f1 || cr.n2 != f2) {
			snprintf(res->error, sizeof(res->error),
				 "consumer %u: bad report (frames %" PRIu64 "/%" PRIu64
				 " of %" PRIu64 "/%" PRIu64 ", error %d)",
				 i, good ? cr.n1 : 0, good ? cr.n2 : 0, f1, f2,
				 good ? cr.error : 0);
			r = -EIO;
			goto out;
		}
		cons1 += us_per(cr.cpu1_ns, cr.n1) / rc->n_cons;
		cons2 += us_per(cr.cpu2_ns, cr.n2) / rc->n_cons;
		res->dropped += cr.dropped;
	}
	res->ok = true;
	res->f1 = f1;
	res->f2 = f2;
	res->fps = (double)f1 / ((double)(t2 - t1) / 1e9);
	res->prod_cpu_us = us_per(c2 - c1, f1);
	res->cons_cpu_us = cons1;
	res->prod2_cpu_us = us_per(c3 - c2, f2);
	res->cons2_cpu_us = cons2;
	res->phase2_wall_s = (double)(t3 - t2) / 1e9;
	res->prod2_core_pct = 100.0 * (double)(c3 - c2) / (double)(t3 - t2);
	res->p50_us = (double)zcv_latency_percentile(&lat, 0.50) / 1e3;
	res->p99_us = (double)zcv_latency_percentile(&lat, 0.99) / 1e3;
	res->max_us = (double)lat.max_ns / 1e3;
	r = 0;
out:
	for (unsigned i = 0; i < rc->n_cons; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	wait_children(pids, rc->n_cons, 5000);
	if (tfd >= 0)
		close(tfd);
	zcv_server_destroy(p.srv);
	zcv_pool_destroy(p.pool);
	for (unsigned i = 0; i < rc->n_cons; i++)
		unlink(rep[i]);
	unlink(sock);
	rmdir(dir);
	sched_setaffinity(0, sizeof(saved_mask), &saved_mask);
	zcv_latency_finish(&lat);
	return r;
}

/* ------------------------------------------------------------ GStreamer */

struct gst_proc {
	pid_t pid;
	uint64_t start_ns, end_ns;
	struct rusage ru;
	int status;
	bool done;
};

static int gst_spawn(struct gst_proc *gp, const char *cmd)
{
	memset(gp, 0, sizeof(*gp));
	gp->start_ns = mono_ns();
	gp->pid = fork();
	if (gp->pid == 0) {
		int nul = open("/dev/null", O_WRONLY | O_CLOEXEC);

		if (nul >= 0) {
			dup2(nul, 1);
			dup2(nul, 2);
		}
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	return gp->pid < 0 ? -errno : 0;
}

static void gst_reap(struct gst_proc *gps, unsigned n, uint64_t timeout_ns)
{
	uint64_t deadline = mono_ns() + timeout_ns;
	unsigned left = n;

	while (left) {
		left = 0;
		for (unsigned i = 0; i < n; i++) {
			struct gst_proc *gp = &gps[i];
			pid_t r;

			if (gp->done || gp->pid <= 0)
				continue;
			r = wait4(gp->pid, &gp->status, WNOHANG, &gp->ru);
			if (r == gp->pid) {
				gp->done = true;
				gp->end_ns = mono_ns();
				continue;
			}
			left++;
			if (mono_ns() > deadline) {
				kill(gp->pid, SIGKILL);
				wait4(gp->pid, &gp->status, 0, &gp->ru);
				gp->status = -1;
				gp->done = true;
				gp->end_ns = mono_ns();
			}
		}
		if (left)
			usleep(500);
	}
}

static uint64_t ru_ns(const struct rusage *ru)
{
	return (uint64_t)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) * NSEC +
	       (uint64_t)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) * 1000ull;
}

enum gst_kind { GST_RENDER = 0, GST_SHM_ZEROCOPY, GST_SHM_COPY };

struct gst_sample {
	bool ok;
	uint64_t prod_cpu_ns, cons_cpu_ns, prod_wall_ns;
};

#define GST_GATE_NS 500000000ull

/*
 * One GStreamer run of n frames. The producer's sink runs sync=true with a
 * ts-offset of GST_GATE_NS: the first frame waits that long, which is when
 * the consumer connects (shmsink wait-for-connection=true hangs on 1.22
 * here); the caps' frame rate is so high that every later frame is late
 * and goes out at once, i.e. unpaced. The consumer stops after exactly n
 * buffers (num-buffers), so a lost frame shows as a failed run.
 */
static void gst_run(enum gst_kind kind, uint32_t w, uint32_t h, unsigned n, int cpu_prod,
		    int cpu_cons, struct gst_sample *s)
{
	char caps[160], cmd[1024], sock[64], pin_p[32] = "", pin_c[32] = "";
	uint64_t frame = (uint64_t)w * h * 3 / 2;
	struct gst_proc gp[2];
	struct stat st;
	/* a hung run (see gst_measure) is given up after this long */
	uint64_t deadline, timeout = 2 * NSEC + n * (frame + 100000);

	memset(s, 0, sizeof(*s));
	if (cpu_prod >= 0)
		snprintf(pin_p, sizeof(pin_p), "taskset -c %d ", cpu_prod);
	if (cpu_cons >= 0)
		snprintf(pin_c, sizeof(pin_c), "taskset -c %d ", cpu_cons);
	snprintf(caps, sizeof(caps),
		 "video/x-raw,format=NV12,width=%u,height=%u,framerate=1000000/1", w, h);
	snprintf(sock, sizeof(sock), "/tmp/zcv-bench-gst-%d.sock", (int)getpid());
	unlink(sock);
	if (kind == GST_RENDER) {
		snprintf(
			cmd, sizeof(cmd),
			"exec %sgst-launch-1.0 -q videotestsrc num-buffers=%u pattern=black ! %s ! "
			"fakesink sync=true ts-offset=%llu",
			pin_p, n, caps, GST_GATE_NS);
		gst_spawn(&gp[0], cmd);
		gst_reap(gp, 1, timeout);
		s->ok = gp[0].status == 0;
		s->prod_cpu_ns = ru_ns(&gp[0].ru);
		s->prod_wall_ns = gp[0].end_ns - gp[0].start_ns;
		return;
	}
	snprintf(cmd, sizeof(cmd),
		 "exec %sgst-launch-1.0 -q videotestsrc num-buffers=%u pattern=black ! %s %s! "
		 "shmsink socket-path=%s shm-size=%llu wait-for-connection=false sync=true "
		 "ts-offset=%llu",
		 pin_p, n, caps, kind == GST_SHM_COPY ? "! identity drop-allocation=true " : "",
		 sock, (unsigned long long)ZCV_MAX(frame * 8, 64ull << 20), GST_GATE_NS);
	gst_spawn(&gp[0], cmd);
	deadline = mono_ns() + 10 * NSEC;
	while (stat(sock, &st) < 0 && mono_ns() < deadline)
		usleep(500);
	snprintf(
		cmd, sizeof(cmd),
		"exec %sgst-launch-1.0 -q shmsrc socket-path=%s is-live=true num-buffers=%u ! %s ! "
		"fakesink sync=false",
		pin_c, sock, n, caps);
	gst_spawn(&gp[1], cmd);
	gst_reap(gp, 2, timeout);
	/* shmsink 1.22 reports "Failed waiting on fd activity" (EBUSY) when
	 * the consumer leaves and exits 1: the consumer's exit status (it got
	 * all n buffers) is what says the run was good. */
	s->ok = gp[1].status == 0 && gp[0].status != -1;
	s->prod_cpu_ns = ru_ns(&gp[0].ru);
	s->cons_cpu_ns = ru_ns(&gp[1].ru);
	s->prod_wall_ns = gp[0].end_ns - gp[0].start_ns;
	unlink(sock);
}

struct gst_res {
	bool ok;
	unsigned frames;
	double render_us; /* videotestsrc ! fakesink, per frame */
	double prod_us[2],
		cons_us[2]; /* [0] zero-copy (a), [1] copying (b); producer over rendering */
	double fps[2];
};

/* Two frame counts, difference per frame: startup and teardown cancel. */
static void gst_measure(uint32_t w, uint32_t h, unsigned n, int cpu_prod, int cpu_cons,
			struct gst_res *g)
{
	unsigned n0 = ZCV_MAX(n / 10, 10u);
	struct gst_sample a, b;
	double d = (double)(n - n0);

	memset(g, 0, sizeof(*g));
	g->frames = n;
	g->ok = true;
	gst_run(GST_RENDER, w, h, n, cpu_prod, cpu_cons, &a);
	gst_run(GST_RENDER, w, h, n0, cpu_prod, cpu_cons, &b);
	g->ok &= a.ok && b.ok;
	g->render_us = ((double)a.prod_cpu_ns - (double)b.prod_cpu_ns) / 1e3 / d;
	for (int k = 0; k < 2; k++) {
		enum gst_kind kind = k == 0 ? GST_SHM_ZEROCOPY : GST_SHM_COPY;

		/* shmsink 1.22 here sometimes stalls with small frames (the
		 * consumer never gets all n buffers): such a run is retried */
		for (int t = 0; t < 4 && (t == 0 || !a.ok); t++)
			gst_run(kind, w, h, n, cpu_prod, cpu_cons, &a);
		for (int t = 0; t < 4 && (t == 0 || !b.ok); t++)
			gst_run(kind, w, h, n0, cpu_prod, cpu_cons, &b);
		g->ok &= a.ok && b.ok;
		g->prod_us[k] =
			((double)a.prod_cpu_ns - (double)b.prod_cpu_ns) / 1e3 / d - g->render_us;
		g->cons_us[k] = ((double)a.cons_cpu_ns - (double)b.cons_cpu_ns) / 1e3 / d;
		g->fps[k] = d / (((double)a.prod_wall_ns - (double)b.prod_wall_ns) / 1e9);
	}
}

/* --------------------------------------------------------------- report */

struct entry {
	struct run_cfg cfg;
	struct run_res res;
	const struct entry *copy; /* the copy-tier run of the same size/consumers/touch */
};

static struct entry *entries;
static size_t n_entries, cap_entries;

static struct entry *add_entry(const struct run_cfg *rc)
{
	if (n_entries == cap_entries) {
		size_t cap = cap_entries ? 2 * cap_entries : 64;
		struct entry *e = realloc(entries, cap * sizeof(*e));

		if (!e) {
			fprintf(stderr, TOOL ": out of memory\n");
			exit(1);
		}
		entries = e;
		cap_entries = cap;
	}
	memset(&entries[n_entries], 0, sizeof(entries[0]));
	entries[n_entries].cfg = *rc;
	return &entries[n_entries++];
}

static void link_copy_runs(void)
{
	for (size_t i = 0; i < n_entries; i++) {
		struct entry *e = &entries[i];

		e->copy = NULL;
		for (size_t k = 0; k < n_entries; k++) {
			const struct entry *c = &entries[k];

			if (c->cfg.mode == MODE_COPY && c->res.ok && c->cfg.w == e->cfg.w &&
			    c->cfg.h == e->cfg.h && c->cfg.n_cons == e->cfg.n_cons &&
			    c->cfg.touch == e->cfg.touch && !strcmp(c->cfg.group, e->cfg.group) &&
			    !strcmp(c->cfg.placement, e->cfg.placement) &&
			    c->cfg.paced_fps == e->cfg.paced_fps)
				e->copy = c;
		}
	}
}

static double ratio(double a, double b)
{
	return b > 0 ? a / b : 0;
}

static const struct entry *find(const char *group, uint32_t w, uint32_t h, unsigned n, enum mode m,
				enum touch t, const char *placement)
{
	for (size_t i = 0; i < n_entries; i++) {
		const struct entry *e = &entries[i];

		if (e->res.ok && !strcmp(e->cfg.group, group) && e->cfg.w == w && e->cfg.h == h &&
		    e->cfg.n_cons == n && e->cfg.mode == m && e->cfg.touch == t &&
		    (!placement || !strcmp(e->cfg.placement, placement)))
			return e;
	}
	return NULL;
}

static void print_header(const char *title)
{
	printf("\n%s\n", title);
	printf("%-10s %3s %-5s %-13s %-6s %10s %9s %9s %8s %8s %8s | %7s %7s %7s\n", "size", "n",
	       "touch", "mode", "place", "frames/s", "prod us", "cons us", "p50 us", "p99 us",
	       "max us", "cpu/cp", "fps/cp", "p50/cp");
}

static void print_entry(const struct entry *e)
{
	char size[24];
	const struct run_res *r = &e->res;
	const struct run_res *c = e->copy ? &e->copy->res : NULL;

	snprintf(size, sizeof(size), "%ux%u", e->cfg.w, e->cfg.h);
	if (!r->ok) {
		printf("%-10s %3u %-5s %-13s %-6s FAILED: %s\n", size, e->cfg.n_cons,
		       touch_names[e->cfg.touch], mode_names[e->cfg.mode], e->cfg.placement,
		       r->error);
		return;
	}
	printf("%-10s %3u %-5s %-13s %-6s %10.0f %9.2f %9.2f %8.1f %8.1f %8.1f | %7.3f %7.2f "
	       "%7.2f\n",
	       size, e->cfg.n_cons, touch_names[e->cfg.touch], mode_names[e->cfg.mode],
	       e->cfg.placement, r->fps, r->prod_cpu_us, r->cons_cpu_us, r->p50_us, r->p99_us,
	       r->max_us,
	       c ? ratio(r->prod_cpu_us + r->cons_cpu_us, c->prod_cpu_us + c->cons_cpu_us) : 0,
	       c ? ratio(r->fps, c->fps) : 0, c ? ratio(r->p50_us, c->p50_us) : 0);
	fflush(stdout);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

/* JSON has no NaN/inf */
static double jnum(double v)
{
	return isfinite(v) ? v : 0;
}

struct target {
	const char *name;
	double value, limit;
	bool higher_is_better;
	bool have;
	char note[160];
};

static void json_entry(FILE *f, const struct entry *e)
{
	const struct run_res *r = &e->res;
	const struct run_res *c = e->copy ? &e->copy->res : NULL;

	fprintf(f, "{\"group\": ");
	json_str(f, e->cfg.group);
	fprintf(f,
		", \"width\": %u, \"height\": %u, \"format\": \"NV12\", \"frame_bytes\": %" PRIu64
		", \"consumers\": %u, \"mode\": \"%s\", \"touch\": \"%s\", \"placement\": \"%s\", "
		"\"producer_cpu\": %d, \"consumer_cpu\": %d, \"ok\": %s",
		e->cfg.w, e->cfg.h, r->frame_bytes, e->cfg.n_cons, mode_names[e->cfg.mode],
		touch_names[e->cfg.touch], e->cfg.placement, e->cfg.prod_cpu, e->cfg.cons_cpu,
		r->ok ? "true" : "false");
	if (!r->ok) {
		fprintf(f, ", \"error\": ");
		json_str(f, r->error);
		fprintf(f, "}");
		return;
	}
	fprintf(f,
		", \"path\": \"%s\", \"unpaced\": {\"frames\": %" PRIu64 ", \"fps\": %.1f, "
		"\"producer_cpu_us_per_frame\": %.3f, \"consumer_cpu_us_per_frame\": %.3f}, "
		"\"%s\": {\"frames\": %" PRIu64 ", \"fps\": %u, \"latency_us\": {\"p50\": %.2f, "
		"\"p99\": %.2f, \"max\": %.2f}, \"producer_cpu_us_per_frame\": %.3f, "
		"\"consumer_cpu_us_per_frame\": %.3f, \"producer_core_percent\": %.4f}, "
		"\"dropped\": %" PRIu64 ", \"skipped\": %" PRIu64 ", \"copied_bytes\": %" PRIu64,
		r->path ? r->path : "?", r->f1, jnum(r->fps), jnum(r->prod_cpu_us),
		jnum(r->cons_cpu_us), e->cfg.paced_fps ? "paced" : "lockstep", r->f2,
		e->cfg.paced_fps, jnum(r->p50_us), jnum(r->p99_us), jnum(r->max_us),
		jnum(r->prod2_cpu_us), jnum(r->cons2_cpu_us), jnum(r->prod2_core_pct), r->dropped,
		r->skipped, r->copied_bytes);
	if (c)
		fprintf(f,
			", \"vs_copy\": {\"fps\": %.4f, \"producer_cpu\": %.5f, \"consumer_cpu\": "
			"%.5f, "
			"\"transport_cpu\": %.5f, \"p50\": %.4f, \"p99\": %.4f, \"max\": %.4f}",
			jnum(ratio(r->fps, c->fps)), jnum(ratio(r->prod_cpu_us, c->prod_cpu_us)),
			jnum(ratio(r->cons_cpu_us, c->cons_cpu_us)),
			jnum(ratio(r->prod_cpu_us + r->cons_cpu_us,
				   c->prod_cpu_us + c->cons_cpu_us)),
			jnum(ratio(r->p50_us, c->p50_us)), jnum(ratio(r->p99_us, c->p99_us)),
			jnum(ratio(r->max_us, c->max_us)));
	fprintf(f, "}");
}

/* ----------------------------------------------------------------- main */

struct size {
	uint32_t w, h;
};

static int parse_sizes(const char *s, struct size *out, unsigned max, unsigned *ret_n)
{
	unsigned n = 0;

	while (*s && n < max) {
		char *end;

		out[n].w = (uint32_t)strtoul(s, &end, 10);
		if (*end != 'x')
			return -EINVAL;
		out[n].h = (uint32_t)strtoul(end + 1, &end, 10);
		if (!out[n].w || !out[n].h || (out[n].w | out[n].h) & 1)
			return -EINVAL;
		n++;
		if (*end == ',')
			end++;
		else if (*end)
			return -EINVAL;
		s = end;
	}
	*ret_n = n;
	return n ? 0 : -EINVAL;
}

static int parse_list(const char *s, unsigned *out, unsigned max, unsigned *ret_n)
{
	unsigned n = 0;

	while (*s && n < max) {
		char *end;
		unsigned long v = strtoul(s, &end, 10);

		if (end == s || !v || v > MAX_CONSUMERS)
			return -EINVAL;
		out[n++] = (unsigned)v;
		if (*end == ',')
			end++;
		else if (*end)
			return -EINVAL;
		s = end;
	}
	*ret_n = n;
	return n ? 0 : -EINVAL;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: " TOOL " [options]\n"
		   "Measure what a frame costs through zcv (zero-copy), its copy tier, mapping\n"
		   "per frame, and GStreamer shmsink/shmsrc, side by side.\n\n"
		   "  --quick              a few seconds: one small size, 1-2 consumers (ctest)\n"
		   "  --json FILE          write every figure as JSON\n"
		   "  --sizes LIST         WxH,WxH,... (default "
		   "640x480,1280x720,1920x1080,3840x2160)\n"
		   "  --consumers LIST     consumer counts (default 1,2,4,8)\n"
		   "  --seconds S          length of the unpaced phase of each run (default 1.0)\n"
		   "  --buffers N          pool size (default 4)\n"
		   "  --no-gst             skip the GStreamer shm runs\n"
		   "  --no-crossover       skip the copy vs map-per-frame sweep over small sizes\n"
		   "  --no-placement       skip the same-CPU / cross-CPU latency runs\n"
		   "  --help\n");
}

static void machine_json(FILE *f)
{
	struct utsname u;
	char model[256] = "unknown", line[512];
	FILE *ci = fopen("/proc/cpuinfo", "re");

	while (ci && fgets(line, sizeof(line), ci)) {
		if (!strncmp(line, "model name", 10)) {
			char *v = strchr(line, ':');

			if (v) {
				v += 2;
				v[strcspn(v, "\n")] = 0;
				snprintf(model, sizeof(model), "%s", v);
			}
			break;
		}
	}
	if (ci)
		fclose(ci);
	uname(&u);
	fprintf(f, "\"machine\": {\"cpus\": %ld, \"cpu_model\": ", sysconf(_SC_NPROCESSORS_ONLN));
	json_str(f, model);
	fprintf(f, ", \"kernel\": ");
	json_str(f, u.release);
	fprintf(f, ", \"memory_mb\": %ld}",
		sysconf(_SC_PHYS_PAGES) / 1024 * sysconf(_SC_PAGESIZE) / 1024);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "json", required_argument, NULL, 'j' },
		{ "sizes", required_argument, NULL, 's' },
		{ "consumers", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 't' },
		{ "buffers", required_argument, NULL, 'b' },
		{ "no-gst", no_argument, NULL, 'G' },
		{ "no-crossover", no_argument, NULL, 'X' },
		{ "no-placement", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const struct size cross_sizes[] = { { 64, 64 },    { 160, 120 },  { 320, 240 },
						   { 640, 480 },  { 1280, 720 }, { 1920, 1080 },
						   { 3840, 2160 } };
	struct size sizes[16] = { { 640, 480 }, { 1280, 720 }, { 1920, 1080 }, { 3840, 2160 } };
	unsigned n_sizes = 4, cons[16] = { 1, 2, 4, 8 }, n_cons_list = 4, n_buffers = 4;
	bool quick = false, gst = true, crossover = true, placement = true;
	const char *json_path = NULL;
	double seconds = 1.0;
	struct gst_res gres[16] = { 0 };
	unsigned n_cross = ZCV_ARRAY_SIZE(cross_sizes);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t t_start = mono_ns();
	bool have_sizes = false, have_cons = false;
	int opt, failures = 0;

	if (argc > 1 && !strcmp(argv[1], "--consumer"))
		return consumer_main(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'q':
			quick = true;
			break;
		case 'j':
			json_path = optarg;
			break;
		case 's':
			if (parse_sizes(optarg, sizes, ZCV_ARRAY_SIZE(sizes), &n_sizes) < 0) {
				fprintf(stderr,
					TOOL ": --sizes wants WxH[,WxH...] with even sizes\n");
				return 2;
			}
			have_sizes = true;
			break;
		case 'c':
			if (parse_list(optarg, cons, ZCV_ARRAY_SIZE(cons), &n_cons_list) < 0) {
				fprintf(stderr, TOOL ": --consumers wants N[,N...], each 1..%d\n",
					MAX_CONSUMERS);
				return 2;
			}
			have_cons = true;
			break;
		case 't':
			seconds = atof(optarg);
			if (!(seconds > 0 && seconds <= 60)) {
				fprintf(stderr, TOOL ": --seconds wants a number in (0, 60]\n");
				return 2;
			}
			break;
		case 'b': {
			unsigned long v = strtoul(optarg, NULL, 10);

			if (v < 2 || v > ZCV_POOL_MAX_BUFFERS) {
				fprintf(stderr, TOOL ": --buffers wants 2..%d\n",
					ZCV_POOL_MAX_BUFFERS);
				return 2;
			}
			n_buffers = (unsigned)v;
			break;
		}
		case 'G':
			gst = false;
			break;
		case 'X':
			crossover = false;
			break;
		case 'P':
			placement = false;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, TOOL ": unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (quick) {
		if (!have_sizes) {
			sizes[0] = (struct size){ 320, 240 };
			n_sizes = 1;
		}
		if (!have_cons) {
			cons[0] = 1, cons[1] = 2;
			n_cons_list = 2;
		}
		seconds = ZCV_MIN(seconds, 0.1);
		n_cross = 2;
	}
	if (gst && system("gst-inspect-1.0 shmsink >/dev/null 2>&1") != 0) {
		fprintf(stderr,
			TOOL ": gst-launch-1.0 with shmsink not found: GStreamer runs skipped\n");
		gst = false;
	}

	printf("zcv-bench: NV12, memfd pool of 2 + %u pre-rendered buffers per consumer, unpaced "
	       "producer; %ld "
	       "CPUs\n"
	       "prod/cons us: CPU time per frame (unpaced; cons = mean per consumer);\n"
	       "p50/p99/max: hand-off latency publish -> consumer callback, one frame in flight;\n"
	       "x/cp: ratio to the copy tier of the same size, consumers and touch.\n",
	       n_buffers, ncpu);

	/* Main matrix: unpinned (the scheduler places everything). */
	for (unsigned s = 0; s < n_sizes; s++) {
		for (unsigned ci = 0; ci < n_cons_list; ci++) {
			for (int t = 0; t < 2; t++) {
				char title[96];

				snprintf(title, sizeof(title), "== %ux%u, %u consumer(s), touch %s",
					 sizes[s].w, sizes[s].h, cons[ci], touch_names[t]);
				print_header(title);
				/* copy first so the others can print their ratio */
				for (int m = MODE_COPY; m < MODE_COPY + MODE_COUNT; m++) {
					struct run_cfg rc = {
						.w = sizes[s].w,
						.h = sizes[s].h,
						.n_cons = cons[ci],
						.mode = (enum mode)(m % MODE_COUNT),
						.touch = (enum touch)t,
						.prod_cpu = -1,
						.cons_cpu = -1,
						.placement = "free",
						.t1 = seconds,
						.t2 = seconds / 2,
						.min1 = quick ? 5 : 20,
						.max1 = 1000000,
						.min2 = quick ? 5 : 50,
						.max2 = quick ? 200 : 2000,
						.group = "matrix",
					};
					struct entry *e = add_entry(&rc);

					if (run_one(&rc, n_buffers, &e->res) < 0)
						failures++;
					link_copy_runs();
					print_entry(e);
				}
			}
		}
	}

	/* Placement: latency depends on whether the consumer shares the
	 * producer's CPU (DESIGN.md); one consumer, pinned both ways. */
	if (placement && ncpu >= 2) {
		print_header("== placement: 1 consumer, touch none, producer on CPU 0");
		for (unsigned s = 0; s < n_sizes; s++) {
			for (int pl = 0; pl < 2; pl++) {
				for (int m = MODE_COPY; m >= MODE_ZEROCOPY; m--) {
					struct run_cfg rc = {
						.w = sizes[s].w,
						.h = sizes[s].h,
						.n_cons = 1,
						.mode = (enum mode)m,
						.touch = TOUCH_NONE,
						.prod_cpu = 0,
						.cons_cpu = pl ? 1 : 0,
						.placement = pl ? "cross" : "same",
						.t1 = seconds / 2,
						.t2 = seconds,
						.min1 = quick ? 5 : 20,
						.max1 = 1000000,
						.min2 = quick ? 5 : 200,
						.max2 = quick ? 200 : 5000,
						.group = "placement",
					};
					struct entry *e = add_entry(&rc);

					if (run_one(&rc, n_buffers, &e->res) < 0)
						failures++;
					link_copy_runs();
					print_entry(e);
				}
			}
		}
	}

	/* Copy vs map-per-frame over frame sizes, down to small frames. */
	if (crossover) {
		print_header("== crossover: copy vs map-per-frame, 1 consumer");
		for (unsigned s = 0; s < n_cross; s++) {
			for (int t = 0; t < 2; t++) {
				for (int m = MODE_COPY; m < MODE_COPY + MODE_COUNT; m++) {
					struct run_cfg rc = {
						.w = cross_sizes[s].w,
						.h = cross_sizes[s].h,
						.n_cons = 1,
						.mode = (enum mode)(m % MODE_COUNT),
						.touch = (enum touch)t,
						.prod_cpu = -1,
						.cons_cpu = -1,
						.placement = "free",
						.t1 = seconds / 2,
						.t2 = seconds / 10,
						.min1 = quick ? 5 : 20,
						.max1 = 1000000,
						.min2 = 5,
						.max2 = quick ? 50 : 500,
						.group = "crossover",
					};
					struct entry *e = add_entry(&rc);

					if (run_one(&rc, n_buffers, &e->res) < 0)
						failures++;
					link_copy_runs();
					print_entry(e);
				}
			}
		}
	}

	/* 8 consumers at the largest size, paced at 60 fps: the producer's
	 * share of a core in the steady state a camera gives. */
	{
		unsigned s = n_sizes - 1, nc = quick ? cons[n_cons_list - 1] : 8;
		struct run_cfg rc = {
			.w = sizes[s].w,
			.h = sizes[s].h,
			.n_cons = nc,
			.mode = MODE_ZEROCOPY,
			.touch = TOUCH_NONE,
			.prod_cpu = -1,
			.cons_cpu = -1,
			.placement = "free",
			.t1 = seconds / 4,
			.t2 = quick ? 0.3 : 5.0,
			.min1 = 5,
			.max1 = 1000000,
			.min2 = 5,
			.max2 = 100000,
			.paced_fps = 60,
			.group = "paced60",
		};
		struct entry *e = add_entry(&rc);

		print_header(
			"== paced: 60 fps, touch none (latency at 60 fps; producer % of a core)");
		if (run_one(&rc, n_buffers, &e->res) < 0)
			failures++;
		print_entry(e);
		if (e->res.ok)
			printf("producer at 60 fps: %.3f%% of one core (%.2f us per frame, %u "
			       "consumers)\n",
			       e->res.prod2_core_pct, e->res.prod2_cpu_us, nc);
	}

	if (gst) {
		printf("\n== GStreamer 1.x shmsink -> shmsrc (gst-launch-1.0, CPU from rusage, "
		       "free placement)\n");
		printf("%-10s %7s %10s | %-28s | %-28s\n", "size", "frames", "render us",
		       "(a) zero-copy: prod/cons/fps", "(b) copying: prod/cons/fps");
		for (unsigned s = 0; s < n_sizes; s++) {
			uint64_t bytes = (uint64_t)sizes[s].w * sizes[s].h * 3 / 2;
			unsigned n =
				quick ? 50 :
					(unsigned)ZCV_MAX(300ull,
							  ZCV_MIN(4000ull, 4000000000ull / bytes));
			char size[24];

			gst_measure(sizes[s].w, sizes[s].h, n, -1, -1, &gres[s]);
			snprintf(size, sizeof(size), "%ux%u", sizes[s].w, sizes[s].h);
			printf("%-10s %7u %10.1f | %8.1f %8.1f %10.0f | %8.1f %8.1f %10.0f%s\n",
			       size, n, gres[s].render_us, gres[s].prod_us[0], gres[s].cons_us[0],
			       gres[s].fps[0], gres[s].prod_us[1], gres[s].cons_us[1],
			       gres[s].fps[1], gres[s].ok ? "" : "  (a run failed)");
			fflush(stdout);
			if (!gres[s].ok)
				failures++;
		}
	}

	/* Targets of the issue, from this run. */
	struct target tg[12];
	unsigned n_tg = 0;
	{
		struct size big = sizes[n_sizes - 1], small = sizes[0];
		const struct entry *zc1 =
			find("matrix", big.w, big.h, 1, MODE_ZEROCOPY, TOUCH_NONE, NULL);
		const struct entry *cp1 =
			find("matrix", big.w, big.h, 1, MODE_COPY, TOUCH_NONE, NULL);
		const struct entry *same_big =
			find("placement", big.w, big.h, 1, MODE_ZEROCOPY, TOUCH_NONE, "same");
		const struct entry *same_small =
			find("placement", small.w, small.h, 1, MODE_ZEROCOPY, TOUCH_NONE, "same");
		const struct entry *cross_big =
			find("placement", big.w, big.h, 1, MODE_ZEROCOPY, TOUCH_NONE, "cross");
		const struct entry *cross_small =
			find("placement", small.w, small.h, 1, MODE_ZEROCOPY, TOUCH_NONE, "cross");
		const struct entry *zcs =
			find("matrix", small.w, small.h, 1, MODE_ZEROCOPY, TOUCH_NONE, NULL);
		const struct entry *p60 = n_entries ? &entries[n_entries - 1] : NULL;
		double zc_t = zc1 ? zc1->res.prod_cpu_us + zc1->res.cons_cpu_us : 0;

#define TARGET(nm, val, lim, hib, ok_, ...)                                                        \
	do {                                                                                       \
		tg[n_tg] = (struct target){ .name = nm,                                            \
					    .value = val,                                          \
					    .limit = lim,                                          \
					    .higher_is_better = hib,                               \
					    .have = ok_ };                                         \
		snprintf(tg[n_tg].note, sizeof(tg[n_tg].note), __VA_ARGS__);                       \
		n_tg++;                                                                            \
	} while (0)
		if (same_big && cross_big)
			TARGET("handoff_p50_us_1_consumer",
			       ZCV_MIN(same_big->res.p50_us, cross_big->res.p50_us), 10, false,
			       true, "%ux%u p50: same CPU %.1f us, cross CPU %.1f us, free %.1f us",
			       big.w, big.h, same_big->res.p50_us, cross_big->res.p50_us,
			       zc1 ? zc1->res.p50_us : 0);
		if (same_big && same_small)
			TARGET("p50_big_over_small_same_cpu",
			       ratio(same_big->res.p50_us, same_small->res.p50_us), 1.3, false,
			       true, "same CPU: %.1f / %.1f us", same_big->res.p50_us,
			       same_small->res.p50_us);
		if (cross_big && cross_small)
			TARGET("p50_big_over_small_cross_cpu",
			       ratio(cross_big->res.p50_us, cross_small->res.p50_us), 1.3, false,
			       true, "cross CPU: %.1f / %.1f us", cross_big->res.p50_us,
			       cross_small->res.p50_us);
		else if (zc1 && zcs)
			TARGET("p50_big_over_small_free", ratio(zc1->res.p50_us, zcs->res.p50_us),
			       1.3, false, true, "free placement: %.1f / %.1f us", zc1->res.p50_us,
			       zcs->res.p50_us);
		if (zc1 && cp1)
			TARGET("transport_cpu_x_below_copy_tier",
			       ratio(cp1->res.prod_cpu_us + cp1->res.cons_cpu_us, zc_t), 50, true,
			       true, "zero-copy %.2f us vs copy %.2f us (producer + 1 consumer)",
			       zc_t, cp1->res.prod_cpu_us + cp1->res.cons_cpu_us);
		if (zc1 && gst && gres[n_sizes - 1].ok) {
			const struct gst_res *g = &gres[n_sizes - 1];

			TARGET("transport_cpu_x_below_gst_copying_b",
			       ratio(g->prod_us[1] + g->cons_us[1], zc_t), 50, true, true,
			       "gst (b) %.1f + %.1f us vs zero-copy %.2f us", g->prod_us[1],
			       g->cons_us[1], zc_t);
			TARGET("transport_cpu_x_below_gst_zerocopy_a",
			       ratio(g->prod_us[0] + g->cons_us[0], zc_t), 10, true, true,
			       "gst (a) %.1f + %.1f us vs zero-copy %.2f us", g->prod_us[0],
			       g->cons_us[0], zc_t);
		}
		if (p60 && p60->res.ok && !strcmp(p60->cfg.group, "paced60"))
			TARGET("producer_core_percent_60fps", p60->res.prod2_core_pct, 1, false,
			       true, "%u consumers, %ux%u, %.2f us per frame", p60->cfg.n_cons,
			       p60->cfg.w, p60->cfg.h, p60->res.prod2_cpu_us);
		{
			const struct entry *f = find("matrix", small.w, small.h, 1, MODE_ZEROCOPY,
						     TOUCH_NONE, NULL);

			if (f)
				TARGET("unpaced_fps_1_consumer", f->res.fps, 50000, true, true,
				       "%ux%u, touch none, %ld CPUs", small.w, small.h, ncpu);
		}
	}
	printf("\n== targets (%s)\n", quick ? "quick run: not the reference sizes" : "this run");
	for (unsigned i = 0; i < n_tg; i++) {
		bool met = tg[i].higher_is_better ? tg[i].value >= tg[i].limit :
						    tg[i].value <= tg[i].limit;

		printf("%-38s %10.3f  %s %-8g %-6s %s\n", tg[i].name, tg[i].value,
		       tg[i].higher_is_better ? ">=" : "<=", tg[i].limit, met ? "met" : "MISSED",
		       tg[i].note);
	}
	printf("\ntotal %.0f s, %d failed run(s)\n", (double)(mono_ns() - t_start) / 1e9, failures);

	link_copy_runs();
	if (json_path) {
		FILE *f = fopen(json_path, "we");

		if (!f) {
			fprintf(stderr, TOOL ": cannot write %s: %s\n", json_path, strerror(errno));
			return 1;
		}
		fprintf(f, "{\"tool\": \"zcv-bench\", \"quick\": %s, ", quick ? "true" : "false");
		machine_json(f);
		fprintf(f,
			",\n \"config\": {\"format\": \"NV12\", \"buffers\": %u, \"seconds\": "
			"%.3f, "
			"\"memory\": \"memfd\", \"pre_rendered\": true},\n \"runs\": [\n",
			n_buffers, seconds);
		for (size_t i = 0; i < n_entries; i++) {
			fprintf(f, "  ");
			json_entry(f, &entries[i]);
			fprintf(f, "%s\n", i + 1 < n_entries ? "," : "");
		}
		fprintf(f, " ],\n \"gstreamer\": [");
		for (unsigned s = 0; gst && s < n_sizes; s++) {
			const struct gst_res *g = &gres[s];

			fprintf(f,
				"%s\n  {\"width\": %u, \"height\": %u, \"frames\": %u, \"ok\": %s, "
				"\"render_cpu_us_per_frame\": %.3f, "
				"\"zerocopy_a\": {\"producer_cpu_us_over_render\": %.3f, "
				"\"consumer_cpu_us\": %.3f, \"fps\": %.1f}, "
				"\"copying_b\": {\"producer_cpu_us_over_render\": %.3f, "
				"\"consumer_cpu_us\": %.3f, \"fps\": %.1f}}",
				s ? "," : "", sizes[s].w, sizes[s].h, g->frames,
				g->ok ? "true" : "false", jnum(g->render_us), jnum(g->prod_us[0]),
				jnum(g->cons_us[0]), jnum(g->fps[0]), jnum(g->prod_us[1]),
				jnum(g->cons_us[1]), jnum(g->fps[1]));
		}
		fprintf(f, "\n ],\n \"targets\": [");
		for (unsigned i = 0; i < n_tg; i++) {
			bool met = tg[i].higher_is_better ? tg[i].value >= tg[i].limit :
							    tg[i].value <= tg[i].limit;

			fprintf(f,
				"%s\n  {\"name\": \"%s\", \"value\": %.4f, \"limit\": %g, \"op\": "
				"\"%s\", "
				"\"met\": %s, \"note\": ",
				i ? "," : "", tg[i].name, jnum(tg[i].value), tg[i].limit,
				tg[i].higher_is_better ? ">=" : "<=", met ? "true" : "false");
			json_str(f, tg[i].note);
			fprintf(f, "}");
		}
		fprintf(f, "\n ],\n \"failed_runs\": %d, \"seconds_total\": %.1f}\n", failures,
			(double)(mono_ns() - t_start) / 1e9);
		if (fclose(f) != 0) {
			fprintf(stderr, TOOL ": cannot write %s\n", json_path);
			return 1;
		}
	}
	free(entries);
	return failures ? 1 : 0;
}
