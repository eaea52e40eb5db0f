/* SPDX-License-Identifier: MIT */
/*
 * Test consumer: verifies every frame against the pattern function, can
 * hold frames slowly or forever, ask for the copy tier, and writes what
 * it saw as JSON for the integration tests.
 */
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <zcv/pattern.h>
#include <zcv/sink.h>
#include <zcv/sink_stats.h>
#include "tool_common.h"

#define TOOL "test-consumer"
#define MAX_HELD 64

struct tc {
	struct zcv_sink *sink;
	struct zcv_client_format fmt;
	struct zcv_client_frame held[MAX_HELD];
	uint64_t held_at[MAX_HELD];
	unsigned n_held;
	uint64_t hold_ns, mismatches, last_seq, out_of_order, error_frames;
	uint64_t stale; /* frames of a generation other than the last format's */
	unsigned streams;
	FILE *checksums;
	FILE *log; /* --log: a line per format and frame, with CLOCK_MONOTONIC ns */
	/* identities of the buffers we were lent */
	unsigned n_fds_seen;
	unsigned long long seen_ino[4 * 32];
	char seen_exporter[4 * 32][64];
	bool verify, hold_forever, have_seq;
	bool keep_latest; /* like a display: hold the newest frame, release the one before */
	enum zcv_pattern pattern;
	uint8_t *scratch;
	int timer; /* fires when the oldest held frame is due */
};

static void note_fd(struct tc *t, int fd)
{
	struct stat st;
	char path[64], line[128], exp[64] = "";
	FILE *fi;

	if (fd < 0 || fstat(fd, &st) < 0)
		return;
	for (unsigned i = 0; i < t->n_fds_seen; i++)
		if (t->seen_ino[i] == (unsigned long long)st.st_ino)
			return;
	if (t->n_fds_seen == sizeof(t->seen_ino) / sizeof(t->seen_ino[0]))
		return;
	t->seen_ino[t->n_fds_seen++] = (unsigned long long)st.st_ino;
	/* a DMA-BUF's fdinfo names its exporter, e.g. videobuf2_vmalloc */
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if ((fi = fopen(path, "re"))) {
		while (fgets(line, sizeof(line), fi))
			if (sscanf(line, "exp_name: %63s", exp) == 1)
				break;
		fclose(fi);
	}
	snprintf(t->seen_exporter[t->n_fds_seen - 1], sizeof(t->seen_exporter[0]), "%s",
		 exp[0] ? exp : "memfd");
}

static int tc_format(void *data, const struct zcv_client_format *fmt)
{
	struct tc *t = data;

	/* a new stream (a reconnect) numbers its frames afresh */
	if (!t->streams || memcmp(t->fmt.stream_id, fmt->stream_id, sizeof(fmt->stream_id))) {
		t->streams++;
		t->have_seq = false;
	}
	t->fmt = *fmt;
	if (t->log) {
		fprintf(t->log, "format ");
		for (unsigned i = 0; i < sizeof(fmt->stream_id); i++)
			fprintf(t->log, "%02x", fmt->stream_id[i]);
		fprintf(t->log, " %" PRIu32 " %llu\n", fmt->generation,
			(unsigned long long)zcv_now_ns());
		fflush(t->log);
	}
	free(t->scratch);
	t->scratch = malloc(fmt->layout.size);
	return t->scratch ? 0 : -ENOMEM;
}

