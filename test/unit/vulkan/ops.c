/* Tests for lib/backend/vulkan/ops.c and the shaders: each op against a
 * plain C loop (its CPU twin, here) on random inputs of awkward sizes
 * (odd, not multiples of any workgroup or tile size), on the device with
 * the validation layer on. The whole list runs twice: with subgroup
 * reductions (where the device has them) and with the shared-memory path;
 * the products and the gather once more with bindings limited to 1 KiB,
 * and attention by whole workgroups with subgroup reductions.
 * Twins sum in double; tolerances are stated per op with their reason. */
#include "vkt.h"

#include "tensor/dtype.h"
#include "tensor/wfmt.h"

/* The plain weight format of dtype t (F32, F16, BF16). */
static enum hf_wfmt wf(enum hf_dtype t)
{
	return (enum hf_wfmt)hf_wfmt_of_dtype(t);
}

static struct hf_vk *vk;

static int setup_sg(void **state)
{
	vk = vkt_open();
	return 0;
}

static int setup_plain(void **state)
{
	struct hf_vk_opts o = { .no_subgroups = true };

	vk = vkt_open_with(o);
	return 0;
}

/* A binding may span only 1 KiB: weights and tables are then bound in
 * windows of a few rows, one dispatch each (what a 1 GB embedding needs
 * under lavapipe's 128 MiB maxStorageBufferRange). */
static int setup_windowed(void **state)
{
	struct hf_vk_opts o = { .max_binding = 1024 };

	vk = vkt_open_with(o);
	return 0;
}

/* Subgroup reductions, but attention by whole workgroups (the kernel of
 * devices whose subgroup size may vary). */
static int setup_wg_attention(void **state)
{
	struct hf_vk_opts o = { .wg_attention = true };

	vk = vkt_open_with(o);
	return 0;
}

static int teardown(void **state)
{
	vkt_close(vk);
	vk = NULL;
	return 0;
}

/* Record ops between begin and run via a statement block. */
#define RUN(ops) do { \
	struct hf_err err = { 0 }; \
	struct hf_vk_seq *s_; \
	if (hf_vk_seq_begin(vk, &s_, &err)) \
		fail_msg("begin: %s", err.msg); \
	{ struct hf_vk_seq *s = s_; ops } \
	if (hf_vk_seq_end(s_, &err) || hf_vk_seq_run(s_, &err)) \
		fail_msg("%s:%d: %s", __FILE__, __LINE__, err.msg); \
	hf_vk_seq_free(s_); \
} while (0)

#define OP(call) do { \
	if ((call) != 0) \
		fail_msg("%s:%d: %s", __FILE__, __LINE__, err.msg); \
} while (0)

/* Weights of dtype t from floats (rounded to t), and their float values. */
static void *weights(enum hf_dtype t, float *w, size_t n, size_t *bytes)
{
	uint16_t *h;

	if (t == HF_DTYPE_F32) {
		*bytes = n * 4;
		return w;
	}
	h = malloc(n * 2 + 2);
	assert_non_null(h);
	for (size_t i = 0; i < n; i++) {
		h[i] = t == HF_DTYPE_F16 ? hf_f32_to_f16(w[i]) :
			hf_f32_to_bf16(w[i]);
		w[i] = t == HF_DTYPE_F16 ? hf_f16_to_f32(h[i]) :
			hf_bf16_to_f32(h[i]);
	}
	*bytes = n * 2;
	return h;
}

/* ---- matrix products ---------------------------------------------------
 * Tolerance: |got - want| <= 1e-5 * sum_i |x_i w_i| + 1e-7. The device
 * sums in float32 in another order than the double twin; the rounding
 * error of a float sum of n terms is bounded by n * 2^-24 * sum |terms|,
 * about 4e-6 for n = 67, so 1e-5 holds with margin.
 * With float16 products (the "f16 products" groups, *_hmul shaders):
 * |got - want| <= 3e-3 * sum_i |x_i w_i| + 1e-7 * n_in. Each x_i is
 * rounded to float16 (relative 2^-11), each product too (2^-11), and a
 * block of four is summed in float16 (three roundings of at most 2^-11
 * of the block's sum of |x_i w_i|): 5 * 2^-11 = 2.4e-3 of sum |x_i w_i|,
 * plus the float32 sum of the blocks (1e-5 above); a product under
 * 2^-14 is subnormal in float16, off by up to 2^-25 absolute (the
 * n_in term). */
static double mm_rel = 1e-5, mm_abs_per_in = 0.0;
static void check_matmul(enum hf_dtype t, uint32_t n, uint32_t in,
			 uint32_t out, bool bias, int kernel, uint32_t w_off)
{
	float *x = vkt_rand((size_t)n * in, -1, 1);
	float *w = vkt_rand((size_t)w_off + (size_t)out * in, -1, 1);
	float *b = vkt_rand(out, -1, 1);
	float *y = malloc((size_t)n * out * 4);
	float *want = malloc((size_t)n * out * 4);
	float *bound = malloc((size_t)n * out * 4);
	size_t wb;
	void *wd = weights(t, w, (size_t)w_off + (size_t)out * in, &wb);
	struct hf_vk_buf *bx = vkt_buf(vk, x, (size_t)n * in * 4);
	struct hf_vk_buf *bw = vkt_buf(vk, wd, wb);
	struct hf_vk_buf *bb = vkt_buf(vk, b, out * 4);
	struct hf_vk_buf *by = vkt_buf(vk, NULL, (size_t)n * out * 4);

	for (uint32_t r = 0; r < n; r++)
		for (uint32_t o = 0; o < out; o++) {
			double s = bias ? b[o] : 0.0, a = bias ? fabs(b[o]) : 0;

			for (uint32_t i = 0; i < in; i++) {
				double p = (double)x[r * in + i] *
					w[w_off + (size_t)o * in + i];

				s += p;
				a += fabs(p);
			}
			want[r * out + o] = (float)s;
			bound[r * out + o] = (float)(mm_rel * a + 1e-7 +
						     mm_abs_per_in * in);
		}
	if (kernel < 0)
		RUN(OP(hf_vk_op_matmul(s, by, bx, bw, wf(t), w_off,
				       bias ? bb : NULL, n, in, out, &err)););
	else
		RUN(OP(hf_vk_op_matmul_kernel(s, by, bx, bw, wf(t), w_off,
					      bias ? bb : NULL, n, in, out,
					      kernel, &err)););
	vkt_get(vk, y, by, (size_t)n * out * 4);
	for (size_t i = 0; i < (size_t)n * out; i++)
		if (!(fabs(y[i] - want[i]) <= bound[i]))
			fail_msg("matmul %s n=%u in=%u out=%u kernel %d: index %zu: got %.9g, want %.9g",
				 hf_dtype_name(t), n, in, out, kernel, i, y[i],
				 want[i]);
	hf_vk_buf_free(bx);
	hf_vk_buf_free(bw);
	hf_vk_buf_free(bb);
	hf_vk_buf_free(by);
	if (wd != w)
		free(wd);
	free(x);
	free(w);
	free(b);
	free(y);
	free(want);
	free(bound);
}

