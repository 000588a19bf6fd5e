/* test/unit/export/ggml_types.c: ggml's block formats. Names, block and
 * row sizes; golden blocks made by ggml itself (ggml_golden.h says how)
 * quantized and dequantized bit for bit; f16/bf16 rounding and NaNs;
 * round trips of every type within its format's error bound on random
 * and awkward rows (zeros, constants, one outlier, negative only,
 * denormals, one block and many blocks). The same comparison against
 * the live libggml runs in test/e2e/runtime_ggml.sh. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/pool.h"
#include "export/ggml_types.h"
#include "ggml_golden.h"

static const int all_types[] = {
	HF_GGML_F32, HF_GGML_F16, HF_GGML_BF16, HF_GGML_Q8_0, HF_GGML_Q4_0,
	HF_GGML_Q4_1, HF_GGML_Q5_0, HF_GGML_Q5_1, HF_GGML_Q2_K, HF_GGML_Q3_K,
	HF_GGML_Q4_K, HF_GGML_Q5_K, HF_GGML_Q6_K, HF_GGML_TQ1_0, HF_GGML_TQ2_0,
};
#define NTYPES (sizeof(all_types) / sizeof(all_types[0]))

static float from_bits(uint32_t u)
{
	float f;

	memcpy(&f, &u, 4);
	return f;
}

static uint32_t to_bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	return u;
}

static uint64_t fnv1a(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static int unhex(uint8_t *out, const char *hex, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return hex[2 * n] ? -1 : 0;
}

/* ---- names and sizes ------------------------------------------------------ */

static void test_names_block_and_row_sizes(void **state)
{
	static const struct { int type; const char *name; int64_t blck; size_t bytes; } want[] = {
		{ HF_GGML_F32, "f32", 1, 4 }, { HF_GGML_F16, "f16", 1, 2 },
		{ HF_GGML_BF16, "bf16", 1, 2 }, { HF_GGML_Q8_0, "q8_0", 32, 34 },
		{ HF_GGML_Q4_0, "q4_0", 32, 18 }, { HF_GGML_Q4_1, "q4_1", 32, 20 },
		{ HF_GGML_Q5_0, "q5_0", 32, 22 }, { HF_GGML_Q5_1, "q5_1", 32, 24 },
		{ HF_GGML_Q2_K, "q2_K", 256, 84 }, { HF_GGML_Q3_K, "q3_K", 256, 110 },
		{ HF_GGML_Q4_K, "q4_K", 256, 144 }, { HF_GGML_Q5_K, "q5_K", 256, 176 },
		{ HF_GGML_Q6_K, "q6_K", 256, 210 }, { HF_GGML_TQ1_0, "tq1_0", 256, 54 },
		{ HF_GGML_TQ2_0, "tq2_0", 256, 66 },
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct hf_ggml_traits *tr = hf_ggml_traits(want[i].type);

		assert_non_null(tr);
		assert_string_equal(tr->name, want[i].name);
		assert_int_equal(tr->blck, want[i].blck);
		assert_int_equal(tr->bytes, want[i].bytes);
		assert_non_null(tr->quantize);
		assert_non_null(tr->dequantize);
		assert_int_equal(hf_ggml_type_from_name(want[i].name), want[i].type);
		assert_int_equal(hf_ggml_row_size(want[i].type, 4096),
				 4096 / want[i].blck * want[i].bytes);
	}
	assert_int_equal(hf_ggml_row_size(HF_GGML_Q4_K, 512), 288);
	assert_int_equal(hf_ggml_row_size(HF_GGML_F16, 3), 6);
	assert_int_equal(hf_ggml_row_size(HF_GGML_Q4_K, 100), 0);
	assert_int_equal(hf_ggml_row_size(HF_GGML_Q8_0, 33), 0);
	assert_int_equal(hf_ggml_row_size(HF_GGML_Q8_0, -32), 0);
	assert_int_equal(hf_ggml_row_size(4, 32), 0);	/* the removed q4_2 */
}

