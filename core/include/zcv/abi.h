/* SPDX-License-Identifier: MIT */
/* Internal: reading the size-prefixed structs of the public API. */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * Copies a caller's struct whose first member is its size (size_t, set to
 * sizeof by the caller, so it says which version of the header it was
 * built with) into dst (dst_size: this library's version). A shorter
 * struct, from an older caller, leaves the fields it lacks zeroed; a longer
 * one, from a newer caller, is accepted when every byte this library does
 * not know is zero (a feature it cannot provide was not asked for).
 * Returns 0, -EINVAL when size is unset or smaller than the size member,
 * -E2BIG when a field this library does not know is set.
 */
static inline int zcv_struct_copy_in(void *dst, size_t dst_size, const void *src)
{
	size_t size;

	memcpy(&size, src, sizeof(size));
	memset(dst, 0, dst_size);
	if (size < sizeof(size_t))
		return -EINVAL;
	if (size > dst_size) {
		const uint8_t *tail = (const uint8_t *)src + dst_size;

		for (size_t i = 0; i < size - dst_size; i++)
			if (tail[i])
				return -E2BIG;
		size = dst_size;
	}
	memcpy(dst, src, size);
	return 0;
}
