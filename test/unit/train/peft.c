/* test/unit/train/peft.c: PEFT adapters (lib/train/peft.c) against
 * docs/peft-lora.md: the module names each fixture architecture has in
 * transformers, target matching (lists, suffixes, regexes, all-linear,
 * defaults, layers_to_transform, exclude_modules, rank_pattern), the
 * adapter_config.json text PEFT writes, and the keys, shapes, dtypes and
 * metadata of the adapter_model.safetensors we write, read back. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/json.h"
#include "model/adapter.h"
#include "model/model.h"
#include "st/st.h"
#include "train/lora.h"
#include "train/peft.h"

static const char *fixture(const char *name)
{
	static char buf[1024];
	const char *e = getenv("HF_FIXTURES");

	snprintf(buf, sizeof(buf), "%s/models/%s", e ? e : "test/fixtures", name);
	return buf;
}

struct fx {
	struct hf_model *m;
	struct hf_lin_module *mods;
	size_t n;
};

static void fx_open(struct fx *f, const char *name)
{
	struct hf_err err = { 0 };

	if (hf_model_open(&f->m, fixture(name), NULL, 1, &err) ||
	    hf_model_modules(f->m, &f->mods, &f->n, &err))
		fail_msg("%s: %s", name, err.msg);
}

static void fx_close(struct fx *f)
{
	free(f->mods);
	hf_model_free(f->m);
}

static const struct hf_lin_module *find(const struct fx *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->mods[i].name, name))
			return &f->mods[i];
	return NULL;
}

static void want_mod(const struct fx *f, const char *name, size_t in,
		     size_t out, int conv1d, int head)
{
	const struct hf_lin_module *m = find(f, name);

	if (!m)
		fail_msg("no module '%s' (first is '%s')", name,
			 f->n ? f->mods[0].name : "");
	if (m->in != in || m->out != out || m->conv1d != conv1d ||
	    m->head != head)
		fail_msg("%s: in %zu out %zu conv1d %d head %d, want %zu %zu %d %d",
			 name, m->in, m->out, m->conv1d, m->head, in, out,
			 conv1d, head);
}

/* Module names as transformers' classes name them (named_modules()). */
static void test_module_names_per_architecture(void **state)
{
	struct fx f;

	(void)state;
	fx_open(&f, "llama-tiny");	/* LlamaForCausalLM, GQA 4/2 x 16 */
	assert_int_equal(f.n, 2 * 7 + 1);
	want_mod(&f, "model.layers.0.self_attn.q_proj", 64, 64, 0, 0);
	want_mod(&f, "model.layers.0.self_attn.k_proj", 64, 32, 0, 0);
	want_mod(&f, "model.layers.1.self_attn.v_proj", 64, 32, 0, 0);
	want_mod(&f, "model.layers.1.self_attn.o_proj", 64, 64, 0, 0);
	want_mod(&f, "model.layers.0.mlp.gate_proj", 64, 128, 0, 0);
	want_mod(&f, "model.layers.0.mlp.up_proj", 64, 128, 0, 0);
	want_mod(&f, "model.layers.1.mlp.down_proj", 128, 64, 0, 0);
	want_mod(&f, "lm_head", 64, 512, 0, 1);
	assert_string_equal(f.mods[0].name, "model.layers.0.self_attn.q_proj");
	assert_string_equal(f.mods[0].tensor, "model.layers.0.self_attn.q_proj.weight");
	assert_string_equal(find(&f, "lm_head")->tensor, "");	/* tied */
	assert_int_equal(find(&f, "model.layers.1.mlp.up_proj")->layer, 1);
	fx_close(&f);

	fx_open(&f, "gpt2-tiny");	/* original names, no "transformer." */
	assert_int_equal(f.n, 2 * 4 + 1);
	want_mod(&f, "transformer.h.0.attn.c_attn", 64, 192, 1, 0);
	want_mod(&f, "transformer.h.0.attn.c_proj", 64, 64, 1, 0);
	want_mod(&f, "transformer.h.1.mlp.c_fc", 64, 256, 1, 0);
	want_mod(&f, "transformer.h.1.mlp.c_proj", 256, 64, 1, 0);
	want_mod(&f, "lm_head", 64, 256, 0, 1);
	assert_string_equal(find(&f, "transformer.h.0.attn.c_attn")->tensor,
			    "h.0.attn.c_attn.weight");
	fx_close(&f);

	fx_open(&f, "phi3-tiny");	/* fused qkv_proj and gate_up_proj */
	want_mod(&f, "model.layers.0.self_attn.qkv_proj", 48, 48 * 3, 0, 0);
	want_mod(&f, "model.layers.0.mlp.gate_up_proj", 48,
		 2 * (find(&f, "model.layers.0.mlp.down_proj")->in), 0, 0);
	assert_null(find(&f, "model.layers.0.self_attn.q_proj"));
	fx_close(&f);

	fx_open(&f, "mixtral-tiny");	/* router and experts are Linears */
	want_mod(&f, "model.layers.0.block_sparse_moe.gate", 32, 4, 0, 0);
	assert_non_null(find(&f, "model.layers.1.block_sparse_moe.experts.3.w2"));
	fx_close(&f);

	/* BertForMaskedLM: no pooler module (add_pooling_layer=False) though
	 * the file has its weights; the decoder is the output head */
	fx_open(&f, "bert-tiny");
	want_mod(&f, "bert.encoder.layer.0.attention.self.query", 64, 64, 0, 0);
	want_mod(&f, "bert.encoder.layer.1.attention.self.key", 64, 64, 0, 0);
	want_mod(&f, "bert.encoder.layer.0.attention.self.value", 64, 64, 0, 0);
	want_mod(&f, "bert.encoder.layer.0.attention.output.dense", 64, 64, 0, 0);
	want_mod(&f, "bert.encoder.layer.0.intermediate.dense", 64,
		 find(&f, "bert.encoder.layer.0.output.dense")->in, 0, 0);
	want_mod(&f, "cls.predictions.transform.dense", 64, 64, 0, 0);
	want_mod(&f, "cls.predictions.decoder", 64, 512, 0, 1);
	assert_null(find(&f, "bert.pooler.dense"));
	fx_close(&f);

	fx_open(&f, "roberta-tiny");
	want_mod(&f, "roberta.encoder.layer.0.attention.self.query", 48, 48, 0, 0);
	want_mod(&f, "lm_head.dense", 48, 48, 0, 0);
	want_mod(&f, "lm_head.decoder", 48, 320, 0, 1);
	fx_close(&f);

	fx_open(&f, "distilbert-tiny");
	want_mod(&f, "distilbert.transformer.layer.2.attention.q_lin", 64, 64, 0, 0);
	want_mod(&f, "distilbert.transformer.layer.0.attention.out_lin", 64, 64, 0, 0);
	assert_non_null(find(&f, "distilbert.transformer.layer.0.ffn.lin1"));
	want_mod(&f, "vocab_transform", 64, 64, 0, 0);
	want_mod(&f, "vocab_projector", 64, 512, 0, 1);
	fx_close(&f);
}

