/* test/unit/backend/ops.c: every CPU backend op (threaded, fused) against
 * its plain `_ref` loop on awkward sizes, and graph record/replay. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "backend/kvfmt.h"
#include "tensor/matmul.h"

static struct hf_backend *be;

static int setup(void **state)
{
	struct hf_err err = { 0 };

	return hf_backend_cpu_create(&be, 3, &err);
}

static int teardown(void **state)
{
	hf_backend_free(be);
	return 0;
}

static uint64_t rng = 88172645463325252ull;

static float frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* An I32 buffer of the cache columns past + t of B rows of T tokens. */
static struct hf_buf *colbuf(size_t B, size_t T, size_t past)
{
	struct hf_err err = { 0 };
	struct hf_buf *b;
	int32_t *c = malloc(B * T * sizeof(*c));

	for (size_t i = 0; i < B * T; i++)
		c[i] = (int32_t)(past + i % T);
	assert_int_equal(hf_buf_alloc(&b, be, HF_DTYPE_I32, B * T, &err), 0);
	assert_int_equal(hf_buf_upload(b, 0, c, B * T * sizeof(*c), &err), 0);
	free(c);
	return b;
}

static struct hf_buf *fbuf(size_t n, const float *init)
{
	struct hf_buf *b;
	struct hf_err err = { 0 };

	assert_int_equal(hf_buf_alloc(&b, be, HF_DTYPE_F32, n, &err), 0);
	if (init)
		memcpy(b->host, init, n * sizeof(float));
	return b;
}

static float *frandv(size_t n)
{
	float *v = malloc(n * sizeof(float));

	for (size_t i = 0; i < n; i++)
		v[i] = frand();
	return v;
}

/* Tolerance: float32 vs double sums and reordered float32 sums of at most
 * a few hundred terms of magnitude <= 1: well under 1e-5. */
static void expect_close(const float *got, const float *want, size_t n,
			 float tol)
{
	for (size_t i = 0; i < n; i++) {
		float d = fabsf(got[i] - want[i]);

		if (!(d <= tol * (1.0f + fabsf(want[i]))))
			fail_msg("index %zu: got %.8g want %.8g", i, got[i],
				 want[i]);
	}
}

static void test_rmsnorm_matches_ref(void **state)
{
	size_t rows = 131, cols = 77;
	float *x = frandv(rows * cols), *w = frandv(cols);
	float *want = malloc(rows * cols * sizeof(float));

	for (int add_one = 0; add_one < 2; add_one++) {
		struct hf_buf *bx = fbuf(rows * cols, x), *bw = fbuf(cols, w);
		struct hf_buf *by = fbuf(rows * cols, NULL);

		hf_op_rmsnorm(by, bx, bw, rows, cols, 1e-6f, add_one);
		hf_cpu_rmsnorm_ref(want, x, w, rows, cols, 1e-6f, add_one);
		expect_close(by->host, want, rows * cols, 1e-6f);
		/* in place */
		hf_op_rmsnorm(bx, bx, bw, rows, cols, 1e-6f, add_one);
		expect_close(bx->host, want, rows * cols, 1e-6f);
		hf_buf_free(bx);
		hf_buf_free(bw);
		hf_buf_free(by);
	}
	free(x);
	free(w);
	free(want);
}

static void test_layernorm_matches_ref(void **state)
{
	size_t rows = 129, cols = 67;
	float *x = frandv(rows * cols), *w = frandv(cols), *b = frandv(cols);
	float *want = malloc(rows * cols * sizeof(float));
	struct hf_buf *bx = fbuf(rows * cols, x), *bw = fbuf(cols, w);
	struct hf_buf *bb = fbuf(cols, b), *by = fbuf(rows * cols, NULL);

	for (size_t i = 0; i < rows * cols; i++)
		x[i] = x[i] * 3.0f + 5.0f;	/* a large mean */
	memcpy(bx->host, x, rows * cols * sizeof(float));
	hf_op_layernorm(by, bx, bw, bb, rows, cols, 1e-12f);
	hf_cpu_layernorm_ref(want, x, w, b, rows, cols, 1e-12f);
	expect_close(by->host, want, rows * cols, 2e-6f);
	hf_buf_free(bx);
	hf_buf_free(bw);
	hf_buf_free(bb);
	hf_buf_free(by);
	free(x);
	free(w);
	free(b);
	free(want);
}

