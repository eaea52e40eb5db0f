/* SPDX-License-Identifier: MIT */
/*
 * fwht-check: test helper for the encode scenarios. Decodes an FWHT
 * bitstream (written by zcv-encode on vicodec) with vicodec's stateful
 * decoder and compares every decoded frame with the frame the producer
 * captured (zcv-capture --dump-frames), matched by the producer sequence
 * that zcv-encode logged for each encoded frame (--frame-log).
 *
 * Usage: fwht-check DECODER_DEV STREAM DUMP FRAME_LOG [JSON_OUT]
 * Prints one line per frame and a JSON summary:
 * {"stream_frames", "decoded", "compared", "missing_ref", "psnr_min", "psnr_max", "psnr_mean"}.
 * Exit 0 when it could decode and compare (the test judges the figures).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <math.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#define NBUF 4

struct ref {
	uint64_t seq;
	const uint8_t *data;
	uint32_t w, h, fourcc, bytes;
};

static struct ref *refs;
static size_t n_refs;
static uint64_t *seqs;
static size_t n_seqs;
static size_t *frame_off, *frame_len;
static size_t n_frames;

static int xioctl(int fd, unsigned long req, void *arg)
{
	int r;

	do
		r = ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

static void die(const char *what)
{
	fprintf(stderr, "fwht-check: %s\n", what);
	exit(1);
}

static const uint8_t *map_file(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	void *m;

	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "fwht-check: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	*len = (size_t)st.st_size;
	if (!*len)
		return NULL;
	m = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED)
		die("mmap failed");
	return m;
}

static const struct ref *find_ref(uint64_t seq)
{
	for (size_t i = 0; i < n_refs; i++)
		if (refs[i].seq == seq)
			return &refs[i];
	return NULL;
}

static double psnr(const struct ref *r, const uint8_t *dec, uint32_t bpl, uint32_t coded_h)
{
	/* NV12 only: luma, then interleaved chroma at bpl * coded_h */
	const uint8_t *ref = r->data;
	double se = 0;
	uint64_t n = 0;

	for (uint32_t y = 0; y < r->h; y++)
		for (uint32_t x = 0; x < r->w; x++) {
			int d = (int)ref[(size_t)y * r->w + x] - (int)dec[(size_t)y * bpl + x];

			se += d * d;
			n++;
		}
	ref += (size_t)r->w * r->h;
	dec += (size_t)bpl * coded_h;
	for (uint32_t y = 0; y < r->h / 2; y++)
		for (uint32_t x = 0; x < r->w; x++) {
			int d = (int)ref[(size_t)y * r->w + x] - (int)dec[(size_t)y * bpl + x];

			se += d * d;
			n++;
		}
	if (se == 0)
		return 99.0;
	return 10.0 * log10(255.0 * 255.0 / (se / (double)n));
}

