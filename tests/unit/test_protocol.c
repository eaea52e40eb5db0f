/* SPDX-License-Identifier: MIT */
/* Wire protocol: encoding, validation field by field, fd passing and
 * every way a received packet can be refused without leaking an fd. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <zcv/memory.h>
#include <zcv/pool.h>
#include "fdcheck.h"
#include "protocol.h"
#include "wire.h"

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

static void close_pair(int sv[2])
{
	close(sv[0]);
	close(sv[1]);
}

/* sendmsg with any number of fds, in one or two SCM_RIGHTS cmsgs, to build
 * packets zcv_msg_send() refuses to make. */
static void raw_send(int sock, const void *buf, size_t len, const int *fds, unsigned n_fds,
		     bool split)
{
	char control[CMSG_SPACE(sizeof(int) * 16) * 2];
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	memset(control, 0, sizeof(control));
	if (n_fds) {
		unsigned first = split ? n_fds / 2 : n_fds;
		struct cmsghdr *cm;

		mh.msg_control = control;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * first) +
				    (split ? CMSG_SPACE(sizeof(int) * (n_fds - first)) : 0);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * first);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * first);
		if (split) {
			cm = CMSG_NXTHDR(&mh, cm);
			assert_non_null(cm);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int) * (n_fds - first));
			memcpy(CMSG_DATA(cm), fds + first, sizeof(int) * (n_fds - first));
		}
	}
	assert_int_equal(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

static int make_memfd(uint64_t size)
{
	int fd = zcv_memfd_create("test", size);

	assert_true(fd >= 0);
	return fd;
}

/* Sends msg through a socketpair and reads it back with zcv_msg_read. */
static void roundtrip(const void *msg, size_t len, const int *fds, unsigned n_fds)
{
	union zcv_msg got;
	int sv[2], rfds[ZCV_MSG_MAX_FDS];
	unsigned rn = 99;

	pair(sv);
	assert_int_equal(zcv_msg_send(sv[0], msg, len, fds, n_fds), 0);
	assert_int_equal(zcv_msg_read(sv[1], &got, rfds, &rn), (int)len);
	assert_int_equal(rn, n_fds);
	assert_memory_equal(&got, msg, len);
	for (unsigned i = 0; i < rn; i++) {
		struct stat a, b;

		/* a new fd for the same file, CLOEXEC */
		assert_true(rfds[i] >= 0);
		assert_true(fcntl(rfds[i], F_GETFD) & FD_CLOEXEC);
		assert_int_equal(fstat(rfds[i], &a), 0);
		assert_int_equal(fstat(fds[i], &b), 0);
		assert_int_equal(a.st_ino, b.st_ino);
	}
	zcv_close_fds(rfds, rn);
	close_pair(sv);
}

static void test_roundtrip_all(void **state)
{
	struct zcv_msg_hello h;
	struct zcv_msg_welcome w;
	struct zcv_msg_buffer b;
	struct zcv_msg_frame f;
	struct zcv_msg_release r;
	struct zcv_msg_bye bye;
	int fds[2];
	size_t len;

	len = zcv_msg_init(&h, ZCV_MSG_HELLO);
	assert_int_equal(len, sizeof(h));
	assert_int_equal(h.hdr.type, ZCV_MSG_HELLO);
	assert_int_equal(h.hdr.version, ZCV_PROTOCOL_VERSION);
	assert_int_equal(h.hdr.size, sizeof(h));
	h.min_version = 1;
	h.caps = ZCV_CAP_MEMFD;
	h.max_hold = 3;
	strcpy(h.name, "sink");
	roundtrip(&h, len, NULL, 0);

	len = zcv_msg_init(&w, ZCV_MSG_WELCOME);
	w.version = 1;
	w.path = ZCV_PATH_MEMFD;
	w.max_hold = 2;
	w.fourcc = ZCV_FMT_NV12;
	w.width = 64;
	w.height = 32;
	w.n_planes = 2;
	w.planes[0] = (struct zcv_wire_plane){ 0, 64, 2048, 0 };
	w.planes[1] = (struct zcv_wire_plane){ 2048, 64, 1024, 0 };
	w.fps_num = 30;
	w.fps_den = 1;
	w.generation = 7;
	w.n_buffers = 4;
	w.frame_size = 3072;
	roundtrip(&w, len, NULL, 0);

	fds[0] = make_memfd(4096);
	fds[1] = make_memfd(8192);
	len = zcv_msg_init(&b, ZCV_MSG_BUFFER);
	b.generation = 7;
	b.index = 3;
	b.n_fds = 2;
	b.plane_fd[1] = 1;
	b.fd_size[0] = 4096;
	b.fd_size[1] = 8192;
	roundtrip(&b, len, fds, 2);
	zcv_close_fds(fds, 2);

	len = zcv_msg_init(&f, ZCV_MSG_FRAME);
	f.generation = 7;
	f.index = 3;
	f.sequence = 1234;
	f.timestamp_ns = 99;
	f.flags = ZCV_FRAME_FLAG_LAST;
	f.bytesused[0] = 2048;
	roundtrip(&f, len, NULL, 0);

	len = zcv_msg_init(&r, ZCV_MSG_RELEASE);
	r.generation = 7;
	r.index = 3;
	r.sequence = 1234;
	roundtrip(&r, len, NULL, 0);

	len = zcv_msg_init_bye(&bye, -ETIMEDOUT, "held too long");
	assert_int_equal(bye.error, -ETIMEDOUT);
	assert_string_equal(bye.reason, "held too long");
	roundtrip(&bye, len, NULL, 0);

	/* a reason longer than the field is cut, still NUL-terminated */
	len = zcv_msg_init_bye(
		&bye, 0, "0123456789012345678901234567890123456789012345678901234567890123456789");
	assert_int_equal(zcv_msg_validate(&bye, len, 0), 0);
	assert_int_equal(strlen(bye.reason), sizeof(bye.reason) - 1);
}

static void test_type_names(void **state)
{
	assert_string_equal(zcv_msg_type_name(ZCV_MSG_HELLO), "HELLO");
	assert_string_equal(zcv_msg_type_name(ZCV_MSG_BYE), "BYE");
	assert_string_equal(zcv_msg_type_name(0), "?");
	assert_string_equal(zcv_msg_type_name(77), "?");
	assert_int_equal(zcv_msg_known_size(0), 0);
	assert_int_equal(zcv_msg_known_size(ZCV_MSG_FRAME), sizeof(struct zcv_msg_frame));
}

static void test_validate_header(void **state)
{
	union zcv_msg m;
	size_t len;

	len = zcv_msg_init(&m, ZCV_MSG_RELEASE);
	assert_int_equal(zcv_msg_validate(&m, len, 0), 0);
	/* shorter than a header */
	assert_int_equal(zcv_msg_validate(&m, 0, 0), -EPROTO);
	assert_int_equal(zcv_msg_validate(&m, sizeof(m.hdr) - 1, 0), -EPROTO);
	/* truncated: hdr.size says more than arrived */
	assert_int_equal(zcv_msg_validate(&m, len - 4, 0), -EPROTO);
	/* size mismatch the other way */
	m.hdr.size = (uint32_t)len - 4;
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
	/* body smaller than the known one, consistently declared */
	assert_int_equal(zcv_msg_validate(&m, len - 4, 0), -EPROTO);
	/* a longer body (a newer peer appended fields) is fine */
	m.hdr.size = (uint32_t)len + 8;
	assert_int_equal(zcv_msg_validate(&m, len + 8, 0), 0);
	/* larger than any message */
	m.hdr.size = ZCV_MSG_MAX_SIZE + 8;
	assert_int_equal(zcv_msg_validate(&m, ZCV_MSG_MAX_SIZE + 8, 0), -EPROTO);
	/* unknown types */
	len = zcv_msg_init(&m, ZCV_MSG_RELEASE);
	m.hdr.type = 0;
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
	m.hdr.type = 42;
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
	/* version 0 does not exist */
	len = zcv_msg_init(&m, ZCV_MSG_RELEASE);
	m.hdr.version = 0;
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
}

static void test_validate_fds(void **state)
{
	static const enum zcv_msg_type no_fds[] = { ZCV_MSG_HELLO, ZCV_MSG_WELCOME, ZCV_MSG_FRAME,
						    ZCV_MSG_RELEASE, ZCV_MSG_BYE };
	union zcv_msg m;
	size_t len;

	for (size_t i = 0; i < ZCV_ARRAY_SIZE(no_fds); i++) {
		len = zcv_msg_init(&m, no_fds[i]);
		if (no_fds[i] == ZCV_MSG_HELLO)
			m.hello.min_version = 1;
		if (no_fds[i] == ZCV_MSG_WELCOME) {
			m.welcome.version = 1;
			m.welcome.path = 1;
			m.welcome.n_planes = 1;
			m.welcome.n_buffers = 1;
			m.welcome.max_hold = 1;
		}
		assert_int_equal(zcv_msg_validate(&m, len, 0), 0);
		assert_int_equal(zcv_msg_validate(&m, len, 1), -EPROTO);
	}

	len = zcv_msg_init(&m, ZCV_MSG_BUFFER);
	m.buffer.n_fds = 2;
	m.buffer.plane_fd[1] = 1;
	m.buffer.fd_size[0] = m.buffer.fd_size[1] = 4096;
	assert_int_equal(zcv_msg_validate(&m, len, 2), 0);
	/* BUFFER without fds, with a count that does not match */
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
	assert_int_equal(zcv_msg_validate(&m, len, 1), -EPROTO);
	assert_int_equal(zcv_msg_validate(&m, len, 3), -EPROTO);
	/* too many fds even when n_fds agrees */
	m.buffer.n_fds = ZCV_MSG_MAX_FDS + 1;
	assert_int_equal(zcv_msg_validate(&m, len, ZCV_MSG_MAX_FDS + 1), -EPROTO);
	m.buffer.n_fds = 2;
	/* plane in an fd that was not sent */
	m.buffer.plane_fd[2] = 2;
	assert_int_equal(zcv_msg_validate(&m, len, 2), -EPROTO);
	m.buffer.plane_fd[2] = 0;
	/* fd of size 0 */
	m.buffer.fd_size[1] = 0;
	assert_int_equal(zcv_msg_validate(&m, len, 2), -EPROTO);
	m.buffer.fd_size[1] = 4096;
	/* index beyond any pool */
	m.buffer.index = ZCV_POOL_MAX_BUFFERS;
	assert_int_equal(zcv_msg_validate(&m, len, 2), -EPROTO);
}

/* HELLO grew by appending constraints: the 56-byte HELLO of older clients
 * is still accepted, a body in between or bad alignments are not. */
static void test_hello_sizes(void **state)
{
	union zcv_msg m;
	size_t len;

	len = zcv_msg_init(&m, ZCV_MSG_HELLO);
	assert_int_equal(len, 88);
	m.hello.min_version = 1;
	assert_int_equal(zcv_msg_validate(&m, len, 0), 0);
	m.hdr.size = ZCV_MSG_HELLO_V1_SIZE;
	assert_int_equal(zcv_msg_validate(&m, ZCV_MSG_HELLO_V1_SIZE, 0), 0);
	m.hdr.size = ZCV_MSG_HELLO_V1_SIZE - 4;
	assert_int_equal(zcv_msg_validate(&m, ZCV_MSG_HELLO_V1_SIZE - 4, 0), -EPROTO);
	m.hdr.size = (uint32_t)len;
	m.hello.stride_align = 16;
	m.hello.height_align = 16;
	assert_int_equal(zcv_msg_validate(&m, len, 0), 0);
	m.hello.height_align = 12; /* not a power of two */
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
	m.hello.height_align = 16;
	m.hello.stride_align = 8192;
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
}

static void test_validate_fields(void **state)
{
	union zcv_msg m;
	size_t len;

	/* HELLO */
	len = zcv_msg_init(&m, ZCV_MSG_HELLO);
	m.hello.min_version = 1;
	memset(m.hello.name, 'x', sizeof(m.hello.name));
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
	m.hello.name[ZCV_NAME_MAX - 1] = '\0';
	assert_int_equal(zcv_msg_validate(&m, len, 0), 0);
	m.hello.min_version = 0;
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
	m.hello.min_version = ZCV_PROTOCOL_VERSION + 1; /* above its own max */
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
	m.hdr.version = ZCV_PROTOCOL_VERSION + 1; /* a newer client: fine here */
	assert_int_equal(zcv_msg_validate(&m, len, 0), 0);

	/* WELCOME */
	len = zcv_msg_init(&m, ZCV_MSG_WELCOME);
	m.welcome.version = 1;
	m.welcome.path = ZCV_PATH_COPY;
	m.welcome.n_planes = 2;
	m.welcome.n_buffers = 4;
	m.welcome.max_hold = 2;
	assert_int_equal(zcv_msg_validate(&m, len, 0), 0);
	m.welcome.path = 4;
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
	m.welcome.path = 0;
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
	m.welcome.path = ZCV_PATH_DMABUF;
	m.welcome.n_planes = ZCV_MAX_PLANES + 1;
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
	m.welcome.n_planes = 0;
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
	m.welcome.n_planes = 1;
	m.welcome.n_buffers = ZCV_POOL_MAX_BUFFERS + 1;
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
	m.welcome.n_buffers = 0;
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
	m.welcome.n_buffers = 1;
	m.welcome.max_hold = 0;
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
	m.welcome.max_hold = 1;
	m.welcome.fps_num = 30;
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
	m.welcome.fps_den = 1;
	assert_int_equal(zcv_msg_validate(&m, len, 0), 0);
	m.welcome.version = 0;
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);

	/* FRAME / RELEASE index */
	len = zcv_msg_init(&m, ZCV_MSG_FRAME);
	m.frame.index = ZCV_POOL_MAX_BUFFERS - 1;
	assert_int_equal(zcv_msg_validate(&m, len, 0), 0);
	m.frame.index = ZCV_POOL_MAX_BUFFERS;
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
	len = zcv_msg_init(&m, ZCV_MSG_RELEASE);
	m.release.index = UINT32_MAX;
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);

	/* BYE */
	len = zcv_msg_init_bye(&m.bye, -EPROTO, "x");
	assert_int_equal(zcv_msg_validate(&m, len, 0), 0);
	m.bye.error = 5;
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
	m.bye.error = 0;
	memset(m.bye.reason, 'r', sizeof(m.bye.reason));
	assert_int_equal(zcv_msg_validate(&m, len, 0), -EPROTO);
}

