/* lib/export/families.c: the family tables (families.h) and the name
 * matching both directions share. Sources: llama.cpp conversion/
 * (LlamaModel, Qwen2Model, Qwen3Model, GemmaModel, Phi3MiniModel,
 * GPT2Model, BertModel, RobertaModel, DistilBertModel) and
 * gguf-py/gguf/tensor_mapping.py. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "export/families.h"
#include "export/gguf.h"
#include "model/config.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- tensors ---- */

/* LlamaModel: llama, mistral and mixtral (all written as "llama"). */
static const struct hf_fam_tensor llama_tensors[] = {
	{ "model.embed_tokens", "token_embd", 0 },
	{ "model.norm", "output_norm", 0 },
	{ "lm_head", "output", 0 },
	{ "model.layers.{N}.input_layernorm", "blk.{N}.attn_norm", 0 },
	{ "model.layers.{N}.self_attn.q_proj", "blk.{N}.attn_q",
	  HF_FAM_PERMUTE_Q },
	{ "model.layers.{N}.self_attn.k_proj", "blk.{N}.attn_k",
	  HF_FAM_PERMUTE_K },
	{ "model.layers.{N}.self_attn.v_proj", "blk.{N}.attn_v", 0 },
	{ "model.layers.{N}.self_attn.o_proj", "blk.{N}.attn_output", 0 },
	{ "model.layers.{N}.post_attention_layernorm", "blk.{N}.ffn_norm", 0 },
	{ "model.layers.{N}.mlp.gate_proj", "blk.{N}.ffn_gate", 0 },
	{ "model.layers.{N}.mlp.up_proj", "blk.{N}.ffn_up", 0 },
	{ "model.layers.{N}.mlp.down_proj", "blk.{N}.ffn_down", 0 },
	/* Mixtral: the router, and w1 (gate), w2 (down), w3 (up) stacked */
	{ "model.layers.{N}.block_sparse_moe.gate", "blk.{N}.ffn_gate_inp", 0 },
	{ "model.layers.{N}.block_sparse_moe.experts.{E}.w1",
	  "blk.{N}.ffn_gate_exps", HF_FAM_EXPERTS },
	{ "model.layers.{N}.block_sparse_moe.experts.{E}.w2",
	  "blk.{N}.ffn_down_exps", HF_FAM_EXPERTS },
	{ "model.layers.{N}.block_sparse_moe.experts.{E}.w3",
	  "blk.{N}.ffn_up_exps", HF_FAM_EXPERTS },
};

/* Qwen2Model: llama's names, NEOX RoPE (no permutation), q/k/v biases
 * through the suffix. */
static const struct hf_fam_tensor qwen2_tensors[] = {
	{ "model.embed_tokens", "token_embd", 0 },
	{ "model.norm", "output_norm", 0 },
	{ "lm_head", "output", 0 },
	{ "model.layers.{N}.input_layernorm", "blk.{N}.attn_norm", 0 },
	{ "model.layers.{N}.self_attn.q_proj", "blk.{N}.attn_q", 0 },
	{ "model.layers.{N}.self_attn.k_proj", "blk.{N}.attn_k", 0 },
	{ "model.layers.{N}.self_attn.v_proj", "blk.{N}.attn_v", 0 },
	{ "model.layers.{N}.self_attn.o_proj", "blk.{N}.attn_output", 0 },
	{ "model.layers.{N}.post_attention_layernorm", "blk.{N}.ffn_norm", 0 },
	{ "model.layers.{N}.mlp.gate_proj", "blk.{N}.ffn_gate", 0 },
	{ "model.layers.{N}.mlp.up_proj", "blk.{N}.ffn_up", 0 },
	{ "model.layers.{N}.mlp.down_proj", "blk.{N}.ffn_down", 0 },
};

/* Qwen3Model: Qwen2's plus the per-head q/k RMSNorms. */
static const struct hf_fam_tensor qwen3_tensors[] = {
	{ "model.embed_tokens", "token_embd", 0 },
	{ "model.norm", "output_norm", 0 },
	{ "lm_head", "output", 0 },
	{ "model.layers.{N}.input_layernorm", "blk.{N}.attn_norm", 0 },
	{ "model.layers.{N}.self_attn.q_proj", "blk.{N}.attn_q", 0 },
	{ "model.layers.{N}.self_attn.k_proj", "blk.{N}.attn_k", 0 },
	{ "model.layers.{N}.self_attn.v_proj", "blk.{N}.attn_v", 0 },
	{ "model.layers.{N}.self_attn.o_proj", "blk.{N}.attn_output", 0 },
	{ "model.layers.{N}.self_attn.q_norm", "blk.{N}.attn_q_norm", 0 },
	{ "model.layers.{N}.self_attn.k_norm", "blk.{N}.attn_k_norm", 0 },
	{ "model.layers.{N}.post_attention_layernorm", "blk.{N}.ffn_norm", 0 },
	{ "model.layers.{N}.mlp.gate_proj", "blk.{N}.ffn_gate", 0 },
	{ "model.layers.{N}.mlp.up_proj", "blk.{N}.ffn_up", 0 },
	{ "model.layers.{N}.mlp.down_proj", "blk.{N}.ffn_down", 0 },
};