static void test_matvec_f32_f16_bf16(void **state)
{
	const enum hf_dtype t[] = { HF_DTYPE_F32, HF_DTYPE_F16, HF_DTYPE_BF16 };

	for (int i = 0; i < 3; i++) {
		check_matmul(t[i], 1, 67, 45, true, 0, 0);
		check_matmul(t[i], 3, 131, 7, false, 0, 0);
		/* even rows: 16-bit weights two a load; then an odd start */
		check_matmul(t[i], 2, 66, 29, true, 0, 0);
		check_matmul(t[i], 1, 66, 29, false, 0, 1);
	}
}

static void test_matmul_tiled_f32_f16_bf16(void **state)
{
	const enum hf_dtype t[] = { HF_DTYPE_F32, HF_DTYPE_F16, HF_DTYPE_BF16 };

	for (int i = 0; i < 3; i++) {
		check_matmul(t[i], 37, 53, 70, true, 1, 0);
		check_matmul(t[i], 1, 19, 33, false, 1, 0);
	}
	check_matmul(HF_DTYPE_F32, 9, 16, 32, false, -1, 0);
}

static void test_matmul_reads_weights_at_an_offset(void **state)
{
	/* an odd offset into 16-bit weights starts mid-word */
	check_matmul(HF_DTYPE_F16, 1, 21, 13, false, 0, 21 * 13 + 3);
	check_matmul(HF_DTYPE_BF16, 6, 21, 13, true, 1, 5);
	check_matmul(HF_DTYPE_F32, 2, 21, 13, true, 0, 7);
}

/* Run with 1 KiB bindings: W of 4-6 KiB goes in parts of a few rows. */
static void test_matmul_over_binding_windows(void **state)
{
	check_matmul(HF_DTYPE_F16, 1, 67, 45, true, 0, 0);
	check_matmul(HF_DTYPE_BF16, 3, 67, 45, true, 1, 0);
	check_matmul(HF_DTYPE_F16, 1, 21, 13, false, 0, 21 * 13 + 3);
	check_matmul(HF_DTYPE_F32, 2, 21, 60, true, 0, 7);
	check_matmul(HF_DTYPE_F32, 2, 21, 60, false, 1, 7);
}

/* ---- norms and softmax -------------------------------------------------- */

/* 2e-6 + 1e-5 relative: a float32 sum of squares (cols <= 333) and
 * inversesqrt (a few ulp) against double. */
static void test_rms_norm(void **state)
{
	const uint32_t rows = 5, cols = 333;
	float *x = vkt_rand(rows * cols, -3, 3), *w = vkt_rand(cols, -2, 2);
	float *y = malloc(rows * cols * 4), *want = malloc(rows * cols * 4);
	struct hf_vk_buf *bx = vkt_buf(vk, x, rows * cols * 4);
	struct hf_vk_buf *bw = vkt_buf(vk, w, cols * 4);
	struct hf_vk_buf *by = vkt_buf(vk, NULL, rows * cols * 4);

	for (int mode = 0; mode < 3; mode++) {
		float add = mode == 1 ? 1.0f : 0.0f;

		for (uint32_t r = 0; r < rows; r++) {
			double ss = 0;

			for (uint32_t i = 0; i < cols; i++)
				ss += (double)x[r * cols + i] * x[r * cols + i];
			for (uint32_t i = 0; i < cols; i++)
				want[r * cols + i] = (float)(x[r * cols + i] /
					sqrt(ss / cols + 1e-6) *
					(mode == 2 ? 1.0 : (double)w[i] + add));
		}
		RUN(OP(hf_vk_op_rms_norm(s, by, bx, mode == 2 ? NULL : bw, add,
					 rows, cols, 1e-6f, &err)););
		vkt_get(vk, y, by, rows * cols * 4);
		vkt_close_to("rms_norm", y, want, rows * cols, 2e-6, 1e-5);
	}
	/* in place */
	RUN(OP(hf_vk_op_rms_norm(s, bx, bx, NULL, 0, rows, cols, 1e-6f,
				 &err)););
	vkt_get(vk, y, bx, rows * cols * 4);
	vkt_close_to("rms_norm in place", y, want, rows * cols, 2e-6, 1e-5);
	hf_vk_buf_free(bx);
	hf_vk_buf_free(bw);
	hf_vk_buf_free(by);
	free(x);
	free(w);
	free(y);
	free(want);
}

/* 2e-6 + 1e-5 relative: float32 mean and centred variance (two passes)
 * against double. */
static void test_layer_norm(void **state)
{
	const uint32_t rows = 4, cols = 201;
	float *x = vkt_rand(rows * cols, -2, 5), *w = vkt_rand(cols, -2, 2);
	float *b = vkt_rand(cols, -1, 1);
	float *y = malloc(rows * cols * 4), *want = malloc(rows * cols * 4);
	struct hf_vk_buf *bx = vkt_buf(vk, x, rows * cols * 4);
	struct hf_vk_buf *bw = vkt_buf(vk, w, cols * 4);
	struct hf_vk_buf *bb = vkt_buf(vk, b, cols * 4);
	struct hf_vk_buf *by = vkt_buf(vk, NULL, rows * cols * 4);

	for (int affine = 0; affine < 2; affine++) {
		for (uint32_t r = 0; r < rows; r++) {
			double m = 0, v = 0;

			for (uint32_t i = 0; i < cols; i++)
				m += x[r * cols + i];
			m /= cols;
			for (uint32_t i = 0; i < cols; i++)
				v += (x[r * cols + i] - m) * (x[r * cols + i] - m);
			v /= cols;
			for (uint32_t i = 0; i < cols; i++) {
				double t = (x[r * cols + i] - m) / sqrt(v + 1e-5);

				want[r * cols + i] = (float)(affine ?
					t * w[i] + b[i] : t);
			}
		}
		RUN(OP(hf_vk_op_layer_norm(s, by, bx, affine ? bw : NULL,
					   affine ? bb : NULL, rows, cols,
					   1e-5f, &err)););
		vkt_get(vk, y, by, rows * cols * 4);
		vkt_close_to("layer_norm", y, want, rows * cols, 2e-6, 1e-5);
	}
	hf_vk_buf_free(bx);
	hf_vk_buf_free(bw);
	hf_vk_buf_free(bb);
	hf_vk_buf_free(by);
	free(x);
	free(w);
	free(b);
	free(y);
	free(want);
}

