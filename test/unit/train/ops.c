/* Tests for lib/train/ops.c and ops_attn.c: every backward kernel
 * against central differences of its own forward on random inputs of
 * awkward sizes (odd dims, row counts that are no multiple of 8 or 16,
 * 3 query heads on 1 kv head), and that backward ADDS into what the
 * gradient buffers held. The products (linear, the fused row views) run
 * on every ISA path of our GEMM (generic, AVX2, AVX-512: hf_matmul_set_isa,
 * skipped where the CPU lacks one); the other kernels are plain C with
 * no ISA dispatch.
 *
 * Tolerance. The forwards are float32 and the scalar loss L = sum r . y
 * (r random, which makes dy = r) is summed in double; a difference
 * quotient with step h then carries a rounding error of about
 * 1e-7 |L| / h plus the truncation error h^2 f''' / 6. With h = 1e-2 on
 * inputs of magnitude 1 both are near 1e-5 of the gradient's size, so
 * the L2 norm of (analytic - numeric) must be under 1e-3 of the
 * numeric gradient's norm: a wrong term (a missing factor, a sign, one
 * dropped element) shows as 1e-1 or more. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "tensor/matmul.h"
#include "train/ops.h"

#define TOL 1e-3
#define STEP 1e-2

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint32_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static float unit(void)
{
	return (float)(next() % 2000001) / 1000000.0f - 1.0f;
}

static float *rnd(size_t n, float scale)
{
	float *p = malloc((n ? n : 1) * sizeof(float));

	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = unit() * scale;
	return p;
}

static float *zeros(size_t n)
{
	float *p = calloc(n ? n : 1, sizeof(float));

	assert_non_null(p);
	return p;
}

/* The loss of the current inputs, the op's forward inside. */
typedef double (*loss_fn)(void *ctx);

static double dotd(const float *a, const float *b, size_t n)
{
	double s = 0.0;

	for (size_t i = 0; i < n; i++)
		s += (double)a[i] * b[i];
	return s;
}

/* Central differences of loss over every element of x against grad;
 * fails with the worst element when the relative L2 error passes tol. */
static void fd_check(const char *what, float *x, size_t n, const float *grad,
		     loss_fn loss, void *ctx, double tol)
{
	double e2 = 0.0, n2 = 0.0, worst = -1.0;
	size_t wi = 0;
	double wfd = 0.0;

	for (size_t i = 0; i < n; i++) {
		float save = x[i], xp = save + (float)STEP, xm = save - (float)STEP;
		double lp, lm, fd, d;

		x[i] = xp;
		lp = loss(ctx);
		x[i] = xm;
		lm = loss(ctx);
		x[i] = save;
		fd = (lp - lm) / ((double)xp - (double)xm);
		d = fd - grad[i];
		e2 += d * d;
		n2 += fd * fd;
		if (fabs(d) > worst) {
			worst = fabs(d);
			wi = i;
			wfd = fd;
		}
	}
	if (!(sqrt(e2) <= tol * sqrt(n2) + 1e-9)) {
		print_error("%s: rel L2 error %.3g (|fd| %.3g); worst [%zu] got "
			    "%.7g want %.7g\n", what, sqrt(e2) / sqrt(n2),
			    sqrt(n2), wi, grad[wi], wfd);
		fail();
	}
}

/* grad must hold what it held before plus delta (backward adds): the
 * check ran on a buffer that started at pre, here compared to one that
 * started at zero. */
static void check_adds(const char *what, const float *got, const float *pre,
		       const float *fresh, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fabsf(got[i] - (pre[i] + fresh[i])) >
		    1e-5f * (1.0f + fabsf(got[i]))) {
			print_error("%s: [%zu] %.7g, want %.7g + %.7g (backward "
				    "must add)\n", what, i, got[i], pre[i],
				    fresh[i]);
			fail();
		}
}

static const char *const isa_names[] = {
	[HF_MATMUL_GENERIC] = "generic",
	[HF_MATMUL_AVX2] = "avx2",
	[HF_MATMUL_AVX512] = "avx512",
};

/* ---- linear ---- */

struct lin_ctx {
	float *x, *w, *b, *r, *y;
	size_t n, in, out;
	/* fused: two row views [0, o1) and [o1, out) */
	size_t o1;
	struct hf_pool *pool;
};

