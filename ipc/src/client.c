/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <zcv/abi.h>
#include <zcv/client.h>
#include <zcv/log.h>
#include <zcv/memory.h>
#include <zcv/pool.h>
#include "closer.h"
#include "wire.h"

/* Bounded so one dispatch cannot monopolise the caller's loop. A producer
 * that keeps to the protocol has far fewer messages in flight: at most
 * max_hold FRAMEs (<= ZCV_POOL_MAX_BUFFERS) and one pool announcement. */
#define DISPATCH_MAX_MESSAGES 256

/* Frames the producer may have lent us and not got back: held by the sink
 * plus releases queued here. A producer never lends more than the hold
 * limit it granted, which is at most ZCV_POOL_MAX_BUFFERS; one that does
 * is broken, and this bound is what keeps the release queue finite. */
#define MAX_OUTSTANDING ZCV_POOL_MAX_BUFFERS

#define REASON_MAX 160

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define BACKOFF_LIMIT_MS 60000

enum { FATAL_UNTRUSTED = 1, FATAL_REFUSED = 2 };

struct cbuf {
	bool present;
	bool held;
	bool release_queued; /* released by the sink, RELEASE not sent yet */
	uint64_t held_seq;
	unsigned n_fds;
	int fds[ZCV_MSG_MAX_FDS];
	uint64_t fd_size[ZCV_MSG_MAX_FDS];
	uint8_t plane_fd[ZCV_MAX_PLANES];
	void *map[ZCV_MSG_MAX_FDS];
};

/* One pool generation: its buffers stay mapped while any frame is held. */
struct gen {
	struct gen *next;
	struct zcv_client_format fmt; /* fmt.generation: as the sink sees it */
	uint32_t wire_gen;            /* as the producer numbered it */
	unsigned conn;                /* the connection it came on */
	unsigned n_received;
	unsigned held;
	struct cbuf bufs[ZCV_POOL_MAX_BUFFERS];
};

/* A RELEASE that found the socket full. Its frame is no longer held: the
 * generation it names may be gone by the time it is sent. */
struct queued_release {
	uint16_t version;
	uint32_t generation; /* the sink's number, to find it */
	uint32_t wire_gen;
	uint32_t index;
	uint64_t sequence;
};

/* Callbacks are collected while dispatch reads ahead, and run (or, for
 * frames, dropped) once it knows how the batch ends. */
enum event_type {
	EVENT_FORMAT,
	EVENT_FRAME,
	EVENT_SOURCE,
};

struct event {
	enum event_type type;
	struct gen *gen; /* EVENT_FRAME: its generation (kept alive by the hold) */
	union {
		struct zcv_client_format fmt;
		struct zcv_client_frame frame;
		struct {
			bool present;
			char reason[REASON_MAX]; /* printable */
		} source;
	};
};

struct zcv_client {
	/* Recursive: the sink may release from inside a callback, under
	 * dispatch's hold of it; other threads' releases wait for dispatch. */
	pthread_mutex_t lock;
	int fd;
	struct zcv_client_config cfg;
	char name[ZCV_NAME_MAX];
	struct zcv_client_callbacks cbs;
	void *data;
	struct gen *cur;     /* newest generation, possibly still arriving */
	struct gen *retired; /* older ones with frames still held */
	struct zcv_client_format fmt;
	bool have_fmt;
	bool have_seq;
	uint64_t last_seq;
	uint64_t dropped;
	unsigned held;
	/* 0 streaming; 1 the producer ended the stream; < 0 failed */
	int result;
	/* the socket can still carry RELEASEs (streaming, or after a clean end) */
	bool connected;
	bool dispatching;
	/* the socket's O_NONBLOCK is clear: wait_dispatch may block in recvmmsg
	 * (every other call on it passes MSG_DONTWAIT) */
	bool sock_blocking;
	int rcvtimeo_ms; /* SO_RCVTIMEO last set on this socket; 0: none */
	/* how it ended, told to the closed callback after the batch's frames */
	bool closed_notified;
	int close_error;
	char close_reason[REASON_MAX];
	struct queued_release queue[MAX_OUTSTANDING];
	unsigned n_queued;
	struct event *events;        /* DISPATCH_MAX_MESSAGES of them */
	struct zcv_msg_batch *batch; /* what dispatch reads into */
	unsigned n_events;
	/* Reconnect (cfg.reconnect). fd is -1 while waiting to connect. */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	bool rc_on;        /* wait or enable */
	bool lost;         /* this batch lost the connection: reconnect after it */
	bool streamed;     /* the current connection delivered its first format */
	int wait_fd;       /* epoll: timer_fd + ino_fd, what get_fd gives while waiting */
	int timer_fd;      /* the backoff */
	int ino_fd;        /* the socket's directory, watched */
	unsigned conn;     /* connections made so far */
	unsigned attempts; /* consecutive failed ones */
	uint32_t backoff_ms;
	uint32_t gen_base; /* added to the producer's generations: unique over connections */
	uint32_t gen_max;
	int last_error;
	char last_reason[REASON_MAX];
};

static int release_locked(struct zcv_client *c, const struct zcv_client_frame *frame);

static void gen_free(struct gen *g)
{
	if (!g)
		return;
	for (unsigned i = 0; i < ZCV_POOL_MAX_BUFFERS; i++) {
		struct cbuf *b = &g->bufs[i];

		for (unsigned f = 0; f < b->n_fds; f++) {
			if (b->map[f])
				munmap(b->map[f], b->fd_size[f]);
			/* verified memfds and DMA-BUFs: their close cannot block */
			if (b->fds[f] >= 0)
				close(b->fds[f]);
		}
	}
	free(g);
}

static bool gen_complete(const struct gen *g)
{
	return g->n_received == g->fmt.n_buffers;
}

/* Old generations go as soon as no frame of theirs is held. */
static void gen_retire(struct zcv_client *c, struct gen *g)
{
	if (!g)
		return;
	if (!g->held) {
		gen_free(g);
		return;
	}
	g->next = c->retired;
	c->retired = g;
}

static void retired_collect(struct zcv_client *c)
{
	struct gen **pp = &c->retired;

	while (*pp) {
		struct gen *g = *pp;

		if (!g->held) {
			*pp = g->next;
			gen_free(g);
		} else {
			pp = &g->next;
		}
	}
}

