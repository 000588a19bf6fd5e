/* lib/train/ops_ln.c: GPT-2's Conv1D pair (ops_ln.h), its products on
 * cblas_sgemm, each thread of the pool on its own slice. */
#include "train/ops_ln.h"

#include <cblas.h>
#include <string.h>

struct conv {
	float *y, *dx, *dw, *db;
	const float *x, *w, *b, *dy;
	size_t n, in, out;
};

/* y[:, o0:o1] = x . W[:, o0:o1] + b[o0:o1] */
static void conv_fwd_job(void *ctx, int ith, int nth)
{
	const struct conv *a = ctx;
	size_t n = a->n, in = a->in, out = a->out, o0, o1;

	hf_pool_split(out, ith, nth, &o0, &o1);
	if (o1 <= o0)
		return;
	for (size_t r = 0; r < n; r++) {
		float *y = a->y + r * out;

		if (a->b)
			memcpy(y + o0, a->b + o0, (o1 - o0) * sizeof(float));
		else
			memset(y + o0, 0, (o1 - o0) * sizeof(float));
	}
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n,
		    (int)(o1 - o0), (int)in, 1.0f, a->x, (int)in, a->w + o0,
		    (int)out, 1.0f, a->y + o0, (int)out);
}

void hf_conv1d_forward(float *y, const float *x, const float *w,
		       const float *b, size_t n, size_t in, size_t out,
		       struct hf_pool *pool)
{
	struct conv a = { .y = y, .x = x, .w = w, .b = b, .n = n, .in = in,
			  .out = out };

	if (!n || !out)
		return;
	if (!in) {
		for (size_t r = 0; r < n; r++)
			for (size_t o = 0; o < out; o++)
				y[r * out + o] = b ? b[o] : 0.0f;
		return;
	}
	hf_pool_run(pool, conv_fwd_job, &a);
}

/* dx[:, c0:c1] += dy . W[c0:c1]^T; dW[c0:c1] += x[:, c0:c1]^T . dy;
 * db[o0:o1] += column sums of dy */
static void conv_bwd_job(void *ctx, int ith, int nth)
{
	const struct conv *a = ctx;
	size_t n = a->n, in = a->in, out = a->out, c0, c1, o0, o1;

	hf_pool_split(in, ith, nth, &c0, &c1);
	hf_pool_split(out, ith, nth, &o0, &o1);
	if (a->dx && c1 > c0)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n,
			    (int)(c1 - c0), (int)out, 1.0f, a->dy, (int)out,
			    a->w + c0 * out, (int)out, 1.0f, a->dx + c0,
			    (int)in);
	if (a->dw && c1 > c0)
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
			    (int)(c1 - c0), (int)out, (int)n, 1.0f, a->x + c0,
			    (int)in, a->dy, (int)out, 1.0f, a->dw + c0 * out,
			    (int)out);
	if (a->db)
		for (size_t o = o0; o < o1; o++) {
			double s = 0.0;

			for (size_t r = 0; r < n; r++)
				s += a->dy[r * out + o];
			a->db[o] += (float)s;
		}
}

void hf_conv1d_backward(float *dx, float *dw, float *db, const float *dy,
			const float *x, const float *w, size_t n, size_t in,
			size_t out, struct hf_pool *pool)
{
	struct conv a = { .dx = dx, .dw = dw, .db = db, .dy = dy, .x = x,
			  .w = w, .n = n, .in = in, .out = out };

	if (!n || !out || (!dx && !dw && !db))
		return;
	hf_pool_run(pool, conv_bwd_job, &a);
}
