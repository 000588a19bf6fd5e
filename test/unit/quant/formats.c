/* test/unit/quant/formats.c: reading the quantized formats. Dequant of
 * hand-packed tensors against values worked out from the documented
 * layouts; views of rows against the rows of the whole; the products of
 * every ISA this CPU runs against a double-precision product over the
 * dequantized matrix; the quant_state and quantization_config parsers
 * and their refusals. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/json.h"
#include "quant/formats.h"
#include "quant/qconfig.h"
#include "st/st.h"
#include "tensor/matmul.h"
#include "tensor/wfmt.h"
#include "qrand.h"

static void deq_all(float *out, const struct hf_weight *w)
{
	hf_weight_dequant(out, w, 0, w->rows, 0, w->cols);
}

/* ---- hand-packed values ---------------------------------------------------- */

static void test_int8_rows(void **state)
{
	const int8_t q[4] = { 127, -127, 64, 0 };
	const float scb[2] = { 2.54f, 1.27f };
	struct hf_weight w = { .fmt = HF_WFMT_INT8, .rows = 2, .cols = 2,
			       .t = { q, scb } };
	float d[4];

	deq_all(d, &w);
	assert_float_equal(d[0], 2.54f, 1e-6);
	assert_float_equal(d[1], -2.54f, 1e-6);
	assert_float_equal(d[2], 64 * 1.27f / 127, 1e-6);
	assert_float_equal(d[3], 0, 0);
}

static void test_bnb4_nibbles_and_double_quant(void **state)
{
	/* 4 elements: codes 15, 0 (byte 0xF0), 7, 8 (byte 0x78); two
	 * blocks of 2 */
	const uint8_t codes[2] = { 0xF0, 0x78 };
	const float absmax[2] = { 2.0f, 0.5f };
	struct hf_weight w = { .fmt = HF_WFMT_BNB4, .rows = 2, .cols = 2,
			       .q = { .group = 2 },
			       .t = { codes, absmax, hf_nf4_table } };
	float d[4];

	deq_all(d, &w);
	assert_float_equal(d[0], 2.0f, 0);		/* nf4[15] = 1 */
	assert_float_equal(d[1], -2.0f, 0);		/* nf4[0] = -1 */
	assert_float_equal(d[2], 0.0f, 0);		/* nf4[7] = 0 */
	assert_float_equal(d[3], 0.5f * 0.07958029955625534f, 1e-9);
	/* fp4: code 3 is 12/12 = 1, code 0xB (sign | 3) is -1 */
	{
		const uint8_t c2[2] = { 0x3B, 0x63 };
		struct hf_weight v = w;

		v.t[0] = c2;
		v.t[2] = hf_fp4_table;
		deq_all(d, &v);
		assert_float_equal(d[0], 2.0f, 0);
		assert_float_equal(d[1], -2.0f, 0);
		assert_float_equal(d[2], 0.5f * 2.0f / 12, 1e-7);
		assert_float_equal(d[3], 0.5f, 0);
	}
	/* double quant: absmax[b] = nmap[aq[b]] * nabs[b / 2] + offset */
	{
		const uint8_t aq[2] = { 1, 2 };
		float nmap[256] = { 0 };
		const float nabs[1] = { 4.0f };
		struct hf_weight v = { .fmt = HF_WFMT_BNB4DQ, .rows = 2,
				       .cols = 2,
				       .q = { .group = 2, .group2 = 2,
					      .p0 = 0.5f },
				       .t = { codes, aq, hf_nf4_table, nabs,
					      nmap } };

		nmap[1] = 0.25f;	/* absmax 0 = 1.5 */
		nmap[2] = -0.0625f;	/* absmax 1 = 0.25 */
		deq_all(d, &v);
		assert_float_equal(d[0], 1.5f, 0);
		assert_float_equal(d[1], -1.5f, 0);
		assert_float_equal(d[3], 0.25f * 0.07958029955625534f, 1e-9);
	}
}

