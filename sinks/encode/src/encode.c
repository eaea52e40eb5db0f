/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zcv/encode.h>

#define MAX_OUT 32
#define MAX_CAP 16
#define TS_RING 64

struct out_slot {
	bool allocated;
	bool queued;
	uint64_t cookie;
};

struct cap_buf {
	void *map;
	size_t len;
};

struct zcv_encoder {
	struct zcv_encoder_config cfg;
	struct zcv_encoder_callbacks cbs;
	void *data;
	char device[256];
	char card[64];
	int fd;
	bool mplane;
	uint32_t codec;
	enum v4l2_buf_type out_type, cap_type;
	enum v4l2_memory out_memory;
	bool streaming, draining, drained;
	unsigned n_out, n_cap, queued;
	uint32_t sizeimage; /* what the driver reads per OUTPUT buffer */
	uint32_t coded_width, coded_height;
	unsigned missing;
	struct out_slot out[MAX_OUT];
	struct cap_buf cap[MAX_CAP];
	struct {
		uint64_t seq, ts;
	} ring[TS_RING];
	char error[320];
};

static _Thread_local char create_error[1400]; /* room for what find looked at */
static _Thread_local char looked_at[1024];

static void set_error(struct zcv_encoder *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_error(struct zcv_encoder *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->error, sizeof(e->error), fmt, ap);
	va_end(ap);
}

static int xioctl(int fd, unsigned long req, void *arg)
{
	int r;

	do
		r = ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

static const char *fourcc_str(uint32_t f, char buf[static 5])
{
	for (int i = 0; i < 4; i++) {
		char c = (char)((f >> (8 * i)) & 0xff);

		buf[i] = c >= 32 && c < 127 ? c : '?';
	}
	buf[4] = '\0';
	return buf;
}

static uint32_t device_caps(const struct v4l2_capability *cap)
{
	return cap->capabilities & V4L2_CAP_DEVICE_CAPS ? cap->device_caps : cap->capabilities;
}

/* The first compressed CAPTURE format (codec 0) or codec itself, when the
 * device is a mem2mem device offering it; 0 otherwise. */
static uint32_t m2m_codec(int fd, uint32_t caps, uint32_t codec)
{
	struct v4l2_fmtdesc d = { 0 };
	bool mplane;

	if (!(caps & (V4L2_CAP_VIDEO_M2M | V4L2_CAP_VIDEO_M2M_MPLANE)) ||
	    !(caps & V4L2_CAP_STREAMING))
		return 0;
	mplane = !(caps & V4L2_CAP_VIDEO_M2M);
	d.type = mplane ? V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE : V4L2_BUF_TYPE_VIDEO_CAPTURE;
	for (d.index = 0; xioctl(fd, VIDIOC_ENUM_FMT, &d) == 0; d.index++) {
		if (!(d.flags & V4L2_FMT_FLAG_COMPRESSED))
			continue;
		if (!codec || d.pixelformat == codec)
			return d.pixelformat;
	}
	return 0;
}

static int video_filter(const struct dirent *e)
{
	return !strncmp(e->d_name, "video", 5);
}

int zcv_encoder_find(uint32_t codec, char *path, size_t size, const char **ret_looked_at)
{
	struct dirent **names;
	int n = scandir("/dev", &names, video_filter, versionsort), r = -ENODEV;
	size_t len = 0;
	char a[5];

	looked_at[0] = '\0';
	if (n < 0)
		n = 0;
	for (int i = 0; i < n; i++) {
		struct v4l2_capability cap = { 0 };
		char p[300];
		const char *what;
		int fd;

		snprintf(p, sizeof(p), "/dev/%s", names[i]->d_name);
		free(names[i]);
		if (r == 0)
			continue;
		fd = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0) {
			what = strerror(errno);
		} else if (xioctl(fd, VIDIOC_QUERYCAP, &cap) < 0) {
			what = "not V4L2";
		} else if (!(device_caps(&cap) &
			     (V4L2_CAP_VIDEO_M2M | V4L2_CAP_VIDEO_M2M_MPLANE))) {
			what = "not mem2mem";
		} else if (m2m_codec(fd, device_caps(&cap), codec)) {
			if (strlen(p) >= size) {
				r = -ENAMETOOLONG;
			} else {
				strcpy(path, p);
				r = 0;
			}
			what = "encoder";
		} else {
			what = codec ? "mem2mem, codec not offered" :
				       "mem2mem, no compressed CAPTURE format";
		}
		if (fd >= 0)
			close(fd);
		if (len < sizeof(looked_at)) {
			int k = snprintf(looked_at + len, sizeof(looked_at) - len, "%s%s (%s%s%s)",
					 len ? ", " : "", p, cap.card[0] ? (char *)cap.card : "",
					 cap.card[0] ? ": " : "", what);

			if (k > 0)
				len += (size_t)k;
		}
	}
	free(names);
	if (r == -ENODEV && ret_looked_at) {
		if (!n)
			snprintf(looked_at, sizeof(looked_at),
				 "no V4L2 devices (/dev/video*) at all");
		else if (codec)
			snprintf(looked_at + strnlen(looked_at, sizeof(looked_at)),
				 sizeof(looked_at) - strnlen(looked_at, sizeof(looked_at)),
				 "; none offers %s", fourcc_str(codec, a));
		*ret_looked_at = looked_at;
	}
	return r;
}