/* GemmaModel: every *norm.weight stored as w + 1; lm_head dropped. */
static const struct hf_fam_tensor gemma_tensors[] = {
	{ "model.embed_tokens", "token_embd", 0 },
	{ "model.norm", "output_norm", HF_FAM_PLUS_ONE },
	{ "model.layers.{N}.input_layernorm", "blk.{N}.attn_norm",
	  HF_FAM_PLUS_ONE },
	{ "model.layers.{N}.self_attn.q_proj", "blk.{N}.attn_q", 0 },
	{ "model.layers.{N}.self_attn.k_proj", "blk.{N}.attn_k", 0 },
	{ "model.layers.{N}.self_attn.v_proj", "blk.{N}.attn_v", 0 },
	{ "model.layers.{N}.self_attn.o_proj", "blk.{N}.attn_output", 0 },
	{ "model.layers.{N}.post_attention_layernorm", "blk.{N}.ffn_norm",
	  HF_FAM_PLUS_ONE },
	{ "model.layers.{N}.mlp.gate_proj", "blk.{N}.ffn_gate", 0 },
	{ "model.layers.{N}.mlp.up_proj", "blk.{N}.ffn_up", 0 },
	{ "model.layers.{N}.mlp.down_proj", "blk.{N}.ffn_down", 0 },
};

/* Phi3MiniModel: fused qkv_proj (q, k, v rows) and gate_up_proj (gate,
 * up rows) kept fused. */
static const struct hf_fam_tensor phi3_tensors[] = {
	{ "model.embed_tokens", "token_embd", 0 },
	{ "model.norm", "output_norm", 0 },
	{ "lm_head", "output", 0 },
	{ "model.layers.{N}.input_layernorm", "blk.{N}.attn_norm", 0 },
	{ "model.layers.{N}.self_attn.qkv_proj", "blk.{N}.attn_qkv", 0 },
	{ "model.layers.{N}.self_attn.o_proj", "blk.{N}.attn_output", 0 },
	{ "model.layers.{N}.post_attention_layernorm", "blk.{N}.ffn_norm", 0 },
	{ "model.layers.{N}.mlp.gate_up_proj", "blk.{N}.ffn_up", 0 },
	{ "model.layers.{N}.mlp.down_proj", "blk.{N}.ffn_down", 0 },
};

/* GPT2Model: Conv1D weights transposed. */
static const struct hf_fam_tensor gpt2_tensors[] = {
	{ "wte", "token_embd", 0 },
	{ "wpe", "position_embd", 0 },
	{ "ln_f", "output_norm", 0 },
	{ "lm_head", "output", HF_FAM_NO_PREFIX },
	{ "h.{N}.ln_1", "blk.{N}.attn_norm", 0 },
	{ "h.{N}.attn.c_attn", "blk.{N}.attn_qkv", HF_FAM_TRANSPOSE },
	{ "h.{N}.attn.c_proj", "blk.{N}.attn_output", HF_FAM_TRANSPOSE },
	{ "h.{N}.ln_2", "blk.{N}.ffn_norm", 0 },
	{ "h.{N}.mlp.c_fc", "blk.{N}.ffn_up", HF_FAM_TRANSPOSE },
	{ "h.{N}.mlp.c_proj", "blk.{N}.ffn_down", HF_FAM_TRANSPOSE },
};

/* BertModel (and RobertaModel, which only drops position rows). */
#define BERT_LAYER(p)							\
	{ p "{N}.attention.self.query", "blk.{N}.attn_q", 0 },		\
	{ p "{N}.attention.self.key", "blk.{N}.attn_k", 0 },		\
	{ p "{N}.attention.self.value", "blk.{N}.attn_v", 0 },		\
	{ p "{N}.attention.output.dense", "blk.{N}.attn_output", 0 },	\
	{ p "{N}.attention.output.LayerNorm", "blk.{N}.attn_output_norm", 0 }, \
	{ p "{N}.intermediate.dense", "blk.{N}.ffn_up", 0 },		\
	{ p "{N}.output.dense", "blk.{N}.ffn_down", 0 },		\
	{ p "{N}.output.LayerNorm", "blk.{N}.layer_output_norm", 0 }

