/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * zcvsink's registry of upstream DMA-BUF buffers: learns the set of
 * memory objects an upstream pool circulates (v4l2src io-mode=dmabuf,
 * libcamerasrc), so zcvsink can lend them by index from one zcv pool
 * instead of copying each frame. Objects are told apart by identity
 * (st_dev, st_ino of the fd), never by fd number or pointer: a GstMemory
 * may be rewrapped, an fd number reused. No GStreamer here, so the
 * learning rules are unit-tested with fake identities.
 */
#include <stdbool.h>
#include <stdint.h>
#include <zcv/format.h>
#include <zcv/pool.h>

/* One upstream buffer: the identity of each of its memory objects, in
 * memory order. Buffers are equal when every object is. */
struct zcvsink_key {
	unsigned n;
	uint64_t dev[ZCV_MAX_PLANES];
	uint64_t ino[ZCV_MAX_PLANES];
};

enum zcvsink_reg_result {
	ZCVSINK_REG_COPY = 0, /* learning: copy this buffer */
	ZCVSINK_REG_COMPLETE, /* the set just became complete: register it, then lend this one */
	ZCVSINK_REG_KNOWN,    /* registered: lend this one */
	ZCVSINK_REG_UNKNOWN,  /* not in the registered set (upstream reallocated): copy it;
			       * learning restarted from it */
	ZCVSINK_REG_DISABLED, /* too many objects (or registering failed): copy until reset */
};

struct zcvsink_registry {
	bool complete;
	bool disabled;
	unsigned n;
	struct zcvsink_key keys[ZCV_POOL_MAX_BUFFERS];
	/* Dups of each learned buffer's fds, owned here until taken
	 * (zcvsink_registry_take_fds); -1 when none. */
	int fds[ZCV_POOL_MAX_BUFFERS][ZCV_MAX_PLANES];
	unsigned completed; /* sets completed since init */
};

/* An empty registry, learning. */
void zcvsink_registry_init(struct zcvsink_registry *r);

/* Forgets everything and learns anew; closes the dups it still owns.
 * disable: stay DISABLED (copy) until the next reset without it. */
void zcvsink_registry_reset(struct zcvsink_registry *r, bool disable);

/*
 * The identities of n fds (borrowed) into *ret_key. Returns 0, -EINVAL
 * (n is 0 or above ZCV_MAX_PLANES) or fstat's negative errno.
 */
int zcvsink_key_from_fds(const int *fds, unsigned n, struct zcvsink_key *ret_key);

/*
 * Feeds the key of an upstream buffer; *ret_index is its registry index
 * (= zcv buffer index) on COMPLETE and KNOWN, untouched otherwise.
 * While learning, a new key is added (with dups of fds, key->n of them,
 * borrowed; NULL to learn identities only) and the set is complete when
 * expected keys are known (expected: upstream's fixed buffer count, 0
 * unknown) or when a key comes a second time (one full cycle of
 * upstream's buffers seen). A set would exceed ZCV_POOL_MAX_BUFFERS:
 * DISABLED. Returns an enum zcvsink_reg_result, or -EINVAL (bad key) or
 * the negative errno of dup (then the buffer is forgotten: copy it).
 */
int zcvsink_registry_feed(struct zcvsink_registry *r, const struct zcvsink_key *key, const int *fds,
			  unsigned expected, unsigned *ret_index);

/* Moves the dups of entry i to ret_fds (keys[i].n of them; the caller
 * owns them now). Returns how many, 0 when there are none. */
unsigned zcvsink_registry_take_fds(struct zcvsink_registry *r, unsigned i, int *ret_fds);

/* Open fds of this process that refer to any object of keys[0..n): to
 * show that what zcvsink dup'd is closed again. */
unsigned zcvsink_count_fds_on(const struct zcvsink_key *keys, unsigned n);
