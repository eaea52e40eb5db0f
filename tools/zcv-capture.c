/* SPDX-License-Identifier: MIT */
/* zcv-capture: serves frames from a source to every connected consumer. */
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <zcv/memory.h>
#include <zcv/server.h>
#include <zcv/source.h>
#include <zcv/stats.h>
#include <zcv/stream_id.h>
#include <zcv/v4l2.h>
#include "tool_common.h"

#define TOOL "zcv-capture"

struct capture {
	FILE *checksums; /* --checksums: "sequence checksum" of frames published */
	uint64_t checksum_every;
	FILE *dump; /* --dump-frames: every frame published, as captured (testing) */
	struct zcv_server *srv;
	struct zcv_source *src;
	struct zcv_stats stats;
	uint64_t wait_consumers;
	bool started, quiet, admitted;
	char alloc[320]; /* what the allocation for the consumers at start chose, and why */
	int fatal;       /* refit left the source unusable */
	int start_error; /* the source would not start */
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " TOOL " [options]\n"
		"Serve video frames to zcv consumers over a Unix socket, zero-copy.\n\n"
		"  --source SRC         'pattern' (default): the deterministic test pattern,\n"
		"                       or a V4L2 capture device such as /dev/video0\n"
		"  --list               list V4L2 devices, their formats and DMA-BUF export\n"
		"  --input N            V4L2 input to select (see --list)\n"
		"  --dv-timings WxHpF   DV timings for HDMI-like inputs ('auto': the best listed)\n"
		"  --require-zero-copy  fail instead of copying when buffers cannot be exported\n"
		"  --force-copy         take the copy tier even when export works (testing)\n"
		"  --pattern NAME       bars (default) or checkers\n"
		"  --size WxH           frame size (pattern default 1280x720; V4L2: the driver's)\n"
		"  --format FOURCC      NV12 (pattern default), I420, NV16, YUYV, UYVY, XRGB8888,\n"
		"                       ARGB8888, GREY; V4L2 also NV12M/NV16M/YUV420M (a plane per "
		"fd)\n"
		"  --fps N[/D]          frame rate; pattern: 0 = unpaced (default 30)\n"
		"  --buffers N          buffers in the pool (default 6, 2..32)\n"
		"  --frames N           stop after N frames, exit once consumers released them\n"
		"  --wait-consumers N   start the source only once N consumers are streaming\n"
		"  --socket PATH        socket path (default $XDG_RUNTIME_DIR/zcv/default.sock)\n"
		"  --max-hold N         frames one consumer may hold at once (default 2)\n"
		"  --group NAME|GID     also serve consumers of this group (default: same user "
		"only)\n"
		"  --hold-timeout-ms N  evict a consumer holding a frame longer (default 1000)\n"
		"  --stats-json PATH    write stats as JSON at exit\n"
		"  --checksums PATH     write 'sequence checksum' of every frame as captured "
		"(testing)\n"
		"  --checksum-every N   only every Nth frame and the last (default 1)\n"
		"  --dump-frames PATH   write every frame as captured: a 32-byte header ('ZCVD', "
		"width,\n"
		"                       height, fourcc, sequence, bytes) and the visible lines "
		"(testing)\n"
		"  --quiet              no progress lines\n"
		"  --help\n");
}

/* What the producer captured, read through its own mapping of the buffer
 * (for DMA-BUF bracketed with DMA_BUF_IOCTL_SYNC), for tests to compare
 * with what consumers saw. */
static void write_checksum(struct capture *c, struct zcv_buffer *buf, uint64_t seq)
{
	struct zcv_pool *pool = zcv_source_get_pool(c->src);
	const uint8_t *planes[ZCV_MAX_PLANES] = { 0 };

	if (zcv_pool_map(pool, buf->index, PROT_READ) < 0) {
		fprintf(c->checksums, "%" PRIu64 " unmappable\n", seq);
		return;
	}
	for (unsigned f = 0; f < buf->n_fds; f++)
		zcv_dmabuf_sync_start(buf->fds[f], ZCV_SYNC_READ);
	for (unsigned p = 0; p < pool->layout.n_planes; p++)
		planes[p] = zcv_buffer_plane(pool, buf, p);
	fprintf(c->checksums, "%" PRIu64 " %016" PRIx64 "\n", seq,
		zcv_frame_checksum(&pool->layout, planes));
	for (unsigned f = 0; f < buf->n_fds; f++)
		zcv_dmabuf_sync_end(buf->fds[f], ZCV_SYNC_READ);
}

