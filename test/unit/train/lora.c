/* test/unit/train/lora.c: the LoRA op (lib/train/lora.c): scaling, PEFT's
 * init, the dropout mask, forward against the merged weight, backward
 * against central finite differences on awkward sizes, merge and
 * unmerge. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gen/gen.h"
#include "train/lora.h"

static uint64_t rs = 0x1234567;

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

static void test_scale_is_alpha_over_r_or_sqrt_r(void **state)
{
	(void)state;
	assert_float_equal(hf_lora_scale(16, 8, 0), 2.0f, 0);
	assert_float_equal(hf_lora_scale(16, 64, 0), 0.25f, 0);
	assert_float_equal(hf_lora_scale(16, 64, 1), 2.0f, 0);
	assert_float_equal(hf_lora_scale(8, 2, 1), (float)(8 / sqrt(2.0)), 0);
}

static void test_init_is_kaiming_uniform_and_zero_b(void **state)
{
	size_t r = 16, in = 100, out = 37;
	float *A = malloc(r * in * sizeof(float)), *A2 = malloc(r * in * sizeof(float));
	float *B = rnd(out * r);
	double sum = 0, mx = 0, bound = 1.0 / sqrt((double)in);

	(void)state;
	hf_lora_init(A, B, r, in, out, 42);
	for (size_t i = 0; i < r * in; i++) {
		assert_true(fabs(A[i]) <= bound);
		sum += A[i];
		if (fabs(A[i]) > mx)
			mx = fabs(A[i]);
	}
	for (size_t i = 0; i < out * r; i++)
		assert_true(B[i] == 0.0f);
	/* uniform on [-b, b]: mean 0 (sd b / sqrt(3 n)), the extremes near b */
	assert_true(fabs(sum / (double)(r * in)) < 4 * bound / sqrt(3.0 * r * in));
	assert_true(mx > 0.99 * bound);
	/* the same seed gives the same A, another seed another */
	hf_lora_init(A2, NULL, r, in, out, 42);
	assert_memory_equal(A, A2, r * in * sizeof(float));
	hf_lora_init(A2, NULL, r, in, out, 43);
	assert_memory_not_equal(A, A2, r * in * sizeof(float));
	free(A);
	free(A2);
	free(B);
}

static void test_dropout_mask_zeroes_p_and_scales_the_rest(void **state)
{
	size_t n = 10000, zeros = 0;
	float *u = malloc(n * sizeof(float)), *m = malloc(n * sizeof(float));

	(void)state;
	for (size_t i = 0; i < n; i++)
		u[i] = (frand() + 1.0f) * 0.5f;
	hf_lora_dropout_mask(m, u, n, 0.25f);
	for (size_t i = 0; i < n; i++) {
		if (m[i] == 0.0f)
			zeros++;
		else
			assert_float_equal(m[i], 1.0f / 0.75f, 1e-7);
		assert_true((m[i] == 0.0f) == (u[i] < 0.25f));
	}
	assert_true(zeros > 2300 && zeros < 2700);
	free(u);
	free(m);
}

/* y = x W^T + lora(x) equals x (W + scale B A)^T, W from hf_lora_merge */
static void forward_vs_merged(size_t n, size_t in, size_t r, size_t out)
{
	float *x = rnd(n * in), *A = rnd(r * in), *B = rnd(out * r);
	float *y = rnd(n * out), *y0 = malloc(n * out * sizeof(float));
	float *xa = malloc(n * r * sizeof(float));
	float *W = calloc(out * in, sizeof(float)), *Wt = calloc(out * in, sizeof(float));
	float scale = 0.7f;

	memcpy(y0, y, n * out * sizeof(float));
	hf_lora_forward(y, xa, x, NULL, A, B, n, in, r, out, scale);
	hf_lora_merge(W, A, B, in, r, out, scale, 0, 1);
	hf_lora_merge(Wt, A, B, in, r, out, scale, 1, 1);
	for (size_t t = 0; t < n; t++)
		for (size_t o = 0; o < out; o++) {
			double want = y0[t * out + o];

			for (size_t i = 0; i < in; i++) {
				want += (double)x[t * in + i] * W[o * in + i];
				/* fan_in_fan_out: the transpose */
				assert_true(Wt[i * out + o] == W[o * in + i]);
			}
			/* 1e-5: float32 products of values in [-1, 1], sums
			 * of at most in * r terms in double */
			if (fabs(y[t * out + o] - want) > 1e-5 * (1 + fabs(want)))
				fail_msg("y[%zu][%zu]: got %g want %g", t, o,
					 y[t * out + o], want);
		}
	/* unmerge gives back zero */
	hf_lora_merge(W, A, B, in, r, out, scale, 0, -1);
	for (size_t i = 0; i < out * in; i++)
		assert_true(fabs(W[i]) < 1e-6);
	free(x);
	free(A);
	free(B);
	free(y);
	free(y0);
	free(xa);
	free(W);
	free(Wt);
}

