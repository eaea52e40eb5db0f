/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <zcv/common.h>

enum zcv_log_level { ZCV_LOG_ERROR = 0, ZCV_LOG_WARN, ZCV_LOG_INFO, ZCV_LOG_DEBUG };

/* Level from $ZCV_LOG ("error", "warn", "info", "debug"); default warn.
 * Libraries log at debug/info only: errors are returned, tools print them.
 * zcv_log() prints the formatted line through the same escaping as
 * zcv_log_sanitize(), so a peer's text in a log line cannot drive the
 * terminal. */
void zcv_log_set_level(enum zcv_log_level level);
enum zcv_log_level zcv_log_get_level(void);
void zcv_log(enum zcv_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define zcv_debug(...) zcv_log(ZCV_LOG_DEBUG, __VA_ARGS__)
#define zcv_info(...) zcv_log(ZCV_LOG_INFO, __VA_ARGS__)

/*
 * Makes text that came from a peer (a consumer's name, a producer's
 * reason) safe to print to a terminal, into buf (size bytes, always
 * NUL-terminated when size > 0):
 * - control bytes (0x00-0x1f: newline, ESC, ...; DEL 0x7f) as \xNN;
 * - C1 controls (U+0080-U+009F), line/paragraph separators and the
 *   bidirectional controls (U+061C, U+200E/F, U+202A-E, U+2066-9) as the
 *   \xNN of each of their bytes;
 * - every byte that is not part of valid UTF-8 as \xNN;
 * - a backslash as \\ (so an escape in the output always means one);
 * - valid, harmless UTF-8 unchanged.
 * Output that does not fit ends with "..." (never cut inside an escape or
 * a character). NULL prints as "(null)". Returns buf ("" when size is 0).
 * Pure function: no locale, no allocation; any thread.
 */
const char *zcv_log_sanitize(char *buf, size_t size, const char *s);

/* zcv_log_sanitize() into a buffer that lives until the end of the
 * enclosing block: fprintf(stderr, "'%s'\n", zcv_log_safe(name)). Up to
 * ZCV_LOG_SAFE_MAX - 1 bytes of output. */
#define ZCV_LOG_SAFE_MAX 320
#define zcv_log_safe(s) zcv_log_sanitize((char[ZCV_LOG_SAFE_MAX]){ 0 }, ZCV_LOG_SAFE_MAX, (s))
