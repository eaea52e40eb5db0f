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
#include <zcv/client.h>
#include <zcv/pattern.h>
#include <zcv/stats.h>
#include "tool_common.h"

#define TOOL "test-consumer"
#define MAX_HELD 64

struct tc {
	struct zcv_client *client;
	struct zcv_stats stats;
	struct zcv_client_frame held[MAX_HELD];
	uint64_t held_at[MAX_HELD];
	unsigned n_held;
	uint64_t max_frames, hold_ns, mismatches, last_seq, out_of_order, error_frames;
	FILE *checksums;
	/* identities of the buffers we were lent */
	unsigned n_fds_seen;
	unsigned long long seen_ino[4 * 32];
	char seen_exporter[4 * 32][64];
	bool verify, hold_forever, done, have_seq;
	enum zcv_pattern pattern;
	uint8_t *scratch;
	int path, close_error;
	char close_reason[128];
};

static void release_due(struct tc *t, uint64_t now)
{
	while (t->n_held && !t->hold_forever && now - t->held_at[0] >= t->hold_ns) {
		zcv_client_release(t->client, &t->held[0]);
		memmove(t->held, t->held + 1, sizeof(t->held[0]) * (t->n_held - 1));
		memmove(t->held_at, t->held_at + 1, sizeof(t->held_at[0]) * (t->n_held - 1));
		t->n_held--;
	}
}

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

static void on_format(void *data, const struct zcv_client_format *fmt)
{
	struct tc *t = data;

	t->path = fmt->path;
	free(t->scratch);
	t->scratch = malloc(fmt->layout.size);
}

static void on_frame(void *data, const struct zcv_client_frame *f)
{
	struct tc *t = data;
	const struct zcv_client_format *fmt = zcv_client_get_format(t->client);

	if (t->have_seq && f->sequence <= t->last_seq)
		t->out_of_order++;
	t->have_seq = true;
	t->last_seq = f->sequence;
	if (!t->stats.frames)
		t->stats.start_ns = f->received_ns;
	t->stats.end_ns = f->received_ns;
	t->stats.frames++;
	zcv_latency_add(&t->stats.latency, f->received_ns - f->timestamp_ns);
	if (t->path == 3)
		t->stats.copied_bytes += fmt->layout.size;
	if (f->flags & 1)
		t->error_frames++;
	if (t->checksums)
		fprintf(t->checksums, "%" PRIu64 " %016" PRIx64 "\n", f->sequence,
			zcv_frame_checksum(&fmt->layout, f->planes));
	for (unsigned p = 0; p < f->n_planes; p++)
		note_fd(t, f->fd[p]);
	if (t->verify && zcv_pattern_check(t->pattern, &fmt->layout, f->sequence, f->planes,
					   t->scratch, NULL) < 0)
		t->mismatches++;
	if (t->hold_ns || t->hold_forever) {
		t->held[t->n_held] = *f;
		t->held_at[t->n_held++] = f->received_ns;
	} else {
		zcv_client_release(t->client, f);
	}
	if (t->max_frames && t->stats.frames >= t->max_frames)
		t->done = true;
}

static void on_closed(void *data, int error, const char *reason)
{
	struct tc *t = data;

	t->close_error = error;
	snprintf(t->close_reason, sizeof(t->close_reason), "%s", reason ? reason : "");
	t->done = true;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 'k' },
		{ "name", required_argument, NULL, 'N' },
		{ "frames", required_argument, NULL, 'n' },
		{ "hold-ms", required_argument, NULL, 'H' },
		{ "hold-forever", no_argument, NULL, 'F' },
		{ "max-hold", required_argument, NULL, 'm' },
		{ "verify", no_argument, NULL, 'v' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "needs-copy", no_argument, NULL, 'c' },
		{ "stats-json", required_argument, NULL, 'j' },
		{ "checksums", required_argument, NULL, 'x' },
		{ 0 },
	};
	struct zcv_client_config cfg = { .size = sizeof(struct zcv_client_config), .name = TOOL };
	struct zcv_client_callbacks cbs = { .size = sizeof(struct zcv_client_callbacks),
					    .format = on_format,
					    .frame = on_frame,
					    .closed = on_closed };
	struct tc t = { 0 };
	const char *stats_path = NULL;
	struct zcv_json j;
	uint64_t v;
	int opt, r = 0;
	bool stats_failed = false;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'k':
			cfg.socket_path = optarg;
			break;
		case 'N':
			cfg.name = optarg;
			break;
		case 'n':
			tool_parse_uint(TOOL, "--frames", optarg, UINT32_MAX, &t.max_frames);
			break;
		case 'H':
			tool_parse_uint(TOOL, "--hold-ms", optarg, 100000, &v);
			t.hold_ns = v * 1000000ull;
			break;
		case 'F':
			t.hold_forever = true;
			break;
		case 'm':
			tool_parse_uint(TOOL, "--max-hold", optarg, MAX_HELD - 1, &v);
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
		default:
			return 2;
		}
	}
	zcv_stats_init(&t.stats);
	r = zcv_client_connect(&cfg, &cbs, &t, &t.client);
	if (r < 0) {
		fprintf(stderr, TOOL ": cannot connect: %s\n", strerror(-r));
		return 1;
	}
	while (!t.done) {
		/* POLLOUT too while releases wait for room in the socket */
		struct pollfd pfd = { .fd = zcv_client_get_fd(t.client),
				      .events = zcv_client_get_events(t.client) };

		if (poll(&pfd, 1, t.n_held && !t.hold_forever ? 1 : 100) < 0 && errno != EINTR)
			break;
		release_due(&t, zcv_now_ns());
		if (pfd.revents) {
			r = zcv_client_dispatch(&*t.client);
			if (r != 0)
				break;
		}
	}
	t.stats.dropped = zcv_client_dropped(t.client);
	t.stats.path = t.path ? zcv_path_name(t.path) : "none";
	zcv_json_init(&j, ZCV_JSON_PRETTY);
	zcv_json_begin_object(&j);
	zcv_json_kv_string(&j, "tool", TOOL);
	zcv_json_kv_uint(&j, "mismatches", t.mismatches);
	zcv_json_kv_uint(&j, "out_of_order", t.out_of_order);
	zcv_json_kv_uint(&j, "last_seq", t.last_seq);
	zcv_json_kv_int(&j, "close_error", t.close_error);
	zcv_json_kv_string(&j, "close_reason", t.close_reason);
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
	zcv_json_end_object(&j);
	if (stats_path && zcv_stats_write_json_file(&t.stats, stats_path, &j) < 0) {
		fprintf(stderr, TOOL ": cannot write %s\n", stats_path);
		stats_failed = true;
	}
	zcv_json_finish(&j);
	zcv_client_destroy(t.client);
	if (t.checksums)
		fclose(t.checksums);
	zcv_stats_finish(&t.stats);
	free(t.scratch);
	if (r < 0)
		fprintf(stderr, TOOL ": the stream ended with an error: %s (%s)\n",
			zcv_log_safe(t.close_reason), strerror(r > -4096 ? -r : EPROTO));
	return r < 0 || stats_failed ? 1 : 0;
}
