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
 * The producer writes a 24-byte header (sequence, time) into each frame
 * and the consumers read it back: the same per-frame work as the peers
 * below, so that the comparisons measure the transport.
 *
 * Peers, each in the same invocation as the zcv runs it is compared with:
 *  - PipeWire (zcv-bench-pw, pw-peer.c): a private daemon with a minimal
 *    config, pw_stream producer and consumers linked with pw-link, one
 *    sealed memfd per buffer; 60 fps, 1000 fps and unpaced;
 *  - GStreamer, fair (zcv-bench-gst, gst-shm-peer.c): appsrc ! shmsink and
 *    shmsrc ! appsink doing the same header write and read;
 *  - GStreamer, legacy: gst-launch-1.0 videotestsrc ! shmsink, with the
 *    cost of rendering subtracted. Kept for continuity; not a transport
 *    figure (the subtraction mixes cache states).
 * Syscalls per frame: each side under strace -c over the measured frames.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
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
#include <sys/prctl.h>
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

#include "bench-peer.h"

#define TOOL "zcv-bench"
#define PHASE2_SEQ 1000000000ull
#define MAX_CONSUMERS 64
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

/* --consumer-poll: every zcv consumer polls and then dispatches (the loop
 * before issue 13) instead of one zcv_client_wait_dispatch() */
static bool consumer_poll;

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
	int64_t syscalls; /* strace count over the traced frames of phase 2, or -1 */
	uint64_t traced;
	struct bench_trace_counts sc; /* ... call by call */
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
	const char *strace_out;
	pid_t strace_pid;
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
		if (c->strace_out) {
			/* no count (reported as such) rather than no run */
			c->strace_pid = bench_trace_start(c->strace_out);
			if (c->strace_pid < 0)
				c->strace_pid = 0;
		}
		c->p2 = true;
		c->c2 = cpu_ns();
		/* the jump to PHASE2_SEQ is ours, not a drop */
		c->phase_gap = f->sequence - c->last_seq - 1;
	}
	c->last_seq = f->sequence;
	c->rep.frames_total++;
	if (f->sequence >= PHASE2_SEQ) {
		uint64_t lat = f->received_ns - f->timestamp_ns;

		/* the per-frame work of every case (bench-peer.h): read the
		 * producer's header back; latency from its timestamp */
		if (f->planes[0]) {
			struct bench_hdr h;

			if (!bench_hdr_read(f->planes[0], &h) || h.seq != f->sequence)
				c->error = -EBADMSG;
			lat = bench_clock_ns(CLOCK_MONOTONIC) - h.ts_ns;
		}
		c->rep.n2++;
		if (c->strace_pid > 0)
			c->rep.traced++;
		if (c->n_lat == c->cap_lat) {
			size_t cap = c->cap_lat ? 2 * c->cap_lat : 4096;
			uint64_t *n = realloc(c->lat, cap * sizeof(*n));

			if (n) {
				c->lat = n;
				c->cap_lat = cap;
			}
		}
		if (c->n_lat < c->cap_lat)
			c->lat[c->n_lat++] = lat;
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
		if (c->strace_pid > 0) {
			bench_trace_stop(c->strace_pid);
			c->rep.syscalls = bench_trace_read(c->strace_out, &c->rep.sc);
			c->strace_pid = 0;
		}
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
	/* --consumer SOCKET REPORT MODE TOUCH CPU WARMUP MAXHOLD LOOP [STRACE_OUT]
	 * LOOP: 0 zcv_client_wait_dispatch(), 1 poll + zcv_client_dispatch() */
	struct cons c = { 0 };
	struct zcv_client_config cfg = { .size = sizeof(struct zcv_client_config),
					 .name = "zcv-bench" };
	uint64_t deadline;
	bool poll_loop;
	FILE *f;
	int r;

	if (argc != 10 && argc != 11)
		return 2;
	poll_loop = atoi(argv[9]) == 1;
	c.strace_out = argc == 11 ? argv[10] : NULL;
	c.rep.syscalls = -1;
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
		if (poll_loop) {
			/* the loop before issue 13: poll, then a dispatch */
			struct pollfd pfd = { .fd = zcv_client_get_fd(c.cl), .events = POLLIN };

			if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
				break;
			r = zcv_client_dispatch(c.cl);
		} else {
			/* one blocking recvmmsg per wake-up, no poll */
			r = zcv_client_wait_dispatch(c.cl, 1000);
		}
		if (r < 0 && !c.done)
			c.error = r;
		if (r != 0)
			break;
	}
	bench_trace_stop(c.strace_pid);
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
	bool strace;        /* count syscalls of phase 2 (CPU figures then void) */
	bool allow_skip;    /* paced: a consumer at its hold limit is skipped, counted */
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
	double prod_syscalls, cons_syscalls; /* per frame, phase 2, traced runs; -1: none */
	uint64_t delivered2;                 /* phase 2 frames all consumers got */
	/* traced runs, call by call: the producer's over f2 frames, the
	 * consumers' summed over cons_traced frames (all consumers') */
	struct bench_trace_counts prod_sc, cons_sc;
	uint64_t cons_traced;
};

/* A zero-copy consumer is granted holds out of the pool minus a reserve of
 * 2, at least one each: the pool's size caps how many consumers fit. */