static void test_gptq_words(void **state)
{
	/* 4-bit, in 8, out 8: qweight (1, 8): output o has inputs 0..7 =
	 * o, o+1, ... (mod 16) in nibbles LSB first; v1 qzeros 0x77777777
	 * (true zero 8); scales 0.5 */
	uint32_t qw[8], qz[1] = { 0x77777777u };
	uint16_t sc[8];
	struct hf_weight w = { .fmt = HF_WFMT_GPTQ, .rows = 8, .cols = 8,
			       .q = { .group = 8, .bits = 4, .zoff = 1,
				      .ld = 8 },
			       .t = { qw, qz, sc, NULL } };
	float d[64];

	for (unsigned o = 0; o < 8; o++) {
		qw[o] = 0;
		for (unsigned i = 0; i < 8; i++)
			qw[o] |= ((o + i) & 15u) << (4 * i);
		sc[o] = hf_f32_to_f16(0.5f);
	}
	deq_all(d, &w);
	for (unsigned o = 0; o < 8; o++)
		for (unsigned i = 0; i < 8; i++)
			assert_float_equal(d[o * 8 + i],
					   0.5f * ((float)((o + i) & 15) - 8),
					   0);
	/* v2 stores the true zero: 0x77777777 is 7 */
	w.q.zoff = 0;
	deq_all(d, &w);
	assert_float_equal(d[0], 0.5f * (0 - 7.0f), 0);
	/* the v1 +1 wraps: stored 15 is true zero 0 */
	qz[0] = 0xFFFFFFFFu;
	w.q.zoff = 1;
	deq_all(d, &w);
	assert_float_equal(d[9], 0.5f * 2, 0);	/* o 1, i 1: q 2 */
	/* g_idx moves input 1 to group 1 of two (scales row 1 = 2.0) */
	{
		uint16_t sc2[16];
		int32_t gi[8] = { 0, 1, 0, 0, 0, 0, 0, 0 };
		uint32_t qz2[2] = { 0x77777777u, 0x77777777u };

		for (int i = 0; i < 8; i++) {
			sc2[i] = hf_f32_to_f16(0.5f);
			sc2[8 + i] = hf_f32_to_f16(2.0f);
		}
		w.t[1] = qz2;
		w.t[2] = sc2;
		w.t[3] = gi;
		deq_all(d, &w);
		assert_float_equal(d[0 * 8 + 1], 2.0f * (1 - 8.0f), 0);
		assert_float_equal(d[0 * 8 + 2], 0.5f * (2 - 8.0f), 0);
	}
}

static void test_gptq_3bit_straddles_words(void **state)
{
	/* 3-bit: 32 inputs in 3 words, input k at bits 3k of the 96-bit
	 * number; input 10 spans word 0 bits 30-31 and word 1 bit 0 */
	uint32_t qw[3 * 32] = { 0 }, qz[3] = { 0 };
	uint16_t sc[32];
	struct hf_weight w = { .fmt = HF_WFMT_GPTQ, .rows = 32, .cols = 32,
			       .q = { .group = 32, .bits = 3, .zoff = 0,
				      .ld = 32 },
			       .t = { qw, qz, sc, NULL } };
	float d[32 * 32];

	for (int o = 0; o < 32; o++)
		sc[o] = hf_f32_to_f16(1.0f);
	/* output 0: input 10 = 5 (binary 101): bits 30, 32 */
	qw[0 * 32 + 0] |= 1u << 30;
	qw[1 * 32 + 0] |= 1u;
	/* input 21 = 6 (110): bits 64, 65 -> word 2 bits 0, 1 (bit 63 0) */
	qw[2 * 32 + 0] |= 3u;
	/* zero of output 21 = 3 (011): bits 63, 64 */
	qz[1] |= 1u << 31;
	qz[2] |= 1u;
	deq_all(d, &w);
	assert_float_equal(d[0 * 32 + 10], 5, 0);
	assert_float_equal(d[0 * 32 + 21], 6, 0);
	assert_float_equal(d[0 * 32 + 11], 0, 0);
	assert_float_equal(d[21 * 32 + 0], -3, 0);
}

