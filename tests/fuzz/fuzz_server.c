/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the server's receive path.
 *
 * A real zcv_server over a small sealed memfd pool (a second pool, the
 * next generation, for FS_OP_SET_POOL), bound in a temporary directory,
 * and up to FS_MAX_CONNS raw consumer sockets that the input (fuzz_ops.h,
 * "fuzz_server") makes write HELLO, RELEASE, BYE, producer-only messages
 * and garbage, with lies in them and fds attached, interleaved with
 * zcv_server_publish() of free buffers, admission, a pool change and the
 * end of the stream. zcv_server_dispatch() runs after each op unless the op
 * batches. The hold and handshake timeouts are an hour, so nothing depends
 * on the clock.
 *
 * What must hold, whatever consumers send:
 * - no crash, no sanitizer report; dispatch and publish never fail;
 * - what the server sends validates; fds only with BUFFER, sealed memfds
 *   on the memfd and copy paths; a FRAME only of an announced buffer;
 * - to a consumer that keeps the rules, never more frames than the
 *   max_hold it was granted, never a buffer it still holds;
 * - after every consumer hung up, dispatch brings the server back to no
 *   consumer, every pool buffer is back (none LENT), and after
 *   zcv_server_destroy() no fd and no mapping more than before.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>
#include <zcv/format.h>
#include <zcv/memory.h>
#include <zcv/pool.h>
#include <zcv/server.h>
#include "fuzz_common.h"
#include "fuzz_seed.h"
#include "protocol.h"
#include "wire.h"

#define MAX_HELD 64
/* Hold and handshake timeouts: an hour, so no run depends on the clock. */
#define HOLD_TIMEOUT_NS (3600ull * 1000000000ull)

static char dir[64], sock_path[128];
static struct zcv_pool *pools[2]; /* generations 1 and 2 */
static bool verbose;              /* $ZCV_FUZZ_VERBOSE: what each input did, on stderr */
static unsigned n_welcomes, n_frames;

union pkt {
	union zcv_msg m;
	uint8_t raw[640];
};

struct held {
	uint32_t generation, index;
	uint64_t sequence;
};

struct conn {
	int fd; /* -1: none */
	bool no_read;
	bool tainted; /* sent something outside the rules: no hold checks */
	bool welcomed;
	uint32_t generation;
	unsigned n_buffers, max_hold, path;
	struct held held[MAX_HELD];
	unsigned n_held;
};

struct srun {
	struct fz in;
	struct fs_config cfg;
	struct zcv_server *srv;
	struct zcv_pool *pool;
	bool switched;
	uint64_t sequence;
	struct conn conns[FS_MAX_CONNS];
	unsigned joined, left, republished;
	bool in_free;
};

static struct srun run;

static struct conn *pick(struct srun *r, uint8_t v)
{
	return &r->conns[v % FS_MAX_CONNS];
}

static void forget(struct conn *c, unsigned i)
{
	c->held[i] = c->held[--c->n_held];
}

/* Checks a message from the server against what it announced. */
static void got_message(struct conn *c, const union zcv_msg *m, int *fds, unsigned n_fds)
{
	switch (m->hdr.type) {
	case ZCV_MSG_WELCOME:
		n_welcomes++;
		c->welcomed = true;
		c->generation = m->welcome.generation;
		c->n_buffers = m->welcome.n_buffers;
		c->max_hold = m->welcome.max_hold;
		c->path = m->welcome.path;
		break;
	case ZCV_MSG_BUFFER:
		FUZZ_CHECK(c->welcomed && m->buffer.generation == c->generation &&
				   m->buffer.index < c->n_buffers,
			   "BUFFER g%u b%u, announced g%u with %u buffers", m->buffer.generation,
			   m->buffer.index, c->generation, c->n_buffers);
		for (unsigned f = 0; f < n_fds && c->path != ZCV_PATH_DMABUF; f++)
			FUZZ_CHECK(zcv_memfd_check_sealed(fds[f], m->buffer.fd_size[f], NULL) == 0,
				   "BUFFER fd %u is not a sealed memfd of %llu bytes", f,
				   (unsigned long long)m->buffer.fd_size[f]);
		break;
	case ZCV_MSG_FRAME:
		FUZZ_CHECK(c->welcomed && m->frame.generation == c->generation &&
				   m->frame.index < c->n_buffers,
			   "FRAME g%u b%u, announced g%u with %u buffers", m->frame.generation,
			   m->frame.index, c->generation, c->n_buffers);
		if (!c->tainted) {
			FUZZ_CHECK(c->n_held < c->max_hold, "FRAME %llu past max_hold %u",
				   (unsigned long long)m->frame.sequence, c->max_hold);
			for (unsigned i = 0; i < c->n_held; i++)
				FUZZ_CHECK(c->held[i].generation != m->frame.generation ||
						   c->held[i].index != m->frame.index,
					   "FRAME %llu in buffer %u the consumer holds",
					   (unsigned long long)m->frame.sequence, m->frame.index);
		}
		n_frames++;
		if (c->n_held < MAX_HELD)
			c->held[c->n_held++] = (struct held){ m->frame.generation, m->frame.index,
							      m->frame.sequence };
		break;
	case ZCV_MSG_BYE:
		break;
	default:
		FUZZ_CHECK(0, "the server sent a %s", zcv_msg_type_name(m->hdr.type));
	}
}

