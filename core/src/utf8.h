/* SPDX-License-Identifier: MIT */
/* UTF-8 decoding shared by the JSON writer and the terminal sanitiser. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Length (1-4) of the valid UTF-8 sequence at s (n bytes available) and
 * its code point in *cp, or 0 when s[0] does not start one: a stray
 * continuation byte, a truncated or overlong sequence, a surrogate, or a
 * code point beyond U+10FFFF (the well-formed table of Unicode 3.9).
 */
static inline size_t zcv_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char b = s[0], lo = 0x80, hi = 0xbf;
	size_t len;
	uint32_t c;

	if (b < 0x80) {
		*cp = b;
		return 1;
	}
	if (b >= 0xc2 && b <= 0xdf) {
		len = 2;
		c = b & 0x1f;
	} else if (b >= 0xe0 && b <= 0xef) {
		len = 3;
		c = b & 0x0f;
		if (b == 0xe0)
			lo = 0xa0; /* overlong */
		else if (b == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (b >= 0xf0 && b <= 0xf4) {
		len = 4;
		c = b & 0x07;
		if (b == 0xf0)
			lo = 0x90; /* overlong */
		else if (b == 0xf4)
			hi = 0x8f; /* beyond U+10FFFF */
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		unsigned char x = s[i];

		if (x < (i == 1 ? lo : 0x80) || x > (i == 1 ? hi : 0xbf))
			return 0;
		c = (c << 6) | (x & 0x3f);
	}
	*cp = c;
	return len;
}

/*
 * Code points that change how a terminal (or a text viewer) shows what
 * follows: C0/C1 controls and DEL, line/paragraph separators, and the
 * bidirectional controls that can reorder a line ("Trojan Source").
 */
static inline bool zcv_utf8_is_unsafe(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || cp == 0x200e ||
	       cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}
