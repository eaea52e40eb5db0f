/* SPDX-License-Identifier: MIT */
/*
 * zcv-bench-gst: GStreamer's shmsink -> shmsrc with the same per-frame work
 * as zcv-bench's other cases (bench-peer.h): the producer writes a small
 * header into a frame it allocates from shmsink's own allocator (so shmsink
 * sends it without a copy; no render; "memfd" in the report counts such
 * frames), the consumer reads the header back for latency. Unpaced: the
 * producer pushes as fast as shmsink takes them (appsrc blocks at two
 * frames queued). Producer CPU runs until the consumer left after the last
 * frame, so shmsink's streaming thread is counted; latency includes the
 * queueing of an unpaced run.
 *
 *   zcv-bench-gst producer SOCKET WxH FRAMES WARMUP REPORT
 *   zcv-bench-gst consumer SOCKET WxH WARMUP REPORT
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>

#include "bench-peer.h"

static atomic_int connected;

static void on_client(GstElement *sink, gint fd, gpointer data)
{
	atomic_fetch_add((atomic_int *)data, 1);
}

struct win {
	bool open;
	uint64_t cpu0, wall0;
};

static void win_frame(struct win *w, struct bench_report *rep)
{
	if (!w->open) {
		w->open = true;
		w->cpu0 = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
		w->wall0 = bench_clock_ns(CLOCK_MONOTONIC);
	}
	rep->frames++;
}

static void win_end(struct win *w, struct bench_report *rep)
{
	if (!w->open)
		return;
	rep->cpu_ns = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID) - w->cpu0;
	rep->wall_ns = bench_clock_ns(CLOCK_MONOTONIC) - w->wall0;
}

static int producer(const char *sock, uint32_t w, uint32_t h, uint64_t n, uint64_t warmup,
		    struct bench_report *rep)
{
	uint64_t size = (uint64_t)w * h * 3 / 2, deadline;
	char desc[512];
	GstElement *pipe, *src, *sink;
	GstAllocator *alloc = NULL;
	GstAllocationParams params;
	GstQuery *q;
	GstCaps *caps;
	GstPad *pad;
	struct win win = { 0 };
	int r = -EIO;

	snprintf(desc, sizeof(desc),
		 "appsrc name=src format=time block=true max-bytes=%llu "
		 "caps=video/x-raw,format=NV12,width=%u,height=%u,"
		 "framerate=0/1 ! shmsink name=sink socket-path=%s shm-size=%llu "
		 "wait-for-connection=false sync=false",
		 (unsigned long long)size * 2, w, h, sock,
		 (unsigned long long)(size * 16 > (64u << 20) ? size * 16 : 64u << 20));
	pipe = gst_parse_launch(desc, NULL);
	if (!pipe)
		return -EINVAL;
	src = gst_bin_get_by_name(GST_BIN(pipe), "src");
	sink = gst_bin_get_by_name(GST_BIN(pipe), "sink");
	/* connected counts 1 when the consumer comes, 2 when it leaves */
	g_signal_connect(sink, "client-connected", G_CALLBACK(on_client), &connected);
	g_signal_connect(sink, "client-disconnected", G_CALLBACK(on_client), &connected);
	gst_element_set_state(pipe, GST_STATE_PLAYING);
	printf("ready\n");
	fflush(stdout);
	deadline = bench_clock_ns(CLOCK_MONOTONIC) + 10000000000ull;
	while (!atomic_load(&connected) && bench_clock_ns(CLOCK_MONOTONIC) < deadline)
		g_usleep(1000);
	if (!atomic_load(&connected))
		goto out;
	/* shmsink's allocator: memory in its shm area, sent without a copy */
	caps = gst_caps_from_string("video/x-raw,format=NV12");
	gst_caps_set_simple(caps, "width", G_TYPE_INT, (int)w, "height", G_TYPE_INT, (int)h,
			    "framerate", GST_TYPE_FRACTION, 0, 1, NULL);
	q = gst_query_new_allocation(caps, TRUE);
	pad = gst_element_get_static_pad(src, "src");
	if (gst_pad_peer_query(pad, q) && gst_query_get_n_allocation_params(q) > 0)
		gst_query_parse_nth_allocation_param(q, 0, &alloc, &params);
	gst_object_unref(pad);
	gst_query_unref(q);
	gst_caps_unref(caps);
	if (!alloc) {
		fprintf(stderr, "zcv-bench-gst: shmsink offers no allocator\n");
		goto out;
	}
	for (uint64_t seq = 0; seq < n; seq++) {
		GstBuffer *b = gst_buffer_new_allocate(alloc, size, &params);
		GstMapInfo m;

		if (!b || !gst_buffer_map(b, &m, GST_MAP_WRITE)) {
			rep->bad++;
			goto out;
		}
		if (seq >= warmup)
			win_frame(&win, rep);
		/* shmsink copies memory that is not from its area (full area) */
		if (gst_buffer_peek_memory(b, 0)->allocator == alloc)
			rep->memfd++;
		bench_hdr_write(m.data, seq, seq + 1 == n);
		gst_buffer_unmap(b, &m);
		if (gst_app_src_push_buffer(GST_APP_SRC(src), b) != GST_FLOW_OK)
			goto out;
	}
	/* the window ends when the consumer, having read the last frame,
	 * leaves: shmsink's streaming thread works after the last push */
	deadline = bench_clock_ns(CLOCK_MONOTONIC) + 10000000000ull;
	while (atomic_load(&connected) < 2 && bench_clock_ns(CLOCK_MONOTONIC) < deadline)
		g_usleep(1000);
	win_end(&win, rep);
	r = 0;
