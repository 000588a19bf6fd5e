/* Tests for lib/tensor/matmul.c, matmul_x86.c, matmul_bf16.c and
 * matmul_arm.c: every instruction set, weight dtype, compute type and
 * awkward shape against hf_matmul_ref (f32 compute) and
 * hf_matmul_bf16_ref (bf16 compute). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cblas.h>

#include "tensor/matmul.h"

/* The fast paths sum in float32 in 8- or 16-lane blocks, then across the
 * lanes (and OpenBLAS in its own order); the reference sums in double.
 * For in terms the float error is at most about (in / 16 + 8) * 2^-24
 * times sum |x w| (the condition of the dot product), which for the in
 * <= 600 used here is under 3e-6: a bound of 1e-5 relative to sum |x w|
 * leaves room for any order and still catches a single wrong term.
 * bf16 compute: the products of bf16 values are exact in float32 and the
 * sums run in float32 as above, so the same bound holds against
 * hf_matmul_bf16_ref (whereas an unrounded x or W, off by up to 2^-9
 * relative per term, shows as errors near 2^-9 of sum |x w|). */
#define TOL 1e-5

static uint64_t rng = 0x9E3779B97F4A7C15ull;

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

/* Random weights in dtype wt with magnitudes around 2^-6 .. 2^4; f16 gets
 * some subnormals too. *scale receives |W| as float for the bound. */
static void *rand_w(enum hf_dtype wt, size_t count, float *absw)
{
	void *w = malloc(count * (wt == HF_DTYPE_F32 ? 4 : 2));

	assert_non_null(w);
	for (size_t i = 0; i < count; i++) {
		uint32_t r = next(), s = r & 1, e, m;
		uint16_t h;
		float f;

		if (wt == HF_DTYPE_F32) {
			f = unit() * 4.0f;
			((float *)w)[i] = f;
			absw[i] = fabsf(f);
			continue;
		}
		if (wt == HF_DTYPE_F16) {
			e = r % 32 == 0 ? 0 : 9 + (r >> 1) % 10;
			m = (r >> 8) & 0x3ff;
			h = (uint16_t)(s << 15 | e << 10 | m);
			f = e ? ldexpf(1.0f + m / 1024.0f, (int)e - 15) :
				ldexpf((float)m, -24);
		} else {
			e = 121 + (r >> 1) % 10;
			m = (r >> 8) & 0x7f;
			h = (uint16_t)(s << 15 | e << 7 | m);
			f = ldexpf(1.0f + m / 128.0f, (int)e - 127);
		}
		((uint16_t *)w)[i] = h;
		absw[i] = f;
	}
	return w;
}

struct shape {
	size_t in, out;
};

static const struct shape shapes[] = {
	{ 1, 1 }, { 17, 5 }, { 63, 33 }, { 100, 47 }, { 257, 70 },
	{ 300, 129 }, { 523, 95 }, { 40, 1100 }, { 1037, 40 },
};
static const size_t ns[] = { 1, 2, 3, 4, 5, 7, 15, 33 };
static const enum hf_dtype dtypes[] = {
	HF_DTYPE_F32, HF_DTYPE_F16, HF_DTYPE_BF16,
};
static const char *const isa_names[] = {
	"generic", "avx2", "avx512", "avx512bf16", "neon",
};

static float round_bf16(float v)
{
	return hf_bf16_to_f32(hf_f32_to_bf16(v));
}

/* hf_matmul_as(.., ct, ..) on every shape, dtype, bias or not, with no
 * pool and 1 to 3 threads against the reference for ct. */
