/* Tests for lib/tensor/dtype.c: exhaustive over every f16, bf16 and f8
 * value, rounding checked against oracles written here from the format
 * definitions (not from the code under test), every SIMD path against the
 * plain loops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/dtype.h"

static const char *paths[] = { "plain", "avx2", "avx512" };

static uint32_t fbits(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	return u;
}

static float bitsf(uint32_t u)
{
	float f;

	memcpy(&f, &u, 4);
	return f;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

/* binary16 by its definition: (-1)^s * 2^(e-15) * 1.m, subnormal
 * 2^-14 * 0.m; NaN reported as NAN. */
static double f16_value(uint16_t h)
{
	int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
	double v;

	if (e == 31)
		v = m ? NAN : INFINITY;
	else if (e == 0)
		v = ldexp(m, -24);
	else
		v = ldexp(1024 + m, e - 25);
	return s ? -v : v;
}

static double bf16_value(uint16_t b)
{
	int s = b >> 15, e = (b >> 7) & 255, m = b & 127;
	double v;

	if (e == 255)
		v = m ? NAN : INFINITY;
	else if (e == 0)
		v = ldexp(m, -133);
	else
		v = ldexp(128 + m, e - 134);
	return s ? -v : v;
}

/* Round x to the nearest of the values v(0..max) (ascending for
 * non-negative codes), ties to the even code; beyond v(max) by half an
 * ulp or more (ties going to the even code past max) is inf = max + 1. */
static uint16_t nearest(double x, double (*v)(uint16_t), uint16_t max,
			double overflow)
{
	uint16_t sign = signbit(x) ? 0x8000 : 0;
	uint16_t lo = 0, hi = max;
	double a, b;

	x = fabs(x);
	if (x >= overflow)
		return sign | (uint16_t)(max + 1);
	while (lo < hi) {	/* last code with v <= x */
		uint16_t mid = (uint16_t)((lo + hi + 1) / 2);

		if (v(mid) <= x)
			lo = mid;
		else
			hi = mid - 1;
	}
	if (lo == max)
		return sign | lo;
	a = x - v(lo);
	b = v((uint16_t)(lo + 1)) - x;
	if (a < b || (a == b && !(lo & 1)))
		return sign | lo;
	return sign | (uint16_t)(lo + 1);
}

static uint16_t f16_oracle(float f)
{
	/* 65520 = 65504 + half an ulp: ties to even go to inf */
	return nearest(f, f16_value, 0x7bff, 65520.0);
}

static uint16_t bf16_oracle(float f)
{
	if (isnan(f))
		return 0x7fc0;
	/* max finite 0x7f7f; half an ulp beyond rounds to inf (even) */
	return nearest(f, bf16_value, 0x7f7f,
		       bf16_value(0x7f7f) + ldexp(1, 127 - 8));
}

static void test_names_bits_and_parse(void **state)
{
	for (int t = 0; t < HF_DTYPE_COUNT; t++) {
		assert_int_equal(hf_dtype_parse(hf_dtype_name(t)), t);
		assert_true(hf_dtype_bits(t) > 0);
	}
	assert_string_equal(hf_dtype_name(HF_DTYPE_BF16), "BF16");
	assert_int_equal(hf_dtype_bits(HF_DTYPE_F4), 4);
	assert_int_equal(hf_dtype_bits(HF_DTYPE_F6_E3M2), 6);
	assert_int_equal(hf_dtype_bits(HF_DTYPE_C64), 64);
	assert_int_equal(hf_dtype_bits(HF_DTYPE_U16), 16);
	assert_int_equal(hf_dtype_parse("bf16"), -1);
	assert_int_equal(hf_dtype_parse(""), -1);
	assert_int_equal(hf_dtype_align_rank(HF_DTYPE_BOOL), 0);
	assert_int_equal(hf_dtype_align_rank(HF_DTYPE_U64), 21);
	assert_true(hf_dtype_align_rank(HF_DTYPE_F64) >
		    hf_dtype_align_rank(HF_DTYPE_C64));
	assert_true(hf_dtype_align_rank(HF_DTYPE_F16) <
		    hf_dtype_align_rank(HF_DTYPE_BF16));
}

