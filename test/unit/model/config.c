/* Tests for lib/model/config.c: every fixture config.json, family name
 * aliases, defaults, and errors that name the file and the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/config.h"

static struct hf_config *load(const char *model)
{
	const char *fx = getenv("HF_FIXTURES");
	const char *md = getenv("HF_MODELS");
	struct hf_err err = { 0 };
	struct hf_config *c;
	char p[512];

	if (!strcmp(model, "stories260k"))
		snprintf(p, sizeof(p), "%s/stories260k/config.json",
			 md ? md : "models");
	else
		snprintf(p, sizeof(p), "%s/models/%s",
			 fx ? fx : "test/fixtures", model);
	if (hf_config_load(&c, p, &err))
		fail_msg("%s: %s", model, err.msg);
	return c;
}

static struct hf_config *parse(const char *json, int want, const char *frag)
{
	struct hf_err err = { 0 };
	struct hf_config *c = NULL;
	int rc = hf_config_parse(&c, json, strlen(json), "x/config.json",
				 &err);

	if (rc != want)
		fail_msg("rc %d want %d: %s", rc, want, err.msg);
	if (frag && (!strstr(err.msg, frag) ||
		     !strstr(err.msg, "x/config.json")))
		fail_msg("message '%s' lacks '%s'", err.msg, frag);
	return c;
}

/* One row per fixture: the numbers its README table and config give. */
static const struct row {
	const char *name, *type, *arch;
	int64_t vocab, hidden, inter, layers, heads, kv, head_dim, pos;
	double eps, theta;
	int tie;
	const char *act, *dtype;
	int64_t bos, eos, pad;
} rows[] = {
	{ "bert-tiny", "bert", "BertForMaskedLM", 512, 64, 128, 2, 4, 4, 16,
	  128, 1e-12, 10000, 1, "gelu", "float32", -1, -1, 0 },
	{ "distilbert-tiny", "distilbert", "DistilBertForMaskedLM", 512, 64,
	  128, 3, 4, 4, 16, 128, 1e-12, 10000, 1, "gelu", "float32", -1, -1,
	  0 },
	{ "gemma-tiny", "gemma", "GemmaForCausalLM", 512, 64, 128, 2, 4, 1, 32,
	  8192, 1e-6, 10000, 1, "gelu_pytorch_tanh", "bfloat16", 2, 1, 0 },
	{ "gpt2-tiny", "gpt2", "GPT2LMHeadModel", 256, 64, 256, 2, 4, 4, 16,
	  128, 1e-5, 10000, 1, "gelu_new", "float32", 255, 255, -1 },
	{ "llama-tiny", "llama", "LlamaForCausalLM", 512, 64, 128, 2, 4, 2, 16,
	  512, 1e-5, 500000, 1, "silu", "bfloat16", 1, 2, -1 },
	{ "llama-tiny-untied", "llama", "LlamaForCausalLM", 512, 64, 172, 2, 4,
	  4, 16, 256, 1e-5, 10000, 0, "silu", "float16", 1, 2, -1 },
	{ "mistral-tiny", "mistral", "MistralForCausalLM", 512, 64, 160, 2, 4,
	  1, 16, 1024, 1e-5, 10000, 0, "silu", "bfloat16", 1, 2, -1 },
	{ "mixtral-tiny", "mixtral", "MixtralForCausalLM", 256, 32, 64, 2, 4,
	  2, 8, 1024, 1e-5, 1e6, 0, "silu", "bfloat16", 1, 2, -1 },
	{ "phi3-tiny", "phi3", "Phi3ForCausalLM", 512, 48, 128, 2, 4, 4, 12,
	  4096, 1e-5, 10000, 0, "silu", "bfloat16", 1, 256, 256 },
	{ "qwen2-tiny", "qwen2", "Qwen2ForCausalLM", 384, 48, 96, 2, 6, 2, 8,
	  1024, 1e-6, 1e6, 1, "silu", "bfloat16", 1, 2, -1 },
	{ "qwen3-tiny", "qwen3", "Qwen3ForCausalLM", 640, 64, 96, 2, 4, 2, 24,
	  1024, 1e-6, 1e6, 1, "silu", "bfloat16", 1, 2, -1 },
	{ "roberta-tiny", "roberta", "RobertaForMaskedLM", 320, 48, 96, 2, 4,
	  4, 12, 130, 1e-5, 10000, 1, "gelu", "float32", 0, 2, 1 },
	{ "stories260k", "llama", "LlamaForCausalLM", 512, 64, 172, 5, 8, 4, 8,
	  512, 1e-5, 10000, 1, "silu", "float32", 1, 2, -1 },
};

