/* SPDX-License-Identifier: MIT */
/* zcv-display: shows a zcv stream on a KMS display. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zcv/display.h>
#include <zcv/sink.h>
#include "tool_common.h"

#define TOOL "zcv-display"

struct viewer {
	struct zcv_sink *sink;
	struct zcv_client *client;
	struct zcv_display *disp;
	bool quiet;
	char last_reason[256];
};

static void on_fallback(void *data, const char *reason)
{
	struct viewer *v = data;

	if (!strcmp(reason, v->last_reason))
		return;
	snprintf(v->last_reason, sizeof(v->last_reason), "%s", reason);
	fprintf(stderr,
		TOOL ": copy path: %s; every frame is copied into a dumb buffer (slower, "
		     "counted in copied_bytes)\n",
		reason);
}

static void on_format(void *data, const struct zcv_client_format *fmt)
{
	struct viewer *v = data;
	const struct zcv_format_info *fi = zcv_format_lookup(fmt->layout.fourcc);

	if (!v->quiet)
		fprintf(stderr, TOOL ": stream %ux%u %s over %s (generation %u, %u buffers)\n",
			fmt->layout.width, fmt->layout.height, fi ? fi->name : "?",
			zcv_path_name(fmt->path), fmt->generation, fmt->n_buffers);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " TOOL " [options]\n"
		"Show a zcv stream on a KMS display: zero-copy (PRIME import, a framebuffer per\n"
		"buffer, page flips), or - when the display cannot import the buffers - by\n"
		"copying into dumb buffers, which it says and counts (copied_bytes).\n"
		"Needs DRM master: run it from a text console (a free VT), not under X/Wayland.\n\n"
		"  --device PATH        DRM card (default: the first with a connected connector)\n"
		"  --connector NAME     connector, e.g. HDMI-A-1 (default: the first connected)\n"
		"  --mode WxH[@R]       display mode (default: the connector's preferred mode)\n"
		"  --scale              zero-copy: scale to fit with plane scaling where the\n"
		"                       driver can (default: centre, cut what does not fit)\n"
		"  --legacy             legacy modesetting even where atomic works\n"
		"  --force-copy         take the copy path even where import works (testing)\n"
		"  --frames N           stop after N frames\n"
		"  --max-hold N         frames to ask the producer to let us hold (default 3:\n"
		"                       on screen, flip pending, next; run zcv-capture with\n"
		"                       --max-hold 3 or more)\n"
		"  --socket PATH        producer socket (default: the default path)\n");
	tool_reconnect_usage(f, true);
	fprintf(f,
		"  --name NAME          consumer name shown by the producer (default zcv-display)\n"
		"  --snapshot FILE.png  at exit, save what is on screen as PNG (writeback\n"
		"                       connector where the driver has one, else the buffer)\n"
		"  --snapshot-raw FILE  at exit, save the raw planes of the frame on screen "
		"(testing)\n"
		"  --stats-json PATH    write stats as JSON at exit\n"
		"  --quiet              no progress lines\n"
		"  --help\n");
}

static int parse_mode(const char *s, struct zcv_display_config *cfg)
{
	unsigned w, h, r = 0;
	char tail;
	int n = sscanf(s, "%ux%u@%u%c", &w, &h, &r, &tail);

	if (n < 2 || n > 3 || (n == 2 && strchr(s, '@')) || !w || !h || w > 16384 || h > 16384) {
		fprintf(stderr,
			TOOL ": --mode needs WIDTHxHEIGHT or WIDTHxHEIGHT@HZ, e.g. 1280x720, "
			     "not '%s'\n",
			s);
		return -EINVAL;
	}
	cfg->width = w;
	cfg->height = h;
	cfg->refresh = r;
	return 0;
}

/* Raw planes of the frame on screen, and its checksum (as the producer's
 * --checksums computes it). */
