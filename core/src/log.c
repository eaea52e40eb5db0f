/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zcv/log.h>
#include "utf8.h"

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

/* The output for the character at s (n > 0 bytes left) into piece (room
 * for 16); sets *used to the input bytes it stands for. Returns its length. */
static size_t piece_at(const unsigned char *s, size_t n, char *piece, size_t *used)
{
	static const char hex[] = "0123456789abcdef";
	uint32_t cp = 0;
	size_t len = zcv_utf8_decode(s, n, &cp), plen = 0;

	if (len && cp == '\\') {
		piece[plen++] = '\\';
		piece[plen++] = '\\';
	} else if (len && !zcv_utf8_is_unsafe(cp)) {
		memcpy(piece, s, len);
		plen = len;
	} else {
		/* unsafe character: each of its bytes; not UTF-8: the one byte */
		if (!len)
			len = 1;
		for (size_t k = 0; k < len; k++) {
			piece[plen++] = '\\';
			piece[plen++] = 'x';
			piece[plen++] = hex[s[k] >> 4];
			piece[plen++] = hex[s[k] & 15];
		}
	}
	*used = len;
	return plen;
}

/*
 * The escaping of zcv_log_sanitize() for n bytes of s into out (size > 0).
 * Returns false when it did not fit; then out ends with "...".
 */
static bool sanitize(char *out, size_t size, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t o = 0, total = 0, used, plen;
	char piece[16];
	bool fits;

	for (size_t i = 0; i < n; i += used)
		total += piece_at(s + i, n - i, piece, &used);
	fits = total <= size - 1;
	for (size_t i = 0; i < n; i += used) {
		plen = piece_at(s + i, n - i, piece, &used);
		/* cut short: leave room for "..." after the last whole piece */
		if (!fits && o + plen + 3 > size - 1)
			break;
		memcpy(out + o, piece, plen);
		o += plen;
	}
	if (!fits) {
		size_t d = ZCV_MIN((size_t)3, size - 1 - o);

		memcpy(out + o, "...", d);
		o += d;
	}
	out[o] = '\0';
	return fits;
}

const char *zcv_log_sanitize(char *buf, size_t size, const char *s)
{
	if (!size)
		return "";
	if (!s)
		s = "(null)";
	sanitize(buf, size, s, strlen(s));
	return buf;
}

void zcv_log(enum zcv_log_level l, const char *fmt, ...)
{
	char small[512], *line = small, *safe;
	bool cut = false;
	va_list ap;
	int n;

	if (l > zcv_log_get_level())
		return;
	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(small)) {
		line = malloc((size_t)n + 1);
		if (line) {
			va_start(ap, fmt);
			vsnprintf(line, (size_t)n + 1, fmt, ap);
			va_end(ap);
		} else {
			line = small; /* out of memory: the start of the line, marked */
			n = (int)sizeof(small) - 1;
			cut = true;
		}
	}
	/* every byte becomes at most 4 ("\xNN"): this never cuts the line */
	safe = malloc((size_t)n * 4 + 1);
	if (safe)
		sanitize(safe, (size_t)n * 4 + 1, line, (size_t)n);
	fprintf(stderr, "zcv[%d] %s: %s%s\n", (int)getpid(), names[l],
		safe ? safe : "(out of memory)", cut ? "..." : "");
	free(safe);
	if (line != small)
		free(line);
}

unsigned long long zcv_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}
