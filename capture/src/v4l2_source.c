/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <libv4l2.h>
#include <linux/videodev2.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/udmabuf.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zcv/log.h>
#include <zcv/memory.h>
#include <zcv/v4l2.h>
#include "source_priv.h"

#define MAX_BUFS ZCV_POOL_MAX_BUFFERS

struct v4l2_source {
	struct zcv_source base;
	struct zcv_v4l2_source_config cfg;
	enum v4l2_buf_type type;
	bool mplane;
	unsigned n_mem_planes; /* V4L2 memory planes per buffer */
	unsigned n_bufs;
	uint32_t v4l2_fourcc;
	/* copy tier only: the driver's buffers as libv4l2 maps them */
	void *vmap[MAX_BUFS][ZCV_MAX_PLANES];
	size_t vlen[MAX_BUFS][ZCV_MAX_PLANES];
	bool copy_tier, streaming;
	bool via_libv4l2; /* the format is emulated: libv4l2 converts */
	char fallback[192];
	uint64_t last_seq, seq_offset;
	bool have_seq;
	uint32_t fps_num, fps_den;
	unsigned queued;             /* buffers the driver has to capture into */
	int qbuf_error;              /* a re-queue failed (device gone): reported by dispatch */
	uint64_t foreign_timestamps; /* frames whose driver time was not CLOCK_MONOTONIC-now-ish */
	/* allocation that fits (zcv_source_fit) */
	enum v4l2_memory memory;              /* MMAP, or DMABUF into our own buffers */
	int cap_fd[MAX_BUFS][ZCV_MAX_PLANES]; /* DMABUF: what the driver writes plane p into */
	uint32_t cap_len[MAX_BUFS][ZCV_MAX_PLANES];
	struct zcv_pool *old_pool; /* the pool before a refit; consumers never saw it lent */
};

static _Thread_local char errbuf[256];