/* 1e-9 + 2e-5 relative: GLSL's exp is good to 3 + 2|x| ulp (Vulkan spec,
 * "Precision and Operation of SPIR-V Instructions"); arguments here go
 * down to about -28, so ~60 ulp = 4e-6, plus a float32 sum of 1000. */
static void test_softmax(void **state)
{
	const uint32_t rows = 6, cols = 1000;
	float *x = vkt_rand(rows * cols, -20, 20);
	float *y = malloc(rows * cols * 4), *want = malloc(rows * cols * 4);
	struct hf_vk_buf *bx = vkt_buf(vk, x, rows * cols * 4);
	struct hf_vk_buf *by = vkt_buf(vk, NULL, rows * cols * 4);

	for (uint32_t r = 0; r < rows; r++) {
		double m = -INFINITY, s = 0;

		for (uint32_t i = 0; i < cols; i++)
			m = fmax(m, 0.7 * x[r * cols + i]);
		for (uint32_t i = 0; i < cols; i++)
			s += exp(0.7 * x[r * cols + i] - m);
		for (uint32_t i = 0; i < cols; i++)
			want[r * cols + i] =
				(float)(exp(0.7 * x[r * cols + i] - m) / s);
	}
	RUN(OP(hf_vk_op_softmax(s, by, bx, rows, cols, 0.7f, &err)););
	vkt_get(vk, y, by, rows * cols * 4);
	vkt_close_to("softmax", y, want, rows * cols, 1e-9, 2e-5);
	hf_vk_buf_free(bx);
	hf_vk_buf_free(by);
	free(x);
	free(y);
	free(want);
}

/* ---- rope --------------------------------------------------------------
 * Twin: transformers' float32 inv_freq and angle, cos/sin in double.
 * 1e-4 absolute on |x| <= 1: angles up to 300 rad carry the float32
 * rounding of pos * inv_freq (~2e-5 rad) into pow/cos/sin of the device,
 * whose sin and cos the spec bounds only loosely. */
static void rope_twin(float *y, const float *x, const int32_t *pos,
		      const float *inv_freq, bool half, uint32_t n_tok,
		      uint32_t n_head, uint32_t hd, uint32_t rot,
		      uint32_t stride, uint32_t off, float base, float ms)
{
	for (uint32_t t = 0; t < n_tok; t++)
		for (uint32_t h = 0; h < n_head; h++) {
			const float *xh = x + off + t * stride + h * hd;
			float *yh = y + off + t * stride + h * hd;

			for (uint32_t d = rot; d < hd; d++)
				yh[d] = xh[d];
			for (uint32_t i = 0; i < rot / 2; i++) {
				float f = inv_freq ? inv_freq[i] :
					1.0f / powf(base, (float)(2 * i) / rot);
				float th = (float)pos[t] * f;
				uint32_t a = half ? i : 2 * i;
				uint32_t b = half ? i + rot / 2 : 2 * i + 1;
				double c = cos(th) * ms, s = sin(th) * ms;
				double x0 = xh[a], x1 = xh[b];

				yh[a] = (float)(x0 * c - x1 * s);
				yh[b] = (float)(x1 * c + x0 * s);
			}
		}
}

static void test_rope_half_and_interleaved(void **state)
{
	const uint32_t n_tok = 5, n_head = 3, hd = 18, rot = 12;
	const uint32_t stride = n_head * hd + 11, off = 4;	/* fused rows */
	const size_t n = off + n_tok * stride;
	const int32_t pos[] = { 0, 7, 300, 3, 41 };
	float *x = vkt_rand(n, -1, 1), *ff = vkt_rand(rot / 2, 0.001f, 1);
	float *y = malloc(n * 4), *want = malloc(n * 4);
	struct hf_vk_buf *bx = vkt_buf(vk, x, n * 4);
	struct hf_vk_buf *bp = vkt_buf(vk, pos, sizeof(pos));
	struct hf_vk_buf *bf = vkt_buf(vk, ff, rot / 2 * 4);
	struct hf_vk_buf *by = vkt_buf(vk, x, n * 4);	/* copy of x */

	for (int mode = 0; mode < 4; mode++) {
		bool half = mode % 2 == 0, freq = mode >= 2;
		struct hf_vk_rope_args a = {
			half ? HF_VK_ROPE_HALF : HF_VK_ROPE_INTERLEAVED,
			n_tok, n_head, hd, rot, 10000.0f, freq ? bf : NULL,
			freq ? 1.25f : 0.0f,
		};
		struct hf_vk_view vy = { by, off, stride };
		struct hf_vk_view vx = { bx, off, stride };

		memcpy(want, x, n * 4);
		rope_twin(want, x, pos, freq ? ff : NULL, half, n_tok, n_head,
			  hd, rot, stride, off, 10000.0f, freq ? 1.25f : 1.0f);
		RUN(OP(hf_vk_op_rope(s, vy, vx, bp, &a, &err)););
		vkt_get(vk, y, by, n * 4);
		vkt_close_to(half ? "rope half" : "rope interleaved", y, want,
			     n, 1e-4, 0);
	}
	/* in place on the fused rows: the gaps between heads stay as x */
	{
		struct hf_vk_rope_args a = {
			HF_VK_ROPE_HALF, n_tok, n_head, hd, hd, 500000.0f,
			NULL, 0,
		};
		struct hf_vk_view v = { bx, off, stride };

		memcpy(want, x, n * 4);
		rope_twin(want, x, pos, NULL, true, n_tok, n_head, hd, hd,
			  stride, off, 500000.0f, 1.0f);
		RUN(OP(hf_vk_op_rope(s, v, v, bp, &a, &err)););
		vkt_get(vk, y, bx, n * 4);
		vkt_close_to("rope in place", y, want, n, 1e-4, 0);
	}
	hf_vk_buf_free(bx);
	hf_vk_buf_free(bp);
	hf_vk_buf_free(bf);
	hf_vk_buf_free(by);
	free(x);
	free(ff);
	free(y);
	free(want);
}

