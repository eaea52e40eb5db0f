/* SPDX-License-Identifier: MIT */
/*
 * zcvsrc: a zcv consumer as a live GStreamer source.
 *
 * Each pool buffer of a generation is wrapped once, on its first frame,
 * as a "parent" GstBuffer of fd/DMA-BUF memories (dup'ed fds, so the
 * wrapping never depends on the client's fd numbers). Each frame is a new
 * GstBuffer sharing those memories and carrying a GstParentBufferMeta of
 * the parent; when GStreamer drops the last reference to the frame (and
 * to every copy of it), the parent's dispose hands the frame back with
 * zcv_client_release(), on whatever thread that happens, and keeps the
 * parent for the next frame in that buffer. The client, and the lock the
 * parents share, live in a refcounted context that the last parent frees,
 * so a release never follows zcv_client_destroy().
 */
#include "gstzcv.h"
#include "gstzcv_copy.h"
#include <errno.h>
#include <fcntl.h>
#include <gst/allocators/allocators.h>
#include <gst/base/gstpushsrc.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <zcv/client.h>
#include <zcv/pool.h>

GST_DEBUG_CATEGORY_STATIC(zcvsrc_debug);
#define GST_CAT_DEFAULT zcvsrc_debug

#define CONNECT_TIMEOUT_MS 5000
#define POLL_MS 100

typedef enum {
	ZCV_SRC_TS_CAPTURE = 0,
	ZCV_SRC_TS_RUNNING = 1,
} GstZcvSrcTimestamp;

struct src_ctx {
	gint refcount;
	GMutex lock; /* slots' lent/retired/frame */
	struct zcv_client *client;
};

struct src_slot {
	struct src_ctx *ctx;
	GstBuffer *parent;
	struct zcv_client_frame frame;
	bool lent;    /* a frame of it is downstream; the parent has no idle ref */
	bool retired; /* its generation is over: the parent dies when idle */
	unsigned n_mem;
	guint plane_mem[ZCV_MAX_PLANES];
	gsize mem_base[ZCV_MAX_PLANES]; /* offset of each memory in the buffer */
};

typedef struct {
	GstPushSrc parent;

	/* properties */
	gchar *socket_path;
	gchar *name;
	guint max_hold;
	GstZcvSrcTimestamp ts_mode;
	guint64 copied_bytes; /* object lock */

	struct src_ctx *ctx;
	int wake_fd;
	gboolean flushing; /* object lock */
	GQueue frames;     /* struct zcv_client_frame *, from dispatch */
	struct zcv_client_format fmt;
	gboolean have_fmt;
	uint32_t pending_gen; /* format received, applied on its first frame */
	gboolean fmt_pending;
	uint32_t gen;
	struct src_slot *slots[ZCV_POOL_MAX_BUFFERS];
	GstVideoInfo info;
	gboolean default_layout;
	gboolean downstream_meta;
	gboolean copy_all;
	gboolean pressure; /* downstream held our whole grant: copy at the limit */
	gboolean warned;
	GstBufferPool *copy_pool;
	GstAllocator *fd_alloc, *dmabuf_alloc;
	gboolean closed;
	int closed_error;
	gchar *closed_reason;
	uint64_t last_seq;
	gboolean have_seq;
	guint64 frames_out, frames_copied;
	guint fds_at_start;
} GstZcvSrc;

typedef struct {
	GstPushSrcClass parent_class;
} GstZcvSrcClass;

G_DEFINE_TYPE(GstZcvSrc, gst_zcv_src, GST_TYPE_PUSH_SRC)
#define GST_ZCV_SRC(o) ((GstZcvSrc *)(o))

enum {
	PROP_0,
	PROP_SOCKET,
	PROP_NAME,
	PROP_MAX_HOLD,
	PROP_TIMESTAMP_MODE,
	PROP_COPIED_BYTES,
};

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
	"src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(GST_ZCV_FORMATS)));

static GQuark slot_quark;

static void use_format(GstZcvSrc *self);

static GType timestamp_mode_get_type(void)
{
	static GType type;
	static const GEnumValue values[] = {
		{ ZCV_SRC_TS_CAPTURE, "The producer's capture time", "capture" },
		{ ZCV_SRC_TS_RUNNING, "Running time when the frame arrived", "running-time" },
		{ 0, NULL, NULL },
	};
	if (g_once_init_enter(&type))
		g_once_init_leave(&type, g_enum_register_static("GstZcvSrcTimestamp", values));
	return type;
}

