/* lib/train/ops.c: the forward/backward pairs of ops.h (all but
 * attention, which is in ops_attn.c). Plain loops a reader can check
 * against the formulas; the products go to the GEMMs. */
#include "train/ops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "tensor/matmul.h"

void hf_embed_forward(float *y, const float *table, const int32_t *ids,
		      size_t n, size_t dim)
{
	for (size_t i = 0; i < n; i++)
		memcpy(y + i * dim, table + (size_t)ids[i] * dim,
		       dim * sizeof(float));
}

void hf_embed_backward(float *dtable, const float *dy, const int32_t *ids,
		       size_t n, size_t dim)
{
	for (size_t i = 0; i < n; i++) {
		float *d = dtable + (size_t)ids[i] * dim;
		const float *g = dy + i * dim;

		for (size_t j = 0; j < dim; j++)
			d[j] += g[j];
	}
}

void hf_scale_forward(float *y, const float *x, size_t n, float s)
{
	for (size_t i = 0; i < n; i++)
		y[i] = x[i] * s;
}

void hf_scale_backward(float *dx, const float *dy, size_t n, float s)
{
	for (size_t i = 0; i < n; i++)
		dx[i] += s * dy[i];
}

void hf_add_forward(float *y, const float *a, const float *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		y[i] = a[i] + b[i];
}

void hf_add_backward(float *da, float *db, const float *dy, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (da)
			da[i] += dy[i];
		if (db)
			db[i] += dy[i];
	}
}

/* ---- linear ---- */

void hf_linear_forward(float *y, const float *x, const float *w,
		       const float *b, size_t n, size_t in, size_t out,
		       struct hf_pool *pool)
{
	hf_matmul(y, x, w, HF_DTYPE_F32, b, n, in, out, pool);
}

struct lin_bwd {
	float *dx, *dw, *db;
	const float *dy, *x, *w;
	size_t n, in, out;
};

/* Thread ith's share: columns of dx, rows of dW and db, each thread's
 * own cblas_sgemm (OpenBLAS runs on one thread: tensor/matmul.c). */
static void lin_bwd_job(void *ctx, int ith, int nth)
{
	const struct lin_bwd *a = ctx;
	size_t n = a->n, in = a->in, out = a->out, c0, c1, o0, o1;

	hf_pool_split(in, ith, nth, &c0, &c1);
	hf_pool_split(out, ith, nth, &o0, &o1);
	/* dx[:, c0:c1] (n, in) += dy (n, out) . W[:, c0:c1] */
	if (a->dx && c1 > c0)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n,
			    (int)(c1 - c0), (int)out, 1.0f, a->dy, (int)out,
			    a->w + c0, (int)in, 1.0f, a->dx + c0, (int)in);
	/* dW[o0:o1] (out, in) += dy[:, o0:o1]^T . x (n, in) */
	if (a->dw && o1 > o0)
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
			    (int)(o1 - o0), (int)in, (int)n, 1.0f, a->dy + o0,
			    (int)out, a->x, (int)in, 1.0f, a->dw + o0 * in,
			    (int)in);
	if (a->db)
		for (size_t o = o0; o < o1; o++) {
			double s = 0.0;

			for (size_t r = 0; r < n; r++)
				s += a->dy[r * out + o];
			a->db[o] += (float)s;
		}
}

void hf_linear_backward(float *dx, float *dw, float *db, const float *dy,
			const float *x, const float *w, size_t n, size_t in,
			size_t out, struct hf_pool *pool)
{
	struct lin_bwd a = { dx, dw, db, dy, x, w, n, in, out };

	if (!n || (!dx && !dw && !db))
		return;
	hf_pool_run(pool, lin_bwd_job, &a);
}

void hf_linear_forward_ref(float *y, const float *x, const float *w,
			   const float *b, size_t n, size_t in, size_t out)
{
	for (size_t r = 0; r < n; r++)
		for (size_t o = 0; o < out; o++) {
			double s = b ? b[o] : 0.0;

			for (size_t i = 0; i < in; i++)
				s += (double)x[r * in + i] * w[o * in + i];
			y[r * out + o] = (float)s;
		}
}