static struct gen *find_gen(struct zcv_client *c, uint32_t generation)
{
	if (c->cur && c->cur->fmt.generation == generation)
		return c->cur;
	for (struct gen *g = c->retired; g; g = g->next)
		if (g->fmt.generation == generation)
			return g;
	return NULL;
}

/* The sink's (or the read-ahead's) hold on a frame ends. */
static void unhold(struct zcv_client *c, struct gen *g, struct cbuf *b)
{
	b->held = false;
	g->held--;
	c->held--;
}

static void release_sent(struct zcv_client *c, const struct queued_release *q)
{
	struct gen *g = find_gen(c, q->generation);

	if (g && q->index < g->fmt.n_buffers)
		g->bufs[q->index].release_queued = false;
}

/* Nobody is left to send the queued releases to: the producer reclaimed. */
static void drop_queue(struct zcv_client *c)
{
	for (unsigned i = 0; i < c->n_queued; i++)
		release_sent(c, &c->queue[i]);
	c->n_queued = 0;
}

static void flush_releases(struct zcv_client *c)
{
	unsigned sent = 0;

	while (c->connected && sent < c->n_queued) {
		const struct queued_release *q = &c->queue[sent];
		struct zcv_msg_release m;
		size_t len = zcv_msg_init(&m, ZCV_MSG_RELEASE);
		int r;

		m.hdr.version = q->version;
		m.generation = q->wire_gen;
		m.index = q->index;
		m.sequence = q->sequence;
		r = zcv_msg_send(c->fd, &m, len, NULL, 0);
		if (r == -EAGAIN)
			break;
		if (r < 0) {
			/* The connection broke; dispatch finds out when it reads. */
			zcv_debug("client: sending a release: %s", strerror(-r));
			c->connected = false;
			break;
		}
		release_sent(c, q);
		sent++;
	}
	memmove(c->queue, c->queue + sent, (c->n_queued - sent) * sizeof(c->queue[0]));
	c->n_queued -= sent;
	if (!c->connected)
		drop_queue(c);
}

/* Notes how the stream ended; the closed callback runs at the end of the
 * dispatch, after the frames that may still be delivered. */
static void finish(struct zcv_client *c, int result, int error, const char *reason)
{
	if (c->result)
		return;
	c->result = result;
	c->close_error = error;
	/* the producer's words among it: printable from here on */
	zcv_log_sanitize(c->close_reason, sizeof(c->close_reason), reason ? reason : "");
}

/* The producer broke the protocol, or the connection broke: tell it why
 * (best effort) and shut the socket so it reclaims our frames now. */
static int fail(struct zcv_client *c, int error, const char *reason)
{
	zcv_debug("client: %s (%d)", reason, error);
	if (c->connected && error == -EPROTO) {
		struct zcv_msg_bye bye;
		size_t len = zcv_msg_init_bye(&bye, error, reason);

		(void)zcv_msg_send(c->fd, &bye, len, NULL, 0);
	}
	if (c->connected)
		shutdown(c->fd, SHUT_RDWR);
	c->connected = false;
	drop_queue(c);
	finish(c, error, error, reason);
	return error;
}

__attribute__((format(printf, 3, 4))) static int failf(struct zcv_client *c, int error,
						       const char *fmt, ...)
{
	char reason[REASON_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	return fail(c, error, reason);
}

static struct event *event_add(struct zcv_client *c, enum event_type type)
{
	struct event *ev = &c->events[c->n_events++];

	ev->type = type;
	ev->gen = NULL;
	return ev;
}

static int handle_welcome(struct zcv_client *c, const struct zcv_msg_welcome *w)
{
	struct zcv_client_format fmt = { 0 };
	struct gen *g;
	uint32_t caps = c->cfg.caps;

	if (c->cur && !gen_complete(c->cur))
		return fail(c, -EPROTO, "WELCOME before the previous pool was complete");
	if (w->version > ZCV_PROTOCOL_VERSION || w->version < ZCV_PROTOCOL_MIN_VERSION)
		return fail(c, -EPROTONOSUPPORT, "producer chose a protocol version we lack");
	if (c->cur && w->generation <= c->cur->wire_gen)
		return fail(c, -EPROTO, "WELCOME with an old pool generation");
	if (w->generation > UINT32_MAX - c->gen_base ||
	    (c->conn && c->gen_base + w->generation <= c->gen_max))
		return fail(c, -EPROTO, "WELCOME with a pool generation out of range");
	if ((w->path == ZCV_PATH_DMABUF && !(caps & ZCV_CAP_DMABUF)) ||
	    (w->path == ZCV_PATH_MEMFD && !(caps & ZCV_CAP_MEMFD)) ||
	    (w->path != ZCV_PATH_COPY && (caps & ZCV_CAP_NEEDS_COPY)))
		return fail(c, -EPROTO, "producer chose a path we did not offer");

	memcpy(fmt.stream_id, w->stream_id, sizeof(fmt.stream_id));
	fmt.path = w->path;
	fmt.version = w->version;
	fmt.layout.fourcc = w->fourcc;
	fmt.layout.width = w->width;
	fmt.layout.height = w->height;
	fmt.layout.n_planes = w->n_planes;
	for (unsigned p = 0; p < w->n_planes && p < ZCV_MAX_PLANES; p++) {
		fmt.layout.planes[p].offset = w->planes[p].offset;
		fmt.layout.planes[p].stride = w->planes[p].stride;
		fmt.layout.planes[p].size = w->planes[p].size;
	}
	fmt.layout.size = w->frame_size;
	if (zcv_layout_validate(&fmt.layout) < 0)
		return fail(c, -EPROTO, "WELCOME with an invalid layout");
	fmt.modifier = w->modifier;
	fmt.colorspace = w->colorspace;
	fmt.fps_num = w->fps_num;
	fmt.fps_den = w->fps_den;
	fmt.generation = c->gen_base + w->generation;
	fmt.n_buffers = w->n_buffers;
	fmt.max_hold = w->max_hold;

	g = calloc(1, sizeof(*g));
	if (!g)
		return fail(c, -ENOMEM, "out of memory");
	g->fmt = fmt;
	g->wire_gen = w->generation;
	g->conn = c->conn;
	if (fmt.generation > c->gen_max)
		c->gen_max = fmt.generation;
	for (unsigned i = 0; i < ZCV_POOL_MAX_BUFFERS; i++)
		for (unsigned f = 0; f < ZCV_MSG_MAX_FDS; f++)
			g->bufs[i].fds[f] = -1;
	gen_retire(c, c->cur);
	c->cur = g;
	return 0;
}

/* What an fd that is not what it should be is, for the reason we give. */
static const char *fd_kind(int fd)
{
	struct stat st;

	if (zcv_fd_is_dmabuf(fd))
		return "a DMA-BUF";
	if (fcntl(fd, F_GET_SEALS) >= 0)
		return "a memfd";
	if (fstat(fd, &st) < 0)
		return "unknown";
	switch (st.st_mode & S_IFMT) {
	case S_IFREG:
		return "a regular file";
	case S_IFIFO:
		return "a pipe";
	case S_IFSOCK:
		return "a socket";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFDIR:
		return "a directory";
	}
	return "a special file";
}

/*
 * Is the memory what the path promises? A DMA-BUF must be one (a file or
 * an unsealed memfd could be truncated under our mapping: SIGBUS); a
 * memfd must be sealed so that neither its size nor its contents can
 * change except through the producer's own mapping. fd is borrowed.
 */
static int check_memory(struct zcv_client *c, int path, unsigned idx, unsigned f, int fd,
			uint64_t announced)
{
	uint64_t size = 0;
	int r, seals;

	if (path == ZCV_PATH_DMABUF) {
		if (!zcv_fd_is_dmabuf(fd))
			return failf(c, -EPROTO, "buffer %u fd %u is %s, not a DMA-BUF", idx, f,
				     fd_kind(fd));
		r = zcv_fd_size(fd, &size);
		if (r < 0)
			return failf(c, -EPROTO, "buffer %u fd %u: cannot size the DMA-BUF: %s",
				     idx, f, strerror(-r));
		if (size < announced)
			return failf(c, -EPROTO,
				     "buffer %u fd %u: DMA-BUF of %llu bytes, %llu announced", idx,
				     f, (unsigned long long)size, (unsigned long long)announced);
		return 0;
	}
	r = zcv_memfd_check_sealed(fd, announced, &size);
	if (r == 0)
		return 0;
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0)
		return failf(c, -EPROTO, "buffer %u fd %u is %s, not a memfd", idx, f, fd_kind(fd));
	if ((seals & ZCV_MEMFD_SIZE_SEALS) != ZCV_MEMFD_SIZE_SEALS)
		return failf(c, -EPROTO, "buffer %u fd %u: memfd not sealed against resizing", idx,
			     f);
	if (!(seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)))
		return failf(c, -EPROTO, "buffer %u fd %u: memfd writable (no write seal)", idx, f);
	if (r == -EMSGSIZE) {
		struct stat st;

		if (fstat(fd, &st) == 0)
			return failf(c, -EPROTO,
				     "buffer %u fd %u: memfd of %llu bytes, %llu announced", idx, f,
				     (unsigned long long)st.st_size, (unsigned long long)announced);
	}
	return failf(c, -EPROTO, "buffer %u fd %u: memfd refused: %s", idx, f, strerror(-r));
}

