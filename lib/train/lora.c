/* lib/train/lora.c: the LoRA op's forward and backward, scaling, init,
 * dropout mask and merge (see lora.h for the formulas), and one targeted
 * linear in training (hf_lora_layer: masks, saved x A^T). Plain loops with
 * double sums: r is small (4 to 64) and the products are dominated by
 * the base weight's, which lib/tensor runs. */
#include "train/lora.h"

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

void hf_lora_forward(float *y, float *xa, const float *x, const float *mask,
		     const float *A, const float *B, size_t n, size_t in,
		     size_t r, size_t out, float scale)
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

void hf_lora_backward(float *dx, float *dA, float *dB, float *gxa,
		      const float *dy, const float *x, const float *mask,
		      const float *xa, const float *A, const float *B,
		      size_t n, size_t in, size_t r, size_t out, float scale)
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