/* A message that must not carry fds but does: refused, fds closed. */
static void test_recv_fds_on_frame(void **state)
{
	struct zcv_msg_frame f;
	union zcv_msg got;
	int sv[2], fds[3], rfds[ZCV_MSG_MAX_FDS];
	unsigned rn = 77;
	size_t len = zcv_msg_init(&f, ZCV_MSG_FRAME);
	int before;

	pair(sv);
	for (int i = 0; i < 3; i++)
		fds[i] = make_memfd(4096);
	assert_int_equal(zcv_msg_send(sv[0], &f, len, fds, 3), 0);
	zcv_close_fds(fds, 3);
	before = zcv_test_count_fds();
	assert_int_equal(zcv_msg_read(sv[1], &got, rfds, &rn), -EPROTO);
	assert_int_equal(rn, 77); /* untouched on failure */
	/* the received fds never reach the caller and are closed */
	assert_int_equal(zcv_test_count_fds(), before);
	close_pair(sv);
}

/* The same with the fds split over two SCM_RIGHTS cmsgs. */
static void test_recv_two_cmsgs(void **state)
{
	struct zcv_msg_release r;
	union zcv_msg got;
	int sv[2], fds[2], rfds[ZCV_MSG_MAX_FDS];
	unsigned rn;
	size_t len = zcv_msg_init(&r, ZCV_MSG_RELEASE);
	int before;

	pair(sv);
	fds[0] = make_memfd(4096);
	fds[1] = make_memfd(4096);
	raw_send(sv[0], &r, len, fds, 2, true);
	zcv_close_fds(fds, 2);
	before = zcv_test_count_fds();
	assert_int_equal(zcv_msg_read(sv[1], &got, rfds, &rn), -EPROTO);
	assert_int_equal(zcv_test_count_fds(), before);
	close_pair(sv);
}