int zcv_encoder_create(const struct zcv_encoder_config *cfg,
		       const struct zcv_encoder_callbacks *cbs, void *data,
		       struct zcv_encoder **ret_enc, const char **ret_error)
{
	struct v4l2_capability cap = { 0 };
	struct zcv_encoder *e;
	uint32_t caps;
	char a[5];
	int r;

	create_error[0] = '\0';
	if (!cfg || !ret_enc)
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->fd = -1;
	e->cfg = *cfg;
	if (cbs)
		e->cbs = *cbs;
	e->data = data;
	if (cfg->device) {
		snprintf(e->device, sizeof(e->device), "%s", cfg->device);
	} else {
		const char *found = NULL;

		r = zcv_encoder_find(cfg->codec, e->device, sizeof(e->device), &found);
		if (r < 0) {
			snprintf(
				create_error, sizeof(create_error),
				"no V4L2 encoder found. Looked for a memory-to-memory device whose "
				"CAPTURE queue offers a compressed format%s%s%s; found: %s",
				cfg->codec ? " (" : "", cfg->codec ? fourcc_str(cfg->codec, a) : "",
				cfg->codec ? ")" : "", found ? found : strerror(-r));
			goto fail;
		}
	}
	e->cfg.device = e->device;
	e->fd = open(e->device, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (e->fd < 0) {
		r = -errno;
		snprintf(create_error, sizeof(create_error), "cannot open %s: %s", e->device,
			 strerror(-r));
		goto fail;
	}
	if (xioctl(e->fd, VIDIOC_QUERYCAP, &cap) < 0) {
		r = -ENOTTY;
		snprintf(create_error, sizeof(create_error), "%s is not a V4L2 device", e->device);
		goto fail;
	}
	snprintf(e->card, sizeof(e->card), "%s", (char *)cap.card);
	caps = device_caps(&cap);
	if (!(caps & (V4L2_CAP_VIDEO_M2M | V4L2_CAP_VIDEO_M2M_MPLANE))) {
		r = -ENODEV;
		snprintf(create_error, sizeof(create_error),
			 "%s (%s, driver %s) is not a memory-to-memory device, so it cannot encode",
			 e->device, cap.card, cap.driver);
		goto fail;
	}
	e->codec = m2m_codec(e->fd, caps, cfg->codec);
	if (!e->codec) {
		r = -ENODEV;
		if (cfg->codec)
			snprintf(create_error, sizeof(create_error),
				 "%s (%s) does not encode to %s (see its CAPTURE formats: v4l2-ctl "
				 "-d %s --list-formats)",
				 e->device, cap.card, fourcc_str(cfg->codec, a), e->device);
		else
			snprintf(create_error, sizeof(create_error),
				 "%s (%s) is a mem2mem device without a compressed CAPTURE format: "
				 "not an encoder (a decoder or converter?)",
				 e->device, cap.card);
		goto fail;
	}
	e->mplane = !(caps & V4L2_CAP_VIDEO_M2M);
	e->out_type = e->mplane ? V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE : V4L2_BUF_TYPE_VIDEO_OUTPUT;
	e->cap_type = e->mplane ? V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE : V4L2_BUF_TYPE_VIDEO_CAPTURE;
	*ret_enc = e;
	return 0;
fail:
	if (ret_error)
		*ret_error = create_error[0] ? create_error : strerror(-r);
	if (e->fd >= 0)
		close(e->fd);
	free(e);
	return r;
}

static void release_buffers(struct zcv_encoder *e)
{
	struct v4l2_requestbuffers req = { 0 };

	for (unsigned i = 0; i < e->n_cap; i++)
		if (e->cap[i].map)
			munmap(e->cap[i].map, e->cap[i].len);
	e->n_cap = 0;
	req.type = e->cap_type;
	req.memory = V4L2_MEMORY_MMAP;
	xioctl(e->fd, VIDIOC_REQBUFS, &req);
	req.type = e->out_type;
	req.memory = e->out_memory ? e->out_memory : V4L2_MEMORY_DMABUF;
	xioctl(e->fd, VIDIOC_REQBUFS, &req);
}

void zcv_encoder_destroy(struct zcv_encoder *e)
{
	if (!e)
		return;
	if (e->streaming) {
		int t = e->out_type;

		xioctl(e->fd, VIDIOC_STREAMOFF, &t);
		t = e->cap_type;
		xioctl(e->fd, VIDIOC_STREAMOFF, &t);
	}
	release_buffers(e);
	close(e->fd);
	free(e);
}

const char *zcv_encoder_device(struct zcv_encoder *e)
{
	return e->device;
}

const char *zcv_encoder_card(struct zcv_encoder *e)
{
	return e->card;
}

uint32_t zcv_encoder_codec(struct zcv_encoder *e)
{
	return e->codec;
}

bool zcv_encoder_streaming(struct zcv_encoder *e)
{
	return e->streaming;
}

unsigned zcv_encoder_missing_controls(struct zcv_encoder *e)
{
	return e->missing;
}

unsigned zcv_encoder_queued(struct zcv_encoder *e)
{
	return e->queued;
}

const char *zcv_encoder_error(struct zcv_encoder *e)
{
	return e->error[0] ? e->error : "unknown error";
}

int zcv_encoder_get_fd(struct zcv_encoder *e)
{
	return e->fd;
}

static int try_out(struct zcv_encoder *e, uint32_t fourcc, uint32_t w, uint32_t h, uint32_t *ret_w,
		   uint32_t *ret_h, uint32_t *ret_bpl)
{
	struct v4l2_format f = { .type = e->out_type };
	int r;

	if (e->mplane) {
		f.fmt.pix_mp.pixelformat = fourcc;
		f.fmt.pix_mp.width = w;
		f.fmt.pix_mp.height = h;
		f.fmt.pix_mp.field = V4L2_FIELD_NONE;
		f.fmt.pix_mp.num_planes = 1;
	} else {
		f.fmt.pix.pixelformat = fourcc;
		f.fmt.pix.width = w;
		f.fmt.pix.height = h;
		f.fmt.pix.field = V4L2_FIELD_NONE;
	}
	r = xioctl(e->fd, VIDIOC_TRY_FMT, &f);
	if (r < 0)
		return r;
	if ((e->mplane ? f.fmt.pix_mp.pixelformat : f.fmt.pix.pixelformat) != fourcc)
		return -EINVAL;
	*ret_w = e->mplane ? f.fmt.pix_mp.width : f.fmt.pix.width;
	*ret_h = e->mplane ? f.fmt.pix_mp.height : f.fmt.pix.height;
	*ret_bpl = e->mplane ? f.fmt.pix_mp.plane_fmt[0].bytesperline : f.fmt.pix.bytesperline;
	return 0;
}

int zcv_encoder_probe_needs(struct zcv_encoder *e, uint32_t fourcc, struct zcv_constraints *ret)
{
	/* sizes whose rounding tells alignments from 2 to 64 apart */
	static const uint32_t probes[][2] = {
		{ 1920, 1080 }, { 1280, 720 }, { 1000, 1000 }, { 1366, 768 }, { 1928, 1084 }
	};
	uint32_t got[ZCV_ARRAY_SIZE(probes)][3];
	const struct zcv_format_info *fi;
	uint32_t ha = 1, sa = 1;
	int r;

	if (!fourcc)
		fourcc = ZCV_FMT_NV12;
	fi = zcv_format_lookup(fourcc);
	for (size_t i = 0; i < ZCV_ARRAY_SIZE(probes); i++) {
		r = try_out(e, fourcc, probes[i][0], probes[i][1], &got[i][0], &got[i][1],
			    &got[i][2]);
		if (r < 0)
			return -EINVAL;
	}
	/* the largest power of two every probe's result agrees with */
	for (uint32_t a = 64; a >= 1; a /= 2) {
		bool ok = true;

		for (size_t i = 0; i < ZCV_ARRAY_SIZE(probes); i++)
			if (got[i][0] == probes[i][0] && ZCV_ALIGN_UP(probes[i][1], a) != got[i][1])
				ok = false;
		if (ok) {
			ha = a;
			break;
		}
	}
	for (uint32_t a = 256; a >= 1; a /= 2) {
		bool ok = true;

		for (size_t i = 0; i < ZCV_ARRAY_SIZE(probes); i++) {
			uint32_t row =
				fi ? zcv_format_plane_row_bytes(fi, 0, probes[i][0]) : probes[i][0];

			if (got[i][2] && ZCV_ALIGN_UP(row, a) != got[i][2])
				ok = false;
		}
		if (ok) {
			sa = a;
			break;
		}
	}
	ret->height_align = ha;
	ret->stride_align = sa;
	return 0;
}

/* Sets a control when the driver has it; returns false when it does not. */
static bool set_ctrl(struct zcv_encoder *e, uint32_t id, int64_t value)
{
	struct v4l2_queryctrl q = { .id = id };
	struct v4l2_control c = { .id = id };

	if (xioctl(e->fd, VIDIOC_QUERYCTRL, &q) < 0 || (q.flags & V4L2_CTRL_FLAG_DISABLED))
		return false;
	if (value < q.minimum)
		value = q.minimum;
	if (value > q.maximum)
		value = q.maximum;
	c.value = (int32_t)value;
	return xioctl(e->fd, VIDIOC_S_CTRL, &c) == 0;
}

static int setup_capture(struct zcv_encoder *e)
{
	struct v4l2_requestbuffers req = { .type = e->cap_type, .memory = V4L2_MEMORY_MMAP };
	int r;

	req.count = e->cfg.n_capture ? e->cfg.n_capture : 4;
	if (req.count > MAX_CAP)
		req.count = MAX_CAP;
	r = xioctl(e->fd, VIDIOC_REQBUFS, &req);
	if (r < 0 || !req.count) {
		set_error(e, "VIDIOC_REQBUFS on the CAPTURE (bitstream) queue: %s",
			  r < 0 ? strerror(-r) : "no buffers");
		return r < 0 ? r : -ENOMEM;
	}
	e->n_cap = req.count > MAX_CAP ? MAX_CAP : req.count;
	for (unsigned i = 0; i < e->n_cap; i++) {
		struct v4l2_plane pl[VIDEO_MAX_PLANES] = { 0 };
		struct v4l2_buffer b = { .type = e->cap_type,
					 .memory = V4L2_MEMORY_MMAP,
					 .index = i };
		size_t len;
		off_t off;
		void *m;

		if (e->mplane) {
			b.m.planes = pl;
			b.length = VIDEO_MAX_PLANES;
		}
		r = xioctl(e->fd, VIDIOC_QUERYBUF, &b);
		if (r < 0) {
			set_error(e, "VIDIOC_QUERYBUF (CAPTURE %u): %s", i, strerror(-r));
			return r;
		}
		len = e->mplane ? pl[0].length : b.length;
		off = e->mplane ? pl[0].m.mem_offset : b.m.offset;
		m = mmap(NULL, len, PROT_READ, MAP_SHARED, e->fd, off);
		if (m == MAP_FAILED) {
			r = -errno;
			set_error(e, "cannot map the encoder's bitstream buffer %u: %s", i,
				  strerror(-r));
			return r;
		}
		e->cap[i].map = m;
		e->cap[i].len = len;
	}
	return 0;
}

static int queue_capture(struct zcv_encoder *e, unsigned i)
{
	struct v4l2_plane pl[VIDEO_MAX_PLANES] = { 0 };
	struct v4l2_buffer b = { .type = e->cap_type, .memory = V4L2_MEMORY_MMAP, .index = i };

	if (e->mplane) {
		b.m.planes = pl;
		b.length = 1;
	}
	return xioctl(e->fd, VIDIOC_QBUF, &b);
}

int zcv_encoder_start(struct zcv_encoder *e, const struct zcv_layout *l, unsigned n_buffers,
		      uint32_t fps_num, uint32_t fps_den, enum zcv_encoder_memory memory)
{
	const struct zcv_format_info *fi = zcv_format_lookup(l->fourcc);
	struct v4l2_format f = { .type = e->out_type };
	struct v4l2_requestbuffers req = { 0 };
	uint32_t w, h, bpl, off = 0;
	bool separate = l->n_planes > 1 && l->planes[1].offset == 0;
	char a[5], b[5];
	int r, t;

	e->error[0] = '\0';
	if (e->streaming)
		return -EBUSY;
	if (!fi || n_buffers == 0 || n_buffers > MAX_OUT) {
		set_error(e, "unsupported stream (%u buffers)", n_buffers);
		return -EINVAL;
	}
	if (separate) {
		set_error(e,
			  "the stream has a memory object per plane (%s with separate planes), but "
			  "%s reads %s from one buffer",
			  fi->name, e->device, fi->name);
		return -EINVAL;
	}
	if (e->mplane) {
		f.fmt.pix_mp.pixelformat = l->fourcc;
		f.fmt.pix_mp.width = l->width;
		f.fmt.pix_mp.height = l->height;
		f.fmt.pix_mp.field = V4L2_FIELD_NONE;
		f.fmt.pix_mp.num_planes = 1;
		f.fmt.pix_mp.plane_fmt[0].bytesperline = l->planes[0].stride;
		f.fmt.pix_mp.colorspace = V4L2_COLORSPACE_REC709;
	} else {
		f.fmt.pix.pixelformat = l->fourcc;
		f.fmt.pix.width = l->width;
		f.fmt.pix.height = l->height;
		f.fmt.pix.field = V4L2_FIELD_NONE;
		f.fmt.pix.bytesperline = l->planes[0].stride;
		f.fmt.pix.colorspace = V4L2_COLORSPACE_REC709;
	}
	r = xioctl(e->fd, VIDIOC_S_FMT, &f);
	if (r < 0 || (e->mplane ? f.fmt.pix_mp.pixelformat : f.fmt.pix.pixelformat) != l->fourcc ||
	    (e->mplane && f.fmt.pix_mp.num_planes != 1)) {
		set_error(e, "%s (%s) does not take %s frames as input%s%s", e->device, e->card,
			  fourcc_str(l->fourcc, a), r < 0 ? ": " : "", r < 0 ? strerror(-r) : "");
		return r == -EBUSY ? r : -EINVAL;
	}
	w = e->mplane ? f.fmt.pix_mp.width : f.fmt.pix.width;
	h = e->mplane ? f.fmt.pix_mp.height : f.fmt.pix.height;
	bpl = e->mplane ? f.fmt.pix_mp.plane_fmt[0].bytesperline : f.fmt.pix.bytesperline;
	e->sizeimage = e->mplane ? f.fmt.pix_mp.plane_fmt[0].sizeimage : f.fmt.pix.sizeimage;
	e->coded_width = w;
	e->coded_height = h;
	/* more than alignment rounding: the size is out of the driver's range */
	if (w < l->width || h < l->height || w - l->width >= 64 || h - l->height >= 64) {
		set_error(e, "%s (%s) cannot encode %ux%u %s: it offered %ux%u instead", e->device,
			  e->card, l->width, l->height, fi->name, w, h);
		return -EINVAL;
	}
	/* Where the driver reads each plane of a one-buffer format: planes
	 * packed one after another at the coded (aligned) height. */
	for (unsigned p = 0; p < l->n_planes; p++) {
		uint32_t stride = bpl * fi->cpp[p] / fi->hsub[p] / fi->cpp[0];

		if (l->planes[p].stride != stride || l->planes[p].offset != off) {
			set_error(e,
				  "%s reads %s %ux%u with plane %u at offset %u, stride %u (coded "
				  "%ux%u), "
				  "but the stream has it at offset %u, stride %u: the producer "
				  "must allocate "
				  "for this encoder (zcv-capture does for consumers present at "
				  "start)",
				  e->device, fi->name, l->width, l->height, p, off, stride, w, h,
				  l->planes[p].offset, l->planes[p].stride);
			return -EINVAL;
		}
		off += stride * zcv_format_plane_lines(fi, p, h);
	}
	if (h != l->height || w != l->width) {
		struct v4l2_selection s = { .type = V4L2_BUF_TYPE_VIDEO_OUTPUT,
					    .target = V4L2_SEL_TGT_CROP,
					    .r = { 0, 0, l->width, l->height } };

		if (xioctl(e->fd, VIDIOC_S_SELECTION, &s) < 0) {
			s.type = e->out_type;
			xioctl(e->fd, VIDIOC_S_SELECTION, &s);
		}
	}
	if (fps_num && fps_den) {
		struct v4l2_streamparm p = { .type = e->out_type };

		p.parm.output.timeperframe.numerator = fps_den;
		p.parm.output.timeperframe.denominator = fps_num;
		xioctl(e->fd, VIDIOC_S_PARM, &p); /* optional */
	}

	memset(&f, 0, sizeof(f));
	f.type = e->cap_type;
	if (e->mplane) {
		f.fmt.pix_mp.pixelformat = e->codec;
		f.fmt.pix_mp.width = w;
		f.fmt.pix_mp.height = h;
		f.fmt.pix_mp.num_planes = 1;
	} else {
		f.fmt.pix.pixelformat = e->codec;
		f.fmt.pix.width = w;
		f.fmt.pix.height = h;
	}
	r = xioctl(e->fd, VIDIOC_S_FMT, &f);
	if (r < 0 || (e->mplane ? f.fmt.pix_mp.pixelformat : f.fmt.pix.pixelformat) != e->codec) {
		set_error(e, "%s refused the coded format %s at %ux%u%s%s", e->device,
			  fourcc_str(e->codec, b), w, h, r < 0 ? ": " : "",
			  r < 0 ? strerror(-r) : "");
		return r == -EBUSY ? r : -EINVAL;
	}
	if (e->cfg.bitrate > 0 && !set_ctrl(e, V4L2_CID_MPEG_VIDEO_BITRATE, e->cfg.bitrate))
		e->missing |= 1;
	if (e->cfg.gop > 0 && !set_ctrl(e, V4L2_CID_MPEG_VIDEO_GOP_SIZE, e->cfg.gop))
		e->missing |= 2;

	e->out_memory = memory == ZCV_ENCODER_USERPTR ? V4L2_MEMORY_USERPTR : V4L2_MEMORY_DMABUF;
	req.type = e->out_type;
	req.memory = e->out_memory;
	req.count = n_buffers;
	r = xioctl(e->fd, VIDIOC_REQBUFS, &req);
	if (r < 0 || req.count < n_buffers) {
		set_error(e, "%s cannot import %u %s buffers on its OUTPUT queue: %s", e->device,
			  n_buffers, memory == ZCV_ENCODER_USERPTR ? "USERPTR" : "DMABUF",
			  r < 0 ? strerror(-r) : "it offered fewer");
		return r < 0 ? r : -ENOMEM;
	}
	e->n_out = n_buffers;
	for (unsigned i = 0; i < n_buffers; i++)
		e->out[i] = (struct out_slot){ .allocated = true };
	r = setup_capture(e);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < e->n_cap; i++) {
		r = queue_capture(e, i);
		if (r < 0) {
			set_error(e, "VIDIOC_QBUF (CAPTURE %u): %s", i, strerror(-r));
			return r;
		}
	}
	t = e->out_type;
	r = xioctl(e->fd, VIDIOC_STREAMON, &t);
	if (r == 0) {
		t = e->cap_type;
		r = xioctl(e->fd, VIDIOC_STREAMON, &t);
	}
	if (r < 0) {
		set_error(e, "VIDIOC_STREAMON on %s: %s", e->device, strerror(-r));
		return r;
	}
	e->streaming = true;
	return 0;
}

