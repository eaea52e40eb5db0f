/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <zcv/log.h>
#include <zcv/memory.h>
#include <zcv/server.h>
#include <zcv/stream_id.h>
#include "wire.h"

#define DEPARTED_MAX 64
#define NSEC_PER_MSEC 1000000ull
/* destroy waits this long for the closer thread (see server.h) */
#define DESTROY_FLUSH_NS (1000ull * NSEC_PER_MSEC)
/* Room for several pool announcements (WELCOME + 32 BUFFERs each) plus
 * every frame a consumer may hold: a consumer that still fills this is
 * not reading at all. The kernel caps it at net.core.wmem_max. */
#define CONSUMER_SNDBUF (1 << 20)

struct hold {
	struct zcv_pool *pool; /* the source pool or the consumer's private copy pool */
	uint32_t generation;
	uint32_t index;
	uint64_t sequence;
	uint64_t since_ns;
	bool private_pool;
	/* the newest frame of a consumer that keeps its latest frame, while
	 * the producer has published nothing newer: no hold timeout */
	bool latest;
};

struct consumer {
	struct zcv_server *srv;
	struct consumer *next;
	int fd;
	bool dead;
	unsigned granted;  /* source buffers drawn from the budget (zero-copy paths) */
	bool joined;       /* consumer_joined was called: consumer_left follows */
	int pending_error; /* publish failed to reach it: drop after the publish */
	uint64_t accepted_ns;
	uint32_t caps;
	bool keeps_latest; /* HELLO's ZCV_HELLO_FLAG_KEEPS_LATEST */
	bool wants_status; /* HELLO's ZCV_HELLO_FLAG_STATUS: it may be sent STATUS */
	bool planned;      /* admitted with others whose holds the budget held whole */
	unsigned version;
	struct zcv_consumer_info info;
	/* COPY path: private sealed memfd pool of the current generation.
	 * Retired private pools live on only through holds (private_pool). */
	struct zcv_pool *copy_pool;
	unsigned n_holds;
	struct hold holds[ZCV_POOL_MAX_BUFFERS];
};

struct zcv_server {
	struct zcv_server_config cfg;
	struct zcv_server_callbacks cbs;
	void *data;
	struct zcv_pool *pool;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t sock_dev;
	ino_t sock_ino;
	int epfd;
	int listen_fd;
	int timer_fd;
	uint64_t timer_deadline; /* 0: disarmed */
	uint8_t stream_id[16];
	unsigned next_id;
	unsigned n_consumers;
	unsigned granted;           /* sum of the consumers' grants */
	unsigned default_hold;      /* for consumers that ask for no number */
	struct consumer *consumers; /* in order of arrival */
	struct consumer *graveyard; /* dropped, freed when no dispatch can still see them */
	unsigned depth;             /* nesting of public calls (callbacks may re-enter) */
	bool destroying;
	bool ended;
	int end_error;
	char end_reason[64];
	bool source_lost; /* zcv_server_set_source() */
	char source_reason[64];
	uint64_t copied_bytes;
	struct zcv_consumer_info departed[DEPARTED_MAX];
	unsigned departed_next, n_departed;
};

static void reap(struct zcv_server *srv)
{
	if (srv->depth)
		return;
	while (srv->graveyard) {
		struct consumer *c = srv->graveyard;

		srv->graveyard = c->next;
		free(c);
	}
}

static void leave(struct zcv_server *srv)
{
	srv->depth--;
	reap(srv);
}

static void departed_push(struct zcv_server *srv, const struct zcv_consumer_info *info)
{
	srv->departed[srv->departed_next] = *info;
	srv->departed_next = (srv->departed_next + 1) % DEPARTED_MAX;
	if (srv->n_departed < DEPARTED_MAX)
		srv->n_departed++;
}

static void send_bye(struct consumer *c, int error, const char *reason)
{
	struct zcv_msg_bye bye;
	size_t len = zcv_msg_init_bye(&bye, error, reason);

	/* Best effort: the consumer may be gone or not reading. */
	(void)zcv_msg_send(c->fd, &bye, len, NULL, 0);
}

static bool pool_is_retired_copy(const struct consumer *c, const struct hold *h)
{
	return h->private_pool && h->pool != c->copy_pool;
}

/* Gives back one hold; a retired private pool goes with its last buffer. */
static void hold_return(struct consumer *c, const struct hold *h)
{
	if (zcv_pool_unhold(h->pool, h->index) < 0)
		zcv_debug("server: consumer %u: unhold of g%u b%u failed", c->info.id,
			  h->generation, h->index);
	if (pool_is_retired_copy(c, h) && zcv_pool_count(h->pool, ZCV_BUFFER_LENT) == 0)
		zcv_pool_destroy(h->pool);
}

static void retire_copy_pool(struct consumer *c)
{
	struct zcv_pool *p = c->copy_pool;

	c->copy_pool = NULL;
	if (p && zcv_pool_count(p, ZCV_BUFFER_LENT) == 0)
		zcv_pool_destroy(p);
}

static void grant_return(struct consumer *c)
{
	c->srv->granted -= c->granted;
	c->granted = 0;
}

/*
 * Ends a consumer: optional BYE, every hold reclaimed, its grant back in
 * the budget, fd disposed of, info kept among the departed. The struct
 * itself is freed by reap() because a dispatch loop may still hold an
 * epoll event pointing at it.
 */
