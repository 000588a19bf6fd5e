/* lib/model/config.c: read config.json (transformers PretrainedConfig and
 * the per-family configuration_*.py defaults) into struct hf_config. */
#include "model/config.h"

#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/json.h"

#define MAX_SIZE ((int64_t)1 << 40)

/* Defaults that differ by family (transformers configuration_*.py). */
static const struct {
	const char *model_type;
	double eps;
	double rope_theta;
} family[] = {
	{ "llama", 1e-6, 10000.0 },
	{ "mistral", 1e-6, 10000.0 },
	{ "mixtral", 1e-5, 1e6 },
	{ "qwen2", 1e-6, 10000.0 },
	{ "qwen3", 1e-6, 10000.0 },
	{ "gemma", 1e-6, 10000.0 },
	{ "gemma2", 1e-6, 10000.0 },
	{ "phi3", 1e-5, 10000.0 },
	{ "gpt2", 1e-5, 10000.0 },
	{ "bert", 1e-12, 10000.0 },
	{ "roberta", 1e-12, 10000.0 },
	{ "distilbert", 1e-12, 10000.0 },	/* nn.LayerNorm(eps=1e-12) */
};

/* The first of keys present (and not null) in obj, or NULL. */
static const char *first_key(const json_t *obj, const char *const *keys)
{
	for (; *keys; keys++) {
		const json_t *v = json_object_get(obj, *keys);

		if (v && !json_is_null(v))
			return *keys;
	}
	return NULL;
}

/* An integer under the first present alias; absent: def, or an error
 * naming the first alias when required. Sizes must be positive. */
static int get_int(const json_t *obj, const char *const *keys, int required,
		   int64_t def, int64_t *out, const char *where,
		   struct hf_err *err)
{
	const char *k = first_key(obj, keys);
	int rc;

	*out = def;
	if (!k) {
		if (required)
			return hf_err_set(err, HF_EFORMAT, "%s: missing key "
					  "'%s'", where, keys[0]);
		return 0;
	}
	if ((rc = hf_json_int(obj, k, def, out, where, err)))
		return rc;
	if (required && *out <= 0)
		return hf_err_set(err, HF_EFORMAT, "%s: key '%s' must be a "
				  "positive integer", where, k);
	if (*out < 0)
		return hf_err_set(err, HF_EFORMAT, "%s: key '%s' must not be "
				  "negative", where, k);
	if (*out > MAX_SIZE)	/* keeps products of sizes in range */
		return hf_err_set(err, HF_ERANGE, "%s: key '%s' is too large "
				  "(%lld)", where, k, (long long)*out);
	return 0;
}

static int get_str(const json_t *obj, const char *const *keys,
		   const char *def, const char **out, const char *where,
		   struct hf_err *err)
{
	const char *k = first_key(obj, keys);

	*out = def;
	if (!k)
		return 0;
	return hf_json_str(obj, k, def, out, where, err);
}

/* A token id: an integer, or (eos) a list of integers. */
static int get_id(const json_t *obj, const char *key, int64_t *out,
		  const char *where, struct hf_err *err)
{
	return hf_json_int(obj, key, -1, out, where, err);
}

static int get_eos(struct hf_config *c, const json_t *obj, const char *where,
		   struct hf_err *err)
{
	const json_t *v = json_object_get(obj, "eos_token_id"), *x;
	size_t i;

	c->n_eos = 0;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		c->eos_token_id[c->n_eos++] = json_integer_value(v);
		return 0;
	}
	if (!json_is_array(v))
		return hf_err_set(err, HF_EFORMAT, "%s: key 'eos_token_id' "
				  "must be an integer or a list of integers",
				  where);
	json_array_foreach(v, i, x) {
		if (!json_is_integer(x))
			return hf_err_set(err, HF_EFORMAT, "%s: "
					  "eos_token_id[%zu] must be an "
					  "integer", where, i);
		if (c->n_eos == HF_CONFIG_MAX_EOS)
			return hf_err_set(err, HF_EUNSUPPORTED, "%s: more than "
					  "%d eos_token_id values", where,
					  HF_CONFIG_MAX_EOS);
		c->eos_token_id[c->n_eos++] = json_integer_value(x);
	}
	return 0;
}

