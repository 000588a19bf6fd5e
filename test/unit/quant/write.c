/* test/unit/quant/write.c: the writers of quant/quantize.h. Each format's
 * bytes are checked against values worked out by hand from the
 * documented algorithm (docs/quantization-formats.md and the upstream
 * code it cites) on small matrices chosen so that the codes are obvious;
 * then a round trip per format: write, bind with quant/formats.c's
 * reader over the tensors written, dequantize, and compare with the
 * dequant formula computed here. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "quant/formats.h"
#include "quant/qconfig.h"
#include "quant/quantize.h"
#include "st/st.h"

/* ---- helpers ---------------------------------------------------------------- */

static const struct hf_qtensor *find(const struct hf_qlinear *q,
				     const char *sfx)
{
	for (size_t i = 0; i < q->n; i++)
		if (!strcmp(q->t[i].suffix, sfx))
			return &q->t[i];
	fail_msg("no tensor '%s'", sfx);
	return NULL;
}

static void check_meta(const struct hf_qtensor *t, enum hf_dtype dt,
		       int ndim, int64_t d0, int64_t d1)
{
	assert_int_equal(t->dtype, dt);
	assert_int_equal(t->ndim, ndim);
	if (ndim >= 1)
		assert_int_equal(t->shape[0], d0);
	if (ndim >= 2)
		assert_int_equal(t->shape[1], d1);
}

static void check_bytes(const struct hf_qtensor *t, const void *want,
			size_t n)
{
	const uint8_t *g = t->data, *w = want;

	assert_int_equal(t->nbytes, n);
	for (size_t i = 0; i < n; i++)
		if (g[i] != w[i])
			fail_msg("'%s' byte %zu: got 0x%02x, want 0x%02x",
				 t->suffix, i, g[i], w[i]);
}

static void check_u32(const struct hf_qtensor *t, const uint32_t *want,
		      size_t n)
{
	const uint32_t *g = t->data;

	assert_int_equal(t->nbytes, n * 4);
	for (size_t i = 0; i < n; i++)
		if (g[i] != want[i])
			fail_msg("'%s' word %zu: got 0x%08x, want 0x%08x",
				 t->suffix, i, g[i], want[i]);
}

static void check_f32(const struct hf_qtensor *t, const float *want,
		      size_t n)
{
	const float *g = t->data;

	assert_int_equal(t->nbytes, n * 4);
	for (size_t i = 0; i < n; i++)
		if (g[i] != want[i])
			fail_msg("'%s'[%zu]: got %.9g, want %.9g", t->suffix, i,
				 (double)g[i], (double)want[i]);
}

/* The reader's view of q: tensors named "m.<suffix>". */
struct fake {
	struct hf_tensor t[HF_QT_MAX];
	char names[HF_QT_MAX][80];
	size_t n;
};

static void fake_init(struct fake *f, const struct hf_qlinear *q)
{
	memset(f, 0, sizeof(*f));
	for (size_t i = 0; i < q->n; i++) {
		snprintf(f->names[i], sizeof(f->names[i]), "m.%s",
			 q->t[i].suffix);
		f->t[i].name = f->names[i];
		f->t[i].dtype = q->t[i].dtype;
		f->t[i].ndim = q->t[i].ndim;
		f->t[i].shape[0] = q->t[i].shape[0];
		f->t[i].shape[1] = q->t[i].shape[1];
		f->t[i].data = q->t[i].data;
		f->t[i].nbytes = q->t[i].nbytes;
	}
	f->n = q->n;
}

static const struct hf_tensor *fake_get(void *ctx, const char *name)
{
	struct fake *f = ctx;

	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->t[i].name, name))
			return &f->t[i];
	return NULL;
}

typedef int (*bind_fn)(struct hf_weight *, const struct hf_tensor **,
		       hf_wfmt_get_fn, void *, const struct hf_qcfg *,
		       const char *, size_t, size_t, struct hf_err *);
typedef void (*dequant_fn)(float *, const struct hf_weight *, size_t, size_t,
			   size_t, size_t);

/* Bind q with the reader and dequantize it all into out (rows, cols). */
static void read_back(float *out, const struct hf_qlinear *q, bind_fn bind,
		      dequant_fn dq, const struct hf_qcfg *qc, size_t rows,
		      size_t cols)
{
	struct fake f;
	struct hf_weight w;
	const struct hf_tensor *tn[HF_WEIGHT_NT] = { 0 };
	struct hf_err err = { 0 };

	fake_init(&f, q);
	if (bind(&w, tn, fake_get, &f, qc, "m", rows, cols, &err))
		fail_msg("bind: %s", err.msg);
	dq(out, &w, 0, rows, 0, cols);
}

static void check_close(const float *got, const float *want, size_t n,
			float tol, const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (!(fabsf(got[i] - want[i]) <= tol))
			fail_msg("%s [%zu]: got %.9g, want %.9g", what, i,
				 (double)got[i], (double)want[i]);
}

static uint32_t rng = 2024;

static float unit(void)
{
	rng = rng * 1664525u + 1013904223u;
	return (float)(rng >> 8) / 8388608.0f - 1.0f;
}

static float *random_w(size_t n, float amp)
{
	float *w = malloc(n * sizeof(float));

	for (size_t i = 0; i < n; i++)
		w[i] = amp * unit();
	return w;
}

/* ---- LLM.int8 --------------------------------------------------------------- */

static void test_int8_rows_and_scb(void **state)
{
	/* row 0: absmax 127, so q = round(W) with ties to even; row 1 is
	 * zero: SCB 0, q 0 */
	const float W[8] = { 127.0f, -63.5f, 0.5f, 1.5f, 0, 0, 0, 0 };
	const int8_t q_want[8] = { 127, -64, 0, 2, 0, 0, 0, 0 };
	const float scb_want[2] = { 127.0f, 0.0f };
	const uint8_t fmt_want = 0;
	struct hf_qlinear q;
	struct hf_err err = { 0 };

	(void)state;
	assert_int_equal(hf_quant_int8(&q, W, 2, 4, &err), 0);
	assert_int_equal(q.n, 3);
	assert_string_equal(q.t[0].suffix, "weight");
	check_meta(find(&q, "weight"), HF_DTYPE_I8, 2, 2, 4);
	check_bytes(find(&q, "weight"), q_want, 8);
	check_meta(find(&q, "SCB"), HF_DTYPE_F32, 1, 2, 0);
	check_f32(find(&q, "SCB"), scb_want, 2);
	check_meta(find(&q, "weight_format"), HF_DTYPE_U8, 0, 0, 0);
	check_bytes(find(&q, "weight_format"), &fmt_want, 1);
	hf_qlinear_free(&q);
	hf_qlinear_free(&q);	/* twice, and NULL, are fine */
	hf_qlinear_free(NULL);
}

