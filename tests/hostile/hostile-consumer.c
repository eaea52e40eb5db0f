/* SPDX-License-Identifier: MIT */
/*
 * A consumer that attacks the producer, one way per mode, over the raw
 * protocol (wire.h), for tests/hostile/test_consumers.py.
 *
 *   hostile-consumer MODE --socket PATH [options]
 *
 * Modes:
 *   garbage            random bytes instead of messages
 *   lying-size         a HELLO whose header says 512 bytes in an 88-byte packet
 *   short-release      a RELEASE whose header and packet say 12 bytes
 *   release-not-held   a RELEASE of a frame it never got
 *   release-twice      a frame released twice
 *   release-old-gen    a RELEASE naming an older pool generation
 *   fd-memfd           a memfd sent along with the HELLO
 *   fd-pipe            a pipe sent along with a RELEASE
 *   fd-linger-hello    a lingering TCP socket (see below) with the HELLO
 *   fd-linger-release  a lingering TCP socket with a RELEASE
 *   fd-linger-nested   a unix socket whose queue holds a lingering TCP socket
 *   fd-many            253 memfds (the kernel's most) with the HELLO
 *   flood              RELEASEs as fast as the socket takes them
 *   never-read         HELLO, then never reads (nor releases)
 *   never-hello        --count connections that never say anything
 *   hold               holds every frame it gets, up to its grant, each for
 *                      --hold-ms (default: for ever), then releases it; with
 *                      --duration-ms, says BYE after that long
 *   linger-check       control: closes a lingering socket itself, prints how long
 *                      the close took
 *
 * A lingering TCP socket: connected to a local listener that never accepts
 * nor reads, its send queue full, SO_LINGER {1, --linger-s}: whoever closes
 * the last reference blocks until the linger time runs out. The attacker
 * keeps the listener open (it would otherwise reset the connection) and
 * closes its own copy after sending while the producer is stopped (SIGSTOP:
 * it runs as our uid), so the producer's close is the last, for certain.
 *
 * Prints what it sees on stdout, one line each: "welcome path=P
 * max_hold=N n_buffers=N generation=G", "frame seq=S", "bye error=E
 * reason=R", "eof", "sent", "done". Exits 0 when the attack could be
 * carried out, 1 otherwise.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <zcv/common.h>
#include "wire.h"

#define TOOL "hostile-consumer"

struct opts {
	const char *socket;
	const char *name;
	unsigned count;
	unsigned linger_s;
	unsigned max_hold;
	uint32_t hello_flags; /* HELLO flags, as given (--hello-flags) */
	int hold_ms;          /* -1: for ever */
	unsigned duration_ms;
	bool leave_after_duration; /* hold: --duration-ms given, leave after it */
};

struct peer {
	int fd;
	struct zcv_msg_welcome welcome;
	bool ended;
};

