/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>
#include <zcv/stats.h>

#define DEFAULT_LIMIT 1000000

void zcv_latency_init(struct zcv_latency *l, size_t limit)
{
	memset(l, 0, sizeof(*l));
	l->limit = limit ? limit : DEFAULT_LIMIT;
}

void zcv_latency_finish(struct zcv_latency *l)
{
	free(l->samples_ns);
	l->samples_ns = NULL;
	l->n = l->cap = 0;
}

void zcv_latency_add(struct zcv_latency *l, uint64_t ns)
{
	l->count++;
	if (ns > l->max_ns)
		l->max_ns = ns;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 1024;
		uint64_t *s;

		if (cap > l->limit)
			cap = l->limit;
		if (cap <= l->n)
			return; /* at the limit: only max and count move on */
		s = realloc(l->samples_ns, cap * sizeof(*s));
		if (!s)
			return;
		l->samples_ns = s;
		l->cap = cap;
	}
	l->samples_ns[l->n++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t zcv_latency_percentile(struct zcv_latency *l, double q)
{
	size_t rank;

	if (l->n == 0)
		return 0;
	qsort(l->samples_ns, l->n, sizeof(*l->samples_ns), cmp_u64);
	if (q <= 0)
		return l->samples_ns[0];
	rank = (size_t)(q * (double)l->n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > l->n)
		rank = l->n;
	return l->samples_ns[rank - 1];
}

void zcv_stats_init(struct zcv_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->path = "none";
	zcv_latency_init(&s->latency, 0);
}

void zcv_stats_finish(struct zcv_stats *s)
{
	zcv_latency_finish(&s->latency);
}

double zcv_stats_fps(const struct zcv_stats *s)
{
	if (s->frames < 2 || s->end_ns <= s->start_ns)
		return 0;
	return (double)(s->frames - 1) * 1e9 / (double)(s->end_ns - s->start_ns);
}

void zcv_stats_add_json(struct zcv_stats *s, struct zcv_json *j)
{
	zcv_json_kv_uint(j, "frames", s->frames);
	zcv_json_kv_uint(j, "dropped", s->dropped);
	zcv_json_kv_fixed(j, "fps", zcv_stats_fps(s), 3);
	zcv_json_kv_string(j, "path", s->path ? s->path : "none");
	zcv_json_kv_uint(j, "copied_bytes", s->copied_bytes);
	zcv_json_key(j, "latency_us");
	zcv_json_begin_object(j);
	zcv_json_kv_fixed(j, "p50", (double)zcv_latency_percentile(&s->latency, 0.50) / 1e3, 1);
	zcv_json_kv_fixed(j, "p99", (double)zcv_latency_percentile(&s->latency, 0.99) / 1e3, 1);
	zcv_json_kv_fixed(j, "max", (double)s->latency.max_ns / 1e3, 1);
	zcv_json_end_object(j);
}

/* The whole stats object, laid out as extra is (one line without one). */
static void build(struct zcv_stats *s, const struct zcv_json *extra, struct zcv_json *j)
{
	zcv_json_init(j, extra ? extra->flags : 0);
	zcv_json_begin_object(j);
	zcv_stats_add_json(s, j);
	if (extra)
		zcv_json_merge_object(j, extra);
	zcv_json_end_object(j);
}

int zcv_stats_write_json(struct zcv_stats *s, FILE *f, const struct zcv_json *extra)
{
	struct zcv_json j;
	int r;

	build(s, extra, &j);
	r = zcv_json_write(&j, f);
	zcv_json_finish(&j);
	return r;
}

int zcv_stats_write_json_file(struct zcv_stats *s, const char *path, const struct zcv_json *extra)
{
	struct zcv_json j;
	int r;

	build(s, extra, &j);
	r = zcv_json_write_file(&j, path);
	zcv_json_finish(&j);
	return r;
}