static void test_int8_round_trip(void **state)
{
	const size_t rows = 5, cols = 7;
	float *W = random_w(rows * cols, 2.0f), got[35], want[35];
	struct hf_qcfg qc = { .method = HF_QM_BNB,
			      .quant_method = "bitsandbytes",
			      .load_in_8bit = 1 };
	struct hf_qlinear q;
	struct hf_err err = { 0 };

	(void)state;
	assert_int_equal(hf_quant_int8(&q, W, rows, cols, &err), 0);
	read_back(got, &q, hf_int8_bind, hf_int8_dequant, &qc, rows, cols);
	for (size_t r = 0; r < rows; r++) {
		const int8_t *qw = find(&q, "weight")->data;
		const float *scb = find(&q, "SCB")->data;

		for (size_t c = 0; c < cols; c++)
			want[r * cols + c] = (float)qw[r * cols + c] *
					     (scb[r] / 127.0f);
	}
	check_close(got, want, rows * cols, 0.0f, "int8 dequant");
	/* within half a step of W */
	for (size_t r = 0; r < rows; r++)
		check_close(got + r * cols, W + r * cols, cols,
			    ((const float *)find(&q, "SCB")->data)[r] / 254.0f *
			    1.0001f, "int8 vs W");
	hf_qlinear_free(&q);
	free(W);
}

/* ---- bitsandbytes 4-bit ------------------------------------------------------- */

static void test_nf4_codes_and_nibbles(void **state)
{
	/* a partial block (8 < 64) of exact table values times 2 */
	const float *t = hf_nf4_table;
	const float W[8] = { 2 * t[0], 2 * t[15], 2 * t[7], 2 * t[8],
			     2 * t[6], 2 * t[14], 2 * t[1], 2 * t[12] };
	/* codes 0 15 7 8 6 14 1 12; element 2i in the high nibble */
	const uint8_t want[4] = { 0x0f, 0x78, 0x6e, 0x1c };
	const float absmax = 2.0f;
	const char *json = "{\"quant_type\": \"nf4\", \"blocksize\": 64, "
			   "\"dtype\": \"bfloat16\", \"shape\": [2, 4]}";
	struct hf_qlinear q;
	struct hf_err err = { 0 };

	(void)state;
	assert_int_equal(hf_quant_bnb4(&q, W, 2, 4, 0, 64, 0, "bfloat16",
				       &err), 0);
	assert_int_equal(q.n, 4);
	assert_string_equal(q.t[0].suffix, "weight");
	assert_string_equal(q.t[1].suffix, "weight.absmax");
	assert_string_equal(q.t[2].suffix, "weight.quant_map");
	assert_string_equal(q.t[3].suffix,
			    "weight.quant_state.bitsandbytes__nf4");
	check_meta(find(&q, "weight"), HF_DTYPE_U8, 2, 4, 1);
	check_bytes(find(&q, "weight"), want, 4);
	check_meta(find(&q, "weight.absmax"), HF_DTYPE_F32, 1, 1, 0);
	check_f32(find(&q, "weight.absmax"), &absmax, 1);
	check_meta(find(&q, "weight.quant_map"), HF_DTYPE_F32, 1, 16, 0);
	check_f32(find(&q, "weight.quant_map"), hf_nf4_table, 16);
	check_meta(find(&q, "weight.quant_state.bitsandbytes__nf4"),
		   HF_DTYPE_U8, 1, (int64_t)strlen(json), 0);
	check_bytes(find(&q, "weight.quant_state.bitsandbytes__nf4"), json,
		    strlen(json));
	hf_qlinear_free(&q);
}

static void test_nf4_full_blocks_ties_and_zero_block(void **state)
{
	/* blocksize 32, two full blocks. Block 0: absmax 1; element 1 sits
	 * exactly on the midpoint of codes 7 and 8 (bucketize puts it in
	 * the lower), element 2 just above it. Block 1 is all zero: its
	 * stored absmax is 0 (only the divisor is clamped), codes those of
	 * 0.0 (7). */
	float W[64] = { 0 };
	float mid = (hf_nf4_table[7] + hf_nf4_table[8]) / 2.0f;
	uint8_t want[32];
	const float absmax[2] = { 1.0f, 0.0f };
	struct hf_qlinear q;
	struct hf_err err = { 0 };

	(void)state;
	W[0] = 1.0f;
	W[1] = mid;
	W[2] = nextafterf(mid, 1.0f);
	W[3] = -1.0f;
	memset(want, 0x77, sizeof(want));
	want[0] = 0xf7;		/* 15, 7 */
	want[1] = 0x80;		/* 8, 0 */
	assert_int_equal(hf_quant_bnb4(&q, W, 1, 64, 0, 32, 0, "float32",
				       &err), 0);
	check_bytes(find(&q, "weight"), want, 32);
	check_f32(find(&q, "weight.absmax"), absmax, 2);
	hf_qlinear_free(&q);
}

static void test_nf4_odd_count_pads_with_code_of_zero(void **state)
{
	const float W[3] = { 1.0f, -1.0f, 0.0f };
	const uint8_t want[2] = { 0xf0, 0x77 };	/* pad: code of 0.0, 7 */
	struct hf_qlinear q;
	struct hf_err err = { 0 };

	(void)state;
	assert_int_equal(hf_quant_bnb4(&q, W, 1, 3, 0, 64, 0, "float16", &err),
			 0);
	check_meta(find(&q, "weight"), HF_DTYPE_U8, 2, 2, 1);
	check_bytes(find(&q, "weight"), want, 2);
	hf_qlinear_free(&q);
}