int zcv_encoder_queue(struct zcv_encoder *e, const struct zcv_encoder_frame *fr)
{
	struct v4l2_plane pl[VIDEO_MAX_PLANES] = { 0 };
	struct v4l2_buffer b = { .type = e->out_type, .memory = e->out_memory };
	uint64_t len;
	int r;

	if (!e->streaming || e->draining || fr->index >= e->n_out)
		return -EINVAL;
	if (e->out[fr->index].queued)
		return -EBUSY;
	b.index = fr->index;
	b.field = V4L2_FIELD_NONE;
	/* the sequence rides in the timestamp, which the encoder copies to
	 * the bitstream buffer: that names the frame each packet encodes */
	b.timestamp.tv_sec = (time_t)(fr->sequence / 1000000);
	b.timestamp.tv_usec = (suseconds_t)(fr->sequence % 1000000);
	if (e->out_memory == V4L2_MEMORY_DMABUF) {
		len = fr->fd_size[0];
		if (fr->fd[0] < 0 || len < (uint64_t)fr->offset[0] + e->sizeimage) {
			set_error(e,
				  "frame buffer %u is %llu bytes from offset %u, but %s reads %u "
				  "bytes per frame "
				  "(%ux%u coded): the producer must allocate for this encoder",
				  fr->index, (unsigned long long)len, fr->offset[0], e->device,
				  e->sizeimage, e->coded_width, e->coded_height);
			return -EINVAL;
		}
		if (e->mplane) {
			pl[0].m.fd = fr->fd[0];
			pl[0].length = (uint32_t)len;
			pl[0].data_offset = fr->offset[0];
			pl[0].bytesused = fr->offset[0] + e->sizeimage;
		} else {
			if (fr->offset[0]) {
				set_error(e,
					  "frame plane 0 starts at offset %u; the single-planar "
					  "API of %s cannot say so",
					  fr->offset[0], e->device);
				return -EINVAL;
			}
			b.m.fd = fr->fd[0];
			b.length = (uint32_t)len;
			b.bytesused = e->sizeimage;
		}
	} else {
		len = fr->fd_size[0];
		if (!fr->map[0] || len < e->sizeimage) {
			set_error(e,
				  "frame buffer %u is %llu bytes, but %s reads %u bytes per frame",
				  fr->index, (unsigned long long)len, e->device, e->sizeimage);
			return -EINVAL;
		}
		if (e->mplane) {
			pl[0].m.userptr = (unsigned long)fr->map[0];
			pl[0].length = (uint32_t)len;
			pl[0].bytesused = e->sizeimage;
		} else {
			b.m.userptr = (unsigned long)fr->map[0];
			b.length = (uint32_t)len;
			b.bytesused = e->sizeimage;
		}
	}
	if (e->mplane) {
		b.m.planes = pl;
		b.length = 1;
	}
	r = xioctl(e->fd, VIDIOC_QBUF, &b);
	if (r < 0) {
		set_error(e, "%s refused frame buffer %u (VIDIOC_QBUF: %s)", e->device, fr->index,
			  strerror(-r));
		return r;
	}
	e->ring[fr->sequence % TS_RING].seq = fr->sequence;
	e->ring[fr->sequence % TS_RING].ts = fr->timestamp_ns;
	e->out[fr->index].queued = true;
	e->out[fr->index].cookie = fr->cookie;
	e->queued++;
	return 0;
}

