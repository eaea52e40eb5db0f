/* SPDX-License-Identifier: MIT */
#pragma once

#include <gst/gst.h>
#include <gst/video/video.h>
#include <stdint.h>

/* The zcv GStreamer plugin: zcvsrc (a zcv consumer) and zcvsink (a zcv
 * producer). */

GType gst_zcv_src_get_type(void);
GType gst_zcv_sink_get_type(void);

/* The video/x-raw formats both elements carry, as a caps string list. */
#define GST_ZCV_FORMATS "{ NV12, I420, NV16, YUY2, UYVY, BGRx, BGRA, GRAY8 }"

/* The GstVideoFormat of a zcv (V4L2) fourcc; GST_VIDEO_FORMAT_UNKNOWN when
 * GStreamer has no format of that memory layout. */
GstVideoFormat gst_zcv_format_to_gst(uint32_t fourcc);

/* The zcv fourcc of a GstVideoFormat, or 0 when zcv has none. */
uint32_t gst_zcv_format_from_gst(GstVideoFormat format);

/* Sets info's colorimetry from a V4L2 colorspace (0: leaves GStreamer's
 * default for the format). */
void gst_zcv_colorimetry_from_v4l2(GstVideoInfo *info, uint32_t colorspace);

/* The V4L2 colorspace closest to info's colorimetry, 0 when none fits. */
uint32_t gst_zcv_colorimetry_to_v4l2(const GstVideoInfo *info);

/* Open memfd and DMA-BUF fds of this process, for the elements' leak
 * checks in tests (other fds come and go with GStreamer's own objects). */
guint gst_zcv_count_buffer_fds(void);

/* A plain property stored in the element's struct at offset: strings
 * (gchar *, owned), guint, guint64 and enums (stored as int), read and
 * written under the object lock. */
struct gst_zcv_prop {
	guint id;
	gsize offset;
};

/* Makes klass's set_property/get_property serve the properties of table
 * (terminated by id 0, static). */
void gst_zcv_class_set_props(GObjectClass *klass, const struct gst_zcv_prop *table);

/* The element's clock (a reference) when it is the system clock on
 * CLOCK_MONOTONIC, on which zcv's frame times are clock times; else NULL. */
GstClock *gst_zcv_monotonic_clock(GstElement *element);
