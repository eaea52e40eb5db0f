/* SPDX-License-Identifier: MIT */
/*
 * A consumer that tries to change the frames every other consumer sees.
 * For every frame it gets it tries to write through the client's mapping
 * (directly, and after mprotect to PROT_WRITE), and then, for every buffer
 * fd the client holds, through a fresh shared writable mmap of it, with
 * write() and pwrite(), through a reopen of
 * /proc/self/fd/N with O_RDWR, and to resize or punch the memory. Every
 * attempt that succeeds writes 0xEE over the start of the buffer, as an
 * attacker would. Each attempt's outcome goes into a JSON file; the frames
 * are released normally, so the stream goes on.
 *
 * Works on every path (DMA-BUF, memfd, copy): it assumes nothing about the
 * fds but that the client accepted them.
 *
 *   writer-consumer --socket PATH --json FILE [--name N] [--needs-copy]
 *
 * Exit 0 when the stream ended cleanly, 1 otherwise (the JSON is written
 * either way).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/dma-buf.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zcv/client.h>
#include <zcv/memory.h>

#define TOOL "writer-consumer"
#define ATTACK 4096 /* bytes an attack that works overwrites */

enum attempt {
	MAP_DIRECT_WRITE,  /* store into the client's mapping */
	MPROTECT_WRITE,    /* make the client's mapping writable */
	MMAP_SHARED_WRITE, /* a new PROT_WRITE MAP_SHARED mapping of the fd */
	WRITE,             /* write(fd) */
	PWRITE,            /* pwrite(fd, 0) */
	REOPEN_WRITE,      /* open /proc/self/fd/N O_RDWR, write() */
	REOPEN_MMAP_WRITE, /* ... and a writable shared mapping of that */
	FTRUNCATE,         /* shrink it to 0: everyone else would SIGBUS */
	PUNCH_HOLE,        /* fallocate(PUNCH_HOLE): zero its pages */
	/* not attacks by themselves, reported for the record */
	REOPEN_OPEN,       /* the reopen itself */
	DMABUF_SYNC_WRITE, /* DMA_BUF_IOCTL_SYNC with the write flag */
	N_ATTEMPTS,
};

static const char *const attempt_names[N_ATTEMPTS] = {
	"map_direct_write", "mprotect_write", "mmap_shared_write", "write",
	"pwrite",           "reopen_write",   "reopen_mmap_write", "ftruncate",
	"punch_hole",       "reopen_open",    "dmabuf_sync_write",
};

struct outcome {
	uint64_t tried, succeeded;
	int last_errno;
};

struct writer {
	struct zcv_client *client;
	struct outcome o[N_ATTEMPTS];
	uint64_t frames;
	int path;
	unsigned n_buffers;
	unsigned long long seen_ino[4 * 32];
	unsigned n_seen;
	bool done;
	int close_error;
	char close_reason[128];
	uint8_t evil[ATTACK];
};

static sigjmp_buf fault_jmp;
static volatile sig_atomic_t fault_armed;

