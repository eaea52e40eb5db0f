/* SPDX-License-Identifier: MIT */
/*
 * The client against hostile producers: a fake producer (a listening
 * socket speaking the wire protocol) sends memory that is not what the
 * path promises, shrinks what it lent, never reads releases, evicts with
 * frames queued, or runs as another user. The client must refuse with a
 * reason, leak no fd, map nothing it refused, never fault, never fail a
 * release, and never deliver a frame whose buffer was taken back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <zcv/client.h>
#include <zcv/memory.h>
#include "closer.h"
#include "fake_producer.h"
#include "fdcheck.h"
#include "protocol.h"
#include "wire.h"

/* Every refused object carries this in its name, so /proc/self/maps shows
 * whether the client mapped it anyway. */
#define EVIL "zcv-trust-evil"
#define BUF_SIZE 4096
#define MAX_OUTSTANDING ZCV_POOL_MAX_BUFFERS

struct sink {
	struct zcv_client *c;
	bool hold; /* keep frames for the test; else release in the callback */
	unsigned formats;
	struct zcv_client_format fmt;
	unsigned n_frames;
	uint64_t seqs[64];
	uint8_t first_byte[64];
	struct zcv_client_frame held[64];
	unsigned n_held;
	unsigned closed;
	int closed_error;
	char closed_reason[160];
	unsigned frames_at_close;
	/* source callbacks: 'g' gone, 'b' back, in order */
	char sources[8];
	unsigned n_sources;
	unsigned frames_at_source[8];
	char source_reason[160];
};

static void sink_format(void *data, const struct zcv_client_format *fmt)
{
	struct sink *s = data;

	assert_int_equal(s->closed, 0);
	s->formats++;
	s->fmt = *fmt;
}

static void sink_frame(void *data, const struct zcv_client_frame *fr)
{
	struct sink *s = data;
	const struct zcv_client_format *fmt = zcv_client_get_format(s->c);

	assert_int_equal(s->closed, 0);
	assert_non_null(fmt);
	/* touch every byte: a buffer shrunk under us would SIGBUS here */
	(void)zcv_frame_checksum(&fmt->layout, fr->planes);
	if (s->n_frames < ZCV_ARRAY_SIZE(s->seqs)) {
		s->seqs[s->n_frames] = fr->sequence;
		s->first_byte[s->n_frames] = fr->planes[0][0];
	}
	s->n_frames++;
	if (s->hold) {
		assert_true(s->n_held < ZCV_ARRAY_SIZE(s->held));
		s->held[s->n_held++] = *fr;
	} else {
		assert_int_equal(zcv_client_release(s->c, fr), 0);
	}
}

static void sink_closed(void *data, int error, const char *reason)
{
	struct sink *s = data;

	s->closed++;
	s->closed_error = error;
	s->frames_at_close = s->n_frames;
	snprintf(s->closed_reason, sizeof(s->closed_reason), "%s", reason);
}

static void sink_source(void *data, bool present, const char *reason)
{
	struct sink *s = data;

	assert_int_equal(s->closed, 0);
	assert_true(s->n_sources < ZCV_ARRAY_SIZE(s->sources));
	s->frames_at_source[s->n_sources] = s->n_frames;
	s->sources[s->n_sources++] = present ? 'b' : 'g';
	snprintf(s->source_reason, sizeof(s->source_reason), "%s", reason);
}

static const struct zcv_client_callbacks sink_cbs = {
	.size = sizeof(struct zcv_client_callbacks),
	.format = sink_format,
	.frame = sink_frame,
	.closed = sink_closed,
	.source = sink_source,
};

/* The fd check of every test waits for the closer thread first: fds the
 * client disposed of are closed there, a moment later. */
static int fd_setup(void **state)
{
	assert_int_equal(zcv_fd_dispose_flush(5000000000ull), 0);
	return zcv_test_fd_setup(state);
}

static int fd_teardown(void **state)
{
	assert_int_equal(zcv_fd_dispose_flush(5000000000ull), 0);
	return zcv_test_fd_teardown(state);
}

/* Mappings in this process of things with name in their name. */
static unsigned count_maps(const char *name)
{
	char line[512];
	unsigned n = 0;
	FILE *f = fopen("/proc/self/maps", "re");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, name) != NULL;
	fclose(f);
	return n;
}

static bool evil_mapped(void)
{
	return count_maps(EVIL) > 0;
}

struct fake {
	char dir[64], path[128];
	int listen_fd, fd;
	struct zcv_layout l;
	struct sink s;
};

static void fake_listen(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->fd = -1;
	strcpy(f->dir, "/tmp/zcv-trust-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/p.sock", f->dir);
	f->listen_fd = zcv_socket_listen(f->path, 0600);
	assert_true(f->listen_fd >= 0);
	assert_int_equal(zcv_format_layout(ZCV_FMT_NV12, 64, 32, 64, &f->l), 0);
	assert_true(f->l.size <= BUF_SIZE);
}

/* Listens, connects a client with caps (0: the default), accepts, reads
 * its HELLO. */
