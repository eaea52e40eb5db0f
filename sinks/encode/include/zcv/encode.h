/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <zcv/format.h>
#include <zcv/stream.h>

/*
 * Encode sink: feeds frames to a V4L2 stateful mem2mem encoder (the
 * "memory-to-memory stateful video encoder interface") and hands the
 * bitstream it produces to a callback.
 *
 * Frames are imported, not copied: a DMA-BUF frame is queued on the
 * encoder's OUTPUT queue with V4L2_MEMORY_DMABUF (one fd per memory plane),
 * a memfd frame with V4L2_MEMORY_USERPTR from the consumer's mapping. The
 * pool buffer with index i is always V4L2 buffer i, so the driver maps each
 * buffer once. When the driver is done with a frame (OUTPUT buffer
 * dequeued) the `done` callback returns it: that is when the sink releases
 * it to the producer.
 *
 * Runs on the caller's loop: poll zcv_encoder_get_fd() for
 * POLLIN|POLLOUT|POLLPRI once zcv_encoder_streaming() is true, and call
 * zcv_encoder_dispatch(). Library code does not print: errors come back as
 * negative errnos with a text from zcv_encoder_error().
 */
struct zcv_encoder;

struct zcv_encoder_config {
	const char *device; /* /dev/videoN; NULL: the first mem2mem encoder found */
	uint32_t codec;     /* V4L2 fourcc of the coded format; 0: the device's first */
	int64_t bitrate;    /* bits/s; <= 0: leave the driver's */
	int gop;            /* keyframe interval in frames; <= 0: leave the driver's */
	unsigned n_capture; /* CAPTURE (bitstream) buffers; 0: 4 */
};

struct zcv_encoder_callbacks {
	/* The encoder finished reading the frame queued with this cookie:
	 * the sink may release it. */
	void (*done)(void *data, uint64_t cookie);
	/* One CAPTURE buffer of bitstream (len may be 0 for the last, empty
	 * one). sequence and timestamp_ns are those of the frame it encodes
	 * (as given to zcv_encoder_queue), when the driver says which.
	 * keyframe is V4L2_BUF_FLAG_KEYFRAME, which some drivers never set
	 * (vicodec): false does not mean it is not one. */
	void (*packet)(void *data, const void *buf, size_t len, uint64_t sequence,
		       uint64_t timestamp_ns, bool keyframe);
};

/*
 * Finds the mem2mem devices under /dev whose CAPTURE side offers a
 * compressed format (codec != 0: that format). Writes the first one's path
 * to path. When there is none, *ret_looked_at (when not NULL) gets a static
 * text saying what was looked at and found.
 * Returns 0, -ENODEV (none), -ENAMETOOLONG.
 */
int zcv_encoder_find(uint32_t codec, char *path, size_t size, const char **ret_looked_at);

/*
 * Opens the encoder (cfg->device, or the first zcv_encoder_find() finds
 * for cfg->codec) and checks it is one: -ENOENT (no such device),
 * -ENOTTY (not V4L2), -ENODEV (not a mem2mem encoder, codec not offered,
 * or no device given and none found), -EBUSY, -EINVAL (no cfg), or a
 * driver errno; *ret_error (may be NULL) gets an explanation, static
 * until the thread's next call.
 */
int zcv_encoder_create(const struct zcv_encoder_config *cfg,
		       const struct zcv_encoder_callbacks *cbs, void *data,
		       struct zcv_encoder **ret_enc, const char **ret_error);

void zcv_encoder_destroy(struct zcv_encoder *enc); /* accepts NULL */

/* Device path, driver/card names and the coded format chosen. */
const char *zcv_encoder_device(struct zcv_encoder *enc);
const char *zcv_encoder_card(struct zcv_encoder *enc);
uint32_t zcv_encoder_codec(struct zcv_encoder *enc);

/* Probes (TRY_FMT) what the encoder needs of raw frames in this fourcc
 * (0: NV12): line strides a multiple of stride_align bytes, every plane
 * laid out for a height rounded up to height_align lines (the encoder
 * reads the chroma plane of a one-buffer format at stride *
 * ALIGN(height, height_align)); other fields are left as they are.
 * Returns 0 or -EINVAL when it does not take that format. */
int zcv_encoder_probe_needs(struct zcv_encoder *enc, uint32_t fourcc,
			    struct zcv_constraints *ret_needs);

enum zcv_encoder_memory {
	ZCV_ENCODER_DMABUF = 1,  /* frames come as DMA-BUF fds */
	ZCV_ENCODER_USERPTR = 2, /* frames come as mappings (memfd) */
};

/*
 * Sets the OUTPUT (raw) format to the stream's layout, the CAPTURE
 * (coded) format to the codec at that size, applies bitrate/GOP where the
 * driver has those controls, allocates n_buffers OUTPUT slots (the
 * stream's pool size) and starts streaming. The layout must be what the
 * driver reads: same fourcc, a stride it accepts, planes where it reads
 * them. Returns 0, -EINVAL (format rejected; zcv_encoder_error() says how)
 * or a driver errno.
 */
