/* SPDX-License-Identifier: MIT */
/*
 * zcvsink: a zcv producer as a GStreamer sink.
 *
 * The frames live in a pool of sealed memfds (zcv_pool_create_memfd) laid
 * out as GStreamer's default layout for the caps. The sink proposes that
 * pool upstream as a GstBufferPool whose buffers wrap the producer's
 * writable mapping of each memfd (the seal forbids any other writable
 * mapping, so the fd allocator cannot map them for writing), so upstream
 * renders straight into zcv buffers. Every zcv buffer belongs to one
 * GstBuffer of that pool and stays in state PRODUCER except while lent:
 * rendering such a buffer publishes it and keeps a reference until the
 * last consumer released it (the pool's on_free); anything else is copied
 * into a free pool buffer, counted, or dropped when none is free: the
 * sink never waits for a consumer. The zcv server runs on its own thread;
 * one lock serialises it with render.
 *
 * Upstream buffers that already are DMA-BUFs (v4l2src io-mode=dmabuf,
 * libcamerasrc) are registered instead: while the set of objects upstream
 * circulates is learned (zcvsink_registry.c: by st_dev/st_ino, complete
 * when upstream's pool states a fixed count or when one comes back) they
 * are copied like any other; then one zcv pool of kind DMA-BUF is built
 * over dups of their fds (a new generation) and each upstream buffer is
 * published by its index, referenced while lent through the same
 * lent/on_free as the memfd pool. A buffer outside the set, or one whose
 * layout differs, goes back to the copy path and learning starts again.
 */
#include "gstzcv.h"
#include "gstzcv_copy.h"
#include "zcvsink_registry.h"
#include <errno.h>
#include <gst/allocators/allocators.h>
#include <gst/base/gstbasesink.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zcv/pool.h>
#include <zcv/server.h>

GST_DEBUG_CATEGORY_STATIC(zcvsink_debug);
#define GST_CAT_DEFAULT zcvsink_debug

/* ---- the buffer pool upstream renders into ---- */

typedef struct {
	GstBufferPool parent;
	struct zcv_pool *zpool;
	GstVideoInfo info;
	guint next;                            /* next zcv buffer to hand to a new GstBuffer */
	GstBuffer *lent[ZCV_POOL_MAX_BUFFERS]; /* referenced while consumers hold them */
} GstZcvPool;

typedef struct {
	GstBufferPoolClass parent_class;
} GstZcvPoolClass;

static GType gst_zcv_pool_get_type(void);
G_DEFINE_TYPE(GstZcvPool, gst_zcv_pool, GST_TYPE_BUFFER_POOL)
#define GST_ZCV_POOL(o) ((GstZcvPool *)(o))

static GQuark index_quark;

static const gchar **gst_zcv_pool_get_options(GstBufferPool *pool)
{
	static const gchar *options[] = { GST_BUFFER_POOL_OPTION_VIDEO_META, NULL };
	return options;
}

static GstFlowReturn gst_zcv_pool_alloc_buffer(GstBufferPool *bpool, GstBuffer **ret,
					       GstBufferPoolAcquireParams *params)
{
	GstZcvPool *pool = GST_ZCV_POOL(bpool);
	struct zcv_buffer *zb;
	GstBuffer *buf;
	GstVideoInfo *info = &pool->info;

	if (pool->next >= pool->zpool->n_buffers)
		return GST_FLOW_EOS; /* every zcv buffer has its GstBuffer */
	zb = &pool->zpool->buffers[pool->next];
	buf = gst_buffer_new();
	gst_buffer_append_memory(
		buf, gst_memory_new_wrapped(0, zb->map[0], (gsize)pool->zpool->layout.size, 0,
					    (gsize)pool->zpool->layout.size, NULL, NULL));
	gst_buffer_add_video_meta_full(buf, GST_VIDEO_FRAME_FLAG_NONE, GST_VIDEO_INFO_FORMAT(info),
				       GST_VIDEO_INFO_WIDTH(info), GST_VIDEO_INFO_HEIGHT(info),
				       GST_VIDEO_INFO_N_PLANES(info), info->offset, info->stride);
	gst_mini_object_set_qdata(GST_MINI_OBJECT_CAST(buf), index_quark,
				  GUINT_TO_POINTER(pool->next + 1), NULL);
	pool->next++;
	*ret = buf;
	return GST_FLOW_OK;
}

static void gst_zcv_pool_finalize(GObject *obj)
{
	GstZcvPool *pool = GST_ZCV_POOL(obj);

	/* Every GstBuffer wrapping its memory is gone. */
	zcv_pool_destroy(pool->zpool);
	G_OBJECT_CLASS(gst_zcv_pool_parent_class)->finalize(obj);
}

static void gst_zcv_pool_init(GstZcvPool *pool)
{
}

static void gst_zcv_pool_class_init(GstZcvPoolClass *klass)
{
	GstBufferPoolClass *pc = GST_BUFFER_POOL_CLASS(klass);

	G_OBJECT_CLASS(klass)->finalize = gst_zcv_pool_finalize;
	pc->get_options = gst_zcv_pool_get_options;
	pc->alloc_buffer = gst_zcv_pool_alloc_buffer;
	index_quark = g_quark_from_static_string("zcvsink-index");
}

/* The zcv buffer a GstBuffer of pool carries, or -1. */
static int pool_index(GstZcvPool *pool, GstBuffer *buf)
{
	guint i =
		GPOINTER_TO_UINT(gst_mini_object_get_qdata(GST_MINI_OBJECT_CAST(buf), index_quark));

	if (!i || buf->pool != GST_BUFFER_POOL_CAST(pool) || gst_buffer_n_memory(buf) != 1)
		return -1;
	/* Upstream may have replaced the memory. */
	GstMapInfo m;
	int idx = -1;
	if (gst_buffer_map(buf, &m, GST_MAP_READ)) {
		if (m.data == pool->zpool->buffers[i - 1].map[0])
			idx = (int)i - 1;
		gst_buffer_unmap(buf, &m);
	}
	return idx;
}

