/* SPDX-License-Identifier: MIT */
#pragma once

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zcv/common.h>

/* Seals a zcv memfd carries from its creation: nobody, including a peer
 * holding the fd, can shrink it (which would SIGBUS every other mapper) or
 * grow it. No write seal yet: its owner first maps it writable for itself,
 * then calls zcv_memfd_seal_readonly() before lending it. (udmabuf, which
 * refuses write-sealed memfds, accepts these.) */
#define ZCV_MEMFD_SIZE_SEALS (F_SEAL_SHRINK | F_SEAL_GROW)

/* Seals of a memfd lent to consumers: fixed size, writable only through
 * mappings its owner made before sealing, no further seals. */
#define ZCV_MEMFD_SEALS (ZCV_MEMFD_SIZE_SEALS | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL)

/*
 * Creates a memfd of exactly size bytes, CLOEXEC, sealed with
 * ZCV_MEMFD_SIZE_SEALS (seals can still be added: see
 * zcv_memfd_seal_readonly). Returns a new fd the caller must close, or a
 * negative errno (-EINVAL for size 0, or what memfd_create/ftruncate/fcntl
 * said).
 */
int zcv_memfd_create(const char *name, uint64_t size);

/*
 * Makes a memfd read-only for everyone from now on by adding
 * ZCV_MEMFD_SEALS (F_SEAL_FUTURE_WRITE and F_SEAL_SEAL): write(), pwrite(),
 * fallocate(), new writable shared mappings and mprotect() of later
 * read-only ones to PROT_WRITE fail, also through a reopen of
 * /proc/PID/fd/N. Shared writable mappings made before this call keep
 * working: map the buffer for the producer first. fd is borrowed.
 * Returns 0 or the negative errno of fcntl (-EPERM when F_SEAL_SEAL was
 * set without these seals, -EINVAL for an fd that is not a memfd).
 */
int zcv_memfd_seal_readonly(int fd);

/*
 * Checks that fd (borrowed) is a memfd of at least min_size bytes that a
 * holder of it cannot change: its size is fixed (F_SEAL_SHRINK and
 * F_SEAL_GROW) and it takes no new writers (F_SEAL_FUTURE_WRITE or
 * F_SEAL_WRITE). Writes the size. Returns 0, -EPERM when a seal is
 * missing, -EMSGSIZE when too small, or the errno of fstat/fcntl (-EINVAL
 * for an fd that is not a memfd).
 */
int zcv_memfd_check_sealed(int fd, uint64_t min_size, uint64_t *ret_size);

/* Size of whatever fd (borrowed) refers to: a DMA-BUF's size comes from
 * lseek(SEEK_END), a memfd's from fstat. Returns 0 or a negative errno. */
int zcv_fd_size(int fd, uint64_t *ret_size);

/* True when fd (borrowed) is a DMA-BUF: it lives on the kernel's dmabuf
 * file system (fstatfs: DMA_BUF_MAGIC) and its /proc/self/fdinfo names an
 * exporter ("exp_name"). Neither can be faked with a file, a memfd, a pipe
 * or a socket. */
bool zcv_fd_is_dmabuf(int fd);

/* CPU access bracketing for DMA-BUF mappings. flags: ZCV_SYNC_READ,
 * ZCV_SYNC_WRITE or both. fd is borrowed. On a non-DMA-BUF fd (memfd) these
 * are no-ops returning 0. Returns 0 or a negative errno from the ioctl
 * (retried on EINTR/EAGAIN). */
#define ZCV_SYNC_READ 1u
#define ZCV_SYNC_WRITE 2u
int zcv_dmabuf_sync_start(int fd, unsigned flags);
int zcv_dmabuf_sync_end(int fd, unsigned flags);

/* The CPU access bracket of a buffer made of n_fds memory objects: starts
 * (begin) or ends access on each of them, every one even after a failure.
 * Returns 0 or the first negative errno. The one place that brackets:
 * zcv_buffer_begin_access() for producers, zcv_client_begin_access() for
 * consumers. */
int zcv_dmabuf_access(const int *fds, unsigned n_fds, unsigned flags, bool begin);

/* Bytes copied by zcv on the frame path in this process. Every place that
 * copies frame bytes calls zcv_copied_bytes_add(); tools report the total. */
void zcv_copied_bytes_add(uint64_t n);
uint64_t zcv_copied_bytes_get(void);

/* memcpy of frame bytes that counts them in zcv_copied_bytes. */
void zcv_frame_copy(void *dst, const void *src, size_t n);