static double lin_loss(void *c_)
{
	struct lin_ctx *c = c_;

	if (c->o1) {
		size_t o2 = c->out - c->o1;

		hf_linear_forward(c->y, c->x, c->w, c->b, c->n, c->in, c->o1,
				  c->pool);
		hf_linear_forward(c->y + c->n * c->o1, c->x, c->w + c->o1 * c->in,
				  c->b ? c->b + c->o1 : NULL, c->n, c->in, o2,
				  c->pool);
	} else {
		hf_linear_forward(c->y, c->x, c->w, c->b, c->n, c->in, c->out,
				  c->pool);
	}
	return dotd(c->y, c->r, c->n * c->out);
}

static void linear_case(size_t n, size_t in, size_t out, int bias,
			size_t o1, const char *isa, struct hf_pool *pool)
{
	struct lin_ctx c = { .n = n, .in = in, .out = out, .o1 = o1,
			     .pool = pool };
	float *dx = zeros(n * in), *dw = zeros(out * in), *db = zeros(out);
	float *pre = rnd(out * in, 1.0f), *dw2, *rx = zeros(n * in);
	float *rw = zeros(out * in), *rb = zeros(out);
	char what[96];

	c.x = rnd(n * in, 1.0f);
	c.w = rnd(out * in, 0.5f);
	c.b = bias ? rnd(out, 0.5f) : NULL;
	c.r = rnd(n * out, 1.0f);
	c.y = zeros(n * out);
	if (o1) {
		/* each view's backward on its rows of the fused gradient;
		 * r is laid out view by view, as lin_loss writes y */
		size_t o2 = out - o1;

		hf_linear_backward(dx, dw, bias ? db : NULL, c.r, c.x, c.w, n,
				   in, o1, pool);
		hf_linear_backward(dx, dw + o1 * in, bias ? db + o1 : NULL,
				   c.r + n * o1, c.x, c.w + o1 * in, n, in, o2, pool);
	} else {
		hf_linear_backward(dx, dw, bias ? db : NULL, c.r, c.x, c.w, n,
				   in, out, pool);
		hf_linear_backward_ref(rx, rw, bias ? rb : NULL, c.r, c.x, c.w,
				       n, in, out);
		for (size_t i = 0; i < n * in; i++)
			assert_float_equal(dx[i], rx[i],
					   1e-5 * (1 + fabsf(rx[i])));
		for (size_t i = 0; i < out * in; i++)
			assert_float_equal(dw[i], rw[i],
					   1e-5 * (1 + fabsf(rw[i])));
	}
	snprintf(what, sizeof(what), "%s linear n %zu in %zu out %zu%s%s%s dx",
		 isa, n, in, out, bias ? " bias" : "", o1 ? " fused" : "",
		 pool ? " 3 threads" : "");
	fd_check(what, c.x, n * in, dx, lin_loss, &c, TOL);
	what[strlen(what) - 1] = 'w';
	fd_check(what, c.w, out * in, dw, lin_loss, &c, TOL);
	if (bias) {
		what[strlen(what) - 1] = 'b';
		fd_check(what, c.b, out, db, lin_loss, &c, TOL);
	}
	/* adds: a second backward onto pre */
	dw2 = malloc(out * in * sizeof(float));
	memcpy(dw2, pre, out * in * sizeof(float));
	memset(rw, 0, out * in * sizeof(float));
	if (!o1) {
		hf_linear_backward(NULL, dw2, NULL, c.r, c.x, c.w, n, in, out, pool);
		hf_linear_backward(NULL, rw, NULL, c.r, c.x, c.w, n, in, out, pool);
		check_adds("linear dw", dw2, pre, rw, out * in);
	}
	free(dx), free(dw), free(db), free(pre), free(dw2), free(rx);
	free(rw), free(rb), free(c.x), free(c.w), free(c.b), free(c.r);
	free(c.y);
}