/* ---- the sink ---- */

/* Where an upstream DMA-BUF buffer's planes are: its zcv layout (plane
 * offsets within their memory objects) and which memory holds each. */
struct buf_layout {
	struct zcv_layout l;
	unsigned n_fds;
	uint8_t plane_fd[ZCV_MAX_PLANES];
};

typedef struct {
	GstBaseSink parent;

	/* properties */
	gchar *socket_path;
	guint max_hold;
	guint64 hold_timeout;
	guint n_buffers;
	guint wait_consumers;

	GMutex lock; /* the server, the pools, the counters */
	GCond cond;  /* consumers joined, or unlock */
	gboolean unlocked;
	struct zcv_server *server;
	GThread *thread;
	int wake_fd;
	gboolean quit;
	/* The served generation is pool (memfds, proposed upstream and
	 * copied into) or reg (registered upstream DMA-BUFs); the other is
	 * NULL. */
	GstZcvPool *pool;
	GstZcvPool *reg;
	GList *old_pools; /* retired, waiting for consumers' releases */
	uint32_t generation;
	GstVideoInfo info;
	GstCaps *caps;
	guint64 frames, copied_frames, dropped;
	guint64 copied_bytes; /* object lock */
	guint fds_at_start;

	/* DMA-BUF registration (streaming thread only) */
	struct zcvsink_registry registry;
	struct buf_layout learn_layout;                    /* of the buffers learned so far */
	struct zcvsink_key reg_keys[ZCV_POOL_MAX_BUFFERS]; /* last registered set */
	guint n_reg_keys;
	guint upstream_fds; /* fds on reg_keys' objects not ours, at registration */
	guint64 pool_frames, registered_frames, unsent, relearned;
	gchar *path;      /* object lock: "pool", "dmabuf-registered", "copy" */
	guint registered; /* object lock: objects in the served registered pool */
} GstZcvSink;

typedef struct {
	GstBaseSinkClass parent_class;
} GstZcvSinkClass;

G_DEFINE_TYPE(GstZcvSink, gst_zcv_sink, GST_TYPE_BASE_SINK)
#define GST_ZCV_SINK(o) ((GstZcvSink *)(o))

enum {
	PROP_0,
	PROP_SOCKET,
	PROP_MAX_HOLD,
	PROP_HOLD_TIMEOUT,
	PROP_BUFFERS,
	PROP_WAIT_CONSUMERS,
	PROP_COPIED_BYTES,
	PROP_PATH,
	PROP_REGISTERED,
};

static GstStaticPadTemplate sink_template =
	GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
				GST_STATIC_CAPS(GST_VIDEO_CAPS_MAKE(GST_ZCV_FORMATS)));

/* A buffer's last consumer released it (inside the server's calls, under
 * the sink's lock): it goes back to PRODUCER, owned by its GstBuffer, and
 * that buffer back to the GstBufferPool for upstream. */
static void on_free(void *data, struct zcv_pool *zpool, struct zcv_buffer *zb)
{
	GstZcvPool *pool = data;
	GstBuffer *buf = pool->lent[zb->index];

	zb->state = ZCV_BUFFER_PRODUCER;
	pool->lent[zb->index] = NULL;
	if (buf)
		gst_buffer_unref(buf);
}

static void set_path(GstZcvSink *self, const gchar *path)
{
	GST_OBJECT_LOCK(self);
	if (g_strcmp0(self->path, path)) {
		g_free(self->path);
		self->path = g_strdup(path);
	}
	GST_OBJECT_UNLOCK(self);
}

static void consumer_joined(void *data, const struct zcv_consumer_info *info)
{
	GstZcvSink *self = data;

	GST_INFO_OBJECT(self, "consumer %u (%s, pid %d) joined: path %s, hold %u", info->id,
			info->name, (int)info->pid, zcv_path_name(info->path), info->max_hold);
	g_cond_broadcast(&self->cond);
}

static void consumer_left(void *data, const struct zcv_consumer_info *info)
{
	GST_INFO_OBJECT(data,
			"consumer %u (%s) left: %s (path %s, sent %" G_GUINT64_FORMAT
			", skipped %" G_GUINT64_FORMAT ")",
			info->id, info->name, info->end_reason, zcv_path_name(info->path),
			info->frames_sent, info->skipped);
}

/* Frees retired pools none of whose buffers a consumer holds. Lock held. */
static void reap_old_pools(GstZcvSink *self)
{
	for (GList *l = self->old_pools; l;) {
		GList *next = l->next;
		GstZcvPool *p = l->data;
		if (!zcv_pool_count(p->zpool, ZCV_BUFFER_LENT)) {
			self->old_pools = g_list_delete_link(self->old_pools, l);
			gst_buffer_pool_set_active(GST_BUFFER_POOL_CAST(p), FALSE);
			gst_object_unref(p);
		}
		l = next;
	}
}

static gpointer server_thread(gpointer data)
{
	GstZcvSink *self = data;

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = zcv_server_get_fd(self->server), .events = POLLIN },
			{ .fd = self->wake_fd, .events = POLLIN },
		};
		int r;

		/* A timeout, so hold timeouts are checked while nobody talks. */
		if (poll(pfd, 2, 100) < 0 && errno != EINTR)
			break;
		g_mutex_lock(&self->lock);
		if (self->quit) {
			g_mutex_unlock(&self->lock);
			break;
		}
		r = zcv_server_dispatch(self->server);
		reap_old_pools(self);
		g_mutex_unlock(&self->lock);
		if (r < 0) {
			GST_ELEMENT_ERROR(self, RESOURCE, FAILED,
					  ("zcv server failed: %s", g_strerror(-r)), (NULL));
			break;
		}
	}
	return NULL;
}