static int get_rope(struct hf_config *c, const json_t *obj, const char *where,
		    struct hf_err *err)
{
	static const char *const type_keys[] = { "rope_type", "type", NULL };
	struct hf_rope_scaling *r = &c->rope_scaling;
	const json_t *rs = json_object_get(obj, "rope_scaling");
	const json_t *rp = json_object_get(obj, "rope_parameters");
	char w[512];
	int rc;

	r->type = "";
	if (rs && json_is_null(rs))
		rs = NULL;
	if (rp && json_is_null(rp))
		rp = NULL;
	if (rs && !json_is_object(rs))
		return hf_err_set(err, HF_EFORMAT, "%s: key 'rope_scaling' "
				  "must be an object", where);
	if (rp && !json_is_object(rp))
		return hf_err_set(err, HF_EFORMAT, "%s: key 'rope_parameters' "
				  "must be an object", where);
	/* transformers 5 moved rope_theta and the scaling into
	 * rope_parameters; "default" there means no scaling */
	if (rp && !rs) {
		if ((rc = hf_json_num(rp, "rope_theta", c->rope_theta,
				      &c->rope_theta, where, err)))
			return rc;
		rs = rp;
	}
	if (!rs)
		return 0;
	snprintf(w, sizeof(w), "%s: %s", where,
		 rs == rp ? "rope_parameters" : "rope_scaling");
	r->json = rs;
	if ((rc = get_str(rs, type_keys, "", &r->type, w, err)) ||
	    (rc = hf_json_num(rs, "factor", 0, &r->factor, w, err)) ||
	    (rc = hf_json_num(rs, "low_freq_factor", 0, &r->low_freq_factor,
			      w, err)) ||
	    (rc = hf_json_num(rs, "high_freq_factor", 0,
			      &r->high_freq_factor, w, err)) ||
	    (rc = hf_json_int(rs, "original_max_position_embeddings", 0,
			      &r->original_max_position_embeddings, w, err)))
		return rc;
	if (!strcmp(r->type, "default"))
		r->type = "";
	return 0;
}

static int get_labels(struct hf_config *c, const json_t *obj,
		      const char *where, struct hf_err *err)
{
	const json_t *m = json_object_get(obj, "id2label"), *v;
	const char *k;
	int64_t max = -1;

	if (!m || json_is_null(m))
		return 0;
	if (!json_is_object(m))
		return hf_err_set(err, HF_EFORMAT, "%s: key 'id2label' must "
				  "be an object", where);
	json_object_foreach((json_t *)m, k, v) {
		char *end;
		long long id = strtoll(k, &end, 10);

		if (!*k || *end || id < 0 || id >= 1 << 20)
			return hf_err_set(err, HF_EFORMAT, "%s: id2label key "
					  "'%s' is not a label id", where, k);
		if (!json_is_string(v))
			return hf_err_set(err, HF_EFORMAT, "%s: id2label['%s'] "
					  "must be a string", where, k);
		if (id > max)
			max = id;
	}
	c->id2label = calloc((size_t)max + 2, sizeof(*c->id2label));
	if (!c->id2label)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	c->n_labels = (int)(max + 1);
	json_object_foreach((json_t *)m, k, v)
		c->id2label[strtoll(k, NULL, 10)] = json_string_value(v);
	return 0;
}

