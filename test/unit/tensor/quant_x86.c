/* test/unit/tensor/quant_x86.c: the x86 decode kernels of AWQ, FP8 and
 * BitNet (matmul_quant_x86.c) called one by one against the portable C
 * kernel of the same format (mm_generic), on awkward sizes: widths that
 * leave tails under a vector, row ranges that start and end off the
 * kernels' word boundaries, views (w->q.roff), 1 to 4 tokens, with and
 * without a bias, and nothing written outside the rows asked. The AVX2
 * and the AVX-512 table entries each run where the CPU has that ISA.
 * Also every E4M3 code through the panel widening against
 * hf_f8e4m3_to_f32, bit for bit. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tensor/dtype.h"
#include "tensor/matmul.h"
#include "tensor/matmul_kern.h"
#include "tensor/wfmt.h"

#if defined(__x86_64__) || defined(__i386__)

static uint32_t seed;

static uint32_t rnd(void)
{
	seed = seed * 1664525u + 1013904223u;
	return seed >> 8;
}

static float unit(float lo, float hi)
{
	return lo + (hi - lo) * (float)rnd() / 16777216.0f;
}

static void *bytes(size_t n)
{
	uint8_t *p = malloc(n + 16);

	for (size_t i = 0; i < n + 16; i++)
		p[i] = (uint8_t)rnd();
	return p;
}

static float *floats(size_t n, float lo, float hi)
{
	float *p = malloc(n * sizeof(float) + 16);

	for (size_t i = 0; i < n; i++)
		p[i] = unit(lo, hi);
	return p;
}

struct qw {
	struct hf_weight w;
	void *t[HF_WEIGHT_NT];
};

static void qw_done(struct qw *q)
{
	for (unsigned i = 0; i < HF_WEIGHT_NT; i++)
		q->w.t[i] = q->t[i];
	q->w.q.ld = q->w.rows;
}

static void qw_free(struct qw *q)
{
	for (unsigned i = 0; i < HF_WEIGHT_NT; i++)
		free(q->t[i]);
}

/* AWQ gemm: qweight (in, out/8), qzeros (G, out/8), scales F16 (G, out). */
static void make_awq(struct qw *q, size_t rows, size_t cols, size_t gs)
{
	size_t G = cols / gs;
	uint16_t *s = malloc(G * rows * 2 + 16);

	memset(q, 0, sizeof(*q));
	q->w.fmt = HF_WFMT_AWQ;
	q->w.rows = rows;
	q->w.cols = cols;
	q->w.q.bits = 4;
	q->w.q.group = gs;
	q->t[0] = bytes(cols * rows / 2);
	q->t[1] = bytes(G * rows / 2);
	for (size_t i = 0; i < G * rows; i++)
		s[i] = hf_f32_to_f16(unit(0.01f, 0.1f));
	q->t[2] = s;
	qw_done(q);
}

/* FP8 E4M3 (rows, cols), scales (ceil(rows/br), ceil(cols/bc)); no NaN. */
static void make_fp8(struct qw *q, size_t rows, size_t cols, size_t br,
		     size_t bc)
{
	uint8_t *p = bytes(rows * cols);

	memset(q, 0, sizeof(*q));
	for (size_t i = 0; i < rows * cols; i++)
		if ((p[i] & 0x7f) == 0x7f)
			p[i] ^= 1;
	q->w.fmt = HF_WFMT_FP8;
	q->w.rows = rows;
	q->w.cols = cols;
	q->w.q.group = bc;
	q->w.q.group2 = br;
	q->t[0] = p;
	q->t[1] = floats(((rows + br - 1) / br) * ((cols + bc - 1) / bc),
			 0.01f, 0.1f);
	qw_done(q);
}

/* BitNet: U8 (rows/4, cols), the value of row R in bits 2 * (R / (rows/4))
 * of byte (R % (rows/4), c). */
static void make_bitnet(struct qw *q, size_t rows, size_t cols)
{
	uint8_t *p = malloc(rows / 4 * cols + 16);

	memset(q, 0, sizeof(*q));
	for (size_t i = 0; i < rows / 4 * cols + 16; i++) {
		uint8_t b = 0;

		for (int k = 0; k < 4; k++)
			b |= (uint8_t)(rnd() % 3) << (2 * k);
		p[i] = b;
	}
	q->w.fmt = HF_WFMT_BITNET;
	q->w.rows = rows;
	q->w.cols = cols;
	q->w.q.p0 = 0.375f;
	q->t[0] = p;
	qw_done(q);
}

static const char *const isa_name[] = {
	[HF_MATMUL_AVX2] = "avx2", [HF_MATMUL_AVX512] = "avx512",
};

