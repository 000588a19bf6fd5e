/* lib/train/lora.c: the LoRA op's forward and backward, scaling, init,
 * dropout mask and merge (see lora.h for the formulas), and one targeted
 * linear in training (hf_lora_layer: masks, saved x A^T). The products go
 * to cblas_sgemm (r is small, 4 to 64, but n * in * r is still 4% of the
 * base product at r 16 and the plain loops, strided and summed in
 * double, cost as much as the base's dW they let us skip); the plain
 * loops with double sums stay as hf_lora_*_ref to test them by. */
#include "train/lora.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gen/gen.h"

float hf_lora_scale(double alpha, size_t r, int rslora)
{
	return (float)(rslora ? alpha / sqrt((double)r) : alpha / (double)r);
}

/* splitmix64 (Steele, Lea, Flood 2014): the state advances by the golden
 * gamma and each output is a mix of it. */
static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void hf_lora_init(float *A, float *B, size_t r, size_t in, size_t out,
		  uint64_t seed)
{
	/* kaiming_uniform_(a = sqrt(5)): bound = sqrt(6 / ((1 + a^2) fan_in))
	 * = 1 / sqrt(fan_in), fan_in = in (A's second dim) */
	float bound = (float)(1.0 / sqrt((double)in));
	uint64_t s = seed;

	for (size_t i = 0; i < r * in; i++) {
		float u = (float)(splitmix64(&s) >> 40) * 0x1p-24f;

		A[i] = (2.0f * u - 1.0f) * bound;
	}
	if (B)
		memset(B, 0, out * r * sizeof(float));
}

void hf_lora_dropout_mask(float *mask, const float *u, size_t n, float p)
{
	float keep = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;

	for (size_t i = 0; i < n; i++)
		mask[i] = u[i] < p ? 0.0f : keep;
}

void hf_lora_forward_ref(float *y, float *xa, const float *x,
			 const float *mask, const float *A, const float *B,
			 size_t n, size_t in, size_t r, size_t out, float scale)
{
	for (size_t t = 0; t < n; t++) {
		const float *xt = x + t * in;
		const float *mt = mask ? mask + t * in : NULL;
		float *at = xa + t * r;

		/* xa[t] (r) = xd[t] A^T */
		for (size_t k = 0; k < r; k++) {
			const float *ak = A + k * in;
			double s = 0.0;

			for (size_t i = 0; i < in; i++)
				s += (double)(mt ? xt[i] * mt[i] : xt[i]) * ak[i];
			at[k] = (float)s;
		}
		/* y[t] (out) += scale * xa[t] B^T */
		for (size_t o = 0; o < out; o++) {
			const float *bo = B + o * r;
			double s = 0.0;

			for (size_t k = 0; k < r; k++)
				s += (double)at[k] * bo[k];
			y[t * out + o] += scale * (float)s;
		}
	}
}

void hf_lora_backward_ref(float *dx, float *dA, float *dB, float *gxa,
			  const float *dy, const float *x, const float *mask,
			  const float *xa, const float *A, const float *B,
			  size_t n, size_t in, size_t r, size_t out,
			  float scale)
{
	/* g (n, r) = scale * dy B */
	for (size_t t = 0; t < n; t++)
		for (size_t k = 0; k < r; k++) {
			double s = 0.0;

			for (size_t o = 0; o < out; o++)
				s += (double)dy[t * out + o] * B[o * r + k];
			gxa[t * r + k] = scale * (float)s;
		}
	/* dB (out, r) += scale * dy^T xa */
	if (dB)
		for (size_t o = 0; o < out; o++)
			for (size_t k = 0; k < r; k++) {
				double s = 0.0;

				for (size_t t = 0; t < n; t++)
					s += (double)dy[t * out + o] * xa[t * r + k];
				dB[o * r + k] += scale * (float)s;
			}
	/* dA (r, in) += g^T xd */
	if (dA)
		for (size_t k = 0; k < r; k++)
			for (size_t i = 0; i < in; i++) {
				double s = 0.0;

				for (size_t t = 0; t < n; t++) {
					float xd = x[t * in + i];

					if (mask)
						xd *= mask[t * in + i];
					s += (double)gxa[t * r + k] * xd;
				}
				dA[k * in + i] += (float)s;
			}
	/* dx (n, in) += mask * (g A) */
	if (dx)
		for (size_t t = 0; t < n; t++)
			for (size_t i = 0; i < in; i++) {
				double s = 0.0;

				for (size_t k = 0; k < r; k++)
					s += (double)gxa[t * r + k] * A[k * in + i];
				dx[t * in + i] += (mask ? mask[t * in + i] : 1.0f) *
						  (float)s;
			}
}

/* Columns of a dropped-out row handled at a time (a stack chunk of
 * xd = x * mask: the op allocates nothing). */
#define XD_CHUNK 512

void hf_lora_forward(float *y, float *xa, const float *x, const float *mask,
		     const float *A, const float *B, size_t n, size_t in,
		     size_t r, size_t out, float scale)
{
	if (!n)
		return;
	if (!mask) {
		/* xa (n, r) = x (n, in) A^T */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n,
			    (int)r, (int)in, 1.0f, x, (int)in, A, (int)in,
			    0.0f, xa, (int)r);
	} else {
		float xd[XD_CHUNK];

		memset(xa, 0, n * r * sizeof(float));
		for (size_t t = 0; t < n; t++)
			for (size_t i0 = 0; i0 < in; i0 += XD_CHUNK) {
				size_t w = in - i0 < XD_CHUNK ? in - i0 : XD_CHUNK;

				for (size_t i = 0; i < w; i++)
					xd[i] = x[t * in + i0 + i] *
						mask[t * in + i0 + i];
				/* xa[t] (r) += A[:, i0:i0+w] xd */
				cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)r,
					    (int)w, 1.0f, A + i0, (int)in, xd, 1,
					    1.0f, xa + t * r, 1);
			}
	}
	/* y (n, out) += scale * xa (n, r) B^T */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)out,
		    (int)r, scale, xa, (int)r, B, (int)r, 1.0f, y, (int)out);
}

