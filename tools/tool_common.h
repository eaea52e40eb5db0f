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
struct zcv_client_callbacks;

/* zcv_client_connect() that prints why it failed and what to do.
 * Returns as zcv_client_connect. */
int tool_connect(const char *tool, const struct zcv_client_config *cfg,
		 const struct zcv_client_callbacks *cbs, void *data,
		 struct zcv_client **ret_client);

/* Blocks SIGINT/SIGTERM/SIGPIPE-ignored and returns a signalfd for them. */
int tool_signalfd(void);

/* Open fds of this process (from /proc/self/fd). */
int tool_count_fds(void);

/*
 * How a consumer tool's stream ended, for its exit status: a clean end of
 * stream (or the tool's own --frames, or a signal) exits 0; anything else
 * (evicted for holding a frame too long, a protocol error, a reset, the
 * producer gone) exits 1 with one line on stderr saying why.
 */
struct tool_end {
	bool closed;      /* the closed callback ran */
	int error;        /* 0: clean; else a negative errno */
	char reason[200]; /* what the client or the producer said, sanitised */
	bool finished;    /* set by the tool at its own --frames: what follows is not
			   * its stream's failure */
};

/* From the client's closed callback. reason may come from the producer:
 * it is kept sanitised for the terminal. */
void tool_end_closed(struct tool_end *e, int error, const char *reason);

/* From zcv_client_dispatch()'s result: a negative one that the closed
 * callback did not report is an error too. */
void tool_end_dispatch(struct tool_end *e, int r);

/* "end_error" and "end_reason" members for the tool's stats JSON. */
void tool_end_json(struct zcv_json *j, const struct tool_end *e);

/* Prints "<tool>: the stream ended with an error: <reason> (<errno text>)"
 * once when the stream failed. Returns the exit status: 0 or 1. */
int tool_end_report(const char *tool, const struct tool_end *e);