static void consumer_drop(struct consumer *c, int error, const char *reason, bool bye)
{
	struct zcv_server *srv = c->srv;
	struct consumer **pp;

	struct hold holds[ZCV_POOL_MAX_BUFFERS];
	unsigned n_holds = c->n_holds;

	if (c->dead)
		return;
	c->dead = true;
	/* GONE before anything is given back: a pool's on_free may make the
	 * producer publish again from inside this function. */
	c->info.state = ZCV_CONSUMER_GONE;
	zcv_debug("server: consumer %u (%s) leaves: %d %s", c->info.id, c->info.name, error,
		  reason ? reason : "");
	if (bye)
		send_bye(c, error, reason);
	memcpy(holds, c->holds, n_holds * sizeof(holds[0]));
	c->n_holds = 0;
	for (unsigned i = 0; i < n_holds; i++)
		hold_return(c, &holds[i]);
	retire_copy_pool(c);
	grant_return(c);
	/*
	 * Its queue may hold more messages with fds whose final close would
	 * block, released when the socket is: the closer thread empties it
	 * and closes it. Emptying it first also means the peer reads our BYE
	 * and then end of file rather than ECONNRESET. The shutdown makes
	 * that so: a RELEASE the consumer sends after the closer's drain
	 * would otherwise sit unread at the close, and the kernel turns
	 * that into a reset for the consumer instead of our BYE.
	 */
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	shutdown(c->fd, SHUT_RDWR);
	zcv_fd_dispose(c->fd);
	c->fd = -1;

	c->info.held = 0;
	c->info.end_error = error;
	snprintf(c->info.end_reason, sizeof(c->info.end_reason), "%s", reason ? reason : "");
	departed_push(srv, &c->info);

	for (pp = &srv->consumers; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	srv->n_consumers--;
	c->next = srv->graveyard;
	srv->graveyard = c;

	if (c->joined && !srv->destroying && srv->cbs.consumer_left)
		srv->cbs.consumer_left(srv->data, &c->info);
}

static void consumer_dropf(struct consumer *c, int error, bool bye, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void consumer_dropf(struct consumer *c, int error, bool bye, const char *fmt, ...)
{
	char reason[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	consumer_drop(c, error, reason, bye);
}

static uint64_t hold_timeout_ns(const struct zcv_server *srv)
{
	return srv->cfg.hold_timeout_ns;
}

/* Arms the timer for the earliest hold or handshake deadline; disarms it
 * when nothing can time out, so an idle producer never wakes up. */
static void timer_update(struct zcv_server *srv)
{
	uint64_t deadline = 0;
	struct itimerspec its = { 0 };

	for (struct consumer *c = srv->consumers; c; c = c->next) {
		uint64_t d;

		if (c->info.state == ZCV_CONSUMER_HANDSHAKE && !c->info.hello_seen) {
			d = c->accepted_ns + srv->cfg.handshake_timeout_ns;
			if (!deadline || d < deadline)
				deadline = d;
		}
		for (unsigned i = 0; i < c->n_holds; i++) {
			if (c->holds[i].latest)
				continue;
			d = c->holds[i].since_ns + hold_timeout_ns(srv);
			if (!deadline || d < deadline)
				deadline = d;
		}
	}
	/*
	 * Re-arm only to move the timer earlier. A timer armed for an earlier
	 * deadline than needed (or with nothing left to watch) just fires once
	 * more and is re-armed then: one timerfd_settime a timeout period
	 * instead of one a frame, which cost ~15% of a publish.
	 */
	if (!deadline)
		return;
	deadline++; /* +1 ns: the check is "more than" the timeout */
	if (srv->timer_deadline && srv->timer_deadline <= deadline)
		return;
	its.it_value.tv_sec = (time_t)(deadline / 1000000000ull);
	its.it_value.tv_nsec = (long)(deadline % 1000000000ull);
	if (timerfd_settime(srv->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		srv->timer_deadline = deadline;
}

static void check_timeouts(struct zcv_server *srv)
{
	uint64_t now = zcv_now_ns();
	struct consumer *c, *next;

	for (c = srv->consumers; c; c = next) {
		next = c->next;
		if (c->info.state == ZCV_CONSUMER_HANDSHAKE && !c->info.hello_seen &&
		    now - c->accepted_ns > srv->cfg.handshake_timeout_ns) {
			consumer_dropf(c, -ETIMEDOUT, true, "no HELLO within %llu ms",
				       (unsigned long long)(srv->cfg.handshake_timeout_ns /
							    NSEC_PER_MSEC));
			continue;
		}
		for (unsigned i = 0; i < c->n_holds; i++) {
			if (!c->holds[i].latest &&
			    now - c->holds[i].since_ns > hold_timeout_ns(srv)) {
				consumer_dropf(
					c, -ETIMEDOUT, true,
					"held frame %llu for more than %llu ms",
					(unsigned long long)c->holds[i].sequence,
					(unsigned long long)(hold_timeout_ns(srv) / NSEC_PER_MSEC));
				break;
			}
		}
	}
}

static int select_path(const struct zcv_pool *pool, uint32_t caps,
		       const struct zcv_constraints *cons, char *why, size_t why_size)
{
	why[0] = '\0';
	if (caps & ZCV_CAP_NEEDS_COPY) {
		snprintf(why, why_size, "the consumer asked for a copy");
		return ZCV_PATH_COPY;
	}
	if (pool->kind == ZCV_MEMORY_DMABUF && (caps & ZCV_CAP_DMABUF)) {
		if (zcv_pool_check(pool, cons, why, why_size) != ZCV_FIT_OK)
			return ZCV_PATH_COPY;
		return ZCV_PATH_DMABUF;
	}
	if (pool->kind == ZCV_MEMORY_MEMFD && (caps & ZCV_CAP_MEMFD)) {
		if (zcv_pool_check(pool, cons, why, why_size) != ZCV_FIT_OK)
			return ZCV_PATH_COPY;
		return ZCV_PATH_MEMFD;
	}
	snprintf(why, why_size, "it cannot import %s",
		 pool->kind == ZCV_MEMORY_DMABUF ? "DMA-BUF" : "memfd");
	return ZCV_PATH_COPY;
}

/* The pool this consumer's frames come from. */
static struct zcv_pool *consumer_pool(struct consumer *c)
{
	return c->copy_pool ? c->copy_pool : c->srv->pool;
}

static unsigned source_reserve(const struct zcv_server *srv)
{
	return srv->cfg.source_reserve;
}

static unsigned budget_total(const struct zcv_server *srv)
{
	unsigned n = srv->pool->n_buffers, keep = source_reserve(srv);

	return n > keep ? n - keep : 0;
}

/* What a consumer may hold when the budget allows: what it asked for (0:
 * the default), never more than the cap. */
static unsigned hold_wanted(const struct consumer *c)
{
	unsigned cap = c->srv->cfg.max_hold;

	return c->info.constraints.hold ? ZCV_MIN(c->info.constraints.hold, cap) :
					  c->srv->default_hold;
}

/*
 * Chooses the consumer's path for the current pool, grants its holds out
 * of the budget (see server.h) and makes its private pool when the path
 * is COPY. A zero-copy consumer holds up to its grant of source buffers;
 * since the grants never sum to more than n_buffers - source_reserve,
 * neither do the buffers lent, however the holds overlap.
 */
static int consumer_setup_path(struct consumer *c)
{
	struct zcv_server *srv = c->srv;
	unsigned want = hold_wanted(c), total = budget_total(srv);
	struct zcv_pool *p = NULL;
	struct zcv_layout l;
	int r;

	grant_return(c);
	c->info.path = select_path(srv->pool, c->caps, &c->info.constraints, c->info.path_reason,
				   sizeof(c->info.path_reason));
	if (c->info.path != ZCV_PATH_COPY) {
		unsigned left = total > srv->granted ? total - srv->granted : 0;

		if (left) {
			unsigned g = ZCV_MIN(want, left);

			/* a pool not sized for it: a deep hold asked for leaves
			 * the next consumer at least the default one */
			if (srv->cfg.leave_room && !c->planned && c->info.constraints.hold &&
			    g > ZCV_SERVER_DEFAULT_HOLD && left - g < ZCV_SERVER_DEFAULT_HOLD)
				g = ZCV_MAX(ZCV_SERVER_DEFAULT_HOLD,
					    left - ZCV_SERVER_DEFAULT_HOLD);
			c->granted = g;
			srv->granted += c->granted;
			c->info.max_hold = c->granted;
			c->info.path_reason[0] = '\0';
			return 0;
		}
		c->info.path = ZCV_PATH_COPY;
		snprintf(c->info.path_reason, sizeof(c->info.path_reason),
			 "the buffer budget is exhausted: %u of %u buffers granted, the source "
			 "keeps %u",
			 srv->granted, srv->pool->n_buffers, srv->pool->n_buffers - total);
	}
	c->info.max_hold = want;
	r = zcv_constraints_layout(&c->info.constraints, &srv->pool->layout, &l);
	if (r < 0)
		return r;
	/* one spare: a buffer to copy into whenever it may take a frame */
	r = zcv_pool_create_memfd(&l, ZCV_MIN(srv->pool->n_buffers, want + 1),
				  srv->pool->generation, &p);
	if (r < 0)
		return r;
	c->copy_pool = p;
	return 0;
}

/* WELCOME and one BUFFER per pool buffer: the only time fds travel. */
static int send_pool(struct consumer *c)
{
	struct zcv_server *srv = c->srv;
	struct zcv_pool *pool = consumer_pool(c);
	const struct zcv_layout *l = &pool->layout;
	struct zcv_msg_welcome w;
	size_t len;
	int r;

	len = zcv_msg_init(&w, ZCV_MSG_WELCOME);
	w.hdr.version = (uint16_t)c->version;
	w.version = (uint16_t)c->version;
	w.path = (uint16_t)c->info.path;
	w.max_hold = c->info.max_hold;
	memcpy(w.stream_id, srv->stream_id, sizeof(w.stream_id));
	w.fourcc = l->fourcc;
	w.width = l->width;
	w.height = l->height;
	w.n_planes = l->n_planes;
	for (unsigned p = 0; p < l->n_planes && p < ZCV_MAX_PLANES; p++) {
		w.planes[p].offset = l->planes[p].offset;
		w.planes[p].stride = l->planes[p].stride;
		w.planes[p].size = l->planes[p].size;
	}
	w.modifier = srv->cfg.modifier;
	w.colorspace = srv->cfg.colorspace;
	w.fps_num = srv->cfg.fps_num;
	w.fps_den = srv->cfg.fps_den;
	w.generation = pool->generation;
	w.n_buffers = pool->n_buffers;
	w.frame_size = l->size;
	r = zcv_msg_send(c->fd, &w, len, NULL, 0);
	if (r < 0)
		return r;

	for (unsigned i = 0; i < pool->n_buffers; i++) {
		const struct zcv_buffer *b = &pool->buffers[i];
		struct zcv_msg_buffer m;

		len = zcv_msg_init(&m, ZCV_MSG_BUFFER);
		m.hdr.version = (uint16_t)c->version;
		m.generation = pool->generation;
		m.index = i;
		m.n_fds = b->n_fds;
		memcpy(m.plane_fd, b->plane_fd, sizeof(m.plane_fd));
		for (unsigned f = 0; f < b->n_fds; f++)
			m.fd_size[f] = b->fd_size[f];
		r = zcv_msg_send(c->fd, &m, len, b->fds, b->n_fds);
		if (r < 0)
			return r;
	}
	return 0;
}

/* WELCOME + pool, then streaming. */
/* STATUS with the source's state, to a consumer that understands it;
 * others only see frames stop and a new generation come. */
static int send_status(struct consumer *c)
{
	struct zcv_msg_status m;
	size_t len;

	if (!c->wants_status)
		return 0;
	len = zcv_msg_init(&m, ZCV_MSG_STATUS);
	m.flags = c->srv->source_lost ? ZCV_STATUS_SOURCE_LOST : 0;
	snprintf(m.reason, sizeof(m.reason), "%s", c->srv->source_reason);
	return zcv_msg_send(c->fd, &m, len, NULL, 0);
}

static void admit(struct consumer *c)
{
	struct zcv_server *srv = c->srv;
	int r;

	r = consumer_setup_path(c);
	if (r < 0) {
		consumer_dropf(c, r, true, "cannot create a copy pool (%s)", strerror(-r));
		return;
	}
	r = send_pool(c);
	if (r == 0 && srv->source_lost)
		r = send_status(c); /* joined while the source is away */
	if (r < 0) {
		consumer_dropf(c, r, false, "cannot send the pool (%s)", strerror(-r));
		return;
	}
	c->info.state = ZCV_CONSUMER_STREAMING;
	c->joined = true;
	zcv_debug("server: consumer %u (%s) streaming, path %d, max_hold %u", c->info.id,
		  c->info.name, c->info.path, c->info.max_hold);
	if (srv->cbs.consumer_joined)
		srv->cbs.consumer_joined(srv->data, &c->info);
}

/* Names are shown on terminals and in logs: control bytes (escape
 * sequences, newlines) and anything outside ASCII become '?'. */
static void sanitize_name(char *dst, const char *src, size_t size)
{
	size_t i;

	for (i = 0; i + 1 < size && src[i]; i++) {
		unsigned char ch = (unsigned char)src[i];

		dst[i] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
	}
	dst[i] = '\0';
}

static void handle_hello(struct consumer *c, const struct zcv_msg_hello *h)
{
	struct zcv_server *srv = c->srv;
	unsigned n = 0;

	if (c->info.state != ZCV_CONSUMER_HANDSHAKE || c->info.hello_seen) {
		consumer_drop(c, -EPROTO, "HELLO after the handshake", true);
		return;
	}
	sanitize_name(c->info.name, h->name, sizeof(c->info.name));
	/* only consumers that said who they are take a place */
	for (struct consumer *o = srv->consumers; o; o = o->next)
		n += o != c && !o->dead && o->info.hello_seen;
	if (n >= srv->cfg.max_consumers) {
		consumer_dropf(c, -EBUSY, true, "too many consumers (max %u)",
			       srv->cfg.max_consumers);
		return;
	}
	if (h->min_version > ZCV_PROTOCOL_VERSION) {
		consumer_dropf(c, -EPROTONOSUPPORT, true,
			       "client needs protocol >= %u, producer speaks <= %u", h->min_version,
			       ZCV_PROTOCOL_VERSION);
		return;
	}
	c->version = ZCV_MIN((unsigned)h->hdr.version, (unsigned)ZCV_PROTOCOL_VERSION);
	c->caps = h->caps;
	c->keeps_latest = h->flags & ZCV_HELLO_FLAG_KEEPS_LATEST;
	c->wants_status = h->flags & ZCV_HELLO_FLAG_STATUS;
	/* zero when an older client sent the shorter HELLO (recv zero-fills) */
	zcv_msg_hello_get_constraints(h, &c->info.constraints);
	/* until admission grants it: what it would get with budget to spare */
	c->info.max_hold = hold_wanted(c);
	c->info.hello_seen = true;
	if (srv->cfg.defer_admission) {
		if (srv->cbs.consumer_hello)
			srv->cbs.consumer_hello(srv->data, &c->info);
		return;
	}
	admit(c);
}

int zcv_server_admit(struct zcv_server *srv)
{
	unsigned total = budget_total(srv), need = 0;
	struct consumer *c, *next;
	bool planned;
	int n = 0;

	/* those waiting, when the budget holds all they ask for, are granted
	 * it whole, whatever order they came in */
	for (c = srv->consumers; c; c = c->next)
		if (c->info.state == ZCV_CONSUMER_HANDSHAKE && c->info.hello_seen && !c->dead &&
		    !(c->caps & ZCV_CAP_NEEDS_COPY))
			need += hold_wanted(c);
	planned = need <= (total > srv->granted ? total - srv->granted : 0);
	srv->depth++;
	srv->cfg.defer_admission = false;
	for (c = srv->consumers; c; c = next) {
		next = c->next;
		if (c->info.state == ZCV_CONSUMER_HANDSHAKE && c->info.hello_seen && !c->dead &&
		    !srv->ended) {
			c->planned = planned;
			admit(c);
			n += c->info.state == ZCV_CONSUMER_STREAMING;
		}
	}
	timer_update(srv);
	leave(srv);
	return n;
}

unsigned zcv_server_pending_count(struct zcv_server *srv)
{
	unsigned n = 0;

	for (struct consumer *c = srv->consumers; c; c = c->next)
		n += c->info.state == ZCV_CONSUMER_HANDSHAKE && c->info.hello_seen;
	return n;
}

void zcv_server_pending_constraints(struct zcv_server *srv, struct zcv_constraints *ret)
{
	struct zcv_constraints m = { 0 };

	for (struct consumer *c = srv->consumers; c; c = c->next) {
		const struct zcv_constraints *k = &c->info.constraints;

		if (c->info.state != ZCV_CONSUMER_HANDSHAKE || !c->info.hello_seen ||
		    (c->caps & ZCV_CAP_NEEDS_COPY))
			continue;
		zcv_constraints_merge(&m, k);
	}
	*ret = m;
}

unsigned zcv_server_pending_buffers(struct zcv_server *srv)
{
	unsigned n = source_reserve(srv);

	for (struct consumer *c = srv->consumers; c; c = c->next) {
		if (c->info.state != ZCV_CONSUMER_HANDSHAKE || !c->info.hello_seen ||
		    (c->caps & ZCV_CAP_NEEDS_COPY))
			continue;
		n += hold_wanted(c);
	}
	return n;
}

static void handle_release(struct consumer *c, const struct zcv_msg_release *m)
{
	struct zcv_server *srv = c->srv;
	struct hold h;
	unsigned i;

	if (c->info.state != ZCV_CONSUMER_STREAMING) {
		consumer_drop(c, -EPROTO, "RELEASE before the handshake", true);
		return;
	}
	for (i = 0; i < c->n_holds; i++) {
		h = c->holds[i];
		if (h.generation == m->generation && h.index == m->index &&
		    h.sequence == m->sequence)
			break;
	}
	if (i == c->n_holds) {
		consumer_dropf(c, -EPROTO, true, "released g%u b%u seq %llu it does not hold",
			       m->generation, m->index, (unsigned long long)m->sequence);
		return;
	}
	c->holds[i] = c->holds[--c->n_holds];
	c->info.held = c->n_holds;
	hold_return(c, &h);
	/* After zcv_server_end() a consumer stays only to give frames back. */
	if (srv->ended && c->n_holds == 0)
		consumer_drop(c, srv->end_error, srv->end_reason, false);
}

static void consumer_read(struct consumer *c)
{
	/* A consumer only ever sends HELLO, a RELEASE per frame it got and
	 * BYE; far more than that in one go is a flood. */
	unsigned limit = 4 * ZCV_MAX(c->info.max_hold, c->srv->cfg.max_hold) + 16;
	struct zcv_msg_batch b;

	for (unsigned n = 0; !c->dead;) {
		int k;

		if (n >= limit) {
			consumer_dropf(c, -EPROTO, true, "flooding: over %u messages at once",
				       limit);
			return;
		}
		k = zcv_msg_read_batch(c->fd, &b, ZCV_MSG_BATCH);
		if (k == -EAGAIN)
			return;
		if (k == 0) {
			consumer_drop(c, -ECONNRESET, "consumer hung up", false);
			return;
		}
		if (k == -ECONNRESET) {
			/* A consumer that closed with our FRAMEs unread in its
			 * socket: the kernel reports the reset before the BYE it
			 * sent first, which is still queued. */
			union zcv_msg m;
			int fds[ZCV_MSG_MAX_FDS];
			unsigned n_fds = 0;
			int r = zcv_msg_read(c->fd, &m, fds, &n_fds);

			if (r > 0)
				zcv_fds_dispose(fds, n_fds);
			if (r > 0 && m.hdr.type == ZCV_MSG_BYE)
				consumer_drop(c, m.bye.error,
					      m.bye.reason[0] ? m.bye.reason :
								"consumer said goodbye",
					      false);
			else
				consumer_drop(c, -ECONNRESET,
					      "connection error (Connection reset by peer)", false);
			return;
		}
		if (k < 0) {
			consumer_dropf(c, k, false, "connection error (%s)", strerror(-k));
			return;
		}
		for (int i = 0; i < k; i++) {
			const union zcv_msg *m = &b.msgs[i];
			int r = b.res[i];

			/* validated: only BUFFER carries fds, and consumers never send it */
			if (r > 0)
				zcv_fds_dispose(b.fds[i], b.n_fds[i]);
			if (c->dead)
				continue; /* dropped earlier in the batch */
			if (r == 0) {
				consumer_drop(c, -ECONNRESET, "consumer hung up", false);
				continue;
			}
			if (r < 0) {
				consumer_drop(c, -EPROTO, "malformed message", true);
				continue;
			}
			switch (m->hdr.type) {
			case ZCV_MSG_HELLO:
				handle_hello(c, &m->hello);
				break;
			case ZCV_MSG_RELEASE:
				handle_release(c, &m->release);
				break;
			case ZCV_MSG_BYE:
				consumer_drop(c, m->bye.error,
					      m->bye.reason[0] ? m->bye.reason :
								 "consumer said goodbye",
					      false);
				break;
			default:
				consumer_dropf(c, -EPROTO, true, "unexpected %s from a consumer",
					       zcv_msg_type_name(m->hdr.type));
				break;
			}
		}
		n += (unsigned)k;
		/* a short batch emptied the socket: epoll says when more comes */
		if (k < ZCV_MSG_BATCH)
			return;
	}
}

static bool peer_allowed(const struct zcv_server *srv, int fd, const struct ucred *cred)
{
	if (srv->cfg.allow_any_uid || cred->uid == geteuid())
		return true;
	if (!srv->cfg.allow_group)
		return false;
	if (cred->gid == srv->cfg.allowed_gid)
		return true;
#ifdef SO_PEERGROUPS
	{
		gid_t groups[256];
		socklen_t len = sizeof(groups);

		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0)
			for (size_t i = 0; i < len / sizeof(gid_t); i++)
				if (groups[i] == srv->cfg.allowed_gid)
					return true;
	}
#endif
	return false;
}

static bool unfinished(const struct consumer *c)
{
	return !c->dead && c->info.state == ZCV_CONSUMER_HANDSHAKE && !c->info.hello_seen;
}

/*
 * Connections that have not said HELLO have a small quota of their own,
 * outside max_consumers, so that idle connections cannot lock consumers
 * out. Over the quota the oldest goes, not the newcomer: a connection that
 * has waited longest is the likeliest to never say anything. But one that
 * connected moments ago may be a well-behaved client preempted between
 * connect() and its HELLO (handshake_grace_ns). While every waiting
 * connection is that young,
 * nobody goes: a burst of connections can neither push out a client that
 * is about to speak nor keep one that was preempted before its HELLO (on
 * a busy host) from getting in. A burst is bounded all the same: beyond
 * HANDSHAKE_BURST_FACTOR times the quota the newcomer is refused; the
 * excess goes as newer connections replace the oldest, or at the
 * handshake timeout.
 */
#define HANDSHAKE_BURST_FACTOR 8u

static void handshake_make_room(struct zcv_server *srv, struct consumer *newcomer)
{
	struct consumer *oldest = NULL;
	unsigned n = 0;

	for (struct consumer *c = srv->consumers; c; c = c->next)
		if (c != newcomer && unfinished(c)) {
			n++;
			if (!oldest)
				oldest = c;
		}
	if (n < srv->cfg.handshake_quota || !oldest)
		return;
	if (newcomer->accepted_ns - oldest->accepted_ns >= srv->cfg.handshake_grace_ns)
		consumer_dropf(oldest, -EBUSY, true,
			       "no HELLO yet; replaced by a newer connection (%u waiting)", n);
	else if (n >= srv->cfg.handshake_quota * HANDSHAKE_BURST_FACTOR)
		consumer_dropf(newcomer, -EBUSY, true,
			       "no HELLO yet and %u newer connections waiting for theirs", n);
}

static void accept_one(struct zcv_server *srv, int fd)
{
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	socklen_t len = sizeof(cred);
	struct epoll_event ev = { .events = EPOLLIN };
	struct consumer *c, **pp;
	int sndbuf = CONSUMER_SNDBUF;

	c = calloc(1, sizeof(*c));
	if (!c) {
		zcv_fd_dispose(fd);
		return;
	}
	c->srv = srv;
	c->fd = fd;
	c->accepted_ns = zcv_now_ns();
	c->info.id = srv->next_id++;
	c->info.state = ZCV_CONSUMER_HANDSHAKE;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
		c->info.pid = cred.pid;
		c->info.uid = cred.uid;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));

	/* Linked in first so that every refusal goes through consumer_drop()
	 * and is remembered among the departed. */
	for (pp = &srv->consumers; *pp; pp = &(*pp)->next)
		;
	*pp = c;
	srv->n_consumers++;

	if (!peer_allowed(srv, fd, &cred)) {
		consumer_dropf(c, -EACCES, true, "uid %u is not allowed here", (unsigned)cred.uid);
		return;
	}
	ev.data.ptr = c;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		consumer_dropf(c, -errno, true, "epoll: %s", strerror(errno));
		return;
	}
	/* A client sends HELLO right after connecting: it is usually queued
	 * already, and then the handshake finishes here and the connection
	 * takes no slot of the quota. */
	consumer_read(c);
	if (unfinished(c))
		handshake_make_room(srv, c);
}

static void accept_all(struct zcv_server *srv)
{
	/* Bounded so a connect storm cannot starve frame releases. */
	for (int i = 0; i < 16 && srv->listen_fd >= 0; i++) {
		int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0)
			return;
		accept_one(srv, fd);
	}
}

