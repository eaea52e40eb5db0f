/* SPDX-License-Identifier: MIT */
/* zcv-encode: feeds a zcv stream to a V4L2 mem2mem encoder, writes the bitstream. */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <zcv/client.h>
#include <zcv/encode.h>
#include <zcv/memory.h>
#include <zcv/stats.h>
#include "tool_common.h"

#define TOOL "zcv-encode"
#define MAX_HELD 32

struct held {
	bool used, done;
	struct zcv_client_frame frame;
};

struct encode {
	struct zcv_client *client;
	struct zcv_encoder *enc;
	struct zcv_stats stats;
	int out_fd;
	FILE *frame_log;
	uint64_t max_frames;
	uint64_t frames_in, frames_out, bytes_out, keyframes;
	uint64_t not_encoded; /* frames we got but released without encoding */
	uint64_t copy_frame_bytes;
	uint64_t first_in_ns, last_out_ns;
	struct zcv_layout layout;
	unsigned n_buffers;
	int path;
	bool started, draining, drained, closed, failed;
	int error;
	struct tool_end end; /* how the stream ended (reported at exit) */
	struct held held[MAX_HELD];
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " TOOL " -o FILE [options]\n"
		"Encode a zcv stream with a V4L2 memory-to-memory encoder, importing the\n"
		"producer's buffers (no copy), and write the bitstream to FILE.\n\n"
		"  -o, --output FILE    bitstream file, '-' for standard output\n"
		"  --device DEV         encoder device (default: the first mem2mem device whose\n"
		"                       CAPTURE side offers a compressed format)\n"
		"  --codec FOURCC       coded format to pick among encoders (e.g. FWHT, H264)\n"
		"  --bitrate BPS        target bitrate, where the driver has the control\n"
		"  --gop N              keyframe interval in frames, where the driver has it\n"
		"  --frames N           encode N frames, then drain and exit\n"
		"  --max-hold N         frames in the encoder at once (default 4)\n"
		"  --socket PATH        producer socket (default: the default path)\n"
		"  --name NAME          consumer name shown by the producer (default zcv-encode)\n"
		"  --frame-log PATH     write the producer sequence of every encoded frame "
		"(testing)\n"
		"  --list               list the encoders found and exit\n"
		"  --stats-json PATH    write stats as JSON at exit\n"
		"  --help\n");
}

static void fail_now(struct encode *e, int error)
{
	if (!e->failed) {
		e->failed = true;
		e->error = error;
	}
}

static void release_done(struct encode *e)
{
	for (unsigned i = 0; i < MAX_HELD; i++) {
		struct held *h = &e->held[i];

		if (!h->used || !h->done)
			continue;
		/* the client queues what the socket cannot take now */
		zcv_client_release(e->client, &h->frame);
		h->used = h->done = false;
	}
}

static void on_done(void *data, uint64_t cookie)
{
	struct encode *e = data;

	if (cookie < MAX_HELD && e->held[cookie].used)
		e->held[cookie].done = true;
	if (getenv("ZCV_ENCODE_TRACE"))
		fprintf(stderr, TOOL ": trace: done %llu\n", (unsigned long long)cookie);
	release_done(e);
}

static void on_packet(void *data, const void *buf, size_t len, uint64_t seq, uint64_t ts, bool key)
{
	struct encode *e = data;
	const uint8_t *p = buf;
	uint64_t now = zcv_now_ns();

	while (len) {
		ssize_t n = write(e->out_fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, TOOL ": writing the bitstream failed: %s\n",
				strerror(errno));
			fail_now(e, -errno);
			return;
		}
		p += n;
		len -= (size_t)n;
		e->bytes_out += (uint64_t)n;
	}
	if (p == buf)
		return;
	e->frames_out++;
	e->keyframes += key;
	if (getenv("ZCV_ENCODE_TRACE"))
		fprintf(stderr, TOOL ": trace: packet seq %llu len %zu at %llu\n",
			(unsigned long long)seq, (size_t)(p - (const uint8_t *)buf),
			(unsigned long long)now);
	if (!e->stats.start_ns)
		e->stats.start_ns = now;
	e->stats.end_ns = now;
	if (ts && now > ts)
		zcv_latency_add(&e->stats.latency, now - ts);
	if (e->frame_log)
		fprintf(e->frame_log, "%" PRIu64 "\n", seq);
}