/* Returns whether that was the last reference (the client is gone). */
static bool ctx_unref(struct src_ctx *ctx)
{
	if (!g_atomic_int_dec_and_test(&ctx->refcount))
		return false;
	/* Nothing can release any more: every parent is gone. */
	zcv_client_destroy(ctx->client);
	g_mutex_clear(&ctx->lock);
	g_free(ctx);
	return true;
}

static void slot_free(gpointer data)
{
	struct src_slot *s = data;

	ctx_unref(s->ctx);
	g_free(s);
}

/* The last reference to a parent went (every frame sharing its memory is
 * gone): release the frame, and keep the parent for the buffer's next
 * frame unless its generation is over. */
static gboolean parent_dispose(GstMiniObject *obj)
{
	struct src_slot *s = gst_mini_object_get_qdata(obj, slot_quark);
	struct src_ctx *ctx = s->ctx;
	struct zcv_client_frame f;
	bool release, keep;

	g_mutex_lock(&ctx->lock);
	release = s->lent;
	s->lent = false;
	f = s->frame;
	keep = !s->retired;
	if (keep)
		gst_mini_object_ref(obj);
	g_atomic_int_inc(&ctx->refcount); /* s may be freed once unlocked */
	g_mutex_unlock(&ctx->lock);
	if (release)
		zcv_client_release(ctx->client, &f);
	ctx_unref(ctx);
	return !keep;
}

/* Ends a slot's generation: the parent dies now if idle, else when its
 * frame comes back. */
static void slot_retire(struct src_slot *s)
{
	bool idle;

	g_mutex_lock(&s->ctx->lock);
	s->retired = true;
	idle = !s->lent;
	g_mutex_unlock(&s->ctx->lock);
	if (idle)
		gst_buffer_unref(s->parent);
}

static void retire_all(GstZcvSrc *self)
{
	for (unsigned i = 0; i < ZCV_POOL_MAX_BUFFERS; i++) {
		if (self->slots[i])
			slot_retire(self->slots[i]);
		self->slots[i] = NULL;
	}
}

static void on_format(void *data, const struct zcv_client_format *fmt)
{
	GstZcvSrc *self = data;

	self->fmt = *fmt;
	self->have_fmt = TRUE;
	self->fmt_pending = TRUE;
	self->pending_gen = fmt->generation;
}

static void on_frame(void *data, const struct zcv_client_frame *frame)
{
	GstZcvSrc *self = data;

	g_queue_push_tail(&self->frames, g_memdup2(frame, sizeof(*frame)));
}

static void on_closed(void *data, int error, const char *reason)
{
	GstZcvSrc *self = data;

	self->closed = TRUE;
	self->closed_error = error;
	g_free(self->closed_reason);
	self->closed_reason = g_strdup(reason ? reason : "");
}

static void drop_queued(GstZcvSrc *self)
{
	struct zcv_client_frame *f;

	while ((f = g_queue_pop_head(&self->frames))) {
		zcv_client_release(self->ctx->client, f);
		g_free(f);
	}
}

static void log_stats(GstZcvSrc *self)
{
	guint64 copied;

	GST_OBJECT_LOCK(self);
	copied = self->copied_bytes;
	GST_OBJECT_UNLOCK(self);
	GST_INFO_OBJECT(self,
			"stats: frames=%" G_GUINT64_FORMAT " copied_frames=%" G_GUINT64_FORMAT
			" copied_bytes=%" G_GUINT64_FORMAT " dropped=%" G_GUINT64_FORMAT
			" buffer_fds=%u",
			self->frames_out, self->frames_copied, copied,
			self->ctx ? (guint64)zcv_client_dropped(self->ctx->client) : 0,
			gst_zcv_count_buffer_fds());
}

static gboolean closed_error(GstZcvSrc *self, int err)
{
	const char *reason = self->closed_reason && *self->closed_reason ? self->closed_reason :
									   g_strerror(-err);

	GST_ELEMENT_ERROR(self, RESOURCE, READ, ("zcv stream failed: %s", reason),
			  ("zcv_client_dispatch: %s (%d)", g_strerror(-err), err));
	return FALSE;
}

