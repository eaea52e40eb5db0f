/* SPDX-License-Identifier: MIT */
/*
 * Syscall counting for the benchmark's processes: a process attaches
 * `strace -f -c` to itself for a window of frames and reads the total back.
 * Header-only so zcv-bench and the PipeWire / GStreamer peers (separate
 * programs, separate dependencies) share it without a library.
 *
 * strace stops the traced threads at every syscall, so a traced window says
 * how many syscalls a frame takes, never how long it takes: callers measure
 * CPU time in separate, untraced runs.
 */
#ifndef ZCV_BENCH_TRACE_H
#define ZCV_BENCH_TRACE_H

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Every thread of this process has a tracer (strace -f -p attaches each). */
static inline bool bench_trace_attached(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	bool all = d != NULL;

	while (all && (de = readdir(d))) {
		char path[300], line[128];
		FILE *f;
		bool traced = false;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue; /* the thread is gone */
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "TracerPid:", 10))
				traced = strtol(line + 10, NULL, 10) != 0;
		fclose(f);
		all = traced;
	}
	if (d)
		closedir(d);
	return all;
}

/*
 * Starts `strace -f -c -o OUT -p <this process>` and returns once every
 * thread is traced (up to 5 s). Returns strace's pid, or a negative errno
 * (-ETIMEDOUT when it never attached; strace is then stopped).
 */
static inline pid_t bench_trace_start_once(const char *out)
{
	char pid_s[24];
	char *argv[] = { "strace", "-f", "-qq", "-c", "-o", (char *)out, "-p", pid_s, NULL };
	struct timespec tick = { 0, 1000000 };
	posix_spawnattr_t attr;
	sigset_t none, dfl;
	pid_t pid;
	int r;

	/* PipeWire blocks SIGINT/SIGTERM for its signalfd: strace must not
	 * inherit that mask, SIGINT is how it is told to detach */
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGTERM);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dfl);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	snprintf(pid_s, sizeof(pid_s), "%d", (int)getpid());
	r = posix_spawnp(&pid, "strace", NULL, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	if (r != 0)
		return -r;
	for (int i = 0; i < 5000; i++) {
		int st;

		if (bench_trace_attached())
			return pid;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return -ECHILD;
		nanosleep(&tick, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -ETIMEDOUT;
}

/* strace -f may lose a race with a thread that is exiting: one retry */
static inline pid_t bench_trace_start(const char *out)
{
	pid_t pid = bench_trace_start_once(out);

	return pid == -ECHILD ? bench_trace_start_once(out) : pid;
}

/* Detaches strace (it writes its table on SIGINT) and waits for it. */
static inline void bench_trace_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGINT);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* The "calls" column of the total line of an `strace -c` table, or -1. */
static inline long long bench_trace_total(const char *path)
{
	FILE *f = fopen(path, "re");
	char line[256];
	long long calls = -1;

	while (f && fgets(line, sizeof(line), f)) {
		char *tok[8];
		int n = 0;

		for (char *s = strtok(line, " \t\n"); s && n < 8; s = strtok(NULL, " \t\n"))
			tok[n++] = s;
		/* % time, seconds, usecs/call, calls, [errors,] "total" */
		if (n >= 5 && !strcmp(tok[n - 1], "total"))
			calls = strtoll(tok[3], NULL, 10);
	}
	if (f)
		fclose(f);
	return calls;
}

/* Calls per syscall name of an `strace -c` table (bench_trace_read). */
#define BENCH_TRACE_MAX_NAMES 48
struct bench_trace_counts {
	unsigned n;
	long long total; /* the table's total line, or -1 */
	struct {
		char name[24];
		long long calls;
	} e[BENCH_TRACE_MAX_NAMES];
};

/*
 * Reads the per-syscall "calls" column of an `strace -c` table into ret
 * (rows past BENCH_TRACE_MAX_NAMES are left out of ret->e, never out of the
 * total). Returns the total, or -1 (ret->n 0) when the table is missing.
 */
static inline long long bench_trace_read(const char *path, struct bench_trace_counts *ret)
{
	FILE *f = fopen(path, "re");
	char line[256];

	memset(ret, 0, sizeof(*ret));
	ret->total = -1;
	while (f && fgets(line, sizeof(line), f)) {
		char *tok[8], *end;
		int n = 0;
		long long calls;

		for (char *s = strtok(line, " \t\n"); s && n < 8; s = strtok(NULL, " \t\n"))
			tok[n++] = s;
		/* % time, seconds, usecs/call, calls, [errors,] syscall */
		if (n < 5)
			continue;
		calls = strtoll(tok[3], &end, 10);
		if (*end || tok[0][0] < '0' || tok[0][0] > '9')
			continue; /* the header or the dashes */
		if (!strcmp(tok[n - 1], "total")) {
			ret->total = calls;
		} else if (ret->n < BENCH_TRACE_MAX_NAMES) {
			snprintf(ret->e[ret->n].name, sizeof(ret->e[0].name), "%s", tok[n - 1]);
			ret->e[ret->n++].calls = calls;
		}
	}
	if (f)
		fclose(f);
	return ret->total;
}

/* Calls of one syscall in c (0 when it was not made). */
static inline long long bench_trace_calls(const struct bench_trace_counts *c, const char *name)
{
	for (unsigned i = 0; i < c->n; i++)
		if (!strcmp(c->e[i].name, name))
			return c->e[i].calls;
	return 0;
}

/* Adds b's calls into a, name by name (a's total too when both have one). */
static inline void bench_trace_add(struct bench_trace_counts *a, const struct bench_trace_counts *b)
{
	for (unsigned i = 0; i < b->n; i++) {
		unsigned k = 0;

		while (k < a->n && strcmp(a->e[k].name, b->e[i].name))
			k++;
		if (k == a->n) {
			if (a->n == BENCH_TRACE_MAX_NAMES)
				continue;
			a->e[a->n++] = b->e[i];
		} else {
			a->e[k].calls += b->e[i].calls;
		}
	}
	if (b->total >= 0)
		a->total = (a->total < 0 ? 0 : a->total) + b->total;
}

#endif