static int xioctl(int fd, unsigned long req, void *arg)
{
	int r;

	do
		r = ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

/* Through libv4l2 (which converts emulated formats, and logs every failure
 * including EAGAIN) only when it converts; else straight to the kernel. */
static int sioctl(struct v4l2_source *s, unsigned long req, void *arg)
{
	int r;

	if (!s->via_libv4l2)
		return xioctl(s->base.fd, req, arg);
	do
		r = v4l2_ioctl(s->base.fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

/* Multi-planar-memory V4L2 formats and the colour format they carry. */
static const struct {
	uint32_t v4l2, zcv;
} mplane_variants[] = {
	{ V4L2_PIX_FMT_NV12M, ZCV_FMT_NV12 },
	{ V4L2_PIX_FMT_NV16M, ZCV_FMT_NV16 },
	{ V4L2_PIX_FMT_YUV420M, ZCV_FMT_YUV420 },
};

static uint32_t zcv_fourcc_of(uint32_t v4l2)
{
	for (size_t i = 0; i < ZCV_ARRAY_SIZE(mplane_variants); i++)
		if (mplane_variants[i].v4l2 == v4l2)
			return mplane_variants[i].zcv;
	return zcv_format_lookup(v4l2) ? v4l2 : 0;
}

static uint32_t v4l2_fourcc_of(uint32_t zcv, bool separate_planes)
{
	for (size_t i = 0; separate_planes && i < ZCV_ARRAY_SIZE(mplane_variants); i++)
		if (mplane_variants[i].zcv == zcv)
			return mplane_variants[i].v4l2;
	return zcv;
}

/*
 * zcv layout of the driver's format. separate: one memory object per
 * plane (offset 0 each); else planes packed in one object after each
 * other, chroma strides derived from the luma bytesperline as V4L2 does.
 */
static int layout_of(uint32_t fourcc, uint32_t w, uint32_t h, const uint32_t *bpl, unsigned n_mem,
		     bool separate, struct zcv_layout *ret)
{
	const struct zcv_format_info *fi = zcv_format_lookup(fourcc);
	struct zcv_layout l = { .fourcc = fourcc, .width = w, .height = h };
	uint64_t off = 0;

	if (!fi || (n_mem != 1 && n_mem != fi->n_planes))
		return -EINVAL;
	l.n_planes = fi->n_planes;
	for (unsigned p = 0; p < fi->n_planes; p++) {
		uint32_t stride =
			n_mem > 1 ? bpl[p] : bpl[0] * fi->cpp[p] / fi->hsub[p] / fi->cpp[0];
		uint64_t size = (uint64_t)stride * zcv_format_plane_lines(fi, p, h);

		if (size > UINT32_MAX || off > UINT32_MAX)
			return -EOVERFLOW;
		l.planes[p].stride = stride;
		l.planes[p].size = (uint32_t)size;
		l.planes[p].offset = separate ? 0 : (uint32_t)off;
		off += size;
	}
	l.size = off;
	*ret = l;
	return zcv_layout_validate(&l);
}

static bool native_format(int fd, enum v4l2_buf_type type, uint32_t pixfmt)
{
	struct v4l2_fmtdesc d = { .type = type };

	for (d.index = 0; xioctl(fd, VIDIOC_ENUM_FMT, &d) == 0; d.index++)
		if (d.pixelformat == pixfmt)
			return true;
	return false;
}

/*
 * libv4l2 is engaged only for a format the driver lacks and libv4l2 can
 * produce by converting; native formats go straight to the kernel (its
 * plugins can also refuse some drivers' multi-planar state outright).
 */
static bool needs_libv4l2(int fd, enum v4l2_buf_type type, uint32_t pixfmt)
{
	struct v4l2_fmtdesc d = { .type = type };

	if (native_format(fd, type, pixfmt) || v4l2_fd_open(fd, 0) < 0)
		return false;
	/* only libv4l2's enumeration marks the formats it emulates */
	for (d.index = 0; v4l2_ioctl(fd, VIDIOC_ENUM_FMT, &d) == 0; d.index++)
		if (d.pixelformat == pixfmt)
			return d.flags & V4L2_FMT_FLAG_EMULATED;
	return false;
}

static double timings_fps(const struct v4l2_bt_timings *bt)
{
	uint64_t total = (uint64_t)V4L2_DV_BT_FRAME_WIDTH(bt) * V4L2_DV_BT_FRAME_HEIGHT(bt);

	return total ? (double)bt->pixelclock / (double)total : 0;
}

static int set_dv_timings(struct v4l2_source *s, int fd)
{
	struct v4l2_enum_dv_timings e = { 0 };
	struct v4l2_dv_timings best = { 0 };
	unsigned w = 0, h = 0, f = 0;
	double best_score = -1;
	bool is_auto = !strcmp(s->cfg.dv_timings, "auto");
	char tail;
	int r;

	if (!is_auto && sscanf(s->cfg.dv_timings, "%ux%up%u%c", &w, &h, &f, &tail) != 3) {
		snprintf(errbuf, sizeof(errbuf),
			 "--dv-timings needs WxHpF (e.g. 1920x1080p60) or 'auto', not '%s'",
			 s->cfg.dv_timings);
		return -EINVAL;
	}
	for (e.index = 0; xioctl(fd, VIDIOC_ENUM_DV_TIMINGS, &e) == 0; e.index++) {
		const struct v4l2_bt_timings *bt = &e.timings.bt;
		double fps = timings_fps(bt), score;

		if (e.timings.type != V4L2_DV_BT_656_1120 || bt->interlaced)
			continue;
		if (is_auto)
			score = (double)bt->width * bt->height * 1000 + fps;
		else if (bt->width == w && bt->height == h && fps > f - 0.6 && fps < f + 0.6)
			score = 1000 - (fps > f ? fps - f : f - fps); /* 60 over 59.94 */
		else
			continue;
		if (score > best_score) {
			best_score = score;
			best = e.timings;
		}
	}
	if (best_score < 0) {
		snprintf(errbuf, sizeof(errbuf),
			 "%s lists no DV timings matching '%s' on this input (is it an HDMI-like "
			 "input? try --input)",
			 s->cfg.device, s->cfg.dv_timings);
		return -EINVAL;
	}
	r = xioctl(fd, VIDIOC_S_DV_TIMINGS, &best);
	if (r < 0) {
		snprintf(errbuf, sizeof(errbuf), "VIDIOC_S_DV_TIMINGS %ux%u failed: %s",
			 best.bt.width, best.bt.height, strerror(-r));
		return r;
	}
	/* frame rate as a fraction: pixel clock over frame size, reduced */
	{
		uint64_t num = best.bt.pixelclock,
			 den = (uint64_t)V4L2_DV_BT_FRAME_WIDTH(&best.bt) *
			       V4L2_DV_BT_FRAME_HEIGHT(&best.bt);
		uint64_t a = num, b = den;

		while (b) {
			uint64_t t = a % b;

			a = b;
			b = t;
		}
		if (a)
			num /= a, den /= a;
		while (num > UINT32_MAX || den > UINT32_MAX)
			num /= 2, den /= 2;
		s->fps_num = (uint32_t)num;
		s->fps_den = (uint32_t)den;
	}
	if (!s->cfg.width) {
		s->cfg.width = best.bt.width;
		s->cfg.height = best.bt.height;
	}
	return 0;
}

static int queue(struct v4l2_source *s, unsigned idx)
{
	struct v4l2_plane planes[VIDEO_MAX_PLANES] = { 0 };
	struct v4l2_buffer b = { .type = s->type, .memory = s->memory, .index = idx };
	int r;

	if (s->mplane) {
		b.m.planes = planes;
		b.length = s->n_mem_planes;
	}
	if (s->memory == V4L2_MEMORY_DMABUF) {
		for (unsigned p = 0; p < s->n_mem_planes && s->mplane; p++) {
			planes[p].m.fd = s->cap_fd[idx][p];
			planes[p].length = s->cap_len[idx][p];
		}
		if (!s->mplane) {
			b.m.fd = s->cap_fd[idx][0];
			b.length = s->cap_len[idx][0];
		}
	}
	r = sioctl(s, VIDIOC_QBUF, &b);
	if (r == 0)
		s->queued++;
	return r;
}

static void on_free(void *data, struct zcv_pool *pool, struct zcv_buffer *buf)
{
	struct v4l2_source *s = data;
	int r;

	/* zero-copy: every consumer is done, the driver may fill it again --
	 * unless the last frame is out: then nothing more is captured, and a
	 * buffer a consumer looks at after releasing it keeps its frame */
	if (s->copy_tier || !s->streaming || (s->cfg.frames && s->base.frames >= s->cfg.frames))
		return;
	buf->state = ZCV_BUFFER_PRODUCER;
	r = queue(s, buf->index);
	if (r < 0 && !s->qbuf_error)
		s->qbuf_error = r;
}

static int v4l2_start(struct zcv_source *src)
{
	struct v4l2_source *s = (struct v4l2_source *)src;
	int type = s->type, r;

	for (unsigned i = 0; i < s->n_bufs; i++) {
		r = queue(s, i);
		if (r < 0)
			return r;
		if (!s->copy_tier)
			src->pool->buffers[i].state = ZCV_BUFFER_PRODUCER;
	}
	r = sioctl(s, VIDIOC_STREAMON, &type);
	if (r == 0)
		s->streaming = true;
	return r;
}

/* The driver's capture time when it is on our clock; some drivers (vivid
 * under emulation among them) stamp times that are not, which would make
 * every latency figure meaningless: then the dequeue time stands in. */
static uint64_t timestamp_ns(struct v4l2_source *s, const struct v4l2_buffer *b)
{
	uint64_t now = zcv_now_ns();
	uint64_t ts = (uint64_t)b->timestamp.tv_sec * 1000000000ull +
		      (uint64_t)b->timestamp.tv_usec * 1000ull;

	if ((b->flags & V4L2_BUF_FLAG_TIMESTAMP_MASK) != V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC ||
	    ts > now || now - ts > 5000000000ull) {
		s->foreign_timestamps++;
		return now;
	}
	return ts;
}

/* Copy tier: the driver's frame into a free memfd buffer, counted. */
static struct zcv_buffer *copy_frame(struct v4l2_source *s, const struct v4l2_buffer *b,
				     const struct v4l2_plane *planes)
{
	struct zcv_pool *pool = s->base.pool;
	struct zcv_buffer *dst = zcv_pool_acquire(pool);
	uint8_t *d;
	uint64_t off = 0;

	if (!dst)
		return NULL;
	d = dst->map[0];
	for (unsigned p = 0; p < s->n_mem_planes; p++) {
		size_t n = s->mplane ? planes[p].bytesused - planes[p].data_offset : b->bytesused;
		const uint8_t *src = (const uint8_t *)s->vmap[b->index][p] +
				     (s->mplane ? planes[p].data_offset : 0);

		/* packed planes in the memfd; the layout's offsets say where */
		if (s->n_mem_planes > 1)
			off = pool->layout.planes[p].offset;
		if (n > pool->layout.size - off)
			n = pool->layout.size - off;
		zcv_frame_copy(d + off, src, n);
	}
	return dst;
}

static int v4l2_dispatch(struct zcv_source *src)
{
	struct v4l2_source *s = (struct v4l2_source *)src;

	if (s->qbuf_error)
		return s->qbuf_error;
	for (;;) {
		struct v4l2_plane planes[VIDEO_MAX_PLANES] = { 0 };
		struct v4l2_buffer b = { .type = s->type, .memory = s->memory };
		struct zcv_frame_meta meta = { 0 };
		struct zcv_buffer *buf;
		uint64_t seq;
		int r;

		if (s->cfg.frames && src->frames >= s->cfg.frames)
			return 1;
		if (s->mplane) {
			b.m.planes = planes;
			b.length = s->n_mem_planes;
		}
		r = sioctl(s, VIDIOC_DQBUF, &b);
		if (r == -EAGAIN)
			return 0;
		if (r < 0)
			return r == -EPIPE || r == -EIO ? -ENODEV : r;
		if (b.index >= s->n_bufs)
			return -EIO;
		/* the driver now has nothing to capture into until a consumer
		 * gives a buffer back (the copy tier re-queues at once below) */
		if (s->queued && --s->queued == 0 && !s->copy_tier)
			src->starved++;

		/* Consumers get strictly increasing sequences; a driver that
		 * restarts its count (vivid does after a timings change) is
		 * continued from where it was. */
		seq = b.sequence + s->seq_offset;
		if (s->have_seq && seq <= s->last_seq) {
			s->seq_offset += s->last_seq + 1 - seq;
			seq = s->last_seq + 1;
		}
		if (s->have_seq && seq > s->last_seq + 1)
			src->dropped += seq - s->last_seq - 1;
		s->have_seq = true;
		s->last_seq = seq;
		meta.sequence = seq;
		meta.timestamp_ns = timestamp_ns(s, &b);
		if (b.flags & V4L2_BUF_FLAG_ERROR)
			meta.flags |= ZCV_FRAME_FLAG_ERROR;
		if (s->cfg.frames && src->frames + 1 == s->cfg.frames)
			meta.flags |= ZCV_FRAME_FLAG_LAST;

		if (s->copy_tier) {
			buf = copy_frame(s, &b, planes);
			/* the driver's buffer goes straight back: only the copy is lent */
			r = queue(s, b.index);
			if (r < 0)
				return r;
			if (!buf) {
				src->dropped++; /* every copy is still held by consumers */
				continue;
			}
			for (unsigned p = 0; p < src->pool->layout.n_planes; p++)
				meta.bytesused[p] = src->pool->layout.planes[p].size;
		} else {
			buf = &src->pool->buffers[b.index];
			for (unsigned p = 0; p < src->pool->layout.n_planes; p++)
				meta.bytesused[p] = s->n_mem_planes > 1 ?
							    planes[p].bytesused :
							    src->pool->layout.planes[p].size;
		}
		src->frames++;
		src->cbs.frame(src->data, buf, &meta);
		if (s->qbuf_error)
			return s->qbuf_error;
	}
}

static void v4l2_destroy(struct zcv_source *src)
{
	struct v4l2_source *s = (struct v4l2_source *)src;

	if (s->streaming) {
		int type = s->type;

		s->streaming = false;
		sioctl(s, VIDIOC_STREAMOFF, &type);
	}
	for (unsigned i = 0; i < MAX_BUFS; i++)
		for (unsigned p = 0; p < ZCV_MAX_PLANES; p++)
			if (s->vmap[i][p])
				v4l2_munmap(s->vmap[i][p], s->vlen[i][p]);
	zcv_pool_destroy(src->pool);
	zcv_pool_destroy(s->old_pool);
	if (s->memory == V4L2_MEMORY_DMABUF)
		for (unsigned i = 0; i < MAX_BUFS; i++)
			for (unsigned p = 0; p < ZCV_MAX_PLANES; p++)
				if (s->cap_fd[i][p] > 0)
					close(s->cap_fd[i][p]);
	if (src->fd >= 0)
		v4l2_close(src->fd);
	free(s);
}

static void v4l2_release_device(struct zcv_source *src)
{
	struct v4l2_source *s = (struct v4l2_source *)src;

	/* no STREAMOFF: the device is gone; closing is what frees its node */
	s->streaming = false;
	for (unsigned i = 0; i < MAX_BUFS; i++)
		for (unsigned p = 0; p < ZCV_MAX_PLANES; p++)
			if (s->vmap[i][p]) {
				v4l2_munmap(s->vmap[i][p], s->vlen[i][p]);
				s->vmap[i][p] = NULL;
			}
	if (s->memory == V4L2_MEMORY_DMABUF)
		for (unsigned i = 0; i < MAX_BUFS; i++)
			for (unsigned p = 0; p < ZCV_MAX_PLANES; p++)
				if (s->cap_fd[i][p] > 0) {
					close(s->cap_fd[i][p]);
					s->cap_fd[i][p] = -1;
				}
	if (src->fd >= 0)
		v4l2_close(src->fd);
	src->fd = -1;
}

static const char *v4l2_path(struct zcv_source *src)
{
	return ((struct v4l2_source *)src)->copy_tier ? "copy" : "dmabuf";
}

static int v4l2_fit(struct zcv_source *src, const struct zcv_constraints *fit, unsigned n_buffers,
		    char *how, size_t how_size);

static const struct zcv_source_ops v4l2_ops = {
	.destroy = v4l2_destroy,
	.start = v4l2_start,
	.dispatch = v4l2_dispatch,
	.path = v4l2_path,
	.fit = v4l2_fit,
	.release_device = v4l2_release_device,
};

/* Opens with open(2) and checks it is V4L2 (VIDIOC_QUERYCAP) before
 * libv4l2 sees the fd, which would otherwise print its own errors. */
static int open_v4l2(const char *path, struct v4l2_capability *cap)
{
	int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, VIDIOC_QUERYCAP, cap) < 0) {
		close(fd);
		return -ENOTTY;
	}
	return fd;
}

static int open_device(struct v4l2_source *s)
{
	struct v4l2_capability cap = { 0 };
	uint32_t caps;
	int fd = open_v4l2(s->cfg.device, &cap);

	if (fd == -ENOTTY) {
		snprintf(errbuf, sizeof(errbuf), "%s is not a V4L2 device", s->cfg.device);
		return fd;
	}
	if (fd < 0) {
		snprintf(errbuf, sizeof(errbuf), "cannot open %s: %s", s->cfg.device,
			 strerror(-fd));
		return fd;
	}
	s->base.fd = fd;
	caps = cap.capabilities & V4L2_CAP_DEVICE_CAPS ? cap.device_caps : cap.capabilities;
	if (!(caps & V4L2_CAP_STREAMING) ||
	    !(caps & (V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_CAPTURE_MPLANE))) {
		snprintf(errbuf, sizeof(errbuf),
			 "%s (%s, driver %s) is not a video capture device with streaming I/O",
			 s->cfg.device, cap.card, cap.driver);
		return -ENODEV;
	}
	s->mplane = !(caps & V4L2_CAP_VIDEO_CAPTURE);
	s->type = s->mplane ? V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE : V4L2_BUF_TYPE_VIDEO_CAPTURE;
	return 0;
}

static int set_format(struct v4l2_source *s, struct v4l2_format *f)
{
	uint32_t want_v4l2;
	int r;

	f->type = s->type;
	r = sioctl(s, VIDIOC_G_FMT, f);
	if (r < 0)
		return r;
	want_v4l2 = s->cfg.fourcc ?
			    v4l2_fourcc_of(s->cfg.fourcc, s->cfg.multiplanar_planes && s->mplane) :
			    (s->mplane ? f->fmt.pix_mp.pixelformat : f->fmt.pix.pixelformat);
	if (s->mplane) {
		if (s->cfg.width) {
			f->fmt.pix_mp.width = s->cfg.width;
			f->fmt.pix_mp.height = s->cfg.height;
		}
		f->fmt.pix_mp.pixelformat = want_v4l2;
		f->fmt.pix_mp.field = V4L2_FIELD_NONE;
		/* the previous format's line length would otherwise stay (vivid
		 * keeps a larger bytesperline): ask for the driver's natural one */
		for (unsigned p = 0; p < VIDEO_MAX_PLANES; p++) {
			f->fmt.pix_mp.plane_fmt[p].bytesperline = 0;
			f->fmt.pix_mp.plane_fmt[p].sizeimage = 0;
		}
	} else {
		if (s->cfg.width) {
			f->fmt.pix.width = s->cfg.width;
			f->fmt.pix.height = s->cfg.height;
		}
		f->fmt.pix.pixelformat = want_v4l2;
		f->fmt.pix.field = V4L2_FIELD_NONE;
		f->fmt.pix.bytesperline = 0;
	}
	r = sioctl(s, VIDIOC_S_FMT, f);
	if (r < 0) {
		snprintf(errbuf, sizeof(errbuf), "VIDIOC_S_FMT failed on %s: %s", s->cfg.device,
			 strerror(-r));
		return r == -EBUSY ? r : -EINVAL;
	}
	{
		uint32_t gw = s->mplane ? f->fmt.pix_mp.width : f->fmt.pix.width;
		uint32_t gh = s->mplane ? f->fmt.pix_mp.height : f->fmt.pix.height;
		uint32_t gf = s->mplane ? f->fmt.pix_mp.pixelformat : f->fmt.pix.pixelformat;
		char a[5], b[5];

		/* drivers adjust what they cannot do: treat that as unsupported */
		if (gf != want_v4l2 ||
		    (s->cfg.width && (gw != s->cfg.width || gh != s->cfg.height))) {
			snprintf(errbuf, sizeof(errbuf),
				 "%s cannot capture %ux%u %s; it offered %ux%u %s (see zcv-capture "
				 "--list)",
				 s->cfg.device, s->cfg.width ? s->cfg.width : gw,
				 s->cfg.width ? s->cfg.height : gh, zcv_fourcc_str(want_v4l2, a),
				 gw, gh, zcv_fourcc_str(gf, b));
			return -EINVAL;
		}
		if (!zcv_fourcc_of(gf)) {
			snprintf(errbuf, sizeof(errbuf),
				 "%s captures %s, a format zcv does not carry; pick one with "
				 "--format",
				 s->cfg.device, zcv_fourcc_str(gf, a));
			return -EINVAL;
		}
		s->v4l2_fourcc = gf;
		s->n_mem_planes = s->mplane ? f->fmt.pix_mp.num_planes : 1;
	}
	return 0;
}

static int set_rate(struct v4l2_source *s)
{
	struct v4l2_streamparm p = { .type = s->type };
	int r;

	if (s->cfg.fps_num && !s->cfg.dv_timings) {
		p.parm.capture.timeperframe.numerator = s->cfg.fps_den;
		p.parm.capture.timeperframe.denominator = s->cfg.fps_num;
		r = sioctl(s, VIDIOC_S_PARM, &p);
		if (r < 0 || !p.parm.capture.timeperframe.numerator ||
		    p.parm.capture.timeperframe.denominator * (uint64_t)s->cfg.fps_den !=
			    (uint64_t)s->cfg.fps_num * p.parm.capture.timeperframe.numerator) {
			snprintf(errbuf, sizeof(errbuf),
				 "%s cannot capture at %u/%u fps at this size%s%s", s->cfg.device,
				 s->cfg.fps_num, s->cfg.fps_den, r < 0 ? ": " : "",
				 r < 0 ? strerror(-r) : " (HDMI-like inputs take --dv-timings)");
			return -EINVAL;
		}
	}
	if (s->fps_num) { /* from DV timings: a different --fps cannot be had */
		double want = s->cfg.fps_den ? (double)s->cfg.fps_num / s->cfg.fps_den : 0;
		double have = (double)s->fps_num / s->fps_den;

		if (s->cfg.fps_num && (want < have * 0.995 || want > have * 1.005)) {
			snprintf(errbuf, sizeof(errbuf),
				 "%s cannot capture at %u/%u fps: the DV timings fix the rate at "
				 "%.2f fps",
				 s->cfg.device, s->cfg.fps_num, s->cfg.fps_den, have);
			return -EINVAL;
		}
		return 0;
	}
	memset(&p, 0, sizeof(p));
	p.type = s->type;
	if (sioctl(s, VIDIOC_G_PARM, &p) == 0 && p.parm.capture.timeperframe.numerator) {
		s->fps_num = p.parm.capture.timeperframe.denominator;
		s->fps_den = p.parm.capture.timeperframe.numerator;
	} else {
		s->fps_num = 0;
		s->fps_den = 1;
	}
	return 0;
}

/* Export every plane of every buffer; on failure say why and return it. */
static int export_all(struct v4l2_source *s, const struct zcv_layout *layout, uint32_t generation)
{
	int r = zcv_pool_create_empty(layout, s->n_bufs, generation, ZCV_MEMORY_DMABUF,
				      &s->base.pool);

	if (r < 0)
		return r;
	for (unsigned i = 0; i < s->n_bufs; i++) {
		int fds[ZCV_MAX_PLANES] = { -1, -1, -1, -1 };
		uint8_t plane_fd[ZCV_MAX_PLANES] = { 0 };

		for (unsigned p = 0; p < s->n_mem_planes; p++) {
			struct v4l2_exportbuffer e = { .type = s->type,
						       .index = i,
						       .plane = p,
						       .flags = O_RDONLY | O_CLOEXEC };

			r = sioctl(s, VIDIOC_EXPBUF, &e);
			if (r < 0) {
				for (unsigned q = 0; q < p; q++)
					close(fds[q]);
				snprintf(s->fallback, sizeof(s->fallback),
					 "the driver cannot export its buffers as DMA-BUF "
					 "(VIDIOC_EXPBUF: %s)",
					 strerror(-r));
				zcv_pool_destroy(s->base.pool);
				s->base.pool = NULL;
				return r;
			}
			fds[p] = e.fd;
		}
		for (unsigned p = 0; p < layout->n_planes; p++)
			plane_fd[p] = s->n_mem_planes > 1 ? (uint8_t)p : 0;
		r = zcv_pool_set_fds(s->base.pool, i, s->n_mem_planes, fds, plane_fd);
		if (r < 0) {
			snprintf(s->fallback, sizeof(s->fallback),
				 "the exported buffers are smaller than the format needs");
			zcv_pool_destroy(s->base.pool);
			s->base.pool = NULL;
			return r;
		}
	}
	return 0;
}

static int map_all(struct v4l2_source *s)
{
	for (unsigned i = 0; i < s->n_bufs; i++) {
		struct v4l2_plane planes[VIDEO_MAX_PLANES] = { 0 };
		struct v4l2_buffer b = { .type = s->type, .memory = V4L2_MEMORY_MMAP, .index = i };
		int r;

		if (s->mplane) {
			b.m.planes = planes;
			b.length = s->n_mem_planes;
		}
		r = sioctl(s, VIDIOC_QUERYBUF, &b);
		if (r < 0)
			return r;
		for (unsigned p = 0; p < s->n_mem_planes; p++) {
			size_t len = s->mplane ? planes[p].length : b.length;
			off_t off = s->mplane ? planes[p].m.mem_offset : b.m.offset;
			void *m = v4l2_mmap(NULL, len, PROT_READ, MAP_SHARED, s->base.fd, off);

			if (m == MAP_FAILED)
				return -errno;
			s->vmap[i][p] = m;
			s->vlen[i][p] = len;
		}
	}
	return 0;
}

int zcv_v4l2_source_create(const struct zcv_v4l2_source_config *cfg,
			   const struct zcv_source_callbacks *cbs, void *data,
			   struct zcv_source **ret_source, const char **ret_error)
{
	struct v4l2_source *s = calloc(1, sizeof(*s));
	struct v4l2_requestbuffers req = { 0 };
	struct v4l2_format f = { 0 };
	struct zcv_layout layout;
	uint32_t bpl[ZCV_MAX_PLANES] = { 0 }, w, h;
	int r;

	errbuf[0] = '\0';
	if (!s)
		return -ENOMEM;
	s->base.ops = &v4l2_ops;
	s->base.cbs = *cbs;
	s->base.data = data;
	s->base.fd = -1;
	s->cfg = *cfg;
	if (cfg->first_sequence) {
		/* the first frame continues the stream of the source it replaces
		 * (dequeue shifts the driver's count to follow last_seq) */
		s->have_seq = true;
		s->last_seq = cfg->first_sequence - 1;
	}
	s->memory = V4L2_MEMORY_MMAP;
	r = open_device(s);
	if (r < 0)
		goto fail;
	if (cfg->input >= 0) {
		int in = cfg->input;

		r = sioctl(s, VIDIOC_S_INPUT, &in);
		if (r < 0) {
			snprintf(errbuf, sizeof(errbuf), "%s has no input %d (%s)", cfg->device, in,
				 strerror(-r));
			r = r == -EBUSY ? r : -EINVAL;
			goto fail;
		}
	}
	if (cfg->dv_timings && (r = set_dv_timings(s, s->base.fd)) < 0)
		goto fail;
	if (cfg->fourcc)
		s->via_libv4l2 = needs_libv4l2(
			s->base.fd, s->type,
			v4l2_fourcc_of(cfg->fourcc, cfg->multiplanar_planes && s->mplane));
	if ((r = set_format(s, &f)) < 0 || (r = set_rate(s)) < 0)
		goto fail;

	w = s->mplane ? f.fmt.pix_mp.width : f.fmt.pix.width;
	h = s->mplane ? f.fmt.pix_mp.height : f.fmt.pix.height;
	for (unsigned p = 0; p < s->n_mem_planes && p < ZCV_MAX_PLANES; p++)
		bpl[p] =
			s->mplane ? f.fmt.pix_mp.plane_fmt[p].bytesperline : f.fmt.pix.bytesperline;

	req.count = cfg->n_buffers ? cfg->n_buffers : 6;
	req.type = s->type;
	req.memory = V4L2_MEMORY_MMAP;
	r = sioctl(s, VIDIOC_REQBUFS, &req);
	if (r < 0 || req.count == 0) {
		snprintf(errbuf, sizeof(errbuf), "VIDIOC_REQBUFS on %s: %s", cfg->device,
			 r < 0 ? strerror(-r) : "no buffers");
		r = r < 0 ? r : -ENOMEM;
		goto fail;
	}
	s->n_bufs = req.count > MAX_BUFS ? MAX_BUFS : req.count;

	if (s->via_libv4l2) {
		char a[5];

		snprintf(
			s->fallback, sizeof(s->fallback),
			"%s is not native to the driver: libv4l2 converts it, so frames are copied",
			zcv_fourcc_str(s->v4l2_fourcc, a));
	} else if (cfg->force_copy) {
		snprintf(s->fallback, sizeof(s->fallback), "the copy tier was forced");
	} else {
		r = layout_of(zcv_fourcc_of(s->v4l2_fourcc), w, h, bpl, s->n_mem_planes,
			      s->n_mem_planes > 1, &layout);
		if (r < 0) {
			snprintf(errbuf, sizeof(errbuf), "unexpected plane layout from the driver");
			goto fail;
		}
		export_all(s, &layout, cfg->generation ? cfg->generation : 1);
	}
	if (!s->base.pool) {
		/* copy tier: a packed memfd pool the driver's frames are copied into */
		if (cfg->require_zero_copy) {
			snprintf(errbuf, sizeof(errbuf), "zero copy is impossible: %s",
				 s->fallback);
			r = -EOPNOTSUPP;
			goto fail;
		}
		s->copy_tier = true;
		r = layout_of(zcv_fourcc_of(s->v4l2_fourcc), w, h, bpl, s->n_mem_planes, false,
			      &layout);
		if (r == 0)
			r = zcv_pool_create_memfd(&layout, cfg->n_buffers ? cfg->n_buffers : 6,
						  cfg->generation ? cfg->generation : 1,
						  &s->base.pool);
		for (unsigned i = 0; r == 0 && i < s->base.pool->n_buffers; i++)
			r = zcv_pool_map(s->base.pool, i, PROT_READ | PROT_WRITE);
		if (r == 0)
			r = map_all(s);
		if (r < 0) {
			snprintf(errbuf, sizeof(errbuf), "setting up the copy tier failed: %s",
				 strerror(-r));
			goto fail;
		}
	}
	s->base.pool->on_free = on_free;
	s->base.pool->on_free_data = s;
	*ret_source = &s->base;
	return 0;
fail:
	if (ret_error)
		*ret_error = errbuf[0] ? errbuf : strerror(-r);
	v4l2_destroy(&s->base);
	return r;
}

uint64_t zcv_v4l2_source_foreign_timestamps(struct zcv_source *src)
{
	return ((struct v4l2_source *)src)->foreign_timestamps;
}

const char *zcv_v4l2_source_fallback_reason(struct zcv_source *src)
{
	struct v4l2_source *s = (struct v4l2_source *)src;

	return s->copy_tier ? s->fallback : NULL;
}

void zcv_v4l2_source_fps(struct zcv_source *src, uint32_t *ret_num, uint32_t *ret_den)
{
	struct v4l2_source *s = (struct v4l2_source *)src;

	*ret_num = s->fps_num;
	*ret_den = s->fps_den ? s->fps_den : 1;
}

static void list_device(FILE *out, const char *path)
{
	struct v4l2_capability cap = { 0 };
	struct v4l2_requestbuffers req = { 0 };
	struct v4l2_exportbuffer e = { 0 };
	struct v4l2_fmtdesc d = { 0 };
	struct v4l2_input in = { 0 };
	enum v4l2_buf_type type;
	const char *exports;
	uint32_t caps;
	int fd = open_v4l2(path, &cap);

	if (fd < 0) {
		fprintf(out, "%s: cannot open: %s\n", path, strerror(-fd));
		return;
	}
	caps = cap.capabilities & V4L2_CAP_DEVICE_CAPS ? cap.device_caps : cap.capabilities;
	if (!(caps & (V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_CAPTURE_MPLANE)))
		goto out;
	type = caps & V4L2_CAP_VIDEO_CAPTURE ? V4L2_BUF_TYPE_VIDEO_CAPTURE :
					       V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
	/*
	 * libv4l2 marks the formats it emulates, on the single-planar API
	 * only. On a multi-planar device its mplane plugin would stand in
	 * between, presenting the device as single-planar and refusing the
	 * _MPLANE type: VIDIOC_ENUM_FMT would list nothing. So a
	 * multi-planar device is listed as the kernel sees it, and so is a
	 * single-planar one libv4l2 will not take (v4l2_ioctl passes an fd
	 * it does not manage straight to the kernel).
	 */
	if (type == V4L2_BUF_TYPE_VIDEO_CAPTURE && v4l2_fd_open(fd, 0) < 0)
		zcv_debug("v4l2: libv4l2 refused %s: listing what the kernel says", path);
	/* one MMAP buffer and an export attempt tell whether zero copy works */
	req.count = 1;
	req.type = type;
	req.memory = V4L2_MEMORY_MMAP;
	e.type = type;
	e.flags = O_RDONLY | O_CLOEXEC;
	if (xioctl(fd, VIDIOC_REQBUFS, &req) < 0)
		exports = "unknown (device busy)";
	else if (xioctl(fd, VIDIOC_EXPBUF, &e) < 0)
		exports = "no";
	else
		exports = "yes";
	if (e.fd > 0)
		close(e.fd);
	req.count = 0;
	xioctl(fd, VIDIOC_REQBUFS, &req);

	fprintf(out, "%s: %s (driver %s, %s API), DMA-BUF export: %s\n", path, cap.card, cap.driver,
		type == V4L2_BUF_TYPE_VIDEO_CAPTURE ? "single-planar" : "multi-planar", exports);
	for (in.index = 0; xioctl(fd, VIDIOC_ENUMINPUT, &in) == 0; in.index++)
		fprintf(out, "  input %u: %s%s\n", in.index, in.name,
			in.capabilities & V4L2_IN_CAP_DV_TIMINGS ? " (DV timings: --dv-timings)" :
								   "");
	d.type = type;
	for (d.index = 0; v4l2_ioctl(fd, VIDIOC_ENUM_FMT, &d) == 0; d.index++) {
		struct v4l2_frmsizeenum fs = { .pixel_format = d.pixelformat };
		char a[5];

		fprintf(out, "  %s %-28s%s%s", zcv_fourcc_str(d.pixelformat, a),
			(char *)d.description,
			zcv_fourcc_of(d.pixelformat) ? "" : " [not carried by zcv]",
			d.flags & V4L2_FMT_FLAG_EMULATED ? " [emulated by libv4l2: copy tier]" :
							   "");
		for (fs.index = 0; xioctl(fd, VIDIOC_ENUM_FRAMESIZES, &fs) == 0 && fs.index < 12;
		     fs.index++) {
			if (fs.type == V4L2_FRMSIZE_TYPE_DISCRETE)
				fprintf(out, " %ux%u", fs.discrete.width, fs.discrete.height);
			else
				fprintf(out, " %ux%u..%ux%u", fs.stepwise.min_width,
					fs.stepwise.min_height, fs.stepwise.max_width,
					fs.stepwise.max_height);
		}
		fprintf(out, "\n");
	}
out:
	v4l2_close(fd);
}

static int video_filter(const struct dirent *e)
{
	return !strncmp(e->d_name, "video", 5);
}

int zcv_v4l2_list(FILE *out)
{
	struct dirent **names;
	int n = scandir("/dev", &names, video_filter, versionsort), found = 0;

	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		char path[300];

		snprintf(path, sizeof(path), "/dev/%s", names[i]->d_name);
		list_device(out, path);
		found++;
		free(names[i]);
	}
	free(names);
	if (!found)
		fprintf(out, "no V4L2 devices (/dev/video*) on this machine\n");
	return found;
}

