/* lib/model/config.h: config.json parsed into the hyperparameters the
 * models use, under one set of names whatever the family calls them. */
#ifndef HF_MODEL_CONFIG_H
#define HF_MODEL_CONFIG_H

#include <jansson.h>
#include <stdint.h>

#include "core/err.h"

#define HF_CONFIG_MAX_EOS 16

/* rope_scaling (or rope_parameters), transformers' names. type is "" when
 * config.json has none; numbers the config does not give are 0. */
struct hf_rope_scaling {
	const char *type;		/* rope_type, else type: "llama3",
					 * "linear", "dynamic", "yarn" ... */
	double factor;
	double low_freq_factor;
	double high_freq_factor;
	int64_t original_max_position_embeddings;
	const json_t *json;		/* the whole object, or NULL */
};

/* Strings and json_t pointers are borrowed from json, valid until
 * hf_config_free(). Integers that config.json does not give and that have
 * no default are -1 (token ids) or 0 (sizes). */
struct hf_config {
	json_t *json;			/* the whole file: anything else */
	const json_t *text;		/* where the numbers were read: json,
					 * or its "text_config" */
	const char *model_type;
	const char *architecture;	/* architectures[0], or "" */

	int64_t vocab_size;
	int64_t hidden_size;		/* n_embd, dim */
	int64_t intermediate_size;	/* n_inner (default 4 * n_embd),
					 * hidden_dim */
	int64_t num_hidden_layers;	/* n_layer, n_layers */
	int64_t num_attention_heads;	/* n_head, n_heads */
	int64_t num_key_value_heads;	/* default num_attention_heads */
	int64_t head_dim;		/* default hidden / heads */
	int64_t max_position_embeddings;/* n_positions */
	int64_t type_vocab_size;	/* BERT token types; 0 if absent */

	/* rms_norm_eps, else layer_norm_eps, else layer_norm_epsilon;
	 * norm_eps_key says which ("" and 1e-5 if none was given). */
	double norm_eps;
	const char *norm_eps_key;

	double rope_theta;		/* default 10000 */
	struct hf_rope_scaling rope_scaling;

	int tie_word_embeddings;	/* default 1, as transformers */
	const char *hidden_act;		/* hidden_activation, hidden_act,
					 * activation_function, activation */
	int64_t bos_token_id;
	int64_t pad_token_id;
	int64_t eos_token_id[HF_CONFIG_MAX_EOS];	/* int or list */
	int n_eos;

	int64_t sliding_window;		/* 0: none */
	/* default 1 if sliding_window is set, except for qwen2/qwen3
	 * (their use_sliding_window defaults to false) */
	int use_sliding_window;
	int attention_bias;		/* default 0 */
	const char *torch_dtype;	/* torch_dtype or dtype, or "" */

	int64_t num_local_experts;	/* 0: dense */
	int64_t num_experts_per_tok;

	/* id2label: labels[i] for id i (NULL where the map skips an id). */
	int n_labels;
	const char **id2label;
};

/* Load path (a config.json, or a directory holding one). Missing required
 * keys (vocab, hidden size, layers, heads) or keys of the wrong type are
 * HF_EFORMAT errors naming the file and the key. */
int hf_config_load(struct hf_config **out, const char *path,
		   struct hf_err *err);

/* Parse JSON text (len bytes); name is used in errors. */
int hf_config_parse(struct hf_config **out, const char *buf, size_t len,
		    const char *name, struct hf_err *err);

void hf_config_free(struct hf_config *c);	/* NULL is fine */

/* 1 if id is one of the eos ids. */
int hf_config_is_eos(const struct hf_config *c, int64_t id);

#endif
