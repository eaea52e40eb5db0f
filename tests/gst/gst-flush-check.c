/* SPDX-License-Identifier: MIT */
/*
 * Drives zcvsrc through what gst-launch cannot do reliably (its SIGINT
 * handling races in 1.22): an EOS sent to the running pipeline, and a stop
 * from PLAYING while create() waits, then reads copied-bytes and counts
 * the memfds the process holds before and after.
 *   gst-flush-check SOCKET
 * Prints one line per step; exits 0 when every step worked.
 */
#include <dirent.h>
#include <gst/gst.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static gint buffers;

static unsigned memfds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned n = 0;

	while (d && (e = readdir(d))) {
		char path[300], target[PATH_MAX];
		ssize_t len;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len > 0 && (target[len] = 0, !strncmp(target, "/memfd:", 7)))
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

static GstPadProbeReturn on_buffer(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
	g_atomic_int_inc(&buffers);
	return GST_PAD_PROBE_OK;
}

/* Waits up to timeout_ms for a message of type on bus (ERROR ends it). */
static gboolean wait_message(GstElement *pipeline, GstMessageType type, int timeout_ms)
{
	GstBus *bus = gst_element_get_bus(pipeline);
	GstMessage *m = gst_bus_timed_pop_filtered(bus, (GstClockTime)timeout_ms * GST_MSECOND,
						   type | GST_MESSAGE_ERROR);
	gboolean ok = m && GST_MESSAGE_TYPE(m) == type;

	if (m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
		GError *err = NULL;
		gst_message_parse_error(m, &err, NULL);
		printf("error: %s\n", err->message);
		g_error_free(err);
	}
	if (m)
		gst_message_unref(m);
	gst_object_unref(bus);
	return ok;
}

/* Plays zcvsrc ! fakesink until it has pushed some buffers. */
static GstElement *play(const char *sock)
{
	gchar *desc = g_strdup_printf("zcvsrc name=src socket=\"%s\" ! fakesink name=sink", sock);
	GstElement *p = gst_parse_launch(desc, NULL);
	GstElement *sink;
	GstPad *pad;
	gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

	g_free(desc);
	if (!p)
		return NULL;
	sink = gst_bin_get_by_name(GST_BIN(p), "sink");
	pad = gst_element_get_static_pad(sink, "sink");
	gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_buffer, NULL, NULL);
	gst_object_unref(pad);
	gst_object_unref(sink);
	g_atomic_int_set(&buffers, 0);
	gst_element_set_state(p, GST_STATE_PLAYING);
	while (g_atomic_int_get(&buffers) < 5 && g_get_monotonic_time() < end)
		if (wait_message(p, GST_MESSAGE_EOS, 10))
			break;
	if (g_atomic_int_get(&buffers) < 5) {
		printf("no buffers within 10 s\n");
		gst_element_set_state(p, GST_STATE_NULL);
		gst_object_unref(p);
		return NULL;
	}
	return p;
}

int main(int argc, char **argv)
{
	unsigned before, after;
	GstElement *p, *src;
	guint64 copied = G_MAXUINT64;
	gint64 t;
	int ok = 1;

	gst_init(&argc, &argv);
	if (argc != 2) {
		fprintf(stderr, "usage: gst-flush-check SOCKET\n");
		return 2;
	}
	before = memfds();

	/* 1. EOS into a running live pipeline: create() is unlocked and the
	 * EOS reaches the sink. */
	if (!(p = play(argv[1])))
		return 1;
	printf("memfds while playing: %u\n", memfds());
	ok &= memfds() > before;
	gst_element_send_event(p, gst_event_new_eos());
	if (wait_message(p, GST_MESSAGE_EOS, 5000)) {
		printf("eos: reached the sink after %d buffers\n", g_atomic_int_get(&buffers));
	} else {
		printf("eos: did not reach the sink within 5 s\n");
		ok = 0;
	}
	src = gst_bin_get_by_name(GST_BIN(p), "src");
	g_object_get(src, "copied-bytes", &copied, NULL);
	printf("copied-bytes: %" G_GUINT64_FORMAT "\n", copied);
	ok &= copied == 0;
	gst_object_unref(src);
	gst_element_set_state(p, GST_STATE_NULL);
	gst_object_unref(p);

	/* 2. Stop from PLAYING while create() waits for the next frame. */
	if (!(p = play(argv[1])))
		return 1;
	t = g_get_monotonic_time();
	gst_element_set_state(p, GST_STATE_NULL);
	printf("stop: PLAYING to NULL in %" G_GINT64_FORMAT " ms\n",
	       (g_get_monotonic_time() - t) / 1000);
	gst_object_unref(p);

	after = memfds();
	printf("memfds: %u before, %u after\n", before, after);
	ok &= before == after;
	return ok ? 0 : 1;
}