static const struct hf_fam_tensor bert_tensors[] = {
	{ "embeddings.word_embeddings", "token_embd", 0 },
	{ "embeddings.token_type_embeddings", "token_types", 0 },
	{ "embeddings.position_embeddings", "position_embd", 0 },
	{ "embeddings.LayerNorm", "token_embd_norm", 0 },
	BERT_LAYER("encoder.layer."),
};

static const struct hf_fam_tensor roberta_tensors[] = {
	{ "embeddings.word_embeddings", "token_embd", 0 },
	{ "embeddings.token_type_embeddings", "token_types", 0 },
	{ "embeddings.position_embeddings", "position_embd",
	  HF_FAM_POS_OFFSET },
	{ "embeddings.LayerNorm", "token_embd_norm", 0 },
	BERT_LAYER("encoder.layer."),
};

static const struct hf_fam_tensor distilbert_tensors[] = {
	{ "embeddings.word_embeddings", "token_embd", 0 },
	{ "embeddings.position_embeddings", "position_embd", 0 },
	{ "embeddings.LayerNorm", "token_embd_norm", 0 },
	{ "transformer.layer.{N}.attention.q_lin", "blk.{N}.attn_q", 0 },
	{ "transformer.layer.{N}.attention.k_lin", "blk.{N}.attn_k", 0 },
	{ "transformer.layer.{N}.attention.v_lin", "blk.{N}.attn_v", 0 },
	{ "transformer.layer.{N}.attention.out_lin", "blk.{N}.attn_output", 0 },
	{ "transformer.layer.{N}.sa_layer_norm", "blk.{N}.attn_output_norm", 0 },
	{ "transformer.layer.{N}.ffn.lin1", "blk.{N}.ffn_up", 0 },
	{ "transformer.layer.{N}.ffn.lin2", "blk.{N}.ffn_down", 0 },
	{ "transformer.layer.{N}.output_layer_norm",
	  "blk.{N}.layer_output_norm", 0 },
};

/* ---- dropped tensors ---- */

static const char *const llama_skip[] = {
	"model.layers.{N}.self_attn.rotary_emb.inv_freq", NULL,
};
static const char *const gemma_skip[] = {
	"lm_head.weight", "model.layers.{N}.self_attn.rotary_emb.inv_freq",
	NULL,
};
static const char *const gpt2_skip[] = {
	"h.{N}.attn.bias", "h.{N}.attn.masked_bias", NULL,
};
static const char *const bert_skip[] = {
	"embeddings.position_ids", "pooler.*", "cls.*", NULL,
};
static const char *const roberta_skip[] = {
	"embeddings.position_ids", "pooler.*", "lm_head.*", NULL,
};
static const char *const distilbert_skip[] = {
	"vocab_transform.*", "vocab_layer_norm.*", "vocab_projector.*", NULL,
};

/* ---- prefixes ---- */

static const char *const gpt2_prefixes[] = { "transformer.", "", NULL };
static const char *const bert_prefixes[] = { "bert.", "", NULL };
static const char *const roberta_prefixes[] = { "roberta.", "", NULL };
static const char *const distilbert_prefixes[] = { "distilbert.", "", NULL };

/* ---- metadata ---- */

/* TextModel.set_gguf_parameters, the part every decoder shares. */
#define TEXT_KEYS							\
	{ "block_count", HF_GGUF_U32,					\
	  "num_hidden_layers|n_layers|n_layer|num_layers", HF_FAM_REQUIRED, 0 }, \
	{ "context_length", HF_GGUF_U32,				\
	  "max_position_embeddings|n_ctx|n_positions", HF_FAM_FROM_CONFIG, 0 }, \
	{ "embedding_length", HF_GGUF_U32, "hidden_size|n_embd|dim",	\
	  HF_FAM_FROM_CONFIG, 0 },					\
	{ "feed_forward_length", HF_GGUF_U32,				\
	  "intermediate_size|n_inner|hidden_dim", HF_FAM_FROM_CONFIG, 0 }, \
	{ "attention.head_count", HF_GGUF_U32,				\
	  "num_attention_heads|n_head|n_heads", HF_FAM_FROM_CONFIG, 0 }, \
	{ "attention.head_count_kv", HF_GGUF_U32,			\
	  "num_key_value_heads|n_kv_heads", HF_FAM_FROM_CONFIG, 0 }