static void on_fault(int sig)
{
	if (fault_armed)
		siglongjmp(fault_jmp, sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void note(struct writer *w, enum attempt a, bool succeeded, int err)
{
	w->o[a].tried++;
	if (succeeded)
		w->o[a].succeeded++;
	else
		w->o[a].last_errno = err;
}

/* A store into a mapping that should be read-only: it must fault. */
static void try_store(struct writer *w, volatile uint8_t *p)
{
	int sig;

	fault_armed = 1;
	sig = sigsetjmp(fault_jmp, 1);
	if (sig == 0) {
		*p = 0xee;
		fault_armed = 0;
		note(w, MAP_DIRECT_WRITE, true, 0);
		return;
	}
	fault_armed = 0;
	note(w, MAP_DIRECT_WRITE, false, sig == SIGSEGV ? EFAULT : EIO);
}

static void try_mapping(struct writer *w, const uint8_t *plane, uint32_t offset)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	/* the client maps each fd from offset 0: the plane lies offset in */
	uint8_t *base = (uint8_t *)((uintptr_t)(plane - offset) & ~(page - 1));

	try_store(w, (volatile uint8_t *)plane);
	if (mprotect(base, page, PROT_READ | PROT_WRITE) == 0) {
		memset(base, 0xee, page);
		mprotect(base, page, PROT_READ);
		note(w, MPROTECT_WRITE, true, 0);
	} else {
		note(w, MPROTECT_WRITE, false, errno);
	}
}

static void try_mmap(struct writer *w, enum attempt a, int fd, size_t size)
{
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (m == MAP_FAILED) {
		note(w, a, false, errno);
		return;
	}
	memset(m, 0xee, size);
	munmap(m, size);
	note(w, a, true, 0);
}

static void try_write(struct writer *w, enum attempt a, ssize_t r)
{
	note(w, a, r > 0, errno);
}

static void try_fd(struct writer *w, int fd)
{
	char path[64];
	int r, rfd;

	try_mmap(w, MMAP_SHARED_WRITE, fd, ATTACK);
	errno = 0;
	try_write(w, WRITE, write(fd, w->evil, ATTACK));
	errno = 0;
	try_write(w, PWRITE, pwrite(fd, w->evil, ATTACK, 0));

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rfd = open(path, O_RDWR | O_CLOEXEC);
	note(w, REOPEN_OPEN, rfd >= 0, errno);
	if (rfd >= 0) {
		errno = 0;
		try_write(w, REOPEN_WRITE, pwrite(rfd, w->evil, ATTACK, 0));
		try_mmap(w, REOPEN_MMAP_WRITE, rfd, ATTACK);
		close(rfd);
	} else {
		/* no writable fd to be had: both attacks failed with it */
		note(w, REOPEN_WRITE, false, errno);
		note(w, REOPEN_MMAP_WRITE, false, errno);
	}

	r = ftruncate(fd, 0);
	note(w, FTRUNCATE, r == 0, errno);
	r = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, ATTACK);
	note(w, PUNCH_HOLE, r == 0, errno);

	if (zcv_fd_is_dmabuf(fd)) {
		struct dma_buf_sync s = { .flags = DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE };

		r = ioctl(fd, DMA_BUF_IOCTL_SYNC, &s);
		if (r == 0) {
			s.flags = DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE;
			r = ioctl(fd, DMA_BUF_IOCTL_SYNC, &s);
		}
		note(w, DMABUF_SYNC_WRITE, r == 0, errno);
	}
}

static void note_ino(struct writer *w, int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return;
	for (unsigned i = 0; i < w->n_seen; i++)
		if (w->seen_ino[i] == (unsigned long long)st.st_ino)
			return;
	if (w->n_seen < sizeof(w->seen_ino) / sizeof(w->seen_ino[0]))
		w->seen_ino[w->n_seen++] = (unsigned long long)st.st_ino;
}

static void on_format(void *data, const struct zcv_client_format *fmt)
{
	struct writer *w = data;

	w->path = fmt->path;
	w->n_buffers = fmt->n_buffers;
}

/* Every buffer fd the client holds, not only this frame's: the pool's
 * other buffers are the ones the producer is about to fill and publish. */
static void try_all_fds(struct writer *w)
{
	int sock = zcv_client_get_fd(w->client);
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] == '.' || fd <= 2 || fd == sock || fd == dirfd(d))
			continue;
		/* buffers only: memfds (they answer F_GET_SEALS) and DMA-BUFs */
		if (fcntl(fd, F_GET_SEALS) < 0 && !zcv_fd_is_dmabuf(fd))
			continue;
		note_ino(w, fd);
		try_fd(w, fd);
	}
	closedir(d);
}

static void on_frame(void *data, const struct zcv_client_frame *f)
{
	struct writer *w = data;

	w->frames++;
	for (unsigned p = 0; p < f->n_planes; p++)
		if (f->planes[p])
			try_mapping(w, f->planes[p], f->offset[p]);
	try_all_fds(w);
	zcv_client_release(w->client, f);
}

