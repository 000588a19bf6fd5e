/* Tests for the quantized weight formats on the Vulkan backend
 * (lib/backend/vulkan/ops.c hf_vk_op_matmul_q, shaders/weights.glsl):
 * random packed weights of every format and variant (test/unit/quant/
 * qrand.h) uploaded as stored, multiplied through the backend
 * (hf_op_linear, MATMUL_ID) and compared with the CPU's hf_matmul_w on
 * the same host tensors, the ground truth lib/quant/formats.c reads. On
 * awkward sizes (out not a multiple of any workgroup, in odd where the
 * format allows), n = 1 and 3 (matvec) and 17 (tiled), on row views
 * (hf_wbuf_rows: a fused projection's parts), with subgroups and
 * without. The dequantization itself is checked bit for bit: one-hot
 * inputs give the elements of W back exactly. */
#include "vkt.h"

#include "../quant/qrand.h"
#include "backend/backend.h"
#include "backend/vulkan/backend_vk.h"
#include "tensor/matmul.h"

static struct hf_backend *vkb;

/* Record ops between begin and run via a statement block (as ops.c). */
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

static int open_be(void)
{
	struct hf_err err = { 0 };

	setenv("HF_VK_VALIDATE", "1", 1);
	setenv("XDG_CACHE_HOME", vkt_cache_dir(), 1);
	vkt_env();
	if (hf_backend_vulkan_create(&vkb, &err))
		fail_msg("%s", err.msg);
	return 0;
}

static int setup_sg(void **state)
{
	unsetenv("HF_VK_NO_SUBGROUPS");
	return open_be();
}

static int setup_plain(void **state)
{
	setenv("HF_VK_NO_SUBGROUPS", "1", 1);
	open_be();
	unsetenv("HF_VK_NO_SUBGROUPS");
	return 0;
}

static int teardown(void **state)
{
	unsigned n = hf_vk_validation_errors(hf_backend_vulkan_dev(vkb));

	hf_backend_free(vkb);
	vkb = NULL;
	if (n)
		fail_msg("%u validation errors (see stderr)", n);
	return 0;
}

/* The formats under test, and how many variants qrand_make has of each. */
static const struct {
	enum hf_wfmt f;
	unsigned nvar;
} fmts[] = {
	{ HF_WFMT_INT8, 1 }, { HF_WFMT_BNB4, 4 }, { HF_WFMT_BNB4DQ, 8 },
	{ HF_WFMT_GPTQ, 16 }, { HF_WFMT_AWQ, 1 }, { HF_WFMT_BITNET, 1 },
	{ HF_WFMT_FP8, 2 },
};

/* (rows, cols) tried for each format: the first ones awkward (odd, no
 * multiple of 4), the later ones what GPTQ 3-bit and AWQ take. */
static const size_t shapes[][2] = {
	{ 45, 67 }, { 44, 131 }, { 40, 48 }, { 72, 80 }, { 96, 64 },
};

/* Bytes of tensor i of a qrand weight (the sizes qrand_make allocates),
 * and the dtype it is stored in. */
static size_t tbytes(const struct qrand *q, unsigned i, enum hf_dtype *dt)
{
	const struct hf_weight *w = &q->w;
	const size_t rows = w->rows, cols = w->cols, n = rows * cols;
	const size_t g = w->q.group, nb = g ? (n + g - 1) / g : 0;

	*dt = HF_DTYPE_F32;
	if (!q->t[i])
		return 0;
	switch (w->fmt) {
	case HF_WFMT_INT8:
		*dt = i ? HF_DTYPE_F32 : HF_DTYPE_I8;
		return i ? rows * 4 : n;
	case HF_WFMT_BNB4:
	case HF_WFMT_BNB4DQ: {
		const int dq = w->fmt == HF_WFMT_BNB4DQ;

		*dt = i == 0 || (i == 1 && dq) ? HF_DTYPE_U8 : HF_DTYPE_F32;
		switch (i) {
		case 0: return (n + 1) / 2;
		case 1: return dq ? nb : nb * 4;
		case 2: return 64;
		case 3: return (nb + w->q.group2 - 1) / w->q.group2 * 4;
		default: return 1024;
		}
	}
	case HF_WFMT_GPTQ: {
		const size_t b = w->q.bits, G = (cols + g - 1) / g;

		*dt = i == 2 ? HF_DTYPE_F16 : HF_DTYPE_I32;
		switch (i) {
		case 0: return cols * b / 32 * rows * 4;
		case 1: return G * rows * b / 32 * 4;
		case 2: return G * rows * 2;
		default: return cols * 4;
		}
	}
	case HF_WFMT_AWQ: {
		const size_t G = cols / g;

		*dt = i == 2 ? HF_DTYPE_F16 : HF_DTYPE_I32;
		switch (i) {
		case 0: return cols * rows / 8 * 4;
		case 1: return G * rows / 8 * 4;
		default: return G * rows * 2;
		}
	}
	case HF_WFMT_BITNET:
		*dt = HF_DTYPE_U8;
		return n / 4;
	case HF_WFMT_FP8:
		*dt = i ? HF_DTYPE_F32 : HF_DTYPE_F8_E4M3;
		return i ? (rows + w->q.group2 - 1) / w->q.group2 *
			   ((cols + g - 1) / g) * 4 : n;
	default:
		return 0;
	}
}