static bool zcv_fits(unsigned n_cons)
{
	return n_cons + 2 <= ZCV_POOL_MAX_BUFFERS;
}

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

	pid_t trace = 0;
	char trace_out[96] = "";

	memset(res, 0, sizeof(*res));
	res->prod_syscalls = res->cons_syscalls = -1;
	res->prod_sc.total = res->cons_sc.total = -1;
	zcv_latency_init(&lat, 0);
	if (!zcv_fits(rc->n_cons)) {
		snprintf(res->error, sizeof(res->error),
			 "%u consumers need a pool of %u buffers, at most %d", rc->n_cons,
			 rc->n_cons + 2, ZCV_POOL_MAX_BUFFERS);
		return -E2BIG;
	}
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
		char mode[8], touch[8], cpu[8], warm[24], hold_s[8], tr[96];

		snprintf(rep[i], sizeof(rep[i]), "%s/c%u", dir, i);
		snprintf(mode, sizeof(mode), "%d", rc->mode);
		snprintf(touch, sizeof(touch), "%d", rc->touch);
		snprintf(cpu, sizeof(cpu), "%d", rc->cons_cpu);
		snprintf(warm, sizeof(warm), "%" PRIu64, warmup);
		snprintf(hold_s, sizeof(hold_s), "%u", hold);
		snprintf(tr, sizeof(tr), "%s/c%u.strace", dir, i);
		pids[i] = fork();
		if (pids[i] == 0) {
			char *args[] = { "zcv-bench",
					 "--consumer",
					 sock,
					 rep[i],
					 mode,
					 touch,
					 cpu,
					 warm,
					 hold_s,
					 consumer_poll ? "1" : "0",
					 rc->strace ? tr : NULL,
					 NULL };

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
			bench_hdr_write(zcv_buffer_plane(p.pool, b, 0), seq, false);
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
	if (rc->strace) {
		snprintf(trace_out, sizeof(trace_out), "%s/p.strace", dir);
		trace = bench_trace_start(trace_out);
		if (trace < 0)
			trace = 0; /* no count, reported as such */
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
		bench_hdr_write(zcv_buffer_plane(p.pool, b, 0), PHASE2_SEQ + i, last);
		r = zcv_server_publish(
			p.srv, b->index,
			&(struct zcv_frame_meta){ .sequence = PHASE2_SEQ + i,
						  .timestamp_ns = mono_ns(),
						  .flags = last ? ZCV_FRAME_FLAG_LAST : 0 });
		if (r < 0 || (r != (int)rc->n_cons && !rc->allow_skip)) {
			snprintf(res->error, sizeof(res->error), "phase 2 frame reached %d of %u",
				 r, rc->n_cons);
			r = -EIO;
			goto out;
		}
		f2++;
		/* traced: the consumer attaches strace on the first frame of the
		 * phase; paced frames meanwhile would find it at its hold limit */
		if (tfd < 0 || last || (rc->strace && i == 0)) {
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
	if (trace > 0) {
		bench_trace_stop(trace);
		trace = 0;
		res->prod_syscalls =
			(double)bench_trace_read(trace_out, &res->prod_sc) / (double)f2;
	}
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
		if (!good || cr.error || cr.n1 != f1 ||
		    (rc->allow_skip ? cr.n2 > f2 || !cr.n2 : cr.n2 != f2)) {
			snprintf(res->error, sizeof(res->error),
				 "consumer %u: bad report (frames %" PRIu64 "/%" PRIu64
				 " of %" PRIu64 "/%" PRIu64 ", error %d)",
				 i, good ? cr.n1 : 0, good ? cr.n2 : 0, f1, f2,
				 good ? cr.error : 0);
			r = -EIO;
			goto out;
		}
		if (rc->strace && cr.syscalls >= 0 && cr.traced) {
			res->cons_syscalls = ZCV_MAX(res->cons_syscalls, 0) +
					     (double)cr.syscalls / (double)cr.traced / rc->n_cons;
			bench_trace_add(&res->cons_sc, &cr.sc);
			res->cons_traced += cr.traced;
		}
		cons1 += us_per(cr.cpu1_ns, cr.n1) / rc->n_cons;
		cons2 += us_per(cr.cpu2_ns, cr.n2) / rc->n_cons;
		res->delivered2 += cr.n2;
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
	bench_trace_stop(trace);
	if (tfd >= 0)
		close(tfd);
	zcv_server_destroy(p.srv);
	zcv_pool_destroy(p.pool);
	for (unsigned i = 0; i < rc->n_cons; i++) {
		char tr[96];

		snprintf(tr, sizeof(tr), "%s/c%u.strace", dir, i);
		unlink(tr);
		unlink(rep[i]);
	}
	if (rc->strace)
		unlink(trace_out);
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

/* In a forked child: stdout and stderr to /dev/null. */
static void quiet_child(void)
{
	int nul = open("/dev/null", O_WRONLY | O_CLOEXEC);

	if (nul >= 0) {
		dup2(nul, 1);
		dup2(nul, 2);
	}
}

static int gst_spawn(struct gst_proc *gp, const char *cmd)
{
	memset(gp, 0, sizeof(*gp));
	gp->start_ns = mono_ns();
	gp->pid = fork();
	if (gp->pid == 0) {
		quiet_child();
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

/* ------------------------------------------------------------- PipeWire */

/*
 * A private PipeWire daemon: no session manager, nothing but the native
 * protocol, client nodes (pw_stream), the link factory (pw-link) and a
 * dummy driver, so the graph runs without a sound card. Its runtime
 * directory (socket) and config live in a temporary directory; only the
 * peers' environment points at it.
 */
struct pw_daemon {
	pid_t pid;
	char dir[64], run[80];
	char peer[PATH_MAX];
};

static const char pw_conf[] =
	"context.properties = {\n"
	"    core.daemon = true\n"
	"    core.name = pipewire-0\n"
	"    link.max-buffers = 16\n"
	"    mem.allow-mlock = false\n"
	"}\n"
	"context.spa-libs = {\n"
	"    support.* = support/libspa-support\n"
	"}\n"
	"context.modules = [\n"
	"    { name = libpipewire-module-protocol-native }\n"
	"    { name = libpipewire-module-client-node }\n"
	/* without it clients are never granted permissions and hang */
	"    { name = libpipewire-module-access }\n"
	"    { name = libpipewire-module-adapter }\n"
	"    { name = libpipewire-module-link-factory }\n"
	"    { name = libpipewire-module-spa-node-factory }\n"
	"]\n"
	"context.objects = [\n"
	"    { factory = spa-node-factory\n"
	"        args = { factory.name = support.node.driver node.name = Dummy-Driver\n"
	"                 priority.driver = 1000 } }\n"
	"]\n";

static void pw_env(const struct pw_daemon *d)
{
	setenv("XDG_RUNTIME_DIR", d->run, 1);
	setenv("PIPEWIRE_RUNTIME_DIR", d->run, 1);
	unsetenv("PIPEWIRE_REMOTE");
}

/* Returns 0, or -ENOENT with why in `why` when PipeWire cannot run. */
static int pw_daemon_start(struct pw_daemon *d, char *why, size_t why_size)
{
	char path[160], self[PATH_MAX - 16], *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	uint64_t deadline;
	struct stat st;
	FILE *f;

	memset(d, 0, sizeof(*d));
	if (n <= 0)
		return -ENOENT;
	self[n] = 0;
	slash = strrchr(self, '/');
	*slash = 0;
	snprintf(d->peer, sizeof(d->peer), "%s/zcv-bench-pw", self);
	if (access(d->peer, X_OK) < 0) {
		snprintf(why, why_size,
			 "zcv-bench-pw not built (no libpipewire-0.3 at build time)");
		return -ENOENT;
	}
	if (system("command -v pipewire >/dev/null && command -v pw-link >/dev/null") != 0) {
		snprintf(why, why_size, "pipewire or pw-link not installed");
		return -ENOENT;
	}
	snprintf(d->dir, sizeof(d->dir), "/tmp/zcv-bench-pw-XXXXXX");
	if (!mkdtemp(d->dir))
		return -errno;
	snprintf(d->run, sizeof(d->run), "%s/run", d->dir);
	mkdir(d->run, 0700);
	snprintf(path, sizeof(path), "%s/pipewire.conf", d->dir);
	f = fopen(path, "we");
	if (!f || fputs(pw_conf, f) < 0 || fclose(f) != 0)
		return -EIO;
	d->pid = fork();
	if (d->pid == 0) {
		quiet_child();
		/* no daemon left behind when zcv-bench is killed */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		pw_env(d);
		setenv("PIPEWIRE_CONFIG_DIR", d->dir, 1);
		setenv("PIPEWIRE_CONFIG_NAME", "pipewire.conf", 1);
		execlp("pipewire", "pipewire", (char *)NULL);
		_exit(127);
	}
	if (d->pid < 0)
		return -errno;
	snprintf(path, sizeof(path), "%s/pipewire-0", d->run);
	deadline = mono_ns() + 5 * NSEC;
	while (stat(path, &st) < 0) {
		if (mono_ns() > deadline || any_child_died(&d->pid, 1)) {
			snprintf(why, why_size, "the PipeWire daemon did not start");
			return -ENOENT;
		}
		usleep(1000);
	}
	return 0;
}

static void rm_dir(const char *dir)
{
	DIR *dd = opendir(dir);
	struct dirent *de;

	while (dd && (de = readdir(dd))) {
		char path[400];

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) < 0 && errno == EISDIR)
			rm_dir(path);
	}
	if (dd)
		closedir(dd);
	rmdir(dir);
}

static void pw_daemon_stop(struct pw_daemon *d)
{
	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		wait_children(&d->pid, 1, 5000);
	}
	if (d->dir[0])
		rm_dir(d->dir);
}

/* utime + stime of a process from /proc (all its threads), ns */
static uint64_t proc_cpu_ns(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')'); /* comm may hold spaces */
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (ut + st) * (NSEC / (uint64_t)sysconf(_SC_CLK_TCK));
}

struct pw_cfg {
	uint32_t w, h;
	unsigned n_cons;
	unsigned fps; /* 0: unpaced (next cycle when the graph completed one) */
	unsigned frames, warmup;
	bool strace;
};

struct pw_res {
	bool ok;
	char error[160];
	uint64_t sent, delivered; /* window frames: producer sent, all consumers got */
	double prod_cpu_us, cons_cpu_us, daemon_cpu_us; /* per frame (consumer: mean) */
	double fps, p50_us, p99_us, max_us;
	double prod_syscalls, cons_syscalls; /* per frame; -1: not traced */
	bool memfd;
};

struct peer_rep {
	uint64_t frames, cpu_ns, wall_ns, bad, memfd;
	long long syscalls;
	uint64_t traced;
};

static bool read_peer_report(const char *path, struct peer_rep *pr, struct zcv_latency *lat)
{
	FILE *f = fopen(path, "re");
	char key[32];
	unsigned long long v;
	long long sv;

	memset(pr, 0, sizeof(*pr));
	pr->syscalls = -1;
	if (!f)
		return false;
	while (fscanf(f, "%31s", key) == 1) {
		if (!strcmp(key, "syscalls")) {
			if (fscanf(f, "%lld", &sv) == 1)
				pr->syscalls = sv;
			continue;
		}
		if (fscanf(f, "%llu", &v) != 1)
			break;
		if (!strcmp(key, "lat"))
			zcv_latency_add(lat, v);
		else if (!strcmp(key, "frames"))
			pr->frames = v;
		else if (!strcmp(key, "cpu_ns"))
			pr->cpu_ns = v;
		else if (!strcmp(key, "wall_ns"))
			pr->wall_ns = v;
		else if (!strcmp(key, "bad"))
			pr->bad = v;
		else if (!strcmp(key, "memfd"))
			pr->memfd = v;
		else if (!strcmp(key, "traced"))
			pr->traced = v;
	}
	fclose(f);
	return true;
}

/* Starts a peer with its stdout on a pipe (it says "ready" there); with a
 * daemon, in its environment. */
static pid_t peer_spawn(const char *exe, const struct pw_daemon *d, char *const argv[], int *ret_fd,
			int *ret_in)
{
	int pfd[2], in[2] = { -1, -1 };
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	if (ret_in && pipe2(in, O_CLOEXEC) < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -errno;
	}
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (in[0] >= 0)
			dup2(in[0], 0);
		if (d)
			pw_env(d);
		execv(exe, argv);
		_exit(127);
	}
	close(pfd[1]);
	if (in[0] >= 0)
		close(in[0]);
	if (pid < 0) {
		close(pfd[0]);
		if (in[1] >= 0)
			close(in[1]);
		return -errno;
	}
	*ret_fd = pfd[0];
	if (ret_in)
		*ret_in = in[1];
	return pid;
}

