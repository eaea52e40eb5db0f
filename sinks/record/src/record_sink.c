/* SPDX-License-Identifier: MIT */
/* The record sink: zcv_record behind <zcv/sink.h>. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zcv/record.h>
#include <zcv/sink.h>

struct record_sink {
	struct zcv_sink *sink;
	struct zcv_record *rec;
	struct zcv_client_format fmt;
};

static int record_format(void *data, const struct zcv_client_format *fmt)
{
	struct record_sink *rs = data;

	rs->fmt = *fmt;
	return 0;
}

static int record_frame(void *data, const struct zcv_client_frame *f)
{
	struct record_sink *rs = data;
	int r;

	if (!f->planes[0])
		return zcv_sink_fail(rs->sink, -EFAULT,
				     "the frames are not mapped: nothing to record");
	zcv_sink_begin_access(rs->sink, f);
	r = zcv_record_write(rs->rec, &rs->fmt.layout, rs->fmt.fps_num, rs->fmt.fps_den, f->planes);
	zcv_sink_end_access(rs->sink, f);
	if (r == -EINVAL)
		return zcv_sink_fail(
			rs->sink, r,
			"cannot record this stream as Y4M (RGB, or the format changed)");
	if (r < 0)
		return zcv_sink_fail(rs->sink, r, "write failed: %s", strerror(-r));
	zcv_sink_done(rs->sink, f);
	return 0;
}

static void record_destroy(void *data)
{
	free(data);
}

static const struct zcv_sink_ops record_ops = {
	.size = sizeof(struct zcv_sink_ops),
	.format = record_format,
	.frame = record_frame,
	.destroy = record_destroy,
};

int zcv_record_sink_create(struct zcv_record *rec, struct zcv_sink **ret_sink)
{
	struct record_sink *rs = calloc(1, sizeof(*rs));
	int r;

	if (!rs)
		return -ENOMEM;
	rs->rec = rec;
	r = zcv_sink_create(&record_ops, rs, &rs->sink);
	if (r < 0) {
		free(rs);
		return r;
	}
	*ret_sink = rs->sink;
	return 0;
}