/* More fds than the receiver's control buffer holds: MSG_CTRUNC. */
static void test_recv_ctrunc(void **state)
{
	struct zcv_msg_buffer b;
	union zcv_msg got;
	int sv[2], fds[8], rfds[ZCV_MSG_MAX_FDS];
	unsigned rn;
	size_t len = zcv_msg_init(&b, ZCV_MSG_BUFFER);
	int before;

	b.n_fds = 8;
	for (int i = 0; i < 8; i++) {
		fds[i] = make_memfd(4096);
		b.fd_size[i % ZCV_MAX_PLANES] = 4096;
	}
	pair(sv);
	raw_send(sv[0], &b, len, fds, 8, false);
	zcv_close_fds(fds, 8);
	before = zcv_test_count_fds();
	assert_int_equal(zcv_msg_recv(sv[1], &got, sizeof(got), rfds, &rn), -EPROTO);
	assert_int_equal(zcv_test_count_fds(), before);

	/* one over the cap, too */
	for (int i = 0; i < ZCV_MSG_MAX_FDS + 1; i++)
		fds[i] = make_memfd(4096);
	raw_send(sv[0], &b, len, fds, ZCV_MSG_MAX_FDS + 1, false);
	zcv_close_fds(fds, ZCV_MSG_MAX_FDS + 1);
	before = zcv_test_count_fds();
	assert_int_equal(zcv_msg_read(sv[1], &got, rfds, &rn), -EPROTO);
	assert_int_equal(zcv_test_count_fds(), before);
	close_pair(sv);
}