static void test_f16_to_f32_all_65536_exact(void **state)
{
	for (uint32_t h = 0; h < 65536; h++) {
		float got = hf_f16_to_f32((uint16_t)h);
		double want = f16_value((uint16_t)h);

		if (isnan(want)) {
			if (!isnan(got) || !signbit(got) != !(h & 0x8000))
				fail_msg("f16 %04x: got %08x want NaN", h,
					 fbits(got));
			continue;
		}
		if ((double)got != want || !signbit(got) != !signbit(want))
			fail_msg("f16 %04x: got %a want %a", h, got, want);
	}
}

static void test_bf16_to_f32_all_65536_exact(void **state)
{
	for (uint32_t b = 0; b < 65536; b++) {
		float got = hf_bf16_to_f32((uint16_t)b);
		double want = bf16_value((uint16_t)b);

		if (isnan(want)) {
			assert_true(isnan(got));
			continue;
		}
		if ((double)got != want || !signbit(got) != !signbit(want))
			fail_msg("bf16 %04x: got %a want %a", b, got, want);
	}
}

/* Every f16 comes back from f32 unchanged (NaNs stay NaN, same sign). */
static void test_f32_to_f16_round_trips_all_values(void **state)
{
	for (uint32_t h = 0; h < 65536; h++) {
		uint16_t got = hf_f32_to_f16(hf_f16_to_f32((uint16_t)h));

		if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) {
			assert_true((got & 0x7c00) == 0x7c00 && (got & 0x3ff));
			assert_int_equal(got & 0x8000, h & 0x8000);
			continue;
		}
		if (got != h)
			fail_msg("f16 %04x: round trip gave %04x", h, got);
	}
}

/* Between each pair of neighbours: the exact midpoint goes to the even
 * one, one f32 ulp either side goes to the nearer. Covers subnormals,
 * the normal boundary and overflow to inf. */
static void test_f32_to_f16_ties_to_even(void **state)
{
	for (uint32_t h = 0; h < 0x7bff; h++) {	/* 0x7bff: inf, below */
		for (int s = 0; s < 2; s++) {
			uint16_t lo = (uint16_t)(h | (s ? 0x8000 : 0));
			double a = f16_value(lo);
			double b = f16_value((uint16_t)(lo + 1));
			float mid = (float)((a + b) / 2);
			uint16_t even = (h & 1) ? (uint16_t)(lo + 1) : lo;

			assert_true((double)mid == (a + b) / 2);
			if (hf_f32_to_f16(mid) != even)
				fail_msg("midpoint %a of %04x: got %04x want "
					 "%04x", mid, lo, hf_f32_to_f16(mid),
					 even);
			assert_int_equal(hf_f32_to_f16(nextafterf(mid, 0)), lo);
			assert_int_equal(hf_f32_to_f16(nextafterf(mid,
					 s ? -INFINITY : INFINITY)),
					 (uint16_t)(lo + 1));
		}
	}
	assert_int_equal(hf_f32_to_f16(65519.996f), 0x7bff);
	assert_int_equal(hf_f32_to_f16(65520.0f), 0x7c00);
	assert_int_equal(hf_f32_to_f16(-1e10f), 0xfc00);
	assert_int_equal(hf_f32_to_f16(ldexpf(1, -25)), 0);	/* tie: even */
	assert_int_equal(hf_f32_to_f16(nextafterf(ldexpf(1, -25), 1)), 1);
	assert_int_equal(hf_f32_to_f16(-0.0f), 0x8000);
	assert_int_equal(hf_f32_to_f16(1e-30f), 0);
	assert_int_equal(hf_f32_to_f16(INFINITY), 0x7c00);
}