/* The device copy of q's tensors, as stored. */
static void upload(struct hf_wbuf *wb, const struct qrand *q)
{
	struct hf_err err = { 0 };

	memset(wb, 0, sizeof(*wb));
	wb->fmt = q->w.fmt;
	wb->rows = q->w.rows;
	wb->cols = q->w.cols;
	wb->q = q->w.q;
	for (unsigned i = 0; i < HF_WEIGHT_NT; i++) {
		enum hf_dtype dt;
		size_t bytes = tbytes(q, i, &dt);

		if (!bytes)
			continue;
		if (hf_buf_alloc(&wb->t[i], vkb, dt,
				 bytes / hf_dtype_size(dt, 1), &err) ||
		    hf_buf_upload(wb->t[i], 0, q->t[i], bytes, &err))
			fail_msg("tensor %u: %s", i, err.msg);
	}
}

static void wbuf_free(struct hf_wbuf *wb)
{
	for (unsigned i = 0; i < HF_WEIGHT_NT; i++)
		hf_buf_free(wb->t[i]);
}

static struct hf_buf *fbuf(size_t n, const float *init)
{
	struct hf_err err = { 0 };
	struct hf_buf *b;

	if (hf_buf_alloc(&b, vkb, HF_DTYPE_F32, n ? n : 1, &err) ||
	    (init && hf_buf_upload(b, 0, init, n * 4, &err)))
		fail_msg("%s", err.msg);
	return b;
}

static void fget(const struct hf_buf *b, float *dst, size_t n)
{
	struct hf_err err = { 0 };

	if (hf_buf_download(b, 0, dst, n * 4, &err))
		fail_msg("download: %s", err.msg);
}

/* What a case is called in a failure message. */
static char what[128];

static void name_case(const struct hf_weight *w, unsigned v, size_t n,
		      const char *kind)
{
	snprintf(what, sizeof(what), "%s v%u %zux%zu roff %zu n=%zu %s",
		 hf_wfmt_name(w->fmt), v, w->rows, w->cols, w->q.roff, n,
		 kind);
}

/* y = x . W^T + bias on the device for device weight wb, against
 * hf_matmul_w on its host twin hw.
 * Tolerance: |got - want| <= 1e-5 * sum_i |x_i w_i| + 1e-6. Both sum
 * the same dequantized values in float32, in other orders; the error of
 * each float sum of n <= 131 terms is under n * 2^-24 * sum |terms|
 * (8e-6), and the values are the same floats (see the one-hot test). */
static void check_linear(const struct hf_wbuf *wb, const struct hf_weight *hw,
			 size_t n, int bias)
{
	const size_t in = hw->cols, out = hw->rows;
	float *x = vkt_rand(n * in, -1, 1), *b = vkt_rand(out, -1, 1);
	float *y = malloc(n * out * 4), *want = malloc(n * out * 4);
	float *wd = malloc(out * in * 4);
	struct hf_buf *bx = fbuf(n * in, x), *by = fbuf(n * out, NULL);
	struct hf_buf *bb = bias ? fbuf(out, b) : NULL;
	struct hf_err err = { 0 };

	hf_matmul_w(want, x, hw, bias ? b : NULL, n, HF_DTYPE_F32, NULL);
	hf_weight_dequant(wd, hw, 0, out, 0, in);
	hf_op_linear(by, bx, wb, bb, n);
	if (hf_backend_sync(vkb, &err))
		fail_msg("%s: %s", what, err.msg);
	fget(by, y, n * out);
	for (size_t t = 0; t < n; t++)
		for (size_t o = 0; o < out; o++) {
			double a = bias ? fabs(b[o]) : 0.0;
			const size_t i = t * out + o;

			for (size_t c = 0; c < in; c++)
				a += fabs((double)x[t * in + c] * wd[o * in + c]);
			if (!(fabs(y[i] - want[i]) <= 1e-5 * a + 1e-6))
				fail_msg("%s: y[%zu][%zu]: got %.9g, want %.9g",
					 what, t, o, y[i], want[i]);
		}
	hf_buf_free(bx);
	hf_buf_free(by);
	hf_buf_free(bb);
	free(x);
	free(b);
	free(y);
	free(want);
	free(wd);
}