static int dq_output(struct zcv_encoder *e)
{
	for (;;) {
		struct v4l2_plane pl[VIDEO_MAX_PLANES] = { 0 };
		struct v4l2_buffer b = { .type = e->out_type, .memory = e->out_memory };
		int r;

		if (e->mplane) {
			b.m.planes = pl;
			b.length = 1;
		}
		r = xioctl(e->fd, VIDIOC_DQBUF, &b);
		if (r == -EAGAIN || r == -EPIPE || (r == -EINVAL && !e->queued))
			return 0;
		if (r < 0)
			return r == -EIO || r == -ENODEV ? -ENODEV : r;
		if (b.index >= e->n_out || !e->out[b.index].queued)
			continue;
		e->out[b.index].queued = false;
		e->queued--;
		if (e->cbs.done)
			e->cbs.done(e->data, e->out[b.index].cookie);
	}
}

static int dq_capture(struct zcv_encoder *e)
{
	for (;;) {
		struct v4l2_plane pl[VIDEO_MAX_PLANES] = { 0 };
		struct v4l2_buffer b = { .type = e->cap_type, .memory = V4L2_MEMORY_MMAP };
		uint64_t seq, ts = 0;
		size_t len, off = 0;
		int r;

		if (e->drained)
			return 1;
		if (e->mplane) {
			b.m.planes = pl;
			b.length = 1;
		}
		r = xioctl(e->fd, VIDIOC_DQBUF, &b);
		if (r == -EAGAIN)
			return 0;
		if (r == -EPIPE) { /* the last buffer was dequeued already */
			e->drained = true;
			return 1;
		}
		if (r < 0)
			return r == -EIO || r == -ENODEV ? -ENODEV : r;
		if (b.index >= e->n_cap)
			return -EIO;
		if (e->mplane) {
			off = pl[0].data_offset;
			len = pl[0].bytesused > off ? pl[0].bytesused - off : 0;
		} else {
			len = b.bytesused;
		}
		if (off + len > e->cap[b.index].len)
			len = off < e->cap[b.index].len ? e->cap[b.index].len - off : 0;
		seq = (uint64_t)b.timestamp.tv_sec * 1000000 + (uint64_t)b.timestamp.tv_usec;
		if (e->ring[seq % TS_RING].seq == seq)
			ts = e->ring[seq % TS_RING].ts;
		if ((len || !(b.flags & V4L2_BUF_FLAG_LAST)) && e->cbs.packet)
			e->cbs.packet(e->data, (const uint8_t *)e->cap[b.index].map + off, len, seq,
				      ts, b.flags & V4L2_BUF_FLAG_KEYFRAME);
		if (b.flags & V4L2_BUF_FLAG_LAST) {
			e->drained = true;
			return 1;
		}
		r = queue_capture(e, b.index);
		if (r < 0)
			return r;
	}
}

