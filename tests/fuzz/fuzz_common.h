/* SPDX-License-Identifier: MIT */
/*
 * Shared by the libFuzzer harnesses and the seed generator: the byte
 * reader that turns a fuzz input into decisions, the fds a harness can
 * attach to a message, and the fd-count check each harness ends with.
 *
 * Input formats are the harnesses' own (see fuzz_ops.h), not the wire
 * protocol: a field of all zero bytes always means "the valid default",
 * so seeds are short and every mutation is a deliberate deviation.
 */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include "closer.h"
#include "fuzz_ops.h"

/* Reads from a fuzz input; past its end every read yields zeros. */
struct fz {
	const uint8_t *p;
	size_t n;
};

static inline bool fz_done(const struct fz *f)
{
	return f->n == 0;
}

static inline void fz_take(struct fz *f, void *dst, size_t size)
{
	size_t k = size < f->n ? size : f->n;

	memcpy(dst, f->p, k);
	memset((uint8_t *)dst + k, 0, size - k);
	f->p += k;
	f->n -= k;
}

static inline uint8_t fz_u8(struct fz *f)
{
	uint8_t v;

	fz_take(f, &v, 1);
	return v;
}

static inline uint16_t fz_u16(struct fz *f)
{
	uint8_t b[2];

	fz_take(f, b, 2);
	return (uint16_t)(b[0] | b[1] << 8);
}

static inline uint32_t fz_u32(struct fz *f)
{
	return fz_u16(f) | (uint32_t)fz_u16(f) << 16;
}

static inline uint64_t fz_u64(struct fz *f)
{
	return fz_u32(f) | (uint64_t)fz_u32(f) << 32;
}

static inline uint16_t fz_le16(const uint8_t b[2])
{
	return (uint16_t)(b[0] | b[1] << 8);
}

static inline uint32_t fz_le32(const uint8_t b[4])
{
	return fz_le16(b) | (uint32_t)fz_le16(b + 2) << 16;
}

/* A harness's own invariant broke: libFuzzer reports the abort and keeps
 * the input. */
#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz check failed: %s: ", #cond);                         \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static inline int fuzz_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		abort();
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

/*
 * Received fds that are not kept are closed by libzcv's closer thread,
 * asynchronously: wait for its queue to drain before counting.
 */
static inline int fuzz_settle_fds(void)
{
	if (zcv_fd_dispose_flush(5000000000ull) < 0)
		FUZZ_CHECK(0, "the closer thread did not finish within 5 s");
	return fuzz_count_fds();
}

/* A memfd of size bytes with the given seals (0: none). */
static inline int fuzz_memfd(uint64_t size, int seals)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)size) < 0 || (seals && fcntl(fd, F_ADD_SEALS, seals) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Makes an fd of the given kind (fuzz_ops.h). Memory kinds get size bytes.
 * Returns the fd (the caller closes it) or -1; *ret_keep, when not NULL,
 * is set to a second reference the harness keeps to shrink it later, for
 * the kinds that can shrink (else -1).
 */
static inline int fuzz_make_fd(unsigned kind, uint64_t size, int *ret_keep)
{
	int fd = -1, p[2];

	if (ret_keep)
		*ret_keep = -1;
	switch (kind % FUZZ_FD_KINDS) {
	case FUZZ_FD_SEALED:
		return fuzz_memfd(size,
				  F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL);
	case FUZZ_FD_SEALED_RO:
		return fuzz_memfd(size, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
	case FUZZ_FD_SIZE_SEALED:
		return fuzz_memfd(size, F_SEAL_SHRINK | F_SEAL_GROW);
	case FUZZ_FD_GROW_ONLY:
		fd = fuzz_memfd(size, F_SEAL_GROW);
		break;
	case FUZZ_FD_UNSEALED:
		fd = fuzz_memfd(size, 0);
		break;
	case FUZZ_FD_PIPE:
		if (pipe2(p, O_CLOEXEC) < 0)
			return -1;
		close(p[1]);
		return p[0];
	case FUZZ_FD_DEVNULL:
		return open("/dev/null", O_RDWR | O_CLOEXEC);
	case FUZZ_FD_SOCKET:
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p) < 0)
			return -1;
		close(p[1]);
		return p[0];
	case FUZZ_FD_FILE:
		fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd >= 0 && ftruncate(fd, (off_t)size) < 0) {
			close(fd);
			return -1;
		}
		break;
	}
	/* the kinds whose size can still change */
	if (fd >= 0 && ret_keep)
		*ret_keep = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	return fd;
}

