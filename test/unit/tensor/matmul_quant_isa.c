/* test/unit/tensor/matmul_quant_isa.c: the quantized formats' kernels of
 * every instruction set in this build (matmul_quant_x86.c: AVX2,
 * AVX-512; matmul_quant_arm.c: NEON) against the portable C path, on
 * every variant of every format (test/unit/quant/qrand.h) and shapes that
 * leave tails: widened panels equal hf_weight_dequant bit for bit, the
 * decode kernels match the portable ones on row ranges that start and
 * end off the kernels' blocks, on views of rows and into a y wider than
 * the range, and hf_matmul_w matches the generic ISA for n = 1 to 7
 * (decode and the widen + sgemm batched path) in float32 and bf16
 * compute. scripts/test-aarch64 runs it under qemu-aarch64, which is
 * where the NEON kernels are exercised. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tensor/matmul.h"
#include "tensor/matmul_kern.h"
#include "tensor/wfmt.h"
#include "../quant/qrand.h"

static const struct {
	enum hf_matmul_isa isa;
	const char *name;
	const struct mm_kern *k;
} isas[] = {
	{ HF_MATMUL_GENERIC, "generic", mm_generic },
#if defined(__x86_64__) || defined(__i386__)
	{ HF_MATMUL_AVX2, "avx2", mm_avx2 },
	{ HF_MATMUL_AVX512, "avx512", mm_avx512 },
#endif
#if defined(__aarch64__)
	{ HF_MATMUL_NEON, "neon", mm_neon },
#endif
};
#define NISA (sizeof(isas) / sizeof(isas[0]))

static const enum hf_wfmt qfmts[] = {
	HF_WFMT_INT8, HF_WFMT_BNB4, HF_WFMT_BNB4DQ, HF_WFMT_GPTQ,
	HF_WFMT_AWQ, HF_WFMT_BITNET, HF_WFMT_FP8,
};
#define NQ (sizeof(qfmts) / sizeof(qfmts[0]))

/* The distinct variants of qrand_make per format: GPTQ bits x v1/v2 x
 * g_idx; bitsandbytes block size x nf4/fp4 (x nested group: dq); FP8
 * block shape. */
static unsigned nvar(enum hf_wfmt f)
{
	switch (f) {
	case HF_WFMT_GPTQ: return 16;
	case HF_WFMT_BNB4: return 4;
	case HF_WFMT_BNB4DQ: return 8;
	case HF_WFMT_FP8: return 2;
	default: return 1;
	}
}

/* (out, in): tails of 8 after the 16-column steps (200, 72), rows
 * not a multiple of 16 (40, 24, 56), bitsandbytes' fast path (in a
 * multiple of 32 or 64) and its fallback, an input narrower than a
 * group (8), FP8 blocks cut by the edge. */
static const size_t shapes[][2] = {
	{ 40, 48 }, { 24, 200 }, { 56, 160 }, { 32, 8 }, { 96, 72 },
	{ 48, 128 },
};
#define NSHAPE (sizeof(shapes) / sizeof(shapes[0]))

/* The ISA's kernels of format f, as matmul.c's dispatch picks them. */
static const struct mm_kern *kern(size_t i, enum hf_wfmt f)
{
	return isas[i].k[f].gemv ? &isas[i].k[f] : &mm_generic[f];
}

/* sum |x w| (+ |bias|) per output: the scale of the float error. */
static void mags(double *mag, const float *x, const float *W,
		 const float *bias, size_t n, size_t out, size_t in)
{
	for (size_t t = 0; t < n; t++)
		for (size_t o = 0; o < out; o++) {
			double m = bias ? fabs(bias[o]) : 0;

			for (size_t k = 0; k < in; k++)
				m += fabs((double)x[t * in + k] * W[o * in + k]);
			mag[t * out + o] = m;
		}
}

static void check_close(const float *got, const float *want,
			const double *mag, size_t cnt, double tol,
			const char *what, const char *isa, enum hf_wfmt f,
			unsigned v, size_t out, size_t in, size_t n)
{
	for (size_t i = 0; i < cnt; i++)
		if (!(fabs((double)got[i] - want[i]) <= tol * mag[i] + 1e-30))
			fail_msg("%s %s %s v%u (%zu, %zu) n %zu: y[%zu] %.9g, generic %.9g",
				 what, isa, hf_wfmt_name(f), v, out, in, n, i,
				 got[i], want[i]);
}

static void test_every_isa_has_every_format(void **state)
{
	(void)state;
	for (size_t i = 1; i < NISA; i++)
		for (size_t fi = 0; fi < NQ; fi++) {
			if (!isas[i].k[qfmts[fi]].gemv ||
			    !isas[i].k[qfmts[fi]].widen)
				fail_msg("%s has no kernels for %s",
					 isas[i].name, hf_wfmt_name(qfmts[fi]));
		}
	assert_true(NISA >= 1);
}