static int tc_frame(void *data, const struct zcv_client_frame *f)
{
	struct tc *t = data;

	if (f->generation != t->fmt.generation)
		t->stale++;
	if (t->log) {
		fprintf(t->log, "frame %" PRIu32 " %" PRIu64 " %" PRIu64 "\n", f->generation,
			f->sequence, f->received_ns);
		fflush(t->log);
	}
	if (t->have_seq && f->sequence <= t->last_seq)
		t->out_of_order++;
	t->have_seq = true;
	t->last_seq = f->sequence;
	if (f->flags & ZCV_FRAME_FLAG_ERROR)
		t->error_frames++;
	zcv_sink_begin_access(t->sink, f);
	if (t->checksums)
		fprintf(t->checksums, "%" PRIu64 " %016" PRIx64 "\n", f->sequence,
			zcv_frame_checksum(&t->fmt.layout, f->planes));
	if (t->verify && zcv_pattern_check(t->pattern, &t->fmt.layout, f->sequence, f->planes,
					   t->scratch, NULL) < 0)
		t->mismatches++;
	zcv_sink_end_access(t->sink, f);
	for (unsigned p = 0; p < f->n_planes; p++)
		note_fd(t, f->fd[p]);
	if (t->keep_latest) {
		if (t->n_held)
			zcv_sink_done(t->sink, &t->held[0]);
		t->held[0] = *f;
		t->n_held = 1;
		return 0;
	}
	if (!t->hold_ns && !t->hold_forever)
		return zcv_sink_done(t->sink, f);
	if (t->n_held == MAX_HELD)
		return zcv_sink_fail(t->sink, -ENOBUFS, "holding %u frames already", MAX_HELD);
	t->held[t->n_held] = *f;
	t->held_at[t->n_held++] = f->received_ns;
	return 0;
}

/* The timer, armed for when the oldest held frame is due. */
static int tc_get_fd(void *data, short *ret_events)
{
	struct tc *t = data;
	struct itimerspec due = { 0 };
	uint64_t at;

	if (!t->n_held || t->hold_forever || t->keep_latest)
		return -1;
	at = t->held_at[0] + t->hold_ns;
	due.it_value.tv_sec = (time_t)(at / 1000000000ull);
	due.it_value.tv_nsec = (long)(at % 1000000000ull);
	if (timerfd_settime(t->timer, TFD_TIMER_ABSTIME, &due, NULL) < 0)
		return -1;
	*ret_events = POLLIN;
	return t->timer;
}

