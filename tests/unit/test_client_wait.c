/* SPDX-License-Identifier: MIT */
/*
 * zcv_client_wait_dispatch()'s blocking path: one recvmmsg without poll,
 * no lock held while it sleeps. A fake producer on a real socket.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>
#include <zcv/client.h>
#include <zcv/memory.h>
#include "closer.h"
#include "fake_producer.h"
#include "fdcheck.h"
#include "protocol.h"
#include "wire.h"

#define BUF_SIZE 4096
#define N_BUFFERS 4
#define MAX_FRAMES 256

struct sink {
	struct zcv_client *c;
	bool hold; /* keep frames for the test; else release in the callback */
	unsigned formats;
	unsigned n_frames;
	uint64_t seqs[MAX_FRAMES];
	struct zcv_client_frame held[MAX_FRAMES];
	unsigned n_held;
	unsigned closed;
	int closed_error;
};

static void sink_format(void *data, const struct zcv_client_format *fmt)
{
	struct sink *s = data;

	(void)fmt;
	s->formats++;
}

/* Runs on whichever thread dispatches: no cmocka assertion here (they
 * jump back into the main thread's stack); the main thread checks what
 * was recorded. */
static void sink_frame(void *data, const struct zcv_client_frame *fr)
{
	struct sink *s = data;

	if (s->n_frames < MAX_FRAMES)
		s->seqs[s->n_frames] = fr->sequence;
	s->n_frames++;
	if (s->hold && s->n_held < MAX_FRAMES)
		s->held[s->n_held++] = *fr;
	else
		(void)zcv_client_release(s->c, fr);
}

static void sink_closed(void *data, int error, const char *reason)
{
	struct sink *s = data;

	(void)reason;
	s->closed++;
	s->closed_error = error;
}

static const struct zcv_client_callbacks sink_cbs = {
	.size = sizeof(struct zcv_client_callbacks),
	.format = sink_format,
	.frame = sink_frame,
	.closed = sink_closed,
};

struct fake {
	char dir[64], path[128];
	int listen_fd, fd;
	struct zcv_layout l;
	struct sink s;
};

static void fake_start(struct fake *f)
{
	struct zcv_client_config cfg = { .size = sizeof(struct zcv_client_config) };
	union zcv_msg m;
	int fds[ZCV_MSG_MAX_FDS];
	unsigned n = 0;

	memset(f, 0, sizeof(*f));
	strcpy(f->dir, "/tmp/zcv-wait-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/p.sock", f->dir);
	f->listen_fd = zcv_socket_listen(f->path, 0600);
	assert_true(f->listen_fd >= 0);
	assert_int_equal(zcv_format_layout(ZCV_FMT_NV12, 64, 32, 64, &f->l), 0);
	assert_true(f->l.size <= BUF_SIZE);
	cfg.socket_path = f->path;
	assert_int_equal(zcv_client_connect(&cfg, &sink_cbs, &f->s, &f->s.c), 0);
	f->fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(f->fd >= 0);
	assert_int_equal(zcv_msg_read(f->fd, &m, fds, &n), (int)sizeof(struct zcv_msg_hello));
	assert_int_equal(m.hdr.type, ZCV_MSG_HELLO);
}

static void fake_finish(struct fake *f)
{
	zcv_client_destroy(f->s.c);
	if (f->fd >= 0)
		close(f->fd);
	close(f->listen_fd);
	unlink(f->path);
	rmdir(f->dir);
}

/* WELCOME and N_BUFFERS sealed memfd BUFFERs of generation 1. */
static void fake_pool(struct fake *f)
{
	fake_send_welcome(f->fd, &f->l, ZCV_PATH_MEMFD, N_BUFFERS, N_BUFFERS, 1);
	for (unsigned i = 0; i < N_BUFFERS; i++) {
		int fd = zcv_memfd_create("wait", BUF_SIZE);

		assert_true(fd >= 0);
		assert_int_equal(zcv_memfd_seal_readonly(fd), 0);
		fake_send_buffer(f->fd, i, 1, fd, BUF_SIZE);
		close(fd);
	}
}

