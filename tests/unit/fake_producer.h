/* SPDX-License-Identifier: MIT */
/* A fake producer's messages, written straight to a client's socket by the
 * unit tests that play the producer (test_client_trust, test_client_wait,
 * test_ipc): well formed unless a test changes them afterwards. */
#pragma once

#include <zcv/format.h>
#include "wire.h"

/* WELCOME of generation for layout l on path, n_buffers, hold max_hold. */
static inline void fake_send_welcome(int fd, const struct zcv_layout *l, uint16_t path,
				     unsigned max_hold, unsigned n_buffers, uint32_t generation)
{
	struct zcv_msg_welcome w;
	size_t len = zcv_msg_init(&w, ZCV_MSG_WELCOME);

	w.version = ZCV_PROTOCOL_VERSION;
	w.path = path;
	w.max_hold = max_hold;
	w.fourcc = l->fourcc;
	w.width = l->width;
	w.height = l->height;
	w.n_planes = l->n_planes;
	for (unsigned p = 0; p < l->n_planes; p++)
		w.planes[p] = (struct zcv_wire_plane){ l->planes[p].offset, l->planes[p].stride,
						       l->planes[p].size, 0 };
	w.generation = generation;
	w.n_buffers = n_buffers;
	w.frame_size = l->size;
	assert_int_equal(zcv_msg_send(fd, &w, len, NULL, 0), 0);
}

/* BUFFER idx of generation in buf_fd (borrowed), announced as size bytes. */
static inline void fake_send_buffer(int fd, unsigned idx, uint32_t generation, int buf_fd,
				    uint64_t size)
{
	struct zcv_msg_buffer b;
	size_t len = zcv_msg_init(&b, ZCV_MSG_BUFFER);

	b.generation = generation;
	b.index = idx;
	b.n_fds = 1;
	b.fd_size[0] = size;
	assert_int_equal(zcv_msg_send(fd, &b, len, &buf_fd, 1), 0);
}
