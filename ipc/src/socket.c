/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <zcv/log.h>
#include <zcv/server.h>
#include "wire.h"

int zcv_socket_addr(const char *path, struct sockaddr_un *ret_addr)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	size_t len;

	if (!path || !path[0])
		return -EINVAL;
	len = strlen(path);
	if (len >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	memcpy(a.sun_path, path, len + 1);
	*ret_addr = a;
	return 0;
}

/* The directory decides who may reach the socket: it must be ours and
 * nobody else may write to it, or any local user could plant a socket of
 * their own there; others may not even enter it. Its group may enter
 * (0710) or also list it (0750) when the producer serves that group
 * (zcv_server_create() with allow_group makes it so). */
static int check_dir(const char *dir, bool create)
{
	struct stat st;

	if (create && mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (lstat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & S_IRWXO))
		return -EPERM;
	switch (st.st_mode & S_IRWXG) {
	case 0:
	case S_IXGRP:
	case S_IRGRP | S_IXGRP:
		return 0;
	}
	return -EPERM;
}

static int default_path(char *buf, size_t size, bool create)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int n, r;

	/* Only an absolute XDG_RUNTIME_DIR is trusted; a relative one would
	 * depend on the cwd of whoever runs us. */
	if (xdg && xdg[0] == '/')
		n = snprintf(dir, sizeof(dir), "%s/zcv", xdg);
	else
		n = snprintf(dir, sizeof(dir), "/tmp/zcv-%u", (unsigned)geteuid());
	if (n < 0 || (size_t)n >= sizeof(dir))
		return -ENAMETOOLONG;
	r = check_dir(dir, create);
	if (r < 0 && !(r == -ENOENT && !create))
		return r;
	n = snprintf(buf, size, "%s/default.sock", dir);
	if (n < 0 || (size_t)n >= size || (size_t)n >= sizeof(dir))
		return -ENAMETOOLONG;
	return 0;
}

int zcv_socket_default_path(char *buf, size_t size)
{
	return default_path(buf, size, true);
}

int zcv_socket_default_path_nocreate(char *buf, size_t size)
{
	return default_path(buf, size, false);
}

/* Is a producer listening at path? 1 yes, 0 stale socket file, <0 error. */
static int probe(const struct sockaddr_un *addr)
{
	/* non-blocking: a live producer with a full backlog must not hang us */
	zcv_autoclose int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0)
		return 1;
	if (errno == ECONNREFUSED)
		return 0;
	/* EAGAIN: a live listener whose backlog is full */
	if (errno == EAGAIN)
		return 1;
	return -errno;
}

int zcv_socket_listen(const char *path, unsigned mode)
{
	struct sockaddr_un addr;
	zcv_autoclose int fd = -1;
	struct stat st;
	int r;

	r = zcv_socket_addr(path, &addr);
	if (r < 0)
		return r;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		r = probe(&addr);
		if (r > 0)
			return -EADDRINUSE;
		if (r < 0 && r != -ENOENT)
			return r;
		if (r == 0) {
			zcv_debug("socket: replacing stale socket %s", path);
			if (unlink(path) < 0 && errno != ENOENT)
				return -errno;
		}
	} else if (errno != ENOENT) {
		return -errno;
	}

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		return -errno;
	/* Before listen(): nobody can connect until the mode is right. */
	if (chmod(path, mode) < 0) {
		r = -errno;
		unlink(path);
		return r;
	}
	if (listen(fd, 16) < 0) {
		r = -errno;
		unlink(path);
		return r;
	}
	return zcv_steal_fd(&fd);
}

int zcv_socket_connect(const char *path)
{
	struct sockaddr_un addr;
	zcv_autoclose int fd = -1;
	int r;

	r = zcv_socket_addr(path, &addr);
	if (r < 0)
		return r;
	/* Non-blocking from the start: a listener whose backlog is full (a
	 * stopped producer, or a local process flooding it) makes connect()
	 * fail with EAGAIN instead of blocking the caller's loop. */
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	do
		r = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return zcv_steal_fd(&fd);
}