int main(int argc, char **argv)
{
	const uint8_t *stream, *dump;
	size_t slen, dlen;
	FILE *log, *json = NULL;
	struct v4l2_capability cap = { 0 };
	enum v4l2_buf_type ot, ct;
	bool mp;
	int fd;
	void *omap[NBUF], *cmap[NBUF];
	size_t olen[NBUF], clen[NBUF];
	bool obusy[NBUF] = { 0 };
	unsigned n_cap = 0;
	size_t next = 0, decoded = 0, compared = 0, missing = 0;
	double pmin = 1e9, pmax = 0, psum = 0;
	bool cap_on = false, stopped = false, done = false;
	uint32_t bpl = 0, coded_h = 0, w, h;
	time_t t0 = time(NULL);

	if (argc < 5)
		die("usage: fwht-check DECODER_DEV STREAM DUMP FRAME_LOG [JSON_OUT]");
	stream = map_file(argv[2], &slen);
	dump = map_file(argv[3], &dlen);
	if (!stream || !dump)
		die("empty stream or dump");
	for (size_t off = 0; off + 32 <= dlen;) {
		const uint32_t *hd = (const uint32_t *)(dump + off);

		if (hd[0] != 0x4456435a)
			die("bad dump record");
		refs = realloc(refs, (n_refs + 1) * sizeof(*refs));
		refs[n_refs] = (struct ref){ .seq = hd[4] | (uint64_t)hd[5] << 32,
					     .data = dump + off + 32,
					     .w = hd[1],
					     .h = hd[2],
					     .fourcc = hd[3],
					     .bytes = hd[6] };
		if (off + 32 + hd[6] > dlen)
			break; /* truncated last record */
		off += 32 + hd[6];
		n_refs++;
	}
	log = fopen(argv[4], "r");
	if (!log)
		die("cannot read the frame log");
	for (unsigned long long s; fscanf(log, "%llu", &s) == 1;) {
		seqs = realloc(seqs, (n_seqs + 1) * sizeof(*seqs));
		seqs[n_seqs++] = s;
	}
	fclose(log);
	/* split the stream at FWHT frame headers: magic1, magic2, then 9
	 * big-endian words, the last the payload size */
	for (size_t off = 0; off + 44 <= slen;) {
		const uint32_t *hd = (const uint32_t *)(stream + off);
		uint32_t size = ntohl(hd[10]);

		if (hd[0] != 0x4f4f4f4f || hd[1] != 0xffffffff)
			die("bad FWHT header in the stream");
		frame_off = realloc(frame_off, (n_frames + 1) * sizeof(size_t));
		frame_len = realloc(frame_len, (n_frames + 1) * sizeof(size_t));
		frame_off[n_frames] = off;
		frame_len[n_frames] = 44 + size;
		n_frames++;
		off += 44 + size;
	}
	if (!n_frames)
		die("no frames in the stream");
	w = ntohl(((const uint32_t *)stream)[3]);
	h = ntohl(((const uint32_t *)stream)[4]);

	fd = open(argv[1], O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || xioctl(fd, VIDIOC_QUERYCAP, &cap) < 0)
		die("cannot open the decoder");
	{
		uint32_t c = cap.capabilities & V4L2_CAP_DEVICE_CAPS ? cap.device_caps :
								       cap.capabilities;

		mp = !(c & V4L2_CAP_VIDEO_M2M);
	}
	ot = mp ? V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE : V4L2_BUF_TYPE_VIDEO_OUTPUT;
	ct = mp ? V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE : V4L2_BUF_TYPE_VIDEO_CAPTURE;
	{
		struct v4l2_format f = { .type = ot };
		struct v4l2_requestbuffers rq = { .type = ot,
						  .memory = V4L2_MEMORY_MMAP,
						  .count = NBUF };
		struct v4l2_event_subscription sub = { .type = V4L2_EVENT_SOURCE_CHANGE };
		int t = ot;

		if (mp) {
			f.fmt.pix_mp.pixelformat = V4L2_PIX_FMT_FWHT;
			f.fmt.pix_mp.width = w;
			f.fmt.pix_mp.height = h;
			f.fmt.pix_mp.num_planes = 1;
		} else {
			f.fmt.pix.pixelformat = V4L2_PIX_FMT_FWHT;
			f.fmt.pix.width = w;
			f.fmt.pix.height = h;
		}
		if (xioctl(fd, VIDIOC_S_FMT, &f) < 0)
			die("S_FMT FWHT on the decoder");
		if (xioctl(fd, VIDIOC_REQBUFS, &rq) < 0 || rq.count < NBUF)
			die("REQBUFS OUTPUT");
		for (unsigned i = 0; i < NBUF; i++) {
			struct v4l2_plane pl[VIDEO_MAX_PLANES] = { 0 };
			struct v4l2_buffer b = { .type = ot,
						 .memory = V4L2_MEMORY_MMAP,
						 .index = i };

			if (mp) {
				b.m.planes = pl;
				b.length = 1;
			}
			if (xioctl(fd, VIDIOC_QUERYBUF, &b) < 0)
				die("QUERYBUF OUTPUT");
			olen[i] = mp ? pl[0].length : b.length;
			omap[i] = mmap(NULL, olen[i], PROT_READ | PROT_WRITE, MAP_SHARED, fd,
				       mp ? pl[0].m.mem_offset : b.m.offset);
			if (omap[i] == MAP_FAILED)
				die("mmap OUTPUT");
		}
		xioctl(fd, VIDIOC_SUBSCRIBE_EVENT, &sub);
		if (xioctl(fd, VIDIOC_STREAMON, &t) < 0)
			die("STREAMON OUTPUT");
	}

	while (!done) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLOUT | POLLPRI };
		struct v4l2_event ev;

		if (time(NULL) - t0 > 600)
			die("timed out decoding");
		/* feed free OUTPUT buffers */
		for (unsigned i = 0; i < NBUF && next < n_frames; i++) {
			struct v4l2_plane pl[VIDEO_MAX_PLANES] = { 0 };
			struct v4l2_buffer b = { .type = ot,
						 .memory = V4L2_MEMORY_MMAP,
						 .index = i };

			if (obusy[i])
				continue;
			if (frame_len[next] > olen[i])
				die("a compressed frame is larger than the decoder's buffer");
			memcpy(omap[i], stream + frame_off[next], frame_len[next]);
			if (mp) {
				b.m.planes = pl;
				b.length = 1;
				pl[0].bytesused = (uint32_t)frame_len[next];
			} else {
				b.bytesused = (uint32_t)frame_len[next];
			}
			if (xioctl(fd, VIDIOC_QBUF, &b) < 0)
				die("QBUF OUTPUT");
			obusy[i] = true;
			next++;
		}
		if (next == n_frames && !stopped && cap_on) {
			struct v4l2_decoder_cmd dc = { .cmd = V4L2_DEC_CMD_STOP };

			if (xioctl(fd, VIDIOC_DECODER_CMD, &dc) < 0)
				die("DECODER_CMD STOP");
			stopped = true;
		}
		poll(&pfd, 1, 50);
		while (xioctl(fd, VIDIOC_DQEVENT, &ev) == 0) {
			struct v4l2_format f = { .type = ct };
			struct v4l2_requestbuffers rq = { .type = ct,
							  .memory = V4L2_MEMORY_MMAP,
							  .count = NBUF };
			int t = ct;

			if (ev.type != V4L2_EVENT_SOURCE_CHANGE || cap_on)
				continue;
			if (xioctl(fd, VIDIOC_G_FMT, &f) < 0)
				die("G_FMT CAPTURE");
			if (mp)
				f.fmt.pix_mp.pixelformat = V4L2_PIX_FMT_NV12;
			else
				f.fmt.pix.pixelformat = V4L2_PIX_FMT_NV12;
			if (xioctl(fd, VIDIOC_S_FMT, &f) < 0 ||
			    (mp ? f.fmt.pix_mp.pixelformat : f.fmt.pix.pixelformat) !=
				    V4L2_PIX_FMT_NV12)
				die("the decoder does not give NV12");
			bpl = mp ? f.fmt.pix_mp.plane_fmt[0].bytesperline : f.fmt.pix.bytesperline;
			coded_h = mp ? f.fmt.pix_mp.height : f.fmt.pix.height;
			if (xioctl(fd, VIDIOC_REQBUFS, &rq) < 0 || !rq.count)
				die("REQBUFS CAPTURE");
			n_cap = rq.count > NBUF ? NBUF : rq.count;
			for (unsigned i = 0; i < n_cap; i++) {
				struct v4l2_plane pl[VIDEO_MAX_PLANES] = { 0 };
				struct v4l2_buffer b = { .type = ct,
							 .memory = V4L2_MEMORY_MMAP,
							 .index = i };

				if (mp) {
					b.m.planes = pl;
					b.length = 1;
				}
				if (xioctl(fd, VIDIOC_QUERYBUF, &b) < 0)
					die("QUERYBUF CAPTURE");
				clen[i] = mp ? pl[0].length : b.length;
				cmap[i] = mmap(NULL, clen[i], PROT_READ, MAP_SHARED, fd,
					       mp ? pl[0].m.mem_offset : b.m.offset);
				if (cmap[i] == MAP_FAILED)
					die("mmap CAPTURE");
				if (xioctl(fd, VIDIOC_QBUF, &b) < 0)
					die("QBUF CAPTURE");
			}
			if (xioctl(fd, VIDIOC_STREAMON, &t) < 0)
				die("STREAMON CAPTURE");
			cap_on = true;
		}
		for (;;) {
			struct v4l2_plane pl[VIDEO_MAX_PLANES] = { 0 };
			struct v4l2_buffer b = { .type = ot, .memory = V4L2_MEMORY_MMAP };

			if (mp) {
				b.m.planes = pl;
				b.length = 1;
			}
			if (xioctl(fd, VIDIOC_DQBUF, &b) < 0)
				break;
			obusy[b.index] = false;
		}
		while (cap_on) {
			struct v4l2_plane pl[VIDEO_MAX_PLANES] = { 0 };
			struct v4l2_buffer b = { .type = ct, .memory = V4L2_MEMORY_MMAP };
			uint32_t used;
			int r;

			if (mp) {
				b.m.planes = pl;
				b.length = 1;
			}
			r = xioctl(fd, VIDIOC_DQBUF, &b);
			if (r == -EPIPE) {
				done = true;
				break;
			}
			if (r < 0)
				break;
			used = mp ? pl[0].bytesused : b.bytesused;
			if (used) {
				const struct ref *rf =
					decoded < n_seqs ? find_ref(seqs[decoded]) : NULL;

				if (!rf || rf->fourcc != V4L2_PIX_FMT_NV12) {
					missing++;
					printf("frame %zu: no NV12 reference (seq %llu)\n", decoded,
					       decoded < n_seqs ?
						       (unsigned long long)seqs[decoded] :
						       0ull);
				} else {
					double p = psnr(rf, cmap[b.index], bpl, coded_h);

					printf("frame %zu seq %llu psnr %.2f\n", decoded,
					       (unsigned long long)rf->seq, p);
					pmin = p < pmin ? p : pmin;
					pmax = p > pmax ? p : pmax;
					psum += p;
					compared++;
				}
				decoded++;
			}
			if (b.flags & V4L2_BUF_FLAG_LAST) {
				done = true;
				break;
			}
			if (xioctl(fd, VIDIOC_QBUF, &b) < 0)
				die("re-QBUF CAPTURE");
		}
	}
	if (argc > 5)
		json = fopen(argv[5], "w");
	if (!json)
		json = stdout;
	fprintf(json,
		"{\"stream_frames\": %zu, \"logged\": %zu, \"references\": %zu, \"decoded\": %zu, "
		"\"compared\": %zu, \"missing_ref\": %zu, \"psnr_min\": %.2f, \"psnr_max\": %.2f, "
		"\"psnr_mean\": %.2f, \"width\": %u, \"height\": %u, \"coded_height\": %u}\n",
		n_frames, n_seqs, n_refs, decoded, compared, missing, compared ? pmin : 0.0, pmax,
		compared ? psum / (double)compared : 0.0, w, h, coded_h);
	if (json != stdout)
		fclose(json);
	close(fd);
	return 0;
}
