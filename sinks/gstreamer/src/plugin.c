/* SPDX-License-Identifier: MIT */
#include "gstzcv.h"

#define PACKAGE "zcv"
#define VERSION "0.1"

static gboolean plugin_init(GstPlugin *plugin)
{
	return gst_element_register(plugin, "zcvsrc", GST_RANK_NONE, gst_zcv_src_get_type()) &&
	       gst_element_register(plugin, "zcvsink", GST_RANK_NONE, gst_zcv_sink_get_type());
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, zcv,
		  "zcv: zero-copy video between processes (consumer and producer elements)",
		  plugin_init, VERSION, "MIT", "zcv", "https://example.invalid/zcv")