static void linear_on(enum hf_matmul_isa isa)
{
	struct hf_pool *pools[2] = { NULL, NULL };
	struct hf_err err = { 0 };

	if (hf_matmul_set_isa(isa)) {
		printf("# %s: not on this CPU, skipped\n", isa_names[isa]);
		skip();
	}
	assert_int_equal(hf_pool_create(&pools[1], 3, &err), 0);
	for (int p = 0; p < 2; p++) {
		/* n 1 (the matrix-vector path), 7, 17, 33 (no multiple
		 * of 8 or 16); odd in and out, fewer outputs than
		 * threads */
		linear_case(1, 13, 11, 1, 0, isa_names[isa], pools[p]);
		linear_case(7, 13, 11, 0, 0, isa_names[isa], pools[p]);
		linear_case(17, 21, 9, 1, 0, isa_names[isa], pools[p]);
		linear_case(33, 19, 35, 1, 0, isa_names[isa], pools[p]);
		linear_case(5, 2, 2, 1, 0, isa_names[isa], pools[p]);
		/* fused q/k/v-like and gate/up-like row views */
		linear_case(7, 13, 15, 1, 9, isa_names[isa], pools[p]);
		linear_case(17, 11, 22, 0, 11, isa_names[isa], pools[p]);
	}
	hf_pool_free(pools[1]);
	/* the forward against its reference on this ISA */
	{
		size_t n = 19, in = 23, out = 29;
		float *x = rnd(n * in, 1), *w = rnd(out * in, 1), *b = rnd(out, 1);
		float *y = zeros(n * out), *yr = zeros(n * out);

		hf_linear_forward(y, x, w, b, n, in, out, NULL);
		hf_linear_forward_ref(yr, x, w, b, n, in, out);
		for (size_t i = 0; i < n * out; i++)
			assert_float_equal(y[i], yr[i], 1e-4 * (1 + fabsf(yr[i])));
		free(x), free(w), free(b), free(y), free(yr);
	}
	hf_matmul_set_isa(HF_MATMUL_GENERIC);
}

static void test_linear_generic(void **state)
{
	(void)state;
	linear_on(HF_MATMUL_GENERIC);
}

static void test_linear_avx2(void **state)
{
	(void)state;
	linear_on(HF_MATMUL_AVX2);
}

static void test_linear_avx512(void **state)
{
	(void)state;
	linear_on(HF_MATMUL_AVX512);
}

/* ---- gather, scale, add ---- */

struct emb_ctx {
	float *table, *r, *y, s;
	int32_t *ids;
	size_t n, rows, dim;
};

static double emb_loss(void *c_)
{
	struct emb_ctx *c = c_;

	hf_embed_forward(c->y, c->table, c->ids, c->n, c->dim);
	hf_scale_forward(c->y, c->y, c->n * c->dim, c->s);
	return dotd(c->y, c->r, c->n * c->dim);
}

static void test_embedding_and_scale(void **state)
{
	struct emb_ctx c = { .n = 11, .rows = 5, .dim = 7, .s = 2.5f };
	int32_t ids[11] = { 0, 3, 3, 1, 4, 0, 2, 3, 4, 4, 1 };
	float *dy, *dt;

	(void)state;
	c.ids = ids;
	c.table = rnd(c.rows * c.dim, 1);
	c.r = rnd(c.n * c.dim, 1);
	c.y = zeros(c.n * c.dim);
	dy = zeros(c.n * c.dim);
	dt = zeros(c.rows * c.dim);
	hf_scale_backward(dy, c.r, c.n * c.dim, c.s);
	hf_embed_backward(dt, dy, ids, c.n, c.dim);
	fd_check("embedding (repeated ids) times 2.5", c.table,
		 c.rows * c.dim, dt, emb_loss, &c, TOL);
	free(c.table), free(c.r), free(c.y), free(dy), free(dt);
}

static void test_add_backward_adds_to_both(void **state)
{
	float a[5] = { 1, 2, 3, 4, 5 }, b[5] = { 5, 4, 3, 2, 1 }, y[5];
	float da[5] = { 1, 1, 1, 1, 1 }, db[5] = { 0 }, dy[5] = { 1, 2, 3, 4, 5 };

	(void)state;
	hf_add_forward(y, a, b, 5);
	for (int i = 0; i < 5; i++)
		assert_float_equal(y[i], 6.0f, 0);
	hf_add_backward(da, db, dy, 5);
	for (int i = 0; i < 5; i++) {
		assert_float_equal(da[i], 1.0f + dy[i], 0);
		assert_float_equal(db[i], dy[i], 0);
	}
}

/* ---- norms ---- */

