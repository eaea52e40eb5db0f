/* SPDX-License-Identifier: MIT */
/*
 * zcv-rtsp: serves a zcv stream over RTSP (H.264), one shared media for
 * every client: zcvsrc, the encoder (a V4L2 hardware encoder when
 * GStreamer has one, else x264enc), RTP payloading, on gst-rtsp-server.
 */
#include <getopt.h>
#include <glib-unix.h>
#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tool_common.h"

#define TOOL "zcv-rtsp"

static void usage(FILE *f)
{
	fprintf(f, "Usage: " TOOL " [options]\n"
		   "Serve a zcv stream as RTSP (H.264) for every client that connects.\n\n"
		   "  --socket PATH     zcv producer socket (default: the default path)\n"
		   "  --port N          RTSP port (default 8554; 0: any free one, printed)\n"
		   "  --mount PATH      stream path (default /zcv)\n"
		   "  --encoder NAME    auto (default: v4l2h264enc when present, else x264),\n"
		   "                    x264 or v4l2\n"
		   "  --bitrate KBPS    target bit rate (default 4000)\n"
		   "  --max-hold N      frames zcvsrc asks to hold (default: the producer's)\n"
		   "  --help\n");
}

static gboolean on_signal(gpointer loop)
{
	g_main_loop_quit(loop);
	return G_SOURCE_REMOVE;
}

/* The encoder part of the launch line, or NULL when none is available. */
static gchar *encoder_launch(const char *name, unsigned kbps)
{
	GstElementFactory *v4l2 = gst_element_factory_find("v4l2h264enc");
	GstElementFactory *x264 = gst_element_factory_find("x264enc");
	bool use_v4l2 = !strcmp(name, "v4l2") || (!strcmp(name, "auto") && v4l2);
	gchar *s = NULL;

	if (use_v4l2 && v4l2)
		s = g_strdup_printf("v4l2h264enc extra-controls=\"controls,video_bitrate=%u\" ! "
				    "video/x-h264,level=(string)4",
				    kbps * 1000);
	else if (!use_v4l2 && x264)
		s = g_strdup_printf("videoconvert ! video/x-raw,format=I420 ! x264enc "
				    "tune=zerolatency speed-preset=ultrafast bitrate=%u "
				    "key-int-max=30",
				    kbps);
	if (v4l2)
		gst_object_unref(v4l2);
	if (x264)
		gst_object_unref(x264);
	return s;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "port", required_argument, NULL, 'p' },
		{ "mount", required_argument, NULL, 'm' },
		{ "encoder", required_argument, NULL, 'e' },
		{ "bitrate", required_argument, NULL, 'b' },
		{ "max-hold", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *socket_path = NULL, *mount = "/zcv", *encoder = "auto";
	uint64_t port = 8554, kbps = 4000, max_hold = 0;
	gchar *enc, *launch, *service, *src;
	GstRTSPServer *server;
	GstRTSPMountPoints *mounts;
	GstRTSPMediaFactory *factory;
	GstElementFactory *zcvsrc;
	GMainLoop *loop;
	int c;

	gst_init(&argc, &argv);
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			socket_path = optarg;
			break;
		case 'p':
			if (tool_parse_uint(TOOL, "--port", optarg, 65535, &port) < 0)
				return 2;
			break;
		case 'm':
			mount = optarg;
			break;
		case 'e':
			encoder = optarg;
			break;
		case 'b':
			if (tool_parse_uint(TOOL, "--bitrate", optarg, 1000000, &kbps) < 0 || !kbps)
				return 2;
			break;
		case 'H':
			if (tool_parse_uint(TOOL, "--max-hold", optarg, 32, &max_hold) < 0)
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || mount[0] != '/' ||
	    (strcmp(encoder, "auto") && strcmp(encoder, "x264") && strcmp(encoder, "v4l2"))) {
		usage(stderr);
		return 2;
	}
	/* The path goes into a launch line: refuse what would break out of
	 * its quotes. */
	if (socket_path && strpbrk(socket_path, "\"\\")) {
		fprintf(stderr, TOOL ": --socket may not contain quotes or backslashes\n");
		return 2;
	}
	enc = encoder_launch(encoder, (unsigned)kbps);
	if (!enc) {
		fprintf(stderr,
			TOOL ": no H.264 encoder (%s) in GStreamer: install "
			     "gstreamer1.0-plugins-ugly for x264enc\n",
			encoder);
		return 1;
	}
	zcvsrc = gst_element_factory_find("zcvsrc");
	if (!zcvsrc) {
		fprintf(stderr, TOOL ": GStreamer has no zcvsrc (install the zcv plugin or set "
				     "GST_PLUGIN_PATH)\n");
		return 1;
	}
	gst_object_unref(zcvsrc);
	src = socket_path ? g_strdup_printf("zcvsrc socket=\"%s\"", socket_path) :
			    g_strdup("zcvsrc");
	launch = g_strdup_printf("( %s max-hold=%u ! %s ! rtph264pay name=pay0 pt=96 "
				 "config-interval=1 )",
				 src, (unsigned)max_hold, enc);
	service = g_strdup_printf("%u", (unsigned)port);

	loop = g_main_loop_new(NULL, FALSE);
	server = gst_rtsp_server_new();
	gst_rtsp_server_set_address(server, "0.0.0.0");
	gst_rtsp_server_set_service(server, service);
	mounts = gst_rtsp_server_get_mount_points(server);
	factory = gst_rtsp_media_factory_new();
	gst_rtsp_media_factory_set_launch(factory, launch);
	/* One pipeline, one zcv consumer, for all RTSP clients. */
	gst_rtsp_media_factory_set_shared(factory, TRUE);
	gst_rtsp_mount_points_add_factory(mounts, mount, factory);
	g_object_unref(mounts);
	/* Before the line that tells the world we serve. */
	g_unix_signal_add(SIGINT, on_signal, loop);
	g_unix_signal_add(SIGTERM, on_signal, loop);
	if (!gst_rtsp_server_attach(server, NULL)) {
		fprintf(stderr, TOOL ": cannot listen on port %u\n", (unsigned)port);
		return 1;
	}
	printf(TOOL ": serving rtsp://127.0.0.1:%d%s (%s)\n",
	       gst_rtsp_server_get_bound_port(server), mount, launch);
	fflush(stdout);
	g_main_loop_run(loop);

	g_object_unref(server);
	g_main_loop_unref(loop);
	g_free(launch);
	g_free(service);
	g_free(src);
	g_free(enc);
	return 0;
}