static void test_unknown_types_and_names(void **state)
{
	assert_int_equal(hf_ggml_type_from_name("Q4_k"), HF_GGML_Q4_K);
	assert_int_equal(hf_ggml_type_from_name("BF16"), HF_GGML_BF16);
	assert_int_equal(hf_ggml_type_from_name("q4_k_m"), -1);
	assert_int_equal(hf_ggml_type_from_name("q4"), -1);
	assert_int_equal(hf_ggml_type_from_name(""), -1);
	assert_int_equal(hf_ggml_type_from_name(NULL), -1);
	assert_null(hf_ggml_traits(-1));
	assert_null(hf_ggml_traits(4));
	assert_null(hf_ggml_traits(HF_GGML_NTYPES));
	assert_null(hf_ggml_traits(1000));
}

/* ---- goldens from ggml ---------------------------------------------------- */

static void test_quantize_matches_ggml_goldens(void **state)
{
	static uint8_t want[2048], got[2048];
	static float x[256];
	int checked = 0;

	for (size_t g = 0; g < sizeof(golden) / sizeof(golden[0]); g++) {
		const struct golden *gd = &golden[g];
		const struct hf_ggml_traits *tr = hf_ggml_traits(gd->type);

		assert_non_null(tr);
		assert_string_equal(tr->name, gd->name);
		assert_int_equal(hf_ggml_row_size(gd->type, 256), gd->bytes);
		assert_int_equal(unhex(want, gd->hex, gd->bytes), 0);
		for (int i = 0; i < 256; i++)
			x[i] = from_bits(golden_x[gd->input][i]);
		memset(got, 0xa5, sizeof(got));
		tr->quantize(x, got, 256);
		for (size_t i = 0; i < gd->bytes; i++) {
			if (got[i] != want[i])
				fail_msg("%s, input %d: byte %zu: got 0x%02x, want 0x%02x",
					 gd->name, gd->input, i, got[i], want[i]);
		}
		assert_int_equal(got[gd->bytes], 0xa5);	/* no write past the row */
		checked++;
	}
	assert_int_equal(checked, 2 * (int)NTYPES + 3);
}

static void test_dequantize_matches_ggml_goldens(void **state)
{
	static uint8_t q[2048];
	static float y[256];

	for (size_t g = 0; g < sizeof(golden) / sizeof(golden[0]); g++) {
		const struct golden *gd = &golden[g];
		const struct hf_ggml_traits *tr = hf_ggml_traits(gd->type);

		assert_int_equal(unhex(q, gd->hex, gd->bytes), 0);
		tr->dequantize(q, y, 256);

		uint64_t h = fnv1a(y, sizeof(y));

		if (h != gd->deq)
			fail_msg("%s, input %d: dequantized floats hash to %016llx, ggml's to %016llx",
				 gd->name, gd->input, (unsigned long long)h, gd->deq);
	}
}

/* ---- f16 and bf16 --------------------------------------------------------- */