/* The targets of config c (its fields set by the caller) on f. */
static size_t targets(const struct fx *f, const struct hf_peft_config *c,
		      struct hf_peft_target **t, struct hf_err *err)
{
	size_t n = 0;

	*t = NULL;
	if (hf_peft_targets(c, hf_model_config(f->m)->model_type, f->mods,
			    f->n, t, &n, "test", err))
		return 0;
	return n;
}

static char *names[8];

static void set_targets(struct hf_peft_config *c, int n, ...)
{
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < n; i++)
		names[i] = va_arg(ap, char *);
	va_end(ap);
	c->targets = names;
	c->ntargets = (size_t)n;
}

static void test_target_matching_as_peft(void **state)
{
	struct hf_peft_config c;
	struct hf_err err = { 0 };
	struct hf_peft_target *t;
	struct fx f;
	int64_t layer1 = 1;
	size_t n;

	(void)state;
	fx_open(&f, "llama-tiny");
	assert_int_equal(hf_peft_config_init(&c, &err), 0);

	/* null: PEFT's llama default q_proj, v_proj */
	n = targets(&f, &c, &t, &err);
	assert_int_equal(n, 4);
	assert_string_equal(f.mods[t[0].module].name, "model.layers.0.self_attn.q_proj");
	assert_string_equal(f.mods[t[1].module].name, "model.layers.0.self_attn.v_proj");
	assert_float_equal(t[0].scale, 1.0f, 0);	/* alpha 8 / r 8 */
	free(t);

	/* all-linear: everything but lm_head */
	c.all_linear = 1;
	n = targets(&f, &c, &t, &err);
	assert_int_equal(n, 14);
	for (size_t i = 0; i < n; i++)
		assert_false(f.mods[t[i].module].head);
	free(t);

	/* exclude_modules applies to all-linear's names too */
	set_targets(&c, 0);
	c.targets = NULL;
	{
		char *ex[] = { "k_proj" };

		c.exclude = ex;
		c.nexclude = 1;
		n = targets(&f, &c, &t, &err);
		assert_int_equal(n, 12);
		free(t);
		c.exclude = NULL;
		c.nexclude = 0;
	}
	c.all_linear = 0;

	/* an entry matches the whole name or a suffix after a dot */
	set_targets(&c, 2, "o_proj", "model.layers.1.mlp.down_proj");
	n = targets(&f, &c, &t, &err);
	assert_int_equal(n, 3);
	free(t);
	set_targets(&c, 1, "proj");	/* "q_proj" does not end in ".proj" */
	n = targets(&f, &c, &t, &err);
	assert_int_equal(n, 0);
	assert_int_equal(err.code, HF_ENOTFOUND);
	assert_non_null(strstr(err.msg, "match no module"));
	assert_non_null(strstr(err.msg, "q_proj, k_proj, v_proj, o_proj"));
	hf_err_clear(&err);

	/* layers_to_transform keeps layer 1 (but not whole names) */
	set_targets(&c, 2, "q_proj", "model.layers.0.self_attn.k_proj");
	c.layers = &layer1;
	c.nlayers = 1;
	n = targets(&f, &c, &t, &err);
	assert_int_equal(n, 2);
	assert_string_equal(f.mods[t[0].module].name, "model.layers.0.self_attn.k_proj");
	assert_string_equal(f.mods[t[1].module].name, "model.layers.1.self_attn.q_proj");
	free(t);
	c.layers = NULL;
	c.nlayers = 0;

	/* a string is a regex over the whole name (Python's \d too) */
	c.targets = NULL;
	c.ntargets = 0;
	c.target_regex = ".*\\.layers\\.\\d\\.mlp\\.(gate|up)_proj";
	n = targets(&f, &c, &t, &err);
	assert_int_equal(n, 4);
	free(t);
	c.target_regex = "mlp";	/* must match all of the name */
	n = targets(&f, &c, &t, &err);
	assert_int_equal(n, 0);
	hf_err_clear(&err);
	c.target_regex = NULL;

	/* rank_pattern and alpha_pattern; rslora scaling */
	set_targets(&c, 2, "q_proj", "v_proj");
	json_object_set_new(c.rank_pattern, "model.layers.1.self_attn.q_proj",
			    json_integer(16));
	json_object_set_new(c.alpha_pattern, "v_proj", json_integer(32));
	c.use_rslora = 1;
	n = targets(&f, &c, &t, &err);
	assert_int_equal(n, 4);
	assert_int_equal(t[0].r, 8);
	assert_int_equal(t[2].r, 16);
	assert_float_equal(t[2].scale, 8 / 4.0f, 1e-7);
	assert_float_equal(t[1].alpha, 32, 0);
	assert_float_equal(t[1].scale, (float)(32 / sqrt(8.0)), 1e-6);
	free(t);
	c.targets = NULL;
	c.ntargets = 0;
	hf_peft_config_free(&c);
	fx_close(&f);

	/* all-linear per architecture; defaults of gpt2 and bert; phi3 has
	 * none */
	fx_open(&f, "gpt2-tiny");
	hf_peft_config_init(&c, &err);
	n = targets(&f, &c, &t, &err);
	assert_int_equal(n, 2);
	assert_string_equal(f.mods[t[0].module].name, "transformer.h.0.attn.c_attn");
	free(t);
	c.all_linear = 1;
	assert_int_equal(targets(&f, &c, &t, &err), 8);
	free(t);
	hf_peft_config_free(&c);
	fx_close(&f);

	fx_open(&f, "bert-tiny");
	hf_peft_config_init(&c, &err);
	assert_int_equal(targets(&f, &c, &t, &err), 4);	/* query, value */
	free(t);
	c.all_linear = 1;
	assert_int_equal(targets(&f, &c, &t, &err), 13);
	free(t);
	hf_peft_config_free(&c);
	fx_close(&f);

	fx_open(&f, "phi3-tiny");
	hf_peft_config_init(&c, &err);
	assert_int_equal(targets(&f, &c, &t, &err), 0);
	assert_non_null(strstr(err.msg, "no default for model_type 'phi3'"));
	hf_err_clear(&err);
	hf_peft_config_free(&c);
	fx_close(&f);
}