static void fake_frame(struct fake *f, unsigned idx, uint64_t seq)
{
	struct zcv_msg_frame fr;
	size_t len = zcv_msg_init(&fr, ZCV_MSG_FRAME);

	fr.generation = 1;
	fr.index = idx;
	fr.sequence = seq;
	fr.timestamp_ns = seq;
	assert_int_equal(zcv_msg_send(f->fd, &fr, len, NULL, 0), 0);
}

/* The next RELEASE the client sends (waiting up to 5 s for it). */
static void fake_expect_release(struct fake *f, unsigned idx, uint64_t seq)
{
	struct pollfd pfd = { .fd = f->fd, .events = POLLIN };
	union zcv_msg m;
	int fds[ZCV_MSG_MAX_FDS];
	unsigned n = 0;

	assert_int_equal(poll(&pfd, 1, 5000), 1);
	assert_int_equal(zcv_msg_read(f->fd, &m, fds, &n), (int)sizeof(struct zcv_msg_release));
	assert_int_equal(m.hdr.type, ZCV_MSG_RELEASE);
	assert_int_equal(m.release.generation, 1);
	assert_int_equal(m.release.index, idx);
	assert_int_equal(m.release.sequence, seq);
}

static void fake_expect_nothing(struct fake *f)
{
	union zcv_msg m;
	int fds[ZCV_MSG_MAX_FDS];
	unsigned n = 0;

	assert_int_equal(zcv_msg_read(f->fd, &m, fds, &n), -EAGAIN);
}

/* After waits that got nothing, nothing was lost: the first frame comes
 * (and goes back). */
static void assert_stream_goes_on(struct fake *f)
{
	assert_int_equal(f->s.n_frames, 0);
	fake_frame(f, 0, 1);
	assert_int_equal(zcv_client_wait_dispatch(f->s.c, 1000), 0);
	assert_int_equal(f->s.n_frames, 1);
	assert_int_equal(f->s.seqs[0], 1);
	fake_expect_release(f, 0, 1);
}

/* The client's socket is set up for the blocking path: O_NONBLOCK clear,
 * SO_RCVTIMEO as the last wait asked (the kernel keeps it in jiffies:
 * read back rounded up to one). */
static void assert_blocking(struct zcv_client *c, int timeout_ms)
{
	int fd = zcv_client_get_fd(c);
	struct timeval tv;
	socklen_t len = sizeof(tv);

	assert_true(fd >= 0);
	assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len), 0);
	assert_in_range(tv.tv_sec * 1000 + tv.tv_usec / 1000, timeout_ms, timeout_ms + 10);
}

/* A thread in zcv_client_wait_dispatch(). */
struct waiter {
	pthread_t thread;
	pid_t tid;
	struct zcv_client *c;
	int timeout_ms;
	int ret;
	volatile sig_atomic_t started;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;

	w->tid = (pid_t)syscall(SYS_gettid);
	__atomic_store_n(&w->started, 1, __ATOMIC_RELEASE);
	w->ret = zcv_client_wait_dispatch(w->c, w->timeout_ms);
	return NULL;
}

/* Starts the waiter and returns once it sleeps in recvmmsg (the kernel's
 * word for it, /proc/self/task/TID/syscall: no sleep, no guess). */
static void waiter_start(struct waiter *w, struct zcv_client *c, int timeout_ms)
{
	char path[64];
	struct timespec start;

	memset(w, 0, sizeof(*w));
	w->c = c;
	w->timeout_ms = timeout_ms;
	w->ret = 1000;
	assert_int_equal(pthread_create(&w->thread, NULL, waiter_main, w), 0);
	while (!__atomic_load_n(&w->started, __ATOMIC_ACQUIRE))
		sched_yield();
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)w->tid);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct timespec now;
		char line[256] = "";
		FILE *f = fopen(path, "re");
		long nr = -1;
		char state = 0;
		char stat_path[64], stat[512] = "";
		FILE *sf;

		assert_non_null(f);
		if (fgets(line, sizeof(line), f))
			nr = strtol(line, NULL, 10);
		fclose(f);
		/* in recvmmsg and asleep there, not merely entering it */
		snprintf(stat_path, sizeof(stat_path), "/proc/self/task/%d/stat", (int)w->tid);
		sf = fopen(stat_path, "re");
		assert_non_null(sf);
		if (fgets(stat, sizeof(stat), sf)) {
			char *p = strrchr(stat, ')');

			if (p && p[1] == ' ')
				state = p[2];
		}
		fclose(sf);
		if (nr == SYS_recvmmsg && state == 'S')
			return;
		/* the poll path (or a busy loop) would never get there */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > 10)
			fail_msg("the waiter is not asleep in recvmmsg (syscall %ld, state %c)", nr,
				 state ? state : '?');
		sched_yield();
	}
}

