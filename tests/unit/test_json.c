/* SPDX-License-Identifier: MIT */
/* The JSON writer (zcv/json.h), the stats JSON and the terminal sanitiser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <zcv/json.h>
#include <zcv/log.h>
#include <zcv/stats.h>
#include "fdcheck.h"

/* The document's text; fails the test when the writer reports an error. */
static const char *text(struct zcv_json *j)
{
	const char *t = NULL;

	assert_int_equal(zcv_json_get(j, &t, NULL), 0);
	return t;
}

/* One string value, escaped, as a whole document. */
static void check_escaped(const char *in, size_t len, const char *want)
{
	struct zcv_json j;

	zcv_json_init(&j, 0);
	zcv_json_string_len(&j, in, len);
	assert_string_equal(text(&j), want);
	zcv_json_finish(&j);
}

static void test_control_bytes(void **state)
{
	/* every control byte, each as \u00XX, between two plain letters */
	for (unsigned b = 0; b < 0x20; b++) {
		char in[3] = { 'a', (char)b, 'z' }, want[16];

		snprintf(want, sizeof(want), "\"a\\u%04xz\"", b);
		check_escaped(in, 3, want);
	}
	check_escaped("a\x7fz", 3, "\"a\\u007fz\"");
	/* a key is escaped the same way */
	{
		struct zcv_json j;

		zcv_json_init(&j, 0);
		zcv_json_begin_object(&j);
		zcv_json_kv_int(&j, "k\n\x1b[31m", 1);
		zcv_json_end_object(&j);
		assert_string_equal(text(&j), "{\"k\\u000a\\u001b[31m\": 1}");
		zcv_json_finish(&j);
	}
}

static void test_quotes_backslash(void **state)
{
	check_escaped("say \"hi\"", 8, "\"say \\\"hi\\\"\"");
	check_escaped("C:\\dir\\", 7, "\"C:\\\\dir\\\\\"");
	check_escaped("/ is fine", 9, "\"/ is fine\"");
	check_escaped("", 0, "\"\"");
	/* the name that overwrote a top-level field before */
	check_escaped("\"}],\"dropped\":999,\"x\":\"", 23,
		      "\"\\\"}],\\\"dropped\\\":999,\\\"x\\\":\\\"\"");
}