/* Each format, variant and shape it takes, n = 1, 3, 17, with and
 * without a bias. */
static void test_linear_matches_the_cpu_in_every_format(void **state)
{
	static const size_t ns[] = { 1, 3, 17 };

	for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++)
		for (unsigned v = 0; v < fmts[f].nvar; v++)
			for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]);
			     s++) {
				const size_t r = shapes[s][0], c = shapes[s][1];
				struct qrand q;
				struct hf_wbuf wb;

				if (!qrand_fits(fmts[f].f, r, c, v))
					continue;
				qrand_make(&q, fmts[f].f, r, c, v,
					   (uint32_t)(1000 * f + 10 * v + s));
				upload(&wb, &q);
				for (size_t k = 0; k < 3; k++) {
					name_case(&q.w, v, ns[k], "linear");
					check_linear(&wb, &q.w, ns[k], k != 1);
				}
				wbuf_free(&wb);
				qrand_free(&q);
			}
}

/* A fused projection's parts: rows [r0, r0 + len) of the stored matrix
 * through hf_wbuf_rows (views that cut the buffers for int8, the whole
 * buffers and a row offset for the others), against the CPU on
 * hf_weight_rows of the same host weight. */
static void test_row_views_match_the_cpu(void **state)
{
	for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++)
		for (unsigned v = 0; v < fmts[f].nvar; v++) {
			size_t r = 0, c = 0;
			struct qrand q;
			struct hf_wbuf wb;

			for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]);
			     s++)
				if (qrand_fits(fmts[f].f, shapes[s][0],
					       shapes[s][1], v)) {
					r = shapes[s][0];
					c = shapes[s][1];
					break;
				}
			assert_true(r > 0);
			qrand_make(&q, fmts[f].f, r, c, v,
				   (uint32_t)(7000 + 100 * f + v));
			upload(&wb, &q);
			/* three parts as q, k, v: uneven, the middle one odd */
			const size_t cut[4] = { 0, r / 2 - 3, r - 5, r };

			for (int p = 0; p < 3; p++) {
				struct hf_err err = { 0 };
				struct hf_wbuf wv;
				struct hf_weight hv;
				const size_t r0 = cut[p], len = cut[p + 1] - cut[p];

				if (hf_wbuf_rows(&wv, &wb, r0, len, &err) ||
				    hf_weight_rows(&hv, &q.w, r0, len, &err))
					fail_msg("rows: %s", err.msg);
				name_case(&hv, v, 3, "rows");
				check_linear(&wv, &hv, 3, 1);
				name_case(&hv, v, 17, "rows");
				check_linear(&wv, &hv, 17, 0);
				for (unsigned i = 0; i < HF_WEIGHT_NT; i++)
					hf_buf_free(wv.t[i]);
			}
			wbuf_free(&wb);
			qrand_free(&q);
		}
}

/* One-hot inputs: y[t][o] = 1 * W[o][t] + a sum of zeros, so the device
 * must give back exactly the floats hf_weight_dequant gives, through the
 * tiled kernel (all columns at once) and the matrix-vector one (one
 * column at a time). */