static void check_isa(enum hf_matmul_isa isa, enum hf_dtype ct)
{
	struct hf_pool *pools[3];
	struct hf_err err = { 0 };
	int failures = 0;

	if (hf_matmul_set_isa(isa)) {
		printf("# %s: not on this CPU, skipped\n", isa_names[isa]);
		skip();
	}
	assert_string_equal(hf_matmul_isa_name(), isa_names[isa]);
	for (int p = 0; p < 3; p++)
		assert_int_equal(hf_pool_create(&pools[p], p + 1, &err), 0);
	for (size_t di = 0; di < 3; di++)
	for (size_t si = 0; si < sizeof(shapes) / sizeof(*shapes); si++)
	for (size_t ni = 0; ni < sizeof(ns) / sizeof(*ns); ni++)
	for (int b = 0; b < 2; b++) {
		enum hf_dtype wt = dtypes[di];
		size_t in = shapes[si].in, out = shapes[si].out, n = ns[ni];
		float *absw = malloc(in * out * sizeof(float));
		void *w = rand_w(wt, in * out, absw);
		float *x = malloc(n * in * sizeof(float));
		float *bias = malloc(out * sizeof(float));
		float *want = malloc(n * out * sizeof(float));
		float *got = malloc(n * out * sizeof(float));
		float *mag = malloc(n * out * sizeof(float));

		for (size_t i = 0; i < n * in; i++)
			x[i] = unit();
		for (size_t o = 0; o < out; o++)
			bias[o] = unit();
		if (ct == HF_DTYPE_F32)
			hf_matmul_ref(want, x, w, wt, b ? bias : NULL, n, in,
				      out);
		else
			hf_matmul_bf16_ref(want, x, w, wt, b ? bias : NULL, n,
					   in, out);
		for (size_t t = 0; t < n; t++)
			for (size_t o = 0; o < out; o++) {
				double s = b ? fabsf(bias[o]) : 0.0;

				for (size_t i = 0; i < in; i++)
					s += (ct == HF_DTYPE_F32 ?
					      fabsf(x[t * in + i]) *
					      absw[o * in + i] :
					      fabsf(round_bf16(x[t * in + i])) *
					      round_bf16(absw[o * in + i]));
				mag[t * out + o] = (float)s;
			}
		for (int p = -1; p < 3; p++) {
			memset(got, 0xff, n * out * sizeof(float));	/* NaN */
			hf_matmul_as(got, x, w, wt, b ? bias : NULL, n, in,
				     out, ct, p < 0 ? NULL : pools[p]);
			for (size_t i = 0; i < n * out; i++) {
				if (fabs(got[i] - want[i]) <= TOL * mag[i])
					continue;
				if (failures++ < 10)
					printf("# %s %s compute %s n %zu in %zu "
					       "out %zu bias %d threads %d: y[%zu] "
					       "got %.9g want %.9g\n",
					       isa_names[isa],
					       wt == HF_DTYPE_F32 ? "f32" :
					       wt == HF_DTYPE_F16 ? "f16" :
					       "bf16",
					       ct == HF_DTYPE_F32 ? "f32" : "bf16",
					       n, in, out, b, p + 1, i,
					       got[i], want[i]);
				break;
			}
		}
		free(absw);
		free(w);
		free(x);
		free(bias);
		free(want);
		free(got);
		free(mag);
	}
	for (int p = 0; p < 3; p++)
		hf_pool_free(pools[p]);
	assert_int_equal(failures, 0);
}

static void test_generic_matches_ref(void **state)
{
	check_isa(HF_MATMUL_GENERIC, HF_DTYPE_F32);
}

static void test_avx2_matches_ref(void **state)
{
	check_isa(HF_MATMUL_AVX2, HF_DTYPE_F32);
}

static void test_avx512_matches_ref(void **state)
{
	check_isa(HF_MATMUL_AVX512, HF_DTYPE_F32);
}

static void test_avx512bf16_matches_ref(void **state)
{
	check_isa(HF_MATMUL_AVX512BF16, HF_DTYPE_F32);
}

static void test_neon_matches_ref(void **state)
{
	check_isa(HF_MATMUL_NEON, HF_DTYPE_F32);
}

/* bf16 compute: on the vdpbf16ps kernels (avx512bf16) and on the
 * fallback that rounds and runs the f32 kernels (the others). */
static void test_generic_bf16_matches_bf16_ref(void **state)
{
	check_isa(HF_MATMUL_GENERIC, HF_DTYPE_BF16);
}

static void test_avx2_bf16_matches_bf16_ref(void **state)
{
	check_isa(HF_MATMUL_AVX2, HF_DTYPE_BF16);
}