static void test_rope_matches_ref_both_modes(void **state)
{
	size_t ntok = 203, heads = 3, hd = 24, rot = 20;
	struct hf_err err = { 0 };
	float *x = frandv(ntok * heads * hd);
	float *want = malloc(ntok * heads * hd * sizeof(float));
	float invf[10];
	int32_t pos[203];
	struct hf_buf *bp;

	for (size_t i = 0; i < rot / 2; i++)
		invf[i] = 1.0f / powf(10000.0f, (float)(2 * i) / (float)rot);
	for (size_t t = 0; t < ntok; t++)
		pos[t] = (int32_t)(t * 7 % 301);
	assert_int_equal(hf_buf_alloc(&bp, be, HF_DTYPE_I32, ntok, &err), 0);
	memcpy(bp->host, pos, sizeof(pos));
	for (int mode = 0; mode < 2; mode++) {
		struct hf_buf *bx = fbuf(ntok * heads * hd, x);
		struct hf_buf *bf = fbuf(rot / 2, invf);

		memcpy(want, x, ntok * heads * hd * sizeof(float));
		hf_op_rope(bx, bp, bf, ntok, heads, hd, rot, mode, 1.25f);
		hf_cpu_rope_ref(want, pos, invf, ntok, heads, hd, rot, mode,
				1.25f);
		expect_close(bx->host, want, ntok * heads * hd, 1e-6f);
		hf_buf_free(bx);
		hf_buf_free(bf);
	}
	hf_buf_free(bp);
	free(x);
	free(want);
}

static void test_rope_half_rotates_pairs_i_and_i_plus_half(void **state)
{
	/* one head of 4, angle pi/2 on pair (0, 2), 0 on pair (1, 3) */
	float x[4] = { 1, 2, 3, 4 }, invf[2] = { (float)M_PI / 2, 0 };
	int32_t pos[1] = { 1 };

	hf_cpu_rope_ref(x, pos, invf, 1, 1, 4, 4, HF_ROPE_HALF, 1.0f);
	assert_true(fabsf(x[0] + 3) < 1e-6 && fabsf(x[2] - 1) < 1e-6);
	assert_true(fabsf(x[1] - 2) < 1e-6 && fabsf(x[3] - 4) < 1e-6);
}

static void test_softmax_matches_ref(void **state)
{
	size_t rows = 97, cols = 513;
	float *x = frandv(rows * cols);
	float *want = malloc(rows * cols * sizeof(float));
	struct hf_buf *bx;

	for (size_t i = 0; i < rows * cols; i++)
		x[i] *= 20.0f;
	bx = fbuf(rows * cols, x);
	memcpy(want, x, rows * cols * sizeof(float));
	hf_op_softmax(bx, rows, cols);
	hf_cpu_softmax_ref(want, rows, cols);
	expect_close(bx->host, want, rows * cols, 1e-5f);
	hf_buf_free(bx);
	free(x);
	free(want);
}