/* ---------------------------------------------------------------- allocation that fits */

static uint64_t page_up(uint64_t v)
{
	uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);

	return (v + pg - 1) / pg * pg;
}

static void retire_pool(struct v4l2_source *s)
{
	zcv_pool_destroy(s->old_pool);
	s->old_pool = s->base.pool;
	s->base.pool = NULL;
}

/* Same layout, bigger driver buffers or more of them: CREATE_BUFS with
 * the sizes asked and s->n_bufs buffers. */
static int fit_create_bufs(struct v4l2_source *s, const struct zcv_constraints *fit, char *how,
			   size_t how_size)
{
	struct zcv_layout layout = s->base.pool->layout;
	uint32_t gen = s->base.pool->generation + 1;
	struct v4l2_requestbuffers req = { .type = s->type, .memory = V4L2_MEMORY_MMAP };
	struct v4l2_create_buffers cb = { .count = s->n_bufs, .memory = V4L2_MEMORY_MMAP };
	uint64_t sizes[ZCV_MAX_PLANES] = { 0 };
	bool larger = false;
	int r;

	/* per memory plane: the end of the furthest colour plane in it */
	for (unsigned p = 0; p < layout.n_planes; p++) {
		unsigned m = s->n_mem_planes > 1 ? p : 0;
		uint64_t end =
			layout.planes[p].offset + zcv_constraints_plane_need(fit, &layout, p);

		if (end > sizes[m])
			sizes[m] = end;
	}
	cb.format.type = s->type;
	r = sioctl(s, VIDIOC_G_FMT, &cb.format);
	if (r < 0)
		return r;
	for (unsigned m = 0; m < s->n_mem_planes; m++) {
		uint32_t have = s->mplane ? cb.format.fmt.pix_mp.plane_fmt[m].sizeimage :
					    cb.format.fmt.pix.sizeimage;

		if (have < sizes[m]) {
			larger = true;
			if (s->mplane)
				cb.format.fmt.pix_mp.plane_fmt[m].sizeimage = (uint32_t)sizes[m];
			else
				cb.format.fmt.pix.sizeimage = (uint32_t)sizes[m];
		} else {
			sizes[m] = have;
		}
	}
	retire_pool(s);
	r = sioctl(s, VIDIOC_REQBUFS, &req);
	if (r == 0)
		r = sioctl(s, VIDIOC_CREATE_BUFS, &cb);
	if (r == 0 && cb.count >= 2 && cb.count < s->n_bufs)
		s->n_bufs = cb.count; /* the driver's limit: the budget says what is left */
	if (r < 0 || cb.count < s->n_bufs) {
		snprintf(how, how_size, "VIDIOC_CREATE_BUFS failed: %s",
			 r < 0 ? strerror(-r) : "fewer buffers");
		return r < 0 ? r : -ENOMEM;
	}
	r = export_all(s, &layout, gen);
	if (r < 0) {
		snprintf(how, how_size, "exporting the larger buffers failed: %s", s->fallback);
		return r;
	}
	snprintf(how, how_size,
		 "VIDIOC_CREATE_BUFS: %u driver buffers of %llu bytes%s%s, exported as DMA-BUF",
		 s->n_bufs, (unsigned long long)sizes[0], s->n_mem_planes > 1 ? " (plane 0)" : "",
		 larger ? " (larger than the format needs)" : "");
	return 1;
}

