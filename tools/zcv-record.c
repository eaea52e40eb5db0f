/* SPDX-License-Identifier: MIT */
/* zcv-record: writes a zcv stream to a Y4M (or raw) file. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <zcv/record.h>
#include <zcv/sink.h>
#include "tool_common.h"

#define TOOL "zcv-record"

/* At the first format: what the producer granted (data: the hold asked
 * for, zeroed once told). */
static void on_format(void *data, const struct zcv_client_format *fmt)
{
	unsigned *asked_hold = data;

	if (!*asked_hold)
		return;
	fprintf(stderr, TOOL ": path %s, the producer lets us hold %u frames (asked for %u)\n",
		zcv_path_name(fmt->path), fmt->max_hold, *asked_hold);
	*asked_hold = 0;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: " TOOL " -o FILE [options]\n"
		   "Record a zcv stream to a Y4M file (or raw planes).\n\n"
		   "  -o, --output FILE    output file, '-' for standard output\n"
		   "  --raw                write the planes as they are, no Y4M framing\n"
		   "  --frames N           stop after N frames\n"
		   "  --max-hold N         frames the producer may have in flight to us at once\n"
		   "                       (default 8: a recorder rides out scheduling delays and\n"
		   "                       slow writes instead of being skipped; the producer\n"
		   "                       grants at most what it allows, printed at start)\n"
		   "  --socket PATH        producer socket (default: the default path)\n");
	tool_reconnect_usage(f, true);
	fprintf(f,
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
		TOOL_RECONNECT_OPTIONS,
		{ 0 },
	};
	struct zcv_client_config cfg = { .size = sizeof(struct zcv_client_config),
					 .name = TOOL,
					 .constraints.hold = 8 };
	unsigned asked_hold;
	struct zcv_sink_run_config run = { .size = sizeof(struct zcv_sink_run_config),
					   .handle_signals = true,
					   .format = on_format,
					   .data = &asked_hold };
	struct tool_reconnect rc = { .tool = TOOL, .reconnect = true };
	struct zcv_record *rec = NULL;
	struct zcv_sink *sink = NULL;
	const char *out = NULL, *stats_path = NULL;
	bool raw = false;
	uint64_t v;
	int opt, e, ret = 1;

	while ((opt = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'o':
			out = optarg;
			break;
		case 'R':
			raw = true;
			break;
		case 'n':
			if (tool_parse_uint(TOOL, "--frames", optarg, UINT32_MAX, &run.max_frames) <
			    0)
				return 2;
			break;
		case 'H':
			if (tool_parse_uint(TOOL, "--max-hold", optarg, 32, &v) < 0)
				return 2;
			if (v == 0) {
				fprintf(stderr, TOOL ": --max-hold needs 1 to 32 frames\n");
				return 2;
			}
			cfg.constraints.hold = (unsigned)v;
			break;
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
			if (tool_reconnect_option(&rc, opt))
				break;
			usage(stderr);
			return 2;
		}
	}
	if (!out || optind < argc) {
		fprintf(stderr, TOOL ": %s\n", out ? "unexpected argument" : "-o FILE is required");
		usage(stderr);
		return 2;
	}
	asked_hold = cfg.constraints.hold;
	tool_reconnect_setup(&rc, &cfg, &run);
	e = zcv_record_create(out, raw, &rec);
	if (e < 0) {
		fprintf(stderr, TOOL ": cannot open %s for writing: %s\n", out, strerror(-e));
		goto done;
	}
	e = zcv_record_sink_create(rec, &sink);
	if (e < 0) {
		fprintf(stderr, TOOL ": %s\n", strerror(-e));
		goto done;
	}
	if (tool_connect(TOOL, sink, &cfg, NULL) < 0)
		goto done;
	e = zcv_sink_run(sink, &run);
	ret = tool_run_report(TOOL, sink, e,
			      zcv_sink_error(sink, NULL) == -EINVAL ? "; try --raw" : NULL);
done:
	if (stats_path) {
		struct zcv_json j;

		tool_stats_begin(&j, TOOL);
		zcv_json_kv_uint(&j, "converted_bytes", rec ? zcv_record_converted_bytes(rec) : 0);
		zcv_json_kv_uint(&j, "written_bytes", rec ? zcv_record_bytes(rec) : 0);
		if (tool_write_stats(TOOL, sink, stats_path, &j) < 0)
			ret = 1;
	}
	zcv_sink_destroy(sink);
	if (zcv_record_destroy(rec) < 0)
		ret = 1;
	return ret;
}
