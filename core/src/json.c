/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zcv/json.h>
#include "utf8.h"

/* per open container */
#define ST_OBJECT 1u /* an object (else an array) */
#define ST_HAS 2u    /* has a member/element already: the next needs a comma */
#define ST_KEY 4u    /* a key was written: its value is due */

static void set_error(struct zcv_json *j, int e)
{
	if (!j->error)
		j->error = e;
}

static bool reserve(struct zcv_json *j, size_t n)
{
	size_t cap;
	char *b;

	if (j->error)
		return false;
	/* +1: the text is always NUL-terminated */
	if (n > SIZE_MAX - j->len - 1) {
		set_error(j, -ENOMEM);
		return false;
	}
	if (j->len + n + 1 <= j->cap)
		return true;
	cap = j->cap ? j->cap : 256;
	while (cap < j->len + n + 1)
		cap = cap > SIZE_MAX / 2 ? j->len + n + 1 : cap * 2;
	b = realloc(j->buf, cap);
	if (!b) {
		set_error(j, -ENOMEM);
		return false;
	}
	j->buf = b;
	j->cap = cap;
	return true;
}

static void put(struct zcv_json *j, const char *s, size_t n)
{
	if (!reserve(j, n))
		return;
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	j->buf[j->len] = '\0';
}

static void puts_(struct zcv_json *j, const char *s)
{
	put(j, s, strlen(s));
}

static void newline_indent(struct zcv_json *j, size_t depth)
{
	if (!reserve(j, 1 + 2 * depth))
		return;
	j->buf[j->len++] = '\n';
	memset(j->buf + j->len, ' ', 2 * depth);
	j->len += 2 * depth;
	j->buf[j->len] = '\0';
}

/* The separator before a member (key) or array element. */
static void separator(struct zcv_json *j, uint8_t *st)
{
	if (*st & ST_HAS)
		put(j, ",", 1);
	if (j->flags & ZCV_JSON_PRETTY)
		newline_indent(j, j->depth);
	else if (*st & ST_HAS)
		put(j, " ", 1);
	*st |= ST_HAS;
}

/* Checks that a value may come now and writes what goes before it. */
static bool begin_value(struct zcv_json *j)
{
	uint8_t *st;

	if (j->error)
		return false;
	if (j->depth == 0) {
		if (j->root_done) {
			set_error(j, -EINVAL); /* one root value per document */
			return false;
		}
		j->root_done = true;
		return true;
	}
	st = &j->stack[j->depth - 1];
	if (*st & ST_OBJECT) {
		if (!(*st & ST_KEY)) {
			set_error(j, -EINVAL); /* a value where a key is due */
			return false;
		}
		*st &= (uint8_t)~ST_KEY;
		return true;
	}
	separator(j, st);
	return !j->error;
}

static void begin(struct zcv_json *j, bool object)
{
	bool root = j->depth == 0;

	if (!begin_value(j))
		return;
	if (j->depth == j->stack_cap) {
		size_t cap = j->stack_cap ? j->stack_cap * 2 : 16;
		uint8_t *s = realloc(j->stack, cap);

		if (!s) {
			set_error(j, -ENOMEM);
			return;
		}
		j->stack = s;
		j->stack_cap = cap;
	}
	if (root)
		j->root_object = object;
	j->stack[j->depth++] = object ? ST_OBJECT : 0;
	put(j, object ? "{" : "[", 1);
}

static void end(struct zcv_json *j, bool object)
{
	uint8_t st;

	if (j->error)
		return;
	if (j->depth == 0) {
		set_error(j, -EINVAL);
		return;
	}
	st = j->stack[j->depth - 1];
	if (!(st & ST_OBJECT) != !object || (st & ST_KEY)) {
		set_error(j, -EINVAL); /* mismatched end, or a key without its value */
		return;
	}
	j->depth--;
	if ((st & ST_HAS) && (j->flags & ZCV_JSON_PRETTY))
		newline_indent(j, j->depth);
	put(j, object ? "}" : "]", 1);
}

