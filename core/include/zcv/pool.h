/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <zcv/format.h>
#include <zcv/stream.h>

#define ZCV_POOL_MAX_BUFFERS 32

enum zcv_buffer_state {
	ZCV_BUFFER_FREE = 0, /* the producer may fill it */
	ZCV_BUFFER_PRODUCER, /* being filled (or queued in a driver) */
	ZCV_BUFFER_LENT,     /* published; held by >= 1 consumer */
};

enum zcv_memory_kind {
	ZCV_MEMORY_MEMFD = 1,
	ZCV_MEMORY_DMABUF = 2,
};

struct zcv_buffer {
	unsigned index;
	enum zcv_buffer_state state;
	unsigned holders;  /* consumers that hold it now */
	uint64_t sequence; /* of the frame last published from it */
	unsigned n_fds;
	int fds[ZCV_MAX_PLANES]; /* owned by the pool; -1 if unused */
	uint64_t fd_size[ZCV_MAX_PLANES];
	uint8_t plane_fd[ZCV_MAX_PLANES]; /* memory object (fds[] index) of each plane */
	void *map[ZCV_MAX_PLANES];        /* per fd, made once by zcv_pool_map() */
	void *priv;                       /* owner's per-buffer data */
};

/* What a source knows of a frame it filled. */
struct zcv_frame_meta {
	uint64_t sequence;
	uint64_t timestamp_ns;              /* CLOCK_MONOTONIC */
	uint32_t flags;                     /* ZCV_FRAME_FLAG_* */
	uint32_t bytesused[ZCV_MAX_PLANES]; /* 0: the plane's full size */
};

struct zcv_pool;

/* Called when the last holder of a buffer released it (state back to FREE). */
typedef void (*zcv_pool_free_cb)(void *data, struct zcv_pool *pool, struct zcv_buffer *buf);

struct zcv_pool {
	uint32_t generation;
	enum zcv_memory_kind kind;
	struct zcv_layout layout;
	unsigned n_buffers;
	struct zcv_buffer buffers[ZCV_POOL_MAX_BUFFERS];
	zcv_pool_free_cb on_free;
	void *on_free_data;
};

/*
 * Creates a pool of n memfd buffers (one memfd per buffer, all planes
 * inside it at the layout's offsets). Each is mapped PROT_READ|PROT_WRITE
 * for the producer, then sealed read-only (zcv_memfd_seal_readonly): that
 * mapping, which zcv_pool_map() returns, is the only way left to write it,
 * for the producer and for any consumer its fds are sent to.
 * Returns 0 or -EINVAL (n is 0 or above ZCV_POOL_MAX_BUFFERS, invalid
 * layout), -ENOMEM, or a memfd/mmap error.
 */
int zcv_pool_create_memfd(const struct zcv_layout *layout, unsigned n, uint32_t generation,
			  struct zcv_pool **ret_pool);

/*
 * Creates a pool of n buffers without memory; the owner then gives each
 * buffer its fds with zcv_pool_set_fds() (e.g. V4L2 EXPBUF).
 * Returns 0, -EINVAL or -ENOMEM.
 */
int zcv_pool_create_empty(const struct zcv_layout *layout, unsigned n, uint32_t generation,
			  enum zcv_memory_kind kind, struct zcv_pool **ret_pool);

/*
 * Gives buffer idx its memory: n_fds fds, TAKEN by the pool (closed by
 * zcv_pool_destroy, and on failure here too); plane_fd[p] says which fd
 * plane p lives in. Returns 0 or -EINVAL (bad index/count/mapping, a
 * plane that does not fit its fd), or the error of sizing an fd.
 */
int zcv_pool_set_fds(struct zcv_pool *pool, unsigned idx, unsigned n_fds, const int *fds,
		     const uint8_t *plane_fd);

/* Unmaps and closes everything. Accepts NULL. */
void zcv_pool_destroy(struct zcv_pool *pool);

/* Maps every fd of buffer idx once (MAP_SHARED, prot PROT_READ|PROT_WRITE
 * for the producer). Later calls return the existing mapping, whatever
 * prot they ask for (a memfd pool's buffers are mapped writable from its
 * creation). Returns 0, -EINVAL or the errno of mmap (-EPERM for a
 * writable mapping of a write-sealed memfd). */
int zcv_pool_map(struct zcv_pool *pool, unsigned idx, int prot);

/* CPU access bracket for the producer's mapping of buf (ZCV_SYNC_READ
 * and/or ZCV_SYNC_WRITE of <zcv/memory.h>): DMA_BUF_IOCTL_SYNC on each of
 * its DMA-BUFs, nothing for memfds. Returns 0 or the ioctl's negative
 * errno (the bracket still needs its end). */
int zcv_buffer_begin_access(const struct zcv_buffer *buf, unsigned flags);
int zcv_buffer_end_access(const struct zcv_buffer *buf, unsigned flags);

/* Pointer to plane p of a mapped buffer, or NULL when unmapped. */
uint8_t *zcv_buffer_plane(const struct zcv_pool *pool, const struct zcv_buffer *buf, unsigned p);

/* Takes a FREE buffer for the producer to fill (state PRODUCER), lowest
 * index first. Returns NULL when none is free. */
struct zcv_buffer *zcv_pool_acquire(struct zcv_pool *pool);

/* Publication accounting, used by the server:
 * zcv_pool_lend() moves a PRODUCER buffer to LENT with `holders` holders
 * (0 holders: straight back to FREE, on_free is called). Returns 0 or -EINVAL
 * when the buffer is not the producer's.
 * zcv_pool_hold()/zcv_pool_unhold() adjust the holder count of a LENT
 * buffer; the unhold that drops it to 0 sets FREE and calls on_free.
 * unhold returns the remaining holders, or -EINVAL when not held. */
int zcv_pool_lend(struct zcv_pool *pool, unsigned idx, unsigned holders);
int zcv_pool_unhold(struct zcv_pool *pool, unsigned idx);

/* Number of buffers in each state, for tests and stats. */
unsigned zcv_pool_count(const struct zcv_pool *pool, enum zcv_buffer_state state);

/*
 * Whether every buffer of pool meets c: ZCV_FIT_OK; ZCV_FIT_SIZE when only
 * sizes fall short (bigger buffers of the same layout would fit);
 * ZCV_FIT_LAYOUT when a stride or a plane's place is wrong. When it does
 * not fit, why gets a short sentence saying what is missing.
 */
int zcv_pool_check(const struct zcv_pool *pool, const struct zcv_constraints *c, char *why,
		   size_t why_size);