void hf_linear_backward_ref(float *dx, float *dw, float *db, const float *dy,
			    const float *x, const float *w, size_t n,
			    size_t in, size_t out)
{
	if (dx)
		for (size_t r = 0; r < n; r++)
			for (size_t i = 0; i < in; i++) {
				double s = 0.0;

				for (size_t o = 0; o < out; o++)
					s += (double)dy[r * out + o] *
					     w[o * in + i];
				dx[r * in + i] += (float)s;
			}
	if (dw)
		for (size_t o = 0; o < out; o++)
			for (size_t i = 0; i < in; i++) {
				double s = 0.0;

				for (size_t r = 0; r < n; r++)
					s += (double)dy[r * out + o] *
					     x[r * in + i];
				dw[o * in + i] += (float)s;
			}
	if (db)
		for (size_t o = 0; o < out; o++) {
			double s = 0.0;

			for (size_t r = 0; r < n; r++)
				s += dy[r * out + o];
			db[o] += (float)s;
		}
}

/* ---- norms ---- */

static inline float wprime(const float *w, size_t i, int add_one)
{
	return w ? (add_one ? 1.0f + w[i] : w[i]) : 1.0f;
}

void hf_rmsnorm_forward(float *y, float *rstd, const float *x,
			const float *w, size_t rows, size_t cols, float eps,
			int add_one)
{
	for (size_t r = 0; r < rows; r++) {
		const float *xr = x + r * cols;
		float *yr = y + r * cols;
		double ss = 0.0;	/* cols can be 8192: sum in double */
		float rs;

		for (size_t i = 0; i < cols; i++)
			ss += (double)xr[i] * xr[i];
		rs = 1.0f / sqrtf((float)(ss / (double)cols) + eps);
		rstd[r] = rs;
		for (size_t i = 0; i < cols; i++)
			yr[i] = xr[i] * rs * wprime(w, i, add_one);
	}
}

void hf_rmsnorm_backward(float *dx, float *dw, const float *dy,
			 const float *x, const float *w, const float *rstd,
			 size_t rows, size_t cols, int add_one)
{
	for (size_t r = 0; r < rows; r++) {
		const float *xr = x + r * cols, *gr = dy + r * cols;
		float rs = rstd[r];
		double dot = 0.0;	/* sum_j dy_j w'_j x_j */

		for (size_t i = 0; i < cols; i++)
			dot += (double)gr[i] * wprime(w, i, add_one) * xr[i];
		if (dx) {
			float c = (float)(dot / (double)cols) * rs * rs * rs;
			float *dr = dx + r * cols;

			for (size_t i = 0; i < cols; i++)
				dr[i] += rs * wprime(w, i, add_one) * gr[i] -
					 xr[i] * c;
		}
		if (dw && w)
			for (size_t i = 0; i < cols; i++)
				dw[i] += gr[i] * xr[i] * rs;
	}
}

void hf_layernorm_forward(float *y, float *mean, float *rstd, const float *x,
			  const float *w, const float *b, size_t rows,
			  size_t cols, float eps)
{
	for (size_t r = 0; r < rows; r++) {
		const float *xr = x + r * cols;
		float *yr = y + r * cols;
		double s = 0.0, v = 0.0;
		float mu, rs;

		for (size_t i = 0; i < cols; i++)
			s += xr[i];
		mu = (float)(s / (double)cols);
		for (size_t i = 0; i < cols; i++) {
			double d = (double)xr[i] - mu;

			v += d * d;
		}
		rs = 1.0f / sqrtf((float)(v / (double)cols) + eps);
		mean[r] = mu;
		rstd[r] = rs;
		for (size_t i = 0; i < cols; i++)
			yr[i] = (xr[i] - mu) * rs * (w ? w[i] : 1.0f) +
				(b ? b[i] : 0.0f);
	}
}

/* llm.c's layernorm_backward: with xh = (x - mean) rstd and
 * g = dy w, dx = rstd (g - mean(g) - xh mean(g xh)). */
