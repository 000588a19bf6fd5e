/* test/unit/quant/qrand.h: random weights in every quantized format, for
 * the tests of the kernels that read them (any bytes are a valid packed
 * weight; scales are kept finite and positive). Header-only. */
#ifndef TEST_QRAND_H
#define TEST_QRAND_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quant/formats.h"
#include "tensor/dtype.h"
#include "tensor/wfmt.h"

struct qrand {
	struct hf_weight w;
	void *t[HF_WEIGHT_NT];
	uint32_t s;
};

static uint32_t qr_next(struct qrand *q)
{
	q->s = q->s * 1664525u + 1013904223u;
	return q->s >> 8;
}

/* uniform in [lo, hi) */
static float qr_unit(struct qrand *q, float lo, float hi)
{
	return lo + (hi - lo) * (float)qr_next(q) / 16777216.0f;
}

static void *qr_bytes(struct qrand *q, size_t n)
{
	uint8_t *p = malloc(n + 4);

	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)qr_next(q);
	return p;
}

static float *qr_floats(struct qrand *q, size_t n, float lo, float hi)
{
	float *p = malloc(n * sizeof(float) + 4);

	for (size_t i = 0; i < n; i++)
		p[i] = qr_unit(q, lo, hi);
	return p;
}

static uint16_t *qr_halves(struct qrand *q, size_t n, float lo, float hi)
{
	uint16_t *p = malloc(n * 2 + 4);

	for (size_t i = 0; i < n; i++)
		p[i] = hf_f32_to_f16(qr_unit(q, lo, hi));
	return p;
}

/* Whether the format can hold a (rows, cols) weight in qrand's choices. */
static int qrand_fits(enum hf_wfmt f, size_t rows, size_t cols, unsigned v)
{
	unsigned bits = (unsigned[]){ 4, 2, 3, 8 }[v % 4];

	switch (f) {
	case HF_WFMT_GPTQ:
		return cols * bits % 32 == 0 && rows * bits % 32 == 0;
	case HF_WFMT_AWQ:
		return rows % 8 == 0 && cols % 16 == 0;
	case HF_WFMT_BITNET:
		return rows % 4 == 0;
	default:
		return 1;
	}
}

/* A random weight (rows, cols) in format f; v picks among the format's
 * variants (GPTQ bits 4 2 3 8, v1/v2 and g_idx; nf4/fp4 tables; block
 * sizes). */
static void qrand_make(struct qrand *q, enum hf_wfmt f, size_t rows,
		       size_t cols, unsigned v, uint32_t seed)
{
	struct hf_weight *w = &q->w;
	size_t n = rows * cols;

	memset(q, 0, sizeof(*q));
	q->s = seed;
	w->fmt = f;
	w->rows = rows;
	w->cols = cols;
	w->q.ld = rows;
	switch (f) {
	case HF_WFMT_F32:
		q->t[0] = qr_floats(q, n, -1, 1);
		break;
	case HF_WFMT_F16:
	case HF_WFMT_BF16: {
		uint16_t *p = malloc(n * 2 + 4);

		for (size_t i = 0; i < n; i++)
			p[i] = f == HF_WFMT_F16 ?
			       hf_f32_to_f16(qr_unit(q, -1, 1)) :
			       hf_f32_to_bf16(qr_unit(q, -1, 1));
		q->t[0] = p;
		break;
	}
	case HF_WFMT_INT8: {
		int8_t *p = qr_bytes(q, n);

		for (size_t i = 0; i < n; i++)
			if (p[i] == -128)
				p[i] = -127;
		q->t[0] = p;
		q->t[1] = qr_floats(q, rows, 0.5f, 2.0f);
		break;
	}
	case HF_WFMT_BNB4:
	case HF_WFMT_BNB4DQ: {
		size_t bs = v & 1 ? 32 : 64, nb = (n + bs - 1) / bs;
		float *map = malloc(16 * sizeof(float));

		memcpy(map, v & 2 ? hf_fp4_table : hf_nf4_table,
		       16 * sizeof(float));
		w->q.group = bs;
		q->t[0] = qr_bytes(q, (n + 1) / 2);
		q->t[2] = map;
		if (f == HF_WFMT_BNB4) {
			q->t[1] = qr_floats(q, nb, 0.1f, 1.0f);
		} else {
			w->q.group2 = v & 4 ? 4 : 256;
			w->q.p0 = 0.25f;
			q->t[1] = qr_bytes(q, nb);
			q->t[3] = qr_floats(q, (nb + w->q.group2 - 1) /
						       w->q.group2, 0.1f, 1);
			q->t[4] = qr_floats(q, 256, -1, 1);
		}
		break;
	}
	case HF_WFMT_GPTQ: {
		unsigned b = (unsigned[]){ 4, 2, 3, 8 }[v % 4];
		size_t gs = 16, G = (cols + gs - 1) / gs;

		w->q.bits = b;
		w->q.group = gs;
		w->q.zoff = (v / 4) % 2 == 0;
		q->t[0] = qr_bytes(q, cols * b / 32 * rows * 4);
		q->t[1] = qr_bytes(q, G * rows * b / 32 * 4);
		q->t[2] = qr_halves(q, G * rows, 0.01f, 0.1f);
		if ((v / 8) % 2) {	/* desc_act: groups in any order */
			int32_t *g = malloc(cols * 4 + 4);

			for (size_t i = 0; i < cols; i++)
				g[i] = (int32_t)(qr_next(q) % G);
			q->t[3] = g;
		}
		break;
	}
	case HF_WFMT_AWQ: {
		size_t gs = 16, G = cols / gs;

		w->q.bits = 4;
		w->q.group = gs;
		q->t[0] = qr_bytes(q, cols * rows / 8 * 4);
		q->t[1] = qr_bytes(q, G * rows / 8 * 4);
		q->t[2] = qr_halves(q, G * rows, 0.01f, 0.1f);
		break;
	}
	case HF_WFMT_BITNET: {
		uint8_t *p = malloc(n / 4 + 4);

		for (size_t i = 0; i < n / 4; i++) {
			uint8_t b = 0;

			for (int k = 0; k < 4; k++)
				b |= (uint8_t)(qr_next(q) % 3) << (2 * k);
			p[i] = b;
		}
		q->t[0] = p;
		w->q.p0 = 0.375f;
		break;
	}
	case HF_WFMT_FP8: {
		uint8_t *p = qr_bytes(q, n);
		size_t bc = v & 1 ? 128 : 16, br = v & 1 ? 128 : 8;

		for (size_t i = 0; i < n; i++)
			if ((p[i] & 0x7f) == 0x7f)
				p[i] ^= 1;	/* no NaN */
		w->q.group = bc;
		w->q.group2 = br;
		q->t[0] = p;
		q->t[1] = qr_floats(q, ((rows + br - 1) / br) *
					       ((cols + bc - 1) / bc), 0.01f, 0.1f);
		break;
	}
	default:
		break;
	}
	for (unsigned i = 0; i < HF_WEIGHT_NT; i++)
		w->t[i] = q->t[i];
}

static void qrand_free(struct qrand *q)
{
	for (unsigned i = 0; i < HF_WEIGHT_NT; i++)
		free(q->t[i]);
}

#endif