static gboolean gst_zcv_sink_start(GstBaseSink *bsink)
{
	GstZcvSink *self = GST_ZCV_SINK(bsink);

	self->frames = self->copied_frames = self->dropped = 0;
	GST_OBJECT_LOCK(self);
	self->copied_bytes = 0;
	GST_OBJECT_UNLOCK(self);
	self->generation = 0;
	self->pool_frames = self->registered_frames = self->unsent = self->relearned = 0;
	self->n_reg_keys = self->upstream_fds = 0;
	zcvsink_registry_reset(&self->registry, false);
	set_path(self, "none");
	self->quit = FALSE;
	self->unlocked = FALSE;
	self->fds_at_start = gst_zcv_count_buffer_fds();
	self->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (self->wake_fd < 0) {
		GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("eventfd: %s", g_strerror(errno)),
				  (NULL));
		return FALSE;
	}
	return TRUE;
}

static void log_stats(GstZcvSink *self)
{
	GST_INFO_OBJECT(self,
			"stats: frames=%" G_GUINT64_FORMAT " copied_frames=%" G_GUINT64_FORMAT
			" copied_bytes=%" G_GUINT64_FORMAT " dropped=%" G_GUINT64_FORMAT
			" buffer_fds=%u path=%s registered=%u pool_frames=%" G_GUINT64_FORMAT
			" registered_frames=%" G_GUINT64_FORMAT " unsent=%" G_GUINT64_FORMAT
			" relearned=%" G_GUINT64_FORMAT,
			self->frames, self->copied_frames, self->copied_bytes, self->dropped,
			gst_zcv_count_buffer_fds(), self->path, self->registered, self->pool_frames,
			self->registered_frames, self->unsent, self->relearned);
	if (!self->server)
		return;
	/* Each consumer's account, also of those still connected: one that
	 * leaves after our stop never reaches consumer_left. */
	struct zcv_consumer_info *ci = g_new0(struct zcv_consumer_info, 64);
	unsigned n = zcv_server_get_consumers(self->server, ci, 64);
	for (unsigned i = 0; i < n; i++)
		GST_INFO_OBJECT(self,
				"consumer stats: %u (%s) path %s sent %" G_GUINT64_FORMAT
				" skipped %" G_GUINT64_FORMAT " end \"%s\"",
				ci[i].id, ci[i].name, zcv_path_name(ci[i].path), ci[i].frames_sent,
				ci[i].skipped, ci[i].end_reason);
	g_free(ci);
}

/* Our dups of the registered buffers' fds (the registered pool owns them):
 * their numbers and objects, to check at stop that each was closed. */
struct own_fds {
	unsigned n;
	int fd[ZCV_POOL_MAX_BUFFERS * ZCV_MAX_PLANES];
	struct stat st[ZCV_POOL_MAX_BUFFERS * ZCV_MAX_PLANES];
};

static void own_fds_take(const GstZcvPool *reg, struct own_fds *o)
{
	o->n = 0;
	for (unsigned i = 0; reg && i < reg->zpool->n_buffers; i++)
		for (unsigned f = 0; f < reg->zpool->buffers[i].n_fds; f++)
			if (fstat(reg->zpool->buffers[i].fds[f], &o->st[o->n]) == 0)
				o->fd[o->n++] = reg->zpool->buffers[i].fds[f];
}

/* How many of them are still open on the same object. */
static unsigned own_fds_open(const struct own_fds *o)
{
	unsigned open = 0;

	for (unsigned i = 0; i < o->n; i++) {
		struct stat st;

		open += fstat(o->fd[i], &st) == 0 && st.st_dev == o->st[i].st_dev &&
			st.st_ino == o->st[i].st_ino;
	}
	return open;
}

static gboolean gst_zcv_sink_stop(GstBaseSink *bsink)
{
	GstZcvSink *self = GST_ZCV_SINK(bsink);
	uint64_t one = 1;
	struct own_fds own;

	if (self->thread) {
		g_mutex_lock(&self->lock);
		self->quit = TRUE;
		g_mutex_unlock(&self->lock);
		if (write(self->wake_fd, &one, sizeof(one)) < 0)
			GST_DEBUG_OBJECT(self, "wake: %s", g_strerror(errno));
		g_thread_join(self->thread);
		self->thread = NULL;
	}
	g_mutex_lock(&self->lock);
	log_stats(self);
	own_fds_take(self->reg, &own);
	/* Unholds every lent buffer: on_free gives the GstBuffers back. */
	zcv_server_destroy(self->server);
	self->server = NULL;
	reap_old_pools(self);
	g_mutex_unlock(&self->lock);
	if (self->pool) {
		gst_buffer_pool_set_active(GST_BUFFER_POOL_CAST(self->pool), FALSE);
		gst_clear_object(&self->pool);
	}
	/* The server is gone: nobody holds a registered buffer any more. */
	gst_clear_object(&self->reg);
	zcvsink_registry_reset(&self->registry, false);
	gst_clear_caps(&self->caps);
	GST_OBJECT_LOCK(self);
	self->registered = 0;
	GST_OBJECT_UNLOCK(self);
	if (self->n_reg_keys)
		GST_INFO_OBJECT(self,
				"registered fds: upstream %u, ours before stop %u, ours open after "
				"stop %u, all open after stop %u",
				self->upstream_fds, own.n, own_fds_open(&own),
				zcvsink_count_fds_on(self->reg_keys, self->n_reg_keys));
	if (self->wake_fd >= 0)
		close(self->wake_fd);
	self->wake_fd = -1;
	/* The pool's memfds close once upstream gave back its last buffer,
	 * usually before our stop (upstream stops after us otherwise). */
	GST_INFO_OBJECT(self, "buffer fds: at start %u, after stop %u", self->fds_at_start,
			gst_zcv_count_buffer_fds());
	return TRUE;
}