static void test_awq_interleave(void **state)
{
	/* nibble k of a word holds output column order[k], order 0 2 4 6 1
	 * 3 5 7: nibble values = k make column c read its position */
	uint32_t qw[1] = { 0x76543210u }, qz[1] = { 0 };
	uint16_t sc[8];
	struct hf_weight w = { .fmt = HF_WFMT_AWQ, .rows = 8, .cols = 1,
			       .q = { .group = 1, .bits = 4, .ld = 8 },
			       .t = { qw, qz, sc } };
	const float pos[8] = { 0, 4, 1, 5, 2, 6, 3, 7 };
	float d[8];

	for (int o = 0; o < 8; o++)
		sc[o] = hf_f32_to_f16(1.0f);
	deq_all(d, &w);
	for (int o = 0; o < 8; o++)
		assert_float_equal(d[o], pos[o], 0);
}

static void test_bitnet_row_blocks(void **state)
{
	/* out 8, in 1: R = 2; packed row 0 holds rows 0, 2, 4, 6 */
	const uint8_t p[2] = { 0x00 | (1 << 2) | (2 << 4) | (0 << 6),
			       0x02 | (0 << 2) | (1 << 4) | (2 << 6) };
	struct hf_weight w = { .fmt = HF_WFMT_BITNET, .rows = 8, .cols = 1,
			       .q = { .ld = 8, .p0 = 0.5f }, .t = { p } };
	const float want[8] = { -1, 1, 0, -1, 1, 0, -1, 1 };
	float d[8];

	deq_all(d, &w);
	for (int o = 0; o < 8; o++)
		assert_float_equal(d[o], want[o] * 0.5f, 0);
}

static void test_fp8_blocks(void **state)
{
	/* 0x38 is 1.0 in E4M3, 0xC0 is -2.0; blocks 1 x 2 */
	const uint8_t p[4] = { 0x38, 0x38, 0xC0, 0x38 };
	const float si[4] = { 0.5f, 2.0f, 3.0f, 4.0f };
	struct hf_weight w = { .fmt = HF_WFMT_FP8, .rows = 2, .cols = 2,
			       .q = { .group = 1, .group2 = 1, .ld = 2 },
			       .t = { p, si } };
	float d[4];

	deq_all(d, &w);
	assert_float_equal(d[0], 0.5f, 0);
	assert_float_equal(d[1], 2.0f, 0);
	assert_float_equal(d[2], -6.0f, 0);
	assert_float_equal(d[3], 4.0f, 0);
	/* every code as the dtype conversion reads it */
	{
		uint8_t all[256];
		const float one = 1.0f;
		float e[256];
		struct hf_weight v = { .fmt = HF_WFMT_FP8, .rows = 1,
				       .cols = 256,
				       .q = { .group = 256, .group2 = 1,
					      .ld = 1 },
				       .t = { all, &one } };

		for (int i = 0; i < 256; i++)
			all[i] = (uint8_t)i;
		deq_all(e, &v);
		for (int i = 0; i < 256; i++) {
			float want = hf_f8e4m3_to_f32((uint8_t)i);

			if (isnan(want))
				assert_true(isnan(e[i]));
			else
				assert_memory_equal(&e[i], &want, 4);
		}
	}
}

/* ---- views and products ------------------------------------------------------- */

static const enum hf_wfmt qfmts[] = {
	HF_WFMT_INT8, HF_WFMT_BNB4, HF_WFMT_BNB4DQ, HF_WFMT_GPTQ,
	HF_WFMT_AWQ, HF_WFMT_BITNET, HF_WFMT_FP8,
};
#define NQ (sizeof(qfmts) / sizeof(qfmts[0]))