static void test_fp4_codes_in_bit_pattern_order(void **state)
{
	/* absmax 12, so W / 12 is a table value: 12 -> 3, -12 -> 11, 6 -> 5,
	 * -3 -> 15, 0.0625 -> 1, 2 -> 6, -8 -> 10, 4 -> 4 */
	const float W[8] = { 12, -12, 6, -3, 0.0625f, 2, -8, 4 };
	const uint8_t want[4] = { 0x3b, 0x5f, 0x16, 0xa4 };
	/* the zeros: +0 (code 0) and -0 (code 8) tie in the sorted table;
	 * argsort keeps 0 first, so (-0.0026, 0] -> 0, (0, 0.0026] -> 8 */
	const float Z[4] = { 12, 0.001f, -0.001f, 0 };
	const uint8_t zwant[2] = { 0x38, 0x00 };
	const char *json = "{\"quant_type\": \"fp4\", \"blocksize\": 64, "
			   "\"dtype\": \"float32\", \"shape\": [1, 8]}";
	struct hf_qlinear q;
	struct hf_err err = { 0 };

	(void)state;
	assert_int_equal(hf_quant_bnb4(&q, W, 1, 8, 1, 64, 0, "float32", &err),
			 0);
	check_bytes(find(&q, "weight"), want, 4);
	check_f32(find(&q, "weight.quant_map"), hf_fp4_table, 16);
	check_bytes(find(&q, "weight.quant_state.bitsandbytes__fp4"), json,
		    strlen(json));
	hf_qlinear_free(&q);
	assert_int_equal(hf_quant_bnb4(&q, Z, 1, 4, 1, 64, 0, "float32", &err),
			 0);
	check_bytes(find(&q, "weight"), zwant, 2);
	hf_qlinear_free(&q);
}

static void test_nf4_double_quant(void **state)
{
	/* blocks of 32: absmax 3 and 1, offset = mean = 2, absmax - offset
	 * = {1, -1}: one partial nested block, nested_absmax 1, codes 255
	 * (the map's 1.0) and 0 (its most negative value) */
	float W[64] = { 0 };
	uint8_t want[32];
	const uint8_t aq_want[2] = { 255, 0 };
	const float nabs_want = 1.0f;
	const char *json = "{\"quant_type\": \"nf4\", \"blocksize\": 32, "
			   "\"dtype\": \"bfloat16\", \"shape\": [2, 32], "
			   "\"nested_blocksize\": 256, \"nested_dtype\": "
			   "\"float32\", \"nested_offset\": 2.0}";
	const float *nmap;
	struct hf_qlinear q;
	struct hf_err err = { 0 };

	(void)state;
	W[0] = 3.0f;
	W[32] = 1.0f;
	memset(want, 0x77, sizeof(want));
	want[0] = 0xf7;
	want[16] = 0xf7;
	assert_int_equal(hf_quant_bnb4(&q, W, 2, 32, 0, 32, 1, "bfloat16",
				       &err), 0);
	assert_int_equal(q.n, 6);
	assert_string_equal(q.t[1].suffix, "weight.absmax");
	assert_string_equal(q.t[2].suffix, "weight.quant_map");
	assert_string_equal(q.t[3].suffix, "weight.nested_absmax");
	assert_string_equal(q.t[4].suffix, "weight.nested_quant_map");
	check_bytes(find(&q, "weight"), want, 32);
	check_meta(find(&q, "weight.absmax"), HF_DTYPE_U8, 1, 2, 0);
	check_bytes(find(&q, "weight.absmax"), aq_want, 2);
	check_meta(find(&q, "weight.nested_absmax"), HF_DTYPE_F32, 1, 1, 0);
	check_f32(find(&q, "weight.nested_absmax"), &nabs_want, 1);
	check_meta(find(&q, "weight.nested_quant_map"), HF_DTYPE_F32, 1, 256,
		   0);
	check_bytes(find(&q, "weight.quant_state.bitsandbytes__nf4"), json,
		    strlen(json));
	/* create_dynamic_map(signed=True): 127 negatives, 0, 127
	 * positives, 1.0. The smallest positive is 1e-6 * mean(0.1, 1), the
	 * largest below 1 the last midpoint of linspace(0.1, 1, 65), whose
	 * last bit depends on torch's kernel: 1e-7 */
	nmap = find(&q, "weight.nested_quant_map")->data;
	for (int i = 1; i < 256; i++)
		assert_true(nmap[i - 1] < nmap[i]);
	assert_true(nmap[127] == 0.0f);
	assert_true(nmap[255] == 1.0f);
	assert_true(nmap[128] == 1e-6f * ((0.1f + 1.0f) / 2.0f));
	assert_true(nmap[126] == -nmap[128]);
	assert_true(fabsf(nmap[254] - (1.0f - 0.9f / 128)) < 1e-7f);
	assert_true(fabsf(nmap[0] + (1.0f - 0.9f / 128)) < 1e-7f);
	hf_qlinear_free(&q);
}

static void test_nested_offset_prints_as_python_repr(void **state)
{
	/* absmax 0.1f and 0.2f: the f32 mean printed as repr(float):
	 * shortest digits of the double, here 0.15000000596046448 */
	float W[64] = { 0 };
	char want[64];
	const struct hf_qtensor *t;
	float off = (float)(((double)0.1f + (double)0.2f) / 2);
	struct hf_qlinear q;
	struct hf_err err = { 0 };

	(void)state;
	W[0] = 0.1f;
	W[32] = 0.2f;
	assert_true(off == 0.15000000596046448);
	assert_int_equal(hf_quant_bnb4(&q, W, 1, 64, 0, 32, 1, "float32",
				       &err), 0);
	t = find(&q, "weight.quant_state.bitsandbytes__nf4");
	snprintf(want, sizeof(want), "\"nested_offset\": %s}",
		 "0.15000000596046448");
	assert_true(t->nbytes > strlen(want));
	assert_memory_equal((const char *)t->data + t->nbytes - strlen(want),
			    want, strlen(want));
	hf_qlinear_free(&q);

	/* 1e-5 and 3e-5 (f32): mean 2e-5, repr switches to exponent form
	 * below 1e-4: 1.9999999494757503e-05 */
	memset(W, 0, sizeof(W));
	W[0] = 1e-5f;
	W[32] = 3e-5f;
	assert_int_equal(hf_quant_bnb4(&q, W, 1, 64, 0, 32, 1, "float32",
				       &err), 0);
	t = find(&q, "weight.quant_state.bitsandbytes__nf4");
	off = (float)(((double)1e-5f + (double)3e-5f) / 2);
	snprintf(want, sizeof(want), "%.17g", (double)off);
	assert_string_equal(want, "1.9999999494757503e-05");
	snprintf(want, sizeof(want), "\"nested_offset\": "
		 "1.9999999494757503e-05}");
	assert_memory_equal((const char *)t->data + t->nbytes - strlen(want),
			    want, strlen(want));
	hf_qlinear_free(&q);
}