/* Joins the waiter; fails the test when it does not return within 10 s. */
static int waiter_join(struct waiter *w)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	assert_int_equal(pthread_timedjoin_np(w->thread, NULL, &ts), 0);
	return w->ret;
}

/* Frames arrive through the blocking path in order, none lost; a burst
 * longer than one recvmmsg batch comes in one call. */
static void test_frames_in_order(void **state)
{
	struct fake f;
	uint64_t seq = 1;

	(void)state;
	fake_start(&f);
	/* pool (1 + N_BUFFERS messages) and 3 frames: more than one batch */
	fake_pool(&f);
	for (unsigned i = 0; i < 3; i++, seq++)
		fake_frame(&f, (unsigned)(seq % N_BUFFERS), seq);
	assert_int_equal(zcv_client_wait_dispatch(f.s.c, 1000), 0);
	assert_blocking(f.s.c, 1000);
	assert_int_equal(f.s.formats, 1);
	assert_int_equal(f.s.n_frames, 3);
	for (uint64_t k = 1; k < seq; k++)
		fake_expect_release(&f, (unsigned)(k % N_BUFFERS), k);
	/* one frame at a time, as at a camera's rate, then bursts */
	for (unsigned round = 0; round < 40; round++) {
		unsigned burst = round < 20 ? 1 : 1 + round % N_BUFFERS;
		uint64_t first = seq;
		unsigned before = f.s.n_frames;

		for (unsigned i = 0; i < burst; i++, seq++)
			fake_frame(&f, (unsigned)(seq % N_BUFFERS), seq);
		while (f.s.n_frames < before + burst)
			assert_int_equal(zcv_client_wait_dispatch(f.s.c, 1000), 0);
		assert_int_equal(f.s.n_frames, before + burst);
		for (uint64_t k = first; k < seq; k++)
			fake_expect_release(&f, (unsigned)(k % N_BUFFERS), k);
	}
	assert_int_equal(f.s.n_frames, seq - 1);
	for (unsigned i = 0; i < f.s.n_frames; i++)
		assert_int_equal(f.s.seqs[i], i + 1);
	assert_int_equal(zcv_client_dropped(f.s.c), 0);
	assert_int_equal(zcv_client_held(f.s.c), 0);
	fake_expect_nothing(&f);
	assert_int_equal(f.s.closed, 0);
	fake_finish(&f);
}

/* Nothing comes: 0 after the timeout, no frame; a new timeout is set, the
 * same one is not set again (the value read back is what was asked). */
static void test_timeout(void **state)
{
	struct fake f;

	(void)state;
	fake_start(&f);
	fake_pool(&f);
	assert_int_equal(zcv_client_wait_dispatch(f.s.c, 1000), 0);
	assert_int_equal(f.s.formats, 1);
	assert_int_equal(zcv_client_wait_dispatch(f.s.c, 20), 0);
	assert_blocking(f.s.c, 20);
	assert_int_equal(zcv_client_wait_dispatch(f.s.c, 30), 0);
	assert_blocking(f.s.c, 30);
	assert_int_equal(zcv_client_wait_dispatch(f.s.c, 30), 0);
	assert_int_equal(f.s.n_frames, 0);
	assert_int_equal(f.s.closed, 0);
	assert_stream_goes_on(&f);
	fake_finish(&f);
}

/* A release from another thread while one waits in wait_dispatch reaches
 * the producer (the wait holds no lock); the producer's next frame wakes
 * the waiter. Meanwhile a second dispatcher is told -EBUSY. */