#define ROPE_BASE							\
	{ "rope.freq_base", HF_GGUF_F32, "rope_theta|rotary_emb_base",	\
	  HF_FAM_FROM_CONFIG, 0 }
#define RMS_EPS								\
	{ "attention.layer_norm_rms_epsilon", HF_GGUF_F32,		\
	  "rms_norm_eps|norm_eps", HF_FAM_FROM_CONFIG, 0 }
#define LN_EPS								\
	{ "attention.layer_norm_epsilon", HF_GGUF_F32,			\
	  "layer_norm_eps|layer_norm_epsilon|norm_epsilon", HF_FAM_FROM_CONFIG, 0 }
#define EXPERTS								\
	{ "expert_count", HF_GGUF_U32,					\
	  "num_local_experts|num_experts|n_routed_experts", HF_FAM_FROM_CONFIG, 0 }, \
	{ "expert_used_count", HF_GGUF_U32,				\
	  "num_experts_per_tok|num_experts_per_token", HF_FAM_FROM_CONFIG, 0 }
#define HEAD_DIM_KEYS							\
	{ "attention.key_length", HF_GGUF_U32, "head_dim",		\
	  HF_FAM_FROM_CONFIG, 0 },					\
	{ "attention.value_length", HF_GGUF_U32, "head_dim",		\
	  HF_FAM_FROM_CONFIG, 0 }

static const struct hf_fam_key llama_keys[] = {
	TEXT_KEYS, ROPE_BASE, RMS_EPS, EXPERTS, HEAD_DIM_KEYS,
	{ "vocab_size", HF_GGUF_U32, "vocab_size", HF_FAM_REQUIRED, 0 },
	{ "rope.dimension_count", HF_GGUF_U32, "head_dim", HF_FAM_HEAD_DIM,
	  0 },
};

/* Qwen2Model, Qwen3Model: TextModel's keys only. */
static const struct hf_fam_key qwen_keys[] = {
	TEXT_KEYS, ROPE_BASE, RMS_EPS, EXPERTS, HEAD_DIM_KEYS,
};

/* GemmaModel.set_gguf_parameters (its own, not TextModel's). */
static const struct hf_fam_key gemma_keys[] = {
	{ "context_length", HF_GGUF_U32, "max_position_embeddings",
	  HF_FAM_REQUIRED, 0 },
	{ "embedding_length", HF_GGUF_U32, "hidden_size", HF_FAM_REQUIRED, 0 },
	{ "block_count", HF_GGUF_U32, "num_hidden_layers", HF_FAM_REQUIRED, 0 },
	{ "feed_forward_length", HF_GGUF_U32, "intermediate_size",
	  HF_FAM_REQUIRED, 0 },
	{ "attention.head_count", HF_GGUF_U32, "num_attention_heads",
	  HF_FAM_REQUIRED, 0 },
	{ "attention.head_count_kv", HF_GGUF_U32,
	  "num_key_value_heads|num_attention_heads", HF_FAM_REQUIRED, 0 },
	{ "attention.layer_norm_rms_epsilon", HF_GGUF_F32, "rms_norm_eps",
	  HF_FAM_REQUIRED, 0 },
	{ "attention.key_length", HF_GGUF_U32, "head_dim", HF_FAM_REQUIRED, 0 },
	{ "attention.value_length", HF_GGUF_U32, "head_dim", HF_FAM_REQUIRED,
	  0 },
};

/* Phi3MiniModel.set_gguf_parameters. */
static const struct hf_fam_key phi3_keys[] = {
	{ "context_length", HF_GGUF_U32, "max_position_embeddings|n_positions",
	  HF_FAM_REQUIRED, 0 },
	{ "rope.scaling.original_context_length", HF_GGUF_U32,
	  "original_max_position_embeddings", HF_FAM_REQUIRED, 0 },
	{ "embedding_length", HF_GGUF_U32, "hidden_size|n_embd",
	  HF_FAM_REQUIRED, 0 },
	{ "feed_forward_length", HF_GGUF_U32, "intermediate_size",
	  HF_FAM_REQUIRED, 0 },
	{ "block_count", HF_GGUF_U32, "num_hidden_layers", HF_FAM_REQUIRED, 0 },
	{ "attention.head_count", HF_GGUF_U32, "num_attention_heads|n_head",
	  HF_FAM_REQUIRED, 0 },
	{ "attention.head_count_kv", HF_GGUF_U32,
	  "num_key_value_heads|n_head_kv", HF_FAM_REQUIRED, 0 },
	{ "attention.layer_norm_rms_epsilon", HF_GGUF_F32, "rms_norm_eps",
	  HF_FAM_REQUIRED, 0 },
	{ "rope.dimension_count", HF_GGUF_U32, "partial_rotary_factor",
	  HF_FAM_ROT_DIM, 0 },
	{ "rope.freq_base", HF_GGUF_F32, "rope_theta", HF_FAM_REQUIRED, 0 },
	{ "attention.sliding_window", HF_GGUF_U32, "sliding_window",
	  HF_FAM_DEFAULT, 0 },
};