static void on_format(void *data, const struct zcv_client_format *fmt)
{
	struct encode *e = data;
	int r;

	if (e->started) {
		/* a new pool generation with the same layout is fine: DMABUF slots
		 * re-import whatever fd comes at their index */
		if (memcmp(&fmt->layout, &e->layout, sizeof(e->layout)) ||
		    fmt->n_buffers > e->n_buffers) {
			fprintf(stderr,
				TOOL ": the stream changed format mid-stream; restart " TOOL "\n");
			fail_now(e, -EINVAL);
		}
		e->path = fmt->path;
		return;
	}
	e->path = fmt->path;
	e->layout = fmt->layout;
	e->n_buffers = fmt->n_buffers;
	r = zcv_encoder_start(e->enc, &fmt->layout, fmt->n_buffers, fmt->fps_num, fmt->fps_den,
			      fmt->path == 1 ? ZCV_ENCODER_DMABUF : ZCV_ENCODER_USERPTR);
	if (r < 0) {
		fprintf(stderr, TOOL ": %s\n", zcv_encoder_error(e->enc));
		fail_now(e, r);
		return;
	}
	e->started = true;
	if (zcv_encoder_missing_controls(e->enc) & 1)
		fprintf(stderr, TOOL ": %s has no bitrate control; --bitrate is ignored\n",
			zcv_encoder_device(e->enc));
	if (zcv_encoder_missing_controls(e->enc) & 2)
		fprintf(stderr, TOOL ": %s has no GOP size control; --gop is ignored\n",
			zcv_encoder_device(e->enc));
}

static void on_frame(void *data, const struct zcv_client_frame *f)
{
	struct encode *e = data;
	const struct zcv_client_format *fmt = zcv_client_get_format(e->client);
	struct zcv_encoder_frame ef = { 0 };
	unsigned slot;
	int r;

	if (!e->started || e->draining || e->failed ||
	    (e->max_frames && e->frames_in >= e->max_frames)) {
		e->not_encoded += !e->failed && !e->draining;
		zcv_client_release(e->client, f);
		return;
	}
	for (slot = 0; slot < MAX_HELD && e->held[slot].used; slot++)
		;
	if (slot == MAX_HELD) {
		e->not_encoded++;
		zcv_client_release(e->client, f);
		return;
	}
	ef.index = f->index;
	ef.sequence = f->sequence;
	ef.timestamp_ns = f->timestamp_ns;
	ef.cookie = slot;
	ef.n_planes = f->n_planes;
	for (unsigned p = 0; p < f->n_planes; p++) {
		uint64_t size = 0;

		ef.fd[p] = f->fd[p];
		ef.offset[p] = f->offset[p];
		ef.map[p] = f->planes[p] ? f->planes[p] - f->offset[p] : NULL;
		ef.bytesused[p] = f->bytesused[p];
		if (zcv_fd_size(f->fd[p], &size) == 0)
			ef.fd_size[p] = size;
	}
	(void)fmt;
	e->held[slot].used = true;
	e->held[slot].done = false;
	e->held[slot].frame = *f;
	if (getenv("ZCV_ENCODE_TRACE"))
		fprintf(stderr, TOOL ": trace: queue seq %llu index %u slot %u at %llu\n",
			(unsigned long long)f->sequence, f->index, slot,
			(unsigned long long)zcv_now_ns());
	r = zcv_encoder_queue(e->enc, &ef);
	if (r < 0) {
		e->held[slot].used = false;
		zcv_client_release(e->client, f);
		fprintf(stderr, TOOL ": %s\n", zcv_encoder_error(e->enc));
		fail_now(e, r);
		return;
	}
	if (!e->first_in_ns)
		e->first_in_ns = zcv_now_ns();
	e->frames_in++;
	if (e->path == 3)
		e->copy_frame_bytes += e->layout.size; /* the producer copied it for us */
	if (e->max_frames && e->frames_in >= e->max_frames) {
		e->end.finished = true;
		e->draining = true;
		zcv_encoder_drain(e->enc);
	}
}

