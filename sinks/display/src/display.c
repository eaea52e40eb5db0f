/* SPDX-License-Identifier: MIT */
/* KMS display sink: PRIME import, a framebuffer per pool buffer, page flips
 * whose completion releases the previous frame, dumb-buffer copy fallback. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xf86drm.h>
#include <xf86drmMode.h>
#include <drm_fourcc.h>
#include <zcv/display.h>
#include <zcv/memory.h>

#define MAX_FBS 128

/* plane, CRTC and connector properties used by atomic commits */
enum {
	P_FB_ID,
	P_CRTC_ID,
	P_SRC_X,
	P_SRC_Y,
	P_SRC_W,
	P_SRC_H,
	P_CRTC_X,
	P_CRTC_Y,
	P_CRTC_W,
	P_CRTC_H,
	P_COUNT
};
static const char *const plane_prop_names[P_COUNT] = {
	"FB_ID", "CRTC_ID", "SRC_X",  "SRC_Y",  "SRC_W",
	"SRC_H", "CRTC_X",  "CRTC_Y", "CRTC_W", "CRTC_H",
};

struct rect {
	uint32_t x, y, w, h;
};

/* A framebuffer made from pool buffer (gen, index). */
struct fbent {
	bool used;
	uint32_t gen, index;
	uint32_t fb_id;
};

struct dumb {
	uint32_t handle, fb_id, pitch;
	uint64_t size;
	uint8_t *map;
	bool dirty; /* holds a frame of another size: clear before the next copy */
};

/* A held frame and what shows it. */
struct slot {
	bool used;
	struct zcv_client_frame f;
	uint32_t fb_id;
	int dumb;             /* copy path: index of the dumb buffer, else -1 */
	struct rect src, dst; /* plane source (pixels) and CRTC rectangles */
};

struct zcv_display {
	int fd;
	struct zcv_display_config cfg;
	struct zcv_display_callbacks cbs;
	void *data;
	struct zcv_display_info info;
	struct zcv_display_stats stats;

	drmModeModeInfo mode;
	uint32_t mode_blob;
	drmModeCrtc *saved_crtc;
	uint32_t crtc_index;
	uint32_t plane_props[P_COUNT];
	uint32_t crtc_mode_id, crtc_active, conn_crtc_id;
	uint32_t wb_conn_id, wb_crtc_id, wb_fb_id, wb_fence_ptr;
	uint32_t *plane_formats;
	unsigned n_plane_formats;
	bool monotonic, addfb_modifiers, prime_import, master;
	bool modeset_done;

	bool have_fmt;
	struct zcv_client_format fmt;
	bool zc_verified; /* a zero-copy commit of this format worked */
	struct rect zc_src, zc_dst;
	int zc_x, zc_y; /* legacy: CRTC viewport offset into the framebuffer */
	bool zc_placed;

	struct dumb dumb[2];
	bool have_dumb;
	struct fbent fbs[MAX_FBS];
	struct slot shown, pending, queued;
	bool sync_done; /* legacy SetCrtc completed synchronously */
	int error;
};