static void bnb4_round_trip(int fp4, int dq, size_t rows, size_t cols,
			    size_t bs)
{
	const size_t n = rows * cols;
	float *W = random_w(n, 0.3f), *got = malloc(n * 4),
	      *want = malloc(n * 4);
	struct hf_qcfg qc = { .method = HF_QM_BNB,
			      .quant_method = "bitsandbytes",
			      .load_in_4bit = 1,
			      .bnb_4bit_quant_type = fp4 ? "fp4" : "nf4",
			      .bnb_4bit_use_double_quant = dq };
	struct hf_qlinear q;
	struct hf_err err = { 0 };
	struct hf_bnb_qstate qs;
	const struct hf_qtensor *st;
	const uint8_t *codes;
	const float *qmap;

	W[5] = 0.0f;
	assert_int_equal(hf_quant_bnb4(&q, W, rows, cols, fp4, bs, dq,
				       "bfloat16", &err), 0);
	st = find(&q, fp4 ? "weight.quant_state.bitsandbytes__fp4" :
			    "weight.quant_state.bitsandbytes__nf4");
	assert_int_equal(hf_bnb_qstate_parse(&qs, st->data, st->nbytes, "qs",
					     &err), 0);
	assert_int_equal(qs.nested, dq);
	read_back(got, &q, dq ? hf_bnb4dq_bind : hf_bnb4_bind,
		  dq ? hf_bnb4dq_dequant : hf_bnb4_dequant, &qc, rows, cols);
	codes = find(&q, "weight")->data;
	qmap = find(&q, "weight.quant_map")->data;
	for (size_t i = 0; i < n; i++) {
		unsigned c = i & 1 ? codes[i / 2] & 15 : codes[i / 2] >> 4;
		size_t b = i / bs;
		float am;

		if (dq) {
			const uint8_t *aq = find(&q, "weight.absmax")->data;
			const float *na =
				find(&q, "weight.nested_absmax")->data;
			const float *nm =
				find(&q, "weight.nested_quant_map")->data;

			am = nm[aq[b]] * na[b / 256] + (float)qs.nested_offset;
		} else {
			am = ((const float *)find(&q, "weight.absmax")->data)[b];
		}
		want[i] = qmap[c] * am;
	}
	check_close(got, want, n, 0.0f, "bnb4 dequant");
	/* and near W: the widest gap of either table is 1/3 of absmax
	 * (0.3 at most); the nested absmax is good to ~1% */
	check_close(got, W, n, 0.3f * (1.0f / 6 + 0.02f), "bnb4 vs W");
	hf_qlinear_free(&q);
	free(W);
	free(got);
	free(want);
}

static void test_bnb4_round_trip(void **state)
{
	(void)state;
	bnb4_round_trip(0, 0, 6, 40, 64);	/* a partial last block */
	bnb4_round_trip(1, 0, 6, 40, 32);
	bnb4_round_trip(0, 1, 40, 520, 64);	/* 325 blocks: 2 nested */
	bnb4_round_trip(1, 1, 3, 5, 32);	/* odd count */
}

static void test_bnb4_rejects_bad_arguments(void **state)
{
	const float W[4] = { 1, 2, 3, 4 };
	struct hf_qlinear q;
	struct hf_err err = { 0 };

	(void)state;
	assert_int_equal(hf_quant_bnb4(&q, W, 2, 2, 0, 48, 0, "float32", &err),
			 HF_EINVAL);
	assert_non_null(strstr(err.msg, "48"));
	assert_int_equal(hf_quant_bnb4(&q, W, 2, 2, 0, 64, 0, "int8", &err),
			 HF_EINVAL);
	assert_non_null(strstr(err.msg, "'int8'"));
	assert_int_equal(q.n, 0);
}

/* ---- GPTQ ----------------------------------------------------------------------- */

static void gptq_pack_case(unsigned bits, size_t rows, size_t cols, size_t G,
			   const uint8_t *qv, const uint8_t *zeros,
			   const int32_t *g_idx, int v2,
			   const uint32_t *qw_want, const uint32_t *qz_want)
{
	float *scales = malloc(G * rows * sizeof(float));
	const uint16_t half = 0x3800;	/* 0.5 */
	struct hf_qlinear q;
	struct hf_err err = { 0 };
	const uint16_t *sc;

	for (size_t i = 0; i < G * rows; i++)
		scales[i] = 0.5f;
	if (hf_gptq_pack(&q, qv, scales, zeros, g_idx, rows, cols, G, bits, v2,
			 &err))
		fail_msg("pack: %s", err.msg);
	assert_int_equal(q.n, 4);
	assert_string_equal(q.t[0].suffix, "qweight");
	assert_string_equal(q.t[1].suffix, "qzeros");
	assert_string_equal(q.t[2].suffix, "scales");
	assert_string_equal(q.t[3].suffix, "g_idx");
	check_meta(find(&q, "qweight"), HF_DTYPE_I32, 2,
		   (int64_t)(cols * bits / 32), (int64_t)rows);
	check_u32(find(&q, "qweight"), qw_want, cols * bits / 32 * rows);
	check_meta(find(&q, "qzeros"), HF_DTYPE_I32, 2, (int64_t)G,
		   (int64_t)(rows * bits / 32));
	check_u32(find(&q, "qzeros"), qz_want, G * rows * bits / 32);
	check_meta(find(&q, "scales"), HF_DTYPE_F16, 2, (int64_t)G,
		   (int64_t)rows);
	sc = find(&q, "scales")->data;
	for (size_t i = 0; i < G * rows; i++)
		assert_int_equal(sc[i], half);
	check_meta(find(&q, "g_idx"), HF_DTYPE_I32, 1, (int64_t)cols, 0);
	check_bytes(find(&q, "g_idx"), g_idx, cols * 4);
	hf_qlinear_free(&q);
	free(scales);
}

