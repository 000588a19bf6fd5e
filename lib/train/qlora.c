/* lib/train/qlora.c: the frozen quantized linear of qlora.h. */
#include "train/qlora.h"

#include <cblas.h>

#include "tensor/matmul.h"

void hf_qlinear_forward(float *y, const float *x, const struct hf_weight *w,
			const float *b, size_t n, struct hf_pool *pool)
{
	hf_matmul_w(y, x, w, b, n, HF_DTYPE_F32, pool);
}

struct qlin_bwd {
	float *dx, *db, *scratch;
	const float *dy;
	const struct hf_weight *w;
	size_t n;
};

/* Thread ith's share: columns [c0, c1) of dx, rows [o0, o1) of db; its
 * tiles go to scratch + TILE * c0, (TILE, c1 - c0), its own part. */
static void qlin_bwd_job(void *ctx, int ith, int nth)
{
	const struct qlin_bwd *a = ctx;
	const struct hf_weight *w = a->w;
	size_t n = a->n, in = w->cols, out = w->rows, c0, c1, o0, o1;
	float *tile;

	hf_pool_split(in, ith, nth, &c0, &c1);
	hf_pool_split(out, ith, nth, &o0, &o1);
	tile = a->scratch + (size_t)HF_QLORA_TILE * c0;
	if (a->dx && c1 > c0)
		for (size_t r0 = 0; r0 < out; r0 += HF_QLORA_TILE) {
			size_t rows = out - r0 < HF_QLORA_TILE ?
				      out - r0 : HF_QLORA_TILE;

			/* tile (rows, c1 - c0) = W[r0 : r0 + rows, c0 : c1] */
			hf_weight_dequant(tile, w, r0, rows, c0, c1 - c0);
			/* dx[:, c0:c1] += dy[:, r0:r0 + rows] . tile */
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
				    (int)n, (int)(c1 - c0), (int)rows, 1.0f,
				    a->dy + r0, (int)out, tile, (int)(c1 - c0),
				    1.0f, a->dx + c0, (int)in);
		}
	if (a->db)
		for (size_t o = o0; o < o1; o++) {
			double s = 0.0;

			for (size_t r = 0; r < n; r++)
				s += a->dy[r * out + o];
			a->db[o] += (float)s;
		}
}

void hf_qlinear_backward(float *dx, float *db, const float *dy,
			 const struct hf_weight *w, size_t n, float *scratch,
			 struct hf_pool *pool)
{
	struct qlin_bwd a = { dx, db, scratch, dy, w, n };

	if (!n || !w->rows || !w->cols || (!dx && !db))
		return;
	hf_pool_run(pool, qlin_bwd_job, &a);
}