static const struct mm_kern *table(int isa)
{
	return isa == HF_MATMUL_AVX512 ? mm_avx512 : mm_avx2;
}

/* The kernel of the weight's format on isa against mm_generic's, on rows
 * [r0, r1) of the weight (of its view from row v0 when v0 > 0), nt
 * tokens, with a bias or not. */
static void check(int isa, const struct hf_weight *whole, size_t v0,
		  size_t r0, size_t r1, size_t nt, int with_bias)
{
	struct hf_weight view;
	const struct hf_weight *w = whole;
	struct hf_err err = { 0 };
	size_t in = whole->cols, out;
	float *x, *bias, *W, *got, *want;

	if (v0) {
		assert_int_equal(hf_weight_rows(&view, whole, v0,
						whole->rows - v0, &err), 0);
		w = &view;
	}
	out = w->rows;
	assert_true(r1 <= out);
	x = floats(nt * in, -1, 1);
	bias = floats(out, -1, 1);
	W = malloc(out * in * sizeof(float) + 16);
	got = malloc(nt * out * sizeof(float) + 16);
	want = malloc(nt * out * sizeof(float) + 16);
	hf_weight_dequant(W, w, 0, out, 0, in);
	for (size_t i = 0; i < nt * out; i++)
		got[i] = want[i] = -12345.0f;
	assert_non_null(table(isa)[w->fmt].gemv);
	table(isa)[w->fmt].gemv(got, out, x, nt, w, with_bias ? bias : NULL,
				r0, r1);
	mm_generic[w->fmt].gemv(want, out, x, nt, w, with_bias ? bias : NULL,
				r0, r1);
	for (size_t t = 0; t < nt; t++)
		for (size_t r = 0; r < out; r++) {
			double mag = with_bias ? fabs(bias[r]) : 0;
			float g = got[t * out + r], e = want[t * out + r];

			for (size_t k = 0; k < in; k++)
				mag += fabs((double)x[t * in + k] *
					    W[r * in + k]);
			if (r < r0 || r >= r1) {
				if (g != -12345.0f)
					fail_msg("%s %s (%zu, %zu) view %zu rows [%zu, %zu) nt %zu: wrote y[%zu][%zu] outside",
						 isa_name[isa],
						 hf_wfmt_name(w->fmt),
						 whole->rows, in, v0, r0, r1,
						 nt, t, r);
				continue;
			}
			if (!(fabs((double)g - e) <= 2e-5 * mag + 1e-30))
				fail_msg("%s %s (%zu, %zu) view %zu rows [%zu, %zu) nt %zu bias %d: y[%zu][%zu] %.9g, generic %.9g",
					 isa_name[isa], hf_wfmt_name(w->fmt),
					 whole->rows, in, v0, r0, r1, nt,
					 with_bias, t, r, g, e);
		}
	free(x);
	free(bias);
	free(W);
	free(got);
	free(want);
}

/* Row ranges of a weight of `out` rows: all, and ones off any boundary. */
static size_t ranges(size_t out, size_t rr[][2])
{
	size_t n = 0;

	rr[n][0] = 0, rr[n++][1] = out;
	if (out > 3)
		rr[n][0] = 1, rr[n++][1] = out - 2;
	if (out > 40)
		rr[n][0] = 8, rr[n++][1] = out - 5;
	if (out > 2)
		rr[n][0] = out / 2, rr[n++][1] = out / 2 + 1;
	return n;
}

/* Every range, token count and bias of a weight and its view from v0. */
static void check_all(int isa, const struct hf_weight *w, size_t v0)
{
	size_t rr[4][2], nr = ranges(w->rows - v0, rr);

	for (size_t i = 0; i < nr; i++)
		for (size_t nt = 1; nt <= MM_GEMV_NT; nt++)
			check(isa, w, v0, rr[i][0], rr[i][1], nt,
			      (int)(nt & 1));
}

/* body on each x86 ISA this CPU has; how many ran. */
static int each_isa(void (*body)(int isa))
{
	static const int isas[] = { HF_MATMUL_AVX2, HF_MATMUL_AVX512 };
	int ran = 0;

	for (int i = 0; i < 2; i++) {
		if (hf_matmul_set_isa(isas[i])) {
			printf("# %s: not on this CPU\n", isa_name[isas[i]]);
			continue;
		}
		body(isas[i]);
		ran++;
	}
	assert_int_equal(hf_matmul_set_isa(HF_MATMUL_GENERIC), 0);
	return ran;
}

