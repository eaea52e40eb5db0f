/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <zcv/log.h>
#include <zcv/pool.h>
#include "wire.h"

size_t zcv_msg_known_size(unsigned type)
{
	switch (type) {
	case ZCV_MSG_HELLO:
		return sizeof(struct zcv_msg_hello);
	case ZCV_MSG_WELCOME:
		return sizeof(struct zcv_msg_welcome);
	case ZCV_MSG_BUFFER:
		return sizeof(struct zcv_msg_buffer);
	case ZCV_MSG_FRAME:
		return sizeof(struct zcv_msg_frame);
	case ZCV_MSG_RELEASE:
		return sizeof(struct zcv_msg_release);
	case ZCV_MSG_BYE:
		return sizeof(struct zcv_msg_bye);
	case ZCV_MSG_STATUS:
		return sizeof(struct zcv_msg_status);
	}
	return 0;
}

const char *zcv_msg_type_name(unsigned type)
{
	static const char *const names[] = {
		[ZCV_MSG_HELLO] = "HELLO",     [ZCV_MSG_WELCOME] = "WELCOME",
		[ZCV_MSG_BUFFER] = "BUFFER",   [ZCV_MSG_FRAME] = "FRAME",
		[ZCV_MSG_RELEASE] = "RELEASE", [ZCV_MSG_BYE] = "BYE",
		[ZCV_MSG_STATUS] = "STATUS",
	};

	if (type < ZCV_ARRAY_SIZE(names) && names[type])
		return names[type];
	return "?";
}

size_t zcv_msg_init(void *msg, enum zcv_msg_type type)
{
	size_t size = zcv_msg_known_size(type);
	struct zcv_msg_hdr *hdr = msg;

	memset(msg, 0, size);
	hdr->type = (uint16_t)type;
	hdr->version = ZCV_PROTOCOL_VERSION;
	hdr->size = (uint32_t)size;
	return size;
}

size_t zcv_msg_init_bye(struct zcv_msg_bye *bye, int error, const char *reason)
{
	size_t size = zcv_msg_init(bye, ZCV_MSG_BYE);

	bye->error = error;
	if (reason)
		snprintf(bye->reason, sizeof(bye->reason), "%s", reason);
	return size;
}

