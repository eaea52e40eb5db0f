/* SPDX-License-Identifier: MIT */
/* The sink interface and its loop (zcv_sink_run) against a real producer
 * (a zcv_server and a memfd pool on a thread of their own): frames in
 * order, done releases, decline, a sink that fails, the drain, the frame
 * limit, signals, a failing stream; the record sink end to end; the
 * encoder's default device. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <zcv/encode.h>
#include <zcv/memory.h>
#include <zcv/pool.h>
#include <zcv/record.h>
#include <zcv/server.h>
#include <zcv/sink.h>
#include "fdcheck.h"

#define N_BUFFERS 6

/* The producer thread cannot fail a cmocka test (that jumps into the
 * test's thread): it aborts, which fails the test program. */
#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "%s:%d: producer: %s failed\n", __FILE__, __LINE__, #x);   \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* ------------------------------------------------------------ producer */

/* A producer on its own thread: publishes n_frames frames, each only when
 * every consumer may take one more (so nobody is skipped and the
 * sequence has no gap), then ends the stream with end_error. */
struct producer {
	char dir[64], path[128];
	struct zcv_layout layout;
	struct zcv_pool *pool;
	struct zcv_server *srv;
	pthread_t thread;
	int stop_fd;
	unsigned n_frames, published;
	bool endless; /* never ends the stream */
	int end_error;
	const char *end_reason;
};

/* Byte i of plane p of frame seq. */
static uint8_t pattern(uint64_t seq, unsigned p, size_t i)
{
	return (uint8_t)(seq * 7 + p * 31 + i * 3);
}

static bool consumers_ready(struct producer *p)
{
	struct zcv_consumer_info all[8];
	unsigned n = zcv_server_get_consumers(p->srv, all, 8), streaming = 0;

	for (unsigned i = 0; i < n; i++) {
		if (all[i].state != ZCV_CONSUMER_STREAMING)
			continue;
		if (all[i].held >= all[i].max_hold)
			return false;
		streaming++;
	}
	return streaming > 0;
}

static void publish_one(struct producer *p)
{
	struct zcv_buffer *b = zcv_pool_acquire(p->pool);
	struct zcv_frame_meta meta = { .sequence = p->published, .timestamp_ns = zcv_now_ns() };

	CHECK(b);
	CHECK(zcv_pool_map(p->pool, b->index, PROT_READ | PROT_WRITE) == 0);
	for (unsigned pl = 0; pl < p->layout.n_planes; pl++) {
		uint8_t *d = zcv_buffer_plane(p->pool, b, pl);

		for (size_t i = 0; i < p->layout.planes[pl].size; i++)
			d[i] = pattern(p->published, pl, i);
	}
	/* 0 when the consumer hung up since the last dispatch */
	CHECK(zcv_server_publish(p->srv, b->index, &meta) >= 0);
	p->published++;
}

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	bool ended = false;

	for (;;) {
		struct pollfd pfd[2] = { { .fd = zcv_server_get_fd(p->srv), .events = POLLIN },
					 { .fd = p->stop_fd, .events = POLLIN } };

		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		zcv_server_dispatch(p->srv);
		while (!ended && p->published < p->n_frames && consumers_ready(p))
			publish_one(p);
		if (!ended && !p->endless && p->published == p->n_frames) {
			zcv_server_end(p->srv, p->end_error, p->end_reason);
			ended = true;
		}
	}
	return NULL;
}

static void producer_start(struct producer *p, unsigned n_frames)
{
	struct zcv_server_config cfg = { .max_hold = 2 };

	p->n_frames = n_frames;
	strcpy(p->dir, "/tmp/zcv-sink-XXXXXX");
	assert_non_null(mkdtemp(p->dir));
	snprintf(p->path, sizeof(p->path), "%s/s.sock", p->dir);
	cfg.socket_path = p->path;
	assert_int_equal(zcv_format_layout(ZCV_FMT_NV12, 64, 32, 64, &p->layout), 0);
	assert_int_equal(zcv_pool_create_memfd(&p->layout, N_BUFFERS, 1, &p->pool), 0);
	assert_int_equal(zcv_server_create(&cfg, NULL, NULL, p->pool, &p->srv), 0);
	p->stop_fd = eventfd(0, EFD_CLOEXEC);
	assert_true(p->stop_fd >= 0);
	assert_int_equal(pthread_create(&p->thread, NULL, producer_main, p), 0);
}

