/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include <stdio.h>
#include <zcv/common.h>
#include <zcv/json.h>

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
void zcv_latency_init(struct zcv_latency *l, size_t limit);
void zcv_latency_finish(struct zcv_latency *l);
void zcv_latency_add(struct zcv_latency *l, uint64_t ns);
/* q in [0,1]; nearest-rank percentile in ns; 0 when empty. Sorts in place. */
uint64_t zcv_latency_percentile(struct zcv_latency *l, double q);

struct zcv_stats {
	uint64_t frames;           /* frames received / handled */
	uint64_t dropped;          /* frames missed (sequence gaps, skips) */
	uint64_t copied_bytes;     /* frame bytes zcv copied on the frame path */
	const char *path;          /* "dmabuf", "memfd", "copy" */
	uint64_t start_ns, end_ns; /* zcv_now_ns() at first and last frame */
	struct zcv_latency latency;
};

void zcv_stats_init(struct zcv_stats *s);
void zcv_stats_finish(struct zcv_stats *s);
/* Frames per second between the first and last frame; 0 with < 2 frames. */
double zcv_stats_fps(const struct zcv_stats *s);

/* Adds the contract's members (frames, dropped, fps, path, copied_bytes,
 * latency_us {p50, p99, max}) to the object open in j. Sorts the latency
 * samples. */
void zcv_stats_add_json(struct zcv_stats *s, struct zcv_json *j);

/*
 * Writes the stats object to f: the contract's members, then the members
 * of extra when not NULL (a complete object built with zcv_json, e.g. the
 * tool's own figures; laid out as extra is: pretty or one line). Peer text
 * in extra was escaped when it was added, so it cannot change the
 * document's structure. Returns 0, -ENOMEM, -EINVAL (extra is not a
 * complete object, or holds a misuse), or -EIO when f fails.
 */
int zcv_stats_write_json(struct zcv_stats *s, FILE *f, const struct zcv_json *extra);

/* Same, to a file at path, replaced atomically via a temp file beside it
 * (zcv_json_write_file); also the errno of creating/renaming it. */
int zcv_stats_write_json_file(struct zcv_stats *s, const char *path, const struct zcv_json *extra);
