/* SPDX-License-Identifier: MIT */
/*
 * Building fuzz inputs (fuzz_ops.h) by op and field name: the seed
 * generator and the harnesses' warm-up inputs use it, so an op that gains
 * a field does not shift the bytes of every seed after it.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_ops.h"

struct seed {
	uint8_t b[2048];
	size_t n;
};

static inline void seed_put(struct seed *s, const void *p, size_t n)
{
	if (s->n + n > sizeof(s->b)) {
		fprintf(stderr, "fuzz seed too large\n");
		abort();
	}
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

/* Raw bytes. */
#define SEED_BYTES(s, ...)                                                                         \
	seed_put(s, (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ }))

/* A struct of fields, e.g. the config block: SEED_FIELDS(s, struct fc_config, .caps = 1). */
#define SEED_FIELDS(s, type, ...)                                                                  \
	do {                                                                                       \
		type f_ = { __VA_ARGS__ };                                                         \
		seed_put(s, &f_, sizeof(f_));                                                      \
	} while (0)

/* An op with its fields and an empty mutation block. */
#define SEED_MSG(s, op, type, ...)                                                                 \
	do {                                                                                       \
		SEED_BYTES(s, op);                                                                 \
		SEED_FIELDS(s, type, __VA_ARGS__);                                                 \
		SEED_BYTES(s, 0);                                                                  \
	} while (0)

/* An op with its fields, no mutation block (ops that send nothing, POOL). */
#define SEED_OP(s, op, type, ...)                                                                  \
	do {                                                                                       \
		SEED_BYTES(s, op);                                                                 \
		SEED_FIELDS(s, type, __VA_ARGS__);                                                 \
	} while (0)
