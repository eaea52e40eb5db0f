/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zcv/log.h>

static int level = -1;

static const char *const names[] = { "error", "warn", "info", "debug" };

enum zcv_log_level zcv_log_get_level(void)
{
	if (level < 0) {
		const char *e = getenv("ZCV_LOG");

		level = ZCV_LOG_WARN;
		for (int i = 0; e && i < (int)ZCV_ARRAY_SIZE(names); i++)
			if (!strcmp(e, names[i]))
				level = i;
	}
	return (enum zcv_log_level)level;
}

void zcv_log_set_level(enum zcv_log_level l)
{
	level = l;
}

void zcv_log(enum zcv_log_level l, const char *fmt, ...)
{
	va_list ap;

	if (l > zcv_log_get_level())
		return;
	fprintf(stderr, "zcv[%d] %s: ", (int)getpid(), names[l]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

unsigned long long zcv_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}
