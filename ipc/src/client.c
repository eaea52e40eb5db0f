/* SPDX-License-Identifier: MIT */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <zcv/client.h>
#include <zcv/log.h>
#include <zcv/memory.h>
#include <zcv/pool.h>
#include "wire.h"

/* Bounded so one dispatch cannot monopolise the caller's loop. */
#define DISPATCH_MAX_MESSAGES 256

struct cbuf {
	bool present;
	bool held;
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
	struct zcv_client_format fmt;
	unsigned n_received;
	unsigned held;
	struct cbuf bufs[ZCV_POOL_MAX_BUFFERS];
};

struct zcv_client {
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
};

static void gen_free(struct gen *g)
{
	if (!g)
		return;
	for (unsigned i = 0; i < ZCV_POOL_MAX_BUFFERS; i++) {
		struct cbuf *b = &g->bufs[i];

		for (unsigned f = 0; f < b->n_fds; f++) {
			if (b->map[f])
				munmap(b->map[f], b->fd_size[f]);
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

static void finish(struct zcv_client *c, int result, int error, const char *reason)
{
	if (c->result)
		return;
	c->result = result;
	if (c->cbs.closed)
		c->cbs.closed(c->data, error, reason ? reason : "");
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
	finish(c, error, error, reason);
	return error;
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
	if (c->cur && w->generation <= c->cur->fmt.generation)
		return fail(c, -EPROTO, "WELCOME with an old pool generation");
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
	for (unsigned p = 0; p < w->n_planes; p++) {
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
	fmt.generation = w->generation;
	fmt.n_buffers = w->n_buffers;
	fmt.max_hold = w->max_hold;

	g = calloc(1, sizeof(*g));
	if (!g)
		return fail(c, -ENOMEM, "out of memory");
	g->fmt = fmt;
	for (unsigned i = 0; i < ZCV_POOL_MAX_BUFFERS; i++)
		for (unsigned f = 0; f < ZCV_MSG_MAX_FDS; f++)
			g->bufs[i].fds[f] = -1;
	gen_retire(c, c->cur);
	c->cur = g;
	return 0;
}

/* Takes the fds of the message on success; the caller closes them on failure. */
static int handle_buffer(struct zcv_client *c, const struct zcv_msg_buffer *m, int *fds)
{
	struct gen *g = c->cur;
	const struct zcv_layout *l;
	struct cbuf *b;
	int prot = c->cfg.map_writable ? PROT_READ | PROT_WRITE : PROT_READ;

	if (!g || gen_complete(g) || m->generation != g->fmt.generation)
		return fail(c, -EPROTO, "BUFFER outside its pool announcement");
	if (m->index >= g->fmt.n_buffers || g->bufs[m->index].present)
		return fail(c, -EPROTO, "BUFFER with a bad or repeated index");
	l = &g->fmt.layout;
	for (unsigned p = 0; p < l->n_planes; p++) {
		const struct zcv_plane_layout *pl = &l->planes[p];

		if ((uint64_t)pl->offset + pl->size > m->fd_size[m->plane_fd[p]])
			return fail(c, -EPROTO, "BUFFER too small for its planes");
	}
	for (unsigned f = 0; f < m->n_fds; f++) {
		uint64_t size = 0;
		int r;

		if (g->fmt.path == ZCV_PATH_DMABUF) {
			r = zcv_fd_size(fds[f], &size);
			if (r == 0 && size < m->fd_size[f])
				r = -EMSGSIZE;
		} else {
			/* A memfd the producer could shrink would SIGBUS us. */
			r = zcv_memfd_check_sealed(fds[f], m->fd_size[f], &size);
		}
		if (r < 0) {
			zcv_debug("client: buffer %u fd %u refused: %s", m->index, f, strerror(-r));
			return fail(c, -EPROTO, "BUFFER memory is not what it claims");
		}
	}

	b = &g->bufs[m->index];
	b->n_fds = m->n_fds;
	memcpy(b->plane_fd, m->plane_fd, sizeof(b->plane_fd));
	for (unsigned f = 0; f < m->n_fds; f++) {
		b->fd_size[f] = m->fd_size[f];
		if (c->cfg.no_map)
			continue;
		b->map[f] = mmap(NULL, m->fd_size[f], prot, MAP_SHARED, fds[f], 0);
		if (b->map[f] == MAP_FAILED) {
			int r = -errno;

			b->map[f] = NULL;
			for (unsigned k = 0; k < f; k++) {
				munmap(b->map[k], b->fd_size[k]);
				b->map[k] = NULL;
			}
			b->n_fds = 0;
			return fail(c, r, "cannot map a buffer");
		}
	}
	for (unsigned f = 0; f < m->n_fds; f++) {
		b->fds[f] = fds[f];
		fds[f] = -1;
	}
	b->present = true;
	if (++g->n_received == g->fmt.n_buffers) {
		c->fmt = g->fmt;
		c->have_fmt = true;
		if (c->cbs.format)
			c->cbs.format(c->data, &c->fmt);
	}
	return 0;
}

static int handle_frame(struct zcv_client *c, const struct zcv_msg_frame *m)
{
	struct gen *g = c->cur;
	struct zcv_client_frame fr = { 0 };
	const struct zcv_layout *l;
	struct cbuf *b;

	if (!g || !gen_complete(g) || m->generation != g->fmt.generation)
		return fail(c, -EPROTO, "FRAME of an unknown pool generation");
	if (m->index >= g->fmt.n_buffers)
		return fail(c, -EPROTO, "FRAME with a bad buffer index");
	b = &g->bufs[m->index];
	if (b->held)
		return fail(c, -EPROTO, "FRAME in a buffer we still hold");
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

	b->held = true;
	b->held_seq = m->sequence;
	g->held++;
	c->held++;

	fr.generation = m->generation;
	fr.index = m->index;
	fr.sequence = m->sequence;
	fr.timestamp_ns = m->timestamp_ns;
	fr.received_ns = zcv_now_ns();
	fr.flags = m->flags;
	fr.n_planes = l->n_planes;
	for (unsigned p = 0; p < l->n_planes; p++) {
		unsigned f = b->plane_fd[p];

		fr.planes[p] = b->map[f] ? (const uint8_t *)b->map[f] + l->planes[p].offset : NULL;
		fr.stride[p] = l->planes[p].stride;
		fr.bytesused[p] = m->bytesused[p];
		fr.fd[p] = b->fds[f];
		fr.offset[p] = l->planes[p].offset;
	}
	for (unsigned p = l->n_planes; p < ZCV_MAX_PLANES; p++)
		fr.fd[p] = -1;
	if (c->cbs.frame)
		c->cbs.frame(c->data, &fr);
	else
		/* nobody looks at frames: give them straight back */
		zcv_client_release(c, &fr);
	return 0;
}

static int handle_message(struct zcv_client *c, union zcv_msg *m, int *fds)
{
	switch (m->hdr.type) {
	case ZCV_MSG_WELCOME:
		return handle_welcome(c, &m->welcome);
	case ZCV_MSG_BUFFER:
		return handle_buffer(c, &m->buffer, fds);
	case ZCV_MSG_FRAME:
		return handle_frame(c, &m->frame);
	case ZCV_MSG_BYE:
		if (m->bye.error == 0) {
			/* Clean end: the socket stays up so held frames can still
			 * be released. */
			finish(c, 1, 0, m->bye.reason[0] ? m->bye.reason : "end of stream");
			return 1;
		}
		c->connected = false;
		finish(c, m->bye.error, m->bye.error, m->bye.reason);
		return m->bye.error;
	default:
		return fail(c, -EPROTO, "unexpected message from the producer");
	}
}

int zcv_client_dispatch(struct zcv_client *c)
{
	for (int n = 0; n < DISPATCH_MAX_MESSAGES && !c->result; n++) {
		union zcv_msg m;
		int fds[ZCV_MSG_MAX_FDS];
		unsigned n_fds = 0;
		int r;

		r = zcv_msg_read(c->fd, &m, fds, &n_fds);
		if (r == -EAGAIN)
			return 0;
		if (r == 0)
			return fail(c, -ECONNRESET, "the producer went away");
		if (r == -EPROTO)
			return fail(c, -EPROTO, "malformed message from the producer");
		if (r < 0)
			return fail(c, r, "connection error");
		r = handle_message(c, &m, fds);
		zcv_close_fds(fds, n_fds);
		if (r)
			return r;
	}
	return c->result;
}

int zcv_client_wait_dispatch(struct zcv_client *c, int timeout_ms)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	int r;

	if (c->result)
		return c->result;
	r = poll(&pfd, 1, timeout_ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (r == 0)
		return 0;
	return zcv_client_dispatch(c);
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

int zcv_client_release(struct zcv_client *c, const struct zcv_client_frame *frame)
{
	struct gen *g = frame ? find_gen(c, frame->generation) : NULL;
	struct zcv_msg_release m;
	struct cbuf *b;
	size_t len;
	int r = 0;

	if (!g || frame->index >= g->fmt.n_buffers)
		return -EINVAL;
	b = &g->bufs[frame->index];
	if (!b->held || b->held_seq != frame->sequence)
		return -EINVAL;
	if (c->connected) {
		len = zcv_msg_init(&m, ZCV_MSG_RELEASE);
		m.hdr.version = (uint16_t)g->fmt.version;
		m.generation = frame->generation;
		m.index = frame->index;
		m.sequence = frame->sequence;
		r = zcv_msg_send(c->fd, &m, len, NULL, 0);
		if (r == -EAGAIN)
			return r;
	}
	/* Sent, or there is nobody left to send it to: either way it is ours
	 * no longer. */
	b->held = false;
	g->held--;
	c->held--;
	if (g != c->cur)
		retired_collect(c);
	if (!c->connected || r < 0) {
		c->connected = false;
		return -EPIPE;
	}
	return 0;
}

int zcv_client_connect(const struct zcv_client_config *cfg, const struct zcv_client_callbacks *cbs,
		       void *data, struct zcv_client **ret_client)
{
	static const struct zcv_client_config defaults;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct zcv_msg_hello h;
	struct zcv_client *c;
	size_t len;
	int r;

	if (!ret_client)
		return -EINVAL;
	if (!cfg)
		cfg = &defaults;
	if (cfg->socket_path) {
		if (strlen(cfg->socket_path) >= sizeof(path))
			return -ENAMETOOLONG;
		strcpy(path, cfg->socket_path);
	} else {
		r = zcv_socket_default_path_nocreate(path, sizeof(path));
		if (r < 0)
			return r;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cfg = *cfg;
	c->cfg.socket_path = NULL;
	if (!c->cfg.caps)
		c->cfg.caps = ZCV_CAP_DMABUF | ZCV_CAP_MEMFD;
	snprintf(c->name, sizeof(c->name), "%s", cfg->name ? cfg->name : "zcv-client");
	c->cfg.name = c->name;
	if (cbs)
		c->cbs = *cbs;
	c->data = data;

	r = zcv_socket_connect(path);
	if (r < 0) {
		free(c);
		return r;
	}
	c->fd = r;
	c->connected = true;

	len = zcv_msg_init(&h, ZCV_MSG_HELLO);
	h.min_version = ZCV_PROTOCOL_MIN_VERSION;
	h.caps = c->cfg.caps;
	h.max_hold = c->cfg.max_hold;
	memcpy(h.name, c->name, sizeof(h.name));
	for (unsigned p = 0; p < ZCV_MAX_PLANES; p++)
		h.min_plane_size[p] = c->cfg.constraints.min_plane_size[p];
	h.stride_align = c->cfg.constraints.stride_align > 1 ? c->cfg.constraints.stride_align : 0;
	h.height_align = c->cfg.constraints.height_align > 1 ? c->cfg.constraints.height_align : 0;
	r = zcv_msg_send(c->fd, &h, len, NULL, 0);
	if (r == -EPIPE || r == -ECONNRESET) {
		/* The producer refused us before reading anything (peer policy,
		 * too many consumers): its BYE says why. */
		union zcv_msg m;
		int fds[ZCV_MSG_MAX_FDS];
		unsigned n_fds = 0;

		if (zcv_msg_read(c->fd, &m, fds, &n_fds) > 0) {
			zcv_close_fds(fds, n_fds);
			if (m.hdr.type == ZCV_MSG_BYE && m.bye.error < 0)
				r = m.bye.error;
		}
	}
	if (r < 0) {
		close(c->fd);
		free(c);
		return r;
	}
	*ret_client = c;
	return 0;
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
	}
	close(c->fd);
	gen_free(c->cur);
	while (c->retired) {
		struct gen *g = c->retired;

		c->retired = g->next;
		gen_free(g);
	}
	free(c);
}

int zcv_client_get_fd(struct zcv_client *c)
{
	return c->fd;
}

uint64_t zcv_client_dropped(struct zcv_client *c)
{
	return c->dropped;
}

unsigned zcv_client_held(struct zcv_client *c)
{
	return c->held;
}

const struct zcv_client_format *zcv_client_get_format(struct zcv_client *c)
{
	return c->have_fmt ? &c->fmt : NULL;
}

const char *zcv_path_name(int path)
{
	switch (path) {
	case ZCV_PATH_DMABUF:
		return "dmabuf";
	case ZCV_PATH_MEMFD:
		return "memfd";
	case ZCV_PATH_COPY:
		return "copy";
	}
	return "unknown";
}