/* A GstZcvPool owning zpool. Every zcv buffer is its owner's (PRODUCER:
 * a GstBuffer of the memfd pool, upstream's buffer for a registered one)
 * but while lent. */
static GstZcvPool *wrap_pool(struct zcv_pool *zpool, const GstVideoInfo *info)
{
	GstZcvPool *pool = g_object_new(gst_zcv_pool_get_type(), NULL);

	for (unsigned i = 0; i < zpool->n_buffers; i++)
		zcv_pool_acquire(zpool);
	gst_object_ref_sink(pool);
	pool->zpool = zpool;
	pool->info = *info;
	zpool->on_free = on_free;
	zpool->on_free_data = pool;
	return pool;
}

/* Gives the server pool (a new generation) and retires the pools served
 * before it until consumers released their buffers. Lock held. */
static int serve(GstZcvSink *self, GstZcvPool *pool, gboolean registered)
{
	int r = zcv_server_set_pool(self->server, pool->zpool);

	if (r < 0)
		return r;
	if (self->pool)
		self->old_pools = g_list_append(self->old_pools, self->pool);
	if (self->reg)
		self->old_pools = g_list_append(self->old_pools, self->reg);
	self->pool = registered ? NULL : pool;
	self->reg = registered ? pool : NULL;
	reap_old_pools(self);
	GST_OBJECT_LOCK(self);
	self->registered = registered ? pool->zpool->n_buffers : 0;
	GST_OBJECT_UNLOCK(self);
	return 0;
}

/* A zcv pool laid out as GStreamer's default layout for info, wrapped in
 * a GstBufferPool whose buffers are all allocated now (each owns its zcv
 * buffer for good). */
static GstZcvPool *make_pool(GstZcvSink *self, GstCaps *caps, const GstVideoInfo *info)
{
	const struct zcv_format_info *fi;
	struct zcv_layout l = { 0 };
	struct zcv_pool *zpool;
	GstZcvPool *pool;
	GstStructure *cfg;
	int r;

	l.fourcc = gst_zcv_format_from_gst(GST_VIDEO_INFO_FORMAT(info));
	fi = zcv_format_lookup(l.fourcc);
	if (!fi)
		return NULL;
	l.width = GST_VIDEO_INFO_WIDTH(info);
	l.height = GST_VIDEO_INFO_HEIGHT(info);
	l.n_planes = GST_VIDEO_INFO_N_PLANES(info);
	for (unsigned p = 0; p < l.n_planes; p++) {
		l.planes[p].offset = (uint32_t)GST_VIDEO_INFO_PLANE_OFFSET(info, p);
		l.planes[p].stride = (uint32_t)GST_VIDEO_INFO_PLANE_STRIDE(info, p);
		l.planes[p].size = l.planes[p].stride * zcv_format_plane_lines(fi, p, l.height);
	}
	l.size = GST_VIDEO_INFO_SIZE(info);
	r = zcv_pool_create_memfd(&l, self->n_buffers, ++self->generation, &zpool);
	if (r < 0) {
		GST_ELEMENT_ERROR(
			self, RESOURCE, NO_SPACE_LEFT,
			("Cannot create %u zcv buffers: %s", self->n_buffers, g_strerror(-r)),
			(NULL));
		return NULL;
	}
	pool = wrap_pool(zpool, info);
	cfg = gst_buffer_pool_get_config(GST_BUFFER_POOL_CAST(pool));
	gst_buffer_pool_config_set_params(cfg, caps, (guint)info->size, self->n_buffers,
					  self->n_buffers);
	gst_buffer_pool_config_add_option(cfg, GST_BUFFER_POOL_OPTION_VIDEO_META);
	if (!gst_buffer_pool_set_config(GST_BUFFER_POOL_CAST(pool), cfg) ||
	    !gst_buffer_pool_set_active(GST_BUFFER_POOL_CAST(pool), TRUE)) {
		GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("Cannot activate the zcv pool"),
				  (NULL));
		gst_object_unref(pool);
		return NULL;
	}
	return pool;
}

static gboolean gst_zcv_sink_set_caps(GstBaseSink *bsink, GstCaps *caps)
{
	GstZcvSink *self = GST_ZCV_SINK(bsink);
	GstVideoInfo info;
	GstZcvPool *pool;
	int r = 0;

	if (!gst_video_info_from_caps(&info, caps))
		return FALSE;
	if ((self->pool || self->reg) && gst_video_info_is_equal(&info, &self->info))
		return TRUE;
	/* Upstream's buffers of the old caps are not this stream's. */
	zcvsink_registry_reset(&self->registry, false);
	pool = make_pool(self, caps, &info);
	if (!pool)
		return FALSE;
	g_mutex_lock(&self->lock);
	if (!self->server) {
		struct zcv_server_config cfg = {
			.socket_path = self->socket_path,
			.max_hold = self->max_hold,
			.hold_timeout_ns = self->hold_timeout,
			.fps_num = (uint32_t)GST_VIDEO_INFO_FPS_N(&info),
			.fps_den = (uint32_t)MAX(GST_VIDEO_INFO_FPS_D(&info), 1),
			.colorspace = gst_zcv_colorimetry_to_v4l2(&info),
		};
		struct zcv_server_callbacks cbs = {
			.consumer_joined = consumer_joined,
			.consumer_left = consumer_left,
		};
		r = zcv_server_create(&cfg, &cbs, self, pool->zpool, &self->server);
	} else {
		r = serve(self, pool, FALSE);
	}
	if (r < 0) {
		g_mutex_unlock(&self->lock);
		gst_object_unref(pool);
		GST_ELEMENT_ERROR(self, RESOURCE, OPEN_WRITE,
				  ("Cannot serve zcv socket %s: %s",
				   self->socket_path ? self->socket_path : "(default)",
				   g_strerror(-r)),
				  ("zcv server: %d", r));
		return FALSE;
	}
	self->pool = pool;
	self->info = info;
	gst_caps_replace(&self->caps, caps);
	reap_old_pools(self);
	g_mutex_unlock(&self->lock);
	if (!self->thread)
		self->thread = g_thread_new("zcvsink-server", server_thread, self);
	GST_INFO_OBJECT(self, "serving %s: generation %u, %u buffers of %" G_GSIZE_FORMAT " bytes",
			zcv_server_socket_path(self->server), self->generation, self->n_buffers,
			info.size);
	return TRUE;
}

