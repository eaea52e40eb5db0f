/* SPDX-License-Identifier: MIT */
/* zcv-capture: serves frames from a source to every connected consumer.
 * Flags and messages; the producer library (<zcv/producer.h>) does the rest. */
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <zcv/pattern.h>
#include <zcv/producer_internal.h>
#include <zcv/v4l2.h>
#include "tool_common.h"

#define TOOL "zcv-capture"

static struct capture {
	struct zcv_producer_config cfg;
	const char *source, *stats_path;
	uint64_t checksum_every;
	FILE *checksums, *dump; /* testing: the frames as captured */
	bool fps_set, quiet, persistent, no_persistent;
} c = {
	.cfg = { .size = sizeof(struct zcv_producer_config) },
	.source = "pattern",
	.checksum_every = 1,
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
		"  --persistent         survive the device going away: consumers stay, the device\n"
		"                       is reopened when it is back (default for /dev/v4l/by-id/\n"
		"                       and /dev/v4l/by-path/ names; --no-persistent: end)\n"
		"  --pattern NAME       bars (default) or checkers\n"
		"  --size WxH           frame size (pattern default 1280x720; V4L2: the driver's)\n"
		"  --format FOURCC      NV12 (pattern default), I420, NV16, YUYV, UYVY, XRGB8888,\n"
		"                       ARGB8888, GREY; V4L2 also NV12M/NV16M/YUV420M (a plane per "
		"fd)\n"
		"  --fps N[/D]          frame rate; pattern: 0 = unpaced (default 30)\n"
		"  --buffers N          buffers in the pool, 2..32 (default: 6, grown to\n"
		"                       what the consumers awaited with --wait-consumers\n"
		"                       ask to hold)\n"
		"  --frames N           stop after N frames, exit once consumers released them\n"
		"  --wait-consumers N   start the source only once N consumers are streaming\n"
		"  --socket PATH        socket path (default $XDG_RUNTIME_DIR/zcv/default.sock)\n"
		"  --max-hold N         frames one consumer may hold at once, at most and when it\n"
		"                       asks for no number (default: up to 16 for those that\n"
		"                       ask, 2 for those that do not)\n"
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

/* the kinds from TRUE on take no argument */
enum kind { STR, NUM, U32, SIZE, FORMAT, FPS, PATTERN, GROUP, FILE_OUT, TRUE, LIST, HELP };

/* Every flag: what it sets; numbers (NUM into a uint64_t, U32 into an
 * unsigned) from min to max, times scale, and *set then; below: what the
 * message says under min instead of "at least min". */
static const struct flag {
	const char *name;
	enum kind kind;
	void *dst;
	uint64_t min, max, scale;
	bool *set;
	const char *below;
} flags[] = {
	{ "source", STR, &c.source, 0, 0, 0, NULL, NULL },
	{ "pattern", PATTERN, NULL, 0, 0, 0, NULL, NULL },
	{ "size", SIZE, NULL, 0, 0, 0, NULL, NULL },
	{ "format", FORMAT, NULL, 0, 0, 0, NULL, NULL },
	{ "fps", FPS, NULL, 0, 0, 0, NULL, NULL },
	{ "buffers", U32, &c.cfg.n_buffers, 2, ZCV_POOL_MAX_BUFFERS, 1, NULL, NULL },
	{ "frames", NUM, &c.cfg.frames, 0, UINT32_MAX, 1, NULL, NULL },
	{ "wait-consumers", U32, &c.cfg.wait_consumers, 0, 64, 1, NULL, NULL },
	{ "socket", STR, &c.cfg.socket_path, 0, 0, 0, NULL, NULL },
	{ "max-hold", U32, &c.cfg.max_hold, 1, ZCV_POOL_MAX_BUFFERS, 1, NULL, NULL },
	{ "hold-timeout-ms", NUM, &c.cfg.hold_timeout_ns, 0, 3600000, 1000000, NULL, NULL },
	{ "stats-json", STR, &c.stats_path, 0, 0, 0, NULL, NULL },
	{ "quiet", TRUE, &c.quiet, 0, 0, 0, NULL, NULL },
	{ "list", LIST, NULL, 0, 0, 0, NULL, NULL },
	{ "group", GROUP, NULL, 0, 0, 0, NULL, NULL },
	{ "checksums", FILE_OUT, &c.checksums, 0, 0, 0, NULL, NULL },
	{ "checksum-every", NUM, &c.checksum_every, 1, UINT32_MAX, 1, NULL, "a number from 1" },
	{ "dump-frames", FILE_OUT, &c.dump, 0, 0, 0, NULL, NULL },
	{ "input", U32, &c.cfg.input, 0, 255, 1, &c.cfg.select_input, NULL },
	{ "dv-timings", STR, &c.cfg.dv_timings, 0, 0, 0, NULL, NULL },
	{ "require-zero-copy", TRUE, &c.cfg.require_zero_copy, 0, 0, 0, NULL, NULL },
	{ "force-copy", TRUE, &c.cfg.force_copy, 0, 0, 0, NULL, NULL },
	{ "persistent", TRUE, &c.persistent, 0, 0, 0, NULL, NULL },
	{ "no-persistent", TRUE, &c.no_persistent, 0, 0, 0, NULL, NULL },
	{ "help", HELP, NULL, 0, 0, 0, NULL, NULL },
};

/* Applies one flag. Returns -1 to go on, else the exit status. */
static int apply(const struct flag *f)
{
	char name[32], *end;
	struct group *gr;
	uint64_t v;

	snprintf(name, sizeof(name), "--%s", f->name);
	switch (f->kind) {
	case STR:
		*(const char **)f->dst = optarg;
		return -1;
	case TRUE:
		*(bool *)f->dst = true;
		return -1;
	case NUM:
	case U32:
		v = f->min;
		if (tool_parse_uint(TOOL, name, optarg, f->max, &v) == 0 && v >= f->min) {
			v *= f->scale;
			if (f->kind == U32)
				*(unsigned *)f->dst = (unsigned)v;
			else
				*(uint64_t *)f->dst = v;
			if (f->set)
				*f->set = true;
			return -1;
		}
		if (f->below)
			fprintf(stderr, TOOL ": %s needs %s\n", name, f->below);
		else if (v < f->min)
			fprintf(stderr, TOOL ": %s needs at least %" PRIu64 "\n", name, f->min);
		return 2;
	case SIZE:
		return tool_parse_size(TOOL, optarg, &c.cfg.width, &c.cfg.height) < 0 ? 2 : -1;
	case FORMAT:
		/* the one-fd-per-plane V4L2 variants carry the same colour format */
		if (!strcasecmp(optarg, "NV12M") || !strcasecmp(optarg, "NV16M") ||
		    !strcasecmp(optarg, "YUV420M")) {
			c.cfg.fd_per_plane = true;
			optarg[strlen(optarg) - 1] = '\0';
		}
		return tool_parse_format(TOOL, optarg, &c.cfg.fourcc) < 0 ? 2 : -1;
	case FPS:
		c.fps_set = true;
		return tool_parse_fps(TOOL, optarg, &c.cfg.fps_num, &c.cfg.fps_den) < 0 ? 2 : -1;
	case PATTERN:
		c.cfg.pattern = optarg;
		if (zcv_pattern_from_name(optarg, &(enum zcv_pattern){ 0 }) == 0)
			return -1;
		fprintf(stderr, TOOL ": unknown --pattern '%s' (bars, checkers)\n", optarg);
		return 2;
	case GROUP:
		c.cfg.allow_group = true;
		if ((gr = getgrnam(optarg))) {
			c.cfg.allowed_gid = gr->gr_gid;
			return -1;
		}
		if (optarg[0] >= '0' && optarg[0] <= '9' &&
		    (v = strtoul(optarg, &end, 10), !*end) && v < UINT32_MAX) {
			c.cfg.allowed_gid = (uint32_t)v;
			return -1;
		}
		fprintf(stderr, TOOL ": no group named '%s'\n", optarg);
		return 2;
	case FILE_OUT:
		*(FILE **)f->dst = fopen(optarg, "we");
		if (*(FILE **)f->dst)
			return -1;
		fprintf(stderr, TOOL ": cannot write %s: %s\n", optarg, strerror(errno));
		return 1;
	case LIST:
		return zcv_v4l2_list(stdout) < 0 ? 1 : 0;
	case HELP:
		break;
	}
	usage(stdout);
	return 0;
}

static void on_joined(void *data, const struct zcv_producer_consumer *ci)
{
	if (!c.quiet) /* names are the consumers' words: sanitised for the terminal */
		fprintf(stderr, TOOL ": consumer %u '%s' (pid %d) joined, path %s%s%s%s\n", ci->id,
			zcv_log_safe(ci->name), ci->pid, zcv_path_name(ci->path),
			ci->path_reason[0] ? " (" : "", zcv_log_safe(ci->path_reason),
			ci->path_reason[0] ? ")" : "");
}

static void on_left(void *data, const struct zcv_producer_consumer *ci)
{
	if (!c.quiet)
		fprintf(stderr,
			TOOL ": consumer %u '%s' left: %s (sent %" PRIu64 ", skipped %" PRIu64
			     ")\n",
			ci->id, zcv_log_safe(ci->name),
			ci->end_reason[0] ? zcv_log_safe(ci->end_reason) : "hung up",
			ci->frames_sent, ci->skipped);
}

static void on_allocated(void *data, int result, const char *summary)
{
	if (!c.quiet || result < 0)
		fprintf(stderr, TOOL ": %s\n", summary);
	if (result < 0 && !c.quiet)
		fprintf(stderr,
			TOOL ": consumers whose needs the buffers do not meet get the copy tier\n");
}

static void on_source_changed(void *data, bool present, const char *what)
{
	fprintf(stderr, TOOL ": %s\n", what);
}

static const struct zcv_producer_callbacks callbacks = {
	.size = sizeof(callbacks),
	.consumer_joined = on_joined,
	.consumer_left = on_left,
	.allocated = on_allocated,
	.source_changed = on_source_changed,
};

/* Serves until the stream ends (0) or fails (1). A signal ends it, letting
 * consumers give their frames back first; a second one at once. */
static int serve(struct zcv_producer *p, int sfd)
{
	struct signalfd_siginfo si;
	bool stopping = false;
	int r;

	for (;;) {
		struct pollfd pfd[2] = { { .fd = zcv_producer_get_fd(p), .events = POLLIN },
					 { .fd = sfd, .events = POLLIN } };

		if (poll(pfd, 2, -1) < 0 && errno != EINTR) {
			fprintf(stderr, TOOL ": poll: %s\n", strerror(errno));
			return 1;
		}
		if (pfd[1].revents) {
			if (read(sfd, &si, sizeof(si)) > 0 && !c.quiet)
				fprintf(stderr, TOOL ": signal %u, stopping\n", si.ssi_signo);
			if (stopping)
				return 0;
			stopping = true;
			zcv_producer_stop(p);
		}
		r = zcv_producer_dispatch(p);
		if (r < 0)
			fprintf(stderr, TOOL ": %s\n", zcv_producer_error(p));
		if (r)
			return r < 0;
	}
}

int main(int argc, char **argv)
{
	struct option opts[ZCV_ARRAY_SIZE(flags) + 1] = { 0 };
	const char *sock;
	int opt, r, sfd = -1, fds_start = tool_count_fds(), ret = 1;
	struct zcv_producer *p = NULL;
	struct zcv_stats stats;
	struct zcv_layout l;
	struct zcv_json j;
	char why[256];

	for (unsigned i = 0; i < ZCV_ARRAY_SIZE(flags); i++)
		opts[i] = (struct option){ flags[i].name, flags[i].kind < TRUE, NULL, (int)i };
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			return 0;
		}
		if (opt < 0 || opt >= (int)ZCV_ARRAY_SIZE(flags)) {
			usage(stderr);
			return 2;
		}
		if ((r = apply(&flags[opt])) >= 0)
			return r;
	}
	if (optind < argc) {
		fprintf(stderr, TOOL ": unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (strcmp(c.source, "pattern") && strncmp(c.source, "/dev/", 5)) {
		fprintf(stderr,
			TOOL
			": unknown --source '%s': use 'pattern' or a device such as /dev/video0\n",
			c.source);
		return 2;
	}
	c.cfg.source = strcmp(c.source, "pattern") ? ZCV_PRODUCER_V4L2 : ZCV_PRODUCER_PATTERN;
	c.cfg.device = c.source;
	/* a stable name says the user expects that device back after a replug */
	c.cfg.persistent = c.cfg.source == ZCV_PRODUCER_V4L2 && !c.no_persistent &&
			   (c.persistent || !strncmp(c.source, "/dev/v4l/by-id/", 15) ||
			    !strncmp(c.source, "/dev/v4l/by-path/", 17));
	if (!c.fps_set && c.cfg.source == ZCV_PRODUCER_PATTERN) {
		c.cfg.fps_num = 30;
		c.cfg.fps_den = 1;
	}
	zcv_stats_init(&stats);
	/* the tool's own members of the stats JSON, filled in as the run goes */
	zcv_json_init(&j, ZCV_JSON_PRETTY);
	zcv_json_begin_object(&j);
	zcv_json_kv_string(&j, "tool", TOOL);

	r = zcv_producer_create(&c.cfg, &callbacks, NULL, &p, why, sizeof(why));
	if (r < 0) {
		fprintf(stderr, TOOL ": %s\n", why);
		if (r == -EINVAL && c.cfg.source == ZCV_PRODUCER_PATTERN)
			fprintf(stderr, TOOL ": the size must suit the format (4:2:x formats need "
					     "an even width, 4:2:0 an even height)\n");
		goto out;
	}
	if (zcv_producer_fallback_reason(p))
		fprintf(stderr, TOOL ": copy tier: %s\n", zcv_producer_fallback_reason(p));
	zcv_producer_log_frames(p, c.checksums, c.checksum_every, c.dump);
	r = zcv_producer_start(p);
	sock = c.cfg.socket_path ? c.cfg.socket_path : "the default socket";
	if (r == -EADDRINUSE)
		fprintf(stderr,
			TOOL ": another producer is already serving %s; stop it or pass a "
			     "different --socket\n",
			sock);
	else if (r == -EACCES && c.cfg.allow_group && !c.cfg.socket_path)
		fprintf(stderr,
			TOOL
			": group %u cannot pass through to the default socket's directory "
			"($XDG_RUNTIME_DIR is usually its owner's alone); pass --socket PATH in "
			"a directory the group can reach\n",
			c.cfg.allowed_gid);
	else if (r < 0)
		fprintf(stderr, TOOL ": cannot listen on %s: %s\n", sock, strerror(-r));
	if (r < 0)
		goto out;
	sfd = tool_signalfd();
	zcv_producer_get_layout(p, &l);
	if (!c.quiet)
		fprintf(stderr, TOOL ": serving %ux%u %s from %s (%s) on %s%s\n", l.width, l.height,
			zcv_format_lookup(l.fourcc)->name, c.source, zcv_producer_path(p),
			zcv_producer_socket_path(p),
			c.cfg.wait_consumers ? ", waiting for consumers" : "");
	ret = serve(p, sfd);
out:
	if (p)
		zcv_producer_stats(p, &stats, &j);
	zcv_producer_destroy(p);
	if (sfd >= 0)
		close(sfd);
	if (c.checksums)
		fclose(c.checksums);
	if (c.dump)
		fclose(c.dump);
	if (c.stats_path) {
		/* every fd the run opened is closed by now: start and end must match */
		zcv_json_kv_int(&j, "fds_at_start", fds_start);
		zcv_json_kv_int(&j, "fds_at_end", tool_count_fds());
		zcv_json_end_object(&j);
		r = zcv_stats_write_json_file(&stats, c.stats_path, &j);
		if (r < 0) {
			fprintf(stderr, TOOL ": cannot write stats to %s: %s\n", c.stats_path,
				strerror(-r));
			ret = 1;
		}
	}
	zcv_json_finish(&j);
	zcv_stats_finish(&stats);
	return ret;
}