static void test_dequantization_is_exact(void **state)
{
	for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++)
		for (unsigned v = 0; v < fmts[f].nvar; v++) {
			const size_t r = 96, c = 64;	/* every format takes it */
			float *x = calloc(c * c, 4), *y = malloc(c * r * 4);
			float *wd = malloc(r * c * 4);
			struct hf_buf *bx, *by;
			struct hf_err err = { 0 };
			struct qrand q;
			struct hf_wbuf wb;

			assert_true(qrand_fits(fmts[f].f, r, c, v));
			qrand_make(&q, fmts[f].f, r, c, v,
				   (uint32_t)(9000 + 100 * f + v));
			upload(&wb, &q);
			hf_weight_dequant(wd, &q.w, 0, r, 0, c);
			for (size_t i = 0; i < c; i++)
				x[i * c + i] = 1.0f;
			bx = fbuf(c * c, x);
			by = fbuf(c * r, NULL);
			hf_op_linear(by, bx, &wb, NULL, c);
			if (hf_backend_sync(vkb, &err))
				fail_msg("%s", err.msg);
			fget(by, y, c * r);
			for (size_t t = 0; t < c; t++)
				for (size_t o = 0; o < r; o++)
					if (y[t * r + o] != wd[o * c + t])
						fail_msg("%s v%u tiled: W[%zu][%zu]: got %.9g, want %.9g",
							 hf_wfmt_name(q.w.fmt), v, o, t,
							 y[t * r + o], wd[o * c + t]);
			/* the last column through the matrix-vector kernel */
			{
				struct hf_buf *xv;

				hf_buf_view(&xv, bx, (c - 1) * c, c, &err);
				hf_op_linear(by, xv, &wb, NULL, 1);
				if (hf_backend_sync(vkb, &err))
					fail_msg("%s", err.msg);
				fget(by, y, r);
				for (size_t o = 0; o < r; o++)
					if (y[o] != wd[o * c + c - 1])
						fail_msg("%s v%u matvec: W[%zu][%zu]: got %.9g, want %.9g",
							 hf_wfmt_name(q.w.fmt), v, o,
							 c - 1, y[o], wd[o * c + c - 1]);
				hf_buf_free(xv);
			}
			hf_buf_free(bx);
			hf_buf_free(by);
			wbuf_free(&wb);
			qrand_free(&q);
			free(x);
			free(y);
			free(wd);
		}
}

/* MATMUL_ID on a stack of E quantized experts (rows [e * out, (e + 1)
 * * out) of one weight), ids with an out-of-range one (zeros), inputs
 * per token and per slot, against hf_matmul_w per row on the expert's
 * rows. Tolerance as check_linear. */
static void check_matmul_id(const struct qrand *q, const struct hf_wbuf *wb,
			    size_t E, size_t n, size_t k, int x_slot)
{
	const size_t in = q->w.cols, out = q->w.rows / E, nk = n * k;
	const size_t nx = x_slot ? nk : n;
	float *x = vkt_rand(nx * in, -1, 1), *y = malloc(nk * out * 4);
	float *want = malloc(out * 4), *wd = malloc(out * in * 4);
	int32_t *ids = malloc(nk * 4);
	struct hf_buf *bx = fbuf(nx * in, x), *by = fbuf(nk * out, NULL);
	struct hf_buf *bi;
	struct hf_err err = { 0 };
	struct hf_op op = { HF_OP_MATMUL_ID };

	for (size_t i = 0; i < nk; i++)
		ids[i] = i == 1 ? (int32_t)E : (int32_t)((i * 7 + 1) % E);
	if (hf_buf_alloc(&bi, vkb, HF_DTYPE_I32, nk, &err) ||
	    hf_buf_upload(bi, 0, ids, nk * 4, &err))
		fail_msg("%s", err.msg);
	op.dst = by;
	op.src[0] = bx;
	op.src[1] = wb->t[0];
	op.src[2] = bi;
	op.ip[0] = (int64_t)n;
	op.ip[1] = (int64_t)k;
	op.ip[2] = (int64_t)in;
	op.ip[3] = (int64_t)out;
	op.ip[4] = (int64_t)E;
	op.ip[5] = x_slot;
	op.w = *wb;
	if (!hf_backend_supports(vkb, &op, &err))
		fail_msg("%s: refused: %s", what, err.msg);
	hf_op_run(vkb, &op);
	if (hf_backend_sync(vkb, &err))
		fail_msg("%s: %s", what, err.msg);
	fget(by, y, nk * out);
	for (size_t r = 0; r < nk; r++) {
		const float *xr = x + (x_slot ? r : r / k) * in;
		struct hf_weight we;

		if (ids[r] >= (int32_t)E) {
			for (size_t o = 0; o < out; o++)
				if (y[r * out + o] != 0.0f)
					fail_msg("%s: row %zu of id %d: y[%zu] = %g, want 0",
						 what, r, ids[r], o, y[r * out + o]);
			continue;
		}
		if (hf_weight_rows(&we, &q->w, (size_t)ids[r] * out, out, &err))
			fail_msg("%s", err.msg);
		hf_matmul_w(want, xr, &we, NULL, 1, HF_DTYPE_F32, NULL);
		hf_weight_dequant(wd, &we, 0, out, 0, in);
		for (size_t o = 0; o < out; o++) {
			double a = 0.0;

			for (size_t c = 0; c < in; c++)
				a += fabs((double)xr[c] * wd[o * in + c]);
			if (!(fabs(y[r * out + o] - want[o]) <= 1e-5 * a + 1e-6))
				fail_msg("%s: row %zu (expert %d) y[%zu]: got %.9g, want %.9g",
					 what, r, ids[r], o, y[r * out + o],
					 want[o]);
		}
	}
	hf_buf_free(bx);
	hf_buf_free(by);
	hf_buf_free(bi);
	free(x);
	free(y);
	free(want);
	free(wd);
	free(ids);
}