static void test_f32_to_f16_random_against_oracle(void **state)
{
	for (int i = 0; i < 400000; i++) {
		float f = bitsf(next() ^ (next() << 16));
		/* bias half the samples into the f16 range */
		if (i & 1)
			f = ldexpf(f - truncf(f), (int)(next() % 44) - 28);
		if (isnan(f)) {
			uint16_t h = hf_f32_to_f16(f);

			assert_true((h & 0x7c00) == 0x7c00 && (h & 0x3ff));
			continue;
		}
		if (hf_f32_to_f16(f) != f16_oracle(f))
			fail_msg("%a (%08x): got %04x want %04x", f, fbits(f),
				 hf_f32_to_f16(f), f16_oracle(f));
	}
}

static void test_f32_to_bf16_ties_nan_and_random(void **state)
{
	for (uint32_t b = 0; b < 0x7f80; b++) {
		for (int s = 0; s < 2; s++) {
			uint32_t lo = b | (s ? 0x8000u : 0);
			float mid = bitsf(lo << 16 | 0x8000);
			uint16_t even = (uint16_t)((b & 1) ? lo + 1 : lo);

			if (hf_f32_to_bf16(mid) != even)
				fail_msg("midpoint %08x: got %04x want %04x",
					 fbits(mid), hf_f32_to_bf16(mid), even);
			assert_int_equal(hf_f32_to_bf16(bitsf(lo << 16 | 0x7fff)),
					 lo);
			assert_int_equal(hf_f32_to_bf16(bitsf(lo << 16 | 0x8001)),
					 (uint16_t)(lo + 1));
			assert_int_equal(hf_f32_to_bf16(bitsf(lo << 16)), lo);
		}
	}
	assert_int_equal(hf_f32_to_bf16(NAN), 0x7fc0);
	assert_int_equal(hf_f32_to_bf16(-NAN), 0x7fc0);
	assert_int_equal(hf_f32_to_bf16(bitsf(0x7f800001)), 0x7fc0);
	assert_int_equal(hf_f32_to_bf16(INFINITY), 0x7f80);
	assert_int_equal(hf_f32_to_bf16(bitsf(0x7f7fffff)), 0x7f80);
	for (int i = 0; i < 200000; i++) {
		float f = bitsf(next() ^ (next() << 16));

		if (hf_f32_to_bf16(f) != bf16_oracle(f))
			fail_msg("%a (%08x): got %04x want %04x", f, fbits(f),
				 hf_f32_to_bf16(f), bf16_oracle(f));
	}
}

/* Inputs for the bulk tests: every 16-bit code, and f32 values of every
 * kind (each f16 midpoint and neighbour, NaNs, infinities, random). */
#define NB 65536
#define NF (65536 * 3 + 4096)

static float *f32_inputs(void)
{
	float *f = malloc(NF * sizeof(float));
	size_t n = 0;

	assert_non_null(f);
	for (uint32_t h = 0; h < 65536; h++) {
		float x = hf_f16_to_f32((uint16_t)h);
		float y = hf_f16_to_f32((uint16_t)(h + 1));

		f[n++] = x;
		f[n++] = isfinite(x) && isfinite(y) ? (x + y) / 2 : x;
		f[n++] = bitsf(next());
	}
	while (n < NF)
		f[n++] = bitsf(0x7f800000 | next());	/* inf and NaNs */
	return f;
}