static void test_gptq_pack_4bit(void **state)
{
	/* q(o, c) = c: every column of qweight is 0x76543210 (input j at
	 * bits 4j); sym zeros 8: v1 stores 7 -> 0x77777777, v2 8s */
	uint8_t qv[64], z[8];
	int32_t gi[8] = { 0 };
	uint32_t qw[8], z1 = 0x77777777, z2 = 0x88888888;

	(void)state;
	for (int i = 0; i < 64; i++)
		qv[i] = (uint8_t)(i % 8);
	for (int i = 0; i < 8; i++) {
		z[i] = 8;
		qw[i] = 0x76543210;
	}
	gptq_pack_case(4, 8, 8, 1, qv, z, gi, 0, qw, &z1);
	gptq_pack_case(4, 8, 8, 1, qv, z, gi, 1, qw, &z2);
	/* v1, a true zero of 0 at output 2: zero - 1 is all ones as uint32
	 * and, shifted to field 2, sets every field above it too
	 * (AutoGPTQ's pack) */
	z[2] = 0;
	z1 = 0xffffff77;
	gptq_pack_case(4, 8, 8, 1, qv, z, gi, 0, qw, &z1);
	z2 = 0x88888088;
	gptq_pack_case(4, 8, 8, 1, qv, z, gi, 1, qw, &z2);
}

static void test_gptq_pack_2bit(void **state)
{
	/* q(o, c) = c % 4: fields 0 1 2 3 ... -> 0xe4e4e4e4; zeros 2: v1
	 * stores 1 (0x55555555), v2 2 (0xaaaaaaaa) */
	uint8_t qv[256], z[16];
	int32_t gi[16] = { 0 };
	uint32_t qw[16], z1 = 0x55555555, z2 = 0xaaaaaaaa;

	(void)state;
	for (int i = 0; i < 256; i++)
		qv[i] = (uint8_t)(i % 4);
	for (int i = 0; i < 16; i++) {
		z[i] = 2;
		qw[i] = 0xe4e4e4e4;
	}
	gptq_pack_case(2, 16, 16, 1, qv, z, gi, 0, qw, &z1);
	gptq_pack_case(2, 16, 16, 1, qv, z, gi, 1, qw, &z2);
}

static void test_gptq_pack_8bit_groups(void **state)
{
	/* q(o, c) = 0x10 c + o: column o of qweight is 0x3020100o; two
	 * groups (g_idx 0 0 1 1). Group 0 zeros 1 2 3 4 (v1: 0 1 2 3);
	 * group 1 zeros 0 5 6 7: v1 has 0 - 1 = all ones at field 0 */
	uint8_t qv[16];
	const uint8_t z[8] = { 1, 2, 3, 4, 0, 5, 6, 7 };
	const int32_t gi[4] = { 0, 0, 1, 1 };
	const uint32_t qw[4] = { 0x30201000, 0x31211101, 0x32221202,
				 0x33231303 };
	const uint32_t z1[2] = { 0x03020100, 0xffffffff };
	const uint32_t z2[2] = { 0x04030201, 0x07060500 };

	(void)state;
	for (int o = 0; o < 4; o++)
		for (int c = 0; c < 4; c++)
			qv[o * 4 + c] = (uint8_t)(0x10 * c + o);
	gptq_pack_case(8, 4, 4, 2, qv, z, gi, 0, qw, z1);
	gptq_pack_case(8, 4, 4, 2, qv, z, gi, 1, qw, z2);
}

static void test_gptq_pack_3bit(void **state)
{
	/* 32 fields per 3 words as one 96-bit little-endian number: with
	 * q(o, c) = c % 8 that is octal 76543210 four times, 0xfac688 per
	 * 24 bits; zeros 4: v1 stores 3 (all fields 3), v2 4 */
	uint8_t qv[32 * 32], z[32];
	int32_t gi[32] = { 0 };
	uint32_t qw[3 * 32];
	const uint32_t col[3] = { 0x88fac688, 0xc688fac6, 0xfac688fa };
	const uint32_t z1[3] = { 0xdb6db6db, 0xb6db6db6, 0x6db6db6d };
	const uint32_t z2[3] = { 0x24924924, 0x49249249, 0x92492492 };

	(void)state;
	for (int i = 0; i < 32 * 32; i++)
		qv[i] = (uint8_t)(i % 8);
	for (int o = 0; o < 32; o++) {
		z[o] = 4;
		for (int r = 0; r < 3; r++)
			qw[r * 32 + o] = col[r];
	}
	gptq_pack_case(3, 32, 32, 1, qv, z, gi, 0, qw, z1);
	gptq_pack_case(3, 32, 32, 1, qv, z, gi, 1, qw, z2);
}

static void test_gptq_scale_zero(void **state)
{
	/* quantizer.py, 4-bit */
	const float a[4] = { -1.0f, 0.5f, 2.0f, 0.0f };
	const float pos[2] = { 1.0f, 3.0f };
	const float zero[3] = { 0, 0, 0 };
	float s;
	uint8_t z;

	(void)state;
	/* asym: [min(x, 0), max(x, 0)] = [-1, 2]: scale 3/15, zero
	 * round(1 / 0.2) = 5 */
	hf_gptq_scale_zero(a, 4, 1, 4, 0, &s, &z);
	assert_true(s == 3.0f / 15.0f);
	assert_int_equal(z, 5);
	/* sym: max 2, min -2: scale 4/15, zero (15 + 1) / 2 = 8 */
	hf_gptq_scale_zero(a, 4, 1, 4, 1, &s, &z);
	assert_true(s == 4.0f / 15.0f);
	assert_int_equal(z, 8);
	/* sym, nothing negative: xmin stays 0, scale 3/15 */
	hf_gptq_scale_zero(pos, 2, 1, 4, 1, &s, &z);
	assert_true(s == 3.0f / 15.0f);
	assert_int_equal(z, 8);
	/* asym all positive: zero 0 */
	hf_gptq_scale_zero(pos, 2, 1, 4, 0, &s, &z);
	assert_int_equal(z, 0);
	/* all zero: range [-1, 1] */
	hf_gptq_scale_zero(zero, 3, 1, 4, 0, &s, &z);
	assert_true(s == 2.0f / 15.0f);
	/* 1 / f32(2 / 15) is 7.4999995 in f32, not 7.5: zero 7 */
	assert_int_equal(z, 7);
	/* stride: every other element of a: -1 and 2 */
	hf_gptq_scale_zero(a, 2, 2, 8, 0, &s, &z);
	assert_true(s == 3.0f / 255.0f);
	/* q: round half to even, clamp */
	assert_int_equal(hf_gptq_q(0.25f, 0.5f, 8, 4), 8);	/* 0.5 -> 0 */
	assert_int_equal(hf_gptq_q(0.75f, 0.5f, 8, 4), 10);	/* 1.5 -> 2 */
	assert_int_equal(hf_gptq_q(-10.0f, 0.5f, 8, 4), 0);
	assert_int_equal(hf_gptq_q(10.0f, 0.5f, 8, 4), 15);
}