/* GPT2Model.set_gguf_parameters. */
static const struct hf_fam_key gpt2_keys[] = {
	{ "block_count", HF_GGUF_U32, "n_layer", HF_FAM_REQUIRED, 0 },
	{ "context_length", HF_GGUF_U32, "n_ctx|n_positions", HF_FAM_REQUIRED,
	  0 },
	{ "embedding_length", HF_GGUF_U32, "n_embd", HF_FAM_REQUIRED, 0 },
	{ "feed_forward_length", HF_GGUF_U32, "n_embd", HF_FAM_FF_4X, 0 },
	{ "attention.head_count", HF_GGUF_U32, "n_head", HF_FAM_REQUIRED, 0 },
	{ "attention.layer_norm_epsilon", HF_GGUF_F32, "layer_norm_epsilon",
	  HF_FAM_REQUIRED, 0 },
};

/* BertModel: TextModel's keys, non-causal attention. */
static const struct hf_fam_key bert_keys[] = {
	TEXT_KEYS, LN_EPS,
	{ "attention.causal", HF_GGUF_BOOL, "is_causal", HF_FAM_CONST, 0 },
};

static const struct hf_fam_key roberta_keys[] = {
	{ "block_count", HF_GGUF_U32, "num_hidden_layers", HF_FAM_REQUIRED, 0 },
	{ "context_length", HF_GGUF_U32, "max_position_embeddings",
	  HF_FAM_MINUS_POS_OFFSET, 0 },
	{ "embedding_length", HF_GGUF_U32, "hidden_size", HF_FAM_FROM_CONFIG,
	  0 },
	{ "feed_forward_length", HF_GGUF_U32, "intermediate_size",
	  HF_FAM_FROM_CONFIG, 0 },
	{ "attention.head_count", HF_GGUF_U32, "num_attention_heads",
	  HF_FAM_FROM_CONFIG, 0 },
	LN_EPS,
	{ "attention.causal", HF_GGUF_BOOL, "is_causal", HF_FAM_CONST, 0 },
};

/* DistilBertModel: layer_norm_epsilon fixed at 1e-12, then BertModel. */
static const struct hf_fam_key distilbert_keys[] = {
	{ "attention.layer_norm_epsilon", HF_GGUF_F32, "layer_norm_eps",
	  HF_FAM_CONST, 1e-12 },
	TEXT_KEYS,
	{ "attention.causal", HF_GGUF_BOOL, "is_causal", HF_FAM_CONST, 0 },
};

/* ---- the families ---- */

#define T(a) a, N(a)

static const struct hf_family families[] = {
	{ "llama", "llama", NULL, T(llama_tensors), llama_skip, T(llama_keys),
	  HF_FAM_ROPE_FREQS | HF_FAM_ROPE_SCALING, HF_FAM_VOCAB_SPM_GPT2 },
	{ "mistral", "llama", NULL, T(llama_tensors), llama_skip,
	  T(llama_keys), HF_FAM_ROPE_FREQS | HF_FAM_ROPE_SCALING,
	  HF_FAM_VOCAB_SPM_GPT2 },
	{ "mixtral", "llama", NULL, T(llama_tensors), llama_skip,
	  T(llama_keys), HF_FAM_ROPE_FREQS | HF_FAM_ROPE_SCALING,
	  HF_FAM_VOCAB_SPM_GPT2 },
	{ "qwen2", "qwen2", NULL, T(qwen2_tensors), llama_skip, T(qwen_keys),
	  HF_FAM_ROPE_SCALING, HF_FAM_VOCAB_SPM_GPT2 },
	{ "qwen3", "qwen3", NULL, T(qwen3_tensors), llama_skip, T(qwen_keys),
	  HF_FAM_ROPE_SCALING, HF_FAM_VOCAB_SPM_GPT2 },
	{ "gemma", "gemma", NULL, T(gemma_tensors), gemma_skip, T(gemma_keys),
	  HF_FAM_NO_HEAD, HF_FAM_VOCAB_SPM },
	{ "phi3", "phi3", NULL, T(phi3_tensors), llama_skip, T(phi3_keys), 0,
	  HF_FAM_VOCAB_SPM_GPT2 },
	{ "gpt2", "gpt2", gpt2_prefixes, T(gpt2_tensors), gpt2_skip,
	  T(gpt2_keys), 0, HF_FAM_VOCAB_GPT2 },
	{ "bert", "bert", bert_prefixes, T(bert_tensors), bert_skip,
	  T(bert_keys), HF_FAM_ENCODER | HF_FAM_ROPE_SCALING,
	  HF_FAM_VOCAB_BERT },
	{ "roberta", "bert", roberta_prefixes, T(roberta_tensors),
	  roberta_skip, T(roberta_keys), HF_FAM_ENCODER,
	  HF_FAM_VOCAB_BPE_BERT },
	{ "distilbert", "bert", distilbert_prefixes, T(distilbert_tensors),
	  distilbert_skip, T(distilbert_keys), HF_FAM_ENCODER,
	  HF_FAM_VOCAB_BERT },
};