static gboolean gst_zcv_src_start(GstBaseSrc *bsrc)
{
	GstZcvSrc *self = GST_ZCV_SRC(bsrc);
	struct zcv_client_config cfg = { .size = sizeof(cfg) };
	struct zcv_client_callbacks cbs = {
		.size = sizeof(cbs),
		.format = on_format,
		.frame = on_frame,
		.closed = on_closed,
	};
	gint64 deadline = g_get_monotonic_time() + CONNECT_TIMEOUT_MS * 1000;
	struct zcv_client *c = NULL;
	int r;

	cfg.socket_path = self->socket_path;
	cfg.name = self->name;
	cfg.no_map = true; /* GStreamer's allocators map what they wrap */
	cfg.constraints.hold = self->max_hold;
	self->closed = FALSE;
	self->have_fmt = self->fmt_pending = FALSE;
	self->have_seq = FALSE;
	self->gen = 0;
	self->frames_out = self->frames_copied = 0;
	self->pressure = self->warned = self->copy_all = FALSE;
	GST_OBJECT_LOCK(self);
	self->copied_bytes = 0;
	GST_OBJECT_UNLOCK(self);
	self->fds_at_start = gst_zcv_count_buffer_fds();
	r = zcv_client_connect(&cfg, &cbs, self, &c);
	if (r < 0) {
		GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ,
				  ("Cannot connect to zcv socket %s: %s%s",
				   self->socket_path ? self->socket_path : "(default)",
				   g_strerror(-r),
				   r == -ENOENT ? " (is the producer running?)" : ""),
				  ("zcv_client_connect: %d", r));
		return FALSE;
	}
	while (!self->have_fmt && !self->closed) {
		gint64 left = (deadline - g_get_monotonic_time()) / 1000;

		if (left <= 0) {
			GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ,
					  ("The zcv producer sent no format within %d ms",
					   CONNECT_TIMEOUT_MS),
					  (NULL));
			zcv_client_destroy(c);
			return FALSE;
		}
		r = zcv_client_wait_dispatch(c, (int)left);
		if (r < 0 || r == 1)
			break;
	}
	if (!self->have_fmt) {
		GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ,
				  ("zcv stream ended before it started: %s",
				   self->closed_reason && *self->closed_reason ?
					   self->closed_reason :
					   g_strerror(-r)),
				  ("dispatch: %d", r));
		zcv_client_destroy(c);
		return FALSE;
	}
	if (gst_zcv_format_to_gst(self->fmt.layout.fourcc) == GST_VIDEO_FORMAT_UNKNOWN) {
		char fcc[5];
		GST_ELEMENT_ERROR(self, STREAM, FORMAT,
				  ("zcv format %s has no GStreamer equivalent",
				   zcv_fourcc_str(self->fmt.layout.fourcc, fcc)),
				  (NULL));
		zcv_client_destroy(c);
		return FALSE;
	}
	self->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (self->wake_fd < 0) {
		GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("eventfd: %s", g_strerror(errno)),
				  (NULL));
		zcv_client_destroy(c);
		return FALSE;
	}
	self->ctx = g_new0(struct src_ctx, 1);
	self->ctx->refcount = 1;
	g_mutex_init(&self->ctx->lock);
	self->ctx->client = c;
	use_format(self);
	GST_INFO_OBJECT(self, "connected: path %s, %ux%u, %u buffers, hold granted %u",
			zcv_path_name(self->fmt.path), self->fmt.layout.width,
			self->fmt.layout.height, self->fmt.n_buffers, self->fmt.max_hold);
	return TRUE;
}

static gboolean gst_zcv_src_stop(GstBaseSrc *bsrc)
{
	GstZcvSrc *self = GST_ZCV_SRC(bsrc);

	if (!self->ctx)
		return TRUE;
	log_stats(self);
	drop_queued(self);
	retire_all(self);
	if (self->copy_pool) {
		gst_buffer_pool_set_active(self->copy_pool, FALSE);
		gst_clear_object(&self->copy_pool);
	}
	close(self->wake_fd);
	self->wake_fd = -1;
	/* The client goes with the last frame downstream still holds. */
	if (ctx_unref(self->ctx))
		GST_INFO_OBJECT(self, "buffer fds: at start %u, after stop %u", self->fds_at_start,
				gst_zcv_count_buffer_fds());
	else
		GST_INFO_OBJECT(self, "fds: downstream still holds frames at stop");
	self->ctx = NULL;
	return TRUE;
}

/* GstVideoInfo and caps of the current format; whether its layout is
 * GStreamer's default (one memory, default strides and offsets). */
static GstCaps *format_caps(GstZcvSrc *self)
{
	const struct zcv_client_format *f = &self->fmt;
	GstVideoInfo *info = &self->info;

	gst_video_info_set_format(info, gst_zcv_format_to_gst(f->layout.fourcc), f->layout.width,
				  f->layout.height);
	if (f->fps_num && f->fps_den) {
		GST_VIDEO_INFO_FPS_N(info) = (gint)f->fps_num;
		GST_VIDEO_INFO_FPS_D(info) = (gint)f->fps_den;
	} else {
		GST_VIDEO_INFO_FPS_N(info) = 0;
		GST_VIDEO_INFO_FPS_D(info) = 1;
	}
	gst_zcv_colorimetry_from_v4l2(info, f->colorspace);
	return gst_video_info_to_caps(info);
}