/* Hands back, oldest first, what was held long enough. */
static int tc_dispatch(void *data)
{
	struct tc *t = data;
	uint64_t now = zcv_now_ns(), ticks;

	if (read(t->timer, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return -errno;
	while (t->n_held && now - t->held_at[0] >= t->hold_ns) {
		zcv_sink_done(t->sink, &t->held[0]);
		memmove(t->held, t->held + 1, sizeof(t->held[0]) * (t->n_held - 1));
		memmove(t->held_at, t->held_at + 1, sizeof(t->held_at[0]) * (t->n_held - 1));
		t->n_held--;
	}
	return 0;
}

static const struct zcv_sink_ops tc_ops = {
	.size = sizeof(struct zcv_sink_ops),
	.format = tc_format,
	.frame = tc_frame,
	.get_fd = tc_get_fd,
	.dispatch = tc_dispatch,
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 'k' },
		{ "name", required_argument, NULL, 'N' },
		{ "frames", required_argument, NULL, 'n' },
		{ "hold-ms", required_argument, NULL, 'H' },
		{ "keep-latest", no_argument, NULL, 'L' },
		{ "keep-latest-untold", no_argument, NULL, 'U' },
		{ "hold-forever", no_argument, NULL, 'F' },
		{ "max-hold", required_argument, NULL, 'm' },
		{ "verify", no_argument, NULL, 'v' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "needs-copy", no_argument, NULL, 'c' },
		{ "stats-json", required_argument, NULL, 'j' },
		{ "checksums", required_argument, NULL, 'x' },
		{ "log", required_argument, NULL, 'l' },
		TOOL_RECONNECT_OPTIONS,
		{ 0 },
	};
	struct zcv_client_config cfg = { .size = sizeof(struct zcv_client_config), .name = TOOL };
	/* SIGINT/SIGTERM end it with 0, as they end the tools */
	struct zcv_sink_run_config run = { .size = sizeof(struct zcv_sink_run_config),
					   .handle_signals = true };
	struct tc t = { .timer = -1 };
	struct tool_reconnect rc = { .tool = TOOL };
	const char *stats_path = NULL, *reason;
	struct zcv_json j;
	uint64_t v;
	int opt, r, ret;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'k':
			cfg.socket_path = optarg;
			break;
		case 'N':
			cfg.name = optarg;
			break;
		case 'n':
			if (tool_parse_uint(TOOL, "--frames", optarg, UINT32_MAX, &run.max_frames) <
			    0)
				return 2;
			break;
		case 'H':
			if (tool_parse_uint(TOOL, "--hold-ms", optarg, 100000, &v) < 0)
				return 2;
			t.hold_ns = v * 1000000ull;
			break;
		case 'F':
			t.hold_forever = true;
			break;
		case 'L':
			t.keep_latest = true;
			cfg.keeps_latest = true;
			break;
		case 'U':
			t.keep_latest = true; /* without telling the producer */
			break;
		case 'm':
			if (tool_parse_uint(TOOL, "--max-hold", optarg, MAX_HELD - 1, &v) < 0)
				return 2;
			cfg.constraints.hold = (unsigned)v;
			break;
		case 'v':
			t.verify = true;
			break;
		case 'p':
			zcv_pattern_from_name(optarg, &t.pattern);
			break;
		case 'c':
			cfg.caps = ZCV_CAP_NEEDS_COPY | ZCV_CAP_MEMFD;
			break;
		case 'j':
			stats_path = optarg;
			break;
		case 'x':
			if (!(t.checksums = fopen(optarg, "we")))
				return 1;
			break;
		case 'l':
			if (!(t.log = fopen(optarg, "we")))
				return 1;
			break;
		default:
			if (tool_reconnect_option(&rc, opt))
				break;
			return 2;
		}
	}
	tool_reconnect_setup(&rc, &cfg, &run);
	t.timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (t.timer < 0 || zcv_sink_create(&tc_ops, &t, &t.sink) < 0) {
		fprintf(stderr, TOOL ": cannot set up: %s\n", strerror(errno));
		return 1;
	}
	if (tool_connect(TOOL, t.sink, &cfg, NULL) < 0) {
		zcv_sink_destroy(t.sink);
		return 1;
	}
	r = zcv_sink_run(t.sink, &run);
	ret = tool_run_report(TOOL, t.sink, r, NULL);
	tool_stats_begin(&j, TOOL);
	zcv_json_kv_uint(&j, "mismatches", t.mismatches);
	zcv_json_kv_uint(&j, "out_of_order", t.out_of_order);
	zcv_json_kv_uint(&j, "last_seq", t.last_seq);
	zcv_json_kv_uint(&j, "stale", t.stale);
	zcv_json_kv_uint(&j, "streams", t.streams);
	zcv_json_kv_int(&j, "close_error", zcv_sink_stream_error(t.sink, &reason));
	zcv_json_kv_string(&j, "close_reason", reason);
	zcv_json_kv_int(&j, "dispatch", r);
	zcv_json_kv_uint(&j, "error_frames", t.error_frames);
	zcv_json_key(&j, "buffers");
	zcv_json_begin_array(&j);
	for (unsigned i = 0; i < t.n_fds_seen; i++) {
		zcv_json_begin_object(&j);
		zcv_json_kv_uint(&j, "ino", t.seen_ino[i]);
		zcv_json_kv_string(&j, "exporter", t.seen_exporter[i]);
		zcv_json_end_object(&j);
	}
	zcv_json_end_array(&j);
	if (stats_path && tool_write_stats(TOOL, t.sink, stats_path, &j) < 0)
		ret = 1;
	else if (!stats_path)
		zcv_json_finish(&j);
	zcv_sink_destroy(t.sink);
	close(t.timer);
	if (t.checksums)
		fclose(t.checksums);
	if (t.log)
		fclose(t.log);
	free(t.scratch);
	return ret;
}
