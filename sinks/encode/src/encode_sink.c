/* SPDX-License-Identifier: MIT */
/* The encode sink: a V4L2 mem2mem encoder behind <zcv/sink.h>. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zcv/encode.h>
#include <zcv/sink.h>

/* Frames in the encoder at once: what a consumer may be granted. */
#define MAX_SLOTS 32

struct slot {
	bool used;
	struct zcv_client_frame frame;
};

struct encode_sink {
	struct zcv_sink *sink;
	struct zcv_encoder *enc;
	struct zcv_encode_sink_config cfg;
	int out_fd;
	struct zcv_layout layout;
	unsigned n_buffers;
	bool started, drained;
	struct zcv_encode_sink_stats st;
	uint64_t first_in_ns, first_out_ns, last_out_ns;
	struct slot slots[MAX_SLOTS]; /* the slot number is the encoder's cookie */
};

/* The encoder finished reading a frame: it goes back to the producer. */
static void on_done(void *data, uint64_t cookie)
{
	struct encode_sink *es = data;

	if (es->cfg.trace)
		fprintf(es->cfg.trace, "trace: done slot %" PRIu64 " at %llu\n", cookie,
			zcv_now_ns());
	if (cookie >= MAX_SLOTS || !es->slots[cookie].used)
		return;
	es->slots[cookie].used = false;
	zcv_sink_done(es->sink, &es->slots[cookie].frame);
}

static void on_packet(void *data, const void *buf, size_t len, uint64_t seq, uint64_t ts, bool key)
{
	struct encode_sink *es = data;
	const uint8_t *p = buf;
	uint64_t now = zcv_now_ns();

	if (!len)
		return;
	while (len) {
		ssize_t n = write(es->out_fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			zcv_sink_fail(es->sink, -errno, "writing the bitstream failed: %s",
				      strerror(errno));
			return;
		}
		p += n;
		len -= (size_t)n;
		es->st.bytes_out += (uint64_t)n;
	}
	es->st.frames_out++;
	es->st.keyframes += key;
	es->st.keyframes_known |= key;
	if (es->cfg.trace)
		fprintf(es->cfg.trace, "trace: packet seq %" PRIu64 " len %zu at %" PRIu64 "\n",
			seq, (size_t)(p - (const uint8_t *)buf), now);
	if (!es->first_out_ns)
		es->first_out_ns = now;
	es->last_out_ns = now;
	if (ts && now > ts)
		zcv_sink_add_latency(es->sink, now - ts);
	if (es->cfg.frame_log)
		fprintf(es->cfg.frame_log, "%" PRIu64 "\n", seq);
}

static int encode_format(void *data, const struct zcv_client_format *fmt)
{
	struct encode_sink *es = data;
	int r;

	if (es->started) {
		/* a new pool generation with the same layout is fine: DMABUF slots
		 * re-import whatever fd comes at their index */
		if (memcmp(&fmt->layout, &es->layout, sizeof(es->layout)) ||
		    fmt->n_buffers > es->n_buffers)
			return zcv_sink_fail(es->sink, -EINVAL,
					     "the stream changed format mid-stream; the encoder "
					     "keeps the first: start again");
		return 0;
	}
	r = zcv_encoder_start(es->enc, &fmt->layout, fmt->n_buffers, fmt->fps_num, fmt->fps_den,
			      fmt->path == ZCV_PATH_DMABUF ? ZCV_ENCODER_DMABUF :
							     ZCV_ENCODER_USERPTR);
	if (r < 0)
		return zcv_sink_fail(es->sink, r, "%s", zcv_encoder_error(es->enc));
	es->layout = fmt->layout;
	es->n_buffers = fmt->n_buffers;
	es->started = true;
	return 0;
}

static int encode_frame(void *data, const struct zcv_client_frame *f)
{
	struct encode_sink *es = data;
	struct zcv_encoder_frame ef = { 0 };
	unsigned slot;
	int r;

	if (!es->started)
		return ZCV_SINK_DECLINE;
	for (slot = 0; slot < MAX_SLOTS && es->slots[slot].used; slot++)
		;
	if (slot == MAX_SLOTS) {
		es->st.not_encoded++;
		return ZCV_SINK_DECLINE;
	}
	ef.index = f->index;
	ef.sequence = f->sequence;
	ef.timestamp_ns = f->timestamp_ns;
	ef.cookie = slot;
	ef.n_planes = f->n_planes;
	for (unsigned p = 0; p < f->n_planes; p++) {
		ef.fd[p] = f->fd[p];
		ef.fd_size[p] = f->length[p];
		ef.offset[p] = f->offset[p];
		ef.map[p] = f->planes[p] ? f->planes[p] - f->offset[p] : NULL;
		ef.bytesused[p] = f->bytesused[p];
	}
	es->slots[slot].used = true;
	es->slots[slot].frame = *f;
	if (es->cfg.trace)
		fprintf(es->cfg.trace, "trace: queue seq %" PRIu64 " index %u slot %u at %llu\n",
			f->sequence, f->index, slot, zcv_now_ns());
	r = zcv_encoder_queue(es->enc, &ef);
	if (r < 0) {
		es->slots[slot].used = false;
		return zcv_sink_fail(es->sink, r, "%s", zcv_encoder_error(es->enc));
	}
	if (!es->first_in_ns)
		es->first_in_ns = zcv_now_ns();
	es->st.frames_in++;
	return 0;
}

