/* SPDX-License-Identifier: MIT */
/*
 * zcv-bench-pw: the PipeWire side of zcv-bench, a small pw_stream producer
 * or consumer doing the same per-frame work as zcv-bench's own peers
 * (bench-peer.h: the producer writes a small header into the frame, the
 * consumer reads it back for latency; no rendering, no pixel reading).
 *
 *   zcv-bench-pw producer NAME WxH FPS FRAMES WARMUP REPORT [STRACE_OUT]
 *   zcv-bench-pw consumer NAME WxH WARMUP REPORT [STRACE_OUT]
 *
 * The producer is the graph's driver (PW_STREAM_FLAG_DRIVER): paced, a
 * timer triggers a graph cycle FPS times a second; FPS 0 (unpaced) triggers
 * the next cycle as soon as the previous one completed (trigger_done), i.e.
 * as fast as the graph runs. Both sides run their process callback on
 * PipeWire's data thread (PW_STREAM_FLAG_RT_PROCESS) and ask for memfd
 * buffers only (SPA_DATA_MemFd), mapped once (PW_STREAM_FLAG_MAP_BUFFERS).
 * Nothing links by itself without a session manager: each peer writes
 * "ready" on stdout once its node and port exist, and zcv-bench links them
 * (pw-link); the producer starts sending when it reads "go" on stdin, i.e.
 * once every link exists. The consumer exits on the producer's last frame
 * or SIGTERM. Unpaced, a cycle that never completes (a trigger that came
 * while the graph was busy) would stop the chain: a 5 ms watchdog triggers
 * again when no frame went out since its last tick.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <pipewire/pipewire.h>
#include <spa/param/buffers.h>
#include <spa/param/video/format-utils.h>

#include "bench-peer.h"

struct peer {
	bool producer;
	struct pw_main_loop *loop;
	struct pw_stream *stream;
	struct spa_source *timer;
	uint32_t w, h, stride, size;
	unsigned fps;
	uint64_t n_frames, warmup, seq;
	const char *strace_out;
	pid_t strace_pid;
	bool window, streaming, ready, finished, go, started;
	uint64_t watch_seq;
	atomic_bool stop;
	uint64_t cpu0, wall0, cpu_last, wall_last;
	struct bench_report rep;
	int error;
};

static void window_frame(struct peer *p, bool last)
{
	if (!p->window) {
		/* traced runs count syscalls from here on; untraced ones CPU */
		if (p->strace_out) {
			/* no count (reported as such) rather than no run */
			p->strace_pid = bench_trace_start(p->strace_out);
			if (p->strace_pid < 0)
				p->strace_pid = 0;
		}
		p->window = true;
		p->cpu0 = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
		p->wall0 = bench_clock_ns(CLOCK_MONOTONIC);
	}
	/* frames include the window's first: per frame = cpu / (frames - 1) */
	p->rep.frames++;
	if (p->strace_pid > 0)
		p->rep.traced++;
	if (last) {
		p->cpu_last = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
		p->wall_last = bench_clock_ns(CLOCK_MONOTONIC);
	}
}

static void end_window(struct peer *p)
{
	if (p->window && !p->cpu_last) {
		p->cpu_last = bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
		p->wall_last = bench_clock_ns(CLOCK_MONOTONIC);
	}
}

static void finish_window(struct peer *p)
{
	if (p->finished)
		return;
	p->finished = true;
	end_window(p);
	if (p->strace_pid > 0) {
		bench_trace_stop(p->strace_pid);
		p->rep.syscalls = bench_trace_total(p->strace_out);
	}
	p->rep.cpu_ns = p->window ? p->cpu_last - p->cpu0 : 0;
	p->rep.wall_ns = p->window ? p->wall_last - p->wall0 : 0;
}

