/* SPDX-License-Identifier: MIT */
/* Internal: a sink's figures as core's stats, for the tools' stats JSON. */
#pragma once

#include <zcv/sink.h>
#include <zcv/stats.h>

/*
 * The run's figures (those of zcv_sink_get_stats, ops.stats applied) in
 * core's struct, latency samples included, for zcv_stats_write_json():
 * frames, dropped, path (its name; "none" before the first format),
 * copied_bytes, the first and last frame's time. Owned by the sink, valid
 * until the next call or zcv_sink_destroy().
 */
struct zcv_stats *zcv_sink_core_stats(struct zcv_sink *sink);