/* Stops the thread; the server handles what is still in its sockets. */
static void producer_stop(struct producer *p)
{
	uint64_t one = 1;

	assert_int_equal(write(p->stop_fd, &one, sizeof(one)), sizeof(one));
	assert_int_equal(pthread_join(p->thread, NULL), 0);
	zcv_server_dispatch(p->srv);
}

static void producer_finish(struct producer *p)
{
	zcv_server_destroy(p->srv);
	zcv_pool_destroy(p->pool);
	close(p->stop_fd);
	rmdir(p->dir);
}

/* Every buffer is back with the producer: each frame was released. */
static void assert_all_back(struct producer *p)
{
	assert_int_equal(zcv_pool_count(p->pool, ZCV_BUFFER_FREE), N_BUFFERS);
}

/* ------------------------------------------------------------ test sink */

struct tsink {
	struct zcv_sink *sink;
	struct zcv_client_format fmt;
	unsigned formats;
	uint64_t seqs[512];
	unsigned n; /* frames offered */
	unsigned mismatches;
	/* keep: hold the newest frame until the next one (or the drain) */
	bool keep;
	struct zcv_client_frame kept;
	bool have_kept;
	int efd;             /* readable: hand back what is kept */
	int fail_at;         /* >= 0: the frame op fails at this frame */
	bool fail_quietly;   /* ... without zcv_sink_fail */
	int format_error;    /* the format op returns it */
	bool decline_odd;    /* declines odd sequence numbers */
	int raise_at;        /* >= 0: raise SIGTERM at this frame */
	bool raise_in_drain; /* the drain raises SIGTERM and waits */
	int drain_mode;      /* 0 done at once, 1 done by dispatch, 2 never done */
	bool draining;
	unsigned drains, destroys;
	unsigned n_at_drain;
};

static void tsink_init(struct tsink *t)
{
	memset(t, 0, sizeof(*t));
	t->fail_at = -1;
	t->raise_at = -1;
	t->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	assert_true(t->efd >= 0);
}

static void kick(struct tsink *t)
{
	uint64_t one = 1;

	assert_int_equal(write(t->efd, &one, sizeof(one)), sizeof(one));
}

static int ts_format(void *data, const struct zcv_client_format *fmt)
{
	struct tsink *t = data;

	t->formats++;
	t->fmt = *fmt;
	return t->format_error;
}

static int ts_frame(void *data, const struct zcv_client_frame *f)
{
	struct tsink *t = data;
	unsigned k = t->n++;

	assert_true(k < 512);
	t->seqs[k] = f->sequence;
	assert_int_equal(zcv_sink_begin_access(t->sink, f), 0);
	for (unsigned p = 0; p < f->n_planes; p++)
		for (size_t i = 0; i < t->fmt.layout.planes[p].size; i++)
			if (f->planes[p][i] != pattern(f->sequence, p, i)) {
				t->mismatches++;
				break;
			}
	assert_int_equal(zcv_sink_end_access(t->sink, f), 0);
	if ((int)k == t->raise_at)
		raise(SIGTERM);
	if ((int)k == t->fail_at)
		return t->fail_quietly ? -EIO :
					 zcv_sink_fail(t->sink, -EIO, "disk full at %llu",
						       (unsigned long long)f->sequence);
	if (t->decline_odd && f->sequence % 2)
		return ZCV_SINK_DECLINE;
	if (!t->keep)
		return zcv_sink_done(t->sink, f);
	if (t->have_kept)
		assert_int_equal(zcv_sink_done(t->sink, &t->kept), 0);
	t->kept = *f;
	t->have_kept = true;
	return 0;
}

static int ts_get_fd(void *data, short *ret_events)
{
	struct tsink *t = data;

	*ret_events = POLLIN;
	return t->efd;
}