static GstCaps *gst_zcv_src_get_caps(GstBaseSrc *bsrc, GstCaps *filter)
{
	GstZcvSrc *self = GST_ZCV_SRC(bsrc);
	GstCaps *caps;

	if (self->have_fmt)
		caps = format_caps(self);
	else
		caps = gst_pad_get_pad_template_caps(GST_BASE_SRC_PAD(bsrc));
	if (filter) {
		GstCaps *i = gst_caps_intersect_full(filter, caps, GST_CAPS_INTERSECT_FIRST);
		gst_caps_unref(caps);
		caps = i;
	}
	return caps;
}

static void say_copy(GstZcvSrc *self, const char *why)
{
	if (self->warned)
		return;
	self->warned = TRUE;
	GST_ELEMENT_WARNING(self, RESOURCE, READ, ("zcvsrc copies frames: %s", why),
			    ("hold granted %u", self->fmt.max_hold));
}

static gboolean gst_zcv_src_decide_allocation(GstBaseSrc *bsrc, GstQuery *query)
{
	GstZcvSrc *self = GST_ZCV_SRC(bsrc);
	GstCaps *caps;
	GstStructure *cfg;
	guint min_need = 0;

	gst_query_parse_allocation(query, &caps, NULL);
	if (!caps)
		return FALSE;
	self->downstream_meta =
		gst_query_find_allocation_meta(query, GST_VIDEO_META_API_TYPE, NULL);
	for (guint i = 0; i < gst_query_get_n_allocation_pools(query); i++) {
		guint size, min, max;
		gst_query_parse_nth_allocation_pool(query, i, NULL, &size, &min, &max);
		min_need = MAX(min_need, min);
	}
	self->copy_all = FALSE;
	if (!self->default_layout && !self->downstream_meta) {
		self->copy_all = TRUE;
		say_copy(self, "downstream takes no GstVideoMeta and the producer's layout is "
			       "not GStreamer's default");
	} else if (min_need >= self->fmt.max_hold) {
		gchar *why = g_strdup_printf("downstream needs %u buffers, the producer lets us "
					     "hold %u",
					     min_need, self->fmt.max_hold);
		self->copy_all = TRUE;
		say_copy(self, why);
		g_free(why);
	}
	GST_DEBUG_OBJECT(self, "downstream: video meta %d, min buffers %u; copy all %d",
			 self->downstream_meta, min_need, self->copy_all);

	/* Our own pool for copies: default layout, so it suits anyone. */
	if (self->copy_pool) {
		gst_buffer_pool_set_active(self->copy_pool, FALSE);
		gst_clear_object(&self->copy_pool);
	}
	self->copy_pool = gst_video_buffer_pool_new();
	cfg = gst_buffer_pool_get_config(self->copy_pool);
	gst_buffer_pool_config_set_params(cfg, caps, (guint)self->info.size, 2, 0);
	if (!gst_buffer_pool_set_config(self->copy_pool, cfg) ||
	    !gst_buffer_pool_set_active(self->copy_pool, TRUE)) {
		GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Cannot set up the copy pool"),
				  (NULL));
		return FALSE;
	}
	return TRUE;
}

/* Takes the received format as the current one. */
static void use_format(GstZcvSrc *self)
{
	GstCaps *caps;
	GstVideoInfo def;
	const struct zcv_layout *l = &self->fmt.layout;

	self->gen = self->pending_gen;
	self->fmt_pending = FALSE;
	caps = format_caps(self);
	gst_caps_unref(caps);
	def = self->info;
	self->default_layout = TRUE;
	for (unsigned p = 0; p < l->n_planes; p++)
		if (l->planes[p].offset != GST_VIDEO_INFO_PLANE_OFFSET(&def, p) ||
		    (gint)l->planes[p].stride != GST_VIDEO_INFO_PLANE_STRIDE(&def, p))
			self->default_layout = FALSE;
	GST_INFO_OBJECT(self, "generation %u: %ux%u, default layout %d, hold %u", self->gen,
			l->width, l->height, self->default_layout, self->fmt.max_hold);
}

/* A new generation: new caps, the old parents retire. */
static gboolean apply_format(GstZcvSrc *self)
{
	retire_all(self);
	use_format(self);
	if (!gst_base_src_negotiate(GST_BASE_SRC(self))) {
		GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("Downstream refused the zcv format"),
				  (NULL));
		return FALSE;
	}
	return TRUE;
}

