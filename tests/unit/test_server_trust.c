/* SPDX-License-Identifier: MIT */
/* What a consumer cannot do to the producer: the buffer budget (grants,
 * exhaustion to the copy tier, grants returned), the handshake quota and
 * timeout, sanitised names, and fds whose close would block (a lingering
 * TCP socket) disposed of without blocking the loop. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/sockios.h>
#include <cmocka.h>
#include <zcv/client.h>
#include <zcv/pool.h>
#include <zcv/server.h>
#include "closer.h"
#include "fdcheck.h"
#include "wire.h"

#define MAX_SINKS 4
#define SEC 1000000000ull

struct sink {
	struct zcv_client *c;
	bool manual; /* keep frames until the test releases them */
	int formats;
	struct zcv_client_format fmt;
	unsigned n_frames;
	struct zcv_client_frame held[64];
	unsigned n_held;
	int result;
};

struct env {
	char dir[64];
	char path[128];
	struct zcv_pool *pool;
	struct zcv_server *srv;
	struct sink sinks[MAX_SINKS];
};

/* The closer thread may still hold fds handed to it: wait for it before
 * counting, so the count says what was leaked, not what is in flight. */
static int fd_setup(void **state)
{
	assert_int_equal(zcv_fd_dispose_flush(10 * SEC), 0);
	return zcv_test_fd_setup(state);
}

static int fd_teardown(void **state)
{
	assert_int_equal(zcv_fd_dispose_flush(10 * SEC), 0);
	return zcv_test_fd_teardown(state);
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

	s->n_frames++;
	if (s->manual) {
		assert_true(s->n_held < ZCV_ARRAY_SIZE(s->held));
		s->held[s->n_held++] = *fr;
	} else {
		assert_int_equal(zcv_client_release(s->c, fr), 0);
	}
}

static void sink_closed(void *data, int error, const char *reason)
{
	(void)data;
	(void)error;
	(void)reason;
}

static const struct zcv_client_callbacks sink_cbs = {
	.size = sizeof(struct zcv_client_callbacks),
	.format = sink_format,
	.frame = sink_frame,
	.closed = sink_closed,
};