static int ts_dispatch(void *data)
{
	struct tsink *t = data;
	uint64_t v;

	assert_true(read(t->efd, &v, sizeof(v)) == sizeof(v));
	if (t->have_kept) {
		assert_int_equal(zcv_sink_done(t->sink, &t->kept), 0);
		t->have_kept = false;
	}
	return t->draining && t->drain_mode == 1 ? 1 : 0;
}

static int ts_drain(void *data)
{
	struct tsink *t = data;

	t->drains++;
	t->n_at_drain = t->n;
	t->draining = true;
	if (t->raise_in_drain)
		raise(SIGTERM);
	if (t->drain_mode == 0) {
		if (t->have_kept)
			assert_int_equal(zcv_sink_done(t->sink, &t->kept), 0);
		t->have_kept = false;
		return 1;
	}
	if (t->drain_mode == 1)
		kick(t);
	return 0;
}

static void ts_destroy(void *data)
{
	struct tsink *t = data;

	t->destroys++;
	close(t->efd);
}

static const struct zcv_sink_ops ts_ops = {
	.size = sizeof(struct zcv_sink_ops),
	.format = ts_format,
	.frame = ts_frame,
	.get_fd = ts_get_fd,
	.dispatch = ts_dispatch,
	.drain = ts_drain,
	.destroy = ts_destroy,
};

static void tsink_connect(struct tsink *t, struct producer *p)
{
	struct zcv_client_config cfg = { .size = sizeof(cfg),
					 .socket_path = p->path,
					 .name = "ts" };
	struct zcv_client *c = NULL;

	assert_int_equal(zcv_sink_create(&ts_ops, t, &t->sink), 0);
	assert_ptr_equal(zcv_sink_get_data(t->sink, &ts_ops), t);
	assert_null(zcv_sink_get_client(t->sink));
	assert_int_equal(zcv_sink_connect(t->sink, &cfg, &c), 0);
	assert_non_null(c);
	assert_ptr_equal(zcv_sink_get_client(t->sink), c);
	assert_int_equal(zcv_sink_connect(t->sink, &cfg, NULL), -EBUSY);
}

/* Starts a producer of n frames and connects the test sink to it. */
static void start(struct tsink *t, struct producer *p, unsigned n)
{
	producer_start(p, n);
	tsink_connect(t, p);
}

/* Stops the producer; with all_back, checks that every frame came back
 * before the sink (and its client) go. */
static void finish(struct tsink *t, struct producer *p, bool all_back)
{
	producer_stop(p);
	if (all_back)
		assert_all_back(p);
	zcv_sink_destroy(t->sink);
	producer_finish(p);
}

static void get_stats(struct tsink *t, struct zcv_sink_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	assert_int_equal(zcv_sink_get_stats(t->sink, st), 0);
}

/* ------------------------------------------------------------ tests */

static void test_frames_in_order(void **state)
{
	struct producer p = { .end_reason = "end of stream" };
	struct tsink t;
	struct zcv_sink_stats st;
	const char *reason, *text;
	uint64_t copied = zcv_copied_bytes_get();

	tsink_init(&t);
	t.keep = true; /* each frame handed back when the next came, the last by the drain */
	start(&t, &p, 40);
	assert_int_equal(zcv_sink_run(t.sink, NULL), 0);
	assert_int_equal(zcv_sink_run(t.sink, NULL), -EBUSY); /* once */
	assert_int_equal(t.formats, 1);
	assert_int_equal(t.n, 40);
	for (unsigned k = 0; k < 40; k++)
		assert_int_equal(t.seqs[k], k);
	assert_int_equal(t.mismatches, 0);
	assert_int_equal(t.drains, 1);
	assert_int_equal(t.n_at_drain, 40);
	assert_false(t.have_kept);
	assert_int_equal(zcv_client_held(zcv_sink_get_client(t.sink)), 0);
	get_stats(&t, &st);
	assert_int_equal(st.frames, 40);
	assert_int_equal(st.released, 40);
	assert_int_equal(st.declined + st.discarded + st.dropped, 0);
	assert_int_equal(st.path, ZCV_PATH_MEMFD);
	assert_true(st.first_ns && st.first_ns < st.last_ns);
	assert_true(st.latency_max_ns >= st.latency_p99_ns &&
		    st.latency_p99_ns >= st.latency_p50_ns);
	assert_true(st.latency_max_ns > 0);
	/* zero copy everywhere; the figure is this process's count */
	assert_int_equal(st.copied_bytes, copied);
	assert_int_equal(zcv_copied_bytes_get(), copied);
	assert_int_equal(zcv_sink_stream_error(t.sink, &reason), 0);
	assert_string_equal(reason, "end of stream");
	assert_int_equal(zcv_sink_error(t.sink, &text), 0);
	assert_string_equal(text, "");
	/* done released every frame: the producer has all its buffers back */
	finish(&t, &p, true);
	assert_int_equal(t.destroys, 1);
}

