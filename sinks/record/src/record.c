/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <zcv/record.h>

struct zcv_record {
	int fd;
	bool own_fd, raw, header_done;
	struct zcv_layout layout;
	uint8_t *staging; /* converted planes, Y4M of interleaved formats only */
	uint64_t frames, bytes, converted;
};

int zcv_record_create(const char *path, bool raw, struct zcv_record **ret_rec)
{
	struct zcv_record *rec = calloc(1, sizeof(*rec));

	if (!rec)
		return -ENOMEM;
	rec->raw = raw;
	if (!strcmp(path, "-")) {
		rec->fd = STDOUT_FILENO;
	} else {
		rec->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (rec->fd < 0) {
			int r = -errno;

			free(rec);
			return r;
		}
		rec->own_fd = true;
	}
	*ret_rec = rec;
	return 0;
}

/* Writes every iovec fully, in IOV_MAX chunks, resuming short writes. */
static int write_all(struct zcv_record *rec, struct iovec *iov, int n)
{
	while (n > 0) {
		int chunk = n < IOV_MAX ? n : IOV_MAX;
		ssize_t w = writev(rec->fd, iov, chunk);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		rec->bytes += (uint64_t)w;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Y4M's chroma tag for the planar layout we write, NULL when none. */
static const char *y4m_colorspace(uint32_t fourcc)
{
	switch (fourcc) {
	case ZCV_FMT_YUV420:
	case ZCV_FMT_NV12:
		return "420jpeg";
	case ZCV_FMT_NV16:
	case ZCV_FMT_YUYV:
	case ZCV_FMT_UYVY:
		return "422";
	case ZCV_FMT_GREY:
		return "mono";
	default:
		return NULL;
	}
}

static int write_header(struct zcv_record *rec, const struct zcv_layout *l, uint32_t fps_num,
			uint32_t fps_den)
{
	const struct zcv_format_info *fi = zcv_format_lookup(l->fourcc);
	const char *cs = y4m_colorspace(l->fourcc);
	char hdr[128];
	int n;

	if (!fi)
		return -EINVAL;
	rec->layout = *l;
	rec->header_done = true;
	if (rec->raw)
		return 0;
	if (!cs)
		return -EINVAL;
	if (!fps_num || !fps_den) { /* unpaced: Y4M needs a rate; say 30 */
		fps_num = 30;
		fps_den = 1;
	}
	n = snprintf(hdr, sizeof(hdr), "YUV4MPEG2 W%u H%u F%u:%u Ip A1:1 C%s\n", l->width,
		     l->height, fps_num, fps_den, cs);
	if (l->fourcc != ZCV_FMT_YUV420 && l->fourcc != ZCV_FMT_GREY) {
		/* 4:2:x planar output for interleaved input: one staging frame */
		rec->staging = malloc((size_t)l->width * l->height * 2);
		if (!rec->staging)
			return -ENOMEM;
	}
	return write_all(rec, &(struct iovec){ hdr, (size_t)n }, 1);
}

/* iovecs for the visible rows of plane p of the frame */
static int plane_rows(const struct zcv_format_info *fi, const struct zcv_layout *l, unsigned p,
		      const uint8_t *base, struct iovec *iov)
{
	uint32_t row = zcv_format_plane_row_bytes(fi, p, l->width);
	uint32_t lines = zcv_format_plane_lines(fi, p, l->height);

	if (l->planes[p].stride == row) {
		iov[0] = (struct iovec){ (void *)base, (size_t)row * lines };
		return 1;
	}
	for (uint32_t y = 0; y < lines; y++)
		iov[y] = (struct iovec){ (void *)(base + (size_t)y * l->planes[p].stride), row };
	return (int)lines;
}

/* De-interleaves/unpacks into staging: Y (packed formats only), U, V. */
static void convert(struct zcv_record *rec, const struct zcv_layout *l,
		    const uint8_t *const planes[], uint8_t **y, uint8_t **u, uint8_t **v,
		    uint32_t *cw, uint32_t *ch)
{
	uint32_t w = l->width, h = l->height;
	bool packed = l->fourcc == ZCV_FMT_YUYV || l->fourcc == ZCV_FMT_UYVY;

	*cw = w / 2;
	*ch = l->fourcc == ZCV_FMT_NV12 ? h / 2 : h;
	*y = rec->staging;
	*u = rec->staging + (packed ? (size_t)w * h : 0);
	*v = *u + (size_t)*cw * *ch;
	for (uint32_t r = 0; r < *ch; r++) {
		const uint8_t *s =
			planes[packed ? 0 : 1] + (size_t)r * l->planes[packed ? 0 : 1].stride;
		uint8_t *du = *u + (size_t)r * *cw, *dv = *v + (size_t)r * *cw;
		uint8_t *dy = *y + (size_t)r * w;
		/* byte positions of Y0 U Y1 V inside each 4-byte group */
		int y0 = l->fourcc == ZCV_FMT_UYVY ? 1 : 0, c0 = l->fourcc == ZCV_FMT_UYVY ? 0 : 1;

		if (!packed) {
			for (uint32_t x = 0; x < *cw; x++) {
				du[x] = s[2 * x];
				dv[x] = s[2 * x + 1];
			}
			continue;
		}
		/* one 32-bit load per pixel pair: this loop runs for every line of
		 * every frame, and byte loads cost most under emulation */
		for (uint32_t x = 0; x < *cw; x++) {
			uint32_t q;

			memcpy(&q, s + 4 * x, 4);
			dy[2 * x] = (uint8_t)(q >> (8 * y0));
			du[x] = (uint8_t)(q >> (8 * c0));
			dy[2 * x + 1] = (uint8_t)(q >> (8 * (y0 + 2)));
			dv[x] = (uint8_t)(q >> (8 * (c0 + 2)));
		}
	}
	rec->converted += (size_t)*cw * *ch * 2 + (packed ? (size_t)w * h : 0);
}

int zcv_record_write(struct zcv_record *rec, const struct zcv_layout *l, uint32_t fps_num,
		     uint32_t fps_den, const uint8_t *const planes[ZCV_MAX_PLANES])
{
	const struct zcv_format_info *fi = zcv_format_lookup(l->fourcc);
	static const char frame_tag[] = "FRAME\n";
	struct iovec *iov;
	int n = 0, r;

	if (!fi)
		return -EINVAL;
	if (!rec->header_done) {
		r = write_header(rec, l, fps_num, fps_den);
		if (r < 0)
			return r;
	} else if (memcmp(&rec->layout, l, sizeof(*l))) {
		return -EINVAL;
	}
	/* worst case one iovec a line of every plane, plus the tag */
	iov = malloc(sizeof(*iov) * ((size_t)l->height * ZCV_MAX_PLANES + 1));
	if (!iov)
		return -ENOMEM;
	if (!rec->raw)
		iov[n++] = (struct iovec){ (void *)frame_tag, sizeof(frame_tag) - 1 };
	if (rec->raw || l->fourcc == ZCV_FMT_YUV420 || l->fourcc == ZCV_FMT_GREY) {
		for (unsigned p = 0; p < l->n_planes; p++)
			n += plane_rows(fi, l, p, planes[p], iov + n);
	} else {
		uint8_t *y, *u, *v;
		uint32_t cw, ch;

		convert(rec, l, planes, &y, &u, &v, &cw, &ch);
		if (l->fourcc == ZCV_FMT_NV12 || l->fourcc == ZCV_FMT_NV16)
			n += plane_rows(fi, l, 0, planes[0], iov + n);
		else
			iov[n++] = (struct iovec){ y, (size_t)l->width * l->height };
		iov[n++] = (struct iovec){ u, (size_t)cw * ch };
		iov[n++] = (struct iovec){ v, (size_t)cw * ch };
	}
	r = write_all(rec, iov, n);
	free(iov);
	if (r == 0)
		rec->frames++;
	return r;
}

uint64_t zcv_record_frames(const struct zcv_record *rec)
{
	return rec->frames;
}

uint64_t zcv_record_bytes(const struct zcv_record *rec)
{
	return rec->bytes;
}

uint64_t zcv_record_converted_bytes(const struct zcv_record *rec)
{
	return rec->converted;
}

int zcv_record_destroy(struct zcv_record *rec)
{
	int r = 0;

	if (!rec)
		return 0;
	if (rec->own_fd && close(rec->fd) < 0)
		r = -errno;
	free(rec->staging);
	free(rec);
	return r;
}
