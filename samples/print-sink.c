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
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zcv/client.h>

static struct zcv_client *client;
static unsigned long frames_left; /* 0: run until the stream ends */

static void on_frame(void *data, const struct zcv_client_frame *f)
{
	const struct zcv_client_format *fmt = zcv_client_get_format(client);

	(void)data;
	printf("frame seq=%" PRIu64 " latency_us=%.1f fnv=%016" PRIx64 "\n", f->sequence,
	       (double)(f->received_ns - f->timestamp_ns) / 1e3,
	       zcv_frame_checksum(&fmt->layout, f->planes));
	zcv_client_release(client, f); /* hand the buffer back as soon as we are done */
	if (frames_left && --frames_left == 0)
		exit(0); /* the producer reclaims whatever we held at hang-up */
}

static void on_format(void *data, const struct zcv_client_format *fmt)
{
	char fourcc[5];

	(void)data;
	printf("format %ux%u %s path=%s\n", fmt->layout.width, fmt->layout.height,
	       zcv_fourcc_str(fmt->layout.fourcc, fourcc), zcv_path_name(fmt->path));
}

int main(int argc, char **argv)
{
	struct zcv_client_config cfg = { .socket_path = argc > 1 ? argv[1] : NULL,
					 .name = "print-sink" };
	struct zcv_client_callbacks cbs = { .format = on_format, .frame = on_frame };
	int r;

	frames_left = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	r = zcv_client_connect(&cfg, &cbs, NULL, &client);
	if (r < 0) {
		fprintf(stderr, "print-sink: cannot connect: %s\n", strerror(-r));
		return 1;
	}
	/* Our whole event loop: one fd. A real sink adds it to its own loop. */
	for (;;) {
		struct pollfd pfd = { .fd = zcv_client_get_fd(client), .events = POLLIN };

		if (poll(&pfd, 1, -1) < 0)
			break;
		r = zcv_client_dispatch(client);
		if (r != 0)
			break; /* 1: stream ended; < 0: error */
	}
	zcv_client_destroy(client);
	return r < 0 ? 1 : 0;
}
