/* Tests for lib/train/optim.c: AdamW against the update written out in
 * double precision here from peft-lora.md s. 8 (torch.optim.AdamW),
 * clipping against clip_grad_norm_'s definition, and the decay rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "train/optim.h"

static uint64_t lcg = 88172645463325252ull;

static float frand(void)	/* uniform in [-1, 1) */
{
	lcg ^= lcg << 13;
	lcg ^= lcg >> 7;
	lcg ^= lcg << 17;
	return (float)((double)(lcg >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void test_defaults_are_training_arguments(void **state)
{
	struct hf_adamw_opts o = HF_ADAMW_DEFAULTS;

	assert_true(o.lr == 5e-5);
	assert_true(o.beta1 == 0.9 && o.beta2 == 0.999);
	assert_true(o.eps == 1e-8);
	assert_true(o.weight_decay == 0.0);
}

static void test_add_rejects_a_name_twice(void **state)
{
	struct hf_params ps = { 0 };
	struct hf_err err = { 0 };
	int64_t shape[2] = { 2, 3 };

	assert_int_equal(hf_params_add(&ps, "w", 2, shape, NULL, NULL, NULL, &err), 0);
	assert_int_equal(ps.p[0].n, 6);
	assert_int_equal(hf_params_add(&ps, "w", 2, shape, NULL, NULL, NULL, &err), HF_EINVAL);
	assert_non_null(strstr(err.msg, "'w'"));
	assert_non_null(hf_params_find(&ps, "w"));
	assert_null(hf_params_find(&ps, "v"));
	hf_params_free(&ps);
	hf_params_free(&ps);
}

/* Parameters of every supported family: transformers' patterns plus
 * nn.LayerNorm modules (GPT-2's ln_*). */
static void test_decay_rule_follows_transformers(void **state)
{
	static const char *const decay[] = {
		"model.layers.0.self_attn.q_proj.weight", "model.embed_tokens.weight",
		"lm_head.weight", "h.0.attn.c_attn.weight", "wte.weight",
		"bert.encoder.layer.0.attention.self.query.weight",
		"model.layers.0.mlp.experts.0.w1.weight",
		"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
		"model.normalizer.weight",	/* "norm" not a whole component */
		"distilbert.transformer.layer.0.ffn.lin1.weight",
	};
	static const char *const nodecay[] = {
		"model.layers.0.self_attn.q_proj.bias", "model.norm.weight",
		"model.layers.0.input_layernorm.weight",
		"model.layers.0.post_attention_layernorm.weight",
		"model.layers.0.self_attn.q_norm.weight", "h.0.ln_1.weight",
		"h.0.ln_2.bias", "ln_f.weight", "transformer.ln_f.weight",
		"bert.embeddings.LayerNorm.weight", "cls.predictions.bias",
		"distilbert.transformer.layer.0.sa_layer_norm.weight",
		"vocab_layer_norm.weight", "lm_head.layer_norm.weight",
		"model.layers.0.pre_feedforward_layernorm.weight", "norm.weight",
	};

	for (size_t i = 0; i < sizeof(decay) / sizeof(decay[0]); i++)
		if (!hf_param_decays(decay[i]))
			fail_msg("'%s' should decay", decay[i]);
	for (size_t i = 0; i < sizeof(nodecay) / sizeof(nodecay[0]); i++)
		if (hf_param_decays(nodecay[i]))
			fail_msg("'%s' should not decay", nodecay[i]);
}

/* At t = 1 with no decay: m^ = g, v^ = g^2, so each weight moves by
 * -lr * g / (|g| + eps): lr against the sign of g. */
static void test_first_step_moves_each_weight_by_lr(void **state)
{
	struct hf_params ps = { 0 };
	struct hf_adamw *a = NULL;
	struct hf_adamw_opts o = HF_ADAMW_DEFAULTS;
	int64_t shape[1] = { 4 };
	float w0[4] = { 1.0f, -2.0f, 0.5f, 3.0f }, g[4] = { 0.3f, -0.01f, 2.0f, -5.0f };

	assert_int_equal(hf_params_add(&ps, "x.weight", 1, shape, NULL, NULL, w0, NULL), 0);
	memcpy(ps.p[0].g, g, sizeof(g));
	assert_int_equal(hf_adamw_new(&a, &ps, &o, NULL), 0);
	hf_adamw_step(a, &ps, 1e-3);
	assert_int_equal(hf_adamw_steps(a), 1);
	for (int i = 0; i < 4; i++) {
		double want = w0[i] - 1e-3 * g[i] / (fabs(g[i]) + 1e-8);

		if (fabs(ps.p[0].w[i] - want) > 1e-6)
			fail_msg("w[%d]: got %.9g want %.9g", i, ps.p[0].w[i], want);
		/* m = 0.1 g, v = 0.001 g^2 */
		assert_float_equal(hf_adamw_m(a, 0)[i], 0.1f * g[i], 1e-7);
		assert_float_equal(hf_adamw_v(a, 0)[i], 0.001f * g[i] * g[i], 1e-7);
	}
	hf_adamw_free(a);
	hf_params_free(&ps);
}

/* Twenty steps with random gradients, weight decay 0.1 on the weight and
 * not on the bias, against the formulas in double: 2e-6 relative, the
 * float32 arithmetic of twenty updates of size ~lr. */
static void test_steps_match_the_formula(void **state)
{
	enum { N = 37, M = 5, STEPS = 20 };
	struct hf_params ps = { 0 };
	struct hf_adamw *a = NULL;
	struct hf_adamw_opts o = { 1e-2, 0.9, 0.95, 1e-6, 0.1 };
	int64_t sw[2] = { N / 37, 37 }, sb[1] = { M };
	double w[N + M], m[N + M] = { 0 }, v[N + M] = { 0 };

	assert_int_equal(hf_params_add(&ps, "fc.weight", 2, sw, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(hf_params_add(&ps, "fc.bias", 1, sb, NULL, NULL, NULL, NULL), 0);
	assert_true(ps.p[0].decay && !ps.p[1].decay);
	for (int i = 0; i < N + M; i++) {
		float x = frand();

		*(i < N ? &ps.p[0].w[i] : &ps.p[1].w[i - N]) = x;
		w[i] = x;
	}
	assert_int_equal(hf_adamw_new(&a, &ps, &o, NULL), 0);
	for (int t = 1; t <= STEPS; t++) {
		double lr = o.lr * (1.0 - (t - 1) / (double)STEPS);
		double bc1 = 1 - pow(o.beta1, t), bc2 = 1 - pow(o.beta2, t);

		for (int i = 0; i < N + M; i++) {
			float gf = frand() * (i % 3 ? 1.0f : 1e-3f);
			double g = gf;

			*(i < N ? &ps.p[0].g[i] : &ps.p[1].g[i - N]) = gf;
			if (i < N)
				w[i] *= 1 - lr * o.weight_decay;
			m[i] = o.beta1 * m[i] + (1 - o.beta1) * g;
			v[i] = o.beta2 * v[i] + (1 - o.beta2) * g * g;
			w[i] -= lr / bc1 * m[i] / (sqrt(v[i]) / sqrt(bc2) + o.eps);
		}
		hf_adamw_step(a, &ps, lr);
	}
	for (int i = 0; i < N + M; i++) {
		float got = i < N ? ps.p[0].w[i] : ps.p[1].w[i - N];

		if (fabs(got - w[i]) > 2e-6 * (fabs(w[i]) + 1.0))
			fail_msg("w[%d]: got %.9g want %.9g", i, got, w[i]);
	}
	hf_adamw_free(a);
	hf_params_free(&ps);
}

/* A parameter without decay is untouched by it: zero gradient keeps a
 * no-decay weight exactly, and shrinks a decayed one by 1 - lr * wd. */
static void test_decay_is_decoupled_and_skips_norms(void **state)
{
	struct hf_params ps = { 0 };
	struct hf_adamw *a = NULL;
	struct hf_adamw_opts o = { 0.1, 0.9, 0.999, 1e-8, 0.5 };
	int64_t s[1] = { 3 };
	float one[3] = { 1, 2, 3 };

	assert_int_equal(hf_params_add(&ps, "model.norm.weight", 1, s, NULL, NULL, one, NULL), 0);
	assert_int_equal(hf_params_add(&ps, "lm_head.weight", 1, s, NULL, NULL, one, NULL), 0);
	assert_int_equal(hf_adamw_new(&a, &ps, &o, NULL), 0);
	hf_adamw_step(a, &ps, 0.1);
	for (int i = 0; i < 3; i++) {
		assert_true(ps.p[0].w[i] == one[i]);
		assert_float_equal(ps.p[1].w[i], one[i] * 0.95f, 1e-7);
	}
	hf_adamw_free(a);
	hf_params_free(&ps);
}

static void test_clip_scales_to_max_norm(void **state)
{
	struct hf_params ps = { 0 };
	int64_t s[1] = { 2 };
	float norm;

	assert_int_equal(hf_params_add(&ps, "a", 1, s, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(hf_params_add(&ps, "b", 1, s, NULL, NULL, NULL, NULL), 0);
	ps.p[0].g[0] = 3;
	ps.p[0].g[1] = 4;	/* |a| = 5 */
	ps.p[1].g[0] = 12;	/* |b| = 12: total 13 */
	norm = hf_params_clip_grad_norm(&ps, 1.0f);
	assert_float_equal(norm, 13.0f, 1e-6);
	/* coef = 1 / (13 + 1e-6) */
	assert_float_equal(ps.p[0].g[0], 3.0f / (13.0f + 1e-6f), 1e-7);
	assert_float_equal(ps.p[1].g[0], 12.0f / (13.0f + 1e-6f), 1e-7);
	assert_float_equal(hf_params_clip_grad_norm(&ps, 0.0f), 1.0f, 1e-6);
	hf_params_free(&ps);
}

static void test_clip_leaves_small_gradients(void **state)
{
	struct hf_params ps = { 0 };
	int64_t s[1] = { 2 };

	assert_int_equal(hf_params_add(&ps, "a", 1, s, NULL, NULL, NULL, NULL), 0);
	ps.p[0].g[0] = 0.3f;
	ps.p[0].g[1] = 0.4f;
	assert_float_equal(hf_params_clip_grad_norm(&ps, 1.0f), 0.5f, 1e-7);
	assert_true(ps.p[0].g[0] == 0.3f && ps.p[0].g[1] == 0.4f);
	hf_params_zero_grad(&ps);
	assert_true(ps.p[0].g[0] == 0.0f);
	hf_params_free(&ps);
}

/* Borrowed buffers are used in place and not freed by the set. */
static void test_borrowed_buffers_stay_the_callers(void **state)
{
	struct hf_params ps = { 0 };
	int64_t s[1] = { 2 };
	float w[2] = { 1, 2 }, g[2] = { 4, 6 };

	assert_int_equal(hf_params_add(&ps, "a", 1, s, w, g, NULL, NULL), 0);
	hf_params_scale_grad(&ps, 0.5f);
	assert_true(g[0] == 2 && g[1] == 3);
	assert_ptr_equal(ps.p[0].w, w);
	hf_params_free(&ps);
	assert_true(w[1] == 2);
}

/* A frozen parameter (weights, no gradient) is kept but never stepped,
 * clipped or counted in the norm. */
static void test_frozen_parameter_is_skipped(void **state)
{
	struct hf_params ps = { 0 };
	struct hf_adamw *a = NULL;
	struct hf_adamw_opts o = { 0.1, 0.9, 0.999, 1e-8, 0.1 };
	int64_t s[1] = { 2 };
	float w[2] = { 1, 2 }, fw[2] = { 3, 4 }, g[2] = { 3, 4 };

	assert_int_equal(hf_params_add(&ps, "frozen.weight", 1, s, fw, NULL, NULL, NULL), 0);
	assert_int_equal(hf_params_add(&ps, "live.weight", 1, s, w, g, NULL, NULL), 0);
	assert_int_equal(hf_params_add(&ps, "bad", 1, s, NULL, g, NULL, NULL), HF_EINVAL);
	assert_float_equal(hf_params_clip_grad_norm(&ps, 0.0f), 5.0f, 1e-6);
	assert_int_equal(hf_adamw_new(&a, &ps, &o, NULL), 0);
	hf_adamw_step(a, &ps, 0.1);
	hf_params_zero_grad(&ps);
	assert_true(fw[0] == 3 && fw[1] == 4);
	assert_true(w[0] != 1);
	hf_adamw_free(a);
	hf_params_free(&ps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_are_training_arguments),
		cmocka_unit_test(test_add_rejects_a_name_twice),
		cmocka_unit_test(test_decay_rule_follows_transformers),
		cmocka_unit_test(test_first_step_moves_each_weight_by_lr),
		cmocka_unit_test(test_steps_match_the_formula),
		cmocka_unit_test(test_decay_is_decoupled_and_skips_norms),
		cmocka_unit_test(test_clip_scales_to_max_norm),
		cmocka_unit_test(test_clip_leaves_small_gradients),
		cmocka_unit_test(test_borrowed_buffers_stay_the_callers),
		cmocka_unit_test(test_frozen_parameter_is_skipped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