static void env_start(struct env *e, struct zcv_server_config *cfg, unsigned n_buffers)
{
	struct zcv_server_config def = { 0 };
	struct zcv_layout l;

	memset(e, 0, sizeof(*e));
	strcpy(e->dir, "/tmp/zcv-trust-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/s.sock", e->dir);
	if (!cfg)
		cfg = &def;
	cfg->socket_path = e->path;
	assert_int_equal(zcv_format_layout(ZCV_FMT_NV12, 64, 32, 64, &l), 0);
	assert_int_equal(zcv_pool_create_memfd(&l, n_buffers, 1, &e->pool), 0);
	assert_int_equal(zcv_server_create(cfg, NULL, NULL, e->pool, &e->srv), 0);
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

static int produce(struct env *e, uint64_t seq)
{
	struct zcv_buffer *b = zcv_pool_acquire(e->pool);
	struct zcv_frame_meta meta = { .sequence = seq, .timestamp_ns = zcv_now_ns() };

	if (!b)
		return -ENOBUFS;
	return zcv_server_publish(e->srv, b->index, &meta);
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

static unsigned count_unfinished(struct env *e)
{
	struct zcv_consumer_info all[80];
	unsigned n = zcv_server_get_consumers(e->srv, all, ZCV_ARRAY_SIZE(all)), k = 0;

	for (unsigned i = 0; i < n; i++)
		k += all[i].state == ZCV_CONSUMER_HANDSHAKE && !all[i].hello_seen;
	return k;
}

static unsigned budget_granted(struct env *e)
{
	unsigned total = 0, granted = 0;

	zcv_server_get_budget(e->srv, &total, &granted);
	assert_true(granted <= total);
	return granted;
}

/*
 * leave_room (as the producer sets it). Pool of 7, the source keeps 2: a
 * budget of 5. The first consumer asks
 * for 3 and gets 3 (2 are left for another), the second asks for 3 and
 * gets the 2 left, the third finds nothing left and gets the copy tier.
 * However hard they hold, the source keeps 2 buffers. A newcomer asking
 * for 3 when 3 are left gets 2: the pool was not sized for it, so a deep
 * hold is cut to leave the next one the default (but never below it).
 */
static void test_budget_grants(void **state)
{
	struct zcv_server_config cfg = { .max_hold = 3, .leave_room = true };
	struct zcv_consumer_info ia, ib, ic, id;
	struct sink *a, *b, *c, *d;
	unsigned total = 0;
	struct env e;

	env_start(&e, &cfg, 7);
	zcv_server_get_budget(e.srv, &total, NULL);
	assert_int_equal(total, 5);
	assert_int_equal(budget_granted(&e), 0);
	a = sink_connect(&e, 0, 0, 3, true);
	pump(&e);
	b = sink_connect(&e, 1, 0, 3, true);
	pump(&e);
	c = sink_connect(&e, 2, 0, 0, true);
	pump(&e);
	assert_int_equal(a->fmt.path, ZCV_PATH_MEMFD);
	assert_int_equal(a->fmt.max_hold, 3);
	assert_int_equal(b->fmt.path, ZCV_PATH_MEMFD);
	assert_int_equal(b->fmt.max_hold, 2);
	assert_int_equal(c->fmt.path, ZCV_PATH_COPY);
	/* it asked for no number: max_hold, 3 */
	assert_int_equal(c->fmt.max_hold, 3);
	/* its private pool: one buffer more than it may hold */
	assert_int_equal(c->fmt.n_buffers, 4);
	assert_int_equal(budget_granted(&e), 5);
	assert_true(get_info(&e, 1, &ia));
	assert_true(get_info(&e, 2, &ib));
	assert_true(get_info(&e, 3, &ic));
	assert_int_equal(ia.max_hold, 3);
	assert_int_equal(ia.constraints.hold, 3);
	assert_string_equal(ia.path_reason, "");
	assert_int_equal(ib.max_hold, 2);
	assert_int_equal(ib.constraints.hold, 3);
	assert_int_equal(ic.path, ZCV_PATH_COPY);
	assert_non_null(strstr(ic.path_reason, "budget is exhausted"));

	/* everyone holds everything: the source always has 2 buffers */
	for (uint64_t seq = 1; seq <= 10; seq++) {
		assert_true(produce(&e, seq) >= 0);
		pump(&e);
		assert_true(zcv_pool_count(e.pool, ZCV_BUFFER_FREE) >= 2);
	}
	assert_int_equal(a->n_held, 3);
	assert_int_equal(b->n_held, 2);
	assert_int_equal(c->n_held, 3);
	/* a holds frames 1-3, b frames 1-2 too: 3 lent, never more than 5 */
	assert_int_equal(zcv_pool_count(e.pool, ZCV_BUFFER_LENT), 3);

	/* a leaves: its 3 come back; a newcomer asking for 3 gets 2 of them */
	sink_drop(a);
	pump(&e);
	assert_int_equal(budget_granted(&e), 2);
	d = sink_connect(&e, 3, 0, 3, false);
	pump(&e);
	assert_int_equal(d->fmt.path, ZCV_PATH_MEMFD);
	assert_int_equal(d->fmt.max_hold, 2);
	assert_int_equal(budget_granted(&e), 4);
	assert_true(get_info(&e, 4, &id));
	assert_int_equal(id.max_hold, 2);
	assert_true(get_info(&e, 1, &ia));
	assert_int_equal(ia.state, ZCV_CONSUMER_GONE);
	/* b and c leave too: everything is back */
	sink_drop(b);
	sink_drop(c);
	pump(&e);
	assert_int_equal(budget_granted(&e), 2);
	env_finish(&e);
}

/*
 * Consumers admitted together (defer_admission, zcv_server_admit) whose
 * holds the budget covers whole are granted them whole, whatever their
 * order: budget 5, a asks 4 and b 1 -> 4 and 1. When it does not cover
 * them (b asks 2), a deep hold is cut to leave the next one 2: a gets 3,
 * b its 2.
 */
static void test_budget_planned(void **state)
{
	for (unsigned bhold = 1; bhold <= 2; bhold++) {
		struct zcv_server_config cfg = { .defer_admission = true, .leave_room = true };
		struct sink *a, *b;
		struct env e;

		env_start(&e, &cfg, 7);
		a = sink_connect(&e, 0, 0, 4, true);
		pump(&e);
		b = sink_connect(&e, 1, 0, bhold, true);
		pump(&e);
		assert_int_equal(zcv_server_pending_count(e.srv), 2);
		/* 4 + b's + the source's 2 */
		assert_int_equal(zcv_server_pending_buffers(e.srv), 6 + bhold);
		assert_int_equal(zcv_server_admit(e.srv), 2);
		pump(&e);
		assert_int_equal(a->fmt.max_hold, bhold == 1 ? 4 : 3);
		assert_int_equal(b->fmt.max_hold, bhold);
		assert_int_equal(a->fmt.path, ZCV_PATH_MEMFD);
		assert_int_equal(b->fmt.path, ZCV_PATH_MEMFD);
		env_finish(&e);
	}
}

/* source_reserve sets the budget; a pool no larger than it gives every
 * consumer the copy tier. */
static void test_budget_reserve(void **state)
{
	struct zcv_server_config cfg = { .source_reserve = 5 };
	struct env e;
	unsigned total = 9;

	env_start(&e, &cfg, 6);
	sink_connect(&e, 0, 0, 0, false);
	sink_connect(&e, 1, 0, 0, false);
	pump(&e);
	assert_int_equal(e.sinks[0].fmt.path, ZCV_PATH_MEMFD);
	assert_int_equal(e.sinks[0].fmt.max_hold, 1);
	assert_int_equal(e.sinks[1].fmt.path, ZCV_PATH_COPY);
	assert_int_equal(e.sinks[1].fmt.max_hold, 2);
	/* both still get every frame */
	for (uint64_t seq = 1; seq <= 5; seq++) {
		assert_int_equal(produce(&e, seq), 2);
		pump(&e);
	}
	assert_int_equal(e.sinks[0].n_frames, 5);
	assert_int_equal(e.sinks[1].n_frames, 5);
	env_finish(&e);

	env_start(&e, NULL, 2); /* default reserve 2: no budget at all */
	zcv_server_get_budget(e.srv, &total, NULL);
	assert_int_equal(total, 0);
	sink_connect(&e, 0, 0, 0, false);
	pump(&e);
	assert_int_equal(e.sinks[0].fmt.path, ZCV_PATH_COPY);
	assert_int_equal(produce(&e, 1), 1);
	pump(&e);
	assert_int_equal(e.sinks[0].n_frames, 1);
	assert_int_equal(zcv_pool_count(e.pool, ZCV_BUFFER_FREE), 2);
	env_finish(&e);
}

/* A new pool is granted anew in order of arrival: a consumer that found
 * the budget exhausted gets a zero-copy path when the new one has room. */
static void test_budget_set_pool(void **state)
{
	struct zcv_pool *p1, *p2, *p3;
	struct env e;

	env_start(&e, NULL, 4); /* budget 2 */
	p1 = e.pool;
	sink_connect(&e, 0, 0, 0, false);
	pump(&e);
	sink_connect(&e, 1, 0, 0, false);
	pump(&e);
	assert_int_equal(e.sinks[0].fmt.path, ZCV_PATH_MEMFD);
	assert_int_equal(e.sinks[1].fmt.path, ZCV_PATH_COPY);

	assert_int_equal(zcv_pool_create_memfd(&p1->layout, 6, 2, &p2), 0);
	assert_int_equal(zcv_server_set_pool(e.srv, p2), 0);
	e.pool = p2;
	pump(&e);
	assert_int_equal(e.sinks[0].fmt.generation, 2);
	assert_int_equal(e.sinks[0].fmt.path, ZCV_PATH_MEMFD);
	assert_int_equal(e.sinks[1].fmt.generation, 2);
	assert_int_equal(e.sinks[1].fmt.path, ZCV_PATH_MEMFD);
	assert_int_equal(e.sinks[1].fmt.max_hold, 2);
	assert_int_equal(budget_granted(&e), 4);

	/* back to a small pool: the first to arrive is served first */
	assert_int_equal(zcv_pool_create_memfd(&p1->layout, 3, 3, &p3), 0);
	assert_int_equal(zcv_server_set_pool(e.srv, p3), 0);
	e.pool = p3;
	pump(&e);
	assert_int_equal(e.sinks[0].fmt.generation, 3);
	assert_int_equal(e.sinks[0].fmt.path, ZCV_PATH_MEMFD);
	assert_int_equal(e.sinks[0].fmt.max_hold, 1);
	assert_int_equal(e.sinks[1].fmt.path, ZCV_PATH_COPY);
	assert_int_equal(budget_granted(&e), 1);
	assert_int_equal(produce(&e, 1), 2);
	pump(&e);
	assert_int_equal(e.sinks[0].n_frames + e.sinks[1].n_frames, 2);

	/* the old pools are borrowed until the server is gone */
	for (int i = 0; i < MAX_SINKS; i++) {
		zcv_client_destroy(e.sinks[i].c);
		e.sinks[i].c = NULL;
	}
	zcv_server_destroy(e.srv);
	e.srv = NULL;
	zcv_pool_destroy(p1);
	zcv_pool_destroy(p2);
	env_finish(&e);
}

/* Reads everything pending on a raw socket: true when the server said BYE
 * or hung up. */
static bool raw_was_dropped(int fd, int *ret_error)
{
	for (;;) {
		union zcv_msg m;
		int fds[ZCV_MSG_MAX_FDS];
		unsigned n = 0;
		int r = zcv_msg_read(fd, &m, fds, &n);

		if (r == -EAGAIN)
			return false;
		zcv_close_fds(fds, n);
		if (r <= 0)
			return true;
		if (m.hdr.type == ZCV_MSG_BYE) {
			if (ret_error)
				*ret_error = m.bye.error;
			return true;
		}
	}
}

/*
 * 40 connections that never say HELLO, in a burst: none counts as a
 * consumer; while all are younger than the grace a client has between
 * connect() and HELLO, up to 8 x the quota (32) wait and the rest are
 * refused; a well-behaved client that connects next is admitted at once
 * (older idle connections are replaced instead: see hostile.consumers,
 * whose attacker connects over 2.5 s).
 */
static void test_handshake_quota(void **state)
{
	/* the whole burst within the grace however slow this host is */
	struct zcv_server_config cfg = { .max_consumers = 1,
					 .handshake_grace_ns = 3600ull * 1000000000ull };
	int idle[40], dropped = 0;
	struct zcv_consumer_info all[80];
	unsigned n;
	struct env e;
	struct sink *s;

	env_start(&e, &cfg, 4);
	for (int i = 0; i < 40; i++) {
		idle[i] = zcv_socket_connect(e.path);
		assert_true(idle[i] >= 0);
		assert_int_equal(zcv_server_dispatch(e.srv), 0);
		assert_true(count_unfinished(&e) <= 32);
	}
	assert_int_equal(count_unfinished(&e), 32);
	assert_int_equal(zcv_server_streaming_count(e.srv), 0);
	for (int i = 0; i < 40; i++) {
		int err = 0;

		if (raw_was_dropped(idle[i], &err)) {
			assert_true(i >= 32);
			assert_int_equal(err, -EBUSY);
			dropped++;
		}
	}
	assert_int_equal(dropped, 8);
	n = zcv_server_get_consumers(e.srv, all, ZCV_ARRAY_SIZE(all));
	assert_int_equal(n, 40);
	assert_non_null(strstr(all[32].end_reason, "no HELLO yet"));
	assert_int_equal(all[32].end_error, -EBUSY);

	/* in at once: one dispatch reads its HELLO right after the accept
	 * (max_consumers 1 does not count the idle ones) */
	s = sink_connect(&e, 0, 0, 0, false);
	assert_int_equal(zcv_server_dispatch(e.srv), 0);
	assert_int_equal(zcv_server_streaming_count(e.srv), 1);
	assert_int_equal(zcv_client_wait_dispatch(s->c, 1000), 0);
	assert_int_equal(s->formats, 1);
	assert_true(count_unfinished(&e) <= 32);
	/* a second real consumer is over max_consumers */
	sink_connect(&e, 1, 0, 0, false);
	pump(&e);
	assert_int_equal(e.sinks[1].result, -EBUSY);
	for (int i = 0; i < 40; i++)
		close(idle[i]);
	env_finish(&e);
}

/* Past the grace, a newer idle connection replaces the oldest: never
 * more than the quota wait. */
static void test_handshake_replace(void **state)
{
	struct zcv_server_config cfg = { .handshake_grace_ns = 1 };
	int idle[20], replaced = 0;
	struct env e;

	env_start(&e, &cfg, 4);
	for (int i = 0; i < 20; i++) {
		idle[i] = zcv_socket_connect(e.path);
		assert_true(idle[i] >= 0);
		assert_int_equal(zcv_server_dispatch(e.srv), 0);
		assert_true(count_unfinished(&e) <= 4);
	}
	for (int i = 0; i < 20; i++) {
		int err = 0;

		if (raw_was_dropped(idle[i], &err)) {
			assert_true(i < 16); /* the oldest went */
			assert_int_equal(err, -EBUSY);
			replaced++;
		}
		close(idle[i]);
	}
	assert_int_equal(replaced, 16);
	env_finish(&e);
}

/* A connection without HELLO is dropped after handshake_timeout_ns; the
 * server's fd wakes the loop for it. */
static void test_handshake_timeout(void **state)
{
	struct zcv_server_config cfg = { .handshake_timeout_ns = 50 * 1000000ull };
	struct pollfd pfd;
	struct env e;
	int fd, err = 0;

	env_start(&e, &cfg, 4);
	fd = zcv_socket_connect(e.path);
	assert_true(fd >= 0);
	assert_int_equal(zcv_server_dispatch(e.srv), 0);
	assert_int_equal(count_unfinished(&e), 1);
	pfd = (struct pollfd){ .fd = zcv_server_get_fd(e.srv), .events = POLLIN };
	for (int i = 0; i < 10 && count_unfinished(&e); i++) {
		assert_int_equal(poll(&pfd, 1, 2000), 1);
		assert_int_equal(zcv_server_dispatch(e.srv), 0);
	}
	assert_int_equal(count_unfinished(&e), 0);
	assert_true(raw_was_dropped(fd, &err));
	assert_int_equal(err, -ETIMEDOUT);
	close(fd);
	env_finish(&e);
}

/* Names reach terminals: control bytes and non-ASCII become '?'. */
static void test_name_sanitised(void **state)
{
	struct zcv_msg_hello h;
	size_t len = zcv_msg_init(&h, ZCV_MSG_HELLO);
	struct zcv_consumer_info info;
	struct env e;
	int fd;

	env_start(&e, NULL, 4);
	fd = zcv_socket_connect(e.path);
	assert_true(fd >= 0);
	h.min_version = 1;
	h.caps = ZCV_CAP_MEMFD;
	strcpy(h.name, "a\033[31mb\nc\xc3\xa9\x7f");
	assert_int_equal(zcv_msg_send(fd, &h, len, NULL, 0), 0);
	assert_int_equal(zcv_server_dispatch(e.srv), 0);
	assert_true(get_info(&e, 1, &info));
	assert_string_equal(info.name, "a?[31mb?c???");
	assert_int_equal(info.state, ZCV_CONSUMER_STREAMING);
	close(fd);
	env_finish(&e);
}

/*
 * A TCP socket whose close blocks: connected to a listener that never
 * accepts nor reads, its send queue full, SO_LINGER {1, linger_s}. The
 * preconditions are checked (data queued, lingering on), so the test
 * knows a plain close() would wait up to linger_s.
 */
static int lingering_socket(unsigned linger_s, int *ret_listener)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	struct linger lg = { .l_onoff = 1, .l_linger = (int)linger_s }, got = { 0 };
	socklen_t glen = sizeof(got);
	int small = 4096, big = 1 << 20, lst, s, queued = 0;
	char junk[4096] = { 0 };

	lst = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lst >= 0);
	setsockopt(lst, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	assert_int_equal(bind(lst, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lst, 1), 0);
	assert_int_equal(getsockname(lst, (struct sockaddr *)&a, &alen), 0);
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	/* far more queued than the peer, whatever it frees by collapsing its
	 * queue, will ever take: the send queue never drains */
	setsockopt(s, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
	/* Full means the peer's window is shut, not just our buffer full of
	 * data in flight that is about to be acked: fill until a pause of
	 * 20 ms lets nothing more out. */
	for (int quiet = 0, last = -1, round = 0; quiet < 2 && round < 250; round++) {
		bool sent = false;
		int q = 0;

		while (send(s, junk, sizeof(junk), MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
			sent = true;
		usleep(20000);
		ioctl(s, SIOCOUTQ, &q);
		quiet = !sent && q > 0 && q == last ? quiet + 1 : 0;
		last = q;
	}
	assert_int_equal(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	assert_int_equal(getsockopt(s, SOL_SOCKET, SO_LINGER, &got, &glen), 0);
	assert_true(got.l_onoff && got.l_linger == (int)linger_s);
	assert_int_equal(ioctl(s, SIOCOUTQ, &queued), 0);
	assert_true(queued > 0);
	*ret_listener = lst;
	return s;
}

static bool fd_is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/*
 * The closer takes a socket that would linger for an hour: dispose
 * returns (were it to close here, this test would hang until ctest's
 * timeout) and the closer thread finishes it too (flush returns 0), so
 * it is not stuck either. Same for one waiting in a unix socket's queue.
 */
static void test_closer_lingering(void **state)
{
	struct zcv_closer_stats before, after;
	int lst, s, sp[2], byte = 0;

	zcv_fd_dispose_get_stats(&before);
	s = lingering_socket(3600, &lst);
	zcv_fd_dispose(s);
	assert_int_equal(zcv_fd_dispose_flush(10 * SEC), 0);
	assert_false(fd_is_open(s));
	close(lst);

	/* nested: the lingering socket is in flight inside a unix socket */
	s = lingering_socket(3600, &lst);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	assert_int_equal(zcv_msg_send(sp[0], &byte, 1, &s, 1), 0);
	close(s);
	close(sp[0]);
	zcv_fd_dispose(sp[1]);
	assert_int_equal(zcv_fd_dispose_flush(10 * SEC), 0);
	close(lst);

	zcv_fd_dispose_get_stats(&after);
	assert_int_equal(after.closed_sync, before.closed_sync);
	assert_int_equal(after.queued - before.queued, 2);
	assert_int_equal(after.closed_async - before.closed_async, 2);
	assert_int_equal(after.pending, 0);
	/* -1 is ignored, arrays are reset */
	zcv_fd_dispose(-1);
	{
		int p[2];

		assert_int_equal(pipe2(p, O_CLOEXEC), 0);
		zcv_fds_dispose(p, 2);
		assert_int_equal(p[0], -1);
		assert_int_equal(p[1], -1);
	}
}

/* With the thread stalled (test hook) the queue fills; beyond it the
 * caller closes, counted. Nothing is lost either way. */
static void test_closer_queue_full(void **state)
{
	struct zcv_closer_stats before, after;
	struct rlimit rl;
	enum { N = 1100 };
	int fds[N];

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < N + 100) {
		rl.rlim_cur = rl.rlim_max;
		if (rl.rlim_cur < N + 100 || setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			skip();
			return;
		}
	}
	zcv_fd_dispose_get_stats(&before);
	zcv_fd_dispose_hold(true);
	for (int i = 0; i < N; i++) {
		fds[i] = memfd_create("q", MFD_CLOEXEC);
		assert_true(fds[i] >= 0);
	}
	zcv_fds_dispose(fds, N);
	zcv_fd_dispose_get_stats(&after);
	assert_true(after.closed_sync - before.closed_sync > 0);
	assert_int_equal(after.closed_sync - before.closed_sync + after.pending, N);
	assert_int_equal(zcv_fd_dispose_flush(1000000), -ETIMEDOUT);
	zcv_fd_dispose_hold(false);
	assert_int_equal(zcv_fd_dispose_flush(10 * SEC), 0);
	zcv_fd_dispose_get_stats(&after);
	assert_int_equal(after.pending, 0);
	assert_int_equal(after.closed_sync - before.closed_sync +
				 (after.closed_async - before.closed_async),
			 N);
}

/*
 * A consumer sends a lingering TCP socket with its HELLO, another with a
 * RELEASE, and a third queues messages carrying more behind a malformed
 * one: each is dropped, and dispatch returns (a close on the loop would
 * hang it for an hour), while a good consumer keeps getting frames.
 */
static void test_server_lingering_fds(void **state)
{
	struct zcv_msg_hello h;
	size_t len = zcv_msg_init(&h, ZCV_MSG_HELLO);
	struct zcv_consumer_info info;
	struct env e;
	struct sink *good, *bad;
	int lst[4], s, fd, err = 0;
	struct zcv_closer_stats before, after;

	zcv_fd_dispose_get_stats(&before);
	env_start(&e, NULL, 6);
	good = sink_connect(&e, 0, 0, 0, false);
	pump(&e);

	/* with the HELLO */
	fd = zcv_socket_connect(e.path);
	assert_true(fd >= 0);
	h.min_version = 1;
	h.caps = ZCV_CAP_MEMFD;
	strcpy(h.name, "linger");
	s = lingering_socket(3600, &lst[0]);
	assert_int_equal(zcv_msg_send(fd, &h, len, &s, 1), 0);
	close(s);
	assert_int_equal(produce(&e, 1), 1);
	pump(&e);
	assert_true(raw_was_dropped(fd, &err));
	assert_int_equal(err, -EPROTO);
	assert_true(get_info(&e, 2, &info));
	assert_int_equal(info.end_error, -EPROTO);
	close(fd);

	/* with a RELEASE */
	bad = sink_connect(&e, 1, 0, 0, true);
	pump(&e);
	assert_int_equal(produce(&e, 2), 2);
	pump(&e);
	assert_int_equal(bad->n_held, 1);
	{
		struct zcv_msg_release r;
		size_t rl = zcv_msg_init(&r, ZCV_MSG_RELEASE);

		r.generation = bad->held[0].generation;
		r.index = bad->held[0].index;
		r.sequence = bad->held[0].sequence;
		s = lingering_socket(3600, &lst[1]);
		assert_int_equal(zcv_msg_send(zcv_client_get_fd(bad->c), &r, rl, &s, 1), 0);
		close(s);
	}
	pump(&e);
	assert_int_equal(produce(&e, 3), 1);
	pump(&e);
	assert_int_equal(bad->result, -EPROTO);

	/* queued behind a malformed message: the server reads only that one,
	 * the rest goes with the socket, emptied by the closer */
	fd = zcv_socket_connect(e.path);
	assert_true(fd >= 0);
	assert_int_equal(zcv_msg_send(fd, "junk", 4, NULL, 0), 0);
	for (int i = 2; i < 4; i++) {
		s = lingering_socket(3600, &lst[i]);
		assert_int_equal(zcv_msg_send(fd, &h, len, &s, 1), 0);
		close(s);
	}
	assert_int_equal(produce(&e, 4), 1);
	pump(&e);
	assert_true(raw_was_dropped(fd, &err));
	assert_int_equal(err, -EPROTO);
	close(fd);

	assert_int_equal(produce(&e, 5), 1);
	pump(&e);
	assert_int_equal(good->n_frames, 5);
	assert_int_equal(good->result, 0);
	assert_int_equal(zcv_fd_dispose_flush(10 * SEC), 0);
	zcv_fd_dispose_get_stats(&after);
	assert_int_equal(after.closed_sync, before.closed_sync);
	for (int i = 0; i < 4; i++)
		close(lst[i]);
	env_finish(&e);
}

/* The kernel's maximum of fds in one message: all taken in (none left
 * for the kernel to release on our loop) and all disposed of. */
static void test_server_many_fds(void **state)
{
	struct zcv_msg_hello h;
	size_t len = zcv_msg_init(&h, ZCV_MSG_HELLO);
	int fds[ZCV_KERNEL_MAX_FDS], fd, err = 0;
	char control[CMSG_SPACE(sizeof(fds))];
	struct iovec iov = { .iov_base = &h, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = control,
			     .msg_controllen = sizeof(control) };
	struct cmsghdr *cm;
	struct env e;
	int n_before;

	env_start(&e, NULL, 4);
	fd = zcv_socket_connect(e.path);
	assert_true(fd >= 0);
	for (int i = 0; i < ZCV_KERNEL_MAX_FDS; i++) {
		fds[i] = memfd_create("many", MFD_CLOEXEC);
		assert_true(fds[i] >= 0);
	}
	memset(control, 0, sizeof(control));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	h.min_version = 1;
	assert_int_equal(sendmsg(fd, &mh, 0), (ssize_t)len);
	for (int i = 0; i < ZCV_KERNEL_MAX_FDS; i++)
		close(fds[i]);
	n_before = zcv_test_count_fds();
	assert_int_equal(zcv_server_dispatch(e.srv), 0);
	assert_true(raw_was_dropped(fd, &err));
	assert_int_equal(err, -EPROTO);
	assert_int_equal(zcv_fd_dispose_flush(10 * SEC), 0);
	/* all 253 and the connection accepted meanwhile are closed again */
	assert_int_equal(zcv_test_count_fds(), n_before);
	close(fd);
	env_finish(&e);
}

/* A runtime directory for the default socket path, and XDG_RUNTIME_DIR
 * pointing at it for the test's duration. */
struct rtdir {
	char dir[64], sub[80], sock[112];
	char *saved;
};

static void rtdir_enter(struct rtdir *rt)
{
	const char *x = getenv("XDG_RUNTIME_DIR");

	strcpy(rt->dir, "/tmp/zcv-rt-XXXXXX");
	assert_non_null(mkdtemp(rt->dir));
	snprintf(rt->sub, sizeof(rt->sub), "%s/zcv", rt->dir);
	snprintf(rt->sock, sizeof(rt->sock), "%s/default.sock", rt->sub);
	rt->saved = x ? strdup(x) : NULL;
	assert_int_equal(setenv("XDG_RUNTIME_DIR", rt->dir, 1), 0);
}

static void rtdir_leave(struct rtdir *rt)
{
	unlink(rt->sock);
	rmdir(rt->sub);
	rmdir(rt->dir);
	if (rt->saved)
		setenv("XDG_RUNTIME_DIR", rt->saved, 1);
	else
		unsetenv("XDG_RUNTIME_DIR");
	free(rt->saved);
}

static void assert_mode(const char *path, mode_t mode, gid_t gid)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, mode);
	assert_int_equal(st.st_gid, gid);
}

/*
 * --group with the default socket path: the directory (created 0700)
 * becomes the group's, 0710, so members may reach the socket (0660, the
 * group's) but neither list nor write the directory; a consumer of ours
 * still finds the socket by the default path. The directory checks accept
 * exactly 0700, 0710 and 0750, never other access or group write. When the
 * group cannot pass the runtime directory above, the producer says so
 * rather than serve a group that cannot reach it.
 */
static void test_group_default_path(void **state)
{
	static const struct {
		mode_t mode;
		int r;
	} modes[] = { { 0700, 0 },      { 0710, 0 },      { 0750, 0 },
		      { 0770, -EPERM }, { 0730, -EPERM }, { 0711, -EPERM },
		      { 0705, -EPERM }, { 0701, -EPERM }, { 01710, 0 } };
	struct zcv_server_config cfg = { .allow_group = true, .allowed_gid = getegid() };
	struct zcv_client_config ccfg = { .size = sizeof(ccfg), .name = "same-user" };
	struct zcv_server *srv;
	struct zcv_layout l;
	struct zcv_pool *pool;
	struct sink s = { 0 };
	char path[128];
	struct rtdir rt;

	rtdir_enter(&rt);
	/* the runtime directory lets the group pass (0710, the group's) */
	assert_int_equal(chown(rt.dir, (uid_t)-1, getegid()), 0);
	assert_int_equal(chmod(rt.dir, 0710), 0);
	assert_int_equal(zcv_format_layout(ZCV_FMT_NV12, 64, 32, 64, &l), 0);
	assert_int_equal(zcv_pool_create_memfd(&l, 4, 1, &pool), 0);
	assert_int_equal(zcv_server_create(&cfg, NULL, NULL, pool, &srv), 0);
	assert_string_equal(zcv_server_socket_path(srv), rt.sock);
	assert_mode(rt.sub, 0710, getegid());
	assert_mode(rt.sock, 0660, getegid());
	assert_int_equal(zcv_client_connect(&ccfg, &sink_cbs, &s, &s.c), 0);
	for (int round = 0; round < 8 && !s.formats; round++) {
		assert_int_equal(zcv_server_dispatch(srv), 0);
		assert_int_equal(zcv_client_dispatch(s.c), 0);
	}
	assert_int_equal(s.formats, 1);
	assert_int_equal(s.fmt.path, ZCV_PATH_MEMFD);
	zcv_client_destroy(s.c);
	zcv_server_destroy(srv);

	for (unsigned i = 0; i < ZCV_ARRAY_SIZE(modes); i++) {
		assert_int_equal(chmod(rt.sub, modes[i].mode), 0);
		assert_int_equal(zcv_socket_default_path(path, sizeof(path)), modes[i].r);
	}
	/* a runtime directory closed to the group: refused, nothing left behind */
	assert_int_equal(chmod(rt.sub, 0700), 0);
	assert_int_equal(chmod(rt.dir, 0700), 0);
	assert_int_equal(zcv_server_create(&cfg, NULL, NULL, pool, &srv), -EACCES);
	assert_int_equal(access(rt.sock, F_OK), -1);
	/* without a group it is no obstacle */
	assert_int_equal(zcv_server_create(NULL, NULL, NULL, pool, &srv), 0);
	zcv_server_destroy(srv);
	zcv_pool_destroy(pool);
	rtdir_leave(&rt);
}

/* --group with a socket path of its own: the socket becomes the group's,
 * 0660; a group we may not give it to is an error, not a socket that
 * silently serves only us. */
static void test_group_socket_path(void **state)
{
	struct zcv_server_config cfg = { .allow_group = true, .allowed_gid = getegid() };
	struct zcv_server *srv = NULL;
	struct env e;

	env_start(&e, &cfg, 4);
	assert_mode(e.path, 0660, getegid());
	env_finish(&e);
	/* root may give it to any group: only others can be refused */
	if (geteuid() == 0)
		return;
	cfg.allowed_gid = getegid() ? 0 : 1;
	if (group_member(cfg.allowed_gid))
		return;
	env_start(&e, NULL, 4);
	zcv_server_destroy(e.srv);
	e.srv = NULL;
	cfg.socket_path = e.path;
	assert_int_equal(zcv_server_create(&cfg, NULL, NULL, e.pool, &srv), -EPERM);
	assert_int_equal(access(e.path, F_OK), -1);
	env_finish(&e);
}

/* The kernel's time of the message queued first on fd, which stays
 * queued (MSG_PEEK), in ns of CLOCK_REALTIME; 0 when none. */
static uint64_t queued_at(int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct timespec)) +
			 CMSG_SPACE(ZCV_MSG_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} u;
	char data[ZCV_MSG_MAX_SIZE];
	struct iovec iov = { data, sizeof(data) };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	uint64_t at = 0;

	if (recvmsg(fd, &mh, MSG_PEEK | MSG_DONTWAIT) <= 0)
		return 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
			struct timespec ts;

			memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
			at = (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
		}
	return at;
}

