/* SPDX-License-Identifier: MIT */
#include "gstzcv_copy.h"

gboolean gst_zcv_copy_frame(const GstVideoInfo *src_info, GstBuffer *src,
			    const GstVideoInfo *dst_info, GstBuffer *dst)
{
	GstVideoFrame s, d;
	gboolean ok;

	/* gst_video_frame_map() takes a non-const info it does not change. */
	if (!gst_video_frame_map(&s, (GstVideoInfo *)src_info, src, GST_MAP_READ))
		return FALSE;
	if (!gst_video_frame_map(&d, (GstVideoInfo *)dst_info, dst, GST_MAP_WRITE)) {
		gst_video_frame_unmap(&s);
		return FALSE;
	}
	ok = gst_video_frame_copy(&d, &s);
	gst_video_frame_unmap(&d);
	gst_video_frame_unmap(&s);
	return ok;
}