static void on_process(void *data)
{
	struct peer *p = data;
	struct pw_buffer *b;
	struct spa_data *d;

	if (atomic_load(&p->stop))
		return;
	b = pw_stream_dequeue_buffer(p->stream);
	if (!b) {
		return;
	}
	d = &b->buffer->datas[0];
	if (p->producer) {
		bool last = p->seq + 1 >= p->n_frames;

		if (d->data && d->maxsize >= sizeof(struct bench_hdr)) {
			if (p->seq >= p->warmup)
				window_frame(p, last);
			p->rep.data_type = d->type;
			if (d->type == SPA_DATA_MemFd)
				p->rep.memfd++;
			bench_hdr_write(d->data, p->seq, last);
			d->chunk->offset = 0;
			d->chunk->size = p->size;
			d->chunk->stride = (int32_t)p->stride;
			p->seq++;
		} else {
			p->rep.bad++;
		}
		pw_stream_queue_buffer(p->stream, b);
		if (last) {
			finish_window(p);
			atomic_store(&p->stop, true);
			pw_main_loop_quit(p->loop);
		}
		return;
	}

	{
		uint64_t now = bench_clock_ns(CLOCK_MONOTONIC);
		struct bench_hdr h;
		bool ok = d->data && d->chunk->size >= sizeof(h) && bench_hdr_read(d->data, &h);

		if (!ok || (p->seq && h.seq < p->seq)) {
			p->rep.bad++;
		} else {
			p->seq = h.seq + 1;
			if (h.seq >= p->warmup) {
				window_frame(p, h.flags & BENCH_HDR_LAST);
				bench_report_lat(&p->rep, now - h.ts_ns);
				p->rep.data_type = d->type;
				if (d->type == SPA_DATA_MemFd)
					p->rep.memfd++;
			}
		}
		pw_stream_queue_buffer(p->stream, b);
		if (ok && (h.flags & BENCH_HDR_LAST)) {
			finish_window(p);
			atomic_store(&p->stop, true);
			pw_main_loop_quit(p->loop);
		}
	}
}

static void on_timeout(void *data, uint64_t expirations)
{
	struct peer *p = data;

	if (atomic_load(&p->stop))
		return;
	if (p->fps) {
		pw_stream_trigger_process(p->stream);
	} else if (p->seq == p->watch_seq) {
		pw_stream_trigger_process(p->stream);
		p->rep.no_buffer++; /* counts stalls: the cycle never completed */
	}
	p->watch_seq = p->seq;
}

/* paced: a timer FPS times a second; unpaced: the first trigger and the
 * watchdog, then trigger_done drives */
static void start_sending(struct peer *p)
{
	struct pw_loop *l = pw_main_loop_get_loop(p->loop);
	struct timespec first = { 0, 1 };
	struct timespec period = { 0, p->fps ? (long)(1000000000ull / p->fps) : 5000000 };

	if (p->started || !p->go || !p->streaming)
		return;
	p->started = true;
	pw_loop_update_timer(l, p->timer, &first, &period, false);
	if (!p->fps)
		pw_stream_trigger_process(p->stream);
}

static void on_stdin(void *data, int fd, uint32_t mask)
{
	struct peer *p = data;
	char buf[16];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n > 0 && !memcmp(buf, "go", 2)) {
		p->go = true;
		start_sending(p);
	} else if (n <= 0) {
		pw_main_loop_quit(p->loop); /* zcv-bench went away */
	}
}

/* unpaced: the next cycle as soon as the graph completed the previous */
static void on_trigger_done(void *data)
{
	struct peer *p = data;

	if (p->fps == 0 && p->streaming && !atomic_load(&p->stop))
		pw_stream_trigger_process(p->stream);
}

static void on_state_changed(void *data, enum pw_stream_state old, enum pw_stream_state state,
			     const char *error)
{
	struct peer *p = data;

	switch (state) {
	case PW_STREAM_STATE_ERROR:
		fprintf(stderr, "zcv-bench-pw: stream error: %s\n", error ? error : "?");
		p->error = -EIO;
		pw_main_loop_quit(p->loop);
		break;
	case PW_STREAM_STATE_UNCONNECTED:
		pw_main_loop_quit(p->loop);
		break;
	case PW_STREAM_STATE_PAUSED:
		if (!p->ready) {
			/* node and port exist: zcv-bench may link now */
			p->ready = true;
			printf("ready %u\n", pw_stream_get_node_id(p->stream));
			fflush(stdout);
		} else if (!p->producer && p->streaming) {
			/* the producer left before its last frame reached us */
			pw_main_loop_quit(p->loop);
		}
		break;
	case PW_STREAM_STATE_STREAMING:
		p->streaming = true;
		if (p->producer)
			start_sending(p);
		break;
	default:
		break;
	}
}