static void test_matmul_id_matches_the_cpu_in_every_format(void **state)
{
	/* (out, in) per expert; 3 experts */
	static const size_t sh[][2] = { { 15, 67 }, { 32, 64 } };

	for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++)
		for (unsigned v = 0; v < fmts[f].nvar; v++)
			for (size_t s = 0; s < 2; s++) {
				const size_t E = 3, out = sh[s][0], in = sh[s][1];
				struct qrand q;
				struct hf_wbuf wb;

				if (!qrand_fits(fmts[f].f, E * out, in, v))
					continue;
				qrand_make(&q, fmts[f].f, E * out, in, v,
					   (uint32_t)(5000 + 100 * f + 10 * v + s));
				upload(&wb, &q);
				name_case(&q.w, v, 3, "matmul_id");
				check_matmul_id(&q, &wb, E, 3, 2, 0);
				name_case(&q.w, v, 2, "matmul_id x_slot");
				check_matmul_id(&q, &wb, E, 2, 2, 1);
				wbuf_free(&wb);
				qrand_free(&q);
			}
}

/* The backend says yes to every quantized format for MATMUL and
 * MATMUL_ID, and still no to a quantized embedding table. */
static void test_supports_every_quantized_format(void **state)
{
	for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++) {
		struct hf_err err = { 0 };
		struct hf_op op = { HF_OP_MATMUL };

		op.w.fmt = fmts[f].f;
		assert_true(hf_backend_supports(vkb, &op, &err));
		op.code = HF_OP_MATMUL_ID;
		assert_true(hf_backend_supports(vkb, &op, &err));
	}
	{
		struct hf_err err = { 0 };
		struct hf_buf *t;
		struct hf_op op = { HF_OP_GET_ROWS };

		if (hf_buf_alloc(&t, vkb, HF_DTYPE_I8, 16, &err))
			fail_msg("%s", err.msg);
		op.src[0] = t;
		assert_false(hf_backend_supports(vkb, &op, &err));
		if (!strstr(err.msg, "get_rows"))
			fail_msg("message: %s", err.msg);
		hf_buf_free(t);
	}
}

/* ---- the op level (vk.h): kernels named, bindings limited ---------------- */

/* The device tensors of q on a raw device. */
static void vk_upload(struct hf_vk *vk, struct hf_vk_qweight *qw,
		      struct hf_vk_buf *t[HF_WEIGHT_NT], const struct qrand *q)
{
	memset(qw, 0, sizeof(*qw));
	qw->fmt = q->w.fmt;
	qw->q = q->w.q;
	for (unsigned i = 0; i < HF_WEIGHT_NT; i++) {
		enum hf_dtype dt;
		size_t bytes = tbytes(q, i, &dt);

		t[i] = bytes ? vkt_buf(vk, q->t[i], bytes) : NULL;
		qw->t[i] = t[i];
	}
}

/* hf_vk_op_matmul_q with the kernel forced: matrix-vector products for
 * 17 tokens, the tiled kernel for one; tolerance as check_linear. */
