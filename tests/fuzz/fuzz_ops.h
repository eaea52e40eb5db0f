/* SPDX-License-Identifier: MIT */
/*
 * Input formats of the fuzz harnesses, shared with the seed generator
 * (gen_corpus.c). Every op is one op byte followed by a fixed block of
 * byte fields (the structs below: uint8_t only, so no padding and no
 * endianness), then, for ops that send a message, a mutation block
 * (FUZZ_MUT_*: a flags byte, then an argument per flag set). A field of
 * zeros always means the valid default, so a seed is mostly zeros and the
 * fuzzer's mutations are lies told on purpose.
 *
 * These formats are the harnesses', not the protocol's: messages are built
 * from protocol.h's structs at run time, so seeds keep working when the
 * protocol grows.
 */
#pragma once

#include <stdint.h>

/* More than a message may carry (ZCV_MSG_MAX_FDS): counts can lie. */
#define FUZZ_MAX_FDS 8
/* Largest fd a harness makes (bytes), whatever the input asks. */
#define FUZZ_MAX_FD_SIZE (1u << 20)

enum fuzz_fd_kind {
	FUZZ_FD_SEALED = 0,  /* memfd sealed as zcv lends it: size fixed, no new writers */
	FUZZ_FD_SEALED_RO,   /* the same with F_SEAL_WRITE instead of F_SEAL_FUTURE_WRITE */
	FUZZ_FD_SIZE_SEALED, /* size fixed but still writable */
	FUZZ_FD_GROW_ONLY,   /* sealed against growing only */
	FUZZ_FD_UNSEALED,    /* memfd without seals */
	FUZZ_FD_PIPE,
	FUZZ_FD_DEVNULL,
	FUZZ_FD_SOCKET, /* one end of a socketpair */
	FUZZ_FD_FILE,   /* a regular file (O_TMPFILE) of the size */
	FUZZ_FD_KINDS
};

/* Mutation block flags, each followed by its argument, in this order. */
#define FUZZ_MUT_LENGTH 0x01  /* u16: bytes sent (modulo cap+1; zero-extended) */
#define FUZZ_MUT_TYPE 0x02    /* u8: hdr.type */
#define FUZZ_MUT_VERSION 0x04 /* u16: hdr.version */
#define FUZZ_MUT_SIZE 0x08    /* u16: hdr.size */
#define FUZZ_MUT_BYTE 0x10    /* u8 offset, u8 value */
#define FUZZ_MUT_WORD 0x20    /* u8 offset, u32 value */
#define FUZZ_MUT_FDS 0x40 /* u8 count, u8 kind each: more fds attached (kind[0] & 0x80: split) */

/* Op byte: the op is (byte & ~FUZZ_OP_BATCH) modulo the target's op count;
 * with FUZZ_OP_BATCH the harness does not dispatch after the op, so the
 * next messages queue up behind it. */
#define FUZZ_OP_BATCH 0x80

/* ---- fuzz_protocol: one packet ------------------------------------- */

#define FP_MODE_SOCKET 0x01 /* through a socketpair and zcv_msg_read(), else zcv_msg_validate() */
#define FP_MODE_SPLIT 0x02  /* fds in two SCM_RIGHTS headers */
#define FP_MODE_ENCODE 0x04 /* payload feeds the encoders, whose output must validate */

struct fp_head {
	uint8_t mode;
	uint8_t n_fds; /* modulo FUZZ_MAX_FDS + 1 */
	uint8_t fd_kind;
	/* then the packet */
};

/* FP_MODE_ENCODE payload */
struct fp_encode {
	uint8_t type;     /* modulo 8: ZCV_MSG_* */
	uint8_t error;    /* BYE: -error */
	uint8_t index;    /* FRAME/RELEASE index, modulo ZCV_POOL_MAX_BUFFERS */
	uint8_t text[80]; /* BYE reason / HELLO name, as a C string (may lack its NUL) */
};

/* ---- fuzz_client: a fake producer against a real zcv_client --------- */

#define FC_CAPS_DEFAULT 0 /* caps modulo 4: DMABUF|MEMFD */
#define FC_CAPS_MEMFD 1
#define FC_CAPS_DMABUF 2
#define FC_CAPS_COPY 3 /* NEEDS_COPY|MEMFD */

