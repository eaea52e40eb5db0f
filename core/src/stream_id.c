/* SPDX-License-Identifier: MIT */
#include <uuid/uuid.h>
#include <zcv/stream_id.h>

void zcv_stream_id_generate(uint8_t ret_id[16])
{
	uuid_generate_random(ret_id);
}

const char *zcv_stream_id_str(const uint8_t id[16], char out[static 37])
{
	uuid_unparse_lower(id, out);
	return out;
}
