/* SPDX-License-Identifier: MIT */
/* Flag parsing and process plumbing shared by the zcv tools. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <zcv/json.h>
#include <zcv/log.h>

/* Each parser prints "<tool>: <what> ..." and returns -EINVAL on bad input. */
int tool_parse_uint(const char *tool, const char *flag, const char *s, uint64_t max, uint64_t *ret);
int tool_parse_size(const char *tool, const char *s, uint32_t *ret_w, uint32_t *ret_h);
/* "60", "30000/1001", "0" (unpaced) */
int tool_parse_fps(const char *tool, const char *s, uint32_t *ret_num, uint32_t *ret_den);
/* "NV12", "YUYV", ...: prints the known formats on error */
int tool_parse_format(const char *tool, const char *s, uint32_t *ret_fourcc);

struct zcv_client;
struct zcv_client_config;
struct zcv_client_format;
struct zcv_sink;
struct zcv_sink_run_config;

/* --reconnect, --no-reconnect and --wait: getopt values, and their --help
 * lines (tool_reconnect_usage: def_on, what the tool does without either
 * of the first two). */
enum {
	TOOL_OPT_RECONNECT = 0x1000,
	TOOL_OPT_NO_RECONNECT,
	TOOL_OPT_WAIT,
};
#define TOOL_RECONNECT_OPTIONS                                                                     \
	{ "reconnect", no_argument, NULL, TOOL_OPT_RECONNECT },                                    \
		{ "no-reconnect", no_argument, NULL, TOOL_OPT_NO_RECONNECT },                      \
	{                                                                                          \
		"wait", no_argument, NULL, TOOL_OPT_WAIT                                           \
	}

/* How a consumer tool meets its producer; keep for the tool's lifetime. */
struct tool_reconnect {
	const char *tool;
	bool reconnect;
	bool wait;
	bool lost; /* a disconnect was told, the next format is a reconnect */
	/* the tool's own run format callback, called after ours */
	void (*format)(void *data, const struct zcv_client_format *fmt);
	void *data;
};

void tool_reconnect_usage(FILE *f, bool def_on);

/* Handles one of the TOOL_OPT_* values; false for any other. */
bool tool_reconnect_option(struct tool_reconnect *t, int opt);

/*
 * Fills cfg->reconnect from t and routes run's format (saved in t first)
 * and disconnected callbacks through t, which prints one line on stderr
 * per lost connection ("<tool>: producer gone (<reason>); waiting to
 * reconnect") and per reconnect ("<tool>: reconnected: stream <id>,
 * generation <n>").
 */
void tool_reconnect_setup(struct tool_reconnect *t, struct zcv_client_config *cfg,
			  struct zcv_sink_run_config *run);

/* zcv_sink_connect() that prints why it failed and what to do. Ignores
 * SIGPIPE first: a consumer tool writes to files and pipes, and a reader
 * that went away is a write error to report, not a death.
 * Returns as zcv_sink_connect. */
int tool_connect(const char *tool, struct zcv_sink *sink, const struct zcv_client_config *cfg,
		 struct zcv_client **ret_client);

/* Ignores SIGPIPE, blocks SIGINT and SIGTERM and returns a signalfd for
 * them (CLOEXEC, non-blocking), or -1. */
int tool_signalfd(void);

/* Open fds of this process (from /proc/self/fd). */
int tool_count_fds(void);

/*
 * How a consumer tool's run (zcv_sink_run's result r) ended, for its exit
 * status: a clean end of stream, the tool's own --frames or a signal exit
 * 0; anything else 1, with one line on stderr for each failure: the
 * sink's ("<tool>: <what it said><hint>"; hint may be NULL) and the
 * stream's ("<tool>: the stream ended with an error: <reason> (<errno
 * text>)": evicted for holding a frame too long, a protocol error, the
 * producer gone). Returns 0 or 1.
 */
int tool_run_report(const char *tool, struct zcv_sink *sink, int r, const char *hint);

/* Starts the tool's stats JSON object in j: {"tool": tool, ... (the
 * tool adds its own members, then calls tool_write_stats). */
void tool_stats_begin(struct zcv_json *j, const char *tool);

/*
 * Writes the stats file at path: the contract's members from the sink's
 * figures (zeros when sink is NULL: it failed before it had one), then
 * the members of j, begun with tool_stats_begin(), to which this adds
 * "end_error" and "end_reason" (how the stream ended) and which it
 * finishes. Prints why it failed. Returns 0 or a negative errno.
 */
int tool_write_stats(const char *tool, struct zcv_sink *sink, const char *path, struct zcv_json *j);