static int dump_shown(struct viewer *v, const char *path, uint64_t *ret_sum)
{
	const struct zcv_client_frame *f = zcv_display_shown(v->disp);
	const struct zcv_client_format *fmt = zcv_client_get_format(v->client);
	FILE *out = NULL;
	int r = 0;

	if (!f || !fmt || f->generation != fmt->generation)
		return -ENODATA;
	for (unsigned p = 0; p < f->n_planes; p++)
		if (!f->planes[p])
			return -EFAULT;
	if (path && !(out = fopen(path, "we")))
		return -errno;
	zcv_sink_begin_access(v->sink, f);
	*ret_sum = zcv_frame_checksum(&fmt->layout, f->planes);
	for (unsigned p = 0; out && p < f->n_planes; p++)
		if (fwrite(f->planes[p], 1, fmt->layout.planes[p].size, out) !=
		    fmt->layout.planes[p].size)
			r = -EIO;
	zcv_sink_end_access(v->sink, f);
	if (out && fclose(out) != 0 && !r)
		r = -EIO;
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "connector", required_argument, NULL, 'C' },
		{ "mode", required_argument, NULL, 'm' },
		{ "scale", no_argument, NULL, 'S' },
		{ "legacy", no_argument, NULL, 'L' },
		{ "force-copy", no_argument, NULL, 'F' },
		{ "frames", required_argument, NULL, 'n' },
		{ "max-hold", required_argument, NULL, 'H' },
		{ "socket", required_argument, NULL, 'k' },
		{ "name", required_argument, NULL, 'N' },
		{ "snapshot", required_argument, NULL, 'p' },
		{ "snapshot-raw", required_argument, NULL, 'r' },
		{ "stats-json", required_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		TOOL_RECONNECT_OPTIONS,
		{ 0 },
	};
	struct zcv_display_config dcfg = { 0 };
	/* the frame on screen stays held until the next flip: however long
	 * the stream pauses, that is no reason to evict the display */
	struct zcv_client_config cfg = { .size = sizeof(struct zcv_client_config),
					 .name = TOOL,
					 .constraints.hold = 3,
					 .keeps_latest = true };
	struct viewer v = { 0 };
	struct tool_reconnect rc = { .tool = TOOL, .reconnect = true };
	struct zcv_sink_run_config run = { .size = sizeof(struct zcv_sink_run_config),
					   .handle_signals = true,
					   .format = on_format,
					   .data = &v };
	struct zcv_display_image img = { 0 };
	struct zcv_display_stats ds = { 0 };
	struct zcv_display_info di = { 0 };
	struct zcv_json j;
	const char *stats_path = NULL, *snap_path = NULL, *raw_path = NULL;
	char err[1024] = "";
	uint64_t u, shown_sum = 0;
	bool have_sum = false;
	int opt, e, ret = 1, snap_err = 0;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			dcfg.device = optarg;
			break;
		case 'C':
			dcfg.connector = optarg;
			break;
		case 'm':
			if (parse_mode(optarg, &dcfg) < 0)
				return 2;
			break;
		case 'S':
			dcfg.scale = true;
			break;
		case 'L':
			dcfg.legacy = true;
			break;
		case 'F':
			dcfg.force_copy = true;
			break;
		case 'n':
			if (tool_parse_uint(TOOL, "--frames", optarg, UINT32_MAX, &run.max_frames) <
			    0)
				return 2;
			break;
		case 'H':
			if (tool_parse_uint(TOOL, "--max-hold", optarg, 32, &u) < 0)
				return 2;
			if (u < 1) {
				fprintf(stderr, TOOL ": --max-hold needs at least 1\n");
				return 2;
			}
			cfg.constraints.hold = (unsigned)u;
			break;
		case 'k':
			cfg.socket_path = optarg;
			break;
		case 'N':
			cfg.name = optarg;
			break;
		case 'p':
			snap_path = optarg;
			break;
		case 'r':
			raw_path = optarg;
			break;
		case 'j':
			stats_path = optarg;
			break;
		case 'q':
			v.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			if (tool_reconnect_option(&rc, opt))
				break;
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, TOOL ": unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	tool_reconnect_setup(&rc, &cfg, &run);
	/* the tool's own members, filled in as the run goes */
	tool_stats_begin(&j, TOOL);
	e = zcv_display_sink_create(&dcfg, on_fallback, &v, &v.sink, &v.disp, err, sizeof(err));
	if (e < 0) {
		const char *hint = "";

		if (e == -ENOENT)
			hint = dcfg.device ? " (check the path: ls /dev/dri)" :
					     " (no KMS display driver is loaded on this machine)";
		else if (e == -ENODEV)
			hint = "; connect a display, or pick another card with --device";
		else if (e == -EINVAL && dcfg.width)
			hint = "; pick one of those with --mode, or leave --mode out for the "
			       "preferred one";
		else if (e == -EBUSY)
			hint = "; stop it, or run zcv-display from a free text console "
			       "(Ctrl+Alt+F3) as root";
		else if (e == -EACCES || e == -EPERM)
			hint = " (run as root, or from a free text console as a user in the "
			       "video group)";
		fprintf(stderr, TOOL ": %s%s\n", err, hint);
		goto done;
	}
	zcv_display_get_info(v.disp, &di);
	if (!v.quiet)
		fprintf(stderr,
			TOOL ": %s (%s), connector %s, %ux%u@%u, %s modesetting, plane %u%s\n",
			di.device, di.driver, di.connector, di.mode_width, di.mode_height,
			di.mode_refresh, di.atomic ? "atomic" : "legacy", di.plane_id,
			di.writeback ? ", writeback connector for snapshots" : "");
	if (tool_connect(TOOL, v.sink, &cfg, &v.client) < 0)
		goto done;
	e = zcv_sink_run(v.sink, &run);
	ret = tool_run_report(TOOL, v.sink, e, NULL);

	/* the last frame stays on screen (the run waited for its flip): look
	 * at it before letting it go */
	if (snap_path) {
		snap_err = zcv_display_snapshot(v.disp, &img);
		if (snap_err < 0) {
			fprintf(stderr, TOOL ": cannot take a snapshot: %s\n",
				snap_err == -ENODATA ? "nothing was shown" : strerror(-snap_err));
			ret = 1;
		}
	}
	if (snap_path || raw_path) {
		e = dump_shown(&v, raw_path, &shown_sum);
		have_sum = e == 0;
		if (e < 0 && raw_path) {
			fprintf(stderr, TOOL ": cannot save the shown frame to %s: %s\n", raw_path,
				strerror(-e));
			ret = 1;
		}
	}
	zcv_display_get_info(v.disp, &di);
	zcv_display_get_stats(v.disp, &ds);
	{
		double span = ds.flips > 1 ? (double)(ds.last_flip_ns - ds.first_flip_ns) / 1e9 : 0;
		double rate = span > 0 ? (double)(ds.flips - 1) / span : 0;
		const struct zcv_client_format *fmt = zcv_client_get_format(v.client);
		struct zcv_sink_stats st = { .size = sizeof(st) };
		char mode[48];

		zcv_sink_get_stats(v.sink, &st);
		if (!v.quiet && st.frames)
			fprintf(stderr,
				TOOL ": %" PRIu64 " frames, %" PRIu64 " flips at %.1f/s, %" PRIu64
				     " skipped, %" PRIu64 " dropped, path %s (%s), copied %" PRIu64
				     " bytes, capture-to-flip p50 %.1f ms p99 %.1f ms\n",
				st.frames, ds.flips, rate, ds.skipped, st.dropped,
				zcv_path_name(st.path), di.copy ? "copy" : "zero-copy",
				st.copied_bytes, (double)st.latency_p50_ns / 1e6,
				(double)st.latency_p99_ns / 1e6);
		zcv_json_kv_uint(&j, "flips", ds.flips);
		zcv_json_kv_fixed(&j, "flip_rate", rate, 2);
		zcv_json_kv_uint(&j, "skipped", ds.skipped);
		zcv_json_kv_uint(&j, "imports", ds.imports);
		zcv_json_kv_uint(&j, "held_max", ds.held_max);
		zcv_json_kv_uint(&j, "display_copied_bytes", ds.copied_bytes);
		zcv_json_kv_string(&j, "display_path", di.copy ? "copy" : "zero-copy");
		zcv_json_kv_string(&j, "fallback_reason", di.fallback_reason);
		zcv_json_kv_string(&j, "stream_path", fmt ? zcv_path_name(fmt->path) : "");
		zcv_json_kv_string(&j, "device", di.device);
		zcv_json_kv_string(&j, "driver", di.driver);
		zcv_json_kv_string(&j, "connector", di.connector);
		snprintf(mode, sizeof(mode), "%ux%u@%u", di.mode_width, di.mode_height,
			 di.mode_refresh);
		zcv_json_kv_string(&j, "mode", mode);
		zcv_json_kv_string(&j, "modeset", di.atomic ? "atomic" : "legacy");
		zcv_json_kv_string(&j, "placement", di.placement);
		if (img.pixels) {
			snprintf(mode, sizeof(mode), "%ux%u", img.width, img.height);
			zcv_json_kv_string(&j, "snapshot", snap_path);
			zcv_json_kv_string(&j, "snapshot_source", img.source);
			zcv_json_kv_string(&j, "snapshot_size", mode);
			zcv_json_kv_uint(&j, "snapshot_sequence", img.sequence);
		}
		if (have_sum) {
			snprintf(mode, sizeof(mode), "%016" PRIx64, shown_sum);
			zcv_json_kv_string(&j, "shown_checksum", mode);
		}
	}
done:
	if (stats_path && tool_write_stats(TOOL, v.sink, stats_path, &j) < 0)
		ret = 1;
	else if (!stats_path)
		zcv_json_finish(&j);
	/* display off / restored, framebuffers gone, every frame handed back,
	 * then the PNG (slow) with nothing held */
	zcv_sink_destroy(v.sink);
	if (img.pixels) {
		e = zcv_png_write_xrgb(snap_path, img.pixels, img.width, img.height, img.width * 4);
		if (e < 0) {
			fprintf(stderr, TOOL ": cannot write %s: %s\n", snap_path, strerror(-e));
			ret = 1;
		} else if (!v.quiet) {
			fprintf(stderr,
				TOOL ": snapshot of frame %" PRIu64 " (%ux%u, from the %s) in %s\n",
				img.sequence, img.width, img.height, img.source, snap_path);
		}
	}
	free(img.pixels);
	return ret;
}