const struct hf_family *hf_family_find(const char *model_type)
{
	if (!model_type)
		return NULL;
	for (size_t i = 0; i < N(families); i++)
		if (!strcmp(families[i].model_type, model_type))
			return &families[i];
	return NULL;
}

size_t hf_family_count(void)
{
	return N(families);
}

const struct hf_family *hf_family_at(size_t i)
{
	return i < N(families) ? &families[i] : NULL;
}

const char *hf_family_list(void)
{
	static char buf[256];

	if (!buf[0])
		for (size_t i = 0; i < N(families); i++) {
			size_t n = strlen(buf);

			snprintf(buf + n, sizeof(buf) - n, "%s%s",
				 i ? ", " : "", families[i].model_type);
		}
	return buf;
}

/* ---- matching ---- */

/* Match pattern (with {N}, {E}) against the start of s; *end gets where
 * the match stopped. Numbers are plain decimals without leading zeros. */
static int match(const char *pat, const char *s, int *layer, int *expert,
		 const char **end)
{
	*layer = *expert = -1;
	while (*pat) {
		if (pat[0] == '{' && (pat[1] == 'N' || pat[1] == 'E') &&
		    pat[2] == '}') {
			long v = 0;
			const char *d = s;

			while (*s >= '0' && *s <= '9' && s - d < 9)
				v = v * 10 + (*s++ - '0');
			if (s == d || (*d == '0' && s - d > 1) ||
			    (*s >= '0' && *s <= '9'))
				return 0;
			if (pat[1] == 'N')
				*layer = (int)v;
			else
				*expert = (int)v;
			pat += 3;
			continue;
		}
		if (*pat++ != *s++)
			return 0;
	}
	*end = s;
	return 1;
}

/* pattern with {N}, {E} -> buf, the numbers substituted. */
static int expand(char *buf, size_t cap, const char *prefix, const char *pat,
		  int layer, int expert, const char *suffix)
{
	size_t n = 0;
	int w;

	w = snprintf(buf, cap, "%s", prefix);
	if (w < 0 || (size_t)w >= cap)
		return -1;
	n = (size_t)w;
	while (*pat) {
		if (pat[0] == '{' && (pat[1] == 'N' || pat[1] == 'E') &&
		    pat[2] == '}') {
			w = snprintf(buf + n, cap - n, "%d",
				     pat[1] == 'N' ? layer : expert);
			pat += 3;
		} else {
			w = snprintf(buf + n, cap - n, "%c", *pat++);
		}
		if (w < 0 || (size_t)w >= cap - n)
			return -1;
		n += (size_t)w;
	}
	w = snprintf(buf + n, cap - n, "%s", suffix);
	return w < 0 || (size_t)w >= cap - n ? -1 : 0;
}

static const char *suffix_of(const char *rest)
{
	if (!strcmp(rest, ".weight"))
		return ".weight";
	if (!strcmp(rest, ".bias"))
		return ".bias";
	return NULL;
}

static int skipped(const struct hf_family *f, const char *name)
{
	for (const char *const *p = f->skip; p && *p; p++) {
		size_t n = strlen(*p);
		const char *end;
		int l, e;

		if ((*p)[n - 1] == '*') {
			char pre[128];

			if (n - 1 >= sizeof(pre))
				continue;
			memcpy(pre, *p, n - 1);
			pre[n - 1] = 0;
			if (match(pre, name, &l, &e, &end))
				return 1;
		} else if (match(*p, name, &l, &e, &end) && !*end) {
			return 1;
		}
	}
	return 0;
}

int hf_family_map_hf(const struct hf_family *f, const char *hf_name,
		     struct hf_fam_match *m)
{
	static const char *const none[] = { "", NULL };
	const char *const *pre = f->prefixes ? f->prefixes : none;