void hf_layernorm_backward(float *dx, float *dw, float *db, const float *dy,
			   const float *x, const float *w, const float *mean,
			   const float *rstd, size_t rows, size_t cols)
{
	for (size_t r = 0; r < rows; r++) {
		const float *xr = x + r * cols, *gr = dy + r * cols;
		float mu = mean[r], rs = rstd[r];
		double sg = 0.0, sgx = 0.0;
		float mg, mgx;

		for (size_t i = 0; i < cols; i++) {
			float xh = (xr[i] - mu) * rs;
			float g = gr[i] * (w ? w[i] : 1.0f);

			sg += g;
			sgx += (double)g * xh;
		}
		mg = (float)(sg / (double)cols);
		mgx = (float)(sgx / (double)cols);
		for (size_t i = 0; i < cols; i++) {
			float xh = (xr[i] - mu) * rs;
			float g = gr[i] * (w ? w[i] : 1.0f);

			if (dx)
				dx[r * cols + i] += rs * (g - mg - xh * mgx);
			if (dw)
				dw[i] += gr[i] * xh;
			if (db)
				db[i] += gr[i];
		}
	}
}

/* ---- RoPE ---- */

/* The partner of dim i and the sign of its term: out_i = x_i c + sign
 * x_partner s (rotate_half: pairs (i, i + half); interleaved: (2i,
 * 2i + 1)), and the frequency index of dim i. */
static inline void rope_pair(size_t i, size_t half, enum hf_rope_mode mode,
			     size_t *partner, float *sign, size_t *fi)
{
	if (mode == HF_ROPE_HALF) {
		*fi = i % half;
		*partner = i < half ? i + half : i - half;
		*sign = i < half ? -1.0f : 1.0f;
	} else {
		*fi = i / 2;
		*partner = i % 2 ? i - 1 : i + 1;
		*sign = i % 2 ? 1.0f : -1.0f;
	}
}

void hf_rope_forward(float *x, const int32_t *pos, const float *inv_freq,
		     size_t ntok, size_t heads, size_t head_dim,
		     size_t rot_dim, enum hf_rope_mode mode, float scaling)
{
	size_t half = rot_dim / 2;
	float out[1024];	/* rot_dim <= head_dim <= 1024 (train.h) */

	for (size_t t = 0; t < ntok; t++)
		for (size_t h = 0; h < heads; h++) {
			float *xh = x + (t * heads + h) * head_dim;

			for (size_t i = 0; i < rot_dim; i++) {
				size_t p, fi;
				float sg, a;

				rope_pair(i, half, mode, &p, &sg, &fi);
				a = (float)pos[t] * inv_freq[fi];
				out[i] = xh[i] * (cosf(a) * scaling) +
					 sg * xh[p] * (sinf(a) * scaling);
			}
			memcpy(xh, out, rot_dim * sizeof(float));
		}
}

/* out = M x with M_ii = c_i, M_ip = sign_i s_i; the transpose sends
 * dy_i to dx_i (c_i) and to dx_p (sign_i s_i), the angles of a pair
 * being equal. */
void hf_rope_backward(float *dx, const float *dy, const int32_t *pos,
		      const float *inv_freq, size_t ntok, size_t heads,
		      size_t head_dim, size_t rot_dim, enum hf_rope_mode mode,
		      float scaling)
{
	size_t half = rot_dim / 2;

	for (size_t t = 0; t < ntok; t++)
		for (size_t h = 0; h < heads; h++) {
			size_t off = (t * heads + h) * head_dim;
			const float *g = dy + off;
			float *d = dx + off;

			for (size_t i = 0; i < rot_dim; i++) {
				size_t p, fi;
				float sg, a;

				rope_pair(i, half, mode, &p, &sg, &fi);
				a = (float)pos[t] * inv_freq[fi];
				d[i] += g[i] * (cosf(a) * scaling);
				d[p] += sg * g[i] * (sinf(a) * scaling);
			}
			for (size_t i = rot_dim; i < head_dim; i++)
				d[i] += g[i];
		}
}

/* ---- activations ---- */

/* The forward formulas are those of the CPU backend's hf_cpu_act1, so
 * the training forward gives the inference logits. */
float hf_act_value(float x, enum hf_act act)
{
	switch (act) {
	case HF_ACT_SILU:
		return x / (1.0f + expf(-x));
	case HF_ACT_GELU_ERF:
		return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
	case HF_ACT_GELU_TANH:
		return 0.5f * x * (1.0f + tanhf(0.7978845608028654f *
						(x + 0.044715f * x * x * x)));
	case HF_ACT_RELU:
		return x > 0.0f ? x : 0.0f;
	case HF_ACT_TANH:
		return tanhf(x);
	case HF_ACT_COUNT:
		break;
	}
	return x;
}