static void awq_body(int isa)
{
	static const size_t shapes[][3] = {	/* out, in, group */
		{ 8, 16, 16 }, { 32, 32, 32 }, { 40, 48, 16 }, { 72, 128, 128 },
		{ 104, 96, 32 }, { 168, 64, 64 }, { 256, 256, 128 },
	};

	for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
		struct qw q;

		seed = 11 + (uint32_t)si;
		make_awq(&q, shapes[si][0], shapes[si][1], shapes[si][2]);
		check_all(isa, &q.w, 0);
		if (q.w.rows > 8)
			check_all(isa, &q.w, 8);
		/* a view off the word boundary: the portable rows */
		if (q.w.rows > 11)
			check(isa, &q.w, 3, 0, q.w.rows - 3, 2, 1);
		qw_free(&q);
	}
}

static void test_awq(void **state)
{
	(void)state;
	if (!each_isa(awq_body))
		skip();
}

static void fp8_body(int isa)
{
	static const size_t shapes[][4] = {	/* out, in, br, bc */
		{ 1, 1, 1, 16 }, { 3, 15, 1, 16 }, { 5, 17, 8, 16 },
		{ 9, 33, 8, 8 }, { 17, 200, 8, 16 }, { 33, 300, 128, 128 },
		{ 20, 130, 4, 128 }, { 7, 95, 2, 32 }, { 12, 96, 3, 24 },
		{ 130, 256, 128, 128 },
	};

	for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
		struct qw q;

		seed = 23 + (uint32_t)si;
		make_fp8(&q, shapes[si][0], shapes[si][1], shapes[si][2],
			 shapes[si][3]);
		check_all(isa, &q.w, 0);
		if (q.w.rows > 3)
			check_all(isa, &q.w, 3);
		qw_free(&q);
	}
}

static void test_fp8(void **state)
{
	(void)state;
	if (!each_isa(fp8_body))
		skip();
}

static void bitnet_body(int isa)
{
	static const size_t shapes[][2] = {	/* out, in */
		{ 4, 1 }, { 4, 31 }, { 8, 33 }, { 12, 77 }, { 36, 200 },
		{ 100, 64 }, { 64, 130 },
	};

	for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++) {
		struct qw q;

		seed = 37 + (uint32_t)si;
		make_bitnet(&q, shapes[si][0], shapes[si][1]);
		check_all(isa, &q.w, 0);
		check_all(isa, &q.w, 1);
		qw_free(&q);
	}
}

static void test_bitnet(void **state)
{
	(void)state;
	if (!each_isa(bitnet_body))
		skip();
}

/* Every E4M3 code, scale 1, through the widening the GEMM packs with;
 * and an FP8 panel off the 16-code step (the AVX2 path) equal to the
 * dequant. */
static void e4m3_body(int isa)
{
	struct qw q;
	float got[256];

	memset(&q, 0, sizeof(q));
	q.w.fmt = HF_WFMT_FP8;
	q.w.rows = 1;
	q.w.cols = 256;
	q.w.q.group = 128;
	q.w.q.group2 = 128;
	q.t[0] = malloc(256 + 16);
	q.t[1] = malloc(2 * sizeof(float));
	for (int i = 0; i < 256; i++)
		((uint8_t *)q.t[0])[i] = (uint8_t)i;
	((float *)q.t[1])[0] = ((float *)q.t[1])[1] = 1.0f;
	qw_done(&q);
	table(isa)[HF_WFMT_FP8].widen(got, &q.w, 0, 1, 0, 256);
	for (int i = 0; i < 256; i++) {
		float e = hf_f8e4m3_to_f32((uint8_t)i);

		if (isnan(e) ? !isnan(got[i]) :
		    memcmp(&got[i], &e, sizeof(e)) != 0)
			fail_msg("%s: E4M3 0x%02x widened to %.9g, want %.9g",
				 isa_name[isa], i, got[i], e);
	}
	qw_free(&q);
	for (size_t k0 = 0; k0 <= 8; k0 += 8) {
		float a[7 * 40], b[7 * 40];

		seed = 5;
		make_fp8(&q, 9, 56, 4, 8);
		table(isa)[HF_WFMT_FP8].widen(a, &q.w, 2, 7, k0, 40);
		hf_weight_dequant(b, &q.w, 2, 7, k0, 40);
		assert_memory_equal(a, b, sizeof(a));
		qw_free(&q);
	}
}

static void test_e4m3_codes(void **state)
{
	(void)state;
	if (!each_isa(e4m3_body))
		skip();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_awq),
		cmocka_unit_test(test_fp8),
		cmocka_unit_test(test_bitnet),
		cmocka_unit_test(test_e4m3_codes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

#else

int main(void)
{
	printf("# the x86 kernels: not an x86 build\n");
	return 77;
}

#endif
