/* SPDX-License-Identifier: MIT */
/* The sink interface and the one loop that runs a client and a sink. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zcv/abi.h>
#include <zcv/memory.h>
#include <zcv/sink.h>
#include <zcv/sink_stats.h>

#define DEFAULT_DRAIN_MS 10000
/* While the sink holds frames the loop looks again this often: a release
 * made on another thread that found the socket full is queued, and only
 * this thread's dispatch sends it. */
#define HELD_RECHECK_MS 100

struct zcv_sink {
	struct zcv_sink_ops ops;
	const struct zcv_sink_ops *ops_given;
	void *data;
	struct zcv_client *client;
	struct zcv_sink_run_config run;
	bool ran;
	bool stream_open;   /* the client may still deliver */
	bool closed_seen;   /* the closed callback ran */
	bool stopping;      /* no frame goes to the sink any more */
	bool stopped_by_us; /* frame limit, signal, the sink's failure: what the
			     * stream does afterwards is not its failure */
	bool hard_stop;     /* stop without a drain */
	int path;
	uint64_t taken, declined, discarded;
	uint64_t disconnects; /* connections lost and reconnected from */
	uint64_t released;    /* atomic: zcv_sink_done() may run on any thread */
	uint64_t first_ns, last_ns;
	struct zcv_stats stats; /* the latency samples, and zcv_sink_core_stats() */
	int first_error;        /* the run's result: the first of the two below */
	int stream_error;
	char stream_reason[200];
	int error;
	char error_text[256];
};

static void note_error(struct zcv_sink *s, int error)
{
	if (!s->first_error)
		s->first_error = error;
}

int zcv_sink_fail(struct zcv_sink *s, int error, const char *fmt, ...)
{
	va_list ap;

	if (error >= 0)
		error = -EINVAL;
	if (!s->error) {
		s->error = error;
		note_error(s, error);
		va_start(ap, fmt);
		vsnprintf(s->error_text, sizeof(s->error_text), fmt, ap);
		va_end(ap);
	}
	s->stopping = s->stopped_by_us = true;
	return error;
}

static void on_format(void *data, const struct zcv_client_format *fmt)
{
	struct zcv_sink *s = data;
	int r;

	s->path = fmt->path;
	if (s->stopping)
		return;
	if (s->ops.format) {
		r = s->ops.format(s->data, fmt);
		if (r < 0) {
			zcv_sink_fail(s, r, "the sink cannot take the stream's format: %s",
				      strerror(-r));
			return;
		}
	}
	if (s->run.format)
		s->run.format(s->run.data, fmt);
}

static void on_frame(void *data, const struct zcv_client_frame *f)
{
	struct zcv_sink *s = data;
	int r;

	if (s->stopping) {
		zcv_client_release(s->client, f);
		s->discarded++;
		return;
	}
	r = s->ops.frame(s->data, f);
	if (r == ZCV_SINK_DECLINE) {
		zcv_client_release(s->client, f);
		s->declined++;
		return;
	}
	if (r != 0) {
		zcv_client_release(s->client, f);
		zcv_sink_fail(s, r, "the sink failed on frame %llu: %s",
			      (unsigned long long)f->sequence, strerror(r < 0 ? -r : EINVAL));
		return;
	}
	if (!s->taken++)
		s->first_ns = f->received_ns;
	s->last_ns = f->received_ns;
	if (!(s->ops.flags & ZCV_SINK_OWN_LATENCY))
		zcv_latency_add(&s->stats.latency, f->received_ns > f->timestamp_ns ?
							   f->received_ns - f->timestamp_ns :
							   0);
	if (s->run.max_frames && s->taken >= s->run.max_frames)
		s->stopping = s->stopped_by_us = true;
}

static void on_closed(void *data, int error, const char *reason)
{
	struct zcv_sink *s = data;

	s->closed_seen = true;
	s->stream_open = false;
	s->stopping = true;
	if (s->stopped_by_us)
		return;
	/* the producer's BYE carries the number: keep it a negative errno */
	s->stream_error = error == 0 ? 0 : error < 0 && error > -4096 ? error : -EPROTO;
	if (s->stream_error)
		note_error(s, s->stream_error);
	snprintf(s->stream_reason, sizeof(s->stream_reason), "%s", reason ? reason : "");
}

static void on_disconnected(void *data, int error, const char *reason)
{
	struct zcv_sink *s = data;

	s->disconnects++;
	if (s->run.disconnected)
		s->run.disconnected(s->run.data, error, reason);
}

static void on_source(void *data, bool present, const char *reason)
{
	struct zcv_sink *s = data;

	if (s->run.source)
		s->run.source(s->run.data, present, reason);
}