static void test_frame_limit(void **state)
{
	struct producer p = { .endless = true };
	struct zcv_sink_run_config run = { .size = sizeof(run), .max_frames = 10 };
	struct tsink t;
	struct zcv_sink_stats st;
	const char *reason;

	tsink_init(&t);
	start(&t, &p, 1000);
	assert_int_equal(zcv_sink_run(t.sink, &run), 0);
	assert_int_equal(t.n, 10);
	assert_int_equal(t.drains, 1);
	get_stats(&t, &st);
	assert_int_equal(st.frames, 10);
	assert_int_equal(st.released, 10);
	/* the stream goes on: not its end, not its failure */
	assert_int_equal(zcv_sink_stream_error(t.sink, &reason), 0);
	assert_string_equal(reason, "");
	assert_int_equal(zcv_client_held(zcv_sink_get_client(t.sink)), 0);
	finish(&t, &p, false);
}

static void test_decline(void **state)
{
	struct producer p = { 0 };
	struct tsink t;
	struct zcv_sink_stats st;

	tsink_init(&t);
	t.decline_odd = true;
	start(&t, &p, 20);
	assert_int_equal(zcv_sink_run(t.sink, NULL), 0);
	get_stats(&t, &st);
	assert_int_equal(t.n, 20);
	assert_int_equal(st.frames, 10);
	assert_int_equal(st.declined, 10);
	assert_int_equal(st.released, 10);
	finish(&t, &p, true); /* the run released the declined ones */
}

static void test_sink_fails(void **state)
{
	struct producer p = { .endless = true };
	struct tsink t;
	struct zcv_sink_stats st;
	const char *text;

	/* the frame op fails at frame 5, saying why */
	tsink_init(&t);
	t.keep = true;
	t.fail_at = 5;
	start(&t, &p, 1000);
	assert_int_equal(zcv_sink_run(t.sink, NULL), -EIO);
	assert_int_equal(zcv_sink_error(t.sink, &text), -EIO);
	assert_string_equal(text, "disk full at 5");
	assert_int_equal(zcv_sink_stream_error(t.sink, NULL), 0);
	assert_int_equal(t.n, 6); /* nothing after the failure */
	assert_int_equal(t.drains, 1);
	get_stats(&t, &st);
	assert_int_equal(st.frames, 5);
	/* the failed frame went back with the run, the kept one with the drain */
	assert_int_equal(zcv_client_held(zcv_sink_get_client(t.sink)), 0);
	finish(&t, &p, false);
}

static void test_sink_fails_quietly(void **state)
{
	struct producer p = { .endless = true };
	struct tsink t;
	const char *text;

	tsink_init(&t);
	t.fail_at = 2;
	t.fail_quietly = true;
	start(&t, &p, 1000);
	assert_int_equal(zcv_sink_run(t.sink, NULL), -EIO);
	assert_int_equal(zcv_sink_error(t.sink, &text), -EIO);
	assert_non_null(strstr(text, "frame 2"));
	assert_int_equal(zcv_client_held(zcv_sink_get_client(t.sink)), 0);
	finish(&t, &p, false);
}

static void test_format_refused(void **state)
{
	struct producer p = { 0 };
	struct tsink t;
	const char *text;

	tsink_init(&t);
	t.format_error = -ENOTSUP;
	start(&t, &p, 5);
	assert_int_equal(zcv_sink_run(t.sink, NULL), -ENOTSUP);
	assert_int_equal(zcv_sink_error(t.sink, &text), -ENOTSUP);
	assert_non_null(strstr(text, "format"));
	assert_int_equal(t.n, 0);
	assert_int_equal(t.drains, 1);
	finish(&t, &p, false);
}