static void fake_start(struct fake *f, uint32_t caps)
{
	struct zcv_client_config cfg = { .size = sizeof(struct zcv_client_config),
					 .caps = caps,
					 .name = "victim" };
	union zcv_msg m;
	int fds[ZCV_MSG_MAX_FDS];
	unsigned n = 0;

	fake_listen(f);
	cfg.socket_path = f->path;
	assert_int_equal(zcv_client_connect(&cfg, &sink_cbs, &f->s, &f->s.c), 0);
	f->fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	assert_true(f->fd >= 0);
	assert_int_equal(zcv_msg_read(f->fd, &m, fds, &n), (int)sizeof(struct zcv_msg_hello));
	assert_int_equal(m.hdr.type, ZCV_MSG_HELLO);
	assert_string_equal(m.hello.name, "victim");
	/* it says it understands STATUS */
	assert_true(m.hello.flags & ZCV_HELLO_FLAG_STATUS);
}

static void fake_finish(struct fake *f)
{
	zcv_client_destroy(f->s.c);
	if (f->fd >= 0)
		close(f->fd);
	close(f->listen_fd);
	unlink(f->path);
	assert_int_equal(rmdir(f->dir), 0);
}

static void fake_welcome(struct fake *f, uint16_t path, unsigned n_buffers, uint32_t generation)
{
	fake_send_welcome(f->fd, &f->l, path, n_buffers, n_buffers, generation);
}

/* Sends buffer idx in fd (borrowed), announced as BUF_SIZE bytes. */
static void fake_buffer(struct fake *f, unsigned idx, uint32_t generation, int fd)
{
	fake_send_buffer(f->fd, idx, generation, fd, BUF_SIZE);
}

static void fake_frame(struct fake *f, uint32_t generation, unsigned idx, uint64_t seq)
{
	struct zcv_msg_frame fr;
	size_t len = zcv_msg_init(&fr, ZCV_MSG_FRAME);

	fr.generation = generation;
	fr.index = idx;
	fr.sequence = seq;
	fr.timestamp_ns = zcv_now_ns();
	assert_int_equal(zcv_msg_send(f->fd, &fr, len, NULL, 0), 0);
}

static void fake_bye(struct fake *f, int error, const char *reason)
{
	struct zcv_msg_bye bye;
	size_t len = zcv_msg_init_bye(&bye, error, reason);

	assert_int_equal(zcv_msg_send(f->fd, &bye, len, NULL, 0), 0);
}

/* A well-made buffer: sealed memfd, filled with `fill` through a mapping
 * made before the seal (as the pool does it). */
static int good_memfd(uint8_t fill)
{
	int fd = zcv_memfd_create("zcv-trust-good", BUF_SIZE);
	void *m;

	assert_true(fd >= 0);
	m = mmap(NULL, BUF_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(m != MAP_FAILED);
	memset(m, fill, BUF_SIZE);
	assert_int_equal(munmap(m, BUF_SIZE), 0);
	assert_int_equal(zcv_memfd_seal_readonly(fd), 0);
	return fd;
}

/* A complete pool of n good buffers; the client has seen the format. */
static void fake_pool(struct fake *f, uint16_t path, unsigned n, uint32_t generation)
{
	fake_welcome(f, path, n, generation);
	for (unsigned i = 0; i < n; i++) {
		int fd = good_memfd((uint8_t)(i + 1));

		fake_buffer(f, i, generation, fd);
		close(fd);
	}
	assert_int_equal(zcv_client_dispatch(f->s.c), 0);
	assert_int_equal(f->s.formats, 1);
}

enum kind {
	KIND_FILE,       /* a regular file: can be truncated under the mapping */
	KIND_UNSEALED,   /* memfd without seals */
	KIND_WRITABLE,   /* memfd sealed against resizing only (zcv's old seals) */
	KIND_PIPE,       /* not memory at all */
	KIND_SOCKET,     /* nor this */
	KIND_GOOD_MEMFD, /* fine for the memfd path, not for the DMA-BUF one */
	KIND_SMALL,      /* sealed, but smaller than announced */
};

static int make_fd(struct fake *f, enum kind k)
{
	char path[160];
	int fd = -1, pair[2];

	switch (k) {
	case KIND_FILE:
		snprintf(path, sizeof(path), "%s/" EVIL, f->dir);
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, BUF_SIZE), 0);
		assert_int_equal(unlink(path), 0);
		break;
	case KIND_UNSEALED:
		fd = memfd_create(EVIL, MFD_CLOEXEC);
		assert_int_equal(ftruncate(fd, BUF_SIZE), 0);
		break;
	case KIND_WRITABLE:
		fd = memfd_create(EVIL, MFD_CLOEXEC | MFD_ALLOW_SEALING);
		assert_int_equal(ftruncate(fd, BUF_SIZE), 0);
		assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
				 0);
		break;
	case KIND_PIPE:
		assert_int_equal(pipe2(pair, O_CLOEXEC), 0);
		close(pair[1]);
		fd = pair[0];
		break;
	case KIND_SOCKET:
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
		close(pair[1]);
		fd = pair[0];
		break;
	case KIND_GOOD_MEMFD:
		fd = zcv_memfd_create(EVIL, BUF_SIZE);
		assert_int_equal(zcv_memfd_seal_readonly(fd), 0);
		break;
	case KIND_SMALL:
		fd = zcv_memfd_create(EVIL, BUF_SIZE / 2);
		assert_int_equal(zcv_memfd_seal_readonly(fd), 0);
		break;
	}
	assert_true(fd >= 0);
	return fd;
}