struct norm_ctx {
	float *x, *w, *b, *r, *y, *s1, *s2;
	size_t rows, cols;
	int add_one, layer;
};

static double norm_loss(void *c_)
{
	struct norm_ctx *c = c_;

	if (c->layer)
		hf_layernorm_forward(c->y, c->s1, c->s2, c->x, c->w, c->b,
				     c->rows, c->cols, 1e-5f);
	else
		hf_rmsnorm_forward(c->y, c->s1, c->x, c->w, c->rows, c->cols,
				   1e-6f, c->add_one);
	return dotd(c->y, c->r, c->rows * c->cols);
}

static void norm_case(int layer, int add_one, int weight, size_t rows,
		      size_t cols)
{
	struct norm_ctx c = { .rows = rows, .cols = cols, .add_one = add_one,
			      .layer = layer };
	size_t n = rows * cols;
	float *dx = zeros(n), *dw = zeros(cols), *db = zeros(cols);
	char what[80];

	c.x = rnd(n, 2);
	c.w = weight ? rnd(cols, 1) : NULL;
	c.b = layer ? rnd(cols, 1) : NULL;
	c.r = rnd(n, 1);
	c.y = zeros(n);
	c.s1 = zeros(rows);
	c.s2 = zeros(rows);
	norm_loss(&c);
	if (layer)
		hf_layernorm_backward(dx, dw, db, c.r, c.x, c.w, c.s1, c.s2,
				      rows, cols);
	else
		hf_rmsnorm_backward(dx, dw, c.r, c.x, c.w, c.s1, rows, cols,
				    add_one);
	snprintf(what, sizeof(what), "%s%s%s %zux%zu dx",
		 layer ? "layernorm" : "rmsnorm", add_one ? " (1+w)" : "",
		 weight ? "" : " no weight", rows, cols);
	fd_check(what, c.x, n, dx, norm_loss, &c, TOL);
	if (weight) {
		what[strlen(what) - 1] = 'w';
		fd_check(what, c.w, cols, dw, norm_loss, &c, TOL);
	}
	if (layer) {
		what[strlen(what) - 1] = 'b';
		fd_check(what, c.b, cols, db, norm_loss, &c, TOL);
	}
	free(dx), free(dw), free(db), free(c.x), free(c.w), free(c.b);
	free(c.r), free(c.y), free(c.s1), free(c.s2);
}

static void test_rmsnorm(void **state)
{
	(void)state;
	norm_case(0, 0, 1, 7, 13);
	norm_case(0, 1, 1, 9, 33);	/* Gemma */
	norm_case(0, 0, 1, 21, 5);	/* per-head q/k norm shape */
	norm_case(0, 0, 0, 3, 17);
}

static void test_layernorm(void **state)
{
	(void)state;
	norm_case(1, 0, 1, 7, 13);
	norm_case(1, 0, 1, 5, 31);
}

/* ---- RoPE ---- */

struct rope_ctx {
	float *x, *xr, *inv, *r, sc;
	int32_t *pos;
	size_t ntok, heads, hd, rot;
	enum hf_rope_mode mode;
};

static double rope_loss(void *c_)
{
	struct rope_ctx *c = c_;
	size_t n = c->ntok * c->heads * c->hd;

	memcpy(c->xr, c->x, n * sizeof(float));
	hf_rope_forward(c->xr, c->pos, c->inv, c->ntok, c->heads, c->hd,
			c->rot, c->mode, c->sc);
	return dotd(c->xr, c->r, n);
}

static void rope_case(enum hf_rope_mode mode, size_t hd, size_t rot,
		      float sc)
{
	struct rope_ctx c = { .ntok = 9, .heads = 3, .hd = hd, .rot = rot,
			      .mode = mode, .sc = sc };
	size_t n = c.ntok * c.heads * hd;
	int32_t pos[9] = { 0, 1, 2, 3, 17, 5, 100, 7, 4095 };
	float *dx = zeros(n);
	char what[80];

	c.pos = pos;
	c.x = rnd(n, 1);
	c.xr = zeros(n);
	c.r = rnd(n, 1);
	/* any table: rope.c's scalings (linear, llama3, yarn, dynamic,
	 * longrope) differ only in inv_freq and sc */
	c.inv = rnd(rot / 2, 1);
	for (size_t i = 0; i < rot / 2; i++)
		c.inv[i] = fabsf(c.inv[i]) / (float)(i + 1);
	hf_rope_backward(dx, c.r, pos, c.inv, c.ntok, c.heads, hd, rot, mode,
			 sc);
	snprintf(what, sizeof(what), "rope %s head %zu rot %zu scale %g",
		 mode == HF_ROPE_HALF ? "half" : "interleaved", hd, rot, sc);
	fd_check(what, c.x, n, dx, rope_loss, &c, TOL);
	free(dx), free(c.x), free(c.xr), free(c.r), free(c.inv);
}

