/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <zcv/client.h>
#include <zcv/pool.h>

/*
 * Producer side of a zcv stream. Owns the listening socket and every
 * consumer connection. Runs on the caller's loop: add zcv_server_get_fd()
 * (an epoll fd) for EPOLLIN to your loop and call zcv_server_dispatch()
 * when it is readable. Never blocks on a consumer.
 *
 * Internal to zcv (not installed, not exported from libzcv): programs
 * serve a stream through <zcv/producer.h>, which owns a server.
 */
struct zcv_server;

/* What a consumer that asks for no hold may hold when max_hold is not
 * set: a frame on screen and the next one. */
#define ZCV_SERVER_DEFAULT_HOLD 2

/* struct zcv_frame_meta is in <zcv/pool.h>: sources fill it, the server sends it. */

struct zcv_server_config {
	const char *socket_path; /* NULL: zcv_socket_default_path() */
	/* Most frames one consumer may hold at once, whatever it asks for,
	 * and what one that asks for no number gets. 0: up to 16 for those
	 * that ask, ZCV_SERVER_DEFAULT_HOLD for those that do not. */
	unsigned max_hold;
	uint64_t hold_timeout_ns;  /* evict a consumer holding a frame longer; 0: 1 s */
	unsigned max_consumers;    /* that said HELLO, at once; 0: 16 */
	uint32_t fps_num, fps_den; /* advertised frame rate; 0/1 unpaced */
	uint32_t colorspace;       /* V4L2 colorspace, 0 default */
	uint64_t modifier;         /* DRM modifier of the buffers, 0 linear */
	/* Also accept peers of allowed_gid (a zeroed config: same uid only):
	 * the socket file becomes that group's, 0660, and so does the
	 * default socket's directory (0710, see zcv_socket_default_path). */
	bool allow_group;
	gid_t allowed_gid;
	bool allow_any_uid; /* tests only: skip the same-uid check */
	/* Appended. true: a consumer whose HELLO arrived waits (state
	 * HANDSHAKE, hello_seen) until zcv_server_admit(), so the producer can
	 * first (re)allocate its pool to fit every consumer's constraints. */
	bool defer_admission;
	/* Appended. Buffers the source keeps for itself: consumers' holds are
	 * granted out of n_buffers - source_reserve (see "The buffer budget"
	 * below). 0: 2. */
	unsigned source_reserve;
	/* Appended. A connection that sent no HELLO within this is dropped.
	 * 0: 1 s. */
	uint64_t handshake_timeout_ns;
	/* Appended. Connections without a HELLO yet, at most; a newer one
	 * replaces the oldest once that one is older than handshake_grace_ns
	 * (before, a burst of up to 8 x the quota waits; beyond, newcomers
	 * are refused). They do not count against max_consumers. 0: 4. */
	unsigned handshake_quota;
	/* How long a client may take between connect() and its HELLO before
	 * a newer connection may replace it (see handshake_quota). 0: 200 ms. */
	uint64_t handshake_grace_ns;
	/* Appended. true: a deep hold asked for is cut to leave the next
	 * consumer ZCV_SERVER_DEFAULT_HOLD, unless admitted together with
	 * others whose holds the budget covers (see "The buffer budget"):
	 * for pools not sized for whoever comes. false: first come, first
	 * served, as asked. */
	bool leave_room;
};

/*
 * The buffer budget. What all consumers may hold together always leaves
 * the source source_reserve buffers to capture into, so no consumer that
 * plays by the rules (holds what it is granted) can stall the stream:
 *
 *  - Holds are granted out of n_buffers - source_reserve, first come
 *    first served, when a consumer is admitted.
 *  - A newcomer on a zero-copy path gets min(what it asked for, or
 *    the default when it asked for 0 (see max_hold); max_hold; what is
 *    left) - except that, with leave_room, a hold above 2 asked for is cut so that
 *    ZCV_SERVER_DEFAULT_HOLD is left for the next consumer (never below
 *    2), unless the consumer was admitted by zcv_server_admit() together
 *    with others whose holds the budget covered whole (a pool sized
 *    for them: zcv_server_pending_buffers).
 *  - When nothing is left it gets the copy tier (a private pool; it holds
 *    no source buffer) and path_reason says the budget is exhausted.
 *    Copy-tier consumers never draw on the budget; their private pool
 *    has one buffer more than they may hold.
 *  - A departing consumer's grant returns to the budget (for newcomers;
 *    consumers already on the copy tier stay there until the next pool).
 *  - zcv_server_set_pool() grants anew, in order of arrival, out of the
 *    new pool's budget.
 *  - The grant is WELCOME's max_hold and zcv_consumer_info.max_hold.
 *
 * The pool is not grown at admission: a producer that can grow its pool
 * reallocates it itself (defer_admission + zcv_server_set_pool()).
 */

