/* test/unit/model/rope.c: RoPE inverse frequencies for each rope_scaling
 * type against the formulas of transformers' modeling_rope_utils.py
 * (5.x, and 4.56 on for yarn), written out here in double. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "model/internal.h"

/* A model with only what rope_init() reads. */
static struct hf_model *fake(const char *json, size_t hd, size_t max_pos,
			     int *rc)
{
	struct hf_err err = { 0 };
	struct hf_model *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	m->dir = strdup("test");
	m->hd = hd;
	m->max_pos = max_pos;
	assert_int_equal(hf_config_parse(&m->cfg, json, strlen(json), "test",
					 &err), 0);
	assert_int_equal(hf_backend_cpu_create(&m->be, 1, &err), 0);
	m->own_be = 1;
	*rc = rope_init(m, &err);
	if (*rc)
		printf("rope_init: %s\n", err.msg);
	return m;
}

static void inv_now(struct hf_model *m, float *f)
{
	struct hf_err err = { 0 };

	assert_int_equal(hf_buf_download(m->inv_freq, 0, f,
					 m->rot_dim / 2 * sizeof(float), &err), 0);
}

/* Relative 1e-6: float32 evaluation of the same formula. */
static void expect_rel(const float *got, const double *want, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fabs(got[i] - want[i]) > 1e-6 * fabs(want[i]))
			fail_msg("inv_freq[%zu]: got %.9g want %.9g", i, got[i],
				 want[i]);
}

#define BASE "\"model_type\": \"llama\", \"vocab_size\": 32, " \
	"\"hidden_size\": 64, \"num_hidden_layers\": 1, " \
	"\"num_attention_heads\": 1, \"max_position_embeddings\": 128"

static void test_default_and_linear(void **state)
{
	int rc;
	struct hf_model *m = fake("{" BASE ", \"rope_theta\": 10000}", 64, 128,
				  &rc);
	float f[32];
	double want[32];

	assert_int_equal(rc, 0);
	inv_now(m, f);
	for (int i = 0; i < 32; i++)
		want[i] = 1.0 / pow(10000.0, 2.0 * i / 64.0);
	expect_rel(f, want, 32);
	hf_model_free(m);
	m = fake("{" BASE ", \"rope_scaling\": {\"type\": \"linear\", "
		 "\"factor\": 4.0}}", 64, 128, &rc);
	assert_int_equal(rc, 0);
	inv_now(m, f);
	for (int i = 0; i < 32; i++)
		want[i] /= 4.0;
	expect_rel(f, want, 32);
	hf_model_free(m);
}

static void test_partial_rotary_factor(void **state)
{
	int rc;
	struct hf_model *m = fake("{" BASE ", \"partial_rotary_factor\": 0.5}",
				  64, 128, &rc);
	float f[16];
	double want[16];

	assert_int_equal(rc, 0);
	assert_int_equal(m->rot_dim, 32);
	inv_now(m, f);
	for (int i = 0; i < 16; i++)
		want[i] = 1.0 / pow(10000.0, 2.0 * i / 32.0);
	expect_rel(f, want, 16);
	hf_model_free(m);
}

/* _compute_llama3_parameters with Llama 3.1's numbers. */
static void test_llama3(void **state)
{
	int rc;
	struct hf_model *m = fake("{" BASE ", \"rope_theta\": 500000, "
		"\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, "
		"\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
		"\"original_max_position_embeddings\": 8192}}", 128, 131072, &rc);
	float f[64];
	double want[64], lo_wl = 8192.0 / 1.0, hi_wl = 8192.0 / 4.0;
	int bands[3] = { 0 };

	assert_int_equal(rc, 0);
	inv_now(m, f);
	for (int i = 0; i < 64; i++) {
		double inv = 1.0 / pow(500000.0, 2.0 * i / 128.0);
		double wl = 2 * M_PI / inv;

		if (wl < hi_wl) {
			want[i] = inv;
			bands[0]++;
		} else if (wl > lo_wl) {
			want[i] = inv / 8.0;
			bands[2]++;
		} else {
			double s = (8192.0 / wl - 1.0) / (4.0 - 1.0);

			want[i] = (1 - s) * inv / 8.0 + s * inv;
			bands[1]++;
		}
	}
	assert_true(bands[0] && bands[1] && bands[2]);
	expect_rel(f, want, 64);
	hf_model_free(m);
}

/* _compute_dynamic_ntk_parameters and dynamic_rope_update: the base grows
 * past max_position_embeddings and returns when the sequence is short. */