static void test_views_are_rows_of_the_whole(void **state)
{
	const size_t rows = 64, cols = 96;

	for (size_t fi = 0; fi < NQ; fi++)
		for (unsigned v = 0; v < 16; v++) {
			struct qrand q;
			float *all = malloc(rows * cols * 4), *part;
			struct hf_weight view;
			struct hf_err err = { 0 };
			size_t r0 = 8 * (v % 4 + 1), n = 24;

			if (!qrand_fits(qfmts[fi], rows, cols, v)) {
				free(all);
				continue;
			}
			qrand_make(&q, qfmts[fi], rows, cols, v, 7 + v);
			deq_all(all, &q.w);
			assert_int_equal(hf_weight_rows(&view, &q.w, r0, n,
							&err), 0);
			part = malloc(n * cols * 4);
			deq_all(part, &view);
			assert_memory_equal(part, all + r0 * cols,
					    n * cols * 4);
			/* a view of a view */
			{
				struct hf_weight vv;

				assert_int_equal(hf_weight_rows(&vv, &view, 8,
								8, &err), 0);
				hf_weight_dequant(part, &vv, 0, 8, 0, cols);
				assert_memory_equal(part,
						    all + (r0 + 8) * cols,
						    8 * cols * 4);
			}
			free(part);
			free(all);
			qrand_free(&q);
		}
}

static const char *const isas[] = {
	[HF_MATMUL_GENERIC] = "generic", [HF_MATMUL_AVX2] = "avx2",
	[HF_MATMUL_AVX512] = "avx512", [HF_MATMUL_AVX512BF16] = "avx512bf16",
	[HF_MATMUL_NEON] = "neon",
};

/* y = x W^T in double over the dequantized W. */
static void ref_product(double *y, double *mag, const float *x,
			const float *W, size_t n, size_t out, size_t in)
{
	for (size_t t = 0; t < n; t++)
		for (size_t o = 0; o < out; o++) {
			double s = 0, m = 0;

			for (size_t k = 0; k < in; k++) {
				s += (double)x[t * in + k] * W[o * in + k];
				m += fabs((double)x[t * in + k] * W[o * in + k]);
			}
			y[t * out + o] = s;
			mag[t * out + o] = m;
		}
}

static void test_products_on_every_isa(void **state)
{
	static const size_t shapes[][2] = {	/* (out, in) */
		{ 32, 32 }, { 64, 96 }, { 96, 256 }, { 40, 48 }, { 8, 16 },
	};
	static const size_t ns[] = { 1, 2, 4, 5, 19 };
	int ran = 0;

	for (int isa = 0; isa <= HF_MATMUL_NEON; isa++) {
		if (hf_matmul_set_isa(isa))
			continue;
		ran++;
		for (size_t fi = 0; fi < NQ; fi++)
		for (size_t si = 0; si < 5; si++)
		for (unsigned v = 0; v < 16; v += 3) {
			size_t out = shapes[si][0], in = shapes[si][1];
			struct qrand q;
			float *W, *x, *got;
			double *want, *mag;

			if (!qrand_fits(qfmts[fi], out, in, v))
				continue;
			qrand_make(&q, qfmts[fi], out, in, v, 99 + v);
			W = malloc(out * in * 4);
			deq_all(W, &q.w);
			for (size_t ni = 0; ni < 5; ni++) {
				size_t n = ns[ni];

				x = malloc(n * in * 4);
				got = malloc(n * out * 4);
				want = malloc(n * out * 8);
				mag = malloc(n * out * 8);
				for (size_t i = 0; i < n * in; i++)
					x[i] = qr_unit(&q, -1, 1);
				ref_product(want, mag, x, W, n, out, in);
				hf_matmul_w(got, x, &q.w, NULL, n,
					    HF_DTYPE_F32, NULL);
				for (size_t i = 0; i < n * out; i++)
					if (fabs(got[i] - want[i]) >
					    2e-5 * mag[i] + 1e-30)
						fail_msg("%s %s v%u n %zu (%zu, %zu): y[%zu] %.9g want %.9g",
							 isas[isa],
							 hf_wfmt_name(qfmts[fi]),
							 v, n, out, in, i,
							 got[i], want[i]);
				/* bf16 compute: x and W rounded to bf16 */
				hf_matmul_w(got, x, &q.w, NULL, n,
					    HF_DTYPE_BF16, NULL);
				for (size_t i = 0; i < n * out; i++)
					if (fabs(got[i] - want[i]) >
					    1.6e-2 * mag[i] + 1e-30)
						fail_msg("%s %s bf16 v%u n %zu: y[%zu] %.9g want %.9g",
							 isas[isa],
							 hf_wfmt_name(qfmts[fi]),
							 v, n, i, got[i],
							 want[i]);
				free(x);
				free(got);
				free(want);
				free(mag);
			}
			free(W);
			qrand_free(&q);
		}
	}
	assert_true(ran >= 1);
	assert_int_equal(hf_matmul_set_isa(HF_MATMUL_GENERIC), 0);
}