/* The drain finishes from the sink's own fd: only then does the run end,
 * with everything handed back. */
static void test_drain(void **state)
{
	struct producer p = { 0 };
	struct tsink t;

	tsink_init(&t);
	t.keep = true;
	t.drain_mode = 1;
	start(&t, &p, 12);
	assert_int_equal(zcv_sink_run(t.sink, NULL), 0);
	assert_int_equal(t.drains, 1);
	assert_int_equal(t.n_at_drain, 12);
	assert_false(t.have_kept);
	assert_int_equal(zcv_client_held(zcv_sink_get_client(t.sink)), 0);
	finish(&t, &p, true);
}

static void test_drain_timeout(void **state)
{
	struct producer p = { 0 };
	struct zcv_sink_run_config run = { .size = sizeof(run), .drain_timeout_ms = 30 };
	struct tsink t;
	const char *text;

	tsink_init(&t);
	t.keep = true;
	t.drain_mode = 2;
	start(&t, &p, 3);
	assert_int_equal(zcv_sink_run(t.sink, &run), -ETIMEDOUT);
	assert_int_equal(zcv_sink_error(t.sink, &text), -ETIMEDOUT);
	assert_non_null(strstr(text, "draining"));
	/* the stream itself ended well */
	assert_int_equal(zcv_sink_stream_error(t.sink, NULL), 0);
	assert_true(t.have_kept); /* the client reclaims it when it goes */
	finish(&t, &p, false);
}

static void unblock_term(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	assert_int_equal(pthread_sigmask(SIG_UNBLOCK, &set, NULL), 0);
}

static bool term_blocked(void)
{
	sigset_t set;

	assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &set), 0);
	return sigismember(&set, SIGTERM) == 1;
}

/* SIGTERM stops the run cleanly: the drain runs, the result is 0. */
static void test_signal(void **state)
{
	struct producer p = { .endless = true };
	struct zcv_sink_run_config run = { .size = sizeof(run), .handle_signals = true };
	struct tsink t;
	struct zcv_sink_stats st;

	tsink_init(&t);
	t.raise_at = 3;
	start(&t, &p, 1000);
	assert_int_equal(zcv_sink_run(t.sink, &run), 0);
	assert_true(term_blocked()); /* as documented: a late one cannot kill us */
	unblock_term();
	assert_int_equal(t.drains, 1);
	get_stats(&t, &st);
	assert_true(st.frames >= 4);
	assert_int_equal(st.released, st.frames);
	assert_int_equal(zcv_sink_error(t.sink, NULL), 0);
	assert_int_equal(zcv_sink_stream_error(t.sink, NULL), 0);
	finish(&t, &p, false);
}

/* A second signal during a drain that would never finish stops at once. */
static void test_second_signal(void **state)
{
	struct producer p = { .endless = true };
	struct zcv_sink_run_config run = { .size = sizeof(run), .handle_signals = true };
	struct tsink t;

	tsink_init(&t);
	t.raise_at = 2;
	t.raise_in_drain = true;
	t.drain_mode = 2;
	start(&t, &p, 1000);
	assert_int_equal(zcv_sink_run(t.sink, &run), 0);
	unblock_term();
	assert_int_equal(t.drains, 1);
	assert_int_equal(zcv_sink_error(t.sink, NULL), 0);
	finish(&t, &p, false);
}

/* The producer fails the stream: the run says so, with its reason. */
static void test_stream_fails(void **state)
{
	struct producer p = { .end_error = -ENODEV, .end_reason = "capture device disconnected" };
	struct tsink t;
	const char *reason;

	tsink_init(&t);
	start(&t, &p, 5);
	assert_int_equal(zcv_sink_run(t.sink, NULL), -ENODEV);
	assert_int_equal(zcv_sink_stream_error(t.sink, &reason), -ENODEV);
	assert_non_null(strstr(reason, "disconnected"));
	assert_int_equal(zcv_sink_error(t.sink, NULL), 0);
	/* frames the producer sent just before failing are not delivered */
	assert_true(t.n >= 1 && t.n <= 5);
	for (unsigned k = 0; k < t.n; k++)
		assert_int_equal(t.seqs[k], k);
	assert_int_equal(t.drains, 1);
	finish(&t, &p, false);
}