static void test_dynamic_ntk(void **state)
{
	struct hf_err err = { 0 };
	int rc;
	struct hf_model *m = fake("{" BASE ", \"rope_scaling\": {\"type\": "
				  "\"dynamic\", \"factor\": 2.0}}", 64, 128, &rc);
	float f[32];
	double want[32], base;

	assert_int_equal(rc, 0);
	assert_int_equal(rope_update(m, 100, &err), 0);
	inv_now(m, f);
	for (int i = 0; i < 32; i++)
		want[i] = 1.0 / pow(10000.0, 2.0 * i / 64.0);
	expect_rel(f, want, 32);
	assert_int_equal(rope_update(m, 300, &err), 0);
	inv_now(m, f);
	base = 10000.0 * pow(2.0 * 300 / 128.0 - 1.0, 64.0 / 62.0);
	for (int i = 0; i < 32; i++)
		want[i] = 1.0 / pow(base, 2.0 * i / 64.0);
	expect_rel(f, want, 32);
	assert_int_equal(rope_update(m, 10, &err), 0);
	inv_now(m, f);
	for (int i = 0; i < 32; i++)
		want[i] = 1.0 / pow(10000.0, 2.0 * i / 64.0);
	expect_rel(f, want, 32);
	hf_model_free(m);
}

/* _compute_yarn_parameters in double: the ramp between the dims that make
 * bf and bs rotations over ctx, floor/ceil when trunc. */
static void yarn_want(double *want, double d, double base, double factor,
		      double ctx, double bf, double bs, int trunc)
{
	double lo = d * log(ctx / (bf * 2 * M_PI)) / (2 * log(base));
	double hi = d * log(ctx / (bs * 2 * M_PI)) / (2 * log(base));

	if (trunc) {
		lo = floor(lo);
		hi = ceil(hi);
	}
	lo = lo < 0 ? 0 : lo;
	hi = hi > d - 1 ? d - 1 : hi;
	if (lo == hi)
		hi += 0.001;
	for (int i = 0; i < d / 2; i++) {
		double pf = pow(base, 2.0 * i / d), r = (i - lo) / (hi - lo);
		double ef = 1 - (r < 0 ? 0 : r > 1 ? 1 : r);

		want[i] = 1 / (factor * pf) * (1 - ef) + 1 / pf * ef;
	}
}

/* Qwen3's recommended long-context config: factor 4 over an original
 * 32768 with max_position_embeddings 40960. The explicit factor scales the
 * frequencies (not 40960 / 32768), the original sets the ramp. */
static void test_yarn(void **state)
{
	int rc;
	struct hf_model *m = fake("{" BASE ", \"rope_theta\": 1000000, "
		"\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0, "
		"\"original_max_position_embeddings\": 32768}}", 128, 40960, &rc);
	float f[64];
	double want[64];

	assert_int_equal(rc, 0);
	inv_now(m, f);
	yarn_want(want, 128, 1e6, 4.0, 32768, 32, 1, 1);
	expect_rel(f, want, 64);
	assert_true(fabs(m->rope_scaling - (0.1 * log(4.0) + 1)) < 1e-6);
	hf_model_free(m);
}

/* No original_max_position_embeddings: max_position_embeddings is the
 * pre-yarn context; beta_fast and beta_slow given, truncate false (as
 * gpt-oss writes it). */
static void test_yarn_betas_no_truncate(void **state)
{
	int rc;
	struct hf_model *m = fake("{" BASE ", \"rope_scaling\": {\"rope_type\": "
		"\"yarn\", \"factor\": 32.0, \"beta_fast\": 16, "
		"\"beta_slow\": 2.0, \"truncate\": false}}", 64, 4096, &rc);
	float f[32];
	double want[32];

	assert_int_equal(rc, 0);
	inv_now(m, f);
	yarn_want(want, 64, 10000, 32.0, 4096, 16, 2, 0);
	expect_rel(f, want, 32);
	assert_true(fabs(m->rope_scaling - (0.1 * log(32.0) + 1)) < 1e-6);
	hf_model_free(m);
}

/* The attention factor: get_mscale(factor, mscale) /
 * get_mscale(factor, mscale_all_dim) when both are set (DeepSeek), the
 * config's attention_factor when given, and beta 0 means the default. */