out:
	gst_element_set_state(pipe, GST_STATE_NULL);
	if (alloc)
		gst_object_unref(alloc);
	gst_object_unref(src);
	gst_object_unref(sink);
	gst_object_unref(pipe);
	return r;
}

static int consumer(const char *sock, uint32_t w, uint32_t h, uint64_t warmup,
		    struct bench_report *rep)
{
	char desc[512];
	GstElement *pipe, *sink;
	struct win win = { 0 };
	uint64_t next = 0;
	int r = -EIO;

	snprintf(desc, sizeof(desc),
		 "shmsrc socket-path=%s is-live=true ! video/x-raw,format=NV12,width=%u,"
		 "height=%u,framerate=0/1 ! appsink name=sink sync=false max-buffers=2",
		 sock, w, h);
	pipe = gst_parse_launch(desc, NULL);
	if (!pipe)
		return -EINVAL;
	sink = gst_bin_get_by_name(GST_BIN(pipe), "sink");
	gst_element_set_state(pipe, GST_STATE_PLAYING);
	for (;;) {
		GstSample *s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 10 * GST_SECOND);
		GstBuffer *b;
		GstMapInfo m;
		struct bench_hdr hd;
		bool last = false;

		if (!s)
			break;
		b = gst_sample_get_buffer(s);
		if (b && gst_buffer_map(b, &m, GST_MAP_READ)) {
			uint64_t now = bench_clock_ns(CLOCK_MONOTONIC);

			if (m.size < sizeof(hd) || !bench_hdr_read(m.data, &hd) || hd.seq < next) {
				rep->bad++;
			} else {
				next = hd.seq + 1;
				last = hd.flags & BENCH_HDR_LAST;
				if (hd.seq >= warmup) {
					win_frame(&win, rep);
					bench_report_lat(rep, now - hd.ts_ns);
				}
			}
			gst_buffer_unmap(b, &m);
		}
		gst_sample_unref(s);
		if (last) {
			win_end(&win, rep);
			r = 0;
			break;
		}
	}
	gst_element_set_state(pipe, GST_STATE_NULL);
	gst_object_unref(sink);
	gst_object_unref(pipe);
	return r;
}

int main(int argc, char **argv)
{
	struct bench_report rep = { .syscalls = -1 };
	uint32_t w, h;
	int r;

	gst_init(&argc, &argv);
	if (argc < 6 || sscanf(argv[3], "%ux%u", &w, &h) != 2) {
		fprintf(stderr, "usage: zcv-bench-gst producer SOCKET WxH FRAMES WARMUP REPORT\n"
				"       zcv-bench-gst consumer SOCKET WxH WARMUP REPORT\n");
		return 2;
	}
	if (!strcmp(argv[1], "producer") && argc == 7)
		r = producer(argv[2], w, h, strtoull(argv[4], NULL, 10),
			     strtoull(argv[5], NULL, 10), &rep);
	else if (!strcmp(argv[1], "consumer") && argc == 6)
		r = consumer(argv[2], w, h, strtoull(argv[4], NULL, 10), &rep);
	else
		return 2;
	if (bench_report_write(&rep, argv[argc - 1]) < 0)
		return 1;
	free(rep.lat);
	return r < 0 ? 1 : 0;
}