static void test_rope(void **state)
{
	(void)state;
	rope_case(HF_ROPE_HALF, 10, 10, 1.0f);
	rope_case(HF_ROPE_HALF, 12, 6, 1.0f);	/* partial rotary */
	rope_case(HF_ROPE_HALF, 8, 8, 1.2f);	/* yarn's attention factor */
	rope_case(HF_ROPE_INTERLEAVED, 10, 10, 1.0f);
	rope_case(HF_ROPE_INTERLEAVED, 14, 8, 0.9f);
}

/* ---- attention ---- */

struct attn_ctx {
	float *q, *k, *v, *o, *lse, *r;
	int32_t *mask;
	size_t B, T, hq, hkv, d, window;
	int causal;
	float scale;
	struct hf_pool *pool;
};

static double attn_loss(void *c_)
{
	struct attn_ctx *c = c_;

	hf_attention_forward(c->o, c->lse, c->q, c->k, c->v, c->mask, c->B,
			     c->T, c->hq, c->hkv, c->d, c->causal, c->window,
			     c->scale, c->pool);
	return dotd(c->o, c->r, c->B * c->T * c->hq * c->d);
}

/* Eager attention, in double: softmax of masked scores, then . v. */
static void attn_naive(const struct attn_ctx *c, float *o)
{
	size_t T = c->T, d = c->d, rep = c->hq / c->hkv;

	for (size_t b = 0; b < c->B; b++)
		for (size_t h = 0; h < c->hq; h++)
			for (size_t t = 0; t < T; t++) {
				double s[64], mx = -INFINITY, sum = 0.0;
				const float *q = c->q + ((b * T + t) * c->hq + h) * d;
				float *ot = o + ((b * T + t) * c->hq + h) * d;

				for (size_t j = 0; j < T; j++) {
					const float *kj = c->k + ((b * T + j) * c->hkv + h / rep) * d;
					int vis = (!c->mask || c->mask[b * T + j]) &&
						  (!c->causal || j <= t) &&
						  (!c->window || (j <= t ? t - j : j - t) < c->window);

					s[j] = vis ? c->scale * dotd(q, kj, d) : -INFINITY;
					mx = s[j] > mx ? s[j] : mx;
				}
				for (size_t j = 0; j < T; j++)
					sum += s[j] == -INFINITY ? 0 : exp(s[j] - mx);
				for (size_t i = 0; i < d; i++) {
					double acc = 0.0;

					for (size_t j = 0; j < T; j++)
						if (s[j] != -INFINITY)
							acc += exp(s[j] - mx) / sum *
							       c->v[((b * T + j) * c->hkv + h / rep) * d + i];
					ot[i] = sum > 0 ? (float)acc : 0.0f;
				}
			}
}

static void attn_case(size_t B, size_t T, size_t hq, size_t hkv, size_t d,
		      int causal, size_t window, int masked,
		      struct hf_pool *pool)
{
	struct attn_ctx c = { .B = B, .T = T, .hq = hq, .hkv = hkv, .d = d,
			      .causal = causal, .window = window,
			      .scale = 1.0f / sqrtf((float)d), .pool = pool };
	size_t nq = B * T * hq * d, nk = B * T * hkv * d;
	float *dq = zeros(nq), *dk = zeros(nk), *dv = zeros(nk), *on = zeros(nq);
	int32_t *mask = NULL;
	char what[128];