static void test_forward_equals_merged_weight(void **state)
{
	(void)state;
	forward_vs_merged(3, 7, 5, 11);
	forward_vs_merged(1, 13, 1, 2);
	forward_vs_merged(17, 33, 8, 9);
}

/* L = sum(g * y) with y = lora(x); the gradients of the backward pass
 * against central differences (L is linear in each of A, B and x
 * separately, so the differences are exact but for rounding). */
static double loss(const float *g, const float *x, const float *mask,
		   const float *A, const float *B, size_t n, size_t in,
		   size_t r, size_t out, float scale)
{
	float *y = calloc(n * out, sizeof(float)), *xa = malloc(n * r * sizeof(float));
	double L = 0;

	hf_lora_forward(y, xa, x, mask, A, B, n, in, r, out, scale);
	for (size_t i = 0; i < n * out; i++)
		L += (double)g[i] * y[i];
	free(y);
	free(xa);
	return L;
}

static void check_grad(const char *what, float *p, const float *dp, size_t np,
		       const float *g, const float *x, const float *mask,
		       const float *A, const float *B, size_t n, size_t in,
		       size_t r, size_t out, float scale)
{
	const float eps = 1e-2f;

	for (size_t i = 0; i < np; i++) {
		float keep = p[i];
		double lp, lm, fd;

		p[i] = keep + eps;
		lp = loss(g, x, mask, A, B, n, in, r, out, scale);
		p[i] = keep - eps;
		lm = loss(g, x, mask, A, B, n, in, r, out, scale);
		p[i] = keep;
		fd = (lp - lm) / (2.0 * eps);
		/* 2e-3 absolute + relative: float32 outputs (~1e-7
		 * relative) over a difference of 2e-2 */
		if (fabs(fd - dp[i]) > 2e-3 * (1 + fabs(fd)))
			fail_msg("d%s[%zu]: got %g, finite difference %g", what, i,
				 dp[i], fd);
	}
}

static void backward_fd(size_t n, size_t in, size_t r, size_t out, int drop)
{
	float *x = rnd(n * in), *A = rnd(r * in), *B = rnd(out * r);
	float *g = rnd(n * out), *mask = NULL, *xa = malloc(n * r * sizeof(float));
	float *y = calloc(n * out, sizeof(float)), *gxa = malloc(n * r * sizeof(float));
	float *dx = rnd(n * in), *dA = rnd(r * in), *dB = rnd(out * r);
	float *dx0 = malloc(n * in * sizeof(float)), *dA0 = malloc(r * in * sizeof(float));
	float *dB0 = malloc(out * r * sizeof(float));
	float scale = 1.3f;

	if (drop) {
		float *u = malloc(n * in * sizeof(float));

		mask = malloc(n * in * sizeof(float));
		for (size_t i = 0; i < n * in; i++)
			u[i] = (frand() + 1.0f) * 0.5f;
		hf_lora_dropout_mask(mask, u, n * in, 0.3f);
		free(u);
	}
	/* the backward adds: start from non-zero gradients */
	memcpy(dx0, dx, n * in * sizeof(float));
	memcpy(dA0, dA, r * in * sizeof(float));
	memcpy(dB0, dB, out * r * sizeof(float));
	hf_lora_forward(y, xa, x, mask, A, B, n, in, r, out, scale);
	hf_lora_backward(dx, dA, dB, gxa, g, x, mask, xa, A, B, n, in, r, out,
			 scale);
	for (size_t i = 0; i < n * in; i++)
		dx[i] -= dx0[i];
	for (size_t i = 0; i < r * in; i++)
		dA[i] -= dA0[i];
	for (size_t i = 0; i < out * r; i++)
		dB[i] -= dB0[i];
	check_grad("x", x, dx, n * in, g, x, mask, A, B, n, in, r, out, scale);
	check_grad("A", A, dA, r * in, g, x, mask, A, B, n, in, r, out, scale);
	check_grad("B", B, dB, out * r, g, x, mask, A, B, n, in, r, out, scale);
	/* NULL gradients are skipped */
	hf_lora_backward(NULL, NULL, NULL, gxa, g, x, mask, xa, A, B, n, in, r,
			 out, scale);
	free(x);
	free(A);
	free(B);
	free(g);
	free(mask);
	free(xa);
	free(y);
	free(gxa);
	free(dx);
	free(dA);
	free(dB);
	free(dx0);
	free(dA0);
	free(dB0);
}

