/* SPDX-License-Identifier: MIT */
/* The client's reconnect (zcv_client_config.reconnect): a server destroyed
 * and created again on the same path, a client that starts first, giving
 * up after max_attempts, settings refused, and no reconnect after an
 * eviction. Server and client in one process over real sockets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <cmocka.h>
#include <zcv/client.h>
#include <zcv/memory.h>
#include <zcv/pool.h>
#include <zcv/server.h>
#include "fdcheck.h"

#define MAX_HELD 16
/* A bound on loop rounds, so that a broken client fails the test instead
 * of hanging it; nothing here is timed. */
#define MAX_ROUNDS 2000

struct sink {
	struct zcv_client *c;
	bool hold; /* keep frames until the test releases them */
	int formats;
	struct zcv_client_format fmt, first_fmt;
	unsigned frames;
	unsigned frames_after_disconnect_of_old; /* must stay 0 */
	bool disconnected_seen;
	uint32_t old_gen;
	int disconnects;
	int disconnect_error;
	char disconnect_reason[160];
	int closes;
	int close_error;
	char close_reason[160];
	struct zcv_client_frame held[MAX_HELD];
	unsigned n_held;
};

static void on_format(void *data, const struct zcv_client_format *fmt)
{
	struct sink *s = data;

	if (!s->formats)
		s->first_fmt = *fmt;
	s->formats++;
	s->fmt = *fmt;
}

static void on_frame(void *data, const struct zcv_client_frame *fr)
{
	struct sink *s = data;

	s->frames++;
	if (s->disconnected_seen && fr->generation == s->old_gen)
		s->frames_after_disconnect_of_old++;
	assert_int_equal(fr->generation, s->fmt.generation);
	if (s->hold && s->n_held < MAX_HELD)
		s->held[s->n_held++] = *fr;
	else
		assert_int_equal(zcv_client_release(s->c, fr), 0);
}

static void on_closed(void *data, int error, const char *reason)
{
	struct sink *s = data;

	s->closes++;
	s->close_error = error;
	snprintf(s->close_reason, sizeof(s->close_reason), "%s", reason);
}

static void on_disconnected(void *data, int error, const char *reason)
{
	struct sink *s = data;

	s->disconnects++;
	s->disconnected_seen = true;
	s->old_gen = s->fmt.generation;
	s->disconnect_error = error;
	snprintf(s->disconnect_reason, sizeof(s->disconnect_reason), "%s", reason);
}

static const struct zcv_client_callbacks cbs = {
	.size = sizeof(struct zcv_client_callbacks),
	.format = on_format,
	.frame = on_frame,
	.closed = on_closed,
	.disconnected = on_disconnected,
};

struct env {
	char dir[64];
	char path[128];
	struct zcv_pool *pool;
	struct zcv_server *srv;
	struct sink s;
};

static void env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	strcpy(e->dir, "/tmp/zcv-test-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/s.sock", e->dir);
}

static void server_start(struct env *e, const struct zcv_server_config *cfg_in)
{
	struct zcv_server_config cfg = { 0 };
	struct zcv_layout l;

	if (cfg_in)
		cfg = *cfg_in;
	cfg.socket_path = e->path;
	assert_int_equal(zcv_format_layout(ZCV_FMT_NV12, 64, 32, 64, &l), 0);
	assert_int_equal(zcv_pool_create_memfd(&l, 4, 1, &e->pool), 0);
	assert_int_equal(zcv_server_create(&cfg, NULL, e, e->pool, &e->srv), 0);
}

static void server_stop(struct env *e)
{
	zcv_server_destroy(e->srv);
	e->srv = NULL;
	zcv_pool_destroy(e->pool);
	e->pool = NULL;
}

static void env_finish(struct env *e)
{
	zcv_client_destroy(e->s.c);
	if (e->srv)
		server_stop(e);
	rmdir(e->dir);
}

static int connect_client(struct env *e, const struct zcv_client_reconnect *rc)
{
	struct zcv_client_config cfg = {
		.size = sizeof(struct zcv_client_config),
		.socket_path = e->path,
		.name = "rc",
	};

	cfg.reconnect = *rc;
	return zcv_client_connect(&cfg, &cbs, &e->s, &e->s.c);
}