void hf_lora_backward(float *dx, float *dA, float *dB, float *gxa,
		      const float *dy, const float *x, const float *mask,
		      const float *xa, const float *A, const float *B,
		      size_t n, size_t in, size_t r, size_t out, float scale)
{
	if (!n)
		return;
	/* g (n, r) = scale * dy (n, out) B (out, r) */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)r,
		    (int)out, scale, dy, (int)out, B, (int)r, 0.0f, gxa,
		    (int)r);
	/* dB (out, r) += scale * dy^T xa */
	if (dB)
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out,
			    (int)r, (int)n, scale, dy, (int)out, xa, (int)r,
			    1.0f, dB, (int)r);
	if (!mask) {
		/* dA (r, in) += g^T x */
		if (dA)
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
				    (int)r, (int)in, (int)n, 1.0f, gxa, (int)r,
				    x, (int)in, 1.0f, dA, (int)in);
		/* dx (n, in) += g A */
		if (dx)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
				    (int)n, (int)in, (int)r, 1.0f, gxa, (int)r,
				    A, (int)in, 1.0f, dx, (int)in);
		return;
	}
	for (size_t t = 0; t < n; t++)
		for (size_t i0 = 0; i0 < in; i0 += XD_CHUNK) {
			size_t w = in - i0 < XD_CHUNK ? in - i0 : XD_CHUNK;
			const float *mt = mask + t * in + i0;
			float buf[XD_CHUNK];

			/* dA[:, i0:i0+w] += g[t]^T xd[t] (a rank-1 update) */
			if (dA) {
				for (size_t i = 0; i < w; i++)
					buf[i] = x[t * in + i0 + i] * mt[i];
				cblas_sger(CblasRowMajor, (int)r, (int)w, 1.0f,
					   gxa + t * r, 1, buf, 1, dA + i0,
					   (int)in);
			}
			/* dx[t, i0:i0+w] += mask * (g[t] A[:, i0:i0+w]) */
			if (dx) {
				cblas_sgemv(CblasRowMajor, CblasTrans, (int)r,
					    (int)w, 1.0f, A + i0, (int)in,
					    gxa + t * r, 1, 0.0f, buf, 1);
				for (size_t i = 0; i < w; i++)
					dx[t * in + i0 + i] += mt[i] * buf[i];
			}
		}
}

void hf_lora_merge(float *W, const float *A, const float *B, size_t in,
		   size_t r, size_t out, float scale, int fan_in_fan_out,
		   int sign)
{
	for (size_t o = 0; o < out; o++)
		for (size_t i = 0; i < in; i++) {
			double s = 0.0;
			float d;

			for (size_t k = 0; k < r; k++)
				s += (double)B[o * r + k] * A[k * in + i];
			d = (float)(sign * (double)scale * s);
			if (fan_in_fan_out)
				W[i * out + o] += d;
			else
				W[o * in + i] += d;
		}
}

static int layer_grow(struct hf_lora_layer *l, size_t n, struct hf_err *err)
{
	float *xa, *gxa, *mask;

	if (n <= l->cap)
		return 0;
	xa = realloc(l->xa, n * l->r * sizeof(float));
	if (xa)
		l->xa = xa;
	gxa = realloc(l->gxa, n * l->r * sizeof(float));
	if (gxa)
		l->gxa = gxa;
	mask = realloc(l->mask, n * l->in * sizeof(float));
	if (mask)
		l->mask = mask;
	if (!xa || !gxa || !mask)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	l->cap = n;
	return 0;
}

int hf_lora_layer_forward(void *ctx, float *y, const float *x, size_t n,
			  int recompute, struct hf_err *err)
{
	struct hf_lora_layer *l = ctx;
	int drop = l->training && l->dropout > 0;

	if (recompute && drop && (!l->have_mask || n != l->n))
		return hf_err_set(err, HF_EINTERNAL,
				  "lora: a recompute of %zu rows without the "
				  "forward pass's mask", n);
	if (layer_grow(l, n, err))
		return err->code;
	if (drop && !recompute) {
		for (size_t i = 0; i < n * l->in; i++)
			l->mask[i] = (float)hf_rng_uniform(l->rng);
		hf_lora_dropout_mask(l->mask, l->mask, n * l->in, l->dropout);
	}
	l->have_mask = drop;
	l->n = n;
	hf_lora_forward(y, l->xa, x, drop ? l->mask : NULL, l->A, l->B, n,
			l->in, l->r, l->out, l->scale);
	return 0;
}

int hf_lora_layer_backward(void *ctx, float *dx, const float *dy,
			   const float *x, size_t n, struct hf_err *err)
{
	struct hf_lora_layer *l = ctx;

	if (n != l->n || n > l->cap)
		return hf_err_set(err, HF_EINTERNAL,
				  "lora: a backward of %zu rows after a forward "
				  "of %zu", n, l->n);
	hf_lora_backward(dx, l->dA, l->dB, l->gxa, dy, x,
			 l->have_mask ? l->mask : NULL, l->xa, l->A, l->B, n,
			 l->in, l->r, l->out, l->scale);
	return 0;
}

void hf_lora_layer_free(struct hf_lora_layer *l)
{
	if (!l)
		return;
	free(l->xa);
	free(l->gxa);
	free(l->mask);
	l->xa = l->gxa = l->mask = NULL;
	l->cap = l->n = 0;
	l->have_mask = 0;
}