/* The client hung up on the fake after telling it why (BYE -EPROTO). */
static void fake_expect_refusal(struct fake *f)
{
	union zcv_msg m;
	int fds[ZCV_MSG_MAX_FDS];
	unsigned n = 0;

	assert_true(zcv_msg_read(f->fd, &m, fds, &n) > 0);
	assert_int_equal(m.hdr.type, ZCV_MSG_BYE);
	assert_int_equal(m.bye.error, -EPROTO);
	assert_int_equal(zcv_msg_read(f->fd, &m, fds, &n), 0);
}

static void refusal_case(uint16_t path, enum kind k, const char *why)
{
	uint32_t caps = path == ZCV_PATH_DMABUF ? ZCV_CAP_DMABUF :
			path == ZCV_PATH_COPY   ? ZCV_CAP_NEEDS_COPY | ZCV_CAP_MEMFD :
						  ZCV_CAP_MEMFD;
	struct fake f;
	int fd, good;

	fake_start(&f, caps);
	fake_welcome(&f, path, 2, 1);
	/* buffer 0 is fine for the memfd paths: the bad one still spoils all */
	good = good_memfd(1);
	if (path != ZCV_PATH_DMABUF)
		fake_buffer(&f, 0, 1, good);
	fd = make_fd(&f, k);
	fake_buffer(&f, path != ZCV_PATH_DMABUF, 1, fd);
	assert_int_equal(zcv_client_dispatch(f.s.c), -EPROTO);
	assert_int_equal(f.s.closed, 1);
	assert_int_equal(f.s.closed_error, -EPROTO);
	if (!strstr(f.s.closed_reason, why))
		fail_msg("path %u kind %d: reason '%s' does not say '%s'", path, k,
			 f.s.closed_reason, why);
	assert_int_equal(f.s.formats, 0);
	assert_null(zcv_client_get_format(f.s.c));
	/* nothing refused was mapped, so nothing can fault when it shrinks */
	assert_false(evil_mapped());
	if (k == KIND_FILE || k == KIND_UNSEALED)
		assert_int_equal(ftruncate(fd, 0), 0);
	/* the end is sticky and said once */
	assert_int_equal(zcv_client_dispatch(f.s.c), -EPROTO);
	assert_int_equal(zcv_client_wait_dispatch(f.s.c, 0), -EPROTO);
	assert_int_equal(f.s.closed, 1);
	fake_expect_refusal(&f);
	close(fd);
	close(good);
	fake_finish(&f);
}

static void test_refuse_on_dmabuf_path(void **state)
{
	refusal_case(ZCV_PATH_DMABUF, KIND_FILE, "fd 0 is a regular file, not a DMA-BUF");
	refusal_case(ZCV_PATH_DMABUF, KIND_UNSEALED, "is a memfd, not a DMA-BUF");
	refusal_case(ZCV_PATH_DMABUF, KIND_WRITABLE, "is a memfd, not a DMA-BUF");
	refusal_case(ZCV_PATH_DMABUF, KIND_GOOD_MEMFD, "is a memfd, not a DMA-BUF");
	refusal_case(ZCV_PATH_DMABUF, KIND_PIPE, "is a pipe, not a DMA-BUF");
	refusal_case(ZCV_PATH_DMABUF, KIND_SOCKET, "is a socket, not a DMA-BUF");
}

static void test_refuse_on_memfd_path(void **state)
{
	refusal_case(ZCV_PATH_MEMFD, KIND_FILE, "buffer 1 fd 0 is a regular file, not a memfd");
	refusal_case(ZCV_PATH_MEMFD, KIND_UNSEALED, "memfd not sealed against resizing");
	refusal_case(ZCV_PATH_MEMFD, KIND_WRITABLE, "memfd writable (no write seal)");
	refusal_case(ZCV_PATH_MEMFD, KIND_PIPE, "is a pipe, not a memfd");
	refusal_case(ZCV_PATH_MEMFD, KIND_SOCKET, "is a socket, not a memfd");
	refusal_case(ZCV_PATH_MEMFD, KIND_SMALL, "memfd of 2048 bytes, 4096 announced");
}

static void test_refuse_on_copy_path(void **state)
{
	refusal_case(ZCV_PATH_COPY, KIND_FILE, "is a regular file, not a memfd");
	refusal_case(ZCV_PATH_COPY, KIND_UNSEALED, "not sealed against resizing");
	refusal_case(ZCV_PATH_COPY, KIND_WRITABLE, "writable (no write seal)");
}

/* What the client accepts can change for nobody but through the
 * producer's own mapping: not its size, not its bytes. */