/* Takes the fds of the message on success; the caller disposes of them on
 * failure. */
static int handle_buffer(struct zcv_client *c, const struct zcv_msg_buffer *m, int *fds,
			 unsigned n_fds)
{
	struct gen *g = c->cur;
	const struct zcv_layout *l;
	struct cbuf *b;

	if (!g || gen_complete(g) || m->generation != g->wire_gen)
		return fail(c, -EPROTO, "BUFFER outside its pool announcement");
	if (m->index >= g->fmt.n_buffers || g->bufs[m->index].present)
		return fail(c, -EPROTO, "BUFFER with a bad or repeated index");
	if (m->n_fds != n_fds || n_fds == 0 || n_fds > ZCV_MSG_MAX_FDS)
		return fail(c, -EPROTO, "BUFFER with the wrong number of fds");
	l = &g->fmt.layout;
	for (unsigned p = 0; p < l->n_planes; p++) {
		const struct zcv_plane_layout *pl = &l->planes[p];

		if (m->plane_fd[p] >= n_fds)
			return fail(c, -EPROTO, "BUFFER puts a plane in an fd it lacks");
		if ((uint64_t)pl->offset + pl->size > m->fd_size[m->plane_fd[p]])
			return fail(c, -EPROTO, "BUFFER too small for its planes");
	}
	for (unsigned f = 0; f < n_fds; f++) {
		int r = check_memory(c, g->fmt.path, m->index, f, fds[f], m->fd_size[f]);

		if (r < 0)
			return r;
	}

	b = &g->bufs[m->index];
	b->n_fds = n_fds;
	memcpy(b->plane_fd, m->plane_fd, sizeof(b->plane_fd));
	for (unsigned f = 0; f < n_fds; f++) {
		b->fd_size[f] = m->fd_size[f];
		if (c->cfg.no_map)
			continue;
		b->map[f] = mmap(NULL, m->fd_size[f], PROT_READ, MAP_SHARED, fds[f], 0);
		if (b->map[f] == MAP_FAILED) {
			int r = -errno;

			b->map[f] = NULL;
			for (unsigned k = 0; k < f; k++) {
				munmap(b->map[k], b->fd_size[k]);
				b->map[k] = NULL;
			}
			b->n_fds = 0;
			return failf(c, r, "cannot map buffer %u: %s", m->index, strerror(-r));
		}
	}
	for (unsigned f = 0; f < n_fds; f++) {
		b->fds[f] = fds[f];
		fds[f] = -1;
	}
	b->present = true;
	if (++g->n_received == g->fmt.n_buffers)
		event_add(c, EVENT_FORMAT)->fmt = g->fmt;
	return 0;
}