/* The visible lines of every plane, after a small header, written
 * straight from the producer's mapping (a test aid, not a frame path). */
static void write_dump(struct capture *c, struct zcv_buffer *buf, uint64_t seq)
{
	struct zcv_pool *pool = zcv_source_get_pool(c->src);
	const struct zcv_layout *l = &pool->layout;
	const struct zcv_format_info *fi = zcv_format_lookup(l->fourcc);
	uint32_t hdr[8] = {
		0x4456435a, l->width, l->height, l->fourcc, (uint32_t)seq, (uint32_t)(seq >> 32),
		0,          0
	};

	if (!fi || zcv_pool_map(pool, buf->index, PROT_READ) < 0)
		return;
	for (unsigned p = 0; p < l->n_planes; p++)
		hdr[6] += zcv_format_plane_row_bytes(fi, p, l->width) *
			  zcv_format_plane_lines(fi, p, l->height);
	fwrite(hdr, sizeof(hdr), 1, c->dump);
	for (unsigned f = 0; f < buf->n_fds; f++)
		zcv_dmabuf_sync_start(buf->fds[f], ZCV_SYNC_READ);
	for (unsigned p = 0; p < l->n_planes; p++) {
		const uint8_t *pl = zcv_buffer_plane(pool, buf, p);
		uint32_t row = zcv_format_plane_row_bytes(fi, p, l->width);

		for (uint32_t y = 0; y < zcv_format_plane_lines(fi, p, l->height); y++)
			fwrite(pl + (size_t)y * l->planes[p].stride, row, 1, c->dump);
	}
	for (unsigned f = 0; f < buf->n_fds; f++)
		zcv_dmabuf_sync_end(buf->fds[f], ZCV_SYNC_READ);
}

static void on_frame(void *data, struct zcv_buffer *buf, const struct zcv_frame_meta *meta)
{
	struct capture *c = data;
	uint64_t now;
	int n;

	/* every Nth frame and the last: a checksum reads the whole frame,
	 * which slows an emulated guest enough to lose frames */
	if (c->checksums &&
	    (c->stats.frames % c->checksum_every == 0 || (meta->flags & ZCV_FRAME_FLAG_LAST)))
		write_checksum(c, buf, meta->sequence);
	if (c->dump)
		write_dump(c, buf, meta->sequence);
	n = zcv_server_publish(c->srv, buf->index, meta);
	now = zcv_now_ns();

	if (n < 0)
		fprintf(stderr, TOOL ": internal error publishing buffer %u: %s\n", buf->index,
			strerror(-n));
	if (!c->stats.frames)
		c->stats.start_ns = now;
	c->stats.end_ns = now;
	c->stats.frames++;
	/* producer-side latency: capture (render done) to hand-off done */
	zcv_latency_add(&c->stats.latency, now - meta->timestamp_ns);
}

static void maybe_start(struct capture *c)
{
	int r;

	if (c->started || zcv_server_streaming_count(c->srv) < c->wait_consumers)
		return;
	c->started = true;
	r = zcv_source_start(c->src);
	if (r < 0)
		c->start_error = r; /* the main loop ends the stream and says so */
}