static void test_fp16_rounding_and_specials(void **state)
{
	static const struct { uint32_t f; uint16_t h; } cases[] = {
		{ 0x3f800000, 0x3c00 },		/* 1 */
		{ 0x3f801000, 0x3c00 },		/* 1 + half an ulp: to even (down) */
		{ 0x3f803000, 0x3c02 },		/* 1 + 1.5 ulp: to even (up) */
		{ 0x3f801001, 0x3c01 },		/* just past the tie */
		{ 0x477fe000, 0x7bff },		/* 65504, the largest */
		{ 0x477fefff, 0x7bff },		/* just under the overflow tie */
		{ 0x477ff000, 0x7c00 },		/* 65520 rounds to inf */
		{ 0x7f800000, 0x7c00 }, { 0xff800000, 0xfc00 },
		{ 0x7fc00000, 0x7e00 }, { 0xffc00001, 0xfe00 }, /* NaN: canonical, signed */
		{ 0x7f800001, 0x7e00 },		/* signalling NaN too */
		{ 0x33800000, 0x0001 },		/* 2^-24, the smallest denormal */
		{ 0x33000000, 0x0000 },		/* 2^-25: tie to even (zero) */
		{ 0x33000001, 0x0001 },
		{ 0x38800000, 0x0400 },		/* 2^-14, the smallest normal */
		{ 0x80000000, 0x8000 }, { 0x00000001, 0x0000 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint16_t h = hf_ggml_fp32_to_fp16(from_bits(cases[i].f));

		if (h != cases[i].h)
			fail_msg("f16 of 0x%08x: got 0x%04x, want 0x%04x", cases[i].f, h, cases[i].h);
	}
	/* every finite f16 widens exactly and narrows back to itself */
	for (uint32_t h = 0; h < 65536; h++) {
		float f = hf_ggml_fp16_to_fp32((uint16_t)h);

		if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) {
			if (!isnan(f))
				fail_msg("f16 0x%04x: not a NaN", h);
			continue;
		}
		if (hf_ggml_fp32_to_fp16(f) != h)
			fail_msg("f16 0x%04x: round trip gives 0x%04x", h, hf_ggml_fp32_to_fp16(f));
	}
	assert_int_equal(to_bits(hf_ggml_fp16_to_fp32(0x0001)), 0x33800000);
	assert_int_equal(to_bits(hf_ggml_fp16_to_fp32(0xfbff)), 0xc77fe000);
}

static void test_bf16_rounding_and_nans(void **state)
{
	static const struct { uint32_t f; uint16_t b; } cases[] = {
		{ 0x3f800000, 0x3f80 },
		{ 0x3f808000, 0x3f80 },		/* tie: to even (down) */
		{ 0x3f818000, 0x3f82 },		/* tie: to even (up) */
		{ 0x3f808001, 0x3f81 },
		{ 0x7f7fffff, 0x7f80 },		/* FLT_MAX rounds to inf */
		{ 0x7fc00000, 0x7fc0 },
		{ 0x7f800001, 0x7fc0 },		/* signalling NaN made quiet */
		{ 0x7fa00000, 0x7fe0 },		/* payload kept, quiet bit set */
		{ 0xffc00001, 0xffc0 },
		{ 0x807fffff, 0x8080 },		/* denormals round, not flushed */
		{ 0x00000001, 0x0000 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint16_t b = hf_ggml_fp32_to_bf16(from_bits(cases[i].f));

		if (b != cases[i].b)
			fail_msg("bf16 of 0x%08x: got 0x%04x, want 0x%04x", cases[i].f, b, cases[i].b);
	}
	for (uint32_t b = 0; b < 65536; b++) {
		float f = hf_ggml_bf16_to_fp32((uint16_t)b);

		assert_int_equal(to_bits(f), b << 16);
		if (!isnan(f))
			assert_int_equal(hf_ggml_fp32_to_bf16(f), b);
	}
}

/* ---- round trips ---------------------------------------------------------- */

static uint32_t rng = 2463534242u;

static float unit(void)	/* [0, 1) */
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return (float)(rng >> 8) / 16777216.0f;
}