enum zcv_consumer_state {
	ZCV_CONSUMER_HANDSHAKE = 0,
	ZCV_CONSUMER_STREAMING,
	ZCV_CONSUMER_GONE,
};

struct zcv_consumer_info {
	unsigned id;
	char name[32];
	pid_t pid;
	uid_t uid;
	enum zcv_consumer_state state;
	int path;          /* enum zcv_path */
	unsigned max_hold; /* granted: frames it may hold at once (0 before admission) */
	unsigned held;     /* frames it holds now */
	uint64_t frames_sent;
	uint64_t skipped;      /* frames it missed because it was at its hold limit */
	uint64_t copied_bytes; /* copy tier only */
	int end_error; /* why it left: 0 clean, -ECONNRESET, -ETIMEDOUT (held too long), -EPROTO,
			  ... */
	char end_reason[64];
	/* Appended. */
	bool hello_seen;                    /* its HELLO arrived */
	struct zcv_constraints constraints; /* what it said it needs; hold: what it
					     * asked to hold (0: the default) */
	char path_reason[128];              /* why it got the copy tier ("" otherwise) */
};

/* They run inside dispatch/publish/set_pool/admit/end, never inside destroy.
 * consumer_joined: the handshake completed (state STREAMING).
 * consumer_left: a consumer that had joined is gone (info has end_error and
 * end_reason). Consumers refused before joining only appear in
 * zcv_server_get_consumers(). */
struct zcv_server_callbacks {
	void (*consumer_joined)(void *data, const struct zcv_consumer_info *info);
	void (*consumer_left)(void *data, const struct zcv_consumer_info *info);
	/* Appended. With defer_admission: a consumer's HELLO arrived; it
	 * waits for zcv_server_admit(). */
	void (*consumer_hello)(void *data, const struct zcv_consumer_info *info);
};

/*
 * Binds the socket and starts listening. pool is borrowed and must outlive
 * the server (or be replaced with zcv_server_set_pool()); the server sets
 * nothing in it but holder counts (zcv_pool_lend / zcv_pool_unhold), so the
 * pool's on_free callback tells the producer when a buffer comes back.
 * Returns 0 or: -EADDRINUSE when another producer serves that path,
 * -EEXIST when something other than a socket is at that path (a stale
 * socket is replaced), -ENAMETOOLONG, -EINVAL for a bad config (or a pool
 * buffer without fds), -EPERM when allow_group is set and the socket (or
 * the default socket's directory) cannot be made allowed_gid's (we are
 * not a member), -EACCES when that group cannot pass the directory above
 * the default socket's ($XDG_RUNTIME_DIR is usually closed to everyone
 * else: give a socket_path the group can reach), the errors of
 * zcv_socket_default_path(), or a socket/epoll errno.
 */
int zcv_server_create(const struct zcv_server_config *cfg, const struct zcv_server_callbacks *cbs,
		      void *data, struct zcv_pool *pool, struct zcv_server **ret_server);

/* Sends BYE (end of stream) to every consumer, closes all, unlinks the
 * socket. Buffers still lent are unheld. Consumers' sockets are closed on
 * the fd-closing thread; this waits up to 1 s for it to finish, so that on
 * return every fd the server had is closed unless a peer made a close
 * block longer than that. Accepts NULL. */
void zcv_server_destroy(struct zcv_server *srv);

/* Epoll fd to poll for EPOLLIN; owned by the server. */
int zcv_server_get_fd(struct zcv_server *srv);

/* Handles everything pending (accept, messages, hang-ups, hold timeouts)
 * without blocking: fds a consumer sends along and the sockets of dropped
 * consumers are closed on a background thread (a close can block for as
 * long as the peer chooses). Returns 0, or a negative errno on an internal failure
 * (consumer misbehaviour is handled by disconnecting that consumer). */
int zcv_server_dispatch(struct zcv_server *srv);