/*
 * The default socket's directory, created 0700 (socket.c), opened to the
 * allowed group: that group's, 0710, so its members can reach the socket
 * (0660, the group's too) without listing or writing the directory, and
 * others still cannot enter. The directory above must let the group pass
 * as well; $XDG_RUNTIME_DIR is usually its owner's alone.
 */
static int default_dir_for_group(const char *sock_path, gid_t gid)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)], parent[sizeof(dir)];
	zcv_autoclose int fd = -1;
	struct stat st;
	char *slash;

	snprintf(dir, sizeof(dir), "%s", sock_path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return -EINVAL;
	*slash = '\0';
	snprintf(parent, sizeof(parent), "%s", dir);
	/* "/tmp/zcv-0" -> "/tmp"; "/zcv" -> "/" */
	slash = strrchr(parent, '/');
	*(slash == parent ? slash + 1 : slash) = '\0';
	if (stat(parent, &st) < 0)
		return -errno;
	if (!(st.st_mode & S_IXOTH) && !(st.st_gid == gid && (st.st_mode & S_IXGRP)))
		return -EACCES;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return -errno;
	if (st.st_uid != geteuid())
		return -EPERM;
	if (st.st_gid != gid && fchown(fd, (uid_t)-1, gid) < 0)
		return -errno;
	if ((st.st_mode & 07777) != 0710 && fchmod(fd, 0710) < 0)
		return -errno;
	return 0;
}

