/* SPDX-License-Identifier: MIT */
#include <zcv/stream.h>

const char *zcv_path_name(int path)
{
	switch (path) {
	case ZCV_PATH_DMABUF:
		return "dmabuf";
	case ZCV_PATH_MEMFD:
		return "memfd";
	case ZCV_PATH_COPY:
		return "copy";
	}
	return "unknown";
}

void zcv_constraints_merge(struct zcv_constraints *a, const struct zcv_constraints *b)
{
	for (unsigned p = 0; p < ZCV_MAX_PLANES; p++)
		a->min_plane_size[p] = ZCV_MAX(a->min_plane_size[p], b->min_plane_size[p]);
	a->stride_align = ZCV_MAX(a->stride_align, b->stride_align);
	a->height_align = ZCV_MAX(a->height_align, b->height_align);
	a->hold = a->hold > UINT32_MAX - b->hold ? UINT32_MAX : a->hold + b->hold;
}

uint32_t zcv_constraints_height(const struct zcv_constraints *c, uint32_t height)
{
	return c->height_align > 1 ? ZCV_ALIGN_UP(height, c->height_align) : height;
}

uint64_t zcv_constraints_plane_need(const struct zcv_constraints *c, const struct zcv_layout *l,
				    unsigned p)
{
	const struct zcv_format_info *fi = zcv_format_lookup(l->fourcc);
	uint64_t need;

	if (!fi || p >= l->n_planes || p >= ZCV_MAX_PLANES)
		return 0;
	need = (uint64_t)l->planes[p].stride *
	       zcv_format_plane_lines(fi, p, zcv_constraints_height(c, l->height));
	return ZCV_MAX(need, (uint64_t)c->min_plane_size[p]);
}

static bool pow2_or_none(uint32_t a)
{
	return (a & (a - 1)) == 0;
}

int zcv_constraints_layout(const struct zcv_constraints *c, const struct zcv_layout *src,
			   struct zcv_layout *ret_layout)
{
	const struct zcv_format_info *fi = zcv_format_lookup(src->fourcc);
	struct zcv_layout l = *src;
	uint32_t h = zcv_constraints_height(c, src->height);
	uint64_t off = 0, end = 0;

	if (!fi || src->n_planes > ZCV_MAX_PLANES || !pow2_or_none(c->stride_align) ||
	    !pow2_or_none(c->height_align))
		return -EINVAL;
	/* Each plane right after the previous one's lines at the aligned
	 * height (where a codec reads it); a minimum size is what the object
	 * must hold from the plane's offset, across later planes if need be
	 * (a V4L2 sizeimage covers every plane of a one-buffer format). */
	for (unsigned p = 0; p < l.n_planes; p++) {
		uint64_t own;

		if (c->stride_align > 1)
			l.planes[p].stride = ZCV_ALIGN_UP(src->planes[p].stride, c->stride_align);
		own = (uint64_t)l.planes[p].stride * zcv_format_plane_lines(fi, p, h);
		if (own > UINT32_MAX || off > UINT32_MAX ||
		    l.planes[p].stride < src->planes[p].stride)
			return -EOVERFLOW;
		l.planes[p].offset = (uint32_t)off;
		l.planes[p].size = (uint32_t)own;
		end = ZCV_MAX(end, off + zcv_constraints_plane_need(c, &l, p));
		off += own;
	}
	l.size = ZCV_MAX(off, end);
	*ret_layout = l;
	return 0;
}
