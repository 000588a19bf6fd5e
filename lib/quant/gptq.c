/* lib/quant/gptq.c: the GPTQ solver for one linear, step for step as
 * AutoGPTQ's auto_gptq/quantization/gptq.py fasterquant() (blocksize 128,
 * static_groups false) with the quantizer of quantizer.py; the Hessian by
 * OpenBLAS ssyrk, the Cholesky factors by LAPACK. The model driver is in
 * gptq_model.c. */
#include "quant/gptq.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK (OpenBLAS ships it): column-major Cholesky, triangular
 * inverse. */
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda,
	     int *info);
void dtrtri_(const char *uplo, const char *diag, const int *n, double *a,
	     const int *lda, int *info);

void hf_gptq_result_free(struct hf_gptq_result *r)
{
	if (!r)
		return;
	free(r->q);
	free(r->scales);
	free(r->zeros);
	free(r->g_idx);
	free(r->deq);
	memset(r, 0, sizeof(*r));
}

/* Copy the upper triangle into the lower, in tiles (a column-wise
 * pass over a 4864-wide H misses the cache on every element). */
static void mirror_upper(float *H, size_t cols)
{
	enum { TB = 64 };

	for (size_t i0 = 0; i0 < cols; i0 += TB)
		for (size_t j0 = i0; j0 < cols; j0 += TB)
			for (size_t i = i0; i < i0 + TB && i < cols; i++)
				for (size_t j = j0 > i ? j0 : i + 1;
				     j < j0 + TB && j < cols; j++)
					H[j * cols + i] = H[i * cols + j];
}

void hf_gptq_hessian(float *H, const float *X, size_t n, size_t cols,
		     float scale)
{
	cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)cols, (int)n,
		    scale, X, (int)cols, 0.0f, H, (int)cols);
	mirror_upper(H, cols);
}

void hf_gptq_hessian_add(float *H, const float *X, size_t n, size_t cols,
			 float scale)
{
	cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)cols, (int)n,
		    scale, X, (int)cols, 1.0f, H, (int)cols);
	mirror_upper(H, cols);
}


static int check_params(const struct hf_gptq_params *p, size_t cols,
			struct hf_err *err)
{
	if (p->bits != 2 && p->bits != 3 && p->bits != 4 && p->bits != 8)
		return hf_err_set(err, HF_EINVAL,
				  "gptq: %u bits; 2, 3, 4 or 8 are supported",
				  p->bits);
	if (p->group_size != -1 &&
	    (p->group_size <= 0 || cols % (size_t)p->group_size))
		return hf_err_set(err, HF_EINVAL,
				  "gptq: group size %ld does not divide the %zu inputs",
				  p->group_size, cols);
	if (!(p->damp >= 0.0f) || p->damp >= 1.0f)
		return hf_err_set(err, HF_EINVAL,
				  "gptq: damp %g is outside [0, 1)",
				  (double)p->damp);
	return 0;
}