static void on_joined(void *data, const struct zcv_consumer_info *ci)
{
	struct capture *c = data;
	static const char *const paths[] = { "?", "dmabuf", "memfd", "copy" };

	if (!c->quiet)
		/* names are the consumers' words: sanitised for the terminal */
		fprintf(stderr, TOOL ": consumer %u '%s' (pid %d) joined, path %s%s%s%s\n", ci->id,
			zcv_log_safe(ci->name), (int)ci->pid,
			paths[ci->path >= 1 && ci->path <= 3 ? ci->path : 0],
			ci->path_reason[0] ? " (" : "", zcv_log_safe(ci->path_reason),
			ci->path_reason[0] ? ")" : "");
	maybe_start(c);
}

/*
 * Allocation that fits: once the consumers awaited at start have said
 * what they need, the source reallocates (if it must) for all of them,
 * and only then are they sent the pool.
 */
static void on_hello(void *data, const struct zcv_consumer_info *ci)
{
	struct capture *c = data;
	struct zcv_constraints k;
	int r;

	(void)ci;
	if (c->admitted || zcv_server_pending_count(c->srv) < c->wait_consumers)
		return;
	c->admitted = true;
	zcv_server_pending_constraints(c->srv, &k);
	if (zcv_pool_check(zcv_source_get_pool(c->src), &k, c->alloc, sizeof(c->alloc)) ==
	    ZCV_FIT_OK) {
		r = 0;
		snprintf(c->alloc, sizeof(c->alloc),
			 "the %s buffers as allocated fit every consumer", zcv_source_path(c->src));
	} else {
		r = zcv_source_fit(c->src, &k, c->alloc, sizeof(c->alloc));
	}
	if (r == 1 && zcv_server_set_pool(c->srv, zcv_source_get_pool(c->src)) < 0)
		r = -EINVAL;
	if (!c->quiet || r < 0)
		fprintf(stderr,
			TOOL
			": allocation for %u consumer%s (stride align %u, height align %u): %s%s\n",
			zcv_server_pending_count(c->srv),
			zcv_server_pending_count(c->srv) == 1 ? "" : "s",
			k.stride_align ? k.stride_align : 1, k.height_align ? k.height_align : 1,
			r == 1 ? "reallocated: " :
			r == 0 ? "" :
				 "cannot fit: ",
			c->alloc);
	if (r < 0 && !zcv_source_get_pool(c->src)) {
		c->fatal = r;
		return;
	}
	if (r < 0 && !c->quiet)
		fprintf(stderr,
			TOOL ": consumers whose needs the buffers do not meet get the copy tier\n");
	zcv_server_admit(c->srv);
}

static void on_left(void *data, const struct zcv_consumer_info *ci)
{
	struct capture *c = data;

	if (!c->quiet)
		fprintf(stderr,
			TOOL ": consumer %u '%s' left: %s (sent %" PRIu64 ", skipped %" PRIu64
			     ")\n",
			ci->id, zcv_log_safe(ci->name),
			ci->end_reason[0] ? zcv_log_safe(ci->end_reason) : "hung up",
			ci->frames_sent, ci->skipped);
}

/* Consumer table for the stats JSON (every one the server remembers: those
 * connected and the most recent that left), taken while the server exists. */