static void read_conn(struct conn *c)
{
	while (c->fd >= 0) {
		union zcv_msg m;
		int fds[ZCV_MSG_MAX_FDS];
		unsigned n_fds = 0;
		int ret = zcv_msg_read(c->fd, &m, fds, &n_fds);

		if (ret == -EAGAIN || ret == 0 || ret == -ECONNRESET || ret == -EPIPE)
			return;
		FUZZ_CHECK(ret > 0, "reading the server: %d", ret);
		got_message(c, &m, fds, n_fds);
		for (unsigned i = 0; i < n_fds; i++)
			close(fds[i]);
	}
}

static void on_joined(void *data, const struct zcv_consumer_info *info)
{
	struct srun *r = data;

	FUZZ_CHECK(info->state == ZCV_CONSUMER_STREAMING, "joined in state %d", info->state);
	FUZZ_CHECK(info->path >= ZCV_PATH_DMABUF && info->path <= ZCV_PATH_COPY, "path %d",
		   info->path);
	FUZZ_CHECK(memchr(info->name, '\0', sizeof(info->name)), "name not terminated");
	r->joined++;
}

static void on_left(void *data, const struct zcv_consumer_info *info)
{
	struct srun *r = data;

	FUZZ_CHECK(info->state == ZCV_CONSUMER_GONE, "left in state %d", info->state);
	FUZZ_CHECK(memchr(info->end_reason, '\0', sizeof(info->end_reason)),
		   "reason not terminated");
	r->left++;
	FUZZ_CHECK(r->left <= r->joined, "%u left, %u joined", r->left, r->joined);
}

static void on_hello(void *data, const struct zcv_consumer_info *info)
{
	FUZZ_CHECK(info->hello_seen && info->state == ZCV_CONSUMER_HANDSHAKE,
		   "hello callback in state %d", info->state);
}

static const struct zcv_server_callbacks server_cbs = {
	.consumer_joined = on_joined,
	.consumer_left = on_left,
	.consumer_hello = on_hello,
};

static void publish_one(struct srun *r, uint32_t flags);

/* A buffer came back: with FS_CFG_REPUBLISH the producer fills a free one
 * at once, from inside whatever call gave the buffer back. */
static void on_free(void *data, struct zcv_pool *pool, struct zcv_buffer *buf)
{
	struct srun *r = data;

	if (!r->srv || r->in_free || !(r->cfg.flags & FS_CFG_REPUBLISH) || pool != r->pool ||
	    r->republished >= 64)
		return;
	r->in_free = true;
	r->republished++;
	publish_one(r, 0);
	r->in_free = false;
}

static void check_consumers(struct srun *r)
{
	struct zcv_consumer_info info[96];
	unsigned n = zcv_server_get_consumers(r->srv, info, 96);

	for (unsigned i = 0; i < n; i++) {
		FUZZ_CHECK(memchr(info[i].name, '\0', sizeof(info[i].name)), "name not terminated");
		FUZZ_CHECK(memchr(info[i].end_reason, '\0', sizeof(info[i].end_reason)),
			   "reason not terminated");
		FUZZ_CHECK(info[i].state <= ZCV_CONSUMER_GONE, "state %d", info[i].state);
	}
}