static int result_alloc(struct hf_gptq_result *r, size_t rows, size_t cols,
			size_t G, unsigned bits, struct hf_err *err)
{
	memset(r, 0, sizeof(*r));
	r->rows = rows;
	r->cols = cols;
	r->G = G;
	r->bits = bits;
	r->q = malloc(rows * cols);
	r->scales = malloc(G * rows * sizeof(float));
	r->zeros = malloc(G * rows);
	r->g_idx = malloc(cols * sizeof(int32_t));
	r->deq = malloc(rows * cols * sizeof(float));
	if (!r->q || !r->scales || !r->zeros || !r->g_idx || !r->deq) {
		hf_gptq_result_free(r);
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	return 0;
}

int hf_gptq_rtn(struct hf_gptq_result *r, const float *W, size_t rows,
		size_t cols, const struct hf_gptq_params *p,
		struct hf_err *err)
{
	size_t gs, G;

	if (check_params(p, cols, err))
		return err->code;
	gs = p->group_size == -1 ? cols : (size_t)p->group_size;
	G = cols / gs;
	if (result_alloc(r, rows, cols, G, p->bits, err))
		return err->code;
	for (size_t i = 0; i < cols; i++)
		r->g_idx[i] = (int32_t)(i / gs);
	for (size_t g = 0; g < G; g++)
		for (size_t o = 0; o < rows; o++) {
			const float *w = W + o * cols + g * gs;
			float s;
			uint8_t z;

			hf_gptq_scale_zero(w, gs, 1, p->bits, p->sym, &s, &z);
			r->scales[g * rows + o] = s;
			r->zeros[g * rows + o] = z;
			for (size_t i = 0; i < gs; i++) {
				uint8_t q = hf_gptq_q(w[i], s, z, p->bits);

				r->q[o * cols + g * gs + i] = q;
				r->deq[o * cols + g * gs + i] =
					s * ((float)q - (float)z);
			}
		}
	return 0;
}

/* Indices of d (n) by decreasing value, ties in index order. */
static const float *sort_key;
static int by_diag_desc(const void *a, const void *b)
{
	size_t i = *(const size_t *)a, j = *(const size_t *)b;

	if (sort_key[i] != sort_key[j])
		return sort_key[i] > sort_key[j] ? -1 : 1;
	return i < j ? -1 : i > j;
}

/* H^-1 = U^T U with U upper: what torch.linalg.cholesky,
 * cholesky_inverse and cholesky(upper=True) give, in two factorisations
 * instead of three. With J the reversal, chol(J H J) = L gives H = V V^T
 * for V = J L J upper, so H^-1 = V^-T V^-1 and U = V^-1 (dtrtri). In
 * memory J M J is M's elements in reverse order, so every step reads
 * and writes in sequence. Hp (cols, cols) is the damped H, overwritten;
 * A scratch of the same size. U comes back column-major (Uc[i + j *
 * cols] = U[i][j] for i <= j, the rest unset), read as such below.
 * In double: a float32 factorisation of an ill-conditioned H (few
 * calibration tokens, wide inputs) fails where double does not; U is
 * rounded to float32 for the float32 updates upstream makes. */
static int hinv_upper(float *Uc, double *Hp, double *A, size_t cols,
		      struct hf_err *err)
{
	int n = (int)cols, info = 0;
	size_t nn = cols * cols;

	for (size_t k = 0; k < nn; k++)
		A[k] = Hp[nn - 1 - k];
	dpotrf_("L", &n, A, &n, &info);
	if (info)
		return hf_err_set(err, HF_ERANGE,
				  "gptq: the damped hessian is not positive definite "
				  "(lapack info %d); raise the damping", info);
	/* V(i, j) = L(c - i, c - j): the upper triangle of A reversed */
	for (size_t k = 0; k < nn; k++)
		Hp[k] = A[nn - 1 - k];
	dtrtri_("U", "N", &n, Hp, &n, &info);
	if (info)
		return hf_err_set(err, HF_ERANGE,
				  "gptq: the hessian's factor is singular (lapack "
				  "info %d); raise the damping", info);
	for (size_t k = 0; k < nn; k++)
		Uc[k] = (float)Hp[k];
	return 0;
}

int hf_gptq_solve(struct hf_gptq_result *r, const float *W, size_t rows,
		  size_t cols, float *H, const struct hf_gptq_params *p,
		  struct hf_err *err)
{
	size_t bs = p->block ? p->block : 128, gs, G;
	float *Wp = NULL, *U = NULL, *W1 = NULL, *Err1 = NULL, *sc = NULL;
	float *qd = NULL, *blk = NULL;
	uint8_t *zr = NULL, *qi = NULL, *dead = NULL;
	double *Hp = NULL, *Hw = NULL, dsum = 0.0;
	size_t *perm = NULL;
	float damp;
	int rc = 0;

	if (check_params(p, cols, err))
		return err->code;
	gs = p->group_size == -1 ? cols : (size_t)p->group_size;
	G = cols / gs;
	if (result_alloc(r, rows, cols, G, p->bits, err))
		return err->code;
	Wp = malloc(rows * cols * sizeof(float));
	U = malloc(cols * cols * sizeof(float));
	W1 = malloc(rows * bs * sizeof(float));
	blk = malloc(bs * bs * sizeof(float));
	Err1 = malloc(rows * bs * sizeof(float));
	sc = malloc(rows * sizeof(float));
	zr = malloc(rows);
	qi = malloc(rows * cols);
	qd = malloc(rows * cols * sizeof(float));
	Hp = malloc(cols * cols * sizeof(double));
	Hw = malloc(cols * cols * sizeof(double));
	perm = malloc(cols * sizeof(size_t));
	dead = malloc(cols);
	if (!Wp || !U || !W1 || !blk || !Err1 || !sc || !zr || !qi || !qd || !Hp ||
	    !Hw || !perm || !dead) {
		rc = hf_err_set(err, HF_ENOMEM, "out of memory");
		goto fail;
	}
	/* group_size -1: one quantizer from the weights as given, before
	 * dead columns are zeroed (fasterquant's first find_params) */
	if (p->group_size == -1)
		for (size_t o = 0; o < rows; o++) {
			hf_gptq_scale_zero(W + o * cols, cols, 1, p->bits,
					    p->sym, &sc[o], &zr[o]);
			r->scales[o] = sc[o];
			r->zeros[o] = zr[o];
		}
	for (size_t d = 0; d < cols; d++) {
		perm[d] = d;
		dead[d] = H[d * cols + d] == 0.0f;
		if (dead[d])
			H[d * cols + d] = 1.0f;
	}
	if (p->desc_act) {
		float *diag = malloc(cols * sizeof(float));

		if (!diag) {
			rc = hf_err_set(err, HF_ENOMEM, "out of memory");
			goto fail;
		}
		for (size_t d = 0; d < cols; d++)
			diag[d] = H[d * cols + d];
		sort_key = diag;
		qsort(perm, cols, sizeof(*perm), by_diag_desc);
		sort_key = NULL;
		free(diag);
	}
	/* W[:, dead] = 0, in the permuted order */
	for (size_t o = 0; o < rows; o++)
		for (size_t k = 0; k < cols; k++)
			Wp[o * cols + k] = dead[perm[k]] ? 0.0f :
					   W[o * cols + perm[k]];
	for (size_t i = 0; i < cols; i++)
		for (size_t j = 0; j < cols; j++)
			Hp[i * cols + j] = H[perm[i] * cols + perm[j]];
	for (size_t d = 0; d < cols; d++)
		dsum += H[d * cols + d];
	damp = p->damp * (float)(dsum / (double)cols);
	for (size_t d = 0; d < cols; d++)
		Hp[d * cols + d] += damp;
	if ((rc = hinv_upper(U, Hp, Hw, cols, err)))
		goto fail;

	for (size_t i1 = 0; i1 < cols; i1 += bs) {
		size_t i2 = i1 + bs < cols ? i1 + bs : cols, cnt = i2 - i1;

		for (size_t o = 0; o < rows; o++)
			memcpy(W1 + o * cnt, Wp + o * cols + i1,
			       cnt * sizeof(float));
		/* Hinv1 = Hinv[i1:i2, i1:i2], row-major (cnt, cnt) */
		for (size_t j = 0; j < cnt; j++)
			for (size_t i = 0; i <= j; i++)
				blk[i * cnt + j] = U[(i1 + i) + (i1 + j) * cols];
		for (size_t i = 0; i < cnt; i++) {
			size_t c = i1 + i;
			const float *u = blk + i * cnt;
			float d = u[i];

			if (p->group_size != -1 && c % gs == 0) {
				size_t n = gs < cols - c ? gs : cols - c;

				for (size_t o = 0; o < rows; o++) {
					hf_gptq_scale_zero(Wp + o * cols + c, n,
							    1, p->bits, p->sym,
							    &sc[o], &zr[o]);
					r->scales[(c / gs) * rows + o] = sc[o];
					r->zeros[(c / gs) * rows + o] = zr[o];
				}
			}
			for (size_t o = 0; o < rows; o++) {
				float *w1 = W1 + o * cnt;
				float w = w1[i], e;
				uint8_t q = hf_gptq_q(w, sc[o], zr[o], p->bits);
				float dq = sc[o] * ((float)q - (float)zr[o]);

				qi[o * cols + c] = q;
				qd[o * cols + c] = dq;
				e = (w - dq) / d;
				Err1[o * cnt + i] = e;
				for (size_t j = i; j < cnt; j++)
					w1[j] -= e * u[j];
			}
		}
		/* the lazy batch: W[:, i2:] -= Err1 . Hinv[i1:i2, i2:], the
		 * latter the transpose of row-major U[i2:, i1:i2] */
		if (i2 < cols)
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
				    (int)rows, (int)(cols - i2), (int)cnt,
				    -1.0f, Err1, (int)cnt, U + i2 * cols + i1,
				    (int)cols, 1.0f, Wp + i2, (int)cols);
	}
	for (size_t k = 0; k < cols; k++) {
		r->g_idx[perm[k]] = (int32_t)(k / gs);
		for (size_t o = 0; o < rows; o++) {
			r->q[o * cols + perm[k]] = qi[o * cols + k];
			r->deq[o * cols + perm[k]] = qd[o * cols + k];
		}
	}
fail:
	if (rc)
		hf_gptq_result_free(r);
	free(Wp);
	free(U);
	free(W1);
	free(blk);
	free(Err1);
	free(sc);
	free(zr);
	free(qi);
	free(qd);
	free(Hp);
	free(Hw);
	free(perm);
	free(dead);
	return rc;
}