static void test_backward_matches_finite_differences(void **state)
{
	(void)state;
	backward_fd(3, 7, 5, 11, 0);
	backward_fd(1, 13, 1, 2, 0);
	backward_fd(5, 9, 3, 6, 1);
	backward_fd(2, 31, 7, 3, 1);
}

/* The layer glue: the same numbers as the op with its own mask; a
 * recompute gives the same output; the next step draws a new mask. */
static void test_layer_recomputes_with_the_same_mask(void **state)
{
	size_t n = 4, in = 9, r = 3, out = 5;
	float *x = rnd(n * in), *A = rnd(r * in), *B = rnd(out * r);
	float *dy = rnd(n * out), *y1 = calloc(n * out, sizeof(float));
	float *y2 = calloc(n * out, sizeof(float)), *y3 = calloc(n * out, sizeof(float));
	float *dA = calloc(r * in, sizeof(float)), *dB = calloc(out * r, sizeof(float));
	float *dx = calloc(n * in, sizeof(float)), *dx2 = calloc(n * in, sizeof(float));
	float *dA2 = calloc(r * in, sizeof(float)), *dB2 = calloc(out * r, sizeof(float));
	float *xa = malloc(n * r * sizeof(float)), *g = malloc(n * r * sizeof(float));
	struct hf_rng rng;
	struct hf_err err = { 0 };
	struct hf_lora_layer l = { .in = in, .out = out, .r = r, .scale = 0.5f,
				   .dropout = 0.4f, .training = 1, .A = A,
				   .B = B, .dA = dA, .dB = dB, .rng = &rng };
	size_t zeros = 0;

	(void)state;
	hf_rng_seed(&rng, 1);
	assert_int_equal(hf_lora_layer_forward(&l, y1, x, n, 0, &err), 0);
	assert_int_equal(hf_lora_layer_forward(&l, y2, x, n, 1, &err), 0);
	assert_memory_equal(y1, y2, n * out * sizeof(float));
	for (size_t i = 0; i < n * in; i++)
		zeros += l.mask[i] == 0.0f;
	assert_true(zeros > 0 && zeros < n * in);
	assert_int_equal(hf_lora_layer_backward(&l, dx, dy, x, n, &err), 0);
	/* the op with that mask gives the same gradients */
	hf_lora_forward(y3, xa, x, l.mask, A, B, n, in, r, out, 0.5f);
	assert_memory_equal(y1, y3, n * out * sizeof(float));
	hf_lora_backward(dx2, dA2, dB2, g, dy, x, l.mask, xa, A, B, n, in, r,
			 out, 0.5f);
	assert_memory_equal(dx, dx2, n * in * sizeof(float));
	assert_memory_equal(dA, dA2, r * in * sizeof(float));
	assert_memory_equal(dB, dB2, out * r * sizeof(float));
	/* a new step, a new mask */
	memset(y2, 0, n * out * sizeof(float));
	assert_int_equal(hf_lora_layer_forward(&l, y2, x, n, 0, &err), 0);
	assert_memory_not_equal(y1, y2, n * out * sizeof(float));
	/* evaluation: no mask */
	l.training = 0;
	memset(y2, 0, n * out * sizeof(float));
	memset(y3, 0, n * out * sizeof(float));
	assert_int_equal(hf_lora_layer_forward(&l, y2, x, n, 0, &err), 0);
	hf_lora_forward(y3, xa, x, NULL, A, B, n, in, r, out, 0.5f);
	assert_memory_equal(y2, y3, n * out * sizeof(float));
	/* a backward of other rows than the forward's is refused */
	assert_int_equal(hf_lora_layer_backward(&l, dx, dy, x, n - 1, &err),
			 HF_EINTERNAL);
	hf_lora_layer_free(&l);
	free(x);
	free(A);
	free(B);
	free(dy);
	free(y1);
	free(y2);
	free(y3);
	free(dA);
	free(dB);
	free(dx);
	free(dx2);
	free(dA2);
	free(dB2);
	free(xa);
	free(g);
}