static void test_glu_and_act_match_ref(void **state)
{
	size_t rows = 33, cols = 1001, n = rows * cols;
	float *g = frandv(n), *u = frandv(n);
	float *want = malloc(n * sizeof(float));

	for (int act = 0; act < HF_ACT_COUNT; act++) {
		struct hf_buf *bg = fbuf(n, g), *bu = fbuf(n, u);
		struct hf_buf *by = fbuf(n, NULL);

		hf_op_glu(by, bg, bu, rows, cols, act);
		hf_cpu_glu_ref(want, g, u, n, act);
		expect_close(by->host, want, n, 1e-6f);
		hf_op_act(by, bg, n, act);
		for (size_t i = 0; i < n; i++)
			want[i] = hf_cpu_act1(g[i], act);
		expect_close(by->host, want, n, 0.0f);
		hf_buf_free(bg);
		hf_buf_free(bu);
		hf_buf_free(by);
	}
	/* spot values: gelu(1) erf = 0.8413447, tanh = 0.8411920 */
	assert_true(fabsf(hf_cpu_act1(1.0f, HF_ACT_GELU_ERF) - 0.8413447f) < 1e-6);
	assert_true(fabsf(hf_cpu_act1(1.0f, HF_ACT_GELU_TANH) - 0.8411920f) < 1e-6);
	assert_true(fabsf(hf_cpu_act1(1.0f, HF_ACT_SILU) - 0.7310586f) < 1e-6);
	free(g);
	free(u);
	free(want);
}

static void attention_case(size_t B, size_t T, size_t C, size_t hq, size_t hkv,
			   size_t d, size_t past, int causal, size_t window,
			   int use_mask)
{
	size_t qn = B * T * hq * d, kn = B * C * hkv * d;
	float *q = frandv(qn), *k = frandv(kn), *v = frandv(kn);
	float *mask = malloc(B * C * sizeof(float));
	float *want = malloc(qn * sizeof(float));
	struct hf_buf *bq = fbuf(qn, q), *bk = fbuf(kn, k), *bv = fbuf(kn, v);
	struct hf_buf *bm, *bo = fbuf(qn, NULL);
	struct hf_buf *bc = causal ? colbuf(B, T, past) : NULL;

	for (size_t b = 0; b < B; b++)
		for (size_t j = 0; j < C; j++)	/* left padding of b cols */
			mask[b * C + j] = j >= b ? 1.0f : 0.0f;
	bm = use_mask ? fbuf(B * C, mask) : NULL;
	hf_op_attention(bo, bq, bk, bv, bm, bc, B, T, C, hq, hkv, d, causal,
			window, 1.0f / sqrtf((float)d));
	assert_int_equal(hf_backend_status(be, NULL), 0);
	hf_cpu_attention_ref(want, q, k, v, use_mask ? mask : NULL, B, T, C, hq,
			     hkv, d, past, causal, window,
			     1.0f / sqrtf((float)d));
	expect_close(bo->host, want, qn, 2e-6f);
	hf_buf_free(bq);
	hf_buf_free(bk);
	hf_buf_free(bv);
	hf_buf_free(bm);
	hf_buf_free(bo);
	hf_buf_free(bc);
	free(q);
	free(k);
	free(v);
	free(mask);
	free(want);
}

static void test_attention_causal_gqa_matches_ref(void **state)
{
	attention_case(1, 37, 37, 6, 2, 8, 0, 1, 0, 0);
	attention_case(1, 41, 50, 4, 1, 24, 0, 1, 0, 0);	/* MQA */
}

static void test_attention_with_past_window_and_mask(void **state)
{
	attention_case(3, 1, 40, 4, 2, 16, 30, 1, 0, 1);	/* decode */
	attention_case(3, 9, 40, 4, 4, 12, 20, 1, 7, 1);	/* window */
	attention_case(2, 19, 19, 4, 4, 16, 0, 0, 0, 1);	/* encoder */
}

/* head_dim 64 (SmolLM2, Qwen2.5, Llama 3.2) and 80: keys transposed
 * 16 dims at a time only; 72: a scalar tail after them */
static void test_attention_real_head_dims_match_ref(void **state)
{
	attention_case(1, 1, 300, 9, 3, 64, 250, 1, 0, 0);	/* decode */
	attention_case(2, 1, 60, 4, 2, 64, 43, 1, 0, 1);	/* masked */
	attention_case(1, 21, 21, 4, 2, 80, 0, 1, 0, 0);
	attention_case(1, 5, 40, 2, 1, 72, 30, 1, 0, 0);
}