/*
 * A copy-tier consumer that connected first does not delay a zero-copy
 * one: the zero-copy FRAME is queued before the copy is made. The order
 * is read from the kernel's receive timestamps of the two messages
 * (SO_TIMESTAMPNS, peeked while they wait, before the clients read).
 */
static void test_zero_copy_before_copies(void **state)
{
	struct env e;
	struct sink *copy, *zc;
	uint64_t t_copy, t_zc;
	int on = 1, off = 0;

	(void)state;
	env_start(&e, NULL, 8);
	copy = sink_connect(&e, 0, ZCV_CAP_NEEDS_COPY | ZCV_CAP_MEMFD, 2, false);
	pump(&e);
	zc = sink_connect(&e, 1, 0, 2, false);
	pump(&e);
	assert_int_equal(zcv_client_get_format(copy->c)->path, ZCV_PATH_COPY);
	assert_int_equal(zcv_client_get_format(zc->c)->path, ZCV_PATH_MEMFD);
	for (int i = 0; i < 2; i++)
		assert_int_equal(setsockopt(zcv_client_get_fd(e.sinks[i].c), SOL_SOCKET,
					    SO_TIMESTAMPNS, &on, sizeof(on)),
				 0);

	assert_int_equal(produce(&e, 1), 2);
	t_copy = queued_at(zcv_client_get_fd(copy->c));
	t_zc = queued_at(zcv_client_get_fd(zc->c));
	assert_true(t_copy && t_zc);
	assert_true(t_zc < t_copy);

	for (int i = 0; i < 2; i++)
		assert_int_equal(setsockopt(zcv_client_get_fd(e.sinks[i].c), SOL_SOCKET,
					    SO_TIMESTAMPNS, &off, sizeof(off)),
				 0);
	pump(&e);
	assert_int_equal(copy->n_frames, 1);
	assert_int_equal(zc->n_frames, 1);
	env_finish(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, fd_setup, fd_teardown)
		T(test_budget_grants),           T(test_budget_planned),
		T(test_budget_reserve),          T(test_budget_set_pool),
		T(test_handshake_quota),         T(test_handshake_replace),
		T(test_handshake_timeout),       T(test_name_sanitised),
		T(test_closer_lingering),        T(test_closer_queue_full),
		T(test_server_lingering_fds),    T(test_server_many_fds),
		T(test_group_default_path),      T(test_group_socket_path),
		T(test_zero_copy_before_copies),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