static int frame_only(void *data, const struct zcv_client_frame *f)
{
	return 0;
}

static void test_api_errors(void **state)
{
	struct zcv_sink_ops ops = { .size = sizeof(ops), .frame = frame_only };
	struct {
		struct zcv_sink_ops ops;
		uint64_t future;
	} newer = { .ops = ops, .future = 1 };
	struct zcv_sink_ops no_frame = { .size = sizeof(no_frame) };
	struct zcv_sink_ops no_dispatch = { .size = sizeof(no_dispatch),
					    .frame = frame_only,
					    .get_fd = ts_get_fd };
	struct zcv_sink_ops no_size = { .frame = frame_only };
	struct zcv_client_config cfg = { .size = sizeof(cfg),
					 .socket_path = "/nonexistent-zcv/s.sock" };
	struct {
		size_t size;
		uint64_t frames;
	} old_stats = { sizeof(old_stats), 77 };
	struct zcv_sink_stats st = { 0 };
	struct zcv_sink *s = NULL;

	assert_int_equal(zcv_sink_create(NULL, NULL, &s), -EINVAL);
	assert_int_equal(zcv_sink_create(&no_size, NULL, &s), -EINVAL);
	assert_int_equal(zcv_sink_create(&no_frame, NULL, &s), -EINVAL);
	assert_int_equal(zcv_sink_create(&no_dispatch, NULL, &s), -EINVAL);
	newer.ops.size = sizeof(newer);
	assert_int_equal(zcv_sink_create(&newer.ops, NULL, &s), -E2BIG);
	newer.future = 0; /* a newer header, nothing new asked for */
	assert_int_equal(zcv_sink_create(&newer.ops, NULL, &s), 0);
	zcv_sink_destroy(s);
	assert_null(zcv_sink_get_data(NULL, &ops));
	assert_int_equal(zcv_sink_create(&ops, &ops, &s), 0);
	assert_null(zcv_sink_get_data(s, &no_frame));
	assert_int_equal(zcv_sink_run(s, NULL), -EBUSY); /* no client */
	assert_int_equal(zcv_sink_connect(s, &cfg, NULL), -ENOENT);
	assert_null(zcv_sink_get_client(s));
	assert_int_equal(zcv_sink_run(s, NULL), -EBUSY);
	assert_int_equal(zcv_sink_done(s, &(struct zcv_client_frame){ 0 }), -EINVAL);
	assert_int_equal(zcv_sink_get_stats(s, &st), -EINVAL); /* no size */
	/* an older, shorter stats struct gets what it has room for */
	assert_int_equal(zcv_sink_get_stats(s, (struct zcv_sink_stats *)&old_stats), 0);
	assert_int_equal(old_stats.size, sizeof(old_stats));
	assert_int_equal(old_stats.frames, 0);
	zcv_sink_destroy(s);
	zcv_sink_destroy(NULL);
}

/* The record sink end to end: every frame in the file, read inside the
 * access bracket, handed back at once, nothing copied. */
