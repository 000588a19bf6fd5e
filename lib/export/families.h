/* lib/export/families.h: per model family, one table of what llama.cpp's
 * converter (convert_hf_to_gguf.py and gguf-py's tensor_mapping.py)
 * writes for it: the GGUF architecture string, the HF tensor name ->
 * GGUF tensor name rules (with the Q/K row permutation and the other
 * per-tensor changes, docs/onnx-gguf-export.md B3, B4), the HF names the
 * converter drops, and the config.json -> "<arch>.*" metadata keys. The
 * rules read both ways: HF -> GGUF for export, GGUF -> HF for import
 * (the first HF name form of a rule is the canonical one). A new
 * architecture adds one table in families.c. */
#ifndef HF_EXPORT_FAMILIES_H
#define HF_EXPORT_FAMILIES_H

#include <stddef.h>

#include "export/gguf_read.h"

/* Per-tensor changes between the HF and the GGUF form. */
enum {
	/* rows reordered per head for llama.cpp's adjacent-pair RoPE (B4):
	 * with num_attention_heads (Q) or num_key_value_heads (K) heads;
	 * weights and biases alike */
	HF_FAM_PERMUTE_Q = 1u << 0,
	HF_FAM_PERMUTE_K = 1u << 1,
	/* HF stores the weight [in, out] (GPT-2's Conv1D): transposed to
	 * [out, in] first; biases as they are */
	HF_FAM_TRANSPOSE = 1u << 2,
	/* the HF name holds {E}: one tensor per expert, stacked into one
	 * 3-D GGUF tensor [n_expert, out, in] (ne = in, out, n_expert),
	 * expert 0 first */
	HF_FAM_EXPERTS = 1u << 3,
	/* Gemma's (1 + w) RMSNorm: GGUF stores w + 1 */
	HF_FAM_PLUS_ONE = 1u << 4,
	/* RoBERTa: the first pad_token_id + 1 rows (positions never used)
	 * are dropped */
	HF_FAM_POS_OFFSET = 1u << 5,
	/* the HF name never carries the family's prefix ("lm_head") */
	HF_FAM_NO_PREFIX = 1u << 6,
};

/* One rule. Names are without the ".weight" / ".bias" suffix, which
 * carries over unchanged; "{N}" stands for the layer number and "{E}"
 * for the expert number. */
struct hf_fam_tensor {
	const char *hf;		/* "model.layers.{N}.self_attn.q_proj" */
	const char *gguf;	/* "blk.{N}.attn_q" */
	unsigned flags;
};

/* How a metadata value is computed when config.json does not simply
 * hold it. */
enum hf_fam_derive {
	HF_FAM_FROM_CONFIG = 0,	/* the first of `from` that config.json has;
				 * the key is left out when none is there */
	HF_FAM_REQUIRED,	/* the same, but one must be there */
	HF_FAM_HEAD_DIM,	/* head_dim, else hidden / heads */
	HF_FAM_ROT_DIM,		/* int(partial_rotary_factor * hidden) / heads */
	HF_FAM_FF_4X,		/* 4 * hidden (GPT-2) */
	HF_FAM_MINUS_POS_OFFSET,/* from, less pad_token_id + 1 (RoBERTa) */
	HF_FAM_CONST,		/* `value` (as a number; bool: 0 or 1) */
	HF_FAM_DEFAULT,		/* from, else `value` */
};

/* One "<arch>.<key>" entry. */
struct hf_fam_key {
	const char *key;	/* "context_length", "attention.head_count" */
	enum hf_gguf_type type;	/* U32, F32, BOOL */
	const char *from;	/* config.json keys, '|' between: the first is
				 * the canonical HF name */
	enum hf_fam_derive derive;
	double value;
};

/* Family-wide behaviour. */
enum {
	HF_FAM_ENCODER = 1u << 0,	/* bert-style: embeddings, no LM head */
	HF_FAM_ROPE_FREQS = 1u << 1,	/* llama3 rope_scaling becomes a
					 * rope_freqs tensor (LlamaModel) */
	HF_FAM_ROPE_SCALING = 1u << 2,	/* linear / yarn rope_scaling keys */
	HF_FAM_NO_HEAD = 1u << 3,	/* lm_head never exported (Gemma) */
};