/* One decode query per row, keys cut in S splits and merged, against
 * the reference (the mask pads b columns on the left of row b). */
static void split_case(size_t B, size_t C, size_t hq, size_t hkv, size_t d,
		       size_t past, size_t window, int use_mask, size_t S)
{
	size_t qn = B * hq * d, kn = B * C * hkv * d;
	size_t items = S * hf_cpu_attention_items(B, 1, hkv);
	float *q = frandv(qn), *k = frandv(kn), *v = frandv(kn);
	float *mask = malloc(B * C * sizeof(float));
	float *po = malloc(S * qn * sizeof(float));
	float *ml = malloc(S * B * hq * 2 * sizeof(float));
	float *got = malloc(qn * sizeof(float)), *want = malloc(qn * sizeof(float));
	float scale = 1.0f / sqrtf((float)d);

	for (size_t b = 0; b < B; b++)
		for (size_t j = 0; j < C; j++)
			mask[b * C + j] = j >= b ? 1.0f : 0.0f;
	/* in two calls, as two threads would */
	hf_cpu_attention_split(po, ml, q, k, v, HF_KV_F32, use_mask ? mask : NULL, 0,
			       items / 2, B, 1, C, hq, hkv, d, past, 1, window,
			       scale, S);
	hf_cpu_attention_split(po, ml, q, k, v, HF_KV_F32, use_mask ? mask : NULL,
			       items / 2, items, B, 1, C, hq, hkv, d, past, 1,
			       window, scale, S);
	hf_cpu_attention_merge(got, po, ml, B * hq, d, S);
	hf_cpu_attention_ref(want, q, k, v, use_mask ? mask : NULL, B, 1, C, hq,
			     hkv, d, past, 1, window, scale);
	expect_close(got, want, qn, 2e-6f);
	free(q);
	free(k);
	free(v);
	free(mask);
	free(po);
	free(ml);
	free(got);
	free(want);
}

static void test_attention_split_over_keys_matches_ref(void **state)
{
	split_case(1, 300, 9, 3, 64, 250, 0, 0, 2);	/* SmolLM2 decode */
	split_case(2, 200, 4, 2, 64, 150, 0, 1, 3);
	split_case(1, 400, 4, 1, 72, 390, 0, 0, 5);
	split_case(1, 300, 4, 2, 64, 260, 40, 0, 4);	/* window: empty splits */
	split_case(3, 40, 4, 2, 16, 2, 0, 1, 6);	/* few keys, row 2 sees 1 */
}

static void test_attention_fully_masked_query_gives_zeros(void **state)
{
	float q[4] = { 1, 2, 3, 4 }, k[4] = { 1, 1, 1, 1 }, v[4] = { 5, 5, 5, 5 };
	float mask[1] = { 0 }, o[4] = { 9, 9, 9, 9 };

	hf_cpu_attention(o, q, k, v, HF_KV_F32, mask, 0, 1, 1, 1, 1, 1, 4, 0, 1, 0, 0.5f);
	for (int i = 0; i < 4; i++)
		assert_true(o[i] == 0.0f);
}