static void die(const char *what)
{
	fprintf(stderr, TOOL ": %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t now_ms(void)
{
	return zcv_now_ns() / 1000000ull;
}

/* Next message within timeout_ms, fds the producer sent closed (we map
 * nothing). Returns 1 with a message, 0 at end of stream/timeout. */
static int next_msg(struct peer *p, union zcv_msg *m, int timeout_ms)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;

	while (!p->ended) {
		int fds[ZCV_MSG_MAX_FDS];
		unsigned n = 0;
		int r = zcv_msg_read(p->fd, m, fds, &n);

		if (r > 0) {
			zcv_close_fds(fds, n);
			if (m->hdr.type == ZCV_MSG_BYE) {
				printf("bye error=%d reason=%s\n", m->bye.error, m->bye.reason);
				p->ended = true;
			}
			return 1;
		}
		if (r == -EAGAIN) {
			struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
			int64_t left = (int64_t)(end - now_ms());

			if (timeout_ms >= 0 && left <= 0)
				return 0;
			poll(&pfd, 1, timeout_ms < 0 ? -1 : (int)left);
			continue;
		}
		printf("eof %d\n", r);
		p->ended = true;
	}
	return 0;
}

static void connect_peer(struct peer *p, const struct opts *o)
{
	memset(p, 0, sizeof(*p));
	p->fd = zcv_socket_connect(o->socket);
	if (p->fd < 0) {
		errno = -p->fd;
		die("connect");
	}
}

static size_t hello_init(struct zcv_msg_hello *h, const struct opts *o)
{
	size_t len = zcv_msg_init(h, ZCV_MSG_HELLO);

	h->min_version = ZCV_PROTOCOL_MIN_VERSION;
	h->caps = ZCV_CAP_MEMFD | ZCV_CAP_DMABUF;
	h->max_hold = o->max_hold;
	h->flags = o->hello_flags;
	snprintf(h->name, sizeof(h->name), "%s", o->name);
	return len;
}

static void send_or_die(struct peer *p, const void *m, size_t len, const int *fds, unsigned n)
{
	int r = zcv_msg_send(p->fd, m, len, fds, n);

	if (r < 0) {
		errno = -r;
		die("send");
	}
}

/* Raw sendmsg: more fds than zcv_msg_send() allows. */
static void send_fds(struct peer *p, const void *m, size_t len, const int *fds, unsigned n)
{
	size_t clen = CMSG_SPACE(sizeof(int) * n);
	char *control = calloc(1, clen);
	struct iovec iov = { .iov_base = (void *)m, .iov_len = len };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control,
		.msg_controllen = clen,
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
	if (sendmsg(p->fd, &mh, MSG_NOSIGNAL) < 0)
		die("sendmsg with fds");
	free(control);
}

/* HELLO, then WELCOME and its BUFFERs. */
static void handshake(struct peer *p, const struct opts *o)
{
	struct zcv_msg_hello h;
	size_t len = hello_init(&h, o);
	union zcv_msg m;
	unsigned got = 0;

	send_or_die(p, &h, len, NULL, 0);
	while (next_msg(p, &m, 5000)) {
		if (m.hdr.type == ZCV_MSG_WELCOME) {
			p->welcome = m.welcome;
			got = 0;
			printf("welcome path=%u max_hold=%u n_buffers=%u generation=%u\n",
			       m.welcome.path, m.welcome.max_hold, m.welcome.n_buffers,
			       m.welcome.generation);
		} else if (m.hdr.type == ZCV_MSG_BUFFER && ++got == p->welcome.n_buffers) {
			return;
		}
	}
	fprintf(stderr, TOOL ": no pool from the producer\n");
	exit(1);
}

static bool next_frame(struct peer *p, struct zcv_msg_frame *f, int timeout_ms)
{
	union zcv_msg m;

	while (next_msg(p, &m, timeout_ms))
		if (m.hdr.type == ZCV_MSG_FRAME) {
			*f = m.frame;
			printf("frame seq=%" PRIu64 "\n", f->sequence);
			return true;
		}
	return false;
}

static size_t release_of(struct zcv_msg_release *r, const struct zcv_msg_frame *f)
{
	size_t len = zcv_msg_init(r, ZCV_MSG_RELEASE);

	r->generation = f->generation;
	r->index = f->index;
	r->sequence = f->sequence;
	return len;
}

/* Waits for the producer to drop us; exits 0 when it did. */
static void expect_dropped(struct peer *p)
{
	union zcv_msg m;

	while (next_msg(p, &m, 10000))
		;
	printf("done\n");
	exit(p->ended ? 0 : 1);
}

static int make_memfd(void)
{
	int fd = memfd_create("hostile", MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, 4096) < 0)
		die("memfd");
	return fd;
}

/* See the comment at the top. Returns the socket; *ret_listener must stay
 * open as long as the socket should linger. */