/* ---- attention ---------------------------------------------------------
 * Twin: the full score row, softmax in double, exactly the visibility
 * rules of vk.h. 3e-6 absolute: outputs are convex combinations of v in
 * [-1, 1]; the device's float32 dot products (d <= 130 terms of |q k| <=
 * 1, scaled by 1/sqrt(d)), online rescaling and exp differ by ~1e-6. */
struct attn_case {
	uint32_t B, T, C, hq, hkv, d, past, window;
	bool causal, use_pos, masked;
	float softcap;
};

static void attn_twin(float *o, const float *q, const float *k,
		      const float *v, const float *mask,
		      const struct attn_case *c)
{
	const uint32_t qrow = c->hq * c->d, kvrow = c->hkv * c->d;
	double *p = malloc(c->C * sizeof(*p));

	for (uint32_t b = 0; b < c->B; b++)
		for (uint32_t t = 0; t < c->T; t++)
			for (uint32_t h = 0; h < c->hq; h++) {
				const uint32_t r = b * c->T + t;
				const uint32_t kh = h / (c->hq / c->hkv);
				const long pos = (long)c->past + t;
				double m = -INFINITY, s = 0;

				for (uint32_t j = 0; j < c->C; j++) {
					bool ok = j < c->past + c->T;

					if (c->masked && mask[b * c->C + j] == 0)
						ok = false;
					if (c->causal && (long)j > pos)
						ok = false;
					if (c->window && pos - (long)j >=
					    (long)c->window)
						ok = false;
					p[j] = -INFINITY;
					if (!ok)
						continue;
					double dot = 0;
					for (uint32_t d = 0; d < c->d; d++)
						dot += (double)q[r * qrow + h * c->d + d] *
							k[(b * c->C + j) * kvrow +
							  kh * c->d + d];
					dot /= sqrt((double)c->d);
					if (c->softcap)
						dot = c->softcap *
							tanh(dot / c->softcap);
					p[j] = dot;
					m = fmax(m, dot);
				}
				for (uint32_t j = 0; j < c->C; j++) {
					p[j] = p[j] == -INFINITY ? 0 :
						exp(p[j] - m);
					s += p[j];
				}
				for (uint32_t d = 0; d < c->d; d++) {
					double a = 0;

					for (uint32_t j = 0; j < c->C; j++)
						a += p[j] * v[(b * c->C + j) *
							      kvrow + kh * c->d + d];
					o[r * qrow + h * c->d + d] =
						(float)(s > 0 ? a / s : 0);
				}
			}
	free(p);
}

static void check_attention(const struct attn_case *c)
{
	const size_t nq = (size_t)c->B * c->T * c->hq * c->d;
	const size_t nkv = (size_t)c->B * c->C * c->hkv * c->d;
	float *q = vkt_rand(nq, -1, 1), *k = vkt_rand(nkv, -1, 1);
	float *v = vkt_rand(nkv, -1, 1), *mask = vkt_rand(c->B * c->C, 0, 1);
	float *o = malloc(nq * 4), *want = malloc(nq * 4);
	int32_t *pos = malloc(c->B * c->T * 4);
	struct hf_vk_buf *bq, *bk, *bv, *bm, *bo, *bp;

	for (uint32_t i = 0; i < c->B * c->C; i++)
		mask[i] = mask[i] < 0.3f ? 0.0f : 1.0f;
	for (uint32_t b = 0; b < c->B; b++)
		for (uint32_t t = 0; t < c->T; t++)
			pos[b * c->T + t] = (int32_t)(c->past + t);
	attn_twin(want, q, k, v, mask, c);
	bq = vkt_buf(vk, q, nq * 4);
	bk = vkt_buf(vk, k, nkv * 4);
	bv = vkt_buf(vk, v, nkv * 4);
	bm = vkt_buf(vk, mask, c->B * c->C * 4);
	bo = vkt_buf(vk, NULL, nq * 4);
	bp = vkt_buf(vk, pos, c->B * c->T * 4);
	{
		struct hf_vk_attn_args a = {
			.n_batch = c->B, .n_q = c->T, .n_head = c->hq,
			.n_kv_head = c->hkv, .head_dim = c->d,
			.n_kv = c->past + c->T, .kv_batch = c->C * c->hkv * c->d,
			.past = c->use_pos ? 9999 : c->past,
			.causal = c->causal, .window = c->window,
			.scale = 1.0f / sqrtf((float)c->d),
			.softcap = c->softcap,
			.mask = c->masked ? bm : NULL, .mask_stride = c->C,
		};
		struct hf_vk_view vq = { bq, 0, 0 }, vk_ = { bk, 0, 0 };
		struct hf_vk_view vv = { bv, 0, 0 };

		RUN(OP(hf_vk_op_attention(s, bo, vq, vk_, vv,
					  c->use_pos ? bp : NULL, &a, &err)););
	}
	vkt_get(vk, o, bo, nq * 4);
	vkt_close_to("attention", o, want, nq, 3e-6, 0);
	hf_vk_buf_free(bq);
	hf_vk_buf_free(bk);
	hf_vk_buf_free(bv);
	hf_vk_buf_free(bm);
	hf_vk_buf_free(bo);
	hf_vk_buf_free(bp);
	free(q);
	free(k);
	free(v);
	free(mask);
	free(o);
	free(want);
	free(pos);
}

static void test_attention_prefill_causal_gqa(void **state)
{
	struct attn_case c = { .B = 1, .T = 7, .C = 7, .hq = 4, .hkv = 2,
			       .d = 20, .causal = true };

	check_attention(&c);
}

static void test_attention_decode_over_blocks_with_mask(void **state)
{
	/* 71 keys: three blocks of 32, the last partial; odd head_dim past
	 * one block of dims; batch row 1 has padding keys masked out */
	struct attn_case c = { .B = 2, .T = 1, .C = 71, .hq = 3, .hkv = 1,
			       .d = 45, .past = 70, .causal = true,
			       .masked = true };

	check_attention(&c);
	c.d = 130;	/* five dims per invocation */
	c.C = c.past + 1;
	check_attention(&c);
}

static void test_attention_sliding_window(void **state)
{
	struct attn_case c = { .B = 1, .T = 5, .C = 45, .hq = 2, .hkv = 2,
			       .d = 16, .past = 40, .window = 9,
			       .causal = true };

	check_attention(&c);
}

static void test_attention_bidirectional_with_padding(void **state)
{
	struct attn_case c = { .B = 2, .T = 9, .C = 9, .hq = 2, .hkv = 2,
			       .d = 12, .masked = true };

	check_attention(&c);
}