static void consumers_json(struct capture *c, struct zcv_json *j)
{
	static const char *const paths[] = { "?", "dmabuf", "memfd", "copy" };
	struct zcv_consumer_info *ci = NULL;
	unsigned n = 0, max = 32;

	/* the server fills at most max: ask again with more room until it fits */
	for (;;) {
		struct zcv_consumer_info *more = realloc(ci, max * sizeof(*ci));

		if (!more) {
			fprintf(stderr,
				TOOL ": out of memory listing the consumers for the stats\n");
			n = 0;
			break;
		}
		ci = more;
		n = zcv_server_get_consumers(c->srv, ci, max);
		if (n < max)
			break;
		max *= 2;
	}
	zcv_json_key(j, "consumers");
	zcv_json_begin_array(j);
	for (unsigned i = 0; i < n; i++) {
		zcv_json_begin_object(j);
		zcv_json_kv_uint(j, "id", ci[i].id);
		zcv_json_kv_string(j, "name", ci[i].name);
		zcv_json_kv_int(j, "pid", ci[i].pid);
		zcv_json_kv_string(j, "path",
				   paths[ci[i].path >= 1 && ci[i].path <= 3 ? ci[i].path : 0]);
		zcv_json_kv_string(j, "path_reason", ci[i].path_reason);
		/* the hold it asked for and what the budget granted */
		zcv_json_kv_uint(j, "asked_hold", ci[i].constraints.hold);
		zcv_json_kv_uint(j, "max_hold", ci[i].max_hold);
		zcv_json_kv_uint(j, "held", ci[i].held);
		zcv_json_kv_uint(j, "frames_sent", ci[i].frames_sent);
		zcv_json_kv_uint(j, "skipped", ci[i].skipped);
		zcv_json_kv_uint(j, "copied_bytes", ci[i].copied_bytes);
		zcv_json_kv_int(j, "end_error", ci[i].end_error);
		zcv_json_kv_string(j, "end_reason", ci[i].end_reason);
		zcv_json_end_object(j);
	}
	zcv_json_end_array(j);
	free(ci);
	{
		unsigned total = 0, granted = 0;

		zcv_server_get_budget(c->srv, &total, &granted);
		zcv_json_key(j, "budget");
		zcv_json_begin_object(j);
		zcv_json_kv_uint(j, "total", total);
		zcv_json_kv_uint(j, "granted", granted);
		zcv_json_end_object(j);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "source", required_argument, NULL, 's' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "size", required_argument, NULL, 'S' },
		{ "format", required_argument, NULL, 'f' },
		{ "fps", required_argument, NULL, 'r' },
		{ "buffers", required_argument, NULL, 'b' },
		{ "frames", required_argument, NULL, 'n' },
		{ "wait-consumers", required_argument, NULL, 'w' },
		{ "socket", required_argument, NULL, 'k' },
		{ "max-hold", required_argument, NULL, 'm' },
		{ "hold-timeout-ms", required_argument, NULL, 't' },
		{ "stats-json", required_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "list", no_argument, NULL, 'L' },
		{ "group", required_argument, NULL, 'g' },
		{ "checksums", required_argument, NULL, 'x' },
		{ "checksum-every", required_argument, NULL, 'e' },
		{ "dump-frames", required_argument, NULL, 'X' },
		{ "input", required_argument, NULL, 'i' },
		{ "dv-timings", required_argument, NULL, 'D' },
		{ "require-zero-copy", no_argument, NULL, 'Z' },
		{ "force-copy", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct zcv_v4l2_source_config vcfg = { .input = -1 };
	bool size_set = false, fps_set = false;
	struct zcv_pattern_source_config pcfg = {
		.fourcc = ZCV_FMT_NV12,
		.width = 1280,
		.height = 720,
		.fps_num = 30,
		.fps_den = 1,
	};
	struct zcv_server_config scfg = { 0 };
	struct capture c = { .checksum_every = 1 };
	const char *source = "pattern", *stats_path = NULL;
	struct zcv_json j;
	uint64_t v, end_deadline = 0;
	int opt, r, sfd = -1, fds_start = tool_count_fds(), ret = 1;
	bool ending = false;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			source = optarg;
			break;
		case 'p':
			if (zcv_pattern_from_name(optarg, &pcfg.pattern) < 0) {
				fprintf(stderr, TOOL ": unknown --pattern '%s' (bars, checkers)\n",
					optarg);
				return 2;
			}
			break;
		case 'S':
			if (tool_parse_size(TOOL, optarg, &pcfg.width, &pcfg.height) < 0)
				return 2;
			size_set = true;
			break;
		case 'f':
			/* the one-fd-per-plane V4L2 variants carry the same colour format */
			if (!strcasecmp(optarg, "NV12M") || !strcasecmp(optarg, "NV16M") ||
			    !strcasecmp(optarg, "YUV420M")) {
				vcfg.multiplanar_planes = true;
				optarg[strlen(optarg) - 1] = '\0';
			}
			if (tool_parse_format(TOOL, optarg, &pcfg.fourcc) < 0)
				return 2;
			vcfg.fourcc = pcfg.fourcc;
			break;
		case 'r':
			if (tool_parse_fps(TOOL, optarg, &pcfg.fps_num, &pcfg.fps_den) < 0)
				return 2;
			fps_set = true;
			break;
		case 'g': {
			struct group *gr = getgrnam(optarg);
			char *end;

			if (gr) {
				scfg.allowed_gid = gr->gr_gid;
			} else if (optarg[0] >= '0' && optarg[0] <= '9' &&
				   (v = strtoul(optarg, &end, 10), !*end) && v < UINT32_MAX) {
				scfg.allowed_gid = (gid_t)v;
			} else {
				fprintf(stderr, TOOL ": no group named '%s'\n", optarg);
				return 2;
			}
			scfg.allow_group = true;
			break;
		}
		case 'L':
			return zcv_v4l2_list(stdout) < 0 ? 1 : 0;
		case 'i':
			if (tool_parse_uint(TOOL, "--input", optarg, 255, &v) < 0)
				return 2;
			vcfg.input = (int)v;
			break;
		case 'D':
			vcfg.dv_timings = optarg;
			break;
		case 'Z':
			vcfg.require_zero_copy = true;
			break;
		case 'C':
			vcfg.force_copy = true;
			break;
		case 'b':
			if (tool_parse_uint(TOOL, "--buffers", optarg, ZCV_POOL_MAX_BUFFERS, &v) <
			    0)
				return 2;
			if (v < 2) {
				fprintf(stderr, TOOL ": --buffers needs at least 2\n");
				return 2;
			}
			pcfg.n_buffers = vcfg.n_buffers = (unsigned)v;
			break;
		case 'n':
			if (tool_parse_uint(TOOL, "--frames", optarg, UINT32_MAX, &pcfg.frames) < 0)
				return 2;
			vcfg.frames = pcfg.frames;
			break;
		case 'w':
			if (tool_parse_uint(TOOL, "--wait-consumers", optarg, 64,
					    &c.wait_consumers) < 0)
				return 2;
			break;
		case 'k':
			scfg.socket_path = optarg;
			break;
		case 'm':
			if (tool_parse_uint(TOOL, "--max-hold", optarg, ZCV_POOL_MAX_BUFFERS, &v) <
			    0)
				return 2;
			if (v < 1) {
				fprintf(stderr, TOOL ": --max-hold needs at least 1\n");
				return 2;
			}
			scfg.max_hold = (unsigned)v;
			break;
		case 't':
			if (tool_parse_uint(TOOL, "--hold-timeout-ms", optarg, 3600000, &v) < 0)
				return 2;
			scfg.hold_timeout_ns = v * 1000000ull;
			break;
		case 'j':
			stats_path = optarg;
			break;
		case 'e':
			if (tool_parse_uint(TOOL, "--checksum-every", optarg, UINT32_MAX,
					    &c.checksum_every) < 0 ||
			    c.checksum_every == 0) {
				fprintf(stderr, TOOL ": --checksum-every needs a number from 1\n");
				return 2;
			}
			break;
		case 'x':
			c.checksums = fopen(optarg, "we");
			if (!c.checksums) {
				fprintf(stderr, TOOL ": cannot write %s: %s\n", optarg,
					strerror(errno));
				return 1;
			}
			break;
		case 'X':
			c.dump = fopen(optarg, "we");
			if (!c.dump) {
				fprintf(stderr, TOOL ": cannot write %s: %s\n", optarg,
					strerror(errno));
				return 1;
			}
			break;
		case 'q':
			c.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, TOOL ": unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (strcmp(source, "pattern") && strncmp(source, "/dev/", 5)) {
		fprintf(stderr,
			TOOL
			": unknown --source '%s': use 'pattern' or a device such as /dev/video0\n",
			source);
		return 2;
	}
	zcv_stats_init(&c.stats);
	/* the tool's own members of the stats JSON, filled in as the run goes */
	zcv_json_init(&j, ZCV_JSON_PRETTY);
	zcv_json_begin_object(&j);
	zcv_json_kv_string(&j, "tool", TOOL);

	if (!strcmp(source, "pattern")) {
		scfg.fps_num = pcfg.fps_num;
		scfg.fps_den = pcfg.fps_num ? pcfg.fps_den : 1;
		r = zcv_pattern_source_create(
			&pcfg, &(struct zcv_source_callbacks){ .frame = on_frame }, &c, &c.src);
		if (r < 0) {
			fprintf(stderr, TOOL ": cannot create the pattern source (%ux%u): %s\n",
				pcfg.width, pcfg.height, strerror(-r));
			if (r == -EINVAL)
				fprintf(stderr,
					TOOL ": the size must suit the format (4:2:x formats need "
					     "an even width, 4:2:0 an even height)\n");
			goto out;
		}
	} else {
		const char *why = NULL;

		vcfg.device = source;
		if (size_set) {
			vcfg.width = pcfg.width;
			vcfg.height = pcfg.height;
		}
		if (fps_set) {
			vcfg.fps_num = pcfg.fps_num;
			vcfg.fps_den = pcfg.fps_den;
		}
		r = zcv_v4l2_source_create(&vcfg,
					   &(struct zcv_source_callbacks){ .frame = on_frame }, &c,
					   &c.src, &why);
		if (r < 0) {
			fprintf(stderr, TOOL ": %s\n", why);
			goto out;
		}
		why = zcv_v4l2_source_fallback_reason(c.src);
		if (why)
			fprintf(stderr, TOOL ": copy tier: %s\n", why);
		zcv_v4l2_source_fps(c.src, &scfg.fps_num, &scfg.fps_den);
	}
	/* consumers awaited at start wait for the allocation that fits them */
	scfg.defer_admission = c.wait_consumers > 0;
	r = zcv_server_create(&scfg,
			      &(struct zcv_server_callbacks){ .consumer_joined = on_joined,
							      .consumer_left = on_left,
							      .consumer_hello = on_hello },
			      &c, zcv_source_get_pool(c.src), &c.srv);
	if (r < 0) {
		if (r == -EADDRINUSE)
			fprintf(stderr,
				TOOL ": another producer is already serving %s; stop it or pass a "
				     "different --socket\n",
				scfg.socket_path ? scfg.socket_path : "the default socket");
		else
			fprintf(stderr, TOOL ": cannot listen on %s: %s\n",
				scfg.socket_path ? scfg.socket_path : "the default socket",
				strerror(-r));
		goto out;
	}
	sfd = tool_signalfd();
	if (!c.quiet) {
		const struct zcv_layout *l = &zcv_source_get_pool(c.src)->layout;

		fprintf(stderr, TOOL ": serving %ux%u %s from %s (%s) on %s%s\n", l->width,
			l->height, zcv_format_lookup(l->fourcc)->name, source,
			zcv_source_path(c.src), zcv_server_socket_path(c.srv),
			c.wait_consumers ? ", waiting for consumers" : "");
	}
	maybe_start(&c);

	for (;;) {
		struct pollfd pfd[3] = {
			{ .fd = zcv_server_get_fd(c.srv), .events = POLLIN },
			{ .fd = ending ? -1 : zcv_source_get_fd(c.src), .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
		};

		/* set by maybe_start(), here or from a consumer joining */
		if (c.start_error) {
			fprintf(stderr, TOOL ": cannot start the source %s: %s\n", source,
				strerror(-c.start_error));
			zcv_server_end(c.srv, c.start_error, "the source could not start");
			goto out;
		}
		/* after the last frame: wait until every buffer is back and every
		 * consumer has hung up, bounded by the hold timeout */
		if (ending && ((zcv_pool_count(zcv_source_get_pool(c.src), ZCV_BUFFER_LENT) == 0 &&
				zcv_server_streaming_count(c.srv) == 0) ||
			       zcv_now_ns() > end_deadline))
			break;
		if (poll(pfd, 3, ending ? 50 : -1) < 0 && errno != EINTR) {
			fprintf(stderr, TOOL ": poll: %s\n", strerror(errno));
			goto out;
		}
		if (pfd[2].revents) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) > 0 && !c.quiet)
				fprintf(stderr, TOOL ": signal %u, stopping\n", si.ssi_signo);
			zcv_server_end(c.srv, 0, "producer stopped");
			ret = 0;
			goto out;
		}
		if (pfd[0].revents) {
			r = zcv_server_dispatch(c.srv);
			if (r < 0) {
				fprintf(stderr, TOOL ": server failed: %s\n", strerror(-r));
				goto out;
			}
			if (c.fatal) {
				zcv_server_end(c.srv, c.fatal,
					       "the producer could not allocate its buffers");
				goto out;
			}
		}
		if (pfd[1].revents && c.started) {
			r = zcv_source_dispatch(c.src);
			if (r == -ENODEV) {
				fprintf(stderr,
					TOOL ": the capture device %s is gone (disconnected); "
					     "ending the stream\n",
					source);
				zcv_server_end(c.srv, r, "capture device disconnected");
				goto out;
			}
			if (r < 0) {
				fprintf(stderr, TOOL ": capture failed: %s\n", strerror(-r));
				zcv_server_end(c.srv, r, "capture failed");
				goto out;
			}
			if (r == 1) {
				/* the last frame is out: wait for its release */
				zcv_server_end(c.srv, 0, "end of stream");
				ending = true;
				end_deadline = zcv_now_ns() +
					       (scfg.hold_timeout_ns ? scfg.hold_timeout_ns :
								       1000000000ull) +
					       1000000000ull;
			}
		}
	}
	ret = 0;