/* Which vocabulary readers the converter's set_vocab tries, in order. */
enum hf_fam_vocab {
	HF_FAM_VOCAB_SPM_GPT2,	/* tokenizer.model, else tokenizer.json BPE */
	HF_FAM_VOCAB_SPM,	/* tokenizer.model only (Gemma) */
	HF_FAM_VOCAB_GPT2,	/* tokenizer.json byte-level BPE */
	HF_FAM_VOCAB_BERT,	/* WordPiece, in llama.cpp's phantom-space form */
	HF_FAM_VOCAB_BPE_BERT,	/* RoBERTa: BPE if tokenizer.json, with a
				 * token type count */
};

struct hf_family {
	const char *model_type;		/* config.json "model_type" */
	const char *arch;		/* general.architecture */
	/* prefixes HF names may carry ("transformer." for GPT-2 as
	 * save_pretrained writes it, "" for the original files); the
	 * first is canonical; NULL: none */
	const char *const *prefixes;
	const struct hf_fam_tensor *tensors;
	size_t ntensors;
	/* HF names (after the prefix, with suffix) the converter drops;
	 * "{N}" as above, a final '*' matches any rest; NULL-terminated */
	const char *const *skip;
	const struct hf_fam_key *keys;
	size_t nkeys;
	unsigned flags;
	enum hf_fam_vocab vocab;
};

/* The family of a config.json model_type, or NULL. */
const struct hf_family *hf_family_find(const char *model_type);
/* The families, for listing ("llama, mistral, ..." in messages). */
size_t hf_family_count(void);
const struct hf_family *hf_family_at(size_t i);
/* "llama, mistral, ...": every model_type, for messages. */
const char *hf_family_list(void);

/* A name matched against a family's rules. */
struct hf_fam_match {
	const struct hf_fam_tensor *rule;
	int layer;		/* {N}, -1 if the rule has none */
	int expert;		/* {E}, -1 if the rule has none */
	const char *suffix;	/* ".weight", ".bias" */
	char gguf[64];		/* the GGUF name, with suffix */
	char hf[256];		/* the canonical HF name, with suffix */
};

enum { HF_FAM_MAPPED = 0, HF_FAM_SKIPPED = 1, HF_FAM_UNKNOWN = 2 };

/* HF name -> GGUF name: HF_FAM_MAPPED and *m filled, HF_FAM_SKIPPED for
 * a tensor the converter drops, HF_FAM_UNKNOWN for one no rule names. */
int hf_family_map_hf(const struct hf_family *f, const char *hf_name,
		     struct hf_fam_match *m);

/* GGUF name -> canonical HF name (m->hf); for an HF_FAM_EXPERTS rule
 * the HF name is that of expert `expert` (ignored otherwise).
 * HF_FAM_MAPPED or HF_FAM_UNKNOWN. */
int hf_family_map_gguf(const struct hf_family *f, const char *gguf_name,
		       int expert, struct hf_fam_match *m);

struct hf_gguf_writer;
struct hf_config;
struct hf_err;

/* The rope_scaling metadata past <arch>.rope.scaling.type / factor /
 * original_context_length that the converter writes: YaRN's
 * yarn_ext_factor, yarn_attn_factor, yarn_beta_fast, yarn_beta_slow
 * (TextModel.set_gguf_parameters, families with HF_FAM_ROPE_SCALING),
 * and Phi-3's rope.scaling.attn_factor for LongRoPE / YaRN factors
 * (Phi3MiniModel.generate_extra_tensors). dir names config.json's
 * directory in messages. */
int hf_family_rope_keys(struct hf_gguf_writer *w, const struct hf_family *f,
			const struct hf_config *c, const char *dir,
			struct hf_err *err);

/* Phi-3's rope_factors_long / rope_factors_short tensors (LongRoPE's
 * long_factor and short_factor, rope dims / 2 values each): *n = 0 when
 * the family or config has none, else *lf and *sf malloc'd. */
int hf_family_rope_factors(const struct hf_family *f,
			   const struct hf_config *c, const char *dir,
			   float **lf, float **sf, int64_t *n,
			   struct hf_err *err);

#endif