/* Bytes of fd that hold planes of the frame: the end of its last plane
 * (within the memory object, which the client checked). */
static gsize mem_extent(const GstZcvSrc *self, const struct zcv_client_frame *f, int fd)
{
	uint64_t end = 0, len = 0;

	for (unsigned p = 0; p < f->n_planes; p++) {
		if (f->fd[p] != fd)
			continue;
		end = MAX(end, (uint64_t)f->offset[p] + self->fmt.layout.planes[p].size);
		len = f->length[p];
	}
	return (gsize)MIN(end, len);
}

/* Wraps pool buffer f->index of the current generation once. */
static struct src_slot *slot_get(GstZcvSrc *self, const struct zcv_client_frame *f)
{
	struct src_slot *s = self->slots[f->index];
	int fds[ZCV_MAX_PLANES];

	if (s)
		return s;
	s = g_new0(struct src_slot, 1);
	s->parent = gst_buffer_new();
	for (unsigned p = 0; p < f->n_planes; p++) {
		unsigned m;
		for (m = 0; m < s->n_mem; m++)
			if (fds[m] == f->fd[p])
				break;
		s->plane_mem[p] = m;
		if (m < s->n_mem)
			continue;
		int fd = fcntl(f->fd[p], F_DUPFD_CLOEXEC, 3);
		GstMemory *mem;
		if (fd < 0) {
			GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("dup: %s", g_strerror(errno)),
					  (NULL));
			gst_buffer_unref(s->parent);
			g_free(s);
			return NULL;
		}
		fds[m] = f->fd[p];
		/* Mapped once, on first use, for the generation: a map per
		 * frame would cost an mmap and munmap each time. */
		if (self->fmt.path == ZCV_PATH_DMABUF)
			mem = gst_dmabuf_allocator_alloc_with_flags(self->dmabuf_alloc, fd,
								    (gsize)f->length[p],
								    GST_FD_MEMORY_FLAG_KEEP_MAPPED);
		else
			mem = gst_fd_allocator_alloc(self->fd_alloc, fd, (gsize)f->length[p],
						     GST_FD_MEMORY_FLAG_KEEP_MAPPED);
		/* The memory holds the frame, not the whole allocation: an
		 * importer takes its size for the payload (v4l2 elements set
		 * bytesused from it, which vb2 refuses past the format's
		 * sizeimage); the rest stays reachable as maxsize. */
		gst_memory_resize(mem, 0, (gssize)mem_extent(self, f, fds[m]));
		GST_MINI_OBJECT_FLAG_SET(mem, GST_MEMORY_FLAG_READONLY);
		s->mem_base[m] = gst_buffer_get_size(s->parent);
		gst_buffer_append_memory(s->parent, mem);
		s->n_mem++;
	}
	g_atomic_int_inc(&self->ctx->refcount);
	s->ctx = self->ctx;
	gst_mini_object_set_qdata(GST_MINI_OBJECT_CAST(s->parent), slot_quark, s, slot_free);
	GST_MINI_OBJECT_CAST(s->parent)->dispose = parent_dispose;
	self->slots[f->index] = s;
	return s;
}

static void set_times(GstZcvSrc *self, GstBuffer *buf, const struct zcv_client_frame *f)
{
	GstClock *clock = gst_element_get_clock(GST_ELEMENT(self));
	GstClock *mono = gst_zcv_monotonic_clock(GST_ELEMENT(self));
	GstClockTime base = gst_element_get_base_time(GST_ELEMENT(self));
	GstClockTime pts = GST_CLOCK_TIME_NONE;

	/* Capture time is CLOCK_MONOTONIC: it is a clock time only on the
	 * monotonic system clock; otherwise the arrival's running time. */
	if (self->ts_mode == ZCV_SRC_TS_CAPTURE && mono && f->timestamp_ns) {
		pts = f->timestamp_ns >= base ? f->timestamp_ns - base : 0;
	} else if (clock) {
		GstClockTime now = gst_clock_get_time(clock);
		pts = now >= base ? now - base : 0;
	}
	if (clock)
		gst_object_unref(clock);
	if (mono)
		gst_object_unref(mono);
	GST_BUFFER_PTS(buf) = pts;
	GST_BUFFER_DTS(buf) = GST_CLOCK_TIME_NONE;
	if (self->fmt.fps_num && self->fmt.fps_den)
		GST_BUFFER_DURATION(buf) =
			gst_util_uint64_scale(GST_SECOND, self->fmt.fps_den, self->fmt.fps_num);
	GST_BUFFER_OFFSET(buf) = f->sequence;
	GST_BUFFER_OFFSET_END(buf) = f->sequence + 1;
	if (f->flags & ZCV_FRAME_FLAG_ERROR)
		GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_CORRUPTED);
	if (!self->have_seq || f->sequence != self->last_seq + 1)
		GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_DISCONT);
	self->have_seq = TRUE;
	self->last_seq = f->sequence;
}