static int pool_check(const struct zcv_pool *pool)
{
	if (!pool || pool->n_buffers == 0 || pool->n_buffers > ZCV_POOL_MAX_BUFFERS ||
	    zcv_layout_validate(&pool->layout) < 0)
		return -EINVAL;
	if (pool->kind != ZCV_MEMORY_MEMFD && pool->kind != ZCV_MEMORY_DMABUF)
		return -EINVAL;
	for (unsigned i = 0; i < pool->n_buffers; i++) {
		const struct zcv_buffer *b = &pool->buffers[i];

		/* every buffer must have memory before it can be announced */
		if (b->n_fds == 0 || b->n_fds > ZCV_MSG_MAX_FDS)
			return -EINVAL;
		for (unsigned f = 0; f < b->n_fds; f++)
			if (b->fds[f] < 0 || b->fd_size[f] == 0)
				return -EINVAL;
	}
	return 0;
}

int zcv_server_create(const struct zcv_server_config *cfg, const struct zcv_server_callbacks *cbs,
		      void *data, struct zcv_pool *pool, struct zcv_server **ret_server)
{
	static const struct zcv_server_config defaults = { 0 };
	struct epoll_event ev = { .events = EPOLLIN };
	struct zcv_server *srv;
	struct stat st;
	int r;

	if (!cfg)
		cfg = &defaults;
	if (!ret_server || pool_check(pool) < 0 || cfg->max_hold > ZCV_POOL_MAX_BUFFERS ||
	    (cfg->fps_num && !cfg->fps_den))
		return -EINVAL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->cfg = *cfg;
	/* a cap chosen is also what those that ask for nothing get */
	srv->default_hold = srv->cfg.max_hold ? srv->cfg.max_hold : ZCV_SERVER_DEFAULT_HOLD;
	if (!srv->cfg.max_hold)
		srv->cfg.max_hold = 16;
	if (!srv->cfg.hold_timeout_ns)
		srv->cfg.hold_timeout_ns = 1000 * NSEC_PER_MSEC;
	if (!srv->cfg.max_consumers)
		srv->cfg.max_consumers = 16;
	if (!srv->cfg.source_reserve)
		srv->cfg.source_reserve = 2;
	if (!srv->cfg.handshake_timeout_ns)
		srv->cfg.handshake_timeout_ns = 1000 * NSEC_PER_MSEC;
	if (!srv->cfg.handshake_grace_ns)
		srv->cfg.handshake_grace_ns = 200 * NSEC_PER_MSEC;
	if (!srv->cfg.handshake_quota)
		srv->cfg.handshake_quota = 4;
	if (!srv->cfg.fps_num && !srv->cfg.fps_den)
		srv->cfg.fps_den = 1;
	if (cbs)
		srv->cbs = *cbs;
	srv->data = data;
	srv->pool = pool;
	srv->epfd = srv->listen_fd = srv->timer_fd = -1;
	srv->next_id = 1;
	zcv_stream_id_generate(srv->stream_id);

	if (cfg->socket_path) {
		if (strlen(cfg->socket_path) >= sizeof(srv->path)) {
			r = -ENAMETOOLONG;
			goto fail;
		}
		strcpy(srv->path, cfg->socket_path);
	} else {
		r = zcv_socket_default_path(srv->path, sizeof(srv->path));
		if (r == 0 && cfg->allow_group)
			r = default_dir_for_group(srv->path, cfg->allowed_gid);
		if (r < 0)
			goto fail;
	}
	srv->cfg.socket_path = srv->path;

	srv->epfd = epoll_create1(EPOLL_CLOEXEC);
	srv->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (srv->epfd < 0 || srv->timer_fd < 0) {
		r = -errno;
		goto fail;
	}
	r = zcv_socket_listen(srv->path, 0600);
	if (r < 0)
		goto fail;
	srv->listen_fd = r;
	/* what destroy may unlink: this very file, not a successor's */
	if (lstat(srv->path, &st) < 0) {
		r = -errno;
		goto fail;
	}
	srv->sock_dev = st.st_dev;
	srv->sock_ino = st.st_ino;
	/* Open the socket to the allowed group only once the file really is
	 * that group's: otherwise 0660 would admit our own primary group. */
	if (cfg->allow_group) {
		if (st.st_gid != cfg->allowed_gid &&
		    chown(srv->path, (uid_t)-1, cfg->allowed_gid) < 0) {
			r = -errno;
			goto fail;
		}
		if (chmod(srv->path, 0660) < 0) {
			r = -errno;
			goto fail;
		}
	}

	ev.data.ptr = &srv->listen_fd;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->listen_fd, &ev) < 0) {
		r = -errno;
		goto fail;
	}
	ev.data.ptr = &srv->timer_fd;
	if (epoll_ctl(srv->epfd, EPOLL_CTL_ADD, srv->timer_fd, &ev) < 0) {
		r = -errno;
		goto fail;
	}
	*ret_server = srv;
	return 0;

