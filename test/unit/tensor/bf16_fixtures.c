/* Tests for bf16 compute (hf_matmul_as, hf_backend_cpu_set_compute) on
 * whole models: the decoder fixtures' logits at every position against
 * their float32 references (test/fixtures/models/README.md). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/json.h"
#include "model/model.h"
#include "st/st.h"
#include "tensor/matmul.h"

/* Rounding x and W to bf16 changes each product by up to about 2^-8
 * relative; through the fixtures' layers the logits moved by 0.65% to
 * 1.4% of the largest reference logit (printed per model). The bound,
 * 3% of max |logit|, leaves twice that and is still far below what a
 * wrong product gives (differences of the order of the logits).
 * Below 1e-6 of it the run would be float32, which the test also
 * rejects: bf16 compute must show. */
#define TOL_REL 0.03
#define MIN_REL 1e-6

static const char *const decoders[] = {
	"gpt2-tiny", "llama-tiny", "llama-tiny-untied", "mistral-tiny",
	"qwen2-tiny", "qwen3-tiny", "gemma-tiny", "phi3-tiny",
};
#define NDEC (sizeof(decoders) / sizeof(decoders[0]))

struct fx {
	char dir[512];
	struct hf_st *ref;
	json_t *js;
};

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "../model/fixture_check.h"
#pragma GCC diagnostic pop

/* Largest |got - want| over max |want| for every prompt of fixture name
 * with the matmuls in compute type ct. */
static double rel_diff(const char *name, enum hf_dtype ct)
{
	struct hf_err err = { 0 };
	struct hf_backend *be;
	struct hf_model *m;
	struct fx f;
	char path[600];
	double mx = 0.0, mref = 0.0;
	size_t V, np;

	if (snprintf(f.dir, sizeof(f.dir), "%s/%s", fixtures_root(), name) >=
	    (int)sizeof(f.dir))
		fail_msg("%s: path too long", name);
	if (hf_backend_cpu_create(&be, 2, &err) ||
	    hf_backend_cpu_set_compute(be, ct, &err) ||
	    hf_model_open(&m, f.dir, be, 2, &err))
		fail_msg("%s: %s", name, err.msg);
	snprintf(path, sizeof(path), "%s/reference.safetensors", f.dir);
	if (hf_st_open(&f.ref, path, &err))
		fail_msg("%s", err.msg);
	snprintf(path, sizeof(path), "%s/reference.json", f.dir);
	if (hf_json_load_file(&f.js, path, &err))
		fail_msg("%s", err.msg);
	V = hf_model_vocab(m);
	np = json_array_size(json_object_get(f.js, "prompts"));
	for (size_t p = 0; p < np; p++) {
		struct hf_kv *kv;
		size_t T;
		int32_t *ids = ints(json_object_get(prompt(&f, p),
						    "input_ids"), &T);
		float *lg = malloc(T * V * sizeof(float));
		struct hf_fwd_out o = { .logits = lg, .all_logits = 1 };
		const float *want = ref_f32(&f, "prompt%zu.logits", p);

		if (hf_kv_new(&kv, m, 1, T, &err) ||
		    hf_model_forward(m, kv, ids, NULL, T, &o, &err))
			fail_msg("%s: %s", name, err.msg);
		for (size_t i = 0; i < T * V; i++) {
			double d = fabs((double)lg[i] - want[i]);

			if (!(d <= mx))	/* NaN too */
				mx = d;
			mref = fabs(want[i]) > mref ? fabs(want[i]) : mref;
		}
		hf_kv_free(kv);
		free(ids);
		free(lg);
	}
	hf_model_free(m);
	hf_backend_free(be);
	hf_st_free(f.ref);
	json_decref(f.js);
	return mx / mref;
}

static void check_all(void)
{
	for (size_t d = 0; d < NDEC; d++) {
		double r = rel_diff(decoders[d], HF_DTYPE_BF16);

		printf("# %s %-18s bf16 logits max diff %.3g of max |logit|\n",
		       hf_matmul_isa_name(), decoders[d], r);
		assert_true(r <= TOL_REL);
		assert_true(r >= MIN_REL);
	}
}

static void test_bf16_logits_near_f32_references(void **state)
{
	check_all();
}

/* The same on the other paths: vdpbf16ps (where the CPU has it) and the
 * portable fallback (the f32 kernels on rounded operands, as the default
 * AVX-512 path is too). */
static void test_bf16_logits_near_f32_references_avx512bf16(void **state)
{
	if (hf_matmul_set_isa(HF_MATMUL_AVX512BF16)) {
		printf("# avx512bf16: not on this CPU, skipped\n");
		skip();
	}
	check_all();
}

static void test_bf16_logits_near_f32_references_generic(void **state)
{
	assert_int_equal(hf_matmul_set_isa(HF_MATMUL_GENERIC), 0);
	check_all();
}

/* And f32 compute stays within the fixtures' 1e-4 (sanity for the
 * helper above: it is the compute type that moves the logits). */
static void test_f32_logits_match_references(void **state)
{
	for (size_t d = 0; d < NDEC; d++) {
		double r = rel_diff(decoders[d], HF_DTYPE_F32);

		assert_true(r < 1e-5);
	}
}

static void test_set_compute_rejects_f16(void **state)
{
	struct hf_err err = { 0 };
	struct hf_backend *be;

	assert_int_equal(hf_backend_cpu_create(&be, 1, &err), 0);
	assert_int_not_equal(hf_backend_cpu_set_compute(be, HF_DTYPE_F16,
							&err), 0);
	assert_non_null(strstr(err.msg, "f32 or bf16"));
	hf_backend_free(be);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bf16_logits_near_f32_references),
		cmocka_unit_test(test_bf16_logits_near_f32_references_avx512bf16),
		cmocka_unit_test(test_bf16_logits_near_f32_references_generic),
		cmocka_unit_test(test_f32_logits_match_references),
		cmocka_unit_test(test_set_compute_rejects_f16),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