static gboolean gst_zcv_sink_propose_allocation(GstBaseSink *bsink, GstQuery *query)
{
	GstZcvSink *self = GST_ZCV_SINK(bsink);
	GstCaps *caps;
	GstVideoInfo info;
	gboolean need_pool;

	gst_query_parse_allocation(query, &caps, &need_pool);
	if (!caps || !gst_video_info_from_caps(&info, caps))
		return FALSE;
	gst_query_add_allocation_meta(query, GST_VIDEO_META_API_TYPE, NULL);
	/* Only the pool of the negotiated caps: it is the one we publish from. */
	if (self->pool && gst_video_info_is_equal(&info, &self->info))
		gst_query_add_allocation_pool(query, GST_BUFFER_POOL_CAST(self->pool),
					      (guint)info.size, self->n_buffers, self->n_buffers);
	return TRUE;
}

/* Waits (interruptibly) for wait-consumers consumers before the first
 * frame: the only wait on consumers, and only when asked for. */
static gboolean wait_for_consumers(GstZcvSink *self)
{
	gboolean ok;

	g_mutex_lock(&self->lock);
	while (self->wait_consumers && !self->unlocked &&
	       zcv_server_streaming_count(self->server) < self->wait_consumers)
		g_cond_wait(&self->cond, &self->lock);
	ok = !self->unlocked;
	if (ok)
		self->wait_consumers = 0;
	g_mutex_unlock(&self->lock);
	return ok;
}

/* The frame's time on CLOCK_MONOTONIC, zcv's capture time: the buffer's
 * clock time when the pipeline runs on the monotonic system clock, else
 * now. */
static uint64_t frame_time(GstZcvSink *self, GstBuffer *buf)
{
	GstBaseSink *bs = GST_BASE_SINK(self);
	GstClock *clock = gst_zcv_monotonic_clock(GST_ELEMENT(self));
	uint64_t now = (uint64_t)g_get_monotonic_time() * 1000;
	GstClockTime rt = GST_CLOCK_TIME_NONE;

	if (clock && GST_BUFFER_PTS_IS_VALID(buf)) {
		GST_OBJECT_LOCK(self);
		rt = gst_segment_to_running_time(&bs->segment, GST_FORMAT_TIME,
						 GST_BUFFER_PTS(buf));
		GST_OBJECT_UNLOCK(self);
	}
	if (clock)
		gst_object_unref(clock);
	if (!GST_CLOCK_TIME_IS_VALID(rt))
		return now;
	return gst_element_get_base_time(GST_ELEMENT(self)) + rt;
}

/* Where buf's planes are when every memory of it is a DMA-BUF, one for
 * all planes or one per plane, laid out as its GstVideoMeta (or the
 * caps) say. fds get the memories' fds (borrowed from buf). FALSE when
 * buf cannot be lent as it is. */
static gboolean dmabuf_layout(GstZcvSink *self, GstBuffer *buf, struct buf_layout *ret, int *fds)
{
	const GstVideoInfo *info = &self->info;
	GstVideoMeta *vm = gst_buffer_get_video_meta(buf);
	guint n_mem = gst_buffer_n_memory(buf), n_planes = GST_VIDEO_INFO_N_PLANES(info);
	const struct zcv_format_info *fi;
	struct buf_layout bl = { 0 };

	if (n_mem != 1 && n_mem != n_planes)
		return FALSE;
	for (guint m = 0; m < n_mem; m++) {
		GstMemory *mem = gst_buffer_peek_memory(buf, m);

		if (!gst_is_dmabuf_memory(mem))
			return FALSE;
		fds[m] = gst_dmabuf_memory_get_fd(mem);
	}
	/* A meta that does not describe the negotiated format and size is
	 * not a layout we may publish under these caps. */
	if (vm && (vm->format != GST_VIDEO_INFO_FORMAT(info) ||
		   vm->width != (guint)GST_VIDEO_INFO_WIDTH(info) ||
		   vm->height != (guint)GST_VIDEO_INFO_HEIGHT(info) || vm->n_planes != n_planes))
		return FALSE;
	bl.l.fourcc = gst_zcv_format_from_gst(GST_VIDEO_INFO_FORMAT(info));
	fi = zcv_format_lookup(bl.l.fourcc);
	if (!fi)
		return FALSE;
	bl.l.width = GST_VIDEO_INFO_WIDTH(info);
	bl.l.height = GST_VIDEO_INFO_HEIGHT(info);
	bl.l.n_planes = n_planes;
	bl.n_fds = n_mem;
	for (guint p = 0; p < n_planes; p++) {
		gsize off = vm ? vm->offset[p] : GST_VIDEO_INFO_PLANE_OFFSET(info, p);
		gint stride = vm ? vm->stride[p] : GST_VIDEO_INFO_PLANE_STRIDE(info, p);
		guint idx, len;
		gsize skip;
		guint64 size, at;
		GstMemory *mem;

		if (stride <= 0 || !gst_buffer_find_memory(buf, off, 1, &idx, &len, &skip))
			return FALSE;
		mem = gst_buffer_peek_memory(buf, idx);
		size = (guint64)stride * zcv_format_plane_lines(fi, p, bl.l.height);
		at = (guint64)mem->offset + skip;
		/* The plane lies in one memory, and fits the 32-bit wire fields. */
		if (skip + size > mem->size || at + size > G_MAXUINT32)
			return FALSE;
		bl.l.planes[p].offset = (uint32_t)at;
		bl.l.planes[p].stride = (uint32_t)stride;
		bl.l.planes[p].size = (uint32_t)size;
		bl.plane_fd[p] = (uint8_t)idx;
		bl.l.size = MAX(bl.l.size, at + size);
	}
	if (zcv_layout_validate(&bl.l) < 0)
		return FALSE;
	*ret = bl;
	return TRUE;
}

