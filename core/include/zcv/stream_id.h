/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include <zcv/common.h>

/* A stream id is a random (v4) UUID from libuuid. */
void zcv_stream_id_generate(uint8_t ret_id[16]);
/* Lower-case canonical text form into out (37 bytes with the NUL). */
const char *zcv_stream_id_str(const uint8_t id[16], char out[static 37]);
