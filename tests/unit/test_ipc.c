/* SPDX-License-Identifier: MIT */
/* Server and client in one process over a real socket: handshake, frame
 * delivery, hold/release accounting, eviction, the copy tier, pool
 * generations, and fake peers that break the protocol. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <grp.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <pthread.h>
#include <cmocka.h>
#include <zcv/client.h>
#include <zcv/memory.h>
#include <zcv/pool.h>
#include <zcv/server.h>
#include "fake_producer.h"
#include "fdcheck.h"
#include "protocol.h"
#include "wire.h"

#define MAX_SINKS 4
#define MAX_HELD 64

struct sink {
	struct zcv_client *c;
	bool manual; /* keep frames until the test releases them */
	int formats;
	struct zcv_client_format fmt;
	unsigned n_frames;
	uint64_t seqs[256];
	unsigned mismatches;
	struct zcv_client_frame held[MAX_HELD];
	unsigned n_held;
	bool closed;
	int closed_error;
	char closed_reason[64];
	int result;      /* first non-zero dispatch result */
	char sources[8]; /* source callbacks in order: 'g' gone, 'b' back */
	unsigned n_sources;
	unsigned formats_at_source[8];
};

struct env {
	char dir[64];
	char path[128];
	struct zcv_pool *pool;
	struct zcv_server *srv;
	unsigned freed;
	unsigned joined, left;
	struct zcv_consumer_info last_left;
	struct sink sinks[MAX_SINKS];
};

static void on_free(void *data, struct zcv_pool *pool, struct zcv_buffer *buf)
{
	struct env *e = data;

	e->freed++;
}

static void on_joined(void *data, const struct zcv_consumer_info *info)
{
	struct env *e = data;

	e->joined++;
}

static void on_left(void *data, const struct zcv_consumer_info *info)
{
	struct env *e = data;

	e->left++;
	e->last_left = *info;
}

static const struct zcv_server_callbacks server_cbs = {
	.consumer_joined = on_joined,
	.consumer_left = on_left,
};

/* Byte i of plane p of frame seq. */
static uint8_t pattern(uint64_t seq, unsigned p, size_t i)
{
	return (uint8_t)(seq * 7 + p * 31 + i * 3);
}

static void sink_format(void *data, const struct zcv_client_format *fmt)
{
	struct sink *s = data;

	s->formats++;
	s->fmt = *fmt;
}

static void sink_frame(void *data, const struct zcv_client_frame *fr)
{
	struct sink *s = data;

	if (s->n_frames < ZCV_ARRAY_SIZE(s->seqs))
		s->seqs[s->n_frames] = fr->sequence;
	s->n_frames++;
	for (unsigned p = 0; p < fr->n_planes; p++) {
		size_t size = s->fmt.layout.planes[p].size;

		if (!fr->planes[p]) {
			s->mismatches++;
			continue;
		}
		for (size_t i = 0; i < size; i++)
			if (fr->planes[p][i] != pattern(fr->sequence, p, i)) {
				s->mismatches++;
				break;
			}
	}
	if (s->manual) {
		assert_true(s->n_held < MAX_HELD);
		s->held[s->n_held++] = *fr;
	} else {
		assert_int_equal(zcv_client_release(s->c, fr), 0);
	}
}

static void sink_closed(void *data, int error, const char *reason)
{
	struct sink *s = data;

	assert_false(s->closed); /* once */
	s->closed = true;
	s->closed_error = error;
	snprintf(s->closed_reason, sizeof(s->closed_reason), "%s", reason);
}

static void sink_source(void *data, bool present, const char *reason)
{
	struct sink *s = data;

	assert_true(s->n_sources < sizeof(s->sources));
	assert_non_null(reason);
	s->formats_at_source[s->n_sources] = (unsigned)s->formats;
	s->sources[s->n_sources++] = present ? 'b' : 'g';
}

static const struct zcv_client_callbacks sink_cbs = {
	.size = sizeof(struct zcv_client_callbacks),
	.format = sink_format,
	.frame = sink_frame,
	.closed = sink_closed,
	.source = sink_source,
};

static void layout_nv12(struct zcv_layout *l)
{
	assert_int_equal(zcv_format_layout(ZCV_FMT_NV12, 64, 32, 64, l), 0);
}

static uint64_t frame_bytes(const struct zcv_layout *l)
{
	uint64_t n = 0;

	for (unsigned p = 0; p < l->n_planes; p++)
		n += l->planes[p].size;
	return n;
}

static void env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	strcpy(e->dir, "/tmp/zcv-test-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/s.sock", e->dir);
}

static struct zcv_pool *make_pool(struct env *e, const struct zcv_layout *l, unsigned n,
				  uint32_t generation)
{
	struct zcv_pool *pool = NULL;

	assert_int_equal(zcv_pool_create_memfd(l, n, generation, &pool), 0);
	pool->on_free = on_free;
	pool->on_free_data = e;
	return pool;
}

static void env_start(struct env *e, struct zcv_server_config *cfg, unsigned n_buffers)
{
	struct zcv_server_config def = { 0 };
	struct zcv_layout l;

	if (!cfg)
		cfg = &def;
	cfg->socket_path = e->path;
	layout_nv12(&l);
	e->pool = make_pool(e, &l, n_buffers, 1);
	assert_int_equal(zcv_server_create(cfg, &server_cbs, e, e->pool, &e->srv), 0);
}

static void env_finish(struct env *e)
{
	for (int i = 0; i < MAX_SINKS; i++)
		zcv_client_destroy(e->sinks[i].c);
	zcv_server_destroy(e->srv);
	zcv_pool_destroy(e->pool);
	rmdir(e->dir);
}

static struct sink *sink_connect(struct env *e, int i, uint32_t caps, unsigned max_hold,
				 bool manual)
{
	struct sink *s = &e->sinks[i];
	char name[16];
	struct zcv_client_config cfg = {
		.size = sizeof(struct zcv_client_config),
		.socket_path = e->path,
		.name = name,
		.caps = caps,
		.constraints.hold = max_hold,
	};

	snprintf(name, sizeof(name), "sink%d", i);
	memset(s, 0, sizeof(*s));
	s->manual = manual;
	assert_int_equal(zcv_client_connect(&cfg, &sink_cbs, s, &s->c), 0);
	return s;
}

static void sink_drop(struct sink *s)
{
	zcv_client_destroy(s->c);
	s->c = NULL;
}

/* Drives both ends until nothing more happens. */
static void pump(struct env *e)
{
	for (int round = 0; round < 8; round++) {
		assert_int_equal(zcv_server_dispatch(e->srv), 0);
		for (int i = 0; i < MAX_SINKS; i++) {
			struct sink *s = &e->sinks[i];
			int r;

			if (!s->c || s->result)
				continue;
			r = zcv_client_dispatch(s->c);
			if (r)
				s->result = r;
		}
	}
}

/* Fills a free buffer with frame seq and publishes it. */
static int produce(struct env *e, uint64_t seq)
{
	struct zcv_pool *pool = e->pool;
	struct zcv_buffer *b = zcv_pool_acquire(pool);
	struct zcv_frame_meta meta = { .sequence = seq, .timestamp_ns = zcv_now_ns() };

	if (!b)
		return -ENOBUFS;
	assert_int_equal(zcv_pool_map(pool, b->index, PROT_READ | PROT_WRITE), 0);
	for (unsigned p = 0; p < pool->layout.n_planes; p++) {
		uint8_t *d = zcv_buffer_plane(pool, b, p);

		for (size_t i = 0; i < pool->layout.planes[p].size; i++)
			d[i] = pattern(seq, p, i);
	}
	return zcv_server_publish(e->srv, b->index, &meta);
}

static void sink_release_all(struct sink *s)
{
	for (unsigned i = 0; i < s->n_held; i++)
		assert_int_equal(zcv_client_release(s->c, &s->held[i]), 0);
	s->n_held = 0;
}

static bool get_info(struct env *e, unsigned id, struct zcv_consumer_info *ret)
{
	struct zcv_consumer_info all[80];
	unsigned n = zcv_server_get_consumers(e->srv, all, ZCV_ARRAY_SIZE(all));

	for (unsigned i = 0; i < n; i++)
		if (all[i].id == id) {
			*ret = all[i];
			return true;
		}
	return false;
}