static void test_attention_positions_from_buffer_and_softcap(void **state)
{
	struct attn_case c = { .B = 1, .T = 3, .C = 38, .hq = 4, .hkv = 1,
			       .d = 8, .past = 35, .causal = true,
			       .use_pos = true, .softcap = 2.5f };

	check_attention(&c);
}

/* ---- activations -------------------------------------------------------
 * 2e-6 + 1e-5 relative: float32 exp/tanh against double; GELU's erf is
 * Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7, times |x|/2 <= 4). */
static double act_twin(enum hf_vk_act a, double x)
{
	switch (a) {
	case HF_VK_ACT_SILU:
		return x / (1 + exp(-x));
	case HF_VK_ACT_GELU:
		return 0.5 * x * (1 + erf(x / sqrt(2.0)));
	case HF_VK_ACT_GELU_TANH:
		return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) *
					   (x + 0.044715 * x * x * x)));
	case HF_VK_ACT_RELU:
		return x > 0 ? x : 0;
	default:
		return tanh(x);
	}
}

static void test_glu_and_activations(void **state)
{
	const uint32_t rows = 3, cols = 517, stride = 2 * cols + 1;
	float *g = vkt_rand(rows * stride, -8, 8);
	float *y = malloc(rows * cols * 4), *want = malloc(rows * cols * 4);
	struct hf_vk_buf *bg = vkt_buf(vk, g, rows * stride * 4);
	struct hf_vk_buf *by = vkt_buf(vk, NULL, rows * cols * 4);

	for (int act = HF_VK_ACT_SILU; act <= HF_VK_ACT_TANH; act++)
		for (int gated = 0; gated < 2; gated++) {
			/* phi3 style: gate and up halves of one fused row */
			struct hf_vk_view a = { bg, 1, stride };
			struct hf_vk_view b = { gated ? bg : NULL, 1 + cols,
						stride };

			for (uint32_t r = 0; r < rows; r++)
				for (uint32_t c = 0; c < cols; c++)
					want[r * cols + c] = (float)(act_twin(
						act, g[1 + r * stride + c]) *
						(gated ? g[1 + cols + r * stride + c] : 1));
			RUN(OP(hf_vk_op_glu(s, by, act, a, b, rows, cols,
					    &err)););
			vkt_get(vk, y, by, rows * cols * 4);
			vkt_close_to("glu", y, want, rows * cols, 2e-6, 1e-5);
		}
	hf_vk_buf_free(bg);
	hf_vk_buf_free(by);
	free(g);
	free(y);
	free(want);
}

/* ---- data movement: exact -------------------------------------------- */

static void test_get_rows_all_dtypes(void **state)
{
	const uint32_t rows = 11, cols = 37;
	const int32_t ids[] = { 3, 0, 10, 3, -1, 11 };
	const uint32_t n = 6;
	const enum hf_dtype t[] = { HF_DTYPE_F32, HF_DTYPE_F16, HF_DTYPE_BF16 };
	float *y = malloc(n * cols * 4), *want = malloc(n * cols * 4);

	for (int k = 0; k < 3; k++) {
		float *tab = vkt_rand(rows * cols, -4, 4);
		size_t bytes;
		void *td = weights(t[k], tab, rows * cols, &bytes);
		struct hf_vk_buf *bt = vkt_buf(vk, td, bytes);
		struct hf_vk_buf *bi = vkt_buf(vk, ids, sizeof(ids));
		struct hf_vk_buf *by = vkt_buf(vk, NULL, n * cols * 4);

		for (uint32_t r = 0; r < n; r++)
			for (uint32_t c = 0; c < cols; c++)
				want[r * cols + c] = ids[r] >= 0 &&
					(uint32_t)ids[r] < rows ?
					tab[ids[r] * cols + c] : 0.0f;
		RUN(OP(hf_vk_op_get_rows(s, by, bt, t[k], rows, bi, n, cols,
					 &err)););
		vkt_get(vk, y, by, n * cols * 4);
		vkt_close_to("get_rows", y, want, n * cols, 0, 0);
		hf_vk_buf_free(bt);
		hf_vk_buf_free(bi);
		hf_vk_buf_free(by);
		if (td != tab)
			free(td);
		free(tab);
	}
	free(y);
	free(want);
}

static void test_set_rows_scatters_at_device_positions(void **state)
{
	const uint32_t rows = 9, cols = 13, n = 4, stride = 3 * cols;
	const int32_t ids[] = { 4, 0, 8, -2 };
	float *x = vkt_rand(n * stride, -1, 1), *c0 = vkt_rand(rows * cols, -1, 1);
	float *y = malloc(rows * cols * 4), *want = malloc(rows * cols * 4);
	struct hf_vk_buf *bx = vkt_buf(vk, x, n * stride * 4);
	struct hf_vk_buf *bi = vkt_buf(vk, ids, sizeof(ids));
	struct hf_vk_buf *by = vkt_buf(vk, c0, rows * cols * 4);
	struct hf_vk_view vx = { bx, cols, stride };	/* the K of fused QKV */

	memcpy(want, c0, rows * cols * 4);
	for (uint32_t r = 0; r < n; r++)
		if (ids[r] >= 0)
			memcpy(want + ids[r] * cols, x + cols + r * stride,
			       cols * 4);
	RUN(OP(hf_vk_op_set_rows(s, by, rows, vx, bi, n, cols, &err)););
	vkt_get(vk, y, by, rows * cols * 4);
	vkt_close_to("set_rows", y, want, rows * cols, 0, 0);
	hf_vk_buf_free(bx);
	hf_vk_buf_free(bi);
	hf_vk_buf_free(by);
	free(x);
	free(c0);
	free(y);
	free(want);
}

/* add and mul are correctly rounded in Vulkan: exact. scale rounds the
 * product and then the sum (or once, fused): within an ulp of the
 * larger of |a s| and |c|, at most 3.85 here: 4.6e-7 absolute. */
