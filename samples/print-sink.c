/* SPDX-License-Identifier: MIT */
/*
 * The smallest useful zcv sink: prints, for every frame, its sequence
 * number, the capture-to-receipt latency and a checksum of its pixels
 * (zcv_frame_checksum: visible bytes only).
 * Build against the installed library: cc print-sink.c $(pkg-config --cflags --libs zcv)
 *
 *   zcv-sample-print [SOCKET] [FRAMES]
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zcv/client.h>

static struct zcv_client *client;
static unsigned long frames_left; /* 0: run until the stream ends */
static bool told;                 /* the closed callback said why it failed */

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

/* The stream is over: say why when it did not end cleanly (the client
 * library has made the producer's words printable). */
static void on_closed(void *data, int error, const char *reason)
{
	(void)data;
	if (!error)
		return;
	fprintf(stderr, "print-sink: the stream ended with an error: %s (%s)\n", reason,
		strerror(error < 0 && error > -4096 ? -error : EPROTO));
	told = true;
}

int main(int argc, char **argv)
{
	struct zcv_client_config cfg = { .size = sizeof(struct zcv_client_config),
					 .socket_path = argc > 1 ? argv[1] : NULL,
					 .name = "print-sink" };
	struct zcv_client_callbacks cbs = { .size = sizeof(struct zcv_client_callbacks),
					    .format = on_format,
					    .frame = on_frame,
					    .closed = on_closed };
	int r;

	frames_left = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	r = zcv_client_connect(&cfg, &cbs, NULL, &client);
	if (r < 0) {
		fprintf(stderr, "print-sink: cannot connect: %s\n", strerror(-r));
		return 1;
	}
	/* Our whole event loop: one fd. A real sink adds it to its own loop,
	 * asking for the events the client wants (POLLOUT while releases wait
	 * for room in the socket). */
	for (;;) {
		struct pollfd pfd = { .fd = zcv_client_get_fd(client),
				      .events = zcv_client_get_events(client) };

		if (poll(&pfd, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		r = zcv_client_dispatch(client);
		if (r != 0)
			break; /* 1: stream ended; < 0: error (the closed callback said why) */
	}
	zcv_client_destroy(client);
	if (r < 0 && !told)
		fprintf(stderr, "print-sink: the stream failed: %s\n", strerror(-r));
	return r < 0 ? 1 : 0;
}