/* Whole panels, group-aligned slices and unaligned ones (the kernels'
 * fallback), of the matrix and of a view starting off a word of rows. */
static void test_widen_is_dequant_bit_for_bit(void **state)
{
	int ran = 0;

	(void)state;
	for (size_t i = 1; i < NISA; i++) {
		if (hf_matmul_set_isa(isas[i].isa)) {
			printf("# %s: not on this CPU, skipped\n", isas[i].name);
			continue;
		}
		ran++;
		for (size_t fi = 0; fi < NQ; fi++)
		for (size_t si = 0; si < NSHAPE; si++)
		for (unsigned v = 0; v < nvar(qfmts[fi]); v++) {
			const size_t out = shapes[si][0], in = shapes[si][1];
			const struct mm_kern *k = kern(i, qfmts[fi]);
			struct qrand q;
			struct hf_weight view;
			struct hf_err err = { 0 };
			float *got, *want;
			/* rows, k0, kc: aligned panels, then ragged ones */
			const size_t cut[][3] = {
				{ out, 0, in }, { 8, 0, in },
				{ out - 8, in >= 32 ? 16 : 0,
				  in >= 32 ? in - 16 : in },
				{ 3, in > 5 ? 3 : 0, in > 5 ? in - 5 : in },
				{ 16, in >= 16 ? 8 : 0,
				  in >= 16 ? in - 12 : in },
			};
			const size_t ncut = sizeof(cut) / sizeof(cut[0]);

			if (!qrand_fits(qfmts[fi], out, in, v))
				continue;
			qrand_make(&q, qfmts[fi], out, in, v, 1234 + v);
			assert_int_equal(hf_weight_rows(&view, &q.w, 8,
							out - 8, &err), 0);
			/* 16 floats past the panel: written, they fail */
			got = malloc((out * in + 16) * sizeof(float));
			want = malloc(out * in * sizeof(float));
			for (size_t c = 0; c < ncut; c++)
				for (int vw = 0; vw < 2; vw++) {
					const struct hf_weight *w =
						vw ? &view : &q.w;
					size_t rows = cut[c][0], k0 = cut[c][1];
					size_t kc = cut[c][2], r0 = out - 8 -
						    rows;

					if (rows > w->rows)
						continue;
					r0 = rows < w->rows ? (r0 % 8) : 0;
					if (r0 + rows > w->rows)
						r0 = 0;
					for (size_t e = 0; e < rows * kc + 16;
					     e++)
						got[e] = -3.0f;
					k->widen(got, w, r0, rows, k0, kc);
					for (size_t e = rows * kc;
					     e < rows * kc + 16; e++)
						if (got[e] != -3.0f)
							fail_msg("%s %s v%u: widen wrote past its panel",
								 isas[i].name,
								 hf_wfmt_name(qfmts[fi]),
								 v);
					hf_weight_dequant(want, w, r0, rows, k0,
							  kc);
					if (memcmp(got, want,
						   rows * kc * sizeof(float)))
						fail_msg("%s %s v%u (%zu, %zu)%s rows [%zu, +%zu) cols [%zu, +%zu): widened panel differs from dequant",
							 isas[i].name,
							 hf_wfmt_name(qfmts[fi]),
							 v, out, in,
							 vw ? " view" : "", r0,
							 rows, k0, kc);
				}
			free(got);
			free(want);
			qrand_free(&q);
		}
	}
	printf("# %d ISA(s) besides generic\n", ran);
	assert_int_equal(hf_matmul_set_isa(HF_MATMUL_GENERIC), 0);
}

/* The decode kernel on rows [r0, r1) of the matrix and of a view,
 * written into a y of ldy > out, against the portable kernel. */