static void test_add_mul_scale_copy(void **state)
{
	const uint32_t n = 7 * 13 + 0, nb = 7;
	float *a = vkt_rand(n, -5, 5), *b = vkt_rand(nb, -5, 5);
	float *y = malloc((n + 10) * 4), *want = malloc((n + 10) * 4);
	struct hf_vk_buf *ba = vkt_buf(vk, a, n * 4);
	struct hf_vk_buf *bb = vkt_buf(vk, b, nb * 4);
	struct hf_vk_buf *by = vkt_buf(vk, NULL, (n + 10) * 4);

	for (uint32_t i = 0; i < n; i++)
		want[i] = a[i] + b[i % nb];
	RUN(OP(hf_vk_op_add(s, by, ba, bb, n, nb, &err)););
	vkt_get(vk, y, by, n * 4);
	vkt_close_to("add", y, want, n, 0, 0);

	for (uint32_t i = 0; i < n; i++)
		want[i] = a[i] * b[i % nb];
	RUN(OP(hf_vk_op_mul(s, by, ba, bb, n, nb, &err)););
	vkt_get(vk, y, by, n * 4);
	vkt_close_to("mul", y, want, n, 0, 0);

	for (uint32_t i = 0; i < n; i++)
		want[i] = (float)((double)a[i] * 0.37f + 2.0);
	RUN(OP(hf_vk_op_scale(s, by, ba, n, 0.37f, 2.0f, &err)););
	vkt_get(vk, y, by, n * 4);
	vkt_close_to("scale", y, want, n, 4.6e-7, 0);

	/* copy n - 3 elements from a + 3 to y + 10 */
	RUN(OP(hf_vk_op_copy(s, by, 10, ba, 3, n - 3, &err)););
	vkt_get(vk, y, by, (n + 7) * 4);
	vkt_close_to("copy", y + 10, a + 3, n - 3, 0, 0);
	hf_vk_buf_free(ba);
	hf_vk_buf_free(bb);
	hf_vk_buf_free(by);
	free(a);
	free(b);
	free(y);
	free(want);
}

static void test_copy_bytes_at_odd_offsets(void **state)
{
	unsigned char src[301], got[257], want[257];
	const size_t reg[][3] = { { 1, 3, 100 }, { 150, 120, 0 },
				  { 200, 130, 101 } };
	struct hf_vk_buf *bs, *bd;

	for (int i = 0; i < 301; i++)
		src[i] = (unsigned char)(i * 7 + 1);
	memset(want, 0xab, sizeof(want));
	memcpy(want + 3, src + 1, 100);
	memcpy(want + 130, src + 200, 101);
	bs = vkt_buf(vk, src, sizeof(src));
	memset(got, 0xab, sizeof(got));
	bd = vkt_buf(vk, got, sizeof(got));
	RUN(OP(hf_vk_op_copy_bytes(s, bd, bs, reg, 3, &err)););
	vkt_get(vk, got, bd, sizeof(got));
	assert_memory_equal(got, want, sizeof(want));
	hf_vk_buf_free(bs);
	hf_vk_buf_free(bd);
}

/* ---- MoE ----------------------------------------------------------------
 * Ids exact (ties to the lower index, torch.topk's CPU order); weights
 * 1e-6 relative: float32 exp and sums over 8 experts. */
static void test_moe_topk(void **state)
{
	const uint32_t T = 5, E = 8, K = 3;
	float *l = vkt_rand(T * E, -3, 3), w[5 * 3], want_w[5 * 3];
	int32_t ids[5 * 3], want_id[5 * 3];
	struct hf_vk_buf *bl, *bi, *bw;

	l[2 * E + 1] = l[2 * E + 6] = l[2 * E + 3] = 4.0f;	/* a 3-way tie */
	bl = vkt_buf(vk, l, T * E * 4);
	bi = vkt_buf(vk, NULL, T * K * 4);
	bw = vkt_buf(vk, NULL, T * K * 4);
	for (int norm = 0; norm < 2; norm++) {
		for (uint32_t t = 0; t < T; t++) {
			const float *r = l + t * E;
			double m = -INFINITY, s = 0, picked = 0;
			bool used[8] = { 0 };

			for (uint32_t e = 0; e < E; e++)
				m = fmax(m, r[e]);
			for (uint32_t e = 0; e < E; e++)
				s += exp(r[e] - m);
			for (uint32_t k = 0; k < K; k++) {
				int best = -1;

				for (uint32_t e = 0; e < E; e++)
					if (!used[e] && (best < 0 || r[e] > r[best]))
						best = (int)e;
				used[best] = true;
				want_id[t * K + k] = best;
				want_w[t * K + k] = (float)(exp(r[best] - m) / s);
				picked += exp(r[best] - m) / s;
			}
			if (norm)
				for (uint32_t k = 0; k < K; k++)
					want_w[t * K + k] =
						(float)(want_w[t * K + k] / picked);
		}
		RUN(OP(hf_vk_op_moe_topk(s, bi, bw, bl, T, E, K, norm,
					 &err)););
		vkt_get(vk, ids, bi, sizeof(ids));
		vkt_get(vk, w, bw, sizeof(w));
		for (uint32_t i = 0; i < T * K; i++)
			if (ids[i] != want_id[i])
				fail_msg("moe_topk: index %u: got expert %d, want %d",
					 i, ids[i], want_id[i]);
		vkt_close_to("moe_topk weights", w, want_w, T * K, 0, 1e-6);
	}
	hf_vk_buf_free(bl);
	hf_vk_buf_free(bi);
	hf_vk_buf_free(bw);
	free(l);
}

/* In order, one fma per step at most: 2 ulp relative per term. */
static void test_add_rows_in_order(void **state)
{
	const uint32_t ny = 6, cols = 19, n = 5;
	const int32_t rows[] = { 2, 5, 2, 7, 0 };
	float *x = vkt_rand(n * cols, -1, 1), *w = vkt_rand(n, 0, 1);
	float *y0 = vkt_rand(ny * cols, -1, 1);
	float *y = malloc(ny * cols * 4), *want = malloc(ny * cols * 4);
	struct hf_vk_buf *bx = vkt_buf(vk, x, n * cols * 4);
	struct hf_vk_buf *br = vkt_buf(vk, rows, sizeof(rows));
	struct hf_vk_buf *bw = vkt_buf(vk, w, n * 4);
	struct hf_vk_buf *by = vkt_buf(vk, y0, ny * cols * 4);

	memcpy(want, y0, ny * cols * 4);
	for (uint32_t i = 0; i < n; i++)
		if (rows[i] >= 0 && (uint32_t)rows[i] < ny)
			for (uint32_t c = 0; c < cols; c++)
				want[rows[i] * cols + c] += w[i] * x[i * cols + c];
	RUN(OP(hf_vk_op_add_rows(s, by, ny, bx, br, bw, n, cols, &err)););
	vkt_get(vk, y, by, ny * cols * 4);
	vkt_close_to("add_rows", y, want, ny * cols, 1e-7, 5e-7);
	hf_vk_buf_free(bx);
	hf_vk_buf_free(br);
	hf_vk_buf_free(bw);
	hf_vk_buf_free(by);
	free(x);
	free(w);
	free(y0);
	free(y);
	free(want);
}