fail:
	if (srv->listen_fd >= 0) {
		close(srv->listen_fd);
		unlink(srv->path);
	}
	if (srv->timer_fd >= 0)
		close(srv->timer_fd);
	if (srv->epfd >= 0)
		close(srv->epfd);
	free(srv);
	return r;
}

static void stop_listening(struct zcv_server *srv)
{
	if (srv->listen_fd < 0)
		return;
	epoll_ctl(srv->epfd, EPOLL_CTL_DEL, srv->listen_fd, NULL);
	/* Refuses new connections now (ECONNREFUSED), before the close. */
	shutdown(srv->listen_fd, SHUT_RDWR);
	/* Connections not accepted yet may have queued messages with fds:
	 * closing the listener releases them, so it goes to the closer too
	 * (which accepts and empties them first). */
	zcv_fd_dispose(srv->listen_fd);
	srv->listen_fd = -1;
}

void zcv_server_destroy(struct zcv_server *srv)
{
	struct stat st;

	if (!srv)
		return;
	srv->destroying = true;
	srv->depth++;
	while (srv->consumers)
		consumer_drop(srv->consumers, srv->ended ? srv->end_error : 0,
			      srv->ended ? srv->end_reason : "producer shutting down", !srv->ended);
	stop_listening(srv);
	/* Only our own socket file: a newer producer may have replaced it
	 * after zcv_server_end() closed the listener. */
	if (lstat(srv->path, &st) == 0 && st.st_dev == srv->sock_dev && st.st_ino == srv->sock_ino)
		unlink(srv->path);
	close(srv->timer_fd);
	close(srv->epfd);
	srv->depth--;
	reap(srv);
	free(srv);
	if (zcv_fd_dispose_flush(DESTROY_FLUSH_NS) < 0)
		zcv_debug("server: fds of departed consumers still closing");
}