static int fill(struct hf_config *c, const char *where, struct hf_err *err)
{
	static const char *const k_type[] = { "model_type", NULL };
	static const char *const k_vocab[] = { "vocab_size", NULL };
	static const char *const k_hidden[] = { "hidden_size", "n_embd",
						"dim", "d_model", NULL };
	static const char *const k_inter[] = { "intermediate_size",
					       "n_inner", "hidden_dim",
					       "ffn_dim", NULL };
	static const char *const k_layers[] = { "num_hidden_layers",
						"n_layer", "n_layers", NULL };
	static const char *const k_heads[] = { "num_attention_heads",
					       "n_head", "n_heads", NULL };
	static const char *const k_kv[] = { "num_key_value_heads", NULL };
	static const char *const k_hd[] = { "head_dim", NULL };
	static const char *const k_pos[] = { "max_position_embeddings",
					     "n_positions", NULL };
	static const char *const k_eps[] = { "rms_norm_eps",
					     "layer_norm_eps",
					     "layer_norm_epsilon", NULL };
	static const char *const k_act[] = { "hidden_activation",
					     "hidden_act",
					     "activation_function",
					     "activation", NULL };
	static const char *const k_dtype[] = { "torch_dtype", "dtype", NULL };
	static const char *const k_tvs[] = { "type_vocab_size", NULL };
	static const char *const k_sw[] = { "sliding_window", NULL };
	static const char *const k_nle[] = { "num_local_experts",
					     "num_experts", NULL };
	static const char *const k_ept[] = { "num_experts_per_tok", NULL };
	const json_t *root = c->json, *t, *arch;
	const char *ek;
	double eps = 1e-5;
	int rc;

	if (!json_is_object(root))
		return hf_err_set(err, HF_EFORMAT, "%s: not a JSON object",
				  where);
	if (!first_key(root, k_type))
		return hf_err_set(err, HF_EFORMAT, "%s: missing key "
				  "'model_type'", where);
	if ((rc = hf_json_str(root, "model_type", "", &c->model_type, where,
			      err)))
		return rc;
	arch = json_object_get(root, "architectures");
	c->architecture = "";
	if (arch && !json_is_null(arch)) {
		if (!json_is_array(arch) || (json_array_size(arch) &&
		    !json_is_string(json_array_get(arch, 0))))
			return hf_err_set(err, HF_EFORMAT, "%s: key "
					  "'architectures' must be a list of "
					  "strings", where);
		if (json_array_size(arch))
			c->architecture = json_string_value(
				json_array_get(arch, 0));
	}
	/* multimodal configs keep the language model under text_config */
	t = root;
	if (!first_key(root, k_hidden) &&
	    json_is_object(json_object_get(root, "text_config")))
		t = json_object_get(root, "text_config");
	c->text = t;

	for (size_t i = 0; i < sizeof(family) / sizeof(family[0]); i++)
		if (!strcmp(family[i].model_type, c->model_type)) {
			eps = family[i].eps;
			c->rope_theta = family[i].rope_theta;
		}
	if (!c->rope_theta)
		c->rope_theta = 10000.0;

	if ((rc = get_int(t, k_vocab, 1, 0, &c->vocab_size, where, err)) ||
	    (rc = get_int(t, k_hidden, 1, 0, &c->hidden_size, where, err)) ||
	    (rc = get_int(t, k_layers, 1, 0, &c->num_hidden_layers, where,
			  err)) ||
	    (rc = get_int(t, k_heads, 1, 0, &c->num_attention_heads, where,
			  err)) ||
	    (rc = get_int(t, k_inter, 0, 4 * c->hidden_size,
			  &c->intermediate_size, where, err)) ||
	    (rc = get_int(t, k_kv, 0, c->num_attention_heads,
			  &c->num_key_value_heads, where, err)) ||
	    (rc = get_int(t, k_hd, 0, 0, &c->head_dim, where, err)) ||
	    (rc = get_int(t, k_pos, 0, 0, &c->max_position_embeddings, where,
			  err)) ||
	    (rc = get_int(t, k_tvs, 0, 0, &c->type_vocab_size, where,
			  err)) ||
	    (rc = get_int(t, k_sw, 0, 0, &c->sliding_window, where, err)) ||
	    (rc = get_int(t, k_nle, 0, 0, &c->num_local_experts, where,
			  err)) ||
	    (rc = get_int(t, k_ept, 0, 0, &c->num_experts_per_tok, where,
			  err)))
		return rc;
	if (!c->head_dim) {
		if (c->hidden_size % c->num_attention_heads)
			return hf_err_set(err, HF_EFORMAT, "%s: hidden size "
					  "%lld is not a multiple of %lld "
					  "heads and key 'head_dim' is "
					  "missing", where,
					  (long long)c->hidden_size,
					  (long long)c->num_attention_heads);
		c->head_dim = c->hidden_size / c->num_attention_heads;
	}
	if (!c->num_key_value_heads ||
	    c->num_attention_heads % c->num_key_value_heads)
		return hf_err_set(err, HF_EFORMAT, "%s: key "
				  "'num_key_value_heads' (%lld) must divide "
				  "num_attention_heads (%lld)", where,
				  (long long)c->num_key_value_heads,
				  (long long)c->num_attention_heads);

	ek = first_key(t, k_eps);
	c->norm_eps_key = ek ? ek : "";
	c->norm_eps = eps;
	if (ek && (rc = hf_json_num(t, ek, eps, &c->norm_eps, where, err)))
		return rc;
	if ((rc = hf_json_num(t, "rope_theta", c->rope_theta, &c->rope_theta,
			      where, err)) ||
	    (rc = get_rope(c, t, where, err)))
		return rc;

	if ((rc = hf_json_bool(root, "tie_word_embeddings", 1,
			       &c->tie_word_embeddings, where, err)) ||
	    (rc = get_str(t, k_act, "", &c->hidden_act, where, err)) ||
	    (rc = get_str(root, k_dtype, "", &c->torch_dtype, where, err)) ||
	    (rc = hf_json_bool(t, "attention_bias", 0, &c->attention_bias,
			       where, err)) ||
	    (rc = hf_json_bool(t, "use_sliding_window",
			       c->sliding_window > 0 &&
			       strcmp(c->model_type, "qwen2") &&
			       strcmp(c->model_type, "qwen3"),
			       &c->use_sliding_window, where, err)))
		return rc;
	if ((rc = get_id(root, "bos_token_id", &c->bos_token_id, where,
			 err)) ||
	    (rc = get_id(root, "pad_token_id", &c->pad_token_id, where,
			 err)) ||
	    (rc = get_eos(c, root, where, err)) ||
	    (rc = get_labels(c, root, where, err)))
		return rc;
	return 0;
}

int hf_config_parse(struct hf_config **out, const char *buf, size_t len,
		    const char *name, struct hf_err *err)
{
	struct hf_config *c = calloc(1, sizeof(*c));
	int rc;

	*out = NULL;
	if (!c)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if ((rc = hf_json_load_buf(&c->json, buf, len, name, err)) ||
	    (rc = fill(c, name, err))) {
		hf_config_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

int hf_config_load(struct hf_config **out, const char *path,
		   struct hf_err *err)
{
	char *file = hf_dir_exists(path) ? hf_path_join(path, "config.json")
					 : strdup(path);
	char *buf = NULL;
	size_t len;
	int rc;

	*out = NULL;
	if (!file)
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	if (!(rc = hf_file_read(&buf, &len, file, err)))
		rc = hf_config_parse(out, buf, len, file, err);
	free(buf);
	free(file);
	return rc;
}

void hf_config_free(struct hf_config *c)
{
	if (!c)
		return;
	free(c->id2label);
	json_decref(c->json);
	free(c);
}

int hf_config_is_eos(const struct hf_config *c, int64_t id)
{
	for (int i = 0; i < c->n_eos; i++)
		if (c->eos_token_id[i] == id)
			return 1;
	return 0;
}