static void test_sealed_memfd_holds(void **state)
{
	struct fake f;
	int fds[2];
	uint8_t *prod;
	const uint8_t *cons;

	fake_start(&f, 0);
	fake_welcome(&f, ZCV_PATH_MEMFD, 2, 1);
	/* buffer 0 as the pool makes it; buffer 1 sealed with F_SEAL_WRITE */
	fds[0] = zcv_memfd_create("zcv-trust-good", BUF_SIZE);
	prod = mmap(NULL, BUF_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	assert_true(prod != MAP_FAILED);
	memset(prod, 7, BUF_SIZE);
	assert_int_equal(zcv_memfd_seal_readonly(fds[0]), 0);
	fds[1] = zcv_memfd_create("zcv-trust-good", BUF_SIZE);
	assert_int_equal(fcntl(fds[1], F_ADD_SEALS, F_SEAL_WRITE), 0);
	fake_buffer(&f, 0, 1, fds[0]);
	fake_buffer(&f, 1, 1, fds[1]);
	f.s.hold = true;
	fake_frame(&f, 1, 0, 1);
	assert_int_equal(zcv_client_dispatch(f.s.c), 0);
	assert_int_equal(f.s.formats, 1);
	assert_int_equal(f.s.n_frames, 1);
	assert_int_equal(f.s.first_byte[0], 7);

	/* the producer tries to shrink (or grow, or punch) what it lent */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(ftruncate(fds[i], 0), -1);
		assert_int_equal(errno, EPERM);
		assert_int_equal(ftruncate(fds[i], 2 * BUF_SIZE), -1);
		assert_int_equal(
			fallocate(fds[i], FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, BUF_SIZE),
			-1);
	}
	/* the consumer reads it all, no SIGBUS; the producer's own mapping
	 * still writes, and the consumer sees it */
	cons = f.s.held[0].planes[0];
	prod[0] = 9;
	assert_int_equal(cons[0], 9);
	assert_int_equal(cons[f.l.planes[1].offset + f.l.planes[1].size - 1], 7);
	/* the consumer's mapping is read-only and cannot be made writable */
	assert_int_equal(mprotect((void *)((uintptr_t)cons & ~(uintptr_t)4095), 4096,
				  PROT_READ | PROT_WRITE),
			 -1);
	assert_int_equal(zcv_client_release(f.s.c, &f.s.held[0]), 0);
	fake_frame(&f, 1, 1, 2);
	assert_int_equal(zcv_client_dispatch(f.s.c), 0);
	assert_int_equal(f.s.n_frames, 2);
	assert_int_equal(zcv_client_release(f.s.c, &f.s.held[1]), 0);
	assert_int_equal(f.s.closed, 0);
	munmap(prod, BUF_SIZE);
	close(fds[0]);
	close(fds[1]);
	fake_finish(&f);
}

/* Reads every RELEASE the fake has, checking they come in the order the
 * frames were released; returns how many. */
static unsigned fake_drain_releases(struct fake *f, uint64_t *next_seq)
{
	unsigned n_msgs = 0;
	union zcv_msg m;
	int fds[ZCV_MSG_MAX_FDS];
	unsigned n = 0;
	int r;

	while ((r = zcv_msg_read(f->fd, &m, fds, &n)) > 0) {
		assert_int_equal(m.hdr.type, ZCV_MSG_RELEASE);
		assert_int_equal(m.release.generation, 1);
		assert_int_equal(m.release.sequence, *next_seq);
		assert_int_equal(m.release.index, *next_seq % ZCV_POOL_MAX_BUFFERS);
		(*next_seq)++;
		n_msgs++;
	}
	assert_int_equal(r, -EAGAIN);
	return n_msgs;
}

/* A producer that does not read releases: the sink's releases never fail,
 * the queue stays within the frames lent, and all of them arrive, in
 * order, once the producer reads again. */
static void test_release_never_fails(void **state)
{
	struct fake f;
	uint64_t seq = 0, next_release = 1;
	unsigned max_queued = 0, total_socket_full = 0;

	fake_start(&f, 0);
	fake_pool(&f, ZCV_PATH_MEMFD, ZCV_POOL_MAX_BUFFERS, 1);
	assert_int_equal(zcv_client_get_events(f.s.c), POLLIN);
	for (int cycle = 0; cycle < 8; cycle++) {
		/* lend a frame whenever the sink gave one back, and never read:
		 * the kernel's queue fills, then the client's */
		while (zcv_client_queued_releases(f.s.c) < MAX_OUTSTANDING - 1) {
			seq++;
			fake_frame(&f, 1, (unsigned)(seq % ZCV_POOL_MAX_BUFFERS), seq);
			/* the sink releases in the callback and asserts 0 there */
			assert_int_equal(zcv_client_dispatch(f.s.c), 0);
			assert_int_equal(f.s.n_frames, seq);
			assert_int_equal(zcv_client_held(f.s.c), 0);
			assert_true(seq < 100000);
		}
		max_queued = ZCV_MAX(max_queued, zcv_client_queued_releases(f.s.c));
		assert_int_equal(zcv_client_get_events(f.s.c), POLLIN | POLLOUT);
		/* nothing moves while the producer does not read */
		assert_int_equal(zcv_client_dispatch(f.s.c), 0);
		assert_int_equal(zcv_client_queued_releases(f.s.c), MAX_OUTSTANDING - 1);
		total_socket_full++;
		/* the producer reads: the client's queue goes out when writable */
		while (next_release <= seq) {
			fake_drain_releases(&f, &next_release);
			if (next_release <= seq)
				assert_true(zcv_client_wait_dispatch(f.s.c, 5000) == 0);
		}
		assert_int_equal(zcv_client_queued_releases(f.s.c), 0);
		assert_int_equal(zcv_client_get_events(f.s.c), POLLIN);
	}
	print_message("%llu releases, the client queued at most %u, the socket was full %u times\n",
		      (unsigned long long)seq, max_queued, total_socket_full);
	assert_true(seq >= 1000);
	assert_true(max_queued <= MAX_OUTSTANDING);
	assert_int_equal(f.s.closed, 0);
	fake_finish(&f);
}

/* A generation goes (unmapped, its fds closed) as soon as the sink gave
 * back all its frames, whether or not the RELEASEs could be sent: pool
 * changes while the socket is full leak nothing. */