/* Upstream's buffer count when its pool states a fixed one, else 0. */
static unsigned upstream_count(GstBuffer *buf)
{
	GstBufferPool *bp = buf->pool ? gst_object_ref(buf->pool) : NULL;
	GstStructure *cfg;
	guint min = 0, max = 0;

	if (!bp)
		return 0;
	cfg = gst_buffer_pool_get_config(bp);
	if (!gst_buffer_pool_config_get_params(cfg, NULL, NULL, &min, &max) || min != max)
		min = 0;
	gst_structure_free(cfg);
	gst_object_unref(bp);
	return min;
}

/* serve() under the lock; on failure pool (taken) is dropped. */
static gboolean serve_new(GstZcvSink *self, GstZcvPool *pool, gboolean registered)
{
	int r;

	g_mutex_lock(&self->lock);
	r = serve(self, pool, registered);
	g_mutex_unlock(&self->lock);
	if (r < 0)
		gst_object_unref(pool);
	return r == 0;
}

/* Builds a DMA-BUF zcv pool over the learned set (the registry's dups,
 * taken by the pool) and serves it. FALSE when it cannot be. */
static gboolean register_set(GstZcvSink *self, const struct buf_layout *bl)
{
	struct zcvsink_registry *reg = &self->registry;
	struct zcv_pool *zpool = NULL;
	guint ours = 0;
	int r;

	r = zcv_pool_create_empty(&bl->l, reg->n, self->generation + 1, ZCV_MEMORY_DMABUF, &zpool);
	for (unsigned i = 0; r == 0 && i < reg->n; i++) {
		int fds[ZCV_MAX_PLANES];
		unsigned n = zcvsink_registry_take_fds(reg, i, fds);

		r = n == bl->n_fds ? zcv_pool_set_fds(zpool, i, n, fds, bl->plane_fd) : -EINVAL;
		ours += n;
		if (n && n != bl->n_fds)
			for (unsigned f = 0; f < n; f++)
				close(fds[f]);
	}
	if (r < 0) {
		if (zpool)
			zcv_pool_destroy(zpool);
		GST_WARNING_OBJECT(self, "cannot register upstream's %u DMA-BUF buffers: %s",
				   reg->n, g_strerror(-r));
		return FALSE;
	}
	if (!serve_new(self, wrap_pool(zpool, &self->info), TRUE))
		return FALSE;
	self->generation++;
	self->n_reg_keys = reg->n;
	memcpy(self->reg_keys, reg->keys, sizeof(reg->keys[0]) * reg->n);
	self->upstream_fds = zcvsink_count_fds_on(self->reg_keys, self->n_reg_keys) - ours;
	GST_INFO_OBJECT(self,
			"registered %u DMA-BUF buffers of upstream (generation %u, %u fds): lent "
			"without copy from now on",
			reg->n, self->generation, ours);
	return TRUE;
}

/* Serves a new memfd pool to copy into, after registered buffers. */
static gboolean serve_memfd(GstZcvSink *self, const char *why)
{
	GstZcvPool *pool = make_pool(self, self->caps, &self->info);

	if (!pool || !serve_new(self, pool, FALSE))
		return FALSE;
	self->relearned++;
	GST_INFO_OBJECT(self, "%s: copying again (generation %u) while learning upstream's buffers",
			why, self->generation);
	return TRUE;
}

enum reg_outcome { REG_LEND, REG_COPY, REG_DROP };

/* The registered path for a DMA-BUF buf: learns, registers, or finds its
 * zcv buffer (*ret_index). */
static enum reg_outcome registered_path(GstZcvSink *self, GstBuffer *buf, unsigned *ret_index)
{
	struct zcvsink_registry *reg = &self->registry;
	struct buf_layout bl;
	struct zcvsink_key key;
	int fds[ZCV_MAX_PLANES];
	unsigned idx = 0;
	int res;

	if (!dmabuf_layout(self, buf, &bl, fds) || zcvsink_key_from_fds(fds, bl.n_fds, &key) < 0) {
		if (self->reg && !serve_memfd(self, "a buffer that cannot be lent as it is"))
			return REG_DROP;
		zcvsink_registry_reset(reg, false);
		return REG_COPY;
	}
	/* Every buffer of a set shares one layout: a new one starts anew. */
	if (!reg->complete && reg->n && memcmp(&bl, &self->learn_layout, sizeof(bl)))
		zcvsink_registry_reset(reg, false);
	if (!reg->complete && !reg->n)
		self->learn_layout = bl;
	res = zcvsink_registry_feed(reg, &key, fds, reg->complete ? 0 : upstream_count(buf), &idx);
	if (res == ZCVSINK_REG_COMPLETE && !register_set(self, &bl)) {
		zcvsink_registry_reset(reg, true);
		return REG_COPY;
	}
	if (res == ZCVSINK_REG_KNOWN && memcmp(&bl, &self->learn_layout, sizeof(bl))) {
		/* Upstream reused an object with another layout. */
		zcvsink_registry_reset(reg, false);
		res = ZCVSINK_REG_UNKNOWN;
	}
	if (res == ZCVSINK_REG_UNKNOWN) {
		self->learn_layout = bl;
		if (self->reg &&
		    !serve_memfd(self, "upstream sent a buffer outside the registered set"))
			return REG_DROP;
		return REG_COPY;
	}
	if (res != ZCVSINK_REG_COMPLETE && res != ZCVSINK_REG_KNOWN) {
		if (self->reg && !serve_memfd(self, "cannot learn upstream's buffers"))
			return REG_DROP;
		return REG_COPY;
	}
	/* The same object pushed again while consumers hold it: nothing to lend. */
	if (self->reg->zpool->buffers[idx].state != ZCV_BUFFER_PRODUCER)
		return REG_DROP;
	*ret_index = idx;
	return REG_LEND;
}