static unsigned live_consumers(struct srun *r)
{
	struct zcv_consumer_info info[96];
	unsigned n = zcv_server_get_consumers(r->srv, info, 96), live = 0;

	for (unsigned i = 0; i < n; i++)
		live += info[i].state != ZCV_CONSUMER_GONE;
	return live;
}

static void dispatch(struct srun *r)
{
	int ret = zcv_server_dispatch(r->srv);

	FUZZ_CHECK(ret == 0, "dispatch: %d", ret);
	for (unsigned i = 0; i < FS_MAX_CONNS; i++)
		if (!r->conns[i].no_read)
			read_conn(&r->conns[i]);
	check_consumers(r);
}

/* Mutates (the input's mutation block), attaches fds, sends. A message
 * changed by a mutation taints the connection. */
static void send_pkt(struct srun *r, struct conn *c, union pkt *p, size_t len, bool clean)
{
	struct fuzz_extra_fds extra;
	union pkt orig = *p;
	size_t orig_len = len;
	int fds[FUZZ_MAX_FDS];
	unsigned n_fds = 0;

	len = fuzz_mutate(&r->in, p->raw, len, sizeof(p->raw), &extra);
	for (unsigned i = 0; i < extra.n; i++) {
		int fd = fuzz_make_fd(extra.kind[i], 4096, NULL);

		if (fd >= 0)
			fds[n_fds++] = fd;
	}
	if (!clean || len != orig_len || memcmp(p->raw, orig.raw, len) || n_fds)
		c->tainted = true;
	if (c->fd >= 0)
		(void)fuzz_send(c->fd, p->raw, len, fds, n_fds, extra.split);
	for (unsigned i = 0; i < n_fds; i++)
		close(fds[i]);
}

static void op_connect(struct srun *r)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct fs_connect o;
	struct conn *c = NULL;

	fz_take(&r->in, &o, sizeof(o));
	for (unsigned i = 0; i < FS_MAX_CONNS && !c; i++)
		if (r->conns[i].fd < 0)
			c = &r->conns[i];
	if (!c)
		return;
	memset(c, 0, sizeof(*c));
	c->no_read = o.flags & FS_CONN_NO_READ;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock_path);
	c->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	FUZZ_CHECK(c->fd >= 0, "socket: %d", errno);
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		/* the server stopped listening (end) or its backlog is full */
		close(c->fd);
		c->fd = -1;
	}
}

static void op_hello(struct srun *r)
{
	struct fs_hello o;
	union pkt p;
	size_t len = zcv_msg_init(&p.m, ZCV_MSG_HELLO);
	struct zcv_msg_hello *m = &p.m.hello;
	struct conn *c;

	fz_take(&r->in, &o, sizeof(o));
	c = pick(r, o.conn);
	m->hdr.version = o.version ? o.version : ZCV_PROTOCOL_VERSION;
	m->min_version = o.min_version ? o.min_version : ZCV_PROTOCOL_MIN_VERSION;
	m->caps = o.caps ? o.caps : ZCV_CAP_DMABUF | ZCV_CAP_MEMFD;
	/* HELLO flags from the bits of caps no capability uses: keeps-latest
	 * (bit 0) and bits the server must ignore */
	m->flags = (uint32_t)o.caps >> 4 | (uint32_t)o.max_hold << 24;
	m->max_hold = o.max_hold;
	if (o.name_len)
		fz_take(&r->in, m->name, o.name_len % (sizeof(m->name) + 1));
	else
		strcpy(m->name, "fuzz");
	if (o.constraints) {
		struct fs_constraints k;

		fz_take(&r->in, &k, sizeof(k));
		for (unsigned pl = 0; pl < ZCV_MAX_PLANES; pl++)
			m->min_plane_size[pl] = 16u * fz_le16(k.min_plane_size[pl]);
		m->stride_align = 1u << (k.stride_align % 16);
		m->height_align = 1u << (k.height_align % 16);
	}
	send_pkt(r, c, &p, len, true);
}