/* Copies frame buffer zb (which it consumes, releasing the frame) into a
 * buffer of the default layout. */
static GstFlowReturn copy_frame(GstZcvSrc *self, GstBuffer *zb, const struct zcv_client_frame *f,
				GstBuffer **ret)
{
	GstBuffer *out = NULL;
	GstFlowReturn fr;
	gboolean ok;

	fr = gst_buffer_pool_acquire_buffer(self->copy_pool, &out, NULL);
	if (fr != GST_FLOW_OK) {
		gst_buffer_unref(zb);
		return fr;
	}
	zcv_client_begin_access(self->ctx->client, f);
	ok = gst_zcv_copy_frame(&self->info, zb, &self->info, out);
	zcv_client_end_access(self->ctx->client, f);
	gst_buffer_copy_into(out, zb, GST_BUFFER_COPY_FLAGS | GST_BUFFER_COPY_TIMESTAMPS, 0, -1);
	gst_buffer_unref(zb);
	if (!ok) {
		gst_buffer_unref(out);
		GST_ELEMENT_ERROR(self, RESOURCE, READ, ("Cannot map a zcv frame to copy it"),
				  (NULL));
		return GST_FLOW_ERROR;
	}
	GST_OBJECT_LOCK(self);
	self->copied_bytes += self->info.size;
	GST_OBJECT_UNLOCK(self);
	self->frames_copied++;
	*ret = out;
	return GST_FLOW_OK;
}

static GstFlowReturn make_buffer(GstZcvSrc *self, struct zcv_client_frame *f, GstBuffer **ret)
{
	struct src_slot *s;
	GstBuffer *zb;
	gsize offset[GST_VIDEO_MAX_PLANES] = { 0 };
	gint stride[GST_VIDEO_MAX_PLANES] = { 0 };
	unsigned held;
	gboolean copy;

	if (self->fmt_pending && f->generation == self->pending_gen && !apply_format(self)) {
		zcv_client_release(self->ctx->client, f);
		return GST_FLOW_NOT_NEGOTIATED;
	}
	if (f->generation != self->gen || f->index >= ZCV_POOL_MAX_BUFFERS) {
		zcv_client_release(self->ctx->client, f);
		return GST_FLOW_CUSTOM_SUCCESS; /* a frame of a past generation: skip */
	}
	/* A frame skipped for us while downstream held (almost) our whole
	 * grant: downstream keeps more than we may lend. From now on the
	 * frame that would fill the grant is copied, so the producer never
	 * has to skip us again. */
	held = zcv_client_held(self->ctx->client);
	if (!self->pressure && self->have_seq && f->sequence > self->last_seq + 1 &&
	    held >= self->fmt.max_hold) {
		gchar *why = g_strdup_printf("downstream holds more frames than the %u the "
					     "producer lets us hold (frames were skipped)",
					     self->fmt.max_hold);
		self->pressure = TRUE;
		say_copy(self, why);
		g_free(why);
	}
	copy = self->copy_all || (self->pressure && held >= self->fmt.max_hold);
	GST_LOG_OBJECT(self, "frame %" G_GUINT64_FORMAT " (buffer %u), held %u, copy %d",
		       (guint64)f->sequence, f->index, held, copy);

	s = slot_get(self, f);
	if (!s) {
		zcv_client_release(self->ctx->client, f);
		return GST_FLOW_ERROR;
	}
	zb = gst_buffer_new();
	for (unsigned m = 0; m < s->n_mem; m++) {
		GstMemory *pm = gst_buffer_peek_memory(s->parent, m);

		/* the size said: an fd memory's share of -1 runs to maxsize */
		gst_buffer_append_memory(zb, gst_memory_share(pm, 0, (gssize)pm->size));
	}
	for (unsigned p = 0; p < f->n_planes && p < GST_VIDEO_MAX_PLANES; p++) {
		offset[p] = s->mem_base[s->plane_mem[p]] + f->offset[p];
		stride[p] = (gint)f->stride[p];
	}
	gst_buffer_add_video_meta_full(
		zb, GST_VIDEO_FRAME_FLAG_NONE, GST_VIDEO_INFO_FORMAT(&self->info),
		GST_VIDEO_INFO_WIDTH(&self->info), GST_VIDEO_INFO_HEIGHT(&self->info), f->n_planes,
		offset, stride);
	gst_buffer_add_parent_buffer_meta(zb, s->parent);
	g_mutex_lock(&self->ctx->lock);
	s->frame = *f;
	s->lent = true;
	g_mutex_unlock(&self->ctx->lock);
	gst_buffer_unref(s->parent); /* the idle ref: the meta holds it now */
	set_times(self, zb, f);
	if (!self->frames_out++)
		GST_INFO_OBJECT(self, "first frame: sequence %" G_GUINT64_FORMAT,
				(guint64)f->sequence);
	if (copy)
		return copy_frame(self, zb, f, ret);
	*ret = zb;
	return GST_FLOW_OK;
}