/* Copies buf into a free buffer of the memfd pool (*ret_out, *ret_index). */
static GstFlowReturn copy_frame(GstZcvSink *self, GstBuffer *buf, GstBuffer **ret_out,
				int *ret_index)
{
	GstZcvPool *pool = self->pool;
	GstBufferPoolAcquireParams params = { .flags = GST_BUFFER_POOL_ACQUIRE_FLAG_DONTWAIT };
	GstBuffer *out = NULL;
	gboolean ok;

	/* Never wait for a consumer: with no free buffer the frame is dropped. */
	if (gst_buffer_pool_acquire_buffer(GST_BUFFER_POOL_CAST(pool), &out, &params) !=
	    GST_FLOW_OK)
		return GST_FLOW_CUSTOM_SUCCESS;
	ok = gst_zcv_copy_frame(&self->info, buf, &pool->info, out);
	if (!ok) {
		gst_buffer_unref(out);
		GST_ELEMENT_ERROR(self, STREAM, FAILED, ("Cannot copy a frame into zcv"), (NULL));
		return GST_FLOW_ERROR;
	}
	GST_OBJECT_LOCK(self);
	self->copied_bytes += pool->info.size;
	GST_OBJECT_UNLOCK(self);
	self->copied_frames++;
	*ret_index = pool_index(pool, out);
	*ret_out = out;
	return GST_FLOW_OK;
}

static GstFlowReturn gst_zcv_sink_render(GstBaseSink *bsink, GstBuffer *buf)
{
	GstZcvSink *self = GST_ZCV_SINK(bsink);
	GstZcvPool *pool;
	struct zcv_frame_meta meta = { 0 };
	GstBuffer *out = NULL;
	enum reg_outcome ro = REG_COPY;
	unsigned ridx = 0;
	int idx = -1;

	if (!self->pool && !self->reg)
		return GST_FLOW_NOT_NEGOTIATED;
	if (self->wait_consumers && !wait_for_consumers(self))
		return GST_FLOW_FLUSHING;
	if (self->pool)
		idx = pool_index(self->pool, buf);
	if (idx < 0 && gst_is_dmabuf_memory(gst_buffer_peek_memory(buf, 0))) {
		ro = registered_path(self, buf, &ridx);
	} else if (idx < 0 && self->reg) {
		zcvsink_registry_reset(&self->registry, false);
		if (!serve_memfd(self, "a buffer that is no DMA-BUF"))
			ro = REG_DROP;
	}
	pool = ro == REG_LEND ? self->reg : self->pool;
	if (ro == REG_DROP) {
		g_mutex_lock(&self->lock);
		self->dropped++;
		self->frames++;
		g_mutex_unlock(&self->lock);
		return GST_FLOW_OK;
	}
	if (ro == REG_LEND) {
		idx = (int)ridx;
		out = gst_buffer_ref(buf);
		self->registered_frames++;
		set_path(self, "dmabuf-registered");
	} else if (idx >= 0) {
		out = gst_buffer_ref(buf);
		self->pool_frames++;
		set_path(self, "pool");
	} else {
		GstFlowReturn fr;

		if (!self->pool)
			return GST_FLOW_NOT_NEGOTIATED;

		/* A DMA-BUF copied while its set is learned, with nobody to
		 * send it to: the copy would go nowhere. */
		if (gst_is_dmabuf_memory(gst_buffer_peek_memory(buf, 0))) {
			g_mutex_lock(&self->lock);
			gboolean nobody = !zcv_server_streaming_count(self->server);
			if (nobody) {
				self->unsent++;
				self->frames++;
			}
			g_mutex_unlock(&self->lock);
			if (nobody)
				return GST_FLOW_OK;
		}
		fr = copy_frame(self, buf, &out, &idx);
		if (fr == GST_FLOW_CUSTOM_SUCCESS) {
			g_mutex_lock(&self->lock);
			self->dropped++;
			g_mutex_unlock(&self->lock);
			return GST_FLOW_OK;
		}
		if (fr != GST_FLOW_OK)
			return fr;
		set_path(self, "copy");
	}
	meta.sequence = self->frames;
	meta.timestamp_ns = frame_time(self, buf);
	if (GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_CORRUPTED))
		meta.flags |= ZCV_FRAME_FLAG_ERROR;
	g_mutex_lock(&self->lock);
	/* The reference goes with the last consumer's release (on_free, at
	 * once when nobody takes it). */
	pool->lent[idx] = out;
	if (zcv_server_publish(self->server, (unsigned)idx, &meta) < 0) {
		pool->lent[idx] = NULL;
		gst_buffer_unref(out);
		self->dropped++;
	}
	self->frames++;
	g_mutex_unlock(&self->lock);
	return GST_FLOW_OK;
}

static gboolean gst_zcv_sink_event(GstBaseSink *bsink, GstEvent *event)
{
	GstZcvSink *self = GST_ZCV_SINK(bsink);

	if (GST_EVENT_TYPE(event) == GST_EVENT_EOS) {
		g_mutex_lock(&self->lock);
		if (self->server)
			zcv_server_end(self->server, 0, "end of stream");
		g_mutex_unlock(&self->lock);
	}
	return GST_BASE_SINK_CLASS(gst_zcv_sink_parent_class)->event(bsink, event);
}