static void test_utf8(void **state)
{
	/* valid UTF-8 passes through */
	check_escaped("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
		      "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	/* each byte that is not part of valid UTF-8 becomes U+FFFD */
	check_escaped("\xff", 1, "\"\\ufffd\"");
	check_escaped("a\x80z", 3, "\"a\\ufffdz\"");                   /* stray continuation */
	check_escaped("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");            /* overlong '/' */
	check_escaped("\xe0\x80\xaf", 3, "\"\\ufffd\\ufffd\\ufffd\""); /* overlong */
	check_escaped("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
	check_escaped("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
	check_escaped("\xe2\x82", 2, "\"\\ufffd\\ufffd\"");                       /* truncated */
	check_escaped("\xe2\x82z", 3, "\"\\ufffd\\ufffdz\"");
	/* controls a terminal or viewer acts on, though valid UTF-8 */
	check_escaped("\xc2\x9b", 2, "\"\\u009b\"");     /* C1 CSI */
	check_escaped("\xe2\x80\xae", 3, "\"\\u202e\""); /* right-to-left override */
	check_escaped("\xe2\x80\xa8", 3, "\"\\u2028\""); /* line separator */
	check_escaped("\xe2\x81\xa6", 3, "\"\\u2066\""); /* isolate */
	check_escaped("\xc2\xa0", 2, "\"\xc2\xa0\"");    /* no-break space is text */
}

static void test_values_and_layout(void **state)
{
	struct zcv_json j;

	zcv_json_init(&j, 0);
	zcv_json_begin_object(&j);
	zcv_json_kv_int(&j, "i", INT64_MIN);
	zcv_json_kv_uint(&j, "u", UINT64_MAX);
	zcv_json_kv_double(&j, "d", 0.1);
	zcv_json_kv_double(&j, "big", 1e300);
	zcv_json_kv_double(&j, "nan", 0.0 / 0.0);
	zcv_json_kv_fixed(&j, "fps", 59.99999, 3);
	zcv_json_kv_fixed(&j, "inf", 1.0 / 0.0, 1);
	zcv_json_kv_bool(&j, "t", true);
	zcv_json_kv_bool(&j, "f", false);
	zcv_json_kv_string(&j, "null", NULL);
	zcv_json_key(&j, "a");
	zcv_json_begin_array(&j);
	zcv_json_uint(&j, 1);
	zcv_json_begin_object(&j);
	zcv_json_end_object(&j);
	zcv_json_begin_array(&j);
	zcv_json_end_array(&j);
	zcv_json_end_array(&j);
	zcv_json_end_object(&j);
	assert_string_equal(text(&j),
			    "{\"i\": -9223372036854775808, \"u\": 18446744073709551615, "
			    "\"d\": 0.1, \"big\": 1e+300, \"nan\": null, \"fps\": 60.000, "
			    "\"inf\": null, \"t\": true, \"f\": false, \"null\": null, "
			    "\"a\": [1, {}, []]}");
	zcv_json_finish(&j);

	zcv_json_init(&j, ZCV_JSON_PRETTY);
	zcv_json_begin_object(&j);
	zcv_json_kv_string(&j, "name", "x");
	zcv_json_key(&j, "list");
	zcv_json_begin_array(&j);
	zcv_json_int(&j, -1);
	zcv_json_begin_object(&j);
	zcv_json_kv_bool(&j, "ok", true);
	zcv_json_end_object(&j);
	zcv_json_end_array(&j);
	zcv_json_key(&j, "empty");
	zcv_json_begin_object(&j);
	zcv_json_end_object(&j);
	zcv_json_end_object(&j);
	assert_string_equal(text(&j), "{\n"
				      "  \"name\": \"x\",\n"
				      "  \"list\": [\n"
				      "    -1,\n"
				      "    {\n"
				      "      \"ok\": true\n"
				      "    }\n"
				      "  ],\n"
				      "  \"empty\": {}\n"
				      "}");
	zcv_json_finish(&j);

	/* a scalar is a document too */
	zcv_json_init(&j, 0);
	zcv_json_double(&j, -2.5);
	assert_string_equal(text(&j), "-2.5");
	zcv_json_finish(&j);
}

static void test_deep_nesting(void **state)
{
	struct zcv_json j;
	const char *t;
	size_t len = 0;
	enum { DEPTH = 5000 };

	zcv_json_init(&j, 0);
	for (int i = 0; i < DEPTH; i++) {
		zcv_json_begin_array(&j);
		zcv_json_begin_object(&j);
		zcv_json_key(&j, "k");
	}
	zcv_json_null(&j);
	for (int i = 0; i < DEPTH; i++) {
		zcv_json_end_object(&j);
		zcv_json_end_array(&j);
	}
	assert_int_equal(zcv_json_get(&j, &t, &len), 0);
	assert_int_equal(len, (size_t)DEPTH * (strlen("[{\"k\": ") + 2) + 4);
	assert_memory_equal(t, "[{\"k\": [{\"k\": ", 14);
	assert_memory_equal(t + (size_t)DEPTH * 7, "null}]}]", 8);
	assert_memory_equal(t + len - 2, "}]", 2);
	zcv_json_finish(&j);
}

static void test_misuse(void **state)
{
	struct zcv_json j;
	const char *t = "untouched";
	size_t len = 7;

	/* a value where a key is due */
	zcv_json_init(&j, 0);
	zcv_json_begin_object(&j);
	zcv_json_int(&j, 1);
	assert_int_equal(zcv_json_error(&j), -EINVAL);
	zcv_json_end_object(&j); /* sticky: still the first error */
	assert_int_equal(zcv_json_get(&j, &t, &len), -EINVAL);
	assert_string_equal(t, "untouched");
	assert_int_equal(len, 7);
	zcv_json_finish(&j);

	/* a key in an array, a key at the root, a NULL key */
	zcv_json_init(&j, 0);
	zcv_json_begin_array(&j);
	zcv_json_key(&j, "k");
	assert_int_equal(zcv_json_error(&j), -EINVAL);
	zcv_json_finish(&j);
	zcv_json_init(&j, 0);
	zcv_json_key(&j, "k");
	assert_int_equal(zcv_json_error(&j), -EINVAL);
	zcv_json_finish(&j);
	zcv_json_init(&j, 0);
	zcv_json_begin_object(&j);
	zcv_json_key(&j, NULL);
	assert_int_equal(zcv_json_error(&j), -EINVAL);
	zcv_json_finish(&j);

	/* mismatched ends, a key left without its value, an end too many */
	zcv_json_init(&j, 0);
	zcv_json_begin_object(&j);
	zcv_json_end_array(&j);
	assert_int_equal(zcv_json_error(&j), -EINVAL);
	zcv_json_finish(&j);
	zcv_json_init(&j, 0);
	zcv_json_begin_object(&j);
	zcv_json_key(&j, "k");
	zcv_json_end_object(&j);
	assert_int_equal(zcv_json_error(&j), -EINVAL);
	zcv_json_finish(&j);
	zcv_json_init(&j, 0);
	zcv_json_end_array(&j);
	assert_int_equal(zcv_json_error(&j), -EINVAL);
	zcv_json_finish(&j);

	/* two root values; a NULL string with a length */
	zcv_json_init(&j, 0);
	zcv_json_int(&j, 1);
	zcv_json_int(&j, 2);
	assert_int_equal(zcv_json_error(&j), -EINVAL);
	zcv_json_finish(&j);
	zcv_json_init(&j, 0);
	zcv_json_string_len(&j, NULL, 3);
	assert_int_equal(zcv_json_error(&j), -EINVAL);
	zcv_json_finish(&j);

	/* incomplete documents are not handed out (no error yet, just not done) */
	zcv_json_init(&j, 0);
	assert_int_equal(zcv_json_get(&j, &t, &len), -EINVAL);
	zcv_json_begin_object(&j);
	assert_int_equal(zcv_json_error(&j), 0);
	assert_int_equal(zcv_json_get(&j, &t, &len), -EINVAL);
	assert_int_equal(zcv_json_write(&j, stderr), -EINVAL);
	assert_int_equal(zcv_json_write_file(&j, "/nonexistent-dir/x.json"), -EINVAL);
	assert_string_equal(t, "untouched");
	zcv_json_finish(&j);
	zcv_json_finish(NULL);
}

/* Over 1 MB of hostile strings: every byte arrives, nothing is cut. */
static void test_large_document(void **state)
{
	static const char name[] = "\"}],\"dropped\":999,\"x\":\"\n\x1b[31m\\";
	static const char esc[] =
		"\"\\\"}],\\\"dropped\\\":999,\\\"x\\\":\\\"\\u000a\\u001b[31m\\\\\"";
	enum { N = 30000 };
	struct zcv_json j;
	const char *t;
	size_t len = 0, want, off;

	zcv_json_init(&j, 0);
	zcv_json_begin_object(&j);
	zcv_json_kv_uint(&j, "dropped", 3);
	zcv_json_key(&j, "consumers");
	zcv_json_begin_array(&j);
	for (unsigned i = 0; i < N; i++) {
		zcv_json_begin_object(&j);
		zcv_json_kv_string(&j, "name", name);
		zcv_json_end_object(&j);
	}
	zcv_json_end_array(&j);
	zcv_json_end_object(&j);
	assert_int_equal(zcv_json_get(&j, &t, &len), 0);
	/* {"dropped": 3, "consumers": [ {"name": ESC}, ... ]} */
	want = strlen("{\"dropped\": 3, \"consumers\": [") +
	       N * (strlen("{\"name\": }") + strlen(esc)) + (N - 1) * 2 + strlen("]}");
	assert_int_equal(len, want);
	assert_true(len > 1024 * 1024);
	assert_int_equal(strlen(t), len);
	off = strlen("{\"dropped\": 3, \"consumers\": [");
	assert_memory_equal(t, "{\"dropped\": 3, \"consumers\": [", off);
	for (unsigned i = 0; i < N; i++) {
		assert_memory_equal(t + off, "{\"name\": ", 9);
		off += 9;
		assert_memory_equal(t + off, esc, strlen(esc));
		off += strlen(esc);
		assert_int_equal(t[off], '}');
		off += i + 1 < N ? 3 : 1;
	}
	assert_string_equal(t + off, "]}");
	/* the raw bytes of the name never appear: no newline, no ESC */
	assert_null(memchr(t, '\n', len));
	assert_null(memchr(t, 0x1b, len));
	zcv_json_finish(&j);
}

static void test_merge_and_stats(void **state)
{
	struct zcv_json extra, bad;
	struct zcv_stats s;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	zcv_stats_init(&s);
	s.frames = 10;
	s.dropped = 2;
	zcv_json_init(&extra, 0);
	zcv_json_begin_object(&extra);
	zcv_json_kv_string(&extra, "name", "\",\"dropped\":999,\"");
	zcv_json_kv_uint(&extra, "n", 3);
	zcv_json_end_object(&extra);
	f = open_memstream(&buf, &len);
	assert_int_equal(zcv_stats_write_json(&s, f, &extra), 0);
	fclose(f);
	assert_string_equal(
		buf, "{\"frames\": 10, \"dropped\": 2, \"fps\": 0.000, \"path\": \"none\", "
		     "\"copied_bytes\": 0, \"latency_us\": {\"p50\": 0.0, \"p99\": 0.0, "
		     "\"max\": 0.0}, \"name\": \"\\\",\\\"dropped\\\":999,\\\"\", \"n\": 3}\n");
	free(buf);
	zcv_json_finish(&extra);

	/* pretty extra: the stats are laid out the same way */
	zcv_json_init(&extra, ZCV_JSON_PRETTY);
	zcv_json_begin_object(&extra);
	zcv_json_kv_uint(&extra, "n", 3);
	zcv_json_end_object(&extra);
	f = open_memstream(&buf, &len);
	assert_int_equal(zcv_stats_write_json(&s, f, &extra), 0);
	fclose(f);
	assert_non_null(strstr(buf, "{\n  \"frames\": 10,\n"));
	assert_non_null(strstr(buf, "    \"max\": 0.0\n  },\n  \"n\": 3\n}\n"));
	free(buf);
	zcv_json_finish(&extra);

	/* an empty extra adds nothing; NULL extra is fine */
	zcv_json_init(&extra, 0);
	zcv_json_begin_object(&extra);
	zcv_json_end_object(&extra);
	f = open_memstream(&buf, &len);
	assert_int_equal(zcv_stats_write_json(&s, f, &extra), 0);
	assert_int_equal(zcv_stats_write_json(&s, f, NULL), 0);
	fclose(f);
	assert_non_null(strstr(buf, "\"max\": 0.0}}\n{\"frames\""));
	free(buf);
	zcv_json_finish(&extra);

	/* an extra that is not a complete object, or holds an error, is refused */
	f = open_memstream(&buf, &len);
	zcv_json_init(&bad, 0);
	zcv_json_begin_object(&bad);
	assert_int_equal(zcv_stats_write_json(&s, f, &bad), -EINVAL);
	zcv_json_finish(&bad);
	zcv_json_init(&bad, 0);
	zcv_json_begin_array(&bad);
	zcv_json_end_array(&bad);
	assert_int_equal(zcv_stats_write_json(&s, f, &bad), -EINVAL);
	zcv_json_finish(&bad);
	zcv_json_init(&bad, 0);
	zcv_json_begin_object(&bad);
	zcv_json_int(&bad, 1);
	zcv_json_end_object(&bad);
	assert_int_equal(zcv_stats_write_json(&s, f, &bad), -EINVAL);
	assert_int_equal(zcv_stats_write_json_file(&s, "/nonexistent-dir/x.json", &bad), -EINVAL);
	zcv_json_finish(&bad);
	fclose(f);
	assert_int_equal(len, 0); /* nothing half-written */
	free(buf);
	zcv_stats_finish(&s);
}

static void test_write_file(void **state)
{
	char dir[] = "/tmp/zcv-json-XXXXXX", path[64], got[64] = "";
	struct zcv_json j;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.json", dir);
	zcv_json_init(&j, 0);
	zcv_json_begin_array(&j);
	zcv_json_string(&j, "a\tb");
	zcv_json_end_array(&j);
	assert_int_equal(zcv_json_write_file(&j, path), 0);
	f = fopen(path, "re");
	assert_non_null(f);
	assert_non_null(fgets(got, sizeof(got), f));
	fclose(f);
	assert_string_equal(got, "[\"a\\u0009b\"]\n");
	assert_int_equal(zcv_json_write_file(&j, "/nonexistent-dir/x.json"), -ENOENT);
	zcv_json_finish(&j);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0); /* no temporary file left behind */
}

/*
 * Allocation failure: in a child whose address space is capped, a document
 * that cannot grow ends in -ENOMEM, never in a shorter document. Skipped
 * under AddressSanitizer, whose allocator aborts instead of failing.
 */
static void test_out_of_memory(void **state)
{
#if defined(__SANITIZE_ADDRESS__)
	skip();
#else
	pid_t pid;
	int status = 0;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static char chunk[1 << 20];
		struct rlimit rl;
		struct zcv_json j;
		const char *t = "untouched";
		char tmpl[] = "/tmp/zcv-json-oom-XXXXXX", path[64];
		int ok = 1;

		memset(chunk, 'x', sizeof(chunk) - 1);
		if (!mkdtemp(tmpl))
			_exit(2);
		snprintf(path, sizeof(path), "%s/s.json", tmpl);
		/* what is mapped now plus 64 MB: a 1 GB document cannot fit */
		getrlimit(RLIMIT_AS, &rl);
		{
			FILE *st = fopen("/proc/self/statm", "re");
			unsigned long pages = 0;

			if (!st || fscanf(st, "%lu", &pages) != 1)
				_exit(2);
			fclose(st);
			rl.rlim_cur = pages * (unsigned long)sysconf(_SC_PAGESIZE) + (64ul << 20);
		}
		if (setrlimit(RLIMIT_AS, &rl) < 0)
			_exit(2);
		zcv_json_init(&j, 0);
		zcv_json_begin_array(&j);
		for (int i = 0; i < 1024 && !zcv_json_error(&j); i++)
			zcv_json_string(&j, chunk);
		ok &= zcv_json_error(&j) == -ENOMEM;
		/* sticky: the document stays failed whatever comes next */
		zcv_json_string(&j, "more");
		zcv_json_end_array(&j);
		ok &= zcv_json_get(&j, &t, NULL) == -ENOMEM && !strcmp(t, "untouched");
		ok &= zcv_json_write_file(&j, path) == -ENOMEM && access(path, F_OK) < 0;
		zcv_json_finish(&j);
		rmdir(tmpl);
		_exit(ok ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
#endif
}

static void test_sanitize(void **state)
{
	char b[64];

	assert_string_equal(zcv_log_sanitize(b, sizeof(b), "plain name"), "plain name");
	assert_string_equal(zcv_log_sanitize(b, sizeof(b), "a\nb\x1b[31mc\r\t\x7f"),
			    "a\\x0ab\\x1b[31mc\\x0d\\x09\\x7f");
	assert_string_equal(zcv_log_sanitize(b, sizeof(b), "back\\slash"), "back\\\\slash");
	assert_string_equal(zcv_log_sanitize(b, sizeof(b), "caf\xc3\xa9"), "caf\xc3\xa9");
	assert_string_equal(zcv_log_sanitize(b, sizeof(b), "bad\xff\xc0\xaf"),
			    "bad\\xff\\xc0\\xaf");
	assert_string_equal(zcv_log_sanitize(b, sizeof(b),
					     "\xc2\x9b"
					     "2J"),
			    "\\xc2\\x9b2J");
	assert_string_equal(zcv_log_sanitize(b, sizeof(b), "x\xe2\x80\xaey"), "x\\xe2\\x80\\xaey");
	assert_string_equal(zcv_log_sanitize(b, sizeof(b), NULL), "(null)");
	/* what does not fit ends in "...", never inside an escape or a character */
	assert_string_equal(zcv_log_sanitize(b, 8, "abcdefghij"), "abcd...");
	assert_string_equal(zcv_log_sanitize(b, 11, "abcdefghij"), "abcdefghij");
	assert_string_equal(zcv_log_sanitize(b, 10, "abcdefghij"), "abcdef...");
	assert_string_equal(zcv_log_sanitize(b, 10, "ab\x1b\x1b\x1b"), "ab\\x1b...");
	assert_string_equal(zcv_log_sanitize(b, 8, "ab\xc3\xa9\xc3\xa9\xc3\xa9"), "ab\xc3\xa9...");
	assert_string_equal(zcv_log_sanitize(b, 3, "abcdef"), "..");
	assert_string_equal(zcv_log_sanitize(b, 1, "abcdef"), "");
	assert_string_equal(zcv_log_sanitize(b, 0, "abcdef"), "");
	assert_string_equal(zcv_log_safe("\x1b]0;title\x07"), "\\x1b]0;title\\x07");
}

/* zcv_log() itself escapes what it prints. */
static void test_log_line(void **state)
{
	int saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	int mfd = memfd_create("log", MFD_CLOEXEC);
	char buf[256] = "";
	ssize_t n;

	assert_true(saved >= 0 && mfd >= 0);
	fflush(stderr);
	assert_int_equal(dup2(mfd, STDERR_FILENO), STDERR_FILENO);
	zcv_log(ZCV_LOG_ERROR, "consumer '%s' left", "evil\n\x1b[2Jname");
	fflush(stderr);
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	n = pread(mfd, buf, sizeof(buf) - 1, 0);
	close(mfd);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "error: consumer 'evil\\x0a\\x1b[2Jname' left\n"));
	assert_null(strchr(buf, 0x1b));
	assert_ptr_equal(strchr(buf, '\n'), buf + n - 1); /* one line */
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, zcv_test_fd_setup, zcv_test_fd_teardown)
	const struct CMUnitTest tests[] = {
		T(test_control_bytes),     T(test_quotes_backslash), T(test_utf8),
		T(test_values_and_layout), T(test_deep_nesting),     T(test_misuse),
		T(test_large_document),    T(test_merge_and_stats),  T(test_write_file),
		T(test_out_of_memory),     T(test_sanitize),         T(test_log_line),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
