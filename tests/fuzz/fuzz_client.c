/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the client's receive path, through the public API.
 *
 * The harness plays a producer: it listens on a SOCK_SEQPACKET socket in a
 * temporary directory, connects a real zcv_client to it, and turns the
 * input (fuzz_ops.h, "fuzz_client") into messages written to the client,
 * some carrying fds it makes (sealed, write-sealed, shrinkable and
 * unsealed memfds, pipes, /dev/null, sockets, plain files), calling
 * zcv_client_dispatch() after each op unless the op batches. The sink
 * releases, holds, double-releases or misreleases frames as the input says
 * and reads every byte of each frame it gets.
 *
 * What must hold, whatever the producer sends:
 * - no crash, no sanitizer report, no SIGBUS (the producer may shrink any
 *   memfd or file it sent that is not sealed against it, FC_OP_SHRINK,
 *   before a frame is read);
 * - callbacks: none after closed, closed at most once, a frame only of a
 *   buffer of the current format, within its planes, sent by the producer,
 *   never one with an eviction (BYE with an error) queued behind it;
 * - zcv_client_release(): 0 for a frame the sink holds (a full socket is
 *   the client's problem), -EINVAL for one it does not;
 *   zcv_client_held() agrees;
 * - what the client sends validates, and each RELEASE is of a frame the
 *   sink released, once; once the producer reads again, every frame
 *   released before an error ended the stream is released on the wire;
 * - after zcv_client_destroy() no mapping of the producer's memfds and
 *   not one fd more than before.
 */
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <sys/un.h>
#include <zcv/client.h>
#include <zcv/format.h>
#include <zcv/pool.h>
#include "fuzz_common.h"
#include "fuzz_seed.h"
#include "protocol.h"
#include "wire.h"

#define MAX_HELD 64
#define MAX_TRACKED 1024
#define MAX_SENT 256
#define MAX_KEPT 64
/* An eviction is checked only in batches the client reads in one dispatch. */
#define EVICT_BATCH_LIMIT 64

static const struct {
	uint32_t fourcc, width, height;
} formats[] = {
	{ ZCV_FMT_NV12, 16, 8 }, { ZCV_FMT_YUYV, 8, 4 },     { ZCV_FMT_YUV420, 16, 4 },
	{ ZCV_FMT_GREY, 8, 2 },  { ZCV_FMT_XRGB8888, 4, 2 }, { ZCV_FMT_NV16, 8, 2 },
};
#define N_FORMATS (sizeof(formats) / sizeof(formats[0]))
static struct zcv_layout layouts[N_FORMATS];

static char dir[64], sock_path[128];
static int listen_fd = -1;
static bool verbose; /* $ZCV_FUZZ_VERBOSE: what each input did, on stderr */

/* Room for a message, a lying length past ZCV_MSG_MAX_SIZE included. */
union pkt {
	union zcv_msg m;
	uint8_t raw[640];
};

/* A frame the sink was given. */
struct tracked {
	uint32_t generation, index;
	uint64_t sequence;
	bool released; /* by the sink, with success */
	bool owed;     /* ... while the producer still wanted it back */
	bool on_wire;  /* its RELEASE reached the producer */
};

/* A FRAME the producer sent. */
struct sent {
	uint64_t sequence;
	uint8_t policy;
	bool doomed; /* a BYE with an error was queued behind it */
	unsigned batch;
};

struct run {
	struct fz in;
	struct fc_config cfg;
	struct zcv_client *c;
	int fd; /* the producer's end */
	/* what the producer announced last */
	bool have_gen;
	uint32_t gen;
	unsigned n_buffers;
	uint64_t frame_size;
	struct zcv_layout layout;
	bool buf_sent[ZCV_POOL_MAX_BUFFERS];
	bool lent[ZCV_POOL_MAX_BUFFERS]; /* a FRAME went out, its RELEASE not read yet */
	uint64_t next_seq;
	struct sent sent[MAX_SENT];
	unsigned n_sent;
	unsigned batch, batch_msgs;
	bool batch_ended; /* a clean BYE was sent in this batch */
	/* the sink */
	struct zcv_client_frame held[MAX_HELD];
	unsigned n_held;
	struct tracked tracked[MAX_TRACKED];
	unsigned n_tracked;
	unsigned n_formats, n_frames;
	bool have_fmt;
	uint32_t fmt_gen;
	bool closed;
	int closed_error;
	bool hung_up;        /* the producer shut its end */
	bool hangup_pending; /* ... since the last dispatch */
	/* fds sent that can shrink, to shrink behind the client's back */
	int kept[MAX_KEPT];
	unsigned n_kept;
};

static struct run run;

static struct sent *find_sent(struct run *r, uint64_t seq)
{
	unsigned n = r->n_sent < MAX_SENT ? r->n_sent : MAX_SENT;

	for (unsigned i = 1; i <= n; i++) {
		struct sent *s = &r->sent[(r->n_sent - i) % MAX_SENT];

		if (s->sequence == seq)
			return s;
	}
	return NULL;
}

static struct tracked *find_tracked(struct run *r, uint32_t gen, uint32_t idx, uint64_t seq)
{
	for (unsigned i = r->n_tracked; i-- > 0;) {
		struct tracked *t = &r->tracked[i];

		if (t->generation == gen && t->index == idx && t->sequence == seq)
			return t;
	}
	return NULL;
}

static void note_released(struct run *r, const struct zcv_client_frame *fr)
{
	struct tracked *t = find_tracked(r, fr->generation, fr->index, fr->sequence);

	if (!t)
		return;
	t->released = true;
	/* after an error the producer has taken everything back itself */
	t->owed = !r->closed || r->closed_error == 0;
}

/* The sink gives back a frame it holds: never -EAGAIN (the client owns
 * retries), and the frame is no longer held either way. */
static void release_held(struct run *r, unsigned i)
{
	struct zcv_client_frame fr = r->held[i];
	int ret = zcv_client_release(r->c, &fr);

	FUZZ_CHECK(ret == 0, "release of held frame %llu returned %d",
		   (unsigned long long)fr.sequence, ret);
	note_released(r, &fr);
	r->held[i] = r->held[--r->n_held];
	/* the same frame again is not held any more */
	ret = zcv_client_release(r->c, &fr);
	FUZZ_CHECK(ret == -EINVAL, "second release of frame %llu returned %d",
		   (unsigned long long)fr.sequence, ret);
}

static void hold(struct run *r, const struct zcv_client_frame *fr)
{
	if (r->n_held == MAX_HELD)
		release_held(r, 0);
	r->held[r->n_held++] = *fr;
}

static void on_format(void *data, const struct zcv_client_format *fmt)
{
	struct run *r = data;

	FUZZ_CHECK(!r->closed, "format callback after closed");
	FUZZ_CHECK(zcv_layout_validate(&fmt->layout) == 0, "format with an invalid layout");
	FUZZ_CHECK(fmt->n_buffers >= 1 && fmt->n_buffers <= ZCV_POOL_MAX_BUFFERS,
		   "format with %u buffers", fmt->n_buffers);
	FUZZ_CHECK(!r->have_fmt || fmt->generation > r->fmt_gen, "generation %u after %u",
		   fmt->generation, r->fmt_gen);
	r->have_fmt = true;
	r->fmt_gen = fmt->generation;
	r->n_formats++;
}

static void on_frame(void *data, const struct zcv_client_frame *fr)
{
	struct run *r = data;
	const struct zcv_client_format *fmt = zcv_client_get_format(r->c);
	struct zcv_client_frame wrong;
	struct sent *s = find_sent(r, fr->sequence);
	volatile uint8_t sink = 0;
	int ret;

	FUZZ_CHECK(!r->closed, "frame %llu after closed", (unsigned long long)fr->sequence);
	FUZZ_CHECK(fmt, "frame before any format");
	FUZZ_CHECK(s, "frame %llu was never sent", (unsigned long long)fr->sequence);
	FUZZ_CHECK(!s->doomed, "frame %llu delivered with an eviction queued behind it",
		   (unsigned long long)fr->sequence);
	FUZZ_CHECK(fr->index < fmt->n_buffers, "frame in buffer %u of %u", fr->index,
		   fmt->n_buffers);
	FUZZ_CHECK(fr->n_planes == fmt->layout.n_planes, "frame with %u planes, format %u",
		   fr->n_planes, fmt->layout.n_planes);
	for (unsigned p = 0; p < fr->n_planes && p < ZCV_MAX_PLANES; p++) {
		FUZZ_CHECK(fr->bytesused[p] <= fmt->layout.planes[p].size,
			   "plane %u: %u bytes used of %u", p, fr->bytesused[p],
			   fmt->layout.planes[p].size);
		FUZZ_CHECK(fcntl(fr->fd[p], F_GETFD) >= 0, "plane %u: fd %d is not open", p,
			   fr->fd[p]);
		if (r->cfg.flags & FC_CFG_NO_MAP) {
			FUZZ_CHECK(!fr->planes[p], "plane %u mapped without mapping", p);
			continue;
		}
		FUZZ_CHECK(fr->planes[p], "plane %u not mapped", p);
		/* every byte the producer said it wrote: SIGBUS here is a bug */
		for (uint32_t i = 0; i < fr->bytesused[p]; i++)
			sink ^= fr->planes[p][i];
	}
	(void)sink;
	r->n_frames++;
	if (r->n_tracked < MAX_TRACKED)
		r->tracked[r->n_tracked++] = (struct tracked){ .generation = fr->generation,
							       .index = fr->index,
							       .sequence = fr->sequence };

	switch (s->policy % 4) {
	case FC_POLICY_RELEASE:
	case FC_POLICY_TWICE: /* release_held() releases twice */
		hold(r, fr);
		release_held(r, r->n_held - 1);
		break;
	case FC_POLICY_HOLD:
		hold(r, fr);
		break;
	case FC_POLICY_WRONG:
		hold(r, fr);
		wrong = *fr;
		wrong.sequence++;
		ret = zcv_client_release(r->c, &wrong);
		FUZZ_CHECK(ret == -EINVAL, "release of a wrong sequence returned %d", ret);
		break;
	}
}

static void on_closed(void *data, int error, const char *reason)
{
	struct run *r = data;

	FUZZ_CHECK(!r->closed, "closed twice");
	FUZZ_CHECK(error <= 0, "closed with error %d", error);
	FUZZ_CHECK(reason && strlen(reason) < 4096, "closed without a reason");
	r->closed = true;
	r->closed_error = error;
}

static const struct zcv_client_callbacks cbs = {
	.size = sizeof(struct zcv_client_callbacks),
	.format = on_format,
	.frame = on_frame,
	.closed = on_closed,
};

static const struct zcv_client_callbacks cbs_no_frame = {
	.size = sizeof(struct zcv_client_callbacks),
	.format = on_format,
	.closed = on_closed,
};

/* Reads what the client sent: only valid RELEASEs of frames the sink
 * released (each once) and BYE. */
static void drain(struct run *r)
{
	for (;;) {
		union zcv_msg m;
		int fds[ZCV_MSG_MAX_FDS];
		unsigned n_fds = 0;
		struct tracked *t;
		int ret;

		if (r->fd < 0)
			return;
		ret = zcv_msg_read(r->fd, &m, fds, &n_fds);
		if (ret == -EAGAIN || ret == 0 || ret == -ECONNRESET || ret == -EPIPE)
			return;
		FUZZ_CHECK(ret > 0, "reading the client: %d", ret);
		FUZZ_CHECK(n_fds == 0, "the client sent %u fds", n_fds);
		switch (m.hdr.type) {
		case ZCV_MSG_RELEASE:
			t = find_tracked(r, m.release.generation, m.release.index,
					 m.release.sequence);
			if (!t &&
			    (r->n_tracked == MAX_TRACKED || (r->cfg.flags & FC_CFG_NO_FRAME_CB)))
				break; /* past what the harness remembers, or it never saw frames */
			FUZZ_CHECK(t, "RELEASE of g%u b%u seq %llu it was never given",
				   m.release.generation, m.release.index,
				   (unsigned long long)m.release.sequence);
			FUZZ_CHECK(t->released, "RELEASE of frame %llu the sink holds",
				   (unsigned long long)t->sequence);
			FUZZ_CHECK(!t->on_wire, "frame %llu released twice on the wire",
				   (unsigned long long)t->sequence);
			t->on_wire = true;
			if (m.release.generation == r->gen &&
			    m.release.index < ZCV_POOL_MAX_BUFFERS)
				r->lent[m.release.index] = false;
			break;
		case ZCV_MSG_BYE:
			break;
		default:
			FUZZ_CHECK(0, "the client sent a %s", zcv_msg_type_name(m.hdr.type));
		}
	}
}

static void dispatch(struct run *r)
{
	int ret;

	bool sent = r->batch_msgs || r->hangup_pending;

	r->batch++;
	r->batch_msgs = 0;
	r->batch_ended = false;
	r->hangup_pending = false;
	if (!r->c)
		return;
	if ((r->cfg.flags & FC_CFG_WAIT_BLOCK) && sent)
		ret = zcv_client_wait_dispatch(r->c, 5);
	else if (r->cfg.flags & FC_CFG_WAIT)
		ret = zcv_client_wait_dispatch(r->c, 0);
	else
		ret = zcv_client_dispatch(r->c);
	FUZZ_CHECK(ret <= 1, "dispatch returned %d", ret);
	FUZZ_CHECK(!zcv_client_queued_releases(r->c) || (zcv_client_get_events(r->c) & POLLOUT),
		   "%u releases queued, no POLLOUT asked for", zcv_client_queued_releases(r->c));
	FUZZ_CHECK(ret == 0 || r->closed, "dispatch returned %d without closed", ret);
	FUZZ_CHECK(ret != 1 || r->closed_error == 0, "clean end, closed with %d", r->closed_error);
	FUZZ_CHECK(zcv_client_held(r->c) == r->n_held, "client says %u held, sink holds %u",
		   zcv_client_held(r->c), r->n_held);
	if (!(r->cfg.flags & FC_CFG_NO_DRAIN))
		drain(r);
}

/* Remembers what a message that reached the client means for the checks:
 * FRAMEs (with the sink's policy for them) and evictions. */
static void note_sent(struct run *r, const union pkt *p, size_t len, unsigned n_fds, uint8_t policy)
{
	const union zcv_msg *m = &p->m;

	r->batch_msgs++;
	if (len > sizeof(*m) || zcv_msg_validate(m, len, n_fds) < 0)
		return;
	if (m->hdr.type == ZCV_MSG_FRAME) {
		r->sent[r->n_sent++ % MAX_SENT] = (struct sent){ .sequence = m->frame.sequence,
								 .policy = policy,
								 .batch = r->batch };
	} else if (m->hdr.type == ZCV_MSG_BYE && m->bye.error == 0) {
		/* a clean end delivers what came before it and ends the
		 * stream: a BYE with an error behind it is never read */
		r->batch_ended = true;
	} else if (m->hdr.type == ZCV_MSG_BYE && m->bye.error < 0 &&
		   r->batch_msgs <= EVICT_BATCH_LIMIT && !r->batch_ended) {
		unsigned n = r->n_sent < MAX_SENT ? r->n_sent : MAX_SENT;

		for (unsigned i = 1; i <= n; i++) {
			struct sent *s = &r->sent[(r->n_sent - i) % MAX_SENT];

			if (s->batch != r->batch)
				break;
			s->doomed = true;
		}
	}
}

/* Applies the input's mutation block (when mutate), attaches its extra
 * fds, sends. fds are borrowed. */
static void send_pkt(struct run *r, union pkt *p, size_t len, const int *fds, unsigned n_fds,
		     uint8_t policy, bool mutate)
{
	struct fuzz_extra_fds extra = { 0 };
	int all[FUZZ_MAX_FDS];
	unsigned n_all = 0, n_mine;

	if (mutate)
		len = fuzz_mutate(&r->in, p->raw, len, sizeof(p->raw), &extra);
	for (unsigned i = 0; i < n_fds && n_all < FUZZ_MAX_FDS; i++)
		all[n_all++] = fds[i];
	n_mine = n_all;
	for (unsigned i = 0; i < extra.n && n_all < FUZZ_MAX_FDS; i++) {
		int fd = fuzz_make_fd(extra.kind[i], 4096, NULL);

		if (fd >= 0)
			all[n_all++] = fd;
	}
	if (r->fd >= 0 && fuzz_send(r->fd, p->raw, len, all, n_all, extra.split) == 0)
		note_sent(r, p, len, n_all, policy);
	for (unsigned i = n_mine; i < n_all; i++)
		close(all[i]);
}

static uint32_t path_of(uint8_t v)
{
	static const uint32_t paths[] = { ZCV_PATH_MEMFD, ZCV_PATH_DMABUF, ZCV_PATH_COPY };

	return v < 3 ? paths[v] : v;
}

static void raw_layout(const struct fc_raw_layout *raw, struct zcv_layout *l)
{
	memset(l, 0, sizeof(*l));
	l->fourcc = raw->fourcc == 255 ? ZCV_FOURCC('Z', 'Z', 'Z', 'Z') :
					 formats[raw->fourcc % N_FORMATS].fourcc;
	l->width = fz_le16(raw->width);
	l->height = fz_le16(raw->height);
	l->n_planes = raw->n_planes;
	for (unsigned p = 0; p < ZCV_MAX_PLANES; p++) {
		l->planes[p].offset = fz_le16(raw->planes[p].offset);
		l->planes[p].stride = fz_le16(raw->planes[p].stride);
		l->planes[p].size = fz_le16(raw->planes[p].size);
	}
	l->size = fz_le32(raw->frame_size);
}

static void send_welcome(struct run *r, const struct fc_welcome *w, const struct zcv_layout *l,
			 bool mutate)
{
	union pkt p;
	size_t len = zcv_msg_init(&p.m, ZCV_MSG_WELCOME);
	uint32_t base = r->have_gen ? r->gen : 0;
	struct zcv_msg_welcome *m = &p.m.welcome;

	m->version = w->version ? w->version : ZCV_PROTOCOL_VERSION;
	m->path = (uint16_t)path_of(w->path);
	m->max_hold = w->max_hold ? w->max_hold : 2;
	memset(m->stream_id, 0x5a, sizeof(m->stream_id));
	m->fourcc = l->fourcc;
	m->width = l->width;
	m->height = l->height;
	m->n_planes = l->n_planes;
	for (unsigned i = 0; i < ZCV_MAX_PLANES; i++) {
		m->planes[i].offset = l->planes[i].offset;
		m->planes[i].stride = l->planes[i].stride;
		m->planes[i].size = l->planes[i].size;
	}
	m->fps_num = w->fps ? w->fps : 30;
	m->fps_den = w->fps ? w->fps & 3 : 1;
	m->generation = w->gen ? base + (uint32_t)(int8_t)w->gen : base + 1;
	m->n_buffers = w->n_buffers ? w->n_buffers : 2;
	m->frame_size = l->size;

	r->have_gen = true;
	r->gen = m->generation;
	r->n_buffers = m->n_buffers;
	r->layout = *l;
	r->frame_size = l->size;
	memset(r->buf_sent, 0, sizeof(r->buf_sent));
	memset(r->lent, 0, sizeof(r->lent));
	send_pkt(r, &p, len, NULL, 0, 0, mutate);
}

static void send_buffer(struct run *r, const struct fc_buffer *b, bool mutate)
{
	union pkt p;
	size_t len = zcv_msg_init(&p.m, ZCV_MSG_BUFFER);
	struct zcv_msg_buffer *m = &p.m.buffer;
	unsigned idx = 0, n_fds = b->n_fds ? b->n_fds : 1, n_made = 0;
	uint64_t size = fz_le32(b->size) ? fz_le32(b->size) : r->frame_size;
	uint64_t claim = fz_le32(b->claim) ? fz_le32(b->claim) : size;
	int fds[FUZZ_MAX_FDS];

	if (b->index) {
		idx = b->index - 1u;
	} else {
		while (idx < ZCV_POOL_MAX_BUFFERS - 1 && r->buf_sent[idx])
			idx++;
	}
	if (idx < ZCV_POOL_MAX_BUFFERS)
		r->buf_sent[idx] = true;
	if (size > FUZZ_MAX_FD_SIZE)
		size = FUZZ_MAX_FD_SIZE;
	m->generation = b->gen ? r->gen + (uint32_t)(int8_t)b->gen : r->gen;
	m->index = idx;
	m->n_fds = n_fds;
	memcpy(m->plane_fd, b->plane_fd, sizeof(m->plane_fd));
	for (unsigned f = 0; f < ZCV_MAX_PLANES && f < n_fds; f++)
		m->fd_size[f] = claim;
	for (unsigned f = 0; f < n_fds && f < FUZZ_MAX_FDS; f++) {
		int keep, fd = fuzz_make_fd(b->fd_kind, size, &keep);

		if (fd < 0)
			continue;
		fds[n_made++] = fd;
		if (keep >= 0 && r->n_kept < MAX_KEPT)
			r->kept[r->n_kept++] = keep;
		else if (keep >= 0)
			close(keep);
	}
	send_pkt(r, &p, len, fds, n_made, 0, mutate);
	for (unsigned i = 0; i < n_made; i++)
		close(fds[i]);
}

static void op_pool(struct run *r)
{
	struct fc_pool o;
	struct fc_welcome w = { 0 };
	struct fc_buffer b = { 0 };
	unsigned n;

	fz_take(&r->in, &o, sizeof(o));
	n = o.n_buffers ? 1 + o.n_buffers % ZCV_POOL_MAX_BUFFERS : 2;
	w.n_buffers = (uint8_t)n;
	w.path = o.path % 3;
	send_welcome(r, &w, &layouts[o.format % N_FORMATS], false);
	b.fd_kind = o.fd_kind;
	for (unsigned i = 0; i < n; i++)
		send_buffer(r, &b, false);
}

static void op_welcome(struct run *r)
{
	struct fc_welcome w;
	struct zcv_layout l;

	fz_take(&r->in, &w, sizeof(w));
	if (w.format < N_FORMATS) {
		l = layouts[w.format];
	} else {
		struct fc_raw_layout raw;

		fz_take(&r->in, &raw, sizeof(raw));
		raw_layout(&raw, &l);
	}
	send_welcome(r, &w, &l, true);
}

static void op_buffer(struct run *r)
{
	struct fc_buffer b;

	fz_take(&r->in, &b, sizeof(b));
	send_buffer(r, &b, true);
}

static void op_frame(struct run *r)
{
	struct fc_frame o;
	union pkt p;
	size_t len = zcv_msg_init(&p.m, ZCV_MSG_FRAME);
	struct zcv_msg_frame *m = &p.m.frame;
	uint64_t seq;
	unsigned idx = 0;

	fz_take(&r->in, &o, sizeof(o));
	m->generation = o.gen ? r->gen + (uint32_t)(int8_t)o.gen : r->gen;
	if (o.index) {
		idx = o.index - 1u;
	} else {
		/* as a producer would: a buffer whose release came back */
		while (idx < r->n_buffers && idx < ZCV_POOL_MAX_BUFFERS && r->lent[idx])
			idx++;
		if (idx == r->n_buffers || idx == ZCV_POOL_MAX_BUFFERS)
			idx = 0;
	}
	if (idx < ZCV_POOL_MAX_BUFFERS && m->generation == r->gen)
		r->lent[idx] = true;
	if (o.seq < 128)
		seq = r->next_seq + o.seq;
	else
		seq = r->next_seq - (o.seq - 127u);
	if (seq + 1 > r->next_seq)
		r->next_seq = seq + 1;
	m->index = idx;
	m->sequence = seq;
	m->timestamp_ns = seq * 1000;
	m->flags = o.flags;
	for (unsigned pl = 0; pl < ZCV_MAX_PLANES && pl < r->layout.n_planes; pl++)
		m->bytesused[pl] = o.bytesused ? r->layout.planes[pl].size + o.bytesused - 128u :
						 r->layout.planes[pl].size;
	send_pkt(r, &p, len, NULL, 0, o.policy, true);
}

static void op_bye(struct run *r)
{
	struct fc_bye o;
	union pkt p;
	size_t len;
	unsigned n;

	fz_take(&r->in, &o, sizeof(o));
	len = zcv_msg_init_bye(&p.m.bye, o.error ? -(int)o.error : 0, NULL);
	n = o.reason_len % (sizeof(p.m.bye.reason) + 1);
	memset(p.m.bye.reason, 'x', n);
	send_pkt(r, &p, len, NULL, 0, 0, true);
}

static void op_raw(struct run *r)
{
	union pkt p;
	size_t len = fz_u16(&r->in) % (sizeof(p.raw) + 1);

	fz_take(&r->in, p.raw, len);
	send_pkt(r, &p, len, NULL, 0, 0, true);
}

static void op_release(struct run *r)
{
	struct fc_release o;

	fz_take(&r->in, &o, sizeof(o));
	if (o.which == 255) {
		while (r->n_held)
			release_held(r, r->n_held - 1);
	} else if (r->n_held) {
		release_held(r, o.which % r->n_held);
	}
}

static void op_forge(struct run *r)
{
	struct fc_forge o;
	struct zcv_client_frame fr = { 0 };
	int ret;

	fz_take(&r->in, &o, sizeof(o));
	fr.generation = r->gen + (uint32_t)(int8_t)o.gen;
	fr.index = o.index;
	fr.sequence = r->next_seq - 1 - fz_le16(o.seq);
	for (unsigned i = 0; i < r->n_held; i++) {
		if (r->held[i].generation == fr.generation && r->held[i].index == fr.index &&
		    r->held[i].sequence == fr.sequence) {
			release_held(r, i);
			return;
		}
	}
	ret = zcv_client_release(r->c, &fr);
	FUZZ_CHECK(ret == -EINVAL, "release of a frame never held returned %d", ret);
}

static void op_shrink(struct run *r)
{
	for (unsigned i = 0; i < r->n_kept; i++)
		if (ftruncate(r->kept[i], 0) < 0)
			abort();
}

static void op_hangup(struct run *r)
{
	struct fc_hangup o;

	fz_take(&r->in, &o, sizeof(o));
	if (r->fd < 0)
		return;
	r->hung_up = true;
	r->hangup_pending = true;
	if (o.how == 0) {
		shutdown(r->fd, SHUT_WR);
	} else {
		close(r->fd);
		r->fd = -1;
	}
}

static unsigned count_on_wire(const struct run *r)
{
	unsigned n = 0;

	for (unsigned i = 0; i < r->n_tracked; i++)
		n += r->tracked[i].on_wire;
	return n;
}

/* With the producer reading again and the stream not failed, queued
 * releases go out: every frame the sink gave back is released on the wire. */
static void check_flushed(struct run *r)
{
	bool open = r->fd >= 0 && !r->hung_up && (!r->closed || r->closed_error == 0);

	for (int i = 0; i < 4; i++) {
		drain(r);
		dispatch(r);
	}
	drain(r);
	if (!open || r->closed_error < 0)
		return;
	FUZZ_CHECK(zcv_client_queued_releases(r->c) == 0, "%u releases still queued",
		   zcv_client_queued_releases(r->c));
	for (unsigned i = 0; i < r->n_tracked; i++)
		FUZZ_CHECK(!r->tracked[i].owed || r->tracked[i].on_wire,
			   "frame %llu released by the sink, never on the wire",
			   (unsigned long long)r->tracked[i].sequence);
}

/* Mappings of the producer's memfds ("/memfd:fuzz") in this process. */
static unsigned count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	unsigned n = 0;

	if (!f)
		abort();
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "/memfd:fuzz") != NULL;
	fclose(f);
	return n;
}

