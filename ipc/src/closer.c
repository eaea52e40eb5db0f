/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <zcv/common.h>
#include "closer.h"

/*
 * One detached thread and a ring of fds under a mutex. The mutex is only
 * ever held for a few instructions (never across close()), so a caller of
 * zcv_fd_dispose() waits at most for another enqueue or dequeue.
 *
 * Capacity: the fds waiting here are open in this process, so the ring is
 * sized like a default RLIMIT_NOFILE. It fills only when the thread is
 * stuck and peers keep sending; then the caller closes (counted).
 */
#define QUEUE_CAP 1024
/* unix sockets inside unix sockets inside ... are drained this deep */
#define DRAIN_DEPTH 4
/* messages read from one unix socket before it is closed as it is */
#define DRAIN_MAX 4096
/* SCM_MAX_FD of the kernel: the most fds one message can carry */
#define KERNEL_MAX_FDS 253

enum state { NOT_STARTED, RUNNING, FAILED };

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t work; /* the thread waits for fds */
static pthread_cond_t idle; /* zcv_fd_dispose_flush() waits for an empty queue */
static enum state state;
static bool held; /* tests: the thread closes nothing while set */
static bool busy; /* the thread is closing one it dequeued */
static unsigned head, count;
static int queue[QUEUE_CAP];
static struct zcv_closer_stats stats;

static void close_peer_fd(int fd, unsigned depth);

/* Takes every fd out of a unix socket's queue (and a listening one's
 * pending connections) so that the final close of the socket finds none
 * left whose release could block: each is closed here, disarmed first. */
static void drain_unix(int fd, unsigned depth)
{
	int domain = 0, listening = 0;
	socklen_t len = sizeof(domain);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX)
		return;
	len = sizeof(listening);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening) {
		for (unsigned i = 0; i < DRAIN_MAX; i++) {
			int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

			if (c < 0)
				return;
			close_peer_fd(c, depth + 1);
		}
		return;
	}
	for (unsigned i = 0; i < DRAIN_MAX; i++) {
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int) * KERNEL_MAX_FDS)];
		} control;
		char data[4096];
		struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
		struct msghdr mh = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = control.buf,
			.msg_controllen = sizeof(control.buf),
		};
		ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0 && errno == EINTR)
			continue;
		/* on failure the kernel leaves msg_controllen as it was: the
		 * buffer holds no fds then, only stack garbage */
		if (n < 0 || (n == 0 && mh.msg_controllen == 0))
			return;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
			    cm->cmsg_len < CMSG_LEN(0))
				continue;
			for (size_t k = 0; k < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
				int child;

				memcpy(&child, CMSG_DATA(cm) + k * sizeof(int), sizeof(int));
				close_peer_fd(child, depth + 1);
			}
		}
		if (n == 0) /* a message of fds only, or end of file: ask again */
			continue;
	}
}

/*
 * A socket's close blocks in two ways a peer controls: SO_LINGER on a
 * TCP socket with unsent data (the kernel waits up to the linger time)
 * and fds queued in a unix socket, whose own final release runs here.
 * Lingering is switched off (the kernel then finishes or aborts the
 * connection in the background) and unix queues are emptied first, so
 * the thread is not stalled by either and keeps serving the queue.
 */
static void close_peer_fd(int fd, unsigned depth)
{
	struct stat st;

	if (fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) {
		struct linger off = { .l_onoff = 0, .l_linger = 0 };

		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &off, sizeof(off));
		if (depth < DRAIN_DEPTH)
			drain_unix(fd, depth);
	}
	close(fd);
}

static void *closer_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&lock);
	for (;;) {
		int fd;

		while (!count || held) {
			busy = false;
			pthread_cond_broadcast(&idle);
			pthread_cond_wait(&work, &lock);
		}
		fd = queue[head];
		head = (head + 1) % QUEUE_CAP;
		count--;
		busy = true;
		pthread_mutex_unlock(&lock);
		close_peer_fd(fd, 0);
		pthread_mutex_lock(&lock);
		stats.closed_async++;
	}
	return NULL;
}

/* Called with the lock held. The thread inherits a mask with every signal
 * blocked: a signal handler of the application must never run on it (it
 * may not expect a thread it did not make), and a close() interrupted by
 * a signal would leave the fd in an unknown state. */
static void start_thread(void)
{
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;
	int r;

	if (pthread_attr_init(&attr) != 0) {
		state = FAILED;
		return;
	}
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* small stack: a drain frame is ~5 KB, DRAIN_DEPTH of them */
	pthread_attr_setstacksize(&attr, 128 * 1024);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&t, &attr, closer_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	state = r == 0 ? RUNNING : FAILED;
}

static void init_conds(void)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&work, NULL);
	pthread_cond_init(&idle, &ca);
	pthread_condattr_destroy(&ca);
}

static void atfork_prepare(void)
{
	pthread_mutex_lock(&lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&lock);
}

/* The child has no closer thread: the next disposal there starts one,
 * which also closes the child's copies of whatever was queued. */
static void atfork_child(void)
{
	/* no other thread exists here: re-initialising is safe, destroying
	 * a condition the parent's thread waited on might not be */
	pthread_mutex_init(&lock, NULL);
	init_conds();
	busy = false;
	held = false;
	state = NOT_STARTED;
}

static void init_once(void)
{
	init_conds();
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

void zcv_fd_dispose(int fd)
{
	bool queued = false;

	if (fd < 0)
		return;
	pthread_once(&once, init_once);
	pthread_mutex_lock(&lock);
	if (state == NOT_STARTED)
		start_thread();
	if (state == RUNNING && count < QUEUE_CAP) {
		queue[(head + count) % QUEUE_CAP] = fd;
		count++;
		stats.queued++;
		queued = true;
		pthread_cond_signal(&work);
	} else {
		stats.closed_sync++;
	}
	pthread_mutex_unlock(&lock);
	if (!queued)
		close(fd);
}

void zcv_fds_dispose(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		zcv_fd_dispose(fds[i]);
		fds[i] = -1;
	}
}

int zcv_fd_dispose_flush(uint64_t timeout_ns)
{
	struct timespec end;
	int r = 0;

	pthread_once(&once, init_once);
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += (time_t)(timeout_ns / 1000000000ull);
	end.tv_nsec += (long)(timeout_ns % 1000000000ull);
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&lock);
	while ((count || busy) && state == RUNNING && r == 0)
		if (pthread_cond_timedwait(&idle, &lock, &end) == ETIMEDOUT)
			r = -ETIMEDOUT;
	if ((count || busy) && state == RUNNING)
		r = -ETIMEDOUT;
	pthread_mutex_unlock(&lock);
	return r;
}

void zcv_fd_dispose_get_stats(struct zcv_closer_stats *ret)
{
	pthread_once(&once, init_once);
	pthread_mutex_lock(&lock);
	*ret = stats;
	ret->pending = count + busy;
	pthread_mutex_unlock(&lock);
}

void zcv_fd_dispose_hold(bool hold)
{
	pthread_once(&once, init_once);
	pthread_mutex_lock(&lock);
	held = hold;
	pthread_cond_signal(&work);
	pthread_mutex_unlock(&lock);
}