static GstFlowReturn gst_zcv_src_create(GstPushSrc *psrc, GstBuffer **ret)
{
	GstZcvSrc *self = GST_ZCV_SRC(psrc);
	struct zcv_client *c = self->ctx->client;

	for (;;) {
		struct zcv_client_frame *f = g_queue_pop_head(&self->frames);
		gboolean flushing;
		int r;

		if (f) {
			GstFlowReturn fr = make_buffer(self, f, ret);
			g_free(f);
			if (fr == GST_FLOW_CUSTOM_SUCCESS)
				continue;
			return fr;
		}
		GST_OBJECT_LOCK(self);
		flushing = self->flushing;
		GST_OBJECT_UNLOCK(self);
		if (flushing) {
			GST_DEBUG_OBJECT(self, "flushing");
			return GST_FLOW_FLUSHING;
		}

		struct pollfd pfd[2] = {
			{ .fd = zcv_client_get_fd(c), .events = zcv_client_get_events(c) },
			{ .fd = self->wake_fd, .events = POLLIN },
		};
		/* With a timeout: a release another thread queued because the
		 * socket was full is only sent by the next dispatch. */
		if (poll(pfd, 2, POLL_MS) < 0 && errno != EINTR) {
			GST_ELEMENT_ERROR(self, RESOURCE, READ, ("poll: %s", g_strerror(errno)),
					  (NULL));
			return GST_FLOW_ERROR;
		}
		r = zcv_client_dispatch(c);
		if (r == -EBUSY)
			continue;
		if (r < 0) {
			log_stats(self);
			closed_error(self, r);
			return GST_FLOW_ERROR;
		}
		if (r == 1 && g_queue_is_empty(&self->frames)) {
			GST_INFO_OBJECT(self, "the producer ended the stream");
			log_stats(self);
			return GST_FLOW_EOS;
		}
	}
}

static gboolean gst_zcv_src_unlock(GstBaseSrc *bsrc)
{
	GstZcvSrc *self = GST_ZCV_SRC(bsrc);
	uint64_t one = 1;

	GST_OBJECT_LOCK(self);
	self->flushing = TRUE;
	GST_OBJECT_UNLOCK(self);
	if (self->wake_fd >= 0 && write(self->wake_fd, &one, sizeof(one)) < 0)
		GST_DEBUG_OBJECT(self, "wake: %s", g_strerror(errno));
	return TRUE;
}