static void test_get_rows_converts_bf16_and_f16(void **state)
{
	struct hf_err err = { 0 };
	uint16_t bf[6] = { 0x3f80, 0x4000, 0xbf80, 0x4040, 0x0000, 0x3f00 };
	uint16_t hf[6] = { 0x3c00, 0x4000, 0xbc00, 0x4200, 0x0000, 0x3800 };
	float want[6] = { 1, 2, -1, 3, 0, 0.5f };
	int32_t ids[4] = { 2, 0, 7, 1 };
	struct hf_buf *tb, *th, *bi, *y = fbuf(8, NULL);

	assert_int_equal(hf_buf_wrap(&tb, be, HF_DTYPE_BF16, 6, bf, &err), 0);
	assert_int_equal(hf_buf_wrap(&th, be, HF_DTYPE_F16, 6, hf, &err), 0);
	assert_int_equal(hf_buf_wrap(&bi, be, HF_DTYPE_I32, 4, ids, &err), 0);
	for (int i = 0; i < 2; i++) {
		float *out = y->host;

		hf_op_get_rows(y, i ? th : tb, bi, 4, 2, 3);
		expect_close(out, want + 4, 2, 0);
		expect_close(out + 2, want, 2, 0);
		assert_true(out[4] == 0 && out[5] == 0);	/* id 7 >= rows */
		expect_close(out + 6, want + 2, 2, 0);
	}
	hf_buf_free(tb);
	hf_buf_free(th);
	hf_buf_free(bi);
	hf_buf_free(y);
}

static void test_moe_route_picks_top2_renormalised(void **state)
{
	float logits[8] = { 0.1f, 2.0f, -1.0f, 1.5f, 3, 3, 0, -2 };
	float w[4];
	int32_t e[4];
	double p1 = exp(2.0), p3 = exp(1.5);

	hf_cpu_moe_route(w, e, logits, 0, 2, 4, 2);
	assert_int_equal(e[0], 1);
	assert_int_equal(e[1], 3);
	assert_true(fabs(w[0] - p1 / (p1 + p3)) < 1e-6);
	assert_true(fabs(w[1] - p3 / (p1 + p3)) < 1e-6);
	/* ties go to the lower index */
	assert_int_equal(e[2], 0);
	assert_int_equal(e[3], 1);
	assert_true(fabsf(w[2] - 0.5f) < 1e-6);
}

static void test_add_rows_scale_add_copy_kv_store(void **state)
{
	struct hf_err err = { 0 };
	float y0[6] = { 0 }, x[4] = { 1, 2, 3, 4 }, w[2] = { 0.5f, 2 };
	int32_t rows[2] = { 2, 0 };
	struct hf_buf *y = fbuf(6, y0), *bx = fbuf(4, x), *bw = fbuf(2, w);
	struct hf_buf *br, *bc, *c = fbuf(2 * 3 * 2, NULL);
	float *yh = y->host, *ch = c->host;

	assert_int_equal(hf_buf_wrap(&br, be, HF_DTYPE_I32, 2, rows, &err), 0);
	hf_op_add_rows(y, bx, br, bw, 2, 2);
	assert_true(yh[4] == 0.5f && yh[5] == 1 && yh[0] == 6 && yh[1] == 8);
	hf_op_scale(y, y, 6, 2.0f);
	assert_true(yh[0] == 12 && yh[5] == 2);
	hf_op_add(y, y, y, 4);
	assert_true(yh[0] == 24 && yh[5] == 2);
	hf_op_copy(y, bx, 2 * sizeof(float));
	assert_true(yh[0] == 1 && yh[1] == 2 && yh[2] == 0);
	/* B 2, T 1, C 3, width 2, past 1: row b goes to c[b][1] */
	bc = colbuf(2, 1, 1);
	hf_op_kv_store(c, bx, bc, 2, 1, 3, 2);
	assert_true(ch[2] == 1 && ch[3] == 2 && ch[8] == 3 && ch[9] == 4);
	assert_true(ch[0] == 0 && ch[6] == 0);
	hf_buf_free(bc);
	/* a column past the cache writes nothing */
	bc = colbuf(2, 1, 3);
	hf_op_kv_store(c, bx, bc, 2, 1, 3, 2);
	assert_true(ch[4] == 0 && ch[6] == 0 && ch[10] == 0);
	assert_int_equal(hf_backend_status(be, NULL), 0);
	hf_buf_free(bc);
	hf_buf_free(y);
	hf_buf_free(bx);
	hf_buf_free(bw);
	hf_buf_free(br);
	hf_buf_free(c);
}