static void test_rtn_bytes(void **state)
{
	/* 4-bit asym, one group: every row is -7 -5 -3 -1 1 3 5 8, range
	 * [-7, 8], scale 15 / 15 = 1, zero round(7 / 1) = 7, q = w + 7 =
	 * 0 2 4 6 8 10 12 15; v1 stores zero 6 */
	const float row[8] = { -7, -5, -3, -1, 1, 3, 5, 8 };
	float W[64];
	uint32_t qw[8];
	const uint32_t z1 = 0x66666666;
	const int32_t gi[8] = { 0 };
	struct hf_qlinear q;
	struct hf_err err = { 0 };
	const uint16_t *sc;

	(void)state;
	for (int o = 0; o < 8; o++) {
		memcpy(W + o * 8, row, sizeof(row));
		qw[o] = 0xfca86420;
	}
	assert_int_equal(hf_quant_rtn(&q, W, 8, 8, 4, -1, 0, 0, &err), 0);
	check_u32(find(&q, "qweight"), qw, 8);
	check_u32(find(&q, "qzeros"), &z1, 1);
	sc = find(&q, "scales")->data;
	for (int o = 0; o < 8; o++)
		assert_int_equal(sc[o], 0x3c00);
	check_bytes(find(&q, "g_idx"), gi, sizeof(gi));
	hf_qlinear_free(&q);
}

static void gptq_round_trip(unsigned bits, long gs, int sym, int v2,
			    size_t rows, size_t cols)
{
	const size_t n = rows * cols;
	float *W = random_w(n, 1.0f), *got = malloc(n * 4),
	      *want = malloc(n * 4);
	struct hf_qcfg qc = { .method = HF_QM_GPTQ, .quant_method = "gptq",
			      .bits = (int)bits, .group_size = gs, .sym = sym,
			      .gptq_v2 = v2 };
	size_t g_sz = gs < 0 ? cols : (size_t)gs;
	struct hf_qlinear q;
	struct hf_err err = { 0 };
	const uint16_t *sc;

	if (hf_quant_rtn(&q, W, rows, cols, bits, gs, sym, v2, &err))
		fail_msg("rtn: %s", err.msg);
	read_back(got, &q, hf_gptq_bind, hf_gptq_dequant, &qc, rows, cols);
	sc = find(&q, "scales")->data;
	/* the formula: s * (q - z) with this test's own unpacking of the
	 * true q and z from W (quantizer.py) */
	for (size_t o = 0; o < rows; o++)
		for (size_t c = 0; c < cols; c++) {
			size_t g = c / g_sz, c0 = g * g_sz;
			size_t len = cols - c0 < g_sz ? cols - c0 : g_sz;
			float s;
			uint8_t z, qq;

			hf_gptq_scale_zero(W + o * cols + c0, len, 1, bits, sym,
					   &s, &z);
			qq = hf_gptq_q(W[o * cols + c], s, z, bits);
			want[o * cols + c] = hf_f16_to_f32(sc[g * rows + o]) *
					     ((float)qq - (float)z);
			assert_true(fabsf(want[o * cols + c] - W[o * cols + c])
				    <= s * 0.5f * 1.01f + 1e-3f);
		}
	check_close(got, want, n, 0.0f, "gptq dequant");
	hf_qlinear_free(&q);
	free(W);
	free(got);
	free(want);
}

static void test_gptq_round_trip(void **state)
{
	(void)state;
	/* random weights in (-1, 1) include negatives in every group, so
	 * no asym zero is 0 and v1 is lossless */
	gptq_round_trip(4, 16, 1, 0, 16, 64);
	gptq_round_trip(4, 16, 0, 0, 16, 64);
	gptq_round_trip(4, -1, 0, 1, 8, 40);
	gptq_round_trip(2, 32, 0, 0, 16, 64);
	gptq_round_trip(3, 32, 1, 0, 32, 64);
	gptq_round_trip(3, 32, 0, 1, 32, 64);
	gptq_round_trip(8, 8, 0, 0, 4, 24);
}

static void test_gptq_rejects_bad_arguments(void **state)
{
	const float W[64] = { 0 };
	struct hf_qlinear q;
	struct hf_err err = { 0 };

	(void)state;
	assert_int_equal(hf_quant_rtn(&q, W, 8, 8, 5, -1, 1, 0, &err),
			 HF_EINVAL);
	assert_non_null(strstr(err.msg, "5 bits"));
	assert_int_equal(hf_quant_rtn(&q, W, 8, 8, 3, -1, 1, 0, &err),
			 HF_EINVAL);
	assert_non_null(strstr(err.msg, "32-bit words"));
}

/* ---- AWQ -------------------------------------------------------------------------- */

static void test_awq_interleaved_nibbles(void **state)
{
	/* row o: zero o, scale 1: w = q - o with q(o, c) = c for c < 7
	 * except q(o, 1) = 8 + o, and q(o, 7) = 15 (so min -o, max 15 - o,
	 * scale 15 / 15). Nibble k of a word holds output order[k] =
	 * 0 2 4 6 1 3 5 7. */
	float W[64];
	uint32_t qw[8];
	const uint32_t qz = 0x75316420;
	const uint16_t one = 0x3c00;
	struct hf_qlinear q;
	struct hf_err err = { 0 };
	const uint16_t *sc;

	(void)state;
	for (int o = 0; o < 8; o++)
		for (int c = 0; c < 8; c++) {
			int qq = c == 1 ? 8 + o : c == 7 ? 15 : c;

			W[o * 8 + c] = (float)(qq - o);
		}
	for (int c = 0; c < 8; c++)
		qw[c] = c == 7 ? 0xffffffff : 0x11111111u * (uint32_t)c;
	qw[1] = 0xfdb9eca8;	/* 8 + order[k] */
	assert_int_equal(hf_quant_awq(&q, W, 8, 8, 8, &err), 0);
	assert_int_equal(q.n, 3);
	assert_string_equal(q.t[0].suffix, "qweight");
	assert_string_equal(q.t[1].suffix, "qzeros");
	assert_string_equal(q.t[2].suffix, "scales");
	check_meta(find(&q, "qweight"), HF_DTYPE_I32, 2, 8, 1);
	check_u32(find(&q, "qweight"), qw, 8);
	check_meta(find(&q, "qzeros"), HF_DTYPE_I32, 2, 1, 1);
	check_u32(find(&q, "qzeros"), &qz, 1);
	check_meta(find(&q, "scales"), HF_DTYPE_F16, 2, 1, 8);
	sc = find(&q, "scales")->data;
	for (int o = 0; o < 8; o++)
		assert_int_equal(sc[o], one);
	hf_qlinear_free(&q);
}

