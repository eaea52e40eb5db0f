/* SPDX-License-Identifier: MIT */
/*
 * What every benchmark peer (zcv, PipeWire, GStreamer shm; producer and
 * consumer) does per frame, and how the external peers report to
 * zcv-bench. The per-frame work is the same everywhere so that the cases
 * compare transports: the producer writes this header into the first bytes
 * of the frame it sends (nothing else: frames are not rendered per frame),
 * the consumer reads it back, checks the sequence and takes latency =
 * its clock at the frame callback - the header's timestamp.
 */
#ifndef ZCV_BENCH_PEER_H
#define ZCV_BENCH_PEER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench-trace.h"

#define BENCH_HDR_MAGIC 0x7a637668u
#define BENCH_HDR_LAST 1u

struct bench_hdr {
	uint64_t seq;
	uint64_t ts_ns; /* CLOCK_MONOTONIC when the producer sent the frame */
	uint32_t flags;
	uint32_t magic;
};

static inline uint64_t bench_clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void bench_hdr_write(void *frame, uint64_t seq, bool last)
{
	struct bench_hdr h = { .seq = seq,
			       .ts_ns = bench_clock_ns(CLOCK_MONOTONIC),
			       .flags = last ? BENCH_HDR_LAST : 0,
			       .magic = BENCH_HDR_MAGIC };

	memcpy(frame, &h, sizeof(h));
}

/* Returns false when the frame carries no header of ours. */
static inline bool bench_hdr_read(const void *frame, struct bench_hdr *ret)
{
	memcpy(ret, frame, sizeof(*ret));
	return ret->magic == BENCH_HDR_MAGIC;
}

/*
 * What an external peer measured over its window (frames with seq >=
 * warm-up), written as "key value" lines, then one "lat NS" line per
 * latency sample (consumers only).
 */
struct bench_report {
	uint64_t frames;    /* sent (producer) or received (consumer) in the window */
	uint64_t cpu_ns;    /* CLOCK_PROCESS_CPUTIME_ID over the window, all threads */
	uint64_t wall_ns;   /* first to last frame of the window */
	uint64_t bad;       /* frames without our header or out of order */
	uint64_t no_buffer; /* PipeWire producer, unpaced: cycles the watchdog restarted */
	uint64_t memfd;     /* frames whose memory was a memfd */
	uint64_t data_type; /* PipeWire: spa_data type of the last frame */
	long long syscalls; /* counted by strace over the traced frames, or -1 */
	uint64_t traced;    /* frames handled while traced */
	uint64_t *lat;      /* ns */
	size_t n_lat, cap_lat;
};

static inline void bench_report_lat(struct bench_report *r, uint64_t ns)
{
	if (r->n_lat == r->cap_lat) {
		size_t cap = r->cap_lat ? 2 * r->cap_lat : 4096;
		uint64_t *n = cap <= (1u << 22) ? realloc(r->lat, cap * sizeof(*n)) : NULL;

		if (!n)
			return;
		r->lat = n;
		r->cap_lat = cap;
	}
	r->lat[r->n_lat++] = ns;
}

static inline int bench_report_write(const struct bench_report *r, const char *path)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -1;
	fprintf(f,
		"frames %llu\ncpu_ns %llu\nwall_ns %llu\nbad %llu\nno_buffer %llu\nmemfd %llu\n"
		"data_type %llu\nsyscalls %lld\ntraced %llu\n",
		(unsigned long long)r->frames, (unsigned long long)r->cpu_ns,
		(unsigned long long)r->wall_ns, (unsigned long long)r->bad,
		(unsigned long long)r->no_buffer, (unsigned long long)r->memfd,
		(unsigned long long)r->data_type, r->syscalls, (unsigned long long)r->traced);
	for (size_t i = 0; i < r->n_lat; i++)
		fprintf(f, "lat %llu\n", (unsigned long long)r->lat[i]);
	return fclose(f) == 0 ? 0 : -1;
}

#endif
