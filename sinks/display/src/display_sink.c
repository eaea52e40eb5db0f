/* SPDX-License-Identifier: MIT */
/* The display sink: zcv_display behind <zcv/sink.h>. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <zcv/display.h>
#include <zcv/sink.h>

struct display_sink {
	struct zcv_sink *sink;
	struct zcv_display *disp;
	void (*fallback)(void *data, const char *reason);
	void *data;
	bool draining;
};

static void on_release(void *data, const struct zcv_client_frame *f)
{
	struct display_sink *ds = data;
	int r = zcv_sink_done(ds->sink, f);

	if (r < 0)
		zcv_sink_fail(ds->sink, r, "cannot release frame %" PRIu64 ": %s", f->sequence,
			      strerror(-r));
}

static void on_flipped(void *data, const struct zcv_client_frame *f, uint64_t flip_ns)
{
	struct display_sink *ds = data;

	/* capture to the vblank that put the frame on screen */
	zcv_sink_add_latency(ds->sink, flip_ns > f->timestamp_ns ? flip_ns - f->timestamp_ns : 0);
}

static void on_fallback(void *data, const char *reason)
{
	struct display_sink *ds = data;

	if (ds->fallback)
		ds->fallback(ds->data, reason);
}

static void on_access(void *data, const struct zcv_client_frame *f, bool begin)
{
	struct display_sink *ds = data;

	if (begin)
		zcv_sink_begin_access(ds->sink, f);
	else
		zcv_sink_end_access(ds->sink, f);
}

static int display_format(void *data, const struct zcv_client_format *fmt)
{
	struct display_sink *ds = data;
	int r = zcv_display_set_format(ds->disp, fmt);
	char fcc[5];

	if (r < 0)
		return zcv_sink_fail(ds->sink, r, "cannot display %s %ux%u: %s",
				     zcv_fourcc_str(fmt->layout.fourcc, fcc), fmt->layout.width,
				     fmt->layout.height, strerror(-r));
	return 0;
}

static int display_frame(void *data, const struct zcv_client_frame *f)
{
	struct display_sink *ds = data;
	int r = zcv_display_show(ds->disp, f);

	if (r < 0)
		return zcv_sink_fail(ds->sink, r, "cannot show frame %" PRIu64 ": %s", f->sequence,
				     strerror(-r));
	return 0;
}

static int display_get_fd(void *data, short *ret_events)
{
	struct display_sink *ds = data;

	*ret_events = POLLIN;
	return zcv_display_get_fd(ds->disp);
}

/* No flip pending (finish with no time to wait only says so). */
static bool flips_done(struct display_sink *ds)
{
	return zcv_display_finish(ds->disp, 0) == 0;
}

static int display_dispatch(void *data)
{
	struct display_sink *ds = data;
	int r = zcv_display_dispatch(ds->disp);

	if (r < 0)
		return zcv_sink_fail(ds->sink, r, "display failed: %s", strerror(-r));
	return ds->draining && flips_done(ds) ? 1 : 0;
}

/* The last frame stays on screen (and held) until the sink is destroyed:
 * a drain only waits for the flip on its way. */
static int display_drain(void *data)
{
	struct display_sink *ds = data;

	ds->draining = true;
	return flips_done(ds) ? 1 : 0;
}

static void display_stats(void *data, struct zcv_sink_stats *stats)
{
	struct display_sink *ds = data;
	struct zcv_display_info info;

	zcv_display_get_info(ds->disp, &info);
	if (info.copy)
		stats->path = ZCV_PATH_COPY;
}

static void display_destroy(void *data)
{
	struct display_sink *ds = data;

	/* the display engine stops reading, then every frame is handed back */
	zcv_display_destroy(ds->disp);
	free(ds);
}

static const struct zcv_sink_ops display_ops = {
	.size = sizeof(struct zcv_sink_ops),
	.flags = ZCV_SINK_OWN_LATENCY,
	.format = display_format,
	.frame = display_frame,
	.get_fd = display_get_fd,
	.dispatch = display_dispatch,
	.drain = display_drain,
	.stats = display_stats,
	.destroy = display_destroy,
};

int zcv_display_sink_create(const struct zcv_display_config *cfg,
			    void (*fallback)(void *data, const char *reason), void *data,
			    struct zcv_sink **ret_sink, struct zcv_display **ret_display,
			    char *errbuf, size_t errlen)
{
	static const struct zcv_display_callbacks cbs = {
		.release = on_release,
		.flipped = on_flipped,
		.fallback = on_fallback,
		.access = on_access,
	};
	struct display_sink *ds = calloc(1, sizeof(*ds));
	int r;

	if (!ds)
		return -ENOMEM;
	ds->fallback = fallback;
	ds->data = data;
	r = zcv_display_create(cfg, &cbs, ds, &ds->disp, errbuf, errlen);
	if (r < 0) {
		free(ds);
		return r;
	}
	r = zcv_sink_create(&display_ops, ds, &ds->sink);
	if (r < 0) {
		zcv_display_destroy(ds->disp);
		free(ds);
		return r;
	}
	*ret_sink = ds->sink;
	if (ret_display)
		*ret_display = ds->disp;
	return 0;
}
