/* test/unit/tensor/wfmt.c: the weight-format traits table. Every row is
 * checked for the hooks the rest of the code relies on; the plain rows
 * against the scalar conversions of tensor/dtype.h; and for every
 * format, on every ISA this CPU runs, hf_matmul_w against its reference
 * on awkward sizes, including views of rows cut through the format's
 * span hook (the fused-projection and stacked-expert case). */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "st/st.h"
#include "tensor/matmul.h"
#include "tensor/wfmt.h"

static uint32_t rng = 12345;

static float unit(void)
{
	rng = rng * 1664525u + 1013904223u;
	return (float)(rng >> 8) / 8388608.0f - 1.0f;
}

/* rows x cols values of a plain format fmt, random; vals gets them as
 * float (exact: what the format holds). */
static void *plain_data(enum hf_wfmt fmt, size_t n, float *vals)
{
	const struct hf_wfmt_traits *tr = hf_wfmt_traits(fmt);
	void *p = malloc(n * tr->block_bytes + 1);

	for (size_t i = 0; i < n; i++) {
		float v = unit();

		switch (tr->dtype) {
		case HF_DTYPE_F32:
			((float *)p)[i] = v;
			vals[i] = v;
			break;
		case HF_DTYPE_F16:
			((uint16_t *)p)[i] = hf_f32_to_f16(v);
			vals[i] = hf_f16_to_f32(((uint16_t *)p)[i]);
			break;
		case HF_DTYPE_BF16:
			((uint16_t *)p)[i] = hf_f32_to_bf16(v);
			vals[i] = hf_bf16_to_f32(((uint16_t *)p)[i]);
			break;
		default:
			fail_msg("format %s: no test data for dtype %s",
				 tr->name, hf_dtype_name(tr->dtype));
		}
	}
	return p;
}

static void test_every_row_is_complete(void **state)
{
	for (int f = 0; f < HF_WFMT_COUNT; f++) {
		const struct hf_wfmt_traits *tr = hf_wfmt_traits(f);

		assert_non_null(tr->name);
		assert_string_equal(hf_wfmt_name(f), tr->name);
		assert_true(tr->block >= 1 && tr->block_bytes >= 1);
		assert_true(tr->ntensors >= 1 && tr->ntensors <= HF_WEIGHT_NT);
		assert_non_null(tr->dequant);
		assert_non_null(tr->bind);
		/* the plain formats cut rows by span and are listed */
		if (tr->block == 1 && tr->ntensors == 1) {
			assert_non_null(tr->span);
			assert_non_null(strstr(hf_wfmt_list(), tr->name));
		} else {
			assert_null(strstr(hf_wfmt_list(), tr->name));
		}
		/* names are unique */
		for (int g = 0; g < f; g++)
			assert_string_not_equal(hf_wfmt_traits(g)->name,
						tr->name);
	}
	assert_string_equal(hf_wfmt_name(HF_WFMT_COUNT), "?");
}

static void test_plain_formats_by_dtype(void **state)
{
	assert_int_equal(hf_wfmt_of_dtype(HF_DTYPE_F32), HF_WFMT_F32);
	assert_int_equal(hf_wfmt_of_dtype(HF_DTYPE_F16), HF_WFMT_F16);
	assert_int_equal(hf_wfmt_of_dtype(HF_DTYPE_BF16), HF_WFMT_BF16);
	assert_int_equal(hf_wfmt_of_dtype(HF_DTYPE_I8), -1);
	assert_int_equal(hf_wfmt_of_dtype(HF_DTYPE_F64), -1);
	assert_int_equal(hf_wfmt_row_bytes(HF_WFMT_F32, 7), 28);
	assert_int_equal(hf_wfmt_row_bytes(HF_WFMT_F16, 7), 14);
	assert_int_equal(hf_wfmt_bytes(HF_WFMT_BF16, 3, 5), 30);
}

