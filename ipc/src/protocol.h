/* SPDX-License-Identifier: MIT */
/*
 * zcv wire protocol. Private to libzcv: custom sinks use <zcv/client.h>.
 *
 * AF_UNIX SOCK_SEQPACKET; one message per packet; fds travel only with
 * ZCV_MSG_BUFFER. Every message is a zcv_msg_hdr followed by a fixed-layout
 * body; bodies only ever grow by appending fields, so a receiver accepts a
 * body at least as large as the one it knows (hdr.size >= known size) and
 * ignores the tail. All integers are host-endian: both ends share a machine.
 */
#pragma once

#include <stdint.h>
#include <zcv/pool.h>
#include <zcv/stream.h> /* enum zcv_path, ZCV_CAP_* */

#define ZCV_PROTOCOL_VERSION 1
#define ZCV_PROTOCOL_MIN_VERSION 1

#define ZCV_MSG_MAX_SIZE 512           /* no message is larger; bigger packets are errors */
#define ZCV_MSG_MAX_FDS ZCV_MAX_PLANES /* per message */
#define ZCV_NAME_MAX 32

enum zcv_msg_type {
	ZCV_MSG_HELLO = 1,   /* client -> server, first message */
	ZCV_MSG_WELCOME = 2, /* server -> client: stream id, format, pool size */
	ZCV_MSG_BUFFER = 3,  /* server -> client: one pool buffer's fds, sent once */
	ZCV_MSG_FRAME = 4,   /* server -> client: buffer holds a frame */
	ZCV_MSG_RELEASE = 5, /* client -> server: done with a frame */
	ZCV_MSG_BYE = 6,     /* either way: closing, with a reason */
	ZCV_MSG_STATUS = 7,  /* server -> client (only one that said ZCV_HELLO_FLAG_STATUS):
			      * the source went away or came back */
};

struct zcv_msg_hdr {
	uint16_t type;
	uint16_t version; /* sender's protocol version (HELLO: its highest) */
	uint32_t size;    /* whole message including this header */
};
_Static_assert(sizeof(struct zcv_msg_hdr) == 8, "wire header");

/* HELLO flags */
#define ZCV_HELLO_FLAG_KEEPS_LATEST (1u << 0) /* see zcv_client_config.keeps_latest */
#define ZCV_HELLO_FLAG_STATUS (1u << 1)       /* it understands ZCV_MSG_STATUS */

struct zcv_msg_hello {
	struct zcv_msg_hdr hdr;
	uint16_t min_version; /* lowest version the client speaks */
	uint16_t reserved0;
	uint32_t caps;           /* ZCV_CAP_* */
	uint32_t max_hold;       /* frames it wants to hold at most (0: server default) */
	uint32_t flags;          /* ZCV_HELLO_FLAG_*; bits it does not know are ignored */
	char name[ZCV_NAME_MAX]; /* NUL-terminated within the array */
	/* Appended: what the consumer needs of the buffers it imports (0: no
	 * need), so a producer allocating its pool can fit every consumer.
	 * A 56-byte HELLO (before these fields) is still accepted: it reads
	 * as "no constraints". */
	uint32_t min_plane_size[ZCV_MAX_PLANES]; /* bytes of plane p from its offset */
	uint32_t stride_align; /* line strides a multiple of this (power of two) */
	uint32_t height_align; /* planes laid out for ALIGN(height, this) lines */
	uint32_t reserved2[2];
};
#define ZCV_MSG_HELLO_V1_SIZE 56 /* the HELLO without constraints */
_Static_assert(sizeof(struct zcv_msg_hello) == 88, "hello");
_Static_assert(__builtin_offsetof(struct zcv_msg_hello, min_plane_size) == ZCV_MSG_HELLO_V1_SIZE,
	       "hello constraints are appended");

struct zcv_wire_plane {
	uint32_t offset;
	uint32_t stride;
	uint32_t size;
	uint32_t reserved;
};
_Static_assert(sizeof(struct zcv_wire_plane) == 16, "plane");

struct zcv_msg_welcome {
	struct zcv_msg_hdr hdr;
	uint16_t version;  /* negotiated: min(server max, client max) */
	uint16_t path;     /* enum zcv_path */
	uint32_t max_hold; /* granted */
	uint8_t stream_id[16];
	uint32_t fourcc;
	uint32_t width;
	uint32_t height;
	uint32_t n_planes;
	struct zcv_wire_plane planes[ZCV_MAX_PLANES];
	uint64_t modifier;   /* DRM format modifier; 0 = linear */
	uint32_t colorspace; /* V4L2 colorspace enum value; 0 = default */
	uint32_t fps_num;    /* frame rate fps_num/fps_den; 0/1 = unpaced */
	uint32_t fps_den;
	uint32_t generation;
	uint32_t n_buffers;
	uint32_t reserved;
	uint64_t frame_size; /* zcv_layout.size */
};
_Static_assert(sizeof(struct zcv_msg_welcome) == 152, "welcome");

/* Carries n_fds fds in SCM_RIGHTS. A new generation's BUFFER messages
 * follow a new WELCOME. */
struct zcv_msg_buffer {
	struct zcv_msg_hdr hdr;
	uint32_t generation;
	uint32_t index;
	uint32_t n_fds;
	uint8_t plane_fd[ZCV_MAX_PLANES]; /* fd (index into the message's fds) per plane */
	uint32_t reserved;
	uint64_t fd_size[ZCV_MAX_PLANES];
};
_Static_assert(sizeof(struct zcv_msg_buffer) == 64, "buffer");

/* frame flags: ZCV_FRAME_FLAG_* in <zcv/stream.h> */

struct zcv_msg_frame {
	struct zcv_msg_hdr hdr;
	uint32_t generation;
	uint32_t index;
	uint64_t sequence;
	uint64_t timestamp_ns; /* CLOCK_MONOTONIC capture time */
	uint32_t flags;
	uint32_t reserved;
	uint32_t bytesused[ZCV_MAX_PLANES];
};
_Static_assert(sizeof(struct zcv_msg_frame) == 56, "frame");

struct zcv_msg_release {
	struct zcv_msg_hdr hdr;
	uint32_t generation;
	uint32_t index;
	uint64_t sequence;
};
_Static_assert(sizeof(struct zcv_msg_release) == 24, "release");

struct zcv_msg_bye {
	struct zcv_msg_hdr hdr;
	int32_t error; /* 0 = end of stream; else a negative errno saying why */
	uint32_t reserved;
	char reason[64]; /* human-readable, NUL-terminated */
};
_Static_assert(sizeof(struct zcv_msg_bye) == 80, "bye");

/* STATUS flags */
#define ZCV_STATUS_SOURCE_LOST (1u << 0) /* no frames until a STATUS without it */

struct zcv_msg_status {
	struct zcv_msg_hdr hdr;
	uint32_t flags; /* ZCV_STATUS_*; no other bit may be set */
	uint32_t reserved;
	char reason[64]; /* human-readable, NUL-terminated */
};
_Static_assert(sizeof(struct zcv_msg_status) == 80, "status");

/* A consumer's constraints as HELLO carries them (max_hold is the hold;
 * alignments of 0/1 travel as 0), and back. */
void zcv_msg_hello_set_constraints(struct zcv_msg_hello *h, const struct zcv_constraints *c);
void zcv_msg_hello_get_constraints(const struct zcv_msg_hello *h, struct zcv_constraints *ret);