/* The exact text: keys sorted, 2-space indent, Python's float repr, no
 * final newline. */
static void test_config_text_is_peft_json_dumps(void **state)
{
	struct hf_peft_config c, back;
	struct hf_err err = { 0 };
	char *s, path[] = "/tmp/hf-peft-cfg-XXXXXX";
	int fd;

	(void)state;
	assert_int_equal(hf_peft_config_init(&c, &err), 0);
	c.r = 16;
	c.alpha = 32;
	c.dropout = 0.05;
	set_targets(&c, 2, "q_proj", "v_proj");
	c.base_model = strdup("meta-llama/Llama-3.2-1B");
	assert_int_equal(hf_peft_config_dump(&c, &s, &err), 0);
	assert_true(!strncmp(s, "{\n  \"alora_invocation_tokens\": null,\n"
			     "  \"alpha_pattern\": {},\n", 60));
	assert_non_null(strstr(s, "\n  \"base_model_name_or_path\": "
			       "\"meta-llama/Llama-3.2-1B\",\n"));
	assert_non_null(strstr(s, "\n  \"bias\": \"none\",\n"));
	assert_non_null(strstr(s, "\n  \"fan_in_fan_out\": false,\n"));
	assert_non_null(strstr(s, "\n  \"inference_mode\": true,\n"));
	assert_non_null(strstr(s, "\n  \"init_lora_weights\": true,\n"));
	assert_non_null(strstr(s, "\n  \"layers_to_transform\": null,\n"));
	assert_non_null(strstr(s, "\n  \"lora_alpha\": 32,\n"));
	assert_non_null(strstr(s, "\n  \"lora_dropout\": 0.05,\n"));
	assert_non_null(strstr(s, "\n  \"modules_to_save\": null,\n"));
	assert_non_null(strstr(s, "\n  \"peft_type\": \"LORA\",\n"));
	assert_non_null(strstr(s, "\n  \"r\": 16,\n"));
	assert_non_null(strstr(s, "\n  \"rank_pattern\": {},\n"));
	assert_non_null(strstr(s, "\n  \"revision\": null,\n"));
	assert_non_null(strstr(s, "\n  \"target_modules\": [\n    \"q_proj\",\n"
			       "    \"v_proj\"\n  ],\n"));
	assert_non_null(strstr(s, "\n  \"task_type\": \"CAUSAL_LM\",\n"));
	assert_non_null(strstr(s, "\n  \"use_dora\": false,\n"));
	assert_non_null(strstr(s, "\n  \"use_rslora\": false\n}"));
	assert_int_equal(s[strlen(s) - 1], '}');
	/* sorted */
	{
		const char *p = s;
		char key[64], prev[64] = "";

		while ((p = strstr(p, "\n  \""))) {
			sscanf(p + 4, "%63[^\"]", key);
			assert_true(strcmp(prev, key) < 0);
			memcpy(prev, key, sizeof(prev));
			p += 4;
		}
	}
	free(s);
	/* Python's repr of other floats */
	c.dropout = 1e-05;
	hf_peft_config_dump(&c, &s, &err);
	assert_non_null(strstr(s, "\"lora_dropout\": 1e-05,"));
	free(s);
	c.dropout = 0;
	c.alpha = 0.5;
	hf_peft_config_dump(&c, &s, &err);
	assert_non_null(strstr(s, "\"lora_dropout\": 0.0,"));
	assert_non_null(strstr(s, "\"lora_alpha\": 0.5,"));
	free(s);

	/* written and read back */
	c.dropout = 0.1;
	fd = mkstemp(path);
	close(fd);
	assert_int_equal(hf_peft_config_write(&c, path, &err), 0);
	assert_int_equal(hf_peft_config_load(&back, path, &err), 0);
	assert_int_equal(back.r, 16);
	assert_float_equal(back.alpha, 0.5, 0);
	assert_float_equal(back.dropout, 0.1, 0);
	assert_int_equal(back.ntargets, 2);
	assert_string_equal(back.targets[1], "v_proj");
	assert_string_equal(back.base_model, "meta-llama/Llama-3.2-1B");
	assert_string_equal(back.task_type, "CAUSAL_LM");
	hf_peft_config_free(&back);
	unlink(path);
	c.targets = NULL;
	c.ntargets = 0;
	hf_peft_config_free(&c);
}