static void test_awq_round_trip(void **state)
{
	const size_t rows = 16, cols = 64, gs = 32, n = rows * cols;
	float *W = random_w(n, 1.0f), *got = malloc(n * 4),
	      *want = malloc(n * 4);
	struct hf_qcfg qc = { .method = HF_QM_AWQ, .quant_method = "awq",
			      .bits = 4, .group_size = (int64_t)gs,
			      .zero_point = 1, .awq_version = "gemm" };
	struct hf_qlinear q;
	struct hf_err err = { 0 };
	const uint16_t *sc;

	(void)state;
	assert_int_equal(hf_quant_awq(&q, W, rows, cols, gs, &err), 0);
	read_back(got, &q, hf_awq_bind, hf_awq_dequant, &qc, rows, cols);
	sc = find(&q, "scales")->data;
	/* pseudo_quantize_tensor: s = (max - min) / 15, z = -round(min /
	 * s), q = clamp(round(w / s) + z); W = fp16(s) * (q - z) */
	for (size_t o = 0; o < rows; o++)
		for (size_t g = 0; g < cols / gs; g++) {
			const float *w = W + o * cols + g * gs;
			float mx = w[0], mn = w[0], s, z;

			for (size_t c = 1; c < gs; c++) {
				mx = fmaxf(mx, w[c]);
				mn = fminf(mn, w[c]);
			}
			s = (mx - mn) / 15.0f;
			z = fminf(fmaxf(-rintf(mn / s), 0.0f), 15.0f);
			for (size_t c = 0; c < gs; c++) {
				float qq = fminf(fmaxf(rintf(w[c] / s) + z, 0),
						 15);

				want[o * cols + g * gs + c] =
					hf_f16_to_f32(sc[g * rows + o]) *
					(qq - z);
			}
		}
	check_close(got, want, n, 0.0f, "awq dequant");
	check_close(got, W, n, 2.0f / 15 * 0.51f, "awq vs W");
	hf_qlinear_free(&q);
	free(W);
	free(got);
	free(want);
}

/* ---- BitNet --------------------------------------------------------------------- */

static void test_bitnet_row_block_packing(void **state)
{
	/* 8 x 1, mean |W| = 6 / 8 = 0.75, q = W: R = 2, packed row 0 holds
	 * rows 0 2 4 6 and row 1 rows 1 3 5 7, as q + 1 at bits 0, 2, 4, 6 */
	const float W[8] = { 1, -1, 0, 1, -1, 0, 1, 1 };
	const uint8_t want[2] = { 2 | 1 << 2 | 0 << 4 | 2 << 6,
				  0 | 2 << 2 | 1 << 4 | 2 << 6 };
	const float mean = 0.75f, inv = 1.0f / 0.75f;
	const uint16_t bf = 0x3f40;	/* 0.75 */
	struct hf_qlinear q;
	struct hf_err err = { 0 };

	(void)state;
	assert_int_equal(hf_quant_bitnet(&q, W, 8, 1, 1, HF_DTYPE_F32, &err), 0);
	assert_int_equal(q.n, 2);
	check_meta(find(&q, "weight"), HF_DTYPE_U8, 2, 2, 1);
	check_bytes(find(&q, "weight"), want, 2);
	check_meta(find(&q, "weight_scale"), HF_DTYPE_F32, 1, 1, 0);
	check_f32(find(&q, "weight_scale"), &mean, 1);
	hf_qlinear_free(&q);
	/* "bitlinear": weight_scale is 1 / mean */
	assert_int_equal(hf_quant_bitnet(&q, W, 8, 1, 0, HF_DTYPE_F32, &err), 0);
	check_f32(find(&q, "weight_scale"), &inv, 1);
	hf_qlinear_free(&q);
	assert_int_equal(hf_quant_bitnet(&q, W, 8, 1, 1, HF_DTYPE_BF16, &err),
			 0);
	check_meta(find(&q, "weight_scale"), HF_DTYPE_BF16, 1, 1, 0);
	check_bytes(find(&q, "weight_scale"), &bf, 2);
	hf_qlinear_free(&q);
	assert_int_equal(hf_quant_bitnet(&q, W, 6, 1, 1, HF_DTYPE_F32, &err),
			 HF_EINVAL);
	assert_non_null(strstr(err.msg, "(6)"));
}

static void test_bitnet_4x2(void **state)
{
	/* 4 x 2, mean |W| = 8 / 8 = 1: q = clamp(round(W)), the 2 clamps
	 * to 1; R = 1, rows 0..3 at bits 0, 2, 4, 6 of the one row */
	const float W[8] = { 1, -1, 0, 2, -1, 1, 1, 1 };
	const uint8_t want[2] = { 2 | 1 << 2 | 0 << 4 | 2 << 6,
				  0 | 2 << 2 | 2 << 4 | 2 << 6 };
	struct hf_qlinear q;
	struct hf_err err = { 0 };

	(void)state;
	assert_int_equal(hf_quant_bitnet(&q, W, 4, 2, 1, HF_DTYPE_F16, &err), 0);
	check_bytes(find(&q, "weight"), want, 2);
	assert_int_equal(*(const uint16_t *)find(&q, "weight_scale")->data,
			 0x3c00);
	hf_qlinear_free(&q);
}

static void test_bitnet_round_trip(void **state)
{
	const size_t rows = 12, cols = 10, n = rows * cols;
	float *W = random_w(n, 0.5f), got[120], want[120];
	double sum = 0;
	float mean;

	(void)state;
	for (size_t i = 0; i < n; i++)
		sum += fabsf(W[i]);
	mean = (float)(sum / (double)n);
	for (int abl = 0; abl <= 1; abl++) {
		struct hf_qcfg qc = { .method = HF_QM_BITNET,
				      .quant_method = "bitnet",
				      .autobitlinear = abl };
		struct hf_qlinear q;
		struct hf_err err = { 0 };
		float s = 1.0f / mean, p0;

		assert_int_equal(hf_quant_bitnet(&q, W, rows, cols, abl,
						 HF_DTYPE_F32, &err), 0);
		read_back(got, &q, hf_bitnet_bind, hf_bitnet_dequant, &qc,
			  rows, cols);
		p0 = abl ? mean : 1.0f / s;
		for (size_t i = 0; i < n; i++)
			want[i] = fminf(fmaxf(rintf(W[i] * s), -1.0f), 1.0f) *
				  p0;
		check_close(got, want, n, 1e-7f, "bitnet dequant"); /* 1/(1/m) */
		hf_qlinear_free(&q);
	}
	free(W);
}

