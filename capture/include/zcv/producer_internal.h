/* SPDX-License-Identifier: MIT */
/* Internal (not installed): what zcv-capture and the tests need of a
 * producer beyond <zcv/producer.h>: its stats, and test aids. */
#pragma once

#include <stdio.h>
#include <zcv/json.h>
#include <zcv/producer.h>
#include <zcv/stats.h>

/*
 * Test aids: from now on every frame the source fills is written, as
 * captured and before it is published, through the producer's own
 * mapping: to checksums, "sequence checksum" lines (zcv_frame_checksum) of
 * every every-th frame and the last, and to dump, a 32-byte header
 * ('ZCVD', width, height, fourcc, sequence as two words, bytes) and the
 * visible lines of each plane. Either may be NULL; both stay the caller's.
 */
void zcv_producer_log_frames(struct zcv_producer *p, FILE *checksums, uint64_t every, FILE *dump);

/*
 * The stats of a run, before zcv_producer_destroy(): fills ret_stats
 * (initialised by the caller with zcv_stats_init(); its latency samples
 * are moved there) with the contract's figures — frames published,
 * render-done to hand-off-done latency, the bytes this process copied, the
 * source's path and its lost frames — and adds the producer's members to
 * the object open in j: consumers (the table of zcv_producer_get_consumers),
 * budget {total, granted}, buffer_inodes, source_dropped, source_starved
 * and allocation. Call it once.
 */
void zcv_producer_stats(struct zcv_producer *p, struct zcv_stats *ret_stats, struct zcv_json *j);