static void say(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!buf || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static uint32_t prop_id(int fd, uint32_t obj, uint32_t type, const char *name, uint64_t *ret_value)
{
	drmModeObjectProperties *props = drmModeObjectGetProperties(fd, obj, type);
	uint32_t id = 0;

	if (!props)
		return 0;
	for (uint32_t i = 0; i < props->count_props && !id; i++) {
		drmModePropertyRes *p = drmModeGetProperty(fd, props->props[i]);

		if (p && !strcmp(p->name, name)) {
			id = p->prop_id;
			if (ret_value)
				*ret_value = props->prop_values[i];
		}
		drmModeFreeProperty(p);
	}
	drmModeFreeObjectProperties(props);
	return id;
}

static void connector_name(const drmModeConnector *c, char *buf, size_t len)
{
	const char *t = drmModeGetConnectorTypeName(c->connector_type);

	snprintf(buf, len, "%s-%u", t ? t : "Unknown", c->connector_type_id);
}

static bool plane_has_format(struct zcv_display *d, uint32_t drm_fourcc)
{
	for (unsigned i = 0; i < d->n_plane_formats; i++)
		if (d->plane_formats[i] == drm_fourcc)
			return true;
	return false;
}

/* "1024x768@60 (preferred), 1920x1080@60, ..." */
static void list_modes(const drmModeConnector *c, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = 0;
	for (int i = 0; i < c->count_modes && n + 32 < len; i++) {
		const drmModeModeInfo *m = &c->modes[i];
		bool dup = false;

		for (int k = 0; k < i && !dup; k++)
			dup = c->modes[k].hdisplay == m->hdisplay &&
			      c->modes[k].vdisplay == m->vdisplay &&
			      c->modes[k].vrefresh == m->vrefresh;
		if (dup)
			continue;
		n += (size_t)snprintf(buf + n, len - n, "%s%ux%u@%u%s", n ? ", " : "", m->hdisplay,
				      m->vdisplay, m->vrefresh,
				      m->type & DRM_MODE_TYPE_PREFERRED ? " (preferred)" : "");
	}
	if (n + 32 >= len && len > 5)
		snprintf(buf + len - 5, 5, "...");
}

static const drmModeModeInfo *pick_mode(const struct zcv_display_config *cfg,
					const drmModeConnector *c)
{
	const drmModeModeInfo *best = NULL;

	for (int i = 0; i < c->count_modes; i++) {
		const drmModeModeInfo *m = &c->modes[i];

		if (cfg->width && (m->hdisplay != cfg->width || m->vdisplay != cfg->height))
			continue;
		if (cfg->refresh && m->vrefresh != cfg->refresh)
			continue;
		if (m->flags & DRM_MODE_FLAG_INTERLACE)
			continue;
		if (!best)
			best = m;
		else if ((m->type & DRM_MODE_TYPE_PREFERRED) &&
			 !(best->type & DRM_MODE_TYPE_PREFERRED))
			best = m;
		else if (cfg->width && !(best->type & DRM_MODE_TYPE_PREFERRED) &&
			 m->vrefresh > best->vrefresh)
			best = m;
	}
	return best;
}

/* Connector, CRTC, plane and mode of an open card. -ENODEV when the card
 * cannot display anything, -EINVAL when the config names what it lacks. */
static int setup_pipe(struct zcv_display *d, char *errbuf, size_t errlen)
{
	drmModeRes *res = drmModeGetResources(d->fd);
	drmModePlaneRes *pres = NULL;
	drmModeConnector *conn = NULL;
	const drmModeModeInfo *mode;
	uint32_t crtc_id = 0;
	int r = -ENODEV, connected = 0;
	char name[32], modes[512];

	if (!res) {
		say(errbuf, errlen,
		    "%s (%s) has no connected connector: it is not a modesetting (KMS) device",
		    d->info.device, d->info.driver);
		return -ENODEV;
	}
	for (int i = 0; i < res->count_connectors && !conn; i++) {
		drmModeConnector *c = drmModeGetConnector(d->fd, res->connectors[i]);

		if (!c)
			continue;
		connector_name(c, name, sizeof(name));
		if (c->connector_type == DRM_MODE_CONNECTOR_WRITEBACK) {
			if (!d->wb_conn_id)
				d->wb_conn_id = c->connector_id;
		} else if (c->connection == DRM_MODE_CONNECTED && c->count_modes > 0) {
			connected++;
			if (!d->cfg.connector || !strcmp(d->cfg.connector, name)) {
				conn = c;
				snprintf(d->info.connector, sizeof(d->info.connector), "%s", name);
				continue;
			}
		} else if (d->cfg.connector && !strcmp(d->cfg.connector, name)) {
			say(errbuf, errlen, "connector %s of %s (%s) is not connected", name,
			    d->info.device, d->info.driver);
			drmModeFreeConnector(c);
			r = -ENODEV;
			goto out;
		}
		drmModeFreeConnector(c);
	}
	/* the writeback connector may come after the one we picked */
	for (int i = 0; i < res->count_connectors && conn && !d->wb_conn_id; i++) {
		drmModeConnector *c = drmModeGetConnector(d->fd, res->connectors[i]);

		if (c && c->connector_type == DRM_MODE_CONNECTOR_WRITEBACK)
			d->wb_conn_id = c->connector_id;
		drmModeFreeConnector(c);
	}
	if (!conn) {
		if (d->cfg.connector && connected)
			say(errbuf, errlen, "%s (%s) has no connector named %s", d->info.device,
			    d->info.driver, d->cfg.connector);
		else
			say(errbuf, errlen, "%s (%s) has no connected connector%s%s",
			    d->info.device, d->info.driver, d->cfg.connector ? " named " : "",
			    d->cfg.connector ? d->cfg.connector : "");
		r = d->cfg.connector && connected ? -EINVAL : -ENODEV;
		goto out;
	}
	d->info.connector_id = conn->connector_id;

	mode = pick_mode(&d->cfg, conn);
	if (!mode) {
		list_modes(conn, modes, sizeof(modes));
		if (d->cfg.refresh)
			say(errbuf, errlen, "connector %s has no mode %ux%u@%u; it offers: %s",
			    d->info.connector, d->cfg.width, d->cfg.height, d->cfg.refresh, modes);
		else
			say(errbuf, errlen, "connector %s has no mode %ux%u; it offers: %s",
			    d->info.connector, d->cfg.width, d->cfg.height, modes);
		r = -EINVAL;
		goto out;
	}
	d->mode = *mode;
	d->info.mode_width = mode->hdisplay;
	d->info.mode_height = mode->vdisplay;
	d->info.mode_refresh = mode->vrefresh;

	/* CRTC: the one driving the connector now, else the first free one
	 * an encoder of the connector can use */
	if (conn->encoder_id) {
		drmModeEncoder *e = drmModeGetEncoder(d->fd, conn->encoder_id);

		if (e)
			crtc_id = e->crtc_id;
		drmModeFreeEncoder(e);
	}
	for (int i = 0; i < conn->count_encoders && !crtc_id; i++) {
		drmModeEncoder *e = drmModeGetEncoder(d->fd, conn->encoders[i]);

		for (int k = 0; e && k < res->count_crtcs && !crtc_id; k++)
			if (e->possible_crtcs & (1u << k))
				crtc_id = res->crtcs[k];
		drmModeFreeEncoder(e);
	}
	if (!crtc_id) {
		say(errbuf, errlen, "no CRTC can drive connector %s of %s", d->info.connector,
		    d->info.device);
		goto out;
	}
	for (int k = 0; k < res->count_crtcs; k++)
		if (res->crtcs[k] == crtc_id)
			d->crtc_index = (uint32_t)k;
	d->info.crtc_id = crtc_id;
	d->saved_crtc = drmModeGetCrtc(d->fd, crtc_id);

	/* the primary plane of that CRTC */
	pres = drmModeGetPlaneResources(d->fd);
	for (uint32_t i = 0; pres && i < pres->count_planes && !d->info.plane_id; i++) {
		drmModePlane *p = drmModeGetPlane(d->fd, pres->planes[i]);
		uint64_t type = 0;

		if (p && (p->possible_crtcs & (1u << d->crtc_index)) &&
		    prop_id(d->fd, p->plane_id, DRM_MODE_OBJECT_PLANE, "type", &type) &&
		    type == DRM_PLANE_TYPE_PRIMARY) {
			d->info.plane_id = p->plane_id;
			d->plane_formats =
				calloc(p->count_formats ? p->count_formats : 1, sizeof(uint32_t));
			if (d->plane_formats) {
				memcpy(d->plane_formats, p->formats,
				       p->count_formats * sizeof(uint32_t));
				d->n_plane_formats = p->count_formats;
			}
		}
		drmModeFreePlane(p);
	}
	if (!d->info.plane_id) {
		say(errbuf, errlen, "no primary plane for the CRTC of %s on %s", d->info.connector,
		    d->info.device);
		goto out;
	}

	if (d->info.atomic) {
		bool ok = true;

		for (int i = 0; i < P_COUNT; i++)
			ok &= (d->plane_props[i] =
				       prop_id(d->fd, d->info.plane_id, DRM_MODE_OBJECT_PLANE,
					       plane_prop_names[i], NULL)) != 0;
		ok &= (d->crtc_mode_id =
			       prop_id(d->fd, crtc_id, DRM_MODE_OBJECT_CRTC, "MODE_ID", NULL)) != 0;
		ok &= (d->crtc_active =
			       prop_id(d->fd, crtc_id, DRM_MODE_OBJECT_CRTC, "ACTIVE", NULL)) != 0;
		ok &= (d->conn_crtc_id = prop_id(d->fd, conn->connector_id,
						 DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID", NULL)) != 0;
		ok &= drmModeCreatePropertyBlob(d->fd, &d->mode, sizeof(d->mode), &d->mode_blob) ==
		      0;
		if (!ok) /* odd driver: fall back to the legacy API */
			d->info.atomic = false;
	}
	if (d->info.atomic && d->wb_conn_id) {
		drmModeConnector *wb = drmModeGetConnector(d->fd, d->wb_conn_id);
		bool usable = false;

		/* a writeback connector reaches our CRTC through its encoder */
		for (int i = 0; wb && i < wb->count_encoders && !usable; i++) {
			drmModeEncoder *e = drmModeGetEncoder(d->fd, wb->encoders[i]);

			usable = e && (e->possible_crtcs & (1u << d->crtc_index));
			drmModeFreeEncoder(e);
		}
		drmModeFreeConnector(wb);
		d->wb_crtc_id =
			prop_id(d->fd, d->wb_conn_id, DRM_MODE_OBJECT_CONNECTOR, "CRTC_ID", NULL);
		d->wb_fb_id = prop_id(d->fd, d->wb_conn_id, DRM_MODE_OBJECT_CONNECTOR,
				      "WRITEBACK_FB_ID", NULL);
		d->wb_fence_ptr = prop_id(d->fd, d->wb_conn_id, DRM_MODE_OBJECT_CONNECTOR,
					  "WRITEBACK_OUT_FENCE_PTR", NULL);
		d->info.writeback = usable && d->wb_crtc_id && d->wb_fb_id && d->wb_fence_ptr;
	}
	r = 0;
out:
	drmModeFreeConnector(conn);
	drmModeFreePlaneResources(pres);
	drmModeFreeResources(res);
	return r;
}

/* Forgets what open_card found, closing the card. */
static void card_reset(struct zcv_display *d)
{
	if (d->mode_blob)
		drmModeDestroyPropertyBlob(d->fd, d->mode_blob);
	d->mode_blob = 0;
	drmModeFreeCrtc(d->saved_crtc);
	d->saved_crtc = NULL;
	free(d->plane_formats);
	d->plane_formats = NULL;
	d->n_plane_formats = 0;
	d->wb_conn_id = 0;
	memset(&d->info, 0, sizeof(d->info));
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

/* Opens path and sets the pipe up; on failure everything is undone. */
static int open_card(struct zcv_display *d, const char *path, char *errbuf, size_t errlen)
{
	drmVersion *ver;
	uint64_t cap = 0;
	int r;

	snprintf(d->info.device, sizeof(d->info.device), "%s", path);
	d->fd = open(path, O_RDWR | O_CLOEXEC);
	if (d->fd < 0) {
		r = -errno;
		say(errbuf, errlen, "cannot open %s: %s", path, strerror(-r));
		return r;
	}
	ver = drmGetVersion(d->fd);
	if (!ver) {
		say(errbuf, errlen, "%s is not a DRM device", path);
		r = -ENODEV;
		goto fail;
	}
	snprintf(d->info.driver, sizeof(d->info.driver), "%s", ver->name);
	drmFreeVersion(ver);
	drmSetClientCap(d->fd, DRM_CLIENT_CAP_UNIVERSAL_PLANES, 1);
	d->info.atomic = !d->cfg.legacy && drmSetClientCap(d->fd, DRM_CLIENT_CAP_ATOMIC, 1) == 0;
	if (d->info.atomic)
		drmSetClientCap(d->fd, DRM_CLIENT_CAP_WRITEBACK_CONNECTORS, 1);
	d->monotonic = drmGetCap(d->fd, DRM_CAP_TIMESTAMP_MONOTONIC, &cap) == 0 && cap;
	cap = 0;
	d->addfb_modifiers = drmGetCap(d->fd, DRM_CAP_ADDFB2_MODIFIERS, &cap) == 0 && cap;
	cap = 0;
	d->prime_import =
		drmGetCap(d->fd, DRM_CAP_PRIME, &cap) == 0 && (cap & DRM_PRIME_CAP_IMPORT);
	r = setup_pipe(d, errbuf, errlen);
	if (r < 0)
		goto fail;
	return 0;
fail:
	card_reset(d);
	return r;
}

static int card_number(const char *name)
{
	char *end;
	long n;

	if (strncmp(name, "card", 4))
		return -1;
	n = strtol(name + 4, &end, 10);
	return end == name + 4 || *end || n < 0 || n > 255 ? -1 : (int)n;
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* The first card, in number order, with a connected connector. */
static int open_first_card(struct zcv_display *d, char *errbuf, size_t errlen)
{
	DIR *dir = opendir("/dev/dri");
	struct dirent *de;
	int cards[256], n_cards = 0, r = -ENOENT, last = 0;
	char why[1024] = "", one[320];
	size_t n = 0;

	while (dir && (de = readdir(dir)) && n_cards < 256) {
		int k = card_number(de->d_name);

		if (k >= 0)
			cards[n_cards++] = k;
	}
	if (dir)
		closedir(dir);
	if (!n_cards) {
		say(errbuf, errlen, "no DRM device: /dev/dri has no card*");
		return -ENOENT;
	}
	qsort(cards, (size_t)n_cards, sizeof(int), cmp_int);
	for (int i = 0; i < n_cards; i++) {
		char path[32];

		snprintf(path, sizeof(path), "/dev/dri/card%d", cards[i]);
		r = open_card(d, path, one, sizeof(one));
		if (r == 0)
			return 0;
		last = r;
		if (n + 8 < sizeof(why))
			n += (size_t)snprintf(why + n, sizeof(why) - n, "%s%s", n ? "; " : "", one);
	}
	say(errbuf, errlen, "no display found: %s", why);
	return last == -EACCES || last == -EPERM ? last : -ENODEV;
}

int zcv_display_create(const struct zcv_display_config *cfg,
		       const struct zcv_display_callbacks *cbs, void *data,
		       struct zcv_display **ret_display, char *errbuf, size_t errlen)
{
	struct zcv_display *d;
	int r;

	if (!cfg || !cbs || !cbs->release || !ret_display || (!cfg->width != !cfg->height)) {
		say(errbuf, errlen, "invalid display configuration");
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		say(errbuf, errlen, "out of memory");
		return -ENOMEM;
	}
	d->fd = -1;
	d->cfg = *cfg;
	d->cfg.device = NULL;
	d->cfg.connector = cfg->connector ? strdup(cfg->connector) : NULL;
	d->cbs = *cbs;
	d->data = data;
	for (int i = 0; i < 2; i++)
		d->dumb[i].map = MAP_FAILED;

	r = cfg->device ? open_card(d, cfg->device, errbuf, errlen) :
			  open_first_card(d, errbuf, errlen);
	if (r < 0)
		goto fail;

	/* the first opener of a card is master already; otherwise ask */
	if (!drmIsMaster(d->fd) && drmSetMaster(d->fd) < 0) {
		r = -errno;
		say(errbuf, errlen,
		    "cannot become DRM master on %s (%s): %s; another display server "
		    "(X, a Wayland compositor, another zcv-display) owns it",
		    d->info.device, d->info.driver, strerror(-r));
		goto fail;
	}
	d->master = true;
	snprintf(d->info.placement, sizeof(d->info.placement), "none");
	*ret_display = d;
	return 0;
fail:
	zcv_display_destroy(d);
	return r;
}

/* ------------------------------------------------------------ buffers */

static void fb_remove(struct zcv_display *d, struct fbent *e)
{
	if (e->used)
		drmModeRmFB(d->fd, e->fb_id);
	e->used = false;
}

static bool fb_in_use(struct zcv_display *d, uint32_t fb_id)
{
	return (d->shown.used && d->shown.fb_id == fb_id) ||
	       (d->pending.used && d->pending.fb_id == fb_id) ||
	       (d->queued.used && d->queued.fb_id == fb_id);
}

static void dumb_destroy(struct zcv_display *d, struct dumb *b)
{
	if (b->map != MAP_FAILED)
		munmap(b->map, b->size);
	b->map = MAP_FAILED;
	if (b->fb_id)
		drmModeRmFB(d->fd, b->fb_id);
	if (b->handle)
		drmModeDestroyDumbBuffer(d->fd, b->handle);
	b->fb_id = b->handle = 0;
}

static int dumb_create(struct zcv_display *d, struct dumb *b, uint32_t w, uint32_t h)
{
	uint32_t handles[4] = { 0 }, pitches[4] = { 0 }, offsets[4] = { 0 };
	uint64_t off = 0;
	int r;

	if (drmModeCreateDumbBuffer(d->fd, w, h, 32, 0, &b->handle, &b->pitch, &b->size) < 0)
		return -errno;
	handles[0] = b->handle;
	pitches[0] = b->pitch;
	if (drmModeAddFB2(d->fd, w, h, DRM_FORMAT_XRGB8888, handles, pitches, offsets, &b->fb_id,
			  0) < 0) {
		r = -errno;
		goto fail;
	}
	if (drmModeMapDumbBuffer(d->fd, b->handle, &off) < 0) {
		r = -errno;
		goto fail;
	}
	b->map = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, (off_t)off);
	if (b->map == MAP_FAILED) {
		r = -errno;
		goto fail;
	}
	memset(b->map, 0, b->size); /* black borders */
	return 0;
fail:
	dumb_destroy(d, b);
	return r;
}

static int dumbs_ensure(struct zcv_display *d)
{
	int r;

	if (d->have_dumb)
		return 0;
	for (int i = 0; i < 2; i++) {
		r = dumb_create(d, &d->dumb[i], d->info.mode_width, d->info.mode_height);
		if (r < 0) {
			for (int k = 0; k < i; k++)
				dumb_destroy(d, &d->dumb[k]);
			return r;
		}
	}
	d->have_dumb = true;
	return 0;
}

static void fallback(struct zcv_display *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void fallback(struct zcv_display *d, const char *fmt, ...)
{
	va_list ap;

	d->info.copy = true;
	va_start(ap, fmt);
	vsnprintf(d->info.fallback_reason, sizeof(d->info.fallback_reason), fmt, ap);
	va_end(ap);
	snprintf(d->info.placement, sizeof(d->info.placement), "%s",
		 d->fmt.layout.width == d->info.mode_width &&
				 d->fmt.layout.height == d->info.mode_height ?
			 "full" :
		 d->fmt.layout.width <= d->info.mode_width &&
				 d->fmt.layout.height <= d->info.mode_height ?
			 "centred" :
			 "cropped");
	d->info.plane_scaling = false;
	if (d->cbs.fallback)
		d->cbs.fallback(d->data, d->info.fallback_reason);
}

static void close_handles(struct zcv_display *d, const uint32_t handles[4])
{
	for (int p = 0; p < 4; p++) {
		bool dup = false;

		for (int k = 0; k < p; k++)
			dup |= handles[k] == handles[p];
		if (handles[p] && !dup)
			drmCloseBufferHandle(d->fd, handles[p]);
	}
}

/* The framebuffer of f's pool buffer, importing it the first time. */
static int import_fb(struct zcv_display *d, const struct zcv_client_frame *f, uint32_t *ret_fb)
{
	const struct zcv_layout *l = &d->fmt.layout;
	const struct zcv_format_info *fi = zcv_format_lookup(l->fourcc);
	uint32_t handles[4] = { 0 }, pitches[4] = { 0 }, offsets[4] = { 0 };
	uint64_t mods[4] = { 0 };
	struct fbent *free_e = NULL;
	char fcc[5];
	int r;

	for (int i = 0; i < MAX_FBS; i++) {
		struct fbent *e = &d->fbs[i];

		if (e->used && e->gen == f->generation && e->index == f->index) {
			*ret_fb = e->fb_id;
			return 0;
		}
		if (!e->used && !free_e)
			free_e = e;
	}
	if (!free_e)
		return -ENOSPC;
	if (!fi || !fi->drm_fourcc) {
		fallback(d, "%s has no DRM equivalent", zcv_fourcc_str(l->fourcc, fcc));
		return -ENOTSUP;
	}
	for (unsigned p = 0; p < l->n_planes; p++) {
		if (drmPrimeFDToHandle(d->fd, f->fd[p], &handles[p]) < 0) {
			r = -errno;
			close_handles(d, handles);
			fallback(d,
				 "%s (%s) cannot import the producer's %s buffers "
				 "(drmPrimeFDToHandle: %s)",
				 d->info.device, d->info.driver, zcv_path_name(d->fmt.path),
				 strerror(-r));
			return r;
		}
		pitches[p] = f->stride[p];
		offsets[p] = f->offset[p];
		mods[p] = d->fmt.modifier;
	}
	if (d->addfb_modifiers && d->fmt.modifier != DRM_FORMAT_MOD_INVALID)
		r = drmModeAddFB2WithModifiers(d->fd, l->width, l->height, fi->drm_fourcc, handles,
					       pitches, offsets, mods, &free_e->fb_id,
					       DRM_MODE_FB_MODIFIERS);
	else
		r = drmModeAddFB2(d->fd, l->width, l->height, fi->drm_fourcc, handles, pitches,
				  offsets, &free_e->fb_id, 0);
	if (r < 0)
		r = -errno;
	/* the framebuffer keeps the buffer: the handle is not needed any more */
	close_handles(d, handles);
	if (r < 0) {
		fallback(d,
			 "%s (%s) cannot make a %s framebuffer of the imported buffer "
			 "(AddFB2: %s)%s",
			 d->info.device, d->info.driver, fi->name, strerror(-r),
			 plane_has_format(d, fi->drm_fourcc) ?
				 "" :
				 "; its plane cannot scan out that format");
		return r;
	}
	free_e->used = true;
	free_e->gen = f->generation;
	free_e->index = f->index;
	d->stats.imports++;
	*ret_fb = free_e->fb_id;
	return 0;
}

/* ------------------------------------------------------------ commits */

static void add_plane(struct zcv_display *d, drmModeAtomicReq *req, uint32_t fb,
		      const struct rect *src, const struct rect *dst)
{
	uint32_t p = d->info.plane_id;

	drmModeAtomicAddProperty(req, p, d->plane_props[P_FB_ID], fb);
	drmModeAtomicAddProperty(req, p, d->plane_props[P_CRTC_ID], d->info.crtc_id);
	drmModeAtomicAddProperty(req, p, d->plane_props[P_SRC_X], (uint64_t)src->x << 16);
	drmModeAtomicAddProperty(req, p, d->plane_props[P_SRC_Y], (uint64_t)src->y << 16);
	drmModeAtomicAddProperty(req, p, d->plane_props[P_SRC_W], (uint64_t)src->w << 16);
	drmModeAtomicAddProperty(req, p, d->plane_props[P_SRC_H], (uint64_t)src->h << 16);
	drmModeAtomicAddProperty(req, p, d->plane_props[P_CRTC_X], dst->x);
	drmModeAtomicAddProperty(req, p, d->plane_props[P_CRTC_Y], dst->y);
	drmModeAtomicAddProperty(req, p, d->plane_props[P_CRTC_W], dst->w);
	drmModeAtomicAddProperty(req, p, d->plane_props[P_CRTC_H], dst->h);
}

/* Atomic commit of the plane showing fb; test: TEST_ONLY. */
static int atomic_show(struct zcv_display *d, uint32_t fb, const struct rect *src,
		       const struct rect *dst, bool test)
{
	drmModeAtomicReq *req = drmModeAtomicAlloc();
	uint32_t flags = test ? DRM_MODE_ATOMIC_TEST_ONLY :
				DRM_MODE_ATOMIC_NONBLOCK | DRM_MODE_PAGE_FLIP_EVENT;
	int r;

	if (!req)
		return -ENOMEM;
	if (!d->modeset_done) {
		drmModeAtomicAddProperty(req, d->info.connector_id, d->conn_crtc_id,
					 d->info.crtc_id);
		drmModeAtomicAddProperty(req, d->info.crtc_id, d->crtc_mode_id, d->mode_blob);
		drmModeAtomicAddProperty(req, d->info.crtc_id, d->crtc_active, 1);
		flags |= DRM_MODE_ATOMIC_ALLOW_MODESET;
	}
	add_plane(d, req, fb, src, dst);
	r = drmModeAtomicCommit(d->fd, req, flags, d);
	r = r < 0 ? -errno : 0;
	drmModeAtomicFree(req);
	if (!r && !test)
		d->modeset_done = true;
	return r;
}

static int legacy_show(struct zcv_display *d, uint32_t fb, int x, int y)
{
	if (!d->modeset_done) {
		uint32_t conn = d->info.connector_id;

		if (drmModeSetCrtc(d->fd, d->info.crtc_id, fb, (uint32_t)x, (uint32_t)y, &conn, 1,
				   &d->mode) < 0)
			return -errno;
		d->modeset_done = true;
		d->sync_done = true; /* no event for SetCrtc: it is on screen now */
		return 0;
	}
	if (drmModePageFlip(d->fd, d->info.crtc_id, fb, DRM_MODE_PAGE_FLIP_EVENT, d) < 0)
		return -errno;
	return 0;
}

/* Zero-copy placement of the current format, tested once (atomic). */
static int zc_place(struct zcv_display *d, uint32_t fb)
{
	uint32_t fw = d->fmt.layout.width, fh = d->fmt.layout.height;
	uint32_t mw = d->info.mode_width, mh = d->info.mode_height;
	struct rect src, dst;
	int r;

	if (!d->info.atomic) {
		/* legacy: the CRTC shows a mode-sized window of the framebuffer */
		if (fw < mw || fh < mh) {
			fallback(d,
				 "legacy modesetting on %s cannot place a %ux%u frame on a %ux%u "
				 "mode; copying into mode-sized buffers",
				 d->info.driver, fw, fh, mw, mh);
			return -ENOTSUP;
		}
		d->zc_x = (int)(fw - mw) / 2;
		d->zc_y = (int)(fh - mh) / 2;
		snprintf(d->info.placement, sizeof(d->info.placement), "%s",
			 fw == mw && fh == mh ? "full" : "cropped");
		d->zc_placed = true;
		return 0;
	}
	if (fw == mw && fh == mh) {
		src = (struct rect){ 0, 0, fw, fh };
		dst = (struct rect){ 0, 0, mw, mh };
		r = atomic_show(d, fb, &src, &dst, true);
		if (r == 0) {
			snprintf(d->info.placement, sizeof(d->info.placement), "full");
			goto ok;
		}
	} else {
		if (d->cfg.scale) {
			/* fit, aspect kept */
			uint64_t w = mw, h = (uint64_t)fh * mw / fw;

			if (h > mh) {
				h = mh;
				w = (uint64_t)fw * mh / fh;
			}
			src = (struct rect){ 0, 0, fw, fh };
			dst = (struct rect){ (mw - (uint32_t)w) / 2, (mh - (uint32_t)h) / 2,
					     (uint32_t)w, (uint32_t)h };
			r = atomic_show(d, fb, &src, &dst, true);
			if (r == 0) {
				snprintf(d->info.placement, sizeof(d->info.placement), "scaled");
				d->info.plane_scaling = true;
				goto ok;
			}
		}
		src.w = ZCV_MIN(fw, mw);
		src.h = ZCV_MIN(fh, mh);
		src.x = (fw - src.w) / 2;
		src.y = (fh - src.h) / 2;
		dst = (struct rect){ (mw - src.w) / 2, (mh - src.h) / 2, src.w, src.h };
		r = atomic_show(d, fb, &src, &dst, true);
		if (r == 0) {
			snprintf(d->info.placement, sizeof(d->info.placement), "%s",
				 fw <= mw && fh <= mh ? "centred" : "cropped");
			goto ok;
		}
	}
	{
		const struct zcv_format_info *fi = zcv_format_lookup(d->fmt.layout.fourcc);

		fallback(d,
			 "%s (%s) refuses to scan out the imported %ux%u %s framebuffer on a "
			 "%ux%u mode (atomic test: %s)%s",
			 d->info.device, d->info.driver, fw, fh, fi ? fi->name : "?", mw, mh,
			 strerror(-r),
			 fi && !plane_has_format(d, fi->drm_fourcc) ?
				 "; its plane lacks that format" :
				 "");
	}
	return r;
ok:
	d->zc_src = src;
	d->zc_dst = dst;
	d->zc_placed = true;
	return 0;
}

/* The caller's CPU access bracket around reading a frame's pixels. */
static void cpu_access(struct zcv_display *d, const struct zcv_client_frame *f, bool begin)
{
	if (d->cbs.access)
		d->cbs.access(d->data, f, begin);
}

static int copy_into(struct zcv_display *d, const struct zcv_client_frame *f, struct dumb *b)
{
	const struct zcv_layout *l = &d->fmt.layout;
	const uint8_t *planes[ZCV_MAX_PLANES] = { 0 };
	int64_t n;

	for (unsigned p = 0; p < l->n_planes; p++) {
		if (!f->planes[p])
			return -EFAULT; /* the client does not map: nothing to copy from */
		planes[p] = f->planes[p];
	}
	if (b->dirty) {
		memset(b->map, 0, b->size);
		b->dirty = false;
	}
	cpu_access(d, f, true);
	n = zcv_display_convert(l, d->fmt.colorspace, planes, f->stride, b->map, d->info.mode_width,
				d->info.mode_height, b->pitch);
	cpu_access(d, f, false);
	if (n < 0)
		return (int)n;
	zcv_copied_bytes_add((uint64_t)n);
	d->stats.copied_bytes += (uint64_t)n;
	return 0;
}

static void flip_done(struct zcv_display *d, uint64_t ns);

/* Puts f on its way to the screen; on success it is the pending slot. */
static int submit(struct zcv_display *d, const struct zcv_client_frame *f)
{
	struct slot s = { .used = true, .f = *f, .dumb = -1 };
	struct rect full = { 0, 0, d->info.mode_width, d->info.mode_height };
	int r;

	if (!d->info.copy) {
		r = import_fb(d, f, &s.fb_id);
		if (r == 0 && !d->zc_placed)
			r = zc_place(d, s.fb_id);
		if (r == 0) {
			s.src = d->zc_src;
			s.dst = d->zc_dst;
			r = d->info.atomic ? atomic_show(d, s.fb_id, &s.src, &s.dst, false) :
					     legacy_show(d, s.fb_id, d->zc_x, d->zc_y);
			if (r == 0) {
				d->zc_verified = true;
				goto ok;
			}
			if (d->zc_verified || r == -EBUSY)
				return r; /* it worked before: a real failure */
			fallback(d, "%s (%s) failed to show the imported framebuffer (%s)",
				 d->info.device, d->info.driver, strerror(-r));
		} else if (r == -ENOSPC) {
			return r;
		}
	}
	r = dumbs_ensure(d);
	if (r < 0)
		return r;
	/* the buffer not on screen (the other may be scanned out right now) */
	s.dumb = d->shown.used && d->shown.dumb == 0 ? 1 : 0;
	s.fb_id = d->dumb[s.dumb].fb_id;
	r = copy_into(d, f, &d->dumb[s.dumb]);
	if (r < 0)
		return r;
	s.src = full;
	s.dst = full;
	r = d->info.atomic ? atomic_show(d, s.fb_id, &full, &full, false) :
			     legacy_show(d, s.fb_id, 0, 0);
	if (r < 0)
		return r;
ok:
	d->pending = s;
	if (d->sync_done) {
		d->sync_done = false;
		flip_done(d, zcv_now_ns());
	}
	return 0;
}

static unsigned held(struct zcv_display *d)
{
	return d->shown.used + d->pending.used + d->queued.used;
}

static void release_slot(struct zcv_display *d, struct slot *s)
{
	struct slot copy = *s;

	s->used = false;
	if (!copy.used)
		return;
	/* a framebuffer of a retired generation goes with its last frame */
	if (copy.dumb < 0 && copy.f.generation != d->fmt.generation && !fb_in_use(d, copy.fb_id))
		for (int i = 0; i < MAX_FBS; i++)
			if (d->fbs[i].used && d->fbs[i].fb_id == copy.fb_id)
				fb_remove(d, &d->fbs[i]);
	d->cbs.release(d->data, &copy.f);
}

static void flip_done(struct zcv_display *d, uint64_t ns)
{
	struct slot old = d->shown;

	if (!d->pending.used)
		return;
	d->shown = d->pending;
	d->pending.used = false;
	d->stats.flips++;
	if (!d->stats.first_flip_ns)
		d->stats.first_flip_ns = ns;
	d->stats.last_flip_ns = ns;
	/* the display engine reads the new frame now: the old one is free */
	if (old.used) {
		struct slot tmp = old;

		release_slot(d, &tmp);
	}
	if (d->cbs.flipped)
		d->cbs.flipped(d->data, &d->shown.f, ns);
	if (d->queued.used) {
		struct slot q = d->queued;
		int r;

		d->queued.used = false;
		r = submit(d, &q.f);
		if (r < 0) {
			d->error = r;
			release_slot(d, &q);
		}
	}
}

static void on_flip(int fd, unsigned seq, unsigned sec, unsigned usec, unsigned crtc, void *data)
{
	struct zcv_display *d = data;
	uint64_t ns = d->monotonic ? (uint64_t)sec * 1000000000ull + (uint64_t)usec * 1000ull :
				     zcv_now_ns();

	flip_done(d, ns);
}

int zcv_display_get_fd(struct zcv_display *d)
{
	return d->fd;
}

int zcv_display_dispatch(struct zcv_display *d)
{
	drmEventContext ev = { .version = 3, .page_flip_handler2 = on_flip };
	struct pollfd pfd = { .fd = d->fd, .events = POLLIN };
	int r;

	while (poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN))
		if (drmHandleEvent(d->fd, &ev) < 0)
			return -EIO;
	if (d->error) {
		r = d->error;
		d->error = 0;
		return r;
	}
	return 0;
}

int zcv_display_finish(struct zcv_display *d, int timeout_ms)
{
	uint64_t end = zcv_now_ns() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000000ull;

	while (d->pending.used) {
		struct pollfd pfd = { .fd = d->fd, .events = POLLIN };
		int wait = -1, r;

		if (timeout_ms >= 0) {
			uint64_t now = zcv_now_ns();

			if (now >= end)
				return -ETIMEDOUT;
			wait = (int)((end - now) / 1000000ull) + 1;
		}
		r = poll(&pfd, 1, wait);
		if (r < 0 && errno != EINTR)
			return -errno;
		r = zcv_display_dispatch(d);
		if (r < 0)
			return r;
	}
	return 0;
}

int zcv_display_set_format(struct zcv_display *d, const struct zcv_client_format *fmt)
{
	bool resized;

	if (!zcv_format_lookup(fmt->layout.fourcc))
		return -EINVAL;
	if (d->have_fmt && fmt->generation == d->fmt.generation)
		return 0;
	resized = !d->have_fmt || fmt->layout.width != d->fmt.layout.width ||
		  fmt->layout.height != d->fmt.layout.height;
	d->fmt = *fmt;
	d->have_fmt = true;
	/* framebuffers of older generations: now, or when their frame leaves */
	for (int i = 0; i < MAX_FBS; i++)
		if (d->fbs[i].used && d->fbs[i].gen != fmt->generation &&
		    !fb_in_use(d, d->fbs[i].fb_id))
			fb_remove(d, &d->fbs[i]);
	if (resized)
		for (int i = 0; i < 2; i++)
			d->dumb[i].dirty = true;
	/* decide the path anew */
	d->zc_placed = false;
	d->zc_verified = false;
	d->info.copy = false;
	d->info.fallback_reason[0] = 0;
	d->info.plane_scaling = false;
	if (d->cfg.force_copy)
		fallback(d, "--force-copy: copy path requested");
	else if (!d->prime_import)
		fallback(d, "%s (%s) cannot import buffers (no PRIME import)", d->info.device,
			 d->info.driver);
	return 0;
}

int zcv_display_show(struct zcv_display *d, const struct zcv_client_frame *f)
{
	int r;

	if (!d->have_fmt)
		return -EINVAL;
	if (f->generation != d->fmt.generation)
		return -ESTALE;
	d->stats.frames++;
	if (d->pending.used) {
		/* a flip is on its way: this one waits, replacing any older waiter */
		if (d->queued.used) {
			d->stats.skipped++;
			release_slot(d, &d->queued);
		}
		d->queued = (struct slot){ .used = true, .f = *f, .dumb = -1 };
		d->stats.held_max = ZCV_MAX(d->stats.held_max, held(d));
		return 0;
	}
	r = submit(d, f);
	if (r < 0) {
		d->stats.frames--;
		return r;
	}
	d->stats.held_max = ZCV_MAX(d->stats.held_max, held(d));
	return 0;
}

const struct zcv_client_frame *zcv_display_shown(struct zcv_display *d)
{
	return d->shown.used ? &d->shown.f : NULL;
}

void zcv_display_get_info(struct zcv_display *d, struct zcv_display_info *ret_info)
{
	*ret_info = d->info;
}

void zcv_display_get_stats(struct zcv_display *d, struct zcv_display_stats *ret_stats)
{
	*ret_stats = d->stats;
}

/* ------------------------------------------------------------ snapshot */

static int snapshot_writeback(struct zcv_display *d, uint8_t *pixels)
{
	struct dumb b = { .map = MAP_FAILED };
	uint32_t w = d->info.mode_width, h = d->info.mode_height;
	int32_t fence = -1;
	bool swapped = false, attached = false;
	int r;

	r = dumb_create(d, &b, w, h);
	if (r < 0)
		return r;
	/* 0: writeback alongside the display, no modeset; 1: the same as a
	 * modeset; 2: writeback instead of the display connector on the same
	 * CRTC, plane and framebuffer (vkms 6.12 cannot clone its encoders:
	 * "failed valid clone check") */
	for (int attempt = 0; attempt < 3; attempt++) {
		drmModeAtomicReq *req = drmModeAtomicAlloc();

		if (!req) {
			r = -ENOMEM;
			goto out;
		}
		drmModeAtomicAddProperty(req, d->wb_conn_id, d->wb_crtc_id, d->info.crtc_id);
		drmModeAtomicAddProperty(req, d->wb_conn_id, d->wb_fb_id, b.fb_id);
		drmModeAtomicAddProperty(req, d->wb_conn_id, d->wb_fence_ptr,
					 (uint64_t)(uintptr_t)&fence);
		if (attempt == 2)
			drmModeAtomicAddProperty(req, d->info.connector_id, d->conn_crtc_id, 0);
		r = drmModeAtomicCommit(d->fd, req, attempt ? DRM_MODE_ATOMIC_ALLOW_MODESET : 0,
					NULL);
		r = r < 0 ? -errno : 0;
		drmModeAtomicFree(req);
		swapped = attempt == 2;
		if (r != -EINVAL)
			break;
	}
	if (r < 0)
		goto out;
	attached = true;
	if (fence >= 0) {
		struct pollfd pfd = { .fd = fence, .events = POLLIN };

		if (poll(&pfd, 1, 1000) <= 0) {
			r = -EIO;
			goto out;
		}
	}
	for (uint32_t y = 0; y < h; y++)
		memcpy(pixels + (size_t)y * w * 4, b.map + (size_t)y * b.pitch, (size_t)w * 4);
	r = 0;
out:
	if (attached) {
		/* back to how it was: writeback off, the display connector on */
		drmModeAtomicReq *req = drmModeAtomicAlloc();

		if (req) {
			drmModeAtomicAddProperty(req, d->wb_conn_id, d->wb_crtc_id, 0);
			drmModeAtomicAddProperty(req, d->wb_conn_id, d->wb_fb_id, 0);
			if (swapped)
				drmModeAtomicAddProperty(req, d->info.connector_id, d->conn_crtc_id,
							 d->info.crtc_id);
			if (drmModeAtomicCommit(d->fd, req, 0, NULL) < 0)
				drmModeAtomicCommit(d->fd, req, DRM_MODE_ATOMIC_ALLOW_MODESET,
						    NULL);
			drmModeAtomicFree(req);
		}
	}
	if (fence >= 0)
		close(fence);
	dumb_destroy(d, &b);
	return r;
}

int zcv_display_snapshot(struct zcv_display *d, struct zcv_display_image *ret)
{
	uint32_t w, h;
	uint8_t *px;
	int r;

	r = zcv_display_finish(d, 1000);
	if (r < 0)
		return r == -ETIMEDOUT ? -EIO : r;
	if (!d->shown.used)
		return -ENODATA;
	if (d->info.writeback) {
		w = d->info.mode_width;
		h = d->info.mode_height;
		px = malloc((size_t)w * h * 4);
		if (!px)
			return -ENOMEM;
		r = snapshot_writeback(d, px);
		if (r < 0) {
			free(px);
			return r;
		}
		*ret = (struct zcv_display_image){ w, h, px, d->shown.f.sequence, "writeback" };
		return 0;
	}
	if (d->shown.dumb >= 0) {
		struct dumb *b = &d->dumb[d->shown.dumb];

		w = d->info.mode_width;
		h = d->info.mode_height;
		px = malloc((size_t)w * h * 4);
		if (!px)
			return -ENOMEM;
		for (uint32_t y = 0; y < h; y++)
			memcpy(px + (size_t)y * w * 4, b->map + (size_t)y * b->pitch,
			       (size_t)w * 4);
	} else {
		const struct zcv_client_frame *f = &d->shown.f;
		const uint8_t *planes[ZCV_MAX_PLANES] = { 0 };
		int64_t n;

		w = d->fmt.layout.width;
		h = d->fmt.layout.height;
		for (unsigned p = 0; p < d->fmt.layout.n_planes; p++)
			if (!(planes[p] = f->planes[p]))
				return -EFAULT;
		px = calloc((size_t)w * h, 4);
		if (!px)
			return -ENOMEM;
		cpu_access(d, f, true);
		n = zcv_display_convert(&d->fmt.layout, d->fmt.colorspace, planes, f->stride, px, w,
					h, w * 4);
		cpu_access(d, f, false);
		if (n < 0) {
			free(px);
			return (int)n;
		}
	}
	*ret = (struct zcv_display_image){ w, h, px, d->shown.f.sequence, "buffer" };
	return 0;
}

/* ------------------------------------------------------------ teardown */

static void restore(struct zcv_display *d)
{
	drmModeCrtc *s = d->saved_crtc;

	if (!d->modeset_done)
		return;
	if (s && s->buffer_id && s->mode_valid) {
		uint32_t conn = d->info.connector_id;

		if (drmModeSetCrtc(d->fd, s->crtc_id, s->buffer_id, s->x, s->y, &conn, 1,
				   &s->mode) == 0)
			return;
	}
	if (d->info.atomic) {
		drmModeAtomicReq *req = drmModeAtomicAlloc();

		if (req) {
			drmModeAtomicAddProperty(req, d->info.plane_id, d->plane_props[P_FB_ID], 0);
			drmModeAtomicAddProperty(req, d->info.plane_id, d->plane_props[P_CRTC_ID],
						 0);
			drmModeAtomicAddProperty(req, d->info.connector_id, d->conn_crtc_id, 0);
			drmModeAtomicAddProperty(req, d->info.crtc_id, d->crtc_active, 0);
			drmModeAtomicAddProperty(req, d->info.crtc_id, d->crtc_mode_id, 0);
			drmModeAtomicCommit(d->fd, req, DRM_MODE_ATOMIC_ALLOW_MODESET, NULL);
			drmModeAtomicFree(req);
		}
	} else {
		drmModeSetCrtc(d->fd, d->info.crtc_id, 0, 0, 0, NULL, 0, NULL);
	}
}

void zcv_display_destroy(struct zcv_display *d)
{
	if (!d)
		return;
	if (d->fd >= 0) {
		/* a pending flip must land before its buffers go away */
		zcv_display_finish(d, 1000);
		restore(d);
		/* removing a framebuffer still scanned out turns its plane off,
		 * synchronously: after this nothing reads the frames */
		for (int i = 0; i < MAX_FBS; i++)
			fb_remove(d, &d->fbs[i]);
		for (int i = 0; i < 2; i++)
			dumb_destroy(d, &d->dumb[i]);
		if (d->mode_blob)
			drmModeDestroyPropertyBlob(d->fd, d->mode_blob);
	}
	release_slot(d, &d->queued);
	release_slot(d, &d->pending);
	release_slot(d, &d->shown);
	if (d->fd >= 0) {
		if (d->master)
			drmDropMaster(d->fd);
		close(d->fd);
	}
	drmModeFreeCrtc(d->saved_crtc);
	free(d->plane_formats);
	free((char *)d->cfg.connector);
	free(d);
}