out:
	if (c.srv) {
		/* every frame byte this process copied: source copy tier + per-consumer copies */
		c.stats.copied_bytes = zcv_copied_bytes_get();
		consumers_json(&c, &j);
	}
	if (c.src && zcv_source_get_pool(c.src)) {
		struct zcv_pool *pool = zcv_source_get_pool(c.src);

		/* identity of the memory objects lent out: consumers can show they
		 * hold these very objects (same inode), not copies */
		zcv_json_key(&j, "buffer_inodes");
		zcv_json_begin_array(&j);
		for (unsigned i = 0; i < pool->n_buffers; i++)
			for (unsigned f = 0; f < pool->buffers[i].n_fds; f++) {
				struct stat st = { 0 };

				fstat(pool->buffers[i].fds[f], &st);
				zcv_json_uint(&j, st.st_ino);
			}
		zcv_json_end_array(&j);
		c.stats.path = zcv_source_path(c.src);
		/* the contract's dropped, for a producer: frames lost at the source */
		c.stats.dropped = zcv_source_dropped(c.src);
		zcv_json_kv_uint(&j, "source_dropped", zcv_source_dropped(c.src));
		/* times the driver was left without a buffer to capture into */
		zcv_json_kv_uint(&j, "source_starved", zcv_source_starved(c.src));
		zcv_json_kv_string(&j, "allocation", c.alloc);
	}
	zcv_server_destroy(c.srv);
	zcv_source_destroy(c.src);
	if (sfd >= 0)
		close(sfd);
	if (c.checksums)
		fclose(c.checksums);
	if (c.dump)
		fclose(c.dump);
	if (stats_path) {
		/* every fd the run opened is closed by now: start and end must match */
		zcv_json_kv_int(&j, "fds_at_start", fds_start);
		zcv_json_kv_int(&j, "fds_at_end", tool_count_fds());
		zcv_json_end_object(&j);
		r = zcv_stats_write_json_file(&c.stats, stats_path, &j);
		if (r < 0) {
			fprintf(stderr, TOOL ": cannot write stats to %s: %s\n", stats_path,
				strerror(-r));
			ret = 1;
		}
	}
	zcv_json_finish(&j);
	zcv_stats_finish(&c.stats);
	return ret;
}