/* ---- FP8 ------------------------------------------------------------------------------ */

static void test_fp8_block_scales_and_codes(void **state)
{
	/* 2 x 4 in 1 x 2 blocks. (0,0) {448, 224}: scale 1, codes 0x7e
	 * (1.75 * 2^8) and 0x76 (1.75 * 2^7). (0,1) {1, -0.5}: scale 448,
	 * codes 0x7e and 0xf6. (1,0) zero: codes 0, scale_inv 0. (1,1) {2,
	 * 1.5}: scale 224; 336 = 1.3125 * 2^8 is a tie between mantissas
	 * 2 and 3 and goes to even: 0x7a (320). */
	const float W[8] = { 448, 224, 1, -0.5f, 0, 0, 2, 1.5f };
	const uint8_t want[8] = { 0x7e, 0x76, 0x7e, 0xf6, 0, 0, 0x7e, 0x7a };
	const float si[4] = { 1.0f / (448.0f / 448.0f), 1.0f / 448.0f, 0.0f,
			      1.0f / (448.0f / 2.0f) };
	/* subnormals (m * 2^-9) and their ties to even */
	const float S[4] = { 448, 7.0f / 512, 1.5f / 512, 0.5f / 512 };
	const uint8_t swant[4] = { 0x7e, 0x07, 0x02, 0x00 };
	struct hf_qlinear q;
	struct hf_err err = { 0 };

	(void)state;
	assert_int_equal(hf_quant_fp8(&q, W, 2, 4, 1, 2, &err), 0);
	assert_int_equal(q.n, 2);
	check_meta(find(&q, "weight"), HF_DTYPE_F8_E4M3, 2, 2, 4);
	check_bytes(find(&q, "weight"), want, 8);
	check_meta(find(&q, "weight_scale_inv"), HF_DTYPE_F32, 2, 2, 2);
	check_f32(find(&q, "weight_scale_inv"), si, 4);
	hf_qlinear_free(&q);
	assert_int_equal(hf_quant_fp8(&q, S, 1, 4, 1, 4, &err), 0);
	check_bytes(find(&q, "weight"), swant, 4);
	hf_qlinear_free(&q);
}

static void test_fp8_round_trip(void **state)
{
	const size_t rows = 20, cols = 36, n = rows * cols, br = 8, bc = 16;
	float *W = random_w(n, 3.0f), *got = malloc(n * 4),
	      *want = malloc(n * 4);
	struct hf_qcfg qc = { .method = HF_QM_FP8, .quant_method = "fp8",
			      .fp8_block = { (int64_t)br, (int64_t)bc } };
	struct hf_qlinear q;
	struct hf_err err = { 0 };
	const uint8_t *p;
	const float *si;

	(void)state;
	assert_int_equal(hf_quant_fp8(&q, W, rows, cols, br, bc, &err), 0);
	check_meta(find(&q, "weight_scale_inv"), HF_DTYPE_F32, 2, 3, 3);
	read_back(got, &q, hf_fp8_bind, hf_fp8_dequant, &qc, rows, cols);
	p = find(&q, "weight")->data;
	si = find(&q, "weight_scale_inv")->data;
	for (size_t r = 0; r < rows; r++)
		for (size_t c = 0; c < cols; c++)
			want[r * cols + c] = hf_f8e4m3_to_f32(p[r * cols + c]) *
					     si[(r / br) * 3 + c / bc];
	check_close(got, want, n, 0.0f, "fp8 dequant");
	/* 3 mantissa bits: within 1/16 relative, plus the subnormal step */
	for (size_t i = 0; i < n; i++)
		assert_true(fabsf(got[i] - W[i]) <=
			    fabsf(W[i]) / 16 + 3.0f / 448 / 512 * 2);
	hf_qlinear_free(&q);
	free(W);
	free(got);
	free(want);
}

static void test_rejects_non_finite_weights(void **state)
{
	float W[8] = { 0, 1, 2, 3, 4, 5, 6, 7 };
	struct hf_qlinear q;
	struct hf_err err = { 0 };

	(void)state;
	W[5] = NAN;
	assert_int_equal(hf_quant_int8(&q, W, 2, 4, &err), HF_EINVAL);
	assert_non_null(strstr(err.msg, "(1, 1)"));
	assert_int_equal(hf_quant_fp8(&q, W, 2, 4, 2, 2, &err), HF_EINVAL);
	assert_int_equal(q.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_int8_rows_and_scb),
		cmocka_unit_test(test_int8_round_trip),
		cmocka_unit_test(test_nf4_codes_and_nibbles),
		cmocka_unit_test(test_nf4_full_blocks_ties_and_zero_block),
		cmocka_unit_test(test_nf4_odd_count_pads_with_code_of_zero),
		cmocka_unit_test(test_fp4_codes_in_bit_pattern_order),
		cmocka_unit_test(test_nf4_double_quant),
		cmocka_unit_test(test_nested_offset_prints_as_python_repr),
		cmocka_unit_test(test_bnb4_round_trip),
		cmocka_unit_test(test_bnb4_rejects_bad_arguments),
		cmocka_unit_test(test_gptq_pack_4bit),
		cmocka_unit_test(test_gptq_pack_2bit),
		cmocka_unit_test(test_gptq_pack_8bit_groups),
		cmocka_unit_test(test_gptq_pack_3bit),
		cmocka_unit_test(test_gptq_scale_zero),
		cmocka_unit_test(test_rtn_bytes),
		cmocka_unit_test(test_gptq_round_trip),
		cmocka_unit_test(test_gptq_rejects_bad_arguments),
		cmocka_unit_test(test_awq_interleaved_nibbles),
		cmocka_unit_test(test_awq_round_trip),
		cmocka_unit_test(test_bitnet_row_block_packing),
		cmocka_unit_test(test_bitnet_4x2),
		cmocka_unit_test(test_bitnet_round_trip),
		cmocka_unit_test(test_fp8_block_scales_and_codes),
		cmocka_unit_test(test_fp8_round_trip),
		cmocka_unit_test(test_rejects_non_finite_weights),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
