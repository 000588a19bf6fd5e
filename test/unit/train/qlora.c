/* test/unit/train/qlora.c: the frozen quantized linear of QLoRA
 * (lib/train/qlora.c). For a random weight in every format of
 * tensor/wfmt.h (test/unit/quant/qrand.h: nf4/fp4 with and without
 * double quantization, int8, GPTQ, AWQ, BitNet, FP8, the plain ones),
 * its forward and its dx (and db) equal the float linear of
 * lib/train/ops.h over the dequantized weight (hf_linear_*_ref, sums in
 * double) within 1e-5 of the sum of |terms| of each output, on sizes
 * that leave a partial tile of rows and blocks across rows, on one
 * thread and on three (the columns of dx split). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../quant/qrand.h"
#include "core/pool.h"
#include "train/ops.h"
#include "train/qlora.h"

#define TOL 1e-5

static uint64_t rs = 0x5eed;

static float frand(void)	/* uniform in [-1, 1) */
{
	rs = rs * 6364136223846793005ull + 1442695040888963407ull;
	return (float)((rs >> 40) * 0x1p-24) * 2.0f - 1.0f;
}

static float *rnd(size_t n)
{
	float *p = malloc((n ? n : 1) * sizeof(float));

	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = frand();
	return p;
}

/* |got - want| <= TOL * scale[i] + 1e-6 for every i, else fail naming
 * what and where. */
static void near(const float *got, const float *want, const double *scale,
		 size_t n, const char *what, enum hf_wfmt f, size_t rows,
		 size_t cols)
{
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - want[i]);

		if (!(d <= TOL * scale[i] + 1e-6))
			fail_msg("%s of %s (%zu, %zu) at %zu: %.9g, want %.9g "
				 "(scale %g)", what, hf_wfmt_name(f), rows,
				 cols, i, got[i], want[i], scale[i]);
	}
}

static void check(enum hf_wfmt f, size_t rows, size_t cols, unsigned v,
		  size_t n, struct hf_pool *pool)
{
	struct qrand q;
	float *W, *x, *b, *y, *yr, *dy, *dx, *dxr, *db, *dbr, *scr;
	double *sy, *sx, *sb;

	qrand_make(&q, f, rows, cols, v, (uint32_t)(rows * 131 + cols + v));
	W = malloc(rows * cols * sizeof(float));
	assert_non_null(W);
	hf_weight_dequant(W, &q.w, 0, rows, 0, cols);
	x = rnd(n * cols);
	b = rnd(rows);
	dy = rnd(n * rows);
	dx = rnd(n * cols);	/* the backward adds into what is there */
	db = rnd(rows);
	y = malloc(n * rows * sizeof(float));
	yr = malloc(n * rows * sizeof(float));
	dxr = malloc(n * cols * sizeof(float));
	dbr = malloc(rows * sizeof(float));
	scr = malloc(hf_qlinear_scratch(cols) * sizeof(float));
	sy = calloc(n * rows, sizeof(double));
	sx = calloc(n * cols, sizeof(double));
	sb = calloc(rows, sizeof(double));
	assert_true(y && yr && dxr && dbr && scr && sy && sx && sb);
	memcpy(dxr, dx, n * cols * sizeof(float));
	memcpy(dbr, db, rows * sizeof(float));

	/* the forward against the float linear over the dequantized W */
	hf_qlinear_forward(y, x, &q.w, b, n, pool);
	hf_linear_forward_ref(yr, x, W, b, n, cols, rows);
	for (size_t r = 0; r < n; r++)
		for (size_t o = 0; o < rows; o++) {
			double s = fabs(b[o]);

			for (size_t i = 0; i < cols; i++)
				s += fabs((double)x[r * cols + i] *
					  W[o * cols + i]);
			sy[r * rows + o] = s;
		}
	near(y, yr, sy, n * rows, "forward", f, rows, cols);

	/* dx and db; dW is the reference's only (the weight is frozen) */
	hf_qlinear_backward(dx, db, dy, &q.w, n, scr, pool);
	hf_linear_backward_ref(dxr, NULL, dbr, dy, x, W, n, cols, rows);
	for (size_t r = 0; r < n; r++)
		for (size_t i = 0; i < cols; i++) {
			double s = fabs(dxr[r * cols + i]);

			for (size_t o = 0; o < rows; o++)
				s += fabs((double)dy[r * rows + o] *
					  W[o * cols + i]);
			sx[r * cols + i] = s;
		}
	for (size_t o = 0; o < rows; o++)
		for (size_t r = 0; r < n; r++)
			sb[o] += fabs(dy[r * rows + o]) + fabs(dbr[o]);
	near(dx, dxr, sx, n * cols, "dx", f, rows, cols);
	near(db, dbr, sb, rows, "db", f, rows, cols);

	/* dx alone (no bias) adds the same */
	memcpy(dx, dxr, n * cols * sizeof(float));
	hf_linear_backward_ref(dxr, NULL, NULL, dy, x, W, n, cols, rows);
	hf_qlinear_backward(dx, NULL, dy, &q.w, n, scr, pool);
	near(dx, dxr, sx, n * cols, "dx (no db)", f, rows, cols);

	free(W);
	free(x);
	free(b);
	free(y);
	free(yr);
	free(dy);
	free(dx);
	free(dxr);
	free(db);
	free(dbr);
	free(scr);
	free(sy);
	free(sx);
	free(sb);
	qrand_free(&q);
}

/* (rows, cols): a partial last tile of rows (HF_QLORA_TILE 64), nf4
 * blocks of 32 and 64 across rows (cols 37, 48), the sizes GPTQ and AWQ
 * need (multiples of 32 and 16). */
static const size_t sizes[][2] = { { 96, 64 }, { 70, 37 }, { 130, 48 },
				   { 64, 32 }, { 8, 16 } };

static void all_formats(struct hf_pool *pool)
{
	for (int f = 0; f < HF_WFMT_COUNT; f++)
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
			for (unsigned v = 0; v < 8; v++) {
				size_t rows = sizes[s][0], cols = sizes[s][1];

				if (!qrand_fits((enum hf_wfmt)f, rows, cols, v))
					continue;
				check((enum hf_wfmt)f, rows, cols, v,
				      1 + (v + s) % 7, pool);
			}
}

static void test_every_format_one_thread(void **state)
{
	(void)state;
	all_formats(NULL);
}

static void test_every_format_three_threads(void **state)
{
	struct hf_pool *pool = NULL;
	struct hf_err err = { 0 };

	(void)state;
	assert_int_equal(hf_pool_create(&pool, 3, &err), 0);
	all_formats(pool);
	hf_pool_free(pool);
}

/* The nf4 double-quant weight of hf-quantize --method nf4
 * --double-quant (blocks 64, nested 256) at a model's shape: dx over
 * many tiles (rows 300: 4 full tiles and a partial one). */
static void test_nf4_double_quant_model_shape(void **state)
{
	(void)state;
	check(HF_WFMT_BNB4DQ, 300, 96, 0, 9, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_format_one_thread),
		cmocka_unit_test(test_every_format_three_threads),
		cmocka_unit_test(test_nf4_double_quant_model_shape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
