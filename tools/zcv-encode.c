/* SPDX-License-Identifier: MIT */
/* zcv-encode: feeds a zcv stream to a V4L2 mem2mem encoder, writes the bitstream. */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zcv/encode.h>
#include <zcv/sink.h>
#include "tool_common.h"

#define TOOL "zcv-encode"

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
		"  --socket PATH        producer socket (default: the default path)\n");
	tool_reconnect_usage(f, false);
	fprintf(f,
		"  --name NAME          consumer name shown by the producer (default zcv-encode)\n"
		"  --frame-log PATH     write the producer sequence of every encoded frame "
		"(testing)\n"
		"  --list               list the encoders found and exit\n"
		"  --stats-json PATH    write stats as JSON at exit\n"
		"  --help\n");
}

/* The encoder started on the first format: what it could not do. */
static void on_format(void *data, const struct zcv_client_format *fmt)
{
	struct zcv_encoder *enc = data;
	unsigned missing = zcv_encoder_missing_controls(enc);
	static bool told;

	if (told)
		return;
	told = true;
	if (missing & 1)
		fprintf(stderr, TOOL ": %s has no bitrate control; --bitrate is ignored\n",
			zcv_encoder_device(enc));
	if (missing & 2)
		fprintf(stderr, TOOL ": %s has no GOP size control; --gop is ignored\n",
			zcv_encoder_device(enc));
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
		TOOL_RECONNECT_OPTIONS,
		{ 0 },
	};
	struct zcv_client_config ccfg = { .size = sizeof(struct zcv_client_config),
					  .name = TOOL,
					  .caps = ZCV_CAP_DMABUF | ZCV_CAP_MEMFD,
					  .constraints.hold = 4 };
	struct zcv_sink_run_config run = { .size = sizeof(struct zcv_sink_run_config),
					   .handle_signals = true,
					   .format = on_format };
	struct zcv_encoder_config ecfg = { 0 };
	struct zcv_encode_sink_config scfg = { .trace =
						       getenv("ZCV_ENCODE_TRACE") ? stderr : NULL };
	struct zcv_encode_sink_stats es = { 0 };
	struct zcv_constraints needs = { 0 };
	struct tool_reconnect rc = { .tool = TOOL };
	struct zcv_encoder *enc = NULL;
	struct zcv_sink *sink = NULL;
	const char *out = NULL, *stats_path = NULL, *why = NULL;
	uint64_t v;
	int opt, r, out_fd = -1, ret = 1;

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
			if (tool_parse_uint(TOOL, "--frames", optarg, UINT32_MAX, &run.max_frames) <
			    0)
				return 2;
			break;
		case 'm':
			if (tool_parse_uint(TOOL, "--max-hold", optarg, 32, &v) < 0)
				return 2;
			if (v < 1) {
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
			if (scfg.frame_log)
				fclose(scfg.frame_log);
			scfg.frame_log = fopen(optarg, "we");
			if (!scfg.frame_log) {
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
	/* the encoder first: without one there is nothing to ask the producer for */
	r = zcv_encode_sink_create(&ecfg, &scfg, &sink, &enc, &why);
	if (r < 0) {
		fprintf(stderr, TOOL ": %s%s\n", why ? why : strerror(-r),
			r == -ENODEV && !ecfg.device ?
				". Load an encoder driver (e.g. vicodec) or pass --device." :
				"");
		goto out;
	}
	if (zcv_encoder_probe_needs(enc, ZCV_FMT_NV12, &needs) == 0) {
		ccfg.constraints.stride_align = needs.stride_align;
		ccfg.constraints.height_align = needs.height_align;
	}
	out_fd = strcmp(out, "-") ? open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) :
				    STDOUT_FILENO;
	if (out_fd < 0) {
		fprintf(stderr, TOOL ": cannot open %s for writing: %s\n", out, strerror(errno));
		goto out;
	}
	zcv_encode_sink_set_output(sink, out_fd);
	run.data = enc;
	tool_reconnect_setup(&rc, &ccfg, &run);
	if (tool_connect(TOOL, sink, &ccfg, NULL) < 0)
		goto out;
	{
		char a[5];

		fprintf(stderr,
			TOOL ": encoding to %s with %s (%s), codec %s; it needs strides aligned "
			     "to %u and heights to %u lines\n",
			out, zcv_encoder_device(enc), zcv_encoder_card(enc),
			zcv_fourcc_str(zcv_encoder_codec(enc), a), needs.stride_align,
			needs.height_align);
	}
	r = zcv_sink_run(sink, &run);
	ret = tool_run_report(TOOL, sink, r, NULL);
out:
	zcv_encode_sink_get_stats(sink, &es);
	if (stats_path) {
		struct zcv_json j;
		char a[5] = "none";

		if (enc)
			zcv_fourcc_str(zcv_encoder_codec(enc), a);
		tool_stats_begin(&j, TOOL);
		zcv_json_kv_uint(&j, "frames_in", es.frames_in);
		zcv_json_kv_uint(&j, "frames_out", es.frames_out);
		zcv_json_kv_uint(&j, "bytes_out", es.bytes_out);
		/* null: the driver flags no keyframe (vicodec), so how many is unknown */
		zcv_json_key(&j, "keyframes");
		if (es.keyframes_known)
			zcv_json_uint(&j, es.keyframes);
		else
			zcv_json_null(&j);
		zcv_json_kv_uint(&j, "not_encoded", es.not_encoded);
		zcv_json_kv_fixed(&j, "encoder_fps", es.encoder_fps, 2);
		zcv_json_kv_string(&j, "device", enc ? zcv_encoder_device(enc) : "");
		zcv_json_kv_string(&j, "codec", a);
		zcv_json_kv_uint(&j, "stride_align", needs.stride_align);
		zcv_json_kv_uint(&j, "height_align", needs.height_align);
		tool_write_stats(TOOL, sink, stats_path, &j);
	}
	if (es.frames_out || es.frames_in) {
		struct zcv_sink_stats st = { .size = sizeof(st) };

		zcv_sink_get_stats(sink, &st);
		fprintf(stderr,
			TOOL ": %" PRIu64 " frames in, %" PRIu64 " out (%" PRIu64
			     " bytes), %" PRIu64 " skipped by the producer, %" PRIu64
			     " not encoded\n",
			es.frames_in, es.frames_out, es.bytes_out, st.dropped, es.not_encoded);
	}
	/* the encoder goes first (it lets go of the imported buffers), then
	 * the client */
	zcv_sink_destroy(sink);
	if (scfg.frame_log)
		fclose(scfg.frame_log);
	if (out_fd > STDOUT_FILENO && close(out_fd) < 0)
		ret = 1;
	return ret;
}