static void test_avx512_bf16_matches_bf16_ref(void **state)
{
	check_isa(HF_MATMUL_AVX512, HF_DTYPE_BF16);
}

static void test_avx512bf16_bf16_matches_bf16_ref(void **state)
{
	check_isa(HF_MATMUL_AVX512BF16, HF_DTYPE_BF16);
}

static void test_neon_bf16_matches_bf16_ref(void **state)
{
	check_isa(HF_MATMUL_NEON, HF_DTYPE_BF16);
}

/* bf16 compute rounds x and f32/f16 W to nearest even: 1 + 2^-8 and
 * 1 + 3 * 2^-8 are ties (bf16 keeps 7 fraction bits) and go to 1 and
 * 1 + 2^-6; 1 + 2^-10 goes to 1. One term per output, in = 1, so any
 * reassociation leaves these exact; n = 1 runs the matrix-vector kernel,
 * n = 6 the GEMM, on every instruction set this CPU has. */
static void test_bf16_rounds_to_nearest_even(void **state)
{
	const float v[4] = { 1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f,
			     1.0f + 0x1p-10f, -3.0f };
	const float r[4] = { 1.0f, 1.0f + 0x1p-6f, 1.0f, -3.0f };
	float one = 1.0f, x[6 * 4], y[6 * 4];
	uint16_t h[4], b16[4];

	for (int i = 0; i < 4; i++) {
		h[i] = hf_f32_to_f16(v[i]);	/* all four exact in f16 */
		b16[i] = hf_f32_to_bf16(v[i]);
	}
	for (int isa = 0; isa <= HF_MATMUL_NEON; isa++) {
		if (hf_matmul_set_isa(isa))
			continue;
		for (size_t n = 1; n <= 6; n += 5) {
			/* x varies: W = 1 (one output row) */
			for (size_t t = 0; t < n; t++)
				x[t] = v[t % 4];
			hf_matmul_as(y, x, &one, HF_DTYPE_F32, NULL, n, 1, 1,
				     HF_DTYPE_BF16, NULL);
			for (size_t t = 0; t < n; t++)
				assert_true(y[t] == r[t % 4]);
			/* W varies (4 rows, f32 and f16): x = 1 */
			for (size_t t = 0; t < n; t++)
				x[t] = 1.0f;
			hf_matmul_as(y, x, v, HF_DTYPE_F32, NULL, n, 1, 4,
				     HF_DTYPE_BF16, NULL);
			for (size_t i = 0; i < n * 4; i++)
				assert_true(y[i] == r[i % 4]);
			hf_matmul_as(y, x, h, HF_DTYPE_F16, NULL, n, 1, 4,
				     HF_DTYPE_BF16, NULL);
			for (size_t i = 0; i < n * 4; i++)
				assert_true(y[i] == r[i % 4]);
			hf_matmul_as(y, x, b16, HF_DTYPE_BF16, NULL, n, 1, 4,
				     HF_DTYPE_BF16, NULL);
			for (size_t i = 0; i < n * 4; i++)
				assert_true(y[i] == r[i % 4]);
			/* and f32 compute keeps them */
			hf_matmul_as(y, x, v, HF_DTYPE_F32, NULL, n, 1, 4,
				     HF_DTYPE_F32, NULL);
			for (size_t i = 0; i < n * 4; i++)
				assert_true(y[i] == v[i % 4]);
		}
	}
}

/* in == 0: y is the bias (or zeros) without reading x or W. */
static void test_empty_inner_dimension_gives_bias(void **state)
{
	float y[6], bias[3] = { 1, 2, 3 };

	memset(y, 0xff, sizeof(y));
	hf_matmul(y, NULL, NULL, HF_DTYPE_BF16, bias, 2, 0, 3, NULL);
	for (int i = 0; i < 6; i++)
		assert_true(y[i] == bias[i % 3]);
	hf_matmul(y, NULL, NULL, HF_DTYPE_F32, NULL, 2, 0, 3, NULL);
	for (int i = 0; i < 6; i++)
		assert_true(y[i] == 0.0f);
}