/* ---- parsers -------------------------------------------------------------------- */

static void test_quant_state_json(void **state)
{
	static const char ok[] = "{\"quant_type\": \"nf4\", \"blocksize\": 64, "
		"\"dtype\": \"bfloat16\", \"shape\": [64, 32], "
		"\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", "
		"\"nested_offset\": 0.0123}";
	static const char reordered[] = "{\"shape\":[8,4],\"blocksize\":32,"
		"\"quant_type\":\"fp4\",\"dtype\":\"float16\"}";
	static const char *const bad[] = {
		"{\"quant_type\": \"nf4\", \"blocksize\": 48, \"shape\": [4, 4]}",
		"{\"quant_type\": \"int4\", \"blocksize\": 64, \"shape\": [4, 4]}",
		"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"shape\": 16}",
		"{\"quant_type\": \"nf4\", \"blocksize\": 64, \"shape\": [4, 4], \"nested_offset\": 1.0}",
		"[1, 2]",
		"{\"quant_type\": \"nf4\"",
	};
	struct hf_bnb_qstate qs;
	struct hf_err err = { 0 };

	assert_int_equal(hf_bnb_qstate_parse(&qs, ok, strlen(ok), "qs", &err),
			 0);
	assert_string_equal(qs.quant_type, "nf4");
	assert_int_equal(qs.blocksize, 64);
	assert_string_equal(qs.dtype, "bfloat16");
	assert_int_equal(qs.ndim, 2);
	assert_int_equal(qs.shape[0], 64);
	assert_int_equal(qs.shape[1], 32);
	assert_true(qs.nested);
	assert_int_equal(qs.nested_blocksize, 256);
	assert_float_equal(qs.nested_offset, 0.0123, 1e-12);
	assert_int_equal(hf_bnb_qstate_parse(&qs, reordered, strlen(reordered),
					     "qs", &err), 0);
	assert_string_equal(qs.quant_type, "fp4");
	assert_false(qs.nested);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.code = 0;
		assert_int_not_equal(hf_bnb_qstate_parse(&qs, bad[i],
							 strlen(bad[i]), "qs",
							 &err), 0);
		assert_non_null(strstr(err.msg, "qs"));
	}
}

static int qcfg_of(struct hf_qcfg *qc, json_t **j, const char *s,
		   struct hf_err *err)
{
	*j = json_loads(s, 0, NULL);
	assert_non_null(*j);
	return hf_qcfg_parse(qc, *j, "config.json: quantization_config", err);
}