static void test_every_fixture_config(void **state)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct hf_config *c = load(r->name);

		print_message("%s\n", r->name);
		assert_string_equal(c->model_type, r->type);
		assert_string_equal(c->architecture, r->arch);
		assert_int_equal(c->vocab_size, r->vocab);
		assert_int_equal(c->hidden_size, r->hidden);
		assert_int_equal(c->intermediate_size, r->inter);
		assert_int_equal(c->num_hidden_layers, r->layers);
		assert_int_equal(c->num_attention_heads, r->heads);
		assert_int_equal(c->num_key_value_heads, r->kv);
		assert_int_equal(c->head_dim, r->head_dim);
		assert_int_equal(c->max_position_embeddings, r->pos);
		/* eps and theta are copied from JSON, not computed */
		assert_true(c->norm_eps == r->eps);
		assert_true(c->rope_theta == r->theta);
		assert_int_equal(c->tie_word_embeddings, r->tie);
		assert_string_equal(c->hidden_act, r->act);
		assert_string_equal(c->torch_dtype, r->dtype);
		assert_int_equal(c->bos_token_id, r->bos);
		assert_int_equal(c->pad_token_id, r->pad);
		if (r->eos >= 0) {
			assert_int_equal(c->n_eos, 1);
			assert_int_equal(c->eos_token_id[0], r->eos);
			assert_true(hf_config_is_eos(c, r->eos));
		} else {
			assert_int_equal(c->n_eos, 0);
		}
		assert_false(hf_config_is_eos(c, 12345));
		hf_config_free(c);
	}
}

static void test_family_specific_keys(void **state)
{
	struct hf_config *c;

	c = load("llama-tiny");
	assert_string_equal(c->rope_scaling.type, "llama3");
	assert_true(c->rope_scaling.factor == 32.0);
	assert_true(c->rope_scaling.low_freq_factor == 1.0);
	assert_true(c->rope_scaling.high_freq_factor == 4.0);
	assert_int_equal(c->rope_scaling.original_max_position_embeddings, 64);
	assert_non_null(c->rope_scaling.json);
	assert_string_equal(c->norm_eps_key, "rms_norm_eps");
	hf_config_free(c);

	c = load("llama-tiny-untied");	/* Llama 2: defaults apply */
	assert_string_equal(c->rope_scaling.type, "");
	assert_null(c->rope_scaling.json);
	assert_int_equal(c->attention_bias, 0);
	hf_config_free(c);

	c = load("mistral-tiny");
	assert_int_equal(c->sliding_window, 4096);
	assert_int_equal(c->use_sliding_window, 1);
	hf_config_free(c);

	c = load("qwen2-tiny");
	assert_int_equal(c->sliding_window, 1024);
	assert_int_equal(c->use_sliding_window, 0);
	hf_config_free(c);

	c = load("mixtral-tiny");
	assert_int_equal(c->num_local_experts, 4);
	assert_int_equal(c->num_experts_per_tok, 2);
	assert_int_equal(c->sliding_window, 0);
	hf_config_free(c);

	c = load("gpt2-tiny");	/* n_inner null: 4 * n_embd */
	assert_string_equal(c->norm_eps_key, "layer_norm_epsilon");
	hf_config_free(c);

	c = load("bert-tiny");
	assert_int_equal(c->type_vocab_size, 2);
	assert_string_equal(c->norm_eps_key, "layer_norm_eps");
	hf_config_free(c);

	c = load("distilbert-tiny");	/* no eps key: LayerNorm(1e-12) */
	assert_string_equal(c->norm_eps_key, "");
	hf_config_free(c);

	c = load("gemma-tiny");
	assert_int_equal(c->head_dim, 32);	/* not hidden / heads = 16 */
	hf_config_free(c);
}

static void test_eos_list_dtype_and_labels(void **state)
{
	struct hf_config *c = parse("{\"model_type\":\"qwen3\",\"vocab_size\":8,"
		"\"hidden_size\":8,\"num_hidden_layers\":1,"
		"\"num_attention_heads\":2,\"eos_token_id\":[5,7],"
		"\"dtype\":\"bfloat16\",\"rope_scaling\":{\"type\":\"linear\","
		"\"factor\":2.0},\"id2label\":{\"0\":\"NEG\",\"2\":\"POS\"},"
		"\"use_sliding_window\":true,\"sliding_window\":16}", 0, NULL);

	assert_int_equal(c->n_eos, 2);
	assert_true(hf_config_is_eos(c, 7));
	assert_string_equal(c->torch_dtype, "bfloat16");
	assert_string_equal(c->rope_scaling.type, "linear");
	assert_true(c->rope_scaling.factor == 2.0);
	assert_int_equal(c->n_labels, 3);
	assert_string_equal(c->id2label[0], "NEG");
	assert_null(c->id2label[1]);
	assert_string_equal(c->id2label[2], "POS");
	assert_int_equal(c->head_dim, 4);
	assert_int_equal(c->use_sliding_window, 1);
	assert_true(c->rope_theta == 10000.0);
	assert_int_equal(c->bos_token_id, -1);
	assert_true(c->tie_word_embeddings);
	/* anything else stays reachable */
	assert_non_null(json_object_get(c->json, "use_sliding_window"));
	hf_config_free(c);
	hf_config_free(NULL);
}

