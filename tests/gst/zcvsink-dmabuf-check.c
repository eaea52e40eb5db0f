/* SPDX-License-Identifier: MIT */
/*
 * zcvsink's registered DMA-BUF path on a host without a DMA-BUF exporter:
 * memfds wrapped by GStreamer's DMA-BUF allocator pass
 * gst_is_dmabuf_memory() as v4l2src's buffers do, and identity (st_dev,
 * st_ino) works the same on them. Buffers are pushed straight into
 * zcvsink's pad (chain returns after render), each time in a NEW
 * GstMemory over a NEW fd number of the same object, so only identity
 * can recognise them. Checked: learning by cycle without a copy while no
 * consumer streams, registration (path, registered, copied-bytes 0), a
 * stranger object and a new layout fall back and relearn, a system-memory
 * buffer falls back to the memfd pool, and every fd is closed again once
 * the sink stopped. No consumer connects: a memfd announced as DMA-BUF is
 * refused by every client, rightly.
 *
 * Usage: zcvsink-dmabuf-check SOCKET. Exit 0 pass, 1 fail, 77 no plugin.
 */
#include <dirent.h>
#include <fcntl.h>
#include <gst/allocators/allocators.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define W 64
#define H 32
#define STRIDE (W * 4)
#define SIZE (STRIDE * H)
#define N 4

static int failures;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (cond) {                                                                        \
			printf("ok: ");                                                            \
		} else {                                                                           \
			printf("FAIL: ");                                                          \
			failures++;                                                                \
		}                                                                                  \
		printf(__VA_ARGS__);                                                               \
		printf("\n");                                                                      \
	} while (0)

/* Open fds, all or (name) only those on memfds of that name. */
static int count_fds_named(const char *name)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char link[256], want[128];
		ssize_t len;

		if (e->d_name[0] == '.')
			continue;
		if (!name) {
			n++;
			continue;
		}
		len = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);
		link[len > 0 ? len : 0] = '\0';
		snprintf(want, sizeof(want), "/memfd:%s ", name);
		n += !strncmp(link, want, strlen(want));
	}
	closedir(d);
	return name ? n : n - 1;
}

static int count_fds(void)
{
	return count_fds_named(NULL);
}

static GstAllocator *alloc;
static GstPad *src;
static GstElement *sink;
static guint64 pts;

/* One frame in object fd, through a new fd number and a new GstMemory. */
static GstFlowReturn push(int fd, gsize offset)
{
	GstBuffer *buf = gst_buffer_new();
	gsize off[GST_VIDEO_MAX_PLANES] = { offset };
	gint stride[GST_VIDEO_MAX_PLANES] = { STRIDE };

	gst_buffer_append_memory(buf, gst_dmabuf_allocator_alloc(
					      alloc, fcntl(fd, F_DUPFD_CLOEXEC, 3), SIZE + offset));
	gst_buffer_add_video_meta_full(buf, GST_VIDEO_FRAME_FLAG_NONE, GST_VIDEO_FORMAT_BGRx, W, H,
				       1, off, stride);
	GST_BUFFER_PTS(buf) = pts;
	pts += GST_SECOND / 30;
	return gst_pad_push(src, buf);
}

static gchar *path(void)
{
	gchar *p = NULL;

	g_object_get(sink, "path", &p, NULL);
	return p;
}

static guint registered(void)
{
	guint n = 0;

	g_object_get(sink, "registered", &n, NULL);
	return n;
}

static guint64 copied(void)
{
	guint64 n = 0;

	g_object_get(sink, "copied-bytes", &n, NULL);
	return n;
}

static int memfd(void)
{
	int fd = memfd_create("fake-dmabuf", MFD_CLOEXEC);

	if (fd < 0 || ftruncate(fd, SIZE + 4096) < 0)
		abort();
	return fd;
}

