/* SPDX-License-Identifier: MIT */
#pragma once

#include <zcv/common.h>

enum zcv_log_level { ZCV_LOG_ERROR = 0, ZCV_LOG_WARN, ZCV_LOG_INFO, ZCV_LOG_DEBUG };

/* Level from $ZCV_LOG ("error", "warn", "info", "debug"); default warn.
 * Libraries log at debug/info only: errors are returned, tools print them. */
ZCV_EXPORT void zcv_log_set_level(enum zcv_log_level level);
ZCV_EXPORT enum zcv_log_level zcv_log_get_level(void);
ZCV_EXPORT void zcv_log(enum zcv_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define zcv_debug(...) zcv_log(ZCV_LOG_DEBUG, __VA_ARGS__)
#define zcv_info(...) zcv_log(ZCV_LOG_INFO, __VA_ARGS__)