/* Sends len bytes of msg with n_fds fds (borrowed), never blocking or
 * raising SIGPIPE. Several fds go in two SCM_RIGHTS headers when split is
 * set (the receiver must collect both). Returns 0 or -errno. */
static inline int fuzz_send(int sock, const void *msg, size_t len, const int *fds, unsigned n_fds,
			    bool split)
{
	union {
		struct cmsghdr align;
		char buf[2 * CMSG_SPACE(sizeof(int) * FUZZ_MAX_FDS)];
	} control;
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (n_fds > FUZZ_MAX_FDS)
		n_fds = FUZZ_MAX_FDS;
	memset(&control, 0, sizeof(control));
	if (n_fds) {
		unsigned first = split && n_fds > 1 ? n_fds / 2 : n_fds;
		struct cmsghdr *cm;

		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * first);
		if (first < n_fds)
			mh.msg_controllen += CMSG_SPACE(sizeof(int) * (n_fds - first));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * first);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * first);
		if (first < n_fds) {
			cm = CMSG_NXTHDR(&mh, cm);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int) * (n_fds - first));
			memcpy(CMSG_DATA(cm), fds + first, sizeof(int) * (n_fds - first));
		}
	}
	n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	return n < 0 ? -errno : 0;
}

/*
 * The lies a harness can tell about a message it built, read from the
 * input after the message's own fields: a flags byte (FUZZ_MUT_*) and,
 * for each flag set, its argument. Returns the length to send (the
 * message may have been extended up to cap bytes, zero-filled) and in
 * ret_extra the fds to attach besides the message's own.
 */
struct fuzz_extra_fds {
	unsigned n;
	uint8_t kind[FUZZ_MAX_FDS];
	bool split; /* in two SCM_RIGHTS headers */
};

static inline size_t fuzz_mutate(struct fz *f, uint8_t *msg, size_t len, size_t cap,
				 struct fuzz_extra_fds *ret_extra)
{
	uint8_t flags = fz_u8(f);

	memset(ret_extra, 0, sizeof(*ret_extra));

	if (flags & FUZZ_MUT_LENGTH) {
		size_t want = fz_u16(f) % (cap + 1);

		if (want > len)
			memset(msg + len, 0, want - len);
		len = want;
	}
	if ((flags & FUZZ_MUT_TYPE) && cap >= 2) {
		uint16_t v = fz_u8(f);

		memcpy(msg, &v, 2);
	}
	if ((flags & FUZZ_MUT_VERSION) && cap >= 4) {
		uint16_t v = fz_u16(f);

		memcpy(msg + 2, &v, 2);
	}
	if ((flags & FUZZ_MUT_SIZE) && cap >= 8) {
		uint32_t v = fz_u16(f);

		memcpy(msg + 4, &v, 4);
	}
	if (flags & FUZZ_MUT_BYTE) {
		uint8_t off = fz_u8(f), val = fz_u8(f);

		if (off < cap)
			msg[off] = val;
	}
	if (flags & FUZZ_MUT_WORD) {
		uint8_t off = fz_u8(f);
		uint32_t val = fz_u32(f);

		if ((size_t)off + 4 <= cap)
			memcpy(msg + off, &val, 4);
	}
	if (flags & FUZZ_MUT_FDS) {
		ret_extra->n = fz_u8(f) % (FUZZ_MAX_FDS + 1);
		for (unsigned i = 0; i < ret_extra->n; i++)
			ret_extra->kind[i] = fz_u8(f);
		ret_extra->split = ret_extra->n > 1 && (ret_extra->kind[0] & 0x80);
	}
	return len;
}