static void test_handshake(void **state)
{
	struct env e;
	struct zcv_server_config cfg = {
		.fps_num = 30,
		.fps_den = 1,
		.colorspace = 8,
		.modifier = 0,
		.max_hold = 3,
	};
	struct zcv_consumer_info info;
	struct sink *s;
	static const uint8_t zero[16];

	env_init(&e);
	/* 6 buffers: a budget of 4 (the source keeps 2) for the grants below */
	env_start(&e, &cfg, 6);
	assert_string_equal(zcv_server_socket_path(e.srv), e.path);
	assert_true(zcv_server_get_fd(e.srv) >= 0);
	s = sink_connect(&e, 0, 0, 0, false);
	assert_null(zcv_client_get_format(s->c));
	assert_true(zcv_client_get_fd(s->c) >= 0);
	pump(&e);
	assert_int_equal(s->formats, 1);
	assert_int_equal(s->result, 0);
	assert_int_equal(s->fmt.path, 2);
	assert_string_equal(zcv_path_name(s->fmt.path), "memfd");
	assert_int_equal(s->fmt.version, ZCV_PROTOCOL_VERSION);
	assert_memory_equal(&s->fmt.layout, &e.pool->layout, sizeof(struct zcv_layout));
	assert_int_equal(s->fmt.n_buffers, 6);
	assert_int_equal(s->fmt.generation, 1);
	/* it asked for no number: the max_hold set, 3 */
	assert_int_equal(s->fmt.max_hold, 3);
	assert_int_equal(s->fmt.fps_num, 30);
	assert_int_equal(s->fmt.fps_den, 1);
	assert_int_equal(s->fmt.colorspace, 8);
	assert_int_equal(s->fmt.modifier, 0);
	assert_memory_not_equal(s->fmt.stream_id, zero, 16);
	assert_non_null(zcv_client_get_format(s->c));
	assert_memory_equal(zcv_client_get_format(s->c), &s->fmt, sizeof(s->fmt));
	assert_int_equal(e.joined, 1);
	assert_int_equal(zcv_server_streaming_count(e.srv), 1);
	assert_true(get_info(&e, 1, &info));
	assert_string_equal(info.name, "sink0");
	assert_int_equal(info.pid, getpid());
	assert_int_equal(info.uid, geteuid());
	assert_int_equal(info.state, ZCV_CONSUMER_STREAMING);
	assert_int_equal(info.path, 2);
	assert_int_equal(info.max_hold, 3);

	/* a second client asking for 1 gets 1; the stream id is the server's */
	sink_connect(&e, 1, ZCV_CAP_MEMFD, 1, false);
	pump(&e);
	assert_int_equal(e.sinks[1].fmt.max_hold, 1);
	assert_memory_equal(e.sinks[1].fmt.stream_id, s->fmt.stream_id, 16);

	assert_string_equal(zcv_path_name(1), "dmabuf");
	assert_string_equal(zcv_path_name(3), "copy");
	assert_string_equal(zcv_path_name(0), "unknown");
	env_finish(&e);
}

static void test_frames_in_order(void **state)
{
	struct env e;
	uint64_t copied = zcv_copied_bytes_get();

	env_init(&e);
	env_start(&e, NULL, 6); /* budget 4: both zero-copy */
	sink_connect(&e, 0, 0, 0, false);
	sink_connect(&e, 1, 0, 0, false);
	pump(&e);
	for (uint64_t seq = 1; seq <= 20; seq++) {
		assert_int_equal(produce(&e, seq), 2);
		pump(&e);
	}
	for (int i = 0; i < 2; i++) {
		struct sink *s = &e.sinks[i];

		assert_int_equal(s->result, 0);
		assert_int_equal(s->n_frames, 20);
		assert_int_equal(s->mismatches, 0);
		for (unsigned k = 0; k < 20; k++)
			assert_int_equal(s->seqs[k], k + 1);
		assert_int_equal(zcv_client_dropped(s->c), 0);
		assert_int_equal(zcv_client_held(s->c), 0);
	}
	assert_int_equal(zcv_pool_count(e.pool, ZCV_BUFFER_FREE), 6);
	assert_int_equal(e.freed, 20);
	/* zero-copy: nothing was copied anywhere */
	assert_int_equal(zcv_copied_bytes_get(), copied);
	assert_int_equal(zcv_server_copied_bytes(e.srv), 0);
	env_finish(&e);
}

/* Without consumers a published buffer is free at once. */
static void test_publish_nobody(void **state)
{
	struct env e;
	struct zcv_buffer *b;

	env_init(&e);
	env_start(&e, NULL, 2);
	assert_int_equal(produce(&e, 1), 0);
	assert_int_equal(e.freed, 1);
	assert_int_equal(zcv_pool_count(e.pool, ZCV_BUFFER_FREE), 2);
	/* a buffer that is not the producer's cannot be published */
	assert_int_equal(zcv_server_publish(e.srv, 0, NULL), -EINVAL);
	assert_int_equal(zcv_server_publish(e.srv, 7, NULL), -EINVAL);
	b = zcv_pool_acquire(e.pool);
	assert_int_equal(zcv_server_publish(e.srv, b->index, NULL), 0);
	env_finish(&e);
}

static void test_release_gating(void **state)
{
	struct env e;
	struct zcv_buffer *b;

	env_init(&e);
	env_start(&e, NULL, 8); /* budget 6: three zero-copy consumers */
	for (int i = 0; i < 3; i++)
		sink_connect(&e, i, 0, 0, true);
	pump(&e);
	assert_int_equal(produce(&e, 1), 3);
	pump(&e);
	b = &e.pool->buffers[0];
	assert_int_equal(b->state, ZCV_BUFFER_LENT);
	assert_int_equal(b->holders, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(e.sinks[i].n_held, 1);
		assert_int_equal(zcv_client_held(e.sinks[i].c), 1);
		sink_release_all(&e.sinks[i]);
		assert_int_equal(zcv_client_held(e.sinks[i].c), 0);
		pump(&e);
		if (i < 2) {
			assert_int_equal(b->state, ZCV_BUFFER_LENT);
			assert_int_equal(b->holders, 2 - i);
			assert_int_equal(e.freed, 0);
		}
	}
	assert_int_equal(b->state, ZCV_BUFFER_FREE);
	assert_int_equal(e.freed, 1);
	/* releasing twice is refused locally */
	assert_int_equal(zcv_client_release(e.sinks[0].c, &e.sinks[0].held[0]), -EINVAL);
	env_finish(&e);
}

static void test_hold_limit(void **state)
{
	struct env e;
	struct zcv_server_config cfg = { .max_hold = 2 };
	struct zcv_consumer_info a, b;
	struct sink *sa, *sb;

	env_init(&e);
	env_start(&e, &cfg, 6);
	sa = sink_connect(&e, 0, 0, 0, true);
	sb = sink_connect(&e, 1, 0, 0, false);
	pump(&e);
	assert_int_equal(produce(&e, 1), 2);
	assert_int_equal(produce(&e, 2), 2);
	pump(&e);
	/* sink 0 is at its limit: skipped, the others still get frames */
	for (uint64_t seq = 3; seq <= 5; seq++) {
		assert_int_equal(produce(&e, seq), 1);
		pump(&e);
	}
	assert_int_equal(sa->n_frames, 2);
	assert_int_equal(zcv_client_held(sa->c), 2);
	assert_int_equal(sb->n_frames, 5);
	assert_true(get_info(&e, 1, &a));
	assert_true(get_info(&e, 2, &b));
	assert_int_equal(a.skipped, 3);
	assert_int_equal(a.held, 2);
	assert_int_equal(a.frames_sent, 2);
	assert_int_equal(b.skipped, 0);
	assert_int_equal(b.frames_sent, 5);
	assert_int_equal(zcv_pool_count(e.pool, ZCV_BUFFER_LENT), 2);

	/* after releasing, the next frame arrives and the gap counts as drops */
	sink_release_all(sa);
	pump(&e);
	assert_int_equal(zcv_pool_count(e.pool, ZCV_BUFFER_LENT), 0);
	assert_int_equal(produce(&e, 6), 2);
	pump(&e);
	assert_int_equal(sa->n_frames, 3);
	assert_int_equal(sa->seqs[2], 6);
	assert_int_equal(zcv_client_dropped(sa->c), 3);
	assert_int_equal(zcv_client_dropped(sb->c), 0);
	assert_int_equal(sa->mismatches + sb->mismatches, 0);
	env_finish(&e);
}

/* A sink that keeps its latest frame (a display): while the producer
 * publishes nothing newer its newest frame never times out, however long
 * the pause; a plain holder is evicted meanwhile. Once a newer frame is
 * published the kept one times out like any other unless released. */
static struct sink *sink_connect_latest(struct env *e, int i)
{
	struct sink *s = &e->sinks[i];
	struct zcv_client_config cfg = {
		.size = sizeof(cfg),
		.socket_path = e->path,
		.name = "latest",
		.constraints.hold = 2,
		.keeps_latest = true,
	};

