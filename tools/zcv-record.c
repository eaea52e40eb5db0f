/* SPDX-License-Identifier: MIT */
/* zcv-record: writes a zcv stream to a Y4M (or raw) file. */
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <zcv/client.h>
#include <zcv/record.h>
#include <zcv/stats.h>
#include "tool_common.h"

#define TOOL "zcv-record"

struct recorder {
	struct zcv_client *client;
	struct zcv_record *rec;
	struct zcv_stats stats;
	uint64_t max_frames;
	int error; /* a failure of our own, already reported */
	struct tool_end end;
	bool done;
	int path;
	uint64_t frame_bytes;
	unsigned asked_hold;
};

static void on_format(void *data, const struct zcv_client_format *fmt)
{
	struct recorder *r = data;

	if (!r->path)
		fprintf(stderr,
			TOOL ": path %s, the producer lets us hold %u frames (asked for %u)\n",
			zcv_path_name(fmt->path), fmt->max_hold, r->asked_hold);
	r->path = fmt->path;
	r->frame_bytes = fmt->layout.size;
}

static void on_frame(void *data, const struct zcv_client_frame *f)
{
	struct recorder *r = data;
	const struct zcv_client_format *fmt = zcv_client_get_format(r->client);
	int e;

	if (!r->stats.frames)
		r->stats.start_ns = f->received_ns;
	r->stats.end_ns = f->received_ns;
	zcv_latency_add(&r->stats.latency, f->received_ns - f->timestamp_ns);
	e = zcv_record_write(r->rec, &fmt->layout, fmt->fps_num, fmt->fps_den, f->planes);
	zcv_client_release(r->client, f);
	if (e < 0) {
		if (e == -EINVAL)
			fprintf(stderr, TOOL ": cannot record this stream as Y4M (RGB, or the "
					     "format changed); try --raw\n");
		else
			fprintf(stderr, TOOL ": write failed: %s\n", strerror(-e));
		r->error = e;
		r->done = true;
		return;
	}
	r->stats.frames++;
	/* the copy tier means the producer copied this frame for us */
	if (r->path == 3)
		r->stats.copied_bytes += r->frame_bytes;
	if (r->max_frames && r->stats.frames >= r->max_frames)
		r->done = r->end.finished = true;
}

static void on_closed(void *data, int error, const char *reason)
{
	struct recorder *r = data;

	tool_end_closed(&r->end, error, reason);
	r->done = true;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " TOOL " -o FILE [options]\n"
		"Record a zcv stream to a Y4M file (or raw planes).\n\n"
		"  -o, --output FILE    output file, '-' for standard output\n"
		"  --raw                write the planes as they are, no Y4M framing\n"
		"  --frames N           stop after N frames\n"
		"  --max-hold N         frames the producer may have in flight to us at once\n"
		"                       (default 8: a recorder rides out scheduling delays and\n"
		"                       slow writes instead of being skipped; the producer\n"
		"                       grants at most what it allows, printed at start)\n"
		"  --socket PATH        producer socket (default: the default path)\n"
		"  --name NAME          consumer name shown by the producer (default zcv-record)\n"
		"  --stats-json PATH    write stats as JSON at exit\n"
		"  --help\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "raw", no_argument, NULL, 'R' },
		{ "frames", required_argument, NULL, 'n' },
		{ "max-hold", required_argument, NULL, 'H' },
		{ "socket", required_argument, NULL, 'k' },
		{ "name", required_argument, NULL, 'N' },
		{ "stats-json", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct zcv_client_config cfg = { .size = sizeof(struct zcv_client_config),
					 .name = TOOL,
					 .constraints.hold = 8 };
	struct zcv_client_callbacks cbs = { .size = sizeof(struct zcv_client_callbacks),
					    .format = on_format,
					    .frame = on_frame,
					    .closed = on_closed };
	struct recorder r = { 0 };
	const char *out = NULL, *stats_path = NULL;
	bool raw = false;
	int opt, e, sfd, ret = 1;

	while ((opt = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			out = optarg;
			break;
		case 'R':
			raw = true;
			break;
		case 'n':
			if (tool_parse_uint(TOOL, "--frames", optarg, UINT32_MAX, &r.max_frames) <
			    0)
				return 2;
			break;
		case 'H': {
			uint64_t v = 0;

			if (tool_parse_uint(TOOL, "--max-hold", optarg, 32, &v) < 0)
				return 2;
			if (v == 0) {
				fprintf(stderr, TOOL ": --max-hold needs 1 to 32 frames\n");
				return 2;
			}
			cfg.constraints.hold = (unsigned)v;
			break;
		}
		case 'k':
			cfg.socket_path = optarg;
			break;
		case 'N':
			cfg.name = optarg;
			break;
		case 'j':
			stats_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!out || optind < argc) {
		fprintf(stderr, TOOL ": %s\n", out ? "unexpected argument" : "-o FILE is required");
		usage(stderr);
		return 2;
	}
	zcv_stats_init(&r.stats);
	e = zcv_record_create(out, raw, &r.rec);
	if (e < 0) {
		fprintf(stderr, TOOL ": cannot open %s for writing: %s\n", out, strerror(-e));
		goto done;
	}
	r.asked_hold = cfg.constraints.hold;
	e = tool_connect(TOOL, &cfg, &cbs, &r, &r.client);
	if (e < 0)
		goto done;
	sfd = tool_signalfd();
	while (!r.done) {
		/* POLLOUT too while releases wait for room in the socket */
		struct pollfd pfd[2] = { { .fd = zcv_client_get_fd(r.client),
					   .events = zcv_client_get_events(r.client) },
					 { .fd = sfd, .events = POLLIN } };

		if (poll(pfd, 2, -1) < 0 && errno != EINTR) {
			fprintf(stderr, TOOL ": poll: %s\n", strerror(errno));
			r.error = -errno;
			break;
		}
		if (pfd[1].revents)
			break; /* SIGINT/SIGTERM: stop as asked, exit 0 */
		if (pfd[0].revents) {
			e = zcv_client_dispatch(r.client);
			tool_end_dispatch(&r.end, e);
			if (e != 0)
				break;
		}
	}
	close(sfd);
	/* our own failures were reported where they happened */
	ret = r.error ? 1 : tool_end_report(TOOL, &r.end);
	r.stats.dropped = zcv_client_dropped(r.client);
done:
	if (r.path)
		r.stats.path = zcv_path_name(r.path);
	if (stats_path) {
		struct zcv_json j;

		zcv_json_init(&j, ZCV_JSON_PRETTY);
		zcv_json_begin_object(&j);
		zcv_json_kv_string(&j, "tool", TOOL);
		zcv_json_kv_uint(&j, "converted_bytes",
				 r.rec ? zcv_record_converted_bytes(r.rec) : 0);
		zcv_json_kv_uint(&j, "written_bytes", r.rec ? zcv_record_bytes(r.rec) : 0);
		tool_end_json(&j, &r.end);
		zcv_json_end_object(&j);
		e = zcv_stats_write_json_file(&r.stats, stats_path, &j);
		zcv_json_finish(&j);
		if (e < 0) {
			fprintf(stderr, TOOL ": cannot write stats to %s: %s\n", stats_path,
				strerror(-e));
			ret = 1;
		}
	}
	zcv_client_destroy(r.client);
	if (zcv_record_destroy(r.rec) < 0)
		ret = 1;
	zcv_stats_finish(&r.stats);
	return ret;
}
