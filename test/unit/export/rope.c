/* Tests for the rope_scaling part of lib/export/families.c: the GGUF keys
 * (hf_family_rope_keys) and Phi-3's LongRoPE factor tensors
 * (hf_family_rope_factors) llama.cpp's converter writes, against values
 * worked out here from its formulas (TextModel.set_gguf_parameters,
 * Phi3MiniModel.generate_extra_tensors), and the refusals. Keys are read
 * back through lib's GGUF reader from a file written by lib's writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "export/families.h"
#include "export/gguf.h"
#include "export/gguf_read.h"
#include "model/config.h"

static struct hf_config *cfg(const char *json)
{
	struct hf_config *c = NULL;
	struct hf_err err = { 0 };

	assert_int_equal(hf_config_parse(&c, json, strlen(json), "test",
					 &err), 0);
	return c;
}

/* The file's bytes behind the last keys() result (the reader borrows
 * them): freed by done(). */
static char *membuf;

/* The keys hf_family_rope_keys writes for c, in a GGUF read back; NULL
 * and *rc set when it refuses. */
static struct hf_gguf *keys(const char *family, const char *json, int *rc)
{
	struct hf_gguf_writer *w = NULL;
	struct hf_config *c = cfg(json);
	struct hf_err err = { 0 };
	struct hf_gguf *g = NULL;
	size_t len = 0;
	FILE *f;

	assert_null(membuf);
	assert_int_equal(hf_gguf_writer_new(&w, &err), 0);
	assert_int_equal(hf_gguf_set_str(w, "general.architecture", "x", 1,
					 &err), 0);
	*rc = hf_family_rope_keys(w, hf_family_find(family), c, "dir", &err);
	if (!*rc) {
		assert_non_null(f = open_memstream(&membuf, &len));
		assert_int_equal(hf_gguf_write_stream(w, f, "mem", &err), 0);
		fclose(f);
		assert_int_equal(hf_gguf_open_buf(&g, membuf, len, "mem", &err),
				 0);
	}
	hf_gguf_writer_free(w);
	hf_config_free(c);
	return g;
}

static void done(struct hf_gguf *g)
{
	hf_gguf_free(g);
	free(membuf);
	membuf = NULL;
}

static double getf(struct hf_gguf *g, const char *k)
{
	struct hf_err err = { 0 };
	double v = -12345;

	assert_non_null(hf_gguf_get(g, k));
	assert_int_equal(hf_gguf_get_float(g, k, -1, &v, &err), 0);
	return v;
}

#define PHI3 "{\"model_type\": \"phi3\", \"hidden_size\": 48, "		\
	"\"num_attention_heads\": 4, \"num_hidden_layers\": 1, "	\
	"\"vocab_size\": 8, \"original_max_position_embeddings\": 4096, " \
	"\"max_position_embeddings\": 16384, "

static void test_yarn_keys(void **state)
{
	int rc;
	struct hf_gguf *g = keys("llama", "{\"model_type\": \"llama\", "
		"\"hidden_size\": 64, \"num_attention_heads\": 4, "
		"\"num_hidden_layers\": 1, \"vocab_size\": 8, "
		"\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0, "
		"\"original_max_position_embeddings\": 32, \"beta_fast\": 16, "
		"\"beta_slow\": 2.5, \"attn_factor\": 1.25, "
		"\"extrapolation_factor\": 0.5}}", &rc);

	(void)state;
	assert_int_equal(rc, 0);
	assert_non_null(g);
	assert_true(getf(g, "llama.rope.scaling.yarn_beta_fast") == 16.0);
	assert_true(getf(g, "llama.rope.scaling.yarn_beta_slow") == 2.5);
	/* attention_factor, else attn_factor */
	assert_true(getf(g, "llama.rope.scaling.yarn_attn_factor") == 1.25);
	assert_true(getf(g, "llama.rope.scaling.yarn_ext_factor") == 0.5);
	/* those are not LongRoPE's */
	assert_null(hf_gguf_get(g, "llama.rope.scaling.attn_factor"));
	done(g);
}

static void test_no_yarn_keys(void **state)
{
	int rc;
	/* linear scaling, and a family without HF_FAM_ROPE_SCALING */
	struct hf_gguf *g = keys("llama", "{\"model_type\": \"llama\", "
		"\"hidden_size\": 64, \"num_attention_heads\": 4, "
		"\"num_hidden_layers\": 1, \"vocab_size\": 8, "
		"\"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": 2, "
		"\"beta_fast\": 16}}", &rc);

	(void)state;
	assert_int_equal(rc, 0);
	assert_null(hf_gguf_get(g, "llama.rope.scaling.yarn_beta_fast"));
	done(g);
	g = keys("gpt2", "{\"model_type\": \"gpt2\", \"n_embd\": 64, "
		 "\"n_head\": 4, \"n_layer\": 1, \"vocab_size\": 8, "
		 "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 2, "
		 "\"beta_fast\": 16}}", &rc);
	assert_int_equal(rc, 0);
	assert_null(hf_gguf_get(g, "gpt2.rope.scaling.yarn_beta_fast"));
	done(g);
}