static void test_generations_go_with_queued_releases(void **state)
{
	struct fake f;
	uint64_t seq = 0;
	int fds_before;
	unsigned queued;

	fake_start(&f, 0);
	fake_pool(&f, ZCV_PATH_MEMFD, ZCV_POOL_MAX_BUFFERS, 1);
	while (zcv_client_queued_releases(f.s.c) == 0) {
		seq++;
		fake_frame(&f, 1, (unsigned)(seq % ZCV_POOL_MAX_BUFFERS), seq);
		assert_int_equal(zcv_client_dispatch(f.s.c), 0);
		assert_true(seq < 100000);
	}
	/* the sink holds a frame of each generation until the next one has
	 * arrived: the old generation goes when that frame is released */
	f.s.hold = true;
	fds_before = -1;
	for (uint32_t gen = 2; gen < 26; gen++) {
		fake_welcome(&f, ZCV_PATH_MEMFD, 2, gen);
		for (unsigned i = 0; i < 2; i++) {
			int fd = good_memfd((uint8_t)gen);

			fake_buffer(&f, i, gen, fd);
			close(fd);
		}
		seq++;
		fake_frame(&f, gen, 1, seq);
		assert_int_equal(zcv_client_dispatch(f.s.c), 0);
		assert_int_equal(f.s.n_held, gen == 2 ? 1 : 2);
		assert_int_equal(f.s.held[f.s.n_held - 1].planes[0][0], (uint8_t)gen);
		if (gen > 2) {
			queued = zcv_client_queued_releases(f.s.c);
			assert_int_equal(zcv_client_release(f.s.c, &f.s.held[0]), 0);
			assert_int_equal(zcv_client_queued_releases(f.s.c), queued + 1);
			f.s.held[0] = f.s.held[1];
		}
		f.s.n_held = 1;
		/* one generation's 2 fds open, mapped, never more */
		if (fds_before < 0)
			fds_before = zcv_test_count_fds();
		assert_int_equal(zcv_test_count_fds(), fds_before);
		assert_int_equal(count_maps("zcv-trust-good"), 2);
	}
	assert_int_equal(zcv_client_release(f.s.c, &f.s.held[0]), 0);
	/* and when the producer reads again, every one of them arrives */
	{
		union zcv_msg m;
		int fds[ZCV_MSG_MAX_FDS];
		unsigned n = 0, last_gen = 0;
		int r;

		for (int i = 0; i < 100 && last_gen != 25; i++) {
			while ((r = zcv_msg_read(f.fd, &m, fds, &n)) > 0) {
				assert_int_equal(m.hdr.type, ZCV_MSG_RELEASE);
				assert_true(m.release.generation >= last_gen);
				last_gen = m.release.generation;
			}
			assert_int_equal(r, -EAGAIN);
			if (last_gen != 25)
				assert_int_equal(zcv_client_wait_dispatch(f.s.c, 5000), 0);
		}
		assert_int_equal(last_gen, 25);
	}
	assert_int_equal(zcv_client_queued_releases(f.s.c), 0);
	fake_finish(&f);
}

/* A producer that lends a buffer whose release it has not had, or more
 * frames than any hold limit, is broken: the queue cannot grow with it. */
static void test_queue_bound_enforced(void **state)
{
	struct fake f;
	uint64_t seq = 0;

	/* a frame in a buffer whose release is still queued */
	fake_start(&f, 0);
	fake_pool(&f, ZCV_PATH_MEMFD, ZCV_POOL_MAX_BUFFERS, 1);
	while (zcv_client_queued_releases(f.s.c) == 0) {
		seq++;
		fake_frame(&f, 1, (unsigned)(seq % ZCV_POOL_MAX_BUFFERS), seq);
		assert_int_equal(zcv_client_dispatch(f.s.c), 0);
		assert_true(seq < 100000);
	}
	fake_frame(&f, 1, (unsigned)(seq % ZCV_POOL_MAX_BUFFERS), seq + 1);
	assert_int_equal(zcv_client_dispatch(f.s.c), -EPROTO);
	assert_non_null(strstr(f.s.closed_reason, "release"));
	assert_int_equal(f.s.n_frames, seq);
	/* dropped with the connection: nothing left to flush */
	assert_int_equal(zcv_client_queued_releases(f.s.c), 0);
	assert_int_equal(zcv_client_get_events(f.s.c), POLLIN);
	fake_finish(&f);

	/* more frames lent than any pool has buffers: the sink holds a full
	 * pool, and a new generation lends one more */
	fake_start(&f, 0);
	fake_pool(&f, ZCV_PATH_MEMFD, ZCV_POOL_MAX_BUFFERS, 1);
	f.s.hold = true;
	for (unsigned i = 0; i < ZCV_POOL_MAX_BUFFERS; i++)
		fake_frame(&f, 1, i, i + 1);
	assert_int_equal(zcv_client_dispatch(f.s.c), 0);
	assert_int_equal(zcv_client_held(f.s.c), ZCV_POOL_MAX_BUFFERS);
	fake_welcome(&f, ZCV_PATH_MEMFD, 1, 2);
	{
		int fd = good_memfd(3);

		fake_buffer(&f, 0, 2, fd);
		close(fd);
	}
	fake_frame(&f, 2, 0, ZCV_POOL_MAX_BUFFERS + 1);
	assert_int_equal(zcv_client_dispatch(f.s.c), -EPROTO);
	assert_non_null(strstr(f.s.closed_reason, "hold limit"));
	assert_int_equal(f.s.n_frames, ZCV_POOL_MAX_BUFFERS);
	/* the held frames are the sink's to release, locally now */
	for (unsigned i = 0; i < f.s.n_held; i++)
		assert_int_equal(zcv_client_release(f.s.c, &f.s.held[i]), 0);
	assert_int_equal(zcv_client_held(f.s.c), 0);
	fake_finish(&f);
}