static int make_lingering(unsigned linger_s, int *ret_listener)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int small = 4096, big = 1 << 20, lst, s, queued = 0;
	struct linger lg = { .l_onoff = 1, .l_linger = (int)linger_s };
	char junk[4096] = { 0 };

	lst = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lst < 0)
		die("socket");
	setsockopt(lst, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (bind(lst, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lst, 1) < 0 ||
	    getsockname(lst, (struct sockaddr *)&a, &alen) < 0)
		die("listen");
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		die("socket");
	/* far more queued than the peer, whatever it frees by collapsing its
	 * queue, will ever take: the send queue never drains */
	setsockopt(s, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("connect tcp");
	/* until neither the peer's window nor our send buffer takes more */
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
	if (setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		die("SO_LINGER");
	if (ioctl(s, SIOCOUTQ, &queued) < 0 || queued <= 0) {
		fprintf(stderr, TOOL ": the TCP socket has nothing queued: it would not linger\n");
		exit(1);
	}
	*ret_listener = lst;
	return s;
}

/*
 * Whichever of us and the producer closes its copy last does the final
 * close, the one that lingers, and a producer woken by our message often
 * runs before we get to close ours. So the producer is stopped (it runs as
 * our uid: any local attacker can do this) while we send and close, and
 * its copy is the last one for certain. It is stopped for well under a
 * frame period.
 */
static void producer_stop(struct peer *p, bool stop)
{
	struct ucred cred = { 0 };
	socklen_t len = sizeof(cred);
	char path[64], stat[256];

	if (getsockopt(p->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid <= 0)
		die("SO_PEERCRED");
	if (kill(cred.pid, stop ? SIGSTOP : SIGCONT) < 0)
		die("kill");
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)cred.pid);
	/* SIGSTOP takes effect asynchronously: wait until it has */
	for (int i = 0; stop && i < 1000; i++) {
		FILE *f = fopen(path, "re");
		const char *st = NULL;

		if (f && fgets(stat, sizeof(stat), f))
			st = strrchr(stat, ')');
		if (f)
			fclose(f);
		if (st && st[2] == 'T')
			return;
		usleep(100);
	}
	if (stop)
		die("the producer does not stop");
}

/* Closes our copy; fails the attack when ours was the final close after
 * all (it took the linger time). */
static void close_ours(int fd, unsigned linger_s)
{
	uint64_t t0 = zcv_now_ns();
	double took;

	close(fd);
	took = (double)(zcv_now_ns() - t0) / 1e9;
	if (linger_s && took >= linger_s / 2.0) {
		fprintf(stderr,
			TOOL ": our own close lingered %.1f s: the producer did not hold "
			     "the last reference\n",
			took);
		exit(1);
	}
}

/* Keeps the listener (and so the lingering) alive while the producer
 * deals with what we sent, then leaves. */
static void linger_wait(struct peer *p, unsigned linger_s)
{
	union zcv_msg m;
	uint64_t end = now_ms() + linger_s * 1000ull + 1000;

	while (next_msg(p, &m, 200) || (!p->ended && now_ms() < end))
		;
	while (now_ms() < end)
		usleep(50000);
	printf("done\n");
	exit(p->ended ? 0 : 1);
}

static void mode_garbage(struct peer *p)
{
	uint8_t junk[ZCV_MSG_MAX_SIZE];

	srand((unsigned)getpid());
	for (unsigned k = 0; k < 3 && !p->ended; k++) {
		size_t len = 1 + (size_t)rand() % sizeof(junk);

		for (size_t i = 0; i < len; i++)
			junk[i] = (uint8_t)rand();
		if (zcv_msg_send(p->fd, junk, len, NULL, 0) < 0)
			break;
	}
	printf("sent\n");
	expect_dropped(p);
}

static void mode_lying_size(struct peer *p, const struct opts *o)
{
	struct zcv_msg_hello h;
	size_t len = hello_init(&h, o);

	h.hdr.size = ZCV_MSG_MAX_SIZE;
	send_or_die(p, &h, len, NULL, 0);
	printf("sent\n");
	expect_dropped(p);
}

static void mode_release(struct peer *p, const struct opts *o, const char *how)
{
	struct zcv_msg_frame f;
	struct zcv_msg_release r;
	size_t len;

	handshake(p, o);
	if (!strcmp(how, "not-held")) {
		/* no frame received yet is needed: this one was never sent */
		memset(&f, 0, sizeof(f));
		f.generation = p->welcome.generation;
		f.index = 0;
		f.sequence = UINT64_MAX - 1;
	} else if (!next_frame(p, &f, 5000)) {
		fprintf(stderr, TOOL ": no frame\n");
		exit(1);
	}
	len = release_of(&r, &f);
	if (!strcmp(how, "twice")) {
		send_or_die(p, &r, len, NULL, 0);
	} else if (!strcmp(how, "old-gen")) {
		r.generation = f.generation - 1;
	} else if (!strcmp(how, "short")) {
		r.hdr.size = 12;
		len = 12;
	}
	send_or_die(p, &r, len, NULL, 0);
	printf("sent\n");
	expect_dropped(p);
}

static void mode_fd_hello(struct peer *p, const struct opts *o, const char *what)
{
	struct zcv_msg_hello h;
	size_t len = hello_init(&h, o);
	int fds[ZCV_KERNEL_MAX_FDS], n = 1, lst = -1;

	if (!strcmp(what, "memfd")) {
		fds[0] = make_memfd();
	} else if (!strcmp(what, "many")) {
		for (n = 0; n < ZCV_KERNEL_MAX_FDS; n++)
			fds[n] = make_memfd();
	} else if (!strcmp(what, "linger")) {
		fds[0] = make_lingering(o->linger_s, &lst);
	} else { /* nested: the lingering socket waits in a unix socket's queue */
		int sp[2], tcp = make_lingering(o->linger_s, &lst);
		struct peer inner = { .fd = -1 };
		uint8_t byte = 0;

		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
			die("socketpair");
		inner.fd = sp[0];
		send_fds(&inner, &byte, 1, &tcp, 1);
		close(tcp);
		close(sp[0]);
		fds[0] = sp[1];
	}
	producer_stop(p, true);
	send_fds(p, &h, len, fds, (unsigned)n);
	/* ours closed: the producer holds the last reference */
	for (int i = 1; i < n; i++)
		close(fds[i]);
	close_ours(fds[0], lst >= 0 ? o->linger_s : 0);
	producer_stop(p, false);
	printf("sent\n");
	if (lst >= 0)
		linger_wait(p, o->linger_s);
	expect_dropped(p);
}

static void mode_fd_release(struct peer *p, const struct opts *o, const char *what)
{
	struct zcv_msg_frame f;
	struct zcv_msg_release r;
	size_t len;
	int fd, lst = -1, pp[2];

	handshake(p, o);
	if (!next_frame(p, &f, 5000)) {
		fprintf(stderr, TOOL ": no frame\n");
		exit(1);
	}
	len = release_of(&r, &f);
	if (!strcmp(what, "pipe")) {
		if (pipe2(pp, O_CLOEXEC) < 0)
			die("pipe");
		close(pp[1]);
		fd = pp[0];
	} else {
		fd = make_lingering(o->linger_s, &lst);
	}
	producer_stop(p, true);
	send_fds(p, &r, len, &fd, 1);
	close_ours(fd, lst >= 0 ? o->linger_s : 0);
	producer_stop(p, false);
	printf("sent\n");
	if (lst >= 0)
		linger_wait(p, o->linger_s);
	expect_dropped(p);
}

static void mode_flood(struct peer *p, const struct opts *o)
{
	struct zcv_msg_frame f = { 0 };
	struct zcv_msg_release r;
	size_t len;
	unsigned sent = 0;

	handshake(p, o);
	f.generation = p->welcome.generation;
	len = release_of(&r, &f);
	for (unsigned i = 0; i < 100000; i++) {
		r.sequence = i;
		if (zcv_msg_send(p->fd, &r, len, NULL, 0) < 0)
			break;
		sent++;
	}
	printf("sent %u\n", sent);
	expect_dropped(p);
}

static void mode_never_read(struct peer *p, const struct opts *o)
{
	struct zcv_msg_hello h;
	size_t len = hello_init(&h, o);

	send_or_die(p, &h, len, NULL, 0);
	printf("sent\n");
	usleep(o->duration_ms * 1000u);
	printf("done\n");
	exit(0);
}

static void mode_never_hello(const struct opts *o)
{
	unsigned n = o->count, dropped = 0;
	struct peer *ps = calloc(n, sizeof(*ps));

	for (unsigned i = 0; i < n; i++)
		connect_peer(&ps[i], o);
	printf("connected %u\n", n);
	usleep(o->duration_ms * 1000u);
	for (unsigned i = 0; i < n; i++) {
		union zcv_msg m;

		while (next_msg(&ps[i], &m, 0))
			;
		dropped += ps[i].ended;
	}
	printf("dropped %u of %u\n", dropped, n);
	printf("done\n");
	exit(0);
}

/* Holds everything it is granted, each frame for hold_ms (within the rules
 * when that is below the hold timeout). */
static void mode_hold(struct peer *p, const struct opts *o)
{
	struct zcv_msg_frame held[ZCV_POOL_MAX_BUFFERS];
	uint64_t since[ZCV_POOL_MAX_BUFFERS];
	uint64_t end = now_ms() + o->duration_ms;
	unsigned n = 0;

	handshake(p, o);
	printf("holding up to %u\n", p->welcome.max_hold);
	while (!o->leave_after_duration || now_ms() < end) {
		struct zcv_msg_frame f;
		int wait = o->hold_ms < 0 || !n ? 1000 :
						  (int)ZCV_MAX(1, (int64_t)(since[0] + o->hold_ms) -
									  (int64_t)now_ms());

		if (next_frame(p, &f, wait) && n < ZCV_POOL_MAX_BUFFERS) {
			held[n] = f;
			since[n++] = now_ms();
		}
		if (p->ended)
			break;
		while (n && o->hold_ms >= 0 && now_ms() >= since[0] + (uint64_t)o->hold_ms) {
			struct zcv_msg_release r;
			size_t len = release_of(&r, &held[0]);

			if (zcv_msg_send(p->fd, &r, len, NULL, 0) < 0)
				break;
			memmove(held, held + 1, --n * sizeof(held[0]));
			memmove(since, since + 1, n * sizeof(since[0]));
		}
	}
	if (!p->ended) {
		struct zcv_msg_bye bye;
		size_t len = zcv_msg_init_bye(&bye, 0, "holder done");

		send_or_die(p, &bye, len, NULL, 0);
	}
	printf("done\n");
	exit(0);
}

static void mode_linger_check(const struct opts *o)
{
	int lst, s = make_lingering(o->linger_s, &lst);
	uint64_t t0 = zcv_now_ns();

	close(s);
	printf("close took %.3f s\n", (double)(zcv_now_ns() - t0) / 1e9);
	close(lst);
	exit(0);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", required_argument, NULL, 'k' },
		{ "name", required_argument, NULL, 'N' },
		{ "count", required_argument, NULL, 'c' },
		{ "linger-s", required_argument, NULL, 'l' },
		{ "max-hold", required_argument, NULL, 'm' },
		{ "hold-ms", required_argument, NULL, 'H' },
		{ "duration-ms", required_argument, NULL, 'd' },
		{ "hello-flags", required_argument, NULL, 'F' },
		{ 0 },
	};
	struct opts o = {
		.name = TOOL, .count = 20, .linger_s = 5, .hold_ms = -1, .duration_ms = 3000
	};
	struct peer p;
	const char *mode;
	int opt;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'k':
			o.socket = optarg;
			break;
		case 'N':
			o.name = optarg;
			break;
		case 'c':
			o.count = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'l':
			o.linger_s = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'm':
			o.max_hold = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'H':
			o.hold_ms = (int)strtol(optarg, NULL, 10);
			break;
		case 'd':
			o.duration_ms = (unsigned)strtoul(optarg, NULL, 10);
			o.leave_after_duration = true;
			break;
		case 'F':
			o.hello_flags = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		default:
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: " TOOL " MODE --socket PATH [options]\n");
		return 2;
	}
	mode = argv[optind];
	if (!strcmp(mode, "linger-check"))
		mode_linger_check(&o);
	if (!o.socket) {
		fprintf(stderr, TOOL ": --socket is required\n");
		return 2;
	}
	if (!strcmp(mode, "never-hello"))
		mode_never_hello(&o);
	connect_peer(&p, &o);
	if (!strcmp(mode, "garbage"))
		mode_garbage(&p);
	else if (!strcmp(mode, "lying-size"))
		mode_lying_size(&p, &o);
	else if (!strcmp(mode, "short-release"))
		mode_release(&p, &o, "short");
	else if (!strncmp(mode, "release-", 8))
		mode_release(&p, &o, mode + 8);
	else if (!strcmp(mode, "fd-memfd") || !strcmp(mode, "fd-many") ||
		 !strcmp(mode, "fd-linger-hello") || !strcmp(mode, "fd-linger-nested") ||
		 !strcmp(mode, "fd-pipe") || !strcmp(mode, "fd-linger-release")) {
		if (!strcmp(mode, "fd-pipe") || !strcmp(mode, "fd-linger-release"))
			mode_fd_release(&p, &o, !strcmp(mode, "fd-pipe") ? "pipe" : "linger");
		mode_fd_hello(&p, &o,
			      !strcmp(mode, "fd-memfd")        ? "memfd" :
			      !strcmp(mode, "fd-many")         ? "many" :
			      !strcmp(mode, "fd-linger-hello") ? "linger" :
								 "nested");
	} else if (!strcmp(mode, "flood"))
		mode_flood(&p, &o);
	else if (!strcmp(mode, "never-read"))
		mode_never_read(&p, &o);
	else if (!strcmp(mode, "hold"))
		mode_hold(&p, &o);
	fprintf(stderr, TOOL ": unknown mode %s\n", mode);
	return 2;
}