int zcv_server_get_fd(struct zcv_server *srv)
{
	return srv->epfd;
}

int zcv_server_dispatch(struct zcv_server *srv)
{
	struct epoll_event events[32];
	int n, r = 0;

	srv->depth++;
	for (int round = 0; round < 4; round++) {
		n = epoll_wait(srv->epfd, events, ZCV_ARRAY_SIZE(events), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			void *p = events[i].data.ptr;

			if (p == &srv->listen_fd) {
				accept_all(srv);
			} else if (p == &srv->timer_fd) {
				uint64_t ticks;

				if (read(srv->timer_fd, &ticks, sizeof(ticks)) < 0 &&
				    errno != EAGAIN)
					zcv_debug("server: timerfd read: %s", strerror(errno));
				srv->timer_deadline = 0;
			} else {
				struct consumer *c = p;

				if (!c->dead)
					consumer_read(c);
			}
		}
		if (n < (int)ZCV_ARRAY_SIZE(events))
			break;
	}
	check_timeouts(srv);
	timer_update(srv);
	leave(srv);
	return r;
}

static int copy_frame(struct consumer *c, unsigned src_idx, unsigned *ret_idx)
{
	struct zcv_server *srv = c->srv;
	struct zcv_pool *src = srv->pool, *dst = c->copy_pool;
	struct zcv_buffer *sb = &src->buffers[src_idx], *db;
	uint64_t n = 0;
	int r;

	db = zcv_pool_acquire(dst);
	if (!db)
		return -EAGAIN;
	r = zcv_pool_map(dst, db->index, PROT_READ | PROT_WRITE);
	if (r < 0)
		goto fail;
	/* Mapped once, lazily, for all copy consumers. Read-write like the
	 * producer's own zcv_pool_map() would be, since the mapping is shared
	 * with it; a read-only export falls back to PROT_READ. */
	r = zcv_pool_map(src, src_idx, PROT_READ | PROT_WRITE);
	if (r == -EACCES)
		r = zcv_pool_map(src, src_idx, PROT_READ);
	if (r < 0)
		goto fail;
	/* CPU access to a DMA-BUF is bracketed; memfds need nothing (and are
	 * spared the syscalls) */
	if (src->kind == ZCV_MEMORY_DMABUF)
		zcv_buffer_begin_access(sb, ZCV_SYNC_READ);
	for (unsigned p = 0; p < src->layout.n_planes; p++) {
		const struct zcv_plane_layout *sp = &src->layout.planes[p],
					      *dp = &dst->layout.planes[p];
		const struct zcv_format_info *fi = zcv_format_lookup(src->layout.fourcc);
		uint8_t *d = zcv_buffer_plane(dst, db, p);
		const uint8_t *sr = zcv_buffer_plane(src, sb, p);

		if (sp->stride == dp->stride) {
			uint32_t size = ZCV_MIN(sp->size, dp->size);

			zcv_frame_copy(d, sr, size);
			n += size;
			continue;
		}
		/* the consumer's own stride: line by line, the visible bytes only
		 * (either stride may be the larger one) */
		for (uint32_t y = 0; y < zcv_format_plane_lines(fi, p, src->layout.height); y++) {
			uint32_t row = zcv_format_plane_row_bytes(fi, p, src->layout.width);

			zcv_frame_copy(d + (size_t)y * dp->stride, sr + (size_t)y * sp->stride,
				       row);
			n += row;
		}
	}
	if (src->kind == ZCV_MEMORY_DMABUF)
		zcv_buffer_end_access(sb, ZCV_SYNC_READ);
	c->info.copied_bytes += n;
	srv->copied_bytes += n;
	*ret_idx = db->index;
	return 0;
fail:
	zcv_pool_lend(dst, db->index, 0);
	return r;
}