static void test_record_sink(void **state)
{
	struct producer p = { 0 };
	struct zcv_client_config cfg = { .size = sizeof(cfg), .name = "rec" };
	struct zcv_record *rec;
	struct zcv_sink *sink;
	struct zcv_sink_stats st = { .size = sizeof(st) };
	char file[160];
	const char hdr[] = "YUV4MPEG2 W64 H32 F30:1 Ip A1:1 C420jpeg\n";
	size_t frame = 6 + 64 * 32 * 3 / 2;
	uint64_t copied = zcv_copied_bytes_get();
	uint8_t *got;
	struct stat sb;
	FILE *f;

	producer_start(&p, 8);
	snprintf(file, sizeof(file), "%s/out.y4m", p.dir);
	cfg.socket_path = p.path;
	assert_int_equal(zcv_record_create(file, false, &rec), 0);
	assert_int_equal(zcv_record_sink_create(rec, &sink), 0);
	assert_int_equal(zcv_sink_connect(sink, &cfg, NULL), 0);
	assert_int_equal(zcv_sink_run(sink, NULL), 0);
	assert_int_equal(zcv_sink_get_stats(sink, &st), 0);
	assert_int_equal(st.frames, 8);
	assert_int_equal(st.released, 8);
	assert_int_equal(st.copied_bytes, copied); /* de-interleaving is converted_bytes */
	assert_int_equal(zcv_record_frames(rec), 8);
	assert_true(zcv_record_converted_bytes(rec) > 0);
	producer_stop(&p);
	assert_all_back(&p);
	zcv_sink_destroy(sink);
	assert_int_equal(zcv_record_destroy(rec), 0);
	assert_int_equal(stat(file, &sb), 0);
	assert_int_equal((size_t)sb.st_size, sizeof(hdr) - 1 + 8 * frame);
	/* frame 3's luma is the pattern's plane 0 */
	got = malloc(frame);
	assert_non_null(got);
	f = fopen(file, "re");
	assert_non_null(f);
	assert_int_equal(fseek(f, (long)(sizeof(hdr) - 1 + 3 * frame), SEEK_SET), 0);
	assert_int_equal(fread(got, 1, frame, f), frame);
	fclose(f);
	assert_memory_equal(got, "FRAME\n", 6);
	for (size_t i = 0; i < 64 * 32; i++)
		assert_int_equal(got[6 + i], pattern(3, 0, i));
	free(got);
	unlink(file);
	producer_finish(&p);
}

/* encode.h: a NULL device picks the first encoder zcv_encoder_find()
 * finds; without one, the create says what it looked at. */
static void test_encoder_default_device(void **state)
{
	struct zcv_encoder_config cfg = { 0 };
	struct zcv_encode_sink_config scfg = { 0 };
	struct zcv_encode_sink_stats es;
	struct zcv_encoder *enc = NULL;
	struct zcv_sink *sink = NULL;
	const char *why = NULL;
	char path[256];
	int found = zcv_encoder_find(0, path, sizeof(path), NULL);
	int r = zcv_encoder_create(&cfg, NULL, NULL, &enc, &why);

	if (found == 0) {
		assert_int_equal(r, 0);
		assert_string_equal(zcv_encoder_device(enc), path);
		zcv_encoder_destroy(enc);
	} else {
		assert_int_equal(r, found);
		assert_null(enc);
		assert_non_null(strstr(why, "no V4L2 encoder found"));
	}
	r = zcv_encode_sink_create(&cfg, &scfg, &sink, &enc, &why);
	if (found == 0) {
		assert_int_equal(r, 0);
		assert_int_equal(zcv_encode_sink_get_stats(sink, &es), 0);
		assert_int_equal(es.frames_in, 0);
		assert_false(es.keyframes_known);
		zcv_sink_destroy(sink);
	} else {
		assert_int_equal(r, found);
		assert_null(sink);
	}
	assert_int_equal(zcv_encoder_create(NULL, NULL, NULL, &enc, NULL), -EINVAL);
}

/* The encode sink's calls refuse a sink that is not one. */
static void test_encode_sink_type(void **state)
{
	struct zcv_sink_ops ops = { .size = sizeof(ops), .frame = frame_only };
	struct zcv_encode_sink_stats es;
	struct zcv_sink *s;

	assert_int_equal(zcv_sink_create(&ops, NULL, &s), 0);
	assert_int_equal(zcv_encode_sink_get_stats(s, &es), -EINVAL);
	assert_int_equal(zcv_encode_sink_set_output(s, 1), -EINVAL);
	zcv_sink_destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, zcv_test_fd_setup, zcv_test_fd_teardown)
		T(test_frames_in_order),
		T(test_frame_limit),
		T(test_decline),
		T(test_sink_fails),
		T(test_sink_fails_quietly),
		T(test_format_refused),
		T(test_drain),
		T(test_drain_timeout),
		T(test_signal),
		T(test_second_signal),
		T(test_stream_fails),
		T(test_api_errors),
		T(test_record_sink),
		T(test_encoder_default_device),
		T(test_encode_sink_type),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