/* dequant of any panel equals the values, for every plain row. */
static void test_dequant_panels(void **state)
{
	const size_t rows = 9, cols = 37;

	for (int f = 0; f < HF_WFMT_COUNT; f++) {
		float vals[9 * 37], got[9 * 37];
		void *p;
		struct hf_weight w;

		if (hf_wfmt_traits(f)->ntensors != 1 ||
		    hf_wfmt_traits(f)->block != 1)
			continue;
		p = plain_data(f, rows * cols, vals);
		assert_int_equal(hf_weight_plain(&w, p, hf_wfmt_traits(f)->dtype,
						 rows, cols), 0);
		assert_int_equal(w.fmt, f);
		for (size_t r0 = 0; r0 < rows; r0 += 4)
			for (size_t k0 = 0; k0 < cols; k0 += 11) {
				size_t nr = rows - r0 < 3 ? rows - r0 : 3;
				size_t kc = cols - k0 < 13 ? cols - k0 : 13;

				hf_weight_dequant(got, &w, r0, nr, k0, kc);
				for (size_t r = 0; r < nr; r++)
					for (size_t k = 0; k < kc; k++)
						assert_memory_equal(
							&got[r * kc + k],
							&vals[(r0 + r) * cols +
							      k0 + k], 4);
			}
		free(p);
	}
}

struct fake_ckpt {
	struct hf_tensor t;
};

static const struct hf_tensor *fake_get(void *ctx, const char *name)
{
	struct fake_ckpt *c = ctx;

	return !strcmp(name, c->t.name) ? &c->t : NULL;
}

static void test_bind_picks_the_format_of_the_checkpoint(void **state)
{
	uint16_t data[6] = { 0 };
	struct fake_ckpt c = { { "l.weight", HF_DTYPE_BF16, 2, { 2, 3 },
				 data, sizeof(data) } };
	const struct hf_tensor *tn[HF_WEIGHT_NT];
	struct hf_weight w;
	struct hf_err err = { 0 };

	assert_int_equal(hf_weight_bind(&w, tn, fake_get, &c, NULL, "l", 2, 3,
					&err), 0);
	assert_int_equal(w.fmt, HF_WFMT_BF16);
	assert_ptr_equal(w.t[0], data);
	assert_ptr_equal(tn[0], &c.t);
	c.t.dtype = HF_DTYPE_F16;
	assert_int_equal(hf_weight_bind(&w, tn, fake_get, &c, NULL, "l", 2, 3,
					&err), 0);
	assert_int_equal(w.fmt, HF_WFMT_F16);
	/* int8 weights without a quantization_config contradict it */
	c.t.dtype = HF_DTYPE_I8;
	assert_int_equal(hf_weight_bind(&w, tn, fake_get, &c, NULL, "l", 2, 3,
					&err), HF_EFORMAT);
	assert_non_null(strstr(err.msg, "'l.weight' is stored as bitsandbytes int8, but config.json has no quantization_config"));
	/* a dtype no format stores */
	c.t.dtype = HF_DTYPE_I16;
	assert_int_equal(hf_weight_bind(&w, tn, fake_get, &c, NULL, "l", 2, 3,
					&err), HF_ENOTFOUND);
	/* absent */
	c.t.dtype = HF_DTYPE_F16;
	assert_int_equal(hf_weight_bind(&w, tn, fake_get, &c, NULL, "m", 2, 3,
					&err), HF_ENOTFOUND);
	/* a wrong shape is an error of the checkpoint, named */
	assert_int_equal(hf_weight_bind(&w, tn, fake_get, &c, NULL, "l", 3, 2,
					&err), HF_EFORMAT);
	assert_non_null(strstr(err.msg, "'l.weight' has shape [2, 3], expected [3, 2]"));
}

static const char *const isas[] = {
	[HF_MATMUL_GENERIC] = "generic", [HF_MATMUL_AVX2] = "avx2",
	[HF_MATMUL_AVX512] = "avx512", [HF_MATMUL_AVX512BF16] = "avx512bf16",
	[HF_MATMUL_NEON] = "neon",
};

/* hf_matmul_w on every format and ISA (forced in turn) against the
 * reference, on the whole matrix and on a view of rows [r0, r0 + nr). */