#define FC_CFG_NO_MAP 0x01       /* the client does not mmap */
#define FC_CFG_KEEP_HELD 0x02    /* destroy the client with frames still held */
#define FC_CFG_NO_DRAIN 0x04     /* the fake producer reads the client only on FC_OP_DRAIN */
#define FC_CFG_SMALL_SNDBUF 0x08 /* shrink the client's send buffer: releases back up */
#define FC_CFG_NO_FRAME_CB 0x10  /* no frame callback: the client releases by itself */
#define FC_CFG_WAIT 0x20         /* zcv_client_wait_dispatch(c, 0) instead of dispatch */
/* zcv_client_wait_dispatch(c, 5): its blocking recvmmsg path, when the
 * producer sent something (or hung up) since the last dispatch, so it never
 * waits out the timeout; otherwise as without the flag */
#define FC_CFG_WAIT_BLOCK 0x40

struct fc_config {
	uint8_t caps;
	uint8_t flags;
	uint8_t max_hold;
};

enum fc_op {
	FC_OP_POOL = 0, /* WELCOME of the next generation + all its BUFFERs, valid */
	FC_OP_WELCOME,
	FC_OP_BUFFER,
	FC_OP_FRAME,
	FC_OP_BYE,
	FC_OP_RAW,
	FC_OP_RELEASE, /* the sink releases a frame it holds */
	FC_OP_FORGE,   /* the sink releases a frame it made up */
	FC_OP_SHRINK,  /* the producer shrinks every fd it sent that can shrink to 0 bytes */
	FC_OP_DRAIN,   /* the producer reads what the client sent */
	FC_OP_HANGUP,
	FC_OP_COUNT
};

/* FC_OP_POOL (no mutation block) */
struct fc_pool {
	uint8_t n_buffers; /* 0: 2; else 1 + n % 32 */
	uint8_t format;    /* index in the harness's format table (modulo) */
	uint8_t path;      /* 0 memfd, 1 dmabuf, 2 copy (modulo 3) */
	uint8_t fd_kind;   /* of every buffer */
};

/* FC_OP_WELCOME */
struct fc_welcome {
	uint8_t gen;       /* 0: previous + 1; else previous + (int8_t)gen */
	uint8_t n_buffers; /* 0: 2; else as is (above ZCV_POOL_MAX_BUFFERS: a lie) */
	uint8_t format;    /* index in the format table; past it: a fc_raw_layout follows */
	uint8_t path;      /* 0 memfd, 1 dmabuf, 2 copy, else the raw value */
	uint8_t max_hold;  /* 0: 2 */
	uint8_t version;   /* 0: ZCV_PROTOCOL_VERSION */
	uint8_t fps;       /* 0: 30/1; else fps/(fps & 3) */
};

struct fc_raw_plane {
	uint8_t offset[2], stride[2], size[2];
};

struct fc_raw_layout {
	uint8_t fourcc; /* index in the format table; 255: 'ZZZZ' */
	uint8_t width[2], height[2];
	uint8_t n_planes;
	struct fc_raw_plane planes[4];
	uint8_t frame_size[4];
};

/* FC_OP_BUFFER */
struct fc_buffer {
	uint8_t index;       /* 0: the lowest not yet sent; else index - 1 */
	uint8_t gen;         /* 0: current; else current + (int8_t)gen */
	uint8_t n_fds;       /* 0: 1; else as is, at most FUZZ_MAX_FDS attached */
	uint8_t fd_kind;     /* of every fd */
	uint8_t size[4];     /* 0: the frame size; else this (capped at FUZZ_MAX_FD_SIZE) */
	uint8_t claim[4];    /* fd_size told; 0: the real size */
	uint8_t plane_fd[4]; /* as is */
};

/* FC_OP_FRAME */
#define FC_POLICY_RELEASE 0 /* the sink releases it in its callback */
#define FC_POLICY_HOLD 1    /* ... keeps it for FC_OP_RELEASE / the end */
#define FC_POLICY_TWICE 2   /* ... releases it twice (the second must fail) */
#define FC_POLICY_WRONG 3   /* ... holds it and releases a wrong sequence (must fail) */

struct fc_frame {
	uint8_t index;     /* 0: the lowest buffer the sink does not hold; else index - 1 */
	uint8_t gen;       /* 0: current; else current + (int8_t)gen */
	uint8_t seq;       /* 0: next; 1-127 skip that many; 128-255 go back (seq - 127) */
	uint8_t policy;    /* FC_POLICY_* (modulo 4) */
	uint8_t bytesused; /* 0: each plane's size; else plane size + bytesused - 128 */
	uint8_t flags;
};