static void on_param_changed(void *data, uint32_t id, const struct spa_pod *param)
{
	struct peer *p = data;
	uint8_t buf[512];
	struct spa_pod_builder b = SPA_POD_BUILDER_INIT(buf, sizeof(buf));
	const struct spa_pod *params[1];

	if (!param || id != SPA_PARAM_Format)
		return;
	/* memfd only: the case measures PipeWire's zero-copy CPU path */
	params[0] = spa_pod_builder_add_object(
		&b, SPA_TYPE_OBJECT_ParamBuffers, SPA_PARAM_Buffers, SPA_PARAM_BUFFERS_buffers,
		SPA_POD_CHOICE_RANGE_Int(8, 2, 16), SPA_PARAM_BUFFERS_blocks, SPA_POD_Int(1),
		SPA_PARAM_BUFFERS_size, SPA_POD_Int((int32_t)p->size), SPA_PARAM_BUFFERS_stride,
		SPA_POD_Int((int32_t)p->stride), SPA_PARAM_BUFFERS_dataType,
		SPA_POD_CHOICE_FLAGS_Int(1 << SPA_DATA_MemFd));
	pw_stream_update_params(p->stream, params, 1);
}

/*
 * Producer: one sealed memfd per buffer, mapped once here; PipeWire passes
 * the fd and the consumer's stream maps it once (MAP_BUFFERS). Left to
 * itself PipeWire 0.3 would put all buffers in one shared memfd and hand
 * out pointers (SPA_DATA_MemPtr): also zero-copy, but not zcv's layout.
 */
