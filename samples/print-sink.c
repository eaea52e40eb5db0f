/* SPDX-License-Identifier: MIT */
/*
 * The smallest useful zcv sink: prints, for every frame, its sequence
 * number, the capture-to-receipt latency and a checksum of its pixels
 * (zcv_frame_checksum: visible bytes only).
 * Build against the installed library: cc print-sink.c $(pkg-config --cflags --libs zcv)
 *
 *   zcv-sample-print [SOCKET] [FRAMES]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zcv/sink.h>

static struct zcv_sink *sink;

static int on_format(void *data, const struct zcv_client_format *fmt)
{
	char fourcc[5];

	(void)data;
	printf("format %ux%u %s path=%s\n", fmt->layout.width, fmt->layout.height,
	       zcv_fourcc_str(fmt->layout.fourcc, fourcc), zcv_path_name(fmt->path));
	return 0;
}

static int on_frame(void *data, const struct zcv_client_frame *f)
{
	const struct zcv_client_format *fmt = zcv_client_get_format(zcv_sink_get_client(sink));
	uint64_t sum;

	(void)data;
	zcv_sink_begin_access(sink, f); /* the pixels are ours to read until end */
	sum = zcv_frame_checksum(&fmt->layout, f->planes);
	zcv_sink_end_access(sink, f);
	printf("frame seq=%" PRIu64 " latency_us=%.1f fnv=%016" PRIx64 "\n", f->sequence,
	       (double)(f->received_ns - f->timestamp_ns) / 1e3, sum);
	return zcv_sink_done(sink, f); /* hand the buffer back as soon as we are done */
}

int main(int argc, char **argv)
{
	struct zcv_sink_ops ops = { .size = sizeof(ops), .format = on_format, .frame = on_frame };
	struct zcv_client_config cfg = { .size = sizeof(cfg),
					 .socket_path = argc > 1 ? argv[1] : NULL,
					 .name = "print-sink" };
	struct zcv_sink_run_config run = { .size = sizeof(run),
					   .max_frames = argc > 2 ? strtoull(argv[2], NULL, 10) : 0,
					   .handle_signals = true };
	const char *why = "";
	int r;

	setvbuf(stdout, NULL, _IOLBF, 0);
	r = zcv_sink_create(&ops, NULL, &sink);
	if (r == 0)
		r = zcv_sink_connect(sink, &cfg, NULL);
	if (r < 0) {
		fprintf(stderr, "print-sink: cannot connect: %s\n", strerror(-r));
		zcv_sink_destroy(sink);
		return 1;
	}
	/* Our whole program: the sink's loop, until the stream ends, FRAMES
	 * frames came, or Ctrl+C. (To use your own event loop instead, see
	 * <zcv/client.h>: poll zcv_client_get_fd() and call
	 * zcv_client_dispatch().) */
	r = zcv_sink_run(sink, &run);
	if (r < 0) {
		zcv_sink_stream_error(sink, &why); /* the producer's words, printable */
		fprintf(stderr, "print-sink: the stream ended with an error: %s (%s)\n",
			why[0] ? why : "no reason given", strerror(-r));
	}
	zcv_sink_destroy(sink);
	return r < 0 ? 1 : 0;
}