static int produce(struct env *e, uint64_t seq)
{
	struct zcv_buffer *b = zcv_pool_acquire(e->pool);
	struct zcv_frame_meta meta = { .sequence = seq, .timestamp_ns = zcv_now_ns() };

	if (!b)
		return -ENOBUFS;
	return zcv_server_publish(e->srv, b->index, &meta);
}

/* Polls the client's fd (asked afresh each round: it changes across
 * reconnects) and the server's, dispatches both, until done(e) or the
 * client's dispatch returns non-zero (returned). */
static int run_until(struct env *e, bool (*done)(struct env *e))
{
	for (int round = 0; round < MAX_ROUNDS; round++) {
		struct pollfd pfd[2] = {
			{ zcv_client_get_fd(e->s.c), zcv_client_get_events(e->s.c), 0 },
			{ e->srv ? zcv_server_get_fd(e->srv) : -1, POLLIN, 0 },
		};
		int r;

		if (done(e))
			return 0;
		assert_true(pfd[0].fd >= 0);
		assert_true(poll(pfd, 2, 5000) > 0);
		if (e->srv)
			assert_int_equal(zcv_server_dispatch(e->srv), 0);
		r = zcv_client_dispatch(e->s.c);
		if (r)
			return r;
	}
	fail_msg("the client never got there");
	return -1;
}

static bool streaming(struct env *e)
{
	return e->srv && zcv_server_streaming_count(e->srv) == 1 && e->s.formats > 0 &&
	       e->s.fmt.generation != e->s.old_gen;
}

static bool two_frames(struct env *e)
{
	return e->s.frames >= 2;
}

static bool disconnected(struct env *e)
{
	return e->s.disconnects > 0;
}

static bool second_stream_frame(struct env *e)
{
	return e->s.formats == 2 && e->s.frames >= 3;
}

static const struct zcv_client_reconnect fast = {
	.enable = true,
	.backoff_min_ms = 1,
	.backoff_max_ms = 20,
};

static void test_server_restart(void **state)
{
	struct env e;
	struct zcv_consumer_info info[4];
	unsigned n;

	env_init(&e);
	server_start(&e, NULL);
	e.s.hold = true;
	assert_int_equal(connect_client(&e, &fast), 0);
	assert_int_equal(run_until(&e, streaming), 0);
	assert_int_equal(produce(&e, 1), 1);
	assert_int_equal(produce(&e, 2), 1);
	assert_int_equal(run_until(&e, two_frames), 0);
	assert_int_equal(e.s.n_held, 2);
	/* at its hold limit (2) the sink is skipped: nothing else is lent */
	assert_int_equal(produce(&e, 3), 0);
	server_stop(&e);

	assert_int_equal(run_until(&e, disconnected), 0);
	assert_int_equal(e.s.disconnects, 1);
	assert_int_equal(e.s.disconnect_error, 0); /* the server said goodbye */
	assert_int_equal(e.s.closes, 0);
	assert_null(zcv_client_get_format(e.s.c));
	/* the held frames stay the sink's, readable, until released */
	assert_int_equal(zcv_client_held(e.s.c), 2);
	assert_non_null(e.s.held[0].planes[0]);
	assert_int_equal(e.s.held[0].planes[0][0], e.s.held[0].planes[0][0]);
	/* while nobody listens the client waits on a timer: dispatch is quick */
	assert_int_equal(zcv_client_dispatch(e.s.c), 0);

	/* the same path, a new producer numbering its generations from 1 again */
	server_start(&e, NULL);
	assert_int_equal(run_until(&e, streaming), 0);
	assert_int_equal(e.s.formats, 2);
	assert_memory_not_equal(e.s.fmt.stream_id, e.s.first_fmt.stream_id, 16);
	assert_true(e.s.fmt.generation > e.s.first_fmt.generation);
	assert_non_null(zcv_client_get_format(e.s.c));

	/* the old frames' release sends nothing: the new producer would
	 * evict a consumer releasing what it never lent */
	assert_int_equal(zcv_client_release(e.s.c, &e.s.held[0]), 0);
	assert_int_equal(zcv_client_release(e.s.c, &e.s.held[1]), 0);
	assert_int_equal(zcv_client_release(e.s.c, &e.s.held[1]), -EINVAL);
	e.s.n_held = 0;
	e.s.hold = false;
	assert_int_equal(produce(&e, 1), 1);
	assert_int_equal(run_until(&e, second_stream_frame), 0);
	assert_int_equal(zcv_server_dispatch(e.srv), 0);
	n = zcv_server_get_consumers(e.srv, info, 4);
	assert_int_equal(n, 1);
	assert_int_equal(info[0].state, ZCV_CONSUMER_STREAMING);
	assert_int_equal(e.s.frames_after_disconnect_of_old, 0);
	assert_int_equal(e.s.disconnects, 1);
	assert_int_equal(e.s.closes, 0);
	assert_int_equal(zcv_client_held(e.s.c), 0);
	env_finish(&e);
}

