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