static int encode_get_fd(void *data, short *ret_events)
{
	struct encode_sink *es = data;

	if (!es->started || es->drained || !zcv_encoder_streaming(es->enc))
		return -1;
	*ret_events = POLLIN | POLLOUT | POLLPRI;
	return zcv_encoder_get_fd(es->enc);
}

static int encode_dispatch(void *data)
{
	struct encode_sink *es = data;
	int r = zcv_encoder_dispatch(es->enc);

	if (r < 0)
		return zcv_sink_fail(es->sink, r, "%s", zcv_encoder_error(es->enc));
	if (r == 1)
		es->drained = true;
	return r;
}

static int encode_drain(void *data)
{
	struct encode_sink *es = data;

	if (!es->started || !zcv_encoder_streaming(es->enc))
		return 1;
	/* when the STOP command fails the encoder says drained at its next
	 * dispatch: the frames it had may be lost, nothing waits forever */
	zcv_encoder_drain(es->enc);
	return es->drained ? 1 : 0;
}

static void encode_stats(void *data, struct zcv_sink_stats *stats)
{
	struct encode_sink *es = data;

	/* what came out of the encoder, and when */
	stats->frames = es->st.frames_out;
	stats->first_ns = es->first_out_ns;
	stats->last_ns = es->last_out_ns;
}

static void encode_destroy(void *data)
{
	struct encode_sink *es = data;

	/* the encoder first: it must let go of the imported buffers */
	zcv_encoder_destroy(es->enc);
	for (unsigned i = 0; i < MAX_SLOTS; i++)
		if (es->slots[i].used)
			zcv_sink_done(es->sink, &es->slots[i].frame);
	free(es);
}

static const struct zcv_sink_ops encode_ops = {
	.size = sizeof(struct zcv_sink_ops),
	.flags = ZCV_SINK_OWN_LATENCY,
	.format = encode_format,
	.frame = encode_frame,
	.get_fd = encode_get_fd,
	.dispatch = encode_dispatch,
	.drain = encode_drain,
	.stats = encode_stats,
	.destroy = encode_destroy,
};

int zcv_encode_sink_create(const struct zcv_encoder_config *ecfg,
			   const struct zcv_encode_sink_config *cfg, struct zcv_sink **ret_sink,
			   struct zcv_encoder **ret_encoder, const char **ret_error)
{
	static const struct zcv_encoder_callbacks cbs = { .done = on_done, .packet = on_packet };
	struct encode_sink *es;
	int r;

	if (!cfg)
		return -EINVAL;
	es = calloc(1, sizeof(*es));
	if (!es)
		return -ENOMEM;
	es->cfg = *cfg;
	es->out_fd = -1;
	r = zcv_encoder_create(ecfg, &cbs, es, &es->enc, ret_error);
	if (r < 0) {
		free(es);
		return r;
	}
	r = zcv_sink_create(&encode_ops, es, &es->sink);
	if (r < 0) {
		zcv_encoder_destroy(es->enc);
		free(es);
		return r;
	}
	*ret_sink = es->sink;
	if (ret_encoder)
		*ret_encoder = es->enc;
	return 0;
}

int zcv_encode_sink_set_output(struct zcv_sink *sink, int fd)
{
	struct encode_sink *es = zcv_sink_get_data(sink, &encode_ops);

	if (!es)
		return -EINVAL;
	es->out_fd = fd;
	return 0;
}

int zcv_encode_sink_get_stats(struct zcv_sink *sink, struct zcv_encode_sink_stats *ret)
{
	struct encode_sink *es = zcv_sink_get_data(sink, &encode_ops);
	uint64_t span;

	if (!es)
		return -EINVAL;
	*ret = es->st;
	span = es->last_out_ns > es->first_in_ns && es->first_in_ns ?
		       es->last_out_ns - es->first_in_ns :
		       0;
	ret->encoder_fps = span ? (double)es->st.frames_out * 1e9 / (double)span : 0;
	return 0;
}