static void test_longrope(void **state)
{
	int rc;
	struct hf_gguf *g = keys("phi3", PHI3 "\"rope_scaling\": {\"type\": "
		"\"longrope\", \"long_factor\": [1, 2, 3, 4, 5, 6], "
		"\"short_factor\": [1, 1, 1, 1, 1, 1.5]}}", &rc);
	struct hf_config *c;
	struct hf_err err = { 0 };
	float *lf, *sf;
	int64_t n;

	(void)state;
	assert_int_equal(rc, 0);
	/* sqrt(1 + ln 4 / ln 4096), in float32 */
	assert_true((float)getf(g, "phi3.rope.scaling.attn_factor") ==
		    (float)sqrt(1 + log(4.0) / log(4096.0)));
	done(g);
	c = cfg(PHI3 "\"rope_scaling\": {\"type\": \"longrope\", "
		"\"long_factor\": [1, 2, 3, 4, 5, 6], "
		"\"short_factor\": [1, 1, 1, 1, 1, 1.5]}}");
	assert_int_equal(hf_family_rope_factors(hf_family_find("phi3"), c,
						"dir", &lf, &sf, &n, &err), 0);
	assert_int_equal(n, 6);	/* 48 / 4 = 12 rope dims, 6 pairs */
	assert_true(lf[0] == 1 && lf[5] == 6 && sf[4] == 1 && sf[5] == 1.5f);
	free(lf);
	free(sf);
	hf_config_free(c);
	/* YaRN-style factors: 0.1 ln 4 + 1 */
	g = keys("phi3", PHI3 "\"rope_scaling\": {\"type\": \"yarn\", "
		 "\"long_factor\": [1, 2, 3, 4, 5, 6], "
		 "\"short_factor\": [1, 1, 1, 1, 1, 1]}}", &rc);
	assert_int_equal(rc, 0);
	assert_true((float)getf(g, "phi3.rope.scaling.attn_factor") ==
		    (float)(0.1 * log(4.0) + 1.0));
	done(g);
}

static void test_no_factors(void **state)
{
	struct hf_config *c = cfg(PHI3 "\"rope_scaling\": null}");
	struct hf_err err = { 0 };
	float *lf = (float *)1, *sf = (float *)1;
	int64_t n = 7;
	int rc;
	struct hf_gguf *g;

	(void)state;
	assert_int_equal(hf_family_rope_factors(hf_family_find("phi3"), c,
						"dir", &lf, &sf, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_null(lf);
	assert_null(sf);
	hf_config_free(c);
	g = keys("phi3", PHI3 "\"rope_scaling\": null}", &rc);
	assert_int_equal(rc, 0);
	assert_null(hf_gguf_get(g, "phi3.rope.scaling.attn_factor"));
	done(g);
}

static void test_refused(void **state)
{
	struct hf_err err = { 0 };
	struct hf_config *c;
	float *lf, *sf;
	int64_t n;
	int rc;

	(void)state;
	/* factors of the wrong length (6 wanted) */
	c = cfg(PHI3 "\"rope_scaling\": {\"type\": \"longrope\", "
		"\"long_factor\": [1, 2, 3], \"short_factor\": [1, 1, 1]}}");
	assert_int_equal(hf_family_rope_factors(hf_family_find("phi3"), c,
						"dir", &lf, &sf, &n, &err),
			 HF_EFORMAT);
	assert_non_null(strstr(err.msg, "rope dims / 2 = 6"));
	hf_config_free(c);
	/* a type with no GGUF form for factors */
	assert_null(keys("phi3", PHI3 "\"rope_scaling\": {\"type\": "
			 "\"dynamic\", \"long_factor\": [1, 2, 3, 4, 5, 6], "
			 "\"short_factor\": [1, 1, 1, 1, 1, 1]}}", &rc));
	assert_int_equal(rc, HF_EUNSUPPORTED);
	/* a yarn key that is not a number */
	assert_null(keys("llama", "{\"model_type\": \"llama\", "
		"\"hidden_size\": 64, \"num_attention_heads\": 4, "
		"\"num_hidden_layers\": 1, \"vocab_size\": 8, "
		"\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0, "
		"\"beta_fast\": \"fast\"}}", &rc));
	assert_int_equal(rc, HF_EFORMAT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yarn_keys),
		cmocka_unit_test(test_no_yarn_keys),
		cmocka_unit_test(test_longrope),
		cmocka_unit_test(test_no_factors),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