static void on_closed(void *data, int error, const char *reason)
{
	struct encode *e = data;

	e->closed = true;
	tool_end_closed(&e->end, error, reason);
	if (e->end.error)
		fail_now(e, e->end.error);
}

static int list_encoders(void)
{
	char path[256];
	const char *why = NULL;
	int r = zcv_encoder_find(0, path, sizeof(path), &why);

	if (r < 0) {
		printf("no encoder: %s\n", why ? why : strerror(-r));
		return 1;
	}
	printf("first encoder: %s\n", path);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "device", required_argument, NULL, 'd' },
		{ "codec", required_argument, NULL, 'c' },
		{ "bitrate", required_argument, NULL, 'B' },
		{ "gop", required_argument, NULL, 'g' },
		{ "frames", required_argument, NULL, 'n' },
		{ "max-hold", required_argument, NULL, 'm' },
		{ "socket", required_argument, NULL, 'k' },
		{ "name", required_argument, NULL, 'N' },
		{ "frame-log", required_argument, NULL, 'F' },
		{ "stats-json", required_argument, NULL, 'j' },
		{ "list", no_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct zcv_client_config ccfg = { .size = sizeof(struct zcv_client_config),
					  .name = TOOL,
					  .caps = ZCV_CAP_DMABUF | ZCV_CAP_MEMFD,
					  .constraints.hold = 4 };
	struct zcv_client_callbacks cbs = { .size = sizeof(struct zcv_client_callbacks),
					    .format = on_format,
					    .frame = on_frame,
					    .closed = on_closed };
	struct zcv_encoder_callbacks ecbs = { .done = on_done, .packet = on_packet };
	struct zcv_encoder_config ecfg = { 0 };
	struct zcv_constraints needs = { 0 };
	struct encode e = { .out_fd = -1 };
	const char *out = NULL, *stats_path = NULL, *why = NULL;
	char devpath[256];
	uint64_t v, drain_deadline = 0;
	int opt, r, sfd = -1, ret = 1;

	while ((opt = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			out = optarg;
			break;
		case 'd':
			ecfg.device = optarg;
			break;
		case 'c':
			if (strlen(optarg) < 1 || strlen(optarg) > 4) {
				fprintf(stderr,
					TOOL
					": --codec needs a fourcc such as FWHT or H264, not '%s'\n",
					optarg);
				return 2;
			} else {
				char c4[5] = "    ";

				memcpy(c4, optarg, strlen(optarg));
				ecfg.codec = ZCV_FOURCC(c4[0], c4[1], c4[2], c4[3]);
			}
			break;
		case 'B':
			if (tool_parse_uint(TOOL, "--bitrate", optarg, INT32_MAX, &v) < 0)
				return 2;
			ecfg.bitrate = (int64_t)v;
			break;
		case 'g':
			if (tool_parse_uint(TOOL, "--gop", optarg, 100000, &v) < 0)
				return 2;
			ecfg.gop = (int)v;
			break;
		case 'n':
			if (tool_parse_uint(TOOL, "--frames", optarg, UINT32_MAX, &e.max_frames) <
			    0)
				return 2;
			break;
		case 'm':
			if (tool_parse_uint(TOOL, "--max-hold", optarg, MAX_HELD, &v) < 0 ||
			    v < 1) {
				if (v < 1)
					fprintf(stderr, TOOL ": --max-hold needs at least 1\n");
				return 2;
			}
			ccfg.constraints.hold = (unsigned)v;
			break;
		case 'k':
			ccfg.socket_path = optarg;
			break;
		case 'N':
			ccfg.name = optarg;
			break;
		case 'F':
			e.frame_log = fopen(optarg, "we");
			if (!e.frame_log) {
				fprintf(stderr, TOOL ": cannot write %s: %s\n", optarg,
					strerror(errno));
				return 1;
			}
			break;
		case 'j':
			stats_path = optarg;
			break;
		case 'L':
			return list_encoders();
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
	zcv_stats_init(&e.stats);

	/* the encoder first: without one there is nothing to ask the producer for */
	if (!ecfg.device) {
		r = zcv_encoder_find(ecfg.codec, devpath, sizeof(devpath), &why);
		if (r < 0) {
			fprintf(stderr,
				TOOL
				": no V4L2 encoder found. Looked for a memory-to-memory device "
				"whose CAPTURE queue offers a compressed format%s; found: %s. "
				"Load an encoder driver (e.g. vicodec) or pass --device.\n",
				ecfg.codec ? " (the --codec asked for)" : "",
				why ? why : strerror(-r));
			goto out;
		}
		ecfg.device = devpath;
	}
	r = zcv_encoder_create(&ecfg, &ecbs, &e, &e.enc, &why);
	if (r < 0) {
		fprintf(stderr, TOOL ": %s\n", why);
		goto out;
	}
	if (zcv_encoder_probe_needs(e.enc, ZCV_FMT_NV12, &needs) == 0) {
		ccfg.constraints.stride_align = needs.stride_align;
		ccfg.constraints.height_align = needs.height_align;
	}
	if (!strcmp(out, "-")) {
		e.out_fd = STDOUT_FILENO;
	} else {
		e.out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (e.out_fd < 0) {
			fprintf(stderr, TOOL ": cannot open %s for writing: %s\n", out,
				strerror(errno));
			goto out;
		}
	}
	r = tool_connect(TOOL, &ccfg, &cbs, &e, &e.client);
	if (r < 0)
		goto out;
	fprintf(stderr, TOOL ": encoding to %s with %s (%s)", out, zcv_encoder_device(e.enc),
		zcv_encoder_card(e.enc));
	{
		char a[5];

		fprintf(stderr,
			", codec %s; it needs strides aligned to %u and heights to %u lines\n",
			zcv_fourcc_str(zcv_encoder_codec(e.enc), a), needs.stride_align,
			needs.height_align);
	}
	sfd = tool_signalfd();
	for (;;) {
		bool enc_poll = e.started && zcv_encoder_streaming(e.enc) && !e.drained;
		struct pollfd pfd[3] = {
			/* POLLOUT too while releases wait for room in the socket */
			{ .fd = e.closed ? -1 : zcv_client_get_fd(e.client),
			  .events = e.closed ? 0 : zcv_client_get_events(e.client) },
			{ .fd = enc_poll ? zcv_encoder_get_fd(e.enc) : -1,
			  .events = POLLIN | POLLOUT | POLLPRI },
			{ .fd = sfd, .events = POLLIN },
		};

		if (e.drained || (e.failed && !e.started))
			break;
		/* end of stream, a signal or --frames: drain the encoder */
		if ((e.closed || e.failed) && !e.draining) {
			e.draining = true;
			zcv_encoder_drain(e.enc);
		}
		if (e.draining && !drain_deadline)
			drain_deadline = zcv_now_ns() + 10000000000ull;
		if (e.draining && zcv_now_ns() > drain_deadline) {
			fprintf(stderr, TOOL ": the encoder did not finish draining within 10 s\n");
			fail_now(&e, -ETIMEDOUT);
			break;
		}
		if (e.draining && !zcv_encoder_streaming(e.enc))
			break;
		if (poll(pfd, 3, e.draining ? 100 : 1000) < 0 && errno != EINTR) {
			fprintf(stderr, TOOL ": poll: %s\n", strerror(errno));
			break;
		}
		if (pfd[2].revents) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) > 0 && e.draining)
				break; /* second signal: stop at once */
			e.closed = true;
		}
		if (pfd[1].revents) {
			r = zcv_encoder_dispatch(e.enc);
			if (r < 0) {
				fprintf(stderr, TOOL ": %s\n", zcv_encoder_error(e.enc));
				fail_now(&e, r);
				break;
			}
			if (r == 1)
				e.drained = true;
		}
		if (pfd[0].revents) {
			r = zcv_client_dispatch(e.client);
			tool_end_dispatch(&e.end, r);
			if (e.end.error)
				fail_now(&e, e.end.error);
			if (r != 0)
				e.closed = true;
		}
		release_done(&e);
	}
	/* the stream's failure is told here; the encoder's where it happened */
	if (tool_end_report(TOOL, &e.end))
		ret = 1;
	else
		ret = e.failed ? 1 : 0;
	e.stats.dropped = zcv_client_dropped(e.client);