/* The producer ends with a connection error: the same, with its error. */
static void test_producer_vanishes(void **state)
{
	struct env e;

	env_init(&e);
	server_start(&e, NULL);
	assert_int_equal(connect_client(&e, &fast), 0);
	assert_int_equal(run_until(&e, streaming), 0);
	/* what a killed producer leaves: a reset connection, a stale socket */
	zcv_server_end(e.srv, -ECONNRESET, "crashed");
	server_stop(&e);
	assert_int_equal(run_until(&e, disconnected), 0);
	assert_int_equal(e.s.disconnect_error, -ECONNRESET);
	server_start(&e, NULL);
	assert_int_equal(run_until(&e, streaming), 0);
	assert_int_equal(e.s.formats, 2);
	env_finish(&e);
}

static void test_connect_before_server(void **state)
{
	struct env e;
	struct zcv_client_reconnect rc = { .wait = true, .backoff_min_ms = 1, .backoff_max_ms = 5 };

	env_init(&e);
	assert_int_equal(connect_client(&e, &rc), 0);
	assert_true(zcv_client_get_fd(e.s.c) >= 0);
	assert_int_equal(zcv_client_get_events(e.s.c), POLLIN);
	assert_int_equal(zcv_client_dispatch(e.s.c), 0);
	assert_null(zcv_client_get_format(e.s.c));
	server_start(&e, NULL);
	assert_int_equal(run_until(&e, streaming), 0);
	assert_int_equal(produce(&e, 1), 1);
	assert_int_equal(produce(&e, 2), 1);
	assert_int_equal(run_until(&e, two_frames), 0);
	/* wait without enable: the end of that producer is the end */
	server_stop(&e);
	assert_int_equal(run_until(&e, disconnected), 1);
	assert_int_equal(e.s.disconnects, 0);
	assert_int_equal(e.s.closes, 1);
	env_finish(&e);
}

static bool never(struct env *e)
{
	return false;
}

static void test_max_attempts(void **state)
{
	struct env e;
	struct zcv_client_reconnect rc = {
		.enable = true, .max_attempts = 3, .backoff_min_ms = 1, .backoff_max_ms = 2
	};

	env_init(&e);
	assert_int_equal(connect_client(&e, &rc), 0);
	assert_int_equal(run_until(&e, never), -ENOENT);
	assert_int_equal(e.s.closes, 1);
	assert_int_equal(e.s.close_error, -ENOENT);
	assert_non_null(strstr(e.s.close_reason, "gave up after 3 attempts"));
	/* after the end it keeps saying so */
	assert_int_equal(zcv_client_dispatch(e.s.c), -ENOENT);
	assert_int_equal(e.s.closes, 1);
	zcv_client_destroy(e.s.c);
	e.s.c = NULL;

	/* one attempt allowed: connect itself fails, as without reconnect */
	rc.max_attempts = 1;
	memset(&e.s, 0, sizeof(e.s));
	assert_int_equal(connect_client(&e, &rc), -ENOENT);
	assert_null(e.s.c);
	env_finish(&e);
}