/* Releases queued when the producer evicts us are dropped with the
 * connection; a release after the end frees locally and returns 0. */
static void test_eviction_with_queued_releases(void **state)
{
	struct fake f;
	uint64_t seq = 0;

	fake_start(&f, 0);
	fake_pool(&f, ZCV_PATH_MEMFD, ZCV_POOL_MAX_BUFFERS, 1);
	while (zcv_client_queued_releases(f.s.c) < 4) {
		seq++;
		fake_frame(&f, 1, (unsigned)(seq % ZCV_POOL_MAX_BUFFERS), seq);
		assert_int_equal(zcv_client_dispatch(f.s.c), 0);
		assert_true(seq < 100000);
	}
	f.s.hold = true;
	seq++;
	fake_frame(&f, 1, (unsigned)(seq % ZCV_POOL_MAX_BUFFERS), seq);
	assert_int_equal(zcv_client_dispatch(f.s.c), 0);
	assert_int_equal(f.s.n_held, 1);
	fake_bye(&f, -ETIMEDOUT, "held too long");
	assert_int_equal(zcv_client_dispatch(f.s.c), -ETIMEDOUT);
	assert_int_equal(f.s.closed_error, -ETIMEDOUT);
	assert_string_equal(f.s.closed_reason, "held too long");
	assert_int_equal(zcv_client_queued_releases(f.s.c), 0);
	assert_int_equal(zcv_client_get_events(f.s.c), POLLIN);
	assert_int_equal(zcv_client_held(f.s.c), 1);
	assert_int_equal(zcv_client_release(f.s.c, &f.s.held[0]), 0);
	assert_int_equal(zcv_client_release(f.s.c, &f.s.held[0]), -EINVAL);
	assert_int_equal(zcv_client_held(f.s.c), 0);
	fake_finish(&f);
}

/* Frames queued in the socket ahead of a stream end that is not clean:
 * the producer may already reuse their buffers, so the sink never sees
 * them and no release goes out for them. */
static void ended_behind_frames_case(int how)
{
	struct fake f;
	union zcv_msg m;
	int fds[ZCV_MSG_MAX_FDS];
	unsigned n = 0;
	int expect;

	fake_start(&f, 0);
	fake_pool(&f, ZCV_PATH_MEMFD, 4, 1);
	f.s.hold = true;
	fake_frame(&f, 1, 0, 1);
	assert_int_equal(zcv_client_dispatch(f.s.c), 0);
	assert_int_equal(f.s.n_frames, 1);
	for (unsigned i = 1; i < 4; i++)
		fake_frame(&f, 1, i, i + 1);
	switch (how) {
	case 0: /* evicted */
		fake_bye(&f, -ETIMEDOUT, "held frame 1 too long");
		expect = -ETIMEDOUT;
		break;
	case 1: /* an errno out of range is no errno, but still an eviction */
		fake_bye(&f, -100000, "out of range");
		expect = -EPROTO;
		break;
	case 2: /* dropped without a word */
		shutdown(f.fd, SHUT_RDWR);
		expect = -ECONNRESET;
		break;
	default: /* a broken message behind them */
	{
		struct zcv_msg_release r;
		size_t len = zcv_msg_init(&r, ZCV_MSG_RELEASE);

		assert_int_equal(zcv_msg_send(f.fd, &r, len, NULL, 0), 0);
		expect = -EPROTO;
	}
	}
	assert_int_equal(zcv_client_dispatch(f.s.c), expect);
	assert_int_equal(f.s.n_frames, 1);
	assert_int_equal(f.s.closed, 1);
	assert_int_equal(f.s.closed_error, expect);
	assert_int_equal(f.s.frames_at_close, 1);
	/* only the frame the sink had is held, and it still reads */
	assert_int_equal(zcv_client_held(f.s.c), 1);
	assert_int_equal(f.s.held[0].planes[0][0], 1);
	assert_int_equal(zcv_client_release(f.s.c, &f.s.held[0]), 0);
	assert_int_equal(zcv_client_held(f.s.c), 0);
	/* no RELEASE reached the producer, for those or for the held one */
	if (how == 0 || how == 1) {
		assert_int_equal(zcv_msg_read(f.fd, &m, fds, &n), -EAGAIN);
	} else if (how == 3) {
		assert_true(zcv_msg_read(f.fd, &m, fds, &n) > 0);
		assert_int_equal(m.hdr.type, ZCV_MSG_BYE);
	}
	fake_finish(&f);
}

static void test_error_end_drops_queued_frames(void **state)
{
	for (int how = 0; how < 4; how++)
		ended_behind_frames_case(how);
}