	memset(m, 0, sizeof(*m));
	for (; *pre; pre++) {
		size_t pl = strlen(*pre);
		const char *name = hf_name + pl;

		if (strncmp(hf_name, *pre, pl))
			continue;
		if (skipped(f, name))
			return HF_FAM_SKIPPED;
		for (size_t i = 0; i < f->ntensors; i++) {
			const struct hf_fam_tensor *r = &f->tensors[i];
			const char *end, *sfx;
			int l, e;

			if ((r->flags & HF_FAM_NO_PREFIX) && pl)
				continue;
			if (!match(r->hf, name, &l, &e, &end) ||
			    !(sfx = suffix_of(end)))
				continue;
			m->rule = r;
			m->layer = l;
			m->expert = e;
			m->suffix = sfx;
			if (expand(m->gguf, sizeof(m->gguf), "", r->gguf, l, e,
				   sfx) ||
			    expand(m->hf, sizeof(m->hf),
				   r->flags & HF_FAM_NO_PREFIX || !f->prefixes ?
				   "" : f->prefixes[0], r->hf, l, e, sfx))
				return HF_FAM_UNKNOWN;
			return HF_FAM_MAPPED;
		}
	}
	return HF_FAM_UNKNOWN;
}

int hf_family_map_gguf(const struct hf_family *f, const char *gguf_name,
		       int expert, struct hf_fam_match *m)
{
	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < f->ntensors; i++) {
		const struct hf_fam_tensor *r = &f->tensors[i];
		const char *end, *sfx;
		int l, e;

		if (!match(r->gguf, gguf_name, &l, &e, &end) ||
		    !(sfx = suffix_of(end)))
			continue;
		e = r->flags & HF_FAM_EXPERTS ? expert : -1;
		m->rule = r;
		m->layer = l;
		m->expert = e;
		m->suffix = sfx;
		if (expand(m->gguf, sizeof(m->gguf), "", r->gguf, l, e, sfx) ||
		    expand(m->hf, sizeof(m->hf),
			   r->flags & HF_FAM_NO_PREFIX || !f->prefixes ? "" :
			   f->prefixes[0], r->hf, l, e, sfx))
			return HF_FAM_UNKNOWN;
		return HF_FAM_MAPPED;
	}
	return HF_FAM_UNKNOWN;
}

/* ---- rope scaling ---- */

static const json_t *rope_json(const struct hf_config *c)
{
	const json_t *r = c->rope_scaling.json;

	if (!json_is_object(r))
		r = json_object_get(c->json, "rope_parameters");
	return json_is_object(r) ? r : NULL;
}

/* rope_parameters' key k, else config.json's. */
static const json_t *rope_get(const struct hf_config *c, const char *k)
{
	const json_t *v = json_object_get(rope_json(c), k);

	return v ? v : json_object_get(c->json, k);
}

static int put_f32(struct hf_gguf_writer *w, const char *arch,
		   const char *key, double v, struct hf_err *err)
{
	char k[160];

	snprintf(k, sizeof(k), "%s.%s", arch, key);
	return hf_gguf_set_f32(w, k, (float)v, err);
}

/* Phi-3: the LongRoPE factors' attention factor, from
 * max_position_embeddings / original_max_position_embeddings. */
static int phi3_attn_factor(const struct hf_config *c, const char *dir,
			    double *out, struct hf_err *err)
{
	const json_t *mp = json_object_get(c->json, "max_position_embeddings");
	const json_t *om = rope_get(c, "original_max_position_embeddings");
	const char *t = c->rope_scaling.type;
	double scale, orig;

	if (!json_is_number(mp) || !json_is_number(om) ||
	    json_number_value(om) <= 0)
		return hf_err_set(err, HF_EFORMAT, "%s/config.json: LongRoPE "
				  "factors without max_position_embeddings "
				  "and original_max_position_embeddings", dir);
	orig = json_number_value(om);
	scale = json_number_value(mp) / orig;
	if (!t || !*t)
		return hf_err_set(err, HF_EFORMAT, "%s/config.json: "
				  "rope_scaling has long_factor but no type",
				  dir);
	if (!strcasecmp(t, "su") || !strcasecmp(t, "longrope"))
		*out = scale > 1.0 ? sqrt(1 + log(scale) / log(orig)) : 1.0;
	else if (!strcasecmp(t, "yarn"))
		*out = scale > 1.0 ? 0.1 * log(scale) + 1.0 : 1.0;
	else
		return hf_err_set(err, HF_EUNSUPPORTED, "%s/config.json: "
				  "rope_scaling type '%s' with long_factor has "
				  "no GGUF form for phi3", dir, t);
	return 0;
}