static int handle_frame(struct zcv_client *c, const struct zcv_msg_frame *m)
{
	struct gen *g = c->cur;
	struct zcv_client_frame *fr;
	const struct zcv_layout *l;
	struct event *ev;
	struct cbuf *b;

	if (!g || !gen_complete(g) || m->generation != g->wire_gen)
		return fail(c, -EPROTO, "FRAME of an unknown pool generation");
	if (m->index >= g->fmt.n_buffers)
		return fail(c, -EPROTO, "FRAME with a bad buffer index");
	b = &g->bufs[m->index];
	if (b->held)
		return fail(c, -EPROTO, "FRAME in a buffer we still hold");
	if (b->release_queued)
		return fail(c, -EPROTO, "FRAME in a buffer whose release it has not had");
	if (c->held + c->n_queued >= MAX_OUTSTANDING)
		return fail(c, -EPROTO, "FRAME beyond any hold limit");
	l = &g->fmt.layout;
	for (unsigned p = 0; p < l->n_planes; p++)
		if (m->bytesused[p] > l->planes[p].size)
			return fail(c, -EPROTO, "FRAME bytesused beyond its plane");
	if (c->have_seq && m->sequence <= c->last_seq)
		return fail(c, -EPROTO, "FRAME sequence went backwards");
	if (c->have_seq)
		c->dropped += m->sequence - c->last_seq - 1;
	c->have_seq = true;
	c->last_seq = m->sequence;

	/* Held from now on, so that nothing retires the generation before the
	 * frame is delivered or dropped. */
	b->held = true;
	b->held_seq = m->sequence;
	g->held++;
	c->held++;

	ev = event_add(c, EVENT_FRAME);
	ev->gen = g;
	fr = &ev->frame;
	memset(fr, 0, sizeof(*fr));
	fr->generation = g->fmt.generation;
	fr->index = m->index;
	fr->sequence = m->sequence;
	fr->timestamp_ns = m->timestamp_ns;
	fr->received_ns = zcv_now_ns();
	fr->flags = m->flags;
	fr->n_planes = l->n_planes;
	for (unsigned p = 0; p < l->n_planes; p++) {
		unsigned f = b->plane_fd[p];

		fr->planes[p] = b->map[f] ? (const uint8_t *)b->map[f] + l->planes[p].offset : NULL;
		fr->stride[p] = l->planes[p].stride;
		fr->bytesused[p] = m->bytesused[p];
		fr->fd[p] = b->fds[f];
		fr->offset[p] = l->planes[p].offset;
		fr->length[p] = b->fd_size[f];
	}
	for (unsigned p = l->n_planes; p < ZCV_MAX_PLANES; p++)
		fr->fd[p] = -1;
	return 0;
}

static int handle_bye(struct zcv_client *c, const struct zcv_msg_bye *m)
{
	int error = m->error;

	if (error == 0) {
		/* Clean end: the socket stays up so held frames can still be
		 * released. */
		finish(c, 1, 0, m->reason[0] ? m->reason : "end of stream");
		return 1;
	}
	/* a negative errno, or it is not telling the truth */
	if (error > 0 || error < -4095)
		error = -EPROTO;
	/* Evicted or refused: the producer took back everything we held and
	 * expects nothing more. */
	c->connected = false;
	drop_queue(c);
	finish(c, error, error, m->reason[0] ? m->reason : "the producer ended the stream");
	return error;
}

static int handle_status(struct zcv_client *c, const struct zcv_msg_status *m)
{
	struct event *ev;

	/* a source comes and goes within a stream: after its first pool */
	if (!c->cur)
		return fail(c, -EPROTO, "STATUS before WELCOME");
	ev = event_add(c, EVENT_SOURCE);
	ev->source.present = !(m->flags & ZCV_STATUS_SOURCE_LOST);
	zcv_log_sanitize(ev->source.reason, sizeof(ev->source.reason), m->reason);
	return 0;
}

static int handle_message(struct zcv_client *c, union zcv_msg *m, int *fds, unsigned n_fds)
{
	switch (m->hdr.type) {
	case ZCV_MSG_WELCOME:
		return handle_welcome(c, &m->welcome);
	case ZCV_MSG_BUFFER:
		return handle_buffer(c, &m->buffer, fds, n_fds);
	case ZCV_MSG_FRAME:
		return handle_frame(c, &m->frame);
	case ZCV_MSG_BYE:
		return handle_bye(c, &m->bye);
	case ZCV_MSG_STATUS:
		return handle_status(c, &m->status);
	default:
		return fail(c, -EPROTO, "unexpected message from the producer");
	}
}

/* Does the way this connection ended call for another one? Not an
 * eviction, a refusal or a protocol error: those would happen again. */
static bool should_reconnect(const struct zcv_client *c)
{
	if (!c->cfg.reconnect.enable)
		return false;
	switch (c->result) {
	case 1:
	case -ECONNRESET:
	case -EPIPE:
	case -ENOTCONN:
	case -ECONNABORTED:
	case -ESHUTDOWN:
	case -ENODEV:
	case -EIO:
		return true;
	}
	return false;
}

/* Connect errors worth waiting out: nobody listens there yet. */
static bool connect_retryable(int r)
{
	/* -EAGAIN: the producer's listen backlog is full (it is stopped, or
	 * flooded); it may drain */
	return r == -ENOENT || r == -ECONNREFUSED || r == -EPIPE || r == -ECONNRESET ||
	       r == -EAGAIN;
}

static void watch_dir(struct zcv_client *c)
{
	char dir[sizeof(c->path)];
	char *slash;

	if (c->ino_fd < 0)
		return;
	memcpy(dir, c->path, sizeof(dir));
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	/* The same directory keeps its watch; a new one (the producer made
	 * it afresh) gets one, the old watch went with the old directory.
	 * None yet: the timer alone. */
	(void)inotify_add_watch(c->ino_fd, dir, IN_CREATE | IN_MOVED_TO | IN_ATTRIB);
}

static void arm_timer(struct zcv_client *c, uint32_t ms)
{
	struct itimerspec its = { .it_value = { .tv_sec = ms / 1000,
						.tv_nsec = (long)(ms % 1000) * 1000000L } };

	if (!ms)
		its.it_value.tv_nsec = 1;
	(void)timerfd_settime(c->timer_fd, 0, &its, NULL);
}

static void disarm_timer(struct zcv_client *c)
{
	struct itimerspec its = { 0 };

	(void)timerfd_settime(c->timer_fd, 0, &its, NULL);
}

/* An attempt failed (error, reason): wait the backoff, or give up. */
static void retry_later(struct zcv_client *c, int error, const char *reason)
{
	c->last_error = error;
	snprintf(c->last_reason, sizeof(c->last_reason), "%s", reason);
	c->attempts++;
	if (c->cfg.reconnect.max_attempts && c->attempts >= c->cfg.reconnect.max_attempts) {
		char why[REASON_MAX];

		disarm_timer(c);
		snprintf(why, sizeof(why), "gave up after %u attempts: %s", c->attempts, reason);
		finish(c, error, error, why);
		return;
	}
	watch_dir(c);
	arm_timer(c, c->backoff_ms);
	c->backoff_ms = c->backoff_ms >= c->cfg.reconnect.backoff_max_ms / 2 ?
				c->cfg.reconnect.backoff_max_ms :
				c->backoff_ms * 2;
}

