/* lib/train/ops_attn.c: scaled dot-product attention, forward and
 * backward, for training: each query's log-sum-exp is saved and the
 * backward recomputes the probabilities from it (FlashAttention's
 * trade: T^2 scores per head are never stored). The forward is split
 * by (row, head), the backward by (row, kv head), so that the heads
 * that share a kv head (GQA) add into its dk and dv on one thread. */
#include "train/ops.h"

#include <math.h>
#include <string.h>

#define MAX_D 1024	/* head_dim bound, checked by the model (train.h) */

struct attn {
	float *o, *lse, *dq, *dk, *dv;
	const float *q, *k, *v, *dout, *oc, *lsec;
	const int32_t *mask;
	size_t B, T, hq, hkv, d, window;
	int causal;
	float scale;
};

static inline int visible(const struct attn *a, size_t b, size_t t, size_t j)
{
	if (a->mask && !a->mask[b * a->T + j])
		return 0;
	if (a->causal && j > t)
		return 0;
	if (a->window && t >= j && t - j >= a->window)
		return 0;
	if (a->window && !a->causal && j > t && j - t >= a->window)
		return 0;
	return 1;
}

/* In 8 partial sums, which the compiler keeps in one vector register
 * (a single running sum cannot be vectorised without reassociating),
 * then the tail. */
static inline float dot(const float *a, const float *b, size_t n)
{
	float p[8] = { 0 }, s = 0.0f;
	size_t i = 0;

	for (; i + 8 <= n; i += 8)
		for (size_t j = 0; j < 8; j++)
			p[j] += a[i + j] * b[i + j];
	for (; i < n; i++)
		s += a[i] * b[i];
	return ((p[0] + p[4]) + (p[1] + p[5])) + ((p[2] + p[6]) + (p[3] + p[7])) +
	       s;
}

/* y += s x over n floats; y does not overlap x (restrict lets the
 * compiler vectorise it). */
static inline void axpy(float *restrict y, float s, const float *restrict x,
			size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] += s * x[i];
}

/* Queries of row b, head h (of kv head h / (hq / hkv)): online softmax
 * (running max m, sum l, output acc rescaled when m grows), then
 * o = acc / l. */
static void fwd_head(const struct attn *a, size_t b, size_t h)
{
	size_t T = a->T, d = a->d, g = h / (a->hq / a->hkv);
	size_t qs = a->hq * d, ks = a->hkv * d;

	for (size_t t = 0; t < T; t++) {
		const float *q = a->q + (b * T + t) * qs + h * d;
		float *o = a->o + (b * T + t) * qs + h * d;
		float acc[MAX_D], m = -INFINITY, l = 0.0f;

		memset(acc, 0, d * sizeof(float));
		for (size_t j = 0; j < T; j++) {
			const float *kj = a->k + (b * T + j) * ks + g * d;
			const float *vj = a->v + (b * T + j) * ks + g * d;
			float s, p;

			if (!visible(a, b, t, j))
				continue;
			s = a->scale * dot(q, kj, d);
			if (s > m) {
				float c = expf(m - s);

				l *= c;
				for (size_t i = 0; i < d; i++)
					acc[i] *= c;
				m = s;
			}
			p = expf(s - m);
			l += p;
			for (size_t i = 0; i < d; i++)
				acc[i] += p * vj[i];
		}
		if (l > 0.0f) {
			for (size_t i = 0; i < d; i++)
				o[i] = acc[i] / l;
			a->lse[(b * a->hq + h) * T + t] = m + logf(l);
		} else {
			memset(o, 0, d * sizeof(float));
			a->lse[(b * a->hq + h) * T + t] = -INFINITY;
		}
	}
}

/* p = exp(s - lse), dp = dout . v, D = dout . o = sum p dp,
 * ds = p (dp - D); dq += scale ds k, dk += scale ds q, dv += p dout. */
static void bwd_group(const struct attn *a, size_t b, size_t g)
{
	size_t T = a->T, d = a->d, rep = a->hq / a->hkv;
	size_t qs = a->hq * d, ks = a->hkv * d;

	for (size_t h = g * rep; h < (g + 1) * rep; h++)
		for (size_t t = 0; t < T; t++) {
			size_t qo = (b * T + t) * qs + h * d;
			const float *q = a->q + qo, *go = a->dout + qo;
			float lse = a->lsec[(b * a->hq + h) * T + t], D;
			float dqt[MAX_D];

			if (lse == -INFINITY)
				continue;
			memset(dqt, 0, d * sizeof(float));
			D = dot(go, a->oc + qo, d);
			for (size_t j = 0; j < T; j++) {
				size_t ko = (b * T + j) * ks + g * d;
				const float *kj = a->k + ko, *vj = a->v + ko;
				float p, ds;

				if (!visible(a, b, t, j))
					continue;
				p = expf(a->scale * dot(q, kj, d) - lse);
				ds = p * (dot(go, vj, d) - D);
				axpy(dqt, a->scale * ds, kj, d);
				if (a->dk)
					axpy(a->dk + ko, a->scale * ds, q, d);
				if (a->dv)
					axpy(a->dv + ko, p, go, d);
			}
			if (a->dq)
				axpy(a->dq + qo, 1.0f, dqt, d);
		}
}

static void fwd_job(void *ctx, int ith, int nth)
{
	const struct attn *a = ctx;
	size_t i0, i1;

	hf_pool_split(a->B * a->hq, ith, nth, &i0, &i1);
	for (size_t i = i0; i < i1; i++)
		fwd_head(a, i / a->hq, i % a->hq);
}

static void bwd_job(void *ctx, int ith, int nth)
{
	const struct attn *a = ctx;
	size_t i0, i1;

	hf_pool_split(a->B * a->hkv, ith, nth, &i0, &i1);
	for (size_t i = i0; i < i1; i++)
		bwd_group(a, i / a->hkv, i % a->hkv);
}

void hf_attention_forward(float *o, float *lse, const float *q,
			  const float *k, const float *v, const int32_t *mask,
			  size_t B, size_t T, size_t hq, size_t hkv, size_t d,
			  int causal, size_t window, float scale,
			  struct hf_pool *pool)
{
	struct attn a = { .o = o, .lse = lse, .q = q, .k = k, .v = v,
			  .mask = mask, .B = B, .T = T, .hq = hq, .hkv = hkv,
			  .d = d, .window = window, .causal = causal,
			  .scale = scale };

	hf_pool_run(pool, fwd_job, &a);
}

void hf_attention_backward(float *dq, float *dk, float *dv, const float *dout,
			   const float *q, const float *k, const float *v,
			   const float *o, const float *lse,
			   const int32_t *mask, size_t B, size_t T, size_t hq,
			   size_t hkv, size_t d, int causal, size_t window,
			   float scale, struct hf_pool *pool)
{
	struct attn a = { .dq = dq, .dk = dk, .dv = dv, .q = q, .k = k,
			  .v = v, .dout = dout, .oc = o, .lsec = lse,
			  .mask = mask, .B = B, .T = T, .hq = hq, .hkv = hkv,
			  .d = d, .window = window, .causal = causal,
			  .scale = scale };

	hf_pool_run(pool, bwd_job, &a);
}