/* FC_OP_BYE */
struct fc_bye {
	uint8_t error;      /* 0: end of stream; else -error */
	uint8_t reason_len; /* 'x' * len, NUL-terminated below 64 */
};

/* FC_OP_RAW: u8 length, then that many bytes, then the mutation block */

/* FC_OP_RELEASE */
struct fc_release {
	uint8_t which; /* modulo the frames held; 255: all */
};

/* FC_OP_FORGE */
struct fc_forge {
	uint8_t gen;    /* current + (int8_t)gen */
	uint8_t index;  /* as is */
	uint8_t seq[2]; /* last sequence - seq */
};

/* FC_OP_HANGUP */
struct fc_hangup {
	uint8_t how; /* 0 shutdown(SHUT_WR), else close */
};

/* ---- fuzz_server: raw consumers against a real zcv_server ----------- */

#define FS_MAX_CONNS 3

#define FS_CFG_DEFER 0x01 /* defer_admission: HELLOs wait for FS_OP_ADMIT */
/* the producer publishes from inside the pool's on_free callback, as a
 * capture loop that had a frame waiting for a buffer would */
#define FS_CFG_REPUBLISH 0x02

struct fs_config {
	uint8_t max_hold;      /* 0: default (2); else 1 + max_hold % 4 */
	uint8_t max_consumers; /* 0: default; else 1 + max_consumers % 4 */
	uint8_t flags;
	uint8_t reserve; /* source_reserve: 0 default (2); else reserve % 4 (0 again the default) */
	uint8_t quota;   /* handshake_quota: 0 default (4); else 1 + quota % 4 */
};

enum fs_op {
	FS_OP_CONNECT = 0,
	FS_OP_HELLO,
	FS_OP_RELEASE,
	FS_OP_BYE,
	FS_OP_RAW,
	FS_OP_OTHER, /* a producer-only message (WELCOME/BUFFER/FRAME) from a consumer */
	FS_OP_PUBLISH,
	FS_OP_READ,
	FS_OP_CLOSE,
	FS_OP_ADMIT,
	FS_OP_SET_POOL,
	FS_OP_END,
	FS_OP_COUNT
};

#define FS_CONN_NO_READ 0x01 /* read what the server sends only on FS_OP_READ */

struct fs_connect {
	uint8_t flags;
};

struct fs_hello {
	uint8_t conn;
	uint8_t version;     /* 0: ZCV_PROTOCOL_VERSION */
	uint8_t min_version; /* 0: ZCV_PROTOCOL_MIN_VERSION */
	uint8_t caps;        /* 0: DMABUF|MEMFD; else as is; bits 4-7: HELLO flags 0-3 */
	uint8_t max_hold;    /* as is (0: the server's default); also HELLO flags 24-31 */
	uint8_t name_len;    /* 0: "fuzz"; else that many bytes follow (NUL-terminated below 32) */
	uint8_t constraints; /* 0: none; else a fs_constraints follows */
};

struct fs_constraints {
	uint8_t min_plane_size[4][2]; /* bytes, x16 */
	uint8_t stride_align;         /* log2 (modulo 16) */
	uint8_t height_align;         /* log2 (modulo 16) */
};

struct fs_release {
	uint8_t conn;
	uint8_t which; /* modulo the frames the connection holds */
	uint8_t forge; /* 0: as received; else gen/index/seq come from fs_forge */
};

struct fs_forge {
	uint8_t gen; /* + (int8_t) */
	uint8_t index;
	uint8_t seq; /* + (int8_t) */
};

struct fs_bye {
	uint8_t conn;
	uint8_t error; /* -error */
};

/* FS_OP_RAW: conn, u8 length, bytes, mutation block */

struct fs_other {
	uint8_t conn;
	uint8_t type; /* modulo 3: WELCOME, BUFFER (with an fd), FRAME */
};

struct fs_publish {
	uint8_t count; /* 0: 1; else count % 8 */
	uint8_t flags; /* frame flags */
};

struct fs_read {
	uint8_t conn;
};

struct fs_close {
	uint8_t conn;
	uint8_t how; /* 0 close, 1 shutdown(SHUT_WR), 2 shutdown(SHUT_RDWR) */
};

struct fs_end {
	uint8_t error; /* -error */
};
