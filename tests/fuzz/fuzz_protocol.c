/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the message decoder and validator (protocol.c).
 *
 * Three modes, chosen by the first byte (struct fp_head):
 * - zcv_msg_validate() on the packet as is, in a buffer of exactly its
 *   length (ASan sees any read past it), with a claimed fd count;
 * - the packet sent over a SOCK_SEQPACKET socketpair with real fds (in one
 *   or two SCM_RIGHTS headers) and read back with zcv_msg_read(): every fd
 *   that arrived is either handed out CLOEXEC or closed;
 * - the encoders (zcv_msg_init, zcv_msg_init_bye) fed from the input: what
 *   they produce must validate.
 * After each input the fd count must be what it was before.
 */
#include <stddef.h>
#include <stdint.h>
#include <zcv/pool.h>
#include "fuzz_common.h"
#include "protocol.h"
#include "wire.h"

static int pair[2] = { -1, -1 };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
		abort();
	return 0;
}

/* What validate() promised holds for a message it accepted. */
static void check_accepted(const union zcv_msg *m, size_t len, unsigned n_fds)
{
	size_t known = zcv_msg_known_size(m->hdr.type);

	FUZZ_CHECK(known, "accepted unknown type %u", m->hdr.type);
	FUZZ_CHECK(m->hdr.size == len, "size %u, packet %zu", m->hdr.size, len);
	FUZZ_CHECK(len <= ZCV_MSG_MAX_SIZE, "packet %zu", len);
	FUZZ_CHECK(m->hdr.version >= ZCV_PROTOCOL_MIN_VERSION, "version %u", m->hdr.version);
	if (m->hdr.type == ZCV_MSG_HELLO)
		FUZZ_CHECK(len >= ZCV_MSG_HELLO_V1_SIZE, "HELLO of %zu bytes", len);
	else
		FUZZ_CHECK(len >= known, "%s of %zu bytes", zcv_msg_type_name(m->hdr.type), len);
	if (m->hdr.type != ZCV_MSG_BUFFER) {
		FUZZ_CHECK(n_fds == 0, "%s with %u fds", zcv_msg_type_name(m->hdr.type), n_fds);
		return;
	}
	FUZZ_CHECK(n_fds >= 1 && n_fds <= ZCV_MSG_MAX_FDS, "BUFFER with %u fds", n_fds);
	FUZZ_CHECK(m->buffer.n_fds == n_fds, "BUFFER n_fds %u, %u fds", m->buffer.n_fds, n_fds);
	FUZZ_CHECK(m->buffer.index < ZCV_POOL_MAX_BUFFERS, "BUFFER index %u", m->buffer.index);
	for (unsigned p = 0; p < ZCV_MAX_PLANES; p++)
		FUZZ_CHECK(m->buffer.plane_fd[p] < n_fds, "plane %u in fd %u", p,
			   m->buffer.plane_fd[p]);
}

static void run_validate(const uint8_t *pkt, size_t len, unsigned n_fds)
{
	/* An exact-size copy: the decoder must not read past the packet. An
	 * empty packet still gets a (1-byte) allocation to point at. */
	uint8_t *copy = malloc(len ? len : 1);
	int r;

	if (!copy)
		abort();
	memcpy(copy, pkt, len);
	r = zcv_msg_validate(copy, len, n_fds);
	FUZZ_CHECK(r == 0 || r == -EPROTO, "validate returned %d", r);
	if (r == 0) {
		union zcv_msg m;

		memset(&m, 0, sizeof(m));
		memcpy(&m, copy, len);
		check_accepted(&m, len, n_fds);
	}
	free(copy);
}

