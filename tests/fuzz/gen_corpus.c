/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpora of the fuzz targets: gen_corpus DIR makes
 * DIR/protocol, DIR/client and DIR/server with a handful of valid inputs
 * each (the formats of fuzz_ops.h). Protocol seeds are packets built from
 * protocol.h's structs as this build knows them, so regenerating after a
 * protocol change keeps them valid:
 *   cmake --build build-fuzz --target fuzz-corpus
 * rewrites tests/fuzz/corpus/ in the source tree.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "fuzz_seed.h"
#include "protocol.h"

static const char *out_dir;

static void save(const char *target, const char *name, const struct seed *s)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", out_dir, target);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s->b, 1, s->n, f) != s->n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* The header zcv_msg_init() writes. */
static void init_msg(void *msg, size_t size, unsigned type)
{
	struct zcv_msg_hdr *h = msg;

	memset(msg, 0, size);
	h->type = (uint16_t)type;
	h->version = ZCV_PROTOCOL_VERSION;
	h->size = (uint32_t)size;
}

static void protocol_seed(const char *name, uint8_t mode, uint8_t n_fds, const void *msg,
			  size_t len)
{
	struct seed s = { .n = 0 };

	SEED_FIELDS(&s, struct fp_head, .mode = mode, .n_fds = n_fds, .fd_kind = FUZZ_FD_SEALED);
	seed_put(&s, msg, len);
	save("protocol", name, &s);
}

static void protocol_seeds(void)
{
	struct zcv_msg_hello hello;
	struct zcv_msg_welcome w;
	struct zcv_msg_buffer b;
	struct zcv_msg_frame f;
	struct zcv_msg_release r;
	struct zcv_msg_bye bye;
	struct seed s = { .n = 0 };

	init_msg(&hello, sizeof(hello), ZCV_MSG_HELLO);
	hello.min_version = ZCV_PROTOCOL_MIN_VERSION;
	hello.caps = ZCV_CAP_DMABUF | ZCV_CAP_MEMFD;
	hello.max_hold = 2;
	strcpy(hello.name, "seed");
	protocol_seed("hello", 0, 0, &hello, sizeof(hello));
	protocol_seed("hello-socket", FP_MODE_SOCKET, 0, &hello, sizeof(hello));
	/* at the limits: the longest name, alignments asked for */
	memset(hello.name, 'n', sizeof(hello.name) - 1);
	hello.stride_align = 64;
	hello.height_align = 16;
	protocol_seed("hello-limits", 0, 0, &hello, sizeof(hello));
	strcpy(hello.name, "seed");
	hello.stride_align = hello.height_align = 0;
	hello.hdr.size = ZCV_MSG_HELLO_V1_SIZE;
	protocol_seed("hello-v1", 0, 0, &hello, ZCV_MSG_HELLO_V1_SIZE);

	/* NV12 16x8: Y 16x8, then UV 16x4 */
	init_msg(&w, sizeof(w), ZCV_MSG_WELCOME);
	w.version = ZCV_PROTOCOL_VERSION;
	w.path = ZCV_PATH_MEMFD;
	w.max_hold = 2;
	w.fourcc = ZCV_FMT_NV12;
	w.width = 16;
	w.height = 8;
	w.n_planes = 2;
	w.planes[0] = (struct zcv_wire_plane){ 0, 16, 128, 0 };
	w.planes[1] = (struct zcv_wire_plane){ 128, 16, 64, 0 };
	w.fps_num = 30;
	w.fps_den = 1;
	w.generation = 1;
	w.n_buffers = 2;
	w.frame_size = 192;
	protocol_seed("welcome", 0, 0, &w, sizeof(w));

	init_msg(&b, sizeof(b), ZCV_MSG_BUFFER);
	b.generation = 1;
	b.n_fds = 1;
	b.fd_size[0] = 192;
	protocol_seed("buffer", 0, 1, &b, sizeof(b));
	protocol_seed("buffer-socket", FP_MODE_SOCKET, 1, &b, sizeof(b));
	b.n_fds = 2;
	b.plane_fd[1] = 1;
	b.fd_size[1] = 192;
	protocol_seed("buffer-2fds-split", FP_MODE_SOCKET | FP_MODE_SPLIT, 2, &b, sizeof(b));

	init_msg(&f, sizeof(f), ZCV_MSG_FRAME);
	f.generation = 1;
	f.index = 1;
	f.sequence = 7;
	f.bytesused[0] = 128;
	f.bytesused[1] = 64;
	protocol_seed("frame", 0, 0, &f, sizeof(f));

	init_msg(&r, sizeof(r), ZCV_MSG_RELEASE);
	r.generation = 1;
	r.index = 1;
	r.sequence = 7;
	protocol_seed("release-socket", FP_MODE_SOCKET, 0, &r, sizeof(r));

	init_msg(&bye, sizeof(bye), ZCV_MSG_BYE);
	bye.error = -110;
	strcpy(bye.reason, "held too long");
	protocol_seed("bye", 0, 0, &bye, sizeof(bye));
	memset(bye.reason, 'r', sizeof(bye.reason) - 1); /* the longest reason */
	protocol_seed("bye-long", FP_MODE_SOCKET, 0, &bye, sizeof(bye));

	/* encoders: a BYE with a reason, a HELLO with a name */
	SEED_FIELDS(&s, struct fp_head, .mode = FP_MODE_ENCODE);
	SEED_FIELDS(&s, struct fp_encode, .type = ZCV_MSG_BYE, .error = 32, .text = "end");
	save("protocol", "encode-bye", &s);
	s.n = 0;
	SEED_FIELDS(&s, struct fp_head, .mode = FP_MODE_ENCODE);
	SEED_FIELDS(&s, struct fp_encode, .type = ZCV_MSG_HELLO, .text = "sink");
	save("protocol", "encode-hello", &s);
}

