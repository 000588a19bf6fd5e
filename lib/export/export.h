/* lib/export/export.h: hf-export's library side. Each export direction
 * is one function here (GGUF from a model directory below; GGUF back
 * into HF layout, ONNX and adapter merging are added by their files). */
#ifndef HF_EXPORT_EXPORT_H
#define HF_EXPORT_EXPORT_H

#include <jansson.h>
#include <stdint.h>

#include "core/err.h"

struct hf_family;
struct hf_gguf_writer;

/* ---- model directory -> GGUF (gguf_export.c) ---- */

struct hf_gguf_export_opts {
	/* The file type: "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1",
	 * "q5_0", "q5_1", "q4_K" (llama.cpp's Q4_K_M mix), "q5_K" (Q5_K_M),
	 * "q6_K", "tq1_0", "tq2_0" (hf_gguf_export_types()). */
	const char *type;
	/* general.name; NULL: the model directory's name */
	const char *name;
	/* Called after each tensor: bytes of weights read so far, and in
	 * all. NULL: none. */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	/* Polled between tensors: nonzero stops the export (HF_EINVAL
	 * "interrupted"), leaving no output file. NULL: never. */
	int (*stop)(void *ctx);
	void *ctx;
};

/* Write the model in dir (config.json, safetensors, tokenizer files) as
 * one GGUF file at out ("-": stdout), through a temporary file renamed
 * into place when complete. Names, metadata and the Q/K permutation are
 * those of llama.cpp's convert_hf_to_gguf.py (families.h); quantized
 * types get the per-tensor mix of llama-quantize's
 * llama_tensor_get_type() applied to that converter's f32 file, with
 * ggml's reference quantizers (ggml_types.h), so the blocks are the
 * bytes llama-quantize writes. Linears of quantized HF checkpoints
 * (tensor/wfmt.h formats) are dequantized to float32 first, one at a
 * time, as hf-quantize --dequantize does (qlin.h): the file is that of
 * the dequantized copy. tq1_0/tq2_0 take a BitNet checkpoint only, and
 * only where each of its linears gets that type; its ternary values then
 * carry over, checked block by block. An architecture with no family
 * table, a type hf cannot write, a tensor no rule names, a quantized
 * checkpoint and type that do not go together: HF_EUNSUPPORTED naming
 * them. */
int hf_gguf_export(const char *dir, const char *out,
		   const struct hf_gguf_export_opts *o, struct hf_err *err);

/* "f32, f16, bf16, q8_0, ...": the types hf_gguf_export takes. */
const char *hf_gguf_export_types(void);
/* Whether name is one of them (0) or not (-1). */
int hf_gguf_export_type_ok(const char *name);

/* The tokenizer of dir as the converter embeds it (gguf_tok.c):
 * tokenizer.ggml.model, .pre, .tokens, .scores, .token_type, .merges,
 * the special ids and add_* flags, tokenizer.chat_template. A directory
 * without tokenizer files gets tokenizer.ggml.model = "none". config is
 * config.json (NULL: none); vocab_size the model's (0: the tokenizer's).
 * Warnings (an unknown BPE pre-tokenizer written as "default") go to the
 * log. */
int hf_gguf_add_tokenizer(struct hf_gguf_writer *w, const char *dir,
			  const struct hf_family *f, const json_t *config,
			  int64_t vocab_size, struct hf_err *err);

/* The name the converter gives a BPE tokenizer's pre-tokenizer from the
 * sha256 of str(ids) of its fixed check text (get_vocab_base_pre); NULL
 * if the hash is unknown. hash: 64 hex digits. */
const char *hf_gguf_pre_name(const char *hash);

/* ---- GGUF -> model directory (gguf_to_hf.c) ---- */

struct hf_gguf_import_opts {
	/* "f32", "f16", "bf16" (or "float32"...); NULL: the widest type
	 * of the file's 2-D tensors (block-quantized ones count as f32) */
	const char *dtype;
	int force;	/* replace an existing out_dir */
};

/* Read the GGUF file at path (written by llama.cpp's converter or
 * hf_gguf_export: families llama, mistral, mixtral, qwen2, qwen3, gemma,
 * phi3, gpt2) and write an HF model directory at out_dir: config.json,
 * generation_config.json, model.safetensors (dequantized to o->dtype;
 * the Q/K permutation, Gemma's w + 1, GPT-2's transposes undone,
 * Mixtral's stacked experts split), and from an embedded vocabulary
 * ("llama" SentencePiece or "gpt2" byte-level BPE) tokenizer.json and
 * tokenizer_config.json as transformers' GGUF loader rebuilds them. The
 * directory is written as "<out_dir>.tmp.<pid>" and renamed into place
 * when complete. An existing out_dir without o->force is HF_EINVAL; an
 * architecture, tensor or type that cannot be read back is
 * HF_EUNSUPPORTED naming it; a malformed file HF_EFORMAT. */
int hf_gguf_to_hf(const char *path, const char *out_dir,
		  const struct hf_gguf_import_opts *o, struct hf_err *err);

/* ---- a LoRA adapter merged into its base (lib/train/merge.c) ---- */

/* Fold the PEFT LoRA adapter in adapter_dir (adapter_config.json +
 * adapter_model.safetensors) into the float weights of the model in
 * base_dir and write the result as a complete HF model directory at
 * out_dir (made as "<out_dir>.tmp.<pid>", renamed when complete): W +
 * scale * B A per targeted module in float32 (transposed for GPT-2's
 * Conv1D), cast back to the stored dtype; every other tensor and file
 * as the base has it. An existing out_dir is HF_EINVAL; a quantized
 * base, a tied module, an adapter feature we do not read:
 * HF_EUNSUPPORTED naming it; targets that match nothing: HF_ENOTFOUND. */
int hf_merge_adapter(const char *base_dir, const char *adapter_dir,
		     const char *out_dir, struct hf_err *err);

/* ---- model directory -> ONNX model repository (onnx.c) ---- */

struct hf_onnx_opts;	/* export/onnx.h; NULL: every variant */

/* out/onnx/model.onnx, model_fp16, model_quantized, model_q4 (encoders
 * also masked_lm*, sequence_classification* where the weights have those
 * heads), with config.json, generation_config.json and the tokenizer
 * files copied: the graphs Optimum exports, as export/onnx.h says. */
int hf_export_onnx(const char *dir, const char *out,
		   const struct hf_onnx_opts *o, struct hf_err *err);

#endif