/* ---- float16 products and the MoE ops ------------------------------------ */

/* The *_hmul variants with float16 products: in % 4 == 0 and an even
 * start take them (the others fall back to float32 and must still
 * pass), n from 1 (decode) to 37 (tiled). */
static void test_f16_products_matvec_and_tiled(void **state)
{
	check_matmul(HF_DTYPE_F16, 1, 68, 45, true, 0, 0);
	check_matmul(HF_DTYPE_F16, 3, 132, 7, false, 0, 0);
	check_matmul(HF_DTYPE_F16, 2, 1028, 29, true, 0, 0);
	check_matmul(HF_DTYPE_F16, 37, 52, 70, true, 1, 0);
	check_matmul(HF_DTYPE_F16, 1, 20, 33, false, 1, 0);
	check_matmul(HF_DTYPE_F16, 6, 1028, 9, false, -1, 0);
	/* an odd start and an odd row length: the float32 kernels */
	check_matmul(HF_DTYPE_F16, 1, 21, 13, false, 0, 21 * 13 + 3);
	check_matmul(HF_DTYPE_F16, 5, 67, 13, false, 1, 0);
	/* other dtypes are untouched */
	check_matmul(HF_DTYPE_BF16, 2, 68, 29, true, 0, 0);
	check_matmul(HF_DTYPE_F32, 9, 68, 29, true, 1, 0);
}

/* Proof that the float16 path runs: x = 1 + 2^-13 is not a float16 (it
 * rounds to 1), so with W = 1 a row of 4 sums to 4 in float16 products
 * and to 4 + 2^-11 in float32. */
static void test_f16_products_round_x_to_f16(void **state)
{
	const float x[4] = { 1.0f + 0x1p-13f, 1.0f + 0x1p-13f,
			     1.0f + 0x1p-13f, 1.0f + 0x1p-13f };
	const uint16_t w[8] = { 0x3c00, 0x3c00, 0x3c00, 0x3c00,
				0x3c00, 0x3c00, 0x3c00, 0x3c00 };	/* 1.0 */
	struct hf_vk_buf *bx = vkt_buf(vk, x, sizeof(x));
	struct hf_vk_buf *bw = vkt_buf(vk, w, sizeof(w));
	struct hf_vk_buf *by = vkt_buf(vk, NULL, 8);
	const float want = hf_vk_f16_arith(vk) ? 4.0f : 4.0f + 0x1p-11f;
	float y[2];

	for (int tiled = 0; tiled < 2; tiled++) {
		RUN(OP(hf_vk_op_matmul_kernel(s, by, bx, bw, HF_WFMT_F16, 0,
					      NULL, 1, 4, 2, tiled, &err)););
		vkt_get(vk, y, by, sizeof(y));
		for (int i = 0; i < 2; i++)
			if (y[i] != want)
				fail_msg("f16 products %s: y[%d] = %.9g, want %.9g",
					 tiled ? "tiled" : "matvec", i, y[i],
					 want);
	}
	hf_vk_buf_free(bx);
	hf_vk_buf_free(bw);
	hf_vk_buf_free(by);
}

/* matmul_id against its C twin: n tokens of k slots, E stacked matrices
 * (out, in) of dtype t, x shared by a token's slots or one row per slot,
 * ids with one out of range (a row of zeros). Tolerance: that of the
 * matrix products above (mm_rel). */
/* An id outside [0, E), -1 or E in turn. */
static int32_t r_bad_id(uint32_t E)
{
	static int turn;

	return turn++ % 2 ? -1 : (int32_t)E;
}

static void check_matmul_id(enum hf_dtype t, uint32_t n, uint32_t k,
			    uint32_t E, uint32_t in, uint32_t out, bool x_slot)
{
	const uint32_t nk = n * k, nx = x_slot ? nk : n;
	float *x = vkt_rand((size_t)nx * in, -1, 1);
	float *w = vkt_rand((size_t)E * out * in, -1, 1);
	int32_t *ids = malloc(nk * sizeof(*ids));
	float *y = malloc((size_t)nk * out * 4);
	float *want = malloc((size_t)nk * out * 4);
	float *bound = malloc((size_t)nk * out * 4);
	size_t wb;
	void *wd = weights(t, w, (size_t)E * out * in, &wb);
	struct hf_vk_buf *bx, *bw, *bi, *by;

	for (uint32_t r = 0; r < nk; r++)
		ids[r] = (int32_t)((r * 7 + r / k * 3) % E);
	ids[nk / 2] = r_bad_id(E);
	bx = vkt_buf(vk, x, (size_t)nx * in * 4);
	bw = vkt_buf(vk, wd, wb);
	bi = vkt_buf(vk, ids, nk * 4);
	by = vkt_buf(vk, NULL, (size_t)nk * out * 4);
	for (uint32_t r = 0; r < nk; r++)
		for (uint32_t o = 0; o < out; o++) {
			const float *xr = x + (size_t)(x_slot ? r : r / k) * in;
			double sum = 0, a = 0;

			if (ids[r] >= 0 && (uint32_t)ids[r] < E)
				for (uint32_t i = 0; i < in; i++) {
					double p = (double)xr[i] *
						w[((size_t)ids[r] * out + o) *
						  in + i];

					sum += p;
					a += fabs(p);
				}
			want[(size_t)r * out + o] = (float)sum;
			bound[(size_t)r * out + o] =
				(float)(mm_rel * a + 1e-7 + mm_abs_per_in * in);
		}
	RUN(OP(hf_vk_op_matmul_id(s, by, bx, x_slot, bw, wf(t), E, bi, n, k, in,
				  out, &err)););
	vkt_get(vk, y, by, (size_t)nk * out * 4);
	for (size_t i = 0; i < (size_t)nk * out; i++)
		if (!(fabs(y[i] - want[i]) <= bound[i]))
			fail_msg("matmul_id %s n=%u k=%u E=%u in=%u out=%u x_slot %d: index %zu (expert %d): got %.9g, want %.9g",
				 hf_dtype_name(t), n, k, E, in, out, x_slot, i,
				 ids[i / out], y[i], want[i]);
	hf_vk_buf_free(bx);
	hf_vk_buf_free(bw);
	hf_vk_buf_free(bi);
	hf_vk_buf_free(by);
	if (wd != w)
		free(wd);
	free(x);
	free(w);
	free(ids);
	free(y);
	free(want);
	free(bound);
}

