/* SPDX-License-Identifier: MIT */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define ZCV_EXPORT __attribute__((visibility("default")))

#define ZCV_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ZCV_ALIGN_UP(v, a) ((((v) + (a)-1) / (a)) * (a))
#define ZCV_MIN(a, b) ((a) < (b) ? (a) : (b))
#define ZCV_MAX(a, b) ((a) > (b) ? (a) : (b))

/*
 * Cleanup helpers. "steal" hands ownership out of a cleanup-managed
 * variable so the cleanup becomes a no-op.
 */
static inline void zcv_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

static inline void zcv_freep(void *p)
{
	free(*(void **)p);
}

#define zcv_autoclose __attribute__((cleanup(zcv_closep)))
#define zcv_autofree __attribute__((cleanup(zcv_freep)))

static inline int zcv_steal_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}

static inline void *zcv_steal_ptr(void *pp)
{
	void **p = pp;
	void *r = *p;
	*p = NULL;
	return r;
}

/* Monotonic clock in nanoseconds: the time base of every frame timestamp. */
ZCV_EXPORT unsigned long long zcv_now_ns(void);