static void test_matmul_q_either_kernel_for_any_n(void **state)
{
	struct hf_vk *vk = vkt_open();
	static const enum hf_wfmt fs[] = { HF_WFMT_GPTQ, HF_WFMT_FP8 };

	for (int f = 0; f < 2; f++)
		for (int kernel = 0; kernel < 2; kernel++) {
			const size_t r = 40, c = 48, n = kernel ? 1 : 17;
			float *x = vkt_rand(n * c, -1, 1), *y = malloc(n * r * 4);
			float *want = malloc(n * r * 4), *wd = malloc(r * c * 4);
			struct hf_vk_buf *t[HF_WEIGHT_NT], *bx, *by;
			struct hf_vk_qweight qw;
			struct qrand q;

			assert_true(qrand_fits(fs[f], r, c, 8));
			qrand_make(&q, fs[f], r, c, 8, 42);
			vk_upload(vk, &qw, t, &q);
			bx = vkt_buf(vk, x, n * c * 4);
			by = vkt_buf(vk, NULL, n * r * 4);
			RUN(OP(hf_vk_op_matmul_q(s, by, bx, &qw, NULL, (uint32_t)n,
						 (uint32_t)c, (uint32_t)r, kernel,
						 &err)););
			vkt_get(vk, y, by, n * r * 4);
			hf_matmul_w(want, x, &q.w, NULL, n, HF_DTYPE_F32, NULL);
			hf_weight_dequant(wd, &q.w, 0, r, 0, c);
			for (size_t i = 0; i < n * r; i++) {
				double a = 0.0;

				for (size_t k = 0; k < c; k++)
					a += fabs((double)x[i / r * c + k] *
						  wd[i % r * c + k]);
				if (!(fabs(y[i] - want[i]) <= 1e-5 * a + 1e-6))
					fail_msg("%s kernel %d: index %zu: got %.9g, want %.9g",
						 hf_wfmt_name(fs[f]), kernel, i,
						 y[i], want[i]);
			}
			for (unsigned i = 0; i < HF_WEIGHT_NT; i++)
				hf_vk_buf_free(t[i]);
			hf_vk_buf_free(bx);
			hf_vk_buf_free(by);
			qrand_free(&q);
			free(x);
			free(y);
			free(want);
			free(wd);
		}
	vkt_close(vk);
}

/* A quantized tensor is read from one binding: one over it is refused
 * with its name, not read in part (the plain formats run in parts of
 * rows instead). */
static void test_matmul_q_refuses_a_tensor_over_a_binding(void **state)
{
	struct hf_vk_opts o = { .max_binding = 1024 };
	struct hf_vk *vk = vkt_open_with(o);
	struct hf_vk_buf *t[HF_WEIGHT_NT], *bx, *by;
	struct hf_vk_qweight qw;
	struct hf_vk_seq *s;
	struct hf_err err = { 0 };
	struct qrand q;
	int rc;

	qrand_make(&q, HF_WFMT_INT8, 45, 67, 0, 1);	/* t[0]: 3015 bytes */
	vk_upload(vk, &qw, t, &q);
	bx = vkt_buf(vk, NULL, 67 * 4);
	by = vkt_buf(vk, NULL, 45 * 4);
	if (hf_vk_seq_begin(vk, &s, &err))
		fail_msg("%s", err.msg);
	rc = hf_vk_op_matmul_q(s, by, bx, &qw, NULL, 1, 67, 45, -1, &err);
	assert_int_equal(rc, HF_EUNSUPPORTED);
	if (!strstr(err.msg, "t[0]"))
		fail_msg("message: %s", err.msg);
	hf_vk_seq_free(s);
	for (unsigned i = 0; i < HF_WEIGHT_NT; i++)
		hf_vk_buf_free(t[i]);
	hf_vk_buf_free(bx);
	hf_vk_buf_free(by);
	qrand_free(&q);
	vkt_close(vk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_supports_every_quantized_format),
		cmocka_unit_test(test_dequantization_is_exact),
		cmocka_unit_test(test_linear_matches_the_cpu_in_every_format),
		cmocka_unit_test(test_row_views_match_the_cpu),
		cmocka_unit_test(test_matmul_id_matches_the_cpu_in_every_format),
	};
	struct hf_backend *be;
	struct hf_err err = { 0 };
	const struct CMUnitTest ops[] = {
		cmocka_unit_test(test_matmul_q_either_kernel_for_any_n),
		cmocka_unit_test(test_matmul_q_refuses_a_tensor_over_a_binding),
	};
	int rc;

	/* no device (or no driver): meson's skip status */
	if (hf_backend_vulkan_create(&be, &err)) {
		printf("no Vulkan device (%s): skipped\n", err.msg);
		return 77;
	}
	hf_backend_free(be);
	rc = cmocka_run_group_tests_name("subgroups", tests, setup_sg,
					 teardown);
	rc |= cmocka_run_group_tests_name("shared memory", tests, setup_plain,
					  teardown);
	rc |= cmocka_run_group_tests_name("ops", ops, NULL, NULL);
	return rc;
}