static void op_release(struct srun *r)
{
	struct fs_release o;
	union pkt p;
	size_t len = zcv_msg_init(&p.m, ZCV_MSG_RELEASE);
	struct zcv_msg_release *m = &p.m.release;
	struct held h = { 0 };
	struct conn *c;
	bool clean = false;
	unsigned which = 0;

	fz_take(&r->in, &o, sizeof(o));
	c = pick(r, o.conn);
	if (c->n_held) {
		which = o.which % c->n_held;
		h = c->held[which];
		clean = true;
	}
	if (o.forge) {
		struct fs_forge f;

		fz_take(&r->in, &f, sizeof(f));
		h.generation += (uint32_t)(int8_t)f.gen;
		h.index = f.index ? f.index - 1u : h.index;
		h.sequence += (uint64_t)(int64_t)(int8_t)f.seq;
		clean = clean && !memcmp(&h, &c->held[which], sizeof(h));
	}
	m->generation = h.generation;
	m->index = h.index;
	m->sequence = h.sequence;
	if (clean)
		forget(c, which);
	send_pkt(r, c, &p, len, clean);
}

static void op_bye(struct srun *r)
{
	struct fs_bye o;
	union pkt p;
	size_t len;
	struct conn *c;

	fz_take(&r->in, &o, sizeof(o));
	c = pick(r, o.conn);
	len = zcv_msg_init_bye(&p.m.bye, -(int)o.error, "fuzz says bye");
	send_pkt(r, c, &p, len, false);
}

static void op_raw(struct srun *r)
{
	union pkt p;
	struct conn *c = pick(r, fz_u8(&r->in));
	size_t len = fz_u16(&r->in) % (sizeof(p.raw) + 1);

	fz_take(&r->in, p.raw, len);
	send_pkt(r, c, &p, len, false);
}

/* A producer-only message from a consumer; a BUFFER with an fd. */
static void op_other(struct srun *r)
{
	struct fs_other o;
	union pkt p;
	size_t len;
	struct conn *c;
	int fd;

	fz_take(&r->in, &o, sizeof(o));
	c = pick(r, o.conn);
	switch (o.type % 3) {
	case 0:
		len = zcv_msg_init(&p.m, ZCV_MSG_WELCOME);
		break;
	case 1:
		len = zcv_msg_init(&p.m, ZCV_MSG_BUFFER);
		p.m.buffer.n_fds = 1;
		p.m.buffer.fd_size[0] = 4096;
		fd = fuzz_memfd(4096, F_SEAL_SHRINK | F_SEAL_GROW);
		if (fd >= 0 && c->fd >= 0)
			(void)fuzz_send(c->fd, p.raw, len, &fd, 1, false);
		if (fd >= 0)
			close(fd);
		c->tainted = true;
		return;
	default:
		len = zcv_msg_init(&p.m, ZCV_MSG_FRAME);
		break;
	}
	send_pkt(r, c, &p, len, false);
}

static void publish_one(struct srun *r, uint32_t flags)
{
	struct zcv_buffer *b = zcv_pool_acquire(r->pool);
	struct zcv_frame_meta meta = { 0 };
	int ret;

	if (!b)
		return;
	meta.sequence = ++r->sequence;
	meta.timestamp_ns = r->sequence * 1000;
	meta.flags = flags;
	ret = zcv_server_publish(r->srv, b->index, &meta);
	FUZZ_CHECK(ret >= 0, "publish: %d", ret);
	/* (with FS_CFG_REPUBLISH it may have come back and gone out again) */
	FUZZ_CHECK(b->state == ZCV_BUFFER_FREE || b->state == ZCV_BUFFER_LENT,
		   "buffer %u in state %d after publish", b->index, b->state);
}

static void op_publish(struct srun *r)
{
	struct fs_publish o;
	unsigned n;

	fz_take(&r->in, &o, sizeof(o));
	n = o.count ? o.count % 8 : 1;
	for (unsigned i = 0; i < n; i++)
		publish_one(r, o.flags);
}

static void op_close(struct srun *r)
{
	struct fs_close o;
	struct conn *c;

	fz_take(&r->in, &o, sizeof(o));
	c = pick(r, o.conn);
	if (c->fd < 0)
		return;
	switch (o.how % 3) {
	case 0:
		close(c->fd);
		c->fd = -1;
		break;
	case 1:
		shutdown(c->fd, SHUT_WR);
		c->tainted = true;
		break;
	default:
		shutdown(c->fd, SHUT_RDWR);
		c->tainted = true;
		break;
	}
}