/* The connection is over but the client goes on: the socket goes (the
 * producer reclaims what we held; frames the sink holds stay mapped), the
 * generations of the next connection are numbered above every earlier one. */
static void connection_lost(struct zcv_client *c)
{
	bool streamed = c->streamed;
	int error = c->close_error ? c->close_error : -ECONNRESET;
	char reason[REASON_MAX];

	memcpy(reason, c->close_reason, sizeof(reason));
	if (c->connected) {
		struct zcv_msg_bye bye;
		size_t len = zcv_msg_init_bye(&bye, 0, "consumer closed");

		(void)zcv_msg_send(c->fd, &bye, len, NULL, 0);
		/* Nothing more may arrive: a queue that grows behind the
		 * closer's drain would make the close a reset for the producer. */
		shutdown(c->fd, SHUT_RDWR);
	}
	c->connected = false;
	drop_queue(c);
	zcv_fd_dispose(c->fd);
	c->fd = -1;
	gen_retire(c, c->cur);
	c->cur = NULL;
	/* saturates: a producer that used up the numbers is refused below */
	c->gen_base = c->gen_max == UINT32_MAX ? UINT32_MAX : c->gen_max + 1;
	c->conn++;
	c->have_seq = false;
	c->have_fmt = false;
	c->streamed = false;
	c->result = 0;
	c->close_error = 0;
	c->close_reason[0] = '\0';
	c->closed_notified = false;
	if (streamed) {
		/* It served: the next one may be a moment away. */
		watch_dir(c);
		arm_timer(c, c->backoff_ms);
		return;
	}
	/* Dropped before it streamed: a failed attempt, so that a producer
	 * that accepts and hangs up cannot make us spin. */
	retry_later(c, error, reason);
}

/*
 * Runs the callbacks the batch collected, in order. When the batch ended
 * the stream with an error, the producer may have taken back the buffers
 * of its frames (that is what an eviction does): they are dropped, and no
 * release goes out for them. The closed callback comes last.
 */
static void deliver(struct zcv_client *c)
{
	unsigned dropped = 0;

	for (unsigned i = 0; i < c->n_events; i++) {
		struct event *ev = &c->events[i];

		if (ev->type == EVENT_FRAME && c->result < 0) {
			unhold(c, ev->gen, &ev->gen->bufs[ev->frame.index]);
			dropped++;
		} else if (ev->type == EVENT_FRAME) {
			if (c->cbs.frame)
				c->cbs.frame(c->data, &ev->frame);
			else
				/* nobody looks at frames: give them straight back */
				release_locked(c, &ev->frame);
		} else if (ev->type == EVENT_SOURCE) {
			if (c->result >= 0 && c->cbs.source)
				c->cbs.source(c->data, ev->source.present, ev->source.reason);
		} else if (c->result >= 0) {
			c->fmt = ev->fmt;
			c->have_fmt = true;
			/* a connection that streams: the backoff starts afresh */
			c->streamed = true;
			c->attempts = 0;
			c->backoff_ms = c->cfg.reconnect.backoff_min_ms;
			if (c->cbs.format)
				c->cbs.format(c->data, &c->fmt);
		}
	}
	c->n_events = 0;
	if (dropped) {
		zcv_debug("client: %u frames not delivered: the stream ended before them", dropped);
		retired_collect(c);
	}
	if (c->lost) {
		int error = c->close_error;
		bool streamed = c->streamed;
		char reason[REASON_MAX];

		c->lost = false;
		memcpy(reason, c->close_reason, sizeof(reason));
		connection_lost(c);
		/* a connection that never streamed is only a failed attempt */
		if (streamed && c->cbs.disconnected)
			c->cbs.disconnected(c->data, error, reason);
	}
	if (c->result && !c->closed_notified) {
		c->closed_notified = true;
		if (c->cbs.closed)
			c->cbs.closed(c->data, c->close_error, c->close_reason);
	}
}

static int try_connect(struct zcv_client *c, char *reason, size_t reason_size, int *ret_fatal);

/* Waiting: is it time for an attempt (the backoff ran out, or a file of
 * the socket's name appeared)? Reads what woke us either way. */
static bool wait_ready(struct zcv_client *c)
{
	uint64_t ticks;
	bool ready = false;
	union {
		char buf[4096];
		struct inotify_event align;
	} u;
	const char *base = strrchr(c->path, '/');
	ssize_t n;

	base = base ? base + 1 : c->path;
	if (read(c->timer_fd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks))
		ready = true;
	while (c->ino_fd >= 0 && (n = read(c->ino_fd, u.buf, sizeof(u.buf))) > 0) {
		for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
			const struct inotify_event *e = (const void *)(u.buf + off);

			/* The socket appears at bind(), a moment before
			 * listen(): a refusal right after is likely, so the
			 * next attempts come soon (a tenth of the first
			 * backoff, doubling) rather than a backoff later. */
			if (e->len && !strncmp(e->name, base, e->len)) {
				ready = true;
				c->backoff_ms = ZCV_MAX(1u, c->cfg.reconnect.backoff_min_ms / 10);
			}
			off += (ssize_t)sizeof(*e) + e->len;
		}
	}
	return ready;
}

/* One attempt to connect, from dispatch. */
static void reconnect_attempt(struct zcv_client *c)
{
	char reason[REASON_MAX];
	int fatal = 0;
	int r;

	if (!wait_ready(c))
		return;
	disarm_timer(c);
	r = try_connect(c, reason, sizeof(reason), &fatal);
	if (r == 0)
		return;
	if (fatal || !connect_retryable(r))
		finish(c, r, r, reason);
	else
		retry_later(c, r, reason);
}

/*
 * Handles what one read of want messages returned (k: as
 * zcv_msg_read_batch()). Returns true when the batch was full, so the
 * socket may hold more.
 */
