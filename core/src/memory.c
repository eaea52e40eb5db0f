/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <linux/dma-buf.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <zcv/memory.h>

static uint64_t copied_bytes;

int zcv_memfd_create(const char *name, uint64_t size)
{
	zcv_autoclose int fd = -1;

	if (size == 0 || size > (uint64_t)INT64_MAX)
		return -EINVAL;
	fd = memfd_create(name ? name : "zcv", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0)
		return -errno;
	if (fcntl(fd, F_ADD_SEALS, ZCV_MEMFD_SIZE_SEALS) < 0)
		return -errno;
	return zcv_steal_fd(&fd);
}

/*
 * Why a seal and not a read-only fd: the other way to keep consumers from
 * writing is to send each of them the memfd reopened O_RDONLY. But a
 * process holding any fd of a memfd can open /proc/self/fd/N again with
 * O_RDWR (a memfd's inode is mode 0777: the open succeeds) and write
 * through that. Seals
 * belong to the inode, not to an fd: F_SEAL_FUTURE_WRITE refuses write(),
 * writable shared mmaps and mprotect() to PROT_WRITE whichever fd is used,
 * while the producer keeps writing through the mapping it made before.
 * F_SEAL_WRITE would do the same but cannot be added while a writable
 * mapping exists. F_SEAL_SEAL stops a holder from adding seals of its own
 * (a write seal of a consumer would break the producer's next mapping).
 */
int zcv_memfd_seal_readonly(int fd)
{
	if (fcntl(fd, F_ADD_SEALS, ZCV_MEMFD_SEALS) < 0)
		return -errno;
	return 0;
}

int zcv_memfd_check_sealed(int fd, uint64_t min_size, uint64_t *ret_size)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);

	if (seals < 0)
		return -errno;
	if ((seals & ZCV_MEMFD_SIZE_SEALS) != ZCV_MEMFD_SIZE_SEALS ||
	    !(seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)))
		return -EPERM;
	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size < min_size)
		return -EMSGSIZE;
	if (ret_size)
		*ret_size = (uint64_t)st.st_size;
	return 0;
}

int zcv_fd_size(int fd, uint64_t *ret_size)
{
	struct stat st;
	off_t end;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) && st.st_size > 0) {
		*ret_size = (uint64_t)st.st_size;
		return 0;
	}
	/* DMA-BUFs report their size only through lseek. */
	end = lseek(fd, 0, SEEK_END);
	if (end < 0)
		return -errno;
	lseek(fd, 0, SEEK_SET);
	*ret_size = (uint64_t)end;
	return 0;
}

bool zcv_fd_is_dmabuf(int fd)
{
	char path[64], line[128];
	bool found = false;
	struct statfs sfs;
	FILE *f;

	if (fstatfs(fd, &sfs) < 0 || sfs.f_type != DMA_BUF_MAGIC)
		return false;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = !strncmp(line, "exp_name:", 9);
	fclose(f);
	return found;
}

static int dmabuf_sync(int fd, uint64_t flags)
{
	struct dma_buf_sync s = { .flags = flags };
	int r;

	do
		r = ioctl(fd, DMA_BUF_IOCTL_SYNC, &s);
	while (r < 0 && (errno == EINTR || errno == EAGAIN));
	if (r < 0)
		/* memfds and other non-DMA-BUF memory need no bracketing */
		return errno == ENOTTY ? 0 : -errno;
	return 0;
}

static uint64_t sync_rw(unsigned flags)
{
	uint64_t f = 0;

	if (flags & ZCV_SYNC_READ)
		f |= DMA_BUF_SYNC_READ;
	if (flags & ZCV_SYNC_WRITE)
		f |= DMA_BUF_SYNC_WRITE;
	return f;
}

int zcv_dmabuf_sync_start(int fd, unsigned flags)
{
	return dmabuf_sync(fd, DMA_BUF_SYNC_START | sync_rw(flags));
}

int zcv_dmabuf_sync_end(int fd, unsigned flags)
{
	return dmabuf_sync(fd, DMA_BUF_SYNC_END | sync_rw(flags));
}

int zcv_dmabuf_access(const int *fds, unsigned n_fds, unsigned flags, bool begin)
{
	int r = 0;

	for (unsigned f = 0; f < n_fds; f++) {
		int k = begin ? zcv_dmabuf_sync_start(fds[f], flags) :
				zcv_dmabuf_sync_end(fds[f], flags);

		if (k < 0 && r == 0)
			r = k;
	}
	return r;
}

void zcv_copied_bytes_add(uint64_t n)
{
	__atomic_add_fetch(&copied_bytes, n, __ATOMIC_RELAXED);
}

uint64_t zcv_copied_bytes_get(void)
{
	return __atomic_load_n(&copied_bytes, __ATOMIC_RELAXED);
}

void zcv_frame_copy(void *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
	zcv_copied_bytes_add(n);
}