void zcv_json_init(struct zcv_json *j, unsigned flags)
{
	memset(j, 0, sizeof(*j));
	j->flags = flags;
}

void zcv_json_finish(struct zcv_json *j)
{
	if (!j)
		return;
	free(j->buf);
	free(j->stack);
	memset(j, 0, sizeof(*j));
}

void zcv_json_begin_object(struct zcv_json *j)
{
	begin(j, true);
}

void zcv_json_end_object(struct zcv_json *j)
{
	end(j, true);
}

void zcv_json_begin_array(struct zcv_json *j)
{
	begin(j, false);
}

void zcv_json_end_array(struct zcv_json *j)
{
	end(j, false);
}

static void put_escaped(struct zcv_json *j, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run = 0;

	put(j, "\"", 1);
	while (i < n && !j->error) {
		uint32_t cp = 0;
		size_t len = zcv_utf8_decode(s + i, n - i, &cp);
		char esc[8];

		if (len && !zcv_utf8_is_unsafe(cp) && cp != '"' && cp != '\\') {
			/* safe bytes are copied in runs, not one by one */
			run += len;
			i += len;
			continue;
		}
		put(j, (const char *)s + i - run, run);
		run = 0;
		if (!len) {
			puts_(j, "\\ufffd"); /* not UTF-8: one replacement per byte */
			i++;
			continue;
		}
		if (cp == '"' || cp == '\\') {
			esc[0] = '\\';
			esc[1] = (char)cp;
			put(j, esc, 2);
		} else {
			snprintf(esc, sizeof(esc), "\\u%04" PRIx32, cp);
			put(j, esc, 6);
		}
		i += len;
	}
	put(j, (const char *)s + i - run, run);
	put(j, "\"", 1);
}

void zcv_json_key(struct zcv_json *j, const char *key)
{
	uint8_t *st;

	if (j->error)
		return;
	if (!key || j->depth == 0 || !(j->stack[j->depth - 1] & ST_OBJECT) ||
	    (j->stack[j->depth - 1] & ST_KEY)) {
		set_error(j, -EINVAL);
		return;
	}
	st = &j->stack[j->depth - 1];
	separator(j, st);
	put_escaped(j, key, strlen(key));
	put(j, ": ", 2);
	*st |= ST_KEY;
}

void zcv_json_string_len(struct zcv_json *j, const char *s, size_t len)
{
	if (!s && len) {
		set_error(j, -EINVAL);
		return;
	}
	if (begin_value(j))
		put_escaped(j, s ? s : "", len);
}

void zcv_json_string(struct zcv_json *j, const char *s)
{
	if (!s)
		zcv_json_null(j);
	else
		zcv_json_string_len(j, s, strlen(s));
}

void zcv_json_int(struct zcv_json *j, int64_t v)
{
	char b[24];

	if (begin_value(j))
		put(j, b, (size_t)snprintf(b, sizeof(b), "%" PRId64, v));
}

void zcv_json_uint(struct zcv_json *j, uint64_t v)
{
	char b[24];

	if (begin_value(j))
		put(j, b, (size_t)snprintf(b, sizeof(b), "%" PRIu64, v));
}

/* A locale with a decimal comma must not change the output. */
static void put_number(struct zcv_json *j, char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i] == ',')
			b[i] = '.';
	put(j, b, n);
}

void zcv_json_double(struct zcv_json *j, double v)
{
	char b[40];
	int n = 0;

	if (!isfinite(v)) {
		zcv_json_null(j);
		return;
	}
	if (!begin_value(j))
		return;
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(b, sizeof(b), "%.*g", prec, v);
		if (strtod(b, NULL) == v)
			break;
	}
	put_number(j, b, (size_t)n);
}