int zcv_encoder_start(struct zcv_encoder *enc, const struct zcv_layout *layout, unsigned n_buffers,
		      uint32_t fps_num, uint32_t fps_den, enum zcv_encoder_memory memory);

bool zcv_encoder_streaming(struct zcv_encoder *enc);

/* Controls that were asked for and are missing, for the tool to report:
 * bit 0 bitrate, bit 1 gop. */
unsigned zcv_encoder_missing_controls(struct zcv_encoder *enc);

struct zcv_encoder_frame {
	unsigned index; /* pool buffer index = V4L2 OUTPUT index */
	uint64_t sequence;
	uint64_t timestamp_ns;
	uint64_t cookie;                  /* given back by the done callback */
	unsigned n_planes;                /* colour planes */
	int fd[ZCV_MAX_PLANES];           /* DMABUF: plane fds (borrowed) */
	uint64_t fd_size[ZCV_MAX_PLANES]; /* size of the memory object fd[p] (and of
					   * the mapping map[p] lies in) */
	uint32_t offset[ZCV_MAX_PLANES];
	const void *map[ZCV_MAX_PLANES]; /* USERPTR: plane pointers */
	uint32_t bytesused[ZCV_MAX_PLANES];
};

/* Queues a frame on the OUTPUT queue. Returns 0, -EBUSY when that
 * index is still queued, -EINVAL (the frame does not fit what the driver
 * reads; see zcv_encoder_error()), or the QBUF errno. */
int zcv_encoder_queue(struct zcv_encoder *enc, const struct zcv_encoder_frame *frame);

/* Epoll-able fd (the device); owned by the encoder. */
int zcv_encoder_get_fd(struct zcv_encoder *enc);

/* Dequeues what is done on both queues; calls the callbacks.
 * Returns 0, 1 once the drain finished (the last CAPTURE buffer came out),
 * or a negative errno (-ENODEV device gone). */
int zcv_encoder_dispatch(struct zcv_encoder *enc);

/* Starts a drain (V4L2_ENC_CMD_STOP): every frame queued so far is
 * encoded and comes out, then dispatch returns 1. Returns 0 or an errno;
 * when not streaming, drained at once. */
int zcv_encoder_drain(struct zcv_encoder *enc);

/* Frames queued on OUTPUT now. */
unsigned zcv_encoder_queued(struct zcv_encoder *enc);

/* Human-readable text of the last failure. */
const char *zcv_encoder_error(struct zcv_encoder *enc);

struct zcv_sink;

/* What the encode sink tells besides the bitstream. */
struct zcv_encode_sink_config {
	FILE *frame_log; /* the producer sequence of every encoded frame, a line each, in
			  * bitstream order (testing); NULL: none. Borrowed. */
	FILE *trace;     /* a line per frame queued, frame done and packet, with times
			  * (debugging); NULL: none. Borrowed. */
};

/*
 * The encode sink (<zcv/sink.h>): an encoder made with ecfg (as
 * zcv_encoder_create, whose errors and *ret_error it returns) behind the
 * sink interface. It owns the encoder (*ret_encoder borrows it for its
 * device, codec and needs until zcv_sink_destroy()). The first format
 * starts the encoder (DMA-BUF import on the DMA-BUF path, USERPTR from the
 * mapping otherwise); each frame goes into a free slot and is queued;
 * the encoder's done hands it back; every packet is written to
 * the output (zcv_encode_sink_set_output); latency is capture to packet; the drain is
 * V4L2_ENC_CMD_STOP up to the last packet. A frame that finds every slot
 * busy is declined (not_encoded). The run fails when the encoder refuses
 * the stream or a frame, a format change it cannot follow, or a write
 * of the bitstream fails. Returns 0, or as zcv_encoder_create, -ENOMEM.
 */
int zcv_encode_sink_create(const struct zcv_encoder_config *ecfg,
			   const struct zcv_encode_sink_config *cfg, struct zcv_sink **ret_sink,
			   struct zcv_encoder **ret_encoder, const char **ret_error);

/* Where the bitstream goes: fd (borrowed), before the run. Returns 0, or
 * -EINVAL when sink is not an encode sink. */
int zcv_encode_sink_set_output(struct zcv_sink *sink, int fd);

struct zcv_encode_sink_stats {
	uint64_t frames_in;   /* frames queued to the encoder */
	uint64_t frames_out;  /* packets written (the empty last one not counted) */
	uint64_t bytes_out;   /* bitstream bytes written */
	uint64_t keyframes;   /* packets the driver flagged as keyframes */
	bool keyframes_known; /* false when it flagged none: every stream starts
			       * with one, so the driver does not say (vicodec)
			       * and keyframes is unknown, not 0 */
	uint64_t not_encoded; /* frames declined: every slot busy */
	double encoder_fps;   /* frames out per second, first frame in to last out */
};

/* The encode sink's figures. Returns 0, or -EINVAL when sink is not an
 * encode sink. */
int zcv_encode_sink_get_stats(struct zcv_sink *sink, struct zcv_encode_sink_stats *ret_stats);
