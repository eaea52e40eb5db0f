/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <zcv/common.h>

/*
 * Latency samples and the stats JSON of DESIGN.md's contract. Samples are
 * kept (up to a cap, then reservoir-free: later samples only update max)
 * so percentiles are exact for runs of practical length.
 */
struct zcv_latency {
	uint64_t *samples_ns;
	size_t n, cap, limit;
	uint64_t max_ns;
	uint64_t count;
};

/* limit 0 means the default (1,000,000 samples). */
ZCV_EXPORT void zcv_latency_init(struct zcv_latency *l, size_t limit);
ZCV_EXPORT void zcv_latency_finish(struct zcv_latency *l);
ZCV_EXPORT void zcv_latency_add(struct zcv_latency *l, uint64_t ns);
/* q in [0,1]; nearest-rank percentile in ns; 0 when empty. Sorts in place. */
ZCV_EXPORT uint64_t zcv_latency_percentile(struct zcv_latency *l, double q);

struct zcv_stats {
	uint64_t frames;           /* frames received / handled */
	uint64_t dropped;          /* frames missed (sequence gaps, skips) */
	uint64_t copied_bytes;     /* frame bytes zcv copied on the frame path */
	const char *path;          /* "dmabuf", "memfd", "copy" */
	uint64_t start_ns, end_ns; /* zcv_now_ns() at first and last frame */
	struct zcv_latency latency;
};

ZCV_EXPORT void zcv_stats_init(struct zcv_stats *s);
ZCV_EXPORT void zcv_stats_finish(struct zcv_stats *s);
/* Frames per second between the first and last frame; 0 with < 2 frames. */
ZCV_EXPORT double zcv_stats_fps(const struct zcv_stats *s);

/*
 * Writes the stats object to f: frames, dropped, fps, path, copied_bytes,
 * latency_us {p50, p99, max}, then `extra` verbatim when not NULL (a
 * fragment of further members, e.g. "\"name\": \"x\", \"n\": 3" — no leading
 * comma). Returns 0 or -EIO.
 */
ZCV_EXPORT int zcv_stats_write_json(struct zcv_stats *s, FILE *f, const char *extra);

/* Same, to a file created at path (replaced atomically via a temp file). */
ZCV_EXPORT int zcv_stats_write_json_file(struct zcv_stats *s, const char *path, const char *extra);