/* Even the pool announcement of an evicted stream goes unreported. */
static void test_eviction_in_one_batch(void **state)
{
	struct fake f;

	fake_start(&f, 0);
	fake_welcome(&f, ZCV_PATH_MEMFD, 2, 1);
	for (unsigned i = 0; i < 2; i++) {
		int fd = good_memfd(1);

		fake_buffer(&f, i, 1, fd);
		close(fd);
	}
	fake_frame(&f, 1, 0, 1);
	fake_frame(&f, 1, 1, 2);
	/* the producer's words reach the sink printable */
	fake_bye(&f, -ENOBUFS, "too\x1b[2J slow\n");
	assert_int_equal(zcv_client_dispatch(f.s.c), -ENOBUFS);
	assert_string_equal(f.s.closed_reason, "too\\x1b[2J slow\\x0a");
	assert_int_equal(f.s.formats, 0);
	assert_int_equal(f.s.n_frames, 0);
	assert_int_equal(f.s.closed, 1);
	assert_int_equal(zcv_client_held(f.s.c), 0);
	fake_finish(&f);
}

/* A clean end of stream behind frames: they are delivered, then closed. */
static void test_clean_end_delivers_queued_frames(void **state)
{
	struct fake f;
	union zcv_msg m;
	int fds[ZCV_MSG_MAX_FDS];
	unsigned n = 0;

	fake_start(&f, 0);
	fake_pool(&f, ZCV_PATH_MEMFD, 4, 1);
	f.s.hold = true;
	for (unsigned i = 0; i < 3; i++)
		fake_frame(&f, 1, i, i + 10);
	fake_bye(&f, 0, "that was all");
	assert_int_equal(zcv_client_dispatch(f.s.c), 1);
	assert_int_equal(f.s.n_frames, 3);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(f.s.seqs[i], i + 10);
		assert_int_equal(f.s.first_byte[i], i + 1);
	}
	assert_int_equal(f.s.closed, 1);
	assert_int_equal(f.s.frames_at_close, 3);
	assert_int_equal(f.s.closed_error, 0);
	assert_string_equal(f.s.closed_reason, "that was all");
	/* after a clean end the releases still go back */
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(zcv_client_release(f.s.c, &f.s.held[i]), 0);
	for (unsigned i = 0; i < 3; i++) {
		assert_true(zcv_msg_read(f.fd, &m, fds, &n) > 0);
		assert_int_equal(m.hdr.type, ZCV_MSG_RELEASE);
		assert_int_equal(m.release.sequence, i + 10);
	}
	assert_int_equal(zcv_client_dispatch(f.s.c), 1);
	fake_finish(&f);
}

static void fake_status(struct fake *f, uint32_t flags, const char *reason, bool terminate)
{
	struct zcv_msg_status m;
	size_t len = zcv_msg_init(&m, ZCV_MSG_STATUS);

	m.flags = flags;
	memcpy(m.reason, reason, strnlen(reason, sizeof(m.reason)));
	if (!terminate)
		memset(m.reason, 'x', sizeof(m.reason));
	assert_int_equal(zcv_msg_send(f->fd, &m, len, NULL, 0), 0);
}

/* STATUS between frames is delivered in order, its reason made printable:
 * gone after the frames before it, back before the frames after it. */
static void test_status_delivered(void **state)
{
	struct fake f;

	fake_start(&f, 0);
	fake_pool(&f, ZCV_PATH_MEMFD, 4, 1);
	fake_frame(&f, 1, 0, 1);
	fake_status(&f, ZCV_STATUS_SOURCE_LOST, "camera \x1b[2Jgone", true);
	fake_status(&f, 0, "back", true);
	fake_frame(&f, 1, 1, 2);
	assert_int_equal(zcv_client_dispatch(f.s.c), 0);
	assert_int_equal(f.s.n_sources, 2);
	assert_memory_equal(f.s.sources, "gb", 2);
	assert_int_equal(f.s.frames_at_source[0], 1);
	assert_int_equal(f.s.frames_at_source[1], 1);
	assert_int_equal(f.s.n_frames, 2);
	assert_string_equal(f.s.source_reason, "back");
	assert_int_equal(f.s.closed, 0);
	fake_finish(&f);
}

/* A hostile STATUS ends the stream with -EPROTO and a reason, and no
 * source callback: unknown flags, a reason without its NUL, or STATUS
 * before WELCOME. */
static void status_refused(int how)
{
	struct fake f;

	fake_start(&f, 0);
	if (how != 2)
		fake_pool(&f, ZCV_PATH_MEMFD, 4, 1);
	fake_status(&f, how == 0 ? 0x80000001u : ZCV_STATUS_SOURCE_LOST, "gone", how != 1);
	assert_int_equal(zcv_client_dispatch(f.s.c), -EPROTO);
	assert_int_equal(f.s.n_sources, 0);
	assert_int_equal(f.s.closed, 1);
	assert_int_equal(f.s.closed_error, -EPROTO);
	if (how == 2)
		assert_non_null(strstr(f.s.closed_reason, "STATUS before WELCOME"));
	fake_finish(&f);
}

static void test_status_refused(void **state)
{
	for (int how = 0; how < 3; how++)
		status_refused(how);
}

/* A producer under uid 65534, in a child: serves `n` connections and
 * writes per connection 'H' (a HELLO came) or 'E' (hang-up without one)
 * into status. */