static void test_quantization_config(void **state)
{
	struct hf_qcfg qc;
	struct hf_err err = { 0 };
	json_t *j;
	char buf[128];

	assert_int_equal(qcfg_of(&qc, &j, "{\"quant_method\":\"gptq\",\"bits\":4,"
				 "\"group_size\":128,\"desc_act\":true,\"sym\":false,"
				 "\"checkpoint_format\":\"gptq_v2\"}", &err), 0);
	assert_int_equal(qc.method, HF_QM_GPTQ);
	assert_int_equal(qc.bits, 4);
	assert_int_equal(qc.group_size, 128);
	assert_true(qc.desc_act);
	assert_false(qc.sym);
	assert_true(qc.gptq_v2);
	assert_string_equal(hf_qcfg_describe(&qc, buf, sizeof(buf)),
			    "gptq_v2 4-bit g128");
	json_decref(j);
	/* GPTQModel's newer "format" wins over the alias */
	assert_int_equal(qcfg_of(&qc, &j, "{\"quant_method\":\"gptq\",\"bits\":8,"
				 "\"format\":\"gptq\",\"checkpoint_format\":\"gptq_v2\"}",
				 &err), 0);
	assert_false(qc.gptq_v2);
	json_decref(j);
	assert_int_equal(qcfg_of(&qc, &j, "{\"quant_method\":\"bitsandbytes\","
				 "\"_load_in_4bit\":true,\"bnb_4bit_quant_type\":\"fp4\","
				 "\"bnb_4bit_use_double_quant\":true,"
				 "\"llm_int8_skip_modules\":[\"lm_head\",\"mlp.gate\"]}",
				 &err), 0);
	assert_true(qc.load_in_4bit);
	assert_string_equal(qc.bnb_4bit_quant_type, "fp4");
	assert_true(hf_qcfg_skips(&qc, "model.layers.0.mlp.gate"));
	assert_false(hf_qcfg_skips(&qc, "model.layers.0.mlp.up_proj"));
	json_decref(j);
	assert_int_equal(qcfg_of(&qc, &j, "{\"quant_method\":\"fp8\","
				 "\"weight_block_size\":[64,32]}", &err), 0);
	assert_int_equal(qc.fp8_block[0], 64);
	assert_int_equal(qc.fp8_block[1], 32);
	json_decref(j);
	assert_int_equal(qcfg_of(&qc, &j, "{\"quant_method\":\"bitnet\","
				 "\"linear_class\":\"autobitlinear\"}", &err), 0);
	assert_true(qc.autobitlinear);
	json_decref(j);
	{
		static const char *const bad[] = {
			"{\"quant_method\":\"hqq\"}",
			"{\"bits\":4}",
			"{\"quant_method\":\"gptq\",\"bits\":5}",
			"{\"quant_method\":\"gptq\",\"bits\":4,\"group_size\":0}",
			"{\"quant_method\":\"gptq\",\"bits\":4,\"format\":\"marlin\"}",
			"{\"quant_method\":\"awq\",\"version\":\"gemv\"}",
			"{\"quant_method\":\"bitsandbytes\"}",
			"{\"quant_method\":\"bitsandbytes\",\"load_in_4bit\":true,"
			"\"bnb_4bit_quant_type\":\"int4\"}",
			"{\"quant_method\":\"fp8\",\"weight_block_size\":[128]}",
			"{\"quant_method\":\"fp8\",\"activation_scheme\":\"static\"}",
			"{\"quant_method\":\"bitnet\",\"linear_class\":\"x\"}",
			"{\"quant_method\":\"awq\",\"modules_to_not_convert\":\"lm_head\"}",
			"[]",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			err.code = 0;
			assert_int_not_equal(qcfg_of(&qc, &j, bad[i], &err), 0);
			assert_non_null(strstr(err.msg, "quantization_config"));
			json_decref(j);
		}
	}
}

/* A checkpoint of named tensors, for the bind hooks. */
struct ck {
	struct hf_tensor t[8];
	size_t n;
};

static const struct hf_tensor *ck_get(void *ctx, const char *name)
{
	struct ck *c = ctx;

	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->t[i].name, name))
			return &c->t[i];
	return NULL;
}

static void ck_add(struct ck *c, const char *name, enum hf_dtype dt,
		   int64_t d0, int64_t d1, const void *data, size_t nbytes)
{
	struct hf_tensor *t = &c->t[c->n++];

	memset(t, 0, sizeof(*t));
	t->name = name;
	t->dtype = dt;
	t->ndim = d1 ? 2 : 1;
	t->shape[0] = d0;
	t->shape[1] = d1;
	t->data = data;
	t->nbytes = nbytes;
}