static bool handle_batch(struct zcv_client *c, int k, unsigned want)
{
	if (k == -EAGAIN)
		return false;
	if (k <= 0) {
		if (k == 0)
			fail(c, -ECONNRESET, "the producer went away");
		else
			failf(c, k, "connection error: %s", strerror(-k));
		return false;
	}
	for (int i = 0; i < k; i++) {
		union zcv_msg *m = &c->batch->msgs[i];
		int r = c->batch->res[i];

		if (c->result)
			; /* the stream ended earlier in the batch */
		else if (r == 0)
			fail(c, -ECONNRESET, "the producer went away");
		else if (r == -EPROTO)
			fail(c, -EPROTO, "malformed message from the producer");
		else
			handle_message(c, m, c->batch->fds[i], c->batch->n_fds[i]);
		/* whatever the handlers did not keep */
		if (r > 0)
			zcv_fds_dispose(c->batch->fds[i], c->batch->n_fds[i]);
	}
	/* a short batch emptied the socket: poll tells when more comes */
	return (unsigned)k == want;
}

/* Reads and handles, without blocking, what is queued, n messages having
 * been read in this dispatch already: all of it (at most
 * DISPATCH_MAX_MESSAGES) before any frame is delivered. */
static void read_more(struct zcv_client *c, unsigned n)
{
	while (n < DISPATCH_MAX_MESSAGES && !c->result) {
		unsigned want = ZCV_MIN(ZCV_MSG_BATCH, DISPATCH_MAX_MESSAGES - n);
		int k = zcv_msg_read_batch(c->fd, c->batch, want);

		if (!handle_batch(c, k, want))
			break;
		n += (unsigned)k;
	}
}

/* After the reads: callbacks, then the releases they made. */
static int dispatch_end(struct zcv_client *c)
{
	c->lost = c->result && should_reconnect(c);
	deliver(c);
	c->dispatching = false;
	flush_releases(c);
	return c->result;
}

static int dispatch_locked(struct zcv_client *c)
{
	if (c->dispatching)
		return -EBUSY;
	if (c->fd < 0 && !c->result) {
		c->dispatching = true;
		reconnect_attempt(c);
		if (c->fd < 0) {
			deliver(c);
			c->dispatching = false;
			return c->result;
		}
		c->dispatching = false;
	}
	flush_releases(c);
	if (c->result)
		return c->result;
	c->dispatching = true;
	read_more(c, 0);
	return dispatch_end(c);
}