	if (masked) {
		mask = malloc(B * T * sizeof(*mask));
		for (size_t i = 0; i < B * T; i++)
			mask[i] = 1;
		/* right padding in row 0, left padding in the last row */
		mask[T - 1] = mask[T - 2] = 0;
		mask[(B - 1) * T] = 0;
	}
	c.mask = mask;
	c.q = rnd(nq, 1.5f);
	c.k = rnd(nk, 1.5f);
	c.v = rnd(nk, 1);
	c.r = rnd(nq, 1);
	c.o = zeros(nq);
	c.lse = zeros(B * hq * T);
	attn_loss(&c);
	attn_naive(&c, on);
	for (size_t i = 0; i < nq; i++)
		if (fabsf(c.o[i] - on[i]) > 1e-5f) {
			print_error("attention forward [%zu] %.7g, eager %.7g\n", i,
				    c.o[i], on[i]);
			fail();
		}
	hf_attention_backward(dq, dk, dv, c.r, c.q, c.k, c.v, c.o, c.lse, mask,
			      B, T, hq, hkv, d, causal, window, c.scale, pool);
	snprintf(what, sizeof(what),
		 "attention B %zu T %zu hq %zu hkv %zu d %zu%s%s%s%s dq", B, T,
		 hq, hkv, d, causal ? " causal" : " full",
		 window ? " window" : "", masked ? " padded" : "",
		 pool ? " 2 threads" : "");
	fd_check(what, c.q, nq, dq, attn_loss, &c, TOL);
	what[strlen(what) - 1] = 'k';
	fd_check(what, c.k, nk, dk, attn_loss, &c, TOL);
	what[strlen(what) - 1] = 'v';
	fd_check(what, c.v, nk, dv, attn_loss, &c, TOL);
	free(dq), free(dk), free(dv), free(on), free(mask), free(c.q);
	free(c.k), free(c.v), free(c.r), free(c.o), free(c.lse);
}

static void test_attention_causal_gqa(void **state)
{
	(void)state;
	attn_case(2, 7, 3, 1, 5, 1, 0, 0, NULL);	/* MQA, 3 on 1 */
	attn_case(1, 9, 4, 2, 6, 1, 0, 0, NULL);	/* GQA */
	attn_case(2, 5, 2, 2, 3, 1, 0, 0, NULL);	/* MHA */
}

static void test_attention_sliding_window(void **state)
{
	(void)state;
	attn_case(2, 9, 3, 1, 5, 1, 3, 0, NULL);
	attn_case(1, 11, 2, 1, 4, 1, 1, 0, NULL);	/* sees itself only */
}

static void test_attention_full_with_padding(void **state)
{
	(void)state;
	attn_case(2, 7, 3, 1, 5, 0, 0, 1, NULL);	/* encoders */
	attn_case(2, 7, 4, 2, 3, 1, 0, 1, NULL);	/* padded decoder */
}

static void test_attention_threads_agree(void **state)
{
	struct hf_pool *p;
	struct hf_err err = { 0 };

	(void)state;
	assert_int_equal(hf_pool_create(&p, 2, &err), 0);
	attn_case(3, 6, 6, 3, 5, 1, 0, 1, p);
	hf_pool_free(p);
}

/* ---- activations, GLU ---- */

struct act_ctx {
	float *x, *u, *y, *r;
	size_t n;
	enum hf_act act;
	int glu;
};

static double act_loss(void *c_)
{
	struct act_ctx *c = c_;

	if (c->glu)
		hf_glu_forward(c->y, c->x, c->u, c->n, c->act);
	else
		hf_act_forward(c->y, c->x, c->n, c->act);
	return dotd(c->y, c->r, c->n);
}

static void test_activations(void **state)
{
	static const char *const names[] = { "silu", "gelu erf", "gelu tanh",
					      "relu", "tanh" };

	(void)state;
	for (int a = 0; a < HF_ACT_COUNT; a++) {
		struct act_ctx c = { .n = 37, .act = (enum hf_act)a };
		float *dx = zeros(c.n);
		char what[64];

		c.x = rnd(c.n, 3);
		/* no input within a step of relu's kink */
		for (size_t i = 0; i < c.n; i++)
			if (fabsf(c.x[i]) < 0.05f)
				c.x[i] = 0.5f;
		c.y = zeros(c.n);
		c.r = rnd(c.n, 1);
		hf_act_backward(dx, c.r, c.x, c.n, c.act);
		snprintf(what, sizeof(what), "act %s", names[a]);
		fd_check(what, c.x, c.n, dx, act_loss, &c, TOL);
		free(dx), free(c.x), free(c.y), free(c.r);
	}
}