/* A packet larger than any message: MSG_TRUNC, and its fds closed. */
static void test_recv_oversize(void **state)
{
	uint8_t big[ZCV_MSG_MAX_SIZE + 64] = { 0 };
	struct zcv_msg_hdr *hdr = (struct zcv_msg_hdr *)big;
	union zcv_msg got;
	int sv[2], fd, rfds[ZCV_MSG_MAX_FDS];
	unsigned rn;
	int before;

	hdr->type = ZCV_MSG_BUFFER;
	hdr->version = 1;
	hdr->size = sizeof(big);
	pair(sv);
	fd = make_memfd(4096);
	raw_send(sv[0], big, sizeof(big), &fd, 1, false);
	close(fd);
	raw_send(sv[0], big, sizeof(big), NULL, 0, false);
	before = zcv_test_count_fds();
	assert_int_equal(zcv_msg_read(sv[1], &got, rfds, &rn), -EPROTO);
	assert_int_equal(zcv_test_count_fds(), before);
	assert_int_equal(zcv_msg_read(sv[1], &got, rfds, &rn), -EPROTO);
	close_pair(sv);
}

/* Structurally bad packets read from a socket are refused with their fds. */
static void test_read_invalid_buffer(void **state)
{
	struct zcv_msg_buffer b;
	union zcv_msg got;
	int sv[2], fds[2], rfds[ZCV_MSG_MAX_FDS];
	unsigned rn;
	size_t len = zcv_msg_init(&b, ZCV_MSG_BUFFER);
	int before;

	pair(sv);
	b.n_fds = 2;
	b.plane_fd[0] = 0;
	b.plane_fd[1] = 3; /* out of range */
	b.fd_size[0] = b.fd_size[1] = 4096;
	fds[0] = make_memfd(4096);
	fds[1] = make_memfd(4096);
	assert_int_equal(zcv_msg_send(sv[0], &b, len, fds, 2), 0);
	b.plane_fd[1] = 1;
	b.n_fds = 1; /* n_fds field says 1, two arrive */
	assert_int_equal(zcv_msg_send(sv[0], &b, len, fds, 2), 0);
	zcv_close_fds(fds, 2);
	before = zcv_test_count_fds();
	assert_int_equal(zcv_msg_read(sv[1], &got, rfds, &rn), -EPROTO);
	assert_int_equal(zcv_msg_read(sv[1], &got, rfds, &rn), -EPROTO);
	assert_int_equal(zcv_test_count_fds(), before);
	/* short packet */
	assert_int_equal(send(sv[0], "abc", 3, 0), 3);
	assert_int_equal(zcv_msg_read(sv[1], &got, rfds, &rn), -EPROTO);
	close_pair(sv);
}