float hf_act_grad(float x, enum hf_act act)
{
	switch (act) {
	case HF_ACT_SILU: {
		float s = 1.0f / (1.0f + expf(-x));

		return s * (1.0f + x * (1.0f - s));
	}
	case HF_ACT_GELU_ERF:
		/* Phi(x) + x phi(x) */
		return 0.5f * (1.0f + erff(x * (float)M_SQRT1_2)) +
		       x * expf(-0.5f * x * x) * 0.3989422804014327f;
	case HF_ACT_GELU_TANH: {
		const float c = 0.7978845608028654f;
		float u = c * (x + 0.044715f * x * x * x);
		float th = tanhf(u);
		float du = c * (1.0f + 3.0f * 0.044715f * x * x);

		return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
	}
	case HF_ACT_RELU:
		return x > 0.0f ? 1.0f : 0.0f;
	case HF_ACT_TANH: {
		float th = tanhf(x);

		return 1.0f - th * th;
	}
	case HF_ACT_COUNT:
		break;
	}
	return 1.0f;
}

void hf_act_forward(float *y, const float *x, size_t n, enum hf_act act)
{
	for (size_t i = 0; i < n; i++)
		y[i] = hf_act_value(x[i], act);
}

void hf_act_backward(float *dx, const float *dy, const float *x, size_t n,
		     enum hf_act act)
{
	for (size_t i = 0; i < n; i++)
		dx[i] += hf_act_grad(x[i], act) * dy[i];
}

void hf_glu_forward(float *y, const float *g, const float *u, size_t n,
		    enum hf_act act)
{
	for (size_t i = 0; i < n; i++)
		y[i] = hf_act_value(g[i], act) * u[i];
}

void hf_glu_backward(float *dg, float *du, const float *dy, const float *g,
		     const float *u, size_t n, enum hf_act act)
{
	for (size_t i = 0; i < n; i++) {
		if (dg)
			dg[i] += hf_act_grad(g[i], act) * u[i] * dy[i];
		if (du)
			du[i] += hf_act_value(g[i], act) * dy[i];
	}
}

/* ---- MoE ---- */

void hf_moe_route_forward(float *w, int32_t *idx, const float *logits,
			  size_t T, size_t E, size_t k)
{
	for (size_t t = 0; t < T; t++) {
		const float *l = logits + t * E;
		float *wt = w + t * k;
		int32_t *it = idx + t * k;
		float mx = -INFINITY;
		double sum = 0.0;

		/* top k by logit (the softmax is monotone), the first
		 * of equal ones first, as torch.topk on CPU */
		for (size_t j = 0; j < k; j++) {
			int32_t best = -1;

			for (size_t e = 0; e < E; e++) {
				int taken = 0;

				for (size_t i = 0; i < j; i++)
					taken |= it[i] == (int32_t)e;
				if (!taken && (best < 0 || l[e] > l[best]))
					best = (int32_t)e;
			}
			it[j] = best;
		}
		for (size_t e = 0; e < E; e++)
			mx = l[e] > mx ? l[e] : mx;
		/* probabilities of all E as transformers takes them, then
		 * the chosen ones renormalised */
		for (size_t e = 0; e < E; e++)
			sum += expf(l[e] - mx);
		{
			double top = 0.0;
			float p[256];

			for (size_t j = 0; j < k; j++) {
				p[j] = (float)(expf(l[it[j]] - mx) / sum);
				top += p[j];
			}
			for (size_t j = 0; j < k; j++)
				wt[j] = (float)(p[j] / top);
		}
	}
}

void hf_moe_route_backward(float *dlogits, const float *dw, const float *w,
			   const int32_t *idx, size_t T, size_t E, size_t k)
{
	for (size_t t = 0; t < T; t++) {
		const float *wt = w + t * k, *gt = dw + t * k;
		double s = 0.0;

		for (size_t j = 0; j < k; j++)
			s += (double)wt[j] * gt[j];
		for (size_t j = 0; j < k; j++)
			dlogits[t * E + (size_t)idx[t * k + j]] +=
				wt[j] * (gt[j] - (float)s);
	}
}

void hf_moe_combine_forward(float *y, const float *x, const float *w,
			    const int32_t *rows, size_t n, size_t dim)
{
	for (size_t i = 0; i < n; i++) {
		float *yr = y + (size_t)rows[i] * dim;

		for (size_t j = 0; j < dim; j++)
			yr[j] += w[i] * x[i * dim + j];
	}
}