static void test_bad_config(void **state)
{
	struct env e;
	static const struct zcv_client_reconnect bad[] = {
		{ .max_attempts = 3 },    /* neither enable nor wait */
		{ .backoff_min_ms = 10 }, /* idem */
		{ .enable = true, .backoff_min_ms = 50, .backoff_max_ms = 10 }, /* min > max */
		{ .enable = true, .backoff_max_ms = 60001 },                    /* too long */
		{ .wait = true, .backoff_min_ms = 70000 }, /* the default max < min */
	};

	env_init(&e);
	for (unsigned i = 0; i < ZCV_ARRAY_SIZE(bad); i++) {
		memset(&e.s, 0, sizeof(e.s));
		assert_int_equal(connect_client(&e, &bad[i]), -EINVAL);
		assert_null(e.s.c);
	}
	env_finish(&e);
}

static bool evicted(struct env *e)
{
	return e->s.closes > 0;
}

/* An eviction is the sink's doing: no reconnect, the client ends. */
static void test_no_reconnect_after_eviction(void **state)
{
	struct env e;
	struct zcv_server_config cfg = { .hold_timeout_ns = 20 * 1000000ull };

	env_init(&e);
	server_start(&e, &cfg);
	e.s.hold = true;
	assert_int_equal(connect_client(&e, &fast), 0);
	assert_int_equal(run_until(&e, streaming), 0);
	assert_int_equal(produce(&e, 1), 1);
	assert_int_equal(run_until(&e, evicted), -ETIMEDOUT);
	assert_int_equal(e.s.disconnects, 0);
	assert_int_equal(e.s.close_error, -ETIMEDOUT);
	assert_int_equal(zcv_client_dispatch(e.s.c), -ETIMEDOUT);
	assert_int_equal(zcv_client_release(e.s.c, &e.s.held[0]), 0);
	env_finish(&e);
}

static int fake_listen(struct env *e)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	assert_true(strlen(e->path) < sizeof(a.sun_path));
	memcpy(a.sun_path, e->path, strlen(e->path) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

/* Waits (dispatching the client) for its next connection to the fake. */
static int fake_accept(struct env *e, int lfd)
{
	for (int round = 0; round < MAX_ROUNDS; round++) {
		struct pollfd pfd[2] = {
			{ lfd, POLLIN, 0 },
			{ zcv_client_get_fd(e->s.c), zcv_client_get_events(e->s.c), 0 },
		};
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd >= 0)
			return fd;
		assert_true(poll(pfd, 2, 5000) > 0);
		assert_int_equal(zcv_client_dispatch(e->s.c), 0);
	}
	fail_msg("the client never connected");
	return -1;
}

/*
 * A hostile producer: one that accepts and hangs up at once is a failed
 * attempt each time (backoff, no disconnected callback, nothing kept
 * open); one that sends garbage ends the client with -EPROTO, no retry.
 */
static void test_hostile_producer(void **state)
{
	struct env e;
	int lfd, fd;

	env_init(&e);
	lfd = fake_listen(&e);
	assert_int_equal(connect_client(&e, &fast), 0);
	for (int i = 0; i < 5; i++) {
		fd = fake_accept(&e, lfd);
		close(fd);
	}
	fd = fake_accept(&e, lfd);
	assert_int_equal(e.s.disconnects, 0);
	assert_int_equal(e.s.closes, 0);
	assert_int_equal(e.s.formats, 0);
	assert_int_equal(send(fd, "garbage!", 8, 0), 8);
	assert_int_equal(run_until(&e, never), -EPROTO);
	assert_int_equal(e.s.closes, 1);
	assert_int_equal(e.s.disconnects, 0);
	/* it does not come back */
	assert_int_equal(zcv_client_dispatch(e.s.c), -EPROTO);
	assert_int_equal(accept4(lfd, NULL, NULL, SOCK_CLOEXEC), -1);
	close(fd);
	close(lfd);
	unlink(e.path);
	env_finish(&e);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, zcv_test_fd_setup, zcv_test_fd_teardown)
	const struct CMUnitTest tests[] = {
		T(test_server_restart),
		T(test_producer_vanishes),
		T(test_connect_before_server),
		T(test_max_attempts),
		T(test_bad_config),
		T(test_no_reconnect_after_eviction),
		T(test_hostile_producer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