/*
 * Publishes the frame in buffer idx (state PRODUCER) to every streaming
 * consumer below its hold limit; the others are skipped and count a drop.
 * The buffer is lent with one holder per receiver (free at once with none).
 * Copy-tier consumers get a copy in their private pool and do not hold the
 * buffer. After zcv_server_end() nobody gets it: the buffer is FREE at once.
 * Returns the number of consumers that got it, or -EINVAL (bad index or the
 * buffer is not the producer's).
 */
int zcv_server_publish(struct zcv_server *srv, unsigned idx, const struct zcv_frame_meta *meta);

/* Replaces the pool (new generation): every consumer gets a new WELCOME
 * and the new buffers; old buffers are retired as they are released.
 * pool is borrowed. The OLD pool stays borrowed too: keep it alive until
 * zcv_pool_count(old, ZCV_BUFFER_LENT) == 0 (its on_free fires as each
 * buffer comes back) or until zcv_server_destroy() returned.
 * Returns 0 or -EINVAL (generation not newer, or a buffer without fds). */
int zcv_server_set_pool(struct zcv_server *srv, struct zcv_pool *pool);

/* The source went away (present false) or came back: every streaming
 * consumer that understands it is sent STATUS, and one admitted while
 * the source is away is sent it after its pool. Call it with present true
 * before zcv_server_set_pool() of the source's next pool, so consumers
 * hear the source is back before the new generation. reason: printable
 * text, cut at 63 bytes. No-op when nothing changes or after the end. */
void zcv_server_set_source(struct zcv_server *srv, bool present, const char *reason);

/* Tells every consumer the stream ended (error 0) or failed (negative
 * errno, reason text), and stops accepting. Consumers keep their
 * connection until they release what they hold or hang up. */
void zcv_server_end(struct zcv_server *srv, int error, const char *reason);

/* Consumers connected now plus those that left (most recent 64), oldest
 * first. Returns how many were written (at most max). */
unsigned zcv_server_get_consumers(struct zcv_server *srv, struct zcv_consumer_info *out,
				  unsigned max);

/* Sends the pool to every consumer waiting since its HELLO (see
 * defer_admission) and admits later ones at once from now on. Each gets
 * the zero-copy path when the current pool meets its constraints, else
 * the copy tier (path_reason says why). When the budget holds what all
 * of them ask for, each is granted it whole (see "The buffer budget").
 * Returns the number admitted. */
int zcv_server_admit(struct zcv_server *srv);

/* Consumers whose HELLO arrived and who wait for zcv_server_admit(). */
unsigned zcv_server_pending_count(struct zcv_server *srv);

/* The constraints of all waiting consumers merged (zcv_constraints_merge:
 * largest sizes and alignments, holds added), leaving out those that asked
 * for the copy tier. */
void zcv_server_pending_constraints(struct zcv_server *srv, struct zcv_constraints *ret);

/* The buffers a pool needs so that every consumer waiting for admission
 * is granted all it asked for (each one's hold, capped at max_hold; the
 * default for those that asked for none) plus source_reserve: what a
 * producer grows its pool to when its source can. */
unsigned zcv_server_pending_buffers(struct zcv_server *srv);

/* The buffer budget now: source buffers consumers may hold together
 * (n_buffers - source_reserve of the current pool, 0 when the pool is
 * that small) and how many of them are granted. Either may be NULL. */
void zcv_server_get_budget(struct zcv_server *srv, unsigned *ret_total, unsigned *ret_granted);

/* Number of consumers in STREAMING state. */
unsigned zcv_server_streaming_count(struct zcv_server *srv);

/* Bytes the copy tier copied, for every consumer together. */
uint64_t zcv_server_copied_bytes(struct zcv_server *srv);

/* The socket path in use (owned by the server). */
const char *zcv_server_socket_path(struct zcv_server *srv);

/*
 * Default socket path: $XDG_RUNTIME_DIR/zcv/default.sock, else
 * /tmp/zcv-$UID/default.sock. Creates the directory with mode 0700 when
 * missing. Accepts it only when it is ours, nobody else may write to it
 * and others may not enter it: 0700, or a group's 0710/0750 (what
 * zcv_server_create() makes of it for allow_group). Refuses anything else.
 * Returns 0, -ENAMETOOLONG, -EPERM (unsafe directory) or a mkdir errno.
 */
int zcv_socket_default_path(char *buf, size_t size);