int zcv_client_dispatch(struct zcv_client *c)
{
	int r;

	pthread_mutex_lock(&c->lock);
	r = dispatch_locked(c);
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* What SO_RCVTIMEO the blocking wait of wait_dispatch uses for timeout_ms
 * (not 0); -1 waits this long, as 0 (forever) would make signals restart
 * the read (SA_RESTART) instead of returning. */
#define WAIT_FOREVER_MS 10000

/* Sets SO_RCVTIMEO when it changes (steady state: no syscall). */
static int set_rcvtimeo(struct zcv_client *c, int timeout_ms)
{
	int ms = timeout_ms < 0 ? WAIT_FOREVER_MS : timeout_ms;
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	if (ms == c->rcvtimeo_ms)
		return 0;
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	c->rcvtimeo_ms = ms;
	return 0;
}

/*
 * The blocking path of wait_dispatch: one recvmmsg that sleeps until a
 * message comes, then the batch handled as dispatch does. Returns 1 with
 * *ret the dispatch result when it took the path, 0 when the caller must
 * poll instead (releases queued, not connected, reconnecting, ended, or
 * the socket could not be set up for it).
 */
static int wait_blocking(struct zcv_client *c, int timeout_ms, int *ret)
{
	int k;

	pthread_mutex_lock(&c->lock);
	if (c->dispatching) {
		pthread_mutex_unlock(&c->lock);
		*ret = -EBUSY;
		return 1;
	}
	if (c->fd < 0 || !c->connected || !c->sock_blocking || c->result || c->n_queued ||
	    set_rcvtimeo(c, timeout_ms) < 0) {
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	/* The socket and the batch are ours while dispatching is set; the
	 * lock is not held across the wait, so releases from other threads
	 * go out meanwhile (their sends do not wait: MSG_DONTWAIT). */
	c->dispatching = true;
	pthread_mutex_unlock(&c->lock);
	k = zcv_msg_read_batch_wait(c->fd, c->batch, ZCV_MSG_BATCH);
	pthread_mutex_lock(&c->lock);
	if (k == -EAGAIN || k == -EINTR) {
		/* SO_RCVTIMEO ran out (EAGAIN, which is EWOULDBLOCK), or a
		 * signal the caller may want to look at */
		c->dispatching = false;
		flush_releases(c);
		*ret = c->result;
	} else {
		if (handle_batch(c, k, ZCV_MSG_BATCH))
			read_more(c, (unsigned)k);
		*ret = dispatch_end(c);
	}
	pthread_mutex_unlock(&c->lock);
	return 1;
}

int zcv_client_wait_dispatch(struct zcv_client *c, int timeout_ms)
{
	struct pollfd pfd;
	int r;

	if (c->result) /* only the dispatching thread writes it */
		return zcv_client_dispatch(c);
	if (timeout_ms != 0 && wait_blocking(c, timeout_ms, &r))
		return r;
	pfd = (struct pollfd){ .fd = zcv_client_get_fd(c), .events = zcv_client_get_events(c) };
	r = poll(&pfd, 1, timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (r == 0)
		return 0;
	return zcv_client_dispatch(c);
}

short zcv_client_get_events(struct zcv_client *c)
{
	short ev;

	pthread_mutex_lock(&c->lock);
	ev = (short)(POLLIN | (c->connected && c->n_queued ? POLLOUT : 0));
	pthread_mutex_unlock(&c->lock);
	return ev;
}

unsigned zcv_client_queued_releases(struct zcv_client *c)
{
	unsigned n;

	pthread_mutex_lock(&c->lock);
	n = c->n_queued;
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* The buffer of a frame the sink holds, or NULL. */
static struct cbuf *held_buf(struct zcv_client *c, const struct zcv_client_frame *frame,
			     struct gen **ret_gen)
{
	struct gen *g = frame ? find_gen(c, frame->generation) : NULL;
	struct cbuf *b;

	if (!g || frame->index >= g->fmt.n_buffers)
		return NULL;
	b = &g->bufs[frame->index];
	if (!b->held || b->held_seq != frame->sequence)
		return NULL;
	*ret_gen = g;
	return b;
}

static int access_bracket(struct zcv_client *c, const struct zcv_client_frame *frame, bool begin)
{
	struct gen *g;
	struct cbuf *b;
	int r = 0;

	pthread_mutex_lock(&c->lock);
	b = held_buf(c, frame, &g);
	if (!b)
		r = -EINVAL;
	else if (g->fmt.path == ZCV_PATH_DMABUF)
		r = zcv_dmabuf_access(b->fds, b->n_fds, ZCV_SYNC_READ, begin);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int zcv_client_begin_access(struct zcv_client *c, const struct zcv_client_frame *frame)
{
	return access_bracket(c, frame, true);
}

int zcv_client_end_access(struct zcv_client *c, const struct zcv_client_frame *frame)
{
	return access_bracket(c, frame, false);
}

int zcv_client_release(struct zcv_client *c, const struct zcv_client_frame *frame)
{
	int r;

	pthread_mutex_lock(&c->lock);
	r = release_locked(c, frame);
	pthread_mutex_unlock(&c->lock);
	return r;
}

static int release_locked(struct zcv_client *c, const struct zcv_client_frame *frame)
{
	struct gen *g;
	struct cbuf *b = held_buf(c, frame, &g);

	if (!b)
		return -EINVAL;
	unhold(c, g, b);
	/* Queued even when it could go out at once, behind any that could
	 * not: the producer sees releases in the order they were made. The
	 * queue cannot overflow: a frame enters it only by leaving the
	 * holds, and holds plus queue stay within MAX_OUTSTANDING. */
	/* A frame of an earlier connection: that producer has taken it back. */
	if (c->connected && g->conn == c->conn && c->n_queued < MAX_OUTSTANDING) {
		c->queue[c->n_queued++] = (struct queued_release){
			.version = (uint16_t)g->fmt.version,
			.generation = frame->generation,
			.wire_gen = g->wire_gen,
			.index = frame->index,
			.sequence = frame->sequence,
		};
		b->release_queued = true;
		flush_releases(c);
	}
	/* Whether or not the RELEASE went out, the frame is no longer the
	 * sink's: an old generation goes once nothing of it is held. */
	if (g != c->cur)
		retired_collect(c);
	return 0;
}

/* Is the producer someone we trust with our memory? SO_PEERCRED names
 * whoever created the listening socket; a socket path anyone can write to
 * (--socket /tmp/x) makes that anyone. */
static int check_producer(const struct zcv_client_config *cfg, int fd, char *reason,
			  size_t reason_size)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uid_t me = geteuid();

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		int r = -errno;

		snprintf(reason, reason_size, "cannot learn who the producer is: %s", strerror(-r));
		return r;
	}
	if (cfg->producer_trust == ZCV_TRUST_ANYONE || cred.uid == me || cred.uid == 0)
		return 0;
	if (cfg->producer_trust == ZCV_TRUST_UID && cred.uid == cfg->producer_uid)
		return 0;
	if (cfg->producer_trust == ZCV_TRUST_UID)
		snprintf(
			reason, reason_size,
			"the producer runs as uid %u (pid %d): only uid %u (ours), uid %u and root "
			"are trusted",
			(unsigned)cred.uid, (int)cred.pid, (unsigned)me,
			(unsigned)cfg->producer_uid);
	else
		snprintf(reason, reason_size,
			 "the producer runs as uid %u (pid %d): only uid %u (ours) and root are "
			 "trusted",
			 (unsigned)cred.uid, (int)cred.pid, (unsigned)me);
	return -EACCES;
}

/*
 * Connects to c->path, checks the producer and sends HELLO. On failure
 * nothing stays open; reason says why, *ret_fatal says when another
 * attempt is not worth it: FATAL_UNTRUSTED (a producer we do not trust),
 * FATAL_REFUSED (it refused us, with a BYE).
 */
static int try_connect(struct zcv_client *c, char *reason, size_t reason_size, int *ret_fatal)
{
	struct zcv_msg_hello h;
	size_t len;
	int fd, r;

	r = zcv_socket_connect(c->path);
	if (r < 0) {
		if (r == -EAGAIN) /* not strerror's "try again" */
			snprintf(reason, reason_size, "cannot connect to %s: its backlog is full",
				 c->path);
		else
			snprintf(reason, reason_size, "cannot connect to %s: %s", c->path,
				 strerror(-r));
		return r;
	}
	fd = r;
	/* Before anything is sent (our name) or received (fds to map). */
	r = check_producer(&c->cfg, fd, reason, reason_size);
	if (r < 0) {
		zcv_debug("client: %s", reason);
		*ret_fatal = FATAL_UNTRUSTED;
		goto fail_fd;
	}
	len = zcv_msg_init(&h, ZCV_MSG_HELLO);
	h.min_version = ZCV_PROTOCOL_MIN_VERSION;
	h.caps = c->cfg.caps;
	memcpy(h.name, c->name, sizeof(h.name));
	zcv_msg_hello_set_constraints(&h, &c->cfg.constraints);
	h.flags = (c->cfg.keeps_latest ? ZCV_HELLO_FLAG_KEEPS_LATEST : 0) | ZCV_HELLO_FLAG_STATUS;
	r = zcv_msg_send(fd, &h, len, NULL, 0);
	if (r == -EPIPE || r == -ECONNRESET) {
		/* The producer refused us before reading anything (peer policy,
		 * too many consumers): its BYE says why. */
		union zcv_msg m;
		int fds[ZCV_MSG_MAX_FDS];
		unsigned n_fds = 0;

		if (zcv_msg_read(fd, &m, fds, &n_fds) > 0) {
			zcv_fds_dispose(fds, n_fds);
			if (m.hdr.type == ZCV_MSG_BYE && m.bye.error < 0 && m.bye.error >= -4095) {
				r = m.bye.error;
				m.bye.reason[sizeof(m.bye.reason) - 1] = '\0';
				zcv_log_sanitize(reason, reason_size, m.bye.reason);
				*ret_fatal = FATAL_REFUSED;
				goto fail_fd;
			}
		}
	}
	if (r < 0) {
		snprintf(reason, reason_size, "the producer hung up at the handshake: %s",
			 strerror(-r));
		goto fail_fd;
	}
	/* Blocking from here on for wait_dispatch's one recvmmsg; every other
	 * call on the socket passes MSG_DONTWAIT. Left non-blocking if this
	 * fails: wait_dispatch then polls. */
	r = fcntl(fd, F_GETFL);
	c->sock_blocking = r >= 0 && fcntl(fd, F_SETFL, r & ~O_NONBLOCK) == 0;
	c->rcvtimeo_ms = 0;
	c->fd = fd;
	c->connected = true;
	return 0;
fail_fd:
	/* Whatever the producer queued for us (fds among it) goes with it. */
	zcv_fd_dispose(fd);
	return r;
}

static int reconnect_setup(struct zcv_client *c)
{
	struct zcv_client_reconnect *rc = &c->cfg.reconnect;
	struct epoll_event ev = { .events = EPOLLIN };

	c->wait_fd = c->timer_fd = c->ino_fd = -1;
	if (!rc->enable && !rc->wait) {
		if (rc->max_attempts || rc->backoff_min_ms || rc->backoff_max_ms)
			return -EINVAL;
		return 0;
	}
	if (!rc->backoff_min_ms)
		rc->backoff_min_ms = BACKOFF_MIN_MS;
	if (!rc->backoff_max_ms)
		rc->backoff_max_ms = ZCV_MAX(BACKOFF_MAX_MS, rc->backoff_min_ms);
	if (rc->backoff_min_ms > rc->backoff_max_ms || rc->backoff_max_ms > BACKOFF_LIMIT_MS)
		return -EINVAL;
	c->rc_on = true;
	c->backoff_ms = rc->backoff_min_ms;
	c->wait_fd = epoll_create1(EPOLL_CLOEXEC);
	if (c->wait_fd < 0)
		return -errno;
	c->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (c->timer_fd < 0)
		return -errno;
	if (epoll_ctl(c->wait_fd, EPOLL_CTL_ADD, c->timer_fd, &ev) < 0)
		return -errno;
	/* Without inotify (limits reached) the timer alone finds the producer. */
	c->ino_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (c->ino_fd >= 0 && epoll_ctl(c->wait_fd, EPOLL_CTL_ADD, c->ino_fd, &ev) < 0) {
		close(c->ino_fd);
		c->ino_fd = -1;
	}
	return 0;
}

static void close_wait_fds(struct zcv_client *c)
{
	if (c->ino_fd >= 0)
		close(c->ino_fd);
	if (c->timer_fd >= 0)
		close(c->timer_fd);
	if (c->wait_fd >= 0)
		close(c->wait_fd);
}

int zcv_client_connect(const struct zcv_client_config *cfg, const struct zcv_client_callbacks *cbs,
		       void *data, struct zcv_client **ret_client)
{
	static const struct zcv_client_config defaults = { .size = sizeof(defaults) };
	struct zcv_client_config cf;
	struct zcv_client_callbacks cb = { 0 };
	char reason[REASON_MAX];
	struct zcv_client *c;
	int fatal = 0;
	int r;

	if (!ret_client)
		return -EINVAL;
	if (!cfg)
		cfg = &defaults;
	r = zcv_struct_copy_in(&cf, sizeof(cf), cfg);
	if (r == 0 && cbs)
		r = zcv_struct_copy_in(&cb, sizeof(cb), cbs);
	if (r < 0)
		return r;
	cfg = &cf;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->cfg = *cfg;
	c->cfg.socket_path = NULL;
	r = reconnect_setup(c);
	if (r < 0)
		goto fail_wait;
	if (cfg->socket_path) {
		r = -ENAMETOOLONG;
		if (strlen(cfg->socket_path) >= sizeof(c->path))
			goto fail_wait;
		strcpy(c->path, cfg->socket_path);
	} else {
		r = zcv_socket_default_path_nocreate(c->path, sizeof(c->path));
		if (r < 0)
			goto fail_wait;
	}
	r = -ENOMEM;
	c->events = calloc(DISPATCH_MAX_MESSAGES, sizeof(*c->events));
	c->batch = malloc(sizeof(*c->batch));
	if (!c->events || !c->batch)
		goto fail_wait;
	{
		pthread_mutexattr_t a;

		pthread_mutexattr_init(&a);
		pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
		pthread_mutex_init(&c->lock, &a);
		pthread_mutexattr_destroy(&a);
	}
	if (!c->cfg.caps)
		c->cfg.caps = ZCV_CAP_DMABUF | ZCV_CAP_MEMFD;
	snprintf(c->name, sizeof(c->name), "%s", cfg->name ? cfg->name : "zcv-client");
	c->cfg.name = c->name;
	c->cbs = cb;
	c->data = data;

	r = try_connect(c, reason, sizeof(reason), &fatal);
	if (r < 0 && c->rc_on && !fatal && connect_retryable(r)) {
		/* Not there yet: dispatch connects once it is. */
		retry_later(c, r, reason);
		if (!c->result)
			r = 0;
	}
	if (r < 0) {
		/* an untrusted producer is told to the closed callback too */
		if (fatal == FATAL_UNTRUSTED && c->cbs.closed)
			c->cbs.closed(c->data, r, reason);
		goto fail;
	}
	*ret_client = c;
	return 0;
fail:
	pthread_mutex_destroy(&c->lock);
fail_wait:
	close_wait_fds(c);
	free(c->events);
	free(c->batch);
	free(c);
	return r;
}

void zcv_client_destroy(struct zcv_client *c)
{
	if (!c)
		return;
	if (c->connected) {
		/* Not a release: the producer reclaims whatever we held. */
		struct zcv_msg_bye bye;
		size_t len = zcv_msg_init_bye(&bye, 0, "consumer closed");

		(void)zcv_msg_send(c->fd, &bye, len, NULL, 0);
		/* Nothing more may arrive: a FRAME queued behind the closer's
		 * drain would make our close a reset for the producer. */
		shutdown(c->fd, SHUT_RDWR);
	}
	/* Unread messages may carry fds whose release the producer controls. */
	zcv_fd_dispose(c->fd);
	close_wait_fds(c);
	gen_free(c->cur);
	while (c->retired) {
		struct gen *g = c->retired;

		c->retired = g->next;
		gen_free(g);
	}
	pthread_mutex_destroy(&c->lock);
	free(c->events);
	free(c->batch);
	free(c);
}

int zcv_client_get_fd(struct zcv_client *c)
{
	return c->fd >= 0 || !c->rc_on ? c->fd : c->wait_fd;
}

uint64_t zcv_client_dropped(struct zcv_client *c)
{
	return c->dropped;
}

unsigned zcv_client_held(struct zcv_client *c)
{
	unsigned n;

	pthread_mutex_lock(&c->lock);
	n = c->held;
	pthread_mutex_unlock(&c->lock);
	return n;
}

const struct zcv_client_format *zcv_client_get_format(struct zcv_client *c)
{
	return c->have_fmt ? &c->fmt : NULL;
}
