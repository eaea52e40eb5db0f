/* SPDX-License-Identifier: MIT */
/*
 * gst-pipeline-probe: runs a GStreamer pipeline to its end and says, for
 * each named sink, how many buffers reached it and how long after capture:
 * when the buffer arrived at the sink's pad, and when the sink gave the
 * pad back (kmssink returns once its flip is done, filesink once written).
 *
 *   gst-pipeline-probe OUT.json SINK[,SINK...] PIPELINE-DESCRIPTION...
 *
 * Capture time: when the element named "src" pushed the buffer of that
 * PTS (v4l2src pushes a frame as soon as it dequeued it), so the figures
 * do not depend on v4l2src trusting the driver's timestamps (it stamps
 * one frame period early when it does not); without a "src" element, the
 * PTS plus the base time on the system clock (CLOCK_MONOTONIC). The pads
 * are watched with tracer hooks (pad-push-pre/post), which need no
 * GST_TRACERS and change nothing in the pipeline. At the end it also
 * writes the CPU time of each of its threads (GStreamer names a
 * streaming thread after its pad: "qenc:src"). Exit 0 at EOS, 1 on an
 * error message, 2 on bad usage.
 */
#include <gst/gst.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SINKS 8
#define MAX_SAMPLES 100000

struct watch {
	char name[64];
	GstPad *pad;      /* the sink's sink pad */
	uint64_t buffers; /* buffers that reached it */
	uint64_t pending; /* capture time of the buffer being pushed, 0: none */
	unsigned n;
	uint64_t *receipt, *done; /* ns after capture */
};

static struct watch watches[MAX_SINKS];
static unsigned n_watches;
static GstElement *pipeline;

/* When the source pushed the last frames, by PTS. */
#define PUSHED 256
static GstPad *src_pad;
static struct {
	GstClockTime pts;
	uint64_t at;
} pushed[PUSHED];
static unsigned n_pushed;
static GMutex pushed_lock;

