/* SPDX-License-Identifier: MIT */
/* Flag parsing and process plumbing shared by the zcv tools. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

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

/* Appends "\"key\": value" fragments for stats JSON extras. */
struct tool_json {
	char buf[8192];
	size_t len;
};
void tool_json_add(struct tool_json *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