static void test_matmul_op_uses_views_of_a_fused_weight(void **state)
{
	struct hf_err err = { 0 };
	size_t n = 5, in = 7, out = 3;
	float *w = frandv(2 * out * in), *x = frandv(n * in);
	float *want = malloc(n * out * sizeof(float));
	struct hf_buf *bw = fbuf(2 * out * in, w), *bx = fbuf(n * in, x);
	struct hf_buf *up, *y = fbuf(n * out, NULL);

	/* the second block of rows, as with Phi-3's gate_up_proj */
	assert_int_equal(hf_buf_view(&up, bw, out * in, out * in, &err), 0);
	hf_op_matmul(y, bx, up, NULL, n, in, out);
	hf_matmul_ref(want, x, w + out * in, HF_DTYPE_F32, NULL, n, in, out);
	expect_close(y->host, want, n * out, 1e-5f);
	hf_buf_free(up);
	assert_int_not_equal(hf_buf_view(&up, bw, 2 * out * in, 1, &err), 0);
	hf_buf_free(y);
	hf_buf_free(bx);
	hf_buf_free(bw);
	free(w);
	free(x);
	free(want);
}

static struct hf_buf *rmk(struct hf_backend *b, enum hf_dtype t, size_t n,
			  const void *init);

/* A weight of the second block of rows cut through its format
 * (hf_wbuf_rows), run by hf_op_linear; and what supports_op refuses. */
static void test_linear_on_weight_rows_and_supports_op(void **state)
{
	struct hf_err err = { 0 };
	size_t n = 6, in = 9, out = 4;
	float *w = frandv(2 * out * in), *x = frandv(n * in);
	float *want = malloc(n * out * sizeof(float));
	struct hf_buf *bw = fbuf(2 * out * in, w), *bx = fbuf(n * in, x);
	struct hf_buf *y = fbuf(n * out, NULL), *i8 = rmk(be, HF_DTYPE_I8, 8,
							  NULL);
	struct hf_wbuf all, part;
	struct hf_op op = { HF_OP_MATMUL, y, { bx, bw } };
	struct hf_backend *b2;

	assert_int_equal(hf_wbuf_plain(&all, bw, 2 * out, in, &err), 0);
	assert_int_equal(all.fmt, HF_WFMT_F32);
	assert_int_equal(hf_wbuf_rows(&part, &all, out, out, &err), 0);
	assert_int_equal(part.rows, out);
	hf_op_linear(y, bx, &part, NULL, n);
	assert_int_equal(hf_backend_status(be, &err), 0);
	hf_matmul_ref(want, x, w + out * in, HF_DTYPE_F32, NULL, n, in, out);
	expect_close(y->host, want, n * out, 1e-5f);
	{
		struct hf_wbuf bad;

		assert_int_equal(hf_wbuf_rows(&bad, &all, out, out + 1, &err),
				 HF_EINTERNAL);
	}
	/* supports_op */
	op.w = all;
	assert_int_equal(hf_backend_supports(be, &op, &err), 1);
	op.w.fmt = HF_WFMT_COUNT;
	assert_int_equal(hf_backend_supports(be, &op, &err), 0);
	op = (struct hf_op){ HF_OP_GET_ROWS, y, { i8, bx } };
	assert_int_equal(hf_backend_supports(be, &op, &err), 0);
	assert_non_null(strstr(err.msg, "I8"));
	assert_int_not_equal(hf_wbuf_plain(&all, i8, 2, 4, &err), 0);
	/* an int8 weight through the plain constructor fails when it runs,
	 * named, and the backend keeps the error */
	assert_int_equal(hf_backend_cpu_create(&b2, 1, &err), 0);
	{
		struct hf_buf *a = rmk(b2, HF_DTYPE_F32, 4, NULL);
		struct hf_buf *q = rmk(b2, HF_DTYPE_I8, 4, NULL);

		hf_op_matmul(a, a, q, NULL, 1, 2, 2);
		assert_int_equal(hf_backend_status(b2, &err), HF_EUNSUPPORTED);
		assert_non_null(strstr(err.msg, "dtype I8"));
		hf_buf_free(a);
		hf_buf_free(q);
	}
	hf_backend_free(b2);
	hf_buf_free(part.t[0]);
	hf_buf_free(i8);
	hf_buf_free(y);
	hf_buf_free(bx);
	hf_buf_free(bw);
	free(w);
	free(x);
	free(want);
}