static void test_gemv_rows_match_generic(void **state)
{
	(void)state;
	for (size_t i = 1; i < NISA; i++) {
		if (hf_matmul_set_isa(isas[i].isa))
			continue;
		for (size_t fi = 0; fi < NQ; fi++)
		for (size_t si = 0; si < NSHAPE; si++)
		for (unsigned v = 0; v < nvar(qfmts[fi]); v++) {
			const size_t out = shapes[si][0], in = shapes[si][1];
			const size_t ldy = out + 5;
			const struct mm_kern *k = kern(i, qfmts[fi]);
			struct qrand q;
			struct hf_weight view;
			struct hf_err err = { 0 };
			float *W, *x, *bias, *got, *want;
			double *mag;

			if (!qrand_fits(qfmts[fi], out, in, v))
				continue;
			qrand_make(&q, qfmts[fi], out, in, v, 77 + v);
			assert_int_equal(hf_weight_rows(&view, &q.w, 4,
							out - 4, &err), 0);
			W = malloc(out * in * sizeof(float));
			hf_weight_dequant(W, &q.w, 0, out, 0, in);
			x = qr_floats(&q, MM_GEMV_NT * in, -1, 1);
			bias = qr_floats(&q, out, -1, 1);
			got = malloc(MM_GEMV_NT * ldy * sizeof(float));
			want = malloc(MM_GEMV_NT * ldy * sizeof(float));
			mag = malloc(MM_GEMV_NT * ldy * sizeof(double));
			for (size_t nt = 1; nt <= MM_GEMV_NT; nt++)
				for (int vw = 0; vw < 2; vw++) {
					const struct hf_weight *w =
						vw ? &view : &q.w;
					const size_t vo = vw ? 4 : 0;
					size_t r0 = 3, r1 = w->rows - 2;
					const float *b = nt % 2 ? bias + vo :
							 NULL;

					for (size_t e = 0; e < nt * ldy; e++)
						got[e] = want[e] = 7.0f;
					k->gemv(got, ldy, x, nt, w, b, r0, r1);
					mm_generic[qfmts[fi]].gemv(want, ldy, x,
						nt, w, b, r0, r1);
					for (size_t t = 0; t < nt; t++)
						for (size_t r = 0; r < ldy; r++) {
							size_t o = vo + r;

							mag[t * ldy + r] = 0;
							if (r < r0 || r >= r1)
								continue;
							mag[t * ldy + r] = b ?
								fabs(b[r]) : 0;
							for (size_t c = 0; c < in;
							     c++)
								mag[t * ldy + r] +=
									fabs((double)
									x[t * in + c] *
									W[o * in + c]);
						}
					/* untouched outside [r0, r1): exactly 7 */
					check_close(got, want, mag, nt * ldy,
						    2e-5,
						    vw ? "gemv view" : "gemv",
						    isas[i].name, qfmts[fi], v,
						    out, in, nt);
				}
			free(W);
			free(x);
			free(bias);
			free(got);
			free(want);
			free(mag);
			qrand_free(&q);
		}
	}
	assert_int_equal(hf_matmul_set_isa(HF_MATMUL_GENERIC), 0);
}

/* hf_matmul_w, decode (n <= 4) and batched (n > 4: widened panels and
 * cblas_sgemm), float32 and bf16 compute, against the generic ISA. */
static void test_products_match_generic(void **state)
{
	static const size_t ns[] = { 1, 3, 4, 7 };

	(void)state;
	for (size_t i = 1; i < NISA; i++) {
		if (hf_matmul_set_isa(isas[i].isa))
			continue;
		for (size_t fi = 0; fi < NQ; fi++)
		for (size_t si = 0; si < NSHAPE; si++)
		for (unsigned v = 0; v < nvar(qfmts[fi]); v += 3) {
			const size_t out = shapes[si][0], in = shapes[si][1];
			struct qrand q;
			float *W, *x, *bias, *got, *want;
			double *mag;
			const size_t nmax = 7;

			if (!qrand_fits(qfmts[fi], out, in, v))
				continue;
			qrand_make(&q, qfmts[fi], out, in, v, 5 + v);
			W = malloc(out * in * sizeof(float));
			hf_weight_dequant(W, &q.w, 0, out, 0, in);
			x = qr_floats(&q, nmax * in, -1, 1);
			bias = qr_floats(&q, out, -1, 1);
			got = malloc(nmax * out * sizeof(float));
			want = malloc(nmax * out * sizeof(float));
			mag = malloc(nmax * out * sizeof(double));
			for (size_t ni = 0; ni < 4; ni++)
				for (int bf = 0; bf < 2; bf++) {
					size_t n = ns[ni];
					enum hf_dtype ct = bf ? HF_DTYPE_BF16 :
							   HF_DTYPE_F32;

					assert_int_equal(hf_matmul_set_isa(
						HF_MATMUL_GENERIC), 0);
					hf_matmul_w(want, x, &q.w, bias, n, ct,
						    NULL);
					assert_int_equal(hf_matmul_set_isa(
						isas[i].isa), 0);
					hf_matmul_w(got, x, &q.w, bias, n, ct,
						    NULL);
					mags(mag, x, W, bias, n, out, in);
					/* bf16: both round x and W alike (the
					 * widened panels are exact), so only the
					 * order of the sums differs */
					check_close(got, want, mag, n * out,
						    2e-5,
						    bf ? "hf_matmul_w bf16" :
						    "hf_matmul_w",
						    isas[i].name, qfmts[fi], v,
						    out, in, n);
				}
			free(W);
			free(x);
			free(bias);
			free(got);
			free(want);
			free(mag);
			qrand_free(&q);
		}
	}
	assert_int_equal(hf_matmul_set_isa(HF_MATMUL_GENERIC), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_isa_has_every_format),
		cmocka_unit_test(test_widen_is_dequant_bit_for_bit),
		cmocka_unit_test(test_gemv_rows_match_generic),
		cmocka_unit_test(test_products_match_generic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