static void test_recv_eof_eagain(void **state)
{
	union zcv_msg got;
	int sv[2], rfds[ZCV_MSG_MAX_FDS];
	unsigned rn;
	int fds[ZCV_MSG_MAX_FDS + 1];
	struct zcv_msg_release r;
	size_t len = zcv_msg_init(&r, ZCV_MSG_RELEASE);

	pair(sv);
	assert_int_equal(zcv_msg_read(sv[1], &got, rfds, &rn), -EAGAIN);
	/* the sender caps fds per message */
	for (int i = 0; i < ZCV_MSG_MAX_FDS + 1; i++)
		fds[i] = sv[0];
	assert_int_equal(zcv_msg_send(sv[0], &r, len, fds, ZCV_MSG_MAX_FDS + 1), -EINVAL);
	close(sv[0]);
	assert_int_equal(zcv_msg_read(sv[1], &got, rfds, &rn), 0);
	assert_int_equal(zcv_msg_send(sv[1], &r, len, NULL, 0), -EPIPE);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, zcv_test_fd_setup, zcv_test_fd_teardown)
		T(test_roundtrip_all), T(test_type_names),          T(test_validate_header),
		T(test_validate_fds),  T(test_validate_fields),     T(test_recv_fds_on_frame),
		T(test_hello_sizes),   T(test_recv_two_cmsgs),      T(test_recv_ctrunc),
		T(test_recv_oversize), T(test_read_invalid_buffer), T(test_recv_eof_eagain),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