	memset(s, 0, sizeof(*s));
	s->manual = true;
	assert_int_equal(zcv_client_connect(&cfg, &sink_cbs, s, &s->c), 0);
	return s;
}

static void test_keeps_latest(void **state)
{
	struct zcv_server_config cfg = { .hold_timeout_ns = 50 * 1000000ull };
	struct pollfd pfd;
	struct sink *a, *b, *c;
	struct env e;

	env_init(&e);
	env_start(&e, &cfg, 8);
	a = sink_connect_latest(&e, 0);      /* releases the older frame when a newer one comes */
	b = sink_connect(&e, 1, 0, 2, true); /* plain: holds */
	c = sink_connect_latest(&e, 2);      /* keeps the latest, never releases anything */
	pump(&e);
	assert_int_equal(produce(&e, 1), 3);
	pump(&e);
	assert_int_equal(a->n_held + b->n_held + c->n_held, 3);
	/* the pause: the plain holder's hold expires and wakes the server */
	pfd = (struct pollfd){ .fd = zcv_server_get_fd(e.srv), .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	pump(&e);
	assert_int_equal(b->result, -ETIMEDOUT);
	/* three timeouts more: nothing wakes the server for the kept frames */
	assert_int_equal(poll(&pfd, 1, 150), 0);
	pump(&e);
	assert_int_equal(a->result, 0);
	assert_int_equal(c->result, 0);
	assert_int_equal(zcv_server_streaming_count(e.srv), 2);
	/* a newer frame: a lets the old one go, c keeps it past the timeout */
	assert_int_equal(produce(&e, 2), 2);
	pump(&e);
	assert_int_equal(a->n_held, 2);
	assert_int_equal(zcv_client_release(a->c, &a->held[0]), 0);
	a->held[0] = a->held[1];
	a->n_held = 1;
	pump(&e);
	pfd.revents = 0;
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	pump(&e);
	assert_int_equal(c->result, -ETIMEDOUT);
	assert_non_null(strstr(c->closed_reason, "held frame 1"));
	assert_int_equal(a->result, 0);
	/* a still holds frame 2, its latest: kept, however long */
	pfd.revents = 0;
	assert_int_equal(poll(&pfd, 1, 150), 0);
	pump(&e);
	assert_int_equal(a->result, 0);
	sink_release_all(a);
	env_finish(&e);
}

static void test_hold_timeout(void **state)
{
	struct env e;
	struct zcv_server_config cfg = { .hold_timeout_ns = 50 * 1000000ull };
	struct zcv_consumer_info info;
	struct pollfd pfd;
	struct sink *s;
	uint64_t t0;

	env_init(&e);
	env_start(&e, &cfg, 4);
	s = sink_connect(&e, 0, 0, 0, true);
	sink_connect(&e, 1, 0, 0, false);
	pump(&e);
	assert_int_equal(produce(&e, 1), 2);
	pump(&e);
	assert_int_equal(s->n_held, 1);
	assert_int_equal(e.pool->buffers[0].state, ZCV_BUFFER_LENT);

	/* The server's fd wakes the loop by itself when the hold expires. */
	t0 = zcv_now_ns();
	pfd = (struct pollfd){ .fd = zcv_server_get_fd(e.srv), .events = POLLIN };
	assert_int_equal(poll(&pfd, 1, 2000), 1);
	assert_true(zcv_now_ns() - t0 >= 40 * 1000000ull);
	pump(&e);
	assert_int_equal(s->result, -ETIMEDOUT);
	assert_true(s->closed);
	assert_int_equal(s->closed_error, -ETIMEDOUT);
	assert_non_null(strstr(s->closed_reason, "held frame 1"));
	assert_int_equal(e.pool->buffers[0].state, ZCV_BUFFER_FREE);
	assert_int_equal(e.left, 1);
	assert_int_equal(e.last_left.end_error, -ETIMEDOUT);
	assert_true(get_info(&e, 1, &info));
	assert_int_equal(info.state, ZCV_CONSUMER_GONE);
	assert_int_equal(info.end_error, -ETIMEDOUT);
	assert_int_equal(zcv_server_streaming_count(e.srv), 1);
	/* the well-behaved one is untouched; nothing left to time out */
	assert_int_equal(e.sinks[1].result, 0);
	pfd.revents = 0;
	assert_int_equal(poll(&pfd, 1, 120), 0);
	/* dispatch after the end keeps returning the error */
	assert_int_equal(zcv_client_dispatch(s->c), -ETIMEDOUT);
	/* the producer took it back: freed here only */
	assert_int_equal(zcv_client_release(s->c, &s->held[0]), 0);
	assert_int_equal(zcv_client_release(s->c, &s->held[0]), -EINVAL);
	env_finish(&e);
}

/* A raw consumer: connects, says HELLO, drains the pool announcement. */
static int raw_connect(struct env *e, uint16_t version, uint16_t min_version)
{
	struct zcv_msg_hello h;
	size_t len = zcv_msg_init(&h, ZCV_MSG_HELLO);
	int fd = zcv_socket_connect(e->path);

	assert_true(fd >= 0);
	h.hdr.version = version;
	h.min_version = min_version;
	h.caps = ZCV_CAP_MEMFD;
	strcpy(h.name, "raw");
	assert_int_equal(zcv_msg_send(fd, &h, len, NULL, 0), 0);
	return fd;
}

/* Next message on a raw socket, driving the server meanwhile; fds closed. */
static int raw_next(struct env *e, int fd, union zcv_msg *m)
{
	for (int i = 0; i < 2000; i++) {
		int fds[ZCV_MSG_MAX_FDS];
		unsigned n = 0;
		int r;

		if (e->srv)
			assert_int_equal(zcv_server_dispatch(e->srv), 0);
		r = zcv_msg_read(fd, m, fds, &n);
		if (r == -EAGAIN) {
			usleep(1000);
			continue;
		}
		zcv_close_fds(fds, n);
		return r;
	}
	return -ETIME;
}

/*
 * The source goes and comes back (zcv_server_set_source): a streaming
 * consumer is told both; one that joins while it is away is told after
 * its pool; saying the same twice sends nothing; a consumer whose HELLO
 * did not say it understands STATUS (an older client) is sent none.
 */
static void test_source_status(void **state)
{
	struct sink *a, *b;
	union zcv_msg m;
	struct env e;
	int fd;

	env_init(&e);
	env_start(&e, NULL, 8);
	a = sink_connect(&e, 0, 0, 0, false);
	pump(&e);
	fd = raw_connect(&e, ZCV_PROTOCOL_VERSION, 1); /* flags 0 */
	assert_true(raw_next(&e, fd, &m) > 0);
	assert_int_equal(m.hdr.type, ZCV_MSG_WELCOME);
	for (int i = 0; i < 8; i++) {
		assert_true(raw_next(&e, fd, &m) > 0);
		assert_int_equal(m.hdr.type, ZCV_MSG_BUFFER);
	}
	zcv_server_set_source(e.srv, false, "camera unplugged");
	zcv_server_set_source(e.srv, false, "said twice");
	pump(&e);
	assert_int_equal(a->n_sources, 1);
	assert_int_equal(a->sources[0], 'g');
	b = sink_connect(&e, 1, 0, 0, false);
	pump(&e);
	assert_int_equal(b->n_sources, 1);
	assert_int_equal(b->sources[0], 'g');
	assert_int_equal(b->formats_at_source[0], 1); /* after its pool */
	zcv_server_set_source(e.srv, true, "back");
	pump(&e);
	assert_memory_equal(a->sources, "gb", 2);
	assert_memory_equal(b->sources, "gb", 2);
	assert_int_equal(a->n_sources, 2);
	/* frames go on */
	assert_true(produce(&e, 1) >= 0);
	pump(&e);
	assert_int_equal(a->n_frames, 1);
	assert_int_equal(b->n_frames, 1);
	/* the raw consumer got the frame and nothing else */
	assert_true(raw_next(&e, fd, &m) > 0);
	assert_int_equal(m.hdr.type, ZCV_MSG_FRAME);
	{
		int fds[ZCV_MSG_MAX_FDS];
		unsigned n = 0;

		assert_int_equal(zcv_msg_read(fd, &m, fds, &n), -EAGAIN);
	}
	assert_int_equal(a->result, 0);
	assert_int_equal(b->result, 0);
	close(fd);
	env_finish(&e);
}

static void test_hangup_reclaims(void **state)
{
	struct env e;
	union zcv_msg m;
	struct sink *s;
	int fd;

	env_init(&e);
	env_start(&e, NULL, 6); /* budget 4: both zero-copy */
	fd = raw_connect(&e, ZCV_PROTOCOL_VERSION, 1);
	assert_true(raw_next(&e, fd, &m) > 0);
	assert_int_equal(m.hdr.type, ZCV_MSG_WELCOME);
	for (int i = 0; i < 6; i++) {
		assert_true(raw_next(&e, fd, &m) > 0);
		assert_int_equal(m.hdr.type, ZCV_MSG_BUFFER);
	}
	s = sink_connect(&e, 0, 0, 0, true);
	pump(&e);
	assert_int_equal(produce(&e, 1), 2);
	assert_int_equal(produce(&e, 2), 2);
	assert_int_equal(e.pool->buffers[0].holders, 2);
	/* the raw consumer dies without a word */
	close(fd);
	assert_int_equal(zcv_server_dispatch(e.srv), 0);
	assert_int_equal(e.pool->buffers[0].holders, 1);
	assert_int_equal(e.pool->buffers[1].holders, 1);
	assert_int_equal(e.last_left.end_error, -ECONNRESET);
	/* the library consumer leaves while holding two frames */
	pump(&e);
	assert_int_equal(s->n_held, 2);
	sink_drop(s);
	assert_int_equal(zcv_server_dispatch(e.srv), 0);
	assert_int_equal(zcv_pool_count(e.pool, ZCV_BUFFER_FREE), 6);
	assert_int_equal(e.freed, 2);
	assert_int_equal(e.left, 2);
	assert_int_equal(zcv_server_streaming_count(e.srv), 0);
	env_finish(&e);
}

/* A RELEASE that does not match a hold disconnects that consumer. */
static void bad_release_case(uint32_t gen_delta, uint32_t index_delta, uint64_t seq_delta,
			     bool twice)
{
	struct env e;
	struct zcv_msg_release r;
	struct sink *s, *good;
	size_t len;

	env_init(&e);
	env_start(&e, NULL, 6); /* budget 4: both zero-copy */
	s = sink_connect(&e, 0, 0, 0, true);
	good = sink_connect(&e, 1, 0, 0, true);
	pump(&e);
	assert_int_equal(produce(&e, 5), 2);
	pump(&e);
	assert_int_equal(s->n_held, 1);
	if (twice)
		assert_int_equal(zcv_client_release(s->c, &s->held[0]), 0);
	len = zcv_msg_init(&r, ZCV_MSG_RELEASE);
	r.generation = s->held[0].generation + gen_delta;
	r.index = s->held[0].index + index_delta;
	r.sequence = s->held[0].sequence + seq_delta;
	assert_int_equal(zcv_msg_send(zcv_client_get_fd(s->c), &r, len, NULL, 0), 0);
	pump(&e);
	assert_int_equal(s->result, -EPROTO);
	assert_int_equal(s->closed_error, -EPROTO);
	assert_int_equal(e.last_left.end_error, -EPROTO);
	/* its hold is gone; the other consumer's stays */
	assert_int_equal(e.pool->buffers[0].state, ZCV_BUFFER_LENT);
	assert_int_equal(e.pool->buffers[0].holders, 1);
	sink_release_all(good);
	pump(&e);
	assert_int_equal(e.pool->buffers[0].state, ZCV_BUFFER_FREE);
	assert_int_equal(good->result, 0);
	env_finish(&e);
}

static void test_bad_release(void **state)
{
	bad_release_case(0, 1, 0, false);  /* a buffer it does not hold */
	bad_release_case(0, 31, 0, false); /* beyond the pool */
	bad_release_case(1, 0, 0, false);  /* wrong generation */
	bad_release_case(0, 0, 1, false);  /* wrong sequence */
	bad_release_case(0, 0, 0, true);   /* released twice */
}

static void test_copy_tier(void **state)
{
	struct env e;
	struct zcv_consumer_info ia, ib, ic;
	struct sink *a, *b, *c;
	uint64_t copied = zcv_copied_bytes_get(), fb;

	env_init(&e);
	env_start(&e, NULL, 4);
	fb = frame_bytes(&e.pool->layout);
	a = sink_connect(&e, 0, ZCV_CAP_NEEDS_COPY, 0, false);
	b = sink_connect(&e, 1, 0, 0, true);
	/* can only import DMA-BUF, the pool is memfd: copy too */
	c = sink_connect(&e, 2, ZCV_CAP_DMABUF, 1, true);
	pump(&e);
	assert_int_equal(a->fmt.path, 3);
	assert_int_equal(b->fmt.path, 2);
	assert_int_equal(c->fmt.path, 3);
	assert_int_equal(produce(&e, 1), 3);
	/* only the zero-copy consumer holds the source buffer */
	assert_int_equal(e.pool->buffers[0].holders, 1);
	pump(&e);
	sink_release_all(b);
	pump(&e);
	assert_int_equal(e.pool->buffers[0].state, ZCV_BUFFER_FREE);
	for (uint64_t seq = 2; seq <= 5; seq++) {
		/* c holds its first frame: skipped, the rest get every frame */
		assert_int_equal(produce(&e, seq), 2);
		pump(&e);
		sink_release_all(b);
		pump(&e);
	}
	assert_int_equal(a->n_frames, 5);
	assert_int_equal(b->n_frames, 5);
	assert_int_equal(c->n_frames, 1);
	assert_int_equal(a->mismatches + b->mismatches + c->mismatches, 0);
	assert_int_equal(zcv_server_copied_bytes(e.srv), 6 * fb);
	assert_int_equal(zcv_copied_bytes_get() - copied, 6 * fb);
	assert_true(get_info(&e, 1, &ia));
	assert_true(get_info(&e, 2, &ib));
	assert_true(get_info(&e, 3, &ic));
	assert_int_equal(ia.copied_bytes, 5 * fb);
	assert_int_equal(ib.copied_bytes, 0);
	assert_int_equal(ic.copied_bytes, fb);
	assert_int_equal(ic.skipped, 4);
	assert_int_equal(ia.path, 3);
	/* the copy consumer's frame is in its private pool: the source is free */
	assert_int_equal(zcv_pool_count(e.pool, ZCV_BUFFER_FREE), 4);
	/* every copy consumer mapped sealed memfds */
	assert_int_equal(c->held[0].fd[0] >= 0, 1);
	assert_int_equal(zcv_memfd_check_sealed(c->held[0].fd[0], fb, NULL), 0);
	env_finish(&e);
}

/* Allocation that fits: consumers wait after HELLO until admitted, their
 * constraints are merged, and one whose needs the pool does not meet gets
 * the copy tier into a private pool laid out for it, with a reason. */
static void test_constraints_admission(void **state)
{
	struct zcv_server_config cfg = { .defer_admission = true };
	struct zcv_constraints k = { 0 }, need = { .stride_align = 16, .height_align = 64 };
	struct zcv_client_config ccfg = { .size = sizeof(struct zcv_client_config),
					  .name = "aligned",
					  .caps = ZCV_CAP_MEMFD };
	const struct zcv_format_info *fi;
	struct zcv_consumer_info ia, ib;
	struct sink *a, *b;
	char why[128];
	struct env e;

	env_init(&e);
	env_start(&e, &cfg, 4);
	fi = zcv_format_lookup(e.pool->layout.fourcc);
	assert_true(zcv_pool_check(e.pool, &k, why, sizeof(why)) == ZCV_FIT_OK);
	a = sink_connect(&e, 0, 0, 0, false);
	b = &e.sinks[1];
	memset(b, 0, sizeof(*b));
	b->manual = true;
	ccfg.socket_path = e.path;
	ccfg.constraints = need;
	assert_int_equal(zcv_client_connect(&ccfg, &sink_cbs, b, &b->c), 0);
	pump(&e);
	/* nobody is sent the pool before admission */
	assert_int_equal(zcv_server_pending_count(e.srv), 2);
	assert_int_equal(zcv_server_streaming_count(e.srv), 0);
	assert_null(zcv_client_get_format(a->c));
	zcv_server_pending_constraints(e.srv, &k);
	assert_int_equal(k.height_align, 64);
	assert_int_equal(k.stride_align, 16);
	/* the test pool's height is not a multiple of 64 lines */
	assert_false(zcv_pool_check(e.pool, &k, why, sizeof(why)) == ZCV_FIT_OK);
	assert_int_equal(zcv_server_admit(e.srv), 2);
	pump(&e);
	assert_int_equal(a->fmt.path, 2);
	assert_int_equal(b->fmt.path, 3);
	/* the private pool is laid out for 64-line alignment */
	assert_int_equal(b->fmt.layout.planes[1].offset,
			 b->fmt.layout.planes[0].stride * ((e.pool->layout.height + 63) / 64 * 64) /
				 fi->vsub[0]);
	assert_int_equal(produce(&e, 1), 2);
	pump(&e);
	assert_int_equal(a->n_frames + b->n_frames, 2);
	/* b's planes have lines of padding the sink's check does not expect:
	 * compare the lines the source has */
	assert_int_equal(a->mismatches, 0);
	assert_int_equal(b->n_held, 1);
	for (unsigned p = 0; p < e.pool->layout.n_planes; p++)
		for (size_t i = 0; i < e.pool->layout.planes[p].size; i++)
			assert_int_equal(b->held[0].planes[p][i], pattern(1, p, i));
	sink_release_all(b);
	pump(&e);
	assert_true(get_info(&e, 1, &ia));
	assert_true(get_info(&e, 2, &ib));
	assert_string_equal(ia.path_reason, "");
	assert_non_null(strstr(ib.path_reason, "lines"));
	assert_true(ib.hello_seen && ib.constraints.height_align == 64);
	env_finish(&e);
}

static void test_addr_in_use(void **state)
{
	struct env e;
	struct zcv_server *srv2 = (struct zcv_server *)0x1;
	struct zcv_server_config cfg = { 0 };
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct zcv_pool *pool;
	struct stat st;
	int fd;

	env_init(&e);
	env_start(&e, NULL, 2);
	cfg.socket_path = e.path;
	assert_int_equal(zcv_server_create(&cfg, NULL, NULL, e.pool, &srv2), -EADDRINUSE);
	assert_ptr_equal(srv2, (struct zcv_server *)0x1);
	assert_int_equal(stat(e.path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* the first one still serves */
	sink_connect(&e, 0, 0, 0, false);
	pump(&e);
	assert_int_equal(e.sinks[0].formats, 1);
	pool = e.pool;
	e.pool = NULL;
	env_finish(&e);
	/* destroy unlinked the socket */
	assert_int_equal(stat(e.path, &st), -1);

	/* a stale socket file (its owner died) is replaced */
	strcpy(addr.sun_path, e.path);
	assert_int_equal(mkdir(e.dir, 0700), 0);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	close(fd);
	assert_int_equal(stat(e.path, &st), 0);
	assert_int_equal(zcv_server_create(&cfg, NULL, NULL, pool, &srv2), 0);
	zcv_server_destroy(srv2);

	/* something that is not a socket is left alone */
	fd = open(e.path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(zcv_server_create(&cfg, NULL, NULL, pool, &srv2), -EEXIST);
	unlink(e.path);

	/* too long */
	char longpath[200];
	memset(longpath, 'a', sizeof(longpath));
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	cfg.socket_path = longpath;
	assert_int_equal(zcv_server_create(&cfg, NULL, NULL, pool, &srv2), -ENAMETOOLONG);
	/* no producer: the client says so */
	{
		struct zcv_client_config cc = { .size = sizeof(struct zcv_client_config),
						.socket_path = e.path };
		struct zcv_client *cl = NULL;

		assert_int_equal(zcv_client_connect(&cc, NULL, NULL, &cl), -ENOENT);
		assert_null(cl);
	}
	zcv_pool_destroy(pool);
	rmdir(e.dir);
}

static void test_set_pool(void **state)
{
	struct env e;
	struct zcv_layout l2;
	struct zcv_pool *old, *p2;
	struct sink *a, *b, *c;

	env_init(&e);
	env_start(&e, NULL, 6); /* budget 4: a and b zero-copy */
	a = sink_connect(&e, 0, 0, 0, true);
	b = sink_connect(&e, 1, 0, 0, false);
	c = sink_connect(&e, 2, ZCV_CAP_NEEDS_COPY, 0, true);
	pump(&e);
	assert_int_equal(produce(&e, 1), 3);
	pump(&e);
	assert_int_equal(a->n_held, 1);
	assert_int_equal(c->n_held, 1);

	assert_int_equal(zcv_format_layout(ZCV_FMT_YUYV, 32, 16, 16, &l2), 0);
	p2 = make_pool(&e, &l2, 5, 2); /* budget 3, granted anew: a 2, b 1 */
	old = e.pool;
	e.pool = p2;
	/* same generation again is refused */
	assert_int_equal(zcv_server_set_pool(e.srv, old), -EINVAL);
	assert_int_equal(zcv_server_set_pool(e.srv, p2), 0);
	assert_int_equal(zcv_server_set_pool(e.srv, p2), -EINVAL);
	pump(&e);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(e.sinks[i].formats, 2);
		assert_int_equal(e.sinks[i].fmt.generation, 2);
		assert_int_equal(e.sinks[i].fmt.n_buffers, i == 2 ? 3 : 5);
		assert_int_equal(e.sinks[i].fmt.layout.fourcc, ZCV_FMT_YUYV);
		assert_int_equal(e.sinks[i].result, 0);
	}
	assert_int_equal(c->fmt.path, 3);
	/* frames of the new generation, while the old one is still held */
	assert_int_equal(produce(&e, 2), 3);
	pump(&e);
	assert_int_equal(a->n_frames, 2);
	assert_int_equal(b->n_frames, 2);
	assert_int_equal(c->n_frames, 2);
	assert_int_equal(a->held[0].generation, 1);
	assert_int_equal(a->held[1].generation, 2);
	assert_int_equal(a->mismatches + b->mismatches + c->mismatches, 0);
	/* the old frame stays readable until released */
	assert_int_equal(a->held[0].planes[0][5], pattern(1, 0, 5));
	assert_int_equal(c->held[0].planes[1][5], pattern(1, 1, 5));
	/* releases of the old generation go back to the old pool */
	assert_int_equal(old->buffers[0].state, ZCV_BUFFER_LENT);
	{
		int before = zcv_test_count_fds();

		sink_release_all(a);
		sink_release_all(c);
		pump(&e);
		/* retired at once: a's old fds (6), c's (3: a copy pool has
		 * one buffer more than the consumer may hold) and the
		 * server's private copy pool of generation 1 (3) */
		assert_int_equal(zcv_test_count_fds(), before - 12);
	}
	assert_int_equal(zcv_pool_count(old, ZCV_BUFFER_FREE), 6);
	assert_int_equal(zcv_pool_count(p2, ZCV_BUFFER_FREE), 5);
	assert_int_equal(a->result + b->result + c->result, 0);
	zcv_pool_destroy(old);
	env_finish(&e);
}

static void test_version_negotiation(void **state)
{
	struct env e;
	union zcv_msg m;
	int fd;

	env_init(&e);
	env_start(&e, NULL, 2);
	/* a client that speaks only versions above ours */
	fd = raw_connect(&e, ZCV_PROTOCOL_VERSION + 2, ZCV_PROTOCOL_VERSION + 1);
	assert_true(raw_next(&e, fd, &m) > 0);
	assert_int_equal(m.hdr.type, ZCV_MSG_BYE);
	assert_int_equal(m.bye.error, -EPROTONOSUPPORT);
	assert_true(strlen(m.bye.reason) > 0);
	assert_int_equal(raw_next(&e, fd, &m), 0); /* then hung up */
	close(fd);
	assert_int_equal(e.joined, 0);

	/* a newer client that still speaks ours gets ours */
	fd = raw_connect(&e, ZCV_PROTOCOL_VERSION + 2, ZCV_PROTOCOL_MIN_VERSION);
	assert_true(raw_next(&e, fd, &m) > 0);
	assert_int_equal(m.hdr.type, ZCV_MSG_WELCOME);
	assert_int_equal(m.welcome.version, ZCV_PROTOCOL_VERSION);
	close(fd);
	assert_int_equal(zcv_server_dispatch(e.srv), 0);

	/* a consumer sending a server message is dropped */
	fd = raw_connect(&e, ZCV_PROTOCOL_VERSION, 1);
	{
		struct zcv_msg_frame f;
		size_t len = zcv_msg_init(&f, ZCV_MSG_FRAME);

		assert_int_equal(zcv_msg_send(fd, &f, len, NULL, 0), 0);
	}
	do
		assert_true(raw_next(&e, fd, &m) > 0);
	while (m.hdr.type != ZCV_MSG_BYE);
	assert_int_equal(m.bye.error, -EPROTO);
	close(fd);
	env_finish(&e);
}

/* A listening socket standing in for a producer. */
struct fake {
	char dir[64], path[128];
	int listen_fd, fd;
	struct sink s;
};

static void fake_start(struct fake *f, const struct zcv_client_config *ccfg_in)
{
	struct zcv_client_config ccfg = { .size = sizeof(struct zcv_client_config) };
	union zcv_msg m;
	int fds[ZCV_MSG_MAX_FDS];
	unsigned n;

	memset(f, 0, sizeof(*f));
	strcpy(f->dir, "/tmp/zcv-fake-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/f.sock", f->dir);
	f->listen_fd = zcv_socket_listen(f->path, 0600);
	assert_true(f->listen_fd >= 0);
	f->s.manual = true;
	if (ccfg_in)
		ccfg = *ccfg_in;
	ccfg.socket_path = f->path;
	assert_int_equal(zcv_client_connect(&ccfg, &sink_cbs, &f->s, &f->s.c), 0);
	f->fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(f->fd >= 0);
	assert_int_equal(zcv_msg_read(f->fd, &m, fds, &n), (int)sizeof(struct zcv_msg_hello));
	assert_int_equal(m.hdr.type, ZCV_MSG_HELLO);
	assert_string_equal(m.hello.name, "zcv-client");
	assert_int_equal(m.hello.caps, ZCV_CAP_DMABUF | ZCV_CAP_MEMFD);
}

static void fake_finish(struct fake *f)
{
	zcv_client_destroy(f->s.c);
	close(f->fd);
	close(f->listen_fd);
	unlink(f->path);
	rmdir(f->dir);
}

static void fake_welcome(struct fake *f, unsigned n_buffers, uint32_t generation)
{
	struct zcv_layout l;

	layout_nv12(&l);
	fake_send_welcome(f->fd, &l, ZCV_PATH_MEMFD, 2, n_buffers, generation);
}

static void fake_buffer(struct fake *f, unsigned idx, uint32_t generation, bool sealed)
{
	int fd;

	if (sealed) {
		fd = zcv_memfd_create("fake", 3072);
		assert_int_equal(zcv_memfd_seal_readonly(fd), 0);
	} else {
		fd = memfd_create("fake", MFD_CLOEXEC);
		assert_int_equal(ftruncate(fd, 3072), 0);
	}
	assert_true(fd >= 0);
	fake_send_buffer(f->fd, idx, generation, fd, 3072);
	close(fd);
}

static void fake_frame(struct fake *f, uint32_t generation, unsigned idx, uint64_t seq)
{
	struct zcv_msg_frame fr;
	size_t len = zcv_msg_init(&fr, ZCV_MSG_FRAME);

	fr.generation = generation;
	fr.index = idx;
	fr.sequence = seq;
	assert_int_equal(zcv_msg_send(f->fd, &fr, len, NULL, 0), 0);
}

/* The client hung up on the fake (shutdown), after an optional BYE. */
static void fake_expect_hangup(struct fake *f)
{
	union zcv_msg m;
	int fds[ZCV_MSG_MAX_FDS];
	unsigned n;
	int r;

	while ((r = zcv_msg_read(f->fd, &m, fds, &n)) > 0) {
		assert_int_equal(m.hdr.type, ZCV_MSG_BYE);
		assert_int_equal(m.bye.error, -EPROTO);
	}
	assert_int_equal(r, 0);
}

static void test_fake_server_unsealed(void **state)
{
	struct fake f;

	fake_start(&f, NULL);
	fake_welcome(&f, 2, 1);
	fake_buffer(&f, 0, 1, true);
	fake_buffer(&f, 1, 1, false);
	assert_int_equal(zcv_client_dispatch(f.s.c), -EPROTO);
	assert_true(f.s.closed);
	assert_int_equal(f.s.closed_error, -EPROTO);
	assert_int_equal(f.s.formats, 0);
	assert_int_equal(zcv_client_dispatch(f.s.c), -EPROTO);
	fake_expect_hangup(&f);
	fake_finish(&f);
}

static void fake_bad_frame_case(uint32_t generation, unsigned idx, uint64_t seq)
{
	struct fake f;

	fake_start(&f, NULL);
	fake_welcome(&f, 2, 4);
	fake_buffer(&f, 0, 4, true);
	fake_buffer(&f, 1, 4, true);
	fake_frame(&f, 4, 0, 10);
	assert_int_equal(zcv_client_dispatch(f.s.c), 0);
	assert_int_equal(f.s.formats, 1);
	assert_int_equal(f.s.n_frames, 1);
	fake_frame(&f, generation, idx, seq);
	assert_int_equal(zcv_client_dispatch(f.s.c), -EPROTO);
	assert_int_equal(f.s.n_frames, 1);
	assert_int_equal(f.s.closed_error, -EPROTO);
	fake_expect_hangup(&f);
	fake_finish(&f);
}

static void test_fake_server_bad_frame(void **state)
{
	fake_bad_frame_case(4, 2, 11); /* index >= n_buffers */
	fake_bad_frame_case(4, 31, 11);
	fake_bad_frame_case(3, 1, 11); /* unknown generation */
	fake_bad_frame_case(4, 1, 10); /* sequence not increasing */
	fake_bad_frame_case(4, 0, 11); /* buffer still held */
}

static void test_fake_server_misc(void **state)
{
	struct fake f;
	struct zcv_msg_bye bye;
	size_t len;

	/* BUFFER of another generation */
	fake_start(&f, NULL);
	fake_welcome(&f, 2, 1);
	fake_buffer(&f, 0, 2, true);
	assert_int_equal(zcv_client_dispatch(f.s.c), -EPROTO);
	fake_finish(&f);

	/* repeated BUFFER index */
	fake_start(&f, NULL);
	fake_welcome(&f, 2, 1);
	fake_buffer(&f, 0, 1, true);
	fake_buffer(&f, 0, 1, true);
	assert_int_equal(zcv_client_dispatch(f.s.c), -EPROTO);
	fake_finish(&f);

	/* FRAME before the pool is complete */
	fake_start(&f, NULL);
	fake_welcome(&f, 2, 1);
	fake_buffer(&f, 0, 1, true);
	fake_frame(&f, 1, 0, 1);
	assert_int_equal(zcv_client_dispatch(f.s.c), -EPROTO);
	fake_finish(&f);

	/* a producer that sends a consumer's message */
	fake_start(&f, NULL);
	{
		struct zcv_msg_release r;

		len = zcv_msg_init(&r, ZCV_MSG_RELEASE);
		assert_int_equal(zcv_msg_send(f.fd, &r, len, NULL, 0), 0);
	}
	assert_int_equal(zcv_client_dispatch(f.s.c), -EPROTO);
	fake_finish(&f);

	/* a clean BYE ends the stream with 1; the producer vanishing is -ECONNRESET */
	fake_start(&f, NULL);
	len = zcv_msg_init_bye(&bye, 0, "bye now");
	assert_int_equal(zcv_msg_send(f.fd, &bye, len, NULL, 0), 0);
	assert_int_equal(zcv_client_wait_dispatch(f.s.c, 1000), 1);
	assert_int_equal(f.s.closed_error, 0);
	assert_string_equal(f.s.closed_reason, "bye now");
	fake_finish(&f);

	fake_start(&f, NULL);
	assert_int_equal(zcv_client_wait_dispatch(f.s.c, 10), 0);
	close(f.fd);
	f.fd = -1;
	assert_int_equal(zcv_client_wait_dispatch(f.s.c, 1000), -ECONNRESET);
	assert_int_equal(f.s.closed_error, -ECONNRESET);
	fake_finish(&f);
}

static void test_server_end(void **state)
{
	struct env e;
	struct sink *a, *b;

	env_init(&e);
	env_start(&e, NULL, 4);
	a = sink_connect(&e, 0, 0, 0, true);
	b = sink_connect(&e, 1, 0, 0, false);
	pump(&e);
	assert_int_equal(produce(&e, 1), 2);
	pump(&e);
	zcv_server_end(e.srv, 0, "camera unplugged");
	/* no one new gets in */
	{
		struct zcv_client_config cc = { .size = sizeof(struct zcv_client_config),
						.socket_path = e.path };
		struct zcv_client *cl = NULL;

		assert_int_equal(zcv_client_connect(&cc, NULL, NULL, &cl), -ECONNREFUSED);
	}
	/* publishing after the end reaches nobody */
	assert_int_equal(produce(&e, 2), 0);
	pump(&e);
	assert_int_equal(a->result, 1);
	assert_int_equal(b->result, 1);
	assert_int_equal(a->closed_error, 0);
	assert_string_equal(a->closed_reason, "camera unplugged");
	assert_int_equal(zcv_client_dispatch(a->c), 1);
	/* b held nothing and is gone; a stays to give its frame back */
	assert_int_equal(e.left, 1);
	assert_int_equal(zcv_server_streaming_count(e.srv), 1);
	assert_int_equal(e.pool->buffers[0].state, ZCV_BUFFER_LENT);
	sink_release_all(a);
	assert_int_equal(zcv_server_dispatch(e.srv), 0);
	assert_int_equal(e.pool->buffers[0].state, ZCV_BUFFER_FREE);
	assert_int_equal(e.left, 2);
	assert_int_equal(e.last_left.end_error, 0);
	assert_string_equal(e.last_left.end_reason, "camera unplugged");
	env_finish(&e);
}

static void test_consumer_limits(void **state)
{
	struct env e;
	struct zcv_server_config cfg = { .max_consumers = 1 };
	struct zcv_consumer_info all[8];
	unsigned n;

	env_init(&e);
	env_start(&e, &cfg, 2);
	sink_connect(&e, 0, 0, 0, false);
	pump(&e);
	sink_connect(&e, 1, 0, 0, false);
	pump(&e);
	assert_int_equal(e.sinks[0].result, 0);
	assert_int_equal(e.sinks[1].result, -EBUSY);
	/* departed ones are listed too, oldest first */
	n = zcv_server_get_consumers(e.srv, all, 8);
	assert_int_equal(n, 2);
	assert_int_equal(all[0].id, 1);
	assert_int_equal(all[0].state, ZCV_CONSUMER_STREAMING);
	assert_int_equal(all[1].id, 2);
	assert_int_equal(all[1].state, ZCV_CONSUMER_GONE);
	assert_int_equal(all[1].end_error, -EBUSY);
	assert_int_equal(zcv_server_get_consumers(e.srv, all, 1), 1);
	/* the ring keeps the last 64 */
	sink_drop(&e.sinks[1]);
	for (int i = 0; i < 70; i++) {
		sink_connect(&e, 1, 0, 0, false);
		pump(&e);
		sink_drop(&e.sinks[1]);
	}
	assert_int_equal(zcv_server_dispatch(e.srv), 0);
	{
		struct zcv_consumer_info many[100];

		n = zcv_server_get_consumers(e.srv, many, 100);
		assert_int_equal(n, 65);
		assert_int_equal(many[0].id, 1);
		assert_int_equal(many[1].id, 72 - 63);
		assert_int_equal(many[64].id, 72);
	}
	env_finish(&e);
}

/* Child process under another identity: 0 welcomed, 1 refused with
 * -EACCES, 2 anything else. */
static int child_connect(const char *path, uid_t uid, gid_t gid)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		struct zcv_msg_hello h;
		size_t len = zcv_msg_init(&h, ZCV_MSG_HELLO);
		union zcv_msg m;
		int fds[ZCV_MSG_MAX_FDS], fd;
		unsigned n;

		if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
			_exit(3);
		fd = zcv_socket_connect(path);
		if (fd < 0)
			_exit(4);
		h.min_version = 1;
		h.caps = ZCV_CAP_MEMFD;
		if (zcv_msg_send(fd, &h, len, NULL, 0) < 0)
			_exit(5);
		for (int i = 0; i < 2000; i++) {
			int r = zcv_msg_read(fd, &m, fds, &n);

			if (r == -EAGAIN) {
				usleep(1000);
				continue;
			}
			if (r <= 0)
				_exit(6);
			if (m.hdr.type == ZCV_MSG_WELCOME)
				_exit(0);
			_exit(m.hdr.type == ZCV_MSG_BYE && m.bye.error == -EACCES ? 1 : 2);
		}
		_exit(7);
	}
	return pid;
}

static int child_wait(struct env *e, pid_t pid)
{
	int status = 0;

	for (int i = 0; i < 5000; i++) {
		assert_int_equal(zcv_server_dispatch(e->srv), 0);
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
		usleep(1000);
	}
	return 98;
}

static void test_peer_policy(void **state)
{
	struct env e;
	struct zcv_server_config cfg = { .allow_group = true, .allowed_gid = 4242 };
	struct stat st;

	if (geteuid() != 0) {
		skip();
		return;
	}
	env_init(&e);
	assert_int_equal(chmod(e.dir, 0711), 0);
	env_start(&e, &cfg, 2);
	/* the allowed group owns the socket, and only it may connect */
	assert_int_equal(stat(e.path, &st), 0);
	assert_int_equal(st.st_gid, 4242);
	assert_int_equal(st.st_mode & 0777, 0660);
	assert_int_equal(child_wait(&e, child_connect(e.path, 65534, 4242)), 0);
	/* someone else who could reach the socket (bad file mode) is still refused */
	assert_int_equal(chmod(e.path, 0666), 0);
	assert_int_equal(child_wait(&e, child_connect(e.path, 65534, 65534)), 1);
	{
		struct zcv_consumer_info all[4];
		unsigned n = zcv_server_get_consumers(e.srv, all, 4);

		assert_int_equal(n, 2);
		assert_int_equal(all[1].end_error, -EACCES);
		assert_int_equal(all[1].uid, 65534);
	}
	env_finish(&e);
}

/* A zeroed config admits the same uid only: gid 0 gets no special
 * treatment (allowed_gid is 0 there, but allow_group is false). */
static void test_peer_policy_default(void **state)
{
	struct env e;
	struct zcv_server_config cfg = { 0 };

	if (geteuid() != 0) {
		skip();
		return;
	}
	env_init(&e);
	assert_int_equal(chmod(e.dir, 0711), 0);
	env_start(&e, &cfg, 2);
	assert_int_equal(chmod(e.path, 0666), 0);
	assert_int_equal(child_wait(&e, child_connect(e.path, 65534, 0)), 1);
	env_finish(&e);
}

/* A consumer that stops reading is dropped, never waited for. */
static void test_slow_consumer(void **state)
{
	struct env e;
	struct zcv_layout l;
	struct sink *s, *ok;
	uint32_t gen = 2;

	env_init(&e);
	env_start(&e, NULL, 2);
	s = sink_connect(&e, 0, 0, 0, false);
	ok = sink_connect(&e, 1, 0, 0, false);
	pump(&e);
	assert_int_equal(zcv_format_layout(ZCV_FMT_GREY, 16, 16, 1, &l), 0);
	/* Pool announcements pile up in the socket of a consumer that never
	 * reads, until the socket is full. */
	while (zcv_server_streaming_count(e.srv) == 2) {
		struct zcv_pool *p = make_pool(&e, &l, ZCV_POOL_MAX_BUFFERS, gen++);
		uint64_t t0 = zcv_now_ns();

		assert_true(gen < 200);
		assert_int_equal(zcv_server_set_pool(e.srv, p), 0);
		assert_true(zcv_now_ns() - t0 < 500 * 1000000ull);
		zcv_pool_destroy(e.pool);
		e.pool = p;
		/* the other one keeps up */
		assert_int_equal(zcv_client_dispatch(ok->c), 0);
	}
	assert_int_equal(e.left, 1);
	assert_int_equal(e.last_left.end_error, -ENOBUFS);
	assert_int_equal(ok->result, 0);
	assert_int_equal(ok->fmt.generation, gen - 1);
	/* it finds out once it reads */
	for (int i = 0; i < 1000 && !s->result; i++)
		s->result = zcv_client_dispatch(s->c);
	assert_true(s->result < 0);
	env_finish(&e);
}

/* Frames released from other threads while the dispatching thread runs:
 * GStreamer drops buffers on its streaming threads. Every release lands
 * (the producer gets every buffer back), a frame released twice at once
 * is released once. */
struct releaser {
	struct sink *s;
	const struct zcv_client_frame *frames;
	unsigned n;
	int results[MAX_HELD];
	int *done;
};

static void *release_thread(void *data)
{
	struct releaser *r = data;

	for (unsigned i = 0; i < r->n; i++)
		r->results[i] = zcv_client_release(r->s->c, &r->frames[i]);
	__atomic_add_fetch(r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void test_release_any_thread(void **state)
{
	struct zcv_server_config cfg = { .max_hold = 8, .source_reserve = 1 };
	struct env e;
	struct sink *s;
	uint64_t seq = 0;

	env_init(&e);
	/* 8 held leave 2 for another consumer: granted whole */
	env_start(&e, &cfg, 11);
	s = sink_connect(&e, 0, ZCV_CAP_MEMFD, 8, true);
	pump(&e);
	assert_int_equal(s->fmt.max_hold, 8);
	for (int round = 0; round < 40; round++) {
		struct zcv_client_frame frames[8];
		struct releaser rel[4];
		pthread_t th[4];
		int done = 0, zero = 0, inval = 0;

		for (int i = 0; i < 8; i++)
			assert_int_equal(produce(&e, seq++), 1);
		pump(&e);
		assert_int_equal(s->n_held, 8);
		memcpy(frames, s->held, sizeof(frames));
		s->n_held = 0;
		/* threads 0-2 release frames 0-5, two each; thread 3 races
		 * thread 2 for frames 4 and 5 */
		for (int t = 0; t < 4; t++) {
			rel[t] = (struct releaser){ .s = s, .n = 2, .done = &done };
			rel[t].frames = &frames[t < 3 ? 2 * t : 4];
			assert_int_equal(pthread_create(&th[t], NULL, release_thread, &rel[t]), 0);
		}
		/* the dispatching thread goes on meanwhile */
		while (__atomic_load_n(&done, __ATOMIC_ACQUIRE) < 4) {
			assert_int_equal(zcv_client_dispatch(s->c), 0);
			assert_int_equal(zcv_server_dispatch(e.srv), 0);
		}
		for (int t = 0; t < 4; t++)
			assert_int_equal(pthread_join(th[t], NULL), 0);
		for (int t = 0; t < 4; t++)
			for (unsigned i = 0; i < 2; i++) {
				if (t < 2)
					assert_int_equal(rel[t].results[i], 0);
				zero += rel[t].results[i] == 0;
				inval += rel[t].results[i] == -EINVAL;
			}
		assert_int_equal(zero, 6);
		assert_int_equal(inval, 2);
		/* the last two from this thread */
		assert_int_equal(zcv_client_release(s->c, &frames[6]), 0);
		assert_int_equal(zcv_client_release(s->c, &frames[7]), 0);
		assert_int_equal(zcv_client_held(s->c), 0);
		pump(&e);
		assert_int_equal(zcv_pool_count(e.pool, ZCV_BUFFER_FREE), 11);
	}
	assert_int_equal(e.freed, 40 * 8);
	assert_int_equal(s->result, 0);
	env_finish(&e);
}

/* Size-prefixed config and callbacks: an older caller's shorter struct
 * works with the missing fields zero; a newer caller's longer one works
 * when the unknown tail is zero and is refused (-E2BIG) when it asks for
 * something; no size at all is -EINVAL. No fd is left behind by a
 * refusal. */
static void test_struct_sizes(void **state)
{
	struct env e;
	struct {
		struct zcv_client_config cfg;
		uint64_t future;
	} big = { .cfg = { .size = sizeof(big) } };
	struct {
		struct zcv_client_callbacks cbs;
		void (*future)(void);
	} bigcb = { .cbs = sink_cbs };
	struct zcv_client_config cfg = { .size = 0 };
	struct zcv_client_callbacks cbs = sink_cbs;
	struct zcv_client *c = NULL;
	struct sink *s = &e.sinks[0];

	env_init(&e);
	env_start(&e, NULL, 2);
	cfg.socket_path = e.path;
	assert_int_equal(zcv_client_connect(&cfg, &sink_cbs, s, &c), -EINVAL);
	cfg.size = sizeof(cfg);
	cbs.size = 0;
	assert_int_equal(zcv_client_connect(&cfg, &cbs, s, &c), -EINVAL);
	assert_null(c);

	big.cfg.socket_path = e.path;
	big.future = 1;
	assert_int_equal(zcv_client_connect(&big.cfg, &sink_cbs, s, &c), -E2BIG);
	bigcb.cbs.size = sizeof(bigcb);
	bigcb.future = (void (*)(void))test_struct_sizes;
	assert_int_equal(zcv_client_connect(&cfg, &bigcb.cbs, s, &c), -E2BIG);
	assert_null(c);

	/* a newer header's struct with nothing new asked for */
	big.future = 0;
	bigcb.future = NULL;
	memset(s, 0, sizeof(*s));
	assert_int_equal(zcv_client_connect(&big.cfg, &bigcb.cbs, s, &s->c), 0);
	pump(&e);
	assert_int_equal(s->formats, 1);
	sink_drop(s);

	/* an older header's struct that ends before the trust fields: the
	 * default trust (same user) applies */
	cfg.size = offsetof(struct zcv_client_config, producer_trust);
	cfg.producer_trust = 99; /* beyond the size: never read */
	memset(s, 0, sizeof(*s));
	assert_int_equal(zcv_client_connect(&cfg, &sink_cbs, s, &s->c), 0);
	pump(&e);
	assert_int_equal(s->formats, 1);
	assert_int_equal(produce(&e, 0), 1);
	pump(&e);
	assert_int_equal(s->n_frames, 1);
	env_finish(&e);
}

/* length[] is the size of each plane's memory object (what an importer
 * passes as V4L2 DMABUF length); the CPU-access bracket takes held frames
 * only. */
static void test_frame_length_access(void **state)
{
	struct env e;
	struct sink *s;
	struct stat st;

	env_init(&e);
	env_start(&e, NULL, 3);
	s = sink_connect(&e, 0, ZCV_CAP_MEMFD, 2, true);
	pump(&e);
	assert_int_equal(produce(&e, 0), 1);
	pump(&e);
	assert_int_equal(s->n_held, 1);
	for (unsigned p = 0; p < s->held[0].n_planes; p++) {
		assert_int_equal(fstat(s->held[0].fd[p], &st), 0);
		assert_int_equal(s->held[0].length[p], (uint64_t)st.st_size);
		assert_true(s->held[0].length[p] >=
			    s->held[0].offset[p] + s->fmt.layout.planes[p].size);
	}
	assert_int_equal(s->held[0].length[0], e.pool->buffers[0].fd_size[0]);
	assert_int_equal(zcv_client_begin_access(s->c, &s->held[0]), 0);
	assert_int_equal(zcv_client_end_access(s->c, &s->held[0]), 0);
	assert_int_equal(zcv_client_begin_access(s->c, NULL), -EINVAL);
	{
		struct zcv_client_frame f = s->held[0];

		sink_release_all(s);
		assert_int_equal(zcv_client_begin_access(s->c, &f), -EINVAL);
		assert_int_equal(zcv_client_end_access(s->c, &f), -EINVAL);
	}
	env_finish(&e);
}

/*
 * A listener whose backlog is full (a stopped producer, or one flooded by
 * another process) never blocks a consumer: connecting fails at once with
 * -EAGAIN, the client says why, and with reconnect on it waits to try
 * again instead of giving up. alarm() ends the test if a connect blocks.
 */
static void test_connect_backlog_full(void **state)
{
	char dir[] = "/tmp/zcv-backlog-XXXXXX", path[64];
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct zcv_client_config cfg = { .size = sizeof(cfg), .name = "late" };
	struct zcv_client *c = NULL;
	int lfd, queued[64], n = 0, r = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	assert_true(strlen(path) < sizeof(addr.sun_path));
	memcpy(addr.sun_path, path, strlen(path) + 1);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(lfd, 0), 0); /* never accepted */
	alarm(10);
	while (n < 64 && (r = zcv_socket_connect(path)) >= 0)
		queued[n++] = r;
	assert_int_equal(r, -EAGAIN);
	assert_true(n >= 1);

	cfg.socket_path = path;
	assert_int_equal(zcv_client_connect(&cfg,
					    &(struct zcv_client_callbacks){
						    .size = sizeof(struct zcv_client_callbacks) },
					    NULL, &c),
			 -EAGAIN);
	assert_null(c);
	cfg.reconnect.enable = true;
	assert_int_equal(zcv_client_connect(&cfg,
					    &(struct zcv_client_callbacks){
						    .size = sizeof(struct zcv_client_callbacks) },
					    NULL, &c),
			 0);
	assert_int_equal(zcv_client_dispatch(c), 0);
	zcv_client_destroy(c);
	alarm(0);

	for (int i = 0; i < n; i++)
		close(queued[i]);
	close(lfd);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, zcv_test_fd_setup, zcv_test_fd_teardown)
		T(test_handshake),
		T(test_peer_policy_default),
		T(test_frames_in_order),
		T(test_publish_nobody),
		T(test_release_gating),
		T(test_hold_limit),
		T(test_hold_timeout),
		T(test_keeps_latest),
		T(test_hangup_reclaims),
		T(test_source_status),
		T(test_bad_release),
		T(test_copy_tier),
		T(test_addr_in_use),
		T(test_constraints_admission),
		T(test_set_pool),
		T(test_version_negotiation),
		T(test_fake_server_unsealed),
		T(test_fake_server_bad_frame),
		T(test_fake_server_misc),
		T(test_server_end),
		T(test_consumer_limits),
		T(test_peer_policy),
		T(test_slow_consumer),
		T(test_release_any_thread),
		T(test_struct_sizes),
		T(test_frame_length_access),
		T(test_connect_backlog_full),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