/* The sgemm paths against the plain loops (with and without a dropout
 * mask, sizes past one stack chunk of 512 columns and not a multiple of
 * it), outputs and every gradient. */
static void close_all(const char *what, const float *got, const float *want,
		      size_t n)
{
	for (size_t i = 0; i < n; i++)
		/* 1e-4 relative: float sums of up to 700 products of values
		 * in [-1, 1] against double ones */
		if (fabsf(got[i] - want[i]) > 1e-4f * (1.0f + fabsf(want[i])))
			fail_msg("%s[%zu]: got %g, want %g", what, i, got[i],
				 want[i]);
}

static void test_blas_paths_equal_the_plain_loops(void **state)
{
	(void)state;
	for (int drop = 0; drop < 2; drop++) {
		size_t n = 7, in = 700, r = 5, out = 37;
		float *x = rnd(n * in), *A = rnd(r * in), *B = rnd(out * r);
		float *dy = rnd(n * out), *mask = NULL;
		float *y = rnd(n * out), *y0 = malloc(n * out * sizeof(float));
		float *xa = malloc(n * r * sizeof(float));
		float *xa0 = malloc(n * r * sizeof(float));
		float *g = malloc(n * r * sizeof(float));
		float *g0 = malloc(n * r * sizeof(float));
		float *dx = rnd(n * in), *dA = rnd(r * in), *dB = rnd(out * r);
		float *dx0 = malloc(n * in * sizeof(float));
		float *dA0 = malloc(r * in * sizeof(float));
		float *dB0 = malloc(out * r * sizeof(float));

		if (drop) {
			float *u = malloc(n * in * sizeof(float));

			mask = malloc(n * in * sizeof(float));
			for (size_t i = 0; i < n * in; i++)
				u[i] = (frand() + 1.0f) * 0.5f;
			hf_lora_dropout_mask(mask, u, n * in, 0.3f);
			free(u);
		}
		memcpy(y0, y, n * out * sizeof(float));
		memcpy(dx0, dx, n * in * sizeof(float));
		memcpy(dA0, dA, r * in * sizeof(float));
		memcpy(dB0, dB, out * r * sizeof(float));
		hf_lora_forward(y, xa, x, mask, A, B, n, in, r, out, 0.7f);
		hf_lora_forward_ref(y0, xa0, x, mask, A, B, n, in, r, out, 0.7f);
		close_all("y", y, y0, n * out);
		close_all("xa", xa, xa0, n * r);
		hf_lora_backward(dx, dA, dB, g, dy, x, mask, xa0, A, B, n, in,
				 r, out, 0.7f);
		hf_lora_backward_ref(dx0, dA0, dB0, g0, dy, x, mask, xa0, A, B,
				     n, in, r, out, 0.7f);
		close_all("gxa", g, g0, n * r);
		close_all("dx", dx, dx0, n * in);
		close_all("dA", dA, dA0, r * in);
		close_all("dB", dB, dB0, out * r);
		free(x);
		free(A);
		free(B);
		free(dy);
		free(mask);
		free(y);
		free(y0);
		free(xa);
		free(xa0);
		free(g);
		free(g0);
		free(dx);
		free(dA);
		free(dB);
		free(dx0);
		free(dA0);
		free(dB0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scale_is_alpha_over_r_or_sqrt_r),
		cmocka_unit_test(test_init_is_kaiming_uniform_and_zero_b),
		cmocka_unit_test(test_dropout_mask_zeroes_p_and_scales_the_rest),
		cmocka_unit_test(test_forward_equals_merged_weight),
		cmocka_unit_test(test_backward_matches_finite_differences),
		cmocka_unit_test(test_layer_recomputes_with_the_same_mask),
		cmocka_unit_test(test_blas_paths_equal_the_plain_loops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