int zcv_sink_create(const struct zcv_sink_ops *ops, void *data, struct zcv_sink **ret_sink)
{
	struct zcv_sink *s;
	int r;

	if (!ops || !ret_sink)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	r = zcv_struct_copy_in(&s->ops, sizeof(s->ops), ops);
	if (r == 0 && (!s->ops.frame || (s->ops.get_fd && !s->ops.dispatch)))
		r = -EINVAL;
	if (r < 0) {
		free(s);
		return r;
	}
	s->ops_given = ops;
	s->data = data;
	zcv_stats_init(&s->stats);
	*ret_sink = s;
	return 0;
}

void zcv_sink_destroy(struct zcv_sink *s)
{
	if (!s)
		return;
	if (s->ops.destroy)
		s->ops.destroy(s->data);
	zcv_client_destroy(s->client);
	zcv_stats_finish(&s->stats);
	free(s);
}

int zcv_sink_connect(struct zcv_sink *s, const struct zcv_client_config *cfg,
		     struct zcv_client **ret_client)
{
	static const struct zcv_client_callbacks cbs = {
		.size = sizeof(struct zcv_client_callbacks),
		.format = on_format,
		.frame = on_frame,
		.closed = on_closed,
		.disconnected = on_disconnected,
		.source = on_source,
	};
	struct zcv_client *c = NULL;
	int r;

	if (s->client)
		return -EBUSY;
	r = zcv_client_connect(cfg, &cbs, s, &c);
	if (r < 0)
		return r;
	s->client = c;
	s->stream_open = true;
	if (ret_client)
		*ret_client = c;
	return 0;
}

struct zcv_client *zcv_sink_get_client(struct zcv_sink *s)
{
	return s->client;
}