static void test_config_errors_name_the_file_and_key(void **state)
{
	struct hf_peft_config c;
	struct hf_err err = { 0 };
	char path[] = "/tmp/hf-peft-bad-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	(void)state;
	fputs("{\"peft_type\": \"IA3\", \"r\": 8}", f);
	fclose(f);
	assert_int_equal(hf_peft_config_load(&c, path, &err), HF_EUNSUPPORTED);
	assert_non_null(strstr(err.msg, path));
	assert_non_null(strstr(err.msg, "peft_type 'IA3'"));
	f = fopen(path, "w");
	fputs("{\"peft_type\": \"LORA\", \"target_modules\": 3}", f);
	fclose(f);
	hf_err_clear(&err);
	assert_int_equal(hf_peft_config_load(&c, path, &err), HF_EFORMAT);
	assert_non_null(strstr(err.msg, "'target_modules'"));
	f = fopen(path, "w");
	fputs("{\"peft_type\": \"LORA\", \"r\": 0}", f);
	fclose(f);
	hf_err_clear(&err);
	assert_int_equal(hf_peft_config_load(&c, path, &err), HF_EFORMAT);
	assert_non_null(strstr(err.msg, "r 0"));
	unlink(path);
}

/* Save an all-linear adapter of fixture name with PEFT's init (B made
 * non-zero), check every key, shape, dtype against the doc, and read it
 * back through hf_peft_deltas. */