void hf_moe_combine_backward(float *dx, float *dw, const float *dy,
			     const float *x, const float *w,
			     const int32_t *rows, size_t n, size_t dim)
{
	for (size_t i = 0; i < n; i++) {
		const float *gr = dy + (size_t)rows[i] * dim;
		double s = 0.0;

		for (size_t j = 0; j < dim; j++) {
			if (dx)
				dx[i * dim + j] += w[i] * gr[j];
			s += (double)gr[j] * x[i * dim + j];
		}
		if (dw)
			dw[i] += (float)s;
	}
}

/* ---- softcapping ---- */

void hf_softcap_forward(float *y, const float *x, size_t n, float cap)
{
	for (size_t i = 0; i < n; i++)
		y[i] = cap * tanhf(x[i] / cap);
}

void hf_softcap_backward(float *dx, const float *dy, const float *y,
			 size_t n, float cap)
{
	for (size_t i = 0; i < n; i++) {
		float t = y[i] / cap;

		dx[i] += (1.0f - t * t) * dy[i];
	}
}

/* ---- cross-entropy ---- */

struct xent {
	float *lse, *dlogits;
	const float *logits;
	const int32_t *targets;
	size_t n, V;
	float scale;
	double part[64];	/* per-thread sums of the forward */
	size_t cnt[64];
};

/* Rows of thread ith: lse = max + log(sum exp(l - max)), the exps in
 * float32 as F.cross_entropy computes them, their sum in double. */
static void xent_fwd_job(void *ctx, int ith, int nth)
{
	struct xent *a = ctx;
	size_t r0, r1, V = a->V;

	hf_pool_split(a->n, ith, nth, &r0, &r1);
	for (size_t r = r0; r < r1; r++) {
		const float *l = a->logits + r * V;
		float mx = -INFINITY;
		double s = 0.0, lse;

		for (size_t i = 0; i < V; i++)
			mx = l[i] > mx ? l[i] : mx;
		for (size_t i = 0; i < V; i++)
			s += expf(l[i] - mx);
		lse = (double)mx + log(s);
		a->lse[r] = (float)lse;
		if (a->targets[r] == HF_IGNORE_INDEX)
			continue;
		a->part[ith] += lse - l[a->targets[r]];
		a->cnt[ith]++;
	}
}

static void xent_bwd_job(void *ctx, int ith, int nth)
{
	struct xent *a = ctx;
	size_t r0, r1, V = a->V;

	hf_pool_split(a->n, ith, nth, &r0, &r1);
	for (size_t r = r0; r < r1; r++) {
		const float *l = a->logits + r * V;
		float *d = a->dlogits + r * V, lse = a->lse[r];

		if (a->targets[r] == HF_IGNORE_INDEX)
			continue;
		for (size_t i = 0; i < V; i++)
			d[i] += a->scale * expf(l[i] - lse);
		d[a->targets[r]] -= a->scale;
	}
}

/* At most 64 threads take part (the per-thread sums). */
static int xent_threads(struct hf_pool *pool)
{
	return hf_pool_size(pool) > 64 ? 64 : hf_pool_size(pool);
}

double hf_xent_forward(float *lse, const float *logits, const int32_t *targets,
		       size_t n, size_t V, size_t *count, struct hf_pool *pool)
{
	struct xent a = { .lse = lse, .logits = logits, .targets = targets,
			  .n = n, .V = V };
	double total = 0.0;
	size_t c = 0;

	if (xent_threads(pool) < hf_pool_size(pool))
		xent_fwd_job(&a, 0, 1);
	else
		hf_pool_run(pool, xent_fwd_job, &a);
	for (int i = 0; i < 64; i++) {
		total += a.part[i];
		c += a.cnt[i];
	}
	*count = c;
	return total;
}

void hf_xent_backward(float *dlogits, const float *logits, const float *lse,
		      const int32_t *targets, size_t n, size_t V, float scale,
		      struct hf_pool *pool)
{
	struct xent a = { .lse = (float *)lse, .dlogits = dlogits,
			  .logits = logits, .targets = targets, .n = n, .V = V,
			  .scale = scale };

	hf_pool_run(pool, xent_bwd_job, &a);
}