static void add_hold(struct consumer *c, struct zcv_pool *pool, unsigned idx, uint64_t seq,
		     uint64_t now, bool private_pool)
{
	c->holds[c->n_holds++] = (struct hold){
		.pool = pool,
		.generation = pool->generation,
		.index = idx,
		.sequence = seq,
		.since_ns = now,
		.private_pool = private_pool,
		.latest = c->keeps_latest,
	};
	c->info.held = c->n_holds;
	c->info.frames_sent++;
}

/* Sends frame idx (message f, filled but for generation and index) to
 * consumer c if it may take it; counts what was lent and sent. */
static void publish_to(struct consumer *c, unsigned idx, const struct zcv_frame_meta *meta,
		       struct zcv_msg_frame *f, size_t len, uint64_t now, unsigned *lent, int *got)
{
	struct zcv_server *srv = c->srv;
	bool copy = c->info.path == ZCV_PATH_COPY;
	unsigned send_idx = idx;
	int r;

	if (c->info.state != ZCV_CONSUMER_STREAMING)
		return;
	/* A newer frame exists for it (whether it gets it or is skipped):
	 * the frame it kept is an ordinary hold from now on. */
	for (unsigned i = 0; i < c->n_holds; i++)
		if (c->holds[i].latest) {
			c->holds[i].latest = false;
			c->holds[i].since_ns = now;
		}
	if (c->n_holds >= c->info.max_hold) {
		c->info.skipped++;
		return;
	}
	if (copy) {
		r = copy_frame(c, idx, &send_idx);
		if (r == -EAGAIN) {
			c->info.skipped++;
			return;
		}
		if (r < 0) {
			c->pending_error = r;
			return;
		}
	}
	f->generation = consumer_pool(c)->generation;
	f->index = send_idx;
	f->hdr.version = (uint16_t)c->version;
	r = zcv_msg_send(c->fd, f, len, NULL, 0);
	if (r < 0) {
		/* Never block on a consumer: a full socket means it stopped reading. */
		c->pending_error = r == -EAGAIN ? -ENOBUFS : r;
		if (copy)
			zcv_pool_lend(c->copy_pool, send_idx, 0);
		return;
	}
	if (copy) {
		zcv_pool_lend(c->copy_pool, send_idx, 1);
		add_hold(c, c->copy_pool, send_idx, meta->sequence, now, true);
	} else {
		add_hold(c, srv->pool, idx, meta->sequence, now, false);
		(*lent)++;
	}
	(*got)++;
}