int main(int argc, char **argv)
{
	int fds_before, objs[N], stranger, fds_registered;
	GstCaps *caps;
	GstSegment seg;
	gchar *p;
	GstBuffer *sysbuf;

	if (argc != 2) {
		fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
		return 2;
	}
	gst_init(NULL, NULL);
	sink = gst_element_factory_make("zcvsink", NULL);
	if (!sink) {
		printf("SKIP: zcvsink not found (GST_PLUGIN_PATH)\n");
		return 77;
	}
	gst_object_ref_sink(sink);
	alloc = gst_dmabuf_allocator_new();
	/* Counted once GStreamer's own lazily made fds exist. */
	fds_before = count_fds();
	for (int i = 0; i < N; i++)
		objs[i] = memfd();
	stranger = memfd();

	g_object_set(sink, "socket", argv[1], "sync", FALSE, "async", FALSE, NULL);
	src = gst_pad_new("src", GST_PAD_SRC);
	gst_pad_set_active(src, TRUE);
	if (gst_pad_link(src, gst_element_get_static_pad(sink, "sink")) != GST_PAD_LINK_OK ||
	    gst_element_set_state(sink, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
		return 1;
	gst_object_unref(gst_element_get_static_pad(sink, "sink"));
	gst_pad_push_event(src, gst_event_new_stream_start("zcvsink-dmabuf-check"));
	caps = gst_caps_from_string("video/x-raw,format=BGRx,width=64,height=32,framerate=30/1");
	gst_pad_push_event(src, gst_event_new_caps(caps));
	gst_caps_unref(caps);
	gst_segment_init(&seg, GST_FORMAT_TIME);
	gst_pad_push_event(src, gst_event_new_segment(&seg));

	/* learning: one cycle of N objects, nobody to copy for */
	for (int i = 0; i < N; i++)
		CHECK(push(objs[i], 0) == GST_FLOW_OK, "frame %d of the first cycle taken", i);
	CHECK(registered() == 0 && copied() == 0,
	      "while learning: nothing registered, nothing copied (no consumer streams)");
	CHECK(push(objs[0], 0) == GST_FLOW_OK, "the first object again");
	p = path();
	CHECK(registered() == N && !g_strcmp0(p, "dmabuf-registered") && copied() == 0,
	      "its return closed the cycle: %u objects registered, path %s, copied-bytes "
	      "%" G_GUINT64_FORMAT,
	      registered(), p, copied());
	g_free(p);
	fds_registered = count_fds();
	CHECK(count_fds_named("fake-dmabuf") == 2 * N + 1,
	      "the sink keeps one dup of each registered object (%d fds on the %d objects)",
	      count_fds_named("fake-dmabuf"), N + 1);
	for (int k = 0; k < 3 * N; k++)
		push(objs[(k + 1) % N], 0);
	p = path();
	CHECK(registered() == N && !g_strcmp0(p, "dmabuf-registered") && copied() == 0 &&
		      count_fds() == fds_registered,
	      "3 more cycles lent by index: path %s, copied-bytes 0, no fd more", p);
	g_free(p);

	/* a stranger (upstream reallocated): back to the memfd pool, relearn */
	push(stranger, 0);
	CHECK(registered() == 0, "an unknown object: the registered pool retired (registered %u)",
	      registered());
	for (int k = 0; k <= N; k++)
		push(objs[k % N], 0);
	CHECK(registered() == N + 1, "relearned: stranger and the %d objects (%u registered)", N,
	      registered());

	/* a known object with another layout: never lent under the old one */
	push(objs[1], 4096);
	CHECK(registered() == 0, "a known object at another offset: registered pool retired");
	for (int k = 0; k <= N; k++)
		push(objs[(k + 1) % N], 4096);
	CHECK(registered() == N, "relearned at the new offset (%u registered)", registered());

	/* system memory: copied into the memfd pool (no consumer: still copied
	 * and counted, as for any upstream that ignores the pool) */
	sysbuf = gst_buffer_new_allocate(NULL, SIZE, NULL);
	gst_buffer_memset(sysbuf, 0, 0x80, SIZE);
	CHECK(gst_pad_push(src, sysbuf) == GST_FLOW_OK, "a system-memory buffer taken");
	p = path();
	CHECK(registered() == 0 && !g_strcmp0(p, "copy") && copied() == SIZE,
	      "copied into the memfd pool: path %s, copied-bytes %" G_GUINT64_FORMAT, p, copied());
	g_free(p);
	for (int k = 0; k <= N; k++)
		push(objs[k % N], 0);
	CHECK(registered() == N, "and registered again after (%u)", registered());

	/* a buffer whose meta is another size than the caps: copied */
	{
		GstBuffer *b = gst_buffer_new();
		gsize off[GST_VIDEO_MAX_PLANES] = { 0 };
		gint stride[GST_VIDEO_MAX_PLANES] = { STRIDE };

		gst_buffer_append_memory(
			b, gst_dmabuf_allocator_alloc(alloc, fcntl(objs[0], F_DUPFD_CLOEXEC, 3),
						      SIZE));
		gst_buffer_add_video_meta_full(b, GST_VIDEO_FRAME_FLAG_NONE, GST_VIDEO_FORMAT_BGRx,
					       W, H / 2, 1, off, stride);
		gst_pad_push(src, b);
		CHECK(registered() == 0, "a meta that disagrees with the caps: not lent");
	}

	gst_element_set_state(sink, GST_STATE_NULL);
	gst_object_unref(src);
	for (int i = 0; i < N; i++)
		close(objs[i]);
	close(stranger);
	CHECK(count_fds() == fds_before, "after stop: %d fds, %d before: every dup closed",
	      count_fds(), fds_before);
	gst_object_unref(sink);
	gst_object_unref(alloc);
	printf("%s\n", failures ? "FAIL" : "PASS");
	return failures ? 1 : 0;
}