static void test_simd_paths_match_plain_bit_for_bit(void **state)
{
	uint16_t *codes = malloc(NB * 2), *h0 = malloc(NF * 2),
		 *h1 = malloc(NF * 2);
	float *f = f32_inputs(), *f0 = malloc(NB * 4), *f1 = malloc(NB * 4);
	int ran = 0;

	for (uint32_t i = 0; i < NB; i++)
		codes[i] = (uint16_t)i;
	for (size_t p = 0; p < sizeof(paths) / sizeof(paths[0]); p++) {
		if (hf_dtype_set_simd(paths[p]))
			continue;
		ran++;
		assert_string_equal(hf_dtype_simd(), paths[p]);
		/* odd lengths and offsets exercise the scalar tails */
		for (size_t off = 0; off < 2; off++) {
			size_t n = NB - off - 3;

			hf_f16_to_f32_ref(f0, codes + off, n);
			hf_f16_to_f32_n(f1, codes + off, n);
			for (size_t i = 0; i < n; i++)
				if (fbits(f0[i]) != fbits(f1[i]))
					fail_msg("%s f16 %04x: %08x vs %08x",
						 paths[p], codes[off + i],
						 fbits(f1[i]), fbits(f0[i]));
			hf_bf16_to_f32_ref(f0, codes + off, n);
			hf_bf16_to_f32_n(f1, codes + off, n);
			assert_memory_equal(f0, f1, n * 4);
			n = NF - off - 5;
			hf_f32_to_f16_ref(h0, f + off, n);
			hf_f32_to_f16_n(h1, f + off, n);
			for (size_t i = 0; i < n; i++)
				if (h0[i] != h1[i])
					fail_msg("%s f32 %08x -> f16: %04x vs "
						 "%04x", paths[p],
						 fbits(f[off + i]), h1[i],
						 h0[i]);
			hf_f32_to_bf16_ref(h0, f + off, n);
			hf_f32_to_bf16_n(h1, f + off, n);
			for (size_t i = 0; i < n; i++)
				if (h0[i] != h1[i])
					fail_msg("%s f32 %08x -> bf16: %04x vs "
						 "%04x", paths[p],
						 fbits(f[off + i]), h1[i],
						 h0[i]);
		}
	}
	assert_true(ran >= 1);
	hf_dtype_set_simd("plain");
	assert_string_equal(hf_dtype_simd(), "plain");
	assert_int_equal(hf_dtype_set_simd("sse9"), -1);
	free(codes);
	free(h0);
	free(h1);
	free(f);
	free(f0);
	free(f1);
}

/* f8 by definition: sign, e exponent bits with bias, m mantissa bits,
 * subnormals at e = 0. */
static double f8_value(uint8_t v, int ebits, int bias)
{
	int mbits = 7 - ebits;
	int e = (v >> mbits) & ((1 << ebits) - 1), m = v & ((1 << mbits) - 1);
	double x = e ? ldexp(1.0 + m / (double)(1 << mbits), e - bias)
		     : ldexp(m / (double)(1 << mbits), 1 - bias);

	return (v & 0x80) ? -x : x;
}

static void check_f8(const char *what, uint8_t v, float got, double want)
{
	if (isnan(want)) {
		if (!isnan(got))
			fail_msg("%s %02x: got %a want NaN", what, v, got);
		return;
	}
	if ((double)got != want || !signbit(got) != !signbit(want))
		fail_msg("%s %02x: got %a want %a", what, v, got, want);
}