static uint64_t capture_time(GstClockTime pts)
{
	uint64_t at = 0;

	if (!src_pad)
		return pts + gst_element_get_base_time(pipeline);
	g_mutex_lock(&pushed_lock);
	for (unsigned i = 0; i < PUSHED && i < n_pushed; i++)
		if (pushed[i].pts == pts)
			at = pushed[i].at;
	g_mutex_unlock(&pushed_lock);
	return at;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct watch *watch_of(GstPad *src)
{
	GstPad *peer = GST_PAD_PEER(src);

	for (unsigned i = 0; i < n_watches; i++)
		if (watches[i].pad == peer)
			return &watches[i];
	return NULL;
}

static void on_push_pre(GObject *tracer, GstClockTime ts, GstPad *pad, GstBuffer *buf)
{
	struct watch *w;
	GstClockTime pts = GST_BUFFER_PTS(buf);
	uint64_t now = mono_ns(), capture;

	if (pad == src_pad) {
		g_mutex_lock(&pushed_lock);
		pushed[n_pushed++ % PUSHED].pts = pts;
		pushed[(n_pushed - 1) % PUSHED].at = now;
		g_mutex_unlock(&pushed_lock);
	}
	w = watch_of(pad);
	if (!w)
		return;
	w->buffers++;
	w->pending = 0;
	if (!GST_CLOCK_TIME_IS_VALID(pts))
		return;
	capture = capture_time(pts);
	if (!capture || capture > now || w->n >= MAX_SAMPLES)
		return;
	w->pending = capture;
	w->receipt[w->n] = now - capture;
}

static void on_push_post(GObject *tracer, GstClockTime ts, GstPad *pad, GstFlowReturn res)
{
	struct watch *w = watch_of(pad);

	if (!w || !w->pending)
		return;
	w->done[w->n++] = mono_ns() - w->pending;
	w->pending = 0;
}

/* A tracer of our own, only to register the two hooks. */
typedef struct {
	GstTracer parent;
} ZcvProbeTracer;
typedef struct {
	GstTracerClass parent;
} ZcvProbeTracerClass;
G_DEFINE_TYPE(ZcvProbeTracer, zcv_probe_tracer, GST_TYPE_TRACER)

static void zcv_probe_tracer_class_init(ZcvProbeTracerClass *klass)
{
}

static void zcv_probe_tracer_init(ZcvProbeTracer *self)
{
	gst_tracing_register_hook(GST_TRACER(self), "pad-push-pre", G_CALLBACK(on_push_pre));
	gst_tracing_register_hook(GST_TRACER(self), "pad-push-post", G_CALLBACK(on_push_post));
}

/* "name": seconds of CPU, for each thread of this process. */
static void put_threads(FILE *f)
{
	GDir *d = g_dir_open("/proc/self/task", 0, NULL);
	const char *tid;
	bool first = true;

	fprintf(f, "\"threads\": {");
	while (d && (tid = g_dir_read_name(d))) {
		char path[64], buf[1024], name[64];
		char *open, *close;
		unsigned long ut, st;
		FILE *t;

		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", tid);
		t = fopen(path, "r");
		if (!t)
			continue;
		if (!fgets(buf, sizeof(buf), t) || !(open = strchr(buf, '(')) ||
		    !(close = strrchr(buf, ')')) ||
		    sscanf(close + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
			   &st) != 2) {
			fclose(t);
			continue;
		}
		fclose(t);
		g_strlcpy(name, open + 1, MIN(sizeof(name), (size_t)(close - open)));
		for (char *c = name; *c; c++)
			if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
				*c = '_';
		fprintf(f, "%s\"%s/%s\": %.3f", first ? "" : ", ", name, tid,
			(double)(ut + st) / (double)sysconf(_SC_CLK_TCK));
		first = false;
	}
	if (d)
		g_dir_close(d);
	fprintf(f, "}");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void put_dist(FILE *f, const char *key, uint64_t *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	if (!n) {
		fprintf(f, "\"%s\": null", key);
		return;
	}
	fprintf(f, "\"%s\": {\"p50\": %" PRIu64 ", \"p99\": %" PRIu64 ", \"max\": %" PRIu64 "}",
		key, v[n / 2] / 1000, v[(size_t)n * 99 / 100] / 1000, v[n - 1] / 1000);
}

int main(int argc, char **argv)
{
	GError *err = NULL;
	GObject *tracer;
	GstMessage *msg;
	char *names, *save = NULL, error[512] = "";
	FILE *f;
	int ret;

	gst_init(&argc, &argv);
	if (argc < 4) {
		fprintf(stderr, "usage: %s OUT.json SINK[,SINK...] PIPELINE...\n", argv[0]);
		return 2;
	}
	tracer = g_object_new(zcv_probe_tracer_get_type(), NULL);
	pipeline = gst_parse_launchv((const gchar **)&argv[3], &err);
	if (!pipeline) {
		fprintf(stderr, "gst-pipeline-probe: %s\n", err ? err->message : "parse error");
		return 2;
	}
	{
		GstElement *src = gst_bin_get_by_name(GST_BIN(pipeline), "src");

		if (src) {
			src_pad = gst_element_get_static_pad(src, "src");
			gst_object_unref(src);
		}
	}
	names = g_strdup(argv[2]);
	for (char *n = strtok_r(names, ",", &save); n && n_watches < MAX_SINKS;
	     n = strtok_r(NULL, ",", &save)) {
		struct watch *w = &watches[n_watches];
		GstElement *el = gst_bin_get_by_name(GST_BIN(pipeline), n);

		if (!el || !(w->pad = gst_element_get_static_pad(el, "sink"))) {
			fprintf(stderr, "gst-pipeline-probe: no element %s with a sink pad\n", n);
			return 2;
		}
		gst_object_unref(el);
		g_strlcpy(w->name, n, sizeof(w->name));
		w->receipt = g_new(uint64_t, MAX_SAMPLES);
		w->done = g_new(uint64_t, MAX_SAMPLES);
		n_watches++;
	}
	g_free(names);

	gst_element_set_state(pipeline, GST_STATE_PLAYING);
	msg = gst_bus_timed_pop_filtered(gst_element_get_bus(pipeline), GST_CLOCK_TIME_NONE,
					 GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
	ret = GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS ? 0 : 1;
	if (ret) {
		GError *e = NULL;

		gst_message_parse_error(msg, &e, NULL);
		snprintf(error, sizeof(error), "%s: %s", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)),
			 e ? e->message : "error");
		g_clear_error(&e);
		fprintf(stderr, "gst-pipeline-probe: %s\n", error);
	}
	gst_message_unref(msg);

	f = fopen(argv[1], "w");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	/* before the streaming threads go, with the pipeline */
	fprintf(f, "{");
	put_threads(f);
	gst_element_set_state(pipeline, GST_STATE_NULL);
	fprintf(f, ", \"capture_time\": \"%s\", \"error\": \"",
		src_pad ? "push from src" : "pts + base time");
	for (const char *c = error; *c; c++) {
		if (*c == '"' || *c == '\\')
			fputc('\\', f);
		fputc((unsigned char)*c < 0x20 ? '?' : *c, f);
	}
	fprintf(f, "\", \"sinks\": {");
	for (unsigned i = 0; i < n_watches; i++) {
		struct watch *w = &watches[i];

		fprintf(f, "%s\"%s\": {\"buffers\": %" PRIu64 ", \"timed\": %u, ", i ? ", " : "",
			w->name, w->buffers, w->n);
		put_dist(f, "receipt_us", w->receipt, w->n);
		fprintf(f, ", ");
		put_dist(f, "done_us", w->done, w->n);
		fprintf(f, "}");
	}
	fprintf(f, "}}\n");
	fclose(f);
	gst_object_unref(pipeline);
	g_object_unref(tracer);
	return ret;
}