/* Planes further apart than the driver puts them: the driver's one
 * buffer per plane variant, captured into udmabuf slices of one memfd
 * laid out as asked; consumers get the whole memfd as one DMA-BUF. */
static int fit_udmabuf(struct v4l2_source *s, const struct zcv_constraints *fit, char *how,
		       size_t how_size)
{
	const struct zcv_layout *old = &s->base.pool->layout;
	const struct zcv_format_info *fi = zcv_format_lookup(old->fourcc);
	uint32_t gen = s->base.pool->generation + 1, variant = v4l2_fourcc_of(old->fourcc, true);
	struct v4l2_requestbuffers req = { .type = s->type, .memory = V4L2_MEMORY_MMAP };
	struct v4l2_format f = { .type = s->type };
	struct zcv_layout l;
	struct zcv_pool *pool = NULL;
	uint64_t total;
	char a[5];
	int ufd = -1, r;

	if (!s->mplane || variant == old->fourcc) {
		snprintf(how, how_size,
			 "%s: the driver (%s API) writes %s planes back to back; no "
			 "one-buffer-per-plane variant to place them",
			 "cannot place the planes", s->mplane ? "multi-planar" : "single-planar",
			 fi->name);
		return -EOPNOTSUPP;
	}
	r = zcv_constraints_layout(fit, old, &l);
	if (r < 0) {
		snprintf(how, how_size, "no layout of %s %ux%u meets the consumers' needs",
			 fi->name, old->width, old->height);
		return -EOPNOTSUPP;
	}
	for (unsigned p = 0; p < l.n_planes; p++)
		if (l.planes[p].offset % (uint64_t)sysconf(_SC_PAGESIZE)) {
			snprintf(how, how_size,
				 "cannot place plane %u at offset %u: udmabuf slices start on "
				 "page boundaries",
				 p, l.planes[p].offset);
			return -EOPNOTSUPP;
		}
	total = page_up(l.size);
	ufd = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
	if (ufd < 0) {
		r = -errno;
		snprintf(how, how_size,
			 "cannot open /dev/udmabuf (%s) to build buffers with the planes apart",
			 strerror(-r));
		return r == -ENOENT ? -EOPNOTSUPP : r;
	}
	/* from here on the old MMAP buffers go */
	retire_pool(s);
	r = sioctl(s, VIDIOC_REQBUFS, &req);
	if (r == 0) {
		r = sioctl(s, VIDIOC_G_FMT, &f);
		f.fmt.pix_mp.pixelformat = variant;
		f.fmt.pix_mp.width = old->width;
		f.fmt.pix_mp.height = old->height;
		f.fmt.pix_mp.num_planes = (uint8_t)l.n_planes;
		for (unsigned p = 0; p < l.n_planes; p++) {
			f.fmt.pix_mp.plane_fmt[p].bytesperline = l.planes[p].stride;
			f.fmt.pix_mp.plane_fmt[p].sizeimage = 0;
		}
		if (r == 0)
			r = sioctl(s, VIDIOC_S_FMT, &f);
	}
	if (r < 0 || f.fmt.pix_mp.pixelformat != variant || f.fmt.pix_mp.num_planes != l.n_planes ||
	    f.fmt.pix_mp.width != old->width || f.fmt.pix_mp.height != old->height) {
		snprintf(how, how_size, "the driver does not capture %s %ux%u%s%s",
			 zcv_fourcc_str(variant, a), old->width, old->height, r < 0 ? ": " : "",
			 r < 0 ? strerror(-r) : "");
		r = r < 0 ? r : -EOPNOTSUPP;
		goto fail;
	}
	for (unsigned p = 0; p < l.n_planes; p++) {
		if (f.fmt.pix_mp.plane_fmt[p].bytesperline != l.planes[p].stride ||
		    f.fmt.pix_mp.plane_fmt[p].sizeimage > page_up(l.planes[p].size)) {
			snprintf(how, how_size,
				 "%s plane %u has stride %u and %u bytes; the layout has %u and %u",
				 zcv_fourcc_str(variant, a), p,
				 f.fmt.pix_mp.plane_fmt[p].bytesperline,
				 f.fmt.pix_mp.plane_fmt[p].sizeimage, l.planes[p].stride,
				 l.planes[p].size);
			r = -EOPNOTSUPP;
			goto fail;
		}
	}
	s->v4l2_fourcc = variant;
	s->n_mem_planes = l.n_planes;
	req.memory = V4L2_MEMORY_DMABUF;
	req.count = s->n_bufs;
	r = sioctl(s, VIDIOC_REQBUFS, &req);
	if (r < 0 || req.count < s->n_bufs) {
		snprintf(how, how_size,
			 "the driver cannot capture into DMA-BUFs (REQBUFS DMABUF: %s)",
			 r < 0 ? strerror(-r) : "fewer buffers");
		r = r < 0 ? r : -ENOMEM;
		goto fail;
	}
	s->memory = V4L2_MEMORY_DMABUF;
	r = zcv_pool_create_empty(&l, s->n_bufs, gen, ZCV_MEMORY_DMABUF, &pool);
	if (r < 0)
		goto fail;
	for (unsigned i = 0; i < s->n_bufs; i++) {
		uint8_t plane_fd[ZCV_MAX_PLANES] = { 0 };
		struct udmabuf_create c = { .flags = UDMABUF_FLAGS_CLOEXEC,
					    .offset = 0,
					    .size = total };
		int mfd = zcv_memfd_create("zcv-fit", total), whole;

		if (mfd < 0) {
			r = mfd;
			snprintf(how, how_size, "memfd for udmabuf: %s", strerror(-r));
			goto fail;
		}
		c.memfd = (uint32_t)mfd;
		for (unsigned p = 0; p < l.n_planes; p++) {
			struct udmabuf_create pc = { .memfd = (uint32_t)mfd,
						     .flags = UDMABUF_FLAGS_CLOEXEC,
						     .offset = l.planes[p].offset,
						     .size = page_up(l.planes[p].size) };

			if (pc.offset + pc.size > total)
				pc.size = total - pc.offset;
			r = ioctl(ufd, UDMABUF_CREATE, &pc);
			if (r < 0) {
				r = -errno;
				close(mfd);
				snprintf(how, how_size, "UDMABUF_CREATE: %s", strerror(-r));
				goto fail;
			}
			s->cap_fd[i][p] = r;
			s->cap_len[i][p] = (uint32_t)pc.size;
		}
		whole = ioctl(ufd, UDMABUF_CREATE, &c);
		r = whole < 0 ? -errno : 0;
		close(mfd); /* the udmabufs hold its pages */
		if (r < 0) {
			snprintf(how, how_size, "UDMABUF_CREATE: %s", strerror(-r));
			goto fail;
		}
		r = zcv_pool_set_fds(pool, i, 1, &whole, plane_fd);
		if (r < 0) {
			snprintf(how, how_size, "the udmabuf is smaller than the layout");
			goto fail;
		}
	}
	close(ufd);
	s->base.pool = pool;
	snprintf(how, how_size,
		 "capturing %s into udmabuf slices of one memfd per buffer (V4L2_MEMORY_DMABUF): "
		 "plane 1 at line %u, %llu bytes a buffer",
		 zcv_fourcc_str(variant, a), zcv_constraints_height(fit, old->height),
		 (unsigned long long)total);
	return 1;
fail:
	zcv_pool_destroy(pool);
	if (ufd >= 0)
		close(ufd);
	return r;
}