int zcv_encoder_dispatch(struct zcv_encoder *e)
{
	struct v4l2_event ev;
	int r;

	if (!e->streaming)
		return e->drained ? 1 : 0;
	r = dq_output(e);
	if (r < 0) {
		set_error(e, "dequeuing frames from %s: %s", e->device, strerror(-r));
		return r;
	}
	r = dq_capture(e);
	if (r < 0) {
		set_error(e, "dequeuing the bitstream from %s: %s", e->device, strerror(-r));
		return r;
	}
	/* events (EOS) are only a wake-up: the LAST flag is what counts */
	while (xioctl(e->fd, VIDIOC_DQEVENT, &ev) == 0)
		;
	if (r == 1) /* after the last packet every frame is back */
		dq_output(e);
	return r;
}

int zcv_encoder_drain(struct zcv_encoder *e)
{
	struct v4l2_encoder_cmd c = { .cmd = V4L2_ENC_CMD_STOP };
	int r;

	if (!e->streaming) {
		e->drained = true;
		return 0;
	}
	if (e->draining)
		return 0;
	e->draining = true;
	r = xioctl(e->fd, VIDIOC_ENCODER_CMD, &c);
	if (r < 0) {
		set_error(e, "%s cannot drain (V4L2_ENC_CMD_STOP: %s): the last frames may be lost",
			  e->device, strerror(-r));
		e->drained = true;
		return r;
	}
	return 0;
}
