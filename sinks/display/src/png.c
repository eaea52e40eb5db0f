/* SPDX-License-Identifier: MIT */
/* A minimal PNG writer (8-bit RGB, filter 0, one IDAT) on zlib: enough to
 * let a person look at what was on screen. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zcv/display.h>

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static int write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int chunk(int fd, const char type[4], const uint8_t *data, uint32_t len)
{
	uint8_t hdr[8], crc[4];
	uLong c = crc32(0, (const Bytef *)type, 4);
	int r;

	be32(hdr, len);
	memcpy(hdr + 4, type, 4);
	if (len)
		c = crc32(c, data, len);
	be32(crc, (uint32_t)c);
	if ((r = write_all(fd, hdr, 8)) < 0 || (len && (r = write_all(fd, data, len)) < 0) ||
	    (r = write_all(fd, crc, 4)) < 0)
		return r;
	return 0;
}

int zcv_png_write_xrgb(const char *path, const uint8_t *pixels, uint32_t width, uint32_t height,
		       uint32_t stride)
{
	static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	size_t row = (size_t)width * 3 + 1, raw_len;
	uint8_t ihdr[13] = { 0 };
	uint8_t *raw = NULL, *z = NULL;
	uLongf zlen;
	char tmp[PATH_MAX];
	bool created = false;
	int fd = -1, r;

	if (!path || !pixels || !width || !height || width > 65535 || height > 65535 ||
	    stride < width * 4)
		return -EINVAL;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmpXXXXXX", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	raw_len = row * height;
	raw = malloc(raw_len);
	zlen = compressBound(raw_len);
	z = malloc(zlen);
	if (!raw || !z) {
		r = -ENOMEM;
		goto out;
	}
	for (uint32_t y = 0; y < height; y++) {
		const uint8_t *s = pixels + (size_t)y * stride;
		uint8_t *d = raw + row * y;

		*d++ = 0; /* filter: none */
		for (uint32_t x = 0; x < width; x++, s += 4, d += 3) {
			d[0] = s[2];
			d[1] = s[1];
			d[2] = s[0];
		}
	}
	/* speed over size: it runs under emulation in the tests */
	if (compress2(z, &zlen, raw, raw_len, 1) != Z_OK) {
		r = -ENOMEM;
		goto out;
	}
	be32(ihdr, width);
	be32(ihdr + 4, height);
	ihdr[8] = 8; /* bit depth */
	ihdr[9] = 2; /* colour type: RGB */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	created = true;
	fchmod(fd, 0644);
	if ((r = write_all(fd, sig, sizeof(sig))) < 0 || (r = chunk(fd, "IHDR", ihdr, 13)) < 0 ||
	    (r = chunk(fd, "IDAT", z, (uint32_t)zlen)) < 0 || (r = chunk(fd, "IEND", NULL, 0)) < 0)
		goto out;
	if (close(fd) < 0) {
		fd = -1;
		r = -errno;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto out;
	}
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	if (r < 0 && created)
		unlink(tmp);
	free(raw);
	free(z);
	return r;
}