static float gauss(void)
{
	float u1 = unit() + 1.0f / 16777216.0f, u2 = unit();

	return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

enum { C_NORMAL, C_UNIFORM, C_ZEROS, C_CONSTANT, C_OUTLIER, C_NEGATIVE,
       C_DENORMAL, C_HUGE, C_TERNARY, NCASES };

static const char *const case_name[NCASES] = {
	"normal", "uniform", "zeros", "constant", "outlier", "negative",
	"denormal", "huge", "ternary",
};

static void fill(float *x, int64_t n, int c, int64_t blck)
{
	for (int64_t i = 0; i < n; i++) {
		switch (c) {
		case C_NORMAL: x[i] = gauss(); break;
		case C_UNIFORM: x[i] = 2 * unit() - 1; break;
		case C_ZEROS: x[i] = 0; break;
		case C_CONSTANT: x[i] = 0.75f; break;
		case C_OUTLIER: x[i] = 0.01f * gauss(); break;
		case C_NEGATIVE: x[i] = -fabsf(gauss()) - 0.25f; break;
		case C_DENORMAL: x[i] = gauss() * 1e-40f; break;
		case C_HUGE: x[i] = gauss() * 1000.0f; break;
		case C_TERNARY: x[i] = (float)((int)(unit() * 3) - 1) * 0.5f; break;
		}
	}
	if (c == C_OUTLIER)
		for (int64_t b = 0; b < n; b += blck)
			x[b + (int64_t)(unit() * blck)] = 20.0f;
}

/* The largest error a format allows on one element of a block whose
 * elements span [lo, hi] (lo <= hi), amax = max |x|: the step of its
 * level grid (half of it where the grid is rounded to, a whole one
 * where the reference clamps an end or re-rounds a quantized scale),
 * widened by 2^-9 for the f16 rounding of the scales, plus 2^-16 for
 * scales that f16 can only hold as denormals. */
static double error_bound(int type, double lo, double hi, double amax, double x)
{
	double r = hi - lo, k0 = hi > 0 ? hi : 0, k1 = lo < 0 ? lo : 0;
	double rk = k0 - k1;	/* K-quants' range always includes 0 */
	double b;

	switch (type) {
	case HF_GGML_F32: return 0;
	case HF_GGML_F16: return fabs(x) * 0x1p-11 + 0x1p-25;
	case HF_GGML_BF16: return fabs(x) * 0x1p-8 + 0x1p-134;
	case HF_GGML_Q8_0: b = amax / 127 * 0.5; break;
	case HF_GGML_Q4_0: b = amax / 8; break;		/* clamps at 7/8 of amax */
	case HF_GGML_Q5_0: b = amax / 16; break;
	case HF_GGML_Q4_1: b = r / 15 * 0.5; break;
	case HF_GGML_Q5_1: b = r / 31 * 0.5; break;
	case HF_GGML_Q2_K: b = rk / 3; break;
	case HF_GGML_Q3_K: b = amax / 4; break;
	case HF_GGML_Q4_K: b = rk / 15; break;
	case HF_GGML_Q5_K: b = rk / 31; break;
	case HF_GGML_Q6_K: b = amax / 32; break;
	default: b = amax / 2; break;			/* ternary */
	}
	/* q4_1/q5_1 store min itself in f16 */
	return b * (1 + 0x1p-9) * 1.001 + fabs(lo) * 0x1p-10 + amax * 0x1p-9 + 0x1p-16;
}

/* A constant block of 0.75 comes back exactly: the floats by rounding,
 * q4_0/q5_0 as level 0 of d = -0.75/8 (-0.75/16), q4_1/q5_1 as the
 * min with d = 0, tq1_0/tq2_0 as d itself. The others scale it by an
 * f16 that 0.75 / level does not fit. */
static int exact_constant(int type)
{
	switch (type) {
	case HF_GGML_F32: case HF_GGML_F16: case HF_GGML_BF16:
	case HF_GGML_Q4_0: case HF_GGML_Q5_0: case HF_GGML_Q4_1:
	case HF_GGML_Q5_1: case HF_GGML_TQ1_0: case HF_GGML_TQ2_0:
		return 1;
	}
	return 0;
}

static void round_trip(int type, int64_t n)
{
	const struct hf_ggml_traits *tr = hf_ggml_traits(type);
	const int64_t blck = tr->blck == 1 ? 32 : tr->blck;
	float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
	uint8_t *q = malloc(hf_ggml_row_size(type, n));

	for (int c = 0; c < NCASES; c++) {
		fill(x, n, c, blck);
		tr->quantize(x, q, n);
		tr->dequantize(q, y, n);
		for (int64_t b = 0; b < n; b += blck) {
			double lo = x[b], hi = x[b], amax = 0;

			for (int64_t i = b; i < b + blck; i++) {
				lo = x[i] < lo ? x[i] : lo;
				hi = x[i] > hi ? x[i] : hi;
				amax = fabs(x[i]) > amax ? fabs(x[i]) : amax;
			}
			for (int64_t i = b; i < b + blck; i++) {
				double e = fabs((double)y[i] - x[i]);
				double bound = error_bound(type, lo, hi, amax, x[i]);

				if (!(e <= bound))
					fail_msg("%s, %s, n %lld: element %lld: got %.9g, want %.9g (error %.3g > %.3g)",
						 tr->name, case_name[c], (long long)n, (long long)i,
						 y[i], x[i], e, bound);
			}
		}
		/* zeros are exact in every format; so are the constant 0.75
		 * and ternary -0.5, 0, 0.5 where the format holds them */
		if (c == C_ZEROS || (c == C_CONSTANT && exact_constant(type)))
			for (int64_t i = 0; i < n; i++)
				if (y[i] != x[i])
					fail_msg("%s, %s: element %lld: got %.9g, want %.9g",
						 tr->name, case_name[c], (long long)i, y[i], x[i]);
		if (c == C_TERNARY && (type == HF_GGML_TQ1_0 || type == HF_GGML_TQ2_0))
			assert_memory_equal(y, x, n * sizeof(float));
	}
	free(x);
	free(y);
	free(q);
}

static void test_round_trips_one_block(void **state)
{
	for (size_t t = 0; t < NTYPES; t++) {
		const struct hf_ggml_traits *tr = hf_ggml_traits(all_types[t]);

		round_trip(all_types[t], tr->blck == 1 ? 32 : tr->blck);
	}
}

static void test_round_trips_many_blocks(void **state)
{
	for (size_t t = 0; t < NTYPES; t++)
		round_trip(all_types[t], 256 * 24);
}

/* Blocks are independent: a row quantized whole equals its blocks
 * quantized one by one, at any alignment of the output. */
static void test_blocks_independent_and_unaligned(void **state)
{
	enum { N = 256 * 4 };
	static float x[N];
	static uint8_t whole[N * 4], parts[N * 4 + 1];

	for (int i = 0; i < N; i++)
		x[i] = gauss();
	for (size_t t = 0; t < NTYPES; t++) {
		const struct hf_ggml_traits *tr = hf_ggml_traits(all_types[t]);
		const int64_t blck = tr->blck;

		tr->quantize(x, whole, N);
		for (int64_t b = 0; b < N; b += blck)
			tr->quantize(x + b, parts + 1 + b / blck * tr->bytes, blck);
		assert_memory_equal(parts + 1, whole, hf_ggml_row_size(all_types[t], N));
	}
}

/* Shared out over a pool (3 threads, and none), the bytes of one call. */
static void test_quantize_pool_same_bytes(void **state)
{
	enum { N = 256 * 37 };
	static float x[N];
	static uint8_t one[N * 4], par[N * 4];
	struct hf_pool *pool = NULL;
	struct hf_err err = { 0 };

	assert_int_equal(hf_pool_create(&pool, 3, &err), 0);
	for (int i = 0; i < N; i++)
		x[i] = gauss();
	for (size_t t = 0; t < NTYPES; t++) {
		const struct hf_ggml_traits *tr = hf_ggml_traits(all_types[t]);
		size_t bytes = hf_ggml_row_size(all_types[t], N);

		tr->quantize(x, one, N);
		memset(par, 0, sizeof(par));
		hf_ggml_quantize_pool(tr, x, par, N, pool);
		assert_memory_equal(par, one, bytes);
		memset(par, 0, sizeof(par));
		hf_ggml_quantize_pool(tr, x, par, N, NULL);
		assert_memory_equal(par, one, bytes);
	}
	hf_pool_free(pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_block_and_row_sizes),
		cmocka_unit_test(test_unknown_types_and_names),
		cmocka_unit_test(test_quantize_matches_ggml_goldens),
		cmocka_unit_test(test_dequantize_matches_ggml_goldens),
		cmocka_unit_test(test_fp16_rounding_and_specials),
		cmocka_unit_test(test_bf16_rounding_and_nans),
		cmocka_unit_test(test_round_trips_one_block),
		cmocka_unit_test(test_round_trips_many_blocks),
		cmocka_unit_test(test_blocks_independent_and_unaligned),
		cmocka_unit_test(test_quantize_pool_same_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