#define C_FRAME(s, p) SEED_MSG(s, FC_OP_FRAME, struct fc_frame, .policy = p)
#define C_POOL(s, ...) SEED_OP(s, FC_OP_POOL, struct fc_pool, __VA_ARGS__)

/* Frames and a BYE with an error queue up, then one dispatch. */
static void client_evicted_seed(const char *name, uint8_t flags)
{
	struct seed s = { .n = 0 };

	SEED_FIELDS(&s, struct fc_config, .caps = FC_CAPS_DEFAULT, .flags = flags);
	C_POOL(&s, .n_buffers = 0);
	C_FRAME(&s, FC_POLICY_HOLD);
	SEED_MSG(&s, FC_OP_FRAME | FUZZ_OP_BATCH, struct fc_frame, .policy = FC_POLICY_HOLD);
	SEED_MSG(&s, FC_OP_BYE | FUZZ_OP_BATCH, struct fc_bye, .error = 110, .reason_len = 20);
	SEED_BYTES(&s, FC_OP_DRAIN);
	SEED_OP(&s, FC_OP_RELEASE, struct fc_release, .which = 255);
	save("client", name, &s);
}

static void client_seeds(void)
{
	struct seed s = { .n = 0 };

	/* a pool, three frames released at once, end of stream */
	SEED_FIELDS(&s, struct fc_config, .caps = FC_CAPS_DEFAULT);
	C_POOL(&s, .n_buffers = 0);
	for (int i = 0; i < 3; i++)
		C_FRAME(&s, FC_POLICY_RELEASE);
	SEED_MSG(&s, FC_OP_BYE, struct fc_bye, .error = 0);
	save("client", "stream", &s);

	/* frames held, released later, a wrong release, a forged one */
	s.n = 0;
	SEED_FIELDS(&s, struct fc_config, .max_hold = 2);
	C_POOL(&s, .n_buffers = 3, .format = 1); /* 4 buffers of YUYV */
	C_FRAME(&s, FC_POLICY_HOLD);
	C_FRAME(&s, FC_POLICY_WRONG);
	SEED_OP(&s, FC_OP_RELEASE, struct fc_release, .which = 0);
	C_FRAME(&s, FC_POLICY_TWICE);
	SEED_OP(&s, FC_OP_RELEASE, struct fc_release, .which = 255);
	SEED_OP(&s, FC_OP_FORGE, struct fc_forge, .gen = 0);
	SEED_MSG(&s, FC_OP_BYE, struct fc_bye, .error = 0);
	save("client", "hold", &s);

	/* a new generation while a frame of the old one is held */
	s.n = 0;
	SEED_FIELDS(&s, struct fc_config, .caps = FC_CAPS_DEFAULT);
	C_POOL(&s, .n_buffers = 0);
	C_FRAME(&s, FC_POLICY_HOLD);
	C_POOL(&s, .n_buffers = 2, .format = 2, .fd_kind = FUZZ_FD_SEALED_RO); /* YUV420 x3 */
	C_FRAME(&s, FC_POLICY_HOLD);
	SEED_OP(&s, FC_OP_RELEASE, struct fc_release, .which = 255);
	C_FRAME(&s, FC_POLICY_RELEASE);
	save("client", "generations", &s);

	/* message by message: WELCOME, BUFFERs (one with a plane per fd) */
	s.n = 0;
	SEED_FIELDS(&s, struct fc_config, .caps = FC_CAPS_MEMFD);
	SEED_MSG(&s, FC_OP_WELCOME, struct fc_welcome, .n_buffers = 2);
	SEED_MSG(&s, FC_OP_BUFFER, struct fc_buffer, .index = 0);
	SEED_MSG(&s, FC_OP_BUFFER, struct fc_buffer, .n_fds = 2, .plane_fd = { 0, 1 });
	C_FRAME(&s, FC_POLICY_RELEASE);
	C_FRAME(&s, FC_POLICY_RELEASE);
	SEED_MSG(&s, FC_OP_BYE, struct fc_bye, .reason_len = 8);
	save("client", "explicit", &s);

	/* evicted: frames and a BYE with an error queue up, then one dispatch */
	client_evicted_seed("evicted", 0);

	/* the producer stops reading: releases back up in a small buffer */
	s.n = 0;
	SEED_FIELDS(&s, struct fc_config, .flags = FC_CFG_NO_DRAIN | FC_CFG_SMALL_SNDBUF);
	C_POOL(&s, .n_buffers = 31, .format = 3); /* 32 buffers of GREY */
	for (int i = 0; i < 20; i++)
		C_FRAME(&s, FC_POLICY_RELEASE);
	SEED_BYTES(&s, FC_OP_DRAIN);
	for (int i = 0; i < 5; i++)
		C_FRAME(&s, FC_POLICY_RELEASE);
	SEED_BYTES(&s, FC_OP_DRAIN);
	save("client", "backpressure", &s);

	/* the source goes and comes back between frames (STATUS, raw) */
	s.n = 0;
	SEED_FIELDS(&s, struct fc_config, .caps = FC_CAPS_DEFAULT);
	C_POOL(&s, .n_buffers = 0);
	C_FRAME(&s, FC_POLICY_HOLD);
	for (int i = 0; i < 2; i++) {
		struct zcv_msg_status st;
		uint16_t len = (uint16_t)sizeof(st);

		init_msg(&st, sizeof(st), ZCV_MSG_STATUS);
		st.flags = i == 0 ? ZCV_STATUS_SOURCE_LOST : 0;
		strcpy(st.reason, i == 0 ? "camera gone" : "back");
		SEED_BYTES(&s, FC_OP_RAW);
		seed_put(&s, &len, sizeof(len));
		seed_put(&s, &st, sizeof(st));
		SEED_BYTES(&s, 0);
	}
	C_FRAME(&s, FC_POLICY_RELEASE);
	SEED_OP(&s, FC_OP_RELEASE, struct fc_release, .which = 255);
	save("client", "source-status", &s);

	/* copy tier, no mapping, held at destroy, the producer hangs up */
	s.n = 0;
	SEED_FIELDS(&s, struct fc_config, .caps = FC_CAPS_COPY,
		    .flags = FC_CFG_NO_MAP | FC_CFG_KEEP_HELD);
	C_POOL(&s, .format = 4, .path = 2); /* XRGB8888, copy path */
	C_FRAME(&s, FC_POLICY_HOLD);
	C_FRAME(&s, FC_POLICY_RELEASE);
	SEED_OP(&s, FC_OP_HANGUP, struct fc_hangup, .how = 0);
	save("client", "copy-hangup", &s);

	/* a sink without a frame callback, on a loop of its own */
	s.n = 0;
	SEED_FIELDS(&s, struct fc_config, .flags = FC_CFG_NO_FRAME_CB | FC_CFG_WAIT);
	C_POOL(&s, .n_buffers = 1);
	for (int i = 0; i < 3; i++)
		C_FRAME(&s, FC_POLICY_RELEASE);
	save("client", "no-frame-callback", &s);

	/* zcv_client_wait_dispatch()'s blocking read: a stream, a backlog
	 * read in one wake-up, an eviction behind held frames */
	s.n = 0;
	SEED_FIELDS(&s, struct fc_config, .flags = FC_CFG_WAIT_BLOCK);
	C_POOL(&s, .n_buffers = 0);
	for (int i = 0; i < 3; i++)
		C_FRAME(&s, FC_POLICY_RELEASE);
	for (int i = 0; i < 10; i++)
		SEED_MSG(&s, FC_OP_FRAME | FUZZ_OP_BATCH, struct fc_frame,
			 .policy = FC_POLICY_RELEASE);
	C_FRAME(&s, FC_POLICY_HOLD);
	SEED_MSG(&s, FC_OP_BYE, struct fc_bye, .error = 0);
	save("client", "wait-block-stream", &s);
	client_evicted_seed("wait-block-evicted", FC_CFG_WAIT_BLOCK);
}