static void test_glu(void **state)
{
	enum hf_act acts[3] = { HF_ACT_SILU, HF_ACT_GELU_TANH, HF_ACT_GELU_ERF };

	(void)state;
	for (int a = 0; a < 3; a++) {
		struct act_ctx c = { .n = 45, .act = acts[a], .glu = 1 };
		float *dg = zeros(c.n), *du = zeros(c.n);

		c.x = rnd(c.n, 3);
		c.u = rnd(c.n, 2);
		c.y = zeros(c.n);
		c.r = rnd(c.n, 1);
		hf_glu_backward(dg, du, c.r, c.x, c.u, c.n, c.act);
		fd_check("glu dgate", c.x, c.n, dg, act_loss, &c, TOL);
		fd_check("glu dup", c.u, c.n, du, act_loss, &c, TOL);
		free(dg), free(du), free(c.x), free(c.u), free(c.y), free(c.r);
	}
}

/* ---- MoE ---- */

struct route_ctx {
	float *logits, *w, *r;
	int32_t *idx;
	size_t T, E, k;
};

static double route_loss(void *c_)
{
	struct route_ctx *c = c_;

	hf_moe_route_forward(c->w, c->idx, c->logits, c->T, c->E, c->k);
	return dotd(c->w, c->r, c->T * c->k);
}

static void test_moe_routing(void **state)
{
	struct route_ctx c = { .T = 7, .E = 5, .k = 2 };
	float *dl = zeros(c.T * c.E);

	(void)state;
	/* logits 0.4 apart in a random order: the top k stay the top k
	 * under a step of 0.01 */
	c.logits = zeros(c.T * c.E);
	for (size_t t = 0; t < c.T; t++)
		for (size_t e = 0; e < c.E; e++) {
			size_t j = (e * 3 + t) % c.E;

			c.logits[t * c.E + j] = 0.4f * (float)e + 0.05f * unit();
		}
	c.w = zeros(c.T * c.k);
	c.r = rnd(c.T * c.k, 1);
	c.idx = malloc(c.T * c.k * sizeof(*c.idx));
	route_loss(&c);
	for (size_t t = 0; t < c.T; t++) {
		/* best first, weights summing to 1 */
		assert_true(c.logits[t * c.E + c.idx[t * 2]] >
			    c.logits[t * c.E + c.idx[t * 2 + 1]]);
		assert_float_equal(c.w[t * 2] + c.w[t * 2 + 1], 1.0f, 1e-6);
	}
	hf_moe_route_backward(dl, c.r, c.w, c.idx, c.T, c.E, c.k);
	fd_check("moe routing top-2 of 5", c.logits, c.T * c.E, dl, route_loss,
		 &c, TOL);
	free(dl), free(c.logits), free(c.w), free(c.r), free(c.idx);
}

struct comb_ctx {
	float *x, *w, *y, *r;
	int32_t *rows;
	size_t n, dim, ny;
};

static double comb_loss(void *c_)
{
	struct comb_ctx *c = c_;

	memset(c->y, 0, c->ny * c->dim * sizeof(float));
	hf_moe_combine_forward(c->y, c->x, c->w, c->rows, c->n, c->dim);
	return dotd(c->y, c->r, c->ny * c->dim);
}

static void test_moe_combine(void **state)
{
	int32_t rows[9] = { 0, 2, 3, 1, 2, 0, 3, 1, 4 };
	struct comb_ctx c = { .n = 9, .dim = 7, .ny = 5, .rows = rows };
	float *dx = zeros(c.n * c.dim), *dw = zeros(c.n);

	(void)state;
	c.x = rnd(c.n * c.dim, 1);
	c.w = rnd(c.n, 1);
	c.y = zeros(c.ny * c.dim);
	c.r = rnd(c.ny * c.dim, 1);
	hf_moe_combine_backward(dx, dw, c.r, c.x, c.w, rows, c.n, c.dim);
	fd_check("moe combine dx", c.x, c.n * c.dim, dx, comb_loss, &c, TOL);
	fd_check("moe combine dw", c.w, c.n, dw, comb_loss, &c, TOL);
	free(dx), free(dw), free(c.x), free(c.w), free(c.y), free(c.r);
}

/* ---- softcap, cross-entropy ---- */