static void run_one(const uint8_t *data, size_t size, bool check)
{
	struct run *r = &run;
	struct zcv_client_config cfg = { .size = sizeof(struct zcv_client_config) };
	static const uint32_t caps[] = { 0, ZCV_CAP_MEMFD, ZCV_CAP_DMABUF,
					 ZCV_CAP_NEEDS_COPY | ZCV_CAP_MEMFD };
	int before = fuzz_count_fds(), after, ret;
	union zcv_msg m;
	int fds[ZCV_MSG_MAX_FDS];
	unsigned n_fds = 0;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->next_seq = 1;
	r->in = (struct fz){ data, size };
	fz_take(&r->in, &r->cfg, sizeof(r->cfg));
	cfg.socket_path = sock_path;
	cfg.name = "fuzz";
	cfg.caps = caps[r->cfg.caps % 4];
	cfg.constraints.hold = r->cfg.max_hold;
	cfg.no_map = r->cfg.flags & FC_CFG_NO_MAP;
	ret = zcv_client_connect(&cfg, (r->cfg.flags & FC_CFG_NO_FRAME_CB) ? &cbs_no_frame : &cbs,
				 r, &r->c);
	FUZZ_CHECK(ret == 0, "connect: %d", ret);
	r->fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	FUZZ_CHECK(r->fd >= 0, "accept: %d", errno);
	ret = zcv_msg_read(r->fd, &m, fds, &n_fds);
	FUZZ_CHECK(ret > 0 && m.hdr.type == ZCV_MSG_HELLO && n_fds == 0, "no HELLO: %d", ret);
	if (r->cfg.flags & FC_CFG_SMALL_SNDBUF) {
		int one = 1;

		setsockopt(zcv_client_get_fd(r->c), SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
	}

	while (!fz_done(&r->in)) {
		uint8_t op = fz_u8(&r->in);

		switch ((op & ~FUZZ_OP_BATCH) % FC_OP_COUNT) {
		case FC_OP_POOL:
			op_pool(r);
			break;
		case FC_OP_WELCOME:
			op_welcome(r);
			break;
		case FC_OP_BUFFER:
			op_buffer(r);
			break;
		case FC_OP_FRAME:
			op_frame(r);
			break;
		case FC_OP_BYE:
			op_bye(r);
			break;
		case FC_OP_RAW:
			op_raw(r);
			break;
		case FC_OP_RELEASE:
			op_release(r);
			break;
		case FC_OP_FORGE:
			op_forge(r);
			break;
		case FC_OP_SHRINK:
			op_shrink(r);
			break;
		case FC_OP_DRAIN:
			drain(r);
			break;
		case FC_OP_HANGUP:
			op_hangup(r);
			break;
		}
		if (!(op & FUZZ_OP_BATCH))
			dispatch(r);
	}
	dispatch(r);
	if (!(r->cfg.flags & FC_CFG_KEEP_HELD))
		while (r->n_held)
			release_held(r, r->n_held - 1);
	check_flushed(r);
	if (verbose)
		fprintf(stderr,
			"fuzz_client: %u formats, %u frames, %u held at the end, %u released on "
			"the "
			"wire, closed %s %d\n",
			r->n_formats, r->n_frames, r->n_held, count_on_wire(r),
			r->closed ? "yes" : "no", r->closed_error);
	zcv_client_destroy(r->c);
	r->c = NULL;
	drain(r);
	if (r->fd >= 0)
		close(r->fd);
	for (unsigned i = 0; i < r->n_kept; i++)
		close(r->kept[i]);
	if (!check)
		return;
	ret = (int)count_maps();
	FUZZ_CHECK(ret == 0, "%d mappings of the producer's memfds after destroy", ret);
	after = fuzz_settle_fds();
	FUZZ_CHECK(after == before, "fds leaked: %d before, %d after", before, after);
}

static void cleanup(void)
{
	if (listen_fd >= 0)
		close(listen_fd);
	unlink(sock_path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct seed warm = { .n = 0 };
	verbose = getenv("ZCV_FUZZ_VERBOSE") != NULL;
	for (unsigned i = 0; i < N_FORMATS; i++)
		if (zcv_format_layout(formats[i].fourcc, formats[i].width, formats[i].height, 1,
				      &layouts[i]) < 0)
			abort();
	strcpy(dir, "/tmp/zcv-fuzz-client-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(sock_path, sizeof(sock_path), "%s/p.sock", dir);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock_path);
	listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(listen_fd, 4) < 0)
		abort();
	atexit(cleanup);
	/* Warm-up: a pool, a frame, one with an fd attached, a refused pool, so
	 * whatever the library opens once per process (the closer thread)
	 * exists before the first count. */
	SEED_FIELDS(&warm, struct fc_config, .caps = FC_CAPS_DEFAULT);
	SEED_OP(&warm, FC_OP_POOL, struct fc_pool, .n_buffers = 0);
	SEED_MSG(&warm, FC_OP_FRAME, struct fc_frame, .policy = FC_POLICY_RELEASE);
	SEED_BYTES(&warm, FC_OP_FRAME);
	SEED_FIELDS(&warm, struct fc_frame, .policy = FC_POLICY_RELEASE);
	SEED_BYTES(&warm, FUZZ_MUT_FDS, 1, FUZZ_FD_PIPE);
	SEED_OP(&warm, FC_OP_POOL, struct fc_pool, .fd_kind = FUZZ_FD_UNSEALED);
	run_one(warm.b, warm.n, false);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run_one(data, size, true);
	return 0;
}