static gboolean gst_zcv_sink_unlock(GstBaseSink *bsink)
{
	GstZcvSink *self = GST_ZCV_SINK(bsink);

	g_mutex_lock(&self->lock);
	self->unlocked = TRUE;
	g_cond_broadcast(&self->cond);
	g_mutex_unlock(&self->lock);
	return TRUE;
}

static gboolean gst_zcv_sink_unlock_stop(GstBaseSink *bsink)
{
	GstZcvSink *self = GST_ZCV_SINK(bsink);

	g_mutex_lock(&self->lock);
	self->unlocked = FALSE;
	g_mutex_unlock(&self->lock);
	return TRUE;
}

static const struct gst_zcv_prop sink_props[] = {
	{ PROP_SOCKET, G_STRUCT_OFFSET(GstZcvSink, socket_path) },
	{ PROP_MAX_HOLD, G_STRUCT_OFFSET(GstZcvSink, max_hold) },
	{ PROP_HOLD_TIMEOUT, G_STRUCT_OFFSET(GstZcvSink, hold_timeout) },
	{ PROP_BUFFERS, G_STRUCT_OFFSET(GstZcvSink, n_buffers) },
	{ PROP_WAIT_CONSUMERS, G_STRUCT_OFFSET(GstZcvSink, wait_consumers) },
	{ PROP_COPIED_BYTES, G_STRUCT_OFFSET(GstZcvSink, copied_bytes) },
	{ PROP_PATH, G_STRUCT_OFFSET(GstZcvSink, path) },
	{ PROP_REGISTERED, G_STRUCT_OFFSET(GstZcvSink, registered) },
	{ 0, 0 },
};

static void gst_zcv_sink_finalize(GObject *obj)
{
	GstZcvSink *self = GST_ZCV_SINK(obj);

	g_free(self->socket_path);
	g_free(self->path);
	zcvsink_registry_reset(&self->registry, false);
	g_mutex_clear(&self->lock);
	g_cond_clear(&self->cond);
	G_OBJECT_CLASS(gst_zcv_sink_parent_class)->finalize(obj);
}

static void gst_zcv_sink_init(GstZcvSink *self)
{
	self->max_hold = 2;
	self->hold_timeout = GST_SECOND;
	self->n_buffers = 6;
	self->wake_fd = -1;
	zcvsink_registry_init(&self->registry);
	self->path = g_strdup("none");
	g_mutex_init(&self->lock);
	g_cond_init(&self->cond);
	/* A last sample would pin one more zcv buffer. */
	gst_base_sink_set_last_sample_enabled(GST_BASE_SINK(self), FALSE);
}

static void gst_zcv_sink_class_init(GstZcvSinkClass *klass)
{
	GObjectClass *oc = G_OBJECT_CLASS(klass);
	GstElementClass *ec = GST_ELEMENT_CLASS(klass);
	GstBaseSinkClass *bc = GST_BASE_SINK_CLASS(klass);
	GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY;

	GST_DEBUG_CATEGORY_INIT(zcvsink_debug, "zcvsink", 0, "zcv producer sink");
	gst_zcv_class_set_props(oc, sink_props);
	oc->finalize = gst_zcv_sink_finalize;
	g_object_class_install_property(
		oc, PROP_SOCKET,
		g_param_spec_string("socket", "Socket", "Socket to serve (NULL: the default path)",
				    NULL, rw));
	g_object_class_install_property(oc, PROP_MAX_HOLD,
					g_param_spec_uint("max-hold", "Max hold",
							  "Frames one consumer may hold at once", 1,
							  ZCV_POOL_MAX_BUFFERS, 2, rw));
	g_object_class_install_property(
		oc, PROP_HOLD_TIMEOUT,
		g_param_spec_uint64("hold-timeout", "Hold timeout",
				    "Evict a consumer holding a frame longer (ns)", 1, G_MAXUINT64,
				    GST_SECOND, rw));
	g_object_class_install_property(oc, PROP_BUFFERS,
					g_param_spec_uint("buffers", "Buffers",
							  "zcv buffers in the pool", 3,
							  ZCV_POOL_MAX_BUFFERS, 6, rw));
	g_object_class_install_property(
		oc, PROP_WAIT_CONSUMERS,
		g_param_spec_uint("wait-consumers", "Wait for consumers",
				  "Hold the first frame until this many consumers stream", 0, 64, 0,
				  rw));
	g_object_class_install_property(
		oc, PROP_COPIED_BYTES,
		g_param_spec_uint64("copied-bytes", "Copied bytes",
				    "Bytes copied because upstream did not render into the zcv "
				    "pool",
				    0, G_MAXUINT64, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
	g_object_class_install_property(
		oc, PROP_PATH,
		g_param_spec_string("path", "Path",
				    "How the last frame went out: pool (upstream rendered into "
				    "the zcv pool), dmabuf-registered (upstream's DMA-BUF lent "
				    "without copy), copy, or none yet",
				    "none", G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
	g_object_class_install_property(
		oc, PROP_REGISTERED,
		g_param_spec_uint(
			"registered", "Registered",
			"Upstream DMA-BUF buffers registered in the served pool (0: none)", 0,
			ZCV_POOL_MAX_BUFFERS, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
	gst_element_class_add_static_pad_template(ec, &sink_template);
	gst_element_class_set_static_metadata(ec, "zcv sink", "Sink/Video",
					      "Serves frames as a zcv stream, zero-copy when "
					      "upstream renders into its pool or sends DMA-BUFs",
					      "zcv");
	bc->start = gst_zcv_sink_start;
	bc->stop = gst_zcv_sink_stop;
	bc->set_caps = gst_zcv_sink_set_caps;
	bc->propose_allocation = gst_zcv_sink_propose_allocation;
	bc->render = gst_zcv_sink_render;
	bc->event = gst_zcv_sink_event;
	bc->unlock = gst_zcv_sink_unlock;
	bc->unlock_stop = gst_zcv_sink_unlock_stop;
}