static int v4l2_fit(struct zcv_source *src, const struct zcv_constraints *fit, unsigned n_buffers,
		    char *how, size_t how_size)
{
	struct v4l2_source *s = (struct v4l2_source *)src;
	char why[160];
	int k, r;

	if (s->streaming)
		return -EBUSY;
	if (s->copy_tier) {
		snprintf(how, how_size, "the copy tier's own pool is used: %s", s->fallback);
		return -EOPNOTSUPP;
	}
	k = zcv_pool_check(src->pool, fit, why, sizeof(why));
	if (k == ZCV_FIT_OK && n_buffers <= s->n_bufs) {
		snprintf(how, how_size,
			 "the driver's own buffers (VIDIOC_REQBUFS + EXPBUF) already fit");
		return 0;
	}
	if (k == ZCV_FIT_LAYOUT && fit->stride_align > 1 && strstr(why, "stride")) {
		snprintf(how, how_size, "%s", why);
		return -EOPNOTSUPP;
	}
	/* more buffers: whichever way the pool is remade below makes this many */
	s->n_bufs = ZCV_MAX(s->n_bufs, n_buffers);
	if (k == ZCV_FIT_SIZE || k == ZCV_FIT_OK) {
		r = fit_create_bufs(s, fit, how, how_size);
	} else {
		r = fit_udmabuf(s, fit, how, how_size);
		if (r == -EOPNOTSUPP && s->base.pool) {
			char tmp[256];

			s->n_bufs = s->base.pool->n_buffers;
			snprintf(tmp, sizeof(tmp), "%s (%s)", why, how);
			snprintf(how, how_size, "%s", tmp);
			return r;
		}
	}
	/* a pool not remade keeps its count: s->n_bufs indexes it */
	if (src->pool)
		s->n_bufs = src->pool->n_buffers;
	if (r == 1) {
		/* the new pool's buffers go back to the driver as the old ones did */
		src->pool->on_free = on_free;
		src->pool->on_free_data = s;
	}
	if (r == 1 && zcv_pool_check(src->pool, fit, why, sizeof(why)) != ZCV_FIT_OK) {
		snprintf(how, how_size, "the new buffers still do not fit: %s", why);
		return -EOPNOTSUPP;
	}
	return r;
}
