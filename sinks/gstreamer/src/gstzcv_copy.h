/* SPDX-License-Identifier: MIT */
#pragma once

#include <gst/video/video.h>

/* Copies the frame in src (laid out as src_info, or its GstVideoMeta)
 * into dst (dst_info): maps both, copies plane by plane, unmaps. FALSE
 * when either cannot be mapped or the frames do not match. */
gboolean gst_zcv_copy_frame(const GstVideoInfo *src_info, GstBuffer *src,
			    const GstVideoInfo *dst_info, GstBuffer *dst);