static pid_t foreign_producer(const char *dir, const char *path, int status, int ready, unsigned n)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int lfd;

		if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
		    setresuid(65534, 65534, 65534) < 0)
			_exit(3);
		lfd = zcv_socket_listen(path, 0666);
		if (lfd < 0)
			_exit(4);
		if (write(ready, "r", 1) != 1)
			_exit(5);
		for (unsigned i = 0; i < n; i++) {
			struct pollfd p = { .fd = lfd, .events = POLLIN };
			union zcv_msg m;
			int fds[ZCV_MSG_MAX_FDS], fd, r;
			unsigned k = 0;
			char what = 'E';

			if (poll(&p, 1, 10000) != 1)
				_exit(6);
			fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				_exit(7);
			/* blocking: the first message, or the hang-up */
			while ((r = (int)recv(fd, &m, sizeof(m), MSG_PEEK)) < 0 && errno == EINTR)
				;
			if (r > 0 && zcv_msg_read(fd, &m, fds, &k) > 0 &&
			    m.hdr.type == ZCV_MSG_HELLO)
				what = 'H';
			if (write(status, &what, 1) != 1)
				_exit(8);
			close(fd);
		}
		close(lfd);
		unlink(path);
		_exit(0);
	}
	(void)dir;
	return pid;
}

static char read_status(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c = 0;

	assert_int_equal(poll(&p, 1, 10000), 1);
	assert_int_equal(read(fd, &c, 1), 1);
	return c;
}

static void test_foreign_producer(void **state)
{
	struct zcv_client_config cfg = { .size = sizeof(struct zcv_client_config),
					 .name = "victim" };
	char dir[64] = "/tmp/zcv-trust-XXXXXX", path[128], expect[64];
	struct sink s = { 0 };
	struct zcv_client *c = (void *)0x1;
	int status[2], ready[2], wstatus = 0;
	pid_t pid;

	if (geteuid() != 0) {
		print_message("skipped: needs root to run a producer under another uid\n");
		skip();
		return;
	}
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chown(dir, 65534, 65534), 0);
	snprintf(path, sizeof(path), "%s/p.sock", dir);
	assert_int_equal(pipe2(status, O_CLOEXEC), 0);
	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	pid = foreign_producer(dir, path, status[1], ready[1], 3);
	assert_int_equal(read_status(ready[0]), 'r');
	cfg.socket_path = path;

	/* the default: refused before a word is said, with the uid named */
	s.c = NULL;
	assert_int_equal(zcv_client_connect(&cfg, &sink_cbs, &s, &c), -EACCES);
	assert_ptr_equal(c, (void *)0x1);
	assert_int_equal(s.closed, 1);
	assert_int_equal(s.closed_error, -EACCES);
	snprintf(expect, sizeof(expect), "runs as uid 65534");
	if (!strstr(s.closed_reason, expect))
		fail_msg("reason '%s' does not say '%s'", s.closed_reason, expect);
	assert_int_equal(read_status(status[0]), 'E');

	/* trusted by name */
	memset(&s, 0, sizeof(s));
	cfg.producer_trust = ZCV_TRUST_UID;
	cfg.producer_uid = 65534;
	assert_int_equal(zcv_client_connect(&cfg, &sink_cbs, &s, &s.c), 0);
	zcv_client_destroy(s.c);
	assert_int_equal(s.closed, 0);
	assert_int_equal(read_status(status[0]), 'H');

	/* another uid named is no help */
	cfg.producer_uid = 4242;
	memset(&s, 0, sizeof(s));
	assert_int_equal(zcv_client_connect(&cfg, &sink_cbs, &s, &c), -EACCES);
	assert_non_null(strstr(s.closed_reason, "uid 4242"));
	assert_int_equal(read_status(status[0]), 'E');

	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_true(WIFEXITED(wstatus));
	assert_int_equal(WEXITSTATUS(wstatus), 0);

	/* anyone, explicitly */
	pid = foreign_producer(dir, path, status[1], ready[1], 1);
	assert_int_equal(read_status(ready[0]), 'r');
	cfg.producer_trust = ZCV_TRUST_ANYONE;
	memset(&s, 0, sizeof(s));
	assert_int_equal(zcv_client_connect(&cfg, &sink_cbs, &s, &s.c), 0);
	zcv_client_destroy(s.c);
	assert_int_equal(read_status(status[0]), 'H');
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_true(WIFEXITED(wstatus));
	assert_int_equal(WEXITSTATUS(wstatus), 0);

	close(status[0]);
	close(status[1]);
	close(ready[0]);
	close(ready[1]);
	assert_int_equal(rmdir(dir), 0);
}

/* Our own uid is trusted by default (root included, which we may be). */
static void test_same_user_trusted(void **state)
{
	struct fake f;

	fake_start(&f, 0);
	assert_int_equal(f.s.closed, 0);
	fake_pool(&f, ZCV_PATH_MEMFD, 2, 1);
	fake_finish(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, fd_setup, fd_teardown)
		T(test_refuse_on_dmabuf_path),
		T(test_refuse_on_memfd_path),
		T(test_refuse_on_copy_path),
		T(test_sealed_memfd_holds),
		T(test_release_never_fails),
		T(test_generations_go_with_queued_releases),
		T(test_queue_bound_enforced),
		T(test_eviction_with_queued_releases),
		T(test_error_end_drops_queued_frames),
		T(test_eviction_in_one_batch),
		T(test_clean_end_delivers_queued_frames),
		T(test_status_delivered),
		T(test_status_refused),
		T(test_foreign_producer),
		T(test_same_user_trusted),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