static bool nul_terminated(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

/* Each check says which rule failed in the debug log: the peer's author
 * needs that, and the peer itself only learns -EPROTO. */
#define REJECT(fmt, ...)                                                                           \
	do {                                                                                       \
		zcv_debug("protocol: rejecting " fmt, ##__VA_ARGS__);                              \
		return -EPROTO;                                                                    \
	} while (0)

int zcv_msg_validate(const void *buf, size_t len, unsigned n_fds)
{
	const union zcv_msg *m = buf;
	size_t known;

	if (len < sizeof(struct zcv_msg_hdr))
		REJECT("a packet shorter than a header");
	if (len > ZCV_MSG_MAX_SIZE)
		REJECT("a packet larger than ZCV_MSG_MAX_SIZE");
	if (m->hdr.size != len)
		REJECT("%s size %u in a %zu-byte packet", zcv_msg_type_name(m->hdr.type),
		       m->hdr.size, len);
	if (m->hdr.version < ZCV_PROTOCOL_MIN_VERSION)
		REJECT("%s version %u", zcv_msg_type_name(m->hdr.type), m->hdr.version);
	known = zcv_msg_known_size(m->hdr.type);
	if (!known)
		REJECT("unknown type %u", m->hdr.type);
	/* HELLO grew by appending; a sender from before knows the old size */
	if (m->hdr.type == ZCV_MSG_HELLO && len >= ZCV_MSG_HELLO_V1_SIZE)
		known = len < known ? len : known;
	if (len < known)
		REJECT("%s: body %zu bytes, need %zu", zcv_msg_type_name(m->hdr.type), len, known);
	if (m->hdr.type != ZCV_MSG_BUFFER && n_fds)
		REJECT("%s: carries %u fds", zcv_msg_type_name(m->hdr.type), n_fds);

	switch (m->hdr.type) {
	case ZCV_MSG_HELLO:
		if (m->hello.min_version < ZCV_PROTOCOL_MIN_VERSION ||
		    m->hello.min_version > m->hdr.version)
			REJECT("HELLO: min_version %u, version %u", m->hello.min_version,
			       m->hdr.version);
		if (!nul_terminated(m->hello.name, sizeof(m->hello.name)))
			REJECT("HELLO: name not NUL-terminated");
		if (len >= sizeof(m->hello) &&
		    ((m->hello.stride_align & (m->hello.stride_align - 1)) ||
		     (m->hello.height_align & (m->hello.height_align - 1)) ||
		     m->hello.stride_align > 4096 || m->hello.height_align > 256))
			REJECT("HELLO: stride_align %u, height_align %u", m->hello.stride_align,
			       m->hello.height_align);
		break;
	case ZCV_MSG_WELCOME:
		if (m->welcome.version < ZCV_PROTOCOL_MIN_VERSION)
			REJECT("WELCOME: version %u", m->welcome.version);
		if (m->welcome.path < ZCV_PATH_DMABUF || m->welcome.path > ZCV_PATH_COPY)
			REJECT("WELCOME: path %u", m->welcome.path);
		if (m->welcome.n_planes == 0 || m->welcome.n_planes > ZCV_MAX_PLANES)
			REJECT("WELCOME: n_planes %u", m->welcome.n_planes);
		if (m->welcome.n_buffers == 0 || m->welcome.n_buffers > ZCV_POOL_MAX_BUFFERS)
			REJECT("WELCOME: n_buffers %u", m->welcome.n_buffers);
		if (m->welcome.max_hold == 0)
			REJECT("WELCOME: max_hold 0");
		if (m->welcome.fps_num && !m->welcome.fps_den)
			REJECT("WELCOME: fps %u/0", m->welcome.fps_num);
		break;
	case ZCV_MSG_BUFFER:
		if (n_fds == 0 || n_fds > ZCV_MSG_MAX_FDS)
			REJECT("BUFFER: %u fds", n_fds);
		if (m->buffer.n_fds != n_fds)
			REJECT("BUFFER: n_fds %u but %u fds", m->buffer.n_fds, n_fds);
		if (m->buffer.index >= ZCV_POOL_MAX_BUFFERS)
			REJECT("BUFFER: index %u", m->buffer.index);
		for (unsigned p = 0; p < ZCV_MAX_PLANES; p++)
			if (m->buffer.plane_fd[p] >= n_fds)
				REJECT("BUFFER: plane %u in fd %u of %u", p, m->buffer.plane_fd[p],
				       n_fds);
		for (unsigned f = 0; f < n_fds; f++)
			if (m->buffer.fd_size[f] == 0)
				REJECT("BUFFER: fd %u has size 0", f);
		break;
	case ZCV_MSG_FRAME:
		if (m->frame.index >= ZCV_POOL_MAX_BUFFERS)
			REJECT("FRAME: index %u", m->frame.index);
		break;
	case ZCV_MSG_RELEASE:
		if (m->release.index >= ZCV_POOL_MAX_BUFFERS)
			REJECT("RELEASE: index %u", m->release.index);
		break;
	case ZCV_MSG_BYE:
		if (m->bye.error > 0)
			REJECT("BYE: error %d", m->bye.error);
		if (!nul_terminated(m->bye.reason, sizeof(m->bye.reason)))
			REJECT("BYE: reason not NUL-terminated");
		break;
	case ZCV_MSG_STATUS:
		if (m->status.flags & ~ZCV_STATUS_SOURCE_LOST)
			REJECT("STATUS: flags 0x%x", m->status.flags);
		if (!nul_terminated(m->status.reason, sizeof(m->status.reason)))
			REJECT("STATUS: reason not NUL-terminated");
		break;
	}
	return 0;
}

void zcv_close_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

int zcv_msg_send(int sock, const void *msg, size_t len, const int *fds, unsigned n_fds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * ZCV_MSG_MAX_FDS)];
	} control;
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (n_fds > ZCV_MSG_MAX_FDS)
		return -EINVAL;
	if (n_fds) {
		struct cmsghdr *cm;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * n_fds);
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* SEQPACKET sends whole packets or nothing; anything else is a bug */
	if ((size_t)n != len)
		return -EIO;
	return 0;
}

/* Room for all a message can carry, not just what ours may: see wire.h */
union recv_control {
	struct cmsghdr align;
	char buf[CMSG_SPACE(sizeof(int) * ZCV_KERNEL_MAX_FDS)];
};

/* After recvmsg() returned n for mh: the fds it carried (every one the
 * kernel installed, however it split them into cmsgs) into fds, or all
 * disposed of and -EPROTO when the message is not acceptable as such. */
static int recv_finish(const struct msghdr *mh, ssize_t n, size_t size, int fds[ZCV_MSG_MAX_FDS],
		       unsigned *ret_n_fds)
{
	int got[sizeof(union recv_control) / sizeof(int)];
	unsigned n_got = 0;
	int r = 0;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm;
	     cm = CMSG_NXTHDR((struct msghdr *)mh, cm)) {
		size_t k;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
		    cm->cmsg_len < CMSG_LEN(0))
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k && n_got < ZCV_ARRAY_SIZE(got); i++)
			memcpy(&got[n_got++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
	}

	if (mh->msg_flags & MSG_TRUNC) {
		zcv_debug("protocol: packet larger than %zu bytes", size);
		r = -EPROTO;
	} else if (mh->msg_flags & MSG_CTRUNC) {
		/* Not for lack of room (there is room for the kernel's maximum):
		 * no free fd slot, or a control message we did not ask for. */
		zcv_debug("protocol: control data truncated");
		r = -EPROTO;
	} else if (n_got > ZCV_MSG_MAX_FDS) {
		zcv_debug("protocol: %u fds in one message", n_got);
		r = -EPROTO;
	} else if (n == 0 && n_got) {
		r = -EPROTO;
	}
	if (r < 0) {
		zcv_fds_dispose(got, n_got);
		return r;
	}
	for (unsigned i = 0; i < n_got; i++)
		fds[i] = got[i];
	*ret_n_fds = n_got;
	return (int)n;
}