static bool wait_ready(int fd, uint64_t deadline)
{
	char buf[64];
	size_t n = 0;

	while (mono_ns() < deadline && n < sizeof(buf) - 1) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&pf, 1, 100) <= 0)
			continue;
		r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r <= 0)
			return false;
		n += (size_t)r;
		buf[n] = 0;
		if (strstr(buf, "ready"))
			return true;
	}
	return false;
}

static int pw_link(const struct pw_daemon *d, const char *out, const char *in)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		quiet_child();
		pw_env(d);
		execlp("pw-link", "pw-link", out, in, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -ECHILD;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/* One PipeWire run: a producer, n consumers, linked by us, then reports. */
static int pw_run(const struct pw_daemon *d, const struct pw_cfg *pc, struct pw_res *res)
{
	char dir[] = "/tmp/zcv-bench-pwr-XXXXXX", size[24], fps[16], frames[16], warm[16];
	char prep[96], ptr[96], crep[MAX_CONSUMERS][96], ctr[MAX_CONSUMERS][96];
	char pname[32], cname[MAX_CONSUMERS][48];
	pid_t ppid = -1, cpids[MAX_CONSUMERS] = { 0 };
	int pfd = -1, pin = -1, cfd[MAX_CONSUMERS];
	struct zcv_latency lat;
	struct peer_rep pr, cr;
	uint64_t deadline, d0 = 0, d1;
	double cons = 0, cons_sc = 0;
	int r = -EIO;

	memset(res, 0, sizeof(*res));
	res->prod_syscalls = res->cons_syscalls = -1;
	for (unsigned i = 0; i < MAX_CONSUMERS; i++)
		cfd[i] = -1;
	zcv_latency_init(&lat, 0);
	if (!mkdtemp(dir)) {
		snprintf(res->error, sizeof(res->error), "mkdtemp: %s", strerror(errno));
		return -errno;
	}
	snprintf(size, sizeof(size), "%ux%u", pc->w, pc->h);
	snprintf(fps, sizeof(fps), "%u", pc->fps);
	snprintf(frames, sizeof(frames), "%u", pc->frames);
	snprintf(warm, sizeof(warm), "%u", pc->warmup);
	snprintf(prep, sizeof(prep), "%s/p", dir);
	snprintf(ptr, sizeof(ptr), "%s/p.strace", dir);
	snprintf(pname, sizeof(pname), "zcvbp%d", (int)getpid());
	deadline = mono_ns() + 10 * NSEC;
	for (unsigned i = 0; i < pc->n_cons; i++) {
		char *argv[] = { "zcv-bench-pw",
				 "consumer",
				 cname[i],
				 size,
				 warm,
				 crep[i],
				 pc->strace ? ctr[i] : NULL,
				 NULL };

		snprintf(cname[i], sizeof(cname[i]), "%sc%u", pname, i);
		snprintf(crep[i], sizeof(crep[i]), "%s/c%u", dir, i);
		snprintf(ctr[i], sizeof(ctr[i]), "%s/c%u.strace", dir, i);
		cpids[i] = peer_spawn(d->peer, d, argv, &cfd[i], NULL);
		if (cpids[i] < 0 || !wait_ready(cfd[i], deadline)) {
			snprintf(res->error, sizeof(res->error),
				 "PipeWire consumer %u did not start", i);
			goto out;
		}
	}
	{
		char *argv[] = {
			"zcv-bench-pw",          "producer", pname, size, fps, frames, warm, prep,
			pc->strace ? ptr : NULL, NULL
		};

		ppid = peer_spawn(d->peer, d, argv, &pfd, &pin);
		if (ppid < 0 || !wait_ready(pfd, deadline)) {
			snprintf(res->error, sizeof(res->error), "PipeWire producer did not start");
			goto out;
		}
	}
	for (unsigned i = 0; i < pc->n_cons; i++) {
		char out[64], in[64];

		snprintf(out, sizeof(out), "%s:out_0", pname);
		snprintf(in, sizeof(in), "%s:in_0", cname[i]);
		if (pw_link(d, out, in) < 0) {
			snprintf(res->error, sizeof(res->error), "pw-link %s %s failed", out, in);
			goto out;
		}
	}
	/* every link exists: the producer may send */
	d0 = proc_cpu_ns(d->pid);
	if (write(pin, "go\n", 3) != 3) {
		snprintf(res->error, sizeof(res->error), "PipeWire producer gone");
		goto out;
	}
	/* the producer ends after its frames; consumers on its last frame, or
	 * are told to (SIGTERM) when PipeWire dropped it */
	if (wait_children(&ppid, 1,
			  (int)(pc->fps ? 1000ull * pc->frames / pc->fps + 30000 : 60000))) {
		snprintf(res->error, sizeof(res->error), "the PipeWire producer failed");
		goto out;
	}
	d1 = proc_cpu_ns(d->pid);
	deadline = mono_ns() + 2 * NSEC;
	for (unsigned i = 0; i < pc->n_cons; i++) {
		int st;

		while (cpids[i] > 0 && waitpid(cpids[i], &st, WNOHANG) == 0 && mono_ns() < deadline)
			usleep(1000);
	}
	for (unsigned i = 0; i < pc->n_cons; i++)
		if (cpids[i] > 0)
			kill(cpids[i], SIGTERM);
	wait_children(cpids, pc->n_cons, 10000);

	if (!read_peer_report(prep, &pr, &lat) || pr.frames < 2 || pr.bad) {
		snprintf(res->error, sizeof(res->error), "PipeWire producer: bad report");
		goto out;
	}
	res->sent = pr.frames;
	res->memfd = pr.memfd > 0;
	res->prod_cpu_us = us_per(pr.cpu_ns, pr.frames - 1);
	res->fps = pr.wall_ns ? (double)(pr.frames - 1) / ((double)pr.wall_ns / 1e9) : 0;
	res->daemon_cpu_us = us_per(d1 - d0, pr.frames);
	if (pc->strace && pr.syscalls >= 0 && pr.traced)
		res->prod_syscalls = (double)pr.syscalls / (double)pr.traced;
	for (unsigned i = 0; i < pc->n_cons; i++) {
		if (!read_peer_report(crep[i], &cr, &lat) || cr.bad) {
			snprintf(res->error, sizeof(res->error), "PipeWire consumer %u: bad report",
				 i);
			goto out;
		}
		res->delivered += cr.frames;
		res->memfd &= cr.memfd == cr.frames;
		cons += (cr.frames > 1 ? us_per(cr.cpu_ns, cr.frames - 1) : 0) / pc->n_cons;
		if (pc->strace && cr.syscalls >= 0 && cr.traced)
			cons_sc += (double)cr.syscalls / (double)cr.traced / pc->n_cons;
	}
	if (pc->strace)
		res->cons_syscalls = cons_sc;
	res->cons_cpu_us = cons;
	res->p50_us = (double)zcv_latency_percentile(&lat, 0.50) / 1e3;
	res->p99_us = (double)zcv_latency_percentile(&lat, 0.99) / 1e3;
	res->max_us = (double)lat.max_ns / 1e3;
	res->ok = true;
	r = 0;
out:
	if (ppid > 0)
		kill(ppid, SIGTERM);
	wait_children(&ppid, 1, 5000);
	for (unsigned i = 0; i < pc->n_cons; i++)
		if (cpids[i] > 0)
			kill(cpids[i], SIGTERM);
	wait_children(cpids, pc->n_cons, 5000);
	if (pfd >= 0)
		close(pfd);
	if (pin >= 0)
		close(pin);
	for (unsigned i = 0; i < pc->n_cons; i++)
		if (cfd[i] >= 0)
			close(cfd[i]);
	rm_dir(dir);
	zcv_latency_finish(&lat);
	return r;
}

/* ------------------------------------------------- GStreamer, fair case */

struct gshm_res {
	bool ok;
	char error[128];
	uint64_t sent, delivered, zero_copy; /* zero_copy: frames from shmsink's area */
	double prod_cpu_us, cons_cpu_us, fps, p50_us, p99_us;
};

/* zcv-bench-gst next to this binary, or NULL when it was not built */
static const char *gst_peer(void)
{
	static char path[PATH_MAX];
	char self[PATH_MAX - 16], *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return NULL;
	self[n] = 0;
	slash = strrchr(self, '/');
	*slash = 0;
	snprintf(path, sizeof(path), "%s/zcv-bench-gst", self);
	return access(path, X_OK) == 0 ? path : NULL;
}

static void gshm_run(const char *exe, uint32_t w, uint32_t h, unsigned frames, struct gshm_res *res)
{
	char dir[] = "/tmp/zcv-bench-gshm-XXXXXX", sock[64], size[24], n_s[16], prep[64], crep[64];
	pid_t pids[2] = { 0, 0 };
	int fds[2] = { -1, -1 };
	struct zcv_latency lat;
	struct peer_rep pr, cr;

	memset(res, 0, sizeof(*res));
	zcv_latency_init(&lat, 0);
	if (!mkdtemp(dir)) {
		snprintf(res->error, sizeof(res->error), "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(sock, sizeof(sock), "%s/s", dir);
	snprintf(size, sizeof(size), "%ux%u", w, h);
	snprintf(n_s, sizeof(n_s), "%u", frames + 10);
	snprintf(prep, sizeof(prep), "%s/p", dir);
	snprintf(crep, sizeof(crep), "%s/c", dir);
	{
		char *pa[] = { "zcv-bench-gst", "producer", sock, size, n_s, "10", prep, NULL };
		char *ca[] = { "zcv-bench-gst", "consumer", sock, size, "10", crep, NULL };

		pids[0] = peer_spawn(exe, NULL, pa, &fds[0], NULL);
		if (pids[0] > 0 && wait_ready(fds[0], mono_ns() + 10 * NSEC))
			pids[1] = peer_spawn(exe, NULL, ca, &fds[1], NULL);
	}
	if (pids[0] <= 0 || pids[1] <= 0 || wait_children(pids, 2, 120000)) {
		snprintf(res->error, sizeof(res->error), "a GStreamer peer failed");
		goto out;
	}
	if (!read_peer_report(prep, &pr, &lat) || !read_peer_report(crep, &cr, &lat) || pr.bad ||
	    cr.bad || pr.frames < 2 || cr.frames < 2) {
		snprintf(res->error, sizeof(res->error), "a GStreamer peer: bad report");
		goto out;
	}
	res->sent = pr.frames;
	res->delivered = cr.frames;
	res->zero_copy = pr.memfd;
	res->prod_cpu_us = us_per(pr.cpu_ns, pr.frames);
	res->cons_cpu_us = us_per(cr.cpu_ns, cr.frames);
	res->fps = cr.wall_ns ? (double)(cr.frames - 1) / ((double)cr.wall_ns / 1e9) : 0;
	res->p50_us = (double)zcv_latency_percentile(&lat, 0.50) / 1e3;
	res->p99_us = (double)zcv_latency_percentile(&lat, 0.99) / 1e3;
	res->ok = true;
out:
	for (int i = 0; i < 2; i++) {
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
		if (fds[i] >= 0)
			close(fds[i]);
	}
	wait_children(pids, 2, 5000);
	rm_dir(dir);
	zcv_latency_finish(&lat);
}

/* --------------------------------------------------------------- report */

struct entry {
	struct run_cfg cfg;
	struct run_res res;
	const struct entry *copy; /* the copy-tier run of the same size/consumers/touch */
};

static struct entry *entries;
static size_t n_entries, cap_entries;

/* Room for one more element in a growing array (exits when out of memory:
 * the report could not be made anyway). */
static void *grow(void *arr, size_t n, size_t *cap, size_t elem)
{
	if (n == *cap) {
		size_t c = *cap ? 2 * *cap : 64;

		arr = realloc(arr, c * elem);
		if (!arr) {
			fprintf(stderr, TOOL ": out of memory\n");
			exit(1);
		}
		*cap = c;
	}
	return arr;
}

static struct entry *add_entry(const struct run_cfg *rc)
{
	entries = grow(entries, n_entries, &cap_entries, sizeof(*entries));
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

/* A failed run's object ends with its error; returns whether it was ok. */
static bool json_ok(FILE *f, bool ok, const char *error)
{
	if (ok)
		return true;
	fprintf(f, ", \"error\": ");
	json_str(f, error);
	fprintf(f, "}");
	return false;
}

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
	if (!json_ok(f, r->ok, r->error))
		return;
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

/* zcv zero-copy, touching nothing, a short unpaced phase, then n frames
 * paced at fps (0: lockstep): the zcv side of PipeWire's and syscall runs */
static struct run_cfg paced_cfg(uint32_t w, uint32_t h, unsigned n_cons, unsigned fps, unsigned n,
				const char *group)
{
	return (struct run_cfg){
		.w = w,
		.h = h,
		.n_cons = n_cons,
		.mode = MODE_ZEROCOPY,
		.touch = TOUCH_NONE,
		.prod_cpu = -1,
		.cons_cpu = -1,
		.placement = "free",
		.t1 = 0.05,
		.t2 = 1000,
		.min1 = 5,
		.max1 = 1000000,
		.min2 = n,
		.max2 = n,
		.paced_fps = fps,
		.group = group,
	};
}

/* a zcv run and a PipeWire run of the same shape */
struct pw_pair {
	struct pw_cfg cfg;
	struct pw_res pw;
	struct run_cfg zcv;
	struct run_res zres;
};

static struct pw_pair *pw_pairs;
static size_t n_pw_pairs, cap_pw_pairs;

static struct pw_pair *add_pw_pair(void)
{
	pw_pairs = grow(pw_pairs, n_pw_pairs, &cap_pw_pairs, sizeof(*pw_pairs));
	memset(&pw_pairs[n_pw_pairs], 0, sizeof(pw_pairs[0]));
	return &pw_pairs[n_pw_pairs++];
}

struct sc_row {
	unsigned fps;
	struct run_cfg zcv;
	struct run_res zres;
	bool have_pw;
	struct pw_cfg pwc;
	struct pw_res pwres;
};

static const char *pw_version(void)
{
	static char v[64];
	FILE *f = popen("pipewire --version 2>/dev/null | sed -n 's/.*libpipewire //p'", "re");

	if (!v[0]) {
		snprintf(v, sizeof(v), "?");
		if (f && fgets(v, sizeof(v), f))
			v[strcspn(v, "\n")] = 0;
	}
	if (f)
		pclose(f);
	return v;
}

static void print_pw_pair(const struct pw_pair *pp)
{
	const struct pw_res *p = &pp->pw;
	const struct run_res *z = &pp->zres;
	char size[24], pws[96], zs[96], rs[64] = "";

	snprintf(size, sizeof(size), "%ux%u", pp->cfg.w, pp->cfg.h);
	if (p->ok)
		snprintf(pws, sizeof(pws), "%6.1f %6.1f %5.1f %7.1f %7.1f %5.1f%%", p->prod_cpu_us,
			 p->cons_cpu_us, p->daemon_cpu_us, p->p50_us, p->p99_us,
			 100.0 * (double)p->delivered / (double)(p->sent * pp->cfg.n_cons));
	else
		snprintf(pws, sizeof(pws), "FAILED: %.33s", p->error);
	if (z->ok) {
		/* unpaced: zcv's lockstep phase is the like of a graph cycle */
		double zp = z->prod2_cpu_us, zc = z->cons2_cpu_us;

		snprintf(zs, sizeof(zs), "%6.1f %6.1f %8.1f %8.1f %5.1f%%", zp, zc, z->p50_us,
			 z->p99_us,
			 100.0 * (double)z->delivered2 / (double)(z->f2 * pp->cfg.n_cons));
		if (p->ok)
			snprintf(rs, sizeof(rs), "%5.2f %5.2f %5.2f", ratio(zp, p->prod_cpu_us),
				 ratio(zc, p->cons_cpu_us), ratio(z->p50_us, p->p50_us));
	} else {
		snprintf(zs, sizeof(zs), "n/a: %.28s", z->error);
	}
	printf("%-10s %3u %5u | %-41s | %-40s | %s\n", size, pp->cfg.n_cons, pp->cfg.fps, pws, zs,
	       rs);
	fflush(stdout);
}

static void json_pw_res(FILE *f, const struct pw_res *p)
{
	fprintf(f, "{\"ok\": %s", p->ok ? "true" : "false");
	if (!json_ok(f, p->ok, p->error))
		return;
	fprintf(f,
		", \"sent\": %" PRIu64 ", \"delivered\": %" PRIu64
		", \"memfd\": %s, \"fps\": %.1f, "
		"\"producer_cpu_us_per_frame\": %.3f, \"consumer_cpu_us_per_frame\": %.3f, "
		"\"daemon_cpu_us_per_frame\": %.3f, \"latency_us\": {\"p50\": %.2f, \"p99\": %.2f, "
		"\"max\": %.2f}",
		p->sent, p->delivered, p->memfd ? "true" : "false", jnum(p->fps),
		jnum(p->prod_cpu_us), jnum(p->cons_cpu_us), jnum(p->daemon_cpu_us), jnum(p->p50_us),
		jnum(p->p99_us), jnum(p->max_us));
	if (p->prod_syscalls >= 0)
		fprintf(f, ", \"syscalls_per_frame\": {\"producer\": %.3f, \"consumer\": %.3f}",
			p->prod_syscalls, p->cons_syscalls);
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
	fprintf(f,
		"Usage: " TOOL " [options]\n"
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
		"  --no-pw              skip the PipeWire runs (skipped anyway without\n"
		"                       zcv-bench-pw, pipewire and pw-link)\n"
		"  --no-syscalls        skip the syscall counts (strace)\n"
		"  --consumer-poll      zcv consumers poll, then zcv_client_dispatch() (the loop\n"
		"                       before issue 13) instead of zcv_client_wait_dispatch():\n"
		"                       the A side of an A/B\n"
		"  --help\n");
}

static const char *consumer_loop_name(void)
{
	return consumer_poll ? "poll+dispatch" : "wait_dispatch";
}

/* The producer's calls that are the library's: the server's socket calls.
 * The bench's own loop around it (pacing timerfd read, poll), the
 * server's epoll_wait per dispatch (not per consumer) and strace's
 * attach/detach are not among them. */
static const char *const prod_lib_calls[] = { "sendmsg", "recvmmsg", "recvmsg" };
/* The bench's own pacing loop: poll on timerfd + server, read of the tick. */
static const char *const prod_pacing_calls[] = { "poll", "read" };

static double sc_sum(const struct bench_trace_counts *c, const char *const *names, size_t n)
{
	long long sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += bench_trace_calls(c, names[i]);
	return (double)sum;
}

static double prod_lib_per_cons(const struct run_res *r, unsigned n_cons)
{
	return r->f2 ? sc_sum(&r->prod_sc, prod_lib_calls, ZCV_ARRAY_SIZE(prod_lib_calls)) /
			       (double)r->f2 / n_cons :
		       -1;
}

static double prod_pacing(const struct run_res *r)
{
	return r->f2 ? sc_sum(&r->prod_sc, prod_pacing_calls, ZCV_ARRAY_SIZE(prod_pacing_calls)) /
			       (double)r->f2 :
		       -1;
}

/* Calls per frame by name, most first, those under 0.005 left out. */
static void print_sc_names(const struct bench_trace_counts *c, double frames)
{
	bool done[BENCH_TRACE_MAX_NAMES] = { false };

	for (unsigned k = 0; k < c->n; k++) {
		int best = -1;

		for (unsigned i = 0; i < c->n; i++)
			if (!done[i] && (best < 0 || c->e[i].calls > c->e[best].calls))
				best = (int)i;
		done[best] = true;
		if ((double)c->e[best].calls / frames < 0.005)
			break;
		printf(" %s %.2f", c->e[best].name, (double)c->e[best].calls / frames);
	}
	printf("\n");
}

static void print_sc_detail(const struct run_res *r, unsigned n_cons)
{
	if (r->cons_traced && r->cons_sc.n) {
		printf("    consumer (%s) per frame:", consumer_loop_name());
		print_sc_names(&r->cons_sc, (double)r->cons_traced);
	}
	if (r->f2 && r->prod_sc.n) {
		printf("    producer process per frame:");
		print_sc_names(&r->prod_sc, (double)r->f2);
		printf("    producer library (sendmsg + recvmmsg + recvmsg) per consumer per frame "
		       "%.2f; server epoll_wait per frame %.2f; bench pacing (poll + read) per "
		       "frame %.2f\n",
		       prod_lib_per_cons(r, n_cons),
		       (double)bench_trace_calls(&r->prod_sc, "epoll_wait") / (double)r->f2,
		       prod_pacing(r));
	}
}

static void json_sc_names(FILE *f, const struct bench_trace_counts *c, double frames)
{
	fprintf(f, "{");
	for (unsigned i = 0; i < c->n; i++) {
		fprintf(f, "%s", i ? ", " : "");
		json_str(f, c->e[i].name);
		fprintf(f, ": %.3f", (double)c->e[i].calls / frames);
	}
	fprintf(f, "}");
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
		{ "no-pw", no_argument, NULL, 'W' },
		{ "no-syscalls", no_argument, NULL, 'S' },
		{ "consumer-poll", no_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const struct size cross_sizes[] = { { 64, 64 },    { 160, 120 },  { 320, 240 },
						   { 640, 480 },  { 1280, 720 }, { 1920, 1080 },
						   { 3840, 2160 } };
	struct size sizes[16] = { { 640, 480 }, { 1280, 720 }, { 1920, 1080 }, { 3840, 2160 } };
	unsigned n_sizes = 4, cons[16] = { 1, 2, 4, 8 }, n_cons_list = 4, n_buffers = 4;
	bool quick = false, gst = true, crossover = true, placement = true, pw = true,
	     syscalls = true;
	struct pw_daemon pwd = { .pid = 0 };
	char pw_skipped[160] = "";
	struct sc_row sc_rows[2];
	struct gshm_res gfair[16] = { 0 };
	bool gst_fair = true;
	unsigned n_sc = 0;
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
			gst_fair = false;
			break;
		case 'X':
			crossover = false;
			break;
		case 'P':
			placement = false;
			break;
		case 'W':
			pw = false;
			snprintf(pw_skipped, sizeof(pw_skipped), "--no-pw");
			break;
		case 'S':
			syscalls = false;
			break;
		case 'L':
			consumer_poll = true;
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

	printf("zcv-bench: NV12, memfd pool of 2 + a window of up to %u pre-rendered buffers per "
	       "consumer (fewer when 32 buffers cannot hold them all), unpaced producer; %ld "
	       "CPUs\n"
	       "prod/cons us: CPU time per frame (unpaced; cons = mean per consumer);\n"
	       "p50/p99/max: hand-off latency publish -> consumer callback, one frame in flight;\n"
	       "x/cp: ratio to the copy tier of the same size, consumers and touch.\n",
	       n_buffers, ncpu);

	/* Main matrix: unpinned (the scheduler places everything). */
	for (unsigned s = 0; s < n_sizes; s++) {
		for (unsigned ci = 0; ci < n_cons_list; ci++) {
			if (!zcv_fits(cons[ci])) {
				printf("\n== %ux%u, %u consumers: zcv skipped: a pool holds at "
				       "most %d "
				       "buffers (ZCV_POOL_MAX_BUFFERS), %u consumers need %u\n",
				       sizes[s].w, sizes[s].h, cons[ci], ZCV_POOL_MAX_BUFFERS,
				       cons[ci], cons[ci] + 2);
				continue;
			}
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

		nc = zcv_fits(nc) ? nc : ZCV_POOL_MAX_BUFFERS - 2;
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

	/* PipeWire side by side with zcv: same sizes and consumer counts, the
	 * same per-frame work (bench-peer.h), paced at 60 and 1000 fps and
	 * unpaced, each PipeWire run next to the zcv run of the same shape. */
	if (pw) {
		char why[160] = "";

		if (pw_daemon_start(&pwd, why, sizeof(why)) < 0) {
			printf("\n== PipeWire: skipped: %s\n", why[0] ? why : "cannot start");
			snprintf(pw_skipped, sizeof(pw_skipped), "%s",
				 why[0] ? why : "cannot start");
			pw = false;
		}
	}
	if (pw) {
		static const unsigned rates[] = { 60, 1000, 0 };

		printf("\n== PipeWire %s vs zcv, zero-copy memfd, header write/read per frame, "
		       "free "
		       "placement\n"
		       "rate 0: unpaced (PipeWire: next cycle on trigger_done; zcv: lockstep, one "
		       "frame in flight)\n"
		       "%-10s %3s %5s | %-41s | %-40s | %s\n",
		       pw_version(), "size", "n", "rate",
		       "PipeWire: prod/cons/daemon us, p50/p99, got",
		       "zcv: prod/cons us, p50/p99, got", "zcv/pw: prod cons p50");
		/* --quick: the first consumer count, 60 fps and unpaced */
		for (unsigned s = 0; s < n_sizes; s++)
			for (unsigned ci = 0; ci < (quick ? 1 : n_cons_list); ci++)
				for (unsigned k = 0; k < ZCV_ARRAY_SIZE(rates); k++) {
					struct pw_pair *pp;

					if (quick && rates[k] == 1000)
						continue;
					pp = add_pw_pair();
					unsigned n = rates[k] == 60   ? (quick ? 20 : 120) :
						     rates[k] == 1000 ? (quick ? 100 : 1000) :
									(quick ? 300 : 3000);

					pp->cfg = (struct pw_cfg){ .w = sizes[s].w,
								   .h = sizes[s].h,
								   .n_cons = cons[ci],
								   .fps = rates[k],
								   .frames = n + 10,
								   .warmup = 10 };
					pp->zcv = paced_cfg(sizes[s].w, sizes[s].h, cons[ci],
							    rates[k], n, "vs-pw");
					pp->zcv.allow_skip = rates[k] != 0;
					if (pw_run(&pwd, &pp->cfg, &pp->pw) < 0)
						failures++;
					/* too many consumers for a pool: says why */
					if (run_one(&pp->zcv, n_buffers, &pp->zres) < 0 &&
					    zcv_fits(cons[ci]))
						failures++;
					print_pw_pair(pp);
				}
	}

	/* Syscalls per frame, one consumer, 60 fps: strace -f -c attached to
	 * each process for the measured frames (separate runs: tracing
	 * distorts CPU time). A failure here is reported, not fatal. */
	if (syscalls && system("command -v strace >/dev/null") != 0) {
		printf("\n== syscalls: skipped: strace not installed\n");
		syscalls = false;
	}
	if (syscalls) {
		static const unsigned rates[] = { 60, 1000 };

		printf("\n== syscalls per frame (strace -f -c over the measured frames), %ux%u, 1 "
		       "consumer, zcv consumer loop %s (-1: strace could not attach)\n",
		       sizes[0].w, sizes[0].h, consumer_loop_name());
		for (unsigned k = 0; k < (quick ? 1 : ZCV_ARRAY_SIZE(rates)); k++) {
			struct sc_row *row = &sc_rows[n_sc++];
			unsigned n = rates[k] == 60 ? (quick ? 20 : 120) : (quick ? 100 : 1000);

			row->fps = rates[k];
			row->have_pw = false;
			row->zcv = paced_cfg(sizes[0].w, sizes[0].h, 1, rates[k], n, "syscalls");
			row->zcv.strace = true;
			run_one(&row->zcv, n_buffers, &row->zres);
			if (row->zres.ok) {
				printf("zcv      %4u fps: syscalls/frame producer %.2f, consumer "
				       "%.2f\n",
				       rates[k], row->zres.prod_syscalls, row->zres.cons_syscalls);
				print_sc_detail(&row->zres, 1);
			} else
				printf("zcv      %4u fps: FAILED: %s\n", rates[k], row->zres.error);
			if (!pw)
				continue;
			row->have_pw = true;
			row->pwc = (struct pw_cfg){ .w = sizes[0].w,
						    .h = sizes[0].h,
						    .n_cons = 1,
						    .fps = rates[k],
						    .frames = n + 10,
						    .warmup = 10,
						    .strace = true };
			pw_run(&pwd, &row->pwc, &row->pwres);
			if (row->pwres.ok)
				printf("PipeWire %4u fps: syscalls/frame producer %.2f, consumer "
				       "%.2f "
				       "(daemon not traced)\n",
				       rates[k], row->pwres.prod_syscalls,
				       row->pwres.cons_syscalls);
			else
				printf("PipeWire %4u fps: FAILED: %s\n", rates[k],
				       row->pwres.error);
			fflush(stdout);
		}
	}
	if (pw)
		pw_daemon_stop(&pwd);

	/* GStreamer shm, fair: the same per-frame work as zcv's (header write
	 * into a frame from shmsink's own allocator, read back), no render to
	 * subtract; next to zcv's unpaced zero-copy run of the same size. */
	if (gst_fair && !gst_peer()) {
		printf("\n== GStreamer shm (fair): skipped: zcv-bench-gst not built (no "
		       "gstreamer-app-1.0 at build time)\n");
		gst_fair = false;
	}
	if (gst_fair) {
		printf("\n== GStreamer shmsink -> shmsrc vs zcv, fair: header write/read per "
		       "frame, no "
		       "render, unpaced, 1 consumer, free placement\n"
		       "%-10s %6s | %-45s | %-17s | %s\n",
		       "size", "frames", "gst: prod/cons us, p50/p99 us, zero-copy, got",
		       "zcv: prod/cons us", "zcv/gst CPU");
		for (unsigned s = 0; s < n_sizes; s++) {
			const struct entry *z = find("matrix", sizes[s].w, sizes[s].h, 1,
						     MODE_ZEROCOPY, TOUCH_NONE, NULL);
			struct gshm_res *g = &gfair[s];
			unsigned n = quick ? 200 : 2000;
			char size[24];

			gshm_run(gst_peer(), sizes[s].w, sizes[s].h, n, g);
			snprintf(size, sizeof(size), "%ux%u", sizes[s].w, sizes[s].h);
			if (!g->ok) {
				printf("%-10s %6u | FAILED: %s\n", size, n, g->error);
				failures++;
				continue;
			}
			printf("%-10s %6u | %6.1f %6.1f %8.1f %8.1f %5" PRIu64 "/%-5" PRIu64
			       " %5" PRIu64 " | %8.2f %8.2f | %6.3f\n",
			       size, n, g->prod_cpu_us, g->cons_cpu_us, g->p50_us, g->p99_us,
			       g->zero_copy, g->sent, g->delivered, z ? z->res.prod_cpu_us : 0,
			       z ? z->res.cons_cpu_us : 0,
			       z ? ratio(z->res.prod_cpu_us + z->res.cons_cpu_us,
					 g->prod_cpu_us + g->cons_cpu_us) :
				   0);
			fflush(stdout);
		}
	}

	if (gst) {
		printf("\n== GStreamer 1.x shmsink -> shmsrc, legacy gst-launch-1.0 case (CPU from "
		       "rusage, free placement).\n"
		       "Not a transport figure: videotestsrc copies a cached pattern into every "
		       "frame and (a) is a run\nminus a videotestsrc ! fakesink run, which mixes "
		       "cache states; see the fair case above.\n");
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
			"\"memory\": \"memfd\", \"pre_rendered\": true, \"consumer_loop\": \"%s\"},"
			"\n \"runs\": [\n",
			n_buffers, seconds, consumer_loop_name());
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
		fprintf(f, "\n ],\n \"gstreamer_fair\": [");
		for (unsigned s = 0, k = 0; gst_fair && s < n_sizes; s++) {
			const struct gshm_res *g = &gfair[s];

			fprintf(f,
				"%s\n  {\"width\": %u, \"height\": %u, \"consumers\": 1, "
				"\"placement\": \"free\", \"ok\": %s",
				k++ ? "," : "", sizes[s].w, sizes[s].h, g->ok ? "true" : "false");
			if (g->ok)
				fprintf(f,
					", \"sent\": %" PRIu64 ", \"delivered\": %" PRIu64
					", \"zero_copy_frames\": %" PRIu64 ", \"fps\": %.1f, "
					"\"producer_cpu_us_per_frame\": %.3f, "
					"\"consumer_cpu_us_per_frame\": %.3f, \"latency_us\": "
					"{\"p50\": "
					"%.2f, \"p99\": %.2f}",
					g->sent, g->delivered, g->zero_copy, jnum(g->fps),
					jnum(g->prod_cpu_us), jnum(g->cons_cpu_us), jnum(g->p50_us),
					jnum(g->p99_us));
			fprintf(f, "}");
		}
		fprintf(f, "\n ],\n \"pipewire\": {\"skipped\": ");
		if (pw_skipped[0])
			json_str(f, pw_skipped);
		else
			fprintf(f, "null");
		fprintf(f, ", \"runs\": [");
		for (size_t i = 0; i < n_pw_pairs; i++) {
			const struct pw_pair *pp = &pw_pairs[i];
			struct entry ze = { .cfg = pp->zcv, .res = pp->zres };

			fprintf(f,
				"%s\n  {\"width\": %u, \"height\": %u, \"consumers\": %u, \"fps\": "
				"%u, \"placement\": \"free\", \"pipewire\": ",
				i ? "," : "", pp->cfg.w, pp->cfg.h, pp->cfg.n_cons, pp->cfg.fps);
			json_pw_res(f, &pp->pw);
			fprintf(f, ", \"zcv\": ");
			json_entry(f, &ze);
			fprintf(f, ", \"zcv_delivered\": %" PRIu64 "}", pp->zres.delivered2);
		}
		fprintf(f, "\n ]},\n \"syscalls\": [");
		for (unsigned i = 0; i < n_sc; i++) {
			const struct sc_row *row = &sc_rows[i];

			fprintf(f,
				"%s\n  {\"width\": %u, \"height\": %u, \"consumers\": 1, \"fps\": "
				"%u, "
				"\"zcv\": ",
				i ? "," : "", row->zcv.w, row->zcv.h, row->fps);
			if (row->zres.ok && row->zres.prod_syscalls >= 0 &&
			    row->zres.cons_syscalls >= 0) {
				const struct run_res *z = &row->zres;

				fprintf(f,
					"{\"ok\": true, \"producer\": %.3f, \"consumer\": %.3f, "
					"\"consumer_loop\": \"%s\"",
					z->prod_syscalls, z->cons_syscalls, consumer_loop_name());
				if (z->cons_traced && z->cons_sc.n) {
					fprintf(f, ", \"consumer_by_name\": ");
					json_sc_names(f, &z->cons_sc, (double)z->cons_traced);
				}
				if (z->f2 && z->prod_sc.n) {
					fprintf(f, ", \"producer_by_name\": ");
					json_sc_names(f, &z->prod_sc, (double)z->f2);
					fprintf(f,
						", \"producer_library_per_consumer\": %.3f, "
						"\"producer_epoll_wait\": %.3f, "
						"\"producer_pacing\": %.3f",
						prod_lib_per_cons(z, 1),
						(double)bench_trace_calls(&z->prod_sc,
									  "epoll_wait") /
							(double)z->f2,
						prod_pacing(z));
				}
				fprintf(f, "}");
			} else
				fprintf(f, "{\"ok\": false}");
			fprintf(f, ", \"pipewire\": ");
			if (!row->have_pw)
				fprintf(f, "null");
			else if (row->pwres.ok && row->pwres.prod_syscalls >= 0 &&
				 row->pwres.cons_syscalls >= 0)
				fprintf(f, "{\"ok\": true, \"producer\": %.3f, \"consumer\": %.3f}",
					row->pwres.prod_syscalls, row->pwres.cons_syscalls);
			else
				fprintf(f, "{\"ok\": false}");
			fprintf(f, "}");
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
	free(pw_pairs);
	return failures ? 1 : 0;
}
