/* Tests for lib/train/ops_ln.c: GPT-2's Conv1D pair. The forward
 * against the plain loop of the same product (ops.h's
 * hf_linear_forward_ref on the transposed weight), the backward against
 * hf_linear_backward_ref on it and against central differences of its
 * own forward, on awkward sizes (odd in and out, row counts that are no
 * multiple of 8, out smaller than the threads), with no bias, on one
 * thread and on a pool of 3, and that the backward ADDS into what the
 * gradient buffers held. Tolerances as test/unit/train/ops.c: 1e-3
 * relative L2 for the differences with step 1e-2, 1e-5 relative for
 * the float32 product against the double-sum loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/pool.h"
#include "train/ops.h"
#include "train/ops_ln.h"

#define TOL 1e-3
#define STEP 1e-2

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static float unit(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((rng >> 16) % 2000001) / 1000000.0f - 1.0f;
}

static float *rnd(size_t n)
{
	float *p = malloc((n ? n : 1) * sizeof(float));

	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = unit();
	return p;
}

static float *zeros(size_t n)
{
	float *p = calloc(n ? n : 1, sizeof(float));

	assert_non_null(p);
	return p;
}

/* W (in, out) as the (out, in) matrix of a Linear */
static float *transpose(const float *w, size_t in, size_t out)
{
	float *t = zeros(in * out);

	for (size_t i = 0; i < in; i++)
		for (size_t o = 0; o < out; o++)
			t[o * in + i] = w[i * out + o];
	return t;
}

static void near(const char *what, const float *got, const float *want,
		 size_t n, double tol)
{
	double e2 = 0.0, n2 = 0.0;

	for (size_t i = 0; i < n; i++) {
		double d = (double)got[i] - want[i];

		e2 += d * d;
		n2 += (double)want[i] * want[i];
	}
	if (!(sqrt(e2) <= tol * sqrt(n2) + 1e-12)) {
		print_error("%s: rel L2 error %.3g\n", what, sqrt(e2 / n2));
		fail();
	}
}

struct cc {
	float *y, *x, *w, *b, *r;
	size_t n, in, out;
	struct hf_pool *pool;
};

/* L = sum r . conv1d(x) */
static double loss(const struct cc *c)
{
	double s = 0.0;

	hf_conv1d_forward(c->y, c->x, c->w, c->b, c->n, c->in, c->out,
			  c->pool);
	for (size_t i = 0; i < c->n * c->out; i++)
		s += (double)c->r[i] * c->y[i];
	return s;
}

static void fd(const char *what, struct cc *c, float *v, size_t nv,
	       const float *grad)
{
	double e2 = 0.0, n2 = 0.0;

	for (size_t i = 0; i < nv; i++) {
		float save = v[i], p = save + (float)STEP, m = save - (float)STEP;
		double lp, lm, q;

		v[i] = p;
		lp = loss(c);
		v[i] = m;
		lm = loss(c);
		v[i] = save;
		q = (lp - lm) / ((double)p - (double)m);
		e2 += (q - grad[i]) * (q - grad[i]);
		n2 += q * q;
	}
	if (!(sqrt(e2) <= TOL * sqrt(n2) + 1e-9)) {
		print_error("%s: rel L2 error %.3g against differences\n", what,
			    sqrt(e2 / n2));
		fail();
	}
}

static void one(size_t n, size_t in, size_t out, int bias,
		struct hf_pool *pool)
{
	struct cc c = { .n = n, .in = in, .out = out, .pool = pool };
	float *wt, *yref, *dx, *dw, *db, *dxr, *dwr, *dbr, *pre;