static gboolean gst_zcv_src_unlock_stop(GstBaseSrc *bsrc)
{
	GstZcvSrc *self = GST_ZCV_SRC(bsrc);
	uint64_t v;

	GST_OBJECT_LOCK(self);
	self->flushing = FALSE;
	GST_OBJECT_UNLOCK(self);
	if (self->wake_fd >= 0 && read(self->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		GST_DEBUG_OBJECT(self, "drain: %s", g_strerror(errno));
	return TRUE;
}

static gboolean gst_zcv_src_query(GstBaseSrc *bsrc, GstQuery *query)
{
	GstZcvSrc *self = GST_ZCV_SRC(bsrc);

	if (GST_QUERY_TYPE(query) == GST_QUERY_LATENCY && self->have_fmt) {
		GstClockTime frame = 0;
		if (self->fmt.fps_num && self->fmt.fps_den)
			frame = gst_util_uint64_scale(GST_SECOND, self->fmt.fps_den,
						      self->fmt.fps_num);
		/* A frame is captured a frame time before it is here; the
		 * producer keeps it for us up to our grant. */
		gst_query_set_latency(query, TRUE, frame,
				      frame ? frame * MAX(self->fmt.max_hold, 1) :
					      GST_CLOCK_TIME_NONE);
		return TRUE;
	}
	return GST_BASE_SRC_CLASS(gst_zcv_src_parent_class)->query(bsrc, query);
}

static const struct gst_zcv_prop src_props[] = {
	{ PROP_SOCKET, G_STRUCT_OFFSET(GstZcvSrc, socket_path) },
	{ PROP_NAME, G_STRUCT_OFFSET(GstZcvSrc, name) },
	{ PROP_MAX_HOLD, G_STRUCT_OFFSET(GstZcvSrc, max_hold) },
	{ PROP_TIMESTAMP_MODE, G_STRUCT_OFFSET(GstZcvSrc, ts_mode) },
	{ PROP_COPIED_BYTES, G_STRUCT_OFFSET(GstZcvSrc, copied_bytes) },
	{ 0, 0 },
};

static void gst_zcv_src_finalize(GObject *obj)
{
	GstZcvSrc *self = GST_ZCV_SRC(obj);

	g_free(self->socket_path);
	g_free(self->name);
	g_free(self->closed_reason);
	gst_clear_object(&self->fd_alloc);
	gst_clear_object(&self->dmabuf_alloc);
	G_OBJECT_CLASS(gst_zcv_src_parent_class)->finalize(obj);
}

static void gst_zcv_src_init(GstZcvSrc *self)
{
	self->name = g_strdup("zcvsrc");
	self->wake_fd = -1;
	g_queue_init(&self->frames);
	self->fd_alloc = gst_fd_allocator_new();
	self->dmabuf_alloc = gst_dmabuf_allocator_new();
	gst_base_src_set_live(GST_BASE_SRC(self), TRUE);
	gst_base_src_set_format(GST_BASE_SRC(self), GST_FORMAT_TIME);
}

static void gst_zcv_src_class_init(GstZcvSrcClass *klass)
{
	GObjectClass *oc = G_OBJECT_CLASS(klass);
	GstElementClass *ec = GST_ELEMENT_CLASS(klass);
	GstBaseSrcClass *bc = GST_BASE_SRC_CLASS(klass);
	GstPushSrcClass *pc = GST_PUSH_SRC_CLASS(klass);

	GST_DEBUG_CATEGORY_INIT(zcvsrc_debug, "zcvsrc", 0, "zcv consumer source");
	slot_quark = g_quark_from_static_string("zcvsrc-slot");
	gst_zcv_class_set_props(oc, src_props);
	oc->finalize = gst_zcv_src_finalize;
	g_object_class_install_property(
		oc, PROP_SOCKET,
		g_param_spec_string(
			"socket", "Socket", "zcv producer socket (NULL: the default path)", NULL,
			G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
	g_object_class_install_property(
		oc, PROP_NAME,
		g_param_spec_string("client-name", "Client name",
				    "Name the producer shows in its stats", "zcvsrc",
				    G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
					    GST_PARAM_MUTABLE_READY));
	g_object_class_install_property(
		oc, PROP_MAX_HOLD,
		g_param_spec_uint("max-hold", "Max hold",
				  "Frames to ask to hold at once (0: the producer's default)", 0,
				  ZCV_POOL_MAX_BUFFERS, 0,
				  G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
					  GST_PARAM_MUTABLE_READY));
	g_object_class_install_property(
		oc, PROP_TIMESTAMP_MODE,
		g_param_spec_enum("timestamp-mode", "Timestamp mode",
				  "Buffer PTS from the capture time or the arrival's running time",
				  timestamp_mode_get_type(), ZCV_SRC_TS_CAPTURE,
				  G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
					  GST_PARAM_MUTABLE_READY));
	g_object_class_install_property(
		oc, PROP_COPIED_BYTES,
		g_param_spec_uint64("copied-bytes", "Copied bytes",
				    "Bytes copied because downstream could not take a frame "
				    "without a copy",
				    0, G_MAXUINT64, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
	gst_element_class_add_static_pad_template(ec, &src_template);
	gst_element_class_set_static_metadata(ec, "zcv source", "Source/Video",
					      "Receives frames of a zcv stream without a copy",
					      "zcv");
	bc->start = gst_zcv_src_start;
	bc->stop = gst_zcv_src_stop;
	bc->get_caps = gst_zcv_src_get_caps;
	bc->decide_allocation = gst_zcv_src_decide_allocation;
	bc->unlock = gst_zcv_src_unlock;
	bc->unlock_stop = gst_zcv_src_unlock_stop;
	bc->query = gst_zcv_src_query;
	pc->create = gst_zcv_src_create;
}
