/* KV-cache types (backend/kvfmt.h): the stored values and their bounds,
 * and KV_STORE + ATTENTION over a cache of each type on the CPU backend
 * equal to the float32 reference on the values the cache holds. */
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

static struct hf_backend *be;

static int setup(void **state)
{
	struct hf_err err = { 0 };

	(void)state;
	return hf_backend_cpu_create(&be, 3, &err);
}

static int teardown(void **state)
{
	(void)state;
	hf_backend_free(be);
	return 0;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static float frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static void test_names_and_sizes(void **state)
{
	(void)state;
	assert_int_equal(hf_kv_type_parse("q4"), HF_KV_Q4);
	assert_int_equal(hf_kv_type_parse("BF16"), HF_KV_BF16);
	assert_int_equal(hf_kv_type_parse("q8"), -1);
	assert_string_equal(hf_kv_type_name(HF_KV_INT8), "int8");
	assert_int_equal(hf_kv_group(HF_KV_INT8, 128), 32);
	assert_int_equal(hf_kv_group(HF_KV_Q4, 8), 8);
	assert_int_equal(hf_kv_group(HF_KV_F16, 128), 1);
	assert_false(hf_kv_fits(HF_KV_Q4, 12));
	assert_true(hf_kv_fits(HF_KV_INT8, 12));
	assert_false(hf_kv_fits(HF_KV_INT8, 6));
	assert_true(hf_kv_fits(HF_KV_F16, 12));
	/* 2 heads of 64: 4 groups of 32 */
	assert_int_equal(hf_kv_bytes(HF_KV_F32, 128, 64), 512);
	assert_int_equal(hf_kv_bytes(HF_KV_BF16, 128, 64), 256);
	assert_int_equal(hf_kv_bytes(HF_KV_INT8, 128, 64), 4 * (4 + 32));
	assert_int_equal(hf_kv_bytes(HF_KV_Q4, 128, 64), 4 * (8 + 16));
}

/* Known bytes. q4: a group of 8 from -7 to 8 stores scale 1, minimum
 * -7, and q = x + 7 rounded half to even; int8: scale max|x| / 127. */
static void test_q4_and_int8_bytes(void **state)
{
	const float x[8] = { 8, -7, 0.5f, 1.5f, -2.5f, 3, 0, -0.4f };
	unsigned char q[16], i8[12];
	float y[8], s, m;

	(void)state;
	hf_kv_store(HF_KV_Q4, q, x, 8, 8);
	memcpy(&s, q, 4);
	memcpy(&m, q + 4, 4);
	assert_true(s == 1.0f && m == -7.0f);
	/* 15 0 | 8 8 (7.5 -> 8, 8.5 -> 8) | 4 10 | 7 7 (6.6 -> 7) */
	assert_int_equal(q[8], 15 | 0 << 4);
	assert_int_equal(q[9], 8 | 8 << 4);
	assert_int_equal(q[10], 4 | 10 << 4);
	assert_int_equal(q[11], 7 | 7 << 4);
	hf_kv_load(HF_KV_Q4, y, q, 8, 8);
	assert_true(y[0] == 8.0f && y[1] == -7.0f && y[3] == 1.0f &&
		    y[4] == -3.0f && y[7] == 0.0f);
	hf_kv_store(HF_KV_INT8, i8, x, 8, 8);
	memcpy(&s, i8, 4);
	assert_true(s == 8.0f / 127.0f);
	assert_int_equal((int8_t)i8[4], 127);
	assert_int_equal((int8_t)i8[5], -111);	/* -7 * 127 / 8 = -111.1 */
	assert_int_equal((int8_t)i8[9], 48);	/* 3 * 127 / 8 = 47.6 */
}

/* Each type's error bound on random groups, and zeros kept zero. */
static void test_round_trip_bounds(void **state)
{
	enum { N = 4 * 64 };
	float x[N], y[N];
	unsigned char buf[N * 4];

	(void)state;
	for (int t = 0; t < HF_KV_COUNT; t++) {
		for (size_t i = 0; i < N; i++)
			x[i] = i < 32 ? 0.0f : frand() * (1 + (i / 32) % 3);
		hf_kv_store(t, buf, x, N, 64);
		hf_kv_load(t, y, buf, N, 64);
		for (size_t g = 0; g < N / 32; g++) {
			float amax = 0.0f, lo = x[g * 32], hi = lo;

			for (size_t i = 0; i < 32; i++) {
				amax = fmaxf(amax, fabsf(x[g * 32 + i]));
				lo = fminf(lo, x[g * 32 + i]);
				hi = fmaxf(hi, x[g * 32 + i]);
			}
			for (size_t i = 0; i < 32; i++) {
				float a = x[g * 32 + i], e = fabsf(y[g * 32 + i] - a);
				float tol = t == HF_KV_F32 ? 0.0f :
					t == HF_KV_F16 ? fabsf(a) * 0x1p-11f + 1e-7f :
					t == HF_KV_BF16 ? fabsf(a) * 0x1p-8f :
					t == HF_KV_INT8 ? amax / 254.0f * 1.0001f :
					(hi - lo) / 30.0f * 1.0001f + 1e-7f;

				if (e > tol)
					fail_msg("%s: x %g stored as %g (bound %g)",
						 hf_kv_type_name(t), a, y[g * 32 + i],
						 tol);
			}
		}
		for (size_t i = 0; i < 32; i++)
			assert_true(y[i] == 0.0f);
	}
}

/* B rows of T new tokens at columns past + t into caches of type t, then
 * attention over them, against the reference on the cache's values. */
static void attention_case(int t, size_t B, size_t T, size_t C, size_t hq,
			   size_t hkv, size_t d, size_t past, size_t window,
			   int use_mask)
{
	struct hf_err err = { 0 };
	size_t w = hkv * d, qn = B * T * hq * d, nn = B * T * w;
	size_t rb = hf_kv_bytes(t, w, d);
	float *q = malloc(qn * 4), *xk = malloc(nn * 4), *xv = malloc(nn * 4);
	float *kf = calloc(B * C * w, 4), *vf = calloc(B * C * w, 4);
	float *mask = malloc(B * C * 4), *want = malloc(qn * 4);
	int32_t *cols = malloc(B * T * 4);
	struct hf_buf *bq, *bk, *bv, *ck, *cv, *bc, *bm = NULL, *bo;
	enum hf_dtype dt = t == HF_KV_F32 ? HF_DTYPE_F32 : t == HF_KV_F16 ?
		HF_DTYPE_F16 : t == HF_KV_BF16 ? HF_DTYPE_BF16 : HF_DTYPE_U8;
	size_t n = dt == HF_DTYPE_U8 ? B * C * rb : B * C * w;
	float scale = 1.0f / sqrtf((float)d);

	for (size_t i = 0; i < qn; i++)
		q[i] = frand();
	for (size_t i = 0; i < nn; i++) {
		xk[i] = frand();
		xv[i] = frand() * 3.0f;
	}
	for (size_t i = 0; i < B * T; i++)
		cols[i] = (int32_t)(past + i % T);
	for (size_t b = 0; b < B; b++)
		for (size_t j = 0; j < C; j++)
			mask[b * C + j] = j >= b ? 1.0f : 0.0f;
	assert_int_equal(hf_buf_alloc(&bq, be, HF_DTYPE_F32, qn, &err), 0);
	assert_int_equal(hf_buf_alloc(&bk, be, HF_DTYPE_F32, nn, &err), 0);
	assert_int_equal(hf_buf_alloc(&bv, be, HF_DTYPE_F32, nn, &err), 0);
	assert_int_equal(hf_buf_alloc(&bo, be, HF_DTYPE_F32, qn, &err), 0);
	assert_int_equal(hf_buf_alloc(&bc, be, HF_DTYPE_I32, B * T, &err), 0);
	assert_int_equal(hf_buf_alloc(&ck, be, dt, n, &err), 0);
	assert_int_equal(hf_buf_alloc(&cv, be, dt, n, &err), 0);
	memcpy(bq->host, q, qn * 4);
	memcpy(bk->host, xk, nn * 4);
	memcpy(bv->host, xv, nn * 4);
	memcpy(bc->host, cols, B * T * 4);
	memset(ck->host, 0, ck->size);
	memset(cv->host, 0, cv->size);
	if (use_mask) {
		assert_int_equal(hf_buf_alloc(&bm, be, HF_DTYPE_F32, B * C,
					      &err), 0);
		memcpy(bm->host, mask, B * C * 4);
	}
	hf_op_kv_store_as(ck, bk, bc, B, T, C, w, t, d);
	hf_op_kv_store_as(cv, bv, bc, B, T, C, w, t, d);
	hf_op_attention_as(bo, bq, ck, cv, bm, bc, B, T, C, hq, hkv, d, 1,
			   window, scale, t);
	assert_int_equal(hf_backend_status(be, NULL), 0);
	/* what the caches hold, and the stored columns as the type rounds
	 * them (columns before past stay zero) */
	hf_kv_load(t, kf, ck->host, B * C * w, d);
	hf_kv_load(t, vf, cv->host, B * C * w, d);
	for (size_t i = 0; i < B * T; i++) {
		float tmp[1024];
		unsigned char qb[4096];

		hf_kv_store(t, qb, xk + i * w, w, d);
		hf_kv_load(t, tmp, qb, w, d);
		assert_memory_equal(kf + (i / T * C + cols[i]) * w, tmp, w * 4);
	}
	hf_cpu_attention_ref(want, q, kf, vf, use_mask ? mask : NULL, B, T, C,
			     hq, hkv, d, past, 1, window, scale);
	for (size_t i = 0; i < qn; i++)
		if (fabsf(((float *)bo->host)[i] - want[i]) > 3e-6f)
			fail_msg("%s B %zu T %zu d %zu: o[%zu] = %g, want %g",
				 hf_kv_type_name(t), B, T, d, i,
				 ((float *)bo->host)[i], want[i]);
	hf_buf_free(bq);
	hf_buf_free(bk);
	hf_buf_free(bv);
	hf_buf_free(bo);
	hf_buf_free(bc);
	hf_buf_free(ck);
	hf_buf_free(cv);
	hf_buf_free(bm);
	free(q);
	free(xk);
	free(xv);
	free(kf);
	free(vf);
	free(mask);
	free(want);
	free(cols);
}

static void test_attention_over_each_type(void **state)
{
	(void)state;
	for (int t = 0; t < HF_KV_COUNT; t++) {
		attention_case(t, 1, 5, 9, 4, 2, 8, 0, 0, 0);	/* g = d = 8 */
		attention_case(t, 2, 3, 40, 6, 2, 64, 17, 0, 1);
		attention_case(t, 1, 19, 37, 3, 1, 64, 11, 7, 0); /* window */
		attention_case(t, 1, 1, 300, 8, 2, 32, 250, 0, 0); /* split */
		attention_case(t, 1, 2, 6, 2, 1, 264, 3, 0, 0);	/* > 256 */
		if (t != HF_KV_Q4)	/* groups of a head of 12 */
			attention_case(t, 2, 4, 9, 3, 3, 12, 2, 0, 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_and_sizes),
		cmocka_unit_test(test_q4_and_int8_bytes),
		cmocka_unit_test(test_round_trip_bounds),
		cmocka_unit_test(test_attention_over_each_type),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