int zcv_server_publish(struct zcv_server *srv, unsigned idx, const struct zcv_frame_meta *meta)
{
	static const struct zcv_frame_meta no_meta;
	struct zcv_pool *pool = srv->pool;
	struct consumer *c, *next;
	struct zcv_msg_frame f;
	unsigned lent = 0;
	uint64_t now;
	size_t len;
	int got = 0, r;

	if (idx >= pool->n_buffers || pool->buffers[idx].state != ZCV_BUFFER_PRODUCER)
		return -EINVAL;
	if (!meta)
		meta = &no_meta;
	srv->depth++;
	now = zcv_now_ns();
	len = zcv_msg_init(&f, ZCV_MSG_FRAME);
	f.index = idx;
	f.sequence = meta->sequence;
	f.timestamp_ns = meta->timestamp_ns;
	f.flags = meta->flags;
	for (unsigned p = 0; p < pool->layout.n_planes; p++)
		f.bytesused[p] =
			meta->bytesused[p] && meta->bytesused[p] <= pool->layout.planes[p].size ?
				meta->bytesused[p] :
				pool->layout.planes[p].size;
	pool->buffers[idx].sequence = meta->sequence;

	/* Zero-copy consumers first: a copy takes the frame's size in time
	 * (milliseconds at 4K), and nobody who needs none waits for it. */
	for (int pass = 0; pass < 2; pass++)
		for (c = srv->consumers; c && !srv->ended; c = c->next)
			if ((c->info.path == ZCV_PATH_COPY) == (pass == 1))
				publish_to(c, idx, meta, &f, len, now, &lent, &got);
	/* Lent before any drop below, which gives back the holds just taken. */
	zcv_pool_lend(pool, idx, lent);

	for (c = srv->consumers; c; c = next) {
		next = c->next;
		if (!c->pending_error)
			continue;
		r = c->pending_error;
		c->pending_error = 0;
		if (r == -ENOBUFS)
			consumer_drop(c, r, "too slow: socket full", false);
		else
			consumer_dropf(c, r, r != -EPIPE && r != -ECONNRESET,
				       "cannot deliver a frame (%s)", strerror(-r));
	}
	timer_update(srv);
	leave(srv);
	return got;
}

int zcv_server_set_pool(struct zcv_server *srv, struct zcv_pool *pool)
{
	struct consumer *c, *next;

	if (pool_check(pool) < 0 || pool->generation <= srv->pool->generation)
		return -EINVAL;
	srv->depth++;
	srv->pool = pool;
	/* the new pool's budget is granted anew, in order of arrival */
	for (c = srv->consumers; c; c = c->next)
		grant_return(c);
	for (c = srv->consumers; c; c = next) {
		int r;

		next = c->next;
		if (c->info.state != ZCV_CONSUMER_STREAMING || srv->ended)
			continue;
		retire_copy_pool(c);
		r = consumer_setup_path(c);
		if (r < 0) {
			consumer_dropf(c, r, true, "cannot create a copy pool (%s)", strerror(-r));
			continue;
		}
		r = send_pool(c);
		if (r < 0)
			consumer_dropf(c, r == -EAGAIN ? -ENOBUFS : r, false,
				       "cannot send the new pool (%s)", strerror(-r));
	}
	leave(srv);
	return 0;
}

void zcv_server_set_source(struct zcv_server *srv, bool present, const char *reason)
{
	struct consumer *c, *next;

	if (srv->ended || srv->source_lost == !present)
		return;
	srv->depth++;
	srv->source_lost = !present;
	snprintf(srv->source_reason, sizeof(srv->source_reason), "%s", reason ? reason : "");
	for (c = srv->consumers; c; c = next) {
		int r;

		next = c->next;
		if (c->info.state != ZCV_CONSUMER_STREAMING || c->dead)
			continue;
		r = send_status(c);
		if (r < 0)
			consumer_dropf(c, r, false, "cannot send STATUS (%s)", strerror(-r));
	}
	timer_update(srv);
	leave(srv);
}

void zcv_server_end(struct zcv_server *srv, int error, const char *reason)
{
	struct consumer *c, *next;

	if (srv->ended)
		return;
	srv->depth++;
	srv->ended = true;
	srv->end_error = error > 0 ? -error : error;
	snprintf(srv->end_reason, sizeof(srv->end_reason), "%s",
		 reason ? reason : (error ? "stream failed" : "end of stream"));
	stop_listening(srv);
	for (c = srv->consumers; c; c = next) {
		next = c->next;
		if (c->info.state != ZCV_CONSUMER_STREAMING || c->n_holds == 0) {
			consumer_drop(c, srv->end_error, srv->end_reason, true);
		} else {
			send_bye(c, srv->end_error, srv->end_reason);
			/* Told already: stats taken before it hands its frames
			 * back say why it is leaving (its own goodbye, if it
			 * says one, replaces this). */
			c->info.end_error = srv->end_error;
			snprintf(c->info.end_reason, sizeof(c->info.end_reason), "%s",
				 srv->end_reason);
		}
	}
	timer_update(srv);
	leave(srv);
}

static int info_cmp(const void *a, const void *b)
{
	const struct zcv_consumer_info *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

unsigned zcv_server_get_consumers(struct zcv_server *srv, struct zcv_consumer_info *out,
				  unsigned max)
{
	unsigned n = 0, total = srv->n_departed + srv->n_consumers;
	struct zcv_consumer_info *all;

	if (!out || !max)
		return 0;
	all = calloc(total ? total : 1, sizeof(*all));
	if (!all)
		return 0;
	for (unsigned i = 0; i < srv->n_departed; i++) {
		unsigned k =
			(srv->departed_next + DEPARTED_MAX - srv->n_departed + i) % DEPARTED_MAX;

		all[n++] = srv->departed[k];
	}
	for (struct consumer *c = srv->consumers; c; c = c->next) {
		all[n] = c->info;
		all[n++].held = c->n_holds;
	}
	qsort(all, n, sizeof(*all), info_cmp);
	n = ZCV_MIN(n, max);
	memcpy(out, all, n * sizeof(*all));
	free(all);
	return n;
}

void zcv_server_get_budget(struct zcv_server *srv, unsigned *ret_total, unsigned *ret_granted)
{
	if (ret_total)
		*ret_total = budget_total(srv);
	if (ret_granted)
		*ret_granted = srv->granted;
}

unsigned zcv_server_streaming_count(struct zcv_server *srv)
{
	unsigned n = 0;

	for (struct consumer *c = srv->consumers; c; c = c->next)
		n += c->info.state == ZCV_CONSUMER_STREAMING;
	return n;
}

uint64_t zcv_server_copied_bytes(struct zcv_server *srv)
{
	return srv->copied_bytes;
}

const char *zcv_server_socket_path(struct zcv_server *srv)
{
	return srv->path;
}