static void test_every_format_on_every_isa(void **state)
{
	static const size_t shapes[][2] = {
		{ 1, 1 }, { 31, 3 }, { 65, 17 }, { 200, 33 }, { 7, 1 },
	};
	static const size_t ns[] = { 1, 3, 4, 5, 9 };
	int ran = 0;

	for (int isa = 0; isa <= HF_MATMUL_NEON; isa++) {
		if (hf_matmul_set_isa(isa)) {
			printf("# %s: not on this CPU\n", isas[isa]);
			continue;
		}
		ran++;
		for (int f = 0; f < HF_WFMT_COUNT; f++)
		if (hf_wfmt_of_dtype(hf_wfmt_traits(f)->dtype) == f)
		for (size_t si = 0; si < 5; si++)
		for (size_t ni = 0; ni < 5; ni++)
		for (int ct = 0; ct < 2; ct++) {
			size_t in = shapes[si][0], out = shapes[si][1];
			size_t n = ns[ni], r0 = out / 3, nr = out - out / 3;
			float *vals = malloc(in * out * sizeof(float));
			void *p = plain_data(f, in * out, vals);
			float *x = malloc(n * in * sizeof(float));
			float *want = malloc(n * out * sizeof(float));
			float *got = malloc(n * out * sizeof(float));
			struct hf_weight w, v;
			struct hf_err err = { 0 };
			enum hf_dtype cdt = ct ? HF_DTYPE_BF16 : HF_DTYPE_F32;

			for (size_t i = 0; i < n * in; i++)
				x[i] = unit();
			hf_weight_plain(&w, p, hf_wfmt_traits(f)->dtype, out, in);
			for (int view = 0; view < 2; view++) {
				const struct hf_weight *m = &w;
				size_t o = out;

				if (view) {
					assert_int_equal(hf_weight_rows(&v, &w, r0,
									nr, &err), 0);
					m = &v;
					o = nr;
				}
				if (ct)
					hf_matmul_w_bf16_ref(want, x, m, NULL, n);
				else
					hf_matmul_w_ref(want, x, m, NULL, n);
				hf_matmul_w(got, x, m, NULL, n, cdt, NULL);
				for (size_t i = 0; i < n * o; i++) {
					double mag = 0;

					for (size_t k = 0; k < in; k++)
						mag += fabs(x[i / o * in + k]) *
						       fabs(vals[(i % o + (view ? r0 : 0)) * in + k]);
					if (fabs(got[i] - want[i]) > 2e-5 * mag + 1e-30)
						fail_msg("%s %s ct %d n %zu in %zu out %zu view %d: y[%zu] %.9g want %.9g",
							 isas[isa], hf_wfmt_name(f),
							 ct, n, in, o, view, i,
							 got[i], want[i]);
				}
			}
			free(vals);
			free(p);
			free(x);
			free(want);
			free(got);
		}
	}
	assert_true(ran >= 1);
	assert_int_equal(hf_matmul_set_isa(HF_MATMUL_GENERIC), 0);
}

static void test_rows_past_the_end_are_refused(void **state)
{
	float d[6] = { 0 };
	struct hf_weight w, v;
	struct hf_err err = { 0 };

	hf_weight_plain(&w, d, HF_DTYPE_F32, 2, 3);
	assert_int_equal(hf_weight_rows(&v, &w, 1, 2, &err), HF_EINTERNAL);
	assert_int_equal(hf_weight_rows(&v, &w, 1, 1, &err), 0);
	assert_ptr_equal(v.t[0], d + 3);
	assert_int_equal(v.rows, 1);
	assert_int_equal(v.cols, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_row_is_complete),
		cmocka_unit_test(test_plain_formats_by_dtype),
		cmocka_unit_test(test_dequant_panels),
		cmocka_unit_test(test_bind_picks_the_format_of_the_checkpoint),
		cmocka_unit_test(test_every_format_on_every_isa),
		cmocka_unit_test(test_rows_past_the_end_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