static void test_matmul_id_all_dtypes(void **state)
{
	const enum hf_dtype t[] = { HF_DTYPE_F32, HF_DTYPE_F16, HF_DTYPE_BF16 };

	for (int i = 0; i < 3; i++) {
		check_matmul_id(t[i], 1, 2, 4, 67, 45, false);
		check_matmul_id(t[i], 3, 2, 5, 68, 29, false);
		check_matmul_id(t[i], 3, 2, 5, 29, 68, true);
		check_matmul_id(t[i], 2, 3, 7, 132, 13, true);
	}
}

/* Run with 1 KiB bindings: stacks of 3-7 KiB go in windows of one or
 * two matrices, a dispatch each. */
static void test_matmul_id_over_binding_windows(void **state)
{
	check_matmul_id(HF_DTYPE_F32, 3, 2, 5, 21, 9, false);
	check_matmul_id(HF_DTYPE_BF16, 2, 3, 7, 20, 11, true);
	check_matmul_id(HF_DTYPE_F16, 1, 2, 4, 40, 12, false);
}

/* In slot order from zero, one fma per step at most: 2 ulp relative per
 * term against the float twin. */
static void test_moe_sum(void **state)
{
	const uint32_t n = 3, k = 3, cols = 37;
	float *x = vkt_rand(n * k * cols, -1, 1), *w = vkt_rand(n * k, 0, 1);
	float *y = malloc(n * cols * 4), *want = malloc(n * cols * 4);
	struct hf_vk_buf *bx = vkt_buf(vk, x, n * k * cols * 4);
	struct hf_vk_buf *bw = vkt_buf(vk, w, n * k * 4);
	struct hf_vk_buf *by = vkt_buf(vk, NULL, n * cols * 4);

	for (uint32_t t = 0; t < n; t++)
		for (uint32_t c = 0; c < cols; c++) {
			float sum = 0.0f;

			for (uint32_t j = 0; j < k; j++)
				sum += w[t * k + j] * x[(t * k + j) * cols + c];
			want[t * cols + c] = sum;
		}
	RUN(OP(hf_vk_op_moe_sum(s, by, bx, bw, n, k, cols, &err)););
	vkt_get(vk, y, by, n * cols * 4);
	vkt_close_to("moe_sum", y, want, n * cols, 1e-7, 5e-7);
	hf_vk_buf_free(bx);
	hf_vk_buf_free(bw);
	hf_vk_buf_free(by);
	free(x);
	free(w);
	free(y);
	free(want);
}

static int setup_f16(void **state, bool plain)
{
	struct hf_vk_opts o = { .f16_arith = 1, .no_subgroups = plain };

	vk = vkt_open_with(o);
	if (!hf_vk_f16_arith(vk))
		printf("no shaderFloat16 on '%s': the f16 products groups run the float32 kernels\n",
		       hf_vk_info(vk)->name);
	mm_rel = 3e-3;
	mm_abs_per_in = 0x1p-25;
	return 0;
}

static int setup_f16_sg(void **state)
{
	return setup_f16(state, false);
}

static int setup_f16_plain(void **state)
{
	return setup_f16(state, true);
}

static int teardown_f16(void **state)
{
	mm_rel = 1e-5;
	mm_abs_per_in = 0.0;
	return teardown(state);
}

#define TESTS \
	cmocka_unit_test(test_matvec_f32_f16_bf16), \
	cmocka_unit_test(test_matmul_tiled_f32_f16_bf16), \
	cmocka_unit_test(test_matmul_reads_weights_at_an_offset), \
	cmocka_unit_test(test_rms_norm), \
	cmocka_unit_test(test_layer_norm), \
	cmocka_unit_test(test_softmax), \
	cmocka_unit_test(test_rope_half_and_interleaved), \
	cmocka_unit_test(test_attention_prefill_causal_gqa), \
	cmocka_unit_test(test_attention_decode_over_blocks_with_mask), \
	cmocka_unit_test(test_attention_sliding_window), \
	cmocka_unit_test(test_attention_bidirectional_with_padding), \
	cmocka_unit_test(test_attention_positions_from_buffer_and_softcap), \
	cmocka_unit_test(test_glu_and_activations), \
	cmocka_unit_test(test_get_rows_all_dtypes), \
	cmocka_unit_test(test_set_rows_scatters_at_device_positions), \
	cmocka_unit_test(test_add_mul_scale_copy), \
	cmocka_unit_test(test_copy_bytes_at_odd_offsets), \
	cmocka_unit_test(test_moe_topk), \
	cmocka_unit_test(test_add_rows_in_order), \
	cmocka_unit_test(test_matmul_id_all_dtypes), \
	cmocka_unit_test(test_moe_sum), \
	cmocka_unit_test(test_f16_products_round_x_to_f16)

int main(void)
{
	const struct CMUnitTest tests[] = { TESTS };
	const struct CMUnitTest windowed[] = {
		cmocka_unit_test(test_matmul_over_binding_windows),
		cmocka_unit_test(test_get_rows_all_dtypes),
		cmocka_unit_test(test_matmul_id_over_binding_windows),
	};
	const struct CMUnitTest f16[] = {
		cmocka_unit_test(test_f16_products_matvec_and_tiled),
		cmocka_unit_test(test_f16_products_round_x_to_f16),
		cmocka_unit_test(test_matmul_id_all_dtypes),
	};
	const struct CMUnitTest attention[] = {
		cmocka_unit_test(test_attention_prefill_causal_gqa),
		cmocka_unit_test(test_attention_decode_over_blocks_with_mask),
		cmocka_unit_test(test_attention_sliding_window),
		cmocka_unit_test(test_attention_bidirectional_with_padding),
		cmocka_unit_test(test_attention_positions_from_buffer_and_softcap),
	};
	int rc;

	/* first with subgroup reductions (where the device has them), then
	 * with the shared-memory path every device runs */
	rc = cmocka_run_group_tests_name("subgroup", tests, setup_sg,
					 teardown);
	rc |= cmocka_run_group_tests_name("plain", tests, setup_plain,
					  teardown);
	rc |= cmocka_run_group_tests_name("windowed", windowed, setup_windowed,
					  teardown);
	rc |= cmocka_run_group_tests_name("workgroup attention", attention,
					  setup_wg_attention, teardown);
	/* f16 weights multiplied in float16, with subgroup reductions and
	 * with the shared-memory kernels */
	rc |= cmocka_run_group_tests_name("f16 products", f16, setup_f16_sg,
					  teardown_f16);
	rc |= cmocka_run_group_tests_name("f16 products, plain", f16,
					  setup_f16_plain, teardown_f16);
	return rc;
}