static void on_add_buffer(void *data, struct pw_buffer *buffer)
{
	struct peer *p = data;
	struct spa_data *d = &buffer->buffer->datas[0];
	void *m;

	if (!p->producer)
		return; /* the consumer's buffers are PipeWire's to map */
	if (!(d->type & (1u << SPA_DATA_MemFd)))
		goto fail;
	d->type = SPA_DATA_MemFd;
	d->flags = SPA_DATA_FLAG_READWRITE;
	d->mapoffset = 0;
	d->maxsize = p->size;
	d->data = NULL;
	d->fd = memfd_create("zcv-bench-pw", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (d->fd < 0)
		goto fail;
	if (ftruncate(d->fd, p->size) < 0 ||
	    fcntl(d->fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
		goto fail;
	m = mmap(NULL, p->size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, 0);
	if (m == MAP_FAILED)
		goto fail;
	d->data = m;
	return;
fail:
	fprintf(stderr, "zcv-bench-pw: cannot make a memfd buffer: %s\n", strerror(errno));
	p->error = -ENOMEM;
}

static void on_remove_buffer(void *data, struct pw_buffer *buffer)
{
	struct peer *p = data;
	struct spa_data *d = &buffer->buffer->datas[0];

	if (!p->producer || d->type != SPA_DATA_MemFd)
		return;
	if (d->data)
		munmap(d->data, d->maxsize);
	if (d->fd >= 0)
		close((int)d->fd);
	d->data = NULL;
	d->fd = -1;
}

static const struct pw_stream_events events = {
	PW_VERSION_STREAM_EVENTS,          .state_changed = on_state_changed,
	.param_changed = on_param_changed, .process = on_process,
	.trigger_done = on_trigger_done,   .add_buffer = on_add_buffer,
	.remove_buffer = on_remove_buffer,
};

static void on_signal(void *data, int sig)
{
	struct peer *p = data;

	pw_main_loop_quit(p->loop);
}

static int usage(void)
{
	fprintf(stderr, "usage: zcv-bench-pw producer NAME WxH FPS FRAMES WARMUP REPORT [STRACE]\n"
			"       zcv-bench-pw consumer NAME WxH WARMUP REPORT [STRACE]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct peer p = { .rep.syscalls = -1 };
	const char *name, *report;
	uint8_t buf[1024];
	struct spa_pod_builder b = SPA_POD_BUILDER_INIT(buf, sizeof(buf));
	const struct spa_pod *params[1];
	struct pw_properties *props;
	enum pw_stream_flags flags = PW_STREAM_FLAG_MAP_BUFFERS | PW_STREAM_FLAG_RT_PROCESS;
	struct pw_loop *l;
	int arg = 4;

	if (argc < 6)
		return usage();
	p.producer = !strcmp(argv[1], "producer");
	if (!p.producer && strcmp(argv[1], "consumer"))
		return usage();
	name = argv[2];
	if (sscanf(argv[3], "%ux%u", &p.w, &p.h) != 2 || !p.w || !p.h)
		return usage();
	if (p.producer) {
		if (argc < 8)
			return usage();
		p.fps = (unsigned)strtoul(argv[arg++], NULL, 10);
		p.n_frames = strtoull(argv[arg++], NULL, 10);
	}
	p.warmup = strtoull(argv[arg++], NULL, 10);
	report = argv[arg++];
	p.strace_out = arg < argc ? argv[arg] : NULL;
	/* NV12 with the stride zcv-bench's pool uses (64-byte aligned) */
	p.stride = (p.w + 63) & ~63u;
	p.size = p.stride * p.h * 3 / 2;

	pw_init(&argc, &argv);
	p.loop = pw_main_loop_new(NULL);
	if (!p.loop)
		return 1;
	l = pw_main_loop_get_loop(p.loop);
	pw_loop_add_signal(l, SIGINT, on_signal, &p);
	pw_loop_add_signal(l, SIGTERM, on_signal, &p);
	p.timer = pw_loop_add_timer(l, on_timeout, &p);
	if (p.producer)
		pw_loop_add_io(l, 0, SPA_IO_IN | SPA_IO_HUP, false, on_stdin, &p);
	props = pw_properties_new(PW_KEY_MEDIA_TYPE, "Video", PW_KEY_MEDIA_CATEGORY,
				  p.producer ? "Source" : "Capture", PW_KEY_MEDIA_ROLE, "Camera",
				  PW_KEY_NODE_NAME, name, NULL);
	p.stream = pw_stream_new_simple(l, name, props, &events, &p);
	if (!p.stream) {
		fprintf(stderr, "zcv-bench-pw: pw_stream_new_simple: %s\n", strerror(errno));
		return 1;
	}
	{
		struct spa_pod_frame fr;

		/* the producer's rate is variable (0/1), the consumer takes any */
		spa_pod_builder_push_object(&b, &fr, SPA_TYPE_OBJECT_Format, SPA_PARAM_EnumFormat);
		spa_pod_builder_add(&b, SPA_FORMAT_mediaType, SPA_POD_Id(SPA_MEDIA_TYPE_video),
				    SPA_FORMAT_mediaSubtype, SPA_POD_Id(SPA_MEDIA_SUBTYPE_raw),
				    SPA_FORMAT_VIDEO_format, SPA_POD_Id(SPA_VIDEO_FORMAT_NV12),
				    SPA_FORMAT_VIDEO_size,
				    SPA_POD_Rectangle(&SPA_RECTANGLE(p.w, p.h)), 0);
		if (p.producer)
			spa_pod_builder_add(&b, SPA_FORMAT_VIDEO_framerate,
					    SPA_POD_Fraction(&SPA_FRACTION(0, 1)), 0);
		else
			spa_pod_builder_add(&b, SPA_FORMAT_VIDEO_framerate,
					    SPA_POD_CHOICE_RANGE_Fraction(
						    &SPA_FRACTION(0, 1), &SPA_FRACTION(0, 1),
						    &SPA_FRACTION(1000000, 1)),
					    0);
		params[0] = spa_pod_builder_pop(&b, &fr);
	}
	if (p.producer)
		flags |= PW_STREAM_FLAG_DRIVER | PW_STREAM_FLAG_ALLOC_BUFFERS;
	if (pw_stream_connect(p.stream, p.producer ? PW_DIRECTION_OUTPUT : PW_DIRECTION_INPUT,
			      PW_ID_ANY, flags, params, 1) < 0) {
		fprintf(stderr, "zcv-bench-pw: pw_stream_connect failed\n");
		return 1;
	}
	pw_main_loop_run(p.loop);
	/* quit by a signal or the producer leaving: the window ends here, and
	 * the data thread stops calling on_process once disconnected */
	atomic_store(&p.stop, true);
	end_window(&p);
	pw_stream_disconnect(p.stream);
	finish_window(&p);
	if (p.producer && p.rep.frames < p.n_frames - p.warmup && !p.error)
		p.error = -EINTR; /* stopped before its last frame */
	pw_stream_destroy(p.stream);
	pw_loop_destroy_source(l, p.timer);
	pw_main_loop_destroy(p.loop);
	pw_deinit();
	if (bench_report_write(&p.rep, report) < 0) {
		fprintf(stderr, "zcv-bench-pw: cannot write %s\n", report);
		return 1;
	}
	free(p.rep.lat);
	return p.error ? 1 : 0;
}
