/* lib/model/adapter.h: the linear modules of a model by the names
 * transformers gives them, and low-rank deltas (LoRA) added to them:
 * either as an extra product per forward pass (any weight format,
 * quantized included) or folded into float32 weights at load. What an
 * adapter file says (PEFT's layout, target matching) is lib/train/peft. */
#ifndef HF_MODEL_ADAPTER_H
#define HF_MODEL_ADAPTER_H

#include <stddef.h>

#include "core/err.h"
#include "model/model.h"

/* One nn.Linear (or GPT-2 Conv1D) of the transformers model class that
 * config.json's architectures names. */
struct hf_lin_module {
	char name[160];		/* "model.layers.0.self_attn.q_proj" */
	char tensor[200];	/* its weight in the checkpoint, "" if none
				 * (a tied head: the embeddings) */
	size_t in, out;		/* in_features, out_features */
	int conv1d;		/* stored (in, out): PEFT's fan_in_fan_out */
	int head;		/* the output embeddings (all-linear skips) */
	int cls_head;		/* score / classifier (skipped for SEQ_CLS) */
	int layer;		/* index of its block, -1 outside the blocks */
};

/* The modules of m in named_modules() order into *out (n of them; the
 * caller frees *out). */
int hf_model_modules(struct hf_model *m, struct hf_lin_module **out,
		     size_t *n, struct hf_err *err);

/* Add scale * B A to module i of hf_model_modules(): y += scale *
 * (x A^T) B^T with A (r, in) and B (out, r), row-major float32, copied.
 * merge 0: an extra low-rank product after the module's own (its weight
 * stays as stored); merge 1: W + scale * B A is computed now in float32
 * and replaces the weight. A module takes one adapter. */
int hf_model_add_lora(struct hf_model *m, size_t i, const float *A,
		      const float *B, size_t r, float scale, int merge,
		      struct hf_err *err);

/* Replace module i's weight by W (out, in) float32 and, when b is not
 * NULL, its bias by b (out) (PEFT's modules_to_save: a head trained
 * whole), copied. */
int hf_model_set_linear(struct hf_model *m, size_t i, const float *W,
			const float *b, struct hf_err *err);

#endif