/* Exact widening: f16 subnormal, largest normal, bf16 of -2.5. */
static void test_ref_widens_exactly(void **state)
{
	uint16_t wf16[3] = { 0x0001, 0x7bff, 0xc000 };
	uint16_t wbf16[1] = { 0xc020 };
	float x[3] = { 1, 1, 1 }, y;

	hf_matmul_ref(&y, x, wf16, HF_DTYPE_F16, NULL, 1, 1, 1);
	assert_true(y == 0x1p-24f);
	hf_matmul_ref(&y, x + 1, wf16 + 1, HF_DTYPE_F16, NULL, 1, 1, 1);
	assert_true(y == 65504.0f);
	hf_matmul_ref(&y, x, wbf16, HF_DTYPE_BF16, NULL, 1, 1, 1);
	assert_true(y == -2.5f);
}

/* Threads of this process; *others_ticks: the CPU clock ticks used by all
 * but the calling thread. */
static int threads(long *others_ticks)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	long self = syscall(SYS_gettid);
	int n = 0;

	assert_non_null(d);
	*others_ticks = 0;
	while ((e = readdir(d))) {
		char path[300], buf[512], *p;
		unsigned long ut, st;
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		n++;
		if (atol(e->d_name) == self)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;	/* ended meanwhile */
		p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
		/* after "(comm)": state and 10 more fields, then utime, stime */
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u "
				"%*u %lu %lu", &ut, &st) == 2)
			*others_ticks += (long)(ut + st);
		fclose(f);
	}
	closedir(d);
	return n;
}

/* Run first, before the pool exists. OpenBLAS's server threads, started
 * when it is loaded, spin for about 0.1 s beside ours: the library must
 * have stopped them, so no other thread of the process burns CPU during
 * the first 100 ms of main, and a GEMM big enough for OpenBLAS to split
 * runs on the calling thread (no thread appears), right. */
static void test_openblas_runs_on_the_calling_thread(void **state)
{
	enum { N = 384 };
	float *a = malloc(N * N * sizeof(float));
	float *b = malloc(N * N * sizeof(float));
	float *c = calloc(N * N, sizeof(float));
	long t0, t1, hz = sysconf(_SC_CLK_TCK);
	int n0;

	assert_non_null(a);
	assert_non_null(b);
	assert_non_null(c);
	assert_int_equal(openblas_get_num_threads(), 1);
	n0 = threads(&t0);
	usleep(100000);
	threads(&t1);
	assert_true((t1 - t0) * 1000 / hz < 30);	/* ms of CPU, not 100 */
	for (int i = 0; i < N * N; i++) {
		a[i] = unit();
		b[i] = unit();
	}
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f,
		    a, N, b, N, 0.0f, c, N);
	assert_int_equal(threads(&t1), n0);
	for (int i = 0; i < N; i += 97) {
		for (int j = 0; j < N; j += 89) {
			double s = 0, m = 0;

			for (int k = 0; k < N; k++) {
				s += (double)a[i * N + k] * b[k * N + j];
				m += fabs((double)a[i * N + k] * b[k * N + j]);
			}
			assert_true(fabs(c[i * N + j] - s) <= TOL * m);
		}
	}
	free(a);
	free(b);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openblas_runs_on_the_calling_thread),
		cmocka_unit_test(test_generic_matches_ref),
		cmocka_unit_test(test_avx2_matches_ref),
		cmocka_unit_test(test_avx512_matches_ref),
		cmocka_unit_test(test_avx512bf16_matches_ref),
		cmocka_unit_test(test_neon_matches_ref),
		cmocka_unit_test(test_generic_bf16_matches_bf16_ref),
		cmocka_unit_test(test_avx2_bf16_matches_bf16_ref),
		cmocka_unit_test(test_avx512_bf16_matches_bf16_ref),
		cmocka_unit_test(test_avx512bf16_bf16_matches_bf16_ref),
		cmocka_unit_test(test_neon_bf16_matches_bf16_ref),
		cmocka_unit_test(test_bf16_rounds_to_nearest_even),
		cmocka_unit_test(test_empty_inner_dimension_gives_bias),
		cmocka_unit_test(test_ref_widens_exactly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