static void test_graph_replays_on_new_buffer_contents(void **state)
{
	struct hf_err err = { 0 };
	struct hf_graph g;
	float a[3] = { 1, 2, 3 }, b[3] = { 10, 20, 30 };
	struct hf_buf *ba = fbuf(3, a), *bb = fbuf(3, b), *y = fbuf(3, NULL);
	float *yh = y->host;

	assert_int_equal(hf_graph_begin(be, &g, &err), 0);
	assert_int_not_equal(hf_graph_begin(be, &g, &err), 0);
	hf_op_add(y, ba, bb, 3);
	hf_op_scale(y, y, 3, 0.5f);
	assert_int_equal(hf_graph_end(be, &g, &err), 0);
	assert_int_equal(g.n, 2);
	assert_true(g.ops[0].code == HF_OP_ADD && g.ops[1].code == HF_OP_SCALE);
	assert_true(yh[0] == 5.5f && yh[2] == 16.5f);
	a[0] = 3;
	assert_int_equal(hf_buf_upload(ba, 0, a, sizeof(a), &err), 0);
	assert_int_equal(hf_graph_replay(be, &g, &err), 0);
	assert_true(yh[0] == 6.5f && yh[1] == 11.0f);
	hf_graph_free(be, &g);
	hf_buf_free(ba);
	hf_buf_free(bb);
	hf_buf_free(y);
}


static struct hf_buf *rmk(struct hf_backend *b, enum hf_dtype t, size_t n,
			  const void *init)
{
	struct hf_err err = { 0 };
	struct hf_buf *r;

	assert_int_equal(hf_buf_alloc(&r, b, t, n, &err), 0);
	if (init)
		assert_int_equal(hf_buf_upload(r, 0, init,
					       hf_dtype_size(t, n), &err), 0);
	return r;
}

static void rget(const struct hf_buf *b, float *dst)
{
	struct hf_err err = { 0 };

	assert_int_equal(hf_buf_download(b, 0, dst, b->size, &err), 0);
}

#include "replay_scenario.h"

#define RN (RS * RB * RH + RB * RC * RH)

/* Bit for bit: the same kernels run in the same order. */
static void test_replay_at_new_positions_equals_eager_ops(void **state)
{
	static float eager[RN], replayed[RN];
	size_t nz = 0;

	scenario_replay(be, 0, eager);
	scenario_replay(be, 1, replayed);
	for (size_t i = 0; i < RN; i++)
		if (replayed[i] != eager[i])
			fail_msg("index %zu: got %g, want %g", i,
				 (double)replayed[i], (double)eager[i]);
	/* the last step's keys landed in column RS - 1 of both rows */
	for (size_t i = 0; i < RH; i++)
		nz += eager[RS * RB * RH + (RS - 1) * RH + i] != 0.0f;
	assert_true(nz > 0);
	/* and the steps differ from each other */
	assert_true(memcmp(eager, eager + RB * RH, RB * RH * sizeof(float)));
}

#include "moe_scenario.h"

/* MATMUL_ID against hf_matmul_ref per row, on awkward sizes, x shared by
 * a token's slots and one row per slot, one id out of range (zeros).
 * 1e-5: hf_matmul's tolerance against its _ref (lib/tensor/matmul.h). */