static void test_release_while_waiting(void **state)
{
	struct fake f;
	struct waiter w;

	(void)state;
	fake_start(&f);
	f.s.hold = true;
	fake_pool(&f);
	fake_frame(&f, 0, 1);
	assert_int_equal(zcv_client_wait_dispatch(f.s.c, 1000), 0);
	assert_int_equal(f.s.n_held, 1);

	waiter_start(&w, f.s.c, 5000);
	assert_int_equal(zcv_client_dispatch(f.s.c), -EBUSY);
	assert_int_equal(zcv_client_wait_dispatch(f.s.c, 10), -EBUSY);
	assert_int_equal(zcv_client_release(f.s.c, &f.s.held[0]), 0);
	assert_int_equal(zcv_client_queued_releases(f.s.c), 0);
	fake_expect_release(&f, 0, 1);
	fake_frame(&f, 1, 2);
	assert_int_equal(waiter_join(&w), 0);
	assert_int_equal(f.s.n_frames, 2);
	assert_int_equal(f.s.seqs[1], 2);
	assert_int_equal(zcv_client_held(f.s.c), 1);
	assert_int_equal(zcv_client_release(f.s.c, &f.s.held[1]), 0);
	fake_expect_release(&f, 1, 2);
	fake_finish(&f);
}

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	(void)sig;
	got_signal = 1;
}

/* A signal handled with SA_RESTART still ends the wait (0, no frame), so
 * a tool's signal flag is seen; forever (-1) is no exception. */
static void test_signal_interrupts(void **state)
{
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART }, old;
	struct fake f;
	struct waiter w;

	(void)state;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	fake_start(&f);
	fake_pool(&f);
	assert_int_equal(zcv_client_wait_dispatch(f.s.c, 1000), 0);
	for (int i = 0; i < 2; i++) {
		int timeout = i == 0 ? -1 : 5000;

		got_signal = 0;
		waiter_start(&w, f.s.c, timeout);
		assert_int_equal(pthread_kill(w.thread, SIGUSR1), 0);
		assert_int_equal(waiter_join(&w), 0);
		assert_int_equal(got_signal, 1);
		assert_int_equal(f.s.n_frames, 0);
		assert_int_equal(f.s.closed, 0);
	}
	assert_stream_goes_on(&f);
	fake_finish(&f);
	assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

/* The producer going away wakes the waiter with the usual error. */
static void test_producer_gone_wakes(void **state)
{
	struct fake f;
	struct waiter w;

	(void)state;
	fake_start(&f);
	fake_pool(&f);
	fake_frame(&f, 0, 1);
	assert_int_equal(zcv_client_wait_dispatch(f.s.c, 1000), 0);
	fake_expect_release(&f, 0, 1);
	waiter_start(&w, f.s.c, 5000);
	close(f.fd);
	f.fd = -1;
	assert_int_equal(waiter_join(&w), -ECONNRESET);
	assert_int_equal(f.s.closed, 1);
	assert_int_equal(f.s.closed_error, -ECONNRESET);
	assert_int_equal(f.s.n_frames, 1);
	/* ended: it keeps saying so, through the poll path */
	assert_int_equal(zcv_client_wait_dispatch(f.s.c, 10), -ECONNRESET);
	assert_int_equal(f.s.closed, 1);
	fake_finish(&f);
}

/* A clean BYE behind frames: the frames, then 1, in one wait. */
static void test_clean_end(void **state)
{
	struct fake f;
	struct zcv_msg_bye bye;
	size_t len;

	(void)state;
	fake_start(&f);
	fake_pool(&f);
	fake_frame(&f, 0, 1);
	fake_frame(&f, 1, 2);
	len = zcv_msg_init_bye(&bye, 0, "done");
	assert_int_equal(zcv_msg_send(f.fd, &bye, len, NULL, 0), 0);
	assert_int_equal(zcv_client_wait_dispatch(f.s.c, 1000), 1);
	assert_int_equal(f.s.n_frames, 2);
	assert_int_equal(f.s.closed, 1);
	assert_int_equal(f.s.closed_error, 0);
	fake_finish(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
/* the fd counts wait for the closer thread (fdcheck.h) */
#define T(f) cmocka_unit_test_setup_teardown(f, zcv_test_fd_setup, zcv_test_fd_teardown)
		T(test_frames_in_order),       T(test_timeout),
		T(test_release_while_waiting), T(test_signal_interrupts),
		T(test_producer_gone_wakes),   T(test_clean_end),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