static void test_rope_parameters_and_text_config(void **state)
{
	struct hf_config *c = parse("{\"model_type\":\"llama\",\"text_config\":"
		"{\"vocab_size\":8,\"hidden_size\":8,\"num_hidden_layers\":1,"
		"\"num_attention_heads\":2,\"rms_norm_eps\":1e-5,"
		"\"rope_parameters\":{\"rope_theta\":5e5,"
		"\"rope_type\":\"default\"}}}", 0, NULL);

	assert_int_equal(c->vocab_size, 8);
	assert_true(c->rope_theta == 5e5);
	assert_string_equal(c->rope_scaling.type, "");
	assert_true(c->norm_eps == 1e-5);
	hf_config_free(c);
}

static void test_missing_and_mistyped_keys_are_named(void **state)
{
	parse("{\"vocab_size\":8}", HF_EFORMAT, "missing key 'model_type'");
	parse("{\"model_type\":\"llama\",\"vocab_size\":8,\"hidden_size\":8,"
	      "\"num_hidden_layers\":1}", HF_EFORMAT,
	      "missing key 'num_attention_heads'");
	parse("{\"model_type\":\"llama\",\"hidden_size\":8,"
	      "\"num_hidden_layers\":1,\"num_attention_heads\":2}", HF_EFORMAT,
	      "missing key 'vocab_size'");
	parse("{\"model_type\":\"llama\",\"vocab_size\":\"8\",\"hidden_size\":8,"
	      "\"num_hidden_layers\":1,\"num_attention_heads\":2}", HF_EFORMAT,
	      "key 'vocab_size' must be an integer");
	parse("{\"model_type\":\"llama\",\"vocab_size\":8,\"hidden_size\":0,"
	      "\"num_hidden_layers\":1,\"num_attention_heads\":2}", HF_EFORMAT,
	      "'hidden_size' must be a positive integer");
	parse("{\"model_type\":\"llama\",\"vocab_size\":8,\"hidden_size\":9,"
	      "\"num_hidden_layers\":1,\"num_attention_heads\":2}", HF_EFORMAT,
	      "head_dim");
	parse("{\"model_type\":\"llama\",\"vocab_size\":8,\"hidden_size\":8,"
	      "\"num_hidden_layers\":1,\"num_attention_heads\":4,"
	      "\"num_key_value_heads\":3}", HF_EFORMAT, "num_key_value_heads");
	parse("{\"model_type\":\"llama\",\"vocab_size\":8,\"hidden_size\":8,"
	      "\"num_hidden_layers\":1,\"num_attention_heads\":2,"
	      "\"rms_norm_eps\":\"small\"}", HF_EFORMAT, "'rms_norm_eps'");
	parse("{\"model_type\":\"llama\",\"vocab_size\":8,\"hidden_size\":8,"
	      "\"num_hidden_layers\":1,\"num_attention_heads\":2,"
	      "\"eos_token_id\":[1,\"x\"]}", HF_EFORMAT, "eos_token_id[1]");
	parse("{\"model_type\":\"llama\",\"vocab_size\":8,\"hidden_size\":8,"
	      "\"num_hidden_layers\":1,\"num_attention_heads\":2,"
	      "\"rope_scaling\":[1]}", HF_EFORMAT, "'rope_scaling'");
	parse("{\"model_type\":\"llama\",\"vocab_size\":8,\"hidden_size\":8,"
	      "\"num_hidden_layers\":1,\"num_attention_heads\":2,"
	      "\"id2label\":{\"a\":\"x\"}}", HF_EFORMAT, "id2label key 'a'");
	parse("{\"model_type\":\"llama\",\"vocab_size\":8,\"hidden_size\":8,"
	      "\"num_hidden_layers\":1,\"num_attention_heads\":2,"
	      "\"tie_word_embeddings\":1}", HF_EFORMAT,
	      "'tie_word_embeddings'");
	parse("{\"model_type\":\"gpt2\",\"vocab_size\":8,"
	      "\"n_embd\":9223372036854775807,\"n_layer\":1,\"n_head\":1}",
	      HF_ERANGE, "'n_embd' is too large");
	parse("[1]", HF_EFORMAT, "not a JSON object");
	parse("{\"model_type\":", HF_EFORMAT, "invalid JSON");
}

static void test_missing_file_is_named(void **state)
{
	struct hf_err err = { 0 };
	struct hf_config *c;

	assert_int_equal(hf_config_load(&c, "/nonexistent/dir/config.json",
					&err), HF_EIO);
	assert_null(c);
	assert_non_null(strstr(err.msg, "/nonexistent/dir/config.json"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_fixture_config),
		cmocka_unit_test(test_family_specific_keys),
		cmocka_unit_test(test_eos_list_dtype_and_labels),
		cmocka_unit_test(test_rope_parameters_and_text_config),
		cmocka_unit_test(test_missing_and_mistyped_keys_are_named),
		cmocka_unit_test(test_missing_file_is_named),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
