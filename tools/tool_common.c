/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <zcv/client.h>
#include <zcv/format.h>
#include <zcv/sink.h>
#include <zcv/sink_stats.h>
#include "tool_common.h"

int tool_parse_uint(const char *tool, const char *flag, const char *s, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max) {
		fprintf(stderr, "%s: %s needs a whole number from 0 to %" PRIu64 ", not '%s'\n",
			tool, flag, max, s);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

int tool_parse_size(const char *tool, const char *s, uint32_t *ret_w, uint32_t *ret_h)
{
	unsigned w, h;
	char tail;

	if (sscanf(s, "%ux%u%c", &w, &h, &tail) != 2 || w == 0 || h == 0 || w > 16384 ||
	    h > 16384) {
		fprintf(stderr,
			"%s: --size needs WIDTHxHEIGHT, e.g. 1280x720 (1 to 16384), not '%s'\n",
			tool, s);
		return -EINVAL;
	}
	*ret_w = w;
	*ret_h = h;
	return 0;
}

int tool_parse_fps(const char *tool, const char *s, uint32_t *ret_num, uint32_t *ret_den)
{
	unsigned num, den = 1;
	char tail;
	int n = sscanf(s, "%u/%u%c", &num, &den, &tail);

	if ((n != 1 && n != 2) || den == 0 || num > 1000 * den || strchr(s, '-')) {
		fprintf(stderr,
			"%s: --fps needs a rate like 60 or 30000/1001 (0: unpaced), not '%s'\n",
			tool, s);
		return -EINVAL;
	}
	*ret_num = num;
	*ret_den = den;
	return 0;
}

int tool_parse_format(const char *tool, const char *s, uint32_t *ret_fourcc)
{
	const struct zcv_format_info *fi = zcv_format_lookup_name(s);

	if (!fi) {
		fprintf(stderr, "%s: unknown --format '%s'; known:", tool, s);
		for (unsigned i = 0; (fi = zcv_format_at(i)); i++)
			fprintf(stderr, " %s", fi->name);
		fprintf(stderr, "\n");
		return -EINVAL;
	}
	*ret_fourcc = fi->fourcc;
	return 0;
}

int tool_signalfd(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

int tool_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own fd */
}

int tool_connect(const char *tool, struct zcv_sink *sink, const struct zcv_client_config *cfg,
		 struct zcv_client **ret_client)
{
	const char *hint = "";
	int r;

	signal(SIGPIPE, SIG_IGN);
	r = zcv_sink_connect(sink, cfg, ret_client);

	if (r == -ENOENT || r == -ECONNREFUSED)
		hint = " (is zcv-capture running? pass its --socket path)";
	else if (r == -EACCES)
		hint = " (the producer serves another user; see zcv-capture --group)";
	else if (r == -EINVAL && (cfg->reconnect.enable || cfg->reconnect.wait))
		hint = " (the reconnect settings)";
	if (r < 0)
		fprintf(stderr, "%s: cannot connect to %s: %s%s\n", tool,
			cfg->socket_path ? cfg->socket_path : "the default socket", strerror(-r),
			hint);
	return r;
}

void tool_reconnect_usage(FILE *f, bool def_on)
{
	fprintf(f,
		"  --reconnect          when the producer goes away or restarts, wait for it and\n"
		"                       carry on (default: %s)\n"
		"  --no-reconnect       end when the stream ends or the producer goes away\n"
		"  --wait               start before the producer: wait for its socket (implied\n"
		"                       by --reconnect)\n",
		def_on ? "on" : "off");
}

bool tool_reconnect_option(struct tool_reconnect *t, int opt)
{
	switch (opt) {
	case TOOL_OPT_RECONNECT:
		t->reconnect = true;
		return true;
	case TOOL_OPT_NO_RECONNECT:
		t->reconnect = false;
		return true;
	case TOOL_OPT_WAIT:
		t->wait = true;
		return true;
	}
	return false;
}

static void reconnect_on_format(void *data, const struct zcv_client_format *fmt)
{
	struct tool_reconnect *t = data;

	if (t->lost) {
		t->lost = false;
		fprintf(stderr,
			"%s: reconnected: stream %02x%02x%02x%02x..., generation %" PRIu32 "\n",
			t->tool, fmt->stream_id[0], fmt->stream_id[1], fmt->stream_id[2],
			fmt->stream_id[3], fmt->generation);
	}
	if (t->format)
		t->format(t->data, fmt);
}

static void reconnect_on_disconnected(void *data, int error, const char *reason)
{
	struct tool_reconnect *t = data;

	t->lost = true;
	/* the client made the producer's words printable */
	fprintf(stderr, "%s: producer gone (%s%s%s); waiting to reconnect\n", t->tool,
		reason && reason[0] ? reason : "no reason given", error ? ": " : "",
		error ? strerror(-error) : "");
}

static void say_source(void *data, bool present, const char *reason)
{
	struct tool_reconnect *t = data;

	/* the client made the producer's words printable */
	fprintf(stderr, "%s: source %s (%s)\n", t->tool, present ? "back" : "gone",
		reason && reason[0] ? reason : "no reason given");
}

void tool_reconnect_setup(struct tool_reconnect *t, struct zcv_client_config *cfg,
			  struct zcv_sink_run_config *run)
{
	cfg->reconnect.enable = t->reconnect;
	cfg->reconnect.wait = t->wait;
	t->format = run->format;
	t->data = run->data;
	run->format = reconnect_on_format;
	run->disconnected = reconnect_on_disconnected;
	run->source = say_source;
	run->data = t;
}

int tool_run_report(const char *tool, struct zcv_sink *sink, int r, const char *hint)
{
	const char *text, *reason;
	int sink_error = zcv_sink_error(sink, &text);
	int stream_error = zcv_sink_stream_error(sink, &reason);

	if (sink_error)
		fprintf(stderr, "%s: %s%s\n", tool, text, hint ? hint : "");
	if (stream_error)
		fprintf(stderr, "%s: the stream ended with an error: %s (%s)\n", tool,
			/* the client made the producer's words printable */
			reason[0] ? reason : "no reason given", strerror(-stream_error));
	if (r < 0 && !sink_error && !stream_error)
		fprintf(stderr, "%s: %s\n", tool, strerror(-r));
	return r < 0 || sink_error || stream_error ? 1 : 0;
}

void tool_stats_begin(struct zcv_json *j, const char *tool)
{
	zcv_json_init(j, ZCV_JSON_PRETTY);
	zcv_json_begin_object(j);
	zcv_json_kv_string(j, "tool", tool);
}

int tool_write_stats(const char *tool, struct zcv_sink *sink, const char *path, struct zcv_json *j)
{
	struct zcv_stats none;
	const char *reason = "";
	int r;

	zcv_stats_init(&none);
	zcv_json_kv_int(j, "end_error", sink ? zcv_sink_stream_error(sink, &reason) : 0);
	zcv_json_kv_string(j, "end_reason", reason);
	zcv_json_end_object(j);
	r = zcv_stats_write_json_file(sink ? zcv_sink_core_stats(sink) : &none, path, j);
	if (r < 0)
		fprintf(stderr, "%s: cannot write stats to %s: %s\n", tool, path, strerror(-r));
	zcv_stats_finish(&none);
	zcv_json_finish(j);
	return r;
}