static void run_socket(const struct fp_head *h, const uint8_t *pkt, size_t len)
{
	unsigned n_fds = h->n_fds % (FUZZ_MAX_FDS + 1), n_made = 0, n_got = 0;
	int fds[FUZZ_MAX_FDS], got[ZCV_MSG_MAX_FDS];
	union zcv_msg m;
	int before, r, s;

	for (unsigned i = 0; i < n_fds; i++) {
		int fd = fuzz_make_fd(h->fd_kind + i, 64, NULL);

		if (fd >= 0)
			fds[n_made++] = fd;
	}
	before = fuzz_count_fds();
	s = fuzz_send(pair[0], pkt, len, fds, n_made, h->mode & FP_MODE_SPLIT);
	for (unsigned i = 0; i < n_made; i++)
		close(fds[i]);
	before -= (int)n_made;
	if (s < 0) {
		/* EMSGSIZE and the like: nothing was queued */
		FUZZ_CHECK(fuzz_count_fds() == before, "send failed, fds left");
		return;
	}
	r = zcv_msg_read(pair[1], &m, got, &n_got);
	if (r > 0) {
		FUZZ_CHECK((size_t)r == len, "read %d of a %zu-byte packet", r, len);
		FUZZ_CHECK(!memcmp(&m, pkt, len), "the packet changed on the way");
		FUZZ_CHECK(n_got == n_made, "%u fds sent, %u handed out", n_made, n_got);
		check_accepted(&m, (size_t)r, n_got);
		for (unsigned i = 0; i < n_got; i++) {
			int fl = fcntl(got[i], F_GETFD);

			FUZZ_CHECK(fl >= 0 && (fl & FD_CLOEXEC), "fd %d: flags %d", got[i], fl);
			close(got[i]);
		}
	} else {
		/* a 0-byte packet reads as end of file; the rest are errors */
		FUZZ_CHECK(r == -EPROTO || (r == 0 && len == 0), "read returned %d", r);
	}
	/* Nothing may stay queued behind a packet the reader rejected. */
	FUZZ_CHECK(zcv_msg_read(pair[1], &m, got, &n_got) == -EAGAIN, "socket not empty");
	r = fuzz_settle_fds();
	FUZZ_CHECK(r == before, "fds leaked: %d before, %d after", before, r);
}

static void run_encode(const uint8_t *payload, size_t len)
{
	struct fz f = { payload, len };
	struct fp_encode e;
	union zcv_msg m;
	unsigned type;
	size_t n;
	char text[81];

	fz_take(&f, &e, sizeof(e));
	type = e.type % 8;
	memcpy(text, e.text, sizeof(e.text));
	text[sizeof(e.text)] = '\0';
	if (type == ZCV_MSG_BYE) {
		n = zcv_msg_init_bye(&m.bye, -(int)e.error, text);
	} else if (zcv_msg_known_size(type)) {
		n = zcv_msg_init(&m, type);
		FUZZ_CHECK(n == zcv_msg_known_size(type), "init of %u: %zu bytes", type, n);
		if (type == ZCV_MSG_HELLO) {
			m.hello.min_version = ZCV_PROTOCOL_MIN_VERSION;
			snprintf(m.hello.name, sizeof(m.hello.name), "%s", text);
		} else if (type == ZCV_MSG_FRAME) {
			m.frame.index = e.index % ZCV_POOL_MAX_BUFFERS;
		} else if (type == ZCV_MSG_RELEASE) {
			m.release.index = e.index % ZCV_POOL_MAX_BUFFERS;
		} else if (type == ZCV_MSG_STATUS) {
			m.status.flags = e.error & ZCV_STATUS_SOURCE_LOST;
			snprintf(m.status.reason, sizeof(m.status.reason), "%s", text);
		} else {
			/* WELCOME and BUFFER need fields init leaves at 0 */
			FUZZ_CHECK(zcv_msg_validate(&m, n, 0) == -EPROTO, "empty %s accepted",
				   zcv_msg_type_name(type));
			return;
		}
	} else {
		FUZZ_CHECK(!strcmp(zcv_msg_type_name(type), "?"), "type %u has a name", type);
		return;
	}
	FUZZ_CHECK(zcv_msg_validate(&m, n, 0) == 0, "encoded %s does not validate",
		   zcv_msg_type_name(type));
	check_accepted(&m, n, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fp_head h;
	int before = fuzz_count_fds(), after;

	if (size < sizeof(h))
		return 0;
	memcpy(&h, data, sizeof(h));
	data += sizeof(h);
	size -= sizeof(h);
	if (h.mode & FP_MODE_ENCODE)
		run_encode(data, size);
	else if (h.mode & FP_MODE_SOCKET)
		run_socket(&h, data, size);
	else
		run_validate(data, size, h.n_fds % (FUZZ_MAX_FDS + 1));
	after = fuzz_settle_fds();
	FUZZ_CHECK(after == before, "fds leaked: %d before, %d after", before, after);
	return 0;
}
