/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <zcv/common.h>

/*
 * A JSON writer into a growing buffer: the one way zcv and its tools write
 * JSON, so that text that came from a peer (a consumer's name, a
 * producer's reason) can never change the document's structure.
 *
 * Every call appends one token; none returns an error. The first failure
 * is kept (sticky) and every later call is a no-op, so a caller builds the
 * whole document and checks once, at zcv_json_get()/zcv_json_write*():
 * -ENOMEM when the buffer could not grow (nothing is ever cut short
 * silently), -EINVAL for a misuse (a value where a key is due, a key
 * outside an object, an end that does not match its begin, a second root
 * value, an incomplete document).
 *
 * Strings (keys and values) are escaped so the output is valid JSON and
 * plain printable text whatever the input bytes:
 * - '"' and '\\' as \" and \\;
 * - every control byte (0x00-0x1f, 0x7f) as \u00XX, newlines and tabs
 *   included; C1 controls (U+0080-U+009F), the line/paragraph separators
 *   U+2028/U+2029 and the bidirectional overrides U+202A-U+202E and
 *   U+2066-U+2069 as \uXXXX, so the file is safe to cat to a terminal;
 * - every byte that is not part of valid UTF-8 (stray continuation
 *   bytes, truncated or overlong sequences, surrogates, beyond U+10FFFF)
 *   is replaced by U+FFFD, escaped as \ufffd: JSON text is Unicode, and
 *   a replacement character says "a byte was here" without pretending it
 *   was some other character.
 * Valid UTF-8 otherwise passes through unchanged.
 *
 * Numbers: integers exactly; doubles shortest-round-trip (or with fixed
 * decimals); NaN and infinities, which JSON lacks, as null.
 *
 * Layout: one line ({"a": 1, "b": [1, 2]}) by default, or pretty
 * (ZCV_JSON_PRETTY: two spaces per level, one member per line).
 *
 * Not thread-safe; a writer belongs to one thread at a time.
 */
struct zcv_json {
	/* private: use the functions */
	char *buf;
	size_t len, cap;
	uint8_t *stack; /* per open container: ZCV_JSON_* state bits */
	size_t depth, stack_cap;
	unsigned flags;
	int error;
	bool root_done, root_object;
};

#define ZCV_JSON_PRETTY (1u << 0)

/* Starts an empty document; flags 0 or ZCV_JSON_PRETTY. Allocates nothing
 * yet, so it cannot fail. */
void zcv_json_init(struct zcv_json *j, unsigned flags);

/* Frees the buffer; j may be re-initialised. Accepts NULL. */
void zcv_json_finish(struct zcv_json *j);

void zcv_json_begin_object(struct zcv_json *j);
void zcv_json_end_object(struct zcv_json *j);
void zcv_json_begin_array(struct zcv_json *j);
void zcv_json_end_array(struct zcv_json *j);

/* A member name inside an object; the next call must write its value.
 * NULL is a misuse (-EINVAL). */
void zcv_json_key(struct zcv_json *j, const char *key);

/* A string value, escaped as described above; NULL writes null. */
void zcv_json_string(struct zcv_json *j, const char *s);
/* The same for len bytes that may contain NUL (written as \u0000). */
void zcv_json_string_len(struct zcv_json *j, const char *s, size_t len);
void zcv_json_int(struct zcv_json *j, int64_t v);
void zcv_json_uint(struct zcv_json *j, uint64_t v);
/* Shortest text that reads back as the same double; null for NaN/inf. */
void zcv_json_double(struct zcv_json *j, double v);
/* v with exactly `decimals` digits after the point (at most 17); null for
 * NaN/inf. For figures whose precision is known (fps, microseconds). */
void zcv_json_fixed(struct zcv_json *j, double v, unsigned decimals);
void zcv_json_bool(struct zcv_json *j, bool v);
void zcv_json_null(struct zcv_json *j);

/* key + value in one call, for the common object member. */
void zcv_json_kv_string(struct zcv_json *j, const char *key, const char *s);
void zcv_json_kv_int(struct zcv_json *j, const char *key, int64_t v);
void zcv_json_kv_uint(struct zcv_json *j, const char *key, uint64_t v);
void zcv_json_kv_double(struct zcv_json *j, const char *key, double v);
void zcv_json_kv_fixed(struct zcv_json *j, const char *key, double v, unsigned decimals);
void zcv_json_kv_bool(struct zcv_json *j, const char *key, bool v);

/*
 * Appends the members of src, a complete document whose root is an
 * object, to the object open in j (src is not changed; its members keep
 * its layout). How a caller hands a set of members to a function that
 * writes the enclosing object (zcv_stats_write_json's extra). src's error,
 * if any, becomes j's; a src that is not a complete object is -EINVAL.
 */
void zcv_json_merge_object(struct zcv_json *j, const struct zcv_json *src);

/* The first error so far (0: none). */
int zcv_json_error(const struct zcv_json *j);

/*
 * The finished document: NUL-terminated text owned by j, valid until the
 * next call on j. Returns 0, the sticky error, or -EINVAL when the
 * document is incomplete (no root value, or a container still open);
 * ret_* untouched on failure.
 */
int zcv_json_get(const struct zcv_json *j, const char **ret_text, size_t *ret_len);

/* The finished document and a newline to f. Returns 0, as zcv_json_get,
 * or -EIO when f reports a write error. */
int zcv_json_write(const struct zcv_json *j, FILE *f);

/*
 * The finished document to a file at path, replaced atomically (written to
 * a temporary file beside it, then renamed): a reader never sees half a
 * document. Returns 0, as zcv_json_get (then nothing is created), or the
 * negative errno of creating/writing/renaming (-EIO for a failed write).
 */
int zcv_json_write_file(const struct zcv_json *j, const char *path);