int zcv_msg_recv(int sock, void *buf, size_t size, int fds[ZCV_MSG_MAX_FDS], unsigned *ret_n_fds)
{
	union recv_control control;
	struct iovec iov = { .iov_base = buf, .iov_len = size };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	ssize_t n;

	memset(buf, 0, size);
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return recv_finish(&mh, n, size, fds, ret_n_fds);
}

/* What zcv_msg_read() makes of a message received with n bytes. */
static int read_finish(union zcv_msg *msg, int n, int fds[ZCV_MSG_MAX_FDS], unsigned *ret_n_fds)
{
	int r;

	if (n <= 0)
		return n;
	r = zcv_msg_validate(msg, (size_t)n, *ret_n_fds);
	if (r < 0) {
		zcv_fds_dispose(fds, *ret_n_fds);
		*ret_n_fds = 0;
		return r;
	}
	return n;
}

int zcv_msg_read(int sock, union zcv_msg *msg, int fds[ZCV_MSG_MAX_FDS], unsigned *ret_n_fds)
{
	unsigned n_fds = 0;
	int n;

	n = zcv_msg_recv(sock, msg, sizeof(*msg), fds, &n_fds);
	n = read_finish(msg, n, fds, &n_fds);
	if (n > 0)
		*ret_n_fds = n_fds;
	return n;
}

/* zcv_msg_read_batch() with recvmmsg flags; EINTR retried unless wait. */
static int read_batch(int sock, struct zcv_msg_batch *b, unsigned max, bool wait)
{
	union recv_control control[ZCV_MSG_BATCH];
	struct mmsghdr mm[ZCV_MSG_BATCH];
	struct iovec iov[ZCV_MSG_BATCH];
	int n;

	if (max == 0 || max > ZCV_MSG_BATCH)
		max = ZCV_MSG_BATCH;
	memset(b->msgs, 0, sizeof(b->msgs[0]) * max);
	memset(mm, 0, sizeof(mm[0]) * max);
	for (unsigned i = 0; i < max; i++) {
		iov[i] = (struct iovec){ .iov_base = &b->msgs[i], .iov_len = sizeof(b->msgs[i]) };
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		mm[i].msg_hdr.msg_control = control[i].buf;
		mm[i].msg_hdr.msg_controllen = sizeof(control[i].buf);
	}
	if (wait) {
		/* One message or the socket's timeout ends the wait; whatever
		 * else is queued by then comes in the same call. A signal
		 * makes it return (-EINTR), SA_RESTART or not, because the
		 * caller set SO_RCVTIMEO: see zcv_msg_read_batch_wait(). */
		n = recvmmsg(sock, mm, max, MSG_CMSG_CLOEXEC | MSG_WAITFORONE, NULL);
	} else {
		do
			n = recvmmsg(sock, mm, max, MSG_CMSG_CLOEXEC | MSG_DONTWAIT, NULL);
		while (n < 0 && errno == EINTR);
	}
	if (n < 0)
		return -errno;
	if (n == 0)
		return 0;
	for (int i = 0; i < n; i++) {
		int r;

		b->n_fds[i] = 0;
		r = recv_finish(&mm[i].msg_hdr, (ssize_t)mm[i].msg_len, sizeof(b->msgs[i]),
				b->fds[i], &b->n_fds[i]);
		b->res[i] = read_finish(&b->msgs[i], r, b->fds[i], &b->n_fds[i]);
		/* a 0 is a hang-up or an empty packet: either way the caller
		 * stops there; whatever came after it still has its fds
		 * collected here, for the caller to dispose of */
		if (b->res[i] <= 0)
			b->n_fds[i] = 0;
	}
	b->n = (unsigned)n;
	return n;
}

int zcv_msg_read_batch(int sock, struct zcv_msg_batch *b, unsigned max)
{
	return read_batch(sock, b, max, false);
}

int zcv_msg_read_batch_wait(int sock, struct zcv_msg_batch *b, unsigned max)
{
	return read_batch(sock, b, max, true);
}

void zcv_msg_hello_set_constraints(struct zcv_msg_hello *h, const struct zcv_constraints *c)
{
	for (unsigned p = 0; p < ZCV_MAX_PLANES; p++)
		h->min_plane_size[p] = c->min_plane_size[p];
	h->stride_align = c->stride_align > 1 ? c->stride_align : 0;
	h->height_align = c->height_align > 1 ? c->height_align : 0;
	h->max_hold = c->hold;
}

void zcv_msg_hello_get_constraints(const struct zcv_msg_hello *h, struct zcv_constraints *ret)
{
	for (unsigned p = 0; p < ZCV_MAX_PLANES; p++)
		ret->min_plane_size[p] = h->min_plane_size[p];
	ret->stride_align = h->stride_align;
	ret->height_align = h->height_align;
	ret->hold = h->max_hold;
}