static void on_closed(void *data, int error, const char *reason)
{
	struct writer *w = data;

	w->close_error = error;
	snprintf(w->close_reason, sizeof(w->close_reason), "%s", reason);
	/* the reason is the producer's: keep the JSON string plain */
	for (char *c = w->close_reason; *c; c++)
		if (*c < 0x20 || *c > 0x7e || *c == '"' || *c == '\\')
			*c = '?';
	w->done = true;
}

static int write_json(const struct writer *w, const char *path, int end)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -errno;
	fprintf(f,
		"{\n  \"tool\": \"" TOOL "\",\n  \"path\": \"%s\",\n  \"frames\": %" PRIu64
		",\n  \"n_buffers\": %u,\n  \"distinct_fds\": %u,\n  \"end\": %d,\n  "
		"\"close_error\": %d,\n"
		"  \"close_reason\": \"%s\",\n  \"attempts\": {",
		zcv_path_name(w->path), w->frames, w->n_buffers, w->n_seen, end, w->close_error,
		w->close_reason);
	for (unsigned a = 0; a < N_ATTEMPTS; a++)
		fprintf(f,
			"%s\n    \"%s\": {\"tried\": %" PRIu64 ", \"succeeded\": %" PRIu64
			", \"last_errno\": \"%s\"}",
			a ? "," : "", attempt_names[a], w->o[a].tried, w->o[a].succeeded,
			w->o[a].last_errno ? strerrorname_np(w->o[a].last_errno) ?: "?" : "");
	fprintf(f, "\n  }\n}\n");
	return fclose(f) == 0 ? 0 : -errno;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 'k' },
		{ "name", required_argument, NULL, 'N' },
		{ "needs-copy", no_argument, NULL, 'c' },
		{ "json", required_argument, NULL, 'j' },
		{ 0 },
	};
	struct zcv_client_config cfg = { .size = sizeof(struct zcv_client_config), .name = TOOL };
	struct zcv_client_callbacks cbs = { .size = sizeof(struct zcv_client_callbacks),
					    .format = on_format,
					    .frame = on_frame,
					    .closed = on_closed };
	static struct writer w;
	const char *json = NULL;
	struct sigaction sa = { .sa_handler = on_fault };
	int opt, r = 0;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'k':
			cfg.socket_path = optarg;
			break;
		case 'N':
			cfg.name = optarg;
			break;
		case 'c':
			cfg.caps = ZCV_CAP_NEEDS_COPY | ZCV_CAP_MEMFD;
			break;
		case 'j':
			json = optarg;
			break;
		default:
			fprintf(stderr, "usage: " TOOL " --socket PATH --json FILE [--name N] "
					"[--needs-copy]\n");
			return 2;
		}
	}
	if (!json) {
		fprintf(stderr, TOOL ": --json FILE is required\n");
		return 2;
	}
	memset(w.evil, 0xee, sizeof(w.evil));
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);

	r = zcv_client_connect(&cfg, &cbs, &w, &w.client);
	if (r < 0) {
		fprintf(stderr, TOOL ": cannot connect: %s\n", strerror(-r));
		return 1;
	}
	while (!w.done && r == 0) {
		struct pollfd pfd = { .fd = zcv_client_get_fd(w.client),
				      .events = zcv_client_get_events(w.client) };

		if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		r = zcv_client_dispatch(w.client);
	}
	zcv_client_destroy(w.client);
	if (write_json(&w, json, r) < 0) {
		fprintf(stderr, TOOL ": cannot write %s: %s\n", json, strerror(errno));
		return 1;
	}
	if (r != 1) {
		fprintf(stderr, TOOL ": the stream did not end cleanly: %s (%s)\n",
			r < 0 ? strerror(-r) : "?", w.close_reason);
		return 1;
	}
	return 0;
}