	c.x = rnd(n * in);
	c.w = rnd(in * out);
	c.b = bias ? rnd(out) : NULL;
	c.r = rnd(n * out);
	c.y = zeros(n * out);
	wt = transpose(c.w, in, out);
	yref = zeros(n * out);
	/* forward = the Linear on the transposed weight */
	hf_conv1d_forward(c.y, c.x, c.w, c.b, n, in, out, pool);
	hf_linear_forward_ref(yref, c.x, wt, c.b, n, in, out);
	near("forward", c.y, yref, n * out, 1e-5);
	/* backward = the Linear's (dW transposed), adding into what was */
	dx = rnd(n * in);
	dw = rnd(in * out);
	db = rnd(out);
	pre = zeros(n * in + in * out + out);
	memcpy(pre, dx, n * in * sizeof(float));
	memcpy(pre + n * in, dw, in * out * sizeof(float));
	memcpy(pre + n * in + in * out, db, out * sizeof(float));
	hf_conv1d_backward(dx, dw, bias ? db : NULL, c.r, c.x, c.w, n, in, out,
			   pool);
	dxr = zeros(n * in);
	dwr = zeros(in * out);
	dbr = zeros(out);
	hf_linear_backward_ref(dxr, dwr, bias ? dbr : NULL, c.r, c.x, wt, n,
			       in, out);
	{
		float *dwrt = zeros(in * out);

		for (size_t o = 0; o < out; o++)
			for (size_t i = 0; i < in; i++)
				dwrt[i * out + o] = dwr[o * in + i];
		for (size_t i = 0; i < n * in; i++)
			dxr[i] += pre[i];
		for (size_t i = 0; i < in * out; i++)
			dwrt[i] += pre[n * in + i];
		for (size_t i = 0; i < out; i++)
			dbr[i] = bias ? dbr[i] + pre[n * in + in * out + i] :
					pre[n * in + in * out + i];
		near("dx (adds)", dx, dxr, n * in, 1e-5);
		near("dW (adds)", dw, dwrt, in * out, 1e-5);
		near("db (adds; untouched when NULL)", db, dbr, out, 1e-6);
		free(dwrt);
	}
	/* against differences, from zero */
	memset(dx, 0, n * in * sizeof(float));
	memset(dw, 0, in * out * sizeof(float));
	memset(db, 0, out * sizeof(float));
	hf_conv1d_backward(dx, dw, bias ? db : NULL, c.r, c.x, c.w, n, in, out,
			   pool);
	fd("dx", &c, c.x, n * in, dx);
	fd("dW", &c, c.w, in * out, dw);
	if (bias)
		fd("db", &c, c.b, out, db);
	/* NULL gradients are skipped */
	hf_conv1d_backward(NULL, NULL, NULL, c.r, c.x, c.w, n, in, out, pool);
	free(c.x);
	free(c.w);
	free(c.b);
	free(c.r);
	free(c.y);
	free(wt);
	free(yref);
	free(dx);
	free(dw);
	free(db);
	free(dxr);
	free(dwr);
	free(dbr);
	free(pre);
}

static void test_conv1d(void **state)
{
	static const size_t sz[][3] = {
		{ 1, 1, 1 }, { 7, 13, 5 }, { 10, 16, 48 }, { 3, 33, 2 },
		{ 17, 9, 31 },
	};
	struct hf_pool *pool = NULL;
	struct hf_err err = { 0 };

	(void)state;
	assert_int_equal(hf_pool_create(&pool, 3, &err), 0);
	for (size_t i = 0; i < sizeof(sz) / sizeof(sz[0]); i++)
		for (int bias = 0; bias < 2; bias++) {
			one(sz[i][0], sz[i][1], sz[i][2], bias, NULL);
			one(sz[i][0], sz[i][1], sz[i][2], bias, pool);
		}
	hf_pool_free(pool);
}

/* no rows, or no input columns (y = b) */
static void test_conv1d_empty(void **state)
{
	float b[3] = { 1.0f, -2.0f, 0.5f }, y[6] = { 0 }, x[1] = { 0 };
	float w[1] = { 0 };

	(void)state;
	hf_conv1d_forward(y, x, w, b, 0, 4, 3, NULL);
	for (int i = 0; i < 6; i++)
		assert_true(y[i] == 0.0f);
	hf_conv1d_forward(y, x, w, b, 2, 0, 3, NULL);
	for (int i = 0; i < 6; i++)
		assert_true(y[i] == b[i % 3]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conv1d),
		cmocka_unit_test(test_conv1d_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