static void save_and_check(const char *name, const char *first_a,
			   int64_t a_in, const char *first_b, int64_t b_out)
{
	struct hf_err err = { 0 };
	struct hf_peft_config c;
	struct hf_peft_target *t;
	struct hf_peft_tensors *ts;
	struct hf_peft_delta *d;
	struct hf_peft *p;
	struct hf_st *st;
	char dir[] = "/tmp/hf-peft-ad-XXXXXX", path[600];
	const struct hf_tensor *ta;
	size_t n, nd;
	struct fx f;

	fx_open(&f, name);
	assert_non_null(mkdtemp(dir));
	hf_peft_config_init(&c, &err);
	c.all_linear = 1;
	c.r = 4;
	c.alpha = 8;
	c.fan_in_fan_out = !strcmp(name, "gpt2-tiny");
	n = targets(&f, &c, &t, &err);
	assert_true(n > 0);
	ts = calloc(n, sizeof(*ts));
	for (size_t i = 0; i < n; i++) {
		const struct hf_lin_module *m = &f.mods[t[i].module];
		float *A = malloc(4 * m->in * sizeof(float));
		float *B = malloc(m->out * 4 * sizeof(float));

		hf_lora_init(A, B, 4, m->in, m->out, 7 + i);
		for (size_t k = 0; k < m->out * 4; k++)
			B[k] = 0.01f * (float)(k % 7);
		ts[i] = (struct hf_peft_tensors){ m->name, A, B, 4, m->in, m->out };
	}
	assert_int_equal(hf_peft_save(dir, &c, ts, n, &err), 0);

	snprintf(path, sizeof(path), "%s/adapter_model.safetensors", dir);
	assert_int_equal(hf_st_open(&st, path, &err), 0);
	assert_int_equal(hf_st_count(st), 2 * n);
	assert_string_equal(hf_st_meta_get(st, "format"), "pt");
	ta = hf_st_get(st, first_a);
	if (!ta)
		fail_msg("%s: no tensor '%s'", name, first_a);
	assert_int_equal(ta->dtype, HF_DTYPE_F32);
	assert_int_equal(ta->ndim, 2);
	assert_int_equal(ta->shape[0], 4);
	assert_int_equal(ta->shape[1], a_in);
	ta = hf_st_get(st, first_b);
	if (!ta)
		fail_msg("%s: no tensor '%s'", name, first_b);
	assert_int_equal(ta->dtype, HF_DTYPE_F32);
	assert_int_equal(ta->shape[0], b_out);
	assert_int_equal(ta->shape[1], 4);
	for (size_t i = 0; i < hf_st_count(st); i++) {
		const char *k = hf_st_tensor(st, i)->name;
		size_t l = strlen(k);

		assert_true(!strncmp(k, "base_model.model.", 17));
		assert_true(!strcmp(k + l - 14, ".lora_A.weight") ||
			    !strcmp(k + l - 14, ".lora_B.weight"));
		assert_null(strstr(k, ".default"));
	}
	hf_st_free(st);

	assert_int_equal(hf_peft_open(&p, dir, &err), 0);
	/* all-linear is saved resolved, as the list of full names */
	assert_int_equal(hf_peft_config(p)->all_linear, 0);
	assert_int_equal(hf_peft_config(p)->ntargets, n);
	assert_int_equal(hf_peft_config(p)->fan_in_fan_out, c.fan_in_fan_out);
	if (hf_peft_deltas(p, hf_model_config(f.m)->model_type, f.mods, f.n,
			   &d, &nd, &err))
		fail_msg("%s: %s", name, err.msg);
	assert_int_equal(nd, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(d[i].module, t[i].module);
		assert_float_equal(d[i].scale, 2.0f, 0);
		assert_memory_equal(d[i].A, ts[i].A, 4 * ts[i].in * sizeof(float));
		assert_memory_equal(d[i].B, ts[i].B, 4 * ts[i].out * sizeof(float));
	}
	hf_peft_deltas_free(d, nd);
	hf_peft_free(p);
	for (size_t i = 0; i < n; i++) {
		free((void *)ts[i].A);
		free((void *)ts[i].B);
	}
	free(ts);
	free(t);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
	hf_peft_config_free(&c);
	fx_close(&f);
}