out:
	if (e.frame_log)
		fclose(e.frame_log);
	if (stats_path) {
		struct zcv_json j;
		double secs = e.stats.end_ns > e.first_in_ns && e.first_in_ns ?
				      (double)(e.stats.end_ns - e.first_in_ns) / 1e9 :
				      0;
		char a[5] = "none";

		if (e.enc)
			zcv_fourcc_str(zcv_encoder_codec(e.enc), a);
		e.stats.frames = e.frames_out;
		e.stats.copied_bytes = zcv_copied_bytes_get() + e.copy_frame_bytes;
		e.stats.path = e.path ? zcv_path_name(e.path) : NULL;
		zcv_json_init(&j, ZCV_JSON_PRETTY);
		zcv_json_begin_object(&j);
		zcv_json_kv_string(&j, "tool", TOOL);
		zcv_json_kv_uint(&j, "frames_in", e.frames_in);
		zcv_json_kv_uint(&j, "frames_out", e.frames_out);
		zcv_json_kv_uint(&j, "bytes_out", e.bytes_out);
		zcv_json_kv_uint(&j, "keyframes", e.keyframes);
		zcv_json_kv_uint(&j, "not_encoded", e.not_encoded);
		zcv_json_kv_fixed(&j, "encoder_fps", secs > 0 ? (double)e.frames_out / secs : 0.0,
				  2);
		zcv_json_kv_string(&j, "device", e.enc ? zcv_encoder_device(e.enc) : "");
		zcv_json_kv_string(&j, "codec", a);
		zcv_json_kv_uint(&j, "stride_align", needs.stride_align);
		zcv_json_kv_uint(&j, "height_align", needs.height_align);
		tool_end_json(&j, &e.end);
		zcv_json_end_object(&j);
		r = zcv_stats_write_json_file(&e.stats, stats_path, &j);
		zcv_json_finish(&j);
		if (r < 0)
			fprintf(stderr, TOOL ": cannot write stats to %s: %s\n", stats_path,
				strerror(-r));
	}
	if (e.frames_out || e.frames_in)
		fprintf(stderr,
			TOOL ": %" PRIu64 " frames in, %" PRIu64 " out (%" PRIu64
			     " bytes), %" PRIu64 " skipped by the producer, %" PRIu64
			     " not encoded\n",
			e.frames_in, e.frames_out, e.bytes_out,
			e.client ? zcv_client_dropped(e.client) : 0, e.not_encoded);
	/* the encoder goes first: it must let go of the imported buffers */
	zcv_encoder_destroy(e.enc);
	zcv_client_destroy(e.client);
	if (e.out_fd > STDOUT_FILENO && close(e.out_fd) < 0)
		ret = 1;
	if (sfd >= 0)
		close(sfd);
	zcv_stats_finish(&e.stats);
	return ret;
}