/* SIGINT and SIGTERM, blocked, as a signalfd. */
static int signals_open(void)
{
	sigset_t set;
	int r, fd;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	r = pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (r)
		return -r;
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

/* Reads what the signalfd holds; returns how many signals came. */
static unsigned signals_read(int fd)
{
	struct signalfd_siginfo si;
	unsigned n = 0;

	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		n++;
	return n;
}

/* Starts the drain; returns true when there is nothing to wait for. */
static bool drain_start(struct zcv_sink *s)
{
	int r;

	if (!s->ops.drain)
		return true;
	r = s->ops.drain(s->data);
	if (r < 0)
		zcv_sink_fail(s, r, "the sink failed to drain: %s", strerror(-r));
	return r != 0;
}

int zcv_sink_run(struct zcv_sink *s, const struct zcv_sink_run_config *cfg)
{
	static const struct zcv_sink_run_config def = { .size = sizeof(def) };
	bool draining = false, drained = false;
	uint64_t deadline = 0, drain_ms;
	int sfd = -1, r;

	if (!s->client || s->ran)
		return -EBUSY;
	r = zcv_struct_copy_in(&s->run, sizeof(s->run), cfg ? cfg : &def);
	if (r < 0)
		return r;
	s->ran = true;
	drain_ms = s->run.drain_timeout_ms ? s->run.drain_timeout_ms : DEFAULT_DRAIN_MS;
	if (s->run.handle_signals) {
		sfd = signals_open();
		if (sfd < 0)
			return sfd;
	}
	while (!s->hard_stop) {
		struct pollfd pfd[3];
		int ci = -1, gi = -1, si = -1, timeout = -1;
		short events = 0;
		nfds_t n = 0;

		if (s->stopping && !draining) {
			draining = true;
			drained = drain_start(s);
			deadline = zcv_now_ns() + drain_ms * 1000000ull;
		}
		if (drained)
			break;
		if (s->stream_open) {
			ci = (int)n;
			pfd[n++] = (struct pollfd){ zcv_client_get_fd(s->client),
						    zcv_client_get_events(s->client), 0 };
		}
		if (s->ops.get_fd) {
			int fd = s->ops.get_fd(s->data, &events);

			if (fd >= 0) {
				gi = (int)n;
				pfd[n++] = (struct pollfd){ fd, events, 0 };
			}
		}
		if (sfd >= 0) {
			si = (int)n;
			pfd[n++] = (struct pollfd){ sfd, POLLIN, 0 };
		}
		if (draining) {
			uint64_t now = zcv_now_ns();

			if (now >= deadline) {
				zcv_sink_fail(s, -ETIMEDOUT,
					      "the sink did not finish draining within %llu ms",
					      (unsigned long long)drain_ms);
				break;
			}
			timeout = (int)((deadline - now) / 1000000ull) + 1;
		}
		if (zcv_client_held(s->client) && (timeout < 0 || timeout > HELD_RECHECK_MS))
			timeout = HELD_RECHECK_MS;
		if (poll(pfd, n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			zcv_sink_fail(s, -errno, "poll: %s", strerror(errno));
			break;
		}
		if (si >= 0 && pfd[si].revents) {
			unsigned got = signals_read(sfd);

			/* a second signal while draining, or two at once: stop now */
			if (got && (draining || got > 1))
				break;
			if (got)
				s->stopping = s->stopped_by_us = true;
		}
		if (gi >= 0 && pfd[gi].revents) {
			r = s->ops.dispatch ? s->ops.dispatch(s->data) : 0;
			if (r < 0) {
				zcv_sink_fail(s, r, "the sink failed: %s", strerror(-r));
				s->hard_stop = true;
			} else if (r == 1 && draining) {
				drained = true;
			}
		}
		if (ci >= 0 && pfd[ci].revents && !s->hard_stop) {
			r = zcv_client_dispatch(s->client);
			if (r != 0) {
				s->stream_open = false;
				s->stopping = true;
			}
			/* a failure the closed callback did not tell is one too */
			if (r < 0 && !s->stopped_by_us && !s->stream_error) {
				s->stream_error = r > -4096 ? r : -EPROTO;
				note_error(s, s->stream_error);
				if (!s->closed_seen)
					snprintf(s->stream_reason, sizeof(s->stream_reason),
						 "the connection failed");
			}
		}
	}
	if (sfd >= 0)
		close(sfd);
	return s->first_error;
}

int zcv_sink_stream_error(struct zcv_sink *s, const char **ret_reason)
{
	if (ret_reason)
		*ret_reason = s->stream_reason;
	return s->stream_error;
}

int zcv_sink_error(struct zcv_sink *s, const char **ret_text)
{
	if (ret_text)
		*ret_text = s->error_text;
	return s->error;
}

static void fill_stats(struct zcv_sink *s, struct zcv_sink_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	st->frames = s->taken;
	st->released = __atomic_load_n(&s->released, __ATOMIC_RELAXED);
	st->declined = s->declined;
	st->discarded = s->discarded;
	st->dropped = s->client ? zcv_client_dropped(s->client) : 0;
	st->first_ns = s->first_ns;
	st->last_ns = s->last_ns;
	st->copied_bytes = zcv_copied_bytes_get();
	st->latency_p50_ns = zcv_latency_percentile(&s->stats.latency, 0.5);
	st->latency_p99_ns = zcv_latency_percentile(&s->stats.latency, 0.99);
	st->latency_max_ns = s->stats.latency.max_ns;
	st->path = s->path;
	if (s->ops.stats)
		s->ops.stats(s->data, st);
}

int zcv_sink_get_stats(struct zcv_sink *s, struct zcv_sink_stats *ret)
{
	struct zcv_sink_stats st;
	size_t size;

	memcpy(&size, ret, sizeof(size));
	if (size < sizeof(size_t))
		return -EINVAL;
	fill_stats(s, &st);
	/* an older caller's shorter struct gets what it has room for */
	memcpy((uint8_t *)ret + sizeof(size_t), (const uint8_t *)&st + sizeof(size_t),
	       ZCV_MIN(size, sizeof(st)) - sizeof(size_t));
	return 0;
}

struct zcv_stats *zcv_sink_core_stats(struct zcv_sink *s)
{
	struct zcv_sink_stats st;

	fill_stats(s, &st);
	s->stats.frames = st.frames;
	s->stats.dropped = st.dropped;
	s->stats.copied_bytes = st.copied_bytes;
	s->stats.path = st.path ? zcv_path_name(st.path) : "none";
	s->stats.start_ns = st.first_ns;
	s->stats.end_ns = st.last_ns;
	return &s->stats;
}

int zcv_sink_done(struct zcv_sink *s, const struct zcv_client_frame *f)
{
	int r = s->client ? zcv_client_release(s->client, f) : -EINVAL;

	if (r == 0)
		__atomic_add_fetch(&s->released, 1, __ATOMIC_RELAXED);
	return r;
}

int zcv_sink_begin_access(struct zcv_sink *s, const struct zcv_client_frame *f)
{
	return s->client ? zcv_client_begin_access(s->client, f) : -EINVAL;
}

int zcv_sink_end_access(struct zcv_sink *s, const struct zcv_client_frame *f)
{
	return s->client ? zcv_client_end_access(s->client, f) : -EINVAL;
}

void zcv_sink_add_latency(struct zcv_sink *s, uint64_t ns)
{
	zcv_latency_add(&s->stats.latency, ns);
}

void *zcv_sink_get_data(struct zcv_sink *s, const struct zcv_sink_ops *ops)
{
	return s && ops && s->ops_given == ops ? s->data : NULL;
}