static void test_saved_adapter_has_peft_keys_shapes_dtypes(void **state)
{
	(void)state;
	save_and_check("llama-tiny",
		       "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
		       64, "base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight",
		       32);
	save_and_check("gpt2-tiny",
		       "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight",
		       64, "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight",
		       192);
	save_and_check("phi3-tiny",
		       "base_model.model.model.layers.1.self_attn.qkv_proj.lora_A.weight",
		       48, "base_model.model.model.layers.1.self_attn.qkv_proj.lora_B.weight",
		       144);
	save_and_check("bert-tiny",
		       "base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight",
		       64, "base_model.model.cls.predictions.transform.dense.lora_B.weight",
		       64);
	save_and_check("distilbert-tiny",
		       "base_model.model.distilbert.transformer.layer.0.attention.q_lin.lora_A.weight",
		       64, "base_model.model.vocab_transform.lora_B.weight", 64);
}

/* Unmerged and merged at load give the same logits, which differ from
 * the base's. */
static void test_apply_unmerged_equals_merged(void **state)
{
	struct hf_err err = { 0 };
	struct fx f;
	struct hf_model *m[2];
	float *lg[3];
	int32_t ids[5] = { 5, 9, 100, 33, 7 };
	char dir[] = "/tmp/hf-peft-ap-XXXXXX", cmd[600];
	struct hf_peft_config c;
	struct hf_peft_target *t;
	struct hf_peft_tensors *ts;
	size_t n, V;

	(void)state;
	fx_open(&f, "llama-tiny");
	V = hf_model_vocab(f.m);
	assert_non_null(mkdtemp(dir));
	hf_peft_config_init(&c, &err);
	c.all_linear = 1;
	n = targets(&f, &c, &t, &err);
	ts = calloc(n, sizeof(*ts));
	for (size_t i = 0; i < n; i++) {
		const struct hf_lin_module *md = &f.mods[t[i].module];
		float *A = malloc(8 * md->in * sizeof(float));
		float *B = malloc(md->out * 8 * sizeof(float));

		hf_lora_init(A, B, 8, md->in, md->out, i);
		hf_lora_init(B, NULL, 8, md->out, 0, 100 + i);	/* non-zero */
		ts[i] = (struct hf_peft_tensors){ md->name, A, B, 8, md->in, md->out };
	}
	assert_int_equal(hf_peft_save(dir, &c, ts, n, &err), 0);
	for (int k = 0; k < 3; k++) {
		struct hf_model *mm = k ? NULL : f.m;
		struct hf_kv *kv;
		struct hf_fwd_out o = { 0 };

		if (k) {
			assert_int_equal(hf_model_open(&mm, fixture("llama-tiny"),
						       NULL, 1, &err), 0);
			if (hf_peft_apply(mm, dir, k == 2, &err))
				fail_msg("%s", err.msg);
			m[k - 1] = mm;
		}
		lg[k] = malloc(5 * V * sizeof(float));
		o.logits = lg[k];
		o.all_logits = 1;
		assert_int_equal(hf_kv_new(&kv, mm, 1, 8, &err), 0);
		if (hf_model_forward(mm, kv, ids, NULL, 5, &o, &err))
			fail_msg("%s", err.msg);
		hf_kv_free(kv);
	}
	{
		double dmax = 0, dbase = 0;

		/* plain compares: aarch64 gcc 12 fails (an internal error
		 * in vect_transform_reduction) vectorizing fmax reductions */
		for (size_t i = 0; i < 5 * V; i++) {
			double d = fabs(lg[1][i] - lg[2][i]);
			double b = fabs(lg[0][i] - lg[1][i]);

			if (d > dmax)
				dmax = d;
			if (b > dbase)
				dbase = b;
		}
		/* 1e-4: float32 sums in another order */
		assert_true(dmax < 1e-4);
		assert_true(dbase > 1e-2);
	}
	/* a second adapter on the same modules is refused */
	assert_int_equal(hf_peft_apply(m[0], dir, 0, &err), HF_EINVAL);
	assert_non_null(strstr(err.msg, "has an adapter already"));
	for (int k = 0; k < 3; k++)
		free(lg[k]);
	hf_model_free(m[0]);
	hf_model_free(m[1]);
	for (size_t i = 0; i < n; i++) {
		free((void *)ts[i].A);
		free((void *)ts[i].B);
	}
	free(ts);
	free(t);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	hf_peft_config_free(&c);
	fx_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_module_names_per_architecture),
		cmocka_unit_test(test_target_matching_as_peft),
		cmocka_unit_test(test_config_text_is_peft_json_dumps),
		cmocka_unit_test(test_config_errors_name_the_file_and_key),
		cmocka_unit_test(test_saved_adapter_has_peft_keys_shapes_dtypes),
		cmocka_unit_test(test_apply_unmerged_equals_merged),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