static void test_tensors_that_contradict_the_config(void **state)
{
	static uint32_t qw[4 * 32], qz[32 / 8 * 1];
	static uint16_t sc[32];
	struct ck c = { .n = 0 };
	struct hf_qcfg qc;
	struct hf_err err = { 0 };
	const struct hf_tensor *tn[HF_WEIGHT_NT];
	struct hf_weight w;
	json_t *j;

	/* gptq 4-bit, in 32, out 32, one group */
	ck_add(&c, "p.qweight", HF_DTYPE_I32, 4, 32, qw, sizeof(qw));
	ck_add(&c, "p.qzeros", HF_DTYPE_I32, 1, 4, qz, sizeof(qz));
	ck_add(&c, "p.scales", HF_DTYPE_F16, 1, 32, sc, sizeof(sc));
	assert_int_equal(qcfg_of(&qc, &j, "{\"quant_method\":\"gptq\",\"bits\":4,"
				 "\"group_size\":-1}", &err), 0);
	assert_int_equal(hf_weight_bind(&w, tn, ck_get, &c, &qc, "p", 32, 32,
					&err), 0);
	assert_int_equal(w.fmt, HF_WFMT_GPTQ);
	assert_int_equal(w.q.group, 32);
	assert_int_equal(w.q.zoff, 1);
	json_decref(j);
	/* the config says 8 bits: the shapes disagree */
	assert_int_equal(qcfg_of(&qc, &j, "{\"quant_method\":\"gptq\",\"bits\":8,"
				 "\"group_size\":-1}", &err), 0);
	assert_int_equal(hf_weight_bind(&w, tn, ck_get, &c, &qc, "p", 32, 32,
					&err), HF_EFORMAT);
	assert_non_null(strstr(err.msg, "'p.qweight' has shape [4, 32], expected [8, 32]"));
	assert_non_null(strstr(err.msg, "bits 8"));
	json_decref(j);
	/* the config says bitsandbytes */
	assert_int_equal(qcfg_of(&qc, &j, "{\"quant_method\":\"bitsandbytes\","
				 "\"load_in_8bit\":true}", &err), 0);
	assert_int_equal(hf_weight_bind(&w, tn, ck_get, &c, &qc, "p", 32, 32,
					&err), HF_EFORMAT);
	assert_non_null(strstr(err.msg, "quant_method 'bitsandbytes'"));
	json_decref(j);
	/* no config at all */
	assert_int_equal(hf_weight_bind(&w, tn, ck_get, &c, NULL, "p", 32, 32,
					&err), HF_EFORMAT);
	assert_non_null(strstr(err.msg, "no quantization_config"));
	/* a g_idx pointing past the groups is refused, not read */
	{
		static int32_t gi[32];

		gi[5] = 3;
		ck_add(&c, "p.g_idx", HF_DTYPE_I32, 32, 0, gi, sizeof(gi));
		assert_int_equal(qcfg_of(&qc, &j, "{\"quant_method\":\"gptq\","
					 "\"bits\":4,\"group_size\":-1,"
					 "\"desc_act\":true}", &err), 0);
		assert_int_equal(hf_weight_bind(&w, tn, ck_get, &c, &qc, "p",
						32, 32, &err), HF_EFORMAT);
		assert_non_null(strstr(err.msg, "g_idx[5] = 3"));
		json_decref(j);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_int8_rows),
		cmocka_unit_test(test_bnb4_nibbles_and_double_quant),
		cmocka_unit_test(test_gptq_words),
		cmocka_unit_test(test_gptq_3bit_straddles_words),
		cmocka_unit_test(test_awq_interleave),
		cmocka_unit_test(test_bitnet_row_blocks),
		cmocka_unit_test(test_fp8_blocks),
		cmocka_unit_test(test_views_are_rows_of_the_whole),
		cmocka_unit_test(test_products_on_every_isa),
		cmocka_unit_test(test_quant_state_json),
		cmocka_unit_test(test_quantization_config),
		cmocka_unit_test(test_tensors_that_contradict_the_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