static void op_end(struct srun *r)
{
	struct fs_end o;

	fz_take(&r->in, &o, sizeof(o));
	zcv_server_end(r->srv, -(int)o.error, NULL);
}

/* Mappings of zcv's pool memfds ("/memfd:zcv-") in this process. */
static unsigned count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	unsigned n = 0;

	if (!f)
		abort();
	while (fgets(line, sizeof(line), f))
		n += strstr(line, "/memfd:zcv-") != NULL;
	fclose(f);
	return n;
}

static void run_one(const uint8_t *data, size_t size, bool check)
{
	struct srun *r = &run;
	struct zcv_server_config cfg = { 0 };
	int before = fuzz_count_fds(), after, ret;
	unsigned maps_before = count_maps(), maps_after, live = 0;

	memset(r, 0, sizeof(*r));
	n_welcomes = n_frames = 0;
	for (unsigned i = 0; i < FS_MAX_CONNS; i++)
		r->conns[i].fd = -1;
	r->in = (struct fz){ data, size };
	r->pool = pools[0];
	fz_take(&r->in, &r->cfg, sizeof(r->cfg));
	cfg.socket_path = sock_path;
	cfg.max_hold = r->cfg.max_hold ? 1 + r->cfg.max_hold % 4u : 0;
	cfg.hold_timeout_ns = HOLD_TIMEOUT_NS;
	cfg.max_consumers = r->cfg.max_consumers ? 1 + r->cfg.max_consumers % 4u : 0;
	cfg.fps_num = 30;
	cfg.fps_den = 1;
	cfg.defer_admission = r->cfg.flags & FS_CFG_DEFER;
	cfg.source_reserve = r->cfg.reserve % 4;
	cfg.handshake_timeout_ns = HOLD_TIMEOUT_NS;
	cfg.handshake_quota = r->cfg.quota ? 1 + r->cfg.quota % 4u : 0;
	for (unsigned i = 0; i < 2; i++) {
		pools[i]->on_free = on_free;
		pools[i]->on_free_data = r;
	}
	ret = zcv_server_create(&cfg, &server_cbs, r, r->pool, &r->srv);
	FUZZ_CHECK(ret == 0, "server create: %d", ret);

	while (!fz_done(&r->in)) {
		uint8_t op = fz_u8(&r->in);

		switch ((op & ~FUZZ_OP_BATCH) % FS_OP_COUNT) {
		case FS_OP_CONNECT:
			op_connect(r);
			break;
		case FS_OP_HELLO:
			op_hello(r);
			break;
		case FS_OP_RELEASE:
			op_release(r);
			break;
		case FS_OP_BYE:
			op_bye(r);
			break;
		case FS_OP_RAW:
			op_raw(r);
			break;
		case FS_OP_OTHER:
			op_other(r);
			break;
		case FS_OP_PUBLISH:
			op_publish(r);
			break;
		case FS_OP_READ:
			read_conn(pick(r, fz_u8(&r->in)));
			break;
		case FS_OP_CLOSE:
			op_close(r);
			break;
		case FS_OP_ADMIT:
			FUZZ_CHECK(zcv_server_admit(r->srv) >= 0, "admit failed");
			break;
		case FS_OP_SET_POOL:
			if (!r->switched) {
				/* first: buffers of the old pool coming back inside
				 * set_pool must not be published again */
				r->pool = pools[1];
				r->switched = true;
				ret = zcv_server_set_pool(r->srv, pools[1]);
				FUZZ_CHECK(ret == 0, "set_pool: %d", ret);
			}
			break;
		case FS_OP_END:
			op_end(r);
			break;
		}
		if (!(op & FUZZ_OP_BATCH))
			dispatch(r);
	}

	if (verbose) {
		struct zcv_consumer_info info[96];
		unsigned n = zcv_server_get_consumers(r->srv, info, 96);

		fprintf(stderr, "fuzz_server: %u WELCOMEs, %u FRAMEs received\n", n_welcomes,
			n_frames);
		for (unsigned i = 0; i < n; i++)
			fprintf(stderr,
				"  consumer %u: state %d path %d max_hold %u sent %llu: %d %s\n",
				info[i].id, info[i].state, info[i].path, info[i].max_hold,
				(unsigned long long)info[i].frames_sent, info[i].end_error,
				info[i].end_reason);
	}
	/* Every consumer hangs up; the server must notice and take back all. */
	for (unsigned i = 0; i < FS_MAX_CONNS; i++)
		if (r->conns[i].fd >= 0)
			close(r->conns[i].fd);
	for (unsigned i = 0; i < 64; i++) {
		ret = zcv_server_dispatch(r->srv);
		FUZZ_CHECK(ret == 0, "dispatch: %d", ret);
		live = live_consumers(r);
		if (!live && i >= 1)
			break;
	}
	FUZZ_CHECK(live == 0, "%u consumers still there after every one hung up", live);
	for (unsigned i = 0; i < 2; i++) {
		unsigned lent = zcv_pool_count(pools[i], ZCV_BUFFER_LENT),
			 mine = zcv_pool_count(pools[i], ZCV_BUFFER_PRODUCER);

		FUZZ_CHECK(lent == 0 && mine == 0, "pool %u: %u buffers lent, %u not back", i, lent,
			   mine);
	}
	FUZZ_CHECK(r->left == r->joined, "%u joined, %u left", r->joined, r->left);
	r->cfg.flags &= (uint8_t)~FS_CFG_REPUBLISH;
	zcv_server_destroy(r->srv);
	r->srv = NULL;
	if (!check)
		return;
	maps_after = count_maps();
	FUZZ_CHECK(maps_after == maps_before, "%u pool mappings before, %u after", maps_before,
		   maps_after);
	after = fuzz_settle_fds();
	FUZZ_CHECK(after == before, "fds leaked: %d before, %d after", before, after);
}