static void test_f8_all_256_values(void **state)
{
	uint8_t all[256];
	float bulk[256];

	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	for (int i = 0; i < 256; i++) {
		uint8_t v = (uint8_t)i;
		double e4 = (v & 0x7f) == 0x7f ? NAN : f8_value(v, 4, 7);
		double e5 = (v & 0x7c) == 0x7c ? ((v & 3) ? NAN :
			    (v & 0x80 ? -INFINITY : INFINITY)) :
			    f8_value(v, 5, 15);
		double e4u = v == 0x80 ? NAN : f8_value(v, 4, 8);
		double e5u = v == 0x80 ? NAN : f8_value(v, 5, 16);
		double e8 = v == 0xff ? NAN : ldexp(1, i - 127);

		check_f8("e4m3", v, hf_f8e4m3_to_f32(v), e4);
		check_f8("e5m2", v, hf_f8e5m2_to_f32(v), e5);
		check_f8("e4m3fnuz", v, hf_f8e4m3fnuz_to_f32(v), e4u);
		check_f8("e5m2fnuz", v, hf_f8e5m2fnuz_to_f32(v), e5u);
		check_f8("e8m0", v, hf_f8e8m0_to_f32(v), e8);
	}
	/* landmarks from the FP8 paper (arXiv 2209.05433), table 1 */
	assert_true(hf_f8e4m3_to_f32(0x7e) == 448.0f);
	assert_true(hf_f8e4m3_to_f32(0x01) == ldexpf(1, -9));
	assert_true(hf_f8e4m3_to_f32(0x08) == ldexpf(1, -6));
	assert_true(hf_f8e5m2_to_f32(0x7b) == 57344.0f);
	assert_true(isinf(hf_f8e5m2_to_f32(0x7c)));
	assert_true(hf_f8e5m2_to_f32(0x01) == ldexpf(1, -16));
	assert_true(hf_f8e8m0_to_f32(0x7f) == 1.0f);
	assert_true(hf_f8e8m0_to_f32(0) == ldexpf(1, -127));
	assert_int_equal(hf_to_f32_n(bulk, all, HF_DTYPE_F8_E4M3, 256), 0);
	for (int i = 0; i < 256; i++)
		check_f8("bulk e4m3", (uint8_t)i, bulk[i],
			 isnan(hf_f8e4m3_to_f32((uint8_t)i)) ? NAN :
			 hf_f8e4m3_to_f32((uint8_t)i));
	assert_int_equal(hf_to_f32_n(bulk, all, HF_DTYPE_F8_E5M2, 256), 0);
	for (int i = 0; i < 256; i++)
		check_f8("bulk e5m2", (uint8_t)i, bulk[i],
			 isnan(hf_f8e5m2_to_f32((uint8_t)i)) ? NAN :
			 hf_f8e5m2_to_f32((uint8_t)i));
}

static void test_to_f32_n_any_float_dtype_unaligned(void **state)
{
	unsigned char buf[1 + 4 * 8];
	float out[4];
	const double d[4] = { 1.5, -2.25, 1e300, 0.0 };
	const uint16_t h[4] = { 0x3c00, 0xc000, 0x7bff, 0x0001 };
	const uint16_t b[4] = { 0x3f80, 0xc040, 0x7f80, 0x0001 };

	memcpy(buf + 1, d, sizeof(d));
	assert_int_equal(hf_to_f32_n(out, buf + 1, HF_DTYPE_F64, 4), 0);
	assert_true(out[0] == 1.5f && out[1] == -2.25f && isinf(out[2]) &&
		    out[3] == 0.0f);
	memcpy(buf + 1, h, sizeof(h));
	assert_int_equal(hf_to_f32_n(out, buf + 1, HF_DTYPE_F16, 4), 0);
	assert_true(out[0] == 1.0f && out[1] == -2.0f && out[2] == 65504.0f &&
		    out[3] == ldexpf(1, -24));
	memcpy(buf, b, sizeof(b));
	assert_int_equal(hf_to_f32_n(out, buf, HF_DTYPE_BF16, 4), 0);
	assert_true(out[0] == 1.0f && out[1] == -3.0f && isinf(out[2]) &&
		    out[3] == ldexpf(1, -133));
	memcpy(buf + 1, out, 16);
	assert_int_equal(hf_to_f32_n(out, buf + 1, HF_DTYPE_F32, 4), 0);
	assert_true(out[1] == -3.0f);
	assert_int_equal(hf_to_f32_n(out, buf, HF_DTYPE_I32, 4), -1);
	assert_int_equal(hf_to_f32_n(out, buf, HF_DTYPE_U8, 4), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_bits_and_parse),
		cmocka_unit_test(test_f16_to_f32_all_65536_exact),
		cmocka_unit_test(test_bf16_to_f32_all_65536_exact),
		cmocka_unit_test(test_f32_to_f16_round_trips_all_values),
		cmocka_unit_test(test_f32_to_f16_ties_to_even),
		cmocka_unit_test(test_f32_to_f16_random_against_oracle),
		cmocka_unit_test(test_f32_to_bf16_ties_nan_and_random),
		cmocka_unit_test(test_simd_paths_match_plain_bit_for_bit),
		cmocka_unit_test(test_f8_all_256_values),
		cmocka_unit_test(test_to_f32_n_any_float_dtype_unaligned),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
