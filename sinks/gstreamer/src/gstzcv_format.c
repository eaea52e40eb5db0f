/* SPDX-License-Identifier: MIT */
#include "gstzcv.h"
#include <zcv/format.h>

/* V4L2 colorspaces (videodev2.h), so the plugin needs no kernel header. */
#define V4L2_CS_SMPTE170M 1
#define V4L2_CS_REC709 3
#define V4L2_CS_SRGB 8

static const struct {
	uint32_t fourcc;
	GstVideoFormat format;
} formats[] = {
	{ ZCV_FMT_NV12, GST_VIDEO_FORMAT_NV12 },     { ZCV_FMT_YUV420, GST_VIDEO_FORMAT_I420 },
	{ ZCV_FMT_NV16, GST_VIDEO_FORMAT_NV16 },     { ZCV_FMT_YUYV, GST_VIDEO_FORMAT_YUY2 },
	{ ZCV_FMT_UYVY, GST_VIDEO_FORMAT_UYVY },     { ZCV_FMT_XRGB8888, GST_VIDEO_FORMAT_BGRx },
	{ ZCV_FMT_ARGB8888, GST_VIDEO_FORMAT_BGRA }, { ZCV_FMT_GREY, GST_VIDEO_FORMAT_GRAY8 },
};

GstVideoFormat gst_zcv_format_to_gst(uint32_t fourcc)
{
	for (size_t i = 0; i < G_N_ELEMENTS(formats); i++)
		if (formats[i].fourcc == fourcc)
			return formats[i].format;
	return GST_VIDEO_FORMAT_UNKNOWN;
}

uint32_t gst_zcv_format_from_gst(GstVideoFormat format)
{
	for (size_t i = 0; i < G_N_ELEMENTS(formats); i++)
		if (formats[i].format == format)
			return formats[i].fourcc;
	return 0;
}

void gst_zcv_colorimetry_from_v4l2(GstVideoInfo *info, uint32_t colorspace)
{
	const char *name = NULL;

	/* Only the YUV matrices mean anything to a consumer's converter; RGB
	 * formats keep GStreamer's sRGB default. */
	if (!GST_VIDEO_INFO_IS_YUV(info))
		return;
	switch (colorspace) {
	case V4L2_CS_SMPTE170M:
		name = GST_VIDEO_COLORIMETRY_BT601;
		break;
	case V4L2_CS_REC709:
		name = GST_VIDEO_COLORIMETRY_BT709;
		break;
	default:
		return;
	}
	gst_video_colorimetry_from_string(&info->colorimetry, name);
}

uint32_t gst_zcv_colorimetry_to_v4l2(const GstVideoInfo *info)
{
	if (!GST_VIDEO_INFO_IS_YUV(info))
		return V4L2_CS_SRGB;
	if (gst_video_colorimetry_matches(&info->colorimetry, GST_VIDEO_COLORIMETRY_BT601))
		return V4L2_CS_SMPTE170M;
	if (gst_video_colorimetry_matches(&info->colorimetry, GST_VIDEO_COLORIMETRY_BT709))
		return V4L2_CS_REC709;
	return 0;
}

guint gst_zcv_count_buffer_fds(void)
{
	GDir *d = g_dir_open("/proc/self/fd", 0, NULL);
	const gchar *name;
	guint n = 0;

	if (!d)
		return 0;
	while ((name = g_dir_read_name(d))) {
		gchar *path = g_build_filename("/proc/self/fd", name, NULL);
		gchar *target = g_file_read_link(path, NULL);
		if (target && (g_str_has_prefix(target, "/memfd:") ||
			       g_str_has_prefix(target, "anon_inode:dmabuf")))
			n++;
		g_free(target);
		g_free(path);
	}
	g_dir_close(d);
	return n;
}

static GQuark props_quark;

static gpointer prop_field(GObject *obj, guint id)
{
	const struct gst_zcv_prop *t = g_type_get_qdata(G_OBJECT_TYPE(obj), props_quark);

	for (; t && t->id; t++)
		if (t->id == id)
			return (guint8 *)obj + t->offset;
	return NULL;
}

/* Copies between v and the field of property id, either way. */
static void prop_access(GObject *obj, guint id, GValue *v, GParamSpec *ps, gboolean set)
{
	gpointer f = prop_field(obj, id);

	if (!f) {
		G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, ps);
		return;
	}
	GST_OBJECT_LOCK(obj);
	switch (G_TYPE_FUNDAMENTAL(G_VALUE_TYPE(v))) {
	case G_TYPE_STRING:
		if (set) {
			g_free(*(gchar **)f);
			*(gchar **)f = g_value_dup_string(v);
		} else {
			g_value_set_string(v, *(gchar **)f);
		}
		break;
	case G_TYPE_UINT:
		if (set)
			*(guint *)f = g_value_get_uint(v);
		else
			g_value_set_uint(v, *(guint *)f);
		break;
	case G_TYPE_UINT64:
		if (set)
			*(guint64 *)f = g_value_get_uint64(v);
		else
			g_value_set_uint64(v, *(guint64 *)f);
		break;
	case G_TYPE_ENUM:
		if (set)
			*(gint *)f = g_value_get_enum(v);
		else
			g_value_set_enum(v, *(gint *)f);
		break;
	default:
		break;
	}
	GST_OBJECT_UNLOCK(obj);
}

static void prop_set(GObject *obj, guint id, const GValue *v, GParamSpec *ps)
{
	/* only read when set */
	prop_access(obj, id, (GValue *)v, ps, TRUE);
}

static void prop_get(GObject *obj, guint id, GValue *v, GParamSpec *ps)
{
	prop_access(obj, id, v, ps, FALSE);
}

void gst_zcv_class_set_props(GObjectClass *klass, const struct gst_zcv_prop *table)
{
	if (!props_quark)
		props_quark = g_quark_from_static_string("gst-zcv-props");
	g_type_set_qdata(G_OBJECT_CLASS_TYPE(klass), props_quark, (gpointer)table);
	klass->set_property = prop_set;
	klass->get_property = prop_get;
}

GstClock *gst_zcv_monotonic_clock(GstElement *element)
{
	GstClock *clock = gst_element_get_clock(element);
	GstClockType type = GST_CLOCK_TYPE_REALTIME;

	if (clock && GST_IS_SYSTEM_CLOCK(clock))
		g_object_get(clock, "clock-type", &type, NULL);
	if (clock && type != GST_CLOCK_TYPE_MONOTONIC)
		gst_clear_object(&clock);
	return clock;
}