static int has_long_factor(const struct hf_family *f,
			   const struct hf_config *c)
{
	const json_t *lf = json_object_get(rope_json(c), "long_factor");

	return !strcmp(f->arch, "phi3") && json_is_array(lf) &&
	       json_array_size(lf) > 0;
}

int hf_family_rope_keys(struct hf_gguf_writer *w, const struct hf_family *f,
			const struct hf_config *c, const char *dir,
			struct hf_err *err)
{
	const struct hf_rope_scaling *rs = &c->rope_scaling;
	int rc;

	if ((f->flags & HF_FAM_ROPE_SCALING) && rs->type &&
	    !strcmp(rs->type, "yarn") && rs->factor > 0) {
		static const struct { const char *key, *from, *alt; } y[] = {
			{ "rope.scaling.yarn_ext_factor",
			  "extrapolation_factor", NULL },
			{ "rope.scaling.yarn_attn_factor", "attention_factor",
			  "attn_factor" },
			{ "rope.scaling.yarn_beta_fast", "beta_fast", NULL },
			{ "rope.scaling.yarn_beta_slow", "beta_slow", NULL },
		};
		const json_t *r = rope_json(c);

		for (size_t i = 0; i < N(y); i++) {
			const json_t *v = json_object_get(r, y[i].from);

			if (!v && y[i].alt)
				v = json_object_get(r, y[i].alt);
			if (!v || json_is_null(v))
				continue;
			if (!json_is_number(v))
				return hf_err_set(err, HF_EFORMAT, "%s/config."
						  "json: rope_scaling.%s is not "
						  "a number", dir, y[i].from);
			if ((rc = put_f32(w, f->arch, y[i].key,
					  json_number_value(v), err)))
				return rc;
		}
	}
	if (has_long_factor(f, c)) {
		double a;

		if ((rc = phi3_attn_factor(c, dir, &a, err)) ||
		    (rc = put_f32(w, f->arch, "rope.scaling.attn_factor", a,
				  err)))
			return rc;
	}
	return 0;
}

static int float_list(const json_t *a, float *out, int64_t n)
{
	size_t i;
	json_t *e;

	if (!json_is_array(a) || (int64_t)json_array_size(a) != n)
		return -1;
	json_array_foreach(a, i, e) {
		if (!json_is_number(e))
			return -1;
		out[i] = (float)json_number_value(e);
	}
	return 0;
}

int hf_family_rope_factors(const struct hf_family *f,
			   const struct hf_config *c, const char *dir,
			   float **lf, float **sf, int64_t *n,
			   struct hf_err *err)
{
	const json_t *r = rope_json(c);
	const json_t *p = rope_get(c, "partial_rotary_factor");
	int64_t dims;
	double a;
	int rc;

	*lf = *sf = NULL;
	*n = 0;
	if (!has_long_factor(f, c))
		return 0;
	if ((rc = phi3_attn_factor(c, dir, &a, err)))
		return rc;
	if (c->num_attention_heads <= 0)
		return hf_err_set(err, HF_EFORMAT, "%s/config.json: no "
				  "num_attention_heads", dir);
	dims = (int64_t)((json_is_number(p) ? json_number_value(p) : 1.0) *
			 (double)c->hidden_size) / c->num_attention_heads;
	if (dims < 2 ||
	    !json_is_array(json_object_get(r, "short_factor")) ||
	    (int64_t)json_array_size(json_object_get(r, "long_factor")) !=
	    dims / 2 ||
	    (int64_t)json_array_size(json_object_get(r, "short_factor")) !=
	    dims / 2)
		return hf_err_set(err, HF_EFORMAT, "%s/config.json: "
				  "rope_scaling long_factor and short_factor "
				  "must have rope dims / 2 = %lld numbers each",
				  dir, (long long)(dims / 2));
	*lf = malloc((size_t)(dims / 2) * sizeof(float));
	*sf = malloc((size_t)(dims / 2) * sizeof(float));
	if (!*lf || !*sf) {
		free(*lf);
		free(*sf);
		*lf = *sf = NULL;
		return hf_err_set(err, HF_ENOMEM, "out of memory");
	}
	if (float_list(json_object_get(r, "long_factor"), *lf, dims / 2) ||
	    float_list(json_object_get(r, "short_factor"), *sf, dims / 2)) {
		free(*lf);
		free(*sf);
		*lf = *sf = NULL;
		return hf_err_set(err, HF_EFORMAT, "%s/config.json: "
				  "rope_scaling long_factor / short_factor "
				  "holds a non-number", dir);
	}
	*n = dims / 2;
	return 0;
}