static void test_yarn_attention_factor(void **state)
{
	int rc;
	struct hf_model *m = fake("{" BASE ", \"rope_scaling\": {\"rope_type\": "
		"\"yarn\", \"factor\": 40.0, \"mscale\": 1.0, "
		"\"mscale_all_dim\": 0.5, \"beta_fast\": 0, "
		"\"original_max_position_embeddings\": 4096}}", 64, 163840, &rc);
	float f[32];
	double want[32], ms = 0.1 * log(40.0) + 1, msad = 0.05 * log(40.0) + 1;

	assert_int_equal(rc, 0);
	inv_now(m, f);
	yarn_want(want, 64, 10000, 40.0, 4096, 32, 1, 1);
	expect_rel(f, want, 32);
	assert_true(fabs(m->rope_scaling - ms / msad) < 1e-6);
	hf_model_free(m);
	m = fake("{" BASE ", \"rope_scaling\": {\"rope_type\": \"yarn\", "
		 "\"factor\": 8.0, \"attention_factor\": 1.25, \"mscale\": 1, "
		 "\"mscale_all_dim\": 1}}", 64, 128, &rc);
	assert_int_equal(rc, 0);
	assert_true(fabs(m->rope_scaling - 1.25) < 1e-7);
	hf_model_free(m);
}

/* _compute_longrope_parameters and longrope_frequency_update, Phi-3 style
 * (original_max_position_embeddings at the top level, no factor): the
 * short factors up to the original context, the long ones past it. */
static void test_longrope(void **state)
{
	struct hf_err err = { 0 };
	char json[4096], sh[1024], lg[1024];
	size_t o1 = 0, o2 = 0;
	double want[16], sf[16], lf[16];
	float f[16];
	int rc;
	struct hf_model *m;

	for (int i = 0; i < 16; i++) {
		sf[i] = 1.0 + 0.05 * i;
		lf[i] = 1.0 + 1.5 * i;
		o1 += (size_t)snprintf(sh + o1, sizeof(sh) - o1, "%s%g",
				       i ? ", " : "", sf[i]);
		o2 += (size_t)snprintf(lg + o2, sizeof(lg) - o2, "%s%g",
				       i ? ", " : "", lf[i]);
	}
	snprintf(json, sizeof(json), "{" BASE ", \"original_max_position_"
		 "embeddings\": 32, \"rope_scaling\": {\"type\": \"longrope\", "
		 "\"short_factor\": [%s], \"long_factor\": [%s]}}", sh, lg);
	m = fake(json, 32, 128, &rc);
	assert_int_equal(rc, 0);
	assert_true(fabs(m->rope_scaling -
			 sqrt(1 + log(128.0 / 32) / log(32.0))) < 1e-6);
	for (int pass = 0; pass < 3; pass++) {
		/* 32 tokens: short; 33: long; back to 10: short */
		size_t len = pass == 0 ? 32 : pass == 1 ? 33 : 10;
		const double *ef = pass == 1 ? lf : sf;

		assert_int_equal(rope_update(m, len, &err), 0);
		inv_now(m, f);
		for (int i = 0; i < 16; i++)
			want[i] = 1.0 / (ef[i] * pow(10000.0, 2.0 * i / 32.0));
		expect_rel(f, want, 16);
	}
	/* a prompt in chunks is rotated as one call of its whole length */
	hf_model_set_seq_len(m, 40);
	assert_int_equal(rope_update(m, 16, &err), 0);
	inv_now(m, f);
	assert_true(fabs(f[5] - 1.0 / (lf[5] * pow(1e4, 10.0 / 32))) <
		    1e-6 * f[5]);
	hf_model_set_seq_len(m, 0);
	hf_model_free(m);
	m = fake("{" BASE ", \"rope_scaling\": {\"type\": \"longrope\", "
		 "\"short_factor\": [1, 1], \"long_factor\": [1, 1]}}", 32, 128,
		 &rc);
	assert_int_equal(rc, HF_EFORMAT);
	hf_model_free(m);
}

static void test_unsupported_type_is_named(void **state)
{
	int rc;
	struct hf_model *m = fake("{" BASE ", \"rope_scaling\": {\"rope_type\": "
				  "\"xpos\", \"factor\": 2.0}}", 64, 128, &rc);

	assert_int_equal(rc, HF_EUNSUPPORTED);
	hf_model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_and_linear),
		cmocka_unit_test(test_partial_rotary_factor),
		cmocka_unit_test(test_llama3),
		cmocka_unit_test(test_dynamic_ntk),
		cmocka_unit_test(test_yarn),
		cmocka_unit_test(test_yarn_betas_no_truncate),
		cmocka_unit_test(test_yarn_attention_factor),
		cmocka_unit_test(test_longrope),
		cmocka_unit_test(test_unsupported_type_is_named),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