static void cleanup(void)
{
	zcv_pool_destroy(pools[0]);
	zcv_pool_destroy(pools[1]);
	unlink(sock_path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct seed warm = { .n = 0 };
	struct zcv_layout l[2];

	verbose = getenv("ZCV_FUZZ_VERBOSE") != NULL;
	strcpy(dir, "/tmp/zcv-fuzz-server-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(sock_path, sizeof(sock_path), "%s/s.sock", dir);
	if (zcv_format_layout(ZCV_FMT_NV12, 16, 8, 1, &l[0]) < 0 ||
	    zcv_format_layout(ZCV_FMT_YUYV, 8, 4, 1, &l[1]) < 0 ||
	    zcv_pool_create_memfd(&l[0], 6, 1, &pools[0]) < 0 ||
	    zcv_pool_create_memfd(&l[1], 3, 2, &pools[1]) < 0)
		abort();
	/* Mapped once here, as a producer would: the copy tier maps them
	 * lazily, which would otherwise look like a mapping leak. */
	for (unsigned p = 0; p < 2; p++)
		for (unsigned i = 0; i < pools[p]->n_buffers; i++)
			if (zcv_pool_map(pools[p], i, PROT_READ | PROT_WRITE) < 0)
				abort();
	atexit(cleanup);
	/* Warm-up: two consumers (one on the copy tier), frames, an fd sent
	 * along, so whatever the library opens once per process (the closer
	 * thread, libuuid) exists before the first count. */
	SEED_FIELDS(&warm, struct fs_config, .max_hold = 0);
	SEED_OP(&warm, FS_OP_CONNECT, struct fs_connect, .flags = 0);
	SEED_MSG(&warm, FS_OP_HELLO, struct fs_hello, .conn = 0);
	SEED_OP(&warm, FS_OP_CONNECT, struct fs_connect, .flags = 0);
	SEED_MSG(&warm, FS_OP_HELLO, struct fs_hello, .conn = 1, .caps = ZCV_CAP_NEEDS_COPY);
	SEED_OP(&warm, FS_OP_PUBLISH, struct fs_publish, .count = 2);
	SEED_BYTES(&warm, FS_OP_RELEASE);
	SEED_FIELDS(&warm, struct fs_release, .conn = 0);
	SEED_BYTES(&warm, FUZZ_MUT_FDS, 1, FUZZ_FD_PIPE);
	SEED_OP(&warm, FS_OP_END, struct fs_end, .error = 0);
	run_one(warm.b, warm.n, false);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run_one(data, size, true);
	return 0;
}