static void test_matmul_id_matches_ref(void **state)
{
	struct hf_err err = { 0 };
	const size_t n = 3, k = 2, E = 4, in = 19, out = 11;
	const int32_t ids[6] = { 2, 0, 3, 7, 1, 2 };
	float *w = frandv(E * out * in), *x = frandv(n * k * in);
	float want[6 * 11];
	struct hf_buf *bw = fbuf(E * out * in, w), *bx = fbuf(n * k * in, x);
	struct hf_buf *y = fbuf(n * k * out, NULL), *bi;

	assert_int_equal(hf_buf_wrap(&bi, be, HF_DTYPE_I32, n * k, ids, &err),
			 0);
	for (int slot = 0; slot < 2; slot++) {
		for (size_t r = 0; r < n * k; r++) {
			if (ids[r] < 0 || (size_t)ids[r] >= E) {
				memset(want + r * out, 0, out * sizeof(float));
				continue;
			}
			hf_matmul_ref(want + r * out,
				      x + (slot ? r : r / k) * in,
				      w + (size_t)ids[r] * out * in,
				      HF_DTYPE_F32, NULL, 1, in, out);
		}
		hf_op_matmul_id(y, bx, bw, bi, n, k, in, out, E, slot);
		expect_close(y->host, want, n * k * out, 1e-5f);
	}
	assert_int_equal(hf_backend_status(be, NULL), 0);
	hf_buf_free(bi);
	hf_buf_free(y);
	hf_buf_free(bx);
	hf_buf_free(bw);
	free(w);
	free(x);
}

/* The MoE layer on the device ops against the host-grouped path the
 * decoder keeps on the CPU: the same hf_matmul on the same gathered
 * rows, and MOE_SUM of two slots is the one addition ADD_ROWS into zeros
 * makes, but the SiLU of hf_cpu_glu takes the vector exp or expf by an
 * element's position in the op, so a few ulp apart: 1e-5 relative.
 * Replayed with new inputs (new routing) equals eager exactly. */
static void test_moe_device_ops_match_the_grouped_path(void **state)
{
	static float grouped[MOUT], eager[MOUT], replayed[MOUT];

	scenario_moe_grouped(be, grouped);
	scenario_moe(be, 0, eager);
	scenario_moe(be, 1, replayed);
	expect_close(eager, grouped, MOUT, 1e-5f);
	for (size_t i = 0; i < MOUT; i++)
		if (replayed[i] != eager[i])
			fail_msg("moe index %zu: replayed %.9g, eager %.9g", i,
				 replayed[i], eager[i]);
	assert_true(memcmp(eager, eager + MN * MH, MN * MH * sizeof(float)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rmsnorm_matches_ref),
		cmocka_unit_test(test_layernorm_matches_ref),
		cmocka_unit_test(test_rope_matches_ref_both_modes),
		cmocka_unit_test(test_rope_half_rotates_pairs_i_and_i_plus_half),
		cmocka_unit_test(test_softmax_matches_ref),
		cmocka_unit_test(test_glu_and_act_match_ref),
		cmocka_unit_test(test_attention_causal_gqa_matches_ref),
		cmocka_unit_test(test_attention_with_past_window_and_mask),
		cmocka_unit_test(test_attention_real_head_dims_match_ref),
		cmocka_unit_test(test_attention_split_over_keys_matches_ref),
		cmocka_unit_test(test_attention_fully_masked_query_gives_zeros),
		cmocka_unit_test(test_get_rows_converts_bf16_and_f16),
		cmocka_unit_test(test_moe_route_picks_top2_renormalised),
		cmocka_unit_test(test_add_rows_scale_add_copy_kv_store),
		cmocka_unit_test(test_matmul_op_uses_views_of_a_fused_weight),
		cmocka_unit_test(test_linear_on_weight_rows_and_supports_op),
		cmocka_unit_test(test_graph_replays_on_new_buffer_contents),
		cmocka_unit_test(test_replay_at_new_positions_equals_eager_ops),
		cmocka_unit_test(test_matmul_id_matches_ref),
		cmocka_unit_test(test_moe_device_ops_match_the_grouped_path),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