#define S_CONNECT(s, f) SEED_OP(s, FS_OP_CONNECT, struct fs_connect, .flags = f)
#define S_HELLO(s, ...) SEED_MSG(s, FS_OP_HELLO, struct fs_hello, __VA_ARGS__)
#define S_RELEASE(s, c) SEED_MSG(s, FS_OP_RELEASE, struct fs_release, .conn = c)
#define S_PUBLISH(s, n) SEED_OP(s, FS_OP_PUBLISH, struct fs_publish, .count = n)

static void server_seeds(void)
{
	struct seed s = { .n = 0 };

	/* one consumer: frames, releases, goodbye */
	SEED_FIELDS(&s, struct fs_config, .max_hold = 0);
	S_CONNECT(&s, 0);
	S_HELLO(&s, .conn = 0);
	S_PUBLISH(&s, 2);
	S_RELEASE(&s, 0);
	S_PUBLISH(&s, 1);
	S_RELEASE(&s, 0);
	S_RELEASE(&s, 0);
	SEED_MSG(&s, FS_OP_BYE, struct fs_bye, .conn = 0);
	save("server", "stream", &s);

	/* two consumers, one on the copy tier, one hangs up */
	s.n = 0;
	SEED_FIELDS(&s, struct fs_config, .max_hold = 2); /* 3 */
	S_CONNECT(&s, 0);
	S_CONNECT(&s, 0);
	S_HELLO(&s, .conn = 0);
	S_HELLO(&s, .conn = 1, .caps = ZCV_CAP_NEEDS_COPY, .max_hold = 3);
	S_PUBLISH(&s, 3);
	S_RELEASE(&s, 0);
	S_RELEASE(&s, 1);
	S_PUBLISH(&s, 1);
	SEED_OP(&s, FS_OP_CLOSE, struct fs_close, .conn = 1);
	S_PUBLISH(&s, 1);
	save("server", "two-consumers", &s);

	/* deferred admission */
	s.n = 0;
	SEED_FIELDS(&s, struct fs_config, .flags = FS_CFG_DEFER);
	S_CONNECT(&s, 0);
	S_HELLO(&s, .conn = 0);
	SEED_BYTES(&s, FS_OP_ADMIT);
	S_PUBLISH(&s, 1);
	S_RELEASE(&s, 0);
	save("server", "defer", &s);

	/* a new pool while frames of the old are held */
	s.n = 0;
	SEED_FIELDS(&s, struct fs_config, .max_hold = 0);
	S_CONNECT(&s, 0);
	S_HELLO(&s, .conn = 0);
	S_PUBLISH(&s, 2);
	SEED_BYTES(&s, FS_OP_SET_POOL);
	S_RELEASE(&s, 0);
	S_RELEASE(&s, 0);
	S_PUBLISH(&s, 1);
	S_RELEASE(&s, 0);
	save("server", "set-pool", &s);

	/* end of stream with frames held, then given back */
	s.n = 0;
	SEED_FIELDS(&s, struct fs_config, .max_hold = 0);
	S_CONNECT(&s, 0);
	S_HELLO(&s, .conn = 0);
	S_PUBLISH(&s, 2);
	SEED_OP(&s, FS_OP_END, struct fs_end, .error = 0);
	S_RELEASE(&s, 0);
	S_RELEASE(&s, 0);
	save("server", "end", &s);

	/* constraints the pool cannot meet: copy tier with 64-byte strides */
	s.n = 0;
	SEED_FIELDS(&s, struct fs_config, .max_hold = 0);
	S_CONNECT(&s, 0);
	SEED_BYTES(&s, FS_OP_HELLO);
	SEED_FIELDS(&s, struct fs_hello, .max_hold = 1, .name_len = 5, .constraints = 1);
	SEED_BYTES(&s, 'c', 'o', 'd', 'e', 'c');
	SEED_FIELDS(&s, struct fs_constraints, .stride_align = 6, .height_align = 1);
	SEED_BYTES(&s, 0);
	S_PUBLISH(&s, 1);
	S_RELEASE(&s, 0);
	S_PUBLISH(&s, 1);
	save("server", "constraints", &s);

	/* at the hold limit: frames skipped, then released */
	s.n = 0;
	SEED_FIELDS(&s, struct fs_config, .max_hold = 0);
	S_CONNECT(&s, FS_CONN_NO_READ);
	S_HELLO(&s, .conn = 0, .max_hold = 1);
	S_PUBLISH(&s, 3);
	SEED_OP(&s, FS_OP_READ, struct fs_read, .conn = 0);
	S_RELEASE(&s, 0);
	S_PUBLISH(&s, 1);
	SEED_OP(&s, FS_OP_READ, struct fs_read, .conn = 0);
	save("server", "hold-limit", &s);

	/* the source reserve takes most of the pool: the second gets copies */
	s.n = 0;
	SEED_FIELDS(&s, struct fs_config, .max_hold = 3, .reserve = 3, .quota = 1);
	S_CONNECT(&s, 0);
	S_HELLO(&s, .conn = 0, .max_hold = 4);
	S_CONNECT(&s, 0);
	S_HELLO(&s, .conn = 1);
	S_PUBLISH(&s, 4);
	S_RELEASE(&s, 1);
	S_RELEASE(&s, 0);
	S_PUBLISH(&s, 2);
	save("server", "budget", &s);

	/* the producer publishes again as soon as a buffer comes back */
	s.n = 0;
	SEED_FIELDS(&s, struct fs_config, .flags = FS_CFG_REPUBLISH);
	S_CONNECT(&s, 0);
	S_HELLO(&s, .conn = 0);
	S_CONNECT(&s, 0);
	S_HELLO(&s, .conn = 1, .caps = ZCV_CAP_NEEDS_COPY);
	S_PUBLISH(&s, 2);
	S_RELEASE(&s, 0);
	S_RELEASE(&s, 1);
	SEED_OP(&s, FS_OP_CLOSE, struct fs_close, .conn = 0);
	S_RELEASE(&s, 1);
	save("server", "republish", &s);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	out_dir = argv[1];
	if (mkdir(out_dir, 0755) < 0 && errno != EEXIST) {
		perror(out_dir);
		return 1;
	}
	protocol_seeds();
	client_seeds();
	server_seeds();
	return 0;
}
