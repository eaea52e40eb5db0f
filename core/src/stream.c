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
	struct zcv_layout l = *src;
	uint64_t off = 0;

	if (!zcv_format_lookup(src->fourcc) || src->n_planes > ZCV_MAX_PLANES ||
	    !pow2_or_none(c->stride_align) || !pow2_or_none(c->height_align))
		return -EINVAL;
	for (unsigned p = 0; p < l.n_planes; p++) {
		uint64_t size;

		if (c->stride_align > 1)
			l.planes[p].stride = ZCV_ALIGN_UP(src->planes[p].stride, c->stride_align);
		size = zcv_constraints_plane_need(c, &l, p);
		if (size > UINT32_MAX || off > UINT32_MAX ||
		    l.planes[p].stride < src->planes[p].stride)
			return -EOVERFLOW;
		l.planes[p].offset = (uint32_t)off;
		l.planes[p].size = (uint32_t)size;
		off += size;
	}
	l.size = off;
	*ret_layout = l;
	return 0;
}