void zcv_json_fixed(struct zcv_json *j, double v, unsigned decimals)
{
	char small[64], *b = small;
	int n;

	if (!isfinite(v)) {
		zcv_json_null(j);
		return;
	}
	if (!begin_value(j))
		return;
	if (decimals > 17)
		decimals = 17;
	/* %f of a large double is long (up to ~330 digits): size it first */
	n = snprintf(NULL, 0, "%.*f", (int)decimals, v);
	if (n < 0) {
		set_error(j, -EINVAL);
		return;
	}
	if ((size_t)n >= sizeof(small) && !(b = malloc((size_t)n + 1))) {
		set_error(j, -ENOMEM);
		return;
	}
	snprintf(b, (size_t)n + 1, "%.*f", (int)decimals, v);
	put_number(j, b, (size_t)n);
	if (b != small)
		free(b);
}

void zcv_json_bool(struct zcv_json *j, bool v)
{
	if (begin_value(j))
		puts_(j, v ? "true" : "false");
}

void zcv_json_null(struct zcv_json *j)
{
	if (begin_value(j))
		puts_(j, "null");
}

void zcv_json_kv_string(struct zcv_json *j, const char *key, const char *s)
{
	zcv_json_key(j, key);
	zcv_json_string(j, s);
}

void zcv_json_kv_int(struct zcv_json *j, const char *key, int64_t v)
{
	zcv_json_key(j, key);
	zcv_json_int(j, v);
}

void zcv_json_kv_uint(struct zcv_json *j, const char *key, uint64_t v)
{
	zcv_json_key(j, key);
	zcv_json_uint(j, v);
}

void zcv_json_kv_double(struct zcv_json *j, const char *key, double v)
{
	zcv_json_key(j, key);
	zcv_json_double(j, v);
}

void zcv_json_kv_fixed(struct zcv_json *j, const char *key, double v, unsigned decimals)
{
	zcv_json_key(j, key);
	zcv_json_fixed(j, v, decimals);
}

void zcv_json_kv_bool(struct zcv_json *j, const char *key, bool v)
{
	zcv_json_key(j, key);
	zcv_json_bool(j, v);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

void zcv_json_merge_object(struct zcv_json *j, const struct zcv_json *src)
{
	const char *a, *b;
	uint8_t *st;

	if (j->error)
		return;
	if (!src || j->depth == 0 || !(j->stack[j->depth - 1] & ST_OBJECT) ||
	    (j->stack[j->depth - 1] & ST_KEY)) {
		set_error(j, -EINVAL);
		return;
	}
	if (src->error) {
		set_error(j, src->error);
		return;
	}
	if (src->depth || !src->root_done || !src->root_object || src->len < 2) {
		set_error(j, -EINVAL);
		return;
	}
	/* src's text is "{" members "}", built by this writer, so its
	 * members are well-formed: splice them in after a separator */
	a = src->buf + 1;
	b = src->buf + src->len - 1;
	while (a < b && is_space(*a))
		a++;
	while (b > a && is_space(b[-1]))
		b--;
	if (a == b)
		return; /* {} */
	st = &j->stack[j->depth - 1];
	separator(j, st);
	put(j, a, (size_t)(b - a));
}

int zcv_json_error(const struct zcv_json *j)
{
	return j->error;
}

int zcv_json_get(const struct zcv_json *j, const char **ret_text, size_t *ret_len)
{
	if (j->error)
		return j->error;
	if (j->depth || !j->root_done || !j->buf)
		return -EINVAL;
	if (ret_text)
		*ret_text = j->buf;
	if (ret_len)
		*ret_len = j->len;
	return 0;
}

int zcv_json_write(const struct zcv_json *j, FILE *f)
{
	const char *text;
	size_t len;
	int r = zcv_json_get(j, &text, &len);

	if (r != 0)
		return r;
	if (fwrite(text, 1, len, f) != len || fputc('\n', f) == EOF || fflush(f) != 0 || ferror(f))
		return -EIO;
	return 0;
}

int zcv_json_write_file(const struct zcv_json *j, const char *path)
{
	char tmp[4096];
	FILE *f;
	int r = zcv_json_get(j, NULL, NULL);

	if (r < 0)
		return r;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	r = zcv_json_write(j, f);
	if (fclose(f) != 0 && r == 0)
		r = -EIO;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	return r;
}