struct cap_ctx {
	float *x, *y, *r;
	size_t n;
};

static double cap_loss(void *c_)
{
	struct cap_ctx *c = c_;

	hf_softcap_forward(c->y, c->x, c->n, 3.0f);
	return dotd(c->y, c->r, c->n);
}

static void test_softcap(void **state)
{
	struct cap_ctx c = { .n = 23 };
	float *dx = zeros(c.n);

	(void)state;
	c.x = rnd(c.n, 8);
	c.y = zeros(c.n);
	c.r = rnd(c.n, 1);
	cap_loss(&c);
	hf_softcap_backward(dx, c.r, c.y, c.n, 3.0f);
	fd_check("softcap 3", c.x, c.n, dx, cap_loss, &c, TOL);
	free(dx), free(c.x), free(c.y), free(c.r);
}

struct xent_ctx {
	float *logits, *lse;
	int32_t *tgt;
	size_t n, V, count;
	struct hf_pool *pool;
};

static double xent_loss(void *c_)
{
	struct xent_ctx *c = c_;
	double s = hf_xent_forward(c->lse, c->logits, c->tgt, c->n, c->V,
				   &c->count, c->pool);

	return s / (double)c->count;
}

static void test_cross_entropy_ignores_minus_100(void **state)
{
	int32_t tgt[9] = { 3, -100, 0, 12, -100, 12, 5, 1, -100 };
	struct xent_ctx c = { .n = 9, .V = 13, .tgt = tgt };
	float *dl = zeros(c.n * c.V);
	double loss, want = 0.0;

	(void)state;
	c.logits = rnd(c.n * c.V, 4);
	c.lse = zeros(c.n);
	loss = xent_loss(&c);
	assert_int_equal(c.count, 6);
	for (size_t r = 0; r < c.n; r++) {
		double s = 0.0;

		if (tgt[r] == HF_IGNORE_INDEX)
			continue;
		for (size_t i = 0; i < c.V; i++)
			s += exp((double)c.logits[r * c.V + i]);
		want += log(s) - c.logits[r * c.V + tgt[r]];
	}
	assert_float_equal(loss, want / 6.0, 1e-6);
	hf_xent_backward(dl, c.logits, c.lse, tgt, c.n, c.V, 1.0f / 6.0f, NULL);
	/* rows with -100 get no gradient at all */
	for (size_t i = 0; i < c.V; i++)
		assert_float_equal(dl[1 * c.V + i], 0.0f, 0);
	fd_check("cross-entropy mean over counted rows", c.logits, c.n * c.V,
		 dl, xent_loss, &c, TOL);
	/* on 3 threads: the same loss, count and gradient */
	{
		struct hf_err err = { 0 };
		float *dl3 = zeros(c.n * c.V);

		assert_int_equal(hf_pool_create(&c.pool, 3, &err), 0);
		assert_float_equal(xent_loss(&c), loss, 1e-12);
		assert_int_equal(c.count, 6);
		hf_xent_backward(dl3, c.logits, c.lse, tgt, c.n, c.V,
				 1.0f / 6.0f, c.pool);
		for (size_t i = 0; i < c.n * c.V; i++)
			assert_float_equal(dl3[i], dl[i], 0);
		hf_pool_free(c.pool);
		free(dl3);
	}
	free(dl), free(c.logits), free(c.lse);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_linear_generic),
		cmocka_unit_test(test_linear_avx2),
		cmocka_unit_test(test_linear_avx512),
		cmocka_unit_test(test_embedding_and_scale),
		cmocka_unit_test(test_add_backward_adds_to_both),
		cmocka_unit_test(test_rmsnorm),
		cmocka_unit_test(test_layernorm),
		cmocka_unit_test(test_rope),
		cmocka_unit_test(test_attention_causal_gqa),
		cmocka_unit_test(test_attention_sliding_window),
		cmocka_unit_test(test_attention_full_with_padding),
		cmocka_unit_test(test_attention_threads_agree),
		cmocka_unit_test(test_activations),
		cmocka_unit_test(test_glu),
		cmocka_unit_test(test_moe_routing),
		cmocka_unit_test(test_moe_combine),
		cmocka_unit_test(test_softcap),
		cmocka_unit_test(test_cross_entropy_ignores_minus_100),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
